"""torch.cat/concat/concatenate, stack, hstack, vstack, dstack, column_stack."""
from __future__ import annotations

from ._dispatch import call
from .tensor import Tensor


def _tensors(op, tensors):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}(): argument 'tensors' must be a tuple or list of Tensors, not {type(tensors).__name__}")
    if not tensors:
        raise RuntimeError(f"{op}(): expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}(): expected Tensor as element {i} in argument 0, but got {type(t).__name__}")
    return list(tensors)


def cat(tensors, dim=0, *, out=None):
    ts = _tensors("cat", tensors)
    r = call("cat", *ts, dim=dim)
    if out is not None:
        out.copy_(r)
        return out
    return r


concat = concatenate = cat


def stack(tensors, dim=0, *, out=None):
    ts = _tensors("stack", tensors)
    shape = ts[0].shape
    for i, t in enumerate(ts):
        if t.shape != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 and "
                               f"{list(t.shape)} at entry {i}")
    from .ops.rules import normalize_dim
    d = normalize_dim("stack", dim, len(shape) + 1)
    return cat([t.unsqueeze(d) for t in ts], d, out=out)


def hstack(tensors):
    ts = _tensors("hstack", tensors)
    ts = [t.reshape(1) if t.ndim == 0 else t for t in ts]
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    ts = [t.reshape(1, -1) if t.ndim < 2 else t for t in _tensors("vstack", tensors)]
    return cat(ts, 0)


row_stack = vstack


def dstack(tensors):
    ts = []
    for t in _tensors("dstack", tensors):
        if t.ndim == 0:
            t = t.reshape(1, 1, 1)
        elif t.ndim == 1:
            t = t.reshape(1, -1, 1)
        elif t.ndim == 2:
            t = t.unsqueeze(-1)
        ts.append(t)
    return cat(ts, 2)


def column_stack(tensors):
    ts = [t.reshape(-1, 1) if t.ndim < 2 else t for t in _tensors("column_stack", tensors)]
    return cat(ts, 1)

"""Tensor indexing: basic indexing (ints, slices, None, Ellipsis) becomes view ops; advanced
indexing (bool masks, integer tensors/lists) becomes index ops. Every index is checked in Python:
numba kernels do not check bounds."""
from __future__ import annotations

import numbers

import numpy as np

from . import _dispatch
from ._dispatch import call
from .tensor import Tensor


def _is_basic(i):
    return i is None or i is Ellipsis or isinstance(i, slice) or (
        isinstance(i, numbers.Integral) and not isinstance(i, (bool, np.bool_)))


def _expand_ellipsis(index, ndim):
    index = list(index)
    consumed = sum(1 for i in index if i is not None and i is not Ellipsis and not (
        isinstance(i, Tensor) and i.dtype.name == "bool") and not (isinstance(i, (bool, np.bool_))))
    consumed += sum(i.ndim - 1 for i in index if isinstance(i, Tensor) and i.dtype.name == "bool")
    n_ell = sum(1 for i in index if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if consumed > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    if n_ell:
        k = index.index(Ellipsis)
        index[k:k + 1] = [slice(None)] * (ndim - consumed)
    return index


def basic_index(t, index):
    """Apply ints/slices/None/Ellipsis as a chain of view ops; returns the view."""
    index = _expand_ellipsis(index, t.ndim)
    out = t
    dim = 0
    for i in index:
        if i is None:
            out = call("unsqueeze", out, dim=dim)
            dim += 1
        elif isinstance(i, slice):
            step = 1 if i.step is None else int(i.step)
            if step <= 0:
                raise ValueError("step must be greater than zero")
            n = out.shape[dim]
            start, stop, _ = slice(i.start, i.stop, step).indices(n)
            if not (start == 0 and stop >= n and step == 1):
                out = call("slice", out, dim=dim, start=i.start, stop=i.stop, step=step)
            dim += 1
        else:
            i = int(i)
            n = out.shape[dim]
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for dimension {dim} with size {n}")
            out = call("select", out, dim=dim, index=i)
    return out


def _normalize_index(index, device=None):
    """Index items as getitem/setitem use them; lists and arrays become index tensors on ``device``
    (the indexed tensor's: a list indexes a cuda tensor from the device, as in torch)."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for i in index:
        if isinstance(i, Tensor) and i.ndim == 0 and i.dtype.category == 1 and _dispatch.hooks.tracer is None:
            # eager: a 0-dim integer tensor indexes like an int (a view)
            out.append(int(i._data) if i._device.type == "cpu" else int(i.item()))
        elif isinstance(i, (list, np.ndarray)) or (isinstance(i, Tensor)):
            from ._creation import tensor
            out.append(i if isinstance(i, Tensor) else tensor(np.asarray(i), device=device))
        elif isinstance(i, (bool, np.bool_)):
            from ._creation import tensor
            out.append(tensor(bool(i)))
        else:
            out.append(i)
    return tuple(out)


def getitem(t, index):
    if type(index) is int:  # x[i]: the select view of dim 0, bounds checked here
        shape = t._data.shape
        if shape:
            n = shape[0]
            if not -n <= index < n:
                raise IndexError(f"index {index} is out of bounds for dimension 0 with size {n}")
            return call("select", t, dim=0, index=index)
    index = _normalize_index(index, t._device)
    if all(_is_basic(i) for i in index):
        if t.ndim == 0 and index and all(i is Ellipsis for i in index):
            return call("view", t, size=())
        return basic_index(t, index)
    from . import _index
    return _index.advanced_getitem(t, index)


def setitem(t, index, value):
    index = _normalize_index(index, t._device)
    if all(_is_basic(i) for i in index):
        target = basic_index(t, index) if index != (Ellipsis,) else t
        if not isinstance(value, Tensor):
            if isinstance(value, numbers.Number):
                from ._dispatch import call_inplace
                call_inplace("fill", target, value=value)
                t._bump() if target is not t else None
                return
            from ._creation import tensor
            value = tensor(value, dtype=t.dtype)
        target.copy_(value)
        return
    from . import _index
    _index.advanced_setitem(t, index, value)

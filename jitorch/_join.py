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


# ---------------------------------------------------------------- torch.* spellings of Tensor view methods

def reshape(input, shape):
    return input.reshape(shape)


def flatten(input, start_dim=0, end_dim=-1):
    return input.flatten(start_dim, end_dim)


def unflatten(input, dim, sizes):
    return input.unflatten(dim, sizes)


def transpose(input, dim0, dim1):
    return input.transpose(dim0, dim1)


swapaxes = swapdims = transpose


def permute(input, dims):
    return input.permute(dims)


def t(input):
    return input.t()


def squeeze(input, dim=None):
    return input.squeeze(dim)


def unsqueeze(input, dim):
    return input.unsqueeze(dim)


def narrow(input, dim, start, length):
    return input.narrow(dim, start, length)


def select(input, dim, index):
    return input.select(dim, index)


def unbind(input, dim=0):
    return input.unbind(dim)


def split(tensor, split_size_or_sections, dim=0):
    return tensor.split(split_size_or_sections, dim)


def chunk(input, chunks, dim=0):
    return input.chunk(chunks, dim)


def tensor_split(input, indices_or_sections, dim=0):
    return input.tensor_split(indices_or_sections, dim)


def diagonal(input, offset=0, dim1=0, dim2=1):
    return input.diagonal(offset, dim1, dim2)


def movedim(input, source, destination):
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    nd = input.ndim
    src = [s % nd for s in src]
    dst = [d % nd for d in dst]
    rest = [i for i in range(nd) if i not in src]
    order = [None] * nd
    for s, d in zip(src, dst):
        order[d] = s
    it = iter(rest)
    order = [o if o is not None else next(it) for o in order]
    return input.permute(order)


moveaxis = movedim


def broadcast_to(input, size):
    return input.expand(size)


def broadcast_tensors(*tensors):
    from .ops.rules import broadcast_shapes as _bs
    shape = _bs("broadcast_tensors", *[x.shape for x in tensors])
    return tuple(x.expand(shape) for x in tensors)


def broadcast_shapes(*shapes):
    from .ops.rules import broadcast_shapes as _bs
    from .tensor import Size
    return Size(_bs("broadcast_shapes", *[tuple(s) if not isinstance(s, int) else (s,) for s in shapes]))


def atleast_1d(x):
    return x.reshape(1) if x.ndim == 0 else x


def atleast_2d(x):
    return x.reshape(1, -1) if x.ndim < 2 else x


def clone(input, *, memory_format=None):
    return input.clone()

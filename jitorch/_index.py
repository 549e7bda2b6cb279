"""torch indexing, sorting and data-movement functions on top of the index primitives."""
from __future__ import annotations

import numbers
from collections import namedtuple

import numpy as np

from . import _dtype as D
from ._dispatch import call
from ._reduce import values_indices
from .ops.rules import normalize_dim
from .tensor import Tensor


def _as_index_tensor(i):
    if isinstance(i, Tensor):
        return i
    from ._creation import tensor
    return tensor(i)


# ---------------------------------------------------------------- advanced indexing

def _split_index(t, index):
    """Apply ints/slices/None as views; return (view, [index tensors], [their dims in the view])."""
    from ._indexing import _expand_ellipsis
    index = _expand_ellipsis(index, t.ndim)
    view = t
    dim = 0
    tensors, dims = [], []
    for i in index:
        if i is None:
            view = call("unsqueeze", view, dim=dim)
            dim += 1
        elif isinstance(i, slice):
            step = 1 if i.step is None else int(i.step)
            if step <= 0:
                raise ValueError("step must be greater than zero")
            view = call("slice", view, dim=dim, start=i.start, stop=i.stop, step=step)
            dim += 1
        elif isinstance(i, numbers.Integral) and not isinstance(i, bool):
            n = view.shape[dim]
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for dimension {dim} with size {n}")
            view = call("select", view, dim=dim, index=int(i))
        elif isinstance(i, Tensor):
            if i.dtype is D.bool_ or i.dtype is D.uint8:
                mask = i.bool() if i.dtype is D.uint8 else i
                k = mask.ndim
                for j in range(k):
                    if mask.shape[j] != view.shape[dim + j]:
                        raise IndexError(
                            f"The shape of the mask {list(mask.shape)} at index {j} does not match the shape of the "
                            f"indexed tensor {list(view.shape)} at index {dim + j}")
                if k == 0:
                    # x[True] adds a dim of size 1, x[False] of size 0
                    view = call("unsqueeze", view, dim=dim)
                    tensors.append(nonzero(mask.reshape(1))[:, 0])
                    dims.append(dim)
                    dim += 1
                    continue
                coords = nonzero(mask)
                for j in range(k):
                    tensors.append(coords[:, j])
                    dims.append(dim + j)
                dim += k
            elif i.dtype.category == 1:
                tensors.append(i)
                dims.append(dim)
                dim += 1
            else:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors "
                                 f"(got {i.dtype.name})")
        else:
            raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), None and long or byte tensors are valid "
                             f"indices (got {type(i).__name__})")
    return view, tensors, dims


def advanced_getitem(t, index):
    view, tensors, dims = _split_index(t, index)
    if not tensors:
        return view
    return call("index", view, *tensors, dims=tuple(dims))


def advanced_setitem(t, index, value):
    view, tensors, dims = _split_index(t, index)
    if not isinstance(value, Tensor):
        from ._creation import tensor
        value = tensor(value, dtype=t.dtype)
    if value.dtype is not t.dtype:
        value = value.to(t.dtype)
    if not tensors:
        view.copy_(value)
        return
    new = call("index_put", view, value, *tensors, dims=tuple(dims), accumulate=False)
    view.copy_(new)


def index_put(input, indices, values, accumulate=False):
    ts = [_as_index_tensor(i) for i in indices]
    return call("index_put", input, values, *ts, dims=tuple(range(len(ts))), accumulate=accumulate)


def index_put_(input, indices, values, accumulate=False):
    return input.copy_(index_put(input, indices, values, accumulate))


# ---------------------------------------------------------------- along-dim ops

def index_select(input, dim, index, *, out=None):
    r = call("index_select", input, _as_index_tensor(index), dim=dim)
    return r if out is None else out.copy_(r)


def gather(input, dim, index, *, sparse_grad=False, out=None):
    r = call("gather", input, index, dim=dim)
    return r if out is None else out.copy_(r)


def take_along_dim(input, indices, dim=None):
    if dim is None:
        return take(input, indices.reshape(-1)) if indices.ndim else take(input, indices)
    d = normalize_dim("take_along_dim", dim, input.ndim)
    shape = [max(a, b) if i != d else b for i, (a, b) in enumerate(zip(input.shape, indices.shape))]
    xs = [max(a, b) if i != d else a for i, (a, b) in enumerate(zip(input.shape, indices.shape))]
    return gather(input.expand(xs), d, indices.expand(shape))


def _src_operand(src, like):
    if isinstance(src, Tensor):
        return src
    return float(src) if like.dtype.is_floating_point else src


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    if src is None:
        src = value
    if isinstance(src, Tensor) and src.dtype is not input.dtype:
        raise RuntimeError(f"scatter(): Expected self.dtype to be equal to src.dtype ({input.dtype.name} vs "
                           f"{src.dtype.name})")
    return call("scatter", input, index, _src_operand(src, input), dim=dim, reduce=reduce, include_self=True)


def scatter_add(input, dim, index, src):
    return call("scatter", input, index, src, dim=dim, reduce="sum", include_self=True)


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise RuntimeError(f"scatter_reduce(): reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    if reduce == "mean":
        total = call("scatter", input, index, src, dim=dim, reduce="sum", include_self=include_self)
        ones = call("scatter", call("fill", input, value=1 if include_self else 0), index,
                    call("fill", src, value=1), dim=dim, reduce="sum", include_self=True)
        cnt = call("clamp_min", ones, min=1)
        r = total / cnt
        return r if input.dtype.is_floating_point else call("div_floor", total, cnt)
    return call("scatter", input, index, src, dim=dim, reduce=reduce, include_self=include_self)


def index_add(input, dim, index, source, *, alpha=1):
    return call("index_add", input, _as_index_tensor(index), source, dim=dim, alpha=alpha)


def index_copy(input, dim, index, source):
    d = normalize_dim("index_copy", dim, input.ndim)
    idx = _as_index_tensor(index)
    key = [slice(None)] * input.ndim
    key[d] = idx
    r = input.clone()
    r[tuple(key)] = source
    return r


def index_fill(input, dim, index, value):
    d = normalize_dim("index_fill", dim, input.ndim)
    idx = _as_index_tensor(index)
    key = [slice(None)] * input.ndim
    key[d] = idx
    r = input.clone()
    r[tuple(key)] = value.item() if isinstance(value, Tensor) else value
    return r


def take(input, index):
    return call("take", input, _as_index_tensor(index))


def _mask(op, mask):
    if not isinstance(mask, Tensor):
        mask = _as_index_tensor(mask)
    if mask.dtype is not D.bool_:
        if mask.dtype is D.uint8:
            return mask.bool()
        raise RuntimeError(f"{op}: expected BoolTensor for mask (got {mask.dtype.name})")
    return mask


def masked_fill(input, mask, value):
    """where(mask, value, input); value is a number or a 0-dim tensor."""
    mask = _mask("masked_fill", mask)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s).")
        if value.dtype is not input.dtype:
            value = value.to(input.dtype)
    else:
        from ._creation import tensor
        value = tensor(value, dtype=input.dtype)
    r = call("where", mask, value, input)
    if r.shape != input.shape:
        raise RuntimeError(f"masked_fill: mask of shape {list(mask.shape)} can't be broadcast to the input shape "
                           f"{list(input.shape)}")
    return r


def masked_select(input, mask):
    return call("masked_select", input, _mask("masked_select", mask))


def masked_scatter(input, mask, source):
    return call("masked_scatter", input, _mask("masked_scatter", mask), source)


def nonzero(input, *, as_tuple=False):
    coords = call("nonzero", input)
    if as_tuple:
        if input.ndim == 0:
            return (coords.reshape(-1),) if coords.shape[0] else (coords.reshape(0),)
        return tuple(coords[:, j] for j in range(input.ndim))
    return coords


def argwhere(input):
    return nonzero(input)


# ---------------------------------------------------------------- sort family

def sort(input, dim=-1, descending=False, stable=False, *, out=None):
    v, i = call("sort", input, dim=dim, descending=descending, stable=True)
    return values_indices(v, i)


def argsort(input, dim=-1, descending=False, stable=False):
    return sort(input, dim, descending).indices


def msort(input):
    return sort(input, 0).values


def topk(input, k, dim=-1, largest=True, sorted=True, *, out=None):
    v, i = call("topk", input, k=int(k), dim=dim, largest=largest, sorted=True)
    return values_indices(v, i)


def kthvalue(input, k, dim=-1, keepdim=False):
    v, i = call("kthvalue", input, k=int(k), dim=dim, keepdim=keepdim)
    return values_indices(v, i)


def median(input, dim=None, keepdim=False):
    """median(x) -> the lower median of all elements; median(x, dim) -> (values, indices)."""
    if dim is None:
        if input.numel() == 0:
            from ._creation import tensor
            return tensor(float("nan"), dtype=input.dtype)
        v, _ = call("median_dim", input.reshape(-1), dim=0, keepdim=False)
        return v
    v, i = call("median_dim", input, dim=dim, keepdim=keepdim)
    return values_indices(v, i)


def nanmedian(input, dim=None, keepdim=False):
    if dim is None:
        v, _ = call("nanmedian_dim", input.reshape(-1), dim=0, keepdim=False)
        return v
    v, i = call("nanmedian_dim", input, dim=dim, keepdim=keepdim)
    return values_indices(v, i)


def mode(input, dim=-1, keepdim=False):
    v, i = call("mode_dim", input, dim=dim, keepdim=keepdim)
    return values_indices(v, i)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    if dim is not None:
        raise NotImplementedError("unique(dim=...) is not supported yet; use unique on the flattened tensor")
    vals, inv, counts = call("unique", input, sorted=True, return_inverse=return_inverse, return_counts=return_counts)
    out = (vals,)
    if return_inverse:
        out += (inv,)
    if return_counts:
        out += (counts,)
    return out[0] if len(out) == 1 else out


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    if dim is not None:
        raise NotImplementedError("unique_consecutive(dim=...) is not supported yet")
    flat = input.reshape(-1)
    if flat.numel() == 0:
        return unique(input, return_inverse=return_inverse, return_counts=return_counts)
    from ._join import cat
    from ._creation import ones
    change = cat([ones(1, dtype=D.bool_), call("ne", flat[1:], flat[:-1])])
    vals = masked_select(flat, change)
    res = (vals,)
    if return_inverse:
        from ._reduce import cumsum
        res += ((cumsum(change.long(), 0) - 1).reshape(input.shape),)
    if return_counts:
        from ._creation import tensor
        starts = nonzero(change)[:, 0]
        ends = cat([starts[1:], tensor([flat.numel()])])
        res += (ends - starts,)
    return res[0] if len(res) == 1 else res


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None):
    if side is not None:
        right = side == "right"
    if sorter is not None:
        sorted_sequence = take_along_dim(sorted_sequence, sorter, -1)
    values = input if isinstance(input, Tensor) else _as_index_tensor(input)
    r = call("searchsorted", sorted_sequence, values, right=right)
    return r.int() if out_int32 else r


def bucketize(input, boundaries, *, out_int32=False, right=False):
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


# ---------------------------------------------------------------- data movement

def flip(input, dims):
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return call("flip", input, dims=tuple(normalize_dim("flip", d, input.ndim) for d in dims))


def fliplr(input):
    if input.ndim < 2:
        raise RuntimeError("fliplr: Input must be >= 2-d.")
    return flip(input, (1,))


def flipud(input):
    if input.ndim < 1:
        raise RuntimeError("flipud: Input must be >= 1-d.")
    return flip(input, (0,))


def roll(input, shifts, dims=None):
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = () if dims is None else ((dims,) if isinstance(dims, int) else tuple(dims))
    return call("roll", input, shifts=shifts, dims=tuple(normalize_dim("roll", d, input.ndim) for d in dims))


def repeat(input, *sizes):
    """Tile the tensor: a view broadcast with expand, then one copy."""
    from .tensor import _shape_arg
    sizes = _shape_arg(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    shape = (1,) * (len(sizes) - input.ndim) + tuple(input.shape)
    x = input.reshape(shape)
    inter, target, final = [], [], []
    for r, s in zip(sizes, shape):
        inter += [1, s]
        target += [r, s]
        final.append(r * s)
    # reshape copies (once) because an expanded view cannot be viewed as the tiled shape
    return x.reshape(inter).expand(target).reshape(final)


def tile(input, dims):
    dims = tuple(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    if repeats is None:  # repeat_interleave(repeats): indices repeated
        from ._creation import arange
        return repeat_interleave(arange(input.numel(), device=input.device), input, 0)
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else normalize_dim("repeat_interleave", dim, x.ndim)
    r = repeats if isinstance(repeats, Tensor) else _as_index_tensor(int(repeats))
    if r.ndim > 1:
        raise RuntimeError("repeat_interleave: repeats must be 0-dim or 1-dim tensor")
    if r.ndim == 1 and r.shape[0] != x.shape[d]:
        raise RuntimeError(f"repeat_interleave: repeats must have the same size as input along dim ({r.shape[0]} vs "
                           f"{x.shape[d]})")
    return call("repeat_interleave", x, r, dim=d)


def tril(input, diagonal=0):
    return call("tril", input, diagonal=diagonal)


def triu(input, diagonal=0):
    return call("triu", input, diagonal=diagonal)


def diag(input, diagonal=0):
    if input.ndim == 1:
        n = input.shape[0] + abs(diagonal)
        from ._creation import zeros
        out = zeros(n, n, dtype=input.dtype)
        out.diagonal(diagonal).copy_(input)
        return out
    if input.ndim == 2:
        return input.diagonal(diagonal).clone()
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    n = input.shape[-1] + abs(offset)
    from ._creation import zeros
    out = zeros(tuple(input.shape[:-1]) + (n, n), dtype=input.dtype)
    out.diagonal(offset, dim1, dim2).copy_(input)
    return out


def diagflat(input, offset=0):
    return diag(input.reshape(-1), offset)


def tril_indices(row, col, offset=0, *, dtype=None):
    from ._creation import ones
    return nonzero(tril(ones(row, col, dtype=D.bool_), offset)).t().to(dtype or D.int64)


def triu_indices(row, col, offset=0, *, dtype=None):
    from ._creation import ones
    return nonzero(triu(ones(row, col, dtype=D.bool_), offset)).t().to(dtype or D.int64)


def bincount(input, weights=None, minlength=0):
    if input.ndim != 1 or input.dtype.category != 1:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if input.numel() and int(input.min()) < 0:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    n = max(int(input.max()) + 1 if input.numel() else 0, minlength)
    from ._creation import zeros
    if weights is None:
        return scatter_add(zeros(n, dtype=D.int64), 0, input, call("fill", input.long(), value=1))
    w = weights if weights.dtype.is_floating_point else weights.double()
    return scatter_add(zeros(n, dtype=w.dtype), 0, input, w)


def _inplace(fn):
    def method(self, *args, **kwargs):
        return self.copy_(fn(self, *args, **kwargs))
    return method


def _bind():
    T = Tensor
    T.index_select = lambda self, dim, index: index_select(self, dim, index)
    T.gather = lambda self, dim, index: gather(self, dim, index)
    T.take_along_dim = lambda self, indices, dim=None: take_along_dim(self, indices, dim)
    T.scatter = lambda self, dim, index, src=None, *, value=None, reduce=None: scatter(self, dim, index, src,
                                                                                        value=value, reduce=reduce)
    T.scatter_ = _inplace(T.scatter)
    T.scatter_add = lambda self, dim, index, src: scatter_add(self, dim, index, src)
    T.scatter_add_ = _inplace(T.scatter_add)
    T.scatter_reduce = lambda self, dim, index, src, reduce, *, include_self=True: scatter_reduce(
        self, dim, index, src, reduce, include_self=include_self)
    T.scatter_reduce_ = _inplace(T.scatter_reduce)
    T.index_add = lambda self, dim, index, source, *, alpha=1: index_add(self, dim, index, source, alpha=alpha)
    T.index_add_ = _inplace(T.index_add)
    T.index_copy = lambda self, dim, index, source: index_copy(self, dim, index, source)
    T.index_copy_ = _inplace(T.index_copy)
    T.index_fill = lambda self, dim, index, value: index_fill(self, dim, index, value)
    T.index_fill_ = _inplace(T.index_fill)
    T.index_put = lambda self, indices, values, accumulate=False: index_put(self, indices, values, accumulate)
    T.index_put_ = lambda self, indices, values, accumulate=False: index_put_(self, indices, values, accumulate)
    T.take = lambda self, index: take(self, index)
    T.masked_fill = lambda self, mask, value: masked_fill(self, mask, value)
    T.masked_fill_ = _inplace(T.masked_fill)
    T.masked_select = lambda self, mask: masked_select(self, mask)
    T.masked_scatter = lambda self, mask, source: masked_scatter(self, mask, source)
    T.masked_scatter_ = _inplace(T.masked_scatter)
    T.nonzero = lambda self, *, as_tuple=False: nonzero(self, as_tuple=as_tuple)
    T.argwhere = lambda self: argwhere(self)
    T.sort = lambda self, dim=-1, descending=False, stable=False: sort(self, dim, descending, stable)
    T.argsort = lambda self, dim=-1, descending=False, stable=False: argsort(self, dim, descending, stable)
    T.msort = lambda self: msort(self)
    T.topk = lambda self, k, dim=-1, largest=True, sorted=True: topk(self, k, dim, largest, sorted)
    T.kthvalue = lambda self, k, dim=-1, keepdim=False: kthvalue(self, k, dim, keepdim)
    T.median = lambda self, dim=None, keepdim=False: median(self, dim, keepdim)
    T.nanmedian = lambda self, dim=None, keepdim=False: nanmedian(self, dim, keepdim)
    T.mode = lambda self, dim=-1, keepdim=False: mode(self, dim, keepdim)
    T.unique = lambda self, sorted=True, return_inverse=False, return_counts=False, dim=None: unique(
        self, sorted, return_inverse, return_counts, dim)
    T.unique_consecutive = lambda self, return_inverse=False, return_counts=False, dim=None: unique_consecutive(
        self, return_inverse, return_counts, dim)
    T.flip = lambda self, *dims: flip(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims)
    T.fliplr = lambda self: fliplr(self)
    T.flipud = lambda self: flipud(self)
    T.roll = lambda self, shifts, dims=None: roll(self, shifts, dims)
    T.repeat = lambda self, *sizes: repeat(self, *sizes)
    T.tile = lambda self, *dims: tile(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims)
    T.repeat_interleave = lambda self, repeats=None, dim=None, *, output_size=None: repeat_interleave(self, repeats, dim)
    T.tril = lambda self, diagonal=0: tril(self, diagonal)
    T.triu = lambda self, diagonal=0: triu(self, diagonal)
    T.tril_ = _inplace(T.tril)
    T.triu_ = _inplace(T.triu)
    T.diag = lambda self, diagonal=0: diag(self, diagonal)
    T.diag_embed = lambda self, offset=0, dim1=-2, dim2=-1: diag_embed(self, offset, dim1, dim2)
    T.bincount = lambda self, weights=None, minlength=0: bincount(self, weights, minlength)


_bind()
_ = (np, namedtuple)

"""Indexing, sorting and data-movement primitives that copy.

Every index is validated here before a kernel runs (numba does not check bounds): an index out of
range raises IndexError naming the op, the dim, the size and the offending value.

Primitives: index (advanced getitem), index_put, index_select, gather, scatter, index_add, take,
masked_select, masked_scatter, nonzero, sort, topk, kthvalue, median_dim, mode_dim, unique,
searchsorted, flip, roll, repeat_interleave, tril, triu. Compositions (masked_fill = where,
take_along_dim = gather, argsort = sort, repeat/tile = expand + clone ...) live in the frontend.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _dtype as D
from ..backends import cpu as _cpu
from ..kernels import advindex as _adv
from ..kernels import index as _ki
from ..kernels import shape as _ks
from ..kernels import sort as _kso
from .registry import OpDef, register
from .rules import broadcast_shapes, normalize_dim


# ---------------------------------------------------------------- helpers

def _c(a, dtype=None):
    """A C-contiguous copy (or a cheap pass-through) of ``a``, via the copy kernel; float16 -> float32."""
    want = np.dtype(dtype) if dtype is not None else (np.dtype(np.float32) if a.dtype == np.float16 else a.dtype)
    if a.flags.c_contiguous and a.dtype == want:
        return a
    out = np.empty(a.shape, want)
    _cpu.copy_into(out, a)
    return out


def _store(out, result):
    """Copy a float32 result into a float16 output (or pass through)."""
    if out is not result:
        _cpu.copy_into(out, result)
    return out


def _work(out):
    return np.empty(out.shape, np.float32) if out.dtype == np.float16 else out


def checked_indices(op, idx, n, dim=None):
    """idx (int array, any shape) -> C-contiguous int64 copy wrapped into [0, n); IndexError otherwise."""
    flat = _c(idx, np.int64).reshape(-1)
    out = np.empty(flat.shape, np.int64)
    bad = _adv.wrap_check(flat, n, out)
    if bad < flat.shape[0]:
        where = f" for dimension {dim}" if dim is not None else ""
        raise IndexError(f"{op}: index {int(flat[bad])} is out of bounds{where} with size {n}")
    return out.reshape(idx.shape)


def _check_index_dtype(op, idx):
    if idx.dtype.category != 1:
        raise IndexError(f"{op}(): Expected dtype int64 for index (got {idx.dtype.name}); "
                         "convert with .long() (bool masks index with masked_select or x[mask])")


def _three(a, d):
    """View a C-contiguous array as (outer, a.shape[d], inner)."""
    if a.ndim == 0:
        return a.reshape(1, 1, 1)
    return a.reshape(math.prod(a.shape[:d]), a.shape[d], math.prod(a.shape[d + 1:]))


# ---------------------------------------------------------------- advanced getitem / setitem

def _index_shape(xshape, *idx_shapes, dims):
    b = broadcast_shapes("index", *idx_shapes) if idx_shapes else ()
    rest = [s for i, s in enumerate(xshape) if i not in dims]
    adjacent = list(dims) == list(range(dims[0], dims[0] + len(dims)))
    if adjacent:
        before = [xshape[i] for i in range(dims[0])]
        after = [xshape[i] for i in range(dims[-1] + 1, len(xshape))]
        return tuple(before) + tuple(b) + tuple(after)
    return tuple(b) + tuple(rest)


def _index_dtype(x, *idx, dims):
    for i in idx:
        _check_index_dtype("index", i)
    return x.dtype


def _prepare_rows(op, x, idx, dims):
    """x with indexed dims first as a (V, D) table, the row numbers, and the broadcast index shape."""
    nd = x.ndim
    rest = [d for d in range(nd) if d not in dims]
    xp = x.transpose(list(dims) + rest)
    table = _c(xp, xp.dtype if xp.dtype != np.float16 else np.float16)
    sizes = np.array([x.shape[d] for d in dims], np.int64)
    b = np.broadcast_shapes(*[i.shape for i in idx])
    stacked = np.empty((len(idx), math.prod(b)), np.int64)
    for k, (i, d) in enumerate(zip(idx, dims)):
        stacked[k] = checked_indices(op, np.broadcast_to(i, b), x.shape[d], d).reshape(-1)
    rows = np.empty(stacked.shape[1], np.int64)
    _adv.flat_rows(stacked, sizes, rows)
    V = math.prod(x.shape[d] for d in dims)
    D_ = math.prod(x.shape[d] for d in rest)
    return table.reshape(V, D_), rows, b, rest


def _index_impl(out, x, *idx, dims):
    table, rows, b, rest = _prepare_rows("index", x, idx, dims)
    res = np.empty((rows.shape[0], table.shape[1]), table.dtype)
    if res.size:
        if table.dtype == np.float16:
            _ki.index_rows(table.view(np.uint16), rows, res.view(np.uint16))
        else:
            _ki.index_rows(table, rows, res)
    res = res.reshape(tuple(b) + tuple(x.shape[d] for d in rest))
    adjacent = list(dims) == list(range(dims[0], dims[0] + len(dims)))
    if adjacent and dims[0] > 0:
        nb = len(b)
        lead = list(range(nb, nb + dims[0]))
        res = res.transpose(lead + list(range(nb)) + list(range(nb + dims[0], res.ndim)))
    _cpu.copy_into(out, res)
    return out


def _ref_index(x, *idx, dims):
    key = [slice(None)] * x.ndim
    for i, d in zip(idx, dims):
        key[d] = i
    return x[tuple(key)]


def _index_put_shape(xshape, vshape, *idx_shapes, dims, accumulate=False):
    target = _index_shape(xshape, *idx_shapes, dims=dims)
    bs = broadcast_shapes("index_put", target, vshape)
    if tuple(bs) != tuple(target):
        raise RuntimeError(f"index_put: shape mismatch: value tensor of shape {list(vshape)} cannot be broadcast to "
                           f"indexing result of shape {list(target)}")
    return tuple(xshape)


def _index_put_impl(out, x, values, *idx, dims, accumulate=False):
    table, rows, b, rest = _prepare_rows("index_put", x, idx, dims)
    table = table.copy() if table.base is not None or table is x else table
    target_shape = _index_shape(x.shape, *[i.shape for i in idx], dims=dims)
    vals = np.empty(target_shape, table.dtype)
    _cpu.copy_into(vals, values if isinstance(values, np.ndarray) else np.asarray(values))
    adjacent = list(dims) == list(range(dims[0], dims[0] + len(dims)))
    nb = len(b)
    if adjacent and dims[0] > 0:
        # undo the placement of the broadcast index dims in the middle
        perm = list(range(dims[0], dims[0] + nb)) + list(range(dims[0])) + list(range(dims[0] + nb, vals.ndim))
        vals = vals.transpose(perm)
    vals = _c(vals, table.dtype).reshape(rows.shape[0], table.shape[1])
    if rows.shape[0]:
        if table.dtype == np.float16:
            if accumulate:
                t32 = _c(table, np.float32)
                _adv.scatter_rows(t32, rows, _c(vals, np.float32), True)
                _cpu.copy_into(table, t32)
            else:
                _adv.scatter_rows(table.view(np.uint16), rows, vals.view(np.uint16), False)
        else:
            _adv.scatter_rows(table, rows, vals, accumulate)
    nd = x.ndim
    perm = list(dims) + rest
    inv = [perm.index(i) for i in range(nd)]
    _cpu.copy_into(out, table.reshape([x.shape[d] for d in perm]).transpose(inv))
    return out


def _ref_index_put(x, values, *idx, dims, accumulate=False):
    r = x.copy()
    key = [slice(None)] * x.ndim
    for i, d in zip(idx, dims):
        key[d] = i
    if accumulate:
        np.add.at(r, tuple(key), values)
    else:
        r[tuple(key)] = values
    return r


register(OpDef("index", shape_rule=_index_shape, dtype_rule=_index_dtype, reference=_ref_index,
               impl={"cpu": _index_impl}, attrs=(("dims", None),), tags=frozenset({"index"}),
               doc="advanced indexing x[..., idx0, ..., idx1, ...] with int64 index tensors on `dims` (NumPy rules)"))
register(OpDef("index_put", shape_rule=_index_put_shape,
               dtype_rule=lambda x, v, *idx, dims, accumulate=False: _index_dtype(x, *idx, dims=dims),
               reference=_ref_index_put, impl={"cpu": _index_put_impl},
               attrs=(("dims", None), ("accumulate", False)), tags=frozenset({"index"}),
               doc="a copy of x with x[idx] = values (or += with accumulate, duplicates adding up)"))


# ---------------------------------------------------------------- along-dim ops

def _dim_of(op, shape, dim):
    return normalize_dim(op, dim, len(shape))


def _index_select_shape(xshape, ishape, dim):
    d = _dim_of("index_select", xshape, dim)
    if len(ishape) > 1:
        raise IndexError(f"index_select(): Index is supposed to be a vector (got shape {list(ishape)})")
    m = ishape[0] if ishape else 1
    if not xshape:
        return (m,) if ishape else ()
    return tuple(xshape[:d]) + (m,) + tuple(xshape[d + 1:])


def _index_select_impl(out, x, idx, dim):
    d = normalize_dim("index_select", dim, x.ndim)
    n = x.shape[d] if x.ndim else 1
    i = checked_indices("index_select", idx.reshape(-1), n, d)
    src = _three(_c(x), d)
    w = _work(out)
    if w.size:
        _ki.index_select(src, i, _three(w, d) if w.ndim else w.reshape(1, 1, 1))
    return _store(out, w)


def _gather_shape(xshape, ishape, dim):
    d = _dim_of("gather", xshape, dim)
    if len(ishape) != len(xshape) and (xshape or ishape):
        raise RuntimeError(f"gather(): Index tensor must have the same number of dimensions as input tensor "
                           f"(input {list(xshape)}, index {list(ishape)})")
    for k, (a, b) in enumerate(zip(xshape, ishape)):
        if k != d and b > a:
            raise RuntimeError(f"gather(): Size does not match at dimension {k} expected index {list(ishape)} to be "
                               f"smaller than self {list(xshape)} apart from dimension {d}")
    return tuple(ishape)


def _gather_impl(out, x, idx, dim):
    d = normalize_dim("gather", dim, x.ndim)
    if x.ndim == 0:
        checked_indices("gather", idx, 1, 0)
        _cpu.copy_into(out, x)
        return out
    n = x.shape[d]
    i = checked_indices("gather", idx, n, d)
    xs = x[tuple(slice(0, s) if k != d else slice(None) for k, s in enumerate(idx.shape))]
    src = _three(_c(xs), d)
    w = _work(out)
    if w.size:
        _ki.gather(src, _three(i, d), _three(w, d))
    return _store(out, w)


def _scatter_shape(xshape, ishape, sshape, dim, reduce=None, include_self=True):
    d = _dim_of("scatter", xshape, dim)
    if len(ishape) != len(xshape):
        raise RuntimeError(f"scatter(): Index tensor must have the same number of dimensions as self tensor "
                           f"(self {list(xshape)}, index {list(ishape)})")
    for k, (a, b) in enumerate(zip(xshape, ishape)):
        if k != d and b > a:
            raise RuntimeError(f"scatter(): Expected index {list(ishape)} to be smaller than self {list(xshape)} "
                               f"apart from dimension {d}")
    if sshape and len(sshape) == len(ishape):
        for k, (a, b) in enumerate(zip(sshape, ishape)):
            if b > a:
                raise RuntimeError(f"scatter(): Expected index {list(ishape)} to be smaller than src {list(sshape)}")
    return tuple(xshape)


_REDUCE = {None: None, "add": "sum", "sum": "sum", "multiply": "prod", "prod": "prod", "amax": "amax",
           "amin": "amin", "mean": "mean"}


def _scatter_impl(out, x, idx, src, dim, reduce=None, include_self=True):
    d = normalize_dim("scatter", dim, x.ndim)
    if reduce not in _REDUCE:
        raise RuntimeError(f"scatter(): reduce argument must be one of {sorted(k for k in _REDUCE if k)}, got {reduce!r}")
    n = x.shape[d] if x.ndim else 1
    i = checked_indices("scatter", idx, n, d)
    w = np.empty(out.shape, np.float32 if out.dtype == np.float16 else out.dtype)
    _cpu.copy_into(w, x)
    if isinstance(src, np.ndarray) and src.ndim:
        s = src[tuple(slice(0, e) for e in idx.shape)]
        s = _c(s, w.dtype)
    else:
        s = np.empty(idx.shape, w.dtype)
        _cpu.copy_into(s, np.asarray(src))
    if i.size:
        if x.ndim:
            # the kernels want (outer, n, inner) views whose outer/inner match the index extents
            sl = tuple(slice(0, e) if k != d else slice(None) for k, e in enumerate(idx.shape))
            sub = _c(w[sl])
            _run_scatter(_three(sub, d), _three(i, d), _three(s, d), _REDUCE[reduce], include_self)
            if sub.base is not w and sub is not w:
                _cpu.copy_into(w[sl], sub)
        else:
            _run_scatter(w.reshape(1, 1, 1), i.reshape(1, 1, 1), s.reshape(1, 1, 1), _REDUCE[reduce], include_self)
    return _store(out, w)


def _run_scatter(wt, it, st, reduce, include_self):
    if reduce is None:
        _ki.scatter(wt, it, st)
    else:
        _ki.scatter_reduce(wt, it, st, reduce, include_self)


def _ref_scatter(x, idx, src, dim, reduce=None, include_self=True):
    r = x.copy()
    s = np.broadcast_to(src, idx.shape) if np.ndim(src) == 0 else src[tuple(slice(0, e) for e in idx.shape)]
    it = np.nditer(idx, flags=["multi_index"])
    seen = set()
    for v in it:
        pos = list(it.multi_index)
        src_v = s[it.multi_index]
        pos[dim] = int(v)
        pos = tuple(pos)
        if reduce is None:
            r[pos] = src_v
        elif reduce in ("add", "sum"):
            if not include_self and pos not in seen:
                r[pos] = 0
            r[pos] += src_v
        elif reduce in ("multiply", "prod"):
            if not include_self and pos not in seen:
                r[pos] = 1
            r[pos] *= src_v
        elif reduce == "amax":
            r[pos] = src_v if (not include_self and pos not in seen) else max(r[pos], src_v)
        elif reduce == "amin":
            r[pos] = src_v if (not include_self and pos not in seen) else min(r[pos], src_v)
        seen.add(pos)
    return r


def _index_add_shape(xshape, ishape, sshape, dim, alpha=1):
    d = _dim_of("index_add", xshape, dim)
    if len(ishape) > 1:
        raise IndexError(f"index_add_(): Index is supposed to be a vector (got shape {list(ishape)})")
    want = tuple(xshape[:d]) + ((ishape[0] if ishape else 1),) + tuple(xshape[d + 1:])
    if tuple(sshape) != want and not (not xshape and not sshape):
        raise RuntimeError(f"index_add_(): Source/destination tensor must have same slice shapes: source "
                           f"{list(sshape)}, expected {list(want)}")
    return tuple(xshape)


def _index_add_impl(out, x, idx, src, dim, alpha=1):
    d = normalize_dim("index_add", dim, x.ndim)
    n = x.shape[d] if x.ndim else 1
    i = checked_indices("index_add", idx.reshape(-1), n, d)
    w = np.empty(out.shape, np.float32 if out.dtype == np.float16 else out.dtype)
    _cpu.copy_into(w, x)
    s = _c(src, w.dtype)
    if i.size:
        if x.ndim:
            _ki.index_add(_three(w, d), i, _three(s, d), alpha)
        else:
            _ki.index_add(w.reshape(1, 1, 1), i, s.reshape(1, 1, 1), alpha)
    return _store(out, w)


def _ref_index_add(x, idx, src, dim, alpha=1):
    r = x.copy()
    key = [slice(None)] * x.ndim
    key[dim] = idx
    np.add.at(r, tuple(key), np.asarray(src) * alpha)
    return r


def _take_impl(out, x, idx):
    i = checked_indices("take", idx, x.size)
    flat = _c(x).reshape(-1)
    w = _work(out)
    if w.size:
        _ki.gather_flat(flat, i.reshape(-1), w.reshape(-1))
    return _store(out, w)


for _rec in [
    OpDef("index_select", shape_rule=_index_select_shape,
          dtype_rule=lambda x, idx, dim: (_check_index_dtype("index_select", idx), x.dtype)[1],
          reference=lambda x, idx, dim: np.take(x, idx, axis=dim), impl={"cpu": _index_select_impl},
          attrs=(("dim", 0),), tags=frozenset({"index"}), doc="slices of x along dim picked by a 1-D index"),
    OpDef("gather", shape_rule=_gather_shape,
          dtype_rule=lambda x, idx, dim: (_check_index_dtype("gather", idx), x.dtype)[1],
          reference=lambda x, idx, dim: np.take_along_axis(x[tuple(slice(0, s) if k != dim else slice(None)
                                                                 for k, s in enumerate(idx.shape))], idx, dim),
          impl={"cpu": _gather_impl}, attrs=(("dim", 0),), tags=frozenset({"index"}),
          doc="out[i][j][k] = x[i][idx[i][j][k]][k] for dim 1 (torch.gather)"),
    OpDef("scatter", shape_rule=_scatter_shape,
          dtype_rule=lambda x, idx, src, dim, reduce=None, include_self=True: (
              _check_index_dtype("scatter", idx), x.dtype)[1],
          reference=_ref_scatter, impl={"cpu": _scatter_impl},
          attrs=(("dim", 0), ("reduce", None), ("include_self", True)), tags=frozenset({"index"}),
          doc="a copy of x with x[..idx..] = src (or combined with reduce: sum, prod, amax, amin, mean)"),
    OpDef("index_add", shape_rule=_index_add_shape,
          dtype_rule=lambda x, idx, src, dim, alpha=1: (_check_index_dtype("index_add", idx), x.dtype)[1],
          reference=_ref_index_add, impl={"cpu": _index_add_impl}, attrs=(("dim", 0), ("alpha", 1)),
          tags=frozenset({"index"}), doc="a copy of x with alpha * src added at idx along dim (duplicates add)"),
    OpDef("take", shape_rule=lambda xs, ishape: tuple(ishape),
          dtype_rule=lambda x, idx: (_check_index_dtype("take", idx), x.dtype)[1],
          reference=lambda x, idx: np.take(x.reshape(-1), idx), impl={"cpu": _take_impl},
          tags=frozenset({"index"}), doc="x.flatten()[idx], shaped like idx"),
]:
    register(_rec)


# ---------------------------------------------------------------- data-dependent shapes

def _masked_select_impl(out, x, mask):
    shape = broadcast_shapes("masked_select", x.shape, mask.shape)
    xb = _c(np.broadcast_to(x, shape))
    mb = _c(np.broadcast_to(mask, shape), np.bool_).reshape(-1)
    n = int(_ki.count_nonzero(mb))
    res = np.empty(n, xb.dtype)
    if n:
        _ki.masked_select(xb.reshape(-1), mb, res)
    if x.dtype == np.float16:
        r16 = np.empty(n, np.float16)
        _cpu.copy_into(r16, res)
        return r16
    return res


def _masked_select_dtype(x, mask):
    if mask.dtype is not D.bool_:
        raise RuntimeError(f"masked_select: expected BoolTensor for mask, got {mask.dtype.name}")
    return x.dtype


def _masked_scatter_impl(out, x, mask, source):
    mb = _c(np.broadcast_to(mask, x.shape), np.bool_).reshape(-1)
    n = int(_ki.count_nonzero(mb))
    src = _c(source, np.float32 if x.dtype == np.float16 else x.dtype).reshape(-1)
    if src.shape[0] < n:
        raise RuntimeError(f"masked_scatter: Number of elements of source < number of ones in mask "
                           f"({src.shape[0]} < {n})")
    w = np.empty(x.shape, src.dtype)
    _cpu.copy_into(w, x)
    if n:
        _ki.masked_scatter(w.reshape(-1), mb, src)
    return _store(out, w)


def _nonzero_impl(out, x):
    xc = _c(x, np.float32 if x.dtype == np.float16 else None)
    flat = xc.reshape(-1)
    n = int(_ki.count_nonzero(flat))
    res = np.empty((n, x.ndim), np.int64)
    if n and x.ndim:
        _ki.nonzero_coords(flat, np.array(x.shape, np.int64), res)
    return res


register(OpDef("masked_select", shape_rule=lambda xs, ms: None, dtype_rule=_masked_select_dtype,
               reference=lambda x, m: np.broadcast_to(x, np.broadcast_shapes(x.shape, m.shape))[
                   np.broadcast_to(m, np.broadcast_shapes(x.shape, m.shape))],
               impl={"cpu": _masked_select_impl}, tags=frozenset({"index", "dynamic_shape"}),
               doc="1-D tensor of the elements of x where mask (broadcast) is True"))
register(OpDef("masked_scatter", shape_rule=lambda xs, ms, ss: tuple(xs),
               dtype_rule=lambda x, m, s: _masked_select_dtype(x, m), reference=None,
               impl={"cpu": _masked_scatter_impl}, tags=frozenset({"index"}),
               doc="a copy of x with the True positions of mask filled from source in order"))
register(OpDef("nonzero", shape_rule=lambda xs: None, dtype_rule=lambda x: D.int64,
               reference=lambda x: np.argwhere(x).astype(np.int64), impl={"cpu": _nonzero_impl},
               tags=frozenset({"index", "dynamic_shape"}), doc="(count, ndim) coordinates of nonzeros, row-major"))


# ---------------------------------------------------------------- sorting and selection

def _rows_layout(x, d):
    """x with dim d last, as C-contiguous (rows, n); float16 viewed as uint16 bits sorts wrong, so f32."""
    xm = np.moveaxis(x, d, -1) if x.ndim else x.reshape(1)
    rows = _c(xm)
    return rows.reshape(-1, rows.shape[-1] if rows.ndim else 1), xm.shape


def _sort_shape(shape, dim=-1, descending=False, stable=True):
    normalize_dim("sort", dim, len(shape))
    return tuple(shape), tuple(shape)


def _sort_impl(outs, x, dim=-1, descending=False, stable=True):
    values, indices = outs
    d = normalize_dim("sort", dim, x.ndim)
    if x.size == 0:
        return values, indices
    rows, mshape = _rows_layout(x, d)
    v = np.empty(rows.shape, rows.dtype)
    i = np.empty(rows.shape, np.int64)
    _kso.sort(rows, v, i, descending)
    _cpu.copy_into(values, np.moveaxis(v.reshape(mshape), -1, d) if x.ndim else v.reshape(()))
    _cpu.copy_into(indices, np.moveaxis(i.reshape(mshape), -1, d) if x.ndim else i.reshape(()))
    return values, indices


def _topk_shape(shape, k, dim=-1, largest=True, sorted=True):
    d = normalize_dim("topk", dim, len(shape))
    n = shape[d] if shape else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk(): selected index k out of range (k={k}, size of dim {d} is {n})")
    s = tuple(shape[:d]) + (k,) + tuple(shape[d + 1:]) if shape else ()
    return s, s


def _topk_impl(outs, x, k, dim=-1, largest=True, sorted=True):
    values, indices = outs
    d = normalize_dim("topk", dim, x.ndim)
    if values.size == 0:
        return values, indices
    rows, mshape = _rows_layout(x, d)
    v = np.empty((rows.shape[0], k), rows.dtype)
    i = np.empty((rows.shape[0], k), np.int64)
    _kso.topk(rows, k, largest, v, i)
    oshape = tuple(mshape[:-1]) + (k,)
    _cpu.copy_into(values, np.moveaxis(v.reshape(oshape), -1, d) if x.ndim else v.reshape(()))
    _cpu.copy_into(indices, np.moveaxis(i.reshape(oshape), -1, d) if x.ndim else i.reshape(()))
    return values, indices


def _select_shape(op, need_k=False):
    def rule(shape, *args, dim=-1, keepdim=False, k=None):
        d = normalize_dim(op, dim, len(shape))
        n = shape[d] if shape else 1
        if n == 0:
            raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size.")
        if need_k and not 1 <= k <= n:
            raise RuntimeError(f"{op}(): selected number k out of range for dimension {d} (k={k}, size {n})")
        if not shape:
            return (), ()
        s = tuple(1 if i == d else v for i, v in enumerate(shape)) if keepdim else \
            tuple(v for i, v in enumerate(shape) if i != d)
        return s, s
    return rule


def _select_impl(kernel_name):
    def impl(outs, x, dim=-1, keepdim=False, k=None):
        values, indices = outs
        d = normalize_dim(kernel_name, dim, x.ndim)
        rows, mshape = _rows_layout(x, d)
        v = np.empty(rows.shape[0], rows.dtype)
        i = np.empty(rows.shape[0], np.int64)
        if kernel_name == "kthvalue":
            _kso.kthvalue(rows, k, v, i)
        else:
            getattr(_kso, kernel_name)(rows, v, i)
        _cpu.copy_into(values, v.reshape(values.shape))
        _cpu.copy_into(indices, i.reshape(indices.shape))
        return values, indices
    return impl


def _ref_sort(x, dim=-1, descending=False, stable=True):
    key = np.where(np.isnan(x), np.inf, x) if x.dtype.kind == "f" else x
    if descending:
        i = np.argsort(-key if x.dtype.kind in "fi" else ~key, axis=dim, kind="stable")
        if x.dtype.kind == "f":
            # NaN first when descending: argsort of the NaN-as-inf key handles it (-inf sorts first)
            pass
    else:
        i = np.argsort(key, axis=dim, kind="stable")
    return np.take_along_axis(x, i, dim), i.astype(np.int64)


_SEL_ATTRS = (("dim", -1), ("keepdim", False))
register(OpDef("sort", shape_rule=_sort_shape, dtype_rule=lambda x, **k: (x.dtype, D.int64), reference=_ref_sort,
               impl={"cpu": _sort_impl}, nout=2, attrs=(("dim", -1), ("descending", False), ("stable", True)),
               tags=frozenset({"sort"}), doc="stable sort along dim: (values, indices); NaN sorts as the largest"))
register(OpDef("topk", shape_rule=_topk_shape, dtype_rule=lambda x, **k: (x.dtype, D.int64),
               reference=lambda x, k, dim=-1, largest=True, sorted=True: tuple(
                   np.take(a, np.arange(k), axis=dim) for a in _ref_sort(x, dim, largest)),
               impl={"cpu": _topk_impl}, nout=2, attrs=(("k", 1), ("dim", -1), ("largest", True), ("sorted", True)),
               tags=frozenset({"sort"}), doc="the k largest (smallest) along dim, best first"))
register(OpDef("kthvalue", shape_rule=_select_shape("kthvalue", need_k=True),
               dtype_rule=lambda x, **k: (x.dtype, D.int64), reference=None, impl={"cpu": _select_impl("kthvalue")},
               nout=2, attrs=(("k", 1),) + _SEL_ATTRS, tags=frozenset({"sort"}), doc="k-th smallest along dim"))
register(OpDef("median_dim", shape_rule=_select_shape("median"), dtype_rule=lambda x, **k: (x.dtype, D.int64),
               reference=None, impl={"cpu": _select_impl("median")}, nout=2, attrs=_SEL_ATTRS,
               tags=frozenset({"sort"}), doc="lower median along dim (nan if the slice has one)"))
register(OpDef("nanmedian_dim", shape_rule=_select_shape("nanmedian"), dtype_rule=lambda x, **k: (x.dtype, D.int64),
               reference=None, impl={"cpu": _select_impl("nanmedian")}, nout=2, attrs=_SEL_ATTRS,
               tags=frozenset({"sort"}), doc="lower median of the non-nan values along dim"))
register(OpDef("mode_dim", shape_rule=_select_shape("mode"), dtype_rule=lambda x, **k: (x.dtype, D.int64),
               reference=None, impl={"cpu": _select_impl("mode")}, nout=2, attrs=_SEL_ATTRS,
               tags=frozenset({"sort"}), doc="most frequent value along dim (smallest on ties)"))


def _unique_impl(outs, x, sorted=True, return_inverse=False, return_counts=False):
    flat = _c(x).reshape(-1)
    n = flat.shape[0]
    v = np.empty(n, flat.dtype)
    perm = np.empty(n, np.int64)
    if n:
        _kso.sort(flat.reshape(1, n), v.reshape(1, n), perm.reshape(1, n), False)
    uv = np.empty(n, flat.dtype)
    inv = np.empty(n, np.int64)
    cnt = np.empty(n, np.int64)
    k = int(_kso.unique_sorted(v, perm, uv, inv, cnt)) if n else 0
    vals = uv[:k]
    if x.dtype == np.float16:
        v16 = np.empty(k, np.float16)
        _cpu.copy_into(v16, vals)
        vals = v16
    return vals.copy(), inv.reshape(x.shape), cnt[:k].copy()


register(OpDef("unique", shape_rule=lambda s, **k: None, dtype_rule=lambda x, **k: (x.dtype, D.int64, D.int64),
               reference=lambda x, **k: np.unique(x, return_inverse=True, return_counts=True),
               impl={"cpu": _unique_impl}, nout=3,
               attrs=(("sorted", True), ("return_inverse", False), ("return_counts", False)),
               tags=frozenset({"sort", "dynamic_shape"}), doc="sorted unique values, inverse indices and counts"))


def _ref_searchsorted(s, v, right=False):
    side = "right" if right else "left"
    if s.ndim <= 1:
        return np.searchsorted(s, v, side=side).astype(np.int64)
    s2, v2 = s.reshape(-1, s.shape[-1]), np.asarray(v).reshape(-1, np.shape(v)[-1])
    return np.stack([np.searchsorted(a, b, side=side) for a, b in zip(s2, v2)]).reshape(np.shape(v)).astype(np.int64)


def _searchsorted_shape(sshape, vshape, right=False):
    if len(sshape) > 1 and tuple(sshape[:-1]) != tuple(vshape[:-1]):
        raise RuntimeError(f"searchsorted(): boundaries tensor should be 1 dimension or the first N-1 dimensions of "
                           f"boundaries tensor and input value tensor must match (got {list(sshape)} and {list(vshape)})")
    return tuple(vshape)


def _searchsorted_impl(out, seq, values, right=False):
    s = _c(seq, np.float64 if seq.dtype.kind == "f" or values.dtype.kind == "f" else np.int64)
    v = _c(np.asarray(values), s.dtype)
    if out.size == 0:
        return out
    if s.ndim <= 1:
        _kso.searchsorted(s.reshape(1, -1), v.reshape(1, -1), right, out.reshape(1, -1))
    else:
        _kso.searchsorted(s.reshape(-1, s.shape[-1]), v.reshape(-1, v.shape[-1]), right, out.reshape(-1, v.shape[-1]))
    return out


register(OpDef("searchsorted", shape_rule=_searchsorted_shape, dtype_rule=lambda s, v, **k: D.int64,
               reference=_ref_searchsorted,
               impl={"cpu": _searchsorted_impl}, attrs=(("right", False),), tags=frozenset({"sort"}),
               doc="insertion points of values into the sorted last dim of seq"))


# ---------------------------------------------------------------- copies that move data

def _flip_impl(out, x, dims):
    cur = _c(x, x.dtype)
    for d in dims:
        nxt = np.empty(cur.shape, cur.dtype)
        src = cur.view(np.uint16) if cur.dtype == np.float16 else cur
        dst = nxt.view(np.uint16) if nxt.dtype == np.float16 else nxt
        _ks.flip(_three(src, d), _three(dst, d))
        cur = nxt
    _cpu.copy_into(out, cur)
    return out


def _roll_impl(out, x, shifts, dims):
    if not dims:
        flat = _c(x, x.dtype).reshape(-1)
        res = np.empty_like(flat)
        if flat.size:
            a, b = (flat.view(np.uint16), res.view(np.uint16)) if flat.dtype == np.float16 else (flat, res)
            _ks.roll(a.reshape(1, -1, 1), b.reshape(1, -1, 1), shifts[0] % flat.size)
        _cpu.copy_into(out, res.reshape(x.shape))
        return out
    cur = _c(x, x.dtype)
    for s, d in zip(shifts, dims):
        nxt = np.empty(cur.shape, cur.dtype)
        n = cur.shape[d]
        if n:
            a, b = (cur.view(np.uint16), nxt.view(np.uint16)) if cur.dtype == np.float16 else (cur, nxt)
            _ks.roll(_three(a, d), _three(b, d), s % n)
        cur = nxt
    _cpu.copy_into(out, cur)
    return out


def _roll_shape(shape, shifts, dims):
    if dims and len(shifts) != len(dims):
        raise RuntimeError(f"roll(): shifts and dimensions must align. shifts: {len(shifts)}, dims: {len(dims)}")
    for d in dims:
        normalize_dim("roll", d, len(shape))
    return tuple(shape)


def _repeat_interleave_impl(out, x, repeats, dim):
    d = normalize_dim("repeat_interleave", dim, x.ndim)
    n = x.shape[d]
    r = _c(np.broadcast_to(np.asarray(repeats), (n,)), np.int64)
    if r.size and int(_ki.index_bounds(r)[0]) < 0:
        raise RuntimeError("repeat_interleave: repeats can not be negative")
    total = int(r.sum()) if r.size else 0
    xc = _c(x, x.dtype)
    res = np.empty(tuple(x.shape[:d]) + (total,) + tuple(x.shape[d + 1:]), x.dtype)
    if res.size:
        a, b = (xc.view(np.uint16), res.view(np.uint16)) if xc.dtype == np.float16 else (xc, res)
        _ks.repeat_interleave(_three(a, d), r, _three(b, d))
    return res


def _tri_impl(kernel):
    def impl(out, x, diagonal=0):
        xc = _c(x, x.dtype)
        b = xc.reshape(-1, x.shape[-2], x.shape[-1])
        res = np.empty(b.shape, x.dtype)
        a, o = (b.view(np.uint16), res.view(np.uint16)) if x.dtype == np.float16 else (b, res)
        if res.size:
            kernel(a, diagonal, o)
        _cpu.copy_into(out, res.reshape(x.shape))
        return out
    return impl


def _tri_shape(op):
    def rule(shape, diagonal=0):
        if len(shape) < 2:
            raise RuntimeError(f"{op}: input tensor must have at least 2 dimensions (got shape {list(shape)})")
        return tuple(shape)
    return rule


register(OpDef("flip", shape_rule=lambda s, dims: (tuple(normalize_dim("flip", d, len(s)) for d in dims), tuple(s))[1],
               dtype_rule=lambda x, dims: x.dtype, reference=lambda x, dims: np.flip(x, dims).copy(),
               impl={"cpu": _flip_impl}, attrs=(("dims", ()),), tags=frozenset({"movement"}),
               doc="reverse the order along dims (a copy, as torch)"))
register(OpDef("roll", shape_rule=_roll_shape, dtype_rule=lambda x, **k: x.dtype,
               reference=lambda x, shifts, dims: np.roll(x, shifts if dims else shifts[0], dims if dims else None),
               impl={"cpu": _roll_impl}, attrs=(("shifts", ()), ("dims", ())), tags=frozenset({"movement"}),
               doc="rotate elements along dims (flattened when dims is empty)"))
register(OpDef("repeat_interleave", shape_rule=lambda xs, rs, dim: None,
               dtype_rule=lambda x, r, dim: x.dtype,
               reference=lambda x, r, dim: np.repeat(x, r, axis=dim), impl={"cpu": _repeat_interleave_impl},
               attrs=(("dim", 0),), tags=frozenset({"movement", "dynamic_shape"}),
               doc="repeat each slice along dim repeats[j] times"))
register(OpDef("tril", shape_rule=_tri_shape("tril"), dtype_rule=lambda x, **k: x.dtype,
               reference=lambda x, diagonal=0: np.tril(x, diagonal), impl={"cpu": _tri_impl(_ks.tril)},
               attrs=(("diagonal", 0),), tags=frozenset({"movement"}), doc="lower triangle of the last two dims"))
register(OpDef("triu", shape_rule=_tri_shape("triu"), dtype_rule=lambda x, **k: x.dtype,
               reference=lambda x, diagonal=0: np.triu(x, diagonal), impl={"cpu": _tri_impl(_ks.triu)},
               attrs=(("diagonal", 0),), tags=frozenset({"movement"}), doc="upper triangle of the last two dims"))


# ---------------------------------------------------------------------------------------------------------------
# Gradient rules (owned by autograd): rule(ctx, *grads) -> one gradient per input (None for index tensors),
# written with jitorch ops: a gather's gradient is a scatter-add into zeros and vice versa.
# ---------------------------------------------------------------------------------------------------------------
from ..autograd._vjp import call as _cl, register_vjps as _register_vjps, saves as _saves  # noqa: E402
from ..autograd._vjp import sum_to as _sum_to, zeros as _zeros  # noqa: E402


def _zero_scalar(like):
    return _zeros((), like.dtype, device=like.device)


def _pad_to(g, shape):
    """g (smaller in some dims) written into the leading corner of zeros of ``shape``."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    z = _zeros(shape, g.dtype, device=g.device)
    region = z
    for k, e in enumerate(g.shape):
        if e != shape[k]:
            region = _cl("slice", region, dim=k, start=0, stop=e, step=1)
    _cl_inplace("copy", region, g)
    return z


def _cl_inplace(name, target, *others, **attrs):
    from .._dispatch import call_inplace
    return call_inplace(name, target, *others, **attrs)


@_saves(*range(1, 64))
def _index_vjp(ctx, g):
    x, idx = ctx.inputs[0], ctx.inputs[1:]
    gx = _cl("index_put", _zeros(x.shape, x.dtype, device=g.device), g, *idx, dims=ctx.attrs["dims"], accumulate=True)
    return (gx,) + (None,) * len(idx)


@_saves(*range(2, 64))
def _index_put_vjp(ctx, g):
    x, v, idx = ctx.inputs[0], ctx.inputs[1], ctx.inputs[2:]
    nx, nv = ctx.needs_input_grad[:2]
    dims = ctx.attrs["dims"]
    gx = gv = None
    if nx:
        gx = g if ctx.attrs.get("accumulate", False) else _cl("index_put", g, _zero_scalar(g), *idx, dims=dims,
                                                               accumulate=False)
    if nv:
        gv = _sum_to(_cl("index", g, *idx, dims=dims), tuple(v.shape))
    return (gx, gv) + (None,) * len(idx)


@_saves(1)
def _index_select_vjp(ctx, g):
    x, idx = ctx.inputs
    d = ctx.attrs.get("dim", 0)
    if len(tuple(x.shape)) == 0:
        return _cl("sum", g, dim=(0,), keepdim=False) if g.ndim else g, None
    gi = idx if idx.ndim == 1 else idx.reshape(-1)
    return _cl("index_add", _zeros(x.shape, x.dtype, device=g.device), gi, g, dim=d, alpha=1), None


@_saves(1)
def _gather_vjp(ctx, g):
    x, idx = ctx.inputs
    return _cl("scatter", _zeros(x.shape, x.dtype, device=g.device), idx, g, dim=ctx.attrs.get("dim", 0), reduce="sum",
               include_self=True), None


@_saves(0, 1, 2, output=True)
def _scatter_vjp(ctx, g):
    x, idx, src = ctx.inputs
    out = ctx.outputs[0]
    a = ctx.attrs
    d, reduce, include_self = a.get("dim", 0), a.get("reduce"), a.get("include_self", True)
    nx, _, ns = ctx.needs_input_grad
    src_is_t = hasattr(src, "_data")
    gx = gs = None
    if reduce is None:
        if nx:
            gx = _cl("scatter", g, idx, _zero_scalar(g), dim=d, reduce=None, include_self=True)
        if ns and src_is_t:
            gs = _pad_to(_cl("gather", g, idx, dim=d), src.shape)
        return gx, None, gs
    if reduce in ("add", "sum"):
        if nx:
            gx = g if include_self else _cl("scatter", g, idx, _zero_scalar(g), dim=d, reduce=None, include_self=True)
        if ns and src_is_t:
            gs = _pad_to(_cl("gather", g, idx, dim=d), src.shape)
        return gx, None, gs
    if reduce == "mean":
        gn = _cl("div", g, _count(x, idx, d, include_self, g))
        if nx:
            gx = gn if include_self else _cl("scatter", g, idx, _zero_scalar(g), dim=d, reduce=None, include_self=True)
        if ns and src_is_t:
            gs = _pad_to(_cl("gather", gn, idx, dim=d), src.shape)
        return gx, None, gs
    if reduce in ("amax", "amin"):
        # torch: the gradient is shared evenly among the elements (self included) equal to the result
        srcv = _lead(src, idx.shape)
        hit_src = _cl("to_dtype", _cl("eq", srcv, _cl("gather", out, idx, dim=d)), dtype=g.dtype)
        hit_self = _cl("to_dtype", _cl("eq", x, out), dtype=g.dtype) if include_self else None
        cnt = _cl("scatter", hit_self if hit_self is not None else _zeros(tuple(x.shape), g.dtype,
                                                                             device=g.device), idx, hit_src,
                  dim=d, reduce="sum", include_self=True)
        gn = _cl("div", g, _cl("where", _cl("eq", cnt, 0), 1.0, cnt))
        if nx:
            if include_self:
                gx = _cl("mul", gn, hit_self)
            else:
                gx = _cl("scatter", g, idx, _zero_scalar(g), dim=d, reduce=None, include_self=True)
        if ns and src_is_t:
            gs = _pad_to(_cl("mul", _cl("gather", gn, idx, dim=d), hit_src), src.shape)
        return gx, None, gs
    # prod: d out / d self = out / self, d out / d src_j = out / src_j (inputs without zeros)
    srcv = _lead(src, idx.shape)
    if nx:
        gx = _cl("div", _cl("mul", g, out), x) if include_self else _cl(
            "scatter", g, idx, _zero_scalar(g), dim=d, reduce=None, include_self=True)
    if ns and src_is_t:
        gs = _pad_to(_cl("div", _cl("gather", _cl("mul", g, out), idx, dim=d), srcv), src.shape)
    return gx, None, gs


def _lead(src, shape):
    """src[:shape[0], :shape[1], ...] (scatter reads only that corner of src)."""
    r = src
    for k, e in enumerate(shape):
        if r.shape[k] != e:
            r = _cl("slice", r, dim=k, start=0, stop=e, step=1)
    return r


def _count(x, idx, d, include_self, g):
    from .._creation import ones, zeros
    base = ones(tuple(x.shape), dtype=g.dtype) if include_self else zeros(tuple(x.shape), dtype=g.dtype)
    n = _cl("scatter", base, idx, ones(tuple(idx.shape), dtype=g.dtype), dim=d, reduce="sum", include_self=True)
    return _cl("where", _cl("eq", n, 0), 1.0, n)


@_saves(1)
def _index_add_vjp(ctx, g):
    x, idx, src = ctx.inputs
    nx, _, ns = ctx.needs_input_grad
    d, alpha = ctx.attrs.get("dim", 0), ctx.attrs.get("alpha", 1)
    gs = None
    if ns:
        if len(tuple(x.shape)) == 0:
            gs = _cl("mul", g, alpha)
        else:
            gs = _cl("index_select", g, idx if idx.ndim == 1 else idx.reshape(-1), dim=d)
            if alpha != 1:
                gs = _cl("mul", gs, alpha)
            gs = gs.reshape(tuple(src.shape)) if tuple(gs.shape) != tuple(src.shape) else gs
    return (g if nx else None), None, gs


@_saves(1)
def _take_vjp(ctx, g):
    x, idx = ctx.inputs
    n = math.prod(tuple(x.shape))
    flat = _cl("index_put", _zeros((n,), x.dtype, device=g.device), g.reshape(-1), idx.reshape(-1), dims=(0,),
               accumulate=True)
    return flat.reshape(tuple(x.shape)), None


@_saves(1)
def _masked_select_vjp(ctx, g):
    x, mask = ctx.inputs
    shape = broadcast_shapes("masked_select", tuple(x.shape), tuple(mask.shape))
    full = _cl("masked_scatter", _zeros(shape, x.dtype, device=g.device), mask, g)
    return _sum_to(full, tuple(x.shape)), None


@_saves(1)
def _masked_scatter_vjp(ctx, g):
    x, mask, src = ctx.inputs
    nx, _, ns = ctx.needs_input_grad
    gx = _cl("where", mask, 0.0, g) if nx else None
    gs = None
    if ns:
        picked = _cl("masked_select", g, mask)
        n = math.prod(tuple(src.shape))
        flat = _pad_to(picked, (n,)) if picked.shape[0] != n else picked
        gs = flat.reshape(tuple(src.shape))
    return gx, None, gs


def _scatter_back(g, x, idx, d, keepdim=True):
    """Gradient of a (values, indices) selection along d: g put at the selected indices, zeros elsewhere."""
    if len(tuple(x.shape)) == 0:
        return g
    if not keepdim:
        g = _cl("unsqueeze", g, dim=d)
        idx = _cl("unsqueeze", idx, dim=d)
    return _cl("scatter", _zeros(tuple(x.shape), x.dtype, device=g.device), idx, g, dim=d, reduce="sum",
               include_self=True)


@_saves(output=True)
def _sort_vjp(ctx, g, g_idx=None):
    x = ctx.inputs[0]
    d = normalize_dim("sort", ctx.attrs.get("dim", -1), len(tuple(x.shape))) if tuple(x.shape) else 0
    return (_scatter_back(g, x, ctx.outputs[1], d),)


@_saves(output=True)
def _select_vjp(ctx, g, g_idx=None):
    x = ctx.inputs[0]
    d = normalize_dim("select", ctx.attrs.get("dim", -1), len(tuple(x.shape))) if tuple(x.shape) else 0
    return (_scatter_back(g, x, ctx.outputs[1], d, ctx.attrs.get("keepdim", False)),)


@_saves()
def _flip_vjp(ctx, g):
    return (_cl("flip", g, dims=ctx.attrs.get("dims", ())),)


@_saves()
def _roll_vjp(ctx, g):
    shifts = tuple(-s for s in ctx.attrs.get("shifts", ()))
    return (_cl("roll", g, shifts=shifts, dims=ctx.attrs.get("dims", ())),)


@_saves(1)
def _repeat_interleave_vjp(ctx, g):
    x, r = ctx.inputs
    d = ctx.attrs.get("dim", 0)
    shape = tuple(x.shape)
    if not shape:
        return _cl("sum", g, dim=(0,), keepdim=False), None
    d = normalize_dim("repeat_interleave", d, len(shape))
    from .._creation import arange
    owner = _cl("repeat_interleave", arange(shape[d], device=g.device), r, dim=0)
    return _cl("index_add", _zeros(shape, x.dtype, device=g.device), owner, g, dim=d, alpha=1), None


def _tri_vjp(name):
    @_saves()
    def rule(ctx, g):
        return (_cl(name, g, diagonal=ctx.attrs.get("diagonal", 0)),)
    return rule


VJPS = {
    "index": _index_vjp, "index_put": _index_put_vjp, "index_select": _index_select_vjp, "gather": _gather_vjp,
    "scatter": _scatter_vjp, "index_add": _index_add_vjp, "take": _take_vjp, "masked_select": _masked_select_vjp,
    "masked_scatter": _masked_scatter_vjp, "sort": _sort_vjp, "topk": _sort_vjp, "kthvalue": _select_vjp,
    "median_dim": _select_vjp, "nanmedian_dim": _select_vjp, "mode_dim": _select_vjp, "flip": _flip_vjp,
    "roll": _roll_vjp, "repeat_interleave": _repeat_interleave_vjp, "tril": _tri_vjp("tril"),
    "triu": _tri_vjp("triu"),
}
NON_DIFFERENTIABLE = ("nonzero", "unique", "searchsorted")

_register_vjps(VJPS, NON_DIFFERENTIABLE)

# impl["cuda"] of these records: jitorch/ops/_cuda.py (kernels in kernels/cuda/index.py)
from ._cuda import register_index as _register_cuda  # noqa: E402

_register_cuda()

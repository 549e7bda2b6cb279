"""Indexing kernels: gather/scatter along a dim, index_select/index_add, take, masked ops,
nonzero, flat gather/scatter for advanced indexing, embedding rows, bincount, one_hot.

Layouts: an op "along dim d" sees its operands as C-contiguous 3-D views
``(outer, n, inner)``: outer = prod(shape[:d]), n = shape[d], inner = prod(shape[d+1:]).
Indices are int64 and already validated and normalized to ``[0, n)`` by the caller
(``index_bounds`` and ``wrap_indices`` below make that check cheap); numba does not check
bounds, so an unchecked index reads or writes out of bounds. Outputs are allocated by the
caller and never overlap inputs unless a docstring says so.

Writes through duplicate indices happen in index order: for plain assignment the last
write wins (torch leaves that unspecified); reductions combine every value, serially, so
results are deterministic. Of the kernels that write through indices only ``index_add``
has a parallel twin, over slices that cannot collide (outer rows and blocks of the inner
axis); the gathers (``gather``, ``index_select``/``index_rows``, ``gather_flat``) have one
too. Public names that choose between a serial kernel and its ``prange`` twin (above
PARALLEL_THRESHOLD) are small Python functions; the others are the njit kernels themselves.
"""
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from ._config import NJIT, NJIT_PARALLEL, PARALLEL_THRESHOLD

# numba accepts fastmath only as a bool, set or dict, not the frozenset _config holds.
_NJIT = dict(NJIT, fastmath=set(NJIT["fastmath"]))
_NJIT_PAR = dict(NJIT_PARALLEL, fastmath=set(NJIT_PARALLEL["fastmath"]))
# helpers called only from other kernels: no Python entry point (about 10% less compile time)
_HELPER = dict(_NJIT, no_cpython_wrapper=True, no_cfunc_wrapper=True)

#: Inner-axis elements per parallel task in the scatter-like kernels.
_INNER_BLOCK = 256

#: Reduction codes for ``scatter_reduce`` (torch's ``reduce=`` strings map onto them).
REDUCE_SUM, REDUCE_PROD, REDUCE_AMAX, REDUCE_AMIN, REDUCE_MEAN = 0, 1, 2, 3, 4
REDUCE_CODES = {"sum": REDUCE_SUM, "add": REDUCE_SUM, "prod": REDUCE_PROD,
                "multiply": REDUCE_PROD, "amax": REDUCE_AMAX, "amin": REDUCE_AMIN,
                "mean": REDUCE_MEAN}


def _use_par(size, tasks):
    return size >= PARALLEL_THRESHOLD and tasks > 1


# --------------------------------------------------------------------------------------
# index validation helpers
# --------------------------------------------------------------------------------------

@njit(**_NJIT)
def index_bounds(idx):
    """(min, max) of a 1-D int64 array in one pass; ``(0, -1)`` when it is empty.

    The caller raises IndexError when ``min < -n or max >= n`` before running a kernel.
    """
    n = idx.shape[0]
    if n == 0:
        return 0, -1
    lo = idx[0]
    hi = idx[0]
    for i in range(1, n):
        v = idx[i]
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


@njit(**_NJIT)
def wrap_indices(idx, n, out):
    """out[i] = idx[i] + n where idx[i] < 0, else idx[i]. Writes ``out`` (may be ``idx``).

    ``idx``, ``out``: 1-D int64 of the same length, values already in ``[-n, n)``.
    """
    for i in range(idx.shape[0]):
        v = idx[i]
        out[i] = v + n if v < 0 else v


# --------------------------------------------------------------------------------------
# gather / scatter along a dim
# --------------------------------------------------------------------------------------

@njit(**_HELPER)
def _gather_rows(src, idx, out, t0, t1):
    m, inner = idx.shape[1], idx.shape[2]
    for t in range(t0, t1):
        a = t // m
        j = t - a * m
        for b in range(inner):
            out[a, j, b] = src[a, idx[a, j, b], b]


@njit(**_NJIT)
def gather_serial(src, idx, out):
    _gather_rows(src, idx, out, 0, idx.shape[0] * idx.shape[1])


@njit(**_NJIT_PAR)
def gather_par(src, idx, out):
    rows = idx.shape[0] * idx.shape[1]
    chunk = 256
    for c in prange((rows + chunk - 1) // chunk):
        _gather_rows(src, idx, out, c * chunk, min(c * chunk + chunk, rows))


def gather(src, idx, out):
    """out[a, j, b] = src[a, idx[a, j, b], b] (torch.gather). Writes ``out``.

    ``src``: (outer, n, inner); ``idx``: (outer, m, inner) int64 in [0, n); ``out``:
    (outer, m, inner), src's dtype. The caller slices ``src`` to idx's outer/inner extents.
    """
    if _use_par(out.size, idx.shape[0] * idx.shape[1]):
        gather_par(src, idx, out)
    else:
        gather_serial(src, idx, out)


@njit(**_NJIT)
def scatter(out, idx, src):
    """out[a, idx[a, j, b], b] = src[a, j, b] (torch.scatter_). Writes ``out`` in place.

    ``out``: (outer, n, inner), already holding the destination; ``idx``: (outer, m, inner)
    int64 in [0, n); ``src``: (outer, m, inner), out's dtype (for a scalar source pass
    ``np.broadcast_to`` of a one-element array: any strides work). Duplicates: the last
    j wins. Serial.
    """
    outer, m, inner = idx.shape
    for a in range(outer):
        for j in range(m):
            for b in range(inner):
                out[a, idx[a, j, b], b] = src[a, j, b]


def _mean_div(total, count):
    raise NotImplementedError  # numba only; see the overload


@overload(_mean_div)
def _mean_div_impl(total, count):
    if isinstance(total, types.Integer):
        # torch floors integer means (floor division); computed in int64
        return lambda total, count: np.int64(total) // count
    return lambda total, count: total / count


@njit(**_NJIT)
def scatter_reduce_code(out, idx, src, reduce, include_self):
    """``scatter_reduce`` with ``reduce`` as an int code (REDUCE_SUM, ...)."""
    outer, m, inner = idx.shape
    # per-position hit counts: for the mean, and to drop the old value (include_self=False)
    need = reduce == REDUCE_MEAN or not include_self
    counts = np.zeros((outer, out.shape[1] if need else 0, inner), np.int64)
    for a in range(outer):
        for j in range(m):
            for b in range(inner):
                p = idx[a, j, b]
                v = src[a, j, b]
                if need:
                    first = counts[a, p, b] == 0
                    counts[a, p, b] += 1
                    if first and not include_self:
                        out[a, p, b] = v
                        continue
                if reduce == REDUCE_SUM or reduce == REDUCE_MEAN:
                    out[a, p, b] += v
                elif reduce == REDUCE_PROD:
                    out[a, p, b] *= v
                elif reduce == REDUCE_AMAX:
                    if v > out[a, p, b] or v != v:  # NaN propagates, as torch
                        out[a, p, b] = v
                else:
                    if v < out[a, p, b] or v != v:
                        out[a, p, b] = v
    if reduce == REDUCE_MEAN:
        extra = 1 if include_self else 0
        for a in range(outer):
            for p in range(out.shape[1]):
                for b in range(inner):
                    c = counts[a, p, b]
                    if c > 0:
                        out[a, p, b] = _mean_div(out[a, p, b], c + extra)


def scatter_reduce(out, idx, src, reduce, include_self=True):
    """torch.scatter_reduce_ along the middle axis. Writes ``out`` in place.

    Layout as ``scatter``. ``reduce``: one of ``REDUCE_CODES``' keys ('sum'/'add',
    'prod'/'multiply', 'amax', 'amin', 'mean') or its int code. ``include_self=False``
    ignores the old value of every position that receives at least one source value.
    Sums and products accumulate in out's dtype (integers wrap, bool saturates); amax/amin
    propagate NaN; an integer mean floors, as torch. Duplicate indices combine in index
    order, serially (bitwise reproducible).
    """
    code = REDUCE_CODES[reduce] if isinstance(reduce, str) else int(reduce)
    scatter_reduce_code(out, idx, src, code, include_self)


def scatter_add(out, idx, src):
    """torch.scatter_add_: ``scatter_reduce(out, idx, src, 'sum')``."""
    scatter_reduce(out, idx, src, REDUCE_SUM, True)


# --------------------------------------------------------------------------------------
# index_select / index_add with one index vector
# --------------------------------------------------------------------------------------

@njit(**_HELPER)
def _index_select_rows(src, idx, out, t0, t1):
    m, inner = out.shape[1], out.shape[2]
    for t in range(t0, t1):
        a = t // m
        j = t - a * m
        r = idx[j]
        for b in range(inner):
            out[a, j, b] = src[a, r, b]


@njit(**_NJIT)
def index_select_serial(src, idx, out):
    _index_select_rows(src, idx, out, 0, out.shape[0] * out.shape[1])


@njit(**_NJIT_PAR)
def index_select_par(src, idx, out):
    rows = out.shape[0] * out.shape[1]
    chunk = max(1, 4096 // max(1, out.shape[2]))
    for c in prange((rows + chunk - 1) // chunk):
        _index_select_rows(src, idx, out, c * chunk, min(c * chunk + chunk, rows))


def index_select(src, idx, out):
    """out[a, j, b] = src[a, idx[j], b] (torch.index_select). Writes ``out``.

    ``src``: (outer, n, inner); ``idx``: (m,) int64 in [0, n); ``out``: (outer, m, inner),
    src's dtype.
    """
    if _use_par(out.size, out.shape[0] * out.shape[1]):
        index_select_par(src, idx, out)
    else:
        index_select_serial(src, idx, out)


@njit(**_HELPER)
def _index_add_block(out, idx, src, alpha, a0, a1, b0, b1):
    m = idx.shape[0]
    for a in range(a0, a1):
        for j in range(m):
            r = idx[j]
            for b in range(b0, b1):
                out[a, r, b] += alpha * src[a, j, b]


@njit(**_NJIT)
def index_add_serial(out, idx, src, alpha):
    _index_add_block(out, idx, src, alpha, 0, out.shape[0], 0, out.shape[2])


@njit(**_NJIT_PAR)
def index_add_par(out, idx, src, alpha):
    outer, inner = out.shape[0], out.shape[2]
    blocks = (inner + _INNER_BLOCK - 1) // _INNER_BLOCK
    for t in prange(outer * blocks):
        a = t // blocks
        b0 = (t - a * blocks) * _INNER_BLOCK
        _index_add_block(out, idx, src, alpha, a, a + 1, b0, min(b0 + _INNER_BLOCK, inner))


def index_add(out, idx, src, alpha=1):
    """out[a, idx[j], b] += alpha * src[a, j, b] (torch.index_add_). Writes ``out`` in place.

    ``out``: (outer, n, inner); ``idx``: (m,) int64 in [0, n), duplicates accumulate in
    order; ``src``: (outer, m, inner), out's dtype. ``alpha``: pass an int for integer
    ``out`` (a float alpha computes in float64 and truncates on store).
    """
    blocks = (out.shape[2] + _INNER_BLOCK - 1) // _INNER_BLOCK
    if _use_par(src.size, out.shape[0] * blocks):
        index_add_par(out, idx, src, alpha)
    else:
        index_add_serial(out, idx, src, alpha)


# --------------------------------------------------------------------------------------
# embedding rows
# --------------------------------------------------------------------------------------

def index_rows(table, idx, out):
    """out[i, :] = table[idx[i], :] (embedding lookup). Writes ``out``.

    ``table``: (V, D) C-contiguous; ``idx``: (N,) int64 in [0, V); ``out``: (N, D), table's
    dtype. This is ``index_select`` with outer = 1 (parallel over N above
    PARALLEL_THRESHOLD output elements); the backward pass is ``index_add`` with outer = 1.
    """
    index_select(table.reshape(1, table.shape[0], table.shape[1]), idx,
                 out.reshape(1, out.shape[0], out.shape[1]))


# --------------------------------------------------------------------------------------
# flat gather / scatter: take, advanced indexing (index_put)
# --------------------------------------------------------------------------------------

@njit(**_NJIT)
def gather_flat_serial(src, flat_idx, out):
    for i in range(flat_idx.shape[0]):
        out[i] = src[flat_idx[i]]


@njit(**_NJIT_PAR)
def gather_flat_par(src, flat_idx, out):
    for i in prange(flat_idx.shape[0]):
        out[i] = src[flat_idx[i]]


def gather_flat(src, flat_idx, out):
    """out[i] = src[flat_idx[i]]. Writes ``out``.

    ``src``: 1-D (any strides); ``flat_idx``: (k,) int64 offsets into ``src``, in range;
    ``out``: (k,), src's dtype. Also torch.take (``src`` = the flattened input).
    """
    if flat_idx.shape[0] >= PARALLEL_THRESHOLD:
        gather_flat_par(src, flat_idx, out)
    else:
        gather_flat_serial(src, flat_idx, out)


take = gather_flat


@njit(**_NJIT)
def scatter_flat(dst, flat_idx, vals, accumulate):
    """dst[flat_idx[i]] = vals[i], or ``+=`` when ``accumulate``. Writes ``dst`` in place.

    ``dst``: 1-D (any strides); ``flat_idx``: (k,) int64 offsets into ``dst``, in range;
    ``vals``: (k,), dst's dtype (broadcast by the caller; zero strides are fine).
    Serial, in index order: duplicates accumulate exactly (``accumulate=True``), and for
    plain assignment the last one wins. This is index_put_ / setitem with index arrays.
    """
    if accumulate:
        for i in range(flat_idx.shape[0]):
            dst[flat_idx[i]] += vals[i]
    else:
        for i in range(flat_idx.shape[0]):
            dst[flat_idx[i]] = vals[i]


@njit(**_NJIT)
def linear_offsets(idx, strides, out):
    """out[j] = sum_k idx[k, j] * strides[k]. Writes ``out``.

    ``idx``: (k, count) int64, one row per indexed dim (broadcast and normalized by the
    caller); ``strides``: (k,) int64, element strides of those dims; ``out``: (count,)
    int64. The caller adds the base offset of the remaining dims.
    """
    k, count = idx.shape
    for j in range(count):
        out[j] = 0
    for d in range(k):
        s = strides[d]
        for j in range(count):
            out[j] += idx[d, j] * s


# --------------------------------------------------------------------------------------
# masks and nonzero (1-D, contiguous)
# --------------------------------------------------------------------------------------

@njit(**_NJIT)
def count_nonzero(x):
    """Number of elements of the 1-D ``x`` (any dtype) that are ``!= 0``; NaN counts."""
    c = 0
    for i in range(x.shape[0]):
        if x[i] != 0:
            c += 1
    return c


count_true = count_nonzero


@njit(**_NJIT)
def masked_select(src, mask, out):
    """out = src[mask]. Writes ``out``.

    ``src``: (n,); ``mask``: (n,) bool (broadcast by the caller); ``out``:
    (count_true(mask),), src's dtype. Serial.
    """
    k = 0
    for i in range(src.shape[0]):
        if mask[i]:
            out[k] = src[i]
            k += 1


@njit(**_NJIT)
def masked_scatter(dst, mask, source):
    """dst[mask] = source[:count_true(mask)], in order. Writes ``dst`` in place.

    ``dst``: (n,); ``mask``: (n,) bool; ``source``: 1-D with at least count_true(mask)
    elements, dst's dtype. Serial.
    """
    k = 0
    for i in range(dst.shape[0]):
        if mask[i]:
            dst[i] = source[k]
            k += 1


@njit(**_NJIT)
def masked_fill(dst, mask, value):
    """dst[mask] = value. Writes ``dst`` in place.

    ``dst``: (n,), any strides; ``mask``: (n,) bool, broadcast to dst's shape by the caller;
    ``value``: scalar, cast on store (pass an int for integer ``dst``). Serial: one thread
    already streams at memory speed here.
    """
    for i in range(dst.shape[0]):
        if mask[i]:
            dst[i] = value


@njit(**_NJIT)
def nonzero_coords(x, shape, out):
    """Row-major coordinates of the nonzero elements (torch.nonzero). Writes ``out``.

    ``x``: the flattened (C order) input, 1-D, any dtype (NaN is nonzero); ``shape``:
    (ndim,) int64, the input's shape (ndim may be 0); ``out``: (count_nonzero(x), ndim)
    int64.
    """
    nd = shape.shape[0]
    coord = np.zeros(nd, np.int64)
    k = 0
    for i in range(x.shape[0]):
        if x[i] != 0:
            for d in range(nd):
                out[k, d] = coord[d]
            k += 1
        # odometer: advance the row-major coordinate of element i + 1
        d = nd - 1
        while d >= 0:
            coord[d] += 1
            if coord[d] < shape[d]:
                break
            coord[d] = 0
            d -= 1


# --------------------------------------------------------------------------------------
# counting
# --------------------------------------------------------------------------------------

@njit(**_NJIT)
def bincount(x, out):
    """out[v] += 1 for every v in ``x``. Writes ``out`` (int64, zeroed by the caller,
    length > max(x)); ``x``: 1-D int64, all >= 0."""
    for i in range(x.shape[0]):
        out[x[i]] += 1


@njit(**_NJIT)
def bincount_weighted(x, weights, out):
    """out[x[i]] += weights[i]. Writes ``out`` (zeroed by the caller; float64 as torch,
    or weights' dtype); ``x``: 1-D int64 >= 0; ``weights``: same length."""
    for i in range(x.shape[0]):
        out[x[i]] += weights[i]


@njit(**_NJIT)
def one_hot(idx, out):
    """out[i, :] = 0 and out[i, idx[i]] = 1. Writes all of ``out``.

    ``idx``: (N,) int64 in [0, C); ``out``: (N, C), any dtype (torch: int64).
    """
    n, c = out.shape
    for i in range(n):
        for j in range(c):
            out[i, j] = 0
        out[i, idx[i]] = 1

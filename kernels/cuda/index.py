"""CUDA indexing kernels: gather/scatter along a dim, index_select/index_add, row tables for advanced
indexing (index / index_put), take, masked select/scatter and nonzero.

Arrays are C-contiguous device arrays; along-dim ops use (outer, n, inner) views as the CPU kernels do.
Index arrays are int64 and already wrapped into [0, n): run :func:`wrap_check` first (the one place that
validates device indices; it reads one int64 back to the host to raise the IndexError).
Accumulating ops use ``cuda.atomic`` (int32/int64/uint32/uint64/float32/float64 targets): the result of
duplicate float indices is the exact sum in some order, so bits may differ from run to run, as on torch.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import cuda

from ._sizes import BLOCK, cdiv, kernel, unravel3
from .reduce import cumsum, full

__all__ = ["wrap_check", "index_select", "gather", "scatter", "scatter_reduce", "index_add", "take",
           "flat_rows", "index_rows", "scatter_rows", "exclusive_ranks", "masked_select", "masked_scatter",
           "nonzero", "tri", "ATOMIC_DTYPES"]

#: dtypes that accumulating kernels (scatter_reduce, index_add, scatter_rows with accumulate) accept
ATOMIC_DTYPES = frozenset(np.dtype(t) for t in (np.int32, np.int64, np.uint32, np.uint64, np.float32, np.float64))


def _grid(n, block):
    return max(1, cdiv(n, block)), block


# ------------------------------------------------------------------ validation

@kernel
def _wrap_check_k(idx, n, out, bad):
    i = cuda.grid(1)
    if i < idx.shape[0]:
        v = idx[i]
        if v < 0:
            v += n
        if v < 0 or v >= n:
            cuda.atomic.min(bad, 0, i)
            out[i] = 0
        else:
            out[i] = v


def wrap_check(idx_flat, n, out_flat, *, block=BLOCK):
    """out_flat (int64) = idx_flat with negatives wrapped by n; returns the first out-of-range position, or -1.

    Out-of-range entries are written as 0 so that a caller that ignores the result still cannot fault."""
    m = idx_flat.shape[0]
    if m == 0:
        return -1
    bad = full(1, m, np.int64)
    _wrap_check_k[_grid(m, block)](idx_flat, np.int64(n), out_flat, bad)
    b = int(bad.copy_to_host()[0])
    return -1 if b >= m else b


# ------------------------------------------------------------------ along a dim

@kernel
def _index_select_k(src, idx, out):
    i = cuda.grid(1)
    O, M, I = out.shape
    if i < O * M * I:
        p, j, q = unravel3(i, M, I)
        out[p, j, q] = src[p, idx[j], q]


def index_select(src3, idx, out3, *, block=BLOCK):
    """out3[p, j, q] = src3[p, idx[j], q]; src3 (outer, n, inner), idx (m,), out3 (outer, m, inner)."""
    if out3.size:
        _index_select_k[_grid(out3.size, block)](src3, idx, out3)
    return out3


@kernel
def _gather_k(src, idx, out):
    i = cuda.grid(1)
    O, M, I = out.shape
    if i < O * M * I:
        p, j, q = unravel3(i, M, I)
        out[p, j, q] = src[p, idx[p, j, q], q]


def gather(src3, idx3, out3, *, block=BLOCK):
    """out3[p, j, q] = src3[p, idx3[p, j, q], q]; idx3 and out3 (outer, m, inner), src3 (outer, n, inner)."""
    if out3.size:
        _gather_k[_grid(out3.size, block)](src3, idx3, out3)
    return out3


@kernel
def _scatter_k(w, idx, src):
    i = cuda.grid(1)
    O, M, I = idx.shape
    if i < O * M * I:
        p, j, q = unravel3(i, M, I)
        w[p, idx[p, j, q], q] = src[p, j, q]


def scatter(w3, idx3, src3, *, block=BLOCK):
    """w3[p, idx3[p, j, q], q] = src3[p, j, q] (which duplicate wins is unspecified, as on torch's GPU)."""
    if idx3.size:
        _scatter_k[_grid(idx3.size, block)](w3, idx3, src3)
    return w3


_SUM, _AMAX, _AMIN, _MEAN = 0, 1, 2, 3
_RED = {"sum": _SUM, "amax": _AMAX, "amin": _AMIN, "mean": _MEAN}


@kernel
def _scatter_init_k(w, idx, ident):
    i = cuda.grid(1)
    O, M, I = idx.shape
    if i < O * M * I:
        p, j, q = unravel3(i, M, I)
        w[p, idx[p, j, q], q] = ident


@kernel
def _scatter_reduce_k(w, idx, src, op, counts):
    i = cuda.grid(1)
    O, M, I = idx.shape
    if i < O * M * I:
        p, j, q = unravel3(i, M, I)
        t = idx[p, j, q]
        v = src[p, j, q]
        if op == 0 or op == 3:
            cuda.atomic.add(w, (p, t, q), v)
            if op == 3:
                cuda.atomic.add(counts, (p, t, q), 1)
        elif op == 1:
            cuda.atomic.max(w, (p, t, q), v)
        else:
            cuda.atomic.min(w, (p, t, q), v)


@kernel
def _mean_finish_k(w, counts, include_self):
    i = cuda.grid(1)
    O, N, I = w.shape
    if i < O * N * I:
        p, j, q = unravel3(i, N, I)
        c = counts[p, j, q]
        if c > 0:
            d = c + 1 if include_self else c
            w[p, j, q] = w[p, j, q] / d


def scatter_reduce(w3, idx3, src3, reduce, include_self=True, *, block=BLOCK):
    """w3[p, idx3[p, j, q], q] (op)= src3[p, j, q] for reduce in sum/amax/amin/mean, with atomics.

    include_self=False: touched positions start from the reduction's identity (mean: from the sources only).
    w3's dtype must be in ATOMIC_DTYPES; integer mean divides with floor as torch does."""
    op = _RED[reduce]
    dt = np.dtype(w3.dtype)
    if idx3.size == 0:
        return w3
    g = _grid(idx3.size, block)
    if not include_self:
        if op in (_SUM, _MEAN):
            ident = dt.type(0)
        elif dt.kind == "f":
            ident = dt.type(-np.inf if op == _AMAX else np.inf)
        else:
            info = np.iinfo(dt)
            ident = dt.type(info.min if op == _AMAX else info.max)
        _scatter_init_k[g](w3, idx3, ident)
    counts = full(w3.shape if op == _MEAN else (1, 1, 1), 0, np.int64)
    _scatter_reduce_k[g](w3, idx3, src3, np.int64(op), counts)
    if op == _MEAN:
        if dt.kind == "f":
            _mean_finish_k[_grid(w3.size, block)](w3, counts, bool(include_self))
        else:
            _mean_finish_int_k[_grid(w3.size, block)](w3, counts, bool(include_self))
    return w3


@kernel
def _mean_finish_int_k(w, counts, include_self):
    i = cuda.grid(1)
    O, N, I = w.shape
    if i < O * N * I:
        p, j, q = unravel3(i, N, I)
        c = counts[p, j, q]
        if c > 0:
            d = c + 1 if include_self else c
            w[p, j, q] = w[p, j, q] // d


@kernel
def _index_add_k(w, idx, src, alpha):
    i = cuda.grid(1)
    O, M, I = src.shape
    if i < O * M * I:
        p, j, q = unravel3(i, M, I)
        cuda.atomic.add(w, (p, idx[j], q), src[p, j, q] * alpha)


def index_add(w3, idx, src3, alpha=1, *, block=BLOCK):
    """w3[p, idx[j], q] += alpha * src3[p, j, q] (atomics; w3's dtype in ATOMIC_DTYPES)."""
    if src3.size:
        _index_add_k[_grid(src3.size, block)](w3, idx, src3, np.dtype(w3.dtype).type(alpha))
    return w3


@kernel
def _take_k(flat, idx, out):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = flat[idx[i]]


def take(flat, idx_flat, out_flat, *, block=BLOCK):
    """out_flat[i] = flat[idx_flat[i]]."""
    if out_flat.shape[0]:
        _take_k[_grid(out_flat.shape[0], block)](flat, idx_flat, out_flat)
    return out_flat


# ------------------------------------------------------------------ row tables (advanced indexing)

@kernel
def _flat_rows_k(stacked, sizes, rows):
    i = cuda.grid(1)
    if i < rows.shape[0]:
        r = 0
        for k in range(stacked.shape[0]):
            r = r * sizes[k] + stacked[k, i]
        rows[i] = r


def flat_rows(stacked, sizes, rows, *, block=BLOCK):
    """rows[i] = row-major flat position of (stacked[0, i], stacked[1, i], ...) in a table of ``sizes``."""
    if rows.shape[0]:
        _flat_rows_k[_grid(rows.shape[0], block)](stacked, sizes, rows)
    return rows


@kernel
def _index_rows_k(table, rows, out):
    i = cuda.grid(1)
    R, D = out.shape
    if i < R * D:
        c = i % D
        r = i // D
        out[r, c] = table[rows[r], c]


def index_rows(table, rows, out, *, block=BLOCK):
    """out (R, D)[r] = table (V, D)[rows[r]] (embedding lookup, x[idx])."""
    if out.size:
        _index_rows_k[_grid(out.size, block)](table, rows, out)
    return out


@kernel
def _scatter_rows_k(table, rows, vals, accumulate):
    i = cuda.grid(1)
    R, D = vals.shape
    if i < R * D:
        c = i % D
        r = i // D
        if accumulate:
            cuda.atomic.add(table, (rows[r], c), vals[r, c])
        else:
            table[rows[r], c] = vals[r, c]


def scatter_rows(table, rows, vals, accumulate=False, *, block=BLOCK):
    """table[rows[r]] = vals[r] (or += with accumulate, atomics: duplicates add up)."""
    if vals.size:
        _scatter_rows_k[_grid(vals.size, block)](table, rows, vals, bool(accumulate))
    return table


# ------------------------------------------------------------------ masks and nonzero (scan + scatter)

@kernel
def _nz_k(x, flags):
    i = cuda.grid(1)
    if i < x.shape[0]:
        flags[i] = 1 if x[i] != 0 else 0


def exclusive_ranks(mask_flat, ranks, *, block=BLOCK):
    """ranks (int64, size + 1): ranks[i] = number of nonzeros of mask_flat before i; ranks[size] = total.

    Returns the total (read back to the host: the size of a data-dependent output)."""
    n = mask_flat.shape[0]
    flags = cuda.device_array(n + 1, np.int64)
    _zero_first_k[1, 1](flags)
    if n:
        _nz_k[_grid(n, block)](mask_flat, flags[1:])
    cumsum(flags.reshape(1, n + 1, 1), ranks.reshape(1, n + 1, 1), block=block)
    return int(ranks[n:].copy_to_host()[0])


@kernel
def _zero_first_k(a):
    a[0] = 0


@kernel
def _masked_select_k(x, mask, ranks, out):
    i = cuda.grid(1)
    if i < x.shape[0]:
        if mask[i] != 0:
            out[ranks[i]] = x[i]


def masked_select(x_flat, mask_flat, ranks, out_flat, *, block=BLOCK):
    """out_flat[ranks[i]] = x_flat[i] where mask_flat[i] (x and mask already broadcast to one size)."""
    if x_flat.shape[0]:
        _masked_select_k[_grid(x_flat.shape[0], block)](x_flat, mask_flat, ranks, out_flat)
    return out_flat


@kernel
def _masked_scatter_k(w, mask, ranks, src):
    i = cuda.grid(1)
    if i < w.shape[0]:
        if mask[i] != 0:
            w[i] = src[ranks[i]]


def masked_scatter(w_flat, mask_flat, ranks, src_flat, *, block=BLOCK):
    """w_flat[i] = src_flat[ranks[i]] where mask_flat[i] (the caller checks src has enough elements)."""
    if w_flat.shape[0]:
        _masked_scatter_k[_grid(w_flat.shape[0], block)](w_flat, mask_flat, ranks, src_flat)
    return w_flat


@lru_cache(maxsize=None)
def _nonzero_kernel(nd):
    @kernel
    def k(x, ranks, shape, out):
        i = cuda.grid(1)
        if i < x.shape[0]:
            if x[i] != 0:
                r = ranks[i]
                rem = i
                for d in range(nd - 1, -1, -1):
                    s = shape[d]
                    out[r, d] = rem % s
                    rem = rem // s
    return k


def nonzero(x_flat, shape, ranks, out, *, block=BLOCK):
    """out (count, ndim) int64: row-major coordinates of the nonzeros of x_flat (a C-contiguous array of
    ``shape``); ranks from :func:`exclusive_ranks` of x_flat."""
    nd = len(shape)
    if x_flat.shape[0] and nd and out.shape[0]:
        sh = tuple(int(v) for v in shape)  # a UniTuple argument: no host-to-device copy
        _nonzero_kernel(nd)[_grid(x_flat.shape[0], block)](x_flat, ranks, sh, out)
    return out


# ------------------------------------------------------------------ triangles

@kernel
def _tri_k(x, out, diagonal, lower, zero):
    i = cuda.grid(1)
    B, R, C = out.shape
    if i < B * R * C:
        c = i % C
        r = (i // C) % R
        b = i // (R * C)
        keep = (c - r <= diagonal) if lower else (c - r >= diagonal)
        out[b, r, c] = x[b, r, c] if keep else zero


def tri(x3, out3, diagonal, lower, *, block=BLOCK):
    """out3 (B, R, C) = the lower (c - r <= diagonal) or upper (c - r >= diagonal) triangle of x3, zeros elsewhere."""
    if out3.size:
        _tri_k[_grid(out3.size, block)](x3, out3, np.int64(diagonal), bool(lower), np.dtype(out3.dtype).type(0))
    return out3

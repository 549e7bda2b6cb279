"""Reduction, scan and softmax kernels over the middle axis of a 3-D array.

Contract shared by every entry point (the public Python functions at the end of each section:
``sum_``, ``prod``, ``max_``, ``argmax``, ...; the numba kernels behind them are private):

- ``x`` is a C-contiguous array of shape ``(outer, n, inner)``; the reduction runs over ``n``.
  The caller has already validated shapes and moved the reduced axis to the middle with a
  reshape (``outer`` = product of the axes before it, ``inner`` = product of those after).
- ``out`` is caller-allocated and C-contiguous: shape ``(outer, inner)`` for reductions,
  ``(outer, n, inner)`` for scans and softmax. The caller picks its dtype (documented per
  function); kernels only write into it and never check bounds.
- ``inner == 1`` ("reduce the last axis") and ``inner > 1`` ("reduce a leading or middle axis")
  take different loops: the first vectorizes along each contiguous row of length ``n``, the
  second accumulates whole rows of length ``inner`` into an accumulator row. With ``inner == 1``,
  sum, prod and max/min read whole rows four at a time (``_GROUP``: four load streams at once).
- Large inputs (``x.size >= PARALLEL_THRESHOLD``) run a ``prange`` variant. When there are
  fewer rows than threads, ``n`` is cut into bands, each band reduces into a private partial
  result, and the partials are combined (research/feasibility.md section 4).

Float32 sums are blocked: blocks of ``_BLOCK`` elements (or ``_ROWS`` rows) are summed in
float32, which keeps the loops vectorized, and the block sums go into a float64 accumulator, so
the relative error stays near 1e-7 even for n = 1e7 (a running float32 sum reaches 1e-4 there).
"""
import math

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from . import _config
from ._config import FASTMATH, NJIT, NJIT_PARALLEL

__all__ = [
    "sum_", "prod", "max_", "min_", "max_with_indices", "min_with_indices", "argmax", "argmin",
    "count_nonzero", "any_", "all_", "var", "logsumexp", "norm",
    "cumsum", "cumprod", "logcumsumexp", "softmax", "log_softmax",
]

#: For code whose evaluation order matters (exp's Cody-Waite reduction x - k*ln2_hi - k*ln2_lo,
#: log_softmax's (x - max) - log_sum): fast-math flags are per instruction, so this code keeps
#: its order even after LLVM inlines it into a reassociating loop.
_EXACT = {**NJIT, "fastmath": set(FASTMATH) - {"reassoc"}}

#: Elements per block of a row sum; each block is summed in the output dtype (vectorized).
_BLOCK = 1024
#: Rows of a last-axis sum, prod, max or min reduced together (_rows_sum4, ...): four load streams in
#: flight instead of one keep a core closer to memory bandwidth (4096x4096 float32 row sums, 1 thread:
#: ~10% faster; max and prod more, under load).
_GROUP = 4
#: Elements per block when _GROUP rows are summed together: LLVM gives each row 4 x 8 float32
#: lanes, so a lane adds 8 numbers per block (_row_sum's lanes add 32): accuracy at least as good.
_GBLOCK = 256
#: Rows summed in the output dtype before they are flushed into the wide accumulator row.
_ROWS = 64
#: Columns processed together when accumulating rows, so accumulator rows stay in L1/L2.
_TILE = 4096
#: Slabs narrower than this are reduced "folded": see _slab.
_FOLD_INNER = 16


# ---------------------------------------------------------------------------------------------
# Scalar helpers
# ---------------------------------------------------------------------------------------------

def _widen(z):
    """The wide accumulator type for a value of z's type: float64 for floats, int64 otherwise."""
    return np.float64(z) if isinstance(z, (float, np.floating)) else np.int64(z)


@overload(_widen)
def _widen_overload(z):
    if isinstance(z, types.Float):
        return lambda z: np.float64(z)
    return lambda z: np.int64(z)


def _make_extremum(float_intrinsic, predicate):
    """An intrinsic ``f(a, b)`` for two values of the same numeric type.

    Floats use LLVM's ``llvm.maximum``/``llvm.minimum``, which return NaN when either operand is
    NaN (torch's max semantics) and, unlike a compare-and-select, are vectorized as reductions
    without the ``nnan`` fast-math flag. Integers and bools use a compare and select.
    """
    @intrinsic
    def extremum(typingctx, a, b):
        if a != b or not isinstance(a, (types.Float, types.Integer, types.Boolean)):
            return None

        def codegen(context, builder, sig, args):
            x, y = args
            if isinstance(a, types.Float):
                fnty = ir.FunctionType(x.type, [x.type, x.type])
                fn = builder.module.declare_intrinsic(float_intrinsic, [x.type], fnty=fnty)
                return builder.call(fn, [x, y])
            signed = isinstance(a, types.Integer) and a.signed
            cmp = builder.icmp_signed if signed else builder.icmp_unsigned
            return builder.select(cmp(predicate, x, y), x, y)

        return a(a, a), codegen

    return extremum


_maximum = _make_extremum("llvm.maximum", ">")
_minimum = _make_extremum("llvm.minimum", "<")


@njit(**_EXACT)
def _exp_f32(x):
    # Cephes expf: x = k*ln2 + r with |r| <= ln2/2, exp(r) by a degree-7 polynomial, then
    # scale by 2**k built from exponent bits. libm's expf is not vectorized (no SVML).
    f = np.float32
    k = np.floor(x * f(1.4426950408889634) + f(0.5))
    # Clamping k (not x) keeps the exponent bits valid and maps NaN to a harmless k.
    k = k if k > f(-150.0) else f(-150.0)
    k = k if k < f(128.0) else f(128.0)
    r = x - k * f(0.693359375) - k * f(-2.12194440e-4)
    p = f(1.9875691500e-4)
    p = p * r + f(1.3981999507e-3)
    p = p * r + f(8.3334519073e-3)
    p = p * r + f(4.1665795894e-2)
    p = p * r + f(1.6666665459e-1)
    p = p * r + f(5.0000001201e-1)
    p = p * r * r + r + f(1.0)
    # 2**k as two factors so that k down to -150 (subnormal results) and up to 128 (overflow
    # to inf) stay inside the exponent range of each factor.
    ki = np.int32(k)
    k1 = ki >> 1
    s1 = np.int32((k1 + 127) << 23).view(np.float32)
    s2 = np.int32((ki - k1 + 127) << 23).view(np.float32)
    y = p * s1 * s2
    y = f(0.0) if x < f(-104.0) else y          # also exp(-inf) = 0 exactly
    y = f(np.inf) if x > f(89.0) else y
    return y


@njit(**_EXACT)
def _exp_f64(x):
    # Same scheme in float64: fdlibm's split of ln2 and a degree-13 Taylor polynomial
    # (truncation error below 1e-17 on |r| <= ln2/2).
    k = np.floor(x * 1.4426950408889634 + 0.5)
    k = k if k > -1080.0 else -1080.0
    k = k if k < 1030.0 else 1030.0
    r = x - k * 6.93147180369123816490e-01 - k * 1.90821492927058770002e-10
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r * r + r + 1.0
    ki = np.int64(k)
    k1 = ki >> 1
    s1 = np.int64((k1 + 1023) << 52).view(np.float64)
    s2 = np.int64((ki - k1 + 1023) << 52).view(np.float64)
    y = p * s1 * s2
    y = 0.0 if x < -746.0 else y
    y = np.inf if x > 710.0 else y
    return y


@njit(**_EXACT)
def _log_softmax_value(v, m, log_sum):
    # (v - m) - log_sum: v - m is exact near the max. With reassoc, LLVM would rewrite it as
    # v - (m + log_sum) and hoist the sum, losing eps * |m| of absolute accuracy.
    return (v - m) - log_sum


def _exp(x):
    """Vectorizable exp for float32 and float64, keeping the argument's precision."""
    return math.exp(x)


@overload(_exp)
def _exp_overload(x):
    if x == types.float32:
        return lambda x: _exp_f32(x)
    if x == types.float64:
        return lambda x: _exp_f64(x)
    return None


# ---------------------------------------------------------------------------------------------
# Work splitting (Python side)
# ---------------------------------------------------------------------------------------------
#
# Every family has one serial kernel ``_<family>_items`` that processes a contiguous range of
# work items. The serial entry point calls it for all items; the parallel kernel is a thin
# prange over thread chunks that calls the same function, so both variants share one body.
# Reductions number their items (row o, band b) = divmod(i, bands): band b covers
# j in [b*n//bands, (b+1)*n//bands). With bands > 1 the items write partial results into
# ``part`` arrays of shape (outer, bands, inner) and ``_<family>_combine`` merges them.
# Scans and softmax need the whole length-n slice, so their items are (row o, column group g)
# instead.

# The wrappers run on every call, so they avoid building np.dtype objects (about 1 us each)
# and pass dtype instances, which are also the keys of _NO_PART.
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)
_NO_PART = {}


def _no_part(dtype):
    """Placeholder for the partial-result arguments when bands == 1 (never written)."""
    part = _NO_PART.get(dtype)
    if part is None:
        part = _NO_PART[dtype] = np.empty((0, 1, 0), dtype)
    return part


def _wide_dtype(dtype):
    return _F64 if dtype.kind == "f" else _I64


def _use_parallel(x, parallel):
    if parallel is None:
        return x.size >= _config.PARALLEL_THRESHOLD
    return parallel


def _split_bands(outer, n, inner):
    """(bands, chunks) for a parallel reduction.

    bands: 1 when there are enough rows for every thread; otherwise enough bands for about four
    work items per thread, each band at least 32K elements so the combine stays cheap.
    chunks: prange iterations, one per thread; each chunk allocates its scratch rows once.
    """
    threads = numba.get_num_threads()
    bands = 1
    if outer < 4 * threads:
        bands = max(1, min(-(-4 * threads // outer), n * inner // 32768, n))
    return bands, max(1, min(threads, outer * bands))


def _split_groups(outer, inner, width):
    """(groups, chunks) for scans and softmax: column groups of at most ``width`` columns,
    and more groups when there are too few rows to keep the threads busy."""
    threads = numba.get_num_threads()
    groups = -(-inner // width)
    if outer * groups < 4 * threads:
        groups = max(groups, min(inner // 16, -(-4 * threads // outer)), 1)
    return groups, max(1, min(threads, outer * groups))


def _reduce(x, parallel, kernels, outs, part_dtypes, *args):
    """Run a reduction family: ``kernels`` = (items, parallel, combine)."""
    items_kernel, parallel_kernel, combine_kernel = kernels
    outer, n, inner = x.shape
    if not _use_parallel(x, parallel):
        items_kernel(x, *outs, *[_no_part(d) for d in part_dtypes], 1, 0, outer, *args)
        return
    bands, chunks = _split_bands(outer, n, inner)
    if bands == 1:
        parallel_kernel(x, *outs, *[_no_part(d) for d in part_dtypes], 1, chunks, *args)
        return
    parts = [np.empty((outer, bands, inner), d) for d in part_dtypes]
    parallel_kernel(x, *outs, *parts, bands, chunks, *args)
    combine_kernel(*parts, *outs, n, *args)


def _as_numeric(a):
    """Bool arrays are reduced as uint8 views: same results, one compiled kernel fewer."""
    return a.view(np.uint8) if a.dtype.kind == "b" else a


@njit(**NJIT)
def _item(i, bands, n):
    """Reduction work item i -> (row o, band b, first row j0, end row j1)."""
    if bands == 1:     # skips four 64-bit divisions, a visible cost with short rows
        return i, 0, 0, n
    o = i // bands
    b = i - o * bands
    return o, b, b * n // bands, (b + 1) * n // bands


# ---------------------------------------------------------------------------------------------
# Shared loops. "row" helpers reduce one contiguous 1-D row (the inner == 1 layout); "mid"
# helpers reduce the rows of a 2-D C-contiguous slab (x[o, j0:j1], or the folded view of
# _slab) column by column into an accumulator row, walking the columns in tiles of _TILE so
# the accumulators stay in cache.
# ---------------------------------------------------------------------------------------------

@njit(**NJIT)
def _store(src, dst):
    """dst[:] = src[:dst.size], converting to dst's dtype."""
    for k in range(dst.size):
        dst[k] = src[k]


@njit(**NJIT)
def _fill(dst, value):
    for k in range(dst.size):
        dst[k] = value


@njit(**NJIT)
def _row_sum(v, z):
    """Sum of the contiguous 1-D v, returned in the wide type of z (z: zero of the block dtype).

    Each block of _BLOCK elements is summed in z's dtype: LLVM vectorizes it into 4 x 8 lanes,
    so each lane adds ~32 numbers; the block sums are added in the wide type.
    """
    acc = _widen(z)
    n = v.size
    for b in range(0, n, _BLOCK):
        blk = v[b:min(b + _BLOCK, n)]
        s = z
        for j in range(blk.size):
            s += blk[j]
        acc += s
    return acc


@njit(**NJIT)
def _rows_sum4(x2, o, z):
    """The sums of rows o .. o+3 of the 2-D C-contiguous x2, as _row_sum computes one (blocks of
    _GBLOCK elements summed in z's dtype, block sums in the wide type), the four rows interleaved:
    one loop body with four independent vectorized accumulators reads four rows at once."""
    n = x2.shape[1]
    r0 = x2[o]
    r1 = x2[o + 1]
    r2 = x2[o + 2]
    r3 = x2[o + 3]
    a0 = a1 = a2 = a3 = _widen(z)
    for b in range(0, n, _GBLOCK):
        e = min(b + _GBLOCK, n)
        s0 = s1 = s2 = s3 = z
        for j in range(b, e):
            s0 += r0[j]
            s1 += r1[j]
            s2 += r2[j]
            s3 += r3[j]
        a0 += s0
        a1 += s1
        a2 += s2
        a3 += s3
    return a0, a1, a2, a3


@njit(**NJIT)
def _mid_sum(slab, wide, tmp):
    """wide[k] = sum of slab[:, k] for the 2-D C-contiguous slab (wide: wide dtype; tmp: block
    dtype; both at least slab.shape[1] long).

    tmp adds _ROWS rows at a time in the block dtype (vectorized); wide takes the block totals.
    """
    rows, width = slab.shape
    for t0 in range(0, width, _TILE):
        t1 = min(t0 + _TILE, width)
        w = wide[t0:t1]
        t = tmp[t0:t1]
        _fill(w, 0)
        for b in range(0, rows, _ROWS):
            _store(slab[b, t0:t1], t)
            for j in range(b + 1, min(b + _ROWS, rows)):
                r = slab[j, t0:t1]
                for k in range(t.size):
                    t[k] += r[k]
            for k in range(t.size):
                w[k] += t[k]


@njit(**NJIT)
def _row_extreme(v, is_max):
    """NaN-propagating max (is_max) or min of the non-empty 1-D v."""
    m = v[0]
    if is_max:
        for j in range(v.size):
            m = _maximum(m, v[j])
    else:
        for j in range(v.size):
            m = _minimum(m, v[j])
    return m


@njit(**NJIT)
def _rows_extreme4(x2, o, is_max):
    """_row_extreme of rows o .. o+3 of the 2-D C-contiguous x2 (non-empty rows), the four rows
    read together (four load streams, as _rows_sum4)."""
    r0 = x2[o]
    r1 = x2[o + 1]
    r2 = x2[o + 2]
    r3 = x2[o + 3]
    m0, m1, m2, m3 = r0[0], r1[0], r2[0], r3[0]
    if is_max:
        for j in range(x2.shape[1]):
            m0 = _maximum(m0, r0[j])
            m1 = _maximum(m1, r1[j])
            m2 = _maximum(m2, r2[j])
            m3 = _maximum(m3, r3[j])
    else:
        for j in range(x2.shape[1]):
            m0 = _minimum(m0, r0[j])
            m1 = _minimum(m1, r1[j])
            m2 = _minimum(m2, r2[j])
            m3 = _minimum(m3, r3[j])
    return m0, m1, m2, m3


@njit(**NJIT)
def _rows_prod4(x2, o, one):
    """Products (in one's wide type) of rows o .. o+3 of the 2-D C-contiguous x2, read together."""
    r0 = x2[o]
    r1 = x2[o + 1]
    r2 = x2[o + 2]
    r3 = x2[o + 3]
    p0 = p1 = p2 = p3 = one
    for j in range(x2.shape[1]):
        p0 *= r0[j]
        p1 *= r1[j]
        p2 *= r2[j]
        p3 *= r3[j]
    return p0, p1, p2, p3


@njit(**NJIT)
def _extreme(a, b, is_max):
    return _maximum(a, b) if is_max else _minimum(a, b)


@njit(**NJIT)
def _mid_extreme(xo, j0, j1, k0, k1, acc, is_max):
    """acc[k - k0] = NaN-propagating max/min of xo[j0:j1, k]; needs j1 > j0."""
    for t0 in range(k0, k1, _TILE):
        t1 = min(t0 + _TILE, k1)
        a = acc[t0 - k0:t1 - k0]
        _store(xo[j0, t0:t1], a)
        for j in range(j0 + 1, j1):
            r = xo[j, t0:t1]
            if is_max:
                for k in range(a.size):
                    a[k] = _maximum(a[k], r[k])
            else:
                for k in range(a.size):
                    a[k] = _minimum(a[k], r[k])


@njit(**NJIT)
def _mid_count(slab, acc):
    """acc[k] = number of nonzero slab[:, k] (acc: int64, at least slab.shape[1] long)."""
    rows, width = slab.shape
    for t0 in range(0, width, _TILE):
        a = acc[t0:min(t0 + _TILE, width)]
        _fill(a, 0)
        for j in range(rows):
            r = slab[j, t0:t0 + a.size]
            for k in range(a.size):
                a[k] += r[k] != 0


@njit(**NJIT)
def _fold_lanes(inner):
    """Lane count of the folded layout: the multiple of inner nearest below 64."""
    return inner * max(1, 64 // inner)


@njit(**NJIT)
def _slab(xo, j0, j1, lanes):
    """Rows [j0, j1) of the (n, inner) slab xo as a 2-D C-contiguous array, plus a flat tail.

    lanes == 0: the rows themselves and an empty tail. Otherwise the "folded" layout for
    narrow slabs (inner < _FOLD_INNER), whose row loops would run only a few iterations:
    the same memory as (rows, lanes) rows and a short tail. lanes is a multiple of inner, so
    element t of every folded row (and of the tail) belongs to column t % inner: reducing
    the long rows vectorizes, and folding lane q * inner + k into column k finishes the job.
    Each family calls its slab reduction once on either layout, which keeps compile time down.
    """
    inner = xo.shape[1]
    flat = xo.reshape(xo.size)
    if lanes == 0:
        return xo[j0:j1], flat[:0]
    flat = flat[j0 * inner:j1 * inner]
    rows = flat.size // lanes
    return flat[:rows * lanes].reshape(rows, lanes), flat[rows * lanes:]


@njit(**NJIT)
def _fold_width(inner, rows):
    """Lanes for the folded layout of `rows` rows, or 0 where folding does not pay."""
    lanes = _fold_lanes(inner)
    return lanes if inner < _FOLD_INNER and rows * inner >= lanes else 0


# ---------------------------------------------------------------------------------------------
# sum
# ---------------------------------------------------------------------------------------------

@njit(**NJIT)
def _sum_items(x, out, part, bands, i0, i1):
    """Work items [i0, i1) of sum: out[o, :] (bands == 1) or part[o, b, :] (wide dtype) =
    sum over the band's rows of x[o, j, :]. out: int64 for int/bool x, else x's float dtype."""
    outer, n, inner = x.shape
    z = out.dtype.type(0)
    if inner == 1:
        x2 = x.reshape(outer, n)
        i2 = i0
        if bands == 1:  # whole rows (item i is row i): _GROUP at a time, then one at a time
            i2 = i0 + (i1 - i0) // _GROUP * _GROUP
            for o in range(i0, i2, _GROUP):
                s0, s1, s2, s3 = _rows_sum4(x2, o, z)
                out[o, 0] = s0
                out[o + 1, 0] = s1
                out[o + 2, 0] = s2
                out[o + 3, 0] = s3
        for i in range(i2, i1):
            o, b, j0, j1 = _item(i, bands, n)
            s = _row_sum(x2[o, j0:j1], z)
            if bands == 1:
                out[o, 0] = s
            else:
                part[o, b, 0] = s
        return
    size = max(inner, _fold_lanes(inner))
    wide = np.full(inner, _widen(z))
    acc = np.full(size, _widen(z))
    tmp = np.empty(size, out.dtype)
    for i in range(i0, i1):
        o, b, j0, j1 = _item(i, bands, n)
        lanes = _fold_width(inner, j1 - j0)
        rows, tail = _slab(x[o], j0, j1, lanes)
        _mid_sum(rows, acc, tmp)
        dst = wide if bands == 1 else part[o, b]
        if lanes:
            for t in range(tail.size):
                acc[t] += tail[t]
            for k in range(inner):
                s = acc[k]
                for q in range(1, lanes // inner):
                    s += acc[q * inner + k]
                dst[k] = s
        else:
            _store(acc, dst)
        if bands == 1:
            _store(wide, out[o])


@njit(**NJIT_PARALLEL)
def _sum_parallel(x, out, part, bands, chunks):
    items = x.shape[0] * bands
    for c in prange(chunks):
        _sum_items(x, out, part, bands, c * items // chunks, (c + 1) * items // chunks)


@njit(**NJIT)
def _sum_combine(part, out, n):
    outer, bands, inner = part.shape
    for o in range(outer):
        p = part[o]
        for b in range(1, bands):
            for k in range(inner):
                p[0, k] += p[b, k]
        _store(p[0], out[o])


_SUM = (_sum_items, _sum_parallel, _sum_combine)


@njit(**NJIT)
def sum_flat(out, v):
    """out[()] = sum of the contiguous 1-D v (non-empty), exactly as sum_ computes a full reduction
    of v's elements below the parallel threshold; out is 0-d (x's float dtype, or int64).

    Argument order (out first) is that of a dispatch plan's impl, so eager dispatch can call this
    kernel's compiled entry point directly (kernels._entry): the 1-element ``x.sum()`` path."""
    out[()] = _row_sum(v, out.dtype.type(0))


def sum_(x, out, parallel=None):
    """out[o, k] = sum over j of x[o, j, k].

    x: any listed dtype. out (outer, inner): int64 for bool/integer x, x's dtype for float x
    (float32 adds blocks in float32 and block totals in float64). n == 0 gives 0.
    parallel: None picks by size, True/False forces the variant. Returns out.
    """
    outer, n, inner = x.shape
    if outer * inner == 0:
        return out
    if n == 0:
        out[...] = 0
        return out
    _reduce(_as_numeric(x), parallel, _SUM, (out,), (_wide_dtype(out.dtype),))
    return out


# ---------------------------------------------------------------------------------------------
# prod
# ---------------------------------------------------------------------------------------------

@njit(**NJIT)
def _prod_items(x, out, part, bands, i0, i1):
    """Work items of prod; products accumulate in the wide dtype (float64 / int64)."""
    outer, n, inner = x.shape
    one = _widen(out.dtype.type(1))
    if inner == 1:
        x2 = x.reshape(outer, n)
        i2 = i0
        if bands == 1:  # whole rows, _GROUP at a time (as _sum_items)
            i2 = i0 + (i1 - i0) // _GROUP * _GROUP
            for o in range(i0, i2, _GROUP):
                p0, p1, p2, p3 = _rows_prod4(x2, o, one)
                out[o, 0] = p0
                out[o + 1, 0] = p1
                out[o + 2, 0] = p2
                out[o + 3, 0] = p3
        for i in range(i2, i1):
            o, b, j0, j1 = _item(i, bands, n)
            v = x2[o, j0:j1]
            p = one
            for j in range(v.size):
                p *= v[j]
            if bands == 1:
                out[o, 0] = p
            else:
                part[o, b, 0] = p
        return
    wide = np.full(inner, one)
    for i in range(i0, i1):
        o, b, j0, j1 = _item(i, bands, n)
        w = wide if bands == 1 else part[o, b]
        _fill(w, one)
        for j in range(j0, j1):
            r = x[o, j]
            for k in range(inner):
                w[k] *= r[k]
        if bands == 1:
            _store(wide, out[o])


@njit(**NJIT_PARALLEL)
def _prod_parallel(x, out, part, bands, chunks):
    items = x.shape[0] * bands
    for c in prange(chunks):
        _prod_items(x, out, part, bands, c * items // chunks, (c + 1) * items // chunks)


@njit(**NJIT)
def _prod_combine(part, out, n):
    outer, bands, inner = part.shape
    for o in range(outer):
        p = part[o]
        for b in range(1, bands):
            for k in range(inner):
                p[0, k] *= p[b, k]
        _store(p[0], out[o])


_PROD = (_prod_items, _prod_parallel, _prod_combine)


def prod(x, out, parallel=None):
    """out[o, k] = product over j of x[o, j, k].

    out: int64 for bool/integer x (wraps on overflow like torch), x's dtype for float x
    (accumulated in float64). n == 0 gives 1. Returns out.
    """
    outer, n, inner = x.shape
    if outer * inner == 0:
        return out
    if n == 0:
        out[...] = 1
        return out
    _reduce(_as_numeric(x), parallel, _PROD, (out,), (_wide_dtype(out.dtype),))
    return out


# ---------------------------------------------------------------------------------------------
# max / min (values only)
# ---------------------------------------------------------------------------------------------

@njit(**NJIT)
def _extreme_items(x, out, part, bands, i0, i1, is_max):
    """Work items of max (is_max) / min; out and part have x's dtype. NaN wins."""
    outer, n, inner = x.shape
    if inner == 1:
        x2 = x.reshape(outer, n)
        i2 = i0
        if bands == 1:  # whole rows, _GROUP at a time (as _sum_items)
            i2 = i0 + (i1 - i0) // _GROUP * _GROUP
            for o in range(i0, i2, _GROUP):
                m0, m1, m2, m3 = _rows_extreme4(x2, o, is_max)
                out[o, 0] = m0
                out[o + 1, 0] = m1
                out[o + 2, 0] = m2
                out[o + 3, 0] = m3
        for i in range(i2, i1):
            o, b, j0, j1 = _item(i, bands, n)
            m = _row_extreme(x2[o, j0:j1], is_max)
            if bands == 1:
                out[o, 0] = m
            else:
                part[o, b, 0] = m
        return
    acc = np.empty(max(inner, _fold_lanes(inner)), x.dtype)
    for i in range(i0, i1):
        o, b, j0, j1 = _item(i, bands, n)
        lanes = _fold_width(inner, j1 - j0)
        rows, tail = _slab(x[o], j0, j1, lanes)
        _mid_extreme(rows, 0, rows.shape[0], 0, rows.shape[1], acc, is_max)
        dst = out[o] if bands == 1 else part[o, b]
        if lanes:
            for t in range(tail.size):
                acc[t] = _extreme(acc[t], tail[t], is_max)
            for k in range(inner):
                m = acc[k]
                for q in range(1, lanes // inner):
                    m = _extreme(m, acc[q * inner + k], is_max)
                dst[k] = m
        else:
            _store(acc, dst)


@njit(**NJIT_PARALLEL)
def _extreme_parallel(x, out, part, bands, chunks, is_max):
    items = x.shape[0] * bands
    for c in prange(chunks):
        _extreme_items(x, out, part, bands, c * items // chunks, (c + 1) * items // chunks,
                       is_max)


@njit(**NJIT)
def _extreme_combine(part, out, n, is_max):
    outer, bands, inner = part.shape
    for o in range(outer):
        _mid_extreme(part[o], 0, bands, 0, inner, out[o], is_max)


_EXTREME = (_extreme_items, _extreme_parallel, _extreme_combine)


def max_(x, out, parallel=None):
    """out[o, k] = max over j of x[o, j, k]; NaN if the slice holds a NaN (torch.amax).

    out: x's dtype. Needs n >= 1 (the caller rejects n == 0). Returns out.
    """
    if out.size and x.shape[1]:
        xn = _as_numeric(x)
        _reduce(xn, parallel, _EXTREME, (_as_numeric(out),), (xn.dtype,), True)
    return out


def min_(x, out, parallel=None):
    """out[o, k] = min over j of x[o, j, k]; NaN if the slice holds a NaN (torch.amin).

    out: x's dtype. Needs n >= 1 (the caller rejects n == 0). Returns out.
    """
    if out.size and x.shape[1]:
        xn = _as_numeric(x)
        _reduce(xn, parallel, _EXTREME, (_as_numeric(out),), (xn.dtype,), False)
    return out


# ---------------------------------------------------------------------------------------------
# max / min with indices, argmax / argmin
# ---------------------------------------------------------------------------------------------

@njit(**NJIT)
def _row_find(v, m):
    """Index of the first element of v equal to m, or of the first NaN when m is NaN.

    Blocks of 256 are first tested with a vectorized OR of the comparisons (an integer count
    did not vectorize); only the block that holds the hit is scanned element by element.
    """
    n = v.size
    if m != m:
        for j in range(n):
            if v[j] != v[j]:
                return j
        return 0
    for b in range(0, n, 256):
        blk = v[b:min(b + 256, n)]
        hit = False
        for j in range(blk.size):
            hit |= blk[j] == m
        if hit:
            for j in range(blk.size):
                if blk[j] == m:
                    return b + j
    return 0


@njit(**NJIT)
def _beats(e, c, is_max):
    """Whether e replaces the current extreme c: strictly better, or the first NaN."""
    better = (e > c) if is_max else (e < c)
    return better | ((e != e) & (c == c))


@njit(**NJIT)
def _row_arg(v, is_max):
    """(value, index) of the first max/min of the non-empty 1-D v; NaN counts as extreme."""
    if v.size <= 16:   # short rows: one scalar pass beats two passes and their setup
        m, idx = v[0], 0
        for j in range(1, v.size):
            if _beats(v[j], m, is_max):
                m, idx = v[j], j
        return m, idx
    m = _row_extreme(v, is_max)
    return m, _row_find(v, m)


@njit(**NJIT)
def _arg_items(x, values, indices, pvalues, pindices, bands, i0, i1, is_max):
    """Work items of max/min with indices: values (x's dtype) and int64 indices of the first
    extreme; NaN counts as the extreme (torch.max(dim) / argmax semantics)."""
    outer, n, inner = x.shape
    if inner == 1:
        x2 = x.reshape(outer, n)
        for i in range(i0, i1):
            o, b, j0, j1 = _item(i, bands, n)
            m, j = _row_arg(x2[o, j0:j1], is_max)
            j += j0
            if bands == 1:
                values[o, 0] = m
                indices[o, 0] = j
            else:
                pvalues[o, b, 0] = m
                pindices[o, b, 0] = j
        return
    for i in range(i0, i1):
        o, b, j0, j1 = _item(i, bands, n)
        vals = values[o] if bands == 1 else pvalues[o, b]
        idx = indices[o] if bands == 1 else pindices[o, b]
        for t0 in range(0, inner, _TILE):
            t1 = min(t0 + _TILE, inner)
            a = vals[t0:t1]
            ix = idx[t0:t1]
            _store(x[o, j0, t0:t1], a)
            _fill(ix, j0)
            for j in range(j0 + 1, j1):
                r = x[o, j, t0:t1]
                # Selects, not branches: the loop vectorizes over k.
                if is_max:
                    for k in range(a.size):
                        e, c = r[k], a[k]
                        up = (e > c) | ((e != e) & (c == c))
                        a[k] = e if up else c
                        ix[k] = j if up else ix[k]
                else:
                    for k in range(a.size):
                        e, c = r[k], a[k]
                        up = (e < c) | ((e != e) & (c == c))
                        a[k] = e if up else c
                        ix[k] = j if up else ix[k]


@njit(**NJIT_PARALLEL)
def _arg_parallel(x, values, indices, pvalues, pindices, bands, chunks, is_max):
    items = x.shape[0] * bands
    for c in prange(chunks):
        _arg_items(x, values, indices, pvalues, pindices, bands, c * items // chunks,
                   (c + 1) * items // chunks, is_max)


@njit(**NJIT)
def _arg_combine(pvalues, pindices, values, indices, n, is_max):
    # Bands are visited in order and only a strictly better value replaces the current one,
    # so the first occurrence wins.
    outer, bands, inner = pvalues.shape
    for o in range(outer):
        for k in range(inner):
            c, ci = pvalues[o, 0, k], pindices[o, 0, k]
            for b in range(1, bands):
                e = pvalues[o, b, k]
                if _beats(e, c, is_max):
                    c, ci = e, pindices[o, b, k]
            values[o, k] = c
            indices[o, k] = ci


_ARG = (_arg_items, _arg_parallel, _arg_combine)


def max_with_indices(x, values, indices, parallel=None):
    """values[o, k] = max over j of x[o, j, k], indices[o, k] = first j where it occurs.

    NaN is the maximum: a slice with NaN gives NaN and the index of its first NaN.
    values: x's dtype; indices: int64; both (outer, inner). Needs n >= 1. Returns both.
    """
    if values.size and x.shape[1]:
        xn = _as_numeric(x)
        _reduce(xn, parallel, _ARG, (_as_numeric(values), indices), (xn.dtype, _I64), True)
    return values, indices


def min_with_indices(x, values, indices, parallel=None):
    """values = min over j, indices = first j where it occurs; NaN counts as the minimum.

    values: x's dtype; indices: int64; both (outer, inner). Needs n >= 1. Returns both.
    """
    if values.size and x.shape[1]:
        xn = _as_numeric(x)
        _reduce(xn, parallel, _ARG, (_as_numeric(values), indices), (xn.dtype, _I64), False)
    return values, indices


def argmax(x, out, parallel=None):
    """out[o, k] = first j of the max of x[o, :, k] (first NaN if any). out: int64. n >= 1."""
    values = np.empty(out.shape, x.dtype)
    max_with_indices(x, values, out, parallel)
    return out


def argmin(x, out, parallel=None):
    """out[o, k] = first j of the min of x[o, :, k] (first NaN if any). out: int64. n >= 1."""
    values = np.empty(out.shape, x.dtype)
    min_with_indices(x, values, out, parallel)
    return out


# ---------------------------------------------------------------------------------------------
# count_nonzero / any / all
# ---------------------------------------------------------------------------------------------

@njit(**NJIT)
def _row_count(v):
    c = 0
    for j in range(v.size):
        c += v[j] != 0
    return c


@njit(**NJIT)
def _count_items(x, out, part, bands, i0, i1):
    """Work items of count_nonzero; out and part are int64. NaN counts as nonzero."""
    outer, n, inner = x.shape
    if inner == 1:
        x2 = x.reshape(outer, n)
        for i in range(i0, i1):
            o, b, j0, j1 = _item(i, bands, n)
            c = _row_count(x2[o, j0:j1])
            if bands == 1:
                out[o, 0] = c
            else:
                part[o, b, 0] = c
        return
    acc = np.empty(max(inner, _fold_lanes(inner)), np.int64)
    for i in range(i0, i1):
        o, b, j0, j1 = _item(i, bands, n)
        lanes = _fold_width(inner, j1 - j0)
        rows, tail = _slab(x[o], j0, j1, lanes)
        _mid_count(rows, acc)
        dst = out[o] if bands == 1 else part[o, b]
        if lanes:
            for t in range(tail.size):
                acc[t] += tail[t] != 0
            for k in range(inner):
                c = acc[k]
                for q in range(1, lanes // inner):
                    c += acc[q * inner + k]
                dst[k] = c
        else:
            _store(acc, dst)


@njit(**NJIT_PARALLEL)
def _count_parallel(x, out, part, bands, chunks):
    items = x.shape[0] * bands
    for c in prange(chunks):
        _count_items(x, out, part, bands, c * items // chunks, (c + 1) * items // chunks)


_COUNT = (_count_items, _count_parallel, _sum_combine)


def count_nonzero(x, out, parallel=None):
    """out[o, k] = number of j with x[o, j, k] != 0 (NaN counts). out: int64. Returns out."""
    outer, n, inner = x.shape
    if outer * inner == 0:
        return out
    if n == 0:
        out[...] = 0
        return out
    _reduce(_as_numeric(x), parallel, _COUNT, (out,), (_I64,))
    return out


def any_(x, out, parallel=None):
    """out[o, k] = whether any x[o, j, k] is nonzero (NaN is). out: bool. n == 0 gives False.

    Computed as count_nonzero > 0: one compiled kernel serves count_nonzero, any and all.
    """
    counts = count_nonzero(x, np.empty(out.shape, np.int64), parallel)
    np.greater(counts, 0, out=out)
    return out


def all_(x, out, parallel=None):
    """out[o, k] = whether every x[o, j, k] is nonzero. out: bool. n == 0 gives True."""
    counts = count_nonzero(x, np.empty(out.shape, np.int64), parallel)
    np.equal(counts, x.shape[1], out=out)
    return out


# ---------------------------------------------------------------------------------------------
# var
# ---------------------------------------------------------------------------------------------

@njit(**NJIT)
def _var_items(x, out, pmean, pm2, bands, i0, i1, correction):
    """Work items of var: two passes (mean, then squared deviations), all in float64.

    bands == 1 writes out = M2 / max(0, n - correction); otherwise each band's mean and M2
    go to pmean/pm2 (float64) for _var_combine.
    """
    outer, n, inner = x.shape
    # The mean is summed in float64 even for float32 x: an error d in the mean adds about
    # n * d**2 to M2, which matters for slices with a large offset and a tiny spread.
    z = 0.0
    den = max(n - correction, 0)
    if inner == 1:
        x2 = x.reshape(outer, n)
        for i in range(i0, i1):
            o, b, j0, j1 = _item(i, bands, n)
            v = x2[o, j0:j1]
            mean = _row_sum(v, z) / v.size
            m2 = 0.0
            for j in range(v.size):
                d = v[j] - mean
                m2 += d * d
            if bands == 1:
                out[o, 0] = m2 / den
            else:
                pmean[o, b, 0] = mean
                pm2[o, b, 0] = m2
        return
    mean_row = np.empty(inner)
    m2_row = np.empty(inner)
    tmp = np.empty(inner)
    for i in range(i0, i1):
        o, b, j0, j1 = _item(i, bands, n)
        mean = mean_row if bands == 1 else pmean[o, b]
        m2 = m2_row if bands == 1 else pm2[o, b]
        _mid_sum(x[o, j0:j1], mean, tmp)
        for k in range(inner):
            mean[k] /= j1 - j0
        for t0 in range(0, inner, _TILE):
            q = m2[t0:min(t0 + _TILE, inner)]
            mu = mean[t0:t0 + q.size]
            _fill(q, 0.0)
            for j in range(j0, j1):
                r = x[o, j, t0:t0 + q.size]
                for k in range(q.size):
                    d = r[k] - mu[k]
                    q[k] += d * d
        if bands == 1:
            for k in range(inner):
                out[o, k] = m2[k] / den


@njit(**NJIT_PARALLEL)
def _var_parallel(x, out, pmean, pm2, bands, chunks, correction):
    items = x.shape[0] * bands
    for c in prange(chunks):
        _var_items(x, out, pmean, pm2, bands, c * items // chunks, (c + 1) * items // chunks,
                   correction)


@njit(**NJIT)
def _var_combine(pmean, pm2, out, n, correction):
    # Chan et al.'s pairwise update of (count, mean, M2), band by band.
    outer, bands, inner = pmean.shape
    den = max(n - correction, 0)
    for o in range(outer):
        for k in range(inner):
            count = float(n // bands)
            mean, m2 = pmean[o, 0, k], pm2[o, 0, k]
            for b in range(1, bands):
                count_b = float((b + 1) * n // bands - b * n // bands)
                delta = pmean[o, b, k] - mean
                total = count + count_b
                mean += delta * (count_b / total)
                m2 += pm2[o, b, k] + delta * delta * (count * count_b / total)
                count = total
            out[o, k] = m2 / den


_VAR = (_var_items, _var_parallel, _var_combine)


def var(x, out, correction=1, parallel=None):
    """out[o, k] = sum_j (x[o, j, k] - mean)^2 / max(0, n - correction), like torch.var.

    x: float32/float64 (convert integers first); out: float32/float64. Division by zero gives
    inf (or nan when the sum is 0), as in torch; n == 0 gives nan. Returns out.
    """
    outer, n, inner = x.shape
    if outer * inner == 0:
        return out
    if n == 0:
        out[...] = np.nan
        return out
    _reduce(x, parallel, _VAR, (out,), (_F64, _F64), int(correction))
    return out


# ---------------------------------------------------------------------------------------------
# logsumexp
# ---------------------------------------------------------------------------------------------

@njit(**NJIT)
def _row_sum_exp(v, m, z):
    """sum_j exp(v[j] - m) in float64, blocks summed in v's dtype (z: its zero)."""
    acc = 0.0
    n = v.size
    for b in range(0, n, _BLOCK):
        blk = v[b:min(b + _BLOCK, n)]
        s = z
        for j in range(blk.size):
            s += _exp(blk[j] - m)
        acc += s
    return acc


@njit(**NJIT)
def _lse_finish(m, s):
    # A slice whose max is +-inf or NaN has that as its logsumexp; s is then meaningless.
    return m + math.log(s) if math.isfinite(m) else m


@njit(**NJIT)
def _lse_items(x, out, pmax, psum, bands, i0, i1):
    """Work items of logsumexp: max (x's dtype) then sum of exp(x - max) in float64."""
    outer, n, inner = x.shape
    z = x.dtype.type(0)
    if inner == 1:
        x2 = x.reshape(outer, n)
        for i in range(i0, i1):
            o, b, j0, j1 = _item(i, bands, n)
            v = x2[o, j0:j1]
            m = _row_extreme(v, True)
            s = _row_sum_exp(v, m, z)
            if bands == 1:
                out[o, 0] = _lse_finish(m, s)
            else:
                pmax[o, b, 0] = m
                psum[o, b, 0] = s
        return
    max_row = np.empty(inner, x.dtype)
    sum_row = np.empty(inner)
    for i in range(i0, i1):
        o, b, j0, j1 = _item(i, bands, n)
        m = max_row if bands == 1 else pmax[o, b]
        s = sum_row if bands == 1 else psum[o, b]
        _mid_extreme(x[o], j0, j1, 0, inner, m, True)
        _fill(s, 0.0)
        for j in range(j0, j1):
            r = x[o, j]
            for k in range(inner):
                s[k] += _exp(r[k] - m[k])
        if bands == 1:
            for k in range(inner):
                out[o, k] = _lse_finish(m[k], s[k])


@njit(**NJIT_PARALLEL)
def _lse_parallel(x, out, pmax, psum, bands, chunks):
    items = x.shape[0] * bands
    for c in prange(chunks):
        _lse_items(x, out, pmax, psum, bands, c * items // chunks, (c + 1) * items // chunks)


@njit(**NJIT)
def _lse_combine(pmax, psum, out, n):
    outer, bands, inner = pmax.shape
    for o in range(outer):
        for k in range(inner):
            m = pmax[o, 0, k]
            for b in range(1, bands):
                m = _maximum(m, pmax[o, b, k])
            if not math.isfinite(m):
                out[o, k] = m
                continue
            s = 0.0
            for b in range(bands):
                if pmax[o, b, k] != -np.inf:   # an all -inf band adds nothing
                    s += psum[o, b, k] * math.exp(pmax[o, b, k] - m)
            out[o, k] = m + math.log(s)


_LSE = (_lse_items, _lse_parallel, _lse_combine)


def logsumexp(x, out, parallel=None):
    """out[o, k] = log(sum_j exp(x[o, j, k])), stabilized by subtracting the max.

    x: float32/float64 (convert integers first); out: x's dtype. All -inf (or n == 0) gives
    -inf, any +inf gives inf, any NaN gives NaN, as in torch. Returns out.
    """
    outer, n, inner = x.shape
    if outer * inner == 0:
        return out
    if n == 0:
        out[...] = -np.inf
        return out
    _reduce(x, parallel, _LSE, (out,), (x.dtype, _F64))
    return out


# ---------------------------------------------------------------------------------------------
# norm
# ---------------------------------------------------------------------------------------------

# p is mapped to a kind so that each common p gets its own vectorized loop.
_NORM_COUNT, _NORM_1, _NORM_2, _NORM_INF, _NORM_NEG_INF, _NORM_P = range(6)


@njit(**NJIT)
def _row_norm(v, kind, p, z):
    """The norm's accumulated quantity over v, in float64 (before the root of _norm_finish)."""
    if kind == _NORM_INF or kind == _NORM_NEG_INF:
        m = abs(v[0])
        if kind == _NORM_INF:
            for j in range(v.size):
                m = _maximum(m, abs(v[j]))
        else:
            for j in range(v.size):
                m = _minimum(m, abs(v[j]))
        return np.float64(m)
    if kind == _NORM_COUNT:
        return np.float64(_row_count(v))
    acc = 0.0
    n = v.size
    for b in range(0, n, _BLOCK):
        blk = v[b:min(b + _BLOCK, n)]
        s = z
        if kind == _NORM_1:
            for j in range(blk.size):
                s += abs(blk[j])
        elif kind == _NORM_2:
            for j in range(blk.size):
                s += blk[j] * blk[j]
        else:
            for j in range(blk.size):
                acc += abs(np.float64(blk[j])) ** p
        acc += s
    return acc


@njit(**NJIT)
def _norm_finish(acc, kind, p):
    if kind == _NORM_2:
        return math.sqrt(acc)
    if kind == _NORM_P:
        return acc ** (1.0 / p)
    return acc


@njit(**NJIT)
def _norm_items(x, out, part, bands, i0, i1, kind, p):
    """Work items of norm; partials (float64) hold the quantity before the root."""
    outer, n, inner = x.shape
    z = x.dtype.type(0)
    if inner == 1:
        x2 = x.reshape(outer, n)
        for i in range(i0, i1):
            o, b, j0, j1 = _item(i, bands, n)
            acc = _row_norm(x2[o, j0:j1], kind, p, z)
            if bands == 1:
                out[o, 0] = _norm_finish(acc, kind, p)
            else:
                part[o, b, 0] = acc
        return
    wide = np.empty(inner)
    for i in range(i0, i1):
        o, b, j0, j1 = _item(i, bands, n)
        w = wide if bands == 1 else part[o, b]
        first = j0
        if kind == _NORM_INF or kind == _NORM_NEG_INF:
            r = x[o, j0]
            for k in range(inner):
                w[k] = abs(r[k])
            first += 1
        else:
            _fill(w, 0.0)
        for j in range(first, j1):
            r = x[o, j]
            if kind == _NORM_COUNT:
                for k in range(inner):
                    w[k] += r[k] != 0
            elif kind == _NORM_1:
                for k in range(inner):
                    w[k] += abs(r[k])
            elif kind == _NORM_2:
                for k in range(inner):
                    w[k] += r[k] * r[k]
            elif kind == _NORM_INF:
                for k in range(inner):
                    w[k] = _maximum(w[k], np.float64(abs(r[k])))
            elif kind == _NORM_NEG_INF:
                for k in range(inner):
                    w[k] = _minimum(w[k], np.float64(abs(r[k])))
            else:
                for k in range(inner):
                    w[k] += abs(np.float64(r[k])) ** p
        if bands == 1:
            for k in range(inner):
                out[o, k] = _norm_finish(w[k], kind, p)


@njit(**NJIT_PARALLEL)
def _norm_parallel(x, out, part, bands, chunks, kind, p):
    items = x.shape[0] * bands
    for c in prange(chunks):
        _norm_items(x, out, part, bands, c * items // chunks, (c + 1) * items // chunks, kind, p)


@njit(**NJIT)
def _norm_combine(part, out, n, kind, p):
    outer, bands, inner = part.shape
    for o in range(outer):
        for k in range(inner):
            acc = part[o, 0, k]
            for b in range(1, bands):
                e = part[o, b, k]
                if kind == _NORM_INF:
                    acc = _maximum(acc, e)
                elif kind == _NORM_NEG_INF:
                    acc = _minimum(acc, e)
                else:
                    acc += e
            out[o, k] = _norm_finish(acc, kind, p)


_NORM = (_norm_items, _norm_parallel, _norm_combine)


def norm(x, out, p=2.0, parallel=None):
    """out[o, k] = vector p-norm of x[o, :, k], like torch.linalg.vector_norm.

    p: 2, 1, inf (max |x|), -inf (min |x|), 0 (count of nonzeros) or any other float
    ((sum |x|^p)^(1/p), libm pow: slow). x: float32/float64; out: x's dtype. n == 0 gives 0
    (torch rejects p = +-inf there; so should the caller). NaN propagates. Returns out.
    """
    outer, n, inner = x.shape
    if outer * inner == 0:
        return out
    if n == 0:
        out[...] = 0
        return out
    p = float(p)
    kind = {0.0: _NORM_COUNT, 1.0: _NORM_1, 2.0: _NORM_2, math.inf: _NORM_INF,
            -math.inf: _NORM_NEG_INF}.get(p, _NORM_P)
    _reduce(x, parallel, _NORM, (out,), (_F64,), kind, p)
    return out


# ---------------------------------------------------------------------------------------------
# Scans: cumsum, cumprod, logcumsumexp
# ---------------------------------------------------------------------------------------------

@njit(**NJIT)
def _cum_items(x, out, groups, i0, i1, is_prod):
    """Work items (row o, column group g) = divmod(i, groups) of cumsum / cumprod (is_prod).

    Running totals are kept in the wide dtype (float64 / int64) and rounded into out.
    inner == 1 needs groups == 1.
    """
    outer, n, inner = x.shape
    one = _widen(out.dtype.type(1))
    start = one if is_prod else one - one
    if inner == 1:
        x2 = x.reshape(outer, n)
        out2 = out.reshape(outer, n)
        for o in range(i0, i1):
            v, w = x2[o], out2[o]
            acc = start
            if is_prod:
                for j in range(n):
                    acc *= v[j]
                    w[j] = acc
            else:
                for j in range(n):
                    acc += v[j]
                    w[j] = acc
        return
    wide = np.full(min(inner, _TILE), one)
    for i in range(i0, i1):
        o, g = i // groups, i % groups
        k0, k1 = g * inner // groups, (g + 1) * inner // groups
        for t0 in range(k0, k1, _TILE):
            t1 = min(t0 + _TILE, k1)
            a = wide[:t1 - t0]
            _fill(a, start)
            for j in range(n):
                r = x[o, j, t0:t1]
                w = out[o, j, t0:t1]
                if is_prod:
                    for k in range(a.size):
                        a[k] *= r[k]
                        w[k] = a[k]
                else:
                    for k in range(a.size):
                        a[k] += r[k]
                        w[k] = a[k]


@njit(**NJIT_PARALLEL)
def _cum_parallel(x, out, groups, chunks, is_prod):
    items = x.shape[0] * groups
    for c in prange(chunks):
        _cum_items(x, out, groups, c * items // chunks, (c + 1) * items // chunks, is_prod)


def _scan(x, out, parallel, serial_kernel, parallel_kernel, width, *args):
    outer, n, inner = x.shape
    if x.size == 0:
        return
    if _use_parallel(x, parallel):
        if inner == 1:
            groups, chunks = 1, max(1, min(numba.get_num_threads(), outer))
        else:
            groups, chunks = _split_groups(outer, inner, width)
        parallel_kernel(x, out, groups, chunks, *args)
    else:
        groups = -(-inner // width)
        serial_kernel(x, out, groups, 0, outer * groups, *args)


def cumsum(x, out, parallel=None):
    """out[o, j, k] = sum of x[o, :j+1, k]. out (outer, n, inner): int64 for bool/integer x,
    x's dtype for float x (running total in float64). Returns out."""
    _scan(_as_numeric(x), out, parallel, _cum_items, _cum_parallel, 1 << 62, False)
    return out


def cumprod(x, out, parallel=None):
    """out[o, j, k] = product of x[o, :j+1, k]. out: int64 for bool/integer x (wrapping),
    x's dtype for float x (running product in float64). Returns out."""
    _scan(_as_numeric(x), out, parallel, _cum_items, _cum_parallel, 1 << 62, True)
    return out


@njit(**NJIT)
def _logaddexp(a, b):
    """log(exp(a) + exp(b)) without overflow; NaN propagates, inf + anything = inf."""
    m = _maximum(a, b)
    if m == -np.inf or m == np.inf or m != m:
        return m
    return m + math.log1p(math.exp(-abs(a - b)))


@njit(**NJIT)
def _logcumsumexp_items(x, out, groups, i0, i1):
    """Work items of logcumsumexp (scalar libm log1p/exp: about 10 ns per element)."""
    outer, n, inner = x.shape
    for i in range(i0, i1):
        o, g = i // groups, i % groups
        for k in range(g * inner // groups, (g + 1) * inner // groups):
            acc = x.dtype.type(-np.inf)
            for j in range(n):
                acc = _logaddexp(acc, x[o, j, k])
                out[o, j, k] = acc


@njit(**NJIT_PARALLEL)
def _logcumsumexp_parallel(x, out, groups, chunks):
    items = x.shape[0] * groups
    for c in prange(chunks):
        _logcumsumexp_items(x, out, groups, c * items // chunks, (c + 1) * items // chunks)


def logcumsumexp(x, out, parallel=None):
    """out[o, j, k] = log(sum of exp(x[o, :j+1, k])). x: float32/float64; out: x's dtype."""
    _scan(x, out, parallel, _logcumsumexp_items, _logcumsumexp_parallel, 1 << 62)
    return out


# ---------------------------------------------------------------------------------------------
# softmax / log_softmax
# ---------------------------------------------------------------------------------------------

@njit(**NJIT)
def _softmax_items(x, out, groups, i0, i1, is_log):
    """Work items (row o, column group g) of softmax / log_softmax (is_log) over axis 1.

    Max-subtracted: e = exp(x - max) (our vectorized exp), summed in float64 (blocks in
    x's dtype). A slice whose max is -inf, +inf or NaN becomes all NaN, as in torch.
    """
    outer, n, inner = x.shape
    z = x.dtype.type(0)
    if inner == 1:
        x2 = x.reshape(outer, n)
        out2 = out.reshape(outer, n)
        for o in range(i0, i1):
            v, w = x2[o], out2[o]
            m = _row_extreme(v, True)
            if is_log:
                c = x.dtype.type(math.log(_row_sum_exp(v, m, z)))
                for j in range(n):
                    w[j] = _log_softmax_value(v[j], m, c)
                continue
            s = 0.0
            for b in range(0, n, _BLOCK):
                blk = v[b:min(b + _BLOCK, n)]
                wb = w[b:b + blk.size]
                t = z
                for j in range(blk.size):
                    e = _exp(blk[j] - m)
                    wb[j] = e
                    t += e
                s += t
            inv = x.dtype.type(1.0 / s)
            for j in range(n):
                w[j] *= inv
        return
    width = -(-inner // groups)
    m = np.empty(width, x.dtype)
    s = np.empty(width)
    c = np.empty(width, x.dtype)
    for i in range(i0, i1):
        o, g = i // groups, i % groups
        k0, k1 = g * inner // groups, (g + 1) * inner // groups
        _mid_extreme(x[o], 0, n, k0, k1, m, True)
        _fill(s, 0.0)
        for j in range(n):
            r = x[o, j, k0:k1]
            w = out[o, j, k0:k1]
            if is_log:
                for k in range(r.size):
                    s[k] += _exp(r[k] - m[k])
            else:
                for k in range(r.size):
                    e = _exp(r[k] - m[k])
                    w[k] = e
                    s[k] += e
        for k in range(k1 - k0):
            c[k] = math.log(s[k]) if is_log else 1.0 / s[k]
        for j in range(n):
            w = out[o, j, k0:k1]
            if is_log:
                r = x[o, j, k0:k1]
                for k in range(w.size):
                    w[k] = _log_softmax_value(r[k], m[k], c[k])
            else:
                for k in range(w.size):
                    w[k] *= c[k]


@njit(**NJIT_PARALLEL)
def _softmax_parallel(x, out, groups, chunks, is_log):
    items = x.shape[0] * groups
    for c in prange(chunks):
        _softmax_items(x, out, groups, c * items // chunks, (c + 1) * items // chunks, is_log)


def _softmax_width(x):
    # Column groups of an (n, width) block about 256 KiB, so the three passes (max, exp,
    # scale) over it hit L2; at least 16 columns (one 64-byte line of float32).
    return max(16, (256 * 1024) // max(1, x.shape[1] * x.itemsize))


def softmax(x, out, parallel=None):
    """out[o, :, k] = softmax of x[o, :, k]. x: float32/float64; out (outer, n, inner): x's
    dtype. Rows whose max is -inf, +inf or NaN give NaN, as in torch. Returns out."""
    _scan(x, out, parallel, _softmax_items, _softmax_parallel, _softmax_width(x), False)
    return out


def log_softmax(x, out, parallel=None):
    """out[o, :, k] = log_softmax of x[o, :, k] = x - max - log(sum exp(x - max)).
    x: float32/float64; out: x's dtype. Same NaN rules as softmax. Returns out."""
    _scan(x, out, parallel, _softmax_items, _softmax_parallel, _softmax_width(x), True)
    return out

"""CUDA reductions and scans over the middle axis of a C-contiguous (outer, n, inner) device array.

Launchers take numba device arrays and write into caller-allocated outputs; they validate nothing
beyond what they need to pick a launch (the op layer checks shapes, dtypes and devices first):

- ``sum_ / prod / max_ / min_ / any_ / all_ / count_nonzero(x3, out2)``: x3 (outer, n, inner), out2
  (outer, inner). The accumulator has out2's dtype (pass an int64 out2 to sum integers in int64; bool out2
  for any/all); ``n == 0`` gives the identity (0, 1, False, True; max/min need n > 0).
- ``mean(x3, out2)``, ``var(x3, out2, correction)``, ``logsumexp(x3, out2)``, ``norm(x3, out2, p)``: float
  outputs.
- ``argmax / argmin(x3, out_index)`` and ``max_with_indices / min_with_indices(x3, out_values, out_index)``:
  first index on ties; NaN counts as the extreme (as torch).
- ``cumsum / cumprod / logcumsumexp(x3, out3)``: out3 has x3's shape.

How it runs (no float atomics, so every result is deterministic):
- "row" launch: one block per (output, chunk); threads stride the chunk, then a tree reduction in shared
  memory. With more than one chunk (few outputs, long rows) the per-chunk partials go through a final
  pass of the same kernel.
- "column" launch: one thread per output walks n sequentially; chosen when there are many outputs or
  ``inner`` is large (neighbouring threads read neighbouring addresses).
``method='row'|'column'`` and ``chunks=`` force a launch (tests use them to cover every path).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import cuda, from_dtype

from ._sizes import BLOCK, TARGET_BLOCKS, cdiv, check_pow2, kernel

__all__ = ["sum_", "prod", "max_", "min_", "any_", "all_", "count_nonzero", "mean", "var", "logsumexp", "norm",
           "argmax", "argmin", "max_with_indices", "min_with_indices", "cumsum", "cumprod", "logcumsumexp", "reduce", "fill", "full",
           "block_reduce_device"]

SUM, PROD, MAX, MIN, ANY, ALL, COUNT, SUMEXP, SUMSQ, ABSSUM, ABSMAX, ABSMIN, POWSUM = range(13)
_NAMES = {"sum": SUM, "prod": PROD, "max": MAX, "min": MIN, "any": ANY, "all": ALL, "count_nonzero": COUNT,
          "sumexp": SUMEXP, "sumsq": SUMSQ, "abssum": ABSSUM, "absmax": ABSMAX, "absmin": ABSMIN, "powsum": POWSUM}
# the op that combines partial results of an op in the final pass
_FINAL = {SUM: SUM, PROD: PROD, MAX: MAX, MIN: MIN, ANY: MAX, ALL: MIN, COUNT: SUM, SUMEXP: SUM, SUMSQ: SUM,
          ABSSUM: SUM, ABSMAX: MAX, ABSMIN: MIN, POWSUM: SUM}


@cuda.jit(device=True)
def _imin(a, b):
    # (the builtin min/max lower through a varargs overload that numba's built-in CUDA target fails to compile)
    return a if a < b else b


@cuda.jit(device=True)
def _imax(a, b):
    return a if a > b else b


# ------------------------------------------------------------------ element functions (device)

def _combine_fn(op):
    if op in (SUM, COUNT, SUMEXP, SUMSQ, ABSSUM, POWSUM):
        def f(a, b):
            return a + b
    elif op == PROD:
        def f(a, b):
            return a * b
    elif op in (MAX, ANY, ABSMAX):
        def f(a, b):  # NaN propagates
            if a != a:
                return a
            if b != b or b > a:
                return b
            return a
    else:
        def f(a, b):
            if a != a:
                return a
            if b != b or b < a:
                return b
            return a
    return cuda.jit(device=True)(f)


def _load_fn(op):
    if op in (ANY, ALL, COUNT):
        def f(v, c):
            return 1 if v != 0 else 0
    elif op == SUMEXP:
        def f(v, c):
            return math.exp(v - c)
    elif op == SUMSQ:
        def f(v, c):
            d = v - c
            return d * d
    elif op in (ABSSUM, ABSMAX, ABSMIN):
        def f(v, c):
            return abs(v)
    elif op == POWSUM:
        def f(v, c):  # c: the exponent p
            return abs(v) ** c
    else:
        def f(v, c):
            return v
    return cuda.jit(device=True)(f)


def _acc_dtype(out_dtype):
    d = np.dtype(out_dtype)
    return np.dtype(np.uint8) if d == np.bool_ else d


def _identity(op, acc):
    acc = np.dtype(acc)
    if op in (SUM, COUNT, SUMEXP, SUMSQ, ANY, ABSSUM, POWSUM):
        v = 0
    elif op in (PROD, ALL):
        v = 1
    elif acc.kind == "f":
        v = -np.inf if op in (MAX, ABSMAX) else np.inf
    elif acc.kind in "iu":
        info = np.iinfo(acc)
        v = info.min if op in (MAX, ABSMAX) else info.max
    else:
        raise TypeError(f"cuda reduce: no identity for {acc}")
    return acc.type(v)


@lru_cache(maxsize=None)
def block_reduce_device(op, acc_np, block):
    """A device function ``r(sm, t)``: tree-reduces ``sm[:block]`` into ``sm[0]`` (all threads must call it)."""
    comb = _combine_fn(op)

    def r(sm, t):
        s = block // 2
        while s > 0:
            if t < s:
                sm[t] = comb(sm[t], sm[t + s])
            cuda.syncthreads()
            s //= 2
    return cuda.jit(device=True)(r)


@lru_cache(maxsize=None)
def _row_kernel(op, acc_np, block, to_bool):
    acc_nb = from_dtype(np.dtype(acc_np))
    comb, load = _combine_fn(op), _load_fn(op)
    tree = block_reduce_device(op, acc_np, block)

    @kernel
    def k(x, c, out, ident, chunk):
        # x (outer, n, inner); c (outer, inner) centre for SUMEXP/SUMSQ; out (outer*inner, chunks)
        sm = cuda.shared.array(block, acc_nb)
        o = cuda.blockIdx.x
        g = cuda.blockIdx.y
        t = cuda.threadIdx.x
        inner = x.shape[2]
        p = o // inner
        q = o - p * inner
        lo = g * chunk
        hi = _imin(lo + chunk, x.shape[1])
        cv = c[p, q]
        acc = ident
        i = lo + t
        while i < hi:
            acc = comb(acc, load(x[p, i, q], cv))
            i += block
        sm[t] = acc
        cuda.syncthreads()
        tree(sm, t)
        if t == 0:
            if to_bool:
                out[o, g] = sm[0] != 0
            else:
                out[o, g] = sm[0]
    return k


@lru_cache(maxsize=None)
def _col_kernel(op, to_bool):
    comb, load = _combine_fn(op), _load_fn(op)

    @kernel
    def k(x, c, out, ident):
        o = cuda.grid(1)
        inner = x.shape[2]
        if o < x.shape[0] * inner:
            p = o // inner
            q = o - p * inner
            cv = c[p, q]
            acc = ident
            for i in range(x.shape[1]):
                acc = comb(acc, load(x[p, i, q], cv))
            if to_bool:
                out[o, 0] = acc != 0
            else:
                out[o, 0] = acc
    return k


@kernel
def _fill_k(a, value):
    i = cuda.grid(1)
    if i < a.shape[0]:
        a[i] = value


def fill(a, value, *, block=BLOCK):
    """Every element of the C-contiguous device array ``a`` set to ``value`` on the device (no host copy)."""
    if a.size:
        f = a.reshape(a.size)
        _fill_k[cdiv(a.size, block), block](f, np.dtype(a.dtype).type(value))
    return a


def full(shape, value, dtype, *, block=BLOCK):
    """A new device array of ``shape`` filled with ``value`` on the device."""
    return fill(cuda.device_array(shape, dtype), value, block=block)


def _zeros_like_out(x3, dtype):
    return full((x3.shape[0], x3.shape[2]), 0, dtype)


def _pick(outputs, n, inner, block, method, chunks):
    """(method, chunks) for a reduction with ``outputs`` results over ``n`` elements each."""
    if method is None:
        method = "column" if (inner >= 32 or n <= 2 * block or outputs >= 16 * TARGET_BLOCKS) else "row"
    if method == "column":
        return "column", 1
    if chunks is None:
        want = max(1, TARGET_BLOCKS // max(outputs, 1))
        chunks = max(1, min(want, cdiv(n, 8 * block), 65535))
    return "row", int(chunks)


def reduce(op, x3, out2, centre=None, *, block=BLOCK, method=None, chunks=None):
    """Reduce x3 (outer, n, inner) over n into out2 (outer, inner) with ``op`` (a name of ``_NAMES``).

    ``centre`` (outer, inner): subtracted before exp (sumexp) or squaring (sumsq); zeros when None.
    """
    opc = _NAMES[op] if isinstance(op, str) else op
    block = check_pow2("block", block)
    outer, n, inner = x3.shape
    outputs = outer * inner
    if outputs == 0:
        return out2
    o2 = out2.reshape(outputs, 1)
    acc = _acc_dtype(out2.dtype)
    to_bool = np.dtype(out2.dtype) == np.bool_
    if n == 0:
        fill(o2, bool(_identity(opc, acc)) if to_bool else _identity(opc, acc))
        return out2
    c = centre if centre is not None else _zeros_like_out(x3, acc)
    ident = _identity(opc, acc)
    how, nchunks = _pick(outputs, n, inner, block, method, chunks)
    if how == "column":
        _col_kernel(opc, to_bool)[cdiv(outputs, block), block](x3, c, o2, ident)
        return out2
    if nchunks == 1:
        _row_kernel(opc, acc.str, block, to_bool)[(outputs, 1), block](x3, c, o2, ident, n)
        return out2
    chunk = cdiv(n, nchunks)
    nchunks = cdiv(n, chunk)
    part = cuda.device_array((outputs, nchunks), acc)
    _row_kernel(opc, acc.str, block, False)[(outputs, nchunks), block](x3, c, part, ident, chunk)
    fin = _FINAL[opc]
    p3 = part.reshape(outputs, nchunks, 1)
    zero = _zeros_like_out(p3, acc)
    fin_ident = _identity(fin, acc)
    if nchunks <= 2 * block:
        _col_kernel(fin, to_bool)[cdiv(outputs, block), block](p3, zero, o2, fin_ident)
    else:
        _row_kernel(fin, acc.str, block, to_bool)[(outputs, 1), block](p3, zero, o2, fin_ident, nchunks)
    return out2


def sum_(x3, out2, **kw):
    return reduce(SUM, x3, out2, **kw)


def prod(x3, out2, **kw):
    return reduce(PROD, x3, out2, **kw)


def max_(x3, out2, **kw):
    return reduce(MAX, x3, out2, **kw)


def min_(x3, out2, **kw):
    return reduce(MIN, x3, out2, **kw)


def any_(x3, out2, **kw):
    return reduce(ANY, x3, out2, **kw)


def all_(x3, out2, **kw):
    return reduce(ALL, x3, out2, **kw)


def count_nonzero(x3, out2, **kw):
    return reduce(COUNT, x3, out2, **kw)


# ------------------------------------------------------------------ finishing passes (elementwise)

@kernel
def _scale_k(out, s, scale):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = s[i] * scale


@kernel
def _lse_finish_k(out, s, m):
    i = cuda.grid(1)
    if i < out.shape[0]:
        mi = m[i]
        si = s[i]
        if mi != mi:
            out[i] = mi
        elif si > 0:
            out[i] = math.log(si) + mi
        else:
            out[i] = -math.inf


@kernel
def _finite_or_zero_k(c, m):
    i = cuda.grid(1)
    if i < c.shape[0]:
        v = m[i]
        c[i] = v if (v == v and v != math.inf and v != -math.inf) else 0


def _flat(a):
    return a.reshape(a.size)


def mean(x3, out2, *, block=BLOCK, **kw):
    """Mean over n in out2's float dtype (n == 0 gives NaN)."""
    n = x3.shape[1]
    s = cuda.device_array(out2.shape, out2.dtype)
    reduce(SUM, x3, s, block=block, **kw)
    scale = out2.dtype.type(1.0 / n) if n else out2.dtype.type(np.nan)
    if out2.size:
        _scale_k[cdiv(out2.size, block), block](_flat(out2), _flat(s), scale)
    return out2


def var(x3, out2, correction=1, *, block=BLOCK, **kw):
    """Variance over n (two passes: mean, then sum of squared deviations) divided by max(0, n - correction)."""
    n = x3.shape[1]
    m = cuda.device_array(out2.shape, out2.dtype)
    mean(x3, m, block=block, **kw)
    s = cuda.device_array(out2.shape, out2.dtype)
    reduce(SUMSQ, x3, s, m, block=block, **kw)
    denom = max(0, n - correction)
    scale = out2.dtype.type(1.0 / denom) if denom else out2.dtype.type(np.inf)
    if out2.size:
        _scale_k[cdiv(out2.size, block), block](_flat(out2), _flat(s), scale)
    return out2


@kernel
def _pow_finish_k(out, s, q):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = s[i] ** q


def norm(x3, out2, p=2.0, *, block=BLOCK, **kw):
    """Vector p-norm over n (p = 2, 1, inf, -inf, 0 or any float) into float out2 of x3's dtype."""
    p = float(p)
    if out2.size == 0:
        return out2
    if p == math.inf:
        return reduce(ABSMAX, x3, out2, block=block, **kw)
    if p == -math.inf:
        return reduce(ABSMIN, x3, out2, block=block, **kw)
    if p == 0:
        return reduce(COUNT, x3, out2, block=block, **kw)
    if p == 1:
        return reduce(ABSSUM, x3, out2, block=block, **kw)
    s = cuda.device_array(out2.shape, out2.dtype)
    if p == 2:
        reduce(SUMSQ, x3, s, block=block, **kw)
    else:
        c = full((x3.shape[0], x3.shape[2]), p, out2.dtype)
        reduce(POWSUM, x3, s, c, block=block, **kw)
    _pow_finish_k[cdiv(out2.size, block), block](_flat(out2), _flat(s), out2.dtype.type(1.0 / p))
    return out2


def logsumexp(x3, out2, *, block=BLOCK, **kw):
    """log(sum(exp(x))) over n, shifted by the (finite) max; float out2 of x3's dtype."""
    if out2.size == 0:
        return out2
    m = cuda.device_array(out2.shape, out2.dtype)
    if x3.shape[1] == 0:
        fill(out2, -np.inf)
        return out2
    reduce(MAX, x3, m, block=block, **kw)
    c = cuda.device_array(out2.shape, out2.dtype)
    g = cdiv(out2.size, block)
    _finite_or_zero_k[g, block](_flat(c), _flat(m))
    s = cuda.device_array(out2.shape, out2.dtype)
    reduce(SUMEXP, x3, s, c, block=block, **kw)
    # a NaN anywhere makes the max NaN; an all--inf row has s == 0; an inf max gives log(s) + inf
    _lse_finish_k[g, block](_flat(out2), _flat(s), _flat(m))
    return out2


# ------------------------------------------------------------------ argmax / argmin

def _better_fn(is_max):
    if is_max:
        def f(va, ia, vb, ib):  # does (vb, ib) beat (va, ia)? NaN is the max; first index on ties
            if va != va:
                return vb != vb and ib < ia
            if vb != vb or vb > va:
                return True
            return vb == va and ib < ia
    else:
        def f(va, ia, vb, ib):
            if va != va:
                return vb != vb and ib < ia
            if vb != vb or vb < va:
                return True
            return vb == va and ib < ia
    return cuda.jit(device=True)(f)


_BIG = np.int64(np.iinfo(np.int64).max)


@lru_cache(maxsize=None)
def _arg_row_kernel(is_max, acc_np, block, has_idx):
    acc_nb = from_dtype(np.dtype(acc_np))
    i64 = from_dtype(np.dtype(np.int64))  # resolved here: a kernel body cannot call from_dtype
    better = _better_fn(is_max)

    @kernel
    def k(x, xi, ov, oi, ident, chunk):
        # x (outer, n, inner); xi: indices of x's elements (same shape) when has_idx; ov/oi (outer*inner, chunks)
        sv = cuda.shared.array(block, acc_nb)
        si = cuda.shared.array(block, i64)
        o = cuda.blockIdx.x
        g = cuda.blockIdx.y
        t = cuda.threadIdx.x
        inner = x.shape[2]
        p = o // inner
        q = o - p * inner
        lo = g * chunk
        hi = _imin(lo + chunk, x.shape[1])
        bv = ident
        bi = _BIG
        i = lo + t
        while i < hi:
            v = x[p, i, q]
            j = xi[p, i, q] if has_idx else i
            if better(bv, bi, v, j):
                bv = v
                bi = j
            i += block
        sv[t] = bv
        si[t] = bi
        cuda.syncthreads()
        s = block // 2
        while s > 0:
            if t < s:
                if better(sv[t], si[t], sv[t + s], si[t + s]):
                    sv[t] = sv[t + s]
                    si[t] = si[t + s]
            cuda.syncthreads()
            s //= 2
        if t == 0:
            ov[o, g] = sv[0]
            oi[o, g] = si[0]
    return k


@lru_cache(maxsize=None)
def _arg_col_kernel(is_max):
    better = _better_fn(is_max)

    @kernel
    def k(x, ov, oi):
        o = cuda.grid(1)
        inner = x.shape[2]
        if o < x.shape[0] * inner:
            p = o // inner
            q = o - p * inner
            bv = x[p, 0, q]
            bi = 0
            for i in range(1, x.shape[1]):
                v = x[p, i, q]
                if better(bv, bi, v, i):
                    bv = v
                    bi = i
            ov[o, 0] = bv
            oi[o, 0] = bi
    return k


def _arg(is_max, x3, out_v, out_i, block, method, chunks):
    block = check_pow2("block", block)
    outer, n, inner = x3.shape
    outputs = outer * inner
    if outputs == 0:
        return
    if n == 0:
        raise IndexError("cuda argmax/argmin: cannot reduce an empty dim (the op layer checks this first)")
    acc = _acc_dtype(x3.dtype)
    ov = out_v.reshape(outputs, 1) if out_v is not None else cuda.device_array((outputs, 1), acc)
    oi = out_i.reshape(outputs, 1)
    how, nchunks = _pick(outputs, n, inner, block, method, chunks)
    if how == "column":
        _arg_col_kernel(is_max)[cdiv(outputs, block), block](x3, ov, oi)
        return
    ident = _identity(MAX if is_max else MIN, acc)
    chunk = cdiv(n, nchunks)
    nchunks = cdiv(n, chunk)
    no_idx = cuda.device_array((1, 1, 1), np.int64)  # typed like real indices; never read
    if nchunks == 1:
        _arg_row_kernel(is_max, acc.str, block, False)[(outputs, 1), block](x3, no_idx, ov, oi, ident, n)
        return
    pv = cuda.device_array((outputs, nchunks), acc)
    pi = cuda.device_array((outputs, nchunks), np.int64)
    _arg_row_kernel(is_max, acc.str, block, False)[(outputs, nchunks), block](x3, no_idx, pv, pi, ident, chunk)
    _arg_row_kernel(is_max, acc.str, block, True)[(outputs, 1), block](
        pv.reshape(outputs, nchunks, 1), pi.reshape(outputs, nchunks, 1), ov, oi, ident, nchunks)


def argmax(x3, out_index, *, block=BLOCK, method=None, chunks=None):
    _arg(True, x3, None, out_index, block, method, chunks)
    return out_index


def argmin(x3, out_index, *, block=BLOCK, method=None, chunks=None):
    _arg(False, x3, None, out_index, block, method, chunks)
    return out_index


def max_with_indices(x3, out_values, out_index, *, block=BLOCK, method=None, chunks=None):
    """out_values must have x3's dtype (bool inputs: pass uint8 values, or use argmax)."""
    _arg(True, x3, out_values, out_index, block, method, chunks)
    return out_values, out_index


def min_with_indices(x3, out_values, out_index, *, block=BLOCK, method=None, chunks=None):
    _arg(False, x3, out_values, out_index, block, method, chunks)
    return out_values, out_index


# ------------------------------------------------------------------ scans

@lru_cache(maxsize=None)
def _scan_col_kernel(is_prod):
    @kernel
    def k(x, out, ident):
        o = cuda.grid(1)
        inner = x.shape[2]
        if o < x.shape[0] * inner:
            p = o // inner
            q = o - p * inner
            # ident (0 or 1 of out's dtype) gives the accumulator out's type
            acc = ident * x[p, 0, q] if is_prod else ident + x[p, 0, q]
            out[p, 0, q] = acc
            for i in range(1, x.shape[1]):
                if is_prod:
                    acc = acc * x[p, i, q]
                else:
                    acc = acc + x[p, i, q]
                out[p, i, q] = acc
    return k


@lru_cache(maxsize=None)
def _scan_row_kernel(is_prod, acc_np, block):
    """One block per (outer, inner == 1) row: Hillis-Steele scans of block-sized chunks plus a running carry."""
    acc_nb = from_dtype(np.dtype(acc_np))

    @kernel
    def k(x, out, ident):
        sm = cuda.shared.array(block, acc_nb)
        p = cuda.blockIdx.x
        t = cuda.threadIdx.x
        n = x.shape[1]
        carry = ident
        base = 0
        while base < n:
            i = base + t
            v = ident
            if i < n:
                v = x[p, i, 0]
            sm[t] = v
            cuda.syncthreads()
            s = 1
            while s < block:
                w = sm[t]
                if t >= s:
                    if is_prod:
                        w = w * sm[t - s]
                    else:
                        w = w + sm[t - s]
                cuda.syncthreads()
                sm[t] = w
                cuda.syncthreads()
                s *= 2
            r = sm[t] * carry if is_prod else sm[t] + carry
            if i < n:
                out[p, i, 0] = r
            last = sm[block - 1]
            carry = last * carry if is_prod else last + carry
            cuda.syncthreads()
            base += block
    return k


def _scan(is_prod, x3, out3, block, method):
    block = check_pow2("block", block)
    outer, n, inner = x3.shape
    if outer * inner == 0 or n == 0:
        return out3
    if method is None:
        method = "row" if (inner == 1 and n > 4 * block) else "column"
    acc = _acc_dtype(out3.dtype)
    ident = acc.type(1 if is_prod else 0)
    if method == "row" and inner == 1:
        _scan_row_kernel(is_prod, acc.str, block)[outer, block](x3, out3, ident)
    else:
        _scan_col_kernel(is_prod)[cdiv(outer * inner, block), block](x3, out3, ident)
    return out3


@cuda.jit(device=True)
def _logaddexp(a, b):
    if a != a or b != b:
        return a + b
    m = a if a > b else b
    if m == -math.inf or m == math.inf:
        return m
    d = a - b if a < b else b - a
    return m + math.log1p(math.exp(d))


@kernel
def _logcumsumexp_k(x, out):
    o = cuda.grid(1)
    inner = x.shape[2]
    if o < x.shape[0] * inner:
        p = o // inner
        q = o - p * inner
        acc = x[p, 0, q]
        out[p, 0, q] = acc
        for i in range(1, x.shape[1]):
            acc = _logaddexp(acc, x[p, i, q])
            out[p, i, q] = acc


def logcumsumexp(x3, out3, *, block=BLOCK):
    """Running log(sum(exp)) along n (one thread per line); float32/float64, out3 of x3's dtype."""
    outer, n, inner = x3.shape
    if outer * inner and n:
        _logcumsumexp_k[cdiv(outer * inner, block), block](x3, out3)
    return out3


def cumsum(x3, out3, *, block=BLOCK, method=None):
    """Running sum along n; accumulates in out3's dtype (int64 for integer inputs as torch)."""
    return _scan(False, x3, out3, block, method)


def cumprod(x3, out3, *, block=BLOCK, method=None):
    return _scan(True, x3, out3, block, method)

"""Counter-based random numbers: Philox4x32-10 over a (seed, offset) stream.

The stream
----------
A stream is a 64-bit ``seed`` and the infinite sequence of 32-bit *counters* (words)

    word[j] = philox4x32_10(ctr=(b & 0xFFFFFFFF, b >> 32, 0, 0),
                            key=(seed & 0xFFFFFFFF, seed >> 32))[j & 3],   b = j >> 2

for ``j = 0, 1, 2, ...`` (``j`` is a uint64; it wraps at 2**64). A draw that starts at
``offset`` reads ``word[offset], word[offset + 1], ...`` and every output is a pure function of
``seed`` and the words it reads, so a draw is reproducible, independent of threading and of the
serial/parallel variant, and chunked draws equal one big draw when the caller advances ``offset``
by the counters each chunk consumed (for the pair-based kernels, ``normal``/``log_normal``, the
chunks must hold even counts). Philox4x32-10 is the generator of Random123, cuRAND, torch's CUDA
backend and JAX; :func:`philox4x32_10` passes the Random123 known-answer tests and is plain
integer Python, so ``numba.cuda`` can compile the same function as a device function.

Counters consumed (the caller, jitorch's ``Generator``, keeps ``(seed, offset)`` and advances
``offset`` by this number after each call; every Python wrapper below also returns it):

===================================  =====================================================
kernel                               counters for ``n`` outputs
===================================  =====================================================
uniform, exponential, cauchy         ``n`` (float32), ``2 n`` (float64)
normal, log_normal                   ``n + n % 2`` (float32), ``2 (n + n % 2)`` (float64)
randint, bits64                      ``2 n`` (64 random bits per output, any dtype)
bernoulli, bernoulli_scalar,         ``n``
dropout_mask
geometric                            ``2 n``
randperm(n)                          ``2 n``
multinomial(rows, k, ns)             ``2 rows ns`` with replacement, ``2 rows k`` without
===================================  =====================================================

Any offset is equally correct and equally fast (a draw need not start on a Philox block).

Conversions
-----------
- float32 uniform: 24 bits, ``(w >> 8) * 2**-24`` in [0, 1), every value exactly representable,
  never 1.0; float64 uniform: 53 bits from two counters, never 1.0. Scaled values are clamped
  below ``high`` so rounding of ``low + (high - low) * u`` never returns ``high``.
- normal: Box-Muller, pair ``p`` (outputs ``2p``, ``2p + 1``) from counters ``offset + 2p``,
  ``+ 1`` (float32) or ``offset + 4p .. + 3`` (float64), with this module's own branch-free
  log and sin/cos polynomials (no libm call, so the loops compile to SIMD code). float32: the
  radius uses 31 bits mapped to (0, 1] (no log(0); tails reach 6.66 sigma); float64: 53-bit
  uniforms (tails reach 8.57 sigma). An odd ``n`` drops the last pair's second value.
- randint: 64 random bits, Lemire's multiply-high with exact rejection, so [low, high) is
  exactly uniform for every range up to 2**64 - 1. A rejected draw retries on a separate counter
  space (``ctr = (j lo, j hi, attempt, 0x52455452)`` with ``j`` the draw's first counter) that
  the main stream (``ctr[2] = ctr[3] = 0``) never uses, so the counters consumed stay ``2 n``.
- bernoulli: ``word * 2**-32 < p`` (probability resolution 2**-32); dropout_mask zeroes exactly
  where bernoulli_scalar(p) is true.
- exponential, cauchy: float32 from one counter with the polynomials above; float64 from a
  53-bit uniform with libm. geometric: 53-bit uniform, libm, any output dtype.

Layout and dispatch
-------------------
Kernels write into caller-allocated 1-D C-contiguous arrays and check nothing else (callers
validate; the Python wrappers check layout and dtypes). They work in chunks of 8192 counters:
``_fill_words`` writes a chunk's Philox words into a small buffer (the one vectorized Philox
loop), then a per-kernel loop turns them into outputs. Each kernel is compiled twice from the
same body, ``*_serial`` and ``*_parallel`` (``prange`` over chunks); the Python wrappers pick one
by size against :data:`PARALLEL_THRESHOLD`, and both give identical bits. Kernels are compiled
without fastmath, so an output is bit-identical whether a SIMD body or a scalar remainder
computed it (chunked draws stay equal to one draw). The wrappers take Python ints for ``seed``
(any int, reduced mod 2**64) and ``offset`` and return the counters consumed.
"""
from __future__ import annotations

import math
import types

import numpy as np
from numba import njit, prange

from ._config import NJIT, NJIT_PARALLEL, PARALLEL_THRESHOLD

__all__ = [
    "philox4x32_10", "philox_block", "philox_word", "mix64",
    "uniform", "normal", "randint", "bits64", "bernoulli", "bernoulli_scalar", "dropout_mask",
    "randperm", "multinomial", "exponential", "geometric", "cauchy", "log_normal",
    "PARALLEL_THRESHOLD",
]

# The shared settings, but with fastmath off: every output must be bit-identical whether it is
# computed in a loop's SIMD body or its scalar remainder (a chunked draw must equal one big
# draw, and a later CUDA build should match), and 'contract'/'reassoc'/'arcp' let LLVM round the
# two differently. (Also, numba refuses a frozenset for fastmath.) The loops vectorize anyway:
# they have no reductions.
_NJIT = dict(NJIT, fastmath=False)
_NJIT_PARALLEL = dict(NJIT_PARALLEL, fastmath=False)
_INLINE = dict(inline="always", error_model="numpy", cache=True)
# helpers called a few times per chunk stay real calls: inlining them would only add compile time
_CALL = dict(error_model="numpy", cache=True, nogil=True)

# ---------------------------------------------------------------- integer constants (uint64)
# numba types a module-level numpy scalar as a constant of that type; mixing uint64 with a plain
# int would give float64, so every constant used with counters is a uint64.
_M32 = np.uint64(0xFFFFFFFF)
_S1 = np.uint64(1)
_S2 = np.uint64(2)
_S3 = np.uint64(3)
_S5 = np.uint64(5)
_S6 = np.uint64(6)
_S8 = np.uint64(8)
_S9 = np.uint64(9)
_S32 = np.uint64(32)
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_PHILOX_M0 = np.uint64(0xD2511F53)
_PHILOX_M1 = np.uint64(0xCD9E8D57)
_PHILOX_W0 = np.uint64(0x9E3779B9)
_PHILOX_W1 = np.uint64(0xBB67AE85)
_RETRY_TAG = np.uint64(0x52455452)  # ctr[3] of the rejection-retry counter space ("RETR")
_SM_G = np.uint64(0x9E3779B97F4A7C15)
_SM_A = np.uint64(0xBF58476D1CE4E5B9)
_SM_B = np.uint64(0x94D049BB133111EB)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_I2P31 = np.int64(2147483648)

# ---------------------------------------------------------------- float constants
_F32_2M24 = np.float32(2.0 ** -24)
_F32_2M23 = np.float32(2.0 ** -23)
_F32_2M31 = np.float32(2.0 ** -31)
_F32_2M32 = np.float32(2.0 ** -32)
_F32_HALF = np.float32(0.5)
_F32_ONE = np.float32(1.0)
_F32_TWO = np.float32(2.0)
_F32_M2 = np.float32(-2.0)
_F32_ZERO = np.float32(0.0)
_F32_LN2 = np.float32(0.6931471805599453)
_F32_SQRTH = np.float32(0.7071067811865476)
_F32_PIO2 = np.float32(1.5707963267948966)
_F32_FOUR = np.float32(4.0)
_F64_2M26 = np.float64(2.0 ** 26)
_F64_2M53 = np.float64(2.0 ** -53)
_F64_2M32 = np.float64(2.0 ** -32)
_F64_2P31 = np.float64(2.0 ** 31)



# ================================================================ core: plain integer Python
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 (Salmon et al., SC'11) of the 128-bit counter ``(c0..c3)`` under the 64-bit
    key ``(k0, k1)``; every argument and result is a uint64 holding a 32-bit value.

    Plain integer code (no CPU-only feature), so ``numba.cuda.jit(device=True)`` compiles it too.
    """
    for _ in range(10):
        p0 = _PHILOX_M0 * c0
        p1 = _PHILOX_M1 * c2
        n0 = (p1 >> _S32) ^ c1 ^ k0
        n2 = (p0 >> _S32) ^ c3 ^ k1
        c1 = p1 & _M32
        c3 = p0 & _M32
        c0 = n0
        c2 = n2
        k0 = (k0 + _PHILOX_W0) & _M32
        k1 = (k1 + _PHILOX_W1) & _M32
    return c0, c1, c2, c3


def mix64(x):
    """splitmix64 finalizer of a uint64 (a bijection with full avalanche).

    For deriving independent seeds (e.g. ``mix64(seed ^ worker_id)``), not used by the stream.
    """
    z = x + _SM_G
    z = (z ^ (z >> _S30)) * _SM_A
    z = (z ^ (z >> _S27)) * _SM_B
    return z ^ (z >> _S31)


philox4x32_10 = njit(**_INLINE)(philox4x32_10)
mix64 = njit(**_INLINE)(mix64)


@njit(**_INLINE)
def _key(seed):
    s = np.uint64(seed)
    return s & _M32, s >> _S32


@njit(**_INLINE)
def _block(k0, k1, b):
    """The 4 counters of block ``b`` (uint64): words ``4b .. 4b+3``."""
    return philox4x32_10(b & _M32, b >> _S32, _U0, _U0, k0, k1)


@njit(**_INLINE)
def _blockk(k0, k1, b0, k):
    return _block(k0, k1, b0 + np.uint64(k))


@njit(**_INLINE)
def _mulhilo64(a, b):
    """128-bit product of two uint64: ``(high, low)`` words (32-bit pieces, SIMD-friendly)."""
    a0 = a & _M32
    a1 = a >> _S32
    b0 = b & _M32
    b1 = b >> _S32
    p00 = a0 * b0
    p01 = a0 * b1
    p10 = a1 * b0
    p11 = a1 * b1
    mid = (p00 >> _S32) + (p01 & _M32) + (p10 & _M32)
    hi = p11 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)
    return hi, a * b


@njit(**_CALL)
def _retry_bits64(k0, k1, j, attempt):
    """64 bits from the retry counter space of the draw whose first counter is ``j``."""
    r0, r1, r2, r3 = philox4x32_10(j & _M32, j >> _S32, np.uint64(attempt), _RETRY_TAG, k0, k1)
    return (r0 << _S32) | r1


@njit(**_CALL)
def _lemire(k0, k1, j, x, r):
    """Exactly uniform integer in [0, r) (r >= 1) from 64 bits ``x``; retries are rare."""
    hi, lo = _mulhilo64(x, r)
    if lo < r:
        t = (_U0 - r) % r
        attempt = 1
        while lo < t:
            hi, lo = _mulhilo64(_retry_bits64(k0, k1, j, attempt), r)
            attempt += 1
    return hi


# ================================================================ unit conversions
@njit(**_INLINE)
def _u24(w):
    """float32 in [0, 1), 24 bits: exactly representable, never 1."""
    return np.float32(np.int32(w >> _S8)) * _F32_2M24


@njit(**_INLINE)
def _u31_open(w):
    """float32 in (0, 1] from 31 bits: smallest 2**-32 (no log(0))."""
    return np.float32(np.int32(w >> _S1)) * _F32_2M31 + _F32_2M32


@njit(**_INLINE)
def _u23_mid(w):
    """float32 in (0, 1) from 23 bits: (m + 1/2) * 2**-23, exactly representable."""
    return (np.float32(np.int32(w >> _S9)) + _F32_HALF) * _F32_2M23


@njit(**_INLINE)
def _u53(w0, w1):
    """float64 in [0, 1), 53 bits: never 1."""
    a = np.float64(np.int32(w0 >> _S5))
    b = np.float64(np.int32(w1 >> _S6))
    return (a * _F64_2M26 + b) * _F64_2M53


@njit(**_INLINE)
def _u32_f64(w):
    """``w * 2**-32`` exactly, as float64 (via int32 so it vectorizes without AVX-512)."""
    return (np.float64(np.int32(np.int64(w) - _I2P31)) + _F64_2P31) * _F64_2M32


@njit(**_INLINE)
def _log_f32(x):
    """Natural log of a float32 in [2**-32, 1], branch-free (selects) so loops vectorize.

    Range reduction by comparisons to x in [sqrt(1/2), sqrt(2)), then the atanh series
    ``2 s (1 + z/3 + z^2/5 + z^3/7 + z^4/9)``, s = (x-1)/(x+1), |s| <= 0.1716: truncation below
    2e-9, so float32 rounding dominates (error ~ 1 ulp of the result).
    """
    e = _F32_ZERO
    if x < np.float32(2.0 ** -16):
        x = x * np.float32(65536.0)
        e = e - np.float32(16.0)
    if x < np.float32(2.0 ** -8):
        x = x * np.float32(256.0)
        e = e - np.float32(8.0)
    if x < np.float32(2.0 ** -4):
        x = x * np.float32(16.0)
        e = e - np.float32(4.0)
    if x < np.float32(0.25):
        x = x * np.float32(4.0)
        e = e - np.float32(2.0)
    if x < _F32_HALF:
        x = x * _F32_TWO
        e = e - _F32_ONE
    if x < _F32_SQRTH:
        x = x * _F32_TWO
        e = e - _F32_ONE
    f = x - _F32_ONE
    s = f / (_F32_TWO + f)
    z = s * s
    p = np.float32(1.0 / 9.0)
    p = p * z + np.float32(1.0 / 7.0)
    p = p * z + np.float32(1.0 / 5.0)
    p = p * z + np.float32(1.0 / 3.0)
    p = p * z + _F32_ONE
    return e * _F32_LN2 + _F32_TWO * s * p


@njit(**_INLINE)
def _sincos_2pi_f32(v):
    """``(sin(2 pi v), cos(2 pi v))`` for float32 v in [-1, 1], branch-free (cephes sinf/cosf
    minimax polynomials on [-pi/4, pi/4] after a quadrant reduction done on ``4 v``)."""
    t = v * _F32_FOUR
    q = np.int32(np.floor(t + _F32_HALF))
    x = (t - np.float32(q)) * _F32_PIO2
    z = x * x
    s = ((np.float32(-1.9515295891e-4) * z + np.float32(8.3321608736e-3)) * z
         - np.float32(1.6666654611e-1)) * z * x + x
    c = ((np.float32(2.443315711809948e-5) * z - np.float32(1.388731625493765e-3)) * z
         + np.float32(4.166664568298827e-2)) * z * z - _F32_HALF * z + _F32_ONE
    swap = (q & 1) != 0
    sv = c if swap else s
    cv = s if swap else c
    if (q & 2) != 0:
        sv = -sv
    if ((q + 1) & 2) != 0:
        cv = -cv
    return sv, cv


_F64_LN2 = np.float64(0.6931471805599453)
_F64_SQRTH = np.float64(0.7071067811865476)
_F64_PIO2 = np.float64(1.5707963267948966)


@njit(**_INLINE)
def _log_f64(x):
    """Natural log of a float64 in [2**-64, 1], branch-free like :func:`_log_f32` (atanh series
    to z**10: truncation below 1e-18; a few ulp in all)."""
    e = 0.0
    if x < 2.0 ** -32:
        x = x * 4294967296.0
        e = e - 32.0
    if x < 2.0 ** -16:
        x = x * 65536.0
        e = e - 16.0
    if x < 2.0 ** -8:
        x = x * 256.0
        e = e - 8.0
    if x < 2.0 ** -4:
        x = x * 16.0
        e = e - 4.0
    if x < 0.25:
        x = x * 4.0
        e = e - 2.0
    if x < 0.5:
        x = x * 2.0
        e = e - 1.0
    if x < _F64_SQRTH:
        x = x * 2.0
        e = e - 1.0
    f = x - 1.0
    s = f / (2.0 + f)
    z = s * s
    p = 1.0 / 21.0
    p = p * z + 1.0 / 19.0
    p = p * z + 1.0 / 17.0
    p = p * z + 1.0 / 15.0
    p = p * z + 1.0 / 13.0
    p = p * z + 1.0 / 11.0
    p = p * z + 1.0 / 9.0
    p = p * z + 1.0 / 7.0
    p = p * z + 1.0 / 5.0
    p = p * z + 1.0 / 3.0
    p = p * z + 1.0
    return e * _F64_LN2 + 2.0 * s * p


@njit(**_INLINE)
def _sincos_2pi_f64(v):
    """``(sin(2 pi v), cos(2 pi v))`` for float64 v in [-1, 1], branch-free: quadrant reduction
    on ``4 v``, then Taylor series on [-pi/4, pi/4] to x**17 / x**18 (truncation below 1e-18)."""
    t = v * 4.0
    q = np.int32(np.floor(t + 0.5))
    x = (t - np.float64(q)) * _F64_PIO2
    z = x * x
    s = 1.0 / 355687428096000.0
    s = s * z - 1.0 / 1307674368000.0
    s = s * z + 1.0 / 6227020800.0
    s = s * z - 1.0 / 39916800.0
    s = s * z + 1.0 / 362880.0
    s = s * z - 1.0 / 5040.0
    s = s * z + 1.0 / 120.0
    s = s * z - 1.0 / 6.0
    s = s * z * x + x
    c = -1.0 / 6402373705728000.0
    c = c * z + 1.0 / 20922789888000.0
    c = c * z - 1.0 / 87178291200.0
    c = c * z + 1.0 / 479001600.0
    c = c * z - 1.0 / 3628800.0
    c = c * z + 1.0 / 40320.0
    c = c * z - 1.0 / 720.0
    c = c * z + 1.0 / 24.0
    c = c * z * z - 0.5 * z + 1.0
    swap = (q & 1) != 0
    sv = c if swap else s
    cv = s if swap else c
    if (q & 2) != 0:
        sv = -sv
    if ((q + 1) & 2) != 0:
        cv = -cv
    return sv, cv


# ---------------------------------------------------------------- per-output transforms
@njit(**_INLINE)
def _unif_f32(w, low, span, cap):
    v = low + span * _u24(w)
    return cap if v > cap else v


@njit(**_INLINE)
def _unif_f64(w0, w1, low, span, cap):
    v = low + span * _u53(w0, w1)
    return cap if v > cap else v


@njit(**_INLINE)
def _normal_f32(w0, w1, mean, std):
    r = np.sqrt(_F32_M2 * min(_log_f32(_u31_open(w0)), _F32_ZERO))
    s, c = _sincos_2pi_f32(_u24(w1))
    r = r * std
    return mean + r * c, mean + r * s


@njit(**_INLINE)
def _normal_f64(w0, w1, w2, w3, mean, std):
    r = np.sqrt(-2.0 * min(_log_f64(1.0 - _u53(w0, w1)), 0.0)) * std
    s, c = _sincos_2pi_f64(_u53(w2, w3))
    return mean + r * c, mean + r * s


# called (not inlined) copies for the odd last pair: one more inlined copy per kernel would
# only add compile time
_normal_f32_call = njit(**_CALL)(_normal_f32.py_func)
_normal_f64_call = njit(**_CALL)(_normal_f64.py_func)


@njit(**_INLINE)
def _exp_f32(w, scale):
    return -_log_f32(_u31_open(w)) * scale


@njit(**_INLINE)
def _cauchy_f32(w, median, sigma):
    # tan(pi (u - 1/2)) = -cos(pi u) / sin(pi u), u in (0, 1) so sin > 0
    s, c = _sincos_2pi_f32(_u23_mid(w) * _F32_HALF)
    return median - sigma * c / s


@njit(**_INLINE)
def _bits64(w0, w1):
    return (w0 << _S32) | w1


# ================================================================ kernels
# Every kernel works chunk by chunk: ``_fill_words`` writes the chunk's counters into a small
# uint32 buffer (the only place Philox is compiled: one vectorized loop, any alignment), then a
# per-kernel loop turns buffer words into outputs. Splitting the two keeps each kernel small to
# compile, lets both loops vectorize (a libm call in a transform no longer de-vectorizes Philox)
# and makes every offset equally fast. Chunks are independent, so ``prange`` over them gives the
# same numbers as the serial loop.

_CHW = 8192  # counters per chunk (32 KiB buffer)


def _twin(fn):
    """Compile ``fn`` as a serial kernel (``prange`` = ``range``) and as a parallel kernel.

    The parallel copy gets its own ``__qualname__`` so numba's on-disk cache keeps the two apart.
    """
    serial = njit(**_NJIT)(fn)
    pfn = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_parallel",
                             fn.__defaults__, fn.__closure__)
    pfn.__qualname__ = fn.__qualname__ + "_parallel"
    pfn.__module__ = fn.__module__
    pfn.__doc__ = fn.__doc__
    return serial, njit(**_NJIT_PARALLEL)(pfn)


@njit(**_INLINE)
def _lane(r0, r1, r2, r3, lane):
    if lane == 0:
        return r0
    if lane == 1:
        return r1
    if lane == 2:
        return r2
    return r3


@njit(**_CALL)
def _fill_words(k0, k1, j, buf, m):
    """``buf[0:m] = word[j], ..., word[j + m - 1]`` (``buf`` uint32, ``j`` uint64, any alignment).

    Outputs are indexed with uint64: numba adds a negative-index wraparound select to signed
    indices it cannot prove non-negative, and that select stops LLVM from vectorizing the loop.
    """
    a = np.int64(j & _S3)
    h = np.int64(0)
    if a != 0 and m > 0:
        r0, r1, r2, r3 = _block(k0, k1, j >> _S2)
        h = min(4 - a, m)
        for i in range(h):
            buf[i] = np.uint32(_lane(r0, r1, r2, r3, a + i))
    nb = (m - h) >> 2
    b0 = (j + np.uint64(h)) >> _S2
    for k in range(nb):
        w0, w1, w2, w3 = _blockk(k0, k1, b0, k)
        e = np.uint64(h + 4 * k)
        buf[e] = np.uint32(w0)
        buf[e + _U1] = np.uint32(w1)
        buf[e + _S2] = np.uint32(w2)
        buf[e + _S3] = np.uint32(w3)
    t = m - h - 4 * nb
    if t > 0:
        r0, r1, r2, r3 = _blockk(k0, k1, b0, nb)
        for i in range(t):
            buf[h + 4 * nb + i] = np.uint32(_lane(r0, r1, r2, r3, i))


@njit(**_INLINE)
def _chunk(c, per_chunk, total):
    """Start and length of chunk ``c`` of ``total`` items, ``per_chunk`` per chunk."""
    i0 = c * per_chunk
    return i0, min(per_chunk, total - i0)


# ---------------------------------------------------------------- uniform
def _uniform_f32_impl(seed, offset, out, low, span, cap):
    k0, k1 = _key(seed)
    n = out.size
    for c in prange((n + _CHW - 1) // _CHW):
        i0, m = _chunk(c, _CHW, n)
        buf = np.empty(m, np.uint32)
        _fill_words(k0, k1, offset + np.uint64(i0), buf, m)
        o = out[i0:i0 + m]
        for q in range(m):
            o[q] = _unif_f32(buf[q], low, span, cap)


uniform_f32_serial, uniform_f32_parallel = _twin(_uniform_f32_impl)


def _uniform_f64_impl(seed, offset, out, low, span, cap):
    k0, k1 = _key(seed)
    n = out.size
    per = _CHW // 2
    for c in prange((n + per - 1) // per):
        i0, m = _chunk(c, per, n)
        buf = np.empty(2 * m, np.uint32)
        _fill_words(k0, k1, offset + np.uint64(2 * i0), buf, 2 * m)
        o = out[i0:i0 + m]
        for q in range(m):
            o[q] = _unif_f64(buf[2 * q], buf[2 * q + 1], low, span, cap)


uniform_f64_serial, uniform_f64_parallel = _twin(_uniform_f64_impl)


# ---------------------------------------------------------------- raw 64-bit words
def _bits64_impl(seed, offset, out):
    k0, k1 = _key(seed)
    n = out.size
    per = _CHW // 2
    for c in prange((n + per - 1) // per):
        i0, m = _chunk(c, per, n)
        buf = np.empty(2 * m, np.uint32)
        _fill_words(k0, k1, offset + np.uint64(2 * i0), buf, 2 * m)
        o = out[i0:i0 + m]
        for q in range(m):
            o[q] = _bits64(np.uint64(buf[2 * q]), np.uint64(buf[2 * q + 1]))


bits64_serial, bits64_parallel = _twin(_bits64_impl)


# ---------------------------------------------------------------- normal (Box-Muller pairs)
def _normal_f32_impl(seed, offset, out, mean, std):
    """Pair ``p`` (outputs 2p, 2p+1) reads counters ``offset + 2p`` (radius) and ``+ 1`` (angle)."""
    k0, k1 = _key(seed)
    n = out.size
    npair = (n + 1) >> 1
    per = _CHW // 2
    for c in prange((npair + per - 1) // per):
        p0, m = _chunk(c, per, npair)
        buf = np.empty(2 * m, np.uint32)
        _fill_words(k0, k1, offset + np.uint64(2 * p0), buf, 2 * m)
        o = out[2 * p0:min(n, 2 * (p0 + m))]
        full = o.size >> 1
        for q in range(full):
            z0, z1 = _normal_f32(buf[2 * q], buf[2 * q + 1], mean, std)
            o[2 * q] = z0
            o[2 * q + 1] = z1
        if full < m:  # odd n: the last pair gives one output
            z0, z1 = _normal_f32_call(buf[2 * full], buf[2 * full + 1], mean, std)
            o[2 * full] = z0


normal_f32_serial, normal_f32_parallel = _twin(_normal_f32_impl)


def _normal_f64_impl(seed, offset, out, mean, std):
    """Pair ``p`` reads counters ``offset + 4p .. + 3``: two 53-bit uniforms (radius, angle)."""
    k0, k1 = _key(seed)
    n = out.size
    npair = (n + 1) >> 1
    per = _CHW // 4
    for c in prange((npair + per - 1) // per):
        p0, m = _chunk(c, per, npair)
        buf = np.empty(4 * m, np.uint32)
        _fill_words(k0, k1, offset + np.uint64(4 * p0), buf, 4 * m)
        o = out[2 * p0:min(n, 2 * (p0 + m))]
        full = o.size >> 1
        for q in range(full):
            z0, z1 = _normal_f64(buf[4 * q], buf[4 * q + 1], buf[4 * q + 2], buf[4 * q + 3], mean, std)
            o[2 * q] = z0
            o[2 * q + 1] = z1
        if full < m:  # odd n: the last pair gives one output
            z0, z1 = _normal_f64_call(buf[4 * full], buf[4 * full + 1], buf[4 * full + 2],
                                      buf[4 * full + 3], mean, std)
            o[2 * full] = z0


normal_f64_serial, normal_f64_parallel = _twin(_normal_f64_impl)


def _exp_inplace_impl(out):
    n = out.size
    for c in prange((n + _CHW - 1) // _CHW):
        i0, m = _chunk(c, _CHW, n)
        o = out[i0:i0 + m]
        for q in range(m):
            o[q] = np.exp(o[q])


exp_inplace_serial, exp_inplace_parallel = _twin(_exp_inplace_impl)


# ---------------------------------------------------------------- randint
def _randint_impl(seed, offset, out, low, r, t):
    """``out[i] = low + (exactly uniform integer in [0, r))`` from the 64 bits at counters
    ``offset + 2i, offset + 2i + 1``; ``t = (2**64 - r) % r`` is Lemire's rejection bound."""
    k0, k1 = _key(seed)
    n = out.size
    ul = np.uint64(low)
    per = _CHW // 2
    for c in prange((n + per - 1) // per):
        i0, m = _chunk(c, per, n)
        buf = np.empty(2 * m, np.uint32)
        _fill_words(k0, k1, offset + np.uint64(2 * i0), buf, 2 * m)
        o = out[i0:i0 + m]
        bad = 0
        for q in range(m):
            hi, lo = _mulhilo64(_bits64(np.uint64(buf[2 * q]), np.uint64(buf[2 * q + 1])), r)
            o[q] = np.int64(ul + hi)
            bad += np.int64(lo < t)
        if bad > 0:  # rare: redo this chunk's rejected draws exactly
            for q in range(m):
                x = _bits64(np.uint64(buf[2 * q]), np.uint64(buf[2 * q + 1]))
                hi, lo = _mulhilo64(x, r)
                if lo < t:
                    j = offset + np.uint64(2 * (i0 + q))
                    o[q] = np.int64(ul + _lemire(k0, k1, j, x, r))


randint_serial, randint_parallel = _twin(_randint_impl)


# ---------------------------------------------------------------- bernoulli / dropout
def _bernoulli_impl(seed, offset, p, out):
    """``out[i] = word[offset + i] * 2**-32 < p[i]`` (``p`` float32/float64, same size)."""
    k0, k1 = _key(seed)
    n = out.size
    for c in prange((n + _CHW - 1) // _CHW):
        i0, m = _chunk(c, _CHW, n)
        buf = np.empty(m, np.uint32)
        _fill_words(k0, k1, offset + np.uint64(i0), buf, m)
        o = out[i0:i0 + m]
        pp = p[i0:i0 + m]
        for q in range(m):
            o[q] = _u32_f64(buf[q]) < pp[q]


bernoulli_serial, bernoulli_parallel = _twin(_bernoulli_impl)


def _bernoulli_scalar_impl(seed, offset, thr, out):
    """``out[i] = word[offset + i] < thr`` with ``thr = ceil(p * 2**32)`` (same as ``u < p``)."""
    k0, k1 = _key(seed)
    n = out.size
    for c in prange((n + _CHW - 1) // _CHW):
        i0, m = _chunk(c, _CHW, n)
        buf = np.empty(m, np.uint32)
        _fill_words(k0, k1, offset + np.uint64(i0), buf, m)
        o = out[i0:i0 + m]
        for q in range(m):
            o[q] = np.uint64(buf[q]) < thr


bernoulli_scalar_serial, bernoulli_scalar_parallel = _twin(_bernoulli_scalar_impl)


def _dropout_impl(seed, offset, thr, scale, out):
    """``out[i] = 0 if word[offset + i] < thr else scale`` (``thr = ceil(p * 2**32)``)."""
    k0, k1 = _key(seed)
    n = out.size
    zero = scale - scale
    for c in prange((n + _CHW - 1) // _CHW):
        i0, m = _chunk(c, _CHW, n)
        buf = np.empty(m, np.uint32)
        _fill_words(k0, k1, offset + np.uint64(i0), buf, m)
        o = out[i0:i0 + m]
        for q in range(m):
            o[q] = zero if np.uint64(buf[q]) < thr else scale


dropout_serial, dropout_parallel = _twin(_dropout_impl)


# ---------------------------------------------------------------- exponential / cauchy / geometric
def _exponential_f32_impl(seed, offset, out, scale):
    k0, k1 = _key(seed)
    n = out.size
    for c in prange((n + _CHW - 1) // _CHW):
        i0, m = _chunk(c, _CHW, n)
        buf = np.empty(m, np.uint32)
        _fill_words(k0, k1, offset + np.uint64(i0), buf, m)
        o = out[i0:i0 + m]
        for q in range(m):
            o[q] = _exp_f32(buf[q], scale)


exponential_f32_serial, exponential_f32_parallel = _twin(_exponential_f32_impl)


def _cauchy_f32_impl(seed, offset, out, median, sigma):
    k0, k1 = _key(seed)
    n = out.size
    for c in prange((n + _CHW - 1) // _CHW):
        i0, m = _chunk(c, _CHW, n)
        buf = np.empty(m, np.uint32)
        _fill_words(k0, k1, offset + np.uint64(i0), buf, m)
        o = out[i0:i0 + m]
        for q in range(m):
            o[q] = _cauchy_f32(buf[q], median, sigma)


cauchy_f32_serial, cauchy_f32_parallel = _twin(_cauchy_f32_impl)


def _u53_map_impl(seed, offset, out, op, a, b):
    """Output ``i`` from the 53-bit uniform ``u`` at counters ``offset + 2i, + 1`` (libm):
    op 0 exponential ``-log(1 - u) * a``; 1 cauchy ``a + b tan(pi (u - 1/2))``;
    2 geometric ``floor(log(1 - u) / a) + 1`` with ``a = log(1 - p)``."""
    k0, k1 = _key(seed)
    n = out.size
    per = _CHW // 2
    for c in prange((n + per - 1) // per):
        i0, m = _chunk(c, per, n)
        buf = np.empty(2 * m, np.uint32)
        _fill_words(k0, k1, offset + np.uint64(2 * i0), buf, 2 * m)
        o = out[i0:i0 + m]
        if op == 0:
            for q in range(m):
                o[q] = -math.log1p(-_u53(buf[2 * q], buf[2 * q + 1])) * a
        elif op == 1:
            for q in range(m):
                o[q] = a + b * math.tan(math.pi * (_u53(buf[2 * q], buf[2 * q + 1]) - 0.5))
        else:
            for q in range(m):
                o[q] = math.floor(math.log1p(-_u53(buf[2 * q], buf[2 * q + 1])) / a) + 1.0


u53_map_serial, u53_map_parallel = _twin(_u53_map_impl)


# ---------------------------------------------------------------- randperm
@njit(**_NJIT)
def randperm_kernel(seed, offset, n, out):
    """Uniform random permutation of ``0 .. n-1`` into ``out[:n]`` (int64 or any int dtype).

    Fisher-Yates: step ``s`` (``i = n-1-s`` down to 1) swaps ``out[i]`` with ``out[j]``, ``j``
    exactly uniform in ``[0, i]`` from the 64 bits at counters ``offset + 2s, offset + 2s + 1``
    (Lemire, retries on the separate retry space). Serial; consumes ``2 n`` counters.
    """
    for i in range(n):
        out[i] = i
    if n < 2:
        return
    k0, k1 = _key(seed)
    per = _CHW // 2
    buf = np.empty(2 * per, np.uint32)
    s = 0
    while s < n - 1:
        cnt = min(per, n - 1 - s)
        _fill_words(k0, k1, offset + np.uint64(2 * s), buf, 2 * cnt)
        for q in range(cnt):
            i = n - 1 - (s + q)
            r = np.uint64(i + 1)
            x = _bits64(np.uint64(buf[2 * q]), np.uint64(buf[2 * q + 1]))
            hi, lo = _mulhilo64(x, r)
            if lo < r:
                hi = _lemire(k0, k1, offset + np.uint64(2 * (s + q)), x, r)
            j = np.int64(hi)
            tmp = out[i]
            out[i] = out[j]
            out[j] = tmp
        s += cnt


# ---------------------------------------------------------------- multinomial
@njit(**_CALL)
def _multinomial_row(seed, offset, prow, ns, replacement, orow):
    k = prow.size
    if replacement:
        cdf = np.empty(k, np.float64)
        acc = 0.0
        last = 0
        for j in range(k):
            pj = prow[j]
            acc += pj
            cdf[j] = acc
            if pj > 0:
                last = j
        u = np.empty(ns, np.float64)
        uniform_f64_serial(seed, offset, u, 0.0, acc, np.inf)
        for s in range(ns):
            x = u[s]
            lo, hi = 0, last  # first index with cdf > x, clamped to the last positive category
            while lo < hi:
                mid = (lo + hi) >> 1
                if cdf[mid] > x:
                    hi = mid
                else:
                    lo = mid + 1
            orow[s] = lo
    else:
        keys = np.empty(k, np.float64)
        uniform_f64_serial(seed, offset, keys, 0.0, 1.0, np.inf)
        for j in range(k):
            pj = prow[j]
            keys[j] = -math.log1p(-keys[j]) / pj if pj > 0 else np.inf
        _smallest(keys, ns, orow)


@njit(**_CALL)
def _smallest(keys, ns, orow):
    """``orow[:ns]`` = indices of the ``ns`` smallest ``keys`` in ascending key order (a max-heap
    of size ns, then heap sort: O(k log ns); cheaper to compile than ``np.argsort``)."""
    hk = np.empty(ns, np.float64)
    hi = np.empty(ns, np.int64)
    size = 0
    for j in range(keys.size):
        kj = keys[j]
        if size < ns:
            pos = size
            size += 1
            while pos > 0:
                par = (pos - 1) >> 1
                if hk[par] >= kj:
                    break
                hk[pos] = hk[par]
                hi[pos] = hi[par]
                pos = par
            hk[pos] = kj
            hi[pos] = j
        elif kj < hk[0]:
            _sift_down(hk, hi, ns, kj, j)
    for end in range(ns - 1, -1, -1):
        orow[end] = hi[0]
        _sift_down(hk, hi, end, hk[end], hi[end])


@njit(**_CALL)
def _sift_down(hk, hi, size, key, idx):
    """Put ``(key, idx)`` at the root of the max-heap ``hk[:size]`` and sift it down."""
    pos = 0
    while True:
        c = 2 * pos + 1
        if c >= size:
            break
        if c + 1 < size and hk[c + 1] > hk[c]:
            c += 1
        if hk[c] <= key:
            break
        hk[pos] = hk[c]
        hi[pos] = hi[c]
        pos = c
    if size > 0:
        hk[pos] = key
        hi[pos] = idx


def _multinomial_impl(seed, offset, probs, ns, replacement, out):
    rows = probs.shape[0]
    k = probs.shape[1]
    per_row = 2 * ns if replacement else 2 * k
    for r in prange(rows):
        _multinomial_row(seed, offset + np.uint64(r * per_row), probs[r], ns, replacement, out[r])


multinomial_serial, multinomial_parallel = _twin(_multinomial_impl)


# ================================================================ Python entry points
_MASK64 = (1 << 64) - 1
_TWO32 = 1 << 32


def _u64(x):
    return np.uint64(int(x) & _MASK64)


def _check_out(out, name="out"):
    if not isinstance(out, np.ndarray) or out.ndim != 1 or not out.flags.c_contiguous:
        raise ValueError(f"{name} must be a 1-D C-contiguous numpy array")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")


def _pick(pair, n):
    return pair[1] if n >= PARALLEL_THRESHOLD else pair[0]


def _threshold(p):
    """``ceil(p * 2**32)`` clamped to [0, 2**32] as uint64: ``w < thr`` iff ``w * 2**-32 < p``."""
    p = float(p)
    if not p > 0.0:
        return np.uint64(0)
    if p >= 1.0:
        return np.uint64(_TWO32)
    return np.uint64(math.ceil(p * _TWO32))


def _scale_args(dtype, low, high):
    t = np.float32 if dtype == np.float32 else np.float64
    lo, hi = t(low), t(high)
    span = t(hi - lo) if t is np.float32 else t(float(high) - float(low))
    cap = np.nextafter(hi, t(-np.inf))
    if not cap >= lo:  # empty or degenerate range: everything is low
        cap = lo
    return lo, span, cap


def uniform(seed, offset, out, low=0.0, high=1.0):
    """Fill ``out`` (float32/float64) with uniforms in ``[low, high)``; returns counters used
    (``n`` for float32, ``2 n`` for float64). Never returns ``high``."""
    _check_out(out)
    n = out.size
    if out.dtype == np.float32:
        _pick((uniform_f32_serial, uniform_f32_parallel), n)(
            _u64(seed), _u64(offset), out, *_scale_args(np.float32, low, high))
        return n
    if out.dtype == np.float64:
        _pick((uniform_f64_serial, uniform_f64_parallel), n)(
            _u64(seed), _u64(offset), out, *_scale_args(np.float64, low, high))
        return 2 * n
    raise TypeError(f"uniform: unsupported dtype {out.dtype}")


def normal(seed, offset, out, mean=0.0, std=1.0):
    """Fill ``out`` (float32/float64) with N(mean, std**2) by Box-Muller; returns counters used:
    ``n + n % 2`` (float32, 2 per pair) or ``2 (n + n % 2)`` (float64, 4 per pair)."""
    _check_out(out)
    n = out.size
    if out.dtype == np.float32:
        _pick((normal_f32_serial, normal_f32_parallel), n)(
            _u64(seed), _u64(offset), out, np.float32(mean), np.float32(std))
        return n + n % 2
    if out.dtype == np.float64:
        _pick((normal_f64_serial, normal_f64_parallel), n)(
            _u64(seed), _u64(offset), out, float(mean), float(std))
        return 2 * (n + n % 2)
    raise TypeError(f"normal: unsupported dtype {out.dtype}")


def log_normal(seed, offset, out, mean=1.0, std=2.0):
    """``exp(normal(mean, std))`` (torch's ``log_normal_``); counters as :func:`normal`."""
    used = normal(seed, offset, out, mean, std)
    _pick((exp_inplace_serial, exp_inplace_parallel), out.size)(out)
    return used


def randint(seed, offset, out, low, high):
    """Fill ``out`` (int64, other ints or floats by store conversion) with integers exactly
    uniform in ``[low, high)``, ``low < high`` int64 values (range up to 2**64 - 1); returns
    counters used: ``2 n``."""
    _check_out(out)
    low, high = int(low), int(high)
    r = high - low
    if not 0 < r < (1 << 64):
        raise ValueError(f"randint: need low < high with high - low < 2**64, got [{low}, {high})")
    t = ((1 << 64) - r) % r
    n = out.size
    _pick((randint_serial, randint_parallel), n)(
        _u64(seed), _u64(offset), out, np.int64(low), np.uint64(r), np.uint64(t))
    return 2 * n


def bits64(seed, offset, out):
    """Fill ``out`` (uint64 or int64) with raw 64-bit words; returns counters used: ``2 n``."""
    _check_out(out)
    n = out.size
    _pick((bits64_serial, bits64_parallel), n)(_u64(seed), _u64(offset), out.view(np.uint64))
    return 2 * n


def bernoulli(seed, offset, p, out):
    """``out[i] = u_i < p[i]`` (``p`` a float array of ``out.size`` elements or a scalar; ``out``
    bool, ints or floats); returns counters used: ``n``."""
    if np.ndim(p) == 0:
        return bernoulli_scalar(seed, offset, float(p), out)
    _check_out(out)
    p = np.ascontiguousarray(p).reshape(-1)
    if p.size != out.size or p.dtype not in (np.float32, np.float64):
        raise ValueError("bernoulli: p must be a float32/float64 array of out.size elements")
    n = out.size
    _pick((bernoulli_serial, bernoulli_parallel), n)(_u64(seed), _u64(offset), p, out)
    return n


def bernoulli_scalar(seed, offset, p, out):
    """``out[i] = u_i < p`` for one probability ``p``; same numbers as :func:`bernoulli` with a
    constant ``p`` array; returns counters used: ``n``."""
    _check_out(out)
    n = out.size
    _pick((bernoulli_scalar_serial, bernoulli_scalar_parallel), n)(
        _u64(seed), _u64(offset), _threshold(p), out)
    return n


def dropout_mask(seed, offset, p, out):
    """``out[i] = 0`` with probability ``p``, else ``1 / (1 - p)`` (float32/float64 ``out``;
    ``p >= 1`` gives all zeros); returns counters used: ``n``. ``out[i]`` is 0 exactly when
    ``bernoulli_scalar(seed, offset, p)[i]`` is true."""
    _check_out(out)
    n = out.size
    p = float(p)
    t = out.dtype.type
    scale = t(0.0) if p >= 1.0 else t(1.0 / (1.0 - p))
    _pick((dropout_serial, dropout_parallel), n)(_u64(seed), _u64(offset), _threshold(p), scale, out)
    return n


def exponential(seed, offset, out, lambd=1.0):
    """Exponential(rate ``lambd``) into float32/float64 ``out``; counters as :func:`uniform`."""
    _check_out(out)
    n = out.size
    if out.dtype == np.float32:
        _pick((exponential_f32_serial, exponential_f32_parallel), n)(
            _u64(seed), _u64(offset), out, np.float32(1.0 / lambd))
        return n
    if out.dtype == np.float64:
        _pick((u53_map_serial, u53_map_parallel), n)(
            _u64(seed), _u64(offset), out, 0, 1.0 / lambd, 0.0)
        return 2 * n
    raise TypeError(f"exponential: unsupported dtype {out.dtype}")


def cauchy(seed, offset, out, median=0.0, sigma=1.0):
    """Cauchy(median, sigma) into float32/float64 ``out``; counters as :func:`uniform`."""
    _check_out(out)
    n = out.size
    if out.dtype == np.float32:
        _pick((cauchy_f32_serial, cauchy_f32_parallel), n)(
            _u64(seed), _u64(offset), out, np.float32(median), np.float32(sigma))
        return n
    if out.dtype == np.float64:
        _pick((u53_map_serial, u53_map_parallel), n)(
            _u64(seed), _u64(offset), out, 1, float(median), float(sigma))
        return 2 * n
    raise TypeError(f"cauchy: unsupported dtype {out.dtype}")


def geometric(seed, offset, out, p):
    """Geometric(p) on {1, 2, ...} (trials to the first success, torch's ``geometric_``) into
    ``out`` of any float or int dtype, ``0 < p <= 1``; returns counters used: ``2 n``."""
    _check_out(out)
    n = out.size
    p = float(p)
    a = math.log1p(-p) if p < 1.0 else -math.inf
    _pick((u53_map_serial, u53_map_parallel), n)(_u64(seed), _u64(offset), out, 2, a, 0.0)
    return 2 * n


def randperm(seed, offset, n, out):
    """Random permutation of ``range(n)`` into ``out[:n]`` (int64/int32, ``out.size >= n``);
    serial Fisher-Yates; returns counters used: ``2 n``."""
    _check_out(out)
    n = int(n)
    if n < 0 or out.size < n:
        raise ValueError("randperm: need 0 <= n <= out.size")
    randperm_kernel(_u64(seed), _u64(offset), n, out)
    return 2 * n


def multinomial(seed, offset, probs, num_samples, replacement, out):
    """Sample category indices per row of ``probs`` (rows, k) float64, non-negative rows with a
    positive sum (caller validates; without replacement also ``num_samples`` <= positive entries
    of every row) into ``out`` (rows, num_samples) int64.

    With replacement: inverse CDF (cumulative sum + binary search), zero-probability categories
    never drawn; counters ``2 rows num_samples`` (sample ``s`` of row ``r`` reads counters at
    ``offset + 2 (r num_samples + s)``). Without replacement: exponential race (keys
    ``E_j / p_j``, E_j ~ Exp(1); ascending keys are the draw order of sequential sampling in
    proportion to the remaining probabilities); counters ``2 rows k``.
    """
    probs = np.ascontiguousarray(probs, dtype=np.float64)
    if probs.ndim != 2 or out.ndim != 2 or out.shape != (probs.shape[0], int(num_samples)):
        raise ValueError("multinomial: need probs (rows, k) and out (rows, num_samples)")
    if not out.flags.c_contiguous:
        raise ValueError("multinomial: out must be C-contiguous")
    rows, k = probs.shape
    ns = int(num_samples)
    replacement = bool(replacement)
    kern = _pick((multinomial_serial, multinomial_parallel), rows * (ns if replacement else k))
    kern(_u64(seed), _u64(offset), probs, ns, replacement, out)
    return 2 * rows * (ns if replacement else k)


def philox_block(seed, block):
    """The 4 counters (Python ints) of block ``block`` of stream ``seed``: words 4b .. 4b+3."""
    k0, k1 = int(seed) & 0xFFFFFFFF, (int(seed) >> 32) & 0xFFFFFFFF
    b = int(block) & _MASK64
    r = _philox_py(np.uint64(b & 0xFFFFFFFF), np.uint64(b >> 32), np.uint64(0), np.uint64(0),
                   np.uint64(k0), np.uint64(k1))
    return tuple(int(x) for x in r)


def philox_word(seed, j):
    """Counter ``j`` of stream ``seed`` as a Python int."""
    return philox_block(seed, int(j) >> 2)[int(j) & 3]


@njit(**_NJIT)
def _philox_py(c0, c1, c2, c3, k0, k1):
    return philox4x32_10(c0, c1, c2, c3, k0, k1)

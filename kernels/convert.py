"""dtype conversion kernels, float16 included.

numba cannot type float16 on the CPU (NotImplementedError), so jitorch keeps float16 tensors
in NumPy float16 arrays and the kernels here work on their bits: a float16 array enters as
``a.view(np.uint16)`` and a float16 result is written into ``out.view(np.uint16)``. The
conversions are done with integer arithmetic (no float16 hardware or libm involved) and are
exact or correctly rounded:

- float16 -> float32/float64 is exact (subnormals, +-0, +-inf); a NaN keeps its sign and
  payload and is made quiet (as the x86 F16C instructions and torch do; NumPy's software
  path keeps a signaling NaN signaling).
- float32 -> float16 and float64 -> float16 round to nearest, ties to even, with overflow to
  inf and gradual underflow, bit-for-bit identical to NumPy's ``astype(np.float16)``,
  NaN payloads included. float64 is converted directly: going through float32 would round
  twice and differ from NumPy (e.g. 1 + 2**-11 + 2**-30).

:func:`cast` converts between any two of bool, int8/16/32/64, uint8, float16/32/64 with
torch's semantics (to bool: ``x != 0``; float -> int: truncation toward zero; out-of-range
float -> int is undefined in torch and here gives what x86 NumPy/torch give: through an
int32 conversion for the narrow types, so -1.0 -> uint8 is 255 and 300.0 -> int8 is 44).

Layout contract for every kernel: 1-D, C-contiguous arrays of equal length; ``src`` is only
read, ``dst`` is written; the caller checks shapes and dtypes (numba does not check bounds).
Each kernel comes as ``<name>_serial`` and ``<name>_parallel`` (prange); the wrapper
``<name>`` picks the parallel one from :data:`PARALLEL_THRESHOLD` elements on.

The scalar bit converters (:func:`f16_bits_to_f32`, :func:`f32_to_f16_bits`,
:func:`f64_to_f16_bits`) are plain Python, like :mod:`scalar_math`, so generated (fused)
kernels and CUDA device functions can inline them.
"""
import numpy as np
from numba import njit, prange

from ._config import FASTMATH, NJIT, NJIT_PARALLEL, PARALLEL_THRESHOLD

__all__ = [
    "f16_bits_to_f32", "f32_to_f16_bits", "f64_to_f16_bits",
    "f16_to_f32", "f16_to_f64", "f32_to_f16", "f64_to_f16", "cast",
    "f16_to_f32_serial", "f16_to_f32_parallel", "f16_to_f64_serial", "f16_to_f64_parallel",
    "f32_to_f16_serial", "f32_to_f16_parallel", "f64_to_f16_serial", "f64_to_f16_parallel",
    "cast_serial", "cast_parallel", "PARALLEL_THRESHOLD",
]

# numba accepts a set or dict for fastmath, not the frozenset _config exports.
_NJIT = dict(NJIT, fastmath=set(FASTMATH))
_NJIT_PARALLEL = dict(NJIT_PARALLEL, fastmath=set(FASTMATH))
_INLINE = dict(inline="always", fastmath=set(FASTMATH), error_model="numpy")


# ----------------------------------------------------------------------------- scalar bit math
# Integer work is written with np.int32/np.int64 casts on every intermediate: numba widens
# int32 arithmetic to int64, and the casts let LLVM narrow it back so loops vectorize as i32.

def f16_bits_to_f32(h):
    """float32 value of the float16 with bits ``h`` (any integer type, low 16 bits used). Exact."""
    h = np.int32(h) & np.int32(0xFFFF)
    sign = np.int32((h & np.int32(0x8000)) << np.int32(16))
    a = h & np.int32(0x7FFF)
    m = a & np.int32(0x3FF)
    # normal: move exponent+mantissa up 13 bits and rebias the exponent by 127 - 15
    bits = np.int32((a << np.int32(13)) + np.int32(0x38000000))
    # inf/NaN: all-ones exponent, payload moved up; a NaN gets the quiet bit
    special = np.int32(np.int32(0x7F800000) | (m << np.int32(13)))
    special = np.int32(special | np.int32(0x00400000)) if m != np.int32(0) else special
    bits = special if a >= np.int32(0x7C00) else bits
    # subnormal (and zero): m * 2**-24 is exact in float32 (a normal float32 for m > 0)
    sub = np.float32(np.float32(m) * np.float32(5.9604644775390625e-08)).view(np.int32)
    bits = sub if a < np.int32(0x0400) else bits
    return np.int32(bits | sign).view(np.float32)


def f32_to_f16_bits(x):
    """Bits (uint16) of float32 ``x`` rounded to float16: nearest-even, NumPy's bits exactly."""
    u = np.float32(x).view(np.int32)
    sign = np.int32((u >> np.int32(16)) & np.int32(0x8000))
    a = np.int32(u & np.int32(0x7FFFFFFF))
    # normal float16 range: rebias (127 -> 15) and round the 13 dropped bits to nearest even
    # by adding 0xfff plus the lowest kept bit; a carry into the exponent is the right result,
    # up to inf for 65520 <= |x| < 65536.
    lsb = np.int32((a >> np.int32(13)) & np.int32(1))
    h = np.int32((a + np.int32(-0x38000000 + 0x0FFF) + lsb) >> np.int32(13))
    # subnormal float16 (|x| < 2**-14): adding 0.5, whose float32 ulp is 2**-24, rounds |x| to
    # a multiple of 2**-24 with the hardware's nearest-even; the low bits of the sum are then
    # the float16 subnormal (0x400 when it rounds up to the smallest normal). One addition,
    # nothing for reassociation to regroup.
    ax = np.int32(a).view(np.float32) + np.float32(0.5)
    hs = np.int32(np.float32(ax).view(np.int32) - np.int32(0x3F000000))
    h = hs if a < np.int32(0x38800000) else h
    # |x| >= 65536 and inf: inf
    h = np.int32(0x7C00) if a >= np.int32(0x47800000) else h
    # NaN: keep the top 10 payload bits; if they are all 0 set the lowest (as NumPy does)
    nan = np.int32(np.int32(0x7C00) | ((a & np.int32(0x007FFFFF)) >> np.int32(13)))
    nan = np.int32(0x7C01) if nan == np.int32(0x7C00) else nan
    h = nan if a > np.int32(0x7F800000) else h
    return np.uint16(h | sign)


def f64_to_f16_bits(x):
    """Bits (uint16) of float64 ``x`` rounded once to float16 (nearest-even), as NumPy does."""
    u = np.float64(x).view(np.int64)
    sign = np.int64((u >> np.int64(48)) & np.int64(0x8000))
    a = u & np.int64(0x7FFFFFFFFFFFFFFF)
    # normal float16 range: rebias 1023 -> 15 and round the 42 dropped bits to nearest even
    lsb = (a >> np.int64(42)) & np.int64(1)
    h = (a - np.int64(0x3F00000000000000) + np.int64(0x000001FFFFFFFFFF) + lsb) >> np.int64(42)
    # subnormal float16 (|x| < 2**-14): 2**28 has a float64 ulp of 2**-24, so |x| + 2**28
    # rounds |x| to the float16 subnormal grid (nearest-even, once) and its low bits count
    # the units, as in f32_to_f16_bits with 0.5.
    ax = np.int64(a).view(np.float64) + np.float64(268435456.0)
    hs = np.float64(ax).view(np.int64) - np.int64(0x41B0000000000000)
    h = hs if a < np.int64(0x3F10000000000000) else h
    # |x| >= 65536 and inf: inf (65520 <= |x| < 65536 already rounded up to 0x7c00 above)
    h = np.int64(0x7C00) if a >= np.int64(0x40F0000000000000) else h
    nan = np.int64(0x7C00) | ((a & np.int64(0x000FFFFFFFFFFFFF)) >> np.int64(42))
    nan = np.int64(0x7C01) if nan == np.int64(0x7C00) else nan
    h = nan if a > np.int64(0x7FF0000000000000) else h
    return np.uint16(h | sign)


_h2f = njit(**_INLINE)(f16_bits_to_f32)
_f2h = njit(**_INLINE)(f32_to_f16_bits)
_d2h = njit(**_INLINE)(f64_to_f16_bits)


def _pick(serial, parallel, n):
    return parallel if n >= PARALLEL_THRESHOLD else serial


def _bits16(a):
    # numba cannot type float16 arrays; their bits can be
    return a.view(np.uint16) if a.dtype == np.float16 else a


# ----------------------------------------------------------------------------- float16 kernels
@njit(**_NJIT)
def f16_to_f32_serial(src, dst):
    """dst[i] = float32(src[i]); src: uint16 float16 bits, dst: float32; 1-D contiguous."""
    for i in range(src.shape[0]):
        dst[i] = _h2f(src[i])


@njit(**_NJIT_PARALLEL)
def f16_to_f32_parallel(src, dst):
    """prange version of :func:`f16_to_f32_serial`."""
    for i in prange(src.shape[0]):
        dst[i] = _h2f(src[i])


@njit(**_NJIT)
def f16_to_f64_serial(src, dst):
    """dst[i] = float64(src[i]); src: uint16 float16 bits, dst: float64 (exact)."""
    for i in range(src.shape[0]):
        dst[i] = np.float64(_h2f(src[i]))


@njit(**_NJIT_PARALLEL)
def f16_to_f64_parallel(src, dst):
    """prange version of :func:`f16_to_f64_serial`."""
    for i in prange(src.shape[0]):
        dst[i] = np.float64(_h2f(src[i]))


@njit(**_NJIT)
def f32_to_f16_serial(src, dst):
    """dst[i] = float16 bits of src[i]; src: float32, dst: uint16 (view of a float16 array)."""
    for i in range(src.shape[0]):
        dst[i] = _f2h(src[i])


@njit(**_NJIT_PARALLEL)
def f32_to_f16_parallel(src, dst):
    """prange version of :func:`f32_to_f16_serial`."""
    for i in prange(src.shape[0]):
        dst[i] = _f2h(src[i])


@njit(**_NJIT)
def f64_to_f16_serial(src, dst):
    """dst[i] = float16 bits of float64(src[i]), rounded once; src: float64 or any int/bool
    dtype (exact in float64 where it matters: |v| >= 65520 is inf anyway), dst: uint16."""
    for i in range(src.shape[0]):
        dst[i] = _d2h(np.float64(src[i]))


@njit(**_NJIT_PARALLEL)
def f64_to_f16_parallel(src, dst):
    """prange version of :func:`f64_to_f16_serial`."""
    for i in prange(src.shape[0]):
        dst[i] = _d2h(np.float64(src[i]))


def f16_to_f32(src_u16, dst_f32):
    """Write ``dst_f32[i] = float32(src[i])``.

    ``src_u16``: 1-D C-contiguous uint16 (float16 bits) or float16 array; ``dst_f32``: 1-D
    C-contiguous float32 of the same length, written. Exact; NaNs become quiet NaNs.
    """
    src = _bits16(src_u16)
    _pick(f16_to_f32_serial, f16_to_f32_parallel, src.shape[0])(src, dst_f32)


def f16_to_f64(src_u16, dst_f64):
    """Write ``dst_f64[i] = float64(src[i])``; as :func:`f16_to_f32` with a float64 output."""
    src = _bits16(src_u16)
    _pick(f16_to_f64_serial, f16_to_f64_parallel, src.shape[0])(src, dst_f64)


def f32_to_f16(src_f32, dst_u16):
    """Write the float16 rounding of ``src_f32`` into ``dst_u16``.

    ``src_f32``: 1-D C-contiguous float32; ``dst_u16``: 1-D C-contiguous uint16 (or float16,
    viewed) of the same length, written. Round to nearest even, overflow to inf, gradual
    underflow; identical bits to ``src_f32.astype(np.float16)`` for every input.
    """
    dst = _bits16(dst_u16)
    _pick(f32_to_f16_serial, f32_to_f16_parallel, src_f32.shape[0])(src_f32, dst)


def f64_to_f16(src_f64, dst_u16):
    """Write the float16 rounding of ``src_f64`` (one rounding) into ``dst_u16``.

    ``src_f64``: 1-D C-contiguous float64 (int and bool arrays work too, via float64);
    ``dst_u16``: 1-D C-contiguous uint16 (or float16) of the same length, written. Matches
    ``src_f64.astype(np.float16)`` bit for bit.
    """
    dst = _bits16(dst_u16)
    _pick(f64_to_f16_serial, f64_to_f16_parallel, src_f64.shape[0])(src_f64, dst)


# ----------------------------------------------------------------------------- general cast
# One kernel per conversion rule; numba compiles each for the dtype pair it meets.

@njit(**_NJIT)
def _plain_serial(src, dst):
    # int -> int (wraps), int/bool -> float (nearest), float -> float, bool -> int
    for i in range(src.shape[0]):
        dst[i] = src[i]


@njit(**_NJIT_PARALLEL)
def _plain_parallel(src, dst):
    for i in prange(src.shape[0]):
        dst[i] = src[i]


@njit(**_NJIT)
def _to_bool_serial(src, dst):
    # torch: nonzero (NaN included) is True
    for i in range(src.shape[0]):
        dst[i] = src[i] != 0


@njit(**_NJIT_PARALLEL)
def _to_bool_parallel(src, dst):
    for i in prange(src.shape[0]):
        dst[i] = src[i] != 0


@njit(**_NJIT)
def _f2i64_serial(src, dst):
    # float -> int64: truncation toward zero
    for i in range(src.shape[0]):
        dst[i] = np.int64(src[i])


@njit(**_NJIT_PARALLEL)
def _f2i64_parallel(src, dst):
    for i in prange(src.shape[0]):
        dst[i] = np.int64(src[i])


@njit(**_NJIT)
def _f2i32_serial(src, dst):
    # float -> int32/int16/int8/uint8: truncate to int32, then the store wraps to the
    # narrow type (what C compilers emit for x86 NumPy and torch: -1.0 -> uint8 255)
    for i in range(src.shape[0]):
        dst[i] = np.int32(src[i])


@njit(**_NJIT_PARALLEL)
def _f2i32_parallel(src, dst):
    for i in prange(src.shape[0]):
        dst[i] = np.int32(src[i])


@njit(**_NJIT)
def _h2bool_serial(src, dst):
    for i in range(src.shape[0]):
        dst[i] = _h2f(src[i]) != np.float32(0.0)


@njit(**_NJIT_PARALLEL)
def _h2bool_parallel(src, dst):
    for i in prange(src.shape[0]):
        dst[i] = _h2f(src[i]) != np.float32(0.0)


@njit(**_NJIT)
def _h2int_serial(src, dst):
    # every finite float16 fits in int32, so int32 then the store's wrap/extension is exact
    for i in range(src.shape[0]):
        dst[i] = np.int32(_h2f(src[i]))


@njit(**_NJIT_PARALLEL)
def _h2int_parallel(src, dst):
    for i in prange(src.shape[0]):
        dst[i] = np.int32(_h2f(src[i]))


_SUPPORTED = frozenset(np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                             np.float16, np.float32, np.float64))


def _cast_kernels(sd, dd):
    """(serial, parallel, src_view_u16, dst_view_u16) for dtypes sd -> dd; None for a plain copy."""
    if sd == dd:
        return None
    f16 = np.dtype(np.float16)
    if sd == f16:
        if dd == np.float32:
            return f16_to_f32_serial, f16_to_f32_parallel, True, False
        if dd == np.float64:
            return f16_to_f64_serial, f16_to_f64_parallel, True, False
        if dd == np.bool_:
            return _h2bool_serial, _h2bool_parallel, True, False
        return _h2int_serial, _h2int_parallel, True, False
    if dd == f16:
        if sd == np.float32:
            return f32_to_f16_serial, f32_to_f16_parallel, False, True
        return f64_to_f16_serial, f64_to_f16_parallel, False, True
    if dd == np.bool_:
        return _to_bool_serial, _to_bool_parallel, False, False
    if sd.kind == "f" and dd.kind in "iu":
        if dd == np.int64:
            return _f2i64_serial, _f2i64_parallel, False, False
        return _f2i32_serial, _f2i32_parallel, False, False
    return _plain_serial, _plain_parallel, False, False


def _cast(src, dst, parallel):
    sd, dd = src.dtype, dst.dtype
    if sd not in _SUPPORTED or dd not in _SUPPORTED:
        raise TypeError(f"cast: unsupported dtypes {sd} -> {dd}")
    k = _cast_kernels(sd, dd)
    if k is None:
        np.copyto(dst, src)
        return
    serial, par, sview, dview = k
    if sview:
        src = src.view(np.uint16)
    if dview:
        dst = dst.view(np.uint16)
    if parallel is None:
        parallel = src.shape[0] >= PARALLEL_THRESHOLD
    (par if parallel else serial)(src, dst)


def cast(src, dst):
    """Write ``dst[i] = src[i]`` converted to ``dst.dtype`` with torch's semantics.

    ``src``, ``dst``: 1-D C-contiguous arrays of equal length, dtypes among bool, int8, int16,
    int32, int64, uint8, float16, float32, float64; ``dst`` is written. Rules: to bool is
    ``x != 0`` (NaN -> True); float -> int truncates toward zero (out-of-range values and NaN
    are undefined, as in torch: no crash, x86 NumPy's result); int -> int wraps; to float rounds
    to nearest even (float16 correctly rounded, once). Uses the prange kernels from
    :data:`PARALLEL_THRESHOLD` elements on.
    """
    _cast(src, dst, None)


def cast_serial(src, dst):
    """:func:`cast` forced onto the serial kernels."""
    _cast(src, dst, False)


def cast_parallel(src, dst):
    """:func:`cast` forced onto the prange kernels."""
    _cast(src, dst, True)

"""jitorch.kernels.convert against NumPy's astype, bit for bit.

The float16 paths are checked exhaustively where that is cheap (all 65536 float16 values)
and on structured + random subsets of the 2**32 float32 patterns: every pattern with a
stride, every rounding boundary (ties, one below, one above) in every binade that maps to
a float16 normal or subnormal, and hypothesis. Set JITORCH_EXHAUSTIVE=1 to also run all
2**32 float32 patterns (minutes).
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jitorch.kernels import convert as cv

ALL_F16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def _same_f16_bits(got_u16, want_f16):
    want = want_f16.view(np.uint16)
    bad = np.flatnonzero(got_u16 != want)
    assert bad.size == 0, [(hex(int(want[i])), hex(int(got_u16[i]))) for i in bad[:5]]


def _f32_from_f16_ok(got, ref):
    """Non-NaN: identical bits. NaN: NaN, same sign, payload kept, quiet bit set."""
    g, r = got.view(np.uint32), ref.view(np.uint32)
    nan = np.isnan(ref)
    np.testing.assert_array_equal(g[~nan], r[~nan])
    assert np.all(np.isnan(got[nan]))
    assert np.all((g[nan] & 0x80000000) == (r[nan] & 0x80000000))
    assert np.all(g[nan] & 0x00400000)
    assert np.all((g[nan] | 0x00400000) == (r[nan] | 0x00400000))


# ----------------------------------------------------------------------------- float16 -> wider
@pytest.mark.parametrize("variant", ["wrapper", "serial", "parallel"])
def test_f16_to_f32_all_values(variant):
    out = np.empty(ALL_F16.size, np.float32)
    fn = {"wrapper": cv.f16_to_f32, "serial": cv.f16_to_f32_serial, "parallel": cv.f16_to_f32_parallel}[variant]
    fn(ALL_F16, out)
    _f32_from_f16_ok(out, ALL_F16.view(np.float16).astype(np.float32))


@pytest.mark.parametrize("variant", ["serial", "parallel"])
def test_f16_to_f64_all_values(variant):
    out = np.empty(ALL_F16.size, np.float64)
    getattr(cv, f"f16_to_f64_{variant}")(ALL_F16, out)
    ref = ALL_F16.view(np.float16).astype(np.float64)
    nan = np.isnan(ref)
    np.testing.assert_array_equal(out[~nan].view(np.uint64), ref[~nan].view(np.uint64))
    assert np.all(np.isnan(out[nan])) and np.all(np.signbit(out[nan]) == np.signbit(ref[nan]))


def test_f16_wrapper_accepts_float16_arrays():
    a = np.array([1.5, -0.0, 65504, 6e-8, np.inf], np.float16)
    out = np.empty(a.size, np.float32)
    cv.f16_to_f32(a, out)
    np.testing.assert_array_equal(out, a.astype(np.float32))


# ----------------------------------------------------------------------------- float32 -> float16
def _check_f32_to_f16(x, variant="serial"):
    x = np.ascontiguousarray(x, np.float32)
    got = np.empty(x.size, np.uint16)
    getattr(cv, f"f32_to_f16_{variant}")(x, got)
    with np.errstate(all="ignore"):
        _same_f16_bits(got, x.astype(np.float16))


def _boundary_patterns():
    """float32 bit patterns at every float16 rounding boundary: for each float32 exponent
    from 2**-26 to 2**16, each sign, a spread of kept-bit patterns, and dropped bits equal to
    half (tie), half - 1, half + 1, 0, 1 and all ones."""
    rng = np.random.default_rng(7)
    out = []
    for e in range(127 - 26, 127 + 17):
        # mantissa bits below the float16 cut: 13 for float16 normals, 126 - e for subnormals
        # (capped at the 23 stored bits; below that the implicit bit is the tie itself)
        drop = 13 if e >= 113 else min(126 - e, 23)
        half = 1 << (drop - 1)
        kept = rng.integers(0, 1 << (23 - drop), 64) << drop if drop < 23 else np.zeros(1, np.int64)
        kept = np.unique(np.concatenate([kept, [0, (1 << 23) - (1 << drop)]]))
        low = np.array([0, 1, half - 1, half, half + 1, (1 << drop) - 1], np.int64)
        m = (kept[:, None] + low[None, :]).ravel() & 0x7FFFFF
        b = (e << 23) | m
        out += [b, b | (1 << 31)]
    return np.concatenate(out).astype(np.uint32)


def test_f32_to_f16_boundaries():
    _check_f32_to_f16(_boundary_patterns().view(np.float32))


@pytest.mark.parametrize("variant", ["serial", "parallel"])
def test_f32_to_f16_strided_patterns(variant):
    # every 1031st of the 2**32 patterns, with an offset so the low bits differ per run
    b = (np.arange(0, 1 << 32, 1031, dtype=np.uint64) + 517).astype(np.uint32)
    _check_f32_to_f16(b.view(np.float32), variant)


def test_f32_to_f16_all_f16_values_round_trip():
    as32 = ALL_F16.view(np.float16).astype(np.float32)
    got = np.empty(as32.size, np.uint16)
    cv.f32_to_f16(as32, got)
    nan = np.isnan(as32)
    np.testing.assert_array_equal(got[~nan], ALL_F16[~nan])
    # NaN: NumPy's rule (top payload bits kept, sign kept)
    with np.errstate(all="ignore"):
        _same_f16_bits(got, as32.astype(np.float16))


def test_f32_to_f16_specials():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 65504, 65519.996, 65520, -65520, 1e10,
                  6.1035156e-05, 6.1035153e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 1e-45,
                  -1e-45, 1.0009765625, 1.00048828125, 1.00146484375, 3.4028235e38], np.float32)
    _check_f32_to_f16(x)
    nan_bits = np.array([0x7F800001, 0x7FC00000, 0xFFC00001, 0x7F802000, 0x7FA00000, 0x7FFFFFFF],
                        np.uint32).view(np.float32)
    _check_f32_to_f16(nan_bits)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 300),
                  elements=st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)))
def test_f32_to_f16_hypothesis(x):
    _check_f32_to_f16(x)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, (1 << 32) - 1), min_size=1, max_size=300))
def test_f32_to_f16_hypothesis_bits(bits):
    _check_f32_to_f16(np.array(bits, np.uint32).view(np.float32))


@pytest.mark.skipif(os.environ.get("JITORCH_EXHAUSTIVE") != "1", reason="set JITORCH_EXHAUSTIVE=1")
def test_f32_to_f16_exhaustive():
    chunk = 1 << 24
    got = np.empty(chunk, np.uint16)
    for start in range(0, 1 << 32, chunk):
        x = np.arange(start, start + chunk, dtype=np.uint64).astype(np.uint32).view(np.float32)
        cv.f32_to_f16_parallel(x, got)
        with np.errstate(all="ignore"):
            _same_f16_bits(got, x.astype(np.float16))


# ----------------------------------------------------------------------------- float64 -> float16
def _check_f64_to_f16(x, variant="serial"):
    x = np.ascontiguousarray(x, np.float64)
    got = np.empty(x.size, np.uint16)
    getattr(cv, f"f64_to_f16_{variant}")(x, got)
    with np.errstate(all="ignore"):
        _same_f16_bits(got, x.astype(np.float16))


def test_f64_to_f16_no_double_rounding():
    # just above a float16 tie; float32 rounds it onto the tie, and then ties-to-even goes down
    x = np.array([1 + 2.0**-11 + 2.0**-30, -(1 + 2.0**-11 + 2.0**-30), 2.0**-25 + 2.0**-60,
                  2.0**-25, 65519.99999999999, 65520.0], np.float64)
    _check_f64_to_f16(x)
    assert np.float32(x[0]).astype(np.float16) != np.float16(x[0])  # the trap exists


@pytest.mark.parametrize("variant", ["serial", "parallel"])
def test_f64_to_f16_random_and_boundaries(variant):
    rng = np.random.default_rng(3)
    b = rng.integers(0, 1 << 63, 300_000, dtype=np.int64).astype(np.uint64)
    b[::2] |= np.uint64(1 << 63)
    # dense around the float16 range: biased exponents 1023-30 .. 1023+17
    e = rng.integers(1023 - 30, 1023 + 17, 300_000).astype(np.uint64)
    m = rng.integers(0, 1 << 52, 300_000, dtype=np.int64).astype(np.uint64)
    near = (e << np.uint64(52)) | m
    # ties and neighbours at the 42-bit cut (normals) and the subnormal cuts
    ties = []
    for ee in range(1023 - 26, 1023 + 16):
        drop = 42 if ee >= 1009 else min(1051 - ee, 52)
        for kept in rng.integers(0, 1 << (52 - drop), 16) if drop < 52 else [0]:
            for low in (0, 1, (1 << (drop - 1)) - 1, 1 << (drop - 1), (1 << (drop - 1)) + 1):
                ties.append((ee << 52) | ((int(kept) << drop) + low) & ((1 << 52) - 1))
    ties = np.array(ties, np.uint64)
    x = np.concatenate([b, near, near | np.uint64(1 << 63), ties, ties | np.uint64(1 << 63)]).view(np.float64)
    _check_f64_to_f16(x, variant)
    with np.errstate(all="ignore"):
        _check_f64_to_f16(ALL_F16.view(np.float16).astype(np.float64), variant)


def test_f64_to_f16_specials():
    bits = np.array([0x7FF0000000000001, 0x7FF8000000000001, 0xFFF4000000000000, 0x7FF0000000000000,
                     0xFFF0000000000000, 0, 1 << 63, 1, 0x7FEFFFFFFFFFFFFF], np.uint64)
    _check_f64_to_f16(bits.view(np.float64))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 300),
                  elements=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)))
def test_f64_to_f16_hypothesis(x):
    _check_f64_to_f16(x)


# ----------------------------------------------------------------------------- general cast
DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.float16, np.float32, np.float64]


def _values(dtype, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.integers(0, 2, n).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        v = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
        v[:8] = np.array([0, 1, info.max, info.min, 2, 3, 100, 127], dtype=np.int64).astype(dt)
        return v
    v = np.concatenate([rng.normal(0, 50, n // 2), rng.uniform(-120, 120, n // 2)]).astype(dt)
    v[:12] = np.array([0.0, -0.0, 0.5, -0.5, 0.99, -0.99, 1.5, -1.5, 2.5, -2.7, 127.9, -128.9]).astype(dt)
    return v


def _in_range(src, dd):
    """Mask of inputs whose conversion torch defines (float -> int in range, no NaN)."""
    if src.dtype.kind != "f" or np.dtype(dd).kind not in "iu":
        return np.ones(src.shape, bool)
    info = np.iinfo(dd)
    with np.errstate(invalid="ignore"):
        t = np.trunc(src.astype(np.float64))
        return np.isfinite(t) & (t >= info.min) & (t <= info.max)


def _pairs():
    # Every kernel and every dtype on both sides, without compiling all 81 pairs (each pair
    # is one numba compilation, ~0.2 s): all -> float32, float32/float64/float16 -> all,
    # all -> bool, all -> float16 and a set of int <-> int / int -> float pairs.
    f32, f64, f16 = np.float32, np.float64, np.float16
    pairs = {(sd, f32) for sd in DTYPES} | {(f32, dd) for dd in DTYPES} | {(f64, dd) for dd in DTYPES}
    pairs |= {(f16, dd) for dd in DTYPES} | {(sd, np.bool_) for sd in DTYPES} | {(sd, f16) for sd in DTYPES}
    pairs |= {(np.int64, np.int8), (np.uint8, np.int8), (np.int8, np.uint8), (np.int16, np.int64),
              (np.bool_, np.int64), (np.int32, f64), (np.int64, f64), (np.int32, np.int16), (np.int8, np.int64)}
    return sorted(pairs, key=lambda p: (np.dtype(p[0]).name, np.dtype(p[1]).name))


@pytest.mark.parametrize("sd,dd", _pairs(), ids=lambda d: np.dtype(d).name)
def test_cast_matches_numpy(sd, dd):
    src = _values(sd)
    dst = np.empty(src.size, dd)
    cv.cast(src, dst)
    with np.errstate(all="ignore"):
        want = src.astype(dd)
    ok = _in_range(src, dd)
    if np.dtype(dd).kind == "f":
        np.testing.assert_array_equal(dst.view(f"u{dst.itemsize}"), want.view(f"u{dst.itemsize}"))
    else:
        np.testing.assert_array_equal(dst[ok], want[ok])


def test_cast_torch_rules():
    x = np.array([0.0, -0.0, np.nan, 0.1, -2.7, 2.7, np.inf], np.float32)
    b = np.empty(x.size, bool)
    cv.cast(x, b)
    np.testing.assert_array_equal(b, [False, False, True, True, True, True, True])
    i = np.empty(x.size, np.int32)
    cv.cast(x, i)  # NaN and inf entries are undefined; truncation toward zero elsewhere
    np.testing.assert_array_equal(i[[0, 1, 3, 4, 5]], [0, 0, 0, -2, 2])
    # negative float to uint8 wraps like x86 NumPy/torch; 300 -> int8 wraps to 44
    u = np.empty(2, np.uint8)
    cv.cast(np.array([-1.0, 300.0], np.float64), u)
    np.testing.assert_array_equal(u, [255, 44])
    s = np.empty(2, np.int8)
    cv.cast(np.array([300.0, -129.0], np.float32), s)
    np.testing.assert_array_equal(s, [44, 127])


def test_cast_out_of_range_does_not_crash():
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 3e9], np.float64)
    for dd in (np.int8, np.int16, np.int32, np.int64, np.uint8):
        cv.cast(x, np.empty(x.size, dd))
        cv.cast(x.astype(np.float32), np.empty(x.size, dd))
    cv.cast(np.array([np.inf, np.nan], np.float16), np.empty(2, np.int32))


@pytest.mark.parametrize("sd,dd", [(np.float32, np.int8), (np.int64, np.float16), (np.float16, np.bool_)],
                         ids=lambda d: np.dtype(d).name)
def test_cast_parallel_matches_serial(sd, dd):
    src = _values(sd, 5000, seed=1)
    a, b = np.empty(src.size, dd), np.empty(src.size, dd)
    cv.cast_serial(src, a)
    cv.cast_parallel(src, b)
    np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


def test_cast_rejects_unsupported():
    with pytest.raises(TypeError):
        cv.cast(np.zeros(2, np.complex64), np.zeros(2, np.float32))
    with pytest.raises(TypeError):
        cv.cast(np.zeros(2, np.float32), np.zeros(2, np.uint32))


def test_wrappers_pick_parallel_above_threshold(monkeypatch):
    calls = []
    monkeypatch.setattr(cv, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(cv, "f32_to_f16_parallel", lambda s, d: calls.append("p"))
    monkeypatch.setattr(cv, "f32_to_f16_serial", lambda s, d: calls.append("s"))
    cv.f32_to_f16(np.zeros(5, np.float32), np.zeros(5, np.uint16))
    cv.f32_to_f16(np.zeros(50, np.float32), np.zeros(50, np.uint16))
    assert calls == ["s", "p"]


def test_kernels_vectorize():
    # compile fresh copies: code loaded from numba's disk cache cannot be inspected
    import re
    from numba import njit
    for k, a, b in ((cv.f16_to_f32_serial, np.uint16, np.float32), (cv.f32_to_f16_serial, np.float32, np.uint16)):
        f = njit(**dict(cv._NJIT, cache=False))(k.py_func)
        f(np.zeros(4, a), np.zeros(4, b))
        ir = f.inspect_llvm(f.signatures[0])
        assert re.search(r"<\d+ x i32>", ir), k.__name__

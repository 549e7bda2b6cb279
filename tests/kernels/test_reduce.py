"""kernels/reduce.py against NumPy references (float64 for floats) and torch's edge-case rules.

Compile time dominates this file (about two seconds of CPU per kernel and dtype on the
development machine; numba caches them on disk, so later runs are quick). Hence every dtype is
tested only for sum, max/argmax and count/any/all; the other kernels run on float32, float64
and, where they accept integers, int64. The parallel variants share their loops with the
serial ones and are compiled for float32 (and int64 for sum) only; they run on small arrays
with parallel=True, including shapes that cut n into bands.
"""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit

from jitorch.kernels import _config
from jitorch.kernels import reduce as R

ALL_DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float32, np.float64]
MAIN_DTYPES = [np.float32, np.float64, np.int64]
FLOATS = [np.float32, np.float64]
# (dtype, parallel) pairs: the parallel variants only on float32.
FLOAT_VARIANTS = [(np.float32, False), (np.float32, True), (np.float64, False)]
MAIN_VARIANTS = FLOAT_VARIANTS + [(np.int64, False)]

# (outer, n, inner): empty axes, n == 1, both layouts (inner == 1 and inner > 1), lengths that
# are not multiples of the vector width, of _BLOCK (1024) or of _ROWS (64), and a row wider
# than _TILE (4096).
# Last-axis sums take rows four at a time (_rows_sum4) and the rest one by one: (9, 300, 1), (6, 1030, 1).
SHAPES = [(1, 1, 1), (3, 7, 1), (2, 1, 5), (4, 33, 3), (2, 2500, 1), (3, 130, 17), (2, 3, 4500),
          (9, 300, 1), (6, 1030, 1), (0, 4, 3), (3, 4, 0), (2, 0, 1), (2, 0, 3)]
# Shapes for the parallel variants: one item per row, and n cut into bands (outer < 4 threads
# and n * inner >= 64K) for both layouts, including the folded layout of narrow slabs.
PAR_SHAPES = [(3, 7, 1), (40, 50, 3), (41, 300, 1), (2, 70000, 1), (2, 900, 100), (2, 30001, 3), (1, 3, 70000),
              (0, 4, 3), (2, 0, 3)]
NONEMPTY = [s for s in SHAPES if s[1] > 0]
PAR_NONEMPTY = [s for s in PAR_SHAPES if s[1] > 0]


def make(shape, dtype, seed=0, low=None, high=None):
    """Random test data; integers in a range every dtype holds, many repeated values."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        low = (0 if dtype.kind == "u" else -60) if low is None else low
        return rng.integers(low, 60 if high is None else high, shape).astype(dtype)
    return (rng.standard_normal(shape) * 3).astype(dtype)


def sum_dtype(dtype):
    return np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.int64)


def assert_sum_close(got, x, ref):
    """Float sums are compared relative to sum |x| (cancellation makes sum itself small)."""
    scale = np.abs(x.astype(np.float64)).sum(1) + 1e-30
    tol = 2e-6 if got.dtype == np.float32 else 1e-13
    np.testing.assert_array_less(np.abs(got.astype(np.float64) - ref), tol * scale + 1e-30)


# ---------------------------------------------------------------------------------------------
# sum, prod
# ---------------------------------------------------------------------------------------------

def check_sum(x, parallel):
    out = np.full((x.shape[0], x.shape[2]), 7, sum_dtype(x.dtype))
    assert R.sum_(x, out, parallel=parallel) is out
    if out.dtype.kind == "f":
        assert_sum_close(out, x, x.astype(np.float64).sum(1))
    else:
        np.testing.assert_array_equal(out, x.sum(1, dtype=np.int64))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_sum(dtype, shape):
    check_sum(make(shape, dtype), parallel=False)


@pytest.mark.parametrize("shape", PAR_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_sum_parallel(dtype, shape):
    check_sum(make(shape, dtype), parallel=True)


def test_sum_picks_parallel_by_size(monkeypatch):
    x = make((1, 5000, 1), np.float32)
    out = np.empty((1, 1), np.float32)
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1000)
    R.sum_(x, out)
    assert R._sum_parallel.signatures, "the parallel kernel should have been used"
    assert_sum_close(out, x, x.astype(np.float64).sum(1))


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("shape", [(1, 10_000_000, 1), (1, 2_000_000, 5)])
def test_float32_sum_is_accurate_for_large_n(shape, parallel):
    # Positive data is the worst case for a running float32 sum (relative error ~1e-4 here).
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    out = np.empty((shape[0], shape[2]), np.float32)
    R.sum_(x, out, parallel=parallel)
    ref = x.astype(np.float64).sum(1)
    assert np.abs(out / ref - 1).max() < 1e-6


def _adversarial_rows(n):
    """float32 rows that are hard to sum: positive (a running sum's worst case), one huge value
    among small ones, cancelling +-large pairs around a small residual, magnitudes from 1e-20 to
    1e20 in ascending and descending order, and random signs of mixed magnitudes."""
    rng = np.random.default_rng(3)
    rows = [rng.random(n), np.r_[1e8, np.ones(n - 1)], np.r_[np.ones(n - 1), 1e8]]
    big = rng.random(n // 2 + 1) * 1e7
    rows.append(np.c_[big, -big * (1 - 1e-7)].reshape(-1)[:n])
    mags = np.logspace(-20, 20, n)
    rows += [mags, mags[::-1], rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-6, 6, n), rng.standard_normal(n)]
    return np.array(rows, dtype=np.float32)


@pytest.mark.parametrize("n", [4096, 100_003])
def test_float32_row_sums_are_as_accurate_as_one_row_at_a_time(n):
    """Rows summed four at a time (_rows_sum4, the 4096x4096 row-sum path) against the same rows
    summed one at a time (_row_sum, the path before) and float64 NumPy, on adversarial data: the
    error may not grow, and stays within 2e-6 * sum |x| (+ the final float32 rounding)."""
    x = _adversarial_rows(n)
    ref = x.astype(np.float64).sum(1)
    scale = np.abs(x.astype(np.float64)).sum(1)
    both = np.empty((x.shape[0], 1), np.float32)
    R.sum_(x.reshape(x.shape[0], n, 1), both, parallel=False)
    one = np.array([R.sum_(r.reshape(1, n, 1), np.empty((1, 1), np.float32), parallel=False)[0, 0] for r in x])
    err4 = np.abs(both[:, 0].astype(np.float64) - ref)
    err1 = np.abs(one.astype(np.float64) - ref)
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert np.all(err4 <= 2e-6 * scale + ulp), (err4, scale)
    assert err4.max() <= err1.max() + ulp.max() and np.all(err4 <= np.maximum(err1, 8 * 2.0 ** -24 * scale) + ulp)


def check_prod(x, parallel):
    if x.dtype.kind == "f":
        x = (np.sign(x) * np.exp(x / 30)).astype(x.dtype)   # magnitudes near 1, no overflow
    out = np.full((x.shape[0], x.shape[2]), 7, sum_dtype(x.dtype))
    R.prod(x, out, parallel=parallel)
    if out.dtype.kind == "f":
        np.testing.assert_allclose(out, x.astype(np.float64).prod(1),
                                   rtol=1e-5 if x.dtype == np.float32 else 1e-12)
    else:   # int64 products wrap the same way in any order
        np.testing.assert_array_equal(out, x.astype(np.int64).prod(1))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", MAIN_DTYPES)
def test_prod(dtype, shape):
    check_prod(make(shape, dtype, low=-3, high=4), parallel=False)


@pytest.mark.parametrize("shape", PAR_SHAPES)
def test_prod_parallel(shape):
    check_prod(make(shape, np.float32), parallel=True)


# ---------------------------------------------------------------------------------------------
# max, min, argmax, argmin, with indices
# ---------------------------------------------------------------------------------------------

def check_extremes(x, parallel, which=("max", "min")):
    oshape = (x.shape[0], x.shape[2])
    for name in which:
        values = np.empty(oshape, x.dtype)
        getattr(R, name + "_")(x, values, parallel=parallel)
        np.testing.assert_array_equal(values, getattr(x, name)(1))
        indices = np.full(oshape, -1, np.int64)
        getattr(R, "arg" + name)(x, indices, parallel=parallel)
        np.testing.assert_array_equal(indices, getattr(x, "arg" + name)(1))
        values[...] = 0
        indices[...] = -1
        getattr(R, name + "_with_indices")(x, values, indices, parallel=parallel)
        np.testing.assert_array_equal(values, getattr(x, name)(1))
        np.testing.assert_array_equal(indices, getattr(x, "arg" + name)(1))


@pytest.mark.parametrize("shape", NONEMPTY)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_max_argmax(dtype, shape):
    # Few distinct values: many ties, and the first occurrence must win.
    x = make(shape, dtype, low=0, high=3)
    if x.dtype.kind == "f":
        x = np.round(x)
    check_extremes(x, parallel=False, which=("max",) if dtype not in MAIN_DTYPES else ("max", "min"))


@pytest.mark.parametrize("shape", PAR_NONEMPTY)
def test_max_argmax_parallel(shape):
    check_extremes(np.round(make(shape, np.float32)), parallel=True)


@pytest.mark.parametrize("dtype, parallel", FLOAT_VARIANTS)
def test_extremes_propagate_nan(dtype, parallel):
    nan, inf = np.nan, np.inf
    rows = np.array([[1, nan, 5, nan], [3, 3, 1, 3], [-inf, -inf, -inf, -inf],
                     [1, inf, 2, -inf], [2, -1, nan, -1]], dtype)
    # torch: the first NaN is both the max and the min.
    expect = {"max": ([nan, 3, -inf, inf, nan], [1, 0, 0, 1, 2]),
              "min": ([nan, 1, -inf, -inf, nan], [1, 2, 0, 3, 2])}
    for x in (rows[:, :, None], np.ascontiguousarray(rows.T)[None]):
        for name, (ev, ei) in expect.items():
            v, i = np.empty(5, dtype), np.empty(5, np.int64)
            getattr(R, name + "_with_indices")(x, v.reshape(x.shape[0], x.shape[2]),
                                               i.reshape(x.shape[0], x.shape[2]),
                                               parallel=parallel)
            np.testing.assert_array_equal(v, np.array(ev, dtype))
            np.testing.assert_array_equal(i, ei)
            getattr(R, name + "_")(x, v.reshape(x.shape[0], x.shape[2]), parallel=parallel)
            np.testing.assert_array_equal(v, np.array(ev, dtype))


@pytest.mark.parametrize("parallel", [False, True])
def test_argmax_finds_first_nan_in_long_rows(parallel):
    x = make((3, 70000, 1), np.float32)
    x[0, 5000, 0] = x[0, 69000, 0] = np.nan
    x[1, 40000, 0] = x[1, 40001, 0] = 100   # a tie inside the second band
    x[2, 69999, 0] = np.nan
    out = np.empty((3, 1), np.int64)
    R.argmax(x, out, parallel=parallel)
    assert out[:, 0].tolist() == [5000, 40000, 69999]


# ---------------------------------------------------------------------------------------------
# count_nonzero, any, all
# ---------------------------------------------------------------------------------------------

def check_counts(x, parallel):
    oshape = (x.shape[0], x.shape[2])
    counts = np.full(oshape, -1, np.int64)
    R.count_nonzero(x, counts, parallel=parallel)
    np.testing.assert_array_equal(counts, (x != 0).sum(1))
    flags = np.empty(oshape, np.bool_)
    R.any_(x, flags, parallel=parallel)
    np.testing.assert_array_equal(flags, (x != 0).any(1))
    R.all_(x, flags, parallel=parallel)
    np.testing.assert_array_equal(flags, (x != 0).all(1))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_count_any_all(dtype, shape):
    x = make(shape, dtype, low=-1, high=2)
    if x.dtype.kind == "f":
        x = np.round(x / 4)          # plenty of zeros (and -0.0, which is zero)
    if x.size:
        x.reshape(-1)[:: 7] = 1       # some slices with no zero at all
    check_counts(x, parallel=False)


@pytest.mark.parametrize("shape", PAR_SHAPES)
def test_count_any_all_parallel(shape):
    check_counts(np.round(make(shape, np.float32) / 4), parallel=True)


def test_nan_is_nonzero():
    x = np.array([[np.nan, 0.0, -0.0]], np.float32)[:, :, None]
    out = np.empty((1, 1), np.int64)
    assert R.count_nonzero(x, out)[0, 0] == 1


# ---------------------------------------------------------------------------------------------
# var, logsumexp, norm
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES + PAR_SHAPES[2:6])
@pytest.mark.parametrize("dtype, parallel", FLOAT_VARIANTS)
def test_var(dtype, shape, parallel):
    x = make(shape, dtype) + 1000    # an offset that breaks one-pass formulas
    out = np.empty((shape[0], shape[2]), dtype)
    xd = x.astype(np.float64)
    for correction in (0, 1, 3):
        R.var(x, out, correction, parallel=parallel)
        with np.errstate(all="ignore"):
            mean = xd.sum(1, keepdims=True) / shape[1]
            ref = ((xd - mean) ** 2).sum(1) / max(0, shape[1] - correction)
        np.testing.assert_allclose(out, ref, rtol=1e-5 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("parallel", [False, True])
def test_var_degenerate_denominators(parallel):
    # torch: M2 / max(0, n - correction), so 0/0 -> nan and positive/0 -> inf.
    x = np.array([[1.0, 2.0], [3.0, 3.0]], np.float32)[:, :, None]
    out = np.empty((2, 1), np.float32)
    R.var(x, out, 2, parallel=parallel)
    assert out[0, 0] == np.inf and np.isnan(out[1, 0])
    R.var(x[:, :1].copy(), out, 1, parallel=parallel)
    assert np.isnan(out).all()
    R.var(np.empty((2, 0, 1), np.float32), out, 0, parallel=parallel)
    assert np.isnan(out).all()


@pytest.mark.parametrize("shape", SHAPES + PAR_SHAPES[2:6])
@pytest.mark.parametrize("dtype, parallel", FLOAT_VARIANTS)
def test_logsumexp(dtype, shape, parallel):
    x = make(shape, dtype) * 30      # exp overflows without the max subtraction
    out = np.empty((shape[0], shape[2]), dtype)
    R.logsumexp(x, out, parallel=parallel)
    xd = x.astype(np.float64)
    m = xd.max(1, keepdims=True) if shape[1] else np.zeros((shape[0], 1, shape[2]))
    with np.errstate(divide="ignore"):
        ref = m[:, 0] + np.log(np.exp(xd - m).sum(1))
    np.testing.assert_allclose(out, ref, rtol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype, parallel", FLOAT_VARIANTS)
def test_logsumexp_special_values(dtype, parallel):
    nan, inf = np.nan, np.inf
    rows = np.array([[-inf, -inf, -inf], [1, inf, 2], [inf, -inf, 0], [1, nan, inf],
                     [-inf, 0, -inf], [inf, inf, inf]], dtype)
    expect = np.array([-inf, inf, inf, nan, 0, inf], dtype)   # torch.logsumexp
    for x in (rows[:, :, None], np.ascontiguousarray(rows.T)[None]):
        out = np.empty((x.shape[0], x.shape[2]), dtype)
        R.logsumexp(x, out, parallel=parallel)
        np.testing.assert_array_equal(out.ravel(), expect)


@pytest.mark.parametrize("parallel", [False, True])
def test_logsumexp_bands_with_infinite_band(parallel):
    x = np.full((1, 100_000, 1), -np.inf, np.float32)
    x[0, 99_999, 0] = 2.0          # the only finite value sits in the last band
    out = np.empty((1, 1), np.float32)
    assert R.logsumexp(x, out, parallel=parallel)[0, 0] == 2.0


NORM_PS = [2.0, 1.0, math.inf, -math.inf, 0.0, 3.0, 0.5, -1.5]


@pytest.mark.parametrize("shape", SHAPES + PAR_SHAPES[2:6])
@pytest.mark.parametrize("dtype, parallel", FLOAT_VARIANTS)
def test_norm(dtype, shape, parallel):
    x = make(shape, dtype)
    x[np.abs(x) < 0.5] = 0
    out = np.empty((shape[0], shape[2]), dtype)
    for p in NORM_PS:
        if shape[1] == 0 and math.isinf(p):
            continue                  # the caller rejects these, as torch does
        R.norm(x, out, p, parallel=parallel)
        with np.errstate(divide="ignore"):
            ref = (np.linalg.norm(x.astype(np.float64), ord=p, axis=1) if shape[1]
                   else np.zeros_like(out, np.float64))
        np.testing.assert_allclose(out, ref, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   err_msg=f"p={p}")


def test_norm_propagates_nan():
    x = np.array([[1.0, np.nan, -5.0]])[:, :, None]
    out = np.empty((1, 1))
    for p in NORM_PS:
        R.norm(x, out, p)
        # torch: p == 0 counts the NaN as a nonzero; every other p gives NaN.
        assert out[0, 0] == 3 if p == 0 else np.isnan(out[0, 0]), p


# ---------------------------------------------------------------------------------------------
# cumsum, cumprod, logcumsumexp
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES + [(1, 50, 3000)])
@pytest.mark.parametrize("dtype, parallel", MAIN_VARIANTS)
def test_cumsum_cumprod(dtype, shape, parallel):
    x = make(shape, dtype, low=-3, high=4)
    out = np.full(shape, 7, sum_dtype(dtype))
    R.cumsum(x, out, parallel=parallel)
    if out.dtype.kind == "f":
        np.testing.assert_allclose(out, x.astype(np.float64).cumsum(1), rtol=1e-5, atol=1e-4)
    else:
        np.testing.assert_array_equal(out, x.cumsum(1, dtype=np.int64))
    if dtype != np.int64:
        x = (np.sign(x) * np.exp(x / 30)).astype(dtype)
    R.cumprod(x, out, parallel=parallel)
    if out.dtype.kind == "f":
        np.testing.assert_allclose(out, x.astype(np.float64).cumprod(1), rtol=1e-5)
    else:
        np.testing.assert_array_equal(out, x.cumprod(1, dtype=np.int64))


def test_cumsum_of_bool_counts():
    x = np.array([[True, False, True, True]])[:, :, None]
    out = np.empty(x.shape, np.int64)
    assert R.cumsum(x, out).ravel().tolist() == [1, 1, 2, 3]


@pytest.mark.parametrize("dtype, parallel", FLOAT_VARIANTS)
def test_logcumsumexp(dtype, parallel):
    x = make((3, 40, 5), dtype) * 20
    x[0, 3:6] = -np.inf
    x[1, 10] = np.inf
    for xs in (x, x[:, :, :1].copy()):
        out = np.empty(xs.shape, dtype)
        R.logcumsumexp(xs, out, parallel=parallel)
        ref = np.logaddexp.accumulate(xs.astype(np.float64), axis=1)
        np.testing.assert_allclose(out, ref, rtol=1e-6 if dtype == np.float32 else 1e-13)


# ---------------------------------------------------------------------------------------------
# softmax, log_softmax
# ---------------------------------------------------------------------------------------------

def softmax_ref(x):
    xd = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        e = np.exp(xd - xd.max(1, keepdims=True)) if x.shape[1] else xd
        return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("shape", SHAPES + [(2, 70000, 1), (1, 300, 700)])
@pytest.mark.parametrize("dtype, parallel", FLOAT_VARIANTS)
def test_softmax(dtype, shape, parallel):
    x = make(shape, dtype) * 10
    if x.size:
        x.reshape(-1)[::5] = -np.inf      # masked entries give exactly 0
    out = np.full(shape, 7, dtype)
    ref = softmax_ref(x)
    R.softmax(x, out, parallel=parallel)
    # x - max is rounded in x's dtype before exp, so the error grows with |x - max| (torch's
    # does too); slices that are all -inf give NaN.
    eps = np.finfo(dtype).eps
    with np.errstate(invalid="ignore"):
        shift = np.abs(x.astype(np.float64) - x.max(1, keepdims=True)) if x.shape[1] else 0
        tol = np.nan_to_num(ref * eps * (4 + shift), nan=0.0)
    tol += 4 * np.finfo(dtype).smallest_subnormal
    np.testing.assert_array_less(np.abs(np.nan_to_num(out - ref, nan=0.0)), tol)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    finite_rows = np.broadcast_to(np.isfinite(x.max(1, keepdims=True)) if x.shape[1] else True,
                                  x.shape)
    assert (out[(x == -np.inf) & finite_rows] == 0).all()
    R.log_softmax(x, out, parallel=parallel)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ref = np.log(ref)
        tol = eps * (4 + shift + np.abs(log_ref))
        np.testing.assert_array_less(np.abs(np.nan_to_num(out - log_ref, nan=0.0)),
                                     np.nan_to_num(tol, nan=1.0))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))


@pytest.mark.parametrize("dtype, parallel", FLOAT_VARIANTS)
def test_softmax_special_rows(dtype, parallel):
    nan, inf = np.nan, np.inf
    rows = np.array([[-inf, -inf, -inf], [1, inf, 2], [1, nan, 2], [0, -inf, 0]], dtype)
    # torch: a row whose max is -inf, +inf or NaN is all NaN.
    soft = np.array([[nan] * 3, [nan] * 3, [nan] * 3, [0.5, 0, 0.5]], dtype)
    log_soft = np.array([[nan] * 3, [nan] * 3, [nan] * 3, [-math.log(2), -inf, -math.log(2)]],
                        dtype)
    for fn, expect in ((R.softmax, soft), (R.log_softmax, log_soft)):
        out = np.empty((4, 3, 1), dtype)
        fn(rows[:, :, None], out, parallel=parallel)
        np.testing.assert_allclose(out[:, :, 0], expect, rtol=1e-6)
        out = np.empty((1, 3, 4), dtype)
        fn(np.ascontiguousarray(rows.T)[None], out, parallel=parallel)
        np.testing.assert_allclose(out[0].T, expect, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# exp, and a property test over random shapes
# ---------------------------------------------------------------------------------------------

@njit(cache=True)
def _exp_all(x, out):
    for i in range(x.size):
        out[i] = R._exp(x[i])


@pytest.mark.parametrize("dtype, ulps", [(np.float32, 2), (np.float64, 2)])
def test_exp(dtype, ulps):
    lo, hi = (-110, 95) if dtype == np.float32 else (-760, 720)
    x = np.concatenate([np.linspace(lo, hi, 200_001), [0, -0.0, np.inf, -np.inf, np.nan]])
    x = x.astype(dtype)
    out = np.empty_like(x)
    _exp_all(x, out)
    with np.errstate(over="ignore"):
        ref = np.exp(x.astype(np.float64) if dtype == np.float32 else x.astype(np.longdouble))
        rounded = ref.astype(dtype)
    normal = np.isfinite(rounded) & (rounded > np.finfo(dtype).tiny)
    ulp = np.spacing(rounded[normal]).astype(ref.dtype)
    assert np.abs((out[normal] - ref[normal]) / ulp).max() <= ulps
    # Overflow to inf and underflow (through the subnormal range) to 0.
    edge = ~normal & np.isfinite(x)
    np.testing.assert_allclose(out[edge], rounded[edge], rtol=1e-3,
                               atol=2 * np.finfo(dtype).smallest_subnormal)
    assert out[-5:-1].tolist() == [1, 1, np.inf, 0] and np.isnan(out[-1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_shapes_match_numpy(data):
    shape = tuple(data.draw(st.integers(0, n), label=name)
                  for name, n in (("outer", 4), ("n", 40), ("inner", 6)))
    dtype = data.draw(st.sampled_from([np.float32, np.int8, np.bool_]), label="dtype")
    parallel = dtype == np.float32 and data.draw(st.booleans(), label="parallel")
    x = make(shape, dtype, seed=data.draw(st.integers(0, 2**16), label="seed"), low=-2, high=3)
    if x.dtype.kind == "f" and x.size:
        x = np.round(x)
        mask = np.asarray(data.draw(st.lists(st.booleans(), min_size=x.size, max_size=x.size)))
        x.reshape(-1)[mask & (x.reshape(-1) > 2)] = np.nan
    check_sum(x, parallel)
    check_counts(x, parallel)
    if shape[1]:
        ref = x.astype(np.float64)
        values = np.empty((shape[0], shape[2]), x.dtype)
        indices = np.empty((shape[0], shape[2]), np.int64)
        R.max_with_indices(x, values, indices, parallel=parallel)
        np.testing.assert_array_equal(values, x.max(1))        # NumPy's max propagates NaN
        first_nan = np.isnan(ref).argmax(1)
        expect = np.where(np.isnan(ref).any(1), first_nan, ref.argmax(1))
        np.testing.assert_array_equal(indices, expect)

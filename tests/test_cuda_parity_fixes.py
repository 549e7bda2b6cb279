"""CPU bugs found by the cpu-vs-cuda comparisons (issue 9, session 3), checked on cpu and cuda against
independent references (the math module, NumPy's views, torch when it is installed, mpmath when it is):

- ``rsqrt(inf)`` was nan on cpu float32 (fastmath's reciprocal square root): torch gives 0;
- ``hypot(inf, nan)`` was nan (C99/torch: inf) and float32 ``hypot`` overflowed for inputs near 1e30;
- ``storage_offset()`` was 0 for ``diagonal(offset=k)`` and ``expand`` views (NumPy's as_strided hid the storage);
- the op table's erfc reference (``1 - erf(x)``) lost every digit in the tails.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import jitorch
from jitorch.ops.registry import OPS

try:
    import torch as _torch
except ImportError:  # torch is an optional reference
    _torch = None

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflowing casts of the inputs
DEVICES = ["cpu"] + (["cuda"] if jitorch.cuda.is_available() else [])
INF, NAN = math.inf, math.nan


def _math_rsqrt(v):
    if math.isnan(v) or v < 0:
        return NAN
    if v == 0:
        return math.copysign(INF, v)
    return 1.0 / math.sqrt(v)


def _same(got, want, dt, ulps=0):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, dt).astype(np.float64)  # the reference rounded to the result dtype
    assert np.array_equal(np.isnan(got), np.isnan(want)), (got, want)
    fin = ~np.isnan(want)
    assert np.array_equal(np.isinf(got[fin]), np.isinf(want[fin])), (got, want)
    g, w = got[fin], want[fin]
    assert np.array_equal(np.signbit(g), np.signbit(w)), (got, want)  # signs, of zeros and infinities too
    f = np.isfinite(w)
    tol = ulps * np.spacing(np.abs(w[f]).astype(dt)).astype(np.float64)
    assert (np.abs(g[f] - w[f]) <= tol).all(), (got, want)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_rsqrt_special_values_and_range(device, dtype):
    dt = np.dtype(dtype)
    vals = [INF, 0.0, -0.0, -1.0, -INF, NAN, 4.0, 0.25, 1e-30, 3e38, 1e-40, 1e300, 5e-324, 2.0, 7.0]
    with np.errstate(over="ignore"):
        x = np.array(vals, dt)  # values beyond the dtype's range round to inf/0, the reference sees the same
    got = jitorch.rsqrt(jitorch.tensor(x, device=device)).cpu().numpy()
    want = [_math_rsqrt(float(v)) for v in x]
    _same(got, want, dt, ulps=2)  # fastmath's reciprocal square root + Newton step: within 2 ulp
    if _torch is not None:
        t = _torch.rsqrt(_torch.tensor(x)).numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(t))
        np.testing.assert_allclose(got[~np.isnan(t)], t[~np.isnan(t)], rtol=3 * np.finfo(dt).eps)
    r = np.random.default_rng(0)
    y = (10.0 ** r.uniform(-44 if dtype == "float32" else -7, 38 if dtype == "float32" else 4, 3000)).astype(dt)
    got = jitorch.rsqrt(jitorch.tensor(y, device=device)).cpu().numpy()
    _same(got, [_math_rsqrt(float(v)) for v in y], dt, ulps=2)


HYPOT_PAIRS = [(INF, NAN), (NAN, INF), (-INF, NAN), (NAN, -INF), (NAN, 1.0), (1.0, NAN), (INF, 1.0), (-3.0, -INF),
               (0.0, 0.0), (-0.0, -0.0), (3.0, -4.0), (1e30, 1e30), (3e38, 3e38), (-3.4e38, 1.0), (1e-30, 1e-30),
               (1e-40, -1e-40), (1e-45, 0.0), (5e15, 1.0), (1.0, 1e-8), (65504.0, 65504.0), (300.0, 400.0)]
HYPOT_PAIRS64 = [(1e300, 1e300), (1.7e308, 1.7e308), (1e-300, 1e-300), (5e-324, 5e-324), (1e200, 1e-200),
                 (3e-160, 4e-160), (1.5e154, 2e154), (0.1, 0.2)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_hypot_special_values_and_no_overflow(device, dtype):
    dt = np.dtype(dtype)
    pairs = HYPOT_PAIRS + (HYPOT_PAIRS64 if dtype == "float64" else [])
    a = np.array([p[0] for p in pairs], dt)
    b = np.array([p[1] for p in pairs], dt)
    with np.errstate(over="ignore"):
        got = jitorch.hypot(jitorch.tensor(a, device=device), jitorch.tensor(b, device=device)).cpu().numpy()
    want = [math.hypot(float(u), float(v)) for u, v in zip(a, b)]  # C99 hypot in float64 on the rounded inputs
    _same(got, want, dt, ulps=1)
    if _torch is not None:
        t = _torch.hypot(_torch.tensor(a), _torch.tensor(b)).numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(t))
        np.testing.assert_allclose(got[~np.isnan(t)], t[~np.isnan(t)], rtol=2 * np.finfo(dt).eps)


def test_hypot_random_values_within_one_ulp():
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        a = (rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000)).astype(dt)
        b = (rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000)).astype(dt)
        got = jitorch.hypot(jitorch.tensor(a), jitorch.tensor(b)).numpy()
        _same(got, [math.hypot(float(u), float(v)) for u, v in zip(a, b)], dt, ulps=1)


# ------------------------------------------------------------------ storage_offset of views

def _np_offset(view, base):
    return (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // base.itemsize


VIEWS = {  # name -> (jitorch op, the same view with NumPy)
    "diagonal": (lambda x: x.diagonal(), lambda a: np.diagonal(a)),
    "diagonal+1": (lambda x: x.diagonal(1), lambda a: np.diagonal(a, 1)),
    "diagonal+5": (lambda x: x.diagonal(5), lambda a: np.diagonal(a, 5)),
    "diagonal-2": (lambda x: x.diagonal(-2), lambda a: np.diagonal(a, -2)),
    "diagonal(2,1,0)": (lambda x: x.diagonal(2, 1, 0), lambda a: np.diagonal(a, 2, 1, 0)),
    "diagonal 3-d dims": (lambda x: x.reshape(2, 3, 4).diagonal(1, 0, 2),
                          lambda a: np.diagonal(a.reshape(2, 3, 4), 1, 0, 2)),
    "diagonal 3-d -1 (2,1)": (lambda x: x.reshape(2, 3, 4).diagonal(-1, 2, 1),
                              lambda a: np.diagonal(a.reshape(2, 3, 4), -1, 2, 1)),
    "t().diagonal(1)": (lambda x: x.t().diagonal(1), lambda a: np.diagonal(a.T, 1)),
    "slice.diagonal(1)": (lambda x: x[1:3, 1:5].diagonal(1), lambda a: np.diagonal(a[1:3, 1:5], 1)),
    "diagonal of diagonal": (lambda x: x.reshape(2, 3, 4)[:, 1:, 1:].diagonal(0, 1, 2).diagonal(),
                             lambda a: np.diagonal(np.diagonal(a.reshape(2, 3, 4)[:, 1:, 1:], 0, 1, 2))),
    "narrow": (lambda x: x.narrow(1, 2, 3).narrow(0, 1, 2), lambda a: a[1:3, 2:5]),
    "select": (lambda x: x.select(1, 3), lambda a: a[:, 3]),
    "slice step": (lambda x: x[1::2, ::3], lambda a: a[1::2, ::3]),
    "unfold": (lambda x: x.unfold(1, 2, 2)[1], lambda a: a[1].reshape(3, 2)),
    "unfold.diagonal": (lambda x: x[1:].unfold(0, 2, 1).diagonal(1, 0, 2),
                        lambda a: np.diagonal(np.lib.stride_tricks.sliding_window_view(a[1:], 2, axis=0), 1, 0, 2)),
    "expand": (lambda x: x[2:3].expand(3, 6), lambda a: np.broadcast_to(a[2:3], (3, 6))),
    "view": (lambda x: x[2].view(2, 3), lambda a: a[2].reshape(2, 3)),
    "as_strided": (lambda x: x[1:].as_strided((2, 2), (1, 3), 4),
                   lambda a: np.lib.stride_tricks.as_strided(a.reshape(-1)[4:], (2, 2), (8, 24))),
    "permute.diagonal": (lambda x: x[1:].reshape(3, 2, 3).permute(2, 0, 1).diagonal(0, 0, 1),
                         lambda a: np.diagonal(a[1:].reshape(3, 2, 3).transpose(2, 0, 1), 0, 0, 1)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(VIEWS))
def test_view_storage_offset_and_strides(device, name):
    fj, fn = VIEWS[name]
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    x = jitorch.tensor(base, device=device)
    v = fj(x)
    ref = fn(base)
    assert v.storage_offset() == _np_offset(ref, base), name
    np.testing.assert_array_equal(v.cpu().numpy(), ref)
    if ref.size > 1:
        assert tuple(s for s, n in zip(v.stride(), v.shape) if n > 1) == \
            tuple(s // 8 for s, n in zip(ref.strides, ref.shape) if n > 1), name
    if _torch is not None:
        tv = fj(_torch.arange(24, dtype=_torch.float64).reshape(4, 6))
        assert (v.storage_offset(), tuple(v.stride())) == (tv.storage_offset(), tuple(tv.stride())), name
    # the view is over x's storage: as_strided from it reaches the whole storage, writes land in x
    assert v.as_strided((24,), (1,), 0).cpu().numpy().tolist() == list(range(24))
    if v.numel() and name not in ("expand",):
        v.fill_(-1.0)
        assert (x.cpu().numpy() == -1).sum() == len(set(_flat_positions(ref, base)))


def _flat_positions(view, base):
    off = _np_offset(view, base)
    idx = np.indices(view.shape).reshape(view.ndim, -1).T
    st = [s // base.itemsize for s in view.strides]
    return [off + int(np.dot(i, st)) for i in idx]


# ------------------------------------------------------------------ erfc: the reference and the kernel

ERFC = {5.0: 1.537459794428035e-12, 10.0: 2.088487583762545e-45, -3.0: 1.9999779095030015,  # mpmath, 40 digits
        26.0: 5.663192408856143e-296, 0.5: 0.4795001221869535, -0.5: 1.5204998778130465,
        3.5: 7.430983723414128e-07, 9.5: 3.7692144856548797e-41}


def test_erfc_reference_is_accurate_in_the_tails():
    x = np.array(sorted(ERFC), np.float64)
    want = np.array([ERFC[v] for v in x])
    ref = OPS["erfc"].reference(x)
    np.testing.assert_allclose(ref, want, rtol=4e-16)
    assert abs(1 - math.erf(5.0) - ERFC[5.0]) / ERFC[5.0] > 1e-5  # what the old reference (1 - erf) did
    ref32 = OPS["erfc"].reference(x.astype(np.float32))
    assert ref32.dtype == np.float32
    sub = want < 1e-38  # below float32's normal range: rounded to a subnormal or 0
    np.testing.assert_array_equal(ref32[~sub], want[~sub].astype(np.float32))


@pytest.mark.parametrize("device", DEVICES)
def test_erfc_kernel_ulps_against_known_values(device):
    """docs/accuracy.md: erfc within 2.5 ulp (float64) and 3 ulp (float32) of the exact value."""
    x = np.array(sorted(ERFC), np.float64)
    want = np.array([ERFC[v] for v in x])
    got = jitorch.erfc(jitorch.tensor(x, device=device)).cpu().numpy()
    assert (np.abs(got - want) <= 2.5 * np.spacing(want)).all(), np.abs(got - want) / np.spacing(want)
    x32 = x.astype(np.float32)
    g32 = jitorch.erfc(jitorch.tensor(x32, device=device)).cpu().numpy().astype(np.float64)
    w32 = want.astype(np.float32).astype(np.float64)
    norm = w32 >= np.finfo(np.float32).tiny
    assert (np.abs(g32 - w32)[norm] <= 3 * np.spacing(w32[norm].astype(np.float32))).all()
    assert (np.abs(g32 - w32)[~norm] <= 2 ** -149 * 2).all()  # subnormal/zero results: absolute


def test_erfc_ulps_against_mpmath_sample():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    rng = np.random.default_rng(1)
    for dt, lo, hi, ulps in ((np.float32, -5.0, 9.0, 3), (np.float64, -6.0, 26.0, 2.5)):
        x = np.r_[np.linspace(lo, hi, 700), rng.uniform(lo, hi, 300)].astype(dt)
        exact = np.array([float(mpmath.erfc(mpmath.mpf(float(v)))) for v in x])
        keep = exact >= np.finfo(dt).tiny
        got = jitorch.erfc(jitorch.tensor(x)).numpy().astype(np.float64)[keep]
        ex = exact[keep]
        err = np.abs(got - ex) / np.spacing(np.abs(ex).astype(dt)).astype(np.float64)
        assert err.max() <= ulps, (dt, err.max(), x[keep][err.argmax()])

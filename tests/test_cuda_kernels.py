"""The CUDA kernel library (kernels/cuda/{reduce,matmul,nn,index,sort,random,optim}.py) against NumPy.

Runs on numba's CUDA simulator (tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1 unless JITORCH_TEST_REAL_CUDA=1
asks for a GPU) or on a real GPU; skipped when neither works. The simulator runs every thread as a Python thread,
so shapes are tiny and the launchers run with their simulator block sizes (kernels/cuda/_sizes.py). Every launch
path is forced at least once (row/column reductions, the chunked two-pass reduction, shared-memory and global
sorts, the scan's block and thread paths).
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

if os.environ.get("JITORCH_TEST_REAL_CUDA", "0") in ("", "0"):
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

try:
    from numba import cuda
    _OK = bool(cuda.is_available())
except Exception:  # pragma: no cover - no numba.cuda at all
    _OK = False
if not _OK:
    pytest.skip("numba.cuda is not usable (no GPU and no simulator)", allow_module_level=True)

from jitorch.kernels.cuda import index as KI  # noqa: E402
from jitorch.kernels.cuda import matmul as KM  # noqa: E402
from jitorch.kernels.cuda import nn as KN  # noqa: E402
from jitorch.kernels.cuda import optim as KO  # noqa: E402
from jitorch.kernels.cuda import random as KR  # noqa: E402
from jitorch.kernels.cuda import reduce as KRd  # noqa: E402
from jitorch.kernels.cuda import sort as KS  # noqa: E402
from jitorch.ops.registry import OPS  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the simulator computes with NumPy scalars


def dev(a):
    return cuda.to_device(np.ascontiguousarray(a))


def host(d):
    return d.copy_to_host()


def _rng(seed=0):
    return np.random.default_rng(seed)


def _sample(shape, dtype, rng):
    if dtype == np.bool_:
        return rng.random(shape) > 0.5
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-5, 6, shape).astype(dtype)
    return (rng.standard_normal(shape) * 3).astype(dtype)


# the launches every reduction test forces: (method, chunks)
PATHS = [("column", None), ("row", 1), ("row", 3)]


# ------------------------------------------------------------------ reductions

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.bool_])
def test_reductions_match_numpy(dtype):
    rng = _rng(1)
    x = _sample((2, 37, 1), dtype, rng)
    if dtype == np.float32:
        x[1, 5, 0] = np.nan  # NaN propagates through max/min/sum
    d = dev(x)
    acc = np.int64 if np.dtype(dtype).kind in "biu" else dtype
    cases = [
        ("sum", lambda a: a.sum(1, dtype=acc), acc),
        ("prod", lambda a: (a[:, :6].prod(1, dtype=acc)), acc),
        ("max", lambda a: a.max(1), dtype),
        ("min", lambda a: a.min(1), dtype),
        ("any", lambda a: a.any(1), np.bool_),
        ("all", lambda a: a.all(1), np.bool_),
        ("count_nonzero", lambda a: np.count_nonzero(a, 1).astype(np.int64), np.int64),
    ]
    for method, chunks in PATHS:
        for name, ref, od in cases:
            src = d if name != "prod" else dev(x[:, :6])
            want = ref(x)
            out = cuda.device_array(want.shape, od)
            KRd.reduce(name, src, out, method=method, chunks=chunks)
            got = host(out)
            assert got.dtype == np.dtype(od)
            np.testing.assert_allclose(got, want, rtol=1e-5, equal_nan=True, err_msg=f"{name} {method} {chunks}")


def test_reduction_inner_axis_and_empty():
    rng = _rng(2)
    x = rng.standard_normal((3, 4, 5))
    out = cuda.device_array((3, 5))
    for method, chunks in PATHS:
        KRd.sum_(dev(x), out, method=method, chunks=chunks)
        np.testing.assert_allclose(host(out), x.sum(1))
    e = cuda.device_array((2, 0, 3))
    o = cuda.device_array((2, 3))
    KRd.sum_(e, o)
    assert (host(o) == 0).all()
    ob = cuda.device_array((2, 3), np.bool_)
    KRd.all_(e, ob)
    assert host(ob).all()


def test_long_reduction_many_chunks_uses_a_row_final_pass():
    x = _rng(3).standard_normal((1, 120, 1))
    out = cuda.device_array((1, 1))
    chunks = 2 * KRd.BLOCK + 8  # more partials than 2 * block: the final pass is a row launch
    KRd.sum_(dev(x), out, method="row", chunks=chunks)
    np.testing.assert_allclose(host(out), x.sum(1), rtol=1e-12)


def _ref_arg(x, is_max):
    """First index of the max (min) along axis 1; NaN counts as the extreme."""
    o, n, i = x.shape
    res = np.zeros((o, i), np.int64)
    for p in range(o):
        for q in range(i):
            col = list(x[p, :, q])
            nans = [k for k, v in enumerate(col) if v != v]
            if nans:
                res[p, q] = nans[0]
            else:
                best = max(col) if is_max else min(col)
                res[p, q] = col.index(best)
    return res


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_argmax_argmin_first_index_and_nan(dtype):
    rng = _rng(4)
    x = rng.integers(-2, 3, (2, 35, 2)).astype(dtype)  # many ties
    if dtype == np.float32:
        x[1, 20, 1] = np.nan
        x[1, 30, 1] = np.nan
    d = dev(x)
    for method, chunks in PATHS:
        oi = cuda.device_array((2, 2), np.int64)
        ov = cuda.device_array((2, 2), dtype)
        KRd.max_with_indices(d, ov, oi, method=method, chunks=chunks)
        want = _ref_arg(x, True)
        assert (host(oi) == want).all(), (method, chunks)
        np.testing.assert_array_equal(host(ov), np.take_along_axis(x, want[:, None, :], 1)[:, 0])
        KRd.argmin(d, oi, method=method, chunks=chunks)
        assert (host(oi) == _ref_arg(x, False)).all(), (method, chunks)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mean_var_logsumexp(dtype):
    rng = _rng(5)
    x = rng.standard_normal((3, 40, 1)).astype(dtype)
    x[2, :, 0] = -np.inf  # logsumexp of an all--inf row is -inf
    xf = x.astype(np.float64)
    o = cuda.device_array((3, 1), dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for method, chunks in [("row", 2), ("column", None)]:
        KRd.mean(dev(x[:2]), o[:2], method=method, chunks=chunks)
        np.testing.assert_allclose(host(o)[:2], xf[:2].mean(1), rtol=tol)
        for corr in (0, 1):
            KRd.var(dev(x[:2]), o[:2], corr, method=method, chunks=chunks)
            np.testing.assert_allclose(host(o)[:2], xf[:2].var(1, ddof=corr), rtol=tol * 10)
        KRd.logsumexp(dev(x), o, method=method, chunks=chunks)
        with np.errstate(all="ignore"):
            want = np.log(np.exp(xf).sum(1))
        np.testing.assert_allclose(host(o), want, rtol=tol)
    one = cuda.device_array((1, 1), dtype)
    KRd.var(dev(x[:1, :1]), one, 1)  # n - correction == 0: nan as torch
    assert np.isnan(host(one)).all()


@pytest.mark.parametrize("dtype,out_dtype", [(np.float32, np.float32), (np.int32, np.int64), (np.bool_, np.int64)])
def test_scans(dtype, out_dtype):
    rng = _rng(6)
    for shape, method in [((2, 70, 1), "row"), ((2, 70, 1), "column"), ((2, 6, 3), None)]:
        x = _sample(shape, dtype, rng)
        o = cuda.device_array(shape, out_dtype)
        KRd.cumsum(dev(x), o, method=method)
        np.testing.assert_allclose(host(o), np.cumsum(x, 1, dtype=out_dtype), rtol=1e-5, atol=1e-4)
        if dtype != np.bool_:
            xs = x[:, :12] if np.dtype(dtype).kind == "f" else np.clip(x[:, :12], -2, 2)
            o2 = cuda.device_array(xs.shape, out_dtype)
            KRd.cumprod(dev(xs), o2, method=method)
            np.testing.assert_allclose(host(o2), np.cumprod(xs, 1, dtype=out_dtype), rtol=1e-4)


# ------------------------------------------------------------------ matmul

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_matmul_batched_broadcast_transposed(dtype):
    rng = _rng(7)
    for B, BA, BB, M, K, N in [(1, 1, 1, 5, 7, 3), (3, 3, 1, 9, 4, 10), (2, 1, 2, 1, 1, 1)]:
        a = _sample((BA, M, K), dtype, rng)
        b = _sample((BB, K, N), dtype, rng)
        want = np.matmul(a, b)
        for ta in (False, True):
            for tb in (False, True):
                o = cuda.device_array((B, M, N), dtype)
                KM.matmul(dev(a.transpose(0, 2, 1)) if ta else dev(a), dev(b.transpose(0, 2, 1)) if tb else dev(b), o,
                          trans_a=ta, trans_b=tb)
                np.testing.assert_allclose(host(o), np.broadcast_to(want, (B, M, N)), rtol=1e-5,
                                           err_msg=f"{(B, M, K, N)} ta={ta} tb={tb}")


def test_matmul_strided_views_and_k0():
    rng = _rng(8)
    a = rng.standard_normal((2, 6, 8))
    b = rng.standard_normal((2, 8, 4))
    o = cuda.device_array((2, 3, 4))
    KM.matmul(dev(a)[:, ::2, :], dev(b), o)  # a strided row view
    np.testing.assert_allclose(host(o), a[:, ::2] @ b)
    z = cuda.device_array((1, 2, 3))
    KM.matmul(cuda.device_array((1, 2, 0)), cuda.device_array((1, 0, 3)), z)
    assert (host(z) == 0).all()
    with pytest.raises(ValueError, match="do not make"):
        KM.matmul(dev(a), dev(a), o)


def test_matmul_batches_beyond_the_grid_limit(monkeypatch):
    monkeypatch.setattr(KM, "_MAX_GRID_Z", 2)  # the real limit is 65535 batches per launch
    rng = _rng(21)
    a, b = rng.standard_normal((5, 3, 2)), rng.standard_normal((1, 2, 4))
    o = cuda.device_array((5, 3, 4))
    KM.matmul(dev(a), dev(b), o)
    np.testing.assert_allclose(host(o), a @ b)


@pytest.mark.slow
def test_matmul_gpu_tile_size():
    """The GPU configuration (16x16 tiles) on the simulator: one block of 256 threads."""
    rng = _rng(9)
    a = rng.standard_normal((1, 17, 16)).astype(np.float32)
    b = rng.standard_normal((1, 16, 16)).astype(np.float32)
    o = cuda.device_array((1, 17, 16), np.float32)
    KM.matmul(dev(a), dev(b), o, tile=16, reg=1)
    np.testing.assert_allclose(host(o), a @ b, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ nn

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_log_softmax(dtype):
    rng = _rng(10)
    x = rng.standard_normal((3, 21, 2)).astype(dtype) * 4
    x[0, :, 0] = -np.inf   # all -inf: nan as torch
    x[1, 3, 1] = np.nan
    x[2, 4, 0] = 500       # large values stay finite
    o = cuda.device_array(x.shape, dtype)
    for fn, name in ((KN.softmax, "softmax"), (KN.log_softmax, "log_softmax")):
        fn(dev(x), o)
        with np.errstate(all="ignore"):
            want = OPS[name].reference(x.astype(np.float64), (1,))
        np.testing.assert_allclose(host(o), want, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=name)


def test_layer_norm():
    rng = _rng(11)
    x = rng.standard_normal((4, 19))
    w, b = rng.standard_normal(19), rng.standard_normal(19)
    o, m, rs = cuda.device_array((4, 19)), cuda.device_array(4), cuda.device_array(4)
    KN.layer_norm(dev(x), dev(w), dev(b), o, m, rs, 1e-5)
    mu, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    np.testing.assert_allclose(host(o), (x - mu) / np.sqrt(var + 1e-5) * w + b, rtol=1e-10)
    np.testing.assert_allclose(host(rs), 1 / np.sqrt(var[:, 0] + 1e-5))
    KN.layer_norm(dev(x), None, None, o, m, rs, 1e-5)
    np.testing.assert_allclose(host(o), (x - mu) / np.sqrt(var + 1e-5), rtol=1e-10)


def _conv_ref(x, w, b, s, p, d, g):
    """Direct convolution in NumPy (N, C, H, W) for the kernels' im2col path."""
    N, C, H, W = x.shape
    O, cg, kh, kw = w.shape
    oh = (H + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1
    ow = (W + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    out = np.zeros((N, O, oh, ow))
    og = O // g
    for o in range(O):
        grp = o // og
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, grp * cg:(grp + 1) * cg, i * d[0]:i * d[0] + s[0] * oh:s[0],
                           j * d[1]:j * d[1] + s[1] * ow:s[1]]
                out[:, o] += np.einsum("nchw,c->nhw", patch[:, :, :oh, :ow], w[o, :, i, j])
    return out + (0 if b is None else b[None, :, None, None])


@pytest.mark.parametrize("N,Cin,Cout,H,W,k,s,p,d,g", [
    (2, 2, 3, 5, 6, (3, 2), (1, 2), (1, 0), (1, 1), 1),
    (1, 4, 2, 6, 5, (2, 2), (2, 1), (1, 1), (2, 1), 2),
])
def test_conv_forward_input_and_weight_grads(N, Cin, Cout, H, W, k, s, p, d, g):
    rng = _rng(12)
    x = rng.standard_normal((N, Cin, H, W))
    w = rng.standard_normal((Cout, Cin // g) + k)
    b = rng.standard_normal(Cout)
    want = _conv_ref(x, w, b, s, p, d, g)
    osp = want.shape[2:]
    o = cuda.device_array(want.shape)
    x5 = dev(x).reshape(N, Cin, 1, H, W)
    w5 = dev(w).reshape((Cout, Cin // g, 1) + k)
    geo = ((1,) + s, (0,) + p, (1,) + d, g)
    KN.conv_forward(x5, w5, o.reshape((N, Cout, 1) + osp), dev(b), *geo)
    np.testing.assert_allclose(host(o), want, rtol=1e-10)
    # gradients of <gy, conv(x, w)> by linearity: finite differences are exact up to rounding
    gy = rng.standard_normal(want.shape)
    gy5 = dev(gy).reshape((N, Cout, 1) + osp)
    gx = cuda.device_array(x.shape)
    KN.conv_transpose(gy5, w5, gx.reshape(N, Cin, 1, H, W), None, *geo)
    gw = cuda.device_array(w.shape)
    KN.conv_weight_grad(x5, gy5, gw.reshape(w5.shape), *geo)
    e = np.zeros_like(x)
    for idx in [(0, 0, 0, 0), (N - 1, Cin - 1, H - 1, W - 1), (0, Cin // 2, H // 2, 1)]:
        e[...] = 0
        e[idx] = 1
        num = (gy * (_conv_ref(x + e, w, None, s, p, d, g) - _conv_ref(x, w, None, s, p, d, g))).sum()
        assert host(gx)[idx] == pytest.approx(num, rel=1e-8, abs=1e-9)
    ew = np.zeros_like(w)
    for idx in [(0, 0, 0, 0), (Cout - 1, Cin // g - 1, k[0] - 1, k[1] - 1)]:
        ew[...] = 0
        ew[idx] = 1
        num = (gy * (_conv_ref(x, w + ew, None, s, p, d, g) - _conv_ref(x, w, None, s, p, d, g))).sum()
        assert host(gw)[idx] == pytest.approx(num, rel=1e-8, abs=1e-9)


@pytest.mark.parametrize("ks,st,pd,dl,cm", [((2, 2), (2, 2), (0, 0), (1, 1), False),
                                            ((3, 2), (2, 1), (1, 1), (1, 2), True)])
def test_pooling_forward_backward(ks, st, pd, dl, cm):
    rng = _rng(13)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    x[0, 0, 1, 1] = np.nan
    P = 6
    dx = dev(x).reshape(P, 7, 6)
    rv, ri = OPS["max_pool2d_with_indices"].reference(x, kernel_size=ks, stride=st, padding=pd, dilation=dl,
                                                       ceil_mode=cm)
    osp = rv.shape[2:]
    ov, oi = cuda.device_array(rv.shape, np.float32), cuda.device_array(rv.shape, np.int64)
    KN.max_pool2d(dx, ov.reshape(P, *osp), oi.reshape(P, *osp), ks, st, pd, dl)
    np.testing.assert_array_equal(host(ov), rv)
    np.testing.assert_array_equal(host(oi), ri)
    gy = rng.standard_normal(rv.shape).astype(np.float32)
    want = np.zeros((P, 42), np.float32)
    for p_, (g_, i_) in enumerate(zip(gy.reshape(P, -1), ri.reshape(P, -1))):
        np.add.at(want[p_], i_, g_)
    og = cuda.device_array(x.shape, np.float32)
    KN.max_pool2d_backward(dev(gy).reshape(P, *osp), oi.reshape(P, *osp), og.reshape(P, 7, 6), ks, st, pd, dl)
    np.testing.assert_allclose(host(og).reshape(P, -1), want, atol=1e-6)
    og2 = dev(np.zeros(x.shape, np.float32))
    KN.max_pool2d_backward_scatter(dev(gy).reshape(P, *osp), oi.reshape(P, *osp), og2.reshape(P, 7, 6))
    np.testing.assert_allclose(host(og2).reshape(P, -1), want, atol=1e-6)
    gg = rng.standard_normal(x.shape).astype(np.float32)
    ogg = cuda.device_array(rv.shape, np.float32)
    KN.max_pool2d_gather(dev(gg).reshape(P, 7, 6), oi.reshape(P, *osp), ogg.reshape(P, *osp))
    np.testing.assert_array_equal(host(ogg).reshape(P, -1), np.take_along_axis(gg.reshape(P, -1), ri.reshape(P, -1), 1))
    xa = np.nan_to_num(x)
    for cip, dov in [(True, None), (False, None), (True, 5)]:
        kw = dict(kernel_size=ks, stride=st, padding=pd, ceil_mode=cm, count_include_pad=cip, divisor_override=dov)
        ra = OPS["avg_pool2d"].reference(xa, **kw)
        oa = cuda.device_array(ra.shape, np.float32)
        KN.avg_pool2d(dev(xa).reshape(P, 7, 6), oa.reshape(P, *ra.shape[2:]), ks, st, pd, cip, dov)
        np.testing.assert_allclose(host(oa), ra, atol=1e-6)
        gya = rng.standard_normal(ra.shape).astype(np.float32)
        rb = OPS["avg_pool2d_backward"].reference(gya, input_size=(7, 6), **kw)
        ob = cuda.device_array(x.shape, np.float32)
        KN.avg_pool2d_backward(dev(gya).reshape(P, *ra.shape[2:]), ob.reshape(P, 7, 6), ks, st, pd, cip, dov)
        np.testing.assert_allclose(host(ob), rb, atol=1e-5)


def test_adaptive_pooling():
    rng = _rng(14)
    x = rng.standard_normal((1, 2, 7, 5))
    dx = dev(x).reshape(2, 7, 5)
    ra = OPS["adaptive_avg_pool2d"].reference(x, output_size=(3, 2))
    oa = cuda.device_array(ra.shape)
    KN.adaptive_avg_pool2d(dx, oa.reshape(2, 3, 2))
    np.testing.assert_allclose(host(oa), ra)
    gy = rng.standard_normal(ra.shape)
    ob = cuda.device_array(x.shape)
    KN.adaptive_avg_pool2d_backward(dev(gy).reshape(2, 3, 2), ob.reshape(2, 7, 5))
    np.testing.assert_allclose(host(ob), OPS["adaptive_avg_pool2d_backward"].reference(gy, input_size=(7, 5)))
    rv, ri = OPS["adaptive_max_pool2d"].reference(x, output_size=(3, 2))
    ov, oi = cuda.device_array(rv.shape), cuda.device_array(rv.shape, np.int64)
    KN.adaptive_max_pool2d(dx, ov.reshape(2, 3, 2), oi.reshape(2, 3, 2))
    np.testing.assert_array_equal(host(ov), rv)
    np.testing.assert_array_equal(host(oi), ri)


# ------------------------------------------------------------------ indexing

def test_wrap_check():
    out = cuda.device_array(5, np.int64)
    assert KI.wrap_check(dev(np.array([3, -1, 0, 4, -5])), 5, out) == -1
    np.testing.assert_array_equal(host(out), [3, 4, 0, 4, 0])
    assert KI.wrap_check(dev(np.array([3, -1, 7, 5, 2])), 5, out) == 2
    assert KI.wrap_check(dev(np.array([-6])), 5, out[:1]) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_gather_scatter_select_add(dtype):
    rng = _rng(15)
    src = _sample((2, 5, 3), dtype, rng)
    i1 = np.array([4, 0, 0, 2])
    o = cuda.device_array((2, 4, 3), dtype)
    KI.index_select(dev(src), dev(i1), o)
    np.testing.assert_array_equal(host(o), src[:, i1])
    i3 = rng.integers(0, 5, (2, 4, 3))
    KI.gather(dev(src), dev(i3), o)
    np.testing.assert_array_equal(host(o), np.take_along_axis(src, i3, 1))
    s3 = _sample((2, 4, 3), dtype, rng)
    perm = np.stack([np.stack([rng.permutation(5)[:4] for _ in range(3)], 1) for _ in range(2)])  # no duplicates
    w = dev(src)
    KI.scatter(w, dev(perm), dev(s3))
    want = src.copy()
    np.put_along_axis(want, perm, s3, 1)
    np.testing.assert_array_equal(host(w), want)
    w = dev(src)
    KI.index_add(w, dev(i1), dev(s3), 2)
    want = src.copy()
    np.add.at(want, (slice(None), i1), 2 * s3)
    np.testing.assert_allclose(host(w), want, rtol=1e-6)


def _ref_scatter_reduce(x, idx, src, red, include_self):
    r = x.astype(np.float64 if x.dtype.kind == "f" else np.int64).copy()
    groups = {}
    for (p, j, q), t in np.ndenumerate(idx):
        groups.setdefault((p, t, q), []).append(src[p, j, q])
    for (p, t, q), vals in groups.items():
        vals = ([r[p, t, q]] if include_self else []) + vals
        if red == "sum":
            r[p, t, q] = sum(vals)
        elif red == "amax":
            r[p, t, q] = max(vals)
        elif red == "amin":
            r[p, t, q] = min(vals)
        else:
            s = sum(vals)
            r[p, t, q] = s / len(vals) if x.dtype.kind == "f" else s // len(vals)
    return r.astype(x.dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
@pytest.mark.parametrize("red", ["sum", "amax", "amin", "mean"])
def test_scatter_reduce_atomics(dtype, red):
    rng = _rng(16)
    x = _sample((2, 5, 3), dtype, rng)
    idx = rng.integers(0, 5, (2, 4, 3))
    src = _sample((2, 4, 3), dtype, rng)
    for include_self in (True, False):
        w = dev(x)
        KI.scatter_reduce(w, dev(idx), dev(src), red, include_self)
        np.testing.assert_allclose(host(w), _ref_scatter_reduce(x, idx, src, red, include_self), rtol=1e-12,
                                   err_msg=f"{red} include_self={include_self}")


def test_rows_take_masks_nonzero():
    rng = _rng(17)
    tab = rng.standard_normal((6, 3))
    rows = np.array([5, 0, 5, 2])
    o = cuda.device_array((4, 3))
    KI.index_rows(dev(tab), dev(rows), o)
    np.testing.assert_array_equal(host(o), tab[rows])
    for acc in (False, True):
        t = dev(tab)
        v = rng.standard_normal((4, 3)) if acc else np.stack([np.full(3, 7.0)] * 4)
        KI.scatter_rows(t, dev(rows), dev(v), acc)
        want = tab.copy()
        if acc:
            np.add.at(want, rows, v)
        else:
            want[rows] = v
        np.testing.assert_allclose(host(t), want)
    st = np.array([[1, 2, 0], [2, 0, 3]], np.int64)
    r = cuda.device_array(3, np.int64)
    KI.flat_rows(dev(st), dev(np.array([3, 4])), r)
    np.testing.assert_array_equal(host(r), st[0] * 4 + st[1])
    ot = cuda.device_array(4)
    KI.take(dev(tab.ravel()), dev(np.array([17, 0, 3, 3])), ot)
    np.testing.assert_array_equal(host(ot), tab.ravel()[[17, 0, 3, 3]])
    x = (rng.random((3, 4, 2)) > 0.6) * rng.standard_normal((3, 4, 2))
    xf = dev(x.ravel())
    ranks = cuda.device_array(x.size + 1, np.int64)
    cnt = KI.exclusive_ranks(xf, ranks)
    assert cnt == np.count_nonzero(x)
    onz = cuda.device_array((cnt, 3), np.int64)
    KI.nonzero(xf, x.shape, ranks, onz)
    np.testing.assert_array_equal(host(onz), np.argwhere(x))
    oms = cuda.device_array(cnt)
    KI.masked_select(xf, xf, ranks, oms)
    np.testing.assert_array_equal(host(oms), x[x != 0])
    w = dev(np.zeros(x.size))
    KI.masked_scatter(w, xf, ranks, dev(np.arange(cnt, dtype=np.float64) + 1))
    want = np.zeros(x.size)
    want[x.ravel() != 0] = np.arange(cnt) + 1
    np.testing.assert_array_equal(host(w), want)


# ------------------------------------------------------------------ sort

def _ref_sort(x, descending):
    """Stable sort of each row with NaN as the largest value."""
    idx = []
    for row in x:
        def key(i, row=row):
            v = row[i]
            nan = v != v
            if descending:
                return (0 if nan else 1, 0 if nan else -float(v), i)
            return (1 if nan else 0, 0 if nan else float(v), i)
        idx.append(sorted(range(len(row)), key=key))
    idx = np.array(idx, np.int64).reshape(x.shape)
    return np.take_along_axis(x, idx, 1), idx


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_sort_stable_shared_and_global(dtype):
    rng = _rng(18)
    for n in (1, 6, 13):
        x = rng.integers(-2, 3, (3, n)).astype(dtype)
        if dtype == np.float32 and n > 3:
            x[0, 2] = np.nan
            x[1, 1] = -0.0
        for desc in (False, True):
            for cap in (KS.SORT_BLOCK, 4):  # one block per row / the global network
                v = cuda.device_array(x.shape, dtype)
                i = cuda.device_array(x.shape, np.int64)
                KS.sort(dev(x), v, i, desc, cap=cap)
                rv, ri = _ref_sort(x, desc)
                np.testing.assert_array_equal(host(i), ri, err_msg=f"n={n} desc={desc} cap={cap}")
                np.testing.assert_array_equal(host(v), rv)


def test_topk():
    rng = _rng(19)
    x = rng.integers(-3, 4, (2, 9)).astype(np.float64)
    for largest in (True, False):
        v, i = cuda.device_array((2, 3)), cuda.device_array((2, 3), np.int64)
        KS.topk(dev(x), 3, largest, v, i)
        rv, ri = _ref_sort(x, largest)
        np.testing.assert_array_equal(host(i), ri[:, :3])
        np.testing.assert_array_equal(host(v), rv[:, :3])


# ------------------------------------------------------------------ random

def test_random_reproducible_ranges_and_moments():
    n = 256
    o1, o2 = cuda.device_array(n, np.float32), cuda.device_array(n, np.float32)
    KR.uniform(o1, KR.key(7, 0, n), -2.0, 3.0)
    KR.uniform(o2, KR.key(7, 0, n), -2.0, 3.0)
    a = host(o1)
    np.testing.assert_array_equal(a, host(o2))              # same (seed, offset): same numbers
    assert a.min() >= -2 and a.max() < 3 and abs(a.mean() - 0.5) < 0.4
    KR.uniform(o2, KR.key(7, n, n), -2.0, 3.0)
    assert not np.array_equal(a, host(o2))                   # next offset: new numbers
    on = cuda.device_array(n)
    KR.normal(on, KR.key(8, 0, n), 1.0, 2.0)
    z = host(on)
    assert abs(z.mean() - 1) < 0.5 and 1.5 < z.std() < 2.5
    oi = cuda.device_array(n, np.int64)
    KR.randint(oi, KR.key(9, 0, n), -3, 4)
    r = host(oi)
    assert r.min() >= -3 and r.max() < 4 and len(np.unique(r)) == 7
    ob = cuda.device_array(n)
    KR.bernoulli(ob, KR.key(10, 0, n), dev(np.r_[np.zeros(n // 2), np.ones(n // 2)]))
    np.testing.assert_array_equal(host(ob), np.r_[np.zeros(n // 2), np.ones(n // 2)])
    KR.bernoulli_scalar(ob, KR.key(11, 0, n), 0.25)
    assert set(np.unique(host(ob))) <= {0.0, 1.0} and 0.1 < host(ob).mean() < 0.4
    KR.dropout_mask(ob, KR.key(12, 0, n), 0.25)
    assert set(np.unique(host(ob))) <= {0.0, 4 / 3}
    KR.exponential(ob, KR.key(13, 0, n), 2.0)
    e = host(ob)
    assert e.min() >= 0 and 0.3 < e.mean() < 0.7


# ------------------------------------------------------------------ optim

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_optimizer_steps_match_cpu_kernels(dtype):
    from jitorch.kernels import optim as CPU
    rng = _rng(20)
    for args in [(0.1, 0.9, 0.1, 0.01, False, False, False), (0.1, 0.9, 0.0, 0.0, True, True, True),
                 (0.1, 0.0, 0.0, 0.01, False, False, False)]:
        p, g, b = (rng.standard_normal(40).astype(dtype) for _ in range(3))
        sc = CPU.sgd_scalars(dtype, *args)
        dp, db = dev(p), dev(b)
        KO.sgd_apply(dp, dev(g), db, sc)
        CPU.sgd_apply(p, g, b, sc)
        np.testing.assert_allclose(host(dp), p, rtol=1e-6)
        np.testing.assert_allclose(host(db), b, rtol=1e-6)
    for amsgrad in (False, True):
        for decoupled in (False, True):
            arrs = [np.abs(rng.standard_normal(40)).astype(dtype) for _ in range(5)]
            sc = CPU.adam_scalars(dtype, 3, 1e-2, 0.9, 0.999, 1e-8, 0.01, amsgrad, False, decoupled)
            d = [dev(a) for a in arrs]
            KO.adam_apply(*d, sc)
            CPU.adam_apply(*arrs, sc)
            for got, want in zip(d, arrs):
                np.testing.assert_allclose(host(got), want, rtol=1e-5)


@pytest.mark.slow
def test_every_kernel_compiles_to_ptx_for_a_real_gpu(tmp_path):
    """The simulator runs kernels as Python, so it cannot catch what the real CUDA target rejects (a NumPy call in
    a kernel body, a builtin the target cannot lower, a type that does not unify). ``gpu_check.py --ptx`` runs
    every launcher on stand-in arrays and compiles each kernel signature through libNVVM for cc 9.0 (no GPU
    needed); skipped where libNVVM is not installed. Takes 1-2 minutes: NVVM compiles ~170 kernel signatures."""
    import json
    import pathlib
    import subprocess
    import sys
    root = pathlib.Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    p = subprocess.run([sys.executable, str(root / "benchmarks" / "gpu_check.py"), str(tmp_path), "--ptx"],
                       cwd=root, env=env, capture_output=True, text=True, timeout=900)
    if p.returncode == 3:
        pytest.skip(p.stdout.strip())
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    res = json.loads((tmp_path / "ptx_check.json").read_text())
    assert res["compiled"] > 150 and not res["failures"]

"""The per-image convolution kernels of kernels/conv.py (NCHW images, one product per image) against
NumPy: im2col/col2im per image (and their adjointness), the fused BLAS kernels (forward, input
gradient / transposed convolution, weight gradient) over strides, padding, dilation, groups, 1-3
spatial dims, float32/float64, serial and parallel (several chunks); the op-level paths with and
without the BLAS function (NumPy products), and the caches the ops keep (scratch arrays, forward
columns) across shape and dtype changes."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import jitorch
from jitorch import _threads
from jitorch._dispatch import call
from jitorch.kernels import conv as kc
from jitorch.ops import nn as N

from .test_nn_helpers import needs_torch, torch

_rng = np.random.default_rng(11)

# x spatial, kernel, stride, padding, dilation (1-3 spatial dims)
GEOMS = [
    ((9,), (3,), (1,), (0,), (1,)),
    ((11,), (4,), (3,), (2,), (2,)),
    ((6, 7), (3, 2), (1, 1), (1, 0), (1, 1)),
    ((8, 8), (5, 5), (1, 1), (0, 0), (1, 1)),
    ((7, 9), (3, 3), (2, 3), (2, 1), (2, 1)),
    ((5, 5), (1, 1), (2, 2), (0, 0), (1, 1)),
    ((4, 5, 6), (2, 3, 2), (1, 2, 1), (1, 0, 2), (1, 1, 2)),
    ((3, 4), (4, 4), (1, 1), (2, 2), (1, 1)),  # kernel wider than the image: padding only
]


def _out_size(sp, k, s, p, d):
    return tuple(N.conv_out_size(a, b, c, e, f) for a, b, c, e, f in zip(sp, k, s, p, d))


def _geom(c, sp, k, s, p, d):
    return N._geom(c, sp, k, _out_size(sp, k, s, p, d), s, p, d)


def _ref_im2col(x, k, s, p, d):
    """x (N, C, *sp) -> (N, C*K, L) by slicing the zero-padded input, tap by tap."""
    n, c = x.shape[:2]
    osz = _out_size(x.shape[2:], k, s, p, d)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in p])
    rows = []
    for ci in range(c):
        for tap in itertools.product(*[range(a) for a in k]):
            sl = tuple(slice(t * dd, t * dd + ss * (m - 1) + 1, ss) for t, dd, ss, m in zip(tap, d, s, osz))
            rows.append(xp[(slice(None), ci) + sl].reshape(n, -1))
    return np.stack(rows, axis=1)


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("sp,k,s,p,d", GEOMS)
def test_im2col_col2im_images_match_numpy_and_are_adjoint(sp, k, s, p, d, parallel):
    n, c = 3, 2
    x = _rng.standard_normal((n, c) + sp)
    geom = _geom(c, sp, k, s, p, d)
    want = _ref_im2col(x, k, s, p, d)
    cols = np.full((n, want[0].size), np.nan)
    kc.im2col_images(x.reshape(n, -1), cols, geom, parallel)
    np.testing.assert_array_equal(cols.reshape(want.shape), want)
    g = _rng.standard_normal(cols.shape)
    back = np.full(x.shape, np.nan)
    kc.col2im_images(g, back.reshape(n, -1), None, geom, parallel)
    np.testing.assert_allclose((cols * g).sum(), (x * back).sum(), rtol=1e-12)
    bias = _rng.standard_normal(c)
    back_b = np.empty_like(back)
    kc.col2im_images(g, back_b.reshape(n, -1), bias, geom, parallel)
    np.testing.assert_allclose(back_b, back + bias.reshape((1, c) + (1,) * len(sp)), rtol=1e-12, atol=1e-12)


needs_blas = pytest.mark.skipif(_threads.cblas_gemm(np.float32) is None, reason="no OpenBLAS cblas_?gemm found")


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunks", [1, 2, 3])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("sp,k,s,p,d", GEOMS)
def test_blas_kernels_match_numpy(sp, k, s, p, d, groups, chunks, dtype):
    n, c, o = 5, 4, 6
    gemm = _threads.cblas_gemm(dtype)
    x = _rng.standard_normal((n, c) + sp).astype(dtype)
    w = _rng.standard_normal((o, c // groups) + k).astype(dtype)
    b = _rng.standard_normal(o).astype(dtype)
    geom = _geom(c, sp, k, s, p, d)
    osz = _out_size(sp, k, s, p, d)
    L = math.prod(osz)
    ckg = w[0].size
    ref_cols = _ref_im2col(x.astype(np.float64), k, s, p, d)  # (n, C*K, L)
    ref = np.matmul(w.reshape(groups, o // groups, ckg).astype(np.float64),
                    ref_cols.reshape(n, groups, ckg, L)).reshape(n, o, L) + b.reshape(1, o, 1)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)
    _threads.use_blas_threads(0)
    # forward (with and without bias); cols keeps every image's columns
    cols = np.full((n, c * math.prod(k) * L), np.nan, dtype)
    out = np.full((n, o * L), np.nan, dtype)
    kc.conv_blas(gemm, x.reshape(n, -1), w.reshape(o, ckg), b, cols, out, groups, geom, chunks)
    np.testing.assert_allclose(out.reshape(n, o, L), ref, **tol)
    np.testing.assert_array_equal(cols.reshape(ref_cols.shape), ref_cols.astype(dtype))
    kc.conv_blas(gemm, x.reshape(n, -1), w.reshape(o, ckg), None, cols, out, groups, geom, chunks)
    np.testing.assert_allclose(out.reshape(n, o, L), ref - b.reshape(1, o, 1), **tol)
    # weight gradient: from the kept columns and rebuilt per image
    gy = _rng.standard_normal((n, o, L)).astype(dtype)
    want_gw = np.matmul(gy.reshape(n, groups, o // groups, L).astype(np.float64),
                        ref_cols.reshape(n, groups, ckg, L).transpose(0, 1, 3, 2)).sum(0).reshape(o, ckg)
    for kept in (cols, None):
        gw = np.full((o, ckg), np.nan, dtype)
        kc.wgrad_blas(gemm, x.reshape(n, -1), gy.reshape(n, -1), kept, gw, groups, geom, chunks)
        np.testing.assert_allclose(gw, want_gw, **tol)
    # input gradient: col2im of w^T @ gy, checked through <conv(x), gy> = <x, dx>
    dx = np.full((n, x[0].size), np.nan, dtype)
    kc.col2im_blas(gemm, w.reshape(o, ckg), gy.reshape(n, -1), None, dx, groups, geom, chunks)
    lhs = ((ref - b.reshape(1, o, 1)) * gy).sum()
    np.testing.assert_allclose(lhs, (x.astype(np.float64) * dx.reshape(x.shape)).sum(), rtol=1e-4 if dtype ==
                               np.float32 else 1e-10)
    dxb = np.empty_like(dx)
    bc = _rng.standard_normal(c).astype(dtype)
    kc.col2im_blas(gemm, w.reshape(o, ckg), gy.reshape(n, -1), bc, dxb, groups, geom, chunks)
    np.testing.assert_allclose(dxb.reshape(x.shape), dx.reshape(x.shape) + bc.reshape((1, c) + (1,) * len(sp)),
                               **tol)


def test_parallel_chunks_threshold(monkeypatch):
    monkeypatch.setattr(kc, "CONV_PARALLEL_MACS", 1000)
    assert kc.parallel_chunks(64, 999) == 1
    assert kc.parallel_chunks(1, 10 ** 9) == 1
    import numba
    assert kc.parallel_chunks(64, 1000) == min(64, numba.get_num_threads())
    assert kc.parallel_chunks(2, 10 ** 9) <= 2


def test_cblas_gemm_lookup():
    assert _threads.cblas_gemm(np.float16) is None
    assert _threads.cblas_gemm(np.int64) is None
    f32, f64 = _threads.cblas_gemm(np.float32), _threads.cblas_gemm(np.dtype("float64"))
    if _threads.blas_info()["library"] is None:
        assert f32 is None and f64 is None
    else:
        assert f32 is not None and f64 is not None and f32 is not f64


# ---------------------------------------------------------------------------------------------- op level

OP_CASES = [
    # x shape, w shape, stride, padding, dilation, groups
    ((3, 2, 9), (4, 1, 3), (2,), (1,), (1,), 2),
    ((4, 1, 12, 12), (3, 1, 5, 5), (1, 1), (0, 0), (1, 1), 1),
    ((3, 4, 7, 6), (6, 2, 3, 3), (2, 1), (1, 1), (1, 2), 2),
    ((2, 2, 4, 5, 4), (3, 2, 2, 2, 3), (1, 1, 2), (0, 1, 1), (1, 2, 1), 1),
]


@pytest.mark.parametrize("blas", [True, False])
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", OP_CASES)
def test_conv_ops_both_paths_match_reference(monkeypatch, xs, ws, stride, padding, dilation, groups, parallel, blas):
    if not blas:
        monkeypatch.setattr(N, "_cblas_gemm", lambda dtype: None)
    elif _threads.cblas_gemm(np.float64) is None:
        pytest.skip("no OpenBLAS cblas_?gemm found")
    monkeypatch.setattr(kc, "CONV_PARALLEL_MACS", 0 if parallel else 1 << 62)
    x, w, b = _rng.standard_normal(xs), _rng.standard_normal(ws), _rng.standard_normal(ws[0])
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    jx, jw, jb = (jitorch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    y = call("convolution", jx, jw, jb, **attrs)
    np.testing.assert_allclose(y.detach().numpy(), N._ref_conv(x, w, b, **attrs), rtol=1e-11, atol=1e-11)
    g = _rng.standard_normal(tuple(y.shape))
    y.backward(jitorch.from_numpy(g))
    np.testing.assert_allclose(jw.grad.numpy(), N._ref_wgrad(x, g, weight_size=ws, **attrs), rtol=1e-10, atol=1e-10)
    op = N._convT_output_padding(xs[2:], g.shape[2:], ws[2:], stride, padding, dilation)
    np.testing.assert_allclose(jx.grad.numpy(), N._ref_convT(g, w, output_padding=op, **attrs), rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(jb.grad.numpy(), g.sum(axis=tuple(i for i in range(g.ndim) if i != 1)), rtol=1e-12)
    # a transposed convolution with a bias (its forward is the col2im path)
    wt = _rng.standard_normal((xs[1], 3) + ws[2:])
    bt = _rng.standard_normal(3 * groups)
    yt = call("conv_transpose", jitorch.from_numpy(x), jitorch.from_numpy(wt), jitorch.from_numpy(bt),
              output_padding=(0,) * len(stride), **attrs)
    np.testing.assert_allclose(yt.numpy(), N._ref_convT(x, wt, bt, output_padding=(0,) * len(stride), **attrs),
                               rtol=1e-10, atol=1e-10)


@needs_torch
@pytest.mark.parametrize("blas", [True, False])
def test_lenet_shapes_match_torch_float32(monkeypatch, blas):
    """LeNet's two convolutions (batch 64, parallel path) forward and backward against torch."""
    if not blas:
        monkeypatch.setattr(N, "_cblas_gemm", lambda dtype: None)
    for xs, ws in (((64, 1, 28, 28), (8, 1, 5, 5)), ((64, 8, 12, 12), (16, 8, 5, 5))):
        x = _rng.standard_normal(xs).astype(np.float32)
        w = _rng.standard_normal(ws).astype(np.float32)
        b = _rng.standard_normal(ws[0]).astype(np.float32)
        tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
        ty = torch.nn.functional.conv2d(tx, tw, tb)
        jx, jw, jb = (jitorch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
        jy = jitorch.nn.functional.conv2d(jx, jw, jb)
        np.testing.assert_allclose(jy.detach().numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
        g = _rng.standard_normal(tuple(ty.shape)).astype(np.float32)
        ty.backward(torch.from_numpy(g))
        jy.backward(jitorch.from_numpy(g))
        for a, t in ((jx, tx), (jw, tw), (jb, tb)):
            np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-3, atol=1e-3)


def test_caches_follow_shape_and_dtype_changes():
    """Scratch arrays and kept forward columns are keyed by shape and dtype: alternating batch sizes and
    dtypes on one layer gives each call its own right answer."""
    attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    w64 = _rng.standard_normal((3, 2, 3, 3))
    for n, dtype in ((4, np.float64), (2, np.float64), (4, np.float32), (4, np.float64), (3, np.float32)):
        x = _rng.standard_normal((n, 2, 6, 5)).astype(dtype)
        w = w64.astype(dtype)
        jx, jw = jitorch.from_numpy(x).requires_grad_(), jitorch.from_numpy(w).requires_grad_()
        y = call("convolution", jx, jw, **attrs)
        y.sum().backward()
        tol = 1e-4 if dtype == np.float32 else 1e-11
        np.testing.assert_allclose(y.detach().numpy(), N._ref_conv(x.astype(np.float64), w64, **attrs), rtol=tol,
                                   atol=tol)
        np.testing.assert_allclose(jw.grad.numpy(), N._ref_wgrad(x.astype(np.float64), np.ones(y.shape),
                                                                  weight_size=w.shape, **attrs), rtol=tol, atol=tol)
        assert jw.grad.dtype == jw.dtype

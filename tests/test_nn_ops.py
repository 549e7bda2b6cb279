"""The convolution and pooling primitives of ``jitorch.ops.nn``: kernels against their NumPy references and
independent formulas (every dtype, strides, padding, dilation, groups, NaN/inf, ties), gradients against
finite differences (first and second order), the backward workspace (kept columns, memoized layout moves,
scratch recycling) and the parallel kernel variants."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import jitorch
from jitorch._dispatch import call
from jitorch.autograd import gradcheck, gradgradcheck
from jitorch.ops import nn as N
from jitorch.ops.registry import OPS

from .test_nn_helpers import needs_torch, torch

_rng = np.random.default_rng(7)


def J(a, rg=False):
    t = jitorch.from_numpy(np.array(a, copy=True))
    return t.requires_grad_() if rg else t


def r(*shape, dtype=np.float64):
    return _rng.standard_normal(shape).astype(dtype)


TOL = {np.float64: (1e-12, 1e-12), np.float32: (2e-5, 2e-5), np.float16: (2e-2, 2e-2)}


def _naive_conv(x, w, b, stride, padding, dilation, groups):
    """Direct 6-deep loop definition (independent of the reference's slicing)."""
    nd = w.ndim - 2
    n, c = x.shape[:2]
    o, cg = w.shape[:2]
    og = o // groups
    osz = [N.conv_out_size(s, k, st, p, d) for s, k, st, p, d in zip(x.shape[2:], w.shape[2:], stride, padding,
                                                                      dilation)]
    out = np.zeros((n, o) + tuple(osz))
    for oi in range(o):
        g = oi // og
        for pos in itertools.product(*[range(s) for s in osz]):
            for ci in range(cg):
                for tap in itertools.product(*[range(k) for k in w.shape[2:]]):
                    src = [p * s - pd + t * d for p, s, pd, t, d in zip(pos, stride, padding, tap, dilation)]
                    if all(0 <= q < m for q, m in zip(src, x.shape[2:])):
                        out[(slice(None), oi) + pos] += x[(slice(None), g * cg + ci) + tuple(src)] * w[(oi, ci) + tap]
        if b is not None:
            out[:, oi] += b[oi]
    _ = nd
    return out


CONV_CASES = [
    # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 7), (4, 3, 3), (1,), (0,), (1,), 1),
    ((1, 4, 9), (2, 2, 2), (3,), (2,), (2,), 2),
    ((2, 2, 5, 6), (3, 2, 3, 2), (1, 1), (1, 0), (1, 1), 1),
    ((1, 4, 6, 5), (4, 1, 3, 3), (2, 1), (1, 2), (2, 1), 4),
    ((3, 1, 4, 4), (2, 1, 1, 1), (1, 1), (0, 0), (1, 1), 1),
    ((1, 2, 3, 4, 3), (2, 2, 2, 3, 1), (1, 2, 1), (1, 0, 1), (1, 1, 2), 1),
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV_CASES)
def test_convolution_matches_naive_loops_and_reference(xs, ws, stride, padding, dilation, groups):
    x, w, b = r(*xs), r(*ws), r(ws[0])
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    want = _naive_conv(x, w, b, stride, padding, dilation, groups)
    got = call("convolution", J(x), J(w), J(b), **attrs).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(N._ref_conv(x, w, b, **attrs), want, rtol=1e-12, atol=1e-12)
    # weight gradient and input gradient against the adjoint identities <conv(x, w), g> = <x, convT(g, w)> = ...
    g = r(*want.shape)
    gw = call("convolution_weight_grad", J(x), J(g), weight_size=ws, **attrs).numpy()
    np.testing.assert_allclose(gw, N._ref_wgrad(x, g, weight_size=ws, **attrs), rtol=1e-10, atol=1e-12)
    op = N._convT_output_padding(xs[2:], want.shape[2:], ws[2:], stride, padding, dilation)
    gx = call("conv_transpose", J(g), J(w), stride=stride, padding=padding, output_padding=op, dilation=dilation,
              groups=groups).numpy()
    np.testing.assert_allclose(gx, N._ref_convT(g, w, stride=stride, padding=padding, output_padding=op,
                                                dilation=dilation, groups=groups), rtol=1e-10, atol=1e-12)
    lhs = (_naive_conv(x, w, None, stride, padding, dilation, groups) * g).sum()
    np.testing.assert_allclose(lhs, (x * gx).sum(), rtol=1e-10)
    np.testing.assert_allclose(lhs, (w * gw).sum(), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_convolution_low_precision_dtypes(dtype):
    x, w, b = r(2, 3, 6, 6, dtype=dtype), r(4, 3, 3, 3, dtype=dtype), r(4, dtype=dtype)
    attrs = dict(stride=(2, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    y = call("convolution", J(x), J(w), J(b), **attrs)
    assert y.dtype.np == dtype
    want = N._ref_conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **attrs)
    rt, at = TOL[dtype]
    np.testing.assert_allclose(y.numpy().astype(np.float64), want, rtol=rt * 10, atol=at * 10)
    yt = call("conv_transpose", J(x), J(w.transpose(1, 0, 2, 3).copy()), stride=(1, 1), padding=(0, 0),
              output_padding=(0, 0), dilation=(1, 1), groups=1)
    assert yt.dtype.np == dtype and tuple(yt.shape) == (2, 4, 8, 8)


def test_convolution_empty_batch_and_zero_channels():
    y = call("convolution", J(r(0, 2, 5, 5)), J(r(3, 2, 3, 3)), stride=(1, 1), padding=(0, 0), dilation=(1, 1),
             groups=1)
    assert tuple(y.shape) == (0, 3, 3, 3)


@needs_torch
@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV_CASES)
def test_conv_ops_match_torch(xs, ws, stride, padding, dilation, groups):
    x, w, b = r(*xs), r(*ws), r(ws[0])
    nd = len(ws) - 2
    tf = getattr(torch.nn.functional, f"conv{nd}d")
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    ty = tf(tx, tw, tb, stride, padding, dilation, groups)
    jx, jw, jb = J(x, True), J(w, True), J(b, True)
    jy = call("convolution", jx, jw, jb, stride=stride, padding=padding, dilation=dilation, groups=groups)
    np.testing.assert_allclose(jy.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = r(*ty.shape)
    ty.backward(torch.from_numpy(g))
    jy.backward(J(g))
    for a, t in ((jx, tx), (jw, tw), (jb, tb)):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_conv_gradcheck_and_gradgradcheck():
    attrs = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    x, w, b = J(r(1, 4, 4, 5), True), J(r(2, 2, 2, 2), True), J(r(2), True)
    assert gradcheck(lambda x, w, b: call("convolution", x, w, b, **attrs), (x, w, b))
    assert gradgradcheck(lambda x, w: call("convolution", x, w, **attrs), (x, w))
    cattrs = dict(stride=(2,), padding=(1,), output_padding=(1,), dilation=(1,), groups=1)
    x1, w1, b1 = J(r(1, 2, 3), True), J(r(2, 3, 3), True), J(r(3), True)
    assert gradcheck(lambda x, w, b: call("conv_transpose", x, w, b, **cattrs), (x1, w1, b1))
    assert gradgradcheck(lambda x, w: call("conv_transpose", x, w, **cattrs), (x1, w1))
    wattrs = dict(weight_size=(3, 2, 2), stride=(1,), padding=(1,), dilation=(1,), groups=1)
    x2, g2 = J(r(2, 2, 4), True), J(r(2, 3, 5), True)
    assert gradcheck(lambda x, g: call("convolution_weight_grad", x, g, **wattrs), (x2, g2))


# ---------------------------------------------------------------------------------------------- pooling

POOL_CASES = [
    # kernel, stride, padding, dilation, ceil_mode
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((3, 2), (1, 2), (1, 0), (2, 1), False),
    ((2, 3), (3, 1), (1, 1), (1, 2), True),
    ((1, 4), (1, 3), (0, 2), (1, 1), True),
]


def _naive_maxpool(x, k, s, p, d, ceil):
    n, c, h, w = x.shape
    oh, ow = (N.pool_out_size(a, kk, ss, pp, dd, ceil) for a, kk, ss, pp, dd in zip((h, w), k, s, p, d))
    out = np.empty((n, c, oh, ow), x.dtype)
    idx = np.empty((n, c, oh, ow), np.int64)
    for a, b, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        best, bi = -np.inf, None
        for u, v in itertools.product(range(k[0]), range(k[1])):
            hh, ww = i * s[0] - p[0] + u * d[0], j * s[1] - p[1] + v * d[1]
            if 0 <= hh < h and 0 <= ww < w:
                val = x[a, b, hh, ww]
                if bi is None:
                    bi = hh * w + ww
                if val > best or np.isnan(val):
                    best, bi = val, hh * w + ww
        out[a, b, i, j], idx[a, b, i, j] = best, bi
    return out, idx


@pytest.mark.parametrize("k,s,p,d,ceil", POOL_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_pool_matches_naive(k, s, p, d, ceil, dtype):
    x = r(2, 3, 7, 8, dtype=dtype)
    x[0, 0, 1, 1] = np.nan
    x[1, 2, :2, :2] = -np.inf
    x[0, 1, 3, :] = 2.5  # ties: the first maximum wins
    y, idx = call("max_pool2d_with_indices", J(x), kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    want, widx = _naive_maxpool(x, k, s, p, d, ceil)
    np.testing.assert_array_equal(y.numpy(), want)
    np.testing.assert_array_equal(idx.numpy(), widx)
    ry, ri = N._ref_maxpool(x, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    np.testing.assert_array_equal(ry, want)
    np.testing.assert_array_equal(ri, widx)
    g = r(*want.shape)
    gx = call("max_pool2d_backward", J(g), idx, input_size=(7, 8)).numpy()
    ref = np.zeros((2 * 3, 56))
    for pl in range(6):
        np.add.at(ref[pl], widx.reshape(6, -1)[pl], g.reshape(6, -1)[pl])
    np.testing.assert_allclose(gx, ref.reshape(gx.shape), rtol=1e-6)


@pytest.mark.parametrize("k,s,p,ceil,cip,div", [
    ((2, 2), (2, 2), (0, 0), False, True, None),
    ((3, 3), (2, 2), (1, 1), True, False, None),
    ((3, 2), (1, 2), (1, 1), True, True, 5),
    ((2, 3), (3, 1), (1, 0), True, False, None),
])
def test_avg_pool_matches_naive_and_backward_is_adjoint(k, s, p, ceil, cip, div):
    x = r(2, 2, 7, 6)
    attrs = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip, divisor_override=div)
    y = call("avg_pool2d", J(x), **attrs).numpy()
    oh, ow = y.shape[2:]
    want = np.zeros_like(y)
    for i, j in itertools.product(range(oh), range(ow)):
        hs, ws = i * s[0] - p[0], j * s[1] - p[1]
        he, we = min(hs + k[0], 7 + p[0]), min(ws + k[1], 6 + p[1])
        size = (he - hs) * (we - ws)
        hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, 7), min(we, 6)
        dv = div or (size if cip else (he - hs) * (we - ws))
        want[:, :, i, j] = x[:, :, hs:he, ws:we].sum((2, 3)) / dv
    np.testing.assert_allclose(y, want, rtol=1e-12)
    g = r(*y.shape)
    gx = call("avg_pool2d_backward", J(g), input_size=(7, 6), **attrs).numpy()
    np.testing.assert_allclose((y * g).sum(), (x * gx).sum(), rtol=1e-12)


@pytest.mark.parametrize("osz", [(3, 4), (5, 5), (1, 1), (7, 6), (2, 1)])
def test_adaptive_pools_match_naive(osz):
    x = r(2, 3, 7, 6)
    y = call("adaptive_avg_pool2d", J(x), output_size=osz).numpy()
    ym, im = call("adaptive_max_pool2d", J(x), output_size=osz)
    for i, j in itertools.product(range(osz[0]), range(osz[1])):
        hs, he = (i * 7) // osz[0], -(-((i + 1) * 7) // osz[0])
        ws, we = (j * 6) // osz[1], -(-((j + 1) * 6) // osz[1])
        win = x[:, :, hs:he, ws:we]
        np.testing.assert_allclose(y[:, :, i, j], win.mean((2, 3)), rtol=1e-12)
        np.testing.assert_array_equal(ym.numpy()[:, :, i, j], win.max((2, 3)))
        flat = win.reshape(2, 3, -1).argmax(-1)
        np.testing.assert_array_equal(im.numpy()[:, :, i, j], (hs + flat // (we - ws)) * 6 + ws + flat % (we - ws))
    g = r(*y.shape)
    gx = call("adaptive_avg_pool2d_backward", J(g), input_size=(7, 6)).numpy()
    np.testing.assert_allclose((y * g).sum(), (x * gx).sum(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_pools_low_precision(dtype):
    x = r(2, 3, 6, 6, dtype=dtype)
    y, i = call("max_pool2d_with_indices", J(x), kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                ceil_mode=False)
    assert y.dtype.np == dtype and i.dtype is jitorch.int64
    np.testing.assert_array_equal(y.numpy(), x.reshape(2, 3, 3, 2, 3, 2).max((3, 5)))
    a = call("avg_pool2d", J(x), kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False,
             count_include_pad=True, divisor_override=None)
    np.testing.assert_allclose(a.numpy().astype(np.float64),
                               x.astype(np.float64).reshape(2, 3, 3, 2, 3, 2).mean((3, 5)), rtol=TOL[dtype][0] * 5,
                               atol=TOL[dtype][1] * 5)


def test_pool_gradchecks():
    x = J(_rng.permutation(np.arange(60.0)).reshape(1, 3, 4, 5) / 7, True)
    mp = dict(kernel_size=(2, 2), stride=(1, 2), padding=(1, 0), dilation=(1, 1), ceil_mode=True)
    assert gradcheck(lambda x: call("max_pool2d_with_indices", x, **mp)[0], (x,))
    assert gradgradcheck(lambda x: call("max_pool2d_with_indices", x, **mp)[0], (x,))
    ap = dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True, count_include_pad=False,
              divisor_override=None)
    assert gradcheck(lambda x: call("avg_pool2d", x, **ap), (x,))
    assert gradgradcheck(lambda x: call("avg_pool2d", x, **ap), (x,))
    assert gradcheck(lambda x: call("adaptive_avg_pool2d", x, output_size=(3, 2)), (x,))
    assert gradcheck(lambda x: call("adaptive_max_pool2d", x, output_size=(3, 3))[0], (x,))


def test_op_errors_name_the_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d"):
        call("convolution", J(r(2, 3, 4)), J(r(2, 3, 2, 2)), stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    with pytest.raises(RuntimeError, match="out_channels .* must be divisible by groups"):
        call("convolution", J(r(1, 4, 4, 4)), J(r(3, 2, 2, 2)), stride=(1, 1), padding=(0, 0), dilation=(1, 1),
             groups=2)
    with pytest.raises(RuntimeError, match="expected bias to be 1-dimensional with 3 elements"):
        call("convolution", J(r(1, 2, 4, 4)), J(r(3, 2, 2, 2)), J(r(2)), stride=(1, 1), padding=(0, 0),
             dilation=(1, 1), groups=1)
    with pytest.raises(RuntimeError, match="non-positive stride"):
        call("convolution", J(r(1, 2, 4, 4)), J(r(3, 2, 2, 2)), stride=(0, 1), padding=(0, 0), dilation=(1, 1),
             groups=1)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        call("conv_transpose", J(r(1, 2, 1)), J(r(2, 1, 1)), stride=(1,), padding=(1,), output_padding=(0,),
             dilation=(1,), groups=1)
    with pytest.raises(RuntimeError, match="max_pool2d: expected a 4-D input"):
        call("max_pool2d_with_indices", J(r(3, 4, 4)), kernel_size=(2, 2), stride=(2, 2), padding=(0, 0),
             dilation=(1, 1), ceil_mode=False)
    with pytest.raises(RuntimeError, match="divisor must be not zero"):
        call("avg_pool2d", J(r(1, 1, 4, 4)), kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False,
             count_include_pad=True, divisor_override=0)
    with pytest.raises(RuntimeError, match="convolution_weight_grad: grad_output of size"):
        call("convolution_weight_grad", J(r(1, 2, 5)), J(r(1, 3, 4)), weight_size=(3, 2, 3), stride=(1,),
             padding=(0,), dilation=(1,), groups=1)


def test_every_nn_op_has_reference_vjp_and_doc():
    for name in ("convolution", "conv_transpose", "convolution_weight_grad", "max_pool2d_with_indices",
                 "max_pool2d_backward", "max_pool2d_gather", "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d",
                 "adaptive_avg_pool2d_backward", "adaptive_max_pool2d"):
        op = OPS[name]
        assert op.reference is not None and op.vjp is not None and op.doc and "nn" in op.tags


# ---------------------------------------------------------------------------------------------- workspace

def test_forward_columns_are_kept_for_backward_only_and_consumed():
    N._fwd_cols().clear()
    x, w = J(r(2, 3, 6, 6), True), J(r(4, 3, 3, 3), True)
    attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    with jitorch.no_grad():
        call("convolution", x, w, **attrs)
    assert len(N._fwd_cols()) == 0
    y = call("convolution", x, w, **attrs)
    assert len(N._fwd_cols()) == 1
    y.sum().backward(retain_graph=True)
    assert len(N._fwd_cols()) == 0
    g1 = w.grad.numpy().copy()
    w.grad = None
    y.sum().backward()  # recomputed columns give the same gradient
    np.testing.assert_allclose(w.grad.numpy(), g1, rtol=1e-12)
    np.testing.assert_allclose(g1, N._ref_wgrad(x.detach().numpy(), np.ones(y.shape), weight_size=(4, 3, 3, 3),
                                                **attrs), rtol=1e-10)


def test_in_place_change_of_input_after_forward_is_detected():
    x, w = J(r(1, 2, 4, 4)), J(r(2, 2, 2, 2), True)
    y = call("convolution", x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    x.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_kept_columns_are_not_reused_for_a_different_geometry():
    N._fwd_cols().clear()
    x, w = J(r(1, 2, 5, 5), True), J(r(2, 2, 3, 3), True)
    call("convolution", x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    gy = J(r(1, 2, 5, 5))
    with N._workspace():  # same x, other padding: must not take the kept (3x3-output) columns
        gw = call("convolution_weight_grad", x, gy, weight_size=(2, 2, 3, 3), stride=(1, 1), padding=(1, 1),
                  dilation=(1, 1), groups=1)
    np.testing.assert_allclose(gw.detach().numpy(), N._ref_wgrad(x.detach().numpy(), gy.numpy(),
                                                                 weight_size=(2, 2, 3, 3), stride=(1, 1),
                                                                 padding=(1, 1), dilation=(1, 1), groups=1),
                               rtol=1e-10)
    N._fwd_cols().clear()


def test_scratch_arrays_are_recycled():
    N._TLS.pool = None
    x, w = J(r(3, 2, 6, 6)), J(r(2, 2, 3, 3))
    attrs = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    with jitorch.no_grad():
        a = call("convolution", x, w, **attrs).numpy().copy()
        pooled = N._pool()["bytes"]
        assert pooled > 0
        b = call("convolution", x, w, **attrs).numpy()
    assert N._pool()["bytes"] == pooled  # same scratch arrays taken and returned
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_parallel_kernel_variants_match_serial(monkeypatch):
    """Run conv and pool forward/backward with the prange variants forced on."""
    from jitorch.kernels import conv as kc
    from jitorch.kernels import pool as kp
    x = r(3, 4, 9, 8)
    w, b = r(6, 2, 3, 3), r(6)
    attrs = dict(stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=2)

    def run():
        jx, jw, jb = J(x, True), J(w, True), J(b, True)
        y = call("convolution", jx, jw, jb, **attrs)
        p, _ = call("max_pool2d_with_indices", y, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                    ceil_mode=True)
        q = call("avg_pool2d", y, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=False,
                 count_include_pad=True, divisor_override=None)
        s = call("adaptive_avg_pool2d", y, output_size=(3, 2))
        m, _ = call("adaptive_max_pool2d", y, output_size=(2, 3))
        (p.sum() + q.sum() * 2 + s.sum() * 3 + m.sum() * 4).backward()
        return [t.detach().numpy().copy() for t in (y, p, q, s, m, jx.grad, jw.grad, jb.grad)]
    serial = run()
    monkeypatch.setattr(kc, "CONV_PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(kc, "CONV_PARALLEL_MACS", 0)
    monkeypatch.setattr(kp, "POOL_PARALLEL_THRESHOLD", 0)
    parallel = run()
    for a, b_ in zip(serial, parallel):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)

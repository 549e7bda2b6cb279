"""CUDA kernels for nn primitives: softmax/log_softmax, convolution via im2col + matmul, pooling, layer norm.

All launchers take C-contiguous device arrays (views noted) and write caller-allocated outputs; the op layer
validates shapes, attributes and dtypes first (float32/float64).

- ``softmax / log_softmax(x3, out3)``: over the middle axis of (outer, n, inner); one block per line, two passes
  (max, then sum of exp in shared memory) and a write pass.
- ``im2col(x5, cols, k, stride, padding, dilation)``: x5 (N, C, D, H, W) -> cols (N, C*kd*kh*kw, OD*OH*OW).
- ``col2im(cols, out5, k, stride, padding, dilation)``: the adjoint, gathered per output element (no atomics).
- ``conv_forward(x5, w, out5, bias, stride, padding, dilation, groups)``: w (Cout, Cin/g, kd, kh, kw).
- ``conv_transpose(x5, w, out5, bias, ...)``: w (Cin, Cout/g, kd, kh, kw); the gradient of conv w.r.t. its input.
- ``conv_weight_grad(x5, gy5, out_w, ...)``: d conv / d w for grad_output gy5.
- pooling on planes (P = N*C): ``max_pool2d(x (P,H,W), out (P,OH,OW), idx (P,OH,OW) int64 flat h*W+w, ...)``,
  ``max_pool2d_backward(gy, idx, gx)`` (each input element gathers the outputs whose index names it: no atomics),
  ``max_pool2d_gather(gg, idx, out)``, ``avg_pool2d`` / ``avg_pool2d_backward`` (torch's divisor rules),
  ``adaptive_avg_pool2d`` / ``_backward``, ``adaptive_max_pool2d``.
- ``layer_norm(x2, w, b, out2, mean, rstd, eps)``: rows of (rows, n); w/b may be None.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import cuda, from_dtype

from ._sizes import BLOCK, cdiv, check_pow2, kernel, unravel3
from .matmul import matmul
from .reduce import reduce as _reduce

__all__ = ["softmax", "log_softmax", "im2col", "col2im", "conv_forward", "conv_transpose", "conv_weight_grad",
           "max_pool2d", "max_pool2d_backward", "max_pool2d_gather", "avg_pool2d", "avg_pool2d_backward",
           "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d", "layer_norm", "add_bias"]


@cuda.jit(device=True)
def _imin(a, b):
    # (the builtin min/max lower through a varargs overload that numba's built-in CUDA target fails to compile)
    return a if a < b else b


@cuda.jit(device=True)
def _imax(a, b):
    return a if a > b else b


# ------------------------------------------------------------------ softmax

@lru_cache(maxsize=None)
def _softmax_kernel(dtype_str, block, log):
    nb = from_dtype(np.dtype(dtype_str))

    @kernel
    def k(x, out, neg_inf, zero):
        sm = cuda.shared.array(block, nb)
        line = cuda.blockIdx.x
        t = cuda.threadIdx.x
        inner = x.shape[2]
        n = x.shape[1]
        p = line // inner
        q = line - p * inner
        # pass 1: max (NaN propagates)
        m = neg_inf
        i = t
        while i < n:
            v = x[p, i, q]
            if m == m and (v != v or v > m):
                m = v
            i += block
        sm[t] = m
        cuda.syncthreads()
        s = block // 2
        while s > 0:
            if t < s:
                a = sm[t]
                b = sm[t + s]
                if a == a and (b != b or b > a):
                    sm[t] = b
            cuda.syncthreads()
            s //= 2
        m = sm[0]
        cuda.syncthreads()
        # a row of -inf (or an inf max) must not give inf - inf
        c = m if (m != math.inf and m != -math.inf) else 0
        # pass 2: sum of exp(x - c)
        acc = zero
        i = t
        while i < n:
            acc += math.exp(x[p, i, q] - c)
            i += block
        sm[t] = acc
        cuda.syncthreads()
        s = block // 2
        while s > 0:
            if t < s:
                sm[t] += sm[t + s]
            cuda.syncthreads()
            s //= 2
        total = sm[0]
        if log:
            lt = math.log(total) if total > 0 else neg_inf
            i = t
            while i < n:
                out[p, i, q] = x[p, i, q] - c - lt
                i += block
        else:
            i = t
            while i < n:
                out[p, i, q] = math.exp(x[p, i, q] - c) / total
                i += block
    return k


def _softmax(x3, out3, block, log):
    block = check_pow2("block", block)
    outer, n, inner = x3.shape
    if outer * inner == 0 or n == 0:
        return out3
    dt = np.dtype(out3.dtype)
    _softmax_kernel(dt.str, block, log)[outer * inner, block](x3, out3, dt.type(-np.inf), dt.type(0))
    return out3


def softmax(x3, out3, *, block=BLOCK):
    """exp(x - max) / sum(exp(x - max)) along the middle axis of (outer, n, inner)."""
    return _softmax(x3, out3, block, False)


def log_softmax(x3, out3, *, block=BLOCK):
    """x - max - log(sum(exp(x - max))) along the middle axis of (outer, n, inner)."""
    return _softmax(x3, out3, block, True)


# ------------------------------------------------------------------ layer norm

@lru_cache(maxsize=None)
def _layer_norm_kernel(dtype_str, block, has_w, has_b):
    nb = from_dtype(np.dtype(dtype_str))

    @kernel
    def k(x, w, b, out, mean, rstd, eps):
        sm = cuda.shared.array(block, nb)
        r = cuda.blockIdx.x
        t = cuda.threadIdx.x
        n = x.shape[1]
        acc = eps * 0
        i = t
        while i < n:
            acc += x[r, i]
            i += block
        sm[t] = acc
        cuda.syncthreads()
        s = block // 2
        while s > 0:
            if t < s:
                sm[t] += sm[t + s]
            cuda.syncthreads()
            s //= 2
        mu = sm[0] / n
        cuda.syncthreads()
        acc = eps * 0
        i = t
        while i < n:
            d = x[r, i] - mu
            acc += d * d
            i += block
        sm[t] = acc
        cuda.syncthreads()
        s = block // 2
        while s > 0:
            if t < s:
                sm[t] += sm[t + s]
            cuda.syncthreads()
            s //= 2
        rs = 1 / math.sqrt(sm[0] / n + eps)
        if t == 0:
            mean[r] = mu
            rstd[r] = rs
        i = t
        while i < n:
            v = (x[r, i] - mu) * rs
            if has_w:
                v = v * w[i]
            if has_b:
                v = v + b[i]
            out[r, i] = v
            i += block
    return k


def layer_norm(x2, w, b, out2, mean, rstd, eps, *, block=BLOCK):
    """Normalize each row of x2 (rows, n) (biased variance), then * w + b; mean/rstd (rows,) are written too."""
    block = check_pow2("block", block)
    rows, n = x2.shape
    if rows == 0 or n == 0:
        return out2
    dt = np.dtype(out2.dtype)
    _layer_norm_kernel(dt.str, block, w is not None, b is not None)[rows, block](
        x2, w if w is not None else x2, b if b is not None else x2, out2, mean, rstd, dt.type(eps))
    return out2


# ------------------------------------------------------------------ convolution

@kernel
def _im2col_k(x, cols, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, od, oh, ow):
    # x (N, C, D, H, W); cols (N, C*kd*kh*kw, od*oh*ow); one thread per cols element
    idx = cuda.grid(1)
    total = cols.shape[0] * cols.shape[1] * cols.shape[2]
    if idx < total:
        L = cols.shape[2]
        R = cols.shape[1]
        n = idx // (R * L)
        rem = idx - n * R * L
        row = rem // L
        l = rem - row * L
        c = row // (kd * kh * kw)
        kk = row - c * (kd * kh * kw)
        a = kk // (kh * kw)
        kk2 = kk - a * (kh * kw)
        bb = kk2 // kw
        cc = kk2 - bb * kw
        zo = l // (oh * ow)
        l2 = l - zo * (oh * ow)
        yo = l2 // ow
        xo = l2 - yo * ow
        z = zo * sd - pd + a * dd
        y = yo * sh - ph + bb * dh
        xx = xo * sw - pw + cc * dw
        if 0 <= z < x.shape[2] and 0 <= y < x.shape[3] and 0 <= xx < x.shape[4]:
            cols[n, row, l] = x[n, c, z, y, xx]
        else:
            cols[n, row, l] = 0


@kernel
def _col2im_k(cols, out, zero, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, od, oh, ow):
    # out (N, C, D, H, W) is the conv input; cols (N, C*kd*kh*kw, od*oh*ow) over the conv output grid
    idx = cuda.grid(1)
    N, C, D, H, W = out.shape
    if idx < N * C * D * H * W:
        xw = idx % W
        r = idx // W
        y = r % H
        r = r // H
        z = r % D
        r = r // D
        c = r % C
        n = r // C
        acc = zero
        for a in range(kd):
            zt = z + pd - a * dd
            if zt >= 0 and zt % sd == 0 and zt // sd < od:
                zo = zt // sd
                for bb in range(kh):
                    yt = y + ph - bb * dh
                    if yt >= 0 and yt % sh == 0 and yt // sh < oh:
                        yo = yt // sh
                        for cc in range(kw):
                            xt = xw + pw - cc * dw
                            if xt >= 0 and xt % sw == 0 and xt // sw < ow:
                                xo = xt // sw
                                acc += cols[n, ((c * kd + a) * kh + bb) * kw + cc, (zo * oh + yo) * ow + xo]
        out[n, c, z, y, xw] = acc


def _geom(k, stride, padding, dilation):
    return tuple(int(v) for v in (*k, *stride, *padding, *dilation))


def im2col(x5, cols, k, stride, padding, dilation, out_spatial, *, block=BLOCK):
    """Unfold x5 (N, C, D, H, W) into cols (N, C*prod(k), prod(out_spatial)); k etc. are 3-tuples."""
    if cols.size:
        _im2col_k[cdiv(cols.size, block), block](x5, cols, *_geom(k, stride, padding, dilation),
                                                 *map(int, out_spatial))
    return cols


def col2im(cols, out5, k, stride, padding, dilation, out_spatial, *, block=BLOCK):
    """The adjoint of im2col: out5 (N, C, D, H, W) = sum of cols entries that im2col would read from it."""
    if out5.size:
        _col2im_k[cdiv(out5.size, block), block](cols, out5, np.dtype(out5.dtype).type(0),
                                                 *_geom(k, stride, padding, dilation),
                                                 *map(int, out_spatial))
    return out5


@kernel
def _bias_k(out3, bias):
    # out3 (N, C, L) += bias[c]
    i = cuda.grid(1)
    if i < out3.shape[0] * out3.shape[1] * out3.shape[2]:
        L = out3.shape[2]
        C = out3.shape[1]
        n, c, l = unravel3(i, C, L)
        out3[n, c, l] += bias[c]


def add_bias(out3, bias, *, block=BLOCK):
    """out3 (N, C, L) += bias (C,) broadcast."""
    if out3.size:
        _bias_k[cdiv(out3.size, block), block](out3, bias)
    return out3


def _spatial(a):
    return tuple(a.shape[2:])


def conv_forward(x5, w5, out5, bias=None, stride=(1, 1, 1), padding=(0, 0, 0), dilation=(1, 1, 1), groups=1,
                 *, block=BLOCK):
    """out5 (N, Cout, OD, OH, OW) = conv(x5 (N, Cin, D, H, W), w5 (Cout, Cin/groups, kd, kh, kw)) + bias."""
    N, Cin = x5.shape[:2]
    Cout = w5.shape[0]
    k = _spatial(w5)
    osp = _spatial(out5)
    L = math.prod(osp)
    K = math.prod(k)
    if out5.size == 0:
        return out5
    cols = cuda.device_array((N, Cin * K, L), out5.dtype)
    im2col(x5, cols, k, stride, padding, dilation, osp, block=block)
    out3 = out5.reshape(N, Cout, L)
    cg, og = Cin // groups, Cout // groups
    w3 = w5.reshape(1, Cout, cg * K)
    for g in range(groups):
        matmul(w3[:, g * og:(g + 1) * og, :], cols[:, g * cg * K:(g + 1) * cg * K, :],
               out3[:, g * og:(g + 1) * og, :])
    if bias is not None:
        add_bias(out3, bias, block=block)
    return out5


def conv_transpose(x5, w5, out5, bias=None, stride=(1, 1, 1), padding=(0, 0, 0), dilation=(1, 1, 1), groups=1,
                   *, block=BLOCK):
    """out5 (N, Cout, D, H, W) = conv_transpose(x5 (N, Cin, od, oh, ow), w5 (Cin, Cout/groups, kd, kh, kw)).

    The geometry is that of the convolution out5 -> x5 (so output_padding is already in out5's shape)."""
    N, Cin = x5.shape[:2]
    Cout = out5.shape[1]
    k = _spatial(w5)
    K = math.prod(k)
    isp = _spatial(x5)
    Lin = math.prod(isp)
    if out5.size == 0:
        return out5
    cg, og = Cin // groups, Cout // groups
    cols = cuda.device_array((N, Cout * K, Lin), out5.dtype)
    x3 = x5.reshape(N, Cin, Lin)
    w3 = w5.reshape(1, Cin, og * K)
    for g in range(groups):
        # cols_g (N, og*K, Lin) = w_g^T (og*K, cg) @ x_g (N, cg, Lin)
        matmul(w3[:, g * cg:(g + 1) * cg, :], x3[:, g * cg:(g + 1) * cg, :], cols[:, g * og * K:(g + 1) * og * K, :],
               trans_a=True)
    col2im(cols, out5, k, stride, padding, dilation, isp, block=block)
    if bias is not None:
        add_bias(out5.reshape(N, Cout, math.prod(_spatial(out5))), bias, block=block)
    return out5


def conv_weight_grad(x5, gy5, out_w5, stride=(1, 1, 1), padding=(0, 0, 0), dilation=(1, 1, 1), groups=1,
                     *, block=BLOCK):
    """out_w5 (Cout, Cin/groups, kd, kh, kw) = d<gy, conv(x, w)>/dw for x5 (N, Cin, ...) and gy5 (N, Cout, ...)."""
    N, Cin = x5.shape[:2]
    Cout = gy5.shape[1]
    k = _spatial(out_w5)
    K = math.prod(k)
    osp = _spatial(gy5)
    L = math.prod(osp)
    if out_w5.size == 0:
        return out_w5
    cg, og = Cin // groups, Cout // groups
    cols = cuda.device_array((N, Cin * K, L), out_w5.dtype)
    im2col(x5, cols, k, stride, padding, dilation, osp, block=block)
    gy3 = gy5.reshape(N, Cout, L)
    per = cuda.device_array((N, Cout, cg * K), out_w5.dtype)
    for g in range(groups):
        # per_g[n] (og, cg*K) = gy_g[n] (og, L) @ cols_g[n]^T (L, cg*K)
        matmul(gy3[:, g * og:(g + 1) * og, :], cols[:, g * cg * K:(g + 1) * cg * K, :], per[:, g * og:(g + 1) * og, :],
               trans_b=True)
    _reduce("sum", per.reshape(1, N, Cout * cg * K), out_w5.reshape(1, Cout * cg * K), block=block)
    return out_w5


# ------------------------------------------------------------------ pooling on planes (P, H, W)

@kernel
def _max_pool_k(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw, neg_inf):
    i = cuda.grid(1)
    P, OH, OW = out.shape
    if i < P * OH * OW:
        p, oh, ow = unravel3(i, OH, OW)
        H = x.shape[1]
        W = x.shape[2]
        best = neg_inf
        bi = -1
        for a in range(kh):
            y = oh * sh - ph + a * dh
            if 0 <= y < H:
                for b in range(kw):
                    xx = ow * sw - pw + b * dw
                    if 0 <= xx < W:
                        v = x[p, y, xx]
                        if bi < 0 or (best == best and (v != v or v > best)):
                            best = v
                            bi = y * W + xx
        out[p, oh, ow] = best
        idx[p, oh, ow] = bi


def max_pool2d(x, out, idx, kernel_size, stride, padding, dilation, *, block=BLOCK):
    """out/idx (P, OH, OW) from x (P, H, W): the first max of each window (NaN wins), idx = h * W + w."""
    if out.size:
        dt = np.dtype(out.dtype)
        _max_pool_k[cdiv(out.size, block), block](x, out, idx, *map(int, (*kernel_size, *stride, *padding,
                                                                           *dilation)), dt.type(-np.inf))
    return out, idx


@kernel
def _max_pool_bwd_k(gy, idx, gx, zero, kh, kw, sh, sw, ph, pw, dh, dw):
    # gx (P, H, W): each input element sums gy over the windows that picked it
    i = cuda.grid(1)
    P, H, W = gx.shape
    if i < P * H * W:
        p, y, x = unravel3(i, H, W)
        OH = gy.shape[1]
        OW = gy.shape[2]
        me = y * W + x
        acc = zero
        ylo = y + ph - (kh - 1) * dh
        ylo = 0 if ylo <= 0 else (ylo + sh - 1) // sh
        yhi = _imin(OH - 1, (y + ph) // sh)
        xlo = x + pw - (kw - 1) * dw
        xlo = 0 if xlo <= 0 else (xlo + sw - 1) // sw
        xhi = _imin(OW - 1, (x + pw) // sw)
        for oh in range(ylo, yhi + 1):
            for ow in range(xlo, xhi + 1):
                if idx[p, oh, ow] == me:
                    acc += gy[p, oh, ow]
        gx[p, y, x] = acc


def max_pool2d_backward(gy, idx, gx, kernel_size, stride, padding, dilation, *, block=BLOCK):
    """gx (P, H, W) = scatter-add of gy (P, OH, OW) at idx, done as a gather over the windows (deterministic)."""
    if gx.size:
        _max_pool_bwd_k[cdiv(gx.size, block), block](gy, idx, gx, np.dtype(gx.dtype).type(0),
                                                     *map(int, (*kernel_size, *stride, *padding,
                                                                               *dilation)))
    return gx


@kernel
def _scatter_planes_k(gy, idx, gx):
    # generic max-pool backward when the window geometry is unknown: gx must be zeroed; atomics
    i = cuda.grid(1)
    P, OH, OW = gy.shape
    if i < P * OH * OW:
        p, oh, ow = unravel3(i, OH, OW)
        j = idx[p, oh, ow]
        W = gx.shape[2]
        cuda.atomic.add(gx, (p, j // W, j % W), gy[p, oh, ow])


def max_pool2d_backward_scatter(gy, idx, gx, *, block=BLOCK):
    """gx (P, H, W) += gy at idx with float atomics (any indices; summation order is not fixed)."""
    if gy.size:
        _scatter_planes_k[cdiv(gy.size, block), block](gy, idx, gx)
    return gx


@kernel
def _gather_planes_k(gg, idx, out):
    i = cuda.grid(1)
    P, OH, OW = out.shape
    if i < P * OH * OW:
        p, oh, ow = unravel3(i, OH, OW)
        j = idx[p, oh, ow]
        W = gg.shape[2]
        out[p, oh, ow] = gg[p, j // W, j % W]


def max_pool2d_gather(gg, idx, out, *, block=BLOCK):
    """out (P, OH, OW) = gg (P, H, W) at idx: the adjoint of max_pool2d_backward."""
    if out.size:
        _gather_planes_k[cdiv(out.size, block), block](gg, idx, out)
    return out


@cuda.jit(device=True)
def _avg_divisor(hs, ws, kh, kw, ph, pw, H, W, count_include_pad, divisor):
    if divisor > 0:
        return divisor
    he = _imin(hs + kh, H + ph)
    we = _imin(ws + kw, W + pw)
    if count_include_pad:
        return (he - hs) * (we - ws)
    return (_imin(he, H) - _imax(hs, 0)) * (_imin(we, W) - _imax(ws, 0))


@kernel
def _avg_pool_k(x, out, zero, kh, kw, sh, sw, ph, pw, cip, divisor):
    i = cuda.grid(1)
    P, OH, OW = out.shape
    if i < P * OH * OW:
        p, oh, ow = unravel3(i, OH, OW)
        H = x.shape[1]
        W = x.shape[2]
        hs = oh * sh - ph
        ws = ow * sw - pw
        acc = zero
        for y in range(_imax(hs, 0), _imin(hs + kh, H)):
            for xx in range(_imax(ws, 0), _imin(ws + kw, W)):
                acc += x[p, y, xx]
        out[p, oh, ow] = acc / _avg_divisor(hs, ws, kh, kw, ph, pw, H, W, cip, divisor)


@kernel
def _avg_pool_bwd_k(gy, gx, zero, kh, kw, sh, sw, ph, pw, cip, divisor):
    i = cuda.grid(1)
    P, H, W = gx.shape
    if i < P * H * W:
        p, y, x = unravel3(i, H, W)
        OH = gy.shape[1]
        OW = gy.shape[2]
        acc = zero
        ylo = y + ph - kh + 1
        ylo = 0 if ylo <= 0 else (ylo + sh - 1) // sh
        yhi = _imin(OH - 1, (y + ph) // sh)
        xlo = x + pw - kw + 1
        xlo = 0 if xlo <= 0 else (xlo + sw - 1) // sw
        xhi = _imin(OW - 1, (x + pw) // sw)
        for oh in range(ylo, yhi + 1):
            for ow in range(xlo, xhi + 1):
                hs = oh * sh - ph
                ws = ow * sw - pw
                acc += gy[p, oh, ow] / _avg_divisor(hs, ws, kh, kw, ph, pw, H, W, cip, divisor)
        gx[p, y, x] = acc


def avg_pool2d(x, out, kernel_size, stride, padding, count_include_pad=True, divisor_override=None, *, block=BLOCK):
    """out (P, OH, OW): window means of x (P, H, W) with torch's divisor rules."""
    if out.size:
        _avg_pool_k[cdiv(out.size, block), block](x, out, np.dtype(out.dtype).type(0),
                                                  *map(int, (*kernel_size, *stride, *padding)),
                                                  bool(count_include_pad), int(divisor_override or 0))
    return out


def avg_pool2d_backward(gy, gx, kernel_size, stride, padding, count_include_pad=True, divisor_override=None,
                        *, block=BLOCK):
    """gx (P, H, W) from gy (P, OH, OW); each input element gathers from its windows (deterministic)."""
    if gx.size:
        _avg_pool_bwd_k[cdiv(gx.size, block), block](gy, gx, np.dtype(gx.dtype).type(0),
                                                     *map(int, (*kernel_size, *stride, *padding)),
                                                     bool(count_include_pad), int(divisor_override or 0))
    return gx


@kernel
def _adaptive_k(x, out, idx, is_max, neg_inf, zero):
    i = cuda.grid(1)
    P, OH, OW = out.shape
    if i < P * OH * OW:
        p, oh, ow = unravel3(i, OH, OW)
        H = x.shape[1]
        W = x.shape[2]
        hs = (oh * H) // OH
        he = ((oh + 1) * H + OH - 1) // OH
        ws = (ow * W) // OW
        we = ((ow + 1) * W + OW - 1) // OW
        if is_max:
            best = neg_inf
            bi = -1
            for y in range(hs, he):
                for xx in range(ws, we):
                    v = x[p, y, xx]
                    if bi < 0 or (best == best and (v != v or v > best)):
                        best = v
                        bi = y * W + xx
            out[p, oh, ow] = best
            idx[p, oh, ow] = bi
        else:
            acc = zero
            for y in range(hs, he):
                for xx in range(ws, we):
                    acc += x[p, y, xx]
            out[p, oh, ow] = acc / ((he - hs) * (we - ws))


@kernel
def _adaptive_avg_bwd_k(gy, gx, zero):
    i = cuda.grid(1)
    P, H, W = gx.shape
    if i < P * H * W:
        p, y, x = unravel3(i, H, W)
        OH = gy.shape[1]
        OW = gy.shape[2]
        acc = zero
        for oh in range(OH):
            hs = (oh * H) // OH
            he = ((oh + 1) * H + OH - 1) // OH
            if hs <= y < he:
                for ow in range(OW):
                    ws = (ow * W) // OW
                    we = ((ow + 1) * W + OW - 1) // OW
                    if ws <= x < we:
                        acc += gy[p, oh, ow] / ((he - hs) * (we - ws))
        gx[p, y, x] = acc


def adaptive_avg_pool2d(x, out, *, block=BLOCK):
    if out.size:
        dt = np.dtype(out.dtype)
        _adaptive_k[cdiv(out.size, block), block](x, out, out, False, dt.type(-np.inf), dt.type(0))
    return out


def adaptive_max_pool2d(x, out, idx, *, block=BLOCK):
    if out.size:
        dt = np.dtype(out.dtype)
        _adaptive_k[cdiv(out.size, block), block](x, out, idx, True, dt.type(-np.inf), dt.type(0))
    return out, idx


def adaptive_avg_pool2d_backward(gy, gx, *, block=BLOCK):
    if gx.size:
        _adaptive_avg_bwd_k[cdiv(gx.size, block), block](gy, gx, np.dtype(gx.dtype).type(0))
    return gx

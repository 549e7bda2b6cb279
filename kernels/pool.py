"""Pooling kernels: max pooling with indices, average pooling and adaptive average/max pooling,
forward and backward, on planes ``(P, H, W)`` where ``P = N * C`` (1-d pooling passes ``H = 1``).

Conventions (torch's):

- window of output ``(oh, ow)``: rows ``oh * sh - ph + i * dh`` for ``i < kh`` (columns likewise),
  positions outside the input are skipped (max) or count as zeros (average);
- max pooling keeps the first maximum, NaN wins (propagates), and ``idx`` holds the flat position
  ``h * W + w`` of the chosen element within its plane (int64);
- average pooling divides by ``divisor`` when it is > 0, else by the window clipped to the padded
  input (``count_include_pad``) or to the input itself;
- adaptive pooling: output cell ``i`` of ``O`` over ``n`` inputs covers
  ``[floor(i * n / O), ceil((i + 1) * n / O))``.

Backward kernels overwrite the whole input gradient ``gx`` (zeroing it first). Arrays are
C-contiguous; the caller validates shapes and sizes. Each kernel has a serial and a ``prange``
twin (over planes), picked by size.
"""
import numpy as np
from numba import njit, prange

from ._config import NJIT, NJIT_PARALLEL, PARALLEL_THRESHOLD

_NJIT = dict(NJIT, fastmath=set(NJIT["fastmath"]))
_NJIT_PAR = dict(NJIT_PARALLEL, fastmath=set(NJIT_PARALLEL["fastmath"]))

POOL_PARALLEL_THRESHOLD = max(1, PARALLEL_THRESHOLD // 4)


def _twin(fn):
    return njit(**_NJIT)(fn), njit(**_NJIT_PAR)(fn)


def _max_pool_body(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw):
    P, H, W = x.shape
    _, OH, OW = out.shape
    for p in prange(P):
        for oh in range(OH):
            h0 = oh * sh - ph
            while h0 < 0:
                h0 += dh
            h1 = min(oh * sh - ph + (kh - 1) * dh + 1, H)
            for ow in range(OW):
                w0 = ow * sw - pw
                while w0 < 0:
                    w0 += dw
                w1 = min(ow * sw - pw + (kw - 1) * dw + 1, W)
                best = -np.inf
                bi = h0 * W + w0
                for h in range(h0, h1, dh):
                    for w in range(w0, w1, dw):
                        v = x[p, h, w]
                        if v > best or v != v:
                            best = v
                            bi = h * W + w
                out[p, oh, ow] = best
                idx[p, oh, ow] = bi


def _max_pool_2x2_body(x, out, idx):
    """kernel 2, stride 2, no padding, no dilation: the common case. The maximum and the index of its
    first occurrence are computed without branches (so the loop vectorizes); a row pair holding a NaN is
    redone with the exact sequential rule (NaN wins, the last NaN's index)."""
    P, H, W = x.shape
    _, OH, OW = out.shape
    for p in prange(P):
        for oh in range(OH):
            r0 = x[p, 2 * oh]
            r1 = x[p, 2 * oh + 1]
            o = out[p, oh]
            ix = idx[p, oh]
            b0 = 2 * oh * W
            for ow in range(OW):
                w = 2 * ow
                a = r0[w]
                b = r0[w + 1]
                c = r1[w]
                d = r1[w + 1]
                m = max(max(a, b), max(c, d))
                na = np.int64(a != m)
                nb = np.int64(b != m)
                nc = np.int64(c != m)
                o[ow] = m
                ix[ow] = b0 + w + na * (1 + nb * (W - 1 + nc))
            has_nan = False
            for w in range(2 * OW):
                if (r0[w] != r0[w]) | (r1[w] != r1[w]):
                    has_nan = True
            if has_nan:
                for ow in range(OW):
                    w = 2 * ow
                    best = r0[w]
                    bi = b0 + w
                    v = r0[w + 1]
                    if v > best or v != v:
                        best = v
                        bi = b0 + w + 1
                    v = r1[w]
                    if v > best or v != v:
                        best = v
                        bi = b0 + W + w
                    v = r1[w + 1]
                    if v > best or v != v:
                        best = v
                        bi = b0 + W + w + 1
                    o[ow] = best
                    ix[ow] = bi


def _max_pool_backward_body(gy, idx, gx):
    P, L = gy.shape
    _, HW = gx.shape
    for p in prange(P):
        for k in range(HW):
            gx[p, k] = 0
        for k in range(L):
            gx[p, idx[p, k]] += gy[p, k]


def _max_pool_double_backward_body(gg, idx, out):
    """out[p, k] = gg[p, idx[p, k]]: the gradient of max_pool_backward w.r.t. its input gradient."""
    P, L = out.shape
    for p in prange(P):
        for k in range(L):
            out[p, k] = gg[p, idx[p, k]]


def _avg_window(o, s, p, k, n):
    start = o * s - p
    end = min(start + k, n + p)
    size = end - start
    start = max(start, 0)
    end = min(end, n)
    return start, end, size


_avg_window_j = njit(**_NJIT)(_avg_window)


def _avg_pool_body(x, out, kh, kw, sh, sw, ph, pw, count_include_pad, divisor):
    P, H, W = x.shape
    _, OH, OW = out.shape
    for p in prange(P):
        for oh in range(OH):
            hs, he, hsize = _avg_window_j(oh, sh, ph, kh, H)
            for ow in range(OW):
                ws, we, wsize = _avg_window_j(ow, sw, pw, kw, W)
                acc = 0.0
                for h in range(hs, he):
                    for w in range(ws, we):
                        acc += x[p, h, w]
                if divisor > 0:
                    d = divisor
                elif count_include_pad:
                    d = hsize * wsize
                else:
                    d = (he - hs) * (we - ws)
                out[p, oh, ow] = acc / d if d > 0 else 0.0


def _avg_pool_backward_body(gy, gx, kh, kw, sh, sw, ph, pw, count_include_pad, divisor):
    P, H, W = gx.shape
    _, OH, OW = gy.shape
    for p in prange(P):
        for h in range(H):
            for w in range(W):
                gx[p, h, w] = 0
        for oh in range(OH):
            hs, he, hsize = _avg_window_j(oh, sh, ph, kh, H)
            for ow in range(OW):
                ws, we, wsize = _avg_window_j(ow, sw, pw, kw, W)
                if divisor > 0:
                    d = divisor
                elif count_include_pad:
                    d = hsize * wsize
                else:
                    d = (he - hs) * (we - ws)
                if d <= 0:
                    continue
                g = gy[p, oh, ow] / d
                for h in range(hs, he):
                    for w in range(ws, we):
                        gx[p, h, w] += g


def _adaptive_avg_body(x, out):
    P, H, W = x.shape
    _, OH, OW = out.shape
    for p in prange(P):
        for oh in range(OH):
            hs = (oh * H) // OH
            he = ((oh + 1) * H + OH - 1) // OH
            for ow in range(OW):
                ws = (ow * W) // OW
                we = ((ow + 1) * W + OW - 1) // OW
                acc = 0.0
                for h in range(hs, he):
                    for w in range(ws, we):
                        acc += x[p, h, w]
                out[p, oh, ow] = acc / ((he - hs) * (we - ws))


def _adaptive_avg_backward_body(gy, gx):
    P, H, W = gx.shape
    _, OH, OW = gy.shape
    for p in prange(P):
        for h in range(H):
            for w in range(W):
                gx[p, h, w] = 0
        for oh in range(OH):
            hs = (oh * H) // OH
            he = ((oh + 1) * H + OH - 1) // OH
            for ow in range(OW):
                ws = (ow * W) // OW
                we = ((ow + 1) * W + OW - 1) // OW
                g = gy[p, oh, ow] / ((he - hs) * (we - ws))
                for h in range(hs, he):
                    for w in range(ws, we):
                        gx[p, h, w] += g


def _adaptive_max_body(x, out, idx):
    P, H, W = x.shape
    _, OH, OW = out.shape
    for p in prange(P):
        for oh in range(OH):
            hs = (oh * H) // OH
            he = ((oh + 1) * H + OH - 1) // OH
            for ow in range(OW):
                ws = (ow * W) // OW
                we = ((ow + 1) * W + OW - 1) // OW
                best = -np.inf
                bi = hs * W + ws
                for h in range(hs, he):
                    for w in range(ws, we):
                        v = x[p, h, w]
                        if v > best or v != v:
                            best = v
                            bi = h * W + w
                out[p, oh, ow] = best
                idx[p, oh, ow] = bi


max_pool_pair = _twin(_max_pool_body)
max_pool_2x2_pair = _twin(_max_pool_2x2_body)
max_pool_backward_pair = _twin(_max_pool_backward_body)
max_pool_double_backward_pair = _twin(_max_pool_double_backward_body)
avg_pool_pair = _twin(_avg_pool_body)
avg_pool_backward_pair = _twin(_avg_pool_backward_body)
adaptive_avg_pair = _twin(_adaptive_avg_body)
adaptive_avg_backward_pair = _twin(_adaptive_avg_backward_body)
adaptive_max_pair = _twin(_adaptive_max_body)


def _pick(pair, n):
    return pair[1] if n > POOL_PARALLEL_THRESHOLD else pair[0]


def max_pool2d(x, out, idx, kernel, stride, padding, dilation):
    """``x`` (P, H, W) -> ``out`` (P, OH, OW) and int64 ``idx`` (P, OH, OW); 2-tuples of ints."""
    if tuple(kernel) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0) \
            and tuple(dilation) == (1, 1) and out.shape[1] * 2 <= x.shape[1] and out.shape[2] * 2 <= x.shape[2]:
        _pick(max_pool_2x2_pair, x.size)(x, out, idx)
        return
    _pick(max_pool_pair, x.size)(x, out, idx, *kernel, *stride, *padding, *dilation)


def max_pool_backward(gy, idx, gx):
    """``gx`` (P, H*W) = scatter-add of ``gy`` (P, L) at ``idx`` (P, L)."""
    _pick(max_pool_backward_pair, gx.size)(gy, idx, gx)


def max_pool_double_backward(gg, idx, out):
    """``out`` (P, L) = ``gg`` (P, H*W) gathered at ``idx`` (P, L)."""
    _pick(max_pool_double_backward_pair, out.size)(gg, idx, out)


def avg_pool2d(x, out, kernel, stride, padding, count_include_pad, divisor):
    _pick(avg_pool_pair, x.size)(x, out, *kernel, *stride, *padding, bool(count_include_pad), int(divisor or 0))


def avg_pool2d_backward(gy, gx, kernel, stride, padding, count_include_pad, divisor):
    _pick(avg_pool_backward_pair, gx.size)(gy, gx, *kernel, *stride, *padding, bool(count_include_pad),
                                           int(divisor or 0))


def adaptive_avg_pool2d(x, out):
    _pick(adaptive_avg_pair, x.size)(x, out)


def adaptive_avg_pool2d_backward(gy, gx):
    _pick(adaptive_avg_backward_pair, gx.size)(gy, gx)


def adaptive_max_pool2d(x, out, idx):
    _pick(adaptive_max_pair, x.size)(x, out, idx)

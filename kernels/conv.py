"""Convolution kernels: im2col / col2im for 1-, 2- and 3-d convolutions and the layout moves
around the matrix product (which the caller runs with NumPy's BLAS).

Every spatial layout is handled as 3-d: a 1-d input ``(N, C, W)`` is passed as ``(N, C, 1, 1, W)``
and a 2-d one as ``(N, C, 1, H, W)`` (free reshapes of C-contiguous arrays), with kernel size 1,
stride 1, padding 0 and dilation 1 in the missing dims.

Layouts (all arrays C-contiguous, float32 or float64; the caller validates shapes and sizes):

- image ``x``: ``(N, C, D, H, W)``;
- columns ``cols``: ``(C * KD * KH * KW, N, OD, OH, OW)``: row ``r = ((c * KD + kd) * KH + kh) * KW + kw``
  holds, for every batch element and output position, the input value under kernel tap
  ``(kd, kh, kw)`` of channel ``c`` (zero in the padding). With this layout one GEMM
  ``weight (O, C*K) @ cols (C*K, N*L)`` computes the whole batch, and ``groups`` split rows and
  weight rows into equal blocks;
- ``swap01`` moves ``(A, B, L)`` to ``(B, A, L)`` (the GEMM result ``(O, N, L)`` to the output
  ``(N, O, L)``, adding the bias on the way; the output gradient ``(N, O, L)`` to ``(O, N, L)``).

``im2col`` and ``col2im`` are adjoint: ``<im2col(x), c> == <x, col2im(c)>``; the gradient of a
convolution w.r.t. its input, and a transposed convolution, are ``col2im`` of a GEMM result.

Each kernel has a serial and a ``prange`` twin compiled from the same body; the wrappers pick one
by size (``PARALLEL_THRESHOLD``).
"""
import numpy as np
from numba import njit, prange

from ._config import NJIT, NJIT_PARALLEL, PARALLEL_THRESHOLD

_NJIT = dict(NJIT, fastmath=set(NJIT["fastmath"]))
_NJIT_PAR = dict(NJIT_PARALLEL, fastmath=set(NJIT_PARALLEL["fastmath"]))

#: conv kernels do several memory passes per element: threads pay off earlier than for elementwise loops
CONV_PARALLEL_THRESHOLD = max(1, PARALLEL_THRESHOLD // 4)


def _twin(fn):
    return njit(**_NJIT)(fn), njit(**_NJIT_PAR)(fn)


def _range_lo_hi(off, s, n, on):
    """Output positions o in [lo, hi) with 0 <= o * s + off < n (clamped to [0, on))."""
    if off >= 0:
        lo = 0
    else:
        lo = (-off + s - 1) // s
    if n - 1 - off < 0:
        hi = 0
    else:
        hi = (n - 1 - off) // s + 1
    if lo > on:
        lo = on
    if hi > on:
        hi = on
    if hi < lo:
        hi = lo
    return lo, hi


_range_lo_hi_j = njit(**_NJIT)(_range_lo_hi)


def _im2col_body(x, cols, KD, KH, KW, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    N, C, D, H, W = x.shape
    R, _, OD, OH, OW = cols.shape
    KK = KD * KH * KW
    for r in prange(R):
        c = r // KK
        rem = r - c * KK
        kd = rem // (KH * KW)
        rem -= kd * KH * KW
        kh = rem // KW
        kw = rem - kh * KW
        woff = kw * dw - pw
        lo, hi = _range_lo_hi_j(woff, sw, W, OW)
        for n in range(N):
            for od in range(OD):
                id_ = od * sd - pd + kd * dd
                dok = id_ >= 0 and id_ < D
                for oh in range(OH):
                    ih = oh * sh - ph + kh * dh
                    if not dok or ih < 0 or ih >= H:
                        for ow in range(OW):
                            cols[r, n, od, oh, ow] = 0
                        continue
                    for ow in range(lo):
                        cols[r, n, od, oh, ow] = 0
                    if sw == 1:
                        for ow in range(lo, hi):
                            cols[r, n, od, oh, ow] = x[n, c, id_, ih, ow + woff]
                    else:
                        for ow in range(lo, hi):
                            cols[r, n, od, oh, ow] = x[n, c, id_, ih, ow * sw + woff]
                    for ow in range(hi, OW):
                        cols[r, n, od, oh, ow] = 0


def _col2im_body(cols, x, KD, KH, KW, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    N, C, D, H, W = x.shape
    R, _, OD, OH, OW = cols.shape
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        for i in range(D):
            for j in range(H):
                for k in range(W):
                    x[n, c, i, j, k] = 0
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    r = ((c * KD + kd) * KH + kh) * KW + kw
                    woff = kw * dw - pw
                    lo, hi = _range_lo_hi_j(woff, sw, W, OW)
                    for od in range(OD):
                        id_ = od * sd - pd + kd * dd
                        if id_ < 0 or id_ >= D:
                            continue
                        for oh in range(OH):
                            ih = oh * sh - ph + kh * dh
                            if ih < 0 or ih >= H:
                                continue
                            if sw == 1:
                                for ow in range(lo, hi):
                                    x[n, c, id_, ih, ow + woff] += cols[r, n, od, oh, ow]
                            else:
                                for ow in range(lo, hi):
                                    x[n, c, id_, ih, ow * sw + woff] += cols[r, n, od, oh, ow]


def _swap01_body(src, out, bias, has_bias):
    A, B, L = src.shape
    for b in prange(B):
        for a in range(A):
            if has_bias:
                v = bias[a]
                for k in range(L):
                    out[b, a, k] = src[a, b, k] + v
            else:
                for k in range(L):
                    out[b, a, k] = src[a, b, k]


def _add_channel_bias_body(x, bias):
    N, C, L = x.shape
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        v = bias[c]
        for k in range(L):
            x[n, c, k] += v


im2col_serial, im2col_parallel = _twin(_im2col_body)
col2im_serial, col2im_parallel = _twin(_col2im_body)
swap01_serial, swap01_parallel = _twin(_swap01_body)
add_channel_bias_serial, add_channel_bias_parallel = _twin(_add_channel_bias_body)


def _pick(pair, n):
    return pair[1] if n > CONV_PARALLEL_THRESHOLD else pair[0]


def im2col(x, cols, kernel, stride, padding, dilation):
    """Fill ``cols`` (C*KD*KH*KW, N, OD, OH, OW) from ``x`` (N, C, D, H, W); 3-tuples of ints."""
    _pick((im2col_serial, im2col_parallel), cols.size)(x, cols, *kernel, *stride, *padding, *dilation)


def col2im(cols, x, kernel, stride, padding, dilation):
    """Overwrite ``x`` (N, C, D, H, W) with the sum of ``cols`` over the taps that read each element."""
    _pick((col2im_serial, col2im_parallel), cols.size)(cols, x, *kernel, *stride, *padding, *dilation)


def swap01(src, out, bias=None):
    """``out[b, a, :] = src[a, b, :] (+ bias[a])`` for ``src`` (A, B, L), ``out`` (B, A, L)."""
    has = bias is not None
    b = bias if has else np.zeros(1, src.dtype)
    _pick((swap01_serial, swap01_parallel), src.size)(src, out, b, has)


def add_channel_bias(x, bias):
    """``x[n, c, :] += bias[c]`` for ``x`` (N, C, L)."""
    _pick((add_channel_bias_serial, add_channel_bias_parallel), x.size)(x, bias)

"""Convolution kernels: im2col / col2im for 1-, 2- and 3-d convolutions and the layout moves around
the matrix product (which the caller runs with NumPy's BLAS).

Every spatial layout is handled as 3-d: a 1-d input ``(N, C, W)`` is passed as ``(N, C, 1, 1, W)``
and a 2-d one as ``(N, C, 1, H, W)`` (free reshapes of C-contiguous arrays), with kernel size 1,
stride 1, padding 0 and dilation 1 in the missing dims.

Layouts: the batch dim is moved innermost ("channels-last in N") so that every copy is a long
contiguous run (``OW * N`` elements for stride 1) instead of a row of ``OW`` (often 8-24) elements:

- image ``xt``: ``(C, D, H, W, N)`` (``transpose`` of the ``(N, C*D*H*W)`` input);
- columns ``cols``: ``(C * KD * KH * KW, OD, OH, OW, N)``: row ``r = ((c * KD + kd) * KH + kh) * KW + kw``
  holds, for every output position and batch element, the input value under kernel tap
  ``(kd, kh, kw)`` of channel ``c`` (zero in the padding). One GEMM
  ``weight (O, C*K) @ cols (C*K, L*N)`` computes the whole batch (``groups`` split rows and weight
  rows into equal blocks), giving ``(O, L, N)``, which ``transpose`` turns into the ``(N, O, L)``
  output, adding the bias on the way.

``im2col`` and ``col2im`` are adjoint: ``<im2col(x), c> == <x, col2im(c)>``; the gradient of a
convolution w.r.t. its input, and a transposed convolution, are ``col2im`` of a GEMM result.

All arrays are C-contiguous float32 or float64 and passed flat (or 2-d for ``transpose``); the caller
validates shapes and sizes. Each kernel has a serial and a ``prange`` twin compiled from the same
body; the wrappers pick one by size (``CONV_PARALLEL_THRESHOLD``).
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


def _zero(a):
    for k in range(a.shape[0]):
        a[k] = 0


def _copy(dst, src):
    for k in range(dst.shape[0]):
        dst[k] = src[k]


def _add(dst, src):
    for k in range(dst.shape[0]):
        dst[k] += src[k]


_zero_j = njit(**_NJIT)(_zero)
_copy_j = njit(**_NJIT)(_copy)
_add_j = njit(**_NJIT)(_add)


def _im2col_body(xt, cols, N, C, D, H, W, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    """xt: flat (C, D, H, W, N); cols: flat (C*KD*KH*KW, OD, OH, OW, N)."""
    KK = KD * KH * KW
    R = C * KK
    RUN = OW * N
    for r in prange(R):
        c = r // KK
        rem = r - c * KK
        kd = rem // (KH * KW)
        rem -= kd * KH * KW
        kh = rem // KW
        kw = rem - kh * KW
        woff = kw * dw - pw
        lo, hi = _range_lo_hi_j(woff, sw, W, OW)
        for od in range(OD):
            id_ = od * sd - pd + kd * dd
            dok = id_ >= 0 and id_ < D
            for oh in range(OH):
                ih = oh * sh - ph + kh * dh
                d0 = ((r * OD + od) * OH + oh) * RUN
                row = cols[d0:d0 + RUN]
                if not dok or ih < 0 or ih >= H:
                    _zero_j(row)
                    continue
                s0 = ((c * D + id_) * H + ih) * W * N
                if lo > 0:
                    _zero_j(row[:lo * N])
                if sw == 1:
                    _copy_j(row[lo * N:hi * N], xt[s0 + (lo + woff) * N:s0 + (hi + woff) * N])
                else:
                    for ow in range(lo, hi):
                        s = s0 + (ow * sw + woff) * N
                        _copy_j(row[ow * N:(ow + 1) * N], xt[s:s + N])
                if hi < OW:
                    _zero_j(row[hi * N:])


def _col2im_body(cols, xt, N, C, D, H, W, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    """The adjoint of im2col: xt (flat (C, D, H, W, N)) = sum of cols over the taps reading each element."""
    PLANE = D * H * W * N
    RUN = OW * N
    for c in prange(C):
        plane = xt[c * PLANE:(c + 1) * PLANE]
        _zero_j(plane)
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    r = ((c * KD + kd) * KH + kh) * KW + kw
                    woff = kw * dw - pw
                    lo, hi = _range_lo_hi_j(woff, sw, W, OW)
                    if hi <= lo:
                        continue
                    for od in range(OD):
                        id_ = od * sd - pd + kd * dd
                        if id_ < 0 or id_ >= D:
                            continue
                        for oh in range(OH):
                            ih = oh * sh - ph + kh * dh
                            if ih < 0 or ih >= H:
                                continue
                            s0 = ((r * OD + od) * OH + oh) * RUN
                            d0 = (id_ * H + ih) * W * N
                            if sw == 1:
                                _add_j(plane[d0 + (lo + woff) * N:d0 + (hi + woff) * N], cols[s0 + lo * N:s0 + hi * N])
                            else:
                                for ow in range(lo, hi):
                                    d = d0 + (ow * sw + woff) * N
                                    _add_j(plane[d:d + N], cols[s0 + ow * N:s0 + (ow + 1) * N])


def _transpose_body(src, out, bias, L, has_bias):
    """out[b, a] = src[a, b] (+ bias[a // L]) for src (A, B), out (B, A), in tiles of 8 rows of src."""
    A, B = src.shape
    T = 8
    nta = (A + T - 1) // T
    for t in prange(nta):
        a0 = t * T
        a1 = min(a0 + T, A)
        if has_bias and (a0 // L) == ((a1 - 1) // L):
            v = bias[a0 // L]
            for b in range(B):
                for a in range(a0, a1):
                    out[b, a] = src[a, b] + v
        elif has_bias:
            for a in range(a0, a1):
                v = bias[a // L]
                for b in range(B):
                    out[b, a] = src[a, b] + v
        else:
            for b in range(B):
                for a in range(a0, a1):
                    out[b, a] = src[a, b]


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
transpose_serial, transpose_parallel = _twin(_transpose_body)
add_channel_bias_serial, add_channel_bias_parallel = _twin(_add_channel_bias_body)


def _pick(pair, n):
    return pair[1] if n > CONV_PARALLEL_THRESHOLD else pair[0]


def im2col(xt, cols, kernel, stride, padding, dilation):
    """Fill ``cols`` (C*KD*KH*KW, OD, OH, OW, N) from ``xt`` (C, D, H, W, N); 3-tuples of ints."""
    c, d, h, w, n = xt.shape
    od, oh, ow = cols.shape[1:4]
    _pick((im2col_serial, im2col_parallel), cols.size)(xt.reshape(-1), cols.reshape(-1), n, c, d, h, w, *kernel,
                                                       od, oh, ow, *stride, *padding, *dilation)


def col2im(cols, xt, kernel, stride, padding, dilation):
    """Overwrite ``xt`` (C, D, H, W, N) with the sum of ``cols`` (C*K, OD, OH, OW, N) over the taps reading
    each element."""
    c, d, h, w, n = xt.shape
    od, oh, ow = cols.shape[1:4]
    _pick((col2im_serial, col2im_parallel), cols.size)(cols.reshape(-1), xt.reshape(-1), n, c, d, h, w, *kernel,
                                                       od, oh, ow, *stride, *padding, *dilation)


def transpose(src, out, bias=None, L=1):
    """``out[b, a] = src[a, b] (+ bias[a // L])`` for 2-d ``src`` (A, B) and ``out`` (B, A)."""
    has = bias is not None
    b = bias if has else np.zeros(1, src.dtype)
    _pick((transpose_serial, transpose_parallel), src.size)(src, out, b, max(int(L), 1), has)


def add_channel_bias(x, bias):
    """``x[n, c, :] += bias[c]`` for ``x`` (N, C, L)."""
    _pick((add_channel_bias_serial, add_channel_bias_parallel), x.size)(x, bias)

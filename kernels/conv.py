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
import math
import os

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


# ---------------------------------------------------------------------------------------------- per-image path
#
# The layout of the training path (``jitorch.ops.nn``): images stay NCHW and every product is per
# image, so no layout move surrounds the matrix product and one image's columns (at most a few
# hundred KiB for small networks) stay in cache between ``im2col`` and the product that reads them:
#
# - image ``x``: ``(N, C*D*H*W)`` (the C-contiguous input, flat per image);
# - columns ``cols``: ``(N, C*KD*KH*KW * OD*OH*OW)``: per image, row ``r = ((c*KD + kd)*KH + kh)*KW + kw``
#   holds the values under tap ``(kd, kh, kw)`` of channel ``c`` for every output position;
# - output ``out``: ``(N, O * OD*OH*OW)``: ``out[n] = w (O, C*K) @ cols[n] (C*K, L)`` per group.
#
# The ``*_blas`` kernels take a BLAS ``cblas_?gemm`` as a ctypes function (found by the caller,
# ``jitorch._threads.cblas_gemm``) and call it from numba's threads, one image at a time, so the
# products of a batch run on every core and each image's ``im2col``/``col2im`` sits next to its
# product. The BLAS must run single-threaded meanwhile (the caller sets it). Without a BLAS the
# caller runs the products with NumPy (``np.matmul`` over the batch) between ``im2col_images`` and
# ``col2im_images``.

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _copy_run(dst, d0, src, s0, n, step):
    """dst[d0 + k] = src[s0 + k * step] for k < n. Offsets are unsigned: numba's wrap-around fix of a
    signed computed index (negative counts from the end) would keep this loop from vectorizing."""
    d = np.uint64(d0)
    s = np.uint64(s0)
    if step == 1:
        for k in range(np.uint64(n)):
            dst[d + k] = src[s + k]
    else:
        st = np.uint64(step)
        for k in range(np.uint64(n)):
            dst[d + k] = src[s + k * st]


def _add_run(dst, d0, src, s0, n, step):
    """dst[d0 + k * step] += src[s0 + k] for k < n (unsigned offsets, as _copy_run)."""
    d = np.uint64(d0)
    s = np.uint64(s0)
    if step == 1:
        for k in range(np.uint64(n)):
            dst[d + k] += src[s + k]
    else:
        st = np.uint64(step)
        for k in range(np.uint64(n)):
            dst[d + k * st] += src[s + k]


def _copy_block(dst, d0, src, s0, rows, n, sstride):
    """dst[d0 + i * n + k] = src[s0 + i * sstride + k] for i < rows, k < n (unsigned offsets)."""
    d = np.uint64(d0)
    s = np.uint64(s0)
    nn = np.uint64(n)
    ss = np.uint64(sstride)
    for i in range(np.uint64(rows)):
        for k in range(nn):
            dst[d + i * nn + k] = src[s + i * ss + k]


def _add_block(dst, d0, src, s0, rows, n, dstride):
    """dst[d0 + i * dstride + k] += src[s0 + i * n + k] for i < rows, k < n (unsigned offsets)."""
    d = np.uint64(d0)
    s = np.uint64(s0)
    nn = np.uint64(n)
    ds = np.uint64(dstride)
    for i in range(np.uint64(rows)):
        for k in range(nn):
            dst[d + i * ds + k] += src[s + i * nn + k]


def _zero_run(dst, d0, n):
    d = np.uint64(d0)
    for k in range(np.uint64(n)):
        dst[d + k] = 0


_copy_run_j = njit(**_NJIT)(_copy_run)
_add_run_j = njit(**_NJIT)(_add_run)
_zero_run_j = njit(**_NJIT)(_zero_run)
_copy_block_j = njit(**_NJIT)(_copy_block)
_add_block_j = njit(**_NJIT)(_add_block)


def _im2col_image(x, cols, C, D, H, W, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    """One image: x flat (C, D, H, W) -> cols flat (C*KD*KH*KW, OD, OH, OW) (zeros in the padding)."""
    KK = KD * KH * KW
    L = OD * OH * OW
    for r in range(C * KK):
        c = r // KK
        rem = r - c * KK
        kd = rem // (KH * KW)
        rem -= kd * KH * KW
        kh = rem // KW
        kw = rem - kh * KW
        woff = kw * dw - pw
        lo, hi = _range_lo_hi_j(woff, sw, W, OW)
        hoff = kh * dh - ph
        hlo, hhi = _range_lo_hi_j(hoff, sh, H, OH)
        whole = sw == 1 and lo == 0 and hi == OW and hlo == 0 and hhi == OH
        for od in range(OD):
            id_ = od * sd - pd + kd * dd
            dok = id_ >= 0 and id_ < D
            if whole and dok:  # every output row reads inside the image: one block copy
                _copy_block_j(cols, r * L + od * OH * OW, x, ((c * D + id_) * H + hoff) * W + woff, OH, OW, sh * W)
                continue
            for oh in range(OH):
                ih = oh * sh - ph + kh * dh
                d0 = r * L + (od * OH + oh) * OW
                if not dok or ih < 0 or ih >= H or hi <= lo:
                    _zero_run_j(cols, d0, OW)
                    continue
                if lo > 0:
                    _zero_run_j(cols, d0, lo)
                _copy_run_j(cols, d0 + lo, x, ((c * D + id_) * H + ih) * W + woff + lo * sw, hi - lo, sw)
                if hi < OW:
                    _zero_run_j(cols, d0 + hi, OW - hi)


def _col2im_image(cols, x, C, D, H, W, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    """One image, the adjoint of ``_im2col_image``: x flat (C, D, H, W) = sum over the taps reading each element."""
    KK = KD * KH * KW
    L = OD * OH * OW
    _zero_run_j(x, 0, C * D * H * W)
    for r in range(C * KK):
        c = r // KK
        rem = r - c * KK
        kd = rem // (KH * KW)
        rem -= kd * KH * KW
        kh = rem // KW
        kw = rem - kh * KW
        woff = kw * dw - pw
        lo, hi = _range_lo_hi_j(woff, sw, W, OW)
        if hi <= lo:
            continue
        hoff = kh * dh - ph
        hlo, hhi = _range_lo_hi_j(hoff, sh, H, OH)
        whole = sw == 1 and lo == 0 and hi == OW and hlo == 0 and hhi == OH
        for od in range(OD):
            id_ = od * sd - pd + kd * dd
            if id_ < 0 or id_ >= D:
                continue
            if whole:
                _add_block_j(x, ((c * D + id_) * H + hoff) * W + woff, cols, r * L + od * OH * OW, OH, OW, sh * W)
                continue
            for oh in range(OH):
                ih = oh * sh - ph + kh * dh
                if ih < 0 or ih >= H:
                    continue
                _add_run_j(x, ((c * D + id_) * H + ih) * W + woff + lo * sw, cols, r * L + (od * OH + oh) * OW + lo,
                           hi - lo, sw)


_im2col_image_j = njit(**_NJIT)(_im2col_image)
_col2im_image_j = njit(**_NJIT)(_col2im_image)


def _add_rows(a, bias, rows, L):
    """a flat (rows, L): a[r, :] += bias[r]."""
    for r in range(rows):
        v = bias[r]
        seg = a[r * L:(r + 1) * L]
        for k in range(seg.shape[0]):
            seg[k] += v


_add_rows_j = njit(**_NJIT)(_add_rows)


def _im2col_images_body(x, cols, C, D, H, W, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    for n in prange(x.shape[0]):
        _im2col_image_j(x[n], cols[n], C, D, H, W, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw)


def _col2im_images_body(cols, x, bias, has_bias, C, D, H, W, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw,
                        dd, dh, dw):
    for n in prange(x.shape[0]):
        _col2im_image_j(cols[n], x[n], C, D, H, W, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw)
        if has_bias:
            _add_rows_j(x[n], bias, C, D * H * W)


def _conv_blas_body(gemm, x, w, bias, has_bias, cols, out, ab, G, C, D, H, W, KD, KH, KW, OD, OH, OW, sd, sh, sw,
                    pd, ph, pw, dd, dh, dw):
    """out[n] = w @ im2col(x[n]) (+ bias) per image and group; cols[n] keeps each image's columns."""
    O = w.shape[0]
    CKg = w.shape[1]
    Og = O // G
    L = OD * OH * OW
    for n in prange(x.shape[0]):
        cn = cols[n]
        on = out[n]
        _im2col_image_j(x[n], cn, C, D, H, W, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw)
        beta = ab[1]
        if has_bias:
            for o in range(O):
                v = bias[o]
                seg = on[o * L:(o + 1) * L]
                for k in range(seg.shape[0]):
                    seg[k] = v
            beta = ab[0]
        for g in range(G):
            gemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, Og, L, CKg, ab[0], w[g * Og:].ctypes.data, CKg,
                 cn[g * CKg * L:].ctypes.data, L, beta, on[g * Og * L:].ctypes.data, L)


def _col2im_blas_body(gemm, a, gin, bias, has_bias, work, out, ab, G, T, C, D, H, W, KD, KH, KW, OD, OH, OW,
                      sd, sh, sw, pd, ph, pw, dd, dh, dw):
    """out[n] = col2im(a_g^T @ gin[n]_g over groups g) (+ bias): a (G*P, Q), gin (N, G*P*L), work (T, G*Q*L).

    A convolution's input gradient (a = weight (O, C/G*K), gin = output gradient) and a transposed
    convolution (a = weight (Cin, O/G*K), gin = input)."""
    P = a.shape[0] // G
    Q = a.shape[1]
    L = OD * OH * OW
    N = gin.shape[0]
    for t in prange(T):
        buf = work[t]
        for n in range(t * N // T, (t + 1) * N // T):
            gn = gin[n]
            for g in range(G):
                gemm(_ROW_MAJOR, _TRANS, _NO_TRANS, Q, L, P, ab[0], a[g * P:].ctypes.data, Q,
                     gn[g * P * L:].ctypes.data, L, ab[1], buf[g * Q * L:].ctypes.data, L)
            _col2im_image_j(buf, out[n], C, D, H, W, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw)
            if has_bias:
                _add_rows_j(out[n], bias, C, D * H * W)


def _wgrad_blas_body(gemm, x, gy, cols, have_cols, work, part, ab, G, T, C, D, H, W, KD, KH, KW, OD, OH, OW,
                     sd, sh, sw, pd, ph, pw, dd, dh, dw):
    """part[t] = sum over chunk t of the images of gy[n]_g @ cols[n]_g^T: gy (N, O*L), part (T, O, C/G*K).
    ``cols`` holds the forward's columns when ``have_cols``, else each image's are rebuilt in work[t]."""
    O = part.shape[1]
    CKg = part.shape[2]
    Og = O // G
    L = OD * OH * OW
    N = gy.shape[0]
    for t in prange(T):
        acc = part[t]
        beta = ab[1]
        for n in range(t * N // T, (t + 1) * N // T):
            if have_cols:
                cn = cols[n]
            else:
                cn = work[t]
                _im2col_image_j(x[n], cn, C, D, H, W, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw)
            gn = gy[n]
            for g in range(G):
                gemm(_ROW_MAJOR, _NO_TRANS, _TRANS, Og, CKg, L, ab[0], gn[g * Og * L:].ctypes.data, L,
                     cn[g * CKg * L:].ctypes.data, L, beta, acc[g * Og:].ctypes.data, CKg)
            beta = ab[0]


im2col_images_serial, im2col_images_parallel = _twin(_im2col_images_body)
col2im_images_serial, col2im_images_parallel = _twin(_col2im_images_body)
conv_blas_serial, conv_blas_parallel = _twin(_conv_blas_body)
col2im_blas_serial, col2im_blas_parallel = _twin(_col2im_blas_body)
wgrad_blas_serial, wgrad_blas_parallel = _twin(_wgrad_blas_body)

#: Multiply-adds of one call (the whole batch) from which the per-image kernels run on numba's threads:
#: a parallel launch costs a few microseconds, a tenth of a product this size.
CONV_PARALLEL_MACS = int(os.environ.get("JITORCH_CONV_PARALLEL_MACS", 1 << 19))


def parallel_chunks(n_images, macs):
    """Chunks of the batch for a per-image kernel: 1 (serial) below ``CONV_PARALLEL_MACS`` multiply-adds or
    for one image, else numba's current thread count (at most one chunk per image)."""
    if n_images < 2 or macs < CONV_PARALLEL_MACS:
        return 1
    import numba

    return max(1, min(n_images, numba.get_num_threads()))


def _g(geom):
    """Flatten ``(C, (D, H, W), (KD, KH, KW), (OD, OH, OW), stride, padding, dilation)`` into kernel args."""
    c, sp, k, o, s, p, d = geom
    return (c, *sp, *k, *o, *s, *p, *d)


def im2col_images(x, cols, geom, parallel):
    """``cols`` (N, C*K*L) = per-image columns of ``x`` (N, C*D*H*W); ``geom`` as for ``conv_blas``."""
    (im2col_images_parallel if parallel else im2col_images_serial)(x, cols, *_g(geom))


def col2im_images(cols, x, bias, geom, parallel):
    """``x`` (N, C*D*H*W) = per-image col2im of ``cols`` (N, C*K*L) (+ ``bias[c]`` when not None)."""
    has = bias is not None
    b = bias if has else np.zeros(1, x.dtype)
    (col2im_images_parallel if parallel else col2im_images_serial)(cols, x, b, has, *_g(geom))


def conv_blas(gemm, x, w, bias, cols, out, groups, geom, chunks):
    """Convolution forward through ``gemm`` (a ctypes ``cblas_?gemm`` of x's dtype), one image at a time.

    ``x`` (N, C*D*H*W), ``w`` (O, C/groups*K), ``bias`` (O,) or None, ``cols`` (N, C*K*L) (written: kept for the
    weight gradient), ``out`` (N, O*L); ``geom = (C, (D, H, W), (KD, KH, KW), (OD, OH, OW), stride, padding,
    dilation)`` (3-tuples); ``chunks`` > 1 runs the images on numba's threads."""
    has = bias is not None
    b = bias if has else np.zeros(1, x.dtype)
    ab = np.array([1, 0], x.dtype)
    (conv_blas_parallel if chunks > 1 else conv_blas_serial)(gemm, x, w, b, has, cols, out, ab, int(groups), *_g(geom))


def col2im_blas(gemm, a, gin, bias, out, groups, geom, chunks):
    """``out[n] = col2im(a^T @ gin[n])`` per group (+ bias): a convolution's input gradient (``a`` the weight
    (O, C/groups*K), ``gin`` (N, O*L) the output gradient, ``geom`` the convolution's) or a transposed
    convolution (``a`` (Cin, O/groups*K), ``gin`` the input, ``geom`` of the equivalent convolution)."""
    has = bias is not None
    b = bias if has else np.zeros(1, out.dtype)
    ab = np.array([1, 0], out.dtype)
    c, sp, k, o = geom[:4]
    work = np.empty((chunks, c * math.prod(k) * math.prod(o)), out.dtype)
    fn = col2im_blas_parallel if chunks > 1 else col2im_blas_serial
    fn(gemm, a, gin, b, has, work, out, ab, int(groups), int(chunks), *_g(geom))


def wgrad_blas(gemm, x, gy, cols, out, groups, geom, chunks):
    """``out`` (O, C/groups*K) = sum over images of ``gy[n] @ cols[n]^T`` per group; ``cols`` (N, C*K*L) are the
    forward's columns, or None to rebuild each image's from ``x`` (N, C*D*H*W)."""
    c, sp, k, o = geom[:4]
    have = cols is not None
    work = np.empty((chunks, c * math.prod(k) * math.prod(o)) if not have else (1, 1), x.dtype)
    part = np.empty((chunks,) + out.shape, x.dtype)
    ab = np.array([1, 0], x.dtype)
    fn = wgrad_blas_parallel if chunks > 1 else wgrad_blas_serial
    fn(gemm, x, gy, cols if have else work, have, work, part, ab, int(groups), int(chunks), *_g(geom))
    np.sum(part, axis=0, out=out)

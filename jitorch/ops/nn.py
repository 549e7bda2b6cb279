"""Records of the neural-network primitives: convolution and pooling, forward and backward.

Convolution is one N-d implementation (1-, 2- and 3-d, picked by the weight's rank), image by image
in NCHW: ``im2col`` (a numba kernel, ``kernels/conv.py``) lays one image's taps out as a matrix and
the BLAS multiplies it by the weight straight into that image's ``(O, ...)`` output, bias included.
With OpenBLAS's ``cblas_?gemm`` found (``jitorch._threads.cblas_gemm``) the numba kernel calls it
itself, one image after the other on each of numba's threads (the BLAS on one thread); otherwise
NumPy's batched ``matmul`` runs the products. The input gradient and ``conv_transpose`` are the
product then ``col2im`` per image; the weight gradient sums per-image products. Its gradient rule is
written with the op table's own ops:

- ``convolution(x, w[, b])``            input grad = ``conv_transpose(gy, w)``, weight grad =
                                         ``convolution_weight_grad(x, gy)``, bias grad = sum of gy;
- ``conv_transpose(x, w[, b])``          input grad = ``convolution(gy, w)``, weight grad =
                                         ``convolution_weight_grad(gy, x)``;
- ``convolution_weight_grad(x, gy)``     is bilinear: its own gradients are a ``conv_transpose`` and a
                                         ``convolution`` again, so every order of derivative stays in the table.

Pooling works on ``(N, C, H, W)`` (the functional layer maps 1-d and unbatched inputs onto it):
``max_pool2d_with_indices`` / ``adaptive_max_pool2d`` return int64 indices into each ``H * W``
plane, consumed by ``max_pool2d_backward``; ``avg_pool2d`` and ``adaptive_avg_pool2d`` have
backward ops that are exactly their adjoints (so the adjoint of the backward is the forward).

Every rule raises torch's error type and names the op, the shapes and the fix; the kernels never
see invalid input. float16 computes in float32 and rounds once; integer inputs are rejected as in
torch ("not implemented for 'Long'").
"""
from __future__ import annotations

import itertools
import math
import threading
import weakref
from collections import OrderedDict

import numpy as np

from .. import _dispatch
from .. import _dtype as D
from .._threads import cblas_gemm as _cblas_gemm, use_blas_threads as _use_blas_threads
from ..backends import cpu as _cpu
from ..kernels import conv as _kc
from ..kernels import pool as _kp
from .registry import OpDef, register
from .rules import category_name

_NAMES = {1: "conv1d", 2: "conv2d", 3: "conv3d"}


# ---------------------------------------------------------------------------------------------- helpers

def _tuple(v, n, what):
    if isinstance(v, (list, tuple)):
        v = tuple(int(a) for a in v)
        if len(v) == 1 and n > 1:
            v = v * n
        if len(v) != n:
            raise RuntimeError(f"expected {what} to be a single integer value or a list of {n} values to match the "
                               f"convolution dimensions, but got {what}={list(v)}")
        return v
    return (int(v),) * n


def _float_dtype(op, *tensors):
    """Common floating dtype of the operands (they must agree), as torch's convolution/pooling."""
    dts = [t.dtype for t in tensors if t is not None and hasattr(t, "dtype")]
    d0 = dts[0]
    for d in dts[1:]:
        if d is not d0:
            raise RuntimeError(f"{op}: Input type ({category_name(d0)}) and weight/bias type ({category_name(d)}) "
                               "should "
                               "be the same; convert one with .to(other.dtype)")
    if not d0.is_floating_point:
        raise RuntimeError(f"{op}: \"{op}_cpu\" not implemented for '{category_name(d0)}'; convert the input with "
                           ".float()")
    return d0


def _f32(a):
    return _cpu.to_f32(a) if a.dtype == np.float16 else np.ascontiguousarray(a)


def _store(out, res):
    """Write a float32/float64 result into ``out`` (rounding once to float16 when needed)."""
    if out.dtype == np.float16:
        _cpu.from_f32_into(np.ascontiguousarray(res, np.float32), out)
    elif res is not out:
        out[...] = res


def _as5(a):
    """(N, C, *spatial) with 1..3 spatial dims -> (N, C, D, H, W) view (C-contiguous input)."""
    nd = a.ndim - 2
    return a.reshape(a.shape[:2] + (1,) * (3 - nd) + a.shape[2:])


def _pad3(t, fill):
    return (fill,) * (3 - len(t)) + tuple(t)


def conv_out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv_transpose_out_size(n, k, s, p, d, op):
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def _check_conv_attrs(op, nd, stride, padding, dilation, groups, output_padding=None):
    if len(stride) != nd or len(padding) != nd or len(dilation) != nd:
        raise RuntimeError(f"{op}: stride, padding and dilation need {nd} values each, got stride={list(stride)}, "
                           f"padding={list(padding)}, dilation={list(dilation)}")
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"{op}: non-positive stride is not supported (stride={list(stride)})")
    if any(p < 0 for p in padding):
        raise RuntimeError(f"{op}: negative padding is not supported (padding={list(padding)})")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"{op}: dilation should be greater than zero (dilation={list(dilation)})")
    if groups <= 0:
        raise RuntimeError(f"{op}: non-positive groups is not supported (groups={groups})")
    if output_padding is not None and any(p < 0 for p in output_padding):
        raise RuntimeError(f"{op}: negative output_padding is not supported")


# ---------------------------------------------------------------------------------------------- convolution

def _conv_shape(xs, ws, bs=None, *, stride, padding, dilation, groups):
    nd = len(ws) - 2
    name = _NAMES.get(nd, "convolution")
    if nd < 1 or nd > 3:
        raise RuntimeError(f"convolution: weight should have 3, 4 or 5 dims (1-, 2- or 3-d convolution), got weight of "
                           f"size {list(ws)}")
    if len(xs) != nd + 2:
        raise RuntimeError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {name}, but got input of "
                           f"size: {list(xs)}")
    _check_conv_attrs(name, nd, stride, padding, dilation, groups)
    o, cg = ws[0], ws[1]
    if o % groups:
        raise RuntimeError(f"{name}: out_channels ({o}, weight of size {list(ws)}) must be divisible by groups ({groups})")
    if xs[1] != cg * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(ws)}, expected input{list(xs)} to have "
                           f"{cg * groups} channels, but got {xs[1]} channels instead")
    if bs is not None and tuple(bs) != (o,):
        raise RuntimeError(f"Given weight of size {list(ws)}, expected bias to be 1-dimensional with {o} elements, "
                           f"but got bias of size {list(bs)} instead")
    padded = tuple(n + 2 * p for n, p in zip(xs[2:], padding))
    eff = tuple(d * (k - 1) + 1 for k, d in zip(ws[2:], dilation))
    if any(a < e for a, e in zip(padded, eff)):
        raise RuntimeError(f"{name}: Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
                           f"Kernel size: ({' x '.join(map(str, eff))}). Kernel size can't be greater than actual input "
                           "size")
    return (xs[0], o) + tuple(conv_out_size(n, k, s, p, d)
                              for n, k, s, p, d in zip(xs[2:], ws[2:], stride, padding, dilation))


def _conv_dtype(x, w, b=None, **attrs):
    return _float_dtype(_NAMES.get(w.ndim - 2, "convolution"), x, w, b)


# ---------------------------------------------------------------------------------------------- backward workspace
#
# A convolution's weight gradient needs the forward's im2col columns again. Instead of recomputing
# them, the forward keeps its columns (only while autograd records, within a byte budget, keyed by the
# identity of the input array and held weakly) and the gradient rules run inside ``_workspace()``, the
# only place where the kept columns are consulted. The rules receive the
# very input the forward saw: autograd version-checks saved inputs, so a kept array is never stale.

_FWD_COLS_BUDGET = 256 << 20
_TLS = threading.local()


def _fwd_cols():
    """This thread's kept forward columns: id(input array) -> (weakref(input), key, cols)."""
    d = getattr(_TLS, "fwd_cols", None)
    if d is None:
        d = _TLS.fwd_cols = OrderedDict()
    return d

# Scratch arrays (columns, GEMM results, layout moves) are recycled through thread-local free lists:
# a fresh multi-megabyte array costs a page fault per 4 KiB on first touch, which measured more than
# the kernels filling it (LeNet step: ~3000 faults, +70% time). Only arrays owned by this module
# (``_scratch``) that never escaped are released.
_POOL_BUDGET = 128 << 20


def _pool():
    p = getattr(_TLS, "pool", None)
    if p is None:
        p = _TLS.pool = {"free": {}, "bytes": 0}
    return p


def _scratch(shape, dtype):
    pool = _pool()
    key = (tuple(shape), np.dtype(dtype).str)
    lst = pool["free"].get(key)
    if lst:
        a = lst.pop()
        pool["bytes"] -= a.nbytes
        return a
    return np.empty(shape, dtype)


def _release(*arrays):
    pool = _pool()
    for a in arrays:
        if a is None or a.base is not None or not a.flags.c_contiguous:
            continue
        if pool["bytes"] + a.nbytes > _POOL_BUDGET:
            continue
        lst = pool["free"].setdefault((a.shape, a.dtype.str), [])
        if any(x is a for x in lst):
            continue
        lst.append(a)
        pool["bytes"] += a.nbytes


def _keep_cols(x_orig, key, cols):
    """Keep the forward's columns for the weight gradient; returns False when not kept."""
    if not (_dispatch.hooks.grad_enabled and _dispatch.hooks.autograd is not None) or cols.nbytes > _FWD_COLS_BUDGET:
        return False
    kept = _fwd_cols()
    for k in [k for k, e in kept.items() if e[0]() is None]:
        _release(kept.pop(k)[2])
    try:
        ref = weakref.ref(x_orig)
    except TypeError:
        return False
    old = kept.pop(id(x_orig), None)
    if old is not None:
        _release(old[2])
    kept[id(x_orig)] = (ref, key, cols)
    total = sum(e[2].nbytes for e in kept.values())
    while total > _FWD_COLS_BUDGET and kept:
        _, e = kept.popitem(last=False)
        total -= e[2].nbytes
        _release(e[2])
    return True


def _take_cols(x_orig, key):
    if getattr(_TLS, "memo", None) is None:
        return None
    kept = _fwd_cols()
    e = kept.get(id(x_orig))
    if e is None or e[0]() is not x_orig or e[1] != key:
        return None
    del kept[id(x_orig)]
    return e[2]


class _workspace:
    """Scope of one gradient rule: kept forward columns may be used inside it."""

    def __enter__(self):
        self.prev = getattr(_TLS, "memo", None)
        _TLS.memo = {}
        return self

    def __exit__(self, *exc):
        _TLS.memo = self.prev


def _cols_key(x, wshape, stride, padding, dilation, out_spatial):
    return (tuple(x.shape), x.dtype.str, tuple(wshape[2:]), tuple(stride), tuple(padding), tuple(dilation),
            tuple(out_spatial))


def _geom(c, in_spatial, k_spatial, out_spatial, stride, padding, dilation):
    """Geometry of a convolution for the per-image kernels (kernels/conv.py): 3-d everything."""
    return (int(c), _pad3(in_spatial, 1), _pad3(k_spatial, 1), _pad3(out_spatial, 1), _pad3(stride, 1),
            _pad3(padding, 0), _pad3(dilation, 1))


def _contiguous_result(out, dtype):
    """``out`` itself when the kernels can write it (C-contiguous, compute dtype), else a scratch array."""
    return out if out.dtype == dtype and out.flags.c_contiguous else np.empty(out.shape, dtype)


def _conv_impl(out, x, w, b=None, *, stride, padding, dilation, groups):
    x_orig = x
    x, w = _f32(x), _f32(w)
    b = _f32(b) if b is not None else None
    n, o = out.shape[:2]
    spatial = out.shape[2:]
    L = math.prod(spatial)
    if out.size == 0:
        return out
    if x.size == 0 or w.size == 0:
        out[...] = 0 if b is None else b.reshape((1, -1) + (1,) * len(spatial))
        return out
    c = x.shape[1]
    ckg = w[0].size
    geom = _geom(c, x.shape[2:], w.shape[2:], spatial, stride, padding, dilation)
    cols = _scratch((n, c * math.prod(w.shape[2:]) * L), x.dtype)
    res = _contiguous_result(out, x.dtype)
    chunks = _kc.parallel_chunks(n, n * o * ckg * L)
    gemm = _cblas_gemm(x.dtype) if chunks > 1 else None  # one chunk: NumPy, the BLAS threads itself
    if gemm is not None:  # im2col and the product per image, on numba's threads
        _use_blas_threads(0)
        _kc.conv_blas(gemm, x.reshape(n, -1), w.reshape(o, ckg), b, cols, res.reshape(n, -1), groups, geom, chunks)
    else:
        _kc.im2col_images(x.reshape(n, -1), cols, geom, chunks > 1)
        _use_blas_threads(2 * n * o * ckg * L)
        r4 = res.reshape(n, groups, o // groups, L)
        np.matmul(w.reshape(groups, o // groups, ckg), cols.reshape(n, groups, ckg, L), out=r4)
        if b is not None:
            r4 += b.reshape(groups, o // groups, 1)
    if not _keep_cols(x_orig, _cols_key(x_orig, w.shape, stride, padding, dilation, spatial), cols):
        _release(cols)
    _store(out, res)
    return out


def _ref_conv(x, w, b=None, *, stride, padding, dilation, groups):
    """NumPy reference: sum over kernel taps of strided slices of the zero-padded input."""
    nd = w.ndim - 2
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [(p, p) for p in padding])
    osz = [conv_out_size(n, k, s, p, d) for n, k, s, p, d in zip(x.shape[2:], w.shape[2:], stride, padding, dilation)]
    o, cg = w.shape[:2]
    og = o // groups
    out = np.zeros((x.shape[0], o) + tuple(osz))
    for tap in itertools.product(*[range(k) for k in w.shape[2:]]):
        sl = tuple(slice(t * d, t * d + s * (m - 1) + 1, s) for t, d, s, m in zip(tap, dilation, stride, osz))
        xs = xp[(slice(None), slice(None)) + sl]
        for g in range(groups):
            wt = w[(slice(g * og, (g + 1) * og), slice(None)) + tap].astype(np.float64)
            out[:, g * og:(g + 1) * og] += np.einsum("nc...,oc->no...", xs[:, g * cg:(g + 1) * cg], wt)
    if b is not None:
        out += b.astype(np.float64).reshape((1, -1) + (1,) * nd)
    return out.astype(x.dtype)


# ---------------------------------------------------------------------------------------------- conv_transpose

def _convT_shape(xs, ws, bs=None, *, stride, padding, output_padding, dilation, groups):
    nd = len(ws) - 2
    name = {1: "conv_transpose1d", 2: "conv_transpose2d", 3: "conv_transpose3d"}.get(nd, "conv_transpose")
    if nd < 1 or nd > 3:
        raise RuntimeError(f"{name}: weight should have 3, 4 or 5 dims, got weight of size {list(ws)}")
    if len(xs) != nd + 2:
        raise RuntimeError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {name}, but got input of "
                           f"size: {list(xs)}")
    _check_conv_attrs(name, nd, stride, padding, dilation, groups, output_padding)
    cin, og = ws[0], ws[1]
    if cin % groups:
        raise RuntimeError(f"{name}: in_channels ({cin}) must be divisible by groups ({groups})")
    if xs[1] != cin:
        raise RuntimeError(f"Given transposed=1, weight of size {list(ws)}, expected input{list(xs)} to have {cin} "
                           f"channels, but got {xs[1]} channels instead")
    if bs is not None and tuple(bs) != (og * groups,):
        raise RuntimeError(f"Given transposed=1, weight of size {list(ws)}, expected bias to be 1-dimensional with "
                           f"{og * groups} elements, but got bias of size {list(bs)} instead")
    out = tuple(conv_transpose_out_size(n, k, s, p, d, q)
                for n, k, s, p, d, q in zip(xs[2:], ws[2:], stride, padding, dilation, output_padding))
    if any(m <= 0 for m in out):
        raise RuntimeError(f"{name}: Given input size per channel: ({' x '.join(map(str, xs[2:]))}). Calculated output "
                           f"size per channel: ({' x '.join(map(str, out))}). Output size is too small")
    return (xs[0], og * groups) + out


def _convT_dtype(x, w, b=None, **attrs):
    return _float_dtype("conv_transpose", x, w, b)


def _convT_impl(out, x, w, b=None, *, stride, padding, output_padding, dilation, groups):
    x, w = _f32(x), _f32(w)
    b = _f32(b) if b is not None else None
    if out.size == 0:
        return out
    n, cin = x.shape[:2]
    lin = math.prod(x.shape[2:])
    cout = out.shape[1]
    if x.size == 0 or w.size == 0:
        out[...] = 0 if b is None else b.reshape((1, -1) + (1,) * (out.ndim - 2))
        return out
    k = math.prod(w.shape[2:])
    ogk = (cout // groups) * k
    # the adjoint of the convolution of ``out`` (cout channels) whose output is x: per image, columns
    # w_g^T @ x[n]_g, then col2im into the image
    geom = _geom(cout, out.shape[2:], w.shape[2:], x.shape[2:], stride, padding, dilation)
    res = _contiguous_result(out, x.dtype)
    chunks = _kc.parallel_chunks(n, n * cin * ogk * lin)
    gemm = _cblas_gemm(x.dtype) if chunks > 1 else None  # one chunk: NumPy, the BLAS threads itself
    if gemm is not None:
        _use_blas_threads(0)
        _kc.col2im_blas(gemm, w.reshape(cin, ogk), x.reshape(n, -1), b, res.reshape(n, -1), groups, geom, chunks)
    else:
        _use_blas_threads(2 * n * cin * ogk * lin)
        cols = _scratch((n, groups, ogk, lin), x.dtype)
        np.matmul(w.reshape(groups, cin // groups, ogk).transpose(0, 2, 1), x.reshape(n, groups, cin // groups, lin),
                  out=cols)
        _kc.col2im_images(cols.reshape(n, -1), res.reshape(n, -1), b, geom, chunks > 1)
        _release(cols)
    _store(out, res)
    return out


def _ref_convT(x, w, b=None, *, stride, padding, output_padding, dilation, groups):
    nd = w.ndim - 2
    cin, og = w.shape[:2]
    cg = cin // groups
    lin = x.shape[2:]
    osz = [conv_transpose_out_size(n, k, s, p, d, q)
           for n, k, s, p, d, q in zip(lin, w.shape[2:], stride, padding, dilation, output_padding)]
    full = [m + 2 * p for m, p in zip(osz, padding)]
    out = np.zeros((x.shape[0], og * groups) + tuple(full))
    for tap in itertools.product(*[range(k) for k in w.shape[2:]]):
        sl = tuple(slice(t * d, t * d + s * (m - 1) + 1, s) for t, d, s, m in zip(tap, dilation, stride, lin))
        for g in range(groups):
            wt = w[(slice(g * cg, (g + 1) * cg), slice(None)) + tap].astype(np.float64)
            contrib = np.einsum("nc...,co->no...", x[:, g * cg:(g + 1) * cg].astype(np.float64), wt)
            region = out[(slice(None), slice(g * og, (g + 1) * og)) + sl]
            region += contrib[(slice(None), slice(None)) + tuple(slice(0, r) for r in region.shape[2:])]
    out = out[(slice(None), slice(None)) + tuple(slice(p, p + m) for p, m in zip(padding, osz))]
    if b is not None:
        out = out + b.astype(np.float64).reshape((1, -1) + (1,) * nd)
    return np.ascontiguousarray(out).astype(x.dtype)


# ---------------------------------------------------------------------------------------------- weight gradient

def _wgrad_shape(xs, gs, *, weight_size, stride, padding, dilation, groups):
    nd = len(weight_size) - 2
    if len(xs) != nd + 2 or len(gs) != nd + 2:
        raise RuntimeError(f"convolution_weight_grad: input {list(xs)} and grad_output {list(gs)} need {nd + 2} dims "
                           f"for weight of size {list(weight_size)}")
    expect = _conv_shape(xs, tuple(weight_size), stride=stride, padding=padding, dilation=dilation, groups=groups)
    if tuple(gs) != tuple(expect):
        raise RuntimeError(f"convolution_weight_grad: grad_output of size {list(gs)} doesn't match the convolution "
                           f"output size {list(expect)}")
    return tuple(weight_size)


def _wgrad_dtype(x, g, **attrs):
    return _float_dtype("convolution_weight_grad", x, g)


def _wgrad_impl(out, x, gy, *, weight_size, stride, padding, dilation, groups):
    x_orig = x
    x, gy = _f32(x), _f32(gy)
    n, o = gy.shape[:2]
    L = math.prod(gy.shape[2:])
    if gy.size == 0 or out.size == 0 or x.size == 0:
        out[...] = 0
        return out
    c = x.shape[1]
    ckg = math.prod(weight_size[1:])
    geom = _geom(c, x.shape[2:], weight_size[2:], gy.shape[2:], stride, padding, dilation)
    cols = _take_cols(x_orig, _cols_key(x_orig, weight_size, stride, padding, dilation, gy.shape[2:]))
    res = _contiguous_result(out, x.dtype)
    chunks = _kc.parallel_chunks(n, n * o * ckg * L)
    gemm = _cblas_gemm(x.dtype) if chunks > 1 else None  # one chunk: NumPy, the BLAS threads itself
    if gemm is not None:
        _use_blas_threads(0)
        _kc.wgrad_blas(gemm, x.reshape(n, -1), gy.reshape(n, -1), cols, res.reshape(o, ckg), groups, geom, chunks)
    else:
        if cols is None:
            cols = _scratch((n, c * math.prod(weight_size[2:]) * L), x.dtype)
            _kc.im2col_images(x.reshape(n, -1), cols, geom, chunks > 1)
        _use_blas_threads(2 * n * o * ckg * L)
        per_image = np.matmul(gy.reshape(n, groups, o // groups, L),
                              cols.reshape(n, groups, ckg, L).transpose(0, 1, 3, 2))
        np.sum(per_image, axis=0, out=res.reshape(groups, o // groups, ckg))
    _release(cols)
    _store(out, res)
    return out


def _ref_wgrad(x, gy, *, weight_size, stride, padding, dilation, groups):
    o, cg = weight_size[:2]
    og = o // groups
    osz = gy.shape[2:]
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [(p, p) for p in padding])
    out = np.zeros(tuple(weight_size))
    for tap in itertools.product(*[range(k) for k in weight_size[2:]]):
        sl = tuple(slice(t * d, t * d + s * (m - 1) + 1, s) for t, d, s, m in zip(tap, dilation, stride, osz))
        xs = xp[(slice(None), slice(None)) + sl]
        for g in range(groups):
            ax = [0] + list(range(2, gy.ndim))
            out[(slice(g * og, (g + 1) * og), slice(None)) + tap] = np.tensordot(
                gy[:, g * og:(g + 1) * og].astype(np.float64), xs[:, g * cg:(g + 1) * cg], axes=(ax, ax))
    return out.astype(x.dtype)


_CONV_ATTRS = (("stride", None), ("padding", None), ("dilation", None), ("groups", 1))

register(OpDef("convolution", shape_rule=_conv_shape, dtype_rule=_conv_dtype, reference=_ref_conv,
               impl={"cpu": _conv_impl}, attrs=_CONV_ATTRS, tags=frozenset({"nn", "conv", "contraction"}),
               doc="1-/2-/3-d cross-correlation of x (N, C, *) with w (O, C/groups, *k), optional bias (O,); "
                   "stride/padding/dilation are tuples (one per spatial dim), padding symmetric"))
register(OpDef("conv_transpose", shape_rule=_convT_shape, dtype_rule=_convT_dtype, reference=_ref_convT,
               impl={"cpu": _convT_impl},
               attrs=(("stride", None), ("padding", None), ("output_padding", None), ("dilation", None),
                      ("groups", 1)),
               tags=frozenset({"nn", "conv", "contraction"}),
               doc="transposed convolution (the adjoint of convolution w.r.t. its input) of x (N, Cin, *) with "
                   "w (Cin, Cout/groups, *k), optional bias (Cout,)"))
register(OpDef("convolution_weight_grad", shape_rule=_wgrad_shape, dtype_rule=_wgrad_dtype, reference=_ref_wgrad,
               impl={"cpu": _wgrad_impl}, attrs=(("weight_size", None),) + _CONV_ATTRS,
               tags=frozenset({"nn", "conv", "contraction"}),
               doc="gradient of convolution(x, w) w.r.t. w of shape weight_size, for output gradient gy"))


# ---------------------------------------------------------------------------------------------- pooling

def pool_out_size(n, k, s, p, d, ceil_mode):
    num = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    o = num // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _check_pool4(op, xs):
    if len(xs) != 4:
        raise RuntimeError(f"{op}: expected a 4-D input (N, C, H, W), got input of size {list(xs)}")


def _pool_common(op, xs, kernel_size, stride, padding, dilation, ceil_mode):
    _check_pool4(op, xs)
    if len(kernel_size) != 2 or len(stride) != 2 or len(padding) != 2 or len(dilation) != 2:
        raise RuntimeError(f"{op}: kernel_size, stride, padding and dilation need 2 values each")
    if any(k <= 0 for k in kernel_size):
        raise RuntimeError(f"{op}: kernel_size must be greater than zero, but got kernel_size={list(kernel_size)}")
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"{op}: stride must be greater than zero, but got stride={list(stride)}")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"{op}: dilation must be greater than zero, but got dilation={list(dilation)}")
    for k, p, d in zip(kernel_size, padding, dilation):
        if p < 0 or p > (d * (k - 1) + 1) // 2:
            raise RuntimeError(f"{op}: pad should be at most half of effective kernel size, but got pad={p}, "
                               f"kernel_size={k} and dilation={d}")
    out = tuple(pool_out_size(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip(xs[2:], kernel_size, stride, padding, dilation))
    if any(o <= 0 for o in out) or any(n == 0 for n in xs[1:]):
        raise RuntimeError(f"{op}: Given input size: ({'x'.join(map(str, xs[1:]))}). Calculated output size: "
                           f"({xs[1]}x{'x'.join(map(str, out))}). Output size is too small")
    return (xs[0], xs[1]) + out


def _pool_float(op):
    def rule(x, *rest, **attrs):
        return _float_dtype(op, x)
    return rule


def _maxpool_shape(xs, *, kernel_size, stride, padding, dilation, ceil_mode):
    s = _pool_common("max_pool2d", xs, kernel_size, stride, padding, dilation, ceil_mode)
    return s, s


def _maxpool_dtype(x, **attrs):
    return _float_dtype("max_pool2d", x), D.int64


def _planes(a):
    return a.reshape((-1,) + a.shape[-2:])


def _maxpool_impl(outs, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    out, idx = outs
    if out.size == 0:
        return outs
    xf = _f32(x)
    res = out if out.dtype == xf.dtype else np.empty(out.shape, xf.dtype)
    _kp.max_pool2d(_planes(xf), _planes(res), _planes(idx), kernel_size, stride, padding, dilation)
    _store(out, res)
    return outs


def _ref_maxpool(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    n, c, h, w = x.shape
    oh, ow = (pool_out_size(a, k, s, p, d, ceil_mode)
              for a, k, s, p, d in zip((h, w), kernel_size, stride, padding, dilation))
    out = np.empty((n, c, oh, ow), x.dtype)
    idx = np.empty((n, c, oh, ow), np.int64)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    for i in range(oh):
        for j in range(ow):
            best = np.full((n, c), -np.inf, x.dtype)
            bi = None
            for a in range(kh):
                hh = i * sh - ph + a * dh
                if not 0 <= hh < h:
                    continue
                for b in range(kw):
                    ww = j * sw - pw + b * dw
                    if not 0 <= ww < w:
                        continue
                    v = x[:, :, hh, ww]
                    if bi is None:
                        bi = np.full((n, c), hh * w + ww, np.int64)
                    upd = (v > best) | np.isnan(v)
                    best = np.where(upd, v, best)
                    bi = np.where(upd, hh * w + ww, bi)
            out[:, :, i, j] = best
            idx[:, :, i, j] = bi
    return out, idx


def _mpb_shape(gs, ids, *, input_size):
    if tuple(gs) != tuple(ids) or len(gs) != 4:
        raise RuntimeError(f"max_pool2d_backward: grad_output {list(gs)} and indices {list(ids)} must have the same "
                           "4-D shape")
    return tuple(gs[:2]) + tuple(input_size)


def _mpb_impl(out, gy, idx, *, input_size):
    if out.size == 0:
        return out
    g = _f32(gy)
    res = out if out.dtype == g.dtype else np.empty(out.shape, g.dtype)
    p = out.shape[0] * out.shape[1]
    _kp.max_pool_backward(g.reshape(p, -1), np.ascontiguousarray(idx).reshape(p, -1), res.reshape(p, -1))
    _store(out, res)
    return out


def _ref_mpb(gy, idx, *, input_size):
    n, c = gy.shape[:2]
    out = np.zeros((n * c, math.prod(input_size)), gy.dtype)
    g2, i2 = gy.reshape(n * c, -1), idx.reshape(n * c, -1)
    for p in range(n * c):
        np.add.at(out[p], i2[p], g2[p])
    return out.reshape((n, c) + tuple(input_size))


def _mpg_shape(gs, ids, *, input_size=None):
    return tuple(ids)


def _mpg_impl(out, gg, idx):
    """out = gg (N, C, H, W) gathered at idx (N, C, OH, OW): the adjoint of max_pool2d_backward."""
    if out.size == 0:
        return out
    g = _f32(gg)
    res = out if out.dtype == g.dtype else np.empty(out.shape, g.dtype)
    p = out.shape[0] * out.shape[1]
    _kp.max_pool_double_backward(g.reshape(p, -1), np.ascontiguousarray(idx).reshape(p, -1), res.reshape(p, -1))
    _store(out, res)
    return out


def _ref_mpg(gg, idx):
    n, c = idx.shape[:2]
    return np.take_along_axis(gg.reshape(n, c, -1), idx.reshape(n, c, -1), axis=2).reshape(idx.shape)


_MP_ATTRS = (("kernel_size", None), ("stride", None), ("padding", (0, 0)), ("dilation", (1, 1)), ("ceil_mode", False))

register(OpDef("max_pool2d_with_indices", shape_rule=_maxpool_shape, dtype_rule=_maxpool_dtype,
               reference=_ref_maxpool, impl={"cpu": _maxpool_impl}, attrs=_MP_ATTRS, nout=2,
               differentiable=(0,), tags=frozenset({"nn", "pool"}),
               doc="2-d max pooling of (N, C, H, W): values and int64 flat indices (h * W + w) into each plane"))
register(OpDef("max_pool2d_backward", shape_rule=_mpb_shape, dtype_rule=lambda g, i, **a: _float_dtype("max_pool2d", g),
               reference=_ref_mpb, impl={"cpu": _mpb_impl}, attrs=(("input_size", None),), differentiable=(0,),
               tags=frozenset({"nn", "pool"}),
               doc="scatter-add of grad_output at the max-pooling indices into zeros of (N, C, *input_size)"))
register(OpDef("max_pool2d_gather", shape_rule=_mpg_shape, dtype_rule=lambda g, i, **a: _float_dtype("max_pool2d", g),
               reference=_ref_mpg, impl={"cpu": _mpg_impl}, differentiable=(0,), tags=frozenset({"nn", "pool"}),
               doc="gather of (N, C, H, W) at max-pooling indices (N, C, OH, OW): the adjoint of max_pool2d_backward"))


# average pooling

def _avg_shape(xs, *, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("avg_pool2d: divisor must be not zero")
    return _pool_common("avg_pool2d", xs, kernel_size, stride, padding, (1, 1), ceil_mode)


def _avg_impl(out, x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    if out.size == 0:
        return out
    xf = _f32(x)
    res = out if out.dtype == xf.dtype else np.empty(out.shape, xf.dtype)
    _kp.avg_pool2d(_planes(xf), _planes(res), kernel_size, stride, padding, count_include_pad, divisor_override)
    _store(out, res)
    return out


def _avg_windows(n, o, k, s, p):
    for i in range(o):
        start = i * s - p
        end = min(start + k, n + p)
        size = end - start
        yield i, max(start, 0), min(end, n), size


def _ref_avg(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    h, w = x.shape[2:]
    oh, ow = (pool_out_size(a, k, s, p, 1, ceil_mode) for a, k, s, p in zip((h, w), kernel_size, stride, padding))
    out = np.zeros(x.shape[:2] + (oh, ow), np.float64)
    for i, hs, he, hsz in _avg_windows(h, oh, kernel_size[0], stride[0], padding[0]):
        for j, ws, we, wsz in _avg_windows(w, ow, kernel_size[1], stride[1], padding[1]):
            d = divisor_override or (hsz * wsz if count_include_pad else (he - hs) * (we - ws))
            out[:, :, i, j] = x[:, :, hs:he, ws:we].astype(np.float64).sum(axis=(2, 3)) / d
    return out.astype(x.dtype)


def _avgb_shape(gs, *, input_size, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    expect = _avg_shape(tuple(gs[:2]) + tuple(input_size), kernel_size=kernel_size, stride=stride, padding=padding,
                        ceil_mode=ceil_mode, count_include_pad=count_include_pad, divisor_override=divisor_override)
    if tuple(gs) != expect:
        raise RuntimeError(f"avg_pool2d_backward: grad_output of size {list(gs)} doesn't match the pooling output "
                           f"size {list(expect)}")
    return tuple(gs[:2]) + tuple(input_size)


def _avgb_impl(out, gy, *, input_size, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    if out.size == 0:
        return out
    g = _f32(gy)
    res = out if out.dtype == g.dtype else np.empty(out.shape, g.dtype)
    _kp.avg_pool2d_backward(_planes(g), _planes(res), kernel_size, stride, padding, count_include_pad,
                            divisor_override)
    _store(out, res)
    return out


def _ref_avgb(gy, *, input_size, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    h, w = input_size
    oh, ow = gy.shape[2:]
    out = np.zeros(gy.shape[:2] + (h, w), np.float64)
    for i, hs, he, hsz in _avg_windows(h, oh, kernel_size[0], stride[0], padding[0]):
        for j, ws, we, wsz in _avg_windows(w, ow, kernel_size[1], stride[1], padding[1]):
            d = divisor_override or (hsz * wsz if count_include_pad else (he - hs) * (we - ws))
            out[:, :, hs:he, ws:we] += gy[:, :, i:i + 1, j:j + 1].astype(np.float64) / d
    return out.astype(gy.dtype)


_AVG_ATTRS = (("kernel_size", None), ("stride", None), ("padding", (0, 0)), ("ceil_mode", False),
              ("count_include_pad", True), ("divisor_override", None))

register(OpDef("avg_pool2d", shape_rule=_avg_shape, dtype_rule=_pool_float("avg_pool2d"), reference=_ref_avg,
               impl={"cpu": _avg_impl}, attrs=_AVG_ATTRS, tags=frozenset({"nn", "pool"}),
               doc="2-d average pooling of (N, C, H, W) (torch's count_include_pad / divisor_override rules)"))
register(OpDef("avg_pool2d_backward", shape_rule=_avgb_shape, dtype_rule=_pool_float("avg_pool2d"),
               reference=_ref_avgb, impl={"cpu": _avgb_impl}, attrs=(("input_size", None),) + _AVG_ATTRS,
               tags=frozenset({"nn", "pool"}),
               doc="gradient of avg_pool2d w.r.t. its input (the adjoint of avg_pool2d)"))


# adaptive pooling

def _adaptive_windows(n, o):
    return [((i * n) // o, ((i + 1) * n + o - 1) // o) for i in range(o)]


def _adaptive_shape_for(op):
    def rule(xs, *, output_size):
        _check_pool4(op, xs)
        if len(output_size) != 2 or any(o < 0 for o in output_size):
            raise RuntimeError(f"{op}: output_size must be 2 non-negative ints, got {list(output_size)}")
        if any(n == 0 for n in xs[2:]) and math.prod(output_size):
            raise RuntimeError(f"{op}: Expected input to have non-zero size for non-batch dimensions, but input has "
                               f"sizes {list(xs)} with dimension 2 or 3 being empty")
        s = tuple(xs[:2]) + tuple(output_size)
        return (s, s) if op == "adaptive_max_pool2d" else s
    return rule


def _aavg_impl(out, x, *, output_size):
    if out.size == 0:
        return out
    xf = _f32(x)
    res = out if out.dtype == xf.dtype else np.empty(out.shape, xf.dtype)
    _kp.adaptive_avg_pool2d(_planes(xf), _planes(res))
    _store(out, res)
    return out


def _ref_aavg(x, *, output_size):
    out = np.zeros(x.shape[:2] + tuple(output_size))
    for i, (hs, he) in enumerate(_adaptive_windows(x.shape[2], output_size[0])):
        for j, (ws, we) in enumerate(_adaptive_windows(x.shape[3], output_size[1])):
            out[:, :, i, j] = x[:, :, hs:he, ws:we].astype(np.float64).mean(axis=(2, 3))
    return out.astype(x.dtype)


def _aavgb_shape(gs, *, input_size):
    if len(gs) != 4:
        raise RuntimeError(f"adaptive_avg_pool2d_backward: expected a 4-D grad_output, got {list(gs)}")
    return tuple(gs[:2]) + tuple(input_size)


def _aavgb_impl(out, gy, *, input_size):
    if out.size == 0:
        return out
    g = _f32(gy)
    res = out if out.dtype == g.dtype else np.empty(out.shape, g.dtype)
    if g.size == 0:
        res[...] = 0
    else:
        _kp.adaptive_avg_pool2d_backward(_planes(g), _planes(res))
    _store(out, res)
    return out


def _ref_aavgb(gy, *, input_size):
    out = np.zeros(gy.shape[:2] + tuple(input_size))
    oh, ow = gy.shape[2:]
    for i, (hs, he) in enumerate(_adaptive_windows(input_size[0], oh)):
        for j, (ws, we) in enumerate(_adaptive_windows(input_size[1], ow)):
            out[:, :, hs:he, ws:we] += gy[:, :, i:i + 1, j:j + 1] / ((he - hs) * (we - ws))
    return out.astype(gy.dtype)


def _amax_impl(outs, x, *, output_size):
    out, idx = outs
    if out.size == 0:
        return outs
    xf = _f32(x)
    res = out if out.dtype == xf.dtype else np.empty(out.shape, xf.dtype)
    _kp.adaptive_max_pool2d(_planes(xf), _planes(res), _planes(idx))
    _store(out, res)
    return outs


def _ref_amax(x, *, output_size):
    n, c, h, w = x.shape
    out = np.empty((n, c) + tuple(output_size), x.dtype)
    idx = np.empty((n, c) + tuple(output_size), np.int64)
    for i, (hs, he) in enumerate(_adaptive_windows(h, output_size[0])):
        for j, (ws, we) in enumerate(_adaptive_windows(w, output_size[1])):
            best = np.full((n, c), -np.inf, x.dtype)
            bi = np.full((n, c), hs * w + ws, np.int64)
            for hh in range(hs, he):
                for ww in range(ws, we):
                    v = x[:, :, hh, ww]
                    upd = (v > best) | np.isnan(v)
                    best = np.where(upd, v, best)
                    bi = np.where(upd, hh * w + ww, bi)
            out[:, :, i, j] = best
            idx[:, :, i, j] = bi
    return out, idx


register(OpDef("adaptive_avg_pool2d", shape_rule=_adaptive_shape_for("adaptive_avg_pool2d"),
               dtype_rule=_pool_float("adaptive_avg_pool2d"), reference=_ref_aavg, impl={"cpu": _aavg_impl},
               attrs=(("output_size", None),), tags=frozenset({"nn", "pool"}),
               doc="2-d adaptive average pooling of (N, C, H, W) to output_size"))
register(OpDef("adaptive_avg_pool2d_backward", shape_rule=_aavgb_shape,
               dtype_rule=_pool_float("adaptive_avg_pool2d"), reference=_ref_aavgb, impl={"cpu": _aavgb_impl},
               attrs=(("input_size", None),), tags=frozenset({"nn", "pool"}),
               doc="gradient of adaptive_avg_pool2d w.r.t. its input (its adjoint)"))
register(OpDef("adaptive_max_pool2d", shape_rule=_adaptive_shape_for("adaptive_max_pool2d"),
               dtype_rule=lambda x, **a: (_float_dtype("adaptive_max_pool2d", x), D.int64), reference=_ref_amax,
               impl={"cpu": _amax_impl}, attrs=(("output_size", None),), nout=2, differentiable=(0,),
               tags=frozenset({"nn", "pool"}),
               doc="2-d adaptive max pooling of (N, C, H, W): values and int64 flat indices into each plane"))


# ---------------------------------------------------------------------------------------------------------------
# Gradient rules: written with the table's ops, so backward can be recorded (create_graph) and traced.
# ---------------------------------------------------------------------------------------------------------------
from ..autograd._vjp import call as _c, reduce_sum as _reduce_sum, register_vjps as _register_vjps  # noqa: E402
from ..autograd._vjp import saves as _saves  # noqa: E402


def _bias_grad(g):
    """sum of g over (N, *spatial): the trailing (contiguous) dims first, then the batch."""
    if g.ndim > 2:
        g = _reduce_sum(g, list(range(2, g.ndim)))
    return _reduce_sum(g, [0])


def _input_size(x):
    return tuple(x.shape)


def _convT_output_padding(in_size, out_spatial, w_spatial, stride, padding, dilation):
    """output_padding that makes conv_transpose of the conv output come back to the conv input size."""
    return tuple(n - conv_transpose_out_size(o, k, s, p, d, 0)
                 for n, o, k, s, p, d in zip(in_size, out_spatial, w_spatial, stride, padding, dilation))


@_saves(0, 1)
def _conv_vjp(ctx, g):
    with _workspace():
        x, w = ctx.inputs[:2]
        a = ctx.attrs
        st, pd, dl, gr = a["stride"], a["padding"], a["dilation"], a["groups"]
        needs = ctx.needs_input_grad
        gx = gw = gb = None
        if needs[0]:
            op = _convT_output_padding(x.shape[2:], g.shape[2:], w.shape[2:], st, pd, dl)
            gx = _c("conv_transpose", g, w, stride=st, padding=pd, output_padding=op, dilation=dl, groups=gr)
        if needs[1]:
            gw = _c("convolution_weight_grad", x, g, weight_size=tuple(w.shape), stride=st, padding=pd, dilation=dl,
                    groups=gr)
        if len(needs) > 2 and needs[2]:
            gb = _bias_grad(g)
        return (gx, gw) if len(needs) == 2 else (gx, gw, gb)


@_saves(0, 1)
def _convT_vjp(ctx, g):
    with _workspace():
        x, w = ctx.inputs[:2]
        a = ctx.attrs
        st, pd, dl, gr = a["stride"], a["padding"], a["dilation"], a["groups"]
        needs = ctx.needs_input_grad
        gx = gw = gb = None
        if needs[0]:
            gx = _c("convolution", g, w, stride=st, padding=pd, dilation=dl, groups=gr)
        if needs[1]:
            gw = _c("convolution_weight_grad", g, x, weight_size=tuple(w.shape), stride=st, padding=pd, dilation=dl,
                    groups=gr)
        if len(needs) > 2 and needs[2]:
            gb = _bias_grad(g)
        return (gx, gw) if len(needs) == 2 else (gx, gw, gb)


@_saves(0, 1)
def _wgrad_vjp(ctx, gg):
    """d/dx <gg, wgrad(x, gy)> = conv_transpose(gy, gg); d/dgy = convolution(x, gg)."""
    with _workspace():
        x, gy = ctx.inputs
        a = ctx.attrs
        st, pd, dl, gr = a["stride"], a["padding"], a["dilation"], a["groups"]
        nx, ng = ctx.needs_input_grad
        gx = ggy = None
        if nx:
            op = _convT_output_padding(x.shape[2:], gy.shape[2:], gg.shape[2:], st, pd, dl)
            gx = _c("conv_transpose", gy, gg, stride=st, padding=pd, output_padding=op, dilation=dl, groups=gr)
        if ng:
            ggy = _c("convolution", x, gg, stride=st, padding=pd, dilation=dl, groups=gr)
        return gx, ggy


@_saves(output=True)
def _maxpool_vjp(ctx, g, gi=None):
    idx = ctx.outputs[1]
    x = ctx.inputs[0]
    return (_c("max_pool2d_backward", g, idx, input_size=tuple(x.shape[2:])),)


@_saves(1)
def _mpb_vjp(ctx, gg):
    return _c("max_pool2d_gather", gg, ctx.inputs[1]), None


@_saves(1)
def _mpg_vjp(ctx, g):
    gg, idx = ctx.inputs
    return _c("max_pool2d_backward", g, idx, input_size=tuple(gg.shape[2:])), None


@_saves()
def _avg_vjp(ctx, g):
    x = ctx.inputs[0]
    return (_c("avg_pool2d_backward", g, input_size=tuple(x.shape[2:]), **ctx.attrs),)


@_saves()
def _avgb_vjp(ctx, gg):
    a = dict(ctx.attrs)
    a.pop("input_size")
    return (_c("avg_pool2d", gg, **a),)


@_saves()
def _aavg_vjp(ctx, g):
    return (_c("adaptive_avg_pool2d_backward", g, input_size=tuple(ctx.inputs[0].shape[2:])),)


@_saves()
def _aavgb_vjp(ctx, gg):
    gy = ctx.inputs[0]
    return (_c("adaptive_avg_pool2d", gg, output_size=tuple(gy.shape[2:])),)


VJPS = {
    "convolution": _conv_vjp,
    "conv_transpose": _convT_vjp,
    "convolution_weight_grad": _wgrad_vjp,
    "max_pool2d_with_indices": _maxpool_vjp,
    "max_pool2d_backward": _mpb_vjp,
    "max_pool2d_gather": _mpg_vjp,
    "avg_pool2d": _avg_vjp,
    "avg_pool2d_backward": _avgb_vjp,
    "adaptive_avg_pool2d": _aavg_vjp,
    "adaptive_avg_pool2d_backward": _aavgb_vjp,
    "adaptive_max_pool2d": _maxpool_vjp,
}

_register_vjps(VJPS)

# impl["cuda"] of these records: jitorch/ops/_cuda.py (kernels in kernels/cuda/nn.py)
from ._cuda import register_nn as _register_cuda  # noqa: E402

_register_cuda()

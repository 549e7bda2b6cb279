"""matmul: the one matrix-product primitive (mm, bmm, mv, dot, addmm, linear and einsum are
compositions of it). It calls NumPy's BLAS: numba's own np.dot needs SciPy, and a hand-written
numba GEMM stays 3-4x behind BLAS on this machine (research/feasibility.md section 5)."""
from __future__ import annotations

import numpy as np

from .. import _dtype as D
from .._threads import use_blas_threads as _use_blas_threads
from ..backends import cpu as _cpu
from ..kernels._entry import entry_point as _entry_point
from ..kernels.small import MAX_FLOPS as _MM_SMALL_FLOPS, mm_small as _mm_small, mm_small_out as _mm_small_out
from .registry import OpDef, register
from .rules import broadcast_shapes


def _matmul_shape(a, b):
    if len(a) == 0 or len(b) == 0:
        raise RuntimeError(f"matmul: both arguments to matmul need to be at least 1D, but they are {len(a)}D and {len(b)}D")
    ka = a[-1]
    kb = b[0] if len(b) == 1 else b[-2]
    if ka != kb:
        if len(a) == 1 and len(b) == 1:
            raise RuntimeError(f"dot : inconsistent tensor size, expected tensor [{a[0]}] and src [{b[0]}] to have the "
                               "same number of elements, but got {a[0]} and {b[0]} elements respectively")
        la = f"{a[-2] if len(a) > 1 else 1}x{ka}"
        lb = f"{kb}x{b[-1] if len(b) > 1 else 1}"
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({la} and {lb}) (matmul of shapes {list(a)} and {list(b)}); "
            "the last dim of the first must equal the second-to-last dim of the second")
    if len(a) == 1 and len(b) == 1:
        return ()
    if len(b) == 1:
        return tuple(a[:-1])
    if len(a) == 1:
        return tuple(b[:-2]) + (b[-1],)
    batch = broadcast_shapes("matmul", tuple(a[:-2]), tuple(b[:-2]))
    return tuple(batch) + (a[-2], b[-1])


def _matmul_dtype(a, b):
    if a.dtype is not b.dtype:
        raise RuntimeError(
            f"matmul: expected both arguments to have the same dtype, but got {a.dtype.name} and {b.dtype.name}; "
            "convert one with .to(other.dtype)")
    if a.dtype is D.bool_:
        raise RuntimeError("matmul: \"addmm_impl_cpu_\" not implemented for 'Bool'")
    return a.dtype


def _matmul_impl(out, a, b):
    k = a.shape[-1]
    flops = 2 * out.size * k
    if flops <= _MM_SMALL_FLOPS and k and a.ndim == 2 and b.ndim == 2 and a.dtype.char != "e":
        _mm_small(a, b, out)  # a few hundred multiply-adds: np.matmul's fixed cost would dominate
        return out
    _use_blas_threads(flops)
    if a.dtype == np.float16:  # no float16 BLAS: compute in float32, round once
        a32, b32 = _cpu.to_f32(a), _cpu.to_f32(b)
        tmp = np.empty(out.shape, np.float32)
        np.matmul(a32, b32, out=tmp)
        _cpu.from_f32_into(tmp, out)
        return out
    np.matmul(a, b, out=out)
    return out


def _matmul_plan(shapes, dtypes, contiguous):
    """Dispatch plan (registry.OpDef.plan) for the small-product path of _matmul_impl: C-contiguous 2-D
    operands (one dtype, not float16; the rules have passed) of at most MAX_FLOPS run the compiled entry
    point of kernels.small.mm_small_out directly (kernels._entry; the plan key fixes the dtypes, ndims and
    C-contiguity it needs). Anything else: None, _matmul_impl runs."""
    (sa, sb), (da, db) = shapes, dtypes
    if len(sa) != 2 or len(sb) != 2 or not (contiguous[0] and contiguous[1]) or da != db or da.char == "e":
        return None
    (m, k), n = sa, sb[1]
    if not k or 2 * m * n * k > _MM_SMALL_FLOPS:
        return None
    return _entry_point(_mm_small_out, np.empty((m, n), da), np.empty(sa, da), np.empty(sb, db))


register(OpDef("matmul", shape_rule=_matmul_shape, dtype_rule=_matmul_dtype, reference=np.matmul,
               impl={"cpu": _matmul_impl}, tags=frozenset({"linalg", "contraction"}), plan=_matmul_plan,
               doc="torch.matmul: dot (1-D x 1-D), mv, mm and broadcast batched products"))


# ---------------------------------------------------------------------------------------------------------------
# Gradient rules (owned by autograd): rule(ctx, grad) -> (grad_a, grad_b), written with jitorch ops.
# 1-D operands are promoted to matrices (as matmul does) and the gradients reduced back to their shapes;
# a batched input times a matrix (linear layers) folds the batch into one product for the matrix's gradient.
# ---------------------------------------------------------------------------------------------------------------
from ..autograd._vjp import call as _c, register_vjps as _register_vjps, saves as _saves  # noqa: E402
from ..autograd._vjp import sum_to as _sum_to  # noqa: E402


def _mT(x):
    nd = x.ndim
    return _c("permute", x, dims=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _transposed(x):
    """x's array is the transpose of a C-contiguous matrix (F-contiguous and not also C-contiguous)."""
    d = getattr(x, "_data", None)
    return isinstance(d, np.ndarray) and d.flags.f_contiguous and not d.flags.c_contiguous


def _reshape(x, shape):
    return x.reshape(shape)


@_saves(0, 1)
def _matmul_vjp(ctx, g):
    a, b = ctx.inputs
    na, nb = ctx.needs_input_grad
    ad, bd = a.ndim, b.ndim
    if ad == 1 and bd == 1:  # dot
        return (_c("mul", g, b) if na else None), (_c("mul", g, a) if nb else None)
    a2 = _c("unsqueeze", a, dim=0) if ad == 1 else a
    b2 = _c("unsqueeze", b, dim=1) if bd == 1 else b
    g2 = g
    if ad == 1:
        g2 = _c("unsqueeze", g2, dim=g2.ndim - 1)
    if bd == 1:
        g2 = _c("unsqueeze", g2, dim=g2.ndim)
    ga = gb = None
    if na:
        ga = _sum_to(_c("matmul", g2, _mT(b2)), tuple(a2.shape))
        if ad == 1:
            ga = _reshape(ga, tuple(a.shape))
    if nb:
        if b2.ndim == 2 and _transposed(b2):
            # b is a transposed view (linear's x @ w.T): compute (g^T a)^T, so that the gradient arrives in
            # b's layout and its transpose back to the weight is C-contiguous (no copy at accumulation)
            k, m = a2.shape[-1], g2.shape[-1]
            a_ = a2 if a2.ndim == 2 else _reshape(a2, (-1, k))
            g_ = g2 if g2.ndim == 2 else _reshape(g2, (-1, m))
            gb = _mT(_c("matmul", _mT(g_), a_))
        elif b2.ndim == 2 and a2.ndim > 2:
            k, m = a2.shape[-1], g2.shape[-1]
            gb = _c("matmul", _mT(_reshape(a2, (-1, k))), _reshape(g2, (-1, m)))
        else:
            gb = _sum_to(_c("matmul", _mT(a2), g2), tuple(b2.shape))
        if bd == 1:
            gb = _reshape(gb, tuple(b.shape))
    return ga, gb


VJPS = {"matmul": _matmul_vjp}

_register_vjps(VJPS)

# impl["cuda"] of these records: jitorch/ops/_cuda.py (kernels in kernels/cuda/matmul.py)
from ._cuda import register_linalg as _register_cuda  # noqa: E402

_register_cuda()

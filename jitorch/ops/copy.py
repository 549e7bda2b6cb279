"""Copies and dtype conversions: clone, to_dtype and the in-place copy (copy_).

All run the strided copy kernel (``kernels.shape.copy_nd``) through the cpu backend, which
converts dtypes on store (float16 through the bit-conversion kernels).
"""
from __future__ import annotations

import numpy as np

from ..backends import cpu as _cpu
from .registry import OpDef, register
from .rules import broadcast_shapes


def _clone_impl(out, x):
    _cpu.copy_into(out, x)
    return out


def _to_dtype_impl(out, x, dtype):
    _cpu.copy_into(out, x)
    return out


def _copy_impl(out, target, src):
    _cpu.copy_into(out, src)
    return out


def _copy_impl_cuda(out, *inputs, **attrs):
    # clone(x), to_dtype(x), copy(target, src): the source is the last input
    from ..backends import cuda as _cuda
    _cuda.copy_into(out, inputs[-1])
    return out


def _copy_shape(target, src):
    shape = broadcast_shapes("copy_", target, src)
    if tuple(shape) != tuple(target):
        raise RuntimeError(f"copy_: source of shape {list(src)} can't be broadcast to the target shape {list(target)}")
    return shape


register(OpDef("clone", shape_rule=lambda s: s, dtype_rule=lambda x: x.dtype, reference=lambda x: x.copy(),
               impl={"cpu": _clone_impl, "cuda": _copy_impl_cuda}, tags=frozenset({"copy"}), doc="a new contiguous copy"))
register(OpDef("to_dtype", shape_rule=lambda s, dtype: s, dtype_rule=lambda x, dtype: dtype,
               reference=lambda x, dtype: x.astype(dtype.np), impl={"cpu": _to_dtype_impl, "cuda": _copy_impl_cuda}, attrs=(("dtype", None),),
               tags=frozenset({"copy", "elementwise_cast"}), doc="convert to dtype (to bool: x != 0; float to int truncates)"))
register(OpDef("copy", shape_rule=_copy_shape, dtype_rule=lambda target, src: target.dtype,
               reference=lambda target, src: np.broadcast_to(src, target.shape).astype(target.dtype),
               impl={"cpu": _copy_impl, "cuda": _copy_impl_cuda},
               tags=frozenset({"copy", "inplace_only"}), doc="target[...] = src (broadcast, converted)"))


# ---------------------------------------------------------------------------------------------------------------
# Gradient rules (owned by autograd): rule(ctx, grad) -> one gradient per input, written with jitorch ops.
# ---------------------------------------------------------------------------------------------------------------
from ..autograd._vjp import call as _c, register_vjps as _register_vjps, saves as _saves  # noqa: E402
from ..autograd._vjp import sum_to as _sum_to, zeros_like_grad as _zeros_like  # noqa: E402


@_saves()
def _clone_vjp(ctx, g):
    return (g,)


@_saves()
def _to_dtype_vjp(ctx, g):
    x = ctx.inputs[0]
    return (_c("to_dtype", g, dtype=x.dtype) if g.dtype is not x.dtype else g,)


@_saves()
def _copy_vjp(ctx, g):
    """copy_(target, src): the old target value is overwritten (zero gradient); src gets g, summed over
    broadcast dims and converted to its dtype."""
    target, src = ctx.inputs
    nt, ns = ctx.needs_input_grad
    gs = None
    if ns:
        gs = _sum_to(g, src.shape)
        if gs.dtype is not src.dtype:
            gs = _c("to_dtype", gs, dtype=src.dtype)
    return (_zeros_like(target) if nt else None), gs


VJPS = {"clone": _clone_vjp, "to_dtype": _to_dtype_vjp, "copy": _copy_vjp}

_register_vjps(VJPS)

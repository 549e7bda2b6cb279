"""cat: the one joining primitive (stack, hstack, vstack, dstack are compositions of it)."""
from __future__ import annotations

import numpy as np

from .. import _dtype as D
from ..backends import cpu as _cpu
from .registry import OpDef, register
from .rules import normalize_dim


def _cat_shape(*shapes, dim=0):
    # torch skips 1-D empty tensors (legacy behaviour) when concatenating
    live = [s for s in shapes if not (len(s) == 1 and s[0] == 0)]
    if not live:
        return shapes[0] if shapes else (0,)
    ref = live[0]
    if len(ref) == 0:
        raise RuntimeError("cat: zero-dimensional tensor cannot be concatenated; use stack or unsqueeze first")
    d = normalize_dim("cat", dim, len(ref))
    total = 0
    for k, s in enumerate(live):
        if len(s) != len(ref):
            raise RuntimeError(
                f"cat: Tensors must have same number of dimensions: got {len(ref)} and {len(s)} "
                f"(shapes {list(ref)} and {list(s)})")
        for i, (a, b) in enumerate(zip(ref, s)):
            if i != d and a != b:
                raise RuntimeError(
                    f"cat: Sizes of tensors must match except in dimension {d}. Expected size {a} but got size {b} "
                    f"for tensor number {k} in the list (shapes {list(ref)} and {list(s)})")
        total += s[d]
    return tuple(ref[:d]) + (total,) + tuple(ref[d + 1:])


def _cat_dtype(*tensors, dim=0):
    out = tensors[0].dtype
    for t in tensors[1:]:
        out = D.promote_types(out, t.dtype)
    return out


def _cat_impl(out, *arrays, dim=0):
    live = [a for a in arrays if not (a.ndim == 1 and a.shape[0] == 0)]
    if not live:
        return out
    d = normalize_dim("cat", dim, out.ndim)
    start = 0
    for a in live:
        n = a.shape[d]
        if n:
            idx = (slice(None),) * d + (slice(start, start + n),)
            _cpu.copy_into(out[idx], a)
        start += n
    return out


def _cat_impl_cuda(out, *arrays, dim=0):
    # the same slicing as on cpu: CudaArray slices are views, copy_into runs the strided copy kernel
    from ..backends import cuda as _cuda
    live = [a for a in arrays if not (a.ndim == 1 and a.shape[0] == 0)]
    if not live:
        return out
    d = normalize_dim("cat", dim, out.ndim)
    start = 0
    for a in live:
        n = a.shape[d]
        if n:
            _cuda.copy_into(out[(slice(None),) * d + (slice(start, start + n),)], a)
        start += n
    return out


register(OpDef("cat", shape_rule=_cat_shape, dtype_rule=_cat_dtype,
               reference=lambda *arrays, dim=0: np.concatenate([a for a in arrays if a.size or a.ndim != 1], axis=dim),
               impl={"cpu": _cat_impl, "cuda": _cat_impl_cuda}, attrs=(("dim", 0),), tags=frozenset({"join"}),
               doc="concatenate along dim (shapes equal elsewhere; dtypes promoted)"))


# ---------------------------------------------------------------------------------------------------------------
# Gradient rules (owned by autograd): rule(ctx, grad) -> one gradient per input, written with jitorch ops.
# ---------------------------------------------------------------------------------------------------------------
from ..autograd._vjp import call as _c, register_vjps as _register_vjps, saves as _saves  # noqa: E402


@_saves()
def _cat_vjp(ctx, g):
    """Each input gets its slice of g along dim (legacy empty 1-D inputs get nothing)."""
    d = normalize_dim("cat", ctx.attrs.get("dim", 0), g.ndim)
    out = []
    start = 0
    for x, need in zip(ctx.inputs, ctx.needs_input_grad):
        shape = tuple(x.shape)
        if len(shape) == 1 and shape[0] == 0 and g.ndim != 1:
            out.append(None)
            continue
        n = shape[d]
        out.append(_c("slice", g, dim=d, start=start, stop=start + n, step=1) if need else None)
        start += n
    return tuple(out)


VJPS = {"cat": _cat_vjp}

_register_vjps(VJPS)

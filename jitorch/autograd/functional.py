"""``jitorch.autograd.functional``: vjp, jvp, jacobian, hessian, vhp, hvp (torch's signatures), all
built on reverse mode: a jvp is the vjp of a vjp (the "double-backward trick"), so it needs the
gradient rules to be differentiable, which they are (written with jitorch ops)."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .engine import grad as _grad
from .grad_mode import enable_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]


def _tup(x):
    return (x,) if isinstance(x, Tensor) else tuple(x)


def _prep(inputs, create_graph):
    out = []
    for x in inputs:
        t = x if create_graph and x.requires_grad else x.detach()
        if not t.requires_grad:
            t = t.detach()
            t.requires_grad = True
        out.append(t)
    return tuple(out)


def _zeros_like(t):
    return Tensor._wrap(np.zeros(t._data.shape, t._data.dtype))


def _fill_none(grads, like):
    return tuple(_zeros_like(x) if g is None else g for g, x in zip(grads, like))


def _maybe_detach(ts, create_graph):
    return tuple(t if create_graph else t.detach() for t in ts)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J)."""
    single_in = isinstance(inputs, Tensor)
    with enable_grad():
        ins = _prep(_tup(inputs), create_graph)
        outs = func(*ins)
        single_out = isinstance(outs, Tensor)
        outs_t = _tup(outs)
        diff = [o for o in outs_t if o.requires_grad]
        vs = None if v is None else _tup(v)
        if diff:
            gs = _grad(outs_t, ins, vs, create_graph=create_graph, allow_unused=True)
        else:
            gs = (None,) * len(ins)
    gs = _maybe_detach(_fill_none(gs, ins), create_graph)
    outs_t = _maybe_detach(outs_t, create_graph)
    return (outs_t[0] if single_out else outs_t), (gs[0] if single_in else gs)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v) by differentiating a vjp w.r.t. its cotangent."""
    single_in = isinstance(inputs, Tensor)
    with enable_grad():
        ins = _prep(_tup(inputs), create_graph)
        outs = func(*ins)
        single_out = isinstance(outs, Tensor)
        outs_t = _tup(outs)
        us = tuple(Tensor._wrap(np.zeros(o._data.shape, o._data.dtype)).requires_grad_() for o in outs_t)
        gs = _grad(outs_t, ins, us, create_graph=True, allow_unused=True)
        pairs = [(g, vv) for g, vv in zip(gs, _tup(v) if v is not None else tuple(_ones(i) for i in ins))
                 if g is not None and g.requires_grad]
        if pairs:
            jv = _grad([p[0] for p in pairs], us, [p[1] for p in pairs], create_graph=create_graph, allow_unused=True)
        else:
            jv = (None,) * len(us)
    jv = _maybe_detach(_fill_none(jv, outs_t), create_graph)
    outs_t = _maybe_detach(outs_t, create_graph)
    _ = single_in
    return (outs_t[0] if single_out else outs_t), (jv[0] if single_out else jv)


def _ones(t):
    return Tensor._wrap(np.ones(t._data.shape, t._data.dtype))


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """d func / d inputs, one row of vjps per output element; shaped out.shape + in.shape."""
    single_in = isinstance(inputs, Tensor)
    with enable_grad():
        ins = _prep(_tup(inputs), create_graph)
        outs = func(*ins)
        single_out = isinstance(outs, Tensor)
        outs_t = _tup(outs)
        result = []
        for o in outs_t:
            rows = [[] for _ in ins]
            n = o._data.size
            for k in range(n):
                e = np.zeros(o._data.shape, o._data.dtype)
                e.reshape(-1)[k] = 1
                if o.requires_grad:
                    gs = _grad((o,), ins, (Tensor._wrap(e),), retain_graph=True, create_graph=create_graph,
                               allow_unused=True)
                else:
                    gs = (None,) * len(ins)
                for i, (g, x) in enumerate(zip(gs, ins)):
                    rows[i].append(_zeros_like(x) if g is None else g)
            per_in = []
            for i, x in enumerate(ins):
                from .._join import stack
                j = stack(rows[i], 0) if rows[i] else _zeros_like(x).reshape((0,) + tuple(x.shape))
                j = j.reshape(tuple(o.shape) + tuple(x.shape))
                per_in.append(j if create_graph else j.detach())
            result.append(per_in[0] if single_in else tuple(per_in))
    return result[0] if single_out else tuple(result)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar function."""
    single_in = isinstance(inputs, Tensor)

    def grad_fn(*xs):
        with enable_grad():
            out = func(*xs)
            gs = _grad((out,), xs, create_graph=True, allow_unused=True)
        gs = _fill_none(gs, xs)
        return gs[0] if single_in else gs
    return jacobian(grad_fn, inputs, create_graph=create_graph)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H)."""
    single_in = isinstance(inputs, Tensor)
    with enable_grad():
        ins = _prep(_tup(inputs), True)
        out = func(*ins)
        gs = _grad((out,), ins, create_graph=True, allow_unused=True)
        pairs = [(g, vv) for g, vv in zip(gs, _tup(v)) if g is not None and g.requires_grad]
        if pairs:
            hv = _grad([p[0] for p in pairs], ins, [p[1] for p in pairs], create_graph=create_graph, allow_unused=True)
        else:
            hv = (None,) * len(ins)
    hv = _maybe_detach(_fill_none(hv, ins), create_graph)
    out = out if create_graph else out.detach()
    return out, (hv[0] if single_in else hv)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v); equal to vhp for the symmetric Hessians of twice-differentiable functions."""
    return vhp(func, inputs, v, create_graph, strict)

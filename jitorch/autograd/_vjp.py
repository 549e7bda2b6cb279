"""The kit gradient rules are written with: every helper here computes with jitorch ops (through
``_dispatch.call``), so a rule's own computation is recorded under ``create_graph`` (higher-order
derivatives) and can be traced like any other code.

A rule is ``rule(ctx, *grads) -> tuple`` (one entry per op input; see :mod:`jitorch.autograd.graph`)
and declares what it needs saved with :func:`saves`. Op modules attach their rules with
:func:`register_vjps` in a ``VJPS`` section at their end.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .. import _dtype as D
from .._dispatch import call, call_inplace
from ..ops.registry import OPS
from ..tensor import Tensor
from .graph import TensorMeta, zeros_expanded

__all__ = ["saves", "register_vjps", "sum_to", "reduce_sum", "zeros", "zeros_like_grad", "scatter_view",
           "as_strided_backward", "digamma", "span", "call", "call_inplace", "Tensor", "TensorMeta"]


def saves(*inputs, output=False):
    """Declare what a rule reads: ``@saves(0, 1)`` keeps inputs 0 and 1 (version-checked at backward),
    ``@saves(output=True)`` the outputs. Everything else is kept as :class:`TensorMeta` only."""
    def deco(rule):
        rule.save_inputs = tuple(inputs)
        rule.save_outputs = bool(output)
        return rule
    return deco


NONDIFF_TAG = "nondifferentiable"


def register_vjps(vjps, nondifferentiable=()):
    """Attach ``{op name: rule}`` to the table records and tag the listed ops non-differentiable."""
    for name, rule in vjps.items():
        OPS[name].vjp = rule
    for name in nondifferentiable:
        op = OPS[name]
        op.tags = frozenset(op.tags) | {NONDIFF_TAG}


# ---------------------------------------------------------------------------------------------- shapes

def _shape(x):
    return x._data.shape if isinstance(x, Tensor) else tuple(x.shape)


def reduce_sum(g, dims, keepdim=False):
    """Sum of ``g`` over ``dims`` with jitorch ops (the table's ``sum`` when it exists)."""
    dims = tuple(sorted(dims))
    if not dims:
        return g
    if "sum" in OPS:
        return call("sum", g, dim=dims, keepdim=keepdim)
    return _halving_sum(g, dims, keepdim)


def _halving_sum(g, dims, keepdim):
    x = g
    for d in dims:
        n = x._data.shape[d]
        if n == 0:
            shape = list(x._data.shape)
            shape[d] = 1
            x = zeros(shape, x.dtype, x._device)
        while n > 1:
            h = n // 2
            s = call("add", call("slice", x, dim=d, start=0, stop=h, step=1),
                     call("slice", x, dim=d, start=h, stop=2 * h, step=1), alpha=1)
            if n % 2:
                s = call("cat", s, call("slice", x, dim=d, start=2 * h, stop=n, step=1), dim=d)
            x = s
            n = x._data.shape[d]
    if not keepdim:
        shape = tuple(n for i, n in enumerate(x._data.shape) if i not in dims)
        x = call("view", x if x._data.flags.c_contiguous else call("clone", x), size=shape)
    return x


def sum_to(g, shape):
    """Sum ``g`` down to ``shape`` (the inverse of broadcasting ``shape`` to ``g.shape``)."""
    shape = tuple(shape)
    gs = g._data.shape
    if gs == shape:
        return g
    lead = len(gs) - len(shape)
    if lead < 0:
        raise RuntimeError(f"sum_to: cannot reduce a gradient of shape {list(gs)} to {list(shape)}")
    dims = list(range(lead))
    for i, n in enumerate(shape):
        m = gs[i + lead]
        if n == 1 and m != 1:
            dims.append(i + lead)
        elif n != m:
            raise RuntimeError(f"sum_to: cannot reduce a gradient of shape {list(gs)} to {list(shape)}")
    r = reduce_sum(g, dims, keepdim=True) if dims else g
    if r._data.shape != shape:
        r = call("view", r if r._data.flags.c_contiguous else call("clone", r), size=shape)
    return r


def zeros(shape, dtype, device=None):
    """A new zero tensor (contiguous, writable) on ``device`` (default cpu)."""
    from .._creation import zeros as _zeros
    return _zeros(tuple(shape), dtype=dtype, device=device)


def zeros_like_grad(x):
    """Zero gradient for input ``x`` (Tensor or TensorMeta): a stride-0 view, nothing allocated."""
    return zeros_expanded(_shape(x), x._data.dtype if isinstance(x, Tensor) else x.np_dtype, x.device)


def scatter_view(shape, dtype, view_op, attrs, g):
    """Gradient of a view op: zeros of the input's shape with ``g`` written into the viewed region."""
    z = zeros(shape, dtype, g._device)
    call_inplace("copy", call(view_op, z, **attrs), g)
    return z


# ---------------------------------------------------------------------------------------------- as_strided

def span(shape, strides):
    """Number of storage elements a (shape, strides) view reaches from its first element."""
    if any(n == 0 for n in shape):
        return 0
    return 1 + sum((n - 1) * s for n, s in zip(shape, strides))


def non_overlapping(shape, strides):
    """True when no two elements of the view share memory (a sufficient test)."""
    dims = sorted((s, n) for n, s in zip(shape, strides) if n > 1)
    extent = 0
    for s, n in dims:
        if s <= extent:
            return False
        extent += (n - 1) * s
    return True


def _loop_dims(size, stride):
    """The cheapest set of dims to iterate in Python so that each remaining slice is non-overlapping."""
    nd = len(size)
    best = None
    for r in range(nd + 1):
        for combo in itertools.combinations(range(nd), r):
            rest = [d for d in range(nd) if d not in combo]
            if non_overlapping([size[d] for d in rest], [stride[d] for d in rest]):
                cost = math.prod(size[d] for d in combo)
                if best is None or cost < best[0]:
                    best = (cost, combo)
        if best is not None and r > 0 and best[0] <= 1:
            break
    return best[1]


def _storage_offsets(shape, strides):
    idx = np.zeros(shape, np.int64)
    for d, (n, s) in enumerate(zip(shape, strides)):
        sh = [1] * len(shape)
        sh[d] = n
        idx = idx + (np.arange(n, dtype=np.int64) * s).reshape(sh)
    return idx


def as_strided_backward(g, in_shape, in_strides, dtype, size, stride, offset):
    """Gradient of ``as_strided(x, size, stride, offset)`` for an input of geometry (in_shape, in_strides);
    offsets in elements relative to the input's first element. Overlapping outputs accumulate;
    overlapping inputs share their storage gradient evenly (torch's rule)."""
    size, stride, in_shape, in_strides = tuple(size), tuple(stride), tuple(in_shape), tuple(in_strides)
    lo = min(0, offset)
    hi = max(span(in_shape, in_strides), offset + span(size, stride))
    shift = -lo
    buf = zeros((max(hi - lo, 1),), dtype, g._device)
    if math.prod(size):
        if non_overlapping(size, stride):
            call_inplace("copy", call("as_strided", buf, size=size, stride=stride, storage_offset=offset + shift), g)
        else:
            loop = _loop_dims(size, stride)
            rest = [d for d in range(len(size)) if d not in loop]
            rsize, rstride = tuple(size[d] for d in rest), tuple(stride[d] for d in rest)
            for idx in itertools.product(*[range(size[d]) for d in loop]):
                off = offset + shift + sum(i * stride[d] for i, d in zip(idx, loop))
                gs = g
                for i, d in sorted(zip(idx, loop), key=lambda p: -p[1]):
                    gs = call("select", gs, dim=d, index=i)
                region = call("as_strided", buf, size=rsize, stride=rstride, storage_offset=off)
                call_inplace("add", region, gs, alpha=1)
    gi = call("as_strided", buf, size=in_shape, stride=in_strides, storage_offset=shift)
    if not non_overlapping(in_shape, in_strides) and math.prod(in_shape):
        offs = _storage_offsets(in_shape, in_strides)
        counts = np.bincount(offs.ravel())[offs]
        if counts.max() > 1:
            gi = call("div", gi, Tensor._wrap(counts.astype(dtype.np)))
    return gi


# ---------------------------------------------------------------------------------------------- special functions

def digamma(x):
    """psi(x) = d/dx lgamma(x), composed of jitorch ops (so it differentiates again): recurrence to
    x >= 6.5, the asymptotic series there, and the reflection formula below 0.5."""
    neg = call("lt", x, 0.5)
    xr = call("where", neg, call("sub", 1.0, x, alpha=1), x)
    acc = None
    y = xr
    for _ in range(6):
        r = call("reciprocal", y)
        acc = r if acc is None else call("add", acc, r, alpha=1)
        y = call("add", y, 1.0, alpha=1)
    y2 = call("reciprocal", call("mul", y, y))
    series = call("mul", y2, 1.0 / 132)
    for c in (1.0 / 240, 1.0 / 252, 1.0 / 120, 1.0 / 12):
        series = call("mul", y2, call("sub", c, series, alpha=1))
    psi = call("sub", call("sub", call("log", y), call("div", 0.5, y), alpha=1), series, alpha=1)
    psi = call("sub", psi, acc, alpha=1)
    xs = call("where", neg, x, 0.25)
    refl = call("sub", psi, call("div", math.pi, call("tan", call("mul", xs, math.pi))), alpha=1)
    return call("where", neg, refl, psi)


_ = D

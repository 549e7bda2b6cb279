"""Every op of the table: a VJP or an explicit non-differentiable mark, and every VJP checked.

- ``test_every_op_accounted_for``: each op in ``jitorch.ops.registry.OPS`` has a ``vjp`` or is tagged
  ``nondifferentiable``, the tagged ones are exactly :data:`NON_DIFFERENTIABLE` below, and every op
  with a vjp has a case in :data:`CASES`.
- ``test_gradcheck``: float64 central finite differences (``jitorch.autograd.gradcheck``) on several
  shapes per op, incl. broadcast, non-contiguous and 0-d inputs and Python scalar operands.
- ``test_gradgradcheck``: second derivatives of the smooth ops (``create_graph`` backward).
- ``test_against_torch``: the same gradients from torch, when torch is installed (skipped otherwise).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import jitorch
from jitorch._dispatch import call, call_inplace
from jitorch.autograd import gradcheck, gradgradcheck
from jitorch.ops.registry import OPS

# every op module registers its records on import: load them all, so the table below is the whole table
import importlib  # noqa: E402
import pkgutil  # noqa: E402

import jitorch.ops  # noqa: E402

for _m in pkgutil.iter_modules(jitorch.ops.__path__):
    importlib.import_module(f"jitorch.ops.{_m.name}")

try:  # optional reference
    import torch
except ImportError:  # pragma: no cover
    torch = None

# ops without a gradient (torch: not differentiable; their outputs are bool/int, or they only read indices)
NON_DIFFERENTIABLE = {
    "uniform", "normal", "randint", "randperm", "bernoulli", "bernoulli_p", "dropout_mask", "exponential",
    "multinomial",
    "nonzero", "unique", "searchsorted",
    "argmax", "argmin", "any", "all", "count_nonzero",
    "bitwise_not", "logical_not", "isnan", "isinf", "isposinf", "isneginf", "isfinite", "signbit",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift",
}
# ops with a zero gradient almost everywhere (torch gives zeros): floor, ceil, round, trunc, sign, rounding divisions
ZERO_GRAD = {"sign", "floor", "ceil", "round", "round_decimals", "trunc", "div_trunc", "div_floor", "fill"}

# ---------------------------------------------------------------------------------------------- inputs

_RNG_SEED = 1234


def _values(rng, shape, domain):
    n = int(np.prod(shape)) if shape else 1
    if domain == "any":        # |x| in [0.2, 1.8], away from 0 (kinks of abs, relu ...)
        v = rng.uniform(0.2, 1.8, n) * rng.choice([-1.0, 1.0], n)
    elif domain == "pos":
        v = rng.uniform(0.5, 2.0, n)
    elif domain == "unit":
        v = rng.uniform(-0.8, 0.8, n)
    elif domain == "gt1":
        v = rng.uniform(1.2, 3.0, n)
    elif domain == "frac":     # away from integers and halves (floor, round ...)
        v = rng.integers(-3, 3, n) + rng.uniform(0.1, 0.4, n) + rng.choice([0.0, 0.5], n)
    elif domain == "clamp":    # away from the +-0.5 clamp bounds and the +-1 hardtanh bounds
        v = rng.choice([-1.4, -0.8, -0.2, 0.2, 0.8, 1.4], n) + rng.uniform(-0.15, 0.15, n)
    else:
        raise ValueError(domain)
    return v.reshape(shape)


def _tensor(arr, layout="contiguous", requires_grad=True):
    arr = np.asarray(arr, np.float64)
    if layout == "noncontig" and arr.ndim >= 2 and arr.shape[0] > 1 and arr.shape[-1] > 1:
        base = np.ascontiguousarray(np.swapaxes(arr, 0, -1))   # a transposed view
        t = jitorch.from_numpy(base).transpose(0, -1).detach()
        assert not t.is_contiguous()
    elif layout == "noncontig" and arr.ndim >= 1:
        big = np.zeros(arr.shape[:-1] + (arr.shape[-1] * 2,))   # every other element of a bigger buffer
        big[..., ::2] = arr
        t = jitorch.from_numpy(big)[..., ::2].detach()
        assert not t.is_contiguous() or arr.shape[-1] == 1
    else:
        t = jitorch.from_numpy(np.array(arr, copy=True))
    return t.requires_grad_(requires_grad)


class Case:
    """One op: ``fn(*inputs)`` built with the op; ``variants`` are lists of (shape, domain, layout) or
    Python scalars; ``torch_fn`` the same computation in torch (None: no torch reference)."""

    def __init__(self, op, fn, variants, smooth=True, torch_fn=None, gc=None):
        self.op, self.fn, self.variants, self.smooth, self.torch_fn = op, fn, variants, smooth, torch_fn
        self.gc = gc or {}

    def build(self, k, rng):
        out = []
        for spec in self.variants[k]:
            if not isinstance(spec, tuple):
                out.append(spec)  # a Python scalar or a non-differentiable tensor maker
                continue
            shape, domain, layout = spec
            out.append(_tensor(_values(rng, shape, domain), layout))
        return [o(rng) if callable(o) else o for o in out]


def _u(name, domain="any", smooth=True, attrs=None, torch_fn=None):
    attrs = attrs or {}
    tf = torch_fn or (lambda x: getattr(torch, name)(x))
    return Case(name, lambda x: call(name, x, **attrs),
                [[((2, 3), domain, "contiguous")], [((2, 3), domain, "noncontig")], [((), domain, "contiguous")]],
                smooth=smooth, torch_fn=tf)


def _b(name, dx="any", dy="any", smooth=True, attrs=None, torch_fn=None, scalar=1.5):
    attrs = attrs or {}
    tf = torch_fn or (lambda x, y: getattr(torch, name)(x, y if isinstance(y, torch.Tensor) else torch.tensor(y)))
    variants = [
        [((2, 3), dx, "contiguous"), ((2, 3), dy, "contiguous")],
        [((2, 3), dx, "noncontig"), ((3,), dy, "contiguous")],       # broadcast + non-contiguous
        [((2, 1), dx, "contiguous"), ((1, 3), dy, "noncontig")],      # both broadcast
        [((), dx, "contiguous"), ((2, 3), dy, "contiguous")],
    ]
    if scalar is not None:
        variants.append([((2, 3), dx, "contiguous"), scalar])
    return Case(name, lambda x, y: call(name, x, y, **attrs), variants, smooth=smooth, torch_fn=tf)


def _cond(rng):
    return jitorch.from_numpy(rng.random((2, 3)) < 0.5)


def _fixed(values, gc=True):
    """An input with exactly these values (zeros, ties). gc=False: not for finite differences (ties)."""
    def make(rng):
        t = _tensor(np.array(values))
        t._gc_ok = gc
        return t
    return make


def _I(values):
    return jitorch.tensor(values, dtype=jitorch.int64)


def _M(values):
    return jitorch.tensor(values, dtype=jitorch.bool)


_AVG = dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=False, count_include_pad=False,
            divisor_override=None)
_POOL_IDX = jitorch.tensor([[[[4, 7], [9, 6]], [[0, 3], [8, 11]]]])  # max positions of 2x2 windows in a 3x4 plane


CASES = [
    _u("exp"), _u("exp2"), _u("expm1"), _u("log", "pos"), _u("log2", "pos"), _u("log10", "pos"),
    _u("log1p", "pos"), _u("sqrt", "pos"), _u("rsqrt", "pos"), _u("sin"), _u("cos"), _u("tan", "unit"),
    _u("asin", "unit"), _u("acos", "unit"), _u("atan"), _u("sinh"), _u("cosh"), _u("tanh"), _u("asinh"),
    _u("acosh", "gt1"), _u("atanh", "unit"), _u("erf"), _u("erfc"), _u("erfinv", "unit"),
    _u("lgamma", "pos"), _u("sigmoid"), _u("reciprocal", "pos"), _u("frac", "frac"), _u("neg"),
    _u("abs", smooth=False), _u("sign", smooth=False), _u("relu", smooth=False),
    _u("floor", "frac", smooth=False), _u("ceil", "frac", smooth=False), _u("round", "frac", smooth=False),
    _u("round_decimals", "frac", smooth=False, attrs={"scale": 1.0}, torch_fn=lambda x: torch.round(x, decimals=0)),
    _u("trunc", "frac", smooth=False), _u("square"),
    _u("nan_to_num", attrs={"nan": 0.0, "posinf": 1e300, "neginf": -1e300}),
    _u("fill", smooth=False, attrs={"value": 0.5}, torch_fn=lambda x: torch.full_like(x, 0.5) + 0 * x),
    _u("leaky_relu", smooth=False, attrs={"negative_slope": 0.1},
       torch_fn=lambda x: torch.nn.functional.leaky_relu(x, 0.1)),
    _u("elu", smooth=False, attrs={"alpha": 1.5}, torch_fn=lambda x: torch.nn.functional.elu(x, 1.5)),
    _u("softplus", attrs={"beta": 2.0, "threshold": 2.0},
       torch_fn=lambda x: torch.nn.functional.softplus(x, 2.0, 2.0), smooth=False),
    _u("hardtanh", "clamp", smooth=False, attrs={"min_val": -1.0, "max_val": 1.0},
       torch_fn=lambda x: torch.nn.functional.hardtanh(x)),
    _u("clamp_min", "clamp", smooth=False, attrs={"min": -0.5}, torch_fn=lambda x: torch.clamp_min(x, -0.5)),
    _u("clamp_max", "clamp", smooth=False, attrs={"max": 0.5}, torch_fn=lambda x: torch.clamp_max(x, 0.5)),
    _u("clamp", "clamp", smooth=False, attrs={"min": -0.5, "max": 0.5}, torch_fn=lambda x: torch.clamp(x, -0.5, 0.5)),
    _b("add", attrs={"alpha": 2}, torch_fn=lambda x, y: torch.add(x, y, alpha=2)),
    _b("sub", attrs={"alpha": 1}),
    _b("mul"), _b("div", dy="pos"),
    _b("div_trunc", dy="pos", smooth=False, torch_fn=lambda x, y: torch.div(x, y, rounding_mode="trunc")),
    _b("div_floor", dy="pos", smooth=False, torch_fn=lambda x, y: torch.div(x, y, rounding_mode="floor")),
    _b("remainder", dy="pos", smooth=False), _b("fmod", dy="pos", smooth=False),
    _b("pow", dx="pos", scalar=2.5), _b("atan2"), _b("hypot"), _b("copysign", smooth=False),
    _b("maximum", smooth=False), _b("minimum", smooth=False), _b("fmax", smooth=False), _b("fmin", smooth=False),
    _b("xlogy", dy="pos"),
    Case("where", lambda c, a, b: call("where", c, a, b),
         [[_cond, ((2, 3), "any", "contiguous"), ((2, 3), "any", "noncontig")],
          [_cond, ((3,), "any", "contiguous"), ((2, 1), "any", "contiguous")],
          [_cond, ((2, 3), "any", "contiguous"), 0.5]],
         smooth=True, torch_fn=lambda c, a, b: torch.where(c, a, b)),
    Case("lerp", lambda a, b, w: call("lerp", a, b, w),
         [[((2, 3), "any", "contiguous"), ((2, 3), "any", "noncontig"), ((2, 3), "unit", "contiguous")],
          [((3,), "any", "contiguous"), ((2, 3), "any", "contiguous"), ((2, 1), "unit", "contiguous")],
          [((2, 3), "any", "contiguous"), ((2, 3), "any", "contiguous"), 0.3]],
         torch_fn=lambda a, b, w: torch.lerp(a, b, w)),
    Case("addcmul", lambda a, b, c: call("addcmul", a, b, c, value=0.5),
         [[((2, 3), "any", "contiguous"), ((2, 3), "any", "noncontig"), ((2, 3), "any", "contiguous")],
          [((3,), "any", "contiguous"), ((2, 1), "any", "contiguous"), ((2, 3), "any", "contiguous")]],
         torch_fn=lambda a, b, c: torch.addcmul(a, b, c, value=0.5)),
    Case("addcdiv", lambda a, b, c: call("addcdiv", a, b, c, value=0.5),
         [[((2, 3), "any", "contiguous"), ((2, 3), "any", "noncontig"), ((2, 3), "pos", "contiguous")],
          [((3,), "any", "contiguous"), ((2, 1), "any", "contiguous"), ((2, 3), "pos", "contiguous")]],
         torch_fn=lambda a, b, c: torch.addcdiv(a, b, c, value=0.5)),
    # views
    Case("view", lambda x: call("view", x, size=(3, 2)),
         [[((2, 3), "any", "contiguous")], [((6,), "any", "contiguous")]],
         torch_fn=lambda x: x.view(3, 2)),
    Case("permute", lambda x: call("permute", x, dims=(2, 0, 1)),
         [[((2, 3, 2), "any", "contiguous")], [((2, 3, 2), "any", "noncontig")]],
         torch_fn=lambda x: x.permute(2, 0, 1)),
    Case("expand", lambda x: call("expand", x, size=(2, 2, 3)),
         [[((2, 1, 3), "any", "contiguous")], [((3,), "any", "contiguous")], [((), "any", "contiguous")]],
         torch_fn=lambda x: x.expand(2, 2, 3)),
    Case("slice", lambda x: call("slice", x, dim=1, start=1, stop=5, step=2),
         [[((2, 5), "any", "contiguous")], [((2, 5), "any", "noncontig")]],
         torch_fn=lambda x: x[:, 1:5:2]),
    Case("select", lambda x: call("select", x, dim=0, index=-1),
         [[((3, 2), "any", "contiguous")], [((3, 2), "any", "noncontig")]],
         torch_fn=lambda x: x[-1]),
    Case("unsqueeze", lambda x: call("unsqueeze", x, dim=-1),
         [[((2, 3), "any", "noncontig")], [((), "any", "contiguous")]],
         torch_fn=lambda x: x.unsqueeze(-1)),
    Case("squeeze", lambda x: call("squeeze", x, dim=None),
         [[((2, 1, 3), "any", "contiguous")], [((1, 1), "any", "contiguous")]],
         torch_fn=lambda x: x.squeeze()),
    Case("diagonal", lambda x: call("diagonal", x, offset=1, dim1=-1, dim2=0),
         [[((3, 4), "any", "contiguous")], [((4, 3), "any", "noncontig")]],
         torch_fn=lambda x: x.diagonal(1, -1, 0)),
    Case("as_strided", lambda x: x.as_strided((3, 2), (2, 1), 1),      # disjoint windows
         [[((8,), "any", "contiguous")]], torch_fn=lambda x: x.as_strided((3, 2), (2, 1), 1)),
    Case("as_strided", lambda x: x.as_strided((3, 3), (1, 1), 0),      # overlapping windows (unfold)
         [[((6,), "any", "contiguous")]], torch_fn=lambda x: x.as_strided((3, 3), (1, 1), 0)),
    # copies
    Case("clone", lambda x: call("clone", x), [[((2, 3), "any", "noncontig")]], torch_fn=lambda x: x.clone()),
    Case("to_dtype", lambda x: call("to_dtype", x, dtype=jitorch.float32),
         [[((2, 3), "any", "noncontig")]], gc={"eps": 1e-3, "atol": 1e-3, "rtol": 1e-3}, smooth=False,
         torch_fn=lambda x: x.to(torch.float32)),
    Case("copy", lambda t, s: call_inplace("copy", call("mul", t, 2.0), s),
         [[((2, 3), "any", "contiguous"), ((3,), "any", "noncontig")],
          [((2, 3), "any", "noncontig"), ((2, 3), "any", "contiguous")]],
         torch_fn=lambda t, s: (t * 2.0).copy_(s)),
    # linalg
    Case("matmul", lambda a, b: call("matmul", a, b),
         [[((3,), "any", "contiguous"), ((3,), "any", "noncontig")],                 # dot
          [((2, 3), "any", "noncontig"), ((3,), "any", "contiguous")],               # mv
          [((3,), "any", "contiguous"), ((2, 3, 2), "any", "contiguous")],           # vector x batch
          [((2, 3), "any", "contiguous"), ((3, 4), "any", "noncontig")],             # mm
          [((2, 2, 3), "any", "noncontig"), ((3, 2), "any", "contiguous")],          # batch x matrix (linear)
          [((2, 1, 2, 3), "any", "contiguous"), ((3, 3, 2), "any", "contiguous")]],  # broadcast batches
         torch_fn=lambda a, b: torch.matmul(a, b)),
    # reductions (dims are normalized tuples: the frontend resolves None to all dims)
    Case("sum", lambda x: call("sum", x, dim=(1,), keepdim=False),
         [[((2, 3), "any", "noncontig")], [((2, 3, 2), "any", "contiguous")]], torch_fn=lambda x: x.sum(1)),
    Case("sum", lambda x: call("sum", x, dim=(0, 2), keepdim=True),
         [[((2, 3, 2), "any", "noncontig")]], torch_fn=lambda x: x.sum((0, 2), keepdim=True)),
    Case("sum", lambda x: call("sum", x, dim=(), keepdim=False), [[((), "any", "contiguous")]],
         torch_fn=lambda x: x * 1),
    Case("prod", lambda x: call("prod", x, dim=(1,), keepdim=False),
         [[((2, 3), "any", "noncontig")], [_fixed([[1.5, 0.0, -2.0], [0.0, 0.0, 3.0]])],
          [_fixed([[0.7, -1.2, 0.0], [1.1, 0.9, 1.3]])]],
         torch_fn=lambda x: x.prod(1)),
    Case("prod", lambda x: call("prod", x, dim=(0, 1), keepdim=True), [[((2, 3), "any", "contiguous")]],
         torch_fn=lambda x: x.prod(1, keepdim=True).prod(0, keepdim=True)),
    Case("amax", lambda x: call("amax", x, dim=(1,), keepdim=True),
         [[((2, 3), "any", "noncontig")], [_fixed([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], gc=False)]],
         torch_fn=lambda x: x.amax(1, keepdim=True)),
    Case("amin", lambda x: call("amin", x, dim=(0, 1), keepdim=False),
         [[((2, 3), "any", "contiguous")], [_fixed([[1.0, -3.0, -3.0], [2.0, 2.0, -3.0]], gc=False)]],
         torch_fn=lambda x: x.amin((0, 1))),
    Case("max_dim", lambda x: call("max_dim", x, dim=(1,), keepdim=False)[0],
         [[((2, 3), "any", "noncontig")], [_fixed([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], gc=False)]],
         torch_fn=lambda x: x.max(1)[0]),
    Case("min_dim", lambda x: call("min_dim", x, dim=(0,), keepdim=True)[0],
         [[((2, 3), "any", "contiguous")], [_fixed([[1.0, 3.0, 3.0], [1.0, 2.0, 2.0]], gc=False)]],
         torch_fn=lambda x: x.min(0, keepdim=True)[0]),
    Case("var", lambda x: call("var", x, dim=(1,), correction=1, keepdim=False),
         [[((2, 3), "any", "noncontig")]], torch_fn=lambda x: x.var(1)),
    Case("var", lambda x: call("var", x, dim=(0, 1), correction=0, keepdim=True),
         [[((2, 3), "any", "contiguous")]], torch_fn=lambda x: x.var((0, 1), correction=0, keepdim=True)),
    Case("logsumexp", lambda x: call("logsumexp", x, dim=(1,), keepdim=False),
         [[((2, 3), "any", "noncontig")]], torch_fn=lambda x: x.logsumexp(1)),
    Case("norm", lambda x: call("norm", x, dim=(1,), p=2.0, keepdim=False),
         [[((2, 3), "any", "noncontig")]], torch_fn=lambda x: torch.linalg.vector_norm(x, 2, 1)),
    Case("norm", lambda x: call("norm", x, dim=(0, 1), p=3.0, keepdim=True),
         [[((2, 3), "any", "contiguous")]], torch_fn=lambda x: torch.linalg.vector_norm(x, 3, (0, 1), keepdim=True)),
    Case("norm", lambda x: call("norm", x, dim=(1,), p=1.0, keepdim=False), [[((2, 3), "any", "contiguous")]],
         smooth=False, torch_fn=lambda x: torch.linalg.vector_norm(x, 1, 1)),
    Case("norm", lambda x: call("norm", x, dim=(1,), p=math.inf, keepdim=False), [[((2, 3), "any", "contiguous")]],
         smooth=False, torch_fn=lambda x: torch.linalg.vector_norm(x, math.inf, 1)),
    Case("cumsum", lambda x: call("cumsum", x, dim=(1,)),
         [[((2, 3), "any", "noncontig")]], torch_fn=lambda x: x.cumsum(1)),
    Case("cumprod", lambda x: call("cumprod", x, dim=(1,)),
         [[((2, 4), "any", "noncontig")], [_fixed([[1.5, 0.0, -2.0, 0.5], [0.5, 0.0, 0.0, 3.0]])]],
         torch_fn=lambda x: x.cumprod(1)),
    Case("logcumsumexp", lambda x: call("logcumsumexp", x, dim=(0,)),
         [[((3, 2), "any", "noncontig")]], torch_fn=lambda x: x.logcumsumexp(0)),
    Case("softmax", lambda x: call("softmax", x, dim=(1,)),
         [[((2, 3), "any", "noncontig")]], torch_fn=lambda x: x.softmax(1)),
    Case("log_softmax", lambda x: call("log_softmax", x, dim=(0,)),
         [[((2, 3), "any", "contiguous")]], torch_fn=lambda x: x.log_softmax(0)),
    # nn
    Case("convolution", lambda x, w, b: call("convolution", x, w, b, stride=(2,), padding=(1,), dilation=(1,),
                                             groups=1),
         [[((2, 2, 5), "any", "contiguous"), ((3, 2, 3), "any", "noncontig"), ((3,), "any", "contiguous")]],
         torch_fn=lambda x, w, b: torch.nn.functional.conv1d(x, w, b, 2, 1)),
    Case("convolution", lambda x, w: call("convolution", x, w, stride=(1, 1), padding=(0, 1), dilation=(1, 1),
                                          groups=2),
         [[((1, 4, 3, 3), "any", "contiguous"), ((2, 2, 2, 2), "any", "contiguous")]],
         torch_fn=lambda x, w: torch.nn.functional.conv2d(x, w, None, 1, (0, 1), 1, 2)),
    Case("conv_transpose", lambda x, w, b: call("conv_transpose", x, w, b, stride=(2,), padding=(1,),
                                                output_padding=(1,), dilation=(1,), groups=1),
         [[((1, 2, 3), "any", "contiguous"), ((2, 3, 3), "any", "contiguous"), ((3,), "any", "contiguous")]],
         torch_fn=lambda x, w, b: torch.nn.functional.conv_transpose1d(x, w, b, 2, 1, 1)),
    Case("convolution_weight_grad",
         lambda x, gy: call("convolution_weight_grad", x, gy, weight_size=(3, 2, 3), stride=(1,), padding=(1,),
                            dilation=(1,), groups=1),
         [[((2, 2, 4), "any", "contiguous"), ((2, 3, 4), "any", "contiguous")]]),
    Case("max_pool2d_with_indices",
         lambda x: call("max_pool2d_with_indices", x, kernel_size=(2, 2), stride=(1, 2), padding=(0, 0),
                        dilation=(1, 1), ceil_mode=False)[0],
         [[((1, 2, 3, 4), "any", "contiguous")]],
         torch_fn=lambda x: torch.nn.functional.max_pool2d(x, (2, 2), (1, 2))),
    Case("max_pool2d_backward", lambda g: call("max_pool2d_backward", g, _POOL_IDX, input_size=(3, 4)),
         [[((1, 2, 2, 2), "any", "contiguous")]]),
    Case("max_pool2d_gather", lambda gg: call("max_pool2d_gather", gg, _POOL_IDX),
         [[((1, 2, 3, 4), "any", "contiguous")]]),
    Case("avg_pool2d", lambda x: call("avg_pool2d", x, **_AVG),
         [[((1, 2, 4, 4), "any", "noncontig")]],
         torch_fn=lambda x: torch.nn.functional.avg_pool2d(x, 3, 2, 1, False, False)),
    Case("avg_pool2d_backward", lambda g: call("avg_pool2d_backward", g, input_size=(4, 4), **_AVG),
         [[((1, 2, 2, 2), "any", "contiguous")]]),
    Case("adaptive_avg_pool2d", lambda x: call("adaptive_avg_pool2d", x, output_size=(2, 3)),
         [[((1, 2, 3, 4), "any", "contiguous")]],
         torch_fn=lambda x: torch.nn.functional.adaptive_avg_pool2d(x, (2, 3))),
    Case("adaptive_avg_pool2d_backward",
         lambda g: call("adaptive_avg_pool2d_backward", g, input_size=(3, 4)), [[((1, 2, 2, 3), "any", "contiguous")]]),
    Case("adaptive_max_pool2d", lambda x: call("adaptive_max_pool2d", x, output_size=(2, 2))[0],
         [[((1, 2, 3, 4), "any", "contiguous")]],
         torch_fn=lambda x: torch.nn.functional.adaptive_max_pool2d(x, (2, 2))),
    # indexing, scatter/gather, sorting
    Case("index", lambda x: call("index", x, _I([0, 2, 2, -1]), dims=(0,)),                 # duplicates add up
         [[((4, 3), "any", "noncontig")]], torch_fn=lambda x: x[[0, 2, 2, -1]]),
    Case("index", lambda x: call("index", x, _I([[0], [2]]), _I([1, 3, 3]), dims=(0, 1)),
         [[((3, 4), "any", "contiguous")]], torch_fn=lambda x: x[[[0], [2]], [1, 3, 3]]),
    Case("index", lambda x: call("index", x, _I([1, 0]), _I([3, 0]), dims=(0, 2)),          # non-adjacent dims
         [[((2, 3, 4), "any", "contiguous")]], torch_fn=lambda x: x[[1, 0], :, [3, 0]]),
    Case("index_put", lambda x, v: call("index_put", x, v, _I([1, 3]), dims=(0,), accumulate=False),
         [[((4, 3), "any", "contiguous"), ((2, 3), "any", "contiguous")],
          [((4, 3), "any", "noncontig"), ((3,), "any", "contiguous")]],
         torch_fn=lambda x, v: x.index_put((torch.tensor([1, 3]),), v)),
    Case("index_put", lambda x, v: call("index_put", x, v, _I([1, 1]), dims=(0,), accumulate=True),
         [[((4, 3), "any", "contiguous"), ((2, 3), "any", "contiguous")]],
         torch_fn=lambda x, v: x.index_put((torch.tensor([1, 1]),), v, accumulate=True)),
    Case("index_select", lambda x: call("index_select", x, _I([2, 0, 2]), dim=1),
         [[((2, 4), "any", "noncontig")]], torch_fn=lambda x: x.index_select(1, torch.tensor([2, 0, 2]))),
    Case("gather", lambda x: call("gather", x, _I([[0, 3], [1, 1], [2, 0]]), dim=1),
         [[((3, 4), "any", "contiguous")]], torch_fn=lambda x: x.gather(1, torch.tensor([[0, 3], [1, 1], [2, 0]]))),
    Case("scatter", lambda x, s: call("scatter", x, _I([[0, 1, 2, 0], [2, 0, 1, 1]]), s, dim=0, reduce=None,
                                      include_self=True),
         [[((3, 4), "any", "contiguous"), ((2, 4), "any", "contiguous")]],
         torch_fn=lambda x, s: x.scatter(0, torch.tensor([[0, 1, 2, 0], [2, 0, 1, 1]]), s)),
    Case("scatter", lambda x, s: call("scatter", x, _I([[0, 1, 2, 0], [2, 0, 1, 1]]), s, dim=0, reduce=None,
                                      include_self=True),
         [[((3, 4), "any", "contiguous"), ((3, 5), "any", "noncontig")]]),   # src bigger than index (torch errors)
    Case("scatter", lambda x, s: call("scatter", x, _I([[0, 0], [2, 0]]), s, dim=0, reduce="sum", include_self=False),
         [[((3, 2), "any", "contiguous"), ((2, 2), "any", "contiguous")]],
         torch_fn=lambda x, s: x.scatter_reduce(0, torch.tensor([[0, 0], [2, 0]]), s, "sum", include_self=False)),
    Case("scatter", lambda x, s: call("scatter", x, _I([[0, 0], [2, 0]]), s, dim=0, reduce="mean", include_self=True),
         [[((3, 2), "any", "contiguous"), ((2, 2), "any", "contiguous")]],
         torch_fn=lambda x, s: x.scatter_reduce(0, torch.tensor([[0, 0], [2, 0]]), s, "mean", include_self=True)),
    Case("scatter", lambda x, s: call("scatter", x, _I([[0, 0], [2, 0]]), s, dim=0, reduce="amax", include_self=True),
         [[((3, 2), "any", "contiguous"), ((2, 2), "any", "contiguous")]], smooth=False,
         torch_fn=lambda x, s: x.scatter_reduce(0, torch.tensor([[0, 0], [2, 0]]), s, "amax", include_self=True)),
    Case("scatter", lambda x, s: call("scatter", x, _I([[0, 0], [2, 0]]), s, dim=0, reduce="prod", include_self=True),
         [[((3, 2), "pos", "contiguous"), ((2, 2), "pos", "contiguous")]],
         torch_fn=lambda x, s: x.scatter_reduce(0, torch.tensor([[0, 0], [2, 0]]), s, "prod", include_self=True)),
    Case("index_add", lambda x, s: call("index_add", x, _I([0, 2, 0]), s, dim=0, alpha=2),
         [[((4, 3), "any", "contiguous"), ((3, 3), "any", "noncontig")]],
         torch_fn=lambda x, s: x.index_add(0, torch.tensor([0, 2, 0]), s, alpha=2)),
    Case("take", lambda x: call("take", x, _I([[0, 5], [5, -1]])),
         [[((2, 3), "any", "noncontig")]], torch_fn=lambda x: x.take(torch.tensor([[0, 5], [5, -1]]))),
    Case("masked_select", lambda x: call("masked_select", x, _M([[True, False, True], [False, False, True]])),
         [[((2, 3), "any", "contiguous")], [((3,), "any", "contiguous")]],                  # x broadcast to the mask
         torch_fn=lambda x: x.masked_select(torch.tensor([[True, False, True], [False, False, True]]))),
    Case("masked_scatter", lambda x, s: call("masked_scatter", x, _M([[True, False, True], [False, False, True]]), s),
         [[((2, 3), "any", "contiguous"), ((2, 2), "any", "contiguous")]],
         torch_fn=lambda x, s: x.masked_scatter(torch.tensor([[True, False, True], [False, False, True]]), s)),
    Case("sort", lambda x: call("sort", x, dim=1, descending=True, stable=True)[0],
         [[((2, 4), "any", "noncontig")]], torch_fn=lambda x: x.sort(1, descending=True)[0]),
    Case("topk", lambda x: call("topk", x, k=2, dim=0, largest=True, sorted=True)[0],
         [[((3, 2), "any", "contiguous")]], torch_fn=lambda x: x.topk(2, 0)[0]),
    Case("kthvalue", lambda x: call("kthvalue", x, k=2, dim=1, keepdim=True)[0],
         [[((2, 3), "any", "contiguous")]], torch_fn=lambda x: x.kthvalue(2, 1, keepdim=True)[0]),
    Case("median_dim", lambda x: call("median_dim", x, dim=0, keepdim=False)[0],
         [[((3, 2), "any", "noncontig")]], torch_fn=lambda x: x.median(0)[0]),
    Case("nanmedian_dim", lambda x: call("nanmedian_dim", x, dim=1, keepdim=False)[0],
         [[((2, 3), "any", "contiguous")]], torch_fn=lambda x: x.nanmedian(1)[0]),
    Case("mode_dim", lambda x: call("mode_dim", x, dim=1, keepdim=False)[0],
         [[_fixed([[1.0, 2.0, 2.0], [3.0, 3.0, 1.0]], gc=False)]]),   # the gradient goes to the returned index
    Case("flip", lambda x: call("flip", x, dims=(0, 1)), [[((2, 3), "any", "noncontig")]],
         torch_fn=lambda x: x.flip(0, 1)),
    Case("roll", lambda x: call("roll", x, shifts=(1,), dims=(1,)), [[((2, 3), "any", "contiguous")]],
         torch_fn=lambda x: x.roll(1, 1)),
    Case("roll", lambda x: call("roll", x, shifts=(2,), dims=()), [[((2, 3), "any", "contiguous")]],
         torch_fn=lambda x: x.roll(2)),
    Case("repeat_interleave", lambda x: call("repeat_interleave", x, _I([1, 0, 2]), dim=0),
         [[((3, 2), "any", "noncontig")]], torch_fn=lambda x: x.repeat_interleave(torch.tensor([1, 0, 2]), 0)),
    Case("tril", lambda x: call("tril", x, diagonal=0), [[((3, 3), "any", "noncontig")]],
         torch_fn=lambda x: x.tril()),
    Case("triu", lambda x: call("triu", x, diagonal=1), [[((2, 3, 3), "any", "contiguous")]],
         torch_fn=lambda x: x.triu(1)),
    # joins
    Case("cat", lambda a, b, c: call("cat", a, b, c, dim=1),
         [[((2, 1), "any", "contiguous"), ((2, 3), "any", "noncontig"), ((2, 2), "any", "contiguous")]],
         torch_fn=lambda a, b, c: torch.cat([a, b, c], 1)),
]


def _case_ids():
    return [f"{c.op}-{k}" for c in CASES for k in range(len(c.variants))]


_ALL = [(c, k) for c in CASES for k in range(len(c.variants))]


# ---------------------------------------------------------------------------------------------- tests

def test_every_op_accounted_for():
    missing, stray_tag = [], []
    for name, op in OPS.items():
        tagged = "nondifferentiable" in op.tags
        if op.vjp is None and not tagged:
            missing.append(name)
        if tagged and name not in NON_DIFFERENTIABLE:
            stray_tag.append(name)
    assert not missing, f"differentiable ops without a vjp rule: {missing}"
    assert not stray_tag, f"ops tagged nondifferentiable but not listed in NON_DIFFERENTIABLE: {stray_tag}"
    untagged = [n for n in NON_DIFFERENTIABLE if n in OPS and "nondifferentiable" not in OPS[n].tags]
    assert not untagged, f"listed as non-differentiable but not tagged: {untagged}"
    with_case = {c.op for c in CASES}
    untested = [n for n, op in OPS.items() if op.vjp is not None and n not in with_case]
    assert not untested, f"ops with a vjp but no gradcheck case in CASES: {untested}"


def test_nondifferentiable_outputs_do_not_require_grad():
    x = _tensor(np.array([0.5, -1.5, 2.0]))
    for name in ("isnan", "signbit", "isfinite"):
        assert not call(name, x).requires_grad
    for name in ("lt", "eq", "ge", "logical_and"):
        assert not call(name, x, 0.5).requires_grad
    # zero-gradient ops give zeros (torch), not None
    for name in ("floor", "sign", "round"):
        x.grad = None
        call(name, x).backward(jitorch.ones(3, dtype=jitorch.float64))
        assert x.grad is not None and not x.grad.numpy().any()


@pytest.mark.parametrize("case,k", _ALL, ids=_case_ids())
def test_gradcheck(case, k):
    rng = np.random.default_rng(_RNG_SEED + k)
    inputs = case.build(k, rng)
    if not all(getattr(x, "_gc_ok", True) for x in inputs):
        pytest.skip("ties: not differentiable, checked against torch instead")
    assert gradcheck(case.fn, tuple(inputs), **case.gc)


_SMOOTH = [(c, 0) for c in CASES if c.smooth] + [(c, 1) for c in CASES if c.smooth and c.op in (
    "mul", "div", "pow", "where", "lerp", "addcdiv", "atan2", "expand", "permute", "slice", "diagonal",
    "matmul")] + [(c, k) for c in CASES for k in (2, 4, 5) if c.op == "matmul"]


@pytest.mark.parametrize("case,k", _SMOOTH, ids=[f"{c.op}-{k}" for c, k in _SMOOTH])
def test_gradgradcheck(case, k):
    rng = np.random.default_rng(_RNG_SEED + k)
    inputs = case.build(k, rng)
    if not all(getattr(x, "_gc_ok", True) for x in inputs):
        pytest.skip("ties")
    assert gradgradcheck(case.fn, tuple(inputs), **case.gc)


def _to_torch(x):
    if isinstance(x, jitorch.Tensor):
        t = torch.tensor(np.array(x._data))
        if x.requires_grad:
            t.requires_grad_(True)
        return t
    return x


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("case,k", _ALL, ids=_case_ids())
def test_against_torch(case, k):
    if case.torch_fn is None:
        pytest.skip("no torch reference")
    rng = np.random.default_rng(_RNG_SEED + k)
    inputs = case.build(k, rng)
    out = case.fn(*inputs)
    go = rng.standard_normal(tuple(out.shape))
    diff = [x for x in inputs if isinstance(x, jitorch.Tensor) and x.requires_grad]
    got = jitorch.autograd.grad(out, diff, jitorch.tensor(go, dtype=out.dtype), allow_unused=True)
    tin = [_to_torch(x) for x in inputs]
    tout = case.torch_fn(*tin)
    tdiff = [t for t, x in zip(tin, inputs) if isinstance(x, jitorch.Tensor) and x.requires_grad]
    want = torch.autograd.grad(tout, tdiff, torch.tensor(go, dtype=tout.dtype), allow_unused=True)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-6, atol=1e-6)
    for i, (g, w) in enumerate(zip(got, want)):
        if w is None:
            assert g is None or not g.numpy().any(), f"input {i}: torch has no gradient"
            continue
        assert g is not None, f"input {i}: no gradient, torch has {w}"
        assert tuple(g.shape) == tuple(w.shape)
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-6, atol=1e-7, err_msg=f"input {i}")


_ = math

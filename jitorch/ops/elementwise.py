"""Records of the elementwise primitives.

Each op here is one line of :data:`SPECS`: name, number of tensor inputs, scalar attributes
(passed to the kernel as parameters), the dtype family, the NumPy reference and a doc line.
Families:

- ``float``: integer/bool inputs promote to the default float dtype (exp, div, sigmoid ...);
- ``same``: the promoted input dtype (add, neg, floor ...);
- ``cmp``: computes in the promoted dtype, returns bool (eq, lt, isnan ...);
- ``int``: integers and bool only (bitwise ops);
- ``logical``: any dtype in, bool out.

The scalar expression of op ``name`` is ``kernels.scalar.EXPR[name]``: the eager kernel, the
fuser and the CUDA backend all render the same text.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _dtype as D
from ..backends import cpu as _cpu
from .registry import OpDef, register
from .rules import broadcast_shapes, category_name, to_float


def _np_erf(x):
    return np.vectorize(math.erf, otypes=[x.dtype])(x) if x.size else x.copy()


def _np_erfc(x):
    # math.erfc per element (float64): 1 - erf(x) loses every digit in the tails (erfc(5) ~ 1.5e-12)
    return np.vectorize(math.erfc, otypes=[x.dtype])(x) if x.size else x.copy()


def _lgamma(v):
    try:
        return math.lgamma(v)
    except ValueError:  # the poles
        return math.inf


def _np_sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _np_erfinv(y):
    from scipy.special import erfinv  # pragma: no cover - reference only when scipy is around
    return erfinv(y)


def _ref_div(a, b, rounding_mode=None):
    with np.errstate(divide="ignore", invalid="ignore"):
        if rounding_mode is None:
            return np.true_divide(a, b)
        if rounding_mode == "trunc":
            return np.trunc(np.true_divide(a, b)) if np.result_type(a, b).kind == "f" else _itrunc(a, b)
        return np.floor_divide(a, b)


def _itrunc(a, b):
    q = np.abs(a) // np.abs(b)
    return np.where((np.asarray(a) >= 0) == (np.asarray(b) >= 0), q, -q)


def _ref_ipow(a, b):
    if np.result_type(a, b).kind in "iub":
        a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
        out = np.zeros(a.shape, np.result_type(a, b))
        pos = b >= 0
        out[pos] = np.power(a[pos], b[pos])
        neg = ~pos
        out[neg & (a == 1)] = 1
        out[neg & (a == -1)] = np.where(b[neg & (a == -1)] % 2 == 0, 1, -1)
        return out
    with np.errstate(all="ignore"):
        return np.power(a, b)


def _ref_fmod(a, b):
    with np.errstate(all="ignore"):
        return np.fmod(a, b)


def _ref_remainder(a, b):
    with np.errstate(all="ignore"):
        return np.remainder(a, b)


def _errs(f):
    def g(*a, **k):
        with np.errstate(all="ignore"):
            return f(*a, **k)
    return g


# name, n tensor inputs, attrs (name, default), family, reference, doc
SPECS = [
    ("exp", 1, (), "float", np.exp, "e**x"),
    ("exp2", 1, (), "float", np.exp2, "2**x"),
    ("expm1", 1, (), "float", np.expm1, "e**x - 1, accurate near 0"),
    ("log", 1, (), "float", np.log, "natural log; log(0) = -inf, log(x<0) = nan"),
    ("log2", 1, (), "float", np.log2, "base-2 log"),
    ("log10", 1, (), "float", np.log10, "base-10 log"),
    ("log1p", 1, (), "float", np.log1p, "log(1 + x), accurate near 0"),
    ("sqrt", 1, (), "float", np.sqrt, "square root; nan below 0"),
    ("rsqrt", 1, (), "float", lambda x: 1 / np.sqrt(x), "1 / sqrt(x)"),
    ("sin", 1, (), "float", np.sin, "sine"),
    ("cos", 1, (), "float", np.cos, "cosine"),
    ("tan", 1, (), "float", np.tan, "tangent"),
    ("asin", 1, (), "float", np.arcsin, "arcsine; nan outside [-1, 1]"),
    ("acos", 1, (), "float", np.arccos, "arccosine; nan outside [-1, 1]"),
    ("atan", 1, (), "float", np.arctan, "arctangent"),
    ("sinh", 1, (), "float", np.sinh, "hyperbolic sine"),
    ("cosh", 1, (), "float", np.cosh, "hyperbolic cosine"),
    ("tanh", 1, (), "float", np.tanh, "hyperbolic tangent"),
    ("asinh", 1, (), "float", np.arcsinh, "inverse hyperbolic sine"),
    ("acosh", 1, (), "float", np.arccosh, "inverse hyperbolic cosine; nan below 1"),
    ("atanh", 1, (), "float", np.arctanh, "inverse hyperbolic tangent; +-inf at +-1, nan outside"),
    ("erf", 1, (), "float", _np_erf, "error function"),
    ("erfc", 1, (), "float", _np_erfc, "1 - erf(x)"),
    ("erfinv", 1, (), "float", _np_erfinv, "inverse error function"),
    ("lgamma", 1, (), "float", lambda x: np.vectorize(_lgamma, otypes=[x.dtype])(x) if x.size else x.copy(),
     "log |gamma(x)| (inf at the poles 0, -1, -2, ...)"),
    ("sigmoid", 1, (), "float", _np_sigmoid, "1 / (1 + e**-x), no overflow for large |x|"),
    ("reciprocal", 1, (), "float", lambda x: 1 / x, "1 / x"),
    ("frac", 1, (), "same", lambda x: x - np.trunc(x), "x - trunc(x)"),
    ("neg", 1, (), "same", np.negative, "-x"),
    ("abs", 1, (), "same", np.abs, "|x|"),
    ("sign", 1, (), "same", lambda x: np.where(np.isnan(x), 0, np.sign(x)).astype(x.dtype) if x.dtype.kind == "f"
     else np.sign(x), "-1, 0 or 1 (sign(nan) = 0, as torch)"),
    ("relu", 1, (), "same", lambda x: np.where(np.isnan(x) if x.dtype.kind == "f" else False, x, np.maximum(x, 0)),
     "max(x, 0), nan propagates"),
    ("floor", 1, (), "same", np.floor, "round toward -inf (integers unchanged)"),
    ("ceil", 1, (), "same", np.ceil, "round toward +inf (integers unchanged)"),
    ("round", 1, (), "same", np.round, "round half to even (integers unchanged)"),
    ("round_decimals", 1, (("scale", 1.0),), "same", lambda x, scale: np.round(x * scale) / scale,
     "round(x * 10**decimals) / 10**decimals; attr scale = 10**decimals"),
    ("trunc", 1, (), "same", np.trunc, "round toward zero (integers unchanged)"),
    ("square", 1, (), "same", np.square, "x * x"),
    ("bitwise_not", 1, (), "int", np.invert, "~x (logical not for bool)"),
    ("logical_not", 1, (), "logical", np.logical_not, "x == 0"),
    ("isnan", 1, (), "cmp", np.isnan, "x is nan"),
    ("isinf", 1, (), "cmp", np.isinf, "x is +-inf"),
    ("isposinf", 1, (), "cmp", np.isposinf, "x is +inf"),
    ("isneginf", 1, (), "cmp", np.isneginf, "x is -inf"),
    ("isfinite", 1, (), "cmp", np.isfinite, "x is neither inf nor nan"),
    ("signbit", 1, (), "cmp", np.signbit, "sign bit set (-0.0 included)"),
    ("nan_to_num", 1, (("nan", 0.0), ("posinf", None), ("neginf", None)), "same", None,
     "replace nan/inf by finite values (default: 0 and the dtype's max/min)"),
    ("fill", 1, (("value", 0),), "same", lambda x, value: np.full_like(x, value), "every element set to value"),
    ("leaky_relu", 1, (("negative_slope", 0.01),), "same",
     lambda x, negative_slope: np.where(x > 0, x, x * negative_slope), "x if x > 0 else slope * x"),
    ("elu", 1, (("alpha", 1.0),), "same", _errs(lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(x))),
     "x if x > 0 else alpha * (e**x - 1)"),
    ("softplus", 1, (("beta", 1.0), ("threshold", 20.0)), "same",
     _errs(lambda x, beta, threshold: np.where(x * beta > threshold, x, np.log1p(np.exp(x * beta)) / beta)),
     "log(1 + e**(beta x)) / beta, linear above threshold"),
    ("hardtanh", 1, (("min_val", -1.0), ("max_val", 1.0)), "same",
     lambda x, min_val, max_val: np.clip(x, min_val, max_val), "clip to [min_val, max_val]"),
    ("clamp_min", 1, (("min", 0),), "same", lambda x, min: np.where(np.isnan(x) if x.dtype.kind == "f" else False, x, np.maximum(x, min)),
     "max(x, min); nan propagates"),
    ("clamp_max", 1, (("max", 0),), "same", lambda x, max: np.where(np.isnan(x) if x.dtype.kind == "f" else False, x, np.minimum(x, max)),
     "min(x, max); nan propagates"),
    ("clamp", 1, (("min", 0), ("max", 0)), "same",
     lambda x, min, max: np.where(np.isnan(x) if x.dtype.kind == "f" else False, x, np.minimum(np.maximum(x, min), max)),
     "min(max(x, min), max) (torch order: max wins when min > max)"),
    ("add", 2, (("alpha", 1),), "same", lambda a, b, alpha=1: a + b * alpha if alpha != 1 else a + b, "a + alpha * b"),
    ("sub", 2, (("alpha", 1),), "same", lambda a, b, alpha=1: a - b * alpha if alpha != 1 else a - b, "a - alpha * b"),
    ("mul", 2, (), "same", np.multiply, "a * b (logical and for bool)"),
    ("div", 2, (), "float", _ref_div, "true division a / b"),
    ("div_trunc", 2, (), "same", lambda a, b: _ref_div(a, b, "trunc"), "a / b rounded toward zero"),
    ("div_floor", 2, (), "same", lambda a, b: _ref_div(a, b, "floor"), "a / b rounded toward -inf (floor_divide)"),
    ("remainder", 2, (), "same", _ref_remainder, "a mod b with the sign of b (Python %)"),
    ("fmod", 2, (), "same", _ref_fmod, "C fmod: sign of a"),
    ("pow", 2, (), "same", _ref_ipow, "a ** b; integer negative powers give 0 (except bases +-1)"),
    ("atan2", 2, (), "float", np.arctan2, "angle of (b, a)"),
    ("hypot", 2, (), "float", np.hypot, "sqrt(a**2 + b**2)"),
    ("copysign", 2, (), "float", np.copysign, "|a| with the sign of b"),
    ("maximum", 2, (), "same", np.maximum, "elementwise max; nan if either is nan"),
    ("minimum", 2, (), "same", np.minimum, "elementwise min; nan if either is nan"),
    ("fmax", 2, (), "same", np.fmax, "elementwise max ignoring a single nan"),
    ("fmin", 2, (), "same", np.fmin, "elementwise min ignoring a single nan"),
    ("eq", 2, (), "cmp", np.equal, "a == b"),
    ("ne", 2, (), "cmp", np.not_equal, "a != b"),
    ("lt", 2, (), "cmp", np.less, "a < b"),
    ("le", 2, (), "cmp", np.less_equal, "a <= b"),
    ("gt", 2, (), "cmp", np.greater, "a > b"),
    ("ge", 2, (), "cmp", np.greater_equal, "a >= b"),
    ("logical_and", 2, (), "logical", np.logical_and, "a != 0 and b != 0"),
    ("logical_or", 2, (), "logical", np.logical_or, "a != 0 or b != 0"),
    ("logical_xor", 2, (), "logical", np.logical_xor, "(a != 0) xor (b != 0)"),
    ("bitwise_and", 2, (), "int", np.bitwise_and, "a & b"),
    ("bitwise_or", 2, (), "int", np.bitwise_or, "a | b"),
    ("bitwise_xor", 2, (), "int", np.bitwise_xor, "a ^ b"),
    ("bitwise_left_shift", 2, (), "int", np.left_shift, "a << b"),
    ("bitwise_right_shift", 2, (), "int", np.right_shift, "a >> b (arithmetic for signed)"),
    ("xlogy", 2, (), "float", _errs(lambda x, y: np.where(np.isnan(y), y, np.where(x == 0, 0.0, x * np.log(y)))),
     "x * log(y), 0 where x == 0 (nan if y is nan)"),
    ("where", 3, (), "where", lambda c, a, b: np.where(c, a, b), "a where cond else b"),
    ("lerp", 3, (), "float3", lambda a, b, w: a + w * (b - a), "a + weight * (b - a)"),
    ("addcmul", 3, (("value", 1),), "same", lambda a, b, c, value=1: a + value * b * c, "a + value * b * c"),
    ("addcdiv", 3, (("value", 1),), "float3", lambda a, b, c, value=1: a + value * b / c, "a + value * b / c"),
]

_TEMPLATE = {"add": "add_alpha", "sub": "sub_alpha"}
# ops torch refuses on bool tensors
_NO_BOOL = frozenset({"floor", "ceil", "round", "trunc", "round_decimals", "frac", "abs", "relu",
                      "clamp", "clamp_min", "clamp_max", "hardtanh", "leaky_relu", "elu", "softplus", "div_trunc",
                      "div_floor", "remainder", "fmod"})  # add/sub carry alpha as a kernel parameter


def _dtype_rule_for(name, family):
    def check_bool_arith(out):
        if out is D.bool_ and name in ("sub", "neg"):
            raise RuntimeError(
                f"{name}: Subtraction, the `-` operator, with a bool tensor is not supported. "
                "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead."
            )

    def rule(*operands, **attrs):
        t = D.result_type(*operands)
        if t is D.bool_ and name in _NO_BOOL:
            raise RuntimeError(f"{name}: \"{name}_vml_cpu\" not implemented for 'Bool'; convert with .float() or .long()")
        if family == "float":
            if name in ("div",) or t.category < 2:
                return to_float(t)
            return t
        if family == "same":
            check_bool_arith(t)
            if name == "square" and t is D.bool_:
                return D.int64
            if name in ("div_trunc", "div_floor", "remainder", "fmod", "pow") and t is D.bool_:
                return D.int64 if name == "pow" else t
            return t
        if family in ("cmp", "logical"):
            return D.bool_
        if family == "int":
            if t.is_floating_point:
                raise TypeError(
                    f"{name}: \"{name}_cpu\" not implemented for '{category_name(t)}': bitwise ops need integer "
                    "or bool tensors; use logical_* ops or cast with .long()"
                )
            return t
        if family == "where":
            return D.result_type(*operands[1:])
        if family == "float3":
            return to_float(t) if name == "addcdiv" or t.is_floating_point else to_float(t)
        raise AssertionError(family)
    return rule


def _compute_rule_for(name, family):
    def rule(*operands, **attrs):
        if family in ("cmp", "logical"):
            t = D.result_type(*operands)
            if family == "logical":
                return D.bool_ if len(operands) and all(getattr(o, "dtype", None) is D.bool_ for o in operands) else (
                    t if t is not D.bool_ else D.bool_)
            return t
        if family == "where":
            return D.result_type(*operands[1:])
        return _dtype_rule_for(name, family)(*operands, **attrs)
    return rule


def _elementwise_impl(name, template, attr_names):
    def impl(out, *inputs, **attrs):
        ctype = attrs.pop("_ctype")
        params = [attrs[a] for a in attr_names]
        return _cpu.elementwise(template, ctype, inputs, out, params)
    return impl


def _elementwise_impl_cuda(name, template, attr_names):
    def impl(out, *inputs, **attrs):
        from ..backends import cuda as _cuda
        ctype = attrs.pop("_ctype")
        if template == "fill":  # no need to read the target
            return _cuda.fill(out, attrs["value"])
        params = [attrs[a] for a in attr_names]
        return _cuda.elementwise(template, ctype, inputs, out, params)
    return impl


def _shape_rule_for(name):
    def rule(*shapes, **attrs):
        return broadcast_shapes(name, *shapes)
    return rule


for _name, _nin, _attrs, _family, _ref, _doc in SPECS:
    register(OpDef(
        name=_name,
        shape_rule=_shape_rule_for(_name),
        dtype_rule=_dtype_rule_for(_name, _family),
        compute_rule=_compute_rule_for(_name, _family),
        reference=_ref,
        impl={"cpu": _elementwise_impl(_name, _TEMPLATE.get(_name, _name), tuple(a for a, _ in _attrs)),
              "cuda": _elementwise_impl_cuda(_name, _TEMPLATE.get(_name, _name), tuple(a for a, _ in _attrs))},
        scalar=_TEMPLATE.get(_name, _name),
        tags=frozenset({"elementwise", ("unary", "binary", "ternary")[_nin - 1]}),
        attrs=tuple(_attrs),
        doc=_doc,
    ))
ARITY = {name: nin for name, nin, *_ in SPECS}
FAMILY = {name: fam for name, _, _, fam, *_ in SPECS}


# ---------------------------------------------------------------------------------------------------------------
# Gradient rules (owned by autograd): rule(ctx, grad) -> one gradient per input, written with jitorch ops so that
# backward can be recorded (create_graph) and traced. Broadcast inputs get their gradient summed back by sum_to.
# ---------------------------------------------------------------------------------------------------------------
from ..autograd._vjp import call as _c, digamma as _digamma, register_vjps as _register_vjps  # noqa: E402
from ..autograd._vjp import saves as _saves, sum_to as _sum_to, zeros_like_grad as _zeros_like  # noqa: E402

_LN2, _LN10 = math.log(2.0), math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _is_t(x):
    return hasattr(x, "_data")


def _shape_of_input(x):
    return x._data.shape if hasattr(x, "_data") else x.shape


def _ux(f):
    """Unary rule reading the input: f(g, x, attrs)."""
    @_saves(0)
    def rule(ctx, g):
        return (f(g, ctx.inputs[0], ctx.attrs),)
    return rule


def _uo(f):
    """Unary rule reading the output: f(g, out, attrs)."""
    @_saves(output=True)
    def rule(ctx, g):
        return (f(g, ctx.outputs[0], ctx.attrs),)
    return rule


def _ug(f):
    """Unary rule reading neither: f(g, attrs)."""
    @_saves()
    def rule(ctx, g):
        return (f(g, ctx.attrs),)
    return rule


@_saves()
def _zero_vjp(ctx, g):
    """Piecewise-constant ops (floor, sign, rounding divisions ...): zero gradient, as torch."""
    return tuple(_zeros_like(x) if n else None for x, n in zip(ctx.inputs, ctx.needs_input_grad))


def _mul(a, b):
    return _c("mul", a, b)


def _div(a, b):
    return _c("div", a, b)


def _add(a, b):
    return _c("add", a, b, alpha=1)


def _sub(a, b):
    return _c("sub", a, b, alpha=1)


def _where(c, a, b):
    return _c("where", c, a, b)


def _binary(fx, fy, save=(0, 1), output=False):
    """Binary rule: fx(g, x, y, out, attrs), fy(...) for the two inputs, summed to their shapes."""
    @_saves(*save, output=output)
    def rule(ctx, g):
        x, y = ctx.inputs
        out = ctx.outputs[0] if output else None
        nx, ny = ctx.needs_input_grad
        gx = _sum_to(fx(g, x, y, out, ctx.attrs), _shape_of_input(x)) if nx else None
        gy = _sum_to(fy(g, x, y, out, ctx.attrs), _shape_of_input(y)) if ny else None
        return gx, gy
    return rule


def _pow_self(g, x, y, out, a):
    if not _is_t(y):
        if y == 0:
            return _zeros_like(x)
        return _mul(g, _mul(_c("pow", x, y - 1), y))
    r = _mul(g, _mul(y, _c("pow", x, _sub(y, 1))))
    return _where(_c("eq", y, 0), 0.0, r)


def _pow_exponent(g, x, y, out, a):
    if not _is_t(x):  # scalar base
        if x == 0:
            return _where(_c("ge", y, 0), 0.0, _mul(g, _mul(out, -math.inf)))
        return _mul(g, _mul(out, math.log(x)))
    r = _mul(g, _mul(out, _c("log", x)))
    return _where(_c("logical_and", _c("eq", x, 0), _c("ge", y, 0)), 0.0, r)


def _maxmin(first_loses, second_loses):
    def fx(g, x, y, out, a):
        return _where(_c(first_loses, x, y), 0.0, _where(_c("eq", x, y), _mul(g, 0.5), g))

    def fy(g, x, y, out, a):
        return _where(_c(second_loses, x, y), 0.0, _where(_c("eq", x, y), _mul(g, 0.5), g))
    return _binary(fx, fy)


def _fmaxmin(keep_first):
    def mask(x, y):
        return _c("logical_or", _c(keep_first, x, y), _c("isnan", y))
    return _binary(lambda g, x, y, out, a: _where(mask(x, y), g, 0.0),
                   lambda g, x, y, out, a: _where(mask(x, y), 0.0, g))


def _atan2_x(g, x, y, out, a):
    return _div(_mul(g, y), _add(_mul(x, x), _mul(y, y)))


def _atan2_y(g, x, y, out, a):
    return _c("neg", _div(_mul(g, x), _add(_mul(x, x), _mul(y, y))))


def _xlogy_x(g, x, y, out, a):
    return _mul(g, _c("xlogy", _c("ne", x, 0), y))


@_saves(0)
def _where_vjp(ctx, g):
    c, a, b = ctx.inputs
    _, na, nb = ctx.needs_input_grad
    ga = _sum_to(_where(c, g, 0.0), _shape_of_input(a)) if na else None
    gb = _sum_to(_where(c, 0.0, g), _shape_of_input(b)) if nb else None
    return None, ga, gb


@_saves(0, 1, 2)
def _lerp_vjp(ctx, g):
    a, b, w = ctx.inputs
    na, nb, nw = ctx.needs_input_grad
    ga = _sum_to(_mul(g, _c("sub", 1.0, w, alpha=1)), _shape_of_input(a)) if na else None
    gb = _sum_to(_mul(g, w), _shape_of_input(b)) if nb else None
    gw = _sum_to(_mul(g, _sub(b, a)), _shape_of_input(w)) if nw else None
    return ga, gb, gw


@_saves(1, 2)
def _addcmul_vjp(ctx, g):
    a, b, c = ctx.inputs
    v = ctx.attrs.get("value", 1)
    na, nb, nc = ctx.needs_input_grad
    ga = _sum_to(g, _shape_of_input(a)) if na else None
    gb = _sum_to(_mul(g, _mul(c, v)), _shape_of_input(b)) if nb else None
    gc = _sum_to(_mul(g, _mul(b, v)), _shape_of_input(c)) if nc else None
    return ga, gb, gc


@_saves(1, 2)
def _addcdiv_vjp(ctx, g):
    a, b, c = ctx.inputs
    v = ctx.attrs.get("value", 1)
    na, nb, nc = ctx.needs_input_grad
    ga = _sum_to(g, _shape_of_input(a)) if na else None
    gb = _sum_to(_div(_mul(g, v), c), _shape_of_input(b)) if nb else None
    gc = _sum_to(_c("neg", _div(_mul(_mul(g, v), b), _mul(c, c))), _shape_of_input(c)) if nc else None
    return ga, gb, gc


@_saves()
def _add_vjp(ctx, g):
    x, y = ctx.inputs
    nx, ny = ctx.needs_input_grad
    alpha = ctx.attrs.get("alpha", 1)
    gx = _sum_to(g, _shape_of_input(x)) if nx else None
    gy = _sum_to(g if alpha == 1 else _mul(g, alpha), _shape_of_input(y)) if ny else None
    return gx, gy


@_saves()
def _sub_vjp(ctx, g):
    x, y = ctx.inputs
    nx, ny = ctx.needs_input_grad
    alpha = ctx.attrs.get("alpha", 1)
    gx = _sum_to(g, _shape_of_input(x)) if nx else None
    gy = _sum_to(_c("neg", g) if alpha == 1 else _mul(g, -alpha), _shape_of_input(y)) if ny else None
    return gx, gy


@_saves()
def _fill_vjp(ctx, g):
    return (_zeros_like(ctx.inputs[0]),)


VJPS = {
    "exp": _uo(lambda g, o, a: _mul(g, o)),
    "exp2": _uo(lambda g, o, a: _mul(g, _mul(o, _LN2))),
    "expm1": _uo(lambda g, o, a: _mul(g, _add(o, 1.0))),
    "log": _ux(lambda g, x, a: _div(g, x)),
    "log2": _ux(lambda g, x, a: _div(g, _mul(x, _LN2))),
    "log10": _ux(lambda g, x, a: _div(g, _mul(x, _LN10))),
    "log1p": _ux(lambda g, x, a: _div(g, _add(x, 1.0))),
    "sqrt": _uo(lambda g, o, a: _div(g, _mul(o, 2.0))),
    "rsqrt": _uo(lambda g, o, a: _mul(g, _mul(_mul(o, _mul(o, o)), -0.5))),
    "sin": _ux(lambda g, x, a: _mul(g, _c("cos", x))),
    "cos": _ux(lambda g, x, a: _mul(g, _c("neg", _c("sin", x)))),
    "tan": _uo(lambda g, o, a: _mul(g, _add(_mul(o, o), 1.0))),
    "asin": _ux(lambda g, x, a: _mul(g, _c("rsqrt", _c("sub", 1.0, _mul(x, x), alpha=1)))),
    "acos": _ux(lambda g, x, a: _mul(g, _c("neg", _c("rsqrt", _c("sub", 1.0, _mul(x, x), alpha=1))))),
    "atan": _ux(lambda g, x, a: _div(g, _add(_mul(x, x), 1.0))),
    "sinh": _ux(lambda g, x, a: _mul(g, _c("cosh", x))),
    "cosh": _ux(lambda g, x, a: _mul(g, _c("sinh", x))),
    "tanh": _uo(lambda g, o, a: _mul(g, _c("sub", 1.0, _mul(o, o), alpha=1))),
    "asinh": _ux(lambda g, x, a: _mul(g, _c("rsqrt", _add(_mul(x, x), 1.0)))),
    "acosh": _ux(lambda g, x, a: _mul(g, _c("rsqrt", _sub(_mul(x, x), 1.0)))),
    "atanh": _ux(lambda g, x, a: _div(g, _c("sub", 1.0, _mul(x, x), alpha=1))),
    "erf": _ux(lambda g, x, a: _mul(g, _mul(_c("exp", _c("neg", _mul(x, x))), _TWO_OVER_SQRT_PI))),
    "erfc": _ux(lambda g, x, a: _mul(g, _mul(_c("exp", _c("neg", _mul(x, x))), -_TWO_OVER_SQRT_PI))),
    "erfinv": _uo(lambda g, o, a: _mul(g, _mul(_c("exp", _mul(o, o)), math.sqrt(math.pi) / 2))),
    "lgamma": _ux(lambda g, x, a: _mul(g, _digamma(x))),
    "sigmoid": _uo(lambda g, o, a: _mul(g, _mul(o, _c("sub", 1.0, o, alpha=1)))),
    "reciprocal": _uo(lambda g, o, a: _mul(g, _c("neg", _mul(o, o)))),
    "frac": _ug(lambda g, a: g),
    "neg": _ug(lambda g, a: _c("neg", g)),
    "abs": _ux(lambda g, x, a: _mul(g, _c("sign", x))),
    "relu": _uo(lambda g, o, a: _where(_c("gt", o, 0), g, 0.0)),
    "square": _ux(lambda g, x, a: _mul(g, _mul(x, 2.0))),
    "nan_to_num": _ux(lambda g, x, a: _where(_c("isfinite", x), g, 0.0)),
    "leaky_relu": _ux(lambda g, x, a: _where(_c("gt", x, 0), g, _mul(g, a.get("negative_slope", 0.01)))),
    "elu": _ux(lambda g, x, a: _where(_c("gt", x, 0), g, _mul(g, _mul(_c("exp", x), a.get("alpha", 1.0))))),
    "softplus": _ux(lambda g, x, a: _where(
        _c("gt", _mul(x, a.get("beta", 1.0)), a.get("threshold", 20.0)), g,
        _mul(g, _c("sigmoid", _mul(x, a.get("beta", 1.0)))))),
    "hardtanh": _ux(lambda g, x, a: _where(_c("gt", x, a.get("min_val", -1.0)),
                                           _where(_c("lt", x, a.get("max_val", 1.0)), g, 0.0), 0.0)),
    "clamp_min": _ux(lambda g, x, a: _where(_c("ge", x, a["min"]), g, 0.0)),
    "clamp_max": _ux(lambda g, x, a: _where(_c("le", x, a["max"]), g, 0.0)),
    "clamp": _ux(lambda g, x, a: _where(_c("ge", x, a["min"]), _where(_c("le", x, a["max"]), g, 0.0), 0.0)),
    "fill": _fill_vjp,
    # zero gradient (piecewise constant), as torch
    "sign": _zero_vjp, "floor": _zero_vjp, "ceil": _zero_vjp, "round": _zero_vjp, "round_decimals": _zero_vjp,
    "trunc": _zero_vjp, "div_trunc": _zero_vjp, "div_floor": _zero_vjp,
    # binary
    "add": _add_vjp,
    "sub": _sub_vjp,
    "mul": _binary(lambda g, x, y, o, a: _mul(g, y), lambda g, x, y, o, a: _mul(g, x)),
    "div": _binary(lambda g, x, y, o, a: _div(g, y),
                   lambda g, x, y, o, a: _c("neg", _mul(g, _div(_div(x, y), y)))),
    "remainder": _binary(lambda g, x, y, o, a: g, lambda g, x, y, o, a: _mul(_c("neg", g), _c("div_floor", x, y))),
    "fmod": _binary(lambda g, x, y, o, a: g, lambda g, x, y, o, a: _mul(_c("neg", g), _c("div_trunc", x, y))),
    "pow": _binary(_pow_self, _pow_exponent, output=True),
    "atan2": _binary(_atan2_x, _atan2_y),
    "hypot": _binary(lambda g, x, y, o, a: _mul(g, _div(x, o)), lambda g, x, y, o, a: _mul(g, _div(y, o)), output=True),
    "copysign": _binary(lambda g, x, y, o, a: _mul(g, _where(_c("eq", x, 0), 0.0, _div(o, x))),
                        lambda g, x, y, o, a: _zeros_like(y), save=(0,), output=True),
    "maximum": _maxmin("lt", "gt"),
    "minimum": _maxmin("gt", "lt"),
    "fmax": _fmaxmin("ge"),
    "fmin": _fmaxmin("le"),
    "xlogy": _binary(_xlogy_x, lambda g, x, y, o, a: _mul(g, _div(x, y))),
    # ternary
    "where": _where_vjp,
    "lerp": _lerp_vjp,
    "addcmul": _addcmul_vjp,
    "addcdiv": _addcdiv_vjp,
}

NON_DIFFERENTIABLE = (
    "bitwise_not", "logical_not", "isnan", "isinf", "isposinf", "isneginf", "isfinite", "signbit",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift",
)

_register_vjps(VJPS, NON_DIFFERENTIABLE)

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
    ("erfc", 1, (), "float", lambda x: 1 - _np_erf(x), "1 - erf(x)"),
    ("erfinv", 1, (), "float", _np_erfinv, "inverse error function"),
    ("lgamma", 1, (), "float", lambda x: np.vectorize(math.lgamma, otypes=[x.dtype])(x) if x.size else x.copy(),
     "log |gamma(x)|"),
    ("sigmoid", 1, (), "float", _np_sigmoid, "1 / (1 + e**-x), no overflow for large |x|"),
    ("reciprocal", 1, (), "float", lambda x: 1 / x, "1 / x"),
    ("frac", 1, (), "same", lambda x: x - np.trunc(x), "x - trunc(x)"),
    ("neg", 1, (), "same", np.negative, "-x"),
    ("abs", 1, (), "same", np.abs, "|x|"),
    ("sign", 1, (), "same", np.sign, "-1, 0 or 1 (nan stays nan)"),
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

_TEMPLATE = {"add": "add_alpha", "sub": "sub_alpha"}  # add/sub carry alpha as a kernel parameter


def _dtype_rule_for(name, family):
    def check_bool_arith(out):
        if out is D.bool_ and name in ("sub", "neg"):
            raise RuntimeError(
                f"{name}: Subtraction, the `-` operator, with a bool tensor is not supported. "
                "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead."
            )

    def rule(*operands, **attrs):
        t = D.result_type(*operands)
        if family == "float":
            if name in ("div",) or t.category < 2:
                return to_float(t)
            return t
        if family == "same":
            check_bool_arith(t)
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
        impl={"cpu": _elementwise_impl(_name, _TEMPLATE.get(_name, _name), tuple(a for a, _ in _attrs))},
        scalar=_TEMPLATE.get(_name, _name),
        tags=frozenset({"elementwise", ("unary", "binary", "ternary")[_nin - 1]}),
        attrs=tuple(_attrs),
        doc=_doc,
    ))
ARITY = {name: nin for name, nin, *_ in SPECS}
FAMILY = {name: fam for name, _, _, fam, *_ in SPECS}

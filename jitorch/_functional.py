"""torch.* functions for the elementwise ops, and their Tensor methods (incl. in-place ``_`` forms).

Most functions are generated from the op table's elementwise records; the ones with torch
argument conventions of their own (div's rounding_mode, clamp's optional bounds, pow with
scalars, where) are written out below.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _dtype as D
from ._dispatch import call, call_inplace
from .ops.elementwise import ARITY, SPECS
from .tensor import Tensor

__all__ = []


def _as_operand(x):
    """Tensors pass through; Python numbers stay weak scalars; anything else becomes a tensor."""
    if isinstance(x, (Tensor, bool, int, float)):
        return x
    if isinstance(x, numbers.Number):
        return x.item() if hasattr(x, "item") else x
    from ._creation import tensor
    return tensor(x)


def _finish(result, out):
    if out is None:
        return result
    if not isinstance(out, Tensor):
        raise TypeError("out= must be a Tensor")
    if out.shape != result.shape:
        out.resize_(result.shape)
    out.copy_(result)
    return out


def _make(name, nin, attr_defaults):
    defaults = dict(attr_defaults)

    def fn(*args, out=None, **kwargs):
        if len(args) == nin and out is None and not kwargs and type(args[0]) is Tensor and (
                nin == 1 or all(type(a) is Tensor for a in args)):
            return call(name, *args, **defaults)  # the common case: tensors, default attributes
        if len(args) < nin:
            raise TypeError(f"{name}() missing required positional arguments (expected {nin} tensors, got {len(args)})")
        operands = [_as_operand(a) for a in args[:nin]]
        if not any(isinstance(o, Tensor) for o in operands):
            from ._creation import tensor
            operands[0] = tensor(operands[0])
        attrs = dict(attr_defaults)
        extra = args[nin:]
        for (k, _), v in zip(attr_defaults, extra):
            attrs[k] = v
        for k, v in kwargs.items():
            if k == "input" or k == "other":
                continue
            if k not in attrs:
                raise TypeError(f"{name}() got an unexpected keyword argument '{k}'")
            attrs[k] = v
        return _finish(call(name, *operands, **attrs), out)

    def method_(self, *args, **kwargs):
        operands = [_as_operand(a) for a in args[: nin - 1]]
        attrs = dict(attr_defaults)
        for (k, _), v in zip(attr_defaults, args[nin - 1:]):
            attrs[k] = v
        attrs.update(kwargs)
        return call_inplace(name, self, *operands, **attrs)

    fn.__name__ = name
    fn.__doc__ = f"jitorch.{name}: elementwise op (see jitorch.ops.OPS[{name!r}].doc)."
    method_.__name__ = name + "_"
    return fn, method_


def _unary_front(name, general):
    """torch.exp(input, *, out=None) and the like: a tensor goes straight to dispatch."""
    def fn(input, *, out=None):
        if out is None and type(input) is Tensor:
            return call(name, input)
        return general(input, out=out)
    fn.__name__ = name
    fn.__doc__ = general.__doc__
    return fn


_SPECIAL = {"add", "sub", "div", "pow", "where", "clamp", "clamp_min", "clamp_max", "nan_to_num", "round",
            "round_decimals", "div_trunc", "div_floor", "lerp", "addcmul", "addcdiv", "leaky_relu", "elu",
            "softplus", "hardtanh"}

_g = globals()
for _name, _nin, _attrs, *_ in SPECS:
    if _name in _SPECIAL:
        continue
    _fn, _m = _make(_name, _nin, _attrs)
    if _nin == 1 and not _attrs:
        _fn = _unary_front(_name, _fn)
    _g[_name] = _fn
    __all__.append(_name)
    if _nin == 1 and not _attrs:
        # the hot path of x.exp(), x.relu() ...: straight to dispatch, no argument juggling
        setattr(Tensor, _name, (lambda n: lambda self: call(n, self))(_name))
        setattr(Tensor, _name + "_", (lambda n: lambda self: call_inplace(n, self))(_name))
    else:
        setattr(Tensor, _name, lambda self, *a, _f=_fn, **k: _f(self, *a, **k))
        setattr(Tensor, _name + "_", _m)


# ---------------------------------------------------------------- ops with their own conventions

def add(input, other, *, alpha=1, out=None):
    """input + alpha * other."""
    return _finish(call("add", _as_operand(input), _as_operand(other), alpha=alpha), out)


def sub(input, other, *, alpha=1, out=None):
    """input - alpha * other."""
    return _finish(call("sub", _as_operand(input), _as_operand(other), alpha=alpha), out)


subtract = sub


def rsub(input, other, *, alpha=1):
    return sub(other, input, alpha=alpha)


def _div_name(rounding_mode):
    if rounding_mode is None:
        return "div"
    if rounding_mode == "trunc":
        return "div_trunc"
    if rounding_mode == "floor":
        return "div_floor"
    raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")


def _check_int_zero_div(name, a, b):
    """Integer division by zero is an error in torch (and undefined behaviour in a kernel)."""
    if D.result_type(a, b).category == 2:
        return
    if isinstance(b, Tensor):
        if b.dtype.category < 2 and b.numel() and not bool(call("ne", b, 0).all()):
            raise RuntimeError(f"{name}: ZeroDivisionError (integer division by zero)")
    elif b == 0:
        raise RuntimeError(f"{name}: ZeroDivisionError (integer division by zero)")


def div(input, other, *, rounding_mode=None, out=None):
    """input / other; rounding_mode None (true division), 'trunc' or 'floor'."""
    name = _div_name(rounding_mode)
    a, b = _as_operand(input), _as_operand(other)
    if name != "div":
        _check_int_zero_div("div", a, b)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        from ._creation import tensor
        a = tensor(a)
    return _finish(call(name, a, b), out)


divide = true_divide = div


def floor_divide(input, other, *, out=None, _inplace=False):
    a, b = _as_operand(input), _as_operand(other)
    _check_int_zero_div("floor_divide", a, b)
    if _inplace:
        return call_inplace("div_floor", a, b)
    return _finish(call("div_floor", a, b), out)


def remainder(input, other, *, out=None, _inplace=False):
    a, b = _as_operand(input), _as_operand(other)
    _check_int_zero_div("remainder", a, b)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        from ._creation import tensor
        a = tensor(a)
    if _inplace:
        return call_inplace("remainder", a, b)
    return _finish(call("remainder", a, b), out)


def fmod(input, other, *, out=None):
    a, b = _as_operand(input), _as_operand(other)
    _check_int_zero_div("fmod", a, b)
    return _finish(call("fmod", a, b), out)


def pow(input, exponent, *, out=None, _inplace=False):
    a, b = _as_operand(input), _as_operand(exponent)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        from ._creation import tensor
        a = tensor(a)
    if isinstance(b, int) and not isinstance(b, bool) and b < 0 and isinstance(a, Tensor) and a.dtype.category < 2:
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    if _inplace:
        return call_inplace("pow", a, b)
    return _finish(call("pow", a, b), out)


float_power = lambda input, exponent: pow(_as_operand(input).double() if isinstance(input, Tensor) else input,  # noqa: E731
                                          exponent.double() if isinstance(exponent, Tensor) else exponent)


def where(condition, input=None, other=None):
    """where(cond, x, y) picks x where cond else y; where(cond) is nonzero(cond, as_tuple=True)."""
    if input is None and other is None:
        from ._index import nonzero
        return nonzero(condition, as_tuple=True)
    cond = _as_operand(condition)
    if not isinstance(cond, Tensor):
        from ._creation import tensor
        cond = tensor(cond)
    if cond.dtype is not D.bool_:
        if cond.dtype is D.uint8:
            cond = cond.bool()
        else:
            raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {cond.dtype.name}")
    return call("where", cond, _as_operand(input), _as_operand(other))


def clamp(input, min=None, max=None, *, out=None):
    """Clip to [min, max]; either bound may be None, a number or a tensor."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        r = input
        if min is not None:
            r = call("maximum", r, _as_operand(min)) if isinstance(min, Tensor) else call("clamp_min", r, min=min)
        if max is not None:
            r = call("minimum", r, _as_operand(max)) if isinstance(max, Tensor) else call("clamp_max", r, max=max)
        return _finish(r, out)
    if min is None:
        r = call("clamp_max", input, max=max)
    elif max is None:
        r = call("clamp_min", input, min=min)
    else:
        r = call("clamp", input, min=min, max=max)
    return _finish(r, out)


clip = clamp


def _clamp_(self, min=None, max=None):
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if min is None:
        return call_inplace("clamp_max", self, max=max)
    if max is None:
        return call_inplace("clamp_min", self, min=min)
    return call_inplace("clamp", self, min=min, max=max)


def clamp_min(input, min):
    return call("clamp_min", input, min=min)


def clamp_max(input, max):
    return call("clamp_max", input, max=max)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None, *, out=None):
    dt = input.dtype
    if dt.category == 2:
        fi = D.finfo(dt)
        posinf = fi.max if posinf is None else posinf
        neginf = fi.min if neginf is None else neginf
    else:
        posinf = 0 if posinf is None else posinf
        neginf = 0 if neginf is None else neginf
    return _finish(call("nan_to_num", input, nan=nan, posinf=posinf, neginf=neginf), out)


def round(input, *, decimals=0, out=None):
    if decimals == 0:
        return _finish(call("round", input), out)
    return _finish(call("round_decimals", input, scale=float(10.0 ** decimals)), out)


def lerp(input, end, weight, *, out=None):
    return _finish(call("lerp", input, _as_operand(end), _as_operand(weight)), out)


def _check_value(op, input, value):
    if isinstance(value, float) and not input.dtype.is_floating_point:
        raise RuntimeError(f"{op}: for integral input tensors, argument value must not be a floating point number "
                           f"(got {value})")


def addcmul(input, tensor1, tensor2, *, value=1, out=None):
    _check_value("addcmul", input, value)
    return _finish(call("addcmul", input, tensor1, tensor2, value=value), out)


def addcdiv(input, tensor1, tensor2, *, value=1, out=None):
    if not (input.dtype.is_floating_point or getattr(tensor1, "dtype", D.float32).is_floating_point
            or getattr(tensor2, "dtype", D.float32).is_floating_point):
        raise RuntimeError("addcdiv: integer division with addcdiv is no longer supported; use addcmul(input, "
                           "tensor1, 1 / tensor2) or convert to float")
    return _finish(call("addcdiv", input, tensor1, tensor2, value=value), out)


def true_divide_(self, other):
    return call_inplace("div", self, _as_operand(other))


# aliases torch provides
absolute = globals()["abs"]
negative = globals()["neg"]
arcsin, arccos, arctan = globals()["asin"], globals()["acos"], globals()["atan"]
arcsinh, arccosh, arctanh = globals()["asinh"], globals()["acosh"], globals()["atanh"]
arctan2 = globals()["atan2"]
multiply = globals()["mul"]
greater, greater_equal, less, less_equal = globals()["gt"], globals()["ge"], globals()["lt"], globals()["le"]
not_equal = globals()["ne"]
fix = globals()["trunc"]


def _bind_methods():
    T = Tensor
    T.add = lambda self, other, *, alpha=1: add(self, other, alpha=alpha)
    T.add_ = lambda self, other, *, alpha=1: call_inplace(
        "add", self, other if type(other) is Tensor else _as_operand(other), alpha=alpha)
    T.sub = lambda self, other, *, alpha=1: sub(self, other, alpha=alpha)
    T.sub_ = lambda self, other, *, alpha=1: call_inplace(
        "sub", self, other if type(other) is Tensor else _as_operand(other), alpha=alpha)
    T.subtract, T.subtract_ = T.sub, T.sub_
    T.div = lambda self, other, *, rounding_mode=None: div(self, other, rounding_mode=rounding_mode)

    def div_(self, other, *, rounding_mode=None):
        name = _div_name(rounding_mode)
        if name != "div":
            _check_int_zero_div("div_", self, _as_operand(other))
        return call_inplace(name, self, _as_operand(other))
    T.div_ = div_
    T.divide, T.divide_, T.true_divide, T.true_divide_ = T.div, T.div_, T.div, true_divide_
    T.floor_divide = lambda self, other: floor_divide(self, other)
    T.floor_divide_ = lambda self, other: floor_divide(self, other, _inplace=True)
    T.remainder = lambda self, other: remainder(self, other)
    T.remainder_ = lambda self, other: remainder(self, other, _inplace=True)
    T.fmod = lambda self, other: fmod(self, other)
    T.fmod_ = lambda self, other: call_inplace("fmod", self, _as_operand(other))
    T.pow = lambda self, exponent: pow(self, exponent)
    T.pow_ = lambda self, exponent: pow(self, exponent, _inplace=True)
    T.float_power = lambda self, exponent: float_power(self, exponent)
    T.clamp = T.clip = lambda self, min=None, max=None: clamp(self, min, max)
    T.clamp_ = T.clip_ = _clamp_
    T.clamp_min = lambda self, min: clamp_min(self, min)
    T.clamp_max = lambda self, max: clamp_max(self, max)
    T.clamp_min_ = lambda self, min: call_inplace("clamp_min", self, min=min)
    T.clamp_max_ = lambda self, max: call_inplace("clamp_max", self, max=max)
    T.nan_to_num = lambda self, nan=0.0, posinf=None, neginf=None: nan_to_num(self, nan, posinf, neginf)

    def nan_to_num_(self, nan=0.0, posinf=None, neginf=None):
        return self.copy_(nan_to_num(self, nan, posinf, neginf))
    T.nan_to_num_ = nan_to_num_
    T.round = lambda self, decimals=0: round(self, decimals=decimals)
    T.round_ = lambda self, decimals=0: self.copy_(round(self, decimals=decimals))
    T.lerp = lambda self, end, weight: lerp(self, end, weight)
    T.lerp_ = lambda self, end, weight: call_inplace("lerp", self, _as_operand(end), _as_operand(weight))
    T.addcmul = lambda self, t1, t2, *, value=1: addcmul(self, t1, t2, value=value)
    T.addcmul_ = lambda self, t1, t2, *, value=1: call_inplace("addcmul", self, t1, t2, value=value)
    T.addcdiv = lambda self, t1, t2, *, value=1: addcdiv(self, t1, t2, value=value)
    T.addcdiv_ = lambda self, t1, t2, *, value=1: call_inplace("addcdiv", self, t1, t2, value=value)
    T.where = lambda self, condition, other: where(condition, self, other)
    T.mul = lambda self, other: call("mul", self, _as_operand(other))
    T.mul_ = lambda self, other: call_inplace("mul", self, _as_operand(other))
    T.multiply, T.multiply_ = T.mul, T.mul_
    T.absolute, T.absolute_ = T.abs, T.abs_
    T.negative, T.negative_ = T.neg, T.neg_
    T.arcsin, T.arccos, T.arctan = T.asin, T.acos, T.atan
    T.greater, T.greater_equal, T.less, T.less_equal, T.not_equal = T.gt, T.ge, T.lt, T.le, T.ne
    T.fix = T.trunc

    def zero_(self):
        return call_inplace("fill", self, value=0)

    def fill_(self, value):
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} dimensions.")
            return call_inplace("copy", self, value)  # broadcast copy: traceable, no Python value
        return call_inplace("fill", self, value=value)
    T.zero_, T.fill_ = zero_, fill_


_bind_methods()
__all__ += ["add", "sub", "subtract", "rsub", "div", "divide", "true_divide", "floor_divide", "remainder", "fmod",
            "pow", "float_power", "where", "clamp", "clip", "clamp_min", "clamp_max", "nan_to_num", "round", "lerp",
            "addcmul", "addcdiv", "absolute", "negative", "arcsin", "arccos", "arctan", "arcsinh", "arccosh",
            "arctanh", "arctan2", "multiply", "greater", "greater_equal", "less", "less_equal", "not_equal", "fix"]
_ = (np, ARITY)

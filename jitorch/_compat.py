"""Small torch names that scripts reach for: constants, legacy tensor types, ``torch.<op>_``,
matmul-precision switches. Each behaves as torch's does on a CPU build.
"""
from __future__ import annotations

import math

from . import _dtype as D
from .tensor import Tensor

__all__ = ["inf", "nan", "pi", "e", "FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor",
           "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor", "set_float32_matmul_precision",
           "get_float32_matmul_precision", "INPLACE_FUNCTIONS"]

inf, nan, pi, e = math.inf, math.nan, math.pi, math.e


# ------------------------------------------------------------------ legacy tensor types

class _LegacyMeta(type):
    """``isinstance(x, torch.FloatTensor)``: a cpu tensor of that dtype (torch's rule)."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype is cls.dtype and obj.device.type == "cpu"


class _LegacyTensor(metaclass=_LegacyMeta):
    """``torch.FloatTensor(data)`` copies ``data`` (lists, tuples, arrays) into a new tensor of this
    type; ``torch.FloatTensor(2, 3)`` or ``torch.FloatTensor(torch.Size([2, 3]))`` makes an
    uninitialized one; ``torch.FloatTensor()`` an empty one."""

    dtype = None

    def __new__(cls, *args, device=None):
        from ._creation import empty, tensor
        if not args:
            return empty(0, dtype=cls.dtype, device=device)
        if all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            if any(a < 0 for a in args):
                raise RuntimeError(f"{cls.__name__}: negative dimension in {args}")
            return empty(*args, dtype=cls.dtype, device=device)
        if len(args) == 1:
            a = args[0]
            if isinstance(a, Tensor):
                return a.to(cls.dtype)
            if type(a).__name__ == "Size":
                return empty(*a, dtype=cls.dtype, device=device)
            return tensor(a, dtype=cls.dtype, device=device)
        raise TypeError(f"{cls.__name__}(): expected sizes (ints) or one sequence of data, got "
                        f"{', '.join(type(a).__name__ for a in args)}")


def _legacy(name, dtype):
    return _LegacyMeta(name, (_LegacyTensor,), {"dtype": dtype, "__module__": "jitorch", "__qualname__": name})


FloatTensor = _legacy("FloatTensor", D.float32)
DoubleTensor = _legacy("DoubleTensor", D.float64)
HalfTensor = _legacy("HalfTensor", D.float16)
LongTensor = _legacy("LongTensor", D.int64)
IntTensor = _legacy("IntTensor", D.int32)
ShortTensor = _legacy("ShortTensor", D.int16)
CharTensor = _legacy("CharTensor", D.int8)
ByteTensor = _legacy("ByteTensor", D.uint8)
BoolTensor = _legacy("BoolTensor", D.bool_)


# ------------------------------------------------------------------ matmul precision

_PRECISION = ["highest"]


def set_float32_matmul_precision(precision):
    """torch.set_float32_matmul_precision: 'highest', 'high' or 'medium'. jitorch's float32 products
    always compute in float32 (no TF32/bfloat16 paths), i.e. 'highest', whatever is set."""
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"set_float32_matmul_precision: invalid precision {precision!r}; "
                           "expected 'highest', 'high' or 'medium'")
    _PRECISION[0] = precision


def get_float32_matmul_precision():
    return _PRECISION[0]


# ------------------------------------------------------------------ torch.<op>_ (in-place functions)

#: the in-place functional spellings torch has (torch.exp_(x) is x.exp_())
INPLACE_FUNCTIONS = ("abs", "acos", "acosh", "asin", "asinh", "atan", "atanh", "ceil", "clamp", "clamp_max",
                     "clamp_min", "clip", "cos", "cosh", "erf", "erfc", "erfinv", "exp", "exp2", "expm1", "fill",
                     "floor", "frac", "log", "log10", "log1p", "log2", "nan_to_num", "neg", "negative",
                     "reciprocal", "relu", "round", "rsqrt", "sigmoid", "sin", "sinh", "sqrt", "square", "tan",
                     "tanh", "trunc", "zero")


def _inplace(name):
    method = name + "_"

    def fn(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            raise TypeError(f"{method}(): argument 'input' must be Tensor, not {type(input).__name__}")
        return getattr(input, method)(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = method
    fn.__doc__ = f"torch.{method}(input, ...): ``input.{method}(...)``, in place; returns ``input``."
    return fn


INPLACE = {n + "_": _inplace(n) for n in INPLACE_FUNCTIONS if hasattr(Tensor, n + "_")}

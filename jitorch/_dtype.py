"""dtypes and torch's type promotion.

A :class:`dtype` wraps a NumPy dtype (the storage of a cpu tensor) and knows its category:
bool < integer < floating. Promotion follows torch, not NumPy:

- any integer with a floating dtype gives that floating dtype (NumPy: int16 + float16 -> float32,
  torch: float16);
- Python scalars are *weak*: they only choose the category (``int8_tensor + 5`` stays int8,
  ``int8_tensor + 2.5`` is the default float dtype, ``float16_tensor + 2.5`` stays float16);
- 0-dim tensors are weaker than tensors with dimensions of the same category
  (``int8[3] + int64[]`` is int8), but a higher category still wins.
"""
from __future__ import annotations

import numpy as np


class dtype:
    """A tensor element type, with torch's name (``jitorch.float32``) and its NumPy storage type."""

    __slots__ = ("name", "np", "itemsize", "is_floating_point", "is_signed", "category", "short", "_rank")

    def __init__(self, name, np_dtype, category, short, rank):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize
        self.category = category  # 0 bool, 1 integer, 2 floating
        self.is_floating_point = category == 2
        self.is_signed = category == 2 or (category == 1 and self.np.kind == "i")
        self.short = short  # IR spelling: f32, i64, b8 ...
        self._rank = rank

    @property
    def is_complex(self):
        return False

    def to_real(self):
        return self

    def __repr__(self):
        return f"jitorch.{self.name}"

    def __reduce__(self):  # dtypes are singletons, also across multiprocessing
        return (_from_name, (self.name,))


def _from_name(name):
    return _BY_NAME[name]


bool_ = dtype("bool", np.bool_, 0, "b8", 0)
uint8 = dtype("uint8", np.uint8, 1, "u8", 1)
int8 = dtype("int8", np.int8, 1, "i8", 1)
int16 = dtype("int16", np.int16, 1, "i16", 2)
int32 = dtype("int32", np.int32, 1, "i32", 3)
int64 = dtype("int64", np.int64, 1, "i64", 4)
float16 = dtype("float16", np.float16, 2, "f16", 1)
float32 = dtype("float32", np.float32, 2, "f32", 2)
float64 = dtype("float64", np.float64, 2, "f64", 3)

ALL_DTYPES = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
FLOAT_DTYPES = (float16, float32, float64)
INT_DTYPES = (uint8, int8, int16, int32, int64)
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_SHORT = {d.short: d for d in ALL_DTYPES}
_BY_NP = {d.np: d for d in ALL_DTYPES}

_default_dtype = float32


def get_default_dtype():
    return _default_dtype


def set_default_dtype(d):
    """Set the dtype that Python floats and float factories produce (float32 or float64, as torch)."""
    global _default_dtype
    d = as_dtype(d)
    if d not in (float16, float32, float64):
        raise TypeError(f"set_default_dtype: only floating-point dtypes are supported as default, got {d}")
    _default_dtype = d


def as_dtype(d) -> dtype:
    """Accept a jitorch dtype, a NumPy dtype/type, a name ('float32', 'f32') or Python float/int/bool."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return _default_dtype
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str):
        if d in _BY_NAME:
            return _BY_NAME[d]
        if d in _BY_SHORT:
            return _BY_SHORT[d]
        alias = _ALIASES.get(d)
        if alias is not None:
            return alias
    try:
        npd = np.dtype(d)
    except TypeError:
        npd = None
    if npd is not None and npd in _BY_NP:
        return _BY_NP[npd]
    raise TypeError(
        f"unsupported dtype {d!r}; jitorch supports {', '.join(x.name for x in ALL_DTYPES)}"
    )


def from_numpy_dtype(npd) -> dtype:
    d = _BY_NP.get(np.dtype(npd))
    if d is None:
        raise TypeError(
            f"can't convert np.ndarray of type {np.dtype(npd)}. The only supported types are: "
            + ", ".join(x.name for x in ALL_DTYPES)
        )
    return d


_ALIASES = {"float": float32, "double": float64, "half": float16, "long": int64, "int": int32,
            "short": int16, "bool": bool_}


def promote_types(a: dtype, b: dtype) -> dtype:
    """torch.promote_types: the smallest dtype both values fit in (int + float -> the float)."""
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    if a.category == 2:
        return a if a._rank >= b._rank else b
    if a.category == 0:
        return a
    # integers: mixing uint8 with a signed type needs a wider signed type
    if a is uint8 or b is uint8:
        other = b if a is uint8 else a
        return {int8: int16, int16: int16, int32: int32, int64: int64}[other]
    return a if a._rank >= b._rank else b


def _weak_dtype(value) -> dtype:
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, (float, np.floating)):
        return _default_dtype
    raise TypeError(f"unsupported scalar type {type(value).__name__}")


def _combine(higher, lower):
    """torch's combine_categories: the stronger group wins unless the weaker has a higher category."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.category == 2:
        return higher
    if higher.category == 0 or lower.category == 2:
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> dtype:
    """Promote tensors (objects with ``.dtype`` and ``.ndim``) and Python scalars as torch does."""
    dim = zero = weak = None
    for x in operands:
        d = getattr(x, "dtype", None)
        if isinstance(d, dtype):
            if x.ndim > 0:
                dim = d if dim is None else promote_types(dim, d)
            else:
                zero = d if zero is None else promote_types(zero, d)
        else:
            w = _weak_dtype(x)
            # a weak Python scalar only contributes its category: int64 for ints, default float for floats
            weak = w if weak is None else promote_types(weak, w)
    return _combine(dim, _combine(zero, weak))


def type_name(d: dtype) -> str:
    """torch's legacy type names, for Tensor.type()."""
    return {float32: "FloatTensor", float64: "DoubleTensor", float16: "HalfTensor", int64: "LongTensor",
            int32: "IntTensor", int16: "ShortTensor", int8: "CharTensor", uint8: "ByteTensor",
            bool_: "BoolTensor"}[d]


class finfo:
    """torch.finfo for floating dtypes."""

    def __init__(self, d=None):
        d = _default_dtype if d is None else as_dtype(d)
        if not d.is_floating_point:
            raise TypeError(f"finfo: {d} is not a floating point dtype; use iinfo")
        i = np.finfo(d.np)
        self.dtype = d.name
        self.bits = i.bits
        self.eps = float(i.eps)
        self.max = float(i.max)
        self.min = float(i.min)
        self.tiny = self.smallest_normal = float(i.tiny)
        self.resolution = float(i.resolution)

    def __repr__(self):
        return f"finfo(resolution={self.resolution}, min={self.min}, max={self.max}, eps={self.eps}, tiny={self.tiny}, dtype={self.dtype})"


class iinfo:
    """torch.iinfo for integer dtypes."""

    def __init__(self, d):
        d = as_dtype(d)
        if d.category == 2:
            raise TypeError(f"iinfo: {d} is a floating point dtype; use finfo")
        i = np.iinfo(d.np) if d is not bool_ else np.iinfo(np.uint8)
        self.dtype = d.name
        self.bits = i.bits
        self.max = int(i.max)
        self.min = int(i.min)

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"

"""torch.isclose / torch.allclose / torch.equal (and their Tensor methods), composed from op-table ops.

``isclose(a, b)`` is ``|a - b| <= atol + rtol * |b|`` where both are finite, exact equality where
either is infinite, and NaN == NaN only with ``equal_nan=True`` — torch's definition. Both inputs
must have one dtype (torch's rule); integers are compared through float64, bool by equality.
Built from ops, so it runs on every device the ops do and is traced like any other call.
"""
from __future__ import annotations

from . import _dtype as D
from .tensor import Tensor

__all__ = ["isclose", "allclose", "equal"]


def _check(name, a, b, rtol, atol):
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"{name}(): argument 'input' and 'other' must be Tensors, got "
                        f"{type(a).__name__} and {type(b).__name__}")
    if a.dtype is not b.dtype:
        raise RuntimeError(f"{name}(): expected both inputs to have the same dtype, but got {a.dtype.name} and "
                           f"{b.dtype.name}; convert one with .to(other.dtype)")
    if rtol < 0 or atol < 0:
        raise RuntimeError(f"{name}(): rtol and atol must be non-negative, got rtol={rtol}, atol={atol}")


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise closeness (torch.isclose): a bool tensor of the broadcast shape."""
    _check("isclose", input, other, rtol, atol)
    a, b = input, other
    eq = a == b
    if a.dtype is D.bool_:
        return eq
    if not a.dtype.is_floating_point:
        a, b = a.to(D.float64), b.to(D.float64)
    close = eq | (a.isfinite() & b.isfinite() & ((a - b).abs() <= atol + rtol * b.abs()))
    if equal_nan:
        close = close | (a.isnan() & b.isnan())
    return close


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when every element of the broadcast pair is close (torch.allclose)."""
    return bool(isclose(input, other, rtol=rtol, atol=atol, equal_nan=equal_nan).all())


def equal(input, other):
    """True when both tensors have the same size and elements (torch.equal)."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError(f"equal(): argument 'input' and 'other' must be Tensors, got "
                        f"{type(input).__name__} and {type(other).__name__}")
    if tuple(input.shape) != tuple(other.shape):
        return False
    return bool((input == other).all())


Tensor.isclose = isclose
Tensor.allclose = allclose
Tensor.equal = equal

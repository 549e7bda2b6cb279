"""nn.Parameter and nn.Buffer: Tensor subclasses that modules register when they are assigned.

A :class:`Parameter` shares its data's storage (and version counter) and is a leaf that requires
grad by default. Results of ops on a parameter are plain Tensors, as in torch.
"""
from __future__ import annotations

from ..tensor import Tensor

__all__ = ["Parameter", "Buffer", "UninitializedParameter", "is_lazy"]


def _wrap_as(cls, data, requires_grad):
    if data is None:
        from .._creation import empty
        data = empty(0)
    if not isinstance(data, Tensor):
        raise TypeError(f"{cls.__name__}: data must be a Tensor, got {type(data).__name__}")
    t = object.__new__(cls)
    t._data = data._data
    t._device = data._device
    t._version_box = data._version_box
    if requires_grad:
        if not data.dtype.is_floating_point:
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        t.requires_grad = True
    return t


class Parameter(Tensor):
    """A Tensor that is a module parameter: ``Parameter(data=None, requires_grad=True)``."""

    def __new__(cls, data=None, requires_grad=True):
        return _wrap_as(cls, data, requires_grad)

    def __init__(self, data=None, requires_grad=True):  # storage set up in __new__
        pass

    def __repr__(self):
        from .._printing import tensor_repr
        return "Parameter containing:\n" + tensor_repr(_make_plain(self))

    __str__ = __repr__

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        # .copy(): a new C-ordered array of the same device (NumPy's, or the cuda backend's CudaArray)
        result = Parameter(Tensor._wrap(self._data.copy(), self._device), self.requires_grad)
        memo[id(self)] = result
        if self.grad is not None:
            import copy
            result.grad = copy.deepcopy(self.grad, memo)
        return result

    def __reduce_ex__(self, proto):
        import numpy as np
        # _host(): the values on the host (a copy for cuda); the rebuilt parameter goes back to its device
        return (_rebuild_parameter, (np.ascontiguousarray(self._host()), str(self._device), self.requires_grad))


def _rebuild_parameter(arr, dev, requires_grad):
    from .._device import as_device
    dev = as_device(dev)
    t = Tensor._wrap(arr)
    if dev.type != "cpu":
        from .. import _devices
        t = _devices.move(t, dev)
    return Parameter(t, requires_grad)


class Buffer(Tensor):
    """``nn.Buffer(data, persistent=True)``: assigning one to a module attribute registers a buffer."""

    def __new__(cls, data=None, *, persistent=True):
        t = _wrap_as(cls, data, False)
        t.persistent = persistent
        return t

    def __init__(self, data=None, *, persistent=True):
        pass


class UninitializedParameter(Parameter):
    """Placeholder of lazy modules (not supported: jitorch has no lazy modules)."""


def is_lazy(param):
    return isinstance(param, UninitializedParameter)


def _make_plain(t):
    """A plain Tensor view of a Parameter's storage keeping requires_grad/grad_fn (for printing)."""
    p = Tensor._wrap(t._data, t._device)
    p._version_box = t._version_box
    p.requires_grad = t.requires_grad
    return p


"""Tensor creation: tensor, as_tensor, from_numpy, zeros/ones/full/empty (+ _like), arange, linspace,
logspace, eye, and Tensor.new_*. Data from Python lists goes through NumPy's parser once; fills and
ranges run kernels (``kernels.shape``)."""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import _dtype as D
from ._device import as_device, factory_device
from .tensor import Tensor, _shape_arg


def _infer_dtype(data):
    """torch.tensor's inference: bool -> bool, ints -> int64, any float -> default dtype."""
    if isinstance(data, Tensor):
        return data.dtype
    if isinstance(data, np.ndarray):
        return D.from_numpy_dtype(data.dtype)
    if isinstance(data, (bool, np.bool_)):
        return D.bool_
    if isinstance(data, (int, np.integer)):
        return D.int64
    if isinstance(data, (float, np.floating)):
        return D.get_default_dtype()
    if isinstance(data, (list, tuple)):
        kinds = set()
        stack = [data]
        while stack:
            x = stack.pop()
            if isinstance(x, (list, tuple)):
                stack.extend(x)
            elif isinstance(x, Tensor):
                kinds.add(x.dtype.category)
            elif isinstance(x, (bool, np.bool_)):
                kinds.add(0)
            elif isinstance(x, (int, np.integer)):
                kinds.add(1)
            elif isinstance(x, (float, np.floating)):
                kinds.add(2)
            else:
                raise TypeError(f"tensor(): could not infer dtype of {type(x).__name__}")
        if not kinds:
            return D.get_default_dtype()
        return {0: D.bool_, 1: D.int64, 2: D.get_default_dtype()}[max(kinds)]
    raise TypeError(f"tensor(): could not infer dtype of {type(data).__name__}")


def _to_array(data, dtype):
    if isinstance(data, Tensor):
        return np.array(data._data, dtype=dtype.np)
    if isinstance(data, (list, tuple)):
        data = _unwrap(data)
        try:
            arr = np.array(data, dtype=dtype.np if dtype is not D.bool_ else np.bool_)
        except (ValueError, OverflowError) as e:
            raise ValueError(f"tensor(): expected a sequence of numbers of regular shape: {e}") from None
        if arr.dtype == object:
            raise ValueError("tensor(): expected a sequence of numbers of regular shape")
        return arr
    return np.array(data, dtype=dtype.np)


def _unwrap(x):
    if isinstance(x, (list, tuple)):
        return [_unwrap(v) for v in x]
    if isinstance(x, Tensor):
        return x.tolist()
    return x


def _finish(t, device, requires_grad):
    """Move ``t`` to ``device`` (None: leave it where it is) and set requires_grad."""
    if device is not None:
        dev = as_device(device)
        if dev != t.device:
            t = t.to(dev)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """A new tensor holding a copy of ``data`` (nested lists, numbers, NumPy arrays or tensors)."""
    if isinstance(data, Tensor):
        # a copy through dispatch (recorded when tracing), detached from autograd as torch does
        t = data.detach().clone()
        if dtype is not None and D.as_dtype(dtype) is not t.dtype:
            t = t.to(D.as_dtype(dtype))
        return _finish(t, device if device is not None else data.device, requires_grad)
    dt = D.as_dtype(dtype) if dtype is not None else _infer_dtype(data)
    if isinstance(data, np.ndarray) and data.dtype == object:
        raise TypeError("tensor(): can't convert np.ndarray of type numpy.object_")
    arr = _to_array(data, dt)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return _finish(Tensor._wrap(arr), factory_device(device), requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Share memory with ``data`` when it is already a tensor/array of the right dtype and device."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype) if (dtype or device) else data
    if isinstance(data, np.ndarray) and (dtype is None or D.as_dtype(dtype).np == data.dtype):
        return _finish(from_numpy(data), factory_device(device), False)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(arr):
    """Zero-copy: the tensor and the array share memory (writes to one show in the other)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(arr).__name__})")
    D.from_numpy_dtype(arr.dtype)  # raises for unsupported dtypes
    if any(s < 0 for s in arr.strides):
        raise ValueError(
            "At least one stride in the given numpy array is negative, and tensors with negative strides are not "
            "currently supported. (You can probably work around this by making a copy of your array with array.copy().)"
        )
    if not arr.dtype.isnative:
        raise ValueError("from_numpy: non-native byte order is not supported; use arr.astype(arr.dtype.newbyteorder('='))")
    return Tensor._wrap(arr)


def from_dlpack(ext):
    if isinstance(ext, Tensor):
        return ext
    return from_numpy(np.from_dlpack(ext))


def _size(size):
    shape = _shape_arg(size)
    for s in shape:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(shape)}")
    return shape


def _dt(dtype, default=None):
    return D.as_dtype(dtype) if dtype is not None else (default or D.get_default_dtype())


def _alloc(shape, dtype, device):
    """An uninitialized tensor made directly on ``device`` (no host copy for cuda)."""
    dev = factory_device(device)
    if dev.type == "cpu":
        return Tensor._wrap(np.empty(shape, dtype.np))
    from . import _devices
    dev = _devices.check_device(dev)
    return Tensor._wrap(_devices.empty(shape, dtype.np, dev), dev)


def empty(*size, dtype=None, device=None, requires_grad=False, out=None, layout=None, pin_memory=False,
          memory_format=None):
    t = _alloc(_size(size), _dt(dtype), device)
    return _finish(t, None, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False, out=None, layout=None):
    if dtype is None:
        dtype = _infer_dtype(fill_value.item() if isinstance(fill_value, Tensor) else fill_value)
    t = _alloc(_size((size,) if isinstance(size, int) else size), _dt(dtype), device)
    t.fill_(fill_value)
    return _finish(t, None, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False, out=None, layout=None):
    t = empty(*size, dtype=dtype, device=device)
    t.fill_(0)
    return _finish(t, None, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, out=None, layout=None):
    t = empty(*size, dtype=dtype, device=device)
    t.fill_(1)
    return _finish(t, None, requires_grad)


def _like_dtype(x, dtype):
    return x.dtype if dtype is None else dtype


def empty_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None, layout=None):
    return empty(input.shape, dtype=_like_dtype(input, dtype), device=device or input.device, requires_grad=requires_grad)


def _traced_fill(input, value, dtype, device, requires_grad):
    """While a trace records ops: ``fill(input, value)`` (out of place, no autograd), so the graph makes the
    result from ``input``'s shape (a dynamic batch follows it) instead of capturing a constant of the traced
    size. None when not tracing or when dtype/device differ from ``input``'s (the eager path then)."""
    from . import _dispatch
    if _dispatch.hooks.tracer is None or not isinstance(input, Tensor) or requires_grad:
        return None
    if (dtype is not None and D.as_dtype(dtype) is not input.dtype) or (
            device is not None and as_device(device) != input.device):
        return None
    if isinstance(value, Tensor) or isinstance(value, bool) and input.dtype is not D.bool_:
        return None
    saved = _dispatch.hooks.grad_enabled
    _dispatch.hooks.grad_enabled = False
    try:
        return _dispatch.call("fill", input, value=value)
    finally:
        _dispatch.hooks.grad_enabled = saved


def zeros_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None, layout=None):
    t = _traced_fill(input, 0, dtype, device, requires_grad)
    if t is not None:
        return t
    return zeros(input.shape, dtype=_like_dtype(input, dtype), device=device or input.device, requires_grad=requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None, layout=None):
    t = _traced_fill(input, 1, dtype, device, requires_grad)
    if t is not None:
        return t
    return ones(input.shape, dtype=_like_dtype(input, dtype), device=device or input.device, requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False, memory_format=None, layout=None):
    t = _traced_fill(input, fill_value, dtype, device, requires_grad)
    if t is not None:
        return t
    return full(input.shape, fill_value, dtype=_like_dtype(input, dtype), device=device or input.device,
                requires_grad=requires_grad)


def arange(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False, out=None, layout=None):
    """[start, end) with step; int64 unless an argument is a float (then the default dtype)."""
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    for v in vals:
        if isinstance(v, float) and not math.isfinite(v):
            raise RuntimeError(f"arange: unsupported range: {start} -> {end} (values must be finite)")
    if (end - start) * step < 0:
        raise RuntimeError(
            f"arange: upper bound and larger bound inconsistent with step sign (start={start}, end={end}, step={step})")
    if dtype is None:
        dtype = D.get_default_dtype() if any(isinstance(v, float) for v in vals) else D.int64
    dtype = D.as_dtype(dtype)
    n = max(0, math.ceil((end - start) / step))
    from .kernels import shape as _k
    arr = np.empty(n, dtype.np if dtype is not D.float16 else np.float32)
    _k.arange(start, step, arr)
    if dtype is D.float16:
        arr = _cast_np(arr, D.float16)
    return _finish(Tensor._wrap(arr), factory_device(device), requires_grad)


def _cast_np(arr, dtype):
    out = Tensor._wrap(arr)._cast(dtype)
    return out._data


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False, out=None, layout=None):
    if not isinstance(steps, numbers.Integral) or steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative (got {steps})")
    dtype = _dt(dtype)
    from .kernels import shape as _k
    arr = np.empty(int(steps), np.float64)
    _k.linspace(float(start), float(end), arr)
    t = Tensor._wrap(arr)
    if dtype is not D.float64:
        t = t._cast(dtype)
    return _finish(t, factory_device(device), requires_grad)


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None, requires_grad=False, out=None):
    dtype = _dt(dtype)
    exps = linspace(start, end, steps, dtype=D.float64, device="cpu")
    from ._functional import pow as _pow
    t = _pow(float(base), exps)
    return _finish(t._cast(dtype) if dtype is not D.float64 else t, factory_device(device), requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False, out=None, layout=None):
    m = n if m is None else m
    if n < 0 or m < 0:
        raise RuntimeError(f"eye: n and m must be non-negative (got n={n}, m={m})")
    t = zeros(n, m, dtype=dtype, device=device)
    if n and m:
        t.diagonal().fill_(1)
    return _finish(t, None, requires_grad)


def _legacy_tensor(*args, **kwargs):
    """torch.Tensor(...): sizes -> uninitialized default-dtype tensor; a sequence -> float data."""
    if not args:
        return empty(0)
    if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
        return tensor(args[0], dtype=D.get_default_dtype())
    return empty(*args)


def _new(self, maker):
    def method(*args, dtype=None, device=None, requires_grad=False, **kw):
        return maker(*args, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad, **kw)
    return method


def _bind():
    Tensor.new_empty = lambda self, *size, **kw: _new(self, empty)(*size, **kw)
    Tensor.new_zeros = lambda self, *size, **kw: _new(self, zeros)(*size, **kw)
    Tensor.new_ones = lambda self, *size, **kw: _new(self, ones)(*size, **kw)
    Tensor.new_full = lambda self, size, fill_value, **kw: _new(self, full)(size, fill_value, **kw)
    Tensor.new_tensor = lambda self, data, dtype=None, device=None, requires_grad=False: tensor(
        data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)


_bind()

"""Devices of tensors: moving between them and allocating on them.

The cpu device is always here. The cuda backend (jitorch/backends/cuda.py) is imported the first
time a tensor goes to 'cuda' (``import jitorch`` never imports numba.cuda, which costs ~0.3 s)
and registers its movers and allocator here. Without a GPU and without numba's simulator
(``NUMBA_ENABLE_CUDASIM=1``) cuda is unavailable and moving to it raises torch's error.
"""
from __future__ import annotations

import numpy as np

_movers = {}
_allocators = {"cpu": np.empty}
_cuda_state = None  # None: not probed yet; True: backend loaded; False: unavailable


def register_mover(src_type, dst_type, fn):
    _movers[(src_type, dst_type)] = fn


def register_allocator(device_type, fn):
    """``fn(shape, numpy dtype)`` -> the ``_data`` of a new contiguous tensor on that device type."""
    _allocators[device_type] = fn


def cuda_available() -> bool:
    """True when numba.cuda finds a GPU or runs the simulator (probed once, lazily)."""
    global _cuda_state
    if _cuda_state is None:
        try:
            from numba import cuda
            ok = bool(cuda.is_available())
        except Exception:  # a broken driver install reads as "no GPU", as torch does
            ok = False
        _cuda_state = ok
    return _cuda_state


def cuda_device_count() -> int:
    if not cuda_available():
        return 0
    from numba import cuda
    try:
        return len(cuda.gpus)
    except Exception:
        return 0


class CudaUnavailableError(RuntimeError, AssertionError):
    """torch raises AssertionError("Torch not compiled with CUDA enabled"); jitorch's is also a
    RuntimeError, the type of every other device error."""


def _not_compiled():
    return CudaUnavailableError(
        "Torch not compiled with CUDA enabled: numba.cuda found no GPU (set NUMBA_ENABLE_CUDASIM=1 to run cuda "
        "tensors on numba's simulator, or install the 'cuda' extra on a machine with a GPU); keep tensors on "
        "'cpu' (jitorch.cuda.is_available() returns False)"
    )


def check_device(dev):
    """Validate a device before anything is created on it; returns the normalized device."""
    if dev.type != "cuda":
        return dev
    if not cuda_available():
        raise _not_compiled()
    load_cuda()
    n = cuda_device_count()
    index = dev.index
    if index is None:
        from .cuda import current_device
        index = current_device()
    if index >= n:
        raise RuntimeError(f"CUDA error: invalid device ordinal (device {dev} requested, {n} device(s) visible)")
    from ._device import device
    return device("cuda", index)


def load_cuda():
    """Import the cuda backend (registers movers and the allocator)."""
    if ("cpu", "cuda") not in _movers:
        if not cuda_available():
            raise _not_compiled()
        from .backends import cuda as _backend  # noqa: F401  (registers itself)


def allocator(dev):
    """The allocator of device ``dev``: ``fn(shape, numpy dtype)``."""
    fn = _allocators.get(dev.type)
    if fn is None:
        check_device(dev)
        fn = _allocators[dev.type]
    return fn


def empty(shape, np_dtype, dev):
    """Uninitialized contiguous storage of ``shape`` on device ``dev``."""
    if dev.type == "cpu":
        return np.empty(shape, np_dtype)
    return allocator(dev)(shape, np_dtype)


def move(t, dev):
    """``t`` copied to device ``dev`` (``Tensor.to``); differentiable: the gradient moves back."""
    if dev.type == "cuda" or t.device.type == "cuda":
        dev = check_device(dev)
    fn = _movers.get((t.device.type, dev.type))
    if fn is None:
        raise RuntimeError(f"cannot move a tensor from {t.device} to {dev}")
    if t.requires_grad:
        from ._dispatch import hooks
        if hooks.grad_enabled:
            return _to_device_fn().apply(t, dev)
    return fn(t, dev)


_ToDevice = None


def _to_device_fn():
    """The autograd Function of a device move (torch's ToCopyBackward): built on first use."""
    global _ToDevice
    if _ToDevice is None:
        from .autograd.function import Function

        class ToDevice(Function):
            @staticmethod
            def forward(ctx, x, dev):
                ctx.src = x.device
                return _movers[(x.device.type, dev.type)](x.detach(), dev)

            @staticmethod
            def backward(ctx, g):
                return move(g, ctx.src), None

        _ToDevice = ToDevice
    return _ToDevice

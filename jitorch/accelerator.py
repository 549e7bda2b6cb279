"""torch.accelerator (torch 2.6+): the device-generic API that scripts use to pick a device.

jitorch's one accelerator is cuda (a GPU through numba.cuda, or numba's CUDA simulator when
``NUMBA_ENABLE_CUDASIM=1``).

>>> import jitorch
>>> dev = jitorch.accelerator.current_accelerator() if jitorch.accelerator.is_available() else jitorch.device("cpu")
>>> dev.type in ("cuda", "cpu")
True
"""
from __future__ import annotations

from . import cuda as _cuda
from ._device import device as _device_cls


def is_available() -> bool:
    return _cuda.is_available()


def current_accelerator(check_available: bool = False):
    """device('cuda') when cuda is available, else None (torch's convention)."""
    if _cuda.is_available():
        return _device_cls("cuda")
    return None


def device_count() -> int:
    return _cuda.device_count()


def current_device_index() -> int:
    return _cuda.current_device()


current_device_idx = current_device_index


def set_device_index(device) -> None:
    _cuda.set_device(device)


set_device_idx = set_device_index


def synchronize(device=None) -> None:
    _cuda.synchronize(device)


class device_index:
    """``with jitorch.accelerator.device_index(0): ...``"""

    def __init__(self, device):
        self._ctx = _cuda.device(device) if device is not None else None

    def __enter__(self):
        if self._ctx is not None:
            self._ctx.__enter__()

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
        return False

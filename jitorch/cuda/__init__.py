"""torch.cuda for jitorch: device queries, synchronization, memory statistics, seeding and events.

Nothing here imports ``numba.cuda`` until a function needs it. Under numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) ``is_available()`` is True and cuda tensors live in the simulator, so
every cuda path runs without a GPU (slowly: see docs/cuda.md). With neither a GPU nor the simulator
``is_available()`` is False and moving a tensor to 'cuda' raises "Torch not compiled with CUDA enabled".

>>> import jitorch
>>> jitorch.cuda.is_available() in (True, False)
True
"""
from __future__ import annotations

import time

from .. import _devices
from ..backends import cudnn as _cudnn  # noqa: F401  (makes jitorch.backends.cudnn an attribute)
from .._device import device as _device_cls

_current = 0


def is_available() -> bool:
    """True when numba.cuda finds a GPU, or runs its simulator."""
    return _devices.cuda_available()


def is_initialized() -> bool:
    return _devices._cuda_state is True and ("cpu", "cuda") in _devices._movers


def init() -> None:
    _devices.load_cuda()


def device_count() -> int:
    return _devices.cuda_device_count()


def current_device() -> int:
    return _current


def _index(dev) -> int:
    if dev is None:
        return _current
    if isinstance(dev, int):
        return dev
    dev = _device_cls(dev)
    if dev.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {dev}")
    return _current if dev.index is None else dev.index


def set_device(dev) -> None:
    """Select the current device (jitorch uses one device; index 0 is the only valid one on one GPU)."""
    global _current
    i = _index(dev)
    if i < 0:
        return  # torch ignores negative indices
    n = device_count()
    if i >= n:
        raise RuntimeError(f"CUDA error: invalid device ordinal (device {i} requested, {n} device(s) visible)")
    if i != _current:
        from numba import cuda
        cuda.select_device(i)
        _current = i


class device:
    """Context manager: ``with jitorch.cuda.device(0): ...`` selects the device inside the block."""

    def __init__(self, dev):
        self.idx = _index(dev)
        self.prev = -1

    def __enter__(self):
        self.prev = _current
        set_device(self.idx)

    def __exit__(self, *exc):
        set_device(self.prev)
        return False


def synchronize(device=None) -> None:
    """Wait for every kernel launched so far (the simulator runs synchronously)."""
    if is_available():
        from numba import cuda
        cuda.synchronize()


def _require():
    if not is_available():
        raise _devices._not_compiled()


def get_device_name(device=None) -> str:
    _require()
    from ..kernels.cuda.launch import SIM
    if SIM:
        return "numba CUDA simulator (CPU)"
    from numba import cuda
    name = cuda.gpus[_index(device)].name
    return name.decode() if isinstance(name, bytes) else str(name)


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """jitorch has no bfloat16 on any device."""
    return False


def get_device_capability(device=None) -> tuple:
    _require()
    from numba import cuda
    return tuple(cuda.gpus[_index(device)].compute_capability)


class _Properties:
    def __init__(self, name, major, minor, total_memory):
        self.name, self.major, self.minor, self.total_memory = name, major, minor, total_memory

    def __repr__(self):
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor}, "
                f"total_memory={self.total_memory // (1 << 20)}MB)")


def get_device_properties(device=None) -> _Properties:
    _require()
    major, minor = get_device_capability(device)
    return _Properties(get_device_name(device), major, minor, mem_get_info(device)[1])


def mem_get_info(device=None) -> tuple:
    """(free, total) bytes of the device (the simulator reports 0, 0: it has no device memory)."""
    _require()
    from numba import cuda
    free, total = cuda.current_context().get_memory_info()
    if free == float("inf"):
        return 0, 0
    return int(free), int(total)


def memory_allocated(device=None) -> int:
    """Bytes held by jitorch's live cuda tensors (allocations, not views)."""
    if not is_initialized():
        return 0
    from ..backends import cuda as _backend
    return _backend.memory_allocated()


def max_memory_allocated(device=None) -> int:
    if not is_initialized():
        return 0
    from ..backends import cuda as _backend
    return _backend.max_memory_allocated()


def reset_peak_memory_stats(device=None) -> None:
    if is_initialized():
        from ..backends import cuda as _backend
        _backend.reset_peak_memory_stats()


reset_max_memory_allocated = reset_peak_memory_stats


def memory_reserved(device=None) -> int:
    return memory_allocated(device)


def max_memory_reserved(device=None) -> int:
    return max_memory_allocated(device)


def empty_cache() -> None:
    """numba frees device memory when the last reference to a buffer goes; nothing is cached."""


# ------------------------------------------------------------------ random number generators
# One default generator per cuda device (jitorch.ops.random.cuda_default_generator), separate from the
# cpu one, as torch's: cuda draws run on the device from it. jitorch.manual_seed seeds the cpu generator
# and every cuda generator. None of these import numba.cuda: generators are (seed, offset) pairs.

def _gen_index(device) -> int:
    if device is None:
        return current_device()
    if isinstance(device, int) and not isinstance(device, bool):
        return device
    d = _device_cls(device)
    if d.type != "cuda":
        raise RuntimeError(f"expected a cuda device, got {d}")
    return current_device() if d.index is None else d.index


def _default(index):
    from ..ops.random import cuda_default_generator
    return cuda_default_generator(index)


def __getattr__(name):
    if name == "default_generators":  # torch.cuda.default_generators: one per visible device
        return tuple(_default(i) for i in range(max(device_count(), 1)))
    raise AttributeError(f"module 'jitorch.cuda' has no attribute {name!r}")


def manual_seed(seed: int) -> None:
    """Seed the default generator of the current cuda device (torch.cuda.manual_seed)."""
    _default(current_device()).manual_seed(int(seed))


def manual_seed_all(seed: int) -> None:
    """Seed the default generator of every cuda device, also of those not used yet."""
    from ..ops.random import cuda_manual_seed_all
    cuda_manual_seed_all(int(seed))


def seed() -> None:
    """A non-deterministic seed for the current cuda device's generator."""
    _default(current_device()).seed()


def seed_all() -> None:
    """One non-deterministic seed for every cuda device's generator."""
    from ..ops.random import cuda_manual_seed_all
    g = _default(current_device())
    g.seed()
    cuda_manual_seed_all(g.initial_seed())


def initial_seed() -> int:
    """The seed of the current cuda device's generator."""
    return _default(current_device()).initial_seed()


def get_rng_state(device="cuda"):
    """The state of a cuda device's generator as a cpu ByteTensor (16 bytes: seed, offset), as torch's."""
    return _default(_gen_index(device)).get_state()


def get_rng_state_all() -> list:
    return [get_rng_state(i) for i in range(max(device_count(), 1))]


def set_rng_state(new_state, device="cuda") -> None:
    """Restore a state from :func:`get_rng_state` (a uint8 tensor of 16 bytes)."""
    _default(_gen_index(device)).set_state(new_state)


def set_rng_state_all(new_states) -> None:
    for i, state in enumerate(new_states):
        set_rng_state(state, i)


class Event:
    """torch.cuda.Event: ``record()`` marks a point in the kernel stream, ``elapsed_time(end)`` gives
    milliseconds between two recorded events. Under the simulator (synchronous, and its events keep no
    time) a record is the host clock at that point."""

    def __init__(self, enable_timing=False, blocking=False, interprocess=False):
        self.enable_timing = enable_timing
        self._ev = None
        self._t = None

    def _sim(self):
        from ..kernels.cuda.launch import SIM
        return SIM

    def record(self, stream=None):
        _require()
        if self._sim():
            self._t = time.perf_counter()
            return
        from numba import cuda
        if self._ev is None:
            self._ev = cuda.event(timing=self.enable_timing)
        self._ev.record()

    def synchronize(self):
        if self._ev is not None:
            self._ev.synchronize()

    wait = synchronize

    def query(self):
        return self._ev.query() if self._ev is not None else True

    def elapsed_time(self, end_event) -> float:
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        if self._sim():
            if self._t is None or end_event._t is None:
                raise RuntimeError("Both events must be recorded before calculating elapsed time.")
            return (end_event._t - self._t) * 1000.0
        if self._ev is None or end_event._ev is None:
            raise RuntimeError("Both events must be recorded before calculating elapsed time.")
        end_event._ev.synchronize()
        from numba import cuda
        return cuda.event_elapsed_time(self._ev, end_event._ev)


class Stream:
    """The default stream only: jitorch launches every kernel on it."""

    def __init__(self, device=None, priority=0):
        self.device = _device_cls("cuda", _index(device))

    def synchronize(self):
        synchronize()

    def wait_stream(self, stream):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def current_stream(device=None) -> Stream:
    return Stream(device)


default_stream = current_stream


def stream(s):
    return s if s is not None else Stream()

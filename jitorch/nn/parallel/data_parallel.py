"""torch.nn.DataParallel with torch's semantics.

torch's DataParallel splits the batch over CUDA devices, runs a replica on each and gathers the
outputs on ``output_device``. jitorch follows it:

- No CUDA device (no GPU and no simulator): ``device_ids`` stays empty and ``forward`` simply
  calls the wrapped module, as torch does on a CPU-only machine.
- One visible device (jitorch's cuda backend drives ``cuda:0`` only): the module's parameters and
  buffers must be on ``device_ids[0]`` (torch's error otherwise); tensor inputs (also inside
  lists, tuples and dicts) are moved there and the module runs once, as torch does when
  ``len(device_ids) == 1``. The outputs stay on ``output_device`` (the same device).
- Device ids that are not visible raise torch's "invalid device" error.

The wrapper adds the ``module.`` prefix to the state dict (like torch). For multi-core or
multi-machine data parallelism use :class:`~jitorch.nn.parallel.DistributedDataParallel` with
``mpiexec``.
"""
from __future__ import annotations

from ..modules.module import Module


def _available_devices():
    """CUDA device ids DataParallel can use: ``[]`` without a GPU or the simulator."""
    try:
        from ... import cuda
        if cuda.is_available():
            return list(range(cuda.device_count()))
    except (ImportError, RuntimeError):
        pass
    return []


def _index(d):
    from ... import device as _device
    if isinstance(d, int):
        return d
    dev = _device(d)
    if dev.type != "cuda":
        raise ValueError(f"DataParallel: expected cuda device ids, got {d!r}")
    return dev.index or 0


def _move(obj, dev):
    from ...tensor import Tensor
    if isinstance(obj, Tensor):
        return obj.to(dev)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(_move(o, dev) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_move(o, dev) for o in obj)
    if isinstance(obj, dict):
        return {k: _move(v, dev) for k, v in obj.items()}
    return obj


class DataParallel(Module):
    """Implements data parallelism at the module level (torch.nn.DataParallel); see the module doc."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel expects an nn.Module, got {type(module).__name__}")
        self.module = module
        self.dim = dim
        devices = _available_devices()
        if not devices:
            self.device_ids = []
            self.output_device = None
            self.src_device_obj = None
            return
        ids = devices if device_ids is None else [_index(d) for d in device_ids]
        bad = [d for d in ids if d not in devices]
        if bad or not ids:
            raise RuntimeError(f"DataParallel: invalid device id {bad[0] if bad else ids!r}: "
                               f"{len(devices)} cuda device(s) are visible (jitorch.cuda.device_count())")
        if len(ids) > 1:
            raise NotImplementedError("DataParallel over several cuda devices: jitorch drives one device "
                                      "(cuda:0); use DistributedDataParallel with mpiexec to use several processes")
        from ... import device as _device
        self.device_ids = ids
        self.output_device = ids[0] if output_device is None else _index(output_device)
        self.src_device_obj = _device("cuda", ids[0])

    def forward(self, *inputs, **kwargs):
        if not self.device_ids:
            return self.module(*inputs, **kwargs)
        src = self.src_device_obj
        for t in (*self.module.parameters(), *self.module.buffers()):
            if t.device != src:
                raise RuntimeError(f"module must have its parameters and buffers on device {src} (device_ids[0]) "
                                   f"but found one of them on device: {t.device}; call module.to({str(src)!r}) first")
        return self.module(*_move(inputs, src), **_move(kwargs, src))

    def replicate(self, module, device_ids):
        return [module for _ in device_ids] or [module]

    def scatter(self, inputs, kwargs, device_ids):
        if not device_ids:
            return (inputs,), (kwargs,)
        from ... import device as _device
        dev = _device("cuda", device_ids[0])
        return (_move(inputs, dev),), (_move(kwargs, dev),)

    def gather(self, outputs, output_device):
        return outputs


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0, module_kwargs=None):
    """Functional DataParallel (torch.nn.parallel.data_parallel)."""
    if not isinstance(inputs, tuple):
        inputs = (inputs,) if inputs is not None else ()
    return DataParallel(module, device_ids, output_device, dim)(*inputs, **(module_kwargs or {}))

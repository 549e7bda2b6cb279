"""torch.nn.DataParallel with torch's semantics on a machine without GPUs.

torch's DataParallel splits the batch over CUDA devices, runs a replica on each and gathers the
outputs on ``output_device``. When no CUDA device is available torch keeps ``device_ids`` empty and
``forward`` simply calls the wrapped module; jitorch has no CUDA backend, so that is always the case
here: the wrapper adds the ``module.`` prefix to the state dict (like torch) and nothing else. For
multi-core or multi-machine data parallelism use :class:`~jitorch.nn.parallel.DistributedDataParallel`
with ``mpiexec``.
"""
from __future__ import annotations

from ..modules.module import Module


def _available_devices():
    """Accelerator device ids DataParallel can replicate over: none (jitorch has no CUDA)."""
    try:
        from ... import cuda  # a cuda backend registers here once it exists
        if cuda.is_available():
            return list(range(cuda.device_count()))
    except Exception:
        pass
    return []


class DataParallel(Module):
    """Implements data parallelism at the module level (torch.nn.DataParallel).

    With no accelerator available (always, in jitorch today) ``device_ids`` is ``[]`` and
    ``forward(*inputs, **kwargs)`` returns ``self.module(*inputs, **kwargs)``.
    """

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
            return
        raise NotImplementedError("DataParallel over several accelerator devices is not implemented in jitorch; "
                                  "use DistributedDataParallel with mpiexec")

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)

    def replicate(self, module, device_ids):
        return [module for _ in device_ids] or [module]

    def scatter(self, inputs, kwargs, device_ids):
        return (inputs,), (kwargs,)

    def gather(self, outputs, output_device):
        return outputs


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0, module_kwargs=None):
    """Functional DataParallel: without accelerators, ``module(*inputs, **module_kwargs)``."""
    if not isinstance(inputs, tuple):
        inputs = (inputs,) if inputs is not None else ()
    return module(*inputs, **(module_kwargs or {}))

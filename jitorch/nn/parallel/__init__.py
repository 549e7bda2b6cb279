"""torch.nn.parallel: :class:`DistributedDataParallel` (on :mod:`jitorch.distributed`, MPI) and
:class:`DataParallel` (single process; jitorch has no CUDA, so it runs the module as it is)."""
from __future__ import annotations

from .data_parallel import DataParallel, data_parallel  # noqa: F401
from .distributed import DistributedDataParallel  # noqa: F401

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]

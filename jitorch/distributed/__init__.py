"""torch.distributed on MPI (mpi4py), for CPU tensors.

Launch a script with ``mpiexec -n N python script.py`` and call
``jitorch.distributed.init_process_group("mpi")`` (``"gloo"`` is accepted as an alias: both run on
MPI). Collectives pass each tensor's NumPy buffer straight to MPI (zero copy for contiguous
tensors), write the result into the tensor's memory and bump its version counter.

Importing this module does not import mpi4py: that happens in :func:`init_process_group`.
See docs/distributed.md.
"""
from __future__ import annotations

from ._core import (Backend, GroupMember, ProcessGroup, ReduceOp, Work, DistBackendError, DistError,  # noqa: F401
                    all_gather, all_gather_into_tensor, all_gather_object, all_reduce, all_to_all_single, barrier,
                    batch_isend_irecv, broadcast, broadcast_object_list, destroy_process_group, gather, gather_object,
                    get_backend, get_global_rank, get_group_rank, get_process_group_ranks, get_rank, get_world_size,
                    init_process_group, irecv, is_available, is_initialized, is_mpi_available, is_gloo_available,
                    is_nccl_available, is_torchelastic_launched, isend, monitored_barrier, new_group, P2POp, recv,
                    reduce, reduce_scatter, reduce_scatter_tensor, scatter, scatter_object_list, send)
from ._core import group  # noqa: F401

__all__ = ["Backend", "DistBackendError", "DistError", "GroupMember", "P2POp", "ProcessGroup", "ReduceOp", "Work",
           "all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce", "all_to_all_single", "barrier",
           "batch_isend_irecv", "broadcast", "broadcast_object_list", "destroy_process_group", "gather",
           "gather_object", "get_backend", "get_global_rank", "get_group_rank", "get_process_group_ranks", "get_rank",
           "get_world_size", "group", "init_process_group", "irecv", "is_available", "is_gloo_available",
           "is_initialized", "is_mpi_available", "is_nccl_available", "is_torchelastic_launched", "isend",
           "monitored_barrier", "new_group", "recv", "reduce", "reduce_scatter", "reduce_scatter_tensor", "scatter",
           "scatter_object_list", "send"]

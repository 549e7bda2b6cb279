"""jitorch.nn: torch.nn on jitorch.

- :class:`Module` and containers with torch's registration, state dicts, hooks and device/dtype moves;
- layers with torch's default initialization (:mod:`jitorch.nn.modules`);
- :mod:`jitorch.nn.functional`: convolution and pooling on numba kernels (op-table primitives in
  :mod:`jitorch.ops.nn`, forward and backward), everything else composed of jitorch ops;
- :mod:`jitorch.nn.init` and :mod:`jitorch.nn.utils`.
"""
from __future__ import annotations

from ..ops import nn as _nn_ops  # noqa: F401  (registers the convolution/pooling primitives)
from .parameter import Parameter, Buffer, UninitializedParameter  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import Module  # noqa: F401
from . import attention  # noqa: F401
from . import functional  # noqa: F401
from . import init  # noqa: F401
from . import utils  # noqa: F401
from . import modules  # noqa: F401
from . import parallel  # noqa: F401
from .parallel import DataParallel, DistributedDataParallel  # noqa: F401

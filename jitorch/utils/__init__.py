"""torch.utils: :mod:`jitorch.utils.data` (datasets, samplers, DataLoader) and :mod:`jitorch.utils.hooks`."""
from __future__ import annotations

from . import hooks  # noqa: F401
from . import data  # noqa: F401

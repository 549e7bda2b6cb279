"""torch.optim: optimizers whose updates run as one fused numba kernel per parameter per step
(:mod:`jitorch.kernels.optim`), and learning-rate schedulers (:mod:`jitorch.optim.lr_scheduler`)."""
from __future__ import annotations

from . import lr_scheduler  # noqa: F401
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .lbfgs import LBFGS
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "LBFGS", "NAdam", "Optimizer", "RAdam", "RMSprop", "SGD",
           "lr_scheduler"]

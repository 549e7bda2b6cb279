"""torch.backends.cudnn: the flags scripts set (``torch.backends.cudnn.benchmark = True``).

jitorch has no cuDNN: its cuda convolutions are its own numba.cuda kernels, which are deterministic
and have no algorithm search, so the flags are accepted and change nothing.
"""
from __future__ import annotations

enabled = True
benchmark = False
deterministic = False
allow_tf32 = False


def is_available() -> bool:
    return False


def version():
    return None

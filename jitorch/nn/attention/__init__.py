"""torch.nn.attention: choosing the scaled-dot-product-attention backend.

jitorch has one implementation of :func:`jitorch.nn.functional.scaled_dot_product_attention`, the
math formula (softmax(q kᵀ · scale + mask) v, composed of jitorch ops, so it is traced, fused and
differentiated like any composition) — torch's ``SDPBackend.MATH``. ``sdpa_kernel`` accepts any
backend list, as torch's does; when the list leaves MATH out, attention raises torch's "No available
kernel" error instead of silently running a backend the caller excluded.
"""
from __future__ import annotations

import contextlib
import enum

__all__ = ["SDPBackend", "sdpa_kernel"]


class SDPBackend(enum.IntEnum):
    """torch's backend names; only MATH exists in jitorch."""
    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


_ALL = frozenset(b for b in SDPBackend if b is not SDPBackend.ERROR)
_enabled = [_ALL]


def _math_allowed() -> bool:
    return SDPBackend.MATH in _enabled[-1]


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority: bool = False):
    """Within the block, scaled_dot_product_attention may use only ``backends`` (one or a list)."""
    if isinstance(backends, SDPBackend):
        backends = [backends]
    backends = list(backends)
    for b in backends:
        if not isinstance(b, SDPBackend):
            raise AssertionError(f"Backend must be an instance of SDPBackend, got {type(b).__name__}")
    _enabled.append(frozenset(backends))
    try:
        yield {}
    finally:
        _enabled.pop()

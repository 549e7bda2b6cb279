"""Moving tensors between devices. The cuda backend registers itself here when it exists."""
from __future__ import annotations

_movers = {}


def register_mover(src_type, dst_type, fn):
    _movers[(src_type, dst_type)] = fn


def move(t, dev):
    fn = _movers.get((t.device.type, dev.type))
    if fn is None:
        if dev.type == "cuda":
            raise RuntimeError(
                "Torch not compiled with CUDA enabled: jitorch's cuda backend is not available in this build; "
                "keep tensors on 'cpu' (jitorch.cuda.is_available() returns False)"
            )
        raise RuntimeError(f"cannot move a tensor from {t.device} to {dev}")
    return fn(t, dev)

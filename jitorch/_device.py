"""torch.device: a type ('cpu' or 'cuda') and an optional index."""
from __future__ import annotations


class device:
    __slots__ = ("type", "index")

    def __init__(self, type_or_str, index=None):
        if isinstance(type_or_str, device):
            self.type, self.index = type_or_str.type, type_or_str.index
            return
        if isinstance(type_or_str, int) and not isinstance(type_or_str, bool):
            self.type, self.index = "cuda", type_or_str
            return
        if not isinstance(type_or_str, str):
            raise TypeError(f"device(): expected a string like 'cpu' or 'cuda:0', got {type(type_or_str).__name__}")
        s = type_or_str.strip()
        if ":" in s:
            s, _, idx = s.partition(":")
            if index is not None:
                raise RuntimeError(f"device(): type (string) must not include an index because index was passed explicitly: {type_or_str}")
            try:
                index = int(idx)
            except ValueError:
                raise RuntimeError(f"Invalid device string: '{type_or_str}'") from None
        if s not in ("cpu", "cuda"):
            raise RuntimeError(
                f"Expected one of cpu, cuda device type at start of device string: {type_or_str}"
            )
        if index is not None and index < 0:
            raise RuntimeError(f"Device index must not be negative, got {index}")
        self.type, self.index = s, index

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except (RuntimeError, TypeError):
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self):
        return hash((self.type, self.index or 0))

    def __repr__(self):
        return f"device(type='{self.type}')" if self.index is None else f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    # ``with jitorch.device('cuda'):`` makes it the default device of factory functions inside the block.
    def __enter__(self):
        _ENTERED.append(_DEFAULT[0])
        set_default_device(self)
        return self

    def __exit__(self, *exc):
        _DEFAULT[0] = _ENTERED.pop()
        return False


CPU = device("cpu")
_DEFAULT = [CPU]   # the device factory functions use when they get device=None
_ENTERED: list = []


def set_default_device(d) -> None:
    """torch.set_default_device: the device of tensors made by factory functions (zeros, randn, tensor, arange,
    ...) that get no ``device=``; ``None`` restores 'cpu'. Conversions (``.to``), ``from_numpy`` and ops on
    existing tensors are unaffected, as in torch."""
    if d is None:
        _DEFAULT[0] = CPU
        return
    dev = as_device(d)
    if dev.type == "cuda":
        from . import _devices
        dev = _devices.check_device(dev)  # no usable cuda device: the error is raised now, not at the next factory
    _DEFAULT[0] = dev


def get_default_device() -> device:
    """torch.get_default_device: the device factory functions use when given no ``device=``."""
    return _DEFAULT[0]


def factory_device(d) -> device:
    """``device=`` of a factory function: the default device when None."""
    return _DEFAULT[0] if d is None else as_device(d)


def as_device(d) -> device:
    if d is None:
        return CPU
    if isinstance(d, device):
        return d
    return device(d)

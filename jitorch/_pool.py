"""A caching allocator for large CPU arrays, so that big outputs do not page-fault on every call.

glibc serves every block above 32 MiB (``M_MMAP_THRESHOLD``'s maximum; see :mod:`jitorch._malloc`)
with a fresh ``mmap`` and unmaps it on ``free``: a 64 MiB output costs 16,384 page faults each
time it is made, which doubled the time of a fused 16M-element chain (research/feasibility.md
section 2: "keep a buffer pool for large outputs"). This module keeps such buffers after their
tensors die and hands them out again for the next request of the same size, as torch's and
JAX's caching allocators do.

How an array comes back: :func:`empty` wraps a pooled raw buffer in a small holder object that
exposes ``__array_interface__``; the returned array (and every view of it) keeps the holder alive
through ``.base``. When the last of them dies, a ``weakref.finalize`` on the holder puts the raw
buffer back into the pool. Nothing is reused while any view of it is alive.

Limits: only requests of at least :data:`MIN_BYTES` (32 MiB; ``JITORCH_POOL_MIN_BYTES``) use the
pool; sizes are rounded up to 2 MiB; at most :data:`MAX_BYTES` of free buffers are kept (1/8 of
the machine's memory, at most 4 GiB; ``JITORCH_POOL_MAX_BYTES``), the oldest dropped first.
``JITORCH_NO_POOL=1`` turns the pool off; :func:`empty_cache` frees what it holds.
"""
from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict

import numpy as np

__all__ = ["empty", "empty_cache", "stats", "storage_of", "ENABLED", "MIN_BYTES", "MAX_BYTES"]

_GRAIN = 2 << 20


def _default_max():
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return min(4 << 30, total // 8)


def _env_int(name, default):
    v = os.environ.get(name)
    if v is None or not v.strip():
        return default
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"{name}={v!r}: expected a number of bytes") from None


ENABLED = os.environ.get("JITORCH_NO_POOL", "") in ("", "0")
MIN_BYTES = _env_int("JITORCH_POOL_MIN_BYTES", 32 << 20)
MAX_BYTES = _env_int("JITORCH_POOL_MAX_BYTES", _default_max())

_lock = threading.RLock()  # finalizers can run inside a locked section (gc) on the same thread
_free: "OrderedDict[int, list]" = OrderedDict()  # rounded size -> free raw buffers, oldest size first
_state = {"free_bytes": 0, "hits": 0, "misses": 0}


class _Holder:
    """Owns one raw buffer while arrays made from it are alive (their ``.base``)."""

    __slots__ = ("__array_interface__", "raw", "storage", "__weakref__")


def _give_back(raw):
    n = raw.nbytes
    with _lock:
        _free.setdefault(n, []).append(raw)
        _free.move_to_end(n)
        _state["free_bytes"] += n
        while _state["free_bytes"] > MAX_BYTES and _free:
            size, bufs = next(iter(_free.items()))
            bufs.pop(0)
            _state["free_bytes"] -= size
            if not bufs:
                del _free[size]


def empty(shape, dtype):
    """``np.empty(shape, dtype)``, served from the pool when it is large (C order)."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape) if not isinstance(shape, int) else (int(shape),)
    n = dtype.itemsize
    for s in shape:
        n *= s
    if not ENABLED or n < MIN_BYTES:
        return np.empty(shape, dtype)
    size = -(-n // _GRAIN) * _GRAIN
    raw = None
    with _lock:
        bufs = _free.get(size)
        if bufs:
            raw = bufs.pop()
            if not bufs:
                del _free[size]
            _state["free_bytes"] -= size
            _state["hits"] += 1
        else:
            _state["misses"] += 1
    if raw is None:
        raw = np.empty(size, np.uint8)
    h = _Holder()
    h.raw = raw
    h.storage = raw[:n].view(dtype)  # the tensor's storage: flat, exact length, its dtype (see storage_of)
    h.__array_interface__ = {"shape": shape, "typestr": dtype.str, "data": (raw.ctypes.data, False),
                             "strides": None, "version": 3}
    arr = np.asarray(h)
    weakref.finalize(h, _give_back, raw)
    return arr


def min_elems():
    """The fewest elements (of the widest dtype, 8 bytes) a request served by the pool can have:
    callers compare an element count with it before calling :func:`empty`."""
    return MIN_BYTES // 8 if ENABLED else 1 << 62


def storage_of(a):
    """The flat array that owns ``a``'s memory (the end of its ``.base`` chain); for pooled arrays the
    holder's exact-length ``storage``, never the rounded-up raw buffer (bounds checks read its size)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    if type(a.base) is _Holder:
        return a.base.storage
    return a


def empty_cache():
    """Free every buffer the pool keeps (like ``torch.cuda.empty_cache`` for the CPU pool)."""
    with _lock:
        _free.clear()
        _state["free_bytes"] = 0


def stats():
    """{'free_bytes', 'free_buffers', 'hits', 'misses', 'enabled', 'min_bytes', 'max_bytes'}."""
    with _lock:
        return {**_state, "free_buffers": sum(len(b) for b in _free.values()), "enabled": ENABLED,
                "min_bytes": MIN_BYTES, "max_bytes": MAX_BYTES}

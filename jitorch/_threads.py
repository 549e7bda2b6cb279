"""The thread policy: one thread count for numba's kernels and for the BLAS under NumPy.

jitorch runs two thread pools in one process: numba's (parallel kernels: im2col, pooling, big
elementwise ops) and the BLAS's that NumPy calls for matrix products (OpenBLAS in NumPy's wheels).
Left alone, each sizes itself to every core, and on a small machine they compete: a BLAS worker
still spinning after a product takes a core from the next numba kernel and the other way round.
The lead measured a LeNet step at 175 ms with both defaults against 19 ms with one thread each
(2 cores, loaded machine).

:func:`set_num_threads` / :func:`get_num_threads` (torch's names) set one count ``n`` for both:
numba's ``set_num_threads(min(n, NUMBA_NUM_THREADS))`` and the BLAS's maximum. Each matrix product
then asks :func:`blas_threads_for` how many BLAS threads its size is worth: one below
:data:`BLAS_PARALLEL_FLOPS` (about 2 MFLOP: below it a second thread saves less than waking it and
letting it spin costs), ``n`` above. The BLAS is only called when the count changes (about 1 us
through ctypes, measured), so a run of products of one kind pays nothing.

The BLAS is found by name in the shared libraries this process has loaded (NumPy's wheel ships
``libscipy_openblas64_*.so`` with prefixed, suffixed symbol names; a system OpenBLAS exports the
plain ``openblas_set_num_threads``). When none is found (MKL, Accelerate, a BLAS without the
call), the BLAS keeps its own threads and everything else works unchanged.

numba's thread count is per Python thread (numba's rule): :func:`set_num_threads` applies to the
calling thread, and to threads started later only through the default read at import.
"""
from __future__ import annotations

import ctypes
import os
import threading

from .kernels import _config as _kconfig

__all__ = ["set_num_threads", "get_num_threads", "set_num_interop_threads", "get_num_interop_threads",
           "blas_threads_for", "use_blas_threads", "blas_info", "BLAS_PARALLEL_FLOPS"]

#: Products of fewer floating-point operations (2*m*n*k) run the BLAS on one thread.
BLAS_PARALLEL_FLOPS = int(os.environ.get("JITORCH_BLAS_PARALLEL_FLOPS", 2_000_000))

# symbol names, most specific first: NumPy's scipy-openblas (64-bit ints, then 32-bit), plain OpenBLAS
_SET_NAMES = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
              "openblas_set_num_threads64_", "openblas_set_num_threads")
_GET_NAMES = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
              "openblas_get_num_threads64_", "openblas_get_num_threads")


class _Blas:
    """The BLAS's thread switch, or nothing (``set is None``)."""

    def __init__(self):
        self.path = None
        self.set = None
        self.get = None
        self.current = None   # last count we set (None: never set by us)
        self.max = 1          # the BLAS's own thread count when jitorch was imported


def _loaded_libraries():
    """Paths of the shared objects mapped into this process (Linux: /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    seen = []
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) == 6 and ".so" in parts[5] and parts[5] not in seen:
            seen.append(parts[5].strip())
    return seen


def _candidate_paths():
    """OpenBLAS libraries, loaded ones first, then the ones NumPy's wheel ships next to it."""
    paths = [p for p in _loaded_libraries() if "openblas" in os.path.basename(p).lower()]
    try:
        import numpy
        root = os.path.dirname(os.path.dirname(numpy.__file__))
        for d in (os.path.join(root, "numpy.libs"), os.path.join(os.path.dirname(numpy.__file__), ".dylibs")):
            if os.path.isdir(d):
                paths += [os.path.join(d, f) for f in sorted(os.listdir(d)) if "openblas" in f.lower()]
    except Exception:  # pragma: no cover - numpy is a dependency
        pass
    return list(dict.fromkeys(paths))


def _find_blas():
    b = _Blas()
    if os.environ.get("JITORCH_NO_BLAS_THREADS"):
        return b
    for path in _candidate_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        set_fn = next((getattr(lib, n) for n in _SET_NAMES if hasattr(lib, n)), None)
        get_fn = next((getattr(lib, n) for n in _GET_NAMES if hasattr(lib, n)), None)
        if set_fn is None or get_fn is None:
            continue
        set_fn.argtypes, set_fn.restype = [ctypes.c_int], None
        get_fn.argtypes, get_fn.restype = [], ctypes.c_int
        b.path, b.set, b.get = path, set_fn, get_fn
        try:
            b.max = max(1, int(get_fn()))
        except Exception:  # pragma: no cover - a BLAS that cannot answer keeps its threads
            b.set = b.get = None
            continue
        break
    return b


_blas = _find_blas()
_lock = threading.Lock()
# numba's pool size is fixed at its first launch; config holds it without launching the pool
_numba_max = _kconfig.max_threads()
_state = {"n": _numba_max, "interop": 1}


def blas_info():
    """What the policy found: {'library': path or None, 'max_threads': int, 'current': int or None}."""
    return {"library": _blas.path, "max_threads": _blas.max, "current": _blas.current,
            "parallel_flops": BLAS_PARALLEL_FLOPS}


def _set_blas(n):
    if _blas.set is not None and n != _blas.current:
        _blas.set(n)
        _blas.current = n


def set_num_threads(n):
    """torch.set_num_threads: the threads numba's kernels and the BLAS may use (this Python thread for
    numba; the BLAS's setting is process-wide)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads expects an int, but got {type(n).__name__}")
    if n <= 0:
        raise RuntimeError(f"Number of threads must be positive, got {n}")
    with _lock:
        _state["n"] = n
        _kconfig.set_threads(min(n, _numba_max))
        _blas.max = n
        _blas.current = None  # re-applied by the next product
        _set_blas(n)


def get_num_threads():
    """torch.get_num_threads: the count set by :func:`set_num_threads` (default: numba's pool size)."""
    return _state["n"]


def set_num_interop_threads(n):
    """torch.set_num_interop_threads: accepted and remembered; jitorch has no inter-op pool (ops run in
    the calling thread, in order)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_interop_threads expects an int, but got {type(n).__name__}")
    if n <= 0:
        raise RuntimeError(f"Number of interop threads must be positive, got {n}")
    _state["interop"] = n


def get_num_interop_threads():
    return _state["interop"]


def blas_threads_for(flops):
    """BLAS threads a product of ``flops`` (2*m*n*k) is worth under the current policy."""
    return 1 if flops < BLAS_PARALLEL_FLOPS else min(_state["n"], _blas.max)


def use_blas_threads(flops):
    """Set the BLAS's thread count for a product of ``flops`` operations (a no-op when unchanged or when
    no BLAS switch was found). Called right before each matrix product."""
    if _blas.set is not None:
        n = 1 if flops < BLAS_PARALLEL_FLOPS else min(_state["n"], _blas.max)
        if n != _blas.current:
            _blas.set(n)
            _blas.current = n

"""The thread policy: one thread count for numba's kernels and for the BLAS under NumPy.

jitorch runs two thread pools in one process: numba's (parallel kernels: im2col, pooling, big
elementwise ops) and the BLAS's that NumPy calls for matrix products (OpenBLAS in NumPy's wheels).
Left alone, each sizes itself to every core and busy-waits between jobs, and on a small machine
they compete with each other and with other processes. Measured here (2 cores, load ~9 from other
jobs, LeNet SGD step, CPU time per step): 271 ms with both defaults, 157 ms with numba's workers
passive, 36 ms with the BLAS on one thread, 12 ms with both restrained.

1. :func:`set_num_threads` / :func:`get_num_threads` (torch's names) set one count ``n`` for both:
   numba's thread count (capped at its pool size) and the BLAS's maximum.
2. Each matrix product asks for ``n`` BLAS threads only at :data:`BLAS_PARALLEL_FLOPS` (50 MFLOP,
   2*m*n*k) and more, else one: an OpenBLAS worker, once woken, spins for a long while after the
   product and takes a core from numba's next parallel kernel; products that big (an MLP's
   256x784x512) gain 1.6-2x from a second thread, small ones (LeNet's 15-26 MFLOP convolution
   products) gain less than the spinning costs. The switch is only called when the count changes
   (about 1 us through ctypes, measured).
3. Dynamic cap (on by default, ``JITORCH_DYNAMIC_THREADS=0`` or :func:`set_dynamic` turns it off):
   every :data:`DYNAMIC_INTERVAL` s a product reads /proc/stat and caps both pools at the cores
   other processes leave free, like OpenMP's ``OMP_DYNAMIC``. On an idle machine it changes nothing.
4. numba's OpenMP workers busy-wait :data:`GOMP_SPINCOUNT` spins instead of libgomp's 300,000 (set
   in the environment at import, before numba starts its pool, unless the user set
   ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``).

``JITORCH_NO_THREAD_POLICY=1`` leaves 3 and 4 out; ``JITORCH_NO_BLAS_THREADS=1`` leaves the BLAS alone.

The BLAS is found by name in the shared libraries this process has loaded (NumPy's wheel ships
``libscipy_openblas64_*.so`` with prefixed, suffixed symbol names; a system OpenBLAS exports the
plain ``openblas_set_num_threads``). When none is found (MKL, Accelerate, a BLAS without the
call), the BLAS keeps its own threads and everything else works unchanged.

numba's thread count is per Python thread (numba's rule): :func:`set_num_threads` and the dynamic
cap apply to the calling thread.
"""
from __future__ import annotations

import ctypes
import os
import threading
import time
from time import monotonic as _monotonic

from .kernels import _config as _kconfig

__all__ = ["set_num_threads", "get_num_threads", "set_num_interop_threads", "get_num_interop_threads",
           "blas_threads_for", "use_blas_threads", "blas_info", "set_dynamic", "get_dynamic", "others_cores",
           "BLAS_PARALLEL_FLOPS", "cblas_gemm"]

#: Products of fewer floating-point operations (2*m*n*k) run the BLAS on one thread.
BLAS_PARALLEL_FLOPS = int(os.environ.get("JITORCH_BLAS_PARALLEL_FLOPS", 50_000_000))

#: Seconds between two looks at how busy the machine is (dynamic thread counts).
DYNAMIC_INTERVAL = 0.25

#: GOMP_SPINCOUNT set for numba's OpenMP pool when the user set neither it nor OMP_WAIT_POLICY.
GOMP_SPINCOUNT = "10000"


def _configure_openmp():
    """Shorten how long numba's idle OpenMP workers busy-wait (libgomp's default, 300,000 spins, keeps
    a core busy for milliseconds after every parallel kernel, against the BLAS's threads and other
    processes). libgomp reads the variable when numba first launches its pool, after this import."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return False
    if os.environ.get("JITORCH_NO_THREAD_POLICY", "") not in ("", "0"):
        return False
    os.environ["GOMP_SPINCOUNT"] = GOMP_SPINCOUNT
    return True


_gomp_set = _configure_openmp()

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


# ---------------------------------------------------------------------------------------------- dynamic

def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _affinity():
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return None


def _sample():
    """(busy jiffies of the CPUs this process may run on, their total jiffies, this process's CPU
    jiffies), or None off Linux. Only the per-CPU lines of /proc/stat for the affinity mask count: under
    ``taskset`` or a cpuset, jobs on other CPUs take nothing from ours."""
    cpus = _affinity()
    busy = total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu"):
                    break
                name, *vals = line.split()
                if name == "cpu" or (cpus is not None and int(name[3:]) not in cpus):
                    continue
                fields = [int(v) for v in vals[:7]]
                total += sum(fields)
                busy += sum(fields) - fields[3] - fields[4]  # minus idle and iowait
    except (OSError, ValueError):
        return None
    if total == 0:
        return None
    t = os.times()
    return busy, total, (t.user + t.system) * _TICK


def others_cores(a, b, ncpu):
    """Cores' worth of CPU other processes used between samples ``a`` and ``b`` (see :func:`_sample`)."""
    d_total = b[1] - a[1]
    if d_total <= 0:
        return None
    d_busy = b[0] - a[0]
    d_self = b[2] - a[2]
    return max(0.0, (d_busy - d_self) / d_total * ncpu)


class _Dynamic:
    """Threads this process can use without oversubscribing: the cores other processes leave free,
    measured from /proc/stat every :data:`DYNAMIC_INTERVAL` s (like OpenMP's ``OMP_DYNAMIC``). On a
    machine shared with other jobs a product or kernel split over a thread that must wait for a core
    runs many times slower than on one thread (LeNet step at load 9 on 2 cores: 271 ms of CPU time
    per step with 2 BLAS + 2 numba threads, 12 ms with one each)."""

    def __init__(self):
        self.enabled = os.environ.get("JITORCH_DYNAMIC_THREADS", "1") not in ("0", "") and \
            os.environ.get("JITORCH_NO_THREAD_POLICY", "") in ("", "0")
        self.ncpu = _cpu_count()
        self.free = self.ncpu
        self.next = 0.0
        self.last = None
        self.numba = None  # the count we last gave numba (None: never)

    def cap(self):
        """Threads usable now (at least 1); refreshes the measurement when it is older than the interval."""
        if not self.enabled:
            return 1 << 30
        now = time.monotonic()
        if now >= self.next:
            self.next = now + DYNAMIC_INTERVAL
            s = _sample()
            if s is not None:
                if self.last is not None:
                    busy = others_cores(self.last, s, self.ncpu)
                    if busy is not None:
                        self.free = max(1, min(self.ncpu, int(self.ncpu - busy + 0.5)))
                self.last = s
            n = max(1, min(_state["n"], _numba_max, self.free))
            if n != self.numba and _kconfig.pool_started():  # never launch numba's pool just to tune it
                self.numba = n
                _kconfig.set_threads(n)
        return self.free


_dynamic = _Dynamic()


def set_dynamic(enabled):
    """Turn the load-dependent cap on or off (``JITORCH_DYNAMIC_THREADS=0`` turns it off at import)."""
    _dynamic.enabled = bool(enabled)
    _dynamic.next = 0.0
    _dynamic.last = None  # measure afresh
    _dynamic.free = _dynamic.ncpu
    _dynamic.numba = None
    _blas.current = None
    if not enabled and _kconfig.pool_started():
        _kconfig.set_threads(min(_state["n"], _numba_max))


def get_dynamic():
    return _dynamic.enabled


def blas_info():
    """What the policy found and does now: the BLAS library (None: no switch found), its thread limit and
    last setting, the flop threshold, the dynamic cap and whether GOMP_SPINCOUNT was set by jitorch."""
    return {"library": _blas.path, "max_threads": _blas.max, "current": _blas.current,
            "parallel_flops": BLAS_PARALLEL_FLOPS, "dynamic": _dynamic.enabled, "free_cores": _dynamic.free,
            "gomp_spincount_set": _gomp_set}


def _set_blas(n):
    if _blas.set is not None and n != _blas.current:
        _blas.set(n)
        _blas.current = n


# cblas_?gemm by name, most specific first, with the width of the BLAS's integers (ILP64 builds carry "64")
_GEMM_NAMES = (("scipy_cblas_{}gemm64_", 64), ("cblas_{}gemm64_", 64), ("scipy_cblas_{}gemm", 32),
               ("cblas_{}gemm", 32))
_gemm_found = {}


def cblas_gemm(dtype):
    """``cblas_sgemm`` (float32) or ``cblas_dgemm`` (float64) of the OpenBLAS NumPy loaded, as a ctypes
    function numba kernels can call (the per-image convolution kernels run one product per image on
    numba's threads), or None: another dtype, no OpenBLAS found (``JITORCH_NO_BLAS_THREADS=1`` also
    hides it) or ``JITORCH_CONV_BLAS=0``. Callers set the BLAS to one thread around such calls
    (``use_blas_threads(0)``)."""
    import numpy as np

    key = np.dtype(dtype).char
    if key in _gemm_found:
        return _gemm_found[key]
    fn = None
    if key in ("f", "d") and _blas.path is not None and os.environ.get("JITORCH_CONV_BLAS", "1") not in ("0", ""):
        real = ctypes.c_float if key == "f" else ctypes.c_double
        try:
            lib = ctypes.CDLL(_blas.path)
        except OSError:  # pragma: no cover - it was loaded a moment ago
            lib = None
        for pattern, bits in _GEMM_NAMES if lib is not None else ():
            name = pattern.format("s" if key == "f" else "d")
            if hasattr(lib, name):
                i, p, e = (ctypes.c_int64 if bits == 64 else ctypes.c_int32), ctypes.c_void_p, ctypes.c_int
                proto = ctypes.CFUNCTYPE(None, e, e, e, i, i, i, real, p, i, p, i, real, p, i)
                fn = proto((name, lib))
                break
    _gemm_found[key] = fn
    return fn


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
        _dynamic.numba = None  # the dynamic cap re-applies at its next look
        _dynamic.next = 0.0
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
    return 1 if flops < BLAS_PARALLEL_FLOPS else max(1, min(_state["n"], _blas.max, _dynamic.cap()))


def use_blas_threads(flops):
    """Set the BLAS's thread count for a product of ``flops`` operations (a no-op when unchanged or when
    no BLAS switch was found). Called right before each matrix product; also refreshes the dynamic cap
    of numba's threads."""
    d = _dynamic
    if d.enabled and _monotonic() >= d.next:
        d.cap()  # the periodic look at the machine (also caps numba's threads)
    if _blas.set is not None:
        if flops < BLAS_PARALLEL_FLOPS:
            n = 1
        else:
            n = max(1, min(_state["n"], _blas.max, d.free if d.enabled else _state["n"]))
        if n != _blas.current:
            _blas.set(n)
            _blas.current = n

"""Compilation settings shared by every kernel of the library.

Measured on the development machine (shared/research/feasibility.md):
- ``error_model='numpy'`` removes the ZeroDivisionError branch that blocks vectorization.
- fastmath flags without ``nnan``/``ninf``: NaN and inf must keep their IEEE meaning
  (torch propagates NaN through max/min/sum), but reassociation lets reductions vectorize.
- ``prange`` pays for its 2-4 us launch only above about a million elements.
"""
import os

#: fastmath flags safe for NaN/inf semantics (no 'nnan', no 'ninf').
FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

#: Element count above which kernels switch to their ``prange`` variant.
PARALLEL_THRESHOLD = int(os.environ.get("JITORCH_PARALLEL_THRESHOLD", 1 << 20))

#: Keyword arguments for every serial CPU kernel.
# (numba takes fastmath as a bool, dict or set -- not a frozenset -- hence the copies)
NJIT = dict(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")

#: Keyword arguments for every parallel CPU kernel.
NJIT_PARALLEL = dict(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy", parallel=True)


def max_threads() -> int:
    """The size of numba's thread pool (fixed at its first launch; read without launching it)."""
    import numba

    return max(1, int(numba.config.NUMBA_NUM_THREADS))


def set_threads(n: int) -> None:
    """The threads this Python thread's parallel kernels use (numba's rule: per calling thread)."""
    import numba

    numba.set_num_threads(max(1, min(int(n), max_threads())))


def pool_started() -> bool:
    """Whether numba has launched its thread pool (``set_threads`` launches it; a launched OpenMP pool
    makes forked children that run parallel kernels abort, so callers that only tune avoid launching)."""
    from numba.np.ufunc import parallel

    return bool(getattr(parallel, "_is_initialized", True))

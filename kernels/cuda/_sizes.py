"""Launch sizes of the CUDA kernel library (reduce, matmul, nn, index, sort, random, optim), chosen in one place.

Every launcher takes its block size / tile as a keyword argument and defaults to the values here. On a real GPU
the defaults are the usual ones (256-thread blocks, 16x16 matmul tiles). Under numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) each simulated thread is a Python thread, and a block that calls ``syncthreads``
costs about 2 ms per thread, so the defaults shrink to 16-thread blocks and 4x4 tiles: the same code paths run,
just with fewer threads. Block sizes must be powers of two (tree reductions and bitonic sorts halve them).
"""
from __future__ import annotations

from .launch import SIM, simulating  # noqa: F401  (one test of "are we on the simulator" for the package)

#: threads per block of reductions, scans, softmax rows and elementwise-style launches
BLOCK = 16 if SIM else 256
#: side of the square shared-memory tile of matmul (TILE*TILE threads per block)
TILE = 4 if SIM else 16
#: rows of at most this many elements are sorted in one block's shared memory (bitonic)
SORT_BLOCK = 32 if SIM else 1024
#: target number of blocks for one reduction when its outputs are few (the work is split into chunks)
TARGET_BLOCKS = 4 if SIM else 1024


def _device_function(fn):
    from numba import cuda
    return cuda.jit(device=True)(fn)


@_device_function
def unravel3(i, B, C):
    """(a, b, c) of the flat index ``i`` into a C-contiguous (A, B, C) grid: a kernel's thread -> its element."""
    c = i % C
    r = i // C
    return r // B, r % B, c


def kernel(fn):
    """``cuda.jit`` for the kernels of these modules. Under the simulator, which runs one kernel at a time
    (numba asserts it), every launch holds the lock of :mod:`.launch`, as the elementwise launches do."""
    from numba import cuda
    k = cuda.jit(fn)
    return _Serialized(k) if SIM else k


class _Serialized:
    __slots__ = ("k", "py_func")

    def __init__(self, k):
        self.k = k
        self.py_func = getattr(k, "py_func", None)

    def __getitem__(self, config):
        from .launch import _sim_lock
        run = self.k[config]

        def launch(*args):
            with _sim_lock:
                run(*args)
        return launch


def check_pow2(what: str, n: int) -> int:
    n = int(n)
    if n < 1 or n & (n - 1):
        raise ValueError(f"{what} must be a power of two >= 1, got {n}")
    return n


def cdiv(a: int, b: int) -> int:
    return -(-a // b)

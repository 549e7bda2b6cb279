"""Launch configuration of jitorch's CUDA kernels, in one place.

Every elementwise-style kernel of the library is written as a grid-stride loop
(``for i in range(cuda.grid(1), n, cuda.gridsize(1))``), so any grid covers every element and the
launch size is a pure performance choice made here:

- on a GPU: 256 threads per block and enough blocks for ``n`` (capped; the loop covers the rest);
- under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) every simulated thread is a Python
  thread (about 150 us each, shared/research/feasibility.md section 6), so a launch uses at most
  :data:`SIM_MAX_THREADS` threads in one block, and only as many as there are elements.

The simulator runs one kernel at a time (numba asserts it), so :func:`launch` serializes launches
with a lock when simulating; on a GPU launches are asynchronous and ordered on the default stream.
"""
from __future__ import annotations

import os
import threading


def simulating() -> bool:
    """True when ``numba.cuda`` is (or will be, once imported) numba's CUDA simulator."""
    try:
        from numba import config
        if getattr(config, "ENABLE_CUDASIM", 0):
            return True
    except ImportError:  # pragma: no cover - numba is a hard dependency
        pass
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


SIM = simulating()

#: threads per block of grid-stride launches on a GPU
THREADS = 256
#: most blocks of one grid-stride launch on a GPU (the loop covers any remaining elements)
MAX_BLOCKS = 65535
#: most threads of one launch under the simulator (one block)
SIM_MAX_THREADS = 32

_sim_lock = threading.Lock()


def config(n: int) -> tuple[int, int]:
    """(blocks, threads per block) for a grid-stride loop over ``n`` >= 1 items."""
    n = max(int(n), 1)
    if SIM:
        return 1, min(n, SIM_MAX_THREADS)
    threads = min(THREADS, n)
    return min(-(-n // threads), MAX_BLOCKS), threads


def launch(kernel, n: int, *args) -> None:
    """Run ``kernel[config(n)](*args)``; nothing runs when ``n`` is 0."""
    if n <= 0:
        return
    blocks, threads = config(n)
    if SIM:
        with _sim_lock:
            kernel[blocks, threads](*args)
    else:
        kernel[blocks, threads](*args)

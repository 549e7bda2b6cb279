"""Direct calls of compiled kernels, without numba's dispatcher.

Calling a numba dispatcher types every argument and looks the overload up on each call: about
0.3-0.7 us for two or three arrays here, more than a 1-element kernel's own work. A caller that
already knows the exact numba types of the arguments can call the compiled overload's CPython
wrapper instead (``Dispatcher.compile(sig)`` returns it).

That wrapper does NOT check its arguments: an array of another dtype, number of dims or layout
is reinterpreted (wrong results, or memory outside the array). So only call an entry point with
arrays whose dtype, ndim and C-contiguity are fixed by the cache key the entry point is stored
under (eager dispatch's plans are keyed by exactly these), and only for kernels that never write
their input arrays: a read-only or unaligned input (``np.frombuffer`` at an odd offset) then runs
the code numba compiled for a writable, aligned array of that type, which only reads it with
element-sized loads (allowed at any address on x86-64 and AArch64; tests/test_dispatch_plans.py
runs both kinds of input through the planned paths).
"""
from __future__ import annotations

import numba

__all__ = ["entry_point"]


def entry_point(kernel, *examples):
    """The compiled CPython entry of numba dispatcher ``kernel`` for arguments typed like
    ``examples`` (compiled now, or loaded from numba's on-disk cache). Arrays among ``examples``
    should be fresh C-contiguous arrays of the real arguments' dtype and ndim."""
    return kernel.compile(tuple(numba.typeof(a) for a in examples))

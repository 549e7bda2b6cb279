"""Tiny matrix products without the BLAS call's fixed cost.

``np.matmul`` costs 1.5-2 us even for a 1x1 product (argument parsing, the BLAS dispatch, thread
checks); a numba loop over a few hundred multiply-adds costs about 0.3 us. The caller
(jitorch/ops/linalg.py) sends 2-D products of at most :data:`MAX_FLOPS` here and everything
bigger to the BLAS.
"""
from __future__ import annotations

from numba import njit

from ._config import NJIT

__all__ = ["MAX_FLOPS", "mm_small", "mm_small_out"]

#: 2*M*N*K at or below which :func:`mm_small` beats np.matmul on this machine (measured: a 8x8x8
#: product, 1024 flops, 0.5 us here vs 1.9 us through np.matmul)
MAX_FLOPS = 2048


@njit(**NJIT)
def mm_small(a, b, out):
    """out[i, j] = sum_k a[i, k] * b[k, j] for 2-D arrays of one numeric dtype, any strides.

    Contract (checked by the caller): a (M, K), b (K, N), out (M, N) with K >= 1, out not
    overlapping a or b; no float16 (numba has none on the CPU). Integer products wrap as NumPy's do."""
    m, k = a.shape
    n = b.shape[1]
    for i in range(m):
        for j in range(n):
            acc = a[i, 0] * b[0, j]
            for p in range(1, k):
                acc += a[i, p] * b[p, j]
            out[i, j] = acc


@njit(**NJIT)
def mm_small_out(out, a, b):
    """:func:`mm_small` with the output first: the argument order of a dispatch plan's impl, so eager
    dispatch can call this kernel's compiled entry point directly (kernels._entry). Same contract."""
    mm_small(a, b, out)

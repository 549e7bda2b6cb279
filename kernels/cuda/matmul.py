"""CUDA matmul: a tiled shared-memory GEMM with register blocking, batched with broadcast batch dims.

``matmul(a, b, out)``: a (BA, M, K), b (BB, K, N), out (B, M, N) device arrays with BA and BB each 1 or B
(a batch of 1 broadcasts, as a stride-0 batch). ``trans_a=True`` means ``a`` is given as (BA, K, M) and read
transposed (likewise ``trans_b``: b given as (BB, N, K)), so ``x @ w.T`` needs no copy. Operands may be any
strided device array (numba indexes through the strides); out is written, never read.
Any numeric dtype works; a, b and out share it (the op layer converts first). Accumulation is in out's dtype.

Layout of one launch: a block of (TILE, TILE) threads computes a (TILE*R) x (TILE*R) tile of out; per step
it stages a (TILE*R) x TILE slice of A and a TILE x (TILE*R) slice of B in shared memory, and each thread
accumulates an R x R register block (rows ty + i*TILE, columns tx + j*TILE: coalesced loads and stores).
TILE defaults to 16 on a GPU (R=4: 64x64 per block of 256 threads) and 4 under the simulator (R=2).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import cuda, from_dtype

from ._sizes import SIM, TILE, cdiv, kernel

__all__ = ["matmul", "REG"]

#: rows/columns of out each thread computes in each direction (register blocking)
REG = 2 if SIM else 4
_MAX_GRID_Z = 65535


@lru_cache(maxsize=None)
def _kernel(dtype_str, tile, reg, trans_a, trans_b):
    nb = from_dtype(np.dtype(dtype_str))
    bm = tile * reg

    @kernel
    def k(a, b, c, zero):
        sa = cuda.shared.array((bm, tile), nb)
        sb = cuda.shared.array((tile, bm), nb)
        acc = cuda.local.array((reg, reg), nb)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        z = cuda.blockIdx.z
        za = z if a.shape[0] > 1 else 0
        zb = z if b.shape[0] > 1 else 0
        row0 = cuda.blockIdx.y * bm
        col0 = cuda.blockIdx.x * bm
        M = c.shape[1]
        N = c.shape[2]
        K = a.shape[1] if trans_a else a.shape[2]
        for i in range(reg):
            for j in range(reg):
                acc[i, j] = zero
        for k0 in range(0, K, tile):
            kk = k0 + tx
            for i in range(reg):
                r = row0 + ty + i * tile
                if r < M and kk < K:
                    sa[ty + i * tile, tx] = a[za, kk, r] if trans_a else a[za, r, kk]
                else:
                    sa[ty + i * tile, tx] = zero
            kk = k0 + ty
            for j in range(reg):
                col = col0 + tx + j * tile
                if col < N and kk < K:
                    sb[ty, tx + j * tile] = b[zb, col, kk] if trans_b else b[zb, kk, col]
                else:
                    sb[ty, tx + j * tile] = zero
            cuda.syncthreads()
            for q in range(tile):
                for i in range(reg):
                    av = sa[ty + i * tile, q]
                    for j in range(reg):
                        acc[i, j] += av * sb[q, tx + j * tile]
            cuda.syncthreads()
        for i in range(reg):
            r = row0 + ty + i * tile
            if r < M:
                for j in range(reg):
                    col = col0 + tx + j * tile
                    if col < N:
                        c[z, r, col] = acc[i, j]
    return k


def matmul(a, b, out, *, trans_a=False, trans_b=False, tile=TILE, reg=REG):
    """out[z] = op(a[z or 0]) @ op(b[z or 0]) for every batch z (see the module docstring for the shapes)."""
    B, M, N = out.shape
    K = a.shape[1] if trans_a else a.shape[2]
    kb = b.shape[2] if trans_b else b.shape[1]
    if K != kb or a.shape[0] not in (1, B) or b.shape[0] not in (1, B):
        raise ValueError(f"cuda matmul: shapes {tuple(a.shape)} (trans={trans_a}) and {tuple(b.shape)} "
                         f"(trans={trans_b}) do not make {tuple(out.shape)}")
    if out.size == 0:
        return out
    dt = np.dtype(out.dtype)
    if K == 0:
        from .reduce import fill
        fill(out, 0)
        return out
    bm = tile * reg
    k = _kernel(dt.str, int(tile), int(reg), bool(trans_a), bool(trans_b))
    for z0 in range(0, B, _MAX_GRID_Z):  # the grid's z dim (the batch) is at most 65535 blocks
        z1 = min(B, z0 + _MAX_GRID_Z)
        aa = a[z0:z1] if a.shape[0] > 1 else a
        bb = b[z0:z1] if b.shape[0] > 1 else b
        k[(cdiv(N, bm), cdiv(M, bm), z1 - z0), (tile, tile)](aa, bb, out[z0:z1] if B > _MAX_GRID_Z else out,
                                                             dt.type(0))
    return out

"""CUDA kernels for the ops that were cpu-only: scatter with reduce='prod', repeat_interleave and unique.

Arrays are C-contiguous device arrays; along-dim ops use (outer, n, inner) views as kernels/cuda/index.py.
Index arrays are int64 and already validated/wrapped by the caller (kernels never check bounds).

- ``scatter_prod`` has no atomic multiply to lean on, so it gathers instead: one thread per destination
  element walks the index positions of its (outer, inner) line and multiplies the sources that land on
  it, in index order. Deterministic (same order as the cpu loop), O(n * m) per line: fine for the sizes
  scatter_reduce is used at, and it never races.
- ``repeat_index`` turns the inclusive running sum of the repeats into the gather index of
  repeat_interleave (a binary search per output position); the values then move with ``index_select``.
- ``unique_*`` group a sorted 1-D array: boundary flags, (the caller's running sum of them), then one
  scatter pass writes values, group starts and the inverse, and a last pass turns starts into counts.
- ``multinomial`` gives each row one thread and one xoroshiro128+ state (kernels/cuda/random.py's
  ``states``): each sample is an inverse-CDF walk over the row's remaining weights (float64); without
  replacement the drawn category's weight is zeroed. The caller validates the probabilities first.
"""
from __future__ import annotations

from numba import cuda

from ._sizes import BLOCK, cdiv, kernel
# numba.cuda.random's algorithm and signature, without its object-mode compile under the simulator
from .random import uniform_float64 as xoroshiro128p_uniform_float64

__all__ = ["scatter_prod", "repeat_index", "unique_flags", "unique_scatter", "unique_counts", "multinomial"]


def _grid(n, block):
    return max(1, cdiv(n, block)), block


@kernel
def _scatter_prod_k(w, idx, src, include_self, out):
    t = cuda.grid(1)
    O, N, I = w.shape
    if t < O * N * I:
        q = t % I
        r = t // I
        j = r % N
        p = r // N
        acc = w[p, j, q]
        hit = False
        for m in range(idx.shape[1]):
            if idx[p, m, q] == j:
                if not hit and not include_self:
                    acc = src[p, m, q]
                else:
                    acc = acc * src[p, m, q]
                hit = True
        out[p, j, q] = acc


def scatter_prod(w3, idx3, src3, include_self, out3, *, block=BLOCK):
    """out3[p, j, q] = prod of src3[p, m, q] over m with idx3[p, m, q] == j, times w3[p, j, q] when
    include_self (or when no index hits j). w3/out3 (outer, n, inner); idx3/src3 (outer, m, inner)."""
    if out3.size:
        _scatter_prod_k[_grid(out3.size, block)](w3, idx3, src3, bool(include_self), out3)
    return out3


@kernel
def _repeat_index_k(cs, idx):
    t = cuda.grid(1)
    if t < idx.shape[0]:
        lo = 0
        hi = cs.shape[0] - 1
        while lo < hi:  # smallest j with cs[j] > t
            mid = (lo + hi) // 2
            if cs[mid] > t:
                hi = mid
            else:
                lo = mid + 1
        idx[t] = lo


def repeat_index(cs, idx, *, block=BLOCK):
    """idx[t] = the j with cs[j-1] <= t < cs[j]; cs (n,) int64 inclusive running sum of the repeats,
    idx (cs[-1],) int64."""
    if idx.shape[0]:
        _repeat_index_k[_grid(idx.shape[0], block)](cs, idx)
    return idx


@kernel
def _unique_flags_k(v, flags):
    i = cuda.grid(1)
    if i < v.shape[0]:
        flags[i] = 1 if (i == 0 or v[i] != v[i - 1]) else 0


def unique_flags(v, flags, *, block=BLOCK):
    """flags[i] = 1 where the sorted v starts a new group (``!=`` its left neighbour: NaNs stay apart)."""
    if v.shape[0]:
        _unique_flags_k[_grid(v.shape[0], block)](v, flags)
    return flags


@kernel
def _unique_scatter_k(v, perm, flags, groups, vals, starts, inv):
    i = cuda.grid(1)
    if i < v.shape[0]:
        g = groups[i] - 1
        inv[perm[i]] = g
        if flags[i] != 0:
            vals[g] = v[i]
            starts[g] = i


def unique_scatter(v, perm, flags, groups, vals, starts, inv, *, block=BLOCK):
    """groups = inclusive running sum of flags; writes vals[g], starts[g] and inv[perm[i]] = g."""
    if v.shape[0]:
        _unique_scatter_k[_grid(v.shape[0], block)](v, perm, flags, groups, vals, starts, inv)
    return vals


@kernel
def _unique_counts_k(starts, u, n, counts):
    k = cuda.grid(1)
    if k < u:
        end = starts[k + 1] if k + 1 < u else n
        counts[k] = end - starts[k]


def unique_counts(starts, u, n, counts, *, block=BLOCK):
    """counts[k] = starts[k+1] - starts[k] (n for the last group), k < u."""
    if u:
        _unique_counts_k[_grid(u, block)](starts, u, n, counts)
    return counts


@kernel
def _multinomial_k(p, num_samples, replacement, states, work, out):
    r = cuda.grid(1)
    if r < p.shape[0]:
        k = p.shape[1]
        for j in range(k):
            work[r, j] = p[r, j]
        for s in range(num_samples):
            tot = 0.0
            for j in range(k):
                tot += work[r, j]
            u = xoroshiro128p_uniform_float64(states, r) * tot
            acc = 0.0
            pick = -1
            last = 0
            for j in range(k):
                w = work[r, j]
                if w > 0:
                    last = j
                    acc += w
                    if pick < 0 and u < acc:
                        pick = j
            if pick < 0:  # u rounded up to the total: the last positive category
                pick = last
            out[r, s] = pick
            if not replacement:
                work[r, pick] = 0.0


def multinomial(p2, num_samples, replacement, states, work, out2, *, block=BLOCK):
    """out2[r, s] (int64) = category drawn from row r of p2 (rows, k) float64 (validated: finite, >= 0,
    positive sum, enough positive entries without replacement); ``states``: one xoroshiro state per row;
    ``work`` (rows, k) float64 scratch."""
    rows = p2.shape[0]
    if rows and num_samples:
        _multinomial_k[_grid(rows, block)](p2, int(num_samples), bool(replacement), states, work, out2)
    return out2

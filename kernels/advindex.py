"""Row kernels behind advanced indexing (x[idx] = v, x[idx] += v with index_put accumulate).

The caller permutes the indexed dims of the destination to the front and views it as a
C-contiguous table (V, D): every advanced index becomes one row number in [0, V), validated
and computed by the caller (numba does not check bounds).
"""
from numba import njit

from ._config import NJIT


@njit(**NJIT)
def flat_rows(idx, sizes, out):
    """out[j] = row number of the index tuple idx[:, j] in a C-ordered table of shape ``sizes``.

    ``idx``: (k, N) int64, each row already wrapped into [0, sizes[r]); ``sizes``: (k,) int64;
    ``out``: (N,) int64. Writes ``out``.
    """
    k, n = idx.shape
    for j in range(n):
        r = 0
        for i in range(k):
            r = r * sizes[i] + idx[i, j]
        out[j] = r


@njit(**NJIT)
def scatter_rows(table, rows, vals, accumulate):
    """table[rows[j], :] = vals[j, :] (or += when ``accumulate``), in index order. Writes ``table``.

    ``table``: (V, D) C-contiguous; ``rows``: (N,) int64 in [0, V); ``vals``: (N, D), table's
    dtype. Duplicates: the last write wins, or every value adds up when accumulating.
    """
    n, d = vals.shape
    for j in range(n):
        r = rows[j]
        if accumulate:
            for c in range(d):
                table[r, c] += vals[j, c]
        else:
            for c in range(d):
                table[r, c] = vals[j, c]


@njit(**NJIT)
def wrap_check(idx, n, out):
    """out[i] = idx[i] (+ n if negative); returns the position of the first index outside [-n, n), or len(idx) if all are valid.

    ``idx``: 1-D int64 (any values); ``out``: 1-D int64 of the same length. Writes ``out``
    up to the first bad index, so the caller raises IndexError without reading past it.
    """
    for i in range(idx.shape[0]):
        v = idx[i]
        if v < -n or v >= n:
            return i
        out[i] = v + n if v < 0 else v
    return idx.shape[0]

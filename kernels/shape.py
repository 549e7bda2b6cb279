"""Data-movement kernels that copy: strided copy with casting, fill, flip, roll,
repeat_interleave, tril/triu and the creation kernels (arange, linspace, eye).

Contract shared by every kernel here: the caller has validated shapes and dtypes, allocated
every output, and made sure outputs do not overlap inputs (copy ``src`` first when a view
aliases ``dst``). ``fill``/``copy_nd`` accept arrays of any strides; the other kernels take
the C-contiguous layouts named in their docstrings. Stores cast to the output dtype the way
NumPy's unsafe casting does: floats truncate toward zero into integers, and a store into
``bool`` means ``value != 0`` (so NaN becomes True, as in torch).

``copy_nd`` and ``fill`` are small Python functions that pick a kernel by ndim and, above
``PARALLEL_THRESHOLD`` elements, its ``prange`` twin. The other kernels are serial njit
functions: each ``prange`` variant costs about 2 s of compile time, so only the copies that
carry most of the traffic have one.
"""
import numpy as np
from numba import njit, prange

from ._config import NJIT, NJIT_PARALLEL, PARALLEL_THRESHOLD

# numba accepts fastmath only as a bool, set or dict, not the frozenset _config holds.
_NJIT = dict(NJIT, fastmath=set(NJIT["fastmath"]))
_NJIT_PAR = dict(NJIT_PARALLEL, fastmath=set(NJIT_PARALLEL["fastmath"]))
# helpers called only from other kernels: no Python entry point (about 10% less compile time)
_HELPER = dict(_NJIT, no_cpython_wrapper=True, no_cfunc_wrapper=True)

#: Tiles for copies whose source and destination disagree on the fast axis (transposes).
#: The tile is _TILE_LONG elements along the source's fast axis and _TILE_SHORT along the
#: destination's: with power-of-two strides every strided line maps to the same L1 set, so
#: the strided side may keep only as many lines live as the cache has ways (8). Measured on
#: a 4096x4096 float32 transpose: 64x64 tiles 64 ms, 128x8 or 256x8 tiles 23-25 ms.
_TILE_LONG = 256
_TILE_SHORT = 8

#: Row granularity of parallel bands when the copy does not tile.
_BAND = 64

#: Parallel tasks per kernel call: a constant, since reading numba's thread count inside a
#: kernel makes it uncacheable ("dynamic globals"); prange spreads them over the threads.
_PARTS = 64


def collapse_dims(shape, *strides_lists, reorder=False):
    """Merge dims that can be walked as one, for every stride list at once (pure Python).

    ``shape`` is a sequence of sizes and each of ``strides_lists`` a sequence of strides of
    the same length, in any unit (bytes or elements), possibly zero or negative. Size-1 dims
    are dropped; dims ``i, i+1`` merge when ``stride[i] == stride[i+1] * shape[i+1]`` holds in
    every list. With ``reorder=True`` the dims are first sorted (stably) by decreasing
    ``abs(stride)`` of the first list, so an elementwise kernel walks that operand (usually
    the output) in memory order; only do this for elementwise work, where the order of dims
    does not matter. Returns ``(shape, strides)`` with ``strides`` a tuple of tuples, one
    per input list. An empty array collapses to ``(0,)``; a single element to ``()``.

    >>> collapse_dims((2, 3, 4), (48, 16, 4), (0, 0, 4))
    ((6, 4), ((16, 4), (0, 4)))
    >>> collapse_dims((4, 5), (4, 16), reorder=True)
    ((20,), ((4,),))
    """
    shape = tuple(int(s) for s in shape)
    lists = [tuple(int(s) for s in st) for st in strides_lists]
    for st in lists:
        if len(st) != len(shape):
            raise ValueError(f"collapse_dims: strides {st} do not match shape {shape}")
    if 0 in shape:
        return (0,), tuple((1,) for _ in lists)
    dims = [d for d in range(len(shape)) if shape[d] != 1]
    if reorder and lists:
        first = lists[0]
        dims.sort(key=lambda d: -abs(first[d]))
    new_shape = []
    new_strides = [[] for _ in lists]
    for d in dims:
        if new_shape and all(ns[-1] == st[d] * shape[d] for ns, st in zip(new_strides, lists)):
            new_shape[-1] *= shape[d]
            for ns, st in zip(new_strides, lists):
                ns[-1] = st[d]
            continue
        new_shape.append(shape[d])
        for ns, st in zip(new_strides, lists):
            ns.append(st[d])
    return tuple(new_shape), tuple(tuple(ns) for ns in new_strides)


# --------------------------------------------------------------------------------------
# copy_nd: strided copy with casting on store
#
# All the work happens in _copy2_part on 2-D pieces. It re-views the pair (``x[:, :]`` or
# ``x.T``, which numba unifies to one 'A'-layout type) so that the destination's fast axis
# is dim 1, then runs one generic loop nest (plain rows, or tiles when the source is fast
# along the other axis) plus a vectorizable one for rows contiguous on both sides. One
# function with few nests keeps the compile cost per (dtype, layout) signature well under
# a second; a helper per orientation, or numpy's as_strided, cost 3-10x that.
# --------------------------------------------------------------------------------------

@njit(**_HELPER)
def _copy2_part(src, dst, part, parts):
    """Copy band ``part`` of ``parts`` (bands of rows of the re-viewed pair)."""
    n0, n1 = dst.shape
    s0, s1 = src.strides
    d0, d1 = dst.strides
    dst_rows = abs(d1) <= abs(d0)
    if n1 <= 1:
        dst_rows = False
    elif n0 <= 1:
        dst_rows = True
    a0, a1 = abs(s0), abs(s1)
    # tile when the source's fast axis is the other one, unless a zero stride makes the
    # source indifferent or the pair is small enough to stay in cache
    tiled = not (a0 == 0 or a1 == 0 or a0 == a1 or (a1 < a0) == dst_rows
                 or n0 * n1 <= 4096 or n0 <= 1 or n1 <= 1)
    if dst_rows:
        s = src[:, :]
        d = dst[:, :]
    else:
        s = src.T
        d = dst.T
    rows, cols = d.shape
    band = _TILE_LONG if tiled else _BAND
    bands = (rows + band - 1) // band
    r_start = min(part * bands // parts * band, rows)
    r_end = min((part + 1) * bands // parts * band, rows)
    if not tiled and s.strides[1] == s.itemsize and d.strides[1] == d.itemsize:
        # rows contiguous on both sides (a cat or a slice assignment): re-view each row as
        # 'C' (no copy, the strides were just checked) so the loop vectorizes; through the
        # 'A' views it runs 4x slower
        for i in range(r_start, r_end):
            s_row = np.ascontiguousarray(s[i])
            d_row = np.ascontiguousarray(d[i])
            for j in range(cols):
                d_row[j] = s_row[j]
        return
    tile_rows = _TILE_LONG if tiled else max(r_end - r_start, 1)
    step = _TILE_SHORT if tiled else max(cols, 1)
    for t0 in range(r_start, r_end, tile_rows):
        t1 = min(t0 + tile_rows, r_end)
        for jb in range(0, cols, step):
            je = min(jb + step, cols)
            for i in range(t0, t1):
                for j in range(jb, je):
                    d[i, j] = s[i, j]


@njit(**_NJIT)
def _copy0(src, dst):
    dst[()] = src[()]


@njit(**_NJIT)
def _copy1(src, dst):
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@njit(**_NJIT_PAR)
def _copy1_par(src, dst):
    for i in prange(dst.shape[0]):
        dst[i] = src[i]


@njit(**_NJIT)
def _copy2(src, dst):
    _copy2_part(src, dst, 0, 1)


@njit(**_NJIT)
def _copy3(src, dst):
    for a in range(dst.shape[0]):
        _copy2_part(src[a], dst[a], 0, 1)


@njit(**_NJIT)
def _copy4(src, dst):
    for a in range(dst.shape[0]):
        for b in range(dst.shape[1]):
            _copy2_part(src[a, b], dst[a, b], 0, 1)


@njit(**_NJIT)
def _copyn(src, dst):
    for lead in np.ndindex(dst.shape[:-2]):
        _copy2_part(src[lead], dst[lead], 0, 1)


@njit(**_NJIT_PAR)
def _copy2_par(src, dst):
    parts = _PARTS
    for p in prange(parts):
        _copy2_part(src, dst, p, parts)


@njit(**_NJIT_PAR)
def _copy3_par(src, dst):
    n0 = dst.shape[0]
    parts = max(1, (_PARTS + n0 - 1) // max(n0, 1))
    for t in prange(n0 * parts):
        a = t // parts
        _copy2_part(src[a], dst[a], t - a * parts, parts)


_COPY_SERIAL = (_copy0, _copy1, _copy2, _copy3, _copy4, _copyn, _copyn, _copyn, _copyn)
_COPY_PAR = (_copy0, _copy1_par, _copy2_par, _copy3_par, _copy4, _copyn, _copyn, _copyn, _copyn)


def copy_nd(src, dst):
    """dst[...] = src, casting on store. Writes ``dst``.

    ``src`` and ``dst``: NumPy arrays (views) of the same shape, ndim 0..8, any strides
    (zero and negative included), any of the kernel dtypes, possibly different dtypes
    (float -> int truncates, anything -> bool is ``!= 0``). They must not overlap. The loop
    walks the last two dims with the destination's fast axis innermost, tiling when source
    and destination disagree (a transpose); collapse dims first (``collapse_dims``) so the
    last two dims carry the work. ``prange`` above PARALLEL_THRESHOLD elements (ndim <= 4).
    """
    if dst.size >= PARALLEL_THRESHOLD:
        _COPY_PAR[dst.ndim](src, dst)
    else:
        _COPY_SERIAL[dst.ndim](src, dst)


# --------------------------------------------------------------------------------------
# fill
# --------------------------------------------------------------------------------------

@njit(**_HELPER)
def _fill2_part(dst, value, part, parts):
    """Fill band ``part`` of ``parts`` of a 2-D ``dst``, walked along its fast axis."""
    d0, d1 = dst.strides
    if abs(d1) <= abs(d0):
        d = dst[:, :]
    else:
        d = dst.T
    rows, cols = d.shape
    for i in range(part * rows // parts, (part + 1) * rows // parts):
        for j in range(cols):
            d[i, j] = value


@njit(**_NJIT)
def _fill0(dst, value):
    dst[()] = value


@njit(**_NJIT)
def _fill1(dst, value):
    for i in range(dst.shape[0]):
        dst[i] = value


@njit(**_NJIT_PAR)
def _fill1_par(dst, value):
    for i in prange(dst.shape[0]):
        dst[i] = value


@njit(**_NJIT)
def _fill2(dst, value):
    _fill2_part(dst, value, 0, 1)


@njit(**_NJIT)
def _filln(dst, value):
    for lead in np.ndindex(dst.shape[:-2]):
        _fill2_part(dst[lead], value, 0, 1)


_FILL_SERIAL = (_fill0, _fill1, _fill2, _filln, _filln, _filln, _filln, _filln, _filln)
_FILL_PAR = (_fill0, _fill1_par, _fill2, _filln, _filln, _filln, _filln, _filln, _filln)


def fill(dst, value):
    """dst[...] = value. Writes ``dst``.

    ``dst``: any dtype, ndim 0..8, any strides. ``value``: a Python or NumPy scalar, cast on
    store (pass an int for integer ``dst`` to avoid a float round trip). Collapse ``dst``
    to 1-D or 2-D when possible: only those run in parallel (above PARALLEL_THRESHOLD).
    """
    if dst.size >= PARALLEL_THRESHOLD:
        _FILL_PAR[dst.ndim](dst, value)
    else:
        _FILL_SERIAL[dst.ndim](dst, value)


# --------------------------------------------------------------------------------------
# flip, roll, repeat_interleave: (outer, n, inner) layouts, C-contiguous
# --------------------------------------------------------------------------------------

@njit(**_NJIT)
def flip(src, out):
    """out[a, j, b] = src[a, n-1-j, b]. Writes ``out``.

    ``src``, ``out``: (outer, n, inner), same dtype, C-contiguous, not overlapping. Serial:
    a flip is a copy, so large or multi-dim flips can instead go through ``copy_nd`` from a
    negative-stride view (which runs in parallel).
    """
    outer, n, inner = src.shape
    for a in range(outer):
        for j in range(n):
            for b in range(inner):
                out[a, j, b] = src[a, n - 1 - j, b]


@njit(**_NJIT)
def roll(src, out, shift):
    """out[a, (j + shift) % n, b] = src[a, j, b]. Writes ``out``.

    ``src``, ``out``: (outer, n, inner), same dtype, C-contiguous, not overlapping.
    ``shift``: int already normalized by the caller to ``0 <= shift < n`` (n > 0). Serial
    (two ``copy_nd`` calls on slices do the same in parallel).
    """
    outer, n, inner = src.shape
    for a in range(outer):
        for j in range(n):
            jj = j + shift
            if jj >= n:
                jj -= n
            for b in range(inner):
                out[a, jj, b] = src[a, j, b]


@njit(**_NJIT)
def repeat_interleave(src, repeats, out):
    """Repeat each middle-axis slice ``repeats[j]`` times. Writes ``out``.

    ``src``: (outer, n, inner); ``repeats``: (n,) int64, all >= 0; ``out``:
    (outer, repeats.sum(), inner), same dtype as ``src``, C-contiguous. Serial.
    """
    outer, n, inner = src.shape
    for a in range(outer):
        pos = 0
        for j in range(n):
            for r in range(repeats[j]):
                for b in range(inner):
                    out[a, pos, b] = src[a, j, b]
                pos += 1


@njit(**_NJIT)
def tril(src, diagonal, out):
    """out[k, i, j] = src[k, i, j] if j - i <= diagonal else 0. Writes ``out``.

    ``src``, ``out``: (batch, rows, cols), same dtype, C-contiguous; ``out`` may be ``src``
    (in-place ``tril_``). ``diagonal``: any int.
    """
    batch, rows, cols = src.shape
    for k in range(batch):
        for i in range(rows):
            for j in range(cols):
                if j - i <= diagonal:
                    out[k, i, j] = src[k, i, j]
                else:
                    out[k, i, j] = 0


@njit(**_NJIT)
def triu(src, diagonal, out):
    """out[k, i, j] = src[k, i, j] if j - i >= diagonal else 0. Writes ``out``.

    Same layout contract as ``tril``; ``out`` may be ``src``.
    """
    batch, rows, cols = src.shape
    for k in range(batch):
        for i in range(rows):
            for j in range(cols):
                if j - i >= diagonal:
                    out[k, i, j] = src[k, i, j]
                else:
                    out[k, i, j] = 0


# --------------------------------------------------------------------------------------
# creation kernels
# --------------------------------------------------------------------------------------

@njit(**_NJIT)
def arange(start, step, out):
    """out[i] = start + i * step. Writes ``out`` (1-D, any dtype).

    Pass Python ints for integer outputs (exact integer arithmetic) and floats otherwise:
    the value is computed in float64 and rounded once on store, as torch's CPU arange does.
    """
    for i in range(out.shape[0]):
        out[i] = start + i * step


@njit(**_NJIT)
def linspace(start, end, out):
    """``out.shape[0]`` evenly spaced values from ``start`` to ``end`` inclusive. Writes ``out``.

    torch's formula: the first half counts up from ``start``, the second half down from
    ``end``, so both endpoints are exact. Computed in float64 and cast on store (integer
    outputs truncate, as torch). ``start``, ``end``: floats.
    """
    steps = out.shape[0]
    if steps == 0:
        return
    if steps == 1:
        out[0] = start
        return
    step = (end - start) / (steps - 1)
    half = steps // 2
    for i in range(steps):
        if i < half:
            out[i] = start + step * i
        else:
            out[i] = end - step * (steps - i - 1)


@njit(**_NJIT)
def eye(out):
    """Identity: out[i, j] = 1 if i == j else 0. Writes ``out`` (2-D, any dtype, any strides)."""
    n, m = out.shape
    for i in range(n):
        for j in range(m):
            out[i, j] = 0
        if i < m:
            out[i, i] = 1

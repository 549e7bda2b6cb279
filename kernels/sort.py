"""Sorting and selection kernels: sort, topk, kthvalue, median, nanmedian, mode,
unique_sorted, searchsorted.

Rows are the last axis of a C-contiguous 2-D array ``(rows, n)``: the caller moves the
sorted dim last and reshapes. Rows must be shorter than 2**31 elements (indices are int32
while sorting). Every output is allocated by the caller; ``values_out`` must not alias ``x``
(values are gathered from ``x`` through the sorted indices at the end).

Order: torch's. NaN sorts as the largest value (last ascending, first descending); ``-0.0``
and ``0.0`` are equal; ``bool`` sorts False < True. Sorting is always stable, also
descending (equal values keep their original order, as ``torch.sort(stable=True)``).

How: every value is mapped to an unsigned integer key whose plain ``<`` is that order (the
float bit trick, NaN to the top, the sign bit flipped for signed ints, all bits inverted for
descending). Rows then sort by key with an LSD radix sort (256 buckets, one pass per key byte,
a pass skipped when every key has the same byte there) and an insertion sort for rows of at
most 32, both stable. ``topk`` keeps a k-element heap when k is small
against n; ``kthvalue``/``median`` quickselect on (key, index) pairs.

The kernels never see the dtype: the Python wrappers pass the data as unsigned integers of
the same width (a free ``.view``) plus a ``kind`` code, keys are computed from the bits, and
values move as bits. So one compiled kernel serves float32, int32 and uint32 alike, and
narrower data is widened to 4 bytes: two signatures (4 and 8 bytes) per kernel instead of
one per dtype, which matters because each of these kernels costs seconds to compile.
"""
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from ._config import NJIT, NJIT_PARALLEL, PARALLEL_THRESHOLD

# numba accepts fastmath only as a bool, set or dict, not the frozenset _config holds.
_NJIT = dict(NJIT, fastmath=set(NJIT["fastmath"]))
_NJIT_PAR = dict(NJIT_PARALLEL, fastmath=set(NJIT_PARALLEL["fastmath"]))
# helpers called only from other kernels: no Python entry point (about 10% less compile time)
_HELPER = dict(_NJIT, no_cpython_wrapper=True, no_cfunc_wrapper=True)

#: Rows up to this length sort by insertion, longer ones by radix. Measured on 256K float32
#: in rows of n: insertion 9 ms at n = 32 (radix 18); radix 12 ms at n = 64 (insertion 15,
#: a merge sort 23) and 4x faster than the merge sort at n = 1024. A merge sort for the
#: middle sizes was dropped: it added 2 s to every sort kernel's compile time.
_INSERTION_MAX = 32

#: Parallel tasks (chunks of rows) per call: a constant, since reading numba's thread count
#: inside a kernel makes it uncacheable; prange spreads the chunks over the threads.
_PARTS = 64


# --------------------------------------------------------------------------------------
# keys: bits -> unsigned integer with the sort order as plain '<'
# --------------------------------------------------------------------------------------

#: ``kind`` codes passed to the kernels with the bits.
KIND_FLOAT, KIND_SIGNED, KIND_UNSIGNED = 0, 1, 2
_KINDS = {"f": KIND_FLOAT, "i": KIND_SIGNED, "u": KIND_UNSIGNED, "b": KIND_UNSIGNED}
_UINTS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
#: Bit pattern of +inf for each float width (anything above it, sign masked off, is NaN).
_INF_BITS = {16: 0x7C00, 32: 0x7F800000, 64: 0x7FF0000000000000}


def _bits(a):
    """``a`` viewed as unsigned integers of its itemsize (no copy)."""
    return a.view(_UINTS[a.itemsize])


def _width_constants(u):
    w = u.bitwidth
    sign = np.uint64(1 << (w - 1))
    mask = np.uint64((1 << w) - 1)
    return sign, np.uint64((1 << (w - 1)) - 1), mask, np.uint64(_INF_BITS.get(w, mask))


def _sort_key(u, kind, descending):
    """Sort key (uint32, or uint64 for 8-byte data) of the bits ``u`` of one element."""
    raise NotImplementedError  # only called from numba; see the overload below


def _is_nan(u, kind):
    """Whether the bits ``u`` of one element are a float NaN."""
    raise NotImplementedError


def _key_empty(xu, n):
    """np.empty(n) of the key dtype for bits ``xu``."""
    raise NotImplementedError


@overload(_sort_key)
def _sort_key_impl(u, kind, descending):
    if not isinstance(u, types.Integer):
        return None
    sign, magnitude, mask, inf = _width_constants(u)
    key_t = np.uint64 if u.bitwidth == 64 else np.uint32

    def impl(u, kind, descending):
        k = np.uint64(u)
        if kind == KIND_FLOAT:
            a = k & magnitude
            if a > inf:
                k = mask  # every NaN, whatever its sign and payload: the largest key
            elif a == 0:
                k = sign  # -0.0 == 0.0
            elif k & sign:
                k = ~k & mask
            else:
                k = k | sign
        elif kind == KIND_SIGNED:
            k = k ^ sign
        if descending:
            k = k ^ mask
        return key_t(k)
    return impl


@overload(_is_nan)
def _is_nan_impl(u, kind):
    if not isinstance(u, types.Integer):
        return None
    sign, magnitude, mask, inf = _width_constants(u)
    return lambda u, kind: kind == KIND_FLOAT and (np.uint64(u) & magnitude) > inf


@overload(_key_empty)
def _key_empty_impl(xu, n):
    if xu.dtype.bitwidth > 32:
        return lambda xu, n: np.empty(n, np.uint64)
    return lambda xu, n: np.empty(n, np.uint32)


# --------------------------------------------------------------------------------------
# stable sorts of (keys, idx) pairs; each returns the arrays holding the result
# --------------------------------------------------------------------------------------

@njit(**_HELPER)
def _insertion_sort(keys, idx, lo, hi):
    for i in range(lo + 1, hi):
        k = keys[i]
        v = idx[i]
        j = i - 1
        while j >= lo and keys[j] > k:
            keys[j + 1] = keys[j]
            idx[j + 1] = idx[j]
            j -= 1
        keys[j + 1] = k
        idx[j + 1] = v


@njit(**_HELPER)
def _radix_sort(keys, idx, kbuf, ibuf, hist):
    """LSD radix sort on key bytes; ``hist`` is (itemsize, 256) int64 scratch."""
    n = keys.shape[0]
    nbytes = keys.itemsize
    hist[:, :] = 0
    for i in range(n):
        k = np.uint64(keys[i])
        for b in range(nbytes):
            hist[b, np.int64((k >> np.uint64(8 * b)) & np.uint64(255))] += 1
    ak, ai, bk, bi = keys, idx, kbuf, ibuf
    in_first = True
    for b in range(nbytes):
        shift = np.uint64(8 * b)
        if hist[b, np.int64((np.uint64(keys[0]) >> shift) & np.uint64(255))] == n:
            continue  # every key has the same byte here
        total = 0
        for d in range(256):
            c = hist[b, d]
            hist[b, d] = total
            total += c
        for i in range(n):
            k = ak[i]
            d = np.int64((np.uint64(k) >> shift) & np.uint64(255))
            p = hist[b, d]
            hist[b, d] = p + 1
            bk[p] = k
            bi[p] = ai[i]
        ak, bk = bk, ak
        ai, bi = bi, ai
        in_first = not in_first
    return ak, ai, in_first


@njit(**_HELPER)
def _sort_keys(keys, idx, kbuf, ibuf, hist):
    """Stable sort of (keys, idx) by key.

    Returns (sorted keys, their indices, whether those are ``keys``/``idx`` rather than
    the ``kbuf``/``ibuf`` scratch).
    """
    n = keys.shape[0]
    if n <= _INSERTION_MAX:
        _insertion_sort(keys, idx, 0, n)
        return keys, idx, True
    return _radix_sort(keys, idx, kbuf, ibuf, hist)


@njit(**_HELPER)
def _load_keys(row, kind, descending, keys, idx):
    for j in range(row.shape[0]):
        keys[j] = _sort_key(row[j], kind, descending)
        idx[j] = j


# --------------------------------------------------------------------------------------
# sort
# --------------------------------------------------------------------------------------

@njit(**_HELPER)
def _sort_rows(xu, kind, values_u, indices_out, descending, r0, r1):
    # Scratch lives in the outputs where it can: the values row (same width as the keys)
    # is the second key buffer, and the int64 indices row holds both int32 index buffers.
    # Fresh memory costs page faults (on this VM, 26 ms for 24 MB: as much as the sort).
    n = xu.shape[1]
    keys = _key_empty(xu, n)
    hist = np.empty((keys.itemsize, 256), np.int64)
    for r in range(r0, r1):
        out = indices_out[r]
        halves = out.view(np.int32)
        idx = halves[:n]
        _load_keys(xu[r], kind, descending, keys, idx)
        sk, si, in_first = _sort_keys(keys, idx, values_u[r], halves[n:], hist)
        for j in range(n):
            values_u[r, j] = xu[r, si[j]]
        # widen the int32 indices into their own int64 row without clobbering unread ones:
        # int64 slot j covers int32 slots 2j and 2j+1, so walk down from the first half
        # and up from the second
        if in_first:
            for j in range(n - 1, -1, -1):
                out[j] = si[j]
        else:
            for j in range(n):
                out[j] = si[j]


# --------------------------------------------------------------------------------------
# selection on (key, index) pairs: heap for topk, quickselect for kthvalue/median
# --------------------------------------------------------------------------------------

@njit(**_HELPER)
def _pair_less(ka, ia, kb, ib):
    return ka < kb or (ka == kb and ia < ib)


@njit(**_HELPER)
def _sift_down(hk, hi, start, end):
    """Restore the max-heap (by (key, index)) of hk[start:end] below position ``start``."""
    root = start
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and _pair_less(hk[child], hi[child], hk[child + 1], hi[child + 1]):
            child += 1
        if _pair_less(hk[root], hi[root], hk[child], hi[child]):
            hk[root], hk[child] = hk[child], hk[root]
            hi[root], hi[child] = hi[child], hi[root]
            root = child
        else:
            return


@njit(**_HELPER)
def _heap_sort(hk, hi, n):
    """Sort hk[:n], hi[:n] ascending by (key, index), in place."""
    for start in range(n // 2 - 1, -1, -1):
        _sift_down(hk, hi, start, n)
    for end in range(n - 1, 0, -1):
        hk[0], hk[end] = hk[end], hk[0]
        hi[0], hi[end] = hi[end], hi[0]
        _sift_down(hk, hi, 0, end)


@njit(**_HELPER)
def _topk_heap(row, kind, k, descending, hk, hi):
    """The k best (smallest key) pairs of ``row`` into hk[:k], hi[:k], sorted."""
    n = row.shape[0]
    for j in range(k):
        hk[j] = _sort_key(row[j], kind, descending)
        hi[j] = j
    for start in range(k // 2 - 1, -1, -1):
        _sift_down(hk, hi, start, k)
    for j in range(k, n):
        key = _sort_key(row[j], kind, descending)
        if key < hk[0]:  # an equal key loses: its index is larger
            hk[0] = key
            hi[0] = j
            _sift_down(hk, hi, 0, k)
    _heap_sort(hk, hi, k)


@njit(**_HELPER)
def _topk_rows(xu, kind, k, largest, values_u, indices_out, r0, r1):
    n = xu.shape[1]
    if k == 0:
        return
    use_heap = k * 16 < n
    size = k if use_heap else n
    keys = _key_empty(xu, size)
    kbuf = _key_empty(xu, size)
    idx = np.empty(size, np.int32)
    ibuf = np.empty(size, np.int32)
    hist = np.empty((keys.itemsize, 256), np.int64)
    for r in range(r0, r1):
        if use_heap:
            _topk_heap(xu[r], kind, k, largest, keys, idx)
            si = idx
        else:
            _load_keys(xu[r], kind, largest, keys, idx)
            sk, si, _ = _sort_keys(keys, idx, kbuf, ibuf, hist)
        for j in range(k):
            p = si[j]
            indices_out[r, j] = p
            values_u[r, j] = xu[r, p]


@njit(**_HELPER)
def _select(keys, idx, kth):
    """Reorder pairs so position ``kth`` holds the kth smallest (key, index) pair.

    Hoare quickselect with a median-of-three pivot; pairs are distinct (indices are), so
    every partition step makes progress. After 64 rounds (an adversarial input) the rest is
    heap sorted, which bounds the work by O(n log n).
    """
    lo = 0
    hi = keys.shape[0] - 1
    rounds = 0
    while lo < hi:
        rounds += 1
        if rounds > 64:
            _heap_sort(keys[lo:hi + 1], idx[lo:hi + 1], hi + 1 - lo)
            return
        mid = lo + (hi - lo) // 2
        # median of three by (key, index), moved to ``mid``
        if _pair_less(keys[mid], idx[mid], keys[lo], idx[lo]):
            keys[mid], keys[lo] = keys[lo], keys[mid]
            idx[mid], idx[lo] = idx[lo], idx[mid]
        if _pair_less(keys[hi], idx[hi], keys[lo], idx[lo]):
            keys[hi], keys[lo] = keys[lo], keys[hi]
            idx[hi], idx[lo] = idx[lo], idx[hi]
        if _pair_less(keys[hi], idx[hi], keys[mid], idx[mid]):
            keys[hi], keys[mid] = keys[mid], keys[hi]
            idx[hi], idx[mid] = idx[mid], idx[hi]
        pk = keys[mid]
        pi = idx[mid]
        i = lo
        j = hi
        while i <= j:
            while _pair_less(keys[i], idx[i], pk, pi):
                i += 1
            while _pair_less(pk, pi, keys[j], idx[j]):
                j -= 1
            if i <= j:
                keys[i], keys[j] = keys[j], keys[i]
                idx[i], idx[j] = idx[j], idx[i]
                i += 1
                j -= 1
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:
            return


@njit(**_HELPER)
def _kth_rows(xu, kind, k0, values_u, indices_out, op, r0, r1):
    n = xu.shape[1]
    keys = _key_empty(xu, n)
    idx = np.empty(n, np.int32)
    for r in range(r0, r1):
        row = xu[r]
        kth = k0
        if op != OP_KTH:
            first_nan = -1
            nans = 0
            for j in range(n):
                if _is_nan(row[j], kind):
                    if first_nan < 0:
                        first_nan = j
                    nans += 1
            if op == OP_MEDIAN and first_nan >= 0:
                values_u[r] = row[first_nan]
                indices_out[r] = first_nan
                continue
            if nans == n:  # nanmedian of an all-NaN row: NaN at index 0, as torch
                values_u[r] = row[0]
                indices_out[r] = 0
                continue
            kth = (n - nans - 1) // 2
        _load_keys(row, kind, False, keys, idx)
        _select(keys, idx, kth)
        p = idx[kth]
        values_u[r] = row[p]
        indices_out[r] = p


@njit(**_HELPER)
def _mode_rows(xu, kind, values_u, indices_out, r0, r1):
    n = xu.shape[1]
    keys = _key_empty(xu, n)
    kbuf = _key_empty(xu, n)
    idx = np.empty(n, np.int32)
    ibuf = np.empty(n, np.int32)
    hist = np.empty((keys.itemsize, 256), np.int64)
    for r in range(r0, r1):
        _load_keys(xu[r], kind, False, keys, idx)
        sk, si, _ = _sort_keys(keys, idx, kbuf, ibuf, hist)
        best_len = 0
        best_end = 0
        start = 0
        for j in range(1, n + 1):
            if j == n or sk[j] != sk[start]:
                if j - start > best_len:
                    best_len = j - start
                    best_end = j - 1
                start = j
        p = si[best_end]  # stable sort: the run's last element has its largest index
        values_u[r] = xu[r, p]
        indices_out[r] = p


# --------------------------------------------------------------------------------------
# entry points: njit kernels on bit views, and the Python wrappers that make the views
# --------------------------------------------------------------------------------------

#: ``op`` codes of ``kth_bits``.
OP_KTH, OP_MEDIAN, OP_NANMEDIAN = 0, 1, 2


@njit(**_NJIT)
def sort_bits(xu, kind, values_u, indices_out, descending):
    """``sort`` on bit views: ``xu`` is x viewed as unsigned ints of its itemsize (4 or 8
    bytes), ``kind`` KIND_FLOAT, KIND_SIGNED or KIND_UNSIGNED, ``values_u`` the values
    output viewed the same way."""
    _sort_rows(xu, kind, values_u, indices_out, descending, 0, xu.shape[0])


@njit(**_NJIT_PAR)
def sort_bits_par(xu, kind, values_u, indices_out, descending):
    rows = xu.shape[0]
    chunks = min(rows, _PARTS)
    for c in prange(chunks):
        _sort_rows(xu, kind, values_u, indices_out, descending, c * rows // chunks,
                   (c + 1) * rows // chunks)


@njit(**_NJIT)
def topk_bits(xu, kind, k, largest, values_u, indices_out):
    """``topk`` on bit views (see ``sort_bits``)."""
    _topk_rows(xu, kind, k, largest, values_u, indices_out, 0, xu.shape[0])


@njit(**_NJIT_PAR)
def topk_bits_par(xu, kind, k, largest, values_u, indices_out):
    rows = xu.shape[0]
    chunks = min(rows, _PARTS)
    for c in prange(chunks):
        _topk_rows(xu, kind, k, largest, values_u, indices_out, c * rows // chunks,
                   (c + 1) * rows // chunks)


@njit(**_NJIT)
def kth_bits(xu, kind, k0, values_u, indices_out, op):
    """Row statistics on bit views (see ``sort_bits``); ``values_u``, ``indices_out``:
    (rows,). ``op``: OP_KTH (the 0-based ``k0``-th smallest), OP_MEDIAN, OP_NANMEDIAN."""
    _kth_rows(xu, kind, k0, values_u, indices_out, op, 0, xu.shape[0])


@njit(**_NJIT)
def mode_bits(xu, kind, values_u, indices_out):
    """``mode`` on bit views (see ``sort_bits``)."""
    _mode_rows(xu, kind, values_u, indices_out, 0, xu.shape[0])


def _views(x, values_out):
    """(bits of x, kind, bits of the values output, temporary or None) for the kernels.

    Data narrower than 4 bytes is widened first (int8 -> int32, bool/uint8 -> uint32,
    float16 -> float32: order-preserving and exact) and its values come back through a
    4-byte temporary, so the kernels exist for two widths only: compiling them for 1- and
    2-byte data as well would double their compile time for rarely sorted dtypes.
    """
    kind = _KINDS[x.dtype.kind]
    if x.itemsize >= 4:
        return _bits(x), kind, _bits(values_out), None
    wide = (np.float32, np.int32, np.uint32)[kind]
    tmp = np.empty(values_out.shape, wide)
    return x.astype(wide).view(np.uint32), kind, tmp.view(np.uint32), tmp


def _parallel(x):
    return x.size >= PARALLEL_THRESHOLD and x.shape[0] > 1


def sort(x, values_out, indices_out, descending=False, stable=True):
    """Stable sort of each row. Writes ``values_out`` and ``indices_out``.

    ``x``: (rows, n) C-contiguous, any kernel dtype (rows shorter than 2**31). ``values_out``:
    (rows, n), x's dtype, C-contiguous, not aliasing ``x``. ``indices_out``: (rows, n) int64,
    C-contiguous (both outputs double as scratch while a row sorts). NaN is
    largest; ties keep their original order in both directions (``stable`` is accepted for
    torch's signature: the sort is always stable). Rows run in parallel above
    PARALLEL_THRESHOLD elements; one long row sorts on one thread.
    """
    xu, kind, vu, tmp = _views(x, values_out)
    (sort_bits_par if _parallel(x) else sort_bits)(xu, kind, vu, indices_out, descending)
    if tmp is not None:
        values_out[...] = tmp


def topk(x, k, largest, values_out, indices_out):
    """The k largest (or smallest) of each row, sorted best first. Writes both outputs.

    ``x``: (rows, n) C-contiguous; ``0 <= k <= n``; ``values_out``: (rows, k), x's dtype;
    ``indices_out``: (rows, k) int64. NaN counts as largest. Among equal values the lowest
    index comes first. O(n log k) with a heap when 16k < n, else a full stable sort.
    """
    xu, kind, vu, tmp = _views(x, values_out)
    (topk_bits_par if _parallel(x) else topk_bits)(xu, kind, k, largest, vu, indices_out)
    if tmp is not None:
        values_out[...] = tmp


def _kth(x, k0, values_out, indices_out, op):
    xu, kind, vu, tmp = _views(x, values_out)
    kth_bits(xu, kind, k0, vu, indices_out, op)
    if tmp is not None:
        values_out[...] = tmp


def kthvalue(x, k, values_out, indices_out):
    """k-th smallest (1-based ``k``, 1 <= k <= n) of each row. Writes both outputs.

    ``x``: (rows, n) C-contiguous, n >= 1; ``values_out``: (rows,), x's dtype;
    ``indices_out``: (rows,) int64. NaN is largest. Among equal values the index is the one
    a stable sort puts at position k-1. Expected O(n) per row; serial.
    """
    _kth(x, k - 1, values_out, indices_out, OP_KTH)


def median(x, values_out, indices_out):
    """Lower median of each row, as ``torch.median(dim=-1)``. Writes both outputs.

    Layout as ``kthvalue``. A row holding a NaN gives NaN and the index of its first NaN.
    """
    _kth(x, 0, values_out, indices_out, OP_MEDIAN)


def nanmedian(x, values_out, indices_out):
    """Lower median of the non-NaN values of each row, as ``torch.nanmedian(dim=-1)``.

    Layout as ``kthvalue``. An all-NaN row gives NaN at index 0.
    """
    _kth(x, 0, values_out, indices_out, OP_NANMEDIAN)


def mode(x, values_out, indices_out):
    """Most frequent value of each row; ties pick the smallest value, and the index is its
    last occurrence (as ``torch.mode``). Writes both outputs.

    Layout as ``kthvalue``; ``x`` without NaN (torch's own NaN result is not reproduced).
    """
    xu, kind, vu, tmp = _views(x, values_out)
    mode_bits(xu, kind, vu, indices_out)
    if tmp is not None:
        values_out[...] = tmp


# --------------------------------------------------------------------------------------
# unique, searchsorted
# --------------------------------------------------------------------------------------

@njit(**_NJIT)
def unique_sorted(sorted_vals, perm, out_vals, inverse_out, counts_out):
    """Group equal neighbours of a sorted 1-D array. Writes all three outputs; returns the
    number of groups ``u`` (the caller slices ``out_vals[:u]``, ``counts_out[:u]``).

    ``sorted_vals``: (n,) sorted (e.g. ``sort`` of the flattened input); ``perm``: (n,) int64,
    the sort's indices (``sorted_vals[i] == x[perm[i]]``); ``out_vals``: (n,), the values'
    dtype; ``inverse_out``: (n,) int64, gets for each original position its group;
    ``counts_out``: (n,) int64. Neighbours are equal when ``==`` holds, so NaNs stay
    separate, as torch. Given the unsorted input and ``perm = arange(n)`` this is
    ``unique_consecutive``.
    """
    n = sorted_vals.shape[0]
    u = 0
    for i in range(n):
        v = sorted_vals[i]
        if i == 0 or v != sorted_vals[i - 1]:
            out_vals[u] = v
            counts_out[u] = 0
            u += 1
        counts_out[u - 1] += 1
        inverse_out[perm[i]] = u - 1
    return u


@njit(**_NJIT)
def _searchsorted_rows(sorted_seq, values, right, out, t0, t1):
    n = sorted_seq.shape[1]
    m = values.shape[1]
    for t in range(t0, t1):
        r = t // m
        j = t - r * m
        v = values[r, j]
        lo = 0
        hi = n
        # torch's predicates, NaN included: left finds the first s >= v, right the first s > v
        if right:
            while lo < hi:
                mid = lo + ((hi - lo) >> 1)
                if not (sorted_seq[r, mid] > v):
                    lo = mid + 1
                else:
                    hi = mid
        else:
            while lo < hi:
                mid = lo + ((hi - lo) >> 1)
                if not (sorted_seq[r, mid] >= v):
                    lo = mid + 1
                else:
                    hi = mid
        out[r, j] = lo


@njit(**_NJIT)
def searchsorted_serial(sorted_seq, values, right, out):
    _searchsorted_rows(sorted_seq, values, right, out, 0, values.shape[0] * values.shape[1])


@njit(**_NJIT_PAR)
def searchsorted_par(sorted_seq, values, right, out):
    total = values.shape[0] * values.shape[1]
    chunk = 4096
    for c in prange((total + chunk - 1) // chunk):
        _searchsorted_rows(sorted_seq, values, right, out, c * chunk,
                           min(c * chunk + chunk, total))


def searchsorted(sorted_seq, values, right, out):
    """Insertion points of ``values`` in each row of ``sorted_seq``. Writes ``out``.

    ``sorted_seq``: (rows, n) sorted ascending along the row (a 1-D sequence is (1, n));
    ``values``: (rows, m), same dtype as ``sorted_seq`` (the caller promotes); ``out``:
    (rows, m) int64. ``right=False``: first i with ``sorted_seq[i] >= v``; True: first i with
    ``sorted_seq[i] > v``; the same binary search as torch, so NaNs give torch's answers.
    ``torch.bucketize(x, b, right)`` is ``searchsorted(b, x, right)``.
    """
    if values.size >= PARALLEL_THRESHOLD:
        searchsorted_par(sorted_seq, values, right, out)
    else:
        searchsorted_serial(sorted_seq, values, right, out)

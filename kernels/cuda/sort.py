"""CUDA sort/argsort/topk along the last axis of a C-contiguous (rows, n) device array.

``sort(x2, values_out, indices_out, descending=False)``: values_out (rows, n) of x2's dtype (must not alias x2),
indices_out (rows, n) int64. ``topk(x2, k, largest, values_out (rows, k), indices_out (rows, k))``.

Order: torch's stable order. NaN sorts as the largest value (last ascending, first descending), -0.0 == 0.0,
equal values keep their original order (ties broken by the original index, so the bitonic network, which is
not stable by itself, gives the stable result).

How: a bitonic sorting network on (value, index) pairs, padded to a power of two P >= n (padding compares after
everything). Rows with P <= ``cap`` (SORT_BLOCK: 1024 on a GPU) sort in one block's shared memory, one thread per
element, ``syncthreads`` between stages; longer rows run the same network in global memory, one launch per stage.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import cuda, from_dtype

from ._sizes import BLOCK, SORT_BLOCK, cdiv, kernel

__all__ = ["sort", "topk", "searchsorted", "select", "KTH", "MEDIAN", "NANMEDIAN", "MODE"]


def _before_fn(descending):
    def f(a, ia, b, ib, n):
        # does (a, ia) come before (b, ib)? padding (index >= n) comes last
        if ia >= n or ib >= n:
            return ia < ib
        an = a != a
        bn = b != b
        if an or bn:
            if an and bn:
                return ia < ib
            return an if descending else bn
        if a == b:
            return ia < ib
        return a > b if descending else a < b
    return cuda.jit(device=True)(f)


@lru_cache(maxsize=None)
def _shared_kernel(dtype_str, descending, cap):
    nb = from_dtype(np.dtype(dtype_str))
    i64 = from_dtype(np.dtype(np.int64))  # resolved here: a kernel body cannot call from_dtype
    before = _before_fn(descending)

    @kernel
    def k(x, vals, idx, P):
        sv = cuda.shared.array(cap, nb)
        si = cuda.shared.array(cap, i64)
        r = cuda.blockIdx.x
        t = cuda.threadIdx.x
        n = x.shape[1]
        if t < n:
            sv[t] = x[r, t]
        else:
            sv[t] = x[r, 0]
        si[t] = t
        cuda.syncthreads()
        kk = 2
        while kk <= P:
            j = kk // 2
            while j > 0:
                o = t ^ j
                if o > t:
                    up = (t & kk) == 0
                    if up == before(sv[o], si[o], sv[t], si[t], n):
                        tv = sv[t]
                        sv[t] = sv[o]
                        sv[o] = tv
                        ti = si[t]
                        si[t] = si[o]
                        si[o] = ti
                cuda.syncthreads()
                j //= 2
            kk *= 2
        if t < n:
            vals[r, t] = sv[t]
            idx[r, t] = si[t]
    return k


@kernel
def _pad_k(x, sv, si):
    i = cuda.grid(1)
    R, P = sv.shape
    if i < R * P:
        c = i % P
        r = i // P
        n = x.shape[1]
        sv[r, c] = x[r, c] if c < n else x[r, 0]
        si[r, c] = c


@lru_cache(maxsize=None)
def _stage_kernel(descending):
    before = _before_fn(descending)

    @kernel
    def k(sv, si, kk, j, n):
        i = cuda.grid(1)
        R, P = sv.shape
        if i < R * P:
            t = i % P
            r = i // P
            o = t ^ j
            if o > t:
                up = (t & kk) == 0
                if up == before(sv[r, o], si[r, o], sv[r, t], si[r, t], n):
                    tv = sv[r, t]
                    sv[r, t] = sv[r, o]
                    sv[r, o] = tv
                    ti = si[r, t]
                    si[r, t] = si[r, o]
                    si[r, o] = ti
    return k


@kernel
def _take_cols_k(sv, si, vals, idx):
    i = cuda.grid(1)
    R, K = vals.shape
    if i < R * K:
        c = i % K
        r = i // K
        vals[r, c] = sv[r, c]
        idx[r, c] = si[r, c]


def _pow2(n):
    p = 1
    while p < n:
        p *= 2
    return p


def _sorted_pairs(x2, descending, cap, block):
    """Device arrays (values (rows, P), indices (rows, P)) of the fully sorted padded rows (global network)."""
    rows, n = x2.shape
    P = _pow2(n)
    sv = cuda.device_array((rows, P), x2.dtype)
    si = cuda.device_array((rows, P), np.int64)
    g = (cdiv(rows * P, block), block)
    _pad_k[g](x2, sv, si)
    stage = _stage_kernel(bool(descending))
    kk = 2
    while kk <= P:
        j = kk // 2
        while j > 0:
            stage[g](sv, si, np.int64(kk), np.int64(j), np.int64(n))
            j //= 2
        kk *= 2
    return sv, si


def sort(x2, values_out, indices_out, descending=False, *, cap=SORT_BLOCK, block=BLOCK):
    """Stable sort of each row of x2 (rows, n) into values_out / indices_out (see the module docstring)."""
    rows, n = x2.shape
    if rows == 0 or n == 0:
        return values_out, indices_out
    P = _pow2(n)
    if P <= cap:
        _shared_kernel(np.dtype(x2.dtype).str, bool(descending), int(cap))[rows, P](x2, values_out, indices_out,
                                                                                   np.int64(P))
        return values_out, indices_out
    sv, si = _sorted_pairs(x2, descending, cap, block)
    _take_cols_k[(cdiv(rows * n, block), block)](sv, si, values_out, indices_out)
    return values_out, indices_out


def topk(x2, k, largest, values_out, indices_out, *, cap=SORT_BLOCK, block=BLOCK):
    """The k largest (or smallest) of each row, sorted, with their indices (ties: lowest index first)."""
    rows, n = x2.shape
    if rows == 0 or k == 0:
        return values_out, indices_out
    sv = cuda.device_array((rows, n), x2.dtype)
    si = cuda.device_array((rows, n), np.int64)
    sort(x2, sv, si, descending=largest, cap=cap, block=block)
    _take_cols_k[(cdiv(rows * k, block), block)](sv, si, values_out, indices_out)
    return values_out, indices_out


@kernel
def _searchsorted_k(seq, values, right, out):
    i = cuda.grid(1)
    R, M = values.shape
    if i < R * M:
        c = i % M
        r = i // M
        sr = r if seq.shape[0] > 1 else 0
        v = values[r, c]
        lo = 0
        hi = seq.shape[1]
        while lo < hi:
            mid = (lo + hi) // 2
            s = seq[sr, mid]
            # torch's predicates, NaN included (as the cpu kernel): left finds the first s >= v, right the first s > v
            go_right = (not (s > v)) if right else (not (s >= v))
            if go_right:
                lo = mid + 1
            else:
                hi = mid
        out[r, c] = lo


def searchsorted(seq2, values2, right, out2, *, block=BLOCK):
    """out2 (R, M) int64: insertion points of values2 (R, M) into the sorted rows of seq2 (R or 1, n): left (the
    first position whose element is >= the value) or right (the first whose element is > the value)."""
    if out2.size:
        _searchsorted_k[(cdiv(out2.size, block), block)](seq2, values2, bool(right), out2)
    return out2


KTH, MEDIAN, NANMEDIAN, MODE = 0, 1, 2, 3


@kernel
def _select_k(x, sv, si, op, k0, vals, idx):
    r = cuda.grid(1)
    if r < x.shape[0]:
        n = x.shape[1]
        p = k0
        if op == 3:  # mode: the longest run of equal sorted values (the first, so the smallest, on ties); its
            best_len = 0  # last element has the largest index (stable sort), as the cpu kernel returns
            best_end = 0
            start = 0
            for j in range(1, n + 1):
                if j < n:
                    a = sv[r, j]
                    b = sv[r, start]
                    if a == b or (a != a and b != b):
                        continue
                if j - start > best_len:
                    best_len = j - start
                    best_end = j - 1
                start = j
            q = si[r, best_end]
            vals[r] = x[r, q]
            idx[r] = q
            return
        if op != 0:
            first_nan = -1
            nans = 0
            for j in range(n):
                v = x[r, j]
                if v != v:
                    if first_nan < 0:
                        first_nan = j
                    nans += 1
            if op == 1 and first_nan >= 0:  # median of a row holding NaN: the first NaN
                vals[r] = x[r, first_nan]
                idx[r] = first_nan
                return
            if nans == n:  # nanmedian of an all-NaN row: NaN at index 0, as torch
                vals[r] = x[r, 0]
                idx[r] = 0
                return
            p = (n - nans - 1) // 2
        vals[r] = sv[r, p]
        idx[r] = si[r, p]


def select(x2, op, k0, values_out, indices_out, *, cap=SORT_BLOCK, block=BLOCK):
    """Per row of x2 (rows, n): the k0-th smallest (op KTH), the lower median (MEDIAN: the first NaN of a row
    holding one), the lower median of the non-NaN values (NANMEDIAN) or the most frequent value (MODE: the
    smallest on ties, at the largest index of its occurrences), with its index; the element of the stable
    sort's position, so ties resolve as the cpu kernel's (key, index) selection does."""
    rows, n = x2.shape
    if rows == 0:
        return values_out, indices_out
    sv = cuda.device_array((rows, n), x2.dtype)
    si = cuda.device_array((rows, n), np.int64)
    sort(x2, sv, si, False, cap=cap, block=block)
    _select_k[(cdiv(rows, block), block)](x2, sv, si, np.int64(op), np.int64(k0), values_out, indices_out)
    return values_out, indices_out

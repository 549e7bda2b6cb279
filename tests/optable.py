"""Helpers for table-driven tests: sample inputs per dtype, layouts and NumPy comparison."""
from __future__ import annotations

import numpy as np

import jitorch
from jitorch import _dtype as D

SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 3, 4)]
BROADCAST_PAIRS = [((3, 5), (5,)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((4, 1), ()),
                   ((2, 3, 4, 5), (3, 1, 5)), ((2, 2, 1, 2, 3), (2, 1, 2, 1))]

RTOL = {D.float16: 2e-3, D.float32: 2e-5, D.float64: 1e-11}
ATOL = {D.float16: 2e-3, D.float32: 2e-6, D.float64: 1e-12}


def random_array(rng, shape, dtype, low=-3.0, high=3.0, nonzero=False, positive=False):
    """Values suited to dtype; ``nonzero`` avoids zero divisors, ``positive`` keeps logs finite."""
    if dtype is D.bool_:
        a = np.asarray(rng.random(shape) < 0.5)
        if nonzero:
            a = np.ones(shape, bool)
        return a
    if dtype.category == 1:
        info = np.iinfo(dtype.np)
        lo, hi = max(int(low * 10), info.min), min(int(high * 10), info.max)
        if positive:
            lo = max(lo, 1)
        a = np.asarray(rng.integers(lo, hi + 1, size=shape)).astype(dtype.np)
        if nonzero:
            a[a == 0] = 1
        return a
    a = np.asarray(rng.uniform(low, high, size=shape))
    if positive:
        a = np.abs(a) + 0.1
    if nonzero:
        a[np.abs(a) < 0.1] = 0.5
    return a.astype(dtype.np)


def as_layout(arr, layout):
    """'contiguous', or 'transposed'/'strided' views holding the same values."""
    if layout == "contiguous" or arr.ndim == 0:
        return jitorch.from_numpy(np.array(arr, copy=True, order="C"))
    if layout == "transposed":
        base = np.ascontiguousarray(np.swapaxes(arr, 0, -1))
        return jitorch.from_numpy(base).transpose(0, -1)
    if layout == "strided":
        big = np.zeros(arr.shape[:-1] + (arr.shape[-1] * 2,), arr.dtype)
        big[..., ::2] = arr
        return jitorch.from_numpy(big)[..., ::2]
    raise ValueError(layout)


def assert_close(got, want, dtype, rtol=None, atol=None, what=""):
    got = got.numpy() if hasattr(got, "numpy") else np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if dtype.category < 2:
        np.testing.assert_array_equal(got, want.astype(dtype.np), err_msg=what)
        return
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol or RTOL[dtype],
                               atol=atol if atol is not None else ATOL[dtype], equal_nan=True, err_msg=what)

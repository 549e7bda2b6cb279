"""kernels/index.py against NumPy references (and torch for its reduce semantics, if installed)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitorch.kernels import index as K

DTYPES = [np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_]
SHAPES3 = [(1, 1, 1), (1, 6, 1), (3, 5, 4), (2, 4, 1), (1, 7, 9), (0, 3, 2), (2, 3, 0)]


def sample(shape, dtype, rng):
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 50, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def assert_same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ validation helpers

def test_index_bounds_and_wrap():
    idx = np.array([3, -2, 7, 0, -5], np.int64)
    assert K.index_bounds(idx) == (-5, 7)
    assert K.index_bounds(np.empty(0, np.int64)) == (0, -1)
    out = np.empty_like(idx)
    K.wrap_indices(idx, 8, out)
    assert out.tolist() == [3, 6, 7, 0, 3]
    K.wrap_indices(idx, 8, idx)  # in place
    assert idx.tolist() == [3, 6, 7, 0, 3]


# ------------------------------------------------------------------ gather / scatter

@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_every_dtype(dtype):
    rng = np.random.default_rng(0)
    src = sample((3, 5, 4), dtype, rng)
    idx = rng.integers(0, 5, (3, 7, 4))
    out = np.empty(idx.shape, dtype)
    K.gather(src, idx, out)
    assert_same(out, np.take_along_axis(src, idx, axis=1))


@pytest.mark.parametrize("shape", SHAPES3)
def test_gather_shapes_and_parallel(shape):
    rng = np.random.default_rng(1)
    outer, n, inner = shape
    src = rng.standard_normal(shape).astype(np.float32)
    m = 3 if n else 0
    idx = rng.integers(0, max(n, 1), (outer, m, inner))
    want = np.take_along_axis(src, idx, axis=1) if n else np.empty((outer, 0, inner), np.float32)
    for fn in (K.gather_serial, K.gather_par):
        out = np.empty(idx.shape, np.float32)
        fn(src, idx, out)
        assert_same(out, want)


def scatter_ref(out, idx, src, reduce=None, include_self=True):
    """Loop reference for torch.scatter_/scatter_reduce_ along axis 1."""
    out = out.copy()
    outer, m, inner = idx.shape
    hits = {}
    for a in range(outer):
        for j in range(m):
            for b in range(inner):
                hits.setdefault((a, int(idx[a, j, b]), b), []).append(src[a, j, b])
    for (a, p, b), vals in hits.items():
        if reduce is None:
            out[a, p, b] = vals[-1]
            continue
        vals = ([out[a, p, b]] if include_self else []) + vals
        if reduce == "sum":
            r = np.sum(np.array(vals, out.dtype), dtype=out.dtype)
        elif reduce == "prod":
            r = np.prod(np.array(vals, out.dtype), dtype=out.dtype)
        elif reduce == "amax":
            r = np.max(np.array(vals, out.dtype))
        elif reduce == "amin":
            r = np.min(np.array(vals, out.dtype))
        else:
            total = np.sum(np.array(vals, out.dtype), dtype=out.dtype)
            if np.issubdtype(out.dtype, np.integer):
                r = np.int64(total) // len(vals)
            else:
                r = total / out.dtype.type(len(vals))
        out[a, p, b] = r
    return out


@pytest.mark.parametrize("shape", [(2, 5, 3), (1, 4, 1), (3, 2, 6)])
def test_scatter_assign_last_wins(shape):
    rng = np.random.default_rng(2)
    out = rng.standard_normal(shape)
    idx = rng.integers(0, shape[1], (shape[0], 7, shape[2]))
    src = rng.standard_normal(idx.shape)
    want = scatter_ref(out, idx, src)
    got = out.copy()
    K.scatter(got, idx, src)
    assert_same(got, want)
    got = out.copy()
    K.scatter(got, idx, np.broadcast_to(np.float64(2.5), idx.shape))  # scalar source
    assert_same(got, scatter_ref(out, idx, np.full(idx.shape, 2.5)))


REDUCES = ["sum", "prod", "amax", "amin", "mean"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int8, np.uint8])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_duplicates(dtype, include_self):
    rng = np.random.default_rng(3)
    out = sample((2, 4, 3), dtype, rng)
    idx = rng.integers(0, 4, (2, 9, 3))  # many duplicates, some positions untouched
    src = sample((2, 9, 3), dtype, rng)
    if np.issubdtype(dtype, np.integer):
        src = (src % 5).astype(dtype)  # products stay small (int8 still wraps on sums)
    for reduce in REDUCES:
        got = out.copy()
        K.scatter_reduce(got, idx, src, reduce, include_self)
        want = scatter_ref(out, idx, src, reduce, include_self)
        if np.issubdtype(dtype, np.floating):
            np.testing.assert_allclose(got, want, rtol=1e-6)
        else:
            assert_same(got, want)


def test_scatter_reduce_nan_and_bool_and_add():
    out = np.array([[[0.0], [1.0]]])
    idx = np.array([[[0], [0], [1]]])
    src = np.array([[[np.nan], [5.0], [2.0]]])
    K.scatter_reduce(out, idx, src, "amax")
    assert np.isnan(out[0, 0, 0]) and out[0, 1, 0] == 2.0
    b = np.array([[[True], [False]]])
    K.scatter_reduce(b, np.array([[[0], [0], [1]]]), np.array([[[True], [False], [True]]]), "sum")
    assert b.ravel().tolist() == [True, True]
    c = np.zeros((1, 3, 1), np.int32)
    K.scatter_add(c, np.array([[[2], [2], [0]]]), np.ones((1, 3, 1), np.int32))
    assert c.ravel().tolist() == [1, 0, 2]


def test_scatter_reduce_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.int64):
        out = sample((3, 5, 2), dtype, rng) - (20 if dtype == np.int64 else 0)
        idx = rng.integers(0, 5, (3, 8, 2))
        src = sample((3, 8, 2), dtype, rng) - (20 if dtype == np.int64 else 0)
        for reduce in REDUCES:
            for include_self in (True, False):
                got = out.copy()
                K.scatter_reduce(got, idx, src, reduce, include_self)
                want = torch.from_numpy(out).scatter_reduce(
                    1, torch.from_numpy(idx), torch.from_numpy(src), reduce,
                    include_self=include_self).numpy()
                np.testing.assert_allclose(got, want, rtol=1e-6)


# ------------------------------------------------------------------ index_select / index_add

@pytest.mark.parametrize("shape", SHAPES3)
def test_index_select(shape):
    rng = np.random.default_rng(5)
    src = rng.standard_normal(shape)
    m = 6 if shape[1] else 0
    idx = rng.integers(0, max(shape[1], 1), m)
    want = np.take(src, idx, axis=1)
    for fn in (K.index_select_serial, K.index_select_par):
        out = np.empty((shape[0], m, shape[2]))
        fn(src, idx, out)
        assert_same(out, want)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_index_add_duplicates(dtype):
    rng = np.random.default_rng(6)
    out = sample((2, 5, 300), dtype, rng)
    idx = np.array([4, 0, 4, 4, 2], np.int64)
    src = sample((2, 5, 300), dtype, rng)
    alpha = dtype(3)
    want = out.copy()
    np.add.at(want, (slice(None), idx), alpha * src)
    for fn in (K.index_add_serial, K.index_add_par):
        got = out.copy()
        fn(got, idx, src, alpha)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5)  # fastmath may fuse (FMA)


def test_index_rows():
    rng = np.random.default_rng(7)
    table = rng.standard_normal((10, 5)).astype(np.float32)
    idx = rng.integers(0, 10, 40)
    out = np.empty((40, 5), np.float32)
    K.index_rows(table, idx, out)
    assert_same(out, table[idx])
    K.index_rows(table, np.empty(0, np.int64), np.empty((0, 5), np.float32))


# ------------------------------------------------------------------ flat gather / scatter

def test_take_and_gather_flat():
    rng = np.random.default_rng(8)
    src = rng.standard_normal(30)
    idx = rng.integers(0, 30, 50)
    for fn in (K.take, K.gather_flat_par):
        out = np.empty(50)
        fn(src, idx, out)
        assert_same(out, src[idx])
    out = np.empty(50)
    K.take(src[::-2], idx % 15, out)  # strided source
    assert_same(out, src[::-2][idx % 15])


@pytest.mark.parametrize("accumulate", [False, True])
def test_scatter_flat_duplicates(accumulate):
    dst = np.zeros(6, np.int64)
    idx = np.array([1, 3, 1, 1, 5], np.int64)
    vals = np.array([10, 20, 30, 40, 50], np.int64)
    K.scatter_flat(dst, idx, vals, accumulate)
    want = np.zeros(6, np.int64)
    if accumulate:
        np.add.at(want, idx, vals)
    else:
        want[idx] = vals  # numpy: the last duplicate wins, as here
    assert_same(dst, want)


def test_linear_offsets_match_ravel_multi_index():
    rng = np.random.default_rng(9)
    shape = (4, 5, 6)
    idx = np.stack([rng.integers(0, s, 25) for s in shape])
    strides = np.array([30, 6, 1], np.int64)
    out = np.empty(25, np.int64)
    K.linear_offsets(idx, strides, out)
    assert_same(out, np.ravel_multi_index(tuple(idx), shape).astype(np.int64))
    # index_put on a 2-D array: x[rows, cols] += v
    x = np.zeros((4, 5))
    rows = np.array([0, 3, 0]); cols = np.array([1, 4, 1])
    offs = np.empty(3, np.int64)
    K.linear_offsets(np.stack([rows, cols]), np.array([5, 1], np.int64), offs)
    K.scatter_flat(x.reshape(-1), offs, np.ones(3), True)
    assert x[0, 1] == 2 and x[3, 4] == 1 and x.sum() == 3


# ------------------------------------------------------------------ masks and nonzero

@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40), st.integers(0, 2**32 - 1))
def test_masked_ops(n, seed):
    rng = np.random.default_rng(seed)
    src = rng.standard_normal(n).astype(np.float32)
    mask = rng.random(n) < 0.4
    count = K.count_true(mask)
    assert count == mask.sum()
    out = np.empty(count, np.float32)
    K.masked_select(src, mask, out)
    assert_same(out, src[mask])
    dst = np.zeros(n, np.float32)
    source = np.arange(count + 2, dtype=np.float32)
    K.masked_scatter(dst, mask, source)
    want = np.zeros(n, np.float32)
    want[mask] = source[:count]
    assert_same(dst, want)
    K.masked_fill(dst, mask, -1.5)
    want[mask] = -1.5
    assert_same(dst, want)


def test_masked_fill_int():
    dst = np.arange(100, dtype=np.int16)
    mask = dst % 3 == 0
    K.masked_fill(dst, mask, 7)
    want = np.arange(100, dtype=np.int16)
    want[mask] = 7
    assert_same(dst, want)


@pytest.mark.parametrize("shape", [(), (0,), (5,), (3, 4), (2, 3, 4), (1, 1, 1, 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.bool_])
def test_nonzero(shape, dtype):
    rng = np.random.default_rng(10)
    x = (rng.random(shape) < 0.5).astype(dtype) * (3 if dtype != np.bool_ else 1)
    x = np.asarray(x, dtype)
    flat = np.ascontiguousarray(x).reshape(-1)
    count = K.count_nonzero(flat)
    out = np.empty((count, len(shape)), np.int64)
    K.nonzero_coords(flat, np.array(shape, np.int64), out)
    want = np.argwhere(x)
    assert_same(out, want.astype(np.int64).reshape(count, len(shape)))


def test_nonzero_counts_nan():
    x = np.array([0.0, np.nan, -0.0, 2.0])
    assert K.count_nonzero(x) == 2
    out = np.empty((2, 1), np.int64)
    K.nonzero_coords(x, np.array([4], np.int64), out)
    assert out.ravel().tolist() == [1, 3]


# ------------------------------------------------------------------ counting

def test_bincount_and_one_hot():
    rng = np.random.default_rng(11)
    x = rng.integers(0, 7, 50)
    out = np.zeros(9, np.int64)
    K.bincount(x, out)
    assert_same(out, np.bincount(x, minlength=9))
    w = rng.standard_normal(50)
    outw = np.zeros(7)
    K.bincount_weighted(x, w, outw)
    np.testing.assert_allclose(outw, np.bincount(x, w, minlength=7))
    oh = np.full((50, 8), 9, np.int64)
    K.one_hot(x, oh)
    assert_same(oh, np.eye(8, dtype=np.int64)[x])

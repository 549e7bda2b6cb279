"""kernels/sort.py against NumPy references; torch's exact NaN/tie conventions are checked
against torch itself when it is installed."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jitorch.kernels import sort as K

DTYPES = [np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_]
# row lengths that reach both algorithms: insertion (<= 32) and radix
LENGTHS = [0, 1, 2, 7, 32, 33, 100, 127, 300, 2100]


def sample(shape, dtype, rng, few_values=False):
    """Random rows; ``few_values`` makes many ties. Floats get NaN, -0.0 and inf."""
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if few_values:
            lo, hi = max(info.min, -3), min(info.max, 3)
            return rng.integers(lo, hi, shape, endpoint=True).astype(dtype)
        return rng.integers(info.min, info.max, shape, endpoint=True, dtype=dtype)
    if few_values:
        x = rng.integers(-3, 4, shape).astype(dtype)
        x[x == 3] = np.nan
        x[x == 2] = -0.0
        x[x == -3] = -np.inf
        return x
    return rng.standard_normal(shape).astype(dtype)


def sort_key(x):
    """Keys for np.lexsort/argsort giving torch's order: NaN largest, -0.0 == 0.0."""
    if x.dtype.kind == "f":
        return np.where(np.isnan(x), np.inf, x + 0.0), np.isnan(x)
    return x, np.zeros(x.shape, bool)


def ref_sort(x, descending):
    """Stable reference per row (ties keep index order in both directions)."""
    rows, n = x.shape
    idx = np.empty((rows, n), np.int64)
    for r in range(rows):
        val, nan = sort_key(x[r])
        if descending:
            # stable descending: sort by (-value, index); NaN first
            order = np.lexsort((np.arange(n), -val.astype(np.float64) if x.dtype.kind != "b"
                                else ~val, ~nan))
        else:
            order = np.lexsort((np.arange(n), val, nan))
        idx[r] = order
    return np.take_along_axis(x, idx, axis=1), idx


def run_sort(x, descending, parallel=False):
    v = np.empty_like(x)
    i = np.empty(x.shape, np.int64)
    if parallel:
        K.sort_bits_par(K._bits(x), K.KIND_FLOAT, K._bits(v), i, descending)
    else:
        K.sort(x, v, i, descending)
    return v, i


def assert_same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ sort

@pytest.mark.parametrize("dtype", DTYPES)
def test_sort_every_dtype_and_length(dtype):
    rng = np.random.default_rng(0)
    for n in LENGTHS:
        for few in (False, True):
            x = sample((3, n), dtype, rng, few)
            for descending in (False, True):
                v, i = run_sort(x, descending)
                wv, wi = ref_sort(x, descending)
                assert_same(i, wi)
                assert_same(v, wv)


def test_sort_int64_extremes_and_signed_zero():
    x = np.array([[0, -1, np.iinfo(np.int64).max, np.iinfo(np.int64).min, 1, -1]], np.int64)
    v, i = run_sort(x, False)
    assert v.tolist() == [sorted(x[0].tolist())]
    assert i[0, :3].tolist() == [3, 1, 5]  # -1 at 1 before -1 at 5
    z = np.array([[0.0, -0.0, 0.0, -0.0]], np.float32)
    _, i = run_sort(z, False)
    assert i.tolist() == [[0, 1, 2, 3]]  # equal, so stable
    _, i = run_sort(z, True)
    assert i.tolist() == [[0, 1, 2, 3]]


def test_sort_nan_placement():
    x = np.array([[np.nan, 1.0, -np.nan, -np.inf, np.inf, 0.0]])
    v, i = run_sort(x, False)
    assert i.tolist() == [[3, 5, 1, 4, 0, 2]]
    v, i = run_sort(x, True)
    assert i.tolist() == [[0, 2, 4, 1, 5, 3]]


def test_sort_parallel_rows():
    rng = np.random.default_rng(1)
    x = sample((70, 300), np.float32, rng, few_values=True)
    for descending in (False, True):
        v, i = run_sort(x, descending, parallel=True)
        wv, wi = ref_sort(x, descending)
        assert_same(i, wi)
        assert_same(v, wv)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(0, 200)),
                  elements=st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, np.nan, np.inf, -np.inf])),
       st.booleans())
def test_sort_hypothesis_ties(x, descending):
    v, i = run_sort(x, descending)
    wv, wi = ref_sort(x, descending)
    assert_same(i, wi)
    np.testing.assert_array_equal(v, wv)


def test_sort_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    for dtype in (np.float32, np.int32, np.bool_):
        x = sample((4, 500), dtype, rng, few_values=True)
        for descending in (False, True):
            v, i = run_sort(x, descending)
            tv, ti = torch.sort(torch.from_numpy(x), dim=-1, descending=descending, stable=True)
            assert_same(i, ti.numpy())
            assert_same(v, tv.numpy())


# ------------------------------------------------------------------ topk

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint8])
def test_topk_heap_and_sort_paths(dtype):
    rng = np.random.default_rng(3)
    for n, ks in [(1, [0, 1]), (10, [0, 1, 3, 10]), (500, [1, 5, 31, 32, 400, 500])]:
        for few in (False, True):
            x = sample((3, n), dtype, rng, few)
            for largest in (True, False):
                _, order = ref_sort(x, descending=largest)  # ties: lowest index first
                for k in ks:
                    v = np.empty((3, k), dtype)
                    i = np.empty((3, k), np.int64)
                    K.topk(x, k, largest, v, i)
                    assert_same(i, order[:, :k])
                    assert_same(v, np.take_along_axis(x, order[:, :k], axis=1))


def test_topk_nan_is_largest_and_parallel():
    x = np.array([[1.0, np.nan, 3.0, np.nan, 2.0] + [0.0] * 100], np.float32)
    v = np.empty((1, 3), np.float32)
    i = np.empty((1, 3), np.int64)
    K.topk(x, 3, True, v, i)
    assert i.tolist() == [[1, 3, 2]]
    K.topk(x, 3, False, v, i)
    assert i.tolist() == [[5, 6, 7]]
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 200)).astype(np.float32)
    v = np.empty((40, 4), np.float32)
    i = np.empty((40, 4), np.int64)
    K.topk_bits_par(K._bits(x), K.KIND_FLOAT, 4, True, K._bits(v), i)
    assert_same(i, np.argsort(-x, axis=1, kind="stable")[:, :4])


# ------------------------------------------------------------------ kthvalue / median

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int8])
def test_kthvalue_matches_stable_sort(dtype):
    rng = np.random.default_rng(5)
    for n in (1, 2, 9, 64, 1000):
        for few in (False, True):
            x = sample((4, n), dtype, rng, few)
            sv, si = ref_sort(x, False)
            for k in sorted({1, 2, (n + 1) // 2, n}):
                if k > n:
                    continue
                v = np.empty(4, dtype)
                i = np.empty(4, np.int64)
                K.kthvalue(x, k, v, i)
                assert_same(i, si[:, k - 1])
                assert_same(v, sv[:, k - 1])


def test_kthvalue_adversarial_falls_back():
    # organ-pipe and sorted inputs with many ties must still be exact
    n = 5001
    base = np.concatenate([np.arange(n // 2), np.arange(n - n // 2)[::-1]]).astype(np.float64)
    x = np.stack([base, np.sort(base), np.zeros(n), np.arange(n)[::-1].astype(np.float64)])
    sv, si = ref_sort(x, False)
    for k in (1, 17, n // 2, n):
        v = np.empty(4)
        i = np.empty(4, np.int64)
        K.kthvalue(x, k, v, i)
        assert_same(i, si[:, k - 1])
    x = np.random.default_rng(6).standard_normal((20, 300)).astype(np.float32)
    v = np.empty(20, np.float32)
    i = np.empty(20, np.int64)
    K.kthvalue(x, 8, v, i)
    assert_same(v, np.sort(x, axis=1)[:, 7])


def test_median_and_nanmedian():
    x = np.array([[3.0, 1.0, np.nan, 2.0, np.nan],
                  [4.0, 1.0, 3.0, 2.0, 0.5],
                  [np.nan, np.nan, np.nan, np.nan, np.nan],
                  [2.0, 1.0, 2.0, 2.0, 1.0]])
    v = np.empty(4)
    i = np.empty(4, np.int64)
    K.median(x, v, i)
    assert np.isnan(v[0]) and i[0] == 2  # first NaN
    assert v[1] == 2.0 and i[1] == 3
    assert np.isnan(v[2]) and i[2] == 0
    assert v[3] == 2.0 and x[3, i[3]] == 2.0
    K.nanmedian(x, v, i)
    assert v[0] == 2.0 and i[0] == 3  # lower median of [3, 1, 2]
    assert v[1] == 2.0
    assert np.isnan(v[2]) and i[2] == 0
    even = np.array([[4, 1, 3, 2]], np.int64)
    vi = np.empty(1, np.int64)
    K.median(even, vi, i[:1])
    assert vi[0] == 2 and i[0] == 3  # lower median


def test_median_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = sample((6, 41), np.float32, rng, few_values=True)
    x[0] = rng.standard_normal(41)
    v = np.empty(6, np.float32)
    i = np.empty(6, np.int64)
    K.median(x, v, i)
    tv, ti = torch.median(torch.from_numpy(x), dim=1)
    np.testing.assert_array_equal(v, tv.numpy())
    nan_rows = np.isnan(x).any(axis=1)
    assert_same(i[nan_rows], ti.numpy()[nan_rows])
    assert (x[np.arange(6), i] == v)[~nan_rows].all()
    K.nanmedian(x, v, i)
    np.testing.assert_array_equal(v, torch.nanmedian(torch.from_numpy(x), dim=1).values.numpy())


def test_mode():
    x = np.array([[3, 1, 2, 1, 2, 3, 0], [5, 5, 5, 5, 5, 5, 5], [9, 8, 7, 6, 5, 4, 3]], np.int64)
    v = np.empty(3, np.int64)
    i = np.empty(3, np.int64)
    K.mode(x, v, i)
    assert v.tolist() == [1, 5, 3]  # ties: smallest value
    assert i.tolist() == [3, 6, 6]  # its last occurrence


# ------------------------------------------------------------------ unique, searchsorted

@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.bool_])
def test_unique_sorted(dtype):
    rng = np.random.default_rng(8)
    x = sample((1, 60), dtype, rng, few_values=True)
    v, perm = run_sort(x, False)
    n = x.shape[1]
    vals = np.empty(n, dtype)
    inverse = np.empty(n, np.int64)
    counts = np.empty(n, np.int64)
    u = K.unique_sorted(v[0], perm[0], vals, inverse, counts)
    if dtype == np.float64:
        # NaNs stay separate (as torch); compare the rest with numpy
        finite = ~np.isnan(x[0])
        wv, winv, wc = np.unique(x[0][finite], return_inverse=True, return_counts=True)
        k = len(wv)
        assert u == k + (~finite).sum()
        assert_same(vals[:k], wv)
        assert_same(counts[:k], wc.astype(np.int64))
        assert_same(inverse[finite], winv.astype(np.int64))
        assert np.isnan(vals[k:u]).all() and (counts[k:u] == 1).all()
    else:
        wv, winv, wc = np.unique(x[0], return_inverse=True, return_counts=True)
        assert u == len(wv)
        assert_same(vals[:u], wv)
        assert_same(inverse, winv.astype(np.int64))
        assert_same(counts[:u], wc.astype(np.int64))
        assert_same(vals[:u][inverse], x[0])


def test_unique_consecutive_with_identity_perm():
    x = np.array([1, 1, 2, 2, 1], np.int64)
    vals = np.empty(5, np.int64)
    inverse = np.empty(5, np.int64)
    counts = np.empty(5, np.int64)
    u = K.unique_sorted(x, np.arange(5), vals, inverse, counts)
    assert (u, vals[:u].tolist(), inverse.tolist(), counts[:u].tolist()) == \
        (3, [1, 2, 1], [0, 0, 1, 1, 2], [2, 2, 1])
    assert K.unique_sorted(x[:0], np.arange(0), vals, inverse, counts) == 0


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted(right):
    rng = np.random.default_rng(9)
    seq = np.sort(rng.integers(0, 20, (3, 30)).astype(np.float64), axis=1)
    vals = rng.integers(-2, 23, (3, 50)).astype(np.float64)
    side = "right" if right else "left"
    want = np.stack([np.searchsorted(seq[r], vals[r], side) for r in range(3)]).astype(np.int64)
    for fn in (K.searchsorted, K.searchsorted_par):
        out = np.empty((3, 50), np.int64)
        fn(seq, vals, right, out)
        assert_same(out, want)
    out = np.empty((1, 2), np.int64)
    K.searchsorted(np.empty((1, 0)), np.array([[1.0, 2.0]]), right, out)
    assert out.tolist() == [[0, 0]]


def test_searchsorted_nan_matches_torch():
    seq = np.array([[1.0, 2.0, np.nan]])
    vals = np.array([[np.nan, 3.0, 2.0]])
    out = np.empty((1, 3), np.int64)
    K.searchsorted(seq, vals, False, out)
    assert out.tolist() == [[3, 3, 1]]  # torch.searchsorted gives the same
    K.searchsorted(seq, vals, True, out)
    assert out.tolist() == [[3, 3, 3]]

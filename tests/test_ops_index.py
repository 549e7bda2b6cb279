"""Indexing, sorting and data-movement ops against NumPy, and their errors (every bad index must
raise before a kernel runs: numba does not check bounds)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jitorch
from jitorch import _dtype as D

from .optable import as_layout, random_array

DTYPES = [D.float32, D.float64, D.int64, D.int32, D.uint8, D.bool_, D.float16]


def J(a):
    return jitorch.from_numpy(np.array(a, copy=True))


# ---------------------------------------------------------------- getitem / setitem

INDEXES = [
    (0,), (-1,), (slice(1, None),), (slice(None, None, 2),), (Ellipsis, 1), (None, 0), (1, None, slice(None, 2)),
    ([0, 2],), ([[0, 1], [2, 0]],), (slice(None), [1, 0, 1]), ([0, 2], slice(None), [1, 3]), (0, slice(None), [1, 2]),
    (slice(None), [0, 1], None, [1, 2]), ([0, -1], [1, 2], [3, 4]), (Ellipsis, [0, 0]), (np.array([True, False, True]),),
    (slice(1, None), np.array([True, False, True, False])), ("mask3",), (1, "mask2"), (np.int64(1), [0, 2]),
]


def _resolve(index, a):
    out = []
    for i in index:
        if isinstance(i, str) and i == "mask3":
            out.append(a > a.mean())
        elif isinstance(i, str) and i == "mask2":
            out.append(a[1] > a[1].mean())
        else:
            out.append(i)
    return tuple(out)


def _torch_view(a, index):
    """torch applies integer indices as basic selects before advanced indexing (NumPy treats
    them as advanced when arrays are present): emulate that with NumPy views."""
    has_adv = any(isinstance(i, (list, np.ndarray)) for i in index)
    if not has_adv:
        return a, index
    rest, dim = [], 0
    index = list(index)
    ell = [k for k, i in enumerate(index) if i is Ellipsis]
    if ell:
        k = ell[0]
        used = sum(1 for i in index if i is not None and i is not Ellipsis)
        index[k:k + 1] = [slice(None)] * (a.ndim - used)
    for i in index:
        if isinstance(i, (int, np.integer)):
            a = a[(slice(None),) * dim + (int(i),)]
        else:
            rest.append(i)
            dim += 0 if i is None else (np.ndim(i) if isinstance(i, np.ndarray) and i.dtype == bool else 1)
    return a, tuple(rest)


def torch_get(a, index):
    v, rest = _torch_view(a, index)
    return v[rest]


def torch_set(a, index, vals):
    v, rest = _torch_view(a, index)
    v[rest] = vals


def _to_jit(index):
    return tuple(jitorch.from_numpy(np.array(i)) if isinstance(i, np.ndarray) else i for i in index)


@pytest.mark.parametrize("index", INDEXES, ids=[repr(i)[:40] for i in INDEXES])
@pytest.mark.parametrize("dtype", [D.float32, D.int64, D.float16, D.bool_])
def test_getitem_setitem_match_numpy(index, dtype):
    rng = np.random.default_rng(0)
    a = random_array(rng, (3, 4, 5), dtype)
    idx = _resolve(index, a)
    for layout in ("contiguous", "transposed"):
        x = as_layout(a, layout)
        got = x[_to_jit(idx)]
        np.testing.assert_array_equal(got.numpy(), torch_get(a, idx), err_msg=f"getitem {index} {layout}")
        want = a.copy()
        vals = random_array(rng, torch_get(want, idx).shape, dtype)
        torch_set(want, idx, vals)
        y = x.clone() if layout == "contiguous" else as_layout(a, layout)
        y[_to_jit(idx)] = jitorch.from_numpy(np.array(vals, copy=True))
        np.testing.assert_array_equal(y.numpy(), want, err_msg=f"setitem {index} {layout}")
        # scalar values broadcast
        want2 = a.copy()
        torch_set(want2, idx, 1)
        z = x.clone()
        z[_to_jit(idx)] = 1
        np.testing.assert_array_equal(z.numpy(), want2, err_msg=f"setitem scalar {index}")


def test_setitem_writes_through_views_and_bumps_version():
    x = jitorch.zeros(4, 4)
    v0 = x._version
    view = x[1:3]
    view[:, [0, 3]] = 5.0
    assert x[1, 0].item() == 5.0 and x[2, 3].item() == 5.0 and x[0, 0].item() == 0.0
    assert x._version > v0


@pytest.mark.parametrize("bad", [(3,), (-4,), (0, 5), ([0, 3],), ([-4],), (slice(None), [5])])
def test_index_out_of_range_raises_indexerror(bad):
    x = jitorch.zeros(3, 5)
    with pytest.raises(IndexError):
        x[bad]
    with pytest.raises(IndexError):
        x[bad] = 1.0


def test_index_errors():
    x = jitorch.zeros(3, 5)
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(IndexError):
        x[jitorch.tensor([0.5])]
    with pytest.raises(IndexError, match="mask"):
        x[jitorch.tensor([True, False])]
    with pytest.raises(IndexError):
        x["a"]


# ---------------------------------------------------------------- along-dim ops

@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_scatter_index_select_index_add(dtype):
    rng = np.random.default_rng(1)
    a = random_array(rng, (4, 5, 3), dtype)
    x = J(a)
    for dim in (0, 1, 2, -1):
        n = a.shape[dim]
        idx = rng.integers(-n, n, size=(3, 4, 2) if dim % 3 != 0 else (2, 4, 2))
        # gather: index may be smaller than the input in other dims
        ishape = list(a.shape)
        ishape[dim] = 6
        ishape = [min(s, 3) if k != dim % 3 else s for k, s in enumerate(ishape)]
        gi = rng.integers(0, n, size=ishape)
        ref = np.take_along_axis(a[tuple(slice(0, s) if k != dim % 3 else slice(None) for k, s in enumerate(ishape))],
                                 gi, dim)
        np.testing.assert_array_equal(jitorch.gather(x, dim, J(gi)).numpy(), ref)
        # index_select with negative indices
        sel = rng.integers(-n, n, size=7)
        np.testing.assert_array_equal(jitorch.index_select(x, dim, J(sel)).numpy(), np.take(a, sel % n, axis=dim))
        # index_add: duplicates accumulate
        src = random_array(rng, tuple(7 if k == dim % 3 else s for k, s in enumerate(a.shape)), dtype)
        want = a.copy()
        key = [slice(None)] * 3
        key[dim % 3] = sel % n
        if dtype is D.bool_:
            continue
        np.add.at(want, tuple(key), src)
        got = jitorch.index_add(x, dim, J(sel), J(src))
        np.testing.assert_allclose(got.numpy().astype(np.float64), want.astype(np.float64), rtol=1e-3, atol=5e-3)
        _ = idx


@pytest.mark.parametrize("reduce", [None, "add", "multiply"])
@pytest.mark.parametrize("dtype", [D.float32, D.float64, D.int64])
def test_scatter_against_loop_reference(reduce, dtype):
    rng = np.random.default_rng(2)
    a = random_array(rng, (5, 4), dtype)
    idx = rng.integers(0, 5, size=(3, 4))
    src = random_array(rng, (3, 4), dtype)
    want = jitorch.ops.registry.get("scatter").reference(a, idx, src, 0, reduce)
    got = jitorch.scatter(J(a), 0, J(idx), J(src), reduce=reduce) if reduce else jitorch.scatter(J(a), 0, J(idx), J(src))
    if reduce is None:
        # duplicates: torch leaves the winner unspecified; check the positions without duplicates
        for j in range(4):
            col = idx[:, j]
            for r in set(col.tolist()):
                if list(col).count(r) == 1:
                    assert got[r, j].item() == want[r, j]
    else:
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)
    got2 = jitorch.scatter_add(J(a), 0, J(idx), J(src))
    want2 = a.copy()
    np.add.at(want2, (idx, np.broadcast_to(np.arange(4), idx.shape)), src)
    np.testing.assert_allclose(got2.numpy(), want2, rtol=1e-5)


def test_scatter_reduce_and_value_forms():
    x = jitorch.zeros(2, 4)
    idx = jitorch.tensor([[0, 1, 0, 1], [1, 1, 0, 0]])
    src = jitorch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    r = jitorch.scatter_reduce(x, 0, idx, src, "amax", include_self=False)
    assert r.tolist() == [[1.0, 0.0, 7.0, 8.0], [5.0, 6.0, 0.0, 4.0]]  # values checked against torch 2.13
    m = jitorch.scatter_reduce(x, 0, idx, src, "mean", include_self=False)
    assert m.tolist() == [[1.0, 0.0, 5.0, 8.0], [5.0, 4.0, 0.0, 4.0]]
    v = jitorch.zeros(3).scatter(0, jitorch.tensor([0, 2]), value=7.0)
    assert v.tolist() == [7.0, 0.0, 7.0]


def test_take_masked_nonzero():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 6)).astype(np.float32)
    x = J(a)
    flat = rng.integers(-24, 24, size=(2, 3))
    np.testing.assert_array_equal(jitorch.take(x, J(flat)).numpy(), a.reshape(-1)[flat % 24])
    mask = a > 0
    np.testing.assert_array_equal(x.masked_select(J(mask)).numpy(), a[mask])
    np.testing.assert_array_equal(x.masked_select(J(mask[0])).numpy(), np.broadcast_to(a, a.shape)[np.broadcast_to(mask[0], a.shape)])
    np.testing.assert_array_equal(x.masked_fill(J(mask), -1.0).numpy(), np.where(mask, -1.0, a))
    src = np.arange(24, dtype=np.float32)
    want = a.copy()
    want[mask] = src[: mask.sum()]
    np.testing.assert_array_equal(x.masked_scatter(J(mask), J(src)).numpy(), want)
    np.testing.assert_array_equal(jitorch.nonzero(J(mask)).numpy(), np.argwhere(mask))
    for t, r in zip(jitorch.nonzero(J(mask), as_tuple=True), np.nonzero(mask)):
        np.testing.assert_array_equal(t.numpy(), r)
    np.testing.assert_array_equal(jitorch.where(J(mask))[1].numpy(), np.nonzero(mask)[1])


# ---------------------------------------------------------------- sorting

@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=10)
@given(data=st.data())
def test_sort_topk_match_numpy(dtype, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    shape = data.draw(st.sampled_from([(1,), (9,), (3, 7), (2, 3, 40)]))
    a = random_array(rng, shape, dtype, low=-0.5, high=0.5)  # many ties
    if dtype.is_floating_point and a.size > 3:
        a.reshape(-1)[[0, 2]] = np.nan
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    desc = data.draw(st.booleans())
    x = J(a)
    v, i = jitorch.sort(x, dim, descending=desc)
    key = a.astype(np.float64) if dtype is not D.bool_ else a.astype(np.int64)
    key = np.where(np.isnan(key), np.inf, key)
    ref_i = np.argsort(-key if desc else key, axis=dim, kind="stable")
    if desc:  # stable descending: equal keys keep their order
        ref_i = np.argsort(-key, axis=dim, kind="stable")
    np.testing.assert_array_equal(i.numpy(), ref_i)
    np.testing.assert_array_equal(v.numpy(), np.take_along_axis(a, ref_i, dim))
    n = a.shape[dim]
    k = data.draw(st.integers(0, n))
    tv, ti = jitorch.topk(x, k, dim, largest=not desc)
    np.testing.assert_array_equal(tv.numpy(), np.take(np.take_along_axis(a, np.argsort(-key if not desc else key, axis=dim,
                                                                                        kind="stable"), dim),
                                                      np.arange(k), axis=dim))
    assert ti.shape == tv.shape


def test_median_kthvalue_mode_unique_searchsorted():
    a = np.array([[3.0, 1.0, 2.0, 5.0], [4.0, 4.0, 1.0, 0.0]], np.float32)
    x = J(a)
    m = jitorch.median(x, 1)
    assert m.values.tolist() == [2.0, 1.0]
    assert a[np.arange(2), m.indices.numpy()].tolist() == [2.0, 1.0]
    assert jitorch.median(x).item() == 2.0
    k = jitorch.kthvalue(x, 3, 1)
    assert k.values.tolist() == [3.0, 4.0]
    assert jitorch.mode(J(np.array([1, 2, 2, 3, 3]))).values.item() == 2
    u, inv, cnt = jitorch.unique(J(np.array([3, 1, 3, 2, 1, 3])), return_inverse=True, return_counts=True)
    ru, rinv, rcnt = np.unique(np.array([3, 1, 3, 2, 1, 3]), return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(u.numpy(), ru)
    np.testing.assert_array_equal(inv.numpy(), rinv)
    np.testing.assert_array_equal(cnt.numpy(), rcnt)
    seq = np.array([1.0, 2.0, 2.0, 5.0])
    vals = np.array([0.0, 2.0, 3.0, 9.0])
    for right in (False, True):
        np.testing.assert_array_equal(jitorch.searchsorted(J(seq), J(vals), right=right).numpy(),
                                      np.searchsorted(seq, vals, side="right" if right else "left"))


# ---------------------------------------------------------------- data movement

@pytest.mark.parametrize("dtype", DTYPES)
def test_flip_roll_repeat_tril(dtype):
    rng = np.random.default_rng(5)
    a = random_array(rng, (3, 4, 5), dtype)
    x = as_layout(a, "transposed")
    np.testing.assert_array_equal(jitorch.flip(x, (0, 2)).numpy(), np.flip(a, (0, 2)))
    np.testing.assert_array_equal(jitorch.roll(x, (1, -2), (0, 2)).numpy(), np.roll(a, (1, -2), (0, 2)))
    np.testing.assert_array_equal(jitorch.roll(x, 7).numpy(), np.roll(a, 7))
    np.testing.assert_array_equal(x.repeat(2, 1, 3, 1).numpy(), np.tile(a, (2, 1, 3, 1)))
    np.testing.assert_array_equal(jitorch.tile(x, (2,)).numpy(), np.tile(a, (2,)))
    reps = np.array([1, 0, 3])
    np.testing.assert_array_equal(jitorch.repeat_interleave(x, J(reps), 0).numpy(), np.repeat(a, reps, 0))
    np.testing.assert_array_equal(jitorch.repeat_interleave(x, 2, 1).numpy(), np.repeat(a, 2, 1))
    for d in (-1, 0, 2):
        np.testing.assert_array_equal(jitorch.tril(x, d).numpy(), np.tril(a, d))
        np.testing.assert_array_equal(jitorch.triu(x, d).numpy(), np.triu(a, d))


def test_movement_errors():
    with pytest.raises(RuntimeError):
        jitorch.tril(jitorch.ones(3))
    with pytest.raises(RuntimeError, match="negative"):
        jitorch.repeat_interleave(jitorch.ones(2), jitorch.tensor([1, -1]))
    with pytest.raises(RuntimeError):
        jitorch.roll(jitorch.ones(2, 2), (1, 1), (0,))
    with pytest.raises(RuntimeError, match="out of range"):
        jitorch.topk(jitorch.ones(3), 4)
    with pytest.raises(IndexError):
        jitorch.gather(jitorch.ones(2, 2), 1, jitorch.tensor([[0, 2], [0, 0]]))
    with pytest.raises(IndexError):
        jitorch.index_select(jitorch.ones(2, 2), 0, jitorch.tensor([2]))
    with pytest.raises(IndexError):
        jitorch.zeros(3).index_add(0, jitorch.tensor([3]), jitorch.ones(1))
    with pytest.raises(IndexError):
        jitorch.zeros(3).scatter(0, jitorch.tensor([-4]), jitorch.ones(1))
    with pytest.raises(IndexError):
        jitorch.take(jitorch.ones(2, 2), jitorch.tensor([4]))
    with pytest.raises(IndexError):
        jitorch.gather(jitorch.ones(2, 2), 0, jitorch.tensor([[0.0, 1.0]]))

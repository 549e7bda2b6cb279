"""jitorch.utils.data in one process: datasets, random_split, samplers, collation, the DataLoader's
options and errors (worker processes: tests/test_data_workers.py)."""
from __future__ import annotations

import collections
import math

import numpy as np
import pytest

import jitorch
from jitorch.utils.data import (BatchSampler, ChainDataset, ConcatDataset, DataLoader, Dataset, IterableDataset,
                                RandomSampler, SequentialSampler, StackDataset, Subset, SubsetRandomSampler,
                                TensorDataset, WeightedRandomSampler, default_collate, default_convert,
                                get_worker_info, random_split)

try:
    import torch
    import torch.utils.data as tud
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch (optional reference) is not installed")


def _rng(seed=0):
    return np.random.default_rng(seed)


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i * i

    def __len__(self):
        return self.n


class Count(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


# ================================================================ datasets
def test_tensor_dataset():
    x = jitorch.arange(12.0).reshape(6, 2)
    y = jitorch.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    a, b = ds[4]
    assert a.tolist() == [8.0, 9.0] and b.item() == 4
    with pytest.raises(AssertionError, match="Size mismatch"):
        TensorDataset(x, jitorch.arange(5))


def test_concat_subset_stack_chain():
    a, b = Squares(3), Squares(4)
    c = a + b
    assert isinstance(c, ConcatDataset) and len(c) == 7 and c.cumulative_sizes == [3, 7]
    assert [c[i] for i in range(7)] == [0, 1, 4, 0, 1, 4, 9]
    assert c[-1] == 9 and c[-7] == 0
    with pytest.raises(ValueError):
        c[-8]
    with pytest.raises(IndexError):
        c[7]
    with pytest.raises(AssertionError, match="IterableDataset"):
        ConcatDataset([a, Count(2)])
    s = Subset(b, [3, 1])
    assert len(s) == 2 and [s[0], s[1]] == [9, 1] and s.__getitems__([1, 0]) == [1, 9]
    st = StackDataset(a, Squares(3))
    assert st[2] == (4, 4) and len(st) == 3
    assert StackDataset(x=a, y=a)[1] == {"x": 1, "y": 1}
    with pytest.raises(ValueError, match="Size mismatch"):
        StackDataset(a, b)
    ch = Count(2) + Count(3)
    assert isinstance(ch, ChainDataset) and list(ch) == [0, 1, 0, 1, 2] and len(ch) == 5


@pytest.mark.parametrize("n,lengths,expect", [(10, [3, 7], [3, 7]), (10, [0.33, 0.33, 0.34], [4, 3, 3]),
                                              (11, [0.5, 0.25, 0.25], [6, 3, 2]), (5, [1.0], [5])])
def test_random_split_lengths(n, lengths, expect):
    parts = random_split(Squares(n), lengths, generator=_rng(1))
    assert [len(p) for p in parts] == expect
    idx = sorted(i for p in parts for i in p.indices)
    assert idx == list(range(n))  # disjoint and covering


@needs_torch
@pytest.mark.parametrize("n,lengths", [(10, [0.33, 0.33, 0.34]), (11, [0.5, 0.25, 0.25]), (7, [0.1, 0.9]),
                                       (100, [0.7, 0.2, 0.1])])
def test_random_split_lengths_match_torch(n, lengths):
    ours = [len(p) for p in random_split(Squares(n), lengths, generator=_rng())]
    theirs = [len(p) for p in tud.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))]
    assert ours == theirs


def test_random_split_reproducible_and_errors():
    a = [p.indices for p in random_split(Squares(20), [5, 15], generator=_rng(7))]
    b = [p.indices for p in random_split(Squares(20), [5, 15], generator=_rng(7))]
    assert a == b
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(Squares(10), [3, 3])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(Squares(2), [0.9, 0.1])


# ================================================================ samplers
def test_sequential_and_random_sampler():
    assert list(SequentialSampler(range(5))) == [0, 1, 2, 3, 4]
    rs = RandomSampler(range(10), generator=_rng(3))
    e1, e2 = list(rs), list(rs)
    assert sorted(e1) == sorted(e2) == list(range(10)) and e1 != e2  # the generator advances between epochs
    assert list(RandomSampler(range(10), generator=_rng(3))) == e1  # re-seeding replays
    assert sorted(list(RandomSampler(range(10)))) == list(range(10))  # default generator
    more = list(RandomSampler(range(4), num_samples=10, generator=_rng()))
    assert len(more) == 10 and sorted(more[:4]) == [0, 1, 2, 3] and sorted(more[4:8]) == [0, 1, 2, 3]
    rep = list(RandomSampler(range(3), replacement=True, num_samples=100, generator=_rng()))
    assert len(rep) == 100 and set(rep) == {0, 1, 2}
    assert len(RandomSampler(range(3), replacement=True, num_samples=70)) == 70
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(TypeError, match="generator"):
        list(RandomSampler(range(3), generator="seed"))


def test_subset_random_sampler():
    s = SubsetRandomSampler([10, 20, 30, 40], generator=_rng(0))
    out = list(s)
    assert sorted(out) == [10, 20, 30, 40] and len(s) == 4


def test_weighted_random_sampler():
    w = [0.0, 1.0, 3.0, 0.0]
    draws = list(WeightedRandomSampler(w, 20000, generator=_rng(0)))
    counts = collections.Counter(draws)
    assert set(counts) <= {1, 2}
    assert abs(counts[2] / 20000 - 0.75) < 0.02
    no_rep = list(WeightedRandomSampler([1, 1, 1, 5], 4, replacement=False, generator=_rng(0)))
    assert sorted(no_rep) == [0, 1, 2, 3]
    with pytest.raises(RuntimeError):
        list(WeightedRandomSampler([1.0, 0.0], 2, replacement=False))
    with pytest.raises(ValueError, match="1d"):
        WeightedRandomSampler([[1.0]], 1)
    with pytest.raises(ValueError, match="num_samples"):
        WeightedRandomSampler([1.0], 0)
    assert WeightedRandomSampler(jitorch.tensor([1.0, 2.0]), 3).weights.dtype is jitorch.float64


@pytest.mark.parametrize("n,bs,drop", [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False), (2, 5, True)])
def test_batch_sampler(n, bs, drop):
    b = BatchSampler(SequentialSampler(range(n)), bs, drop)
    batches = list(b)
    flat = [i for x in batches for i in x]
    assert len(batches) == len(b)
    assert all(len(x) == bs for x in batches[:-1])
    if drop:
        assert all(len(x) == bs for x in batches) and flat == list(range(n // bs * bs))
    else:
        assert flat == list(range(n))
    if torch is not None:
        assert batches == list(tud.BatchSampler(tud.SequentialSampler(range(n)), bs, drop))
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="drop_last"):
        BatchSampler(range(3), 2, 0)


# ================================================================ collation
Point = collections.namedtuple("Point", "x y")


def test_default_collate_rules():
    b = default_collate([jitorch.tensor([1.0, 2.0]), jitorch.tensor([3.0, 4.0])])
    assert b.shape == (2, 2) and b.dtype is jitorch.float32
    b = default_collate([np.array([1, 2], np.int32), np.array([3, 4], np.int32)])
    assert b.dtype is jitorch.int32 and b.tolist() == [[1, 2], [3, 4]]
    assert default_collate([np.float32(1), np.float32(2)]).dtype is jitorch.float32
    assert default_collate([1.5, 2.0]).dtype is jitorch.float64
    assert default_collate([1, 2]).dtype is jitorch.int64
    assert default_collate([True, False]).dtype is jitorch.bool
    assert default_collate(["a", "b"]) == ["a", "b"]
    d = default_collate([{"x": 1, "s": "a"}, {"x": 2, "s": "b"}])
    assert d["x"].tolist() == [1, 2] and d["s"] == ["a", "b"]
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(p, Point) and p.x.tolist() == [1, 3] and p.y.dtype is jitorch.float64
    t = default_collate([(1, "a"), (2, "b")])
    assert isinstance(t, list) and t[0].tolist() == [1, 2] and tuple(t[1]) == ("a", "b")
    lst = default_collate([[1, 2], [3, 4]])
    assert isinstance(lst, list) and [x.tolist() for x in lst] == [[1, 3], [2, 4]]
    od = default_collate([collections.OrderedDict(a=1), collections.OrderedDict(a=2)])
    assert isinstance(od, collections.OrderedDict)
    nested = default_collate([{"img": jitorch.zeros(2, 2), "meta": {"id": 0}}, {"img": jitorch.ones(2, 2), "meta": {"id": 1}}])
    assert nested["img"].shape == (2, 2, 2) and nested["meta"]["id"].tolist() == [0, 1]
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="batch must contain tensors"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="batch must contain tensors"):
        default_collate([np.array(["a"]), np.array(["b"])])


@needs_torch
def test_default_collate_matches_torch():
    samples = [({"a": np.arange(3, dtype=np.int16), "b": 1.5, "c": [1, True]}, Point(np.float64(2.0), "s"), b"x")
               for _ in range(3)]

    def norm(o):
        if isinstance(o, jitorch.Tensor):
            return ("T", o.dtype.name, tuple(o.shape), o.tolist())
        if torch is not None and isinstance(o, torch.Tensor):
            return ("T", str(o.dtype).split(".")[-1], tuple(o.shape), o.tolist())
        if isinstance(o, dict):
            return {k: norm(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return (type(o).__name__, [norm(v) for v in o])
        return o

    assert norm(default_collate(samples)) == norm(tud.default_collate(samples))


def test_default_convert():
    out = default_convert({"a": np.arange(3), "b": [np.float32(1.0), "s"], "t": (np.zeros(2),)})
    assert isinstance(out["a"], jitorch.Tensor) and out["a"].dtype is jitorch.int64
    assert isinstance(out["b"][0], jitorch.Tensor) and out["b"][1] == "s"
    assert isinstance(out["t"], list)
    s = np.array(["x"])
    assert default_convert(s) is s


# ================================================================ DataLoader, one process
def test_loader_basic_batches():
    x = jitorch.arange(20.0).reshape(10, 2)
    y = jitorch.arange(10)
    dl = DataLoader(TensorDataset(x, y), batch_size=4)
    batches = list(dl)
    assert len(dl) == 3 and [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].shape == (4, 2)
    dl = DataLoader(TensorDataset(x, y), batch_size=4, drop_last=True)
    assert len(dl) == 2 and len(list(dl)) == 2


def test_loader_shuffle_generator():
    ds = Squares(12)
    e = [[v for b in DataLoader(ds, batch_size=5, shuffle=True, generator=_rng(5)) for v in b.tolist()]
         for _ in range(2)]
    assert e[0] == e[1] and sorted(e[0]) == sorted(i * i for i in range(12))
    dl = DataLoader(ds, batch_size=5, shuffle=True, generator=_rng(5))
    a = [v for b in dl for v in b.tolist()]
    b = [v for b in dl for v in b.tolist()]
    assert a != b and sorted(a) == sorted(b)  # epochs differ


def test_loader_without_auto_batching():
    dl = DataLoader(Squares(3), batch_size=None)
    assert [x for x in dl] == [0, 1, 4] and len(dl) == 3
    dl = DataLoader(TensorDataset(jitorch.arange(3)), batch_size=None)
    assert [x[0].item() for x in dl] == [0, 1, 2]
    arr_ds = [np.ones(2), np.zeros(2)]
    out = list(DataLoader(arr_ds, batch_size=None))
    assert all(isinstance(o, jitorch.Tensor) for o in out)  # default_convert


def test_loader_samplers_and_collate_fn():
    ds = Squares(6)
    dl = DataLoader(ds, sampler=[5, 0, 3], batch_size=2)
    assert [b.tolist() for b in dl] == [[25, 0], [9]]
    dl = DataLoader(ds, batch_sampler=[[1, 2], [0]])
    assert [b.tolist() for b in dl] == [[1, 4], [0]]
    dl = DataLoader(ds, batch_size=4, collate_fn=lambda b: tuple(b))
    assert list(dl) == [(0, 1, 4, 9), (16, 25)]


class _GetItems(Dataset):
    def __init__(self):
        self.calls = []

    def __getitems__(self, idx):
        self.calls.append(list(idx))
        return [i * 10 for i in idx]

    def __len__(self):
        return 5


def test_loader_uses_getitems():
    ds = _GetItems()
    assert [b.tolist() for b in DataLoader(ds, batch_size=2)] == [[0, 10], [20, 30], [40]]
    assert ds.calls == [[0, 1], [2, 3], [4]]


def test_loader_iterable_dataset():
    dl = DataLoader(Count(7), batch_size=3)
    assert [b.tolist() for b in dl] == [[0, 1, 2], [3, 4, 5], [6]] and len(dl) == 3
    dl = DataLoader(Count(7), batch_size=3, drop_last=True)
    assert [b.tolist() for b in dl] == [[0, 1, 2], [3, 4, 5]] and len(dl) == 2
    assert list(DataLoader(Count(3), batch_size=None)) == [0, 1, 2]
    assert get_worker_info() is None


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_workers=-1), "num_workers"), (dict(timeout=-1), "timeout"),
    (dict(prefetch_factor=2), "prefetch_factor"), (dict(persistent_workers=True), "persistent_workers"),
    (dict(sampler=[0], shuffle=True), "mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_size=None, drop_last=True), "batch_size=None"),
    (dict(multiprocessing_context="spawn"), "multiprocessing_context can only be used"),
    (dict(num_workers=1, multiprocessing_context="nonsense"), "valid start method"),
])
def test_loader_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(Squares(4), **kwargs)


def test_loader_iterable_errors_and_frozen_attributes():
    with pytest.raises(ValueError, match="expected unspecified shuffle"):
        DataLoader(Count(3), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler"):
        DataLoader(Count(3), sampler=[0])
    dl = DataLoader(Squares(4), batch_size=2)
    with pytest.raises(ValueError, match="should not be set after"):
        dl.batch_size = 3
    dl.num_workers = 0  # not frozen in torch either


@needs_torch
def test_loader_matches_torch_without_shuffle():
    rng = _rng(9)
    xs = rng.standard_normal((11, 3)).astype(np.float32)
    ys = rng.integers(0, 5, 11)
    ours = [(a._data.copy(), b._data.copy())
            for a, b in DataLoader(TensorDataset(jitorch.tensor(xs), jitorch.tensor(ys)), batch_size=4)]
    theirs = [(a.numpy(), b.numpy()) for a, b in tud.DataLoader(tud.TensorDataset(torch.tensor(xs), torch.tensor(ys)),
                                                                 batch_size=4)]
    assert len(ours) == len(theirs)
    for (a, b), (c, d) in zip(ours, theirs):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_training_loop_with_optimizer():
    """A tiny end-to-end loop: shuffled batches through a DataLoader, an optimizer stepping on them."""
    rng = _rng(0)
    xs = rng.standard_normal((64, 3))
    w_true = np.array([1.0, -2.0, 0.5])
    ys = xs @ w_true
    ds = TensorDataset(jitorch.tensor(xs), jitorch.tensor(ys))
    w = jitorch.zeros(3, dtype=jitorch.float64, requires_grad=True)
    opt = jitorch.optim.SGD([w], lr=0.1, momentum=0.5)
    for _ in range(30):
        for xb, yb in DataLoader(ds, batch_size=16, shuffle=True, generator=rng):
            err = xb._data @ w._data - yb._data  # gradient by hand: this test is about optim + data
            w.grad = jitorch.tensor(2 * xb._data.T @ err / len(err))
            opt.step()
    np.testing.assert_allclose(w._data, w_true, atol=1e-3)
    assert math.isfinite(float(w._data.sum()))


def test_tensor_dataset_getitems_are_views():
    x = jitorch.arange(12.0).reshape(6, 2)
    y = jitorch.arange(6)
    ds = TensorDataset(x, y)
    batch = ds.__getitems__([4, 0, -1, np.int64(2)])
    assert [s[1].item() for s in batch] == [4, 0, 5, 2]
    for (a, b), i in zip(batch, [4, 0, 5, 2]):
        assert a.tolist() == ds[i][0].tolist() and a.shape == (2,) and b.shape == ()
        assert np.shares_memory(a._data, x._data)  # views, as t[i] gives
    with pytest.raises(IndexError):
        ds.__getitems__([6])
    w = jitorch.ones(3, 2, requires_grad=True)  # tensors that need autograd take the dispatching path
    assert all(s[0].requires_grad for s in TensorDataset(w).__getitems__([0, 1]))


def test_collate_fast_path_matches_stack():
    ts = [jitorch.tensor(np.full((2, 3), k, np.int16)) for k in range(4)]
    b = default_collate(ts)
    assert b.dtype is jitorch.int16 and b.shape == (4, 2, 3) and b.tolist() == jitorch.stack(ts).tolist()
    assert not np.shares_memory(b._data, ts[0]._data)
    mixed = default_collate([jitorch.tensor([1.0]), jitorch.tensor([2.0], dtype=jitorch.float64)])
    assert mixed.dtype is jitorch.float64  # promotion: the op path
    with pytest.raises(Exception):
        default_collate([jitorch.zeros(2), jitorch.zeros(3)])
    g = default_collate([jitorch.ones(2, requires_grad=True), jitorch.ones(2)])
    assert g.requires_grad

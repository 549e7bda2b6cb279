"""DataLoader with worker processes: correctness, worker exceptions (with the worker's traceback), killed
workers (a clear RuntimeError within seconds, never a hang), timeouts, clean shutdown (no zombies, also
when the iterator is dropped early), IterableDataset sharding, persistent workers, seeding, spawn."""
from __future__ import annotations

import gc
import os
import signal
import time

import numpy as np
import pytest

import jitorch
from jitorch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset, get_worker_info

pytestmark = [pytest.mark.skipif(not hasattr(os, "fork"), reason="worker tests use fork"),
              pytest.mark.filterwarnings("ignore:This DataLoader will create")]


# ---------------------------------------------------------------- module-level datasets (picklable for spawn)
class Squares(Dataset):
    def __init__(self, n=16):
        self.n = n

    def __getitem__(self, i):
        return jitorch.tensor([i, i * i])

    def __len__(self):
        return self.n


class WhoAmI(Dataset):
    """Each sample records the worker's id, pid, seeds and a NumPy random draw."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return {"i": i, "wid": info.id, "n": info.num_workers, "pid": os.getpid(), "seed": info.seed,
                "np": int(np.random.randint(0, 2 ** 31)), "same_ds": info.dataset is self}


class Failing(Dataset):
    def __init__(self, bad=5, exc=ValueError):
        self.bad, self.exc = bad, exc

    def __len__(self):
        return 12

    def __getitem__(self, i):
        if i == self.bad:
            _explode(self.exc, i)
        return i


def _explode(exc, i):
    raise exc(f"bad sample {i}")


class Suicide(Dataset):
    """SIGKILLs its own worker at index 6."""

    def __len__(self):
        return 40

    def __getitem__(self, i):
        if i == 6:
            os.kill(os.getpid(), signal.SIGKILL)
        return i


class Slow(Dataset):
    def __init__(self, delay=3.0, at=2):
        self.delay, self.at = delay, at

    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == self.at:
            time.sleep(self.delay)
        return i


class Range(IterableDataset):
    def __init__(self, n, shard=True):
        self.n, self.shard = n, shard

    def __iter__(self):
        info = get_worker_info()
        if info is None or not self.shard:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


class PidDataset(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return (i, os.getpid())


def _init_fail(worker_id):
    raise RuntimeError(f"init failed in {worker_id}")


def _unpicklable_collate(batch):
    return lambda: batch


def _alive(pid):
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _assert_reaped(pids, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.05)
    left = [p for p in pids if os.path.exists(f"/proc/{p}")]
    assert not left, f"workers not reaped (zombies or alive): {left}"


# ---------------------------------------------------------------- correctness
@pytest.mark.parametrize("num_workers", [1, 2, 3])
def test_same_batches_as_single_process(num_workers):
    x = jitorch.tensor(np.arange(40.0).reshape(20, 2))
    y = jitorch.arange(20)
    ds = TensorDataset(x, y)
    ref = [(a.tolist(), b.tolist()) for a, b in DataLoader(ds, batch_size=3)]
    got = [(a.tolist(), b.tolist()) for a, b in DataLoader(ds, batch_size=3, num_workers=num_workers)]
    assert got == ref  # in order
    dl = DataLoader(ds, batch_size=3, num_workers=num_workers, shuffle=True, generator=np.random.default_rng(4))
    ref_sh = [b.tolist() for _, b in DataLoader(ds, batch_size=3, shuffle=True, generator=np.random.default_rng(4))]
    assert [b.tolist() for _, b in dl] == ref_sh  # the shuffle is drawn in the main process


def test_out_of_order_and_prefetch():
    ds = Squares(20)
    got = [b[:, 0].tolist() for b in DataLoader(ds, batch_size=2, num_workers=2, in_order=False, prefetch_factor=1)]
    assert sorted(v for b in got for v in b) == list(range(20))
    assert [b[:, 1].tolist() for b in DataLoader(ds, batch_size=4, num_workers=2, prefetch_factor=4)][0] == [0, 1, 4, 9]


def test_worker_info_and_seeds():
    seen = [s for b in DataLoader(WhoAmI(), batch_size=None, num_workers=2) for s in [b]]
    assert {s["wid"] for s in seen} == {0, 1} and all(s["n"] == 2 for s in seen)
    assert all(s["same_ds"] for s in seen)
    assert len({s["pid"] for s in seen}) == 2 and os.getpid() not in {s["pid"] for s in seen}
    by_worker = {s["wid"]: s["seed"] for s in seen}
    assert by_worker[1] == by_worker[0] + 1  # seed = base_seed + worker id
    draws = {}
    for s in seen:
        draws.setdefault(s["wid"], []).append(s["np"])
    assert draws[0] != draws[1]  # np.random is seeded per worker, not copied from the parent
    other = [b["seed"] for b in DataLoader(WhoAmI(), batch_size=None, num_workers=2)]
    assert set(other) != set(by_worker.values())  # a new base seed per iterator


def test_worker_init_fn_and_its_failure():
    def init(wid):
        np.random.seed(1000 + wid)

    got = [b["np"] for b in DataLoader(WhoAmI(), batch_size=None, num_workers=1, worker_init_fn=init)]
    np.random.seed(1000)
    assert got[0] == np.random.randint(0, 2 ** 31)
    with pytest.raises(RuntimeError, match="init failed in 0"):
        list(DataLoader(Squares(4), num_workers=1, worker_init_fn=_init_fail))


# ---------------------------------------------------------------- failures
def test_worker_exception_reraised_with_traceback():
    it = iter(DataLoader(Failing(bad=5), batch_size=2, num_workers=2))
    assert next(it).tolist() == [0, 1] and next(it).tolist() == [2, 3]
    with pytest.raises(ValueError) as ei:
        next(it)
    msg = str(ei.value)
    assert "Caught ValueError in DataLoader worker process" in msg
    assert "bad sample 5" in msg and "_explode" in msg and "__getitem__" in msg and "Traceback" in msg
    assert next(it).tolist() == [6, 7]  # the loader goes on, as torch's does
    pids = [w.pid for w in it._workers]
    del it, ei  # (the traceback's frames hold the iterator)
    gc.collect()
    _assert_reaped(pids)


def test_worker_key_error_and_custom_exception():
    with pytest.raises(KeyError, match="bad sample 3"):
        list(DataLoader(Failing(bad=3, exc=KeyError), num_workers=1))
    with pytest.raises(_CustomError, match="bad sample 1"):
        list(DataLoader(Failing(bad=1, exc=_CustomError), num_workers=1))


class _CustomError(Exception):
    pass


def test_unpicklable_batch_is_an_error_not_a_hang():
    t0 = time.monotonic()
    with pytest.raises(Exception, match="while pickling"):
        list(DataLoader(Squares(4), batch_size=2, num_workers=1, collate_fn=_unpicklable_collate, timeout=20))
    assert time.monotonic() - t0 < 10


def test_killed_worker_raises_quickly():
    dl = DataLoader(Suicide(), batch_size=2, num_workers=2)
    it = iter(dl)
    pids = [w.pid for w in it._workers]
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+ \(killed by signal: SIGKILL\)\) exited unexpectedly"):
        for _ in it:
            pass
    assert time.monotonic() - t0 < 5.0
    _assert_reaped(pids)  # the surviving worker is shut down too
    assert it._shutdown


class DiesWhileSending(Dataset):
    """Index 1 is a 32 MB batch; a timer SIGKILLs the worker while that batch is still being written."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 1:
            import threading
            threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGKILL)).start()
            return np.ones(4 << 20)
        return np.zeros(1)


def test_worker_killed_mid_message_is_detected_not_a_hang():
    def alarm(*_):
        raise TimeoutError("DataLoader hung on a half-written batch")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(30)
    try:
        it = iter(DataLoader(DiesWhileSending(), batch_size=None, num_workers=1))
        next(it)
        time.sleep(2.5)  # the main process is busy: the worker's pipe fills, then the worker is killed
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match="worker"):
            for _ in it:
                pass
        assert time.monotonic() - t0 < 5.0
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_timeout():
    it = iter(DataLoader(Slow(delay=5.0, at=2), batch_size=1, num_workers=1, timeout=0.5))
    assert next(it).tolist() == [0] and next(it).tolist() == [1]
    t0 = time.monotonic()  # timed from the waiting call only: worker start-up varies with machine load
    with pytest.raises(RuntimeError, match="timed out after 0.5 seconds"):
        next(it)
    # the error comes from the timeout, well before the worker's 5 s sleep would end
    assert time.monotonic() - t0 < 4.0
    pids = [w.pid for w in it._workers]
    del it
    gc.collect()
    _assert_reaped(pids)  # the sleeping worker is terminated


# ---------------------------------------------------------------- shutdown
def test_workers_reaped_after_full_epoch():
    it = iter(DataLoader(Squares(8), batch_size=2, num_workers=2))
    pids = [w.pid for w in it._workers]
    assert all(_alive(p) for p in pids)
    assert len(list(it)) == 4
    _assert_reaped(pids)


def test_workers_reaped_when_iterator_dropped_early():
    for _ in range(2):
        it = iter(DataLoader(Squares(40), batch_size=2, num_workers=2))
        next(it)
        pids = [w.pid for w in it._workers]
        del it
        gc.collect()
        _assert_reaped(pids)
    dl = DataLoader(Squares(40), batch_size=2, num_workers=2)
    for i, _ in enumerate(dl):  # a for loop left with break
        if i == 1:
            break
    gc.collect()
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _is_child_worker(int(p))]


def _is_child_worker(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().split(")")[-1].split()
        return int(fields[1]) == os.getpid() and fields[0] != "Z" and _cmd_is_python(pid)
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return False


def _cmd_is_python(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"python" in f.read()
    except OSError:
        return False


# ---------------------------------------------------------------- iterable datasets
def test_iterable_dataset_sharded_across_workers():
    got = [v for b in DataLoader(Range(23), batch_size=4, num_workers=3) for v in b.tolist()]
    assert sorted(got) == list(range(23))
    got = [v for b in DataLoader(Range(10), batch_size=4, num_workers=2, drop_last=True) for v in b.tolist()]
    assert len(got) == 8  # each worker drops its own last partial batch: (0,2,4,6),(1,3,5,7)


def test_iterable_dataset_without_sharding_is_replicated():
    got = [v for b in DataLoader(Range(5, shard=False), batch_size=2, num_workers=2) for v in b.tolist()]
    assert sorted(got) == sorted(list(range(5)) * 2)  # torch's documented behaviour


def test_iterable_more_workers_than_items():
    got = [v for b in DataLoader(Range(2), batch_size=1, num_workers=3) for v in b.tolist()]
    assert sorted(got) == [0, 1]


# ---------------------------------------------------------------- persistent workers
def test_persistent_workers_keep_processes_across_epochs():
    dl = DataLoader(PidDataset(), batch_size=2, num_workers=2, persistent_workers=True)
    e1 = list(dl)
    e2 = list(dl)
    assert [b[0].tolist() for b in e1] == [b[0].tolist() for b in e2] == [[0, 1], [2, 3], [4, 5]]
    assert {p for b in e1 for p in b[1].tolist()} == {p for b in e2 for p in b[1].tolist()}
    # abandon an epoch half-way: the next one is complete and correct (stale batches are dropped)
    it = iter(dl)
    next(it)
    assert [b[0].tolist() for b in dl] == [[0, 1], [2, 3], [4, 5]]
    pids = [w.pid for w in dl._iterator._workers]
    it = None
    del dl
    gc.collect()
    _assert_reaped(pids)


def test_persistent_iterable_dataset_restarts_each_epoch():
    dl = DataLoader(Range(7), batch_size=3, num_workers=2, persistent_workers=True)
    for _ in range(3):
        assert sorted(v for b in dl for v in b.tolist()) == list(range(7))


# ---------------------------------------------------------------- spawn
def test_spawn_context():
    dl = DataLoader(Squares(6), batch_size=3, num_workers=1, multiprocessing_context="spawn", timeout=60)
    assert [b[:, 1].tolist() for b in dl] == [[0, 1, 4], [9, 16, 25]]


def test_spawn_worker_exception():
    with pytest.raises(ValueError, match="bad sample 0"):
        list(DataLoader(Failing(bad=0), num_workers=1, multiprocessing_context="spawn", timeout=60))


def test_zero_dim_tensor_crosses_process_boundary():
    out = list(DataLoader([jitorch.tensor(3.0)], batch_size=None, num_workers=1))
    assert out[0].shape == ()

"""DataLoader worker processes: the worker loop, WorkerInfo/get_worker_info, exception transport.

Protocol. Parent -> worker, one ``multiprocessing.Queue`` per worker: ``(epoch, idx, index)`` tasks,
``_Resume(epoch)`` at the start of each epoch of a persistent iterator, ``None`` to exit.
Worker -> parent: one pipe *per worker* (the worker holds the only write end), carrying pickled
``(epoch, idx, data)`` where ``data`` is the batch, an :class:`ExceptionWrapper` or an
:class:`_IterableDatasetStopIteration`.

- Pickling happens in the worker's main thread, so an unpicklable batch becomes an error the parent
  sees (a ``multiprocessing.Queue`` would drop it silently in its feeder thread).
- A feeder thread in the worker writes the pipe, so the worker computes the next batches while a big
  one is still being sent (prefetching).
- Because no other process holds a worker's write end, a worker that dies — even in the middle of
  writing a batch — gives the parent an EOF on that pipe instead of a read that blocks forever (a
  shared result queue cannot tell a half-written message from a slow one).
"""
from __future__ import annotations

import os
import pickle
import queue
import random
import sys
import threading
import traceback
from dataclasses import dataclass

import numpy as np

from . import _random

#: seconds between the worker's checks that its parent is still alive
MP_STATUS_CHECK_INTERVAL = 1.0

_worker_info = None


class WorkerInfo:
    """What :func:`get_worker_info` returns inside a worker: ``id``, ``num_workers``, ``seed``, ``dataset``
    (this worker's copy)."""

    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_WorkerInfo__initialized", True)

    def __setattr__(self, key, val):
        if getattr(self, "_WorkerInfo__initialized", False):
            raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")
        object.__setattr__(self, key, val)

    def __repr__(self):
        return (f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, "
                f"dataset={self.dataset!r})")


def get_worker_info():
    """In a DataLoader worker process: its :class:`WorkerInfo`; in the main process: ``None``."""
    return _worker_info


@dataclass(frozen=True)
class _IterableDatasetStopIteration:
    worker_id: int


@dataclass(frozen=True)
class _Resume:
    epoch: int


class KeyErrorMessage(str):
    """str subclass that keeps newlines when a KeyError shows its message."""

    def __repr__(self):
        return self


class ExceptionWrapper:
    """An exception caught in a worker: its type and formatted traceback, re-raised in the parent."""

    def __init__(self, exc_info=None, where="in background"):
        if exc_info is None:
            exc_info = sys.exc_info()
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where
        try:  # the type must come back in the parent; fall back to RuntimeError if it cannot be pickled
            pickle.dumps(self.exc_type)
        except Exception:
            self.exc_msg = f"({self.exc_type.__module__}.{self.exc_type.__qualname__}, not picklable)\n" + self.exc_msg
            self.exc_type = RuntimeError

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = KeyErrorMessage(msg)
        elif getattr(self.exc_type, "message", None):
            raise self.exc_type(message=msg)
        try:
            exception = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exception


def _generate_state(base_seed, worker_id):
    """NumPy's seed for a worker: torch's ``_generate_state`` (SeedSequence-style mixing of the base seed
    and the worker id), so ``np.random`` differs between workers and epochs."""
    INIT_A, MULT_A, INIT_B, MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
    MIX_MULT_L, MIX_MULT_R, XSHIFT, MASK32 = 0xCA01F9DD, 0x4973F715, 16, 0xFFFFFFFF
    entropy = [worker_id, base_seed & MASK32, base_seed >> 32, 0]
    pool = [0] * 4
    hash_const_A = INIT_A

    def hash(value):
        nonlocal hash_const_A
        value = (value ^ hash_const_A) & MASK32
        hash_const_A = (hash_const_A * MULT_A) & MASK32
        value = (value * hash_const_A) & MASK32
        return (value ^ (value >> XSHIFT)) & MASK32

    def mix(x, y):
        r = ((MIX_MULT_L * x) & MASK32) - ((MIX_MULT_R * y) & MASK32)
        r &= MASK32
        return (r ^ (r >> XSHIFT)) & MASK32

    for i in range(4):
        pool[i] = hash(entropy[i])
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hash(pool[i_src]))
    hash_const_B = INIT_B
    state = []
    for i_dst in range(4):
        v = (pool[i_dst] ^ hash_const_B) & MASK32
        hash_const_B = (hash_const_B * MULT_B) & MASK32
        v = (v * hash_const_B) & MASK32
        state.append((v ^ (v >> XSHIFT)) & MASK32)
    return state


def _dumps(obj, worker_id, epoch, idx):
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        err = ExceptionWrapper(where=f"in DataLoader worker process {worker_id} (while pickling the batch to send "
                                     "it to the main process)")
        return pickle.dumps((epoch, idx, err), protocol=pickle.HIGHEST_PROTOCOL)


class _Sender:
    """Writes pickled results to the worker's pipe from a background thread (bounded only by the parent's
    prefetch limit, which caps the tasks a worker can have)."""

    def __init__(self, conn):
        self.conn = conn
        self.q = queue.SimpleQueue()
        self.broken = False
        self.thread = threading.Thread(target=self._run, name="jitorch DataLoader sender", daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            try:
                self.conn.send_bytes(item)
            except (OSError, EOFError, ValueError):  # the parent closed its end: shutting down
                self.broken = True
                return

    def send(self, payload):
        self.q.put(payload)

    def close(self, flush):
        self.q.put(None)
        if flush:
            self.thread.join()
        try:
            self.conn.close()
        except OSError:
            pass


def _worker_loop(dataset_kind, dataset, index_queue, data_conn, done_event, auto_collation, collate_fn, drop_last,
                 base_seed, init_fn, worker_id, num_workers, parent_pid):
    from .dataloader import _make_fetcher, _DatasetKind
    sender = _Sender(data_conn)
    try:
        seed = base_seed + worker_id
        random.seed(seed)
        np.random.seed(_generate_state(base_seed, worker_id))
        _random.seed_worker(seed)
        global _worker_info
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
        init_exception = None
        fetcher = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = _make_fetcher(dataset_kind, dataset, auto_collation, collate_fn, drop_last)
        except Exception:
            init_exception = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
        iteration_end = False
        while not sender.broken:
            try:
                r = index_queue.get(timeout=MP_STATUS_CHECK_INTERVAL)
            except queue.Empty:
                if os.getppid() != parent_pid:  # the main process died: do not linger as an orphan
                    break
                continue
            if r is None:
                break
            if isinstance(r, _Resume):
                iteration_end = False
                try:
                    fetcher = _make_fetcher(dataset_kind, dataset, auto_collation, collate_fn, drop_last)
                except Exception:
                    init_exception = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
                continue
            if done_event.is_set() or iteration_end:
                continue
            epoch, idx, index = r
            if init_exception is not None:
                data = init_exception
                init_exception = None
            else:
                try:
                    data = fetcher.fetch(index)
                except Exception as e:
                    if isinstance(e, StopIteration) and dataset_kind == _DatasetKind.Iterable:
                        data = _IterableDatasetStopIteration(worker_id)
                        iteration_end = True
                    else:
                        data = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
            sender.send(_dumps((epoch, idx, data), worker_id, epoch, idx))
            del data, idx, index, r
    except KeyboardInterrupt:
        pass
    # on shutdown nobody reads any more: do not wait for unsent results
    sender.close(flush=not done_event.is_set())
    index_queue.cancel_join_thread()

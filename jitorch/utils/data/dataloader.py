"""torch.utils.data.DataLoader: batching, shuffling, and worker processes.

``num_workers=0`` loads in the calling process. ``num_workers > 0`` starts worker *processes*
(``multiprocessing``; the platform default context, ``'fork'`` on Linux, or ``multiprocessing_context``
such as ``'spawn'``), each with its own copy of the dataset; batches come back in sampler order
(``in_order=True``), at most ``prefetch_factor * num_workers`` in flight. Tensors cross processes as
NumPy arrays (``Tensor.__reduce_ex__``).

Failure handling: an exception in a worker is re-raised in the main process with the worker's
traceback text; a worker that dies (a crash, SIGKILL, the OOM killer) is detected within a fraction of
a second of the main process waiting for data and raises ``RuntimeError`` naming its pid and signal;
``timeout`` bounds the wait for any one batch. Workers are shut down (joined, then terminated if they
do not exit) when an epoch ends, when the iterator is garbage-collected (a loop left early), on an
error, and at interpreter exit; they also exit by themselves if the main process disappears.
"""
from __future__ import annotations

import itertools
import multiprocessing
import multiprocessing.connection as mp_connection
import os
import pickle
import signal
import time
import warnings
import weakref

from . import _random
from ._collate import default_collate, default_convert
from ._worker import ExceptionWrapper, _IterableDatasetStopIteration, _Resume, _worker_loop
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "default_collate", "default_convert"]

#: how often (seconds) the main process checks that its workers are alive while it waits for data
_WORKER_CHECK_INTERVAL = 0.1
#: how long (seconds) shutdown waits for a worker to exit before terminating it
_JOIN_TIMEOUT = 1.0


class _DatasetKind:
    Map = 0
    Iterable = 1


class _MapDatasetFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.dataset, self.auto_collation, self.collate_fn, self.drop_last = dataset, auto_collation, collate_fn, drop_last

    def fetch(self, possibly_batched_index):
        if self.auto_collation:
            getitems = getattr(self.dataset, "__getitems__", None)
            if callable(getitems):
                data = getitems(possibly_batched_index)
            else:
                data = [self.dataset[idx] for idx in possibly_batched_index]
        else:
            data = self.dataset[possibly_batched_index]
        return self.collate_fn(data)


class _IterableDatasetFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.dataset, self.auto_collation, self.collate_fn, self.drop_last = dataset, auto_collation, collate_fn, drop_last
        self.dataset_iter = iter(dataset)
        self.ended = False

    def fetch(self, possibly_batched_index):
        if self.ended:
            raise StopIteration
        if self.auto_collation:
            data = []
            for _ in possibly_batched_index:
                try:
                    data.append(next(self.dataset_iter))
                except StopIteration:
                    self.ended = True
                    break
            if len(data) == 0 or (self.drop_last and len(data) < len(possibly_batched_index)):
                raise StopIteration
        else:
            data = next(self.dataset_iter)
        return self.collate_fn(data)


def _make_fetcher(kind, dataset, auto_collation, collate_fn, drop_last):
    cls = _MapDatasetFetcher if kind == _DatasetKind.Map else _IterableDatasetFetcher
    return cls(dataset, auto_collation, collate_fn, drop_last)


class _InfiniteConstantSampler(Sampler):
    """The sampler of an IterableDataset: ``None`` forever (the dataset decides when to stop)."""

    def __iter__(self):
        while True:
            yield None


def _get_context(ctx):
    if ctx is None:
        return multiprocessing.get_context()
    if isinstance(ctx, str):
        if ctx not in multiprocessing.get_all_start_methods():
            raise ValueError(f"multiprocessing_context option should specify a valid start method in "
                             f"{multiprocessing.get_all_start_methods()!r}, but got multiprocessing_context={ctx!r}")
        return multiprocessing.get_context(ctx)
    if not isinstance(ctx, multiprocessing.context.BaseContext):
        raise TypeError("multiprocessing_context option should be a valid context object or a string specifying "
                        f"the start method, but got multiprocessing_context={ctx}")
    return ctx


class DataLoader:
    """Iterate over ``dataset`` in (optionally shuffled) mini-batches; torch's arguments and semantics.

    ``generator`` drives the shuffle and the workers' base seed: see :mod:`jitorch.utils.data._random`
    (a ``numpy.random.Generator`` or an int seed until ``jitorch.Generator`` exists). ``pin_memory`` and
    ``pin_memory_device`` are accepted and ignored (no pinned memory on this backend).
    """

    _initialized = False

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing.let num_workers > 0 to "
                             "enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.in_order = in_order
        self.multiprocessing_context = multiprocessing_context

        if isinstance(dataset, IterableDataset):
            self._dataset_kind = _DatasetKind.Iterable
            if shuffle not in (False, None):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, but "
                                 f"got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
            self._dataset_kind = _DatasetKind.Map
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and "
                                 "drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        if sampler is None:
            if self._dataset_kind == _DatasetKind.Iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        if num_workers > 0:
            self._mp_context = _get_context(multiprocessing_context)
        elif multiprocessing_context is not None:
            raise ValueError("multiprocessing_context can only be used with multi-process loading (num_workers > 0), "
                             f"but got num_workers={num_workers}")
        else:
            self._mp_context = None
        self._iterator = None
        self._initialized = True
        self._check_worker_number_rationality()

    def __setattr__(self, attr, val):
        if self._initialized and attr in ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
                                           "persistent_workers"):
            raise ValueError(f"{attr} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(attr, val)

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _get_iterator(self):
        if self.num_workers == 0:
            return _SingleProcessDataLoaderIter(self)
        return _MultiProcessingDataLoaderIter(self)

    def __iter__(self):
        if self.persistent_workers and self.num_workers > 0:
            if self._iterator is None or self._iterator._shutdown:
                self._iterator = self._get_iterator()
            else:
                self._iterator._reset(self)
            return self._iterator
        return self._get_iterator()

    def __len__(self):
        if self._dataset_kind == _DatasetKind.Iterable:
            length = len(self.dataset)
            if self.batch_size is not None:
                length = length // self.batch_size if self.drop_last else -(-length // self.batch_size)
            return length
        return len(self._index_sampler)

    def _check_worker_number_rationality(self):
        if self.num_workers <= 1:
            return
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count()
        if cpus is not None and self.num_workers > cpus:
            warnings.warn(f"This DataLoader will create {self.num_workers} worker processes in total. Our suggested "
                          f"max number of worker in current system is {cpus}, which is smaller than what this "
                          "DataLoader is going to create. Please be aware that excessive worker creation might get "
                          "DataLoader running slow or even freeze, lower the worker number to avoid potential "
                          "slowness/freeze if necessary.", UserWarning, stacklevel=3)


class _BaseDataLoaderIter:
    def __init__(self, loader):
        self._dataset = loader.dataset
        self._shared_seed = None
        self._dataset_kind = loader._dataset_kind
        self._auto_collation = loader._auto_collation
        self._drop_last = loader.drop_last
        self._index_sampler = loader._index_sampler
        self._num_workers = loader.num_workers
        self._prefetch_factor = loader.prefetch_factor
        self._timeout = loader.timeout
        self._collate_fn = loader.collate_fn
        self._persistent_workers = loader.persistent_workers
        self._in_order = loader.in_order
        self._sampler_iter = iter(self._index_sampler)
        self._base_seed = _random.draw_seed(loader.generator)
        self._num_yielded = 0
        self._shutdown = False
        self._profile_name = f"enumerate(DataLoader)#{type(self).__name__}.__next__"

    def __iter__(self):
        return self

    def _reset(self, loader, first_iter=False):
        self._sampler_iter = iter(self._index_sampler)
        self._num_yielded = 0

    def _next_index(self):
        return next(self._sampler_iter)

    def _next_data(self):
        raise NotImplementedError

    def __next__(self):
        data = self._next_data()
        self._num_yielded += 1
        return data

    def __len__(self):
        return len(self._index_sampler)

    def __getstate__(self):
        raise NotImplementedError(f"{type(self).__name__} cannot be pickled")


class _SingleProcessDataLoaderIter(_BaseDataLoaderIter):
    def __init__(self, loader):
        super().__init__(loader)
        self._dataset_fetcher = _make_fetcher(self._dataset_kind, self._dataset, self._auto_collation,
                                              self._collate_fn, self._drop_last)

    def _next_data(self):
        index = self._next_index()
        return self._dataset_fetcher.fetch(index)


def _signal_name(code):
    try:
        return signal.Signals(-code).name
    except (ValueError, TypeError):
        return str(-code)


class _WorkerPool:
    """The processes and channels of one iterator, and their shutdown.

    Kept apart from the iterator so that a ``weakref.finalize`` (not ``__del__``) can shut the workers
    down: when an iterator dies inside a reference cycle (e.g. held by an exception's traceback), the
    cyclic GC may run the ``__del__`` of its pipe connections first, which closes their fds *without*
    marking them closed; a later ``close()`` from the iterator's ``__del__`` would then close fd numbers
    that may already belong to something else. The finalizer holds the pool strongly, so the pool's
    connections are never part of that garbage.
    """

    def __init__(self, done_event):
        self.workers = []
        self.index_queues = []
        self.readers = []  # one result pipe per worker; the worker holds the only write end
        self.done_event = done_event
        self.shutdown = False

    def shutdown_workers(self):
        if self.shutdown:
            return
        self.shutdown = True
        try:
            self.done_event.set()
            for q in self.index_queues:
                try:
                    q.put(None)
                except Exception:
                    pass
            for r in self.readers:  # a worker blocked sending a batch gets EPIPE and exits
                r.close()
            deadline = time.monotonic() + _JOIN_TIMEOUT
            for w in self.workers:
                w.join(timeout=max(0.0, deadline - time.monotonic()))
            for w in self.workers:
                if w.is_alive():
                    w.terminate()
                    w.join(timeout=1.0)
                if w.is_alive():
                    w.kill()
                    w.join()
            for q in self.index_queues:
                q.cancel_join_thread()
                q.close()
        except Exception:  # interpreter shutdown: modules may be half torn down
            pass


class _MultiProcessingDataLoaderIter(_BaseDataLoaderIter):
    """Worker processes fed through one index queue each; results come back on one pipe per worker."""

    def __init__(self, loader):
        super().__init__(loader)
        self._worker_init_fn = loader.worker_init_fn
        ctx = loader._mp_context
        self._epoch = 0
        self._workers_done_event = ctx.Event()
        self._pool = _WorkerPool(self._workers_done_event)
        self._workers = self._pool.workers
        self._index_queues = self._pool.index_queues
        self._readers = self._pool.readers
        # shuts the workers down when this iterator is garbage-collected, and at interpreter exit
        self._finalizer = weakref.finalize(self, self._pool.shutdown_workers)
        self._worker_queue_idx_cycle = itertools.cycle(range(self._num_workers))
        try:
            for i in range(self._num_workers):
                index_queue = ctx.Queue()
                index_queue.cancel_join_thread()
                reader, writer = ctx.Pipe(duplex=False)
                w = ctx.Process(target=_worker_loop, daemon=True, name=f"jitorch DataLoader worker {i}",
                                args=(self._dataset_kind, self._dataset, index_queue, writer,
                                      self._workers_done_event, self._auto_collation, self._collate_fn,
                                      self._drop_last, self._base_seed, self._worker_init_fn, i, self._num_workers,
                                      os.getpid()))
                self._index_queues.append(index_queue)
                self._readers.append(reader)
                try:
                    w.start()
                finally:
                    writer.close()  # before the next fork, so no later worker inherits it
                self._workers.append(w)
        except BaseException:
            self._shutdown_workers()
            raise
        self._reset(loader, first_iter=True)

    # ------------------------------------------------------------ epochs
    def _reset(self, loader, first_iter=False):
        super()._reset(loader, first_iter)
        self._epoch += 1
        self._send_idx = 0
        self._rcvd_idx = 0
        self._task_info = {}
        self._tasks_outstanding = 0
        self._workers_status = [True] * self._num_workers
        if not first_iter:  # persistent workers: start a fresh pass over (their copy of) the dataset
            for q in self._index_queues:
                q.put(_Resume(self._epoch))
        for _ in range(self._prefetch_factor * self._num_workers):
            self._try_put_index()

    def _try_put_index(self):
        if self._tasks_outstanding >= self._prefetch_factor * self._num_workers:
            return
        try:
            index = self._next_index()
        except StopIteration:
            return
        for _ in range(self._num_workers):
            worker = next(self._worker_queue_idx_cycle)
            if self._workers_status[worker]:
                break
        else:
            return  # every worker has exhausted its IterableDataset
        self._index_queues[worker].put((self._epoch, self._send_idx, index))
        self._task_info[self._send_idx] = (worker,)
        self._tasks_outstanding += 1
        self._send_idx += 1

    # ------------------------------------------------------------ receiving
    def _check_workers(self, grace=0.0):
        if grace:  # a closed pipe: give the process a moment to be reaped so its exit status is known
            end = time.monotonic() + grace
            while time.monotonic() < end and all(w.is_alive() for w in self._workers):
                time.sleep(0.01)
        dead = [w for w in self._workers if not w.is_alive()]
        if dead:
            desc = ", ".join(
                f"{w.pid} (killed by signal: {_signal_name(w.exitcode)})" if w.exitcode is not None and w.exitcode < 0
                else f"{w.pid} (exit code {w.exitcode})" for w in dead)
            self._shutdown_workers()
            raise RuntimeError(f"DataLoader worker (pid(s) {desc}) exited unexpectedly. A worker may have crashed "
                               "or been killed (e.g. by the out-of-memory killer); try num_workers=0 to see the "
                               "error in the main process.")

    def _get_data(self):
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            wait = _WORKER_CHECK_INTERVAL
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._check_workers()
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")
                wait = min(wait, remaining)
            ready = mp_connection.wait(self._readers, timeout=wait)
            if not ready:
                self._check_workers()
                continue
            for reader in ready:
                try:
                    payload = reader.recv_bytes()
                except (EOFError, OSError) as e:
                    self._check_workers(grace=2.0)
                    self._shutdown_workers()
                    raise RuntimeError(f"DataLoader worker (pid {self._workers[self._readers.index(reader)].pid}) "
                                       f"closed its connection unexpectedly ({type(e).__name__})") from e
                epoch, idx, data = pickle.loads(payload)
                if epoch != self._epoch:
                    continue  # a batch of an abandoned epoch (persistent workers)
                return idx, data

    def _next_data(self):
        if self._shutdown:
            raise StopIteration
        while True:
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx)
                if info:
                    worker_id = info[0]
                    if len(info) == 2 or self._workers_status[worker_id]:
                        break
                    del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                if not self._persistent_workers:
                    self._shutdown_workers()
                raise StopIteration
            if len(self._task_info[self._rcvd_idx]) == 2:
                data = self._task_info.pop(self._rcvd_idx)[1]
                self._rcvd_idx += 1
                return self._process_data(data)
            idx, data = self._get_data()
            self._tasks_outstanding -= 1
            if isinstance(data, _IterableDatasetStopIteration):
                self._workers_status[data.worker_id] = False
                self._try_put_index()
                continue
            if idx != self._rcvd_idx:
                if not self._in_order:
                    del self._task_info[idx]
                    return self._process_data(data)
                self._task_info[idx] += (data,)
            else:
                del self._task_info[idx]
                self._rcvd_idx += 1
                return self._process_data(data)

    def _process_data(self, data):
        self._try_put_index()
        if isinstance(data, ExceptionWrapper):
            data.reraise()
        return data

    # ------------------------------------------------------------ shutdown
    @property
    def _shutdown(self):
        pool = self.__dict__.get("_pool")
        return True if pool is None else pool.shutdown

    @_shutdown.setter
    def _shutdown(self, value):  # set by the base class before the pool exists
        pass

    def _shutdown_workers(self):
        self._finalizer()

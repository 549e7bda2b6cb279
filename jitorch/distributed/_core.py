"""Process groups and collectives on MPI (mpi4py).

Every collective is issued as MPI's non-blocking variant (``Iallreduce``, ``Ibcast``, ...) and
wrapped in a :class:`Work`; a blocking call is ``work.wait()``. Waiting polls the requests against
the group's timeout, so a rank that never joins a collective turns into a ``DistBackendError`` on
the others instead of a hang; an uncaught exception on any rank calls ``MPI_Abort`` (the hook is
installed by :func:`init_process_group`), which ends the whole job.

Buffers: a contiguous, writable tensor's ``_data`` goes to MPI as it is (zero copy); anything else
goes through a contiguous copy that is written back when the work completes. float16 reductions
run in float32 (MPI has no half type); bool reductions use MPI's logical ops. After a result lands
in a tensor its version counter is bumped.
"""
from __future__ import annotations

import datetime
import importlib.util
import os
import sys
import time

import numpy as np

# ----------------------------------------------------------------------------- errors and enums


class DistError(RuntimeError):
    pass


class DistBackendError(DistError):
    pass


class _Op:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<RedOpType.{self.name}>"

    def __reduce__(self):
        return (getattr, (ReduceOp, self.name))


class ReduceOp:
    """torch.distributed.ReduceOp: SUM, AVG, PRODUCT, MIN, MAX, BAND, BOR, BXOR."""
    SUM = _Op("SUM")
    AVG = _Op("AVG")
    PRODUCT = _Op("PRODUCT")
    MIN = _Op("MIN")
    MAX = _Op("MAX")
    BAND = _Op("BAND")
    BOR = _Op("BOR")
    BXOR = _Op("BXOR")
    RedOpType = _Op


class Backend(str):
    """Backend names. ``mpi`` is the only implementation; ``gloo`` (the CPU backend scripts name)
    is accepted as an alias. ``nccl`` needs CUDA, which jitorch does not have."""
    UNDEFINED = "undefined"
    MPI = "mpi"
    GLOO = "gloo"
    NCCL = "nccl"

    def __new__(cls, name):
        if not isinstance(name, str):
            raise ValueError(f"Backend name must be a string, but got: {name}")
        return str.__new__(cls, name.lower())


_DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)  # torch's default for CPU backends

# ----------------------------------------------------------------------------- state

_MPI = None          # the mpi4py.MPI module, once init_process_group ran
_WORLD = None        # the default ProcessGroup
_GROUPS = []         # every live ProcessGroup (destroyed with the world)
_PREV_EXCEPTHOOK = None


class _NonMember:
    def __repr__(self):
        return "GroupMember.NON_GROUP_MEMBER"


class GroupMember:
    WORLD = None
    NON_GROUP_MEMBER = _NonMember()


class group:  # noqa: N801  (torch.distributed.group.WORLD)
    WORLD = None


class ProcessGroup:
    """A set of ranks over an MPI communicator. ``rank()``/``size()`` are this process's rank in
    the group and the group's size; ``ranks`` are the members' global ranks."""

    def __init__(self, comm, ranks, timeout, backend="mpi", name=""):
        self.comm = comm
        self.ranks = list(ranks)
        self._rank = comm.Get_rank()
        self._size = comm.Get_size()
        self.timeout = timeout
        self.backend = backend
        self.name = name
        self._global_to_group = {g: i for i, g in enumerate(self.ranks)}

    def rank(self):
        return self._rank

    def size(self):
        return self._size

    def group_rank(self, global_rank):
        try:
            return self._global_to_group[int(global_rank)]
        except KeyError:
            raise ValueError(f"Global rank {global_rank} is not part of group {self.ranks}") from None

    def __repr__(self):
        return f"ProcessGroup(backend={self.backend!r}, rank={self._rank}, size={self._size}, ranks={self.ranks})"


def _seconds(timeout):
    if timeout is None:
        return None
    if isinstance(timeout, datetime.timedelta):
        return timeout.total_seconds()
    return float(timeout)


# ----------------------------------------------------------------------------- availability


def is_available():
    """True: the package always imports. Whether MPI can run is :func:`is_mpi_available`."""
    return True


def is_mpi_available():
    """True when mpi4py is installed (``pip install 'jitorch[distributed]'``); does not import it."""
    return importlib.util.find_spec("mpi4py") is not None


def is_gloo_available():
    return is_mpi_available()  # 'gloo' runs on MPI here


def is_nccl_available():
    return False


def is_torchelastic_launched():
    return os.getenv("TORCHELASTIC_RUN_ID") is not None


def is_initialized():
    return _WORLD is not None


def _world():
    if _WORLD is None:
        raise ValueError("Default process group has not been initialized, please make sure to call "
                         "init_process_group.")
    return _WORLD


def _resolve(group):
    """The ProcessGroup to run on, or None when this rank is not a member."""
    w = _world()
    if group is None or group is GroupMember.WORLD:
        return w
    if group is GroupMember.NON_GROUP_MEMBER:
        return None
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"expected a ProcessGroup, got {type(group).__name__}")
    return group


# ----------------------------------------------------------------------------- init / teardown


def _import_mpi():
    global _MPI
    if _MPI is None:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise RuntimeError("jitorch.distributed runs on MPI and needs mpi4py: "
                               "pip install 'jitorch[distributed]' (mpi4py and the mpich wheel), then launch "
                               "with `mpiexec -n N python script.py`") from e
        _MPI = MPI
    return _MPI


# seconds an aborting rank waits after printing, so mpiexec forwards its output before MPI_Abort kills
# the job (without it a loaded machine sometimes lost the traceback: the user saw only the exit status)
_FORWARD_S = 0.3


def _abort_on_exception(exc_type, exc, tb):
    """sys.excepthook while a multi-rank world is up: print the traceback, then MPI_Abort so the
    other ranks do not hang in their next collective."""
    try:
        (_PREV_EXCEPTHOOK or sys.__excepthook__)(exc_type, exc, tb)
    finally:
        try:
            sys.stderr.flush()
            sys.stdout.flush()
        except Exception:
            pass
        if _MPI is not None and _WORLD is not None and _WORLD.size() > 1:
            rank = _WORLD.ranks[_WORLD.rank()]
            print(f"jitorch.distributed: rank {rank} raised {exc_type.__name__}; aborting the job (MPI_Abort)",
                  file=sys.stderr, flush=True)
            time.sleep(_FORWARD_S)  # let mpiexec's I/O proxy forward the traceback before the job is killed
            _MPI.COMM_WORLD.Abort(1)


def _exit_or_abort(status=None):
    """sys.exit while a multi-rank world is up: a non-zero status aborts the whole job (the other
    ranks would otherwise wait in their next collective until the timeout)."""
    if status not in (None, 0) and _MPI is not None and _WORLD is not None and _WORLD.size() > 1:
        if not isinstance(status, int):
            print(status, file=sys.stderr)
        rank = _WORLD.ranks[_WORLD.rank()]
        print(f"jitorch.distributed: rank {rank} called sys.exit({status!r}); aborting the job (MPI_Abort)",
              file=sys.stderr, flush=True)
        try:
            sys.stdout.flush()
        except Exception:
            pass
        time.sleep(_FORWARD_S)
        _MPI.COMM_WORLD.Abort(status if isinstance(status, int) else 1)
    _PREV_EXIT(status)


_PREV_EXIT = sys.exit


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Join the MPI job as the default process group.

    ``backend``: ``"mpi"`` (or ``None``/``"gloo"``/``"cpu:gloo"``: all run on MPI). Ranks and the
    world size come from MPI (``mpiexec -n N``); ``world_size``/``rank`` arguments and the
    ``WORLD_SIZE``/``RANK`` environment variables, when given, must agree with it. ``init_method``
    and ``store`` are not needed (MPI does the rendezvous) and are ignored. Afterwards ``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` are set in ``os.environ`` when unset.
    ``timeout`` (timedelta or seconds, default 30 minutes) bounds every wait on a collective.
    """
    global _WORLD, _PREV_EXCEPTHOOK, _PREV_EXIT
    if _WORLD is not None:
        raise ValueError("trying to initialize the default process group twice!")
    name = "mpi" if backend is None else str(backend).lower()
    if name.startswith("cpu:"):
        name = name[4:]
    if name in ("cuda:nccl", "nccl"):
        raise RuntimeError("backend 'nccl' needs CUDA, which jitorch does not have; use backend='mpi' "
                           "(CPU tensors over MPI)")
    if name not in ("mpi", "gloo"):
        raise ValueError(f"Invalid backend: '{backend}'; jitorch.distributed runs on MPI: use backend='mpi'")
    MPI = _import_mpi()
    comm = MPI.COMM_WORLD.Dup()
    size, me = comm.Get_size(), comm.Get_rank()
    env_ws, env_rank = os.environ.get("WORLD_SIZE"), os.environ.get("RANK")
    for what, given, actual in (("world_size", world_size, size), ("rank", rank, me),
                                ("WORLD_SIZE", env_ws, size), ("RANK", env_rank, me)):
        if given is None or given == "" or int(given) == -1:
            continue
        if int(given) != actual:
            comm.Free()
            raise ValueError(f"init_process_group: {what}={given} but MPI says {actual} (rank {me} of {size}); "
                             f"ranks come from the MPI launcher: run `mpiexec -n N python script.py`")
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    local_rank, local_size = local.Get_rank(), local.Get_size()
    local.Free()
    for k, v in (("RANK", me), ("WORLD_SIZE", size), ("LOCAL_RANK", local_rank), ("LOCAL_WORLD_SIZE", local_size)):
        os.environ.setdefault(k, str(v))
    t = _seconds(timeout)
    _WORLD = ProcessGroup(comm, range(size), _DEFAULT_TIMEOUT.total_seconds() if t is None else t, name,
                          group_name or "default_pg")
    GroupMember.WORLD = group.WORLD = _WORLD
    _GROUPS.append(_WORLD)
    if sys.excepthook is not _abort_on_exception:
        _PREV_EXCEPTHOOK = sys.excepthook
        sys.excepthook = _abort_on_exception
    if sys.exit is not _exit_or_abort:
        _PREV_EXIT = sys.exit
        sys.exit = _exit_or_abort


def destroy_process_group(group=None):
    """Free ``group``'s communicator, or every group (and the default one) when ``group`` is None."""
    global _WORLD, _PREV_EXCEPTHOOK
    if group is None or group is _WORLD:
        for g in _GROUPS:
            try:
                g.comm.Free()
            except Exception:
                pass
        _GROUPS.clear()
        _WORLD = None
        GroupMember.WORLD = globals()["group"].WORLD = None
        if sys.excepthook is _abort_on_exception:
            sys.excepthook = _PREV_EXCEPTHOOK or sys.__excepthook__
            _PREV_EXCEPTHOOK = None
        if sys.exit is _exit_or_abort:
            sys.exit = _PREV_EXIT
        return
    if group is GroupMember.NON_GROUP_MEMBER:
        return
    if group in _GROUPS:
        _GROUPS.remove(group)
        group.comm.Free()


def new_group(ranks=None, timeout=None, backend=None, pg_options=None, use_local_synchronization=False,
              group_desc=None, device_id=None):
    """A group of ``ranks`` (global ranks; all ranks by default). Every rank of the world must call
    it (as in torch); non-members get ``GroupMember.NON_GROUP_MEMBER``."""
    w = _world()
    MPI = _MPI
    members = list(range(w.size())) if ranks is None else sorted({int(r) for r in ranks})
    for r in members:
        if not 0 <= r < w.size():
            raise ValueError(f"new_group: rank {r} is out of range for a world of size {w.size()}")
    wg = w.comm.Get_group()
    sub = wg.Incl(members)
    comm = w.comm.Create(sub)
    sub.Free()
    wg.Free()
    if comm == MPI.COMM_NULL:
        return GroupMember.NON_GROUP_MEMBER
    t = _seconds(timeout)
    pg = ProcessGroup(comm, members, w.timeout if t is None else t, w.backend, group_desc or "")
    _GROUPS.append(pg)
    return pg


def get_backend(group=None):
    pg = _resolve(group)
    if pg is None:
        raise ValueError("Invalid process group specified")
    return Backend(pg.backend)


def get_rank(group=None):
    """This process's rank in ``group`` (the world by default); -1 when it is not a member."""
    pg = _resolve(group)
    return -1 if pg is None else pg.rank()


def get_world_size(group=None):
    pg = _resolve(group)
    return -1 if pg is None else pg.size()


def get_process_group_ranks(group):
    pg = _resolve(group)
    return list(pg.ranks)


def get_global_rank(group, group_rank):
    pg = _resolve(group)
    return pg.ranks[group_rank]


def get_group_rank(group, global_rank):
    pg = _resolve(group)
    return pg.group_rank(global_rank)


# ----------------------------------------------------------------------------- work handles


#: How a rank waits for a collective: it polls MPI (``Testall``) without pausing for ``SPIN_S``
#: seconds, then sleeps between polls, the pause doubling from ``SLEEP_MIN_S`` up to ``SLEEP_MAX_S``.
#: Polling keeps the latency low (MPI's shared-memory transfers move only while both ranks call
#: into MPI); sleeping gives the core back to other processes when the wait is long.
#: ``JITORCH_DIST_SPIN_S`` / ``JITORCH_DIST_SLEEP_MAX_S`` override the defaults.
SPIN_S = float(os.environ.get("JITORCH_DIST_SPIN_S", "0.002"))
SLEEP_MIN_S = 2e-5
SLEEP_MAX_S = float(os.environ.get("JITORCH_DIST_SLEEP_MAX_S", "0.001"))


def _wait_requests(reqs, timeout, what, statuses=None):
    """Poll ``reqs`` until all completed; raise DistBackendError after ``timeout`` seconds."""
    MPI = _MPI
    if not reqs:
        return
    testall = MPI.Request.Testall
    done = testall(reqs, statuses) if statuses is not None else testall(reqs)
    if done:
        return
    start = time.monotonic()
    spin_until = start + SPIN_S
    deadline = None if timeout is None else start + timeout
    delay = SLEEP_MIN_S
    while True:
        done = testall(reqs, statuses) if statuses is not None else testall(reqs)
        if done:
            return
        now = time.monotonic()
        if deadline is not None and now > deadline:
            raise DistBackendError(f"jitorch.distributed: {what} timed out after {timeout:.1f}s (rank "
                                   f"{_WORLD.rank() if _WORLD else '?'}): another rank did not join; "
                                   f"is every rank calling the same collectives in the same order?")
        if now > spin_until:
            time.sleep(delay)
            delay = min(delay * 2, SLEEP_MAX_S)


class Work:
    """A handle on a collective in flight (``async_op=True``): ``wait()`` blocks until it completed
    (and its result landed in the output tensors), ``is_completed()`` polls."""

    def __init__(self, reqs, finish=None, pg=None, what="collective", statuses=None):
        self._reqs = list(reqs)
        self._finish = finish
        self._pg = pg
        self._what = what
        self._statuses = statuses
        self._done = False
        self._result = []

    def _complete(self):
        self._done = True
        fin, self._finish = self._finish, None
        if fin is not None:
            r = fin()
            if r is not None:
                self._result = r

    def is_completed(self):
        if self._done:
            return True
        if not self._reqs or (_MPI.Request.Testall(self._reqs, self._statuses) if self._statuses is not None
                              else _MPI.Request.Testall(self._reqs)):
            self._complete()
            return True
        return False

    def is_success(self):
        return self._done

    def wait(self, timeout=None):
        if not self._done:
            t = _seconds(timeout)
            if t is None and self._pg is not None:
                t = self._pg.timeout
            _wait_requests(self._reqs, t, self._what, self._statuses)
            self._complete()
        return True

    def result(self):
        self.wait()
        return self._result

    def exception(self):
        return None

    def __repr__(self):
        return f"<Work {self._what} {'completed' if self._done else 'pending'}>"


def _done(work, async_op):
    if async_op:
        return work
    work.wait()
    return None


# ----------------------------------------------------------------------------- buffers


def _check_tensor(t, name="tensor"):
    from ..tensor import Tensor
    if not isinstance(t, Tensor):
        raise TypeError(f"Invalid function argument: {name} should be a Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise RuntimeError(f"jitorch.distributed runs on CPU tensors; got a tensor on {t.device}")
    return t


def _io(t, name="tensor"):
    """(contiguous writable array with t's values, writeback or None). Zero copy when possible."""
    _check_tensor(t, name)
    a = t._data
    if a.flags.c_contiguous and a.flags.writeable:
        return a, None
    tmp = np.ascontiguousarray(a)
    if not tmp.flags.writeable or tmp is a:
        tmp = tmp.copy()
    return tmp, (lambda: np.copyto(a, tmp))


def _raw(a):
    """A byte view of a contiguous array: data movement needs no MPI datatype."""
    return [a.reshape(-1).view(np.uint8), _MPI.BYTE]


def _mpi_op(op, dtype):
    MPI = _MPI
    if not isinstance(op, _Op):
        raise ValueError(f"op must be a ReduceOp, got {op!r}")
    n = op.name
    if dtype == np.bool_:
        return {"SUM": MPI.LOR, "AVG": MPI.LOR, "MAX": MPI.LOR, "BOR": MPI.LOR, "PRODUCT": MPI.LAND,
                "MIN": MPI.LAND, "BAND": MPI.LAND, "BXOR": MPI.LXOR}[n]
    if n in ("BAND", "BOR", "BXOR") and dtype.kind == "f":
        raise RuntimeError(f"Cannot use ReduceOp.{n} with a floating point tensor")
    return {"SUM": MPI.SUM, "AVG": MPI.SUM, "PRODUCT": MPI.PROD, "MIN": MPI.MIN, "MAX": MPI.MAX,
            "BAND": MPI.BAND, "BOR": MPI.BOR, "BXOR": MPI.BXOR}[n]


def _red_io(t, name="tensor"):
    """Like _io, for reductions: float16 reduces in float32."""
    a = _check_tensor(t, name)._data
    if a.dtype == np.float16:
        tmp = a.astype(np.float32)
        return tmp, (lambda: np.copyto(a, tmp, casting="unsafe"))
    return _io(t, name)


def _typed(a):
    MPI = _MPI
    if a.dtype == np.bool_:
        return [a, MPI.C_BOOL]
    return a


def _average(buf, n, op):
    if op is ReduceOp.AVG and buf.dtype != np.bool_:
        if buf.dtype.kind == "f":
            buf *= 1.0 / n if buf.dtype == np.float64 else buf.dtype.type(1.0 / n)
        else:
            np.copyto(buf, np.trunc(buf / n), casting="unsafe")


def _root(pg, src, group_src, what):
    if group_src is not None:
        return int(group_src)
    if src is None:
        raise ValueError(f"{what}: give src/dst (a global rank) or group_src/group_dst")
    return pg.group_rank(src)


def _finisher(tensors, writebacks=(), extra=None):
    def fin():
        if extra is not None:
            extra()
        for wb in writebacks:
            if wb is not None:
                wb()
        for t in tensors:
            t._bump()
    return fin


# ----------------------------------------------------------------------------- collectives


def barrier(group=None, async_op=False, device_ids=None):
    pg = _resolve(group)
    if pg is None:
        return None
    return _done(Work([pg.comm.Ibarrier()], None, pg, "barrier"), async_op)


def monitored_barrier(group=None, timeout=None, wait_all_ranks=False):
    pg = _resolve(group)
    if pg is None:
        return None
    Work([pg.comm.Ibarrier()], None, pg, "monitored_barrier").wait(timeout)


def broadcast(tensor, src=None, group=None, async_op=False, group_src=None):
    pg = _resolve(group)
    if pg is None:
        return None
    root = _root(pg, src, group_src, "broadcast")
    a, wb = _io(tensor)
    req = pg.comm.Ibcast(_raw(a), root=root)
    fin = _finisher([tensor], [wb]) if pg.rank() != root else None
    return _done(Work([req], fin, pg, "broadcast"), async_op)


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    pg = _resolve(group)
    if pg is None:
        return None
    buf, wb = _red_io(tensor)
    req = pg.comm.Iallreduce(_MPI.IN_PLACE, _typed(buf), op=_mpi_op(op, buf.dtype))
    return _done(Work([req], _finisher([tensor], [wb], lambda: _average(buf, pg.size(), op)), pg, "all_reduce"),
                 async_op)


def reduce(tensor, dst=None, op=ReduceOp.SUM, group=None, async_op=False, group_dst=None):
    pg = _resolve(group)
    if pg is None:
        return None
    root = _root(pg, dst, group_dst, "reduce")
    buf, wb = _red_io(tensor)
    mop = _mpi_op(op, buf.dtype)
    if pg.rank() == root:
        req = pg.comm.Ireduce(_MPI.IN_PLACE, _typed(buf), op=mop, root=root)
        fin = _finisher([tensor], [wb], lambda: _average(buf, pg.size(), op))
    else:
        req = pg.comm.Ireduce(_typed(buf), None, op=mop, root=root)
        fin = None
    return _done(Work([req], fin, pg, "reduce"), async_op)


def _check_list(lst, n, name):
    if not isinstance(lst, (list, tuple)) or len(lst) != n:
        raise ValueError(f"{name} must be a list of {n} tensors (the group's size), got "
                         f"{len(lst) if isinstance(lst, (list, tuple)) else type(lst).__name__}")


def all_gather(tensor_list, tensor, group=None, async_op=False):
    pg = _resolve(group)
    if pg is None:
        return None
    n = pg.size()
    _check_list(tensor_list, n, "tensor_list")
    a, _ = _io(tensor)
    for o in tensor_list:
        _check_tensor(o, "tensor_list")
        if o._data.size != a.size or o._data.dtype != a.dtype:
            raise ValueError(f"all_gather: every output must have the input's numel ({a.size}) and dtype "
                             f"({a.dtype}); got {tuple(o._data.shape)} {o._data.dtype}")
    out = np.empty((n, a.size), a.dtype)
    req = pg.comm.Iallgather(_raw(a), _raw(out))

    def fin():
        for i, o in enumerate(tensor_list):
            np.copyto(o._data, out[i].reshape(o._data.shape))
            o._bump()
    return _done(Work([req], fin, pg, "all_gather"), async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    pg = _resolve(group)
    if pg is None:
        return None
    a, _ = _io(input_tensor, "input_tensor")
    o, wb = _io(output_tensor, "output_tensor")
    if o.size != a.size * pg.size() or o.dtype != a.dtype:
        raise ValueError(f"all_gather_into_tensor: output must hold world_size * input numel "
                         f"({pg.size()} * {a.size}) elements of {a.dtype}; got {o.size} of {o.dtype}")
    req = pg.comm.Iallgather(_raw(a), _raw(o))
    return _done(Work([req], _finisher([output_tensor], [wb]), pg, "all_gather_into_tensor"), async_op)


def _reduce_scatter_flat(output_tensor, send, op, pg, what):
    o, wb = _red_io(output_tensor, "output")
    if send.size != o.size * pg.size():
        raise ValueError(f"{what}: input must hold world_size * output numel ({pg.size()} * {o.size}) elements, "
                         f"got {send.size}")
    send = np.ascontiguousarray(send, dtype=o.dtype)
    req = pg.comm.Ireduce_scatter_block(_typed(send), _typed(o), op=_mpi_op(op, o.dtype))
    return Work([req], _finisher([output_tensor], [wb], lambda: _average(o, pg.size(), op)), pg, what)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    pg = _resolve(group)
    if pg is None:
        return None
    _check_list(input_list, pg.size(), "input_list")
    send = np.concatenate([_check_tensor(t, "input_list")._data.reshape(-1) for t in input_list])
    return _done(_reduce_scatter_flat(output, send, op, pg, "reduce_scatter"), async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    pg = _resolve(group)
    if pg is None:
        return None
    return _done(_reduce_scatter_flat(output, _check_tensor(input, "input")._data.reshape(-1), op, pg,
                                      "reduce_scatter_tensor"), async_op)


def scatter(tensor, scatter_list=None, src=None, group=None, async_op=False, group_src=None):
    pg = _resolve(group)
    if pg is None:
        return None
    root = _root(pg, 0 if src is None and group_src is None else src, group_src, "scatter")
    o, wb = _io(tensor)
    if pg.rank() == root:
        _check_list(scatter_list, pg.size(), "scatter_list")
        for t in scatter_list:
            if _check_tensor(t, "scatter_list")._data.size != o.size or t._data.dtype != o.dtype:
                raise ValueError("scatter: every tensor of scatter_list must have the output's numel and dtype")
        send = np.concatenate([t._data.reshape(-1) for t in scatter_list])
        req = pg.comm.Iscatter(_raw(send), _raw(o), root=root)
    else:
        if scatter_list:
            raise ValueError("scatter: scatter_list must be empty on non-source ranks")
        req = pg.comm.Iscatter(None, _raw(o), root=root)
    return _done(Work([req], _finisher([tensor], [wb]), pg, "scatter"), async_op)


def gather(tensor, gather_list=None, dst=None, group=None, async_op=False, group_dst=None):
    pg = _resolve(group)
    if pg is None:
        return None
    root = _root(pg, 0 if dst is None and group_dst is None else dst, group_dst, "gather")
    a, _ = _io(tensor)
    if pg.rank() == root:
        _check_list(gather_list, pg.size(), "gather_list")
        out = np.empty((pg.size(), a.size), a.dtype)
        req = pg.comm.Igather(_raw(a), _raw(out), root=root)

        def fin():
            for i, o in enumerate(gather_list):
                np.copyto(o._data, out[i].reshape(o._data.shape))
                o._bump()
    else:
        if gather_list:
            raise ValueError("gather: gather_list must be empty on non-destination ranks")
        req = pg.comm.Igather(_raw(a), None, root=root)
        fin = None
    return _done(Work([req], fin, pg, "gather"), async_op)


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None, group=None, async_op=False):
    pg = _resolve(group)
    if pg is None:
        return None
    n = pg.size()
    a, _ = _io(input, "input")
    o, wb = _io(output, "output")
    if output_split_sizes is None and input_split_sizes is None:
        if a.size % n or o.size != a.size:
            raise ValueError("all_to_all_single: input and output must have the same numel, divisible by world size")
        req = pg.comm.Ialltoall(_raw(a), _raw(o))
    else:
        def counts(t, arr, splits):
            row = (arr.size // t.shape[0] if t.dim() and t.shape[0] else 0) * arr.itemsize
            if splits is None:
                splits = [t.shape[0] // n] * n
            c = [int(s) * row for s in splits]
            return c, [sum(c[:i]) for i in range(n)]
        sc, sd = counts(input, a, input_split_sizes)
        rc, rd = counts(output, o, output_split_sizes)
        req = pg.comm.Ialltoallv([a.reshape(-1).view(np.uint8), (sc, sd), _MPI.BYTE],
                                 [o.reshape(-1).view(np.uint8), (rc, rd), _MPI.BYTE])
    return _done(Work([req], _finisher([output], [wb]), pg, "all_to_all_single"), async_op)


# ----------------------------------------------------------------------------- point to point


def isend(tensor, dst=None, group=None, tag=0, group_dst=None):
    pg = _resolve(group)
    if pg is None:
        return None
    peer = _root(pg, dst, group_dst, "isend")
    a = np.ascontiguousarray(_check_tensor(tensor)._data)
    return Work([pg.comm.Isend(_raw(a), dest=peer, tag=tag)], None, pg, "send")


def irecv(tensor, src=None, group=None, tag=0, group_src=None):
    pg = _resolve(group)
    if pg is None:
        return None
    peer = _MPI.ANY_SOURCE if src is None and group_src is None else _root(pg, src, group_src, "irecv")
    o, wb = _io(tensor)
    status = _MPI.Status()
    w = Work([pg.comm.Irecv(_raw(o), source=peer, tag=tag)], None, pg, "recv", [status])

    def fin():
        wb and wb()
        tensor._bump()
        w.source = pg.ranks[w._statuses[0].Get_source()]
    w._finish = fin
    return w


def send(tensor, dst=None, group=None, tag=0, group_dst=None):
    w = isend(tensor, dst, group, tag, group_dst)
    if w is not None:
        w.wait()


def recv(tensor, src=None, group=None, tag=0, group_src=None):
    """Receive into ``tensor``; returns the sender's global rank (-1 for a non-member)."""
    w = irecv(tensor, src, group, tag, group_src)
    if w is None:
        return -1
    w.wait()
    return w.source


class P2POp:
    def __init__(self, op, tensor, peer=None, group=None, tag=0, group_peer=None):
        if op not in (isend, irecv):
            raise ValueError("Invalid ``op``. Expected ``op`` to be of type ``jitorch.distributed.isend`` or "
                             "``jitorch.distributed.irecv``.")
        self.op, self.tensor, self.peer, self.group, self.tag, self.group_peer = op, tensor, peer, group, tag, group_peer


def batch_isend_irecv(p2p_op_list):
    works = []
    for p in p2p_op_list:
        works.append(p.op(p.tensor, p.peer, p.group, p.tag, p.group_peer))
    return works


# ----------------------------------------------------------------------------- Python objects
# (mpi4py's lowercase collectives serialize objects between the job's own ranks)


def broadcast_object_list(object_list, src=None, group=None, device=None, group_src=None):
    pg = _resolve(group)
    if pg is None:
        return
    root = _root(pg, 0 if src is None and group_src is None else src, group_src, "broadcast_object_list")
    objs = pg.comm.bcast(list(object_list) if pg.rank() == root else None, root=root)
    object_list[:] = objs


def all_gather_object(object_list, obj, group=None):
    pg = _resolve(group)
    if pg is None:
        return
    object_list[:] = pg.comm.allgather(obj)


def gather_object(obj, object_gather_list=None, dst=None, group=None, group_dst=None):
    pg = _resolve(group)
    if pg is None:
        return
    root = _root(pg, 0 if dst is None and group_dst is None else dst, group_dst, "gather_object")
    res = pg.comm.gather(obj, root=root)
    if pg.rank() == root:
        object_gather_list[:] = res


def scatter_object_list(scatter_object_output_list, scatter_object_input_list=None, src=None, group=None,
                        group_src=None):
    pg = _resolve(group)
    if pg is None:
        return
    root = _root(pg, 0 if src is None and group_src is None else src, group_src, "scatter_object_list")
    scatter_object_output_list[0] = pg.comm.scatter(
        list(scatter_object_input_list) if pg.rank() == root else None, root=root)

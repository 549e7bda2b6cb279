"""Run under ``mpiexec -n N python tests/_dist_worker.py CASE`` by tests/test_distributed.py.

Each case checks its results on every rank against NumPy (or a one-process reference) and raises
on a mismatch; the uncaught exception aborts the MPI job (jitorch.distributed installs the hook),
so the test sees a non-zero exit. Rank 0 prints ``CASE ok`` at the end.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jitorch as torch  # noqa: E402
import jitorch.distributed as dist  # noqa: E402
from jitorch import nn  # noqa: E402


def _close(a, b, tol=1e-6, what=""):
    a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    if a.shape != b.shape or not np.allclose(a, b, rtol=tol, atol=tol):
        raise AssertionError(f"rank {dist.get_rank()} {what}: got\n{a}\nexpected\n{b}")


def _data(r, shape, dtype):
    rs = np.random.RandomState(100 + r)
    if dtype == np.bool_:
        return rs.rand(*shape) > 0.5
    if np.dtype(dtype).kind in "iu":
        return rs.randint(-5, 6, size=shape).astype(dtype)
    return (rs.rand(*shape) * 2 + 0.5).astype(dtype)


def case_collectives():
    dist.init_process_group("mpi")
    r, n = dist.get_rank(), dist.get_world_size()
    assert dist.is_initialized() and n == int(os.environ["WORLD_SIZE"]) and r == int(os.environ["RANK"])
    shape = (3, 4)
    allx = {}
    for dtype in (np.float32, np.float64, np.int64, np.int32, np.float16, np.bool_):
        xs = [_data(k, shape, dtype) for k in range(n)]
        allx[dtype] = xs
        tol = 1e-2 if dtype == np.float16 else 1e-5
        ops = [("SUM", lambda a: np.sum(a, 0)), ("PRODUCT", lambda a: np.prod(a, 0)),
               ("MIN", lambda a: np.min(a, 0)), ("MAX", lambda a: np.max(a, 0))]
        if dtype != np.bool_:
            ops.append(("AVG", (lambda a: np.mean(a, 0)) if np.dtype(dtype).kind == "f"
                        else (lambda a: np.trunc(np.sum(a, 0) / n))))
        else:
            ops = [("SUM", lambda a: np.any(a, 0)), ("MIN", lambda a: np.all(a, 0)),
                   ("MAX", lambda a: np.any(a, 0))]
        for name, ref in ops:
            stack = np.stack(xs).astype(np.float64 if dtype != np.bool_ else np.bool_)
            want = ref(stack)
            for async_op in (False, True):
                t = torch.from_numpy(xs[r].copy())
                v0 = t._version
                w = dist.all_reduce(t, op=getattr(dist.ReduceOp, name), async_op=async_op)
                if async_op:
                    assert w.wait() is True and w.is_completed()
                assert t._version > v0, "all_reduce must bump the version"
                _close(t.numpy().astype(want.dtype), want, tol, f"all_reduce {name} {np.dtype(dtype)}")
                # reduce to rank n-1
                t = torch.from_numpy(xs[r].copy())
                w = dist.reduce(t, dst=n - 1, op=getattr(dist.ReduceOp, name), async_op=async_op)
                if async_op:
                    w.wait()
                if r == n - 1:
                    _close(t.numpy().astype(want.dtype), want, tol, f"reduce {name} {np.dtype(dtype)}")
    # bitwise ops on ints
    xs = allx[np.int64]
    for name, f in (("BAND", np.bitwise_and), ("BOR", np.bitwise_or), ("BXOR", np.bitwise_xor)):
        t = torch.from_numpy(xs[r].copy())
        dist.all_reduce(t, op=getattr(dist.ReduceOp, name))
        _close(t, f.reduce(np.stack(xs), 0), 0, f"all_reduce {name}")
    # non-contiguous tensor (a transposed view): written back through the view
    base = torch.from_numpy(_data(r, (4, 3), np.float64))
    tv = base.t()
    dist.all_reduce(tv)
    _close(base, np.sum([_data(k, (4, 3), np.float64) for k in range(n)], 0), 1e-12, "all_reduce non-contiguous")
    # zero copy: the tensor's own buffer is what MPI wrote into
    t = torch.from_numpy(_data(r, (5,), np.float64))
    buf = t._data
    dist.all_reduce(t)
    assert t._data is buf
    xs = allx[np.float32]
    for async_op in (False, True):
        # broadcast from the last rank
        t = torch.from_numpy(xs[r].copy())
        w = dist.broadcast(t, src=n - 1, async_op=async_op)
        w and w.wait()
        _close(t, xs[n - 1], 0, "broadcast")
        # all_gather
        outs = [torch.zeros(3, 4) for _ in range(n)]
        w = dist.all_gather(outs, torch.from_numpy(xs[r]), async_op=async_op)
        w and w.wait()
        for k in range(n):
            _close(outs[k], xs[k], 0, "all_gather")
        out = torch.zeros(n * 3, 4)
        w = dist.all_gather_into_tensor(out, torch.from_numpy(xs[r]), async_op=async_op)
        w and w.wait()
        _close(out, np.concatenate(xs), 0, "all_gather_into_tensor")
        out = torch.zeros(n, 3, 4)
        dist.all_gather_into_tensor(out, torch.from_numpy(xs[r]))
        _close(out, np.stack(xs), 0, "all_gather_into_tensor stacked")
        # reduce_scatter: input_list[k] on every rank -> sum lands on rank k
        ins = [torch.from_numpy(_data(10 * r + k, (2, 3), np.float32)) for k in range(n)]
        out = torch.zeros(2, 3)
        w = dist.reduce_scatter(out, ins, op=dist.ReduceOp.SUM, async_op=async_op)
        w and w.wait()
        _close(out, np.sum([_data(10 * k + r, (2, 3), np.float32) for k in range(n)], 0), 1e-5, "reduce_scatter")
        big = torch.from_numpy(np.concatenate([_data(10 * r + k, (2, 3), np.float32) for k in range(n)]))
        out = torch.zeros(2, 3)
        dist.reduce_scatter_tensor(out, big, op=dist.ReduceOp.AVG)
        _close(out, np.mean([_data(10 * k + r, (2, 3), np.float32) for k in range(n)], 0), 1e-5,
               "reduce_scatter_tensor AVG")
        # scatter from rank 0
        out = torch.zeros(3, 4)
        w = dist.scatter(out, [torch.from_numpy(x) for x in xs] if r == 0 else None, src=0, async_op=async_op)
        w and w.wait()
        _close(out, xs[r], 0, "scatter")
        # gather to the last rank
        gl = [torch.zeros(3, 4) for _ in range(n)] if r == n - 1 else None
        w = dist.gather(torch.from_numpy(xs[r]), gl, dst=n - 1, async_op=async_op)
        w and w.wait()
        if r == n - 1:
            for k in range(n):
                _close(gl[k], xs[k], 0, "gather")
        w = dist.barrier(async_op=async_op)
        w and w.wait()
    # point to point: a ring
    t = torch.from_numpy(xs[r].copy())
    got = torch.zeros(3, 4)
    if n > 1:
        sw = dist.isend(t, dst=(r + 1) % n)
        src = dist.recv(got, src=(r - 1) % n)
        sw.wait()
        assert src == (r - 1) % n
        _close(got, xs[(r - 1) % n], 0, "send/recv")
        # recv from any source
        if r == 0:
            got = torch.zeros(3, 4)
            src = dist.recv(got)
            assert src == n - 1
            _close(got, xs[n - 1], 0, "recv ANY_SOURCE")
        elif r == n - 1:
            dist.send(torch.from_numpy(xs[r]), dst=0)
        ops = [dist.P2POp(dist.isend, torch.from_numpy(xs[r]), (r + 1) % n),
               dist.P2POp(dist.irecv, got, (r - 1) % n)]
        for w in dist.batch_isend_irecv(ops):
            w.wait()
        _close(got, xs[(r - 1) % n], 0, "batch_isend_irecv")
    # all_to_all_single
    inp = torch.from_numpy(np.stack([_data(10 * r + k, (2,), np.float64) for k in range(n)]))
    out = torch.zeros(n, 2, dtype=torch.float64)
    dist.all_to_all_single(out, inp)
    _close(out, np.stack([_data(10 * k + r, (2,), np.float64) for k in range(n)]), 0, "all_to_all_single")
    # objects
    objs = [{"rank": r}, None]
    dist.broadcast_object_list(objs, src=0)
    assert objs == [{"rank": 0}, None], objs
    allo = [None] * n
    dist.all_gather_object(allo, ("r", r))
    assert allo == [("r", k) for k in range(n)]
    # sub-groups: the even ranks; non-members get NON_GROUP_MEMBER and collectives return None
    g = dist.new_group([k for k in range(n) if k % 2 == 0])
    t = torch.tensor([float(r)])
    if r % 2 == 0:
        assert dist.get_world_size(g) == (n + 1) // 2 and dist.get_rank(g) == r // 2
        dist.all_reduce(t, group=g)
        _close(t, [float(sum(range(0, n, 2)))], 0, "all_reduce on a group")
        dist.broadcast(t, src=0, group=g)
    else:
        assert g is dist.GroupMember.NON_GROUP_MEMBER and dist.get_rank(g) == -1
        assert dist.all_reduce(t, group=g) is None
    dist.destroy_process_group(g)
    # errors that need no peer
    try:
        dist.all_reduce(torch.ones(2), op="sum")
    except ValueError:
        pass
    else:
        raise AssertionError("op must be a ReduceOp")
    try:
        dist.all_reduce(torch.ones(2), op=dist.ReduceOp.BAND)
    except RuntimeError:
        pass
    else:
        raise AssertionError("BAND on floats must raise")
    dist.barrier()
    dist.destroy_process_group()
    assert not dist.is_initialized()


class _Net(nn.Module):
    def __init__(self, extra):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
        if extra:
            self.unused = nn.Linear(3, 3)  # never called in forward

    def forward(self, x):
        return self.body(x)


def _mlp(extra=False):
    torch.manual_seed(0)
    return _Net(extra)


def _train(model, xs, ys, steps, lr=0.1, accumulate=1, ddp=None, set_to_none=True, each_step=None):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for s in range(steps):
        opt.zero_grad(set_to_none=set_to_none)
        for a in range(accumulate):
            x, y = xs[s][a], ys[s][a]
            ctx = ddp.no_sync() if (ddp is not None and a < accumulate - 1) else _null()
            with ctx:
                loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y)) / accumulate
                loss.backward()
        if each_step is not None:
            each_step(s)
        opt.step()
    return model


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def case_ddp():
    from jitorch.nn.parallel import DistributedDataParallel as DDP
    dist.init_process_group("mpi")
    r, n = dist.get_rank(), dist.get_world_size()
    assert nn.DistributedDataParallel is DDP
    steps, per_rank, accumulate = 6, 4, 1
    rs = np.random.RandomState(7)
    X = rs.randn(steps, 1, per_rank * n, 5).astype(np.float32)
    Y = rs.randint(0, 3, size=(steps, 1, per_rank * n)).astype(np.int64)
    for extra, find_unused, bucket_mb, accumulate in ((False, False, None, 1), (False, False, 0.0001, 1),
                                                      (True, True, 0.0001, 1), (False, False, 0.0002, 3)):
        rs = np.random.RandomState(11)
        X = rs.randn(steps, accumulate, per_rank * n, 5).astype(np.float32)
        Y = rs.randint(0, 3, size=(steps, accumulate, per_rank * n)).astype(np.int64)
        # reference: one process, whole batch
        ref = _train(_mlp(extra), X, Y, steps, accumulate=accumulate)
        # DDP: each rank a contiguous shard; rank != 0 starts from different weights (broadcast fixes it)
        model = _mlp(extra)
        if r != 0:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1.0)
        ddp = DDP(model, find_unused_parameters=find_unused, bucket_cap_mb=bucket_mb)
        assert ddp.module is model
        if bucket_mb is not None:
            assert len(ddp.reducer.buckets) > 1
        sl = slice(r * per_rank, (r + 1) * per_rank)
        _train(ddp, X[:, :, sl], Y[:, :, sl], steps, accumulate=accumulate, ddp=ddp)
        for (name, p), q in zip(model.named_parameters(), ref.parameters()):
            if extra and name.startswith("unused"):
                assert p.grad is None, "a parameter unused on every rank keeps grad None"
                continue
            _close(p.detach(), q.detach(), 1e-5, f"DDP param {name} (find_unused={find_unused}, acc={accumulate})")
        sd = ddp.state_dict()
        assert all(k.startswith("module.") for k in sd), list(sd)
    # buffers are broadcast from rank 0 at construction and every forward
    bn = nn.BatchNorm1d(5)
    with torch.no_grad():
        bn.running_mean.fill_(float(r))
    ddp = DDP(bn)
    _close(bn.running_mean, np.zeros(5), 0, "buffer broadcast at construction")
    with torch.no_grad():
        bn.running_mean.fill_(float(r + 1))
    ddp.eval()
    ddp(torch.ones(2, 5))
    _close(bn.running_mean, np.ones(5), 0, "buffer broadcast in forward")
    # a parameter unused without find_unused_parameters: the next forward says so
    m = _mlp(True)
    ddp = DDP(m)
    out = ddp(torch.randn(2, 5))
    out.sum().backward()
    try:
        ddp(torch.randn(2, 5))
    except RuntimeError as e:
        assert "find_unused_parameters" in str(e)
    else:
        raise AssertionError("expected the unfinished-reduction error")
    # DataParallel runs the module (on cuda:0 when a device or the simulator is there, else on cpu)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dp = nn.DataParallel(_mlp().to(dev))
    x = torch.randn(3, 5)
    _close(dp(x).detach().cpu(), dp.module(x.to(dev)).detach().cpu(), 0, "DataParallel")
    dist.destroy_process_group()


class _CommSpy:
    """Wraps an mpi4py communicator and records the reducer's Iallreduce calls."""

    def __init__(self, comm):
        self.comm = comm
        self.calls = []

    def Iallreduce(self, sbuf, rbuf, op):  # noqa: N802 (mpi4py's name)
        self.calls.append((sbuf, rbuf))
        return self.comm.Iallreduce(sbuf, rbuf, op=op)

    def __getattr__(self, name):
        return getattr(self.comm, name)


def _spy_on(ddp):
    import copy
    pg = copy.copy(ddp.reducer.pg)
    pg.comm = spy = _CommSpy(pg.comm)
    ddp.reducer.pg = pg
    return spy


def case_ddp_views():
    """The reducer's buffers: gradients are all-reduced in place in preallocated flat buckets (the
    same arrays every step, MPI.IN_PLACE); with gradient_as_bucket_view=True each param.grad is a
    view of its bucket (zero_grad(set_to_none=False) then accumulates straight into it, no_sync
    included), without it param.grad is a tensor of its own that keeps its identity. Either way
    the parameters and the gradients equal one process training on the whole batch (2 and 3 ranks:
    the 1/world factor is applied before the sum)."""
    from mpi4py import MPI

    from jitorch.nn.parallel import DistributedDataParallel as DDP
    dist.init_process_group("mpi")
    r, n = dist.get_rank(), dist.get_world_size()
    steps, per_rank = 5, 3
    for view, set_to_none, bucket_mb, accumulate in ((True, True, None, 1), (True, False, 0.0001, 1),
                                                     (True, False, 0.0002, 3), (False, False, None, 2),
                                                     (False, True, 0.0001, 1)):
        rs = np.random.RandomState(5)
        X = rs.randn(steps, accumulate, per_rank * n, 5).astype(np.float32)
        Y = rs.randint(0, 3, size=(steps, accumulate, per_rank * n)).astype(np.int64)
        ref_model = _mlp()
        ref_grads = []
        _train(ref_model, X, Y, steps, accumulate=accumulate, set_to_none=set_to_none,
               each_step=lambda s: ref_grads.append([p.grad.numpy().copy() for p in ref_model.parameters()]))
        model = _mlp()
        ddp = DDP(model, bucket_cap_mb=bucket_mb, gradient_as_bucket_view=view)
        spy = _spy_on(ddp)
        flats = [b.flat for b in ddp.reducer.buckets]
        grad_objs = []

        def check(s):
            what = f"(view={view}, set_to_none={set_to_none}, bucket_mb={bucket_mb}, acc={accumulate}, step {s})"
            for p, g in zip(model.parameters(), ref_grads[s]):
                _close(p.grad, g, 1e-5, "DDP grad " + what)
            owner = {id(p): b for b in ddp.reducer.buckets for p in b.params}
            for p in model.parameters():
                shares = np.shares_memory(p.grad._data, owner[id(p)].flat)
                if shares != view:
                    raise AssertionError(f"param.grad shares the bucket: {shares} {what}")
            grad_objs.append([id(p.grad) for p in model.parameters()])
        sl = slice(r * per_rank, (r + 1) * per_rank)
        _train(ddp, X[:, :, sl], Y[:, :, sl], steps, accumulate=accumulate, ddp=ddp, set_to_none=set_to_none,
               each_step=check)
        for p, q in zip(model.parameters(), ref_model.parameters()):
            _close(p.detach(), q.detach(), 1e-5, f"DDP param (view={view})")
        # in place: one Iallreduce per bucket and step, IN_PLACE on the bucket's own buffer
        nb = len(ddp.reducer.buckets)
        assert (bucket_mb is None) == (nb == 1), nb
        assert len(spy.calls) == steps * nb, (len(spy.calls), steps, nb)
        for k, (sbuf, rbuf) in enumerate(spy.calls):
            assert sbuf is MPI.IN_PLACE and rbuf is flats[k % nb], "the bucket must be all-reduced in place"
        assert all(b.flat is f for b, f in zip(ddp.reducer.buckets, flats))
        if not set_to_none:  # the grad tensors live on: views once set (view) or copied into (no view)
            assert all(g == grad_objs[0] for g in grad_objs), "param.grad was replaced"
    dist.destroy_process_group()


def case_ddp_one_rank():
    """A world of one rank: DDP trains exactly like the bare module and sends nothing, but still
    reports a parameter that got no gradient (torch's unfinished-reduction error)."""
    from jitorch.nn.parallel import DistributedDataParallel as DDP
    dist.init_process_group("mpi")
    assert dist.get_world_size() == 1
    rs = np.random.RandomState(3)
    X = rs.randn(4, 2, 6, 5).astype(np.float32)
    Y = rs.randint(0, 3, size=(4, 2, 6)).astype(np.int64)
    ref = _train(_mlp(), X, Y, 4, accumulate=2)
    for view in (False, True):
        model = _mlp()
        ddp = DDP(model, gradient_as_bucket_view=view, bucket_cap_mb=0.0001)
        spy = _spy_on(ddp)
        _train(ddp, X, Y, 4, accumulate=2, ddp=ddp)
        for p, q in zip(model.parameters(), ref.parameters()):
            _close(p.detach(), q.detach(), 0, "DDP on one rank")
        assert spy.calls == [], "a world of one has nothing to all-reduce"
    ddp = DDP(_mlp(True))
    ddp(torch.randn(2, 5)).sum().backward()
    try:
        ddp(torch.randn(2, 5))
    except RuntimeError as e:
        assert "find_unused_parameters" in str(e)
    else:
        raise AssertionError("expected the unfinished-reduction error on one rank too")
    m = _mlp(True)
    ddp = DDP(m, find_unused_parameters=True)
    for _ in range(2):
        ddp(torch.randn(2, 5)).sum().backward()
    assert m.unused.weight.grad is None and m.body[0].weight.grad is not None
    dist.destroy_process_group()


def case_sampler_ddp():
    """DistributedSampler + DataLoader under MPI: the ranks' shards partition the dataset."""
    from jitorch.utils.data import DataLoader, DistributedSampler, TensorDataset
    dist.init_process_group("mpi")
    r, n = dist.get_rank(), dist.get_world_size()
    ds = TensorDataset(torch.arange(22))
    s = DistributedSampler(ds, shuffle=True, seed=3)
    s.set_epoch(2)
    mine = [int(v) for b in DataLoader(ds, batch_size=4, sampler=s) for v in b[0].tolist()]
    allm = [None] * n
    dist.all_gather_object(allm, mine)
    flat = sorted(v for m in allm for v in m)
    assert set(flat) == set(range(22)) and len(flat) == s.total_size, flat
    dist.destroy_process_group()


def case_raise():
    """Rank 1 raises while rank 0 waits in a collective: the job must end quickly, not hang."""
    dist.init_process_group("mpi")
    if dist.get_rank() == 1:
        raise RuntimeError("boom on rank 1")
    dist.all_reduce(torch.ones(3))
    time.sleep(60)


def case_exit():
    """Rank 1 calls sys.exit(3) (argparse errors do) while rank 0 waits: the job ends, not hangs."""
    dist.init_process_group("mpi")
    if dist.get_rank() == 1:
        sys.exit(3)
    dist.all_reduce(torch.ones(3))
    time.sleep(60)


def case_timeout():
    """Rank 1 never joins: rank 0's collective times out (DistBackendError) and aborts the job."""
    dist.init_process_group("mpi", timeout=2)
    if dist.get_rank() == 1:
        time.sleep(60)
    dist.all_reduce(torch.ones(3))
    time.sleep(60)


if __name__ == "__main__":
    case = sys.argv[1]
    globals()["case_" + case]()
    from mpi4py import MPI
    MPI.COMM_WORLD.Barrier()
    if MPI.COMM_WORLD.Get_rank() == 0:
        print(f"{case} ok", flush=True)

"""torch.nn.parallel.DistributedDataParallel on jitorch.distributed (MPI).

- construction: checks that every rank wraps the same parameter shapes, then broadcasts the
  parameters and buffers from rank 0;
- forward: broadcasts buffers from rank 0 (``broadcast_buffers=True``), runs the module, and arms
  the reducer (with ``find_unused_parameters=True`` it walks the autograd graph from the outputs
  and marks the parameters it does not reach as ready);
- backward: a post-accumulate-grad hook on each parameter marks it ready; parameters are grouped
  into buckets (reverse registration order, about ``bucket_cap_mb`` each, the first one small so
  communication starts early); a bucket whose parameters are all ready is copied into its flat
  buffer and all-reduced with a non-blocking ``Iallreduce``, buckets always launched in index
  order so every rank issues the same sequence. When the last bucket has been launched (which is
  the end of backward for the module's parameters) the reducer waits for all of them, divides by
  the world size and writes the averaged gradients into each ``param.grad`` — so they are final
  before ``optimizer.step()``;
- ``no_sync()``: backward inside it accumulates local gradients only; the next synchronized
  backward all-reduces the accumulated sum.
"""
from __future__ import annotations

import contextlib
import time
import weakref

import numpy as np

from ..modules.module import Module

_FIRST_BUCKET_BYTES = 1024 * 1024


def _tensors_in(obj, out):
    from ...tensor import Tensor
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _tensors_in(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _tensors_in(o, out)
    elif hasattr(obj, "__dataclass_fields__"):
        for k in obj.__dataclass_fields__:
            _tensors_in(getattr(obj, k), out)
    return out


def _reachable_leaves(outputs):
    """ids of the leaf tensors the autograd graph of ``outputs`` reaches."""
    from ...autograd.graph import AccumulateGrad
    seen, found = set(), set()
    stack = []
    for t in _tensors_in(outputs, []):
        if t.grad_fn is not None:
            stack.append(t.grad_fn)
        elif t.requires_grad:
            found.add(id(t))
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if type(n) is AccumulateGrad:
            found.add(id(n.variable))
            continue
        for e in n.next:
            if e is not None and e[0] is not None:
                stack.append(e[0])
    return found


class _Bucket:
    """Consecutive parameters of one dtype and their flat buffer. ``views[k]`` is parameter ``k``'s
    slice of ``flat`` in the parameter's shape; ``grads[k]`` (gradient_as_bucket_view) the tensor
    over that slice that becomes ``param.grad``."""
    __slots__ = ("params", "indices", "offsets", "flat", "views", "grads", "pending")

    def __init__(self, params, indices, dtype):
        self.params = params
        self.indices = indices
        self.offsets = np.cumsum([0] + [p._data.size for p in params]).tolist()
        self.flat = np.zeros(self.offsets[-1], dtype)
        self.views = [self.flat[self.offsets[k]:self.offsets[k + 1]].reshape(p._data.shape)
                      for k, p in enumerate(params)]
        self.grads = [None] * len(params)
        self.pending = len(params)


class _Reducer:
    """Gradient averaging for DistributedDataParallel.

    Per iteration: each parameter's post-accumulate-grad hook copies its gradient, multiplied by
    ``1/world`` (torch's reducer divides before the sum as well), into its bucket's flat buffer
    while the gradient is hot in cache; a bucket whose parameters are all ready is all-reduced in
    place (``Iallreduce(IN_PLACE)``, SUM), buckets launched in index order. When the last bucket is
    launched the reducer waits once for all of them and hands the averages back: with
    ``gradient_as_bucket_view`` each ``param.grad`` becomes a view of its bucket (no copy; a grad
    that already is that view, as with ``zero_grad(set_to_none=False)``, accumulated in place and
    needs no copy into the bucket either), otherwise the bucket is copied into ``param.grad``.

    A world of one rank has nothing to average: the hooks only track readiness (for the
    unfinished-reduction error) and no buffer is touched.
    """

    def __init__(self, params, pg, bucket_bytes, find_unused, grad_as_view=False):
        self.params = params
        self.pg = pg
        self.world = pg.size()
        self.scale = 1.0 / self.world
        self.find_unused = find_unused
        self.grad_as_view = grad_as_view
        self.buckets = []
        self.slots = [None] * len(params)  # parameter index -> (its bucket, its view of the bucket)
        # buckets: reverse registration order (roughly the order backward produces gradients)
        open_by_dtype = {}
        cap = min(_FIRST_BUCKET_BYTES, bucket_bytes)
        order = []
        for i in reversed(range(len(params))):
            p = params[i]
            dt = np.float32 if p._data.dtype == np.float16 else p._data.dtype
            cur = open_by_dtype.setdefault(np.dtype(dt).str, [[], 0, dt])
            cur[0].append(i)
            cur[1] += p._data.nbytes
            if cur[1] >= cap:
                order.append(cur)
                del open_by_dtype[np.dtype(dt).str]
                cap = bucket_bytes
        order.extend(open_by_dtype.values())
        for idxs, _, dt in order:
            b = _Bucket([params[i] for i in idxs], idxs, dt)
            for k, i in enumerate(idxs):
                self.slots[i] = (b, b.views[k])
            self.buckets.append(b)
        # (param, index, bucket view, bucket, slot) in bucket order, for the hand-back loop
        self.entries = [(p, i, b.views[k], b, k)
                        for b in self.buckets for k, (p, i) in enumerate(zip(b.params, b.indices))]
        self.expect = False
        self.ready = [False] * len(params)
        self.used = [0] * len(params)
        self.next_bucket = 0
        self.reqs = []
        self.num_ready = 0
        self.wait_s = 0.0      # seconds spent waiting for the all-reduces (benchmarks read them)
        self.wait_cpu_s = 0.0  # CPU seconds of this thread spent in those waits (polling)
        self.handles = []
        ref = weakref.ref(self)

        def make_hook(i):
            def hook(p):
                r = ref()
                if r is not None and r.expect:
                    r._on_grad(i, p)
            return hook
        for i, p in enumerate(params):
            self.handles.append(p.register_post_accumulate_grad_hook(make_hook(i)))

    def remove_hooks(self):
        for h in self.handles:
            h.remove()
        self.handles = []

    # ---------------------------------------------------------------- per iteration
    def prepare_forward(self):
        if self.expect and self.num_ready > 0:
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a new one. This error "
                "indicates that your module has parameters that were not used in producing loss. You can enable "
                "unused parameter detection by passing the keyword argument `find_unused_parameters=True` to "
                "`jitorch.nn.parallel.DistributedDataParallel`, and by making sure all `forward` function outputs "
                "participate in calculating loss. Parameters that did not receive a gradient on this rank: "
                + str([i for i, r in enumerate(self.ready) if not r]))

    def prepare_backward(self, outputs):
        self.expect = True
        self.ready = [False] * len(self.params)
        self.num_ready = 0
        self.next_bucket = 0
        self.reqs = []
        for b in self.buckets:
            b.pending = len(b.params)
        if self.find_unused:
            self.used = [0] * len(self.params)
            reached = _reachable_leaves(outputs)
            for i, p in enumerate(self.params):
                if id(p) not in reached:
                    self._mark(i, None)

    def _on_grad(self, i, p):
        if self.ready[i]:
            raise RuntimeError(
                f"Expected to mark a variable ready only once (parameter index {i}). This happens when a parameter "
                "takes part in several backward passes of one forward (retain_graph / reentrant checkpointing), or "
                "when find_unused_parameters=True marked it unused but it received a gradient anyway.")
        self._mark(i, p)

    def _mark(self, i, p):
        """Parameter ``i`` is ready: ``p`` when it got a gradient, None when it is unused."""
        self.ready[i] = True
        self.num_ready += 1
        b, sl = self.slots[i]
        if self.world > 1:
            g = None if p is None else p.grad
            if g is None:
                sl[...] = 0
            else:
                ga = g._data
                if ga is sl:         # the grad is this bucket view and accumulated in place
                    sl *= sl.dtype.type(self.scale)
                else:
                    np.multiply(ga, sl.dtype.type(self.scale), out=sl, casting="unsafe")
        if p is not None:
            self.used[i] = 1
        b.pending -= 1
        if b.pending == 0:
            self._launch_ready()

    def _launch_ready(self):
        buckets = self.buckets
        if self.world > 1:
            MPI = _core_module()._MPI
            while self.next_bucket < len(buckets) and buckets[self.next_bucket].pending == 0:
                self.reqs.append(self.pg.comm.Iallreduce(MPI.IN_PLACE, buckets[self.next_bucket].flat, op=MPI.SUM))
                self.next_bucket += 1
        else:
            while self.next_bucket < len(buckets) and buckets[self.next_bucket].pending == 0:
                self.next_bucket += 1
        if self.next_bucket == len(buckets):
            self._finalize()

    def _finalize(self):
        self.expect = False
        self.num_ready = 0
        if self.world == 1:
            return  # a world of one: every gradient already is its own average
        core = _core_module()
        MPI = core._MPI
        if self.find_unused:
            used = np.array(self.used, np.int32)
            self.reqs.append(self.pg.comm.Iallreduce(MPI.IN_PLACE, used, op=MPI.SUM))
        t0, c0 = time.perf_counter(), time.thread_time()
        core._wait_requests(self.reqs, self.pg.timeout, "DistributedDataParallel gradient all-reduce")
        self.wait_s += time.perf_counter() - t0
        self.wait_cpu_s += time.thread_time() - c0
        self.reqs = []
        as_view = self.grad_as_view
        find_unused = self.find_unused
        for p, i, sl, b, k in self.entries:
            if find_unused and used[i] == 0:
                continue  # unused on every rank: the gradient stays as it was (None)
            g = p.grad
            if g is not None and g._data is sl:
                g._bump()
            elif as_view and sl.dtype == p._data.dtype:
                t = b.grads[k]
                if t is None:
                    t = b.grads[k] = _from_numpy(sl)
                else:
                    t._bump()
                p.grad = t
            elif g is None:
                p.grad = _from_numpy(sl.astype(p._data.dtype))
            else:
                np.copyto(g._data, sl, casting="unsafe")
                g._bump()


def _core_module():
    from ...distributed import _core
    return _core


def _from_numpy(a):
    from ..._creation import from_numpy
    return from_numpy(a)


class DistributedDataParallel(Module):
    """Data parallelism across MPI ranks (torch.nn.parallel.DistributedDataParallel).

    Gradients are averaged across the ranks of ``process_group`` (the world by default) during
    ``backward``; each rank feeds its own shard of the batch (see
    :class:`jitorch.utils.data.distributed.DistributedSampler`). ``device_ids``/``output_device``
    must be None or CPU (jitorch has no CUDA). ``gradient_as_bucket_view``, ``static_graph`` and
    ``check_reduction`` are accepted for compatibility and have no effect.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True, init_sync=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False, delay_all_reduce_named_params=None,
                 param_to_hook_all_reduce=None, mixed_precision=None, device_mesh=None):
        super().__init__()
        from ... import distributed as dist
        from ...distributed import _core
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel expects an nn.Module, got {type(module).__name__}")
        pg = _core._resolve(process_group)
        if pg is None:
            raise ValueError("DistributedDataParallel: this rank is not a member of process_group")
        for d in list(device_ids or []) + ([] if output_device is None else [output_device]):
            if str(d) not in ("cpu", "cpu:0") and not (isinstance(d, str) and d.startswith("cpu")) \
                    and getattr(d, "type", None) != "cpu":
                raise ValueError(f"DistributedDataParallel: device {d!r} is not available: jitorch runs on CPU; "
                                 "pass device_ids=None")
        params, seen = [], set()
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
        if not params:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter that "
                               "requires a gradient.")
        self.module = module
        self.process_group = pg
        self.device_ids = None
        self.output_device = None
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self.bucket_bytes_cap = int((25 if bucket_cap_mb is None else bucket_cap_mb) * 1024 * 1024)
        self._verify_shapes(params, pg)
        if init_sync:
            self._sync_module_states()
        self.reducer = _Reducer(params, pg, self.bucket_bytes_cap, find_unused_parameters, gradient_as_bucket_view)
        # the buffers broadcast before every forward, collected once as torch does
        seen, bufs = set(), []
        for t in module.buffers():
            if id(t) not in seen:
                seen.add(id(t))
                bufs.append(t)
        self.modules_buffers = bufs
        self._dist = dist

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _verify_shapes(params, pg):
        sig = [(tuple(p.shape), str(p.dtype)) for p in params]
        sigs = pg.comm.allgather(sig)
        for r, s in enumerate(sigs):
            if s != sigs[0]:
                raise RuntimeError(f"DistributedDataParallel: rank {pg.ranks[r]} wraps parameters {s} but rank "
                                   f"{pg.ranks[0]} wraps {sigs[0]}: every rank must build the same model")

    def _broadcast_coalesced(self, tensors):
        """Broadcast ``tensors`` from the group's first rank, one flat message per dtype."""
        from ...distributed import _core
        pg = self.process_group
        if pg.size() == 1 or not tensors:
            return
        by_dtype = {}
        for t in tensors:
            by_dtype.setdefault(t._data.dtype.str, []).append(t)
        reqs, jobs = [], []
        for ts in by_dtype.values():
            flat = np.concatenate([t._data.reshape(-1) for t in ts]) if pg.rank() == 0 else \
                np.empty(sum(t._data.size for t in ts), ts[0]._data.dtype)
            reqs.append(pg.comm.Ibcast(_core._raw(flat), root=0))
            jobs.append((ts, flat))
        _core._wait_requests(reqs, pg.timeout, "DistributedDataParallel broadcast")
        if pg.rank() != 0:
            for ts, flat in jobs:
                o = 0
                for t in ts:
                    n = t._data.size
                    np.copyto(t._data, flat[o:o + n].reshape(t._data.shape))
                    t._bump()
                    o += n

    def _sync_module_states(self):
        seen, ts = set(), []
        for t in list(self.module.parameters()) + list(self.module.buffers()):
            if id(t) not in seen:
                seen.add(id(t))
                ts.append(t)
        self._broadcast_coalesced(ts)

    # ---------------------------------------------------------------- API
    def forward(self, *inputs, **kwargs):
        from ...autograd import is_grad_enabled
        sync = is_grad_enabled() and self.require_backward_grad_sync
        if sync:
            self.reducer.prepare_forward()
        if self.broadcast_buffers and self.require_forward_param_sync and self.modules_buffers:
            self._broadcast_coalesced(self.modules_buffers)
        out = self.module(*inputs, **kwargs)
        if sync:
            self.reducer.prepare_backward(out)
        else:
            self.reducer.expect = False
        return out

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside accumulate gradients locally, without communication; the first
        synchronized backward after it all-reduces the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def join(self, *args, **kwargs):
        raise NotImplementedError("DistributedDataParallel.join (uneven inputs) is not implemented in jitorch; "
                                  "use DistributedSampler(drop_last=...) so every rank sees as many batches")

    def register_comm_hook(self, state, hook):
        raise NotImplementedError("DistributedDataParallel communication hooks are not implemented in jitorch")

    def _get_ddp_logging_data(self):
        return {"world_size": self.process_group.size(), "bucket_cap_bytes": self.bucket_bytes_cap,
                "num_buckets": len(self.reducer.buckets)}

"""``jitorch.compile``: trace per input signature, fuse elementwise regions, run generated code.

``jitorch.compile(fn_or_module, *, dynamic=None, fullgraph=True, mode=None)`` (also a decorator)
returns a :class:`CompiledFunction` (or :class:`CompiledModule` for a module). On the first call
with a new *signature* (argument structure, tensor shapes, dtypes, devices, requires_grad,
non-tensor argument values, module mode) it traces the function with jit.script's rules, runs the
pass pipeline, groups elementwise regions (:mod:`.fuse`) into one generated numba kernel each and
generates a straight-line Python executor: kernel calls for groups, eager dispatch (``_call``) for
everything else (matmul, views, reductions ...). ``fn.code`` shows the executor of the latest
signature, ``fn.kernels`` the kernel sources.

- Guards: a call whose signature was compiled before reuses it; a new one recompiles, logged with
  ``JITORCH_LOGS=recompiles`` (which guard failed and what to do about it). After
  :data:`RECOMPILE_LIMIT` signatures, new ones run eagerly (a :class:`CompileWarning` says so).
- ``fullgraph=False``: a function tracing cannot capture (a Python decision on a tensor value)
  runs eagerly for that signature, with a one-line :class:`CompileWarning`; ``fullgraph=True``
  raises the tracer's error.
- Autograd: when grad mode is on and an input or (module or captured) parameter requires grad,
  the call runs a compiled forward and a compiled backward derived from the VJP rules, as one
  autograd node (:mod:`.autodiff`). A function that runs ``backward()`` and ``opt.step()`` itself
  compiles as one graph with the optimizer update fused (:mod:`.optim_capture`).
- Dynamic dims (docs/jit.md, 'Dynamic dims'): when a call misses only because some dims changed size,
  those dims become dynamic (one symbol shared by them, found with export's machinery); every later size
  re-specializes the symbolic graph (no Python re-trace, no new kernel, not counted as a recompile).
  ``dynamic=True`` marks dim 0 of the inputs from the first call; ``dynamic=False`` never marks.
  ``mode`` is accepted for torch compatibility.
"""
from __future__ import annotations

import builtins
import copy
import dataclasses
import functools
import linecache
import math
import threading
import warnings
from collections import OrderedDict

import numpy as np

from .. import _dispatch, _pool
from ..ops import random as _random_ops
from .. import _dtype as D
from ..ops.registry import OPS
from . import _logging, _pytree, _tracing
from ._tracing import GENERATED_PREFIX, TracerError
from .codegen import _ident, py_value
from .fuse import (RowNormGroup, canonical_source, describe_groups, find_groups, find_row_norms, input_modes,
                   kernel_shape, kernel_source, multi_kernel_source, row_norm_source, tail_groups)
from .fuse_cuda import trace_device

RECOMPILE_LIMIT = 8
#: executors a dynamic-dim family keeps (one per size, least recently used dropped)
DYNAMIC_EXECUTORS = 16
# tracing swaps process-wide hooks: one trace/compile at a time (threads calling compiled code
# that is already built never take it)
_COMPILE_LOCK = threading.RLock()


class CompileWarning(UserWarning):
    """jitorch.compile ran a call eagerly (fallback, recompile limit, autograd)."""


# ------------------------------------------------------------------------------------------------
# executor generation


def _np_dtype_src(dt):
    return f"np.{'bool_' if dt is D.bool_ else dt.name}"


def _empty_src(t):
    """Source that allocates a buffer of TensorType ``t``: large ones come from the CPU pool (_pool)."""
    src = f"({t.shape!r}, {_np_dtype_src(t.dtype)})"
    big = _pool.ENABLED and math.prod(t.shape) * t.dtype.itemsize >= _pool.MIN_BYTES
    return f"_pool_empty{src}" if big else f"np.empty{src}"


def inplace_update_plan(g, groups, tail=()):
    """{value: input name} for updates a group's kernel can write straight into the input's memory: the
    value is a group output nothing else reads, and every reader of the input is in that group (the
    kernel reads an element before it writes it, so the old value is not needed after) or ran before the
    kernel without keeping a view of the input alive: a training step's forward and backward read a
    parameter (through ``permute`` into a matmul) before the optimizer's kernel writes it in place.
    ``tail``: the groups run by the horizontal kernel (at the place of the last of them)."""
    member = {n.outputs[0]: gr.index for gr in groups for n in gr.nodes}
    flat = {gr.index for gr in groups if gr.reduce is None and input_modes(gr, g.types)[1] == "flat"}
    order = {n.outputs[0]: k for k, n in enumerate(g.nodes)}
    at = {gr.index: order[gr.last.outputs[0]] for gr in groups}  # where each group's kernel runs
    if tail:
        t_at = max(at[gr.index] for gr in tail)
        at.update({gr.index: t_at for gr in tail})
    readers = {}
    reader_nodes = {}
    for n in g.nodes:
        for x in n.inputs:
            if isinstance(x, str):
                readers.setdefault(x, set()).add(member.get(n.outputs[0], -1))
                reader_nodes.setdefault(x, []).append(n)
    plan = {}
    outs = set(g.outputs) | {v for _, v in g.updates}

    def done_before(x, pos, gid, depth=0):
        """Every use of ``x`` (outside group ``gid``) runs before ``pos`` and keeps no alias of it."""
        for n in reader_nodes.get(x, ()):
            mid = member.get(n.outputs[0])
            if mid == gid:
                continue
            npos = at[mid] if mid is not None else order[n.outputs[0]]
            if npos >= pos:
                return False
            if mid is not None or n.op in FRESH_OPS or "elementwise" in OPS[n.op].tags:
                continue  # a fresh result: no alias of x survives
            if "view" in OPS[n.op].tags and depth < 8 and not any(o in outs for o in n.outputs) \
                    and all(done_before(o, pos, gid, depth + 1) for o in n.outputs):
                continue
            return False
        return True

    for a, v in g.updates:
        gid = member.get(v)
        if gid is None or gid not in flat or v in g.outputs or a in g.outputs or v in plan:
            continue
        if readers.get(v, set()) - {gid}:
            continue
        if readers.get(a, set()) - {gid} and not done_before(a, at[gid], gid):
            continue
        plan[v] = a
    return plan


# ops whose result is always a fresh array the executor owns (no view, no cache): a fused group right
# after one may write its output into that array (the epilogue of a matmul: bias + activation in place)
FRESH_OPS = frozenset({"matmul"})


def buffer_reuse_plan(g, groups):
    """{group output: input value whose buffer it reuses}: the input has the output's type and the
    group's full shape (flat or nd loops: element i is read before element i is written), it is a
    fresh array (a FRESH_OPS result or another group's output), not a graph input, output or update,
    and nothing outside this group reads it. A matmul followed by bias + activation thus runs its
    epilogue in place over the matmul's result; chains of groups reuse one buffer."""
    types = g.types
    producer = {o: n for n in g.nodes for o in n.outputs}
    member = {n.outputs[0]: gr.index for gr in groups for n in gr.nodes}
    group_outputs = {o for gr in groups for o in gr.outputs}
    readers = {}
    for n in g.nodes:
        for x in n.inputs:
            if isinstance(x, str):
                readers.setdefault(x, set()).add(member.get(n.outputs[0], -1))
    live_out = set(g.outputs) | {v for _, v in g.updates}
    plan = {}
    for gr in groups:
        if gr.reduce is not None:
            continue
        taken = set()
        for o in gr.outputs:
            for x in gr.inputs:
                if x in taken or x in live_out or x not in producer or types[x] != types[o]:
                    continue
                if types[x].shape != gr.shape or readers.get(x, set()) != {gr.index}:
                    continue
                if not (producer[x].op in FRESH_OPS or x in group_outputs):
                    continue
                plan[o] = x
                taken.add(x)
                break
    return plan


def executor_source(g, groups, kernel_names, tail=(), tail_name="_kt", inplace=None, reuse=None):
    """Straight-line Python over the graph's inputs (all kinds, in order): returns outputs + updates.

    ``tail``: groups run together by one horizontal kernel ``tail_name`` at the place of the last one."""
    types = g.types
    used = {"_call", "_wrap", "_bt", "np", "_pool_empty", "_cond", "_while_loop", "_view_scatter", "jitorch", tail_name}
    used |= set(kernel_names.values())
    var = {}
    for i in g.inputs:
        var[i.name] = _ident(i.name, used)
    for n in g.nodes:
        for o in n.outputs:
            var[o] = _ident(f"{n.op}_{o}" if o.isdigit() else o, used)

    def arg(x):
        return var[x] if isinstance(x, str) else py_value(x)

    def group_call(gr):
        """(buffer lines, kernel arguments, wrap lines) of one group."""
        if isinstance(gr, RowNormGroup):
            kargs = [f"{var[gr.x]}._data"] + [f"_bt({var[x]}._data, {gr.shape!r})" for x in gr.inputs[1:]]
            pre = [f"    buf_{var[o]} = {_empty_src(types[o])}" for o in gr.outputs]
            return pre, kargs + [f"buf_{var[o]}" for o in gr.outputs], [f"    {var[o]} = _wrap(buf_{var[o]})"
                                                                         for o in gr.outputs]
        modes, kind = input_modes(gr, types)
        shape = gr.shape
        kshape = kernel_shape(gr) if kind == "red" else shape
        kargs, pre, post = [], [], []
        for x, m in zip(gr.inputs, modes):
            if kind == "flat" or m == "scalar":
                kargs.append(f"{var[x]}._data.reshape(-1)")
            else:
                kargs.append(f"_bt({var[x]}._data, {kshape!r})")
        for o in gr.outputs:
            b = f"buf_{var[o]}"
            alloc = _empty_src(types[o])
            if inplace and o in inplace:  # the update's target itself (when contiguous)
                t = var[inplace[o]]
                alloc = f"{t}._data if {t}._data.flags.c_contiguous else {alloc}"
            elif reuse and o in reuse:  # a dead input's buffer (buffer planning)
                t = var[reuse[o]]
                alloc = f"{t}._data if {t}._data.flags.c_contiguous and {t}._data.flags.writeable else {alloc}"
            pre.append(f"    {b} = {alloc}")
            if kind == "flat":
                kargs.append(f"{b}.reshape(-1)")
            elif kind == "red" and o == gr.last.outputs[0] and gr.last.op in ("sum", "amax"):
                kargs.append(f"{b}.reshape({kshape[:-1]!r})")
            elif kind == "red":
                kargs.append(f"{b}.reshape({kshape!r})")
            else:
                kargs.append(b)
            post.append(f"    {var[o]} = _wrap({b})")
        return pre, kargs, post

    tail_ids = {gr.index for gr in tail}
    tail_at = max((gr.last.outputs[0] for gr in tail), key=lambda v: g.nodes.index(g.producer(v)), default=None)
    at_last = {gr.last.outputs[0]: gr for gr in groups if gr.index not in tail_ids}
    member = {n.outputs[0] for gr in groups for n in gr.nodes}
    body = []
    for n in g.nodes:
        o0 = n.outputs[0]
        if o0 == tail_at:
            pres, kargs, posts = [], [], []
            for gr in tail:
                a, b, c = group_call(gr)
                pres += a
                kargs += b
                posts += c
            body += pres
            body.append(f"    {tail_name}({', '.join(kargs)})".ljust(72)
                        + f"  # {len(tail)} independent loops, one kernel: "
                        + "; ".join(f"group {gr.index}" for gr in tail))
            body += posts
            continue
        if o0 in at_last:
            gr = at_last[o0]
            pre, kargs, post = group_call(gr)
            body += pre
            call = f"    {kernel_names[gr.index]}({', '.join(kargs)})"
            body.append(call.ljust(72) + f"  # fused group {gr.index}: " +
                        ", ".join(f"%{m.outputs[0]} {m.op}" for m in gr.nodes))
            body += post
            continue
        if o0 in member:
            continue
        lhs = ", ".join(var[o] for o in n.outputs)
        if n.subgraphs():
            raise NotImplementedError("graph ops are run by the plain executor")
        attrs = dict(n.attrs)
        for k, v in OPS[n.op].attrs:
            attrs.setdefault(k, v)
        args = [repr(n.op)] + [arg(x) for x in n.inputs] + [f"{k}={py_value(v)}" for k, v in attrs.items()]
        line = f"    {lhs} = _call({', '.join(args)})"
        comment = f"# %{', %'.join(n.outputs)}" + (f"  {n.loc}" if n.loc else "")
        body.append(line.ljust(72) + "  " + comment)
    rets = [var[o] for o in g.outputs] + [var[v] for _, v in g.updates]
    body.append(f"    return ({', '.join(rets)}{',' if len(rets) == 1 else ''})")
    fname = _ident(g.name, used)
    params = ", ".join(var[i.name] for i in g.inputs)
    return fname, "\n".join([f"def {fname}({params}):"] + body) + "\n"


def compile_graph(g, log_name=None, inplace_updates=False, device=None):
    """(executor function, executor source, {kernel name: kernel source}) for a traced graph."""
    from ..kernels._jitcache import load_source
    if any(n.subgraphs() for n in g.nodes) or any(n.op == "view_scatter" for n in g.nodes):
        from .codegen import compile_python
        run, src = compile_python(g)
        return run, "# graph ops (cond/while_loop/view_scatter): plain executor, no fusion\n" + src, {}
    if device is not None and device.type == "cuda":  # cuda.jit kernels of the same groups (fuse_cuda.py)
        from .fuse_cuda import compile_graph_cuda
        return compile_graph_cuda(g)
    types = g.types
    groups = find_groups(g)
    if _logging.enabled("fusion"):
        _logging.log("fusion", f"groups of {g.name}", describe_groups(g, groups))
    # single-op groups join only the horizontal tail kernel (a lone op elsewhere runs its eager kernel)
    groups = list(groups)
    norms, groups = find_row_norms(g, groups)
    singles = find_groups(g, min_size=1)
    tail = tail_groups(g, singles)
    if norms:
        taken = {id(n) for r in norms for n in r.nodes}
        singles = [gr for gr in singles if not any(id(n) in taken for n in gr.nodes)]
        tail = tail_groups(g, singles)
    if tail:
        keep = {id(gr) for gr in tail}
        kept = [gr for gr in singles if len(gr.nodes) >= 2 or gr.reduce is not None or id(gr) in keep]
        groups = [dataclasses.replace(gr, index=k) for k, gr in enumerate(kept)]
        tail = tuple(gr for gr, old in zip(groups, kept) if id(old) in keep)
    if tail and norms:  # indices after the tail re-numbering
        norms = [dataclasses.replace(r, index=len(groups) + k) for k, r in enumerate(norms)]
    tail_ids = {gr.index for gr in tail}
    # a group over one element (a loss's scalar arithmetic) runs its ops eagerly: tracing already loaded
    # their eager kernels, and a numba compile (~0.3 s cold) costs more than fusing one element saves
    groups = [gr for gr in groups if gr.index in tail_ids or gr.reduce is not None or math.prod(gr.shape) != 1]
    names, kernels, ns = {}, {}, {}
    for r in norms:
        src = row_norm_source(r, types)
        kname = f"_k{r.index}"
        names[r.index] = kname
        kernels[kname] = src
        ns[kname] = load_source(canonical_source(src), prefix="fused").kernel
        if _logging.enabled("code"):
            _logging.log("code", f"kernel {kname} of {g.name}", src)
    for gr in groups:
        if gr.index in tail_ids:
            continue
        src = kernel_source(gr, types)
        mod = load_source(canonical_source(src), prefix="fused")
        kname = f"_k{gr.index}"
        names[gr.index] = kname
        kernels[kname] = src
        ns[kname] = mod.kernel
        if _logging.enabled("code"):
            _logging.log("code", f"kernel {kname} of {g.name}", src)
    if tail:
        src = multi_kernel_source(tail, types)
        kernels["_kt"] = src
        ns["_kt"] = load_source(canonical_source(src), prefix="fused").kernel
        if _logging.enabled("code"):
            _logging.log("code", f"kernel _kt of {g.name}", src)
    plan = inplace_update_plan(g, groups, tail) if inplace_updates else None
    reuse = buffer_reuse_plan(g, groups)
    if plan:
        reuse = {o: x for o, x in reuse.items() if o not in plan}
    fname, src = executor_source(g, list(groups) + list(norms), names, tail=tail, inplace=plan, reuse=reuse)
    header = f"# jitorch.compile executor of {g.name}: {len(groups) + len(norms)} fused group(s)" + (
        f", {len(tail)} of them in one kernel (_kt)" if tail else "") + "\n"
    src = header + src
    if _logging.enabled("code"):
        _logging.log("code", f"executor of {g.name}", src)
    filename = f"{GENERATED_PREFIX} compiled {g.name}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    import jitorch
    ns.update({"_call": _dispatch.call, "_wrap": _dispatch._Tensor._wrap, "_bt": np.broadcast_to, "np": np,
               "_pool_empty": _pool.empty,
               "jitorch": jitorch})
    exec(builtins.compile(src, filename, "exec"), ns)
    return ns[fname], src, kernels


# ------------------------------------------------------------------------------------------------
# guards


def _leaf_sig(x):
    if isinstance(x, _dispatch._Tensor):
        return ("T", x._data.shape, x._data.dtype, x._device, x.requires_grad)
    try:
        hash(x)
        return ("V", type(x), x)
    except TypeError:
        return ("R", type(x), repr(x))


def _describe_sig(s):
    if s[0] == "T":
        return f"Tensor {D._BY_NP[s[2]].short}{list(s[1])} on {s[3]}" + (" requires_grad" if s[4] else "")
    return f"{s[1].__name__} {s[2]!r}"


def _why(old, new, names):
    """The first guard that failed between two keys, as text with a suggestion."""
    (ospec, oleaves, otrain), (nspec, nleaves, ntrain) = old, new
    if otrain != ntrain:
        return "module.training changed", "train and eval record different graphs; this is expected once"
    if ospec != nspec or len(oleaves) != len(nleaves):
        return "the argument structure changed", "pass arguments with the same nesting every call"
    for k, (a, b) in enumerate(zip(oleaves, nleaves)):
        if a != b:
            name = names[k] if k < len(names) else f"argument leaf {k}"
            if a[0] == "T" and b[0] == "T":
                if a[2] != b[2]:
                    da, db = D._BY_NP[a[2]], D._BY_NP[b[2]]
                    return f"{name}: dtype {da.name} -> {db.name}", "cast inputs to one dtype before the call"
                if a[4] != b[4]:
                    return f"{name}: requires_grad {a[4]} -> {b[4]}", "keep requires_grad the same across calls"
                if a[3] != b[3]:
                    return f"{name}: device {a[3]} -> {b[3]}", "keep inputs on one device"
                if a[1] != b[1]:
                    return (f"{name}: size {list(a[1])} -> {list(b[1])}",
                            "a dim seen with a second size becomes dynamic where the graph allows it (the 'dynamic "
                            "dims' log line says why not; docs/jit.md 'Dynamic dims'); else pad or bucket inputs")
            return (f"{name}: {_describe_sig(a)} -> {_describe_sig(b)}",
                    "non-tensor arguments are baked into the compiled code; pass a tensor to vary it freely")
    return "the signature changed", ""


class _Entry:
    __slots__ = ("traced", "eager", "reason", "fast", "grad_check", "compiled", "train", "names", "spec", "family")

    def __init__(self, traced=None, eager=False, reason=""):
        self.traced, self.eager, self.reason = traced, eager, reason
        self.fast = None
        self.compiled = False    # the inference executor is generated on the first call that needs it
        self.grad_check = False
        self.train = {}          # parameters' requires_grad pattern -> TrainProgram, or None (runs eagerly)
        self.names = None
        self.family = None       # the dynamic family that re-specialized this entry (not a signature of its own)

    def ensure_compiled(self):
        if not self.compiled:
            t = self.traced
            run, src, kernels = compile_graph(t.graph, inplace_updates=t.step_params is not None,
                                              device=getattr(t, "device", None))
            t._run, t.code, t.kernels = run, src, kernels
            self.fast = _fast_call(t)
            self.compiled = True



class _Family:
    """Signatures that differ only in the size of some dims (one symbol, ``s0``): the symbolic graph
    (an export record), its symbolic types, and an LRU of per-size entries (executors)."""

    def __init__(self, base_key, dims, ex, sym, traced, base_entry, names):
        self.base_key, self.dims, self.ex, self.sym, self.base = base_key, dims, ex, sym, traced
        self.symbol, self.example, self.names = ex.symbol, ex.example, names
        self.grad_check = base_entry.grad_check
        self.entries = OrderedDict([(ex.example, base_entry)])
        self.keys = {}           # size -> exact signatures put in the function's cache for it (dropped with it)
        self.mask = self._masked(base_key)

    def _masked(self, key):
        leaves = list(key[1])
        for j, d in self.dims:
            s = leaves[j]
            shape = list(s[1])
            shape[d] = None
            leaves[j] = (s[0], tuple(shape)) + s[2:]
        return key[0], tuple(leaves), key[2]

    def size_of(self, key):
        """The dynamic size of a call with signature ``key``, or None when a guard fails: rank, dtype,
        device, requires_grad, static dims, non-tensor arguments, or dynamic dims of different sizes."""
        leaves = key[1]
        if len(leaves) != len(self.base_key[1]):
            return None
        size = None
        for j, d in self.dims:
            s = leaves[j]
            if s[0] != "T" or len(s[1]) <= d:
                return None
            if size is None:
                size = s[1][d]
            elif s[1][d] != size:
                return None  # the graph needs these dims equal (one symbol)
        if size is None or size < 1 or self._masked(key) != self.mask:
            return None
        return size


def _fast_call(traced):
    """A direct call of the executor for plain functions (the guard already checked every input's
    type): no re-binding or re-checking as ``TracedFunction.__call__`` does. None when the graph
    needs that machinery (module state, updates, random state, a constant returned as an output)."""
    g = traced.graph
    if traced._module is not None or g.updates or traced._states:
        return None
    kinds = [i.kind for i in g.inputs]
    nuser = kinds.count("input")
    if any(k not in ("input", "const") for k in kinds) or kinds[:nuser] != ["input"] * nuser:
        return None
    if any(o in g.constants for o in g.outputs):
        return None
    consts = tuple(traced._constants()[i.name] for i in g.inputs[nuser:])
    run, spec = traced._run, traced._out_spec
    if spec == ("leaf",):
        return lambda args: run(*args, *consts)[0]
    unflatten = _pytree.unflatten
    return lambda args: unflatten(spec, run(*args, *consts))


def _is_module(obj):
    return hasattr(obj, "named_parameters") and hasattr(obj, "named_buffers")


def _run_inplace(traced, leaves, module):
    """Run a training-step executor (compiled with in-place updates): bind the inputs, run, write back
    the updates the kernels did not already write in place (bumping versions either way)."""
    from .trace import _module_state
    g = traced.graph
    states = traced._states
    consts = traced._constants()
    mod = {name: t for t, name, _ in _module_state(module)} if module is not None else {}
    users = iter(leaves)
    bound = []
    for i in g.inputs:
        k = i.kind
        t = next(users) if k == "input" else mod[i.name] if k in ("param", "buffer") else \
            states[i.name] if k == "state" else consts[i.name]
        if tuple(t._data.shape) != i.type.shape or t.dtype is not i.type.dtype:
            raise RuntimeError(f"jitorch.compile({traced.__name__}): {k} %{i.name} was compiled as {i.type}, now "
                               f"{t.dtype.short}{list(t.shape)}; a captured tensor changed shape or dtype")
        bound.append(t)
    res = traced._run(*bound)
    n = len(g.outputs)
    pos = {i.name: k for k, i in enumerate(g.inputs)}
    for (name, _), value in zip(g.updates, res[n:]):
        target = bound[pos[name]]
        if value._data is target._data:
            target._bump()
        else:
            _dispatch.call_inplace("copy", target, value)
    return _pytree.unflatten(traced._out_spec, list(res[:n]))


def _step_grads(fn, cap):
    """(parameters, their .grad) set by a backward inside the traced function: extra graph outputs,
    assigned to ``.grad`` after each compiled call. Called inside the trace, as the function returns."""
    s = _tracing.current()
    cands, seen = [], set()
    pools = [p for o in cap.optimizers for g in o.param_groups for p in g["params"]]
    if _is_module(fn):
        pools += [p for _, p in fn.named_parameters()]
    pools += [t for t in s.state_tensors.values() if t.requires_grad]
    for p in pools:
        if id(p) not in seen:
            seen.add(id(p))
            cands.append(p)
    params, grads = [], []
    for p in cands:
        g = p.grad
        st = getattr(g, "_trace_id", None) if g is not None else None
        if st is None or st.session is not s:
            continue
        if st.storage.kind == "const":
            if st.storage.version > 0:
                raise TracerError("jitorch.compile: backward inside a compiled function accumulates into a .grad "
                                  "that existed before the call; call opt.zero_grad() (set_to_none=True) before "
                                  "backward, inside the function or before calling it")
            continue
        params.append(p)
        grads.append(g)
    return params, grads


class CompiledFunction:
    """The result of :func:`jitorch.compile` (see the module docstring)."""

    def __init__(self, fn, dynamic=None, fullgraph=True, mode=None):
        self._fn = fn
        self._fullgraph = fullgraph
        self._dynamic = dynamic
        self._mode = mode
        self._cache = {}
        self._last = None
        self._last_train = None
        self._trained = False
        self._last_key = None
        self._compiled_count = 0
        self._warned = set()
        self._is_mod = _is_module(fn)
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn
        self._families = []      # dynamic-dim families (_Family), tried in order on a cache miss
        self._dyn_tried = set()  # (base key, dims) already tried: a refusal is not retried

    # -- signature
    def _key(self, args, kwargs):
        T = _dispatch._Tensor
        if not kwargs and all(isinstance(a, T) for a in args):
            leaves = tuple([("T", a._data.shape, a._data.dtype, a._device, a.requires_grad) for a in args])
            spec = len(args)
        else:
            ls, spec = _pytree.flatten((tuple(args), dict(kwargs)))
            leaves = tuple(_leaf_sig(x) for x in ls)
            # non-tensor values live in the spec; make it hashable
            try:
                hash(spec)
            except TypeError:
                spec = repr(spec)
            leaves = leaves + (("S", type(spec), spec),)
        return (spec, leaves, getattr(self._fn, "training", None))

    def _needs_grad(self, args, kwargs, entry=None):
        if not _dispatch.hooks.grad_enabled:
            return False
        leaves = args if not kwargs else _pytree.flatten((tuple(args), dict(kwargs)))[0]
        if any(isinstance(t, _dispatch._Tensor) and t.requires_grad for t in leaves):
            return True
        if entry is not None and entry.traced is not None and \
                any(t.requires_grad for t in entry.traced._states.values()):
            return True
        if _is_module(self._fn):
            return any(p.requires_grad for _, p in self._fn.named_parameters())
        return False

    def _warn_once(self, what, msg):
        if what not in self._warned:
            self._warned.add(what)
            warnings.warn(msg, CompileWarning, stacklevel=3)
            if _logging.enabled("recompiles"):
                _logging.log("recompiles", f"{self.__name__}: running eagerly", msg)

    def _eager(self, args, kwargs):
        return self._fn(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        key = self._key(args, kwargs)
        entry = self._cache.get(key)
        if entry is None and self._families:
            entry = self._from_family(key, args, kwargs)
        if entry is None:
            with _COMPILE_LOCK:  # one thread traces and compiles a signature; the others wait for it
                entry = self._cache.get(key)
                if entry is None:
                    entry = self._compile(key, args, kwargs)
        if entry.eager:
            return self._eager(args, kwargs)
        if entry.traced.step_params is not None:
            return self._run_step(entry, key, args, kwargs)
        if entry.grad_check and self._needs_grad(args, kwargs, entry):
            prog = self._train_program(entry, args, kwargs)
            if prog is None:
                return self._eager(args, kwargs)
            self._last = entry.traced
            self._last_train = prog
            self._trained = True
            return self._run_train(prog, entry, args, kwargs)
        if not entry.compiled:
            with _COMPILE_LOCK:
                entry.ensure_compiled()
        self._last = entry.traced
        self._trained = False
        if entry.fast is not None and key[0] == len(args) and not kwargs:
            return entry.fast(args)
        if kwargs or not (key[0] == len(args)):
            leaves, _ = _pytree.flatten((tuple(args), dict(kwargs)))
            return entry.traced(*leaves)
        return entry.traced(*args)

    # -- a whole training step (backward and opt.step() inside the function; optim_capture.py)
    def _run_step(self, entry, key, args, kwargs):
        from ..autograd import no_grad
        from .optim_capture import optimizer_signature
        t = entry.traced
        if t.step_opts and optimizer_signature(t.step_opts) != t.step_sig:
            if _logging.enabled("recompiles"):
                _logging.log("recompiles", f"recompiling {self.__name__}",
                             "    triggered by: the optimizer's state changed (created by the first step)\n"
                             "    suggestion: none needed; this happens once")
            with _COMPILE_LOCK:
                entry = self._compile(key, args, kwargs)
            if entry.eager:
                return self._eager(args, kwargs)
            t = entry.traced
        if not entry.compiled:
            with _COMPILE_LOCK:
                entry.ensure_compiled()
        self._last = t
        self._trained = False
        leaves = args if not kwargs and all(isinstance(a, _dispatch._Tensor) for a in args) else \
            _pytree.flatten((tuple(args), dict(kwargs)))[0]
        with no_grad():
            out, grads = _run_inplace(t, leaves, self._fn if self._is_mod else None)
        for p, g in zip(t.step_params, grads):
            p.grad = g
        return out

    # -- training through compiled code (jitorch/jit/autodiff.py)
    def _param_pattern(self, entry):
        caps = tuple(t.requires_grad for t in entry.traced._states.values())
        if not self._is_mod:
            return caps
        return tuple(p.requires_grad for _, p in self._fn.named_parameters()) + caps

    def _train_program(self, entry, args, kwargs):
        pattern = self._param_pattern(entry)
        if pattern in entry.train:
            return entry.train[pattern]
        with _COMPILE_LOCK:
            if pattern in entry.train:
                return entry.train[pattern]
            return self._train_program_locked(entry, pattern, args, kwargs)

    def _train_program_locked(self, entry, pattern, args, kwargs):
        try:
            prog = self._build_train(entry, args, kwargs)
        except Exception as e:  # a rule that cannot be traced, an op without a VJP ...: eager, said once
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            self._warn_once(("train", first), f"jitorch.compile({self.__name__}): the compiled backward could not be "
                                              f"built ({type(e).__name__}: {first}); this signature trains eagerly")
            prog = None
        entry.train[pattern] = prog
        return prog

    def _build_train(self, entry, args, kwargs):
        from ..autograd import enable_grad
        from ..autograd import grad as autograd_grad
        from .autodiff import TrainProgram, split_joint
        from .trace import _BoundModule, _module_state, _restore, _snapshot, _trace_impl
        import jitorch
        fwd_graph = entry.traced.graph
        out_types = fwd_graph.output_types
        float_outs = [k for k, t in enumerate(out_types) if t.dtype.is_floating_point]
        leaves, spec = _pytree.flatten((tuple(args), dict(kwargs)))
        T = _dispatch._Tensor
        seen, tleaves, diff_user = set(), [], []
        for k, t in enumerate(leaves):
            if isinstance(t, T):
                if id(t) in seen:
                    t = t.detach().clone()
                seen.add(id(t))
                if t.requires_grad and t.dtype.is_floating_point:
                    diff_user.append(k)
                    t = t.detach().requires_grad_(True)
                else:
                    t = t.detach()
            tleaves.append(t)
        dev = getattr(entry.traced, "device", None)
        gouts = [jitorch.ones(out_types[k].shape, dtype=out_types[k].dtype, device=dev) for k in float_outs]
        nleaves = len(leaves)
        fn0 = self._fn
        params = []
        if self._is_mod:
            params = [(name, t) for t, name, kind in _module_state(fn0) if kind == "param" and t.requires_grad]
        captured = [t for t in entry.traced._states.values() if t.requires_grad]
        info = {}

        def joint(*tensors):
            ts, gs = list(tensors[:nleaves]), tensors[nleaves:]
            a, k = _pytree.unflatten(spec, ts)
            with enable_grad():
                out = fn0(*a, **k)
            outs, ospec = _pytree.flatten(out)
            diff_inputs = [ts[j] for j in diff_user] + [p for _, p in params] + captured
            pairs = [(outs[j], g) for j, g in zip(float_outs, gs) if isinstance(outs[j], T) and outs[j].requires_grad]
            info["diff_out"] = [isinstance(o, T) and o.requires_grad for o in outs]
            info["out_spec"] = ospec
            if not pairs:
                raise RuntimeError("no output requires grad")
            grads = autograd_grad([o for o, _ in pairs], diff_inputs, [g for _, g in pairs], allow_unused=True)
            info["present"] = [g is not None for g in grads]
            return tuple(outs) + tuple(g for g in grads if g is not None)
        joint.__name__ = joint._trace_name = self.__name__
        fn = _BoundModule(fn0, joint) if self._is_mod else joint
        names = entry.names or self._arg_names(args, kwargs) or [f"arg{k}" for k in range(nleaves)]
        names = list(names) + [f"grad_out{j}" for j in range(len(gouts))]
        snap = _snapshot(fn0 if self._is_mod else None)
        snap += _snapshot(None, [t for t in leaves if isinstance(t, T)])  # numpy and cuda storage
        rng = _random_ops.snapshot_generators()  # cpu and cuda: tracing's draws are undone
        live, _tracing.LIVE_CAPTURE[0] = _tracing.LIVE_CAPTURE[0], True
        try:
            traced, _ = _trace_impl(fn, tuple(tleaves) + tuple(gouts), {}, strict=True, names=names)
        finally:
            _tracing.LIVE_CAPTURE[0] = live  # nested compiles keep the outer setting
            _restore(snap)
            _random_ops.restore_generators(rng)
        joint_g = traced.graph
        user_inputs = [i.name for i in joint_g.inputs if i.kind == "input"]
        gout_names = user_inputs[nleaves:nleaves + len(gouts)]
        n_out = len(info["diff_out"])
        state_name = {id(t): name for name, t in traced._states.items()}
        diff_in = [user_inputs[j] for j in diff_user] + [name for name, _ in params] + \
            [state_name[id(t)] for t in captured]
        if any(a in diff_in for a, _ in joint_g.updates):
            raise RuntimeError("the function writes in place into an input that requires grad")
        fwd, bwd, saved = split_joint(joint_g, n_out, gout_names)
        slots, k = [], 0
        for present in info["present"]:
            slots.append(k if present else None)
            k += bool(present)
        diff_out = [bool(d) and j in float_outs for j, d in enumerate(info["diff_out"])]
        # the backward takes grad outputs for the float outputs; keep the ones that carry a gradient
        keep = {j for j in float_outs if diff_out[j]}
        drop = [gout_names[n] for n, j in enumerate(float_outs) if j not in keep]
        if drop:
            bwd = bwd.replace(inputs=tuple(i for i in bwd.inputs if i.name not in drop))
        fwd_run, fwd_code, k1 = compile_graph(fwd, device=dev)
        bwd_run, bwd_code, k2 = compile_graph(bwd, device=dev)
        kernels = {f"fwd{k}": v for k, v in k1.items()}
        kernels.update({f"bwd{k}": v for k, v in k2.items()})
        prog = TrainProgram(joint_g, fwd, bwd, saved, n_out, diff_out, diff_in, slots, fwd_run, bwd_run, fwd_code,
                            bwd_code, kernels, info["out_spec"])
        prog.states = dict(traced._states)
        if _logging.enabled("graph"):
            _logging.log("graph", f"joint forward+backward of {self.__name__}", str(joint_g))
        return prog

    def _run_train(self, prog, entry, args, kwargs):
        from .autodiff import CompiledTrainStep
        from .trace import _module_state
        T = _dispatch._Tensor
        if not kwargs and all(isinstance(a, T) for a in args):
            leaves = args
        else:
            leaves = _pytree.flatten((tuple(args), dict(kwargs)))[0]
        bound = []
        users = iter(leaves)
        state = None
        for i in prog.fwd.inputs:
            if i.kind == "input":
                bound.append(next(users))
            elif i.kind in ("param", "buffer"):
                if state is None:
                    state = {name: t for t, name, _ in _module_state(self._fn)}
                bound.append(state[i.name])
            elif i.kind == "state":
                bound.append(prog.states[i.name])
        outs = CompiledTrainStep.apply(prog, *bound)
        return _pytree.unflatten(prog.out_spec, list(outs))

    def _arg_names(self, args, kwargs):
        from .trace import _flatten_inputs
        try:
            return [n for _, n in _flatten_inputs(self._fn, args, kwargs, allow_python=True)[0]]
        except Exception:
            return []

    def _compile(self, key, args, kwargs):
        names = self._arg_names(args, kwargs)
        if self._dynamic is not False and self._cache and not self._needs_grad(args, kwargs):
            entry = self._try_dynamic(key, names)
            if entry is not None:
                return entry
        if self._last_key is not None and _logging.enabled("recompiles"):
            def distance(k):
                if k[0] != key[0] or len(k[1]) != len(key[1]):
                    return 1 << 20
                return sum(a != b for a, b in zip(k[1], key[1])) + (k[2] != key[2])
            nearest = min(self._cache, key=distance, default=self._last_key)  # the guard that failed closest
            what, hint = _why(nearest, key, names)
            _logging.log("recompiles", f"recompiling {self.__name__}",
                         f"    triggered by: {what}\n    suggestion: {hint}\n"
                         f"    ({self._compiled_count} signature(s) compiled so far, limit {RECOMPILE_LIMIT})")
        self._last_key = key
        if self._compiled_count >= RECOMPILE_LIMIT:
            self._warn_once("limit", f"jitorch.compile({self.__name__}): recompile limit ({RECOMPILE_LIMIT}) "
                                     "reached; new signatures run eagerly")
            entry = _Entry(eager=True, reason="recompile limit")
            self._cache[key] = entry
            return entry
        try:
            traced = self._trace(args, kwargs, names)
        except TracerError as e:
            if self._fullgraph:
                raise
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            warnings.warn(f"jitorch.compile({self.__name__}, fullgraph=False): running eagerly for this signature: "
                          f"{first}", CompileWarning, stacklevel=3)
            entry = _Entry(eager=True, reason=first)
            self._cache[key] = entry
            return entry
        self._compiled_count += 1
        entry = _Entry(traced)
        entry.names = names
        entry.grad_check = self._is_mod or any(s[0] == "T" and s[4] for s in key[1]) or \
            any(t.requires_grad for t in traced._states.values())
        self._cache[key] = entry
        if self._dynamic is True and not self._families and not self._needs_grad(args, kwargs):
            fam = self._dynamic_all(key, entry, names)
            if fam is not None:
                return self._family_entry(fam, fam.example) or entry
        return entry

    # -- dynamic dims (docs/jit.md, "Dynamic dims")
    def _from_family(self, key, args, kwargs):
        """The entry of a dynamic family serving ``key`` (re-specialized for its size), or None."""
        for fam in self._families:
            size = fam.size_of(key)
            if size is None:
                continue
            if fam.grad_check and self._needs_grad(args, kwargs):
                return None  # training stays specialized (docs/jit.md)
            e = self._family_entry(fam, size)
            if e is not None and not fam.grad_check:  # later calls of this exact signature: a plain cache hit
                with _COMPILE_LOCK:
                    if size in fam.entries:
                        self._cache[key] = e
                        fam.keys.setdefault(size, []).append(key)
            return e
        return None

    def _family_entry(self, fam, size):
        e = fam.entries.get(size)
        if e is not None:
            try:
                fam.entries.move_to_end(size)
            except KeyError:  # another thread evicted it meanwhile; e still runs
                pass
            return e
        with _COMPILE_LOCK:
            e = fam.entries.get(size)
            if e is not None:
                return e
            from .export import check_symbolic, specialize_export
            try:
                g = specialize_export(fam.ex, size)
                check_symbolic(fam.ex, fam.sym, g, size)
            except ValueError as err:  # a rule rejects this size: it compiles as its own signature
                self._log_dyn(f"{fam.symbol}={size} does not re-specialize ({str(err).splitlines()[0]}); "
                              "compiling this size on its own")
                return None
            t = copy.copy(fam.base)
            t.graph = t.raw_graph = g
            t.kernels = {}
            e = _Entry(t)
            e.names = fam.names
            e.grad_check = fam.grad_check
            e.family = fam
            e.ensure_compiled()  # the executor for this size; its kernels' sources are the base's (cached)
            fam.entries[size] = e
            while len(fam.entries) > DYNAMIC_EXECUTORS:
                old, _ = fam.entries.popitem(last=False)
                for k in fam.keys.pop(old, ()):
                    if k != fam.base_key:
                        self._cache.pop(k, None)
            return e

    def _log_dyn(self, msg):
        if _logging.enabled("recompiles"):
            _logging.log("recompiles", f"{self.__name__}: dynamic dims", f"    {msg}")

    def _try_dynamic(self, key, names):
        """Automatic dynamic: ``key`` differs from a compiled signature only in some dims' sizes."""
        spec, leaves, training = key
        best = None
        for k, e in self._cache.items():
            if e.eager or e.family is not None or k[0] != spec or k[2] != training or len(k[1]) != len(leaves):
                continue
            dims = set()
            for j, (a, b) in enumerate(zip(k[1], leaves)):
                if a == b:
                    continue
                if a[0] != "T" or b[0] != "T" or len(a[1]) != len(b[1]) or a[2:] != b[2:]:
                    dims = None
                    break
                dims |= {(j, d) for d, (x, y) in enumerate(zip(a[1], b[1])) if x != y}
            if dims and (best is None or len(dims) < len(best[2])):
                best = (k, e, dims)
        if best is None:
            return None
        base_key, base, dims = best
        for fam in self._families:
            if fam.base_key == base_key:
                dims |= fam.dims
        dims = frozenset(dims)
        if (base_key, dims) in self._dyn_tried:
            return None
        self._dyn_tried.add((base_key, dims))
        now = {leaves[j][1][d] for j, d in dims}
        if len(now) != 1:
            shown = ", ".join(f"dim {d} of {self._leaf_name(j, names)}" for j, d in sorted(dims))
            self._log_dyn(f"{shown}: cannot be dynamic, stays specialized: their sizes differ in this call "
                          f"({sorted(now)}); jitorch keeps one dynamic size per function, shared by every dynamic dim")
            return None
        fam = self._make_family(base_key, base, dims, names)
        size = None if fam is None else fam.size_of(key)
        return None if size is None else self._family_entry(fam, size)

    def _dynamic_all(self, key, entry, names):
        """dynamic=True: dim 0 of every tensor input that shares the first input's dim-0 size."""
        leaves = key[1]
        ts = [(j, s) for j, s in enumerate(leaves) if s[0] == "T" and len(s[1]) >= 1]
        if not ts:
            self._log_dyn("dynamic=True: no tensor input has a dim; every shape stays static")
            return None
        n0 = ts[0][1][1][0]
        dims = frozenset((j, 0) for j, s in ts if s[1][0] == n0)
        static = [f"dim 0 of {self._leaf_name(j, names)}" for j, s in ts if s[1][0] != n0]
        if static or any(len(s[1]) > 1 for _, s in ts):
            self._log_dyn("dynamic=True: one dynamic size per function (a symbol shared by its dims): dim 0 of the "
                          f"inputs sized {n0} is marked; other dims stay static"
                          + (f" ({', '.join(static)} has another size)" if static else "")
                          + " until a call changes them")
        self._dyn_tried.add((key, dims))
        return self._make_family(key, entry, dims, names)

    def _leaf_name(self, j, names):
        return names[j] if names and j < len(names) else f"argument leaf {j}"

    def _make_family(self, base_key, base, dims, names):
        """Build the symbolic version of ``base``'s graph with ``dims`` as one symbol (export's
        _make_dynamic: re-traces at two probe sizes); None (logged, stays specialized) when it cannot."""
        from .export import Export, _exprs_plan, _input_types_at, _make_dynamic, specialize, symbolic_types
        from .verify import verify
        shown = ", ".join(f"dim {d} of {self._leaf_name(j, names)}" for j, d in sorted(dims))

        def refuse(why):
            self._log_dyn(f"{shown}: cannot be dynamic, stays specialized: {why}")
            return None
        t = base.traced
        leaves = base_key[1]
        if any(s[0] not in ("T", "S") for s in leaves):
            return refuse("non-tensor arguments (they are baked into the graph)")
        if t.step_params is not None:
            return refuse("the function runs backward/opt.step() inside (a training step)")
        dev = getattr(t, "device", None)
        if dev is not None and dev.type != "cpu":
            return refuse(f"dynamic dims run on cpu only (inputs on {dev})")
        g = t.graph
        users = [i for i in g.inputs if i.kind == "input"]
        tpos = [j for j, s in enumerate(leaves) if s[0] == "T"]
        if len(users) != len(tpos):
            return refuse("the graph's inputs do not match the tensor arguments")
        sizes = {leaves[j][1][d] for j, d in dims}
        if len(sizes) != 1:
            return refuse(f"their sizes differ ({sorted(sizes)}); jitorch keeps one dynamic size per function, "
                          "shared by every dynamic dim")
        example = sizes.pop()
        if example < 1:
            return refuse("size 0 is specialized")
        decl = {}
        for j, d in dims:
            decl.setdefault(users[tpos.index(j)].name, {})[d] = "s0"
        ex = Export(graph=g, tensors={}, requires_grad={}, in_spec=t._in_spec, out_spec=t._out_spec)
        live, _tracing.LIVE_CAPTURE[0] = _tracing.LIVE_CAPTURE[0], True  # as _trace captures
        try:
            ex = _make_dynamic(t, ex, ("s0", example, decl))
            probe = example + 1
            g1 = verify(specialize(g, _input_types_at(ex, probe), _exprs_plan(ex.exprs), probe))
            sym = symbolic_types(g, example, g1, probe)
        except Exception as e:
            msg = str(e).replace("jit.save: ", "").split(". Export it without")[0].splitlines()[0]
            return refuse(msg)
        finally:
            _tracing.LIVE_CAPTURE[0] = live
        fam = _Family(base_key, dims, ex, sym, t, base, names)
        self._families = [f for f in self._families if f.base_key != base_key] + [fam]
        for j, d in sorted(dims):
            self._log_dyn(f"dim {d} of {self._leaf_name(j, names)} is now dynamic")
        return fam

    def _trace(self, args, kwargs, names):
        from ..autograd import enable_grad, no_grad
        from .optim_capture import capture
        from .trace import _BoundModule, _restore, _snapshot, _trace_impl
        leaves, spec = _pytree.flatten((tuple(args), dict(kwargs)))
        seen = set()
        for k, t in enumerate(leaves):  # a tensor passed twice traces as two inputs (the graph is pure)
            if isinstance(t, _dispatch._Tensor):
                if id(t) in seen:
                    leaves[k] = t.detach().clone()
                seen.add(id(t))
        fn0 = self._fn
        cap = capture()
        info = {"grad_params": None}

        def bound(*tensors):
            a, k = _pytree.unflatten(spec, list(tensors))
            out = fn0(*a, **k)
            if cap.backward_ran or cap.optimizers:
                params, grads = _step_grads(fn0, cap)
                info["grad_params"] = params
                return out, tuple(grads)
            return out
        bound.__name__ = bound._trace_name = self.__name__
        fn = _BoundModule(fn0, bound) if _is_module(fn0) else bound
        # tracing runs the function once; undo its effects (buffer updates, in-place writes to the
        # arguments, random draws, optimizer steps) so the compiled run that follows is the call's only effect
        snap = _snapshot(fn0 if _is_module(fn0) else None)
        snap += _snapshot(None, [t for t in leaves if isinstance(t, _dispatch._Tensor)])  # numpy and cuda storage
        rng = _random_ops.snapshot_generators()  # cpu and cuda: tracing's draws are undone
        # grad mode as the caller has it: a function may run backward (a training step) inside
        mode = enable_grad() if _dispatch.hooks.grad_enabled else no_grad()
        live, _tracing.LIVE_CAPTURE[0] = _tracing.LIVE_CAPTURE[0], True
        try:
            with cap, mode:
                traced, _ = _trace_impl(fn, tuple(leaves), {}, strict=True, names=names or None)
        finally:
            _tracing.LIVE_CAPTURE[0] = live  # nested compiles keep the outer setting
            _restore(snap)
            cap.restore()
            _random_ops.restore_generators(rng)
        traced.kernels = {}
        traced.step_params = info["grad_params"]  # not None: the function trains (backward / opt.step inside)
        traced.step_opts = tuple(cap.optimizers)
        traced.step_sig = tuple(cap.pre_signature)
        traced.device = trace_device(leaves, traced.graph)  # a cuda device: cuda kernels (fuse_cuda.py)
        return traced  # the executor is generated when a call needs it (_Entry.ensure_compiled)

    # -- introspection
    def _require(self):
        if self._last is None:
            raise RuntimeError(f"jitorch.compile({self.__name__}) compiles on its first call: call it once before "
                               "reading .graph, .code or .kernels")
        return self._last

    @property
    def graph(self):
        """The graph of the latest signature (the joint forward+backward graph after a training call)."""
        if self._trained and self._last_train is not None:
            return self._last_train.joint
        return self._require().graph

    @property
    def code(self):
        """The executor of the latest call (after a training call: the forward's, then the backward's)."""
        if self._trained and self._last_train is not None:
            return self._last_train.code
        return self._require().code

    @property
    def kernels(self):
        """{kernel name: generated source} of the latest call (training: ``fwd_k0``..., ``bwd_k0``...)."""
        if self._trained and self._last_train is not None:
            return dict(self._last_train.kernels)
        return dict(self._require().kernels)

    @property
    def backward_graph(self):
        """(forward graph, backward graph) of the latest training call (None before one)."""
        p = self._last_train
        return None if p is None else (p.fwd, p.bwd)

    def __repr__(self):
        n = sum(1 for e in self._cache.values() if not e.eager and e.family is None)
        return f"<jitorch.compile of {self.__name__}: {n} signature(s)>"


class CompiledModule(CompiledFunction):
    """jitorch.compile(module): call it like the module; parameters and attributes pass through."""

    @property
    def module(self):
        return self._fn

    def forward(self, *args, **kwargs):
        return self(*args, **kwargs)

    def named_parameters(self, *a, **k):
        return self._fn.named_parameters(*a, **k)

    def parameters(self, *a, **k):
        return self._fn.parameters(*a, **k)

    def named_buffers(self, *a, **k):
        return self._fn.named_buffers(*a, **k)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._fn, name)


def compile(model=None, *, dynamic=None, fullgraph=True, mode=None, backend=None, options=None, disable=False):
    """torch.compile's signature: ``compile(fn)``, ``@compile``, ``@compile(fullgraph=False)``."""
    if model is None:
        return functools.partial(compile, dynamic=dynamic, fullgraph=fullgraph, mode=mode, backend=backend,
                                 options=options, disable=disable)
    if disable:
        return model
    cls = CompiledModule if _is_module(model) else CompiledFunction
    out = cls(model, dynamic=dynamic, fullgraph=fullgraph, mode=mode)
    if cls is CompiledFunction:
        try:
            functools.update_wrapper(out, model, updated=())
        except (AttributeError, TypeError):
            pass
    return out


_ = math

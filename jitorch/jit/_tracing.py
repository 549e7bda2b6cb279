"""The tracer: records every dispatched op of a running function as IR nodes.

Eager dispatch calls ``hooks.tracer(op, inputs, outputs, attrs, inplace)`` after each op; while a
trace runs that hook is :func:`_hook`, which appends a node to the innermost :class:`_Session`.
A session maps tensors to IR values through ``Tensor._trace_id``, which holds a :class:`_TState`.

Functionalization. The IR is pure, eager tensors are not: views share memory and in-place ops
write through them. Each traced tensor belongs to a *storage* (the tensor that owns the memory:
an input, a parameter, a constant or an op's output) and reaches it through a chain of view ops
(``steps``). An in-place op computes the new value of its target out of place, then

- on a storage owner, the storage's current value becomes that new value;
- on a view, ``view_scatter(storage value, new view value, steps)`` gives the storage's new value.

Every write bumps the storage's version; a view whose version is behind is re-derived from the
storage's current value by replaying its steps (new view nodes) the next time it is used. Writes
to inputs, parameters and buffers become ``Graph.updates``.

Python values. ``Tensor.item()/bool()/int()/float()/tolist()/numpy()/__index__/__iter__`` call
:func:`on_python_value`: if the tensor's value depends on an input or parameter, the decision
would be baked into the graph, so the tracer raises :class:`TracerError` (or warns with
:class:`TracerWarning` when ``strict=False``), naming the ops that produced the value, the user's
line and the in-graph alternatives.

Control flow. :func:`trace_cond` and :func:`trace_while` trace each function into a sub-graph in
a child session. Tensors the functions close over become extra sub-graph inputs ("lifted"),
passed by the node; tensors captured from outside any trace become constants of the root graph.
"""
from __future__ import annotations

import linecache
import os
import sys
import warnings
import weakref
from contextlib import contextmanager

import numpy as np

from .. import _dispatch, _pool
from ..ops.registry import OPS
from . import _pytree
from .ir import (GRAPH_NAME, Graph, Input, IRError, Node, TensorType, attrs_tuple, fresh_name, normalize_literal,
                 sanitize_name)


class TracerError(RuntimeError):
    """The function cannot be traced faithfully (a Python decision on a traced value, ...)."""


class TracerWarning(UserWarning):
    """Something was baked into the trace (``strict=False``), as torch's TracerWarning."""


_JITORCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
GENERATED_PREFIX = "<jitorch-code"  # file name of generated code (jit.trace's .code)
# Library code whose lines are what a user wants to see in a graph (a layer's forward, the demo),
# as TorchScript points at torch/nn/modules/*.py: not skipped when looking for the source line.
_USER_LEVEL = (_JITORCH_DIR + "nn" + os.sep, _JITORCH_DIR + "cli.py")


# ---------------------------------------------------------------- user source locations

def user_frame():
    """The innermost frame outside jitorch (and outside generated code)."""
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if fn.startswith(_USER_LEVEL) or not (fn.startswith(_JITORCH_DIR) or fn.startswith(GENERATED_PREFIX)):
            return f
        f = f.f_back
    return None


def user_loc():
    f = user_frame()
    if f is None:
        return ""
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"


def user_line():
    """'model.py:13 in forward:  if x.sum() > 0:' for messages."""
    f = user_frame()
    if f is None:
        return "unknown location"
    fn = f.f_code.co_filename
    code = linecache.getline(fn, f.f_lineno).strip()
    return f"{fn}:{f.f_lineno} in {f.f_code.co_name}" + (f":\n      {code}" if code else "")


# ---------------------------------------------------------------- per-tensor state

class _Storage:
    """Memory owned by one traced tensor: its current IR value and a version bumped by writes."""
    __slots__ = ("value", "version", "type", "kind", "input", "origin", "first_write")

    def __init__(self, value, type_, kind, input_name=None):
        self.value, self.version, self.type, self.kind, self.input = value, 0, type_, kind, input_name
        self.origin = self.first_write = None


class _TState:
    """What ``Tensor._trace_id`` holds: the session, the storage, the view steps from it and the
    IR value of this tensor as of ``version`` of the storage."""
    __slots__ = ("session", "storage", "steps", "value", "version")

    def __init__(self, session, storage, steps, value, version):
        self.session, self.storage, self.steps, self.value, self.version = session, storage, steps, value, version


def _owner(a):
    """The array that owns the memory of ``a`` (the end of its ``.base`` chain; see _pool.storage_of)."""
    while isinstance(getattr(a, "base", None), np.ndarray):
        a = a.base
    return _pool.storage_of(a) if isinstance(a, np.ndarray) else a


def _memkey(t):
    a = t._data
    iface = getattr(a, "__array_interface__", None) or getattr(a, "__cuda_array_interface__", None)
    if iface is None:
        return None
    return (iface["data"][0], tuple(a.shape), tuple(a.strides), str(a.dtype), t._device.type)


# ---------------------------------------------------------------- sessions

_stack: list = []
# Set by jitorch.compile while it traces: captured leaf tensors that require grad become ``state``
# inputs (bound live) instead of constants. Off for jit.trace/script (their contract is unchanged).
LIVE_CAPTURE = [False]


def _hook(op, inputs, outputs, attrs, inplace=False):
    _stack[-1].record(op, inputs, outputs, attrs, inplace)


def is_tracing():
    """True while jit.trace/script records ops (torch.jit.is_tracing).

    Library code can skip data-dependent validity checks with it, e.g.
    ``if not jit.is_tracing() and bool((b == 0).any()): raise ...``.
    """
    return bool(_stack) and _dispatch.hooks.tracer is _hook


def _push(session):
    session.saved_hook = _dispatch.hooks.tracer
    _stack.append(session)
    _dispatch.hooks.tracer = _hook


def _pop(session):
    assert _stack and _stack[-1] is session, "tracing sessions must nest"
    _stack.pop()
    _dispatch.hooks.tracer = session.saved_hook
    session.closed = True


@contextmanager
def suspended():
    """Run eagerly without recording (the real values of a traced while_loop)."""
    saved = _dispatch.hooks.tracer
    _dispatch.hooks.tracer = None
    try:
        yield
    finally:
        _dispatch.hooks.tracer = saved


def current():
    return _stack[-1] if _stack else None


class _Session:
    """One graph being recorded: the root trace, or a cond/while_loop function (child session)."""

    def __init__(self, name, parent=None, strict=True):
        name = sanitize_name(name)
        self.name = name if GRAPH_NAME.match(name) else "g_" + name
        self.parent = parent
        self.root = parent.root if parent is not None else self
        self.strict = strict if parent is None else parent.strict
        self.inputs, self.nodes = [], []
        self.used = set()          # value names taken
        self.counter = 0
        self.types, self.producer, self.depends = {}, {}, {}
        self.input_kind = {}
        self.mem = {}              # memory signature -> weakref of a traced tensor (aliases made outside dispatch)
        self.foreign = {}          # id(tensor) -> (tensor, state) for tensors of an enclosing session
        self.lifted = {}           # enclosing session's value -> input name here
        self.lifted_order = []
        self.constants = {}
        self.storages = []         # storages of the inputs (for updates)
        self.closed = False
        self.saved_hook = None
        self.sub_counter = 0
        self.warned = set()
        self.state_tensors = {}    # input name -> the live tensor of a ``state`` input

    # ------------------------------------------------------------ names and nodes
    def fresh(self):
        while str(self.counter) in self.used:
            self.counter += 1
        name = str(self.counter)
        self.used.add(name)
        self.counter += 1
        return name

    def next_sub_id(self):
        k = self.root.sub_counter
        self.root.sub_counter += 1
        return k

    def emit(self, op, operands, attrs, types, loc=None):
        outs = tuple(self.fresh() for _ in types)
        node = Node(op, tuple(operands), attrs, outs, tuple(types), user_loc() if loc is None else loc)
        self.nodes.append(node)
        dep = any(self.depends.get(x, False) for x in operands if isinstance(x, str))
        for o, t in zip(outs, types):
            self.types[o] = t
            self.producer[o] = node
            self.depends[o] = dep
        return outs

    def add_input(self, t, name, kind, depends=None):
        name = fresh_name(self.used, name)
        typ = TensorType(t.shape, t.dtype)
        self.inputs.append(Input(name, typ, kind))
        self.types[name] = typ
        self.input_kind[name] = kind
        self.depends[name] = (kind != "const") if depends is None else depends
        storage = _Storage(name, typ, kind, name)
        self.storages.append(storage)
        t._trace_id = _TState(self, storage, (), name, 0)
        self._remember(t)
        if kind == "const":
            self.constants[name] = np.array(_host(t), copy=True)
            storage.origin = weakref.ref(t)
        return name

    def _remember(self, t):
        # keyed by memory, kept while the memory lives (autograd may keep a tensor's data under
        # another Tensor object after the traced one is gone)
        key = _memkey(t)
        if key is not None:
            data = t._data
            if type(data).__name__ == "CudaArray":  # not weak-referenceable: its device buffer owns the memory
                data = data.buffer
            try:
                self.mem[key] = (weakref.ref(_owner(data)), t._trace_id)
            except TypeError:
                pass

    def _new_root(self, t, name):
        storage = _Storage(name, self.types[name], "node")
        t._trace_id = _TState(self, storage, (), name, 0)
        self._remember(t)

    # ------------------------------------------------------------ tensors -> values
    def _alias(self, t):
        """A traced tensor with exactly t's memory (t was made outside dispatch: detach, .data)."""
        key = _memkey(t)
        entry = self.mem.get(key) if key is not None else None
        if entry is not None and entry[0]() is not None and entry[1] is not t._trace_id:
            return entry[1]
        return None

    def _state(self, t):
        st = t._trace_id
        if st is not None and st.session is self:
            return st
        f = self.foreign.get(id(t))
        if f is not None and f[0] is t:
            return f[1]
        alias = self._alias(t)
        if alias is not None and (st is None or st.session.closed):
            new = _TState(self, alias.storage, alias.steps, alias.value, alias.version)
            t._trace_id = new
            self._remember(t)
            return new
        if self.parent is not None:
            outer = self.parent.value_of(t)
            name = self._lift(outer)
            new = _TState(self, _Storage(name, self.types[name], "lifted"), (), name, 0)
            self.foreign[id(t)] = (t, new)
            return new
        state = getattr(t, "_jit_state", None)
        if isinstance(state, str):
            # a tensor that asks to be read and written by reference (a random generator's state)
            self.add_input(t, state, "state")
            self.state_tensors[t._trace_id.value] = t
            return t._trace_id
        if LIVE_CAPTURE[0] and t.requires_grad and t.grad_fn is None:
            # jitorch.compile: a captured leaf that requires grad (a parameter the function reads
            # from a global or a closure) is bound live by reference, so optimizer updates are seen
            # and gradients flow to it
            self.add_input(t, "captured", "state")
            self.state_tensors[t._trace_id.value] = t
            return t._trace_id
        # a tensor made outside the traced function (or outside the op table): a constant
        self.add_input(t, f"c{len(self.constants)}", "const")
        return t._trace_id

    def _lift(self, outer):
        name = self.lifted.get(outer)
        if name is None:
            name = fresh_name(self.used, outer if not outer.isdigit() else f"v{outer}")
            typ = self.parent.types[outer]
            self.inputs.append(Input(name, typ, "input"))
            self.types[name] = typ
            self.input_kind[name] = "input"
            self.depends[name] = self.parent.depends.get(outer, True)
            self.lifted[outer] = name
            self.lifted_order.append(outer)
        return name

    def value_of(self, t):
        """The IR value of tensor t now (re-deriving a view whose storage was written since)."""
        st = self._state(t)
        if st.version != st.storage.version:
            v = st.storage.value
            for name, attrs in st.steps:
                v = self._emit_view(name, v, attrs)
            st.value, st.version = v, st.storage.version
        return st.value

    def _emit_view(self, name, value, attrs):
        from .verify import infer_types
        ((shape, dtype),) = infer_types(name, [self.types[value]], attrs)
        return self.emit(name, [value], attrs, (TensorType(shape, dtype),))[0]

    def operand(self, x, op):
        if isinstance(x, _dispatch._Tensor):
            return self.value_of(x)
        try:
            return normalize_literal(x)
        except IRError as e:
            raise TracerError(f"{op.name}: {e} (at {user_line()})") from None

    # ------------------------------------------------------------ recording
    def record(self, op, inputs, outputs, attrs, inplace):
        if "generator" in attrs:
            attrs = dict(attrs, generator=_generator_attr(op, attrs["generator"]))
        try:
            attrs = attrs_tuple(attrs)
        except IRError as e:
            raise TracerError(f"{op.name}: {e}; the IR cannot record it (at {user_line()})") from None
        if op.name == "as_strided":
            self._check_layout(op, inputs[0])
        if inplace:
            return self._record_inplace(op, inputs, outputs[0], attrs)
        operands = [self.operand(x, op) for x in inputs]
        types = tuple(TensorType(o.shape, o.dtype) for o in outputs)
        outs = self.emit(op.name, operands, attrs, types)
        if "dynamic_shape" in op.tags and self.depends.get(outs[0]) and (op.name, user_loc()) not in self.warned:
            self.warned.add((op.name, user_loc()))
            warnings.warn(TracerWarning(
                f"{op.name}: the size of its result ({', '.join(str(t) for t in types)}) depends on the data; the graph "
                f"records this size at {user_line()}. The traced function still computes any size (it runs the op), "
                "but the graph's types, interpret and compiled code assume this one."), stacklevel=4)
        if "view" in op.tags:
            src = self._state(inputs[0])
            for o, name in zip(outputs, outs):
                o._trace_id = _TState(self, src.storage, src.steps + ((op.name, attrs),), name, src.storage.version)
                self._remember(o)
        else:
            for o, name in zip(outputs, outs):
                self._new_root(o, name)

    def _check_layout(self, op, x):
        # as_strided reads memory, not values: the graph defines it on the row-major layout of its
        # input, which matches eager only when the input is C-contiguous.
        data = x._data
        if not getattr(data, "flags", None) or not data.flags.c_contiguous:
            self.decide(f"{op.name} on a non-contiguous tensor (strides {list(x.stride())})",
                        "the graph applies strides to the row-major layout of the input; call .contiguous() "
                        "first, or use view ops (permute, slice, unfold on a contiguous tensor)")

    def _record_inplace(self, op, inputs, target, attrs):
        st = self._state(target)
        if self.parent is not None and st.storage.kind in ("input", "lifted"):
            raise TracerError(
                f"{op.name}_: a function passed to cond/while_loop writes in place into a tensor it did not "
                f"create, at {user_line()}\n  Functions passed to cond/while_loop must be pure: use the "
                f"out-of-place op (x = x.{op.name}(...)) and return the result.")
        cur = self.value_of(target)
        operands = [cur] + [self.operand(x, op) for x in inputs[1:]]
        dtype = op.dtype_rule(*inputs, **dict(attrs))
        if op.nout != 1:
            dtype = dtype[0]
        (new,) = self.emit(op.name, operands, attrs, (TensorType(target.shape, dtype),))
        if dtype is not target.dtype:  # in-place ops store into the target's dtype
            (new,) = self.emit("to_dtype", [new], (("dtype", target.dtype),), (TensorType(target.shape, target.dtype),))
        storage = st.storage
        if st.steps:
            (root_value,) = self.emit("view_scatter", [storage.value, new], (("steps", st.steps),), (storage.type,))
        else:
            root_value = new
        storage.value = root_value
        storage.version += 1
        st.value, st.version = new, storage.version
        if storage.first_write is None:
            storage.first_write = f"{op.name}_ at {user_line()}"

    # ------------------------------------------------------------ Python values
    def chain(self, value):
        """'%x (input) -> mul (model.py:5) -> sum (model.py:6)': the ops that made ``value``."""
        steps, v = [], value
        while v in self.producer and len(steps) < 10:
            n = self.producer[v]
            steps.append(f"{n.op} ({n.loc})" if n.loc else n.op)
            nxt = [x for x in n.value_inputs if self.depends.get(x)]
            if not nxt:
                break
            v = nxt[0]
        if v in self.producer:
            start = "..."
        else:
            kind = self.input_kind.get(v, "input")
            start = f"%{v} ({'function input' if kind == 'input' else kind})"
        return " -> ".join([start] + steps[::-1])

    def decide(self, what, fix):
        msg = f"{what} at {user_line()}\n  {fix}"
        if self.root.strict:
            raise TracerError(msg + "\n  (jit.trace(..., strict=False) bakes the value in with a TracerWarning instead.)")
        warnings.warn(TracerWarning(msg + "\n  The traced graph keeps the value it had while tracing."), stacklevel=4)

    def build(self, outputs, updates=()):
        return Graph(self.name, tuple(self.inputs), tuple(self.nodes), tuple(outputs), tuple(updates),
                     constants=dict(self.constants))

    def warn_captured_writes(self, outputs):
        """Warn about writes into captured tensors that outlive the call (a global buffer, say).

        Tensors made inside the function (``jitorch.ones`` fills an empty tensor in place) are
        gone by now or are outputs; the graph handles them exactly, so they stay quiet.
        """
        keep = {id(t) for t in outputs} | {id(t._base) for t in outputs if t._base is not None}
        for st in self.storages:
            if st.kind == "const" and st.version > 0 and st.origin is not None:
                t = st.origin()
                if t is not None and id(t) not in keep and id(t._base) not in keep:
                    warnings.warn(TracerWarning(
                        f"the traced function writes into a tensor captured from outside it (%{st.input}, first by "
                        f"{st.first_write}); the graph starts from its value at trace time on every call and does not "
                        "write it back. Pass it as an argument (or register it as a buffer) to keep the update."),
                        stacklevel=4)

    def updates(self):
        return tuple((s.input, s.value) for s in self.storages
                     if s.kind in ("input", "param", "buffer", "state") and s.version > 0 and s.value != s.input)


def _generator_attr(op, g):
    """A random op's ``generator`` attribute: None (the default generator, drawn from at each call)."""
    if g is None:
        return None
    try:
        from ..ops.random import default_generator
    except ImportError:  # pragma: no cover - the random ops are not there
        default_generator = None
    if g is default_generator:
        return None
    raise TracerError(
        f"{op.name}: an explicit Generator object cannot be recorded in a graph (at {user_line()}); traced random "
        "ops draw from the default generator on every call. Seed it with jitorch.manual_seed(...) and pass "
        "generator=None (docs/jit.md, section 7).")


def _host(t):
    data = t._data
    if type(data).__name__ == "CudaArray":  # a cuda tensor captured as a constant: graphs hold host arrays
        from ..backends.cuda import to_host
        return to_host(data)
    return data if isinstance(data, np.ndarray) else data.copy_to_host()


_FIXES = {
    "bool": "Keep the decision in the graph: jitorch.where(cond, a, b) selects values elementwise, "
            "jitorch.cond(pred, true_fn, false_fn, (x,)) runs one of two functions.",
    "item": "Keep the value a tensor: a 0-dim tensor broadcasts in every op (x * t instead of x * t.item()); "
            "for a data-dependent loop use jitorch.while_loop(cond_fn, body_fn, (x,)), for a branch jitorch.cond.",
    "index": "Sizes in the graph are static: use x.shape / x.size(d) (Python ints) or shape-taking ops "
             "(reshape_as, expand_as), not a tensor's value.",
    "iteration": "Iterate explicitly: for row in x.unbind(0) (or for i in range(x.shape[0]): x[i]) records one "
                 "select op per row; for a data-dependent loop use jitorch.while_loop.",
}
_FIXES["int"] = _FIXES["float"] = _FIXES["tolist"] = _FIXES["numpy"] = _FIXES["__array__"] = _FIXES["item"]


def on_python_value(tensor, what):
    """Called by Tensor when its value leaves the graph as a Python value (see module doc)."""
    if not is_tracing():
        return
    st = tensor._trace_id
    session = current()
    if st is not None and not st.session.closed:
        session = st.session
    elif session._alias(tensor) is None:
        return  # not a traced value (a tensor made outside the trace): nothing is baked
    value = session.value_of(tensor)
    if not session.depends.get(value):
        return  # computed from constants only: the same on every call
    name = {"bool": "bool()", "item": ".item()", "int": "int()", "float": "float()", "tolist": ".tolist()",
            "numpy": ".numpy()", "__array__": "np.asarray()", "index": "using it as an int (shape, size, index)",
            "iteration": "iterating over it"}.get(what, what)
    asker = _library_caller()
    if asker:
        name += f" (asked by jitorch itself, {asker}: a data-dependent check or size in the library)"
    key = (value, user_loc())
    if key in session.warned:  # float(t) calls t.item(): one decision, one message
        return
    session.warned.add(key)
    session.decide(
        f"{name} on a traced tensor {session.types[value]} whose value depends on the inputs; the Python value "
        f"would be baked into the graph.\n  The value comes from: {session.chain(value)}\n  Python decision",
        _FIXES.get(what, _FIXES["item"]))


def _library_caller():
    """'floor_divide in _functional.py:140' when jitorch code (not the user) asked for the value."""
    tensor_py = os.path.join(_JITORCH_DIR, "tensor.py")
    f = sys._getframe(2)
    while f is not None and (f.f_code.co_filename == __file__ or f.f_code.co_filename == tensor_py):
        f = f.f_back
    if f is None or not f.f_code.co_filename.startswith(_JITORCH_DIR):
        return ""
    return f"{f.f_code.co_name} in {os.path.relpath(f.f_code.co_filename, os.path.dirname(_JITORCH_DIR.rstrip(os.sep)))}:{f.f_lineno}"


# ---------------------------------------------------------------- cond / while_loop

class _Branch:
    def __init__(self, session, leaves, spec, values, n_operands):
        self.session, self.leaves, self.spec, self.values, self.n = session, leaves, spec, values, n_operands

    @property
    def types(self):
        return tuple(self.session.types[v] for v in self.values)

    def graph(self, lifted):
        """The sub-graph with inputs operands + ``lifted`` (enclosing values; unused ones included)."""
        s = self.session
        ins = list(s.inputs[:self.n])
        by_name = {i.name: i for i in s.inputs}
        for outer in lifted:
            if outer in s.lifted:
                ins.append(by_name[s.lifted[outer]])
            else:
                name = fresh_name(s.used, outer if not outer.isdigit() else f"v{outer}")
                ins.append(Input(name, s.parent.types[outer], "input"))
        return Graph(s.name, tuple(ins), tuple(s.nodes), tuple(self.values))


def _param_names(fn, n):
    import inspect
    try:
        ps = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        ps = []
    names = [p.name for p in ps[:n]]
    return names + [f"arg{i}" for i in range(len(names), n)]


def _trace_fn(parent, fn, operands, name, what):
    sub = _Session(name, parent)
    args = []
    for o, pname in zip(operands, _param_names(fn, len(operands))):
        a = _dispatch._Tensor._wrap(o._data, o._device)  # same memory, a new identity inside the sub-graph
        sub.add_input(a, pname, "input", depends=parent.depends.get(parent.value_of(o), True))
        args.append(a)
    _push(sub)
    try:
        out = fn(*args)
        leaves, spec = _pytree.flatten(out)
        if spec[0] == "const" or any(c[0] == "const" for c in _flat_specs(spec)):
            raise TracerError(f"{what} must return a tensor or a tuple/list of tensors, returned "
                              f"{_pytree.describe(spec)} (at {user_line()})")
        values = [sub.value_of(t) for t in leaves]
    finally:
        _pop(sub)
    return _Branch(sub, leaves, spec, values, len(operands))


def _flat_specs(spec):
    kids = spec[1] if spec[0] in ("tuple", "list") else spec[2] if spec[0] in ("dict", "namedtuple") else ()
    out = []
    for c in kids:
        out.append(c)
        out += _flat_specs(c)
    return out


def _lifted_union(*branches):
    out = []
    for b in branches:
        for v in b.session.lifted_order:
            if v not in out:
                out.append(v)
    return out


def _outputs(session, leaves, names):
    """Fresh tensors for a control-flow node's outputs: copies of the eager results."""
    outs = []
    with suspended():
        for t, name in zip(leaves, names):
            c = t.clone()
            session._new_root(c, name)
            outs.append(c)
    return outs


def _types_str(types):
    return "(" + ", ".join(str(t) for t in types) + ")"


def trace_cond(pred, true_fn, false_fn, operands):
    """jitorch.cond while tracing: both functions become sub-graphs of one ``cond`` node."""
    s = current()
    operands = tuple(operands)
    if not isinstance(pred, _dispatch._Tensor):
        return (true_fn if pred else false_fn)(*operands)  # a Python bool is static: trace one branch inline
    if pred.numel() != 1:
        raise RuntimeError(f"cond: the predicate must have one element, got shape {list(pred.shape)}")
    pv = s.value_of(pred)
    vals = [s.value_of(o) for o in operands]
    base = f"{s.root.name}.cond{s.next_sub_id()}"
    tb = _trace_fn(s, true_fn, operands, base + ".true", "cond's true_fn")
    fb = _trace_fn(s, false_fn, operands, base + ".false", "cond's false_fn")
    if tb.spec != fb.spec or tb.types != fb.types:
        raise TracerError(
            f"cond: the branches must return the same structure, shapes and dtypes; true_fn returns "
            f"{_pytree.describe(tb.spec)} {_types_str(tb.types)}, false_fn returns {_pytree.describe(fb.spec)} "
            f"{_types_str(fb.types)} (at {user_line()})")
    lifted = _lifted_union(tb, fb)
    tg, fg = tb.graph(lifted), fb.graph(lifted)
    outs = s.emit("cond", [pv] + vals + lifted, (("true_graph", tg), ("false_graph", fg)), tg.output_types)
    taken = tb if bool(np.asarray(_host(pred)).reshape(-1)[0]) else fb
    return _pytree.unflatten(taken.spec, _outputs(s, taken.leaves, outs))


def trace_while(cond_fn, body_fn, carried):
    """jitorch.while_loop while tracing: one ``while_loop`` node; the real values run eagerly."""
    from .._control_flow import _eager_while
    s = current()
    carried = tuple(carried)
    vals = [s.value_of(c) for c in carried]
    types = tuple(s.types[v] for v in vals)
    base = f"{s.root.name}.while{s.next_sub_id()}"
    cb = _trace_fn(s, cond_fn, carried, base + ".cond", "while_loop's cond_fn")
    if len(cb.values) != 1 or cb.types[0].numel() != 1:
        raise TracerError(f"while_loop: cond_fn must return one one-element tensor, returned "
                          f"{_pytree.describe(cb.spec)} {_types_str(cb.types)} (at {user_line()})")
    bb = _trace_fn(s, body_fn, carried, base + ".body", "while_loop's body_fn")
    if bb.types != types:
        raise TracerError(f"while_loop: body_fn must return values of the carried types {_types_str(types)}, "
                          f"returned {_pytree.describe(bb.spec)} {_types_str(bb.types)} (at {user_line()})")
    lifted = _lifted_union(cb, bb)
    cg, bg = cb.graph(lifted), bb.graph(lifted)
    outs = s.emit("while_loop", vals + lifted, (("cond_graph", cg), ("body_graph", bg)), types)
    with suspended():
        result = _eager_while(cond_fn, body_fn, carried)
    return tuple(_outputs(s, result, outs))


# ---------------------------------------------------------------- one root trace

def run_trace(fn, args, kwargs, inputs, params, name, strict=True):
    """Trace ``fn(*args, **kwargs)``; ``inputs`` are (tensor, name) pairs of the flattened arguments,
    ``params`` (tensor, name, kind) pairs of module state. Returns (graph, output spec, outputs,
    {state input name: live tensor})."""
    s = _Session(name, strict=strict)
    _push(s)
    try:
        for t, n in inputs:
            st = t._trace_id
            if st is not None and st.session is s:
                raise TracerError(f"the same tensor is passed twice as an input (as %{st.value} and as {n}); "
                                  "pass distinct tensors, e.g. x.clone()")
            s.add_input(t, n, "input")
        for t, n, kind in params:
            st = t._trace_id
            if st is not None and st.session is s:
                continue  # a tied weight: one input serves both names
            s.add_input(t, n, kind)
        out = fn(*args, **kwargs)
        leaves, spec = _pytree.flatten(out)
        values = [s.value_of(t) for t in leaves]
        graph = s.build(values, s.updates())
        del out
        s.warn_captured_writes(leaves)
    except BaseException as e:
        if s.nodes and not isinstance(e, TracerError) and hasattr(e, "add_note"):
            last = s.nodes[-1]
            e.add_note(f"while tracing graph {s.name}; last recorded node: {last}  # {last.loc}")
        raise
    finally:
        _pop(s)
    return graph, spec, leaves, dict(s.state_tensors)

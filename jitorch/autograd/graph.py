"""The autograd graph: nodes (``grad_fn``), edges, saved tensors, and the recording hooks.

Every differentiable op dispatched with an input that requires grad records one :class:`OpNode`:
the op's table record (its ``vjp`` is the gradient rule), its attributes, what the rule declared
it needs (saved inputs/outputs, with their version numbers) and one edge per input:
``(node, output_nr)`` for inputs that require grad, ``None`` otherwise. Leaves get one shared
:class:`AccumulateGrad` node each (held weakly by the tensor, strongly by the graph).

Gradient rules (``OpDef.vjp``) are called as ``rule(ctx, *grads)`` and return one gradient per op
input (``None`` where there is none). ``ctx.inputs`` holds the saved input tensors, Python scalars
as passed, and :class:`TensorMeta` (shape, dtype, strides) for tensor inputs the rule did not ask
to save; ``ctx.outputs`` the saved outputs; ``ctx.attrs`` the op attributes;
``ctx.needs_input_grad`` one bool per input. A rule declares what it saves with the
:func:`jitorch.autograd._vjp.saves` decorator (default: every input and output).

In-place ops rebase the target's history; an in-place op on a view rewrites its base's history
with a :class:`CopySlices` node (torch's behaviour), and the view's ``grad_fn`` becomes an
``as_strided`` node of the base. Views whose base changed since their ``grad_fn`` was made are
regenerated lazily the next time they are used.
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from .. import _dtype as D
from .._dispatch import call, call_inplace, hooks
from ..ops.registry import OPS
from ..tensor import Tensor

__all__ = ["Node", "OpNode", "AccumulateGrad", "CopySlices", "TensorMeta", "RemovableHandle"]

_BY_NP = D._BY_NP

FREED_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they have already "
    "been freed). Saved intermediate values of the graph are freed when you call .backward() or autograd.grad(). "
    "Specify retain_graph=True if you need to backward through the graph a second time or if you need to access "
    "saved tensors after calling backward."
)


class RemovableHandle:
    """Returned by ``register_hook``: ``handle.remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, store):
        self._store = weakref.ref(store) if store is not None else None
        RemovableHandle._next_id += 1
        self.id = RemovableHandle._next_id

    def remove(self):
        store = self._store() if self._store is not None else None
        if store is not None:
            store.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class _HookDict(dict):
    """A dict that can be weakly referenced (hook stores)."""
    __slots__ = ("__weakref__",)


class TensorMeta:
    """What a gradient rule may know about a tensor input it did not save: shape, dtype, strides."""

    __slots__ = ("shape", "np_dtype", "byte_strides", "device")

    def __init__(self, t):
        a = t._data
        self.shape = a.shape
        self.np_dtype = a.dtype
        self.byte_strides = a.strides
        self.device = t._device

    @property
    def dtype(self):
        return _BY_NP[self.np_dtype]

    @property
    def ndim(self):
        return len(self.shape)

    def dim(self):
        return len(self.shape)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def stride(self):
        it = self.np_dtype.itemsize
        return tuple(s // it for s in self.byte_strides)

    def numel(self):
        return math.prod(self.shape)

    def is_floating_point(self):
        return self.np_dtype.kind == "f"

    def __repr__(self):
        return f"TensorMeta(shape={list(self.shape)}, dtype={self.dtype})"


def _type_desc(t):
    return f"[jitorch.{D.type_name(t.dtype)} {list(t._data.shape)}]"


def _version_error(t, saved_version, owner, nr, needed_by=None):
    which = f", which is output {nr} of {owner}," if owner else ","
    by = f" It was saved for the backward of {needed_by}." if needed_by else ""
    return RuntimeError(
        f"one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"{_type_desc(t)}{which} is at version {t._version_box.value}; expected version {saved_version} instead."
        f"{by} Hint: clone() the tensor before modifying it in place, or do the in-place op after backward()."
    )


class Node:
    """A backward function: ``grad_fn`` of a tensor. ``next_functions`` lists its input edges."""

    __slots__ = ("next", "n_out", "released", "_vv", "_tensor_hooks", "_retain", "_pre_hooks", "_post_hooks",
                 "metadata", "__weakref__")

    def _init(self, n_out=1):
        self.next = ()
        self.n_out = n_out
        self.released = False
        self._vv = None          # view nodes: the version of the view when this node was made
        self._tensor_hooks = None
        self._retain = None
        self._pre_hooks = None
        self._post_hooks = None
        self.metadata = None

    def name(self):
        return type(self).__name__

    @property
    def next_functions(self):
        return tuple((e[0], e[1]) if e is not None else (None, 0) for e in self.next)

    def apply(self, grads):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, *grads):
        return self.apply(grads)

    def release(self):
        self.released = True

    def register_hook(self, fn):
        """``fn(grad_inputs, grad_outputs)`` runs after this node; it may return new grad_inputs."""
        if self._post_hooks is None:
            self._post_hooks = _HookDict()
        h = RemovableHandle(self._post_hooks)
        self._post_hooks[h.id] = fn
        return h

    def register_prehook(self, fn):
        """``fn(grad_outputs)`` runs before this node; it may return new grad_outputs."""
        if self._pre_hooks is None:
            self._pre_hooks = _HookDict()
        h = RemovableHandle(self._pre_hooks)
        self._pre_hooks[h.id] = fn
        return h

    def _add_tensor_hook(self, nr, fn):
        if self._tensor_hooks is None:
            self._tensor_hooks = {}
        store = self._tensor_hooks.get(nr)
        if store is None:
            store = self._tensor_hooks[nr] = _HookDict()
        h = RemovableHandle(store)
        store[h.id] = fn
        return h

    def _get_metadata(self):
        if self.metadata is None:
            self.metadata = {}
        return self.metadata

    def __repr__(self):
        return f"<{self.name()} object at {hex(id(self))}>"


# ---------------------------------------------------------------------------------------------- op nodes

_NAMES = {"to_dtype": "ToCopyBackward0", "copy": "CopyBackwards", "as_strided": "AsStridedBackward0",
          "matmul": "MmBackward0"}
_SAVE_SPEC: dict = {}


def backward_name(opname):
    n = _NAMES.get(opname)
    if n is None:
        n = _NAMES[opname] = "".join(p[:1].upper() + p[1:] for p in opname.split("_")) + "Backward0"
    return n


def _save_spec(op):
    spec = _SAVE_SPEC.get(op.name)
    if spec is None or spec[0] is not op.vjp:
        rule = op.vjp
        si = getattr(rule, "save_inputs", None)
        so = getattr(rule, "save_outputs", True if si is None else False)
        spec = _SAVE_SPEC[op.name] = (rule, None if si is None else frozenset(si), so)
    return spec


class _Ctx:
    """What a gradient rule sees (see the module docstring)."""

    __slots__ = ("inputs", "outputs", "attrs", "needs_input_grad", "op")

    def __init__(self, inputs, outputs, attrs, needs, op):
        self.inputs = inputs
        self.outputs = outputs
        self.attrs = attrs
        self.needs_input_grad = needs
        self.op = op


class OpNode(Node):
    """The backward of one table op."""

    __slots__ = ("op", "attrs", "needs", "saved_in", "in_vers", "saved_out", "out_vers", "out_meta", "had_saved")

    def name(self):
        return backward_name(self.op.name)

    def release(self):
        self.released = True
        if self.had_saved:
            self.saved_in = None
            self.saved_out = None

    def _unpack(self):
        ins = self.saved_in
        vers = self.in_vers
        if vers is not None:
            for i, v in enumerate(vers):
                if v is not None:
                    t = ins[i]
                    if t._version_box.value != v:
                        fn = t.grad_fn
                        raise _version_error(t, v, fn.name() if fn is not None else None, t._output_nr,
                                             f"'{self.op.name}' ({self.name()})")
        outs = self.saved_out
        if outs is not None:
            enabled = hooks.grad_enabled
            res = []
            for i, a in enumerate(outs):
                if a is None:
                    res.append(None)
                    continue
                if a._version_box.value != self.out_vers[i]:
                    raise _version_error(a, self.out_vers[i], self.name(), i, f"'{self.op.name}' ({self.name()})")
                b = Tensor._wrap(a._data, a._device)
                b._version_box = a._version_box
                if enabled:  # create_graph: the saved output is this node's output again
                    b.grad_fn = self
                    b.requires_grad = True
                    b._output_nr = i
                res.append(b)
            outs = tuple(res)
        return ins, outs

    def apply(self, grads):
        if self.released and self.had_saved:
            raise RuntimeError(FREED_MSG)
        ins, outs = self._unpack()
        if self.n_out > 1:
            grads = list(grads)
            for i, g in enumerate(grads):
                if g is None and self.out_meta[i] is not None:
                    shape, npd = self.out_meta[i]
                    grads[i] = zeros_expanded(shape, npd, _device_of_grads(grads))
        res = self.op.vjp(_Ctx(ins, outs, self.attrs, self.needs, self.op), *grads)
        if len(res) != len(self.needs):
            raise RuntimeError(f"the gradient rule of '{self.op.name}' returned {len(res)} gradients, "
                               f"expected {len(self.needs)} (one per input)")
        return validate(self.name(), res, self.needs, ins)


def validate(name, res, needs, ins):
    """Gradients to the inputs' shapes (summing broadcast dims) and dtypes, as torch's engine does."""
    out = []
    for i, g in enumerate(res):
        if g is None or not needs[i]:
            out.append(None)
            continue
        x = ins[i]
        if type(x) is TensorMeta:
            shape, npd = x.shape, x.np_dtype
        else:
            a = x._data
            shape, npd = a.shape, a.dtype
        ga = g._data
        if ga.shape != shape:
            from ._vjp import sum_to
            try:
                g = sum_to(g, shape)
            except Exception:
                raise RuntimeError(
                    f"Function {name} returned an invalid gradient at index {i} - got {list(ga.shape)} but expected "
                    f"shape compatible with {list(shape)}") from None
        if g._data.dtype != npd:
            g = call("to_dtype", g, dtype=_BY_NP[npd])
        out.append(g)
    return out


def zeros_expanded(shape, npd, device=None):
    """A zero tensor of ``shape`` without allocating it (a stride-0 view of one zero) on ``device``."""
    if device is None or device.type == "cpu":
        z = Tensor._wrap(np.zeros((), npd))
    else:
        from .._creation import zeros
        z = zeros((), dtype=_BY_NP[np.dtype(npd)], device=device)
    return call("expand", z, size=tuple(shape)) if shape != () else z


class _NotImplementedNode(Node):
    __slots__ = ("opname",)

    def name(self):
        return backward_name(self.opname)

    def apply(self, grads):
        raise NotImplementedError(
            f"the derivative for '{self.opname}' is not implemented: jitorch.ops.OPS[{self.opname!r}] has no vjp rule")


class AccumulateGrad(Node):
    """The sink of a leaf: adds the incoming gradient into ``variable.grad``."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        self._init(1)
        self.variable = variable

    @property
    def next_functions(self):
        return ()

    def apply(self, grads):
        accumulate_grad(self.variable, grads[0])
        return ()


def accumulate_grad(var, g, steal=False):
    """torch's AccumulateGrad: the gradient itself the first time when nobody else holds it (``steal``),
    else a copy; then in-place ``+=`` (out of place, recorded, under create_graph)."""
    if g is None:
        return
    old = var.grad
    if old is None:
        var.grad = g if steal and not hooks.grad_enabled else call("clone", g)
    elif hooks.grad_enabled:
        var.grad = call("add", old, g, alpha=1)
    else:
        if old.requires_grad:  # a grad recorded by an earlier create_graph backward
            var.grad = call("add", old.detach(), g, alpha=1)
        else:
            call_inplace("add", old, g, alpha=1)
    hs = var.__dict__.get("_post_acc_hooks")
    if hs:
        for fn in list(hs.values()):
            fn(var)


def grad_accumulator(t):
    """The (shared) AccumulateGrad node of leaf ``t``."""
    d = t.__dict__
    ref = d.get("_gacc")
    acc = ref() if ref is not None else None
    if acc is None:
        acc = AccumulateGrad(t)
        d["_gacc"] = weakref.ref(acc)
    return acc


def edge_of(t):
    """The graph edge a gradient for tensor ``t`` flows into (``t`` requires grad)."""
    fn = t.grad_fn
    if fn is None:
        return (grad_accumulator(t), 0)
    if t._base is not None and fn._vv is not None and fn._vv != t._version_box.value:
        fn = _regenerate_view(t)
    return (fn, t._output_nr)


def gradient_edge(t):
    return edge_of(t) if t.requires_grad else None


# ---------------------------------------------------------------------------------------------- views

def _geometry(view, base):
    """(size, stride, offset) of ``view`` in elements, relative to ``base``'s first element."""
    a, b = view._data, base._data
    it = a.itemsize
    off = (a.__array_interface__["data"][0] - b.__array_interface__["data"][0]) // it
    return tuple(a.shape), tuple(s // it for s in a.strides), off


def _as_strided_node(view, base, base_edge):
    size, stride, off = _geometry(view, base)
    node = OpNode.__new__(OpNode)
    node._init(1)
    node.op = OPS["as_strided"]
    node.attrs = {"size": size, "stride": stride, "storage_offset": off}
    node.needs = (base_edge is not None,)
    node.saved_in = (TensorMeta(base),)
    node.in_vers = None
    node.saved_out = None
    node.out_vers = None
    node.out_meta = None
    node.had_saved = False
    node.next = (base_edge,)
    node._vv = view._version_box.value
    return node


def _regenerate_view(t):
    """``t`` is a view whose base was modified in place since ``t.grad_fn`` was made: its gradient now
    goes through the base's current history."""
    base = t._base
    if not base.requires_grad:
        t.grad_fn._vv = t._version_box.value
        return t.grad_fn
    node = _as_strided_node(t, base, edge_of(base))
    _move_tensor_state(t, node)
    t.grad_fn = node
    t._output_nr = 0
    return node


def _move_tensor_state(t, node):
    if t._retains_grad:
        if node._retain is None:
            node._retain = {}
        node._retain[0] = weakref.ref(t)


# ---------------------------------------------------------------------------------------------- recording

def _has_float_output(outputs):
    for o in outputs:
        if o._data.dtype.kind == "f":
            return True
    return False


def record(op, inputs, outputs, attrs, inplace=False):
    """The dispatch hook (``hooks.autograd``): called when grad mode is on and an input requires grad."""
    rule = op.vjp
    if len(outputs) == 1:
        if outputs[0]._data.dtype.kind != "f":
            return
    elif not _has_float_output(outputs):
        return
    if rule is None:
        if "nondifferentiable" not in op.tags:
            _record_not_implemented(op, inputs, outputs)
        elif inplace:  # e.g. x.eq_(y) on a float x: its old history must not survive (torch: zero gradient)
            _record_inplace(op, inputs, outputs[0], attrs, _zero_rule)
        return
    if inplace:
        _record_inplace(op, inputs, outputs[0], attrs)
        return
    node = OpNode.__new__(OpNode)
    node._init(len(outputs))
    node.op = op
    node.attrs = attrs
    _fill(node, op, rule, inputs, None)
    out_meta = None if len(outputs) == 1 else []
    for i, o in enumerate(outputs):
        if o._data.dtype.kind == "f":
            o.grad_fn = node
            o.requires_grad = True
            o._output_nr = i
            if out_meta is not None:
                out_meta.append((o._data.shape, o._data.dtype))
        elif out_meta is not None:
            out_meta.append(None)
    node.out_meta = out_meta
    _save_outputs(node, op, outputs)
    if "view" in op.tags:
        node._vv = outputs[0]._version_box.value


def _fill(node, op, rule, inputs, clones):
    _, si, _ = _save_spec(op)
    diff = op.differentiable
    nxt = []
    needs = []
    saved = []
    vers = []
    any_saved = False
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor):
            if x.requires_grad and (diff is None or i in diff):
                fn = x.grad_fn
                if fn is None:
                    nxt.append((grad_accumulator(x), 0))
                elif x._base is not None and fn._vv is not None and fn._vv != x._version_box.value:
                    nxt.append((_regenerate_view(x), 0))
                else:
                    nxt.append((fn, x._output_nr))
                needs.append(True)
            else:
                nxt.append(None)
                needs.append(False)
            if si is None or i in si:
                if clones is not None and i in clones:
                    x = clones[i]
                saved.append(x)
                vers.append(x._version_box.value)
                any_saved = True
            else:
                saved.append(TensorMeta(x))
                vers.append(None)
        else:
            nxt.append(None)
            needs.append(False)
            saved.append(x)
            vers.append(None)
    node.next = tuple(nxt)
    node.needs = tuple(needs)
    node.saved_in = tuple(saved)
    node.in_vers = tuple(vers) if any_saved else None
    node.had_saved = any_saved


def _save_outputs(node, op, outputs):
    if not _save_spec(op)[2]:
        node.saved_out = None
        node.out_vers = None
        return
    aliases = []
    vers = []
    for o in outputs:
        a = Tensor._wrap(o._data, o._device)
        a._version_box = o._version_box
        aliases.append(a)
        vers.append(o._version_box.value)
    node.saved_out = tuple(aliases)
    node.out_vers = tuple(vers)
    node.had_saved = True


def _record_not_implemented(op, inputs, outputs):
    node = _NotImplementedNode.__new__(_NotImplementedNode)
    node._init(len(outputs))
    node.opname = op.name
    node.next = tuple(gradient_edge(x) if isinstance(x, Tensor) else None for x in inputs)
    for i, o in enumerate(outputs):
        if o._data.dtype.kind == "f":
            o.grad_fn = node
            o.requires_grad = True
            o._output_nr = i


# in-place ------------------------------------------------------------------------------------------------

_pending = None  # (target, version, {input index: clone}) prepared by inplace_check for the hook


def inplace_check(op, target, inputs):
    """Before an in-place kernel runs (``hooks.inplace_check``): torch's errors, and clones of saved
    inputs that the kernel is about to overwrite."""
    global _pending
    if not hooks.grad_enabled:
        return
    base = target._base
    if target.requires_grad:
        if target.grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    elif base is None:
        if not _any_requires_grad(inputs):
            return
    if base is not None and base.requires_grad:
        if base.grad_fn is None:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")
        if not target.requires_grad and not _any_requires_grad(inputs):
            # nothing would record the write, so the base's history would silently go stale
            raise RuntimeError(
                "A view was created in no_grad mode and is being modified inplace with grad mode enabled. Given that "
                "this use case is ambiguous and error-prone, it is forbidden. You can clarify your code by moving both "
                "the view and the inplace either both inside the no_grad block (if you don't want the inplace to be "
                "tracked) or both outside (if you want the inplace to be tracked).")
    rule = op.vjp
    if rule is None or not _any_requires_grad(inputs):
        return
    _, si, _ = _save_spec(op)
    clones = None
    box = target._version_box
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x._version_box is box and (si is None or i in si):
            if clones is None:
                clones = {}
            clones[i] = call("clone", x)
    if clones is not None:
        _pending = (target, box.value, clones)


def _any_requires_grad(inputs):
    for x in inputs:
        if isinstance(x, Tensor) and x.requires_grad:
            return True
    return False


def _device_of_grads(grads):
    """The device of the gradients that did arrive (missing ones are made there as zeros)."""
    for g in grads:
        if g is not None:
            return g._device
    return None


def _zero_rule(ctx, g):
    return tuple(zeros_expanded(x.shape, x.np_dtype if type(x) is TensorMeta else x._data.dtype, x.device) if n
                 else None
                 for x, n in zip(ctx.inputs, ctx.needs_input_grad))


_zero_rule.save_inputs = ()
_zero_rule.save_outputs = False


class _ZeroOp:
    """Stands in for a non-differentiable op's record when it writes a float tensor in place."""

    def __init__(self, op):
        self.name = op.name
        self.vjp = _zero_rule
        self.differentiable = ()
        self.tags = op.tags


def _record_inplace(op, inputs, target, attrs, rule=None):
    global _pending
    if rule is not None:
        op = _ZeroOp(op)
    clones = None
    p = _pending
    if p is not None:
        _pending = None
        if p[0] is target and p[1] + 1 == target._version_box.value:
            clones = p[2]
    node = OpNode.__new__(OpNode)
    node._init(1)
    node.op = op
    node.attrs = attrs
    rule = op.vjp
    _fill(node, op, rule, inputs, clones)
    node.out_meta = None
    _save_outputs(node, op, (target,))
    base = target._base
    if base is None:
        _move_tensor_state(target, node)
        target.grad_fn = node
        target.requires_grad = True
        target._output_nr = 0
        return
    # an in-place op on a view: the base's history is rewritten (torch's CopySlices)
    base_edge = gradient_edge(base)
    node.needs = (base_edge is not None,) + node.needs[1:]
    cs = CopySlices(base, target, node, base_edge)
    base.grad_fn = cs
    base.requires_grad = True
    base._output_nr = 0
    vn = _as_strided_node(target, base, (cs, 0))
    _move_tensor_state(target, vn)
    target.grad_fn = vn
    target.requires_grad = True
    target._output_nr = 0


class CopySlices(Node):
    """The new history of a base after an in-place op on one of its views: the gradient of the base
    is the incoming gradient with the view's region replaced by the op's gradient for it."""

    __slots__ = ("base_shape", "base_strides", "base_contiguous", "np_dtype", "view_geom", "fn")

    def __init__(self, base, view, fn, base_edge):
        self._init(1)
        a = base._data
        self.base_shape = a.shape
        self.base_strides = tuple(s // a.itemsize for s in a.strides)
        self.base_contiguous = a.flags.c_contiguous
        self.np_dtype = a.dtype
        self.view_geom = _geometry(view, base)
        self.fn = fn
        self.next = (base_edge,) + fn.next[1:]

    def release(self):
        self.released = True
        self.fn.release()

    def apply(self, grads):
        g = grads[0]
        size, stride, off = self.view_geom
        if self.base_contiguous:
            res = call("clone", g)
            buf = res
        else:
            from ._vjp import zeros, span
            buf = zeros((span(self.base_shape, self.base_strides),), _BY_NP[self.np_dtype], g._device)
            res = call("as_strided", buf, size=self.base_shape, stride=self.base_strides, storage_offset=0)
            call_inplace("copy", res, g)
        region = call("as_strided", buf, size=size, stride=stride, storage_offset=off)
        sub = self.fn.apply((call("clone", region),))
        if sub[0] is None:
            call_inplace("fill", region, value=0)
        else:
            call_inplace("copy", region, sub[0])
        return [res] + list(sub[1:])


def vjp_of(op, inputs, outputs, attrs, grads, needs=None):
    """Run ``op``'s gradient rule outside the graph, for the tracer/compiler that builds backward
    graphs: ``inputs``/``outputs`` are the op's values (tensors, possibly traced), ``grads`` one per
    output (None for non-differentiable ones). Returns one gradient per input, reduced to the input's
    shape and cast to its dtype exactly as the engine does (None where there is none)."""
    if isinstance(op, str):
        op = OPS[op]
    if op.vjp is None:
        raise NotImplementedError(f"the derivative for '{op.name}' is not implemented")
    if needs is None:
        diff = op.differentiable
        needs = tuple(isinstance(x, Tensor) and x._data.dtype.kind == "f" and (diff is None or i in diff)
                      for i, x in enumerate(inputs))
    res = op.vjp(_Ctx(tuple(inputs), tuple(outputs), dict(attrs), tuple(needs), op), *grads)
    return validate(backward_name(op.name), res, needs, tuple(inputs))

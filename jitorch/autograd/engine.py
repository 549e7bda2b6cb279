"""The backward engine: an iterative walk of the graph in dependency order.

1. Discover the nodes reachable from the roots and count, for each, the edges into it.
2. With ``inputs`` given, keep only nodes on a path to one of them (torch's pruning).
3. Pop ready nodes (all their gradients summed), run tensor hooks, retain_grad and captures,
   call the node, add its results into the buffers of its next nodes; a node is ready when its
   count drops to zero. Without ``retain_graph`` every executed node frees its saved tensors.

No recursion anywhere, so 10,000-op chains need no stack. Under ``create_graph`` the rules run with
grad mode on, so the gradients are themselves recorded.
"""
from __future__ import annotations

import sys
import weakref

import numpy as np

from .._dispatch import call, hooks
from ..tensor import Tensor
from .graph import AccumulateGrad, accumulate_grad, edge_of

__all__ = ["run_backward", "backward", "grad"]


def _as_tuple(x):
    if x is None:
        return None
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _make_root_grads(outputs, grad_outputs, create_graph, what="grad"):
    grads = []
    for i, out in enumerate(outputs):
        g = grad_outputs[i] if grad_outputs is not None and i < len(grad_outputs) else None
        if g is None:
            if out.requires_grad:
                if out._data.size != 1:
                    raise RuntimeError("grad can be implicitly created only for scalar outputs")
                from .._creation import ones_like
                g = ones_like(out)
            grads.append(g)
            continue
        if not isinstance(g, Tensor):
            from .._creation import tensor
            g = tensor(g, dtype=out.dtype)
        if g._data.shape != out._data.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{i}] has a shape of jitorch.Size({list(g._data.shape)}) and "
                f"output[{i}] has a shape of jitorch.Size({list(out._data.shape)}).")
        if g.dtype.is_floating_point != out.dtype.is_floating_point:
            raise RuntimeError(
                f"For complex/float Tensors, grad_output[{i}] must have a matching dtype: got {g.dtype} for an output of "
                f"dtype {out.dtype}")
        if not create_graph and g.requires_grad:
            g = g.detach()
        grads.append(g)
    return grads


def run_backward(roots, root_grads, keep_graph, create_graph, targets=None):
    """Propagate ``root_grads`` from ``roots`` (a list of tensors).

    ``targets``: None to accumulate into every reachable leaf (``backward()``); otherwise a list of
    edges ``(node, nr)`` whose incoming gradients are captured and returned (nothing accumulates).
    """
    root_edges = []
    grads = []
    for t, g in zip(roots, root_grads):
        if not t.requires_grad:
            continue
        root_edges.append(edge_of(t))
        grads.append(g)
    # 1. dependencies
    deps = {}
    stack = []
    for n, _ in root_edges:
        if n not in deps:
            deps[n] = 0
            stack.append(n)
    while stack:
        n = stack.pop()
        for e in n.next:
            if e is not None:
                c = e[0]
                d = deps.get(c)
                if d is None:
                    deps[c] = 1
                    stack.append(c)
                else:
                    deps[c] = d + 1
    # 2. pruning to the targets
    needed = None
    capture = None
    results = None
    if targets is not None:
        results = [None] * len(targets)
        capture = {}
        for k, (n, nr) in enumerate(targets):
            capture.setdefault(n, []).append((nr, k))
        needed = _needed_nodes(deps, root_edges, capture)
    # 3. execution
    buffers = {}
    for (n, nr), g in zip(root_edges, grads):
        _add_to_buffer(buffers, n, nr, g)
    ready = []
    seen_roots = set()
    for n, _ in root_edges:
        if deps[n] == 0 and n not in seen_roots:
            seen_roots.add(n)
            ready.append(n)
    prev_mode = hooks.grad_enabled
    hooks.grad_enabled = bool(create_graph)
    try:
        while ready:
            n = ready.pop()
            buf = buffers.pop(n, None)
            if buf is None:
                buf = [None] * n.n_out
            if n._tensor_hooks is not None or type(n) is AccumulateGrad:
                _run_tensor_hooks(n, buf)
            if n._retain is not None:
                _retain(n, buf)
            if capture is not None:
                caps = capture.get(n)
                if caps is not None:
                    for nr, k in caps:
                        g = buf[nr]
                        results[k] = g if g is None or results[k] is None else call("add", results[k], g, alpha=1)
            if needed is None:
                run = True
            else:
                run = False
                for e in n.next:
                    if e is not None and e[0] in needed:
                        run = True
                        break
            if run:
                if n._pre_hooks is not None:
                    for fn in list(n._pre_hooks.values()):
                        r = fn(tuple(buf))
                        if r is not None:
                            buf = list(r)
                if type(n) is AccumulateGrad:
                    g = buf[0]
                    buf = None
                    if g is not None:
                        # steal the buffer when nothing else can see it (torch does the same)
                        own = _sole_owner(g)
                        accumulate_grad(n.variable, g, own)
                    out = ()
                elif any(g is not None for g in buf):
                    out = n.apply(buf)
                else:
                    out = [None] * len(n.next)
                    if n.released and getattr(n, "had_saved", False):
                        from .graph import FREED_MSG
                        raise RuntimeError(FREED_MSG)
                if ANOMALY["enabled"]:
                    _check_nan(n, out)
                if n._post_hooks is not None:
                    for fn in list(n._post_hooks.values()):
                        r = fn(tuple(out), tuple(buf))
                        if r is not None:
                            out = list(r)
                if not keep_graph:
                    n.release()
                for e, g in zip(n.next, out):
                    if e is not None and g is not None:
                        c = e[0]
                        if needed is None or c in needed:
                            _add_to_buffer(buffers, c, e[1], g)
            out = g = buf = None  # drop references so the gradient buffers can be stolen or freed
            for e in n.next:
                if e is not None:
                    c = e[0]
                    d = deps[c] - 1
                    deps[c] = d
                    if d == 0:
                        ready.append(c)
    finally:
        hooks.grad_enabled = prev_mode
    return results


ANOMALY = {"enabled": False, "check_nan": True}


def _check_nan(n, out):
    import numpy as np
    for i, g in enumerate(out):
        if g is not None and ANOMALY["check_nan"] and g._data.dtype.kind == "f" and np.isnan(g._data).any():
            raise RuntimeError(f"Function '{n.name()}' returned nan values in its {i}th output.")


class detect_anomaly:
    """Context manager / decorator: backward raises as soon as a node returns nan (naming the node)."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan
        self.prev = None

    def __enter__(self):
        self.prev = dict(ANOMALY)
        ANOMALY.update(enabled=True, check_nan=self.check_nan)

    def __exit__(self, *exc):
        ANOMALY.update(self.prev)
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with self.__class__(self.check_nan):
                return fn(*a, **k)
        return wrapper


class set_detect_anomaly:
    """``set_detect_anomaly(True)`` turns anomaly checks on now (a context manager restores them)."""

    def __init__(self, mode, check_nan=True):
        self.prev = dict(ANOMALY)
        ANOMALY.update(enabled=bool(mode), check_nan=check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        ANOMALY.update(self.prev)
        return False


def is_anomaly_enabled():
    return ANOMALY["enabled"]


def _sole_owner(g):
    """True when ``g`` (a gradient about to be stored as a leaf's .grad) is referenced only by the
    caller's local variable and its array by ``g`` alone: no other tensor, view or buffer can see it.

    A C-contiguous view spanning a whole array qualifies too when that array is held only by the view
    (and by the view's base tensor, itself held only by the view): the shape of a bias gradient
    (``sum_to``'s reshape of a keepdim sum) and a linear layer's weight gradient (the transpose back of
    a product computed in the weight's layout) arrive that way, and copying them cost a pass over
    every parameter each step."""
    a = g._data
    if _DEBUG_REFS is not None:
        _DEBUG_REFS.append((sys.getrefcount(g), sys.getrefcount(a)))
    if g.requires_grad or sys.getrefcount(g) > _REFS_TENSOR or sys.getrefcount(a) > _REFS_ARRAY:
        return False
    base = a.base
    if base is None:
        return True
    if (type(base) is not np.ndarray or base.base is not None or base.size != a.size
            or not a.flags.c_contiguous or type(a) is not np.ndarray):
        return False
    bt = g._base
    refs = _REFS_BASE
    if bt is not None:
        # the view's base tensor: referenced by g._base only (+ this local and getrefcount's argument)
        if bt._data is not base or sys.getrefcount(bt) > _REFS_BASE_TENSOR:
            return False
        refs += 1
    return sys.getrefcount(base) <= refs


# references held while _sole_owner runs on an unshared gradient: the engine's local variable, the
# argument and getrefcount's own argument (measured by tests/test_autograd.py::test_leaf_grad_is_never_aliased)
_REFS_TENSOR = 3
_REFS_ARRAY = 3
# ... and for a view: its base array is held by the view's ``.base``, the local and the argument; the
# base tensor by the view's ``_base``, the local and the argument
_REFS_BASE = 3
_REFS_BASE_TENSOR = 3
_DEBUG_REFS = None  # a list to record (tensor refs, array refs) in tests


def _add_to_buffer(buffers, n, nr, g):
    buf = buffers.get(n)
    if buf is None:
        buf = buffers[n] = [None] * n.n_out
    old = buf[nr]
    buf[nr] = g if old is None else call("add", old, g, alpha=1)


def _needed_nodes(deps, root_edges, capture):
    """Nodes on a path from a root to a captured edge (reverse topological marking)."""
    indeg = dict(deps)
    order = []
    stack = [n for n in {n for n, _ in root_edges} if indeg[n] == 0]
    while stack:
        n = stack.pop()
        order.append(n)
        for e in n.next:
            if e is not None:
                c = e[0]
                indeg[c] -= 1
                if indeg[c] == 0:
                    stack.append(c)
    needed = set()
    for n in reversed(order):
        if n in capture:
            needed.add(n)
            continue
        for e in n.next:
            if e is not None and e[0] in needed:
                needed.add(n)
                break
    return needed


def _run_tensor_hooks(n, buf):
    if type(n) is AccumulateGrad:
        hs = n.variable._hooks
        if hs:
            g = buf[0]
            if g is not None:
                for fn in list(hs.values()):
                    r = fn(g)
                    if r is not None:
                        g = r
                buf[0] = g
    if n._tensor_hooks:
        for nr, hs in n._tensor_hooks.items():
            g = buf[nr]
            if g is None:
                continue
            for fn in list(hs.values()):
                r = fn(g)
                if r is not None:
                    g = r
            buf[nr] = g


def _retain(n, buf):
    for nr, ref in n._retain.items():
        t = ref()
        g = buf[nr]
        if t is None or g is None:
            continue
        if t.grad is None:
            t.grad = call("clone", g)
        else:
            t.grad = call("add", t.grad, g, alpha=1)


# ---------------------------------------------------------------------------------------------- public API

def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None, inputs=None):
    """Accumulate d(tensors)/d(leaves) into the leaves' ``.grad`` (or only into ``inputs``)."""
    if grad_variables is not None:
        grad_tensors = grad_variables
    tensors = _as_tuple(tensors)
    if inputs is not None:
        inputs = _as_tuple(inputs)
        if not inputs:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
    grad_tensors = _as_tuple(grad_tensors)
    if grad_tensors is not None and len(grad_tensors) != len(tensors):
        raise RuntimeError(f"got {len(grad_tensors)} tensors and {len(tensors)} gradients")
    for i, t in enumerate(tensors):
        if not t.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
    if retain_graph is None:
        retain_graph = create_graph
    grads = _make_root_grads(tensors, grad_tensors, create_graph)
    if inputs is None:
        run_backward(list(tensors), grads, retain_graph, create_graph)
        return
    targets = []
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
        targets.append(edge_of(t))
    res = run_backward(list(tensors), grads, retain_graph, create_graph, targets)
    prev = hooks.grad_enabled
    hooks.grad_enabled = bool(create_graph)
    try:
        for t, g in zip(inputs, res):
            if g is not None:
                if t.grad_fn is None:
                    accumulate_grad(t, g)
                elif t.grad is None:
                    t.grad = call("clone", g)
                else:
                    t.grad = call("add", t.grad, g, alpha=1)
    finally:
        hooks.grad_enabled = prev


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """d(outputs)/d(inputs) contracted with ``grad_outputs``; nothing is accumulated into ``.grad``."""
    if is_grads_batched:
        raise NotImplementedError("jitorch.autograd.grad: is_grads_batched=True is not supported")
    single = isinstance(inputs, Tensor)
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    if allow_unused is None:
        allow_unused = materialize_grads
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, "
                         "but got: allow_unused=False.")
    grad_outputs = _as_tuple(grad_outputs)
    if grad_outputs is not None and len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad requires one grad_output per output: got {len(grad_outputs)} for {len(outputs)} "
                           "outputs")
    for i, t in enumerate(outputs):
        if not t.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
    targets = []
    for t in inputs:
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: inputs must be Tensors, got {type(t).__name__}")
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
        targets.append(edge_of(t))
    if retain_graph is None:
        retain_graph = create_graph
    grads = _make_root_grads(outputs, grad_outputs, create_graph)
    res = run_backward(list(outputs), grads, retain_graph, create_graph, targets)
    out = []
    for t, g in zip(inputs, res):
        if g is None:
            if materialize_grads:
                from .._creation import zeros_like
                g = zeros_like(t)
            elif not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been used in the graph. "
                                   "Set allow_unused=True if this is the desired behavior.")
        out.append(g)
    _ = single
    return tuple(out)


_ = weakref

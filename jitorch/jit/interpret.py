"""interpret(graph, inputs): run a graph with the op table's NumPy references.

It is the oracle for every pass and code generator: ``interpret(g) == interpret(p(g))``. Each
node calls ``OpDef.reference`` and its result is conformed to the node's type, which the rules
fixed:

- Python scalar operands are weak (torch): they are converted to the dtype the op computes in
  (``OpDef.compute_rule``, else the node's dtype) *with wrap-around*, so ``int8 + 1000`` wraps as
  in torch instead of raising as NumPy 2 does;
- the reference's result is cast to the node's dtype (NumPy promotes differently from torch:
  ``int64 + float16`` is float64 in NumPy, float16 in torch);
- a result whose shape differs from the node's is an error, except for ``inplace_only`` ops, whose
  reference gives the value written and the write broadcasts it into the target.

An op without a reference (``reference=None``, or one needing a missing optional package) runs its eager cpu kernel on contiguous copies of
its inputs: the graph semantics of a layout-dependent op (``as_strided``) is defined on the
row-major layout of its input.
"""
from __future__ import annotations

import numpy as np

from .. import _dtype as D
from ..ops.registry import OPS
from .graph_ops import GRAPH_OPS
from .ir import Graph, TensorType


class InterpretError(RuntimeError):
    """A node failed to run, or returned something other than its type says."""


def _as_array(x):
    data = getattr(x, "_data", None)  # a jitorch Tensor, without triggering the tracer's checks
    if data is not None:
        return np.asarray(data)
    return np.asarray(x)


def _bind(graph, inputs, skip_consts=True):
    names = [i for i in graph.inputs if not (skip_consts and i.kind == "const" and i.name in graph.constants)]
    env = {}
    if isinstance(inputs, dict):
        missing = [i.name for i in names if i.name not in inputs]
        if missing:
            raise InterpretError(f"interpret {graph.name}: missing inputs {missing}")
        values = [inputs[i.name] for i in names]
    else:
        values = list(inputs)
        if len(values) != len(names):
            raise InterpretError(f"interpret {graph.name}: expected {len(names)} inputs "
                                 f"({', '.join('%' + i.name for i in names)}), got {len(values)}")
    for i, v in zip(names, values):
        a = _as_array(v)
        if tuple(a.shape) != i.type.shape or a.dtype != i.type.dtype.np:
            raise InterpretError(f"interpret {graph.name}: input %{i.name} is {i.type}, got "
                                 f"{D.from_numpy_dtype(a.dtype).short if a.dtype in D._BY_NP else a.dtype}"
                                 f"{list(a.shape)}")
        env[i.name] = a
    for i in graph.inputs:
        if i.name not in env:
            if i.name not in graph.constants:
                raise InterpretError(f"interpret {graph.name}: no data for const %{i.name}; pass it in inputs")
            env[i.name] = graph.constants[i.name]
    return env


def _weak_scalar(v, ctype):
    """A Python scalar operand as a 0-d array of the compute dtype, wrapping like torch's casts."""
    if v is None or ctype is None:
        return v
    with np.errstate(all="ignore"):
        if isinstance(v, bool) or ctype.category == 2 or ctype is D.bool_:
            return np.asarray(v).astype(ctype.np)
        if isinstance(v, int):
            return np.asarray(v, dtype=np.int64 if -2**63 <= v < 2**63 else np.uint64).astype(ctype.np)
        return np.asarray(v).astype(ctype.np)


def run_view(name, array, attrs):
    """One view op of the table on an array (used by view_scatter on index arrays)."""
    op = OPS[name]
    if op.reference is not None:
        return np.asarray(op.reference(array, **attrs))
    return np.array(op.impl["cpu"](None, np.ascontiguousarray(array), **attrs))


def _kernel_fallback(op, node, args, arg_types):
    arrays = [np.ascontiguousarray(a) if isinstance(a, np.ndarray) else a for a in args]
    attrs = dict(node.attrs)
    for k, v in op.attrs:
        attrs.setdefault(k, v)
    if "view" in op.tags:
        return (np.array(op.impl["cpu"](None, *arrays, **attrs)),)
    kw = dict(attrs)
    if op.compute_rule is not None:
        kw["_ctype"] = op.compute_rule(*arg_types, **attrs).name
    outs = tuple(np.empty(t.shape, t.dtype.np) for t in node.types)
    res = op.impl["cpu"](outs[0] if op.nout == 1 else outs, *arrays, **kw)
    if res is None:
        res = outs[0] if op.nout == 1 else outs
    return (res,) if op.nout == 1 else tuple(res)


def run_node(node, args, rng=None):
    """Run one node on arrays/literals ``args``; returns a tuple of arrays of the node's types."""
    gop = GRAPH_OPS.get(node.op)
    if gop is not None:
        outs = gop.run(node, args, lambda g, a: interpret(g, a, rng=rng), run_view)
        return _conform(node, outs, inplace_only=False)
    op = OPS.get(node.op)
    if op is None:
        raise InterpretError(f"interpret: unknown op {node.op!r}")
    arg_types = [TensorType(a.shape, D.from_numpy_dtype(a.dtype)) if isinstance(a, np.ndarray) else a for a in args]
    attrs = dict(node.attrs)
    if op.reference is None:
        outs = _kernel_fallback(op, node, args, arg_types)
        return _conform(node, outs, inplace_only=False)
    if any(not isinstance(a, np.ndarray) for a in args):
        ctype = op.compute_rule(*arg_types, **attrs) if op.compute_rule is not None else node.types[0].dtype
        args = [a if isinstance(a, np.ndarray) else _weak_scalar(a, ctype) for a in args]
    try:
        with np.errstate(all="ignore"):
            res = op.reference(*args, **attrs)
    except ImportError:  # a reference that needs an optional package (erfinv: scipy): use the kernel
        outs = _kernel_fallback(op, node, [a if isinstance(a, np.ndarray) or not isinstance(a, np.generic) else a.item()
                                           for a in args], arg_types)
        return _conform(node, outs, inplace_only=False)
    outs = (res,) if op.nout == 1 else tuple(res)
    return _conform(node, outs, inplace_only="inplace_only" in op.tags)


def _conform(node, outs, inplace_only):
    if len(outs) != len(node.types):
        raise InterpretError(f"{node.op} (%{node.outputs[0]}): returned {len(outs)} results for "
                             f"{len(node.types)} outputs")
    fixed = []
    for o, name, t in zip(outs, node.outputs, node.types):
        a = np.asarray(o)
        if a.dtype != t.dtype.np:
            with np.errstate(all="ignore"):
                a = a.astype(t.dtype.np)
        if tuple(a.shape) != t.shape:
            if inplace_only:
                a = np.broadcast_to(a, t.shape)
            else:
                raise InterpretError(
                    f"{node.op} (%{name}, {node.loc or 'no loc'}): the reference returned shape {list(a.shape)} but "
                    f"the node's type is {t} (a data-dependent size is fixed at trace time)")
        fixed.append(a)
    return tuple(fixed)


def interpret(graph, inputs, *, rng=None, return_updates=False):
    """Run ``graph`` on ``inputs`` with NumPy references; return a tuple of output arrays.

    ``inputs`` is a sequence in the order of the graph's non-const inputs (constants come from
    ``graph.constants``) or a dict by input name; arrays and jitorch Tensors are accepted. With
    ``return_updates=True`` it returns ``(outputs, {input name: new value})``.

    >>> import numpy as np
    >>> from jitorch.jit import parse, interpret
    >>> g = parse('''jitorch-ir 1
    ... graph f(%x: i8[2]):
    ...   %0: i8[2] = add(%x, 1000, alpha=1)
    ...   return %0
    ... ''')
    >>> interpret(g, [np.array([1, 2], np.int8)])[0]   # wraps like torch
    array([-23, -22], dtype=int8)
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"interpret expects a Graph, got {type(graph).__name__}")
    env = _bind(graph, inputs)
    for node in graph.nodes:
        args = [env[x] if isinstance(x, str) else x for x in node.inputs]
        try:
            outs = run_node(node, args, rng)
        except InterpretError:
            raise
        except Exception as e:
            raise InterpretError(f"interpret {graph.name}: node %{node.outputs[0]} = {node.op}(...) at "
                                 f"{node.loc or 'unknown location'} failed: {type(e).__name__}: {e}") from e
        env.update(zip(node.outputs, outs))
    bound = {id(env[i.name]) for i in graph.inputs}

    def own(a):  # results never alias the caller's inputs or the graph's constants
        return a if a.flags.owndata and a.flags.writeable and id(a) not in bound else np.array(a, copy=True)
    outputs = tuple(own(env[o]) for o in graph.outputs)
    if return_updates:
        return outputs, {name: own(env[v]) for name, v in graph.updates}
    return outputs

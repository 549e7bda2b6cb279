"""Graph-level ops: the few IR ops that are not in the op table because they hold sub-graphs or
exist only to functionalize in-place writes.

- ``cond(pred, *operands, true_graph=@t, false_graph=@f)``: runs one of two sub-graphs. ``pred`` is
  a one-element tensor (nonzero = true); both sub-graphs take the operands and return the same
  types, which are the node's outputs (torch.cond).
- ``while_loop(*carried, *invariants, cond_graph=@c, body_graph=@b)``: the node's outputs are the
  carried values (their count fixes how many leading inputs are carried). Both sub-graphs take
  ``carried + invariants``; ``cond_graph`` returns one one-element tensor, ``body_graph`` returns
  new carried values of the same types (torch.while_loop, with closed-over tensors made explicit
  as invariants).
- ``view_scatter(base, src, steps=((op, attrs), ...))``: ``base`` with the elements that the chain
  of view ops ``steps`` selects replaced by ``src`` (whose type is the view's type). The tracer
  writes it for an in-place op on a view: ``x[0] += 1`` becomes ``%v = select(%x)``,
  ``%w = add(%v, 1)``, ``%x2 = view_scatter(%x, %w, steps=(('select', (('dim', 0), ('index', 0))),))``.

Each record gives ``check`` (types in -> types out, raising ValueError with the reason) for
verify, ``run`` for interpret and ``subgraph_attrs``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..ops.registry import OPS
from .ir import Graph, TensorType


@dataclass(frozen=True)
class GraphOp:
    name: str
    check: Callable          # (node, arg_types) -> tuple of output TensorTypes; raises ValueError
    run: Callable            # (node, args, run_graph, run_view) -> tuple of arrays
    subgraph_attrs: tuple = ()
    doc: str = ""


GRAPH_OPS: dict[str, GraphOp] = {}


def _register(op):
    GRAPH_OPS[op.name] = op
    return op


def truth(a):
    """The Python truth of a one-element array (cond predicates, loop conditions)."""
    a = np.asarray(a)
    if a.size != 1:
        raise ValueError(f"a predicate must have one element, got shape {list(a.shape)}")
    return bool(a.reshape(-1)[0])


def _sub(node, name):
    g = node.attr(name)
    if not isinstance(g, Graph):
        raise ValueError(f"attribute {name} must be a sub-graph (@name), got {g!r}")
    if any(i.kind != "input" for i in g.inputs):
        raise ValueError(f"sub-graph @{g.name} may only have plain inputs (params and constants are passed in)")
    if g.updates:
        raise ValueError(f"sub-graph @{g.name} must not update its inputs")
    return g


def _types_str(ts):
    return "(" + ", ".join(str(t) for t in ts) + ")"


def _only_tensors(node, arg_types):
    for k, t in enumerate(arg_types):
        if not isinstance(t, TensorType):
            raise ValueError(f"operand {k} must be a tensor value, got literal {t!r}")


def _check_attrs(node, allowed):
    extra = [k for k, _ in node.attrs if k not in allowed]
    if extra:
        raise ValueError(f"unknown attributes {extra}; {node.op} takes {list(allowed)}")


# ---------------------------------------------------------------- cond

def _cond_check(node, arg_types):
    _check_attrs(node, ("true_graph", "false_graph"))
    _only_tensors(node, arg_types)
    if not arg_types:
        raise ValueError("cond needs a predicate operand")
    pred, operands = arg_types[0], tuple(arg_types[1:])
    if pred.numel() != 1:
        raise ValueError(f"the predicate must have exactly one element, got {pred}")
    outs = None
    for name in ("true_graph", "false_graph"):
        g = _sub(node, name)
        ins = tuple(i.type for i in g.inputs)
        if ins != operands:
            raise ValueError(f"{name} @{g.name} takes {_types_str(ins)} but the operands are {_types_str(operands)}")
        if outs is None:
            outs = g.output_types
        elif g.output_types != outs:
            raise ValueError(f"the branches return different types: true_graph {_types_str(outs)}, "
                             f"false_graph {_types_str(g.output_types)}")
    return outs


def _cond_run(node, args, run_graph, run_view):
    g = node.attr("true_graph") if truth(args[0]) else node.attr("false_graph")
    return run_graph(g, args[1:])


_register(GraphOp("cond", _cond_check, _cond_run, ("true_graph", "false_graph"),
                  "run true_graph or false_graph on the operands, chosen by a one-element predicate"))


# ---------------------------------------------------------------- while_loop

def _while_check(node, arg_types):
    _check_attrs(node, ("cond_graph", "body_graph"))
    _only_tensors(node, arg_types)
    n = len(node.outputs)
    if len(arg_types) < n:
        raise ValueError(f"while_loop has {n} outputs (carried values) but only {len(arg_types)} operands")
    carried = tuple(arg_types[:n])
    ins = tuple(arg_types)
    c, b = _sub(node, "cond_graph"), _sub(node, "body_graph")
    for name, g in (("cond_graph", c), ("body_graph", b)):
        gi = tuple(i.type for i in g.inputs)
        if gi != ins:
            raise ValueError(f"{name} @{g.name} takes {_types_str(gi)} but the operands are {_types_str(ins)}")
    if len(c.outputs) != 1 or c.output_types[0].numel() != 1:
        raise ValueError(f"cond_graph @{c.name} must return one one-element tensor, returns {_types_str(c.output_types)}")
    if b.output_types != carried:
        raise ValueError(f"body_graph @{b.name} returns {_types_str(b.output_types)} but the carried values are "
                         f"{_types_str(carried)}; the body must keep every carried shape and dtype")
    return carried


def _while_run(node, args, run_graph, run_view):
    n = len(node.outputs)
    carried, inv = tuple(args[:n]), tuple(args[n:])
    c, b = node.attr("cond_graph"), node.attr("body_graph")
    while truth(run_graph(c, carried + inv)[0]):
        carried = tuple(run_graph(b, carried + inv))
    return carried


_register(GraphOp("while_loop", _while_check, _while_run, ("cond_graph", "body_graph"),
                  "repeat body_graph on the carried values while cond_graph is true"))


# ---------------------------------------------------------------- view_scatter

def view_chain_type(base, steps):
    """The type of the view that ``steps`` selects from a value of type ``base``."""
    if not isinstance(steps, tuple):
        raise ValueError(f"steps must be a tuple of (op, attrs) pairs, got {steps!r}")
    t = base
    for step in steps:
        if not (isinstance(step, tuple) and len(step) == 2 and isinstance(step[0], str) and isinstance(step[1], tuple)):
            raise ValueError(f"each step is (op name, ((attr, value), ...)), got {step!r}")
        name, attrs = step
        op = OPS.get(name)
        if op is None or "view" not in op.tags:
            raise ValueError(f"step {name!r} is not a view op of the table")
        try:
            kw = dict(attrs)
        except (TypeError, ValueError):
            raise ValueError(f"step {name}: attrs must be (name, value) pairs, got {attrs!r}") from None
        t = TensorType(op.shape_rule(t.shape, **kw), t.dtype)
    return t


def _scatter_check(node, arg_types):
    _check_attrs(node, ("steps",))
    _only_tensors(node, arg_types)
    if len(arg_types) != 2:
        raise ValueError(f"view_scatter takes (base, src), got {len(arg_types)} operands")
    base, src = arg_types
    view = view_chain_type(base, node.attr("steps"))
    if src != view:
        raise ValueError(f"src is {src} but the view selected by steps is {view}")
    return (base,)


def _scatter_run(node, args, run_graph, run_view):
    base, src = (np.asarray(a) for a in args)
    idx = np.arange(base.size).reshape(base.shape)
    for name, attrs in node.attr("steps"):
        idx = run_view(name, idx, dict(attrs))
    out = np.array(base, copy=True).reshape(-1)
    out[np.asarray(idx).reshape(-1)] = np.broadcast_to(src, np.shape(idx)).reshape(-1)
    return (out.reshape(base.shape),)


_register(GraphOp("view_scatter", _scatter_check, _scatter_run, (),
                  "base with the elements selected by a chain of view ops replaced by src"))


def is_known(name):
    return name in OPS or name in GRAPH_OPS


def is_pure(node):
    """False for ops whose result is not a function of their inputs (random draws), also inside sub-graphs.

    Ops declare this with the tags ``random`` or ``nondeterministic``; passes never fold, merge or
    drop impure nodes.
    """
    op = OPS.get(node.op)
    if op is not None and op.tags & {"random", "nondeterministic"}:
        return False
    return all(is_pure(n) for g in node.subgraphs() for n in g.nodes)

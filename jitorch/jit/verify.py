"""verify(graph): the IR's invariants, checked with the op table's own rules.

Checked: names are valid and defined once (SSA), every use comes after its definition, ops are
known (op table or graph ops), attributes are the op's, literal operands are scalars, and every
node's stored types equal what the op's shape and dtype rules compute from its inputs (graph ops
check their sub-graphs the same way, recursively). Outputs and updates must name defined values;
an update must keep its input's type. On failure a :class:`VerifyError` prints the bad node with
the lines around it.
"""
from __future__ import annotations

import inspect

from ..ops.registry import OPS
from .graph_ops import GRAPH_OPS
from .ir import LITERAL_TYPES, Graph, TensorType
from .text import format_block


class VerifyError(ValueError):
    """The graph breaks an IR invariant; the message points at the node."""


def _takes_any_kwargs(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def check_attrs(op, attrs):
    """Attribute names of a table op: the declared ones, or what its shape rule accepts by name."""
    names = [k for k, _ in attrs]
    for k, v in attrs:
        if _has_graph(v):
            raise ValueError(f"attribute {k}: ops of the table take no sub-graphs")
    declared = [k for k, _ in op.attrs]
    if declared:
        unknown = [k for k in names if k not in declared]
        if unknown:
            raise ValueError(f"unknown attributes {unknown}; {op.name} takes {declared}")
    elif names and _takes_any_kwargs(op.shape_rule) and _takes_any_kwargs(op.dtype_rule):
        raise ValueError(f"unknown attributes {names}; {op.name} takes none")


def _has_graph(v):
    return isinstance(v, Graph) or (isinstance(v, tuple) and any(_has_graph(x) for x in v))


_TAG_ARITY = {"unary": 1, "binary": 2, "ternary": 3}  # the rules of these families take *shapes


def infer_types(op_name, args, attrs):
    """Output (shape, dtype) pairs of ``op_name`` applied to ``args`` (TensorTypes or literals).

    A shape of ``None`` means the op's size depends on the data (the rule cannot say). Raises
    ValueError with the rule's message when the rules reject the inputs.
    """
    op = OPS[op_name]
    kw = dict(attrs)
    check_attrs(op, attrs)
    for tag, n in _TAG_ARITY.items():
        if tag in op.tags and len(args) != n:
            raise ValueError(f"{op_name} is {tag}: it takes {n} operand{'s' if n > 1 else ''}, got {len(args)}")
    shapes = [a.shape if isinstance(a, TensorType) else () for a in args]
    try:
        shape = op.shape_rule(*shapes, **kw)
    except (RuntimeError, TypeError, IndexError, ValueError, KeyError) as e:
        raise ValueError(f"{op_name}: the shape rule rejects the inputs: {e}") from None
    try:
        dtype = op.dtype_rule(*args, **kw)
    except (RuntimeError, TypeError, IndexError, ValueError, KeyError) as e:
        raise ValueError(f"{op_name}: the dtype rule rejects the inputs: {e}") from None
    if op.nout == 1:
        return ((None if shape is None else tuple(shape), dtype),)
    shapes = (None,) * op.nout if shape is None else tuple(shape)
    return tuple((None if s is None else tuple(s), d) for s, d in zip(shapes, dtype))


def expected_types(node, arg_types):
    """What the rules say the node's outputs are: a tuple of (shape or None, dtype)."""
    gop = GRAPH_OPS.get(node.op)
    if gop is not None:
        return tuple((t.shape, t.dtype) for t in gop.check(node, arg_types))
    if node.op not in OPS:
        raise ValueError(f"unknown op {node.op!r}: not in the op table (jitorch.ops.OPS) nor a graph op "
                         f"({', '.join(GRAPH_OPS)})")
    return infer_types(node.op, arg_types, node.attrs)


def _check_node(node, types):
    for x in node.inputs:
        if isinstance(x, str):
            if x not in types:
                raise ValueError(f"operand %{x} is not defined before this node (SSA order)")
        elif not isinstance(x, LITERAL_TYPES):
            raise ValueError(f"literal operand {x!r} is not an int, float, bool or None")
    for o in node.outputs:
        if o in types:
            raise ValueError(f"%{o} is defined twice")
    if len(set(node.outputs)) != len(node.outputs):
        raise ValueError("a node defines the same value twice")
    args = [types[x] if isinstance(x, str) else x for x in node.inputs]
    want = expected_types(node, args)
    if len(want) != len(node.outputs):
        raise ValueError(f"{node.op} has {len(want)} outputs but the node defines {len(node.outputs)}")
    for o, t, (shape, dtype) in zip(node.outputs, node.types, want):
        if dtype is not t.dtype:
            raise ValueError(f"the dtype rule says %{o} is {dtype.short}, the node says {t.dtype.short}")
        if shape is not None and tuple(shape) != t.shape:
            shown = f"{t.dtype.short}[{','.join(str(s) for s in shape)}]"
            raise ValueError(f"the shape rule says %{o} is {shown}, the node says {t}")


def _context(g, line_index, path, after, msg, width=3):
    lines = format_block(g, sub=bool(path))
    lo, hi = max(0, line_index - width), min(len(lines), line_index + width + 1)
    shown = [(">> " if k == line_index else "   ") + lines[k] for k in range(lo, hi)]
    where = f"graph {'@' if path else ''}{g.name}" + (f" (inside {' -> '.join(path)})" if path else "")
    when = f" after pass {after}" if after else ""
    return f"verify: {where}{when}: {msg}\n" + "\n".join(shown)


def verify(graph, *, after=None):
    """Check ``graph`` (and its sub-graphs); return it unchanged or raise :class:`VerifyError`.

    ``after`` names the pass that produced the graph, for the message.

    >>> from jitorch.jit import parse, verify
    >>> g = parse('''jitorch-ir 1
    ... graph f(%x: f32[3]):
    ...   %0: f32[4] = exp(%x)
    ...   return %0
    ... ''')
    >>> verify(g)
    Traceback (most recent call last):
    ...
    jitorch.jit.verify.VerifyError: verify: graph f: the shape rule says %0 is f32[3], the node says f32[4]
       graph f(%x: f32[3]):
    >>   %0: f32[4] = exp(%x)
         return %0
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"verify expects a Graph, got {type(graph).__name__}")
    _verify(graph, (), after, set())
    return graph


def _verify(g, path, after, done):
    if id(g) in done:
        return
    done.add(id(g))
    nodes_start = len(format_block(g, sub=bool(path))) - len(g.nodes) - len(g.updates) - 1
    ret_line = nodes_start + len(g.nodes) + len(g.updates)

    def fail(line, msg):
        raise VerifyError(_context(g, line, path, after, msg))

    types = {}
    for i in g.inputs:
        if i.name in types:
            fail(0, f"input %{i.name} is declared twice")
        types[i.name] = i.type
    consts = {i.name: i for i in g.inputs if i.kind == "const"}
    for name, data in g.constants.items():
        if name not in consts:
            fail(0, f"constant data for %{name}, which is not a const input")
        t = consts[name].type
        if tuple(data.shape) != t.shape or data.dtype != t.dtype.np:
            fail(0, f"constant %{name} holds {data.dtype}{list(data.shape)} but is declared {t}")
    for k, node in enumerate(g.nodes):
        try:
            _check_node(node, types)
        except ValueError as e:
            fail(nodes_start + k, str(e))
        types.update(zip(node.outputs, node.types))
        for s in node.subgraphs():
            _verify(s, path + (f"{node.op} %{node.outputs[0]}",), after, done)
    for o in g.outputs:
        if o not in types:
            fail(ret_line, f"output %{o} is not defined")
    targets = set()
    for k, (name, value) in enumerate(g.updates):
        line = nodes_start + len(g.nodes) + k
        inp = next((i for i in g.inputs if i.name == name), None)
        if inp is None:
            fail(line, f"update of %{name}, which is not an input")
        if inp.kind == "const":
            fail(line, f"update of const %{name}: constants cannot be written back")
        if name in targets:
            fail(line, f"%{name} is updated twice")
        targets.add(name)
        if value not in types:
            fail(line, f"update value %{value} is not defined")
        if types[value] != inp.type:
            fail(line, f"update of %{name} ({inp.type}) with %{value} of another type ({types[value]})")

"""Graph -> Graph passes. Each is a pure function with one job; the pipeline is the table of contents.

Every pass assumes a graph that :func:`~jitorch.jit.verify` accepts and guarantees one that it
accepts again, with the same inputs, outputs, updates and output types, computing the same
values as :func:`~jitorch.jit.interpret` says (tests check both on random graphs and inputs). A
pass returns its input object itself when it has nothing to do, and recurses into sub-graphs.
Impure nodes (ops tagged ``random``/``nondeterministic``) are never folded, merged or dropped.
"""
from __future__ import annotations

import inspect
import math

import numpy as np

from ..ops.registry import OPS
from . import _logging
from .graph_ops import GRAPH_OPS, is_pure
from .ir import Graph, Input, Node, TensorType, value_key
from .verify import verify

# ---------------------------------------------------------------- helpers


def _resolve(mapping, x):
    while isinstance(x, str) and x in mapping:
        x = mapping[x]
    return x


def _substitute(node, mapping):
    if not mapping:
        return node
    ins = tuple(_resolve(mapping, x) for x in node.inputs)
    return node if ins == node.inputs else node.replace(inputs=ins)


def _finish(g, nodes, mapping, changed, **extra):
    """A graph with ``nodes``, outputs/updates renamed through ``mapping``; ``g`` if nothing changed."""
    if not changed and not mapping and not extra:
        return g
    outputs = tuple(_resolve(mapping, o) for o in g.outputs)
    updates = tuple((a, _resolve(mapping, v)) for a, v in g.updates)
    return g.replace(nodes=tuple(nodes), outputs=outputs, updates=updates, **extra)


def _map_subgraphs(node, fn):
    """The node with ``fn`` applied to each sub-graph attribute (the node itself when none change)."""
    if not node.subgraphs():
        return node
    attrs = tuple((k, fn(v) if isinstance(v, Graph) else v) for k, v in node.attrs)
    if all(a[1] is b[1] for a, b in zip(attrs, node.attrs)):
        return node
    return node.replace(attrs=attrs)


def _fresh_counter(g):
    """A function giving node output names unused anywhere in ``g``."""
    used = set(g.types)
    state = {"k": 0}

    def fresh():
        while str(state["k"]) in used:
            state["k"] += 1
        name = str(state["k"])
        used.add(name)
        return name
    return fresh


# ---------------------------------------------------------------- canonicalize

def _attr_order(op):
    """Declared attributes in order, then the shape rule's named parameters in signature order."""
    names = [k for k, _ in op.attrs]
    try:
        params = list(inspect.signature(op.shape_rule).parameters.values())[1:]
    except (TypeError, ValueError):
        params = []
    names += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names]
    return names


def canonicalize(g: Graph) -> Graph:
    """Give every node its attributes in one canonical form.

    Assumes: a verified graph. Guarantees: for a table op with declared attributes
    (``OpDef.attrs``) every declared attribute is present (defaults filled in); attributes come in
    the declared order, then in the order of the shape rule's parameters (``slice``: dim, start,
    stop, step), then alphabetically; graph ops keep theirs alphabetically.
    Values and names are unchanged, so two graphs that differ only in how attributes were spelled
    print the same, and CSE sees them as equal.
    """
    changed = False
    nodes = []
    for n in g.nodes:
        n2 = _map_subgraphs(n, canonicalize)
        op = OPS.get(n.op)
        given = dict(n2.attrs)
        declared = _attr_order(op) if op is not None else []
        if op is not None:
            for k, v in op.attrs:
                given.setdefault(k, v)
        order = [k for k in declared if k in given] + sorted(k for k in given if k not in declared)
        attrs = tuple((k, given[k]) for k in order)
        if attrs != n2.attrs or any(value_key(a[1]) != value_key(b[1]) for a, b in zip(attrs, n2.attrs)):
            n2 = n2.replace(attrs=attrs)
        changed |= n2 is not n
        nodes.append(n2)
    return _finish(g, nodes, {}, changed)


# ---------------------------------------------------------------- dead nodes

def eliminate_dead_nodes(g: Graph) -> Graph:
    """Drop pure nodes that no output or update depends on, and const inputs nothing reads.

    Assumes: a verified graph; only ops tagged random/nondeterministic have effects. Guarantees:
    the same outputs and updates; the inputs other than unused constants are kept (they are the
    graph's signature); sub-graphs are cleaned the same way (their inputs kept). Walks the nodes
    backwards so a chain of dead nodes goes in one pass.
    """
    live = set(g.outputs) | {v for _, v in g.updates}
    kept = []
    changed = False
    for n in reversed(g.nodes):
        if is_pure(n) and not any(o in live for o in n.outputs):
            changed = True
            continue
        n2 = _map_subgraphs(n, eliminate_dead_nodes)
        changed |= n2 is not n
        kept.append(n2)
        live.update(n2.value_inputs)
    kept.reverse()
    inputs = tuple(i for i in g.inputs if i.kind != "const" or i.name in live)
    if len(inputs) != len(g.inputs):
        consts = {k: v for k, v in g.constants.items() if k in live}
        return _finish(g, kept, {}, True, inputs=inputs, constants=consts)
    return _finish(g, kept, {}, changed)


# ---------------------------------------------------------------- CSE

def eliminate_common_subexpressions(g: Graph) -> Graph:
    """Replace a pure node by an earlier one with the same op, operands and attributes.

    Assumes: a verified graph. Guarantees: the same values (a pure op applied to the same
    arguments gives the same result); literals compare with their type (``1``, ``1.0`` and ``True``
    differ) and floats bitwise (``0.0`` vs ``-0.0``, ``nan``). Sub-graphs are handled on their own
    (no sharing across graph boundaries).
    """
    seen = {}
    mapping = {}
    nodes = []
    changed = False
    for n in g.nodes:
        n2 = _map_subgraphs(_substitute(n, mapping), eliminate_common_subexpressions)
        if is_pure(n2):
            key = (n2.op, tuple(("v", x) if isinstance(x, str) else value_key(x) for x in n2.inputs),
                   tuple((k, value_key(v)) for k, v in n2.attrs), n2.types)
            prev = seen.get(key)
            if prev is not None:
                mapping.update(zip(n2.outputs, prev.outputs))
                changed = True
                continue
            seen[key] = n2
        changed |= n2 is not n
        nodes.append(n2)
    return _finish(g, nodes, mapping, changed)


# ---------------------------------------------------------------- constant folding

FOLD_MAX_ELEMENTS = 1 << 16  # a folded result bigger than this and than its inputs stays a node


def fold_constants(g: Graph) -> Graph:
    """Evaluate pure nodes whose tensor operands are all constants; their results become constants.

    Assumes: a verified graph whose const inputs have data (``g.constants``); nodes without it
    are left alone. Guarantees: the same values as :func:`interpret` (folding runs the same
    references); a folded result becomes a new ``const`` input named ``c<k>``, unless it would hold
    more than ``FOLD_MAX_ELEMENTS`` elements and more than its inputs (an ``expand`` of a scalar
    stays a node). The consts that are no longer read are left for eliminate_dead_nodes.
    """
    from .interpret import run_node
    data = dict(g.constants)
    inputs = list(g.inputs)
    used = set(g.types)
    nodes = []
    changed = False
    mapping = {}
    k = 0
    for n in g.nodes:
        n = _substitute(n, mapping)
        vals = n.value_inputs
        if (not is_pure(n) or not all(v in data for v in vals) or n.subgraphs()
                or not _small_enough(n, [data[v] for v in vals])):
            nodes.append(n)
            continue
        try:
            outs = run_node(n, [data[x] if isinstance(x, str) else x for x in n.inputs])
        except Exception:
            nodes.append(n)  # leave it to run (and report) at run time
            continue
        for o, t, arr in zip(n.outputs, n.types, outs):
            while f"c{k}" in used:
                k += 1
            name = f"c{k}"
            used.add(name)
            inputs.append(Input(name, t, "const"))
            data[name] = arr
            mapping[o] = name
        changed = True
    if not changed:
        return g
    return _finish(g, nodes, mapping, True, inputs=tuple(inputs), constants=data)


def _small_enough(node, arrays):
    out = sum(t.numel() for t in node.types)
    return out <= FOLD_MAX_ELEMENTS or out <= max((a.size for a in arrays), default=0)


# ---------------------------------------------------------------- algebraic simplification

def _literal_or_const(g, x):
    """The value of operand x if it is a literal or a const input with data (else None)."""
    if not isinstance(x, str):
        return np.asarray(x) if x is not None else None
    return g.constants.get(x)


def _is_all(arr, value, sign=None):
    if arr is None or arr.size == 0 or arr.dtype.kind not in "biuf":
        return False
    a = arr.astype(np.float64)
    if not np.all(a == value):
        return False
    if sign is not None and arr.dtype.kind == "f":
        return bool(np.all(np.signbit(a) == sign))
    return True


def _is_int_like(t):
    return t.dtype.category < 2


def _zero_exact(g, x, out_type, add):
    """x is a zero that leaves the other operand exactly unchanged in ``a + x`` (add) / ``a - x``.

    For floats IEEE signed zeros matter: a + (-0.0) and a - (+0.0) are exact, a + 0.0 is not (-0.0).
    """
    arr = _literal_or_const(g, x)
    if _is_int_like(out_type):
        return _is_all(arr, 0)
    if isinstance(x, bool) or (arr is not None and arr.dtype.kind in "biu"):
        return _is_all(arr, 0) and not add  # an integer 0 is +0.0
    return _is_all(arr, 0, sign=add)


def _perm(dims, n):
    return tuple(d % n if n else 0 for d in dims)


_RESHAPES = {"view", "squeeze", "unsqueeze"}  # ops that keep the row-major element order


def _simplify_node(n, g, types, producers):
    """A value name equal to n's output, a replacement Node, or None."""
    if len(n.outputs) != 1:
        return None
    t = n.type
    ins = n.inputs

    def same(x):
        return x if isinstance(x, str) and types.get(x) == t else None

    def prod(x):
        return producers.get(x) if isinstance(x, str) else None

    op = n.op
    if op == "mul" and len(ins) == 2:
        for a, b in ((ins[0], ins[1]), (ins[1], ins[0])):
            if _is_all(_literal_or_const(g, b), 1) and same(a):
                return a
    elif op in ("add", "sub") and len(ins) == 2 and n.attr("alpha", 1) == 1 and not isinstance(n.attr("alpha", 1), float):
        if _zero_exact(g, ins[1], t, add=op == "add") and same(ins[0]):
            return ins[0]
        if op == "add" and _zero_exact(g, ins[0], t, add=True) and same(ins[1]):
            return ins[1]
    elif op in ("div", "pow") and len(ins) == 2:
        if _is_all(_literal_or_const(g, ins[1]), 1) and same(ins[0]):
            return ins[0]
    elif op == "neg":
        p = prod(ins[0])
        if p is not None and p.op == "neg" and same(p.inputs[0]):
            return p.inputs[0]
    elif op == "clone":
        return same(ins[0])
    elif op == "copy" and len(ins) == 2:  # the write overwrites every element: the result is src
        return same(ins[1])
    elif op == "to_dtype":
        return same(ins[0])
    elif op == "where" and len(ins) == 3 and ins[1] == ins[2]:
        return same(ins[1])
    elif op in ("expand", "slice") and same(ins[0]) and (op == "expand" or n.attr("step", 1) == 1):
        return ins[0]
    elif op == "permute":
        x = ins[0]
        dims = _perm(n.attr("dims"), t.ndim)
        if dims == tuple(range(t.ndim)) and same(x):
            return x
        p = prod(x)
        if p is not None and p.op == "permute":
            inner = _perm(p.attr("dims"), t.ndim)
            composed = tuple(inner[d] for d in dims)
            if composed == tuple(range(t.ndim)):
                return same(p.inputs[0])
            return n.replace(inputs=(p.inputs[0],), attrs=(("dims", composed),))
    elif op in _RESHAPES:
        x = ins[0]
        if same(x):
            return x
        p = prod(x)
        src = x
        while p is not None and p.op in _RESHAPES:  # a chain of reshapes is one reshape of its source
            src = p.inputs[0]
            p = prod(src)
        if src != x:
            if same(src):
                return src
            if "view" in OPS:
                return n.replace(op="view", inputs=(src,), attrs=(("size", t.shape),))
    elif op == "cond":
        pred = _literal_or_const(g, ins[0])
        if pred is not None and pred.size == 1:
            return ("inline", n.attr("true_graph") if bool(pred.reshape(-1)[0]) else n.attr("false_graph"))
    return None


def simplify_algebra(g: Graph) -> Graph:
    """Rewrite identities that hold bit for bit: ``x*1``, ``x+(-0.0)``/``x+0`` (integers), ``x-0``,
    ``x/1``, ``x**1``, ``-(-x)``, ``clone``, ``copy(t, s)`` with s of t's type (s), a cast to the
    same dtype, ``where(c, x, x)``, no-op
    ``expand``/``slice``/``permute``/reshapes, ``permute`` of ``permute`` (composed), chains of
    ``view``/``squeeze``/``unsqueeze`` (one ``view``), and ``cond`` on a constant predicate (the
    branch inlined).

    Assumes: a verified graph (constants read from ``g.constants``). Guarantees: every rewrite
    keeps the value's type, so nothing downstream changes; values are identical, including signed
    zeros and NaNs (a rewrite whose identity fails for any input is not in the list: ``x+0.0`` is
    not ``x`` when x is -0.0). The dropped nodes are left for eliminate_dead_nodes.
    """
    types = dict(g.types)
    producers = {}
    mapping = {}
    nodes = []
    changed = False
    fresh = _fresh_counter(g)
    for n in g.nodes:
        n2 = _map_subgraphs(_substitute(n, mapping), simplify_algebra)
        r = _simplify_node(n2, g, types, producers)
        if isinstance(r, str):
            mapping[n2.outputs[0]] = r
            changed = True
            continue
        if isinstance(r, tuple) and r[0] == "inline":
            sub = r[1]
            rename = {i.name: x for i, x in zip(sub.inputs, n2.inputs[1:])}
            for s in sub.nodes:
                new_outs = tuple(fresh() for _ in s.outputs)
                rename.update(zip(s.outputs, new_outs))
                s2 = s.replace(inputs=tuple(rename.get(x, x) if isinstance(x, str) else x for x in s.inputs),
                               outputs=new_outs)
                nodes.append(s2)
                types.update(zip(s2.outputs, s2.types))
                producers.update((o, s2) for o in s2.outputs)
            mapping.update(zip(n2.outputs, (rename[o] for o in sub.outputs)))
            changed = True
            continue
        if isinstance(r, Node):
            n2 = r
        changed |= n2 is not n
        nodes.append(n2)
        producers.update((o, n2) for o in n2.outputs)
    return _finish(g, nodes, mapping, changed)


# ---------------------------------------------------------------- names

def renumber_values(g: Graph) -> Graph:
    """Name node outputs %0, %1, ... in order (inputs keep their names); sub-graphs likewise.

    Assumes: a verified graph. Guarantees: the same graph up to the names of node outputs, so a
    graph's text does not depend on the passes that made it.
    """
    inputs = {i.name for i in g.inputs}
    rename = {}
    k = 0
    nodes = []
    for n in g.nodes:
        outs = []
        for o in n.outputs:
            while str(k) in inputs:
                k += 1
            outs.append(str(k))
            k += 1
        rename.update(zip(n.outputs, outs))
        n2 = _map_subgraphs(n, renumber_values)
        ins = tuple(rename.get(x, x) if isinstance(x, str) else x for x in n2.inputs)
        if tuple(outs) != n2.outputs or ins != n2.inputs:
            n2 = n2.replace(inputs=ins, outputs=tuple(outs))
        nodes.append(n2)
    changed = any(a is not b for a, b in zip(nodes, g.nodes))
    if not changed:
        return g
    return g.replace(nodes=tuple(nodes), outputs=tuple(rename.get(o, o) for o in g.outputs),
                     updates=tuple((a, rename.get(v, v)) for a, v in g.updates))


# ---------------------------------------------------------------- pipeline

PIPELINE = (canonicalize, fold_constants, simplify_algebra, eliminate_common_subexpressions, eliminate_dead_nodes,
            renumber_values)


def run_passes(g: Graph, passes=PIPELINE, check: bool = True, max_rounds: int = 4, log: bool = True) -> Graph:
    """Apply ``passes`` in order, again while a round changes the graph (at most ``max_rounds``:
    a rewrite can expose more, e.g. an inlined ``cond`` branch on constants folds). With ``check``
    verify after each pass; ``JITORCH_LOGS=graph`` prints the graph after each pass that changed it.
    """
    for _ in range(max_rounds):
        start = g
        for p in passes:
            g2 = p(g)
            if g2 is not g:
                if check:
                    verify(g2, after=p.__name__)
                if log and _logging.enabled("graph"):
                    _logging.log("graph", f"after {p.__name__}", str(g2))
            g = g2
        if g == start:
            break
    return g


_ = (math, TensorType, GRAPH_OPS)

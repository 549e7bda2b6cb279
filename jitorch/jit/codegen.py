"""Graph -> readable Python that calls the ops (``traced.code``, like torch.fx's GraphModule.code).

One statement per node, variables named after the op and the node id (``relu_3`` for ``%3``), a
comment with the IR value and the user's line. Sub-graphs become functions of their own, defined
before the function that uses them. The source is deterministic (same graph, same text), and the
compiled function runs every op through eager dispatch, so it behaves exactly like eager code:
same kernels, autograd recording, and, under an enclosing trace, the ops are recorded again.

::

    def mlp(x, fc1_weight, fc1_bias):
        permute_0 = _call('permute', fc1_weight, dims=(1, 0))           # %0  model.py:12
        matmul_1 = _call('matmul', x, permute_0)                         # %1  model.py:12
        return (matmul_1,)

Functions return a tuple: the graph's outputs, then the values of its updates.
"""
from __future__ import annotations

import keyword
import linecache
import math
import re

from .. import _dispatch
from .. import _dtype as D
from ..ops.registry import OPS
from ._tracing import GENERATED_PREFIX
from .ir import Graph
from .text import blocks_of

_HELPERS = ("_call", "_cond", "_while_loop", "_view_scatter", "jitorch")


def py_value(v):
    """A plain IR value as Python source."""
    if isinstance(v, D.dtype):
        return f"jitorch.{v.name}"
    if isinstance(v, float) and not math.isfinite(v):
        return f"float({repr(v)!r})"
    if isinstance(v, tuple):
        if len(v) == 1:
            return f"({py_value(v[0])},)"
        return "(" + ", ".join(py_value(x) for x in v) + ")"
    if isinstance(v, Graph):
        raise TypeError("sub-graphs are rendered as functions")
    return repr(v)


def _ident(name, used):
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not s or s[0].isdigit():
        s = "v" + s
    if keyword.iskeyword(s) or s in _HELPERS:
        s = s + "_"
    base, k = s, 0
    while s in used:
        k += 1
        s = f"{base}_{k}"
    used.add(s)
    return s


def _function(g, fname, fnames):
    used = set(_HELPERS) | set(fnames.values())
    var = {}
    for i in g.inputs:
        var[i.name] = _ident(i.name, used)
    for n in g.nodes:
        for o in n.outputs:
            var[o] = _ident(f"{n.op}_{o}" if o.isdigit() else o, used)

    def arg(x):
        return var[x] if isinstance(x, str) else py_value(x)

    body = []
    for n in g.nodes:
        lhs = ", ".join(var[o] for o in n.outputs)
        if n.op == "cond":
            ops = ", ".join(arg(x) for x in n.inputs[1:])
            rhs = (f"_cond({arg(n.inputs[0])}, {fnames[n.attr('true_graph').name]}, "
                   f"{fnames[n.attr('false_graph').name]}, ({ops}{',' if len(n.inputs) == 2 else ''}))")
            lhs = f"({lhs},)" if len(n.outputs) == 1 else lhs
        elif n.op == "while_loop":
            k = len(n.outputs)
            carried = ", ".join(arg(x) for x in n.inputs[:k])
            inv = "".join(", " + arg(x) for x in n.inputs[k:])
            c, b = fnames[n.attr("cond_graph").name], fnames[n.attr("body_graph").name]
            rhs = (f"_while_loop(lambda *c: {c}(*c{inv})[0], lambda *c: {b}(*c{inv}), "
                   f"({carried}{',' if k == 1 else ''}))")
            lhs = f"({lhs},)" if k == 1 else lhs
        elif n.op == "view_scatter":
            rhs = f"_view_scatter({arg(n.inputs[0])}, {arg(n.inputs[1])}, {py_value(n.attr('steps'))})"
        else:
            attrs = dict(n.attrs)
            for k, v in OPS[n.op].attrs:  # the kernels need every declared attribute
                attrs.setdefault(k, v)
            args = [repr(n.op)] + [arg(x) for x in n.inputs] + [f"{k}={py_value(v)}" for k, v in attrs.items()]
            rhs = f"_call({', '.join(args)})"
        line = f"    {lhs} = {rhs}"
        # a location is text from the user (or a file): no line breaks may leave the comment
        loc = "".join(ch if ch.isprintable() else "?" for ch in n.loc) if n.loc else ""
        comment = f"# %{', %'.join(n.outputs)}" + (f"  {loc}" if loc else "")
        body.append(line.ljust(72) + "  " + comment)
    rets = [var[o] for o in g.outputs] + [var[v] for _, v in g.updates]
    if g.updates:
        body.append("    # then the updated inputs: " + ", ".join(f"{a} <- {var[v]}" for a, v in g.updates))
    body.append(f"    return ({', '.join(rets)}{',' if len(rets) == 1 else ''})")
    params = ", ".join(var[i.name] for i in g.inputs)
    return [f"def {fname}({params}):"] + body


def python_source(graph):
    """The Python source of ``graph``: sub-graph functions first, the graph's function last."""
    blocks = blocks_of(graph)
    used = set(_HELPERS)
    fnames = {b.name: _ident(b.name, used) for b in reversed(blocks)}
    out = []
    for b in reversed(blocks):  # sub-graphs before their users
        out += _function(b, fnames[b.name], {k: v for k, v in fnames.items() if k != b.name})
        out.append("")
        out.append("")
    return "\n".join(out[:-2]) + "\n"


def _view_scatter(base, src, steps):
    out = _dispatch.call("clone", base)
    view = out
    for name, attrs in steps:
        view = _dispatch.call(name, view, **dict(attrs))
    _dispatch.call_inplace("copy", view, src)
    return out


def compile_python(graph):
    """Compile :func:`python_source` into a function of the graph's inputs (all kinds, in order)."""
    import jitorch
    from .._control_flow import cond, while_loop
    src = python_source(graph)
    filename = f"{GENERATED_PREFIX} {graph.name}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)  # tracebacks show the lines
    ns = {"_call": _dispatch.call, "_cond": cond, "_while_loop": while_loop, "_view_scatter": _view_scatter,
          "jitorch": jitorch}
    exec(compile(src, filename, "exec"), ns)
    used = set(_HELPERS)
    names = {b.name: _ident(b.name, used) for b in reversed(blocks_of(graph))}
    return ns[names[graph.name]], src

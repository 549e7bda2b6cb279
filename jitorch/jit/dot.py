"""Graph -> Graphviz DOT text (``graph.to_dot()``), for ``dot -Tsvg``.

Inputs are ellipses (params and constants greyed), nodes are boxes with the value, the op, the
output type (dtype and shape) and the attributes, edges follow the data. Sub-graphs are clusters,
reached from their node by a dashed edge.
"""
from __future__ import annotations

from .ir import Graph
from .text import format_attr


def _q(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _emit(g, prefix, lines, indent, done):
    pad = " " * indent
    ids = {}
    for i in g.inputs:
        nid = f"{prefix}in_{i.name}"
        ids[i.name] = nid
        style = "" if i.kind == "input" else ', style=filled, fillcolor="#eeeeee"'
        kind = "" if i.kind == "input" else f"{i.kind} "
        lines.append(f"{pad}{_q(nid)} [shape=ellipse, label={_q(f'{kind}%{i.name}' + chr(10) + str(i.type))}{style}];")
    for k, n in enumerate(g.nodes):
        nid = f"{prefix}n{k}"
        for o in n.outputs:
            ids[o] = nid
        attrs = [f"{a}={format_attr(v)}" for a, v in n.attrs if not isinstance(v, Graph)]
        args = ", ".join(f"%{x}" if isinstance(x, str) else repr(x) for x in n.inputs)
        label = f"%{', %'.join(n.outputs)} = {n.op}({args})\n" + ", ".join(str(t) for t in n.types)
        if attrs:
            label += "\n" + ", ".join(attrs)
        lines.append(f"{pad}{_q(nid)} [label={_q(label)}];")
        for j, x in enumerate(n.inputs):
            if isinstance(x, str):
                lines.append(f"{pad}{_q(ids[x])} -> {_q(nid)};")
        for a, sub in n.attrs:
            if isinstance(sub, Graph):
                sid = f"{prefix}sub_{sub.name}"
                if sid not in done:
                    done.add(sid)
                    lines.append(f"{pad}subgraph {_q('cluster_' + sid)} {{")
                    lines.append(f"{pad}  label={_q('@' + sub.name)}; style=dashed;")
                    lines.append(f"{pad}  {_q(sid)} [shape=point];")
                    _emit(sub, sid + "_", lines, indent + 2, done)
                    lines.append(f"{pad}}}")
                lines.append(f"{pad}{_q(nid)} -> {_q(sid)} [style=dashed, label={_q(a)}];")
    out = f"{prefix}out"
    lines.append(f"{pad}{_q(out)} [shape=plaintext, label=\"return\"];")
    for o in g.outputs:
        lines.append(f"{pad}{_q(ids[o])} -> {_q(out)};")
    for name, v in g.updates:
        lines.append(f"{pad}{_q(ids[v])} -> {_q(ids[name])} [style=dotted, label=\"update\", constraint=false];")


def to_dot(g):
    lines = [f"digraph {_q(g.name)} {{", "  node [shape=box, fontname=\"monospace\", fontsize=10];",
             "  edge [fontsize=9];"]
    _emit(g, "", lines, 2, set())
    lines.append("}")
    return "\n".join(lines) + "\n"

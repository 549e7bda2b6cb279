"""Fusion of elementwise regions into one generated numba kernel each (issue 6, docs/jit.md section 11).

:func:`find_groups` walks a graph's top-level nodes in order and grows groups of *fusable* nodes
(op tagged ``elementwise`` with a scalar template in :mod:`kernels.scalar`, dtypes numba computes
natively, every attribute a plain number): a node joins the group of one of its producers when it
has the group's output shape. A group is *sealed* as soon as a node outside it reads one of its
values, so a group can always run as one kernel at the place of its last member (no cycles, no
value needed before it exists). Operands from outside a group are kernel inputs; they may broadcast.

:func:`kernel_source` turns a group into the text of one self-contained module (deterministic:
same group, same bytes), one line per IR node::

    t3 = max_(t2, np.float32(0))                      # %3 relu  model.py:13

Each operand is converted to the node's compute type (``OpDef.compute_rule``) and each result to
the node's dtype, exactly as the eager kernels of :mod:`kernels.elementwise` do, and the helpers
the expressions call are copied into the module (``emit_helpers``) so the file is content-hashed
for numba's disk cache (``kernels._jitcache.load_source``). Loop shapes:

- ``flat``: every input has the output's shape or a single element: one 1-D loop over the output
  (inputs and outputs passed raveled, a one-element input read at ``[0]``);
- ``nd``: some input broadcasts along some dims: the inputs are passed as broadcast views of the
  output's shape (stride 0 on broadcast dims, nothing materialized) and the kernel loops over all
  dims of the output.

The outer loop is ``prange`` when the output has more than ``PARALLEL_THRESHOLD`` elements.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace

from .. import _dtype as D
from ..ops.registry import OPS
from .ir import Graph, Node

_INT_DIV = frozenset({"div_trunc", "div_floor", "remainder", "fmod"})
_NUMBA_DTYPES = {"bool", "uint8", "int8", "int16", "int32", "int64", "float32", "float64"}


def _ctype_name(dt):
    return "bool" if dt is D.bool_ else dt.name


def _np_ctor(ctype):
    return f"np.{'bool_' if ctype == 'bool' else ctype}"


def versions_tag():
    """A short hash of the jitorch/numba/llvmlite versions, written into every generated kernel."""
    import llvmlite
    import numba
    import jitorch
    text = f"jitorch {jitorch.__version__} numba {numba.__version__} llvmlite {llvmlite.__version__}"
    return text, hashlib.sha256(text.encode()).hexdigest()[:12]


def _scalar_of(node):
    """(template key, param values) for a fusable node, or None."""
    from ..kernels import scalar
    op = OPS.get(node.op)
    if op is None or "elementwise" not in op.tags or not op.scalar or op.scalar not in scalar.EXPR:
        return None
    attrs = dict(op.attrs)
    attrs.update(dict(node.attrs))
    names = [a for a, _ in op.attrs]
    params = [attrs[a] for a in names]
    key = op.scalar
    if key in ("add_alpha", "sub_alpha") and params == [1]:
        key, params = key[:3], []
    nin, nparams, _ = scalar.EXPR[key]
    if nparams != len(params) or any(isinstance(p, bool) or not isinstance(p, (int, float)) for p in params):
        return None
    if len([x for x in node.inputs]) != nin:
        return None
    return key, params


def compute_type(node, types):
    """The dtype the node computes in (its op's compute_rule over operand types and literals)."""
    op = OPS[node.op]
    operands = [types[x] if isinstance(x, str) else x for x in node.inputs]
    rule = op.compute_rule or op.dtype_rule
    try:
        return rule(*operands, **dict(node.attrs))
    except Exception:
        return None


def fusable(node, types):
    if len(node.outputs) != 1 or node.subgraphs() or _scalar_of(node) is None:
        return False
    ct = compute_type(node, types)
    if ct is None or _ctype_name(ct) not in _NUMBA_DTYPES:
        return False
    if node.op in _INT_DIV and not ct.is_floating_point:
        return False  # eager raises on an integer division by zero; a kernel would silently give 0
    dts = [types[x].dtype for x in node.inputs if isinstance(x, str)] + [node.types[0].dtype]
    if any(_ctype_name(d) not in _NUMBA_DTYPES for d in dts):
        return False
    return not any(x is None for x in node.inputs)


REDUCTIONS = ("softmax", "log_softmax", "sum", "amax")


def reduction_ok(node, types):
    """A last-dim softmax / log_softmax / sum / amax over float32 or float64 that a kernel can end with."""
    if node.op not in REDUCTIONS or len(node.outputs) != 1 or not node.inputs or not isinstance(node.inputs[0], str):
        return False
    t = types[node.inputs[0]]
    if len(node.inputs) != 1 or t.ndim == 0 or t.shape[-1] == 0 or math.prod(t.shape) == 0:
        return False
    if t.dtype.name not in ("float32", "float64") or node.types[0].dtype is not t.dtype:
        return False
    a = node.attr_dict() if callable(getattr(node, "attr_dict", None)) else dict(node.attrs)
    return tuple(a.get("dim") or ()) in ((t.ndim - 1,), (-1,))


@dataclass(frozen=True)
class Group:
    """A fused region: member nodes (in graph order), external tensor inputs, values it exports."""
    index: int
    nodes: tuple
    inputs: tuple
    outputs: tuple
    shape: tuple

    @property
    def last(self):
        return self.nodes[-1]

    @property
    def reduce(self):
        """The trailing reduction node (its input has the group's shape), or None."""
        return self.nodes[-1] if self.nodes[-1].op in REDUCTIONS else None


def find_groups(g: Graph, min_size: int = 2):
    """Maximal groups of fusable nodes (see the module docstring); groups smaller than ``min_size``
    are dropped (a single op runs its eager kernel)."""
    types = g.types
    group_of = {}        # value name -> group id (values produced by members)
    members = {}         # group id -> list of nodes
    shape = {}
    sealed = set()
    pos, next_id = {}, 0
    for k, n in enumerate(g.nodes):
        pos[id(n)] = k
        cand = None
        ok = fusable(n, types)
        if not ok and reduction_ok(n, types):
            x = n.inputs[0]
            gid = group_of.get(x)
            if gid is not None and gid not in sealed and shape[gid] == types[x].shape:
                members[gid].append(n)  # the group ends with this reduction: nothing joins it any more
                sealed.add(gid)
            else:
                members[next_id] = [n]
                shape[next_id] = types[x].shape
                sealed.add(next_id)
                next_id += 1
            for y in n.inputs:
                if isinstance(y, str) and y in group_of:
                    sealed.add(group_of[y])
            continue
        if ok:
            out_shape = n.types[0].shape
            cands = sorted({group_of[x] for x in n.inputs if isinstance(x, str) and x in group_of
                            and group_of[x] not in sealed and shape[group_of[x]] == out_shape})
            if cands:
                cand = cands[0]
                for other in cands[1:]:  # open groups of one shape both read here: one kernel
                    for m in members.pop(other):
                        members[cand].append(m)
                        group_of[m.outputs[0]] = cand
                    del shape[other]
                members[cand].sort(key=lambda m: pos[id(m)])
        # every group this node reads from (other than the one it joins) is sealed
        for x in n.inputs:
            if isinstance(x, str) and x in group_of and group_of[x] != cand:
                sealed.add(group_of[x])
        if not ok:
            continue
        if cand is None:
            cand = next_id
            next_id += 1
            members[cand] = []
            shape[cand] = n.types[0].shape
        members[cand].append(n)
        group_of[n.outputs[0]] = cand
    used_outside = set(g.outputs) | {v for _, v in g.updates}
    member_of = {n.outputs[0]: gid for gid, ns in members.items() for n in ns}
    for n in g.nodes:
        for x in n.inputs:
            if isinstance(x, str) and x in member_of and member_of.get(n.outputs[0]) != member_of[x]:
                used_outside.add(x)
    groups = []
    for gid in sorted(members):
        ns = members[gid]
        if (len(ns) < min_size and ns[-1].op not in REDUCTIONS) or not any(n.outputs[0] in used_outside for n in ns):
            continue
        inside = {n.outputs[0] for n in ns}
        ins = []
        for n in ns:
            for x in n.inputs:
                if isinstance(x, str) and x not in inside and x not in ins:
                    ins.append(x)
        outs = tuple(n.outputs[0] for n in ns if n.outputs[0] in used_outside)
        groups.append(Group(len(groups), tuple(ns), tuple(ins), outs, shape[gid]))
    return groups


def _literal(v, ctype):
    if isinstance(v, bool):
        text = repr(v)
    elif isinstance(v, float) and not math.isfinite(v):
        text = "np.nan" if v != v else ("np.inf" if v > 0 else "-np.inf")
    else:
        text = repr(v)
    return f"{_np_ctor(ctype)}({text})"


def _param(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "np.nan" if v != v else ("np.inf" if v > 0 else "-np.inf")
    return repr(v)


def kernel_shape(group):
    """Loop shape of a reduction group: its shape with at least one leading (row) dim."""
    return group.shape if len(group.shape) >= 2 else (1,) + tuple(group.shape)


def input_modes(group, types):
    """'full' / 'scalar' / 'bcast' for each input of the group, and the loop kind (flat, nd or
    red: rows of a trailing last-dim reduction)."""
    if group.reduce is not None:
        return ["scalar" if math.prod(types[x].shape) == 1 else "bcast" for x in group.inputs], "red"
    modes = []
    for x in group.inputs:
        s = types[x].shape
        if s == group.shape:
            modes.append("full")
        elif math.prod(s) == 1:
            modes.append("scalar")
        else:
            modes.append("bcast")
    kind = "nd" if "bcast" in modes and len(group.shape) > 0 else "flat"
    if kind == "nd":
        modes = ["scalar" if m == "scalar" else "bcast" for m in modes]
    return modes, kind


def kernel_source(group: Group, types, fname: str = "kernel") -> str:
    """The generated module of ``group`` (deterministic text, one line per IR node)."""
    from ..kernels import scalar
    from ..kernels._config import FASTMATH, PARALLEL_THRESHOLD
    from ..kernels.elementwise import emit_helpers
    vtext, vhash = versions_tag()
    modes, kind = input_modes(group, types)
    numel = math.prod(group.shape)
    parallel = numel > PARALLEL_THRESHOLD
    red = group.reduce
    if red is not None:
        kshape = kernel_shape(group)
        nd = len(kshape) - 1  # loops over the rows; the last dim is the inner loop j
        idx = ", ".join([f"i{d}" for d in range(nd)] + ["j"])
        ridx = ", ".join(f"i{d}" for d in range(nd))
    else:
        nd = len(group.shape) if kind == "nd" else 1
        idx = ", ".join(f"i{d}" for d in range(nd))
    var = {}
    args = []
    loads = []
    for k, (x, m) in enumerate(zip(group.inputs, modes)):
        args.append(f"x{k}")
        var[x] = f"a{k}"
        at = "[0]" if m == "scalar" else f"[{idx}]"
        # no sizes in the text: the same kernel serves every size
        loads.append(f"a{k} = x{k}{at}".ljust(40) + f"  # %{x}: {types[x].dtype.short}, {types[x].ndim}-d"
                     + (" (one element)" if m == "scalar" else (" (broadcast)" if m == "bcast" else "")))
    outs = {}
    for j, o in enumerate(group.outputs):
        args.append(f"o{j}")
        outs[o] = f"o{j}"
    body = []
    for n in group.nodes:
        if n is red:
            break
        body.append(_node_line(n, types, var))
        if n.outputs[0] in outs:
            body.append(f"{outs[n.outputs[0]]}[{idx}] = {var[n.outputs[0]]}")
    tail = []
    if red is not None:
        ct = _ctype_name(red.types[0].dtype)
        T = _np_ctor(ct)
        x = var[red.inputs[0]]
        ro = outs[red.outputs[0]]
        n = "ncol"  # the row length, read from an argument: the kernel serves every size
        cmt = f"  # %{red.outputs[0]} {red.op}" + "".join(f" {k}={v!r}" for k, v in red.attrs) + (
            f"  {red.loc}" if red.loc else "")
        exp = scalar.render("exp", ["v"], [], ct)
        if red.op == "sum":
            head, acc = [f"acc = {T}(0)".ljust(48) + cmt], [f"acc += {x}"]
            after = [f"{ro}[{ridx}] = acc"]
        elif red.op == "amax":
            head, acc = [f"m = {T}(-np.inf)".ljust(48) + cmt], [f"m = nanmax_(m, {x})"]
            after = [f"{ro}[{ridx}] = m"]
        else:
            head = [f"m = {T}(-np.inf)".ljust(48) + cmt]
            # max() may drop a NaN here; the NaN still reaches s in the next pass, so the row is NaN
            acc = [f"{ro}[{idx}] = {x}", f"m = max(m, {x})"]
            after = [f"s = {T}(0)", f"for j in range({n}):", f"    v = {ro}[{idx}] - m"]
            if red.op == "softmax":
                after += [f"    e = {exp}", f"    {ro}[{idx}] = e", "    s += e", f"r = {T}(1) / s",
                          f"for j in range({n}):", f"    {ro}[{idx}] *= r"]
            else:
                after += [f"    s += {exp}", f"ls = m + {scalar.render('log', ['s'], [], ct)}",
                          f"for j in range({n}):", f"    {ro}[{idx}] -= ls"]
        tail = (head, acc, after)
    helpers = emit_helpers("\n".join(body + [ln for part in tail for ln in part]))
    names = ", ".join(f"%{n.outputs[0]} {n.op}" for n in group.nodes)
    out = [
        f"# generated by jitorch.jit.fuse: {len(group.nodes)} fused nodes ({names})",
        # kernels are shape-generic (only the parallel choice depends on the size): the same text,
        # hence the same cached kernel, serves every batch size
        f"# loop {kind}"
        f"{', parallel' if parallel else ''}; {vtext} [{vhash}]",
        "import math",
        "import numpy as np",
        "from numba import njit, prange",
        "FASTMATH = {" + ", ".join(repr(f) for f in sorted(FASTMATH)) + "}",
        "",
    ]
    if helpers:
        out += [helpers, ""]
    deco = "@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model='numpy'" + (", parallel=True)" if parallel else ")")
    out += [deco, f"def {fname}({', '.join(args)}):"]
    if red is not None:
        head, acc, after = tail
        ro = outs[red.outputs[0]]
        # sizes come from the arguments (rows from the reduction's output, the row length from it or
        # from a full-shape input), so one compiled kernel serves every batch size
        full = [f"x{k}" for k, m in enumerate(modes) if m != "scalar"]
        if red.op in ("softmax", "log_softmax"):
            out.append(f"    ncol = {ro}.shape[{nd}]")
        elif full:
            out.append(f"    ncol = {full[0]}.shape[{nd}]")
        else:
            out.append(f"    ncol = {kshape[-1]}")
        for d in range(nd):
            rng = "prange" if (d == 0 and parallel) else "range"
            out.append("    " * (d + 1) + f"for i{d} in {rng}({ro}.shape[{d}]):")
        ind = "    " * (nd + 1)
        out += [ind + ln for ln in head]
        out.append(ind + "for j in range(ncol):")
        out += [ind + "    " + ln for ln in loads + body + acc]
        out += [ind + ln for ln in after]
        out.append("")
        return "\n".join(out)
    first_out = "o0"
    for d in range(nd):
        rng = "prange" if (d == 0 and parallel) else "range"
        out.append("    " * (d + 1) + f"for i{d} in {rng}({first_out}.shape[{d}]):")
    ind = "    " * (nd + 1)
    out += [ind + ln for ln in loads]
    out += [ind + ln for ln in body]
    out.append("")
    return "\n".join(out)


def describe_groups(g: Graph, groups) -> str:
    lines = []
    for gr in groups:
        lines.append(f"group {gr.index}: shape {list(gr.shape)}, inputs {', '.join('%' + x for x in gr.inputs)}; "
                     f"outputs {', '.join('%' + x for x in gr.outputs)}")
        for n in gr.nodes:
            lines.append(f"    {n}")
    return "\n".join(lines) if lines else "(no fusable groups)"


_ = Node


# ---------------------------------------------------------------- horizontal fusion of tail groups

def tail_groups(g: Graph, groups):
    """Flat groups whose values no node reads (they only feed outputs and updates: an optimizer's
    per-parameter update loops). Independent of each other, they can all run at the place of the last
    one as ONE kernel (:func:`multi_kernel_source`). Returned when there are at least two, else ()."""
    types = g.types
    member = {n.outputs[0]: gr.index for gr in groups for n in gr.nodes}
    read = set()  # values read by a node outside the value's own group
    for n in g.nodes:
        mine = member.get(n.outputs[0])
        read.update(x for x in n.inputs if isinstance(x, str) and (mine is None or member.get(x) != mine))
    out = []
    for gr in groups:
        if gr.reduce is not None or input_modes(gr, types)[1] != "flat":
            continue
        if any(o in read for o in gr.outputs):
            continue
        out.append(gr)
    return tuple(out) if len(out) >= 2 else ()


def multi_kernel_source(groups, types, fname: str = "kernel") -> str:
    """One module whose ``kernel`` runs the loops of several independent flat groups in turn (one call
    from the executor). Arguments: each group's inputs then outputs, group after group. Groups whose loops
    are the same code (an optimizer's update of each parameter) share one function: one numba compile."""
    from ..kernels._config import FASTMATH
    vtext, vhash = versions_tag()
    helpers, parts, calls, params = [], [], [], []
    same = {}  # canonical loop text -> the part that defines it: identical loops are compiled once
    for k, gr in enumerate(groups):
        src = kernel_source(gr, types, fname=f"part{k}").split("\n")
        start = next(i for i, ln in enumerate(src) if ln.startswith("FASTMATH = "))
        deco = next(i for i, ln in enumerate(src) if ln.startswith("@njit("))
        block = "\n".join(src[start + 1:deco]).strip("\n")
        loop = "\n".join(src[deco:]).rstrip("\n")
        key = canonical_source(loop.replace(f"def part{k}(", "def part(", 1))
        first = same.setdefault(key, k)
        if block and block not in helpers:
            helpers.append(block)
        if first == k:
            parts.append(f"# part {k}: {src[0][2:]}\n# {src[1][2:]}")
            parts.append(loop)
        else:  # the same loop as an earlier part (another parameter's update): called, not compiled again
            parts.append(f"# part {k}: {src[0][2:]}\n# {src[1][2:]}; the same loop as part {first}")
        n = len(gr.inputs) + len(gr.outputs)
        names = [f"p{k}_{i}" for i in range(n)]
        params += names
        calls.append(f"    part{first}({', '.join(names)})")
    out = [f"# generated by jitorch.jit.fuse: {len(groups)} independent loops in one kernel (horizontal fusion)",
           f"# {vtext} [{vhash}]",
           "import math",
           "import numpy as np",
           "from numba import njit, prange",
           "FASTMATH = {" + ", ".join(repr(f) for f in sorted(FASTMATH)) + "}",
           ""]
    for h in helpers:
        out += [h, ""]
    for p in parts:
        out += [p, ""]
    out += ["@njit(cache=True, nogil=True)", f"def {fname}({', '.join(params)}):"] + calls + [""]
    return "\n".join(out)


# ---------------------------------------------------------------- row statistics + epilogue (layer_norm)

@dataclass(frozen=True)
class RowNormGroup:
    """``sum``/``var`` of ``x`` over its last dim (keepdim), elementwise ops on those per-row values, and
    an elementwise group over ``x``'s shape reading them (layer_norm's decomposition, a normalization):
    ONE kernel, per row: a pass for the sum (float64), a pass for the variance when needed, then the
    epilogue pass. Arguments: ``x``, the epilogue's other inputs (broadcast views), its outputs."""
    index: int
    x: str
    stats: tuple
    rows: tuple
    epilogue: Group
    inputs: tuple
    outputs: tuple

    @property
    def nodes(self):
        return self.stats + self.rows + self.epilogue.nodes

    @property
    def last(self):
        return self.epilogue.last

    @property
    def shape(self):
        return self.epilogue.shape

    reduce = None


def _last_dim_stat(n, x, types):
    if n.op not in ("sum", "var") or n.inputs[:1] != (x,) or len(n.inputs) != 1:
        return False
    t = types[x]
    a = dict(OPS[n.op].attrs)
    a.update(dict(n.attrs))
    if tuple(a.get("dim") or ()) not in ((t.ndim - 1,), (-1,)) or a.get("keepdim") is not True:
        return False
    if n.op == "var" and (isinstance(a.get("correction"), bool) or not isinstance(a.get("correction"), int)):
        return False
    return n.types[0].dtype is t.dtype


def find_row_norms(g: Graph, groups):
    """(row-norm groups, the other groups re-indexed): see :class:`RowNormGroup`."""
    types = g.types
    producer = {o: n for n in g.nodes for o in n.outputs}
    readers = {}
    for n in g.nodes:
        for v in n.inputs:
            if isinstance(v, str):
                readers.setdefault(v, []).append(n)
    live = set(g.outputs) | {v for _, v in g.updates}
    group_of = {n.outputs[0]: gr for gr in groups for n in gr.nodes}
    norms, absorbed = [], set()
    for gr in groups:
        if gr.reduce is not None or gr.index in absorbed or len(gr.shape) < 2:
            continue
        for x in gr.inputs:
            t = types[x]
            if t.shape != gr.shape or t.dtype.name not in ("float32", "float64") or t.shape[-1] == 0:
                continue
            row_shape = t.shape[:-1] + (1,)
            rowvals = [v for v in gr.inputs if v != x and types[v].shape == row_shape]
            if not rowvals:
                continue
            stats, rows, seen, ok = [], [], set(), True
            stack = list(rowvals)
            while stack and ok:
                v = stack.pop()
                if v in seen:
                    continue
                seen.add(v)
                n = producer.get(v)
                if n is None or v in live:
                    ok = False
                elif _last_dim_stat(n, x, types):
                    stats.append(n)
                elif fusable(n, types) and types[v].shape == row_shape and \
                        all(types[u].shape == row_shape for u in n.inputs if isinstance(u, str)):
                    rows.append(n)
                    stack.extend(u for u in n.inputs if isinstance(u, str))
                else:
                    ok = False
            if not ok or not stats:
                continue
            inside = {id(n) for n in stats + rows + list(gr.nodes)}
            if any(id(r) not in inside for n in stats + rows for r in readers.get(n.outputs[0], ())):
                continue
            # groups the per-row nodes belong to must be absorbed whole
            others = {group_of[n.outputs[0]].index for n in stats + rows if n.outputs[0] in group_of}
            if any(any(id(m) not in inside for m in og.nodes) for og in groups if og.index in others):
                continue
            pos = {id(n): k for k, n in enumerate(g.nodes)}
            stats.sort(key=lambda n: pos[id(n)])
            rows.sort(key=lambda n: pos[id(n)])
            ins = (x,) + tuple(v for v in gr.inputs if v != x and v not in rowvals)
            norms.append(RowNormGroup(0, x, tuple(stats), tuple(rows), gr, ins, gr.outputs))
            absorbed.add(gr.index)
            absorbed |= others
            break
    rest = [dataclass_replace(gr, index=k) for k, gr in enumerate(gr for gr in groups if gr.index not in absorbed)]
    norms = [dataclass_replace(r, index=len(rest) + k) for k, r in enumerate(norms)]
    return norms, rest


def _node_line(n, types, var):
    """``t<value> = <expr>`` for a fusable node, operands from ``var`` (casts as the eager kernels)."""
    from ..kernels import scalar
    key, params = _scalar_of(n)
    ct = _ctype_name(compute_type(n, types))
    operands = []
    uncast = (0,) if n.op == "where" else ()
    for pos, x in enumerate(n.inputs):
        if isinstance(x, str):
            v = var[x]
            src_ct = _ctype_name(types[x].dtype)
            operands.append(v if (src_ct == ct or pos in uncast) else f"{_np_ctor(ct)}({v})")
        else:
            operands.append(_literal(x, ct))
    expr = scalar.render(key, operands, [_param(p) for p in params], ct)
    out_ct = _ctype_name(n.types[0].dtype)
    if out_ct != ct or ct not in ("float32", "float64") or key in scalar.BOOL_RESULT:
        expr = f"{_np_ctor(out_ct)}({expr})"
    t = f"t{n.outputs[0]}"
    var[n.outputs[0]] = t
    attrs = "".join(f" {k}={v!r}" for k, v in n.attrs)
    return f"{t} = {expr}".ljust(48) + f"  # %{n.outputs[0]} {n.op}{attrs}" + (f"  {n.loc}" if n.loc else "")


def row_norm_source(rg: RowNormGroup, types, fname: str = "kernel") -> str:
    """The generated module of a :class:`RowNormGroup` (deterministic, one line per IR node)."""
    from ..kernels._config import FASTMATH, PARALLEL_THRESHOLD
    from ..kernels.elementwise import emit_helpers
    vtext, vhash = versions_tag()
    shape = rg.shape
    nd = len(shape) - 1
    parallel = math.prod(shape) > PARALLEL_THRESHOLD
    T = _np_ctor(_ctype_name(types[rg.x].dtype))
    idx = ", ".join([f"i{d}" for d in range(nd)] + ["j"])
    args = [f"x{k}" for k in range(len(rg.inputs))] + [f"o{k}" for k in range(len(rg.outputs))]
    var = {}
    head = ["s = 0.0".ljust(48) + f"  # row sum of %{rg.x} (float64)",
            "for j in range(ncol):", f"    s += x0[{idx}]", "mean = s / ncol"]
    if any(n.op == "var" for n in rg.stats):
        head += ["q = 0.0", "for j in range(ncol):", f"    d = x0[{idx}] - mean", "    q += d * d"]
    for n in rg.stats:
        t = f"t{n.outputs[0]}"
        var[n.outputs[0]] = t
        cmt = f"  # %{n.outputs[0]} {n.op}" + "".join(f" {k}={v!r}" for k, v in n.attrs) + (
            f"  {n.loc}" if n.loc else "")
        if n.op == "sum":
            head.append(f"{t} = {T}(s)".ljust(48) + cmt)
        else:
            c = dict(dict(OPS["var"].attrs), **dict(n.attrs))["correction"]
            head.append(f"{t} = {T}(q / max(ncol - {c}, 0))".ljust(48) + cmt)
    for n in rg.rows:
        head.append(_node_line(n, types, var))
    loads = []
    for k, x in enumerate(rg.inputs):
        var[x] = f"a{k}"
        loads.append(f"a{k} = x{k}[{idx}]".ljust(40) + f"  # %{x}: {types[x].dtype.short}, {types[x].ndim}-d"
                     + ("" if k == 0 else " (broadcast)"))
    outs = {o: f"o{j}" for j, o in enumerate(rg.outputs)}
    body = []
    for n in rg.epilogue.nodes:
        body.append(_node_line(n, types, var))
        if n.outputs[0] in outs:
            body.append(f"{outs[n.outputs[0]]}[{idx}] = t{n.outputs[0]}")
    helpers = emit_helpers("\n".join(head + body))
    names = ", ".join(f"%{n.outputs[0]} {n.op}" for n in rg.nodes)
    out = [f"# generated by jitorch.jit.fuse: {len(rg.nodes)} fused nodes, row statistics + epilogue ({names})",
           f"# loop rows{', parallel' if parallel else ''}; {vtext} [{vhash}]",
           "import math", "import numpy as np", "from numba import njit, prange",
           "FASTMATH = {" + ", ".join(repr(f) for f in sorted(FASTMATH)) + "}", ""]
    if helpers:
        out += [helpers, ""]
    out += ["@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model='numpy'"
            + (", parallel=True)" if parallel else ")"),
            f"def {fname}({', '.join(args)}):", f"    ncol = x0.shape[{nd}]"]
    for d in range(nd):
        rng = "prange" if (d == 0 and parallel) else "range"
        out.append("    " * (d + 1) + f"for i{d} in {rng}(x0.shape[{d}]):")
    ind = "    " * (nd + 1)
    out += [ind + ln for ln in head]
    out.append(ind + "for j in range(ncol):")
    out += [ind + "    " + ln for ln in loads + body]
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- the text numba compiles (shared between graphs)

_TEMP = re.compile(r"\bt[0-9]+\b")
_COMMENT = re.compile(r"[ \t]*#.*$")
_CANON = {}


def canonical_source(src: str) -> str:
    """The module text that is written to the cache and compiled for an annotated kernel ``src``: the
    same code with the generated comments dropped and the temporaries ``t<value>`` renamed ``t0, t1, ...``
    in order of first appearance. Two groups that differ only in their IR value names and source lines
    (the two ``linear -> relu`` epilogues of an MLP, the same layer in two graphs, a training step's
    first and later graphs) thus give the same text, hence one module, one numba compile and one
    cache entry. The jitorch/numba/llvmlite versions stay in the text (first line), so a version
    change still changes the name. ``fn.kernels`` shows the annotated ``src``.

    The helpers copied in (``FASTMATH = ...`` up to the first ``@njit(cache=True`` kernel or ``# part``
    of a horizontal kernel) are kept
    verbatim: they hold no value names, and their docstrings may hold anything. Everything else is
    generated here, holds no string literal, and is rewritten line by line."""
    got = _CANON.get(src)
    if got is not None:
        return got
    vtext, vhash = versions_tag()
    out = [f"# jitorch fused kernel (comments of fn.kernels stripped); {vtext} [{vhash}]"]
    rename = {}

    def temp(m):
        return rename.setdefault(m.group(0), f"t{len(rename)}")

    region = "head"
    for ln in src.split("\n"):
        if region == "head" and ln.startswith("FASTMATH = "):
            region = "helpers"
            out.append(ln)
            continue
        if region != "kernels" and ln.startswith(("@njit(cache=True", "# part ")):
            region = "kernels"
        if region == "helpers":
            out.append(ln)
            continue
        code = _COMMENT.sub("", ln)
        if not code.strip():
            if not ln.strip():
                out.append("")  # blank lines stay (the layout of the module), comment-only lines go
            continue
        out.append(_TEMP.sub(temp, code) if region == "kernels" else code)
    text = "\n".join(out)
    if len(_CANON) > 4096:
        _CANON.clear()
    _CANON[src] = text
    return text

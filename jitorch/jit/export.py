"""jitorch.jit.save / jitorch.jit.load: a traced graph as a self-contained, safe ``.jt`` file.

A ``.jt`` file (the spec is docs/format.md) is a zip archive of

- ``version``: ``b"jitorch.export\\n1\\njitorch>=0.1.0\\n"``: format name, format version, and the
  first jitorch release that reads it;
- ``graph.txt``: the IR text (docs/jit.md, section 2), recorded at the example sizes;
- ``meta.json``: the inputs and outputs (names, dtypes, shapes with symbolic dims), guards
  (device, module mode, dynamic dims), the symbolic attributes and literals, one record per
  stored tensor, the call structure and the module tree;
- ``tensors/<n>.npy``: one ``.npy`` per parameter, buffer, state and constant input.

No pickle anywhere and no code in the file: loading validates every member (the shared container
checks of :mod:`jitorch.serialization`, the strict IR parser, ``verify``, the meta schema, every
``.npy`` header against the graph's types) and raises :class:`FormatError` for anything corrupt or
hostile. Saving the same graph twice gives the same bytes; writes to a path are atomic.

A **dynamic dimension** (``save(traced, f, dynamic_batch=True)`` or
``dynamic_dims={"x": {0: "batch"}}``) is checked at save time by re-tracing the function at two
other sizes: attributes and literals that change with the size (``view(%x, size=(8, -1))``,
``div(%s, 8)``) must be affine functions of it and are recorded symbolically in ``meta.json``;
anything else that changes (graph structure, constant data, non-affine values, data-dependent
sizes) refuses the export with a message naming the node. A loaded graph is re-specialized for
each new size: symbolic values substituted, every node's type re-derived with the op table's
rules and checked against its symbolic type.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from .. import _dtype as D
from .. import serialization as S
from ..ops import random as _random_ops
from ..serialization import FormatError
from . import _pytree
from .graph_ops import GRAPH_OPS
from .ir import Graph, Input, IRError, TensorType
from .text import ParseError, blocks_of, format_graph, parse
from .verify import VerifyError, expected_types, verify

__all__ = ["save", "load", "FormatError", "FORMAT_NAME", "FORMAT_VERSION", "read_export", "describe"]

FORMAT_NAME = "jitorch.export"
FORMAT_VERSION = 1
#: format version -> the first jitorch release that reads it (written in the version member)
READERS = {1: "0.1.0"}

VERSION_MEMBER = "version"
GRAPH_MEMBER = "graph.txt"
META_MEMBER = "meta.json"
_TENSOR_NAME = re.compile(r"tensors/(0|[1-9][0-9]{0,9})\.npy")
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_EXPR = re.compile(r"(?:(-?[0-9]{1,19})\*)?([A-Za-z_][A-Za-z0-9_]{0,63})(?:([+-])([0-9]{1,19}))?\Z")
_PATH_PART = re.compile(r"[A-Za-z0-9_]{1,200}\Z")
_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_TENSOR_KINDS = ("param", "buffer", "state", "const")

#: Limits checked on load (module attributes, so an application can adjust them).
MAX_GRAPH_BYTES = 16 << 20          # graph.txt
MAX_META_BYTES = 16 << 20           # meta.json
MAX_NESTING = 64                    # brackets in graph.txt, nesting in meta.json's call specs and paths
MAX_VALUE_BYTES = 4 << 30           # any one value of the graph at its recorded (example) sizes
MAX_TOTAL_BYTES = 16 << 30          # all values of the graph together (what one call may allocate)
MAX_SPECIALIZATIONS = 16            # sizes of a dynamic dim a loaded module keeps compiled


# ================================================================ the in-memory record

@dataclass
class Export:
    """Everything a ``.jt`` file holds, validated (what :func:`read_export` returns)."""
    graph: Graph                     # at the example sizes, with its constants
    tensors: dict                    # input name -> np.ndarray, for param/buffer/state/const inputs
    requires_grad: dict              # param name -> bool
    in_spec: tuple                   # _pytree spec of (args, kwargs)
    out_spec: tuple                  # _pytree spec of the result
    training: bool | None = None     # module mode at trace time (None: a function)
    modules: tuple = ()              # ((dotted path, type name), ...), the traced module tree
    symbol: str | None = None        # the dynamic dim's name ("batch"), or None
    example: int | None = None       # its size in graph.txt
    min: int = 1
    max: int | None = None
    input_dims: dict = field(default_factory=dict)   # user input name -> {dim index: symbol}
    exprs: tuple = ()                # ((graph name, node index, where, coef, offset), ...)
    producer: str = ""
    meta: dict | None = None         # the meta.json document (filled when written or read)
    device: str = "cpu"              # guards.device: where the saved tensors lived ("cpu"/"cuda"), load's default

    @property
    def user_inputs(self):
        return tuple(i for i in self.graph.inputs if i.kind == "input")

    def symbolic_shape(self, name, shape):
        dims = self.input_dims.get(name, {})
        return tuple(self.symbol if d in dims else s for d, s in enumerate(shape))


def _producer():
    from .. import __version__
    return f"jitorch {__version__}"


def _jitorch_version():
    from .. import __version__
    return __version__


# ================================================================ expressions: coef * symbol + offset

def format_expr(symbol, coef, offset):
    """``coef*symbol+offset`` in the canonical text form (``batch``, ``2*batch``, ``batch-1``, ``7``)."""
    if coef == 0:
        return offset
    s = symbol if coef == 1 else f"{coef}*{symbol}"
    if offset:
        s += f"+{offset}" if offset > 0 else f"-{-offset}"
    return s


def _parse_expr(text, symbol, what):
    m = _EXPR.match(text) if isinstance(text, str) else None
    if m is None or m.group(2) != symbol:
        _fail(f"{what}: {text!r} is not an expression of the dynamic dim {symbol!r} (like {symbol!r}, "
              f"'2*{symbol}', '{symbol}+1')")
    coef = int(m.group(1)) if m.group(1) is not None else 1
    offset = int(m.group(4) or 0) * (-1 if m.group(3) == "-" else 1)
    if coef == 0 or format_expr(symbol, coef, offset) != text:
        _fail(f"{what}: {text!r} is not in canonical form (write {format_expr(symbol, coef, offset)!r})")
    return coef, offset


def _fail(msg):
    raise FormatError(msg)


# ================================================================ specialization

def _substitute(value, path, new):
    if not path:
        return new
    k = path[0]
    return value[:k] + (_substitute(value[k], path[1:], new),) + value[k + 1:]


def _leaf(value, path):
    for k in path:
        value = value[k]
    return value


def _exprs_plan(exprs):
    plan = {}
    for gname, k, where, coef, offset in exprs:
        plan.setdefault((gname, k), []).append((where, coef, offset))
    return plan


def _sub_inputs(node, arg_types):
    """The operand types a graph op passes to its sub-graphs (cond: all but the predicate)."""
    return tuple(arg_types[1:]) if node.op == "cond" else tuple(arg_types)


def specialize(graph, input_types, plan, size, _cache=None):
    """``graph`` with the symbolic values of ``plan`` set for ``size`` and every type re-derived.

    ``input_types`` maps input names to their new types (inputs not named keep theirs). Node types
    come from the op table's rules (graph ops from their checks on re-specialized sub-graphs); a
    data-dependent size keeps its recorded value. Raises ValueError naming the node when a rule
    rejects the new types. Returns ``graph`` itself when nothing changes.
    """
    cache = {} if _cache is None else _cache
    types, inputs, changed = {}, [], False
    for i in graph.inputs:
        t = input_types.get(i.name, i.type)
        if t != i.type:
            changed = True
            i = Input(i.name, t, i.kind)
        inputs.append(i)
        types[i.name] = t
    nodes = []
    for k, n in enumerate(graph.nodes):
        ins, attrs = n.inputs, n.attrs
        for where, coef, offset in plan.get((graph.name, k), ()):
            v = coef * size + offset
            if where[0] == "operand":
                i = where[1]
                ins = ins[:i] + (float(v) if isinstance(ins[i], float) else v,) + ins[i + 1:]
            else:
                name, path = where[1], where[2]
                attrs = tuple((a, _substitute(val, path, float(v) if isinstance(_leaf(val, path), float) else v)
                               if a == name else val) for a, val in attrs)
        args = [types[x] if isinstance(x, str) else x for x in ins]
        if n.op in GRAPH_OPS and any(isinstance(v, Graph) for _, v in attrs):
            sub_types = _sub_inputs(n, args)
            new_attrs = []
            for a, v in attrs:
                if isinstance(v, Graph):
                    key = (v.name, sub_types)
                    if key not in cache:
                        cache[key] = specialize(v, {si.name: t for si, t in zip(v.inputs, sub_types)}, plan, size,
                                                cache)
                    v = cache[key]
                new_attrs.append((a, v))
            attrs = tuple(new_attrs)
        cand = n if (ins is n.inputs and attrs is n.attrs) else n.replace(inputs=ins, attrs=attrs)
        try:
            want = expected_types(cand, args)
        except Exception as e:  # the rules raise ValueError; hostile attrs can make them raise others
            raise ValueError(f"%{n.outputs[0]} = {n.op}(...) ({n.loc or 'no loc'}): {e}") from None
        if len(want) != len(n.types):
            raise ValueError(f"%{n.outputs[0]} = {n.op}(...): the rules give {len(want)} outputs")
        new_types = tuple(TensorType(old.shape if shape is None else shape, dtype)
                          for (shape, dtype), old in zip(want, n.types))
        if new_types != n.types:
            cand = cand.replace(types=new_types)
        if cand is not n:
            changed = True
        nodes.append(cand)
        types.update(zip(cand.outputs, cand.types))
    if not changed:
        return graph
    return graph.replace(inputs=tuple(inputs), nodes=tuple(nodes))


def _input_types_at(ex, size):
    out = {}
    for i in ex.user_inputs:
        dims = ex.input_dims.get(i.name)
        if dims:
            shape = tuple(size if d in dims else s for d, s in enumerate(i.type.shape))
            out[i.name] = TensorType(shape, i.type.dtype)
    return out


def specialize_export(ex, size):
    """The graph of ``ex`` for the dynamic dim = ``size`` (verified)."""
    if ex.symbol is None or size == ex.example:
        return ex.graph
    g = specialize(ex.graph, _input_types_at(ex, size), _exprs_plan(ex.exprs), size)
    return verify(g)


def _value_types(g):
    """(block name, value name) -> type, for every input and node output of every block."""
    out = {}
    for b in blocks_of(g):
        for i in b.inputs:
            out[(b.name, i.name)] = i.type
        for n in b.nodes:
            for o, t in zip(n.outputs, n.types):
                out[(b.name, o)] = t
    return out


def symbolic_types(g0, s0, g1, s1):
    """Per value, per dim ``(coef, offset)``: the affine function through the sizes at ``s0`` and ``s1``."""
    t0, t1 = _value_types(g0), _value_types(g1)
    if t0.keys() != t1.keys():
        raise ValueError("the graph's values differ between sizes")
    out = {}
    for key, a in t0.items():
        b = t1[key]
        if a.ndim != b.ndim or a.dtype is not b.dtype:
            raise ValueError(f"%{key[1]} is {a} at {s0} but {b} at {s1}")
        dims = []
        for x, y in zip(a.shape, b.shape):
            coef, rem = divmod(y - x, s1 - s0)
            if rem:
                raise ValueError(f"%{key[1]} is {a} at {s0} but {b} at {s1}: not an affine function of the size")
            dims.append((coef, x - coef * s0))
        out[key] = (tuple(dims), a.dtype)
    return out


def check_symbolic(ex, sym_types, g, size):
    """Raise ValueError unless every value of ``g`` (at ``size``) has its symbolic type."""
    for key, t in _value_types(g).items():
        dims, dtype = sym_types[key]
        want = tuple(c * size + o for c, o in dims)
        if t.shape != want or t.dtype is not dtype:
            shown = ",".join(str(format_expr(ex.symbol, c, o)) for c, o in dims)
            raise ValueError(f"%{key[1]} (graph {key[0]}) is {t} at {ex.symbol}={size}, but its exported type is "
                             f"{dtype.short}[{shown}]")


# ================================================================ collecting what to save

def _host(t):
    if isinstance(t, np.ndarray):
        a = t
    else:
        data = getattr(t, "_data", None)
        if data is None:
            a = np.asarray(t)
        elif isinstance(data, np.ndarray):
            a = data
        elif type(data).__name__ == "CudaArray":  # a cuda tensor: saved as host .npy (guards.device says cuda)
            from ..backends.cuda import to_host
            a = to_host(data)
        else:
            a = data.copy_to_host()
    a = np.array(a, order="C", copy=True)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a


def _per_signature():
    """The callables that trace per signature: their latest traced function is what gets saved."""
    from .trace import ScriptFunction
    try:
        from .compile import CompiledFunction
    except ImportError:  # pragma: no cover - jitorch.compile not there
        return (ScriptFunction,)
    return (ScriptFunction, CompiledFunction)


def _collect(obj, weights=None):
    from .trace import TracedFunction, _module_state
    if getattr(obj, "_jit_export", None) is not None:  # a LoadedModule: its record, with the live tensors
        return obj._export_now()
    if isinstance(obj, _per_signature()):
        obj = obj._require()
    if isinstance(obj, Graph):
        g = obj
        src = dict(weights or {})
        in_spec = ("tuple", (("tuple", tuple(("leaf",) for i in g.inputs if i.kind == "input")), ("dict", (), ())))
        out_spec = ("leaf",) if len(g.outputs) == 1 else ("tuple", tuple(("leaf",) for _ in g.outputs))
        training, modules, grads = None, (), {}
    elif isinstance(obj, TracedFunction):
        g = obj.graph
        module = obj._module
        src = {name: t for t, name, _ in _module_state(module)} if module is not None else {}
        src.update(obj._states)
        in_spec, out_spec = obj._in_spec, obj._out_spec
        training = obj._training
        modules = ()
        tree = getattr(module, "_module", module)  # jit.script / jitorch.compile wrap the module
        if tree is not None and callable(getattr(tree, "named_modules", None)):
            modules = tuple((name, _module_type(m)) for name, m in tree.named_modules())
        grads = {name: bool(getattr(t, "requires_grad", False)) for t, name, kind in
                 (_module_state(module) if module is not None else ()) if kind == "param"}
    else:
        raise TypeError(f"jit.save: expected a traced function or module (jit.trace), a jit.script or "
                        f"jitorch.compile function (after a call), a loaded graph (jit.load) or a Graph, got "
                        f"{type(obj).__name__}")
    tensors = {}
    for i in g.inputs:
        if i.kind == "input":
            continue
        if i.kind == "const":
            if i.name not in g.constants:
                raise ValueError(f"jit.save: const input %{i.name} of {g.name} has no data")
            a = _host(g.constants[i.name])
        else:
            if i.name not in src:
                raise ValueError(f"jit.save: no tensor for {i.kind} input %{i.name} of {g.name}"
                                 + (" (pass weights={name: tensor})" if isinstance(obj, Graph) else ""))
            a = _host(src[i.name])
        if a.shape != i.type.shape or a.dtype != i.type.dtype.np:
            raise ValueError(f"jit.save: {i.kind} %{i.name} holds {a.dtype}{list(a.shape)}, the graph says {i.type}")
        tensors[i.name] = a
    requires_grad = {i.name: bool(grads.get(i.name, False)) and i.type.dtype.is_floating_point
                     for i in g.inputs if i.kind == "param"}
    on_cuda = any(getattr(getattr(t, "_device", None), "type", None) == "cuda" for t in src.values()) or \
        any(type(v).__name__ == "CudaArray" for v in g.constants.values())
    return Export(graph=g, tensors=tensors, requires_grad=requires_grad, in_spec=_plain_spec(in_spec),
                  out_spec=_plain_spec(out_spec), training=training, modules=modules, producer=_producer(),
                  device="cuda" if on_cuda else "cpu")


def _module_type(m):
    """The type name recorded for a module (a loaded module keeps the names it was loaded with)."""
    name = getattr(m, "_type_name", None) or getattr(m, "_root_type", None) or type(m).__name__
    return name if _TYPE_NAME.match(name) else "Module"


def _plain_spec(spec):
    """A _pytree spec with namedtuples as tuples (the file keeps no Python types)."""
    kind = spec[0]
    if kind == "namedtuple":
        return ("tuple", tuple(_plain_spec(c) for c in spec[2]))
    if kind in ("tuple", "list"):
        return (kind, tuple(_plain_spec(c) for c in spec[1]))
    if kind == "dict":
        return ("dict", tuple(spec[1]), tuple(_plain_spec(c) for c in spec[2]))
    return spec


# ================================================================ dynamic dims at save time

def _declare(ex, dynamic_dims, dynamic_batch):
    g = ex.graph
    users = {i.name: i for i in ex.user_inputs}
    decl = {}
    if dynamic_batch:
        for i in users.values():
            if i.type.ndim == 0:
                raise ValueError(f"jit.save(dynamic_batch=True): input %{i.name} is 0-dim, it has no batch dim; "
                                 "declare the dynamic dims with dynamic_dims={name: {dim: 'batch'}}")
            decl[i.name] = {0: "batch"}
    for name, dims in (dynamic_dims or {}).items():
        if name not in users:
            raise ValueError(f"jit.save: dynamic_dims names {name!r}, which is not an input of {g.name} (inputs: "
                             f"{', '.join(users) or 'none'})")
        if not isinstance(dims, dict):
            raise TypeError(f"jit.save: dynamic_dims[{name!r}] must be a dict {{dim: name}}, got {dims!r}")
        nd = users[name].type.ndim
        for d, sym in dims.items():
            if isinstance(d, bool) or not isinstance(d, int) or not -nd <= d < nd:
                raise ValueError(f"jit.save: dynamic_dims[{name!r}]: dim {d!r} out of range for {users[name].type}")
            if not isinstance(sym, str) or not _SYMBOL.match(sym):
                raise ValueError(f"jit.save: dynamic_dims[{name!r}][{d}]: the dim's name must be an identifier, "
                                 f"got {sym!r}")
            decl.setdefault(name, {})[d % nd] = sym
    symbols = sorted({s for dims in decl.values() for s in dims.values()})
    if not symbols:
        return None
    if len(symbols) > 1:
        raise ValueError(f"jit.save: one dynamic dim per graph (format version {FORMAT_VERSION}); got {symbols}")
    sizes = {users[name].type.shape[d] for name, dims in decl.items() for d in dims}
    if len(sizes) != 1:
        raise ValueError(f"jit.save: the inputs declared with dim {symbols[0]!r} have different example sizes "
                         f"{sorted(sizes)}")
    return symbols[0], sizes.pop(), {k: dict(sorted(v.items())) for k, v in decl.items()}


def _retrace(traced, ex, size):
    """The traced function's graph re-traced with the dynamic dim = ``size`` (zeros as inputs)."""
    import jitorch
    from .trace import _restore, _snapshot, _trace_impl
    leaves = []
    for i in ex.user_inputs:
        shape = list(i.type.shape)
        for d in ex.input_dims.get(i.name, {}):
            shape[d] = size
        leaves.append(jitorch.zeros(tuple(shape), dtype=i.type.dtype, device=ex.device))
    args, kwargs = _pytree.unflatten(traced._in_spec, leaves)
    snap = _snapshot(traced._module, traced._states.values())
    rng = _random_ops.snapshot_generators()  # cpu and cuda: tracing's draws are undone
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            other, _ = _trace_impl(traced._fn, args, kwargs, True, log=False,
                                   names=[i.name for i in ex.user_inputs])
    except Exception as e:
        raise ValueError(f"jit.save: cannot export {ex.graph.name} with a dynamic {ex.symbol!r} dim: re-tracing it "
                         f"with {ex.symbol}={size} (to find what depends on the size) failed: "
                         f"{type(e).__name__}: {e}") from e
    finally:
        _restore(snap)
        _random_ops.restore_generators(rng)
    return other.graph


class _NotPolymorphic(ValueError):
    pass


def _node_desc(n):
    return f"%{n.outputs[0]} = {n.op}(...)" + (f" at {n.loc}" if n.loc else "")


def _compare(gs, sizes, symbol):
    """Differences between graphs traced at ``sizes``: -> [(graph, node, where, values)]; raises
    _NotPolymorphic when anything but an int/float leaf differs."""
    blocks = [blocks_of(g) for g in gs]
    if len({len(b) for b in blocks}) != 1 or len({tuple(x.name for x in b) for b in blocks}) != 1:
        raise _NotPolymorphic("its sub-graphs differ between sizes")
    found = []

    def fail(n, msg):
        where = _node_desc(n) if n is not None else "its inputs"
        shown = ", ".join(f"{symbol}={s}" for s in sizes)
        raise _NotPolymorphic(f"{where}: {msg} (traced at {shown})")

    def leaves(vals, n, where):
        v0 = vals[0]
        if isinstance(v0, Graph):
            if any(not isinstance(v, Graph) or v.name != v0.name for v in vals):
                fail(n, "a sub-graph attribute differs")
            return
        if isinstance(v0, tuple):
            if any(not isinstance(v, tuple) or len(v) != len(v0) for v in vals):
                fail(n, f"{_where_str(where)} has a different structure ({', '.join(repr(v) for v in vals)})")
            for k in range(len(v0)):
                leaves([v[k] for v in vals], n, where[:-1] + (where[-1] + (k,),) if where[0] == "attr" else where)
            return
        if any(type(v) is not type(v0) for v in vals):
            fail(n, f"{_where_str(where)} changes type ({', '.join(repr(v) for v in vals)})")
        if all(v == v0 or (v != v and v0 != v0) for v in vals):
            return
        if type(v0) not in (int, float):
            fail(n, f"{_where_str(where)} depends on the size: {', '.join(repr(v) for v in vals)}")
        found.append((where, vals))

    for bs in zip(*blocks):
        b0 = bs[0]
        if any(len(b.inputs) != len(b0.inputs) or len(b.nodes) != len(b0.nodes) for b in bs):
            raise _NotPolymorphic(f"graph {b0.name}: the number of nodes or inputs depends on the size "
                                  f"({', '.join(f'{len(b.nodes)} nodes at {symbol}={s}' for b, s in zip(bs, sizes))}); "
                                  "the function's Python code decides on the size")
        for ins in zip(*(b.inputs for b in bs)):
            i0 = ins[0]
            if any(i.name != i0.name or i.kind != i0.kind or i.type.dtype is not i0.type.dtype for i in ins):
                fail(None, f"input %{i0.name} differs")
            if i0.kind == "const":
                if any(i.type != i0.type for i in ins):
                    fail(None, f"the constant %{i0.name} has a size-dependent shape "
                               f"({', '.join(str(i.type) for i in ins)}), e.g. a tensor made from x.shape")
                datas = [b.constants.get(i0.name) for b in bs]
                if any(d is None for d in datas) or any(not np.array_equal(d, datas[0], equal_nan=True)
                                                        if d.dtype.kind == "f" else not np.array_equal(d, datas[0])
                                                        for d in datas):
                    fail(None, f"the constant %{i0.name} holds size-dependent data")
        if any(b.outputs != b0.outputs or b.updates != b0.updates for b in bs):
            fail(None, f"graph {b0.name}'s outputs or updates differ")
        for k, ns in enumerate(zip(*(b.nodes for b in bs))):
            n0 = ns[0]
            if any(n.op != n0.op or n.outputs != n0.outputs or len(n.inputs) != len(n0.inputs)
                   or tuple(a for a, _ in n.attrs) != tuple(a for a, _ in n0.attrs) for n in ns):
                fail(n0, "the node differs between sizes: " + " vs ".join(str(n) for n in ns))
            start = len(found)
            for j in range(len(n0.inputs)):
                vals = [n.inputs[j] for n in ns]
                if isinstance(vals[0], str) or any(isinstance(v, str) for v in vals):
                    if any(v != vals[0] for v in vals):
                        fail(n0, f"operand {j} differs")
                    continue
                leaves(vals, n0, ("operand", j))
            for a, _ in n0.attrs:
                leaves([n.attr(a) for n in ns], n0, ("attr", a, ()))
            for m in range(start, len(found)):
                found[m] = (b0.name, k, n0) + found[m]
    return found


def _where_str(where):
    if where[0] == "operand":
        return f"operand {where[1]}"
    return f"attribute {where[1]}" + "".join(f"[{k}]" for k in where[2])


def _make_dynamic(obj, ex, declared):
    from .trace import TracedFunction
    symbol, example, decl = declared
    if getattr(obj, "_jit_export", None) is not None:
        if ex.symbol == symbol and ex.input_dims == decl:
            return ex
        raise ValueError("jit.save: a loaded graph keeps the dynamic dims it was exported with "
                         f"({ex.input_dims or 'none'}); re-export from the model to change them")
    traced = obj._require() if isinstance(obj, _per_signature()) else obj
    if not isinstance(traced, TracedFunction):
        raise ValueError("jit.save: dynamic dims need the traced function (the result of jit.trace): jitorch "
                         "re-traces it at other sizes to find the size-dependent attributes")
    ex = replace(ex, symbol=symbol, example=example, input_dims=decl, min=1, max=None)
    sizes = (example + 1, example + 3)
    graphs = [_retrace(traced, ex, s) for s in sizes]
    all_sizes = (example,) + sizes
    try:
        found = _compare([ex.graph] + graphs, all_sizes, symbol)
        exprs = []
        for gname, k, n, where, vals in found:
            ints = [int(v) if isinstance(v, float) and v.is_integer() else v for v in vals]
            if any(not isinstance(v, int) for v in ints):
                raise _NotPolymorphic(f"{_node_desc(n)}: {_where_str(where)} depends on the size and is not an "
                                      f"integer ({', '.join(repr(v) for v in vals)} at {symbol}="
                                      f"{', '.join(map(str, all_sizes))})")
            coef = ints[1] - ints[0]                     # sizes[0] - example == 1
            offset = ints[0] - coef * example
            if ints[2] != coef * sizes[1] + offset:
                raise _NotPolymorphic(f"{_node_desc(n)}: {_where_str(where)} is not an affine function of the size "
                                      f"({', '.join(repr(v) for v in vals)} at {symbol}="
                                      f"{', '.join(map(str, all_sizes))}), e.g. a size-dependent scale factor")
            if any(isinstance(v, float) and abs(v) >= 2 ** 53 for v in vals):
                raise _NotPolymorphic(f"{_node_desc(n)}: {_where_str(where)} is too large to be exact")
            exprs.append((gname, k, where, coef, offset))
        ex = replace(ex, exprs=tuple(exprs))
        for s, gs in zip(sizes, graphs):
            try:
                got = specialize(ex.graph, _input_types_at(ex, s), _exprs_plan(ex.exprs), s)
            except ValueError as e:
                raise _NotPolymorphic(f"at {symbol}={s}: {e}") from None
            if got != gs:
                raise _NotPolymorphic(_first_difference(got, gs, symbol, s))
        symbolic_types(ex.graph, example, graphs[0], sizes[0])
    except _NotPolymorphic as e:
        raise ValueError(
            f"jit.save: {ex.graph.name} is not polymorphic in its dynamic dim {symbol!r} (declared "
            f"{_decl_str(decl)}): {e}. Export it without dynamic dims (a graph for the example size), or make the "
            "function independent of the size: sizes may only reach the graph as view/reshape/expand sizes and "
            "literals that are affine in it (x.view(x.shape[0], -1), x.sum(0) / x.shape[0]); Python decisions on "
            "the size, tensors made from it and data-dependent sizes cannot be exported with a dynamic dim. "
            "(docs/format.md, 'Dynamic dims')") from None
    return ex


def _decl_str(decl):
    return ", ".join(f"{name}[{d}]" for name, dims in decl.items() for d in dims)


def _first_difference(got, want, symbol, size):
    for bg, bw in zip(blocks_of(got), blocks_of(want)):
        for ng, nw in zip(bg.nodes, bw.nodes):
            if ng != nw:
                return (f"{_node_desc(nw)}: re-specialized for {symbol}={size} it is\n    {ng}\n  but traced at that "
                        f"size it is\n    {nw}")
        if bg != bw:
            return f"graph {bw.name} differs at {symbol}={size}"
    return f"the graph differs at {symbol}={size}"


# ================================================================ writing

def _spec_json(spec, depth=0):
    kind = spec[0]
    if kind == "leaf":
        return ["leaf"]
    if kind in ("tuple", "list"):
        return [kind, [_spec_json(c, depth + 1) for c in spec[1]]]
    if kind == "dict":
        return ["dict", [_const_json(k, "a dict key") for k in spec[1]], [_spec_json(c, depth + 1) for c in spec[2]]]
    if kind == "const":
        return ["const", _const_json(spec[1], "a non-tensor value in the arguments or results")]
    raise ValueError(f"jit.save: cannot store the call structure {kind!r}")


def _const_json(v, what):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return {"float": v.hex()}
    raise ValueError(f"jit.save: {what} must be None, a bool, an int, a float or a str to be saved; got "
                     f"{type(v).__name__}")


def _type_json(name, t, symbolic=None):
    return {"name": name, "dtype": t.dtype.name, "shape": list(symbolic if symbolic is not None else t.shape)}


def _meta(ex, members):
    g = ex.graph
    inputs = [_type_json(i.name, i.type, ex.symbolic_shape(i.name, i.type.shape)) for i in ex.user_inputs]
    outputs = []
    sym = None
    if ex.symbol is not None:
        g1 = specialize_export(ex, ex.example + 1)
        sym = symbolic_types(g, ex.example, g1, ex.example + 1)
    for o in g.outputs:
        t = g.types[o]
        shape = None
        if sym is not None:
            shape = [format_expr(ex.symbol, c, off) for c, off in sym[(g.name, o)][0]]
        outputs.append(_type_json(o, t, shape))
    tensors = []
    for i in g.inputs:
        if i.kind != "input":
            tensors.append({"name": i.name, "kind": i.kind, "member": members[i.name], "dtype": i.type.dtype.name,
                            "shape": list(i.type.shape), "requires_grad": bool(ex.requires_grad.get(i.name, False))})
    symbolic = []
    for gname, k, where, coef, offset in ex.exprs:
        e = {"graph": gname, "node": k}
        if where[0] == "operand":
            e["operand"] = where[1]
        else:
            e["attr"], e["path"] = where[1], list(where[2])
        e["value"] = format_expr(ex.symbol, coef, offset)
        symbolic.append(e)
    dims = {}
    if ex.symbol is not None:
        dims[ex.symbol] = {"example": ex.example, "min": ex.min, "max": ex.max}
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "producer": ex.producer or _producer(),
        "guards": {"device": ex.device, "training": ex.training, "dims": dims},
        "inputs": inputs,
        "outputs": outputs,
        "tensors": tensors,
        "symbolic": symbolic,
        "call": {"args": _spec_json(ex.in_spec), "result": _spec_json(ex.out_spec)},
        "modules": [[p, t] for p, t in ex.modules],
    }


def _version_bytes():
    return f"{FORMAT_NAME}\n{FORMAT_VERSION}\njitorch>={READERS[FORMAT_VERSION]}\n".encode("ascii")


def encode(ex):
    """The bytes of the ``.jt`` file for ``ex`` (deterministic)."""
    g = ex.graph
    members, order = {}, []
    for i in g.inputs:
        if i.kind != "input":
            members[i.name] = f"tensors/{len(order)}.npy"
            order.append(i.name)
    text = format_graph(g.replace(constants={}))
    if parse(text) != g:
        raise ValueError(f"jit.save: the IR text of {g.name} does not parse back to the same graph (a bug)")
    meta = _meta(ex, members)
    meta_bytes = json.dumps(meta, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(S._zinfo(VERSION_MEMBER), _version_bytes())
        zf.writestr(S._zinfo(GRAPH_MEMBER), text.encode("utf-8"))
        zf.writestr(S._zinfo(META_MEMBER), meta_bytes)
        for name in order:
            S.write_npy_member(zf, members[name], ex.tensors[name])
    return buf.getvalue()


def save(obj, f, *, dynamic_dims=None, dynamic_batch=False, weights=None):
    """Export a traced function or module to ``f`` (a path, written atomically, or a binary file object).

    ``obj`` is the result of :func:`jitorch.jit.trace` (or ``jit.script`` after a call, a module
    loaded by :func:`load`, or a :class:`Graph` with ``weights={input name: tensor}`` for its
    param/buffer/state inputs). Parameters and buffers are saved with their current values.

    Dynamic dims: ``dynamic_batch=True`` declares dim 0 of every input as ``"batch"``;
    ``dynamic_dims={"x": {0: "batch"}}`` names dims explicitly (one dim name per graph). The
    function is re-traced at two other sizes to find what depends on the size; an export that
    cannot be made polymorphic raises ValueError naming the node. The file is validated by the
    reader before it is written. docs/format.md specifies the format.
    """
    ex = _collect(obj, weights)
    declared = _declare(ex, dynamic_dims, dynamic_batch)
    if declared is not None:
        ex = _make_dynamic(obj, ex, declared)
    elif getattr(obj, "_jit_export", None) is not None:
        pass  # a loaded module keeps its dynamic dims
    for name in _module_paths(ex):
        _check_tree_name(name, ValueError)
    data = encode(ex)
    try:
        read_export(io.BytesIO(data))  # what we write, we read (a failure here is a bug, not the user's)
    except FormatError as e:
        raise ValueError(f"jit.save: the exported file does not validate: {e}") from e
    if hasattr(f, "write") and not isinstance(f, (str, bytes, os.PathLike)):
        f.write(data)
        return
    S.atomic_write(f, lambda fh: fh.write(data))


# ================================================================ reading

def _foreign(names):
    if "data.json" in names:
        _fail("this is a jitorch.save file (tensors or a state dict), not an exported graph: load it with "
              "jitorch.load")
    if any(n.endswith(".pkl") or "/code/" in n or n.startswith("code/") for n in names):
        _fail("this looks like a TorchScript archive (torch.jit.save): it holds pickled data and Python code, which "
              "jitorch never loads. Export the model from jitorch with jitorch.jit.save")


def _allowed_member(name):
    return name in (VERSION_MEMBER, GRAPH_MEMBER, META_MEMBER) or bool(_TENSOR_NAME.fullmatch(name))


def _read_version(data):
    m = re.fullmatch(rb"([A-Za-z0-9_.\-]{1,64})\n([0-9]{1,6})\n(?:jitorch>=([0-9]{1,6}(?:\.[0-9]{1,6}){0,3})\n)?",
                     data)
    if m is None:
        _fail(f"not a jitorch.jit.save file (version member {data[:40]!r})")
    name = m.group(1).decode()
    if name == S.FORMAT_NAME:
        _fail("this is a jitorch.save file (tensors or a state dict), not an exported graph: load it with "
              "jitorch.load")
    if name != FORMAT_NAME:
        _fail(f"not a jitorch.jit.save file (format {name!r})")
    version = int(m.group(2))
    reader = m.group(3).decode() if m.group(3) else None
    if version > FORMAT_VERSION:
        needs = f"jitorch >= {reader}" if reader else "a newer jitorch"
        _fail(f"this file has export format version {version}, which needs {needs}; this is jitorch "
              f"{_jitorch_version()}, which reads format versions up to {FORMAT_VERSION}. Upgrade jitorch")
    if version < 1:
        _fail(f"invalid export format version {version}")
    if reader != READERS[version]:
        _fail(f"the version member of a format-{version} file must name the reader jitorch>={READERS[version]}, "
              f"got {reader!r}")
    return version


def _num(v):
    return type(v) in (bool, int, float)


def _ints(v, none_ok=False):
    return type(v) is tuple and all(type(x) is int or (none_ok and x is None) for x in v)


_NUM = ("a number", _num)
_OPT_NUM = ("a number or None", lambda v: v is None or _num(v))
_INT = ("an int", lambda v: type(v) is int)
_OPT_INT = ("an int or None", lambda v: v is None or type(v) is int)
_BOOL = ("a bool", lambda v: type(v) is bool)
_DIM = ("an int, a tuple of ints or None", lambda v: v is None or type(v) is int or _ints(v))
_SIZES = ("an int or a tuple of ints (or None)", lambda v: v is None or type(v) is int or _ints(v, none_ok=True))
_DTYPE = ("a dtype or None", lambda v: v is None or isinstance(v, D.dtype))
_STR = ("a string or None", lambda v: v is None or type(v) is str)
_NONE = ("None", lambda v: v is None)
#: The kind of each attribute name the op table uses (checked on load: the rules do not check
#: every kind, and a kernel given a dtype where it wants a number fails deep inside numba).
ATTR_KINDS = {
    **dict.fromkeys(("alpha", "beta", "scale", "value", "negative_slope", "threshold", "min_val", "max_val", "lambd",
                     "mean", "std", "low", "high", "nan", "p", "correction"), _NUM),
    **dict.fromkeys(("posinf", "neginf", "min", "max", "divisor_override"), _OPT_NUM),
    **dict.fromkeys(("accumulate", "ceil_mode", "count_include_pad", "descending", "include_self", "largest",
                     "keepdim", "replacement", "return_counts", "return_inverse", "right", "sorted", "stable"), _BOOL),
    **dict.fromkeys(("groups", "k", "n", "num_samples", "index", "offset", "dim1", "dim2", "diagonal",
                     "storage_offset"), _INT),
    **dict.fromkeys(("start", "stop", "step"), _OPT_INT),
    **dict.fromkeys(("dim", "dims"), _DIM),
    **dict.fromkeys(("size", "shifts", "stride", "padding", "dilation", "kernel_size", "output_size", "input_size",
                     "weight_size", "output_padding"), _SIZES),
    "dtype": _DTYPE, "reduce": _STR, "generator": _NONE,
}


def _has_dtype(v):
    return isinstance(v, D.dtype) or (isinstance(v, tuple) and any(_has_dtype(x) for x in v))


def check_attr_kinds(g):
    """Raise ValueError unless every attribute of a table op (and of view_scatter's steps) has its kind."""
    def check(op, name, v, n):
        kind = ATTR_KINDS.get(name)
        ok = kind[1](v) if kind is not None else not _has_dtype(v)
        if not ok:
            raise ValueError(f"graph.txt: {_node_desc(n)}: attribute {name} of {op} must be "
                             f"{kind[0] if kind else 'a plain value (not a dtype)'}, got {v!r}")
    for b in blocks_of(g):
        for n in b.nodes:
            if n.op == "view_scatter":
                for step in n.attr("steps") or ():
                    for name, v in step[1]:
                        check(step[0], name, v, n)
            elif n.op not in GRAPH_OPS:
                for name, v in n.attrs:
                    check(n.op, name, v, n)


def _check_text(raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        _fail(f"graph.txt is not UTF-8: {e}")
    bad = re.search(r"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]", text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        _fail(f"graph.txt line {line}: control character {bad.group()!r} (only '\\n' and tabs are allowed)")
    depth = 0
    for m in re.finditer(r"[()\[\]]", text):
        depth += 1 if m.group() in "([" else -1
        if depth > MAX_NESTING:
            _fail(f"graph.txt line {text.count(chr(10), 0, m.start()) + 1}: brackets nested deeper than {MAX_NESTING}")
    return text


def _expect(cond, what):
    if not cond:
        _fail(what)


def _keys(d, keys, what, optional=()):
    _expect(type(d) is dict, f"{what} must be an object")
    missing = set(keys) - set(d)
    extra = set(d) - set(keys) - set(optional)
    _expect(not missing and not extra, f"{what} must have the keys {sorted(keys)}"
            + (f" (optional {sorted(optional)})" if optional else "") + f", found {sorted(d)}")


def _is_int(v):
    return type(v) is int


def _dtype_of(name, what):
    _expect(type(name) is str and name in S._DESCR_OF, f"{what}: unknown dtype {name!r}")
    return D._BY_NAME[name]


def _spec_from_json(j, depth, what):
    _expect(depth <= MAX_NESTING, f"{what}: nested deeper than {MAX_NESTING}")
    _expect(type(j) is list and j and type(j[0]) is str, f"{what}: a call structure node must be a list ['kind', ...]")
    kind = j[0]
    if kind == "leaf":
        _expect(len(j) == 1, f"{what}: bad 'leaf' node")
        return ("leaf",)
    if kind in ("tuple", "list"):
        _expect(len(j) == 2 and type(j[1]) is list, f"{what}: bad {kind!r} node")
        return (kind, tuple(_spec_from_json(c, depth + 1, what) for c in j[1]))
    if kind == "dict":
        _expect(len(j) == 3 and type(j[1]) is list and type(j[2]) is list and len(j[1]) == len(j[2]),
                f"{what}: bad 'dict' node")
        keys = tuple(_const_from_json(k, what) for k in j[1])
        _expect(len(set(map(repr, keys))) == len(keys), f"{what}: duplicate dict keys")
        return ("dict", keys, tuple(_spec_from_json(c, depth + 1, what) for c in j[2]))
    if kind == "const":
        _expect(len(j) == 2, f"{what}: bad 'const' node")
        return ("const", _const_from_json(j[1], what))
    _fail(f"{what}: unknown call structure node {kind!r}")


def _const_from_json(v, what):
    if v is None or type(v) in (bool, int, str):
        _expect(type(v) is not str or len(v) <= 4096, f"{what}: string too long")
        return v
    _expect(type(v) is dict and set(v) == {"float"} and type(v["float"]) is str and len(v["float"]) <= 40,
            f"{what}: bad constant {v!r}")
    try:
        return float.fromhex(v["float"])
    except (ValueError, OverflowError):
        _fail(f"{what}: bad float {v['float']!r}")


def _count_leaves(spec):
    kind = spec[0]
    if kind == "leaf":
        return 1
    if kind in ("tuple", "list"):
        return sum(_count_leaves(c) for c in spec[1])
    if kind == "dict":
        return sum(_count_leaves(c) for c in spec[2])
    return 0


_LOADED_ATTRS = None


def _reserved():
    global _LOADED_ATTRS
    if _LOADED_ATTRS is None:
        from .loaded import LoadedModule, _Submodule
        _LOADED_ATTRS = (frozenset(dir(LoadedModule)), frozenset(dir(_Submodule)))
    return _LOADED_ATTRS


def _check_tree_name(name, error):
    parts = name.split(".")
    root, sub = _reserved()
    for k, p in enumerate(parts):
        if not _PATH_PART.match(p):
            raise error(f"module/parameter name {name!r}: each dotted part must be letters, digits or '_'")
        if p in (root if k == 0 else sub) or p.startswith("__"):
            raise error(f"module/parameter name {name!r}: {p!r} collides with an attribute of the loaded module")


def _module_paths(ex):
    return [p for p, _ in ex.modules if p] + [i.name for i in ex.graph.inputs if i.kind in ("param", "buffer")]


def _read_meta_symbolic(meta, g, symbol, example):
    blocks = {b.name: b for b in blocks_of(g)}
    out, seen = [], set()
    _expect(type(meta) is list, "meta.json: 'symbolic' must be a list")
    if symbol is None:
        _expect(not meta, "meta.json: symbolic values without a dynamic dim")
    for k, e in enumerate(meta):
        what = f"meta.json: symbolic[{k}]"
        _expect(type(e) is dict, f"{what} must be an object")
        if "operand" in e:
            _keys(e, ("graph", "node", "operand", "value"), what)
        else:
            _keys(e, ("graph", "node", "attr", "path", "value"), what)
        b = blocks.get(e["graph"]) if type(e["graph"]) is str else None
        _expect(b is not None, f"{what}: no graph named {e['graph']!r}")
        _expect(_is_int(e["node"]) and 0 <= e["node"] < len(b.nodes), f"{what}: no node {e['node']!r}")
        n = b.nodes[e["node"]]
        if "operand" in e:
            i = e["operand"]
            _expect(_is_int(i) and 0 <= i < len(n.inputs), f"{what}: no operand {i!r}")
            where, leaf = ("operand", i), n.inputs[i]
        else:
            path = e["path"]
            _expect(type(e["attr"]) is str and any(a == e["attr"] for a, _ in n.attrs), f"{what}: no attribute "
                    f"{e['attr']!r}")
            _expect(type(path) is list and len(path) <= MAX_NESTING and all(_is_int(p) for p in path),
                    f"{what}: bad path")
            leaf = n.attr(e["attr"])
            for p in path:
                _expect(isinstance(leaf, tuple) and 0 <= p < len(leaf), f"{what}: the path does not lead to a value")
                leaf = leaf[p]
            where = ("attr", e["attr"], tuple(path))
        _expect(type(leaf) in (int, float), f"{what}: the value there is {leaf!r}, not an int or float")
        coef, offset = _parse_expr(e["value"], symbol, what)
        v = coef * example + offset
        _expect(leaf == v and (type(leaf) is int or abs(v) < 2 ** 53),
                f"{what}: {e['value']} is {v} at {symbol}={example}, but graph.txt has {leaf!r}")
        _expect((b.name, e["node"], where) not in seen, f"{what}: the same value is listed twice")
        seen.add((b.name, e["node"], where))
        out.append((b.name, e["node"], where, coef, offset))
    return tuple(out)


def _read_types(entries, expected, what, shape_check):
    _expect(type(entries) is list and len(entries) == len(expected),
            f"meta.json: '{what}' must list {len(expected)} entries")
    for k, (e, (name, t)) in enumerate(zip(entries, expected)):
        w = f"meta.json: {what}[{k}]"
        _keys(e, ("name", "dtype", "shape"), w)
        _expect(e["name"] == name, f"{w}: name {e['name']!r}, graph.txt has %{name}")
        _expect(_dtype_of(e["dtype"], w) is t.dtype, f"{w}: dtype {e['dtype']}, graph.txt has {t}")
        _expect(type(e["shape"]) is list and len(e["shape"]) == t.ndim, f"{w}: shape {e['shape']!r}, graph.txt has {t}")
        for d, (s, real) in enumerate(zip(e["shape"], t.shape)):
            shape_check(w, name, d, s, real)


def read_export(fobj):
    """Read and validate a ``.jt`` file from a seekable binary file object -> :class:`Export`."""
    try:
        return _read(fobj)
    except FormatError:
        raise
    except (ParseError, VerifyError, IRError) as e:
        raise FormatError(f"graph.txt: {e}") from None
    except S._CORRUPT + (ArithmeticError, AttributeError, LookupError, RuntimeError, MemoryError, AssertionError) as e:
        raise FormatError(f"corrupt .jt file: {type(e).__name__}: {e}") from e


def _read(fobj):
    fobj.seek(0, io.SEEK_END)
    size = fobj.tell()
    fobj.seek(0)
    head = fobj.read(4)
    fobj.seek(0)
    if head[:1] == b"\x80":
        _fail("this is a pickle file (e.g. torch.save): jitorch.jit.load never unpickles")
    if head != b"PK\x03\x04":
        _fail("not a jitorch.jit.save file (not a zip archive)")
    with zipfile.ZipFile(fobj, "r") as zf:
        infos = S.check_zip_members(zf, size, _allowed_member,
                                    f"only {VERSION_MEMBER!r}, {GRAPH_MEMBER!r}, {META_MEMBER!r} and 'tensors/<n>.npy'",
                                    names_hook=_foreign)
        if any(m not in infos for m in (VERSION_MEMBER, GRAPH_MEMBER, META_MEMBER)):
            _fail(f"not a jitorch.jit.save file: the {VERSION_MEMBER!r}, {GRAPH_MEMBER!r} and {META_MEMBER!r} members "
                  "are required")
        version = _read_version(S.read_small(zf, infos[VERSION_MEMBER], 256, "the version member"))
        meta = S.load_json_strict(S.read_small(zf, infos[META_MEMBER], MAX_META_BYTES, "meta.json"), "meta.json")
        _keys(meta, ("format", "version", "producer", "guards", "inputs", "outputs", "tensors", "symbolic", "call",
                     "modules"), "meta.json")
        _expect(meta["format"] == FORMAT_NAME and _is_int(meta["version"]) and meta["version"] == version,
                "meta.json: format/version do not match the version member")
        _expect(type(meta["producer"]) is str and len(meta["producer"]) <= 200, "meta.json: bad producer")
        text = _check_text(S.read_small(zf, infos[GRAPH_MEMBER], MAX_GRAPH_BYTES, "graph.txt"))
        g = verify(parse(text))  # strict parser, known ops, attrs, SSA, every type re-derived by the rules
        try:
            check_attr_kinds(g)
        except ValueError as e:
            _fail(str(e))

        # guards and dims
        guards = meta["guards"]
        _keys(guards, ("device", "training", "dims"), "meta.json: guards")
        if guards["device"] not in ("cpu", "cuda"):
            _fail(f"meta.json: guards.device is {guards['device']!r}; this jitorch knows 'cpu' and 'cuda'")
        _expect(guards["training"] is None or type(guards["training"]) is bool, "meta.json: bad guards.training")
        dims = guards["dims"]
        _expect(type(dims) is dict and len(dims) <= 1, "meta.json: guards.dims must be an object with at most one "
                f"dynamic dim (format version {FORMAT_VERSION})")
        symbol = example = None
        lo, hi = 1, None
        for symbol, d in dims.items():
            _expect(bool(_SYMBOL.match(symbol)), f"meta.json: bad dim name {symbol!r}")
            _keys(d, ("example", "min", "max"), f"meta.json: guards.dims.{symbol}")
            example, lo, hi = d["example"], d["min"], d["max"]
            _expect(_is_int(lo) and 0 <= lo and _is_int(example) and lo <= example
                    and (hi is None or (_is_int(hi) and example <= hi)),
                    f"meta.json: guards.dims.{symbol}: need 0 <= min <= example <= max (or max null)")

        # the call's inputs and outputs
        users = [i for i in g.inputs if i.kind == "input"]
        input_dims = {}

        def input_dim(w, name, d, s, real):
            if type(s) is str:
                _expect(s == symbol and symbol is not None, f"{w}: dim {d} is {s!r}, not the dynamic dim")
                _expect(real == example, f"{w}: dim {d} is {symbol} = {example}, but graph.txt has {real}")
                input_dims.setdefault(name, {})[d] = symbol
            else:
                _expect(_is_int(s) and s == real, f"{w}: dim {d} is {s!r}, graph.txt has {real}")
        _read_types(meta["inputs"], [(i.name, i.type) for i in users], "inputs", input_dim)
        _expect(symbol is None or input_dims, f"meta.json: the dynamic dim {symbol!r} is no input's dim")
        out_shapes = []

        def output_dim(w, name, d, s, real):
            if type(s) is str:
                _expect(symbol is not None, f"{w}: symbolic dim {s!r} without a dynamic dim")
                coef, offset = _parse_expr(s, symbol, w)
                _expect(coef * example + offset == real, f"{w}: dim {d} is {s} = {coef * example + offset} at "
                        f"{symbol}={example}, graph.txt has {real}")
                out_shapes.append((name, d, coef, offset))
            else:
                _expect(_is_int(s) and s == real, f"{w}: dim {d} is {s!r}, graph.txt has {real}")
                out_shapes.append((name, d, 0, s))
        _read_types(meta["outputs"], [(o, g.types.get(o, TensorType((), D.float32))) for o in g.outputs], "outputs",
                    output_dim)
        exprs = _read_meta_symbolic(meta["symbolic"], g, symbol, example)

        call = meta["call"]
        _keys(call, ("args", "result"), "meta.json: call")
        in_spec = _spec_from_json(call["args"], 0, "meta.json: call.args")
        out_spec = _spec_from_json(call["result"], 0, "meta.json: call.result")
        _expect(in_spec[0] == "tuple" and len(in_spec[1]) == 2 and in_spec[1][0][0] == "tuple"
                and in_spec[1][1][0] == "dict", "meta.json: call.args must be ['tuple', [args tuple, kwargs dict]]")
        _expect(_count_leaves(in_spec) == len(users), f"meta.json: call.args holds {_count_leaves(in_spec)} tensors, "
                f"the graph takes {len(users)} inputs")
        _expect(_count_leaves(out_spec) == len(g.outputs), f"meta.json: call.result holds {_count_leaves(out_spec)} "
                f"tensors, the graph returns {len(g.outputs)}")

        modules = meta["modules"]
        _expect(type(modules) is list, "meta.json: 'modules' must be a list")
        mods = []
        for k, m in enumerate(modules):
            _expect(type(m) is list and len(m) == 2 and type(m[0]) is str and type(m[1]) is str
                    and bool(_TYPE_NAME.match(m[1])) and (m[0] == "" or len(m[0]) <= 1000),
                    f"meta.json: modules[{k}] must be [path, type name]")
            mods.append((m[0], m[1]))
        _expect(len({p for p, _ in mods}) == len(mods), "meta.json: a module path is listed twice")

        # the tensors: one per param/buffer/state/const input, in input order
        stored = [i for i in g.inputs if i.kind != "input"]
        entries = meta["tensors"]
        _expect(type(entries) is list and len(entries) == len(stored),
                f"meta.json: 'tensors' must list the {len(stored)} param/buffer/state/const inputs")
        refs, requires_grad = {}, {}
        for k, (e, i) in enumerate(zip(entries, stored)):
            w = f"meta.json: tensors[{k}]"
            _keys(e, ("name", "kind", "member", "dtype", "shape", "requires_grad"), w)
            _expect(e["name"] == i.name and e["kind"] == i.kind, f"{w}: {e['kind']!r} {e['name']!r}, graph.txt has "
                    f"{i.kind} %{i.name}")
            _expect(_dtype_of(e["dtype"], w) is i.type.dtype and e["shape"] == list(i.type.shape)
                    and all(_is_int(s) for s in e["shape"]), f"{w}: type {e['dtype']}{e['shape']}, graph.txt has "
                    f"{i.type}")
            _expect(type(e["member"]) is str and bool(_TENSOR_NAME.fullmatch(e["member"])), f"{w}: bad member name")
            _expect(e["member"] in infos, f"{w}: member {e['member']!r} is not in the archive")
            _expect(e["member"] not in refs, f"{w}: member {e['member']!r} is used twice")
            _expect(type(e["requires_grad"]) is bool and (not e["requires_grad"] or (
                i.kind == "param" and i.type.dtype.is_floating_point)),
                f"{w}: requires_grad must be a bool, true only for floating-point params")
            refs[e["member"]] = i
            if i.kind == "param":
                requires_grad[i.name] = e["requires_grad"]
        unused = sorted(set(infos) - set(refs) - {VERSION_MEMBER, GRAPH_MEMBER, META_MEMBER})
        _expect(not unused, f"archive has members that meta.json does not reference: {unused[:3]}")

        # the graph: bounded, names usable as module attributes
        total = 0
        for (b, v), t in _value_types(g).items():
            nbytes = math.prod(t.shape) * t.dtype.itemsize
            total += nbytes
            if nbytes > MAX_VALUE_BYTES:
                _fail(f"graph.txt: %{v} (graph {b}) is {t}, {nbytes:,} bytes (limit {MAX_VALUE_BYTES:,}, "
                      "jitorch.jit.export.MAX_VALUE_BYTES)")
        if total > MAX_TOTAL_BYTES:
            _fail(f"graph.txt: the graph's values need {total:,} bytes (limit {MAX_TOTAL_BYTES:,}, "
                  "jitorch.jit.export.MAX_TOTAL_BYTES)")
        ex = Export(graph=g, tensors={}, requires_grad=requires_grad, in_spec=in_spec, out_spec=out_spec,
                    training=guards["training"], modules=tuple(mods), symbol=symbol, example=example, min=lo, max=hi,
                    input_dims=input_dims, exprs=exprs, producer=meta["producer"], meta=meta, device=guards["device"])
        for name in _module_paths(ex):
            _check_tree_name(name, FormatError)
        tree = {p for p, _ in mods if p}
        for name in _module_paths(ex):
            parts = name.split(".")
            for j in range(1, len(parts)):
                tree.add(".".join(parts[:j]))
        clash = tree & {i.name for i in g.inputs if i.kind in ("param", "buffer")}
        if clash:
            _fail(f"meta.json: {sorted(clash)[0]!r} is both a tensor and a module")
        if symbol is not None:
            try:
                other = example + 1 if hi is None or example + 1 <= hi else example - 1
                if lo <= other and other != example:
                    g1 = specialize_export(ex, other)
                    sym = symbolic_types(g, example, g1, other)
                    for name, d, coef, offset in out_shapes:
                        got = sym[(g.name, name)][0][d]
                        _expect(got == (coef, offset), f"meta.json: output %{name} dim {d} is declared "
                                f"{format_expr(symbol, coef, offset)} but the graph gives "
                                f"{format_expr(symbol, *got)}")
            except (ValueError, IRError) as e:
                if isinstance(e, FormatError):
                    raise
                _fail(f"the graph does not specialize for other sizes of {symbol!r}: {e}")

        # the data, last: every .npy header is checked before its data is read
        tensors = {}
        for member, i in sorted(refs.items(), key=lambda kv: int(kv[0][8:-4])):
            tensors[i.name] = S.read_npy(zf, infos[member], member, i.type.dtype.name, i.type.shape)
        consts = {i.name: tensors[i.name] for i in stored if i.kind == "const"}
        if consts:
            ex.graph = g = g.replace(constants=consts)
            verify(g)
        ex.tensors = tensors
        return ex


def _check_map_location(map_location):
    """Validate ``map_location``: None, a device (or its name), or a dict {saved device: target device}."""
    if map_location is None:
        return
    from .._device import as_device, device as _device_cls
    if isinstance(map_location, (str, _device_cls)):
        as_device(map_location)
    elif isinstance(map_location, dict):
        for k, t in map_location.items():
            as_device(k)
            as_device(t)
    else:
        raise TypeError(f"jit.load: map_location must be None, 'cpu', 'cuda', a jitorch.device or a dict, got "
                        f"{type(map_location).__name__}")


def _target_device(map_location, saved):
    """The device a loaded graph goes to: map_location's, else the device it was saved from (guards.device)."""
    from .._device import as_device
    dev = as_device(saved)
    if isinstance(map_location, dict):
        for k, t in map_location.items():
            if as_device(k).type == dev.type:
                return as_device(t)
        return dev
    return dev if map_location is None else as_device(map_location)


def load(f, map_location=None):
    """Load a graph exported by :func:`save` -> a :class:`jitorch.jit.LoadedModule` (an ``nn.Module``).

    ``f`` is a path or a seekable binary file object. The file is validated completely before
    anything is built (:class:`FormatError` for a corrupt, hostile or newer-version file); nothing
    in it is executed. The module's tensors go to ``map_location`` (a device, or a dict {saved device:
    target}) or, by default, to the device they were saved from (``guards.device``), and it runs there; it
    exposes the parameters and buffers by their traced names (``state_dict()``),
    accepts any size of a dynamic dim and can be traced into a larger graph.
    """
    _check_map_location(map_location)
    if hasattr(f, "read") and not isinstance(f, (str, bytes, os.PathLike)):
        ex = read_export(f)
    else:
        with open(f, "rb") as fh:
            ex = read_export(fh)
    return _module(ex, _target_device(map_location, ex.device))


def _module(ex, device=None):
    from .loaded import LoadedModule
    if device is not None and device.type == "cuda":
        from .. import cuda
        if not cuda.is_available():
            raise RuntimeError(f"jit.load: the graph was saved from {ex.device} and is loaded onto {device}, but cuda "
                               "is not available; pass map_location='cpu'")
    try:
        m = LoadedModule(ex)
        if device is not None and device.type != "cpu":
            m._to_device(device)
        m._traced(ex.example)  # generate and compile the graph's code now: a file that loads, runs
    except FormatError:
        raise
    except Exception as e:  # everything was validated; this is a last line of defence
        raise FormatError(f"corrupt .jt file: the graph could not be set up: {type(e).__name__}: {e}") from e
    return m


# ================================================================ describe (jitorch inspect)

def _fmt_shape(ex, shape):
    return "[" + ",".join(str(s) for s in shape) + "]"


def describe(ex, path=None, size=None, ir=True):
    """Human-readable summary of an :class:`Export` (what ``jitorch inspect`` prints)."""
    g, meta = ex.graph, ex.meta
    lines = []
    if path is not None:
        lines.append(f"file: {path}" + (f" ({size:,} bytes)" if size is not None else ""))
    lines.append(f"format: {FORMAT_NAME} version {meta['version']}, written by {meta['producer']}")
    mode = {True: "train", False: "eval", None: "n/a (a function)"}[ex.training]
    lines.append(f"graph: {g.name}, {len(g.nodes)} nodes"
                 + (f", {len(g.subgraphs())} sub-graphs" if g.subgraphs() else "")
                 + (f"; module {ex.modules[0][1]}" if ex.modules else ""))
    lines.append("inputs:")
    for e in meta["inputs"]:
        lines.append(f"  %{e['name']}: {D._BY_NAME[e['dtype']].short}{_fmt_shape(ex, e['shape'])}")
    lines.append("outputs:")
    for e in meta["outputs"]:
        lines.append(f"  %{e['name']}: {D._BY_NAME[e['dtype']].short}{_fmt_shape(ex, e['shape'])}")
    if g.updates:
        lines.append("updates (written back after each call): " + ", ".join(f"%{a}" for a, _ in g.updates))
    lines.append("guards:")
    lines.append(f"  device cpu; module mode {mode}; every input's dtype and static dims as listed")
    if ex.symbol is not None:
        rng = f"{ex.min} <= {ex.symbol}" + (f" <= {ex.max}" if ex.max is not None else "")
        lines.append(f"  dynamic dim {ex.symbol}: {rng} (example {ex.example}); "
                     f"{len(ex.exprs)} symbolic attribute/literal value{'s' if len(ex.exprs) != 1 else ''}")
    else:
        lines.append("  static shapes (no dynamic dims)")
    hist = Counter(n.op for b in blocks_of(g) for n in b.nodes)
    lines.append("ops: " + ", ".join(f"{op} {k}" for op, k in sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))))
    for kind, label in (("param", "parameters"), ("buffer", "buffers"), ("const", "constants"), ("state", "state")):
        ts = [ex.tensors[i.name] for i in g.inputs if i.kind == kind]
        if ts or kind == "param":
            lines.append(f"{label}: {len(ts)} tensors, {sum(t.size for t in ts):,} elements, "
                         f"{sum(t.nbytes for t in ts):,} bytes")
    if ir:
        lines.append("IR:")
        lines += ["  " + s if s else "" for s in format_graph(g).splitlines()]
        for e in meta["symbolic"]:
            where = f"operand {e['operand']}" if "operand" in e else f"{e['attr']}" + "".join(f"[{p}]" for p in e["path"])
            n = next(b for b in blocks_of(g) if b.name == e["graph"]).nodes[e["node"]]
            lines.append(f"  symbolic: %{n.outputs[0]} {n.op} {where} = {e['value']}")
    return "\n".join(lines)

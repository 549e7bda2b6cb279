"""The script IR: :class:`TensorType`, :class:`Input`, :class:`Node` and :class:`Graph`.

A Graph is a pure function: typed inputs, nodes in topological order (SSA: every value is
defined once, before its uses), outputs. Everything is immutable and compares structurally, so
``parse(str(g)) == g`` is a plain equality test and passes can return the very same object when
they change nothing.

- A value is named by a string: graph inputs by the user's names (``x``, ``fc1.weight``), node
  outputs by numbers (``0``, ``1``, ...). Printed with a ``%`` prefix.
- ``Node.inputs`` holds value names (``str``) and *literal scalars* (``int``, ``float``, ``bool``,
  ``None``): a Python number passed to an op (``x + 2.0``) stays a weak-typed literal, exactly as
  eager dispatch saw it, so dtype rules give the same answer when the graph is verified.
- ``Node.attrs`` is a tuple of ``(name, value)`` pairs of plain values: int, float, bool, None,
  str, dtype, tuples of those (lists are stored as tuples), and sub-graphs (:class:`Graph`, for
  ``cond``/``while_loop``).
- ``Input.kind`` says where an input comes from: ``input`` (an argument), ``param`` / ``buffer``
  (module state, bound by name at call time), ``state`` (a tensor the function reads and writes by
  reference, such as a random generator's ``(seed, offset)``: bound to the live tensor at call
  time) or ``const`` (a tensor captured while tracing; its data lives in ``Graph.constants``,
  outside the text and outside equality, like weights).
- ``Graph.updates`` lists ``(input name, value name)`` pairs: in-place writes to an input
  (a BatchNorm running mean, ``x.add_(1)`` on an argument) are functionalized into new values,
  and the caller writes them back after the call.

See docs/jit.md for the text format and the rules.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from .. import _dtype as D

IR_VERSION = 1
INPUT_KINDS = ("input", "param", "buffer", "state", "const")
VALUE_NAME = re.compile(r"[A-Za-z0-9_.]+\Z")
GRAPH_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
ATTR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class IRError(ValueError):
    """A malformed IR object (bad name, unsupported attribute value ...)."""


@dataclass(frozen=True)
class TensorType:
    """Shape and dtype of a value: the abstract tensor that rules and verify compute with.

    It quacks like a tensor for the op table's rules (``shape``, ``dtype``, ``ndim``, ``dim()``,
    ``numel()``, ``size()``), as JAX's ShapedArray does for abstract evaluation.
    """
    shape: tuple
    dtype: D.dtype

    def __post_init__(self):
        try:
            shape = tuple(int(s) for s in self.shape)
        except TypeError:
            raise IRError(f"TensorType: shape must be a sequence of ints, got {self.shape!r}") from None
        if any(s < 0 for s in shape):
            raise IRError(f"TensorType: negative size in shape {list(shape)}")
        if not isinstance(self.dtype, D.dtype):
            raise IRError(f"TensorType: dtype must be a jitorch dtype, got {self.dtype!r}")
        object.__setattr__(self, "shape", shape)

    @property
    def ndim(self):
        return len(self.shape)

    def dim(self):
        return len(self.shape)

    def numel(self):
        return math.prod(self.shape)

    def size(self, d=None):
        return self.shape if d is None else self.shape[d]

    def __str__(self):
        return f"{self.dtype.short}[{','.join(str(s) for s in self.shape)}]"

    def __repr__(self):
        return f"TensorType({self})"


@dataclass(frozen=True)
class Input:
    """A graph input: its value name, type and kind (input, param, buffer or const)."""
    name: str
    type: TensorType
    kind: str = "input"

    def __post_init__(self):
        check_value_name(self.name)
        if self.kind not in INPUT_KINDS:
            raise IRError(f"Input {self.name}: kind must be one of {INPUT_KINDS}, got {self.kind!r}")
        if not isinstance(self.type, TensorType):
            raise IRError(f"Input {self.name}: type must be a TensorType, got {self.type!r}")


def check_value_name(name):
    if not isinstance(name, str) or not VALUE_NAME.match(name):
        raise IRError(f"invalid value name {name!r}: use letters, digits, '_' and '.'")
    return name


# ---------------------------------------------------------------- plain values

LITERAL_TYPES = (bool, int, float, type(None))


def normalize_literal(v):
    """A scalar operand as the IR stores it: Python bool/int/float/None (NumPy scalars converted)."""
    if isinstance(v, LITERAL_TYPES):
        return v
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    raise IRError(f"unsupported scalar operand {v!r} of type {type(v).__name__}: the IR holds tensors and "
                  "Python int/float/bool/None")


def normalize_attr(v):
    """An attribute value as the IR stores it (lists become tuples, NumPy scalars Python ones)."""
    if isinstance(v, (str, D.dtype, Graph)) or isinstance(v, LITERAL_TYPES):
        return v
    if isinstance(v, (tuple, list)):
        return tuple(normalize_attr(x) for x in v)
    if isinstance(v, (np.bool_, np.integer, np.floating)):
        return normalize_literal(v)
    raise IRError(f"unsupported attribute value {v!r} of type {type(v).__name__}: attributes are int, float, "
                  "bool, None, str, dtype, tuples of those, or sub-graphs")


def value_key(v):
    """A hashable key that tells apart what ``==`` confuses: 1 vs 1.0 vs True, 0.0 vs -0.0, nan."""
    if v is None:
        return ("n",)
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, int):
        return ("i", v)
    if isinstance(v, float):
        return ("f", repr(v))
    if isinstance(v, str):
        return ("s", v)
    if isinstance(v, D.dtype):
        return ("d", v.short)
    if isinstance(v, tuple):
        return ("t",) + tuple(value_key(x) for x in v)
    if isinstance(v, Graph):
        return ("g", v)
    raise IRError(f"no key for {v!r}")


def attrs_tuple(attrs):
    """dict or pairs -> tuple of (name, normalized value) pairs, order kept."""
    items = attrs.items() if isinstance(attrs, dict) else attrs
    out = []
    seen = set()
    for k, v in items:
        if not isinstance(k, str) or not ATTR_NAME.match(k):
            raise IRError(f"invalid attribute name {k!r}")
        if k in seen:
            raise IRError(f"attribute {k!r} given twice")
        seen.add(k)
        out.append((k, normalize_attr(v)))
    return tuple(out)


# ---------------------------------------------------------------- Node

@dataclass(frozen=True, eq=False)
class Node:
    """One op application. ``outputs`` and ``types`` are parallel tuples (most ops have one)."""
    op: str
    inputs: tuple
    attrs: tuple
    outputs: tuple
    types: tuple
    loc: str = ""

    def __post_init__(self):
        if not isinstance(self.op, str) or not re.match(r"[A-Za-z_][A-Za-z0-9_.]*\Z", self.op):
            raise IRError(f"invalid op name {self.op!r}")
        ins = []
        for x in self.inputs:
            ins.append(check_value_name(x) if isinstance(x, str) else normalize_literal(x))
        object.__setattr__(self, "inputs", tuple(ins))
        object.__setattr__(self, "attrs", attrs_tuple(self.attrs))
        outs = tuple(check_value_name(o) for o in self.outputs)
        types = tuple(self.types)
        if len(outs) != len(types) or not outs:
            raise IRError(f"{self.op}: a node needs one type per output, got outputs {outs} and types {types}")
        for t in types:
            if not isinstance(t, TensorType):
                raise IRError(f"{self.op}: output type must be a TensorType, got {t!r}")
        loc = str(self.loc or "")
        if "\n" in loc:
            raise IRError(f"{self.op}: loc must be one line, got {loc!r}")
        object.__setattr__(self, "outputs", outs)
        object.__setattr__(self, "types", types)
        object.__setattr__(self, "loc", loc.strip())

    @property
    def type(self):
        """The type of a single-output node."""
        return self.types[0]

    @property
    def output(self):
        return self.outputs[0]

    @property
    def attr_dict(self):
        return dict(self.attrs)

    def attr(self, name, default=None):
        for k, v in self.attrs:
            if k == name:
                return v
        return default

    @property
    def value_inputs(self):
        """The input value names (literal scalars left out)."""
        return tuple(x for x in self.inputs if isinstance(x, str))

    def subgraphs(self):
        """Sub-graph attributes, in attribute order."""
        return tuple(v for _, v in self.attrs if isinstance(v, Graph))

    def key(self):
        return (self.op, tuple(("v", x) if isinstance(x, str) else value_key(x) for x in self.inputs),
                tuple((k, value_key(v)) for k, v in self.attrs), self.outputs, self.types, self.loc)

    def __eq__(self, other):
        return isinstance(other, Node) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def replace(self, **changes):
        d = dict(op=self.op, inputs=self.inputs, attrs=self.attrs, outputs=self.outputs, types=self.types,
                 loc=self.loc)
        d.update(changes)
        return Node(**d)

    def __str__(self):
        from .text import format_node
        return format_node(self)

    __repr__ = __str__


# ---------------------------------------------------------------- Graph

@dataclass(frozen=True, eq=False)
class Graph:
    """A pure function over tensors: ``inputs`` -> ``nodes`` (topologically ordered) -> ``outputs``.

    ``constants`` maps the names of ``const`` inputs to their (read-only) data; it is not part of
    the text nor of equality. ``updates`` pairs an input name with the value it holds after the
    call (functionalized in-place writes).
    """
    name: str
    inputs: tuple
    nodes: tuple
    outputs: tuple
    updates: tuple = ()
    constants: object = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not GRAPH_NAME.match(self.name):
            raise IRError(f"invalid graph name {self.name!r}: use letters, digits, '_' and '.'")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "outputs", tuple(check_value_name(o) for o in self.outputs))
        object.__setattr__(self, "updates", tuple((check_value_name(a), check_value_name(b))
                                                  for a, b in self.updates))
        for i in self.inputs:
            if not isinstance(i, Input):
                raise IRError(f"graph {self.name}: inputs must be Input records, got {i!r}")
        for n in self.nodes:
            if not isinstance(n, Node):
                raise IRError(f"graph {self.name}: nodes must be Node records, got {n!r}")
        consts = {}
        for k, v in dict(self.constants or {}).items():
            a = np.asarray(v)
            if a.flags.writeable:
                a = a.copy()
                a.flags.writeable = False
            consts[k] = a
        object.__setattr__(self, "constants", MappingProxyType(consts))
        object.__setattr__(self, "_cache", {})

    # ------------------------------------------------------------ lookups
    @property
    def types(self):
        """value name -> TensorType, for inputs and every node output."""
        c = self._cache
        if "types" not in c:
            t = {i.name: i.type for i in self.inputs}
            for n in self.nodes:
                t.update(zip(n.outputs, n.types))
            c["types"] = t
        return c["types"]

    def type_of(self, name):
        return self.types[name]

    @property
    def producers(self):
        """value name -> the node that defines it (inputs are absent)."""
        c = self._cache
        if "producers" not in c:
            c["producers"] = {o: n for n in self.nodes for o in n.outputs}
        return c["producers"]

    def producer(self, name):
        return self.producers.get(name)

    def users(self):
        """value name -> tuple of nodes that read it."""
        c = self._cache
        if "users" not in c:
            u = {}
            for n in self.nodes:
                for x in n.value_inputs:
                    u.setdefault(x, []).append(n)
            c["users"] = {k: tuple(v) for k, v in u.items()}
        return c["users"]

    def input(self, name):
        for i in self.inputs:
            if i.name == name:
                return i
        raise KeyError(name)

    def input_names(self, *kinds):
        """Names of the inputs of the given kinds (all when none given), in order."""
        return tuple(i.name for i in self.inputs if not kinds or i.kind in kinds)

    @property
    def output_types(self):
        return tuple(self.types[o] for o in self.outputs)

    def subgraphs(self):
        """Every sub-graph reachable from this graph (depth first, each once, self excluded)."""
        out, seen = [], set()

        def walk(g):
            for n in g.nodes:
                for s in n.subgraphs():
                    if id(s) not in seen:
                        seen.add(id(s))
                        out.append(s)
                        walk(s)
        walk(self)
        return tuple(out)

    def replace(self, **changes):
        d = dict(name=self.name, inputs=self.inputs, nodes=self.nodes, outputs=self.outputs, updates=self.updates,
                 constants=self.constants)
        d.update(changes)
        return Graph(**d)

    # ------------------------------------------------------------ equality, printing
    def key(self):
        c = self._cache
        if "key" not in c:
            c["key"] = (self.name, self.inputs, tuple(n.key() for n in self.nodes), self.outputs, self.updates)
        return c["key"]

    def __eq__(self, other):
        return isinstance(other, Graph) and (self is other or self.key() == other.key())

    def __hash__(self):
        c = self._cache
        if "hash" not in c:
            c["hash"] = hash(self.key())
        return c["hash"]

    def __str__(self):
        from .text import format_graph
        return format_graph(self)

    def __repr__(self):
        return f"<jitorch.jit.Graph {self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes>"

    def to_dot(self):
        """Graphviz DOT text: one box per node with its op, shape and dtype."""
        from .dot import to_dot
        return to_dot(self)

    def print_tabular(self):  # torch.fx's name for the same debugging aid
        print(self)


def fresh_name(used, base):
    """``base`` if unused, else ``base_1``, ``base_2``, ... (added to ``used``)."""
    base = sanitize_name(base)
    name, k = base, 0
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name


def sanitize_name(name):
    """Any string -> a valid value name (invalid characters become '_')."""
    s = re.sub(r"[^A-Za-z0-9_.]", "_", str(name)) or "v"
    return s

"""The IR text format: :func:`format_graph` prints it, :func:`parse` reads it back exactly.

::

    jitorch-ir 1
    graph mlp(%x: f32[64,784], param %fc1.weight: f32[256,784], param %fc1.bias: f32[256]):
      %0: f32[784,256] = permute(%fc1.weight, dims=(1, 0))     # model.py:12
      %1: f32[64,256] = matmul(%x, %0)                         # model.py:12
      %2: f32[64,256] = add(%1, %fc1.bias, alpha=1)            # model.py:12
      %3: f32[64,256] = relu(%2)                               # model.py:13
      return %3

The first graph is the main one; sub-graphs (``cond``/``while_loop`` bodies) follow as blocks
named ``graph @name(...)`` and attributes refer to them as ``@name``. The grammar is in
docs/jit.md; ``parse(format_graph(g)) == g`` holds for every graph.
"""
from __future__ import annotations

import ast
import re

from .. import _dtype as D
from .ir import IR_VERSION, Graph, Input, IRError, Node, TensorType

LOC_COLUMN = 56  # comments start here when the node text is shorter


class ParseError(ValueError):
    """The text is not valid IR; the message names the line."""


# ---------------------------------------------------------------- printing

def format_literal(v):
    if isinstance(v, float):
        return repr(v)  # repr round-trips exactly: '0.1', '1e-05', 'inf', '-inf', 'nan', '-0.0'
    return repr(v)


def format_attr(v):
    if isinstance(v, D.dtype):
        return v.short
    if isinstance(v, Graph):
        return "@" + v.name
    if isinstance(v, tuple):
        if len(v) == 1:
            return f"({format_attr(v[0])},)"
        return "(" + ", ".join(format_attr(x) for x in v) + ")"
    if isinstance(v, str):
        return repr(v)
    return format_literal(v)


def format_type(t, shapes=True):
    return str(t) if shapes else f"{t.dtype.short}[...]"


def format_node(n, shapes=True):
    outs = ", ".join(f"%{o}: {format_type(t, shapes)}" for o, t in zip(n.outputs, n.types))
    args = [f"%{x}" if isinstance(x, str) else format_literal(x) for x in n.inputs]
    args += [f"{k}={format_attr(v)}" for k, v in n.attrs]
    return f"{outs} = {n.op}({', '.join(args)})"


def _format_input(i, shapes=True):
    kind = "" if i.kind == "input" else i.kind + " "
    return f"{kind}%{i.name}: {format_type(i.type, shapes)}"


def format_block(g, sub=False, shapes=True):
    """The lines of one graph block (no version header)."""
    ins = [_format_input(i, shapes) for i in g.inputs]
    head = f"graph {'@' if sub else ''}{g.name}("
    one = head + ", ".join(ins) + "):"
    lines = [one] if len(one) <= 100 else [head] + [f"    {s}," for s in ins[:-1]] + [f"    {ins[-1]}", "):"]
    for n in g.nodes:
        text = "  " + format_node(n, shapes)
        if n.loc:
            text = text.ljust(LOC_COLUMN) + "  # " + n.loc
        lines.append(text)
    for name, value in g.updates:
        lines.append(f"  update %{name} = %{value}")
    lines.append("  return" + (" " + ", ".join(f"%{o}" for o in g.outputs) if g.outputs else ""))
    return lines


def blocks_of(g):
    """The main graph then every distinct sub-graph; sub-graph names must be unique."""
    blocks = [g]
    by_name = {}
    for s in g.subgraphs():
        prev = by_name.get(s.name)
        if prev is None:
            by_name[s.name] = s
            blocks.append(s)
        elif prev != s:
            raise IRError(f"graph {g.name}: two different sub-graphs are named @{s.name}; give them distinct names")
    return blocks


def format_graph(g, shapes=True):
    """The full text: version header, main graph, sub-graph blocks (blank line between blocks)."""
    lines = [f"jitorch-ir {IR_VERSION}"]
    for k, b in enumerate(blocks_of(g)):
        if k:
            lines.append("")
        lines += format_block(b, sub=k > 0, shapes=shapes)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(r"""
    (?P<COMMENT>\#[^\n]*)
  | (?P<NEWLINE>\n)
  | (?P<WS>[ \t\r]+)
  | (?P<VALUE>%[A-Za-z0-9_.]+)
  | (?P<GRAPH>@[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<STRING>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<NUMBER>-?(?:inf\b|nan\b|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?))
  | (?P<NAME>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<PUNCT>[()\[\],:=-])
""", re.VERBOSE)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class _Tok:
    __slots__ = ("kind", "text", "line")

    def __init__(self, kind, text, line):
        self.kind, self.text, self.line = kind, text, line

    def __repr__(self):
        return f"{self.kind}:{self.text!r}@{self.line}"


def _tokenize(text):
    toks, depth, line, pos = [], 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ParseError(f"line {line}: unexpected character {text[pos]!r}")
        kind, s = m.lastgroup, m.group()
        pos = m.end()
        if kind == "WS":
            continue
        if kind == "NEWLINE":
            line += 1
            if depth == 0:
                toks.append(_Tok("NEWLINE", s, line - 1))
            continue
        if kind == "PUNCT":
            if s in "([":
                depth += 1
            elif s in ")]":
                depth -= 1
                if depth < 0:
                    raise ParseError(f"line {line}: unbalanced {s!r}")
        toks.append(_Tok(kind, s, line))
    toks.append(_Tok("EOF", "", line))
    return toks


class _Ref:
    """A sub-graph reference (``@name``) waiting for its block to be built."""
    __slots__ = ("name", "line")

    def __init__(self, name, line):
        self.name, self.line = name, line


# ---------------------------------------------------------------- parser

class _Parser:
    def __init__(self, text):
        self.lines = text.split("\n")
        self.toks = _tokenize(text)
        self.i = 0

    # token helpers
    def peek(self, k=0):
        return self.toks[self.i + k]

    def next(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def error(self, msg, tok=None):
        tok = tok or self.peek()
        src = self.lines[tok.line - 1] if 0 < tok.line <= len(self.lines) else ""
        return ParseError(f"line {tok.line}: {msg}\n    {src.strip()}")

    def expect(self, kind, text=None):
        t = self.next()
        if t.kind != kind or (text is not None and t.text != text):
            want = repr(text) if text is not None else kind.lower()
            got = repr(t.text) if t.text else t.kind.lower()
            raise self.error(f"expected {want}, got {got}", t)
        return t

    def at(self, kind, text=None):
        t = self.peek()
        return t.kind == kind and (text is None or t.text == text)

    def skip_blank(self):
        while self.peek().kind in ("NEWLINE", "COMMENT"):
            self.next()

    # grammar
    def parse(self):
        self.skip_blank()
        t = self.next()
        if not (t.kind == "NAME" and t.text == "jitorch"):
            raise self.error("missing header line 'jitorch-ir <version>'", t)
        self.expect("PUNCT", "-")
        self.expect("NAME", "ir")
        v = self.expect("NUMBER")
        if not v.text.isdigit():
            raise self.error(f"bad IR version {v.text!r}", v)
        if int(v.text) > IR_VERSION:
            raise self.error(f"IR version {v.text} is newer than this jitorch reads ({IR_VERSION}); upgrade jitorch", v)
        blocks = []
        self.skip_blank()
        while not self.at("EOF"):
            blocks.append(self.block())
            self.skip_blank()
        if not blocks:
            raise self.error("no graph in the text")
        main = blocks[0]
        if main["sub"]:
            raise self.error("the first graph must be the main graph (written without '@')", main["tok"])
        subs = {}
        for b in blocks[1:]:
            if not b["sub"]:
                raise self.error(f"only the first graph may be a main graph; write 'graph @{b['name']}'", b["tok"])
            if b["name"] in subs:
                raise self.error(f"sub-graph @{b['name']} defined twice", b["tok"])
            subs[b["name"]] = b
        return _build(main, subs, {}, set())

    def block(self):
        tok = self.expect("NAME", "graph")
        sub = False
        if self.at("GRAPH"):
            name = self.next().text[1:]
            sub = True
        else:
            name = self.expect("NAME").text
        self.expect("PUNCT", "(")
        inputs = []
        while not self.at("PUNCT", ")"):
            kind = "input"
            if self.at("NAME"):
                kind = self.next().text
            vt = self.expect("VALUE")
            self.expect("PUNCT", ":")
            typ = self.type()
            try:
                inputs.append(Input(vt.text[1:], typ, kind))
            except IRError as e:
                raise self.error(str(e), vt) from None
            if not self.at("PUNCT", ")"):
                self.expect("PUNCT", ",")
        self.expect("PUNCT", ")")
        self.expect("PUNCT", ":")
        self.end_line()
        nodes, updates = [], []
        while True:
            self.skip_blank()
            t = self.peek()
            if t.kind == "NAME" and t.text == "return":
                self.next()
                outs = []
                while self.at("VALUE"):
                    outs.append(self.next().text[1:])
                    if self.at("PUNCT", ","):
                        self.next()
                self.end_line()
                return dict(name=name, sub=sub, inputs=inputs, nodes=nodes, updates=updates, outputs=outs, tok=tok)
            if t.kind == "NAME" and t.text == "update":
                self.next()
                a = self.expect("VALUE").text[1:]
                self.expect("PUNCT", "=")
                b = self.expect("VALUE").text[1:]
                self.end_line()
                updates.append((a, b))
                continue
            if t.kind == "VALUE":
                nodes.append(self.node())
                continue
            raise self.error(f"expected a node, 'update' or 'return', got {t.text or t.kind.lower()!r}", t)

    def end_line(self):
        if self.at("COMMENT"):
            self.next()
        if not self.at("EOF"):
            self.expect("NEWLINE")

    def type(self):
        t = self.expect("NAME")
        d = D._BY_SHORT.get(t.text)
        if d is None:
            raise self.error(f"unknown dtype {t.text!r}; expected one of {', '.join(D._BY_SHORT)}", t)
        self.expect("PUNCT", "[")
        shape = []
        while not self.at("PUNCT", "]"):
            n = self.expect("NUMBER")
            if not n.text.isdigit():
                raise self.error(f"a shape holds sizes >= 0, got {n.text}", n)
            shape.append(int(n.text))
            if not self.at("PUNCT", "]"):
                self.expect("PUNCT", ",")
        self.expect("PUNCT", "]")
        return TensorType(tuple(shape), d)

    def node(self):
        first = self.peek()
        outs, types = [], []
        while True:
            outs.append(self.expect("VALUE").text[1:])
            self.expect("PUNCT", ":")
            types.append(self.type())
            if self.at("PUNCT", ","):
                self.next()
                continue
            break
        self.expect("PUNCT", "=")
        op = self.expect("NAME").text
        self.expect("PUNCT", "(")
        inputs, attrs = [], []
        while not self.at("PUNCT", ")"):
            t = self.peek()
            if (t.kind in ("NAME", "NUMBER") and _IDENT.match(t.text) and self.peek(1).kind == "PUNCT"
                    and self.peek(1).text == "="):  # an attribute (named 'nan' or 'inf' too)
                k = self.next().text
                self.next()
                attrs.append((k, self.attr_value()))
            else:
                if attrs:
                    raise self.error("operands must come before attributes")
                if self.at("VALUE"):
                    inputs.append(self.next().text[1:])
                else:
                    inputs.append(self.literal())
            if not self.at("PUNCT", ")"):
                self.expect("PUNCT", ",")
        self.expect("PUNCT", ")")
        loc = ""
        if self.at("COMMENT"):
            loc = self.next().text[1:].strip()
        if not self.at("EOF"):
            self.expect("NEWLINE")
        return dict(op=op, inputs=inputs, attrs=attrs, outputs=outs, types=types, loc=loc, tok=first)

    def literal(self):
        t = self.next()
        if t.kind == "NUMBER":
            s = t.text
            if s.lstrip("-").isdigit():
                return int(s)
            return float(s)
        if t.kind == "NAME" and t.text in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[t.text]
        raise self.error(f"expected a value (%name) or a literal number/True/False/None, got {t.text!r}", t)

    def attr_value(self):
        t = self.peek()
        if t.kind == "PUNCT" and t.text == "(":
            self.next()
            items, trailing = [], False
            while not self.at("PUNCT", ")"):
                items.append(self.attr_value())
                trailing = False
                if not self.at("PUNCT", ")"):
                    self.expect("PUNCT", ",")
                    trailing = True
            self.expect("PUNCT", ")")
            if len(items) == 1 and not trailing:
                raise self.error("a one-element tuple needs a trailing comma: (x,)", t)
            return tuple(items)
        if t.kind == "STRING":
            self.next()
            return ast.literal_eval(t.text)
        if t.kind == "GRAPH":
            self.next()
            return _Ref(t.text[1:], t.line)
        if t.kind == "NAME" and t.text in D._BY_SHORT:
            self.next()
            return D._BY_SHORT[t.text]
        return self.literal()


def _resolve(v, subs, built, active):
    if isinstance(v, _Ref):
        if v.name not in subs:
            raise ParseError(f"line {v.line}: no sub-graph named @{v.name} in the text")
        return _build(subs[v.name], subs, built, active)
    if isinstance(v, tuple):
        return tuple(_resolve(x, subs, built, active) for x in v)
    return v


def _build(block, subs, built, active):
    name = block["name"]
    if block["sub"] and name in built:
        return built[name]
    if name in active:
        raise ParseError(f"line {block['tok'].line}: sub-graph @{name} refers to itself")
    active.add(name)
    nodes = []
    for nd in block["nodes"]:
        attrs = [(k, _resolve(v, subs, built, active)) for k, v in nd["attrs"]]
        try:
            nodes.append(Node(nd["op"], tuple(nd["inputs"]), tuple(attrs), tuple(nd["outputs"]), tuple(nd["types"]),
                              nd["loc"]))
        except IRError as e:
            raise ParseError(f"line {nd['tok'].line}: {e}") from None
    active.discard(name)
    try:
        g = Graph(name, tuple(block["inputs"]), tuple(nodes), tuple(block["outputs"]), tuple(block["updates"]))
    except IRError as e:
        raise ParseError(f"line {block['tok'].line}: {e}") from None
    if block["sub"]:
        built[name] = g
    return g


def parse(text, constants=None):
    """Read IR text (as printed by ``str(graph)``) back into a :class:`Graph`.

    ``constants`` optionally supplies the data of ``const`` inputs (name -> array), which the text
    does not hold.

    >>> from jitorch.jit import parse
    >>> g = parse('''jitorch-ir 1
    ... graph f(%x: f32[3]):
    ...   %0: f32[3] = mul(%x, 2.0)   # demo.py:1
    ...   return %0
    ... ''')
    >>> g.nodes[0].op, g.nodes[0].inputs, g.nodes[0].loc
    ('mul', ('x', 2.0), 'demo.py:1')
    """
    if not isinstance(text, str):
        raise TypeError(f"parse expects IR text (str), got {type(text).__name__}")
    g = _Parser(text).parse()
    if constants:
        g = g.replace(constants=dict(constants))
    return g

"""The IR objects and text format: printing, exact parsing (attrs of every kind, sub-graphs),
parse errors, verify's checks and messages, interpret's typing rules."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jitorch import _dtype as D
from jitorch import jit
from jitorch.jit import Graph, Input, Node, TensorType

F32 = D.float32


def T(*shape, dtype=F32):
    return TensorType(shape, dtype)


def graph_of(nodes, inputs, outputs, name="g", **kw):
    return Graph(name, tuple(inputs), tuple(nodes), tuple(outputs), **kw)


# ---------------------------------------------------------------- objects

def test_objects_are_immutable_and_compare_structurally():
    n = Node("exp", ("x",), (), ("0",), (T(3),), "a.py:1")
    with pytest.raises(Exception):
        n.op = "log"
    assert n == Node("exp", ["x"], {}, ["0"], [T(3)], "a.py:1")
    assert n != Node("exp", ("x",), (), ("0",), (T(3),), "a.py:2")
    assert Node("mul", ("x", 1), (), ("0",), (T(3),)) != Node("mul", ("x", 1.0), (), ("0",), (T(3),))
    assert Node("mul", ("x", 0.0), (), ("0",), (T(3),)) != Node("mul", ("x", -0.0), (), ("0",), (T(3),))
    nan = Node("fill", ("x",), {"value": math.nan}, ("0",), (T(3),))
    assert nan == Node("fill", ("x",), {"value": float("nan")}, ("0",), (T(3),))
    assert hash(nan) == hash(Node("fill", ("x",), {"value": float("nan")}, ("0",), (T(3),)))


def test_lists_become_tuples_and_numpy_scalars_python_ones():
    n = Node("permute", ("x",), {"dims": [1, np.int64(0)]}, ("0",), (T(3, 2),))
    assert n.attrs == (("dims", (1, 0)),) and type(n.attrs[0][1][1]) is int


@pytest.mark.parametrize("bad", [{"f": object()}, {"f": np.zeros(2)}, {"f": {1: 2}}])
def test_unsupported_attr_values_are_rejected(bad):
    with pytest.raises(jit.IRError, match="unsupported attribute value"):
        Node("exp", ("x",), bad, ("0",), (T(3),))


@pytest.mark.parametrize("name", ["a b", "", "x%", "é"])
def test_invalid_value_names_are_rejected(name):
    with pytest.raises(jit.IRError):
        Input(name, T(1))


def test_tensor_type_quacks_for_rules():
    t = T(2, 3)
    assert (t.ndim, t.numel(), t.dim(), t.size(1), str(t)) == (2, 6, 2, 3, "f32[2,3]")
    assert str(TensorType((), D.bool_)) == "b8[]"


# ---------------------------------------------------------------- text

GOLDEN = """\
jitorch-ir 1
graph mlp(%x: f32[2,4], param %fc.weight: f32[3,4], const %c0: f32[]):
  %0: f32[4,3] = permute(%fc.weight, dims=(1, 0))         # model.py:12
  %1: f32[2,3] = matmul(%x, %0)                           # model.py:12
  %2: f32[2,3] = mul(%1, %c0)                             # model.py:13
  %3: f32[2,3] = relu(%2)
  return %3
"""


def test_golden_text_parses_verifies_and_prints_back():
    g = jit.parse(GOLDEN)
    assert str(g) == GOLDEN
    assert [i.kind for i in g.inputs] == ["input", "param", "const"]
    assert g.nodes[0].loc == "model.py:12" and g.nodes[3].loc == ""
    jit.verify(g)


ALL_KINDS = {
    "i": -7, "big": 2 ** 70, "f": 0.1, "tiny": 5e-324, "huge": 1.7976931348623157e308, "negzero": -0.0,
    "inf": math.inf, "ninf": -math.inf, "nan": math.nan, "t": True, "fa": False, "none": None,
    "s": "it's \"quoted\"\n\\ tab\t", "empty": "", "dtype": D.int8, "dtypes": (D.float16, D.bool_),
    "tup": (1, (2.5, None), ("a",), ()), "one": (3,),
}


def test_attrs_of_every_kind_round_trip_exactly():
    sub = graph_of([Node("neg", ("a",), (), ("0",), (T(2),))], [Input("a", T(2))], ["0"], name="g.sub")
    n = Node("anything", ("x", 1, 2.0, True, None, -0.0), dict(ALL_KINDS, sub=sub), ("0", "1"), (T(2), T(2, 1)),
             "file with spaces.py:3")
    g = graph_of([n], [Input("x", T(2))], ["1", "0"])
    text = str(g)
    g2 = jit.parse(text)
    assert g2 == g and str(g2) == text
    got = g2.nodes[0].attr_dict
    assert got["s"] == ALL_KINDS["s"] and math.isnan(got["nan"]) and math.copysign(1, got["negzero"]) == -1
    assert got["dtype"] is D.int8 and got["tup"] == ALL_KINDS["tup"] and got["sub"] == sub
    assert g2.nodes[0].inputs[1:] == (1, 2.0, True, None, -0.0)


def test_long_headers_wrap_and_still_parse():
    ins = [Input(f"input_number_{k}", T(2, 3)) for k in range(8)]
    g = graph_of([Node("add", (ins[0].name, ins[1].name), {"alpha": 1}, ("0",), (T(2, 3),))], ins, ["0"])
    text = str(g)
    assert text.splitlines()[1] == "graph g("
    assert jit.parse(text) == g


def test_updates_round_trip():
    g = graph_of([Node("add", ("b", 1), {"alpha": 1}, ("0",), (T(2),))], [Input("b", T(2), "buffer")], ["0"],
                 updates=(("b", "0"),))
    assert "  update %b = %0\n  return %0" in str(g)
    assert jit.parse(str(g)) == g
    jit.verify(g)


def test_shared_subgraph_printed_once_and_name_clash_rejected():
    sub = graph_of([Node("neg", ("a",), (), ("0",), (T(2),))], [Input("a", T(2))], ["0"], name="s")
    other = graph_of([Node("exp", ("a",), (), ("0",), (T(2),))], [Input("a", T(2))], ["0"], name="s")
    n1 = Node("cond", ("p", "x"), {"true_graph": sub, "false_graph": sub}, ("0",), (T(2),))
    ins = [Input("p", TensorType((), D.bool_)), Input("x", T(2))]
    g = graph_of([n1], ins, ["0"])
    assert str(g).count("graph @s(") == 1 and jit.parse(str(g)) == g
    n2 = Node("cond", ("p", "x"), {"true_graph": sub, "false_graph": other}, ("0",), (T(2),))
    with pytest.raises(jit.IRError, match="two different sub-graphs are named @s"):
        str(graph_of([n2], ins, ["0"]))


@pytest.mark.parametrize("text, msg", [
    ("graph f(%x: f32[2]):\n  return %x\n", "missing header"),
    ("jitorch-ir 99\ngraph f(%x: f32[2]):\n  return %x\n", "newer than this jitorch"),
    ("jitorch-ir 1\ngraph f(%x: q32[2]):\n  return %x\n", "line 2: unknown dtype 'q32'"),
    ("jitorch-ir 1\ngraph f(%x: f32[2]):\n  %0: f32[2] = exp(%x\n  return %0\n", "expected"),
    ("jitorch-ir 1\ngraph f(%x: f32[2]):\n  %0: f32[2] = add(alpha=1, %x)\n  return %0\n",
     "line 3: operands must come before attributes"),
    ("jitorch-ir 1\ngraph f(%x: f32[2]):\n  %0: f32[2] = cond(%x, g=@nope)\n  return %0\n", "no sub-graph named @nope"),
    ("jitorch-ir 1\ngraph f(%x: f32[2]):\n  %0: f32[2] = f(%x, t=(1))\n  return %0\n", "trailing comma"),
    ("jitorch-ir 1\ngraph f(%x: f32[2]):\n  %0: f32[2] = exp(%x) $\n  return %0\n", "unexpected character '$'"),
    ("jitorch-ir 1\ngraph f(%x: f32[-2]):\n  return %x\n", "sizes >= 0"),
    ("jitorch-ir 1\ngraph f(bogus %x: f32[2]):\n  return %x\n", "kind must be one of"),
    ("jitorch-ir 1\ngraph @f(%x: f32[2]):\n  return %x\n", "main graph"),
])
def test_parse_errors_name_the_line(text, msg):
    with pytest.raises(jit.ParseError, match=msg.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")):
        jit.parse(text)


# ---------------------------------------------------------------- verify

def _g(body, header="graph f(%x: f32[2,3], %y: f32[3]):"):
    return jit.parse(f"jitorch-ir 1\n{header}\n{body}")


@pytest.mark.parametrize("body, msg", [
    ("  %0: f32[2,3] = nosuchop(%x)\n  return %0\n", "unknown op 'nosuchop'"),
    ("  %0: f32[2,3] = exp(%z)\n  return %0\n", "%z is not defined before this node"),
    ("  %0: f32[2,3] = exp(%1)\n  %1: f32[2,3] = exp(%x)\n  return %0\n", "%1 is not defined before"),
    ("  %0: f32[2,3] = exp(%x)\n  %0: f32[2,3] = exp(%x)\n  return %0\n", "%0 is defined twice"),
    ("  %0: f32[2,3] = add(%x, %y, alpha=1, beta=2)\n  return %0\n", "unknown attributes ['beta']"),
    ("  %0: f32[2,3] = exp(%x, foo=1)\n  return %0\n", "unknown attributes ['foo']; exp takes none"),
    ("  %0: f64[2,3] = exp(%x)\n  return %0\n", "the dtype rule says %0 is f32, the node says f64"),
    ("  %0: f32[3,2] = add(%x, %y, alpha=1)\n  return %0\n", "the shape rule says %0 is f32[2,3]"),
    ("  %0: f32[2,3] = add(%x, %x, %y, alpha=1)\n  return %0\n", "add is binary: it takes 2 operands, got 3"),
    ("  %0: f32[2,3] = permute(%x, dims=(0, 0))\n  return %0\n", "the shape rule rejects the inputs"),
    ("  %0: f32[2,3] = exp(%x)\n  return %1\n", "output %1 is not defined"),
    ("  %0: f32[2,3] = exp(%x)\n  update %q = %0\n  return %0\n", "update of %q, which is not an input"),
    ("  %0: f32[3] = exp(%y)\n  update %x = %0\n  return %0\n", "with %0 of another type"),
])
def test_verify_points_at_the_bad_node(body, msg):
    g = _g(body)
    with pytest.raises(jit.VerifyError) as e:
        jit.verify(g, after="some_pass")
    text = str(e.value)
    assert msg in text, text
    assert "graph f after pass some_pass" in text
    assert ">> " in text


def test_verify_context_shows_neighbours():
    body = "".join(f"  %{k}: f32[2,3] = exp(%{k - 1 if k else 'x'})\n" for k in range(8))
    body = body.replace("%4: f32[2,3]", "%4: f32[9]") + "  return %7\n"
    text = str(pytest.raises(jit.VerifyError, jit.verify, _g(body)).value)
    lines = text.splitlines()
    marked = [l for l in lines if l.startswith(">> ")]
    assert marked == [">>   %4: f32[9] = exp(%3)"]
    assert any("%1:" in l for l in lines) and any("%7:" in l for l in lines) and not any("%0:" in l for l in lines)


def test_verify_checks_constant_data():
    g = _g("  %0: f32[2,3] = mul(%x, %c)\n  return %0\n", "graph f(%x: f32[2,3], const %c: f32[3]):")
    jit.verify(g.replace(constants={"c": np.ones(3, np.float32)}))
    with pytest.raises(jit.VerifyError, match="holds float64"):
        jit.verify(g.replace(constants={"c": np.ones(3)}))


# ---------------------------------------------------------------- interpret

def test_interpret_weak_scalars_follow_torch():
    g = _g("  %0: i8[2] = add(%i, 1000, alpha=1)\n  %1: f32[2] = mul(%i, 2.5)\n  %2: u8[2] = sub(%u, 1, alpha=1)\n"
           "  %3: b8[2] = lt(%i, 300)\n  return %0, %1, %2, %3\n", "graph f(%i: i8[2], %u: u8[2]):")
    jit.verify(g)
    a, b, c, d = jit.interpret(g, [np.array([1, 100], np.int8), np.array([0, 5], np.uint8)])
    assert a.tolist() == [-23, 76] and a.dtype == np.int8
    assert b.dtype == np.float32 and b.tolist() == [2.5, 250.0]
    assert c.tolist() == [255, 4] and c.dtype == np.uint8
    assert d.dtype == np.bool_


def test_interpret_casts_to_the_node_dtype():
    g = _g("  %0: f16[2] = add(%i, %h, alpha=1)\n  return %0\n", "graph f(%i: i64[2], %h: f16[2]):")
    jit.verify(g)
    (out,) = jit.interpret(g, {"i": np.array([1, 2]), "h": np.array([0.5, 0.25], np.float16)})
    assert out.dtype == np.float16 and out.tolist() == [1.5, 2.25]


def test_interpret_checks_inputs_and_reports_failing_node():
    g = _g("  %0: f32[2,3] = exp(%x)\n  return %0\n")
    with pytest.raises(jit.InterpretError, match=r"input %x is f32\[2,3\], got f64\[2, 3\]"):
        jit.interpret(g, [np.zeros((2, 3)), np.zeros(3, np.float32)])
    with pytest.raises(jit.InterpretError, match="expected 2 inputs"):
        jit.interpret(g, [np.zeros((2, 3), np.float32)])


def test_interpret_uses_kernel_when_no_reference():
    g = _g("  %0: f32[2,2] = as_strided(%x, size=(2, 2), stride=(1, 3), storage_offset=1)\n  return %0\n")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (out,) = jit.interpret(g, [x, np.zeros(3, np.float32)])
    np.testing.assert_array_equal(out, [[1, 4], [2, 5]])


def test_interpret_results_do_not_alias_inputs():
    g = _g("  %0: f32[3,2] = permute(%x, dims=(1, 0))\n  return %0, %x\n")
    x = np.zeros((2, 3), np.float32)
    a, b = jit.interpret(g, [x, np.zeros(3, np.float32)])
    a[...] = 1
    b[...] = 1
    assert not x.any()


# ---------------------------------------------------------------- random graphs round-trip

@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_graphs_round_trip(data):
    from .test_jit_passes import graphs
    g, _ = data.draw(graphs())
    text = str(g)
    g2 = jit.parse(text)
    assert g2 == g and str(g2) == text
    jit.verify(g2)


_literals = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                      st.none(), st.text(max_size=8), st.sampled_from(D.ALL_DTYPES))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True),
                       st.recursive(_literals, lambda c: st.lists(c, max_size=3).map(tuple), max_leaves=8),
                       max_size=5))
def test_random_attrs_round_trip(attrs):
    g = graph_of([Node("op", ("x", 1.5), attrs, ("0",), (T(1),))], [Input("x", T(1))], ["0"])
    assert jit.parse(str(g)) == g


# ---------------------------------------------------------------- docs and doctests

def test_docs_examples_parse_verify_and_print_back():
    import pathlib
    import re
    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "jit.md").read_text()
    blocks = re.findall(r"```\n(jitorch-ir 1\n.*?)```", doc, re.S)
    assert len(blocks) >= 2
    for text in blocks:
        g = jit.verify(jit.parse(text))
        assert str(g) == text


@pytest.mark.parametrize("module", ["jitorch.jit.text", "jitorch.jit.verify", "jitorch.jit.interpret",
                                    "jitorch.jit.trace", "jitorch._control_flow"])
def test_doctests(module):
    import doctest
    import importlib
    m = importlib.import_module(module)
    result = doctest.testmod(m, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0

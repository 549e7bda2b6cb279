"""jitorch.cond / jitorch.while_loop: eager, traced into nodes holding sub-graphs, printed, parsed,
verified, interpreted and optimized like any node."""
from __future__ import annotations

import numpy as np
import pytest

import jitorch
from jitorch import jit


def t(*values, dtype=jitorch.float32):
    return jitorch.tensor(list(values), dtype=dtype)


def positive_or_not(x):
    return jitorch.cond(x[0:1].sum() > 0 if hasattr(x, "sum") else x[0:1].squeeze(0) > 0,
                        lambda a: a * 2, lambda a: a - 1, (x,))


def pred_of(x):
    return x[0:1].squeeze(0) > 0


def branchy(x, y):
    return jitorch.cond(pred_of(x), lambda a, b: (a * 2, b + a), lambda a, b: (a - 1, b * b), (x, y))


# ---------------------------------------------------------------- eager

def test_eager_cond_and_while_loop():
    x = t(1.0, 2.0)
    np.testing.assert_array_equal(jitorch.cond(pred_of(x), lambda a: a * 2, lambda a: a - 1, (x,))._data, [2.0, 4.0])
    np.testing.assert_array_equal(jitorch.cond(False, lambda a: a * 2, lambda a: a - 1, [x])._data, [0.0, 1.0])
    i, v = jitorch.while_loop(lambda i, v: i < 5, lambda i, v: (i + 1, v * 2), (jitorch.tensor(0), t(1.0)))
    assert int(i) == 5 and float(v[0]) == 32.0


def test_eager_errors():
    with pytest.raises(RuntimeError, match="one-element"):
        jitorch.cond(t(1.0, 2.0) > 0, lambda a: a, lambda a: a, (t(1.0),))
    with pytest.raises(TypeError, match="must be a Tensor"):
        jitorch.cond(True, lambda a: a, lambda a: a, (1.0,))
    with pytest.raises(RuntimeError, match="keep their shape and dtype"):
        jitorch.while_loop(lambda x: x.sum() < 10 if hasattr(x, "sum") else x[0] < 10, lambda x: (x.double() + 1,), (t(1.0),))


# ---------------------------------------------------------------- traced cond

def test_traced_cond_takes_the_branch_at_call_time():
    tr = jit.trace(branchy, (t(1.0, 2.0), t(3.0, 4.0)))
    g = tr.graph
    assert [n.op for n in g.nodes][-1] == "cond"
    for x in (t(1.0, 2.0), t(-1.0, 2.0)):
        y = t(3.0, 4.0)
        want = branchy(x, y)
        got = tr(x, y)
        for w, o in zip(want, got):
            np.testing.assert_array_equal(o._data, w._data)
        for w, o in zip(want, jit.interpret(g, [x._data, y._data])):
            np.testing.assert_allclose(o, w._data)


def test_cond_text_round_trips_and_verifies():
    tr = jit.trace(branchy, (t(1.0, 2.0), t(3.0, 4.0)), check_trace=False)
    text = str(tr.raw_graph)
    assert "true_graph=@branchy.cond0.true" in text and "graph @branchy.cond0.false(%a: f32[2], %b: f32[2]):" in text
    g = jit.parse(text)
    assert g == tr.raw_graph and str(g) == text
    jit.verify(g)
    assert "subgraph" in g.to_dot() and "@branchy.cond0.true" in g.to_dot()


def test_cond_closures_become_lifted_inputs():
    w = t(10.0, 20.0)  # captured from outside: a constant of the root graph

    def f(x, y):
        z = y * 3  # a traced value closed over by the branches
        return jitorch.cond(pred_of(x), lambda a: a + z, lambda a: a * w, (x,))
    tr = jit.trace(f, (t(1.0, 2.0), t(1.0, 1.0)))
    node = tr.graph.nodes[-1]
    assert node.op == "cond" and len(node.inputs) == 4  # pred, x, z, the constant
    true_g = node.attr("true_graph")
    assert [i.name for i in true_g.inputs][0] == "a" and all(i.kind == "input" for i in true_g.inputs)
    for x in (t(1.0, 2.0), t(-1.0, 2.0)):
        np.testing.assert_array_equal(tr(x, t(1.0, 1.0))._data, f(x, t(1.0, 1.0))._data)


def test_cond_branch_mismatch_is_an_error():
    def f(x):
        return jitorch.cond(pred_of(x), lambda a: a.sum() if hasattr(a, "sum") else a[0:1], lambda a: a, (x,))
    with pytest.raises(jit.TracerError, match="same structure, shapes and dtypes"):
        jit.trace(f, t(1.0, 2.0))


def test_cond_branch_must_not_mutate_operands():
    def f(x):
        return jitorch.cond(pred_of(x), lambda a: a.add_(1), lambda a: a, (x,))
    with pytest.raises(jit.TracerError, match="must be pure"):
        jit.trace(f, t(1.0, 2.0))


def test_cond_with_python_bool_is_static():
    tr = jit.trace(lambda x: jitorch.cond(True, lambda a: a * 2, lambda a: a, (x,)), t(1.0))
    assert [n.op for n in tr.graph.nodes] == ["mul"]


def test_constant_predicate_is_inlined_by_simplify():
    def f(x):
        p = jitorch.tensor(True)
        return jitorch.cond(p, lambda a: a.exp(), lambda a: a.neg(), (x,))
    tr = jit.trace(f, t(1.0, 2.0))
    assert "cond" in [n.op for n in tr.raw_graph.nodes]
    assert [n.op for n in tr.graph.nodes] == ["exp"]


def test_nested_cond():
    def f(x):
        def outer_true(a):
            return jitorch.cond(a[1:2].squeeze(0) > 0, lambda b: b * 10, lambda b: b * 100, (a,))
        return jitorch.cond(pred_of(x), outer_true, lambda a: a - 1, (x,))
    tr = jit.trace(f, t(1.0, 2.0))
    text = str(tr.graph)
    assert text.count("graph @") == 4
    assert jit.parse(text) == tr.graph
    for x in (t(1.0, 2.0), t(1.0, -2.0), t(-1.0, 2.0)):
        np.testing.assert_array_equal(tr(x)._data, f(x)._data)
        np.testing.assert_allclose(jit.interpret(tr.graph, [x._data])[0], f(x)._data)


# ---------------------------------------------------------------- traced while_loop

def collatz_steps(n):
    def cond_fn(n, steps):
        return n > 1

    def body_fn(n, steps):
        even = jitorch.remainder(n, 2) == 0
        return jitorch.where(even, jitorch.div(n, 2, rounding_mode="floor"), n * 3 + 1), steps + 1
    return jitorch.while_loop(cond_fn, body_fn, (n, jitorch.zeros((), dtype=jitorch.int64)))


def test_traced_while_loop_runs_data_dependent_iterations():
    tr = jit.trace(collatz_steps, jitorch.tensor(6))
    assert tr.graph.nodes[-1].op == "while_loop"
    for n in (6, 7, 27):
        want = collatz_steps(jitorch.tensor(n))
        got = tr(jitorch.tensor(n))
        assert int(got[1]) == int(want[1])
        assert int(jit.interpret(tr.graph, [np.array(n)])[1]) == int(want[1])
    assert jit.parse(str(tr.graph)) == tr.graph


def test_while_loop_with_invariant_closure():
    def f(x, step):
        return jitorch.while_loop(lambda v: v[0:1].squeeze(0) < 100, lambda v: (v + step,), (x,))[0]
    tr = jit.trace(f, (t(1.0, 2.0), t(7.0, 0.5)))
    node = tr.graph.nodes[-1]
    assert node.op == "while_loop" and len(node.inputs) == 2 and len(node.outputs) == 1
    np.testing.assert_array_equal(tr(t(3.0, 0.0), t(50.0, 1.0))._data, [103.0, 2.0])


def test_while_loop_body_type_change_is_an_error():
    def f(x):
        return jitorch.while_loop(lambda v: v[0:1].squeeze(0) < 3, lambda v: (v.double() + 1,), (x,))
    with pytest.raises(jit.TracerError, match="carried types"):
        jit.trace(f, t(1.0))


def test_cond_inside_while_body():
    def f(x):
        def body(v):
            return (jitorch.cond(v[0:1].squeeze(0) < 10, lambda a: a * 3, lambda a: a + 1, (v,)),)
        return jitorch.while_loop(lambda v: v[0:1].squeeze(0) < 50, body, (x,))[0]
    tr = jit.trace(f, t(1.0))
    np.testing.assert_array_equal(tr(t(2.0))._data, f(t(2.0))._data)
    g = jit.parse(str(tr.graph))
    assert g == tr.graph and jit.verify(g) is g
    np.testing.assert_allclose(jit.interpret(g, [t(2.0)._data])[0], f(t(2.0))._data)


# ---------------------------------------------------------------- verify catches bad sub-graphs

def test_verify_rejects_mismatched_branches():
    g = jit.trace(branchy, (t(1.0, 2.0), t(3.0, 4.0)), check_trace=False).raw_graph
    node = g.nodes[-1]
    f = node.attr("false_graph")
    bad_f = f.replace(outputs=(f.outputs[1],))
    bad = g.replace(nodes=g.nodes[:-1] + (node.replace(attrs=(("true_graph", node.attr("true_graph")),
                                                              ("false_graph", bad_f))),))
    jit.verify(g)
    with pytest.raises(jit.VerifyError, match="branches return different types"):
        jit.verify(bad)

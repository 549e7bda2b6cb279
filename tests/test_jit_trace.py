"""jit.trace: graphs, modules (parameters/buffers as named inputs), constants, Python decisions on
traced values, in-place ops (functionalized), check_inputs, .code, JITORCH_LOGS and jit.script."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import jitorch
from jitorch import jit


def ones(*shape, dtype=jitorch.float32):
    return jitorch.ones(*shape, dtype=dtype)


def arange(n, shape=None, dtype=np.float32):
    a = np.arange(n, dtype=dtype)
    return jitorch.from_numpy(a.reshape(shape) if shape else a)


def ops_of(g):
    return [n.op for n in g.nodes]


def check_against_eager(fn, *args, traced=None):
    """Trace fn, then compare the traced call and interpret with eager on fresh copies."""
    traced = traced or jit.trace(fn, tuple(a.clone() for a in args), check_trace=False)
    want = fn(*[a.clone() for a in args])
    got = traced(*[a.clone() for a in args])
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    for w, g in zip(want, got):
        np.testing.assert_array_equal(g._data, w._data)
    for g in (traced.raw_graph, traced.graph):
        outs = jit.interpret(g, [a._data for a in args])
        for w, o in zip(want, outs):
            np.testing.assert_allclose(o, w._data, rtol=1e-5, atol=1e-6)
    return traced


# ---------------------------------------------------------------- basics

def test_graph_text_has_types_ops_and_user_lines():
    def f(x, y):
        z = x * 2.0 + y
        return z.relu().t()
    tr = jit.trace(f, (ones(3, 4), ones(4)))
    text = str(tr.graph)
    line = f.__code__.co_firstlineno
    assert text.startswith("jitorch-ir 1\ngraph f(%x: f32[3,4], %y: f32[4]):\n")
    assert re.search(rf"%0: f32\[3,4\] = mul\(%x, 2\.0\) +# test_jit_trace\.py:{line + 1}", text)
    assert f"%3: f32[4,3] = permute(%2, dims=(1, 0))" in text
    assert text.rstrip().endswith("return %3")


def test_single_tensor_example_input_and_nested_outputs():
    def f(x):
        return {"a": x + 1, "b": (x * 2, [x - 1])}
    tr = jit.trace(f, ones(2))
    out = tr(jitorch.tensor([1.0, 2.0]))
    assert set(out) == {"a", "b"}
    np.testing.assert_array_equal(out["b"][1][0]._data, [0.0, 1.0])


def test_nested_inputs_get_path_names():
    def f(pair, d):
        return pair[0] + pair[1] * d["w"]
    tr = jit.trace(f, ((ones(2), ones(2)), {"w": ones(2)}))
    assert tr.graph.input_names() == ("pair_0", "pair_1", "d_w")
    out = tr((ones(2), ones(2) * 2), {"w": ones(2) * 3})
    np.testing.assert_array_equal(out._data, [7.0, 7.0])


def test_non_tensor_argument_is_rejected_with_advice():
    with pytest.raises(TypeError, match="functools.partial"):
        jit.trace(lambda x, n: x * n, (ones(2), 3))


def test_traced_call_checks_shapes_and_dtypes():
    tr = jit.trace(lambda x: x + 1, ones(2, 3))
    with pytest.raises(RuntimeError, match=r"traced as f32\[2,3\], got f32\[4, 3\]"):
        tr(ones(4, 3))
    with pytest.raises(RuntimeError, match="f64"):
        tr(ones(2, 3, dtype=jitorch.float64))
    with pytest.raises(TypeError, match="structured"):
        tr(ones(2, 3), ones(2, 3))


def test_same_tensor_twice_is_an_error():
    x = ones(2)
    with pytest.raises(jit.TracerError, match="passed twice"):
        jit.trace(lambda a, b: a + b, (x, x))


def test_scalar_literals_and_weak_types_survive_round_trip():
    def f(x):
        return (x + 1000) * 2, x.float() / 3, x > 2.5
    x = jitorch.tensor([1, 2, 3], dtype=jitorch.int8)
    tr = check_against_eager(f, x)
    g = jit.parse(str(tr.raw_graph))
    assert g == tr.raw_graph
    assert g.nodes[0].inputs == ("x", 1000)


def test_view_chains_and_multiple_outputs():
    def f(x):
        a = x[1:, ::2]
        b = x.view(4, 3).permute(1, 0)
        c = x.unsqueeze(0).expand(2, 3, 4)
        d = x.diagonal()
        return a, b, c, d, x.narrow(1, 1, 2), x[..., None, 0]
    check_against_eager(f, arange(12, (3, 4)))


# ---------------------------------------------------------------- modules

class Affine:
    """A duck-typed module: named_parameters / named_buffers / __call__ (jitorch.nn comes later)."""

    def __init__(self, n):
        self.weight = jitorch.from_numpy(np.linspace(0.5, 1.5, n).astype(np.float32))
        self.bias = jitorch.from_numpy(np.full(n, 0.25, np.float32))
        self.running_mean = jitorch.zeros(n)
        self.scale = jitorch.tensor(2.0)  # a plain attribute: captured as a constant
        self.training = True

    def named_parameters(self):
        return [("weight", self.weight), ("bias", self.bias)]

    def named_buffers(self):
        return [("running_mean", self.running_mean)]

    def forward(self, x):
        if self.training:
            self.running_mean.mul_(0.9).add_(x[0] * 0.1)
        return (x * self.weight + self.bias) * self.scale

    __call__ = forward


def test_module_parameters_and_buffers_are_named_inputs():
    m = Affine(3)
    tr = jit.trace(m, ones(2, 3), check_trace=False)
    g = tr.graph
    kinds = {i.name: i.kind for i in g.inputs}
    assert kinds == {"x": "input", "weight": "param", "bias": "param", "running_mean": "buffer", "c0": "const"}
    assert "param %weight: f32[3]" in str(g) and "const %c0: f32[]" in str(g)
    assert [u[0] for u in g.updates] == ["running_mean"]
    assert "update %running_mean = %" in str(g)
    assert jit.parse(str(g)) == g
    # weights stay out of the text; constants ride along as data
    assert "0.5" not in str(g) and set(g.constants) == {"c0"}


def test_module_call_sees_new_weights_and_writes_buffers_back():
    m = Affine(3)
    x = jitorch.from_numpy(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32))
    tr = jit.trace(m, x.clone(), check_trace=False)
    m.running_mean.zero_()
    m.weight.copy_(jitorch.tensor([1.0, 1.0, 1.0]))
    y = tr(x)
    np.testing.assert_allclose(y._data, (x._data + 0.25) * 2)
    np.testing.assert_allclose(m.running_mean._data, [0.1, 0.2, 0.3], rtol=1e-6)
    tr(x)
    np.testing.assert_allclose(m.running_mean._data, [0.19, 0.38, 0.57], rtol=1e-6)


def test_train_and_eval_modes_trace_different_graphs_and_are_guarded():
    m = Affine(3)
    train = jit.trace(m, ones(2, 3), check_trace=False)
    m.training = False
    ev = jit.trace(m, ones(2, 3), check_trace=False)
    assert train.graph.updates and not ev.graph.updates
    with pytest.raises(RuntimeError, match="traced in train mode and is now in eval mode"):
        train(ones(2, 3))
    ev(ones(2, 3))


def test_tied_parameters_become_one_input():
    m = Affine(2)
    m.named_parameters = lambda: [("weight", m.weight), ("bias", m.bias), ("tied", m.weight)]
    tr = jit.trace(m, ones(1, 2), check_trace=False)
    assert tr.graph.input_names("param") == ("weight", "bias")


def test_module_attribute_access_through_traced_module():
    m = Affine(3)
    tr = jit.trace(m, ones(2, 3), check_trace=False)
    assert tr.weight is m.weight and list(tr.parameters()) == [m.weight, m.bias]


# ---------------------------------------------------------------- constants

def test_captured_tensors_become_constants_snapshotted():
    table = jitorch.tensor([1.0, 2.0, 3.0])
    tr = jit.trace(lambda x: x * table, ones(3), check_trace=False)
    assert tr.graph.input_names("const") == ("c0",)
    table.mul_(10)  # the graph holds the value at trace time, like torch.jit.trace
    np.testing.assert_array_equal(tr(ones(3))._data, [1.0, 2.0, 3.0])


def test_tensors_created_inside_are_constants_and_fold():
    def f(x):
        k = jitorch.ones(3) * 2 + 1
        return x * k
    tr = check_against_eager(f, arange(3))
    assert ops_of(tr.graph) == ["mul"]  # the constant chain folded
    assert list(tr.graph.constants.values())[0].tolist() == [3.0, 3.0, 3.0]


def test_inplace_write_into_captured_tensor_warns():
    buf = jitorch.zeros(2)

    def f(x):
        buf.add_(x)
        return buf * 1
    with pytest.warns(jit.TracerWarning, match="captured from outside"):
        jit.trace(f, ones(2), check_trace=False)


# ---------------------------------------------------------------- Python values

def test_python_decision_on_traced_value_raises_with_chain_and_line():
    def f(x):
        y = x.exp() * 2
        if y.sum() > 0 if hasattr(y, "sum") else (y[0] > 0):
            return y
        return -y
    with pytest.raises(jit.TracerError) as e:
        jit.trace(f, ones(3))
    msg = str(e.value)
    assert "bool() on a traced tensor b8[]" in msg
    assert re.search(r"%x \(function input\) -> exp \(test_jit_trace\.py:\d+\) -> mul", msg)
    assert "if y.sum() > 0" in msg
    assert "jitorch.where" in msg and "jitorch.cond" in msg and "strict=False" in msg


@pytest.mark.parametrize("what, fn, hint", [
    ("item", lambda x: x * x[0].item(), "0-dim tensor broadcasts"),
    ("int", lambda x: x * int(x[0]), "0-dim tensor broadcasts"),
    ("float", lambda x: x * float(x[0]), "while_loop"),
    ("tolist", lambda x: x * x.tolist()[0], ".item()"),
    ("numpy", lambda x: x * x.numpy()[0], ".numpy()"),
    ("iteration", lambda x: sum(r for r in x), "unbind"),
    ("index", lambda x: x.view(x[1:2].long()), "static"),
])
def test_every_python_value_escape_is_caught(what, fn, hint):
    with pytest.raises(jit.TracerError, match=re.escape(hint)):
        jit.trace(fn, arange(4) + 1)


def test_strict_false_warns_and_bakes():
    def f(x):
        return x * 2 if bool(x[0] > 0) else x * 3
    with pytest.warns(jit.TracerWarning, match="bool"):
        tr = jit.trace(f, ones(2), strict=False, check_trace=False)
    np.testing.assert_array_equal(tr(-ones(2))._data, [-2.0, -2.0])  # baked: the eager answer is [-3, -3]


def test_decisions_on_constant_values_are_fine():
    def f(x):
        k = jitorch.tensor([3.0])
        return x * k.item() if k.item() > 1 else x
    tr = jit.trace(f, ones(2))
    np.testing.assert_array_equal(tr(ones(2))._data, [3.0, 3.0])


def test_shapes_are_static_python_ints():
    def f(x):
        return x.view(x.shape[0], -1) * x.size(1)
    tr = check_against_eager(f, arange(12, (3, 2, 2)))
    assert tr.graph.nodes[0].attr("size") == (3, -1)


def test_is_tracing():
    seen = []
    jit.trace(lambda x: seen.append(jit.is_tracing()) or x + 1, ones(1), check_trace=False)
    assert seen == [True] and not jit.is_tracing()


# ---------------------------------------------------------------- in-place ops

def test_inplace_on_intermediate_is_functional():
    def f(x):
        y = x * 2
        y.add_(1)
        y.mul_(y)
        return y
    tr = check_against_eager(f, arange(4))
    assert ops_of(tr.raw_graph) == ["mul", "add", "mul"]
    assert not tr.graph.updates


def test_inplace_dtype_conversion_on_store():
    def f(x):
        y = x.clone()
        y.add_(x.double() * 0.5)  # f64 result stored into f32
        return y
    tr = check_against_eager(f, arange(3))
    assert ops_of(tr.raw_graph)[-2:] == ["add", "to_dtype"]


def test_setitem_on_views_is_functionalized_with_view_scatter():
    def f(x):
        y = x.clone()
        y[0] = 5.0
        y[:, 1] += 1
        col = y[:, 2]
        y[1:] *= 2           # col is a view: re-derived after the write
        z = col + 0
        d = y.diagonal()
        d.zero_()
        return y, z
    tr = check_against_eager(f, arange(12, (3, 4)))
    assert "view_scatter" in ops_of(tr.raw_graph)
    assert jit.parse(str(tr.raw_graph)) == tr.raw_graph


def test_inplace_on_input_becomes_an_update():
    def f(x):
        x.mul_(2)
        x[0] = -1.0
        return x + 1
    x = arange(3)
    tr = jit.trace(f, x.clone(), check_trace=False)
    g = tr.graph
    assert g.updates and g.updates[0][0] == "x"
    arg = arange(3)
    out = tr(arg)
    np.testing.assert_array_equal(arg._data, [-1.0, 2.0, 4.0])  # written back, like eager
    np.testing.assert_array_equal(out._data, [0.0, 3.0, 5.0])
    outs, ups = jit.interpret(g, [arange(3)._data], return_updates=True)
    np.testing.assert_array_equal(ups["x"], [-1.0, 2.0, 4.0])


def test_detach_and_data_are_aliases_not_constants():
    def f(x):
        y = x * 2
        z = y.detach()
        return z + y.data
    tr = check_against_eager(f, arange(3))
    assert not tr.graph.input_names("const")


def test_as_strided_on_non_contiguous_input_is_refused():
    def f(x):
        return x.t().as_strided((2, 2), (1, 3))
    with pytest.raises(jit.TracerError, match="non-contiguous"):
        jit.trace(f, arange(6, (2, 3)))
    check_against_eager(lambda x: x.as_strided((2, 2), (1, 3)), arange(6, (2, 3)))


# ---------------------------------------------------------------- check_inputs

def test_check_inputs_reports_graph_diff():
    def f(x):
        return x.view(x.shape[0] * x.shape[1])
    with pytest.raises(jit.TracingCheckError) as e:
        jit.trace(f, ones(2, 3), check_inputs=[(ones(4, 3),)])
    msg = str(e.value)
    assert "Graphs differed across invocations" in msg
    assert "-  %0: f32[...] = view(%x, size=(6,))" in msg and "+  %0: f32[...] = view(%x, size=(12,))" in msg


def test_check_inputs_passes_for_shape_generic_functions():
    jit.trace(lambda x: (x * 2).relu(), ones(2, 3), check_inputs=[(ones(5, 3),), (-ones(2, 3),)])


def test_check_catches_baked_values():
    def f(x):
        return x * 2 if float(x[0]) > 0 else x - 1
    with pytest.warns(jit.TracerWarning):
        with pytest.raises(jit.TracingCheckError, match="mul"):
            jit.trace(f, ones(2), strict=False, check_inputs=[(-ones(2),)])


# ---------------------------------------------------------------- code, logs, dot

def test_code_is_readable_python_that_runs():
    def f(x, y):
        return jitorch.cat([x.exp(), y], 0) * float("inf")
    tr = jit.trace(f, (ones(2), ones(3)), check_trace=False)
    assert "_call('cat', exp_0, y, dim=0)" in tr.code
    assert "float('inf')" in tr.code
    assert "# %1  test_jit_trace.py:" in tr.code
    compile(tr.code, "code", "exec")


def test_jitorch_logs_graph_prints_after_trace_and_passes(monkeypatch, capsys):
    monkeypatch.setenv("JITORCH_LOGS", "graph")
    def f(x):
        y = (x * 1).clone() - 0.0
        y.exp()  # dead
        return y
    jit.trace(f, ones(2), check_trace=False)
    err = capsys.readouterr().err
    assert "[jitorch graph] after trace of" in err
    assert "[jitorch graph] after simplify_algebra" in err
    assert "[jitorch graph] after eliminate_dead_nodes" in err


def test_to_dot_shows_op_shape_dtype():
    tr = jit.trace(lambda x: (x * 2).relu(), ones(2, 3), check_trace=False)
    dot = tr.graph.to_dot()
    assert dot.startswith('digraph "')
    assert '"%1 = relu(%0)\\nf32[2,3]"' in dot and "->" in dot


# ---------------------------------------------------------------- script

def test_script_traces_per_signature():
    @jit.script
    def f(x, n: int):
        for _ in range(n):
            x = x * 2
        return x
    np.testing.assert_array_equal(f(ones(2), 3)._data, [8.0, 8.0])
    assert ops_of(f.graph) == ["mul", "mul", "mul"]
    np.testing.assert_array_equal(f(ones(3), 1)._data, [2.0, 2.0, 2.0])
    assert ops_of(f.graph) == ["mul"]
    assert len(f._cache) == 2


def test_script_says_what_it_cannot_capture():
    @jit.script
    def f(x):
        if x.sum() > 0 if hasattr(x, "sum") else x[0] > 0:
            return x
        return -x
    with pytest.raises(jit.ScriptError) as e:
        f(ones(2))
    msg = str(e.value)
    assert "jitorch scripts by tracing" in msg and "jitorch.cond" in msg
    assert re.search(r"line \d+: if x.sum\(\) > 0", msg)


def test_script_graph_before_call_explains():
    s = jit.script(lambda x: x + 1)
    with pytest.raises(RuntimeError, match="call it once"):
        s.graph
    s2 = jit.script(lambda x: x + 1, example_inputs=[(ones(2),)])
    assert ops_of(s2.graph) == ["add"]


def test_script_module():
    m = Affine(2)
    m.training = False
    s = jit.script(m)
    np.testing.assert_allclose(s(ones(1, 2))._data, [[1.5, 3.5]])
    assert s.graph.input_names("param") == ("weight", "bias")


def test_trace_of_traced_function_inlines():
    inner = jit.trace(lambda x: x.exp() + 1, ones(2), check_trace=False)
    outer = jit.trace(lambda x: inner(x) * 3, ones(2), check_trace=False)
    assert ops_of(outer.graph) == ["exp", "add", "mul"]


def test_errors_inside_trace_name_the_last_node():
    def f(x):
        y = x.exp()
        return y + ones(5)
    with pytest.raises(RuntimeError) as e:
        jit.trace(f, ones(3))
    assert any("last recorded node" in n for n in getattr(e.value, "__notes__", []))


def test_strict_warning_only_once_per_decision():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        jit.trace(lambda x: x * float(x[0]), ones(2), strict=False, check_trace=False)
    assert sum(isinstance(x.message, jit.TracerWarning) for x in w) == 1


# ---------------------------------------------------------------- state inputs (the RNG protocol)

def test_state_tensors_are_inputs_read_and_written_by_reference():
    """A random generator exposes its (seed, offset) as a tensor marked ``_jit_state``: the graph
    takes it as a ``state`` input and returns the advanced offset as an update (docs/jit.md)."""
    gen = jitorch.tensor([7, 0])
    gen._jit_state = "rng"

    def draw(x):  # stands in for a counter-based random op: a pure function of (seed, offset)
        noise = (gen[0:1] * 31 + gen[1:2]).float()
        gen[1:2] += x.numel()  # advance the offset by the counters used
        return x + noise

    tr = jit.trace(draw, ones(4))
    g = tr.graph
    assert g.input("rng").kind == "state" and "state %rng: i64[2]" in str(g)
    assert [u[0] for u in g.updates] == ["rng"]
    assert jit.parse(str(g)) == g
    offset = int(gen[1:2].sum()) if hasattr(gen, "sum") else int(gen._data[1])
    out = tr(ones(4))
    assert int(gen._data[1]) == offset + 4  # the live state advanced, as eagerly
    np.testing.assert_array_equal(out._data, 1 + 7 * 31 + offset)
    outs, ups = jit.interpret(g, {"x": np.ones(4, np.float32), "rng": np.array([7, 100])}, return_updates=True)
    assert ups["rng"].tolist() == [7, 104] and outs[0][0] == 1 + 7 * 31 + 100


def test_keyword_example_inputs():
    tr = jit.trace(lambda x, *, scale: x * scale, example_kwarg_inputs={"x": ones(2), "scale": ones(2) * 3})
    assert tr.graph.input_names() == ("x", "scale")
    np.testing.assert_array_equal(tr(x=ones(2), scale=ones(2))._data, [1.0, 1.0])


def test_returning_a_constant_gives_a_fresh_tensor():
    table = jitorch.tensor([1.0, 2.0])
    tr = jit.trace(lambda x: (x + 1, table), ones(2), check_trace=False)
    _, t1 = tr(ones(2))
    t1.mul_(0)
    np.testing.assert_array_equal(tr(ones(2))[1]._data, [1.0, 2.0])


# ---------------------------------------------------------------- random programs with views and in-place ops

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_ACTIONS = ["slice", "transpose", "select", "unsqueeze", "inplace_add", "inplace_mul", "fill", "copy", "compute",
            "setitem"]


def _run_program(program, x, y, keep=None):
    """Apply the actions to a pool of tensors; with ``keep`` (a list), record which actions ran."""
    pool = [x, y]
    for action in program:
        kind, i, j, k = action
        t = pool[i % len(pool)]
        o = pool[j % len(pool)]
        try:
            if kind == "slice":
                new = t[k % max(t.shape[0], 1):] if t.ndim else None
            elif kind == "transpose":
                new = t.t() if t.ndim == 2 else None
            elif kind == "select":
                new = t[k % t.shape[0]] if t.ndim >= 2 and t.shape[0] else None
            elif kind == "unsqueeze":
                new = t.unsqueeze(0) if t.ndim < 3 else None
            elif kind == "inplace_add":
                t.add_(o if k % 2 else 1.5)
                new = None
            elif kind == "inplace_mul":
                t.mul_(0.5 + k % 3)
                new = None
            elif kind == "fill":
                t.fill_(float(k))
                new = None
            elif kind == "copy":
                t.copy_(o)
                new = None
            elif kind == "setitem":
                if t.ndim == 0 or t.shape[0] == 0:
                    raise ValueError
                t[k % t.shape[0]:] = o[..., :1] if o.ndim else o
                new = None
            else:
                new = (t * 2 + o).exp() if k % 2 else t * 0.5 - 1
        except Exception:
            if keep is None:
                raise
            continue
        if keep is not None:
            keep.append(action)
        if new is not None:
            pool.append(new)
    return pool


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(st.sampled_from(_ACTIONS), st.integers(0, 20), st.integers(0, 20), st.integers(0, 5)),
                min_size=1, max_size=12))
def test_random_programs_with_views_and_inplace_match_eager(actions):
    x0, y0 = arange(12, (3, 4)), arange(4) + 1
    program = []
    _run_program(actions, x0.clone(), y0.clone(), keep=program)  # drop what eager rejects

    def f(x, y):
        return tuple(_run_program(program, x, y))
    ex, ey = x0.clone(), y0.clone()
    want = f(ex, ey)
    tr = jit.trace(f, (x0.clone(), y0.clone()), check_trace=False)
    jit.verify(tr.raw_graph)
    assert jit.parse(str(tr.raw_graph)) == tr.raw_graph
    tx, ty = x0.clone(), y0.clone()
    got = tr(tx, ty)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g._data, w._data, rtol=1e-6, err_msg=str(tr.raw_graph))
    np.testing.assert_allclose(tx._data, ex._data, rtol=1e-6)  # updates written back like eager
    np.testing.assert_allclose(ty._data, ey._data, rtol=1e-6)
    outs, ups = jit.interpret(tr.graph, [x0._data, y0._data], return_updates=True)
    for w, o in zip(want, outs):
        np.testing.assert_allclose(o, w._data, rtol=1e-5, atol=1e-6, err_msg=str(tr.graph))
    for name, arr in ups.items():
        np.testing.assert_allclose(arr, {"x": ex, "y": ey}[name]._data, rtol=1e-5)


def test_library_data_checks_are_named():
    """jitorch's own integer division checks for zero divisors on the data: the error says so."""
    with pytest.raises(jit.TracerError, match=r"asked by jitorch itself, _check_int_zero_div in jitorch/_functional"):
        jit.trace(lambda a, b: a // b, (jitorch.tensor([4, 5]), jitorch.tensor([2, 3])))


def test_backward_inside_a_trace_records_the_gradient_ops():
    """Autograd keeps saved tensors under its own Tensor objects: the tracer knows them by memory."""
    w = jitorch.ones(3, requires_grad=True)

    def step(x):
        loss = (x * w).exp().sum()
        loss.backward()
        return loss, w.grad
    tr = jit.trace(step, jitorch.tensor([1.0, 2.0, 3.0]), check_trace=False)
    # w (captured), nothing saved; backward's seed ones_like(loss) is a fill node of the loss, not a constant
    assert tr.raw_graph.input_names("const") == ("c0",)
    assert any(n.op == "fill" for n in tr.raw_graph.nodes)
    x = jitorch.tensor([0.5, -1.0, 2.0])
    _, grad = tr(x)
    np.testing.assert_allclose(grad._data, np.exp(x._data) * x._data, rtol=1e-6)

"""jit.trace on jitorch.nn modules: parameters and buffers as named inputs, train vs eval mode,
BatchNorm running statistics written back, dropout as a random node drawn on every call."""
from __future__ import annotations

import numpy as np
import pytest

import jitorch
from jitorch import jit

nn = pytest.importorskip("jitorch.nn")


def mlp():
    jitorch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))


def test_eval_mode_graph_matches_module():
    m = mlp().eval()
    x = jitorch.randn(5, 4)
    tr = jit.trace(m, x)
    g = tr.graph
    assert g.input_names("param") == ("0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias")
    assert set(g.input_names("buffer")) == {"1.running_mean", "1.running_var", "1.num_batches_tracked"}
    assert not g.updates and not any(n.op in ("bernoulli_p", "dropout_mask") for n in g.nodes)
    np.testing.assert_allclose(tr(x)._data, m(x)._data, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jit.interpret(g, {**{i.name: t for i, t in zip(g.inputs, [x])},
                                                 **dict(m.named_parameters()), **dict(m.named_buffers())})[0],
                               m(x)._data, rtol=1e-4, atol=1e-5)
    assert jit.parse(str(g)) == g


def test_train_mode_updates_buffers_and_draws_fresh_dropout():
    m = mlp().train()
    x = jitorch.randn(6, 4)
    tr = jit.trace(m, x, check_trace=False)
    g = tr.graph
    assert {u[0] for u in g.updates} == {"1.running_mean", "1.running_var", "1.num_batches_tracked"}
    random_nodes = [n for n in g.nodes if "random" in jitorch.ops.registry.OPS[n.op].tags]
    assert random_nodes, "dropout must be a random node, not a constant mask"
    assert not g.input_names("const"), f"no baked constants expected:\n{g}"
    before = m[1].running_mean._data.copy()
    jitorch.manual_seed(7)
    a = tr(x)
    assert not np.allclose(m[1].running_mean._data, before)  # written back
    b = tr(x)
    assert not np.array_equal(a._data, b._data)  # a new mask per call
    # same seed, same state: the traced module equals eager
    state = {k: v._data.copy() for k, v in m.named_buffers()}
    jitorch.manual_seed(3)
    got = tr(x)
    for k, v in m.named_buffers():
        v._data[...] = state[k]
    jitorch.manual_seed(3)
    want = m(x)
    np.testing.assert_allclose(got._data, want._data, rtol=1e-6, atol=1e-6)


def test_mode_switch_is_guarded():
    m = mlp().train()
    tr = jit.trace(m, jitorch.randn(3, 4), check_trace=False)
    m.eval()
    with pytest.raises(RuntimeError, match="traced in train mode"):
        tr(jitorch.randn(3, 4))


def test_explicit_generator_is_refused_default_is_fine():
    g = jitorch.Generator().manual_seed(1)
    with pytest.raises(jit.TracerError, match="explicit Generator"):
        jit.trace(lambda x: x + jitorch.rand(3, generator=g), jitorch.ones(3))
    tr = jit.trace(lambda x: x + jitorch.rand(3, generator=jitorch.default_generator), jitorch.ones(3),
                   check_trace=False)
    assert tr.graph.nodes[0].attr("generator") is None


def test_data_dependent_sizes_warn():
    with pytest.warns(jit.TracerWarning, match="depends on the data"):
        tr = jit.trace(lambda x: x[x > 0], jitorch.tensor([1.0, -1.0, 2.0]), check_trace=False)
    np.testing.assert_array_equal(tr(jitorch.tensor([1.0, -1.0, 2.0]))._data, [1.0, 2.0])

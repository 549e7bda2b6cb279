"""nn.init: distributions (statistics within bounds), fans and gains, deterministic initializers, layers'
default initialization (torch's bounds), reproducibility with manual_seed."""
from __future__ import annotations

import math

import numpy as np
import pytest

import jitorch
import jitorch.nn as nn
from jitorch.nn import init

from .test_nn_helpers import needs_torch, torch


def _big(*shape):
    return jitorch.empty(*shape)


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == pytest.approx(0.75)
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", "x")


@needs_torch
def test_calculate_gain_matches_torch():
    for nl, p in [("linear", None), ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.3),
                  ("selu", None), ("conv_transpose2d", None)]:
        assert init.calculate_gain(nl, p) == pytest.approx(torch.nn.init.calculate_gain(nl, p))


def test_fans():
    assert init._calculate_fan_in_and_fan_out(_big(5, 3)) == (3, 5)
    assert init._calculate_fan_in_and_fan_out(_big(8, 4, 3, 2)) == (24, 48)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(_big(4))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(_big(3, 3), mode="fan_avg")


def _stats(t):
    a = t.detach().numpy().astype(np.float64).ravel()
    return a.min(), a.max(), a.mean(), a.std()


def test_uniform_and_normal_statistics():
    jitorch.manual_seed(0)
    lo, hi, mean, std = _stats(init.uniform_(_big(200, 500), -2.0, 3.0))
    assert -2.0 <= lo and hi < 3.0 and abs(mean - 0.5) < 0.02 and abs(std - 5 / math.sqrt(12)) < 0.01
    lo, hi, mean, std = _stats(init.normal_(_big(200, 500), 1.5, 0.5))
    assert abs(mean - 1.5) < 0.005 and abs(std - 0.5) < 0.005
    lo, hi, mean, std = _stats(init.trunc_normal_(_big(200, 500), 0.0, 1.0, -1.5, 2.0))
    assert -1.5 <= lo and hi <= 2.0
    # truncated N(0,1) on [-1.5, 2]: mean (phi(a) - phi(b)) / (Phi(b) - Phi(a))
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    Phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    assert abs(mean - (phi(-1.5) - phi(2.0)) / (Phi(2.0) - Phi(-1.5))) < 0.01


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity,a", [("relu", 0), ("leaky_relu", 0.2), ("tanh", 0), ("linear", 0)])
def test_kaiming_bounds_and_std(mode, nonlinearity, a):
    jitorch.manual_seed(1)
    w = _big(300, 40, 3)
    fan = 120 if mode == "fan_in" else 900
    gain = init.calculate_gain(nonlinearity, a)
    bound = gain * math.sqrt(3 / fan)
    lo, hi, mean, std = _stats(init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nonlinearity))
    assert -bound <= lo and hi <= bound and lo < -0.98 * bound and hi > 0.98 * bound
    assert abs(std - bound / math.sqrt(3)) < 0.02 * bound
    lo, hi, mean, std = _stats(init.kaiming_normal_(w, a=a, mode=mode, nonlinearity=nonlinearity))
    assert abs(std - gain / math.sqrt(fan)) < 0.02 * gain / math.sqrt(fan) and abs(mean) < 0.02 * std


def test_xavier_bounds_and_std():
    jitorch.manual_seed(2)
    w = _big(200, 300)
    a = 2.0 * math.sqrt(6 / 500)
    lo, hi, _, std = _stats(init.xavier_uniform_(w, gain=2.0))
    assert -a <= lo and hi <= a and abs(std - a / math.sqrt(3)) < 0.01 * a
    _, _, mean, std = _stats(init.xavier_normal_(w, gain=0.5))
    assert abs(std - 0.5 * math.sqrt(2 / 500)) < 0.01 * std


def test_deterministic_initializers():
    w = _big(3, 4)
    assert np.all(init.constant_(w, 2.5).numpy() == 2.5)
    assert np.all(init.ones_(w).numpy() == 1) and np.all(init.zeros_(w).numpy() == 0)
    np.testing.assert_array_equal(init.eye_(w).numpy(), np.eye(3, 4))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions"):
        init.eye_(_big(2, 2, 2))
    d = init.dirac_(_big(4, 2, 3, 3))
    x = jitorch.randn(1, 2, 5, 5)
    y = nn.functional.conv2d(x, d, padding=1)
    np.testing.assert_allclose(y.numpy()[:, :2], x.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(y.numpy()[:, 2:], 0)


def test_orthogonal():
    jitorch.manual_seed(3)
    for shape in [(6, 4), (4, 6), (5, 2, 3)]:
        w = init.orthogonal_(_big(*shape).double(), gain=1.5)
        m = w.numpy().reshape(shape[0], -1)
        if m.shape[0] >= m.shape[1]:
            np.testing.assert_allclose(m.T @ m, 2.25 * np.eye(m.shape[1]), atol=1e-10)
        else:
            np.testing.assert_allclose(m @ m.T, 2.25 * np.eye(m.shape[0]), atol=1e-10)


def test_sparse_init():
    jitorch.manual_seed(4)
    w = init.sparse_(_big(10, 7), 0.3, std=0.02)
    zeros = (w.numpy() == 0).sum(0)
    assert np.all(zeros >= 3)


def test_init_under_no_grad_on_parameters():
    p = nn.Parameter(jitorch.empty(3, 3))
    init.kaiming_uniform_(p)
    assert p.grad_fn is None and p.is_leaf and p.requires_grad


def test_manual_seed_makes_layers_reproducible():
    jitorch.manual_seed(42)
    a = nn.Linear(5, 4)
    jitorch.manual_seed(42)
    b = nn.Linear(5, 4)
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    c = nn.Linear(5, 4)
    assert not np.array_equal(a.weight.detach().numpy(), c.weight.detach().numpy())


def _check_uniform(t, bound):
    a = t.detach().numpy()
    assert a.min() >= -bound and a.max() <= bound and a.max() > 0.8 * bound and a.min() < -0.8 * bound


def test_default_layer_initialization_bounds():
    jitorch.manual_seed(5)
    lin = nn.Linear(400, 300)
    _check_uniform(lin.weight, 1 / math.sqrt(400))  # kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in))
    _check_uniform(lin.bias, 1 / math.sqrt(400))
    conv = nn.Conv2d(8, 64, 5, groups=2)
    _check_uniform(conv.weight, 1 / math.sqrt(4 * 25))
    _check_uniform(conv.bias, 1 / math.sqrt(4 * 25))
    convt = nn.ConvTranspose2d(16, 32, 3)
    _check_uniform(convt.weight, 1 / math.sqrt(32 * 9))
    bil = nn.Bilinear(50, 20, 100)
    _check_uniform(bil.weight, 1 / math.sqrt(50))
    emb = nn.Embedding(300, 200)
    assert abs(emb.weight.detach().numpy().std() - 1) < 0.02
    lstm = nn.LSTM(10, 64)
    for p in lstm.parameters():
        _check_uniform(p, 1 / 8)
    bn = nn.BatchNorm2d(4)
    assert np.all(bn.weight.detach().numpy() == 1) and np.all(bn.bias.detach().numpy() == 0)
    assert np.all(bn.running_var.numpy() == 1) and np.all(bn.running_mean.numpy() == 0)
    assert np.all(nn.PReLU(3).weight.detach().numpy() == 0.25)
    mha = nn.MultiheadAttention(64, 4)
    assert np.all(mha.in_proj_bias.detach().numpy() == 0) and np.all(mha.out_proj.bias.detach().numpy() == 0)
    _check_uniform(mha.in_proj_weight, math.sqrt(6 / (64 + 192)))


def test_layers_take_dtype():
    assert nn.Linear(2, 3, dtype=jitorch.float64).weight.dtype is jitorch.float64
    assert nn.Conv2d(1, 2, 3, dtype=jitorch.float64).bias.dtype is jitorch.float64
    assert nn.BatchNorm1d(3, dtype=jitorch.float64).running_mean.dtype is jitorch.float64
    assert nn.LSTM(2, 3, dtype=jitorch.float64).weight_ih_l0.dtype is jitorch.float64

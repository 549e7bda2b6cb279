"""nn.utils (gradient clipping, parameter vectors, sequence padding/packing) and end-to-end training:
a LeNet step matches torch step for step, and small models learn without torch."""
from __future__ import annotations

import math

import numpy as np
import pytest

import jitorch
import jitorch.nn as nn
import jitorch.nn.functional as F
from jitorch.nn.utils import clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters
from jitorch.nn.utils.rnn import (pack_padded_sequence, pack_sequence, pad_packed_sequence, pad_sequence,
                                  unpack_sequence, unpad_sequence)

from .test_nn_helpers import needs_torch, torch


def _model_with_grads(seed=0):
    jitorch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    m(jitorch.randn(5, 3)).pow(2).sum().backward()
    return m


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm(norm_type):
    m = _model_with_grads()
    grads = [p.grad.numpy().copy() for p in m.parameters()]
    flat = np.concatenate([g.ravel() for g in grads])
    total = np.abs(flat).max() if norm_type == math.inf else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    ret = clip_grad_norm_(m.parameters(), 0.5, norm_type)
    np.testing.assert_allclose(float(ret), total, rtol=1e-5)
    coef = min(0.5 / (total + 1e-6), 1.0)
    for p, g in zip(m.parameters(), grads):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-5)
    # below the threshold: unchanged
    before = [p.grad.numpy().copy() for p in m.parameters()]
    clip_grad_norm_(m.parameters(), 1e6, norm_type)
    for p, g in zip(m.parameters(), before):
        np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-6)


def test_clip_grad_norm_nonfinite_and_empty():
    p = nn.Parameter(jitorch.ones(2))
    p.grad = jitorch.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    q = nn.Parameter(jitorch.ones(2))
    assert float(clip_grad_norm_([q], 1.0)) == 0.0
    r = nn.Parameter(jitorch.ones(2))
    r.grad = jitorch.tensor([3.0, 4.0])
    assert float(clip_grad_norm_(r, 1.0)) == pytest.approx(5.0)  # a single tensor is accepted


@needs_torch
def test_clip_grad_norm_matches_torch():
    jm = _model_with_grads(3)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    for tp, jp in zip(tm.parameters(), jm.parameters()):
        tp.grad = torch.from_numpy(jp.grad.numpy().copy())
    for nt in (2.0, math.inf):
        jt = clip_grad_norm_(jm.parameters(), 0.1, nt)
        tt = torch.nn.utils.clip_grad_norm_(tm.parameters(), 0.1, nt)
        np.testing.assert_allclose(float(jt), float(tt), rtol=1e-5)
        for tp, jp in zip(tm.parameters(), jm.parameters()):
            np.testing.assert_allclose(jp.grad.numpy(), tp.grad.numpy(), rtol=1e-5)


def test_clip_grad_value():
    m = _model_with_grads()
    grads = [p.grad.numpy().copy() for p in m.parameters()]
    clip_grad_value_(m.parameters(), 0.05)
    for p, g in zip(m.parameters(), grads):
        np.testing.assert_allclose(p.grad.numpy(), np.clip(g, -0.05, 0.05))


def test_parameters_vector_roundtrip():
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    v = parameters_to_vector(m.parameters())
    assert tuple(v.shape) == (3 * 4 + 4 + 4 * 2 + 2,)
    np.testing.assert_array_equal(v.detach().numpy()[:12], m[0].weight.detach().numpy().ravel())
    new = jitorch.arange(v.numel(), dtype=jitorch.float32)
    vector_to_parameters(new, m.parameters())
    np.testing.assert_array_equal(parameters_to_vector(m.parameters()).detach().numpy(), new.numpy())
    assert isinstance(m[0].weight, nn.Parameter)
    with pytest.raises(TypeError, match="expected torch.Tensor"):
        vector_to_parameters([1.0], m.parameters())


def test_pad_sequence_and_packing():
    seqs = [jitorch.tensor([1.0, 2.0, 3.0]), jitorch.tensor([4.0]), jitorch.tensor([5.0, 6.0])]
    p = pad_sequence(seqs)
    np.testing.assert_array_equal(p.numpy(), [[1, 4, 5], [2, 0, 6], [3, 0, 0]])
    pb = pad_sequence(seqs, batch_first=True, padding_value=-1.0, padding_side="left")
    np.testing.assert_array_equal(pb.numpy(), [[1, 2, 3], [-1, -1, 4], [-1, 5, 6]])
    assert [s.tolist() for s in unpad_sequence(p, jitorch.tensor([3, 1, 2]))] == [[1, 2, 3], [4], [5, 6]]
    packed = pack_sequence(seqs, enforce_sorted=False)
    np.testing.assert_array_equal(packed.data.numpy(), [1, 5, 4, 2, 6, 3])
    np.testing.assert_array_equal(packed.batch_sizes.numpy(), [3, 2, 1])
    padded, lengths = pad_packed_sequence(packed, batch_first=True)
    np.testing.assert_array_equal(lengths.numpy(), [3, 1, 2])
    np.testing.assert_array_equal(padded.numpy(), [[1, 2, 3], [4, 0, 0], [5, 6, 0]])
    assert [s.tolist() for s in unpack_sequence(packed)] == [[1, 2, 3], [4], [5, 6]]
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order"):
        pack_padded_sequence(p, [1, 3, 2])


@needs_torch
def test_packing_matches_torch():
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((n, 2)) for n in (4, 2, 5, 1)]
    tp = torch.nn.utils.rnn.pack_sequence([torch.from_numpy(s) for s in seqs], enforce_sorted=False)
    jp = pack_sequence([jitorch.from_numpy(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_allclose(jp.data.numpy(), tp.data.numpy())
    np.testing.assert_array_equal(jp.batch_sizes.numpy(), tp.batch_sizes.numpy())
    np.testing.assert_array_equal(jp.sorted_indices.numpy(), tp.sorted_indices.numpy())
    np.testing.assert_array_equal(jp.unsorted_indices.numpy(), tp.unsorted_indices.numpy())
    tpad = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(s) for s in seqs])
    np.testing.assert_allclose(pad_sequence([jitorch.from_numpy(s) for s in seqs]).numpy(), tpad.numpy())


# ---------------------------------------------------------------------------------------------- training

def _lenet(mod):
    class LeNet(mod.Module):
        def __init__(self):
            super().__init__()
            self.c1 = mod.Conv2d(1, 8, 5)
            self.c2 = mod.Conv2d(8, 16, 5)
            self.fc = mod.Linear(256, 10)

        def forward(self, x):
            f = mod.functional
            x = f.max_pool2d(f.relu(self.c1(x)), 2)
            x = f.max_pool2d(f.relu(self.c2(x)), 2)
            return self.fc(x.flatten(1))
    return LeNet()


@needs_torch
def test_lenet_training_matches_torch_step_for_step():
    torch.manual_seed(0)
    tm = _lenet(torch.nn).double()
    jm = _lenet(nn).double()
    jm.load_state_dict({k: jitorch.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 28, 28))
    y = rng.integers(0, 10, 8)
    topt = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9)
    jopt = jitorch.optim.SGD(jm.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        topt.zero_grad()
        tl = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
        tl.backward()
        topt.step()
        jopt.zero_grad()
        jl = F.cross_entropy(jm(jitorch.from_numpy(x)), jitorch.from_numpy(y))
        jl.backward()
        jopt.step()
        assert float(jl) == pytest.approx(float(tl.detach()), rel=1e-10)
    for (k, tp), jp in zip(tm.named_parameters(), jm.parameters()):
        np.testing.assert_allclose(jp.detach().numpy(), tp.detach().numpy(), rtol=1e-8, atol=1e-10, err_msg=k)


def test_cnn_learns_without_torch():
    jitorch.manual_seed(0)
    rng = np.random.default_rng(1)
    # two classes: a bright square at the top-left vs bottom-right of a 8x8 image
    x = rng.standard_normal((64, 1, 8, 8)).astype(np.float32) * 0.3
    y = rng.integers(0, 2, 64)
    for i, c in enumerate(y):
        if c == 0:
            x[i, 0, :4, :4] += 1.0
        else:
            x[i, 0, 4:, 4:] += 1.0
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Dropout(0.1), nn.Linear(64, 2))
    opt = jitorch.optim.Adam(model.parameters(), lr=0.05)
    xt, yt = jitorch.from_numpy(x), jitorch.from_numpy(y)
    first = None
    for _ in range(25):
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(xt), yt)
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss)
    model.eval()
    acc = (model(xt).argmax(1) == yt).float().mean().item()
    assert float(loss) < first * 0.3 and acc > 0.95


def test_lstm_learns_to_sum_without_torch():
    jitorch.manual_seed(0)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 32, 1)).astype(np.float32)
    target = x.sum(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(1, 8)
            self.head = nn.Linear(8, 1)

        def forward(self, x):
            out, (h, c) = self.rnn(x)
            return self.head(h[-1])
    net = Net()
    opt = jitorch.optim.Adam(net.parameters(), lr=0.03)
    xt, tt = jitorch.from_numpy(x), jitorch.from_numpy(target)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = F.mse_loss(net(xt), tt)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.2 * losses[0]

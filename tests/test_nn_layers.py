"""Every nn layer against torch (weights copied in; outputs, input gradients, parameter gradients and
buffers compared, float64 and float32), and against finite differences (gradcheck on small float64
inputs) so that the tests keep their meaning without torch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import jitorch
import jitorch.nn as jnn
from jitorch.autograd import gradcheck

from .test_nn_helpers import compare_module, needs_torch, torch

_rng = np.random.default_rng(1234)


def r(*shape, scale=1.0):
    return _rng.standard_normal(shape) * scale


# name, constructor(nn) -> module, input arrays, train mode
CASES = [
    ("Linear", lambda nn: nn.Linear(5, 3), [r(4, 5)], False),
    ("Linear-3d", lambda nn: nn.Linear(5, 3), [r(2, 4, 5)], False),
    ("Linear-nobias", lambda nn: nn.Linear(5, 3, bias=False), [r(4, 5)], False),
    ("Bilinear", lambda nn: nn.Bilinear(3, 4, 2), [r(5, 3), r(5, 4)], False),
    ("Identity", lambda nn: nn.Identity(7, foo=1), [r(2, 3)], False),
    ("Conv1d", lambda nn: nn.Conv1d(3, 4, 3, stride=2, padding=1), [r(2, 3, 9)], False),
    ("Conv1d-unbatched", lambda nn: nn.Conv1d(3, 4, 2, bias=False), [r(3, 6)], False),
    ("Conv2d", lambda nn: nn.Conv2d(2, 3, 3), [r(2, 2, 6, 5)], False),
    ("Conv2d-same", lambda nn: nn.Conv2d(3, 4, (3, 4), padding="same"), [r(2, 3, 6, 7)], False),
    ("Conv2d-valid", lambda nn: nn.Conv2d(3, 4, 2, padding="valid", stride=(2, 1)), [r(2, 3, 6, 7)], False),
    ("Conv2d-groups-dilation", lambda nn: nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2), [r(2, 4, 7, 7)], False),
    ("Conv2d-depthwise", lambda nn: nn.Conv2d(3, 6, 3, padding=1, groups=3), [r(2, 3, 5, 5)], False),
    ("Conv2d-stride-pad", lambda nn: nn.Conv2d(2, 3, (3, 2), stride=(2, 3), padding=(1, 2)), [r(1, 2, 7, 8)], False),
    ("Conv2d-reflect", lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), [r(1, 2, 5, 5)], False),
    ("Conv2d-circular", lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), [r(1, 2, 5, 5)], False),
    ("Conv2d-replicate", lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="replicate"), [r(1, 2, 5, 5)], False),
    ("Conv2d-unbatched", lambda nn: nn.Conv2d(2, 3, 3), [r(2, 5, 5)], False),
    ("Conv3d", lambda nn: nn.Conv3d(2, 3, 2, stride=(1, 2, 1), padding=(0, 1, 1)), [r(1, 2, 4, 5, 4)], False),
    ("ConvTranspose1d", lambda nn: nn.ConvTranspose1d(3, 2, 3, stride=2, padding=1, output_padding=1), [r(2, 3, 5)],
     False),
    ("ConvTranspose2d", lambda nn: nn.ConvTranspose2d(4, 2, 3, stride=2, groups=2), [r(2, 4, 3, 4)], False),
    ("ConvTranspose2d-dilation", lambda nn: nn.ConvTranspose2d(2, 3, 2, stride=(1, 2), padding=1, dilation=2),
     [r(1, 2, 4, 3)], False),
    ("MaxPool1d", lambda nn: nn.MaxPool1d(3, 2, dilation=2), [r(2, 3, 11)], False),
    ("MaxPool2d", lambda nn: nn.MaxPool2d(2), [r(2, 3, 6, 6)], False),
    ("MaxPool2d-ceil-pad", lambda nn: nn.MaxPool2d(3, 2, 1, ceil_mode=True), [r(2, 3, 7, 6)], False),
    ("MaxPool2d-indices", lambda nn: nn.MaxPool2d((2, 3), (1, 2), return_indices=True), [r(2, 3, 5, 7)], False),
    ("MaxPool2d-unbatched", lambda nn: nn.MaxPool2d(2, dilation=2), [r(3, 6, 6)], False),
    ("AvgPool1d", lambda nn: nn.AvgPool1d(3, 2, 1, ceil_mode=True), [r(2, 3, 8)], False),
    ("AvgPool2d", lambda nn: nn.AvgPool2d(3, 2, 1, count_include_pad=False), [r(2, 3, 7, 6)], False),
    ("AvgPool2d-divisor", lambda nn: nn.AvgPool2d(2, divisor_override=3), [r(2, 3, 4, 6)], False),
    ("AdaptiveAvgPool1d", lambda nn: nn.AdaptiveAvgPool1d(4), [r(2, 3, 7)], False),
    ("AdaptiveAvgPool2d", lambda nn: nn.AdaptiveAvgPool2d((3, None)), [r(2, 3, 7, 6)], False),
    ("AdaptiveAvgPool2d-1", lambda nn: nn.AdaptiveAvgPool2d(1), [r(2, 3, 5, 4)], False),
    ("AdaptiveMaxPool1d", lambda nn: nn.AdaptiveMaxPool1d(3), [r(2, 3, 7)], False),
    ("AdaptiveMaxPool2d", lambda nn: nn.AdaptiveMaxPool2d(3, return_indices=True), [r(2, 3, 7, 6)], False),
    ("BatchNorm1d-train", lambda nn: nn.BatchNorm1d(3), [r(5, 3)], True),
    ("BatchNorm1d-3d-train", lambda nn: nn.BatchNorm1d(3, momentum=0.3), [r(4, 3, 5)], True),
    ("BatchNorm2d-train", lambda nn: nn.BatchNorm2d(3), [r(2, 3, 4, 4)], True),
    ("BatchNorm2d-eval", lambda nn: nn.BatchNorm2d(3), [r(2, 3, 4, 4)], False),
    ("BatchNorm2d-cumulative", lambda nn: nn.BatchNorm2d(3, momentum=None), [r(2, 3, 2, 2)], True),
    ("BatchNorm2d-noaffine-nostats", lambda nn: nn.BatchNorm2d(3, affine=False, track_running_stats=False),
     [r(2, 3, 4, 4)], True),
    ("LayerNorm", lambda nn: nn.LayerNorm((4, 5)), [r(2, 3, 4, 5)], False),
    ("LayerNorm-noaffine", lambda nn: nn.LayerNorm(5, elementwise_affine=False, eps=1e-3), [r(3, 5)], False),
    ("GroupNorm", lambda nn: nn.GroupNorm(2, 4), [r(2, 4, 3, 3)], False),
    ("InstanceNorm1d", lambda nn: nn.InstanceNorm1d(3), [r(2, 3, 6)], True),
    ("InstanceNorm2d-affine", lambda nn: nn.InstanceNorm2d(3, affine=True), [r(2, 3, 4, 4)], True),
    ("InstanceNorm2d-track", lambda nn: nn.InstanceNorm2d(3, track_running_stats=True), [r(2, 3, 4, 4)], True),
    ("Dropout-eval", lambda nn: nn.Dropout(0.5), [r(3, 4)], False),
    ("Dropout2d-eval", lambda nn: nn.Dropout2d(0.5), [r(2, 3, 4, 4)], False),
    ("Embedding", lambda nn: nn.Embedding(10, 3, padding_idx=1), [np.array([[1, 2, 3], [4, 1, 9]])], False),
    ("Embedding-max_norm", lambda nn: nn.Embedding(10, 3, max_norm=1.0), [np.array([[1, 2, 3], [4, 1, 9]])], False),
    ("EmbeddingBag-sum", lambda nn: nn.EmbeddingBag(10, 3, mode="sum"), [np.array([[1, 2, 3], [4, 1, 9]])], False),
    ("EmbeddingBag-max", lambda nn: nn.EmbeddingBag(10, 3, mode="max"), [np.array([[1, 2, 3], [4, 1, 9]])], False),
    ("EmbeddingBag-offsets", lambda nn: nn.EmbeddingBag(10, 3, mode="mean"),
     [np.array([1, 2, 3, 4, 1, 9]), np.array([0, 2, 2])], False),
    ("EmbeddingBag-padding", lambda nn: nn.EmbeddingBag(10, 3, mode="mean", padding_idx=2),
     [np.array([1, 2, 3, 2, 2, 9]), np.array([0, 3, 4])], False),
    ("RNN", lambda nn: nn.RNN(3, 4, num_layers=2), [r(5, 2, 3)], False),
    ("RNN-relu-bidirectional", lambda nn: nn.RNN(3, 4, nonlinearity="relu", batch_first=True, bidirectional=True),
     [r(2, 5, 3)], False),
    ("LSTM", lambda nn: nn.LSTM(3, 4, num_layers=2, bidirectional=True), [r(5, 2, 3)], False),
    ("LSTM-proj", lambda nn: nn.LSTM(3, 4, proj_size=2, num_layers=2), [r(5, 2, 3)], False),
    ("LSTM-initial", lambda nn: nn.LSTM(3, 4), [r(5, 2, 3), (r(1, 2, 4), r(1, 2, 4))], False),
    ("LSTM-unbatched", lambda nn: nn.LSTM(3, 4, bias=False), [r(5, 3)], False),
    ("GRU", lambda nn: nn.GRU(3, 4, num_layers=2, batch_first=True), [r(2, 5, 3), r(2, 2, 4)], False),
    ("GRU-bidirectional", lambda nn: nn.GRU(3, 4, bidirectional=True), [r(5, 2, 3)], False),
    ("GRU-unbatched", lambda nn: nn.GRU(3, 4), [r(5, 3)], False),
    ("RNNCell", lambda nn: nn.RNNCell(3, 4, nonlinearity="relu"), [r(2, 3), r(2, 4)], False),
    ("LSTMCell", lambda nn: nn.LSTMCell(3, 4), [r(2, 3)], False),
    ("LSTMCell-state", lambda nn: nn.LSTMCell(3, 4), [r(3), (r(4), r(4))], False),
    ("GRUCell", lambda nn: nn.GRUCell(3, 4), [r(2, 3), r(2, 4)], False),
    ("MultiheadAttention", lambda nn: nn.MultiheadAttention(8, 2), [r(4, 2, 8), r(5, 2, 8), r(5, 2, 8)], False),
    ("MultiheadAttention-batch_first-kvdim", lambda nn: nn.MultiheadAttention(8, 2, batch_first=True, kdim=6, vdim=5),
     [r(2, 4, 8), r(2, 5, 6), r(2, 5, 5)], False),
    ("MultiheadAttention-biaskv-zeroattn", lambda nn: nn.MultiheadAttention(4, 1, add_bias_kv=True,
                                                                            add_zero_attn=True),
     [r(3, 2, 4), r(3, 2, 4), r(3, 2, 4)], False),
    ("TransformerEncoderLayer", lambda nn: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), [r(4, 2, 8)], False),
    ("TransformerEncoderLayer-gelu-normfirst", lambda nn: nn.TransformerEncoderLayer(
        8, 2, 16, dropout=0.0, activation="gelu", norm_first=True, batch_first=True), [r(2, 4, 8)], False),
    ("TransformerEncoder", lambda nn: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2, norm=nn.LayerNorm(8)),
     [r(2, 4, 8)], False),
    ("TransformerDecoderLayer", lambda nn: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
     [r(2, 3, 8), r(2, 5, 8)], False),
    ("Transformer", lambda nn: nn.Transformer(8, 2, 1, 1, 16, dropout=0.0), [r(5, 2, 8), r(3, 2, 8)], False),
    ("Upsample-nearest", lambda nn: nn.Upsample(scale_factor=2), [r(1, 2, 3, 3)], False),
    ("Upsample-nearest-size", lambda nn: nn.Upsample(size=(5, 4)), [r(1, 2, 3, 3)], False),
    ("Upsample-bilinear", lambda nn: nn.Upsample(size=(5, 7), mode="bilinear"), [r(1, 2, 3, 4)], False),
    ("Upsample-bilinear-align", lambda nn: nn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True),
     [r(1, 2, 4, 4)], False),
    ("UpsamplingBilinear2d", lambda nn: nn.UpsamplingBilinear2d(scale_factor=2), [r(1, 1, 3, 2)], False),
    ("ZeroPad2d", lambda nn: nn.ZeroPad2d((1, 2, 0, 3)), [r(1, 2, 3, 3)], False),
    ("ConstantPad1d", lambda nn: nn.ConstantPad1d(2, 3.5), [r(2, 3)], False),
    ("ReflectionPad2d", lambda nn: nn.ReflectionPad2d((1, 2, 2, 1)), [r(1, 2, 4, 4)], False),
    ("ReflectionPad1d", lambda nn: nn.ReflectionPad1d(2), [r(2, 5)], False),
    ("ReplicationPad2d", lambda nn: nn.ReplicationPad2d(2), [r(1, 2, 3, 3)], False),
    ("PReLU", lambda nn: nn.PReLU(3), [r(2, 3, 4)], False),
    ("PReLU-1", lambda nn: nn.PReLU(), [r(2, 3)], False),
    ("Flatten", lambda nn: nn.Flatten(), [r(2, 3, 4)], False),
    ("Unflatten", lambda nn: nn.Unflatten(1, (2, 2)), [r(2, 4, 3)], False),
    ("PixelShuffle", lambda nn: nn.PixelShuffle(2), [r(1, 8, 2, 3)], False),
    ("Fold", lambda nn: nn.Fold((4, 5), 2), [r(1, 12, 12)], False),
    ("Unfold", lambda nn: nn.Unfold(2, padding=1, stride=2), [r(1, 3, 4, 5)], False),
    ("CosineSimilarity", lambda nn: nn.CosineSimilarity(dim=1), [r(3, 4), r(3, 4)], False),
    ("PairwiseDistance", lambda nn: nn.PairwiseDistance(p=3.0), [r(3, 4), r(3, 4)], False),
    ("Sequential-MLP", lambda nn: nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)), [r(3, 4)], False),
]

ACTIVATIONS = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh",
               "Hardtanh", "Hardswish", "Hardsigmoid", "Softplus", "Softsign", "Tanhshrink", "Softshrink", "Hardshrink",
               "LogSigmoid", "GLU"]
for _a in ACTIVATIONS:
    CASES.append((_a, (lambda a: lambda nn: getattr(nn, a)())(_a), [r(3, 4, scale=2.5)], False))
for _a in ("Softmax", "LogSoftmax", "Softmin"):
    CASES.append((_a, (lambda a: lambda nn: getattr(nn, a)(dim=1))(_a), [r(3, 4, scale=2.5)], False))
CASES += [
    ("GELU-tanh", lambda nn: nn.GELU("tanh"), [r(3, 4)], False),
    ("LeakyReLU-slope", lambda nn: nn.LeakyReLU(0.2), [r(3, 4)], False),
    ("Hardtanh-bounds", lambda nn: nn.Hardtanh(-0.5, 2.0), [r(3, 4, scale=2)], False),
    ("Softplus-beta", lambda nn: nn.Softplus(beta=2.0, threshold=3.0), [r(3, 4, scale=3)], False),
    ("ELU-alpha", lambda nn: nn.ELU(0.5), [r(3, 4)], False),
    ("Threshold", lambda nn: nn.Threshold(0.1, 20.0), [r(3, 4)], False),
    ("Softmax2d", lambda nn: nn.Softmax2d(), [r(2, 3, 2, 2)], False),
]


@needs_torch
@pytest.mark.parametrize("name,make,arrays,train", CASES, ids=[c[0] for c in CASES])
def test_layer_matches_torch_float64(name, make, arrays, train):
    torch.manual_seed(0)
    tmod = make(torch.nn).double()
    jmod = make(jnn).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare_module(jmod, tmod, arrays, train=train, atol=1e-9, rtol=1e-7)


F32_CASES = ["Linear", "Conv2d", "Conv2d-stride-pad", "Conv2d-groups-dilation", "ConvTranspose2d", "MaxPool2d-ceil-pad",
             "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d-train", "LayerNorm", "GroupNorm", "LSTM", "GRU",
             "MultiheadAttention", "TransformerEncoderLayer", "Embedding", "GELU", "Upsample-bilinear"]


@needs_torch
@pytest.mark.parametrize("name", F32_CASES)
def test_layer_matches_torch_float32(name):
    _, make, arrays, train = next(c for c in CASES if c[0] == name)
    arrays = [a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else
              (tuple(x.astype(np.float32) for x in a) if isinstance(a, tuple) else a) for a in arrays]
    torch.manual_seed(0)
    compare_module(make(jnn), make(torch.nn), arrays, train=train, atol=2e-5, rtol=2e-4)


# ---------------------------------------------------------------------------------------------- without torch

def _gc(fn, *arrays):
    ts = [jitorch.from_numpy(np.array(a, dtype=np.float64)).requires_grad_() for a in arrays]
    assert gradcheck(fn, tuple(ts), atol=1e-6, rtol=1e-4)


GRADCHECK = [
    ("Linear", lambda: jnn.Linear(3, 2), (2, 3)),
    ("Bilinear", lambda: jnn.Bilinear(2, 3, 2), None),
    ("Conv2d", lambda: jnn.Conv2d(2, 2, 2, stride=2, padding=1), (1, 2, 4, 3)),
    ("Conv1d-groups", lambda: jnn.Conv1d(2, 4, 3, groups=2, dilation=2, padding=2), (2, 2, 5)),
    ("ConvTranspose2d", lambda: jnn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1), (1, 2, 2, 3)),
    ("BatchNorm2d", lambda: jnn.BatchNorm2d(2), (2, 2, 2, 3)),
    ("LayerNorm", lambda: jnn.LayerNorm(4), (2, 4)),
    ("GroupNorm", lambda: jnn.GroupNorm(2, 4), (2, 4, 3)),
    ("InstanceNorm2d", lambda: jnn.InstanceNorm2d(2, affine=True), (2, 2, 2, 3)),
    ("MaxPool2d", lambda: jnn.MaxPool2d(2, 1), (1, 2, 3, 3)),
    ("AvgPool2d", lambda: jnn.AvgPool2d(2, 1, 1), (1, 2, 3, 3)),
    ("AdaptiveMaxPool2d", lambda: jnn.AdaptiveMaxPool2d(2), (1, 2, 3, 3)),
    ("LSTM", lambda: jnn.LSTM(2, 2), (3, 1, 2)),
    ("GRU", lambda: jnn.GRU(2, 2, bidirectional=True), (2, 1, 2)),
    ("RNN", lambda: jnn.RNN(2, 3, num_layers=2), (3, 1, 2)),
    ("MultiheadAttention", lambda: jnn.MultiheadAttention(4, 2), None),
    ("Upsample-bilinear", lambda: jnn.Upsample(scale_factor=2, mode="bilinear"), (1, 1, 2, 3)),
    ("PReLU", lambda: jnn.PReLU(2), (2, 2, 3)),
    ("GELU-tanh", lambda: jnn.GELU("tanh"), (2, 3)),
    ("Mish", lambda: jnn.Mish(), (2, 3)),
    ("Hardswish", lambda: jnn.Hardswish(), (2, 3)),
    ("SELU", lambda: jnn.SELU(), (2, 3)),
]


@pytest.mark.parametrize("name,make,shape", GRADCHECK, ids=[g[0] for g in GRADCHECK])
def test_layer_gradcheck_float64(name, make, shape):
    jitorch.manual_seed(0)
    m = make().double()
    rng = np.random.default_rng(5)
    params = [p for p in m.parameters()]
    if name == "Bilinear":
        x1, x2 = rng.standard_normal((2, 2)), rng.standard_normal((2, 3))
        _gc(lambda a, b: m(a, b), x1, x2)
        return
    if name == "MultiheadAttention":
        q, k = rng.standard_normal((2, 1, 4)), rng.standard_normal((3, 1, 4))
        _gc(lambda a, b: m(a, b, b)[0], q, k)
        return
    x = rng.standard_normal(shape)
    if name in ("MaxPool2d", "AdaptiveMaxPool2d"):  # distinct values: no ties at the kinks
        x = rng.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) / 7.0
    out = (lambda y: y[0]) if name in ("LSTM", "GRU", "RNN") else (lambda y: y)
    # input gradient
    _gc(lambda a: out(m(a)), x)
    # parameter gradients: the analytic gradient of sum(out * c) w.r.t. each parameter vs central differences
    for p in params:
        base = p.detach().numpy().copy()
        c = rng.standard_normal(tuple(out(m(jitorch.from_numpy(x))).shape))
        m.zero_grad()
        (out(m(jitorch.from_numpy(x))) * jitorch.from_numpy(c)).sum().backward()
        g = p.grad.numpy().copy()
        num = np.zeros_like(base)
        eps = 1e-6
        for idx in np.ndindex(*base.shape):
            for sgn in (1, -1):
                w = base.copy()
                w[idx] += sgn * eps
                with jitorch.no_grad():
                    p.copy_(jitorch.from_numpy(w))
                val = float((out(m(jitorch.from_numpy(x))) * jitorch.from_numpy(c)).sum())
                num[idx] += sgn * val / (2 * eps)
        with jitorch.no_grad():
            p.copy_(jitorch.from_numpy(base))
        np.testing.assert_allclose(g, num, atol=1e-6, rtol=1e-4)


def test_batchnorm_running_stats_without_torch():
    m = jnn.BatchNorm1d(2, momentum=0.25).double()
    x = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]])
    m(jitorch.from_numpy(x))
    mean, var = x.mean(0), x.var(0, ddof=1)
    np.testing.assert_allclose(m.running_mean.numpy(), 0.25 * mean)
    np.testing.assert_allclose(m.running_var.numpy(), 0.75 + 0.25 * var)
    assert int(m.num_batches_tracked) == 1
    m.eval()
    y = m(jitorch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(y, (x - m.running_mean.numpy()) / np.sqrt(m.running_var.numpy() + 1e-5))


def test_dropout_train_vs_eval():
    jitorch.manual_seed(0)
    d = jnn.Dropout(0.3)
    x = jitorch.ones(200, 100)
    y = d(x).numpy()
    kept = y != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    d.eval()
    assert d(x) is x
    # gradient flows through the kept elements only, scaled
    d.train()
    xg = jitorch.ones(50, 40, requires_grad=True)
    out = d(xg)
    out.sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), out.detach().numpy())


def test_dropout2d_drops_whole_channels():
    jitorch.manual_seed(1)
    d = jnn.Dropout2d(0.5)
    y = d(jitorch.ones(8, 16, 3, 3)).numpy()
    per_channel = y.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0.2 < (per_channel[..., 0] == 0).mean() < 0.8


def test_dropout_reproducible_with_manual_seed():
    jitorch.manual_seed(7)
    a = jnn.functional.dropout(jitorch.ones(30), 0.5).numpy()
    jitorch.manual_seed(7)
    b = jnn.functional.dropout(jitorch.ones(30), 0.5).numpy()
    np.testing.assert_array_equal(a, b)


def test_alpha_dropout_keeps_selu_statistics():
    jitorch.manual_seed(0)
    x = jitorch.randn(200000)
    y = jnn.AlphaDropout(0.2)(x).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02


def test_embedding_padding_idx_gets_no_gradient_and_from_pretrained():
    w = jitorch.from_numpy(np.arange(12.0).reshape(4, 3))
    e = jnn.Embedding.from_pretrained(w, freeze=False, padding_idx=0)
    out = e(jitorch.tensor([[0, 1], [0, 3]]))
    np.testing.assert_array_equal(out.detach().numpy()[0, 1], [3.0, 4.0, 5.0])
    out.sum().backward()
    np.testing.assert_array_equal(e.weight.grad.numpy(), [[0, 0, 0], [1, 1, 1], [0, 0, 0], [1, 1, 1]])
    frozen = jnn.Embedding.from_pretrained(w)
    assert not frozen.weight.requires_grad
    fresh = jnn.Embedding(5, 2, padding_idx=-1)
    assert fresh.padding_idx == 4
    np.testing.assert_array_equal(fresh.weight.detach().numpy()[4], [0, 0])


def test_rnn_parameter_names_and_shapes_match_torch():
    lstm = jnn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    names = [n for n, _ in lstm.named_parameters()]
    assert names[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"]
    assert "weight_ih_l1_reverse" in names
    assert tuple(lstm.weight_ih_l1.shape) == (16, 4)  # 2 directions x proj_size 2
    assert tuple(lstm.weight_hh_l0.shape) == (16, 2)
    out, (h, c) = lstm(jitorch.randn(5, 2, 3))
    assert tuple(out.shape) == (5, 2, 4) and tuple(h.shape) == (4, 2, 2) and tuple(c.shape) == (4, 2, 4)


@needs_torch
def test_packed_sequence_lstm_matches_torch():
    from jitorch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    torch.manual_seed(0)
    tm = torch.nn.LSTM(3, 4, bidirectional=True).double()
    jm = jnn.LSTM(3, 4, bidirectional=True).double()
    jm.load_state_dict({k: jitorch.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    x = r(5, 3, 3)
    lengths = [3, 5, 2]
    tp = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), lengths, enforce_sorted=False)
    jp = pack_padded_sequence(jitorch.from_numpy(x), jitorch.tensor(lengths), enforce_sorted=False)
    np.testing.assert_allclose(jp.data.numpy(), tp.data.numpy())
    np.testing.assert_array_equal(jp.batch_sizes.numpy(), tp.batch_sizes.numpy())
    to, (th, tc) = tm(tp)
    jo, (jh, jc) = jm(jp)
    tpad, tl = torch.nn.utils.rnn.pad_packed_sequence(to)
    jpad, jl = pad_packed_sequence(jo)
    np.testing.assert_allclose(jpad.detach().numpy(), tpad.detach().numpy(), atol=1e-10)
    np.testing.assert_array_equal(jl.numpy(), tl.numpy())
    np.testing.assert_allclose(jh.detach().numpy(), th.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(jc.detach().numpy(), tc.detach().numpy(), atol=1e-10)


def test_transformer_encoder_layers_are_independent_copies():
    layer = jnn.TransformerEncoderLayer(8, 2, 16)
    enc = jnn.TransformerEncoder(layer, 3)
    assert len(enc.layers) == 3
    ps = [l.linear1.weight for l in enc.layers]
    assert ps[0] is not ps[1] and np.array_equal(ps[0].detach().numpy(), ps[1].detach().numpy())
    assert len(list(enc.parameters())) == 3 * len(list(layer.parameters()))


def test_mha_masks_and_weights():
    jitorch.manual_seed(0)
    m = jnn.MultiheadAttention(4, 2, batch_first=True)
    q = jitorch.randn(2, 3, 4)
    kpm = jitorch.tensor([[False, False, True], [False, False, False]])
    out, w = m(q, q, q, key_padding_mask=kpm)
    assert tuple(out.shape) == (2, 3, 4) and tuple(w.shape) == (2, 3, 3)
    np.testing.assert_allclose(w.detach().numpy()[0, :, 2], 0.0)
    np.testing.assert_allclose(w.detach().numpy().sum(-1), 1.0, rtol=1e-6)
    _, w2 = m(q, q, q, need_weights=True, average_attn_weights=False, is_causal=True,
              attn_mask=jnn.Transformer.generate_square_subsequent_mask(3))
    assert tuple(w2.shape) == (2, 2, 3, 3)
    assert np.allclose(np.triu(w2.detach().numpy()[0, 0], 1), 0)


LAYER_ERRORS = [
    (lambda: jnn.Linear(5, 3)(jitorch.randn(2, 4)), RuntimeError,
     r"Linear\(in_features=5, out_features=3\): expected input of shape \[\*, 5\], got \[2, 4\]"),
    (lambda: jnn.Conv2d(3, 4, 3)(jitorch.randn(2, 2, 8, 8)), RuntimeError,
     r"Conv2d\(3, 4, kernel_size=\(3, 3\), stride=\(1, 1\)\): expected input with 3 channels \(shape \[N, 3, "
     r"\.\.\.\]\), but got input of size \[2, 2, 8, 8\]"),
    (lambda: jnn.Conv1d(3, 4, 3)(jitorch.randn(2, 3, 4, 4)), RuntimeError,
     r"Expected 2D \(unbatched\) or 3D \(batched\) input to conv1d, but got input of size: \[2, 3, 4, 4\]"),
    (lambda: jnn.ConvTranspose2d(3, 2, 3)(jitorch.randn(1, 2, 4, 4)), RuntimeError, "expected input with 3 channels"),
    (lambda: jnn.BatchNorm2d(3)(jitorch.randn(2, 3, 4)), ValueError, r"BatchNorm2d: expected 4D input \(got 3D input"),
    (lambda: jnn.BatchNorm1d(3)(jitorch.randn(2, 4)), RuntimeError, r"BatchNorm1d\(3\): expected input with 3 channels"),
    (lambda: jnn.LSTM(3, 4)(jitorch.randn(5, 2, 2)), RuntimeError,
     r"LSTM\(3, 4\): input.size\(-1\) must be equal to input_size. Expected 3, got 2"),
    (lambda: jnn.LSTM(3, 4)(jitorch.randn(5, 2, 3), (jitorch.zeros(1, 3, 4), jitorch.zeros(1, 2, 4))), RuntimeError,
     r"Expected hidden size \(1, 2, 4\), got \[1, 3, 4\]"),
    (lambda: jnn.GRU(3, 4)(jitorch.randn(5, 2, 3), jitorch.zeros(2, 2, 4)), RuntimeError, "Expected hidden size"),
    (lambda: jnn.RNNCell(3, 4)(jitorch.randn(2, 5)), RuntimeError, "RNNCell: input has inconsistent input_size"),
    (lambda: jnn.Embedding(5, 2)(jitorch.tensor([5])), IndexError, "index 5 is out of range for a table of 5 rows"),
    (lambda: jnn.LayerNorm(4)(jitorch.randn(2, 3)), RuntimeError, r"expected input with shape \[\*, 4\]"),
    (lambda: jnn.GroupNorm(3, 6)(jitorch.randn(2, 4, 3)), RuntimeError, "divisible by num_groups"),
    (lambda: jnn.MultiheadAttention(8, 2)(jitorch.randn(3, 2, 6), jitorch.randn(3, 2, 6), jitorch.randn(3, 2, 6)),
     AssertionError, r"MultiheadAttention\(embed_dim=8\): was expecting embedding dimension of 8"),
    (lambda: jnn.MaxPool2d(2)(jitorch.randn(4)), RuntimeError, r"max_pool2d: Expected 3D or 4D \(batch mode\) tensor"),
    (lambda: jnn.Bilinear(2, 3, 4)(jitorch.randn(5, 2), jitorch.randn(5, 2)), RuntimeError, "input2 size does not match"),
    (lambda: jnn.Conv2d(4, 4, 3, groups=3), ValueError, "in_channels must be divisible by groups"),
    (lambda: jnn.Conv2d(4, 4, 3, padding="same", stride=2), ValueError, "padding='same' is not supported"),
    (lambda: jnn.Conv2d(4, 4, 3, padding_mode="mirror"), ValueError, "padding_mode must be one of"),
    (lambda: jnn.Dropout(1.5), ValueError, "dropout probability has to be between 0 and 1"),
    (lambda: jnn.LSTM(3, 4, proj_size=5), ValueError, "proj_size has to be smaller than hidden_size"),
    (lambda: jnn.MultiheadAttention(6, 4), AssertionError, "embed_dim must be divisible by num_heads"),
    (lambda: jnn.GroupNorm(3, 4), ValueError, "num_channels must be divisible by num_groups"),
]


@pytest.mark.parametrize("fn,exc,match", LAYER_ERRORS, ids=[str(i) for i in range(len(LAYER_ERRORS))])
def test_layer_errors_name_the_layer_and_expected_shape(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()

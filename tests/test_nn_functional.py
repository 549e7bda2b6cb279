"""nn.functional and every loss against torch (all reductions, weights, ignore_index, label smoothing,
probability targets), against NumPy formulas and finite differences (gradcheck, no torch needed), and
their torch-style errors."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import jitorch
import jitorch.nn.functional as F
from jitorch.autograd import gradcheck

from .test_nn_helpers import J, compare_fn, needs_torch, torch

_rng = np.random.default_rng(99)
N, C = 4, 5


def r(*shape, scale=1.0):
    return _rng.standard_normal(shape) * scale


T_IDX = np.array([1, -100, 4, 0])
PROBS = np.abs(r(N, C)) + 0.1
PROBS /= PROBS.sum(1, keepdims=True)
T_IMG = _rng.integers(0, C, (N, 3, 2))
W = np.abs(r(C)) + 0.1
SIG = 1 / (1 + np.exp(-r(N, C)))
T01 = (_rng.random((N, C)) > 0.5).astype(np.float64)
PM = np.array([1.0, -1.0, -1.0, 1.0])
MLM = np.array([[1, 3, -1, 0, 0], [0, -1, 0, 0, 0], [4, 2, 1, 0, 3], [-1, 0, 0, 0, 0]])

# name, fn, arrays (float arrays get gradients), kwargs, tensor kwargs (name -> array)
LOSSES = [
    ("mse_loss", [r(N, C), r(N, C)], {}, {}),
    ("l1_loss", [r(N, C), r(N, C)], {}, {}),
    ("smooth_l1_loss", [r(N, C), r(N, C)], {"beta": 0.5}, {}),
    ("smooth_l1_loss", [r(N, C), r(N, C)], {"beta": 0.0}, {}),
    ("huber_loss", [r(N, C), r(N, C)], {"delta": 0.7}, {}),
    ("cross_entropy", [r(N, C), T_IDX], {}, {}),
    ("cross_entropy", [r(N, C), T_IDX], {"label_smoothing": 0.2}, {}),
    ("cross_entropy", [r(N, C), T_IDX], {}, {"weight": W}),
    ("cross_entropy", [r(N, C), T_IDX], {"label_smoothing": 0.3}, {"weight": W}),
    ("cross_entropy", [r(N, C), np.array([0, 2, 2, 4])], {"ignore_index": 2}, {}),
    ("cross_entropy", [r(N, C), PROBS], {}, {}),
    ("cross_entropy", [r(N, C), PROBS], {"label_smoothing": 0.1}, {"weight": W}),
    ("cross_entropy", [r(N, C, 3, 2), T_IMG], {}, {}),
    ("cross_entropy", [r(C), np.array(3)], {}, {}),
    ("nll_loss", [r(N, C), T_IDX], {}, {}),
    ("nll_loss", [r(N, C), T_IDX], {}, {"weight": W}),
    ("nll_loss", [r(N, C, 3, 2), T_IMG], {}, {"weight": W}),
    ("binary_cross_entropy", [SIG, T01], {}, {}),
    ("binary_cross_entropy", [SIG, T01], {}, {"weight": W}),
    ("binary_cross_entropy_with_logits", [r(N, C, scale=3), T01], {}, {}),
    ("binary_cross_entropy_with_logits", [r(N, C, scale=3), T01], {}, {"pos_weight": W}),
    ("binary_cross_entropy_with_logits", [r(N, C, scale=30), T01], {}, {"weight": W}),
    ("kl_div", [np.log(PROBS[::-1].copy()), PROBS], {}, {}),
    ("kl_div", [np.log(PROBS[::-1].copy()), np.log(PROBS)], {"log_target": True}, {}),
    ("cosine_embedding_loss", [r(N, C), r(N, C), PM], {"margin": 0.1}, {}),
    ("margin_ranking_loss", [r(N), r(N), PM], {"margin": 0.2}, {}),
    ("hinge_embedding_loss", [r(N, C), np.sign(r(N, C))], {"margin": 0.5}, {}),
    ("soft_margin_loss", [r(N, C), np.sign(r(N, C))], {}, {}),
    ("poisson_nll_loss", [r(N, C), np.abs(r(N, C)) * 3], {"full": True}, {}),
    ("poisson_nll_loss", [np.abs(r(N, C)) + 0.1, np.abs(r(N, C)) * 3], {"log_input": False}, {}),
    ("gaussian_nll_loss", [r(N, C), r(N, C), np.abs(r(N, C)) + 0.01], {"full": True}, {}),
    ("gaussian_nll_loss", [r(N, C), r(N, C), np.abs(r(N, 1)) + 0.01], {}, {}),
    ("triplet_margin_loss", [r(N, C), r(N, C), r(N, C)], {"swap": True, "p": 1.0}, {}),
    ("multilabel_soft_margin_loss", [r(N, C), T01], {}, {"weight": W}),
    ("multi_margin_loss", [r(N, C), np.array([1, 0, 4, 2])], {"p": 2, "margin": 0.5}, {"weight": W}),
    ("multilabel_margin_loss", [r(N, C), MLM], {}, {}),
]
NO_TARGET_GRAD = {"soft_margin_loss", "hinge_embedding_loss", "multilabel_soft_margin_loss", "multilabel_margin_loss",
                  "binary_cross_entropy", "multi_margin_loss", "margin_ranking_loss", "cosine_embedding_loss"}


def _loss_case_ids():
    return [f"{c[0]}-{i}" for i, c in enumerate(LOSSES)]


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", LOSSES, ids=_loss_case_ids())
def test_loss_matches_torch(case, reduction):
    name, arrays, kw, tkw = case
    kw = dict(kw, reduction=reduction)
    jfn, tfn = getattr(F, name), getattr(torch.nn.functional, name)
    jk = {k: J(v) for k, v in tkw.items()}
    tk = {k: torch.from_numpy(v.copy()) for k, v in tkw.items()}
    grad_args = arrays if name not in NO_TARGET_GRAD else arrays[:1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jy = jfn(*[J(a, i < len(grad_args) and a.dtype.kind == "f") for i, a in enumerate(arrays)], **kw, **jk)
        jx = None
        tx = [torch.from_numpy(np.array(a, copy=True)).requires_grad_(i < len(grad_args) and a.dtype.kind == "f")
              for i, a in enumerate(arrays)]
        ty = tfn(*tx, **kw, **tk)
    assert tuple(jy.shape) == tuple(ty.shape)
    np.testing.assert_allclose(jy.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-10)
    del jx
    # gradients
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jx = [J(a, i < len(grad_args) and a.dtype.kind == "f") for i, a in enumerate(arrays)]
        jy = jfn(*jx, **kw, **jk)
    g = r(*ty.shape) if ty.ndim else np.array(1.3)
    (jy * J(g)).sum().backward()
    (ty * torch.from_numpy(g)).sum().backward()
    for a, b in zip(jx, tx):
        if b.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-10)


@needs_torch
def test_loss_batchmean_and_float32():
    compare_fn(F.kl_div, torch.nn.functional.kl_div, [np.log(PROBS), PROBS[::-1].copy()], {"reduction": "batchmean"})
    x32, t = r(8, 10).astype(np.float32), _rng.integers(0, 10, 8)
    compare_fn(F.cross_entropy, torch.nn.functional.cross_entropy, [x32, t], atol=1e-6, rtol=1e-5)
    compare_fn(F.mse_loss, torch.nn.functional.mse_loss, [x32, r(8, 10).astype(np.float32)], atol=1e-6, rtol=1e-5)


@needs_torch
def test_loss_modules_match_torch():
    import jitorch.nn as jnn
    for make, arrays in [
        (lambda nn, m: nn.CrossEntropyLoss(weight=m(W), ignore_index=1, label_smoothing=0.1),
         [r(N, C), np.array([1, 0, 4, 1])]),
        (lambda nn, m: nn.NLLLoss(reduction="sum"), [r(N, C), np.array([0, 1, 2, 3])]),
        (lambda nn, m: nn.BCEWithLogitsLoss(pos_weight=m(W)), [r(N, C), T01]),
        (lambda nn, m: nn.BCELoss(), [SIG, T01]),
        (lambda nn, m: nn.MSELoss(reduction="none"), [r(N, C), r(N, C)]),
        (lambda nn, m: nn.L1Loss(), [r(N, C), r(N, C)]),
        (lambda nn, m: nn.SmoothL1Loss(beta=0.3), [r(N, C), r(N, C)]),
        (lambda nn, m: nn.HuberLoss(delta=0.3), [r(N, C), r(N, C)]),
        (lambda nn, m: nn.KLDivLoss(reduction="batchmean", log_target=True), [r(N, C), np.log(PROBS)]),
        (lambda nn, m: nn.CosineEmbeddingLoss(0.2), [r(N, C), r(N, C), PM]),
        (lambda nn, m: nn.MarginRankingLoss(0.1), [r(N), r(N), PM]),
    ]:
        jl = make(jnn, lambda a: jitorch.from_numpy(a.copy()))
        tl = make(torch.nn, lambda a: torch.from_numpy(a.copy()))
        jx = [J(a, a.dtype.kind == "f" and i == 0) for i, a in enumerate(arrays)]
        tx = [torch.from_numpy(a.copy()).requires_grad_(a.dtype.kind == "f" and i == 0) for i, a in enumerate(arrays)]
        jy, ty = jl(*jx), tl(*tx)
        np.testing.assert_allclose(jy.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-12)
        jy.sum().backward()
        ty.sum().backward()
        np.testing.assert_allclose(jx[0].grad.numpy(), tx[0].grad.numpy(), rtol=1e-8, atol=1e-12)


# ---------------------------------------------------------------------------------------------- functional vs torch

FUNCTIONAL = [
    ("linear", [r(3, 4), r(5, 4), r(5)], {}),
    ("linear", [r(2, 3, 4), r(5, 4)], {}),
    ("bilinear", [r(3, 4), r(3, 2), r(5, 4, 2), r(5)], {}),
    ("normalize", [r(3, 4)], {"p": 2, "dim": 1}),
    ("normalize", [r(3, 4)], {"p": 1, "dim": 0}),
    ("cosine_similarity", [r(3, 4), r(3, 4)], {"dim": 1}),
    ("cosine_similarity", [r(3, 4), r(1, 4)], {"dim": -1}),
    ("pairwise_distance", [r(3, 4), r(3, 4)], {}),
    ("pairwise_distance", [r(3, 4), r(3, 4)], {"p": 1.0, "keepdim": True}),
    ("pdist", [r(4, 3)], {}),
    ("pad", [r(2, 3, 4)], {"pad": (1, 2, 0, 1), "value": 1.5}),
    ("pad", [r(2, 3, 4)], {"pad": (-1, 2)}),
    ("pad", [r(2, 3, 5)], {"pad": (2, 3), "mode": "reflect"}),
    ("pad", [r(1, 2, 3, 3, 4)], {"pad": (1, 1, 2, 0, 1, 1), "mode": "replicate"}),
    ("pad", [r(1, 2, 3, 4)], {"pad": (1, 2, 2, 1), "mode": "circular"}),
    ("interpolate", [r(1, 2, 3, 5)], {"size": (7, 4)}),
    ("interpolate", [r(1, 2, 3, 5)], {"size": (7, 4), "mode": "nearest-exact"}),
    ("interpolate", [r(1, 2, 5)], {"scale_factor": 2.5, "mode": "linear"}),
    ("interpolate", [r(1, 1, 2, 3, 4)], {"size": (3, 4, 2), "mode": "trilinear", "align_corners": False}),
    ("interpolate", [r(1, 2, 6, 7)], {"size": (3, 4), "mode": "bilinear"}),
    ("interpolate", [r(1, 2, 6, 7)], {"size": (3, 4), "mode": "area"}),
    ("scaled_dot_product_attention", [r(2, 3, 4, 5), r(2, 3, 6, 5), r(2, 3, 6, 7)], {}),
    ("scaled_dot_product_attention", [r(2, 3, 4, 5), r(2, 3, 4, 5), r(2, 3, 4, 7)], {"is_causal": True}),
    ("scaled_dot_product_attention", [r(2, 4, 5), r(2, 6, 5), r(2, 6, 7), r(4, 6)], {"scale": 0.3}),
    ("embedding", [np.array([[1, 2], [0, 4]]), r(5, 3)], {"padding_idx": 2}),
    ("glu", [r(3, 4)], {"dim": 1}),
    ("softmax", [r(3, 4)], {"dim": 0}),
    ("log_softmax", [r(3, 4)], {"dim": -1}),
    ("softmin", [r(3, 4)], {"dim": 1}),
    ("gelu", [r(3, 4)], {}),
    ("gelu", [r(3, 4)], {"approximate": "tanh"}),
    ("silu", [r(3, 4)], {}),
    ("mish", [r(3, 4)], {}),
    ("hardswish", [r(3, 4, scale=3)], {}),
    ("hardsigmoid", [r(3, 4, scale=3)], {}),
    ("relu6", [r(3, 4, scale=5)], {}),
    ("elu", [r(3, 4)], {"alpha": 0.3}),
    ("selu", [r(3, 4)], {}),
    ("celu", [r(3, 4)], {"alpha": 0.7}),
    ("leaky_relu", [r(3, 4)], {"negative_slope": 0.1}),
    ("softplus", [r(3, 4, scale=4)], {"beta": 2, "threshold": 5}),
    ("softsign", [r(3, 4)], {}),
    ("logsigmoid", [r(3, 4, scale=10)], {}),
    ("threshold", [r(3, 4)], {"threshold": 0.2, "value": -3.0}),
    ("hardtanh", [r(3, 4, scale=2)], {"min_val": -0.5, "max_val": 1.5}),
    ("softshrink", [r(3, 4)], {"lambd": 0.3}),
    ("hardshrink", [r(3, 4)], {"lambd": 0.3}),
    ("tanhshrink", [r(3, 4)], {}),
    ("prelu", [r(2, 3, 4), np.abs(r(3))], {}),
    ("local_response_norm", [r(2, 5, 3, 4)], {"size": 3}),
    ("local_response_norm", [r(2, 5, 4)], {"size": 2}),
    ("rms_norm", [r(2, 3, 4), (4,), np.abs(r(4))], {"eps": 1e-6}),
    ("group_norm", [r(2, 6, 3), 3, r(6), r(6)], {}),
    ("layer_norm", [r(2, 6, 3), (6, 3), r(6, 3), r(6, 3)], {}),
    ("instance_norm", [r(2, 3, 4)], {}),
    ("batch_norm", [r(4, 3, 2), np.zeros(3), np.ones(3), r(3), r(3)], {"training": True, "momentum": 0.3}),
    ("pixel_shuffle", [r(1, 8, 2, 3)], {"upscale_factor": 2}),
    ("pixel_unshuffle", [r(1, 2, 4, 6)], {"downscale_factor": 2}),
    ("lp_pool2d", [np.abs(r(1, 2, 4, 6)) + 0.1], {"norm_type": 2, "kernel_size": 2}),
    ("lp_pool1d", [np.abs(r(1, 2, 6)) + 0.1], {"norm_type": 3, "kernel_size": 2}),
    ("avg_pool2d", [r(1, 2, 5, 5)], {"kernel_size": 3, "stride": 2, "padding": 1, "divisor_override": 4}),
    ("max_pool2d", [r(1, 2, 5, 5)], {"kernel_size": 3, "stride": 2, "padding": 1, "return_indices": True}),
    ("max_pool1d", [r(2, 7)], {"kernel_size": 2, "ceil_mode": True}),
    ("adaptive_max_pool1d", [r(1, 2, 7)], {"output_size": 3, "return_indices": True}),
    ("conv_transpose1d", [r(1, 2, 5), r(2, 3, 3)], {"stride": 2, "padding": 1, "output_padding": 1, "dilation": 2}),
    ("conv_transpose3d", [r(1, 2, 2, 3, 2), r(2, 1, 2, 2, 2)], {"stride": 2}),
    ("conv2d", [r(1, 2, 5, 5), r(3, 2, 2, 2)], {"padding": "valid"}),
    ("conv1d", [r(1, 2, 7), r(3, 2, 4)], {"padding": "same"}),
    ("conv3d", [r(1, 2, 3, 4, 3), r(2, 1, 2, 2, 2), r(2)], {"groups": 2, "padding": 1}),
    ("unfold", [r(2, 3, 5, 4)], {"kernel_size": (2, 3), "dilation": 1, "padding": 1, "stride": (1, 2)}),
    ("fold", [r(2, 12, 6)], {"output_size": (3, 4), "kernel_size": 2}),
]


@needs_torch
@pytest.mark.parametrize("case", FUNCTIONAL, ids=[f"{c[0]}-{i}" for i, c in enumerate(FUNCTIONAL)])
def test_functional_matches_torch(case):
    name, arrays, kw = case
    tfn = getattr(torch.nn.functional, name)
    if name == "batch_norm":
        arrays = list(arrays)
        jm, jv, tmn, tvr = J(arrays[1]), J(arrays[2]), torch.from_numpy(arrays[1].copy()), \
            torch.from_numpy(arrays[2].copy())
        x, w, b = arrays[0], arrays[3], arrays[4]
        compare_fn(lambda x, w, b, **k: F.batch_norm(x, jm, jv, w, b, **k),
                   lambda x, w, b, **k: tfn(x, tmn, tvr, w, b, **k), [x, w, b], kw)
        np.testing.assert_allclose(jm.numpy(), tmn.numpy(), rtol=1e-12)
        np.testing.assert_allclose(jv.numpy(), tvr.numpy(), rtol=1e-12)
        return
    compare_fn(getattr(F, name), tfn, arrays, kw, atol=1e-9, rtol=1e-7)


@needs_torch
def test_one_hot_matches_torch():
    for a, k in [(np.array([0, 3, 1]), 5), (np.array([[0, 3], [1, 2]]), -1)]:
        np.testing.assert_array_equal(F.one_hot(J(a), k).numpy(),
                                      torch.nn.functional.one_hot(torch.from_numpy(a), k).numpy())
    assert F.one_hot(J(np.array([1, 2])), 4).dtype is jitorch.int64


@needs_torch
def test_embedding_bag_per_sample_weights_matches_torch():
    compare_fn(lambda i, w, o, p: F.embedding_bag(i, w, o, mode="sum", per_sample_weights=p),
               lambda i, w, o, p: torch.nn.functional.embedding_bag(i, w, o, mode="sum", per_sample_weights=p),
               [np.array([1, 2, 3, 4, 1, 9]), r(10, 3), np.array([0, 2, 2]), r(6)])


# ---------------------------------------------------------------------------------------------- without torch

def _gc(fn, *arrays):
    ts = [jitorch.from_numpy(np.array(a, dtype=np.float64)).requires_grad_() for a in arrays]
    assert gradcheck(fn, tuple(ts), atol=1e-6, rtol=1e-4)


GRADCHECKS = [
    ("cross_entropy", lambda x: F.cross_entropy(x, J(np.array([0, 2, 1])), label_smoothing=0.1), [r(3, 4)]),
    ("cross_entropy-prob", lambda x, t: F.cross_entropy(x, t), [r(3, 4), np.abs(r(3, 4))]),
    ("cross_entropy-weight", lambda x: F.cross_entropy(x, J(np.array([0, 2, -100])), weight=J(np.array(
        [1.0, 2.0, 0.5, 3.0]))), [r(3, 4)]),
    ("nll_loss-none", lambda x: F.nll_loss(x, J(np.array([3, 2, 1])), reduction="none"), [r(3, 4)]),
    ("bce_logits", lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=J(np.array([2.0, 0.5]))),
     [r(3, 2), np.abs(r(3, 2)) / 3]),
    ("bce", lambda x: F.binary_cross_entropy(x, J(np.array([[0.0, 1.0], [1.0, 0.3]]))), [SIG[:2, :2]]),
    ("kl_div", lambda x, t: F.kl_div(x, t, reduction="batchmean"), [r(2, 3), np.abs(r(2, 3))]),
    ("smooth_l1", lambda x, t: F.smooth_l1_loss(x, t, beta=0.5), [r(3, 3), r(3, 3)]),
    ("huber", lambda x, t: F.huber_loss(x, t, delta=0.5), [r(3, 3), r(3, 3)]),
    ("cosine_embedding", lambda a, b: F.cosine_embedding_loss(a, b, J(np.array([1.0, -1.0]))), [r(2, 3), r(2, 3)]),
    ("triplet", lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=5.0), [r(2, 3), r(2, 3), r(2, 3)]),
    ("gaussian_nll", lambda x, t, v: F.gaussian_nll_loss(x, t, v), [r(2, 3), r(2, 3), np.abs(r(2, 3)) + 0.5]),
    ("poisson_nll", lambda x, t: F.poisson_nll_loss(x, t), [r(2, 3), np.abs(r(2, 3))]),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (4,), w, b), [r(3, 4), r(4), r(4)]),
    ("group_norm", lambda x, w: F.group_norm(x, 2, w), [r(2, 4, 3), r(4)]),
    ("batch_norm-train", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [r(4, 3), r(3), r(3)]),
    ("instance_norm", lambda x: F.instance_norm(x), [r(2, 2, 4)]),
    ("gelu", lambda x: F.gelu(x), [r(3, 3)]),
    ("gelu-tanh", lambda x: F.gelu(x, approximate="tanh"), [r(3, 3)]),
    ("silu", F.silu, [r(3, 3)]),
    ("mish", F.mish, [r(3, 3)]),
    ("softsign", F.softsign, [r(3, 3)]),
    ("logsigmoid", F.logsigmoid, [r(3, 3)]),
    ("normalize", lambda x: F.normalize(x, dim=0), [r(3, 3)]),
    ("cosine_similarity", lambda a, b: F.cosine_similarity(a, b), [r(3, 3), r(3, 3)]),
    ("pairwise_distance", lambda a, b: F.pairwise_distance(a, b), [r(3, 3), r(3, 3)]),
    ("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [r(1, 3, 2), r(1, 3, 2),
                                                                                        r(1, 3, 2)]),
    ("pad-reflect", lambda x: F.pad(x, (2, 1), mode="reflect"), [r(2, 4)]),
    ("pad-constant", lambda x: F.pad(x, (1, 1, 2, 0), value=3.0), [r(2, 3)]),
    ("interpolate-bilinear", lambda x: F.interpolate(x, size=(3, 5), mode="bilinear"), [r(1, 1, 2, 3)]),
    ("interpolate-nearest", lambda x: F.interpolate(x, scale_factor=2), [r(1, 1, 2, 3)]),
    ("embedding", lambda w: F.embedding(J(np.array([[0, 2], [2, 1]])), w), [r(3, 2)]),
    ("embedding_bag-mean", lambda w: F.embedding_bag(J(np.array([0, 2, 2, 1])), w, J(np.array([0, 1])),
                                                     mode="mean"), [r(3, 2)]),
    ("bilinear", lambda a, b, w: F.bilinear(a, b, w), [r(2, 2), r(2, 3), r(2, 2, 3)]),
    ("unfold", lambda x: F.unfold(x, 2, padding=1), [r(1, 2, 3, 3)]),
    ("fold", lambda x: F.fold(x, (3, 3), 2), [r(1, 8, 4)]),
    ("glu", lambda x: F.glu(x, 0), [r(4, 2)]),
    ("pixel_shuffle", lambda x: F.pixel_shuffle(x, 2), [r(1, 4, 1, 2)]),
]


@pytest.mark.parametrize("name,fn,arrays", GRADCHECKS, ids=[g[0] for g in GRADCHECKS])
def test_functional_gradcheck_float64(name, fn, arrays):
    _gc(fn, *arrays)


def test_losses_against_numpy_formulas():
    x, y = r(3, 4), r(3, 4)
    np.testing.assert_allclose(F.mse_loss(J(x), J(y)).item(), ((x - y) ** 2).mean())
    np.testing.assert_allclose(F.l1_loss(J(x), J(y), reduction="sum").item(), np.abs(x - y).sum())
    logits, t = r(3, 4), np.array([0, 3, 1])
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    np.testing.assert_allclose(F.cross_entropy(J(logits), J(t)).item(), -logp[np.arange(3), t].mean())
    w = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(F.cross_entropy(J(logits), J(t), weight=J(w)).item(),
                               -(logp[np.arange(3), t] * w[t]).sum() / w[t].sum())
    ls = 0.2
    smooth = -(logp.mean(1))
    np.testing.assert_allclose(F.cross_entropy(J(logits), J(t), label_smoothing=ls).item(),
                               ((1 - ls) * -logp[np.arange(3), t] + ls * smooth).mean())
    tm = np.array([0, -100, 1])
    np.testing.assert_allclose(F.cross_entropy(J(logits), J(tm)).item(),
                               -(logp[0, 0] + logp[2, 1]) / 2)
    np.testing.assert_allclose(F.cross_entropy(J(logits), J(tm), reduction="none").numpy(),
                               [-logp[0, 0], 0.0, -logp[2, 1]])
    z, tt = r(3, 4) * 40, (r(3, 4) > 0).astype(float)
    ref = np.maximum(z, 0) - z * tt + np.log1p(np.exp(-np.abs(z)))
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(J(z), J(tt), reduction="none").numpy(), ref,
                               rtol=1e-12, atol=1e-14)
    p = np.array([0.0, 1.0, 0.5])
    np.testing.assert_allclose(F.binary_cross_entropy(J(p), J(np.array([1.0, 0.0, 1.0])), reduction="none").numpy(),
                               [100.0, 100.0, math.log(2)])  # logs clamped at -100


def test_functional_against_numpy():
    x = r(2, 3, 4)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(F.layer_norm(J(x), (4,)).numpy(), (x - mean) / np.sqrt(var + 1e-5), rtol=1e-10)
    np.testing.assert_allclose(F.gelu(J(x)).numpy(),
                               0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))), rtol=1e-12)
    np.testing.assert_allclose(F.silu(J(x)).numpy(), x / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(F.normalize(J(x), dim=-1).numpy(), x / np.linalg.norm(x, axis=-1, keepdims=True))
    a, b = r(5, 3), r(5, 3)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(F.cosine_similarity(J(a), J(b)).numpy(), cos, rtol=1e-12)
    np.testing.assert_allclose(F.pairwise_distance(J(a), J(b)).numpy(), np.linalg.norm(a - b + 1e-6, axis=1))
    q, k, v = r(2, 3, 4), r(2, 5, 4), r(2, 5, 6)
    s = q @ k.transpose(0, 2, 1) / 2.0
    s = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(F.scaled_dot_product_attention(J(q), J(k), J(v)).numpy(),
                               (s / s.sum(-1, keepdims=True)) @ v, rtol=1e-10)
    np.testing.assert_array_equal(F.one_hot(J(np.array([2, 0])), 3).numpy(), [[0, 0, 1], [1, 0, 0]])
    img = r(1, 1, 2, 2)
    np.testing.assert_array_equal(F.interpolate(J(img), scale_factor=2).numpy(),
                                  img.repeat(2, axis=2).repeat(2, axis=3))
    row = np.arange(3.0).reshape(1, 3)
    np.testing.assert_array_equal(F.pad(J(row), (2, 1), mode="reflect").numpy(), [[2, 1, 0, 1, 2, 1]])
    np.testing.assert_array_equal(F.pad(J(row), (1, 2), mode="replicate").numpy(), [[0, 0, 1, 2, 2, 2]])
    np.testing.assert_array_equal(F.pad(J(row), (1, 1), mode="circular").numpy(), [[2, 0, 1, 2, 0]])
    np.testing.assert_array_equal(F.pad(J(np.ones((1, 1))), (1, 0, 0, 1), value=7.0).numpy(), [[7, 1], [7, 7]])


# ---------------------------------------------------------------------------------------------- errors

def test_functional_errors():
    x = jitorch.randn(2, 3, 8, 8)
    w = jitorch.randn(4, 3, 3, 3)
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got "
                                           r"input of size: \[3, 8\]"):
        F.conv2d(jitorch.randn(3, 8), w)
    with pytest.raises(RuntimeError, match=r"Given groups=1, weight of size \[4, 3, 3, 3\], expected input\[2, 5, 8, "
                                           r"8\] to have 3 channels, but got 5 channels instead"):
        F.conv2d(jitorch.randn(2, 5, 8, 8), w)
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        F.conv2d(jitorch.randn(1, 3, 2, 2), w)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        F.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError, match="Invalid padding string 'full'"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(RuntimeError, match="Input type .* should be the same"):
        F.conv2d(x, w.double())
    with pytest.raises(RuntimeError, match="not implemented for 'Long'"):
        F.conv2d(jitorch.ones(1, 3, 4, 4, dtype=jitorch.int64), jitorch.ones(1, 3, 3, 3, dtype=jitorch.int64))
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride or dilation"):
        F.conv_transpose2d(x, jitorch.randn(3, 2, 3, 3), output_padding=1)
    with pytest.raises(RuntimeError, match="pad should be at most half of effective kernel size"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(RuntimeError, match=r"max_pool2d: Expected 3D or 4D \(batch mode\) tensor for input"):
        F.max_pool2d(jitorch.randn(8, 8), 2)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        F.avg_pool2d(jitorch.randn(1, 1, 2, 2), 3)
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"):
        F.linear(jitorch.randn(2, 3), jitorch.randn(5, 4))
    with pytest.raises(RuntimeError, match=r"Given normalized_shape=\[5\], expected input with shape \[\*, 5\], but got "
                                           r"input of size\[2, 4\]"):
        F.layer_norm(jitorch.randn(2, 4), (5,))
    with pytest.raises(RuntimeError, match="Expected number of channels in input to be divisible by num_groups"):
        F.group_norm(jitorch.randn(2, 6, 3), 4)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(jitorch.randn(1, 3), None, None, training=True)
    with pytest.raises(RuntimeError, match="running_mean should contain 3 elements not 4"):
        F.batch_norm(jitorch.randn(2, 3), jitorch.zeros(4), jitorch.ones(4))
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target batch_size \(2\)"):
        F.cross_entropy(jitorch.randn(3, 4), jitorch.tensor([0, 1]))
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        F.cross_entropy(jitorch.randn(2, 4), jitorch.tensor([0, 4]))
    with pytest.raises(RuntimeError, match="weight tensor should be defined either for all 4 classes"):
        F.nll_loss(jitorch.randn(2, 4), jitorch.tensor([0, 1]), weight=jitorch.ones(3))
    with pytest.raises(ValueError, match="that is different to the input size"):
        F.binary_cross_entropy(jitorch.rand(3), jitorch.rand(3, 1))
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(jitorch.tensor([1.5]), jitorch.tensor([1.0]))
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        F.mse_loss(jitorch.ones(2), jitorch.ones(2), reduction="avg")
    with pytest.raises(RuntimeError, match="one_hot is only applicable to index tensor of type LongTensor"):
        F.one_hot(jitorch.tensor([1.0]))
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes"):
        F.one_hot(jitorch.tensor([3]), 3)
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(jitorch.tensor([5]), jitorch.randn(5, 2))
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        F.dropout(x, 1.5)
    with pytest.raises(RuntimeError, match="Padding size should be less than the corresponding input dimension"):
        F.pad(jitorch.randn(1, 3), (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="only one of size or scale_factor should be defined"):
        F.interpolate(x, size=4, scale_factor=2)
    with pytest.raises(RuntimeError, match="label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(jitorch.randn(2, 3), jitorch.tensor([0, 1]), label_smoothing=1.5)
    with pytest.raises(RuntimeError, match="mse_loss|size of tensor"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            F.mse_loss(jitorch.ones(2, 3), jitorch.ones(4))


def test_mse_broadcast_warns():
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(jitorch.ones(2, 3), jitorch.ones(3))


def test_legacy_size_average_reduce():
    x, y = jitorch.ones(2, 2), jitorch.zeros(2, 2)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert F.mse_loss(x, y, size_average=False).item() == 4.0
    with pytest.warns(UserWarning):
        assert tuple(F.l1_loss(x, y, reduce=False).shape) == (2, 2)


def test_softmax_implicit_dim_warns():
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = F.softmax(jitorch.randn(2, 3))
    np.testing.assert_allclose(y.sum(1).numpy(), 1.0, rtol=1e-6)

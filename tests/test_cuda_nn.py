"""Ops of the reduction, linalg, nn, index and random families, autograd, nn and optim on device='cuda',
against the same computation on cpu.

Runs on numba's CUDA simulator (tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1 unless JITORCH_TEST_REAL_CUDA=1),
so shapes are tiny; the kernels themselves are checked against NumPy in tests/test_cuda_kernels.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jitorch
import jitorch.nn as nn
import jitorch.nn.functional as F
from jitorch._dispatch import call

if not jitorch.cuda.is_available():  # pragma: no cover - conftest enables the simulator
    pytest.skip("cuda is not available (no GPU and NUMBA_ENABLE_CUDASIM is not set)", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

CUDA = jitorch.device("cuda")


def same(got, want, rtol=1e-5, atol=1e-6, what=""):
    assert got.device == CUDA, what
    assert got.dtype is want.dtype, f"{what}: {got.dtype} != {want.dtype}"
    assert tuple(got.shape) == tuple(want.shape), f"{what}: {tuple(got.shape)} != {tuple(want.shape)}"
    g, w = got.detach().cpu().numpy(), want.detach().numpy()
    if want.dtype.category < 2:
        np.testing.assert_array_equal(g, w, err_msg=what)
    else:
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=what)


def _x(shape, dtype=jitorch.float32, seed=0):
    rng = np.random.default_rng(seed)
    if dtype.is_floating_point:
        return jitorch.tensor((rng.standard_normal(shape) * 2).astype(np.float64)).to(dtype)
    if dtype is jitorch.bool:
        return jitorch.tensor(rng.random(shape) > 0.5)
    return jitorch.tensor(rng.integers(-4, 5, shape)).to(dtype)


# ------------------------------------------------------------------ ops vs cpu

REDUCTIONS = [
    ("sum", dict(dim=(1,), keepdim=False)), ("sum", dict(dim=(0, 2), keepdim=True)), ("prod", dict(dim=(2,))),
    ("amax", dict(dim=(0, 1))), ("amin", dict(dim=(2,), keepdim=True)), ("argmax", dict(dim=(1,))),
    ("argmin", dict(dim=(2,))), ("any", dict(dim=(1,))), ("all", dict(dim=(0, 1, 2))),
    ("count_nonzero", dict(dim=(2,))), ("var", dict(dim=(1,), correction=1)), ("logsumexp", dict(dim=(2,))),
    ("norm", dict(dim=(1, 2), p=2.0)), ("norm", dict(dim=(2,), p=1.0)), ("norm", dict(dim=(2,), p=3.0)),
    ("norm", dict(dim=(0,), p=float("inf"))),
]


@pytest.mark.parametrize("dtype", [jitorch.float32, jitorch.float16, jitorch.int32, jitorch.bool])
def test_reductions_vs_cpu(dtype):
    x = _x((2, 3, 4), dtype)
    xs = [x, x.transpose(0, 2)]  # contiguous and a permuted view
    for name, attrs in REDUCTIONS:
        if name in ("var", "norm") and not dtype.is_floating_point:
            continue
        if name in ("argmax", "argmin", "prod", "logsumexp") and dtype is jitorch.bool:
            continue
        for t in xs:
            dims = attrs["dim"]
            want = call(name, t, **attrs)
            got = call(name, t.cuda(), **attrs)
            tol = 2e-3 if dtype is jitorch.float16 else 1e-5
            same(got, want, rtol=tol, atol=tol, what=f"{name} {attrs} {dtype} {tuple(t.shape)} {dims}")


@settings(max_examples=12)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), data=st.data())
def test_reductions_random_shapes_dims_vs_cpu(shape, data):
    nd = len(shape)
    dims = tuple(sorted(data.draw(st.sets(st.integers(0, nd - 1), min_size=1), label="dims")))
    name = data.draw(st.sampled_from(["sum", "amax", "var", "argmax", "cumsum"]), label="op")
    keepdim = data.draw(st.booleans(), label="keepdim")
    x = _x(tuple(shape), seed=len(shape))
    if data.draw(st.booleans(), label="permuted") and nd > 1:
        x = x.transpose(0, nd - 1)
    if name == "argmax":
        attrs = dict(dim=dims[:1], keepdim=keepdim)
    elif name == "cumsum":
        attrs = dict(dim=dims[:1])
    else:
        attrs = dict(dim=dims, keepdim=keepdim)
    same(call(name, x.cuda(), **attrs), call(name, x, **attrs), rtol=1e-5, atol=1e-5, what=f"{name} {attrs}")


def test_max_min_dim_scans_softmax_vs_cpu():
    x = _x((3, 5), jitorch.float32, 1)
    x[1, 2] = float("nan")
    c = x.cuda()
    for dim in (0, 1):
        for fn in ("max", "min"):
            v, i = getattr(x, fn)(dim)
            vc, ic = getattr(c, fn)(dim)
            same(vc, v, what=f"{fn} values")
            same(ic, i, what=f"{fn} indices")
        same(c.cumsum(dim), x.cumsum(dim), what="cumsum")
        same(c.cumprod(dim), x.cumprod(dim), what="cumprod")
        same(c.softmax(dim), x.softmax(dim), what="softmax")
        same(c.log_softmax(dim), x.log_softmax(dim), what="log_softmax")
    xi = _x((2, 6), jitorch.int32, 2)
    same(xi.cuda().cumsum(1), xi.cumsum(1), what="int cumsum -> int64")
    same(x.cuda().mean(1), x.mean(1), what="mean")


@pytest.mark.parametrize("sa,sb", [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 2)), ((3, 4), (4, 2)),
                                   ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((1, 3, 4), (2, 4, 2))])
def test_matmul_shapes_vs_cpu(sa, sb):
    a, b = _x(sa, seed=3), _x(sb, seed=4)
    same(a.cuda() @ b.cuda(), a @ b, what=f"{sa} @ {sb}")


def test_matmul_transposed_operands_dtypes():
    a, b = _x((5, 3), seed=5), _x((4, 3), seed=6)
    same(a.cuda() @ b.cuda().t(), a @ b.t(), what="a @ b.T")
    same(a.cuda().t() @ a.cuda(), a.t() @ a, what="a.T @ a")
    for dt in (jitorch.float64, jitorch.float16, jitorch.int64):
        x, y = _x((3, 4), dt, 7), _x((4, 2), dt, 8)
        same(x.cuda() @ y.cuda(), x @ y, rtol=2e-3, atol=2e-3, what=str(dt))


def test_index_family_vs_cpu():
    x = _x((4, 5), seed=9)
    c = x.cuda()
    idx = jitorch.tensor([3, 0, -1, 3])
    same(c.index_select(0, idx.cuda()), x.index_select(0, idx), what="index_select")
    gi = jitorch.tensor([[0, 4], [1, 1], [2, 0], [3, 3]])
    same(c.gather(1, gi.cuda()), x.gather(1, gi), what="gather")
    src = _x((4, 2), seed=10)
    same(c.scatter(1, gi.cuda(), src.cuda()), x.scatter(1, gi, src), what="scatter")
    same(c.scatter_add(1, gi.cuda(), src.cuda()), x.scatter_add(1, gi, src), what="scatter_add")
    rows, add = jitorch.tensor([1, 1]), _x((2, 5), seed=11)
    same(c.index_add(0, rows.cuda(), add.cuda()), x.index_add(0, rows, add), what="index_add")
    same(c[idx.cuda()], x[idx], what="x[idx]")
    same(c[:, jitorch.tensor([4, 0]).cuda()], x[:, jitorch.tensor([4, 0])], what="x[:, idx]")
    m = x > 0
    same(c[m.cuda()], x[m], what="masked select")
    same(jitorch.nonzero(m.cuda()), jitorch.nonzero(m), what="nonzero")
    y, yc = x.clone(), c.clone()
    y[jitorch.tensor([0, 2])] = 7.0
    yc[jitorch.tensor([0, 2]).cuda()] = 7.0
    same(yc, y, what="index_put")
    y.index_put_((jitorch.tensor([1, 1]),), jitorch.ones(5), accumulate=True)
    yc.index_put_((jitorch.tensor([1, 1]).cuda(),), jitorch.ones(5).cuda(), accumulate=True)
    same(yc, y, what="index_put accumulate")
    for desc in (False, True):
        v, i = x.sort(1, descending=desc)
        vc, ic = c.sort(1, descending=desc)
        same(vc, v, what="sort values")
        same(ic, i, what="sort indices")
    v, i = x.topk(2, dim=0)
    vc, ic = c.topk(2, dim=0)
    same(vc, v, what="topk")
    same(ic, i, what="topk indices")
    xt = jitorch.tensor([[3.0, 1.0, 2.0, 1.0, float("nan")], [2.0, 2.0, 5.0, 1.0, 2.0], [4.0, 3.0, 3.0, 4.0, 0.0]])
    for dim in (0, 1):
        for k in (1, 2):
            vk, ik = xt.kthvalue(k, dim)
            vkc, ikc = xt.cuda().kthvalue(k, dim)
            same(vkc, vk, what=f"kthvalue k={k} dim={dim}")
            same(ikc, ik, what=f"kthvalue indices k={k} dim={dim}")
        for fn in ("median", "nanmedian", "mode"):
            v, i = getattr(xt, fn)(dim)
            vc, ic = getattr(xt.cuda(), fn)(dim)
            same(vc, v, what=f"{fn} dim={dim}")
            same(ic, i, what=f"{fn} indices dim={dim}")
    with pytest.raises(IndexError, match="out of bounds"):
        c.index_select(0, jitorch.tensor([4]).cuda())
    with pytest.raises(IndexError, match="out of bounds"):
        c.gather(1, jitorch.tensor([[5]]).cuda())


def test_index_family_float16_moves_bits():
    x = _x((4, 5), jitorch.float16, seed=17)
    x[0, 1] = float("nan")
    c = x.cuda()
    idx = jitorch.tensor([3, 0, 3])
    same(c.index_select(0, idx.cuda()), x.index_select(0, idx), what="index_select f16")
    gi = jitorch.tensor([[0, 4], [1, 1], [2, 0], [3, 3]])
    same(c.gather(1, gi.cuda()), x.gather(1, gi), what="gather f16")
    same(c[idx.cuda()], x[idx], what="x[idx] f16")
    m = x > 0
    same(c[m.cuda()], x[m], what="masked_select f16")
    same(jitorch.nonzero(c), jitorch.nonzero(x), what="nonzero f16")
    y, yc = x.clone(), c.clone()
    y[jitorch.tensor([0, 2])] = 7.5
    yc[jitorch.tensor([0, 2]).cuda()] = 7.5
    same(yc, y, what="index_put f16")
    y.index_put_((jitorch.tensor([1, 1]),), jitorch.ones(5).half(), accumulate=True)
    yc.index_put_((jitorch.tensor([1, 1]).cuda(),), jitorch.ones(5).half().cuda(), accumulate=True)
    same(yc, y, what="index_put accumulate f16")
    same(c.masked_scatter(m.cuda(), jitorch.arange(20.0).half().cuda()), x.masked_scatter(m, jitorch.arange(20.0).half()),
         what="masked_scatter f16")
    same(c.take(jitorch.tensor([7, 0]).cuda()), x.take(jitorch.tensor([7, 0])), what="take f16")


def test_flip_roll_tri_searchsorted_logcumsumexp_vs_cpu():
    x = _x((3, 4, 5), seed=14)
    c = x.cuda()
    same(c.flip(0, 2), x.flip(0, 2), what="flip")
    same(c.roll(2, 1), x.roll(2, 1), what="roll")
    same(c.roll((1, -3), (0, 2)), x.roll((1, -3), (0, 2)), what="roll two dims")
    same(c.roll(7), x.roll(7), what="roll flattened")
    same(c.tril(1), x.tril(1), what="tril")
    same(c.triu(-1), x.triu(-1), what="triu")
    same(c.logcumsumexp(1), x.logcumsumexp(1), what="logcumsumexp")
    seq = jitorch.sort(_x((2, 6), seed=15))[0]
    seq[1, 5] = float("nan")
    v = _x((2, 3), seed=16)
    v[0, 0] = float("nan")
    for right in (False, True):
        same(jitorch.searchsorted(seq.cuda(), v.cuda(), right=right), jitorch.searchsorted(seq, v, right=right),
             what=f"searchsorted right={right}")
        s1, v1 = jitorch.tensor([1, 2, 2, 3]), jitorch.tensor([2, 0, 5, 3])
        same(jitorch.searchsorted(s1.cuda(), v1.cuda(), right=right), jitorch.searchsorted(s1, v1, right=right),
             what="searchsorted int 1-d")


def test_random_on_cuda_reproducible():
    jitorch.manual_seed(3)
    a = jitorch.rand(40, device="cuda")
    b = jitorch.randn(40, device="cuda", dtype=jitorch.float64)
    jitorch.manual_seed(3)
    a2 = jitorch.rand(40, device="cuda")
    assert a.device == CUDA and b.dtype is jitorch.float64
    np.testing.assert_array_equal(a.cpu().numpy(), a2.cpu().numpy())
    av = a.cpu().numpy()
    assert av.min() >= 0 and av.max() < 1 and len(np.unique(av)) == 40
    r = jitorch.randint(2, 5, (30,), device="cuda").cpu().numpy()
    assert r.min() >= 2 and r.max() < 5
    d = F.dropout(jitorch.ones(40, device="cuda"), 0.5, training=True)
    assert d.device == CUDA and set(np.unique(d.cpu().numpy())) <= {0.0, 2.0}


def test_random_records_cuda_impls():
    """impl['cuda'] of the random records (device xoroshiro draws) run directly on a cuda output."""
    from jitorch.backends import cuda as bc
    from jitorch.ops.random import Generator
    from jitorch.ops.registry import OPS

    def draw(name, dtype, seed, **attrs):
        g = Generator(device="cuda")
        g.manual_seed(seed)
        out = bc.empty((32,), dtype)
        OPS[name].impl["cuda"](out, size=(32,), generator=g, **attrs)
        assert g._offset == 32
        return bc.to_host(out)

    u = draw("uniform", np.float32, 1, low=-1.0, high=2.0)
    np.testing.assert_array_equal(u, draw("uniform", np.float32, 1, low=-1.0, high=2.0))
    assert u.min() >= -1 and u.max() < 2 and len(np.unique(u)) == 32
    assert not np.array_equal(u, draw("uniform", np.float32, 2, low=-1.0, high=2.0))
    h = draw("uniform", np.float16, 1)
    assert h.dtype == np.float16 and h.max() < 1
    n = draw("normal", np.float64, 3, mean=5.0, std=0.5)
    assert 4 < n.mean() < 6
    r = draw("randint", np.int64, 4, low=-2, high=3)
    assert r.min() >= -2 and r.max() < 3
    b = draw("bernoulli_p", np.float32, 5, p=0.5)
    assert set(np.unique(b)) <= {0.0, 1.0}
    m = draw("dropout_mask", np.float32, 6, p=0.25)
    assert set(np.unique(m)) <= {0.0, np.float32(4 / 3)}
    e = draw("exponential", np.float32, 7, lambd=1.0)
    assert e.min() >= 0


# ------------------------------------------------------------------ training

def _pair(make, seed=0):
    jitorch.manual_seed(seed)
    cpu = make()
    gpu = make()
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.to("cuda")


def _train(model, dev, x, y, opt_cls, steps=2, **opt_kw):
    opt = opt_cls(model.parameters(), **opt_kw)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x.to(dev)), y.to(dev))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _close_params(cpu, gpu, tol):
    for (name, a), (_, b) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert b.device == CUDA, name
        np.testing.assert_allclose(b.detach().cpu().numpy(), a.detach().numpy(), rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("opt_cls,kw", [(jitorch.optim.SGD, dict(lr=0.1, momentum=0.9)),
                                        (jitorch.optim.Adam, dict(lr=0.01))])
def test_mlp_training_step_matches_cpu(opt_cls, kw):
    cpu, gpu = _pair(lambda: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)))
    x = jitorch.randn(5, 6)
    y = jitorch.tensor([0, 2, 1, 1, 0])
    lc = _train(cpu, "cpu", x, y, opt_cls, **kw)
    lg = _train(gpu, "cuda", x, y, opt_cls, **kw)
    np.testing.assert_allclose(lg, lc, rtol=1e-5)
    _close_params(cpu, gpu, 1e-5)


class _CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 4, 2, stride=2, groups=1)
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)      # 8x8 -> 4x4
        x = F.relu(self.conv2(x))                      # 4x4 -> 2x2
        x = F.avg_pool2d(x, 1)
        return self.fc(x.flatten(1))


@pytest.mark.slow
def test_cnn_training_step_matches_cpu():
    cpu, gpu = _pair(_CNN, seed=1)
    x = jitorch.randn(2, 2, 8, 8)
    y = jitorch.tensor([2, 0])
    lc = _train(cpu, "cpu", x, y, jitorch.optim.SGD, steps=1, lr=0.05)
    lg = _train(gpu, "cuda", x, y, jitorch.optim.SGD, steps=1, lr=0.05)
    np.testing.assert_allclose(lg, lc, rtol=1e-5)
    _close_params(cpu, gpu, 1e-5)


@pytest.mark.slow
def test_conv_1d_3d_transposed_float16_vs_cpu():
    cases = [
        (lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, groups=2), (2, 4, 7), (6, 2, 3), (6,)),
        (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2),
         (1, 4, 3, 3), (4, 3, 3, 2), (6,)),
        (lambda x, w, b: F.conv3d(x, w, b, padding=1), (1, 2, 3, 4, 4), (2, 2, 2, 2, 2), (2,)),
    ]
    for k, (fn, xs, ws, bs) in enumerate(cases):
        x, w, b = _x(xs, seed=20 + k), _x(ws, seed=30 + k), _x(bs, seed=40 + k)
        same(fn(x.cuda(), w.cuda(), b.cuda()), fn(x, w, b), rtol=1e-4, atol=1e-5, what=f"case {k}")
    xh, wh = _x((1, 2, 5, 5), jitorch.float16, 50), _x((3, 2, 3, 3), jitorch.float16, 51)
    same(F.conv2d(xh.cuda(), wh.cuda()), F.conv2d(xh, wh), rtol=2e-3, atol=2e-2, what="float16")


def test_conv_and_pool_grads_vs_cpu():
    x = _x((1, 2, 5, 5), seed=12)
    w = _x((2, 1, 3, 3), seed=13)
    outs = {}
    for dev in ("cpu", "cuda"):
        xd = x.clone().to(dev).requires_grad_()  # fresh leaves per device
        wd = w.clone().to(dev).requires_grad_()
        y = F.conv2d(xd, wd, padding=1, groups=2)
        z = F.max_pool2d(y, 2, stride=1) + F.adaptive_avg_pool2d(y, 2).sum()
        z.sum().backward()
        outs[dev] = (y, xd.grad, wd.grad)
    for what, a, b in zip(("y", "dx", "dw"), outs["cpu"], outs["cuda"]):
        same(b, a, rtol=1e-5, atol=1e-5, what=what)


@pytest.mark.slow
def test_gpu_check_runs_on_the_simulator(tmp_path):
    """benchmarks/gpu_check.py --sim: every benchmark runs on tiny sizes and the results files are written."""
    import json
    import os
    import pathlib
    import subprocess
    import sys
    root = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    p = subprocess.run([sys.executable, str(root / "benchmarks" / "gpu_check.py"), str(tmp_path), "--sim"],
                       cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    assert res["mode"].startswith("simulator")
    assert set(res["benchmarks"]) == {"chain", "matmul", "softmax", "mlp_step"}
    for name, r in res["benchmarks"].items():
        assert "error" not in r, (name, r)
    assert res["benchmarks"]["matmul"]["max_rel_err_first_rows"] < 1e-5
    assert math.isfinite(res["benchmarks"]["mlp_step"]["jitorch_loss"])
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| matmul | jitorch_TFLOPs |" in md


class _Mixed(nn.Module):
    """Embedding + LayerNorm, Conv2d + BatchNorm2d + GELU + adaptive pooling, cat, Dropout, Linear."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.ln = nn.LayerNorm(4)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(4 + 2, 3)
        self.drop = nn.Dropout(0.1)

    def forward(self, tok, img):
        a = self.ln(self.emb(tok)).mean(1)
        b = F.adaptive_avg_pool2d(F.gelu(self.bn(self.conv(img))), 1).flatten(1)
        return self.fc(self.drop(jitorch.cat([a, b], 1)))


@pytest.mark.slow
def test_mixed_layers_training_step_matches_cpu():
    cpu, gpu = _pair(_Mixed, seed=2)
    tok = jitorch.randint(0, 10, (3, 5))
    img = jitorch.randn(3, 1, 4, 4)
    y = jitorch.tensor([0, 2, 1])
    losses = []
    # cuda draws its dropout mask on the device (another stream than cpu's): the cpu run gets the mask the cuda
    # run draws, so both steps see the same one
    jitorch.manual_seed(1)
    mask = F._dropout_mask((3, 6), 0.1, jitorch.ones(1, device="cuda"))
    real_mask = F._dropout_mask
    for model, dev in ((cpu, "cpu"), (gpu, "cuda")):
        jitorch.manual_seed(1)
        F._dropout_mask = real_mask if dev == "cuda" else (lambda shape, p, like: mask.to(like.device))
        opt = jitorch.optim.SGD(model.parameters(), lr=0.1)
        try:
            loss = F.cross_entropy(model(tok.to(dev), img.to(dev)), y.to(dev))
        finally:
            F._dropout_mask = real_mask
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    _close_params(cpu, gpu, 1e-5)
    np.testing.assert_allclose(gpu.bn.running_var.cpu().numpy(), cpu.bn.running_var.numpy(), rtol=1e-5)


@pytest.mark.slow
def test_attention_and_lstm_with_state_match_cpu():
    q = jitorch.randn(2, 3, 4)
    for make in (lambda: nn.MultiheadAttention(4, 2, batch_first=True),
                 lambda: nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True)):
        cpu, gpu = _pair(make, seed=3)
        want = cpu(q, q, q)[0] if isinstance(cpu, nn.MultiheadAttention) else cpu(q)
        got = gpu(q.cuda(), q.cuda(), q.cuda())[0] if isinstance(gpu, nn.MultiheadAttention) else gpu(q.cuda())
        same(got, want, rtol=1e-5, atol=1e-6, what=type(cpu).__name__)
    cpu, gpu = _pair(lambda: nn.LSTM(3, 4, batch_first=True), seed=4)
    x, h = jitorch.randn(2, 3, 3), jitorch.zeros(1, 2, 4)
    want = cpu(x, (h, h))[0]
    got = gpu(x.cuda(), (h.cuda(), h.cuda()))[0]
    want.sum().backward()
    got.sum().backward()
    same(got, want, what="lstm")
    same(gpu.weight_ih_l0.grad, cpu.weight_ih_l0.grad, rtol=1e-5, atol=1e-6, what="lstm grad")

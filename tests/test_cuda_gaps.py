"""The ops that were cpu-only on cuda (scatter reduce='prod', repeat_interleave, unique, ...), against the
same call on cpu; and the op-table check that every op has a cuda impl, up to a documented allow-list.

Runs on numba's CUDA simulator (tests/conftest.py), so shapes are tiny.
"""
from __future__ import annotations

import numpy as np
import pytest

import jitorch
from jitorch.ops.registry import OPS

if not jitorch.cuda.is_available():  # pragma: no cover - conftest enables the simulator
    pytest.skip("cuda is not available (no GPU and NUMBA_ENABLE_CUDASIM is not set)", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

CUDA = jitorch.device("cuda")



def same(got, want, what=""):
    assert got.device == CUDA, what
    assert got.dtype is want.dtype, f"{what}: {got.dtype} != {want.dtype}"
    assert tuple(got.shape) == tuple(want.shape), f"{what}: {tuple(got.shape)} != {tuple(want.shape)}"
    np.testing.assert_array_equal(got.cpu().numpy(), want.numpy(), err_msg=what)


def test_every_table_op_has_a_cuda_impl():
    """No allow-list: every record of the op table runs on cuda (randperm was the last one)."""
    missing = sorted(name for name, op in OPS.items() if "cuda" not in op.impl)
    assert not missing, f"ops without impl['cuda']: {missing}"
    assert callable(OPS["randperm"].impl["cuda"])


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "float16"])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_reduce_prod(dtype, include_self, dim):
    rng = np.random.default_rng(3)
    dt = getattr(jitorch, dtype)
    x = jitorch.tensor(rng.integers(-3, 4, (3, 4)).astype(np.float64)).to(dt)
    src = jitorch.tensor(rng.integers(-2, 3, (3, 4)).astype(np.float64)).to(dt)
    idx = jitorch.tensor(rng.integers(0, x.shape[dim], (2, 3)))
    want = x.scatter_reduce(dim, idx, src[:2, :3], "prod", include_self=include_self)
    got = x.cuda().scatter_reduce(dim, idx.cuda(), src[:2, :3].cuda(), "prod", include_self=include_self)
    same(got, want, f"{dtype} include_self={include_self} dim={dim}")
    # reference: NumPy loop
    ref = x.numpy().astype(np.float64).copy()
    seen = np.zeros(ref.shape, bool)
    s, ii = src.numpy().astype(np.float64), idx.numpy()
    for a in range(2):
        for b in range(3):
            pos = (ii[a, b], b) if dim == 0 else (a, ii[a, b])
            if not include_self and not seen[pos]:
                ref[pos] = s[a, b]
            else:
                ref[pos] *= s[a, b]
            seen[pos] = True
    np.testing.assert_array_equal(got.cpu().numpy().astype(np.float64), ref)


def test_scatter_reduce_prod_checks_indices_on_cuda():
    x = jitorch.ones(3, device="cuda")
    with pytest.raises(IndexError):
        x.scatter_reduce(0, jitorch.tensor([0, 5], device="cuda"), jitorch.ones(2, device="cuda"), "prod")


@pytest.mark.parametrize("case", [
    ("float32", (5,), [1, 0, 3, 2, 1], None),
    ("int64", (2, 3), [2, 0, 1], 1),
    ("float16", (3, 2), [0, 2, 1], 0),
    ("bool", (4,), 2, 0),
    ("float64", (2, 3), None, None),
])
def test_repeat_interleave(case):
    dtype, shape, reps, dim = case
    rng = np.random.default_rng(5)
    x = jitorch.tensor(rng.integers(-5, 6, shape).astype(np.float64)).to(getattr(jitorch, dtype))
    if reps is None:  # repeat_interleave(repeats)
        r = jitorch.tensor([2, 0, 3])
        same(jitorch.repeat_interleave(r.cuda()), jitorch.repeat_interleave(r), "repeats only")
        np.testing.assert_array_equal(jitorch.repeat_interleave(r.cuda()).cpu().numpy(),
                                      np.repeat(np.arange(3), [2, 0, 3]))
        return
    r = jitorch.tensor(reps) if isinstance(reps, list) else reps
    rc = r.cuda() if isinstance(r, jitorch.Tensor) else r
    want = x.repeat_interleave(r, dim)
    got = x.cuda().repeat_interleave(rc, dim)
    same(got, want, str(case))
    np.testing.assert_array_equal(got.cpu().numpy(), np.repeat(x.numpy(), reps, axis=0 if dim is None else dim)
                                  if dim is not None else np.repeat(x.numpy().reshape(-1), reps))


def test_repeat_interleave_negative_repeats_raise_on_cuda():
    with pytest.raises(RuntimeError, match="negative"):
        jitorch.ones(2, device="cuda").repeat_interleave(jitorch.tensor([1, -1], device="cuda"), 0)


def test_repeat_interleave_backward_on_cuda():
    x = jitorch.tensor([1.0, 2.0, 3.0], device="cuda", requires_grad=True)
    y = x.repeat_interleave(jitorch.tensor([2, 0, 1], device="cuda"), 0)
    (y * jitorch.tensor([1.0, 2.0, 4.0], device="cuda")).sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [3.0, 0.0, 4.0])


@pytest.mark.parametrize("dtype", ["float32", "int64", "float16", "int32", "bool"])
def test_unique(dtype):
    rng = np.random.default_rng(7)
    x = jitorch.tensor(rng.integers(-3, 4, (3, 5)).astype(np.float64)).to(getattr(jitorch, dtype))
    want = jitorch.unique(x, return_inverse=True, return_counts=True)
    got = jitorch.unique(x.cuda(), return_inverse=True, return_counts=True)
    for g, w, what in zip(got, want, ("values", "inverse", "counts")):
        same(g, w, f"{dtype} {what}")
    v, i, c = np.unique(x.numpy(), return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(got[0].cpu().numpy(), v)
    np.testing.assert_array_equal(got[1].cpu().numpy(), i.reshape(x.shape))
    np.testing.assert_array_equal(got[2].cpu().numpy(), c)


def test_unique_nan_and_empty():
    x = jitorch.tensor([1.0, float("nan"), 1.0, float("nan"), -2.0])
    want = jitorch.unique(x, return_counts=True)
    got = jitorch.unique(x.cuda(), return_counts=True)
    np.testing.assert_array_equal(got[0].cpu().numpy(), want[0].numpy())
    np.testing.assert_array_equal(got[1].cpu().numpy(), want[1].numpy())
    e = jitorch.unique(jitorch.empty(0, device="cuda"))
    assert e.device == CUDA and tuple(e.shape) == (0,)


# ------------------------------------------------------------------ RNNs without an initial state

@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_recurrent_modules_default_state_on_cuda(kind):
    import jitorch.nn as nn
    jitorch.manual_seed(0)
    cell = kind.endswith("Cell")
    m = getattr(nn, kind)(3, 4) if cell else getattr(nn, kind)(3, 4, num_layers=1)
    x = jitorch.randn(2, 3) if cell else jitorch.randn(2, 2, 3)
    want = m(x)
    m.cuda()
    got = m(x.cuda())
    flat = lambda o: [t for t in (o if isinstance(o, tuple) else (o,)) for t in (t if isinstance(t, tuple) else (t,))]
    for g, w in zip(flat(got), flat(want)):
        assert g.device == CUDA
        np.testing.assert_allclose(g.detach().cpu().numpy(), w.detach().numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ optimizers on cuda

OPTIMIZERS = [
    ("RMSprop", dict(lr=0.01)), ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1)), ("Adadelta", dict(lr=1.0, weight_decay=0.1)),
    ("Adamax", dict(lr=0.01, weight_decay=0.1)), ("Adamax", dict(lr=0.01, maximize=True)),
    ("NAdam", dict(lr=0.01)), ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01)), ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
]


@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_optimizer_steps_on_cuda_match_cpu(name, kw, dtype):
    import jitorch.optim as optim
    rng = np.random.default_rng(11)
    dt = getattr(jitorch, dtype)
    w0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(7)]  # 7 steps: RAdam rectifies from step 6
    res = {}
    for dev in ("cpu", "cuda"):
        p = jitorch.nn.Parameter(jitorch.tensor(w0, dtype=dt, device=dev))
        opt = getattr(optim, name)([p], **kw)
        for g in grads:
            p.grad = jitorch.tensor(g, dtype=dt, device=dev)
            opt.step()
        assert p.device.type == dev
        res[dev] = (p.detach().cpu().numpy(), {k: v.cpu().numpy() for k, v in opt.state[p].items()
                                               if isinstance(v, jitorch.Tensor) and v.dim()})
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(res["cuda"][0], res["cpu"][0], **tol)
    assert res["cuda"][1].keys() == res["cpu"][1].keys() and res["cpu"][1]
    for k in res["cpu"][1]:
        np.testing.assert_allclose(res["cuda"][1][k], res["cpu"][1][k], **tol, err_msg=k)
    assert not np.allclose(res["cpu"][0], w0)  # the step moved the parameter


# ------------------------------------------------------------------ multinomial on cuda

def test_multinomial_on_cuda_distribution():
    """Device draws (xoroshiro128+) are not the cpu's numbers (Philox): check validity and frequencies."""
    jitorch.manual_seed(0)
    probs = jitorch.tensor([[0.1, 0.0, 0.6, 0.3], [1.0, 1.0, 1.0, 1.0]], device="cuda")
    s = jitorch.multinomial(probs, 300, replacement=True)
    assert s.device == CUDA and s.dtype is jitorch.int64 and tuple(s.shape) == (2, 300)
    a = s.cpu().numpy()
    assert a.min() >= 0 and a.max() < 4 and not (a[0] == 1).any()
    freq = np.stack([np.bincount(r, minlength=4) / 300 for r in a])
    want = np.array([[0.1, 0.0, 0.6, 0.3], [0.25] * 4])
    assert np.abs(freq - want).max() < 0.1, freq  # ~4 sigma at n=300
    w = jitorch.multinomial(probs, 3, replacement=False).cpu().numpy()  # row 0 has 3 positive categories
    for r in w:
        assert len(set(r.tolist())) == 3
    assert 1 not in w[0].tolist()
    one = jitorch.multinomial(jitorch.tensor([0.0, 2.0, 0.0], device="cuda"), 1)
    assert tuple(one.shape) == (1,) and one.item() == 1
    jitorch.manual_seed(0)
    again = jitorch.multinomial(probs, 300, replacement=True)
    np.testing.assert_array_equal(again.cpu().numpy(), a)  # seeded: reproducible


def test_multinomial_on_cuda_rejects_bad_probabilities():
    with pytest.raises(RuntimeError, match="inf"):
        jitorch.multinomial(jitorch.tensor([0.5, -1.0], device="cuda"), 1)
    with pytest.raises(RuntimeError, match="not enough"):
        jitorch.multinomial(jitorch.tensor([0.5, 0.0], device="cuda"), 2)


# ------------------------------------------------------------------ real-GPU readiness of the new kernels

_PTX_SCRIPT = r"""
import numpy as np
from numba import cuda, types as T
from numba.cuda import dispatcher as _disp
from numba.cuda.random import xoroshiro128p_type
try:
    from numba.cuda.cudadrv import nvvm
    nvvm.NVVM()
except Exception:
    print("NO-NVVM")
    raise SystemExit(0)
class _Dev:
    compute_capability = (9, 0)
_disp.get_current_device = lambda: _Dev()  # device functions ask the current device for its cc
import jitorch.kernels.cuda.gaps as G, jitorch.kernels.cuda.optim as O
n = 0
for f in (T.float32, T.float64):
    a1, a3 = f[::1], f[:, :, ::1]
    i1, i3, i2, d2 = T.int64[::1], T.int64[:, :, ::1], T.int64[:, ::1], T.float64[:, ::1]
    sigs = [(G._scatter_prod_k, (a3, i3, a3, T.boolean, a3)), (G._repeat_index_k, (i1, i1)),
            (G._unique_flags_k, (a1, i1)), (G._unique_scatter_k, (a1, i1, i1, i1, a1, i1, i1)),
            (G._unique_counts_k, (i1, T.int64, T.int64, i1)),
            (G._multinomial_k, (d2, T.int64, T.boolean, xoroshiro128p_type[::1], d2, i2)),
            (O._rmsprop_k, (a1,) * 5 + (f,) * 6 + (T.boolean, f, T.boolean)), (O._adagrad_k, (a1,) * 3 + (f,) * 4),
            (O._adadelta_k, (a1,) * 4 + (f,) * 6), (O._adamax_k, (a1,) * 4 + (f,) * 7),
            (O._nadam_k, (a1,) * 4 + (f,) * 11 + (T.boolean,)),
            (O._radam_k, (a1,) * 4 + (f,) * 11 + (T.boolean, f, T.boolean))]
    for k, sig in sigs:
        cuda.compile_ptx(k.py_func, sig, cc=(9, 0))
        n += 1
print("COMPILED", n)
"""


@pytest.mark.slow
def test_new_kernels_compile_to_ptx_for_a_real_gpu():
    """The simulator runs kernels as Python; libNVVM (no GPU needed) says whether the CUDA target accepts them."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = subprocess.run([sys.executable, "-c", _PTX_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    if "NO-NVVM" in r.stdout:
        pytest.skip("libNVVM is not installed")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "COMPILED 24" in r.stdout, r.stdout + r.stderr[-3000:]

"""jitorch.optim: every optimizer against a NumPy re-implementation of torch's documented update
formulas (float64, several steps, each option on and off), against torch itself when installed,
and the Optimizer machinery (groups, state dicts, zero_grad, hooks, layouts)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import jitorch
import jitorch.optim as optim

try:
    import torch
except ImportError:  # pragma: no cover - torch is an optional reference
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch (optional reference) is not installed")

STEPS = 6
SHAPE = (3, 5)


# ============================================================== NumPy references (documented formulas)
def _g(g, p, maximize, wd):
    g = -g if maximize else g
    return g + wd * p if wd else g


def ref_sgd(p, grads, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False):
    buf = None
    for g in grads:
        g = _g(g, p, maximize, weight_decay)
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def ref_adam(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False,
             decoupled=False):
    b1, b2 = betas
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vmax = np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        if weight_decay:
            if decoupled:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1 ** t)
        if amsgrad:
            vmax = np.maximum(vmax, v)
            vhat = vmax / (1 - b2 ** t)
        else:
            vhat = v / (1 - b2 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


def ref_adamw(p, grads, weight_decay=1e-2, **kw):
    return ref_adam(p, grads, weight_decay=weight_decay, decoupled=True, **kw)


def ref_rmsprop(p, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, maximize=False):
    v = np.zeros_like(p)
    gavg = np.zeros_like(p)
    buf = np.zeros_like(p)
    for g in grads:
        g = _g(g, p, maximize, weight_decay)
        v = alpha * v + (1 - alpha) * g * g
        vt = v
        if centered:
            gavg = alpha * gavg + (1 - alpha) * g
            vt = v - gavg * gavg
        if momentum > 0:
            buf = momentum * buf + g / (np.sqrt(vt) + eps)
            p = p - lr * buf
        else:
            p = p - lr * g / (np.sqrt(vt) + eps)
    return p


def ref_adagrad(p, grads, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                maximize=False):
    s = np.full_like(p, initial_accumulator_value)
    for t, g in enumerate(grads, 1):
        g = _g(g, p, maximize, weight_decay)
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p = p - clr * g / (np.sqrt(s) + eps)
    return p


def ref_adadelta(p, grads, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False):
    v = np.zeros_like(p)
    u = np.zeros_like(p)
    for g in grads:
        g = _g(g, p, maximize, weight_decay)
        v = rho * v + (1 - rho) * g * g
        dx = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * dx * dx
        p = p - lr * dx
    return p


def ref_adamax(p, grads, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, maximize=False):
    b1, b2 = betas
    m = np.zeros_like(p)
    u = np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        g = _g(g, p, maximize, weight_decay)
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        p = p - lr * m / ((1 - b1 ** t) * u)
    return p


def ref_nadam(p, grads, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
              decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    mu_prod = 1.0
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        if weight_decay:
            if decoupled_weight_decay:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
        mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        # torch keeps mu_product in a float32 0-d tensor (the step dtype), rounded at each step
        mu_prod_t = float(np.float32(mu_prod) * np.float32(mu))
        mu_prod_next = mu_prod_t * mu_next
        mu_prod = mu_prod_t
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = mu_next * m / (1 - mu_prod_next) + (1 - mu) * g / (1 - mu_prod_t)
        vhat = v / (1 - b2 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


def ref_radam(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
              maximize=False):
    b1, b2 = betas
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        if weight_decay:
            if decoupled_weight_decay:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1 ** t)
        rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho_t > 5:
            lt = math.sqrt(1 - b2 ** t) / (np.sqrt(v) + eps)
            r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            p = p - lr * mhat * lt * r
        else:
            p = p - lr * mhat
    return p


# (optimizer name, options, reference): each option on and off
CASES = [
    ("SGD", dict(lr=0.1), ref_sgd),
    ("SGD", dict(lr=0.1, momentum=0.9), ref_sgd),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5), ref_sgd),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), ref_sgd),
    ("SGD", dict(lr=0.1, weight_decay=0.1, maximize=True), ref_sgd),
    ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=0.2, nesterov=True, maximize=True), ref_sgd),
    ("Adam", dict(lr=0.01), ref_adam),
    ("Adam", dict(lr=0.01, amsgrad=True), ref_adam),
    ("Adam", dict(lr=0.01, weight_decay=0.1), ref_adam),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-3, maximize=True), ref_adam),
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True), ref_adam),
    ("AdamW", dict(lr=0.01), ref_adamw),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True), ref_adamw),
    ("AdamW", dict(lr=0.01, weight_decay=0.0, maximize=True), ref_adamw),
    ("RMSprop", dict(lr=0.01), ref_rmsprop),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-4), ref_rmsprop),
    ("RMSprop", dict(lr=0.01, centered=True), ref_rmsprop),
    ("RMSprop", dict(lr=0.01, momentum=0.9), ref_rmsprop),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1, maximize=True), ref_rmsprop),
    ("Adagrad", dict(lr=0.1), ref_adagrad),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05), ref_adagrad),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5, weight_decay=0.1, maximize=True), ref_adagrad),
    ("Adadelta", dict(), ref_adadelta),
    ("Adadelta", dict(lr=0.5, rho=0.7), ref_adadelta),
    ("Adadelta", dict(rho=0.95, eps=1e-4, weight_decay=0.1, maximize=True), ref_adadelta),
    ("Adamax", dict(lr=0.01), ref_adamax),
    ("Adamax", dict(lr=0.01, betas=(0.7, 0.8), weight_decay=0.1, maximize=True), ref_adamax),
    ("NAdam", dict(lr=0.01), ref_nadam),
    ("NAdam", dict(lr=0.01, momentum_decay=0.05), ref_nadam),
    ("NAdam", dict(lr=0.01, weight_decay=0.1), ref_nadam),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True), ref_nadam),
    ("RAdam", dict(lr=0.01), ref_radam),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.9)), ref_radam),  # rho_t > 5 from step 6: both branches run
    ("RAdam", dict(lr=0.01, weight_decay=0.1), ref_radam),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True), ref_radam),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for n, kw, _ in CASES]


def _data(seed, dtype, steps=STEPS, shape=SHAPE):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(steps)]
    return p0, grads


def _run_jitorch(name, kw, p0, grads):
    p = jitorch.tensor(p0.copy(), requires_grad=True)
    opt = getattr(optim, name)([p], **kw)
    traj = []
    for g in grads:
        p.grad = jitorch.tensor(g)
        opt.step()
        traj.append(p._data.copy())
    return p, opt, traj


def _run_torch(name, kw, p0, grads):
    p = torch.tensor(p0.copy(), requires_grad=True)
    opt = getattr(torch.optim, name)([p], foreach=False, **kw)
    traj = []
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        traj.append(p.detach().numpy().copy())
    return traj


@pytest.mark.parametrize("name,kw,ref", CASES, ids=IDS)
def test_against_numpy_reference(name, kw, ref):
    p0, grads = _data(1, np.float64)
    _, _, traj = _run_jitorch(name, kw, p0, grads)
    for t in range(1, STEPS + 1):  # the whole trajectory, not only the end point
        np.testing.assert_allclose(traj[t - 1], ref(p0.copy(), grads[:t], **kw), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,kw,ref", CASES, ids=IDS)
def test_float32_against_numpy_reference(name, kw, ref):
    p0, grads = _data(2, np.float32)
    p, opt, traj = _run_jitorch(name, kw, p0, grads)
    assert p.dtype is jitorch.float32
    expect = ref(p0.astype(np.float64), [g.astype(np.float64) for g in grads], **kw)
    np.testing.assert_allclose(traj[-1], expect, rtol=2e-5, atol=2e-5)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kw,ref", CASES, ids=IDS)
def test_against_torch(name, kw, ref, dtype):
    p0, grads = _data(3, dtype)
    ours = _run_jitorch(name, kw, p0, grads)[2]
    theirs = _run_torch(name, kw, p0, grads)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 if dtype == np.float32 else 1e-12)


@needs_torch
@pytest.mark.parametrize("name,kw", [(n, kw) for n, kw, _ in CASES[::3]])
def test_state_dict_matches_torch(name, kw):
    p0, grads = _data(4, np.float64, steps=3)
    _, opt, _ = _run_jitorch(name, kw, p0, grads)
    tp = torch.tensor(p0.copy(), requires_grad=True)
    topt = getattr(torch.optim, name)([tp], **kw)
    for g in grads:
        tp.grad = torch.tensor(g)
        topt.step()
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert list(ours["state"]) == list(theirs["state"])
    for idx in theirs["state"]:
        assert sorted(ours["state"][idx]) == sorted(theirs["state"][idx])
        for k, v in theirs["state"][idx].items():
            if v is None:
                assert ours["state"][idx][k] is None
                continue
            mine = ours["state"][idx][k]
            assert isinstance(mine, jitorch.Tensor), k
            assert str(mine.dtype).split(".")[-1] == str(v.dtype).split(".")[-1], k
            np.testing.assert_allclose(mine._data, v.numpy(), rtol=1e-6, atol=1e-12)
    assert set(ours["param_groups"][0]) == set(theirs["param_groups"][0])
    for k, v in theirs["param_groups"][0].items():
        assert ours["param_groups"][0][k] == (list(v) if isinstance(v, list) else v), k


# ============================================================== machinery
def _param(shape=SHAPE, seed=0, dtype=np.float64):
    return jitorch.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=True)


def test_step_writes_in_place_and_bumps_version():
    p = _param()
    data, v0 = p._data, p._version
    p.grad = jitorch.ones(SHAPE, dtype=jitorch.float64)
    optim.SGD([p], lr=0.5).step()
    assert p._data is data  # same storage: views of the parameter see the update
    assert p._version == v0 + 1
    assert p.requires_grad and p.is_leaf and p.grad_fn is None


def test_views_of_param_see_update():
    p = _param()
    v = p.detach()  # shares storage
    p.grad = jitorch.ones(SHAPE, dtype=jitorch.float64)
    before = p._data.copy()
    optim.SGD([p], lr=0.25).step()
    np.testing.assert_allclose(v._data, before - 0.25)


def test_params_without_grad_are_skipped():
    a, b = _param(seed=1), _param(seed=2)
    b0 = b._data.copy()
    a.grad = jitorch.ones(SHAPE, dtype=jitorch.float64)
    opt = optim.Adam([a, b], lr=0.1)
    opt.step()
    np.testing.assert_array_equal(b._data, b0)
    assert b not in opt.state and a in opt.state


@pytest.mark.parametrize("layout", ["transposed", "sliced", "float16", "grad_other_dtype", "grad_transposed", "0d"])
def test_staged_layouts(layout):
    """Non-contiguous parameters/grads, float16 and mixed dtypes go through staged copies."""
    rng = np.random.default_rng(5)
    base = rng.standard_normal((6, 4))
    g = rng.standard_normal((6, 4))
    grad_dtype = np.float64
    if layout == "transposed":
        p = jitorch.tensor(base.T.copy()).t()  # (6, 4) view with strides of a transpose
        g_t = jitorch.tensor(g)
    elif layout == "sliced":
        full = jitorch.tensor(np.concatenate([base, base], axis=1))
        p = full[:, ::2]
        base = full._data[:, ::2].copy()
        g_t = jitorch.tensor(g)
    elif layout == "float16":
        p = jitorch.tensor(base.astype(np.float16))
        base = base.astype(np.float16).astype(np.float64)
        grad_dtype = np.float16
        g_t = jitorch.tensor(g.astype(np.float16))
    elif layout == "grad_other_dtype":
        p = jitorch.tensor(base)
        grad_dtype = np.float32
        g_t = jitorch.tensor(g.astype(np.float32))
    elif layout == "grad_transposed":
        p = jitorch.tensor(base)
        g_t = jitorch.tensor(g.T.copy()).t()
    else:
        base, g = np.array(1.5), np.array(0.25)
        p = jitorch.tensor(base)
        g_t = jitorch.tensor(g)
    p.requires_grad_(True)
    if layout in ("transposed", "sliced"):
        assert not p.is_contiguous()
    p.grad = g_t
    gg = np.asarray(g).astype(grad_dtype).astype(np.float64)
    opt = optim.Adam([p], lr=0.1)
    for _ in range(3):
        opt.step()
    expect = ref_adam(base.astype(np.float64), [gg] * 3, lr=0.1)
    tol = 3e-3 if layout == "float16" else 1e-6
    np.testing.assert_allclose(p._data.astype(np.float64), expect, rtol=tol, atol=tol)
    assert opt.state[p]["exp_avg"].dtype is p.dtype


def test_integer_param_rejected():
    p = jitorch.tensor([1, 2, 3])
    p.grad = jitorch.tensor([1, 1, 1])
    with pytest.raises(TypeError, match="floating-point"):
        optim.SGD([p], lr=0.1).step()


def test_grad_shape_mismatch():
    p = _param()
    p.grad = jitorch.ones((2, 2), dtype=jitorch.float64)
    with pytest.raises(RuntimeError, match="shape"):
        optim.SGD([p], lr=0.1).step()


def test_constructor_validation():
    p = _param()
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.Adam(p)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.Adam([1.0])
    with pytest.raises(TypeError, match="ordered collections"):
        optim.Adam([{"params": {p}}])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(NotImplementedError, match="differentiable"):
        optim.Adam([p], differentiable=True)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([p, p], lr=0.1)


def test_param_groups_and_add_param_group():
    a, b, c = _param(seed=1), _param(seed=2), _param(seed=3)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[0]["momentum"] == 0
    opt.add_param_group({"params": [c], "lr": 0.01})
    assert len(opt.param_groups) == 3 and opt.param_groups[2]["nesterov"] is False
    for t in (a, b, c):
        t.grad = jitorch.ones(SHAPE, dtype=jitorch.float64)
    a0, b0, c0 = a._data.copy(), b._data.copy(), c._data.copy()
    opt.step()
    np.testing.assert_allclose(a._data, a0 - 0.1)
    np.testing.assert_allclose(b._data, b0 - 0.5)
    np.testing.assert_allclose(c._data, c0 - 0.01)
    # changing a group's lr (what schedulers do) takes effect at the next step
    opt.param_groups[0]["lr"] = 1.0
    opt.step()
    np.testing.assert_allclose(a._data, a0 - 1.1)


def test_named_params():
    a, b = _param(seed=1), _param(seed=2)
    opt = optim.Adam([("w", a), ("b", b)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]
    with pytest.raises(ValueError, match="with/without names"):
        opt.add_param_group({"params": [_param(seed=3)]})


def test_zero_grad():
    p = _param()
    opt = optim.SGD([p], lr=0.1)
    p.grad = jitorch.ones(SHAPE, dtype=jitorch.float64)
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and not g._data.any()
    opt.zero_grad()
    assert p.grad is None


def test_closure_returns_loss():
    p = _param()
    calls = []

    def closure():
        calls.append(1)
        p.grad = jitorch.ones(SHAPE, dtype=jitorch.float64)
        return 42.0

    assert optim.SGD([p], lr=0.1).step(closure) == 42.0
    assert calls == [1]


@pytest.mark.parametrize("name,kw,ref", CASES[::2], ids=IDS[::2])
def test_state_dict_round_trip_resumes_identically(name, kw, ref):
    p0, grads = _data(6, np.float64, steps=6)
    # uninterrupted run
    _, _, full = _run_jitorch(name, kw, p0, grads)
    # 3 steps, state_dict, a fresh optimizer on a copy of the parameter, load, 3 more steps
    p, opt, _ = _run_jitorch(name, kw, p0, grads[:3])
    sd = opt.state_dict()
    q = jitorch.tensor(p._data.copy(), requires_grad=True)
    opt2 = getattr(optim, name)([q], **kw)
    opt2.load_state_dict(sd)
    for g in grads[3:]:
        q.grad = jitorch.tensor(g)
        opt2.step()
    # (NAdam's float32 mu_product comes back as float64, cast like all non-step state, as in torch)
    np.testing.assert_allclose(q._data, full[-1], rtol=1e-9 if name == "NAdam" else 1e-13, atol=1e-14)
    # the loaded state is a copy: stepping opt2 did not touch opt's tensors
    for k, v in opt.state[p].items():
        if isinstance(v, jitorch.Tensor) and k != "step" and v.ndim:
            assert not np.shares_memory(v._data, opt2.state[q][k]._data)


def test_state_dict_format():
    a, b = _param(seed=1), _param(seed=2)
    opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, amsgrad=True)
    a.grad = jitorch.ones(SHAPE, dtype=jitorch.float64)
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert list(sd["state"]) == [0]  # only a has state
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert sd["state"][0]["step"].ndim == 0 and float(sd["state"][0]["step"]) == 1.0
    assert sd["state"][0]["step"].dtype is jitorch.float32
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["betas"] == (0.9, 0.999)


def test_load_state_dict_validation_and_cast():
    a = _param(seed=1)
    opt = optim.Adam([a], lr=0.1)
    a.grad = jitorch.ones(SHAPE, dtype=jitorch.float64)
    opt.step()
    sd = opt.state_dict()
    b32 = jitorch.tensor(np.zeros(SHAPE, np.float32), requires_grad=True)
    opt32 = optim.Adam([b32], lr=0.3)
    opt32.load_state_dict(sd)
    st = opt32.state[b32]
    assert st["exp_avg"].dtype is jitorch.float32  # cast to the parameter's dtype
    assert st["step"].dtype is jitorch.float32  # step keeps its dtype
    assert opt32.param_groups[0]["lr"] == 0.1 and opt32.param_groups[0]["params"][0] is b32
    with pytest.raises(ValueError, match="number of parameter groups"):
        optim.Adam([{"params": [_param()]}, {"params": [_param()]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.Adam([_param(), _param()]).load_state_dict(sd)


def test_load_state_dict_accepts_python_number_step():
    a = _param(seed=1)
    opt = optim.Adam([a], lr=0.1)
    a.grad = jitorch.ones(SHAPE, dtype=jitorch.float64)
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["step"] = 1  # older torch checkpoints store a number
    b = jitorch.tensor(a._data.copy(), requires_grad=True)
    opt2 = optim.Adam([b], lr=0.1)
    opt2.load_state_dict(sd)
    b.grad = a.grad
    opt2.step()
    assert float(opt2.state[b]["step"]) == 2.0


def test_step_hooks():
    p = _param()
    p.grad = jitorch.ones(SHAPE, dtype=jitorch.float64)
    opt = optim.SGD([p], lr=0.1)
    seen = []
    h1 = opt.register_step_pre_hook(lambda o, a, k: seen.append("pre"))
    h2 = opt.register_step_post_hook(lambda o, a, k: seen.append("post"))
    h3 = optim.optimizer.register_optimizer_step_pre_hook(lambda o, a, k: seen.append("global"))
    opt.step()
    assert seen == ["global", "pre", "post"]
    for h in (h1, h2, h3):
        h.remove()
    opt.step()
    assert seen == ["global", "pre", "post"]


def test_subclass_calling_super_step_runs_hooks_once():
    class MySGD(optim.SGD):
        def step(self, closure=None):
            return super().step(closure)

    p = _param()
    p.grad = jitorch.ones(SHAPE, dtype=jitorch.float64)
    optim.SGD([_param()], lr=0.1)  # patch SGD.step first
    opt = MySGD([p], lr=0.1)
    seen = []
    opt.register_step_pre_hook(lambda o, a, k: seen.append(1))
    opt.step()
    assert seen == [1]


def test_adagrad_state_created_in_constructor():
    p = _param()
    opt = optim.Adagrad([p], initial_accumulator_value=0.25)
    assert float(opt.state[p]["step"]) == 0.0
    np.testing.assert_array_equal(opt.state[p]["sum"]._data, np.full(SHAPE, 0.25))


def test_repr():
    opt = optim.SGD([_param()], lr=0.1)
    assert "Parameter Group 0" in repr(opt) and "lr: 0.1" in repr(opt)


def test_parallel_kernels_match_serial():
    """Large parameters run the prange kernels; they must equal the serial ones."""
    from jitorch.kernels import optim as K
    rng = np.random.default_rng(7)
    n = 1000
    p = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    outs = []
    for variant in (0, 1):
        pp, m, v = p.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
        for step in (1, 2):
            K._adam[variant](pp, g, m, v, np.empty(0, np.float32), np.float32(1), np.float32(0), np.float32(0.1),
                             np.float32(0.9), np.float32(0.999), np.float32(0.001), np.float32(0.01 / (1 - 0.9 ** step)),
                             np.float32((1 - 0.999 ** step) ** 0.5), np.float32(1e-8), False, False, False)
        outs.append(pp)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6, atol=1e-7)  # vectorized differently: 1-ulp FMA differences


def test_no_warnings_on_plain_step():
    p = _param()
    p.grad = jitorch.ones(SHAPE, dtype=jitorch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.AdamW([p]).step()


def test_step_after_real_backward():
    """Grads from the autograd engine; the in-place update must not trip autograd's leaf checks."""
    if not hasattr(jitorch.Tensor, "backward"):
        pytest.skip("autograd not available")
    w = jitorch.tensor([1.0, 2.0], dtype=jitorch.float64, requires_grad=True)
    x = jitorch.tensor([3.0, 4.0], dtype=jitorch.float64)
    opt = optim.Adam([w], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (w * w * x).backward(jitorch.ones(2, dtype=jitorch.float64))
        np.testing.assert_allclose(w.grad._data, 2 * w._data * x._data)
        opt.step()
        assert w.is_leaf and w.requires_grad and w.grad_fn is None
    np.testing.assert_allclose(w._data, _replay_adam([1.0, 2.0], [3.0, 4.0], 3, 0.1))
    with jitorch.no_grad():
        opt.step()  # also fine under no_grad


def _replay_adam(w0, x, steps, lr):
    w = np.array(w0)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, steps + 1):
        g = 2 * w * np.array(x)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return w

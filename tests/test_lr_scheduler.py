"""jitorch.optim.lr_scheduler: each scheduler's lr trajectory against hand-computed closed forms and
against torch (when installed), state_dict round trips, and torch's step-order semantics."""
from __future__ import annotations

import math
import warnings
from bisect import bisect_right

import numpy as np
import pytest

import jitorch
import jitorch.optim as optim
from jitorch.optim import lr_scheduler as S

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch (optional reference) is not installed")

BASES = (0.1, 0.5)  # two param groups with different lrs
EPOCHS = 14


def _make_opt(mod, lib, cls="SGD", **kw):
    a = lib.zeros(2, requires_grad=True)
    b = lib.zeros(3, requires_grad=True)
    return getattr(mod, cls)([{"params": [a], "lr": BASES[0]}, {"params": [b], "lr": BASES[1]}], **kw)


def _cos_warm(e, T_0, T_mult):
    """T_cur, T_i of SGDR after ``e`` whole epochs."""
    T_i, T_cur = T_0, e
    while T_cur >= T_i:
        T_cur -= T_i
        T_i *= T_mult
    return T_cur, T_i


def _onecycle(e, base_max, total, pct=0.3, div=25.0, final_div=1e4):
    init = base_max / div
    lo = init / final_div
    up_end = float(pct * total) - 1
    if e <= up_end:
        pct_ = e / up_end
        return init + (base_max - init) * (1 - math.cos(math.pi * pct_)) / 2
    pct_ = (e - up_end) / (total - 1 - up_end)
    return lo + (base_max - lo) * (1 + math.cos(math.pi * pct_)) / 2


def _cyclic(e, lo, hi, up):
    cycle = math.floor(1 + e / (2 * up))
    x = abs(e / up - 2 * cycle + 1)
    return lo + (hi - lo) * max(0.0, 1 - x)


# name -> (factory(mod, opt) -> scheduler, closed form(epoch, group index, base lr) -> lr)
CASES = {
    "StepLR": (lambda m, o: m.StepLR(o, step_size=3, gamma=0.5), lambda e, i, b: b * 0.5 ** (e // 3)),
    "MultiStepLR": (lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.1),
                    lambda e, i, b: b * 0.1 ** bisect_right([2, 5, 5, 9], e)),
    "ExponentialLR": (lambda m, o: m.ExponentialLR(o, gamma=0.9), lambda e, i, b: b * 0.9 ** e),
    "CosineAnnealingLR": (lambda m, o: m.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
                          lambda e, i, b: 0.01 + (b - 0.01) * (1 + math.cos(math.pi * e / 5)) / 2),
    "CosineAnnealingWarmRestarts": (
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001),
        lambda e, i, b: 0.001 + (b - 0.001) * (1 + math.cos(math.pi * _cos_warm(e, 3, 2)[0] / _cos_warm(e, 3, 2)[1])) / 2),
    "LambdaLR": (lambda m, o: m.LambdaLR(o, lr_lambda=[lambda e: 0.95 ** e, lambda e: 1.0 / (e + 1)]),
                 lambda e, i, b: b * (0.95 ** e if i == 0 else 1.0 / (e + 1))),
    "MultiplicativeLR": (lambda m, o: m.MultiplicativeLR(o, lr_lambda=lambda e: 0.9), lambda e, i, b: b * 0.9 ** e),
    "LinearLR": (lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4),
                 lambda e, i, b: b * (0.25 + 0.75 * min(e, 4) / 4)),
    "LinearLR-down": (lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=6),
                      lambda e, i, b: b * (1.0 - 0.9 * min(e, 6) / 6)),
    "ConstantLR": (lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=3), lambda e, i, b: b * (0.5 if e < 3 else 1.0)),
    "PolynomialLR": (lambda m, o: m.PolynomialLR(o, total_iters=6, power=2.0),
                     lambda e, i, b: b * (1 - min(e, 6) / 6) ** 2),
    "SequentialLR": (
        lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, total_iters=3),
                                        m.ExponentialLR(o, gamma=0.8)], milestones=[4]),
        lambda e, i, b: b * (0.1 + 0.9 * min(e, 3) / 3) if e < 4 else b * 0.8 ** (e - 4)),
    "OneCycleLR": (lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=EPOCHS + 1),
                   lambda e, i, b: _onecycle(e, [1.0, 2.0][i], EPOCHS + 1)),
    "CyclicLR": (lambda m, o: m.CyclicLR(o, base_lr=0.1, max_lr=1.0, step_size_up=3),
                 lambda e, i, b: _cyclic(e, 0.1, 1.0, 3)),
}


def _trajectory(mod, lib, factory, opt_cls="SGD", epochs=EPOCHS, **opt_kw):
    opt = _make_opt(mod, lib, opt_cls, **opt_kw)
    sched = factory(mod.lr_scheduler, opt)
    out = [list(sched.get_last_lr())]
    for _ in range(epochs):
        opt.step()
        sched.step()
        out.append(list(sched.get_last_lr()))
        assert [g["lr"] for g in opt.param_groups] == out[-1]
    return out, opt, sched


@pytest.mark.parametrize("name", list(CASES))
def test_closed_form(name):
    factory, closed = CASES[name]
    kw = {"momentum": 0.9} if name in ("OneCycleLR", "CyclicLR") else {}
    traj, _, _ = _trajectory(optim, jitorch, factory, **kw)
    for e, lrs in enumerate(traj):
        for i, (lr, b) in enumerate(zip(lrs, BASES)):
            assert lr == pytest.approx(closed(e, i, b), rel=1e-12, abs=1e-15), (e, i)


@needs_torch
@pytest.mark.parametrize("name", list(CASES))
def test_against_torch(name):
    factory, _ = CASES[name]
    kw = {"momentum": 0.9} if name in ("OneCycleLR", "CyclicLR") else {}
    ours, opt, _ = _trajectory(optim, jitorch, factory, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, topt, _ = _trajectory(torch.optim, torch, factory, **kw)
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-13, atol=0)
    if kw:  # cycled momentum too
        assert [g["momentum"] for g in opt.param_groups] == pytest.approx([g["momentum"] for g in topt.param_groups])


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_resume(name):
    factory, _ = CASES[name]
    kw = {"momentum": 0.9} if name in ("OneCycleLR", "CyclicLR") else {}
    full, _, _ = _trajectory(optim, jitorch, factory, **kw)
    part, opt, sched = _trajectory(optim, jitorch, factory, epochs=5, **kw)
    sd_opt, sd_sched = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in sd_sched
    # torch's documented order: build the scheduler, load its state, then load the optimizer's
    opt2 = _make_opt(optim, jitorch, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fresh scheduler's own initial step
        sched2 = factory(S, opt2)
    sched2.load_state_dict(sd_sched)
    opt2.load_state_dict(sd_opt)
    out = [list(sched2.get_last_lr())]
    for _ in range(EPOCHS - 5):
        opt2.step()
        sched2.step()
        out.append(list(sched2.get_last_lr()))
    np.testing.assert_allclose(np.array(out), np.array(full[5:]), rtol=1e-12)


def test_state_dict_saves_with_jitorch_save(tmp_path):
    """Scheduler state dicts hold only plain values: they go through jitorch.save/load."""
    for name, (factory, _) in CASES.items():
        kw = {"momentum": 0.9} if name in ("OneCycleLR", "CyclicLR") else {}
        _, opt, sched = _trajectory(optim, jitorch, factory, epochs=3, **kw)
        f = tmp_path / f"{name}.jt"
        jitorch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, f)
        back = jitorch.load(f)
        sched.load_state_dict(back["sched"])
        opt.step()
        sched.step()


def test_closed_form_with_epoch_argument():
    opt = _make_opt(optim, jitorch)
    sched = S.StepLR(opt, step_size=2, gamma=0.5)
    opt.step()
    with pytest.warns(UserWarning, match="epoch parameter"):
        sched.step(7)
    assert sched.get_last_lr() == pytest.approx([b * 0.5 ** 3 for b in BASES])
    assert sched.last_epoch == 7


def test_warm_restarts_fractional_epochs():
    opt = _make_opt(optim, jitorch)
    sched = S.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2, eta_min=0.0)
    for epoch, (t_cur, t_i) in [(0.5, (0.5, 2)), (2.5, (0.5, 4)), (6.25, (0.25, 8)), (1.0, (1.0, 2))]:
        opt.step()
        sched.step(epoch)
        assert sched.T_cur == pytest.approx(t_cur) and sched.T_i == t_i
        assert sched.get_last_lr()[0] == pytest.approx(BASES[0] * (1 + math.cos(math.pi * t_cur / t_i)) / 2)


def test_reduce_lr_on_plateau():
    opt = _make_opt(optim, jitorch)
    sched = S.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2, cooldown=1, min_lr=[0.02, 0.0])
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.8, 0.95, 0.95, 0.95]
    expect0 = [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.02]
    got = []
    for m in metrics:
        opt.step()
        sched.step(m)
        got.append(sched.get_last_lr()[0])
    assert got == pytest.approx(expect0)
    assert sched.get_last_lr()[1] == pytest.approx(0.5 * 0.5 ** 3)
    sd = sched.state_dict()
    assert sd["best"] == 0.8 and sd["mode_worse"] == math.inf
    s2 = S.ReduceLROnPlateau(_make_opt(optim, jitorch))
    s2.load_state_dict(sd)
    assert s2.patience == 2 and s2.best == 0.8


@needs_torch
@pytest.mark.parametrize("mode,threshold_mode", [("min", "rel"), ("min", "abs"), ("max", "rel"), ("max", "abs")])
def test_reduce_lr_on_plateau_against_torch(mode, threshold_mode):
    rng = np.random.default_rng(0)
    metrics = np.cumsum(rng.standard_normal(40) * 0.1).tolist()
    runs = []
    for mod, lib in ((optim, jitorch), (torch.optim, torch)):
        opt = _make_opt(mod, lib)
        sched = mod.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=0.7, patience=1, threshold=0.05,
                                                   threshold_mode=threshold_mode, cooldown=2, min_lr=0.01)
        out = []
        for m in metrics:
            opt.step()
            sched.step(m)
            out.append(list(sched.get_last_lr()))
        runs.append(out)
    assert runs[0] == runs[1]


def test_step_order_warning():
    opt = _make_opt(optim, jitorch)
    sched = S.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    opt2 = _make_opt(optim, jitorch)
    sched2 = S.StepLR(opt2, step_size=2)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


def test_initial_lr_and_last_epoch_resume():
    opt = _make_opt(optim, jitorch)
    S.StepLR(opt, step_size=2)
    assert [g["initial_lr"] for g in opt.param_groups] == list(BASES)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_make_opt(optim, jitorch), step_size=2, last_epoch=3)


def test_two_chained_schedulers_compose():
    opt = _make_opt(optim, jitorch)
    s1 = S.ExponentialLR(opt, gamma=0.9)
    s2 = S.StepLR(opt, step_size=2, gamma=0.5)
    for e in range(1, 7):
        opt.step()
        s1.step()
        s2.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(BASES[0] * 0.9 ** e * 0.5 ** (e // 2))
    opt = _make_opt(optim, jitorch)
    ch = S.ChainedScheduler([S.ExponentialLR(opt, gamma=0.9), S.StepLR(opt, step_size=2, gamma=0.5)])
    for e in range(1, 7):
        opt.step()
        ch.step()
    assert ch.get_last_lr()[0] == pytest.approx(BASES[0] * 0.9 ** 6 * 0.5 ** 3)


def test_onecycle_cycles_adam_betas():
    opt = _make_opt(optim, jitorch, "Adam")
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=10, base_momentum=0.8, max_momentum=0.95)
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.95)
    for _ in range(3):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["betas"][0] < 0.95 and opt.param_groups[0]["betas"][1] == 0.999
    with pytest.raises(ValueError, match="Tried to step"):
        for _ in range(20):
            opt.step()
            sched.step()


def test_validation_errors():
    opt = _make_opt(optim, jitorch)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.StepLR(object(), step_size=1)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        S.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="positive integer T_0"):
        S.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="number of milestones"):
        S.SequentialLR(opt, [S.ConstantLR(opt)], milestones=[1])
    with pytest.raises(ValueError, match="total_steps"):
        S.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas"):
        S.LambdaLR(opt, [lambda e: 1.0])

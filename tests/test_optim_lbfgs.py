"""optim.LBFGS: convergence to closed-form minima, torch's trajectories (when torch is installed),
state carried across steps and through state_dict, and the argument errors."""
import numpy as np
import pytest

import jitorch

try:
    import torch
except ImportError:  # optional reference
    torch = None


def _problem(lib, seed, n_rows, n_cols, dtype):
    """Least squares + a quartic term + Rosenbrock in a second parameter: curved, not quadratic."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n_rows, n_cols))
    b = rng.standard_normal(n_rows)
    w = lib.tensor(np.full(n_cols, 0.5), dtype=dtype, requires_grad=True)
    z = lib.tensor(np.array([-1.2, 1.0]), dtype=dtype, requires_grad=True)
    At, bt = lib.tensor(A, dtype=dtype), lib.tensor(b, dtype=dtype)

    def loss_fn():
        r = At @ w - bt
        rosen = (1 - z[0]) ** 2 + 100 * (z[1] - z[0] ** 2) ** 2
        return (r * r).sum() + rosen + 0.1 * (w ** 4).sum()
    return [w, z], loss_fn


def _run(lib, steps, seed=0, n_rows=30, n_cols=5, dtype_name="float64", **kw):
    params, loss_fn = _problem(lib, seed, n_rows, n_cols, getattr(lib, dtype_name))
    opt = lib.optim.LBFGS(params, **kw)

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss
    losses = [opt.step(closure).item() for _ in range(steps)]
    st = opt.state[params[0]]
    return losses, [p.detach().numpy().copy() for p in params], st["func_evals"], st["n_iter"]


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_quadratic_reaches_the_least_squares_solution(line_search_fn):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((40, 6))
    b = rng.standard_normal(40)
    want = np.linalg.solve(A.T @ A, A.T @ b)  # the normal equations: an independent reference
    w = jitorch.zeros(6, dtype=jitorch.float64, requires_grad=True)
    At, bt = jitorch.tensor(A), jitorch.tensor(b)
    opt = jitorch.optim.LBFGS([w], lr=1 if line_search_fn else 0.5, max_iter=100, line_search_fn=line_search_fn,
                              tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        loss = ((At @ w - bt) ** 2).sum()
        loss.backward()
        return loss
    for _ in range(5):
        opt.step(closure)
    np.testing.assert_allclose(w.detach().numpy(), want, rtol=1e-7, atol=1e-9)


def test_rosenbrock_converges_with_strong_wolfe():
    z = jitorch.tensor([-1.2, 1.0], dtype=jitorch.float64, requires_grad=True)
    opt = jitorch.optim.LBFGS([z], line_search_fn="strong_wolfe", max_iter=200, tolerance_grad=1e-10,
                              tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        loss = (1 - z[0]) ** 2 + 100 * (z[1] - z[0] ** 2) ** 2
        loss.backward()
        return loss
    opt.step(closure)
    np.testing.assert_allclose(z.detach().numpy(), [1.0, 1.0], atol=1e-6)  # the known minimum


@pytest.mark.skipif(torch is None, reason="torch not installed (optional reference)")
@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("history_size,max_iter,steps", [(100, 20, 3), (100, 4, 6), (3, 20, 3), (3, 4, 6),
                                                          (1, 20, 1), (1, 4, 4)])
def test_trajectory_matches_torch(line_search_fn, history_size, max_iter, steps):
    # (history 1 along Rosenbrock's valley amplifies last-bit differences ~100x per step: kept short)
    kw = dict(lr=1 if line_search_fn else 0.7, line_search_fn=line_search_fn, history_size=history_size,
              max_iter=max_iter)
    got = _run(jitorch, steps, **kw)
    want = _run(torch, steps, **kw)
    # Summation order differs between the libraries' kernels; the non-convex problem amplifies it a little.
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    for g, w in zip(got[1], want[1]):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    assert got[2:] == want[2:], "closure evaluations / iterations differ from torch's"


@pytest.mark.skipif(torch is None, reason="torch not installed (optional reference)")
def test_float32_parameters_match_torch():
    kw = dict(line_search_fn="strong_wolfe", max_iter=10)
    got = _run(jitorch, 2, dtype_name="float32", **kw)
    want = _run(torch, 2, dtype_name="float32", **kw)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-3)
    for g, w in zip(got[1], want[1]):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-2, atol=1e-3)


def test_max_eval_bounds_the_closure_calls():
    calls = []
    z = jitorch.tensor([-1.2, 1.0], dtype=jitorch.float64, requires_grad=True)
    opt = jitorch.optim.LBFGS([z], max_iter=50, max_eval=7)

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (1 - z[0]) ** 2 + 100 * (z[1] - z[0] ** 2) ** 2
        loss.backward()
        return loss
    opt.step(closure)
    assert len(calls) == 7 == opt.state[z]["func_evals"]


def test_state_dict_round_trip_continues_identically(tmp_path):
    def make():
        params, loss_fn = _problem(jitorch, 2, 20, 4, jitorch.float64)
        opt = jitorch.optim.LBFGS(params, max_iter=5, history_size=4, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            return loss
        return params, opt, closure

    params_a, opt_a, closure_a = make()
    opt_a.step(closure_a)
    path = tmp_path / "lbfgs.pt"
    jitorch.save({"params": [p.detach() for p in params_a], "opt": opt_a.state_dict()}, path)
    history_before = len(opt_a.state[params_a[0]]["old_dirs"])
    assert history_before > 0
    opt_a.step(closure_a)

    params_b, opt_b, closure_b = make()
    ck = jitorch.load(path)
    with jitorch.no_grad():
        for p, saved in zip(params_b, ck["params"]):
            p.copy_(saved)
    opt_b.load_state_dict(ck["opt"])
    assert len(opt_b.state[params_b[0]]["old_dirs"]) == history_before
    opt_b.step(closure_b)
    for a, b in zip(params_a, params_b):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-12)


def test_a_zero_gradient_returns_at_once():
    w = jitorch.zeros(3, dtype=jitorch.float64, requires_grad=True)
    opt = jitorch.optim.LBFGS([w])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss
    assert float(opt.step(closure)) == 0.0
    assert len(calls) == 1 and opt.state[w]["n_iter"] == 0


def test_parameters_without_grad_count_as_zero_gradient():
    used = jitorch.tensor([3.0], dtype=jitorch.float64, requires_grad=True)
    unused = jitorch.tensor([5.0], dtype=jitorch.float64, requires_grad=True)
    opt = jitorch.optim.LBFGS([used, unused], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((used - 1) ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    assert abs(float(used) - 1.0) < 1e-6 and float(unused) == 5.0


def test_errors():
    w = jitorch.zeros(2, requires_grad=True)
    v = jitorch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="parameter groups"):
        jitorch.optim.LBFGS([{"params": [w]}, {"params": [v], "lr": 0.1}])
    with pytest.raises(RuntimeError, match="strong_wolfe"):
        jitorch.optim.LBFGS([w], line_search_fn="backtracking")
    with pytest.raises(ValueError, match="learning rate"):
        jitorch.optim.LBFGS([w], lr=-1)
    with pytest.raises(ValueError, match="history_size"):
        jitorch.optim.LBFGS([w], history_size=0)
    with pytest.raises(RuntimeError, match="closure"):
        jitorch.optim.LBFGS([w]).step(None)

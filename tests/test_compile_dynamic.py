"""jitorch.compile dynamic dims (issue 6, point 2): a dim seen with a second size becomes symbolic; one
trace and one set of kernels serve every size (compile.py's _Family, export.py's _make_dynamic/specialize)."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import jitorch as torch
from jitorch import nn
from jitorch.jit import compile as C
from jitorch.kernels import _config, _jitcache

SIZES = (1, 3, 5, 17, 64)


def _close(a, b, tol=1e-5):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=tol, atol=tol)


def _np_softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _counted(fn):
    """fn with a counter of how many times its Python body runs (each trace runs it once)."""
    n = [0]

    @functools.wraps(fn)  # keeps the argument names (the log names inputs by them)
    def f(*a):
        n[0] += 1
        return fn(*a)
    return f, n


def _kernel_state():
    """(generated modules loaded, compiled numba signatures over them): grows when a kernel compiles."""
    mods = list(_jitcache._loaded.values())
    sigs = sum(len(getattr(getattr(m, "kernel", None), "signatures", ())) for m in mods)
    return len(mods), sigs


W = torch.randn(8, 16)
B = torch.randn(16)


def mlp(x):
    return torch.softmax(torch.relu(x @ W + B) * 0.5, dim=-1)


def mlp_ref(x):
    return _np_softmax(np.maximum(x @ W.numpy() + B.numpy(), 0) * np.float32(0.5))


def elementwise(x, y):
    return torch.tanh(x * y + 1.0) * torch.sigmoid(x)


def elementwise_ref(x, y):
    return np.tanh(x * y + 1) * (1 / (1 + np.exp(-x)))


def softmax_mean(x):
    return torch.softmax(x, dim=-1) * (x.sum(0) / x.shape[0])  # a size-dependent literal (affine: 1/n)


@pytest.mark.parametrize("case", ["mlp", "elementwise"])
def test_one_trace_serves_every_size(case, monkeypatch, capsys):
    monkeypatch.setenv("JITORCH_LOGS", "recompiles")
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1 << 30)  # serial kernels at every size (env-independent)
    f, traces = _counted(mlp if case == "mlp" else elementwise)
    cf = torch.compile(f)
    rng = np.random.default_rng(0)
    after_second = None
    for k, n in enumerate(SIZES):
        if case == "mlp":
            x = rng.standard_normal((n, 8)).astype(np.float32)
            got, want = cf(torch.tensor(x)), mlp_ref(x)
        else:
            x, y = (rng.standard_normal((n, 5)).astype(np.float32) for _ in range(2))
            got, want = cf(torch.tensor(x), torch.tensor(y)), elementwise_ref(x, y)
        _close(got.numpy(), want)
        if k == 1:
            after_second = traces[0]
            kstate = _kernel_state()
    assert traces[0] == after_second  # no trace after the second size
    assert _kernel_state() == kstate  # no numba kernel compiled after the second size
    assert cf._compiled_count == 1    # marking dims dynamic is no recompile
    err = capsys.readouterr().err
    assert "dim 0 of x is now dynamic" in err and err.count("is now dynamic") == (1 if case == "mlp" else 2)
    assert "recompiling" not in err


def test_twenty_sizes_never_hit_the_recompile_limit(recwarn):
    f, traces = _counted(softmax_mean)
    cf = torch.compile(f)
    rng = np.random.default_rng(1)
    for n in range(2, 22):
        x = rng.standard_normal((n, 6)).astype(np.float32)
        want = _np_softmax(x) * (x.sum(0) / n)
        _close(cf(torch.tensor(x)).numpy(), want)
    assert not [w for w in recwarn.list if issubclass(w.category, C.CompileWarning)]
    assert not any(e.eager for e in cf._cache.values())
    assert traces[0] <= 3  # the first trace + export's two probe traces
    assert len(cf._families) == 1 and len(cf._families[0].entries) <= C.DYNAMIC_EXECUTORS
    assert len(cf._cache) <= 1 + C.DYNAMIC_EXECUTORS  # evicted sizes leave the cache too
    assert repr(cf).endswith("1 signature(s)>")
    x = rng.standard_normal((2, 6)).astype(np.float32)  # an evicted size comes back: re-specialized, still right
    _close(cf(torch.tensor(x)).numpy(), _np_softmax(x) * (x.sum(0) / 2))
    assert traces[0] <= 3


def test_module_mlp_in_eval_is_dynamic():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))
    m.eval()
    cm = torch.compile(m)
    with torch.no_grad():
        for n in SIZES:
            x = torch.randn(n, 6)
            _close(cm(x).numpy(), m(x).numpy())
    assert cm._compiled_count == 1 and len(cm._families) == 1


def test_branch_on_size_stays_correct_and_specialized(monkeypatch, capsys):
    monkeypatch.setenv("JITORCH_LOGS", "recompiles")

    def branchy(x):
        if x.shape[0] > 4:
            return x * 2.0
        return x - 1.0
    cf = torch.compile(branchy)
    for n in (2, 3, 6, 8, 1):
        x = torch.randn(n, 3)
        want = x.numpy() * 2 if n > 4 else x.numpy() - 1
        _close(cf(x).numpy(), want)
    err = capsys.readouterr().err
    assert "cannot be dynamic, stays specialized" in err
    assert not cf._families


def test_dynamic_true_from_the_first_call(monkeypatch, capsys):
    monkeypatch.setenv("JITORCH_LOGS", "recompiles")
    f, traces = _counted(mlp)
    cf = torch.compile(f, dynamic=True)
    x = torch.randn(4, 8)
    _close(cf(x).numpy(), mlp_ref(x.numpy()))
    first = traces[0]
    assert "dim 0 of x is now dynamic" in capsys.readouterr().err
    for n in (1, 9, 33):
        x = torch.randn(n, 8)
        _close(cf(x).numpy(), mlp_ref(x.numpy()))
    assert traces[0] == first and cf._compiled_count == 1


def test_dynamic_false_keeps_specializing(monkeypatch, capsys):
    monkeypatch.setenv("JITORCH_LOGS", "recompiles")
    f, traces = _counted(elementwise)
    cf = torch.compile(f, dynamic=False)
    for n in (2, 3, 4):
        x, y = torch.randn(n, 5), torch.randn(n, 5)
        _close(cf(x, y).numpy(), elementwise_ref(x.numpy(), y.numpy()))
    assert traces[0] == 3 and cf._compiled_count == 3 and not cf._families
    err = capsys.readouterr().err
    assert "now dynamic" not in err and err.count("recompiling") == 2


def test_guards_rank_dtype_static_dims_and_shared_batch(monkeypatch, capsys):
    monkeypatch.setenv("JITORCH_LOGS", "recompiles")
    cf = torch.compile(elementwise)
    x, y = torch.randn(3, 5), torch.randn(3, 5)
    cf(x, y)
    cf(torch.randn(4, 5), torch.randn(4, 5))  # dim 0 of x and y: one shared dynamic size
    assert cf._compiled_count == 1
    capsys.readouterr()
    # the graph needs x and y to share dim 0: different sizes fail that guard (broadcast 1 vs 6)
    a, b = torch.randn(6, 5), torch.randn(1, 5)
    _close(cf(a, b).numpy(), elementwise_ref(a.numpy(), b.numpy()))
    assert cf._compiled_count == 2
    # a static dim (dim 1) changed, a dtype changed, the rank changed: recompiles, with the reason
    a = torch.randn(6, 7)
    _close(cf(a, a.clone()).numpy(), elementwise_ref(a.numpy(), a.numpy()))
    a = torch.randn(6, 5).double()
    _close(cf(a, a.clone()).numpy(), elementwise_ref(a.numpy(), a.numpy()))
    a = torch.randn(2, 6, 5)
    _close(cf(a, a.clone()).numpy(), elementwise_ref(a.numpy(), a.numpy()))
    err = capsys.readouterr().err
    assert "dtype float32 -> float64" in err
    for n in (2, 9):  # the dynamic family still serves its sizes
        a, b = torch.randn(n, 5), torch.randn(n, 5)
        _close(cf(a, b).numpy(), elementwise_ref(a.numpy(), b.numpy()))


def test_training_with_grad_stays_specialized_and_correct():
    lin = nn.Linear(4, 2)
    cm = torch.compile(lin)
    for n in (2, 3, 5):
        x = torch.randn(n, 4)
        lin.zero_grad()
        cm(x).sum().backward()
        g_compiled = lin.weight.grad.numpy().copy()
        lin.zero_grad()
        lin(x).sum().backward()
        _close(g_compiled, lin.weight.grad.numpy())
    assert not cm._families  # training through compiled code keeps specializing (docs/jit.md)


def test_size_zero_and_a_second_dtype_stay_correct():
    f, traces = _counted(elementwise)
    cf = torch.compile(f)
    for n, dt in ((3, "float32"), (4, "float32"), (0, "float32"), (3, "float64"), (5, "float64"), (6, "float32")):
        x, y = torch.randn(n, 5).to(getattr(torch, dt)), torch.randn(n, 5).to(getattr(torch, dt))
        _close(cf(x, y).numpy(), elementwise_ref(x.numpy(), y.numpy()))
    # size 0 and the first float64 call are signatures; float64 gets its own family on its second size
    assert cf._compiled_count == 3 and len(cf._families) == 2


def test_view_with_the_size_is_rewritten_per_size():
    def flat(x):
        return torch.relu(x.view(x.shape[0], -1) * 2.0).sum(-1)
    f, traces = _counted(flat)
    cf = torch.compile(f)
    for n in (2, 3, 7, 12):
        x = torch.randn(n, 3, 4)
        _close(cf(x).numpy(), np.maximum(x.numpy().reshape(n, -1) * 2, 0).sum(-1))
    assert cf._compiled_count == 1 and traces[0] <= 3 and len(cf._families) == 1
    ex = cf._families[0].ex
    assert ex.exprs  # the view's size attribute is recorded symbolically (coef 1 in the dynamic size)

"""jitorch.compile and jit.load(map_location='cuda') on cuda (issue 9.2): the fuser's groups as generated
cuda.jit kernels (jitorch/jit/fuse_cuda.py), non-fused nodes through the op table's cuda impls, training
through compiled code, loading exported graphs onto the device. References: the same code run eagerly on
cuda and on cpu, and NumPy. Runs on numba's CUDA simulator here (conftest): tiny shapes."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import jitorch as torch
import jitorch.nn as nn
import jitorch.nn.functional as F
from jitorch.jit import compile as C
from jitorch.jit import fuse_cuda

if not torch.cuda.is_available():  # pragma: no cover - conftest enables the simulator
    pytest.skip("cuda is not available (no GPU and NUMBA_ENABLE_CUDASIM is not set)", allow_module_level=True)

CUDA = torch.device("cuda")


def _close(got, want, rtol=1e-5, atol=1e-6):
    got = got.cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    want = want.cpu().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol)


def _strict():
    w = warnings.catch_warnings()
    w.__enter__()
    warnings.simplefilter("error", C.CompileWarning)  # no eager fallback
    return w


def chain(x, y):
    return torch.tanh(x * 2.5 + y).sigmoid() * x - 1


def test_elementwise_chain_one_cuda_kernel_matches_eager_and_cpu():
    rng = np.random.default_rng(0)
    xh, yh = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)
    x, y = torch.tensor(xh, device="cuda"), torch.tensor(yh, device="cuda")
    f = torch.compile(chain)
    got = f(x, y)
    assert got.device == CUDA
    _close(got, chain(x, y))
    _close(got, chain(torch.tensor(xh), torch.tensor(yh)))
    want = np.tanh(xh * np.float32(2.5) + yh)
    want = (1 / (1 + np.exp(-want))) * xh - 1
    _close(got, want.astype(np.float32), rtol=1e-5, atol=1e-6)
    assert "_k0(x, y)" in f.code and "_call" not in f.code
    src = f.kernels["_k0"]
    assert "@cuda.jit(cache=True)" in src and "cuda.grid(1)" in src and "# %" in src
    assert src == fuse_cuda.kernel_source(*_group_of(f), flat=True)  # deterministic text


def _group_of(f):
    groups, _ = fuse_cuda.cuda_groups(f.graph)
    return groups[0], f.graph.types


@pytest.mark.parametrize("xs,ys,dt", [((4, 3), (3,), "float32"), ((2, 3, 2), (2, 1, 2), "float64"),
                                      ((5,), (), "float32"), ((), (), "float64"), ((3, 4), (3, 4), "int64")])
def test_broadcast_strided_and_dtypes(xs, ys, dt):
    rng = np.random.default_rng(1)
    xh = (rng.standard_normal(xs) * 3).astype(dt)
    yh = (rng.standard_normal(ys) * 3).astype(dt)

    def f(x, y):
        z = torch.where(x > y, x * y, x - y) + 1
        return z.abs() * 2, (z < 2)

    c = torch.compile(f)
    x, y = torch.tensor(xh, device="cuda"), torch.tensor(yh, device="cuda")
    for got, cpu in zip(c(x, y), f(torch.tensor(xh), torch.tensor(yh))):
        _close(got, cpu)
    if len(xs) == 2:  # a transposed (non-contiguous) input takes the strided loop form; same kernel signature
        xt = torch.tensor(np.ascontiguousarray(xh.T), device="cuda").t()
        for got, cpu in zip(c(xt, y), f(torch.tensor(xh), torch.tensor(yh))):
            _close(got, cpu)


def test_mixed_dtypes_and_python_scalars():
    def f(a, b):
        return (a.float() * 0.5 + b).relu().clamp(max=1.5), (a * 3) % 5

    ah = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    bh = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    c = torch.compile(f)
    for got, cpu in zip(c(torch.tensor(ah, device="cuda"), torch.tensor(bh, device="cuda")),
                        f(torch.tensor(ah), torch.tensor(bh))):
        _close(got, cpu)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_after_elementwise(op):
    rng = np.random.default_rng(2)
    xh = rng.standard_normal((3, 6)).astype(np.float32)

    def f(x):
        return getattr(F, op)(x * 2 - 1, dim=-1) + 1

    c = torch.compile(f)
    got = c(torch.tensor(xh, device="cuda"))
    _close(got, f(torch.tensor(xh)), rtol=1e-5, atol=2e-6)
    _close(got, f(torch.tensor(xh, device="cuda")), rtol=1e-5, atol=2e-6)
    assert f"_call('{op}'" not in c.code  # fused: one block per row
    assert "cuda.shared.array" in c.kernels["_k0"] and f"{op} dim=" in c.kernels["_k0"]


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "sum", "amax"])
@pytest.mark.parametrize("shape,dt", [((3, 6), "float32"), ((5,), "float64"), ((2, 3, 20), "float32")])
def test_fused_row_reductions_match_cpu(op, shape, dt):
    """A trailing last-dim reduction ends the fused kernel: rows longer than the block, broadcast operands,
    an exported prefix value, keepdim, NaN rows."""
    rng = np.random.default_rng(10)
    xh = rng.standard_normal(shape).astype(dt)
    xh.reshape(-1, shape[-1])[-1, 1] = np.nan if op != "sum" else xh.reshape(-1)[1]
    bh = rng.standard_normal(shape[-1:]).astype(dt)

    def f(x, b):
        y = (x * 2 - b).tanh()
        r = getattr(F, op)(y, dim=-1) if op in ("softmax", "log_softmax") else \
            getattr(torch, op)(y, dim=-1, keepdim=len(shape) == 3)
        return r, y

    c = torch.compile(f)
    got = c(torch.tensor(xh, device="cuda"), torch.tensor(bh, device="cuda"))
    want = f(torch.tensor(xh), torch.tensor(bh))
    tol = dict(rtol=1e-5, atol=1e-6) if dt == "float32" else dict(rtol=1e-12, atol=1e-12)
    for g, w in zip(got, want):
        assert g.device == CUDA
        gh, wh = g.cpu().numpy(), w.numpy()
        assert gh.shape == wh.shape and gh.dtype == wh.dtype
        np.testing.assert_allclose(gh, wh, equal_nan=True, **tol)
    assert "_call" not in c.code


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x) * 0.5 + 0.1))


def test_mlp_forward_matches_eager_cuda_and_cpu():
    torch.manual_seed(0)
    m = MLP()
    xh = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    with torch.no_grad():
        want_cpu = m(torch.tensor(xh))
        m.cuda()
        c = torch.compile(m)
        x = torch.tensor(xh, device="cuda")
        w = _strict()
        try:
            got = c(x)
        finally:
            w.__exit__(None, None, None)
        _close(got, m(x), rtol=1e-5, atol=1e-6)
    _close(got, want_cpu, rtol=1e-5, atol=1e-6)
    assert "fused group" in c.code


def test_training_step_through_compiled_code_on_cuda():
    torch.manual_seed(1)
    ref = MLP()
    m = MLP()
    m.load_state_dict(ref.state_dict())
    m.cuda()
    xh = np.random.default_rng(4).standard_normal((4, 6)).astype(np.float32)
    yh = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    c = torch.compile(m)
    for k in range(2):  # the second call: other inputs (values saved for backward are not baked in)
        xk, yk = xh * (1 + k), yh - k
        w = _strict()
        try:
            loss = ((c(torch.tensor(xk, device="cuda")) - torch.tensor(yk, device="cuda")) ** 2).mean()
        finally:
            w.__exit__(None, None, None)
        loss.backward()
        want = ((ref(torch.tensor(xk)) - torch.tensor(yk)) ** 2).mean()
        want.backward()
        assert c.backward_graph is not None  # the compiled forward + backward ran, not eager autograd
        _close(loss.detach(), want.detach(), rtol=1e-5, atol=1e-6)
        for (name, p), (_, q) in zip(m.named_parameters(), ref.named_parameters()):
            assert p.grad.device == CUDA, name
            _close(p.grad, q.grad, rtol=1e-4, atol=1e-5)
            p.grad = q.grad = None


def test_whole_training_step_with_optimizer_compiled_on_cuda():
    """backward() and SGD (momentum) step inside the compiled function: three steps equal eager cpu."""
    def make():
        torch.manual_seed(6)
        return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))
    m, ref = make().cuda(), make()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    ropt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)

    def step(model, o, x, y):
        o.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        o.step()
        return loss

    c = torch.compile(lambda x, y: step(m, opt, x, y))
    rng = np.random.default_rng(11)
    for _ in range(3):
        xh = rng.standard_normal((3, 4)).astype(np.float32)
        yh = rng.standard_normal((3, 2)).astype(np.float32)
        w = _strict()
        try:
            got = c(torch.tensor(xh, device="cuda"), torch.tensor(yh, device="cuda"))
        finally:
            w.__exit__(None, None, None)
        _close(got.detach(), step(ref, ropt, torch.tensor(xh), torch.tensor(yh)).detach(), rtol=1e-5, atol=1e-6)
    for p, q in zip(m.parameters(), ref.parameters()):
        assert p.device == CUDA
        _close(p.detach(), q.detach(), rtol=1e-5, atol=1e-6)
        _close(opt.state[p]["momentum_buffer"], ropt.state[q]["momentum_buffer"], rtol=1e-5, atol=1e-6)


def test_recompiles_when_the_device_changes(monkeypatch, capsys):
    monkeypatch.setenv("JITORCH_LOGS", "recompiles")
    xh = np.linspace(-1, 1, 6, dtype=np.float32)
    yh = np.linspace(2, 0, 6, dtype=np.float32)
    c = torch.compile(chain)
    a = c(torch.tensor(xh), torch.tensor(yh))
    assert a.device.type == "cpu" and "njit" in c.kernels["_k0"]
    b = c(torch.tensor(xh, device="cuda"), torch.tensor(yh, device="cuda"))
    assert b.device == CUDA and "cuda.jit" in c.kernels["_k0"]
    assert "device cpu -> cuda" in capsys.readouterr().err
    _close(b, a)
    a2 = c(torch.tensor(xh), torch.tensor(yh))  # the cpu signature is still cached
    assert a2.device.type == "cpu"
    assert len([e for e in c._cache.values() if not e.eager]) == 2


# ---------------------------------------------------------------- jit.load(map_location='cuda'), saving cuda traces

GOLDEN = __import__("pathlib").Path(__file__).parent / "golden"


def _leaves(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def test_golden_file_loads_onto_cuda_and_matches_cpu():
    x = np.load(GOLDEN / "mlp_v1_x.npy", allow_pickle=False)
    want = np.load(GOLDEN / "mlp_v1_out.npz", allow_pickle=False)
    cpu = torch.jit.load(GOLDEN / "mlp_v1.jt")
    dev = torch.jit.load(GOLDEN / "mlp_v1.jt", map_location="cuda")
    assert all(p.device == CUDA for p in dev.parameters()) and all(b.device == CUDA for b in dev.buffers())
    with torch.no_grad():
        got = _leaves(dev(torch.tensor(x, device="cuda")))
        ref = _leaves(cpu(torch.tensor(x)))
    assert len(got) == len(ref) == len(want.files)
    for g, r, name in zip(got, ref, want.files):
        assert g.device == CUDA
        _close(g, r, rtol=1e-5, atol=1e-6)
        _close(g, want[name], rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="is on cpu.*cuda"):
        dev(torch.tensor(x))
    # and through jitorch.compile: the loaded graph on cuda, fused
    c = torch.compile(dev)
    with torch.no_grad():
        for g, r in zip(_leaves(c(torch.tensor(x, device="cuda"))), ref):
            assert g.device == CUDA
            _close(g, r, rtol=1e-5, atol=1e-6)


def test_save_a_cuda_trace_and_load_it_anywhere(tmp_path):
    torch.manual_seed(3)
    m = MLP().cuda()
    xh = np.random.default_rng(6).standard_normal((4, 6)).astype(np.float32)
    x = torch.tensor(xh, device="cuda")
    tr = torch.jit.trace(m, (x,))  # check_trace compares the cuda outputs too
    p = tmp_path / "mlp_cuda.jt"
    tr.save(p)
    with torch.no_grad():
        want = m(x)
    import json
    import zipfile
    with zipfile.ZipFile(p) as zf:
        meta = json.loads(zf.read(next(n for n in zf.namelist() if n.endswith("meta.json"))))
    assert meta["guards"]["device"] == "cuda"
    default = torch.jit.load(p)  # onto the device it was saved from, as torch does
    assert all(q.device == CUDA for q in default.parameters())
    on_cpu = torch.jit.load(p, map_location="cpu")
    mapped = torch.jit.load(p, map_location={"cuda": "cpu"})
    with torch.no_grad():
        _close(default(x), want, rtol=1e-5, atol=1e-6)
        _close(on_cpu(torch.tensor(xh)), want, rtol=1e-5, atol=1e-6)
        _close(mapped(torch.tensor(xh)), want, rtol=1e-5, atol=1e-6)
    assert all(q.device.type == "cpu" for q in list(on_cpu.parameters()) + list(mapped.parameters()))
    # a cpu file saved again from the cuda load is a cuda file; from the cpu load a cpu file
    default.save(tmp_path / "again.jt")
    on_cpu.save(tmp_path / "again_cpu.jt")
    with torch.no_grad():
        _close(torch.jit.load(tmp_path / "again.jt")(x), want, rtol=1e-5, atol=1e-6)
    assert all(q.device.type == "cpu" for q in torch.jit.load(tmp_path / "again_cpu.jt").parameters())


# ---------------------------------------------------------------- PTX for a real GPU (libNVVM, no GPU)

_PTX_SCRIPT = '''
import sys
try:
    from numba.cuda.cudadrv import nvvm
    nvvm.NVVM()
except Exception as e:
    print("skip: no NVVM", type(e).__name__)
    sys.exit(0)
import jitorch as torch, jitorch.nn.functional as F
from jitorch.jit import fuse_cuda
def f1(x, y): return torch.tanh(x * 2.5 + y).sigmoid() * x - 1
def f2(x, y):
    z = torch.where(x > y, x * y, x - y) + 1
    return z.abs() * 2, (z < 2)
def f3(a, b): return (a.float() * 0.5 + b).relu().clamp(max=1.5), (a * 3) % 5
def f4(x): return F.log_softmax(F.gelu(x * 2 - 1).exp().sqrt(), dim=-1) + 1
def f5(x, b):
    return (F.softmax((x * 2 - b).tanh(), dim=-1), torch.sum(x * b, dim=-1),
            torch.amax(x.double() * 3 - 1, dim=-1, keepdim=True))
cases = [(f5, (torch.randn(2, 3, 5), torch.randn(5))),
         (f1, (torch.randn(3, 4), torch.randn(4))),
         (f2, (torch.randn(3, 4).double(), torch.randn(3, 1).double())),
         (f2, (torch.arange(12).reshape(3, 4), torch.arange(4))),
         (f3, (torch.arange(12, dtype=torch.int32).reshape(3, 4), torch.randn(3, 4))),
         (f4, (torch.randn(2, 5),))]
bad, n = [], 0
for fn, args in cases:
    for what, err in fuse_cuda.ptx_check(torch.jit.trace(fn, args).graph):
        n += 1
        if err:
            bad.append(what + ": " + err)
print("\\n".join(bad) if bad else "ok %d" % n)
'''


@pytest.mark.slow
def test_generated_fused_kernels_compile_to_ptx_for_a_real_gpu():
    """The simulator runs kernels as Python; this lowers the fused kernels (both loop forms and the row
    reductions, float32/float64/int/bool groups) to PTX for compute capability 9.0 in a child interpreter
    without the simulator."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = subprocess.run([sys.executable, "-c", _PTX_SCRIPT], capture_output=True, text=True, env=env,
                       cwd=Path(__file__).parent.parent, timeout=600)
    out = r.stdout.strip()
    if out.startswith("skip"):
        pytest.skip(out)
    assert r.returncode == 0 and out.startswith("ok "), out + r.stderr[-2000:]
    assert int(out.split()[1]) >= 9


def test_save_a_cuda_trace_with_a_dynamic_batch(tmp_path):
    torch.manual_seed(4)
    m = MLP().cuda()
    tr = torch.jit.trace(m, (torch.randn(3, 6).cuda(),), check_trace=False)
    tr.save(tmp_path / "dyn.jt", dynamic_batch=True)  # re-traced at other batch sizes on cuda
    loaded = torch.jit.load(tmp_path / "dyn.jt")
    xh = np.random.default_rng(7).standard_normal((5, 6)).astype(np.float32)
    with torch.no_grad():
        want = m(torch.tensor(xh, device="cuda"))
        _close(loaded(torch.tensor(xh, device="cuda")), want, rtol=1e-5, atol=1e-6)
        _close(torch.jit.load(tmp_path / "dyn.jt", map_location="cpu")(torch.tensor(xh)), want, rtol=1e-5, atol=1e-6)


def test_tracing_effects_on_cuda_are_undone_so_each_call_applies_once():
    """Tracing runs the function once; its in-place writes (an argument, BatchNorm's running statistics) on
    cuda tensors are restored before the compiled run, as on cpu."""
    torch.manual_seed(5)
    m = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    ref = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    ref.load_state_dict(m.state_dict())
    m.cuda()
    c = torch.compile(m)
    xh = np.random.default_rng(8).standard_normal((5, 4)).astype(np.float32)
    with torch.no_grad():
        for _ in range(2):
            _close(c(torch.tensor(xh, device="cuda")), ref(torch.tensor(xh)), rtol=1e-5, atol=1e-5)
    _close(m[1].running_mean, ref[1].running_mean, rtol=1e-6, atol=1e-7)
    _close(m[1].running_var, ref[1].running_var, rtol=1e-6, atol=1e-7)
    assert int(m[1].num_batches_tracked.item()) == 2

    def bump(a):
        a.add_(1)
        return a * 2

    a = torch.zeros(3, device="cuda")
    cb = torch.compile(bump)
    _close(cb(a), np.full(3, 2, np.float32))
    _close(a, np.ones(3, np.float32))
    _close(cb(a), np.full(3, 4, np.float32))
    _close(a, np.full(3, 2, np.float32))


# ---------------------------------------------------------------- random elementwise graphs vs cpu

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_UNARY = ["relu", "tanh", "sigmoid", "neg", "abs", "exp", "sqrt", "floor"]
_BINARY = ["add", "mul", "sub", "maximum", "div"]
_SHAPES = [(3, 4), (4,), (3, 1), (1,), ()]


@st.composite
def _programs(draw):
    nin = draw(st.integers(1, 3))
    shapes = [(3, 4)] + [draw(st.sampled_from(_SHAPES)) for _ in range(nin - 1)]
    steps = [(draw(st.sampled_from(_UNARY + _BINARY + ["scale", "where"])), draw(st.integers(0, 7)),
              draw(st.integers(0, 7))) for _ in range(draw(st.integers(2, 6)))]
    return shapes, steps, draw(st.sampled_from(["float32", "float64"])), draw(st.booleans())


def _run_program(steps, xs):
    vals = list(xs)
    for kind, i, j in steps:
        a, b = vals[i % len(vals)], vals[j % len(vals)]
        if kind in _UNARY:
            v = getattr(torch, kind)(a)
        elif kind == "scale":
            v = a * 0.5 - 1
        elif kind == "where":
            v = torch.where(a > b, a, b * 2)
        else:
            v = getattr(torch, kind)(a, b)
        vals.append(v)
    return vals[-1] + vals[0]


@settings(max_examples=12)
@given(_programs())
def test_random_elementwise_graphs_on_cuda_match_cpu(prog):
    shapes, steps, dt, transpose = prog
    rng = np.random.default_rng(9)
    hs = [rng.standard_normal(s).astype(dt) for s in shapes]
    xs = [torch.tensor(h, device="cuda") for h in hs]
    if transpose:  # the first input as a transposed view: the strided loop form
        xs[0] = torch.tensor(np.ascontiguousarray(hs[0].T), device="cuda").t()
    c = torch.compile(lambda *a: _run_program(steps, a))
    got = c(*xs)
    want = _run_program(steps, [torch.tensor(h) for h in hs])
    assert got.device == CUDA
    g, w = got.cpu().numpy(), want.numpy()
    assert g.dtype == w.dtype and g.shape == w.shape
    np.testing.assert_allclose(g, w, rtol=1e-5 if dt == "float32" else 1e-12, atol=1e-6 if dt == "float32" else 1e-12,
                               equal_nan=True)

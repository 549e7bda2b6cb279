"""The table-driven op tests on device='cuda': every op with an impl['cuda'] against the cpu result.

cuda runs on numba's CUDA simulator here (tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1 unless
JITORCH_TEST_REAL_CUDA=1), where each simulated thread is a Python thread: shapes stay tiny and
the dtypes are a sample, so the whole file takes well under a minute. The cpu kernels are checked
against NumPy by tests/test_ops_*.py; here the cuda result must match the cpu result (exactly for
integer and bool results, to a few float32 ulps for floats: cuda uses libdevice/``math`` where the
cpu uses jitorch's float32 polynomials).
"""
from __future__ import annotations

import numpy as np
import pytest

import jitorch
from jitorch import _dtype as D
from jitorch._dispatch import call
from jitorch.ops import registry
from jitorch.ops.elementwise import SPECS

from .optable import as_layout
from .test_ops_elementwise import default_attrs, dtypes_for, make_inputs

if not jitorch.cuda.is_available():  # pragma: no cover - conftest enables the simulator
    pytest.skip("cuda is not available (no GPU and NUMBA_ENABLE_CUDASIM is not set)", allow_module_level=True)

CUDA = jitorch.device("cuda")
# a sample of dtypes per op keeps the simulator time down: every family, float16 storage included
SAMPLE = (D.float32, D.float64, D.float16, D.int64, D.uint8, D.int16, D.bool_)
UNARY_CASES = [((), "contiguous"), ((7,), "contiguous"), ((3, 5), "transposed"), ((2, 3, 4), "strided")]
NARY_CASES = [(((7,), (7,)), "contiguous"), (((3, 5), (5,)), "strided"), (((3, 1), (1, 4)), "contiguous"),
              (((), (2, 3)), "contiguous"), (((2, 3, 4), (3, 1)), "transposed")]
FLOAT_TOL = {D.float16: (2e-3, 2e-3), D.float32: (1e-5, 1e-6), D.float64: (1e-12, 1e-13)}
# libdevice/math vs the cpu float32 polynomials (each within a few ulp of the exact value)
LOOSE = {"tan", "lgamma", "sinh", "cosh", "exp", "exp2", "pow", "expm1", "erfc", "erfinv", "elu", "softplus"}


def on_cuda(t):
    """The same values and strides as ``t`` on cuda (a strided cpu view becomes a strided cuda view)."""
    if t.is_contiguous():
        return t.cuda()
    from jitorch.ops.movement import _base_buffer
    root = _base_buffer(t._data)
    assert root.flags.c_contiguous
    whole = jitorch.from_numpy(root.reshape(-1)).cuda()
    c = whole.as_strided(t.shape, t.stride(), t.storage_offset())
    np.testing.assert_array_equal(c.cpu().numpy(), t.detach().numpy())
    return c


def compare(got, want, what, name=""):
    assert got.device == CUDA, what
    assert got.dtype is want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert tuple(got.shape) == tuple(want.shape), what
    g, w = got.detach().cpu().numpy(), want.detach().numpy()
    if want.dtype.category < 2:
        np.testing.assert_array_equal(g, w, err_msg=what)
        return
    rtol, atol = FLOAT_TOL[want.dtype]
    if name in LOOSE and want.dtype is D.float32:
        rtol, atol = 1e-5, 1e-5
    np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=what)


EW = [name for name, *_ in SPECS if "cuda" in registry.get(name).impl]


@pytest.mark.parametrize("name", EW)
def test_elementwise_op_on_cuda_matches_cpu(name):
    nin = next(s[1] for s in SPECS if s[0] == name)
    rng = np.random.default_rng(sum(map(ord, name)))
    dtypes = [d for d in dtypes_for(name) if d in SAMPLE]
    cases = UNARY_CASES if nin == 1 else NARY_CASES
    for k, dtype in enumerate(dtypes):
        shapes, layout = cases[k % len(cases)]  # rotate the layouts over the dtypes: all get covered
        for shapes, layout in ([(shapes, layout)] if dtype is not D.float32 else cases):
            shapes = [shapes] if nin == 1 else list(shapes) + ([shapes[0]] if nin == 3 else [])
            arrays = make_inputs(rng, name, dtype, shapes)
            if name == "erfinv":
                arrays = [np.clip(a, -0.9, 0.9).astype(a.dtype) for a in arrays]
            if name == "nan_to_num" and dtype.is_floating_point:
                arrays[0].reshape(-1)[:3] = [np.nan, np.inf, -np.inf][: arrays[0].size]
            cpu = [as_layout(a, layout if a.ndim else "contiguous") for a in arrays]
            dev = [on_cuda(t) for t in cpu]
            attrs = default_attrs(name, dtype)
            if name == "nan_to_num":
                attrs = dict(nan=0.5, posinf=7.0, neginf=-7.0)
            want = call(name, *cpu, **attrs)
            got = call(name, *dev, **attrs)
            compare(got, want, f"{name} {dtype.name} {shapes} {layout}", name)


SCALAR_OPS = ["add", "sub", "mul", "div", "pow", "maximum", "lt", "eq", "remainder", "bitwise_and", "atan2"]


@pytest.mark.parametrize("name", SCALAR_OPS)
def test_binary_op_with_python_scalar(name):
    rng = np.random.default_rng(3)
    for dtype in (D.float32, D.int64):
        if dtype not in dtypes_for(name):
            continue
        x = make_inputs(rng, name, dtype, [(3, 4)])[0]
        if name == "pow" and dtype.is_floating_point:
            x = np.abs(x) + 0.5
        for scalar in (2, 2.5, True):
            if name == "bitwise_and" and isinstance(scalar, float):
                continue
            attrs = default_attrs(name, dtype)
            for args in ((x, scalar), (scalar, x)):
                if name in ("remainder", "div", "pow") and args[0] is scalar:
                    continue
                cpu = [jitorch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
                dev = [t.cuda() if isinstance(t, jitorch.Tensor) else t for t in cpu]
                compare(call(name, *dev, **attrs), call(name, *cpu, **attrs), f"{name} {dtype.name} {args[1]!r}", name)


SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-30, 88.0, -88.0, 100.0, -100.0, 1e30,
                    -1e30, 0.5, 2.5, -2.5, 3.0], dtype=np.float64)


def reference(name, *arrays):
    with np.errstate(all="ignore"):
        return np.asarray(registry.get(name).reference(*arrays))


@pytest.mark.parametrize("dtype", [D.float32, D.float64])
def test_special_values_match_numpy(dtype):
    """inf, nan, signed zeros, overflow: IEEE results on cuda, as NumPy gives them (the simulator's math
    module would raise on most of these without the device helpers' guards)."""
    xn = SPECIAL.astype(dtype.np)
    xc = jitorch.from_numpy(xn).cuda()
    for name in ("exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin", "cos", "tan",
                 "sinh", "cosh", "tanh", "sigmoid", "erf", "lgamma", "asin", "acos", "atanh", "acosh",
                 "floor", "ceil", "round", "trunc", "frac", "sign", "signbit", "isnan", "isinf", "isfinite",
                 "reciprocal", "relu", "abs", "neg"):
        got = call(name, xc)
        g, w = got.cpu().numpy(), reference(name, xn).astype(got.dtype.np)
        if got.dtype.category < 2:
            np.testing.assert_array_equal(g, w, err_msg=name)
        else:
            # float32 results below the normal range: the cpu polynomials flush them to zero
            np.testing.assert_allclose(g, w, rtol=1e-5 if dtype is D.float32 else 1e-12, atol=1e-37, equal_nan=True,
                                       err_msg=name)
    yn = np.array([1.0, 0.0, -2.0, np.inf, np.nan, -0.0, 3.0, 5.5, -1.5, 2.0, np.inf, 1.0, 0.0, 1.0, 2.0, -1.0,
                   np.nan, 4.0], dtype.np)
    yc = jitorch.from_numpy(yn).cuda()
    for name in ("div", "fmod", "remainder", "pow", "atan2", "copysign", "maximum", "fmin", "xlogy"):
        got = call(name, xc, yc)
        np.testing.assert_allclose(got.cpu().numpy(), reference(name, xn, yn).astype(got.dtype.np),
                                   rtol=1e-5 if dtype is D.float32 else 1e-12, atol=1e-37, equal_nan=True,
                                   err_msg=name)


CASTS = [D.bool_, D.uint8, D.int16, D.int32, D.int64, D.float16, D.float32, D.float64]


def test_to_dtype_every_pair():
    vals = np.array([0.0, 1.0, -2.0, 3.75, -0.5, 100.0, 7.0], np.float64)
    for src in CASTS:
        a = vals.astype(np.uint8 if src is D.uint8 else np.float64)
        a = (a != 0) if src is D.bool_ else a.astype(src.np)
        cpu = jitorch.from_numpy(a)
        dev = cpu.cuda()
        for dst in CASTS:
            compare(dev.to(dst), cpu.to(dst), f"to_dtype {src.name} -> {dst.name}")


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
def test_clone_contiguous_and_copy(layout):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    cpu = as_layout(a, layout)
    dev = on_cuda(cpu)
    assert dev.is_contiguous() == cpu.is_contiguous()
    assert dev.stride() == cpu.stride()
    c = dev.contiguous()
    assert c.is_contiguous() and c.stride() == (4, 1)
    compare(c, cpu.contiguous(), "contiguous")
    compare(dev.clone(), cpu.clone(), "clone")
    # copy_ into a strided cuda view, broadcasting and converting the source
    target = on_cuda(as_layout(np.zeros((3, 4), np.float64), layout))
    target.copy_(jitorch.tensor([1, 2, 3, 4], dtype=jitorch.int32).cuda())
    np.testing.assert_array_equal(target.cpu().numpy(), np.tile([1.0, 2.0, 3.0, 4.0], (3, 1)))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_matches_cpu(dim):
    rng = np.random.default_rng(1)
    parts = [rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)]
    cpu = [jitorch.from_numpy(parts[0]), jitorch.from_numpy(parts[1]).t().contiguous().t()]
    dev = [t.cuda() for t in cpu]
    compare(jitorch.cat(dev, dim), jitorch.cat(cpu, dim), f"cat dim={dim}")
    mixed = [dev[0], dev[1].to(jitorch.float64)]
    compare(jitorch.cat(mixed, dim), jitorch.cat([cpu[0], cpu[1].double()], dim), "cat promotes")
    compare(jitorch.stack(dev, dim), jitorch.stack(cpu, dim), "stack")
    compare(jitorch.cat([dev[0], jitorch.empty(0, device="cuda")]), jitorch.cat([cpu[0], jitorch.empty(0)]), "legacy")


VIEWS = [
    ("view", lambda t: t.view(4, 3)), ("reshape noncontig", lambda t: t.t().reshape(-1)),
    ("permute", lambda t: t.permute(1, 0)), ("expand", lambda t: t[:1].expand(5, 4)),
    ("slice step", lambda t: t[:, 1::2]), ("select", lambda t: t[1]), ("select 0-d", lambda t: t[1, 2]),
    ("unsqueeze", lambda t: t.unsqueeze(1)), ("squeeze", lambda t: t[:1].squeeze(0)),
    ("diagonal", lambda t: t.diagonal()), ("diagonal offset", lambda t: t.diagonal(1)),
    ("diagonal negative", lambda t: t.diagonal(-1)), ("as_strided", lambda t: t.as_strided((2, 2), (1, 4), 1)),
    ("unfold", lambda t: t.reshape(-1).unfold(0, 4, 3)), ("narrow", lambda t: t.narrow(1, 1, 2)),
    ("flatten", lambda t: t.flatten()), ("chunk", lambda t: t.chunk(2, 1)[1]), ("T", lambda t: t.T),
    ("movedim", lambda t: jitorch.movedim(t.unsqueeze(0), 0, 2)),
]


@pytest.mark.parametrize("name,fn", VIEWS, ids=[v[0] for v in VIEWS])
def test_views_match_cpu_and_share_memory(name, fn):
    cpu = jitorch.arange(12, dtype=jitorch.float32).reshape(3, 4)
    dev = cpu.cuda()
    want, got = fn(cpu), fn(dev)
    assert got.stride() == want.stride(), name
    compare(got, want, name)
    if want._base is not None and name != "reshape noncontig":
        # a view: writing through it changes the base on both devices alike
        want.fill_(-1.0) if name != "expand" else None
        got.fill_(-1.0) if name != "expand" else None
        compare(dev, cpu, f"{name}: write through the view")


# ---------------------------------------------------------------- every op with a cuda kernel, forward and backward
# The gradient table's cases (tests/test_autograd_table.py: every differentiable op, float64, broadcast,
# non-contiguous and 0-d inputs) run on cuda and are compared with the same case on cpu: outputs and the
# gradients of every input. An op joins this test as soon as it has an impl['cuda'].
from .test_autograd_table import CASES as GRAD_CASES  # noqa: E402

GRAD_ALL = [(c, 0) for c in GRAD_CASES]  # the first variant of each case: the simulator is slow


def _cuda_input(x):
    if not isinstance(x, jitorch.Tensor):
        return x
    c = on_cuda(x.detach())
    return c.requires_grad_() if x.requires_grad else c


def _forward_backward(case, inputs):
    out = case.fn(*inputs)
    outs = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(o, jitorch.Tensor)]
    diff = [o for o in outs if o.requires_grad]
    weights = []
    rng = np.random.default_rng(7)
    for o in diff:
        w = jitorch.from_numpy(rng.uniform(0.5, 1.5, tuple(o.shape)).astype(o.dtype.np))
        weights.append(w.to(o.device))
    if diff:
        jitorch.autograd.backward(diff, weights)
    grads = [x.grad if isinstance(x, jitorch.Tensor) and x.requires_grad else None for x in inputs]
    return outs, grads


@pytest.mark.parametrize("case,k", [p for p in GRAD_ALL if "cuda" in registry.get(p[0].op).impl],
                         ids=[f"{c.op}-{k}" for c, k in GRAD_ALL if "cuda" in registry.get(c.op).impl])
def test_op_forward_and_gradients_on_cuda_match_cpu(case, k, monkeypatch):
    from . import test_autograd_table as table
    inputs = case.build(k, np.random.default_rng(1234 + k))
    dev_inputs = [_cuda_input(x) for x in inputs]
    want_out, want_grads = _forward_backward(case, inputs)
    # the cases' index and mask tensors are made inside their functions: make those on cuda for the cuda run
    monkeypatch.setattr(table, "_I", lambda v: jitorch.tensor(v, dtype=jitorch.int64, device="cuda"))
    monkeypatch.setattr(table, "_M", lambda v: jitorch.tensor(v, dtype=jitorch.bool, device="cuda"))
    monkeypatch.setattr(table, "_POOL_IDX", table._POOL_IDX.cuda())
    try:
        got_out, got_grads = _forward_backward(case, dev_inputs)
    except NotImplementedError as e:  # the backward needs an op whose cuda kernel is not written yet
        pytest.skip(f"backward of {case.op} on cuda: {e}")
    except RuntimeError as e:
        if "same device" not in str(e):
            raise
        pytest.skip(f"the case builds cpu tensors inside its function: {e}")
    assert len(got_out) == len(want_out)
    for g, w in zip(got_out, want_out):
        compare(g, w, f"{case.op}-{k} output", case.op)
    for i, (g, w) in enumerate(zip(got_grads, want_grads)):
        assert (g is None) == (w is None), f"{case.op}-{k}: gradient {i} present on one device only"
        if g is not None:
            compare(g, w, f"{case.op}-{k} gradient of input {i}", case.op)

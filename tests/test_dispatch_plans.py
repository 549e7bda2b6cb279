"""Dispatch plans (jitorch/_dispatch.py): the per-signature caches of rule results and kernels that
keep the per-op overhead of small tensors low. Every planned result is checked against the general
path (the definition of behaviour) and NumPy; the tests change one thing at a time after a plan
exists (dtype, shape, strides, device, default dtype, requires_grad, grad mode, tracing, in-place
versions) and check the cached plan is not used where it does not apply."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import jitorch
from jitorch import _dispatch, jit
from jitorch import _dtype as D
from jitorch._device import device
from jitorch.ops.registry import OPS, clear_plans
from jitorch.tensor import Tensor

RNG = np.random.default_rng(0)


def arr(shape, dtype=np.float32, lo=-3, hi=3):
    if np.dtype(dtype) == np.bool_:
        return np.asarray(RNG.random(shape) > 0.5)
    if np.dtype(dtype).kind in "iu":
        return np.asarray(RNG.integers(max(lo, np.iinfo(dtype).min), hi, shape).astype(dtype))
    return np.asarray(RNG.uniform(lo, hi, shape).astype(dtype))


def T(a):
    return jitorch.from_numpy(np.array(a, copy=True, order="C"))


def general(name, *inputs, **attrs):
    """The same call through the general path only (no plan)."""
    return _dispatch._call_general(OPS[name], name, inputs, attrs)


def same(a, b):
    """Equal values, dtype and shape (NaN == NaN)."""
    ra = a if isinstance(a, tuple) else (a,)
    rb = b if isinstance(b, tuple) else (b,)
    assert len(ra) == len(rb)
    for x, y in zip(ra, rb):
        assert x.dtype is y.dtype and tuple(x.shape) == tuple(y.shape)
        np.testing.assert_array_equal(x._data, y._data)


@pytest.fixture(autouse=True)
def _fresh_plans():
    clear_plans()
    yield
    clear_plans()


# ---------------------------------------------------------------- elementwise plans

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.int8, np.uint8, np.bool_]
SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4), (0,), (0, 3)]


@pytest.mark.parametrize("name", ["add", "mul", "sub", "div", "maximum", "eq", "lt", "bitwise_and", "atan2"])
@pytest.mark.parametrize("shape", SHAPES)
def test_binary_plans_match_general_path_and_numpy(name, shape):
    for d0, d1 in itertools.product(DTYPES, DTYPES):
        a, b = T(arr(shape, d0)), T(arr(shape, d1))
        try:
            want = general(name, a, b, **dict(OPS[name].attrs))
        except (RuntimeError, TypeError) as e:  # the rules refuse: the planned call must raise the same
            with pytest.raises(type(e)) as info:
                _dispatch.call(name, a, b, **dict(OPS[name].attrs))
            assert str(info.value) == str(e)
            continue
        for _ in range(2):  # builds the plan, then uses it
            got = _dispatch.call(name, a, b, **dict(OPS[name].attrs))
            same(got, want)
        with np.errstate(all="ignore"):
            ref = np.asarray(OPS[name].reference(a._data, b._data))
        if ref.dtype != got._data.dtype:
            continue  # NumPy promotes differently (int8 atan2 -> float16): the general path is the reference
        np.testing.assert_allclose(got._data.astype(np.float64), ref.astype(np.float64),
                                   rtol=1e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", ["exp", "relu", "neg", "abs", "sqrt", "isnan", "sigmoid", "logical_not"])
def test_unary_plans_match_general_path(name):
    for d, shape in itertools.product(DTYPES, SHAPES):
        x = T(arr(shape, d))
        try:
            want = general(name, x)
        except (RuntimeError, TypeError) as e:
            with pytest.raises(type(e)):
                _dispatch.call(name, x)
            continue
        same(_dispatch.call(name, x), want)
        same(_dispatch.call(name, x), want)


@pytest.mark.parametrize("scalar", [2, -1, 0, 1.5, -0.0, 1e40, float("nan"), True, False, 1000, 2 ** 70])
@pytest.mark.parametrize("dt", [np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_])
def test_tensor_scalar_plans(scalar, dt):
    """Python scalars go into the kernel as stride-0 arrays of the compute type; values that do not
    fit it (int8 + 1000 wraps, 2 ** 70) take the general path, which defines the result."""
    for shape in [(), (1,), (5,), (2, 3)]:
        x = T(arr(shape, dt))
        for name, args in [("add", (x, scalar)), ("add", (scalar, x)), ("mul", (x, scalar)),
                           ("sub", (scalar, x)), ("maximum", (x, scalar)), ("lt", (x, scalar))]:
            attrs = dict(OPS[name].attrs)
            with np.errstate(all="ignore"):
                try:
                    want = general(name, *args, **attrs)
                except (RuntimeError, TypeError, OverflowError) as e:
                    with pytest.raises(type(e)):
                        _dispatch.call(name, *args, **attrs)
                    continue
                same(_dispatch.call(name, *args, **attrs), want)
                same(_dispatch.call(name, *args, **attrs), want)


def test_python_operators_take_the_plans():
    a, b = T(arr((4,))), T(arr((4,)))
    np.testing.assert_allclose((a + b)._data, a._data + b._data)
    np.testing.assert_allclose((a * 2.0)._data, a._data * 2)
    np.testing.assert_allclose((1.0 - a)._data, 1 - a._data)
    np.testing.assert_allclose(jitorch.exp(a)._data, np.exp(a._data), rtol=1e-6)
    assert OPS["add"].plans and OPS["mul"].plans and OPS["sub"].plans and OPS["exp"].plans


def test_dtype_shape_and_stride_changes_after_a_plan():
    a = T(arr((3, 4)))
    assert (a + a).dtype is D.float32
    key = next(iter(OPS["add"].plans))
    for x in [T(arr((3, 4), np.float64)), T(arr((5,))), T(arr((2, 3, 4))), T(arr((4, 3))).t(),
              T(arr((3, 8)))[:, ::2], T(arr((3, 4), np.int32)), T(arr((1, 4)))]:
        for y in [x, T(np.ascontiguousarray(x._data)), a]:
            try:
                want = general("add", x, y, alpha=1)
            except RuntimeError:
                with pytest.raises(RuntimeError):
                    x + y
                continue
            same(x + y, want)
            same(x * y, general("mul", x, y))
    assert key in OPS["add"].plans


def test_alpha_and_attributes_are_not_part_of_the_plan():
    a, b = T(arr((5,))), T(arr((5,)))
    for alpha in [1, 2, -0.5, 3]:
        np.testing.assert_allclose(jitorch.add(a, b, alpha=alpha)._data, a._data + alpha * b._data, rtol=1e-6)
    x = T(arr((6,)))
    for slope in [0.01, 0.2]:
        np.testing.assert_allclose(jitorch.nn.functional.leaky_relu(x, slope)._data,
                                   np.where(x._data > 0, x._data, slope * x._data), rtol=1e-6)


def test_default_dtype_is_part_of_the_signature():
    x = T(arr((3,), np.int32))
    assert (x * 1.5).dtype is D.float32
    assert jitorch.exp(x).dtype is D.float32
    prev = jitorch.get_default_dtype()
    try:
        jitorch.set_default_dtype(jitorch.float64)
        assert (x * 1.5).dtype is D.float64
        assert jitorch.exp(x).dtype is D.float64
        np.testing.assert_allclose(jitorch.exp(x)._data, np.exp(x._data.astype(np.float64)))
    finally:
        jitorch.set_default_dtype(prev)
    assert (x * 1.5).dtype is D.float32


def test_non_cpu_devices_never_take_a_plan():
    x = T(arr((4,)))
    fake = Tensor._wrap(x._data, device("cuda"))
    op = OPS["add"]
    assert _dispatch._fast_elementwise(op, (fake, fake), {"alpha": 1}) is None
    assert _dispatch._fast_elementwise(op, (fake, 1.0), {"alpha": 1}) is None
    assert _dispatch._fast_elementwise(OPS["exp"], (fake,), {}) is None
    assert _dispatch._fast_inplace(op, fake, (fake, x), {"alpha": 1}) is None
    assert _dispatch._planned(OPS["sum"], (fake,), {"dim": (0,), "keepdim": False}) is None
    assert _dispatch._planned(OPS["view"], (fake,), {"size": (2, 2)}) is None
    # a cpu device object that is not the CPU singleton is still cpu
    other_cpu = Tensor._wrap(x._data, device("cpu"))
    np.testing.assert_allclose((other_cpu + other_cpu)._data, 2 * x._data)
    assert (other_cpu + other_cpu).device == device("cpu")


def test_float16_takes_the_general_path():
    x = T(arr((5,), np.float16))
    same(x + x, general("add", x, x, alpha=1))
    same(x * 2.0, general("mul", x, 2.0))
    assert all(p is False for p in OPS["add"].plans.values())


def test_errors_are_not_cached():
    b = T(arr((3,), np.bool_))
    for _ in range(3):
        with pytest.raises(RuntimeError, match="Subtraction"):
            b - b
        with pytest.raises(RuntimeError, match="size of tensor a"):
            T(arr((3,))) + T(arr((4,)))
    assert not OPS["sub"].plans
    x = T(arr((2, 3)))
    for _ in range(3):
        with pytest.raises(RuntimeError, match="invalid for input of size 6"):
            x.view(4)
        with pytest.raises(IndexError, match="out of bounds"):
            x[2]
        with pytest.raises(IndexError, match="Dimension out of range"):
            x.sum(5)


def test_plan_tables_are_bounded():
    x = T(arr((64,)))
    for n in range(1, 64):
        x[:n].view(-1)
    for n in range(_dispatch._MAX_PLANS + 10):
        _dispatch.call("view", x, size=(64 - n % 64, -1) if 64 % (64 - n % 64) == 0 else (-1,))
    assert all(len(op.plans) <= _dispatch._MAX_PLANS for op in OPS.values())


# ---------------------------------------------------------------- in place

def test_inplace_plans_match_general_path_and_bump_versions():
    for d0, d1 in itertools.product([np.float32, np.float64, np.int32, np.int64, np.bool_], repeat=2):
        for shape in [(), (1,), (6,), (2, 3)]:
            base = arr(shape, d0)
            other = arr(shape, d1)
            for name, operand in [("add", other), ("mul", other), ("add", 2), ("mul", 0.5), ("sub", True)]:
                attrs = dict(OPS[name].attrs)
                t_fast, t_gen = T(base.copy()), T(base.copy())
                src = T(operand) if isinstance(operand, np.ndarray) else operand
                want_err = None
                try:
                    general_inplace(name, t_gen, src, **attrs)
                except RuntimeError as e:
                    want_err = e
                v0 = t_fast._version
                if want_err is not None:
                    with pytest.raises(RuntimeError):
                        _dispatch.call_inplace(name, t_fast, src, **attrs)
                    continue
                _dispatch.call_inplace(name, t_fast, src, **attrs)
                assert t_fast._version == v0 + 1
                same(t_fast, t_gen)


def general_inplace(name, target, *others, **attrs):
    """call_inplace with the in-place plans switched off."""
    orig = _dispatch._fast_inplace
    _dispatch._fast_inplace = lambda *a: None
    try:
        return _dispatch.call_inplace(name, target, *others, **attrs)
    finally:
        _dispatch._fast_inplace = orig


def test_inplace_refusals_still_raise():
    x = T(arr((3,), np.int32))
    for _ in range(2):
        with pytest.raises(RuntimeError, match="can't be cast"):
            x.add_(T(arr((3,))))
        with pytest.raises(RuntimeError, match="can't be cast"):
            x.mul_(1.5)
        with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
            T(arr((3,))).add_(T(arr((2, 3))))
    e = T(arr((1,))).expand(4)
    with pytest.raises(RuntimeError, match="more than one element"):
        e.add_(T(arr((4,))))


def test_inplace_through_views_and_detach_shares_versions():
    w = T(arr((4,))).requires_grad_()
    out = w * w  # saves w
    w.detach().add_(1.0)  # planned in-place write into w's memory, no autograd: bumps the shared version
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()
    base = T(np.zeros(6, np.float32))
    v = base[2:4]
    v.add_(T(np.ones(2, np.float32)))
    np.testing.assert_array_equal(base._data, [0, 0, 1, 1, 0, 0])
    assert base._version == 1 and v._version == 1


def test_inplace_autograd_rules_apply_after_a_plan():
    a = T(arr((3,)))
    a.add_(1.0)  # builds the plan
    leaf = T(arr((3,))).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        leaf.add_(1.0)
    with jitorch.no_grad():
        leaf.add_(1.0)  # optimizer-style update: allowed, untracked
    assert leaf.grad_fn is None
    view = leaf[0:2]
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        view.mul_(2.0)
    # a non-leaf written in place records the op: gradient of (x * 2).add_(x) is 3
    x = T(arr((3,))).requires_grad_()
    y = x * 2.0
    y.add_(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad._data, np.full(3, 3.0, np.float32))


# ---------------------------------------------------------------- autograd and grad mode

def test_requires_grad_and_grad_mode_after_a_plan():
    a, b = T(arr((3,))), T(arr((3,)))
    for _ in range(2):
        assert (a * b).grad_fn is None and jitorch.exp(a).grad_fn is None and a.sum().grad_fn is None
    x = T(arr((3,))).requires_grad_()
    y = (x * b + 1.0).exp().sum() + x[1] + x.view(3, 1).sum()
    assert y.grad_fn is not None
    y.backward()
    want = b._data * np.exp(x._data * b._data + 1.0) + np.array([0, 1, 0]) + 1
    np.testing.assert_allclose(x.grad._data, want, rtol=1e-5)
    with jitorch.no_grad():
        assert (x * b).grad_fn is None and x[0].grad_fn is None and x.sum().grad_fn is None
    p = jitorch.nn.Parameter(T(arr((3,))))
    z = (p * p).sum()
    z.backward()
    np.testing.assert_allclose(p.grad._data, 2 * p._data, rtol=1e-6)


# ---------------------------------------------------------------- rule plans: views, reductions, matmul

def test_view_plans_check_strides_every_call():
    x = T(arr((4, 6)))
    same(x.view(24), general("view", x, size=(24,)))
    nc = T(arr((6, 4))).t()  # the same shape, not viewable as 24
    for _ in range(2):
        with pytest.raises(RuntimeError, match="not compatible with input tensor's size and stride"):
            nc.view(24)
    same(nc.view(4, 6), general("view", nc, size=(4, 6)))
    same(nc.reshape(24), T(np.ascontiguousarray(nc._data).reshape(24)))


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (1,)])
def test_view_op_plans_match_general_path(shape):
    x = T(arr(shape))
    nd = len(shape)
    calls = [("select", dict(dim=d, index=i)) for d in range(nd) for i in (0, -1)]
    calls += [("slice", dict(dim=d, start=s, stop=e, step=st)) for d in range(nd)
              for s, e, st in [(0, 2, 1), (1, None, 2), (-2, 100, 1), (None, None, 1)]]
    calls += [("unsqueeze", dict(dim=d)) for d in range(-nd - 1, nd + 1)]
    calls += [("squeeze", dict(dim=None)), ("squeeze", dict(dim=0))]
    calls += [("permute", dict(dims=tuple(reversed(range(nd))))), ("view", dict(size=(-1,)))]
    for src in (x, T(arr(tuple(reversed(shape)))).permute(*reversed(range(nd)))):
        for name, attrs in calls:
            for _ in range(2):
                try:
                    want = general(name, src, **attrs)
                except RuntimeError:
                    with pytest.raises(RuntimeError):
                        _dispatch.call(name, src, **attrs)
                    continue
                got = _dispatch.call(name, src, **attrs)
                same(got, want)
                assert got._data.base is not None or got._data is src._data  # still a view
                assert got._version_box is src._version_box


def test_getitem_int_is_a_checked_view():
    x = T(arr((3, 2)))
    for i in [0, 2, -1, -3]:
        r = x[i]
        np.testing.assert_array_equal(r._data, x._data[i])
        r.mul_(0.0)
        assert not x._data[i].any()
    for bad in [3, -4, 100]:
        with pytest.raises(IndexError, match="out of bounds for dimension 0 with size 3"):
            x[bad]
    with pytest.raises(IndexError):
        T(np.float32(1.0))[0]
    y = T(arr((4,)))
    assert y[1].shape == () and float(y[1]) == float(y._data[1])


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.int32, np.bool_, np.float16])
def test_reduction_plans(dt):
    for shape in [(), (1,), (7,), (3, 4), (2, 3, 4)]:
        x = T(arr(shape, dt))
        nd = len(shape)
        dims_list = [tuple(range(nd))] + [(d,) for d in range(nd)] + ([(0, 2), (1, 2)] if nd == 3 else [])
        for src in (x, x.permute(*reversed(range(nd))) if nd else x):
            for dims in dims_list:
                for keepdim in (False, True):
                    for name in ("sum", "prod", "amax", "amin"):
                        if name in ("amax", "amin") and dt == np.bool_:
                            continue
                        attrs = dict(dim=dims, keepdim=keepdim)
                        if not nd and dims:
                            continue
                        want = general(name, src, **attrs)
                        same(_dispatch.call(name, src, **attrs), want)
                        same(_dispatch.call(name, src, **attrs), want)
        with np.errstate(all="ignore"):
            ref = x._data.sum(dtype=np.int64 if np.dtype(dt).kind in "biu" else dt)
        np.testing.assert_allclose(x.sum()._data.astype(np.float64), np.float64(ref), rtol=1e-3)


def test_matmul_plans():
    for sa, sb in [((1, 1), (1, 1)), ((3, 4), (4, 2)), ((4,), (4,)), ((2, 3, 4), (4, 5)), ((3,), (3, 2))]:
        a, b = T(arr(sa)), T(arr(sb))
        for _ in range(2):
            np.testing.assert_allclose((a @ b)._data, a._data @ b._data, rtol=1e-5)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        T(arr((2, 3))) @ T(arr((2, 3)))
    with pytest.raises(RuntimeError, match="same dtype"):
        T(arr((2, 2))) @ T(arr((2, 2), np.float64))


def _readonly(a):
    a = np.array(a, copy=True, order="C")
    a.flags.writeable = False
    return jitorch.from_numpy(a)


def _unaligned(a):
    """A C-contiguous copy of a whose data starts one byte past an aligned address."""
    a = np.asarray(a)
    buf = np.zeros(a.nbytes + 1, np.uint8)
    u = np.ndarray(a.shape, a.dtype, buf, 1)
    u[...] = a
    assert a.dtype.itemsize == 1 or a.size == 0 or not u.flags.aligned
    return jitorch.from_numpy(u)


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.int32, np.bool_, np.float16])
def test_reduction_frontends_match_general_path(dt):
    """The frontends (x.sum(), mean, prod, amax, amin, any, all) reach the plans through
    _dispatch.call_reduction; x.sum() of a small float tensor calls a compiled entry point
    (kernels._entry) whose key fixes dtype, ndim and contiguity: check every layout against the
    general path and NumPy, including read-only and non-contiguous inputs, and plan reuse."""
    wide = np.float64 if np.dtype(dt).kind == "f" else np.int64
    tol = dict(rtol=2e-3, atol=2e-3) if dt == np.float16 else dict(rtol=1e-5, atol=1e-5)
    for shape in [(), (1,), (7,), (3, 4), (2, 3, 4), (0,), (2, 0)]:
        base = arr(shape, dt)
        nd = len(shape)
        srcs = [T(base), _readonly(base), _unaligned(base)] + ([T(base).transpose(0, 1)] if nd >= 2 else [])
        for x in srcs:
            a = x._data
            for dims in [tuple(range(nd))] + [(d,) for d in range(nd)]:
                for keepdim in (False, True):
                    for _ in range(2):  # builds the plan, then uses it
                        s = x.sum() if not keepdim and len(dims) == nd else jitorch.sum(x, dims, keepdim)
                        same(s, general("sum", x, dim=dims, keepdim=keepdim))
                        np.testing.assert_allclose(s._data.astype(np.float64), a.astype(wide).sum(
                            axis=dims, keepdims=keepdim), **tol)
                        if len(dims) == 1:
                            same(jitorch.prod(x, dims[0], keepdim), general("prod", x, dim=dims, keepdim=keepdim))
                        elif not keepdim:
                            same(x.prod(), general("prod", x, dim=dims, keepdim=False))
                        same(x.any(dims, keepdim), general("any", x, dim=dims, keepdim=keepdim))
                        same(x.all(dims, keepdim), general("all", x, dim=dims, keepdim=keepdim))
                        if a.size and dt != np.bool_:
                            same(x.amax(dims, keepdim), general("amax", x, dim=dims, keepdim=keepdim))
                            same(x.amin(dims, keepdim), general("amin", x, dim=dims, keepdim=keepdim))
                        if np.dtype(dt).kind == "f" and a.size:
                            np.testing.assert_allclose(x.mean(dims, keepdim)._data.astype(np.float64), a.astype(
                                np.float64).mean(axis=dims, keepdims=keepdim), **tol)
    with pytest.raises(RuntimeError, match="Expected reduction dim"):
        T(arr((0,), np.float32)).amax()
    with pytest.raises(IndexError, match="Dimension out of range"):
        T(arr((3,), dt)).sum(1)


def test_reduction_frontends_record_grads_and_traces():
    x = T(arr((3, 4))).requires_grad_()
    for _ in range(2):
        y = x.sum() + x.sum(1).sum() + x.mean() + x.prod(0).sum() * 0 + x.amax(1).sum()
        assert y.grad_fn is not None
        x.grad = None
        y.backward()
        want = 2 + 1 / 12 + (x._data == x._data.max(1, keepdims=True))
        np.testing.assert_allclose(x.grad._data, want, rtol=1e-6)
    with jitorch.no_grad():
        assert x.sum().grad_fn is None and x.amax(0).grad_fn is None

    def f(a):
        return a.sum() + a.amin(0).sum() + jitorch.sum(a, 1).mean()

    a = T(arr((3, 4)))
    f(a)  # plans exist before tracing
    tr = jit.trace(f, (a,), check_trace=False)
    ops = [n.op for n in tr.raw_graph.nodes]
    assert ops.count("sum") >= 3 and "amin" in ops, ops
    a2 = T(arr((3, 4)))
    np.testing.assert_allclose(tr(a2)._data, f(a2)._data, rtol=1e-6)


def test_small_matmul_entry_point_plans():
    """1x1 .. 8x8 products of C-contiguous operands call kernels.small.mm_small_out's compiled entry point
    through the plan; read-only, transposed (non-contiguous), mixed-dtype and large operands do not."""
    for sa, sb in [((1, 1), (1, 1)), ((3, 4), (4, 2)), ((8, 8), (8, 8)), ((2, 1), (1, 5)), ((0, 3), (3, 2)),
                   ((2, 0), (0, 3)), ((16, 16), (16, 16))]:
        for dt in (np.float32, np.float64, np.int64, np.int32, np.int8):
            a0, b0 = arr(sa, dt), arr(sb, dt)
            with np.errstate(all="ignore"):
                ref = np.matmul(a0, b0)
            for a, b in [(T(a0), T(b0)), (_readonly(a0), _readonly(b0)), (T(a0), _readonly(b0)),
                         (_unaligned(a0), _unaligned(b0)),
                         (T(np.ascontiguousarray(a0.T)).t(), T(np.ascontiguousarray(b0.T)).t())]:
                for _ in range(2):
                    got = a @ b
                    same(got, general("matmul", a, b))
                    if dt in (np.float32, np.float64):
                        np.testing.assert_allclose(got._data, ref, rtol=1e-5, atol=1e-5)
                    else:
                        np.testing.assert_array_equal(got._data, ref)
    with pytest.raises(RuntimeError, match="same dtype"):
        T(arr((1, 1))) @ T(arr((1, 1), np.float64))
    a = T(arr((2, 2))).requires_grad_()
    for _ in range(2):
        a.grad = None
        (a @ a).sum().backward()
        ones = np.ones((2, 2), np.float32)  # d sum(A @ A) / dA = 1 A^T + A^T 1
        np.testing.assert_allclose(a.grad._data, ones @ a._data.T + a._data.T @ ones, rtol=1e-5)


def test_call_binary_falls_back_and_records():
    """a @ b enters through _dispatch.call_binary: non-tensors and other devices go to call (same errors),
    autograd and the tracer see the planned product, and the default dtype is part of its key."""
    a, b = T(arr((2, 3))), T(arr((3, 2)))
    with pytest.raises(RuntimeError, match="at least 1D"):
        _dispatch.call_binary(OPS["matmul"], a, 5)
    with pytest.raises(RuntimeError, match="at least 1D"):
        jitorch.matmul(a, 5)
    same(_dispatch.call_binary(OPS["matmul"], a, b), general("matmul", a, b))
    w = T(arr((3, 2))).requires_grad_()
    for _ in range(2):
        w.grad = None
        (a @ w).sum().backward()
        np.testing.assert_allclose(w.grad._data, a._data.T @ np.ones((2, 2), np.float32), rtol=1e-6)

    def f(x, y):
        return (x @ y).relu()

    tr = jit.trace(f, (a, b), check_trace=False)
    assert [n.op for n in tr.raw_graph.nodes][:1] == ["matmul"]
    a2, b2 = T(arr((2, 3))), T(arr((3, 2)))
    np.testing.assert_allclose(tr(a2, b2)._data, np.maximum(a2._data @ b2._data, 0), rtol=1e-6)


def test_unhashable_attributes_take_the_general_path():
    x = T(arr((2, 3)))
    same(_dispatch.call("permute", x, dims=[1, 0]), general("permute", x, dims=(1, 0)))
    same(_dispatch.call("sum", x, dim=[0], keepdim=False), general("sum", x, dim=(0,), keepdim=False))


# ---------------------------------------------------------------- tracing

def test_tracing_records_planned_ops():
    def f(x, y):
        z = (x + y) * 2.0
        z = jitorch.exp(z) + x[0] + x.view(2, 2).sum() + (x.view(2, 2) * y[:2]).view(4)  # broadcast plan
        return z.relu() - y.sum()

    x, y = T(arr((4,))), T(arr((4,)))
    want = f(x, y)  # eager first: the plans exist before tracing
    tr = jit.trace(f, (x, y), check_trace=False)
    ops = [n.op for n in tr.raw_graph.nodes]
    for name in ("add", "mul", "exp", "select", "view", "sum", "relu", "sub"):
        assert name in ops, (name, ops)
    x2, y2 = T(arr((4,))), T(arr((4,)))
    np.testing.assert_allclose(tr(x2, y2)._data, f(x2, y2)._data, rtol=1e-6)
    np.testing.assert_allclose(tr(x, y)._data, want._data, rtol=1e-6)


def test_tracing_sees_planned_inplace_ops():
    def f(x):
        y = x * 1.0
        y.add_(2.0)
        y.mul_(x)
        return y

    x = T(arr((3,)))
    f(x)
    tr = jit.trace(f, (x,), check_trace=False)
    x2 = T(arr((3,)))
    np.testing.assert_allclose(tr(x2)._data, (x2._data + 2.0) * x2._data, rtol=1e-6)


def test_inline_result_tensors_match_wrap_and_make_view():
    """The fast paths build result tensors inline (as Tensor._wrap / _make_view do): same fields."""
    x, y = T(arr((3,))), T(arr((3,)))
    ref = Tensor._wrap(x._data)
    ref_view = Tensor._make_view(x._data[1:], x)

    def fields(t):
        return {s: hasattr(t, s) for s in Tensor.__slots__ if s not in ("__weakref__", "__dict__")}, dict(vars(t))

    for r in (x + y, jitorch.exp(x), x.sum()):
        assert fields(r)[0] == fields(ref)[0] and fields(r)[1].keys() == fields(ref)[1].keys()
        assert r._version_box is not x._version_box and r._version == 0 and r.device == x.device
    for v in (x[1:], x.view(3), x[0], x.unsqueeze(0)):
        assert fields(v)[0] == fields(ref_view)[0] and fields(v)[1].keys() == fields(ref_view)[1].keys()
        assert v._version_box is x._version_box and v._base is x
    vv = x[1:][0]
    assert vv._base is x  # a view of a view keeps the root base


BROADCAST_PAIRS = [((1, 64), (64,)), ((3, 1, 4), (5, 1)), ((4, 3), (3,)), ((4, 3), (4, 1)), ((), (3,)),
                   ((2, 1, 3, 1, 5), (4, 3, 1, 1)), ((2, 1, 3, 1, 5, 1), (1, 4, 1, 6, 1, 7)), ((0, 3), (3,)),
                   ((1,), (2, 3)), ((2, 3), ())]


@pytest.mark.parametrize("sa,sb", BROADCAST_PAIRS)
def test_broadcast_plans_match_general_path(sa, sb):
    """Broadcasting operands: a plan per (dtypes, shapes) with stride views (0 on broadcast dims)."""
    for d0, d1 in [(np.float32, np.float32), (np.float64, np.float32), (np.int32, np.float32), (np.int64, np.int8),
                   (np.bool_, np.int32), (np.float32, np.float16)]:
        a, b = T(arr(sa, d0)), T(arr(sb, d1))
        for name, args in [("add", (a, b)), ("mul", (b, a)), ("maximum", (a, b)), ("lt", (a, b)),
                           ("where", (T(arr(sa, np.bool_)), a, b)), ("addcmul", (a, b, 1.5))]:
            attrs = dict(OPS[name].attrs)
            try:
                want = general(name, *args, **attrs)
            except RuntimeError as e:
                with pytest.raises(RuntimeError):
                    _dispatch.call(name, *args, **attrs)
                continue
            with np.errstate(all="ignore"):
                same(_dispatch.call(name, *args, **attrs), want)
                same(_dispatch.call(name, *args, **attrs), want)
    x, y = T(arr(sa)), T(arr(sb))
    np.testing.assert_allclose((x + y)._data, x._data + y._data, rtol=1e-6)
    np.testing.assert_allclose((x - y * 2.0)._data, x._data - y._data * 2, rtol=1e-5)


def test_broadcast_errors_and_grads_after_a_plan():
    a, b = T(arr((4, 3))), T(arr((3,)))
    a + b
    for _ in range(2):
        with pytest.raises(RuntimeError, match="must match the size"):
            a + T(arr((4,)))
    w = T(arr((3,))).requires_grad_()
    (a * w).sum().backward()
    np.testing.assert_allclose(w.grad._data, a._data.sum(0), rtol=1e-5)
    lin = jitorch.nn.Linear(5, 3)
    x = T(arr((2, 5)))
    want = x._data @ lin.weight._data.T + lin.bias._data
    np.testing.assert_allclose(lin(x)._data, want, rtol=1e-5, atol=1e-6)
    lin(x).sum().backward()
    np.testing.assert_allclose(lin.bias.grad._data, np.full(3, 2.0, np.float32))

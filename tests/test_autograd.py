"""Autograd API and engine semantics (torch's), checked against hand-derived values and, when torch is
installed, against torch itself."""
from __future__ import annotations

import gc
import sys
import tracemalloc
import weakref

import numpy as np
import pytest

import jitorch
from jitorch import autograd
from jitorch._dispatch import call

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")


def T(values, requires_grad=True, dtype=jitorch.float64):
    return jitorch.tensor(values, dtype=dtype, requires_grad=requires_grad)


def A(t):
    return np.asarray(t.detach().numpy())


# ---------------------------------------------------------------------------------------------- basics

def test_leaf_and_grad_fn():
    x = T([1.0, 2.0, 3.0])
    y = x * 2 + 1
    assert x.is_leaf and x.requires_grad and x.grad_fn is None
    assert not y.is_leaf and y.requires_grad
    assert y.grad_fn.name() == "AddBackward0"
    assert "<AddBackward0" in repr(y.grad_fn) and "grad_fn=<AddBackward0>" in repr(y)
    (mul_fn, nr), (none_fn, nr2) = y.grad_fn.next_functions
    assert mul_fn.name() == "MulBackward0" and nr == 0 and none_fn is None
    acc, _ = mul_fn.next_functions[0]
    assert acc.name() == "AccumulateGrad" and acc.variable is x
    assert mul_fn.next_functions[1] == (None, 0)
    # one shared AccumulateGrad per leaf
    assert (x * 3).grad_fn.next_functions[0][0] is (x + 1).grad_fn.next_functions[0][0]
    z = T([1.0], requires_grad=False)
    assert not (z * 2).requires_grad and (z * 2).grad_fn is None


def test_grad_accumulates_and_nonleaf_grad_is_none():
    x = T([1.0, 2.0])
    y = x * x
    y.backward(T([1.0, 1.0], False))
    np.testing.assert_allclose(A(x.grad), [2, 4])
    (x * 3).backward(T([1.0, 1.0], False))
    np.testing.assert_allclose(A(x.grad), [5, 7])
    assert y.grad is None and not x.grad.requires_grad


def test_requires_grad_rules():
    with pytest.raises(RuntimeError, match="floating point"):
        jitorch.tensor([1, 2]).requires_grad_()
    x = T([1.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    # integer operands never get gradients; the float result does
    i = jitorch.tensor([2, 3])
    out = x * i
    assert out.requires_grad and out.grad_fn.next_functions[1] == (None, 0)
    out.backward(T([1.0, 1.0], False))
    np.testing.assert_allclose(A(x.grad), [5.0])
    # integer/bool outputs are not differentiable
    assert not (x > 0).requires_grad and not call("to_dtype", x, dtype=jitorch.int64).requires_grad


def test_dtype_promotion_grads_keep_input_dtype():
    x = T([1.0, 2.0], dtype=jitorch.float32)
    y = T([3.0, 4.0], dtype=jitorch.float64)
    (x * y).backward(T([1.0, 1.0], False))
    assert x.grad.dtype is jitorch.float32 and y.grad.dtype is jitorch.float64
    np.testing.assert_allclose(A(x.grad), [3, 4])


# ---------------------------------------------------------------------------------------------- errors

def test_backward_errors():
    x = T([1.0, 2.0])
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        T([1.0], False).backward()
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(T([1.0, 1.0, 1.0], False))


def test_backward_twice_needs_retain_graph():
    x = T([1.0, 2.0])
    y = (x * x).exp()
    g = T([1.0, 1.0], False)
    y.backward(g, retain_graph=True)
    y.backward(g)
    np.testing.assert_allclose(A(x.grad), 2 * 2 * np.array([1.0, 2.0]) * np.exp([1.0, 4.0]))
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward(g)
    # a graph without saved tensors can run again (torch too)
    z = x + 1
    z.backward(g)
    z.backward(g)


def test_inplace_on_leaf_errors_but_not_under_no_grad():
    x = T([1.0, 2.0])
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
        x.add_(1)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        x[0:1].mul_(2)
    with jitorch.no_grad():
        x.add_(1)  # optimizers update parameters like this
    np.testing.assert_allclose(A(x), [2, 3])
    assert x.is_leaf and x.requires_grad


def test_saved_tensor_modified_inplace_error_names_the_op():
    x = T([1.0, 2.0])
    y = x * 1
    z = y.sin()
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*version 1; expected version 0.*'sin'"):
        z.backward(T([1.0, 1.0], False))
    e = (x * 1).exp()
    f = e + 1  # add saves nothing
    e.mul_(2)  # exp saved its output
    with pytest.raises(RuntimeError, match=r"inplace operation.*'exp'"):
        f.backward(T([1.0, 1.0], False))
    # ops that do not save the tensor do not care (torch too)
    a = x * 1
    b = a + 1
    a.mul_(5)
    b.backward(T([1.0, 1.0], False))


def test_grad_errors():
    x = T([1.0, 2.0])
    unused = T([3.0])
    y = (x * x).sum() if hasattr(jitorch.Tensor, "sum") and "sum" in jitorch.ops.registry.OPS else (x * x)[0]
    with pytest.raises(RuntimeError, match="does not require grad"):
        autograd.grad(y, T([1.0], False))
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        autograd.grad(y, [x, unused], retain_graph=True)
    gx, gu = autograd.grad(y, [x, unused], allow_unused=True, retain_graph=True)
    assert gu is None and gx is not None
    gx, gu = autograd.grad(y, [x, unused], materialize_grads=True)
    assert A(gu).tolist() == [0.0]
    assert x.grad is None  # grad() never accumulates


# ---------------------------------------------------------------------------------------------- autograd.grad

def test_grad_and_higher_order():
    x = T([1.0, 2.0, 3.0])
    y = x * x * x
    (g,) = autograd.grad(y, x, T([1.0, 1.0, 1.0], False), create_graph=True)
    np.testing.assert_allclose(A(g), 3 * A(x) ** 2)
    assert g.requires_grad
    (gg,) = autograd.grad(g, x, T([1.0, 1.0, 1.0], False), create_graph=True)
    np.testing.assert_allclose(A(gg), 6 * A(x))
    (ggg,) = autograd.grad(gg, x, T([1.0, 1.0, 1.0], False))
    np.testing.assert_allclose(A(ggg), [6, 6, 6])


def test_hessian_vector_product_through_matmul_and_tanh():
    rng = np.random.default_rng(0)
    W = T(rng.standard_normal((3, 3)))
    x = T(rng.standard_normal(3))
    v = T(rng.standard_normal(3), False)
    y = call("matmul", W, x).tanh()
    f = call("matmul", y, y)  # |tanh(Wx)|^2
    (g,) = autograd.grad(f, x, create_graph=True)
    (hv,) = autograd.grad(g, x, v)
    # numerical H v by central differences of the analytical gradient
    eps = 1e-6

    def grad_at(xv):
        xx = T(xv)
        yy = call("matmul", W.detach(), xx).tanh()
        return A(autograd.grad(call("matmul", yy, yy), xx)[0])
    num = (grad_at(A(x) + eps * A(v)) - grad_at(A(x) - eps * A(v))) / (2 * eps)
    np.testing.assert_allclose(A(hv), num, rtol=1e-5, atol=1e-7)


def test_backward_inputs_only_accumulates_there():
    x = T([1.0, 2.0])
    w = T([3.0, 4.0])
    h = x * w
    h.retain_grad()
    y = h * h
    y.backward(T([1.0, 1.0], False), inputs=[w])
    assert x.grad is None
    np.testing.assert_allclose(A(h.grad), 2 * A(h))  # h's node ran (it is on the path to w), as in torch
    np.testing.assert_allclose(A(w.grad), 2 * A(x) * A(x) * A(w))
    y2 = (x * w) * 2
    y2.backward(T([1.0, 1.0], False), inputs=[x])
    np.testing.assert_allclose(A(x.grad), [6, 8])


def test_create_graph_backward_accumulates_differentiable_grad():
    x = T([2.0])
    (x * x * x).backward(create_graph=True)
    assert x.grad.requires_grad
    np.testing.assert_allclose(A(x.grad), [12.0])
    (g2,) = autograd.grad(x.grad, x)
    np.testing.assert_allclose(A(g2), [12.0])


# ---------------------------------------------------------------------------------------------- hooks

def test_tensor_hooks_leaf_and_nonleaf():
    x = T([1.0, 2.0])
    seen = []
    h = x.register_hook(lambda g: seen.append(A(g).copy()) or g * 10)
    y = x * 3
    y.register_hook(lambda g: g + 1)
    y.backward(T([1.0, 1.0], False))
    np.testing.assert_allclose(seen[0], [6, 6])
    np.testing.assert_allclose(A(x.grad), [60, 60])
    h.remove()
    x.grad = None
    (x * 3).backward(T([1.0, 1.0], False))
    np.testing.assert_allclose(A(x.grad), [3, 3])
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        T([1.0], False).register_hook(lambda g: g)


def test_hook_runs_once_with_the_summed_gradient():
    x = T([1.0])
    calls = []
    x.register_hook(lambda g: calls.append(A(g).item()))
    (x * 2 + x * 3).backward()
    assert calls == [5.0]


def test_retain_grad_and_post_accumulate_hook():
    x = T([1.0, 2.0])
    y = x * 2
    y.retain_grad()
    assert y.retains_grad and not x.retains_grad
    z = y * y
    seen = []
    x.register_post_accumulate_grad_hook(lambda t: seen.append(A(t.grad).copy()))
    z.backward(T([1.0, 1.0], False))
    np.testing.assert_allclose(A(y.grad), 2 * A(y))
    np.testing.assert_allclose(seen[0], A(x.grad))
    x.retain_grad()  # no-op on a leaf


def test_node_hooks():
    x = T([1.0, 2.0])
    y = x * 2
    calls = []
    y.grad_fn.register_prehook(lambda gout: calls.append("pre"))
    y.grad_fn.register_hook(lambda gin, gout: calls.append("post"))
    y.backward(T([1.0, 1.0], False))
    assert calls == ["pre", "post"]


# ---------------------------------------------------------------------------------------------- grad mode

def test_grad_modes():
    x = T([1.0])
    assert jitorch.is_grad_enabled()
    with jitorch.no_grad():
        assert not jitorch.is_grad_enabled()
        assert not (x * 2).requires_grad
        with jitorch.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert jitorch.is_grad_enabled()

    @jitorch.no_grad()
    def f(a):
        return a * 2

    @jitorch.no_grad
    def f2(a):
        return a * 2

    @jitorch.enable_grad()
    def f3(a):
        return a * 2
    assert not f(x).requires_grad and not f2(x).requires_grad
    with jitorch.no_grad():
        assert f3(x).requires_grad

    jitorch.set_grad_enabled(False)
    assert not jitorch.is_grad_enabled()
    jitorch.set_grad_enabled(True)
    with jitorch.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert jitorch.is_grad_enabled()
    with jitorch.inference_mode():
        assert not (x * 2).requires_grad and autograd.is_inference_mode_enabled()
    with jitorch.inference_mode(False):
        assert (x * 2).requires_grad

    @jitorch.inference_mode()
    def f4(a):
        return a * 2
    assert not f4(x).requires_grad

    @jitorch.no_grad()
    def gen(a):
        for _ in range(2):
            yield a * 2
    assert all(not r.requires_grad for r in gen(x))
    assert jitorch.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with jitorch.no_grad():
            raise ValueError
    assert jitorch.is_grad_enabled()


# ---------------------------------------------------------------------------------------------- detach / views

def test_detach_shares_storage_and_version():
    x = T([1.0, 2.0])
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    d.add_(1)  # visible in y, and the version check sees it
    np.testing.assert_allclose(A(y), [3, 5])
    assert y._version == 1
    z = y.detach_()
    assert z is y and y.grad_fn is None and not y.requires_grad


def test_view_gradients():
    x = T(np.arange(12.0).reshape(3, 4))
    y = x[1:, ::2].t().unsqueeze(0) * 2
    y.backward(jitorch.ones(1, 2, 2, dtype=jitorch.float64))
    want = np.zeros((3, 4))
    want[1:, ::2] = 2
    np.testing.assert_allclose(A(x.grad), want)


@needs_torch
@pytest.mark.parametrize("name", ["view_mul", "slice_copy", "setitem", "zeros_setitem", "stale_view",
                                  "view_of_view", "transpose_view", "diagonal", "select_then_base",
                                  "inplace_chain"])
def test_inplace_on_views_matches_torch(name):
    def run(L):
        x = L.tensor([1., 2., 3., 4., 5., 6.], dtype=L.float64, requires_grad=True)
        y = L.tensor([0.5, -1., 2.], dtype=L.float64, requires_grad=True)
        if name == "view_mul":
            b = x * 1
            b.view(2, 3)[0].mul_(y)
            out = b
        elif name == "slice_copy":
            b = x * 2
            b[1:4].copy_(y * y)
            out = b * b
        elif name == "setitem":
            z = L.zeros(6, dtype=L.float64) + x
            z[0:3] = y.exp()
            out = z
        elif name == "zeros_setitem":
            z = L.zeros(6, dtype=L.float64)
            z[2:5] = y
            out = z * x
        elif name == "stale_view":
            b = x * 1
            v = b[:3]
            b.mul_(2)
            out = v * y
        elif name == "view_of_view":
            b = x * 1
            b.view(2, 3)[:, 1].mul_(y[:2])
            out = b
        elif name == "transpose_view":
            b = (x * 1).view(3, 2).t().contiguous()
            b.t()[1].mul_(y[:2])
            out = b
        elif name == "diagonal":
            b = (x * 1)[:4].view(2, 2)
            b.diagonal().mul_(y[:2])
            out = b
        elif name == "select_then_base":
            b = x.view(2, 3) * 1
            r = b[1]
            r.add_(y)
            out = b.exp() * r.sin().unsqueeze(0)
        elif name == "inplace_chain":
            b = x * 1
            b.mul_(y.repeat(2) if L is torch else L.cat([y, y]))
            b.sub_(x)
            b.exp_()
            out = b
        else:
            raise AssertionError(name)
        go = L.tensor(np.arange(1, out.numel() + 1, dtype=np.float64).reshape(tuple(out.shape)))
        out.backward(go)
        return [None if t.grad is None else np.array(t.grad.detach().numpy()) for t in (x, y)]
    got, want = run(jitorch), run(torch)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_inplace_reading_an_alias_of_its_target():
    # torch refuses these (the saved operand shares the target's version counter); jitorch saves a copy
    x = T([1.0, 2.0, 3.0, 4.0])
    b = x * 1
    b[:2].mul_(b[2:])
    b.backward(T([1.0, 1.0, 1.0, 1.0], False))
    np.testing.assert_allclose(A(x.grad), [3, 4, 1 + 1, 1 + 2])


def test_inplace_on_nonleaf_and_alias_of_saved_input():
    x = T([1.0, 2.0, 3.0])
    b = x * 1
    b.mul_(b)  # d(b*b)/db uses the value before the write: jitorch saves a copy
    b.backward(T([1.0, 1.0, 1.0], False))
    np.testing.assert_allclose(A(x.grad), 2 * A(x))
    x.grad = None
    b = x * 2
    b.sigmoid_()
    assert b.grad_fn.name() == "SigmoidBackward0"
    b.backward(T([1.0, 1.0, 1.0], False))
    s = 1 / (1 + np.exp(-2 * A(x)))
    np.testing.assert_allclose(A(x.grad), 2 * s * (1 - s))


def test_inplace_on_view_of_nograd_base_makes_base_require_grad():
    x = T([1.0, 2.0])
    z = jitorch.zeros(4, dtype=jitorch.float64)
    z[1:3] = x * 3
    assert z.requires_grad and z.grad_fn.name() == "CopySlices"
    (z * z).backward(T([1.0, 1.0, 1.0, 1.0], False))
    np.testing.assert_allclose(A(x.grad), 2 * 3 * 3 * A(x))


def test_view_created_in_no_grad_then_modified_errors():
    x = T([1.0, 2.0])
    b = x * 1
    with jitorch.no_grad():
        v = b[:1]
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode"):
        v.mul_(2)


# ---------------------------------------------------------------------------------------------- ties, broadcasting

@needs_torch
def test_max_min_ties_split_the_gradient_like_torch():
    xs = [2.0, 1.0, 3.0]
    ys = [2.0, 3.0, 3.0]
    for jname, tf in (("maximum", torch.maximum), ("minimum", torch.minimum), ("fmax", torch.fmax),
                      ("fmin", torch.fmin)):
        x, y = T(xs), T(ys)
        call(jname, x, y).backward(T([1.0, 1.0, 1.0], False))
        tx = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
        ty = torch.tensor(ys, dtype=torch.float64, requires_grad=True)
        tf(tx, ty).backward(torch.ones(3, dtype=torch.float64))
        np.testing.assert_allclose(A(x.grad), tx.grad.numpy(), err_msg=jname)
        np.testing.assert_allclose(A(y.grad), ty.grad.numpy(), err_msg=jname)
    x = T(xs)
    call("maximum", x, x).backward(T([1.0, 1.0, 1.0], False))  # both halves reach x
    np.testing.assert_allclose(A(x.grad), [1, 1, 1])


def test_broadcast_gradients_sum_back_to_input_shape():
    a = T(np.ones((2, 1, 3)))
    b = T(np.arange(4.0).reshape(4, 1))
    c = T(2.0)
    y = a * b * c
    assert tuple(y.shape) == (2, 4, 3)
    y.backward(jitorch.ones(2, 4, 3, dtype=jitorch.float64))
    np.testing.assert_allclose(A(a.grad), np.full((2, 1, 3), 2 * 6.0))
    np.testing.assert_allclose(A(b.grad), np.full((4, 1), 2 * 6.0))
    np.testing.assert_allclose(A(c.grad), 6 * 6.0)


def test_stack_cat_split_gradients():
    a, b = T([1.0, 2.0]), T([3.0, 4.0])
    s = jitorch.stack([a, b], 1)   # (2, 2)
    p0, p1 = s.split(1, dim=0)
    out = jitorch.cat([p0 * 2, p1 * 3], 1)
    out.backward(jitorch.ones(1, 4, dtype=jitorch.float64))
    np.testing.assert_allclose(A(a.grad), [2, 3])
    np.testing.assert_allclose(A(b.grad), [2, 3])


# ---------------------------------------------------------------------------------------------- Function

class _Exp(autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class _MulConst(autograd.Function):
    @staticmethod
    def forward(x, k):
        return x * k

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.k = inputs[1]

    @staticmethod
    def backward(ctx, g):
        assert ctx.needs_input_grad == (True, False)
        return g * ctx.k, None


class _SortLike(autograd.Function):
    """Two outputs, one marked non-differentiable; materialize_grads off."""

    @staticmethod
    def forward(ctx, x):
        ctx.set_materialize_grads(False)
        idx = jitorch.tensor([1, 0])
        out = call("cat", call("slice", x, dim=0, start=1, stop=2, step=1),
                   call("slice", x, dim=0, start=0, stop=1, step=1), dim=0)
        ctx.mark_non_differentiable(idx)
        return out, idx

    @staticmethod
    def backward(ctx, g, gidx):
        assert gidx is None
        if g is None:
            return None
        return call("cat", call("slice", g, dim=0, start=1, stop=2, step=1),
                    call("slice", g, dim=0, start=0, stop=1, step=1), dim=0)


class _AddOneInplace(autograd.Function):
    @staticmethod
    def forward(ctx, x):
        x.add_(1)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, g):
        return g


def test_custom_function():
    x = T([0.5, 1.0])
    y = _Exp.apply(x)
    assert y.grad_fn.name() == "_ExpBackward" and y.requires_grad
    y.backward(T([1.0, 1.0], False))
    np.testing.assert_allclose(A(x.grad), np.exp([0.5, 1.0]))
    # saved tensors are freed after backward
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward(T([1.0, 1.0], False))
    assert autograd.gradcheck(_Exp.apply, (T([0.3, -0.2]),))
    assert autograd.gradgradcheck(_Exp.apply, (T([0.3, -0.2]),))  # backward written with jitorch ops
    x.grad = None
    _MulConst.apply(x, 3.0).backward(T([1.0, 1.0], False))
    np.testing.assert_allclose(A(x.grad), [3, 3])
    out, idx = _SortLike.apply(T([1.0, 2.0]))
    assert out.requires_grad and not idx.requires_grad
    assert out.grad_fn.name() == "_SortLikeBackward"
    b = T([1.0, 2.0]) * 1
    r = _AddOneInplace.apply(b)
    assert r is b and b.grad_fn.name() == "_AddOneInplaceBackward"
    with pytest.raises(RuntimeError, match="leaf Variable"):
        _AddOneInplace.apply(T([1.0]))
    with jitorch.no_grad():
        assert not _Exp.apply(T([1.0])).requires_grad


def test_custom_function_errors():
    class WrongCount(autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="returned an incorrect number of gradients"):
        WrongCount.apply(T([1.0]), T([2.0])).backward()

    class Saved(autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * 2

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return g * 2

    a = T([1.0]) * 1
    out = Saved.apply(a)
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_gradcheck_catches_a_wrong_gradient():
    class Wrong(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g * 3.0

    assert not autograd.gradcheck(Wrong.apply, (T([0.5, 1.5]),), raise_exception=False)
    with pytest.raises(autograd.GradcheckError, match="Jacobian mismatch"):
        autograd.gradcheck(Wrong.apply, (T([0.5, 1.5]),))
    assert not autograd.gradcheck(Wrong.apply, (T([0.5, 1.5]),), raise_exception=False, fast_mode=True)
    assert autograd.gradcheck(lambda x: x * x, (T([0.5, 1.5]),), fast_mode=True)

    class WrongSecond(autograd.Function):  # right first derivative, constant (wrong) second
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3.0 * x.detach() * x.detach()

    assert autograd.gradcheck(WrongSecond.apply, (T([0.5, 1.5]),))
    assert not autograd.gradgradcheck(WrongSecond.apply, (T([0.5, 1.5]),), raise_exception=False)


# ---------------------------------------------------------------------------------------------- engine

def test_long_chain_is_iterative():
    x = T([1.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(A(x.grad), [1.0001 ** 10_000], rtol=1e-9)
    del y
    gc.collect()


def test_diamond_graph():
    x = T([2.0])
    a = x * 3
    b = a.exp()
    c = a * a
    (b + c).backward()
    np.testing.assert_allclose(A(x.grad), 3 * np.exp(6.0) + 2 * 6 * 3)


def test_leaf_grad_is_never_aliased():
    from jitorch.autograd import engine
    w = T([1.0, 2.0])
    b = T([1.0, 2.0])
    g = T([1.0, 1.0], False)
    (w + b).backward(g)             # the same gradient reaches two leaves and is the user's tensor
    w.grad.add_(1)
    np.testing.assert_allclose(A(b.grad), [1, 1])
    np.testing.assert_allclose(A(g), [1, 1])
    engine._DEBUG_REFS = []
    try:
        w.grad = None
        (w * g).backward(g)         # a fresh gradient nobody else holds is stolen (no copy)
        assert engine._DEBUG_REFS == [(engine._REFS_TENSOR, engine._REFS_ARRAY)]
    finally:
        engine._DEBUG_REFS = None


# ---------------------------------------------------------------------------------------------- memory

def test_graph_and_saved_tensors_are_freed_after_backward():
    gc.collect()
    gc.disable()  # freeing must not depend on the cycle collector
    try:
        x = T(np.ones(5))
        h = x * 2
        y = h.exp()      # ExpBackward saves y's data, MulBackward saves nothing of h
        z = y * h        # MulBackward saves y and h
        ref_h, ref_node = weakref.ref(h), weakref.ref(y.grad_fn)
        del h, y
        assert ref_h() is not None  # kept alive by z's graph (saved for backward)
        z.backward(jitorch.ones(5, dtype=jitorch.float64))
        assert ref_h() is None, "saved tensors must be released by backward"
        assert ref_node() is not None  # the graph itself lives while z does
        del z
        assert ref_node() is None, "the graph must be freed by reference counting (no cycles)"
        # a graph that is never backpropagated is freed too
        w = x.exp() * x
        ref_w, ref_n = weakref.ref(w), weakref.ref(w.grad_fn)
        del w
        assert ref_w() is None and ref_n() is None
    finally:
        gc.enable()


def _mlp_step(params, x, target, lr=0.01):
    w1, b1, w2, b2 = params
    h = call("relu", call("add", call("matmul", x, w1), b1, alpha=1))
    out = call("add", call("matmul", h, w2), b2, alpha=1)
    d = out - target
    n = d.numel()
    loss = call("matmul", call("view", d * d, size=(n,)), jitorch.full((n,), 1.0 / n))  # mean of squares
    loss.backward()
    with jitorch.no_grad():
        for p in params:
            p.sub_(p.grad * lr)
            p.grad = None
    return loss.item()


def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:  # pragma: no cover - not Linux
        return 0


def test_training_loop_memory_is_flat():
    rng = np.random.default_rng(0)
    x = jitorch.tensor(rng.standard_normal((8, 4)), dtype=jitorch.float32)
    target = jitorch.tensor(rng.standard_normal((8, 2)), dtype=jitorch.float32)
    params = [jitorch.tensor(rng.standard_normal(s) * 0.5, dtype=jitorch.float32, requires_grad=True)
              for s in ((4, 16), (16,), (16, 2), (2,))]
    losses = [_mlp_step(params, x, target) for _ in range(30)]
    gc.collect()
    n_objects, rss = len(gc.get_objects()), _rss_bytes()
    for _ in range(1000):
        losses.append(_mlp_step(params, x, target))
    gc.collect()
    # a leaked graph would keep ~30 tensors and nodes per step alive: 30,000 objects, megabytes
    assert len(gc.get_objects()) - n_objects < 200
    assert _rss_bytes() - rss < 4 * 1024 * 1024
    # byte-exact over a shorter window (tracemalloc slows every allocation down)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(50):
            losses.append(_mlp_step(params, x, target))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 16 * 1024, f"memory grew by {grown} bytes over 50 steps"
    assert losses[-1] < 0.5 * losses[0]  # and it trains


def test_refcounts_of_saved_leaves_return_to_baseline():
    w = T(np.ones(3))
    base = sys.getrefcount(w)
    for _ in range(10):
        (w * w).exp().backward(jitorch.ones(3, dtype=jitorch.float64))
    w.grad = None
    gc.collect()
    assert sys.getrefcount(w) == base + 0 or sys.getrefcount(w) <= base + 1  # at most the cached AccumulateGrad


# ---------------------------------------------------------------------------------------------- torch reference

@needs_torch
def test_mlp_gradients_match_torch():
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((5, 4))
    ws = [rng.standard_normal(s) for s in ((4, 6), (6,), (6, 3), (3,))]
    go = rng.standard_normal((5, 3))

    def run(L, mm, relu):
        x = L.tensor(xs, dtype=L.float64)
        ps = [L.tensor(w, dtype=L.float64, requires_grad=True) for w in ws]
        out = mm(relu(mm(x, ps[0]) + ps[1]).tanh(), ps[2]) + ps[3]
        (out * out.sigmoid()).backward(L.tensor(go, dtype=L.float64))
        return [np.array(p.grad.detach().numpy()) for p in ps]
    got = run(jitorch, lambda a, b: call("matmul", a, b), lambda a: call("relu", a))
    want = run(torch, torch.matmul, torch.relu)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------- functional, anomaly

def test_functional_api():
    from jitorch.autograd import functional as AF

    def f(x, y):
        return call("mul", x.exp(), y) * y

    x, y = T([0.5, -1.0], False), T([2.0, 3.0], False)
    out, (gx, gy) = AF.vjp(f, (x, y), T([1.0, 1.0], False))
    np.testing.assert_allclose(A(gx), np.exp(A(x)) * A(y) ** 2)
    np.testing.assert_allclose(A(gy), 2 * np.exp(A(x)) * A(y))
    _, jv = AF.jvp(f, (x, y), (T([1.0, 0.0], False), T([0.0, 1.0], False)))
    np.testing.assert_allclose(A(jv), [np.exp(0.5) * 4, 2 * np.exp(-1.0) * 3])
    J = AF.jacobian(lambda a: a * a * 3, T([1.0, 2.0], False))
    np.testing.assert_allclose(A(J), np.diag([6.0, 12.0]))
    H = AF.hessian(lambda a: call("matmul", a * a, a), T([1.0, 2.0], False))  # sum a^3
    np.testing.assert_allclose(A(H), np.diag([6.0, 12.0]))
    _, hv = AF.hvp(lambda a: call("matmul", a * a, a), T([1.0, 2.0], False), T([1.0, 1.0], False))
    np.testing.assert_allclose(A(hv), [6.0, 12.0])


def test_detect_anomaly_names_the_node():
    x = T([0.0, 1.0])
    y = x.sqrt() * 0.0  # d sqrt at 0 is inf; times 0 -> nan
    with autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match="Function 'SqrtBackward0' returned nan values in its 0th output"):
            y.backward(T([1.0, 1.0], False))
    assert not autograd.is_anomaly_enabled()


def test_vjp_of_runs_a_rule_outside_the_graph():
    from jitorch.autograd.graph import vjp_of
    x = T([[1.0, 2.0], [3.0, 4.0]], False)
    y = T([10.0, 20.0], False)
    out = x * y
    gx, gy = vjp_of("mul", (x, y), (out,), {}, (T([[1.0, 1.0], [1.0, 1.0]], False),))
    np.testing.assert_allclose(A(gx), [[10, 20], [10, 20]])
    np.testing.assert_allclose(A(gy), [4, 6])  # summed over the broadcast dim


def test_function_materialize_grads_and_once_differentiable():
    seen = []

    def make(materialize):
        class Two(autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.set_materialize_grads(materialize)
                return x * 2, x * 3

            @staticmethod
            @autograd.once_differentiable
            def backward(ctx, g1, g2):
                seen.append((g1 is None, g2 is None, jitorch.is_grad_enabled()))
                g2 = g2 if g2 is not None else jitorch.zeros(g1.shape, dtype=g1.dtype)
                return g1 * 2 + g2 * 3
        return Two

    x = T([1.0, 2.0])
    a, b = make(True).apply(x)
    a.backward(T([1.0, 1.0], False))
    a, b = make(False).apply(x)
    a.backward(T([1.0, 1.0], False))
    assert seen == [(False, False, False), (False, True, False)]
    np.testing.assert_allclose(A(x.grad), [4, 4])


def test_inplace_on_views_second_derivatives():
    def f(x, y):
        b = x * 1
        b[1:3].mul_(y)
        b.view(2, 2)[:, 0].exp_()
        return b * b

    rng = np.random.default_rng(3)
    x, y = T(rng.random(4)), T(rng.random(2))
    assert autograd.gradcheck(f, (x, y))
    assert autograd.gradgradcheck(f, (x, y))
    u = T(rng.random(5))
    assert autograd.gradgradcheck(lambda a: a.unfold(0, 3, 1) * a.unfold(0, 3, 1).exp(), (u,))


def test_inplace_nondifferentiable_op_cuts_the_old_history():
    from jitorch._dispatch import call_inplace
    x = T([0.5, 1.0])
    a = x * 2
    call_inplace("eq", a, 1.0)  # a.eq_(1.0): a now holds 0/1, not a function of x
    assert a.grad_fn.name() == "EqBackward0"
    (a * x).backward(T([1.0, 1.0], False))
    np.testing.assert_allclose(A(x.grad), [1.0, 0.0])


@needs_torch
def test_advanced_indexing_and_setitem_match_torch():
    def run(L):
        x = L.tensor(np.arange(12.0).reshape(3, 4), dtype=L.float64, requires_grad=True)
        v = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        y = x * 1
        y[L.tensor([0, 2]), L.tensor([1, 3])] = v * 3
        m = y > 5
        z = y[m].sum() + y[:, L.tensor([0, 0])].sum() + (y.masked_fill(m, 0.0) * x).sum()
        z.backward()
        return np.array(x.grad.numpy()), np.array(v.grad.numpy())
    for g, w in zip(run(jitorch), run(torch)):
        np.testing.assert_allclose(g, w)


@needs_torch
def test_training_composites_match_torch():
    """Gradients through the nn composites (linear, gelu, layer_norm, cross_entropy, mse, softmax, std ...),
    i.e. through every rule they are made of."""
    import jitorch.nn.functional  # noqa: F401
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((8, 6)), rng.integers(0, 4, 8)
    arrays = [rng.standard_normal(s) for s in ((10, 6), (10,), (4, 10), (4,))]

    def run(L):
        F = L.nn.functional
        ps = [L.tensor(a, dtype=L.float64, requires_grad=True) for a in arrays]
        x, y = L.tensor(xs, dtype=L.float64), L.tensor(ys)
        h = F.layer_norm(F.gelu(F.linear(x, ps[0], ps[1])), (10,))
        out = F.linear(F.dropout(h, 0.0), ps[2], ps[3])
        loss = (F.cross_entropy(out, y) + F.mse_loss(out.softmax(-1), F.one_hot(y, 4).to(L.float64))
                + out.logsumexp(1).mean() + out.std())
        loss.backward()
        return [np.array(p.grad.numpy()) for p in ps]
    for g, w in zip(run(jitorch), run(torch)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


@needs_torch
def test_setitem_through_a_0d_select_view():
    def run(L):
        x = L.tensor([1.0, 2.0, 3.0], dtype=L.float64, requires_grad=True)
        y = x * 2
        y[1] = 0.0
        (y * y).sum().backward()
        return np.array(y.detach().numpy()), np.array(x.grad.numpy())
    for g, w in zip(run(jitorch), run(torch)):
        np.testing.assert_allclose(g, w)

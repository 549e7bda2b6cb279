"""Gradients without copies: a transposed matmul operand's gradient is computed in its layout, and the
engine stores whole C-contiguous view gradients nobody else holds as .grad (no clone), but never
one that is visible elsewhere."""
import numpy as np
import pytest

import jitorch
from jitorch.nn import functional as F



def _np(t):
    return t.detach().numpy()


@pytest.mark.parametrize("lead", [(), (3,), (2, 3)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [jitorch.float32, jitorch.float64])
def test_linear_gradients_match_numpy_and_are_c_contiguous(lead, bias, dtype):
    rng = np.random.default_rng(len(lead) + 2 * bias)
    x_np = rng.standard_normal(lead + (5,))
    w_np = rng.standard_normal((4, 5))
    b_np = rng.standard_normal(4)
    g_np = rng.standard_normal(lead + (4,))
    x = jitorch.tensor(x_np, dtype=dtype, requires_grad=True)
    w = jitorch.tensor(w_np, dtype=dtype, requires_grad=True)
    b = jitorch.tensor(b_np, dtype=dtype, requires_grad=True) if bias else None
    y = F.linear(x, w, b)
    y.backward(jitorch.tensor(g_np, dtype=dtype))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype is jitorch.float32 else dict(rtol=1e-12, atol=1e-12)
    g2 = g_np.reshape(-1, 4)
    x2 = x_np.reshape(-1, 5)
    np.testing.assert_allclose(_np(w.grad), g2.T @ x2, **tol)
    np.testing.assert_allclose(_np(x.grad), g_np @ w_np, **tol)
    assert w.grad._data.flags.c_contiguous and w.grad.shape == w.shape
    if bias:
        np.testing.assert_allclose(_np(b.grad), g2.sum(0), **tol)
        assert b.grad._data.flags.c_contiguous


def test_transposed_operand_gradient_in_its_layout():
    rng = np.random.default_rng(0)
    a_np, m_np, g_np = rng.standard_normal((6, 3)), rng.standard_normal((4, 3)), rng.standard_normal((6, 4))
    a = jitorch.tensor(a_np, requires_grad=True)
    m = jitorch.tensor(m_np, requires_grad=True)
    bt = m.t()                                 # F-contiguous (3, 4) view of m
    assert bt._data.flags.f_contiguous and not bt._data.flags.c_contiguous
    bt.retain_grad()
    (a @ bt).backward(jitorch.tensor(g_np))
    np.testing.assert_allclose(_np(bt.grad), a_np.T @ g_np, rtol=1e-12)
    np.testing.assert_allclose(_np(m.grad), (a_np.T @ g_np).T, rtol=1e-12)
    np.testing.assert_allclose(_np(a.grad), g_np @ m_np, rtol=1e-12)


def test_second_derivative_through_transposed_operand():
    a = jitorch.randn(3, 4, dtype=jitorch.float64, requires_grad=True)
    w = jitorch.randn(2, 4, dtype=jitorch.float64, requires_grad=True)
    assert jitorch.autograd.gradcheck(lambda a, w: F.linear(a, w).tanh(), (a, w))
    assert jitorch.autograd.gradgradcheck(lambda a, w: F.linear(a, w).tanh(), (a, w))


def test_view_gradient_is_stored_without_copy():
    from jitorch.autograd import engine
    b = jitorch.zeros(4, requires_grad=True)
    h = jitorch.randn(3, 4)
    engine._DEBUG_REFS = []
    try:
        (h + b).sum().backward()
    finally:
        engine._DEBUG_REFS = None
    # the bias gradient is sum_to's reshape (a view) of the keepdim sum: stored as is
    assert b.grad._data.base is not None
    np.testing.assert_allclose(_np(b.grad), np.ones(4) * 3)


@pytest.mark.parametrize("hooked", [None, "tensor", "array"])
def test_view_gradient_held_elsewhere_is_copied(hooked):
    """b's gradient is the reshape back of the gradient reaching r = b.reshape(1, 4). When a hook keeps that
    gradient, the leaf must get its own memory; without the hook it is stored as is."""
    b = jitorch.zeros(4, requires_grad=True)
    c = jitorch.tensor([[1.0, 2.0, 3.0, 4.0]])
    r = b.reshape(1, 4)
    kept = []
    if hooked == "tensor":
        r.register_hook(lambda g: kept.append(g))
    elif hooked == "array":                  # only the gradient's memory escapes, through NumPy
        r.register_hook(lambda g: kept.append(g.numpy()))
    (r * c).sum().backward()
    np.testing.assert_allclose(_np(b.grad), [1, 2, 3, 4])
    if not hooked:
        assert b.grad._data.base is not None  # the (1, 4) gradient's memory, not a copy
        return
    assert len(kept) == 1
    k = kept[0]
    (k._data if hooked == "tensor" else k)[...] = 100.0   # what the hook kept is the user's to change
    np.testing.assert_allclose(_np(b.grad), [1, 2, 3, 4])


def test_accumulation_into_a_stolen_view_gradient():
    w = jitorch.randn(3, 5, requires_grad=True)
    x = jitorch.randn(7, 5)
    F.linear(x, w).sum().backward()
    first = _np(w.grad).copy()
    F.linear(x, w).sum().backward()
    np.testing.assert_allclose(_np(w.grad), 2 * first, rtol=1e-6)
    np.testing.assert_allclose(first, np.ones((7, 3)).T @ _np(x), rtol=1e-5)


def test_optimizer_step_on_stolen_gradients():
    rng = np.random.default_rng(1)
    lin = jitorch.nn.Linear(5, 3)
    w0, b0 = _np(lin.weight).copy(), _np(lin.bias).copy()
    x_np = rng.standard_normal((8, 5)).astype(np.float32)
    opt = jitorch.optim.SGD(lin.parameters(), lr=0.1)
    opt.zero_grad()
    lin(jitorch.from_numpy(x_np)).sum().backward()
    opt.step()
    np.testing.assert_allclose(_np(lin.weight), w0 - 0.1 * np.ones((8, 3)).T @ x_np, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(lin.bias), b0 - 0.1 * 8, rtol=1e-5, atol=1e-6)

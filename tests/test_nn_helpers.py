"""Shared helpers of the nn tests (no tests here): torch as an optional reference, conversions, and a
module/function comparison that checks outputs and every gradient (inputs and parameters)."""
from __future__ import annotations

import numpy as np
import pytest

import jitorch

try:  # optional reference
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (optional reference)")


def J(a, requires_grad=False):
    """NumPy array (or nested tuple of them) -> jitorch tensor (a copy)."""
    if isinstance(a, tuple):
        return tuple(J(x, requires_grad) for x in a)
    if a is None or isinstance(a, (int, float, str)):
        return a
    t = jitorch.from_numpy(np.array(a, copy=True))
    return t.requires_grad_() if requires_grad else t


def T(a, requires_grad=False):
    """NumPy array (or nested tuple) -> torch tensor (a copy)."""
    if isinstance(a, tuple):
        return tuple(T(x, requires_grad) for x in a)
    if a is None or isinstance(a, (int, float, str)):
        return a
    t = torch.from_numpy(np.array(a, copy=True))
    return t.requires_grad_() if requires_grad else t


def flat(o):
    if isinstance(o, (tuple, list)):
        r = []
        for x in o:
            r += flat(x)
        return r
    return [] if o is None else [o]


def is_float_array(a):
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def copy_torch_state(jmod, tmod):
    """Load torch module's state (parameters and buffers) into the jitorch module."""
    sd = {k: jitorch.from_numpy(v.detach().numpy().copy()) for k, v in tmod.state_dict().items()}
    res = jmod.load_state_dict(sd)
    assert not res.missing_keys and not res.unexpected_keys


def _grad_arrays(inputs, requires):
    out = []
    for a, r in zip(inputs, requires):
        if isinstance(a, tuple):
            out.extend(_grad_arrays(a, [r] * len(a)))
        else:
            out.append((a, r))
    return out


def compare_module(jmod, tmod, arrays, *, train=False, atol=1e-7, rtol=1e-6, grad_inputs=None, seed=0):
    """Run both modules on the same inputs; compare outputs, input gradients and parameter gradients
    (for a random cotangent on every floating output) and the final buffers."""
    copy_torch_state(jmod, tmod)
    jmod.train(train)
    tmod.train(train)
    rg = grad_inputs if grad_inputs is not None else [
        isinstance(a, tuple) or is_float_array(a) for a in arrays]
    jx = [J(a, r) if not isinstance(a, tuple) else J(a, r) for a, r in zip(arrays, rg)]
    tx = [T(a, r) for a, r in zip(arrays, rg)]
    jy, ty = flat(jmod(*jx)), flat(tmod(*tx))
    assert len(jy) == len(ty)
    for a, b in zip(jy, ty):
        assert tuple(a.shape) == tuple(b.shape), f"shape {tuple(a.shape)} != torch {tuple(b.shape)}"
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=atol, rtol=rtol)
    pairs = [(a, b) for a, b in zip(jy, ty) if b.dtype.is_floating_point and b.requires_grad]
    if pairs:
        rng = np.random.default_rng(seed)
        jl = tl = None
        for a, b in pairs:
            g = rng.standard_normal(tuple(b.shape)).astype(b.detach().numpy().dtype)
            jt, tt = (a * J(g)).sum(), (b * T(g)).sum()
            jl = jt if jl is None else jl + jt
            tl = tt if tl is None else tl + tt
        jl.backward()
        tl.backward()
        for a, b in zip(flat(jx), flat(tx)):
            if isinstance(b, torch.Tensor) and b.grad is not None:
                assert a.grad is not None
                np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=atol * 10, rtol=rtol * 10,
                                           err_msg="input gradient")
        jp = dict(jmod.named_parameters())
        for k, p in tmod.named_parameters():
            if p.grad is None:
                continue
            assert jp[k].grad is not None, f"no gradient for parameter {k}"
            np.testing.assert_allclose(jp[k].grad.numpy(), p.grad.numpy(), atol=atol * 10, rtol=rtol * 10,
                                       err_msg=f"gradient of {k}")
    jb = dict(jmod.named_buffers())
    for k, b in tmod.named_buffers():
        np.testing.assert_allclose(jb[k].numpy(), b.numpy(), atol=atol, rtol=rtol, err_msg=f"buffer {k}")
    return jy, ty


def compare_fn(jfn, tfn, arrays, kwargs=None, *, atol=1e-7, rtol=1e-6, grad=True, seed=0):
    """Same for functions: outputs and the gradients of every floating input."""
    kwargs = kwargs or {}
    rg = [grad and is_float_array(a) for a in arrays]
    jx = [J(a, r) if isinstance(a, np.ndarray) else a for a, r in zip(arrays, rg)]
    tx = [T(a, r) if isinstance(a, np.ndarray) else a for a, r in zip(arrays, rg)]
    jy, ty = jfn(*jx, **kwargs), tfn(*tx, **kwargs)
    jy, ty = flat(jy), flat(ty)
    for a, b in zip(jy, ty):
        assert tuple(a.shape) == tuple(b.shape), f"shape {tuple(a.shape)} != torch {tuple(b.shape)}"
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=atol, rtol=rtol)
    if any(rg) and ty and ty[0].requires_grad:
        rng = np.random.default_rng(seed)
        g = rng.standard_normal(tuple(ty[0].shape))
        (jy[0] * J(g.astype(ty[0].detach().numpy().dtype))).sum().backward()
        (ty[0] * T(g.astype(ty[0].detach().numpy().dtype))).sum().backward()
        for i, (a, b) in enumerate(zip(jx, tx)):
            if rg[i] and b.grad is not None:
                np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=atol * 10, rtol=rtol * 10,
                                           err_msg=f"gradient of input {i}")
    return jy, ty

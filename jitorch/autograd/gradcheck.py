"""``gradcheck`` / ``gradgradcheck``: analytical gradients against central finite differences.

The numerical Jacobian perturbs each element of each differentiable input in place (in its own
storage, so non-contiguous inputs are checked as they are) by +-eps; the analytical one runs one
``autograd.grad`` per output element (or, with ``fast_mode=True``, compares one random
vector-Jacobian-vector product). Use float64 inputs: eps=1e-6 needs the precision.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """Raised by gradcheck/gradgradcheck when a check fails."""


def _as_tuple(x):
    if isinstance(x, Tensor):
        return (x,)
    if isinstance(x, (list, tuple)):
        return tuple(x)
    return (x,)


def _diff_outputs(out):
    outs = _as_tuple(out)
    return [o for o in outs if isinstance(o, Tensor) and o._data.dtype.kind == "f"]


def _eval(func, inputs):
    # grad mode stays as it is: gradgradcheck's function calls autograd.grad itself
    outs = _diff_outputs(func(*inputs))
    return [np.array(o._data, dtype=np.float64, copy=True) for o in outs]


def _numerical_jacobians(func, inputs, diff_idx, eps):
    """J[i][k]: array (n_in_elems of input i, n_out_elems of output k)."""
    base = _eval(func, inputs)
    jac = []
    for i in diff_idx:
        x = inputs[i]
        arr = x._data
        n = arr.size
        cols = [np.zeros((n, o.size)) for o in base]
        for j, idx in enumerate(np.ndindex(*arr.shape)):
            orig = arr[idx].item()
            arr[idx] = orig + eps
            plus = _eval(func, inputs)
            arr[idx] = orig - eps
            minus = _eval(func, inputs)
            arr[idx] = orig
            for k, (p, m) in enumerate(zip(plus, minus)):
                cols[k][j] = ((p - m) / (2 * eps)).reshape(-1)
        jac.append(cols)
    return jac, base


def _analytical_jacobians(func, inputs, diff_idx):
    from .engine import grad as _grad
    outs = _diff_outputs(func(*inputs))
    diff_inputs = [inputs[i] for i in diff_idx]
    jac = [[np.zeros((inputs[i]._data.size, o._data.size)) for o in outs] for i in diff_idx]
    for k, o in enumerate(outs):
        if not o.requires_grad:
            continue
        for e in range(o._data.size):
            go = np.zeros(o._data.shape, o._data.dtype)
            go.reshape(-1)[e] = 1
            gs = _grad((o,), diff_inputs, (Tensor._wrap(go),), retain_graph=True, allow_unused=True)
            for ii, g in enumerate(gs):
                x = diff_inputs[ii]
                if g is None:
                    continue
                if tuple(g.shape) != tuple(x.shape):
                    raise GradcheckError(f"Gradient has wrong shape: got {list(g.shape)} for an input of shape "
                                         f"{list(x.shape)}")
                if g.dtype is not x.dtype:
                    raise GradcheckError(f"Gradient has dtype mismatch: got {g.dtype} for an input of dtype {x.dtype}")
                jac[ii][k][:, e] = np.asarray(g._data, dtype=np.float64).reshape(-1)
    return jac, outs


def _fmt(a):
    with np.printoptions(precision=6, suppress=True, linewidth=120):
        return str(a)


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, nondet_tol=0.0,
              check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
              check_batched_forward_grad=False, check_forward_ad=False, check_backward_ad=True, fast_mode=False,
              masked=None):
    """Check the gradients of ``func(*inputs)`` w.r.t. the inputs that require grad; True or raise."""
    inputs = _as_tuple(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff_idx:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of the them "
                         "have requires_grad=True.")
    for i in diff_idx:
        if inputs[i].dtype.name != "float64":
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating point. "
                          "gradcheck may fail due to the lack of precision.", stacklevel=2)
    try:
        if fast_mode:
            _check_fast(func, inputs, diff_idx, eps, atol, rtol)
        else:
            _check_full(func, inputs, diff_idx, eps, atol, rtol, nondet_tol)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _check_full(func, inputs, diff_idx, eps, atol, rtol, nondet_tol):
    ana, outs = _analytical_jacobians(func, inputs, diff_idx)
    num, _ = _numerical_jacobians(func, inputs, diff_idx, eps)
    for ii, i in enumerate(diff_idx):
        for k in range(len(outs)):
            a, n = ana[ii][k], num[ii][k]
            if not np.allclose(a, n, rtol=rtol, atol=atol, equal_nan=True):
                raise GradcheckError(
                    f"Jacobian mismatch for output {k} with respect to input {i},\n"
                    f"numerical:{_fmt(n)}\nanalytical:{_fmt(a)}\n")
    if nondet_tol >= 0:
        ana2, _ = _analytical_jacobians(func, inputs, diff_idx)
        for ii in range(len(diff_idx)):
            for k in range(len(outs)):
                if not np.allclose(ana[ii][k], ana2[ii][k], rtol=0, atol=nondet_tol, equal_nan=True):
                    raise GradcheckError("Backward is not reentrant, i.e., running backward with same input and "
                                         "grad_output multiple times gives different values, although analytical "
                                         "gradient matches numerical gradient.")


def _check_fast(func, inputs, diff_idx, eps, atol, rtol):
    from .engine import grad as _grad
    rng = np.random.RandomState(0)
    outs = _diff_outputs(func(*inputs))
    us = [rng.standard_normal(inputs[i]._data.shape) for i in diff_idx]
    vs = [rng.standard_normal(o._data.shape) for o in outs]
    # numerical J u by a directional central difference
    saved = [inputs[i]._data.copy() for i in diff_idx]
    for i, u in zip(diff_idx, us):
        inputs[i]._data[...] += eps * u
    plus = _eval(func, inputs)
    for i, u, s in zip(diff_idx, us, saved):
        inputs[i]._data[...] = s - eps * u
    minus = _eval(func, inputs)
    for i, s in zip(diff_idx, saved):
        inputs[i]._data[...] = s
    for k, o in enumerate(outs):
        ju = (plus[k] - minus[k]) / (2 * eps)
        num = float(np.sum(vs[k] * ju))
        if not o.requires_grad:
            ana = 0.0
        else:
            gs = _grad((o,), [inputs[i] for i in diff_idx], (Tensor._wrap(vs[k].astype(o._data.dtype)),),
                       retain_graph=True, allow_unused=True)
            ana = sum(float(np.sum(np.asarray(g._data, np.float64) * u)) for g, u in zip(gs, us) if g is not None)
        if not np.isclose(ana, num, rtol=rtol, atol=atol):
            raise GradcheckError(f"Jacobian mismatch for output {k} (fast mode: v^T J u):\nnumerical:{num}\n"
                                 f"analytical:{ana}\n")


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True, nondet_tol=0.0,
                  check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
                  check_fwd_over_rev=False, check_rev_over_rev=True, fast_mode=False, masked=False):
    """gradcheck of the gradient: checks second derivatives (the backward's own backward)."""
    from .engine import grad as _grad
    inputs = _as_tuple(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if grad_outputs is None:
        outs = _diff_outputs(func(*inputs))
        rng = np.random.RandomState(1)
        grad_outputs = []
        for o in outs:
            a = rng.standard_normal(o._data.shape).astype(o._data.dtype)
            if gen_non_contig_grad_outputs and a.ndim >= 2:
                a = np.asfortranarray(a)
            t = Tensor._wrap(a)
            t.requires_grad = True
            grad_outputs.append(t)
    grad_outputs = list(_as_tuple(grad_outputs))
    n_in = len(inputs)

    def new_func(*args):
        ins, gos = args[:n_in], args[n_in:]
        outs = [o for o in _diff_outputs(func(*ins)) if o.requires_grad]
        diff_inputs = [ins[i] for i in diff_idx]
        gs = _grad(outs, diff_inputs, gos[:len(outs)], create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(new_func, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol, fast_mode=fast_mode)

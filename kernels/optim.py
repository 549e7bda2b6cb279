"""Fused optimizer updates: one kernel call per parameter per step.

Each kernel updates a parameter and its optimizer state in one pass over memory, following
torch's single-tensor (``foreach=False``) formulas term by term, including the order of its
roundings where that is cheap (``lerp`` uses torch's two-sided formula). Arguments:

- arrays: 1-D C-contiguous, all of the compute dtype (float32 or float64) and the same length;
  buffers a configuration does not use (``momentum_buffer`` without momentum, ``max_exp_avg_sq``
  without amsgrad, ...) may be any array of that dtype (an empty one is fine): they are never read.
- scalars: numpy scalars of the compute dtype (``np.float32(lr)``), so the loop stays in that
  dtype; step-dependent factors (bias corrections, ``lr / bias_correction1``, ...) are computed
  in Python doubles, as torch computes them, then rounded to the compute dtype.
- flags: Python bools; ``maximize`` is passed as ``sign`` = -1.0/+1.0 (a multiply keeps loops branch-free).

The caller validates shapes and dtypes: kernels check nothing (numba does not check bounds).
Each kernel exists twice, serial and parallel (``prange``); the Python wrappers pick one by size
against :data:`PARALLEL_THRESHOLD`. Per optimizer there are three wrappers: ``X_scalars(dtype, ...)``
turns hyperparameters (and the step count) into the kernel's scalar tuple, ``X_apply(arrays...,
scalars)`` runs the kernel, and ``X_step(arrays..., hyperparameters...)`` does both. The optimizers
call ``X_scalars`` once per group, dtype and step count, then ``X_apply`` per parameter.
"""
from __future__ import annotations

import types

import numpy as np
from numba import njit, prange

from ._config import NJIT, NJIT_PARALLEL, PARALLEL_THRESHOLD

__all__ = [f"{n}_{k}" for n in ("sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam")
           for k in ("step", "scalars", "apply")] + ["PARALLEL_THRESHOLD"]

# numba wants a mutable ``set`` for fastmath
_NJIT = dict(NJIT, fastmath=set(NJIT["fastmath"]))
_NJIT_PARALLEL = dict(NJIT_PARALLEL, fastmath=set(NJIT_PARALLEL["fastmath"]))
_INLINE = dict(inline="always", fastmath=set(NJIT["fastmath"]), error_model="numpy")


def _twin(fn):
    """Compile ``fn`` serially (``prange`` acts as ``range``) and in parallel; the parallel copy
    gets its own qualified name so numba's disk cache keeps the two apart."""
    serial = njit(**_NJIT)(fn)
    pfn = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_parallel",
                             fn.__defaults__, fn.__closure__)
    pfn.__qualname__ = fn.__qualname__ + "_parallel"
    pfn.__module__ = fn.__module__
    pfn.__doc__ = fn.__doc__
    return serial, njit(**_NJIT_PARALLEL)(pfn)


def _pick(pair, n):
    return pair[1] if n >= PARALLEL_THRESHOLD else pair[0]


# ---------------------------------------------------------------- scalar helpers
@njit(**_INLINE)
def _lerp(a, b, w, one_minus_w):
    """torch's lerp: ``a + w (b - a)`` for ``|w| < 0.5``, else ``b - (b - a)(1 - w)``."""
    d = b - a
    if abs(w) < 0.5:
        return a + w * d
    return b - d * one_minus_w


@njit(**_INLINE)
def _max_nan(a, b):
    """``torch.maximum``: NaN if either is NaN."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


@njit(**_INLINE)
def _grad(g, p, sign, wd):
    """``g * sign`` (``sign`` is -1 for ``maximize``: exact, and branch-free so loops vectorize), plus L2
    weight decay ``wd * p`` (torch's order)."""
    g = g * sign
    if wd != 0:
        g = g + wd * p
    return g


# ---------------------------------------------------------------- SGD
@njit(**_INLINE)
def _sgd_elem(i, p, g, buf, lr, momentum, one_minus_dampening, wd, nesterov, sign, use_momentum, first_step):
    pi = p[i]
    gi = _grad(g[i], pi, sign, wd)
    if use_momentum:
        if first_step:
            b = gi
        else:
            b = buf[i] * momentum + one_minus_dampening * gi
        buf[i] = b
        if nesterov:
            gi = gi + momentum * b
        else:
            gi = b
    p[i] = pi - lr * gi


def _sgd_impl(p, g, buf, lr, momentum, one_minus_dampening, wd, nesterov, sign, first_step, use_momentum):
    # one loop per combination of the flags that guard memory accesses: constant flags let LLVM
    # vectorize each loop (a loop with data-dependent optional loads stays scalar)
    if not use_momentum:
        for i in prange(p.size):
            _sgd_elem(i, p, g, buf, lr, momentum, one_minus_dampening, wd, nesterov, sign, False, False)
    elif first_step:
        for i in prange(p.size):
            _sgd_elem(i, p, g, buf, lr, momentum, one_minus_dampening, wd, nesterov, sign, True, True)
    else:
        for i in prange(p.size):
            _sgd_elem(i, p, g, buf, lr, momentum, one_minus_dampening, wd, nesterov, sign, True, False)


_sgd = _twin(_sgd_impl)


def sgd_scalars(dtype, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step):
    t = np.dtype(dtype).type
    return (t(lr), t(momentum), t(1.0 - dampening), t(weight_decay), bool(nesterov), t(-1.0 if maximize else 1.0),
            bool(first_step), momentum != 0)


def sgd_apply(param, grad, momentum_buffer, scalars):
    _pick(_sgd, param.size)(param, grad, momentum_buffer, *scalars)


def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov, maximize,
             first_step):
    """SGD: ``g = ±grad + wd p``; ``buf = g`` (first step) or ``momentum buf + (1 - dampening) g``;
    ``g = g + momentum buf`` (nesterov) or ``buf``; ``p -= lr g``. ``momentum == 0`` skips the buffer."""
    sgd_apply(param, grad, momentum_buffer,
              sgd_scalars(param.dtype, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step))


# ---------------------------------------------------------------- Adam / AdamW
@njit(**_INLINE)
def _adam_elem(i, p, g, m, v, vmax, decay, wd, w1, one_minus_w1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps,
               amsgrad, sign, decoupled):
    pi = p[i]
    gi = g[i] * sign
    if wd != 0:
        if decoupled:
            pi = pi * decay
        else:
            gi = gi + wd * pi
    mi = _lerp(m[i], gi, w1, one_minus_w1)
    m[i] = mi
    vi = v[i] * beta2 + one_minus_beta2 * (gi * gi)
    v[i] = vi
    if amsgrad:
        vi = _max_nan(vmax[i], vi)
        vmax[i] = vi
    denom = np.sqrt(vi) / bc2_sqrt + eps
    p[i] = pi - step_size * (mi / denom)


def _adam_impl(p, g, m, v, vmax, decay, wd, w1, one_minus_w1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps,
               amsgrad, sign, decoupled):
    if amsgrad:
        for i in prange(p.size):
            _adam_elem(i, p, g, m, v, vmax, decay, wd, w1, one_minus_w1, beta2, one_minus_beta2, step_size, bc2_sqrt,
                       eps, True, sign, decoupled)
    else:
        for i in prange(p.size):
            _adam_elem(i, p, g, m, v, vmax, decay, wd, w1, one_minus_w1, beta2, one_minus_beta2, step_size, bc2_sqrt,
                       eps, False, sign, decoupled)


_adam = _twin(_adam_impl)


def adam_scalars(dtype, step, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay):
    t = np.dtype(dtype).type
    bc1 = 1 - beta1 ** step
    bc2 = 1 - beta2 ** step
    return (t(1 - lr * weight_decay), t(weight_decay), t(1 - beta1), t(beta1), t(beta2), t(1 - beta2), t(lr / bc1),
            t(bc2 ** 0.5), t(eps), bool(amsgrad), t(-1.0 if maximize else 1.0), bool(decoupled_weight_decay))


def adam_apply(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, scalars):
    _pick(_adam, param.size)(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *scalars)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
              amsgrad, maximize, decoupled_weight_decay):
    """Adam (``decoupled_weight_decay=False``) and AdamW; ``step`` is the step count after the
    increment (1 on the first step)."""
    adam_apply(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq,
               adam_scalars(param.dtype, step, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                            decoupled_weight_decay))


# ---------------------------------------------------------------- RMSprop
@njit(**_INLINE)
def _rmsprop_elem(i, p, g, sq, gavg, buf, lr, alpha, one_minus_alpha, eps, wd, momentum, centered, sign,
                  use_momentum):
    pi = p[i]
    gi = _grad(g[i], pi, sign, wd)
    s = sq[i] * alpha + one_minus_alpha * (gi * gi)
    sq[i] = s
    if centered:
        ga = _lerp(gavg[i], gi, one_minus_alpha, alpha)
        gavg[i] = ga
        avg = np.sqrt(s - ga * ga)
    else:
        avg = np.sqrt(s)
    avg = avg + eps
    if use_momentum:
        b = buf[i] * momentum + gi / avg
        buf[i] = b
        p[i] = pi - lr * b
    else:
        p[i] = pi - lr * (gi / avg)


def _rmsprop_impl(p, g, sq, gavg, buf, lr, alpha, one_minus_alpha, eps, wd, momentum, centered, sign,
                  use_momentum):
    if centered:
        if use_momentum:
            for i in prange(p.size):
                _rmsprop_elem(i, p, g, sq, gavg, buf, lr, alpha, one_minus_alpha, eps, wd, momentum, True, sign,
                              True)
        else:
            for i in prange(p.size):
                _rmsprop_elem(i, p, g, sq, gavg, buf, lr, alpha, one_minus_alpha, eps, wd, momentum, True, sign,
                              False)
    elif use_momentum:
        for i in prange(p.size):
            _rmsprop_elem(i, p, g, sq, gavg, buf, lr, alpha, one_minus_alpha, eps, wd, momentum, False, sign,
                          True)
    else:
        for i in prange(p.size):
            _rmsprop_elem(i, p, g, sq, gavg, buf, lr, alpha, one_minus_alpha, eps, wd, momentum, False, sign,
                          False)


_rmsprop = _twin(_rmsprop_impl)


def rmsprop_scalars(dtype, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    t = np.dtype(dtype).type
    return (t(lr), t(alpha), t(1 - alpha), t(eps), t(weight_decay), t(momentum), bool(centered),
            t(-1.0 if maximize else 1.0), momentum > 0)


def rmsprop_apply(param, grad, square_avg, grad_avg, momentum_buffer, scalars):
    _pick(_rmsprop, param.size)(param, grad, square_avg, grad_avg, momentum_buffer, *scalars)


def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay, momentum,
                 centered, maximize):
    rmsprop_apply(param, grad, square_avg, grad_avg, momentum_buffer,
                  rmsprop_scalars(param.dtype, lr, alpha, eps, weight_decay, momentum, centered, maximize))


# ---------------------------------------------------------------- Adagrad
def _adagrad_impl(p, g, ssum, clr, wd, eps, sign):
    for i in prange(p.size):
        pi = p[i]
        gi = _grad(g[i], pi, sign, wd)
        s = ssum[i] + gi * gi
        ssum[i] = s
        p[i] = pi - clr * (gi / (np.sqrt(s) + eps))


_adagrad = _twin(_adagrad_impl)


def adagrad_scalars(dtype, step, lr, lr_decay, weight_decay, eps, maximize):
    t = np.dtype(dtype).type
    clr = lr / (1 + (step - 1) * lr_decay)
    return (t(clr), t(weight_decay), t(eps), t(-1.0 if maximize else 1.0))


def adagrad_apply(param, grad, state_sum, scalars):
    _pick(_adagrad, param.size)(param, grad, state_sum, *scalars)


def adagrad_step(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize):
    adagrad_apply(param, grad, state_sum, adagrad_scalars(param.dtype, step, lr, lr_decay, weight_decay, eps, maximize))


# ---------------------------------------------------------------- Adadelta
def _adadelta_impl(p, g, sq, acc, lr, rho, one_minus_rho, eps, wd, sign):
    for i in prange(p.size):
        pi = p[i]
        gi = _grad(g[i], pi, sign, wd)
        s = sq[i] * rho + one_minus_rho * (gi * gi)
        sq[i] = s
        std = np.sqrt(s + eps)
        a = acc[i]
        delta = (np.sqrt(a + eps) / std) * gi
        acc[i] = a * rho + one_minus_rho * (delta * delta)
        p[i] = pi - lr * delta


_adadelta = _twin(_adadelta_impl)


def adadelta_scalars(dtype, lr, rho, eps, weight_decay, maximize):
    t = np.dtype(dtype).type
    return (t(lr), t(rho), t(1 - rho), t(eps), t(weight_decay), t(-1.0 if maximize else 1.0))


def adadelta_apply(param, grad, square_avg, acc_delta, scalars):
    _pick(_adadelta, param.size)(param, grad, square_avg, acc_delta, *scalars)


def adadelta_step(param, grad, square_avg, acc_delta, lr, rho, eps, weight_decay, maximize):
    adadelta_apply(param, grad, square_avg, acc_delta, adadelta_scalars(param.dtype, lr, rho, eps, weight_decay, maximize))


# ---------------------------------------------------------------- Adamax
def _adamax_impl(p, g, m, u, clr, w1, one_minus_w1, beta2, eps, wd, sign):
    for i in prange(p.size):
        pi = p[i]
        gi = _grad(g[i], pi, sign, wd)
        mi = _lerp(m[i], gi, w1, one_minus_w1)
        m[i] = mi
        ui = _max_nan(u[i] * beta2, abs(gi) + eps)
        u[i] = ui
        p[i] = pi - clr * (mi / ui)


_adamax = _twin(_adamax_impl)


def adamax_scalars(dtype, step, lr, beta1, beta2, eps, weight_decay, maximize):
    t = np.dtype(dtype).type
    clr = lr / (1 - beta1 ** step)
    return (t(clr), t(1 - beta1), t(beta1), t(beta2), t(eps), t(weight_decay), t(-1.0 if maximize else 1.0))


def adamax_apply(param, grad, exp_avg, exp_inf, scalars):
    _pick(_adamax, param.size)(param, grad, exp_avg, exp_inf, *scalars)


def adamax_step(param, grad, exp_avg, exp_inf, step, lr, beta1, beta2, eps, weight_decay, maximize):
    adamax_apply(param, grad, exp_avg, exp_inf,
                 adamax_scalars(param.dtype, step, lr, beta1, beta2, eps, weight_decay, maximize))


# ---------------------------------------------------------------- NAdam
def _nadam_impl(p, g, m, v, decay, wd, w1, one_minus_w1, beta2, one_minus_beta2, bc2, eps, c_grad, c_avg,
                sign, decoupled):
    for i in prange(p.size):
        pi = p[i]
        gi = g[i] * sign
        if wd != 0:
            if decoupled:
                pi = pi * decay
            else:
                gi = gi + wd * pi
        mi = _lerp(m[i], gi, w1, one_minus_w1)
        m[i] = mi
        vi = v[i] * beta2 + one_minus_beta2 * (gi * gi)
        v[i] = vi
        denom = np.sqrt(vi / bc2) + eps
        pi = pi + c_grad * (gi / denom)
        p[i] = pi + c_avg * (mi / denom)


_nadam = _twin(_nadam_impl)


def nadam_scalars(dtype, step, mu, mu_next, mu_product, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay,
                  maximize):
    t = np.dtype(dtype).type
    c_grad = -lr * (1.0 - mu) / (1.0 - mu_product)
    c_avg = (-lr * mu_next) / (1.0 - mu_product * mu_next)
    return (t(1 - lr * weight_decay), t(weight_decay), t(1 - beta1), t(beta1), t(beta2), t(1 - beta2),
            t(1 - beta2 ** step), t(eps), t(c_grad), t(c_avg), t(-1.0 if maximize else 1.0),
            bool(decoupled_weight_decay))


def nadam_apply(param, grad, exp_avg, exp_avg_sq, scalars):
    _pick(_nadam, param.size)(param, grad, exp_avg, exp_avg_sq, *scalars)


def nadam_step(param, grad, exp_avg, exp_avg_sq, step, mu, mu_next, mu_product, lr, beta1, beta2, eps,
               weight_decay, decoupled_weight_decay, maximize):
    """NAdam; ``mu_product`` is the product of the ``mu`` of steps 1..step (this step's included)."""
    nadam_apply(param, grad, exp_avg, exp_avg_sq,
                nadam_scalars(param.dtype, step, mu, mu_next, mu_product, lr, beta1, beta2, eps, weight_decay,
                              decoupled_weight_decay, maximize))


# ---------------------------------------------------------------- RAdam
def _radam_impl(p, g, m, v, decay, wd, w1, one_minus_w1, beta2, one_minus_beta2, bc1, bc2_sqrt, lr, rect,
                eps, rectify, sign, decoupled):
    for i in prange(p.size):
        pi = p[i]
        gi = g[i] * sign
        if wd != 0:
            if decoupled:
                pi = pi * decay
            else:
                gi = gi + wd * pi
        mi = _lerp(m[i], gi, w1, one_minus_w1)
        m[i] = mi
        vi = v[i] * beta2 + one_minus_beta2 * (gi * gi)
        v[i] = vi
        bcm = mi / bc1
        if rectify:
            p[i] = pi - bcm * lr * (bc2_sqrt / (np.sqrt(vi) + eps)) * rect
        else:
            p[i] = pi - bcm * lr


_radam = _twin(_radam_impl)


def radam_scalars(dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize):
    t = np.dtype(dtype).type
    bc1 = 1 - beta1 ** step
    bc2 = 1 - beta2 ** step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2 ** step) / bc2
    rectify = rho_t > 5.0
    rect = (((rho_t - 4) * (rho_t - 2) * rho_inf) / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5 if rectify else 0.0
    return (t(1 - lr * weight_decay), t(weight_decay), t(1 - beta1), t(beta1), t(beta2), t(1 - beta2), t(bc1),
            t(bc2 ** 0.5), t(lr), t(rect), t(eps), bool(rectify), t(-1.0 if maximize else 1.0), bool(decoupled_weight_decay))


def radam_apply(param, grad, exp_avg, exp_avg_sq, scalars):
    _pick(_radam, param.size)(param, grad, exp_avg, exp_avg_sq, *scalars)


def radam_step(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
               decoupled_weight_decay, maximize):
    radam_apply(param, grad, exp_avg, exp_avg_sq,
                radam_scalars(param.dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay,
                              maximize))

"""CUDA fused optimizer updates: one kernel per parameter per step, torch's single-tensor formulas.

Same contract as :mod:`jitorch.kernels.optim` (whose ``sgd_scalars`` / ``adam_scalars`` build the scalar tuples
used here): arrays are 1-D C-contiguous device arrays of the compute dtype (float32/float64) and the same length;
buffers a configuration does not use may be any device array of that dtype (never read).
"""
from __future__ import annotations

import math

from numba import cuda

from jitorch.kernels import optim as _cpu_optim
from ._sizes import BLOCK, cdiv, kernel

__all__ = ["sgd_scalars", "sgd_apply", "adam_scalars", "adam_apply", "rmsprop_scalars", "rmsprop_apply",
           "adagrad_scalars", "adagrad_apply", "adadelta_scalars", "adadelta_apply", "adamax_scalars",
           "adamax_apply", "nadam_scalars", "nadam_apply", "radam_scalars", "radam_apply"]

sgd_scalars = _cpu_optim.sgd_scalars
adam_scalars = _cpu_optim.adam_scalars
rmsprop_scalars = _cpu_optim.rmsprop_scalars
adagrad_scalars = _cpu_optim.adagrad_scalars
adadelta_scalars = _cpu_optim.adadelta_scalars
adamax_scalars = _cpu_optim.adamax_scalars
nadam_scalars = _cpu_optim.nadam_scalars
radam_scalars = _cpu_optim.radam_scalars


@kernel
def _sgd_k(p, g, buf, lr, momentum, one_minus_dampening, wd, nesterov, sign, first_step, use_momentum):
    i = cuda.grid(1)
    if i < p.shape[0]:
        pi = p[i]
        gi = g[i] * sign
        if wd != 0:
            gi = gi + wd * pi
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


def sgd_apply(param, grad, momentum_buffer, scalars, *, block=BLOCK):
    lr, momentum, omd, wd, nesterov, sign, first, use_m = scalars
    n = param.shape[0]
    if n:
        _sgd_k[cdiv(n, block), block](param, grad, momentum_buffer if use_m else param, lr, momentum, omd, wd,
                                      nesterov, sign, first, use_m)


@cuda.jit(device=True)
def _lerp(a, b, w, one_minus_w):
    d = b - a
    if abs(w) < 0.5:
        return a + w * d
    return b - d * one_minus_w


@kernel
def _adam_k(p, g, m, v, vmax, decay, wd, w1, one_minus_w1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps,
            amsgrad, sign, decoupled):
    i = cuda.grid(1)
    if i < p.shape[0]:
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
            a = vmax[i]
            if a != a or vi != vi:
                vi = a if a != a else vi
            elif a > vi:
                vi = a
            vmax[i] = vi
        denom = math.sqrt(vi) / bc2_sqrt + eps
        p[i] = pi - step_size * (mi / denom)


def adam_apply(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, scalars, *, block=BLOCK):
    n = param.shape[0]
    if n:
        amsgrad = scalars[9]
        _adam_k[cdiv(n, block), block](param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad else exp_avg_sq,
                                       *scalars)


# ---------------------------------------------------------------- the other optimizers (kernels/optim.py's loops)

@cuda.jit(device=True)
def _grad(g, p, sign, wd):
    g = g * sign
    if wd != 0:
        g = g + wd * p
    return g


@cuda.jit(device=True)
def _sqrt(x):
    """np.sqrt: NaN for a negative argument (the simulator's math.sqrt would raise)."""
    if x >= 0:
        return math.sqrt(x)
    z = x * 0
    return z / z


@cuda.jit(device=True)
def _max_nan(a, b):
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


@kernel
def _rmsprop_k(p, g, sq, gavg, buf, lr, alpha, one_minus_alpha, eps, wd, momentum, centered, sign, use_momentum):
    i = cuda.grid(1)
    if i < p.shape[0]:
        pi = p[i]
        gi = _grad(g[i], pi, sign, wd)
        s = sq[i] * alpha + one_minus_alpha * (gi * gi)
        sq[i] = s
        if centered:
            ga = _lerp(gavg[i], gi, one_minus_alpha, alpha)
            gavg[i] = ga
            avg = _sqrt(s - ga * ga)
        else:
            avg = _sqrt(s)
        avg = avg + eps
        if use_momentum:
            b = buf[i] * momentum + gi / avg
            buf[i] = b
            p[i] = pi - lr * b
        else:
            p[i] = pi - lr * (gi / avg)


def rmsprop_apply(param, grad, square_avg, grad_avg, momentum_buffer, scalars, *, block=BLOCK):
    n = param.shape[0]
    if n:
        centered, use_m = scalars[6], scalars[8]
        _rmsprop_k[cdiv(n, block), block](param, grad, square_avg, grad_avg if centered else square_avg,
                                          momentum_buffer if use_m else square_avg, *scalars)


@kernel
def _adagrad_k(p, g, ssum, clr, wd, eps, sign):
    i = cuda.grid(1)
    if i < p.shape[0]:
        pi = p[i]
        gi = _grad(g[i], pi, sign, wd)
        s = ssum[i] + gi * gi
        ssum[i] = s
        p[i] = pi - clr * (gi / (_sqrt(s) + eps))


def adagrad_apply(param, grad, state_sum, scalars, *, block=BLOCK):
    n = param.shape[0]
    if n:
        _adagrad_k[cdiv(n, block), block](param, grad, state_sum, *scalars)


@kernel
def _adadelta_k(p, g, sq, acc, lr, rho, one_minus_rho, eps, wd, sign):
    i = cuda.grid(1)
    if i < p.shape[0]:
        pi = p[i]
        gi = _grad(g[i], pi, sign, wd)
        s = sq[i] * rho + one_minus_rho * (gi * gi)
        sq[i] = s
        std = _sqrt(s + eps)
        a = acc[i]
        delta = (_sqrt(a + eps) / std) * gi
        acc[i] = a * rho + one_minus_rho * (delta * delta)
        p[i] = pi - lr * delta


def adadelta_apply(param, grad, square_avg, acc_delta, scalars, *, block=BLOCK):
    n = param.shape[0]
    if n:
        _adadelta_k[cdiv(n, block), block](param, grad, square_avg, acc_delta, *scalars)


@kernel
def _adamax_k(p, g, m, u, clr, w1, one_minus_w1, beta2, eps, wd, sign):
    i = cuda.grid(1)
    if i < p.shape[0]:
        pi = p[i]
        gi = _grad(g[i], pi, sign, wd)
        mi = _lerp(m[i], gi, w1, one_minus_w1)
        m[i] = mi
        ui = _max_nan(u[i] * beta2, abs(gi) + eps)
        u[i] = ui
        p[i] = pi - clr * (mi / ui)


def adamax_apply(param, grad, exp_avg, exp_inf, scalars, *, block=BLOCK):
    n = param.shape[0]
    if n:
        _adamax_k[cdiv(n, block), block](param, grad, exp_avg, exp_inf, *scalars)


@kernel
def _nadam_k(p, g, m, v, decay, wd, w1, one_minus_w1, beta2, one_minus_beta2, bc2, eps, c_grad, c_avg, sign,
             decoupled):
    i = cuda.grid(1)
    if i < p.shape[0]:
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
        denom = _sqrt(vi / bc2) + eps
        pi = pi + c_grad * (gi / denom)
        p[i] = pi + c_avg * (mi / denom)


def nadam_apply(param, grad, exp_avg, exp_avg_sq, scalars, *, block=BLOCK):
    n = param.shape[0]
    if n:
        _nadam_k[cdiv(n, block), block](param, grad, exp_avg, exp_avg_sq, *scalars)


@kernel
def _radam_k(p, g, m, v, decay, wd, w1, one_minus_w1, beta2, one_minus_beta2, bc1, bc2_sqrt, lr, rect, eps, rectify,
             sign, decoupled):
    i = cuda.grid(1)
    if i < p.shape[0]:
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
            p[i] = pi - bcm * lr * (bc2_sqrt / (_sqrt(vi) + eps)) * rect
        else:
            p[i] = pi - bcm * lr


def radam_apply(param, grad, exp_avg, exp_avg_sq, scalars, *, block=BLOCK):
    n = param.shape[0]
    if n:
        _radam_k[cdiv(n, block), block](param, grad, exp_avg, exp_avg_sq, *scalars)

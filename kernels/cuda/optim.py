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

__all__ = ["sgd_scalars", "sgd_apply", "adam_scalars", "adam_apply"]

sgd_scalars = _cpu_optim.sgd_scalars
adam_scalars = _cpu_optim.adam_scalars


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

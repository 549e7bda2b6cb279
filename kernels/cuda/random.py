"""CUDA random numbers on numba's xoroshiro128+ generator (``numba.cuda.random``).

A draw is a function of (seed, offset): :func:`states` builds ``nthreads`` xoroshiro128p states from a 64-bit
mix of the two (thread t gets subsequence t, 2**64 draws apart), and every launcher runs a grid-stride loop of
exactly ``nthreads`` threads, so thread t fills elements t, t + nthreads, ... The op layer advances the
generator's offset by the element count after each draw, so a sequence of draws is reproducible from the seed.
The numbers differ from the CPU's Philox stream (as torch's CPU and CUDA streams differ).

Launchers write flat (1-D) device arrays:
``uniform(out, st, low, high)`` in [low, high), ``normal(out, st, mean, std)``, ``exponential(out, st, lambd)``
(float32/float64 out); ``randint(out, st, low, high)`` (integer or float out, values in [low, high));
``bernoulli(out, st, p_flat)`` and ``bernoulli_scalar(out, st, p)`` (1 with probability p, any numeric out);
``dropout_mask(out, st, p)`` (0 with probability p, else 1 / (1 - p)).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda
from numba.cuda.random import (xoroshiro128p_dtype, xoroshiro128p_normal_float32, xoroshiro128p_normal_float64,
                               xoroshiro128p_uniform_float32, xoroshiro128p_uniform_float64)

from ._sizes import BLOCK, SIM, cdiv, kernel

__all__ = ["states", "uniform", "normal", "exponential", "randint", "bernoulli", "bernoulli_scalar",
           "dropout_mask", "THREADS"]

#: threads (and generator states) of one draw; the grid-stride loop covers any size
THREADS = 32 if SIM else 16384
_M64 = (1 << 64) - 1


def _mix(seed, offset):
    """splitmix64 of seed ^ golden * offset: distinct (seed, offset) pairs give unrelated state seeds."""
    z = (int(seed) ^ ((int(offset) * 0x9E3779B97F4A7C15) & _M64)) & _M64
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _splitmix_np(z):
    """splitmix64 finalizer over a uint64 NumPy array (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def states(seed, offset, n, *, nthreads=THREADS):
    """Generator states for a draw of ``n`` numbers at (seed, offset): min(n, nthreads) states.

    Each state is seeded with splitmix64 outputs of a per-(seed, offset) base, as xoroshiro's authors
    recommend; it is built on the host with NumPy (numba's create_xoroshiro128p_states jumps 2**64 steps per
    state on the host, which is slow for many states and, under the simulator, compiles in object mode)."""
    t = max(1, min(int(n), int(nthreads)))
    base = np.uint64(_mix(seed, offset))
    with np.errstate(over="ignore"):
        k = np.arange(2 * t, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + base
        words = _splitmix_np(k).reshape(t, 2)
    words[(words[:, 0] == 0) & (words[:, 1] == 0), 0] = 1  # the all-zero state never leaves zero
    host = np.empty(t, dtype=xoroshiro128p_dtype)
    host["s0"] = words[:, 0]
    host["s1"] = words[:, 1]
    return cuda.to_device(host)


def _cfg(st, block):
    t = st.shape[0]
    b = min(block, t)
    return cdiv(t, b), b


@kernel
def _uniform_k(out, st, low, span, f32):
    t = cuda.grid(1)
    nt = st.shape[0]
    if t < nt:
        for i in range(t, out.shape[0], nt):
            if f32:
                u = xoroshiro128p_uniform_float32(st, t)
            else:
                u = xoroshiro128p_uniform_float64(st, t)
            out[i] = low + span * u
            if out[i] >= low + span:  # rounding up to `high`: stay in [low, high)
                out[i] = low


@kernel
def _normal_k(out, st, mean, std, f32):
    t = cuda.grid(1)
    nt = st.shape[0]
    if t < nt:
        for i in range(t, out.shape[0], nt):
            if f32:
                z = xoroshiro128p_normal_float32(st, t)
            else:
                z = xoroshiro128p_normal_float64(st, t)
            out[i] = mean + std * z


@kernel
def _exponential_k(out, st, inv_lambd):
    t = cuda.grid(1)
    nt = st.shape[0]
    if t < nt:
        for i in range(t, out.shape[0], nt):
            u = xoroshiro128p_uniform_float64(st, t)  # [0, 1): 1 - u in (0, 1]
            out[i] = -math.log(1.0 - u) * inv_lambd


@kernel
def _randint_k(out, st, low, span):
    t = cuda.grid(1)
    nt = st.shape[0]
    if t < nt:
        for i in range(t, out.shape[0], nt):
            u = xoroshiro128p_uniform_float64(st, t)
            v = int(u * span)
            if v >= span:
                v = span - 1
            out[i] = low + v


@kernel
def _bernoulli_k(out, st, p):
    t = cuda.grid(1)
    nt = st.shape[0]
    if t < nt:
        for i in range(t, out.shape[0], nt):
            u = xoroshiro128p_uniform_float64(st, t)
            out[i] = 1 if u < p[i] else 0


@kernel
def _bernoulli_scalar_k(out, st, p, zero_value, one_value):
    t = cuda.grid(1)
    nt = st.shape[0]
    if t < nt:
        for i in range(t, out.shape[0], nt):
            u = xoroshiro128p_uniform_float64(st, t)
            out[i] = one_value if u < p else zero_value


def _f32(out):
    d = np.dtype(out.dtype)
    if d not in (np.float32, np.float64):
        raise TypeError(f"cuda random: float32/float64 output expected, got {d}")
    return d == np.float32


def uniform(out, st, low=0.0, high=1.0, *, block=BLOCK):
    if out.shape[0]:
        t = np.dtype(out.dtype).type
        _uniform_k[_cfg(st, block)](out, st, t(low), t(high - low), _f32(out))
    return out


def normal(out, st, mean=0.0, std=1.0, *, block=BLOCK):
    if out.shape[0]:
        t = np.dtype(out.dtype).type
        _normal_k[_cfg(st, block)](out, st, t(mean), t(std), _f32(out))
    return out


def exponential(out, st, lambd=1.0, *, block=BLOCK):
    if out.shape[0]:
        _f32(out)
        _exponential_k[_cfg(st, block)](out, st, 1.0 / float(lambd))
    return out


def randint(out, st, low, high, *, block=BLOCK):
    """Integers in [low, high) (the op layer checks low < high and that they fit out's dtype)."""
    if out.shape[0]:
        _randint_k[_cfg(st, block)](out, st, np.int64(low), np.int64(high - low))
    return out


def bernoulli(out, st, p_flat, *, block=BLOCK):
    """out[i] = 1 with probability p_flat[i] (float64, checked to lie in [0, 1] by the op layer)."""
    if out.shape[0]:
        _bernoulli_k[_cfg(st, block)](out, st, p_flat)
    return out


def bernoulli_scalar(out, st, p, *, block=BLOCK):
    if out.shape[0]:
        t = np.dtype(out.dtype).type
        _bernoulli_scalar_k[_cfg(st, block)](out, st, float(p), t(0), t(1))
    return out


def dropout_mask(out, st, p, *, block=BLOCK):
    """out[i] = 0 with probability p, else 1 / (1 - p) (p >= 1: all zeros)."""
    if out.shape[0]:
        t = np.dtype(out.dtype).type
        keep = t(0.0) if p >= 1.0 else t(1.0 / (1.0 - p))
        _bernoulli_scalar_k[_cfg(st, block)](out, st, float(p), keep, t(0))
    return out

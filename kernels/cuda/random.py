"""CUDA random numbers: xoroshiro128+ generators (numba.cuda.random's algorithm and state layout) seeded by
splitmix64, drawn entirely on the device.

A draw is a function of (seed, offset) and its size ``n``: :func:`key` mixes (seed, offset) into a 64-bit base
(splitmix64 of ``seed ^ golden * offset``) and sets the number of generator streams, ``min(n, STREAMS)``.
Stream ``s`` starts from the xoroshiro128+ state ``(splitmix64(base + golden * 2s), splitmix64(base + golden *
(2s + 1)))`` (xoroshiro's authors' seeding recommendation) and produces elements ``s, s + streams, s + 2 *
streams, ...`` in order. The state lives in registers: nothing is copied from the host, no state array is
allocated, and the numbers do not depend on the launch size (a GPU and the simulator draw the same numbers).
The op layer advances the generator's offset by the element count after each draw, so successive draws use
unrelated bases and a sequence of draws is reproducible from the seed. The numbers differ from the CPU's Philox
stream (as torch's CPU and CUDA streams differ).

Conversions: uniform float64 from the top 53 bits, float32 from the top 24 bits (exact, in [0, 1)); normal by
Box-Muller on two uniforms (``1 - u`` in (0, 1] under the logarithm, so never inf); integers in [low, high) from
the top 32 bits by multiply-shift when the range fits 32 bits, else ``r % span`` (torch's modulo scheme);
randperm sorts 63-bit random keys with kernels/cuda/sort.py and keeps the indices (always a permutation).

Launchers write flat (1-D) device arrays, ``k = key(seed, offset, n)``:
``uniform(out, k, low, high)`` in [low, high), ``normal(out, k, mean, std)``, ``exponential(out, k, lambd)``
(float32/float64 out); ``randint(out, k, low, high)`` (integer or float out, values in [low, high));
``bernoulli(out, k, p_flat)`` and ``bernoulli_scalar(out, k, p)`` (1 with probability p, any numeric out);
``dropout_mask(out, k, p)`` (0 with probability p, else 1 / (1 - p)); ``randperm(out, k)`` (int64 out: a random
permutation of range(n)).

``states(seed, offset, n)`` builds an array of numba xoroshiro128p states on the device (for kernels that keep
one state per thread, e.g. multinomial in gaps.py), read by :func:`uniform_float64` (a device function with
numba.cuda.random's ``xoroshiro128p_uniform_float64`` signature).

Under the simulator the 64-bit helpers run on Python ints (masked to 64 bits): the same numbers as the uint64
device code, without NumPy's scalar-overflow warnings and without numba.cuda.random's object-mode compile.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda
from numba.cuda.random import xoroshiro128p_dtype

from ._sizes import BLOCK, SIM, kernel
from .launch import config as _config

__all__ = ["key", "states", "uniform", "normal", "exponential", "randint", "bernoulli", "bernoulli_scalar",
           "dropout_mask", "randperm", "uniform_float64", "STREAMS", "THREADS"]

#: most generator streams of one draw (a draw of n < STREAMS numbers uses n streams of one number each)
STREAMS = 65536
#: kept for callers of the previous API: the stream count is STREAMS on every target
THREADS = STREAMS
_M64 = (1 << 64) - 1
_GOLD = 0x9E3779B97F4A7C15
_TWO_PI = 2.0 * math.pi


def _mix(seed, offset):
    """splitmix64 of seed ^ golden * offset: distinct (seed, offset) pairs give unrelated bases."""
    return _splitmix_int((int(seed) ^ ((int(offset) * _GOLD) & _M64)) & _M64)


def _splitmix_int(z):
    z = (z + _GOLD) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


class Key:
    """What a draw needs: the 64-bit base of (seed, offset) and the number of streams."""
    __slots__ = ("base", "streams")

    def __init__(self, base, streams):
        self.base, self.streams = int(base), int(streams)

    def __repr__(self):
        return f"Key(base={self.base:#018x}, streams={self.streams})"


def key(seed, offset, n, *, streams=STREAMS):
    """The draw key of ``n`` numbers at (seed, offset) of a generator."""
    return Key(_mix(seed, offset), max(1, min(int(n), int(streams))))


# ------------------------------------------------------------------ 64-bit helpers (two bodies, same numbers)

if SIM:
    def _seed_state(base, s):
        z = (int(base) + _GOLD * 2 * int(s)) & _M64
        s0 = _splitmix_int(z)
        s1 = _splitmix_int((z + _GOLD) & _M64)
        if s0 == 0 and s1 == 0:
            s0 = 1
        return s0, s1

    def _next(s0, s1):
        r = (s0 + s1) & _M64
        s1 ^= s0
        a = ((s0 << 55) | (s0 >> 9)) & _M64
        return r, a ^ s1 ^ ((s1 << 14) & _M64), ((s1 << 36) | (s1 >> 28)) & _M64

    def _unit64(r):
        return (r >> 11) * (1.0 / 9007199254740992.0)

    def _unit32(r):
        return np.float32((r >> 40) * (1.0 / 16777216.0))

    def _bounded(r, low, span):
        """low + (a number in [0, span)); span 0 means 2**64 (the whole int64 range)."""
        span = int(span)
        if span == 0:
            v = r
        elif span <= 4294967296:
            v = ((r >> 32) * span) >> 32
        else:
            v = r % span
        x = (int(low) + v) & _M64
        return x - (1 << 64) if x >= (1 << 63) else x

    def _key63(r):
        return r >> 1

    def _state_next(st, i):
        r, a, b = _next(int(st[i]["s0"]), int(st[i]["s1"]))
        st[i]["s0"] = a
        st[i]["s1"] = b
        return r
else:
    _U = np.uint64
    _G, _C1, _C2 = _U(_GOLD), _U(0xBF58476D1CE4E5B9), _U(0x94D049BB133111EB)
    _S9, _S11, _S14, _S27, _S28, _S30, _S31, _S32, _S36, _S40, _S55 = (
        _U(9), _U(11), _U(14), _U(27), _U(28), _U(30), _U(31), _U(32), _U(36), _U(40), _U(55))
    _ONE, _TWO, _ZERO, _B32 = _U(1), _U(2), _U(0), _U(4294967296)

    @cuda.jit(device=True)
    def _splitmix(z):
        z = z + _G
        z = (z ^ (z >> _S30)) * _C1
        z = (z ^ (z >> _S27)) * _C2
        return z ^ (z >> _S31)

    @cuda.jit(device=True)
    def _seed_state(base, s):
        z = base + _G * (_TWO * _U(s))
        s0 = _splitmix(z)
        s1 = _splitmix(z + _G)
        if s0 == _ZERO and s1 == _ZERO:
            s0 = _ONE
        return s0, s1

    @cuda.jit(device=True)
    def _next(s0, s1):
        r = s0 + s1
        s1 = s1 ^ s0
        a = ((s0 << _S55) | (s0 >> _S9)) ^ s1 ^ (s1 << _S14)
        return r, a, (s1 << _S36) | (s1 >> _S28)

    @cuda.jit(device=True)
    def _unit64(r):
        return np.float64(r >> _S11) * (1.0 / 9007199254740992.0)

    @cuda.jit(device=True)
    def _unit32(r):
        return np.float32(np.float64(r >> _S40) * (1.0 / 16777216.0))

    @cuda.jit(device=True)
    def _bounded(r, low, span):
        if span == _ZERO:
            v = r
        elif span <= _B32:
            v = ((r >> _S32) * span) >> _S32
        else:
            v = r % span
        return np.int64(_U(low) + v)

    @cuda.jit(device=True)
    def _key63(r):
        return np.int64(r >> _ONE)

    @cuda.jit(device=True)
    def _state_next(st, i):
        r, a, b = _next(st[i]["s0"], st[i]["s1"])
        st[i]["s0"] = a
        st[i]["s1"] = b
        return r


@cuda.jit(device=True)
def uniform_float64(states, index):
    """A float64 in [0, 1) from ``states[index]`` (a numba xoroshiro128p state array), advancing it."""
    return _unit64(_state_next(states, index))


# ------------------------------------------------------------------ kernels: stream s fills s, s + ns, ...

@kernel
def _states_k(st, base):
    for s in range(cuda.grid(1), st.shape[0], cuda.gridsize(1)):
        s0, s1 = _seed_state(base, s)
        st[s]["s0"] = s0
        st[s]["s1"] = s1


@kernel
def _uniform_k(out, base, ns, low, span, f32):
    n = out.shape[0]
    for s in range(cuda.grid(1), ns, cuda.gridsize(1)):
        s0, s1 = _seed_state(base, s)
        for i in range(s, n, ns):
            r, s0, s1 = _next(s0, s1)
            if f32:
                v = low + span * _unit32(r)
            else:
                v = low + span * _unit64(r)
            out[i] = v
            if out[i] >= low + span:  # rounding up to `high`: stay in [low, high)
                out[i] = low


@kernel
def _normal_k(out, base, ns, mean, std, f32):
    n = out.shape[0]
    for s in range(cuda.grid(1), ns, cuda.gridsize(1)):
        s0, s1 = _seed_state(base, s)
        for i in range(s, n, ns):
            r, s0, s1 = _next(s0, s1)
            r2, s0, s1 = _next(s0, s1)
            if f32:
                u1 = np.float32(1.0) - _unit32(r)
                u2 = _unit32(r2)
                z = math.sqrt(np.float32(-2.0) * math.log(u1)) * math.cos(np.float32(_TWO_PI) * u2)
            else:
                u1 = 1.0 - _unit64(r)
                u2 = _unit64(r2)
                z = math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)
            out[i] = mean + std * z


@kernel
def _exponential_k(out, base, ns, inv_lambd):
    n = out.shape[0]
    for s in range(cuda.grid(1), ns, cuda.gridsize(1)):
        s0, s1 = _seed_state(base, s)
        for i in range(s, n, ns):
            r, s0, s1 = _next(s0, s1)
            out[i] = -math.log(1.0 - _unit64(r)) * inv_lambd  # 1 - u in (0, 1]


@kernel
def _randint_k(out, base, ns, low, span):
    n = out.shape[0]
    for s in range(cuda.grid(1), ns, cuda.gridsize(1)):
        s0, s1 = _seed_state(base, s)
        for i in range(s, n, ns):
            r, s0, s1 = _next(s0, s1)
            out[i] = _bounded(r, low, span)


@kernel
def _keys_k(out, base, ns):
    n = out.shape[0]
    for s in range(cuda.grid(1), ns, cuda.gridsize(1)):
        s0, s1 = _seed_state(base, s)
        for i in range(s, n, ns):
            r, s0, s1 = _next(s0, s1)
            out[i] = _key63(r)  # 63 random bits, a non-negative int64


@kernel
def _bernoulli_k(out, base, ns, p):
    n = out.shape[0]
    for s in range(cuda.grid(1), ns, cuda.gridsize(1)):
        s0, s1 = _seed_state(base, s)
        for i in range(s, n, ns):
            r, s0, s1 = _next(s0, s1)
            out[i] = 1 if _unit64(r) < p[i] else 0


@kernel
def _bernoulli_scalar_k(out, base, ns, p, one_value, zero_value):
    n = out.shape[0]
    for s in range(cuda.grid(1), ns, cuda.gridsize(1)):
        s0, s1 = _seed_state(base, s)
        for i in range(s, n, ns):
            r, s0, s1 = _next(s0, s1)
            out[i] = one_value if _unit64(r) < p else zero_value


def _run(k, kern, *args):
    """Launch ``kern`` over the key's streams (a grid-stride loop: any grid gives the same numbers)."""
    kern[_config(k.streams)](*args[:1], np.uint64(k.base), np.int64(k.streams), *args[1:])


def _f32(out):
    d = np.dtype(out.dtype)
    if d not in (np.float32, np.float64):
        raise TypeError(f"cuda random: float32/float64 output expected, got {d}")
    return d == np.float32


def states(seed, offset, n, *, nthreads=STREAMS):
    """A device array of ``min(n, nthreads)`` numba xoroshiro128p states for (seed, offset), made on the
    device: state t is stream t of :func:`key`'s scheme."""
    t = max(1, min(int(n), int(nthreads)))
    st = cuda.device_array(t, dtype=xoroshiro128p_dtype)
    _states_k[_config(t)](st, np.uint64(_mix(seed, offset)))
    return st


def uniform(out, k, low=0.0, high=1.0):
    if out.shape[0]:
        t = np.dtype(out.dtype).type
        _run(k, _uniform_k, out, t(low), t(high - low), _f32(out))
    return out


def normal(out, k, mean=0.0, std=1.0):
    if out.shape[0]:
        t = np.dtype(out.dtype).type
        _run(k, _normal_k, out, t(mean), t(std), _f32(out))
    return out


def exponential(out, k, lambd=1.0):
    if out.shape[0]:
        _f32(out)
        _run(k, _exponential_k, out, 1.0 / float(lambd))
    return out


def randint(out, k, low, high):
    """Integers in [low, high) (the op layer checks low < high and that they fit out's dtype); the range may be
    up to 2**64 wide."""
    if out.shape[0]:
        span = (int(high) - int(low)) & _M64  # 2**64 -> 0: the whole range
        _run(k, _randint_k, out, np.int64(low), np.uint64(span))
    return out


def bernoulli(out, k, p_flat):
    """out[i] = 1 with probability p_flat[i] (float64, checked to lie in [0, 1] by the op layer)."""
    if out.shape[0]:
        _run(k, _bernoulli_k, out, p_flat)
    return out


def bernoulli_scalar(out, k, p):
    if out.shape[0]:
        t = np.dtype(out.dtype).type
        _run(k, _bernoulli_scalar_k, out, float(p), t(1), t(0))
    return out


def dropout_mask(out, k, p):
    """out[i] = 0 with probability p, else 1 / (1 - p) (p >= 1: all zeros)."""
    if out.shape[0]:
        t = np.dtype(out.dtype).type
        keep = t(0.0) if p >= 1.0 else t(1.0 / (1.0 - p))
        _run(k, _bernoulli_scalar_k, out, float(p), t(0), keep)
    return out


def randperm(out, k, *, cap=None, block=BLOCK):
    """out (n,) int64: a random permutation of range(n): random 63-bit keys, stably sorted with their indices
    (kernels/cuda/sort.py); equal keys keep index order, so the result is a permutation whatever the keys."""
    from . import sort as _sort
    n = out.shape[0]
    if n == 0:
        return out
    keys = cuda.device_array((1, n), np.int64)
    _run(k, _keys_k, keys.reshape(n))
    sorted_keys = cuda.device_array((1, n), np.int64)
    kw = {} if cap is None else {"cap": cap}
    _sort.sort(keys, sorted_keys, out.reshape(1, n), False, block=block, **kw)
    return out


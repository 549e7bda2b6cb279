"""Random-number primitives on the counter-based Philox stream of ``kernels/random.py`` (cpu) and the
xoroshiro128+ streams of ``kernels/cuda/random.py`` (cuda).

A :class:`Generator` is (seed, offset) on one device type; a draw of n numbers reads counters
[offset, offset + k) and advances offset by k, so results are reproducible and independent of
threading. The records take the generator as the attribute ``generator`` (None: the default
generator of the draw's device: ``default_generator`` on cpu, :func:`cuda_default_generator` per
cuda device), never a baked seed: replaying a traced graph draws fresh numbers. The input-less
records (uniform, normal, randint, randperm, bernoulli_p, dropout_mask, exponential) take the
attribute ``device`` (None: cpu; 'cuda:0': drawn on that device by its kernels, no host draw).
Tagged ``random`` so passes never fold or deduplicate them.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _dtype as D
from ..backends import cpu as _cpu
from ..kernels import random as _kr
from .registry import OpDef, register

DEFAULT_SEED = 67280421310721  # torch's default seed, so fresh processes start reproducibly


class Generator:
    """torch.Generator: a seed and an offset into the Philox stream."""

    def __init__(self, device="cpu"):
        from .._device import as_device
        dev = as_device(device)
        if dev.type == "cuda" and dev.index is None:
            from .._device import device as _device
            dev = _device("cuda", 0)
        self.device = dev
        self._seed = DEFAULT_SEED
        self._offset = 0

    def manual_seed(self, seed):
        seed = int(seed)
        if not -(2 ** 63) <= seed < 2 ** 64:
            raise RuntimeError(f"Overflow when unpacking long: seed {seed} does not fit in 64 bits")
        self._seed = seed % (2 ** 64)
        self._offset = 0
        return self

    def seed(self):
        import os
        s = int.from_bytes(os.urandom(8), "little") & ((1 << 63) - 1)
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return self._seed

    def get_state(self):
        from .._creation import tensor
        raw = np.array([self._seed, self._offset], dtype=np.uint64).view(np.uint8)
        return tensor(raw.copy(), dtype=D.uint8)

    def set_state(self, state):
        arr = np.asarray(state._data if hasattr(state, "_data") else state, dtype=np.uint8)
        if arr.size != 16:
            raise RuntimeError(f"Generator.set_state: expected a 16-byte state (seed, offset), got {arr.size} bytes")
        self._seed, self._offset = (int(v) for v in arr.view(np.uint64))
        return self

    def _take(self, counters):
        off = self._offset
        self._offset = (off + int(counters)) % (2 ** 64)
        return self._seed, off

    def __repr__(self):
        return f"<jitorch.Generator object (seed={self._seed}, offset={self._offset})>"


default_generator = Generator()

#: the default generator of each cuda device (index -> Generator), made on first use: torch's
#: ``torch.cuda.default_generators``, separate from the cpu one
_cuda_generators = {}
#: the seed of the last ``manual_seed_all`` (jitorch.manual_seed): generators made later start from it
_cuda_seed_all = [None]


def cuda_default_generator(index=0):
    """The default generator of cuda device ``index`` (torch's default seed until seeded)."""
    g = _cuda_generators.get(index)
    if g is None:
        g = Generator(f"cuda:{int(index)}")
        if _cuda_seed_all[0] is not None:
            g.manual_seed(_cuda_seed_all[0])
        _cuda_generators[index] = g
    return g


def cuda_manual_seed_all(seed):
    """Seed every cuda default generator, also those made later (torch.cuda.manual_seed_all)."""
    seed = int(seed)
    Generator().manual_seed(seed)  # validates the seed before anything changes
    _cuda_seed_all[0] = seed
    for g in _cuda_generators.values():
        g.manual_seed(seed)


def snapshot_generators():
    """The states of every default generator (cpu and the cuda ones made so far): tracing saves them before
    running a function and restores them after, so tracing's draws leave no trace on any device."""
    return ((default_generator._seed, default_generator._offset),
            {i: (g._seed, g._offset) for i, g in _cuda_generators.items()}, _cuda_seed_all[0])


def restore_generators(snapshot):
    """Undo every draw since :func:`snapshot_generators` (a cuda generator first used since is forgotten)."""
    (default_generator._seed, default_generator._offset), cuda_states, _cuda_seed_all[0] = snapshot
    for i in list(_cuda_generators):
        if i in cuda_states:
            _cuda_generators[i]._seed, _cuda_generators[i]._offset = cuda_states[i]
        else:
            del _cuda_generators[i]


def _gen_for(generator, device=None):
    """The generator a draw on ``device`` (None: cpu) uses; torch's error for one of another device type."""
    dtype = "cpu" if device is None else device.type
    if generator is None:
        if dtype == "cpu":
            return default_generator
        return cuda_default_generator(device.index or 0)
    gt = generator.device.type
    if gt != dtype:
        raise RuntimeError(f"Expected a '{dtype}' device type for generator but found '{gt}' (pass a "
                           f"jitorch.Generator(device='{dtype}') or generator=None for a draw on {dtype})")
    return generator


def _gen(generator):
    """The generator of a cpu draw."""
    return _gen_for(generator)


def _draw(kernel, out, generator, *args, f16=True):
    """Run a counter-consuming kernel into out (float16 via float32) and advance the generator."""
    g = _gen_for(generator)
    target = np.empty(out.shape, np.float32) if (f16 and out.dtype == np.float16) else out
    flat = target.reshape(-1)
    # the kernel returns how many counters it used; run it at the current offset, then advance
    used = kernel(g._seed, g._offset, flat, *args)
    g._take(used)
    if target is not out:
        _cpu.copy_into(out, target)
    return out


def _size_shape(size=(), dtype=None, **_):
    return tuple(size)


def _float_dtype(dtype=None, **_):
    d = D.get_default_dtype() if dtype is None else D.as_dtype(dtype)
    if not d.is_floating_point:
        raise RuntimeError(f"random: expected a floating point dtype, got {d.name}")
    return d


def _uniform_impl(out, size=(), dtype=None, low=0.0, high=1.0, generator=None, device=None):
    if out.dtype == np.float16:
        # float32 values just below `high` would round up to it in float16: shrink the range by
        # half a float16 ulp so every draw stays in [low, high) after rounding
        high = low + (high - low) * (1.0 - 2.0 ** -12)
    return _draw(_kr.uniform, out, generator, float(low), float(high))


def _normal_impl(out, size=(), dtype=None, mean=0.0, std=1.0, generator=None, device=None):
    return _draw(_kr.normal, out, generator, float(mean), float(std))


def _randint_dtype(size=(), dtype=None, **_):
    return D.int64 if dtype is None else D.as_dtype(dtype)


def _randint_impl(out, size=(), dtype=None, low=0, high=2, generator=None, device=None):
    if out.dtype == np.bool_ or out.dtype == np.float16:
        tmp = np.empty(out.shape, np.int64)
        _draw(_kr.randint, tmp, generator, int(low), int(high), f16=False)
        _cpu.copy_into(out, tmp)
        return out
    return _draw(_kr.randint, out, generator, int(low), int(high), f16=False)


def _randperm_impl(out, n=0, dtype=None, generator=None, device=None):
    g = _gen(generator)
    work = out if out.dtype in (np.int64, np.int32) else np.empty(out.shape, np.int64)
    used = _kr.randperm(g._seed, g._offset, int(n), work.reshape(-1))
    g._take(used)
    if work is not out:
        _cpu.copy_into(out, work)
    return out


def _bernoulli_impl(out, p, generator=None):
    pf = np.empty(p.shape, np.float64)
    _cpu.copy_into(pf, p)
    work = out if out.dtype != np.float16 else np.empty(out.shape, np.float32)
    g = _gen(generator)
    used = _kr.bernoulli(g._seed, g._offset, pf.reshape(-1), work.reshape(-1))
    g._take(used)
    if work is not out:
        _cpu.copy_into(out, work)
    return out


def _bernoulli_p_impl(out, size=(), p=0.5, dtype=None, generator=None, device=None):
    work = out if out.dtype != np.float16 else np.empty(out.shape, np.float32)
    g = _gen(generator)
    used = _kr.bernoulli_scalar(g._seed, g._offset, float(p), work.reshape(-1))
    g._take(used)
    if work is not out:
        _cpu.copy_into(out, work)
    return out


def _dropout_mask_impl(out, size=(), p=0.5, dtype=None, generator=None, device=None):
    work = out if out.dtype != np.float16 else np.empty(out.shape, np.float32)
    g = _gen(generator)
    used = _kr.dropout_mask(g._seed, g._offset, float(p), work.reshape(-1))  # (seed, offset, p, out)
    g._take(used)
    if work is not out:
        _cpu.copy_into(out, work)
    return out


def _exponential_impl(out, size=(), dtype=None, lambd=1.0, generator=None, device=None):
    return _draw(_kr.exponential, out, generator, float(lambd))


def _multinomial_shape(pshape, num_samples=1, replacement=False, generator=None):
    if len(pshape) not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim (got shape {list(pshape)})")
    k = pshape[-1]
    if k == 0:
        raise RuntimeError("multinomial: number of categories cannot be zero")
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples (got {num_samples})")
    if not replacement and num_samples > k:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement "
                           f"({num_samples} > {k})")
    return tuple(pshape[:-1]) + (num_samples,)


def _multinomial_impl(out, probs, num_samples=1, replacement=False, generator=None):
    p = np.empty(probs.shape, np.float64)
    _cpu.copy_into(p, probs)
    p2 = p.reshape(-1, p.shape[-1])
    g = _gen(generator)
    used = _kr.multinomial(g._seed, g._offset, p2, int(num_samples), bool(replacement), out.reshape(p2.shape[0], -1))
    g._take(used)
    return out


_RNG = frozenset({"random"})
_G = (("generator", None),)
_GD = _G + (("device", None),)  # input-less draws: the device they run on (None: cpu)
for _rec in [
    OpDef("uniform", shape_rule=_size_shape, dtype_rule=_float_dtype, reference=None, impl={"cpu": _uniform_impl},
          attrs=(("size", ()), ("dtype", None), ("low", 0.0), ("high", 1.0)) + _GD, tags=_RNG,
          doc="uniform numbers in [low, high)"),
    OpDef("normal", shape_rule=_size_shape, dtype_rule=_float_dtype, reference=None, impl={"cpu": _normal_impl},
          attrs=(("size", ()), ("dtype", None), ("mean", 0.0), ("std", 1.0)) + _GD, tags=_RNG,
          doc="normal numbers N(mean, std**2) (Box-Muller)"),
    OpDef("randint", shape_rule=_size_shape, dtype_rule=_randint_dtype, reference=None, impl={"cpu": _randint_impl},
          attrs=(("size", ()), ("dtype", None), ("low", 0), ("high", 2)) + _GD, tags=_RNG,
          doc="integers uniform in [low, high)"),
    OpDef("randperm", shape_rule=lambda n=0, dtype=None, **_: (int(n),), dtype_rule=_randint_dtype, reference=None,
          impl={"cpu": _randperm_impl}, attrs=(("n", 0), ("dtype", None)) + _GD, tags=_RNG,
          doc="a random permutation of range(n)"),
    OpDef("bernoulli", shape_rule=lambda ps, generator=None: tuple(ps), dtype_rule=lambda p, generator=None: p.dtype,
          reference=None, impl={"cpu": _bernoulli_impl}, attrs=_G, tags=_RNG,
          doc="1 with probability p (elementwise tensor of probabilities), else 0"),
    OpDef("bernoulli_p", shape_rule=_size_shape, dtype_rule=lambda size=(), p=0.5, dtype=None, **_: _float_dtype(dtype),
          reference=None, impl={"cpu": _bernoulli_p_impl}, attrs=(("size", ()), ("p", 0.5), ("dtype", None)) + _GD,
          tags=_RNG, doc="1 with probability p, else 0"),
    OpDef("dropout_mask", shape_rule=_size_shape, dtype_rule=lambda size=(), p=0.5, dtype=None, **_: _float_dtype(dtype),
          reference=None, impl={"cpu": _dropout_mask_impl}, attrs=(("size", ()), ("p", 0.5), ("dtype", None)) + _GD,
          tags=_RNG, doc="0 with probability p, else 1 / (1 - p): the multiplier of inverted dropout"),
    OpDef("exponential", shape_rule=_size_shape, dtype_rule=_float_dtype, reference=None,
          impl={"cpu": _exponential_impl}, attrs=(("size", ()), ("dtype", None), ("lambd", 1.0)) + _GD, tags=_RNG,
          doc="exponential numbers with rate lambd"),
    OpDef("multinomial", shape_rule=_multinomial_shape, dtype_rule=lambda p, **_: D.int64, reference=None,
          impl={"cpu": _multinomial_impl}, attrs=(("num_samples", 1), ("replacement", False)) + _G, tags=_RNG,
          doc="category indices drawn with probabilities proportional to each row"),
]:
    register(_rec)

_ = math


# ---------------------------------------------------------------------------------------------------------------
# Gradients (owned by autograd): samplers are not differentiable (torch: zero gradient for bernoulli's p,
# none for the others); their outputs never require grad.
# ---------------------------------------------------------------------------------------------------------------
from ..autograd._vjp import register_vjps as _register_vjps  # noqa: E402

NON_DIFFERENTIABLE = ("uniform", "normal", "randint", "randperm", "bernoulli", "bernoulli_p", "dropout_mask",
                      "exponential", "multinomial")

_register_vjps({}, NON_DIFFERENTIABLE)

# impl["cuda"] of these records: jitorch/ops/_cuda.py (kernels in kernels/cuda/random.py)
from ._cuda import register_random as _register_cuda  # noqa: E402

_register_cuda()

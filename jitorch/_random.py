"""torch's random API: manual_seed, Generator, rand/randn/randint/randperm/normal/bernoulli/multinomial
(+ _like), and the in-place Tensor samplers (uniform_, normal_, random_, bernoulli_, exponential_).

Draws for a cuda tensor (``device='cuda'``, ``*_like`` of a cuda tensor, the in-place samplers of one) run on
the device from the cuda default generator (jitorch.cuda's seed API), never on the host: the records get the
``device`` attribute (jitorch/ops/random.py). The seed scheme is torch's: ``manual_seed`` seeds the cpu
generator and every cuda generator; the cpu and cuda streams differ."""
from __future__ import annotations

import numbers

import numpy as np

from . import _dtype as D
from ._creation import _finish, _size
from ._device import factory_device
from ._dispatch import call
from .ops.random import Generator, default_generator
from .tensor import Tensor

__all__ = ["Generator", "default_generator", "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
           "rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial", "rand_like", "randn_like",
           "randint_like", "poisson"]


def manual_seed(seed):
    """Seed the cpu default generator and every cuda default generator (as torch); returns the cpu one.
    Never imports numba.cuda: cuda generators made later start from this seed."""
    from .ops.random import cuda_manual_seed_all
    default_generator.manual_seed(seed)
    cuda_manual_seed_all(seed)
    return default_generator


def seed():
    """A non-deterministic seed for the cpu generator, also given to every cuda generator (torch.seed)."""
    from .ops.random import cuda_manual_seed_all
    s = default_generator.seed()
    cuda_manual_seed_all(s)
    return s


def initial_seed():
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state):
    default_generator.set_state(new_state)


def _float(dtype):
    return D.get_default_dtype() if dtype is None else D.as_dtype(dtype)


def _on(device):
    """The ``device`` attribute of an input-less draw: {} on cpu (cpu records and graphs keep their attributes),
    {'device': 'cuda:0'} for a draw made on that device."""
    dev = factory_device(device)
    if dev.type == "cpu":
        return {}
    from . import _devices
    return {"device": str(_devices.check_device(dev))}


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False, out=None, layout=None, pin_memory=False):
    """Uniform [0, 1) numbers."""
    t = call("uniform", size=_size(size), dtype=_float(dtype), low=0.0, high=1.0, generator=generator, **_on(device))
    return _finish(t, None, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False, out=None, layout=None, pin_memory=False):
    """Standard normal numbers."""
    t = call("normal", size=_size(size), dtype=_float(dtype), mean=0.0, std=1.0, generator=generator, **_on(device))
    return _finish(t, None, requires_grad)


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad=False, out=None):
    """randint(high, size) or randint(low, high, size): integers in [low, high)."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size' (pass e.g. randint(0, 10, (3,)))")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    t = call("randint", size=_size((size,) if isinstance(size, int) else size),
             dtype=D.int64 if dtype is None else D.as_dtype(dtype), low=int(low), high=int(high), generator=generator,
             **_on(device))
    return _finish(t, None, requires_grad)


_FLOAT_NAMES = {"float16": "Half", "float32": "Float", "float64": "Double"}


def _randperm_check(n, dt):
    """torch's limits: every value of range(n) must be exact in the result dtype."""
    if dt is D.bool_:
        raise NotImplementedError("\"randperm\" not implemented for 'Bool'")
    if dt.is_floating_point:
        lim = 2 ** (np.finfo(dt.np).nmant + 1) + 1
        if n > lim:
            raise RuntimeError(f"n cannot be greater than {lim} for {_FLOAT_NAMES.get(dt.name, dt.name)} type.")
    elif n and n - 1 > D.iinfo(dt).max:
        raise RuntimeError(f"value cannot be converted to type {dt.name} without overflow: randperm({n}) needs values "
                           f"up to {n - 1}; use a wider dtype (int64 is the default)")


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False, out=None, layout=None,
             pin_memory=False):
    """A random permutation of range(n) (int64 unless ``dtype``); on cuda drawn and sorted on the device."""
    n = int(n)
    if n < 0:
        raise RuntimeError(f"randperm: n must be non-negative, got {n}")
    dt = D.int64 if dtype is None else D.as_dtype(dtype)
    _randperm_check(n, dt)
    t = call("randperm", n=n, dtype=dt, generator=generator, **_on(device))
    return _finish(t, None, requires_grad)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False, out=None):
    """normal(mean, std, size) with numbers, or elementwise with tensor mean/std."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        like = mean if isinstance(mean, Tensor) else std
        if isinstance(std, numbers.Number) and std < 0 or isinstance(std, Tensor) and bool((std < 0).any()):
            raise RuntimeError("normal expects std >= 0.0")
        z = call("normal", size=tuple(call("add", mean, std, alpha=0).shape) if isinstance(mean, Tensor) and
                 isinstance(std, Tensor) else tuple(like.shape), dtype=like.dtype, mean=0.0, std=1.0,
                 generator=generator, **_on(like.device))
        return z * std + mean
    if size is None:
        raise TypeError("normal() with float mean and std needs a size")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    t = call("normal", size=_size((size,) if isinstance(size, int) else size), dtype=_float(dtype), mean=float(mean),
             std=float(std), generator=generator, **_on(device))
    return _finish(t, None, requires_grad)


def bernoulli(input, p=None, *, generator=None, out=None):
    """1 with probability input (elementwise) or p, else 0; same dtype as input."""
    if p is not None:
        return call("bernoulli_p", size=tuple(input.shape), p=float(p), dtype=input.dtype, generator=generator,
                    **_on(input.device))
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"bernoulli: expected a floating point probability tensor, got {input.dtype.name}")
    if input.numel() and (bool((input < 0).any()) or bool((input > 1).any())):
        raise RuntimeError("bernoulli: Expected p_in >= 0 && p_in <= 1 to be true, but got false; probabilities must "
                           "be in [0, 1]")
    return call("bernoulli", input, generator=generator)


def multinomial(input, num_samples, replacement=False, *, generator=None, out=None):
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: {input.dtype.name}")
    if input.numel():
        if bool((input < 0).any()) or not bool(input.isfinite().all()):
            raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
        rows = input.reshape(-1, input.shape[-1]).sum(-1)
        if bool((rows <= 0).any()):
            raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
        if not replacement:
            nz = (input.reshape(-1, input.shape[-1]) > 0).sum(-1)
            if bool((nz < num_samples).any()):
                raise RuntimeError("multinomial: invalid multinomial distribution (with replacement=False, not enough "
                                   "non-negative category to sample)")
    return call("multinomial", input, num_samples=int(num_samples), replacement=bool(replacement), generator=generator)


def poisson(input, generator=None):
    raise NotImplementedError("poisson is not implemented in jitorch yet")


def rand_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return rand(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def randn_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return randn(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype, device=device or input.device)


def _fill_from(self, t):
    from ._dispatch import call_inplace
    return call_inplace("copy", self, t)


def _bind():
    T = Tensor
    T.uniform_ = lambda self, a=0.0, b=1.0, *, generator=None: _fill_from(
        self, call("uniform", size=tuple(self.shape), dtype=self.dtype if self.dtype.is_floating_point else None,
                   low=float(a), high=float(b), generator=generator, **_on(self.device)))
    T.normal_ = lambda self, mean=0.0, std=1.0, *, generator=None: _fill_from(
        self, call("normal", size=tuple(self.shape), dtype=self.dtype if self.dtype.is_floating_point else None,
                   mean=float(mean), std=float(std), generator=generator, **_on(self.device)))

    def random_(self, from_=0, to=None, *, generator=None):
        if to is None:
            if self.dtype.is_floating_point:
                to = 2 ** {D.float16: 11, D.float32: 24, D.float64: 53}[self.dtype] + 1
            elif self.dtype is D.bool_:
                to = 2
            else:
                to = D.iinfo(self.dtype).max + 1
            if from_ and to <= from_:
                from_, to = 0, from_
        return _fill_from(self, call("randint", size=tuple(self.shape), dtype=D.int64, low=int(from_), high=int(to),
                                     generator=generator, **_on(self.device)))
    T.random_ = random_
    T.bernoulli_ = lambda self, p=0.5, *, generator=None: _fill_from(
        self, bernoulli(self, float(p), generator=generator) if not isinstance(p, Tensor) else
        call("bernoulli", p.to(self.device).expand(self.shape).contiguous(), generator=generator))
    T.bernoulli = lambda self, p=None, *, generator=None: bernoulli(self, p, generator=generator)
    T.exponential_ = lambda self, lambd=1.0, *, generator=None: _fill_from(
        self, call("exponential", size=tuple(self.shape), dtype=self.dtype, lambd=float(lambd), generator=generator,
                   **_on(self.device)))
    T.multinomial = lambda self, num_samples, replacement=False, *, generator=None: multinomial(
        self, num_samples, replacement, generator=generator)


_bind()

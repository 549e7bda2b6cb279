"""Randomness for samplers, ``random_split`` and worker seeds — one place to switch generators.

torch draws these from ``torch.randperm`` / ``torch.randint`` / ``torch.multinomial`` with an optional
``torch.Generator``. jitorch's Generator and random ops (``jitorch.kernels.random`` plus a frontend) are
being written; until ``jitorch.Generator`` and ``jitorch.randperm`` exist, these functions draw from
NumPy's PCG64:

- ``generator=None``: a module-level ``numpy.random.Generator`` seeded from OS entropy (so shuffles are
  not yet reproducible through ``jitorch.manual_seed``; pass a generator for reproducible runs);
- ``generator=numpy.random.Generator``: used (and advanced) directly, so successive epochs differ and
  re-creating the generator with the same seed replays them;
- ``generator=int``: a seed (a jitorch convenience): every call replays the same draw.

Once the frontend exists (``jitorch.Generator``, ``jitorch.randperm``, ``jitorch.randint``,
``jitorch.multinomial``), ``None`` and ``jitorch.Generator`` arguments go through it automatically.
"""
from __future__ import annotations

import numpy as np

_fallback = np.random.default_rng()


def _frontend():
    import jitorch
    if all(hasattr(jitorch, n) for n in ("Generator", "randperm", "randint", "multinomial")):
        return jitorch
    return None


def _numpy_rng(generator, what):
    if generator is None:
        return _fallback
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"{what}: generator must be None, a jitorch.Generator, a numpy.random.Generator or an int seed; "
                    f"got {type(generator).__name__}")


def _use_frontend(generator):
    jt = _frontend()
    if jt is None:
        return None
    if generator is None or isinstance(generator, jt.Generator):
        return jt
    return None


def randperm(n: int, generator=None) -> list[int]:
    """A random permutation of ``range(n)``."""
    jt = _use_frontend(generator)
    if jt is not None:
        return jt.randperm(n, generator=generator).tolist()
    return _numpy_rng(generator, "randperm").permutation(n).tolist()


def randint(high: int, size: int, generator=None) -> list[int]:
    """``size`` integers uniform in ``[0, high)``."""
    jt = _use_frontend(generator)
    if jt is not None:
        return jt.randint(high=high, size=(size,), dtype=jt.int64, generator=generator).tolist()
    return _numpy_rng(generator, "randint").integers(0, high, size=size).tolist()


def multinomial(weights: np.ndarray, num_samples: int, replacement: bool, generator=None) -> list[int]:
    """Indices drawn with probabilities proportional to ``weights`` (float64, 1-D), like torch.multinomial."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ValueError("multinomial: weights must be a non-empty 1-D sequence")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise RuntimeError("invalid multinomial distribution (encountering probability entry < 0 or inf or nan)")
    total = w.sum()
    if total <= 0:
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and num_samples > np.count_nonzero(w):
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    jt = _use_frontend(generator)
    if jt is not None:
        return jt.multinomial(jt.tensor(w), num_samples, replacement, generator=generator).tolist()
    rng = _numpy_rng(generator, "multinomial")
    return rng.choice(w.size, size=num_samples, replace=replacement, p=w / total).tolist()


def draw_seed(generator=None) -> int:
    """A random int64 seed (torch: ``torch.empty((), dtype=torch.int64).random_(generator=g).item()``)."""
    jt = _use_frontend(generator)
    if jt is not None:
        return int(jt.randint(0, 2 ** 63 - 1, (1,), dtype=jt.int64, generator=generator).item())
    return int(_numpy_rng(generator, "seed").integers(0, 2 ** 63 - 1))


def fresh_generator():
    """A new generator seeded from the default one (what torch's RandomSampler makes per pass)."""
    seed = draw_seed(None)
    jt = _frontend()
    if jt is not None:
        g = jt.Generator()
        g.manual_seed(seed)
        return g
    return np.random.default_rng(seed)


def seed_worker(seed: int) -> None:
    """Seed jitorch's default generator (when it exists) and the fallback in a DataLoader worker."""
    global _fallback
    _fallback = np.random.default_rng(seed)
    import jitorch
    manual_seed = getattr(jitorch, "manual_seed", None)
    if manual_seed is not None:
        manual_seed(seed)

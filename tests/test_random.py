"""The random API: reproducible streams, generators, statistics and errors (kernels are tested in
tests/kernels/test_random.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import jitorch


def test_manual_seed_reproduces_and_streams_advance():
    jitorch.manual_seed(123)
    a = jitorch.rand(5)
    b = jitorch.rand(5)
    jitorch.manual_seed(123)
    assert jitorch.rand(5).tolist() == a.tolist()
    assert jitorch.rand(5).tolist() == b.tolist()
    assert a.tolist() != b.tolist()


def test_generators_are_independent_and_stateful():
    g1, g2 = jitorch.Generator().manual_seed(7), jitorch.Generator().manual_seed(7)
    x = jitorch.randn(4, generator=g1)
    jitorch.rand(10)  # the default generator does not disturb g2
    assert jitorch.randn(4, generator=g2).tolist() == x.tolist()
    state = g1.get_state()
    y = jitorch.rand(3, generator=g1)
    g1.set_state(state)
    assert jitorch.rand(3, generator=g1).tolist() == y.tolist()
    assert g1.initial_seed() == 7


@pytest.mark.parametrize("dtype", [jitorch.float32, jitorch.float64, jitorch.float16])
def test_distributions_statistics(dtype):
    g = jitorch.Generator().manual_seed(0)
    n = 200_000
    u = jitorch.rand(n, generator=g, dtype=dtype).double().numpy()
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n) + (1e-3 if dtype is jitorch.float16 else 0)
    z = jitorch.randn(n, generator=g, dtype=dtype).double().numpy()
    assert abs(z.mean()) < 5 / math.sqrt(n) + 1e-3 and abs(z.std() - 1) < 0.01
    m = jitorch.normal(3.0, 2.0, (n,), generator=g).numpy()
    assert abs(m.mean() - 3) < 0.05 and abs(m.std() - 2) < 0.05


def test_integer_samplers():
    g = jitorch.Generator().manual_seed(1)
    r = jitorch.randint(-3, 4, (50_000,), generator=g).numpy()
    assert r.min() == -3 and r.max() == 3
    counts = np.bincount(r + 3)
    assert counts.min() > 50_000 / 7 * 0.9
    p = jitorch.randperm(100, generator=g).numpy()
    assert sorted(p.tolist()) == list(range(100))
    assert jitorch.randint(5, (3,)).dtype is jitorch.int64
    probs = jitorch.tensor([0.2, 0.0, 0.8])
    s = jitorch.multinomial(probs, 20_000, replacement=True, generator=g).numpy()
    assert (s != 1).all() and abs((s == 2).mean() - 0.8) < 0.02
    w = jitorch.multinomial(jitorch.tensor([1.0, 1.0, 1.0, 1.0]), 4, generator=g).numpy()
    assert sorted(w.tolist()) == [0, 1, 2, 3]
    b = jitorch.bernoulli(jitorch.full((40_000,), 0.3), generator=g).numpy()
    assert abs(b.mean() - 0.3) < 0.015


def test_inplace_samplers_and_like():
    x = jitorch.empty(1000)
    x.uniform_(-2, 2)
    assert x.min().item() >= -2 and x.max().item() < 2
    v = x._version
    x.normal_(5, 0.1)
    assert x._version > v and abs(x.mean().item() - 5) < 0.05
    y = jitorch.empty(1000, dtype=jitorch.int64).random_(0, 3)
    assert set(np.unique(y.numpy()).tolist()) <= {0, 1, 2}
    assert jitorch.rand_like(x).shape == x.shape and jitorch.randn_like(x).dtype is x.dtype
    assert jitorch.randint_like(y, 10).dtype is jitorch.int64


def test_random_errors():
    with pytest.raises(RuntimeError):
        jitorch.randint(5, 5, (2,))
    with pytest.raises(RuntimeError):
        jitorch.randperm(-1)
    with pytest.raises(RuntimeError, match="probabilit"):
        jitorch.bernoulli(jitorch.tensor([1.5]))
    with pytest.raises(RuntimeError):
        jitorch.multinomial(jitorch.tensor([0.5, -0.1]), 1)
    with pytest.raises(RuntimeError):
        jitorch.multinomial(jitorch.tensor([1.0, 0.0]), 2)
    with pytest.raises(RuntimeError):
        jitorch.rand(-1)
    with pytest.raises(RuntimeError):
        jitorch.normal(0.0, -1.0, (2,))


@pytest.mark.parametrize("n,dtype", [(0, "int64"), (1, "int64"), (9, "int32"), (256, "uint8"), (128, "int8"),
                                     (2049, "float16"), (50, "float64"), (300, "int16")])
def test_randperm_dtypes_and_limits(n, dtype):
    dt = getattr(jitorch, dtype)
    p = jitorch.randperm(n, dtype=dt)
    assert p.dtype is dt and tuple(p.shape) == (n,)
    np.testing.assert_array_equal(np.sort(p.numpy().astype(np.int64)), np.arange(n))


def test_randperm_errors_as_torch():
    torch = pytest.importorskip("torch")
    for n, dtype in [(257, "uint8"), (129, "int8"), (2050, "float16"), (3, "bool"), (-1, "int64")]:
        with pytest.raises((RuntimeError, NotImplementedError)) as want:
            torch.randperm(n, dtype=getattr(torch, dtype))
        with pytest.raises(want.type):
            jitorch.randperm(n, dtype=getattr(jitorch, dtype))
    for n, dtype in [(256, "uint8"), (128, "int8"), (2049, "float16")]:  # the largest n each dtype takes
        assert tuple(torch.randperm(n, dtype=getattr(torch, dtype)).shape) == (n,)
        assert tuple(jitorch.randperm(n, dtype=getattr(jitorch, dtype)).shape) == (n,)


def test_cpu_draws_refuse_a_cuda_generator():
    g = jitorch.Generator(device="cuda")  # a (seed, offset) pair: needs no GPU until it draws
    assert g.device == jitorch.device("cuda", 0)
    for draw in (lambda: jitorch.rand(3, generator=g), lambda: jitorch.randperm(4, generator=g),
                 lambda: jitorch.empty(3).normal_(generator=g), lambda: jitorch.multinomial(jitorch.ones(3), 1,
                                                                                            generator=g)):
        with pytest.raises(RuntimeError, match="Expected a 'cpu' device type for generator but found 'cuda'"):
            draw()


def test_manual_seed_seeds_cuda_generators_without_importing_numba_cuda():
    import subprocess
    import sys
    code = ("import sys, jitorch\n"
            "jitorch.manual_seed(12)\n"
            "from jitorch.ops.random import cuda_default_generator as c\n"
            "assert c(0).initial_seed() == 12 and jitorch.initial_seed() == 12\n"
            "jitorch.cuda.manual_seed(5)\n"
            "assert c(0).initial_seed() == 5 and jitorch.initial_seed() == 12\n"
            "print('numba.cuda' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == "False"

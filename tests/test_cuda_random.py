"""Random numbers on cuda (issue 9): draws run on the device (xoroshiro128+ streams, kernels/cuda/random.py) from
per-device cuda generators seeded as torch's; randperm's device kernel; distributions against independent
references (math's CDFs, an independent xoroshiro128+ written from the reference C code).

Runs on numba's CUDA simulator (tests/conftest.py), so sizes are small.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import jitorch

if not jitorch.cuda.is_available():  # pragma: no cover - conftest enables the simulator
    pytest.skip("cuda is not available (no GPU and NUMBA_ENABLE_CUDASIM is not set)", allow_module_level=True)

import jitorch.nn.functional as F  # noqa: E402
from jitorch import nn  # noqa: E402
from jitorch.kernels.cuda import random as KR  # noqa: E402

CUDA = jitorch.device("cuda")
M64 = (1 << 64) - 1
GOLD = 0x9E3779B97F4A7C15


def host(t):
    assert t.device == CUDA
    return t.cpu().numpy()


# ------------------------------------------------------------------ an independent reference of the scheme

def _splitmix(z):
    z = (z + GOLD) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


def _reference_stream(seed, offset, n, streams):
    """The raw 64-bit outputs of a draw of n numbers, element by element (docs/cuda.md, "Random numbers"):
    xoroshiro128+ (Blackman & Vigna's reference C) per stream, stream s seeded by splitmix64."""
    base = _splitmix((seed ^ ((offset * GOLD) & M64)) & M64)
    ns = max(1, min(n, streams))
    out = [0] * n
    for s in range(ns):
        s0 = _splitmix((base + GOLD * 2 * s) & M64)
        s1 = _splitmix((base + GOLD * (2 * s + 1)) & M64)
        for i in range(s, n, ns):
            out[i] = (s0 + s1) & M64
            s1 ^= s0
            s0 = _rotl(s0, 55) ^ s1 ^ ((s1 << 14) & M64)
            s1 = _rotl(s1, 36)
    return out


@pytest.mark.parametrize("n,streams", [(1, 4), (5, 4), (37, 8), (40, KR.STREAMS)])
def test_device_stream_is_the_documented_xoroshiro_scheme(n, streams):
    from numba import cuda
    raw = _reference_stream(123, 77, n, streams)
    o = cuda.device_array(n, np.float64)
    KR.uniform(o, KR.key(123, 77, n, streams=streams))
    np.testing.assert_array_equal(o.copy_to_host(), [(r >> 11) * 2.0 ** -53 for r in raw])
    o32 = cuda.device_array(n, np.float32)
    KR.uniform(o32, KR.key(123, 77, n, streams=streams), -1.0, 1.0)
    want = np.float32(-1.0) + np.float32(2.0) * np.array([(r >> 40) * 2.0 ** -24 for r in raw], np.float32)
    np.testing.assert_array_equal(o32.copy_to_host(), want)
    oi = cuda.device_array(n, np.int64)
    KR.randint(oi, KR.key(123, 77, n, streams=streams), -5, 6)
    np.testing.assert_array_equal(oi.copy_to_host(), [-5 + (((r >> 32) * 11) >> 32) for r in raw])
    KR.randint(oi, KR.key(123, 77, n, streams=streams), 0, 2 ** 63)  # a range beyond 32 bits: r % span
    np.testing.assert_array_equal(oi.copy_to_host(), [r % 2 ** 63 for r in raw])


def test_numbers_do_not_depend_on_the_launch_size():
    from numba import cuda
    k = KR.key(5, 9, 50, streams=12)
    outs = []
    for grid in [(1, 1), (1, 5), (2, 16), (1, 32)]:
        o = cuda.device_array(50, np.float64)
        KR._uniform_k[grid](o, np.uint64(k.base), np.int64(k.streams), 0.0, 1.0, False)
        outs.append(o.copy_to_host())
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


_DEVICE_BODIES = r"""
import numpy as np, warnings
warnings.simplefilter("ignore")
from jitorch.kernels.cuda import random as KR
assert not KR.SIM
# the uint64 device functions, run as Python on NumPy scalars (what the GPU compiles)
for name in ("_splitmix", "_seed_state", "_next", "_unit64", "_unit32", "_bounded", "_key63"):
    setattr(KR, name, getattr(KR, name).py_func)
out = []
for base, s in [(0, 0), (KR._mix(7, 3), 5), (2**64 - 1, 123456)]:
    s0, s1 = KR._seed_state(np.uint64(base), s)
    for _ in range(4):
        r, s0, s1 = KR._next(s0, s1)
        out.append([int(r), float(KR._unit64(r)), float(KR._unit32(r)),
                    int(KR._bounded(r, np.int64(-7), np.uint64(13))),
                    int(KR._bounded(r, np.int64(-2**63), np.uint64(0))), int(KR._key63(r))])
print(out)
"""


def test_gpu_device_functions_give_the_simulator_numbers():
    """The simulator runs Python-int twins of the uint64 device functions; the GPU bodies (run here as Python on
    NumPy uint64 scalars in a process without the simulator) must give the same integers and floats."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    p = subprocess.run([sys.executable, "-c", _DEVICE_BODIES], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    got = eval(p.stdout.strip().splitlines()[-1])
    want = []
    for base, s in [(0, 0), (KR._mix(7, 3), 5), (2**64 - 1, 123456)]:
        s0, s1 = KR._seed_state(base, s)
        for _ in range(4):
            r, s0, s1 = KR._next(s0, s1)
            want.append([r, KR._unit64(r), float(KR._unit32(r)), KR._bounded(r, -7, 13), KR._bounded(r, -2**63, 0),
                         KR._key63(r)])
    assert got == want


# ------------------------------------------------------------------ the seed scheme (torch's)

def test_cuda_generator_is_separate_from_cpu_and_seeded_as_torch():
    jitorch.manual_seed(11)  # seeds cpu and every cuda generator
    c1, g1 = jitorch.rand(8), jitorch.rand(8, device="cuda")
    assert g1.device == CUDA
    assert not np.allclose(c1.numpy(), host(g1))  # different streams, as torch's cpu and cuda
    jitorch.manual_seed(11)
    np.testing.assert_array_equal(jitorch.rand(8, device="cuda").cpu().numpy(), host(g1))  # order-independent
    np.testing.assert_array_equal(jitorch.rand(8).numpy(), c1.numpy())
    assert jitorch.cuda.initial_seed() == 11 and jitorch.initial_seed() == 11
    # cuda seeding leaves cpu alone, and the other way round
    jitorch.cuda.manual_seed(4)
    assert jitorch.cuda.initial_seed() == 4 and jitorch.initial_seed() == 11
    a = host(jitorch.randn(6, device="cuda"))
    jitorch.cuda.manual_seed_all(4)
    np.testing.assert_array_equal(host(jitorch.randn(6, device="cuda")), a)
    jitorch.manual_seed(11)
    jitorch.cuda.manual_seed(4)
    np.testing.assert_array_equal(jitorch.rand(8).numpy(), c1.numpy())
    # seed(): non-deterministic, reported by initial_seed
    jitorch.cuda.seed()
    s = jitorch.cuda.initial_seed()
    b = host(jitorch.rand(4, device="cuda"))
    jitorch.cuda.manual_seed(s)
    np.testing.assert_array_equal(host(jitorch.rand(4, device="cuda")), b)
    jitorch.cuda.seed_all()
    assert jitorch.cuda.default_generators[0].initial_seed() == jitorch.cuda.initial_seed()
    t = jitorch.seed()  # cpu and cuda get the same fresh seed, as torch.seed
    assert jitorch.initial_seed() == t == jitorch.cuda.initial_seed()
    with pytest.raises(RuntimeError, match="64 bits"):
        jitorch.cuda.manual_seed_all(2 ** 70)


def test_rng_state_roundtrip_and_advance():
    jitorch.manual_seed(3)
    st = jitorch.cuda.get_rng_state()
    assert st.device == jitorch.device("cpu") and st.dtype is jitorch.uint8 and tuple(st.shape) == (16,)
    seed, off = np.asarray(st.numpy()).view(np.uint64)
    assert (int(seed), int(off)) == (3, 0)
    a = host(jitorch.rand(5, device="cuda", dtype=jitorch.float64))
    b = host(jitorch.rand(7, device="cuda", dtype=jitorch.float64))
    assert int(np.asarray(jitorch.cuda.get_rng_state().numpy()).view(np.uint64)[1]) == 12  # advanced by the counts
    assert len(np.unique(np.r_[a, b])) == 12  # no repeats across successive draws
    jitorch.cuda.set_rng_state(st)
    np.testing.assert_array_equal(host(jitorch.rand(5, device="cuda", dtype=jitorch.float64)), a)
    states = jitorch.cuda.get_rng_state_all()
    assert len(states) == jitorch.cuda.device_count()
    c = host(jitorch.rand(3, device="cuda"))
    jitorch.cuda.set_rng_state_all(states)
    np.testing.assert_array_equal(host(jitorch.rand(3, device="cuda")), c)
    assert jitorch.cuda.get_rng_state("cuda:0").numpy().tolist() == jitorch.cuda.get_rng_state(0).numpy().tolist()
    # the cpu state is its own
    cpu_state = jitorch.get_rng_state()
    jitorch.rand(4, device="cuda")
    assert jitorch.get_rng_state().numpy().tolist() == cpu_state.numpy().tolist()


def test_generator_objects_for_cuda_draws():
    g = jitorch.Generator(device="cuda")
    assert g.device == CUDA and g.initial_seed() == 67280421310721  # torch's default seed
    g.manual_seed(21)
    a = host(jitorch.randn(6, device="cuda", generator=g))
    g.manual_seed(21)
    np.testing.assert_array_equal(host(jitorch.randn(6, device="cuda", generator=g)), a)
    x = jitorch.empty(6, device="cuda")
    g.manual_seed(21)
    x.normal_(generator=g)
    np.testing.assert_array_equal(host(x), a)
    g.manual_seed(2)
    p = host(jitorch.randperm(9, device="cuda", generator=g))
    g.manual_seed(2)
    np.testing.assert_array_equal(host(jitorch.randperm(9, device="cuda", generator=g)), p)
    with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator but found 'cpu'"):
        jitorch.rand(3, device="cuda", generator=jitorch.Generator())
    with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator but found 'cpu'"):
        jitorch.empty(3, device="cuda").uniform_(generator=jitorch.Generator())
    with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator but found 'cpu'"):
        jitorch.multinomial(jitorch.ones(3, device="cuda"), 2, generator=jitorch.Generator())
    with pytest.raises(RuntimeError, match="Expected a 'cpu' device type for generator but found 'cuda'"):
        jitorch.rand(3, generator=g)
    with pytest.raises(RuntimeError, match="Expected a 'cpu' device type for generator but found 'cuda'"):
        jitorch.randperm(3, generator=g)


_CHILD = r"""
import jitorch
jitorch.manual_seed(5)
print(jitorch.rand(6, device="cuda", dtype=jitorch.float64).cpu().numpy().tolist(),
      jitorch.randperm(7, device="cuda").cpu().numpy().tolist())
"""


def test_same_seed_same_numbers_in_another_process():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    p = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    jitorch.manual_seed(5)
    want = (host(jitorch.rand(6, device="cuda", dtype=jitorch.float64)).tolist(),
            host(jitorch.randperm(7, device="cuda")).tolist())
    assert p.stdout.strip() == f"{want[0]} {want[1]}"


# ------------------------------------------------------------------ no host draw

def test_cuda_draws_never_touch_the_host_random_source(monkeypatch):
    """Every random API on cuda with the cpu kernels (kernels/random.py) and NumPy's generators made to raise."""
    from jitorch.kernels import random as host_random
    lin = nn.Linear(5, 3).to("cuda")  # initialized on cpu (before the patch), then moved

    def boom(*a, **k):
        raise AssertionError("a cuda draw used the host random source")
    for name in dir(host_random):
        if not name.startswith("__") and callable(getattr(host_random, name)):
            monkeypatch.setattr(host_random, name, boom)
    for name in ("random", "rand", "randn", "randint", "permutation", "default_rng", "normal", "uniform"):
        monkeypatch.setattr(np.random, name, boom)
    with pytest.raises(AssertionError, match="host random source"):
        jitorch.rand(2)  # the patch holds on cpu
    d = "cuda"
    x = jitorch.zeros(4, 5, device=d)
    outs = [jitorch.rand(3, device=d), jitorch.randn(2, 2, device=d, dtype=jitorch.float64),
            jitorch.randint(0, 7, (5,), device=d), jitorch.randint(3, (4,), device=d, dtype=jitorch.int32),
            jitorch.normal(1.0, 2.0, (3,), device=d), jitorch.normal(x, 1.0), jitorch.normal(0.0, x + 1),
            jitorch.rand_like(x), jitorch.randn_like(x), jitorch.randint_like(x, 5),
            jitorch.randperm(6, device=d), jitorch.randperm(40, device=d, dtype=jitorch.int32),
            jitorch.bernoulli(x + 0.5), jitorch.bernoulli(x, 0.3), jitorch.multinomial(x + 1, 2),
            x.clone().uniform_(), x.clone().normal_(), x.clone().random_(0, 9), x.clone().bernoulli_(0.4),
            x.clone().bernoulli_(jitorch.full((5,), 0.5)), x.clone().exponential_(),
            jitorch.zeros(6, dtype=jitorch.int16, device=d).random_(),
            F.dropout(x + 1, 0.5), F.dropout2d(jitorch.ones(2, 3, 2, 2, device=d), 0.5),
            F.alpha_dropout(x + 1, 0.5, training=True), nn.Dropout(0.2)(x + 1)]
    for init in (nn.init.kaiming_uniform_, nn.init.xavier_normal_, nn.init.trunc_normal_, nn.init.orthogonal_,
                 nn.init.uniform_, nn.init.normal_):
        init(lin.weight)
        outs.append(lin.weight.detach())
    nn.init.sparse_(lin.weight, 0.5)
    assert ((lin.weight.detach().cpu().numpy() == 0).sum(0) >= 1).all()
    for o in outs:
        assert o.device == CUDA


# ------------------------------------------------------------------ distributions (independent references)

def _ks(sample, cdf):
    """Kolmogorov-Smirnov distance between a sample and a CDF."""
    x = np.sort(np.asarray(sample, np.float64))
    f = np.array([cdf(v) for v in x])
    n = len(x)
    return max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))


N = 1500
KS_LIMIT = 1.95 / math.sqrt(N)  # the 0.1% critical value: a seeded draw fails it only when the law is wrong


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_continuous_distributions_ks(dtype):
    dt = getattr(jitorch, dtype)
    jitorch.manual_seed(17)
    u = host(jitorch.rand(N, device="cuda", dtype=dt)).astype(np.float64)
    assert u.min() >= 0 and u.max() < 1
    assert _ks(u, lambda v: v) < KS_LIMIT + (2 ** -11 if dtype == "float16" else 0)
    z = host(jitorch.randn(N, device="cuda", dtype=dt)).astype(np.float64)
    assert np.isfinite(z).all()
    assert _ks(z, lambda v: 0.5 * math.erfc(-v / math.sqrt(2))) < KS_LIMIT + (2e-3 if dtype == "float16" else 0)
    nm = host(jitorch.normal(3.0, 0.5, (N,), device="cuda", dtype=dt)).astype(np.float64)
    assert _ks(nm, lambda v: 0.5 * math.erfc(-(v - 3.0) / 0.5 / math.sqrt(2))) < KS_LIMIT + 2e-3
    e = jitorch.empty(N, device="cuda", dtype=dt).exponential_(2.0)
    ev = host(e).astype(np.float64)
    assert ev.min() >= 0 and np.isfinite(ev).all()
    assert _ks(ev, lambda v: 1 - math.exp(-2.0 * v)) < KS_LIMIT + (2e-3 if dtype == "float16" else 0)
    w = host(jitorch.empty(N, device="cuda", dtype=dt).uniform_(-3, 5)).astype(np.float64)
    assert w.min() >= -3 and w.max() < 5 and _ks(w, lambda v: (v + 3) / 8) < KS_LIMIT + 2e-3


def test_integer_and_bernoulli_draws():
    jitorch.manual_seed(23)
    r = host(jitorch.randint(-4, 3, (N,), device="cuda"))
    assert r.dtype == np.int64 and r.min() == -4 and r.max() == 2
    freq = np.bincount(r + 4, minlength=7) / N
    assert np.abs(freq - 1 / 7).max() < 4 * math.sqrt((1 / 7) * (6 / 7) / N)  # 4 sigma
    for dt, lo, hi in [(jitorch.uint8, 0, 256), (jitorch.int8, -128, 128), (jitorch.int32, -2 ** 31, 2 ** 31),
                       (jitorch.float32, 0, 10)]:
        v = host(jitorch.randint(lo, hi, (200,), device="cuda", dtype=dt)).astype(np.float64)
        assert v.min() >= lo and v.max() < hi and len(np.unique(v)) > 8
    big = host(jitorch.zeros(300, dtype=jitorch.int64, device="cuda").random_())  # [0, 2**63)
    assert big.min() >= 0 and big.max() > 2 ** 61 and len(np.unique(big)) == 300
    full = host(jitorch.randint(-2 ** 63, 2 ** 63 - 1, (300,), device="cuda"))
    assert (full < 0).any() and (full > 0).any()
    b = host(jitorch.bernoulli(jitorch.full((N,), 0.3, device="cuda")))
    assert set(np.unique(b)) <= {0.0, 1.0} and abs(b.mean() - 0.3) < 4 * math.sqrt(0.21 / N)
    bools = host(jitorch.zeros(200, dtype=jitorch.bool, device="cuda").random_())
    assert bools.dtype == np.bool_ and 0.3 < bools.mean() < 0.7
    p = jitorch.tensor(np.r_[np.zeros(50), np.ones(50)], device="cuda")
    np.testing.assert_array_equal(host(jitorch.bernoulli(p)), np.r_[np.zeros(50), np.ones(50)])
    m = host(F.dropout(jitorch.ones(N, device="cuda"), 0.25))
    assert set(np.unique(m)) <= {0.0, np.float32(4 / 3)} and abs((m == 0).mean() - 0.25) < 0.05


# ------------------------------------------------------------------ randperm

@pytest.mark.parametrize("n", [0, 1, 2, 5, 32, 33, 100])
def test_randperm_is_a_permutation(n):
    jitorch.manual_seed(n)
    p = jitorch.randperm(n, device="cuda")
    assert p.device == CUDA and p.dtype is jitorch.int64 and tuple(p.shape) == (n,)
    np.testing.assert_array_equal(np.sort(host(p)), np.arange(n))
    if n >= 32:
        assert not np.array_equal(host(p), np.arange(n))  # shuffled
        q = host(jitorch.randperm(n, device="cuda"))  # the state advanced: another permutation
        assert not np.array_equal(q, host(p)) and np.array_equal(np.sort(q), np.arange(n))


@pytest.mark.parametrize("dtype", ["int32", "int16", "uint8", "float32", "float64", "float16"])
def test_randperm_dtypes_on_cuda(dtype):
    dt = getattr(jitorch, dtype)
    p = jitorch.randperm(37, device="cuda", dtype=dt)
    assert p.dtype is dt and p.device == CUDA
    np.testing.assert_array_equal(np.sort(host(p).astype(np.int64)), np.arange(37))


def test_randperm_limits_and_errors_as_torch():
    with pytest.raises(RuntimeError, match="non-negative"):
        jitorch.randperm(-1, device="cuda")
    with pytest.raises(RuntimeError, match="overflow"):
        jitorch.randperm(257, device="cuda", dtype=jitorch.uint8)
    with pytest.raises(RuntimeError, match="2049 for Half"):
        jitorch.randperm(2050, device="cuda", dtype=jitorch.float16)
    with pytest.raises(NotImplementedError, match="Bool"):
        jitorch.randperm(3, device="cuda", dtype=jitorch.bool)
    assert sorted(host(jitorch.randperm(256, device="cuda", dtype=jitorch.uint8)).tolist()) == list(range(256))


def test_randperm_global_sort_path_and_uniformity():
    """Rows longer than the shared-memory cap run the global bitonic network; small n: every order appears."""
    from numba import cuda
    out = cuda.device_array(70, np.int64)
    KR.randperm(out, KR.key(1, 2, 70), cap=8)
    np.testing.assert_array_equal(np.sort(out.copy_to_host()), np.arange(70))
    jitorch.manual_seed(0)
    counts = {}
    for _ in range(60):
        k = tuple(host(jitorch.randperm(3, device="cuda")).tolist())
        counts[k] = counts.get(k, 0) + 1
    assert len(counts) == 6 and max(counts.values()) <= 22, counts  # expected 10 each


# ------------------------------------------------------------------ compiled code draws on the device

def test_compiled_function_draws_fresh_numbers_on_cuda():
    def f(x):
        return x * 2 + jitorch.rand(x.shape, device=x.device)

    cf = jitorch.compile(f)
    x = jitorch.ones(3, 4, device="cuda")
    a, b = cf(x), cf(x)
    assert a.device == CUDA
    av, bv = host(a), host(b)
    assert ((av >= 2) & (av < 3)).all() and not np.array_equal(av, bv)
    jitorch.manual_seed(8)
    c = host(cf(x))
    jitorch.manual_seed(8)
    np.testing.assert_array_equal(host(jitorch.rand(3, 4, device="cuda")) + 2, c)


def test_compiling_undoes_tracings_cuda_draws():
    """Tracing runs the function once; its cuda draws are undone as its cpu ones are, so the first compiled call
    draws what eager code draws after the same seed (cpu: the same check holds)."""
    def g(x):
        return x + jitorch.rand(x.shape, device=x.device) + jitorch.randn(2, 3, device=x.device)

    for dev in ("cpu", "cuda"):
        x = jitorch.zeros(2, 3, device=dev)
        jitorch.manual_seed(3)
        eager = g(x).cpu().numpy()
        jitorch.manual_seed(3)
        compiled = jitorch.compile(g)(x).cpu().numpy()
        np.testing.assert_array_equal(compiled, eager, err_msg=dev)

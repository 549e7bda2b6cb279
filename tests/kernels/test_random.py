"""Tests of the counter-based random kernels (jitorch.kernels.random).

Statistical checks use fixed seeds, so they are deterministic; their bounds are set at several
standard errors (or at or above the 0.1% critical value) so that a correct generator passes with
a wide margin while a wrong distribution, a missing bit or a bias fails.
"""
import math

import numpy as np
import pytest
from numba import njit

import jitorch.kernels.random as R

N = 1_000_000
KS_CRIT = 1.95  # sqrt(n) * D at the 0.1% level of the Kolmogorov distribution is 1.949


def ks_stat(sample, cdf):
    """Kolmogorov-Smirnov statistic sqrt(n) * D of ``sample`` against the exact ``cdf``."""
    x = np.sort(np.asarray(sample, dtype=np.float64))
    n = x.size
    f = cdf(x)
    i = np.arange(1, n + 1)
    d = max(np.max(i / n - f), np.max(f - (i - 1) / n))
    return math.sqrt(n) * d


_erf = np.frompyfunc(math.erf, 1, 1)


def normal_cdf(x):
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def chi2(counts, expected):
    counts = np.asarray(counts, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.sum((counts - expected) ** 2 / expected))


def chi2_bound(df):
    """Comfortably above the 0.1% critical value of chi-square(df) (Wilson-Hilferty + margin)."""
    z = 3.09  # 0.1% one-sided
    crit = df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3
    return 1.3 * crit + 10


# ---------------------------------------------------------------- core generator
def test_philox_known_answers():
    """Random123's kat_vectors for philox4x32_10."""
    u = np.uint64
    cases = [
        ((0, 0, 0, 0, 0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 6, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344, 0xA4093822, 0x299F31D0),
         (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ]
    for args, want in cases:
        got = R.philox4x32_10(*(u(a) for a in args))
        assert tuple(int(g) for g in got) == want


def test_philox_is_plain_python():
    """The core runs uninterpreted by numba too (what numba.cuda needs: no CPU-only feature)."""
    u = np.uint64
    got = R.philox4x32_10.py_func(*(u(a) for a in (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344,
                                                   0xA4093822, 0x299F31D0)))
    assert tuple(int(g) for g in got) == (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)
    with np.errstate(over="ignore"):  # numpy warns on the wrapping multiplies
        assert int(R.mix64.py_func(u(0))) == 0xE220A8397B1DCDAF


def test_stream_layout():
    seed = 0x1234_5678_9ABC_DEF0
    # block b: counter (b lo, b hi, 0, 0), key (seed lo, seed hi)
    assert R.philox_block(0, 0) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    b = (7 << 32) + 5
    got = R.philox4x32_10(*(np.uint64(v) for v in (5, 7, 0, 0, seed & 0xFFFFFFFF, seed >> 32)))
    assert R.philox_block(seed, b) == tuple(int(g) for g in got)
    # outputs are functions of the words at offset + i, at every alignment
    for off in (0, 1, 2, 3, 4, 13, 2**40 + 3):
        words = [R.philox_word(seed, off + i) for i in range(11)]
        out = np.empty(11, np.float32)
        assert R.uniform(seed, off, out) == 11
        np.testing.assert_array_equal(out, np.array([(w >> 8) * 2.0**-24 for w in words], np.float32))
        out64 = np.empty(5, np.uint64)
        assert R.bits64(seed, off, out64) == 10
        want = [(words[2 * i] << 32) | words[2 * i + 1] for i in range(5)]
        assert [int(v) for v in out64] == want


def test_mix64():
    # splitmix64 seeded with 0: first output
    assert int(R.mix64(np.uint64(0))) == 0xE220A8397B1DCDAF
    vals = {int(R.mix64(np.uint64(i))) for i in range(1000)}
    assert len(vals) == 1000


@njit(cache=True)
def _math32(x):
    a = np.empty_like(x)
    s = np.empty_like(x)
    c = np.empty_like(x)
    for i in range(x.size):
        a[i] = R._log_f32(x[i])
        s[i], c[i] = R._sincos_2pi_f32(x[i])
    return a, s, c


@njit(cache=True)
def _math64(x):
    a = np.empty_like(x)
    s = np.empty_like(x)
    c = np.empty_like(x)
    for i in range(x.size):
        a[i] = R._log_f64(x[i])
        s[i], c[i] = R._sincos_2pi_f64(x[i])
    return a, s, c


def test_polynomial_math_accuracy():
    """The vectorizable log / sincos used by normal, exponential and cauchy."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.random(50000), 2.0 ** rng.uniform(-32, 0, 50000), [1.0, 2.0**-32, 0.5, 0.25]])
    x32 = x.astype(np.float32)
    xd = x32.astype(np.float64)
    a, s, c = _math32(x32)
    assert np.max(np.abs(a - np.log(xd))) < 4e-6
    assert np.max(np.abs(a - np.log(xd)) / np.abs(np.minimum(np.log(xd), -1e-30))) < 1e-6
    assert np.max(np.abs(s - np.sin(2 * np.pi * xd))) < 3e-7
    assert np.max(np.abs(c - np.cos(2 * np.pi * xd))) < 3e-7
    x = np.concatenate([x, 2.0 ** rng.uniform(-53, 0, 50000)])
    a, s, c = _math64(x)
    assert np.max(np.abs(a - np.log(x))) < 3e-14
    assert np.max(np.abs(s - np.sin(2 * np.pi * x))) < 3e-15
    assert np.max(np.abs(c - np.cos(2 * np.pi * x))) < 3e-15


# ---------------------------------------------------------------- reproducibility
def _draw(kind, seed, offset, n, dtype=np.float32):
    """Run one kernel; return (output, counters consumed)."""
    if kind == "uniform":
        out = np.empty(n, dtype)
        return out, R.uniform(seed, offset, out, -2.0, 3.0)
    if kind == "normal":
        out = np.empty(n, dtype)
        return out, R.normal(seed, offset, out, 1.0, 2.0)
    if kind == "log_normal":
        out = np.empty(n, dtype)
        return out, R.log_normal(seed, offset, out, 0.0, 0.5)
    if kind == "randint":
        out = np.empty(n, np.int64)
        return out, R.randint(seed, offset, out, -5, 1000)
    if kind == "randint_big":  # rejection-heavy range: t = 2**62
        out = np.empty(n, np.int64)
        return out, R.randint(seed, offset, out, -(2**62), 2**61)
    if kind == "bits64":
        out = np.empty(n, np.uint64)
        return out, R.bits64(seed, offset, out)
    if kind == "bernoulli":
        out = np.empty(n, np.bool_)
        p = np.linspace(0, 1, n, dtype=dtype)
        return out, R.bernoulli(seed, offset, p, out)
    if kind == "bernoulli_scalar":
        out = np.empty(n, np.int32)
        return out, R.bernoulli_scalar(seed, offset, 0.3, out)
    if kind == "dropout":
        out = np.empty(n, dtype)
        return out, R.dropout_mask(seed, offset, 0.25, out)
    if kind == "exponential":
        out = np.empty(n, dtype)
        return out, R.exponential(seed, offset, out, 2.0)
    if kind == "cauchy":
        out = np.empty(n, dtype)
        return out, R.cauchy(seed, offset, out, 1.0, 0.5)
    if kind == "geometric":
        out = np.empty(n, dtype)
        return out, R.geometric(seed, offset, out, 0.3)
    raise AssertionError(kind)


KINDS = [("uniform", np.float32), ("uniform", np.float64), ("normal", np.float32),
         ("normal", np.float64), ("log_normal", np.float32), ("randint", None),
         ("randint_big", None), ("bits64", None), ("bernoulli", np.float32),
         ("bernoulli_scalar", None), ("dropout", np.float32), ("exponential", np.float32),
         ("exponential", np.float64), ("cauchy", np.float32), ("cauchy", np.float64),
         ("geometric", np.float32)]


@pytest.mark.parametrize("kind,dtype", KINDS)
def test_reproducible_and_offsets(kind, dtype):
    a, used = _draw(kind, 42, 5, 257, dtype)
    b, _ = _draw(kind, 42, 5, 257, dtype)
    np.testing.assert_array_equal(a, b)
    c, _ = _draw(kind, 42, 5 + used, 257, dtype)
    d, _ = _draw(kind, 43, 5, 257, dtype)
    if kind in ("bernoulli", "bernoulli_scalar", "dropout", "geometric"):  # few distinct values
        assert np.mean(a != c) > 0.1 and np.mean(a != d) > 0.1
    else:
        assert np.mean(a != c) > 0.9 and np.mean(a != d) > 0.9


@pytest.mark.parametrize("kind,dtype", [k for k in KINDS if k[0] != "bernoulli"])
def test_chunked_draws_equal_one_draw(kind, dtype):
    """Advancing the offset by the counters each call reports makes chunks tile the big draw."""
    pair = kind in ("normal", "log_normal")
    for start in (0, 1, 2, 3, 2**33 + 1):
        whole, used = _draw(kind, 7, start, 1000, dtype)
        rng = np.random.default_rng(start)
        sizes = []
        left = 1000
        while left:
            s = int(min(left, rng.integers(1, 90)))
            if pair and s % 2 and s != left:
                s += 1
            s = min(s, left)
            sizes.append(s)
            left -= s
        parts, off = [], start
        for s in sizes:
            part, u = _draw(kind, 7, off, s, dtype)
            parts.append(part)
            off += u
        assert off - start == used
        np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_counters_consumed():
    assert _draw("uniform", 1, 0, 11, np.float32)[1] == 11
    assert _draw("uniform", 1, 0, 11, np.float64)[1] == 22
    assert _draw("normal", 1, 0, 11, np.float32)[1] == 12
    assert _draw("normal", 1, 0, 11, np.float64)[1] == 24
    assert _draw("randint", 1, 0, 11)[1] == 22
    assert _draw("bernoulli_scalar", 1, 0, 11)[1] == 11
    assert R.randperm(1, 0, 9, np.empty(9, np.int64)) == 18
    p = np.ones((3, 5))
    assert R.multinomial(1, 0, p, 4, True, np.empty((3, 4), np.int64)) == 24
    assert R.multinomial(1, 0, p, 4, False, np.empty((3, 4), np.int64)) == 30


# One kernel of each loop shape (the others share their skeleton, and every parallel variant
# costs seconds to compile): 1 and 2 counters per output, Box-Muller pairs with an odd tail,
# randint's rejection fix-up pass; multinomial below.
@pytest.mark.parametrize("kind,dtype", [("uniform", np.float32), ("normal", np.float32),
                                        ("randint_big", None)])
def test_serial_and_parallel_identical(kind, dtype, monkeypatch):
    n = 3 * R._CHW + 123  # several chunks and a ragged (odd) tail
    monkeypatch.setattr(R, "PARALLEL_THRESHOLD", 1 << 60)
    a, ua = _draw(kind, 99, 3, n, dtype)
    monkeypatch.setattr(R, "PARALLEL_THRESHOLD", 0)
    b, ub = _draw(kind, 99, 3, n, dtype)
    assert ua == ub
    np.testing.assert_array_equal(a, b)


def test_multinomial_serial_and_parallel_identical(monkeypatch):
    probs = np.random.default_rng(0).random((50, 7))
    outs = []
    for thr in (1 << 60, 0):
        monkeypatch.setattr(R, "PARALLEL_THRESHOLD", thr)
        for repl in (True, False):
            out = np.empty((50, 5), np.int64)
            R.multinomial(3, 11, probs, 5, repl, out)
            outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[2])
    np.testing.assert_array_equal(outs[1], outs[3])


# ---------------------------------------------------------------- uniform
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_statistics(dtype):
    u = np.empty(N, dtype)
    R.uniform(2024, 0, u)
    assert u.min() >= 0.0 and u.max() < 1.0
    x = u.astype(np.float64)
    se_mean = math.sqrt(1 / 12 / N)
    assert abs(x.mean() - 0.5) < 5 * se_mean
    se_var = math.sqrt((1 / 80 - 1 / 144) / N)
    assert abs(x.var() - 1 / 12) < 5 * se_var
    assert ks_stat(x, lambda t: t) < KS_CRIT
    # every bit is random: each of the top 24 mantissa bits is set half of the time
    bits = (x * 2.0**24).astype(np.int64)
    for k in range(24):
        assert abs(((bits >> k) & 1).mean() - 0.5) < 5 * 0.5 / math.sqrt(N)


def test_uniform_float32_never_reaches_high():
    out = np.empty(200_000, np.float32)
    for low, high in [(0.0, 1.0), (1.0, 2.0), (-3.0, -1.0), (1e6, 1e6 + 1.0), (-1.0, 1.0)]:
        R.uniform(5, 0, out, low, high)
        assert out.min() >= np.float32(low) and out.max() < np.float32(high), (low, high)
    # a range of one float32 ulp: low + span * u rounds to high for about half of the draws
    hi = np.nextafter(np.float32(1.0), np.float32(2.0))
    R.uniform(5, 0, out, 1.0, float(hi))
    assert np.all(out == np.float32(1.0))
    # the largest word gives the largest value, below high
    for low, high in [(0.0, 1.0), (1.0, 2.0), (-2.0, 1.0)]:
        lo, span, cap = R._scale_args(np.float32, low, high)
        v = R._unif_f32(np.uint32(0xFFFFFFFF), lo, span, cap)
        assert v < np.float32(high)
    assert R._u24(np.uint32(0xFFFFFFFF)) == np.float32(1 - 2.0**-24)
    # degenerate range gives low
    R.uniform(5, 0, out, 2.5, 2.5)
    assert np.all(out == 2.5)


def test_uniform_float64_range():
    out = np.empty(200_000, np.float64)
    R.uniform(6, 0, out, -1.0, 1.0)
    assert out.min() >= -1.0 and out.max() < 1.0
    assert R._u53(np.uint32(0xFFFFFFFF), np.uint32(0xFFFFFFFF)) == 1 - 2.0**-53
    assert R._u53(np.uint32(0), np.uint32(0)) == 0.0


# ---------------------------------------------------------------- normal
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_statistics(dtype):
    z = np.empty(N, dtype)
    R.normal(77, 0, z)
    assert np.all(np.isfinite(z))
    x = z.astype(np.float64)
    assert abs(x.mean()) < 5 / math.sqrt(N)
    assert abs(x.var() - 1.0) < 5 * math.sqrt(2 / N)
    kurt = np.mean(x**4) / x.var() ** 2
    assert abs(kurt - 3.0) < 5 * math.sqrt(24 / N)
    assert ks_stat(x, normal_cdf) < KS_CRIT
    # tails: P(|z| > 3) = 0.0026998, P(|z| > 4) = 6.334e-5
    for t, p in ((3.0, 0.0026998), (4.0, 6.334e-5)):
        cnt = np.sum(np.abs(x) > t)
        assert abs(cnt - N * p) < 5 * math.sqrt(N * p) + 3
    assert np.abs(x).max() < (7.0 if dtype == np.float32 else 9.0)
    # pairs (z0, z1) are uncorrelated
    assert abs(np.mean(x[0::2] * x[1::2])) < 5 / math.sqrt(N / 2)


def test_normal_mean_std_and_odd_sizes():
    z = np.empty(200_001, np.float32)
    assert R.normal(8, 3, z, 3.0, 2.0) == 200_002
    assert abs(z.mean() - 3.0) < 5 * 2 / math.sqrt(z.size)
    assert abs(z.std() - 2.0) < 0.02
    one = np.empty(1, np.float64)
    two = np.empty(2, np.float64)
    R.normal(8, 3, one)
    R.normal(8, 3, two)
    assert one[0] == two[0]


# ---------------------------------------------------------------- randint
def test_randint_range_and_uniformity():
    out = np.empty(N, np.int64)
    R.randint(1, 0, out, -3, 7)
    vals, counts = np.unique(out, return_counts=True)
    assert vals.tolist() == list(range(-3, 7))
    assert chi2(counts, np.full(10, N / 10)) < chi2_bound(9)
    out32 = np.empty(1000, np.int32)
    R.randint(1, 0, out32, 0, 1)
    assert np.all(out32 == 0)
    R.randint(1, 0, out32, 2**31 - 3, 2**31 - 1)
    assert set(out32.tolist()) == {2**31 - 3, 2**31 - 2}


def test_randint_huge_ranges():
    out = np.empty(200_000, np.int64)
    R.randint(2, 0, out, -(2**63), 2**63 - 1)
    x = out.astype(np.float64) / 2.0**63
    assert abs(x.mean()) < 5 * math.sqrt(1 / 3 / x.size)
    assert ks_stat(x, lambda t: (t + 1) / 2) < KS_CRIT
    # r = 3 * 2**61: multiply-high alone maps 3 words to v % 3 in {0, 1} and 2 to v % 3 == 2
    # (frequencies 3/8, 3/8, 2/8); exact rejection makes them 1/3 each
    r = 3 * 2**61
    R.randint(3, 0, out, 0, r)
    assert out.min() >= 0 and out.max() < r
    counts = np.bincount(out % 3, minlength=3)
    assert chi2(counts, np.full(3, out.size / 3)) < chi2_bound(2)
    thirds = np.bincount(out // 2**61, minlength=3)
    assert chi2(thirds, np.full(3, out.size / 3)) < chi2_bound(2)


def test_randint_rejection_is_exact_on_small_words():
    """_lemire accepts exactly the draws whose low word is >= (2**64 - r) % r."""
    k0, k1 = np.uint64(1), np.uint64(2)
    r = np.uint64(3 * 2**61)
    t = ((1 << 64) - int(r)) % int(r)
    for x in (0, 1, 5, 2**62 - 1, 2**62, 2**63, 2**64 - 1):
        hi, lo = R._mulhilo64(np.uint64(x), r)
        assert (int(hi), int(lo)) == divmod(x * int(r), 1 << 64)
        v = int(R._lemire(k0, k1, np.uint64(9), np.uint64(x), r))
        if int(lo) >= t:
            assert v == int(hi)
        assert 0 <= v < int(r)


# ---------------------------------------------------------------- randperm
def test_randperm_is_permutation():
    for n in (0, 1, 2, 3, 10, 1000, 3 * R._CHW + 17):
        out = np.empty(n + 2, np.int64)
        out[n:] = -7
        assert R.randperm(11, n, n, out) == 2 * n
        assert sorted(out[:n].tolist()) == list(range(n))
        assert np.all(out[n:] == -7)
    out32 = np.empty(500, np.int32)
    R.randperm(1, 0, 500, out32)
    assert sorted(out32.tolist()) == list(range(500))


def test_randperm_uniform():
    n, draws = 5, 24_000
    pos = np.zeros((n, n))
    perms = {}
    out = np.empty(n, np.int64)
    off = 0
    for _ in range(draws):
        off += R.randperm(123, off, n, out)
        pos[np.arange(n), out] += 1
        key = tuple(out.tolist())
        perms[key] = perms.get(key, 0) + 1
    assert chi2(pos.ravel(), np.full(n * n, draws / n)) < chi2_bound(16)
    assert len(perms) == 120
    assert chi2(list(perms.values()), np.full(120, draws / 120)) < chi2_bound(119)


# ---------------------------------------------------------------- multinomial
def test_multinomial_with_replacement():
    probs = np.array([[0.1, 0.0, 0.6, 0.3], [2.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 5.0]])
    ns = 200_000
    out = np.empty((3, ns), np.int64)
    assert R.multinomial(4, 0, probs, ns, True, out) == 2 * 3 * ns
    for row, o in zip(probs, out):
        counts = np.bincount(o, minlength=4)
        assert np.all(counts[row == 0] == 0)
        pos = row > 0
        expected = ns * row[pos] / row.sum()
        assert chi2(counts[pos], expected) < chi2_bound(max(int(pos.sum()) - 1, 1))


def test_multinomial_without_replacement():
    p = np.array([0.5, 0.2, 0.0, 0.3])
    rows = 40_000
    probs = np.tile(p, (rows, 1))
    out = np.empty((rows, 3), np.int64)
    assert R.multinomial(5, 0, probs, 3, False, out) == 2 * rows * 4
    # never repeats, never a zero-probability category
    assert np.all(out != 2)
    assert np.all((out[:, 0] != out[:, 1]) & (out[:, 0] != out[:, 2]) & (out[:, 1] != out[:, 2]))
    # first draw ~ p; second draw: P(j) = sum_i p_i p_j / (1 - p_i)
    c1 = np.bincount(out[:, 0], minlength=4)[[0, 1, 3]]
    assert chi2(c1, rows * p[[0, 1, 3]]) < chi2_bound(2)
    second = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(4) if i != j) for j in range(4)])
    c2 = np.bincount(out[:, 1], minlength=4)[[0, 1, 3]]
    assert chi2(c2, rows * second[[0, 1, 3]]) < chi2_bound(2)


def test_multinomial_without_replacement_prefix_property():
    """Without replacement the counters do not depend on num_samples: fewer samples are a prefix."""
    probs = np.random.default_rng(1).random((20, 100))
    probs[:, ::7] = 0.0
    small = np.empty((20, 3), np.int64)
    large = np.empty((20, 40), np.int64)
    R.multinomial(6, 9, probs, 3, False, small)
    R.multinomial(6, 9, probs, 40, False, large)
    np.testing.assert_array_equal(small, large[:, :3])
    assert np.all(probs[np.arange(20)[:, None], large] > 0)
    full = np.empty((20, 100 - 15), np.int64)
    R.multinomial(6, 9, probs, 100 - 15, False, full)
    for row in full:
        assert len(set(row.tolist())) == row.size


# ---------------------------------------------------------------- bernoulli / dropout
def test_bernoulli():
    out = np.empty(N, np.bool_)
    R.bernoulli_scalar(9, 0, 0.3, out)
    assert abs(out.mean() - 0.3) < 5 * math.sqrt(0.21 / N)
    p = np.full(N, 0.3, np.float64)
    arr = np.empty(N, np.float32)
    R.bernoulli(9, 0, p, arr)
    np.testing.assert_array_equal(arr, out.astype(np.float32))
    # varying probabilities: the count matches sum(p)
    p = np.random.default_rng(2).random(N).astype(np.float32)
    R.bernoulli(10, 0, p, out)
    var = float(np.sum(p.astype(np.float64) * (1 - p)))
    assert abs(out.sum() - p.sum(dtype=np.float64)) < 5 * math.sqrt(var)
    # and each element follows its own p: high-p elements are set more often
    assert out[p > 0.9].mean() > 0.9 and out[p < 0.1].mean() < 0.1
    small = np.empty(1000, np.int64)
    R.bernoulli_scalar(1, 0, 0.0, small)
    assert np.all(small == 0)
    R.bernoulli_scalar(1, 0, 1.0, small)
    assert np.all(small == 1)
    R.bernoulli(1, 0, 0.25, small)  # scalar p through bernoulli
    assert 150 < small.sum() < 350


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask(dtype):
    p = 0.2
    out = np.empty(N, dtype)
    assert R.dropout_mask(12, 5, p, out) == N
    zero = out == 0
    assert abs(zero.mean() - p) < 5 * math.sqrt(p * (1 - p) / N)
    assert np.all(out[~zero] == dtype(1 / (1 - p)))
    assert abs(out.astype(np.float64).mean() - 1.0) < 0.01
    mask = np.empty(N, np.bool_)
    R.bernoulli_scalar(12, 5, p, mask)
    np.testing.assert_array_equal(zero, mask)
    small = np.empty(100, dtype)
    R.dropout_mask(1, 0, 0.0, small)
    assert np.all(small == 1)
    R.dropout_mask(1, 0, 1.0, small)
    assert np.all(small == 0)


# ---------------------------------------------------------------- other distributions
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exponential(dtype):
    lam = 2.0
    out = np.empty(N // 4, dtype)
    R.exponential(13, 0, out, lam)
    x = out.astype(np.float64)
    assert x.min() >= 0 and np.all(np.isfinite(x))
    assert abs(x.mean() - 1 / lam) < 5 / lam / math.sqrt(x.size)
    assert ks_stat(x, lambda t: 1 - np.exp(-lam * t)) < KS_CRIT


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cauchy(dtype):
    out = np.empty(N // 4, dtype)
    R.cauchy(14, 0, out, 1.0, 0.5)
    x = out.astype(np.float64)
    assert np.all(np.isfinite(x))
    assert ks_stat(x, lambda t: 0.5 + np.arctan((t - 1.0) / 0.5) / np.pi) < KS_CRIT


def test_geometric_and_log_normal():
    p = 0.3
    out = np.empty(N // 4, np.int64)
    R.geometric(15, 0, out, p)
    assert out.min() == 1
    n = out.size
    assert abs(out.mean() - 1 / p) < 5 * math.sqrt((1 - p) / p**2 / n)
    counts = np.bincount(out, minlength=8)[1:6]
    expected = n * p * (1 - p) ** np.arange(5)
    assert chi2(counts, expected) < chi2_bound(4)
    ones = np.empty(100, np.float32)
    R.geometric(15, 0, ones, 1.0)
    assert np.all(ones == 1)
    ln = np.empty(N // 4, np.float32)
    R.log_normal(16, 0, ln, 0.5, 0.25)
    assert ln.min() > 0
    lx = np.log(ln.astype(np.float64))
    assert ks_stat((lx - 0.5) / 0.25, normal_cdf) < KS_CRIT


@pytest.mark.parametrize("kind,dtype", KINDS)
def test_empty_and_tiny_draws(kind, dtype):
    out, used = _draw(kind, 1, 3, 0, dtype)
    assert out.size == 0 and used == 0
    for n in (1, 2, 3, 5):
        whole, _ = _draw(kind, 1, 3, 8, dtype)
        part, _ = _draw(kind, 1, 3, n, dtype)
        if kind == "bernoulli":  # p depends on n
            continue
        if kind in ("normal", "log_normal") and n % 2:
            np.testing.assert_array_equal(part[:-1], whole[:n - 1])
            assert part[-1] == whole[n - 1]  # an odd tail keeps the pair's first value
        else:
            np.testing.assert_array_equal(part, whole[:n])


def test_bad_arguments():
    with pytest.raises(ValueError):
        R.uniform(0, 0, np.empty((2, 2), np.float32))
    with pytest.raises(ValueError):
        R.uniform(0, 0, np.empty(10, np.float32)[::2])
    with pytest.raises(TypeError):
        R.uniform(0, 0, np.empty(4, np.int32))
    with pytest.raises(ValueError):
        R.randint(0, 0, np.empty(4, np.int64), 3, 3)
    with pytest.raises(ValueError):
        R.randperm(0, 0, 5, np.empty(4, np.int64))

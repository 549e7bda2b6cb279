"""3-d max/average pooling (separable into the 2-d and 1-d pooling ops): a direct NumPy loop
reference over many window/stride/padding/dilation/ceil_mode cases incl. ties, torch's values,
indices and gradients when torch is installed, finite differences, modules and errors."""
import itertools

import numpy as np
import pytest

import jitorch
import jitorch.nn.functional as F

try:
    import torch
except ImportError:  # optional reference
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed (optional reference)")


def _out_size(n, k, s, p, d, ceil_mode):
    span = n + 2 * p - d * (k - 1) - 1
    o = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _windows(x, k, s, p, d, ceil_mode):
    """Yield (output index, list of (flat input index, value)) for each window of a (D, H, W) array."""
    shp = x.shape
    outs = [_out_size(n, *a, ceil_mode) for n, *a in zip(shp, k, s, p, d)]
    for o in itertools.product(*(range(n) for n in outs)):
        taps = []
        for t in itertools.product(*(range(ki) for ki in k)):
            pos = [oi * si - pi + ti * di for oi, si, pi, ti, di in zip(o, s, p, t, d)]
            if all(0 <= q < n for q, n in zip(pos, shp)):
                taps.append((int(np.ravel_multi_index(pos, shp)), x[tuple(pos)]))
        yield o, taps, outs


def _ref_max(x, k, s, p, d, ceil_mode):
    """Loop reference: the first maximum in (d, h, w) order, NaN wins (torch's rule)."""
    n, c = x.shape[:2]
    outs = [_out_size(m, *a, ceil_mode) for m, *a in zip(x.shape[2:], k, s, p, d)]
    val = np.empty((n, c, *outs), x.dtype)
    idx = np.empty((n, c, *outs), np.int64)
    for b, ch in itertools.product(range(n), range(c)):
        for o, taps, _ in _windows(x[b, ch], k, s, p, d, ceil_mode):
            best_i, best_v = taps[0]
            for i, v in taps[1:]:
                if v > best_v or (np.isnan(v) and not np.isnan(best_v)):
                    best_i, best_v = i, v
            val[(b, ch) + o], idx[(b, ch) + o] = best_v, best_i
    return val, idx


def _ref_avg(x, k, s, p, ceil_mode, count_include_pad, divisor_override):
    n, c = x.shape[:2]
    shp = x.shape[2:]
    outs = [_out_size(m, ki, si, pi, 1, ceil_mode) for m, ki, si, pi in zip(shp, k, s, p)]
    out = np.empty((n, c, *outs), x.dtype)
    for b, ch in itertools.product(range(n), range(c)):
        for o, taps, _ in _windows(x[b, ch], k, s, p, (1, 1, 1), ceil_mode):
            total = sum(v for _, v in taps)
            if divisor_override is not None:
                div = divisor_override
            elif count_include_pad:  # the window clipped to input + padding (torch's pool_size)
                div = 1
                for oi, si, pi, ki, m in zip(o, s, p, k, shp):
                    start = oi * si - pi
                    div *= min(start + ki, m + pi) - start
            else:
                div = len(taps)
            out[(b, ch) + o] = total / div
    return out


CASES = [((2, 2, 2), None, (0, 0, 0), (1, 1, 1), False), ((3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), False),
         ((3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), True), ((1, 2, 3), (2, 1, 3), (0, 1, 1), (1, 1, 1), True),
         ((2, 2, 2), (1, 1, 1), (0, 0, 0), (2, 1, 2), False), ((3, 2, 2), (3, 2, 1), (1, 0, 1), (1, 2, 1), True)]


@pytest.mark.parametrize("k,s,p,d,ceil_mode", CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool3d_matches_loop_reference(k, s, p, d, ceil_mode, ties):
    rng = np.random.default_rng(sum(k) + 7 * ties)
    x = rng.standard_normal((2, 2, 5, 6, 7))
    if ties:
        x = np.round(x)  # many equal maxima: the first in (d, h, w) order must win
    y, idx = F.max_pool3d(jitorch.tensor(x), k, s, p, d, ceil_mode, return_indices=True)
    want_y, want_idx = _ref_max(x, k, s if s is not None else k, p, d, ceil_mode)
    np.testing.assert_array_equal(y.numpy(), want_y)
    np.testing.assert_array_equal(idx.numpy(), want_idx)


def test_max_pool3d_propagates_nan_and_handles_unbatched():
    x = np.random.default_rng(0).standard_normal((3, 4, 4, 4)).astype(np.float32)
    x[1, 2, 1, 3] = np.nan
    y = F.max_pool3d(jitorch.tensor(x), 2)
    want, _ = _ref_max(x[None], (2, 2, 2), (2, 2, 2), (0, 0, 0), (1, 1, 1), False)
    assert y.shape == (3, 2, 2, 2)
    np.testing.assert_array_equal(y.numpy(), want[0])
    assert np.isnan(y.numpy()[1, 1, 0, 1])


@pytest.mark.parametrize("k,s,p,ceil_mode", [((2, 2, 2), None, (0, 0, 0), False), ((3, 3, 3), (2, 2, 2), (1, 1, 1), True),
                                             ((1, 2, 3), (2, 1, 2), (0, 1, 1), True)])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("divisor_override", [None, 5])
def test_avg_pool3d_matches_loop_reference(k, s, p, ceil_mode, count_include_pad, divisor_override):
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 6, 7))
    y = F.avg_pool3d(jitorch.tensor(x), k, s, p, ceil_mode, count_include_pad, divisor_override)
    want = _ref_avg(x, k, s if s is not None else k, p, ceil_mode, count_include_pad, divisor_override)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fn", ["max", "avg"])
def test_gradients_match_finite_differences(fn):
    # distinct values (no ties) so max pooling is differentiable at the point
    x = jitorch.tensor(np.random.default_rng(2).permutation(2 * 4 * 4 * 5).reshape(1, 2, 4, 4, 5) / 10.0,
                       requires_grad=True)
    if fn == "max":
        f = lambda t: F.max_pool3d(t, (2, 2, 3), stride=(1, 2, 2), padding=(1, 0, 1))  # noqa: E731
    else:
        f = lambda t: F.avg_pool3d(t, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)  # noqa: E731
    assert jitorch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-6)


@needs_torch
@pytest.mark.parametrize("k,s,p,d,ceil_mode", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_max_pool3d_values_indices_gradients_match_torch(k, s, p, d, ceil_mode, dtype):
    rng = np.random.default_rng(3)
    x = np.round(rng.standard_normal((2, 3, 5, 6, 7)) * 2).astype(dtype)  # ties included
    out = []
    for lib in (jitorch, torch):
        t = lib.tensor(x, requires_grad=True)
        y, i = lib.nn.functional.max_pool3d(t, k, s, p, d, ceil_mode, True)
        w = lib.tensor(np.linspace(-1, 1, y.numel()).reshape(tuple(y.shape)).astype(dtype))
        (y * w).sum().backward()
        out.append((y.detach().numpy(), i.numpy(), t.grad.numpy()))
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@needs_torch
@pytest.mark.parametrize("module", ["MaxPool3d", "AvgPool3d"])
def test_modules_match_torch(module):
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 5, 4)).astype(np.float32)
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    got = getattr(jitorch.nn, module)(**kw)(jitorch.tensor(x)).numpy()
    want = getattr(torch.nn, module)(**kw)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert repr(getattr(jitorch.nn, module)(**kw)) == repr(getattr(torch.nn, module)(**kw))


@pytest.mark.parametrize("call,match", [
    (lambda: F.max_pool3d(jitorch.zeros(2, 4, 4), 2), "4D or 5D"),
    (lambda: F.max_pool3d(jitorch.zeros(1, 1, 4, 4, 4), 3, padding=2), "at most half"),
    (lambda: F.max_pool3d(jitorch.zeros(1, 1, 2, 4, 4), 3), "too small"),
    (lambda: F.max_pool3d(jitorch.zeros(1, 1, 4, 4, 4), 2, stride=0), "stride"),
    (lambda: F.max_pool3d(jitorch.zeros(1, 1, 0, 4, 4), 2), "positive length"),
    (lambda: F.avg_pool3d(jitorch.zeros(1, 1, 4, 4, 4), 2, divisor_override=0), "divisor"),
])
def test_errors(call, match):
    with pytest.raises(RuntimeError, match=match):
        call()

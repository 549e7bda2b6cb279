"""kernels/small.py (tiny matrix products) and the matmul path that uses it, against NumPy."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import jitorch
from jitorch.kernels.small import MAX_FLOPS, mm_small

DTYPES = [np.float32, np.float64, np.int64, np.int32, np.int16, np.int8, np.uint8]


@given(m=st.integers(1, 8), k=st.integers(1, 8), n=st.integers(1, 8), dt=st.sampled_from(DTYPES),
       ta=st.booleans(), tb=st.booleans(), seed=st.integers(0, 2**16))
def test_mm_small_matches_numpy(m, k, n, dt, ta, tb, seed):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((k, m) if ta else (m, k)) * 20).astype(dt)
    b = (rng.standard_normal((n, k) if tb else (k, n)) * 20).astype(dt)
    a, b = (a.T if ta else a), (b.T if tb else b)  # strided views
    out = np.full((m, n), 99, dt)
    mm_small(a, b, out)
    ref = np.matmul(a, b)
    if np.issubdtype(dt, np.floating):
        np.testing.assert_allclose(out, ref, rtol=1e-5 if dt == np.float32 else 1e-12, atol=1e-3)
    else:
        np.testing.assert_array_equal(out, ref)  # integer products wrap as NumPy's do


@pytest.mark.parametrize("shape_a,shape_b", [((1, 1), (1, 1)), ((3, 4), (4, 2)), ((8, 8), (8, 8)),
                                              ((2, 0), (0, 3)), ((5,), (5,)), ((2, 3, 4), (4, 2)),
                                              ((16, 16), (16, 16))])
@pytest.mark.parametrize("dtype", [jitorch.float32, jitorch.float64, jitorch.float16, jitorch.int64])
def test_matmul_small_and_large_paths(shape_a, shape_b, dtype):
    a = jitorch.randn(*shape_a).mul(4).to(dtype)
    b = jitorch.randn(*shape_b).mul(4).to(dtype)
    got = (a @ b).numpy()
    ref = np.matmul(a.numpy().astype(np.float64), b.numpy().astype(np.float64))
    tol = {jitorch.float16: 2e-2, jitorch.float32: 1e-5}.get(dtype, 1e-12)
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=tol, atol=tol * 10)


def test_threshold_is_a_few_hundred_multiply_adds():
    assert 2 * 1 * 1 * 1 <= MAX_FLOPS < 2 * 16 * 16 * 16

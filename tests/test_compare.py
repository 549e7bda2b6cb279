"""torch.isclose / allclose / equal against NumPy's and torch's definitions."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import jitorch

SPECIAL = [0.0, -0.0, 1.0, -1.0, 1e-9, 1.00001, 1.0001, np.inf, -np.inf, np.nan, 3e38, 1e-30]


@given(a=st.lists(st.sampled_from(SPECIAL), min_size=1, max_size=12), seed=st.integers(0, 1000),
       rtol=st.sampled_from([0.0, 1e-5, 1e-3]), atol=st.sampled_from([0.0, 1e-8, 1e-2]),
       equal_nan=st.booleans(), dt=st.sampled_from([np.float32, np.float64]))
def test_isclose_matches_numpy(a, seed, rtol, atol, equal_nan, dt):
    x = np.array(a, dt)
    y = np.random.default_rng(seed).permutation(x)
    got = jitorch.isclose(jitorch.from_numpy(x), jitorch.from_numpy(y), rtol=rtol, atol=atol, equal_nan=equal_nan)
    ref = np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)
    assert got.dtype == jitorch.bool and np.array_equal(got.numpy(), ref)
    assert jitorch.allclose(jitorch.from_numpy(x), jitorch.from_numpy(y), rtol, atol, equal_nan) == \
        bool(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan))


def test_broadcast_ints_bools_methods_and_errors():
    a = jitorch.tensor([[1, 2, 3]])
    b = jitorch.tensor([[1], [3]])
    assert jitorch.isclose(a, b).tolist() == [[True, False, False], [False, False, True]]
    assert jitorch.isclose(a, a + 1, atol=1).all().item()
    t = jitorch.tensor([True, False])
    assert jitorch.isclose(t, t).all().item() and not jitorch.allclose(t, ~t)
    x = jitorch.randn(4, 5)
    assert x.allclose(x + 1e-9) and x.isclose(x).all().item() and x.equal(x.clone())
    assert not jitorch.equal(x, x[:3]) and not jitorch.equal(x, x + 1)
    with pytest.raises(RuntimeError, match="same dtype"):
        jitorch.isclose(x, x.double())
    with pytest.raises(RuntimeError, match="non-negative"):
        jitorch.allclose(x, x, rtol=-1)
    with pytest.raises(TypeError, match="must be Tensors"):
        jitorch.equal(x, 1.0)


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    x = np.array([1.0, np.inf, -np.inf, np.nan, 2.0, 1e-9], np.float32)
    y = np.array([1.0 + 1e-6, np.inf, np.inf, np.nan, 2.1, 0.0], np.float32)
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.1, "atol": 0.0}):
        ref = torch.isclose(torch.from_numpy(x), torch.from_numpy(y), **kw).numpy()
        got = jitorch.isclose(jitorch.from_numpy(x), jitorch.from_numpy(y), **kw).numpy()
        assert np.array_equal(got, ref), kw

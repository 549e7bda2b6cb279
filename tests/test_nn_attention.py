"""nn.attention.sdpa_kernel / SDPBackend: the math backend runs (same values inside and outside the
block); a backend list without MATH makes attention raise torch's error; blocks nest and restore."""
import numpy as np
import pytest

import jitorch
import jitorch.nn.functional as F
from jitorch.nn.attention import SDPBackend, sdpa_kernel


def _qkv():
    rng = np.random.default_rng(0)
    return [jitorch.tensor(rng.standard_normal((2, 3, 5, 4)).astype(np.float32)) for _ in range(3)]


def _reference(q, k, v):
    q, k, v = (t.numpy().astype(np.float64) for t in (q, k, v))
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


@pytest.mark.parametrize("backends", [SDPBackend.MATH, [SDPBackend.FLASH_ATTENTION, SDPBackend.MATH],
                                      list(SDPBackend)[1:]])
def test_math_backend_runs_inside_the_block(backends):
    q, k, v = _qkv()
    with sdpa_kernel(backends):
        got = F.scaled_dot_product_attention(q, k, v).numpy()
    np.testing.assert_allclose(got, _reference(q, k, v), rtol=1e-5, atol=1e-6)


def test_excluding_math_raises_and_the_block_restores():
    q, k, v = _qkv()
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        with pytest.raises(RuntimeError, match="No available kernel"):
            F.scaled_dot_product_attention(q, k, v)
        with sdpa_kernel(SDPBackend.MATH):  # nested: the inner list rules
            F.scaled_dot_product_attention(q, k, v)
        with pytest.raises(RuntimeError, match="No available kernel"):
            F.scaled_dot_product_attention(q, k, v)
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v).numpy(), _reference(q, k, v),
                               rtol=1e-5, atol=1e-6)


def test_bad_backend_type():
    with pytest.raises(AssertionError, match="SDPBackend"):
        with sdpa_kernel(["math"]):
            pass


def test_torch_names():
    assert jitorch.nn.attention.SDPBackend.EFFICIENT_ATTENTION.name == "EFFICIENT_ATTENTION"
    try:
        import torch
    except ImportError:
        pytest.skip("torch not installed (optional reference)")
    theirs = torch.nn.attention.SDPBackend
    assert {b.name: int(b) for b in SDPBackend} == {n: int(getattr(theirs, n)) for n in dir(theirs) if n.isupper()}

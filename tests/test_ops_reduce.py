"""Reductions, scans and softmax of the op table against their NumPy references, over dtypes,
shapes, dim sets (incl. negative and non-adjacent), keepdim and non-contiguous inputs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import jitorch
from jitorch import _dtype as D
from jitorch.ops import registry

from .optable import as_layout, assert_close, random_array

SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4), (2, 1, 3, 2)]
REDUCTIONS = ["sum", "prod", "amax", "amin", "any", "all", "count_nonzero", "var", "logsumexp", "norm"]
FLOAT_ONLY = {"var", "norm"}


def dtypes_for(name):
    if name in FLOAT_ONLY:
        return [D.float32, D.float64, D.float16]
    if name == "logsumexp":
        return [D.float32, D.float64, D.int64]
    return [D.float32, D.float64, D.float16, D.int64, D.int32, D.int8, D.uint8, D.bool_]


CASES = [(n, d) for n in REDUCTIONS for d in dtypes_for(n)]


@st.composite
def dims_for(draw, ndim):
    if ndim == 0:
        return None
    kind = draw(st.sampled_from(["none", "one", "many"]))
    if kind == "none":
        return None
    if kind == "one":
        return draw(st.integers(-ndim, ndim - 1))
    k = draw(st.integers(1, ndim))
    dims = draw(st.permutations(list(range(ndim))))[:k]
    return tuple(d - ndim if draw(st.booleans()) else d for d in dims)


def torch_fn(name, x, dim, keepdim):
    if name == "sum":
        return jitorch.sum(x, dim, keepdim)
    if name == "prod":
        if isinstance(dim, tuple) or dim is None:
            return jitorch._dispatch.call("prod", x, dim=jitorch.ops.rules.normalize_dims("prod", dim, x.ndim),
                                          keepdim=keepdim)
        return jitorch.prod(x, dim, keepdim)
    if name in ("amax", "amin"):
        return getattr(jitorch, name)(x, () if dim is None else dim, keepdim)
    if name in ("any", "all"):
        return getattr(jitorch, name)(x, dim, keepdim)
    if name == "count_nonzero":
        return jitorch.count_nonzero(x, dim)
    if name == "var":
        return jitorch.var(x, dim, keepdim=keepdim)
    if name == "logsumexp":
        return jitorch.logsumexp(x, () if dim is None else dim, keepdim)
    if name == "norm":
        return jitorch.norm(x, 2, dim, keepdim)
    raise AssertionError(name)


@pytest.mark.parametrize("name,dtype", CASES, ids=[f"{n}-{d.name}" for n, d in CASES])
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_reduction_matches_numpy(name, dtype, data):
    shape = data.draw(st.sampled_from(SHAPES), label="shape")
    dim = data.draw(dims_for(len(shape)), label="dim")
    keepdim = data.draw(st.booleans(), label="keepdim") if name != "count_nonzero" else False
    layout = data.draw(st.sampled_from(["contiguous", "transposed", "strided"]), label="layout")
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31 - 1), label="seed"))
    arr = random_array(rng, shape, dtype, low=-1.0, high=1.0)
    x = as_layout(arr, layout if arr.ndim else "contiguous")
    got = torch_fn(name, x, dim, keepdim)
    op = registry.get(name)
    dims = jitorch.ops.rules.normalize_dims(name, dim, arr.ndim)
    ref_in = arr.astype(np.float32) if dtype is D.float16 else arr
    kw = {"keepdim": keepdim} if name != "count_nonzero" else {}
    want = op.reference(ref_in, dims, **kw)
    assert got.dtype is op.dtype_rule(x, dim=dims)
    rtol = {D.float16: 5e-3, D.float32: 1e-5, D.float64: 1e-10}.get(got.dtype)
    assert_close(got, np.asarray(want).astype(got.dtype.np), got.dtype, rtol=rtol, atol=rtol,
                 what=f"{name} {dtype.name} {shape} dim={dim} keepdim={keepdim} {layout}")


@pytest.mark.parametrize("dtype", [D.float32, D.float64, D.int64, D.int8, D.bool_, D.float16])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_with_indices(op, dtype):
    rng = np.random.default_rng(1)
    a = random_array(rng, (4, 6, 5), dtype, low=-0.3, high=0.3)  # small ints: many ties
    x = jitorch.from_numpy(a)
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            v, i = getattr(jitorch, op)(x, dim, keepdim)
            ref = a.astype(np.float32) if dtype is D.float16 else a
            rv, ri = registry.get(op + "_dim").reference(ref, (dim % 3,), keepdim)
            np.testing.assert_array_equal(i.numpy(), ri)
            np.testing.assert_array_equal(v.numpy().astype(np.float64), rv.astype(np.float64))
    # first index wins ties and NaN counts as the maximum, as in torch
    if dtype.is_floating_point:
        t = jitorch.tensor([[1.0, 3.0, 3.0, float("nan"), 0.0]], dtype=dtype)
        assert jitorch.max(t, 1).indices.tolist() == [3]
        assert jitorch.argmax(jitorch.tensor([1.0, 3.0, 3.0])).item() == 1


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "softmax", "log_softmax", "logcumsumexp"])
@pytest.mark.parametrize("dtype", [D.float32, D.float64, D.int64, D.float16])
def test_scans_and_softmax(name, dtype):
    if dtype is D.int64 and name in ("softmax", "log_softmax", "logcumsumexp"):
        with pytest.raises(RuntimeError):
            getattr(jitorch, name)(jitorch.ones(3, dtype=dtype), 0)
        return
    rng = np.random.default_rng(2)
    for shape in [(5,), (3, 4), (2, 3, 4)]:
        a = random_array(rng, shape, dtype, low=-0.3 if dtype.category == 1 else -1, high=0.3 if dtype.category == 1 else 1)
        for dim in range(-len(shape), len(shape)):
            for layout in ("contiguous", "transposed"):
                x = as_layout(a, layout)
                got = getattr(jitorch, name)(x, dim)
                ref_in = a.astype(np.float32) if dtype is D.float16 else a
                want = registry.get(name).reference(ref_in, dim % len(shape))
                tol = {D.float16: 5e-3, D.float32: 2e-5, D.float64: 1e-10, D.int64: 0}[dtype]
                assert_close(got, np.asarray(want).astype(got.dtype.np), got.dtype, rtol=tol, atol=tol,
                             what=f"{name} {shape} dim={dim} {layout}")


def test_mean_std_var_conventions():
    a = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float64)
    x = jitorch.from_numpy(a)
    np.testing.assert_allclose(x.mean().item(), a.mean())
    np.testing.assert_allclose(x.mean((0, 1), keepdim=True).numpy(), a.mean(axis=(0, 1), keepdims=True))
    np.testing.assert_allclose(x.std(1).numpy(), a.std(axis=1, ddof=1))
    np.testing.assert_allclose(x.var(0, unbiased=False).numpy(), a.var(axis=0))
    np.testing.assert_allclose(x.var(0, correction=2).numpy(), a.var(axis=0, ddof=2))
    np.testing.assert_allclose(jitorch.var(x, True).item(), a.var(ddof=1))
    with pytest.raises(RuntimeError, match="mean"):
        jitorch.arange(4).mean()
    assert jitorch.arange(4).mean(dtype=jitorch.float64).item() == 1.5


def test_reduction_errors():
    x = jitorch.zeros(2, 0)
    with pytest.raises(IndexError, match="non-zero size"):
        x.amax(1)
    with pytest.raises(RuntimeError):
        x.max()
    with pytest.raises(IndexError, match="Dimension out of range"):
        jitorch.ones(2, 3).sum(2)
    with pytest.raises(RuntimeError, match="multiple times"):
        jitorch.ones(2, 3).sum((0, 0))
    assert x.sum(1).tolist() == [0.0, 0.0]
    assert jitorch.zeros(0).sum().item() == 0.0
    assert jitorch.zeros(0).prod().item() == 1.0


def test_large_sums_are_accurate_and_parallel():
    rng = np.random.default_rng(4)
    a = rng.random((2048, 1024)).astype(np.float32)
    x = jitorch.from_numpy(a)
    ref = a.astype(np.float64)
    np.testing.assert_allclose(x.sum().item(), ref.sum(), rtol=1e-6)
    np.testing.assert_allclose(x.sum(0).numpy(), ref.sum(0), rtol=1e-5)
    np.testing.assert_allclose(x.sum(1).numpy(), ref.sum(1), rtol=1e-5)
    np.testing.assert_allclose(x.softmax(1).numpy().sum(1), np.ones(2048), rtol=1e-5)

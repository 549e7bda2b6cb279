"""Every elementwise op of the table against its NumPy reference: all accepted dtypes, many shapes,
broadcasting and non-contiguous operands (hypothesis picks the combinations)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import jitorch
from jitorch import _dtype as D
from jitorch._dispatch import call
from jitorch.ops import registry
from jitorch.ops.elementwise import FAMILY, SPECS

from .optable import BROADCAST_PAIRS, SHAPES, as_layout, assert_close, random_array

ALL = list(D.ALL_DTYPES)
FLOATS = list(D.FLOAT_DTYPES)
INTS_BOOL = [d for d in ALL if d.category < 2]

# value domains where the reference is well defined and comparable
DOMAIN = {
    "log": dict(positive=True), "log2": dict(positive=True), "log10": dict(positive=True),
    "sqrt": dict(positive=True), "rsqrt": dict(positive=True), "log1p": dict(positive=True),
    "lgamma": dict(positive=True), "acosh": dict(positive=True, shift=1.0),
    "asin": dict(low=-0.95, high=0.95), "acos": dict(low=-0.95, high=0.95), "atanh": dict(low=-0.95, high=0.95),
    "erfinv": dict(low=-0.95, high=0.95), "tan": dict(low=-1.2, high=1.2), "reciprocal": dict(nonzero=True),
    "xlogy": dict(positive_arg1=True),
}
NONZERO_ARG1 = {"div", "div_trunc", "div_floor", "remainder", "fmod", "addcdiv"}
# ops whose integer results are only comparable for small operands (overflow is the same, but keep it simple)
SMALL_INT = {"pow", "bitwise_left_shift", "bitwise_right_shift", "mul", "square", "addcmul"}
SKIP_REF = {"nan_to_num", "erfinv", "fill"}  # tested separately below


NO_BOOL = {"floor", "ceil", "round", "trunc"}


def dtypes_for(name):
    fam = FAMILY[name]
    if name in NO_BOOL:
        return [d for d in ALL if d is not D.bool_]
    if fam == "int":
        return INTS_BOOL if name.startswith("bitwise") and "shift" not in name else [d for d in INTS_BOOL if d is not D.bool_]
    if name in ("sub", "neg"):
        return [d for d in ALL if d is not D.bool_]
    if name in ("div_trunc", "div_floor", "remainder", "fmod", "pow", "abs", "sign", "relu", "square",
                "leaky_relu", "elu", "softplus", "hardtanh", "clamp", "clamp_min", "clamp_max", "frac",
                "round_decimals", "lerp", "addcmul", "addcdiv"):
        base = [d for d in ALL if d is not D.bool_]
        if name in ("frac", "leaky_relu", "elu", "softplus", "round_decimals", "lerp", "addcdiv"):
            return FLOATS
        return base
    return ALL


def default_attrs(name, dtype=None):
    op = registry.get(name)
    attrs = {}
    for k, v in op.attrs:
        attrs[k] = v
    signed = dtype is None or dtype is not D.uint8
    if name == "clamp":
        attrs.update(min=-1 if signed else 1, max=2)
    if name == "clamp_min":
        attrs.update(min=-1 if signed else 1)
    if name == "hardtanh" and not signed:
        attrs.update(min_val=1.0, max_val=20.0)
    if name == "clamp_max":
        attrs.update(max=1)
    if name == "round_decimals":
        attrs.update(scale=100.0)
    if name in ("add", "sub"):
        attrs.update(alpha=2)
    if name == "addcmul" or name == "addcdiv":
        attrs.update(value=0.5 if dtype is None or dtype.is_floating_point else 2)
    return attrs


def make_inputs(rng, name, dtype, shapes):
    dom = DOMAIN.get(name, {})
    arrays = []
    for k, shape in enumerate(shapes):
        kw = dict(low=dom.get("low", -3.0), high=dom.get("high", 3.0), positive=dom.get("positive", False),
                  nonzero=dom.get("nonzero", False))
        if k == 1 and name in NONZERO_ARG1:
            kw["nonzero"] = True
        if k == 2 and name == "addcdiv":
            kw["nonzero"] = True
        if k == 1 and dom.get("positive_arg1"):
            kw["positive"] = True
        if name in SMALL_INT and dtype.category == 1:
            kw.update(low=0.0 if k else -0.3, high=0.3)
            if name.startswith("bitwise") and k == 1:
                kw.update(low=0.0, high=0.5)
        if name == "pow" and dtype.category == 2 and k == 0:
            kw["positive"] = True
        a = random_array(rng, shape, dtype, **kw)
        if dom.get("shift") and dtype.category == 2:
            a = (a + dom["shift"]).astype(dtype.np)
        if dom.get("shift") and dtype.category == 1:
            a = (np.abs(a) + 1).astype(dtype.np)
        arrays.append(a)
    if name == "where":
        arrays[0] = rng.random(shapes[0]) < 0.5
    return arrays


def expected(name, arrays, attrs, out_dtype, compute_dtype):
    op = registry.get(name)
    ct = compute_dtype.np if compute_dtype is not D.float16 else np.float32
    if name == "where":
        args = [arrays[0]] + [a.astype(ct) for a in arrays[1:]]
    elif FAMILY[name] == "logical":
        args = arrays
    else:
        args = [a.astype(ct) for a in arrays]
    with np.errstate(all="ignore"):
        r = op.reference(*args, **attrs)
        return np.asarray(r).astype(out_dtype.np)


CASES = [(name, d) for name, *_ in SPECS if name not in SKIP_REF for d in dtypes_for(name)]


@pytest.mark.parametrize("name,dtype", CASES, ids=[f"{n}-{d.name}" for n, d in CASES])
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_elementwise_matches_numpy(name, dtype, data):
    op = registry.get(name)
    nin = sum(1 for s in SPECS if s[0] == name and s[1]) and next(s[1] for s in SPECS if s[0] == name)
    seed = data.draw(st.integers(0, 2 ** 31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    if nin == 1:
        shapes = [data.draw(st.sampled_from(SHAPES), label="shape")]
    else:
        pair = data.draw(st.sampled_from(BROADCAST_PAIRS + [(s, s) for s in SHAPES]), label="shapes")
        shapes = list(pair) + ([pair[0]] if nin == 3 else [])
    layout = data.draw(st.sampled_from(["contiguous", "transposed", "strided"]), label="layout")
    arrays = make_inputs(rng, name, dtype, shapes)
    tensors = [as_layout(a, layout if a.ndim else "contiguous") for a in arrays]
    attrs = default_attrs(name, dtype)
    got = call(name, *tensors, **attrs)
    out_dtype = op.dtype_rule(*tensors, **attrs)
    compute = op.compute_rule(*tensors, **attrs)
    assert got.dtype is out_dtype
    want = expected(name, arrays, attrs, out_dtype, compute)
    tol = {}
    if name in ("tan", "lgamma", "sinh", "cosh", "exp", "exp2", "pow", "hypot") and out_dtype is D.float32:
        tol = dict(rtol=1e-5, atol=1e-5)
    if name in ("sigmoid", "tanh", "erf", "erfc", "expm1", "log1p", "log", "log2", "log10", "elu", "softplus") \
            and out_dtype is D.float32:
        tol = dict(rtol=1e-5, atol=1e-6)
    assert_close(got, want, out_dtype, what=f"{name} {dtype.name} {shapes} {layout}", **tol)


def test_every_elementwise_op_is_tested():
    tested = {n for n, _ in CASES} | SKIP_REF
    ew = {n for n, op in registry.OPS.items() if "elementwise" in op.tags}
    assert ew <= tested, f"elementwise ops without a table test: {sorted(ew - tested)}"


# ---------------------------------------------------------------- special values

SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 88.0, -88.0, 100.0, -100.0,
                    1e30, -1e30], dtype=np.float64)


@pytest.mark.parametrize("name", ["exp", "expm1", "log", "log1p", "tanh", "sigmoid", "erf", "sqrt", "sin", "abs",
                                  "relu", "floor", "isnan", "isinf", "isfinite", "sign", "neg", "reciprocal"])
@pytest.mark.parametrize("dtype", [D.float32, D.float64])
def test_special_values(name, dtype):
    x = SPECIAL.astype(dtype.np)
    got = call(name, jitorch.from_numpy(x))
    op = registry.get(name)
    with np.errstate(all="ignore"):
        want = np.asarray(op.reference(x)).astype(got.dtype.np)
    if got.dtype.category == 2:
        # our float32 polynomials flush denormal results to zero: compare with an absolute floor
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-37, equal_nan=True, err_msg=name)
    else:
        np.testing.assert_array_equal(got.numpy(), want, err_msg=name)


def test_nan_to_num():
    x = jitorch.tensor([np.nan, np.inf, -np.inf, 1.5])
    np.testing.assert_array_equal(jitorch.nan_to_num(x).numpy(),
                                  np.nan_to_num(np.array([np.nan, np.inf, -np.inf, 1.5], np.float32)))
    np.testing.assert_array_equal(jitorch.nan_to_num(x, nan=1.0, posinf=2.0, neginf=-2.0).numpy(),
                                  np.array([1.0, 2.0, -2.0, 1.5], np.float32))


def test_erfinv_inverts_erf():
    y = np.linspace(-0.999, 0.999, 201)
    got = jitorch.erfinv(jitorch.from_numpy(y)).numpy()
    back = np.array([math.erf(v) for v in got])
    np.testing.assert_allclose(back, y, rtol=1e-12, atol=1e-14)
    assert jitorch.erfinv(jitorch.tensor([1.0, -1.0])).tolist() == [math.inf, -math.inf]


def test_fill_and_inplace_variants():
    x = jitorch.zeros(3, 4)
    x.fill_(2.5)
    np.testing.assert_array_equal(x.numpy(), np.full((3, 4), 2.5, np.float32))
    v0 = x._version
    x.add_(1).mul_(2).sub_(jitorch.ones(4), alpha=3)
    assert x._version == v0 + 3
    np.testing.assert_array_equal(x.numpy(), np.full((3, 4), 4.0, np.float32))
    x.exp_()
    np.testing.assert_allclose(x.numpy(), np.exp(np.full((3, 4), 4.0, np.float32)), rtol=2e-6)


def test_inplace_on_view_writes_base():
    base = jitorch.zeros(4, 4)
    base[:, 1].add_(3)
    base.t()[2].fill_(7)
    want = np.zeros((4, 4), np.float32)
    want[:, 1] += 3
    want.T[2] = 7
    np.testing.assert_array_equal(base.numpy(), want)


def test_large_parallel_path_matches():
    # above PARALLEL_THRESHOLD the prange variants run: same values as the serial ones
    rng = np.random.default_rng(0)
    a = rng.standard_normal(1 << 21).astype(np.float32)
    got = (jitorch.from_numpy(a) * 2.0 + 1.0).tanh()
    np.testing.assert_allclose(got.numpy(), np.tanh(a * 2 + 1), rtol=1e-5, atol=1e-6)
    m = rng.standard_normal((1100, 1000)).astype(np.float32)
    b = rng.standard_normal(1000).astype(np.float32)
    got = jitorch.from_numpy(m).t() + jitorch.from_numpy(b)[:, None]
    np.testing.assert_allclose(got.numpy(), m.T + b[:, None], rtol=1e-6)

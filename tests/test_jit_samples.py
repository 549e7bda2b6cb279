"""Sample inputs for every op of the table, and the table-driven jit tests that use them.

For each op: trace a call on sample inputs, then check that the graph verifies, prints and parses
back exactly, that ``interpret`` (NumPy references) matches eager, that the traced callable gives
eager's exact result, and that the pass pipeline keeps the values. New ops get samples from the
provider of their tag family; an op no provider covers fails ``test_every_op_has_samples``: add
an entry to ``OP_SAMPLES`` (or a tag provider) for it.
"""
from __future__ import annotations

import functools
import warnings
import importlib
import pkgutil

import numpy as np
import pytest

import jitorch
from jitorch import _dtype as D
from jitorch import jit
from jitorch._dispatch import call, call_inplace
from jitorch.ops.registry import OPS

# every op module of the table, so OPS is complete whatever the other tests imported
_IMPORT_ERRORS = {}
for _m in pkgutil.iter_modules(jitorch.ops.__path__):
    try:
        importlib.import_module(f"jitorch.ops.{_m.name}")
    except Exception as _e:  # reported by test_every_op_module_imports
        _IMPORT_ERRORS[_m.name] = f"{type(_e).__name__}: {_e}"


class Sample:
    """operands: arrays (become traced inputs) or Python scalars (literal operands); attrs; inplace."""

    def __init__(self, operands, attrs=None, inplace=False, note=""):
        self.operands, self.attrs, self.inplace, self.note = list(operands), dict(attrs or {}), inplace, note

    def __repr__(self):
        ops = [f"{a.dtype}{list(a.shape)}" if isinstance(a, np.ndarray) else repr(a) for a in self.operands]
        return f"Sample({', '.join(ops)}, {self.attrs}{', inplace' if self.inplace else ''})"


def _arr(shape, dtype=np.float32, seed=0, low=0.2, high=0.9):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind in "iu":
        return rng.integers(1, 6, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def _idx(shape, n, seed=1):
    return np.random.default_rng(seed).integers(0, n, size=shape).astype(np.int64)


def _works(name, operands, attrs, inplace=False):
    ts = [jitorch.from_numpy(np.array(a)) if isinstance(a, np.ndarray) else a for a in operands]
    try:
        (call_inplace if inplace else call)(name, *ts, **attrs)
        return True
    except Exception:
        return False


def _elementwise(op):
    n = 1 if "unary" in op.tags else 2 if "binary" in op.tags else 3
    attrs = dict(op.attrs)
    combos = [[np.float32] * n, [np.int32] * n, [np.bool_] + [np.float32] * (n - 1), [np.bool_] * n]
    shapes = [(3, 4), (4,), (3, 1)][:n] if n > 1 else [(3, 4)]
    out = []
    for dts in combos:
        ops = [_arr(s, d, seed=k) for k, (s, d) in enumerate(zip(shapes, dts))]
        if _works(op.name, ops, attrs):
            out.append(Sample(ops, attrs))
            break
    if not out:
        return []
    first = out[0]
    if n >= 2:  # Python scalar operands: a weak float, a weak int, and torch's wrap-around (int8 + 1000)
        for lit in (2.0, 3):
            ops = [first.operands[0], lit] + first.operands[2:]
            if _works(op.name, ops, attrs):
                out.append(Sample(ops, attrs, note="literal"))
        ops = [_arr((5,), np.int8), 1000] + [_arr((5,), np.int8)] * (n - 2)
        if _works(op.name, ops, attrs):
            out.append(Sample(ops, attrs, note="wrap"))
    target = first.operands[0]
    if isinstance(target, np.ndarray) and target.shape == (3, 4) and _works(op.name, first.operands, attrs, True):
        out.append(Sample(first.operands, attrs, inplace=True))
    f64 = [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype == np.float32 else a for a in first.operands]
    if any(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in f64) and _works(op.name, f64, attrs):
        out.append(Sample(f64, attrs, note="f64"))
    return out


OP_SAMPLES = {
    "view": lambda: [Sample([_arr((3, 4))], {"size": (2, 6)}), Sample([_arr((3, 4))], {"size": (-1,)})],
    "permute": lambda: [Sample([_arr((2, 3, 4))], {"dims": (2, 0, 1)}), Sample([_arr((3, 4))], {"dims": (-1, 0)})],
    "expand": lambda: [Sample([_arr((3, 1))], {"size": (2, 3, 4)}), Sample([_arr((1, 4))], {"size": (3, -1)})],
    "slice": lambda: [Sample([_arr((5, 4))], {"dim": 0, "start": 1, "stop": 4, "step": 2}),
                      Sample([_arr((5, 4))], {"dim": -1, "start": None, "stop": -1, "step": 1})],
    "select": lambda: [Sample([_arr((3, 4))], {"dim": 1, "index": -1})],
    "unsqueeze": lambda: [Sample([_arr((3, 4))], {"dim": 1}), Sample([_arr(())], {"dim": 0})],
    "squeeze": lambda: [Sample([_arr((3, 1, 4, 1))], {"dim": None}), Sample([_arr((3, 1))], {"dim": 1})],
    "diagonal": lambda: [Sample([_arr((3, 4))], {"offset": 1, "dim1": 0, "dim2": 1})],
    "as_strided": lambda: [Sample([_arr((3, 4))], {"size": (2, 2), "stride": (1, 4), "storage_offset": 1})],
    "nan_to_num": lambda: [Sample([np.array([1.0, np.nan, np.inf, -np.inf], np.float32)],
                                  {"nan": 0.5, "posinf": 1e4, "neginf": -1e4})],
    "clone": lambda: [Sample([_arr((3, 4))])],
    "to_dtype": lambda: [Sample([_arr((3, 4))], {"dtype": D.int32}), Sample([_arr((3,), np.int64)], {"dtype": D.float16})],
    "copy": lambda: [Sample([_arr((3, 4)), _arr((3, 4), np.float64)], inplace=True),
                     Sample([_arr((3, 4)), _arr((4,), np.int32)], inplace=True)],
    "matmul": lambda: [Sample([_arr((3, 4)), _arr((4, 5))]), Sample([_arr((2, 3, 4)), _arr((4,))]),
                       Sample([_arr((4,)), _arr((4,))])],
    "convolution": lambda: [
        Sample([_arr((1, 2, 5, 5)), _arr((3, 2, 3, 3)), _arr((3,))],
               dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)),
        Sample([_arr((2, 4, 7)), _arr((2, 2, 3))], dict(stride=(2,), padding=(0,), dilation=(2,), groups=2))],
    "conv_transpose": lambda: [
        Sample([_arr((1, 2, 4, 4)), _arr((2, 3, 3, 3)), _arr((3,))],
               dict(stride=(2, 2), padding=(1, 1), output_padding=(1, 1), dilation=(1, 1), groups=1))],
    "convolution_weight_grad": lambda: [
        Sample([_arr((1, 2, 5, 5)), _arr((1, 3, 5, 5))],
               dict(weight_size=(3, 2, 3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1))],
    "max_pool2d_with_indices": lambda: [
        Sample([_arr((1, 2, 4, 5))], dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                                          ceil_mode=True))],
    "max_pool2d_backward": lambda: [
        Sample([_arr((1, 2, 2, 2)), np.array([0, 3, 9, 15, 1, 6, 8, 14], np.int64).reshape(1, 2, 2, 2)],
               dict(input_size=(4, 4)))],
    "max_pool2d_gather": lambda: [
        Sample([_arr((1, 2, 4, 4)), np.array([0, 3, 9, 15, 1, 6, 8, 14], np.int64).reshape(1, 2, 2, 2)])],
    "avg_pool2d": lambda: [
        Sample([_arr((1, 2, 5, 5))], dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=False,
                                          count_include_pad=False, divisor_override=None))],
    "avg_pool2d_backward": lambda: [
        Sample([_arr((1, 2, 3, 3))], dict(input_size=(5, 5), kernel_size=(3, 3), stride=(2, 2), padding=(1, 1),
                                          ceil_mode=False, count_include_pad=True, divisor_override=None))],
    "adaptive_avg_pool2d": lambda: [Sample([_arr((1, 2, 5, 4))], dict(output_size=(2, 3)))],
    "adaptive_avg_pool2d_backward": lambda: [Sample([_arr((1, 2, 2, 3))], dict(input_size=(5, 4)))],
    "adaptive_max_pool2d": lambda: [Sample([_arr((1, 2, 5, 4))], dict(output_size=(2, 3)))],
    # random draws (compared under the same seed: interpret runs their kernels on the default generator)
    "uniform": lambda: [Sample([], dict(size=(3, 4), dtype=D.float32, low=-1.0, high=2.0, generator=None))],
    "normal": lambda: [Sample([], dict(size=(5,), dtype=D.float64, mean=1.0, std=2.0, generator=None))],
    "randint": lambda: [Sample([], dict(size=(2, 3), dtype=D.int64, low=-3, high=9, generator=None))],
    "randperm": lambda: [Sample([], dict(n=7, dtype=D.int64, generator=None))],
    "bernoulli": lambda: [Sample([_arr((3, 4), low=0.05, high=0.95)], dict(generator=None))],
    "bernoulli_p": lambda: [Sample([], dict(size=(3, 4), p=0.3, dtype=D.float32, generator=None))],
    "dropout_mask": lambda: [Sample([], dict(size=(12,), p=0.5, dtype=D.float32, generator=None))],
    "exponential": lambda: [Sample([], dict(size=(4,), dtype=D.float32, lambd=2.0, generator=None))],
    "multinomial": lambda: [Sample([_arr((2, 5))], dict(num_samples=3, replacement=True, generator=None)),
                            Sample([_arr((5,))], dict(num_samples=4, replacement=False, generator=None))],
    # indexing, sorting, data-dependent sizes
    "flip": lambda: [Sample([_arr((3, 4))], dict(dims=(0,))), Sample([_arr((2, 3, 4))], dict(dims=(0, 2)))],
    "roll": lambda: [Sample([_arr((3, 4))], dict(shifts=(1,), dims=(1,))), Sample([_arr((3, 4))], dict(shifts=(5,), dims=()))],
    "tril": lambda: [Sample([_arr((3, 4))], dict(diagonal=0)), Sample([_arr((2, 3, 3))], dict(diagonal=-1))],
    "triu": lambda: [Sample([_arr((3, 4))], dict(diagonal=1))],
    "gather": lambda: [Sample([_arr((3, 4)), _idx((3, 2), 4)], dict(dim=1))],
    "index": lambda: [Sample([_arr((3, 4)), _idx((2,), 3)], dict(dims=(0,))),
                      Sample([_arr((3, 4)), _idx((2,), 3), _idx((2,), 4)], dict(dims=(0, 1)))],
    "index_add": lambda: [Sample([_arr((3, 4)), np.array([0, 2, 0]), _arr((3, 4))], dict(dim=0, alpha=2))],
    "index_put": lambda: [Sample([_arr((3, 4)), _arr((4,)), np.array([0, 2])], dict(dims=(0,), accumulate=False)),
                          Sample([_arr((3, 4)), _arr((2,)), np.array([0, 0]), np.array([1, 1])],
                                 dict(dims=(0, 1), accumulate=True))],
    "index_select": lambda: [Sample([_arr((3, 4)), np.array([3, 0, 3])], dict(dim=1))],
    "masked_scatter": lambda: [Sample([_arr((3, 4)), _arr((3, 4), np.bool_, seed=3), _arr((12,))])],
    "masked_select": lambda: [Sample([_arr((3, 4)), _arr((3, 4), np.bool_, seed=3)])],
    "nonzero": lambda: [Sample([_arr((3, 4), np.bool_, seed=5)])],
    "take": lambda: [Sample([_arr((3, 4)), _idx((2, 3), 12)])],
    "scatter": lambda: [Sample([_arr((3, 4)), _idx((3, 2), 4), _arr((3, 2))], dict(dim=1, reduce=None, include_self=True)),
                        Sample([_arr((3, 4)), _idx((3, 2), 4), _arr((3, 2))], dict(dim=1, reduce="sum", include_self=True))],
    "repeat_interleave": lambda: [Sample([_arr((3, 2)), np.array([1, 0, 2])], dict(dim=0))],
    "searchsorted": lambda: [Sample([np.sort(_arr((5,))), _arr((2, 3))], dict(right=False)),
                             Sample([np.sort(_arr((5,))), _arr((4,))], dict(right=True))],
    "sort": lambda: [Sample([_arr((3, 4))], dict(dim=-1, descending=False, stable=True)),
                     Sample([_arr((3, 4))], dict(dim=0, descending=True, stable=True))],
    "topk": lambda: [Sample([_arr((3, 4))], dict(k=2, dim=-1, largest=True, sorted=True))],
    "kthvalue": lambda: [Sample([_arr((3, 4))], dict(k=2, dim=-1, keepdim=False))],
    "median_dim": lambda: [Sample([_arr((3, 4))], dict(dim=-1, keepdim=True))],
    "nanmedian_dim": lambda: [Sample([np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, 2.0]], np.float32)],
                                     dict(dim=1, keepdim=False))],
    "mode_dim": lambda: [Sample([np.array([[1, 2, 2], [3, 3, 1]], np.int64)], dict(dim=-1, keepdim=False))],
    "unique": lambda: [Sample([np.array([3, 1, 3, 2, 1, 3])], dict(sorted=True, return_inverse=True, return_counts=True))],
    "cat": lambda: [Sample([_arr((2, 3)), _arr((1, 3)), _arr((4, 3), np.float64)], {"dim": 0}),
                    Sample([_arr((2, 3)), _arr((2, 1))], {"dim": -1})],
}

def _along_dim(op, dims=(1, -1, None, (1,), (0, 1))):
    """Reductions, scans, softmax-like ops: attrs from the record, over dim 1 and over all dims."""
    out = []
    base = dict(op.attrs)
    for x in (_arr((3, 4)), _arr((3, 4), np.int32)):
        for dim in dims:
            attrs = dict(base, dim=dim) if "dim" in base else base
            if _works(op.name, [x], attrs) and not any(s.attrs == attrs and s.operands[0].dtype == x.dtype for s in out):
                out.append(Sample([x], attrs))
        if "keepdim" in base and out:
            attrs = dict(out[0].attrs, keepdim=True)
            if _works(op.name, [x], attrs):
                out.append(Sample([x], attrs))
    return out


TAG_SAMPLES = {"elementwise": _elementwise, "reduction": _along_dim,
               "scan": lambda op: _along_dim(op, (1, -1)), "normalization": lambda op: _along_dim(op, (1, -1))}


@functools.lru_cache(maxsize=None)
def samples(name):
    """The samples for op ``name`` (an explicit entry first, then its tag family); [] if none."""
    if name in OP_SAMPLES:
        return tuple(OP_SAMPLES[name]())
    op = OPS[name]
    for tag, provider in TAG_SAMPLES.items():
        if tag in op.tags:
            return tuple(provider(op))
    return ()


def tensors_of(sample):
    return [jitorch.from_numpy(np.array(a)) for a in sample.operands if isinstance(a, np.ndarray)]


def fn_of(name, sample):
    """A function of the sample's array operands calling the op (scalars closed over)."""
    def fn(*ts):
        it = iter(ts)
        args = [next(it) if isinstance(a, np.ndarray) else a for a in sample.operands]
        if sample.inplace:
            target = args[0].clone()
            call_inplace(name, target, *args[1:], **sample.attrs)
            return target
        return call(name, *args, **sample.attrs)
    fn.__name__ = f"op_{name}"
    return fn


TOL = {np.dtype(np.float16): (2e-3, 2e-3), np.dtype(np.float32): (1e-4, 1e-5), np.dtype(np.float64): (1e-10, 1e-12)}


def assert_same(got, want, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, f"{what}: {got.dtype}{got.shape} vs {want.dtype}{want.shape}"
    if got.dtype.kind == "f":
        rtol, atol = TOL[got.dtype]
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def _seeder(name):
    """Random ops draw from the default generator: reseed before each run so runs compare."""
    if "random" in OPS[name].tags:
        return lambda: jitorch.manual_seed(1234)
    return lambda: None


def outputs_of(result):
    return result if isinstance(result, (tuple, list)) else (result,)


# ---------------------------------------------------------------- tests

def test_every_op_module_imports():
    assert not _IMPORT_ERRORS, f"op modules that fail to import: {_IMPORT_ERRORS}"


def test_every_op_has_samples():
    missing = [name for name in sorted(OPS) if not samples(name)]
    assert not missing, (
        f"ops without jit test samples: {missing}. Add an entry to OP_SAMPLES in tests/test_jit_samples.py "
        "(or a provider for the op's tag in TAG_SAMPLES) so tracing, printing, parsing, verify and interpret "
        "are tested for them.")


# eager bugs found by these samples, owned by the op's author: the test fails until fixed, then
# xfail(strict) says to drop the entry
KNOWN_EAGER_BUGS = {}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_EAGER_BUGS[n], strict=True))
                                  if n in KNOWN_EAGER_BUGS else n for n in sorted(OPS)])
def test_op_traces_parses_verifies_interprets(name):
    cases = samples(name)
    if not cases:
        pytest.fail(f"{name}: no samples (see test_every_op_has_samples)")
    for sample in cases:
        what = f"{name} {sample}"
        fn = fn_of(name, sample)
        ts = tensors_of(sample)
        seed = _seeder(name)
        seed()
        eager = outputs_of(fn(*[t.clone() for t in ts]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jit.TracerWarning)  # data-dependent sizes say so
            traced = jit.trace(fn, tuple(ts), check_trace=False)
        raw = traced.raw_graph
        assert any(n.op == name for n in raw.nodes), f"{what}: no {name} node in\n{raw}"
        text = str(raw)
        assert jit.parse(text) == raw, f"{what}: round trip changed the graph\n{text}"
        assert str(jit.parse(text)) == text
        jit.verify(raw)
        arrays = [t._data for t in ts]
        for g in (raw, traced.graph):
            seed()
            got = jit.interpret(g, arrays)
            for o, e in zip(got, eager):
                assert_same(o, e._data, f"{what}: interpret vs eager\n{g}")
        seed()
        for o, e in zip(outputs_of(traced(*ts)), eager):
            assert o.dtype is e.dtype and o.shape == e.shape
            np.testing.assert_array_equal(o._data, e._data, err_msg=f"{what}: traced vs eager")

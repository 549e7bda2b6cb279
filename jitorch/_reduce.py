"""torch reductions: sum, mean, prod, max/min (three overloads), amax/amin, argmax/argmin, any/all,
count_nonzero, var/std (+ _mean), logsumexp, norm, cumsum/cumprod/logcumsumexp, softmax/log_softmax."""
from __future__ import annotations

import math
from collections import namedtuple

from . import _dtype as D
from ._dispatch import call, call_reduction as _creduce
from .ops.registry import OPS as _OPS
from .ops.rules import normalize_dim, normalize_dims
from .tensor import Tensor

values_indices = namedtuple("values_indices", ["values", "indices"])


class return_types:
    """torch.return_types: named (values, indices) results."""
    max = min = median = mode = kthvalue = sort = topk = cummax = cummin = values_indices


def _dims(op, input, dim):
    if isinstance(dim, (list, tuple)) and len(dim) == 0:
        dim = None
    return normalize_dims(op, dim, input.ndim)


def _cast_input(input, dtype):
    return input.to(dtype) if dtype is not None and D.as_dtype(dtype) is not input.dtype else input


def _out(r, out):
    if out is None:
        return r
    out.copy_(r)
    return out


_ALL_DIMS = tuple(tuple(range(n)) for n in range(65))  # dim=None: every dim, without building the tuple per call
# the records the frontends below pass to _dispatch.call_reduction (no attribute dict per call)
_SUM, _PROD, _AMAX, _AMIN, _ANY, _ALL = (_OPS[n] for n in ("sum", "prod", "amax", "amin", "any", "all"))


def sum(input, dim=None, keepdim=False, *, dtype=None, out=None):
    """Sum over dim (int, tuple or None = all); bool/int inputs accumulate in int64."""
    if dim is None and dtype is None and out is None and isinstance(input, Tensor) and input._data.ndim <= 64:
        return _creduce(_SUM, input, _ALL_DIMS[input._data.ndim], keepdim)
    x = _cast_input(input, dtype)
    return _out(_creduce(_SUM, x, _dims("sum", x, dim), keepdim), out)


def _sum_method(self, dim=None, keepdim=False, *, dtype=None):
    """Tensor.sum: x.sum() reaches the dispatch plan in two Python calls."""
    if dim is None and dtype is None:
        return _creduce(_SUM, self, _ALL_DIMS[self._data.ndim], keepdim)
    return sum(self, dim, keepdim, dtype=dtype)


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    x = _cast_input(input, dtype)
    if x.dtype.is_floating_point:
        x = call("where", call("isnan", x), 0.0, x)
    return sum(x, dim, keepdim)


def mean(input, dim=None, keepdim=False, *, dtype=None, out=None):
    """Arithmetic mean; the input (or dtype=) must be floating point, as in torch."""
    x = _cast_input(input, dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. "
            f"Got: {x.dtype.name.capitalize()}; pass dtype=jitorch.float32 or convert with .float()")
    dims = _dims("mean", x, dim)
    n = math.prod(x.shape[d] for d in dims) if x.ndim else 1
    s = _creduce(_SUM, x, dims, keepdim)
    return _out(s / n if n else s * float("nan"), out)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    x = _cast_input(input, dtype)
    notnan = call("logical_not", call("isnan", x))
    return nansum(x, dim, keepdim) / sum(notnan, dim, keepdim)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    x = _cast_input(input, dtype)
    return _creduce(_PROD, x, _dims("prod", x, dim) if dim is not None else _ALL_DIMS[x.ndim], keepdim)


def amax(input, dim=(), keepdim=False, *, out=None):
    return _out(_creduce(_AMAX, input, _dims("amax", input, dim), keepdim), out)


def amin(input, dim=(), keepdim=False, *, out=None):
    return _out(_creduce(_AMIN, input, _dims("amin", input, dim), keepdim), out)


def _minmax(op, input, dim, keepdim, other):
    if isinstance(dim, Tensor):
        other, dim = dim, None
    if other is not None:
        return call("maximum" if op == "max" else "minimum", input, other)
    if dim is None:
        return call("a" + op, input, dim=_dims(op, input, None), keepdim=False)
    d = normalize_dim(op, dim, input.ndim)
    v, i = call(op + "_dim", input, dim=(d,) if input.ndim else (), keepdim=keepdim)
    return values_indices(v, i)


def max(input, dim=None, keepdim=False, *, other=None, out=None):
    """max(x) -> value; max(x, dim, keepdim) -> (values, indices); max(x, other) -> maximum."""
    return _minmax("max", input, dim, keepdim, other)


def min(input, dim=None, keepdim=False, *, other=None, out=None):
    return _minmax("min", input, dim, keepdim, other)


def _arg(op, input, dim, keepdim):
    if dim is None:
        flat = input.reshape(-1)
        r = call(op, flat, dim=(0,), keepdim=False)
        return r.reshape([1] * input.ndim) if keepdim else r
    d = normalize_dim(op, dim, input.ndim)
    return call(op, input, dim=(d,) if input.ndim else (), keepdim=keepdim)


def argmax(input, dim=None, keepdim=False):
    """Index of the first maximum (of the flattened input when dim is None)."""
    return _arg("argmax", input, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return _arg("argmin", input, dim, keepdim)


def any(input, dim=None, keepdim=False, *, out=None):
    return _out(_creduce(_ANY, input, _dims("any", input, dim), keepdim), out)


def all(input, dim=None, keepdim=False, *, out=None):
    return _out(_creduce(_ALL, input, _dims("all", input, dim), keepdim), out)


def count_nonzero(input, dim=None):
    return call("count_nonzero", input, dim=_dims("count_nonzero", input, dim), keepdim=False)


def _correction(op, unbiased, correction):
    if correction is not None and unbiased is not None:
        raise RuntimeError(f"{op}: cannot specify both unbiased and correction")
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


def _var_args(op, input, dim, unbiased, keepdim, correction):
    # torch.var(x, True) means unbiased=True (legacy positional form)
    if isinstance(dim, bool):
        unbiased, dim = dim, None
    return _dims(op, input, dim), _correction(op, unbiased, correction)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
    """Variance with ``correction`` (default 1, Bessel); ``unbiased`` is torch's older spelling."""
    dims, c = _var_args("var", input, dim, unbiased, keepdim, correction)
    return _out(call("var", input, dim=dims, correction=c, keepdim=keepdim), out)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
    return _out(call("sqrt", var(input, dim, unbiased, keepdim, correction=correction)), out)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def logsumexp(input, dim, keepdim=False, *, out=None):
    return _out(call("logsumexp", input, dim=_dims("logsumexp", input, dim), keepdim=keepdim), out)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """torch.norm: 'fro' and numeric p give vector norms over dim (all dims by default)."""
    x = _cast_input(input, dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"norm(): input dtype should be floating point, but got {x.dtype.name}")
    if p == "fro" or p is None:
        p = 2.0
    if p == "nuc":
        raise NotImplementedError("norm(p='nuc') needs singular values, which jitorch does not implement")
    return call("norm", x, dim=_dims("norm", x, dim), p=float(p), keepdim=keepdim)


def _scan(op, input, dim, dtype):
    x = _cast_input(input, dtype)
    d = normalize_dim(op, dim, x.ndim)
    return call(op, x, dim=(d,) if x.ndim else (0,))


def cumsum(input, dim, *, dtype=None, out=None):
    return _out(_scan("cumsum", input, dim, dtype), out)


def cumprod(input, dim, *, dtype=None, out=None):
    return _out(_scan("cumprod", input, dim, dtype), out)


def logcumsumexp(input, dim):
    return _scan("logcumsumexp", input, dim, None)


def softmax(input, dim=None, dtype=None, *, _stacklevel=3):
    """softmax along dim (a fused numba kernel); dtype= converts the input first."""
    if dim is None:
        dim = 0 if input.ndim in (0, 1, 3) else 1  # torch's legacy implicit dim
    return _scan("softmax", input, dim, dtype)


def log_softmax(input, dim=None, dtype=None, *, _stacklevel=3):
    if dim is None:
        dim = 0 if input.ndim in (0, 1, 3) else 1
    return _scan("log_softmax", input, dim, dtype)


def trace(input):
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    return sum(input.diagonal())


def dist(input, other, p=2):
    return norm(input - other, p)


def aminmax(input, *, dim=None, keepdim=False):
    mn = amin(input, dim if dim is not None else (), keepdim)
    mx = amax(input, dim if dim is not None else (), keepdim)
    return namedtuple("aminmax", ["min", "max"])(mn, mx)


def _bind():
    T = Tensor
    T.sum = _sum_method
    T.nansum = lambda self, dim=None, keepdim=False, *, dtype=None: nansum(self, dim, keepdim, dtype=dtype)
    T.mean = lambda self, dim=None, keepdim=False, *, dtype=None: mean(self, dim, keepdim, dtype=dtype)
    T.nanmean = lambda self, dim=None, keepdim=False, *, dtype=None: nanmean(self, dim, keepdim, dtype=dtype)
    T.prod = lambda self, dim=None, keepdim=False, *, dtype=None: prod(self, dim, keepdim, dtype=dtype)
    T.max = lambda self, dim=None, keepdim=False: max(self, dim, keepdim)
    T.min = lambda self, dim=None, keepdim=False: min(self, dim, keepdim)
    T.amax = lambda self, dim=(), keepdim=False: amax(self, dim, keepdim)
    T.amin = lambda self, dim=(), keepdim=False: amin(self, dim, keepdim)
    T.aminmax = lambda self, *, dim=None, keepdim=False: aminmax(self, dim=dim, keepdim=keepdim)
    T.argmax = lambda self, dim=None, keepdim=False: argmax(self, dim, keepdim)
    T.argmin = lambda self, dim=None, keepdim=False: argmin(self, dim, keepdim)
    T.any = lambda self, dim=None, keepdim=False: any(self, dim, keepdim)
    T.all = lambda self, dim=None, keepdim=False: all(self, dim, keepdim)
    T.count_nonzero = lambda self, dim=None: count_nonzero(self, dim)
    T.var = lambda self, dim=None, unbiased=None, keepdim=False, *, correction=None: var(
        self, dim, unbiased, keepdim, correction=correction)
    T.std = lambda self, dim=None, unbiased=None, keepdim=False, *, correction=None: std(
        self, dim, unbiased, keepdim, correction=correction)
    T.logsumexp = lambda self, dim, keepdim=False: logsumexp(self, dim, keepdim)
    T.norm = lambda self, p="fro", dim=None, keepdim=False, dtype=None: norm(self, p, dim, keepdim, dtype)
    T.cumsum = lambda self, dim, *, dtype=None: cumsum(self, dim, dtype=dtype)
    T.cumprod = lambda self, dim, *, dtype=None: cumprod(self, dim, dtype=dtype)
    T.cumsum_ = lambda self, dim, *, dtype=None: self.copy_(cumsum(self, dim, dtype=dtype))
    T.logcumsumexp = lambda self, dim: logcumsumexp(self, dim)
    T.softmax = lambda self, dim=None, dtype=None: softmax(self, dim, dtype)
    T.log_softmax = lambda self, dim=None, dtype=None: log_softmax(self, dim, dtype)
    T.trace = lambda self: trace(self)
    T.dist = lambda self, other, p=2: dist(self, other, p)


_bind()

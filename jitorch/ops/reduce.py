"""Reductions, scans and softmax: records whose kernels live in ``kernels/reduce.py``.

Every kernel reduces the middle axis of a C-contiguous (outer, n, inner) array. The backend
helper :func:`_reduce_layout` gets there: reduced dims that already form one contiguous block of
a C-contiguous input are a free reshape; anything else is permuted to the end and copied once.

Attributes: ``dim`` is a tuple of normalized dims (``()`` never occurs: None means all dims,
resolved by the frontend), ``keepdim`` a bool. Multi-dim reductions are supported by every op
whose result does not depend on the order of the reduced elements; argmax/argmin, max/min with
indices, scans and softmax take one dim.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _dtype as D
from ..backends import cpu as _cpu
from ..kernels import reduce as _k
from ..kernels import _config as _kcfg
from ..kernels._entry import entry_point as _entry_point
from .registry import OPS, OpDef, register
from .rules import normalize_dims, to_float


# ---------------------------------------------------------------- layout

def _reduce_layout(x, dims):
    """(x3, outer_shape_without_dims): x as C-contiguous (outer, n, inner) reducing over ``dims``."""
    nd = x.ndim
    if x.dtype == np.float16:
        x = _cpu.to_f32(x)
    if nd == 0:
        return x.reshape(1, 1, 1)
    dims = sorted(dims)
    contiguous_block = dims == list(range(dims[0], dims[-1] + 1))
    if contiguous_block and x.flags.c_contiguous:
        outer = math.prod(x.shape[: dims[0]])
        n = math.prod(x.shape[d] for d in dims)
        inner = math.prod(x.shape[dims[-1] + 1:])
        return x.reshape(outer, n, inner)
    keep = [d for d in range(nd) if d not in dims]
    perm = keep + dims
    xp = x.transpose(perm)
    c = np.empty(xp.shape, xp.dtype)
    _cpu.copy_into(c, xp)
    outer = math.prod(x.shape[d] for d in keep)
    n = math.prod(x.shape[d] for d in dims)
    return c.reshape(outer, n, 1)


def _out_shape(shape, dims, keepdim):
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def _run(kernel, out, x, dims, *args, compute=None):
    """Run a reduction kernel; float16 outputs are computed in float32 and rounded once."""
    x3 = _reduce_layout(x, dims)
    if compute is not None and x3.dtype != compute:
        tmp = np.empty(x3.shape, compute)
        _cpu.copy_into(tmp, x3)
        x3 = tmp
    o = out
    if out.dtype == np.float16:
        o = np.empty(out.shape, np.float32)
    o2 = o.reshape(x3.shape[0], x3.shape[2]) if o.size else o.reshape(x3.shape[0], x3.shape[2])
    kernel(x3, o2, *args)
    if o is not out:
        _cpu.from_f32_into(o, out)
    return out


# ---------------------------------------------------------------- rules

def _check_nonempty(op, shape, dims):
    if len(dims) == len(shape) and 0 in shape:
        raise RuntimeError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0. "
                           "Specify the reduction dim with the 'dim' argument.")
    for d in dims:
        if shape and shape[d] == 0:
            raise IndexError(
                f"{op}(): Expected reduction dim {d} to have non-zero size (input shape {list(shape)}); "
                "specify a dim whose size is not 0, or check the input is not empty")


def _shape_rule(op, nonempty=False):
    def rule(shape, dim, keepdim=False, **_):
        dims = normalize_dims(op, dim, len(shape))
        if nonempty:
            _check_nonempty(op, shape, dims)
        return _out_shape(shape, dims, keepdim)
    return rule


def _sum_dtype(x, dim=None, keepdim=False):
    return x.dtype if x.dtype.is_floating_point else D.int64


def _float_only(op):
    def rule(x, *a, **k):
        if not x.dtype.is_floating_point:
            raise RuntimeError(
                f"{op}(): input dtype should be floating point, but got {x.dtype.name}; convert with .float() first")
        return x.dtype
    return rule


def _to_float_dtype(x, *a, **k):
    return to_float(x.dtype)


# ---------------------------------------------------------------- impls

def _i64(x):
    return np.int64 if x.dtype.kind in "biu" else None


def _sum_impl(out, x, dim, keepdim=False):
    return _run(_k.sum_, out, x, dim)


def _prod_impl(out, x, dim, keepdim=False):
    return _run(_k.prod, out, x, dim)


def _amax_impl(out, x, dim, keepdim=False):
    return _run(_k.max_, out, x, dim)


def _amin_impl(out, x, dim, keepdim=False):
    return _run(_k.min_, out, x, dim)


def _with_indices(kernel):
    def impl(outs, x, dim, keepdim=False):
        values, indices = outs
        (d,) = dim if x.ndim else (0,)
        x3 = _reduce_layout(x, (d,) if x.ndim else ())
        v = values if values.dtype != np.float16 else np.empty(values.shape, np.float32)
        kernel(x3, v.reshape(x3.shape[0], x3.shape[2]), indices.reshape(x3.shape[0], x3.shape[2]))
        if v is not values:
            _cpu.from_f32_into(v, values)
        return values, indices
    return impl


def _arg_impl(kernel):
    def impl(out, x, dim, keepdim=False):
        return _run(kernel, out, x, dim)
    return impl


def _bool_impl(kernel):
    def impl(out, x, dim, keepdim=False):
        return _run(kernel, out, x, dim)
    return impl


def _var_impl(out, x, dim, correction=1, keepdim=False):
    return _run(_k.var, out, x, dim, correction)


def _logsumexp_impl(out, x, dim, keepdim=False):
    ct = np.float64 if out.dtype == np.float64 else np.float32
    return _run(_k.logsumexp, out, x, dim, compute=ct)


def _norm_impl(out, x, dim, p=2.0, keepdim=False):
    ct = np.float64 if out.dtype == np.float64 else np.float32
    return _run(_k.norm, out, x, dim, float(p), compute=ct)


def _scan_impl(kernel, compute_float=False):
    def impl(out, x, dim):
        if x.ndim == 0:
            x = x.reshape(1)
            o = out.reshape(1)
        else:
            o = out
        (d,) = normalize_dims("scan", dim, x.ndim)
        outer = math.prod(x.shape[:d])
        inner = math.prod(x.shape[d + 1:])
        xc = x
        want = o.dtype if o.dtype != np.float16 else np.dtype(np.float32)
        if compute_float or x.dtype.kind == "f":
            if x.dtype != want or not x.flags.c_contiguous:
                xc = np.empty(x.shape, want)
                _cpu.copy_into(xc, x)
        elif not x.flags.c_contiguous:
            xc = np.empty(x.shape, x.dtype)
            _cpu.copy_into(xc, x)
        x3 = xc.reshape(outer, x.shape[d], inner)
        target = o if o.dtype != np.float16 else np.empty(o.shape, np.float32)
        kernel(x3, target.reshape(x3.shape))
        if target is not o:
            _cpu.from_f32_into(target, o)
        return out
    return impl


# ---------------------------------------------------------------- references (NumPy)

def _ref(fn):
    def ref(x, dim, keepdim=False, **kw):
        with np.errstate(all="ignore"):
            return fn(x, axis=tuple(dim), keepdims=keepdim, **kw)
    return ref


def _ref_sum(x, dim, keepdim=False):
    return np.sum(x, axis=tuple(dim), keepdims=keepdim, dtype=np.int64 if x.dtype.kind in "biu" else x.dtype)


def _ref_prod(x, dim, keepdim=False):
    return np.prod(x, axis=tuple(dim), keepdims=keepdim, dtype=np.int64 if x.dtype.kind in "biu" else x.dtype)


def _ref_var(x, dim, correction=1, keepdim=False):
    n = math.prod(x.shape[d] for d in dim) if x.ndim else 1
    with np.errstate(all="ignore"):
        m = np.mean(x.astype(np.float64), axis=tuple(dim), keepdims=True)
        s = np.sum((x - m) ** 2, axis=tuple(dim), keepdims=keepdim)
        return (s / max(0, n - correction)).astype(x.dtype)


def _ref_logsumexp(x, dim, keepdim=False):
    with np.errstate(all="ignore"):
        m = np.max(x, axis=tuple(dim), keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        r = np.log(np.sum(np.exp(x - m), axis=tuple(dim), keepdims=True)) + m
        return r if keepdim else np.squeeze(r, axis=tuple(dim))


def _ref_norm(x, dim, p=2.0, keepdim=False):
    a = np.abs(x.astype(np.float64))
    ax = tuple(dim)
    if p == np.inf:
        r = np.max(a, axis=ax, keepdims=keepdim)
    elif p == -np.inf:
        r = np.min(a, axis=ax, keepdims=keepdim)
    elif p == 0:
        r = np.sum(a != 0, axis=ax, keepdims=keepdim).astype(np.float64)
    else:
        r = np.sum(a ** p, axis=ax, keepdims=keepdim) ** (1.0 / p)
    return r.astype(x.dtype)


def _axis(dim):
    """Scan/softmax records carry dim as a one-element tuple; NumPy wants an int."""
    return dim[0] if isinstance(dim, (tuple, list)) else dim


def _ref_softmax(x, dim):
    dim = _axis(dim)
    with np.errstate(all="ignore"):
        m = np.max(x, axis=dim, keepdims=True)
        e = np.exp(x - m)
        return e / np.sum(e, axis=dim, keepdims=True)


def _ref_log_softmax(x, dim):
    dim = _axis(dim)
    with np.errstate(all="ignore"):
        m = np.max(x, axis=dim, keepdims=True)
        return x - m - np.log(np.sum(np.exp(x - m), axis=dim, keepdims=True))


def _ref_cumsum(x, dim):
    dim = _axis(dim)
    return np.cumsum(x, axis=dim, dtype=np.int64 if x.dtype.kind in "biu" else x.dtype)


def _ref_cumprod(x, dim):
    dim = _axis(dim)
    return np.cumprod(x, axis=dim, dtype=np.int64 if x.dtype.kind in "biu" else x.dtype)


def _ref_max_dim(x, dim, keepdim=False):
    (d,) = dim if x.ndim else (0,)
    if x.ndim == 0:
        return x.copy(), np.zeros((), np.int64)
    idx = np.argmax(np.where(np.isnan(x), np.inf, x) if x.dtype.kind == "f" else x, axis=d)
    if x.dtype.kind == "f":
        nanpos = np.isnan(x)
        has = nanpos.any(axis=d)
        idx = np.where(has, np.argmax(nanpos, axis=d), idx)
    vals = np.take_along_axis(x, np.expand_dims(idx, d), d)
    if not keepdim:
        vals = np.squeeze(vals, d)
    else:
        idx = np.expand_dims(idx, d)
    return vals, idx.astype(np.int64)


def _ref_min_dim(x, dim, keepdim=False):
    if x.dtype.kind == "f":
        v, i = _ref_max_dim(-x, dim, keepdim)
        return -v, i
    if x.dtype == np.bool_:
        v, i = _ref_max_dim(~x, dim, keepdim)
        return ~v, i
    v, i = _ref_max_dim(-x.astype(np.int64), dim, keepdim)
    return (-v).astype(x.dtype), i


def _dims_attr_rule(op, nonempty=False, single=False):
    base = _shape_rule(op, nonempty)

    def rule(shape, dim, keepdim=False, **kw):
        if single and len(dim) > 1:
            raise RuntimeError(f"{op}(): expected a single dim, got {list(dim)}")
        return base(shape, dim, keepdim)
    return rule


def _pair_shape(op):
    def rule(shape, dim, keepdim=False):
        s = _dims_attr_rule(op, nonempty=True, single=True)(shape, dim, keepdim)
        return (s, s)
    return rule


_R = [
    # name, shape rule, dtype rule, reference, impl, attrs, tags, doc
    ("sum", _shape_rule("sum"), _sum_dtype, _ref_sum, _sum_impl, (("dim", None), ("keepdim", False)),
     "sum over dims; integers and bool accumulate in int64"),
    ("prod", _shape_rule("prod"), _sum_dtype, _ref_prod, _prod_impl, (("dim", None), ("keepdim", False)),
     "product over dims; integers in int64"),
    ("amax", _shape_rule("amax", True), lambda x, **k: x.dtype, _ref(np.max), _amax_impl,
     (("dim", None), ("keepdim", False)), "max over dims (nan propagates); empty dims are an error"),
    ("amin", _shape_rule("amin", True), lambda x, **k: x.dtype, _ref(np.min), _amin_impl,
     (("dim", None), ("keepdim", False)), "min over dims (nan propagates)"),
    ("argmax", _dims_attr_rule("argmax", True, True), lambda x, **k: D.int64,
     lambda x, dim, keepdim=False: _ref_max_dim(x, dim, keepdim)[1], _arg_impl(_k.argmax),
     (("dim", None), ("keepdim", False)), "index of the first max along one dim (nan counts as max)"),
    ("argmin", _dims_attr_rule("argmin", True, True), lambda x, **k: D.int64,
     lambda x, dim, keepdim=False: _ref_min_dim(x, dim, keepdim)[1], _arg_impl(_k.argmin),
     (("dim", None), ("keepdim", False)), "index of the first min along one dim"),
    ("any", _shape_rule("any"), lambda x, **k: D.bool_, _ref(np.any), _bool_impl(_k.any_),
     (("dim", None), ("keepdim", False)), "any nonzero over dims"),
    ("all", _shape_rule("all"), lambda x, **k: D.bool_, _ref(np.all), _bool_impl(_k.all_),
     (("dim", None), ("keepdim", False)), "all nonzero over dims"),
    ("count_nonzero", _shape_rule("count_nonzero"), lambda x, **k: D.int64,
     lambda x, dim, keepdim=False: np.count_nonzero(x, axis=tuple(dim), keepdims=keepdim).astype(np.int64),
     lambda out, x, dim, keepdim=False: _run(_k.count_nonzero, out, x, dim), (("dim", None), ("keepdim", False)),
     "number of nonzeros over dims"),
    ("var", _shape_rule("var"), _float_only("var"), _ref_var, _var_impl,
     (("dim", None), ("correction", 1), ("keepdim", False)), "variance with Bessel's correction (correction=1)"),
    ("logsumexp", _shape_rule("logsumexp"), _to_float_dtype, _ref_logsumexp, _logsumexp_impl,
     (("dim", None), ("keepdim", False)), "log(sum(exp(x))) computed stably"),
    ("norm", _shape_rule("norm"), _float_only("norm"), _ref_norm, _norm_impl,
     (("dim", None), ("p", 2.0), ("keepdim", False)), "vector p-norm over dims (p = 2, 1, inf, -inf, 0, any float)"),
]

for _name, _shape, _dtype, _refn, _impl, _attrs, _doc in _R:
    register(OpDef(_name, shape_rule=_shape, dtype_rule=_dtype, reference=_refn, impl={"cpu": _impl},
                   attrs=_attrs, tags=frozenset({"reduction"}), doc=_doc))

def _plan_reduce(kernel, family=None, flat=None):
    """Dispatch plan (registry.OpDef.plan): for a C-contiguous input whose reduced dims form one
    block, the (outer, n, inner) layout is a reshape computed once per input shape (other layouts:
    no plan, the impl copies). For sum/prod
    (``family``: kernels.reduce's (items, parallel, combine) kernels) below the parallel threshold,
    the serial items kernel is called directly, as kernels.reduce._reduce does for such sizes.

    ``flat``: kernels.reduce's ``sum_flat(out, v)`` for a float input reduced over every dim into a
    0-d output (``x.sum()``) below the parallel threshold: its compiled entry point is the plan
    itself when x is 1-D (no Python frame, no dispatcher: kernels._entry; the plan's key fixes the
    dtype, ndim and C-contiguity the entry point needs), else x is flattened first."""
    def plan(shapes, dtypes, contiguous, dim, keepdim=False):
        shape = shapes[0]
        if (flat is not None and not keepdim and contiguous[0] and dtypes[0].kind == "f" and dtypes[0].itemsize >= 4
                and len(dim) == len(shape) and 0 < math.prod(shape) < _kcfg.PARALLEL_THRESHOLD):
            ep = _entry_point(flat, np.empty((), dtypes[0]), np.empty(1, dtypes[0]))
            if len(shape) == 1:
                return ep
            return lambda out, x: ep(out, x.reshape(-1))
        if not shape or not dim or dtypes[0] == np.float16 or not contiguous[0]:
            return None
        dims = sorted(dim)
        if dims != list(range(dims[0], dims[-1] + 1)):
            return None
        s3 = (math.prod(shape[: dims[0]]), math.prod(shape[d] for d in dims), math.prod(shape[dims[-1] + 1:]))
        s2 = (s3[0], s3[2])
        size = math.prod(shape)
        if family is not None and s3[0] * s3[2] and s3[1] and dtypes[0].kind != "b":
            items = family[0]
            out_dtype = np.dtype(np.int64) if dtypes[0].kind in "iu" else dtypes[0]
            part = _k._no_part(_k._wide_dtype(out_dtype))
            outer = s3[0]

            def run(out, x):
                if size < _kcfg.PARALLEL_THRESHOLD:
                    items(x.reshape(s3), out.reshape(s2), part, 1, 0, outer)
                else:
                    kernel(x.reshape(s3), out.reshape(s2))
                return out
            return run

        def run(out, x):
            kernel(x.reshape(s3), out.reshape(s2))
            return out
        return run
    return plan


for _name, _kernel, _family, _flat in (("sum", _k.sum_, _k._SUM, _k.sum_flat), ("prod", _k.prod, _k._PROD, None),
                                       ("amax", _k.max_, None, None), ("amin", _k.min_, None, None)):
    OPS[_name].plan = _plan_reduce(_kernel, _family, _flat)


register(OpDef("max_dim", shape_rule=_pair_shape("max"), dtype_rule=lambda x, **k: (x.dtype, D.int64),
               reference=_ref_max_dim, impl={"cpu": _with_indices(_k.max_with_indices)}, nout=2,
               attrs=(("dim", None), ("keepdim", False)), tags=frozenset({"reduction"}),
               doc="(values, indices) of the max along one dim; first index on ties, nan wins"))
register(OpDef("min_dim", shape_rule=_pair_shape("min"), dtype_rule=lambda x, **k: (x.dtype, D.int64),
               reference=_ref_min_dim, impl={"cpu": _with_indices(_k.min_with_indices)}, nout=2,
               attrs=(("dim", None), ("keepdim", False)), tags=frozenset({"reduction"}),
               doc="(values, indices) of the min along one dim"))


def _scan_shape(op):
    def rule(shape, dim):
        normalize_dims(op, dim, len(shape))
        return tuple(shape)
    return rule


def _softmax_dtype(op):
    def rule(x, dim):
        if not x.dtype.is_floating_point:
            raise RuntimeError(f"{op}: \"{op}_lastdim_kernel_impl\" not implemented for '{x.dtype.name}'; "
                               "pass dtype=jitorch.float32 or convert the input")
        return x.dtype
    return rule


for _name, _dtype, _refn, _kern, _doc in [
    ("cumsum", _sum_dtype, _ref_cumsum, _k.cumsum, "running sum along dim"),
    ("cumprod", _sum_dtype, _ref_cumprod, _k.cumprod, "running product along dim"),
    ("logcumsumexp", _float_only("logcumsumexp"),
     lambda x, dim: np.logaddexp.accumulate(x, axis=_axis(dim)), _k.logcumsumexp, "running logsumexp along dim"),
    ("softmax", _softmax_dtype("softmax"), _ref_softmax, _k.softmax,
     "exp(x - max) / sum(exp(x - max)) along dim (a fused kernel; the composite is the reference)"),
    ("log_softmax", _softmax_dtype("log_softmax"), _ref_log_softmax, _k.log_softmax,
     "x - max - log(sum(exp(x - max))) along dim"),
]:
    register(OpDef(_name, shape_rule=_scan_shape(_name), dtype_rule=_dtype, reference=_refn,
                   impl={"cpu": _scan_impl(_kern, compute_float=_name in ("softmax", "log_softmax", "logcumsumexp"))},
                   attrs=(("dim", None),), tags=frozenset({"scan" if "cum" in _name else "normalization"}), doc=_doc))


# ---------------------------------------------------------------------------------------------------------------
# Gradient rules (owned by autograd): rule(ctx, *grads) -> (input grad,), written with jitorch ops. Reduced dims
# are restored with unsqueeze + expand; max/min-like ops share the gradient among ties as torch does (amax, amin,
# norm inf) or give it to the selected index (max_dim, min_dim).
# ---------------------------------------------------------------------------------------------------------------
from ..autograd._vjp import call as _c, register_vjps as _register_vjps, saves as _saves  # noqa: E402


def _rdims(ctx):
    nd = len(ctx.inputs[0].shape)
    return normalize_dims("reduction", ctx.attrs.get("dim"), nd) if nd else ()


def _keep(g, dims, keepdim):
    """g with the reduced dims back as size 1 (keepdim=True layout)."""
    if not keepdim:
        for d in sorted(dims):
            g = _c("unsqueeze", g, dim=d)
    return g


def _expand_back(g, ctx):
    x = ctx.inputs[0]
    shape = tuple(x.shape)
    g = _keep(g, _rdims(ctx), ctx.attrs.get("keepdim", False))
    return _c("expand", g, size=shape) if tuple(g.shape) != shape else g


def _count(shape, dims):
    return math.prod(shape[d] for d in dims) if shape else 1


def _sum_k(x, dims):
    return _c("sum", x, dim=tuple(dims), keepdim=True) if dims else x


def _revcumsum(v, d):
    """sum_{j >= i} v_j along d."""
    return _c("add", _c("sub", _c("sum", v, dim=(d,), keepdim=True), _c("cumsum", v, dim=(d,)), alpha=1), v, alpha=1)


@_saves()
def _sum_vjp(ctx, g):
    return (_expand_back(g, ctx),)


@_saves(0, output=True)
def _prod_vjp(ctx, g):
    x = ctx.inputs[0]
    dims = _rdims(ctx)
    keepdim = ctx.attrs.get("keepdim", False)
    out = _keep(ctx.outputs[0], dims, keepdim)
    gk = _keep(g, dims, keepdim)
    is_zero = _c("eq", x, 0)
    xs = _c("where", is_zero, 1.0, x)
    n_zero = _sum_k(_c("to_dtype", is_zero, dtype=x.dtype), dims)
    prod_others = _c("prod", xs, dim=tuple(dims), keepdim=True) if dims else _c("mul", xs, 0.0)
    at_zero = _c("where", _c("eq", n_zero, 1), prod_others, 0.0)
    return (_c("mul", gk, _c("where", is_zero, at_zero, _c("div", out, xs))),)


def _even_split(x, out, gk, dims):
    mask = _c("to_dtype", _c("eq", x, out), dtype=x.dtype)
    return _c("div", _c("mul", gk, mask), _sum_k(mask, dims))


@_saves(0, output=True)
def _amaxmin_vjp(ctx, g):
    x = ctx.inputs[0]
    dims = _rdims(ctx)
    keepdim = ctx.attrs.get("keepdim", False)
    return (_even_split(x, _keep(ctx.outputs[0], dims, keepdim), _keep(g, dims, keepdim), dims),)


@_saves(output=True)
def _max_dim_vjp(ctx, g, g_indices=None):
    x = ctx.inputs[0]
    shape = tuple(x.shape)
    if not shape:
        return (g,)
    (d,) = _rdims(ctx)
    keepdim = ctx.attrs.get("keepdim", False)
    idx = _keep(ctx.outputs[1], (d,), keepdim)
    from .._creation import arange
    iota = arange(shape[d]).reshape(tuple(shape[d] if i == d else 1 for i in range(len(shape))))
    return (_c("where", _c("eq", iota, idx), _keep(g, (d,), keepdim), 0.0),)


@_saves(0)
def _var_vjp(ctx, g):
    x = ctx.inputs[0]
    dims = _rdims(ctx)
    keepdim = ctx.attrs.get("keepdim", False)
    n = _count(tuple(x.shape), dims)
    denom = max(0, n - ctx.attrs.get("correction", 1))
    mean = _c("div", _sum_k(x, dims), float(n))
    return (_c("mul", _keep(g, dims, keepdim), _c("mul", _c("sub", x, mean, alpha=1), 2.0 / denom if denom else math.inf)),)


@_saves(0, output=True)
def _logsumexp_vjp(ctx, g):
    x = ctx.inputs[0]
    dims = _rdims(ctx)
    keepdim = ctx.attrs.get("keepdim", False)
    out = _keep(ctx.outputs[0], dims, keepdim)
    return (_c("mul", _keep(g, dims, keepdim), _c("exp", _c("sub", x, out, alpha=1))),)


@_saves(0, output=True)
def _norm_vjp(ctx, g):
    x = ctx.inputs[0]
    dims = _rdims(ctx)
    keepdim = ctx.attrs.get("keepdim", False)
    p = float(ctx.attrs.get("p", 2.0))
    out = _keep(ctx.outputs[0], dims, keepdim)
    gk = _keep(g, dims, keepdim)
    if p == 0:
        return (_c("mul", x, 0.0),)
    if p == 1:
        return (_c("mul", gk, _c("sign", x)),)
    if math.isinf(p):
        return (_c("mul", _c("sign", x), _even_split(_c("abs", x), out, gk, dims)),)
    safe = _c("where", _c("eq", out, 0), 1.0, out)
    if p == 2:
        scale = _c("div", x, safe)
    else:
        scale = _c("div", _c("mul", x, _c("pow", _c("abs", x), p - 2)), _c("pow", safe, p - 1))
    return (_c("where", _c("eq", out, 0), 0.0, _c("mul", gk, scale)),)


def _dim1(ctx):
    nd = len(ctx.inputs[0].shape)
    return normalize_dims("scan", ctx.attrs.get("dim"), nd)[0] if nd else None


@_saves()
def _cumsum_vjp(ctx, g):
    d = _dim1(ctx)
    return (g if d is None else _revcumsum(g, d),)


@_saves(0, output=True)
def _cumprod_vjp(ctx, g):
    x, out = ctx.inputs[0], ctx.outputs[0]
    d = _dim1(ctx)
    if d is None:
        return (g,)
    is_zero = _c("eq", x, 0)
    zeros_so_far = _c("cumsum", is_zero, dim=(d,))
    first = _c("logical_and", is_zero, _c("eq", zeros_so_far, 1))
    xs = _c("where", is_zero, 1.0, x)
    before = _c("div", _revcumsum(_c("mul", g, out), d), xs)             # positions before the first zero
    at_first = _revcumsum(_c("mul", g, _c("cumprod", _c("where", first, 1.0, x), dim=(d,))), d)
    return (_c("where", first, at_first, _c("where", _c("ge", zeros_so_far, 1), 0.0, before)),)


@_saves(0, output=True)
def _logcumsumexp_vjp(ctx, g):
    x, out = ctx.inputs[0], ctx.outputs[0]
    d = _dim1(ctx)
    if d is None:
        return (g,)
    nd = len(tuple(x.shape))
    last = nd - 1
    perm = tuple(i for i in range(nd) if i != d) + (d,)
    inv = tuple(perm.index(i) for i in range(nd))
    xm, om, gm = (_c("permute", t, dims=perm) for t in (x, out, g))
    n = tuple(x.shape)[d]
    from .._creation import arange
    ii = arange(n).reshape(n, 1)
    mask = _c("ge", arange(n).reshape(1, n), ii)                          # j >= i
    diff = _c("sub", _c("unsqueeze", xm, dim=last + 1), _c("unsqueeze", om, dim=last), alpha=1)   # x_i - out_j
    w = _c("where", mask, _c("exp", _c("where", mask, diff, 0.0)), 0.0)  # <= 1: no overflow
    gi = _c("squeeze", _c("matmul", w, _c("unsqueeze", gm, dim=last + 1)), dim=last + 1)
    return (_c("permute", gi, dims=inv),)


@_saves(output=True)
def _softmax_vjp(ctx, g):
    y = ctx.outputs[0]
    d = _dim1(ctx)
    if d is None:
        return (_c("mul", g, 0.0),)
    s = _c("sum", _c("mul", g, y), dim=(d,), keepdim=True)
    return (_c("mul", y, _c("sub", g, s, alpha=1)),)


@_saves(output=True)
def _log_softmax_vjp(ctx, g):
    y = ctx.outputs[0]
    d = _dim1(ctx)
    if d is None:
        return (_c("mul", g, 0.0),)
    return (_c("sub", g, _c("mul", _c("exp", y), _c("sum", g, dim=(d,), keepdim=True)), alpha=1),)


VJPS = {
    "sum": _sum_vjp, "prod": _prod_vjp, "amax": _amaxmin_vjp, "amin": _amaxmin_vjp,
    "max_dim": _max_dim_vjp, "min_dim": _max_dim_vjp, "var": _var_vjp, "logsumexp": _logsumexp_vjp,
    "norm": _norm_vjp, "cumsum": _cumsum_vjp, "cumprod": _cumprod_vjp, "logcumsumexp": _logcumsumexp_vjp,
    "softmax": _softmax_vjp, "log_softmax": _log_softmax_vjp,
}
NON_DIFFERENTIABLE = ("argmax", "argmin", "any", "all", "count_nonzero")

_register_vjps(VJPS, NON_DIFFERENTIABLE)

# impl["cuda"] of these records: jitorch/ops/_cuda.py (kernels in kernels/cuda/reduce.py)
from ._cuda import register_reduce as _register_cuda  # noqa: E402

_register_cuda()

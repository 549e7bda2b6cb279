"""impl['cuda'] of the reduction, linalg, nn, index and random records: the layout work around kernels/cuda.

Each ops module calls its ``register_*`` function at its end, so a record's cpu and cuda kernels are set in the
same file. Nothing here imports numba or the cuda backend at ``import jitorch`` time: the impls import them on
their first call (a cuda tensor exists by then, so the backend is loaded anyway).

Conventions (the contract is in kernels/cuda/__init__.py and docs/cuda.md): inputs are CudaArrays (any strides),
``out`` is a fresh C-contiguous CudaArray (or None for data-dependent sizes). float16 is computed in float32 and
rounded once on store, as on cpu. Index tensors are validated on the device (``kernels.cuda.index.wrap_check``),
which reads one int64 back to raise torch's IndexError before any gathering kernel runs. Data-dependent output
sizes (nonzero, masked_select) read their count back, as torch does.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from .registry import OPS

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)


def _bc():
    from ..backends import cuda as bc
    return bc


def _kern(name):
    import importlib
    return importlib.import_module(f"jitorch.kernels.cuda.{name}")


def _cdt(dtype):
    """The compute dtype of a storage dtype: float16 computes in float32."""
    dtype = np.dtype(dtype)
    return _F32 if dtype == _F16 else dtype


def _as(a, dtype=None):
    """A C-contiguous CudaArray of ``a`` in ``dtype`` (``a`` itself when it already is one)."""
    bc = _bc()
    dtype = np.dtype(dtype) if dtype is not None else a.dtype
    if a.dtype == dtype:
        return bc.contiguous(a)
    t = bc.empty(a.shape, dtype)
    bc.copy_into(t, a)
    return t


def _dev(a, dtype=None, shape=None):
    """The numba device array of ``a`` (contiguous, in ``dtype``), reshaped to ``shape`` when given."""
    bc = _bc()
    c = _as(a, dtype)
    f = bc.flat(c)
    return f.reshape(tuple(shape) if shape is not None else (c.shape if c.ndim != 1 else (c.size,)))


@contextlib.contextmanager
def _target(out, dtype=None, shape=None):
    """A contiguous device array (``dtype``, default out's compute dtype) whose contents land in ``out``."""
    bc = _bc()
    dtype = np.dtype(dtype) if dtype is not None else _cdt(out.dtype)
    shape = tuple(shape) if shape is not None else tuple(out.shape)
    if dtype == out.dtype and out.is_c_contiguous():
        yield bc.flat(out).reshape(shape)
        return
    tmp = bc.empty(out.shape, dtype)
    yield bc.flat(tmp).reshape(shape)
    bc.copy_into(out, tmp)


def _zero(out):
    _bc().fill(out, 0)
    return out


def _set(name, fn):
    OPS[name].impl["cuda"] = fn


# ================================================================== reductions

def _x3(x, dims, dtype=None):
    """x as a C-contiguous device array (outer, n, inner) reducing over ``dims``, in ``dtype`` (default: x's
    compute dtype); non-adjacent dims are permuted to the end and copied once (as on cpu)."""
    dtype = np.dtype(dtype) if dtype is not None else _cdt(x.dtype)
    nd = x.ndim
    if nd == 0:
        return _dev(x, dtype, (1, 1, 1))
    dims = sorted(dims)
    if dims == list(range(dims[0], dims[-1] + 1)):
        outer = math.prod(x.shape[:dims[0]])
        n = math.prod(x.shape[d] for d in dims)
        inner = math.prod(x.shape[dims[-1] + 1:])
        return _dev(x, dtype, (outer, n, inner))
    keep = [d for d in range(nd) if d not in dims]
    xp = x.transpose(keep + dims)
    outer = math.prod(x.shape[d] for d in keep)
    n = math.prod(x.shape[d] for d in dims)
    return _dev(xp, dtype, (outer, n, 1))


def _red(kname, compute=None):
    def impl(out, x, dim, keepdim=False, **kw):
        if out.size == 0:
            return out
        k = _kern("reduce")
        ct = _cdt(out.dtype) if compute == "out" else None
        x3 = _x3(x, dim, ct)
        with _target(out, shape=(x3.shape[0], x3.shape[2])) as o2:
            getattr(k, kname)(x3, o2, **kw)
        return out
    return impl


def _var_cuda(out, x, dim, correction=1, keepdim=False):
    if out.size == 0:
        return out
    x3 = _x3(x, dim, _cdt(out.dtype))
    with _target(out, shape=(x3.shape[0], x3.shape[2])) as o2:
        _kern("reduce").var(x3, o2, correction)
    return out


def _norm_cuda(out, x, dim, p=2.0, keepdim=False):
    if out.size == 0:
        return out
    x3 = _x3(x, dim, _cdt(out.dtype))
    with _target(out, shape=(x3.shape[0], x3.shape[2])) as o2:
        _kern("reduce").norm(x3, o2, float(p))
    return out


def _with_indices_cuda(kname):
    def impl(outs, x, dim, keepdim=False):
        values, indices = outs
        if values.size == 0:
            return outs
        d = tuple(dim) if x.ndim else ()
        x3 = _x3(x, d)
        shape = (x3.shape[0], x3.shape[2])
        vdt = _cdt(values.dtype) if values.dtype != np.bool_ else np.dtype(np.bool_)
        with _target(values, vdt, shape) as v, _target(indices, shape=shape) as i:
            getattr(_kern("reduce"), kname)(x3, v, i)
        return outs
    return impl


def _scan_cuda(kname):
    def impl(out, x, dim):
        if out.size == 0:
            return out
        from .rules import normalize_dims
        if x.ndim == 0:
            shape3 = (1, 1, 1)
        else:
            (d,) = normalize_dims("scan", dim, x.ndim)
            shape3 = (math.prod(x.shape[:d]), x.shape[d], math.prod(x.shape[d + 1:]))
        ct = _cdt(out.dtype)
        floats = ("softmax", "log_softmax", "logcumsumexp")
        x3 = _dev(x, ct if (x.dtype.kind == "f" or kname in floats) else x.dtype, shape3)
        mod = _kern("nn") if kname in ("softmax", "log_softmax") else _kern("reduce")
        with _target(out, shape=shape3) as o3:
            getattr(mod, kname)(x3, o3)
        return out
    return impl


def register_reduce():
    for name, kname, compute in [("sum", "sum_", None), ("prod", "prod", None), ("amax", "max_", None),
                                 ("amin", "min_", None), ("any", "any_", None), ("all", "all_", None),
                                 ("count_nonzero", "count_nonzero", None), ("argmax", "argmax", None),
                                 ("argmin", "argmin", None), ("logsumexp", "logsumexp", "out")]:
        _set(name, _red(kname, compute))
    _set("var", _var_cuda)
    _set("norm", _norm_cuda)
    _set("max_dim", _with_indices_cuda("max_with_indices"))
    _set("min_dim", _with_indices_cuda("min_with_indices"))
    for name in ("cumsum", "cumprod", "logcumsumexp", "softmax", "log_softmax"):
        _set(name, _scan_cuda(name))


# ================================================================== matmul

def _mat_operand(a, batch_shape, trans_ok=True):
    """(device array (B or 1, r, c), transposed) for one matmul operand already >= 2-D.

    A batch that broadcasts is materialized unless it is all ones; a last-two-dims transposed contiguous
    layout is passed as the transposed operand without a copy."""
    bc = _bc()
    B = math.prod(batch_shape)
    r, c = a.shape[-2], a.shape[-1]
    nb = a.ndim - 2
    own_batch = tuple(a.shape[:nb])
    if math.prod(own_batch) == 1 and B != 1:
        a = a.reshape(a.shape[nb:]) if a.is_c_contiguous() else a[(0,) * nb]
        own_batch = ()
    if own_batch and tuple((1,) * (len(batch_shape) - nb) + own_batch) != tuple(batch_shape):
        full = tuple(batch_shape) + (r, c)
        a = _as(_expand(a, full))
        own_batch = tuple(batch_shape)
    lead = math.prod(own_batch) if own_batch else 1
    if trans_ok and a.ndim >= 2:
        at = a.transpose(tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2))
        if at.is_c_contiguous() and not a.is_c_contiguous():
            return bc.flat(at).reshape(lead, c, r), True
    return _dev(a, None, (lead, r, c)), False


def _expand(a, shape):
    off = len(shape) - a.ndim
    st = [0] * off + [0 if (a.shape[i] == 1 and shape[off + i] != 1) else a.estrides[i] for i in range(a.ndim)]
    return a.as_strided(tuple(shape), tuple(st), a.offset)


def _matmul_cuda(out, a, b):
    if out.size == 0:
        return out
    bc = _bc()
    ct = _cdt(out.dtype)
    if a.dtype != ct:
        a = _as(a, ct)
    if b.dtype != ct:
        b = _as(b, ct)
    a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
    b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
    if a.ndim == 1 and not a.is_c_contiguous():
        a2 = _as(a).reshape(1, a.shape[0])
    if b.ndim == 1 and not b.is_c_contiguous():
        b2 = _as(b).reshape(b.shape[0], 1)
    M, K, N = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    from .rules import broadcast_shapes
    batch = tuple(broadcast_shapes("matmul", tuple(a2.shape[:-2]), tuple(b2.shape[:-2])))
    B = math.prod(batch)
    da, ta = _mat_operand(a2, batch)
    db, tb = _mat_operand(b2, batch)
    if K == 0:
        return _zero(out)
    with _target(out, shape=(B, M, N)) as o:
        _kern("matmul").matmul(da, db, o, trans_a=ta, trans_b=tb)
    del bc
    return out


def register_linalg():
    _set("matmul", _matmul_cuda)


# ================================================================== nn

def _pad3(t, fill):
    return (fill,) * (3 - len(t)) + tuple(t)


def _as5(a, dtype):
    """(N, C, *spatial) -> contiguous device array (N, C, D, H, W)."""
    sp = _pad3(a.shape[2:], 1)
    return _dev(a, dtype, tuple(a.shape[:2]) + sp)


def _geo(nsp, stride, padding, dilation):
    return _pad3(stride, 1), _pad3(padding, 0), _pad3(dilation, 1)


def _conv_cuda(out, x, w, b=None, *, stride, padding, dilation, groups):
    if out.size == 0:
        return out
    ct = _cdt(out.dtype)
    if x.size == 0 or w.size == 0:
        if b is None:
            return _zero(out)
        _bc().copy_into(out, b.reshape((1, -1) + (1,) * (out.ndim - 2)) if b.is_c_contiguous() else _as(b).reshape(
            (1, -1) + (1,) * (out.ndim - 2)))
        return out
    nsp = x.ndim - 2
    kn = _kern("nn")
    with _target(out, shape=tuple(out.shape[:2]) + _pad3(out.shape[2:], 1)) as o5:
        kn.conv_forward(_as5(x, ct), _as5(w, ct), o5, _dev(b, ct) if b is not None else None,
                        *_geo(nsp, stride, padding, dilation), groups)
    return out


def _convT_cuda(out, x, w, b=None, *, stride, padding, output_padding, dilation, groups):
    if out.size == 0:
        return out
    ct = _cdt(out.dtype)
    if x.size == 0 or w.size == 0:
        if b is None:
            return _zero(out)
        _bc().copy_into(out, _as(b).reshape((1, -1) + (1,) * (out.ndim - 2)))
        return out
    nsp = x.ndim - 2
    with _target(out, shape=tuple(out.shape[:2]) + _pad3(out.shape[2:], 1)) as o5:
        _kern("nn").conv_transpose(_as5(x, ct), _as5(w, ct), o5, _dev(b, ct) if b is not None else None,
                                   *_geo(nsp, stride, padding, dilation), groups)
    return out


def _wgrad_cuda(out, x, gy, *, weight_size, stride, padding, dilation, groups):
    if out.size == 0:
        return out
    if gy.size == 0 or x.size == 0:
        return _zero(out)
    ct = _cdt(out.dtype)
    nsp = x.ndim - 2
    with _target(out, shape=tuple(out.shape[:2]) + _pad3(out.shape[2:], 1)) as o5:
        _kern("nn").conv_weight_grad(_as5(x, ct), _as5(gy, ct), o5, *_geo(nsp, stride, padding, dilation), groups)
    return out


def _planes_shape(a):
    return (math.prod(a.shape[:-2]),) + tuple(a.shape[-2:])


def _maxpool_cuda(outs, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    out, idx = outs
    if out.size == 0:
        return outs
    with _target(out, shape=_planes_shape(out)) as o, _target(idx, shape=_planes_shape(idx)) as i:
        _kern("nn").max_pool2d(_dev(x, _cdt(x.dtype), _planes_shape(x)), o, i, kernel_size, stride, padding,
                               dilation)
    return outs


def _mpb_cuda(out, gy, idx, *, input_size):
    if out.size == 0:
        return out
    ct = _cdt(out.dtype)
    bc = _bc()
    tmp = bc.empty(out.shape, ct)
    bc.fill(tmp, 0)
    _kern("nn").max_pool2d_backward_scatter(_dev(gy, ct, _planes_shape(gy)), _dev(idx, None, _planes_shape(idx)),
                                            bc.flat(tmp).reshape(_planes_shape(out)))
    bc.copy_into(out, tmp)
    return out


def _mpg_cuda(out, gg, idx):
    if out.size == 0:
        return out
    with _target(out, shape=_planes_shape(out)) as o:
        _kern("nn").max_pool2d_gather(_dev(gg, _cdt(gg.dtype), _planes_shape(gg)),
                                      _dev(idx, None, _planes_shape(idx)), o)
    return out


def _avg_cuda(out, x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    if out.size == 0:
        return out
    with _target(out, shape=_planes_shape(out)) as o:
        _kern("nn").avg_pool2d(_dev(x, _cdt(x.dtype), _planes_shape(x)), o, kernel_size, stride, padding,
                               count_include_pad, divisor_override)
    return out


def _avgb_cuda(out, gy, *, input_size, kernel_size, stride, padding, ceil_mode, count_include_pad,
               divisor_override):
    if out.size == 0:
        return out
    with _target(out, shape=_planes_shape(out)) as o:
        _kern("nn").avg_pool2d_backward(_dev(gy, _cdt(gy.dtype), _planes_shape(gy)), o, kernel_size, stride, padding,
                                        count_include_pad, divisor_override)
    return out


def _aavg_cuda(out, x, *, output_size):
    if out.size == 0:
        return out
    with _target(out, shape=_planes_shape(out)) as o:
        _kern("nn").adaptive_avg_pool2d(_dev(x, _cdt(x.dtype), _planes_shape(x)), o)
    return out


def _aavgb_cuda(out, gy, *, input_size):
    if out.size == 0:
        return out
    if gy.size == 0:
        return _zero(out)
    with _target(out, shape=_planes_shape(out)) as o:
        _kern("nn").adaptive_avg_pool2d_backward(_dev(gy, _cdt(gy.dtype), _planes_shape(gy)), o)
    return out


def _amaxpool_cuda(outs, x, *, output_size):
    out, idx = outs
    if out.size == 0:
        return outs
    with _target(out, shape=_planes_shape(out)) as o, _target(idx, shape=_planes_shape(idx)) as i:
        _kern("nn").adaptive_max_pool2d(_dev(x, _cdt(x.dtype), _planes_shape(x)), o, i)
    return outs


def register_nn():
    for name, fn in [("convolution", _conv_cuda), ("conv_transpose", _convT_cuda),
                     ("convolution_weight_grad", _wgrad_cuda), ("max_pool2d_with_indices", _maxpool_cuda),
                     ("max_pool2d_backward", _mpb_cuda), ("max_pool2d_gather", _mpg_cuda), ("avg_pool2d", _avg_cuda),
                     ("avg_pool2d_backward", _avgb_cuda), ("adaptive_avg_pool2d", _aavg_cuda),
                     ("adaptive_avg_pool2d_backward", _aavgb_cuda), ("adaptive_max_pool2d", _amaxpool_cuda)]:
        _set(name, fn)


# ================================================================== indexing

def _bits(a):
    """float16 data viewed as uint16: the pure data-movement kernels move bits (no float16 arithmetic on the
    device, as the cpu kernels do)."""
    return a.view(np.uint16) if a.dtype == _F16 else a


def _checked(op, idx, n, dim=None):
    """idx (CudaArray of ints) -> contiguous int64 device array wrapped into [0, n); torch's IndexError."""
    bc = _bc()
    flat_in = _dev(idx, np.int64, (idx.size,))
    res = bc.empty((idx.size,), np.int64)
    out = bc.flat(res)
    bad = _kern("index").wrap_check(flat_in, int(n), out)
    if bad >= 0:
        v = int(flat_in[bad:bad + 1].copy_to_host()[0])
        where = f" for dimension {dim}" if dim is not None else ""
        raise IndexError(f"{op}: index {v} is out of bounds{where} with size {n}")
    return out


def _three_shape(shape, d):
    if not shape:
        return (1, 1, 1)
    return (math.prod(shape[:d]), shape[d], math.prod(shape[d + 1:]))


def _atomic_dt(op, dtype):
    k = _kern("index")
    dt = _cdt(dtype)
    if dt not in k.ATOMIC_DTYPES:
        raise NotImplementedError(f"{op}: accumulation on cuda supports int32/int64/float16/float32/float64 "
                                  f"(atomics), got {np.dtype(dtype).name}; convert first or use .cpu()")
    return dt


def _index_select_cuda(out, x, idx, dim):
    from .rules import normalize_dim
    d = normalize_dim("index_select", dim, x.ndim) if x.ndim else 0
    n = x.shape[d] if x.ndim else 1
    i = _checked("index_select", idx.reshape(-1) if idx.ndim else idx, n, d)
    if out.size == 0:
        return out
    with _target(_bits(out), shape=_three_shape(out.shape, d) if out.ndim else (1, 1, 1)) as o:
        _kern("index").index_select(_dev(_bits(x), None, _three_shape(x.shape, d)), i, o)
    return out


def _gather_cuda(out, x, idx, dim):
    from .rules import normalize_dim
    if x.ndim == 0:
        _checked("gather", idx, 1, 0)
        _bc().copy_into(out, x)
        return out
    d = normalize_dim("gather", dim, x.ndim)
    i = _checked("gather", idx, x.shape[d], d)
    if out.size == 0:
        return out
    xs = x[tuple(slice(0, s) if k != d else slice(None) for k, s in enumerate(idx.shape))]
    with _target(_bits(out), shape=_three_shape(out.shape, d)) as o:
        _kern("index").gather(_dev(_bits(xs), None, _three_shape(xs.shape, d)), i.reshape(_three_shape(idx.shape, d)),
                              o)
    return out


def _scatter_cuda(out, x, idx, src, dim, reduce=None, include_self=True):
    from .index import _REDUCE
    from .rules import normalize_dim
    if reduce not in _REDUCE:
        raise RuntimeError(f"scatter(): reduce argument must be one of {sorted(k for k in _REDUCE if k)}, "
                           f"got {reduce!r}")
    red = _REDUCE[reduce]
    bc = _bc()
    d = normalize_dim("scatter", dim, x.ndim) if x.ndim else 0
    n = x.shape[d] if x.ndim else 1
    i = _checked("scatter", idx, n, d)
    wdt = _atomic_dt("scatter_reduce", out.dtype) if red not in (None, "prod") else _cdt(out.dtype)
    w = bc.empty(out.shape, wdt)
    bc.copy_into(w, x)
    if idx.size:
        if isinstance(src, bc.CudaArray) and src.ndim:
            s = _as(src[tuple(slice(0, e) for e in idx.shape)], wdt)
        else:
            s = bc.empty(idx.shape, wdt)
            if isinstance(src, bc.CudaArray):
                bc.copy_into(s, src)
            else:
                bc.fill(s, src)
        sl = tuple(slice(0, e) if k != d else slice(None) for k, e in enumerate(idx.shape))
        sub = w[sl] if x.ndim else w
        subc = _as(sub)
        sh_w = _three_shape(subc.shape, d)
        sh_i = _three_shape(tuple(idx.shape), d)
        wk, ik, sk = bc.flat(subc).reshape(sh_w), i.reshape(sh_i), bc.flat(s).reshape(sh_i)
        k = _kern("index")
        if red is None:
            k.scatter(wk, ik, sk)
        elif red == "prod":  # no atomic multiply: a gathering kernel (kernels/cuda/gaps.py)
            res = bc.empty(subc.shape, wdt)
            _kern("gaps").scatter_prod(wk, ik, sk, include_self, bc.flat(res).reshape(sh_w))
            bc.copy_into(subc, res)
        else:
            k.scatter_reduce(wk, ik, sk, "sum" if red == "sum" else red, include_self)
        if subc is not sub:
            bc.copy_into(sub, subc)
    bc.copy_into(out, w)
    return out


def _index_add_cuda(out, x, idx, src, dim, alpha=1):
    from .rules import normalize_dim
    bc = _bc()
    d = normalize_dim("index_add", dim, x.ndim) if x.ndim else 0
    n = x.shape[d] if x.ndim else 1
    i = _checked("index_add", idx.reshape(-1) if idx.ndim else idx, n, d)
    wdt = _atomic_dt("index_add", out.dtype)
    w = bc.empty(out.shape, wdt)
    bc.copy_into(w, x)
    if i.shape[0] and src.size:
        _kern("index").index_add(bc.flat(w).reshape(_three_shape(w.shape, d)), i,
                                 _dev(src, wdt, _three_shape(src.shape, d)), alpha)
    bc.copy_into(out, w)
    return out


def _take_cuda(out, x, idx):
    i = _checked("take", idx, x.size)
    if out.size:
        with _target(_bits(out), _bits(out).dtype, (out.size,)) as o:
            _kern("index").take(_dev(_bits(x), None, (x.size,)), i, o)
    return out


def _rows(op, x, idx, dims):
    """(table (V, D) CudaArray, rows device array, broadcast index shape, rest dims) as the cpu _prepare_rows."""
    bc = _bc()
    nd = x.ndim
    rest = [d for d in range(nd) if d not in dims]
    table = _as(x.transpose(list(dims) + rest))
    from .rules import broadcast_shapes
    b = tuple(broadcast_shapes(op, *[tuple(i.shape) for i in idx]))
    R = math.prod(b)
    stacked = bc.empty((len(idx), R), np.int64)
    for k, (i, d) in enumerate(zip(idx, dims)):
        c = _checked(op, _expand(i, b) if tuple(i.shape) != b else i, x.shape[d], d)
        bc.copy_into(stacked[k], bc.CudaArray(c, (R,), (1,), 0, np.int64))
    rows = bc.empty((R,), np.int64)
    sizes = bc.from_host(np.array([x.shape[d] for d in dims], np.int64))
    _kern("index").flat_rows(bc.flat(stacked).reshape(len(idx), R), bc.flat(sizes), bc.flat(rows))
    V = math.prod(x.shape[d] for d in dims)
    D_ = math.prod(x.shape[d] for d in rest)
    return table.reshape(V, D_), bc.flat(rows), b, rest


def _index_cuda(out, x, *idx, dims):
    bc = _bc()
    ob = _bits(out)
    table, rows, b, rest = _rows("index", _bits(x), idx, dims)
    res = bc.empty((rows.shape[0], table.shape[1]), table.dtype)
    if res.size:
        _kern("index").index_rows(bc.flat(table).reshape(table.shape), rows, bc.flat(res).reshape(res.shape))
    res = res.reshape(tuple(b) + tuple(x.shape[d] for d in rest))
    adjacent = list(dims) == list(range(dims[0], dims[0] + len(dims)))
    if adjacent and dims[0] > 0:
        nb = len(b)
        lead = list(range(nb, nb + dims[0]))
        res = res.transpose(lead + list(range(nb)) + list(range(nb + dims[0], res.ndim)))
    bc.copy_into(ob, res)
    return out


def _index_put_cuda(out, x, values, *idx, dims, accumulate=False):
    bc = _bc()
    from .index import _index_shape
    table, rows, b, rest = _rows("index_put", x, idx, dims)
    if table.buffer is x.buffer:  # _rows returns x's own memory when it is contiguous: scatter into a copy
        table = table.copy()
    wdt = _atomic_dt("index_put(accumulate=True)", table.dtype) if accumulate else table.dtype
    if table.dtype != wdt:
        table = _as(table, wdt)
    target_shape = _index_shape(x.shape, *[tuple(i.shape) for i in idx], dims=dims)
    vals = bc.empty(target_shape, wdt)
    if isinstance(values, bc.CudaArray):
        bc.copy_into(vals, values)
    else:
        bc.fill(vals, values)
    # float16 rows move as bits; out receives them as bits too
    table, vals, wdt = _bits(table), _bits(vals), _bits(vals).dtype
    ob = _bits(out) if table.dtype == np.uint16 else out  # accumulation ran in float32: convert on the copy
    adjacent = list(dims) == list(range(dims[0], dims[0] + len(dims)))
    nb = len(b)
    if adjacent and dims[0] > 0:
        perm = list(range(dims[0], dims[0] + nb)) + list(range(dims[0])) + list(range(dims[0] + nb, vals.ndim))
        vals = vals.transpose(perm)
    if rows.shape[0] and table.shape[1]:
        _kern("index").scatter_rows(bc.flat(table).reshape(table.shape), rows,
                                    _dev(vals, wdt, (rows.shape[0], table.shape[1])), accumulate)
    nd = x.ndim
    perm = list(dims) + rest
    inv = [perm.index(i) for i in range(nd)]
    bc.copy_into(ob, table.reshape([x.shape[d] for d in perm]).transpose(inv))
    return out


def _broadcast_pair(x, m):
    from .rules import broadcast_shapes
    shape = tuple(broadcast_shapes("masked_select", tuple(x.shape), tuple(m.shape)))
    return _expand(x, shape), _expand(m, shape), shape


def _masked_select_cuda(out, x, mask):
    bc = _bc()
    xb, mb, shape = _broadcast_pair(x, mask)
    n = math.prod(shape)
    xf, mf = _dev(_bits(xb), None, (n,)), _dev(mb, None, (n,))
    ranks = bc.empty((n + 1,), np.int64)
    k = _kern("index")
    cnt = k.exclusive_ranks(mf, bc.flat(ranks))
    res = bc.empty((cnt,), x.dtype)
    if cnt:
        k.masked_select(xf, mf, bc.flat(ranks), bc.flat(_bits(res)))
    return res


def _masked_scatter_cuda(out, x, mask, source):
    bc = _bc()
    shape = tuple(out.shape)
    n = out.size
    mb = _expand(mask, shape) if tuple(mask.shape) != shape else mask
    mf = _dev(mb, None, (n,))
    ranks = bc.empty((n + 1,), np.int64)
    k = _kern("index")
    cnt = k.exclusive_ranks(mf, bc.flat(ranks))
    if cnt > source.size:
        raise RuntimeError(f"masked_scatter: expected source to have at least {cnt} elements (the number of True "
                           f"values in mask), got {source.size}")
    w = bc.empty(shape, out.dtype)
    bc.copy_into(w, x)
    if cnt:
        k.masked_scatter(bc.flat(_bits(w)), mf, bc.flat(ranks), _dev(_bits(_as(source, out.dtype)), None,
                                                                     (source.size,)))
    bc.copy_into(out, w)
    return out


def _nonzero_cuda(out, x):
    bc = _bc()
    n = x.size
    xf = _dev(x, _cdt(x.dtype), (n,))
    ranks = bc.empty((n + 1,), np.int64)
    k = _kern("index")
    cnt = k.exclusive_ranks(xf, bc.flat(ranks))
    res = bc.empty((cnt, x.ndim), np.int64)
    if cnt and x.ndim:
        k.nonzero(xf, tuple(x.shape), bc.flat(ranks), bc.flat(res).reshape(cnt, x.ndim))
    return res


def _sort_cuda(outs, x, dim=-1, descending=False, stable=True):
    return _sorted(outs, x, dim, descending, None)


def _topk_cuda(outs, x, k, dim=-1, largest=True, sorted=True):
    return _sorted(outs, x, dim, largest, int(k))


def _sorted(outs, x, dim, descending, k):
    from .rules import normalize_dim
    bc = _bc()
    values, indices = outs
    if values.size == 0:
        return outs
    nd = x.ndim
    d = normalize_dim("sort", dim, nd) if nd else 0
    perm = [i for i in range(nd) if i != d] + [d]
    xm = x.transpose(perm) if nd else x
    n = x.shape[d] if nd else 1
    rows = x.size // max(n, 1)
    ct = _cdt(x.dtype)
    x2 = _dev(xm, ct, (rows, n))
    kk = n if k is None else k
    v = bc.empty((rows, kk), ct)
    i = bc.empty((rows, kk), np.int64)
    ks = _kern("sort")
    if k is None:
        ks.sort(x2, bc.flat(v).reshape(rows, kk), bc.flat(i).reshape(rows, kk), bool(descending))
    else:
        ks.topk(x2, kk, bool(descending), bc.flat(v).reshape(rows, kk), bc.flat(i).reshape(rows, kk))
    mshape = tuple(xm.shape[:-1]) + (kk,) if nd else ()
    inv = [perm.index(j) for j in range(nd)]
    vv, ii = v.reshape(mshape), i.reshape(mshape)
    if nd:
        vv, ii = vv.transpose(inv), ii.transpose(inv)
    bc.copy_into(values, vv)
    bc.copy_into(indices, ii)
    return outs


def _flip_cuda(out, x, dims):
    from .rules import normalize_dim
    key = [slice(None)] * x.ndim
    for d in dims:
        key[normalize_dim("flip", d, x.ndim)] = slice(None, None, -1)
    _bc().copy_into(out, x[tuple(key)] if x.ndim else x)  # a negative-stride view, copied once
    return out


def _roll_cuda(out, x, shifts, dims):
    from .rules import normalize_dim
    bc = _bc()
    if not dims:
        n = x.size
        flat_x = _as(x).reshape(n)
        res = bc.empty((n,), x.dtype)
        if n:
            s = shifts[0] % n
            bc.copy_into(res[s:], flat_x[:n - s])
            if s:
                bc.copy_into(res[:s], flat_x[n - s:])
        bc.copy_into(out, res.reshape(x.shape))
        return out
    cur = x
    for sh, d in zip(shifts, dims):
        d = normalize_dim("roll", d, x.ndim)
        n = x.shape[d]
        nxt = bc.empty(x.shape, x.dtype)
        if n and nxt.size:
            s = sh % n
            pre = (slice(None),) * d
            bc.copy_into(nxt[pre + (slice(s, None),)], cur[pre + (slice(0, n - s),)])
            if s:
                bc.copy_into(nxt[pre + (slice(0, s),)], cur[pre + (slice(n - s, None),)])
        cur = nxt
    bc.copy_into(out, cur)
    return out


def _tri_cuda(lower):
    def impl(out, x, diagonal=0):
        if out.size == 0:
            return out
        shape3 = (x.size // (x.shape[-2] * x.shape[-1]), x.shape[-2], x.shape[-1])
        with _target(out, shape=shape3) as o:
            _kern("index").tri(_dev(x, _cdt(x.dtype), shape3), o, int(diagonal), lower)
        return out
    return impl


def _searchsorted_cuda(out, seq, values, right=False):
    if out.size == 0:
        return out
    bc = _bc()
    if not isinstance(values, bc.CudaArray):
        raise NotImplementedError("searchsorted on cuda takes a tensor of values; wrap the scalar with "
                                  "jitorch.tensor(..., device='cuda')")
    dt = np.dtype(np.float64) if (seq.dtype.kind == "f" or values.dtype.kind == "f") else np.dtype(np.int64)
    n = seq.shape[-1] if seq.ndim else 1
    if seq.ndim <= 1:
        s2 = _dev(seq, dt, (1, n))
        v2 = _dev(values, dt, (1, values.size))
    else:
        m = values.shape[-1]
        s2 = _dev(seq, dt, (seq.size // n, n))
        v2 = _dev(values, dt, (values.size // m, m))
    with _target(out, shape=tuple(v2.shape)) as o:
        _kern("sort").searchsorted(s2, v2, bool(right), o)
    return out


def _select_cuda(which):
    def impl(outs, x, dim=-1, keepdim=False, k=None):
        from .rules import normalize_dim
        bc = _bc()
        values, indices = outs
        nd = x.ndim
        d = normalize_dim(which, dim, nd) if nd else 0
        xm = x.transpose([i for i in range(nd) if i != d] + [d]) if nd else x
        n = x.shape[d] if nd else 1
        rows = x.size // n
        ks = _kern("sort")
        op = {"kthvalue": ks.KTH, "median": ks.MEDIAN, "nanmedian": ks.NANMEDIAN, "mode": ks.MODE}[which]
        ct = _cdt(x.dtype)
        v = bc.empty((rows,), ct)
        i = bc.empty((rows,), np.int64)
        ks.select(_dev(xm, ct, (rows, n)), op, (int(k) - 1) if k is not None else 0, bc.flat(v), bc.flat(i))
        bc.copy_into(values, v.reshape(values.shape))
        bc.copy_into(indices, i.reshape(indices.shape))
        return outs
    return impl


def register_index():
    for name, fn in [("index_select", _index_select_cuda), ("gather", _gather_cuda), ("scatter", _scatter_cuda),
                     ("index_add", _index_add_cuda), ("take", _take_cuda), ("index", _index_cuda),
                     ("index_put", _index_put_cuda), ("masked_select", _masked_select_cuda),
                     ("masked_scatter", _masked_scatter_cuda), ("nonzero", _nonzero_cuda), ("sort", _sort_cuda),
                     ("topk", _topk_cuda), ("flip", _flip_cuda), ("roll", _roll_cuda), ("tril", _tri_cuda(True)),
                     ("triu", _tri_cuda(False)), ("searchsorted", _searchsorted_cuda),
                     ("kthvalue", _select_cuda("kthvalue")), ("median_dim", _select_cuda("median")),
                     ("nanmedian_dim", _select_cuda("nanmedian")), ("mode_dim", _select_cuda("mode"))]:
        _set(name, fn)
    register_gaps()


def _repeat_interleave_cuda(out, x, repeats, dim):
    """The gather index is built on the device (running sum + binary search); the total (the output
    size) and the minimum of the repeats are read back, as torch does."""
    from .rules import normalize_dim
    bc = _bc()
    d = normalize_dim("repeat_interleave", dim, x.ndim)
    n = x.shape[d]
    if isinstance(repeats, bc.CudaArray):
        r = _as(repeats, np.int64)
        if r.size == 1 and n != 1:
            rr = bc.empty((n,), np.int64)
            bc.copy_into(rr, r.reshape(()))
            r = rr
    else:
        r = bc.empty((n,), np.int64)
        bc.fill(r, int(np.asarray(repeats).reshape(-1)[0]) if np.asarray(repeats).size else 0)
    r = r.reshape((n,))
    cs = bc.empty((n,), np.int64)
    total = 0
    if n:
        kr = _kern("reduce")
        kr.cumsum(bc.flat(r).reshape(1, n, 1), bc.flat(cs).reshape(1, n, 1))
        mn = bc.empty((1,), np.int64)
        kr.min_(bc.flat(r).reshape(1, n, 1), bc.flat(mn).reshape(1, 1))
        if int(bc.to_host(mn)[0]) < 0:
            raise RuntimeError("repeat_interleave: repeats can not be negative")
        total = int(bc.to_host(cs[n - 1:n])[0])
    res = bc.empty(tuple(x.shape[:d]) + (total,) + tuple(x.shape[d + 1:]), x.dtype)
    if res.size:
        idx = bc.empty((total,), np.int64)
        _kern("gaps").repeat_index(bc.flat(cs), bc.flat(idx))
        xs = _bits(x)
        with _target(_bits(res), shape=_three_shape(res.shape, d)) as o:
            _kern("index").index_select(_dev(xs, None, _three_shape(xs.shape, d)), bc.flat(idx), o)
    return res


def _unique_cuda(outs, x, sorted=True, return_inverse=False, return_counts=False):
    """Sort (the bitonic kernel), flag group starts, running sum, scatter; the group count is read back."""
    bc = _bc()
    n = x.size
    ct = _cdt(x.dtype)
    inv = bc.empty(tuple(x.shape), np.int64)
    if n == 0:
        return bc.empty((0,), x.dtype), inv, bc.empty((0,), np.int64)
    v = bc.empty((1, n), ct)
    perm = bc.empty((1, n), np.int64)
    _kern("sort").sort(_dev(x, ct, (1, n)), bc.flat(v).reshape(1, n), bc.flat(perm).reshape(1, n), False)
    vf, pf = bc.flat(v), bc.flat(perm)
    flags = bc.empty((n,), np.int64)
    groups = bc.empty((n,), np.int64)
    kg = _kern("gaps")
    kg.unique_flags(vf, bc.flat(flags))
    _kern("reduce").cumsum(bc.flat(flags).reshape(1, n, 1), bc.flat(groups).reshape(1, n, 1))
    u = int(bc.to_host(groups[n - 1:n])[0])
    vals = bc.empty((n,), ct)
    starts = bc.empty((n,), np.int64)
    kg.unique_scatter(vf, pf, bc.flat(flags), bc.flat(groups), bc.flat(vals), bc.flat(starts), bc.flat(inv))
    cnt = bc.empty((u,), np.int64)
    kg.unique_counts(bc.flat(starts), u, n, bc.flat(cnt))
    uv = bc.empty((u,), x.dtype)
    bc.copy_into(uv, vals[0:u])
    return uv, inv, cnt


def register_gaps():
    """unique and repeat_interleave (index.py registers them; called from register_index)."""
    _set("repeat_interleave", _repeat_interleave_cuda)
    _set("unique", _unique_cuda)


# ================================================================== random

def _cuda_gen(generator, out):
    """The generator of a draw into cuda array ``out`` (its device's default one when None)."""
    from .._device import device
    from .random import _gen_for
    return _gen_for(generator, device("cuda", 0))


def _draw(out, generator, fn, *args, dtype=None):
    """Run random launcher ``fn`` into out (in ``dtype``, default its compute dtype) and advance the generator.
    Everything runs on the device: the launcher gets a draw key (two integers), never host numbers."""
    g = _cuda_gen(generator, out)
    if out.size == 0:
        return out
    seed, offset = g._take(out.size)
    kr = _kern("random")
    with _target(out, dtype, (out.size,)) as o:
        getattr(kr, fn)(o, kr.key(seed, offset, out.size), *args)
    return out


def _uniform_cuda(out, size=(), dtype=None, low=0.0, high=1.0, generator=None, device=None):
    if out.dtype == _F16:
        high = low + (high - low) * (1.0 - 2.0 ** -12)
    return _draw(out, generator, "uniform", float(low), float(high))


def _normal_cuda(out, size=(), dtype=None, mean=0.0, std=1.0, generator=None, device=None):
    return _draw(out, generator, "normal", float(mean), float(std))


def _randint_cuda(out, size=(), dtype=None, low=0, high=2, generator=None, device=None):
    dt = np.dtype(np.int64) if out.dtype in (np.bool_, _F16) else out.dtype
    return _draw(out, generator, "randint", int(low), int(high), dtype=dt)


def _randperm_cuda(out, n=0, dtype=None, generator=None, device=None):
    """Random 63-bit keys sorted on the device with their indices (kernels/cuda/random.py ``randperm``)."""
    return _draw(out, generator, "randperm", dtype=np.int64)


def _bernoulli_cuda(out, p, generator=None):
    return _draw(out, generator, "bernoulli", _dev(p, np.float64, (p.size,)))


def _bernoulli_p_cuda(out, size=(), p=0.5, dtype=None, generator=None, device=None):
    return _draw(out, generator, "bernoulli_scalar", float(p))


def _dropout_mask_cuda(out, size=(), p=0.5, dtype=None, generator=None, device=None):
    return _draw(out, generator, "dropout_mask", float(p))


def _exponential_cuda(out, size=(), dtype=None, lambd=1.0, generator=None, device=None):
    return _draw(out, generator, "exponential", float(lambd))


def _multinomial_cuda(out, probs, num_samples=1, replacement=False, generator=None):
    """One thread per row (kernels/cuda/gaps.py); the generator advances by out.size as the other draws.
    Same distribution as the cpu op, not the same numbers (cpu uses Philox, the device xoroshiro128+)."""
    bc = _bc()
    g = _cuda_gen(generator, out)
    if out.size == 0:
        return out
    k = probs.shape[-1]
    rows = probs.size // k
    seed, offset = g._take(out.size)
    p2 = _dev(probs, np.float64, (rows, k))
    work = bc.empty((rows, k), np.float64)
    with _target(out, np.int64, (rows, int(num_samples))) as o:
        _kern("gaps").multinomial(p2, int(num_samples), bool(replacement),
                                  _kern("random").states(seed, offset, rows, nthreads=rows),
                                  bc.flat(work).reshape(rows, k), o)
    return out


def register_random():
    _set("multinomial", _multinomial_cuda)
    for name, fn in [("uniform", _uniform_cuda), ("normal", _normal_cuda), ("randint", _randint_cuda),
                     ("randperm", _randperm_cuda),
                     ("bernoulli", _bernoulli_cuda), ("bernoulli_p", _bernoulli_p_cuda),
                     ("dropout_mask", _dropout_mask_cuda), ("exponential", _exponential_cuda)]:
        _set(name, fn)

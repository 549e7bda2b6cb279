"""View primitives: outputs alias their input's storage (no kernel runs).

A small set (tinygrad's movement family): ``view``, ``permute``, ``expand``, ``slice``,
``select``, ``unsqueeze``, ``squeeze``, ``diagonal``, ``as_strided``. transpose, t, narrow,
flatten, unbind, split, chunk and basic indexing are compositions of these. Their shape rules
raise torch's errors; their impls build NumPy views.
"""
from __future__ import annotations

import math
from functools import partial
from operator import itemgetter, methodcaller

import numpy as np
from numpy.lib.stride_tricks import as_strided as _np_as_strided

from .. import _dtype as D
from .. import _pool
from .registry import OPS, OpDef, register
from .rules import normalize_dim


def infer_size(op, shape, numel):
    """Resolve one -1 in ``shape`` against ``numel``; errors as torch words them."""
    if -1 not in shape and math.prod(shape) == numel and min(shape, default=0) >= 0:
        return tuple(shape)
    shape = tuple(int(s) for s in shape)
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred (got shape {list(shape)})")
    for s in shape:
        if s < -1:
            raise RuntimeError(f"{op}: invalid shape dimension {s} in {list(shape)}")
    known = math.prod(s for s in shape if s != -1)
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def view_strides(shape, strides, new_shape):
    """Strides for viewing (shape, strides) as new_shape without a copy, or None (torch's computeStride)."""
    if math.prod(shape) == 0 or not shape:
        st, acc = [], 1
        for n in reversed(new_shape):
            st.append(acc)
            acc *= max(n, 1)
        return tuple(reversed(st))
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base_stride = strides[-1]
    tensor_numel = 1
    view_numel = 1
    for tensor_d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[tensor_d]
        if tensor_d == 0 or (shape[tensor_d - 1] != 1 and strides[tensor_d - 1] != tensor_numel * chunk_base_stride):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base_stride = strides[tensor_d - 1]
                tensor_numel = 1
                view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


def _same_dtype(x, **attrs):
    return x.dtype


def _view_shape(shape, size):
    return infer_size("view", size, math.prod(shape))


def _view_impl(out, x, size):
    new_shape = infer_size("view", size, x.size)
    if x.flags.c_contiguous:
        return x.reshape(new_shape)  # always a view for C-contiguous memory (and ~10x cheaper)
    st = view_strides(x.shape, tuple(s // x.itemsize for s in x.strides), new_shape)
    if st is None:
        raise RuntimeError(
            f"view size is not compatible with input tensor's size and stride (shape {list(x.shape)}, "
            f"strides {[s // x.itemsize for s in x.strides]}): at least one dimension spans across two contiguous "
            "subspaces. Use .reshape(...) instead."
        )
    return _as_strided(x, new_shape, tuple(s * x.itemsize for s in st))


def _permute_shape(shape, dims):
    nd = len(shape)
    dims = tuple(normalize_dim("permute", d, nd) for d in dims)
    if len(dims) != nd or sorted(dims) != list(range(nd)):
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the length of the desired "
            f"ordering of dimensions i.e. input.dim() = {nd} is not equal to len(dims) = {len(dims)}"
            if len(dims) != nd else f"permute: repeated dim in {list(dims)}"
        )
    return tuple(shape[d] for d in dims)


def _permute_impl(out, x, dims):
    dims = tuple(normalize_dim("permute", d, x.ndim) for d in dims)
    return x.transpose(dims) if x.ndim else x


def _expand_shape(shape, size):
    size = tuple(int(s) for s in size)
    if len(size) < len(shape):
        raise RuntimeError(
            f"expand: the number of sizes provided ({len(size)}) must be greater or equal to the number of "
            f"dimensions in the tensor ({len(shape)})"
        )
    off = len(size) - len(shape)
    out = []
    for i, s in enumerate(size):
        if i < off:
            if s < 0:
                raise RuntimeError(f"expand: the expanded size of the tensor (-1) isn't allowed in a leading, non-existing dimension {i}")
            out.append(s)
            continue
        cur = shape[i - off]
        if s == -1:
            out.append(cur)
        elif cur == s or cur == 1:
            out.append(s)
        else:
            raise RuntimeError(
                f"expand: the expanded size of the tensor ({s}) must match the existing size ({cur}) at non-singleton "
                f"dimension {i}.  Target sizes: {list(size)}.  Tensor sizes: {list(shape)}"
            )
    return tuple(out)


def _expand_impl(out, x, size):
    shape = _expand_shape(x.shape, size)
    off = len(shape) - x.ndim
    st = [0] * off + [0 if (x.shape[i] == 1 and shape[off + i] != 1) else x.strides[i] for i in range(x.ndim)]
    # writable like torch's expand (in-place writes into overlapping memory are rejected by dispatch)
    return _as_strided(x, shape, st)


def _slice_norm(n, start, stop, step):
    if step <= 0:
        raise ValueError("slice: step must be greater than zero (negative steps are not supported; use flip)")
    s, e, _ = slice(start, stop, step).indices(n)
    return s, max(e, s)


def _slice_shape(shape, dim, start, stop, step):
    d = normalize_dim("slice", dim, len(shape))
    s, e = _slice_norm(shape[d], start, stop, step)
    return shape[:d] + (len(range(s, e, step)),) + shape[d + 1:]


def _slice_impl(out, x, dim, start, stop, step):
    d = normalize_dim("slice", dim, x.ndim)
    s, e = _slice_norm(x.shape[d], start, stop, step)
    idx = (slice(None),) * d + (slice(s, e, step),)
    return x[idx]


def _select_shape(shape, dim, index):
    if not shape:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = normalize_dim("select", dim, len(shape))
    n = shape[d]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(shape)} at dimension {d}")
    return shape[:d] + shape[d + 1:]


def _select_impl(out, x, dim, index):
    _select_shape(x.shape, dim, index)
    d = normalize_dim("select", dim, x.ndim)
    # the trailing Ellipsis keeps a 0-d result a view (x[i] on a 1-D array would be a copied scalar)
    return x[(slice(None),) * d + (index, Ellipsis)]


def _unsqueeze_shape(shape, dim):
    d = normalize_dim("unsqueeze", dim, len(shape) + 1)
    return shape[:d] + (1,) + shape[d:]


def _unsqueeze_impl(out, x, dim):
    d = normalize_dim("unsqueeze", dim, x.ndim + 1)
    return np.expand_dims(x, d)


def _squeeze_dims(shape, dim):
    if dim is None:
        return tuple(i for i, n in enumerate(shape) if n == 1)
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    ds = {normalize_dim("squeeze", d, len(shape)) for d in dims}
    return tuple(d for d in sorted(ds) if d < len(shape) and shape[d] == 1)


def _squeeze_shape(shape, dim=None):
    drop = set(_squeeze_dims(shape, dim))
    return tuple(n for i, n in enumerate(shape) if i not in drop)


def _squeeze_impl(out, x, dim=None):
    drop = _squeeze_dims(x.shape, dim)
    return np.squeeze(x, axis=drop) if drop else x[...]


def _diagonal_shape(shape, offset=0, dim1=0, dim2=1):
    nd = len(shape)
    d1, d2 = normalize_dim("diagonal", dim1, nd), normalize_dim("diagonal", dim2, nd)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    n1, n2 = shape[d1], shape[d2]
    n = max(0, min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2))
    rest = tuple(s for i, s in enumerate(shape) if i not in (d1, d2))
    return rest + (n,)


def _diagonal_impl(out, x, offset=0, dim1=0, dim2=1):
    # np.diagonal returns a read-only view; torch's diagonal is writable, so build it with strides
    d1, d2 = normalize_dim("diagonal", dim1, x.ndim), normalize_dim("diagonal", dim2, x.ndim)
    shape = _diagonal_shape(x.shape, offset, dim1, dim2)
    start = [0] * x.ndim
    if shape[-1] > 0:
        if offset >= 0:
            start[d2] = offset
        else:
            start[d1] = -offset
        base = x[tuple(slice(s, None) for s in start)]
    else:
        base = x
    rest = [x.strides[i] for i in range(x.ndim) if i not in (d1, d2)]
    return _as_strided(base, shape, tuple(rest) + (x.strides[d1] + x.strides[d2],))


def _as_strided_shape(shape, size, stride, storage_offset=0):
    return tuple(size)


def _as_strided_impl(out, x, size, stride, storage_offset=0):
    # bounds are checked against the base storage by the frontend (Tensor.as_strided)
    base = x
    ptr = x.__array_interface__["data"][0] + storage_offset * x.itemsize
    arr = np.ndarray(tuple(size), x.dtype, buffer=_base_buffer(base), offset=ptr - _buffer_ptr(base),
                     strides=tuple(s * x.itemsize for s in stride))
    return arr


def _base_buffer(a):
    return _pool.storage_of(a)


def _as_strided(x, shape, strides):
    """A view of ``x``'s memory with ``shape`` and byte ``strides``, starting at x's first element, built over
    x's storage so its base chain ends there: storage_offset(), as_strided's bounds and trace aliasing see the
    real storage (NumPy's as_strided hides it behind a wrapper object, so diagonal/expand views reported
    storage_offset() 0)."""
    buf = _base_buffer(x)
    off = x.__array_interface__["data"][0] - buf.__array_interface__["data"][0]
    try:
        return np.ndarray(tuple(shape), x.dtype, buffer=buf, offset=off, strides=tuple(strides))
    except (TypeError, ValueError):  # a storage NumPy cannot take as a buffer (not contiguous): the old way
        return _np_as_strided(x, shape, strides)


def _buffer_ptr(a):
    return _base_buffer(a).__array_interface__["data"][0]


def _cuda_view(name):
    def impl(out, x, **attrs):
        # metadata only: a CudaArray over the same device buffer (jitorch/backends/cuda.py)
        from ..backends import cuda as _cuda
        return _cuda.view_impl(name)(out, x, **attrs)
    return impl


def _ref_view(x, size):
    return x.reshape(infer_size("view", size, x.size))


for _name, _shape, _impl, _ref, _doc in [
    ("view", _view_shape, _view_impl, _ref_view, "same data, new shape (one dim may be -1); needs compatible strides"),
    ("permute", _permute_shape, _permute_impl, lambda x, dims: np.transpose(x, dims), "reorder dims"),
    ("expand", _expand_shape, _expand_impl, lambda x, size: np.broadcast_to(x, _expand_shape(x.shape, size)),
     "broadcast size-1 dims with stride 0 (-1 keeps a dim)"),
    ("slice", _slice_shape, _slice_impl, lambda x, dim, start, stop, step: _slice_impl(None, x, dim, start, stop, step),
     "x[start:stop:step] along dim (step > 0)"),
    ("select", _select_shape, _select_impl, lambda x, dim, index: _select_impl(None, x, dim, index),
     "x[index] along dim, dropping it"),
    ("unsqueeze", _unsqueeze_shape, _unsqueeze_impl, lambda x, dim: _unsqueeze_impl(None, x, dim), "insert a size-1 dim"),
    ("squeeze", _squeeze_shape, _squeeze_impl, lambda x, dim=None: _squeeze_impl(None, x, dim), "drop size-1 dims"),
    ("diagonal", _diagonal_shape, _diagonal_impl, lambda x, offset=0, dim1=0, dim2=1: np.diagonal(x, offset, dim1, dim2),
     "diagonal of dims dim1, dim2, appended as the last dim"),
    ("as_strided", _as_strided_shape, _as_strided_impl, None, "raw view with explicit sizes/strides (checked)"),
]:
    register(OpDef(name=_name, shape_rule=_shape, dtype_rule=_same_dtype, reference=_ref,
                   impl={"cpu": _impl, "cuda": _cuda_view(_name)},
                   tags=frozenset({"view", "movement"}), doc=_doc))

_ = D  # dtype module kept for rules that need it


# ---------------------------------------------------------------- dispatch plans (cpu)
# plan(shapes, dtypes, contiguous, **attrs) -> fn(x) returning the view of array x: dims and index
# tuples are normalized once per signature (after the shape rule validated it), see
# registry.OpDef.plan. Most are C-level callables (itemgetter/methodcaller): no Python frame per call.

def _plan_view(shapes, dtypes, contiguous, size):
    if not contiguous[0]:
        return None  # the impl checks the strides on every call
    return methodcaller("reshape", infer_size("view", size, math.prod(shapes[0])))


def _plan_select(shapes, dtypes, contiguous, dim, index):
    # the trailing Ellipsis keeps a 0-d result a view
    return itemgetter((slice(None),) * normalize_dim("select", dim, len(shapes[0])) + (index, Ellipsis))


def _plan_slice(shapes, dtypes, contiguous, dim, start, stop, step):
    d = normalize_dim("slice", dim, len(shapes[0]))
    s, e = _slice_norm(shapes[0][d], start, stop, step)
    return itemgetter((slice(None),) * d + (slice(s, e, step),))


def _plan_unsqueeze(shapes, dtypes, contiguous, dim):
    return itemgetter((slice(None),) * normalize_dim("unsqueeze", dim, len(shapes[0]) + 1) + (None, Ellipsis))


def _plan_permute(shapes, dtypes, contiguous, dims):
    if not shapes[0]:
        return None
    return methodcaller("transpose", tuple(normalize_dim("permute", d, len(shapes[0])) for d in dims))


def _plan_squeeze(shapes, dtypes, contiguous, dim=None):
    drop = _squeeze_dims(shapes[0], dim)
    if not drop:
        return itemgetter(Ellipsis)
    return partial(np.squeeze, axis=drop)


for _name, _plan in (("view", _plan_view), ("select", _plan_select), ("slice", _plan_slice),
                     ("unsqueeze", _plan_unsqueeze), ("permute", _plan_permute), ("squeeze", _plan_squeeze)):
    OPS[_name].plan = _plan


# ---------------------------------------------------------------------------------------------------------------
# Gradient rules (owned by autograd): rule(ctx, grad) -> (input grad,), written with jitorch ops.
# Views that select part of the input scatter the gradient into zeros of the input's shape.
# ---------------------------------------------------------------------------------------------------------------
from ..autograd._vjp import as_strided_backward as _as_strided_backward, call as _c  # noqa: E402
from ..autograd._vjp import register_vjps as _register_vjps, saves as _saves  # noqa: E402
from ..autograd._vjp import scatter_view as _scatter_view, sum_to as _sum_to  # noqa: E402


def _reshape_to(g, shape):
    shape = tuple(shape)
    if g._data.shape == shape:
        return g
    if view_strides(g._data.shape, tuple(s // g._data.itemsize for s in g._data.strides), shape) is None:
        g = _c("clone", g)
    return _c("view", g, size=shape)


@_saves()
def _view_vjp(ctx, g):
    return (_reshape_to(g, ctx.inputs[0].shape),)


@_saves()
def _permute_vjp(ctx, g):
    dims = tuple(normalize_dim("permute", d, len(ctx.inputs[0].shape)) for d in ctx.attrs["dims"])
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return (_c("permute", g, dims=tuple(inv)),)


@_saves()
def _expand_vjp(ctx, g):
    return (_sum_to(g, ctx.inputs[0].shape),)


def _scatter_rule(opname):
    @_saves()
    def rule(ctx, g):
        x = ctx.inputs[0]
        return (_scatter_view(x.shape, x.dtype, opname, ctx.attrs, g),)
    return rule


@_saves()
def _select_vjp(ctx, g):
    # written into a length-1 slice (a NumPy 0-d selection would be a copy, not a view)
    x = ctx.inputs[0]
    shape = tuple(x.shape)
    d = normalize_dim("select", ctx.attrs["dim"], len(shape))
    i = ctx.attrs["index"]
    i = i + shape[d] if i < 0 else i
    return (_scatter_view(shape, x.dtype, "slice", {"dim": d, "start": i, "stop": i + 1, "step": 1},
                          _c("unsqueeze", g, dim=d)),)


@_saves()
def _unsqueeze_vjp(ctx, g):
    return (_reshape_to(g, ctx.inputs[0].shape),)


@_saves()
def _as_strided_vjp(ctx, g):
    x = ctx.inputs[0]
    a = ctx.attrs
    return (_as_strided_backward(g, x.shape, x.stride(), x.dtype, a["size"], a["stride"], a.get("storage_offset", 0)),)


VJPS = {
    "view": _view_vjp,
    "permute": _permute_vjp,
    "expand": _expand_vjp,
    "slice": _scatter_rule("slice"),
    "select": _select_vjp,
    "diagonal": _scatter_rule("diagonal"),
    "unsqueeze": _unsqueeze_vjp,
    "squeeze": _view_vjp,
    "as_strided": _as_strided_vjp,
}

_register_vjps(VJPS)

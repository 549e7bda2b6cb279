"""The cpu backend: runs kernels of the library on NumPy-backed storage.

This module (with the cuda backend) is the only place that knows how arrays are laid out for
kernels: it broadcasts operands with stride-0 views, merges dimensions that are contiguous in
every operand so most calls become 1-D loops, converts float16 through float32 (numba has no
float16 on the CPU) and picks serial or ``prange`` variants by size.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..kernels import elementwise as _ew
from ..kernels._config import PARALLEL_THRESHOLD

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)


def collapse(shape, strides_list):
    """Drop size-1 dims and merge dims that are contiguous in every operand.

    Returns (shape, [strides per operand]) with the fewest dims that describe the same walk.
    """
    dims = [i for i, n in enumerate(shape) if n != 1]
    if not dims:
        return (1,), [(0,) for _ in strides_list]
    new_shape = [shape[dims[0]]]
    new_strides = [[s[dims[0]]] for s in strides_list]
    for d in dims[1:]:
        n = shape[d]
        if all(ns[-1] == s[d] * n for ns, s in zip(new_strides, strides_list)):
            new_shape[-1] *= n
            for ns, s in zip(new_strides, strides_list):
                ns[-1] = s[d]
        else:
            new_shape.append(n)
            for ns, s in zip(new_strides, strides_list):
                ns.append(s[d])
    return tuple(new_shape), [tuple(s) for s in new_strides]


def _bstrides(a, shape):
    """Strides of ``a`` broadcast to ``shape`` (0 where it is broadcast)."""
    nd = len(shape)
    off = nd - a.ndim
    st = [0] * nd
    for i in range(a.ndim):
        if a.shape[i] != 1:
            st[off + i] = a.strides[i]
    return st


def to_f32(a):
    """float16 array -> new float32 array (kernels.convert)."""
    from ..kernels import convert
    src = np.ascontiguousarray(a).reshape(-1).view(np.uint16)
    out = np.empty(a.shape, np.float32)
    convert.f16_to_f32(src, out.reshape(-1))
    return out


def from_f32_into(src32, dst16):
    from ..kernels import convert
    tmp = np.empty(src32.shape, np.uint16)
    convert.f32_to_f16(np.ascontiguousarray(src32).reshape(-1), tmp.reshape(-1))
    copy_into(dst16, tmp.view(np.float16))


def copy_into(dst, src):
    """dst[...] = src, src broadcast to dst's shape, with dtype conversion (a numba kernel)."""
    from ..kernels import shape as _shape
    if src.dtype == _F16 and dst.dtype != _F16:
        src = to_f32(src)
    elif dst.dtype == _F16 and src.dtype != _F16:
        s32 = np.empty(src.shape, np.float32)
        _shape.copy_nd(src, s32)
        from_f32_into(s32, dst)
        return
    if src.shape != dst.shape:
        src = as_strided(src, dst.shape, _bstrides(src, dst.shape))
    if src.dtype == _F16:  # f16 -> f16: copy the bits
        src, dst = src.view(np.uint16), dst.view(np.uint16)
    _shape.copy_nd(src, dst)


def _scalar_array(value, ctype):
    """A Python scalar as a 0-d array of the compute type; ints wrap like torch (int8 + 1000)."""
    if ctype == "bool":
        return np.asarray(bool(value))
    arr = np.asarray(value)
    return arr.astype(ctype) if arr.dtype != ctype else arr


def elementwise(name, ctype, inputs, out, params=()):
    """Run elementwise op ``name`` computing in ``ctype`` (a NumPy dtype name) into ``out``.

    ``inputs`` are arrays (any strides, broadcastable to out.shape) or Python scalars.
    """
    if ctype == "float16":
        inputs = [to_f32(a) if isinstance(a, np.ndarray) and a.dtype == _F16 else a for a in inputs]
        if out.dtype == _F16:
            tmp = np.empty(out.shape, np.float32)
            elementwise(name, "float32", inputs, tmp, params)
            from_f32_into(tmp, out)
            return out
        ctype = "float32"
    elif out.dtype == _F16:
        tmp = np.empty(out.shape, np.float32)
        elementwise(name, ctype, inputs, tmp, params)
        from_f32_into(tmp, out)
        return out
    mod = _ew.get_kernels(name, ctype)
    shape = out.shape
    size = out.size
    if size == 0:
        return out
    # hot path: same-shape C-contiguous operands -> one 1-D loop
    if out.flags.c_contiguous and all(
        isinstance(a, np.ndarray) and a.shape == shape and a.flags.c_contiguous for a in inputs
    ):
        if out.ndim != 1:
            flat = [a.reshape(-1) for a in inputs]
            o = out.reshape(-1)
        else:
            flat, o = inputs, out
        (mod.k1p if size > PARALLEL_THRESHOLD else mod.k1)(*flat, o, *params)
        return out
    arrays = [a if isinstance(a, np.ndarray) else _scalar_array(a, ctype) for a in inputs]
    strides = [_bstrides(a, shape) for a in arrays] + [list(out.strides)]
    cshape, cstrides = collapse(shape, strides)
    views = [as_strided(a, cshape, st) for a, st in zip(arrays, cstrides[:-1])]
    o = as_strided(out, cshape, cstrides[-1])
    nd = len(cshape)
    par = size > PARALLEL_THRESHOLD
    if nd == 1:
        (mod.k1p if par else mod.k1)(*views, o, *params)
    elif nd <= 4:
        getattr(mod, f"k{nd}{'p' if par else ''}")(*views, o, *params)
    else:
        # more than 4 non-mergeable dims: loop over the leading ones in Python (rare)
        lead = cshape[: nd - 4]
        for idx in np.ndindex(*lead):
            getattr(mod, "k4p" if par else "k4")(*[v[idx] for v in views], o[idx], *params)
    return out

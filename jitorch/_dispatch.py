"""Eager dispatch: every op call goes through :func:`call` (or :func:`call_inplace`).

normalize arguments -> check devices -> shape/dtype rules (all errors raised here) -> allocate ->
kernel -> record for autograd and, when tracing, for the tracer. The autograd and tracer layers
install themselves through :data:`hooks`, so this module imports neither.
"""
from __future__ import annotations

import numpy as np

from . import _dtype as D
from .kernels._config import PARALLEL_THRESHOLD as _PAR
from .ops.registry import OPS


class _Hooks:
    """Callbacks installed by higher layers; ``None`` when unused (the common, fast case)."""
    autograd = None   # fn(op, inputs, outputs, attrs) -> None; records the graph node
    tracer = None     # fn(op, inputs, outputs, attrs) -> None; appends an IR node
    inplace_check = None  # fn(op, target, inputs) -> None; autograd's in-place rules
    grad_enabled = True


hooks = _Hooks()
_Tensor = None  # set by jitorch.tensor


def _shape_of(x):
    return x.shape if isinstance(x, _Tensor) else ()


def _device_of(op, inputs):
    dev = None
    for x in inputs:
        if isinstance(x, _Tensor):
            d = x._device
            if dev is None:
                dev = d
            elif d != dev:
                raise RuntimeError(
                    f"{op}: Expected all tensors to be on the same device, but found at least two devices, "
                    f"{dev} and {d}! Move them with .to(device) first."
                )
    return dev


def _impl(op, device):
    """op.impl for a non-cpu device, or torch-style NotImplementedError naming the op and device."""
    impl = op.impl.get(device.type)
    if impl is None:
        raise NotImplementedError(
            f"{op.name}: no kernel for device '{device}' yet (docs/cuda.md lists what runs on cuda); "
            "move the tensors with .cpu() for this op")
    return impl


def _alloc(shape, np_dtype, device):
    """Output storage: a NumPy array on cpu, the device backend's array elsewhere (_devices)."""
    if device is None or device.type == "cpu":
        return np.empty(shape, np_dtype)
    from . import _devices
    return _devices.empty(shape, np_dtype, device)


def _needs_grad(inputs):
    for x in inputs:
        if isinstance(x, _Tensor) and x.requires_grad:
            return True
    return False


def _record(op, inputs, outs, attrs):
    if hooks.autograd is not None and hooks.grad_enabled and _needs_grad(inputs):
        hooks.autograd(op, inputs, outs, attrs)
    if hooks.tracer is not None:
        hooks.tracer(op, inputs, outs, attrs)


# (op name, numpy dtype) -> (output numpy dtype, serial kernel, parallel kernel, attr defaults)
_FAST: dict = {}


def _fast_elementwise(op, inputs, attrs):
    """Same-shape, same-dtype, C-contiguous cpu operands: skip the rules (cached per dtype) and
    call the 1-D kernel directly. Returns None when the general path must run."""
    x0 = inputs[0]
    if type(x0) is not _Tensor or x0._device.type != "cpu":
        return None
    a0 = x0._data
    if not a0.flags.c_contiguous:
        return None
    dt = a0.dtype
    if len(inputs) == 2:  # the common binary case, unrolled
        x1 = inputs[1]
        if type(x1) is not _Tensor:
            return None
        a1 = x1._data
        if a1.shape != a0.shape or a1.dtype != dt or not a1.flags.c_contiguous or x1._device.type != "cpu":
            return None
        arrays = (a0, a1)
    elif len(inputs) == 1:
        arrays = (a0,)
    else:
        shape = a0.shape
        for x in inputs[1:]:
            if type(x) is not _Tensor:
                return None
            a = x._data
            if a.shape != shape or a.dtype != dt or not a.flags.c_contiguous or x._device.type != "cpu":
                return None
        arrays = tuple(x._data for x in inputs)
    entry = _FAST.get((op.name, dt))
    if entry is None:
        if dt == np.float16:
            return None
        out_dt = op.dtype_rule(*inputs, **attrs)
        ctype = op.compute_rule(*inputs, **attrs)
        from .kernels import elementwise as _ew
        mod = _ew.get_kernels(op.scalar, ctype.name)
        entry = _FAST[(op.name, dt)] = (out_dt.np, mod.k1, mod.k1p, op.attrs)
    out_np, k1, k1p, defaults = entry
    out = np.empty(a0.shape, out_np)
    params = [attrs.get(k, v) for k, v in defaults] if defaults else ()
    if a0.ndim != 1:
        arrays = [a.reshape(-1) for a in arrays]
        o = out.reshape(-1)
    else:
        o = out
    (k1p if a0.size > _PAR else k1)(*arrays, o, *params)
    result = _Tensor._wrap(out, x0._device)
    if hooks.autograd is not None or hooks.tracer is not None:
        _record(op, inputs, (result,), attrs)
    return result


def call(name, *inputs, **attrs):
    """Run op ``name`` on ``inputs`` (Tensors or Python scalars) with attributes ``attrs``."""
    op = OPS[name]
    if op.compute_rule is not None:
        r = _fast_elementwise(op, inputs, attrs)
        if r is not None:
            return r
    device = _device_of(name, inputs)
    if "view" in op.tags:
        x = inputs[0]
        op.shape_rule(x._data.shape, **attrs)  # validates (torch's errors) before building the view
        arr = (op.impl["cpu"] if device.type == "cpu" else _impl(op, device))(None, x._data, **attrs)
        out = _Tensor._make_view(arr, x)
        _record(op, inputs, (out,), attrs)
        return out
    arrays = [x._data if isinstance(x, _Tensor) else x for x in inputs]
    shape = op.shape_rule(*[_shape_of(x) for x in inputs], **attrs)
    dtype = op.dtype_rule(*inputs, **attrs)
    impl = op.impl.get(device.type if device is not None else "cpu")
    if impl is None:
        raise NotImplementedError(f"{name}: no kernel for device '{device}'")
    if op.compute_rule is not None:
        kw = dict(attrs)
        kw["_ctype"] = op.compute_rule(*inputs, **attrs).name
        out = _alloc(shape, dtype.np, device)
        impl(out, *arrays, **kw)
        result = _Tensor._wrap(out, device)
        _record(op, inputs, (result,), attrs)
        return result
    if op.nout == 1:
        out = _alloc(shape, dtype.np, device) if shape is not None else None
        res = impl(out, *arrays, **attrs)
        result = _Tensor._wrap(res if res is not None else out, device)
        _record(op, inputs, (result,), attrs)
        return result
    outs = tuple(_alloc(s, d.np, device) for s, d in zip(shape, dtype)) if shape is not None else None
    res = impl(outs, *arrays, **attrs)
    res = res if res is not None else outs
    results = tuple(_Tensor._wrap(r, device) for r in res)
    _record(op, inputs, results, attrs)
    return results


def call_inplace(name, target, *others, **attrs):
    """``target.<name>_(*others)``: compute op ``name`` into target's memory, torch's rules."""
    op = OPS[name]
    inputs = (target,) + others
    _device_of(name, inputs)
    shape = op.shape_rule(*[_shape_of(x) for x in inputs], **attrs)
    if tuple(shape) != target.shape:
        raise RuntimeError(
            f"{name}_: output with shape {list(target.shape)} doesn't match the broadcast shape {list(shape)}; "
            "in-place ops cannot grow their target, use the out-of-place form"
        )
    dtype = op.dtype_rule(*inputs, **attrs)
    tdt = target.dtype
    if dtype is not tdt and dtype.category > tdt.category:
        raise RuntimeError(
            f"{name}_: result type {D.category_name(dtype) if hasattr(D, 'category_name') else dtype.name} "
            f"can't be cast to the desired output type {tdt.name}; use the out-of-place op or convert the target"
        )
    if any(st == 0 for st, n in zip(target._data.strides, target._data.shape) if n > 1) and name != "fill":
        raise RuntimeError(
            f"{name}_: unsupported operation: more than one element of the written-to tensor refers to a single "
            "memory location. Please clone() the tensor before performing the operation."
        )
    if hooks.inplace_check is not None:
        hooks.inplace_check(op, target, inputs)
    arrays = [x._data if isinstance(x, _Tensor) else x for x in inputs]
    kw = dict(attrs)
    if op.compute_rule is not None:
        ctype = op.compute_rule(*inputs, **attrs)
        kw["_ctype"] = ctype.name
    (op.impl["cpu"] if target._device.type == "cpu" else _impl(op, target._device))(target._data, *arrays, **kw)
    target._bump()
    if hooks.autograd is not None and hooks.grad_enabled and (_needs_grad(inputs)):
        hooks.autograd(op, inputs, (target,), attrs, inplace=True)
    if hooks.tracer is not None:
        hooks.tracer(op, inputs, (target,), attrs, inplace=True)
    return target

"""Eager dispatch: every op call goes through :func:`call` (or :func:`call_inplace`).

normalize arguments -> check devices -> shape/dtype rules (all errors raised here) -> allocate ->
kernel -> record for autograd and, when tracing, for the tracer. The autograd and tracer layers
install themselves through :data:`hooks`, so this module imports neither.

Plans (the per-call overhead of small tensors). The rules of an op are pure functions of its
input signature, so their results are computed once per signature and kept in ``op.plans``:

- elementwise ops (``op.compute_rule`` set): signature = the operands' NumPy dtypes (Python
  scalars: their type) and the default dtype; the plan holds the output dtype, the compute type
  and the 1-D kernels. It serves cpu operands that are C-contiguous tensors of one shape, and
  Python scalars (a stride-0 array of the compute type), out of place and in place;
- ops tagged with a family of :data:`~jitorch.ops.registry.PLAN_TAGS` (views, reductions,
  scans, softmax, matmul): signature = the input tensors' shapes, dtypes and C-contiguity, the
  attributes and the default dtype; the plan holds the output shape(s) and dtype(s) and, when
  the op defines ``plan``, an impl specialized to that signature (a view plan is usually a
  C-level ``itemgetter``/``methodcaller``: no Python frame per call).

A plan never holds a decision that depends on anything else: devices (cpu only, checked by
identity on every call), other layouts (strides of non-contiguous inputs are handled by the
impl on every call), autograd (grad mode, requires_grad, views' bases) and the tracer are looked
at on every call. Errors are never cached: a signature whose rules raise builds no plan, so every
call raises again, before any kernel runs. Anything a plan does not cover takes the general path
below, which is the definition of behaviour. Each op keeps at most ``_MAX_PLANS`` signatures.
"""
from __future__ import annotations

import math

import numpy as np

from . import _dtype as D
from ._device import CPU as _CPU
from ._pool import empty as _pool_empty, min_elems as _pool_min_elems
from .kernels._config import PARALLEL_THRESHOLD as _PAR
from .ops.registry import OPS, clear_plans  # noqa: F401  (clear_plans: re-exported for tests)


class _Hooks:
    """Callbacks installed by higher layers; ``None`` when unused (the common, fast case)."""
    autograd = None   # fn(op, inputs, outputs, attrs) -> None; records the graph node
    tracer = None     # fn(op, inputs, outputs, attrs) -> None; appends an IR node
    inplace_check = None  # fn(op, target, inputs) -> None; autograd's in-place rules
    grad_enabled = True


hooks = _Hooks()
_Tensor = None  # set by jitorch.tensor
_Version = None  # jitorch.tensor._Version, set with _Tensor
_new = object.__new__

# Python scalar types that elementwise plans take (exact types: NumPy scalars take the general path)
_SCALARS = frozenset({float, int, bool})
_MAX_PLANS = 512  # per op; a full table is emptied (signatures are few in real programs)
# outputs of at least this many elements come from the large-array pool (_pool; it checks the exact
# byte size itself): an element count is one attribute read on the fast paths
_POOL_ELEMS = _pool_min_elems()


def _shape_of(x):
    return x.shape if isinstance(x, _Tensor) else ()


def _device_of(op, inputs):
    dev = None
    scalar_cpu = False  # dev came from a 0-dim cpu tensor, which torch lets mix with any device
    for x in inputs:
        if isinstance(x, _Tensor):
            d = x._device
            if dev is None:
                dev = d
                scalar_cpu = d.type == "cpu" and x._data.ndim == 0
            elif d != dev:
                if d.type == "cpu" and x._data.ndim == 0:
                    continue
                if scalar_cpu:
                    dev, scalar_cpu = d, False
                    continue
                raise RuntimeError(
                    f"{op}: Expected all tensors to be on the same device, but found at least two devices, "
                    f"{dev} and {d}! Move them with .to(device) first."
                )
    return dev


def _device_arrays(op, inputs, arrays, device):
    """0-dim cpu tensors in an op on another device: a Python scalar for elementwise kernels, else
    copied to the device (torch treats them as scalars)."""
    out = list(arrays)
    for i, x in enumerate(inputs):
        if isinstance(x, _Tensor) and x._device.type == "cpu":
            if op.compute_rule is not None:
                out[i] = x._data.item()
            else:
                from . import _devices
                out[i] = _devices.move(x.detach(), device)._data
    return out


def _attr_device(d):
    """The device of an input-less op (a random draw) from its ``device`` attribute; None for cpu."""
    from ._device import as_device
    dev = as_device(d)
    if dev.type == "cpu":
        return None
    from . import _devices
    return _devices.check_device(dev)


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
        return _pool_empty(shape, np_dtype)
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


def _store(plans, key, plan):
    if len(plans) >= _MAX_PLANS:
        plans.clear()
    plans[key] = plan
    return plan


# ---------------------------------------------------------------- elementwise plans

def _ew_plan(op, inputs, attrs, key):
    """Build the elementwise plan for signature ``key``: (out numpy dtype, k1, k1p, attr defaults,
    compute numpy dtype, out dtype category, in place allowed (the result fits the first operand's
    dtype), the single attribute's name and default or None), or False (no fast path: float16, or
    rules that raise, which the general path then raises with its own message)."""
    try:
        out_dt = op.dtype_rule(*inputs, **attrs)
        ctype = op.compute_rule(*inputs, **attrs)
    except Exception:
        return False
    if out_dt is D.float16 or ctype is D.float16:
        return _store(op.plans, key, False)
    from .kernels import elementwise as _ew
    mod = _ew.get_kernels(op.scalar, ctype.name)
    first = key[0]
    inplace_ok = isinstance(first, np.dtype) and out_dt.category <= D._BY_NP[first].category
    pname, pdefault = op.attrs[0] if len(op.attrs) == 1 else (None, None)
    plan = (out_dt.np, mod.k1, mod.k1p, op.attrs, np.dtype(ctype.np), out_dt.category, inplace_ok, pname, pdefault)
    return _store(op.plans, key, plan)


def _params(defaults, attrs):
    """The kernel's trailing parameters: the attributes in the record's order, defaults filled in."""
    if len(defaults) == 1:
        (k, v), = defaults
        return (attrs.get(k, v),)
    return [attrs.get(k, v) for k, v in defaults]


def _ew_operands(inputs):
    """(arrays, key, shape, has_scalar) for operands a plan can serve, else None: C-contiguous cpu
    tensors and Python scalars (kept as values in ``arrays``). ``shape`` is None when the tensors'
    shapes differ (broadcasting: see :func:`_fast_broadcast`)."""
    shape = None
    same = True
    arrays = []
    key = []
    scalar = False
    for x in inputs:
        tx = type(x)
        if tx in _SCALARS:
            arrays.append(x)
            key.append(tx)
            scalar = True
        elif isinstance(x, _Tensor):
            if x._device is not _CPU and x._device.type != "cpu":
                return None
            a = x._data
            if shape is None:
                shape = a.shape
            elif a.shape != shape:
                same = False
            if not a.flags.c_contiguous:
                return None
            arrays.append(a)
            key.append(a.dtype)
        else:
            return None
    if shape is None:
        return None
    key.append(D._default_dtype)
    return arrays, tuple(key), shape if same else None, scalar


def _bc_plan(op, inputs, attrs, key, shapes):
    """Plan of a broadcasting elementwise call for operand shapes ``shapes`` (scalars: ()): the
    output shape, dims merged as the cpu backend does (backends.cpu.collapse) and each operand's
    byte strides in them (0 where broadcast), the kernel for that many dims. False: no plan
    (float16, more than 4 merged dims); None: the rules raise (the general path raises)."""
    try:
        shape = tuple(op.shape_rule(*shapes, **attrs))
        out_dt = op.dtype_rule(*inputs, **attrs)
        ctype = op.compute_rule(*inputs, **attrs)
    except Exception:
        return None
    if out_dt is D.float16 or ctype is D.float16:
        return _store(op.plans, key, False)
    from .backends.cpu import collapse
    nd = len(shape)
    cdt = np.dtype(ctype.np)
    strides = []
    for x, sh in zip(inputs, shapes):
        item = x._data.itemsize if isinstance(x, _Tensor) else cdt.itemsize
        st = [0] * nd
        acc = item
        for i in range(len(sh) - 1, -1, -1):
            if sh[i] != 1:
                st[nd - len(sh) + i] = acc
            acc *= sh[i]
        strides.append(st)
    out_np = np.dtype(out_dt.np)
    acc = out_np.itemsize
    ost = [0] * nd
    for i in range(nd - 1, -1, -1):
        ost[i] = acc
        acc *= shape[i]
    cshape, cstrides = collapse(shape, strides + [ost])
    if len(cshape) > 4:
        return _store(op.plans, key, False)
    from .kernels import elementwise as _ew
    mod = _ew.get_kernels(op.scalar, ctype.name)
    k = len(cshape)
    plan = (shape, out_np, getattr(mod, f"k{k}"), getattr(mod, f"k{k}p"), op.attrs, cdt, cshape,
            tuple(cstrides[:-1]), cstrides[-1], math.prod(shape))
    return _store(op.plans, key, plan)


def _fast_broadcast(op, inputs, attrs, arrays, key):
    """Elementwise op on C-contiguous operands of different (broadcastable) shapes, through a plan
    keyed by dtypes and shapes: stride views built with the ndarray constructor (no as_strided)."""
    shapes = tuple(a.shape if type(a) is np.ndarray else () for a in arrays)
    bkey = (key, shapes)
    plan = op.plans.get(bkey)
    if plan is None:
        plan = _bc_plan(op, inputs, attrs, bkey, shapes)
    if not plan:
        return None
    shape, out_np, k, kp, defaults, cdt, cshape, strides, ost, size = plan
    out = np.empty(shape, out_np) if size < _POOL_ELEMS else _pool_empty(shape, out_np)
    if size:
        views = []
        for a, st in zip(arrays, strides):
            if type(a) is not np.ndarray:
                s = np.empty(1, cdt)
                try:
                    s[0] = a
                except (OverflowError, ValueError, TypeError):
                    return None
                a = s
            views.append(np.ndarray(cshape, a.dtype, a, 0, st))
        params = _params(defaults, attrs) if defaults else ()
        (kp if size > _PAR else k)(*views, np.ndarray(cshape, out_np, out, 0, ost), *params)
    result = _Tensor._wrap(out, _CPU)
    if hooks.tracer is not None or (hooks.grad_enabled and _needs_grad(inputs)):
        _record(op, inputs, (result,), attrs)
    return result


def _flat_operands(arrays, size, cdt, scalar):
    """The operands as 1-D arrays of ``size`` elements; scalars become stride-0 arrays of the
    compute dtype. None when a scalar does not fit the compute dtype (the general path wraps it)."""
    flat = []
    for a in arrays:
        if type(a) is np.ndarray:
            flat.append(a if a.ndim == 1 else a.reshape(-1))
        else:
            s = np.empty(1, cdt)
            try:
                s[0] = a
            except (OverflowError, ValueError, TypeError):
                return None
            flat.append(s if size == 1 else np.ndarray((size,), cdt, s, 0, (0,)))
    return flat


def _fast_elementwise(op, inputs, attrs):
    """Out-of-place elementwise op through its plan; None when the general path must run."""
    if len(inputs) == 2:  # the common binary tensor-tensor case, unrolled
        x0, x1 = inputs
        if type(x0) is _Tensor and type(x1) is _Tensor:
            if (x0._device is not _CPU and x0._device.type != "cpu") or (
                    x1._device is not _CPU and x1._device.type != "cpu"):
                return None
            a0 = x0._data
            a1 = x1._data
            shape = a0.shape
            if a1.shape != shape or not a0.flags.c_contiguous or not a1.flags.c_contiguous:
                return None
            key = (a0.dtype, a1.dtype, D._default_dtype)
            plan = op.plans.get(key)
            if plan is None:
                plan = _ew_plan(op, inputs, attrs, key)
            if not plan:
                return None
            out_np, k1, k1p, defaults, _, _, _, pname, pdefault = plan
            out = np.empty(shape, out_np) if a0.size < _POOL_ELEMS else _pool_empty(shape, out_np)
            if len(shape) != 1:
                a0 = a0.reshape(-1)
                a1 = a1.reshape(-1)
                o = out.reshape(-1)
            else:
                o = out
            if pname is not None:
                (k1p if o.size > _PAR else k1)(a0, a1, o, attrs.get(pname, pdefault))
            elif defaults:
                (k1p if o.size > _PAR else k1)(a0, a1, o, *_params(defaults, attrs))
            else:
                (k1p if o.size > _PAR else k1)(a0, a1, o)
            result = _new(_Tensor)  # Tensor._wrap(out, CPU), inline
            result._data = out
            result._device = _CPU
            result._version_box = _Version()
            if hooks.tracer is not None or (hooks.grad_enabled and (x0.requires_grad or x1.requires_grad)):
                _record(op, inputs, (result,), attrs)
            return result
    elif len(inputs) == 1:  # unary
        x0 = inputs[0]
        if not isinstance(x0, _Tensor) or (x0._device is not _CPU and x0._device.type != "cpu"):
            return None
        a0 = x0._data
        if not a0.flags.c_contiguous:
            return None
        key = (a0.dtype, D._default_dtype)
        plan = op.plans.get(key)
        if plan is None:
            plan = _ew_plan(op, inputs, attrs, key)
        if not plan:
            return None
        out_np, k1, k1p, defaults = plan[:4]
        out = np.empty(a0.shape, out_np) if a0.size < _POOL_ELEMS else _pool_empty(a0.shape, out_np)
        if a0.ndim != 1:
            a0 = a0.reshape(-1)
            o = out.reshape(-1)
        else:
            o = out
        if defaults:
            (k1p if o.size > _PAR else k1)(a0, o, *_params(defaults, attrs))
        else:
            (k1p if o.size > _PAR else k1)(a0, o)
        result = _new(_Tensor)  # Tensor._wrap(out, CPU), inline
        result._data = out
        result._device = _CPU
        result._version_box = _Version()
        if hooks.tracer is not None or (hooks.grad_enabled and x0.requires_grad):
            _record(op, inputs, (result,), attrs)
        return result
    got = _ew_operands(inputs)
    if got is None:
        return None
    arrays, key, shape, scalar = got
    if shape is None:
        return _fast_broadcast(op, inputs, attrs, arrays, key)
    plan = op.plans.get(key)
    if plan is None:
        plan = _ew_plan(op, inputs, attrs, key)
    if not plan:
        return None
    out_np, k1, k1p, defaults, cdt = plan[:5]
    out = np.empty(shape, out_np)
    size = out.size
    if size >= _POOL_ELEMS:
        out = _pool_empty(shape, out_np)
    flat = _flat_operands(arrays, size, cdt, scalar)
    if flat is None:
        return None
    params = _params(defaults, attrs) if defaults else ()
    (k1p if size > _PAR else k1)(*flat, out if out.ndim == 1 else out.reshape(-1), *params)
    result = _Tensor._wrap(out, _CPU)
    if hooks.tracer is not None or (hooks.grad_enabled and _needs_grad(inputs)):
        _record(op, inputs, (result,), attrs)
    return result


def _fast_inplace(op, target, inputs, attrs):
    """In-place elementwise op through its plan (target and tensor operands of one shape,
    C-contiguous, cpu; nothing for autograd or the tracer to see); None: the general path."""
    if hooks.tracer is not None or not isinstance(target, _Tensor):
        return None
    if len(inputs) == 2 and type(inputs[1]) is _Tensor:  # x.add_(y): unrolled
        x1 = inputs[1]
        if hooks.grad_enabled and (target.requires_grad or x1.requires_grad or (
                target._base is not None and target._base.requires_grad)):
            return None  # autograd's in-place rules and recording: the general path
        if (target._device is not _CPU and target._device.type != "cpu") or (
                x1._device is not _CPU and x1._device.type != "cpu"):
            return None
        t = target._data
        a1 = x1._data
        if a1.shape != t.shape or not t.flags.c_contiguous or not a1.flags.c_contiguous:
            return None
        dt = t.dtype
        key = (dt, a1.dtype, D._default_dtype)
        plan = op.plans.get(key)
        if plan is None:
            plan = _ew_plan(op, inputs, attrs, key)
        if not plan or not plan[6]:
            return None  # no plan, or the result does not fit the target: the general path (raises)
        _, k1, k1p, defaults, _, _, _, pname, pdefault = plan
        if t.ndim != 1:
            t = t.reshape(-1)
            a1 = a1.reshape(-1)
        if pname is not None:
            (k1p if t.size > _PAR else k1)(t, a1, t, attrs.get(pname, pdefault))
        elif defaults:
            (k1p if t.size > _PAR else k1)(t, a1, t, *_params(defaults, attrs))
        else:
            (k1p if t.size > _PAR else k1)(t, a1, t)
        target._version_box.value += 1
        return target
    if hooks.grad_enabled and (target.requires_grad or _needs_grad(inputs) or (
            target._base is not None and target._base.requires_grad)):
        return None
    got = _ew_operands(inputs)
    if got is None:
        return None
    arrays, key, shape, scalar = got
    t = target._data
    if shape is None or t.shape != shape:
        return None
    plan = op.plans.get(key)
    if plan is None:
        plan = _ew_plan(op, inputs, attrs, key)
    if not plan:
        return None
    _, k1, k1p, defaults, cdt, _, inplace_ok = plan[:7]
    if not inplace_ok:
        return None  # the general path raises "can't be cast"
    size = t.size
    flat = _flat_operands(arrays, size, cdt, scalar)
    if flat is None:
        return None
    params = _params(defaults, attrs) if defaults else ()
    (k1p if size > _PAR else k1)(*flat, flat[0], *params)
    target._version_box.value += 1
    return target


# ---------------------------------------------------------------- rule plans (views, reductions, ...)

def _rule_plan(op, inputs, attrs, key):
    """Run the rules for this signature (errors propagate, nothing is cached) and cache
    (out shape(s), out numpy dtype(s), specialized impl or None)."""
    x = inputs[0]
    if "view" in op.tags:
        op.shape_rule(x._data.shape, **attrs)  # validates (torch's errors) before building the view
        shape = out_np = None
    else:
        shape = op.shape_rule(*[t._data.shape for t in inputs], **attrs)
        dtype = op.dtype_rule(*inputs, **attrs)
        out_np = dtype.np if op.nout == 1 else tuple(d.np for d in dtype)
    fast = None
    if op.plan is not None:
        fast = op.plan(tuple(t._data.shape for t in inputs), tuple(t._data.dtype for t in inputs),
                       tuple(bool(t._data.flags.c_contiguous) for t in inputs), **attrs)
    return _store(op.plans, key, (shape, out_np, fast))


def _planned(op, inputs, attrs):
    """Ops of the PLAN_TAGS families on cpu tensors: rules cached per signature; None: general path."""
    if len(inputs) == 1:  # unrolled: views, reductions, scans, softmax
        x = inputs[0]
        if not isinstance(x, _Tensor) or (x._device is not _CPU and x._device.type != "cpu"):
            return None
        a = x._data
        key = (a.shape, a.dtype, a.flags.c_contiguous, tuple(attrs.items()), D._default_dtype) if attrs else (
            a.shape, a.dtype, a.flags.c_contiguous, D._default_dtype)
        try:
            plan = op.plans.get(key)
        except TypeError:  # an unhashable attribute (a list ...): no plan
            return None
        if plan is None:
            plan = _rule_plan(op, inputs, attrs, key)
        shape, out_np, fast = plan
        if out_np is None:  # a view
            out = _new(_Tensor)  # Tensor._make_view(view, x), inline
            out._data = fast(a) if fast is not None else op.impl["cpu"](None, a, **attrs)
            out._device = x._device
            out._version_box = x._version_box  # views and base share one version counter
            out._base = x if x._base is None else x._base
            if hooks.tracer is not None or (hooks.grad_enabled and x.requires_grad):
                _record(op, inputs, (out,), attrs)
            return out
        if op.nout == 1:
            out = np.empty(shape, out_np) if shape is not None else None
            if out is not None and out.size >= _POOL_ELEMS:
                out = _pool_empty(shape, out_np)
            res = fast(out, a) if fast is not None else op.impl["cpu"](out, a, **attrs)
            result = _new(_Tensor)  # Tensor._wrap(res, CPU), inline
            result._data = res if res is not None else out
            result._device = _CPU
            result._version_box = _Version()
            if hooks.tracer is not None or (hooks.grad_enabled and x.requires_grad):
                _record(op, inputs, (result,), attrs)
            return result
        arrays = (a,)
    else:
        if "view" in op.tags:
            return None
        if len(inputs) == 2:  # matmul: unrolled
            x0, x1 = inputs
            if not isinstance(x0, _Tensor) or not isinstance(x1, _Tensor) or (
                    x0._device is not _CPU and x0._device.type != "cpu") or (
                    x1._device is not _CPU and x1._device.type != "cpu"):
                return None
            a0 = x0._data
            a1 = x1._data
            key = (a0.shape, a0.dtype, a0.flags.c_contiguous, a1.shape, a1.dtype, a1.flags.c_contiguous,
                   tuple(attrs.items()) if attrs else (), D._default_dtype)
            try:
                plan = op.plans.get(key)
            except TypeError:
                return None
            if plan is None:
                plan = _rule_plan(op, inputs, attrs, key)
            shape, out_np, fast = plan
            if op.nout == 1:
                out = np.empty(shape, out_np) if shape is not None else None
                if out is not None and out.size >= _POOL_ELEMS:
                    out = _pool_empty(shape, out_np)
                res = fast(out, a0, a1) if fast is not None else op.impl["cpu"](out, a0, a1, **attrs)
                result = _new(_Tensor)  # Tensor._wrap(res, CPU), inline
                result._data = res if res is not None else out
                result._device = _CPU
                result._version_box = _Version()
                if hooks.tracer is not None or (hooks.grad_enabled and (x0.requires_grad or x1.requires_grad)):
                    _record(op, inputs, (result,), attrs)
                return result
            arrays = (a0, a1)
        else:
            parts = []
            arrays = []
            for x in inputs:
                if not isinstance(x, _Tensor) or (x._device is not _CPU and x._device.type != "cpu"):
                    return None
                a = x._data
                arrays.append(a)
                parts.append(a.shape)
                parts.append(a.dtype)
                parts.append(a.flags.c_contiguous)
            parts.append(tuple(attrs.items()))
            parts.append(D._default_dtype)
            key = tuple(parts)
        try:
            plan = op.plans.get(key)
        except TypeError:
            return None
        if plan is None:
            plan = _rule_plan(op, inputs, attrs, key)
        shape, out_np, fast = plan
        if op.nout == 1:
            out = np.empty(shape, out_np) if shape is not None else None
            if out is not None and out.size >= _POOL_ELEMS:
                out = _pool_empty(shape, out_np)
            res = fast(out, *arrays) if fast is not None else op.impl["cpu"](out, *arrays, **attrs)
            result = _new(_Tensor)  # Tensor._wrap(res, CPU), inline
            result._data = res if res is not None else out
            result._device = _CPU
            result._version_box = _Version()
            if hooks.tracer is not None or (hooks.grad_enabled and _needs_grad(inputs)):
                _record(op, inputs, (result,), attrs)
            return result
    outs = tuple(np.empty(s, d) for s, d in zip(shape, out_np)) if shape is not None else None
    res = fast(outs, *arrays) if fast is not None else op.impl["cpu"](outs, *arrays, **attrs)
    res = res if res is not None else outs
    results = tuple(_Tensor._wrap(r, _CPU) for r in res)
    if hooks.tracer is not None or (hooks.grad_enabled and _needs_grad(inputs)):
        _record(op, inputs, results, attrs)
    return results


# ---------------------------------------------------------------- entry points

def call(name, *inputs, **attrs):
    """Run op ``name`` on ``inputs`` (Tensors or Python scalars) with attributes ``attrs``."""
    op = OPS[name]
    if op.compute_rule is not None:
        r = _fast_elementwise(op, inputs, attrs)
        if r is not None:
            return r
    elif op.uses_plans and inputs:
        r = _planned(op, inputs, attrs)
        if r is not None:
            return r
    return _call_general(op, name, inputs, attrs)


def call_binary(op, x0, x1):
    """``call(op.name, x0, x1)`` for a one-output record of the PLAN_TAGS families without attributes
    (matmul, for ``a @ b``): the same key and plan as :func:`_planned`'s two-input path, one Python
    call less; everything else goes through :func:`call`."""
    if isinstance(x0, _Tensor) and isinstance(x1, _Tensor) and (x0._device is _CPU or x0._device.type == "cpu") and (
            x1._device is _CPU or x1._device.type == "cpu"):
        a0 = x0._data
        a1 = x1._data
        key = (a0.shape, a0.dtype, a0.flags.c_contiguous, a1.shape, a1.dtype, a1.flags.c_contiguous, (),
               D._default_dtype)
        plan = op.plans.get(key)
        if plan is None:
            plan = _rule_plan(op, (x0, x1), {}, key)
        shape, out_np, fast = plan
        out = np.empty(shape, out_np)
        if out.size >= _POOL_ELEMS:
            out = _pool_empty(shape, out_np)
        res = fast(out, a0, a1) if fast is not None else op.impl["cpu"](out, a0, a1)
        result = _new(_Tensor)  # Tensor._wrap(res, CPU), inline
        result._data = res if res is not None else out
        result._device = _CPU
        result._version_box = _Version()
        if hooks.tracer is not None or (hooks.grad_enabled and (x0.requires_grad or x1.requires_grad)):
            _record(op, (x0, x1), (result,), {})
        return result
    return call(op.name, x0, x1)


def call_reduction(op, x, dim, keepdim):
    """``call(op.name, x, dim=dim, keepdim=keepdim)`` for the reduction frontends (jitorch._reduce):
    op is a one-output record of the "reduction" family and ``dim`` a hashable normalized dim tuple.
    The planned path keys on (shape, dtype, C-contiguity, dim, keepdim, default dtype), a tuple
    of another length than :func:`_planned`'s keys, without building an attribute dict per call;
    everything else goes through :func:`call`."""
    if isinstance(x, _Tensor) and (x._device is _CPU or x._device.type == "cpu"):
        a = x._data
        key = (a.shape, a.dtype, a.flags.c_contiguous, dim, keepdim, D._default_dtype)
        plan = op.plans.get(key)
        if plan is None:
            plan = _rule_plan(op, (x,), {"dim": dim, "keepdim": keepdim}, key)
        shape, out_np, fast = plan
        out = np.empty(shape, out_np)
        if out.size >= _POOL_ELEMS:
            out = _pool_empty(shape, out_np)
        res = fast(out, a) if fast is not None else op.impl["cpu"](out, a, dim=dim, keepdim=keepdim)
        result = _new(_Tensor)  # Tensor._wrap(res, CPU), inline
        result._data = res if res is not None else out
        result._device = _CPU
        result._version_box = _Version()
        if hooks.tracer is not None or (hooks.grad_enabled and x.requires_grad):
            _record(op, (x,), (result,), {"dim": dim, "keepdim": keepdim})
        return result
    return call(op.name, x, dim=dim, keepdim=keepdim)


def _call_general(op, name, inputs, attrs):
    device = _device_of(name, inputs)
    if device is None and attrs.get("device") is not None:
        device = _attr_device(attrs["device"])
    if "view" in op.tags:
        x = inputs[0]
        op.shape_rule(x._data.shape, **attrs)  # validates (torch's errors) before building the view
        arr = (op.impl["cpu"] if device.type == "cpu" else _impl(op, device))(None, x._data, **attrs)
        out = _Tensor._make_view(arr, x)
        _record(op, inputs, (out,), attrs)
        return out
    arrays = [x._data if isinstance(x, _Tensor) else x for x in inputs]
    if device is not None and device.type != "cpu":
        arrays = _device_arrays(op, inputs, arrays, device)
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
    if op.compute_rule is not None and _fast_inplace(op, target, inputs, attrs) is not None:
        return target
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
    if target._device.type != "cpu":
        arrays = _device_arrays(op, inputs, arrays, target._device)
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

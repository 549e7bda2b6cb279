"""torch.optim.Optimizer: param groups, per-parameter state, state dicts, hooks.

The update rules live in the subclasses; each runs ONE fused numba kernel per parameter per step
(:mod:`jitorch.kernels.optim`), writing straight into the parameter's storage (``p._data``) and
bumping its version counter. No op is dispatched, so a step records nothing for autograd or the
tracer, and updating a leaf that requires grad in place is allowed (torch runs ``step`` under
``no_grad`` for the same reason).

Kernels take 1-D C-contiguous float32/float64 arrays. Other layouts (non-contiguous parameters
or state, float16, a gradient of another dtype) are staged here: copied into a contiguous array of
the compute dtype (float32 for float16), updated, and written back.
"""
from __future__ import annotations

import functools
import warnings
from collections import OrderedDict, defaultdict
from copy import deepcopy
from itertools import chain
from typing import Any

import numpy as np

from .. import _dtype as D
from ..tensor import Tensor
from ..utils.hooks import RemovableHandle

__all__ = ["Optimizer", "required", "register_optimizer_step_pre_hook", "register_optimizer_step_post_hook"]


class _RequiredParameter:
    """Singleton class representing a required parameter for an Optimizer."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

_global_optimizer_pre_hooks: OrderedDict = OrderedDict()
_global_optimizer_post_hooks: OrderedDict = OrderedDict()


def register_optimizer_step_pre_hook(hook) -> RemovableHandle:
    """``hook(optimizer, args, kwargs) -> None or (args, kwargs)``, run before every optimizer's step."""
    handle = RemovableHandle(_global_optimizer_pre_hooks)
    _global_optimizer_pre_hooks[handle.id] = hook
    return handle


def register_optimizer_step_post_hook(hook) -> RemovableHandle:
    """``hook(optimizer, args, kwargs) -> None``, run after every optimizer's step."""
    handle = RemovableHandle(_global_optimizer_post_hooks)
    _global_optimizer_post_hooks[handle.id] = hook
    return handle


def _scalar_np_dtype():
    """dtype of the ``step`` counters: float64 when the default dtype is float64, else float32 (torch)."""
    return np.float64 if D.get_default_dtype() is D.float64 else np.float32


def _to_float(x) -> float:
    return float(x.item()) if isinstance(x, Tensor) else float(x)


def _enable_grad():
    import jitorch
    eg = getattr(jitorch, "enable_grad", None)
    if eg is None:  # the autograd frontend is not there yet: nothing to enable
        import contextlib
        return contextlib.nullcontext()
    return eg()


_FAST = (np.dtype(np.float32), np.dtype(np.float64))


class _Stage:
    """Contiguous compute-dtype views (or staged copies) of a parameter, its grad and its state.

    ``cuda_ok``: the optimizer has cuda kernels (kernels/cuda/optim.py); then parameters on 'cuda' are staged
    as 1-D numba device arrays and :meth:`kernels` returns the cuda kernel module."""

    __slots__ = ("cdt", "writeback", "touched", "cuda")

    def __init__(self, name, p, g, cuda_ok=False):
        self.cuda = p._device.type == "cuda" and g._device.type == "cuda" and cuda_ok
        if not self.cuda and (p._device.type != "cpu" or g._device.type != "cpu"):
            raise NotImplementedError(f"{name}: no optimizer kernels for a parameter on '{p._device}' with its "
                                      f"gradient on '{g._device}'; put both on cpu or both on cuda")
        dt = p._data.dtype
        if dt in _FAST:
            self.cdt = dt
        elif dt == np.float16:
            self.cdt = np.dtype(np.float32)
        else:
            raise TypeError(f"{name}: can only optimize floating-point parameters, got {p.dtype}")
        if tuple(g._data.shape) != tuple(p._data.shape):
            raise RuntimeError(f"{name}: the gradient's shape {list(g.shape)} does not match the parameter's "
                               f"shape {list(p.shape)}")
        self.writeback = []
        self.touched = []

    def kernels(self, cpu_module):
        """The kernel module for this parameter's device: ``cpu_module`` or kernels/cuda/optim.py."""
        if self.cuda:
            from ..kernels.cuda import optim as cuda_optim
            return cuda_optim
        return cpu_module

    def _cuda_flat(self, t, write):
        from ..backends import cuda as bc
        a = t._data
        if a.dtype == self.cdt and a.is_c_contiguous():
            return bc.flat(a)
        tmp = bc.empty(a.shape, self.cdt)
        bc.copy_into(tmp, a)
        if write:
            self.writeback.append((t, tmp))
        return bc.flat(tmp)

    def rw(self, t):
        """A writable 1-D view of tensor ``t`` in the compute dtype (a staged copy if needed)."""
        a = t._data
        self.touched.append(t)
        if self.cuda:
            return self._cuda_flat(t, True)
        if a.dtype == self.cdt and a.flags.c_contiguous and a.flags.writeable:
            return a.ravel()
        tmp = np.ascontiguousarray(a, dtype=self.cdt).reshape(-1)
        self.writeback.append((t, tmp))
        return tmp

    def ro(self, t):
        a = t._data
        if self.cuda:
            return self._cuda_flat(t, False)
        if a.dtype == self.cdt and a.flags.c_contiguous:
            return a.ravel()
        return np.ascontiguousarray(a, dtype=self.cdt).reshape(-1)

    def empty(self):
        if self.cuda:
            from ..backends import cuda as bc
            return bc.flat(bc.empty((0,), self.cdt))
        return np.empty(0, self.cdt)

    def finish(self):
        for t, tmp in self.writeback:
            if self.cuda:
                from ..backends import cuda as bc
                bc.copy_into(t._data, tmp)
            else:
                t._data[...] = tmp.reshape(t._data.shape)
        for t in self.touched:
            t._bump()


def _zeros_like(p, fill=0.0):
    if p._device.type == "cuda":
        from ..backends import cuda as bc
        a = bc.empty(p._data.shape, p._data.dtype)
        bc.fill(a, fill)
        return Tensor._wrap(a, p._device)
    a = np.full(p._data.shape, fill, dtype=p._data.dtype)
    return Tensor._wrap(a, p._device)


def _step_tensor(value=0.0):
    return Tensor._wrap(np.array(value, dtype=_scalar_np_dtype()))


def _bump_step(state, key="step"):
    """``state[key] += 1`` on the 0-d step tensor (created/converted as torch does); returns the new count."""
    s = state.get(key)
    if not isinstance(s, Tensor):
        s = _step_tensor(0.0 if s is None else float(s))
        state[key] = s
    a = s._data
    a.fill(a.item() + 1.0)  # rounded to the counter's dtype, as torch's ``step_t += 1``
    s._bump()
    return a.item()


class Optimizer:
    """Base class of all optimizers: ``Optimizer(params, defaults)``.

    ``params`` is an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts (param groups:
    ``{"params": [...], "lr": ..., ...}``); ``defaults`` fills the options a group leaves out.
    """

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: OrderedDict = OrderedDict()
        self._patch_step_function()
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {params.type()}")
        if defaults.get("differentiable", False):
            raise NotImplementedError(f"{type(self).__name__}: differentiable=True is not supported by jitorch")
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    # ------------------------------------------------------------ pickling / repr
    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        for name in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
                     "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
                     "_optimizer_load_state_dict_post_hooks"):
            if name not in self.__dict__:
                setattr(self, name, OrderedDict())
        self._patch_step_function()
        self.defaults.setdefault("differentiable", False)

    def __repr__(self):
        s = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    s += f"    {key}: {group[key]}\n"
        return s + ")"

    # ------------------------------------------------------------ step hooks
    def _patch_step_function(self) -> None:
        cls = self.__class__
        if not getattr(cls.step, "hooked", False):
            cls.step = Optimizer._hooked_step(cls.step)
            cls.step.hooked = True

    @staticmethod
    def _hooked_step(func):
        @functools.wraps(func)
        def wrapper(self, *args, **kwargs):
            self._opt_called = True  # read by lr_scheduler's "step order" warning
            if getattr(self, "_in_hooked_step", False):  # a subclass's step calling super().step()
                return func(self, *args, **kwargs)
            for pre_hook in chain(_global_optimizer_pre_hooks.values(), self._optimizer_step_pre_hooks.values()):
                result = pre_hook(self, args, kwargs)
                if result is not None:
                    if isinstance(result, tuple) and len(result) == 2:
                        args, kwargs = result
                    else:
                        raise RuntimeError(f"{func} must return None or a tuple of (new_args, new_kwargs), "
                                           f"but got {result}.")
            self._in_hooked_step = True
            try:
                out = func(self, *args, **kwargs)
            finally:
                self._in_hooked_step = False
            for post_hook in chain(self._optimizer_step_post_hooks.values(), _global_optimizer_post_hooks.values()):
                post_hook(self, args, kwargs)
            return out
        return wrapper

    def register_step_pre_hook(self, hook) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs)``, before each ``step``."""
        handle = RemovableHandle(self._optimizer_step_pre_hooks)
        self._optimizer_step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None``, after each ``step``."""
        handle = RemovableHandle(self._optimizer_step_post_hooks)
        self._optimizer_step_post_hooks[handle.id] = hook
        return handle

    def register_state_dict_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        handle = RemovableHandle(self._optimizer_state_dict_pre_hooks)
        self._optimizer_state_dict_pre_hooks[handle.id] = hook
        if prepend:
            self._optimizer_state_dict_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_state_dict_post_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        handle = RemovableHandle(self._optimizer_state_dict_post_hooks)
        self._optimizer_state_dict_post_hooks[handle.id] = hook
        if prepend:
            self._optimizer_state_dict_post_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_load_state_dict_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        handle = RemovableHandle(self._optimizer_load_state_dict_pre_hooks)
        self._optimizer_load_state_dict_pre_hooks[handle.id] = hook
        if prepend:
            self._optimizer_load_state_dict_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_load_state_dict_post_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        handle = RemovableHandle(self._optimizer_load_state_dict_post_hooks)
        self._optimizer_load_state_dict_post_hooks[handle.id] = hook
        if prepend:
            self._optimizer_load_state_dict_post_hooks.move_to_end(handle.id, last=False)
        return handle

    # ------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]}`` (torch's format).

        Parameters are numbered in the order of the groups; the state holds the live state tensors.
        """
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        param_mappings: dict[int, int] = {}
        start_index = 0

        def pack_group(group):
            nonlocal start_index
            packed = {k: v for k, v in group.items() if k != "params"}
            param_mappings.update({id(p): i for i, p in enumerate(group["params"], start_index)
                                   if id(p) not in param_mappings})
            packed["params"] = [param_mappings[id(p)] for p in group["params"]]
            start_index += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {(param_mappings[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        state_dict = {"state": packed_state, "param_groups": param_groups}
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            result = post_hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    @staticmethod
    def _process_value_according_to_param_policy(param, value, param_id, param_groups, key=None):
        """A copy of state tensor ``value`` for ``param``: ``step`` keeps its dtype, other floating
        state takes the parameter's dtype; all move to the parameter's device."""
        fused = capturable = False
        for pg in param_groups:
            if param_id in pg["params"]:
                fused = pg.get("fused", False)
                capturable = pg.get("capturable", False)
                break
        if key == "step":
            if capturable or fused:
                return value.to(dtype=D.float32, device=param.device, copy=True)
            return value.to(device=param.device, copy=True)
        if param.is_floating_point() and value.is_floating_point():
            return value.to(dtype=param.dtype, device=param.device, copy=True)
        return value.to(device=param.device, copy=True)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a dict from :meth:`state_dict` (also one written by torch and converted to jitorch tensors).

        Saved parameters are matched to this optimizer's parameters by position within the groups;
        state tensors are copied (floating ones cast to their parameter's dtype, ``step`` kept).
        """
        state_dict = dict(state_dict)
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = result
        if "param_groups" not in state_dict or "state" not in state_dict:
            raise ValueError("optimizer state dict must have the keys 'state' and 'param_groups', "
                             f"got {sorted(map(str, state_dict))}")
        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}, this optimizer has {len(groups)})")
        for i, (g, sg) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                                 f"optimizer's group (group {i}: {len(sg['params'])} saved, {len(g['params'])} here)")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))

        def _cast(param, value, param_id=None, param_groups=None, key=None):
            if isinstance(value, Tensor):
                return Optimizer._process_value_according_to_param_policy(param, value, param_id, param_groups, key)
            if isinstance(value, dict):
                return {k: _cast(param, v, param_id=param_id, param_groups=param_groups, key=k)
                        for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(_cast(param, v, param_id=param_id, param_groups=param_groups) for v in value)
            return value

        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = _cast(param, v, param_id=k, param_groups=state_dict["param_groups"])
            else:
                state[k] = v

        def update_group(group, new_group):
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            return new_group

        param_groups = [update_group(g, ng) for g, ng in zip(groups, saved_groups)]
        self.__setstate__({"state": state, "param_groups": param_groups})
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    # ------------------------------------------------------------ grads and groups
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's ``.grad``: to ``None`` (default), or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                if g.grad_fn is not None:
                    g.detach_()
                else:
                    g.requires_grad = False
                zero_ = getattr(g, "zero_", None)
                if zero_ is not None:
                    zero_()
                else:
                    g._data[...] = 0
                    g._bump()

    def step(self, closure=None):
        """Perform a single optimization step (subclasses implement it)."""
        raise NotImplementedError

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (``{"params": ..., option: value}``); missing options come from the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering of "
                            "tensors in sets will change between runs. Please use a list instead.")
        else:
            param_group["params"] = list(params)
        tensors, names = [], []
        for param in param_group["params"]:
            if isinstance(param, tuple):
                names.append(param[0])
                tensors.append(param[1])
            else:
                tensors.append(param)
        param_group["params"] = tensors
        if names:
            if len(names) == len(tensors):
                param_group["param_names"] = names
            else:
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
        for param in param_group["params"]:
            if not isinstance(param, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                f"{type(param).__module__}.{type(param).__name__}")
            if not (param.is_leaf or getattr(param, "_retains_grad", False)):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        params = param_group["params"]
        if len(params) != len({id(p) for p in params}):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will cause "
                          "an error; see github.com/pytorch/pytorch/issues/40967 for more information", stacklevel=3)
        seen: set[int] = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                current = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {current} to the optimizer")
        if any(id(p) in seen for p in param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------ helpers for subclasses
    def _params_with_grad(self, group):
        for p in group["params"]:
            g = p.grad
            if g is not None:
                if getattr(g, "is_sparse", False):
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                yield p, g

    @staticmethod
    def _closure(closure):
        if closure is None:
            return None
        with _enable_grad():
            return closure()

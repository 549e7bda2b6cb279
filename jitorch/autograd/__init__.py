"""Reverse-mode automatic differentiation with torch's API.

Ops record a graph while grad mode is on and an input requires grad (the dispatch hook installed
below); ``Tensor.backward`` / :func:`grad` walk it with the engine. Gradient rules live in the op
table (``OpDef.vjp``, written with jitorch ops: see :mod:`jitorch.autograd._vjp`), so backward can
itself be recorded (``create_graph=True``) and traced.

Interaction with other layers:
- Optimizers update parameters under ``no_grad()`` (in-place ops on leaves that require grad raise
  otherwise) and zero grads with ``p.grad = None`` or ``p.grad.zero_()``.
- Modules' parameters are leaves with ``requires_grad=True``; ``.grad`` accumulates across
  backward calls.
"""
from __future__ import annotations

from .. import _dispatch
from ..tensor import Tensor
from . import graph as _graph
from .engine import backward, detect_anomaly, grad, is_anomaly_enabled, set_detect_anomaly
from .function import Function, FunctionCtx, InplaceFunction, once_differentiable
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                        set_grad_enabled)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .graph import Node, RemovableHandle

__all__ = ["backward", "grad", "Function", "FunctionCtx", "InplaceFunction", "once_differentiable", "no_grad",
           "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled", "is_inference_mode_enabled",
           "gradcheck", "gradgradcheck", "GradcheckError", "Node", "Variable", "detect_anomaly",
           "set_detect_anomaly", "is_anomaly_enabled", "functional"]


class _Variable:
    """torch.autograd.Variable is Tensor nowadays."""

    def __new__(cls, data, requires_grad=False):
        t = data.detach()
        t.requires_grad = requires_grad
        return t


Variable = _Variable


# ---------------------------------------------------------------------------------------------- Tensor methods

def _backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradient of this tensor w.r.t. the graph leaves into their ``.grad``."""
    backward((self,), None if gradient is None else (gradient,), retain_graph, create_graph, inputs=inputs)


def _register_hook(self, hook):
    """``hook(grad) -> Tensor or None`` runs when this tensor's gradient is computed."""
    if not self.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if self.grad_fn is None:
        if self._hooks is None:
            self._hooks = _graph._HookDict()
        h = _graph.RemovableHandle(self._hooks)
        self._hooks[h.id] = hook
        return h
    return self.grad_fn._add_tensor_hook(self._output_nr, hook)


def _register_post_accumulate_grad_hook(self, hook):
    """``hook(tensor)`` runs after ``tensor.grad`` was accumulated (leaves only)."""
    if not self.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if self.grad_fn is not None:
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
    store = self.__dict__.get("_post_acc_hooks")
    if store is None:
        store = self.__dict__["_post_acc_hooks"] = _graph._HookDict()
    h = _graph.RemovableHandle(store)
    store[h.id] = hook
    return h


def _retain_grad(self):
    """Keep ``.grad`` for this non-leaf tensor during backward (a no-op on leaves)."""
    if not self.requires_grad:
        raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
    if self.grad_fn is None or self._retains_grad:
        return
    import weakref
    fn = self.grad_fn
    if fn._retain is None:
        fn._retain = {}
    fn._retain[self._output_nr] = weakref.ref(self)
    self._retains_grad = True


def _retains_grad(self):
    return bool(self._retains_grad) and self.grad_fn is not None


def _detach_(self):
    if self._base is not None and self.grad_fn is not None:
        raise RuntimeError("Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel "
                           "(DDP) for training, and gradient_as_bucket_view is set as True, gradients are views of DDP "
                           "buckets, and hence detach_() cannot be called on these gradients. To fix this error, please "
                           "refer to the Optimizer.zero_grad() function in torch/optim/optimizer.py as the solution.")
    self.grad_fn = None
    self.requires_grad = False
    return self


Tensor.backward = _backward
Tensor.register_hook = _register_hook
Tensor.register_post_accumulate_grad_hook = _register_post_accumulate_grad_hook
Tensor.retain_grad = _retain_grad
Tensor.retains_grad = property(_retains_grad)
Tensor.detach_ = _detach_

# ---------------------------------------------------------------------------------------------- install
_dispatch.hooks.autograd = _graph.record
_dispatch.hooks.inplace_check = _graph.inplace_check

from . import _vjp  # noqa: E402,F401  (rule kit, imported by the op modules' VJPS sections)
from . import functional  # noqa: E402,F401

"""``jitorch.autograd.Function``: user-defined ops with a hand-written backward, torch's API.

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    y = Exp.apply(x)

The ``ctx`` is the graph node itself (as in torch): ``save_for_backward``/``saved_tensors`` (with
version checks), ``needs_input_grad``, ``mark_dirty``, ``mark_non_differentiable``,
``set_materialize_grads``, and any attribute you set. The ``setup_context(ctx, inputs, output)``
style (forward without ctx) works too. ``backward`` runs with grad mode on under
``create_graph``, so a backward written with jitorch ops differentiates again.
"""
from __future__ import annotations

import functools

from .._dispatch import hooks
from ..tensor import Tensor
from .graph import FREED_MSG, Node, _version_error, gradient_edge, zeros_expanded

__all__ = ["Function", "FunctionCtx", "BackwardCFunction", "once_differentiable", "InplaceFunction"]


class FunctionCtx:
    """The methods ``forward`` may call on ``ctx``."""

    __slots__ = ()

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{tensors.index(t)} is of type {type(t).__name__}")
        self._to_save = tensors

    def mark_dirty(self, *args):
        self._dirty = args

    def mark_non_differentiable(self, *args):
        self._non_differentiable = args

    def set_materialize_grads(self, value: bool):
        self._materialize = bool(value)

    def save_for_forward(self, *tensors):
        self._saved_for_forward = tensors


class BackwardCFunction(Node, FunctionCtx):
    """The graph node of one ``Function.apply`` call; also its ``ctx``."""

    _forward_cls = None

    def __init__(self):
        self._init(0)
        self._to_save = None
        self._saved = None
        self._dirty = ()
        self._non_differentiable = ()
        self._materialize = True
        self.needs_input_grad = ()
        self._out_meta = ()
        self._is_tensor_input = ()

    def name(self):
        return self._forward_cls.__name__ + "Backward"

    # ---- saved tensors
    def _pack(self, outputs):
        if self._to_save is None:
            return
        packed = []
        for t in self._to_save:
            if t is None:
                packed.append(None)
                continue
            is_out = next((i for i, o in enumerate(outputs) if o is t), None)
            if is_out is not None:
                a = Tensor._wrap(t._data, t._device)
                a._version_box = t._version_box
                packed.append((a, t._version_box.value, is_out))
            else:
                packed.append((t, t._version_box.value, None))
        self._saved = tuple(packed)
        self._to_save = None

    @property
    def saved_tensors(self):
        if self._saved is None:
            if self.released:
                raise RuntimeError(FREED_MSG)
            if self._to_save is not None:  # accessed inside forward
                return tuple(self._to_save)
            return ()
        out = []
        for p in self._saved:
            if p is None:
                out.append(None)
                continue
            t, v, nr = p
            if t._version_box.value != v:
                raise _version_error(t, v, self.name() if nr is not None else (
                    t.grad_fn.name() if t.grad_fn is not None else None), nr if nr is not None else t._output_nr,
                    self.name())
            if nr is not None:
                b = Tensor._wrap(t._data, t._device)
                b._version_box = t._version_box
                if hooks.grad_enabled:
                    b.grad_fn = self
                    b.requires_grad = True
                    b._output_nr = nr
                t = b
            out.append(t)
        return tuple(out)

    saved_variables = saved_tensors

    def release(self):
        self.released = True
        self._saved = None

    # ---- backward
    def apply(self, grads):
        if self.released and self._saved is None and getattr(self, "_had_saved", False):
            raise RuntimeError(FREED_MSG)
        grads = list(grads)
        if self._materialize:
            for i, g in enumerate(grads):
                if g is None and self._out_meta[i] is not None:
                    shape, npd = self._out_meta[i]
                    grads[i] = zeros_expanded(shape, npd, next((x._device for x in grads if x is not None), None))
        cls = self._forward_cls
        res = cls.backward(self, *grads)
        if not isinstance(res, tuple):
            res = (res,)
        n = len(self.next)
        if len(res) != n:
            if len(res) > n and all(r is None for r in res[n:]):
                res = res[:n]
            else:
                raise RuntimeError(f"function {self.name()} returned an incorrect number of gradients "
                                   f"(expected {n}, got {len(res)})")
        out = []
        for i, (g, e) in enumerate(zip(res, self.next)):
            if g is not None and not self._is_tensor_input[i]:
                raise RuntimeError(f"function {self.name()} returned a gradient different than None at position "
                                   f"{i + 1}, but the corresponding forward input was not a Variable")
            if e is None or g is None:
                out.append(None)
                continue
            if not isinstance(g, Tensor):
                raise TypeError(f"function {self.name()} returned a {type(g).__name__} as gradient {i}; expected a Tensor")
            shape, npd = self._in_meta[i]
            if g._data.shape != shape:
                from ._vjp import sum_to
                try:
                    g = sum_to(g, shape)
                except RuntimeError:
                    raise RuntimeError(
                        f"Function {self.name()} returned an invalid gradient at index {i} - got {list(g.shape)} but "
                        f"expected shape compatible with {list(shape)}") from None
            if g._data.dtype != npd:
                g = g.to(_np_to_dtype(npd))
            out.append(g)
        return out


def _np_to_dtype(npd):
    from .. import _dtype as D
    return D._BY_NP[npd]


class FunctionMeta(type):
    """Creates the backward node class ``<Name>Backward`` of every Function subclass."""

    def __init__(cls, name, bases, attrs):
        backward_fn = type(name + "Backward", (BackwardCFunction,), {"_forward_cls": cls})
        cls._backward_cls = backward_fn
        super().__init__(name, bases, attrs)


class Function(FunctionCtx, metaclass=FunctionMeta):
    """Base class of custom differentiable ops; call ``MyFn.apply(*args)``."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError("Legacy autograd function with non-static forward method is deprecated. Please use new-style "
                           "autograd function with static forward method: call MyFunction.apply(...)")

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        node = cls._backward_cls()
        is_tensor = tuple(isinstance(a, Tensor) for a in args)
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = hooks.grad_enabled and any(needs)
        node.needs_input_grad = needs
        node._is_tensor_input = is_tensor
        uses_setup = cls.setup_context is not Function.setup_context
        prev = hooks.grad_enabled
        hooks.grad_enabled = False
        try:
            if uses_setup:
                output = cls.forward(*args, **kwargs)
            else:
                output = cls.forward(node, *args, **kwargs)
        finally:
            hooks.grad_enabled = prev
        if uses_setup:
            cls.setup_context(node, args, output)
        single = not isinstance(output, tuple)
        outputs = (output,) if single else output
        if not record:
            node._to_save = None
            return output
        node.next = tuple(gradient_edge(a) if n else None for a, n in zip(args, needs))
        node._in_meta = tuple((a._data.shape, a._data.dtype) if isinstance(a, Tensor) else None for a in args)
        dirty = {id(t) for t in node._dirty}
        non_diff = {id(t) for t in node._non_differentiable}
        input_ids = {id(a) for a in args if isinstance(a, Tensor)}
        new_outputs = []
        out_meta = []
        for i, o in enumerate(outputs):
            if not isinstance(o, Tensor):
                new_outputs.append(o)
                out_meta.append(None)
                continue
            if id(o) in dirty:
                if o.requires_grad and o.grad_fn is None:
                    raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
                o._bump()
            elif id(o) in input_ids:
                # an input returned as is: torch hands back a new tensor sharing its data
                alias = Tensor._wrap(o._data, o._device)
                alias._version_box = o._version_box
                o = alias
            if id(o) in non_diff or o._data.dtype.kind != "f":
                o.requires_grad = False
                out_meta.append(None)
            else:
                o.grad_fn = node
                o.requires_grad = True
                o._output_nr = i
                out_meta.append((o._data.shape, o._data.dtype))
            new_outputs.append(o)
        node.n_out = len(outputs)
        node._out_meta = tuple(out_meta)
        node._had_saved = node._to_save is not None and len(node._to_save) > 0
        node._pack(new_outputs)
        return new_outputs[0] if single else tuple(new_outputs)


class InplaceFunction(Function):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace


def once_differentiable(fn):
    """Run ``backward`` without recording (its result cannot be differentiated again)."""
    @functools.wraps(fn)
    def wrapper(ctx, *args):
        prev = hooks.grad_enabled
        hooks.grad_enabled = False
        try:
            out = fn(ctx, *args)
        finally:
            hooks.grad_enabled = prev
        return out
    return wrapper

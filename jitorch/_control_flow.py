"""Control flow as ops: ``jitorch.cond`` and ``jitorch.while_loop`` (torch.cond, torch.while_loop).

Eagerly they run Python control flow. While tracing (jit.trace / jit.script) each function is
traced into a sub-graph and the graph gets one ``cond`` / ``while_loop`` node, so the decision is
made on every call of the traced function instead of being baked in at trace time.
"""
from __future__ import annotations

from .tensor import Tensor


def _operands(op, xs):
    if isinstance(xs, Tensor):
        xs = (xs,)
    if not isinstance(xs, (tuple, list)):
        raise TypeError(f"{op}: operands must be a tuple of tensors, got {type(xs).__name__}")
    for k, x in enumerate(xs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{op}: operand {k} must be a Tensor, got {type(x).__name__}; close over Python values "
                            "in the functions instead")
    return tuple(xs)


def _truth(op, value):
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise RuntimeError(f"{op}: the predicate must be a one-element tensor (or a bool), got shape "
                               f"{list(value.shape)}")
        return bool(value._data.reshape(-1)[0])
    return bool(value)


def cond(pred, true_fn, false_fn, operands=()):
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``, traceable.

    ``pred`` is a bool or a one-element tensor; both functions take the operands and must return
    tensors (or tuples/lists of tensors) of the same shapes and dtypes. Under ``jit.trace`` both
    are traced into sub-graphs of one ``cond`` node, so the choice is made on every call.

    >>> import jitorch
    >>> x = jitorch.tensor([1.0, -2.0])
    >>> jitorch.cond(x.sum() > 0, lambda t: t * 2, lambda t: t - 1, (x,))
    tensor([ 0., -3.])
    """
    from .jit import _tracing
    if _tracing.is_tracing():
        return _tracing.trace_cond(pred, true_fn, false_fn, _operands("cond", operands))
    ops = _operands("cond", operands)
    return (true_fn if _truth("cond", pred) else false_fn)(*ops)


def _as_tuple(op, out, n):
    if isinstance(out, Tensor):
        out = (out,)
    if not isinstance(out, (tuple, list)) or len(out) != n or not all(isinstance(t, Tensor) for t in out):
        raise RuntimeError(f"{op}: body_fn must return a tuple of {n} tensors (one per carried value), got "
                           f"{type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    return tuple(out)


def _eager_while(cond_fn, body_fn, carried):
    carried = tuple(carried)
    while _truth("while_loop", cond_fn(*carried)):
        new = _as_tuple("while_loop", body_fn(*carried), len(carried))
        for k, (a, b) in enumerate(zip(carried, new)):
            if a.shape != b.shape or a.dtype is not b.dtype:
                raise RuntimeError(f"while_loop: body_fn changed carried value {k} from {a.dtype.short}{list(a.shape)} "
                                   f"to {b.dtype.short}{list(b.shape)}; carried values keep their shape and dtype")
        carried = new
    return carried


def while_loop(cond_fn, body_fn, carried_inputs):
    """Repeat ``carried = body_fn(*carried)`` while ``cond_fn(*carried)``; returns the carried tuple.

    Carried values keep their shapes and dtypes. Under ``jit.trace`` the loop is one
    ``while_loop`` node holding both functions as sub-graphs (torch.while_loop's contract).

    >>> import jitorch
    >>> i, x = jitorch.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x * 2),
    ...                           (jitorch.tensor(0), jitorch.tensor(1.0)))
    >>> int(i), float(x)
    (3, 8.0)
    """
    from .jit import _tracing
    carried = _operands("while_loop", carried_inputs)
    if _tracing.is_tracing():
        return _tracing.trace_while(cond_fn, body_fn, carried)
    return _eager_while(cond_fn, body_fn, carried)

"""Grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``.

The switch itself is ``jitorch._dispatch.hooks.grad_enabled``: dispatch reads it before calling the
autograd hook, so a disabled mode costs one attribute read per op. Each class works as a context
manager and as a decorator (``@no_grad()`` and ``@no_grad``), on plain functions and generators.
The mode is process-global (jitorch runs ops on the calling thread; DataLoader workers are
processes).
"""
from __future__ import annotations

import functools
import inspect

from .._dispatch import hooks

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled"]

_state = {"inference": False}


def is_grad_enabled() -> bool:
    """True when ops record the autograd graph."""
    return hooks.grad_enabled


def is_inference_mode_enabled() -> bool:
    return _state["inference"]


class _DecoratorContextManager:
    """A context manager usable as ``@cls()``, ``@cls`` and ``with cls():``."""

    def __new__(cls, *args, **kwargs):
        # ``@no_grad`` without parentheses: the class is called with the function itself
        if cls is not set_grad_enabled and len(args) == 1 and not kwargs and callable(args[0]) \
                and not isinstance(args[0], bool):
            self = super().__new__(cls)
            self.__init__()
            return self(args[0])
        return super().__new__(cls)

    def clone(self):
        return self.__class__()

    def __call__(self, func):
        if inspect.isclass(func):
            raise RuntimeError(f"{type(self).__name__} can decorate functions, not classes")
        if inspect.isgeneratorfunction(func):
            @functools.wraps(func)
            def gen_wrapper(*args, **kwargs):
                gen = func(*args, **kwargs)
                try:
                    with self.clone():
                        request = gen.send(None)
                    while True:
                        try:
                            response = yield request
                        except GeneratorExit:
                            with self.clone():
                                gen.close()
                            raise
                        except BaseException as e:
                            with self.clone():
                                request = gen.throw(e)
                        else:
                            with self.clone():
                                request = gen.send(response)
                except StopIteration as e:
                    return e.value
            return gen_wrapper

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.clone():
                return func(*args, **kwargs)
        return wrapper


class no_grad(_DecoratorContextManager):
    """Ops inside do not record the graph: results have ``requires_grad=False``.

    Use it for evaluation and for optimizer updates of parameters (in-place ops on leaves that
    require grad are allowed only here).
    """

    def __init__(self):
        self.prev = False

    def __enter__(self):
        self.prev = hooks.grad_enabled
        hooks.grad_enabled = False

    def __exit__(self, *exc):
        hooks.grad_enabled = self.prev
        return False


class enable_grad(_DecoratorContextManager):
    """Re-enable recording inside a ``no_grad`` region."""

    def __init__(self):
        self.prev = False

    def __enter__(self):
        self.prev = hooks.grad_enabled
        hooks.grad_enabled = True

    def __exit__(self, *exc):
        hooks.grad_enabled = self.prev
        return False


class set_grad_enabled(_DecoratorContextManager):
    """``set_grad_enabled(False)`` switches the mode now; as a context manager it restores the
    previous mode on exit."""

    def __init__(self, mode: bool):
        self.prev = hooks.grad_enabled
        self.mode = bool(mode)
        hooks.grad_enabled = self.mode

    def __call__(self, func):
        hooks.grad_enabled = self.prev  # used as a decorator: the mode applies only inside func
        return super().__call__(func)

    def __enter__(self):
        hooks.grad_enabled = self.mode

    def __exit__(self, *exc):
        hooks.grad_enabled = self.prev
        return False

    def clone(self):
        return self.__class__(self.mode)


class inference_mode(_DecoratorContextManager):
    """Like ``no_grad`` (``inference_mode(False)`` does nothing); ``is_inference_mode_enabled()``
    reports it."""

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)
        self.prev = None

    def __enter__(self):
        self.prev = (hooks.grad_enabled, _state["inference"])
        if self.mode:
            hooks.grad_enabled = False
            _state["inference"] = True

    def __exit__(self, *exc):
        hooks.grad_enabled, _state["inference"] = self.prev
        return False

    def clone(self):
        return self.__class__(self.mode)

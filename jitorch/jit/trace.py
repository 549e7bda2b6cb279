"""jit.trace and jit.script: run a function once with tracing on and keep the graph.

``trace(fn_or_module, example_inputs)`` returns a callable with ``.graph`` (the IR after the pass
pipeline), ``.raw_graph`` (as recorded) and ``.code`` (the Python it runs). Calls check the inputs
against the traced types (the graph is specialized to shapes and dtypes: a different shape is an
error, never a silently wrong result), bind module parameters and buffers by name at call time
(so training updates are seen), run the generated code through eager dispatch, and write back
updated inputs and buffers.
"""
from __future__ import annotations

import ast
import difflib
import inspect
import textwrap
import warnings

import numpy as np

from .. import _dispatch
from . import _logging, _pytree
from ._tracing import TracerError, TracerWarning, run_trace
from .codegen import compile_python
from .graph_ops import is_pure
from .passes import run_passes
from .text import format_graph
from .verify import verify


class TracingCheckError(TracerError):
    """check_trace/check_inputs found a trace that differs from another one (torch's name)."""


class ScriptError(TracerError):
    """jit.script could not capture the function."""


def _is_module(obj):
    return callable(getattr(obj, "named_parameters", None)) and callable(getattr(obj, "named_buffers", None))


def _module_state(module):
    seen, out = set(), []
    for kind, items in (("param", module.named_parameters()), ("buffer", module.named_buffers())):
        for name, t in items:
            if t is None or id(t) in seen:
                continue
            seen.add(id(t))
            out.append((t, name, kind))
    return out


def _arg_names(fn, args, kwargs):
    target = fn.forward if _is_module(fn) and hasattr(fn, "forward") else fn
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and len(names) < len(args):
            names.append(p.name)
        elif p.kind is p.VAR_POSITIONAL:
            names += [f"{p.name}_{i}" for i in range(len(args) - len(names))]
    names += [f"arg{i}" for i in range(len(names), len(args))]
    return names + list(kwargs)


def _flatten_inputs(fn, args, kwargs, allow_python):
    """Tensor leaves of the arguments with a graph input name each, and the structure spec."""
    names = _arg_names(fn, args, kwargs)
    values = list(args) + list(kwargs.values())
    leaves, named = [], []
    for name, v in zip(names, values):
        ls, spec = _pytree.flatten(v)
        if not allow_python and (spec[0] == "const" or _has_const(spec)):
            raise TypeError(
                f"jit.trace: argument {name!r} is {_pytree.describe(spec)}; only Tensors and (possibly nested) "
                "tuples, lists and dicts of Tensors can be traced. Bind other values first, e.g. "
                "jit.trace(functools.partial(fn, n=3), (x,)), or use jit.script, which retraces per value.")
        leaves += ls
        named += list(zip(ls, _pytree.leaf_paths(spec, name)))
    _, spec = _pytree.flatten((tuple(args), dict(kwargs)))
    return named, spec


def _has_const(spec):
    kind = spec[0]
    kids = spec[1] if kind in ("tuple", "list") else spec[2] if kind in ("dict", "namedtuple") else ()
    return any(c[0] == "const" or _has_const(c) for c in kids)


def _type_str(t):
    return f"{t.dtype.short}[{','.join(str(s) for s in t.shape)}]"


class TracedFunction:
    """The result of jit.trace: call it like the original; ``.graph``, ``.code``, ``.raw_graph``."""

    def __init__(self, fn, raw_graph, graph, in_spec, out_spec, module=None, states=None):
        self._fn = fn
        self.raw_graph = raw_graph
        self.graph = graph
        self._in_spec = in_spec
        self._out_spec = out_spec
        self._module = module
        self._training = getattr(module, "training", None) if module is not None else None
        self._run, self.code = compile_python(graph)
        self._consts = None
        self._states = dict(states or {})  # state input name -> the live tensor (read and written by reference)
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.__doc__ = getattr(fn, "__doc__", None)

    @property
    def inlined_graph(self):  # torch's name; sub-functions are already inlined by tracing
        return self.graph

    def _constants(self):
        if self._consts is None:
            self._consts = {k: _dispatch._Tensor._wrap(v) for k, v in self.graph.constants.items()}
        return self._consts

    def __call__(self, *args, **kwargs):
        g = self.graph
        leaves, spec = _pytree.flatten((tuple(args), dict(kwargs)))
        if spec != self._in_spec:
            raise TypeError(f"traced {g.name}: expected arguments structured as {_pytree.describe(self._in_spec)}, "
                            f"got {_pytree.describe(spec)}")
        bound = {}
        users = [i for i in g.inputs if i.kind == "input"]
        for i, t in zip(users, leaves):
            bound[i.name] = t
        if self._module is not None:
            training = getattr(self._module, "training", None)
            if training != self._training:
                mode = {True: "train", False: "eval"}
                raise RuntimeError(
                    f"traced {g.name}: the module was traced in {mode.get(self._training)} mode and is now in "
                    f"{mode.get(training)} mode; modes record different graphs (dropout, batch norm), so trace "
                    "it again in this mode")
            state = {name: t for t, name, _ in _module_state(self._module)}
            for i in g.inputs:
                if i.kind in ("param", "buffer"):
                    if i.name not in state:
                        raise RuntimeError(f"traced {g.name}: the module no longer has {i.kind} {i.name!r}")
                    bound[i.name] = state[i.name]
        bound.update(self._states)
        bound.update(self._constants())
        for i in g.inputs:
            t = bound[i.name]
            if tuple(t.shape) != i.type.shape or t.dtype is not i.type.dtype:
                raise RuntimeError(
                    f"traced {g.name}: {i.kind} %{i.name} was traced as {_type_str(i.type)}, got "
                    f"{t.dtype.short}{list(t.shape)}. jit.trace specializes the graph to the example's shapes and "
                    "dtypes; trace again with an input like this one (jit.script retraces per signature).")
        res = self._run(*[bound[i.name] for i in g.inputs])
        n = len(g.outputs)
        for (name, _), value in zip(g.updates, res[n:]):
            _dispatch.call_inplace("copy", bound[name], value)
        outs = [r.clone() if o in g.constants else r  # never hand out the graph's own constant data
                for o, r in zip(g.outputs, res[:n])]
        return _pytree.unflatten(self._out_spec, outs)

    def save(self, f, **kwargs):
        """Export to a ``.jt`` file: ``jitorch.jit.save(self, f, **kwargs)`` (docs/format.md)."""
        from .export import save
        save(self, f, **kwargs)

    def __repr__(self):
        return f"<traced {self.graph.name}: {len(self.graph.nodes)} nodes>"


class TracedModule(TracedFunction):
    """jit.trace of a module: also exposes the module's parameters, buffers and attributes."""

    def named_parameters(self, *a, **k):
        return self._module.named_parameters(*a, **k)

    def named_buffers(self, *a, **k):
        return self._module.named_buffers(*a, **k)

    def parameters(self, *a, **k):
        return (p for _, p in self._module.named_parameters(*a, **k))

    def buffers(self, *a, **k):
        return (b for _, b in self._module.named_buffers(*a, **k))

    def forward(self, *args, **kwargs):
        return self(*args, **kwargs)

    @property
    def module(self):
        return self._module

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._module, name)


def _trace_impl(fn, args, kwargs, strict, allow_python=False, log=True, names=None):
    module = fn if _is_module(fn) else None
    name = getattr(fn, "_trace_name", None) or (
        type(fn).__name__ if module is not None else getattr(fn, "__name__", type(fn).__name__))
    named, in_spec = _flatten_inputs(fn, args, kwargs, allow_python)
    if names is not None:
        named = [(t, n) for (t, _), n in zip(named, names)]
    params = _module_state(module) if module is not None else []
    raw, out_spec, out_leaves, states = run_trace(fn, args, kwargs, named, params, name, strict)
    if log and _logging.enabled("graph"):
        _logging.log("graph", f"after trace of {raw.name}", str(raw))
    verify(raw, after="trace")
    graph = run_passes(raw, log=log)
    cls = TracedModule if module is not None else TracedFunction
    return cls(fn, raw, graph, in_spec, out_spec, module, states), out_leaves


def _clone_args(x):
    leaves, spec = _pytree.flatten(x)
    return _pytree.unflatten(spec, [t.detach().clone() for t in leaves])


def _data_copy(data):
    """A copy of a tensor's storage, to undo tracing's effects: NumPy arrays, cuda arrays (a device copy)."""
    if isinstance(data, np.ndarray):
        return np.array(data, copy=True)
    if type(data).__name__ == "CudaArray":
        return data.copy()
    return None


def _snapshot(module, states=()):
    ts = [t for t, _, _ in _module_state(module)] if module is not None else []
    ts += list(states)
    return [(t, c) for t in ts for c in (_data_copy(t._data),) if c is not None]


def _restore(snap):
    for t, saved in snap:
        if isinstance(saved, np.ndarray):
            t._data[...] = saved
        else:  # cuda
            from ..backends.cuda import copy_into
            copy_into(t._data, saved)


def _graph_diff(a, b, label_a, label_b):
    ta, tb = format_graph(a, shapes=False), format_graph(b, shapes=False)
    if ta == tb:
        return None
    return "".join(difflib.unified_diff(ta.splitlines(True), tb.splitlines(True), label_a, label_b))


def _compare_outputs(traced, check, outs, tol, k):
    got_leaves, _ = _pytree.flatten(traced(*check))
    for j, (got, want) in enumerate(zip(got_leaves, outs)):
        g, w = np.asarray(got.detach().cpu()._data), np.asarray(want.detach().cpu()._data)  # cuda outputs too
        ok = g.shape == w.shape and (np.allclose(g, w, rtol=tol, atol=tol, equal_nan=True)
                                     if g.dtype.kind == "f" else np.array_equal(g, w))
        if not ok:
            warnings.warn(TracerWarning(
                f"check_inputs[{k}]: output {j} of the traced function does not match the Python function's "
                f"(max difference {np.max(np.abs(g.astype(np.float64) - w.astype(np.float64))) if g.shape == w.shape else 'shapes ' + str((g.shape, w.shape))}). "
                "A value was probably baked into the trace (strict=False), or the function is nondeterministic."),
                stacklevel=3)


def _check(fn, traced, check_inputs, tol, strict):
    module = traced._module
    for k, ci in enumerate(check_inputs):
        ci = (ci,) if isinstance(ci, _dispatch._Tensor) else tuple(ci)
        snap = _snapshot(module, traced._states.values())
        try:
            other, outs = _trace_impl(fn, _clone_args(ci), {}, strict, log=False)
        finally:
            _restore(snap)
        diff = _graph_diff(traced.graph, other.graph, "traced with example_inputs", f"traced with check_inputs[{k}]")
        if diff is not None:
            raise TracingCheckError(
                f"Graphs differed across invocations: tracing {traced.graph.name} with check_inputs[{k}] gives another "
                "graph (types shown without shapes). The function's ops depend on the values or shapes of its inputs "
                "(Python control flow, sizes or values baked into attributes); jit.trace records one path. Use "
                f"jitorch.cond / jitorch.where / jitorch.while_loop to keep the decision in the graph.\n{diff}")
        same_types = format_graph(traced.graph) == format_graph(other.graph)
        if same_types and all(is_pure(n) for n in traced.graph.nodes):
            snap = _snapshot(module, traced._states.values())
            try:
                _compare_outputs(traced, _clone_args(ci), outs, tol, k)
            finally:
                _restore(snap)


def trace(func, example_inputs=None, optimize=None, check_trace=True, check_inputs=None, check_tolerance=1e-5,
          strict=True, _force_outplace=False, _module_class=None, _compilation_unit=None, example_kwarg_inputs=None,
          _store_inputs=True):
    """Trace ``func`` (a function or a module) on ``example_inputs`` (a tensor or a tuple) into a graph.

    Module parameters and buffers (``named_parameters()``/``named_buffers()``) become named graph
    inputs, bound at call time; other tensors the function reads become constants. A Python
    decision on a traced value (``bool``, ``item``, ``int``, ``float``, ``tolist``, ``numpy``,
    iteration, use as a size) raises :class:`TracerError` naming the ops that produced the value
    and the line; ``strict=False`` turns it into a :class:`TracerWarning`. ``check_inputs`` (a list
    of input tuples) re-traces and raises :class:`TracingCheckError` with an IR diff when a graph
    differs; with ``check_trace`` and no check inputs, the example inputs are traced twice.

    >>> import jitorch
    >>> def f(x):
    ...     return (x * 2).relu()
    >>> traced = jitorch.jit.trace(f, jitorch.ones(3))
    >>> print(traced.graph, end="")  # doctest: +ELLIPSIS
    jitorch-ir 1
    graph f(%x: f32[3]):
      %0: f32[3] = mul(%x, 2)        # <doctest ...>:2
      %1: f32[3] = relu(%0)          # <doctest ...>:2
      return %1
    >>> traced(jitorch.tensor([-1.0, 0.5, 2.0]))
    tensor([0., 1., 4.])
    """
    if example_inputs is None and example_kwarg_inputs is None:
        raise ValueError("jit.trace needs example_inputs (a tensor or a tuple of tensors)")
    if isinstance(example_inputs, _dispatch._Tensor):
        args = (example_inputs,)
    else:
        args = tuple(example_inputs or ())
    kwargs = dict(example_kwarg_inputs or {})
    checks = list(check_inputs) if check_inputs is not None else None
    if checks is None and check_trace and not kwargs:
        checks = [_clone_args(args)]  # cloned before tracing: the function may write into its inputs
    traced, _ = _trace_impl(func, args, kwargs, strict)
    if checks:
        _check(func, traced, checks, check_tolerance, strict)
    return traced


# ---------------------------------------------------------------- script

def _control_flow_lines(fn):
    """'line 12: if x.sum() > 0:' for each Python if/while/for/assert in fn's source (best effort)."""
    target = fn.forward if _is_module(fn) and hasattr(fn, "forward") else fn
    try:
        src, start = inspect.getsourcelines(target)
    except (OSError, TypeError):
        return []
    text = textwrap.dedent("".join(src))
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    lines = text.splitlines()
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.While, ast.For, ast.IfExp, ast.Assert)):
            out.append(f"line {start + node.lineno - 1}: {lines[node.lineno - 1].strip()}")
    return sorted(set(out), key=lambda s: int(s.split(":")[0][5:]))


class ScriptFunction:
    """jit.script(fn): traced on each new input signature (structure, shapes, dtypes, Python values).

    jitorch does not compile Python source: it traces with the strict rules, so Python control flow
    that depends on tensor values is an error naming the line (use jitorch.cond / while_loop), and
    Python control flow on Python values (loops over ranges, flags) is unrolled per signature.
    """

    def __init__(self, fn):
        self._fn = fn
        self._cache = {}
        self._last = None
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.__doc__ = getattr(fn, "__doc__", None)

    def _key(self, args, kwargs):
        leaves, spec = _pytree.flatten((tuple(args), dict(kwargs)))
        sig = tuple((tuple(t.shape), t.dtype.name, str(t.device)) for t in leaves)
        training = getattr(self._fn, "training", None)
        try:
            hash(spec)
        except TypeError:
            spec = repr(spec)
        return (spec, sig, training)

    def _get(self, args, kwargs):
        key = self._key(args, kwargs)
        traced = self._cache.get(key)
        if traced is None:
            leaves, spec = _pytree.flatten((tuple(args), dict(kwargs)))
            names = [n for _, n in _flatten_inputs(self._fn, args, kwargs, allow_python=True)[0]]

            def bound(*tensors):
                a, k = _pytree.unflatten(spec, list(tensors))
                return self._fn(*a, **k)
            bound.__name__ = bound._trace_name = self.__name__
            fn = _BoundModule(self._fn, bound) if _is_module(self._fn) else bound
            try:
                traced, _ = _trace_impl(fn, tuple(leaves), {}, strict=True, names=names)
            except TracerError as e:
                raise ScriptError(self._explain(e)) from e
            self._cache[key] = traced
        self._last = traced
        return traced

    def _explain(self, e):
        lines = _control_flow_lines(self._fn)
        msg = (f"jit.script({self.__name__}): jitorch scripts by tracing, and tracing cannot capture this:\n  {e}\n"
               "  Python control flow on tensor values cannot be captured; write it with jitorch.cond(pred, "
               "true_fn, false_fn, operands), jitorch.while_loop(cond_fn, body_fn, carried) or jitorch.where.")
        if lines:
            msg += "\n  Python control flow in the function (each is evaluated once per traced signature):\n    " + \
                   "\n    ".join(lines)
        return msg

    def __call__(self, *args, **kwargs):
        traced = self._get(args, kwargs)
        leaves, _ = _pytree.flatten((tuple(args), dict(kwargs)))
        return traced(*leaves)

    def graph_for(self, *args, **kwargs):
        return self._get(args, kwargs).graph

    def _require(self):
        if self._last is None:
            raise RuntimeError(f"jit.script({self.__name__}) traces on its first call: call it once (or pass "
                               "example_inputs=[(x,)] to jit.script) before reading .graph or .code")
        return self._last

    @property
    def graph(self):
        return self._require().graph

    @property
    def code(self):
        return self._require().code

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._fn, name)


class _BoundModule:
    """A module's state with a call that rebuilds the Python arguments (for script)."""

    def __init__(self, module, call):
        self._module, self._call = module, call
        self.training = getattr(module, "training", None)
        self._trace_name = type(module).__name__

    def named_parameters(self):
        return self._module.named_parameters()

    def named_buffers(self):
        return self._module.named_buffers()

    def forward(self, *tensors):
        return self._call(*tensors)

    def __call__(self, *tensors):
        return self._call(*tensors)


def script(obj, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    """torch.jit.script's signature; jitorch traces ``obj`` per input signature (see ScriptFunction).

    ``example_inputs`` (a list of argument tuples) traces those signatures right away.
    """
    sf = ScriptFunction(obj)
    for ex in example_inputs or ():
        ex = (ex,) if isinstance(ex, _dispatch._Tensor) else tuple(ex)
        sf._get(ex, {})
    return sf

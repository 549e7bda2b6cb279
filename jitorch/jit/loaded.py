"""LoadedModule: an exported graph (``jitorch.jit.load``) as an ``nn.Module``.

The parameters and buffers are registered under their traced names (``fc1.weight`` lives in a
sub-module ``fc1``), so ``state_dict()``, ``load_state_dict()``, ``parameters()`` for an optimizer
and tracing into a larger graph work as for the original module. A call re-specializes the graph
for the size of its dynamic dim (cached), checks the inputs against the exported types and runs
the graph's generated code through eager dispatch (:class:`jitorch.jit.TracedFunction`): the same
kernels as the original, autograd, and an enclosing trace records the ops again.
"""
from __future__ import annotations

from collections import OrderedDict

from .. import _devices, _dispatch
from ..nn.modules.module import Module
from ..nn.parameter import Parameter
from ..tensor import Tensor
from . import _pytree
from .trace import TracedFunction


def _draws_on(g, device):
    """``g`` with its input-less random draws (op-table records tagged 'random' with a ``device`` attribute)
    running on ``device`` ('cuda:0', or None for the cpu): a graph traced with cuda draws and loaded with
    map_location='cpu' draws on the cpu, and one traced on the cpu draws on the device it is loaded onto.
    Other ops keep their attributes (an explicit ``.to(...)`` in the traced code stays as written)."""
    from ..ops.registry import OPS
    from .ir import Graph
    nodes, changed = [], False
    for n in g.nodes:
        attrs = dict(n.attrs)
        new = {k: (_draws_on(v, device) if isinstance(v, Graph) else v) for k, v in attrs.items()}
        op = OPS.get(n.op)
        if op is not None and "random" in op.tags and "device" in dict(op.attrs or ()):
            if device is None:
                new.pop("device", None)
            else:
                new["device"] = device
        if new != attrs:
            n = n.replace(attrs=new)
            changed = True
        nodes.append(n)
    return g.replace(nodes=tuple(nodes)) if changed else g


class _Submodule(Module):
    """A node of the exported module tree: holds parameters and buffers, is not callable by itself."""

    def __init__(self, type_name):
        super().__init__()
        object.__setattr__(self, "_type_name", type_name)

    def _get_name(self):
        return self._type_name

    def forward(self, *args, **kwargs):
        raise RuntimeError(f"{self._type_name} is part of an exported graph; only the loaded module as a whole "
                           "can be called")


def _type_str(dtype, shape):
    return f"{dtype.short}[{','.join(str(s) for s in shape)}]"


class LoadedModule(Module):
    """A graph loaded by :func:`jitorch.jit.load`: call it like the traced original.

    ``graph`` is the graph at the example sizes, ``graph_for(size)`` the one for another size of
    the dynamic dim, ``code`` the Python it runs, ``meta`` the file's ``meta.json``,
    ``dynamic_dims`` the declared dims; ``save(path)`` writes it back (with the current weights).
    """

    def __init__(self, export):
        super().__init__()
        sa = object.__setattr__
        sa(self, "_jit_export", export)
        sa(self, "_specialized", OrderedDict())
        sa(self, "_live_states", {i.name: Tensor._wrap(export.tensors[i.name].copy())
                                  for i in export.graph.inputs if i.kind == "state"})
        types = dict(export.modules)
        sa(self, "_root_type", types.get("", export.graph.name))
        for path, type_name in export.modules:
            if path:
                self._submodule(path, types)
        for i in export.graph.inputs:
            if i.kind not in ("param", "buffer"):
                continue
            *parents, leaf = i.name.split(".")
            owner = self._submodule(".".join(parents), types) if parents else self
            t = Tensor._wrap(export.tensors[i.name].copy())
            if i.kind == "param":
                owner.register_parameter(leaf, Parameter(t, requires_grad=export.requires_grad.get(i.name, False)))
            else:
                owner.register_buffer(leaf, t)
        self.training = bool(export.training)

    def _submodule(self, path, types):
        m = self
        parts = path.split(".")
        for k, p in enumerate(parts):
            child = m._modules.get(p)
            if child is None:
                child = _Submodule(types.get(".".join(parts[:k + 1]), "Module"))
                m.add_module(p, child)
            m = child
        return m

    def _get_name(self):
        return f"LoadedModule[{self._root_type}]"

    # ------------------------------------------------------------ the exported facts
    @property
    def graph(self):
        """The graph at the example sizes (as in graph.txt, with its constants)."""
        return self._jit_export.graph

    @property
    def meta(self):
        return self._jit_export.meta

    @property
    def dynamic_dims(self):
        """``{input name: {dim: name}}`` (empty for a graph of static shapes)."""
        return {k: dict(v) for k, v in self._jit_export.input_dims.items()}

    @property
    def code(self):
        ex = self._jit_export
        return self._traced(ex.example).code

    def graph_for(self, size):
        """The graph specialized for ``size`` of the dynamic dim (every type re-derived)."""
        return self._traced(size).graph

    def save(self, f):
        """Export again (jitorch.jit.save) with the current parameters and buffers."""
        from .export import save
        save(self, f)

    def _export_now(self):
        """The record to save: the loaded one with the live tensors."""
        from dataclasses import replace
        ex = self._jit_export
        live = dict(self.named_parameters())
        live.update(self.named_buffers())
        live.update(self._live_states)
        tensors = dict(ex.tensors)
        for name in tensors:
            if name in live:
                tensors[name] = live[name]
        grads = {name: bool(live[name].requires_grad) for name in ex.requires_grad if name in live}
        from .export import _host
        dev = self._graph_device()
        return replace(ex, tensors={k: _host(v) for k, v in tensors.items()}, requires_grad=grads, meta=None,
                       device="cuda" if dev is not None and dev.type == "cuda" else "cpu")

    # ------------------------------------------------------------ calls
    def _to_device(self, device):
        """Move the parameters, buffers and captured state tensors to ``device`` (jit.load's map_location)."""
        self.to(device)
        for name, t in list(self._live_states.items()):
            self._live_states[name] = t.to(device)
        self._specialized.clear()

    def _graph_device(self):
        """The device of the graph's tensors (parameters, buffers, state), or None when it holds none."""
        for t in list(self.parameters()) + list(self.buffers()) + list(self._live_states.values()):
            return t.device
        return None

    def _traced(self, size, device=None):
        ex = self._jit_export
        cache = self._specialized
        device = device or self._graph_device()
        cuda = device is not None and device.type == "cuda"
        key = size if ex.symbol is not None else None
        key = (key, "cuda") if cuda else key
        tf = cache.get(key)
        if tf is not None:
            cache.move_to_end(key)
            return tf
        from .export import MAX_SPECIALIZATIONS, check_symbolic, specialize_export, symbolic_types
        g = ex.graph
        if ex.symbol is not None and size != ex.example:
            try:
                g = specialize_export(ex, size)
                sym = self.__dict__.get("_sym_types")
                if sym is None:
                    other = ex.example + 1 if ex.max is None or ex.example + 1 <= ex.max else ex.example - 1
                    g1 = g if size == other else specialize_export(ex, other)
                    sym = symbolic_types(ex.graph, ex.example, g1, other)
                    object.__setattr__(self, "_sym_types", sym)
                check_symbolic(ex, sym, g, size)
            except ValueError as e:
                raise RuntimeError(f"{self._get_name()}: the exported graph does not run with {ex.symbol}={size}: "
                                   f"{e}") from None
        g = _draws_on(g, str(_devices.check_device(device)) if cuda else None)
        tf = TracedFunction(self, g, g, ex.in_spec, ex.out_spec, module=self, states=self._live_states)
        if cuda:  # the graph's constants on the device too (the code runs the ops' cuda impls)
            from ..backends.cuda import from_host
            tf._consts = {k: Tensor._wrap(from_host(v), device) for k, v in g.constants.items()}
        cache[key] = tf
        while len(cache) > MAX_SPECIALIZATIONS:
            cache.popitem(last=False)
        return tf

    def _size_of(self, leaves):
        ex = self._jit_export
        users = ex.user_inputs
        size = None
        device = self._graph_device()
        for i, t in zip(users, leaves):
            if not isinstance(t, _dispatch._Tensor):
                raise TypeError(f"{self._get_name()}: input %{i.name} must be a Tensor, got {type(t).__name__}")
            if device is None:
                device = t.device
            if t.device.type != device.type:
                raise RuntimeError(f"{self._get_name()}: input %{i.name} is on {t.device}, the graph's tensors are on "
                                   f"{device}; move the input with .to({str(device)!r}) (or load with "
                                   f"map_location={t.device.type!r})")
            dims = ex.input_dims.get(i.name, {})
            want = ex.symbolic_shape(i.name, i.type.shape)
            ok = t.dtype is i.type.dtype and t.ndim == i.type.ndim and all(
                d in dims or s == i.type.shape[d] for d, s in enumerate(t.shape))
            if not ok:
                raise RuntimeError(f"{self._get_name()}: input %{i.name} must be {_type_str(i.type.dtype, want)}, "
                                   f"got {_type_str(t.dtype, t.shape)}")
            for d in dims:
                if size is None:
                    size = t.shape[d]
                elif t.shape[d] != size:
                    raise RuntimeError(f"{self._get_name()}: input %{i.name} is {_type_str(t.dtype, t.shape)}, but "
                                       f"an earlier input has {ex.symbol}={size}; every {ex.symbol!r} dim must have "
                                       "the same size")
        if ex.symbol is not None:
            if size < ex.min or (ex.max is not None and size > ex.max):
                raise RuntimeError(f"{self._get_name()}: {ex.symbol}={size} is outside the exported range "
                                   f"{ex.min}..{ex.max if ex.max is not None else ''}")
        return size

    def forward(self, *args, **kwargs):
        ex = self._jit_export
        leaves, spec = _pytree.flatten((tuple(args), dict(kwargs)))
        from .export import _plain_spec
        if _plain_spec(spec) != ex.in_spec:
            raise TypeError(f"{self._get_name()}: expected arguments structured as {_pytree.describe(ex.in_spec)}, "
                            f"got {_pytree.describe(spec)}")
        if ex.training is not None and self.training != ex.training:
            mode = {True: "train", False: "eval"}
            raise RuntimeError(f"{self._get_name()}: the graph was exported in {mode[ex.training]} mode and the module "
                               f"is now in {mode[self.training]} mode; modes record different graphs (dropout, batch "
                               "norm): export it again in this mode")
        size = self._size_of(leaves)
        dev = next((t.device for t in leaves if isinstance(t, _dispatch._Tensor)), None)
        tf = self._traced(size, dev)
        tf._training = self.training  # the mode was checked above
        flat_args, flat_kwargs = _pytree.unflatten(tf._in_spec, leaves)
        return tf(*flat_args, **flat_kwargs)

"""jitorch.jit: the tracer and the script IR (docs/jit.md).

- IR: :class:`Graph`, :class:`Node`, :class:`TensorType`, :class:`Input`; ``str(graph)`` prints the
  text format, :func:`parse` reads it back, :func:`verify` checks it, :func:`interpret` runs it
  with the op table's NumPy references, ``graph.to_dot()`` renders it.
- Capture: :func:`trace` (torch.jit.trace's signature), :func:`script` (traces per signature),
  :func:`is_tracing`; control flow as ops with ``jitorch.cond`` / ``jitorch.while_loop``.
- Passes: pure ``Graph -> Graph`` functions in :data:`PIPELINE`, applied by :func:`run_passes`.
- Export: :func:`save` writes a traced graph to a safe ``.jt`` file, :func:`load` reads it back as
  a :class:`LoadedModule` (docs/format.md); :class:`FormatError` for corrupt or hostile files.
- Compiler: ``jitorch.compile`` (:mod:`.compile`): per-signature tracing, elementwise fusion into
  generated numba kernels (:mod:`.fuse`), guards, the kernel cache (:mod:`.cache`); docs/jit.md 11.
"""
from __future__ import annotations

from ._tracing import TracerError, TracerWarning, is_tracing
from .graph_ops import GRAPH_OPS
from .interpret import InterpretError, interpret
from .ir import IR_VERSION, Graph, Input, IRError, Node, TensorType
from .passes import (PIPELINE, canonicalize, eliminate_common_subexpressions, eliminate_dead_nodes, fold_constants,
                     renumber_values, run_passes, simplify_algebra)
from .text import ParseError, format_graph, parse
from .trace import ScriptError, ScriptFunction, TracedFunction, TracedModule, TracingCheckError, script, trace
from .verify import VerifyError, verify
from .export import FormatError, load, save
from .native import build  # the native build: executables and shared libraries (docs/native.md)

__all__ = [
    "Graph", "Node", "TensorType", "Input", "IR_VERSION", "IRError", "GRAPH_OPS",
    "parse", "format_graph", "ParseError", "verify", "VerifyError", "interpret", "InterpretError",
    "trace", "script", "is_tracing", "TracedFunction", "TracedModule", "ScriptFunction",
    "TracerError", "TracerWarning", "TracingCheckError", "ScriptError",
    "PIPELINE", "run_passes", "canonicalize", "simplify_algebra", "fold_constants",
    "eliminate_common_subexpressions", "eliminate_dead_nodes", "renumber_values",
    "save", "load", "FormatError", "LoadedModule",
]


def __getattr__(name):  # LoadedModule builds on jitorch.nn, imported on first use
    if name == "LoadedModule":
        from .loaded import LoadedModule
        return LoadedModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

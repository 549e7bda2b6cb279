"""The op table: one :class:`OpDef` record per primitive, read by everything else.

Eager dispatch, autograd, the tracer, the verifier, the fuser, code generators, the serializer and
the tests all look an op up here by name. A record keeps the facts of an op together:

- ``shape_rule(*shapes, **attrs)`` and ``dtype_rule(*dtypes_or_scalars, **attrs)``: output
  metadata (tuples for multi-output ops; ``None`` shape for data-dependent sizes). Rules raise
  errors naming the op, the shapes/dtypes and the fix; they run before any kernel.
- ``reference(*arrays, **attrs)``: the NumPy definition, used by tests and ``jit.interpret``.
- ``impl``: device -> ``fn(out, *inputs, **attrs)`` that runs the kernel(s); ``out`` is the
  preallocated output (or tuple), or ``None`` for ops whose output size depends on data.
- ``vjp(ctx, *grads)``: the gradient rule, written with jitorch ops (filled by the autograd layer).
- ``scalar``: for elementwise ops, the key of the scalar expression in ``kernels.scalar`` that
  both the eager kernel and the fuser use.
- ``tags``: families the passes query ("elementwise", "reduction", "view", "index", ...).
- ``plan(shapes, dtypes, contiguous, **attrs)``: optional; a cpu impl ``fn(out, *arrays)``
  specialized to inputs of exactly these shapes, NumPy dtypes and C-contiguity (tuples, one entry
  per input), or ``None`` (then ``impl`` runs). Eager dispatch builds it once per input
  signature, after the rules passed, and keeps it in ``plans`` (see ``_dispatch``). A view op's
  plan is ``fn(array) -> view array``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

OPS: dict[str, "OpDef"] = {}

# Families whose shape/dtype rules are pure functions of the input shapes, dtypes, attributes and
# the default dtype (no data, no scalars' values): dispatch may cache their rule results per signature.
PLAN_TAGS = frozenset({"elementwise", "view", "reduction", "scan", "normalization", "linalg"})


@dataclass
class OpDef:
    name: str
    shape_rule: Callable
    dtype_rule: Callable
    reference: Callable
    impl: dict = field(default_factory=dict)
    vjp: Callable | None = None
    scalar: str | None = None
    tags: frozenset = frozenset()
    attrs: tuple = ()            # attribute names with defaults: (("alpha", 1), ...)
    nout: int = 1
    doc: str = ""
    differentiable: tuple | None = None  # indices of inputs that get gradients (None: all float inputs)
    compute_rule: Callable | None = None  # elementwise: dtype the kernel computes in
    plan: Callable | None = None  # optional specialized cpu impl builder (see the module doc)
    # eager dispatch's per-signature cache: input signature -> plan (rule results, kernel); filled
    # by jitorch._dispatch, emptied by clear_plans(); never part of the record's identity
    plans: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        # dispatch caches this op's rule results per input signature (an attribute, read per call)
        self.uses_plans = not self.tags.isdisjoint(PLAN_TAGS)

    def __repr__(self):
        return f"OpDef({self.name!r}, tags={sorted(self.tags)})"


def register(op: OpDef) -> OpDef:
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} registered twice")
    OPS[op.name] = op
    return op


def get(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise NotImplementedError(f"jitorch has no op named {name!r}") from None


def clear_plans() -> None:
    """Drop every cached dispatch plan (tests; after replacing an op's impl or rules)."""
    for op in OPS.values():
        op.plans.clear()


def defvjp(name: str, rule: Callable) -> None:
    """Attach the gradient rule of ``name`` (used by the autograd layer)."""
    get(name).vjp = rule

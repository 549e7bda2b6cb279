"""Nested tuples/lists/dicts of tensors <-> a flat list of leaves and a spec (a tiny pytree)."""
from __future__ import annotations

from .. import _dispatch


def _is_tensor(x):
    return isinstance(x, _dispatch._Tensor)


def flatten(obj):
    """-> (tensor leaves, spec). Non-tensor leaves are kept in the spec as constants."""
    leaves = []

    def go(x):
        if _is_tensor(x):
            leaves.append(x)
            return ("leaf",)
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            return ("namedtuple", type(x), tuple(go(v) for v in x))
        if isinstance(x, (tuple, list)):
            return (type(x).__name__, tuple(go(v) for v in x))
        if isinstance(x, dict):
            return ("dict", tuple(x.keys()), tuple(go(v) for v in x.values()))
        return ("const", x)
    spec = go(obj)
    return leaves, spec


def unflatten(spec, leaves):
    it = iter(leaves)

    def go(s):
        kind = s[0]
        if kind == "leaf":
            return next(it)
        if kind == "const":
            return s[1]
        if kind == "namedtuple":
            return s[1](*[go(c) for c in s[2]])
        if kind == "tuple":
            return tuple(go(c) for c in s[1])
        if kind == "list":
            return [go(c) for c in s[1]]
        if kind == "dict":
            return {k: go(c) for k, c in zip(s[1], s[2])}
        raise AssertionError(kind)
    return go(spec)


def describe(spec):
    """Readable structure: 'Tensor', '(Tensor, Tensor)', '[Tensor, 3]'."""
    kind = spec[0]
    if kind == "leaf":
        return "Tensor"
    if kind == "const":
        return repr(spec[1])
    if kind == "namedtuple":
        return f"{spec[1].__name__}(" + ", ".join(describe(c) for c in spec[2]) + ")"
    if kind == "tuple":
        inner = ", ".join(describe(c) for c in spec[1])
        return f"({inner},)" if len(spec[1]) == 1 else f"({inner})"
    if kind == "list":
        return "[" + ", ".join(describe(c) for c in spec[1]) + "]"
    return "{" + ", ".join(f"{k!r}: {describe(c)}" for k, c in zip(spec[1], spec[2])) + "}"


def leaf_paths(spec, prefix):
    """A name per tensor leaf: x, x_0, x_1, x_key ... (for graph input names)."""
    out = []

    def go(s, p):
        kind = s[0]
        if kind == "leaf":
            out.append(p)
        elif kind in ("tuple", "list"):
            for i, c in enumerate(s[1]):
                go(c, f"{p}_{i}")
        elif kind == "namedtuple":
            for f, c in zip(s[1]._fields, s[2]):
                go(c, f"{p}_{f}")
        elif kind == "dict":
            for k, c in zip(s[1], s[2]):
                go(c, f"{p}_{k}")
    go(spec, prefix)
    return out

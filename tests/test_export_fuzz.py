"""Fuzzing jitorch.jit.load with mutated .jt files: every mutation either loads (and then runs) or
raises FormatError; nothing else (no other exception, crash, hang or unbounded allocation).

CI runs 50 examples per test; the full run is

    HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest tests/test_export_fuzz.py     # 10,000 examples per test

Four mutators: raw bytes of the whole file (flips, overwrites, truncation, insertion: mostly
zip-level damage the CRCs and the member table catch), member contents re-zipped with valid CRCs
(so the damage reaches the JSON, the IR parser, verify and the .npy checks), and token-level edits
of graph.txt and value-level edits of meta.json (well-formed but wrong).
"""
from __future__ import annotations

import json
import re

from hypothesis import event, given, settings
from hypothesis import strategies as st

import jitorch
from jitorch.jit import FormatError

from .export_helpers import golden_traced, load_bytes, members, rezip, save_bytes

_FILE = {}
# CI: 50 examples per test (about 4 s each); the fuzz profile's 10,000 when HYPOTHESIS_PROFILE=fuzz
_RUN = settings(max_examples=settings.default.max_examples if settings.default.max_examples > 1000 else 50)


def _valid():
    if "data" not in _FILE:
        _FILE["data"] = save_bytes(golden_traced(), dynamic_batch=True)
        _FILE["members"] = members(_FILE["data"])
    return _FILE["data"]


def _check(data):
    out = _outcome(data)
    event(out)  # --hypothesis-show-statistics shows how many mutations loaded
    return out


def _outcome(data):
    try:
        m = load_bytes(data)
    except FormatError:
        return "refused"
    ex = m._jit_export
    size = ex.example if ex.symbol is None else 2
    leaves = []
    for i in ex.user_inputs:
        shape = tuple(size if d in ex.input_dims.get(i.name, {}) else s for d, s in enumerate(i.type.shape))
        leaves.append(jitorch.zeros(shape, dtype=i.type.dtype))
    from jitorch.jit import _pytree
    args, kwargs = _pytree.unflatten(ex.in_spec, leaves)
    try:
        with jitorch.no_grad():
            m(*args, **kwargs)
    except (RuntimeError, ValueError, TypeError, IndexError):
        # a valid but altered graph may be rejected when it runs (an attribute value a kernel refuses, a
        # size it cannot run at): an ordinary error, never a crash or an error from inside numba
        return "run error"
    return "loaded"


_raw_edit = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 1 << 20), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 20), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 64)),
)


def _apply(data, edits):
    b = bytearray(data)
    for kind, pos, v in edits:
        if not b:
            break
        pos %= len(b)
        if kind == "flip":
            b[pos] ^= 1 << v
        elif kind == "set":
            b[pos] = v
        elif kind == "cut":
            del b[pos:]
        elif kind == "insert":
            b.insert(pos, v)
        else:
            del b[pos:pos + v]
    return bytes(b)


@_RUN
@given(st.lists(_raw_edit, min_size=1, max_size=6))
def test_fuzz_raw_bytes(edits):
    _check(_apply(_valid(), edits))


@_RUN
@given(st.integers(0, 20), st.lists(_raw_edit, min_size=1, max_size=4), st.sampled_from(["stored", "deflated"]))
def test_fuzz_member_bytes(which, edits, compress):
    import zipfile
    _valid()
    items = list(_FILE["members"])
    k = which % len(items)
    name, body = items[k]
    items[k] = (name, _apply(body, edits))
    _check(rezip(items, zipfile.ZIP_DEFLATED if compress == "deflated" else zipfile.ZIP_STORED))


_TOKENS = ["%0", "%3", "%x", "%99", "%c0", "0", "1", "-1", "4", "8", "2.5", "nan", "-inf", "True", "None", "(", ")",
           "[", "]", ",", ":", "=", "f32", "i64", "b8", "f32[4,6]", "f32[]", "relu", "view", "add", "cond",
           "while_loop", "view_scatter", "expand", "as_strided", "graph", "@GoldenMLP", "return", "update", "param",
           "const", "state", "size=(4, -1)", "dim=(0,)", "alpha=2", "'s'", "\n", "  ", "#", "jitorch-ir", ""]


@_RUN
@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(_TOKENS)), min_size=1, max_size=4))
def test_fuzz_graph_tokens(edits):
    _valid()
    items = dict(_FILE["members"])
    toks = re.findall(r"%[\w.]+|[\w.]+|\S|\s+", items["graph.txt"].decode())
    for pos, new in edits:
        toks[pos % len(toks)] = new
    items["graph.txt"] = "".join(toks).encode()
    _check(rezip(list(items.items())))


_json_scalars = st.none() | st.booleans() | st.integers(-5, 10) | st.sampled_from(
    ["batch", "2*batch", "x", "leaf", "tuple", "float32", "param", "tensors/0.npy", "cpu"])
_json_values = _json_scalars | st.lists(_json_scalars, max_size=3) | st.dictionaries(
    st.sampled_from(["name", "shape", "t"]), _json_scalars, max_size=2)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for k, v in enumerate(doc):
            yield from _paths(v, prefix + (k,))


@_RUN
@given(st.integers(0, 10_000), _json_values, st.booleans())
def test_fuzz_meta_values(which, value, delete):
    _valid()
    items = dict(_FILE["members"])
    doc = json.loads(items["meta.json"])
    paths = [p for p in _paths(doc) if p]
    path = paths[which % len(paths)]
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    items["meta.json"] = json.dumps(doc).encode()
    _check(rezip(list(items.items())))


def test_valid_file_loads_and_runs():
    assert _outcome(_valid()) == "loaded"

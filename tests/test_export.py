"""jitorch.jit.save / jitorch.jit.load (.jt files, docs/format.md): round trips, dynamic dims,
loading in a fresh process, the CLI, the released golden file, and hostile or corrupt files (which
must raise FormatError, never crash, hang, allocate without bound or execute anything)."""
from __future__ import annotations

import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import jitorch
import jitorch.nn as nn
from jitorch.jit import FormatError
from jitorch.jit import export as E

from .export_helpers import (GOLDEN, golden_model, golden_traced, load_bytes, members, replace_member, rezip,
                             save_bytes)


# ================================================================ models
class Net(nn.Module):
    """conv -> batch norm -> relu -> view(x.shape[0], -1) -> linear, and a mean over the batch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 4 * 4, 5)

    def forward(self, x):
        y = self.bn(self.conv(x)).relu()
        return self.fc(y.view(x.shape[0], -1)), y.sum(0) / x.shape[0]


@pytest.fixture(scope="module")
def net():
    jitorch.manual_seed(1)
    model = Net().eval()
    with jitorch.no_grad():
        for _ in range(2):  # non-trivial running statistics
            model.train()
            model(jitorch.randn(6, 1, 6, 6))
        model.eval()
    return model, jitorch.jit.trace(model, jitorch.randn(3, 1, 6, 6))


@pytest.fixture(scope="module")
def net_file(net):
    return save_bytes(net[1], dynamic_batch=True)


@pytest.fixture(scope="module")
def golden_file():
    return save_bytes(golden_traced(), dynamic_batch=True)


def _same(a, b):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


# ================================================================ round trips
def test_static_round_trip_bit_exact(tmp_path):
    jitorch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2)).eval()
    traced = jitorch.jit.trace(model, jitorch.randn(4, 5))
    p = tmp_path / "m.jt"
    traced.save(p)
    loaded = jitorch.jit.load(p)
    assert isinstance(loaded, jitorch.jit.LoadedModule) and isinstance(loaded, nn.Module)
    x = jitorch.randn(4, 5)
    assert _same(loaded(x), traced(x))
    loaded.load_state_dict({k: v * 2 for k, v in model.state_dict().items()})
    assert not _same(loaded(x), traced(x))
    loaded.load_state_dict(model.state_dict())
    assert list(loaded.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for k, v in model.state_dict().items():
        assert _same(loaded.state_dict()[k], v)
    assert loaded.graph == traced.graph and loaded.dynamic_dims == {}
    with pytest.raises(RuntimeError, match=r"must be f32\[4,5\], got f32\[3,5\]"):
        loaded(jitorch.randn(3, 5))
    with pytest.raises(RuntimeError, match="must be f32"):
        loaded(jitorch.randn(4, 5, dtype=jitorch.float64))
    with pytest.raises(TypeError, match="structured"):
        loaded(x, x)


def test_deterministic_bytes_and_atomic_write(tmp_path, net, monkeypatch):
    traced = net[1]
    a, b = save_bytes(traced, dynamic_batch=True), save_bytes(traced, dynamic_batch=True)
    assert a == b
    p = tmp_path / "net.jt"
    jitorch.jit.save(traced, p, dynamic_batch=True)
    jitorch.jit.save(traced, p, dynamic_batch=True)
    assert p.read_bytes() == a
    names = [n for n, _ in members(a)]
    assert names[:3] == ["version", "graph.txt", "meta.json"] and all(re.fullmatch(r"tensors/\d+\.npy", n)
                                                                      for n in names[3:])
    with zipfile.ZipFile(io.BytesIO(a)) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}

    monkeypatch.setattr(E, "encode", lambda ex: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        jitorch.jit.save(traced, p)
    monkeypatch.undo()
    real = jitorch.serialization.atomic_write

    def half(f, write):
        def w(fh):
            fh.write(b"PK\x03\x04 half a file")
            raise OSError("disk full")
        return real(f, w)
    monkeypatch.setattr(jitorch.serialization, "atomic_write", half)
    with pytest.raises(OSError, match="disk full"):
        jitorch.jit.save(traced, p)
    assert p.read_bytes() == a and os.listdir(tmp_path) == ["net.jt"]  # old file kept, temp file removed


def test_dynamic_batch_any_size(net, net_file):
    model, traced = net
    loaded = load_bytes(net_file)
    meta = loaded.meta
    assert meta["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", 1, 6, 6]}]
    assert [o["shape"] for o in meta["outputs"]] == [["batch", 5], [3, 4, 4]]
    assert meta["guards"]["dims"] == {"batch": {"example": 3, "min": 1, "max": None}}
    assert {e["value"] for e in meta["symbolic"]} == {"batch"}
    assert loaded.dynamic_dims == {"x": {0: "batch"}}
    with jitorch.no_grad():
        for b in (1, 3, 8, 33):
            x = jitorch.randn(b, 1, 6, 6)
            for got, want in zip(loaded(x), model(x)):
                np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    assert "f32[33,5]" in str(loaded.graph_for(33))
    with pytest.raises(RuntimeError, match=r"must be f32\[batch,1,6,6\]"):
        loaded(jitorch.randn(4, 2, 6, 6))


def test_dynamic_dims_by_name_and_two_inputs():
    def f(x, w):
        return (x * w).reshape(-1, 2).relu(), x.sum(0)
    traced = jitorch.jit.trace(f, (jitorch.randn(4, 6), jitorch.randn(4, 6)))
    data = save_bytes(traced, dynamic_dims={"x": {0: "n"}, "w": {-2: "n"}})
    loaded = load_bytes(data)
    assert [e["value"] for e in loaded.meta["symbolic"]] == ["3*n"]
    x, w = jitorch.randn(7, 6), jitorch.randn(7, 6)
    for got, want in zip(loaded(x, w), f(x, w)):
        assert _same(got, want)
    with pytest.raises(RuntimeError, match="same size"):
        loaded(jitorch.randn(7, 6), jitorch.randn(5, 6))
    with pytest.raises(ValueError, match="one dynamic dim"):
        jitorch.jit.save(traced, io.BytesIO(), dynamic_dims={"x": {0: "n"}, "w": {0: "m"}})
    with pytest.raises(ValueError, match="not an input"):
        jitorch.jit.save(traced, io.BytesIO(), dynamic_dims={"y": {0: "n"}})


def _refusal(fn, example, match):
    traced = jitorch.jit.trace(fn, example)
    with pytest.raises(ValueError, match=match) as info:
        jitorch.jit.save(traced, io.BytesIO(), dynamic_batch=True)
    assert "not polymorphic" in str(info.value) or "re-tracing" in str(info.value)
    jitorch.jit.save(traced, io.BytesIO())  # the static export is fine


def test_dynamic_export_refused_with_the_node():
    _refusal(lambda x: x * (x.shape[0] ** 2), jitorch.randn(4, 3), r"%0 = mul\(\.\.\.\) at test_export.py:\d+: "
             r"operand 1 is not an affine function")
    _refusal(lambda x: x + jitorch.arange(float(x.shape[0])).view(-1, 1), jitorch.randn(4, 3), "constant")
    _refusal(lambda x: x.exp() if x.shape[0] % 2 else x.sin(), jitorch.randn(4, 3), "differs")
    _refusal(lambda x: x[:4] * 2, jitorch.randn(4, 3), "differ|number of nodes")
    bn = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).train()
    traced = jitorch.jit.trace(bn, jitorch.randn(8, 3))
    with pytest.raises(ValueError, match=r"alpha .*not an integer"):
        jitorch.jit.save(traced, io.BytesIO(), dynamic_batch=True)


def test_train_mode_updates_written_back():
    jitorch.manual_seed(0)
    bn = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).train()
    traced = jitorch.jit.trace(bn, jitorch.randn(8, 3), check_trace=False)
    loaded = load_bytes(save_bytes(traced))
    x = jitorch.randn(8, 3)
    assert _same(loaded(x), bn(x))
    for k, v in bn.state_dict().items():
        np.testing.assert_allclose(loaded.state_dict()[k].numpy(), v.numpy(), rtol=1e-6)
    loaded.eval()
    with pytest.raises(RuntimeError, match="exported in train mode"):
        loaded(x)


def test_control_flow_subgraphs_with_dynamic_batch():
    def f(x, w):
        y = jitorch.cond(x.sum() > 0, lambda a, b: a * b, lambda a, b: a - b, (x, w))
        return y.view(x.shape[0] * 2, -1)
    traced = jitorch.jit.trace(f, (jitorch.randn(4, 6), jitorch.randn(6)))
    loaded = load_bytes(save_bytes(traced, dynamic_dims={"x": {0: "batch"}}))
    for b in (2, 9):
        for sign in (1, -1):
            x, w = sign * jitorch.rand(b, 6), jitorch.randn(6)
            assert _same(loaded(x, w), f(x, w))


def test_loaded_module_in_a_larger_graph_and_autograd(net, net_file):
    model, _ = net
    loaded = load_bytes(net_file)

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = loaded
            self.head = nn.Linear(5, 2)

        def forward(self, x):
            return self.head(self.inner(x)[0].tanh())
    outer = Outer().eval()
    traced = jitorch.jit.trace(outer, jitorch.randn(3, 1, 6, 6))
    assert "param %inner.conv.weight" in str(traced.graph)
    x = jitorch.randn(3, 1, 6, 6)
    assert _same(traced(x), outer(x))
    again = load_bytes(save_bytes(traced, dynamic_batch=True))  # export of an export
    x = jitorch.randn(5, 1, 6, 6)
    np.testing.assert_allclose(again(x).detach().numpy(), outer(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert "inner.conv.weight" in again.state_dict()
    # autograd through the loaded graph matches the original module's gradients
    x = jitorch.randn(4, 1, 6, 6)
    loaded(x)[0].square().sum().backward()
    model.zero_grad()
    model(x)[0].square().sum().backward()
    for (name, p), (_, q) in zip(loaded.named_parameters(), model.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    model.zero_grad()


def test_loaded_weights_are_live_and_saved_again(golden_file):
    loaded = load_bytes(golden_file)
    with jitorch.no_grad():
        loaded.fc2.bias.fill_(0.5)
    again = load_bytes(save_bytes(loaded))
    assert again.meta["symbolic"] == loaded.meta["symbolic"]
    assert _same(again.state_dict()["fc2.bias"], jitorch.full((3,), 0.5))
    x = jitorch.randn(2, 4)
    for a, b in zip(again(x), loaded(x)):
        assert _same(a, b)
    with pytest.raises(ValueError, match="keeps the dynamic dims"):
        save_bytes(loaded, dynamic_dims={"x": {1: "batch"}})


def test_functions_scripts_kwargs_and_nested_results():
    def g(x, *, scale):
        return {"a": x * scale, "b": (x.exp(), 3)}
    traced = jitorch.jit.trace(g, example_kwarg_inputs={"x": jitorch.ones(2), "scale": jitorch.ones(2)})
    loaded = load_bytes(save_bytes(traced))
    got = loaded(x=jitorch.ones(2), scale=jitorch.full((2,), 3.0))
    assert _same(got["a"], jitorch.full((2,), 3.0)) and got["b"][1] == 3
    s = jitorch.jit.script(lambda x: x.exp() + 1)
    s(jitorch.zeros(3))
    assert _same(load_bytes(save_bytes(s))(jitorch.zeros(3)), jitorch.full((3,), 2.0))
    g2 = jitorch.jit.parse("jitorch-ir 1\ngraph f(%x: f32[2], param %w: f32[2]):\n  %0: f32[2] = mul(%x, %w)\n"
                           "  return %0\n")
    with pytest.raises(ValueError, match="weights="):
        save_bytes(g2)
    loaded = load_bytes(save_bytes(g2, weights={"w": np.array([2.0, 3.0], np.float32)}))
    assert _same(loaded(jitorch.ones(2)), jitorch.tensor([2.0, 3.0]))
    with pytest.raises(TypeError, match="traced function"):
        save_bytes(lambda x: x)


def test_map_location(net_file):
    assert load_bytes(net_file) is not None
    jitorch.jit.load(io.BytesIO(net_file), map_location="cpu")
    with pytest.raises(TypeError, match="map_location"):
        jitorch.jit.load(io.BytesIO(net_file), map_location=3)
    # loading onto cuda: tests/test_cuda_compile.py


# ================================================================ fresh process, CLI, golden
def test_loads_in_a_fresh_process_without_the_models_code(tmp_path, net):
    model, traced = net
    p, xp, yp = tmp_path / "net.jt", tmp_path / "x.npy", tmp_path / "y.npy"
    traced.save(p, dynamic_batch=True)
    x = np.random.default_rng(0).standard_normal((7, 1, 6, 6)).astype(np.float32)
    np.save(xp, x)
    code = ("import sys, numpy as np, jitorch\n"
            "m = jitorch.jit.load(sys.argv[1])\n"
            "y, s = m(jitorch.from_numpy(np.load(sys.argv[2])))\n"
            "np.save(sys.argv[3], y.detach().numpy())\n"
            "assert not [k for k in sys.modules if k.startswith('tests')], 'imported the tests'\n"
            "print(','.join(m.state_dict()))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", code, str(p), str(xp), str(yp)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().split(",") == list(model.state_dict())
    with jitorch.no_grad():
        want = model(jitorch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(np.load(yp), want, rtol=1e-5, atol=1e-6)


def test_cli_inspect_run_dot(tmp_path, capsys, golden_file):
    from jitorch.cli import main
    p = tmp_path / "g.jt"
    p.write_bytes(golden_file)
    assert main(["inspect", str(p)]) == 0
    out = capsys.readouterr().out
    for s in ("%x: f32[batch,4]", "%8: f32[batch,3]", "1 <= batch (example 4)",
              "ops: add 3", "parameters: 4 tensors, 51 elements, 204 bytes", "jitorch-ir 1", "symbolic: %9 view size[0]"):
        assert s in out, s
    x = np.ones((3, 4), np.float32)
    np.save(tmp_path / "x.npy", x)
    outs = [str(tmp_path / f"y{k}.npy") for k in range(3)]
    assert main(["run", str(p), "--input", str(tmp_path / "x.npy")] + [a for o in outs for a in ("--output", o)]) == 0
    want = golden_model()(jitorch.from_numpy(x))
    for o, w in zip(outs, want):
        np.testing.assert_allclose(np.load(o), w.detach().numpy(), rtol=1e-6)
    assert main(["dot", str(p)]) == 0
    assert capsys.readouterr().out.startswith('digraph "GoldenMLP"')
    (tmp_path / "bad.jt").write_bytes(b"PK\x03\x04garbage")
    assert main(["inspect", str(tmp_path / "bad.jt")]) == 1
    assert "bad.jt" in capsys.readouterr().err


def test_cli_run_in_a_child_process(tmp_path, golden_file):
    p = tmp_path / "g.jt"
    p.write_bytes(golden_file)
    np.save(tmp_path / "x.npy", np.ones((2, 4), np.float32))
    res = subprocess.run([sys.executable, "-m", "jitorch", "run", str(p), "--input", str(tmp_path / "x.npy")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "output 0: f32[2, 3]" in res.stdout and "output 2: f32[3]" in res.stdout


def test_golden_v1_keeps_loading():
    """Compatibility policy: every released format version's golden file loads and gives its outputs."""
    loaded = jitorch.jit.load(GOLDEN / "mlp_v1.jt")
    assert loaded.meta["version"] == 1 and loaded.dynamic_dims == {"x": {0: "batch"}}
    x = np.load(GOLDEN / "mlp_v1_x.npy", allow_pickle=False)
    want = np.load(GOLDEN / "mlp_v1_out.npz", allow_pickle=False)
    with jitorch.no_grad():
        y, z, m = loaded(jitorch.from_numpy(x))
    for got, key in ((y, "y"), (z, "z"), (m, "m")):
        np.testing.assert_allclose(got.numpy(), want[key], rtol=1e-6, atol=1e-7)
    assert (GOLDEN / "mlp_v1.jt").stat().st_size < 16_000


# ================================================================ hostile and corrupt files
def _text(data, name):
    return dict(members(data))[name]


def _with_text(data, name, fn):
    return replace_member(data, name, fn(_text(data, name).decode()).encode())


def _with_meta(data, fn):
    meta = json.loads(_text(data, "meta.json"))
    fn(meta)
    return replace_member(data, "meta.json", json.dumps(meta).encode())


def _bad(data, match=None):
    with pytest.raises(FormatError, match=match):
        load_bytes(data)


def test_truncations_and_bit_flips(golden_file):
    data = golden_file
    for cut in list(range(0, 40)) + list(range(40, len(data), 37)):
        _bad(data[:cut])
    rng = np.random.default_rng(0)
    for pos in rng.choice(len(data), 150, replace=False):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        try:
            m = load_bytes(bytes(flipped))
        except FormatError:
            continue
        m(jitorch.ones(2, 4))  # a flip the checks accept (e.g. in a zip comment field) must still run


@pytest.mark.parametrize("version,match", [
    (b"jitorch.export\n2\njitorch>=0.3.0\n", r"format version 2, which needs jitorch >= 0\.3\.0; this is jitorch "),
    (b"jitorch.export\n9\n", "needs a newer jitorch"),
    (b"jitorch.export\n0\njitorch>=0.1.0\n", "invalid export format version"),
    (b"jitorch.export\n1\n", "must name the reader"),
    (b"jitorch.save\n1\n", "jitorch.load"),
    (b"torch.jit\n1\n", "not a jitorch.jit.save file"),
    (b"jitorch.export\n1\njitorch>=0.1.0\n" * 20, "limit"),
])
def test_wrong_versions(golden_file, version, match):
    _bad(replace_member(golden_file, "version", version), match)


def test_foreign_files(golden_file, tmp_path):
    _bad(pickle.dumps({"a": 1}), "never unpickles")
    _bad(b"not a zip at all", "not a zip")
    _bad(b"", None)
    buf = io.BytesIO()
    jitorch.save({"w": jitorch.ones(2)}, buf)
    _bad(buf.getvalue(), "jitorch.load")
    _bad(rezip([("archive/data.pkl", pickle.dumps(1)), ("archive/code/__torch__.py", b"import os")]), "TorchScript")
    _bad(rezip([(n, b) for n, b in members(golden_file) if n != "meta.json"]), "required")


@pytest.mark.parametrize("name", ["../evil.npy", "/etc/passwd", "tensors/../../x.npy", "tensors\\0.npy",
                                  "tensors/00.npy", "tensors/0.npy/", "graph.txt.bak", "code.py", "tensors/-1.npy"])
def test_member_names(golden_file, name):
    _bad(rezip(members(golden_file) + [(name, b"x")]), "not allowed|duplicate")


def test_duplicates_bombs_and_overlaps(golden_file):
    items = members(golden_file)
    _bad(rezip(items + [items[1]]), "duplicate")
    _bad(rezip(items + [("tensors/99.npy", items[3][1])]), "does not reference")
    bomb = [(n, b if n != "graph.txt" else b + b"\n" * 5_000_000) for n, b in items]
    _bad(rezip(bomb, compress=zipfile.ZIP_DEFLATED), "ratio")
    data = bytearray(rezip(items))
    entries = [i for i in range(len(data)) if data[i:i + 4] == b"PK\x01\x02"]
    off_prev = struct.unpack_from("<I", data, entries[-2] + 42)[0]
    struct.pack_into("<I", data, entries[-1] + 42, off_prev)
    _bad(bytes(data))
    ok = load_bytes(rezip(items, compress=zipfile.ZIP_DEFLATED))  # deflated within the ratio is fine
    assert ok.meta["version"] == 1


def _npy(arr, **kw):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, **kw)
    return buf.getvalue()


def test_npy_payloads(golden_file):
    meta = json.loads(_text(golden_file, "meta.json"))
    member = meta["tensors"][0]["member"]  # fc1.weight, f32[6,4]
    w = np.zeros((6, 4), np.float32)
    cases = {
        "pickled object array": (_npy(np.array([{"a": 1}] * 24, dtype=object).reshape(6, 4), allow_pickle=True),
                                 "object"),
        "wrong dtype": (_npy(w.astype(np.float64)), "does not match"),
        "big-endian": (_npy(w.astype(">f4")), "does not match"),
        "wrong shape": (_npy(np.zeros((4, 6), np.float32)), "shape"),
        "truncated data": (_npy(w)[:-8], "bytes of data"),
        "trailing data": (_npy(w) + b"\0" * 8, "bytes of data"),
        "structured": (_npy(np.zeros((6, 4), [("a", "<f4")])), "structured|does not match"),
        "not npy": (b"\x93NUMPY\x09\x00" + b"x" * 200, "npy|corrupt"),
        "huge header": (b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 30) + b" " * 100, "header|corrupt"),
        "unterminated header": (b"\x93NUMPY\x01\x00" + struct.pack("<H", 118)
                                + b"{'descr': '<f4', 'fortran_order': False, 'shape': (6, ".ljust(117) + b"\n"
                                + b"\0" * 96, "bad .npy header"),  # numpy's parser raised tokenize.TokenError
    }
    for what, (payload, match) in cases.items():
        with pytest.raises(FormatError, match=match):
            load_bytes(replace_member(golden_file, member, payload))


@pytest.mark.parametrize("case", [
    "unknown_op", "bad_attr_kind", "dtype_as_number", "float_as_bool", "unknown_attr", "wrong_type", "ssa", "undefined", "newer_ir", "syntax",
    "carriage_return_loc", "nul", "deep_brackets", "not_utf8", "huge_value", "huge_total", "param_shape",
])
def test_bad_graph_text(golden_file, case, monkeypatch):
    edits = {
        "unknown_op": (lambda t: t.replace("= relu(", "= os_system("), "unknown op"),
        "bad_attr_kind": (lambda t: t.replace("dims=(1, 0)", "dims='1, 0'", 1), "rejects|must"),
        "dtype_as_number": (lambda t: t.replace("alpha=1", "alpha=f32", 1), "attribute alpha of add must be a number"),
        "float_as_bool": (lambda t: t.replace("keepdim=False", "keepdim=0.0", 1), "must be a bool"),
        "unknown_attr": (lambda t: t.replace("alpha=1)", "alpha=1, evil=2)", 1), "unknown attributes"),
        "wrong_type": (lambda t: t.replace("%3: f32[4,6] = relu", "%3: f32[4,7] = relu"), "shape rule says"),
        "ssa": (lambda t: t.replace("%4: f32[6,3]", "%3: f32[6,3]").replace("(%4)", "(%3)"), "defined twice"),
        "undefined": (lambda t: t.replace("relu(%2)", "relu(%99)"), "not defined"),
        "newer_ir": (lambda t: t.replace("jitorch-ir 1", "jitorch-ir 2"), "newer"),
        "syntax": (lambda t: t.replace("return", "retrun"), "line"),
        "carriage_return_loc": (lambda t: t.replace("# export_helpers.py:32", "# x\rimport os; os.system('echo pwned')"),
                                "control character"),
        "nul": (lambda t: t.replace("relu", "re\0lu"), "control character"),
        "deep_brackets": (lambda t: t.replace("dims=(1, 0)", "dims=" + "(" * 100 + "1," + ")" * 100, 1), "nested"),
        "not_utf8": (None, "UTF-8"),
        "huge_value": (lambda t: t.replace("  return", "  %99: f32[100000,100000,3] = expand(%c0, "
                                           "size=(100000, 100000, 3))\n  return"), "bytes"),
        "huge_total": (None, "need"),
        "param_shape": (lambda t: t.replace("param %fc1.weight: f32[6,4]", "param %fc1.weight: f32[4,6]")
                        .replace("%0: f32[4,6] = permute", "%0: f32[6,4] = permute")
                        .replace("%1: f32[4,6] = matmul", "%1: f32[4,4] = matmul"), "."),
    }
    fn, match = edits[case]
    data = golden_file
    if case == "not_utf8":
        data = replace_member(data, "graph.txt", _text(data, "graph.txt").replace(b"relu", b"rel\xff"))
    elif case == "huge_total":
        monkeypatch.setattr(E, "MAX_TOTAL_BYTES", 100)
    else:
        data = _with_text(data, "graph.txt", fn)
    _bad(data, match)


@pytest.mark.parametrize("case", [
    "extra_key", "missing_key", "format", "version", "device", "input_name", "input_dtype", "input_shape",
    "output_shape", "tensor_order", "tensor_member_twice", "tensor_member_missing", "requires_grad_int",
    "symbolic_value", "symbolic_bool_target", "symbolic_path", "symbolic_noncanonical", "symbolic_twice",
    "two_dims", "dims_range", "call_leaves", "call_kind", "deep_call", "module_path", "module_collision",
    "tensor_name_collision", "nan", "dup_key", "not_json", "drop_symbolic",
])
def test_bad_meta(golden_file, case):
    def edit(m):
        t0 = m["tensors"][0]
        s0 = m["symbolic"][0]
        if case == "extra_key":
            m["code"] = "import os"
        elif case == "missing_key":
            del m["guards"]
        elif case == "format":
            m["format"] = "pickle"
        elif case == "version":
            m["version"] = 2
        elif case == "device":
            m["guards"]["device"] = "cuda:0"
        elif case == "input_name":
            m["inputs"][0]["name"] = "y"
        elif case == "input_dtype":
            m["inputs"][0]["dtype"] = "object"
        elif case == "input_shape":
            m["inputs"][0]["shape"] = ["batch", 5]
        elif case == "output_shape":
            m["outputs"][0]["shape"] = ["2*batch", 3]
        elif case == "tensor_order":
            m["tensors"][0], m["tensors"][1] = m["tensors"][1], m["tensors"][0]
        elif case == "tensor_member_twice":
            m["tensors"][1]["member"] = t0["member"]
        elif case == "tensor_member_missing":
            t0["member"] = "tensors/77.npy"
        elif case == "requires_grad_int":
            t0["requires_grad"] = 1
        elif case == "symbolic_value":
            s0["value"] = "2*batch"
        elif case == "symbolic_bool_target":
            s0.update(attr="keepdim", path=[], node=10)
        elif case == "symbolic_path":
            s0["path"] = [0, 0, 0]
        elif case == "symbolic_noncanonical":
            s0["value"] = "1*batch+0"
        elif case == "symbolic_twice":
            m["symbolic"].append(dict(s0))
        elif case == "two_dims":
            m["guards"]["dims"]["other"] = {"example": 1, "min": 1, "max": None}
        elif case == "dims_range":
            m["guards"]["dims"]["batch"]["min"] = 5
        elif case == "call_leaves":
            m["call"]["args"] = ["tuple", [["tuple", [["leaf"], ["leaf"]]], ["dict", [], []]]]
        elif case == "call_kind":
            m["call"]["result"] = ["pickle", "os.system"]
        elif case == "deep_call":
            r = ["leaf"]
            for _ in range(200):
                r = ["tuple", [r]]
            m["call"]["result"] = r
        elif case == "module_path":
            m["modules"].append(["fc1..x", "Linear"])
        elif case == "module_collision":
            m["modules"].append(["forward", "Linear"])
        elif case == "tensor_name_collision":
            m["modules"].append(["shift", "Linear"])
        elif case == "drop_symbolic":
            m["symbolic"] = []
    data = golden_file
    if case == "nan":
        data = replace_member(data, "meta.json", _text(data, "meta.json").replace(b'"min":1', b'"min":NaN'))
    elif case == "dup_key":
        data = replace_member(data, "meta.json", _text(data, "meta.json").replace(b'{"format"', b'{"format":1,"format"'))
    elif case == "not_json":
        data = replace_member(data, "meta.json", b"{not json")
    else:
        data = _with_meta(data, edit)
    _bad(data)


def test_param_names_that_would_collide_are_refused_at_save():
    g = jitorch.jit.parse("jitorch-ir 1\ngraph f(%x: f32[2], param %forward: f32[2]):\n  %0: f32[2] = mul(%x, %forward)"
                          "\n  return %0\n")
    with pytest.raises(ValueError, match="collides"):
        save_bytes(g, weights={"forward": np.ones(2, np.float32)})


def test_hostile_graph_with_valid_meta_is_refused_not_run(golden_file):
    """A graph that changes semantics but keeps valid text and meta loads: it is data, never code."""
    data = _with_text(golden_file, "graph.txt", lambda t: t.replace("= relu(%2)", "= neg(%2)"))
    m = load_bytes(data)
    assert "neg" in m.code and "relu" not in m.code
    assert "import" not in m.code.split("def ", 1)[1]


def test_injection_attempts_stay_data(tmp_path):
    """Strings and locations from a file reach the generated code only through repr() and comments."""
    def f(x, i, s):
        return x.scatter_reduce(0, i, s, reduce="amax")
    traced = jitorch.jit.trace(f, (jitorch.zeros(5), jitorch.tensor([0, 1, 1]), jitorch.ones(3)))
    marker = tmp_path / "PWNED"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    evil = ("reduce='amax\\n" + payload.replace("'", "\\'") + "'")
    data = _with_text(save_bytes(traced), "graph.txt", lambda t: t.replace("reduce='amax'", evil).replace(
        "# <string>", f"# \"\"\"'''); {payload}; #"))
    try:
        m = load_bytes(data)
    except FormatError:
        pass
    else:
        assert payload in m.graph.nodes[0].attr("reduce")
        with pytest.raises(Exception):
            m(jitorch.zeros(5), jitorch.tensor([0, 1, 1]), jitorch.ones(3))  # an unknown reduce: an error
    assert not marker.exists()


def test_format_doc_examples_are_the_golden_file():
    doc = (GOLDEN.parent.parent / "docs" / "format.md").read_text()
    meta = json.loads(re.search(r"```json\n(.*?)```", doc, re.S).group(1))
    with zipfile.ZipFile(GOLDEN / "mlp_v1.jt") as zf:
        assert meta == json.loads(zf.read("meta.json"))
        assert re.search(r"```\n(jitorch-ir 1\n.*?)```", doc, re.S).group(1) == zf.read("graph.txt").decode()
        assert zf.read("version") == b"jitorch.export\n1\njitorch>=0.1.0\n"


def test_compile_both_ways():
    """A jitorch.compile'd model exports (its latest signature); a loaded graph compiles."""
    jitorch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    compiled = jitorch.compile(model)
    with jitorch.no_grad():
        compiled(jitorch.randn(4, 6))
        loaded = load_bytes(save_bytes(compiled, dynamic_batch=True))
        assert [t for _, t in loaded.meta["modules"]] == ["Sequential", "Linear", "ReLU", "Linear"]
        x = jitorch.randn(9, 6)
        assert _same(loaded(x), model(x))
        again = jitorch.compile(loaded)
        assert _same(again(x), model(x)) and again.kernels

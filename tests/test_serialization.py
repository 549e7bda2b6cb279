"""jitorch.save / jitorch.load: round trips, atomic writes, and hostile or corrupt files (which must
raise FormatError and never execute anything)."""
from __future__ import annotations

import io
import json
import math
import os
import pickle
import struct
import warnings
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jitorch
from jitorch import serialization as ser
from jitorch.serialization import FormatError

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

ALL_DTYPES = [jitorch.bool, jitorch.uint8, jitorch.int8, jitorch.int16, jitorch.int32, jitorch.int64,
              jitorch.float16, jitorch.float32, jitorch.float64]


# ================================================================ helpers
def _roundtrip(obj, **load_kw):
    buf = io.BytesIO()
    jitorch.save(obj, buf)
    buf.seek(0)
    return jitorch.load(buf, **load_kw)


def _bytes(obj):
    buf = io.BytesIO()
    jitorch.save(obj, buf)
    return buf.getvalue()


def _members(data: bytes):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i.filename)) for i in zf.infolist()]


def _zip(members, compress=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names on purpose
        with zipfile.ZipFile(buf, "w", compression=compress) as zf:
            for name, data in members:
                zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=compress)
    return buf.getvalue()


def _load_bytes(data, **kw):
    return jitorch.load(io.BytesIO(data), **kw)


def _npy(arr, allow_pickle=False):
    b = io.BytesIO()
    np.save(b, arr, allow_pickle=allow_pickle)
    return b.getvalue()


def _doc(root, version=1):
    return json.dumps({"format": "jitorch.save", "version": version, "root": root}).encode()


def _tensor_node(ref="tensors/0.npy", dtype="float32", shape=(2,), **extra):
    n = {"t": "tensor", "ref": ref, "dtype": dtype, "shape": list(shape), "device": "cpu", "requires_grad": False}
    n.update(extra)
    return n


def _archive(root, tensors=(), version_text=b"jitorch.save\n1\n"):
    return _zip([("version", version_text), ("data.json", _doc(root))] + list(tensors))


def _eq(a, b):
    """Deep equality for loaded structures (tensors by dtype/shape/values, NaN == NaN)."""
    if isinstance(a, jitorch.Tensor):
        return (isinstance(b, jitorch.Tensor) and a.dtype is b.dtype and a.shape == b.shape
                and a.requires_grad == b.requires_grad and np.array_equal(a._data, b._data, equal_nan=a.is_floating_point()))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, dict):
        return type(a) is type(b) and list(a) == list(b) and all(_eq(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if dtype is jitorch.bool:
        a = rng.integers(0, 2, shape).astype(bool)
    elif dtype.is_floating_point:
        a = (rng.standard_normal(shape) * 100).astype(dtype.np)
    else:
        info = np.iinfo(dtype.np)
        a = rng.integers(info.min, info.max, shape, dtype=dtype.np, endpoint=True)
    return jitorch.tensor(np.asarray(a), dtype=dtype)


# ================================================================ round trips
def test_nested_structures():
    obj = OrderedDict([
        ("none", None), ("t", True), ("f", False), ("int", -7), ("big", 2 ** 100 + 1), ("float", 0.1),
        ("inf", math.inf), ("ninf", -math.inf), ("nan", math.nan), ("negzero", -0.0), ("tiny", 5e-324),
        ("str", "héllo ✓ \x00 \"quoted\""), ("bytes", b"\x00\xffabc"), ("empty_list", []), ("empty_dict", {}),
        ("tuple", (1, (2, (3,)), [4, {"k": 5}])),
        ("list", [jitorch.tensor([1.0, 2.0]), {"nested": [jitorch.zeros(2, 3)]}]),
        ("int_keys", {0: "a", 1: "b", -5: "c"}), ("mixed_keys", {1.5: 1, None: 2, True: 3, (1, "x"): 4, b"k": 5}),
        ("dtype", jitorch.float16), ("device", jitorch.device("cpu")),
        ("np", np.arange(6, dtype=np.int32).reshape(2, 3)), ("np_scalar", np.float32(1.25)), ("np_bool", np.bool_(True)),
        ("np_int", np.int64(-3)),
    ])
    back = _roundtrip(obj)
    assert _eq(obj, back)
    assert math.copysign(1.0, back["negzero"]) == -1.0
    assert type(back["np_scalar"]) is np.float32


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (5,), (2, 3, 4)], ids=str)
def test_all_dtypes_and_shapes(dtype, shape):
    t = _sample(dtype, shape)
    back = _roundtrip({"x": t})["x"]
    assert back.dtype is dtype and back.shape == t.shape and back.ndim == len(shape)
    np.testing.assert_array_equal(back._data, t._data)
    assert back._data.flags.c_contiguous and back._data.flags.writeable


@pytest.mark.parametrize("dtype", [jitorch.float32, jitorch.int16, jitorch.bool], ids=lambda d: d.name)
def test_non_contiguous(dtype):
    base = _sample(dtype, (6, 8), seed=3)
    views = {"t": base.t(), "step": base[::2, 1::3], "expanded": _sample(dtype, (1, 4)).expand(3, 4)}
    back = _roundtrip(views)
    for k, v in views.items():
        assert not v.is_contiguous() or k == "expanded"
        np.testing.assert_array_equal(back[k]._data, v._data)
        assert back[k].is_contiguous()


def test_identity_and_views():
    a = jitorch.arange(6.0)
    v = a[2:4]
    back = _roundtrip({"a": a, "again": a, "view": v, "list": [a]})
    assert back["a"] is back["again"] is back["list"][0]  # the same object loads as one object
    assert not np.shares_memory(back["a"]._data, back["view"]._data)  # views are independent copies
    back["view"]._data[0] = 99.0
    assert back["a"]._data[2] == 2.0


def test_requires_grad_and_values_preserved():
    p = jitorch.tensor([[1.0, 2.0]], requires_grad=True)
    back = _roundtrip([p, p.detach()])
    assert back[0].requires_grad and back[0].is_leaf and not back[1].requires_grad


def test_optimizer_state_round_trip(tmp_path):
    p = jitorch.tensor(np.linspace(-1, 1, 12).reshape(3, 4), requires_grad=True)
    opt = jitorch.optim.Adam([p], lr=0.1, amsgrad=True)
    grads = [np.sin(np.arange(12.0) + k).reshape(3, 4) for k in range(6)]
    for g in grads[:3]:
        p.grad = jitorch.tensor(g)
        opt.step()
    f = tmp_path / "ckpt.jt"
    jitorch.save({"model": {"p": p}, "optim": opt.state_dict(), "epoch": 3}, f)
    ck = jitorch.load(f)
    assert ck["epoch"] == 3 and list(ck["optim"]["state"]) == [0]
    q = ck["model"]["p"]
    opt2 = jitorch.optim.Adam([q], lr=0.5, amsgrad=True)
    opt2.load_state_dict(ck["optim"])
    for g in grads[3:]:
        p.grad = jitorch.tensor(g)
        opt.step()
        q.grad = jitorch.tensor(g)
        opt2.step()
    np.testing.assert_array_equal(p._data, q._data)


def test_paths_and_file_objects(tmp_path):
    obj = {"w": jitorch.ones(3)}
    jitorch.save(obj, str(tmp_path / "a.jt"))
    jitorch.save(obj, tmp_path / "b.jt")
    with open(tmp_path / "c.jt", "wb") as fh:
        jitorch.save(obj, fh)
    for name in "abc":
        assert _eq(jitorch.load(tmp_path / f"{name}.jt"), obj)
        with open(tmp_path / f"{name}.jt", "rb") as fh:
            assert _eq(jitorch.load(fh), obj)
    assert (tmp_path / "a.jt").read_bytes() == (tmp_path / "b.jt").read_bytes() == _bytes(obj)  # deterministic
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_map_location():
    data = _bytes({"a": jitorch.ones(2), "b": jitorch.zeros(1)})
    for ml in ("cpu", jitorch.device("cpu"), {"cpu": "cpu"}):
        assert _load_bytes(data, map_location=ml)["a"].device == jitorch.device("cpu")
    seen = []

    def fn(t, loc):
        seen.append((tuple(t.shape), loc))
        return None

    _load_bytes(data, map_location=fn)
    assert sorted(seen) == [((1,), "cpu"), ((2,), "cpu")]
    out = _load_bytes(data, map_location=lambda t, loc: t * 2)
    np.testing.assert_array_equal(out["a"]._data, [2.0, 2.0])
    with pytest.raises(TypeError, match="map_location"):
        _load_bytes(data, map_location=3)


def test_map_location_for_cuda_saved_tensor():
    root = _tensor_node(device="cuda:0")
    data = _archive(root, [("tensors/0.npy", _npy(np.ones(2, np.float32)))])
    t = _load_bytes(data, map_location="cpu")
    assert t.device == jitorch.device("cpu")
    t = _load_bytes(data, map_location={"cuda:0": "cpu"})
    assert t.device == jitorch.device("cpu")
    if not getattr(getattr(jitorch, "cuda", None), "is_available", lambda: False)():
        with pytest.raises(RuntimeError):
            _load_bytes(data)  # no cuda here: torch's behaviour, a clear error naming the device


def test_unsupported_objects_raise_before_writing(tmp_path):
    f = tmp_path / "x.jt"
    jitorch.save({"ok": 1}, f)
    before = f.read_bytes()
    for bad in (object(), {1, 2}, {"k": lambda: 0}, np.array(["a"]), {"a": [1, {"b": object()}]}, {frozenset(): 2}):
        with pytest.raises(TypeError, match="jitorch.save"):
            jitorch.save(bad, f)
    cyc = []
    cyc.append(cyc)
    with pytest.raises(ValueError, match="cycle"):
        jitorch.save(cyc, f)
    assert f.read_bytes() == before


# ================================================================ atomicity
def test_failure_mid_write_keeps_old_file(tmp_path, monkeypatch):
    f = tmp_path / "ckpt.jt"
    jitorch.save({"v": jitorch.zeros(4)}, f)
    old = f.read_bytes()
    calls = []
    real = np.lib.format.write_array

    def flaky(fp, arr, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            real(fp, arr[: arr.size // 2] if arr.ndim else arr, *a, **k)  # half written, then the "crash"
            raise OSError("disk full")
        return real(fp, arr, *a, **k)

    monkeypatch.setattr(np.lib.format, "write_array", flaky)
    with pytest.raises(OSError, match="disk full"):
        jitorch.save({"v": jitorch.ones(100), "w": jitorch.ones(100)}, f)
    assert f.read_bytes() == old
    assert _eq(jitorch.load(f), {"v": jitorch.zeros(4)})
    assert os.listdir(tmp_path) == ["ckpt.jt"]  # the temp file is removed


def test_interrupt_mid_write_keeps_old_file(tmp_path, monkeypatch):
    f = tmp_path / "ckpt.jt"
    jitorch.save([1, 2, 3], f)
    old = f.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(KeyboardInterrupt):
        jitorch.save([jitorch.ones(3)], f)
    assert f.read_bytes() == old and os.listdir(tmp_path) == ["ckpt.jt"]


# ================================================================ hostile and corrupt files
def _valid():
    return _bytes({"w": jitorch.arange(10.0), "n": [1, "two", None], "i": jitorch.tensor([[1, 2], [3, 4]])})


def test_truncated_files():
    data = _valid()
    for cut in list(range(0, 64)) + list(range(64, len(data), max(1, len(data) // 150))):
        with pytest.raises(FormatError):
            _load_bytes(data[:cut])


def test_bit_flips_detected_or_harmless():
    data = _valid()
    ref = _load_bytes(data)
    rng = np.random.default_rng(0)
    for pos in rng.choice(len(data), size=min(len(data), 300), replace=False):
        for bit in (0, 7):
            bad = bytearray(data)
            bad[pos] ^= 1 << bit
            try:
                out = _load_bytes(bytes(bad))
            except FormatError:
                continue
            assert _eq(out, ref), f"flip at {pos} bit {bit} loaded different content"


class _Marker:
    """Unpickling this would create a file: loading must never do it."""

    path = ""

    def __reduce__(self):
        return (open, (self.path, "w"))


def _marker(tmp_path):
    _Marker.path = str(tmp_path / "PWNED")
    return tmp_path / "PWNED"


def test_legacy_pickle_file_not_executed(tmp_path):
    marker = _marker(tmp_path)
    payload = pickle.dumps({"x": _Marker()})
    with pytest.raises(FormatError, match="pickle"):
        _load_bytes(payload)
    f = tmp_path / "legacy.pt"
    f.write_bytes(payload)
    with pytest.raises(FormatError, match="pickle"):
        jitorch.load(f)
    assert not marker.exists()


def test_torch_style_zip_with_pickle_not_executed(tmp_path):
    marker = _marker(tmp_path)
    data = _zip([("archive/data.pkl", pickle.dumps(_Marker())), ("archive/version", b"3\n")])
    with pytest.raises(FormatError, match="pickle"):
        _load_bytes(data)
    assert not marker.exists()


@pytest.mark.skipif(torch is None, reason="torch (optional reference) is not installed")
def test_real_torch_checkpoint_is_refused(tmp_path):
    f = tmp_path / "t.pt"
    torch.save({"w": torch.ones(2)}, f)
    with pytest.raises(FormatError, match="pickle"):
        jitorch.load(f)


def test_object_npy_with_pickle_not_executed(tmp_path):
    marker = _marker(tmp_path)
    evil = np.empty(1, dtype=object)
    evil[0] = _Marker()
    npy = _npy(evil, allow_pickle=True)
    for dtype_decl in ("float32", "int64"):
        data = _archive(_tensor_node(dtype=dtype_decl, shape=(1,)), [("tensors/0.npy", npy)])
        with pytest.raises(FormatError):
            _load_bytes(data)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../evil.npy", "/abs/tensors/0.npy", "tensors/../../x.npy", "tensors\\0.npy",
                                  "tensors/0.npy/../../../etc/passwd", "tensors/00.npy", "tensors/a.npy",
                                  "extra.txt", "version/", "tensors/", "./data.json"])
def test_path_traversal_and_unknown_names(name):
    data = _archive({"t": "none"}, [(name, b"x")])
    with pytest.raises(FormatError, match="not allowed|pickle"):
        _load_bytes(data)


def test_duplicate_members():
    root = _tensor_node()
    npy = _npy(np.ones(2, np.float32))
    for dup in ("tensors/0.npy", "data.json", "version"):
        members = [("version", b"jitorch.save\n1\n"), ("data.json", _doc(root)), ("tensors/0.npy", npy)]
        members.append((dup, dict(members)[dup]))
        with pytest.raises(FormatError, match="duplicate"):
            _load_bytes(_zip(members))


def test_zip_bomb_by_ratio():
    huge = np.zeros(20_000_000, np.uint8)  # 20 MB of zeros deflate to ~20 KB
    data = _zip([("version", b"jitorch.save\n1\n"), ("data.json", _doc(_tensor_node(dtype="uint8", shape=huge.shape))),
                 ("tensors/0.npy", _npy(huge))], compress=zipfile.ZIP_DEFLATED)
    assert len(data) < 200_000
    with pytest.raises(FormatError, match="ratio"):
        _load_bytes(data)


def test_zip_bomb_by_overlapping_entries():
    npy = _npy(np.ones(2, np.float32))
    root = {"t": "list", "items": [_tensor_node("tensors/0.npy"), _tensor_node("tensors/1.npy")]}
    data = bytearray(_zip([("version", b"jitorch.save\n1\n"), ("data.json", _doc(root)),
                           ("tensors/0.npy", npy), ("tensors/1.npy", npy)]))
    # point the last central-directory entry at the previous member's local header
    entries = [i for i in range(len(data)) if data[i:i + 4] == b"PK\x01\x02"]
    off_prev = struct.unpack_from("<I", data, entries[-2] + 42)[0]
    struct.pack_into("<I", data, entries[-1] + 42, off_prev)
    with pytest.raises(FormatError):
        _load_bytes(bytes(data))


def test_deflated_archive_within_ratio_loads():
    arr = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    data = _zip([("version", b"jitorch.save\n1\n"), ("data.json", _doc(_tensor_node(shape=(100,)))),
                 ("tensors/0.npy", _npy(arr))], compress=zipfile.ZIP_DEFLATED)
    np.testing.assert_array_equal(_load_bytes(data)._data, arr)


@pytest.mark.parametrize("text,match", [
    (b"jitorch.save\n2\n", "newer"), (b"jitorch.save\n0\n", "invalid format version"),
    (b"other.format\n1\n", "not a jitorch.save"), (b"jitorch.save\n1", "not a jitorch.save"),
    (b"jitorch.save\n1\n" * 10, "limit"), (b"", "not a jitorch.save"),
])
def test_wrong_version(text, match):
    with pytest.raises(FormatError, match=match):
        _load_bytes(_archive({"t": "none"}, version_text=text))


def test_missing_members():
    with pytest.raises(FormatError, match="required"):
        _load_bytes(_zip([("version", b"jitorch.save\n1\n")]))
    with pytest.raises(FormatError, match="required"):
        _load_bytes(_zip([("data.json", _doc({"t": "none"}))]))
    with pytest.raises(FormatError, match="not a zip"):
        _load_bytes(b"hello world, not a zip file")
    with pytest.raises(FormatError):
        _load_bytes(b"")


def _deep(n):
    node = {"t": "none"}
    for _ in range(n):
        node = {"t": "list", "items": [node]}
    return node


BAD_JSON = {
    "not_json": b"{not json",
    "nan_constant": b'{"format":"jitorch.save","version":1,"root":{"t":"float","v":NaN}}',
    "dup_key": b'{"format":"jitorch.save","version":1,"root":{"t":"none","t":"none"}}',
    "top_not_dict": b"[1, 2]",
    "extra_top_key": b'{"format":"jitorch.save","version":1,"root":{"t":"none"},"x":1}',
    "wrong_format": b'{"format":"pickle","version":1,"root":{"t":"none"}}',
    "version_mismatch": b'{"format":"jitorch.save","version":7,"root":{"t":"none"}}',
    "bad_utf8": b'{"format":"jitorch.save","version":1,"root":{"t":"str","v":"\xff"}}',
    "deep_json": b'{"format":"jitorch.save","version":1,"root":' + b"[" * 100000 + b"]" * 100000 + b"}",
}
BAD_NODES = {
    "unknown_kind": {"t": "pickle", "v": "cos\nsystem"},
    "missing_key": {"t": "int"},
    "extra_key": {"t": "int", "v": 1, "code": "x"},
    "int_as_float": {"t": "int", "v": 1.5},
    "int_as_bool": {"t": "int", "v": True},
    "bool_as_int": {"t": "bool", "v": 1},
    "float_not_hex": {"t": "float", "v": "xyz"},
    "float_number": {"t": "float", "v": 1.5},
    "str_not_str": {"t": "str", "v": 5},
    "bytes_bad_b64": {"t": "bytes", "v": "!!!"},
    "bad_dtype": {"t": "dtype", "v": "object"},
    "bad_device": {"t": "device", "v": "tpu:0"},
    "items_not_list": {"t": "list", "items": {"a": 1}},
    "dict_item_not_pair": {"t": "dict", "items": [[{"t": "none"}]]},
    "list_as_key": {"t": "dict", "items": [[{"t": "list", "items": []}, {"t": "none"}]]},
    "tensor_as_key": {"t": "dict", "items": [[_tensor_node(), {"t": "none"}]]},
    "dup_dict_key": {"t": "dict", "items": [[{"t": "int", "v": 1}, {"t": "none"}], [{"t": "int", "v": 1}, {"t": "none"}]]},
    "too_deep": _deep(ser.MAX_DEPTH + 5),
    "node_not_object": [1, 2, 3],
    "huge_int_digits": {"t": "int", "v": "9" * 5000},
}


@pytest.mark.parametrize("name", list(BAD_JSON))
def test_bad_json_documents(name):
    data = _zip([("version", b"jitorch.save\n1\n"), ("data.json", BAD_JSON[name])])
    with pytest.raises(FormatError):
        _load_bytes(data)


@pytest.mark.parametrize("name", list(BAD_NODES))
def test_bad_nodes(name):
    tensors = [("tensors/0.npy", _npy(np.ones(2, np.float32)))] if name == "tensor_as_key" else []
    with pytest.raises(FormatError):
        _load_bytes(_archive(BAD_NODES[name], tensors))


def test_huge_int_digits_in_json_text():
    data = _zip([("version", b"jitorch.save\n1\n"),
                 ("data.json", b'{"format":"jitorch.save","version":1,"root":{"t":"int","v":' + b"9" * 5000 + b"}}")])
    with pytest.raises(FormatError):
        _load_bytes(data)


BAD_TENSORS = {
    "missing_member": (_tensor_node("tensors/1.npy"), [("tensors/0.npy", _npy(np.ones(2, np.float32)))]),
    "unreferenced_member": ({"t": "none"}, [("tensors/0.npy", _npy(np.ones(2, np.float32)))]),
    "bad_ref": (_tensor_node("../x.npy"), []),
    "shape_mismatch": (_tensor_node(shape=(3,)), [("tensors/0.npy", _npy(np.ones(2, np.float32)))]),
    "dtype_mismatch": (_tensor_node(dtype="float64"), [("tensors/0.npy", _npy(np.ones(2, np.float32)))]),
    "negative_shape": (_tensor_node(shape=(-1,)), [("tensors/0.npy", _npy(np.ones(2, np.float32)))]),
    "too_many_dims": (_tensor_node(shape=(1,) * 65), [("tensors/0.npy", _npy(np.ones(1, np.float32)))]),
    "object_dtype_decl": (_tensor_node(dtype="object"), [("tensors/0.npy", _npy(np.ones(2, np.float32)))]),
    "structured_npy": (_tensor_node(dtype="float32", shape=(2,)),
                       [("tensors/0.npy", _npy(np.zeros(2, dtype=[("a", "<f4"), ("b", "<f4")])))]),
    "big_endian_npy": (_tensor_node(), [("tensors/0.npy", _npy(np.ones(2, ">f4")))]),
    "complex_npy": (_tensor_node(), [("tensors/0.npy", _npy(np.ones(2, np.complex64)))]),
    "not_npy": (_tensor_node(), [("tensors/0.npy", b"\x80\x04garbage")]),
    "truncated_npy": (_tensor_node(), [("tensors/0.npy", _npy(np.ones(2, np.float32))[:-3])]),
    "trailing_bytes_npy": (_tensor_node(), [("tensors/0.npy", _npy(np.ones(2, np.float32)) + b"xx")]),
    "huge_declared_shape": (_tensor_node(shape=(10 ** 12,)),
                            [("tensors/0.npy", _npy(np.ones(2, np.float32)).replace(b"(2,)", b"(1000000000000,)"))]),
    "int_requires_grad": (_tensor_node(dtype="int64", requires_grad=True), [("tensors/0.npy", _npy(np.ones(2, np.int64)))]),
    "same_ref_two_shapes": ({"t": "list", "items": [_tensor_node(), _tensor_node(shape=(1, 2))]},
                            [("tensors/0.npy", _npy(np.ones(2, np.float32)))]),
    "same_ref_tensor_and_array": ({"t": "list", "items": [_tensor_node(), {"t": "ndarray", "ref": "tensors/0.npy",
                                                                           "dtype": "float32", "shape": [2]}]},
                                  [("tensors/0.npy", _npy(np.ones(2, np.float32)))]),
    "bad_param_flag": (_tensor_node(param="yes"), [("tensors/0.npy", _npy(np.ones(2, np.float32)))]),
    "bad_npscalar": ({"t": "npscalar", "dtype": "float32", "v": 1.0}, []),
}


@pytest.mark.parametrize("name", list(BAD_TENSORS))
def test_bad_tensors(name):
    root, tensors = BAD_TENSORS[name]
    with pytest.raises(FormatError):
        _load_bytes(_archive(root, tensors))


def test_encrypted_flag_and_unknown_compression():
    data = bytearray(_archive({"t": "none"}))
    entries = [i for i in range(len(data)) if data[i:i + 4] == b"PK\x01\x02"]
    bad = bytearray(data)
    struct.pack_into("<H", bad, entries[0] + 8, 1)  # general purpose flag: encrypted
    with pytest.raises(FormatError):
        _load_bytes(bytes(bad))
    bad = bytearray(data)
    struct.pack_into("<H", bad, entries[0] + 10, 12)  # bzip2
    with pytest.raises(FormatError):
        _load_bytes(bytes(bad))


def test_error_is_a_value_error():
    assert issubclass(FormatError, ValueError)


# ================================================================ fuzzing
_FUZZ_BASE = _valid()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, len(_FUZZ_BASE) - 1), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.integers(0, len(_FUZZ_BASE))),
       insert=st.one_of(st.none(), st.tuples(st.integers(0, len(_FUZZ_BASE)), st.binary(min_size=1, max_size=16))))
def test_fuzz_mutated_files(edits, cut, insert):
    data = bytearray(_FUZZ_BASE)
    for pos, val in edits:
        data[pos] = val
    if insert is not None:
        data[insert[0]:insert[0]] = insert[1]
    if cut is not None:
        data = data[:cut]
    try:
        _load_bytes(bytes(data))
    except FormatError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20) | st.binary(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.tuples(kids, kids)
    | st.dictionaries(st.text(max_size=5) | st.integers(), kids, max_size=4),
    max_leaves=20))
def test_fuzz_round_trip_plain_values(obj):
    assert _eq(_roundtrip(obj), obj)

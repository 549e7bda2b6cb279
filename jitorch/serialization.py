"""jitorch.save / jitorch.load: tensors, state dicts and nested containers in a safe zip container.

No pickle anywhere: a file is a zip archive (format spec: ``docs/serialization.md``) of

- ``version``: ``b"jitorch.save\\n1\\n"`` (format name and version number),
- ``data.json``: the object's structure as typed JSON nodes; tensors are references to
- ``tensors/<n>.npy``: one ``.npy`` file per tensor (``np.save``/``np.load`` with ``allow_pickle=False``).

Saving writes a temp file beside the target and renames it over the target (atomic: a crash or an
error mid-write leaves the old file intact). Loading validates everything before it builds any object:
member names, sizes, compression ratios, the version, every JSON node, every ``.npy`` header (allowed
dtypes only, shape consistent with the member's size) — and raises :class:`FormatError` (a
``ValueError``) for anything corrupt or hostile. Nothing in a file is ever executed.

Tensors are saved as contiguous copies: the same tensor *object* reached twice is stored once and
loads as one object, but distinct views of one storage are stored (and load) as independent tensors.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import math
import os
import re
import struct
import tempfile
import tokenize
import warnings
import zipfile
import zlib
from collections import Counter, OrderedDict
from typing import Any

import numpy as np

from . import _dtype as D
from ._device import as_device, device as _device_cls
from .tensor import Tensor

__all__ = ["save", "load", "FormatError", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "jitorch.save"
FORMAT_VERSION = 1

VERSION_MEMBER = "version"
DATA_MEMBER = "data.json"
_TENSOR_NAME = re.compile(r"tensors/(0|[1-9][0-9]{0,9})\.npy")

#: Limits checked on load (module attributes, so an application can adjust them).
MAX_DEPTH = 200                     # nesting of containers in data.json
MAX_NODES = 5_000_000               # JSON nodes
MAX_JSON_BYTES = 256 << 20          # size of data.json
MAX_MEMBERS = 1_000_000             # members in the archive
MAX_COMPRESSION_RATIO = 200         # uncompressed / compressed size of a deflated member (we write stored)
MAX_NDIM = 64
MAX_NPY_HEADER = 10_000             # bytes of a .npy header (numpy's own default limit)
MAX_STRING = 64 << 20               # characters in one string node

#: dtypes a tensor may have in a file, by their .npy ``descr`` (little-endian or byte-order free).
_ALLOWED_DESCR = {"|b1": "bool", "|u1": "uint8", "|i1": "int8", "<i2": "int16", "<i4": "int32", "<i8": "int64",
                  "<f2": "float16", "<f4": "float32", "<f8": "float64"}
_DESCR_OF = {v: k for k, v in _ALLOWED_DESCR.items()}

_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same object saves to the same bytes


class FormatError(ValueError):
    """A file is not a valid jitorch.save archive (corrupt, truncated, hostile, or a newer version)."""


# ================================================================ encoding
def _c_order(a):
    # (np.ascontiguousarray would turn a 0-d array into a 1-d one)
    return a if a.flags.c_contiguous else np.array(a, order="C")


def _hexf(x: float) -> str:
    return float(x).hex()


class _Encoder:
    def __init__(self):
        self.tensors: list[tuple[str, np.ndarray]] = []
        self._memo: dict[int, dict] = {}
        self._keep: list[Any] = []  # keep encoded objects alive so ids stay unique
        self._active: set[int] = set()

    def tensor_array(self, t):
        if t._device.type != "cpu":
            t = t.cpu()
        return _c_order(t._data)

    def add_array(self, arr):
        ref = f"tensors/{len(self.tensors)}.npy"
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        self.tensors.append((ref, arr))
        return ref

    def encode(self, obj, depth=0):
        if depth > MAX_DEPTH:
            raise ValueError(f"jitorch.save: object nested deeper than {MAX_DEPTH} levels")
        if obj is None:
            return {"t": "none"}
        if obj is True or obj is False:
            return {"t": "bool", "v": obj}
        if isinstance(obj, Tensor):
            return self._tensor(obj)
        if isinstance(obj, bool):  # bool subclasses other than True/False do not exist; kept for clarity
            return {"t": "bool", "v": bool(obj)}
        if isinstance(obj, int):
            return {"t": "int", "v": int(obj)}
        if isinstance(obj, float):
            return {"t": "float", "v": _hexf(obj)}
        if isinstance(obj, str):
            return {"t": "str", "v": str(obj)}
        if isinstance(obj, (bytes, bytearray)):
            return {"t": "bytes", "v": base64.b64encode(bytes(obj)).decode("ascii")}
        if isinstance(obj, D.dtype):
            return {"t": "dtype", "v": obj.name}
        if isinstance(obj, _device_cls):
            return {"t": "device", "v": str(obj)}
        if isinstance(obj, np.ndarray):
            return self._ndarray(obj)
        if isinstance(obj, np.generic):
            return self._npscalar(obj)
        oid = id(obj)
        if oid in self._active:
            raise ValueError("jitorch.save: the object contains a reference cycle; only trees of containers can be saved")
        self._active.add(oid)
        try:
            if isinstance(obj, dict):
                kind = "odict" if isinstance(obj, OrderedDict) else "dict"
                items = []
                for k, v in obj.items():
                    items.append([self._key(k, depth + 1), self.encode(v, depth + 1)])
                return {"t": kind, "items": items}
            if isinstance(obj, list):
                return {"t": "list", "items": [self.encode(v, depth + 1) for v in obj]}
            if isinstance(obj, tuple):
                return {"t": "tuple", "items": [self.encode(v, depth + 1) for v in obj]}
        finally:
            self._active.discard(oid)
        raise TypeError(
            f"jitorch.save: cannot save an object of type {type(obj).__module__}.{type(obj).__qualname__}: the format "
            "holds tensors, NumPy arrays and scalars, numbers, strings, bytes, None, bools, dtypes, devices and "
            "dict/list/tuple of those (no pickle). Save a state_dict() instead of a module or optimizer object.")

    def _key(self, k, depth):
        if k is None or isinstance(k, (bool, int, float, str, bytes)):
            return self.encode(k, depth)
        if isinstance(k, tuple):
            return {"t": "tuple", "items": [self._key(x, depth + 1) for x in k]}
        raise TypeError(f"jitorch.save: dict keys must be str, int, float, bool, bytes, None or tuples of those; "
                        f"got {type(k).__name__}")

    def _tensor(self, t):
        node = self._memo.get(id(t))
        if node is not None:
            return node
        arr = self.tensor_array(t)
        node = {"t": "tensor", "ref": self.add_array(arr), "dtype": t.dtype.name, "shape": list(arr.shape),
                "device": str(t._device), "requires_grad": bool(t.requires_grad)}
        if type(t).__name__ == "Parameter":
            node["param"] = True
        self._memo[id(t)] = node
        self._keep.append(t)
        return node

    def _ndarray(self, a):
        node = self._memo.get(id(a))
        if node is not None:
            return node
        try:
            dt = D.from_numpy_dtype(a.dtype)
        except Exception:
            dt = None
        if dt is None or a.dtype.str.lstrip("<>|=") != np.dtype(dt.np).str.lstrip("<>|="):
            raise TypeError(f"jitorch.save: NumPy arrays of dtype {a.dtype} cannot be saved; allowed: "
                            f"{', '.join(sorted(_DESCR_OF))}")
        arr = _c_order(a)
        node = {"t": "ndarray", "ref": self.add_array(arr), "dtype": dt.name, "shape": list(arr.shape)}
        self._memo[id(a)] = node
        self._keep.append(a)
        return node

    def _npscalar(self, x):
        name = x.dtype.name
        if name not in _DESCR_OF:
            raise TypeError(f"jitorch.save: NumPy scalars of dtype {x.dtype} cannot be saved")
        if x.dtype.kind == "f":
            v = _hexf(float(x))
        elif x.dtype.kind == "b":
            v = bool(x)
        else:
            v = int(x)
        return {"t": "npscalar", "dtype": name, "v": v}


def _zinfo(name):
    zi = zipfile.ZipInfo(name, date_time=_DATE)
    zi.compress_type = zipfile.ZIP_STORED
    zi.external_attr = 0o644 << 16
    return zi


def write_npy_member(zf, name, arr):
    """Write ``arr`` as the ``.npy`` member ``name`` (stored, fixed timestamp, never pickled)."""
    with zf.open(_zinfo(name), "w", force_zip64=arr.nbytes > (1 << 30)) as w:
        np.lib.format.write_array(w, arr, allow_pickle=False)


def _write_archive(fh, data_json: bytes, tensors):
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(_zinfo(VERSION_MEMBER), f"{FORMAT_NAME}\n{FORMAT_VERSION}\n".encode())
        zf.writestr(_zinfo(DATA_MEMBER), data_json)
        for ref, arr in tensors:
            write_npy_member(zf, ref, arr)


def _umask():
    um = os.umask(0)
    os.umask(um)
    return um


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False):
    """Save ``obj`` (tensors, state dicts, nested dict/list/tuple of tensors, numbers, strings, None, bools,
    NumPy arrays, dtypes, devices) to ``f``: a path (written atomically) or a binary file-like object.

    ``pickle_module``/``pickle_protocol`` are accepted for torch compatibility and ignored: nothing is pickled.
    """
    enc = _Encoder()
    root = enc.encode(obj)
    data_json = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": root}, ensure_ascii=True,
                           allow_nan=False, separators=(",", ":")).encode("ascii")
    if hasattr(f, "write") and not isinstance(f, (str, bytes, os.PathLike)):
        _write_archive(f, data_json, enc.tensors)
        return
    atomic_write(f, lambda fh: _write_archive(fh, data_json, enc.tensors))


def atomic_write(f, write):
    """Call ``write(fh)`` on a temp file beside the path ``f``, fsync it, then rename it over ``f``.

    A crash or an exception mid-write leaves the previous file intact (the temp file is removed).
    The file gets mode ``0666 & ~umask``. Shared with ``jitorch.jit.export``.
    """
    path = os.fspath(f)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ================================================================ loading
_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError, KeyError, IndexError,
            UnicodeDecodeError, NotImplementedError, OverflowError, RecursionError, binascii.Error, ValueError,
            TypeError, OSError)

_NODE_KEYS = {
    "none": {"t"}, "bool": {"t", "v"}, "int": {"t", "v"}, "float": {"t", "v"}, "str": {"t", "v"},
    "bytes": {"t", "v"}, "dtype": {"t", "v"}, "device": {"t", "v"}, "list": {"t", "items"},
    "tuple": {"t", "items"}, "dict": {"t", "items"}, "odict": {"t", "items"},
    "tensor": {"t", "ref", "dtype", "shape", "device", "requires_grad"},
    "ndarray": {"t", "ref", "dtype", "shape"}, "npscalar": {"t", "dtype", "v"},
}
_HASHABLE_KINDS = {"none", "bool", "int", "float", "str", "bytes", "tuple"}


def _fail(msg):
    raise FormatError(msg)


def _check_device(s):
    try:
        as_device(s)
    except (RuntimeError, TypeError, ValueError):
        _fail(f"data.json: bad device {s!r}")


def load_json_strict(raw, what):
    """Strict JSON from bytes: UTF-8, no NaN/Infinity constants, no duplicate keys, bounded nesting.

    Raises :class:`FormatError` with messages that start with ``what``. Shared with
    ``jitorch.jit.export``.
    """
    def reject_constant(name):
        _fail(f"{what}: non-standard JSON constant {name}")

    def pairs(items):
        d = {}
        for k, v in items:
            if k in d:
                _fail(f"{what}: duplicate key {k!r}")
            d[k] = v
        return d
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=pairs, parse_constant=reject_constant)
    except RecursionError:
        _fail(f"{what}: nesting too deep")
    except json.JSONDecodeError as e:
        _fail(f"{what} is not valid JSON: {e}")


class _Decoder:
    def __init__(self, zf, refs_info, map_location):
        self.zf = zf
        self.infos = refs_info
        self.map_location = map_location
        self.nodes = 0
        self.loaded: dict[str, tuple] = {}  # ref -> (meta key, object)

    # ---------------------------------------------------------- pass 1: validate the tree, collect refs
    def check(self, n, depth, refs, key=False):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            _fail(f"data.json: more than {MAX_NODES} nodes")
        if depth > MAX_DEPTH:
            _fail(f"data.json: nesting deeper than {MAX_DEPTH} levels")
        if type(n) is not dict:
            _fail(f"data.json: expected a node object, found {type(n).__name__}")
        t = n.get("t")
        if type(t) is not str or t not in _NODE_KEYS:
            _fail(f"data.json: unknown node kind {t!r}")
        keys = _NODE_KEYS[t]
        extra = set(n) - keys - ({"param"} if t == "tensor" else set())
        if extra or not keys <= set(n):
            _fail(f"data.json: a {t!r} node must have the keys {sorted(keys)}, found {sorted(n)}")
        if key and t not in _HASHABLE_KINDS:
            _fail(f"data.json: a {t!r} node cannot be a dict key")
        v = n.get("v")
        if t == "bool":
            if type(v) is not bool:
                _fail("data.json: bool node without a boolean value")
        elif t == "int":
            if type(v) is not int:
                _fail("data.json: int node without an integer value")
        elif t == "float":
            if type(v) is not str or len(v) > 40:
                _fail("data.json: float node without a hex string value")
            float.fromhex(v)
        elif t in ("str", "bytes", "dtype", "device"):
            if type(v) is not str or len(v) > MAX_STRING:
                _fail(f"data.json: {t} node without a string value")
            if t == "dtype" and v not in D._BY_NAME:
                _fail(f"data.json: unknown dtype {v!r}")
            if t == "device":
                _check_device(v)
            if t == "bytes":
                base64.b64decode(v.encode("ascii"), validate=True)
        elif t in ("list", "tuple", "dict", "odict"):
            items = n["items"]
            if type(items) is not list:
                _fail(f"data.json: {t} node without an item list")
            for it in items:
                if t in ("dict", "odict"):
                    if type(it) is not list or len(it) != 2:
                        _fail("data.json: dict items must be [key, value] pairs")
                    self.check(it[0], depth + 1, refs, key=True)
                    self.check(it[1], depth + 1, refs)
                else:
                    self.check(it, depth + 1, refs, key=key)
        elif t in ("tensor", "ndarray"):
            ref = n["ref"]
            if type(ref) is not str or not _TENSOR_NAME.fullmatch(ref):
                _fail(f"data.json: bad tensor reference {ref!r}")
            if ref not in self.infos:
                _fail(f"data.json: tensor reference {ref!r} has no member in the archive")
            if type(n["dtype"]) is not str or n["dtype"] not in _DESCR_OF:
                _fail(f"data.json: unsupported tensor dtype {n['dtype']!r}")
            shape = n["shape"]
            if (type(shape) is not list or len(shape) > MAX_NDIM
                    or any(type(s) is not int or s < 0 for s in shape)):
                _fail(f"data.json: bad tensor shape {shape!r}")
            if t == "tensor":
                if type(n["device"]) is not str or len(n["device"]) > 32:
                    _fail("data.json: bad tensor device")
                _check_device(n["device"])
                if type(n["requires_grad"]) is not bool or ("param" in n and n["param"] is not True):
                    _fail("data.json: bad tensor flags")
                if n["requires_grad"] and n["dtype"] not in ("float16", "float32", "float64"):
                    _fail("data.json: only floating-point tensors can require grad")
            meta = (t, n["dtype"], tuple(shape))
            if ref in refs and refs[ref] != meta:
                _fail(f"data.json: {ref!r} is referenced with different dtypes or shapes")
            refs[ref] = meta
        elif t == "npscalar":
            if type(n["dtype"]) is not str or n["dtype"] not in _DESCR_OF:
                _fail(f"data.json: unsupported scalar dtype {n['dtype']!r}")
            kind = np.dtype(n["dtype"]).kind
            ok = (type(v) is str and len(v) <= 40) if kind == "f" else (type(v) is bool if kind == "b" else type(v) is int)
            if not ok:
                _fail("data.json: bad npscalar value")
            if kind == "f":
                float.fromhex(v)

    # ---------------------------------------------------------- pass 2: read and validate each .npy
    def read_array(self, ref, meta):
        _, dtype_name, shape = meta
        return read_npy(self.zf, self.infos[ref], ref, dtype_name, shape)

    # ---------------------------------------------------------- pass 3: build the objects
    def build(self, n, arrays):
        t = n["t"]
        if t == "none":
            return None
        if t in ("bool", "int", "str"):
            return n["v"]
        if t == "float":
            return float.fromhex(n["v"])
        if t == "bytes":
            return base64.b64decode(n["v"].encode("ascii"), validate=True)
        if t == "dtype":
            return D._BY_NAME[n["v"]]
        if t == "device":
            return as_device(n["v"])
        if t == "list":
            return [self.build(x, arrays) for x in n["items"]]
        if t == "tuple":
            return tuple(self.build(x, arrays) for x in n["items"])
        if t in ("dict", "odict"):
            out = OrderedDict() if t == "odict" else {}
            for k, v in n["items"]:
                kk = self.build(k, arrays)
                if kk in out:
                    _fail(f"data.json: duplicate dict key {kk!r}")
                out[kk] = self.build(v, arrays)
            return out
        if t == "npscalar":
            dt = np.dtype(n["dtype"])
            return dt.type(float.fromhex(n["v"]) if dt.kind == "f" else n["v"])
        ref = n["ref"]
        if t == "ndarray":
            key = ("ndarray",)
            got = self.loaded.get(ref)
            if got is not None:
                if got[0] != key:
                    _fail(f"data.json: {ref!r} is referenced both as an array and as a tensor")
                return got[1]
            obj = arrays[ref]
            self.loaded[ref] = (key, obj)
            return obj
        key = ("tensor", n["device"], n["requires_grad"], n.get("param", False))
        got = self.loaded.get(ref)
        if got is not None:
            if got[0] != key:
                _fail(f"data.json: {ref!r} is referenced with different tensor attributes")
            return got[1]
        obj = self._make_tensor(arrays[ref], n)
        self.loaded[ref] = (key, obj)
        return obj

    def _make_tensor(self, arr, n):
        t = Tensor._wrap(arr)
        loc = n["device"]
        ml = self.map_location
        target = None
        if ml is None:
            target = loc
        elif isinstance(ml, (str, _device_cls)):
            target = ml
        elif isinstance(ml, dict):
            target = ml.get(loc, loc)
        elif callable(ml):
            res = ml(t, loc)
            if res is None:
                target = loc
            elif isinstance(res, Tensor):
                t = res
            else:
                target = res  # a device or device string, as a convenience
        else:
            raise TypeError("map_location should be a str, a jitorch.device, a dict or a callable, "
                            f"got {type(ml).__name__}")
        if target is not None:
            dev = as_device(target)
            if dev != t._device:
                t = t.to(dev)
        if n["requires_grad"]:
            t.requires_grad = True
        if n.get("param"):
            nn = _nn_parameter()
            if nn is not None:
                t = nn(t, requires_grad=n["requires_grad"])
        return t


def read_npy(zf, info, ref, dtype_name, shape):
    """Validate the ``.npy`` member ``info`` against the declared dtype name and shape, then read it.

    Before anything is allocated: magic and version, a header of at most ``MAX_NPY_HEADER`` bytes
    (NumPy's literal-only parser), an allowed little-endian dtype equal to ``dtype_name``, the
    declared ``shape``, and ``header + prod(shape) * itemsize`` equal to the member's size. The data
    is then read with ``allow_pickle=False`` (the zip CRC is checked at the end). Returns a
    C-contiguous, writeable array; raises :class:`FormatError` with messages that start with
    ``ref``. Shared with ``jitorch.jit.export``.
    """
    shape = tuple(shape)
    with zf.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version not in ((1, 0), (2, 0), (3, 0)):
            _fail(f"{ref}: unsupported .npy version {version}")
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        try:
            with warnings.catch_warnings():  # a damaged header can make numpy's parser warn (escapes, "Python 2")
                warnings.simplefilter("ignore")
                hshape, fortran, dtype = reader(fp, max_header_size=MAX_NPY_HEADER)
        except (ValueError, TypeError, SyntaxError, tokenize.TokenError, MemoryError, RecursionError) as e:
            _fail(f"{ref}: bad .npy header: {type(e).__name__}: {e}")  # numpy's parser raises these on garbage
        header_len = fp.tell()
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        _fail(f"{ref}: object or structured dtype {dtype} is not allowed")
    descr = dtype.str if dtype.str in _ALLOWED_DESCR else None
    if descr is None or _ALLOWED_DESCR[descr] != dtype_name:
        _fail(f"{ref}: dtype {dtype} does not match the declared {dtype_name!r} (allowed: little-endian "
              f"{', '.join(sorted(_DESCR_OF))})")
    if not isinstance(fortran, bool) or tuple(hshape) != shape:
        _fail(f"{ref}: shape {tuple(hshape)} does not match the declared {list(shape)}")
    nbytes = math.prod(shape) * dtype.itemsize
    if header_len + nbytes != info.file_size:
        _fail(f"{ref}: member holds {info.file_size - header_len} bytes of data, the header's shape needs {nbytes}")
    with zf.open(info) as fp:
        arr = np.load(fp, allow_pickle=False, max_header_size=MAX_NPY_HEADER)
        if fp.read(1):
            _fail(f"{ref}: trailing data after the array")
    if arr.dtype != dtype or arr.shape != shape:
        _fail(f"{ref}: array does not match its header")
    if not arr.flags.c_contiguous or not arr.flags.writeable:
        arr = np.array(arr, order="C")
    return arr


def _nn_parameter():
    try:
        from .nn import Parameter  # jitorch.nn, when present
    except Exception:
        return None
    return Parameter


def _check_members(zf, archive_size):
    def pickled(names):
        if any(n.endswith(".pkl") or n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            _fail("this is a pickle-based checkpoint (e.g. written by torch.save): jitorch.load never unpickles. "
                  "Convert it with torch: load it there and re-save the tensors with jitorch.save "
                  "(e.g. via .numpy()).")
    return check_zip_members(
        zf, archive_size, lambda name: name in (VERSION_MEMBER, DATA_MEMBER) or _TENSOR_NAME.fullmatch(name),
        f"only {VERSION_MEMBER!r}, {DATA_MEMBER!r} and 'tensors/<n>.npy'", names_hook=pickled)


def check_zip_members(zf, archive_size, allowed, allowed_desc, names_hook=None):
    """Validate the member table of an open zip before anything is decompressed; -> {name: ZipInfo}.

    At most ``MAX_MEMBERS`` members, no duplicate names, ``names_hook(names)`` (a caller's check
    on the list of names), every name accepted by ``allowed(name)`` (``allowed_desc`` says which
    names are, for the message), no encryption, STORED (sizes equal) or DEFLATED within
    ``MAX_COMPRESSION_RATIO``, every member inside the file, no overlapping members, compressed
    sizes adding up to at most the file size. Shared with ``jitorch.jit.export``.
    """
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        _fail(f"archive has {len(infos)} members (limit {MAX_MEMBERS})")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        dup = sorted(x for x, k in Counter(names).items() if k > 1)[:3]  # (names.count: quadratic)
        _fail(f"archive has duplicate members {dup}")
    if names_hook is not None:
        names_hook(names)
    by_name = {}
    for i in infos:
        name = i.filename
        if not allowed(name):
            _fail(f"archive member name {name!r} is not allowed ({allowed_desc}; no absolute paths, '..', or other "
                  "files)")
        if i.flag_bits & 0x1:
            _fail(f"archive member {name!r} is encrypted")
        if i.compress_type == zipfile.ZIP_STORED:
            if i.file_size != i.compress_size:
                _fail(f"archive member {name!r}: stored member with inconsistent sizes")
        elif i.compress_type == zipfile.ZIP_DEFLATED:
            if i.file_size > MAX_COMPRESSION_RATIO * max(i.compress_size, 1):
                _fail(f"archive member {name!r}: compression ratio above {MAX_COMPRESSION_RATIO} (zip bomb?)")
        else:
            _fail(f"archive member {name!r}: unsupported compression method {i.compress_type}")
        if i.header_offset < 0 or i.header_offset + 30 + len(name) + i.compress_size > archive_size:
            _fail(f"archive member {name!r} extends past the end of the file (truncated?)")
        by_name[name] = i
    # members must not overlap (overlapping entries are the classic zip-bomb construction)
    spans = sorted((i.header_offset, i.header_offset + 30 + len(i.filename) + i.compress_size) for i in infos)
    for (a0, a1), (b0, _) in zip(spans, spans[1:]):
        if b0 < a1:
            _fail("archive members overlap (zip bomb?)")
    if sum(i.compress_size for i in infos) > archive_size:
        _fail("archive members are larger than the file")
    return by_name


def read_small(zf, info, limit, what):
    """The bytes of a small member, refused above ``limit`` or when its size differs from the directory's."""
    if info.file_size > limit:
        _fail(f"{what} is {info.file_size} bytes (limit {limit})")
    with zf.open(info) as fp:
        data = fp.read(limit + 1)
    if len(data) != info.file_size:
        _fail(f"{what}: size does not match the archive directory")
    return data


def _load_archive(fobj, map_location):
    fobj.seek(0, io.SEEK_END)
    archive_size = fobj.tell()
    fobj.seek(0)
    head = fobj.read(4)
    fobj.seek(0)
    if head[:1] == b"\x80":
        _fail("this is a legacy pickle file (e.g. an old torch.save): jitorch.load never unpickles")
    if head != b"PK\x03\x04":
        _fail("not a jitorch.save file (not a zip archive)")
    with zipfile.ZipFile(fobj, "r") as zf:
        infos = _check_members(zf, archive_size)
        if VERSION_MEMBER not in infos or DATA_MEMBER not in infos:
            _fail(f"not a jitorch.save archive: the {VERSION_MEMBER!r} and {DATA_MEMBER!r} members are required")
        vtext = read_small(zf, infos[VERSION_MEMBER], 64, "the version member")
        m = re.fullmatch(rb"([A-Za-z0-9_.\-]+)\n([0-9]{1,6})\n", vtext)
        if m is None or m.group(1).decode() != FORMAT_NAME:
            _fail(f"not a jitorch.save archive (version member {vtext[:40]!r})")
        version = int(m.group(2))
        if version > FORMAT_VERSION:
            _fail(f"file format version {version} is newer than this jitorch reads ({FORMAT_VERSION}); upgrade jitorch")
        if version < 1:
            _fail(f"invalid format version {version}")
        raw = read_small(zf, infos[DATA_MEMBER], MAX_JSON_BYTES, "data.json")
        doc = load_json_strict(raw, "data.json")
        if type(doc) is not dict or set(doc) != {"format", "version", "root"}:
            _fail("data.json: the top level must be {'format', 'version', 'root'}")
        if doc["format"] != FORMAT_NAME or doc["version"] != version or type(doc["version"]) is not int:
            _fail("data.json: format/version do not match the version member")
        tensor_infos = {k: v for k, v in infos.items() if k not in (VERSION_MEMBER, DATA_MEMBER)}
        dec = _Decoder(zf, tensor_infos, map_location)
        refs: dict[str, tuple] = {}
        dec.check(doc["root"], 0, refs)
        unused = set(tensor_infos) - set(refs)
        if unused:
            _fail(f"archive has members that data.json does not reference: {sorted(unused)[:3]}")
        arrays = {ref: dec.read_array(ref, meta) for ref, meta in sorted(refs.items())}
        return dec, doc["root"], arrays


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """Load an object saved by :func:`save` from a path or a binary file-like object.

    ``map_location`` puts tensors on a device: ``None`` (where they were saved), a device or string
    (``"cpu"``), a dict ``{saved_location: target}``, or a callable ``fn(tensor, saved_location)``
    returning a tensor, a device, or ``None`` (keep the saved location). ``weights_only``, ``mmap`` and the
    pickle arguments are accepted for torch compatibility; loading never unpickles anything.
    Raises :class:`FormatError` for a corrupt, truncated, hostile or newer-version file.
    """
    if map_location is not None and not isinstance(map_location, (str, _device_cls, dict)) and not callable(map_location):
        raise TypeError("map_location should be a str, a jitorch.device, a dict or a callable, "
                        f"got {type(map_location).__name__}")
    if hasattr(f, "read") and not isinstance(f, (str, bytes, os.PathLike)):
        return _load_guarded(f, map_location)
    with open(f, "rb") as fh:
        return _load_guarded(fh, map_location)


def _load_guarded(fobj, map_location):
    try:
        dec, root, arrays = _load_archive(fobj, map_location)
    except FormatError:
        raise
    except _CORRUPT as e:
        raise FormatError(f"corrupt jitorch.save file: {type(e).__name__}: {e}") from e
    # everything is validated: building objects (and moving tensors per map_location) is not a format matter
    return dec.build(root, arrays)

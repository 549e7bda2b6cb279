"""Load generated numba source as real modules, so numba's on-disk cache (cache=True) works.

numba cannot cache functions made with ``exec`` ("no locator available"), and a module loaded
without registering it in ``sys.modules`` writes a cache it can never read back
(research/feasibility.md section 3). So generated source is written to
``<cache dir>/<prefix>_<sha256 of source>.py`` (atomically, never rewritten: the name is the
content) and imported under that name. numba keeps its compiled code in ``__pycache__`` beside it.

Generated files must be self-contained: numba does not invalidate a cached kernel when a helper
in another module changes, so every helper a kernel calls is copied into its source.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading

_lock = threading.Lock()
_loaded: dict[str, object] = {}


def cache_dir() -> str:
    """``$JITORCH_CACHE_DIR`` or ``~/.cache/jitorch``; created on first use."""
    root = os.environ.get("JITORCH_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "jitorch")
    path = os.path.join(root, "kernels")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        path = os.path.join(tempfile.gettempdir(), f"jitorch-{os.getuid()}", "kernels")
        os.makedirs(path, exist_ok=True)
    return path


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_source(source: str, prefix: str = "jk"):
    """Import ``source`` as a module named after its hash; the same text gives the same module."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:24]
    name = f"_jitorch_gen_{prefix}_{digest}"
    mod = _loaded.get(name)
    if mod is not None:
        return mod
    with _lock:
        mod = _loaded.get(name)
        if mod is not None:
            return mod
        folder = cache_dir()
        path = os.path.join(folder, name + ".py")
        ok = False
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    ok = f.read() == source  # a damaged or truncated file is rewritten, never trusted
            except OSError:
                ok = False
        if not ok:
            write_atomic(path, source.encode())
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # numba's cache unpickles by module name
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        _loaded[name] = mod
        return mod

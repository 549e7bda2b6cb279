"""The on-disk kernel cache (``jitorch cache info`` / ``jitorch cache clear``).

Generated kernel modules live in ``<cache dir>/kernels/_jitorch_gen_<prefix>_<sha256>.py`` (named
after their content, written atomically by ``kernels._jitcache.load_source``); numba keeps their
compiled code beside them in ``__pycache__`` (``*.nbi`` index + ``*.nbc`` data, keyed by numba's
own signature and CPU checks). Fused kernels carry a hash of the jitorch/numba/llvmlite versions in
their text, so an upgrade gives new file names and never loads stale code. The native build
(``jitorch.jit.build``) keeps its kernels' LLVM IR and optimized objects in ``kernels/native/``:
``info`` counts them and ``clear`` removes them too.
"""
from __future__ import annotations

import os
import re

_GEN = re.compile(r"_jitorch_gen_([A-Za-z0-9]+)_[0-9a-f]+")


def _entries(folder):
    """(path, kind, size) of every file the cache owns: generated sources and numba/pyc caches."""
    out = []
    if not os.path.isdir(folder):
        return out
    for name in sorted(os.listdir(folder)):
        m = _GEN.match(name)
        if m and name.endswith(".py"):
            p = os.path.join(folder, name)
            out.append((p, m.group(1), os.path.getsize(p)))
    pyc = os.path.join(folder, "__pycache__")
    if os.path.isdir(pyc):
        for name in sorted(os.listdir(pyc)):
            m = _GEN.match(name)
            if m:
                p = os.path.join(pyc, name)
                out.append((p, m.group(1) + " (compiled)", os.path.getsize(p)))
    from .native.llvm import cache_entries  # the native build's IR and objects (<folder>/native)
    out += cache_entries(folder)
    return out


def info():
    """A dict: folder, versions, and per kind (ew, fused, ...) the number of files and bytes."""
    from ..kernels._jitcache import cache_dir
    from .fuse import versions_tag
    folder = cache_dir()
    kinds = {}
    for _, kind, size in _entries(folder):
        n, b = kinds.get(kind, (0, 0))
        kinds[kind] = (n + 1, b + size)
    text, tag = versions_tag()
    return {"folder": folder, "versions": f"{text} [{tag}]", "kinds": kinds,
            "files": sum(n for n, _ in kinds.values()), "bytes": sum(b for _, b in kinds.values())}


def format_info(d):
    lines = [f"kernel cache: {d['folder']}", f"versions: {d['versions']}",
             f"{d['files']} files, {d['bytes'] / 1e6:.1f} MB"]
    for kind, (n, b) in sorted(d["kinds"].items()):
        lines.append(f"  {kind:<20} {n:6d} files {b / 1e6:9.2f} MB")
    return "\n".join(lines)


def clear():
    """Delete the cache's generated sources and compiled code; returns the number of files removed."""
    from ..kernels._jitcache import cache_dir
    n = 0
    for path, _, _ in _entries(cache_dir()):
        try:
            os.unlink(path)
            n += 1
        except OSError:
            pass
    return n

"""Imports point down only: kernels/ imports nothing from jitorch, and only the backends, the
kernel library and the code generators talk to numba directly."""
from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _imports(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, node.module or "", node.level


def test_kernels_import_nothing_from_jitorch():
    bad = []
    for path in sorted((ROOT / "kernels").rglob("*.py")):
        for line, mod, level in _imports(path):
            if level == 0 and (mod == "jitorch" or mod.startswith("jitorch.")) and not mod.startswith("jitorch.kernels"):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
            if level > 1:
                bad.append(f"{path.relative_to(ROOT)}:{line} relative import leaves kernels/ ({'.' * level}{mod})")
    assert not bad, "kernels/ must not import the jitorch frontend:\n" + "\n".join(bad)


# modules allowed to import numba: the backends, the compiler and tools that generate kernels
NUMBA_ALLOWED = ("jitorch/backends/", "jitorch/jit/", "jitorch/cuda", "jitorch/_devices", "jitorch/cli")


def test_frontend_does_not_import_numba():
    bad = []
    for path in sorted((ROOT / "jitorch").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel.startswith(NUMBA_ALLOWED):
            continue
        for line, mod, level in _imports(path):
            if level == 0 and (mod == "numba" or mod.startswith("numba.")):
                bad.append(f"{rel}:{line} imports {mod}")
    assert not bad, "only backends/, jit/ and cuda talk to numba; call a kernel from kernels/ instead:\n" + "\n".join(bad)


# Pickle is allowed only for messages between jitorch's own processes (the DataLoader's worker
# pipes, as multiprocessing itself does), never for anything read from a file.
PICKLE_IPC_ONLY = {"jitorch/utils/data/_worker.py", "jitorch/utils/data/dataloader.py"}


def test_no_pickle_in_jitorch():
    bad = []
    for path in sorted((ROOT / "jitorch").rglob("*.py")):
        text = path.read_text()
        rel = str(path.relative_to(ROOT))
        for line, mod, level in _imports(path):
            if mod in ("pickle", "cPickle", "dill", "cloudpickle") and rel not in PICKLE_IPC_ONLY:
                bad.append(f"{rel}:{line} imports {mod}")
        if "allow_pickle=True" in text:
            bad.append(f"{path.relative_to(ROOT)} uses allow_pickle=True")
    assert not bad, "loading must never execute code from a file:\n" + "\n".join(bad)

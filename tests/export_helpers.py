"""Models and zip helpers shared by tests/test_export.py and tests/test_export_fuzz.py.

``python -m tests.export_helpers`` regenerates tests/golden/mlp_v1.jt and its input/output .npy
files; do that only when a new format version is released (a released golden file never changes).
"""
from __future__ import annotations

import io
import pathlib
import warnings
import zipfile

import numpy as np

import jitorch
import jitorch.nn as nn

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"


class GoldenMLP(nn.Module):
    """Parameters, a buffer, a captured constant, and size-dependent view sizes and literals."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 3)
        self.register_buffer("shift", jitorch.linspace(-1.0, 1.0, 3))
        self.scale = jitorch.tensor([1.0, 2.0, 3.0])  # not registered: a constant of the graph

    def forward(self, x):
        h = self.fc1(x).relu()
        y = self.fc2(h) * self.scale + self.shift
        z = h.view(x.shape[0], 2, 3).sum(1)
        m = y.sum(0) / x.shape[0]
        return y, z, m


def golden_model():
    jitorch.manual_seed(0)
    return GoldenMLP().eval()


def golden_traced():
    return jitorch.jit.trace(golden_model(), jitorch.randn(4, 4))


def golden_input():
    return np.linspace(-2.0, 2.0, 5 * 4, dtype=np.float32).reshape(5, 4)


def members(data: bytes):
    """[(name, bytes)] of a zip, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i.filename)) for i in zf.infolist()]


def rezip(items, compress=zipfile.ZIP_STORED):
    """A zip of [(name, bytes)] with valid CRCs (duplicate names allowed, on purpose)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w", compression=compress) as zf:
            for name, data in items:
                zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=compress)
    return buf.getvalue()


def replace_member(data: bytes, name, new: bytes):
    return rezip([(n, new if n == name else b) for n, b in members(data)])


def load_bytes(data: bytes):
    return jitorch.jit.load(io.BytesIO(data))


def save_bytes(obj, **kw):
    buf = io.BytesIO()
    jitorch.jit.save(obj, buf, **kw)
    return buf.getvalue()


def regenerate():  # pragma: no cover - run by hand when a format version is released
    GOLDEN.mkdir(exist_ok=True)
    model = golden_model()
    jitorch.jit.save(golden_traced(), GOLDEN / "mlp_v1.jt", dynamic_batch=True)
    x = golden_input()
    with jitorch.no_grad():
        y, z, m = model(jitorch.from_numpy(x))
    np.save(GOLDEN / "mlp_v1_x.npy", x, allow_pickle=False)
    np.savez(GOLDEN / "mlp_v1_out.npz", y=y.numpy(), z=z.numpy(), m=m.numpy())


if __name__ == "__main__":  # pragma: no cover
    regenerate()

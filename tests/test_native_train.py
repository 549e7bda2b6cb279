"""Native training step (issue 8.6): a compiled SGD training step built into a program that trains on
.npy data; its parameters after several epochs equal eager jitorch training from the same state."""
import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest

import jitorch as torch
import jitorch.nn as nn
from jitorch.jit.native import BuildError, build_train_step

CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
pytestmark = [pytest.mark.skipif(CC is None or shutil.which("nm") is None, reason="needs a C compiler"),
              pytest.mark.slow]


def _mlp():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    @torch.compile
    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    rng = np.random.default_rng(0)
    X = rng.standard_normal((44, 16)).astype(np.float32)
    Y = rng.integers(0, 4, 44)
    for _ in range(2):  # the first step creates the momentum buffers (another graph)
        step(torch.from_numpy(X[:8]), torch.from_numpy(Y[:8]))
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    bufs = {k: opt.state[p]["momentum_buffer"].numpy().copy() for k, p in model.named_parameters()}
    res = build_train_step(step, str(d / "out"), "mlp_train", module=model, optimizer=opt)
    np.save(d / "X.npy", X)
    np.save(d / "Y.npy", Y)
    return res, state, bufs, X, Y, str(d), loss_fn


def _eager_reference(state, bufs, X, Y, loss_fn, epochs, batch=8):
    ref = _mlp()
    ref.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for k, p in ref.named_parameters():
        opt.state[p]["momentum_buffer"] = torch.from_numpy(bufs[k].copy())
    losses = []
    for _ in range(epochs):
        total = 0.0
        for b in range(len(X) // batch):
            opt.zero_grad()
            loss = loss_fn(ref(torch.from_numpy(X[b * batch:(b + 1) * batch])),
                           torch.from_numpy(Y[b * batch:(b + 1) * batch]))
            loss.backward()
            opt.step()
            total += loss.item()
        losses.append(total / (len(X) // batch))
    return ref, opt, losses


def test_native_training_matches_eager(trained, tmp_path):
    res, state, bufs, X, Y, d, loss_fn = trained
    p = subprocess.run([res.exe, os.path.join(d, "X.npy"), os.path.join(d, "Y.npy"), "3", str(tmp_path)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    ref, opt, losses = _eager_reference(state, bufs, X, Y, loss_fn, 3)
    got_losses = [float(ln.split()[-1]) for ln in p.stdout.splitlines() if ln.startswith("epoch")]
    np.testing.assert_allclose(got_losses, losses, rtol=1e-5)
    for k, v in ref.state_dict().items():
        np.testing.assert_allclose(np.load(tmp_path / f"{k}.npy"), v.numpy(), rtol=1e-5, atol=1e-6)
    for k, prm in ref.named_parameters():
        np.testing.assert_allclose(np.load(tmp_path / f"{k}.momentum_buffer.npy"),
                                   opt.state[prm]["momentum_buffer"].numpy(), rtol=1e-5, atol=1e-6)


def test_library_step_and_state_api(trained):
    res, state, bufs, X, Y, d, loss_fn = trained
    lib = ctypes.CDLL(res.lib)
    f = lambda n: getattr(lib, f"mlp_train_{n}")  # noqa: E731
    f("state_name").restype = ctypes.c_char_p
    f("state_name").argtypes = [ctypes.c_int]
    f("set_state").argtypes = [ctypes.c_int, ctypes.c_void_p]
    f("get_state").argtypes = [ctypes.c_int, ctypes.c_void_p]
    f("run").argtypes = [ctypes.c_void_p] * 5
    names = [f("state_name")(k).decode() for k in range(f("num_states")())]
    assert set(names) == set(state) | {f"{k}.momentum_buffer" for k in bufs}
    # reset to the build-time values (another test may have stepped this library), then one step
    for k, nm in enumerate(names):
        src = state[nm] if nm in state else bufs[nm.rsplit(".", 1)[0]]
        assert f("set_state")(k, np.ascontiguousarray(src).ctypes.data) == 0
    x, y = np.ascontiguousarray(X[:8]), np.ascontiguousarray(Y[:8])
    loss = np.zeros(1, np.float32)
    xs, ys = np.array(x.shape, np.int64), np.array(y.shape, np.int64)
    rc = f("run")(x.ctypes.data, xs.ctypes.data, y.ctypes.data, ys.ctypes.data, loss.ctypes.data)
    assert rc == 0
    ref, _, losses = _eager_reference(state, bufs, X[:8], Y[:8], loss_fn, 1)
    np.testing.assert_allclose(loss[0], losses[0], rtol=1e-5)
    k = names.index("0.weight")
    w = np.empty((32, 16), np.float32)
    assert f("get_state")(k, w.ctypes.data) == 0
    np.testing.assert_allclose(w, ref.state_dict()["0.weight"].numpy(), rtol=1e-5, atol=1e-6)


def test_not_a_training_step_is_refused(tmp_path):
    with pytest.raises(BuildError, match="training step"):
        build_train_step(lambda x: x, str(tmp_path))


def test_adam_step_matches_the_compiled_step(tmp_path):
    """Adam (float64 step counter, bias corrections in the graph): the native program and jitorch's
    compiled step, both continuing from the same state over the same batches, end equal."""
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()

    @torch.compile
    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    rng = np.random.default_rng(1)
    X = rng.standard_normal((24, 16)).astype(np.float32)
    Y = rng.integers(0, 4, 24)
    for _ in range(2):
        step(torch.from_numpy(X[:8]), torch.from_numpy(Y[:8]))
    res = build_train_step(step, str(tmp_path / "out"), "adam_train", module=model, optimizer=opt)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    p = subprocess.run([res.exe, str(tmp_path / "X.npy"), str(tmp_path / "Y.npy"), "2", str(tmp_path)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    for _ in range(2):
        for b in range(3):
            step(torch.from_numpy(X[b * 8:(b + 1) * 8]), torch.from_numpy(Y[b * 8:(b + 1) * 8]))
    for k, v in model.state_dict().items():
        np.testing.assert_allclose(np.load(tmp_path / f"{k}.npy"), v.numpy(), rtol=1e-5, atol=1e-6)
        assert np.load(tmp_path / f"{k}.step.npy") == opt.state[dict(model.named_parameters())[k]]["step"].numpy()

"""set_default_device / get_default_device and ``with jitorch.device(...)``: every factory function
without ``device=`` follows the default; explicit devices, conversions, from_numpy, ``*_like`` of
existing tensors and ops on existing tensors do not (torch's rules)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import jitorch

CUDA_OK = jitorch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA_OK, reason="cuda is not available (no GPU and no simulator)")

FACTORIES = {
    "zeros": lambda: jitorch.zeros(2, 3),
    "ones": lambda: jitorch.ones(2),
    "empty": lambda: jitorch.empty(4),
    "full": lambda: jitorch.full((2,), 1.5),
    "eye": lambda: jitorch.eye(3),
    "tensor": lambda: jitorch.tensor([[1.0, 2.0], [3.0, 4.0]]),
    "as_tensor(ndarray)": lambda: jitorch.as_tensor(np.arange(3.0)),
    "arange": lambda: jitorch.arange(5),
    "linspace": lambda: jitorch.linspace(0, 1, 5),
    "logspace": lambda: jitorch.logspace(0, 2, 3),
    "rand": lambda: jitorch.rand(3),
    "randn": lambda: jitorch.randn(3),
    "randint": lambda: jitorch.randint(0, 5, (4,)),
    "randperm": lambda: jitorch.randperm(6),
    "normal": lambda: jitorch.normal(0.0, 1.0, (3,)),
    "Linear weight": lambda: jitorch.nn.Linear(3, 2).weight,
}


@pytest.fixture(autouse=True)
def _restore_default():
    yield
    jitorch.set_default_device(None)


def test_default_is_cpu_and_none_restores_it():
    assert jitorch.get_default_device() == jitorch.device("cpu")
    jitorch.set_default_device("cpu")
    assert jitorch.zeros(1).device == jitorch.device("cpu")
    jitorch.set_default_device(None)
    assert jitorch.get_default_device() == jitorch.device("cpu")


def test_bad_device_string_raises():
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        jitorch.set_default_device("tpu")


def test_cuda_default_without_cuda_raises_when_set():
    """Without a GPU or the simulator (a child process with NUMBA_ENABLE_CUDASIM=0), asking for a cuda default
    fails at once with the no-cuda error, and the default stays cpu."""
    code = ("import jitorch\n"
            "assert not jitorch.cuda.is_available()\n"
            "try:\n"
            "    jitorch.set_default_device('cuda')\n"
            "except RuntimeError as e:\n"
            "    print('raised:', e)\n"
            "print('default:', jitorch.get_default_device(), jitorch.zeros(1).device)\n")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if "assert not jitorch.cuda.is_available()" in out.stderr:
        pytest.skip("a real GPU is present")
    assert out.returncode == 0, out.stderr
    assert "raised: Torch not compiled with CUDA enabled" in out.stdout
    assert "default: cpu cpu" in out.stdout


@needs_cuda
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_factories_follow_the_default_device(name):
    cpu_value = FACTORIES[name]()
    jitorch.set_default_device("cuda")
    value = FACTORIES[name]()
    assert value.device.type == "cuda", name
    assert value.dtype == cpu_value.dtype and tuple(value.shape) == tuple(cpu_value.shape), name
    if name in ("zeros", "ones", "full", "eye", "tensor", "as_tensor(ndarray)", "arange", "linspace", "logspace"):
        np.testing.assert_allclose(value.cpu().numpy(), cpu_value.numpy(), rtol=1e-6, err_msg=name)


@needs_cuda
def test_explicit_devices_and_existing_tensors_are_unaffected():
    a = jitorch.arange(4.0)
    jitorch.set_default_device("cuda")
    cpu = jitorch.device("cpu")
    assert jitorch.zeros(2, device="cpu").device == cpu
    assert jitorch.randn(2, device="cpu").device == cpu
    assert jitorch.tensor([1.0], device="cpu").device == cpu
    assert jitorch.tensor(jitorch.zeros(2), device="cpu").device == cpu  # a cuda tensor copied to the cpu
    assert jitorch.arange(3, device="cpu").device == cpu
    assert jitorch.from_numpy(np.zeros(2)).device == cpu               # shares host memory: always cpu
    assert jitorch.zeros_like(a).device == cpu and jitorch.randn_like(a).device == cpu
    assert a.new_zeros(3).device == cpu
    assert (a * 2).device == cpu and a.sum().device == cpu
    assert a.to("cuda").cpu().device == cpu
    assert jitorch.Generator().device == cpu                            # torch's Generator defaults to cpu


@needs_cuda
def test_device_context_manager_nests_and_restores():
    with jitorch.device("cuda"):
        assert jitorch.get_default_device().type == "cuda"
        assert jitorch.ones(2).device.type == "cuda"
        with jitorch.device("cpu"):
            assert jitorch.ones(2).device.type == "cpu"
        assert jitorch.ones(2).device.type == "cuda"
    assert jitorch.ones(2).device.type == "cpu"
    with pytest.raises(ValueError):
        with jitorch.device("cuda"):
            raise ValueError("the default is restored on the way out of an exception too")
    assert jitorch.get_default_device().type == "cpu"


@needs_cuda
def test_training_step_with_cuda_default_matches_cpu():
    def step():
        jitorch.manual_seed(0)
        model = jitorch.nn.Sequential(jitorch.nn.Linear(4, 8), jitorch.nn.ReLU(), jitorch.nn.Linear(8, 2))
        x = jitorch.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
        y = jitorch.tensor([0, 1, 1])
        opt = jitorch.optim.SGD(model.parameters(), lr=0.1)
        loss = jitorch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return model, loss
    # The same parameters on both devices: initialize on cpu, then rerun the step with cuda as default and the
    # cpu initial values copied over.
    cpu_model, cpu_loss = step()
    jitorch.set_default_device("cuda")
    jitorch.manual_seed(0)
    model = jitorch.nn.Sequential(jitorch.nn.Linear(4, 8), jitorch.nn.ReLU(), jitorch.nn.Linear(8, 2))
    assert all(p.device.type == "cuda" for p in model.parameters())
    jitorch.manual_seed(0)
    init = jitorch.nn.Sequential(jitorch.nn.Linear(4, 8, device="cpu"), jitorch.nn.ReLU(),
                                 jitorch.nn.Linear(8, 2, device="cpu"))
    model.load_state_dict(init.state_dict())
    x = jitorch.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
    y = jitorch.tensor([0, 1, 1])
    assert x.device.type == "cuda" and y.device.type == "cuda"
    opt = jitorch.optim.SGD(model.parameters(), lr=0.1)
    loss = jitorch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    np.testing.assert_allclose(loss.item(), cpu_loss.item(), rtol=1e-5)
    for p, q in zip(model.parameters(), cpu_model.parameters()):
        np.testing.assert_allclose(p.detach().cpu().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)

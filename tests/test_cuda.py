"""cuda devices, storage and APIs (jitorch.cuda, jitorch.accelerator), moves, creation with device=,
host-copy rules, Module.to and autograd on cuda. Runs on numba's CUDA simulator here (conftest)."""
from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import jitorch
from jitorch import _dtype as D

if not jitorch.cuda.is_available():  # pragma: no cover - conftest enables the simulator
    pytest.skip("cuda is not available (no GPU and NUMBA_ENABLE_CUDASIM is not set)", allow_module_level=True)

CUDA = jitorch.device("cuda")
ALL = list(D.ALL_DTYPES)


# ---------------------------------------------------------------- APIs

def test_cuda_api():
    assert jitorch.cuda.is_available()
    assert jitorch.cuda.device_count() >= 1
    assert jitorch.cuda.current_device() == 0
    jitorch.cuda.set_device(0)
    jitorch.cuda.set_device("cuda:0")
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        jitorch.cuda.set_device(jitorch.cuda.device_count())
    name = jitorch.cuda.get_device_name()
    assert isinstance(name, str) and name
    assert jitorch.cuda.get_device_name(0) == name
    jitorch.cuda.synchronize()
    with jitorch.cuda.device(0):
        assert jitorch.cuda.current_device() == 0
    # the cuda generator is separate from the cpu one (torch's scheme; tests/test_cuda_random.py has the rest)
    jitorch.manual_seed(5)
    c = jitorch.rand(4)
    jitorch.cuda.manual_seed(3)
    a = jitorch.rand(4, device="cuda")
    jitorch.cuda.manual_seed_all(3)
    np.testing.assert_array_equal(jitorch.rand(4, device="cuda").cpu().numpy(), a.cpu().numpy())
    jitorch.manual_seed(5)
    np.testing.assert_array_equal(jitorch.rand(4).numpy(), c.numpy())  # cuda seeding left the cpu stream alone


def test_accelerator_api():
    acc = jitorch.accelerator
    assert acc.is_available()
    assert acc.current_accelerator() == jitorch.device("cuda")
    assert acc.current_accelerator().type == "cuda"
    assert acc.device_count() == jitorch.cuda.device_count()
    assert acc.current_device_index() == 0
    acc.set_device_index(0)
    acc.synchronize()
    with acc.device_index(0):
        pass
    # the torch 2.x idiom
    device = acc.current_accelerator().type if acc.is_available() else "cpu"
    assert jitorch.ones(2, device=device).device == CUDA


def test_event_timing():
    start, end = jitorch.cuda.Event(enable_timing=True), jitorch.cuda.Event(enable_timing=True)
    start.record()
    x = jitorch.ones(8, device="cuda") * 2
    end.record()
    end.synchronize()
    ms = start.elapsed_time(end)
    assert isinstance(ms, float) and ms >= 0.0
    assert x.sum if True else None
    with pytest.raises(RuntimeError, match="enable_timing"):
        jitorch.cuda.Event().elapsed_time(jitorch.cuda.Event())


def test_memory_statistics():
    gc.collect()
    jitorch.cuda.reset_peak_memory_stats()
    before = jitorch.cuda.memory_allocated()
    x = jitorch.zeros(1000, device="cuda")  # 4000 bytes
    assert jitorch.cuda.memory_allocated() == before + 4000
    v = x[10:20]  # a view allocates nothing
    assert jitorch.cuda.memory_allocated() == before + 4000
    y = x + 1
    assert jitorch.cuda.memory_allocated() == before + 8000
    assert jitorch.cuda.max_memory_allocated() >= before + 8000
    del x, v, y
    gc.collect()
    assert jitorch.cuda.memory_allocated() == before
    assert jitorch.cuda.max_memory_allocated() >= before + 8000
    jitorch.cuda.reset_peak_memory_stats()
    assert jitorch.cuda.max_memory_allocated() == before


# ---------------------------------------------------------------- devices and moves

def test_device_objects():
    assert jitorch.device("cuda") == jitorch.device("cuda:0") == "cuda:0"
    t = jitorch.ones(2).cuda()
    assert t.device == CUDA and str(t.device) == "cuda:0" and t.device.index == 0
    assert t.is_cuda and not t.is_cpu
    assert jitorch.ones(2).to("cuda:0").device == CUDA
    assert jitorch.ones(2).to(jitorch.device("cuda", 0)).device == CUDA
    assert jitorch.ones(2).cuda(0).device == CUDA
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        jitorch.ones(2).to("cuda:7")
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        jitorch.zeros(2, device="cuda:7")


@pytest.mark.parametrize("dtype", ALL, ids=[d.name for d in ALL])
@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (3, 5), (2, 3, 4)])
def test_round_trip_keeps_values(dtype, shape):
    rng = np.random.default_rng(0)
    if dtype is D.bool_:
        a = np.asarray(rng.random(shape) < 0.5)
    else:
        a = np.asarray((rng.standard_normal(shape) * 10).astype(dtype.np))
    c = jitorch.from_numpy(a).cuda()
    assert c.device == CUDA and c.dtype is dtype and tuple(c.shape) == shape
    assert c.is_contiguous() and (c.stride() == jitorch.empty(shape).stride() or not a.size)
    back = c.cpu()
    assert back.device == jitorch.device("cpu")
    np.testing.assert_array_equal(back.numpy(), a)
    assert c.cuda() is c and back.cpu() is back  # same device: no copy


def test_move_non_contiguous_and_with_dtype():
    a = np.arange(24, dtype=np.float64).reshape(4, 6)
    t = jitorch.from_numpy(a)[:, 1::2].t()
    c = t.to("cuda", jitorch.float32)
    assert c.dtype is jitorch.float32 and c.device == CUDA
    np.testing.assert_array_equal(c.cpu().numpy(), a[:, 1::2].T.astype(np.float32))
    c2 = t.to(device="cuda", dtype=jitorch.float16, copy=True)
    np.testing.assert_array_equal(c2.cpu().numpy(), a[:, 1::2].T.astype(np.float16))
    like = jitorch.zeros(1, dtype=jitorch.int32, device="cuda")
    c3 = t.to(like)
    assert c3.device == CUDA and c3.dtype is jitorch.int32


def test_host_copies_only_on_explicit_calls():
    c = jitorch.tensor([[1.5, 2.0], [3.0, 4.0]], device="cuda")
    with pytest.raises(TypeError, match=r"can't convert cuda:0 device type tensor to numpy\. Use Tensor\.cpu\(\)"):
        c.numpy()
    with pytest.raises(TypeError, match="cuda"):
        np.asarray(c)
    assert c[0, 0].item() == 1.5 and float(c[1, 1]) == 4.0 and int(c[1, 0]) == 3
    assert c.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert bool(c[0, 0]) is True
    assert "device='cuda:0'" in repr(c)
    assert "device='cuda:0'" in str(c.t())


def test_mixing_devices_raises():
    c = jitorch.ones(3, device="cuda")
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        c + jitorch.ones(3)
    with pytest.raises(RuntimeError, match="same device"):
        jitorch.ones(3).mul_(c)
    with pytest.raises(RuntimeError, match="same device"):
        jitorch.cat([c, jitorch.ones(3)])
    c + 1.5  # Python scalars are fine
    with pytest.raises(RuntimeError, match="same device"):
        c + jitorch.ones(1)  # a 1-element cpu tensor is not a scalar
    # 0-dim cpu tensors act as scalars on any device (torch's rule), in either position and in place
    two = jitorch.tensor(2.0)
    np.testing.assert_array_equal((c * two).cpu().numpy(), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal((two - c).cpu().numpy(), [1.0, 1.0, 1.0])
    d = jitorch.ones(3, device="cuda")
    d.add_(two)
    np.testing.assert_array_equal(d.cpu().numpy(), [3.0, 3.0, 3.0])
    m = jitorch.tensor([True, False, True], device="cuda")
    np.testing.assert_array_equal(d.masked_fill(m, 0.5).cpu().numpy(), [0.5, 3.0, 0.5])
    assert jitorch.where(m, d, jitorch.tensor(-1.0)).device == CUDA
    c.copy_(jitorch.arange(3.0))  # copy_ copies across devices, as torch
    np.testing.assert_array_equal(c.cpu().numpy(), [0.0, 1.0, 2.0])


def test_ops_without_cuda_kernel_raise_not_implemented():
    from jitorch._dispatch import _impl
    from jitorch.ops.registry import OPS
    missing = [op for op in OPS.values() if "cuda" not in op.impl]
    if not missing:
        pytest.skip("every op has a cuda kernel")
    for op in missing:
        with pytest.raises(NotImplementedError, match=rf"{op.name}: no kernel for device 'cuda:0'"):
            _impl(op, jitorch.device("cuda:0"))


def test_pickle_keeps_the_device():
    c = jitorch.arange(6.0).reshape(2, 3).cuda().t()
    back = pickle.loads(pickle.dumps(c))
    assert back.device == CUDA
    np.testing.assert_array_equal(back.cpu().numpy(), np.arange(6.0).reshape(2, 3).T)


# ---------------------------------------------------------------- creation with device=

CREATORS = [
    ("zeros", lambda d: jitorch.zeros(2, 3, device=d), lambda: np.zeros((2, 3), np.float32)),
    ("ones int", lambda d: jitorch.ones(4, dtype=jitorch.int64, device=d), lambda: np.ones(4, np.int64)),
    ("full", lambda d: jitorch.full((2, 2), 7.5, device=d), lambda: np.full((2, 2), 7.5, np.float32)),
    ("full bool", lambda d: jitorch.full((3,), True, device=d), lambda: np.ones(3, bool)),
    ("arange", lambda d: jitorch.arange(1, 10, 2, device=d), lambda: np.arange(1, 10, 2)),
    ("linspace", lambda d: jitorch.linspace(0, 1, 5, device=d), lambda: np.linspace(0, 1, 5, dtype=np.float32)),
    ("eye", lambda d: jitorch.eye(3, 4, device=d), lambda: np.eye(3, 4, dtype=np.float32)),
    ("tensor", lambda d: jitorch.tensor([[1, 2], [3, 4]], device=d), lambda: np.array([[1, 2], [3, 4]])),
    ("tensor f16", lambda d: jitorch.tensor([1.5, 2], dtype=jitorch.float16, device=d),
     lambda: np.array([1.5, 2], np.float16)),
    ("zeros_like", lambda d: jitorch.zeros_like(jitorch.ones(2, 2, device=d)), lambda: np.zeros((2, 2), np.float32)),
    ("ones_like", lambda d: jitorch.ones_like(jitorch.ones(2, device="cpu"), device=d), lambda: np.ones(2, np.float32)),
    ("full_like", lambda d: jitorch.full_like(jitorch.ones(3, dtype=jitorch.int32, device=d), 4),
     lambda: np.full(3, 4, np.int32)),
    ("new_zeros", lambda d: jitorch.ones(1, device=d).new_zeros(2), lambda: np.zeros(2, np.float32)),
    ("new_tensor", lambda d: jitorch.ones(1, device=d).new_tensor([5.0]), lambda: np.array([5.0], np.float32)),
]


@pytest.mark.parametrize("name,make,want", CREATORS, ids=[c[0] for c in CREATORS])
def test_creation_on_device(name, make, want):
    t = make("cuda")
    w = want()
    assert t.device == CUDA, name
    assert t.dtype.np == w.dtype and tuple(t.shape) == w.shape
    np.testing.assert_allclose(t.cpu().numpy(), w, rtol=1e-6)


def test_empty_and_random_creation_on_device():
    e = jitorch.empty(3, 4, device="cuda")
    assert e.device == CUDA and tuple(e.shape) == (3, 4) and e.is_contiguous()
    jitorch.manual_seed(0)
    r = jitorch.rand(5, device="cuda")
    assert r.device == CUDA and r.dtype is jitorch.float32
    v = r.cpu().numpy()
    assert ((v >= 0) & (v < 1)).all()
    n = jitorch.randn(2, 3, device="cuda", requires_grad=True)
    assert n.device == CUDA and n.requires_grad and n.is_leaf


# ---------------------------------------------------------------- views and in-place writes

def test_views_share_device_memory():
    c = jitorch.zeros(3, 4, device="cuda")
    row = c[1]
    row.fill_(2.0)
    col = c[:, 3]
    col += 1
    c.t()[0].mul_(0)  # column 0 through a transposed view
    c.diagonal().add_(10)
    want = np.zeros((3, 4), np.float32)
    want[1] = 2
    want[:, 3] += 1
    want[:, 0] = 0
    want[np.arange(3), np.arange(3)] += 10
    np.testing.assert_array_equal(c.cpu().numpy(), want)
    assert row.storage_offset() == 4 and col.storage_offset() == 3 and col.stride() == (4,)
    assert c[1:, 2:].data_ptr() == c.data_ptr() + (4 + 2) * 4
    assert c[:, ::2].is_contiguous() is False and c.t().is_contiguous() is False
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        c.t().view(12)
    with pytest.raises(RuntimeError, match="more than one element"):
        jitorch.zeros(1, 4, device="cuda").expand(3, 4).add_(1)


def test_view_as_dtype_and_setitem():
    c = jitorch.tensor([1.0, -2.0], device="cuda")
    bits = c.view(jitorch.int32)
    assert bits.device == CUDA
    np.testing.assert_array_equal(bits.cpu().numpy(), np.array([1.0, -2.0], np.float32).view(np.int32))
    c[0] = 5.0
    c[1:] = jitorch.tensor([7.0], device="cuda")
    np.testing.assert_array_equal(c.cpu().numpy(), [5.0, 7.0])


# ---------------------------------------------------------------- modules

def test_module_to_moves_parameters_buffers_and_grads():
    lin = jitorch.nn.Linear(3, 2)
    bn = jitorch.nn.BatchNorm1d(2)
    net = jitorch.nn.Sequential(lin, bn)
    w = lin.weight.detach().numpy().copy()
    lin.weight.grad = jitorch.ones(2, 3)
    p_id = id(lin.weight)
    assert net.to("cuda") is net
    assert id(lin.weight) == p_id  # parameters stay the same objects (optimizers keep working)
    assert lin.weight.device == CUDA and lin.bias.device == CUDA and lin.weight.requires_grad
    assert lin.weight.grad.device == CUDA
    assert bn.running_mean.device == CUDA and bn.num_batches_tracked.device == CUDA
    assert all(p.device == CUDA for p in net.parameters())
    np.testing.assert_array_equal(lin.weight.detach().cpu().numpy(), w)
    net.cpu()
    assert lin.weight.device == jitorch.device("cpu") and bn.running_var.device == jitorch.device("cpu")
    net.cuda()
    assert all(b.device == CUDA for b in net.buffers())
    sd = net.state_dict()
    assert all(v.device == CUDA for v in sd.values())
    net.half()
    assert lin.weight.dtype is jitorch.float16 and lin.weight.device == CUDA


# ---------------------------------------------------------------- autograd

def test_autograd_through_cuda_elementwise_ops():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 5))
    b = rng.uniform(0.5, 2.0, (3, 5))

    def f(x, y):
        return ((x * y + x.exp()).sigmoid() - y.log() * x.tanh()) / (y + 1)

    grads = []
    for dev in ("cpu", "cuda"):
        x = jitorch.tensor(a, device=dev, requires_grad=True)
        y = jitorch.tensor(b, device=dev, requires_grad=True)
        out = f(x, y)[1:, ::2]
        assert out.device == jitorch.device(dev)
        out.backward(jitorch.ones(out.shape, dtype=out.dtype, device=dev))
        assert x.grad.device == jitorch.device(dev) and y.grad.device == jitorch.device(dev)
        grads.append((x.grad.cpu().numpy(), y.grad.cpu().numpy()))
    for g_cpu, g_cuda in zip(*grads):
        np.testing.assert_allclose(g_cuda, g_cpu, rtol=1e-12, atol=1e-14)
    # against central finite differences of the cuda forward
    eps = 1e-6
    x0 = a.copy()
    fd = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        for s in (1, -1):
            x0[i] = a[i] + s * eps
            v = f(jitorch.tensor(x0, device="cuda"), jitorch.tensor(b, device="cuda"))[1:, ::2].cpu().numpy().sum()
            fd[i] += s * v / (2 * eps)
        x0[i] = a[i]
    np.testing.assert_allclose(grads[1][0], fd, rtol=1e-5, atol=1e-7)


def test_device_move_is_differentiable():
    a = jitorch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    c = a.cuda() * 3
    assert c.grad_fn is not None
    c.backward(jitorch.ones(3, device="cuda"))
    assert a.grad.device == jitorch.device("cpu")
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 3.0, 3.0])
    with jitorch.no_grad():
        assert a.cuda().grad_fn is None


# ---------------------------------------------------------------- without cuda

def _run(code, **env):
    e = dict(os.environ, **env)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_import_does_not_import_numba_cuda():
    out = _run("import sys, jitorch; x = jitorch.ones(3) + 1; print('numba.cuda' in sys.modules)")
    assert out == "False"


@pytest.mark.skipif(os.environ.get("JITORCH_TEST_REAL_CUDA", "0") not in ("", "0"), reason="a GPU is present")
def test_without_gpu_or_simulator_cuda_is_unavailable():
    code = (
        "import jitorch\n"
        "print(jitorch.cuda.is_available(), jitorch.cuda.device_count(), jitorch.accelerator.current_accelerator())\n"
        "for f in (lambda: jitorch.ones(2).cuda(), lambda: jitorch.zeros(2, device='cuda')):\n"
        "    try:\n"
        "        f()\n"
        "    except AssertionError as e:\n"
        "        print(type(e).__mro__[1].__name__, 'Torch not compiled with CUDA enabled' in str(e))\n"
    )
    out = _run(code, NUMBA_ENABLE_CUDASIM="0").splitlines()
    assert out == ["False 0 None", "RuntimeError True", "RuntimeError True"]


@pytest.mark.slow
def test_generated_kernels_compile_for_a_real_gpu():
    """The simulator runs kernels as Python; numba.cuda must also be able to compile them. With the CUDA
    toolkit's NVVM (no GPU needed) tests/cuda_ptx.py lowers a sample of every kind of generated kernel to
    PTX for compute capability 9.0; skipped where NVVM is missing."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-m", "tests.cuda_ptx"], capture_output=True, text=True, env=env, cwd=root,
                       timeout=900)
    out = r.stdout.strip()
    if out.startswith("skip"):
        pytest.skip(out)
    assert r.returncode == 0 and out.startswith("ok"), out + r.stderr[-2000:]


def test_indexing_with_lists_and_device_index_tensors():
    a = np.arange(24.0).reshape(4, 6)
    c = jitorch.from_numpy(a).cuda()
    np.testing.assert_array_equal(c[[0, 2]].cpu().numpy(), a[[0, 2]])  # a list indexes from the device
    np.testing.assert_array_equal(c[np.array([3, 1])].cpu().numpy(), a[[3, 1]])
    i = jitorch.tensor(2, device="cuda")
    np.testing.assert_array_equal(c[i].cpu().numpy(), a[2])  # a 0-dim cuda index behaves like an int
    np.testing.assert_array_equal(c[1, jitorch.tensor([0, 5], device="cuda")].cpu().numpy(), a[1, [0, 5]])
    d = c.clone()
    d[[1, 3]] = 0.0
    w = a.copy()
    w[[1, 3]] = 0.0
    np.testing.assert_array_equal(d.cpu().numpy(), w)
    d[d > 10] = -1.0
    w[w > 10] = -1.0
    np.testing.assert_array_equal(d.cpu().numpy(), w)


def test_index_validation_reads_back_only_scalars():
    import jitorch.nn.functional as F
    idx = jitorch.tensor([0, 2, 1], device="cuda")
    oh = F.one_hot(idx, 3)
    assert oh.device == CUDA
    np.testing.assert_array_equal(oh.cpu().numpy(), np.eye(3, dtype=np.int64)[[0, 2, 1]])
    np.testing.assert_array_equal(F.one_hot(idx).cpu().numpy(), np.eye(3, dtype=np.int64)[[0, 2, 1]])
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(idx, 2)
    emb = jitorch.nn.Embedding(4, 2).cuda()
    out = emb(idx)
    np.testing.assert_array_equal(out.detach().cpu().numpy(), emb.weight.detach().cpu().numpy()[[0, 2, 1]])
    with pytest.raises(IndexError, match="out of range"):
        emb(jitorch.tensor([4], device="cuda"))


def test_deepcopy_and_pickle_of_cuda_parameters():
    import copy
    net = jitorch.nn.Linear(3, 2).cuda()
    twin = copy.deepcopy(net)
    assert twin.weight.device == CUDA and twin.weight.data_ptr() != net.weight.data_ptr()
    np.testing.assert_array_equal(twin.weight.detach().cpu().numpy(), net.weight.detach().cpu().numpy())
    back = pickle.loads(pickle.dumps(net.weight))
    assert type(back) is jitorch.nn.Parameter and back.device == CUDA and back.requires_grad
    np.testing.assert_array_equal(back.detach().cpu().numpy(), net.weight.detach().cpu().numpy())
    t = jitorch.arange(4.0, device="cuda")
    assert copy.deepcopy(t).device == CUDA


def test_type_names_and_get_device():
    c = jitorch.ones(2, device="cuda")
    assert c.type() == "jitorch.cuda.FloatTensor" and c.get_device() == 0
    assert jitorch.ones(2).type() == "jitorch.FloatTensor" and jitorch.ones(2).get_device() == -1
    d = jitorch.ones(2).type("torch.cuda.DoubleTensor")
    assert d.device == CUDA and d.dtype is jitorch.float64
    e = c.type("torch.LongTensor")
    assert e.device == jitorch.device("cpu") and e.dtype is jitorch.int64


def test_cuda_array_interface():
    c = jitorch.arange(6.0, device="cuda").reshape(2, 3)
    cai = c.__cuda_array_interface__
    assert cai["shape"] == (2, 3) and cai["typestr"] == "<f4" and cai["strides"] is None and cai["version"] == 3
    assert cai["data"][0] == c.data_ptr()
    t = c.t()[1:]
    assert t.__cuda_array_interface__["shape"] == (2, 2) and t.__cuda_array_interface__["strides"] == (4, 12)
    assert t.__cuda_array_interface__["data"][0] == c.data_ptr() + 4
    assert jitorch.tensor([True], device="cuda").__cuda_array_interface__["typestr"] == "|b1"
    assert not hasattr(jitorch.ones(2), "__cuda_array_interface__")


def test_out_of_place_index_put_leaves_its_input_alone():
    from jitorch._dispatch import call
    g = jitorch.arange(12.0, device="cuda").reshape(4, 3)
    r = call("index_put", g, jitorch.zeros((), device="cuda"), jitorch.tensor([1, 3], device="cuda"), dims=(0,),
             accumulate=False)
    np.testing.assert_array_equal(g.cpu().numpy(), np.arange(12.0).reshape(4, 3))
    want = np.arange(12.0).reshape(4, 3)
    want[[1, 3]] = 0
    np.testing.assert_array_equal(r.cpu().numpy(), want)
    g.index_put_((jitorch.tensor([0], device="cuda"),), jitorch.tensor(5.0, device="cuda"))  # in place still writes
    assert g[0].tolist() == [5.0, 5.0, 5.0]

"""nn.Module behaviours: registration, traversal, state dicts, modes, conversions, hooks, printing, Parameter,
containers (torch's semantics; repr compared with torch when it is installed)."""
from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest

import jitorch
import jitorch.nn as nn
import jitorch.nn.functional as F

from .test_nn_helpers import needs_torch, torch


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(3, 2)
        self.register_buffer("steps", jitorch.zeros(()))
        self.register_buffer("scratch", jitorch.ones(2), persistent=False)
        self.scale = nn.Parameter(jitorch.ones(1))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


# ---------------------------------------------------------------------------------------------- Parameter

def test_parameter_is_tensor_and_leaf_requiring_grad():
    p = nn.Parameter(jitorch.zeros(2, 3))
    assert isinstance(p, nn.Parameter) and isinstance(p, jitorch.Tensor)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    q = nn.Parameter(jitorch.zeros(2), requires_grad=False)
    assert not q.requires_grad
    r = p * 2  # ops return plain tensors
    assert type(r) is jitorch.Tensor and not isinstance(r, nn.Parameter) and r.requires_grad
    assert tuple(nn.Parameter().shape) == (0,)
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(jitorch.zeros(2, dtype=jitorch.int64))


def test_parameter_shares_storage_with_data():
    t = jitorch.zeros(3)
    p = nn.Parameter(t)
    with jitorch.no_grad():
        p.add_(1.0)
    np.testing.assert_array_equal(t.numpy(), [1, 1, 1])


def test_parameter_repr():
    p = nn.Parameter(jitorch.tensor([1.0, 2.0]))
    assert repr(p) == "Parameter containing:\n" + repr(jitorch.tensor([1.0, 2.0], requires_grad=True))
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.]")
    assert repr(p).endswith("requires_grad=True)")


@needs_torch
def test_parameter_repr_matches_torch():
    assert repr(nn.Parameter(jitorch.tensor([1.0, 2.5]))).replace("jitorch", "torch") == \
        repr(torch.nn.Parameter(torch.tensor([1.0, 2.5])))


def test_parameter_deepcopy_keeps_class_and_grad():
    p = nn.Parameter(jitorch.ones(2))
    p.grad = jitorch.full((2,), 3.0)
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q is not p and q.requires_grad
    assert q._data is not p._data
    np.testing.assert_array_equal(q.grad.numpy(), [3, 3])


# ---------------------------------------------------------------------------------------------- registration

def test_setattr_registers_parameters_modules_buffers():
    m = Net()
    assert list(m._parameters) == ["scale"]
    assert list(m._modules) == ["fc1", "act", "fc2"]
    assert list(m._buffers) == ["steps", "scratch"]
    m.steps = jitorch.ones(())  # reassigning a buffer name keeps it a buffer
    assert "steps" in m._buffers and float(m.steps) == 1.0
    m.fc1 = None
    assert m._modules["fc1"] is None
    m.plain = 3
    assert m.plain == 3 and "plain" not in m._parameters
    del m.scale
    assert "scale" not in m._parameters
    with pytest.raises(AttributeError, match="has no attribute 'scale'"):
        m.scale


def test_registration_errors():
    m = nn.Module()
    with pytest.raises(KeyError, match='contain'):
        m.register_buffer("a.b", jitorch.zeros(1))
    with pytest.raises(KeyError, match="empty"):
        m.register_parameter("", None)
    with pytest.raises(TypeError, match="cannot assign"):
        m.register_parameter("w", jitorch.zeros(1))
    m.w = nn.Parameter(jitorch.zeros(1))
    with pytest.raises(TypeError, match="cannot assign 'jitorch.FloatTensor' as parameter 'w'"):
        m.w = jitorch.zeros(1)
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("w", jitorch.zeros(1))
    x = jitorch.ones(1, requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        m.register_parameter("v", _nonleaf_param(x))
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("x", 3)

    class Early(nn.Module):
        def __init__(self):
            self.p = nn.Parameter(jitorch.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def _nonleaf_param(x):
    p = nn.Parameter(jitorch.zeros(1))
    p.grad_fn = (x * 2).grad_fn
    return p


def test_add_module_register_module_get_submodule():
    m = nn.Module()
    m.add_module("a", nn.Linear(2, 2))
    m.register_module("b", nn.Sequential(nn.ReLU(), nn.Linear(2, 1)))
    assert m.get_submodule("b.1") is m.b[1]
    assert m.get_parameter("b.1.weight") is m.b[1].weight
    with pytest.raises(AttributeError, match="has no attribute `c`"):
        m.get_submodule("c")
    bn = nn.BatchNorm1d(2)
    m.add_module("bn", bn)
    assert m.get_buffer("bn.running_mean") is bn.running_mean


def test_nn_buffer_assignment():
    m = nn.Module()
    m.b = nn.Buffer(jitorch.ones(2), persistent=False)
    assert "b" in m._buffers and "b" in m._non_persistent_buffers_set
    assert "b" not in m.state_dict()


# ---------------------------------------------------------------------------------------------- traversal

def test_named_parameters_recursive_order_and_no_duplicates():
    m = Net()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert [n for n, _ in m.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in m.named_parameters(prefix="net")][0] == "net.scale"
    shared = nn.Linear(2, 2)
    s = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(s.parameters())) == 2
    assert [n for n, _ in s.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(s.named_parameters(remove_duplicate=False))) == 4
    assert len(list(s.modules())) == 3  # the Sequential, shared (once), ReLU
    assert [n for n, _ in s.named_modules()] == ["", "0", "1"]
    assert len(list(s.named_modules(remove_duplicate=False))) == 4
    assert [n for n, _ in s.named_children()] == ["0", "1"]


def test_buffers_and_persistence():
    m = Net()
    assert [n for n, _ in m.named_buffers()] == ["steps", "scratch"]
    sd = m.state_dict()
    assert "steps" in sd and "scratch" not in sd
    assert list(sd) == ["scale", "steps", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


# ---------------------------------------------------------------------------------------------- state dict

def test_state_dict_is_detached_and_shares_storage():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    assert not sd["weight"].requires_grad and type(sd["weight"]) is jitorch.Tensor
    with jitorch.no_grad():
        m.weight.fill_(5.0)
    assert float(sd["weight"][0, 0]) == 5.0
    kv = m.state_dict(keep_vars=True)
    assert kv["weight"] is m.weight
    assert sd._metadata[""]["version"] == 1


def test_load_state_dict_roundtrip_and_incompatible_keys():
    a, b = Net(), Net()
    res = b.load_state_dict(a.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
        assert p._data is not q._data  # copied, not aliased
    sd = a.state_dict()
    del sd["fc2.bias"]
    sd["extra"] = jitorch.zeros(1)
    with pytest.raises(RuntimeError) as e:
        b.load_state_dict(sd)
    msg = str(e.value)
    assert msg.startswith("Error(s) in loading state_dict for Net:")
    assert 'Missing key(s) in state_dict: "fc2.bias".' in msg and 'Unexpected key(s) in state_dict: "extra".' in msg
    res = b.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["fc2.bias"] and res.unexpected_keys == ["extra"]
    assert res == (["fc2.bias"], ["extra"])


def test_load_state_dict_shape_mismatch_is_an_error_even_when_not_strict():
    m = nn.Linear(4, 3)
    sd = nn.Linear(4, 2).state_dict()
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with shape "
                                           r"jitorch.Size\(\[2, 4\]\) from checkpoint, the shape in current model is "
                                           r"jitorch.Size\(\[3, 4\]\)"):
        m.load_state_dict(sd, strict=False)


def test_load_state_dict_assign_and_non_tensor_values():
    m = nn.Linear(2, 2)
    w = jitorch.ones(2, 2)
    m.load_state_dict({"weight": w, "bias": jitorch.zeros(2)}, assign=True)
    assert isinstance(m.weight, nn.Parameter) and m.weight._data is w._data
    with pytest.raises(RuntimeError, match="expected torch.Tensor"):
        m.load_state_dict({"weight": [[1.0, 2.0], [3.0, 4.0]], "bias": jitorch.zeros(2)})


def test_load_state_dict_post_hook_and_batchnorm_legacy_checkpoint():
    bn = nn.BatchNorm1d(3)
    seen = []
    bn.register_load_state_dict_post_hook(lambda mod, keys: seen.append(list(keys.missing_keys)))
    sd = bn.state_dict()
    del sd["num_batches_tracked"]
    sd._metadata[""] = {"version": 1}  # checkpoints before num_batches_tracked existed
    bn.load_state_dict(sd)
    assert seen == [[]]


def test_state_dict_save_load_through_jitorch_serialization(tmp_path):
    m = Net()
    path = tmp_path / "net.pt"
    jitorch.save(m.state_dict(), str(path))
    other = Net()
    other.load_state_dict(jitorch.load(str(path)))
    x = jitorch.randn(2, 4)
    np.testing.assert_array_equal(m(x).detach().numpy(), other(x).detach().numpy())


# ---------------------------------------------------------------------------------------------- modes, grads

def test_train_eval_propagate():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.BatchNorm1d(2)))
    assert all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())
    with pytest.raises(ValueError, match="boolean"):
        m.train("yes")


def test_requires_grad_and_zero_grad():
    m = Net()
    m(jitorch.randn(3, 4)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    assert not m(jitorch.randn(3, 4)).requires_grad


def test_to_dtype_keeps_parameter_identity_and_converts_grads():
    m = Net()
    w = m.fc1.weight
    m(jitorch.randn(2, 4)).sum().backward()
    assert m.double() is m
    assert m.fc1.weight is w and w.dtype is jitorch.float64 and isinstance(w, nn.Parameter)
    assert w.grad.dtype is jitorch.float64
    assert m.steps.dtype is jitorch.float64
    m.to(jitorch.float32)
    assert w.dtype is jitorch.float32
    m.half()
    assert w.dtype is jitorch.float16
    m.float().to("cpu").cpu()
    assert w.dtype is jitorch.float32 and w.device.type == "cpu"
    bn = nn.BatchNorm1d(2).double()
    assert bn.num_batches_tracked.dtype is jitorch.int64  # integer buffers keep their dtype
    with pytest.raises(TypeError, match="floating point"):
        m.to(jitorch.int64)
    m.to(jitorch.zeros(1, dtype=jitorch.float64))
    assert w.dtype is jitorch.float64


def test_apply_visits_children_first():
    order = []
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU()))
    m.apply(lambda mod: order.append(type(mod).__name__))
    assert order == ["Linear", "ReLU", "Sequential", "Sequential"]

    def init(mod):
        if isinstance(mod, nn.Linear):
            nn.init.constant_(mod.weight, 0.5)
    m.apply(init)
    assert np.all(m[0].weight.detach().numpy() == 0.5)


# ---------------------------------------------------------------------------------------------- hooks

def test_forward_pre_and_post_hooks():
    m = nn.Linear(2, 2)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append((args[0].shape, out.shape)))
    h3 = m.register_forward_hook(lambda mod, args, out: out + 1)
    x = jitorch.ones(1, 2)
    y = m(x)
    expect = F.linear(x * 2, m.weight, m.bias) + 1
    np.testing.assert_allclose(y.detach().numpy(), expect.detach().numpy())
    assert calls == [((1, 2), (1, 2))]
    for h in (h1, h2, h3):
        h.remove()
    np.testing.assert_allclose(m(x).detach().numpy(), F.linear(x, m.weight, m.bias).detach().numpy())
    assert len(calls) == 1


def test_hooks_with_kwargs_prepend_always_call_and_global():
    m = nn.Identity()
    order = []
    m.register_forward_hook(lambda mod, a, out: order.append("second"))
    m.register_forward_hook(lambda mod, a, out: order.append("first"), prepend=True)
    m.register_forward_pre_hook(lambda mod, a, kw: ((a[0] + 1,), kw), with_kwargs=True)
    assert float(m(jitorch.zeros(()))) == 1.0
    assert order == ["first", "second"]

    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")
    b = Boom()
    seen = []
    b.register_forward_hook(lambda mod, a, out: seen.append(out), always_call=True)
    with pytest.raises(ValueError):
        b(jitorch.zeros(1))
    assert seen == [None]
    from jitorch.nn.modules.module import register_module_forward_hook
    g = []
    h = register_module_forward_hook(lambda mod, a, out: g.append(type(mod).__name__))
    nn.ReLU()(jitorch.zeros(1))
    h.remove()
    nn.ReLU()(jitorch.zeros(1))
    assert g == ["ReLU"]


def test_state_dict_hooks():
    m = nn.Linear(2, 2)
    m.register_state_dict_post_hook(lambda mod, sd, prefix, meta: sd.__setitem__(prefix + "extra", jitorch.ones(1)))
    assert "extra" in m.state_dict()


# ---------------------------------------------------------------------------------------------- printing

def test_repr_nested():
    m = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10, bias=False))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 8, kernel_size=(5, 5), stride=(1, 1))\n"
        "  (1): ReLU()\n"
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (3): Flatten(start_dim=1, end_dim=-1)\n"
        "  (4): Linear(in_features=128, out_features=10, bias=False)\n"
        ")")

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Sequential(nn.Tanh())

        def extra_repr(self):
            return "alpha=1\nbeta=2"
    assert repr(Custom()) == "Custom(\n  alpha=1\n  beta=2\n  (inner): Sequential(\n    (0): Tanh()\n  )\n)"


REPR_CASES = [
    lambda nn: nn.Conv2d(3, 6, 3, stride=2, padding=1, dilation=2, groups=3, bias=False, padding_mode="reflect"),
    lambda nn: nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1),
    lambda nn: nn.Conv1d(2, 2, 3, padding="same"),
    lambda nn: nn.BatchNorm2d(4, momentum=0.2, affine=False),
    lambda nn: nn.LayerNorm((3, 4), eps=1e-6),
    lambda nn: nn.GroupNorm(2, 4),
    lambda nn: nn.InstanceNorm2d(3),
    lambda nn: nn.Dropout(0.3),
    lambda nn: nn.Embedding(10, 3, padding_idx=0),
    lambda nn: nn.EmbeddingBag(10, 3, mode="sum"),
    lambda nn: nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True, dropout=0.1),
    lambda nn: nn.GRU(3, 4),
    lambda nn: nn.RNN(3, 4, nonlinearity="relu"),
    lambda nn: nn.LSTMCell(3, 4),
    lambda nn: nn.MultiheadAttention(8, 2),
    lambda nn: nn.TransformerEncoderLayer(8, 2, 16),
    lambda nn: nn.AvgPool2d(3, 2, 1),
    lambda nn: nn.AdaptiveAvgPool2d((1, 1)),
    lambda nn: nn.MaxPool1d(3),
    lambda nn: nn.LeakyReLU(0.2, inplace=True),
    lambda nn: nn.ELU(),
    lambda nn: nn.GELU("tanh"),
    lambda nn: nn.Softmax(dim=1),
    lambda nn: nn.Hardtanh(),
    lambda nn: nn.PReLU(3),
    lambda nn: nn.Softplus(),
    lambda nn: nn.Upsample(scale_factor=2, mode="bilinear"),
    lambda nn: nn.ZeroPad2d((1, 2, 3, 4)),
    lambda nn: nn.ReflectionPad2d(1),
    lambda nn: nn.Unflatten(1, (2, 3)),
    lambda nn: nn.Bilinear(2, 3, 4),
    lambda nn: nn.Identity(),
    lambda nn: nn.CrossEntropyLoss(),
    lambda nn: nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU()]),
    lambda nn: nn.ModuleDict({"a": nn.ReLU()}),
]


@needs_torch
@pytest.mark.parametrize("make", REPR_CASES, ids=[str(i) for i in range(len(REPR_CASES))])
def test_repr_matches_torch(make):
    assert repr(make(nn)) == repr(make(torch.nn))


# ---------------------------------------------------------------------------------------------- containers

def test_sequential_indexing_slicing_and_ordereddict():
    s = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU()), ("pool", nn.MaxPool2d(2))]))
    assert s.conv is s[0] and s[-1] is s.pool and len(s) == 3
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and list(sub._modules) == ["act", "pool"]
    x = jitorch.randn(1, 1, 6, 6)
    np.testing.assert_array_equal(s(x).detach().numpy(), s.pool(s.act(s.conv(x))).detach().numpy())
    s.append(nn.Flatten())
    assert isinstance(s[3], nn.Flatten)
    del s[0]
    assert list(s._modules) == ["0", "1", "2"]
    s[0] = nn.Tanh()
    assert isinstance(s[0], nn.Tanh)
    s.insert(0, nn.Identity())
    assert isinstance(s[0], nn.Identity) and len(s) == 4
    with pytest.raises(IndexError):
        s[10]
    t = nn.Sequential(nn.ReLU()) + nn.Sequential(nn.Tanh())
    assert len(t) == 2 and len(nn.Sequential(nn.ReLU()) * 3) == 3
    assert [type(m).__name__ for m in t] == ["ReLU", "Tanh"]


def test_modulelist_and_moduledict():
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(ml) == 3 and len(list(ml.parameters())) == 6
    ml.append(nn.ReLU())
    ml.extend([nn.Tanh()])
    ml.insert(1, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["Linear", "Identity", "Linear", "Linear", "ReLU", "Tanh"]
    assert isinstance(ml[1:3], nn.ModuleList) and len(ml[1:3]) == 2
    assert ml[-1] is ml[5]
    del ml[1]
    assert len(ml) == 5 and isinstance(ml[1], nn.Linear)
    with pytest.raises(IndexError):
        ml[9]
    with pytest.raises(NotImplementedError):
        ml(jitorch.zeros(1))
    md = nn.ModuleDict({"b": nn.ReLU(), "a": nn.Linear(2, 2)})
    assert list(md.keys()) == ["b", "a"] and "a" in md and len(md) == 2
    md["c"] = nn.Tanh()
    assert isinstance(md.pop("b"), nn.ReLU) and list(md) == ["a", "c"]
    md.update([("d", nn.Identity())])
    assert [k for k, _ in md.items()] == ["a", "c", "d"]
    assert len(list(md.parameters())) == 2


def test_parameterlist_and_parameterdict():
    pl = nn.ParameterList([nn.Parameter(jitorch.ones(2)), jitorch.zeros(3)])
    assert isinstance(pl[1], nn.Parameter) and pl[1].requires_grad
    pl.append(jitorch.ones(1))
    assert len(pl) == 3 and len(list(pl.parameters())) == 3
    assert [n for n, _ in pl.named_parameters()] == ["0", "1", "2"]
    pd = nn.ParameterDict({"w": jitorch.ones(2)})
    pd["b"] = nn.Parameter(jitorch.zeros(1))
    assert isinstance(pd["w"], nn.Parameter) and set(pd.keys()) == {"w", "b"}
    assert len(list(pd.parameters())) == 2
    assert "w" in pd and pd.get("zzz") is None
    m = nn.Module()
    m.params = pl
    assert "params.2" in m.state_dict()


def test_flatten_unflatten_identity():
    x = jitorch.randn(2, 3, 4, 5)
    assert tuple(nn.Flatten()(x).shape) == (2, 60)
    assert tuple(nn.Flatten(0, 2)(x).shape) == (24, 5)
    assert tuple(nn.Unflatten(1, (3, 1))(jitorch.randn(2, 3)).shape) == (2, 3, 1)
    assert nn.Identity(1, 2, a=3)(x) is x


def test_deepcopy_module():
    m = Net()
    c = copy.deepcopy(m)
    assert c.fc1.weight is not m.fc1.weight and isinstance(c.fc1.weight, nn.Parameter)
    np.testing.assert_array_equal(c.fc1.weight.detach().numpy(), m.fc1.weight.detach().numpy())
    with jitorch.no_grad():
        c.fc1.weight.fill_(0)
    assert m.fc1.weight.detach().numpy().any()


def test_module_without_forward_raises():
    with pytest.raises(NotImplementedError, match='missing the required "forward" function'):
        nn.Module()(1)


def test_dir_lists_submodules_and_parameters():
    d = dir(Net())
    assert "fc1" in d and "scale" in d and "steps" in d and "forward" in d

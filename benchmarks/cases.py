"""The benchmark rows.

A row is a :class:`Case`: a ``build(lib, T)`` function returning ``(namespace, statement)`` for
the statement to time. ``T`` is the imported module (``jitorch``, ``torch`` or ``numpy``);
jitorch and torch share one builder, since jitorch has torch's API, so both run the same
source text. A builder raises :class:`Skip` (with the reason) when a library lacks what the row
needs, and returns ``None`` for "not applicable" (NumPy has no autograd).

``target`` is the issue's goal as a bound on jitorch / torch (``None``: reported, no target).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


class Skip(Exception):
    """The library lacks something the row needs; the message says what."""


@dataclass(frozen=True)
class Case:
    group: str
    name: str
    label: str
    build: object
    target: float | None = None
    issue: str = ""
    steps: bool = False          # training step: also report steps/s
    quick_ok: bool = True        # run under --quick
    libs: tuple = ("jitorch", "torch", "numpy")


CASES: list[Case] = []


def case(group, name, label, target=None, issue="", steps=False, quick_ok=True,
         libs=("jitorch", "torch", "numpy")):
    def deco(fn):
        CASES.append(Case(group, name, label, fn, target, issue, steps, quick_ok, libs))
        return fn
    return deco


def _randn(lib, T, *shape):
    if lib == "numpy":
        import numpy as np
        return np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    return T.randn(*shape)


# ------------------------------------------------------------------ eager (issue 2)

def _tiny(stmt, np_stmt=None):
    """A 1-element op: x, y float32 of shape (1,), m, n of shape (1, 1)."""
    def build(lib, T):
        ns = {"T": T, "x": _randn(lib, T, 1), "y": _randn(lib, T, 1),
              "m": _randn(lib, T, 1, 1), "n": _randn(lib, T, 1, 1)}
        if lib == "numpy":
            ns["np"] = T
            return ns, np_stmt or stmt
        return ns, stmt
    return build


_TINY = [
    # name, label, torch/jitorch statement, NumPy statement
    ("add_1", "x + y", "x + y", None),
    ("mul_1", "x * y", "x * y", None),
    ("exp_1", "exp(x)", "T.exp(x)", "np.exp(x)"),
    ("sum_1", "x.sum()", "x.sum()", None),
    ("relu_1", "relu(x)", "T.relu(x)", "np.maximum(x, 0)"),
    ("matmul_1", "matmul 1x1 @ 1x1", "m @ n", None),
    ("index_1", "x[0]", "x[0]", None),
    ("view_1", "x.view(1, 1)", "x.view(1, 1)", "x.reshape(1, 1)"),
]
for _name, _label, _stmt, _np in _TINY:
    CASES.append(Case("eager", _name, f"1 elem: {_label}", _tiny(_stmt, _np), 1.5, "2"))

# Not in the issue: the paths a scalar operand and an in-place update take (optimizers, x + 1.0).
CASES.append(Case("eager", "add_scalar_1", "1 elem: x + 1.0 (extra)", _tiny("x + 1.0"), None, "2"))
CASES.append(Case("eager", "iadd_1", "1 elem: x.add_(y) (extra)", _tiny("x.add_(y)", "np.add(x, y, out=x)"),
                  None, "2"))


def _chain(n):
    def build(lib, T):
        ns = {"T": T, "x": _randn(lib, T, n), "a": 1.5, "b": -0.25}
        if lib == "numpy":
            return ns, "T.tanh(x * a + b) * (1 / (1 + T.exp(-x)))"
        return ns, "T.tanh(x * a + b) * T.sigmoid(x)"
    return build


CASES.append(Case("eager", "chain_4M", "tanh(x*a+b)*sigmoid(x), 4M f32", _chain(4 << 20), 1.0, "2"))
CASES.append(Case("eager", "chain_16M", "tanh(x*a+b)*sigmoid(x), 16M f32", _chain(16 << 20), 1.0, "2"))


@case("eager", "softmax", "softmax(dim=-1), 4096x4096 f32", 1.0, "2")
def _softmax(lib, T):
    ns = {"T": T, "x": _randn(lib, T, 4096, 4096)}
    if lib == "numpy":
        return ns, "e = T.exp(x - x.max(axis=-1, keepdims=True)); e /= e.sum(axis=-1, keepdims=True)"
    return ns, "T.softmax(x, dim=-1)"


@case("eager", "sum_dim0", "sum(dim=0), 4096x4096 f32", 1.0, "2")
def _sum0(lib, T):
    return {"x": _randn(lib, T, 4096, 4096)}, "x.sum(0)"


@case("eager", "sum_dim1", "sum(dim=1), 4096x4096 f32", 1.0, "2")
def _sum1(lib, T):
    return {"x": _randn(lib, T, 4096, 4096)}, "x.sum(1)"


@case("eager", "matmul_1024", "matmul 1024x1024 f32", 1.0, "2")
def _matmul(lib, T):
    return {"a": _randn(lib, T, 1024, 1024), "b": _randn(lib, T, 1024, 1024)}, "a @ b"


# ------------------------------------------------------------------ autograd (issue 3)

def _submodule(T, name):
    try:
        return importlib.import_module(f"{T.__name__}.{name}")
    except ImportError as e:
        raise Skip(f"{T.__name__}.{name} cannot be imported ({e})") from None


def _nn(T, *names):
    nn = _submodule(T, "nn")
    missing = [n for n in names if not hasattr(nn, n)]
    if missing:
        raise Skip(f"{T.__name__}.nn has no {', '.join(missing)}")
    return nn


def _mlp(T):
    nn = _nn(T, "Sequential", "Linear", "ReLU", "CrossEntropyLoss")
    T.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    return nn, model, T.randn(256, 784), T.randint(0, 10, (256,))


@case("autograd", "mlp_fwd_bwd", "MLP 784-512-512-10, b=256: fwd+bwd (nn, CE loss)", 1.0, "3",
      steps=True, libs=("jitorch", "torch"))
def _mlp_fwd_bwd(lib, T):
    if lib == "numpy":
        return None
    nn, model, x, y = _mlp(T)
    return ({"model": model, "x": x, "y": y, "loss_fn": nn.CrossEntropyLoss()},
            "model.zero_grad(set_to_none=True)\nloss = loss_fn(model(x), y)\nloss.backward()")


@case("autograd", "mlp_fwd_bwd_ops", "same MLP from raw ops (matmul/add/relu, mean loss)", None, "3",
      steps=True, libs=("jitorch", "torch"))
def _mlp_fwd_bwd_ops(lib, T):
    """The fallback the issue names: no nn, no cross-entropy; every op called directly."""
    if lib == "numpy":
        return None
    T.manual_seed(0)
    params = []
    for fan_in, fan_out in ((784, 512), (512, 512), (512, 10)):
        w = (T.randn(fan_in, fan_out) * (fan_in ** -0.5)).requires_grad_()
        b = T.zeros(fan_out).requires_grad_()
        params += [w, b]
    w1, b1, w2, b2, w3, b3 = params
    ns = {"T": T, "x": T.randn(256, 784), "params": params,
          "w1": w1, "b1": b1, "w2": w2, "b2": b2, "w3": w3, "b3": b3}
    return ns, ("for p in params: p.grad = None\n"
                "h = T.relu(T.matmul(x, w1) + b1)\n"
                "h = T.relu(T.matmul(h, w2) + b2)\n"
                "loss = (T.matmul(h, w3) + b3).mean()\n"
                "loss.backward()")


# ------------------------------------------------------------------ nn training (issue 4)

_STEP = "opt.zero_grad(set_to_none=True)\nloss = loss_fn(model(x), y)\nloss.backward()\nopt.step()"


@case("nn", "mlp_sgd", "MLP train step, SGD(momentum=0.9), b=256", None, "4",
      steps=True, libs=("jitorch", "torch"))
def _mlp_sgd(lib, T):
    if lib == "numpy":
        return None
    nn, model, x, y = _mlp(T)
    optim = _submodule(T, "optim")
    if not hasattr(optim, "SGD"):
        raise Skip(f"{T.__name__}.optim has no SGD")
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return {"model": model, "x": x, "y": y, "loss_fn": nn.CrossEntropyLoss(), "opt": opt}, _STEP


@case("nn", "lenet_sgd", "LeNet train step (conv-relu-pool x2, linear), SGD, b=64", 1.2, "4",
      steps=True, libs=("jitorch", "torch"))
def _lenet_sgd(lib, T):
    if lib == "numpy":
        return None
    nn = _nn(T, "Conv2d", "MaxPool2d", "Flatten", "Sequential", "Linear", "ReLU", "CrossEntropyLoss")
    optim = _submodule(T, "optim")
    if not hasattr(optim, "SGD"):
        raise Skip(f"{T.__name__}.optim has no SGD")
    T.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(256, 10))
    opt = optim.SGD(model.parameters(), lr=0.01)
    ns = {"model": model, "x": T.randn(64, 1, 28, 28), "y": T.randint(0, 10, (64,)),
          "loss_fn": nn.CrossEntropyLoss(), "opt": opt}
    return ns, _STEP


# ------------------------------------------------------------------ compiled code (issue 6)
#
# The jitorch column runs ``jitorch.compile``d code. The torch column runs what the issue compares
# with, named in the label: ``torch.compile`` (its inductor backend) or plain torch eager. The
# "first call" columns hold the compile: in a fresh process with a warm disk cache by default,
# with ``--cold-cache`` the whole jitorch compile (torch's inductor keeps its own cache).


def _compiled(T, fn):
    if not hasattr(T, "compile"):
        raise Skip(f"{T.__name__} has no compile")
    return T.compile(fn)


def _layer_norm_fn(T):
    F = _submodule(T, "nn.functional")
    return lambda x, w, b: F.layer_norm(x, (x.shape[-1],), w, b)


@case("jit", "jit_chain_16M", "compiled tanh(x*a+b)*sigmoid(x), 16M f32 (torch: torch.compile)", 0.2, "6",
      libs=("jitorch", "torch"))
def _jit_chain(lib, T):
    if lib == "numpy":
        return None
    f = _compiled(T, lambda x: T.tanh(x * 1.5 - 0.25) * T.sigmoid(x))
    return {"f": f, "x": T.randn(16 << 20)}, "f(x)"


@case("jit", "jit_softmax", "compiled softmax(dim=-1), 4096x4096 f32 (torch: eager)", 0.5, "6",
      libs=("jitorch", "torch"))
def _jit_softmax(lib, T):
    if lib == "numpy":
        return None
    f = (lambda x: T.softmax(x, dim=-1)) if lib == "torch" else _compiled(T, lambda x: T.softmax(x, dim=-1))
    return {"f": f, "x": T.randn(4096, 4096)}, "f(x)"


@case("jit", "jit_layer_norm", "compiled layer_norm(last dim), 4096x4096 f32 (torch: eager)", 0.5, "6",
      libs=("jitorch", "torch"))
def _jit_layer_norm(lib, T):
    if lib == "numpy":
        return None
    f = _layer_norm_fn(T)
    if lib == "jitorch":
        f = _compiled(T, f)
    return {"f": f, "x": T.randn(4096, 4096), "w": T.randn(4096), "b": T.randn(4096)}, "f(x, w, b)"


def _mlp_step_ns(T, compile_model):
    nn, model, x, y = _mlp(T)
    optim = _submodule(T, "optim")
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if compile_model:
        model = _compiled(T, model)
    return {"model": model, "x": x, "y": y, "loss_fn": nn.CrossEntropyLoss(), "opt": opt}


@case("jit", "jit_mlp_sgd", "compiled MLP train step, SGD(momentum=0.9), b=256 (torch: eager)", 0.7, "6",
      steps=True, libs=("jitorch", "torch"))
def _jit_mlp_sgd(lib, T):
    if lib == "numpy":
        return None
    return _mlp_step_ns(T, compile_model=(lib == "jitorch")), _STEP


@case("jit", "jit_mlp_sgd_both", "compiled MLP train step, b=256 (torch: torch.compile)", None, "6",
      steps=True, libs=("jitorch", "torch"))
def _jit_mlp_sgd_both(lib, T):
    if lib == "numpy":
        return None
    return _mlp_step_ns(T, compile_model=True), _STEP


# ------------------------------------------------------------------ compile / startup (cold processes)

# Each command runs in a fresh interpreter (``python -c``) after one unmeasured run, so numba's
# disk cache and the OS file cache are warm; the time is the wall time of the whole process.
STARTUP = [
    # name, label, {lib: code}, target
    ("startup_first_add", "cold process: import + first add",
     {"jitorch": "import jitorch; x = jitorch.ones(4); x + x",
      "torch": "import torch; x = torch.ones(4); x + x",
      "numpy": "import numpy; x = numpy.ones(4, numpy.float32); x + x"}, None),
    ("startup_import", "cold process: import only",
     {"jitorch": "import jitorch", "torch": "import torch", "numpy": "import numpy"}, None),
    ("startup_python", "cold process: python -c pass (baseline)",
     {"jitorch": "pass", "torch": "pass", "numpy": "pass"}, None),
]

GROUPS = ["eager", "autograd", "nn", "jit", "compile"]


def cases_for(group, quick=False, rows=None):
    out = [c for c in CASES if c.group == group and (c.quick_ok or not quick)]
    if rows:
        out = [c for c in out if any(r in c.name for r in rows)]
    return out

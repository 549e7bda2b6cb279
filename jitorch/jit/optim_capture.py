"""Optimizer steps inside ``jitorch.compile``d functions (issue 6.3).

Eager ``opt.step()`` runs fused numba kernels straight on the parameters' memory, which a trace
cannot see. While ``jitorch.compile`` traces, :class:`capture` replaces the ``step`` of the
optimizer classes with a *traced* step written with jitorch ops, term by term the formulas of the
eager kernels (:mod:`jitorch.kernels.optim`: torch's single-tensor formulas):

- SGD (momentum, dampening, nesterov, weight decay, maximize) and Adam / AdamW (weight decay,
  decoupled weight decay, maximize, amsgrad) are captured. Any other optimizer's ``step`` inside a
  compiled function raises :class:`TracerError` (``fullgraph=False``: that signature runs eagerly).
- Parameters, momentum buffers, ``exp_avg``/``exp_avg_sq`` and the step counter become ``state``
  inputs of the graph, bound by reference, and their in-place updates become graph updates. The
  step counter stays a tensor: Adam's bias corrections are computed in the graph (in float64, as
  eager computes them in Python doubles), so one compiled graph serves every step.
- The optimizer's state *structure* (which parameters have a momentum buffer / Adam state yet) is
  a guard: the first call, which creates the state, and the later ones compile two graphs.
- The tracing run performs the step once for real; :meth:`capture.restore` undoes it (the first
  compiled call is the call's only effect).

The fuser then merges the update loops of all parameters, whose results only feed the updates,
into one kernel (``fuse.merge_tail_groups``).
"""
from __future__ import annotations

from .. import _dispatch
from ._tracing import TracerError

__all__ = ["capture", "optimizer_signature"]


def _optim():
    from .. import optim
    return optim


def _all_subclasses(cls):
    out, stack = [], [cls]
    while stack:
        c = stack.pop()
        for s in c.__subclasses__():
            if s not in out:
                out.append(s)
                stack.append(s)
    return out


def optimizer_signature(opts):
    """The guard on optimizers' state structure: which parameters have state, and which keys."""
    return tuple((id(o), tuple(tuple(sorted(o.state[p])) if p in o.state else ()
                               for g in o.param_groups for p in g["params"])) for o in opts)


class capture:
    """Context manager: optimizer steps are traced (see the module docstring)."""

    def __init__(self):
        self.optimizers = []    # optimizers whose step ran while tracing, in order
        self.pre_signature = []  # optimizer_signature of each, before the trace created any state
        self.backward_ran = False
        self._saved = {}        # id(tensor) -> (tensor, copy of its data before the trace wrote it)
        self._patched = []

    # -- patching
    def __enter__(self):
        optim = _optim()
        from ..autograd import engine
        def step(opt, closure=None):
            return self._traced_step(opt, closure)
        self._real = {}  # class -> its own step, unwrapped from Optimizer's hook wrapper
        for cls in _all_subclasses(optim.Optimizer):
            if "step" in cls.__dict__:
                self._patched.append((cls, cls.__dict__["step"]))
                self._real[cls] = _unhooked(cls.__dict__["step"])
                cls.step = step
        self._patched.append((engine, engine.run_backward))
        orig = engine.run_backward

        def run_backward(*a, **k):
            self.backward_ran = True
            return orig(*a, **k)
        engine.run_backward = run_backward
        return self

    def __exit__(self, *exc):
        for owner, fn in reversed(self._patched):
            if isinstance(owner, type):
                owner.step = fn
            else:
                owner.run_backward = fn
        self._patched = []
        return False

    def restore(self):
        """Undo the tracing run's writes into parameters and optimizer state."""
        from .trace import _restore
        _restore(self._saved.values())  # NumPy and cuda storage
        self._saved = {}

    # -- the traced step
    def _keep(self, t, state_name):
        """Bind ``t`` by reference in the graph and remember its value before the trace writes it."""
        if id(t) not in self._saved:
            from .trace import _data_copy
            self._saved[id(t)] = (t, _data_copy(t._data))
        if getattr(t, "_jit_state", None) is None and not t.requires_grad:
            t._jit_state = state_name
        return t

    def _traced_step(self, opt, closure=None):
        optim = _optim()
        if closure is not None:
            raise TracerError(f"jitorch.compile: {type(opt).__name__}.step(closure) inside a compiled function is "
                              "not supported; compute the loss in the function and call step() without a closure")
        if isinstance(opt, optim.SGD) and _defines(type(opt), optim.SGD, self._real):
            kind = "sgd"
        elif isinstance(opt, optim.Adam) and _defines(type(opt), optim.Adam, self._real):
            kind = "adam"
        else:
            raise TracerError(
                f"jitorch.compile: {type(opt).__name__}.step() inside a compiled function cannot be captured (SGD "
                "and Adam/AdamW can); call it outside the compiled function")
        if all(o is not opt for o in self.optimizers):
            self.optimizers.append(opt)
            self.pre_signature.append(optimizer_signature([opt])[0])
        from ..autograd import no_grad
        with no_grad():
            for group in opt.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.dtype.name not in ("float32", "float64") or p.grad.dtype is not p.dtype:
                        raise TracerError(f"jitorch.compile: {type(opt).__name__}.step() on a {p.dtype} parameter "
                                          f"(grad {p.grad.dtype}) is not captured; use float32/float64 parameters")
                    self._keep(p, "param")
                    if kind == "sgd":
                        self._sgd(opt, group, p)
                    else:
                        self._adam(opt, group, p)
        return None

    def _sgd(self, opt, group, p):
        lr, momentum = float(group["lr"]), float(group["momentum"])
        dampening, wd = float(group["dampening"]), float(group["weight_decay"])
        d = p.grad.neg() if group["maximize"] else p.grad
        if wd != 0:
            d = d.add(p, alpha=wd)
        if momentum != 0:
            from ..optim.optimizer import _zeros_like
            state = opt.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = _zeros_like(p)
                self._keep(buf, "momentum_buffer")
                buf.copy_(d)
            else:
                self._keep(buf, "momentum_buffer")
                buf.mul_(momentum).add_(d, alpha=1.0 - dampening)
            d = d.add(buf, alpha=momentum) if group["nesterov"] else buf
        p.sub_(d, alpha=lr)

    def _adam(self, opt, group, p):
        import jitorch
        from ..optim.optimizer import _step_tensor, _zeros_like
        lr, (beta1, beta2) = float(group["lr"]), (float(b) for b in group["betas"])
        eps, wd = float(group["eps"]), float(group["weight_decay"])
        amsgrad, decoupled = group["amsgrad"], group.get("decoupled_weight_decay", False)
        state = opt.state[p]
        if len(state) == 0:
            state["step"] = _step_tensor()
            state["exp_avg"] = _zeros_like(p)
            state["exp_avg_sq"] = _zeros_like(p)
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = _zeros_like(p)
        step = state["step"]
        if not isinstance(step, _dispatch._Tensor):
            state["step"] = step = _step_tensor(float(step))
        self._keep(step, "step")
        m = self._keep(state["exp_avg"], "exp_avg")
        v = self._keep(state["exp_avg_sq"], "exp_avg_sq")
        step.add_(1.0)
        s = step.to(jitorch.float64)
        # bias corrections in float64 (eager: Python doubles), rounded once to the parameter's dtype
        step_size = (lr / (1.0 - jitorch.pow(beta1, s))).to(p.dtype)
        bc2_sqrt = (1.0 - jitorch.pow(beta2, s)).sqrt().to(p.dtype)
        g = p.grad.neg() if group["maximize"] else p.grad
        if wd != 0:
            if decoupled:
                p.mul_(1.0 - lr * wd)
            else:
                g = g.add(p, alpha=wd)
        w = 1.0 - beta1
        if abs(w) < 0.5:  # torch's two-sided lerp, as the kernel
            m.add_(g - m, alpha=w)
        else:
            m.copy_(g - (g - m) * beta1)
        v.mul_(beta2).add_(g * g, alpha=1.0 - beta2)
        if amsgrad:
            vmax = self._keep(state["max_exp_avg_sq"], "max_exp_avg_sq")
            vmax.copy_(jitorch.maximum(vmax, v))
            v = vmax
        denom = v.sqrt() / bc2_sqrt + eps
        p.sub_(step_size * (m / denom))


def _unhooked(fn):
    """The step function under Optimizer._patch_step_function's hook wrappers (functools.wraps)."""
    while getattr(fn, "hooked", False) and hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return fn


def _defines(cls, base, real):
    """True when ``cls`` runs ``base``'s step (it does not override it). ``real``: each class's own step
    as it was before the capture patched it, hook wrappers removed — a class whose step is only the hook
    wrapper around an inherited step (set when a scheduler or hook is attached) does not override it."""
    want = real.get(base)
    for c in cls.__mro__:
        if c in real:
            return real[c] is want
    return False

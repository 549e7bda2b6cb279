"""torch.optim.Adagrad on the fused kernel :func:`jitorch.kernels.optim.adagrad_step`."""
from __future__ import annotations

from ..kernels import optim as K
from .optimizer import Optimizer, _Stage, _bump_step, _step_tensor, _to_float, _zeros_like

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad, torch's formulas::

        g = ±grad + weight_decay * p;  clr = lr / (1 + (t - 1) lr_decay)
        sum += g^2;  p -= clr g / (sqrt(sum) + eps)

    The state (``step``, ``sum`` = ``initial_accumulator_value``) is created for every parameter
    in the constructor, as torch does.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        if not 0.0 <= _to_float(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = _step_tensor()
                state["sum"] = _zeros_like(p, initial_accumulator_value)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("fused", None)

    def share_memory(self):
        """No-op: jitorch state lives in process memory (torch moves ``sum`` to shared memory)."""

    def step(self, closure=None):
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, lr_decay = _to_float(group["lr"]), float(group["lr_decay"])
            wd, eps, maximize = _to_float(group["weight_decay"]), float(group["eps"]), group["maximize"]
            cache = {}
            for p, g in self._params_with_grad(group):
                st = _Stage("Adagrad", p, g, cuda_ok=True)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["sum"] = _zeros_like(p, self.defaults["initial_accumulator_value"])
                step = _bump_step(state)
                sc = cache.get((st.cdt, step))
                if sc is None:
                    sc = cache[st.cdt, step] = K.adagrad_scalars(st.cdt, step, lr, lr_decay, wd, eps, maximize)
                st.kernels(K).adagrad_apply(st.rw(p), st.ro(g), st.rw(state["sum"]), sc)
                st.finish()
        return loss

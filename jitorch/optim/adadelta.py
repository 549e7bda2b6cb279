"""torch.optim.Adadelta on the fused kernel :func:`jitorch.kernels.optim.adadelta_step`."""
from __future__ import annotations

from ..kernels import optim as K
from .optimizer import Optimizer, _Stage, _bump_step, _step_tensor, _to_float, _zeros_like

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta, torch's formulas::

        g = ±grad + weight_decay * p;  v = rho v + (1 - rho) g^2
        delta = sqrt(u + eps) / sqrt(v + eps) * g;  u = rho u + (1 - rho) delta^2;  p -= lr delta
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        if not 0.0 <= _to_float(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize, capturable=capturable,
                        foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)

    def step(self, closure=None):
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, rho, eps = _to_float(group["lr"]), float(group["rho"]), float(group["eps"])
            wd, maximize = _to_float(group["weight_decay"]), group["maximize"]
            cache = {}
            for p, g in self._params_with_grad(group):
                st = _Stage("Adadelta", p, g, cuda_ok=True)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["square_avg"] = _zeros_like(p)
                    state["acc_delta"] = _zeros_like(p)
                _bump_step(state)
                sc = cache.get(st.cdt)
                if sc is None:
                    sc = cache[st.cdt] = K.adadelta_scalars(st.cdt, lr, rho, eps, wd, maximize)
                st.kernels(K).adadelta_apply(st.rw(p), st.ro(g), st.rw(state["square_avg"]), st.rw(state["acc_delta"]), sc)
                st.finish()
        return loss

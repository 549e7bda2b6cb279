"""torch.optim.Adamax on the fused kernel :func:`jitorch.kernels.optim.adamax_step`."""
from __future__ import annotations

from ..kernels import optim as K
from .adam import _check_betas
from .optimizer import Optimizer, _Stage, _bump_step, _step_tensor, _to_float, _zeros_like

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax (Adam with the infinity norm), torch's formulas::

        g = ±grad + weight_decay * p;  m = lerp(m, g, 1 - beta1);  u = max(beta2 u, |g| + eps)
        p -= lr / (1 - beta1^t) * m / u
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        _check_betas(lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
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
            lr, (beta1, beta2) = _to_float(group["lr"]), (_to_float(b) for b in group["betas"])
            eps, wd, maximize = float(group["eps"]), _to_float(group["weight_decay"]), group["maximize"]
            cache = {}
            for p, g in self._params_with_grad(group):
                st = _Stage("Adamax", p, g, cuda_ok=True)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["exp_avg"] = _zeros_like(p)
                    state["exp_inf"] = _zeros_like(p)
                step = _bump_step(state)
                sc = cache.get((st.cdt, step))
                if sc is None:
                    sc = cache[st.cdt, step] = K.adamax_scalars(st.cdt, step, lr, beta1, beta2, eps, wd, maximize)
                st.kernels(K).adamax_apply(st.rw(p), st.ro(g), st.rw(state["exp_avg"]), st.rw(state["exp_inf"]), sc)
                st.finish()
        return loss

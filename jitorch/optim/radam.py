"""torch.optim.RAdam on the fused kernel :func:`jitorch.kernels.optim.radam_step`."""
from __future__ import annotations

from ..kernels import optim as K
from .adam import _check_betas
from .optimizer import Optimizer, _Stage, _bump_step, _step_tensor, _to_float, _zeros_like

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """RAdam (rectified Adam), torch's formulas::

        g = ±grad (+ weight_decay * p, or p *= 1 - lr * weight_decay when decoupled)
        m = lerp(m, g, 1 - beta1);  v = beta2 v + (1 - beta2) g^2;  m_hat = m / (1 - beta1^t)
        rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        rho_t > 5: r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                   p -= m_hat lr sqrt(1 - beta2^t) / (sqrt(v) + eps) r
        else:      p -= m_hat lr
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        _check_betas(lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)
            group.setdefault("decoupled_weight_decay", False)

    def step(self, closure=None):
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2) = _to_float(group["lr"]), (_to_float(b) for b in group["betas"])
            eps, wd = float(group["eps"]), _to_float(group["weight_decay"])
            decoupled, maximize = group["decoupled_weight_decay"], group["maximize"]
            cache = {}
            for p, g in self._params_with_grad(group):
                st = _Stage("RAdam", p, g, cuda_ok=True)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["exp_avg"] = _zeros_like(p)
                    state["exp_avg_sq"] = _zeros_like(p)
                step = _bump_step(state)
                sc = cache.get((st.cdt, step))
                if sc is None:
                    sc = cache[st.cdt, step] = K.radam_scalars(st.cdt, step, lr, beta1, beta2, eps, wd, decoupled,
                                                               maximize)
                st.kernels(K).radam_apply(st.rw(p), st.ro(g), st.rw(state["exp_avg"]), st.rw(state["exp_avg_sq"]), sc)
                st.finish()
        return loss

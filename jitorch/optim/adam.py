"""torch.optim.Adam on the fused kernel :func:`jitorch.kernels.optim.adam_step`."""
from __future__ import annotations

from ..kernels import optim as K
from .optimizer import Optimizer, _Stage, _bump_step, _step_tensor, _to_float, _zeros_like

__all__ = ["Adam"]


def _check_betas(lr, betas, eps, weight_decay):
    if not 0.0 <= _to_float(lr):
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= _to_float(betas[0]) < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= _to_float(betas[1]) < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= _to_float(weight_decay):
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    """Adam (and, with ``decoupled_weight_decay=True``, AdamW), torch's formulas::

        g = ±grad (+ weight_decay * p, or p *= 1 - lr * weight_decay when decoupled)
        m = lerp(m, g, 1 - beta1);  v = beta2 v + (1 - beta2) g^2;  vmax = max(vmax, v) (amsgrad)
        p -= lr / (1 - beta1^t) * m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        _check_betas(lr, betas, eps, weight_decay)
        betas = tuple(_to_float(b) for b in betas)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("fused", None)

    _name = "Adam"

    def step(self, closure=None):
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2) = _to_float(group["lr"]), (_to_float(b) for b in group["betas"])
            eps, wd = float(group["eps"]), _to_float(group["weight_decay"])
            amsgrad, maximize, decoupled = group["amsgrad"], group["maximize"], group["decoupled_weight_decay"]
            cache = {}
            for p, g in self._params_with_grad(group):
                st = _Stage(self._name, p, g, cuda_ok=True)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["exp_avg"] = _zeros_like(p)
                    state["exp_avg_sq"] = _zeros_like(p)
                    if amsgrad:
                        state["max_exp_avg_sq"] = _zeros_like(p)
                elif amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = _zeros_like(p)
                step = _bump_step(state)
                vmax = st.rw(state["max_exp_avg_sq"]) if amsgrad else st.empty()
                sc = cache.get((st.cdt, step))
                if sc is None:
                    sc = cache[st.cdt, step] = K.adam_scalars(st.cdt, step, lr, beta1, beta2, eps, wd, amsgrad,
                                                              maximize, decoupled)
                st.kernels(K).adam_apply(st.rw(p), st.ro(g), st.rw(state["exp_avg"]), st.rw(state["exp_avg_sq"]), vmax, sc)
                st.finish()
        return loss

"""torch.optim.NAdam on the fused kernel :func:`jitorch.kernels.optim.nadam_step`."""
from __future__ import annotations

import numpy as np

from ..kernels import optim as K
from .adam import _check_betas
from .optimizer import Optimizer, _Stage, _bump_step, _step_tensor, _to_float, _zeros_like

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """NAdam (Adam with Nesterov momentum), torch's formulas::

        g = ±grad (+ weight_decay * p, or p *= 1 - lr * weight_decay when decoupled)
        mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay));  mu_product *= mu_t
        m = lerp(m, g, 1 - beta1);  v = beta2 v + (1 - beta2) g^2;  denom = sqrt(v / (1 - beta2^t)) + eps
        p += -lr (1 - mu_t) / (1 - mu_product) * g / denom
        p += -lr mu_{t+1} / (1 - mu_product mu_{t+1}) * m / denom

    ``mu_product`` is a 0-d tensor of the step dtype (float32 unless the default dtype is float64),
    rounded each step as torch rounds it.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check_betas(lr, betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)

    def step(self, closure=None):
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2) = _to_float(group["lr"]), (_to_float(b) for b in group["betas"])
            eps, wd = float(group["eps"]), _to_float(group["weight_decay"])
            momentum_decay, decoupled = float(group["momentum_decay"]), group["decoupled_weight_decay"]
            maximize = group["maximize"]
            cache = {}
            for p, g in self._params_with_grad(group):
                st = _Stage("NAdam", p, g, cuda_ok=True)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["mu_product"] = _step_tensor(1.0)
                    state["exp_avg"] = _zeros_like(p)
                    state["exp_avg_sq"] = _zeros_like(p)
                step = _bump_step(state)
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
                mp = state["mu_product"]
                if not hasattr(mp, "_data"):
                    mp = state["mu_product"] = _step_tensor(float(mp))
                mp._data[...] = mp._data * mp._data.dtype.type(mu)  # rounded in its dtype, as torch's mul_
                mp._bump()
                mpv = float(np.asarray(mp._data))
                sc = cache.get((st.cdt, step, mpv))
                if sc is None:
                    sc = cache[st.cdt, step, mpv] = K.nadam_scalars(st.cdt, step, mu, mu_next, mpv, lr, beta1, beta2,
                                                                    eps, wd, decoupled, maximize)
                st.kernels(K).nadam_apply(st.rw(p), st.ro(g), st.rw(state["exp_avg"]), st.rw(state["exp_avg_sq"]), sc)
                st.finish()
        return loss

"""torch.optim.RMSprop on the fused kernel :func:`jitorch.kernels.optim.rmsprop_step`."""
from __future__ import annotations

from ..kernels import optim as K
from .optimizer import Optimizer, _Stage, _bump_step, _step_tensor, _to_float, _zeros_like

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop, torch's formulas::

        g = ±grad + weight_decay * p;  v = alpha v + (1 - alpha) g^2
        centered: gavg = lerp(gavg, g, 1 - alpha);  avg = sqrt(v - gavg^2) + eps   else avg = sqrt(v) + eps
        momentum > 0: buf = momentum buf + g / avg;  p -= lr buf      else p -= lr g / avg
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        if not 0.0 <= _to_float(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered, weight_decay=weight_decay,
                        capturable=capturable, foreach=foreach, maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)

    def step(self, closure=None):
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, alpha, eps = _to_float(group["lr"]), float(group["alpha"]), float(group["eps"])
            wd, momentum = _to_float(group["weight_decay"]), float(group["momentum"])
            centered, maximize = group["centered"], group["maximize"]
            cache = {}
            for p, g in self._params_with_grad(group):
                st = _Stage("RMSprop", p, g, cuda_ok=True)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["square_avg"] = _zeros_like(p)
                    if momentum > 0:
                        state["momentum_buffer"] = _zeros_like(p)
                    if centered:
                        state["grad_avg"] = _zeros_like(p)
                if momentum > 0 and "momentum_buffer" not in state:
                    state["momentum_buffer"] = _zeros_like(p)
                if centered and "grad_avg" not in state:
                    state["grad_avg"] = _zeros_like(p)
                _bump_step(state)
                gavg = st.rw(state["grad_avg"]) if centered else st.empty()
                buf = st.rw(state["momentum_buffer"]) if momentum > 0 else st.empty()
                sc = cache.get(st.cdt)
                if sc is None:
                    sc = cache[st.cdt] = K.rmsprop_scalars(st.cdt, lr, alpha, eps, wd, momentum, centered, maximize)
                st.kernels(K).rmsprop_apply(st.rw(p), st.ro(g), st.rw(state["square_avg"]), gavg, buf, sc)
                st.finish()
        return loss

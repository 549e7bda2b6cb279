"""torch.optim.SGD on the fused kernel :func:`jitorch.kernels.optim.sgd_step`."""
from __future__ import annotations

from ..kernels import optim as K
from .optimizer import Optimizer, _Stage, _to_float, _zeros_like

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (torch's formulas)::

        g = -grad if maximize else grad;  g += weight_decay * p
        buf = g (first step) | momentum * buf + (1 - dampening) * g;  g = g + momentum * buf (nesterov) | buf
        p -= lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        if _to_float(lr) < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", False)

    def step(self, closure=None):
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, momentum = _to_float(group["lr"]), float(group["momentum"])
            dampening, wd = float(group["dampening"]), _to_float(group["weight_decay"])
            nesterov, maximize = group["nesterov"], group["maximize"]
            cache = {}
            for p, g in self._params_with_grad(group):
                st = _Stage("SGD", p, g, cuda_ok=True)
                buf_t, first = None, False
                if momentum != 0:  # torch keeps no state at all without momentum
                    state = self.state[p]
                    buf_t = state.get("momentum_buffer")
                    first = buf_t is None
                    if first:
                        buf_t = state["momentum_buffer"] = _zeros_like(p)
                buf = st.rw(buf_t) if buf_t is not None else st.empty()
                sc = cache.get((st.cdt, first))
                if sc is None:
                    sc = cache[st.cdt, first] = K.sgd_scalars(st.cdt, lr, momentum, dampening, wd, nesterov, maximize,
                                                              first)
                st.kernels(K).sgd_apply(st.rw(p), st.ro(g), buf, sc)
                st.finish()
        return loss

"""Native training step (issue 8.6): a ``jitorch.compile``'d training step (forward, the backward
recorded from the VJP rules, and the optimizer's update, docs/jit.md section 11) built into a
program that trains on .npy data and writes the trained parameters.

The step's graph has the parameters and optimizer buffers as ``state`` inputs and their new values
as updates; the native build keeps them in a writable region (initialized from the values they had
when the step was compiled) and writes the updates back after each step. The executable is
``<name> X.npy Y.npy EPOCHS OUT_DIR``; the library's ``<name>_run`` runs one step and
``<name>_get_state``/``<name>_set_state`` read and write the state (docs/native.md).
"""
from __future__ import annotations

from .lower import BuildError


def build_train_step(step, out_dir, name="train_step", *, module=None, optimizer=None, **kw):
    """Build the last compiled graph of ``step`` (a ``jitorch.compile``'d training step that has run
    at least twice, so that the optimizer's buffers exist) into ``out_dir``.

    ``module``/``optimizer``: name the state files after ``named_parameters()`` (``fc1.weight``)
    and the optimizer's buffers (``fc1.weight.momentum_buffer``) instead of the graph's names.
    Returns the :class:`~.build.BuildResult`; other keywords go to :func:`~.build.build`.
    """
    from ..export import Export
    from .build import build
    traced = getattr(step, "_last", None)
    states = getattr(traced, "_states", None)
    if traced is None or states is None or not getattr(traced, "graph", None) or not traced.graph.updates:
        raise BuildError("jit.native.build_train_step: pass a jitorch.compile'd training step (zero_grad, loss, "
                         "backward, opt.step()) after calling it at least twice")
    g = traced.graph
    g = g.replace(outputs=g.outputs[:1])  # the loss; the gradients stay inside
    tensors = {k: _np(v) for k, v in g.constants.items()}
    for nm, t in states.items():
        tensors[nm] = _np(t).copy()
    names = {}
    by_id = {}
    if module is not None:
        for pn, p in module.named_parameters():
            by_id[id(p)] = pn
            if optimizer is not None and p in optimizer.state:
                for key, buf in optimizer.state[p].items():
                    if hasattr(buf, "shape"):
                        by_id[id(buf)] = f"{pn}.{key}"
    for nm, t in states.items():
        names[nm] = by_id.get(id(t), nm)
    ex = Export(graph=g, tensors=tensors, requires_grad={}, in_spec=(), out_spec=())
    return build(ex, out_dir, name, train={"names": names}, **kw)


def _np(t):
    import numpy as np
    data = getattr(t, "_data", None)
    return np.asarray(data if data is not None else t)

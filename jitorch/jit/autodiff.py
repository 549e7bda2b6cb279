"""Training through compiled code: a joint forward+backward graph, split in two, compiled, one autograd node.

How (AOTAutograd's recipe, with our tracer):

1. **Joint trace.** The function runs once under the tracer with grad mode on: the differentiable
   inputs (user tensors that require grad, module parameters that require grad) are leaves; then
   ``autograd.grad(outputs, diff_inputs, grad_outputs)`` runs the op table's VJP rules. Those rules
   are written with jitorch ops, so the tracer records them like any other op: the result is one
   pure graph ``(inputs, params, grad_outputs) -> (outputs, gradients)``, which the pass pipeline
   cleans (CSE, DCE, constant folding). A rule that needs a Python value of a traced tensor raises
   the tracer's error (the caller falls back to eager, saying so).
2. **Partition.** The forward graph is the slice of the joint graph that the outputs, the updates
   (buffers) and the impure nodes (random draws) need. Every other node is backward: it runs when
   the gradients are asked for (nodes that read only forward values, such as ``relu``'s mask, are
   deferred there too, so the forward does no work for the backward). The *saved* values are the
   forward values the backward reads: node values become extra outputs of the forward graph;
   inputs and parameters are saved by reference (version-checked).
3. **Compile both** with :func:`jitorch.jit.compile.compile_graph` (fusion, generated kernels).
4. **Run as one autograd node** (:class:`CompiledTrainStep`, an ``autograd.Function``): its forward
   runs the compiled forward and saves the saved values with ``save_for_backward`` (so an in-place
   write to a saved input between forward and backward raises torch's version error, and
   ``retain_graph`` works as for any node); its backward runs the compiled backward.

Limits: the compiled backward is not itself differentiable: ``create_graph=True`` through a compiled
function raises a RuntimeError saying so (compile with ``disable=True`` or call the function
uncompiled for higher-order gradients).
"""
from __future__ import annotations

from .. import _dispatch
from ..autograd.function import Function
from .graph_ops import is_pure
from .ir import Graph, Input

__all__ = ["split_joint", "TrainProgram", "CompiledTrainStep", "HIGHER_ORDER_MSG"]

HIGHER_ORDER_MSG = (
    "jitorch.compile: higher-order gradients (create_graph=True) through a compiled function are not supported: "
    "its compiled backward is not differentiable. Call the function uncompiled for this "
    "(jitorch.compile(fn, disable=True)), or compute the gradient without create_graph.")


def split_joint(joint, n_fwd_out, gout_names):
    """Split a joint graph (outputs: forward outputs then gradients) into (forward, backward, saved).

    ``forward``: the joint's non-grad-output inputs -> forward outputs + saved node values, with the
    joint's updates. ``backward``: saved values (node values, then inputs by name) + grad outputs
    (+ the constants it reads) -> gradients. ``saved``: (node values, saved input names).
    """
    types = joint.types
    producers = {o: n for n in joint.nodes for o in n.outputs}
    gouts = set(gout_names)
    fwd_roots = list(joint.outputs[:n_fwd_out]) + [v for _, v in joint.updates]
    fwd_roots += [o for n in joint.nodes if not is_pure(n) for o in n.outputs]
    in_fwd = set()
    stack = [v for v in fwd_roots if v in producers]
    while stack:
        v = stack.pop()
        n = producers[v]
        if n.outputs[0] in in_fwd:
            continue
        in_fwd.update(n.outputs)
        stack.extend(x for x in n.value_inputs if x in producers and x not in in_fwd)
    fwd_nodes = [n for n in joint.nodes if n.outputs[0] in in_fwd]
    bwd_nodes = [n for n in joint.nodes if n.outputs[0] not in in_fwd]
    for n in fwd_nodes:
        if any(x in gouts for x in n.value_inputs):  # pragma: no cover - a forward value cannot read a grad
            raise RuntimeError(f"jitorch.compile: forward node {n} reads a gradient")
    inputs = {i.name: i for i in joint.inputs}
    bwd_defined = {o for n in bwd_nodes for o in n.outputs}
    needed = []
    for n in bwd_nodes:
        needed.extend(x for x in n.value_inputs if x not in bwd_defined)
    needed.extend(o for o in joint.outputs[n_fwd_out:] if o not in bwd_defined)
    seen, saved_nodes, saved_inputs, bwd_consts = set(), [], [], []
    for v in needed:
        if v in seen or v in gouts:
            continue
        seen.add(v)
        if v in inputs:
            (bwd_consts if inputs[v].kind == "const" else saved_inputs).append(v)
        else:
            saved_nodes.append(v)
    fwd_inputs = tuple(i for i in joint.inputs if i.name not in gouts)
    fwd_used = {x for n in fwd_nodes for x in n.value_inputs} | set(joint.outputs[:n_fwd_out])
    fwd_used |= {v for _, v in joint.updates} | {a for a, _ in joint.updates}
    fwd_inputs = tuple(i for i in fwd_inputs if i.kind != "const" or i.name in fwd_used)
    fwd = Graph(joint.name + "_fwd", fwd_inputs, tuple(fwd_nodes),
                tuple(joint.outputs[:n_fwd_out]) + tuple(saved_nodes), joint.updates,
                constants={k: v for k, v in joint.constants.items() if k in {i.name for i in fwd_inputs}})
    b_inputs = [Input(v, types[v], "input") for v in saved_nodes]
    b_inputs += [Input(v, types[v], "input") for v in saved_inputs]
    b_inputs += [inputs[v] for v in gout_names]
    b_inputs += [inputs[v] for v in bwd_consts]
    bwd = Graph(joint.name + "_bwd", tuple(b_inputs), tuple(bwd_nodes), tuple(joint.outputs[n_fwd_out:]),
                constants={k: joint.constants[k] for k in bwd_consts})
    return fwd, bwd, (tuple(saved_nodes), tuple(saved_inputs))


class TrainProgram:
    """A compiled forward and backward for one signature (see the module docstring).

    ``fwd_run(*fwd inputs)`` -> outputs + saved node values + updated values; ``bwd_run(saved node
    values, saved inputs, grad outputs, constants)`` -> one gradient per differentiable input.
    """

    def __init__(self, joint, fwd, bwd, saved, n_out, diff_out, diff_in, grad_slots, fwd_run, bwd_run, fwd_code,
                 bwd_code, kernels, out_spec):
        self.joint, self.fwd, self.bwd = joint, fwd, bwd
        self.saved_nodes, self.saved_inputs = saved
        self.n_out = n_out
        self.diff_out = diff_out      # per forward output: True when it carries a gradient
        self.diff_in = diff_in        # names of the inputs that get a gradient (in the grads' order)
        self.grad_slots = grad_slots  # per diff input: index into the backward's outputs, or None (unused)
        self.fwd_run, self.bwd_run = fwd_run, bwd_run
        self.code = fwd_code + "\n" + bwd_code
        self.kernels = kernels
        self.out_spec = out_spec
        names = [i.name for i in fwd.inputs if i.kind != "const"]
        self.input_names = names
        self.fwd_consts = tuple(_dispatch._Tensor._wrap(fwd.constants[i.name]) for i in fwd.inputs if i.kind == "const")
        self.bwd_consts = tuple(_dispatch._Tensor._wrap(bwd.constants[i.name]) for i in bwd.inputs if i.kind == "const")
        pos = {n: k for k, n in enumerate(names)}
        self.saved_input_pos = tuple(pos[n] for n in self.saved_inputs)
        self.diff_pos = tuple(pos[n] for n in diff_in)
        self.update_pos = tuple(pos[a] for a, _ in fwd.updates)
        self.const_outputs = {k for k, o in enumerate(fwd.outputs[:n_out]) if o in fwd.constants}


class CompiledTrainStep(Function):
    """``apply(program, *inputs)``: compiled forward now, compiled backward when gradients are asked for."""

    @staticmethod
    def forward(ctx, prog, *inputs):
        res = prog.fwd_run(*inputs, *prog.fwd_consts)
        n, ns = prog.n_out, len(prog.saved_nodes)
        outs = list(res[:n])
        for k in prog.const_outputs:
            outs[k] = outs[k].clone()
        saved = list(res[n:n + ns])
        for k, v in zip(prog.update_pos, res[n + ns:]):
            _dispatch.call_inplace("copy", inputs[k], v)
        # keep every saved forward value and saved input under autograd's version checks
        seen = {}
        for k, o in enumerate(outs):
            seen.setdefault(id(o), o)
        saved = [seen.get(id(s), s) for s in saved]
        ctx.save_for_backward(*saved, *[inputs[k] for k in prog.saved_input_pos])
        ctx.prog = prog
        nondiff = [o for o, d in zip(outs, prog.diff_out) if not d]
        if nondiff:
            ctx.mark_non_differentiable(*nondiff)
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        if _dispatch.hooks.grad_enabled:
            raise RuntimeError(HIGHER_ORDER_MSG)
        prog = ctx.prog
        saved = ctx.saved_tensors
        gs = [g for g, d in zip(grads, prog.diff_out) if d]
        args = (*saved, *gs, *prog.bwd_consts)
        res = prog.bwd_run(*args)
        given = {id(a) for a in args}
        out = [None] * (1 + len(prog.input_names))
        for pos, slot in zip(prog.diff_pos, prog.grad_slots):
            if slot is not None:
                g = res[slot]
                if id(g) in given or not g._data.flags.writeable:
                    g = g.clone()  # never hand out a saved value, a grad output or a constant itself
                out[1 + pos] = g
        return tuple(out)

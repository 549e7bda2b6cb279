"""The fuser's cuda back end: the groups of :mod:`.fuse` as generated ``cuda.jit`` kernels (issue 9.2).

``jitorch.compile`` on cuda inputs (the guard key holds every input's device, so a device change
recompiles) traces as on cpu, then :func:`compile_graph_cuda` replaces :func:`.compile.compile_graph`:

- **Groups** are :func:`.fuse.find_groups`'s (same rules, same order). A group that ends with a trailing
  last-dim reduction (softmax / log_softmax / sum / amax) is one kernel (:func:`reduce_source`): one block
  per row, the block's threads striding over the row, a shared-memory tree for the max / sum; a lone
  reduction runs the op's own cuda kernel. Row statistics + epilogue (layer_norm) and the horizontal tail
  kernel are cpu-only shapes of the fuser: on cuda their elementwise parts fuse as plain groups. A group whose members
  compute in two different float types (float32 and float64) is left unfused (the device helpers take
  one compute type ``T_`` per module); the log says so.
- **Kernels**: one module per group and loop form, rendered from the same scalar templates
  (:mod:`kernels.scalar`, through the cuda substitutions of :mod:`kernels.cuda.elementwise`: device
  helpers instead of NumPy scalar calls), deterministic text with one commented line per IR node, loaded
  through ``kernels/_jitcache.py`` with ``@cuda.jit(cache=True)``. Grid-stride loops launched by
  ``kernels/cuda/launch.py``. Two loop forms: ``flat`` (every input contiguous with the group's shape, or
  one element: ``x[offset + i]``) and ``strided`` (each input's buffer, offset and element strides, 0 on
  broadcast dims); the launcher picks per call from the inputs' layouts. Outputs are new contiguous
  device arrays (no in-place update or buffer reuse on cuda).
- **Executor**: straight-line Python like the cpu one: a launcher call per group (tensors in, tensors
  out), eager dispatch (``_call``: the op table's ``impl['cuda']``) for every other node.
"""
from __future__ import annotations

import builtins
import linecache
import math

import numpy as np

from .. import _dispatch
from .. import _dtype as D
from ..ops.registry import OPS
from . import _logging
from ._tracing import GENERATED_PREFIX
from .codegen import _ident, py_value
from .fuse import Group, _node_line, compute_type, find_groups, input_modes, versions_tag


def trace_device(leaves, graph=None):
    """The cuda device a traced call runs on (an input tensor or a graph constant on cuda), else None."""
    for t in leaves:
        d = getattr(t, "_device", None) if isinstance(t, _dispatch._Tensor) else None
        if d is not None and d.type == "cuda":
            return d
    if graph is not None and any(type(v).__name__ == "CudaArray" for v in graph.constants.values()):
        import jitorch
        return jitorch.device("cuda")
    return None


def is_cuda(device) -> bool:
    return device is not None and getattr(device, "type", device) == "cuda"


# ------------------------------------------------------------------------------------------------ groups

def _float_types(gr, types):
    out = set()
    for n in gr.nodes:
        ct = compute_type(n, types)
        if ct is not None and ct.is_floating_point:
            out.add(ct.name)
    return out


def cuda_groups(g):
    """(groups, notes): :func:`.fuse.find_groups`'s groups as cuda runs them (see the module docstring)."""
    types = g.types
    out, notes = [], []
    for gr in find_groups(g):
        red = gr.reduce
        if red is not None and len(gr.nodes) >= 2 and len(_float_types(gr, types)) <= 1:
            out.append(Group(len(out), gr.nodes, gr.inputs, gr.outputs, gr.shape))  # one block per row
            continue
        if red is not None:
            ns = gr.nodes[:-1]
            notes.append(f"group {gr.index}: the trailing %{red.outputs[0]} {red.op} runs its cuda kernel "
                         "(a lone reduction, or a group computing in two float types)")
            if len(ns) < 2:
                continue
            inside = {n.outputs[0] for n in ns}
            keep = set(gr.outputs) | {red.inputs[0]}
            outs = tuple(n.outputs[0] for n in ns if n.outputs[0] in keep)
            ins = []
            for n in ns:
                for x in n.inputs:
                    if isinstance(x, str) and x not in inside and x not in ins:
                        ins.append(x)
            gr = Group(gr.index, tuple(ns), tuple(ins), outs, gr.shape)
        fl = _float_types(gr, types)
        if len(fl) > 1:
            notes.append(f"group {gr.index}: not fused on cuda (computes in {' and '.join(sorted(fl))}; a cuda "
                         "module has one compute type)")
            continue
        out.append(Group(len(out), gr.nodes, gr.inputs, gr.outputs, gr.shape))
    return out, notes


# ------------------------------------------------------------------------------------------------ kernels

def kernel_source(group, types, flat: bool, fname: str = "kernel") -> str:
    """The generated cuda module of ``group`` (deterministic text, one line per IR node).

    Arguments of ``kernel``: per input ``x{k}`` (the flat device buffer), ``f{k}`` (element offset) and, in
    the strided form and unless the input has one element, ``s{k}`` (tuple of element strides over the
    group's dims, 0 where broadcast); then the outputs ``y{j}`` (contiguous flat buffers), ``total`` (the
    element count) and, strided, ``shape``."""
    from ..kernels.cuda.elementwise import _cuda_text, _helpers
    vtext, vhash = versions_tag()
    modes, _ = input_modes(group, types)
    rank = len(group.shape)
    if rank == 0:
        flat = True
    if flat and "bcast" in modes:
        raise ValueError("the flat form needs inputs of the group's shape or of one element")
    dims = range(rank)
    args, pre, loads = [], [], []
    var = {}
    for k, (x, m) in enumerate(zip(group.inputs, modes)):
        args += [f"x{k}", f"f{k}"]
        var[x] = f"a{k}"
        if m == "scalar":
            at = f"f{k}"
        elif flat:
            at = f"f{k} + i"
        else:
            args.append(f"s{k}")
            pre.append(f"{', '.join(f's{k}_{d}' for d in dims)}{',' if rank == 1 else ''} = s{k}")
            at = " + ".join([f"f{k}"] + [f"c{d} * s{k}_{d}" for d in dims])
        loads.append(f"a{k} = x{k}[{at}]".ljust(40) + f"  # %{x}: {types[x].dtype.short}, {types[x].ndim}-d"
                     + (" (one element)" if m == "scalar" else (" (broadcast)" if m == "bcast" else "")))
    outs = {o: f"y{j}" for j, o in enumerate(group.outputs)}
    args += list(outs.values()) + ["total"]
    if not flat:
        args.append("shape")
        pre.append(f"{', '.join(f'n{d}' for d in dims)}{',' if rank == 1 else ''} = shape")
    body = []
    if not flat and any(m != "scalar" for m in modes):
        body.append("r = i")
        for d in range(rank - 1, 0, -1):
            body += [f"c{d} = r % n{d}", f"r = r // n{d}"]
        body.append("c0 = r")
    body += loads
    for n in group.nodes:
        body.append(_cuda_text(_node_line(n, types, var)))
        if n.outputs[0] in outs:
            body.append(f"{outs[n.outputs[0]]}[i] = t{n.outputs[0]}")
    fl = sorted(_float_types(group, types))
    tname = f"np.{fl[0]}" if fl else "np.float64"
    helpers = _helpers("\n".join(body))
    names = ", ".join(f"%{n.outputs[0]} {n.op}" for n in group.nodes)
    src = [f"# generated by jitorch.jit.fuse_cuda: {len(group.nodes)} fused nodes ({names})",
           f"# loop {'flat' if flat else f'strided, rank {rank}'}, grid-stride; {vtext} [{vhash}]",
           "import math", "import numpy as np", "from numba import cuda", "",
           f"T_ = {tname}  # compute type of the device helpers", ""]
    if helpers:
        src += [helpers, "", ""]
    src += ["@cuda.jit(cache=True)", f"def {fname}({', '.join(args)}):"]
    src += ["    " + ln for ln in pre]
    src += ["    i = cuda.grid(1)", "    step = cuda.gridsize(1)", "    while i < total:"]
    src += ["        " + ln for ln in body]
    src += ["        i += step", ""]
    return "\n".join(src)


def reduce_source(group, types, block: int, fname: str = "kernel") -> str:
    """The generated cuda module of a group ending with a last-dim reduction: one block per row (a
    block-stride loop over the rows), its threads striding over the row's columns, a shared-memory tree
    for the row's max / sum. Arguments: per input ``x{k}``, ``f{k}`` and, unless it has one element,
    ``s{k}`` (element strides over the row dims + the column dim, 0 where broadcast); the outputs ``y{j}``
    (contiguous; the reduction's holds one value per row for sum/amax); ``nrows``, ``ncol``, ``rows`` (the
    row dims' sizes)."""
    from ..kernels import scalar
    from ..kernels.cuda.elementwise import _cuda_text, _helpers
    from .fuse import kernel_shape
    vtext, vhash = versions_tag()
    red = group.reduce
    modes, _ = input_modes(group, types)
    kshape = kernel_shape(group)
    nd = len(kshape) - 1
    dims = range(nd + 1)
    ct = red.types[0].dtype.name
    T = f"np.{ct}"
    args, pre, loads, var = [], [], [], {}
    for k, (x, m) in enumerate(zip(group.inputs, modes)):
        args += [f"x{k}", f"f{k}"]
        var[x] = f"a{k}"
        if m == "scalar":
            at = f"f{k}"
        else:
            args.append(f"s{k}")
            pre.append(f"{', '.join(f's{k}_{d}' for d in dims)} = s{k}")
            at = " + ".join([f"f{k}"] + [f"c{d} * s{k}_{d}" for d in range(nd)] + [f"j * s{k}_{nd}"])
        loads.append(f"a{k} = x{k}[{at}]".ljust(40) + f"  # %{x}: {types[x].dtype.short}, {types[x].ndim}-d"
                     + (" (one element)" if m == "scalar" else " (broadcast)" if kshape != types[x].shape else ""))
    outs = {o: f"y{j}" for j, o in enumerate(group.outputs)}
    args += list(outs.values()) + ["nrows", "ncol", "rows"]
    pre.append(f"{', '.join(f'n{d}' for d in range(nd))}{',' if nd == 1 else ''} = rows")
    body = []
    for n in group.nodes[:-1]:
        body.append(_cuda_text(_node_line(n, types, var)))
        if n.outputs[0] in outs:
            body.append(f"{outs[n.outputs[0]]}[base + j] = t{n.outputs[0]}")
    x = var[red.inputs[0]]
    ro = outs[red.outputs[0]]
    cmt = f"  # %{red.outputs[0]} {red.op}" + "".join(f" {k}={v!r}" for k, v in red.attrs) + (
        f"  {red.loc}" if red.loc else "")
    if red.op == "sum":
        init, comb, store = f"{T}(0)", "acc = acc + {v}", [f"{ro}[row] = sm[0]"]
    else:
        init, comb, store = f"{T}(-np.inf)", "acc = nanmax_(acc, {v})", [f"{ro}[row] = sm[0]"]
    if red.op in ("softmax", "log_softmax"):
        body.append(f"{ro}[base + j] = {x}")
    body.append(comb.format(v=x).ljust(48) + cmt)

    def tree(op):
        return ["sm[tid] = acc", "cuda.syncthreads()", f"h = {block // 2}", "while h > 0:",
                "    if tid < h:", "        " + op.format(a="sm[tid]", b="sm[tid + h]"), "    cuda.syncthreads()",
                "    h //= 2"]
    red_op = "{a} = {a} + {b}" if red.op == "sum" else "{a} = nanmax_({a}, {b})"
    rowloop = ["r = row"] + [ln for d in range(nd - 1, 0, -1) for ln in (f"c{d} = r % n{d}", f"r = r // n{d}")]
    rowloop += ["c0 = r", "base = row * ncol", f"acc = {init}", "j = tid", "while j < ncol:"]
    rowloop += ["    " + ln for ln in loads + body] + ["    j += nt"]
    rowloop += tree(red_op)
    if red.op in ("sum", "amax"):
        rowloop += ["if tid == 0:", "    " + store[0], "cuda.syncthreads()"]
    else:
        exp = _cuda_text(scalar.render("exp", ["v"], [], ct))
        rowloop += ["m = sm[0]", "cuda.syncthreads()", f"acc = {T}(0)", "j = tid", "while j < ncol:",
                    f"    v = {ro}[base + j] - m"]
        if red.op == "softmax":
            rowloop += [f"    e = {exp}", f"    {ro}[base + j] = e", "    acc = acc + e", "    j += nt"]
            rowloop += tree("{a} = {a} + {b}") + [f"rs = {T}(1) / sm[0]", "cuda.syncthreads()", "j = tid",
                                                  "while j < ncol:", f"    {ro}[base + j] *= rs", "    j += nt"]
        else:
            log = _cuda_text(scalar.render("log", ["sm[0]"], [], ct))
            rowloop += [f"    acc = acc + {exp}", "    j += nt"]
            rowloop += tree("{a} = {a} + {b}") + [f"ls = m + {log}", "cuda.syncthreads()", "j = tid",
                                                  "while j < ncol:", f"    {ro}[base + j] -= ls", "    j += nt"]
    rowloop.append("row += cuda.gridDim.x")
    helpers = _helpers("\n".join(rowloop))
    names = ", ".join(f"%{n.outputs[0]} {n.op}" for n in group.nodes)
    src = [f"# generated by jitorch.jit.fuse_cuda: {len(group.nodes)} fused nodes ({names})",
           f"# loop rows: one block of {block} threads per row, shared-memory tree; {vtext} [{vhash}]",
           "import math", "import numpy as np", "from numba import cuda", "",
           f"T_ = {T}  # compute type of the device helpers", ""]
    if helpers:
        src += [helpers, "", ""]
    src += ["@cuda.jit(cache=True)", f"def {fname}({', '.join(args)}):"]
    src += ["    " + ln for ln in pre]
    src += [f"    sm = cuda.shared.array({block}, {T})", "    tid = cuda.threadIdx.x", "    nt = cuda.blockDim.x",
            "    row = cuda.blockIdx.x", "    while row < nrows:"]
    src += ["        " + ln for ln in rowloop] + [""]
    return "\n".join(src)


def _bstrides(a, shape):
    off = len(shape) - a.ndim
    st = [0] * len(shape)
    for i in range(a.ndim):
        if a.shape[i] != 1:
            st[off + i] = a.estrides[i]
    return tuple(st)


class GroupLauncher:
    """Runs one fused group on cuda: tensors in (in the group's input order), tensors out."""

    def __init__(self, group, types):
        from ..kernels._jitcache import load_source
        self.group = group
        self.shape = tuple(group.shape)
        self.n = math.prod(self.shape)
        self.modes = input_modes(group, types)[0]
        self.out_dtypes = [np.dtype(np.bool_) if types[o].dtype is D.bool_ else np.dtype(types[o].dtype.name)
                           for o in group.outputs]
        self.sources = {}
        self.red = group.reduce
        if self.red is not None:
            from ..kernels.cuda import _sizes
            from .fuse import kernel_shape
            self.kshape = kernel_shape(group)
            self.red_shape = tuple(types[self.red.outputs[0]].shape)
            self.block = _sizes.BLOCK
            self.sources["rows"] = reduce_source(group, types, self.block)
            self.kernels = {"rows": load_source(self.sources["rows"], prefix="cufused").kernel}
            return
        if "bcast" not in self.modes or not self.shape:
            self.sources["flat"] = kernel_source(group, types, flat=True)
        if self.shape:
            self.sources["strided"] = kernel_source(group, types, flat=False)
        self.kernels = {k: load_source(s, prefix="cufused").kernel for k, s in self.sources.items()}

    def __call__(self, *tensors):
        from ..backends import cuda as cb
        from ..kernels.cuda.launch import launch
        dev = None
        arrays = []
        for t in tensors:
            a = t._data
            if isinstance(a, np.ndarray):  # a 0-dim / one-element cpu constant: copied to the device
                a = cb.from_host(np.ascontiguousarray(a))
            elif dev is None:
                dev = t._device
            arrays.append(a)
        if dev is None:
            import jitorch
            dev = jitorch.device("cuda")
        outs = [cb.empty(self.shape, dt) for dt in self.out_dtypes]
        if self.red is not None:
            red_out = self.group.outputs.index(self.red.outputs[0])
            if self.red.op in ("sum", "amax"):
                outs[red_out] = cb.empty(self.red_shape, self.out_dtypes[red_out])
            if self.n:
                self._rows(arrays, outs)
        elif self.n:
            flat = "flat" in self.kernels and all(m == "scalar" or a.is_c_contiguous()
                                                  for a, m in zip(arrays, self.modes))
            args = []
            for a, m in zip(arrays, self.modes):
                args += [a.buffer, a.offset]
                if not flat and m != "scalar":
                    args.append(_bstrides(a, self.shape))
            args += [o.buffer for o in outs]
            args.append(self.n)
            if flat:
                launch(self.kernels["flat"], self.n, *args)
            else:
                launch(self.kernels["strided"], self.n, *args, self.shape)
        wrap = _dispatch._Tensor._wrap
        return tuple(wrap(o, dev) for o in outs)

    def _rows(self, arrays, outs):
        from ..kernels.cuda import launch as _launch
        ks = self.kshape
        nrows, ncol = math.prod(ks[:-1]), ks[-1]
        args = []
        for a, m in zip(arrays, self.modes):
            args += [a.buffer, a.offset]
            if m != "scalar":
                args.append(_bstrides(a, ks))
        args += [o.buffer for o in outs] + [nrows, ncol, tuple(ks[:-1])]
        blocks = min(nrows, 4 if _launch.SIM else 65535)
        k = self.kernels["rows"]
        if _launch.SIM:
            with _launch._sim_lock:
                k[blocks, self.block](*args)
        else:
            k[blocks, self.block](*args)


# ------------------------------------------------------------------------------------------------ executor

class _DeviceConstants:
    """``_dev(t)``: ``t`` when it is on cuda, else its cuda copy, made once per constant tensor."""

    def __init__(self):
        self.cache = {}

    def __call__(self, t):
        if t._device.type == "cuda":
            return t
        hit = self.cache.get(id(t))
        if hit is None or hit[0] is not t or hit[2] != t._version_box.value:
            hit = self.cache[id(t)] = (t, t.to("cuda"), t._version_box.value)
        return hit[1]


def executor_source(g, groups, kernel_names):
    """Straight-line Python over the graph's inputs: a launcher call per group, ``_call`` otherwise."""
    used = {"_call", "_dev", "jitorch", "np"} | set(kernel_names.values())
    var = {}
    for i in g.inputs:
        var[i.name] = _ident(i.name, used)
    for n in g.nodes:
        for o in n.outputs:
            var[o] = _ident(f"{n.op}_{o}" if o.isdigit() else o, used)

    def arg(x):
        return var[x] if isinstance(x, str) else py_value(x)

    at_last = {gr.last.outputs[0]: gr for gr in groups}
    member = {n.outputs[0] for gr in groups for n in gr.nodes}
    body = []
    for i in g.inputs:  # graphs hold constants as host arrays: their device copies (made once, cached)
        if i.kind == "const":
            body.append(f"    {var[i.name]} = _dev({var[i.name]})".ljust(72) + f"  # const %{i.name} on the device")
    for n in g.nodes:
        o0 = n.outputs[0]
        if o0 in at_last:
            gr = at_last[o0]
            lhs = ", ".join(var[o] for o in gr.outputs) + ("," if len(gr.outputs) == 1 else "")
            call = f"    {lhs} = {kernel_names[gr.index]}({', '.join(var[x] for x in gr.inputs)})"
            body.append(call.ljust(72) + f"  # fused group {gr.index}: "
                        + ", ".join(f"%{m.outputs[0]} {m.op}" for m in gr.nodes))
            continue
        if o0 in member:
            continue
        if n.subgraphs():
            raise NotImplementedError("graph ops are run by the plain executor")
        attrs = dict(n.attrs)
        for k, v in OPS[n.op].attrs:
            attrs.setdefault(k, v)
        args = [repr(n.op)] + [arg(x) for x in n.inputs] + [f"{k}={py_value(v)}" for k, v in attrs.items()]
        line = f"    {', '.join(var[o] for o in n.outputs)} = _call({', '.join(args)})"
        body.append(line.ljust(72) + f"  # %{', %'.join(n.outputs)}" + (f"  {n.loc}" if n.loc else ""))
    rets = [var[o] for o in g.outputs] + [var[v] for _, v in g.updates]
    body.append(f"    return ({', '.join(rets)}{',' if len(rets) == 1 else ''})")
    fname = _ident(g.name, used)
    return fname, "\n".join([f"def {fname}({', '.join(var[i.name] for i in g.inputs)}):"] + body) + "\n"


def compile_graph_cuda(g):
    """(executor function, executor source, {kernel name: kernel source}) of a graph that runs on cuda."""
    import jitorch
    groups, notes = cuda_groups(g)
    if _logging.enabled("fusion"):
        text = "\n".join(f"group {gr.index}: shape {list(gr.shape)}, inputs "
                         f"{', '.join('%' + x for x in gr.inputs)}; outputs {', '.join('%' + x for x in gr.outputs)}"
                         + "".join(f"\n    {n}" for n in gr.nodes) for gr in groups) or "(no fusable groups)"
        _logging.log("fusion", f"cuda groups of {g.name}", text + "".join(f"\n{s}" for s in notes))
    names, kernels, ns = {}, {}, {}
    for gr in groups:
        kname = f"_k{gr.index}"
        launcher = GroupLauncher(gr, g.types)
        names[gr.index] = kname
        ns[kname] = launcher
        for form, src in launcher.sources.items():
            kernels[kname if form == "flat" or len(launcher.sources) == 1 else f"{kname}_{form}"] = src
            if _logging.enabled("code"):
                _logging.log("code", f"cuda kernel {kname} ({form}) of {g.name}", src)
    fname, src = executor_source(g, groups, names)
    src = (f"# jitorch.compile executor of {g.name} on cuda: {len(groups)} fused group(s)\n"
           + "".join(f"# {s}\n" for s in notes) + src)
    if _logging.enabled("code"):
        _logging.log("code", f"executor of {g.name} (cuda)", src)
    filename = f"{GENERATED_PREFIX} compiled {g.name} cuda>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    ns.update({"_call": _dispatch.call, "_dev": _DeviceConstants(), "np": np, "jitorch": jitorch})
    exec(builtins.compile(src, filename, "exec"), ns)
    return ns[fname], src, kernels



# ------------------------------------------------------------------------------------------------ PTX check

def ptx_check(g, cc=(9, 0)):
    """Lower every generated kernel of graph ``g``'s cuda groups to PTX for compute capability ``cc`` through
    libNVVM (no GPU needed; must run without the simulator): the check the simulator cannot do. Returns
    ``[(kernel description, None or the error's first line)]``. The caller patches nothing; device functions
    are compiled for ``cc``."""
    from numba import cuda, types
    import numba.cuda.dispatcher as disp
    from ..kernels._jitcache import load_source

    class _Device:
        compute_capability = cc

    disp.get_current_device = lambda: _Device()
    nb = {"float32": types.float32, "float64": types.float64, "int64": types.int64, "int32": types.int32,
          "int16": types.int16, "int8": types.int8, "uint8": types.uint8, "bool": types.boolean}
    types_ = g.types
    out = []
    for gr in cuda_groups(g)[0]:
        modes = input_modes(gr, types_)[0]
        if gr.reduce is not None:
            from .fuse import kernel_shape
            ks = kernel_shape(gr)
            tup = types.UniTuple(types.int64, len(ks))
            args = []
            for x, m in zip(gr.inputs, modes):
                args += [types.Array(nb[types_[x].dtype.name], 1, "C"), types.int64] + ([tup] if m != "scalar" else [])
            args += [types.Array(nb[types_[o].dtype.name], 1, "C") for o in gr.outputs]
            args += [types.int64, types.int64, types.UniTuple(types.int64, len(ks) - 1)]
            what = f"{g.name} group {gr.index} (rows): " + ", ".join(n.op for n in gr.nodes)
            try:
                k = load_source(reduce_source(gr, types_, 256), prefix="cufused").kernel
                cuda.compile_ptx(k.py_func, types.void(*args), cc=cc)
                out.append((what, None))
            except Exception as e:
                out.append((what, f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"))
            continue
        rank = len(gr.shape)
        tup = types.UniTuple(types.int64, rank) if rank else None
        forms = (["flat"] if "bcast" not in modes or not rank else []) + (["strided"] if rank else [])
        for form in forms:
            args = []
            for x, m in zip(gr.inputs, modes):
                args += [types.Array(nb[types_[x].dtype.name], 1, "C"), types.int64]
                if form == "strided" and m != "scalar":
                    args.append(tup)
            args += [types.Array(nb[types_[o].dtype.name], 1, "C") for o in gr.outputs] + [types.int64]
            if form == "strided":
                args.append(tup)
            k = load_source(kernel_source(gr, types_, flat=form == "flat"), prefix="cufused").kernel
            what = f"{g.name} group {gr.index} ({form}): " + ", ".join(n.op for n in gr.nodes)
            try:
                cuda.compile_ptx(k.py_func, types.void(*args), cc=cc)
                out.append((what, None))
            except Exception as e:
                out.append((what, f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"))
    return out

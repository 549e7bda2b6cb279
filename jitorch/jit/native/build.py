"""``jitorch.jit.build``: a traced graph or a ``.jt`` file -> an executable, a shared library and a
C header with no Python, numba or NumPy at run time (issue 8, docs/native.md).

Pipeline: read the export (:func:`jitorch.jit.export.read_export`), derive every value's shape as
polynomials of the dynamic dim, fold the nodes that read only weights (``permute(fc.weight)``,
batch-norm's scale and shift) into new weights, fuse elementwise regions
(:func:`jitorch.jit.fuse.find_groups`), lower every node through :data:`.lower.LOWER`, compile the
kernels with numba + llvmlite into one object (:mod:`.llvm`, cached), write the C driver
(:mod:`.cgen`) and link everything with the system C compiler.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import time

import numpy as np

from ..fuse import fusable, find_groups
from ..ir import Graph, Input
from . import cgen
from . import llvm as L
from .lower import LOWER, Alloc, Blas, Buf, BuildError, Call, Copy, Free, Loop, Lowerer, View, dname
from .sym import Sym

#: symbols an emitted object may leave undefined (libc / libm); anything else is a build bug
ALLOWED_UNDEFINED = frozenset({
    "memset", "memcpy", "memmove", "memcmp", "abort",
    "sinf", "cosf", "tanf", "asinf", "acosf", "atanf", "atan2f", "sinhf", "coshf", "tanhf", "asinhf", "acoshf",
    "atanhf", "expf", "exp2f", "expm1f", "logf", "log2f", "log10f", "log1pf", "powf", "fmodf", "erff", "erfcf",
    "lgammaf", "tgammaf", "hypotf", "cbrtf", "roundf", "truncf", "floorf", "ceilf", "rintf", "copysignf", "sqrtf",
    "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "exp",
    "exp2", "expm1", "log", "log2", "log10", "log1p", "pow", "fmod", "erf", "erfc", "lgamma", "tgamma", "hypot",
    "cbrt", "round", "trunc", "floor", "ceil", "rint", "copysign", "sqrt", "fmin", "fmax", "fminf", "fmaxf",
    "__powisf2", "__powidf2", "ldexp", "ldexpf", "frexp", "frexpf", "modf", "modff",
})

_UNFOLDABLE_TAGS = ("random", "dynamic_shape")


def find_cc():
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return shutil.which(cc)
    raise BuildError("jit.build: no C compiler found (looked for $CC, cc, gcc, clang). Install one, e.g. "
                     "`apt-get install gcc` (Debian/Ubuntu), `dnf install gcc` (Fedora) or the Xcode command line "
                     "tools (macOS), or set CC to its path")


def _load(src, dynamic_batch):
    from ..export import Export, read_export, save
    if isinstance(src, Export):
        return src
    if isinstance(src, (str, os.PathLike)):
        with open(src, "rb") as f:
            return read_export(f)
    buf = io.BytesIO()
    save(src, buf, dynamic_batch=dynamic_batch)
    buf.seek(0)
    return read_export(buf)


def _sym_info(ex):
    """value name -> tuple of Sym; (node pos, operand) -> Sym; {(node pos, attr)}."""
    from ..export import specialize_export, symbolic_types
    g = ex.graph
    if ex.symbol is None:
        shapes = {}
        for i in g.inputs:
            shapes[i.name] = tuple(Sym(s) for s in i.type.shape)
        for n in g.nodes:
            for o, t in zip(n.outputs, n.types):
                shapes[o] = tuple(Sym(s) for s in t.shape)
        return shapes, {}, set()
    s0 = ex.example
    s1 = s0 + 1
    g1 = specialize_export(ex, s1)
    st = symbolic_types(g, s0, g1, s1)
    shapes = {name: tuple(Sym.affine(c, o) for c, o in dims) for (block, name), (dims, _) in st.items()
              if block == g.name}
    lits, attrs = {}, set()
    for gname, k, where, coef, offset in ex.exprs:
        if gname != g.name:
            continue
        if where[0] == "operand":
            lits[(k, where[1])] = Sym.affine(coef, offset)
        else:
            attrs.add((k, where[1]))
    return shapes, lits, attrs


def _fold(ex, shapes, lits, attrs, mutable=()):
    """Evaluate the nodes that read only weights (NumPy references); returns (known arrays, runtime nodes)."""
    from ...ops.registry import OPS
    from ..interpret import run_node
    g = ex.graph
    known = {name: np.asarray(a) for name, a in ex.tensors.items() if name not in mutable}
    runtime = []
    for k, n in enumerate(g.nodes):
        op = OPS.get(n.op)
        ok = (op is not None and not any(t in op.tags for t in _UNFOLDABLE_TAGS) and not n.subgraphs()
              and all(x in known for x in n.inputs if isinstance(x, str))
              and not any(kk == k for kk, _ in lits) and not any(kk == k for kk, _ in attrs)
              and all(all(s.is_const for s in shapes[o]) for o in n.outputs))
        if ok:
            try:
                outs = run_node(n, [known[x] if isinstance(x, str) else x for x in n.inputs])
            except Exception:  # leave it to the runtime (and its error messages)
                ok = False
        if ok:
            for o, a in zip(n.outputs, outs):
                known[o] = np.ascontiguousarray(a)
        else:
            runtime.append((k, n))
    return known, runtime


def _live(g, runtime):
    """Runtime nodes whose outputs are used (by a later node, as a graph output or an update)."""
    need = set(g.outputs) | {v for _, v in g.updates}
    keep = []
    for k, n in reversed(runtime):
        if any(o in need for o in n.outputs):
            keep.append((k, n))
            need.update(x for x in n.inputs if isinstance(x, str))
    keep.reverse()
    return keep, need


def plan(ex, blas=False, train=False):
    """Lower the export: (Lowerer, weights {name: array}, user inputs, runtime graph, states).

    ``train``: ``state`` inputs are mutable (parameters and optimizer buffers of a compiled training
    step, jitorch/jit/native/train.py) and the graph's updates are written back into them."""
    g = ex.graph
    state_names = {i.name for i in g.inputs if i.kind == "state"}
    if not train:
        if g.updates:
            raise BuildError(f"jit.build: graph {g.name} writes back into its inputs "
                             f"({', '.join('%' + a for a, _ in g.updates)}; a train-mode batch norm?): the native "
                             "build runs inference graphs; trace the model in eval() mode (training steps: "
                             "jitorch.jit.native.build_train_step)")
        if state_names:
            raise BuildError(f"jit.build: graph {g.name} reads the state input %{sorted(state_names)[0]} (a random "
                             "generator?): random ops are not supported by the native build (trace in eval() mode)")
    bad = [a for a, _ in g.updates if a not in state_names]
    if bad:
        raise BuildError(f"jit.build: graph {g.name} writes back into %{bad[0]}, which is not a state input")
    shapes, lits, attrs = _sym_info(ex)
    known, runtime = _fold(ex, shapes, lits, attrs, mutable=state_names)
    runtime, need = _live(g, runtime)
    user = [i for i in g.inputs if i.kind == "input"]
    user_names = {i.name for i in user}
    weights = {}
    for name in sorted(need, key=str):
        if name in known and name not in user_names:
            weights[name] = known[name]
    for o in g.outputs:
        if o in known:
            weights[o] = known[o]
    # the runtime graph: user inputs + weights as inputs, runtime nodes
    types = g.types
    inputs = list(user) + [Input(name, types[name], "param") for name in weights]
    inputs += [i for i in g.inputs if i.kind == "state"]
    g2 = Graph(g.name, inputs, [n for _, n in runtime], g.outputs, updates=g.updates)
    # weights blob layout (64-byte aligned)
    weight_of, off = {}, 0
    for name, a in weights.items():
        dt = dname(types[name].dtype)
        if dt not in cgen.DESCR:
            raise BuildError(f"jit.build: weight %{name} has dtype {dt}, which the native build does not support")
        weight_of[name] = (Buf("weight", off), dt)
        off += (a.nbytes + 63) // 64 * 64
    input_index = {}
    for k, i in enumerate(user):
        dt = dname(i.type.dtype)
        if dt not in cgen.DESCR:
            raise BuildError(f"jit.build: input %{i.name} has dtype {dt}, which the native build does not support")
        input_index[i.name] = (Buf("input", k), dt)
    states, soff = [], 0
    for i in g.inputs:
        if i.kind == "state":
            dt = dname(i.type.dtype)
            if dt not in cgen.DESCR:
                raise BuildError(f"jit.build: state %{i.name} has dtype {dt}, which the native build does not support")
            a = np.ascontiguousarray(ex.tensors[i.name])
            buf = Buf("state", soff)
            states.append((i.name, a, buf))
            weight_of[i.name] = (buf, dt)
            soff += (a.nbytes + 63) // 64 * 64
    node_pos = {id(n): k for k, n in runtime}
    lw = Lowerer(g2, shapes, lits, attrs, weight_of, input_index, node_pos, ex.symbol)
    lw.blas = blas
    # fused groups, emitted at their last member
    groups = {}
    member = set()
    for gr in find_groups(g2, min_size=1):
        nodes = list(gr.nodes)
        outs = list(gr.outputs)
        red = gr.reduce
        if red is not None:
            nodes = nodes[:-1]
            outs = [o for o in outs if o != red.outputs[0]]
            if nodes and red.inputs[0] not in outs:
                outs.append(red.inputs[0])
        if not nodes:
            continue
        s0 = shapes[nodes[0].outputs[0]]
        if any(shapes[n.outputs[0]] != s0 for n in nodes):
            continue  # equal only at the example size: run its nodes one by one
        groups[id(nodes[-1])] = (nodes, outs)
        member.update(id(n) for n in nodes)
    for n in g2.nodes:
        if id(n) in groups:
            nodes, outs = groups[id(n)]
            lw.group(nodes, outs, note=", ".join(f"%{m.outputs[0]} {m.op}" for m in nodes))
            continue
        if id(n) in member:
            continue
        fn = LOWER.get(n.op)
        if fn is None and fusable(n, lw.types):
            lw.group([n], [n.outputs[0]], note=str(n))
            continue
        if fn is None:
            raise BuildError(f"jit.build: op {n.op!r} is not supported by the native build ({lw.where(n)}); "
                             f"supported: {', '.join(sorted(LOWER))} and the elementwise ops of the op table")
        fn(lw, n)
    # outputs: into the caller's buffers
    for k, o in enumerate(g.outputs):
        v = lw.vals[o]
        if v.is_contiguous():
            lw.steps.append(Copy(v, k))
        else:
            dst = View(Buf("output", k), Sym(0), v.shape, _cstrides(v.shape), v.dtype)
            lw.copy_into(dst, v, f"output {k}")
    # updates: new values of the state inputs, written back after everything else has read the old ones
    srcs = []
    for name, v in g.updates:
        src = lw.vals[v]
        if src.buf.kind == "state":
            src = lw.tmp(src.shape, src.dtype)
            lw.copy_into(src, lw.vals[v], f"update %{name}: a copy of the old state")
        srcs.append((name, src))
    for name, src in srcs:
        dst = lw.vals[name]
        lw.copy_into(dst, src, f"update %{name}")
    lw.steps = _write_outputs_in_place(lw.steps)
    lw.steps = _insert_frees(lw.steps)
    return lw, weights, user, g2, states


def _write_outputs_in_place(steps):
    """An output that is a whole temporary buffer is computed straight into the caller's array:
    the buffer becomes the output, its allocation and the final copy go."""
    copies = [s for s in steps if isinstance(s, Copy)]
    uses = {}
    for s in copies:
        uses[id(s.src.buf)] = uses.get(id(s.src.buf), 0) + 1
    from .cgen import ITEMSIZE
    drop = set()
    for s in copies:
        b, v = s.src.buf, s.src
        if b.kind != "tmp" or uses[id(b)] != 1 or not v.offset == 0 or not b.nbytes == v.numel() * ITEMSIZE[v.dtype]:
            continue
        b.kind, b.index = "output", s.index
        drop.add(id(s))
        drop.add(("alloc", id(b)))
    return [s for s in steps if id(s) not in drop and not (isinstance(s, Alloc) and ("alloc", id(s.buf)) in drop)]


def _cstrides(shape):
    from .sym import contiguous_strides
    return contiguous_strides(shape)


def _bufs_of(step):
    if isinstance(step, Call):
        for a in step.args:
            if isinstance(a, View):
                yield a.buf
            elif isinstance(a, tuple) and a and a[0] == "batch":
                yield a[1].buf
    elif isinstance(step, Blas):
        yield from (step.a.buf, step.b.buf, step.c.buf)
    elif isinstance(step, Copy):
        yield step.src.buf
    elif isinstance(step, Loop):
        for c in step.body:
            yield from _bufs_of(c)


def _insert_frees(steps):
    steps = [s for s in steps if not isinstance(s, Free)]
    last = {}
    for i, s in enumerate(steps):
        for b in _bufs_of(s):
            if b.kind == "tmp":
                last[id(b)] = (i, b)
    after = {}
    for i, b in last.values():
        after.setdefault(i, []).append(b)
    out = []
    for i, s in enumerate(steps):
        out.append(s)
        for b in after.get(i, ()):
            out.append(Free(b))
    return out


def _signature(name, ex, user, g, shapes, weights_mode, nkernels):
    sym = ex.symbol
    lines = [f"{name}: native build of graph {g.name} (jitorch.jit.build; weights {weights_mode}, "
             f"{nkernels} kernels)", "inputs:"]
    for k, i in enumerate(user):
        dims = ex.input_dims.get(i.name, {})
        sh = ", ".join(sym if d in dims else str(s) for d, s in enumerate(i.type.shape))
        lines.append(f"  {k}: {i.name}  {dname(i.type.dtype)} [{sh}]")
    lines.append("outputs:")
    for k, o in enumerate(g.outputs):
        sh = ", ".join(s.text(sym) if sym else str(s.const) for s in shapes[o])
        lines.append(f"  {k}: %{o}  {dname(g.types[o].dtype)} [{sh}]")
    if sym:
        rng = f"{ex.min}..{ex.max}" if ex.max is not None else f">= {ex.min}"
        lines.append(f"dynamic dim: {sym} ({rng}; traced at {ex.example})")
    else:
        lines.append("static shapes (no dynamic dim)")
    return "\n".join(lines) + "\n"


def _run(cmd, cwd, log):
    log.append("$ " + " ".join(cmd))
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.stdout.strip() or p.stderr.strip():
        log.append((p.stdout + p.stderr).strip())
    if p.returncode:
        raise BuildError(f"jit.build: {os.path.basename(cmd[0])} failed (exit {p.returncode}):\n"
                         f"$ {' '.join(cmd)}\n{(p.stdout + p.stderr).strip()[-4000:]}")
    return p


def _check_name(name):
    import re
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name or ""):
        raise BuildError(f"jit.build: name {name!r} must be a C identifier (letters, digits, '_'; it names the "
                         "executable, lib<name>.so and the <name>_run functions)")
    return name


def _default_name(ex, src):
    import re
    if isinstance(src, (str, os.PathLike)):
        base = os.path.splitext(os.path.basename(os.fspath(src)))[0]
    else:
        base = ex.graph.name
    base = re.sub(r"[^A-Za-z0-9_]", "_", base) or "model"
    if base[0].isdigit():
        base = "m_" + base
    return base[:64]


BLAS_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib",
             "/lib/x86_64-linux-gnu", "/opt/OpenBLAS/lib")


def _has_cblas(path):
    import ctypes
    try:
        h = ctypes.CDLL(path)
        getattr(h, "cblas_sgemm")
        getattr(h, "cblas_dgemm")
        return True
    except (OSError, AttributeError):
        return False


def find_blas(path=None):
    """(library path, linker arguments) of a CBLAS library with cblas_sgemm/cblas_dgemm, or None.

    ``path``: a given library file (checked); otherwise libopenblas, libcblas, libblis, libblas
    in the system's library folders."""
    import glob
    if path:
        path = os.path.abspath(path)
        if not _has_cblas(path):
            raise BuildError(f"jit.build: {path} is not a CBLAS library (no cblas_sgemm/cblas_dgemm)")
        return path, [path, f"-Wl,-rpath,{os.path.dirname(path)}"]
    for lib in ("openblas", "cblas", "blis", "blas"):
        for d in BLAS_DIRS:
            for cand in sorted(glob.glob(os.path.join(d, f"lib{lib}.so*"))):
                if _has_cblas(cand):
                    extra = [f"-L{d}"] if d not in ("/usr/lib", "/lib") else []
                    return cand, [f"-l:{os.path.basename(cand)}"] + extra
    return None


def build(src, out_dir, name=None, *, weights="embedded", blas=False, threads=0, dynamic_batch=False,
          cc=None, verbose=False, train=None):
    """Build ``src`` (a traced function/module, a ``jitorch.compile``'d function, or a ``.jt`` path) into
    ``out_dir``: the executable ``<name>``, ``lib<name>.so``, ``<name>.h``, the generated sources
    (``<name>.c``, ``<name>_main.c``, ``<name>.ll``) and ``build.log``. Returns a :class:`BuildResult`.

    ``weights``: ``"embedded"`` (in the binaries) or ``"separate"`` (``<name>.weights`` beside them).
    ``blas``: ``True`` links a system CBLAS for 2-d matrix products if one is found, or give the
    library's path (reported in the build log; the built-in kernel otherwise). ``threads``: the pool
    size (0: the number of CPUs at run time).
    ``dynamic_batch``: for a traced object, export it with a dynamic batch dim first (a ``.jt``
    file carries its own dynamic dims).
    """
    t0 = time.perf_counter()
    if weights not in ("embedded", "separate"):
        raise ValueError(f"jit.build: weights must be 'embedded' or 'separate', got {weights!r}")
    cc = cc or find_cc()
    ex = _load(src, dynamic_batch)
    name = _check_name(name or _default_name(ex, src))
    log = [f"jitorch.jit.build {name}: graph {ex.graph.name}, {len(ex.graph.nodes)} nodes, dynamic dim "
           f"{ex.symbol or 'none'}"]
    blas_info = None
    if blas:
        blas_info = find_blas(blas if isinstance(blas, (str, os.PathLike)) else None)
        log.append(f"BLAS: {blas_info[0]}: 2-d matrix products call cblas_sgemm/cblas_dgemm" if blas_info else
                   "BLAS: --blas given but no CBLAS library (libopenblas/libcblas/libblis/libblas with cblas_sgemm) "
                   f"was found in {', '.join(BLAS_DIRS)}; matrix products use the built-in kernel (kernels/gemm.py)")
    lw, wts, user, g2, states = plan(ex, blas=blas_info is not None, train=train is not None)
    os.makedirs(out_dir, exist_ok=True)
    out_dir = os.path.abspath(out_dir)
    # weights blob
    blob = bytearray()
    for nm, a in wts.items():
        raw = np.ascontiguousarray(a).tobytes()
        blob += raw + b"\0" * ((len(raw) + 63) // 64 * 64 - len(raw))
    state_off = len(blob)
    state_names = (train or {}).get("names", {})
    state_spec = []
    for nm, a, buf in states:
        raw = a.tobytes()
        blob += raw + b"\0" * ((len(raw) + 63) // 64 * 64 - len(raw))
        state_spec.append((state_names.get(nm, nm), dname(ex.graph.types[nm].dtype), a.shape, buf.index, a.nbytes))
    blob_id = hashlib.sha256(bytes(blob) + name.encode()).hexdigest()[:32]
    shapes = lw.sym_types
    spec = cgen.Spec(
        name,
        [(i.name, dname(i.type.dtype), shapes[i.name], set(ex.input_dims.get(i.name, {})) if ex.symbol else set())
         for i in user],
        [(o, dname(ex.graph.types[o].dtype), shapes[o]) for o in ex.graph.outputs],
        ex.symbol, ex.example, ex.min, ex.max, weights, len(blob), blob_id,
        _signature(name, ex, user, ex.graph, shapes, weights, len(lw.kernels)), threads)
    spec.states, spec.state_blob_off = state_spec, state_off
    spec.train_batches = train is not None
    t1 = time.perf_counter()
    obj, ll, cached = L.compile_kernels(list(lw.kernels.values()))
    t2 = time.perf_counter()
    log.append(f"kernels: {len(lw.kernels)} ({'cached' if cached else 'compiled'}, {t2 - t1:.2f} s): "
               + ", ".join(lw.kernels))
    files = {
        f"{name}.h": cgen.header(spec),
        f"{name}.c": cgen.driver(spec, lw.steps, lw.kernels, lw.ntmp),
        f"{name}_main.c": cgen.train_main_source(spec) if train is not None else cgen.main_source(spec),
        f"{name}.ll": ll,
    }
    for fn, text in files.items():
        _write(os.path.join(out_dir, fn), text.encode("utf-8"))
    _write(os.path.join(out_dir, f"{name}_kernels.o"), obj)
    undefined = undefined_symbols(os.path.join(out_dir, f"{name}_kernels.o"))
    bad = sorted(set(undefined) - ALLOWED_UNDEFINED)
    if bad:
        raise BuildError(f"jit.build: the kernel object needs symbols outside libc/libm: {', '.join(bad)}")
    objs = [f"{name}_kernels.o", f"{name}.o"]
    if weights == "separate":
        head = b"JITORCHW" + blob_id.encode() + b"\0" * 24
        _write(os.path.join(out_dir, f"{name}.weights"), head + bytes(blob))
    else:
        _write(os.path.join(out_dir, f"{name}.weights.bin"), bytes(blob))
        _write(os.path.join(out_dir, f"{name}_weights.S"),
               cgen.weights_asm(spec, f"{name}.weights.bin").encode())
        _run([cc, "-c", "-fPIC", f"{name}_weights.S", "-o", f"{name}_weights.o"], out_dir, log)
        objs.append(f"{name}_weights.o")
        stale = os.path.join(out_dir, f"{name}.weights")
        if os.path.exists(stale):
            os.remove(stale)
    cflags = ["-O2", "-fPIC", "-std=gnu11", "-Wall", "-Wno-unused-variable",
              "-Wno-unused-label", "-Wno-unused-function"]
    _run([cc, *cflags, "-c", f"{name}.c", "-o", f"{name}.o"], out_dir, log)
    _run([cc, "-O2", "-std=gnu11", "-Wall", "-c", f"{name}_main.c", "-o", f"{name}_main.o"], out_dir, log)
    libs = (blas_info[1] if blas_info else []) + ["-lm", "-lpthread"]
    _run([cc, "-shared", "-o", f"lib{name}.so", *objs, *libs, "-Wl,--version-script=" + _version_script(out_dir, name)],
         out_dir, log)
    _run([cc, "-o", name, f"{name}_main.o", *objs, *libs], out_dir, log)
    t3 = time.perf_counter()
    log.append(f"built {name} and lib{name}.so in {t3 - t0:.2f} s (plan {t1 - t0:.2f} s, kernels {t2 - t1:.2f} s, "
               f"C {t3 - t2:.2f} s)")
    _write(os.path.join(out_dir, "build.log"), ("\n".join(log) + "\n").encode())
    if verbose:
        print("\n".join(log))
    return BuildResult(name, out_dir, os.path.join(out_dir, name), os.path.join(out_dir, f"lib{name}.so"),
                       os.path.join(out_dir, f"{name}.h"), spec.signature, "\n".join(log), t3 - t0, cached)


def _version_script(out_dir, name):
    path = os.path.join(out_dir, f"{name}.map")
    _write(path, f"{{ global: {name}_*; local: *; }};\n".encode())
    return path


def _write(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def undefined_symbols(obj_path):
    """The undefined symbols of an object file (``nm -u``)."""
    p = subprocess.run(["nm", "-u", obj_path], capture_output=True, text=True)
    if p.returncode:
        raise BuildError(f"jit.build: nm failed on {obj_path}: {p.stderr.strip()}")
    return [ln.split()[-1] for ln in p.stdout.splitlines() if ln.strip()]


class BuildResult:
    """What :func:`build` made: ``exe``, ``lib``, ``header`` paths, the ``signature`` text, the ``log``."""

    def __init__(self, name, out_dir, exe, lib, header, signature, log, seconds, cached):
        self.name, self.out_dir, self.exe, self.lib, self.header = name, out_dir, exe, lib, header
        self.signature, self.log, self.seconds, self.cached = signature, log, seconds, cached

    def __repr__(self):
        return f"BuildResult({self.name!r}, exe={self.exe!r}, lib={self.lib!r})"

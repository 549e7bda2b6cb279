"""Kernels -> one optimized LLVM module -> a PIC object file (issue 8, approach A of
shared/research/feasibility.md).

Each kernel's module text is executed (it only defines numba functions) and its ``cfunc`` lowered
by numba; the LLVM IR of every kernel is parsed, its entry renamed to the kernel's C symbol
(hidden visibility), everything else internalized, all linked into one module, optimized at O3
for the host CPU and emitted with ``reloc='pic'``. The object and the IR are cached under
``<jitorch cache>/native/`` keyed by sha256 of the kernel texts, target triple, CPU, features and
the jitorch / numba / llvmlite versions: a rebuild of the same graph does no numba or LLVM work.
"""
from __future__ import annotations

import hashlib
import os
import re

_INITIALIZED = False


def _llvm():
    global _INITIALIZED
    import llvmlite.binding as llvm
    if not _INITIALIZED:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _INITIALIZED = True
    return llvm


def target():
    """(triple, cpu, features) of the host."""
    llvm = _llvm()
    return llvm.get_process_triple(), llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def cache_folder():
    from ...kernels._jitcache import cache_dir
    d = os.path.join(cache_dir(), "native")
    os.makedirs(d, exist_ok=True)
    return d


_CACHED = re.compile(r"(?:([0-9a-f]{64})\.(o|ll)|(jt_[A-Za-z0-9_]+)\.ll)\Z")


def cache_entries(kernels_folder):
    """(path, kind, size) of the native build's files in ``<kernels_folder>/native`` (for ``jitorch cache info``
    and ``clear``): each kernel's LLVM IR ('native kernel IR') and each linked set's optimized object and IR
    ('native object'). Creates nothing."""
    folder = os.path.join(kernels_folder, "native")
    out = []
    if not os.path.isdir(folder):
        return out
    for name in sorted(os.listdir(folder)):
        m = _CACHED.match(name)
        if m:
            p = os.path.join(folder, name)
            try:
                out.append((p, "native object" if m.group(1) else "native kernel IR", os.path.getsize(p)))
            except OSError:  # removed meanwhile
                pass
    return out


def _deps_tag(source):
    """A hash of the library modules a kernel's text imports (``from jitorch.kernels import gemm``):
    their code is compiled into the kernel, so a change to them must miss the cache."""
    import importlib
    import re
    h = hashlib.sha256()
    for mod in sorted(set(re.findall(r"^from jitorch\.kernels import (\w+)", source, re.M))):
        m = importlib.import_module(f"jitorch.kernels.{mod}")
        with open(m.__file__, "rb") as f:
            h.update(mod.encode() + b"\0" + f.read())
    return h.hexdigest()[:12]


def cache_key(kernels):
    from ..fuse import versions_tag
    h = hashlib.sha256()
    for part in (versions_tag()[0], *target()):
        h.update(part.encode() + b"\0")
    for k in sorted(kernels, key=lambda k: k.name):
        h.update(k.name.encode() + b"\0" + k.source.encode() + b"\0" + _deps_tag(k.source).encode())
    return h.hexdigest()


def _kernel_ir(k):
    """(LLVM IR text, entry name) of kernel ``k``'s cfunc, cached per kernel (numba's lowering is the
    slow part: 0.5-3 s a kernel; identical kernels of different graphs share the entry)."""
    from ...kernels._jitcache import write_atomic
    from ..fuse import versions_tag
    host = hashlib.sha256("\0".join(target()).encode()).hexdigest()[:8]  # numba's IR names the host CPU
    path = os.path.join(cache_folder(), f"{k.name}_{versions_tag()[1]}_{_deps_tag(k.source)}_{host}.ll")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            native, _, text = f.read().partition("\n")
        return text, native[2:]
    import warnings
    ns = {"__name__": f"_jitorch_native_{k.name}"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(k.source, f"<native kernel {k.name}>", "exec"), ns)
        fn = ns["kernel"]
        text, native = fn.inspect_llvm(), fn.native_name
    write_atomic(path, f"; {native}\n{text}".encode("utf-8"))
    return text, native


def compile_kernels(kernels, log=print):
    """(object bytes, optimized IR text, cached?) for ``kernels`` (a list of :class:`Kernel`)."""
    from ...kernels._jitcache import write_atomic
    key = cache_key(kernels)
    folder = cache_folder()
    obj_path, ll_path = os.path.join(folder, key + ".o"), os.path.join(folder, key + ".ll")
    if os.path.exists(obj_path) and os.path.exists(ll_path):
        with open(obj_path, "rb") as f:
            obj = f.read()
        with open(ll_path, encoding="utf-8") as f:
            ll = f.read()
        return obj, ll, True
    llvm = _llvm()
    main = None
    for k in kernels:
        text, native = _kernel_ir(k)
        mod = llvm.parse_assembly(text)
        entry = mod.get_function(native)
        entry.name = k.name
        for f in mod.functions:
            if not f.is_declaration and f.name != k.name:
                f.linkage = llvm.Linkage.internal
        for gv in mod.global_variables:
            if not gv.is_declaration:
                gv.linkage = llvm.Linkage.internal
        entry.visibility = "hidden"
        if main is None:
            main = mod
        else:
            main.link_in(mod)
    triple, cpu, features = target()
    if main is None:
        main = llvm.parse_assembly("")
    main.triple = triple
    tm = llvm.Target.from_triple(triple).create_target_machine(cpu=cpu, features=features, opt=3, reloc="pic",
                                                               codemodel="default")
    main.data_layout = str(tm.target_data)
    main.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(main, pb)
    obj = tm.emit_object(main)
    ll = str(main)
    write_atomic(obj_path, obj)
    write_atomic(ll_path, ll.encode("utf-8"))
    return obj, ll, False

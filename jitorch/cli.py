"""The ``jitorch`` command line: ``jitorch demo`` (the main job) and small tools.

``jitorch demo`` trains a classifier eagerly (scikit-learn's 8x8 digits when scikit-learn is
installed, a built-in synthetic set otherwise), traces it into the script IR and checks the
traced graph against eager, then exports it to a ``.jt`` file and runs it in a fresh process.
Each later capability (compile, native build) adds a step.

Exported graphs (docs/format.md): ``jitorch inspect FILE`` describes one, ``jitorch run FILE
--input x.npy --output y.npy`` runs it, ``jitorch dot FILE [--svg]`` renders it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def _dataset(seed):
    """(x_train, y_train, x_test, y_test, name): digits if scikit-learn is there, else synthetic blobs."""
    import numpy as np

    import jitorch
    try:
        from sklearn.datasets import load_digits
        d = load_digits()
        x = (d.data / 16.0).astype(np.float32)
        y = d.target.astype(np.int64)
        name = "scikit-learn digits (1,797 8x8 images, 10 classes)"
    except ImportError:
        # 10 Gaussian blobs in 64 dims: a task with the digits' shape that needs no download
        rng = np.random.default_rng(seed)
        centers = rng.normal(0, 1.0, size=(10, 64))
        y = rng.integers(0, 10, size=1800)
        x = (centers[y] + rng.normal(0, 3.0, size=(1800, 64))).astype(np.float32)
        y = y.astype(np.int64)
        name = "built-in synthetic blobs (1,800 points in 64-d, 10 classes; install scikit-learn for digits)"
    perm = np.random.default_rng(seed).permutation(len(x))
    x, y = x[perm], y[perm]
    n_test = len(x) // 5
    t = jitorch.from_numpy
    return t(x[n_test:].copy()), t(y[n_test:].copy()), t(x[:n_test].copy()), t(y[:n_test].copy()), name


def demo(epochs=15, seed=0, out=print):
    import jitorch
    import jitorch.nn as nn
    from jitorch.utils.data import DataLoader, TensorDataset

    jitorch.manual_seed(seed)
    t0 = time.perf_counter()
    xtr, ytr, xte, yte, name = _dataset(seed)
    out(f"jitorch {jitorch.__version__} demo")
    out(f"data: {name}; train {tuple(xtr.shape)}, test {tuple(xte.shape)}")

    # 1. eager training -------------------------------------------------------------------
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = jitorch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(xtr, ytr), batch_size=64, shuffle=True,
                        generator=jitorch.Generator().manual_seed(seed))
    out(f"\n[1/5] eager training: {model.__class__.__name__} of {sum(p.numel() for p in model.parameters()):,} "
        f"parameters, Adam, {epochs} epochs")
    t_train = time.perf_counter()
    first_epoch = None
    for epoch in range(epochs):
        te = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            count += len(yb)
        model.eval()
        with jitorch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        dt = time.perf_counter() - te
        first_epoch = first_epoch if first_epoch is not None else dt
        if epoch in (0, epochs - 1) or epoch % 5 == 4:
            out(f"  epoch {epoch + 1:2d}: train loss {total / count:.4f}, test accuracy {acc:.1%} ({dt * 1e3:.0f} ms)")
    train_s = time.perf_counter() - t_train
    out(f"  trained in {train_s:.2f} s (first epoch {first_epoch:.2f} s incl. kernel compiles/cache loads)")

    # 2. trace ----------------------------------------------------------------------------
    out("\n[2/5] trace: record the eager calls into the script IR")
    sample = xte[:8]
    t1 = time.perf_counter()
    traced = jitorch.jit.trace(model, sample)
    out(f"  traced in {(time.perf_counter() - t1) * 1e3:.1f} ms; graph ({len(traced.graph.nodes)} nodes):")
    for line in str(traced.graph).splitlines():
        out("    " + line)
    with jitorch.no_grad():
        diff = (traced(sample) - model(sample)).abs().max().item()
    out(f"  traced vs eager on the sample: max |diff| = {diff:.2e}")

    # 3. compile --------------------------------------------------------------------------
    out("\n[3/5] compile: jitorch.compile fuses traced graphs into generated numba kernels")
    compile_diff, speedup = _demo_compile(model, xte, out)

    # 4. export ---------------------------------------------------------------------------
    out("\n[4/5] export: save the traced graph to a .jt file, run it in a fresh process")
    export_diff = _demo_export(traced, model, xte, yte, out)

    # 5. native build ---------------------------------------------------------------------
    out("\n[5/5] native build: the exported graph as a standalone executable (no Python at run time)")
    native_diff = _demo_native(traced, model, xte, yte, out)
    out(f"\ndone in {time.perf_counter() - t0:.2f} s; final test accuracy {acc:.1%}")
    return {"accuracy": acc, "train_seconds": train_s, "trace_diff": diff, "compile_diff": compile_diff,
            "compile_speedup": speedup, "export_diff": export_diff, "native_diff": native_diff}


def _demo_compile(model, xte, out, n=1 << 22, lines=14):
    """jitorch.compile of the trained model (checked against eager; one generated kernel printed) and of an
    elementwise chain, where fusion pays: one pass over memory instead of five (timed against eager)."""
    import jitorch

    cmodel = jitorch.compile(model)
    with jitorch.no_grad():
        t = time.perf_counter()
        got = cmodel(xte)
        first = time.perf_counter() - t
        diff = (got - model(xte)).abs().max().item()
    kernels = cmodel.kernels
    out(f"  compiled model: first call {first * 1e3:.0f} ms (trace + {len(kernels)} fused kernels; disk-cached), "
        f"max |diff| vs eager = {diff:.2e}")
    if kernels:
        name, src = next(iter(kernels.items()))
        src_lines = src.splitlines()
        main = next((i for i, ln in enumerate(src_lines) if ln.startswith("@njit(cache")), 0)
        body = src_lines[:1] + src_lines[main:]  # the header comment and the kernel (helpers left out)
        out(f"  generated kernel {name} (the whole source: `fn.kernels`, or JITORCH_LOGS=code):")
        for ln in body[:lines]:
            out("    " + ln)

    def chain(x):
        return jitorch.tanh(x * 1.5 - 0.25) * jitorch.sigmoid(x)

    cchain = jitorch.compile(chain)
    x = jitorch.randn(n)
    t = time.perf_counter()
    cdiff = (cchain(x) - chain(x)).abs().max().item()
    first = time.perf_counter() - t

    def best(f, reps=7):
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            f(x)
            ts.append(time.perf_counter() - t)
        return min(ts)

    te, tc = best(chain), best(cchain)
    out(f"  tanh(x*1.5-0.25)*sigmoid(x) on {n:,} float32: eager {te * 1e3:.1f} ms (5 kernels, 4 temporaries), "
        f"compiled {tc * 1e3:.1f} ms (1 fused kernel): {te / tc:.1f}x; first call {first:.2f} s; "
        f"max |diff| {cdiff:.1e}")
    return max(diff, cdiff), te / tc


def _demo_export(traced, model, xte, yte, out):
    """Save with a dynamic batch dim, run the file with ``jitorch run`` in a child process, compare."""
    import numpy as np

    import jitorch
    with tempfile.TemporaryDirectory(prefix="jitorch-demo-") as d:
        path, xin, yout = (os.path.join(d, n) for n in ("model.jt", "x.npy", "y.npy"))
        t = time.perf_counter()
        jitorch.jit.save(traced, path, dynamic_batch=True)
        n_npy = sum(1 for i in traced.graph.inputs if i.kind != "input")
        out(f"  saved model.jt in {(time.perf_counter() - t) * 1e3:.0f} ms: {os.path.getsize(path):,} bytes (graph.txt, "
            f"meta.json, {n_npy} .npy weights; no pickle, no code); batch dim dynamic (traced with "
            f"{traced.graph.inputs[0].type.shape[0]} rows)")
        np.save(xin, xte.numpy(), allow_pickle=False)
        cmd = [sys.executable, "-m", "jitorch", "run", path, "--input", xin, "--output", yout]
        t = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if res.returncode != 0:
            out(f"  the child process failed ({res.returncode}):\n{res.stderr.strip()}")
            return float("nan")
        y = np.load(yout, allow_pickle=False)
    with jitorch.no_grad():
        want = model(xte).numpy()
    diff = float(np.max(np.abs(y - want)))
    acc = float(np.mean(y.argmax(1) == yte.numpy()))
    out(f"  `jitorch run model.jt` in a fresh process ({(time.perf_counter() - t):.1f} s incl. start-up) on all "
        f"{len(y)} test rows: max |diff| vs eager = {diff:.2e}, accuracy {acc:.1%}")
    return diff


def _demo_native(traced, model, xte, yte, out):
    """``jitorch.jit.build`` of the traced model, its executable run on the test set, compared with eager."""
    import numpy as np

    import jitorch
    from jitorch.jit.native import BuildError
    with tempfile.TemporaryDirectory(prefix="jitorch-native-") as d:
        xin, yout = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
        try:
            res = jitorch.jit.build(traced, os.path.join(d, "out"), name="model", dynamic_batch=True)
        except BuildError as e:
            out(f"  skipped: {e}")
            return float("nan")
        out(f"  built out/model ({os.path.getsize(res.exe):,} bytes) and out/libmodel.so in {res.seconds:.1f} s"
            f"{' (kernels from the cache)' if res.cached else ''}")
        np.save(xin, xte.numpy(), allow_pickle=False)
        t = time.perf_counter()
        p = subprocess.run(["env", "-i", res.exe, xin, yout], capture_output=True, text=True, timeout=600)
        ms = (time.perf_counter() - t) * 1e3
        if p.returncode != 0:
            out(f"  the executable failed ({p.returncode}): {p.stderr.strip()}")
            return float("nan")
        y = np.load(yout, allow_pickle=False)
    with jitorch.no_grad():
        want = model(xte).numpy()
    diff = float(np.max(np.abs(y - want)))
    out(f"  `env -i out/model x.npy y.npy` on all {len(y)} test rows in {ms:.0f} ms incl. process start: "
        f"max |diff| vs eager = {diff:.2e}, accuracy {float(np.mean(y.argmax(1) == yte.numpy())):.1%}")
    return diff


# ---------------------------------------------------------------- exported graphs (.jt)

def _load_export(path):
    from jitorch.jit.export import read_export
    with open(path, "rb") as fh:
        return read_export(fh)


def _inspect(args):
    from jitorch.jit.export import describe
    ex = _load_export(args.file)
    print(describe(ex, path=args.file, size=os.path.getsize(args.file), ir=not args.no_ir))
    return 0


def _run(args):
    import numpy as np

    import jitorch
    from jitorch.jit import _pytree
    m = jitorch.jit.load(args.file)
    ex = m._jit_export
    users = ex.user_inputs
    if len(args.input) != len(users):
        names = ", ".join(f"%{i.name}" for i in users)
        raise SystemExit(f"jitorch run: the graph takes {len(users)} input{'s' if len(users) != 1 else ''} ({names}); "
                         f"give one --input FILE.npy for each, in order (got {len(args.input)})")
    leaves = [jitorch.from_numpy(np.ascontiguousarray(np.load(p, allow_pickle=False))) for p in args.input]
    call_args, call_kwargs = _pytree.unflatten(ex.in_spec, leaves)
    with jitorch.no_grad():
        result = m(*call_args, **call_kwargs)
    outs, _ = _pytree.flatten(result)
    if args.output and len(args.output) != len(outs):
        raise SystemExit(f"jitorch run: the graph returns {len(outs)} tensors; give one --output FILE.npy for each "
                         f"(got {len(args.output)})")
    for k, t in enumerate(outs):
        a = t.numpy()
        if args.output:
            np.save(args.output[k], a, allow_pickle=False)
        else:
            print(f"output {k}: {t.dtype.short}{list(a.shape)}\n{a}")
    return 0


def _dot(args):
    ex = _load_export(args.file)
    text = ex.graph.to_dot()
    if args.svg:
        exe = shutil.which("dot")
        if exe is None:
            raise SystemExit("jitorch dot --svg: Graphviz's 'dot' program is not installed; install Graphviz, or "
                             "write DOT text with 'jitorch dot FILE > graph.dot'")
        res = subprocess.run([exe, "-Tsvg"], input=text.encode(), capture_output=True, timeout=300)
        if res.returncode != 0:
            raise SystemExit(f"jitorch dot --svg: dot failed: {res.stderr.decode(errors='replace').strip()}")
        data = res.stdout
    else:
        data = text.encode()
    if args.out:
        with open(args.out, "wb") as fh:
            fh.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def _build(args):
    from jitorch.jit.native import build
    r = build(args.file, args.out, name=args.name, weights=args.weights, blas=args.blas, threads=args.threads)
    print(r.log)
    print(f"jitorch build: {r.exe} (run it with --help for its signature), {r.lib}, {r.header}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="jitorch", description="jitorch: PyTorch's API on numba kernels")
    sub = parser.add_subparsers(dest="cmd")
    p_demo = sub.add_parser("demo", help="train a small model eagerly, then trace it (the main job)")
    p_demo.add_argument("--epochs", type=int, default=15)
    p_demo.add_argument("--seed", type=int, default=0)
    sub.add_parser("version", help="print versions")
    p_inspect = sub.add_parser("inspect", help="describe an exported graph (.jt): inputs, outputs, guards, ops, "
                               "parameters, the IR")
    p_inspect.add_argument("file")
    p_inspect.add_argument("--no-ir", action="store_true", help="leave out the IR text")
    p_run = sub.add_parser("run", help="run an exported graph (.jt) on .npy inputs")
    p_run.add_argument("file")
    p_run.add_argument("--input", action="append", default=[], metavar="X.npy", help="one per graph input, in order")
    p_run.add_argument("--output", action="append", default=[], metavar="Y.npy",
                       help="one per output (without: print the outputs)")
    p_dot = sub.add_parser("dot", help="Graphviz DOT of an exported graph (.jt)")
    p_dot.add_argument("file")
    p_dot.add_argument("--svg", action="store_true", help="render SVG with Graphviz's dot")
    p_dot.add_argument("-o", "--out", help="write to this file instead of stdout")
    p_build = sub.add_parser("build", help="native build of an exported graph (.jt): an executable, lib<name>.so "
                             "and <name>.h that need only libc/libm/libpthread (docs/native.md)")
    p_build.add_argument("file")
    p_build.add_argument("-o", "--out", required=True, metavar="OUT_DIR")
    p_build.add_argument("--name", help="the executable's name (default: the file's base name)")
    p_build.add_argument("--weights", choices=("embedded", "separate"), default="embedded",
                         help="embed the weights (default) or write <name>.weights beside the binaries")
    p_build.add_argument("--blas", nargs="?", const=True, default=False, metavar="LIB",
                         help="call a CBLAS for matrix products: a system one if found, or the library LIB")
    p_build.add_argument("--threads", type=int, default=0, help="thread pool size (default: CPUs at run time)")
    p_cache = sub.add_parser("cache", help="the compiled-kernel cache: info (where, how big) or clear")
    p_cache.add_argument("action", choices=("info", "clear"))
    args = parser.parse_args(argv)
    if args.cmd == "cache":
        from jitorch.jit import cache
        if args.action == "clear":
            print(f"removed {cache.clear()} files from {cache.info()['folder']}")
        else:
            print(cache.format_info(cache.info()))
        return 0
    if args.cmd in ("inspect", "run", "dot", "build"):
        try:
            return {"inspect": _inspect, "run": _run, "dot": _dot, "build": _build}[args.cmd](args)
        except (OSError, ValueError, RuntimeError, TypeError) as e:  # FormatError is a ValueError
            print(f"jitorch {args.cmd}: {args.file}: {e}", file=sys.stderr)
            return 1
    if args.cmd == "demo":
        demo(epochs=args.epochs, seed=args.seed)
        return 0
    if args.cmd == "version":
        import llvmlite
        import numba
        import numpy

        import jitorch
        print(f"jitorch {jitorch.__version__} (numba {numba.__version__}, llvmlite {llvmlite.__version__}, "
              f"numpy {numpy.__version__})")
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())

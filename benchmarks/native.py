"""Native build benchmark (issue 8.7): the MLP 784-512-512-10 (as in benchmarks/cases.py), inference.

    .venv/bin/python benchmarks/native.py [--rounds 15] [--batches 1 256] [--cold]

Rows, for batch 1 and 256:

- ``exe start-to-result``: wall time of ``out/mlp x.npy y.npy`` run as a child process (process
  start, weights already in the binary, .npy read, forward, .npy write), median over rounds;
- ``.so steady state``: ``mlp_run_v`` called through ctypes in this process (a few microseconds of
  ctypes overhead included), median per call;
- ``jitorch compiled``: ``jitorch.compile(model)`` called in-process (no grad), median per call;
- ``jitorch eager`` and ``torch eager`` (when torch is installed), median per call;

then the binary sizes and the build time (warm: kernels from the cache; ``--cold``: also a build in
a child process with an empty cache, which includes numba + LLVM compiling every kernel).
Implementations run in interleaved rounds so they see the same background load; the load average
is printed with the table.
"""
import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def _mlp():
    import jitorch
    import jitorch.nn as nn
    jitorch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)).eval()


def _lib_runner(res, x):
    lib = ctypes.CDLL(res.lib)
    f = getattr(lib, f"{res.name}_run_v")
    f.argtypes = [ctypes.c_void_p] * 3
    shape = np.array(x.shape, dtype=np.int64)
    y = np.empty((x.shape[0], 10), np.float32)
    ins = (ctypes.c_void_p * 1)(x.ctypes.data)
    shapes = (ctypes.c_void_p * 1)(shape.ctypes.data)
    outs = (ctypes.c_void_p * 1)(y.ctypes.data)

    keep = (x, shape, y)

    def run():
        if f(ins, shapes, outs) != 0 or keep is None:
            raise RuntimeError("mlp_run_v failed")
    return run, y


def _per_call(fn, min_s=0.05):
    """Median-friendly timing of one round: calls until min_s elapsed, seconds per call."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_s:
            return dt / n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    ap.add_argument("--cold", action="store_true", help="also time a build with an empty kernel cache")
    args = ap.parse_args(argv)

    import jitorch
    model = _mlp()
    work = tempfile.mkdtemp(prefix="jitorch-native-bench-")
    traced = jitorch.jit.trace(model, jitorch.randn(8, 784))
    jt = os.path.join(work, "mlp.jt")
    jitorch.jit.save(traced, jt, dynamic_batch=True)
    t = time.perf_counter()
    res = jitorch.jit.build(jt, os.path.join(work, "out"))
    build_s = time.perf_counter() - t
    cold_s = None
    if args.cold:
        env = dict(os.environ, JITORCH_CACHE_DIR=os.path.join(work, "cold-cache"))
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "jitorch", "build", jt, "-o", os.path.join(work, "cold")], env=env,
                       check=True, capture_output=True)
        cold_s = time.perf_counter() - t
    compiled = jitorch.compile(model)
    try:
        import torch
        tmodel = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                                     torch.nn.ReLU(), torch.nn.Linear(512, 10)).eval()
        with torch.no_grad():
            for tp, jp in zip(tmodel.parameters(), model.parameters()):
                tp.copy_(torch.from_numpy(jp.detach().numpy()))
    except ImportError:
        torch = None

    rows = []
    for b in args.batches:
        x = np.random.default_rng(b).standard_normal((b, 784)).astype(np.float32)
        xin, yout = os.path.join(work, f"x{b}.npy"), os.path.join(work, f"y{b}.npy")
        np.save(xin, x)
        run_so, y_so = _lib_runner(res, x)
        xj = jitorch.from_numpy(x)
        impls = {
            "exe start-to-result": lambda: subprocess.run([res.exe, xin, yout], check=True),
            ".so steady state (ctypes)": run_so,
        }

        def jit_call():
            with jitorch.no_grad():
                compiled(xj)

        def eager_call():
            with jitorch.no_grad():
                model(xj)
        impls["jitorch compiled"] = jit_call
        impls["jitorch eager"] = eager_call
        if torch is not None:
            xt = torch.from_numpy(x)

            def torch_call():
                with torch.no_grad():
                    tmodel(xt)
            impls["torch eager"] = torch_call
        for fn in impls.values():  # warm up: compile, caches, page in
            fn()
        with jitorch.no_grad():
            want = model(xj).numpy()
        run_so()
        diff_so = float(np.abs(y_so - want).max())
        diff_exe = float(np.abs(np.load(yout) - want).max())
        times = {k: [] for k in impls}
        names = list(impls)
        for r in range(args.rounds):
            for k in names[r % len(names):] + names[:r % len(names)]:
                times[k].append(_per_call(impls[k], 0.02 if k.startswith("exe") else 0.05))
        for k in names:
            rows.append((b, k, statistics.median(times[k]) * 1e3, min(times[k]) * 1e3))
        rows.append((b, f"max |diff| vs eager: exe {diff_exe:.1e}, .so {diff_so:.1e}", None, None))

    load = os.getloadavg()
    print(f"native build benchmark: MLP 784-512-512-10 inference; load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} on {os.cpu_count()} CPUs; {args.rounds} interleaved rounds")
    print(f"{'batch':>5}  {'implementation':<28} {'median ms':>10} {'best ms':>9}")
    for b, k, med, best in rows:
        if med is None:
            print(f"{b:>5}  {k}")
        else:
            print(f"{b:>5}  {k:<28} {med:>10.3f} {best:>9.3f}")
    print(f"executable {os.path.getsize(res.exe):,} bytes, lib{res.name}.so {os.path.getsize(res.lib):,} bytes "
          f"(weights embedded: {sum(p.numel() for p in model.parameters()) * 4:,} bytes)")
    print(f"build time: {build_s:.2f} s warm (kernels {'from the cache' if res.cached else 'compiled'})"
          + (f", {cold_s:.1f} s cold (empty kernel cache, child process)" if cold_s is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

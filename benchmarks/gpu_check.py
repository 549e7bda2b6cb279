"""The prepared GPU check of issue 9.4: CUDA tests on the real device, then GPU benchmarks, in under 8 minutes.

On a GPU machine (numba, numba-cuda, numpy and PyTorch installed; jitorch installed from the working tree with
``pip install --no-deps --no-build-isolation -e .``)::

    python benchmarks/gpu_check.py RESULTS_DIR            # tests + benchmarks -> RESULTS_DIR/gpu_check.{json,md}
    python benchmarks/gpu_check.py RESULTS_DIR --no-tests # benchmarks only
    python benchmarks/gpu_check.py RESULTS_DIR --sim      # tiny sizes on numba's CUDA simulator (tests/ runs this)

Steps, each with its own time budget so the whole run stays under ``--budget`` seconds (default 450):

1. ``pytest`` of the CUDA test files with ``JITORCH_TEST_REAL_CUDA=1`` (the simulator is off), in a subprocess
   with a timeout; the summary line and failures go into the results (skipped with ``--sim``: the suite runs
   there anyway).
2. Benchmarks, each the median of timed repeats after warm-up (first calls compile), timed with
   ``jitorch.cuda.synchronize()`` around the loop:
   - ``chain``: y = tanh(x * a + b) * sigmoid(x) on 64M float32, eager (4 kernels) and, when
     ``jitorch.compile`` runs on cuda, compiled; reported as a share of device-to-device copy bandwidth
     (the same bytes: read x, write y). Goal >= 80% for the fused kernel.
   - ``matmul``: 4096x4096 float32, TFLOP/s of jitorch's tiled kernel vs torch (cuBLAS). Goal >= 30%.
   - ``softmax``: 8192x8192 float32 along the last dim, GB/s vs torch.
   - ``mlp_step``: Linear(1024, 2048)-ReLU-Linear(2048, 2048)-ReLU-Linear(2048, 10), batch 1024, cross-entropy,
     SGD step; ms per step vs torch.
   A benchmark that fails records its error and the others still run; the results file is always written.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_FILES = ["tests/test_cuda_kernels.py", "tests/test_cuda_nn.py", "tests/test_cuda.py", "tests/test_cuda_ops.py"]

FULL = dict(chain_n=64 * 2 ** 20, matmul_n=4096, softmax_shape=(8192, 8192), mlp=(1024, 1024, 2048, 10),
            repeats=10, warmup=2)
SIM = dict(chain_n=64, matmul_n=8, softmax_shape=(4, 8), mlp=(4, 6, 8, 3), repeats=1, warmup=1)


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def _timeit(fn, sync, repeats, warmup):
    """Median seconds per call of fn() (sync() after each call; warm-up calls first)."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return _median(times)


def _torch_cuda():
    try:
        import torch
        if torch.cuda.is_available():
            return torch
    except Exception:
        pass
    return None


# ------------------------------------------------------------------ step 1: tests

def run_tests(timeout_s):
    env = dict(os.environ, JITORCH_TEST_REAL_CUDA="1")
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TEST_FILES]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
        out = p.stdout + p.stderr
        rc = p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc = "timeout"
    lines = [ln for ln in out.splitlines() if ln.strip()]
    summary = next((ln for ln in reversed(lines) if " passed" in ln or " failed" in ln or " error" in ln), "")
    failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
    return dict(returncode=rc, seconds=round(time.perf_counter() - t0, 1), summary=summary, failed=failed[:50],
                tail=out[-3000:])


# ------------------------------------------------------------------ step 2: benchmarks

def bench_chain(cfg, jt, torch):
    n = cfg["chain_n"]
    sync = jt.cuda.synchronize
    x = jt.randn(n, device="cuda")
    a, b = 1.5, -0.25

    def chain(t):
        return jt.tanh(t * a + b) * jt.sigmoid(t)

    res = dict(n=n, bytes_moved=2 * 4 * n)
    from jitorch.backends import cuda as bc
    src = x._data
    dst = bc.empty(src.shape, src.dtype)
    t_copy = _timeit(lambda: bc.flat(dst).copy_to_device(bc.flat(src)), sync, cfg["repeats"], cfg["warmup"])
    res["copy_GBps"] = res["bytes_moved"] / t_copy / 1e9
    t_eager = _timeit(lambda: chain(x), sync, cfg["repeats"], cfg["warmup"])
    res["eager_ms"] = t_eager * 1e3
    res["eager_share_of_copy"] = t_copy / t_eager
    try:
        f = jt.compile(chain)
        y = f(x)
        ref = chain(x)
        err = float((y - ref).abs().max().item())
        t_c = _timeit(lambda: f(x), sync, cfg["repeats"], cfg["warmup"])
        res.update(compiled_ms=t_c * 1e3, compiled_share_of_copy=t_copy / t_c, compiled_max_abs_err=err)
    except Exception as e:  # the fuser may not emit cuda kernels yet
        res["compiled_error"] = f"{type(e).__name__}: {e}"[:300]
    if torch is not None:
        tx = torch.randn(n, device="cuda")
        tsync = torch.cuda.synchronize
        res["torch_eager_ms"] = _timeit(lambda: torch.tanh(tx * a + b) * torch.sigmoid(tx), tsync, cfg["repeats"],
                                        cfg["warmup"]) * 1e3
        t_tcopy = _timeit(lambda: tx.clone(), tsync, cfg["repeats"], cfg["warmup"])
        res["torch_copy_GBps"] = res["bytes_moved"] / t_tcopy / 1e9
    return res


def bench_matmul(cfg, jt, torch):
    n = cfg["matmul_n"]
    sync = jt.cuda.synchronize
    a = jt.randn(n, n, device="cuda")
    b = jt.randn(n, n, device="cuda")
    flop = 2.0 * n ** 3
    t = _timeit(lambda: a @ b, sync, cfg["repeats"], cfg["warmup"])
    res = dict(n=n, jitorch_ms=t * 1e3, jitorch_TFLOPs=flop / t / 1e12)
    c = (a[:64] @ b).cpu().numpy()
    ref = a[:64].cpu().numpy().astype("float64") @ b.cpu().numpy().astype("float64")
    res["max_rel_err_first_rows"] = float(abs(c - ref).max() / max(abs(ref).max(), 1e-30))
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False  # a true fp32 product, as jitorch's
        ta = torch.randn(n, n, device="cuda")
        tb = torch.randn(n, n, device="cuda")
        tt = _timeit(lambda: ta @ tb, torch.cuda.synchronize, cfg["repeats"], cfg["warmup"])
        res.update(torch_ms=tt * 1e3, torch_TFLOPs=flop / tt / 1e12, share_of_torch=tt / t)
    return res


def bench_softmax(cfg, jt, torch):
    r, c = cfg["softmax_shape"]
    sync = jt.cuda.synchronize
    x = jt.randn(r, c, device="cuda")
    t = _timeit(lambda: x.softmax(-1), sync, cfg["repeats"], cfg["warmup"])
    res = dict(shape=[r, c], jitorch_ms=t * 1e3, jitorch_GBps=2 * 4 * r * c / t / 1e9)
    if torch is not None:
        tx = torch.randn(r, c, device="cuda")
        tt = _timeit(lambda: tx.softmax(-1), torch.cuda.synchronize, cfg["repeats"], cfg["warmup"])
        res.update(torch_ms=tt * 1e3, torch_GBps=2 * 4 * r * c / tt / 1e9, share_of_torch=tt / t)
    return res


def bench_mlp(cfg, jt, torch):
    batch, d_in, hidden, d_out = cfg["mlp"]
    import numpy as np
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((batch, d_in)).astype(np.float32)
    ys = rng.integers(0, d_out, batch)
    res = dict(batch=batch, sizes=[d_in, hidden, hidden, d_out])

    def jt_step():
        import jitorch.nn as nn
        import jitorch.nn.functional as F
        jt.manual_seed(0)
        model = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                              nn.Linear(hidden, d_out)).to("cuda")
        opt = jt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = jt.tensor(xs).cuda(), jt.tensor(ys).cuda()

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
        return step

    step = jt_step()
    t = _timeit(step, jt.cuda.synchronize, cfg["repeats"], cfg["warmup"])
    res.update(jitorch_ms=t * 1e3, jitorch_loss=float(step().item()))
    if torch is not None:
        tnn = torch.nn
        torch.manual_seed(0)
        model = tnn.Sequential(tnn.Linear(d_in, hidden), tnn.ReLU(), tnn.Linear(hidden, hidden), tnn.ReLU(),
                               tnn.Linear(hidden, d_out)).cuda()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = torch.tensor(xs).cuda(), torch.tensor(ys).cuda()

        def tstep():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
        tt = _timeit(tstep, torch.cuda.synchronize, cfg["repeats"], cfg["warmup"])
        res.update(torch_ms=tt * 1e3, share_of_torch=tt / t)
    return res


BENCHES = [("chain", bench_chain), ("matmul", bench_matmul), ("softmax", bench_softmax), ("mlp_step", bench_mlp)]


# ------------------------------------------------------------------ report

def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return " ".join(str(v).split()).replace("|", "\\|")  # one table cell: no newlines, no bars


def render_md(results):
    lines = ["# jitorch GPU check", "", f"- when: {results['when']}", f"- device: {results['device']}",
             f"- mode: {results['mode']}", f"- numba: {results['numba']} ({results['cuda_impl']})",
             f"- torch: {results['torch']}", f"- total seconds: {results['seconds']}", ""]
    t = results.get("tests")
    if t:
        lines += ["## CUDA tests (JITORCH_TEST_REAL_CUDA=1)", "", f"- return code: {t['returncode']}",
                  f"- summary: {t['summary'] or '(none)'}", f"- seconds: {t['seconds']}"]
        lines += [f"- {f}" for f in t["failed"]]
        lines.append("")
    lines += ["## Benchmarks", "", "| benchmark | key | value |", "|---|---|---|"]
    for name, r in results["benchmarks"].items():
        for k, v in r.items():
            if k != "traceback":
                lines.append(f"| {name} | {k} | {_fmt(v)} |")
    goals = results.get("goals", {})
    if goals:
        lines += ["", "## Goals (issue 9.4)", ""] + [f"- {k}: {_fmt(v)}" for k, v in goals.items()]
    return "\n".join(lines) + "\n"


def _goals(b):
    g = {}
    ch = b.get("chain", {})
    share = ch.get("compiled_share_of_copy")
    g["fused chain >= 80% of copy bandwidth"] = (
        f"{share:.0%} (compiled)" if share is not None else
        f"not measured (compile on cuda: {ch.get('compiled_error', 'n/a')}); eager {ch.get('eager_share_of_copy', 0):.0%}")
    mm = b.get("matmul", {}).get("share_of_torch")
    g["matmul 4096 fp32 >= 30% of torch"] = f"{mm:.0%}" if mm is not None else "not measured"
    return g


def _write(path_dir, results):
    os.makedirs(path_dir, exist_ok=True)
    for name, text in (("gpu_check.json", json.dumps(results, indent=2, default=str)),
                       ("gpu_check.md", render_md(results))):
        final = os.path.join(path_dir, name)
        tmp = final + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, final)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", help="directory for gpu_check.json and gpu_check.md")
    ap.add_argument("--sim", action="store_true", help="tiny sizes on numba's CUDA simulator (no tests step)")
    ap.add_argument("--no-tests", action="store_true", help="skip the pytest step")
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for the whole run (tests get 60%%)")
    ap.add_argument("--only", default="", help="comma-separated benchmarks (chain,matmul,softmax,mlp_step)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    if args.sim:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    results = dict(when=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                   mode="simulator (tiny sizes)" if args.sim else "gpu", python=platform.python_version(),
                   benchmarks={})
    if not args.sim and not args.no_tests:
        results["tests"] = run_tests(timeout_s=max(60.0, 0.6 * args.budget))
    import numba
    import jitorch as jt
    from numba import cuda
    results["numba"] = numba.__version__
    results["cuda_impl"] = getattr(cuda, "implementation", "?")
    results["device"] = jt.cuda.get_device_name() if jt.cuda.is_available() else "none"
    torch = None if args.sim else _torch_cuda()
    results["torch"] = getattr(torch, "__version__", "not used" if args.sim else "not available")
    cfg = SIM if args.sim else FULL
    only = {s for s in args.only.split(",") if s}
    for name, fn in BENCHES:
        if only and name not in only:
            continue
        if time.perf_counter() - t_start > args.budget:
            results["benchmarks"][name] = dict(error="skipped: time budget spent")
            continue
        try:
            results["benchmarks"][name] = fn(cfg, jt, torch)
        except Exception as e:
            results["benchmarks"][name] = dict(error=f"{type(e).__name__}: {e}"[:500],
                                               traceback=traceback.format_exc()[-2000:])
        _write(args.out_dir, dict(results, seconds=round(time.perf_counter() - t_start, 1)))
    results["goals"] = _goals(results["benchmarks"])
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    _write(args.out_dir, results)
    print(render_md(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

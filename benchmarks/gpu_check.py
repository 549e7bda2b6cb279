"""The prepared GPU check of issue 9.4: CUDA tests on the real device, then GPU benchmarks, in under 8 minutes.

On a GPU machine (numba, numba-cuda, numpy and PyTorch installed; jitorch installed from the working tree with
``pip install --no-deps --no-build-isolation -e .``)::

    python benchmarks/gpu_check.py RESULTS_DIR            # tests + benchmarks -> RESULTS_DIR/gpu_check.{json,md}
    python benchmarks/gpu_check.py RESULTS_DIR --no-tests # benchmarks only
    python benchmarks/gpu_check.py RESULTS_DIR --sim      # tiny sizes on numba's CUDA simulator (tests/ runs this)
    python benchmarks/gpu_check.py RESULTS_DIR --ptx      # no GPU: compile every kernel to PTX via libNVVM

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
TEST_FILES = ["tests/test_cuda_kernels.py", "tests/test_cuda_nn.py", "tests/test_cuda.py", "tests/test_cuda_ops.py",
              "tests/test_cuda_compile.py"]

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
    keys = (" passed", " failed", " error", " skipped", "no tests ran")
    summary = next((ln for ln in reversed(lines) if any(k in ln for k in keys)), "")
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


# ------------------------------------------------------------------ --ptx: compile every kernel for a real GPU

class _HostArray:
    """Stands in for a numba device array while kernels are only compiled: the NumPy array it wraps gives the
    argument types; launches compile instead of running, so contents stay zero."""

    def __init__(self, a):
        self.a = a

    shape = property(lambda self: self.a.shape)
    dtype = property(lambda self: self.a.dtype)
    size = property(lambda self: self.a.size)
    ndim = property(lambda self: self.a.ndim)

    def reshape(self, *shape):
        return _HostArray(self.a.reshape(*shape))

    def __getitem__(self, k):
        return _HostArray(self.a[k])

    def copy_to_host(self):
        return self.a.copy()

    def copy_to_device(self, src):
        self.a[...] = src


def ptx_check(cc=(9, 0)):
    """Compile every kernel of kernels/cuda/{reduce,matmul,nn,index,sort,random,optim}.py to PTX for compute
    capability ``cc`` through the real CUDA target (libNVVM; no GPU needed), by running each launcher on
    stand-in arrays whose launches compile instead of running. Returns (compiled signatures, failures)."""
    import numpy as np
    from numba import cuda, typeof
    from numba.cuda import dispatcher as _disp

    class _Dev:
        compute_capability = cc
    _disp.get_current_device = lambda: _Dev()  # device functions ask the current device for its cc

    compiled, failures = [], []

    def fake_getitem(self, config):
        def launch(*args):
            sig = tuple(typeof(a.a if isinstance(a, _HostArray) else a) for a in args)
            key = (self.py_func.__qualname__, sig)
            if key in seen:
                return
            seen.add(key)
            try:
                cuda.compile_ptx(self.py_func, sig, cc=cc)
                compiled.append(key)
            except Exception as e:
                failures.append(f"{self.py_func.__module__}.{self.py_func.__qualname__}{sig}: "
                                f"{type(e).__name__}: {str(e)[:600]}")
        return launch
    seen = set()
    _disp.CUDADispatcher.__getitem__ = fake_getitem
    cuda.device_array = lambda shape, dtype=np.float64, **k: _HostArray(np.zeros(shape, dtype))
    cuda.to_device = lambda a, **k: _HostArray(np.array(a))

    from jitorch.kernels.cuda import index as KI, matmul as KM, nn as KN, optim as KO, random as KR
    from jitorch.kernels.cuda import reduce as KRd, sort as KS
    from jitorch.kernels import optim as CPU_OPT

    def H(shape, dtype):
        return _HostArray(np.zeros(shape, dtype))

    f32, f64, i32, i64, b1 = np.float32, np.float64, np.int32, np.int64, np.bool_
    # reductions: every op, both launch shapes and the two-pass path, over the dtypes the op layer passes
    for dt, acc in ((f32, f32), (i32, i64), (b1, i64)):  # float, integer (int64 accumulator) and bool kinds
        x = H((2, 300, 1), dt)
        for op in ("sum", "prod", "max", "min", "count_nonzero"):
            od = acc if op in ("sum", "prod", "count_nonzero") else (x.dtype if op in ("max", "min") else acc)
            if op == "count_nonzero":
                od = i64
            for method, chunks in (("column", None), ("row", 1), ("row", 40)):
                KRd.reduce(op, x, H((2, 1), od), method=method, chunks=chunks)
        for op in ("any", "all"):
            for method, chunks in (("column", None), ("row", 40)):
                KRd.reduce(op, x, H((2, 1), b1), method=method, chunks=chunks)
        for method, chunks in (("column", None), ("row", 1), ("row", 40)):
            KRd.max_with_indices(x, H((2, 1), x.dtype), H((2, 1), i64), method=method, chunks=chunks)
            KRd.argmin(x, H((2, 1), i64), method=method, chunks=chunks)
        for method in ("row", "column"):
            out_dt = acc if x.dtype.kind in "biu" else x.dtype
            KRd.cumsum(x, H(x.shape, out_dt), method=method)
            KRd.cumprod(x, H(x.shape, out_dt), method=method)
    for dt in (f32, f64):
        x = H((2, 300, 1), dt)
        for method, chunks in (("column", None), ("row", 40)):
            KRd.mean(x, H((2, 1), dt), method=method, chunks=chunks)
            KRd.var(x, H((2, 1), dt), 1, method=method, chunks=chunks)
            KRd.logsumexp(x, H((2, 1), dt), method=method, chunks=chunks)
            for p in (2.0, 1.0, 3.0, float("inf"), float("-inf"), 0.0):
                KRd.norm(x, H((2, 1), dt), p, method=method, chunks=chunks)
        # matmul, every transpose combination
        for ta in (False, True):
            for tb in (False, True):
                KM.matmul(H((2, 5, 5), dt), H((1, 5, 5), dt), H((2, 5, 5), dt), trans_a=ta, trans_b=tb)
        # nn
        KN.softmax(H((2, 9, 3), dt), H((2, 9, 3), dt))
        KN.log_softmax(H((2, 9, 3), dt), H((2, 9, 3), dt))
        KN.layer_norm(H((2, 9), dt), H((9,), dt), H((9,), dt), H((2, 9), dt), H((2,), dt), H((2,), dt), 1e-5)
        KN.layer_norm(H((2, 9), dt), None, None, H((2, 9), dt), H((2,), dt), H((2,), dt), 1e-5)
        x5, w5 = H((2, 4, 1, 6, 6), dt), H((4, 2, 1, 3, 3), dt)
        geo = ((1, 1, 1), (0, 1, 1), (1, 1, 1), 2)
        KN.conv_forward(x5, w5, H((2, 4, 1, 6, 6), dt), H((4,), dt), *geo)
        KN.conv_transpose(H((2, 4, 1, 6, 6), dt), w5, H((2, 4, 1, 6, 6), dt), H((4,), dt), *geo)
        KN.conv_weight_grad(x5, H((2, 4, 1, 6, 6), dt), H((4, 2, 1, 3, 3), dt), *geo)
        planes, outp = H((3, 6, 6), dt), H((3, 3, 3), dt)
        KN.max_pool2d(planes, outp, H((3, 3, 3), i64), (2, 2), (2, 2), (0, 0), (1, 1))
        KN.max_pool2d_backward(outp, H((3, 3, 3), i64), planes, (2, 2), (2, 2), (0, 0), (1, 1))
        KN.max_pool2d_backward_scatter(outp, H((3, 3, 3), i64), planes)
        KN.max_pool2d_gather(planes, H((3, 3, 3), i64), outp)
        KN.avg_pool2d(planes, outp, (2, 2), (2, 2), (0, 0), True, None)
        KN.avg_pool2d_backward(outp, planes, (2, 2), (2, 2), (0, 0), False, 3)
        KN.adaptive_avg_pool2d(planes, outp)
        KN.adaptive_avg_pool2d_backward(outp, planes)
        KN.adaptive_max_pool2d(planes, outp, H((3, 3, 3), i64))
        # optim
        KO.sgd_apply(H((5,), dt), H((5,), dt), H((5,), dt), CPU_OPT.sgd_scalars(dt, 0.1, 0.9, 0, 0, False, False,
                                                                                 False))
        KO.adam_apply(*(H((5,), dt) for _ in range(5)), CPU_OPT.adam_scalars(dt, 1, 1e-3, 0.9, 0.999, 1e-8, 0, True,
                                                                               False, False))
        # random (a draw key is two integers; states() builds numba xoroshiro states on the device)
        st = KR.key(1, 0, 64)
        KR.uniform(H((64,), dt), st)
        KR.normal(H((64,), dt), st)
        KR.exponential(H((64,), dt), st)
        KR.bernoulli(H((64,), dt), st, H((64,), f64))
        KR.bernoulli_scalar(H((64,), dt), st, 0.5)
        KR.dropout_mask(H((64,), dt), st, 0.5)
        KR.randint(H((64,), dt), st, 0, 5)
    st = KR.key(1, 0, 64)
    KR.states(1, 0, 64)
    KR.randint(H((64,), i64), st, 0, 5)
    KR.randint(H((64,), i64), st, -2 ** 63, 2 ** 63)
    KR.randint(H((64,), i32), st, 0, 5)
    KR.randperm(H((64,), i64), st)
    KR.randperm(H((3000,), i64), KR.key(1, 0, 3000))
    # indexing and sorting over value dtypes
    for dt in (f32, f64, i64):
        src, i3 = H((2, 5, 3), dt), H((2, 4, 3), i64)
        KI.wrap_check(H((4,), i64), 5, H((4,), i64))
        KI.index_select(src, H((4,), i64), H((2, 4, 3), dt))
        KI.gather(src, i3, H((2, 4, 3), dt))
        KI.scatter(src, i3, H((2, 4, 3), dt))
        for red in ("sum", "amax", "amin", "mean"):
            for inc in (True, False):
                KI.scatter_reduce(src, i3, H((2, 4, 3), dt), red, inc)
        KI.index_add(src, H((4,), i64), H((2, 4, 3), dt), 2)
        KI.take(H((9,), dt), H((4,), i64), H((4,), dt))
        KI.index_rows(H((6, 3), dt), H((4,), i64), H((4, 3), dt))
        KI.scatter_rows(H((6, 3), dt), H((4,), i64), H((4, 3), dt), True)
        KI.scatter_rows(H((6, 3), dt), H((4,), i64), H((4, 3), dt), False)
        KI.masked_select(H((9,), dt), H((9,), b1), H((10,), i64), H((4,), dt))
        KI.masked_scatter(H((9,), dt), H((9,), b1), H((10,), i64), H((4,), dt))
        KI.nonzero(H((9,), dt), (3, 3), H((10,), i64), H((1, 2), i64))
        for desc in (False, True):
            KS.sort(H((2, 9), dt), H((2, 9), dt), H((2, 9), i64), desc)
            KS.sort(H((2, 9), dt), H((2, 9), dt), H((2, 9), i64), desc, cap=4)
        KS.topk(H((2, 9), dt), 3, True, H((2, 3), dt), H((2, 3), i64))
        for op in (KS.KTH, KS.MEDIAN, KS.NANMEDIAN, KS.MODE):
            KS.select(H((2, 9), dt), op, 2, H((2,), dt), H((2,), i64))
    KS.sort(H((2, 9), b1), H((2, 9), b1), H((2, 9), i64), False)
    for dt in (f64, i64):
        for right in (False, True):
            KS.searchsorted(H((1, 9), dt), H((2, 4), dt), right, H((2, 4), i64))
    for dt in (f32, f64, i64, b1):
        KI.tri(H((2, 3, 4), dt), H((2, 3, 4), dt), 1, True)
    for dt in (f32, f64):
        KRd.logcumsumexp(H((2, 9, 3), dt), H((2, 9, 3), dt))
    KI.flat_rows(H((2, 4), i64), H((2,), i64), H((4,), i64))
    KI.exclusive_ranks(H((9,), b1), H((10,), i64))
    return compiled, failures


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
    ap.add_argument("--ptx", action="store_true",
                    help="only compile every CUDA kernel to PTX (cc 9.0) through libNVVM, no GPU needed; exit 3 "
                         "when libNVVM is missing")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    if args.ptx:
        return _ptx_main(args.out_dir, t_start)
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


def _ptx_main(out_dir, t_start):
    os.environ.pop("NUMBA_ENABLE_CUDASIM", None)
    try:
        from numba.cuda.cudadrv import nvvm
        nvvm.NVVM()
    except Exception as e:
        print(f"gpu_check --ptx: libNVVM is not available ({type(e).__name__}: {e})")
        return 3
    compiled, failures = ptx_check()
    res = dict(when=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), mode="ptx (cc 9.0)",
               compiled=len(compiled), failures=failures, seconds=round(time.perf_counter() - t_start, 1))
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, "ptx_check.json.tmp")
    with open(tmp, "w") as f:
        json.dump(res, f, indent=2)
    os.replace(tmp, os.path.join(out_dir, "ptx_check.json"))
    print(f"gpu_check --ptx: {len(compiled)} kernel signatures compiled, {len(failures)} failed "
          f"({res['seconds']} s)")
    for f_ in failures:
        print("FAILED", f_)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

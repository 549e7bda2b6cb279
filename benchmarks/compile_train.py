"""Compiled training (issue 6.3/6.6), outside the lead's runner: cold/warm compile and steady step.

    .venv/bin/python benchmarks/compile_train.py            # jitorch: cold, warm, steady
    .venv/bin/python benchmarks/compile_train.py --torch    # also torch.compile cold/warm and torch eager
    .venv/bin/python benchmarks/compile_train.py --only steady
    .venv/bin/python benchmarks/compile_train.py --breakdown   # time per executor statement kind

The step: MLP 784-512-512-10, batch 256, SGD momentum 0.9, cross-entropy; forward, backward and
``opt.step()`` inside ONE compiled function (``compile(train_step)``); ``compile(model)`` (compiled
forward+backward, loss and step eager) is timed too. Every measurement runs in a NEW process:

- ``cold``: an empty ``JITORCH_CACHE_DIR`` (generated kernels: none on disk, none compiled). Two eager
  steps run first, untimed, so the eager kernels this step uses (jitorch's own generated elementwise
  kernels, which also live in that folder) are compiled before the clock starts: the cold time is the
  compiler's (trace, joint graph, partition, codegen, numba compiles of the fused kernels).
  ``kernels/``' own numba caches (``kernels/__pycache__``, the library's hand-written kernels) are
  whatever they are on the machine (warm after any earlier run): printed as ``library numba cache``.
  ``cold_all`` is the same without the eager warm-up: the first step ever on an empty cache folder,
  eager kernels included.
- ``warm``: a second new process with that cache folder filled.
- torch (``--torch``): ``torch.compile`` cold with a fresh ``TORCHINDUCTOR_CACHE_DIR`` and
  ``TORCHINDUCTOR_FORCE_DISABLE_CACHES=1``, warm = a new process with that cache dir (caches on).

Times: ``first_call_s`` = from the first call of the compiled step to its result (first step: it also
creates the momentum buffers when they do not exist; after the eager warm-up they exist, so one graph),
``second_call_s`` the next call; ``import_s`` separately; ``first_call_cpu_s`` the process's CPU time over the
first call (steadier than wall time on a loaded machine: compiles are single-threaded). The load average is printed with every
number: on the shared 2-core machine compare ratios taken in the same run, not absolute times.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = r'''
import json, os, sys, time
t0 = time.perf_counter()
lib, mode = sys.argv[1], sys.argv[2]
if lib == "torch":
    import torch as T
else:
    import jitorch as T
import_s = time.perf_counter() - t0
nn, F = T.nn, T.nn.functional
T.manual_seed(0)
model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
x, y = T.randn(256, 784), T.randint(0, 10, (256,))
opt = T.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

def step(m):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    opt.step()
    return loss

out = {"import_s": import_s, "load": os.getloadavg()[0]}
if mode != "cold_all":
    step(model); step(model)  # eager kernels compiled or loaded, momentum buffers made: not counted
if mode in ("cold", "warm", "cold_all"):
    whole = T.compile(lambda: step(model))
    c, t = time.process_time(), time.perf_counter(); whole()
    out["first_call_s"], out["first_call_cpu_s"] = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter(); whole(); out["second_call_s"] = time.perf_counter() - t
else:
    def timed(f, n=21):
        for _ in range(3): f()
        ts = []
        for _ in range(n):
            t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
        return sorted(ts)[n // 2], min(ts)
    rows = {"eager": lambda: step(model)}
    if lib == "jitorch":
        cm = T.compile(model)
        rows["compile(model)"] = lambda: step(cm)
        rows["compile(train_step)"] = T.compile(lambda: step(model))
    for k, f in rows.items():
        out[k] = timed(f)
    out["load_after"] = os.getloadavg()[0]
print(json.dumps(out))
'''


BREAKDOWN = r'''
import collections, json, os, re, time
import jitorch as T
nn, F = T.nn, T.nn.functional
T.manual_seed(0)
model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
x, y = T.randn(256, 784), T.randint(0, 10, (256,))
opt = T.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

def step(m):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    opt.step()
    return loss

step(model); step(model)
whole = T.compile(lambda: step(model))
whole(); whole()
t = whole._last
lines = [ln for ln in t.code.split("\n") if ln.strip() and not ln.startswith("#")]
out, labels = [lines[0], "    _tt = _time()"], []
for ln in lines[1:]:
    if ln.strip().startswith("return"):
        out.append(ln)
        continue
    m = re.search(r"_call\('(\w+)'", ln) or re.search(r"(_k\w+)\(", ln)
    labels.append(m.group(1) if m else ("buffers" if ln.split("=")[0].strip().startswith("buf_") else "wraps"))
    out += [ln, f"    _acc[{len(labels) - 1}] += _time() - _tt; _tt = _time()"]
ns = dict(t._run.__globals__)
acc = [0.0] * len(labels)
ns.update(_acc=acc, _time=time.perf_counter)
exec("\n".join(out), ns)
t._run = ns[lines[0][4:].split("(")[0]]
n = 30
t0 = time.perf_counter()
for _ in range(n):
    whole()
step_s = (time.perf_counter() - t0) / n
agg = collections.Counter()
for name, a in zip(labels, acc):
    agg["matmul (BLAS)" if name == "matmul" else "fused kernels" if name.startswith("_k") else name] += a / n
print(json.dumps({"step_s": step_s, "parts": agg.most_common(), "load": os.getloadavg()[0]}))
'''


def breakdown():
    """Where the compiled step's time goes: each executor statement timed (adds ~1 us per statement)."""
    res = subprocess.run([sys.executable, "-c", BREAKDOWN], capture_output=True, text=True, timeout=900,
                         env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
    if res.returncode != 0:
        raise SystemExit(res.stderr[-4000:])
    r = json.loads(res.stdout.strip().splitlines()[-1])
    total = r["step_s"]
    print(f"compile(train_step) {total * 1e3:.2f} ms per step (load {r['load']:.1f}); executor statements:")
    for name, s in r["parts"]:
        print(f"  {name:16s} {s * 1e3:8.3f} ms  {s / total:5.1%}")
    rest = total - sum(s for _, s in r["parts"])
    print(f"  {'(outside)':16s} {rest * 1e3:8.3f} ms  {rest / total:5.1%}  guards, binding, p.grad, version bumps")


def run(lib, mode, cache):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if lib == "jitorch":
        env["JITORCH_CACHE_DIR"] = cache
    else:
        env["TORCHINDUCTOR_CACHE_DIR"] = cache
        env.pop("TORCHINDUCTOR_FORCE_DISABLE_CACHES", None)
        if mode in ("cold", "cold_all"):
            env["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"
    res = subprocess.run([sys.executable, "-c", CHILD, lib, mode], capture_output=True, text=True, env=env,
                         timeout=1800)
    if res.returncode != 0:
        raise SystemExit(res.stderr[-4000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def _library_cache_state():
    folder = os.path.join(ROOT, "kernels", "__pycache__")
    try:
        n = sum(1 for f in os.listdir(folder) if f.endswith(".nbc"))
    except OSError:
        n = 0
    return f"{n} compiled entries in kernels/__pycache__" + (" (warm)" if n else " (cold)")


def _first(r, lib, mode):
    return (f"{lib:8s} {mode:9s} first call {r['first_call_s']:6.2f} s (cpu {r['first_call_cpu_s']:6.2f} s), "
            f"second {r['second_call_s']:6.3f} s, "
            f"import {r['import_s']:.2f} s (load {r['load']:.1f})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--torch", action="store_true", help="also torch.compile (cold compile takes tens of seconds)")
    ap.add_argument("--only", choices=["compile", "steady"], default=None)
    ap.add_argument("--cold-all", action="store_true", help="also the first step ever (eager kernels cold too)")
    ap.add_argument("--breakdown", action="store_true", help="only: where the compiled step's time goes")
    a = ap.parse_args(argv)
    if a.breakdown:
        breakdown()
        return
    libs = ["jitorch"] + (["torch"] if a.torch else [])
    print(f"library numba cache: {_library_cache_state()}")
    res = {}
    for lib in libs:
        with tempfile.TemporaryDirectory(prefix=f"{lib}-bench-cache-") as cache:
            if a.only != "steady":
                res[lib, "cold"] = run(lib, "cold", cache)
                print(_first(res[lib, "cold"], lib, "cold"), flush=True)
                res[lib, "warm"] = run(lib, "warm", cache)
                print(_first(res[lib, "warm"], lib, "warm"), flush=True)
            if a.only != "compile":
                res[lib, "steady"] = r = run(lib, "steady", cache)
                rows = ", ".join(f"{k} {v[0] * 1e3:.1f} ms (best {v[1] * 1e3:.1f})" for k, v in r.items()
                                 if isinstance(v, list))
                print(f"{lib:8s} steady    {rows} (load {r['load']:.1f} -> {r['load_after']:.1f})", flush=True)
        if a.cold_all and a.only != "steady":
            with tempfile.TemporaryDirectory(prefix=f"{lib}-bench-cache-") as cache:
                res[lib, "cold_all"] = run(lib, "cold_all", cache)
                print(_first(res[lib, "cold_all"], lib, "cold_all"), flush=True)
    if ("torch", "cold") in res and ("jitorch", "cold") in res:
        jc, tc = res["jitorch", "cold"]["first_call_s"], res["torch", "cold"]["first_call_s"]
        print(f"cold: jitorch / torch.compile = {jc / tc:.3f} (goal <= 0.1); warm jitorch "
              f"{res['jitorch', 'warm']['first_call_s']:.2f} s (goal < 0.3 s)")
    if ("torch", "steady") in res and ("jitorch", "steady") in res:
        te = res["torch", "steady"]["eager"][0]
        j = res["jitorch", "steady"]
        print(f"steady: compile(train_step) / torch eager = {j['compile(train_step)'][0] / te:.2f}, "
              f"compile(model) / torch eager = {j['compile(model)'][0] / te:.2f} (goal <= 0.7; different "
              f"processes, run one after the other)")


if __name__ == "__main__":
    main()

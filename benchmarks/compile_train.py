"""Extra measurements for compiled training (issue 6.3/6.6), outside the lead's runner.

    .venv/bin/python benchmarks/compile_train.py            # all, in fresh child processes

Rows (MLP 784-512-512-10, batch 256, SGD momentum 0.9, cross-entropy; eager kernels warm in
every child, so the times are the compiler's own):

- cold: first compiled training step with an empty JITORCH_CACHE_DIR (trace, joint trace,
  partition, numba compile of the fused kernels);
- warm: the same in a new process with that cache filled;
- steady: median step time of eager, ``compile(model)`` (compiled forward+backward, step outside)
  and ``compile(train_step)`` (backward and ``opt.step()`` inside: one graph, updates in one kernel).

The machine's load average is printed with every number: compare ratios, not absolute times.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

CHILD = r'''
import json, os, sys, time
import jitorch as T
nn, F = T.nn, T.nn.functional
mode = sys.argv[1]
T.default_generator.manual_seed(0)
model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
x, y = T.randn(256, 784), T.randint(0, 10, (256,))
opt = T.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

def eager_step(m):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    opt.step()
    return loss

eager_step(model); eager_step(model)  # eager kernels compiled or loaded: not counted
out = {"load": os.getloadavg()[0]}
if mode in ("cold", "warm"):
    cm = T.compile(model)
    t = time.perf_counter(); eager_step(cm); out["first_step_s"] = time.perf_counter() - t
else:
    def timed(f, n=15):
        for _ in range(3): f()
        ts = []
        for _ in range(n):
            t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
        return sorted(ts)[n // 2]
    cm = T.compile(model)
    whole = T.compile(lambda: eager_step(model))
    out["eager_ms"] = timed(lambda: eager_step(model)) * 1e3
    out["compiled_model_ms"] = timed(lambda: eager_step(cm)) * 1e3
    out["compiled_step_ms"] = timed(whole) * 1e3
    out["load_after"] = os.getloadavg()[0]
print(json.dumps(out))
'''


def run(mode, cache):
    env = dict(os.environ, JITORCH_CACHE_DIR=cache)
    res = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, env=env, timeout=900)
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    with tempfile.TemporaryDirectory(prefix="jitorch-bench-cache-") as cache:
        cold = run("cold", cache)
        warm = run("warm", cache)
        steady = run("steady", cache)
    print(f"cold first compiled step: {cold['first_step_s']:.2f} s (load {cold['load']:.1f})")
    print(f"warm first compiled step (new process): {warm['first_step_s']:.2f} s (load {warm['load']:.1f})")
    print(f"steady step: eager {steady['eager_ms']:.1f} ms, compile(model) {steady['compiled_model_ms']:.1f} ms, "
          f"compile(train_step) {steady['compiled_step_ms']:.1f} ms (load {steady['load']:.1f} -> "
          f"{steady['load_after']:.1f})")


if __name__ == "__main__":
    main()

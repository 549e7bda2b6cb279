"""Microbenchmark of the reduction kernels (kernels/reduce.py) against NumPy and torch.

    .venv/bin/python benchmarks/kernels_reduce.py [--repeats 31] [--size 4096]

Times sum over the last axis, sum over axis 0, softmax over the last axis (and a few more
reductions) on a (size, size) float32 array. Every time is the median of ``repeats`` calls,
taken after waiting (up to 5 s) for both CPUs to be at least 90% idle, because other jobs
share this machine. torch runs in a subprocess: its OpenMP pool and numba's, in one process,
slow each other down (research/feasibility.md section 2).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def wait_for_idle(limit_s=5.0, idle_fraction=0.9):
    """Wait until the CPUs were idle for idle_fraction of a 0.5 s window; False on timeout."""
    def snapshot():
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)

    deadline = time.monotonic() + limit_s
    while True:
        idle0, total0 = snapshot()
        time.sleep(0.5)
        idle1, total1 = snapshot()
        if (idle1 - idle0) >= idle_fraction * (total1 - total0):
            return True
        if time.monotonic() > deadline:
            return False


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3), float(np.min(times) * 1e3)


def cases_numpy_jitorch(a):
    from jitorch.kernels import reduce as R

    n0, n1 = a.shape
    rows, cols = a.reshape(n0, n1, 1), a.reshape(1, n0, n1)
    out_rows, out_cols = np.empty((n0, 1), a.dtype), np.empty((1, n1), a.dtype)
    out_full = np.empty((n0, n1, 1), a.dtype)
    idx = np.empty((n0, 1), np.int64)

    def np_softmax():
        e = np.exp(a - a.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    return {
        "sum last axis": {
            "numpy": lambda: a.sum(1),
            "jitorch": lambda: R.sum_(rows, out_rows),
            "jitorch serial": lambda: R.sum_(rows, out_rows, parallel=False),
        },
        "sum axis 0": {
            "numpy": lambda: a.sum(0),
            "jitorch": lambda: R.sum_(cols, out_cols),
            "jitorch serial": lambda: R.sum_(cols, out_cols, parallel=False),
        },
        "softmax last axis": {
            "numpy": np_softmax,
            "jitorch": lambda: R.softmax(rows, out_full),
            "jitorch serial": lambda: R.softmax(rows, out_full, parallel=False),
        },
        "max last axis": {
            "numpy": lambda: a.max(1),
            "jitorch": lambda: R.max_(rows, out_rows),
        },
        "argmax last axis": {
            "numpy": lambda: a.argmax(1),
            "jitorch": lambda: R.argmax(rows, idx),
        },
        "logsumexp last axis": {
            "jitorch": lambda: R.logsumexp(rows, out_rows),
        },
    }


def cases_torch(a):
    import torch

    t = torch.from_numpy(a)
    return {
        "sum last axis": {"torch": lambda: t.sum(1)},
        "sum axis 0": {"torch": lambda: t.sum(0)},
        "softmax last axis": {"torch": lambda: torch.softmax(t, 1)},
        "max last axis": {"torch": lambda: t.amax(1)},
        "argmax last axis": {"torch": lambda: t.argmax(1)},
        "logsumexp last axis": {"torch": lambda: torch.logsumexp(t, 1)},
    }


def run(cases, repeats):
    results = {}
    for case, impls in cases.items():
        for name, fn in impls.items():
            idle = wait_for_idle()
            med, best = median_ms(fn, repeats)
            results.setdefault(case, {})[name] = (med, best, idle)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    a = np.random.default_rng(0).random((args.size, args.size), dtype=np.float32)
    if args.torch_only:
        print(json.dumps(run(cases_torch(a), args.repeats)))
        return
    import numba
    from jitorch.kernels import _config

    results = run(cases_numpy_jitorch(a), args.repeats)
    cmd = [sys.executable, __file__, "--torch-only", f"--repeats={args.repeats}",
           f"--size={args.size}"]
    torch_out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if torch_out.returncode == 0:
        for case, impls in json.loads(torch_out.stdout.strip().splitlines()[-1]).items():
            results.setdefault(case, {}).update(impls)
    else:
        print("torch run failed:", torch_out.stderr[-500:])
    print(f"({args.size}, {args.size}) float32, {numba.get_num_threads()} numba threads, "
          f"PARALLEL_THRESHOLD={_config.PARALLEL_THRESHOLD}; median / best of {args.repeats} (ms)")
    for case, impls in results.items():
        cells = [f"{name} {med:.2f} / {best:.2f}{'' if idle else ' (busy)'}"
                 for name, (med, best, idle) in impls.items()]
        print(f"{case:22s} " + " | ".join(cells))


if __name__ == "__main__":
    main()

"""Microbenchmark of the reduction kernels (kernels/reduce.py) against NumPy and torch.

    .venv/bin/python benchmarks/kernels_reduce.py [--rounds 41] [--size 4096]

Times, on a (size, size) float32 array: sum over the last axis, sum over axis 0, softmax
over the last axis, and a few other reductions. Other jobs share the machine, so within each
case the implementations are timed in interleaved rounds (each round calls every one of them
once, in rotating order) and every implementation sees the same background load; the table
gives the median and the best round in ms.

torch runs in the same process. Its OpenMP runtime and numba's are separate, and with the
default active waiting their idle threads spin and slow each other down (about 8 ms per
parallel call, research/feasibility.md section 2), so this script sets
OMP_WAIT_POLICY=PASSIVE (unless already set) before either is loaded.
"""
import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402


def cases(a):
    from jitorch.kernels import reduce as R

    n0, n1 = a.shape
    rows, cols = a.reshape(n0, n1, 1), a.reshape(1, n0, n1)
    out_rows, out_cols = np.empty((n0, 1), a.dtype), np.empty((1, n1), a.dtype)
    out_full = np.empty((n0, n1, 1), a.dtype)
    idx = np.empty((n0, 1), np.int64)

    def np_softmax():
        e = np.exp(a - a.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    table = {
        "sum last axis": {
            "numpy": lambda: a.sum(1),
            "jitorch": lambda: R.sum_(rows, out_rows),
            "jitorch 1 thread": lambda: R.sum_(rows, out_rows, parallel=False),
        },
        "sum axis 0": {
            "numpy": lambda: a.sum(0),
            "jitorch": lambda: R.sum_(cols, out_cols),
            "jitorch 1 thread": lambda: R.sum_(cols, out_cols, parallel=False),
        },
        "softmax last axis": {
            "numpy": np_softmax,
            "jitorch": lambda: R.softmax(rows, out_full),
            "jitorch 1 thread": lambda: R.softmax(rows, out_full, parallel=False),
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
    try:
        import torch
    except ImportError:
        return table
    t = torch.from_numpy(a)
    table["sum last axis"]["torch"] = lambda: t.sum(1)
    table["sum axis 0"]["torch"] = lambda: t.sum(0)
    table["softmax last axis"]["torch"] = lambda: torch.softmax(t, 1)
    table["max last axis"]["torch"] = lambda: t.amax(1)
    table["argmax last axis"]["torch"] = lambda: t.argmax(1)
    table["logsumexp last axis"]["torch"] = lambda: torch.logsumexp(t, 1)
    return table


def time_interleaved(impls, rounds):
    """{name: (median ms, best ms)} from rounds that call every implementation once."""
    names = list(impls)
    for fn in impls.values():
        fn()
    samples = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            impls[name]()
            samples[name].append(time.perf_counter() - start)
    return {name: (float(np.median(s)) * 1e3, float(np.min(s)) * 1e3)
            for name, s in samples.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args()
    a = np.random.default_rng(0).random((args.size, args.size), dtype=np.float32)
    table = cases(a)

    import numba
    from jitorch.kernels import _config
    threads = f"{numba.get_num_threads()} numba threads"
    if "torch" in table["sum last axis"]:
        import torch
        threads += f", {torch.get_num_threads()} torch threads"
    print(f"({args.size}, {args.size}) float32, {threads}, "
          f"PARALLEL_THRESHOLD={_config.PARALLEL_THRESHOLD}, load average "
          f"{os.getloadavg()[0]:.1f}; median / best of {args.rounds} rounds, ms")
    for case, impls in table.items():
        cells = [f"{name} {med:.2f} / {best:.2f}"
                 for name, (med, best) in time_interleaved(impls, args.rounds).items()]
        print(f"{case:20s} " + " | ".join(cells), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Training-step probe for the issue 3/4 rows: MLP fwd+bwd, MLP SGD step, LeNet SGD step.

    .venv/bin/python -m benchmarks.train_steps [--threads N] [--libs jitorch,torch] [--rows mlp,lenet]
                                               [--steps 20] [--rounds 7] [--profile ROW]

Each library runs in its own process (like ``python -m benchmarks``). Per row it prints the best and
median wall time per step over ``rounds`` rounds of ``steps`` steps, the median process CPU time per
step (all threads) and the minor page faults per step. On a machine shared with other jobs, the
CPU time and the page faults are the numbers to compare between code versions; the wall time is
only meaningful with the load average printed next to it. ``--threads N`` calls
``set_num_threads(N)`` in both libraries first (default: each library's own default).
``--profile ROW`` prints a CPU-time cProfile of 20 jitorch steps of ROW instead (SORT=cumulative to reorder).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROWS = ("mlp_fwd_bwd", "mlp_sgd", "lenet_sgd")

_CHILD = r"""
import json, os, resource, statistics, sys, time
lib, rows, threads, steps, rounds, profile = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
T = __import__(lib)
if threads > 0:
    T.set_num_threads(threads)
nn = T.nn


def build(row):
    T.manual_seed(0)
    if row.startswith("mlp"):
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
        x, y = T.randn(256, 784), T.randint(0, 10, (256,))
    else:
        model = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 10))
        x, y = T.randn(64, 1, 28, 28), T.randint(0, 10, (64,))
    loss_fn = nn.CrossEntropyLoss()
    if row == "mlp_fwd_bwd":
        def step():
            model.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
        return step
    opt = T.optim.SGD(model.parameters(), lr=0.01, momentum=0.9 if row == "mlp_sgd" else 0)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return step


out = {}
for row in rows:
    step = build(row)
    for _ in range(5):
        step()
    if profile == row:
        import cProfile, pstats
        pr = cProfile.Profile(time.process_time)  # CPU time: a loaded machine preempts wall time
        pr.enable()
        for _ in range(20):
            step()
        pr.disable()
        pstats.Stats(pr, stream=sys.stderr).sort_stats(os.environ.get("SORT", "tottime")).print_stats(35)
        continue
    walls, cpus, faults = [], [], []
    for _ in range(rounds):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(steps):
            step()
        walls.append((time.perf_counter() - t0) / steps)
        cpus.append((time.process_time() - c0) / steps)
        faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / steps)
    out[row] = dict(best=min(walls), median=statistics.median(walls), cpu=statistics.median(cpus),
                    faults=statistics.median(faults))
print(json.dumps(out))
"""


def _load():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--libs", default="jitorch,torch")
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--profile", default="")
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE for the jitorch process (repeatable)")
    a = p.parse_args(argv)
    rows = [r for r in a.rows.split(",") if r]
    rows = [r for r in ROWS if any(r == q or r.startswith(q) for q in rows)]
    libs = ["jitorch"] if a.profile else a.libs.split(",")
    results = {}
    for lib in libs:
        env = dict(os.environ)
        if lib == "jitorch":
            env.update(kv.split("=", 1) for kv in a.env)
        before = _load()
        r = subprocess.run([sys.executable, "-c", _CHILD, lib, ",".join(rows), str(a.threads), str(a.steps),
                            str(a.rounds), a.profile], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(f"{lib}: failed\n{r.stderr[-3000:]}", file=sys.stderr)
            continue
        if a.profile:
            print(r.stderr)
            return
        results[lib] = (json.loads(r.stdout.strip().splitlines()[-1]), before, _load())
    print(f"threads={a.threads or 'default'} env={a.env}")
    print(f"{'row':<12} {'lib':<8} {'best ms':>8} {'median ms':>10} {'cpu ms':>8} {'faults':>8}  load before->after")
    for row in rows:
        for lib, (res, b, e) in results.items():
            m = res.get(row)
            if m:
                print(f"{row:<12} {lib:<8} {m['best'] * 1e3:8.2f} {m['median'] * 1e3:10.2f} {m['cpu'] * 1e3:8.2f} "
                      f"{m['faults']:8.0f}  {b:.2f}->{e:.2f}")


if __name__ == "__main__":
    main()

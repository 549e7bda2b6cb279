"""Data-parallel scaling of the digits CNN training (issue 10.6), outside the lead's runner.

    .venv/bin/python benchmarks/ddp_scaling.py                      # batches 64, 256, 1024; 3 repeats
    .venv/bin/python benchmarks/ddp_scaling.py --batches 256 --repeats 5 --json out.json
    .venv/bin/python benchmarks/ddp_scaling.py --mode jobs      # a separate mpiexec job per number

Each measurement is one MPI job of ``examples/ddp_train.py --bench``: the training step of the
example (zero_grad, forward, cross-entropy, backward with DDP's all-reduce, SGD step, the
DistributedSampler/DataLoader across epoch boundaries) timed over ``--steps`` steady-state steps
after ``--warmup`` untimed ones, evaluation and printing outside the timed region; every rank
starts its timed region after a barrier, and samples/s is the global batch times the steps over
the slowest rank's time. Each rank is pinned to one thread (``NUMBA_NUM_THREADS=1
OPENBLAS_NUM_THREADS=1 JITORCH_DYNAMIC_THREADS=0``). Three configurations per global batch B:

- ``1 rank``: one rank trains at batch B;
- ``2 ranks``: two ranks train one model with DDP, B/2 per rank (the same per-sample work, split);
- ``ceiling``: two 1-rank trainings at batch B running at the same time, no communication between
  them (each keeps training after its timed steps until the other finished its own). Their summed
  samples/s over one rank's is the most any 2-rank run can reach on this machine (shared caches,
  memory bandwidth, clock).

``--mode interleaved`` (default): one ``mpiexec -n 2`` job per batch runs ``--repeats`` rounds of
the three phases back to back (``ddp_train.py --bench --interleave``; for "1 rank" rank 0 trains
on a process group of its own while rank 1 sleeps in a barrier), so the three are measured
seconds apart under the same load. ``--mode jobs``: each measurement is its own job, exactly the
issue's commands (``mpiexec -n 1``, ``mpiexec -n 2``, ``mpiexec -n 2 ... --independent``),
interleaved within each repeat. The table gives medians over the repeats, the median of the
per-repeat ratios and their range. The machine's load average is printed with every number: on
a shared machine compare ratios, and take the final numbers on an idle one.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ddp_train.py"
THREAD_ENV = {"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1", "JITORCH_DYNAMIC_THREADS": "0"}


def _mpiexec():
    here = pathlib.Path(sys.executable).parent
    for name in ("mpiexec", "mpirun"):
        if (here / name).exists():
            return str(here / name)
    found = shutil.which("mpiexec") or shutil.which("mpirun")
    if found is None:
        raise SystemExit("no mpiexec: pip install 'jitorch[distributed]' (mpi4py and the mpich wheel)")
    return found


def default_steps(batch):
    """About 32k samples per measurement (1.5-3 s of training here), at least 40 steps."""
    return max(40, 32768 // batch)


def run_one(ranks, batch, steps, warmup, extra=(), mpiexec_args=(), timeout=900):
    """One MPI job of ``ddp_train.py --bench``; returns its ``BENCH`` record (phase -> rounds)."""
    env = dict(os.environ)
    env.update(THREAD_ENV)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        env.pop(k, None)
    cmd = [_mpiexec(), *mpiexec_args, "-n", str(ranks), sys.executable, str(EXAMPLE), "--bench",
           "--batch-size", str(batch), "--steps", str(steps), "--warmup", str(warmup), *extra]
    load = os.getloadavg()[0]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(ROOT))
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc={p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    rec = json.loads(line[len("BENCH "):])
    rec["load_before"] = load
    return rec


# (name in the table, phase in ddp_train.py's record, ranks, flags) for --mode jobs
JOBS = (("1 rank", "solo", 1, ()), ("2 ranks", "ddp", 2, ()), ("ceiling", "independent", 2, ("--independent",)))
PHASE = {"solo": "1 rank", "ddp": "2 ranks", "independent": "ceiling"}


def _wait_share(rec):
    return max(w / s for w, s in zip(rec["wait_s"], rec["s"]) if s)


def _cpu_per_step(rec, steps, exclude_wait=True):
    """The busiest rank's CPU seconds per step (without the all-reduce waits' polling)."""
    return max((c - (w if exclude_wait else 0.0)) / steps for c, w in zip(rec["cpu_s"], rec["wait_cpu_s"]))


def measure(batches, repeats, warmup, steps=None, mode="interleaved", mpiexec_args=(), log=print):
    rows = []
    for b in batches:
        n_steps = steps or default_steps(b)
        runs = {name: [] for name, _, _, _ in JOBS}
        if mode == "interleaved":
            rec = run_one(2, b, n_steps, warmup, ("--interleave", "--rounds", str(repeats)), mpiexec_args)
            for ph, rounds in rec["phases"].items():
                runs[PHASE[ph]] = rounds
            for rep in range(repeats):
                for name in runs:
                    r = runs[name][rep]
                    log(f"  B={b:5d} round {rep + 1}/{repeats} {name:8s} {r['samples_per_s']:9.0f} samples/s  "
                        f"(comm wait {100 * _wait_share(r):4.1f}% of a rank's time, load {r['load']:.2f})")
        else:
            for rep in range(repeats):
                for name, ph, ranks, flags in (JOBS if rep % 2 == 0 else JOBS[::-1]):
                    rec = run_one(ranks, b, n_steps, warmup, flags, mpiexec_args)
                    r = rec["phases"][ph][0]
                    runs[name].append(r)
                    log(f"  B={b:5d} repeat {rep + 1}/{repeats} {name:8s} {r['samples_per_s']:9.0f} samples/s  "
                        f"(comm wait {100 * _wait_share(r):4.1f}% of a rank's time, "
                        f"load {rec['load_before']:.2f}-{r['load']:.2f})")
        sps = {k: [r["samples_per_s"] for r in v] for k, v in runs.items()}
        ratio = [a / o for a, o in zip(sps["2 ranks"], sps["1 rank"])]
        ceil = [a / o for a, o in zip(sps["ceiling"], sps["1 rank"])]
        # CPU-time view, much less sensitive to other processes than wall time: one rank's CPU per step at
        # B over a DDP rank's at B/2 without its waits is what 2 ranks would give with a core each and no
        # waiting; twice one rank's over an independent rank's is the slowdown of running side by side
        cpu_ratio = [_cpu_per_step(o, n_steps) / _cpu_per_step(d, n_steps)
                     for o, d in zip(runs["1 rank"], runs["2 ranks"])]
        cpu_ceil = [2 * _cpu_per_step(o, n_steps) / (sum(i["cpu_s"]) / len(i["cpu_s"]) / n_steps)
                    for o, i in zip(runs["1 rank"], runs["ceiling"])]
        loads = [r["load"] for v in runs.values() for r in v]
        rows.append({"batch": b, "steps": n_steps, "warmup": warmup, "repeats": repeats, "mode": mode,
                     "one_rank": statistics.median(sps["1 rank"]), "two_ranks": statistics.median(sps["2 ranks"]),
                     "independent_pair": statistics.median(sps["ceiling"]),
                     "ratio": statistics.median(ratio), "ratio_runs": ratio,
                     "ceiling": statistics.median(ceil), "ceiling_runs": ceil,
                     "comm_wait_share": statistics.median(_wait_share(r) for r in runs["2 ranks"]),
                     "cpu_ratio": statistics.median(cpu_ratio), "cpu_ceiling": statistics.median(cpu_ceil),
                     "load_min": min(loads), "load_max": max(loads), "runs": runs})
    return rows


def table(rows):
    out = ["| global batch B | steps | 1 rank | 2 ranks | 2 ranks / 1 rank | ceiling (2 independent / 1) | "
           "2 ranks / ceiling | comm wait | CPU-time ratio | CPU-time ceiling | load |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        spread = f" ({min(r['ratio_runs']):.2f}-{max(r['ratio_runs']):.2f})" if len(r["ratio_runs"]) > 1 else ""
        cs = f" ({min(r['ceiling_runs']):.2f}-{max(r['ceiling_runs']):.2f})" if len(r["ceiling_runs"]) > 1 else ""
        out.append(f"| {r['batch']} | {r['steps']} | {r['one_rank']:,.0f} | {r['two_ranks']:,.0f} | "
                   f"{r['ratio']:.2f}x{spread} | {r['ceiling']:.2f}x{cs} | {r['ratio'] / r['ceiling']:.2f} | "
                   f"{100 * r['comm_wait_share']:.0f}% | {r['cpu_ratio']:.2f}x | {r['cpu_ceiling']:.2f}x | "
                   f"{r['load_min']:.1f}-{r['load_max']:.1f} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", default="64,256,1024", help="global batch sizes, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: about 32k samples, >= 40)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--mode", choices=("interleaved", "jobs"), default="interleaved",
                    help="three phases in one 2-rank job per batch (default), or one job per measurement")
    ap.add_argument("--mpiexec-args", default="", help="extra mpiexec options, e.g. '-bind-to core'")
    ap.add_argument("--json", default=None, help="also write the rows (and every run) here")
    args = ap.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",") if b]
    for b in batches:
        if b % 2:
            raise SystemExit(f"global batch {b} must be even (split over 2 ranks)")
    t0 = time.time()
    print(f"digits CNN, examples/ddp_train.py --bench, one thread per rank; load {os.getloadavg()[0]:.2f}",
          flush=True)
    rows = measure(batches, args.repeats, args.warmup, args.steps, args.mode, args.mpiexec_args.split(),
                   log=lambda s: print(s, flush=True))
    print()
    print(table(rows))
    print(f"\n{time.time() - t0:.0f} s; load average now {os.getloadavg()[0]:.2f}")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(rows, f, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()

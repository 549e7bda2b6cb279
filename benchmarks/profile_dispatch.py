"""Where the time of one small jitorch op goes: cProfile of the 1-element eager rows.

    .venv/bin/python benchmarks/profile_dispatch.py [--ops add_1,view_1] [--calls 20000] [--top 12]
    .venv/bin/python benchmarks/profile_dispatch.py --compare [--rounds 15]   # jitorch / torch, interleaved

For each op: the per-call thread CPU time without the profiler (``time.thread_time``: less
disturbed by other jobs on a loaded machine than wall time; the 1-element ops are
single-threaded), the number of profiled function calls per op (independent of machine load),
then cProfile's functions sorted by own time, in ns per op call. cProfile adds a fixed cost to
every Python-level function call, so functions called many times per op look heavier than they
are; compare the counts ("calls/op") as much as the times.

``--compare`` times jitorch and torch in the same process, alternating short rounds and keeping
each library's fastest round: on a loaded machine both see the same load, so the ratio is far
steadier than two separate runs (torch must be installed).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cases import CASES  # noqa: E402


def cpu_per_call(code, ns, calls):
    exec(code, ns)  # warm
    t0 = time.thread_time()
    for _ in range(calls):
        exec(code, ns)
    return (time.thread_time() - t0) / calls


def compare(wanted, calls, rounds):
    import jitorch
    import torch
    by_name = {c.name: c for c in CASES}
    print(f"{'op':14s} {'jitorch ns':>11s} {'torch ns':>9s} {'ratio':>6s}   (thread CPU per call, best of "
          f"{rounds} interleaved rounds of {calls})")
    empty = min(cpu_per_call(compile("pass", "<b>", "exec"), {}, calls) for _ in range(3))
    for name in wanted:
        c = by_name[name]
        runs = []
        for lib, mod in (("jitorch", jitorch), ("torch", torch)):
            ns, stmt = c.build(lib, mod)
            runs.append((compile(stmt, "<bench>", "exec"), ns))
        best = [float("inf"), float("inf")]
        for _ in range(rounds):
            for i, (code, ns) in enumerate(runs):
                best[i] = min(best[i], cpu_per_call(code, ns, calls) - empty)
        print(f"{name:14s} {best[0] * 1e9:11.0f} {best[1] * 1e9:9.0f} {best[0] / best[1]:6.2f}")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--ops", default="add_1,mul_1,exp_1,sum_1,relu_1,matmul_1,index_1,view_1,add_scalar_1,iadd_1")
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--lib", default="jitorch", choices=["jitorch", "torch"])
    p.add_argument("--compare", action="store_true", help="jitorch vs torch, interleaved rounds (no profile)")
    p.add_argument("--rounds", type=int, default=15)
    a = p.parse_args(argv)
    if a.compare:
        return compare(a.ops.split(","), max(1, a.calls // a.rounds), a.rounds)
    if a.lib == "jitorch":
        import jitorch as T
    else:
        import torch as T
    wanted = a.ops.split(",")
    by_name = {c.name: c for c in CASES}
    empty = cpu_per_call(compile("pass", "<b>", "exec"), {}, a.calls)
    for name in wanted:
        c = by_name[name]
        ns, stmt = c.build(a.lib, T)
        code = compile(stmt, "<bench>", "exec")
        t = cpu_per_call(code, ns, a.calls) - empty
        print(f"\n=== {name}: {stmt}   {t * 1e9:.0f} ns CPU per call ({a.lib}, no profiler)")
        if a.lib != "jitorch":
            continue
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(a.calls):
            exec(code, ns)
        prof.disable()
        st = pstats.Stats(prof, stream=io.StringIO())
        rows = []
        for (fn, line, func), (cc, nc, tt, ct, _) in st.stats.items():
            rows.append((tt, ct, nc, f"{Path(fn).name}:{line}({func})" if line else func))
        rows.sort(reverse=True)
        total = sum(r[0] for r in rows)
        ncalls = sum(r[2] for r in rows) / a.calls - 1  # minus the exec() of the statement
        print(f"    {ncalls:.0f} profiled function calls per op (Python functions and C builtins); "
              f"profiled total {total / a.calls * 1e9:.0f} ns/op")
        print("    own ns/op  cum ns/op  calls/op  function")
        for tt, ct, nc, label in rows[:a.top]:
            print(f"    {tt / a.calls * 1e9:9.0f}  {ct / a.calls * 1e9:9.0f}  {nc / a.calls:8.2f}  {label}")


if __name__ == "__main__":
    main()

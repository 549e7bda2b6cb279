"""Worker process: times one group of rows for one library and writes JSON.

    python -m benchmarks._worker --lib jitorch --group eager --out res.json [--cases a,b] ...

Each library runs in its own process so that torch's OpenMP pool and numba's pool never share
one (research/feasibility.md section 2: together every parallel call took ~8 ms); the torch
process never imports numba and the jitorch process never imports torch. Thread counts are
left at each library's default (2 on this machine), as a user would get them; they are
recorded in the output.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import traceback


def _lib_info(lib, T):
    info = {"version": getattr(T, "__version__", "?")}
    if lib == "torch":
        info["threads"] = T.get_num_threads()
        info["interop_threads"] = T.get_num_interop_threads()
        info["numba_loaded"] = "numba" in sys.modules
    elif lib == "jitorch":
        import numba
        import llvmlite
        import llvmlite.binding as llvm
        info.update(numba=numba.__version__, llvmlite=llvmlite.__version__,
                    numba_threads=numba.config.NUMBA_NUM_THREADS,
                    host_cpu=llvm.get_host_cpu_name(),
                    torch_loaded="torch" in sys.modules)
        try:
            info["threading_layer"] = numba.threading_layer()
        except ValueError:  # no parallel kernel ran yet
            info["threading_layer"] = "not initialised"
    elif lib == "numpy":
        info["torch_loaded"] = "torch" in sys.modules
        info["numba_loaded"] = "numba" in sys.modules
    return info


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--lib", required=True, choices=["jitorch", "torch", "numpy"])
    p.add_argument("--group", required=True)
    p.add_argument("--cases", default="")
    p.add_argument("--min-time", type=float, default=0.1)
    p.add_argument("--repeats", type=int, default=11)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)

    from .cases import CASES, Skip
    from ._harness import time_stmt

    t0 = time.perf_counter()
    if a.lib == "jitorch":
        import jitorch as T
    elif a.lib == "torch":
        import torch as T
    else:
        import numpy as T
    import_s = time.perf_counter() - t0
    if a.lib != "numpy":
        T.manual_seed(0)

    wanted = set(filter(None, a.cases.split(",")))
    results = {}
    for c in CASES:
        if c.group != a.group or (wanted and c.name not in wanted):
            continue
        try:
            built = c.build(a.lib, T)
        except Skip as e:
            results[c.name] = {"skipped": str(e)}
            continue
        except Exception as e:  # a broken op is a result too: report it, keep going
            results[c.name] = {"error": f"setup: {type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            continue
        if built is None:
            continue
        ns, stmt = built
        try:
            r = time_stmt(stmt, ns, min_time=a.min_time, repeats=a.repeats, warmup=a.warmup)
            r["stmt"] = stmt
            results[c.name] = r
        except Exception as e:
            results[c.name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        del ns, built
        gc.collect()

    out = {"lib": a.lib, "group": a.group, "import_s": import_s, "pid": os.getpid(),
           "info": _lib_info(a.lib, T), "results": results}
    with open(a.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

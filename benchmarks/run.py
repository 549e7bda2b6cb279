"""jitorch benchmark runner: jitorch side by side with torch (eager) and NumPy, in one run.

    .venv/bin/python -m benchmarks                       # every group, full timing
    .venv/bin/python benchmarks/run.py --quick           # same, fewer/shorter repeats
    .venv/bin/python -m benchmarks --only eager,autograd,nn --json out.json --write-docs

Groups: ``eager`` (per-op overhead and large ops, issue 2), ``autograd`` (MLP forward+backward,
issue 3), ``nn`` (training steps, issue 4), ``compile`` (cold-process import + first op).

How it measures (details in docs/benchmarks.md):

- every (group, library) pair runs in its own worker process (``benchmarks/_worker.py``), so
  torch's OpenMP pool and numba's never live in one process; both keep their default of
  2 threads on this machine, as a user would get;
- before each worker the runner waits (bounded, ``--idle-wait``) until the CPUs were 90% idle
  over 0.5 s, and records the load average before/after and the share of CPU other processes
  used while the worker ran;
- each row: the first call is timed alone ("first call": numba compile or disk-cache load), then
  warm-up calls, then timeit-style loops: the median (and min) per call over ``--repeats`` loops.
torch and NumPy are imported only inside their workers and only if installed.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # python benchmarks/run.py
    sys.path.insert(0, str(ROOT))

from benchmarks import _harness as H  # noqa: E402
from benchmarks.cases import CASES, GROUPS, STARTUP, cases_for  # noqa: E402

LIBS = ["jitorch", "torch", "numpy"]
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- results:begin (written by python -m benchmarks --write-docs) -->", "<!-- results:end -->"


# ------------------------------------------------------------------ machine

def _version(dist):
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:
        return None


def machine_info():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "jitorch", "kernels"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        commit += " + uncommitted changes in jitorch/ or kernels/" if dirty else ""
    except OSError:
        commit = "?"
    return {
        "cpu": cpu, "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gib": mem, "python": platform.python_version(), "platform": platform.platform(),
        "numpy": _version("numpy"), "numba": _version("numba"), "llvmlite": _version("llvmlite"),
        "torch": _version("torch") if importlib.util.find_spec("torch") else None,
        "jitorch_commit": commit,
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                                           "OPENBLAS_NUM_THREADS", "NUMBA_THREADING_LAYER") if k in os.environ},
    }


def available_libs(wanted):
    out, missing = [], []
    for lib in wanted:
        (out if importlib.util.find_spec(lib) else missing).append(lib)
    return out, missing


# ------------------------------------------------------------------ running

def run_worker(lib, group, names, opts, env=None):
    """One worker process; returns (its JSON, load record)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
        out_path = tf.name
    cmd = [sys.executable, "-m", "benchmarks._worker", "--lib", lib, "--group", group,
           "--cases", ",".join(names), "--min-time", str(opts.min_time), "--repeats", str(opts.repeats),
           "--warmup", str(opts.warmup), "--out", out_path]
    reached, waited, frac = H.wait_for_idle(opts.idle_wait)
    with H.OtherLoad() as load:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    rec = {"lib": lib, "group": group, "idle_reached": reached, "idle_waited_s": round(waited, 1),
           "idle_fraction_at_start": round(frac, 2), "load_before": load.load_before,
           "load_after": load.load_after, "others_cpu_share": round(load.others, 2),
           "wall_s": round(load.wall_s, 1)}
    try:
        with open(out_path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {"results": {}, "crash": (proc.stderr or proc.stdout)[-3000:]}
    finally:
        try:
            os.unlink(out_path)
        except OSError:
            pass
    if proc.returncode != 0:
        data.setdefault("crash", (proc.stderr or proc.stdout)[-3000:])
    return data, rec


def run_group(group, libs, opts, log):
    """All rows of one group: jitorch's worker first (its skips decide the others' rows)."""
    cases = cases_for(group, opts.quick, opts.rows)
    if not cases:
        return {}, [], {}
    results = {lib: {} for lib in libs}
    loads, infos = [], {}
    skipped = set()
    for rnd in range(opts.rounds):
        # round 1 runs jitorch first (its skips decide the other workers' rows); later rounds
        # rotate the order so that a change in the machine's load does not favour one library
        order = libs[rnd % len(libs):] + libs[:rnd % len(libs)]
        for lib in order:
            run_names = [c.name for c in cases if c.name not in skipped and lib in c.libs]
            if not run_names:
                continue
            env = None
            if lib == "jitorch" and (opts.cold_cache or opts.jitorch_env):
                env = {**os.environ, **opts.jitorch_env}
                if opts.cold_cache:
                    tmp = tempfile.mkdtemp(prefix="jitorch-bench-cache-")
                    env.update(NUMBA_CACHE_DIR=tmp, JITORCH_CACHE_DIR=tmp)
            log(f"  [{group}] {lib}: {len(run_names)} rows (round {rnd + 1}/{opts.rounds}) ...")
            data, rec = run_worker(lib, group, run_names, opts, env)
            rec["round"] = rnd + 1
            loads.append(rec)
            infos[lib] = data.get("info", {}) | {"import_s": data.get("import_s")}
            if data.get("crash"):
                log(f"    worker crashed:\n{data['crash']}")
            for name, r in data.get("results", {}).items():
                if lib == "jitorch" and "skipped" in r:
                    skipped.add(name)
                prev = results[lib].get(name)
                # several rounds: keep the round with the lowest median (least disturbed by load),
                # and the fastest short sample of any round
                if prev is None or ("median_s" in r and r["median_s"] < prev.get("median_s", float("inf"))):
                    if prev is not None and "best_short_s" in prev:
                        r["best_short_s"] = min(r["best_short_s"], prev["best_short_s"])
                    results[lib][name] = r
                elif "best_short_s" in r and "best_short_s" in prev:
                    prev["best_short_s"] = min(r["best_short_s"], prev["best_short_s"])
            log(f"    done in {rec['wall_s']} s; load {rec['load_before'][0]:.1f} -> {rec['load_after'][0]:.1f}, "
                f"other processes used {rec['others_cpu_share']:.0%} of the CPUs"
                + ("" if rec["idle_reached"] else f" (CPUs never 90% idle in {opts.idle_wait:.0f} s)"))
    return results, loads, infos


def run_startup(libs, opts, log):
    """Cold processes: wall time of ``python -c CODE``, interleaved across libraries."""
    results = {lib: {} for lib in libs}
    reached, waited, frac = H.wait_for_idle(opts.idle_wait)
    with H.OtherLoad() as load:
        for name, label, codes, _ in STARTUP:
            if opts.rows and not any(r in name for r in opts.rows):
                continue
            times = {lib: [] for lib in libs}
            for lib in libs:  # one unmeasured run: disk caches warm
                subprocess.run([sys.executable, "-c", codes[lib]], cwd=ROOT, capture_output=True)
            for _ in range(opts.startup_repeats):
                for lib in libs:
                    t0 = time.perf_counter()
                    p = subprocess.run([sys.executable, "-c", codes[lib]], cwd=ROOT, capture_output=True, text=True)
                    dt = time.perf_counter() - t0
                    if p.returncode != 0:
                        results[lib][name] = {"error": p.stderr[-2000:]}
                        break
                    times[lib].append(dt)
            for lib in libs:
                if times[lib] and "error" not in results[lib].get(name, {}):
                    results[lib][name] = {"median_s": statistics.median(times[lib]), "min_s": min(times[lib]),
                                          "max_s": max(times[lib]), "repeats": len(times[lib]),
                                          "stmt": f"python -c {shlex.quote(codes[lib])}"}
            log(f"  [compile] {label}: " + ", ".join(
                f"{lib} {H.fmt_time(results[lib].get(name, {}).get('median_s'))}" for lib in libs))
    rec = {"lib": "all", "group": "compile", "idle_reached": reached, "idle_waited_s": round(waited, 1),
           "idle_fraction_at_start": round(frac, 2), "load_before": load.load_before, "load_after": load.load_after,
           "others_cpu_share": round(load.others, 2), "wall_s": round(load.wall_s, 1), "round": 1}
    return results, [rec]


def build_rows(group_results):
    rows = []
    for group, res in group_results.items():
        if group == "compile":
            for name, label, _, target in STARTUP:
                if any(name in res.get(lib, {}) for lib in LIBS):
                    rows.append(_row(group, name, label, target, "", False, res))
            continue
        for c in CASES:
            if c.group == group and any(c.name in res.get(lib, {}) for lib in LIBS):
                rows.append(_row(group, c.name, c.label, c.target, c.issue, c.steps, res))
    return rows


def _row(group, name, label, target, issue, steps, res):
    libs = {lib: res[lib][name] for lib in LIBS if name in res.get(lib, {})}
    med = {lib: r.get("median_s") for lib, r in libs.items()}

    def ratio(other):
        a, b = med.get("jitorch"), med.get(other)
        return a / b if a and b else None

    rt = ratio("torch")
    cj, ct = libs.get("jitorch", {}).get("cpu_s"), libs.get("torch", {}).get("cpu_s")
    bj, bt = libs.get("jitorch", {}).get("best_short_s"), libs.get("torch", {}).get("best_short_s")
    met = None if target is None or rt is None else rt <= target
    return {"group": group, "name": name, "label": label, "target": target, "issue": issue, "steps": steps,
            "results": libs, "ratio_torch": rt,
            "ratio_torch_cpu": cj / ct if cj and ct else None,
            "ratio_torch_best": bj / bt if bj and bt else None, "ratio_numpy": ratio("numpy"), "met": met}


# ------------------------------------------------------------------ reporting

def _cell(row, lib):
    r = row["results"].get(lib)
    if r is None:
        return "–"
    if "skipped" in r:
        return "skipped"
    if "error" in r:
        return "error"
    return H.fmt_time(r.get("median_s"))


def results_markdown(report):
    m = report["machine"]
    lines = []
    lines.append(f"Command: `{report['command']}`  ")
    lines.append(f"Date: {m['date']}; jitorch commit {m['jitorch_commit']}; "
                 f"total wall time {report['wall_s']:.0f} s.  ")
    info = report.get("lib_info", {})
    ji, ti = info.get("jitorch", {}), info.get("torch", {})
    lines.append(
        f"Machine: {m['cpu']} ({ji.get('host_cpu', '?')}), {m['cores']} cores ({m['cores_usable']} usable), "
        f"{m['memory_gib']} GiB; Python {m['python']}; numba {m['numba']}, llvmlite {m['llvmlite']}, "
        f"numpy {m['numpy']}, torch {m['torch'] or 'not installed'}.  ")
    lines.append(
        f"Threads: numba {ji.get('numba_threads', '?')} (layer `{ji.get('threading_layer', '?')}`), "
        f"torch {ti.get('threads', '–')} intra-op / {ti.get('interop_threads', '–')} inter-op; "
        f"each library in its own process."
        + (f" Environment: {m['env']}." if m["env"] else ""))
    o = report["options"]
    extra = f"; best of {o['rounds']} rounds" if o["rounds"] > 1 else ""
    extra += "; **cold numba cache** (first call = full compile)" if o["cold_cache"] else ""
    extra += f"; jitorch worker environment {o['jitorch_env']}" if o.get("jitorch_env") else ""
    lines.append(f"Timing: median per call of {o['repeats']} timeit loops of at least {o['min_time']} s each "
                 f"after {o['warmup']} warm-up calls{extra}.")
    lines.append("")
    lines.append("| group | row | jitorch | torch | NumPy | jitorch / torch | jitorch / NumPy | target (x torch) "
                 "| met | jitorch / torch: best short sample | CPU time | first call: jitorch | first call: torch |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in report["rows"]:
        j = row["results"].get("jitorch", {})
        met = {True: "yes", False: "**no**", None: "–"}[row["met"]]
        target = "–" if row["target"] is None else f"≤ {row['target']:g}"
        lines.append(
            f"| {row['group']} | {row['label']} | {_cell(row, 'jitorch')} | {_cell(row, 'torch')} | "
            f"{_cell(row, 'numpy')} | {H.fmt_ratio(row['ratio_torch'])} | {H.fmt_ratio(row['ratio_numpy'])} | "
            f"{target} | {met} | {H.fmt_ratio(row.get('ratio_torch_best'))} | "
            f"{H.fmt_ratio(row.get('ratio_torch_cpu'))} | {H.fmt_time(j.get('first_s'))} | "
            f"{H.fmt_time(row['results'].get('torch', {}).get('first_s'))} |")
    steps = [r for r in report["rows"] if r["steps"] and any("median_s" in v for v in r["results"].values())]
    if steps:
        lines += ["", "Training throughput:", "",
                  "| row | jitorch steps/s | torch steps/s |", "|---|---|---|"]
        for r in steps:
            sp = {lib: (1 / v["median_s"] if v.get("median_s") else None) for lib, v in r["results"].items()}
            fmt = lambda s: "–" if s is None else f"{s:.1f}"  # noqa: E731
            lines.append(f"| {r['label']} | {fmt(sp.get('jitorch'))} | {fmt(sp.get('torch'))} |")
    notes = []
    for r in report["rows"]:
        for lib, v in r["results"].items():
            if "skipped" in v:
                notes.append(f"- {r['label']}: {lib} skipped: {v['skipped']}")
            elif "error" in v:
                notes.append(f"- {r['label']}: {lib} error: `{v['error'].splitlines()[-1][:200]}`")
    for s in report.get("skipped_groups", []):
        notes.append(f"- {s}")
    if notes:
        lines += ["", "Skipped rows and errors:", ""] + notes
    lines += ["", "Machine load while each worker ran (other jobs share this machine; ratios from rows measured "
              "under load are less reliable):", "",
              "| group | library | waited for idle | load avg before → after | other processes' CPU share |",
              "|---|---|---|---|---|"]
    for rec in report["loads"]:
        waited = f"{rec['idle_waited_s']:.0f} s, " + (
            "idle reached" if rec["idle_reached"] else f"not reached ({rec['idle_fraction_at_start']:.0%} idle)")
        rnd = f" (round {rec['round']})" if o["rounds"] > 1 else ""
        lines.append(f"| {rec['group']} | {rec['lib']}{rnd} | {waited} | "
                     f"{rec['load_before'][0]:.2f} → {rec['load_after'][0]:.2f} | "
                     f"{rec['others_cpu_share']:.0%} |")
    return "\n".join(lines) + "\n"


def write_docs(report, path=DOCS):
    body = results_markdown(report)
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n## Results\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n## Results\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + BEGIN + "\n" + body + END + tail)


def command_line(argv):
    exe = sys.executable
    try:
        rel = os.path.relpath(exe, ROOT)
        exe = rel if not rel.startswith("..") else exe
    except ValueError:
        pass
    if __package__ in (None, ""):
        return " ".join([exe, "benchmarks/run.py", *map(shlex.quote, argv)])
    return " ".join([exe, "-m", "benchmarks", *map(shlex.quote, argv)])


# ------------------------------------------------------------------ main

def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups: {','.join(GROUPS)}")
    p.add_argument("--rows", default="", help="comma-separated substrings of row names (e.g. add_1,chain)")
    p.add_argument("--libs", default=",".join(LIBS), help="libraries to time (jitorch is always first)")
    p.add_argument("--quick", action="store_true", help="short loops, few repeats, short idle waits")
    p.add_argument("--repeats", type=int, help="timeit loops per row (default 11, quick 5)")
    p.add_argument("--min-time", type=float, help="seconds per timeit loop (default 0.1, quick 0.02)")
    p.add_argument("--warmup", type=int, help="warm-up calls after the first (default 3, quick 1)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run each group's workers this many times, keep each row's lowest median")
    p.add_argument("--idle-wait", type=float, help="max seconds to wait for idle CPUs before each worker "
                                                   "(default 30, quick 5)")
    p.add_argument("--startup-repeats", type=int, help="cold-process runs per library (default 7, quick 3)")
    p.add_argument("--cold-cache", action="store_true",
                   help="jitorch worker gets empty NUMBA_CACHE_DIR/JITORCH_CACHE_DIR: first call = full compile")
    p.add_argument("--jitorch-env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable for the jitorch worker only (repeatable), e.g. GOMP_SPINCOUNT=1000")
    p.add_argument("--json", metavar="PATH", help="write all results as JSON")
    p.add_argument("--from-json", metavar="PATH",
                   help="run nothing: print (and with --write-docs, write) the results saved by --json")
    p.add_argument("--write-docs", action="store_true", help=f"rewrite the results section of {DOCS.relative_to(ROOT)}")
    a = p.parse_args(argv)
    q = a.quick
    a.repeats = a.repeats or (5 if q else 11)
    a.min_time = a.min_time if a.min_time is not None else (0.02 if q else 0.1)
    a.warmup = a.warmup if a.warmup is not None else (1 if q else 3)
    a.idle_wait = a.idle_wait if a.idle_wait is not None else (5.0 if q else 30.0)
    a.startup_repeats = a.startup_repeats or (3 if q else 7)
    a.groups = [g.strip() for g in a.only.split(",") if g.strip()]
    bad = [g for g in a.groups if g not in GROUPS]
    if bad:
        p.error(f"unknown group(s) {bad}; choose from {GROUPS}")
    a.rows = [r.strip() for r in a.rows.split(",") if r.strip()]
    bad = [kv for kv in a.jitorch_env if "=" not in kv]
    if bad:
        p.error(f"--jitorch-env wants KEY=VALUE, got {bad}")
    a.jitorch_env = dict(kv.split("=", 1) for kv in a.jitorch_env)
    a.lib_list = ["jitorch"] + [lib for lib in a.libs.split(",") if lib.strip() and lib.strip() != "jitorch"]
    return a


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    opts = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if opts.from_json:
        report = json.loads(Path(opts.from_json).read_text())
        if opts.write_docs:
            write_docs(report)
            log(f"rewrote the results section of {DOCS} from {opts.from_json}")
        print(results_markdown(report))
        return report
    libs, missing = available_libs(opts.lib_list)
    if "jitorch" not in libs:
        sys.exit("jitorch is not importable: run from the repository root with its venv")
    report = {"command": command_line(argv), "machine": machine_info(), "options": {
        k: getattr(opts, k) for k in ("groups", "rows", "quick", "repeats", "min_time", "warmup", "rounds",
                                      "idle_wait", "startup_repeats", "cold_cache", "jitorch_env")},
        "missing_libs": missing, "loads": [], "lib_info": {}, "skipped_groups": []}
    for lib in missing:
        log(f"{lib} is not installed: its columns stay empty")
    t_start = time.monotonic()
    log(f"load average at start: {H.loadavg()}")
    group_results = {}
    for group in opts.groups:
        log(f"group {group}:")
        if group == "compile":
            res, loads = run_startup(libs, opts, log)
        else:
            res, loads, infos = run_group(group, libs, opts, log)
            for lib, info in infos.items():
                report["lib_info"].setdefault(lib, {}).update(info)
            jres = res.get("jitorch", {})
            if jres and all("skipped" in r for r in jres.values()):
                reasons = sorted({r["skipped"] for r in jres.values()})
                msg = f"group {group} skipped: {'; '.join(reasons)}"
                log("  " + msg)
                report["skipped_groups"].append(msg)
        group_results[group] = res
        report["loads"] += loads
    report["rows"] = build_rows(group_results)
    report["wall_s"] = time.monotonic() - t_start
    log(f"load average at end: {H.loadavg()}")
    if opts.json:
        Path(opts.json).write_text(json.dumps(report, indent=1, default=str))
        log(f"wrote {opts.json}")
    if opts.write_docs:
        write_docs(report)
        log(f"rewrote the results section of {DOCS}")
    print(results_markdown(report))
    return report


if __name__ == "__main__":
    main()

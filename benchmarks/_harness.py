"""Timing and machine-load helpers shared by the runner and its worker processes.

Nothing here imports jitorch, numba or torch: the parent process of ``python -m benchmarks``
stays free of both thread pools, and each worker imports only the library it times.
"""
from __future__ import annotations

import gc
import os
import statistics
import time
import timeit


# ---------------------------------------------------------------- timing

def time_stmt(stmt, ns, *, min_time, repeats, warmup, short_budget=0.3):
    """timeit-style timing of ``stmt`` (a source string run in namespace ``ns``).

    1. the first call is timed alone (numba compile or disk-cache load shows up here);
    2. ``warmup`` more calls;
    3. the inner-loop count ``number`` is doubled until one loop takes at least ``min_time`` s;
    4. ``repeats`` loops of ``number`` calls; per-call median and minimum of the wall time, and
       the median process CPU time per call (all threads; on a loaded machine it is less
       disturbed than wall time for single-threaded rows, but counts spinning pool threads);
    5. "best of short samples": the fastest of many ~0.5 ms samples (at most ``short_budget`` s
       in all, at least 3). A sample that short usually runs inside one scheduler time slice, so
       on a machine shared with other jobs its minimum is close to the undisturbed time, where a
       0.1 s loop is preempted many times.

    The statement is compiled into timeit's loop (no lambda call per iteration). Unlike timeit's
    default, the garbage collector stays enabled, as it is for a user: frameworks that create
    cyclic garbage pay for collecting it.
    """
    timer = timeit.Timer(stmt, setup="gc.enable()", globals={**ns, "gc": gc})
    t0 = time.perf_counter()
    exec(compile(stmt, "<bench>", "exec"), ns)
    first = time.perf_counter() - t0
    if warmup:
        timer.timeit(warmup)
    number = 1
    while True:
        t = timer.timeit(number)
        if t >= min_time or number >= 1 << 24:
            break
        # aim a little above min_time, at least doubling
        number = max(number * 2, int(number * min_time * 1.2 / max(t, 1e-9)))
    per_call, cpu_per_call = [], []
    for _ in range(repeats):
        c0 = time.process_time()
        per_call.append(timer.timeit(number) / number)
        cpu_per_call.append((time.process_time() - c0) / number)
    med = statistics.median(per_call)
    short_number = max(1, round(0.5e-3 / max(med, 1e-9)))
    samples = max(3, min(300, int(short_budget / max(short_number * med, 1e-9))))
    best = min(timer.timeit(short_number) / short_number for _ in range(samples))
    return {
        "best_short_s": best,
        "short_samples": samples,
        "short_number": short_number,
        "first_s": first,
        "median_s": med,
        "min_s": min(per_call),
        "max_s": max(per_call),
        "cpu_s": statistics.median(cpu_per_call),
        "number": number,
        "repeats": repeats,
    }


# ---------------------------------------------------------------- machine load

def _cpu_snapshot():
    """(idle jiffies, total jiffies) over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return idle, sum(fields[:8])  # guest time is already counted in user


def idle_fraction(interval=0.5):
    i0, t0 = _cpu_snapshot()
    time.sleep(interval)
    i1, t1 = _cpu_snapshot()
    return (i1 - i0) / max(t1 - t0, 1)


def wait_for_idle(limit_s, want=0.9, interval=0.5):
    """Wait (at most ``limit_s`` seconds) until the CPUs were at least ``want`` idle over one
    ``interval``, as research/feasibility.md did. Returns (reached, waited_s, last idle fraction)."""
    start = time.monotonic()
    while True:
        frac = idle_fraction(interval)
        waited = time.monotonic() - start
        if frac >= want:
            return True, waited, frac
        if waited >= limit_s:
            return False, waited, frac


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


class OtherLoad:
    """CPU time used by *other* processes while a child process runs.

    /proc/stat's busy jiffies over the interval minus our children's CPU time (getrusage); as a
    fraction of the machine's capacity (ncpu x wall). 0 on an idle machine; 0.5 means other
    jobs kept one of two CPUs busy on average."""

    def __enter__(self):
        import resource
        self._res = resource
        self.ncpu = os.cpu_count() or 1
        self.i0, self.t0 = _cpu_snapshot()
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.c0 = ru.ru_utime + ru.ru_stime
        self.w0 = time.monotonic()
        self.load_before = loadavg()
        return self

    def __exit__(self, *exc):
        i1, t1 = _cpu_snapshot()
        ru = self._res.getrusage(self._res.RUSAGE_CHILDREN)
        wall = time.monotonic() - self.w0
        hz = os.sysconf("SC_CLK_TCK")
        busy_s = ((t1 - self.t0) - (i1 - self.i0)) / hz
        ours = ru.ru_utime + ru.ru_stime - self.c0
        self.wall_s = wall
        self.others = max(0.0, busy_s - ours) / max(self.ncpu * wall, 1e-9)
        self.load_after = loadavg()
        return False


# ---------------------------------------------------------------- formatting

def fmt_time(s):
    if s is None:
        return "–"
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.2f} µs" if s < 1e-5 else f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms" if s < 1e-2 else f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}x"

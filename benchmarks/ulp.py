"""Accuracy and speed of jitorch's float32 transcendentals (jitorch.kernels.scalar_math).

Accuracy: by default every 61st float32 bit pattern (70.4M inputs: about 137k per sign and
exponent, an odd stride so the low mantissa bits vary too); ``--stride 1`` sweeps all 2**32
patterns (4.28e9 finite inputs, minutes per function). Each input goes through the function
exactly as the eager kernels run it: inlined into a loop compiled with ``_config.FASTMATH`` and
``error_model='numpy'`` (vectorized). The reference is the float64 function (glibc libm via
numba's ``math.*``, compiled without fastmath) rounded to float32. Reported per function:

- ``max ulp``: the largest distance, in float32 units in the last place (ULP), between our
  result and the rounded reference (+0 and -0 count as equal: fastmath has ``nsz``);
- ``max err``: the largest error measured against the unrounded float64 value, in ULPs of the
  reference, for finite results (0.5 would be correct rounding);
- ``exact`` / ``<= 1 ulp``: fractions of inputs with distance 0 / at most 1;
- ``special``: inputs where exactly one of (ours, reference) is NaN, or one is infinite and the
  other finite (must be 0).

A cross-check compares the libm reference with NumPy's float64 ufuncs on 2**22 sample inputs
(erf has no NumPy ufunc; it is checked against the ``math.erf`` of CPython).

Speed: ns per element, one thread, N = 2**20 float32 values in each function's typical domain,
best of several runs: jitorch (vectorized numba loop), NumPy's float32 ufunc, a numba loop
calling ``math.<f>`` (scalar libm ``expf`` etc.) and torch (1 thread) when it is installed.

Usage::

    .venv/bin/python benchmarks/ulp.py                 # 70M-input sweep + timings (~2-3 min)
    .venv/bin/python benchmarks/ulp.py --stride 1      # exhaustive: every finite float32
    .venv/bin/python benchmarks/ulp.py --functions exp,log --no-timing
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

import numpy as np
import numba
from numba import njit, prange

from jitorch.kernels import scalar_math
from jitorch.kernels._config import FASTMATH

FM = set(FASTMATH)  # numba wants a set, not a frozenset

NAMES = list(scalar_math.F32_FUNCTIONS)


# ---------------------------------------------------------------- float64 references (no fastmath)
def _ref_log(x):
    if x < 0.0:
        return np.nan
    if x == 0.0:
        return -np.inf
    return math.log(x)


def _ref_log2(x):
    if x < 0.0:
        return np.nan
    if x == 0.0:
        return -np.inf
    return math.log2(x)


def _ref_log1p(x):
    if x < -1.0:
        return np.nan
    if x == -1.0:
        return -np.inf
    return math.log1p(x)


def _ref_sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


REFS = {
    "exp": lambda x: math.exp(x),
    "exp2": lambda x: np.exp2(x),
    "expm1": lambda x: math.expm1(x),
    "log": _ref_log,
    "log2": _ref_log2,
    "log1p": _ref_log1p,
    "tanh": lambda x: math.tanh(x),
    "sigmoid": _ref_sigmoid,
    "erf": lambda x: math.erf(x),
}

# NumPy float64 versions for the cross-check (None: use CPython's math module)
NP_REFS = {
    "exp": np.exp, "exp2": np.exp2, "expm1": np.expm1, "log": np.log, "log2": np.log2,
    "log1p": np.log1p, "tanh": np.tanh, "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)), "erf": None,
}


# ---------------------------------------------------------------- kernels
def _ours_kernel(fn):
    """The production shape: fn inlined into a parallel loop with the library's flags."""
    f = njit(inline="always", fastmath=FM, error_model="numpy")(fn)

    @njit(fastmath=FM, error_model="numpy", parallel=True)
    def run(x, out):
        for i in prange(x.shape[0]):
            out[i] = f(x[i])

    @njit(fastmath=FM, error_model="numpy")
    def run_serial(x, out):
        for i in range(x.shape[0]):
            out[i] = f(x[i])

    return run, run_serial


@njit(inline="always")
def _ord(b):
    # float32 bits -> integer such that adjacent floats differ by 1 and +0 == -0
    mag = np.int64(b & np.uint32(0x7FFFFFFF))
    return -mag if (b >> np.uint32(31)) != 0 else mag


@njit(inline="always")
def _ulp_of(r):
    # spacing of float32 at |r| (r finite), as float64
    b = np.float32(r).view(np.uint32) & np.uint32(0x7FFFFFFF)
    e = max(np.int64(b >> np.uint32(23)), np.int64(1))
    return np.int64((e - 150 + 1023) << 52).view(np.float64)  # 2**(e-150), built from bits


def _stats_kernel(ref):
    refj = njit(ref)  # compiled without fastmath: the reference must be libm-exact

    @njit(parallel=True)
    def stats(x, y, nblocks, bmax, bexact, ble1, bcount, bspecial, bworst, berr):
        n = x.shape[0]
        bs = (n + nblocks - 1) // nblocks
        for b in prange(nblocks):
            m = np.int64(0)
            worst = np.int64(-1)
            c0 = np.int64(0)
            c1 = np.int64(0)
            cnt = np.int64(0)
            sp = np.int64(0)
            emax = 0.0
            for i in range(b * bs, min(n, (b + 1) * bs)):
                xv = x[i]
                if not np.isfinite(xv):
                    continue
                cnt += 1
                r64 = refj(np.float64(xv))
                r = np.float32(r64)
                yv = y[i]
                ynan = yv != yv
                rnan = r != r
                if ynan or rnan:
                    d = np.int64(0) if (ynan and rnan) else np.int64(1) << 40
                    if not (ynan and rnan):
                        sp += 1
                else:
                    if np.isinf(yv) != np.isinf(r):
                        sp += 1
                    d = abs(_ord(np.float32(yv).view(np.uint32)) - _ord(np.float32(r).view(np.uint32)))
                    if np.isfinite(r) and np.isfinite(yv):
                        err = abs(np.float64(yv) - r64) / _ulp_of(r)
                        if err > emax:
                            emax = err
                if d == 0:
                    c0 += 1
                if d <= 1:
                    c1 += 1
                if d > m:
                    m = d
                    worst = i
            bmax[b] = m
            bexact[b] = c0
            ble1[b] = c1
            bcount[b] = cnt
            bspecial[b] = sp
            bworst[b] = worst
            berr[b] = emax

    return stats


@njit(parallel=True)
def _fill_bits(start, stride, out):
    for i in prange(out.shape[0]):
        out[i] = np.uint32(start + i * stride)


# ---------------------------------------------------------------- accuracy sweep
def sweep(name, stride=1, chunk=1 << 22, nblocks=64):
    fn = getattr(scalar_math, scalar_math.F32_FUNCTIONS[name])
    run, _ = _ours_kernel(fn)
    stats = _stats_kernel(REFS[name])
    total = (1 << 32) // stride
    bits = np.empty(chunk, np.uint32)
    y = np.empty(chunk, np.float32)
    bmax = np.zeros(nblocks, np.int64)
    bexact, ble1, bcount, bspecial, bworst = (np.zeros(nblocks, np.int64) for _ in range(5))
    berr = np.zeros(nblocks, np.float64)
    acc = dict(max=0, worst_x=None, worst_y=None, exact=0, le1=0, count=0, special=0, err=0.0, err_x=None)
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        for start in range(0, total, chunk):
            n = min(chunk, total - start)
            xb = bits[:n]
            _fill_bits(start * stride, stride, xb)
            x = xb.view(np.float32)
            run(x, y[:n])
            stats(x, y[:n], nblocks, bmax, bexact, ble1, bcount, bspecial, bworst, berr)
            acc["exact"] += int(bexact.sum())
            acc["le1"] += int(ble1.sum())
            acc["count"] += int(bcount.sum())
            acc["special"] += int(bspecial.sum())
            b = int(np.argmax(bmax))
            if bmax[b] > acc["max"]:
                acc["max"] = int(bmax[b])
                acc["worst_x"] = float(x[bworst[b]])
                acc["worst_y"] = float(y[bworst[b]])
            b = int(np.argmax(berr))
            if berr[b] > acc["err"]:
                acc["err"] = float(berr[b])
    acc["seconds"] = time.perf_counter() - t0
    return acc


def crosscheck(name, n=1 << 22, seed=0):
    """Mismatches (in float32) between the libm reference and NumPy float64 / CPython math."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = x[np.isfinite(x)]
    refj = njit(REFS[name])

    @njit
    def apply(v, out):
        for i in range(v.shape[0]):
            out[i] = refj(np.float64(v[i]))

    r = np.empty(x.shape, np.float64)
    apply(x, r)
    with np.errstate(all="ignore"):
        if NP_REFS[name] is None:
            other = np.array([math.erf(float(v)) for v in x[:1 << 16]])
            r = r[:1 << 16]
        else:
            other = NP_REFS[name](x.astype(np.float64))
        a, b = r.astype(np.float32), other.astype(np.float32)
    bad = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    return int(bad.sum()), a.size


# ---------------------------------------------------------------- timing
DOMAINS = {
    "exp": (-80.0, 80.0), "exp2": (-120.0, 120.0), "expm1": (-10.0, 10.0),
    "log": (1e-30, 1e30), "log2": (1e-30, 1e30), "log1p": (-0.99, 100.0),
    "tanh": (-10.0, 10.0), "sigmoid": (-20.0, 20.0), "erf": (-5.0, 5.0),
}


def _libm_kernel(name):
    f32 = np.float32
    bodies = {
        "exp": lambda v: math.exp(v),
        "exp2": lambda v: math.pow(f32(2.0), v),
        "expm1": lambda v: math.expm1(v),
        "log": lambda v: math.log(v),
        "log2": lambda v: math.log2(v),
        "log1p": lambda v: math.log1p(v),
        "tanh": lambda v: math.tanh(v),
        "sigmoid": lambda v: f32(1.0) / (f32(1.0) + math.exp(-v)),
        "erf": lambda v: math.erf(v),
    }
    f = njit(inline="always")(bodies[name])

    @njit(fastmath=FM, error_model="numpy")
    def run(x, out):
        for i in range(x.shape[0]):
            out[i] = f(x[i])

    return run


def _numpy_f32(name):
    ufunc = {"exp": np.exp, "exp2": np.exp2, "expm1": np.expm1, "log": np.log, "log2": np.log2,
             "log1p": np.log1p, "tanh": np.tanh}.get(name)
    if ufunc is not None:
        return lambda x, out: ufunc(x, out=out)
    if name == "sigmoid":  # no ufunc: the usual three-pass composite
        def sig(x, out):
            np.negative(x, out=out)
            np.exp(out, out=out)
            out += np.float32(1.0)
            np.reciprocal(out, out=out)
        return sig
    return None  # erf: NumPy has none


def _torch_f32(name):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    fn = {"exp": torch.exp, "exp2": torch.exp2, "expm1": torch.expm1, "log": torch.log,
          "log2": torch.log2, "log1p": torch.log1p, "tanh": torch.tanh,
          "sigmoid": torch.sigmoid, "erf": torch.erf}[name]

    def run(x, out):
        fn(torch.from_numpy(x), out=torch.from_numpy(out))

    return run


def _best_ns(fn, x, out, repeats):
    fn(x, out)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x, out)
        best = min(best, time.perf_counter() - t0)
    return best / x.size * 1e9


def timings(name, n=1 << 20, repeats=30, use_torch=True):
    lo, hi = DOMAINS[name]
    rng = np.random.default_rng(1)
    if name in ("log", "log2"):
        x = np.exp(rng.uniform(np.log(lo), np.log(hi), n)).astype(np.float32)
    else:
        x = rng.uniform(lo, hi, n).astype(np.float32)
    out = np.empty_like(x)
    fn = getattr(scalar_math, scalar_math.F32_FUNCTIONS[name])
    _, ours = _ours_kernel(fn)
    res = {"jitorch": _best_ns(ours, x, out, repeats)}
    npf = _numpy_f32(name)
    with np.errstate(all="ignore"):
        res["numpy"] = _best_ns(npf, x, out, repeats) if npf else None
    res["libm"] = _best_ns(_libm_kernel(name), x, out, repeats)
    tf = _torch_f32(name) if use_torch else None
    res["torch"] = _best_ns(tf, x, out, repeats) if tf else None
    return res


# ---------------------------------------------------------------- report
def _fmt(v, spec="{:.2f}"):
    return "n/a" if v is None else spec.format(v)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--functions", default=",".join(NAMES))
    ap.add_argument("--stride", type=int, default=61,
                    help="test every N-th bit pattern; default 61 (70.4M inputs, ~137k in every binade), "
                         "1 = exhaustive (about 15-40 min on 2 cores)")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    names = [s.strip() for s in args.functions.split(",") if s.strip()]

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numba {numba.__version__}, "
          f"numpy {np.__version__}, threads {numba.get_num_threads()}, fastmath {sorted(FM)}")
    if not args.no_timing:
        print("\n## ns/element, 1 thread, N = 2**20 (best of 30)\n")
        print("| function | domain | jitorch | numpy f32 | numba math.* (libm) | torch (1 thread) |")
        print("|---|---|---|---|---|---|")
        for name in names:
            t = timings(name, use_torch=not args.no_torch)
            lo, hi = DOMAINS[name]
            print(f"| {name} | [{lo:g}, {hi:g}] | {_fmt(t['jitorch'])} | {_fmt(t['numpy'])} | "
                  f"{_fmt(t['libm'])} | {_fmt(t['torch'])} |", flush=True)
    if not args.no_accuracy:
        dom = ("all finite float32" if args.stride == 1
               else f"every {args.stride}th float32 bit pattern (all exponents, both signs)")
        print(f"\n## accuracy over {dom}\n")
        print("| function | inputs | max ulp | worst input -> ours | max err (ulp vs f64) | exact | <= 1 ulp "
              "| special mismatches | ref vs numpy f64 mismatches | sweep s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name in names:
            a = sweep(name, stride=args.stride)
            bad, nchk = crosscheck(name)
            print(f"| {name} | {a['count']} | {a['max']} | {a['worst_x']!r} -> {a['worst_y']!r} | {a['err']:.3f} | "
                  f"{a['exact'] / a['count']:.6f} | {a['le1'] / a['count']:.8f} | {a['special']} | "
                  f"{bad}/{nchk} | {a['seconds']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

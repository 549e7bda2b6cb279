"""The compiled chain tanh(x*a+b)*sigmoid(x) at 16M float32 against the machine's copy bandwidth (issue 6.6).

    .venv/bin/python benchmarks/jit_chain.py                 # jitorch only
    .venv/bin/python benchmarks/jit_chain.py --torch         # also torch.compile (cold compile: ~20 s)
    .venv/bin/python benchmarks/jit_chain.py --n 4194304     # another size

Rows (all timed interleaved in one process, best and median of ``--repeats`` rounds, so load from other
processes hits every row alike; the load average is printed with the numbers):

- ``copy: numba prange`` / ``copy: np.copyto``: a copy of the same 64 MiB (read 64 MiB, write 64 MiB),
  into a preallocated output: the machine's copy bandwidth, the bound the chain is measured against;
- ``chain: kernel only``: the generated fused kernel called on a preallocated output;
- ``chain: jitorch.compile``: the whole compiled call ``f(x)`` (guard, executor, pooled output, wrap);
- ``chain: torch.compile`` (with ``--torch``);
- ``ref: research-note body``: the same loop with research/feasibility.md's simpler, less accurate exp,
  tanh and sigmoid (the 5.1 ms kernel there): what the loop costs without the accuracy work of
  kernels/scalar_math.py (tanh within 1 ulp, sigmoid 2 ulp). A reference, never run by jitorch.

The chain moves exactly what a copy moves (one read and one write per element), so its share of the
copy bandwidth is ``copy time / chain time``; the goal (issue 6.6) is at least 80%.

``chain_share(n)`` returns the numbers as a dict, for the benchmark runner's row.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(HERE))


def _prange_copy():
    from numba import njit, prange

    @njit(parallel=True, nogil=True)
    def copy(x, o):
        for i in prange(x.shape[0]):
            o[i] = x[i]
    return copy


def _research_kernel():
    """The chain with research/feasibility.md's simpler exp (no subnormal scaling, no NaN care, tanh as
    1 - 2/(exp(2x)+1) with cancellation near 0): what the loop costs without jitorch's accuracy work
    (tanh 1 ulp, sigmoid 2 ulp, docs/accuracy.md). A reference row only; jitorch never runs it."""
    import numpy as _np
    from numba import njit, prange

    @njit(inline="always", fastmath=True, error_model="numpy")
    def pexp(x):
        x = min(max(x, _np.float32(-87.0)), _np.float32(88.0))
        n = _np.floor(x * _np.float32(1.44269504088896341) + _np.float32(0.5))
        r = x - n * _np.float32(0.693359375)
        r = r - n * _np.float32(-2.12194440e-4)
        q = _np.float32(1.9875691500e-4)
        q = q * r + _np.float32(1.3981999507e-3)
        q = q * r + _np.float32(8.3334519073e-3)
        q = q * r + _np.float32(4.1665795894e-2)
        q = q * r + _np.float32(1.6666665459e-1)
        q = q * r + _np.float32(5.0000001201e-1)
        e = q * (r * r) + r + _np.float32(1.0)
        return e * _np.int32(n * _np.float32(8388608.0) + _np.float32(1065353216.0)).view(_np.float32)

    @njit(parallel=True, nogil=True, fastmath=True, error_model="numpy")
    def chain(x, o):
        for i in prange(x.shape[0]):
            v = x[i]
            t = v * _np.float32(1.5) - _np.float32(0.25)
            th = _np.float32(1) - _np.float32(2) / (pexp(t + t) + _np.float32(1))
            o[i] = th * (_np.float32(1) / (_np.float32(1) + pexp(-v)))
    return chain


def _chain_kernel(f):
    """The generated kernel of the compiled chain (the one fused group) as a callable."""
    mods = [m for name, m in sys.modules.items() if name.startswith("_jitorch_gen_fused_")]
    src = next(iter(f.kernels.values()))
    from jitorch.jit.fuse import canonical_source
    text = canonical_source(src)
    for m in mods:
        try:
            with open(m.__file__, encoding="utf-8") as fh:
                if fh.read() == text:
                    return m.kernel
        except OSError:
            continue
    raise RuntimeError("the chain's kernel module was not found")


def measure(n=16 << 20, repeats=15, with_torch=False, research=True):
    """{row: (best s, median s)}, plus 'load' and 'bytes' (moved per call)."""
    import jitorch

    rng = np.random.default_rng(0)
    xa = rng.standard_normal(n, dtype=np.float32)
    out = np.empty_like(xa)
    x = jitorch.from_numpy(xa)
    f = jitorch.compile(lambda x: jitorch.tanh(x * 1.5 - 0.25) * jitorch.sigmoid(x))
    y = f(x)
    ref = np.tanh(xa.astype(np.float64) * 1.5 - 0.25) / (1 + np.exp(-xa.astype(np.float64)))
    err = float(np.max(np.abs(y.numpy() - ref)))
    kern = _chain_kernel(f)
    pcopy = _prange_copy()
    rows = {
        "copy: numba prange": lambda: pcopy(xa, out),
        "copy: np.copyto": lambda: np.copyto(out, xa),
        "chain: kernel only": lambda: kern(xa, out),
        "chain: jitorch.compile": lambda: f(x),
    }
    if research:
        rk = _research_kernel()
        rows["ref: research-note body"] = lambda: rk(xa, out)
    if with_torch:
        try:
            import torch
        except ImportError:
            print("torch is not installed: no torch.compile row")
        else:
            tx = torch.from_numpy(xa.copy())
            tf = torch.compile(lambda x: torch.tanh(x * 1.5 - 0.25) * torch.sigmoid(x))
            t0 = time.perf_counter()
            tf(tx)
            print(f"torch.compile first call (compile): {time.perf_counter() - t0:.1f} s")
            rows["chain: torch.compile"] = lambda: tf(tx)
    for fn in rows.values():  # compile / warm up
        fn()
        fn()
    times = {k: [] for k in rows}
    load0 = os.getloadavg()[0]
    for _ in range(repeats):
        for k, fn in rows.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    res = {k: (min(v), statistics.median(v)) for k, v in times.items()}
    res["load"] = (load0, os.getloadavg()[0])
    res["bytes"] = 2 * xa.nbytes
    res["max_abs_err"] = err
    return res


def chain_share(n=16 << 20, repeats=15):
    """The compiled chain's share of the copy bandwidth (best copy of the two / compiled call), with the
    times it comes from; best-of-``repeats`` times."""
    r = measure(n, repeats, research=False)
    copy = min(r["copy: numba prange"][0], r["copy: np.copyto"][0])
    return {"share": copy / r["chain: jitorch.compile"][0], "kernel_share": copy / r["chain: kernel only"][0],
            "copy_s": copy, "chain_s": r["chain: jitorch.compile"][0], "kernel_s": r["chain: kernel only"][0],
            "copy_GBps": r["bytes"] / copy / 1e9, "load": r["load"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=16 << 20)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--torch", action="store_true", help="also time torch.compile (its cold compile takes ~20 s)")
    a = ap.parse_args(argv)
    r = measure(a.n, a.repeats, a.torch)
    nbytes = r["bytes"]
    copy = min(r["copy: numba prange"][0], r["copy: np.copyto"][0])
    print(f"n = {a.n} float32 ({nbytes / 2 / 2**20:.0f} MiB in, same out); load average {r['load'][0]:.2f} -> "
          f"{r['load'][1]:.2f}; max |error| vs float64 {r['max_abs_err']:.1e}")
    for k, v in r.items():
        if k.startswith(("copy", "chain", "ref")):
            best, med = v
            print(f"  {k:24s} best {best * 1e3:7.2f} ms  median {med * 1e3:7.2f} ms  "
                  f"{nbytes / best / 1e9:6.1f} GB/s  {copy / best:5.0%} of copy")
    if "chain: torch.compile" in r:
        print(f"  jitorch / torch.compile: {r['chain: jitorch.compile'][0] / r['chain: torch.compile'][0]:.2f}x "
              f"(goal <= 0.2x)")


if __name__ == "__main__":
    main()

"""Single-thread GFLOP/s of the BLAS-free matmul (kernels/gemm.py) against NumPy's OpenBLAS.

    .venv/bin/python benchmarks/kernels_gemm.py [--sizes 64 256 512 1024] [--rounds 15]
                                                [--dtype float32 float64]

Square C = A @ B, plus nn.Linear's ``x @ w.T`` (B a transposed view) at the same sizes.
OpenBLAS runs on one thread (OPENBLAS_NUM_THREADS=1 is set before NumPy loads); torch, when
installed, on one thread as well (torch.set_num_threads(1)). Other jobs share the machine, so
the implementations are timed in interleaved rounds (each round runs every implementation
once, in rotating order) and all see the same background load; the table gives GFLOP/s of the
median and of the best round, and the ratio of the medians, gemm / OpenBLAS. The load average
(``uptime``) is printed with the table: numbers taken under load are lower for everything.
"""
import argparse
import os
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def implementations(n, dtype, transposed):
    from jitorch.kernels import gemm as G

    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n)).astype(dtype)
    B = rng.standard_normal((n, n)).astype(dtype)
    if transposed:  # x @ w.T with w (N, K) contiguous, as nn.Linear stores it
        B = np.ascontiguousarray(B.T).T
    C = np.empty((n, n), dtype)
    bias = np.zeros(0, dtype)
    work = np.empty(G.workspace_size(n, n, n, dtype), dtype)
    impls = {
        "gemm": lambda: G.gemm(A, B, C, bias, False, 0, n, 0, n, work),
        "openblas": lambda: np.matmul(A, B, out=C),
    }
    try:
        import torch
    except ImportError:
        return impls
    torch.set_num_threads(1)
    tA, tB, tC = torch.from_numpy(A), torch.from_numpy(B), torch.from_numpy(C)
    impls["torch"] = lambda: torch.mm(tA, tB, out=tC)
    return impls


def time_interleaved(impls, rounds, reps):
    names = list(impls)
    times = {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            for _ in range(reps):
                impls[k]()
            times[k].append((time.perf_counter() - t0) / reps)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 512, 1024])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    args = parser.parse_args(argv)
    from jitorch.kernels import gemm as G

    print(f"uptime: {os.popen('uptime').read().strip()}")
    print(f"gemm blocking (MR, NR, MC, KC, NC): float32 {G.blocking(np.float32)}, "
          f"float64 {G.blocking(np.float64)}; vector bytes {G.VECTOR_BYTES}")
    header = f"{'dtype':8} {'case':10} {'n':>5} | {'impl':9} {'median GF/s':>11} {'best GF/s':>9}"
    print(header)
    print("-" * len(header) + "-+------------")
    for dtype in args.dtype:
        for transposed in (False, True):
            for n in args.sizes:
                impls = implementations(n, np.dtype(dtype), transposed)
                for f in impls.values():  # compile and warm up
                    f()
                reps = max(1, int(2e8 / (2 * n ** 3)))
                times = time_interleaved(impls, args.rounds, reps)
                flops = 2 * n ** 3
                med = {k: np.median(v) for k, v in times.items()}
                for k, v in times.items():
                    ratio = med["openblas"] / med["gemm"]
                    extra = f"   gemm/openblas {ratio:.2f}" if k == "gemm" else ""
                    case = "x @ w.T" if transposed else "A @ B"
                    print(f"{dtype:8} {case:10} {n:5d} | {k:9} {flops / med[k] / 1e9:11.1f} "
                          f"{flops / min(v) / 1e9:9.1f}{extra}")
    print(f"uptime: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()

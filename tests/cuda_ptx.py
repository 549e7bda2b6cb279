"""Compile jitorch's generated cuda kernels to PTX for a real GPU, without a GPU (NVVM only).

The simulator runs kernels as Python, so it cannot tell whether numba.cuda can *compile* them (a NumPy
function without a CUDA lowering, a float16 conversion NVVM rejects...). This script types and lowers
each kernel for compute capability 9.0 through ``cuda.compile_ptx``; it needs the CUDA toolkit's NVVM
(not a driver) and must run without ``NUMBA_ENABLE_CUDASIM``. tests/test_cuda.py runs it in a child
interpreter and skips when NVVM is missing.

    python -m tests.cuda_ptx            # the sample below; prints "ok N" or the failures
    python -m tests.cuda_ptx --all      # every elementwise op x dtype, both kernel forms (minutes)
"""
from __future__ import annotations

import itertools
import os
import sys

CC = (9, 0)
SAMPLE = ["exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin", "cos", "tan", "sinh",
          "cosh", "tanh", "sigmoid", "erf", "erfc", "erfinv", "lgamma", "atanh", "acosh", "floor", "ceil", "round",
          "round_decimals", "trunc", "frac", "sign", "signbit", "isinf", "nan_to_num", "softplus", "elu", "clamp",
          "fmod", "remainder", "div_floor", "div_trunc", "pow", "atan2", "hypot", "copysign", "maximum", "fmax",
          "xlogy", "where", "lerp", "bitwise_not", "bitwise_xor", "logical_xor", "eq", "add", "addcdiv"]
# the integer and bool kernels of the sample (float32 for every op of SAMPLE)
SAMPLE_OTHER = {"pow": ("int64",), "div_floor": ("int64",), "div_trunc": ("int64",), "remainder": ("int64",),
                "fmod": ("int64",), "sign": ("int64",), "bitwise_not": ("bool", "int64"), "bitwise_xor": ("bool",),
                "logical_xor": ("bool",), "eq": ("bool",), "where": ("bool",), "add": ("float16",)}
CASTS = ["float16", "float32", "float64", "int64", "int32", "uint8", "bool"]


def main(argv):
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        print("error: run without NUMBA_ENABLE_CUDASIM")
        return 2
    import numpy as np
    from numba import cuda, typeof, types
    try:
        from numba.cuda.cudadrv import nvvm
        nvvm.NVVM()
    except Exception as e:  # no CUDA toolkit here
        print(f"skip: no NVVM ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
        return 0
    import numba.cuda.dispatcher as disp

    class _Device:  # device functions are compiled for the current device's capability: pretend one
        compute_capability = CC

    disp.get_current_device = lambda: _Device()

    import jitorch
    from jitorch.kernels.cuda import elementwise as E
    from jitorch.ops import registry
    from jitorch.ops.elementwise import SPECS, _TEMPLATE
    from tests.test_ops_elementwise import default_attrs, dtypes_for

    every = "--all" in argv
    nb = {"float32": types.float32, "float64": types.float64, "float16": types.float16, "int64": types.int64,
          "int32": types.int32, "int16": types.int16, "int8": types.int8, "uint8": types.uint8,
          "bool": types.boolean}

    def signature(ctype, rank, kinds, in_dtypes, out_dtype, params):
        ct = nb["float32" if ctype == "float16" else ctype]
        args = []
        tup = types.UniTuple(types.int64, rank) if rank else None
        for k, kind in enumerate(kinds):
            if kind == "s":
                args.append(ct)
            elif rank:
                args += [types.Array(nb[in_dtypes[k]], 1, "C"), types.int64, tup]
            else:
                args.append(types.Array(nb[in_dtypes[k]], 1, "C"))
        args += [types.Array(nb[out_dtype], 1, "C")] + ([types.int64, tup, tup] if rank else [types.int64])
        args += [typeof(p) for p in params]
        return types.void(*args)

    failures, count = [], 0

    def check(what, name, ctype, rank, kinds, in_dtypes, out_dtype, params):
        nonlocal count
        count += 1
        k = E.load_source(E.kernel_source(name, ctype, rank, kinds), prefix="cuew").k
        try:
            cuda.compile_ptx(k.py_func, signature(ctype, rank, kinds, in_dtypes, out_dtype, params), cc=CC)
        except Exception as e:
            failures.append(f"{what}: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}")

    dtypes = ("float32", "float64", "float16", "int64", "bool") if every else ("float32",)
    for name, nin, attrs, *_ in SPECS:
        if not every and name not in SAMPLE:
            continue
        op = registry.get(name)
        for dt in dtypes_for(name):
            if dt.name not in dtypes and not (not every and dt.name in SAMPLE_OTHER.get(name, ())):
                continue
            ts = [jitorch.zeros(1, dtype=dt)] * nin
            if name == "where":
                ts = [jitorch.zeros(1, dtype=jitorch.bool)] + ts[1:]
            a = default_attrs(name, dt)
            if name == "nan_to_num":
                a = dict(nan=0.0, posinf=1.0, neginf=-1.0)
            out_dt, ctype = op.dtype_rule(*ts, **a).name, op.compute_rule(*ts, **a).name
            params = [a[k] for k, _ in attrs]
            in_dt = [t.dtype.name for t in ts]
            forms = [(2, "a" * nin)] + ([(0, "a" * nin)] if every else [])
            if nin > 1 and name != "where" and (every or name in ("add", "pow", "where", "lerp")):
                forms.append((1, "a" + "s" * (nin - 1)))
            for rank, kinds in forms:
                check(f"{name} {dt.name} rank={rank} {kinds}", _TEMPLATE.get(name, name), ctype, rank, kinds, in_dt,
                      out_dt, params)
    for src, dst in itertools.product(CASTS, repeat=2):
        if every or "float16" in (src, dst):
            check(f"_copy {src}->{dst}", "_copy", src, 2, "a", [src], dst, [])
    for dt in CASTS:
        value = np.bool_(False) if dt == "bool" else np.dtype("float32" if dt == "float16" else dt).type(0)
        check(f"_fill {dt}", "_fill", dt, 1, "", [], dt, [value])  # the backend passes the compute type
    if failures:
        print("\n".join(failures))
        return 1
    print(f"ok {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

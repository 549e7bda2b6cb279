"""CUDA elementwise kernels generated from the scalar definitions in :mod:`jitorch.kernels.scalar`.

The same ``EXPR`` templates as the CPU kernels are rendered by :func:`scalar.render`, then a few
NumPy calls that numba.cuda does not support on scalars (``np.sqrt``, ``np.floor``, ``np.rint``,
...) are replaced by the device helpers below, and the dtype functions (``exp_f32``/``exp_f64``,
...) by CUDA versions on ``math`` (libdevice on a GPU). Every helper is plain Python that is
correct both on a GPU and under numba's simulator, where ``math.log(0)`` or ``math.exp(1000)``
would raise instead of returning -inf/inf: the guards (one compare and select each) keep IEEE
results in both.

One generated module holds one kernel ``k`` for a *signature*:

- ``name``: an EXPR key, or ``"_copy"`` (``out = x0``, converted on store) or ``"_fill"``
  (``out = p0``, no tensor operand);
- ``ctype``: the dtype name operands are converted to before the expression (float16 computes in
  float32; stores convert to the output array's dtype);
- ``rank``: 0 for the flat form (every array operand and ``out`` contiguous, same size), else the
  number of (collapsed) dims of the strided form;
- ``kinds``: one letter per tensor operand, ``"a"`` a device array, ``"s"`` a scalar passed by value.

Arguments of ``k``:

- flat form: ``(x0, x1, ..., out, n, p0, p1, ...)``, arrays 1-D, ``n`` the element count;
- strided form: for each operand ``x{k}`` then, for arrays, ``o{k}`` (offset in elements) and
  ``t{k}`` (tuple of ``rank`` element strides, 0 where broadcast); then ``out, oo, to, shape``
  (tuple of ``rank`` sizes) and the params. Arrays are the flat 1-D buffers of the tensors.

The loop is a grid-stride loop (launch with :func:`launch.launch`); kernels never check bounds,
the caller guarantees that every offset is inside its buffer.
"""
from __future__ import annotations

import inspect
import math  # noqa: F401  (helpers below are also run as plain Python by the simulator)
import re

import numpy as np  # noqa: F401

from jitorch.kernels import scalar
from jitorch.kernels._jitcache import load_source

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_cache: dict = {}

# NumPy scalar functions without a numba.cuda lowering (numba/cuda/ufuncs.py has no sqrt, floor, ...)
# and math functions that raise in Python (the simulator) where CUDA returns inf/nan.
_SUBS = (
    ("np.sqrt(", "cu_sqrt("), ("np.floor(", "cu_floor("), ("np.ceil(", "cu_ceil("), ("np.trunc(", "cu_trunc("),
    ("np.rint(", "cu_rint("), ("np.copysign(", "math.copysign("), ("np.fmod(", "cu_fmod("),
    ("np.signbit(", "cu_signbit("), ("np.bool_(", "bool("), ("math.lgamma(", "cu_lgamma("),
    ("math.sin(", "cu_sin("), ("math.cos(", "cu_cos("), ("math.tan(", "cu_tan("),
    ("math.sinh(", "cu_sinh("), ("math.cosh(", "cu_cosh("),
)
_DTYPE_FUNCS = {f"{f}_{s}": f"cu_{f}" for f in scalar.DTYPE_FUNCS for s in ("f32", "f64")}


# ---- device helpers (plain Python; the generated module defines T_ as the compute type) ----------------------

def cu_sqrt(x):
    return T_(math.sqrt(x)) if x >= 0 else T_(math.nan)


def cu_floor(x):
    # |x| >= 2**52 (and inf, nan) is already integral; math.floor returns an integer
    return T_(math.floor(x)) if abs(x) < 4503599627370496.0 else x


def cu_ceil(x):
    return T_(math.ceil(x)) if abs(x) < 4503599627370496.0 else x


def cu_trunc(x):
    return T_(int(x)) if abs(x) < 4503599627370496.0 else x


def cu_rint(x):
    # round() of one argument rounds half to even, like np.rint
    return T_(round(x)) if abs(x) < 4503599627370496.0 else x


def cu_fmod(a, b):
    if a != a or b != b or b == 0 or abs(a) == math.inf:
        return T_(math.nan)
    if abs(b) == math.inf:
        return a
    return T_(math.fmod(a, b))


def cu_signbit(x):
    return math.copysign(1.0, x) < 0


def cu_sin(x):
    return T_(math.sin(x)) if abs(x) < math.inf else T_(math.nan)


def cu_cos(x):
    return T_(math.cos(x)) if abs(x) < math.inf else T_(math.nan)


def cu_tan(x):
    return T_(math.tan(x)) if abs(x) < math.inf else T_(math.nan)


def cu_sinh(x):
    if abs(x) > 710.0:
        return T_(math.copysign(math.inf, x))
    return T_(math.sinh(x))


def cu_cosh(x):
    if abs(x) > 710.0:
        return T_(math.inf)
    return T_(math.cosh(x))


def cu_lgamma(x):
    if x != x:
        return x
    if abs(x) == math.inf:
        return T_(math.inf)
    if x <= 0 and (x <= -4503599627370496.0 or x == math.floor(x)):
        return T_(math.inf)  # the poles 0, -1, -2, ...
    return T_(math.lgamma(x))


def cu_exp(x):
    if x != x:
        return x
    if x > 709.0:
        return T_(math.inf)
    return T_(math.exp(x))


def cu_exp2(x):
    if x != x:
        return x
    if x > 1024.0:
        return T_(math.inf)
    if x < -1100.0:
        return T_(0.0)
    return T_(2.0 ** x)


def cu_expm1(x):
    if x != x:
        return x
    if x > 709.0:
        return T_(math.inf)
    return T_(math.expm1(x))


def cu_log(x):
    if x > 0:
        return T_(math.log(x))
    return T_(-math.inf) if x == 0 else T_(math.nan)


def cu_log2(x):
    if x > 0:
        return T_(math.log2(x))
    return T_(-math.inf) if x == 0 else T_(math.nan)


def cu_log1p(x):
    if x > -1:
        return T_(math.log1p(x))
    return T_(-math.inf) if x == -1 else T_(math.nan)


def cu_tanh(x):
    return T_(math.tanh(x))


def cu_sigmoid(x):
    # split on the sign so exp never overflows
    if x >= 0:
        return T_(1.0 / (1.0 + math.exp(-x)))
    e = math.exp(x)
    return T_(e / (1.0 + e))


def cu_erf(x):
    return T_(math.erf(x))


def xlogy_(x, y):
    # overrides kernels.scalar.xlogy_: math.log would raise in the simulator for y <= 0
    if y != y:
        return y
    if x == 0:
        return x * 0
    return T_(x * cu_log(y))


# ------------------------------------------------------------------------------------------------------------------

def _helper_table():
    table = {}
    for name, obj in vars(scalar).items():
        if inspect.isfunction(obj) and obj.__module__ == scalar.__name__ and name != "render":
            table[name] = obj
    for name, obj in globals().items():  # ours win (xlogy_)
        if inspect.isfunction(obj) and obj.__module__ == __name__ and (name.startswith("cu_") or name == "xlogy_"):
            table[name] = obj
    return table


def _helpers(code: str) -> str:
    """Source of every helper ``code`` calls (transitively), each as a numba.cuda device function."""
    table = _helper_table()
    needed, order = set(), []

    def visit(text):
        for ident in _IDENT.findall(text):
            if ident in table and ident not in needed:
                needed.add(ident)
                src = inspect.getsource(table[ident])
                visit(src)
                order.append(ident)

    visit(code)
    parts = []
    for name in order:
        fn = table[name]
        src = inspect.getsource(fn)
        if fn.__module__ != __name__:  # kernels.scalar helpers get the same substitutions as templates
            src = _cuda_text(src)
        parts.append(f"@cuda.jit(device=True)\n{src}")
    return "\n\n".join(parts)


def _cuda_text(text: str) -> str:
    for old, new in _SUBS:
        text = text.replace(old, new)
    return _IDENT.sub(lambda m: _DTYPE_FUNCS.get(m.group(0), m.group(0)), text)


def render(name: str, operands, params, ctype: str) -> str:
    """The CUDA expression of elementwise op ``name`` (an EXPR key) computing in ``ctype``."""
    return _cuda_text(scalar.render(name, operands, params, ctype))


def _type_name(ctype: str) -> str:
    if ctype == "bool":
        return "bool"
    return "np.float32" if ctype == "float16" else f"np.{ctype}"


def _arity(name):
    if name == "_copy":
        return 1, 0
    if name == "_fill":
        return 0, 1
    nin, nparams, _ = scalar.EXPR[name]
    return nin, nparams


def kernel_source(name: str, ctype: str, rank: int, kinds: str) -> str:
    """The generated module (deterministic text) for one signature; see the module docstring."""
    nin, nparams = _arity(name)
    if len(kinds) != nin or set(kinds) - {"a", "s"}:
        raise ValueError(f"kernel_source({name!r}): kinds {kinds!r} must have one 'a'/'s' per operand ({nin})")
    if rank < 0:
        raise ValueError(f"kernel_source({name!r}): rank must be >= 0, got {rank}")
    if rank == 0 and "s" in kinds and name == "_copy":
        raise ValueError("kernel_source('_copy'): the flat form needs an array operand")
    tname = _type_name(ctype)
    # where's condition is read as is; a copy converts on store only, except float16 sources, which go
    # through float32 (numba.cuda cannot convert float16 to bool directly: NVVM rejects the IR)
    uncast = {0} if name == "where" or (name == "_copy" and ctype != "float16") else set()
    params = [f"p{j}" for j in range(nparams)]
    args, lines = [], []
    if rank == 0:
        index = {k: "i" for k in range(nin)}
        for k in range(nin):
            args.append(f"x{k}")
        args += ["out", "n"] + params
        out_index = "i"
        loop_total = "n"
    else:
        dims = range(rank)
        for k in range(nin):
            args.append(f"x{k}")
            if kinds[k] == "a":
                args += [f"o{k}", f"t{k}"]
                lines.append(f"{', '.join(f's{k}_{d}' for d in dims)}{',' if rank == 1 else ''} = t{k}")
        args += ["out", "oo", "to", "shape"] + params
        lines.append(f"{', '.join(f'so_{d}' for d in dims)}{',' if rank == 1 else ''} = to")
        lines.append(f"{', '.join(f'n{d}' for d in dims)}{',' if rank == 1 else ''} = shape")
        lines.append("total = " + " * ".join(f"n{d}" for d in dims))
        loop_total = "total"

        def offset(prefix, base):
            return " + ".join([base] + [f"c{d} * {prefix}_{d}" for d in dims])
        index = {k: offset(f"s{k}", f"o{k}") for k in range(nin)}
        out_index = offset("so", "oo")
    body = []
    if rank > 0:
        body.append("r = i")
        for d in range(rank - 1, 0, -1):
            body.append(f"c{d} = r % n{d}")
            body.append(f"r = r // n{d}")
        body.append("c0 = r")
    operands = []
    for k in range(nin):
        v = f"a{k}"
        src = f"x{k}[{index[k]}]" if kinds[k] == "a" else f"x{k}"
        if kinds[k] == "s" or k in uncast:
            body.append(f"{v} = {src}")
        else:
            body.append(f"{v} = {tname}({src})")
        operands.append(v)
    if name == "_copy":
        expr = "a0"
    elif name == "_fill":
        expr = "p0"
    else:
        expr = render(name, operands, params, "float32" if ctype == "float16" else ctype)
    body.append(f"out[{out_index}] = {expr}")
    head = [
        f"# generated by jitorch.kernels.cuda.elementwise: op {name!r}, compute type {ctype}, rank {rank}, "
        f"operands {kinds!r}",
        "import math",
        "import numpy as np",
        "from numba import cuda",
        "",
        f"T_ = {tname}",
        "",
    ]
    helpers = _helpers(expr)
    if helpers:
        head += [helpers, "", ""]
    src = head + ["@cuda.jit(cache=True)", f"def k({', '.join(args)}):"]
    src += ["    " + ln for ln in lines]
    src += [
        "    i = cuda.grid(1)",
        "    step = cuda.gridsize(1)",
        f"    while i < {loop_total}:",
    ]
    src += ["        " + ln for ln in body]
    src += ["        i += step", ""]
    return "\n".join(src)


def get_kernel(name: str, ctype: str, rank: int, kinds: str):
    """The compiled-on-demand kernel ``k`` for one signature (cached in memory and on disk)."""
    key = (name, ctype, rank, kinds)
    k = _cache.get(key)
    if k is None:
        k = _cache[key] = load_source(kernel_source(name, ctype, rank, kinds), prefix="cuew").k
    return k

"""Scalar definitions of the elementwise ops: one source for eager kernels, fused kernels and CUDA.

Each entry of :data:`EXPR` is a Python expression template over the operands ``{0}``, ``{1}``,
``{2}`` (already converted to the compute type), the op's scalar parameters ``{p0}``, ``{p1}``
(passed to the kernel at call time, so a new value never recompiles), the compute type
constructor ``{T}`` (``np.float32``, ``np.int64`` ...) and dtype-resolved functions written
``{exp}``: :func:`render` replaces ``{exp}`` by ``exp_f32`` (jitorch's vectorizable float32
version, :mod:`scalar_math`) for float32 and by ``exp_f64`` (libm) for float64. The helper
functions named in templates live in :mod:`scalar_jit` (numba, inlined) and are plain Python
here and in :mod:`scalar_math`, so numba.cuda can compile the same bodies as device functions.

Templates are strings rather than Python functions so the fuser can inline a chain of them
into one loop body, one line per IR node.
"""
from __future__ import annotations

# Functions whose float32 version is jitorch's own polynomial (scalar_math.<name>_f32) and whose
# float64 version is libm's (math.<name>), resolved by render().
DTYPE_FUNCS = ("exp", "expm1", "log", "log1p", "tanh", "sigmoid", "erf", "exp2", "log2")

# name -> (number of tensor operands, number of scalar params, template)
EXPR = {
    # ---- unary, floating results
    "exp": (1, 0, "{exp}({0})"),
    "exp2": (1, 0, "{exp2}({0})"),
    "expm1": (1, 0, "{expm1}({0})"),
    "log": (1, 0, "{log}({0})"),
    "log2": (1, 0, "{log2}({0})"),
    "log10": (1, 0, "{log}({0}) * {T}(0.4342944819032518)"),
    "log1p": (1, 0, "{log1p}({0})"),
    "sqrt": (1, 0, "np.sqrt({0})"),
    "rsqrt": (1, 0, "{T}(rsqrt_({0}))"),  # float64 inside: rsqrt_ explains
    "sin": (1, 0, "math.sin({0})"),
    "cos": (1, 0, "math.cos({0})"),
    "tan": (1, 0, "math.tan({0})"),
    "asin": (1, 0, "math.asin({0}) if abs({0}) <= 1 else {T}(np.nan)"),
    "acos": (1, 0, "math.acos({0}) if abs({0}) <= 1 else {T}(np.nan)"),
    "atan": (1, 0, "math.atan({0})"),
    "sinh": (1, 0, "math.sinh({0})"),
    "cosh": (1, 0, "math.cosh({0})"),
    "tanh": (1, 0, "{tanh}({0})"),
    "asinh": (1, 0, "math.asinh({0})"),
    "acosh": (1, 0, "math.acosh({0}) if {0} >= 1 else {T}(np.nan)"),
    "atanh": (1, 0, "atanh_({0})"),
    "erf": (1, 0, "{erf}({0})"),
    "erfc": (1, 0, "math.erfc({0})"),
    "erfinv": (1, 0, "erfinv_({0})"),
    "lgamma": (1, 0, "math.lgamma({0})"),
    "sigmoid": (1, 0, "{sigmoid}({0})"),
    "reciprocal": (1, 0, "{T}(1) / {0}"),
    "frac": (1, 0, "{0} - np.trunc({0})"),
    # ---- unary, same dtype
    "neg": (1, 0, "-{0}"),
    "abs": (1, 0, {"f": "abs({0})", "i": "abs({0})", "b": "{0}"}),
    "sign": (1, 0, "{T}(1) if {0} > 0 else ({T}(-1) if {0} < 0 else {T}(0))"),  # sign(nan) = 0 as torch
    "relu": (1, 0, "max_({0}, {T}(0))"),
    "floor": (1, 0, {"f": "np.floor({0})", "i": "{0}"}),
    "ceil": (1, 0, {"f": "np.ceil({0})", "i": "{0}"}),
    "round": (1, 0, {"f": "np.rint({0})", "i": "{0}"}),
    "round_decimals": (1, 1, "np.rint({0} * {T}({p0})) / {T}({p0})"),
    "trunc": (1, 0, {"f": "np.trunc({0})", "i": "{0}"}),
    "square": (1, 0, "{0} * {0}"),
    "positive": (1, 0, "{0}"),
    "bitwise_not": (1, 0, {"i": "~{0}", "b": "not {0}"}),
    "logical_not": (1, 0, "not {0}"),
    "isnan": (1, 0, {"f": "{0} != {0}", "*": "False"}),
    "isinf": (1, 0, {"f": "abs({0}) == np.inf", "*": "False"}),
    "isposinf": (1, 0, {"f": "{0} == np.inf", "*": "False"}),
    "isneginf": (1, 0, {"f": "{0} == -np.inf", "*": "False"}),
    "isfinite": (1, 0, {"f": "abs({0}) < np.inf", "*": "True"}),
    "signbit": (1, 0, {"f": "np.signbit({0})", "i": "{0} < 0", "b": "False"}),
    "nan_to_num": (1, 3, {"f": "nan_to_num_({0}, {T}({p0}), {T}({p1}), {T}({p2}))", "*": "{0}"}),
    "fill": (1, 1, "{T}({p0})"),
    # ---- unary with a scalar parameter (activations used by nn)
    "leaky_relu": (1, 1, "{0} if {0} > 0 else {0} * {T}({p0})"),
    "elu": (1, 1, "{0} if {0} > 0 else {T}({p0}) * {expm1}({0})"),
    "softplus": (1, 2, "softplus_({0}, {T}({p0}), {T}({p1}))"),
    "hardtanh": (1, 2, "min_(max_({0}, {T}({p0})), {T}({p1}))"),
    "clamp_min": (1, 1, "max_({0}, {T}({p0}))"),
    "clamp_max": (1, 1, "min_({0}, {T}({p0}))"),
    "clamp": (1, 2, "min_(max_({0}, {T}({p0})), {T}({p1}))"),
    "pow_scalar": (1, 1, "{0} ** {T}({p0})"),
    "rpow_scalar": (1, 1, "{T}({p0}) ** {0}"),
    # ---- binary
    "add": (2, 0, "{0} + {1}"),
    "add_alpha": (2, 1, "{0} + {1} * {T}({p0})"),
    "sub": (2, 0, "{0} - {1}"),
    "sub_alpha": (2, 1, "{0} - {1} * {T}({p0})"),
    "mul": (2, 0, "{0} * {1}"),
    "div": (2, 0, "{0} / {1}"),
    "div_trunc": (2, 0, {"f": "np.trunc({0} / {1})", "i": "idiv_trunc_({0}, {1})"}),
    "div_floor": (2, 0, "div_floor_({0}, {1})"),
    "remainder": (2, 0, "remainder_({0}, {1})"),
    "fmod": (2, 0, {"f": "np.fmod({0}, {1})", "i": "ifmod_({0}, {1})"}),
    "pow": (2, 0, {"f": "{0} ** {1}", "i": "ipow_({0}, {1})"}),
    "atan2": (2, 0, "math.atan2({0}, {1})"),
    "hypot": (2, 0, "{T}(hypot_({0}, {1}))"),
    "copysign": (2, 0, "np.copysign({0}, {1})"),
    "maximum": (2, 0, "nanmax_({0}, {1})"),
    "minimum": (2, 0, "nanmin_({0}, {1})"),
    "fmax": (2, 0, "fmax_({0}, {1})"),
    "fmin": (2, 0, "fmin_({0}, {1})"),
    "eq": (2, 0, "{0} == {1}"),
    "ne": (2, 0, "{0} != {1}"),
    "lt": (2, 0, "{0} < {1}"),
    "le": (2, 0, "{0} <= {1}"),
    "gt": (2, 0, "{0} > {1}"),
    "ge": (2, 0, "{0} >= {1}"),
    "logical_and": (2, 0, "({0} != 0) and ({1} != 0)"),
    "logical_or": (2, 0, "({0} != 0) or ({1} != 0)"),
    "logical_xor": (2, 0, "({0} != 0) != ({1} != 0)"),
    "bitwise_and": (2, 0, {"i": "{0} & {1}", "b": "{0} and {1}"}),
    "bitwise_or": (2, 0, {"i": "{0} | {1}", "b": "{0} or {1}"}),
    "bitwise_xor": (2, 0, {"i": "{0} ^ {1}", "b": "{0} != {1}"}),
    "bitwise_left_shift": (2, 0, "{0} << {1}"),
    "bitwise_right_shift": (2, 0, "{0} >> {1}"),
    "xlogy": (2, 0, "xlogy_({0}, {1})"),
    "clamp_tensor": (3, 0, "min_(max_({0}, {1}), {2})"),
    # ---- ternary
    "where": (3, 0, "{1} if {0} else {2}"),  # operand 0 is the bool condition (not cast)
    "lerp": (3, 0, "{0} + {2} * ({1} - {0})"),
    "addcmul": (3, 1, "{0} + {T}({p0}) * {1} * {2}"),
    "addcdiv": (3, 1, "{0} + {T}({p0}) * {1} / {2}"),
}

# Ops that produce a bool regardless of the compute type.
BOOL_RESULT = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
                         "logical_not", "isnan", "isinf", "isposinf", "isneginf", "isfinite", "signbit"})


def render(name: str, operands, params, ctype: str) -> str:
    """The expression of op ``name`` for compute type ``ctype`` ('float32', 'int64', ...).

    ``operands`` and ``params`` are the source strings to substitute (variable names in a kernel).
    """
    arity, nparams, template = EXPR[name]
    if isinstance(template, dict):
        kind = "f" if ctype.startswith("float") else ("b" if ctype == "bool" else "i")
        template = template.get(kind, template.get("*"))
        if template is None:
            raise TypeError(f"scalar.render({name!r}): no definition for {ctype}")
    if len(operands) != arity or len(params) != nparams:
        raise ValueError(f"scalar.render({name!r}): expected {arity} operands and {nparams} params")
    suffix = "f32" if ctype == "float32" else "f64"
    subs = {f: f"{f}_{suffix}" for f in DTYPE_FUNCS}
    subs["T"] = f"np.{'bool_' if ctype == 'bool' else ctype}"
    for i, p in enumerate(params):
        subs[f"p{i}"] = p
    return template.format(*operands, **subs)


# ---- helpers named in templates. Plain Python; scalar_jit compiles them with numba.

def max_(a, b):
    # NaN-propagating like torch.clamp/relu: a NaN input stays NaN
    return a if (a > b or a != a) else b


def min_(a, b):
    return a if (a < b or a != a) else b


def nanmax_(a, b):
    # torch.maximum: NaN if either is NaN
    if a != a:
        return a
    if b != b:
        return b
    return a if a > b else b


def nanmin_(a, b):
    if a != a:
        return a
    if b != b:
        return b
    return a if a < b else b


def fmax_(a, b):
    # torch.fmax: ignores a NaN unless both are NaN
    if a != a:
        return b
    if b != b:
        return a
    return a if a > b else b


def fmin_(a, b):
    if a != a:
        return b
    if b != b:
        return a
    return a if a < b else b


def atanh_(a):
    if abs(a) > 1:
        return a * 0 + np.nan
    if a == 1:
        return a * 0 + np.inf
    if a == -1:
        return a * 0 - np.inf
    return math.atanh(a)


def idiv_trunc_(a, b):
    # integer division rounding toward zero; division by zero is rejected by the caller
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def div_floor_(a, b):
    # Python/torch floor division: rounds toward -inf (numba's // on ints already does)
    return a // b


def remainder_(a, b):
    # torch.remainder: the result has the sign of the divisor (Python's %)
    return a % b


def ifmod_(a, b):
    # C fmod on integers: the result has the sign of the dividend
    return a - b * idiv_trunc_(a, b)


def ipow_(a, b):
    # integer power by squaring; negative exponents give 0 except for bases 1 and -1 (torch)
    if b < 0:
        if a == 1:
            return a
        if a == -1:
            return a if (b % 2) != 0 else -a
        return a * 0
    r = a * 0 + 1
    while b > 0:
        if b & 1:
            r = r * a
        a = a * a
        b = b >> 1
    return r


def xlogy_(x, y):
    if y != y:
        return y
    if x == 0:
        return x * 0
    return x * math.log(y)


def rsqrt_(x):
    # 1/sqrt in float64. Under fastmath LLVM turns a float32 1/sqrt into the hardware reciprocal-square-root estimate
    # plus a Newton step in vectorized loops but not in scalar ones (so a vectorized eager kernel and a scalar
    # in-place one disagreed by an ulp), and the estimate gives nan for 0 and inf and -inf for subnormals. x86 has no
    # float64 estimate below AVX-512, so this is a correctly rounded sqrt and division, then one rounding to the
    # result type: deterministic in every loop shape, exact for float32 subnormals; the loop still vectorizes.
    y = np.float64(x)
    # (negative or NaN: NaN, math.sqrt would raise; a typed 1 divides by 0 without raising on the simulator)
    r = np.float64(1.0) / math.sqrt(y if y >= 0.0 else np.inf - np.inf)
    r = 0.0 if y == np.inf else r
    return np.copysign(np.inf, y) if y == 0.0 else r


def hypot_(a, b):
    # C99/torch hypot: inf when either operand is infinite (even with a NaN), else NaN when either is NaN.
    # Computed in float64 (float32 squares cannot overflow there); float64 magnitudes whose squares would overflow
    # or underflow use m * sqrt(1 + (n/m)**2) instead. Both forms are computed, then selected: the loop vectorizes.
    x = abs(np.float64(a))
    y = abs(np.float64(b))
    m = x if x > y else y
    n = y if x > y else x
    r = n / m
    far = m * math.sqrt(1.0 + r * r)
    near = math.sqrt(x * x + y * y)
    h = far if (m > 1e150) | ((m < 1e-150) & (m != 0.0)) else near
    return np.inf if (x == np.inf) | (y == np.inf) else h


def nan_to_num_(a, nan, posinf, neginf):
    if a != a:
        return nan
    if a == np.inf:
        return posinf
    if a == -np.inf:
        return neginf
    return a


def softplus_(x, beta, threshold):
    # torch: linear above threshold to avoid overflow of exp
    bx = x * beta
    if bx > threshold:
        return x
    return math.log1p(math.exp(bx)) / beta


def erfinv_(y):
    # Giles' single-precision approximation (max rel. error ~1e-7 in float64 evaluation),
    # refined with two Newton steps on erf for float64 accuracy.
    if y <= -1:
        return -np.inf if y == -1 else np.nan
    if y >= 1:
        return np.inf if y == 1 else np.nan
    w = -math.log((1.0 - y) * (1.0 + y))
    if w < 5.0:
        w = w - 2.5
        p = 2.81022636e-08
        p = 3.43273939e-07 + p * w
        p = -3.5233877e-06 + p * w
        p = -4.39150654e-06 + p * w
        p = 0.00021858087 + p * w
        p = -0.00125372503 + p * w
        p = -0.00417768164 + p * w
        p = 0.246640727 + p * w
        p = 1.50140941 + p * w
    else:
        w = math.sqrt(w) - 3.0
        p = -0.000200214257
        p = 0.000100950558 + p * w
        p = 0.00134934322 + p * w
        p = -0.00367342844 + p * w
        p = 0.00573950773 + p * w
        p = -0.0076224613 + p * w
        p = 0.00943887047 + p * w
        p = 1.00167406 + p * w
        p = 2.83297682 + p * w
    x = p * y
    for _ in range(2):
        err = math.erf(x) - y
        x = x - err / (1.1283791670955126 * math.exp(-x * x))
    return x


import math  # noqa: E402  (after the templates so the table reads first)

import numpy as np  # noqa: E402


# ---- float64 versions of DTYPE_FUNCS (libm is accurate and reasonably fast in double)

def exp_f64(x):
    return math.exp(x)


def exp2_f64(x):
    return 2.0 ** x


def expm1_f64(x):
    return math.expm1(x)


def log_f64(x):
    return math.log(x) if x > 0 else (-np.inf if x == 0 else np.nan)


def log2_f64(x):
    return math.log2(x) if x > 0 else (-np.inf if x == 0 else np.nan)


def log1p_f64(x):
    return math.log1p(x) if x > -1 else (-np.inf if x == -1 else np.nan)


def tanh_f64(x):
    return math.tanh(x)


def sigmoid_f64(x):
    # split on the sign so exp never overflows
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def erf_f64(x):
    return math.erf(x)

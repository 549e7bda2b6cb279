"""Kernel sources for the native build: numba ``@cfunc`` functions over raw pointers and int64 sizes.

Every kernel is the text of a small self-contained module (deterministic: the same kernel gives
the same bytes, so identical kernels are shared and cached by content) defining ``kernel``, a
``cfunc`` with ``error_model='numpy'``, no ``parallel``, no allocation. Its C prototype is
``Kernel.params``. Threaded kernels take ``lo, hi`` last: the range of their outermost loop that
one call computes (the C driver's thread pool splits it).

- :func:`elementwise`: a fused group (or a copy) as loops over up to a few collapsed dims, every
  operand with its own strides (0 on broadcast dims); expressions come from the op table's scalar
  templates (``kernels.scalar``) through :mod:`jitorch.jit.fuse`, as in the in-process compiler.
- :func:`reduce_rows`, :func:`softmax_rows`: row-wise over a contiguous (rows, n) input.
- :func:`gemm`: C = A @ B for contiguous 2-d operands through kernels/gemm.py's cache-blocked
  kernel, a row range per call.
- :func:`conv2d`, :func:`max_pool2d`, :func:`avg_pool2d`, :func:`adaptive_avg_pool2d`: wrap the
  library's njit kernels (kernels/conv.py, kernels/pool.py) over ``numba.carray`` views.
- :func:`index_select`: rows gathered by an index vector, range-checked (returns -1 on a bad index).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

NB = {"float32": "float32", "float64": "float64", "int64": "int64", "int32": "int32", "int16": "int16",
      "int8": "int8", "uint8": "uint8", "bool": "uint8"}
CT = {"float32": "float", "float64": "double", "int64": "int64_t", "int32": "int32_t", "int16": "int16_t",
      "int8": "int8_t", "uint8": "uint8_t", "bool": "uint8_t"}


@dataclass(frozen=True)
class Kernel:
    name: str          # C symbol
    source: str        # the module text defining `kernel`
    params: tuple      # ((C type, name), ...)
    ret: str = "void"  # C return type ("void" or "int64_t": 0 ok, else an error)


def _header():
    from ...kernels._config import FASTMATH
    return ["import math", "import numpy as np", "from numba import carray, cfunc, njit, types",
            "FASTMATH = {" + ", ".join(repr(f) for f in sorted(FASTMATH)) + "}", ""]


def _finish(prefix, lines, params, ret="void"):
    """Build the Kernel: the cfunc signature from ``params`` ((C type, name, numba type) triples)."""
    sig = ", ".join(p[2] for p in params)
    rtype = "types.int64" if ret != "void" else "types.void"
    body = "\n".join(lines)
    text = "\n".join(_header()) + f"\nSIG = {rtype}({sig})\n\n" + body + "\n"
    name = f"jt_{prefix}_{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    return Kernel(name, text, tuple((p[0], p[1]) for p in params), ret)


def _ptr(dtype, name):
    return (CT[dtype] + " *", name, f"types.CPointer(types.{NB[dtype]})")


def _i64(name):
    return ("int64_t", name, "types.int64")


def _f64(name):
    return ("double", name, "types.float64")


DECO = "@cfunc(SIG, nopython=True, fastmath=FASTMATH, error_model='numpy')"


# ---------------------------------------------------------------------------------------- elementwise

def elementwise(in_dtypes, out_dtypes, rank, in_modes, out_modes, body, store, params=(), helpers=""):
    """Loops over ``rank`` dims (rank >= 1); operand k's element is at ``sum_d i_d * s_k_d``.

    ``in_modes``/``out_modes``: per operand the innermost stride: 'c' (1), 'b' (0) or 'g' (an
    argument). ``body`` are lines computing from ``a0, a1, ...`` (loaded inputs), ``store`` the
    expression of each output, ``params`` the names of extra float64 scalar arguments.
    C arguments: inputs, outputs, n0..n{rank-1}, strides (operand-major, outer dims, then a 'g'
    innermost one), params, lo, hi (range of dim 0).
    """
    R = rank
    ops = [("x", k, dt, m) for k, (dt, m) in enumerate(zip(in_dtypes, in_modes))] + \
          [("o", k, dt, m) for k, (dt, m) in enumerate(zip(out_dtypes, out_modes))]
    P = [_ptr(dt, f"{p}{k}") for p, k, dt, _ in ops]
    P += [_i64(f"n{d}") for d in range(R)]
    for p, k, dt, m in ops:
        for d in range(R - 1):
            P.append(_i64(f"s{p}{k}_{d}"))
        if m == "g":
            P.append(_i64(f"s{p}{k}_{R - 1}"))
    P += [_f64(q) for q in params]
    P += [_i64("lo"), _i64("hi")]
    lines = []
    if helpers:
        lines += [helpers, ""]
    lines += [DECO, f"def kernel({', '.join(p[1] for p in P)}):"]
    ind = "    "
    for d in range(R):
        rng = "range(lo, hi)" if d == 0 else f"range(n{d})"
        lines.append(ind + f"for i{d} in {rng}:")
        ind += "    "
        if d < R - 1:
            for p, k, dt, m in ops:
                prev = f"b{p}{k}_{d - 1} + " if d > 0 else ""
                lines.append(ind + f"b{p}{k}_{d} = {prev}i{d} * s{p}{k}_{d}")
    last = R - 1

    def index(p, k, m):
        base = f"b{p}{k}_{last - 1}" if R > 1 else "0"
        if m == "c":
            return f"{base} + i{last}"
        if m == "b":
            return base
        return f"{base} + i{last} * s{p}{k}_{last}"

    for p, k, dt, m in ops:
        if p == "x":
            ld = f"x{k}[{index(p, k, m)}]"
            lines.append(ind + f"a{k} = " + (f"{ld} != 0" if dt == "bool" else ld))
    lines += [ind + ln for ln in body]
    for (p, k, dt, m), expr in zip([o for o in ops if o[0] == "o"], store):
        val = f"np.uint8(1) if {expr} else np.uint8(0)" if dt == "bool" else expr
        lines.append(ind + f"o{k}[{index(p, k, m)}] = {val}")
    return _finish("ew", lines, P)


# ---------------------------------------------------------------------------------------- rows

def _exp_fn(dtype):
    from ...kernels import scalar
    return scalar.render("exp", ["v"], [], dtype), scalar.render("log", ["s"], [], dtype)


def _helpers_for(code):
    from ...kernels.elementwise import emit_helpers
    return emit_helpers(code)


def reduce_rows(op, dtype, correction=0):
    """o[r] = op over x[r, 0:n] for a contiguous (rows, n) x; threaded over rows."""
    T = f"np.{dtype}"
    P = [_ptr(dtype, "x"), _ptr(dtype, "o"), _i64("n"), _i64("lo"), _i64("hi")]
    body = {
        "sum": [f"acc = {T}(0)", "for j in range(n):", "    acc += x[b + j]", "o[r] = acc"],
        "mean": [f"acc = {T}(0)", "for j in range(n):", "    acc += x[b + j]", f"o[r] = acc / {T}(n)"],
        "prod": [f"acc = {T}(1)", "for j in range(n):", "    acc *= x[b + j]", "o[r] = acc"],
        "amax": [f"acc = {T}(-np.inf)", "for j in range(n):", "    acc = nanmax_(acc, x[b + j])", "o[r] = acc"],
        "amin": [f"acc = {T}(np.inf)", "for j in range(n):", "    acc = nanmin_(acc, x[b + j])", "o[r] = acc"],
        "var": [f"acc = {T}(0)", "for j in range(n):", "    acc += x[b + j]", f"mu = acc / {T}(n)",
                f"ss = {T}(0)", "for j in range(n):", "    d = x[b + j] - mu", "    ss += d * d",
                f"den = n - {int(correction)}",
                f"o[r] = ss / {T}(den) if den > 0 else {T}(np.nan)"],
    }[op]
    code = "\n".join(body)
    lines = [_helpers_for(code), "", DECO, f"def kernel({', '.join(p[1] for p in P)}):",
             "    for r in range(lo, hi):", "        b = r * n"]
    lines += ["        " + ln for ln in body]
    return _finish(f"red_{op}", lines, P)


def softmax_rows(op, dtype):
    """softmax / log_softmax over each row of a contiguous (rows, n) x; threaded over rows."""
    T = f"np.{dtype}"
    exp, log = _exp_fn(dtype)
    P = [_ptr(dtype, "x"), _ptr(dtype, "o"), _i64("n"), _i64("lo"), _i64("hi")]
    body = [f"m = {T}(-np.inf)", "for j in range(n):", "    m = max(m, x[b + j])", f"s = {T}(0)"]
    if op == "softmax":
        body += ["for j in range(n):", "    v = x[b + j] - m", f"    e = {exp}", "    o[b + j] = e", "    s += e",
                 f"rs = {T}(1) / s", "for j in range(n):", "    o[b + j] *= rs"]
    else:
        body += ["for j in range(n):", "    v = x[b + j] - m", f"    s += {exp}", f"ls = m + {log}",
                 "for j in range(n):", "    o[b + j] = x[b + j] - ls"]
    code = "\n".join(body)
    lines = [_helpers_for(code), "", DECO, f"def kernel({', '.join(p[1] for p in P)}):",
             "    for r in range(lo, hi):", "        b = r * n"]
    lines += ["        " + ln for ln in body]
    return _finish(op, lines, P)


# ---------------------------------------------------------------------------------------- matmul

def workspace(m, n, k, dtype):
    """Elements of gemm scratch for one thread: kernels/gemm.py's formula, with a size that depends on
    the dynamic dim (or None) bounded by the block size it is clipped to."""
    from ...kernels.gemm import workspace_size
    big = 1 << 40
    return workspace_size(big if m is None else m, big if n is None else n, big if k is None else k, dtype)


#: below this many rows, a product streams B once per row instead of packing it (kernels/gemm.py packs
#: B for every call, which dominates at batch 1: a 784x512 weight is 1.6 MB of copying per call)
SMALL_M = 8

ROWS_BODY = '''
@njit(inline='always', fastmath=FASTMATH, error_model='numpy')
def gemm_rows(a, b, c, n, k, lo, hi, zero):
    """c[i, :] = sum_p a[i, p] * b[p, :] for rows lo..hi (row-major, contiguous): B read row by row."""
    for i in range(lo, hi):
        c0 = i * n
        for j in range(n):
            c[c0 + j] = zero
        a0 = i * k
        for p in range(k):
            v = a[a0 + p]
            b0 = p * n
            for j in range(n):
                c[c0 + j] += v * b[b0 + j]
'''


def gemm(dtype):
    """C (M, N) = A (M, K) @ B (K, N) (contiguous) with kernels/gemm.py's cache-blocked kernel (or, below
    SMALL_M rows, a row loop that reads B once without packing it); threaded over rows of C, thread
    ``tid`` using slice ``tid`` of ``work`` (``wsize`` elements each)."""
    P = [_ptr(dtype, "a"), _ptr(dtype, "b"), _ptr(dtype, "c"), _ptr(dtype, "work"), _i64("m"), _i64("n"),
         _i64("k"), _i64("wsize"), _i64("tid"), _i64("lo"), _i64("hi")]
    lines = ["from jitorch.kernels import gemm as _G", ROWS_BODY, DECO, f"def kernel({', '.join(p[1] for p in P)}):",
             f"    if m < {SMALL_M}:",
             f"        gemm_rows(a, b, c, n, k, lo, hi, np.{dtype}(0))",
             "        return",
             "    W = carray(work, ((tid + 1) * wsize,))",
             "    _G.gemm(carray(a, (m, k)), carray(b, (k, n)), carray(c, (m, n)), carray(c, (0,)), False,"
             " lo, hi, 0, n, W[tid * wsize:])"]
    return _finish("gemm", lines, P)


# ---------------------------------------------------------------------------------------- conv / pool

def conv2d_cols(dtype):
    """Convolution, step 1 of 3 (as in ops/nn.py): x (N, C*H*W) -> xt (C*H*W, N), then im2col into cols
    (C*KH*KW, OH*OW*N). Serial (memory-bound)."""
    P = [_ptr(dtype, "x"), _ptr(dtype, "xt"), _ptr(dtype, "cols")] + [_i64(n) for n in (
        "N", "C", "H", "W", "KH", "KW", "OH", "OW", "sh", "sw", "ph", "pw", "dh", "dw")]
    lines = ["from jitorch.kernels import conv as _kc", "", DECO,
             f"def kernel({', '.join(p[1] for p in P)}):",
             "    X = carray(x, (N, C * H * W))",
             "    XT = carray(xt, (C * H * W, N))",
             "    _kc.transpose_serial(X, XT, carray(x, (1,)), 1, False)",
             "    _kc.im2col_serial(carray(xt, (C * H * W * N,)), carray(cols, (C * KH * KW * OH * OW * N,)), N, C, 1,"
             " H, W, 1, KH, KW, 1, OH, OW, 1, sh, sw, 0, ph, pw, 1, dh, dw)"]
    return _finish("convcols", lines, P)


def conv2d_gemm(dtype):
    """Convolution, step 2 of 3: y (O, LN) = w (O, R*G) @ cols (R*G, LN) per group, columns lo..hi (the
    threaded split), thread ``tid`` with its ``wsize`` elements of ``work``."""
    P = [_ptr(dtype, "w"), _ptr(dtype, "cols"), _ptr(dtype, "y"), _ptr(dtype, "work")] + [_i64(n) for n in (
        "O", "R", "G", "LN", "wsize", "tid", "lo", "hi")]
    lines = ["from jitorch.kernels import gemm as _G", "", DECO,
             f"def kernel({', '.join(p[1] for p in P)}):",
             "    OG = O // G",
             "    W2 = carray(w, (O, R))",
             "    C2 = carray(cols, (R * G, LN))",
             "    Y2 = carray(y, (O, LN))",
             "    WK = carray(work, (tid + 1, wsize))[tid]",
             "    for g in range(G):",
             "        _G.gemm(W2[g * OG:(g + 1) * OG], C2[g * R:(g + 1) * R], Y2[g * OG:(g + 1) * OG], carray(y, (0,)),"
             " False, 0, OG, lo, hi, WK)"]
    return _finish("convgemm", lines, P)


def conv2d_out(dtype, has_bias):
    """Convolution, step 3 of 3: y (O*L, N) -> out (N, O*L) with the bias of each channel."""
    P = [_ptr(dtype, "y"), _ptr(dtype, "bias"), _ptr(dtype, "out")] + [_i64(n) for n in ("N", "O", "L")]
    lines = ["from jitorch.kernels import conv as _kc", "", DECO,
             f"def kernel({', '.join(p[1] for p in P)}):",
             f"    _kc.transpose_serial(carray(y, (O * L, N)), carray(out, (N, O * L)), "
             f"carray(bias, ({'O' if has_bias else 1},)), L, {has_bias})"]
    return _finish("convout", lines, P)


#: the serial twins of kernels/pool.py's kernels, bound to module globals (a tuple index would make numba
#: treat them as first-class function values)
POOL_HEADER = ["from jitorch.kernels import pool as _kp", "_max_pool = _kp.max_pool_pair[0]",
               "_max_pool_2x2 = _kp.max_pool_2x2_pair[0]", "_avg_pool = _kp.avg_pool_pair[0]",
               "_adaptive_avg = _kp.adaptive_avg_pair[0]", ""]


def max_pool2d(dtype, kernel, stride, padding, dilation):
    """(P, H, W) -> out, idx (P, OH, OW): kernels/pool.py's serial kernel (its 2x2 fast path when it applies)."""
    P = [_ptr(dtype, "x"), _ptr(dtype, "out"), _ptr("int64", "idx")] + [_i64(n) for n in ("P", "H", "W", "OH", "OW")]
    fast = (tuple(kernel), tuple(stride), tuple(padding), tuple(dilation)) == ((2, 2), (2, 2), (0, 0), (1, 1))
    call_fast = "_max_pool_2x2(X, O, I)"
    call = f"_max_pool(X, O, I, {kernel[0]}, {kernel[1]}, {stride[0]}, {stride[1]}, {padding[0]}, " \
           f"{padding[1]}, {dilation[0]}, {dilation[1]})"
    lines = POOL_HEADER + [DECO, f"def kernel({', '.join(p[1] for p in P)}):",
             "    X = carray(x, (P, H, W))", "    O = carray(out, (P, OH, OW))", "    I = carray(idx, (P, OH, OW))"]
    if fast:
        lines += ["    if OH * 2 <= H and OW * 2 <= W:", "        " + call_fast, "    else:", "        " + call]
    else:
        lines.append("    " + call)
    return _finish("maxpool", lines, P)


def avg_pool2d(dtype, kernel, stride, padding, count_include_pad, divisor):
    P = [_ptr(dtype, "x"), _ptr(dtype, "out")] + [_i64(n) for n in ("P", "H", "W", "OH", "OW")]
    lines = POOL_HEADER + [DECO, f"def kernel({', '.join(p[1] for p in P)}):",
             "    X = carray(x, (P, H, W))", "    O = carray(out, (P, OH, OW))",
             f"    _avg_pool(X, O, {kernel[0]}, {kernel[1]}, {stride[0]}, {stride[1]}, {padding[0]}, "
             f"{padding[1]}, {bool(count_include_pad)}, {int(divisor or 0)})"]
    return _finish("avgpool", lines, P)


def adaptive_avg_pool2d(dtype):
    P = [_ptr(dtype, "x"), _ptr(dtype, "out")] + [_i64(n) for n in ("P", "H", "W", "OH", "OW")]
    lines = POOL_HEADER + [DECO, f"def kernel({', '.join(p[1] for p in P)}):",
             "    X = carray(x, (P, H, W))", "    O = carray(out, (P, OH, OW))",
             "    _adaptive_avg(X, O)"]
    return _finish("adavgpool", lines, P)


def index_select(dtype, idx_dtype):
    """out (outer, m, inner) = x (outer, n, inner)[:, idx, :]; returns -1 when an index is outside [0, n)."""
    P = [_ptr(dtype, "x"), _ptr(idx_dtype, "idx"), _ptr(dtype, "out")] + [_i64(n) for n in ("outer", "n", "inner", "m")]
    lines = [DECO, f"def kernel({', '.join(p[1] for p in P)}):",
             "    for j in range(m):",
             "        if idx[j] < 0 or idx[j] >= n:",
             "            return -1",
             "    for a in range(outer):",
             "        for j in range(m):",
             "            src = (a * n + idx[j]) * inner",
             "            dst = (a * m + j) * inner",
             "            for t in range(inner):",
             "                out[dst + t] = x[src + t]",
             "    return 0"]
    return _finish("isel", lines, P, ret="int64_t")


def gather(dtype, idx_dtype):
    """out (outer, m, inner) = x (outer, n, inner) at idx (outer, m, inner) along the middle dim;
    returns -1 when an index is outside [0, n)."""
    P = [_ptr(dtype, "x"), _ptr(idx_dtype, "idx"), _ptr(dtype, "out")] + [_i64(n) for n in ("outer", "n", "inner", "m")]
    lines = [DECO, f"def kernel({', '.join(p[1] for p in P)}):",
             "    for a in range(outer):",
             "        for j in range(m):",
             "            for t in range(inner):",
             "                q = (a * m + j) * inner + t",
             "                i = idx[q]",
             "                if i < 0 or i >= n:",
             "                    return -1",
             "                out[q] = x[(a * n + i) * inner + t]",
             "    return 0"]
    return _finish("gather", lines, P, ret="int64_t")


def scatter(dtype, idx_dtype, reduce, include_self):
    """out = base (outer, n, inner), then out[a, idx[a, j, t], t] (+)= src[a, j, t] for idx/src (outer, m, inner);
    ``reduce`` None (assign) or 'sum'; returns -1 when an index is outside [0, n)."""
    if reduce not in (None, "sum", "add"):
        raise ValueError(reduce)
    P = [_ptr(dtype, "base"), _ptr(idx_dtype, "idx"), _ptr(dtype, "src"), _ptr(dtype, "out")] + \
        [_i64(n) for n in ("outer", "n", "inner", "m")]
    upd = "out[d] = src[q]" if reduce is None else "out[d] += src[q]"
    init = "out[k] = base[k]" if (include_self or reduce is None) else f"out[k] = base[k]"
    lines = [DECO, f"def kernel({', '.join(p[1] for p in P)}):",
             "    for j in range(m * outer * inner):",
             "        if idx[j] < 0 or idx[j] >= n:",
             "            return -1",
             "    for k in range(outer * n * inner):",
             f"        {init}"]
    if reduce is not None and not include_self:
        lines += ["    for a in range(outer):", "        for j in range(m):", "            for t in range(inner):",
                  "                q = (a * m + j) * inner + t",
                  f"                out[(a * n + idx[q]) * inner + t] = np.{dtype}(0)"]
    lines += ["    for a in range(outer):", "        for j in range(m):", "            for t in range(inner):",
              "                q = (a * m + j) * inner + t",
              "                d = (a * n + idx[q]) * inner + t",
              f"                {upd}",
              "    return 0"]
    return _finish("scatter", lines, P, ret="int64_t")


# ---------------------------------------------------------------------------------------- advanced indexing

def _row_of(k):
    """Lines computing ``row`` (the flat row of the indexed dims) from index tensors 0..k-1 at position j;
    an index in [-size, size) wraps, anything else returns k' + 1 (the failing index tensor)."""
    lines = ["        row = 0"]
    for q in range(k):
        lines += [f"        i = idx[{q} * M + j]",
                  f"        if i < 0:",
                  f"            i += s{q}",
                  f"        if i < 0 or i >= s{q}:",
                  f"            return {q + 1}",
                  f"        row = row * s{q} + i"]
    return lines


def index_rows(dtype, k):
    """out (M, D) = table (V, D)[rows]: ``idx`` (k, M) int64 holds the k broadcast index tensors of the
    indexed dims (sizes s0..s{k-1}, row-major into V rows). Returns 0, or q + 1 when index tensor q has a
    value outside [-s_q, s_q) (nothing is read out of bounds)."""
    P = [_ptr(dtype, "table"), _ptr("int64", "idx"), _ptr(dtype, "out"), _i64("M"), _i64("D")] + \
        [_i64(f"s{q}") for q in range(k)]
    lines = [DECO, f"def kernel({', '.join(p[1] for p in P)}):", "    for j in range(M):"]
    lines += _row_of(k)
    lines += ["        src = row * D", "        dst = j * D", "        for t in range(D):",
              "            out[dst + t] = table[src + t]", "    return 0"]
    return _finish(f"index{k}", lines, P, ret="int64_t")


def index_put_rows(dtype, k, accumulate):
    """table (V, D)[rows[j]] = vals (M, D)[j] (or += with ``accumulate``; duplicates: the last write wins,
    or all add up), in order j = 0..M-1; every index is checked before anything is written (0, or q + 1)."""
    P = [_ptr(dtype, "table"), _ptr("int64", "idx"), _ptr(dtype, "vals"), _i64("M"), _i64("D")] + \
        [_i64(f"s{q}") for q in range(k)]
    upd = "table[dst + t] += vals[src + t]" if accumulate else "table[dst + t] = vals[src + t]"
    lines = [DECO, f"def kernel({', '.join(p[1] for p in P)}):"]
    for check in (True, False):
        lines.append("    for j in range(M):")
        lines += _row_of(k)
        if not check:
            lines += ["        dst = row * D", "        src = j * D", "        for t in range(D):",
                      f"            {upd}"]
    lines.append("    return 0")
    return _finish(f"iput{k}{'a' if accumulate else ''}", lines, P, ret="int64_t")


# ---------------------------------------------------------------------------------------- arg reductions, scans

def arg_rows(op, dtype, values):
    """For each row of a contiguous (rows, n) x: the index of the first max (op 'max') or min (nan wins,
    as the op table's argmax/max_dim), written as int64 to ``oi``; with ``values`` also the value to
    ``ov``. Threaded over rows."""
    isf = dtype in ("float32", "float64")
    P = [_ptr(dtype, "x")] + ([_ptr(dtype, "ov")] if values else []) + [_ptr("int64", "oi"), _i64("n"),
                                                                       _i64("lo"), _i64("hi")]
    better = "v > best" if op == "max" else "v < best"
    lines = [DECO, f"def kernel({', '.join(p[1] for p in P)}):",
             "    for r in range(lo, hi):",
             "        b = r * n",
             "        best = x[b]",
             "        bi = 0"]
    if isf:
        lines += ["        if best == best:",
                  "            for j in range(1, n):",
                  "                v = x[b + j]",
                  "                if v != v:",
                  "                    best = v",
                  "                    bi = j",
                  "                    break",
                  f"                if {better}:",
                  "                    best = v",
                  "                    bi = j"]
    else:
        lines += ["        for j in range(1, n):",
                  "            v = x[b + j]",
                  f"            if {better}:",
                  "                best = v",
                  "                bi = j"]
    lines += ["        oi[r] = bi"]
    if values:
        lines += ["        ov[r] = best"]
    return _finish(f"arg{op}", lines, P)


def scan_rows(op, dtype):
    """Running sum ('cumsum') or product ('cumprod') along each row of a contiguous (rows, n) x into o
    (same dtype; the lowering casts first). Threaded over rows."""
    T = f"np.{dtype}"
    P = [_ptr(dtype, "x"), _ptr(dtype, "o"), _i64("n"), _i64("lo"), _i64("hi")]
    init, upd = (f"{T}(0)", "acc += x[b + j]") if op == "cumsum" else (f"{T}(1)", "acc *= x[b + j]")
    lines = [DECO, f"def kernel({', '.join(p[1] for p in P)}):",
             "    for r in range(lo, hi):",
             "        b = r * n",
             f"        acc = {init}",
             "        for j in range(n):",
             f"            {upd}",
             "            o[b + j] = acc"]
    return _finish(op, lines, P)


# ---------------------------------------------------------------------------------------- sort / topk

def sort_rows(dtype, descending):
    """The first ``k`` of each row of a contiguous (rows, n) x in sorted order (torch's: NaN is the largest,
    stable also descending): values to ``ov`` and int64 positions to ``oi`` (rows, k). A stable bottom-up
    merge sort of the positions in thread ``tid``'s slice of ``scr`` (2n int64). Threaded over rows."""
    isf = dtype in ("float32", "float64")
    if descending:
        before = "(a > c) or (a != a and c == c)" if isf else "a > c"
    else:
        before = "(a < c) or (c != c and a == a)" if isf else "a < c"
    P = [_ptr(dtype, "x"), _ptr(dtype, "ov"), _ptr("int64", "oi"), _ptr("int64", "scr"), _i64("n"), _i64("k"),
         _i64("tid"), _i64("lo"), _i64("hi")]
    lines = [DECO, f"def kernel({', '.join(p[1] for p in P)}):",
             "    S = carray(scr, (tid + 1, 2 * n))[tid]",
             "    for r in range(lo, hi):",
             "        b = r * n",
             "        for j in range(n):",
             "            S[j] = j",
             "        src = 0",
             "        dst = n",
             "        width = 1",
             "        while width < n:",
             "            i = 0",
             "            while i < n:",
             "                mid = min(i + width, n)",
             "                end = min(i + 2 * width, n)",
             "                p = i",
             "                q = mid",
             "                t = i",
             "                while p < mid and q < end:",
             "                    a = x[b + S[src + q]]",
             "                    c = x[b + S[src + p]]",
             f"                    if {before}:",
             "                        S[dst + t] = S[src + q]",
             "                        q += 1",
             "                    else:",
             "                        S[dst + t] = S[src + p]",
             "                        p += 1",
             "                    t += 1",
             "                while p < mid:",
             "                    S[dst + t] = S[src + p]",
             "                    p += 1",
             "                    t += 1",
             "                while q < end:",
             "                    S[dst + t] = S[src + q]",
             "                    q += 1",
             "                    t += 1",
             "                i += 2 * width",
             "            src, dst = dst, src",
             "            width *= 2",
             "        for j in range(k):",
             "            ii = S[src + j]",
             "            oi[r * k + j] = ii",
             "            ov[r * k + j] = x[b + ii]"]
    return _finish("sort", lines, P)

"""Cache-blocked matrix product (GEMM) in numba, with no BLAS: ``C = A @ B``.

Written for the native build (issue 8), which compiles numba kernels as ``@cfunc`` s into
standalone programs, so nothing here allocates, raises or calls outside libc. It also runs
as a plain ``@njit`` kernel in-process.

Entry points (``gemm``, ``gemm_batched`` and ``workspace_elems`` are ``@njit``: call them from
other numba code, a ``@cfunc`` or Python):

``gemm(A, B, C, bias, accumulate, m0, m1, n0, n1, work)``
    ``C[m0:m1, n0:n1] = (C[m0:m1, n0:n1] if accumulate else 0)``
    ``                  + A[m0:m1] @ B[:, n0:n1] + bias[n0:n1]``

    - ``A`` (M, K), ``B`` (K, N), ``C`` (M, N): 2-D arrays of one float dtype (float32 or
      float64), any strides. Transposed views cost nothing: ``x @ w.T`` (nn.Linear) is
      ``gemm(x, w.T, ...)``. ``C`` is written in place; it must not overlap ``A``, ``B`` or
      ``work``. With ``accumulate=False`` the old contents of ``C`` are never read (NaN in
      ``C`` does not leak, as with BLAS's beta = 0).
    - ``bias``: 1-D array of length N added to every row, or of length 0 for no bias.
    - ``m0:m1``, ``n0:n1``: the block of ``C`` to compute. A thread computes its own block
      with its own ``work``; blocks of different threads must not overlap. Whole-matrix call:
      ``m0, m1, n0, n1 = 0, M, 0, N``.
    - ``work``: 1-D contiguous scratch array of ``A``'s dtype with at least
      ``workspace_size(m1 - m0, n1 - n0, K, dtype)`` elements (``workspace_size(M, N, K, dtype)``
      is enough for any block of an (M, N, K) problem).

``gemm_batched(A, B, C, bias, accumulate, b0, b1, work)``
    The same for 3-D arrays, ``C[b] = A[b] @ B[b] (+ ...)`` for ``b`` in ``b0:b1`` (threads split
    the batch). ``A`` or ``B`` may have a batch of 1, which is broadcast (convolution through
    im2col: one weight matrix for every image). Same workspace as one (M, N, K) product.

``workspace_size(M, N, K, dtype)``
    Plain Python (also ``@njit``-callable as ``workspace_elems(M, N, K, itemsize)``): the number
    of elements (not bytes) of scratch that one call needs. Formula, for a C driver::

        kc = min(K, KC); mcp = ceil(min(M, MC) / MR) * MR; ncp = ceil(min(N, NC) / NR) * NR
        elements = mcp * kc + kc * ncp + MR * NR

    with the constants of ``blocking(dtype)``, which depend on the CPU (see below).

Nothing is checked inside the kernels (numba does not check bounds): the caller validates the
shapes (A is (M, K), B is (K, N), C is (M, N), bias has N or 0 elements, 0 <= m0 <= m1 <= M,
0 <= n0 <= n1 <= N, the workspace size) and the dtypes (all equal, float32 or float64).

Use from a cfunc (the native build)::

    from numba import carray, cfunc, types
    from jitorch.kernels import gemm as G

    f32p = types.CPointer(types.float32)
    @cfunc(types.void(f32p, f32p, f32p, f32p, f32p, types.int64, types.int64, types.int64,
                      types.int64, types.int64), error_model="numpy", fastmath=True)
    def linear_rows(x, w, b, y, work, M, N, K, m0, m1):      # y = x @ w.T + b, rows m0:m1
        G.gemm(carray(x, (M, K)), carray(w, (N, K)).T, carray(y, (M, N)), carray(b, (N,)),
               False, m0, m1, 0, N, carray(work, (G.workspace_elems(M, N, K, 4),)))

  (``workspace_size`` is plain Python; its ``@njit`` twin ``workspace_elems`` works inside
  the cfunc. The kernels never read ``work``'s length, so any carray length will do.)
  Emitted as the feasibility study's section 7 describes (internalize every function but the
  entry, O3, ``reloc='pic'``), the object has no undefined symbols besides LLVM intrinsics:
  tests/kernels/test_gemm.py checks exactly this, finds the vector FMAs in the assembly, links
  the object with ``cc -shared`` and runs it from two threads through ctypes.
- Threads: the kernels keep no global state. The C driver gives each pthread its own block of
  rows (or of columns, when there are few rows; or of the batch) and its own workspace, e.g.
  ``malloc(workspace_size(...) * sizeof(float))`` once per thread.
- Block sizes are Python constants read at import (``blocking(dtype)``), from the CPU numba
  compiles for: print them at build time and write them into the generated C (to size the
  workspace). To build for another CPU than the host, set ``JITORCH_GEMM_VECTOR_BYTES``
  (16, 32 or 64) before importing this module, so the tile fits that CPU's registers.

Design (Goto / BLIS):

- Loops, outermost first: ``jc`` over column panels of NC columns of B; ``pc`` over K in
  steps of KC, packing the KC x NC panel of B (stays in L2/L3); ``ic`` over row blocks of MC
  rows, packing the MC x KC block of A (stays in L2); ``jr`` over NR-column slivers of the
  packed B (one sliver, KC x NR, stays in L1); ``ir`` over MR-row slivers of the packed A,
  each call of the micro-kernel computing one MR x NR tile of C over the whole KC.
- Packing copies from any strides into contiguous slivers (A: MR values per k; B: NR values per
  k), zero-padded to whole slivers, so the micro-kernel only ever reads unit-stride memory and
  never needs an edge case. Transposed operands therefore cost only the packing pass.
- The micro-kernel is written directly in LLVM IR (a numba ``@intrinsic``): MR x NR/W vector
  accumulators (W = lanes of one SIMD register) held in SSA values, so they live in registers
  for the whole k loop; each k step loads NR/W vectors of B, broadcasts MR values of A and
  issues MR * NR/W ``llvm.fma`` calls. (The same loop written as numba Python keeps the tile
  in memory: LLVM cannot prove that it does not alias the packed panels, and the 2-D tile does
  not become registers; the i-k-j loop of feasibility.md section 5 reached a quarter of BLAS.)
  Tiles are written into C in place (edge tiles only their mr x nr corner, with guards in
  the store phase) when C's rows are unit-stride; otherwise through an MR x NR tile in the
  workspace.
- Blocks of at most SMALL_M rows (batch-1 inference) skip packing, which would cost as much
  as the product: dot products along K when B's columns are contiguous (``x @ w.T``), scaled
  rows of B added into C's rows when B's rows are. Other layouts take the packed path.
- The first KC block stores (or adds to C when ``accumulate``); later blocks add. The bias is
  written into C before the products (so it is an accumulate from the start).
- Block sizes follow the CPU numba compiles for (the host, or NUMBA_CPU_NAME and
  NUMBA_CPU_FEATURES; the numba cache is per CPU as well): W from AVX-512 / AVX2 / SSE,
  MR * NR/W accumulators that fit the register file
  (AVX2: 16 registers, 6 x 2 vectors; AVX-512: 32 registers, 12 x 2 vectors).

Speed (``benchmarks/kernels_gemm.py``, one thread, AMD EPYC znver3 with AVX2, 2026-11-28 under a
load average of 7-8 on 2 cores, medians of interleaved rounds, so OpenBLAS ran under the same
load): float32 512 / 1024: 0.64x / 0.99x of OpenBLAS for A @ B, 0.92x / 0.80x for x @ w.T
(best rounds 65 GFLOP/s vs OpenBLAS's 71 at 512); float64 0.82x-0.98x at 256-1024; 64: about
0.5-0.9x (packing and call overhead). Batch-1 linear 512x512 (no packing): 28 us vs 28 us.

Rounding: each element is a sum of K products accumulated in the input dtype in KC-long
fused multiply-add chains; the error is within the usual bound K * eps * (|A| @ |B|).
"""
import os

import numpy as np
from llvmlite import binding as _llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core import config as numba_config
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

from ._config import NJIT

__all__ = ["gemm", "gemm_batched", "workspace_size", "workspace_elems", "blocking"]


# ---------------------------------------------------------------------------------------------
# Block sizes
# ---------------------------------------------------------------------------------------------

def _vector_bytes():
    """SIMD register width of the CPU numba compiles for (the host, or NUMBA_CPU_NAME with
    NUMBA_CPU_FEATURES), or JITORCH_GEMM_VECTOR_BYTES (16, 32 or 64)."""
    forced = os.environ.get("JITORCH_GEMM_VECTOR_BYTES")
    if forced:
        return int(forced)
    if numba_config.CPU_NAME and numba_config.CPU_NAME != "host":
        flags = (numba_config.CPU_FEATURES or "").split(",")
        features = {f[1:]: f[0] == "+" for f in flags if f[:1] in "+-" and len(f) > 1}
    else:
        features = _llvm.get_host_cpu_features()
    if features.get("avx512f", False):
        return 64
    if features.get("avx2", False) or features.get("avx", False):
        return 32
    return 16


#: Bytes of one SIMD register (64 with AVX-512, 32 with AVX2). JITORCH_GEMM_VECTOR_BYTES
#: overrides it (to build for another CPU, or to test the other block sizes on this one); the
#: kernels are then not cached on disk, because numba's cache key does not see this setting.
VECTOR_BYTES = _vector_bytes()
if VECTOR_BYTES not in (16, 32, 64):
    raise ValueError(f"JITORCH_GEMM_VECTOR_BYTES must be 16, 32 or 64, got {VECTOR_BYTES}")
_NJIT = NJIT if "JITORCH_GEMM_VECTOR_BYTES" not in os.environ else {**NJIT, "cache": False}
#: Rows of a micro-tile: 2 * MR accumulators + 2 B vectors + 1 broadcast fit the register file.
MR = 12 if VECTOR_BYTES == 64 else 6
#: Vectors per micro-tile row (NR = NV * lanes).
NV = 2
#: Length of the k blocks: the B sliver (KC x NR, 16 KiB) stays in half of a 32 KiB L1; the
#: A block (MC x KC) in L2.
KC = 16 * 1024 // (NV * VECTOR_BYTES)
#: Rows of a packed A block (a multiple of MR): with AVX2, 96 x 256 float32 (96 KiB) or float64
#: (192 KiB) of a 512 KiB L2.
MC = 16 * MR
#: Columns of a packed B panel.
NC = 4096
#: Blocks of at most this many rows skip packing (see _gemm_small_m).
SMALL_M = 8


def blocking(dtype):
    """``(MR, NR, MC, KC, NC)`` used for ``dtype`` (float32 or float64) on this CPU."""
    itemsize = np.dtype(dtype).itemsize
    nr = NV * VECTOR_BYTES // itemsize
    return MR, nr, MC, KC, NC


@njit(**_NJIT)
def workspace_elems(M, N, K, itemsize):
    """Elements of scratch for an (M, N, K) product with elements of ``itemsize`` bytes."""
    nr = NV * VECTOR_BYTES // itemsize
    kc = min(K, KC)
    mcp = (min(M, MC) + MR - 1) // MR * MR
    ncp = (min(N, NC) + nr - 1) // nr * nr
    return mcp * kc + kc * ncp + MR * nr


def workspace_size(M, N, K, dtype):
    """Elements (of ``dtype``) of the ``work`` array that ``gemm`` needs for an (M, N, K) product.

    >>> workspace_size(0, 0, 0, np.float32) == blocking(np.float32)[0] * blocking(np.float32)[1]
    True
    """
    itemsize = np.dtype(dtype).itemsize
    nr = NV * VECTOR_BYTES // itemsize
    kc = min(K, KC)
    mcp = -(-min(M, MC) // MR) * MR
    ncp = -(-min(N, NC) // nr) * nr
    return mcp * kc + kc * ncp + MR * nr


# ---------------------------------------------------------------------------------------------
# Micro-kernel (LLVM IR)
# ---------------------------------------------------------------------------------------------

@intrinsic
def _micro_tile(typingctx, work, kc, a_off, b_off, c, c_off, ldc, mr, nr, load_c):
    """``C[c_off + i*ldc + j] = (C[...] if load_c else 0) + sum_p Ap[p*MR + i] * Bp[p*NR + j]``

    for ``i < mr <= MR``, ``j < nr <= NR``, over ``p < kc``. ``Ap = work[a_off:]`` and
    ``Bp = work[b_off:]`` are packed slivers; ``c`` is the array the tile is written into
    (C itself, rows ``ldc`` elements apart and unit-stride, or the workspace tile). Offsets
    are in elements.
    """
    if not isinstance(work, types.Array) or not isinstance(c, types.Array):
        return None
    if work.dtype not in (types.float32, types.float64) or c.dtype != work.dtype:
        return None

    def codegen(context, builder, sig, args):
        work_v, kc_v, a_off_v, b_off_v, c_v, c_off_v, ldc_v, mr_v, nr_v, load_c_v = args
        wty, cty = sig.args[0], sig.args[4]
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        fty = context.get_value_type(wty.dtype)
        lanes = VECTOR_BYTES // (4 if wty.dtype == types.float32 else 8)
        nr = NV * lanes
        align = 4 if wty.dtype == types.float32 else 8
        vty = ir.VectorType(fty, lanes)
        vptr = vty.as_pointer()
        suffix = f"v{lanes}{'f32' if wty.dtype == types.float32 else 'f64'}"
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty, vty, vty]),
                                             f"llvm.fma.{suffix}")

        def cast_int(v, t):
            return context.cast(builder, v, t, types.int64)

        kc_v = cast_int(kc_v, sig.args[1])
        a_off_v = cast_int(a_off_v, sig.args[2])
        b_off_v = cast_int(b_off_v, sig.args[3])
        c_off_v = cast_int(c_off_v, sig.args[5])
        ldc_v = cast_int(ldc_v, sig.args[6])
        mr_v = cast_int(mr_v, sig.args[7])
        nr_v = cast_int(nr_v, sig.args[8])
        load_c_v = context.cast(builder, load_c_v, sig.args[9], types.boolean)

        base = context.make_array(wty)(context, builder, work_v).data
        a_ptr = builder.gep(base, [a_off_v])
        b_ptr = builder.gep(base, [b_off_v])
        c_ptr = builder.gep(context.make_array(cty)(context, builder, c_v).data, [c_off_v])

        zero = ir.Constant(vty, [0.0] * lanes)
        undef = ir.Constant(vty, ir.Undefined)
        splat_mask = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
        n_acc = MR * NV

        entry = builder.basic_block
        loop = builder.append_basic_block("gemm.kloop")
        done = builder.append_basic_block("gemm.kdone")
        builder.cbranch(builder.icmp_signed(">", kc_v, ir.Constant(i64, 0)), loop, done)

        builder.position_at_end(loop)
        p = builder.phi(i64, "p")
        accs = [builder.phi(vty, f"acc{t}") for t in range(n_acc)]
        p.add_incoming(ir.Constant(i64, 0), entry)
        for acc in accs:
            acc.add_incoming(zero, entry)
        b_row = builder.gep(b_ptr, [builder.mul(p, ir.Constant(i64, nr))])
        bvecs = [builder.load(builder.bitcast(builder.gep(b_row, [ir.Constant(i64, v * lanes)]),
                                              vptr), align=align) for v in range(NV)]
        a_row = builder.gep(a_ptr, [builder.mul(p, ir.Constant(i64, MR))])
        new = []
        for i in range(MR):
            a_i = builder.load(builder.gep(a_row, [ir.Constant(i64, i)]), align=align)
            a_s = builder.shuffle_vector(builder.insert_element(undef, a_i, ir.Constant(i32, 0)),
                                         undef, splat_mask)
            for v in range(NV):
                new.append(builder.call(fma, [a_s, bvecs[v], accs[i * NV + v]]))
        p_next = builder.add(p, ir.Constant(i64, 1))
        tail = builder.basic_block
        p.add_incoming(p_next, tail)
        for acc, nv in zip(accs, new):
            acc.add_incoming(nv, tail)
        builder.cbranch(builder.icmp_signed("<", p_next, kc_v), loop, done)

        builder.position_at_end(done)
        results = []
        for t in range(n_acc):
            r = builder.phi(vty)
            r.add_incoming(zero, entry)
            r.add_incoming(new[t], tail)
            results.append(r)
        # Edge tiles (mr < MR or nr < NR) write only their mr x nr corner: whole vectors when
        # nr == NR, else element by element.
        def update(ptr, acc):
            old = builder.load(ptr, align=align)
            builder.store(builder.select(load_c_v, builder.fadd(old, acc), acc), ptr, align=align)

        def rows(body):
            for i in range(MR):
                c_row = builder.gep(c_ptr, [builder.mul(ldc_v, ir.Constant(i64, i))])
                in_tile = builder.icmp_signed("<", ir.Constant(i64, i), mr_v)
                with cgutils.if_likely(builder, in_tile):
                    body(i, c_row)

        def full_row(i, c_row):
            for v in range(NV):
                ptr = builder.bitcast(builder.gep(c_row, [ir.Constant(i64, v * lanes)]), vptr)
                update(ptr, results[i * NV + v])

        def partial_row(i, c_row):
            for j in range(nr):
                in_tile = builder.icmp_signed("<", ir.Constant(i64, j), nr_v)
                with cgutils.if_likely(builder, in_tile):
                    acc = builder.extract_element(results[i * NV + j // lanes],
                                                  ir.Constant(i32, j % lanes))
                    update(builder.gep(c_row, [ir.Constant(i64, j)]), acc)

        with builder.if_else(builder.icmp_signed("==", nr_v, ir.Constant(i64, nr))) as (full, part):
            with full:
                rows(full_row)
            with part:
                rows(partial_row)
        return context.get_dummy_value()

    return types.void(work, kc, a_off, b_off, c, c_off, ldc, mr, nr, load_c), codegen


@intrinsic
def _any_layout(typingctx, arr):
    """The same array typed with layout 'A', so the kernels compile once per dtype and not once
    per combination of C/F/A layouts of their arguments (all layouts share one data model)."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        return impl_ret_borrowed(context, builder, sig.return_type, args[0])

    return arr.copy(layout="A")(arr), codegen


# ---------------------------------------------------------------------------------------------
# Packing and the blocked loops
# ---------------------------------------------------------------------------------------------

@intrinsic
def _constants(typingctx, arr):
    """``(itemsize, NR, 0)`` of ``arr``'s dtype as compile-time constants, so that loops over a
    sliver have a constant trip count and a unit stride LLVM can see (and vectorize)."""
    if not isinstance(arr, types.Array):
        return None
    itemsize = arr.dtype.bitwidth // 8
    nr = NV * VECTOR_BYTES // itemsize
    ret = types.Tuple([types.int64, types.int64, arr.dtype])

    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        zero = ir.Constant(context.get_value_type(arr.dtype), 0.0)
        return context.make_tuple(builder, ret, [ir.Constant(i64, itemsize), ir.Constant(i64, nr),
                                                 zero])

    return ret(arr), codegen


@njit(**_NJIT)
def _pack_a(A, ic, mc, pc, kc, work):
    """work[0:] = A[ic:ic+mc, pc:pc+kc] as slivers of MR rows: sliver s holds, for each p,
    the MR values A[ic+s*MR+i, pc+p] (zero past row ic+mc)."""
    itemsize, _, _ = _constants(A)
    for s in range(0, mc, MR):
        mr = min(MR, mc - s)
        base = s * kc
        row = ic + s
        if mr == MR and A.strides[1] == itemsize:  # rows contiguous: read along them
            for i in range(MR):
                for p in range(kc):
                    work[base + p * MR + i] = A[row + i, pc + p]
        elif mr == MR:
            for p in range(kc):
                for i in range(MR):
                    work[base + p * MR + i] = A[row + i, pc + p]
        else:
            for p in range(kc):
                for i in range(mr):
                    work[base + p * MR + i] = A[row + i, pc + p]
                for i in range(mr, MR):
                    work[base + p * MR + i] = 0


@njit(**_NJIT)
def _pack_b(B, pc, kc, jc, nc, work, off):
    """work[off:] = B[pc:pc+kc, jc:jc+nc] as slivers of NR columns (zero past column jc+nc)."""
    itemsize, nr_full, _ = _constants(B)
    for s in range(0, nc, nr_full):
        nr = min(nr_full, nc - s)
        base = off + s * kc
        col = jc + s
        if nr == nr_full and B.strides[1] == itemsize:  # rows contiguous: vector copies
            for p in range(kc):
                for j in range(nr_full):
                    work[base + p * nr_full + j] = B[pc + p, col + j]
        elif nr == nr_full:  # columns contiguous (x @ w.T): read along them
            for j in range(nr_full):
                for p in range(kc):
                    work[base + p * nr_full + j] = B[pc + p, col + j]
        else:
            for p in range(kc):
                for j in range(nr):
                    work[base + p * nr_full + j] = B[pc + p, col + j]
                for j in range(nr, nr_full):
                    work[base + p * nr_full + j] = 0


@njit(**_NJIT)
def _init_c(C, bias, accumulate, m0, m1, n0, n1):
    """Apply the bias (or zero C when nothing will be added): returns whether C holds a value
    that the products must be added to."""
    if bias.shape[0] > 0:
        for i in range(m0, m1):
            for j in range(n0, n1):
                if accumulate:
                    C[i, j] += bias[j]
                else:
                    C[i, j] = bias[j]
        return True
    return accumulate


@njit(**_NJIT)
def _gemm_small_m(A, B, C, load_c, m0, m1, n0, n1):
    """The product for a few rows without packing (packing B would cost as much as the
    product): dot products along K when B's columns are contiguous (x @ w.T), rows of B
    scaled and added when its rows are. Returns False (nothing done) for other layouts."""
    itemsize, _, zero = _constants(A)
    K = A.shape[1]
    if B.strides[0] == itemsize and A.strides[1] == itemsize:
        for i in range(m0, m1):
            for j in range(n0, n1):
                acc = zero
                for k in range(K):
                    acc += A[i, k] * B[k, j]
                C[i, j] = C[i, j] + acc if load_c else acc
        return True
    if B.strides[1] == itemsize and C.strides[1] == itemsize:
        for i in range(m0, m1):
            c_row = C[i, n0:n1]
            if not load_c:
                c_row[:] = zero
            for k in range(K):
                a = A[i, k]
                b_row = B[k, n0:n1]
                for j in range(n1 - n0):
                    c_row[j] += a * b_row[j]
        return True
    return False


@njit(**_NJIT)
def _gemm_any(A, B, C, bias, accumulate, m0, m1, n0, n1, work):
    K = A.shape[1]
    itemsize = C.itemsize
    nr_full = NV * VECTOR_BYTES // itemsize
    use_c = _init_c(C, bias, accumulate, m0, m1, n0, n1)
    if K == 0 or m1 <= m0 or n1 <= n0:
        if not use_c:
            for i in range(m0, m1):
                for j in range(n0, n1):
                    C[i, j] = 0
        return
    if m1 - m0 <= SMALL_M and _gemm_small_m(A, B, C, use_c, m0, m1, n0, n1):
        return
    # Layout of the workspace: packed A block, packed B panel, one MR x NR tile.
    kc_max = min(K, KC)
    b_off = (min(m1 - m0, MC) + MR - 1) // MR * MR * kc_max
    tile = b_off + kc_max * ((min(n1 - n0, NC) + nr_full - 1) // nr_full * nr_full)
    # Tiles go straight into C when its rows are unit-stride (ldc: elements between rows), else
    # through the workspace tile.
    direct = C.strides[1] == itemsize and C.strides[0] % itemsize == 0
    ldc = C.strides[0] // itemsize
    for jc in range(n0, n1, NC):
        nc = min(NC, n1 - jc)
        for pc in range(0, K, KC):
            kc = min(KC, K - pc)
            _pack_b(B, pc, kc, jc, nc, work, b_off)
            load_c = use_c or pc > 0
            for ic in range(m0, m1, MC):
                mc = min(MC, m1 - ic)
                _pack_a(A, ic, mc, pc, kc, work)
                for jr in range(0, nc, nr_full):
                    nr = min(nr_full, nc - jr)
                    for ir in range(0, mc, MR):
                        mr = min(MR, mc - ir)
                        a_off = ir * kc
                        bs_off = b_off + jr * kc
                        if direct:
                            _micro_tile(work, kc, a_off, bs_off, C, (ic + ir) * ldc + jc + jr,
                                        ldc, mr, nr, load_c)
                        else:
                            _micro_tile(work, kc, a_off, bs_off, work, tile, nr_full, MR, nr_full,
                                        False)
                            for i in range(mr):
                                for j in range(nr):
                                    v = work[tile + i * nr_full + j]
                                    if load_c:
                                        C[ic + ir + i, jc + jr + j] += v
                                    else:
                                        C[ic + ir + i, jc + jr + j] = v


@njit(**_NJIT)
def gemm(A, B, C, bias, accumulate, m0, m1, n0, n1, work):
    """``C[m0:m1, n0:n1] = (C if accumulate else 0) + A[m0:m1] @ B[:, n0:n1] + bias[n0:n1]``.

    See the module docstring for the contract (shapes, workspace, threads)."""
    _gemm_any(_any_layout(A), _any_layout(B), _any_layout(C), _any_layout(bias),
              accumulate, m0, m1, n0, n1, work)


@njit(**_NJIT)
def gemm_batched(A, B, C, bias, accumulate, b0, b1, work):
    """``C[b] = (C[b] if accumulate else 0) + A[b] @ B[b] + bias`` for ``b`` in ``b0:b1``;
    ``A`` or ``B`` with a batch of 1 is used for every ``b``."""
    A3 = _any_layout(A)
    B3 = _any_layout(B)
    C3 = _any_layout(C)
    bias1 = _any_layout(bias)
    M = C3.shape[1]
    N = C3.shape[2]
    for b in range(b0, b1):
        _gemm_any(A3[b if A3.shape[0] > 1 else 0], B3[b if B3.shape[0] > 1 else 0], C3[b], bias1,
                  accumulate, 0, M, 0, N, work)

"""kernels/gemm.py against NumPy (float64 references), and its contract with the native build:
compiled inside a ``@cfunc``, emitted as a PIC object with llvmlite, no undefined symbols.

The error bound of a sum of K products in a dtype with machine epsilon eps is
K * eps * (|A| @ |B|) (plus one rounding each for the bias and the accumulated C); every test
checks that bound elementwise, which an indexing mistake exceeds by orders of magnitude.
"""
import ctypes
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jitorch.kernels import gemm as G

FLOATS = [np.float32, np.float64]
MR, NR32, MC, KC, NC = G.blocking(np.float32)

# (M, N, K): 1x1, empty in each dimension, odd sizes, sizes one past the micro-tile (MR, NR),
# the k block (KC), the row block (MC) and the column panel (NC).
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 1, 9), (7, 9, 5), (0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0),
          (MR, NR32, 8), (MR + 1, NR32 + 1, KC + 1), (2 * MC + 5, 37, 70), (3, NC + 5, 4),
          (33, 65, 2 * KC + 3)]


def make(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def reference(A, B, C0, bias, accumulate):
    """float64 result and the elementwise error bound for the dtype of A."""
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    ref = A64 @ B64
    scale = np.abs(A64) @ np.abs(B64)
    if bias.size:
        ref = ref + bias
        scale = scale + np.abs(bias.astype(np.float64))
    if accumulate:
        ref = ref + C0
        scale = scale + np.abs(C0.astype(np.float64))
    eps = np.finfo(A.dtype).eps
    return ref, (A.shape[1] + 2) * eps * scale + np.finfo(A.dtype).tiny


def assert_within(got, ref, bound):
    err = np.abs(got.astype(np.float64) - ref)
    assert got.shape == ref.shape
    assert np.all(err <= bound), f"max error {err.max()} over bound {bound.ravel()[np.argmax(err)]}"


def run_gemm(A, B, C, bias, accumulate, m0=0, m1=None, n0=0, n1=None, work=None):
    M, N = C.shape
    m1 = M if m1 is None else m1
    n1 = N if n1 is None else n1
    if work is None:
        work = np.empty(G.workspace_size(m1 - m0, n1 - n0, A.shape[1], A.dtype), A.dtype)
    G.gemm(A, B, C, bias, accumulate, m0, m1, n0, n1, work)
    return C


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_gemm_matches_numpy(dtype, shape):
    M, N, K = shape
    A, B = make((M, K), dtype, 1), make((K, N), dtype, 2)
    C = np.full((M, N), np.nan, dtype)  # not read without accumulate
    got = run_gemm(A, B, C, np.zeros(0, dtype), False)
    assert_within(got, *reference(A, B, C, np.zeros(0, dtype), False))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 9, 5), (3, 4, 0), (MR + 1, NR32 + 1, KC + 1)],
                         ids=str)
@pytest.mark.parametrize("accumulate", [False, True])
def test_bias_and_accumulate(dtype, shape, accumulate):
    M, N, K = shape
    A, B, bias = make((M, K), dtype, 3), make((K, N), dtype, 4), make(N, dtype, 5)
    C0 = make((M, N), dtype, 6)
    got = run_gemm(A, B, C0.copy(), bias, accumulate)
    assert_within(got, *reference(A, B, C0, bias, accumulate))
    if accumulate:  # accumulate without bias
        got = run_gemm(A, B, C0.copy(), np.zeros(0, dtype), True)
        assert_within(got, *reference(A, B, C0, np.zeros(0, dtype), True))


def views(x, kind):
    """x's values as a differently laid-out array: transposed storage or a strided slice."""
    if kind == "C":
        return x
    if kind == "T":  # F-contiguous: the .T of a C-contiguous array
        return np.ascontiguousarray(x.T).T
    big = np.zeros((2 * x.shape[0] + 1, 3 * x.shape[1] + 2), x.dtype)
    big[1::2, 2::3] = x
    return big[1::2, 2::3]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("a_kind,b_kind,c_kind", [("T", "C", "C"), ("C", "T", "C"), ("T", "T", "C"),
                                                  ("S", "S", "C"), ("C", "C", "T"),
                                                  ("C", "C", "S")])
def test_transposed_and_strided_views(dtype, a_kind, b_kind, c_kind):
    M, N, K = 2 * MR + 3, 2 * NR32 + 5, KC + 9
    A, B, bias = make((M, K), dtype, 7), make((K, N), dtype, 8), make(N, dtype, 9)
    A_v, B_v = views(A, a_kind), views(B, b_kind)
    assert np.array_equal(A_v, A) and np.array_equal(B_v, B)
    C = views(np.full((M, N), np.nan, dtype), c_kind)
    got = run_gemm(A_v, B_v, C, bias, False)
    assert_within(got, *reference(A, B, C, bias, False))


@pytest.mark.parametrize("dtype", FLOATS)
def test_blocks_compute_only_their_part(dtype):
    """Threads split C into blocks: each call writes its block only, and the union is C."""
    M, N, K = 2 * MC + 7, 3 * NR32 + 2, 45
    A, B, bias = make((M, K), dtype, 10), make((K, N), dtype, 11), make(N, dtype, 12)
    ref, bound = reference(A, B, None, bias, False)
    C = np.full((M, N), np.nan, dtype)
    rows = [0, 5, MC + 1, M]
    cols = [0, NR32 - 1, N]
    for m0, m1 in zip(rows, rows[1:]):
        for n0, n1 in zip(cols, cols[1:]):
            before = C.copy()
            run_gemm(A, B, C, bias, False, m0, m1, n0, n1)
            outside = np.ones((M, N), bool)
            outside[m0:m1, n0:n1] = False
            assert np.array_equal(C[outside], before[outside], equal_nan=True)
            assert_within(C[m0:m1, n0:n1], ref[m0:m1, n0:n1], bound[m0:m1, n0:n1])
    assert_within(C, ref, bound)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (MR + 1, NR32 + 1, KC + 1), (2 * MC + 5, 37, 70),
                                   (3, NC + 5, 4)], ids=str)
def test_workspace_size_is_enough(dtype, shape):
    """A workspace of exactly workspace_size elements, followed by sentinels that stay intact."""
    M, N, K = shape
    A, B = make((M, K), dtype, 13), make((K, N), dtype, 14)
    need = G.workspace_size(M, N, K, dtype)
    assert need == G.workspace_elems(M, N, K, np.dtype(dtype).itemsize)
    buf = np.full(need + 64, 12345.0, dtype)
    C = np.empty((M, N), dtype)
    run_gemm(A, B, C, np.zeros(0, dtype), False, work=buf[:need])
    assert np.all(buf[need:] == 12345.0)
    assert_within(C, *reference(A, B, C, np.zeros(0, dtype), False))
    # A smaller block of the same problem needs no more than the whole problem.
    assert G.workspace_size(M // 2, N // 2, K, dtype) <= need


@pytest.mark.parametrize("dtype", FLOATS)
def test_nan_and_inf_propagate_like_numpy(dtype):
    M, N, K = MR + 2, NR32 + 3, 10
    A, B = make((M, K), dtype, 15), make((K, N), dtype, 16)
    A[1, 2], A[MR, 0], B[3, N - 1] = np.nan, np.inf, -np.inf
    C = np.empty((M, N), dtype)
    run_gemm(A, B, C, np.zeros(0, dtype), False)
    with np.errstate(invalid="ignore"):
        ref = A.astype(np.float64) @ B.astype(np.float64)
    assert np.array_equal(np.isnan(C), np.isnan(ref))
    assert np.array_equal(np.isposinf(C), np.isposinf(ref))
    assert np.array_equal(np.isneginf(C), np.isneginf(ref))
    finite = np.isfinite(ref)
    _, bound = reference(np.where(np.isfinite(A), A, 0), np.where(np.isfinite(B), B, 0), None,
                         np.zeros(0), False)
    assert_within(C[finite], ref[finite], bound[finite])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("broadcast", ["none", "A", "B"])
def test_batched(dtype, broadcast):
    batch, M, N, K = 4, 9, 19, 13
    A = make((1 if broadcast == "A" else batch, M, K), dtype, 17)
    B = make((1 if broadcast == "B" else batch, K, N), dtype, 18)
    B = np.ascontiguousarray(B.transpose(0, 2, 1)).transpose(0, 2, 1)  # a transposed view
    bias = make(N, dtype, 19)
    C = np.full((batch, M, N), np.nan, dtype)
    work = np.empty(G.workspace_size(M, N, K, dtype), dtype)
    G.gemm_batched(A, B, C, bias, False, 0, 2, work)  # two "threads": batches 0:2 and 2:4
    assert np.isnan(C[2:]).all()
    G.gemm_batched(A, B, C, bias, False, 2, batch, work)
    for b in range(batch):
        Ab, Bb = A[min(b, A.shape[0] - 1)], B[min(b, B.shape[0] - 1)]
        assert_within(C[b], *reference(Ab, Bb, None, bias, False))


@given(M=st.integers(0, 40), N=st.integers(0, 70), K=st.integers(0, 300),
       dtype=st.sampled_from(FLOATS), trans_a=st.booleans(), trans_b=st.booleans(),
       accumulate=st.booleans(), with_bias=st.booleans(), data=st.data())
def test_gemm_hypothesis(M, N, K, dtype, trans_a, trans_b, accumulate, with_bias, data):
    m0 = data.draw(st.integers(0, M))
    m1 = data.draw(st.integers(m0, M))
    n0 = data.draw(st.integers(0, N))
    n1 = data.draw(st.integers(n0, N))
    seed = data.draw(st.integers(0, 2**32 - 1))
    A, B = make((M, K), dtype, seed), make((K, N), dtype, seed + 1)
    bias = make(N, dtype, seed + 2) if with_bias else np.zeros(0, dtype)
    C0 = make((M, N), dtype, seed + 3)
    C = run_gemm(views(A, "T" if trans_a else "C"), views(B, "T" if trans_b else "C"), C0.copy(),
                 bias, accumulate, m0, m1, n0, n1)
    ref, bound = reference(A, B, C0, bias, accumulate)
    assert_within(C[m0:m1, n0:n1], ref[m0:m1, n0:n1], bound[m0:m1, n0:n1])
    outside = np.ones((M, N), bool)
    outside[m0:m1, n0:n1] = False
    assert np.array_equal(C[outside], C0[outside])


# ---------------------------------------------------------------------------------------------
# The native build's contract: the kernel inside a cfunc, emitted as a standalone object
# ---------------------------------------------------------------------------------------------

#: What an emitted object may leave undefined: LLVM intrinsics (lowered to instructions) and
#: libc/libm functions LLVM may introduce (memset/memcpy for zeroing and copy loops).
ALLOWED_UNDEFINED = {"memset", "memcpy", "memmove", "fma", "fmaf", "sqrt", "sqrtf"}


def _emit_linear_cfunc(dtype):
    """The docstring's example, y[m0:m1] = x[m0:m1] @ w.T + b, as a cfunc (with batch > 0 the
    batched form instead: y[b] = x[b] @ w + b for b in m0:m1, w (K, N)); then the object file and
    assembly exactly as feasibility.md section 7 emits them."""
    from llvmlite import binding as llvm
    from numba import carray, cfunc, types

    ptr = types.CPointer(types.float32 if dtype == np.float32 else types.float64)
    i64 = types.int64

    itemsize = np.dtype(dtype).itemsize

    @cfunc(types.void(ptr, ptr, ptr, ptr, ptr, i64, i64, i64, i64, i64, i64),
           error_model="numpy", fastmath=True)
    def linear_rows(x, w, b, y, work, M, N, K, m0, m1, batch):
        scratch = carray(work, (G.workspace_elems(M, N, K, itemsize),))
        if batch == 0:
            G.gemm(carray(x, (M, K)), carray(w, (N, K)).T, carray(y, (M, N)), carray(b, (N,)),
                   False, m0, m1, 0, N, scratch)
        else:
            G.gemm_batched(carray(x, (batch, M, K)), carray(w, (1, K, N)),
                           carray(y, (batch, M, N)), carray(b, (N,)), False, m0, m1, scratch)

    name = f"linear_rows_{np.dtype(dtype).name}"
    mod = llvm.parse_assembly(linear_rows.inspect_llvm())
    mod.get_function(linear_rows.native_name).name = name
    for f in mod.functions:
        if not f.is_declaration and f.name != name:
            f.linkage = llvm.Linkage.internal
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    tm = llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
        opt=3, reloc="pic", codemodel="default")
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    undefined = {f.name for f in mod.functions if f.is_declaration}
    return name, undefined, tm.emit_object(mod), tm.emit_assembly(mod)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", FLOATS)
def test_cfunc_object_is_standalone_and_correct(dtype, tmp_path):
    name, undefined, obj, asm = _emit_linear_cfunc(dtype)
    external = {u for u in undefined if not u.startswith("llvm.")}
    assert external <= ALLOWED_UNDEFINED, f"undefined symbols: {sorted(external)}"
    # The micro-kernel is vector FMAs on full registers (ymm with AVX2, zmm with AVX-512).
    reg = {64: "zmm", 32: "ymm", 16: "xmm"}[G.VECTOR_BYTES]
    suffix = "ps" if dtype == np.float32 else "pd"
    assert len(re.findall(rf"vfmadd\d+{suffix}\s[^\n]*%{reg}", asm)) >= G.MR * G.NV, \
        "no vector FMA micro-kernel in the assembly"

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to link the object")
    (tmp_path / "k.o").write_bytes(obj)
    lib_path = tmp_path / "libk.so"
    subprocess.run([cc, "-shared", str(tmp_path / "k.o"), "-o", str(lib_path)], check=True)
    if shutil.which("nm"):
        out = subprocess.run(["nm", "-u", str(tmp_path / "k.o")], capture_output=True, text=True,
                             check=True).stdout.split()
        assert set(out[1::2]) <= ALLOWED_UNDEFINED, out
    lib = ctypes.CDLL(str(lib_path))
    fn = getattr(lib, name)
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_int64] * 6

    N, K = 3 * NR32 + 1, KC + 17
    w, b = make((N, K), dtype, 21), make(N, dtype, 22)
    for M in (1, G.SMALL_M + 1, 2 * MC + 5):  # batch 1 (no packing), a few rows, many rows
        x = make((M, K), dtype, 20)
        y = np.full((M, N), np.nan, dtype)
        nwork = G.workspace_size(M, N, K, dtype)
        # Two threads (as the native driver's pthreads would), each with its own workspace.
        works = [np.empty(nwork, dtype) for _ in range(2)]
        halves = [(0, M // 2), (M // 2, M)]
        threads = [threading.Thread(target=fn, args=(x.ctypes.data, w.ctypes.data, b.ctypes.data,
                                                      y.ctypes.data, work.ctypes.data, M, N, K,
                                                      m0, m1, 0))
                   for work, (m0, m1) in zip(works, halves)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert_within(y, *reference(x, w.T, None, b, False))
    # The batched form, batches split over two calls; w's memory read as a (K, N) matrix.
    batch, M = 3, MR + 1
    x = make((batch, M, K), dtype, 23)
    y = np.full((batch, M, N), np.nan, dtype)
    work = np.empty(G.workspace_size(M, N, K, dtype), dtype)
    for b0, b1 in [(0, 1), (1, batch)]:
        fn(x.ctypes.data, w.ctypes.data, b.ctypes.data, y.ctypes.data, work.ctypes.data, M, N, K,
           b0, b1, batch)
    for i in range(batch):
        assert_within(y[i], *reference(x[i], w.reshape(K, N), None, b, False))


_OTHER_WIDTH_SCRIPT = """
import numpy as np
from jitorch.kernels import gemm as G
from tests.kernels.test_gemm import assert_within, make, reference, views
assert G.VECTOR_BYTES == {width}, G.VECTOR_BYTES
for dtype in (np.float32,):
    MR, NR, MC, KC, NC = G.blocking(dtype)
    for M, N, K, kind in [(1, 5, 7, "C"), (MR + 1, NR + 1, KC + 1, "C"), (MR, 2 * NR, 9, "T"),
                          (2 * MC + 3, NR - 1, 2 * KC + 5, "T")]:
        A, B, bias = make((M, K), dtype, M), make((K, N), dtype, N), make(N, dtype, K)
        C = np.full((M, N), np.nan, dtype)
        G.gemm(views(A, kind), views(B, kind), C, bias, False, 0, M, 0, N,
               np.empty(G.workspace_size(M, N, K, dtype), dtype))
        assert_within(C, *reference(A, B, None, bias, False))
print("ok")
"""


@pytest.mark.slow
@pytest.mark.skipif("JITORCH_GEMM_VECTOR_BYTES" in os.environ,
                    reason="block sizes forced for the whole run")
def test_avx512_block_sizes():
    """The AVX-512 block sizes (12 x 32 float32 tiles, KC = 128), run on any x86 CPU (LLVM splits
    the vectors): same results. float32 only, to bound the compile time (the IR is generic in
    the lanes, and float64 uses 12 x 16 tiles of the same code). Compiled without the disk
    cache (see VECTOR_BYTES), hence only when this CPU has no AVX-512 (else the tests above
    already ran them)."""
    width = 64
    if G.VECTOR_BYTES == width:
        pytest.skip("this CPU has AVX-512: the other tests cover these block sizes")
    root = pathlib.Path(__file__).resolve().parents[2]
    env = {**os.environ, "JITORCH_GEMM_VECTOR_BYTES": str(width)}
    out = subprocess.run([sys.executable, "-c", _OTHER_WIDTH_SCRIPT.format(width=width)], cwd=root,
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]

"""kernels/shape.py against NumPy: strided copies with casting, fill, flip, roll,
repeat_interleave, tril/triu and the creation kernels."""
import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

from jitorch.kernels import shape as K

DTYPES = [np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_]


def sample(shape, dtype, rng):
    """Values every dtype can hold; floats include a NaN, -0.0 and an inf when big enough."""
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -100), min(info.max, 100)
        return rng.integers(lo, hi, shape, endpoint=True).astype(dtype)
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    if x.size >= 3:
        x.flat[0], x.flat[1], x.flat[2] = np.nan, -0.0, np.inf
    return x


def assert_same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ collapse_dims

@pytest.mark.parametrize("shape, strides, want", [
    ((), [()], ((), ((),))),
    ((1, 1), [(8, 8)], ((), ((),))),
    ((0, 3), [(3, 1)], ((0,), ((1,),))),
    ((2, 3, 4), [(12, 4, 1)], ((24,), ((1,),))),
    ((2, 3, 4), [(12, 4, 1), (0, 0, 1)], ((6, 4), ((4, 1), (0, 1)))),
    ((2, 3, 4), [(12, 4, 1), (1, 2, 6)], ((2, 3, 4), ((12, 4, 1), (1, 2, 6)))),
    ((3, 4), [(-4, -1)], ((12,), ((-1,),))),
    ((3, 1, 4), [(4, 99, 1)], ((12,), ((1,),))),
    ((5, 2), [(0, 0)], ((10,), ((0,),))),
])
def test_collapse_dims(shape, strides, want):
    assert K.collapse_dims(shape, *strides) == want


def test_collapse_dims_reorder_puts_first_operand_in_memory_order():
    # a transposed C array: reordering walks it contiguously, then it merges to 1-D
    assert K.collapse_dims((4, 5), (1, 4), reorder=True) == ((20,), ((1,),))
    assert K.collapse_dims((4, 5), (1, 4), (5, 1), reorder=True) == ((5, 4), ((4, 1), (1, 5)))
    with pytest.raises(ValueError):
        K.collapse_dims((2, 3), (3,))


def collapsed_view(a, shape, strides):
    return np.lib.stride_tricks.as_strided(a, shape, strides)


def test_collapse_dims_then_copy_matches_uncollapsed():
    rng = np.random.default_rng(0)
    src = rng.standard_normal((3, 4, 5))[:, ::-1, :]
    dst = np.empty((3, 4, 5))
    shape, (ss, ds) = K.collapse_dims(src.shape, src.strides, dst.strides)
    K.copy_nd(collapsed_view(src, shape, ss), collapsed_view(dst, shape, ds))
    assert_same(dst, np.ascontiguousarray(src))


# ------------------------------------------------------------------ copy_nd

@pytest.mark.parametrize("dtype", [np.float64, np.int8, np.bool_])
def test_copy_transposed(dtype):
    rng = np.random.default_rng(1)
    a = sample((70, 90), dtype, rng)  # above the tiling cutoff (n0 * n1 > 4096)
    dst = np.empty((90, 70), dtype)
    K.copy_nd(a.T, dst)
    assert_same(dst, np.ascontiguousarray(a.T))


def test_copy_transposed_layouts():
    # float64 throughout this file where the dtype does not matter: fewer signatures to compile
    rng = np.random.default_rng(1)
    a = sample((70, 90), np.float64, rng)
    src = a[::-1, ::2].T  # strided and negative, transposed
    dst = np.empty(src.shape)
    K.copy_nd(src, dst)
    assert_same(dst, np.ascontiguousarray(src))
    dst_f = np.empty(a.shape, order="F")  # C source into an F destination
    K.copy_nd(a, dst_f)
    assert_same(dst_f, a)
    big = sample((300, 260), np.float64, rng)  # several tiles, ragged edges
    dst = np.empty((260, 300))
    K.copy_nd(big.T, dst)
    assert_same(dst, np.ascontiguousarray(big.T))


CASTS = ([(np.float64, d) for d in DTYPES] + [(d, np.float32) for d in DTYPES]
         + [(d, np.bool_) for d in DTYPES] + [(np.int64, np.int8), (np.int32, np.uint8),
                                             (np.bool_, np.int64), (np.uint8, np.int16)])


@pytest.mark.parametrize("src_dtype, dst_dtype", CASTS)
def test_copy_casts_like_numpy(src_dtype, dst_dtype):
    rng = np.random.default_rng(2)
    src = sample((40,), src_dtype, rng)
    if np.issubdtype(dst_dtype, np.integer) and np.issubdtype(src_dtype, np.floating):
        src = np.where(np.isfinite(src), np.abs(src) % 100, 7).astype(src_dtype)  # defined casts
    if src_dtype == np.int64 and dst_dtype == np.int8:
        src = src * 1000  # wraps
    dst = np.empty(src.shape, dst_dtype)
    K.copy_nd(src[::-1], dst)
    with np.errstate(invalid="ignore"):
        assert_same(dst, src[::-1].astype(dst_dtype))


def test_copy_float_to_bool_is_nonzero():
    src = np.array([0.0, -0.0, 0.5, np.nan, -np.inf])
    dst = np.empty(5, np.bool_)
    K.copy_nd(src, dst)
    assert dst.tolist() == [False, False, True, True, True]


def test_copy_zero_dim_and_empty():
    dst = np.zeros((), np.int32)
    K.copy_nd(np.array(3.75), dst)
    assert dst[()] == 3
    for shape in [(0,), (0, 5), (4, 0), (2, 0, 3), (2, 3, 0, 1)]:
        src = np.ones(shape)
        dst = np.empty(shape)
        K.copy_nd(src, dst)


def test_copy_broadcast_zero_strides():
    row = np.arange(6.0)
    src = np.broadcast_to(row, (5, 6))  # readonly, stride 0 along dim 0
    dst = np.empty((5, 6))
    K.copy_nd(src, dst)
    assert_same(dst, np.tile(row, (5, 1)))
    col = np.broadcast_to(np.arange(5.0)[:, None, None], (5, 4, 3))
    dst3 = np.empty((5, 4, 3))
    K.copy_nd(col, dst3)
    assert_same(dst3, np.ascontiguousarray(col))


@pytest.mark.parametrize("ndim", [4, 5, 8])
def test_copy_high_ndim(ndim):
    rng = np.random.default_rng(ndim)
    shape = (2, 3, 1, 2, 3, 2, 1, 2)[:ndim]
    a = rng.standard_normal(shape)
    src = a.transpose(tuple(range(ndim))[::-1])[..., ::-1]
    dst = np.empty(src.shape)
    K.copy_nd(src, dst)
    assert_same(dst, np.ascontiguousarray(src))


@st.composite
def strided_pair(draw):
    """A random view (permuted, sliced with negative steps, broadcast) and a random dst view."""
    ndim = draw(st.integers(1, 3))  # ndim 0 and >= 4 have their own tests
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim)))
    base_shape = tuple(2 * s + 1 for s in shape)
    base = np.arange(int(np.prod(base_shape)), dtype=np.float64).reshape(base_shape)
    view = base[tuple(slice(None, None, draw(st.sampled_from([1, 2, -1, -2]))) for _ in shape)]
    view = view[tuple(slice(0, s) for s in shape)]
    perm = draw(st.permutations(range(ndim)))
    src = view.transpose(perm)
    if draw(st.booleans()):  # broadcast one dim
        d = draw(st.integers(0, ndim - 1))
        first = tuple(slice(0, 1) if i == d else slice(None) for i in range(ndim))
        src = np.broadcast_to(src[first], src.shape)
    dst_base = np.full(tuple(2 * s + 1 for s in src.shape), -1.0)
    dst = dst_base[tuple(slice(None, None, draw(st.sampled_from([1, 2, -1]))) for _ in src.shape)]
    dst = dst[tuple(slice(0, s) for s in src.shape)]
    if draw(st.booleans()):
        dst = np.empty(src.shape)
    return src, dst


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strided_pair())
def test_copy_any_strides(pair):
    src, dst = pair
    K.copy_nd(src, dst)
    np.testing.assert_array_equal(dst, src)


def test_copy_parallel_variants():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((300, 131))
    for src in (a[:, :130].T, a[::-3, ::2]):  # tiled (a transpose); strided, untiled
        dst = np.empty(src.shape)
        K._copy2_par(src, dst)
        assert_same(dst, np.ascontiguousarray(src))
    src1 = a[:, 5]
    dst1 = np.empty(src1.shape)
    K._copy1_par(src1, dst1)
    assert_same(dst1, src1)
    b = rng.standard_normal((3, 70, 80))
    dst3 = np.empty((3, 80, 70))
    K._copy3_par(b.transpose(0, 2, 1), dst3)
    assert_same(dst3, np.ascontiguousarray(b.transpose(0, 2, 1)))


# ------------------------------------------------------------------ fill

@pytest.mark.parametrize("dtype, cases", [
    (np.float64, [((), ...), ((7,), np.s_[::-2]), ((6, 5), np.s_[::2, ::-1]),
                  ((4, 6), np.s_[...]), ((2, 3, 4, 5, 2), np.s_[:, ::-1])]),
    (np.int64, [((7,), np.s_[::-2])]),
    (np.bool_, [((7,), np.s_[::-2])]),
    (np.uint8, [((7,), np.s_[::-2])]),
])
def test_fill(dtype, cases):
    for shape, index in cases:
        a = np.zeros(shape, dtype)
        view = a[index]
        if view.ndim == 2:
            view = view.T
        K.fill(view, 3)
        want = np.zeros(shape, dtype)
        want[index] = 3
        assert_same(a, want)


def test_fill_casts_and_parallel():
    b = np.zeros(5, np.bool_)
    K.fill(b, 0.5)
    assert b.all()
    i = np.zeros(4, np.int32)
    K.fill(i, -2.9)
    assert (i == -2).all()
    g = np.zeros(1000)
    K._fill1_par(g[::2], 2)
    assert g[::2].sum() == 1000 and g[1::2].sum() == 0


# ------------------------------------------------------------------ (outer, n, inner) kernels

SHAPES3 = [(1, 1, 1), (1, 7, 1), (3, 5, 4), (2, 0, 3), (0, 4, 2), (4, 1, 6)]


@pytest.mark.parametrize("shape", SHAPES3)
def test_flip_and_roll(shape):
    rng = np.random.default_rng(4)
    src = rng.standard_normal(shape)
    out = np.empty_like(src)
    K.flip(src, out)
    assert_same(out, src[:, ::-1, :].copy())
    n = shape[1]
    for shift in range(n):
        K.roll(src, out, shift)
        assert_same(out, np.roll(src, shift, axis=1))


def test_flip_roll_int():
    src = np.arange(3 * 100 * 5, dtype=np.int16).reshape(3, 100, 5)
    out = np.empty_like(src)
    K.flip(src, out)
    assert_same(out, src[:, ::-1].copy())
    K.roll(src, out, 37)
    assert_same(out, np.roll(src, 37, axis=1))


@pytest.mark.parametrize("shape", [(2, 4, 3), (1, 5, 1), (3, 0, 2)])
def test_repeat_interleave(shape):
    rng = np.random.default_rng(5)
    src = rng.integers(0, 50, shape).astype(np.int32)
    reps = rng.integers(0, 4, shape[1]).astype(np.int64)
    out = np.empty((shape[0], int(reps.sum()), shape[2]), np.int32)
    K.repeat_interleave(src, reps, out)
    assert_same(out, np.repeat(src, reps, axis=1))


@pytest.mark.parametrize("diagonal", [-3, -1, 0, 1, 2, 9])
def test_tril_triu(diagonal):
    rng = np.random.default_rng(6)
    src = rng.standard_normal((2, 4, 6)).astype(np.float32)
    out = np.empty_like(src)
    K.tril(src, diagonal, out)
    assert_same(out, np.tril(src, diagonal))
    K.triu(src, diagonal, out)
    assert_same(out, np.triu(src, diagonal))
    inplace = src.copy()
    K.tril(inplace, diagonal, inplace)
    assert_same(inplace, np.tril(src, diagonal))


def test_tril_bool():
    src = np.ones((1, 3, 3), np.bool_)
    out = np.empty_like(src)
    K.triu(src, 1, out)
    assert_same(out, np.triu(src, 1))


# ------------------------------------------------------------------ creation

def test_arange():
    out = np.empty(7, np.int64)
    K.arange(-3, 2, out)
    assert_same(out, np.arange(-3, 11, 2))
    outf = np.empty(10, np.float32)
    K.arange(0.5, 0.1, outf)
    np.testing.assert_allclose(outf, 0.5 + 0.1 * np.arange(10), rtol=1e-6)
    K.arange(0, 1, np.empty(0, np.int64))


@pytest.mark.parametrize("steps", [0, 1, 2, 5, 10, 11])
def test_linspace(steps):
    out = np.empty(steps)
    K.linspace(-1.0, 3.0, out)
    np.testing.assert_allclose(out, np.linspace(-1.0, 3.0, steps), rtol=1e-15, atol=1e-15)
    if steps >= 2:
        assert out[0] == -1.0 and out[-1] == 3.0  # both endpoints exact


def test_linspace_int_truncates_like_torch():
    out = np.empty(4, np.int64)
    K.linspace(0.0, 10.0, out)
    assert out.tolist() == [0, 3, 6, 10]  # torch.linspace(0, 10, 4, dtype=torch.int64)


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (5, 2), (0, 3)])
def test_eye(shape):
    out = np.full(shape, 7.0)
    K.eye(out)
    assert_same(out, np.eye(*shape))
    b = np.empty(shape, np.bool_)
    K.eye(b)
    assert_same(b, np.eye(*shape, dtype=bool))

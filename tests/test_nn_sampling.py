"""nn.functional.affine_grid / grid_sample: exact identities and hand references, finite-difference
gradients, torch's values and gradients (when torch is installed) over every mode, padding mode,
align_corners and 4-D/5-D input, and the argument errors."""
import itertools
import warnings

import numpy as np
import pytest

import jitorch
import jitorch.nn.functional as F

try:
    import torch
except ImportError:  # optional reference
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed (optional reference)")

MODES = [(nd, mode, pad, ac)
         for nd, mode, pad, ac in itertools.product((2, 3), ("bilinear", "nearest", "bicubic"),
                                                    ("zeros", "border", "reflection"), (True, False))
         if not (mode == "bicubic" and nd == 3)]


def _identity_theta(n, nd, dtype=jitorch.float64):
    eye = np.eye(nd, nd + 1)
    return jitorch.tensor(np.broadcast_to(eye, (n, nd, nd + 1)).copy(), dtype=dtype)


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("spatial", [(4, 5), (1, 3), (6, 1)])
def test_identity_grid_reproduces_the_input(mode, align_corners, spatial):
    x = jitorch.tensor(np.random.default_rng(0).standard_normal((2, 3) + spatial))
    grid = F.affine_grid(_identity_theta(2, 2), (2, 3) + spatial, align_corners=align_corners)
    y = F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=align_corners)
    np.testing.assert_allclose(y.numpy(), x.numpy(), atol=1e-12)


@pytest.mark.parametrize("align_corners", [True, False])
def test_identity_grid_3d(align_corners):
    x = jitorch.tensor(np.random.default_rng(1).standard_normal((2, 2, 3, 4, 5)))
    grid = F.affine_grid(_identity_theta(2, 3), (2, 2, 3, 4, 5), align_corners=align_corners)
    for mode in ("bilinear", "nearest"):
        y = F.grid_sample(x, grid, mode=mode, align_corners=align_corners)
        np.testing.assert_allclose(y.numpy(), x.numpy(), atol=1e-12)


def test_integer_shift_by_hand():
    """Shifting by one pixel (align_corners=True: one pixel = 2 / (W - 1)) moves the image; zeros fill in."""
    x = np.arange(2 * 1 * 4 * 5, dtype=np.float64).reshape(2, 1, 4, 5)
    theta = np.tile(np.array([[1.0, 0, 2 / 4], [0, 1, 0]]), (2, 1, 1))  # sample at x + 1 pixel
    grid = F.affine_grid(jitorch.tensor(theta), (2, 1, 4, 5), align_corners=True)
    y = F.grid_sample(jitorch.tensor(x), grid, align_corners=True).numpy()
    want = np.zeros_like(x)
    want[..., :4] = x[..., 1:]
    np.testing.assert_allclose(y, want, atol=1e-12)


def test_bilinear_point_by_hand():
    x = jitorch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=jitorch.float64)
    # align_corners=True: (-1, -1) is pixel (0, 0), (1, 1) pixel (1, 1); the middle averages all four.
    grid = jitorch.tensor([[[[0.0, 0.0], [-1.0, -1.0], [1.0, 1.0], [0.5, -1.0]]]], dtype=jitorch.float64)
    y = F.grid_sample(x, grid, align_corners=True).numpy().ravel()
    np.testing.assert_allclose(y, [2.5, 1.0, 4.0, 1.75])


def test_nearest_matches_numpy_indexing():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 6, 7))
    iy, ix = rng.integers(0, 6, (5, 3)), rng.integers(0, 7, (5, 3))
    # align_corners=False: pixel centre i is at (2 i + 1) / size - 1; jitter inside the pixel.
    gx = (2 * ix + 1) / 7 - 1 + rng.uniform(-0.4, 0.4, ix.shape) * 2 / 7
    gy = (2 * iy + 1) / 6 - 1 + rng.uniform(-0.4, 0.4, iy.shape) * 2 / 6
    grid = jitorch.tensor(np.stack([gx, gy], -1)[None])
    y = F.grid_sample(jitorch.tensor(x), grid, mode="nearest", align_corners=False).numpy()
    np.testing.assert_array_equal(y, x[:, :, iy, ix])


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_gradients_match_finite_differences(mode, padding_mode):
    rng = np.random.default_rng(3)
    x = jitorch.tensor(rng.standard_normal((1, 1, 3, 3)), requires_grad=True)
    g = rng.uniform(-1.2, 1.2, (1, 2, 2, 2))
    g = jitorch.tensor(g, requires_grad=True)
    assert jitorch.autograd.gradcheck(
        lambda a, b: F.grid_sample(a, b, mode=mode, padding_mode=padding_mode, align_corners=False), (x, g),
        eps=1e-6, atol=1e-5)


def test_theta_gradient_through_affine_grid():
    rng = np.random.default_rng(4)
    theta = jitorch.tensor(np.eye(2, 3)[None] + 0.1 * rng.standard_normal((1, 2, 3)), requires_grad=True)
    x = jitorch.tensor(rng.standard_normal((1, 1, 5, 6)))
    assert jitorch.autograd.gradcheck(
        lambda t: F.grid_sample(x, F.affine_grid(t, (1, 1, 3, 4), align_corners=True), align_corners=True), (theta,),
        eps=1e-6, atol=1e-5)


@needs_torch
@pytest.mark.parametrize("nd,mode,padding_mode,align_corners", MODES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_values_and_gradients_match_torch(nd, mode, padding_mode, align_corners, dtype):
    rng = np.random.default_rng(hash((nd, mode, padding_mode, align_corners)) % 2**32)
    spatial = (3, 4, 5) if nd == 3 else (4, 5)
    out_sp = (2, 3, 4) if nd == 3 else (3, 6)
    x = rng.standard_normal((2, 3) + spatial).astype(dtype)
    g = rng.uniform(-1.6, 1.6, (2,) + out_sp + (nd,)).astype(dtype)  # out-of-range points included
    w = rng.standard_normal((2, 3) + out_sp).astype(dtype)
    got, want = [], []
    for lib, out in ((jitorch, got), (torch, want)):
        xt = lib.tensor(x, requires_grad=True)
        gt = lib.tensor(g, requires_grad=True)
        y = lib.nn.functional.grid_sample(xt, gt, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
        (y * lib.tensor(w)).sum().backward()
        out.extend([y.detach().numpy(), xt.grad.numpy(), gt.grad.numpy()])
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else dict(rtol=1e-10, atol=1e-10)
    for a, b, what in zip(got, want, ("output", "input grad", "grid grad")):
        assert a.dtype == b.dtype and a.shape == b.shape, what
        np.testing.assert_allclose(a, b, err_msg=what, **tol)


@needs_torch
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (1, 1, 1, 1), (3, 2, 1, 7), (2, 3, 3, 4, 5), (1, 1, 1, 2, 1)])
@pytest.mark.parametrize("align_corners", [True, False])
def test_affine_grid_matches_torch(size, align_corners):
    rng = np.random.default_rng(len(size) * 10 + size[-1])
    nd = len(size) - 2
    theta = rng.standard_normal((size[0], nd, nd + 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = F.affine_grid(jitorch.tensor(theta), size, align_corners=align_corners).numpy()
        n_ours = len(caught)
        want = torch.nn.functional.affine_grid(torch.tensor(theta), size, align_corners=align_corners).numpy()
    assert n_ours == len(caught) - n_ours, "the unit-size warning differs from torch's"
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_align_corners_default_warns_like_torch():
    x = jitorch.zeros(1, 1, 2, 2)
    with pytest.warns(UserWarning, match="align_corners=False"):
        grid = F.affine_grid(_identity_theta(1, 2, jitorch.float32), (1, 1, 2, 2))
    with pytest.warns(UserWarning, match="align_corners=False"):
        F.grid_sample(x, grid)


def test_nearest_gives_the_grid_a_zero_gradient():
    x = jitorch.ones(1, 1, 3, 3, requires_grad=True)
    g = jitorch.zeros(1, 2, 2, 2, requires_grad=True)
    F.grid_sample(x, g, mode="nearest", align_corners=False).sum().backward()
    assert g.grad is not None and not g.grad.numpy().any()
    assert x.grad.numpy()[0, 0, 1, 1] == 4.0  # all four points read the centre pixel


def test_traced_grid_sample_equals_eager():
    rng = np.random.default_rng(5)
    x = jitorch.tensor(rng.standard_normal((2, 3, 5, 6)).astype(np.float32))
    theta = jitorch.tensor((np.eye(2, 3)[None] + 0.2 * rng.standard_normal((2, 2, 3))).astype(np.float32))

    def stn(x, theta):
        return F.grid_sample(x, F.affine_grid(theta, (2, 3, 4, 4), align_corners=False), align_corners=False)
    traced = jitorch.jit.trace(stn, (x, theta))
    np.testing.assert_allclose(traced(x, theta).numpy(), stn(x, theta).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: F.affine_grid(jitorch.zeros(2, 2, 3), (2, 1, 4), align_corners=False), NotImplementedError, "4D and 5D"),
    (lambda: F.affine_grid(jitorch.zeros(2, 3, 3), (2, 1, 4, 4), align_corners=False), ValueError, "Nx2x3"),
    (lambda: F.affine_grid(jitorch.zeros(1, 2, 3), (2, 1, 4, 4), align_corners=False), ValueError, "Nx2x3"),
    (lambda: F.affine_grid(jitorch.zeros(1, 2, 3, dtype=jitorch.int64), (1, 1, 4, 4), align_corners=False),
     ValueError, "floating point"),
    (lambda: F.affine_grid(jitorch.zeros(1, 2, 3), (1, 1, 0, 4), align_corners=False), ValueError, "positive"),
    (lambda: F.grid_sample(jitorch.zeros(1, 1, 4, 4), jitorch.zeros(1, 2, 2, 2), mode="area", align_corners=False),
     ValueError, "mode"),
    (lambda: F.grid_sample(jitorch.zeros(1, 1, 4, 4), jitorch.zeros(1, 2, 2, 2), padding_mode="wrap",
                           align_corners=False), ValueError, "padding_mode"),
    (lambda: F.grid_sample(jitorch.zeros(1, 4, 4), jitorch.zeros(1, 2, 2), align_corners=False), RuntimeError, "4D or 5D"),
    (lambda: F.grid_sample(jitorch.zeros(2, 1, 4, 4), jitorch.zeros(1, 2, 2, 2), align_corners=False),
     RuntimeError, "same batch size"),
    (lambda: F.grid_sample(jitorch.zeros(1, 1, 4, 4), jitorch.zeros(1, 2, 2, 3), align_corners=False),
     RuntimeError, "size 2 in last dimension"),
    (lambda: F.grid_sample(jitorch.zeros(1, 1, 4, 4), jitorch.zeros(1, 2, 2, 2, dtype=jitorch.float64),
                           align_corners=False), RuntimeError, "same floating point dtype"),
    (lambda: F.grid_sample(jitorch.zeros(1, 1, 2, 4, 4), jitorch.zeros(1, 2, 2, 2, 3), mode="bicubic",
                           align_corners=False), ValueError, "bicubic"),
    (lambda: F.grid_sample(jitorch.zeros(1, 1, 0, 4), jitorch.zeros(1, 2, 2, 2), align_corners=False),
     RuntimeError, "non-empty spatial"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()

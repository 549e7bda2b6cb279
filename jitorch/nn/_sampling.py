"""nn.functional.affine_grid and grid_sample (spatial transformers), composed of jitorch ops.

``affine_grid`` maps a base grid of normalized output coordinates through a batch of affine
matrices; ``grid_sample`` reads the input at those (normalized, [-1, 1]) coordinates with
bilinear/trilinear, nearest or bicubic interpolation and zeros/border/reflection padding, with
torch's conventions (``align_corners``: whether -1 and 1 are the centres or the outer edges of the
corner pixels). Both are compositions of elementwise ops, ``gather`` and a batched matmul, so
gradients with respect to the input *and* the grid (and hence theta) come from those ops' rules,
and the tracer records them like any other composition.
"""
from __future__ import annotations

import itertools
import warnings

import jitorch as _t

from .. import _dtype as D
from ..tensor import Tensor

_ALIGN_WARNING = ("Default {} behavior has changed to align_corners=False since 1.3.0. Please specify "
                  "align_corners=True if the old behavior is desired. See the documentation of {} for details.")


def _align(align_corners, fn):
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING.format("grid_sample and affine_grid", fn), UserWarning, stacklevel=3)
        return False
    return bool(align_corners)


def _base_coords(steps, align_corners, like):
    """torch's linspace_from_neg_one: -1..1 in ``steps`` points, scaled to pixel centres unless aligned."""
    if steps <= 1:
        return _t.zeros(max(steps, 1), dtype=like.dtype, device=like.device)
    r = _t.linspace(-1.0, 1.0, steps, dtype=like.dtype, device=like.device)
    return r if align_corners else r * ((steps - 1) / steps)


def affine_grid(theta, size, align_corners=None):
    """Sampling grid (N, H, W, 2) or (N, D, H, W, 3) for grid_sample from affine matrices theta
    (N, 2, 3) or (N, 3, 4); ``size`` is the output's (N, C, H, W) or (N, C, D, H, W)."""
    align_corners = _align(align_corners, "nn.functional.affine_grid")
    if not isinstance(theta, Tensor):
        raise TypeError(f"affine_grid(): theta must be a Tensor, got {type(theta).__name__}")
    if not theta.is_floating_point():
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    size = tuple(int(s) for s in size)
    if len(size) == 4:
        want = (size[0], 2, 3)
    elif len(size) == 5:
        want = (size[0], 3, 4)
    else:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {list(size)}.")
    if theta.ndim != 3 or tuple(theta.shape) != want:
        raise ValueError(f"Expected a batch of {want[1]}D affine matrices of shape Nx{want[1]}x{want[2]} for size "
                         f"{list(size)}. Got {list(theta.shape)}.")
    if min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {list(size)}")
    spatial = size[2:]  # (H, W) or (D, H, W)
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the documentation "
                      "of affine_grid for details.", UserWarning, stacklevel=2)
    nd = len(spatial)
    # Base grid (*spatial, nd + 1): the last dim holds (x, y[, z], 1): x runs along W, the last spatial dim.
    axes = [_base_coords(s, align_corners, theta) for s in spatial]
    parts = []
    for k in range(nd):  # component k (x, y, z) varies along spatial dim nd - 1 - k
        dim = nd - 1 - k
        shape = [1] * nd
        shape[dim] = spatial[dim]
        parts.append(axes[dim].reshape(shape).expand(*spatial))
    parts.append(_t.ones(spatial, dtype=theta.dtype, device=theta.device))
    base = _t.stack(parts, -1).reshape(1, -1, nd + 1)
    grid = _t.matmul(base, theta.transpose(1, 2))  # (N, prod(spatial), nd)
    return grid.reshape(size[0], *spatial, nd)


# ------------------------------------------------------------------------------------- grid_sample

def _unnormalize(coord, size, align_corners):
    if align_corners:
        return (coord + 1) * ((size - 1) / 2)
    return ((coord + 1) * size - 1) / 2


def _reflect(coord, twice_low, twice_high):
    """Reflect coordinates into [twice_low/2, twice_high/2] (torch's reflect_coordinates)."""
    if twice_low == twice_high:
        return coord * 0
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    c = (coord - lo).abs()
    extra = _t.fmod(c, span)
    flips = _t.floor(c / span).detach()
    even = _t.fmod(flips, 2) == 0
    return _t.where(even, extra + lo, (span - extra) + lo)


def _pad_coords(coord, size, padding_mode, align_corners):
    if padding_mode == "border":
        return coord.clamp(0, size - 1)
    if padding_mode == "reflection":
        c = _reflect(coord, 0, 2 * (size - 1)) if align_corners else _reflect(coord, -1, 2 * size - 1)
        return c.clamp(0, size - 1)
    return coord


class _Reader:
    """Reads input values at integer coordinates (one tensor per spatial dim, shape (N, *out)),
    zero where a coordinate falls outside the input."""

    def __init__(self, input):
        self.n, self.c = input.shape[0], input.shape[1]
        self.spatial = tuple(input.shape[2:])
        self.flat = input.reshape(self.n, self.c, -1)
        strides, acc = [], 1
        for s in reversed(self.spatial):
            strides.append(acc)
            acc *= s
        self.strides = tuple(reversed(strides))

    def __call__(self, idx):
        valid = None
        flat = None
        for i, (ix, s, st) in enumerate(zip(idx, self.spatial, self.strides)):
            ok = (ix >= 0) & (ix < s)
            valid = ok if valid is None else valid & ok
            term = ix.clamp(0, s - 1) * st
            flat = term if flat is None else flat + term
        out_shape = tuple(flat.shape[1:])
        index = flat.reshape(self.n, 1, -1).expand(self.n, self.c, flat[0].numel())
        vals = _t.gather(self.flat, 2, index).reshape(self.n, self.c, *out_shape)
        return vals, valid


class _ZeroGradTo(_t.autograd.Function):
    """Identity on ``out`` that gives ``other`` a zero gradient (nearest sampling's grid)."""

    @staticmethod
    def forward(ctx, out, other):
        ctx.other_shape, ctx.other_dtype, ctx.other_device = other.shape, other.dtype, other.device
        return out.view_as(out)

    @staticmethod
    def backward(ctx, g):
        return g, _t.zeros(ctx.other_shape, dtype=ctx.other_dtype, device=ctx.other_device)


def _cubic_coeffs(t):
    a = -0.75  # torch's (and OpenCV's) cubic convolution constant

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sample ``input`` (N, C, H, W) / (N, C, D, H, W) at ``grid`` (N, Ho, Wo, 2) / (N, Do, Ho, Wo, 3)
    of normalized coordinates (x along W first); modes 'bilinear', 'nearest', 'bicubic' (4-D only);
    padding 'zeros', 'border', 'reflection'."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    align_corners = _align(align_corners, "nn.functional.grid_sample")
    for name, t in (("input", input), ("grid", grid)):
        if not isinstance(t, Tensor):
            raise TypeError(f"grid_sample(): {name} must be a Tensor, got {type(t).__name__}")
    if input.ndim not in (4, 5):
        raise RuntimeError(f"grid_sampler(): expected 4D or 5D input and grid with same number of dimensions, but "
                           f"got input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if grid.ndim != input.ndim:
        raise RuntimeError(f"grid_sampler(): expected grid to have the same number of dimensions as input "
                           f"({input.ndim}), but got grid with sizes {list(grid.shape)}")
    nd = input.ndim - 2
    if grid.shape[0] != input.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but got input with "
                           f"sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if grid.shape[-1] != nd:
        raise RuntimeError(f"grid_sampler(): expected grid to have size {nd} in last dimension, but got grid with "
                           f"sizes {list(grid.shape)}")
    if input.device != grid.device:
        raise RuntimeError(f"grid_sampler(): expected input and grid to be on same device, but input is on "
                           f"{input.device} and grid is on {grid.device}")
    if input.dtype != grid.dtype or input.dtype not in (D.float32, D.float64, D.float16):
        raise RuntimeError(f"grid_sampler(): expected input and grid to have the same floating point dtype, but "
                           f"input has {input.dtype} and grid has {grid.dtype}")
    if any(s == 0 for s in input.shape[2:]):
        raise RuntimeError(f"grid_sampler(): expected input to have non-empty spatial dimensions, but input has "
                           f"sizes {list(input.shape)} with dimension {2 + list(input.shape[2:]).index(0)} being empty")
    if mode == "bicubic" and nd != 2:
        raise ValueError("grid_sampler(): bicubic interpolation only supports 4D input")

    read = _Reader(input)
    spatial = read.spatial
    # Coordinate of spatial dim i (D, H, W order) is grid component nd - 1 - i (x is component 0, along W).
    raw = [_unnormalize(grid[..., nd - 1 - i], spatial[i], align_corners) for i in range(nd)]

    if mode == "bicubic":
        base = [_t.floor(c).detach() for c in raw]
        coeffs = [_cubic_coeffs(c - b) for c, b in zip(raw, base)]
        out = None
        for ky, kx in itertools.product(range(4), range(4)):
            taps = [_pad_coords(base[0] + (ky - 1), spatial[0], padding_mode, align_corners),
                    _pad_coords(base[1] + (kx - 1), spatial[1], padding_mode, align_corners)]
            vals, valid = read([t.detach().long() for t in taps])
            w = coeffs[0][ky] * coeffs[1][kx] * valid.to(input.dtype)
            term = vals * w.unsqueeze(1)
            out = term if out is None else out + term
        return out

    coords = [_pad_coords(c, s, padding_mode, align_corners) for c, s in zip(raw, spatial)]
    if mode == "nearest":
        vals, valid = read([_t.round(c).detach().long() for c in coords])
        out = vals * valid.to(input.dtype).unsqueeze(1)
        if grid.requires_grad and _t.is_grad_enabled():
            out = _ZeroGradTo.apply(out, grid)  # torch gives the grid a zero gradient, not None
        return out

    # (bi/tri)linear: the 2**nd corners of the cell around each point, weighted by the opposite volumes.
    low = [_t.floor(c).detach() for c in coords]
    frac = [c - f for c, f in zip(coords, low)]
    low_i = [f.long() for f in low]
    out = None
    for corner in itertools.product((0, 1), repeat=nd):
        w = None
        for bit, t in zip(corner, frac):
            f = t if bit else 1 - t
            w = f if w is None else w * f
        vals, valid = read([li + bit for li, bit in zip(low_i, corner)])
        term = vals * (w * valid.to(input.dtype)).unsqueeze(1)
        out = term if out is None else out + term
    return out

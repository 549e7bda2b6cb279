"""3-d max and average pooling, separable into the table's 2-d pooling over each depth slice followed
by 1-d pooling over depth.

Both reductions over a box window factor exactly: the max over (kd, kh, kw) is the max over depth of
the per-slice maxima, and every divisor torch uses for an average (the box's size, its size without
padding, or an override) is a product of per-dimension counts. Ties resolve as torch's kernels do
(the first position in (d, h, w) order: the first (h, w) within a slice, then the first depth holding
the overall maximum), so values, indices and gradients equal torch's; gradients come from the 2-d
and 1-d pooling rules.
"""
from __future__ import annotations

from .._dispatch import call
from .functional import _check_tensor, _ntuple

_triple = _ntuple(3)


def _params(name, input, kernel_size, stride, padding, dilation, ceil_mode):
    _check_tensor(name, input)
    if input.ndim not in (4, 5):
        raise RuntimeError(f"{name}: Expected 4D or 5D (batch mode) tensor for input, but got input of size: "
                           f"{list(input.shape)}")
    if any(s == 0 for s in input.shape[-3:]) or (input.ndim == 5 and input.shape[1] == 0):
        raise RuntimeError(f"{name}: Expected input's non-batch dimensions to have positive length, but input has a "
                           f"shape of {list(input.shape)}")
    k = _triple(kernel_size)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _triple(stride)
    p, d = _triple(padding), _triple(dilation)
    if min(k) <= 0:
        raise RuntimeError(f"{name}: kernel_size must be greater than zero, but got {list(k)}")
    if min(s) <= 0:
        raise RuntimeError(f"{name}: stride must be greater than zero, but got {list(s)}")
    if min(d) <= 0:
        raise RuntimeError(f"{name}: dilation must be greater than zero, but got {list(d)}")
    if min(p) < 0 or any(pi * 2 > (ki - 1) * di + 1 for pi, ki, di in zip(p, k, d)):
        raise RuntimeError(f"{name}: pad should be at most half of effective kernel size, but got pad={list(p)}, "
                           f"kernel_size={list(k)} and dilation={list(d)}")
    spatial = tuple(input.shape[-3:])
    out = []
    for n, ki, si, pi, di in zip(spatial, k, s, p, d):
        span = n + 2 * pi - di * (ki - 1) - 1
        o = (span + (si - 1 if ceil_mode else 0)) // si + 1
        if ceil_mode and (o - 1) * si >= n + pi:  # the last window must start inside the input or left padding
            o -= 1
        out.append(o)
    if min(out) <= 0:
        raise RuntimeError(f"{name}: Given input size: ({'x'.join(map(str, input.shape[-4:]))}). Calculated output "
                           f"size: ({'x'.join(map(str, (input.shape[-4], *out)))}). Output size is too small")
    return k, s, p, d


def _split(input):
    """(N, C, D, H, W) or (C, D, H, W) -> planes (N, C * D, H, W), and what is needed to undo it."""
    unbatched = input.ndim == 4
    x = input.unsqueeze(0) if unbatched else input
    n, c, dd, h, w = x.shape
    return x.reshape(n, c * dd, h, w), (unbatched, n, c, dd, h, w)


def _depth_last(y, n, c, dd):
    """(N, C * D, OH, OW) -> (N, C * OH * OW, D): depth as the 1-d pooling axis."""
    oh, ow = y.shape[-2:]
    return y.reshape(n, c, dd, oh, ow).permute(0, 1, 3, 4, 2).reshape(n, c * oh * ow, dd), (oh, ow)


def _depth_back(z, n, c, ohw, unbatched):
    """(N, C * OH * OW, OD) -> (N, C, OD, OH, OW)."""
    oh, ow = ohw
    od = z.shape[-1]
    out = z.reshape(n, c, oh, ow, od).permute(0, 1, 4, 2, 3)
    return out.squeeze(0) if unbatched else out


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """3-d max pooling of (N, C, D, H, W) or (C, D, H, W); ``return_indices`` also returns flat indices into
    D * H * W (torch's convention, accepted by max_unpool3d-style consumers)."""
    k, s, p, d = _params("max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode)
    planes, (unbatched, n, c, dd, h, w) = _split(input)
    y2, idx2 = call("max_pool2d_with_indices", planes, kernel_size=k[1:], stride=s[1:], padding=p[1:],
                    dilation=d[1:], ceil_mode=bool(ceil_mode))
    col, ohw = _depth_last(y2, n, c, dd)
    z, zd = call("max_pool2d_with_indices", col.unsqueeze(2), kernel_size=(1, k[0]), stride=(1, s[0]),
                 padding=(0, p[0]), dilation=(1, d[0]), ceil_mode=bool(ceil_mode))
    z, zd = z.squeeze(2), zd.squeeze(2)
    y = _depth_back(z, n, c, ohw, unbatched)
    if not return_indices:
        return y
    # Flat index = depth * H * W + the (h, w) index that slice chose.
    hw_idx, _ = _depth_last(idx2, n, c, dd)
    idx = zd * (h * w) + hw_idx.gather(2, zd)
    return y, _depth_back(idx, n, c, ohw, unbatched)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """3-d average pooling of (N, C, D, H, W) or (C, D, H, W), torch's divisor rules."""
    if divisor_override is not None and int(divisor_override) == 0:
        raise RuntimeError("avg_pool3d: divisor must be not zero")
    k, s, p, _ = _params("avg_pool3d", input, kernel_size, stride, padding, 1, ceil_mode)
    planes, (unbatched, n, c, dd, h, w) = _split(input)
    # With an override, both stages sum (divisor 1) and the sum is divided once at the end.
    div = None if divisor_override is None else 1
    y2 = call("avg_pool2d", planes, kernel_size=k[1:], stride=s[1:], padding=p[1:], ceil_mode=bool(ceil_mode),
              count_include_pad=bool(count_include_pad), divisor_override=div)
    col, ohw = _depth_last(y2, n, c, dd)
    z = call("avg_pool2d", col.unsqueeze(2), kernel_size=(1, k[0]), stride=(1, s[0]), padding=(0, p[0]),
             ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad), divisor_override=div).squeeze(2)
    if divisor_override is not None:
        z = z / int(divisor_override)
    return _depth_back(z, n, c, ohw, unbatched)

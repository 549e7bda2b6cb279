"""torch.nn.functional on jitorch.

Convolution and pooling call the op table's primitives (``jitorch.ops.nn``: numba kernels, forward
and backward). Everything else is composed of jitorch ops (elementwise, reductions, matmul,
indexing), so it inherits kernels, gradients and tracing from its parts: activations that are
elementwise primitives (relu, leaky_relu, elu, softplus, hardtanh, sigmoid, tanh) call them
directly; normalizations, attention and losses are written out with torch's formulas.

Shapes are checked before any kernel runs, with torch's messages naming the function and the
expected shape.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

import jitorch as _t

from .. import _dtype as D
from .._dispatch import call, call_inplace
from ..tensor import Tensor
from .attention import _math_allowed as _sdpa_math_allowed

__all__ = []  # filled at the end


# ================================================================================================ helpers

def _ntuple(n, name="value"):
    def parse(x):
        if isinstance(x, (list, tuple)):
            x = tuple(int(v) for v in x)
            if len(x) == 1 and n > 1:
                return x * n
            if len(x) != n:
                raise ValueError(f"{name}: expected {n} values, got {list(x)}")
            return x
        return (int(x),) * n
    return parse


_single, _pair, _triple = _ntuple(1), _ntuple(2), _ntuple(3)


def _is_t(x):
    return isinstance(x, Tensor)


def _check_tensor(fn, x, name="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{name}' must be Tensor, not {type(x).__name__}")


def _const(arr, like=None):
    """A constant tensor from a NumPy array (on like's device)."""
    t = _t.from_numpy(np.ascontiguousarray(arr))
    if like is not None and like.device.type != "cpu":
        t = t.to(like.device)
    return t


class _Reduction:
    @staticmethod
    def legacy_get_string(size_average, reduce, emit_warning=True):
        if size_average is None:
            size_average = True
        if reduce is None:
            reduce = True
        if size_average and reduce:
            ret = "mean"
        elif reduce:
            ret = "sum"
        else:
            ret = "none"
        if emit_warning:
            warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
                          stacklevel=3)
        return ret


def _reduction(size_average, reduce, reduction):
    if size_average is not None or reduce is not None:
        return _Reduction.legacy_get_string(size_average, reduce)
    return reduction


def _apply_reduction(loss, reduction, fn="loss"):
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _neg_inf_like(x):
    return -math.inf


# ================================================================================================ activations

def relu(input, inplace=False):
    """max(x, 0) (the table's ``relu`` kernel)."""
    if inplace:
        return call_inplace("relu", input)
    return call("relu", input)


def relu_(input):
    return call_inplace("relu", input)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    if inplace:
        return call_inplace("leaky_relu", input, negative_slope=negative_slope)
    return call("leaky_relu", input, negative_slope=negative_slope)


def leaky_relu_(input, negative_slope=0.01):
    return leaky_relu(input, negative_slope, True)


def elu(input, alpha=1.0, inplace=False):
    if inplace:
        return call_inplace("elu", input, alpha=alpha)
    return call("elu", input, alpha=alpha)


def elu_(input, alpha=1.0):
    return elu(input, alpha, True)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    r = call("mul", call("elu", input, alpha=_SELU_ALPHA), _SELU_SCALE)
    if inplace:
        return input.copy_(r)
    return r


def celu(input, alpha=1.0, inplace=False):
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: celu alpha must not be 0")
    r = call("mul", call("elu", call("div", input, alpha), alpha=1.0), alpha)
    if inplace:
        return input.copy_(r)
    return r


def gelu(input, approximate="none"):
    """0.5 x (1 + erf(x / sqrt 2)); ``approximate='tanh'``: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if approximate == "none":
        return call("mul", call("mul", input, 0.5), call("add", call("erf", call("mul", input, 0.7071067811865476)),
                                                         1.0, alpha=1))
    if approximate == "tanh":
        inner = call("mul", call("addcmul", input, call("mul", input, input), input, value=0.044715),
                     0.7978845608028654)
        return call("mul", call("mul", input, 0.5), call("add", call("tanh", inner), 1.0, alpha=1))
    raise RuntimeError(f"approximate argument must be either none or tanh, got '{approximate}'")


def silu(input, inplace=False):
    r = call("mul", input, call("sigmoid", input))
    if inplace:
        return input.copy_(r)
    return r


def mish(input, inplace=False):
    r = call("mul", input, call("tanh", call("softplus", input, beta=1.0, threshold=20.0)))
    if inplace:
        return input.copy_(r)
    return r


def sigmoid(input):
    return call("sigmoid", input)


def tanh(input):
    return call("tanh", input)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    if inplace:
        return call_inplace("hardtanh", input, min_val=min_val, max_val=max_val)
    return call("hardtanh", input, min_val=min_val, max_val=max_val)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return hardtanh(input, min_val, max_val, True)


def hardswish(input, inplace=False):
    r = call("mul", input, call("div", call("hardtanh", call("add", input, 3.0, alpha=1), min_val=0.0, max_val=6.0),
                                6.0))
    if inplace:
        return input.copy_(r)
    return r


def hardsigmoid(input, inplace=False):
    r = call("div", call("hardtanh", call("add", input, 3.0, alpha=1), min_val=0.0, max_val=6.0), 6.0)
    if inplace:
        return input.copy_(r)
    return r


def softplus(input, beta=1.0, threshold=20.0):
    return call("softplus", input, beta=beta, threshold=threshold)


def softsign(input):
    return call("div", input, call("add", call("abs", input), 1.0, alpha=1))


def tanhshrink(input):
    return call("sub", input, call("tanh", input), alpha=1)


def softshrink(input, lambd=0.5):
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return call("where", call("gt", input, lambd), call("sub", input, lambd, alpha=1),
                call("where", call("lt", input, -lambd), call("add", input, lambd, alpha=1), 0.0))


def hardshrink(input, lambd=0.5):
    return call("where", call("gt", call("abs", input), lambd), input, 0.0)


def threshold(input, threshold, value, inplace=False):
    r = call("where", call("gt", input, threshold), input, value)
    if inplace:
        return input.copy_(r)
    return r


threshold_ = threshold


def _softplus_neg(x):
    """log(1 + exp(-x)) = max(-x, 0) + log1p(exp(-|x|)), accurate for every x (torch's log_sigmoid formula)."""
    return call("add", call("clamp_min", call("neg", x), min=0.0),
                call("log1p", call("exp", call("neg", call("abs", x)))), alpha=1)


def logsigmoid(input):
    """log(sigmoid(x)) = -(max(-x, 0) + log1p(exp(-|x|)))."""
    return call("neg", _softplus_neg(input))


def prelu(input, weight):
    """max(0, x) + weight * min(0, x), weight broadcast over the channel dim (dim 1)."""
    _check_tensor("prelu", input)
    w = weight
    if w.numel() != 1:
        if input.ndim < 2 and not (input.ndim == 1 and w.numel() == input.shape[0]):
            raise RuntimeError("prelu: Mismatch of parameter numbers and input channel size. Found parameter "
                               f"numbers = "
                               f"{w.numel()} and channel size = {input.shape[1] if input.ndim > 1 else 1}.")
        c = input.shape[1] if input.ndim >= 2 else input.shape[0]
        if w.numel() != c:
            raise RuntimeError("prelu: Mismatch of parameter numbers and input channel size. Found parameter "
                               f"numbers = "
                               f"{w.numel()} and channel size = {c}.")
        if input.ndim >= 2:
            w = w.reshape((1, c) + (1,) * (input.ndim - 2))
    elif w.ndim > 0:
        w = w.reshape(())
    return call("where", call("gt", input, 0), input, call("mul", w, input))


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    a = _t.empty(input.shape, dtype=input.dtype).uniform_(lower, upper)
    r = call("where", call("ge", input, 0), input, call("mul", input, a))
    if inplace:
        return input.copy_(r)
    return r


def glu(input, dim=-1):
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    n = input.shape[dim]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim % input.ndim} is size {n}")
    a, b = input.split(n // 2, dim)
    return call("mul", a, call("sigmoid", b))


def _softmax_dim(name, ndim, stacklevel=3):
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an "
                  "argument.", stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim, _stacklevel)
    return _t.softmax(input, dim, dtype=dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim, _stacklevel)
    return _t.log_softmax(input, dim, dtype=dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim, _stacklevel)
    return _t.softmax(call("neg", input), dim, dtype=dtype)


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    u = _t.empty(logits.shape, dtype=logits.dtype).exponential_()
    gumbels = call("div", call("sub", logits, call("log", u), alpha=1), tau)
    y_soft = _t.softmax(gumbels, dim)
    if not hard:
        return y_soft
    index = y_soft.max(dim, keepdim=True)[1]
    y_hard = _t.zeros_like(logits).scatter_(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


# ================================================================================================ linear

def linear(input, weight, bias=None):
    """y = x W^T + b for x (*, in_features), W (out_features, in_features)."""
    _check_tensor("linear", input)
    if weight.ndim not in (1, 2):
        raise RuntimeError(f"linear: weight must be 1-D or 2-D, got weight of size {list(weight.shape)}")
    if input.ndim == 0:
        raise RuntimeError("linear: input must have at least 1 dimension, got a 0-dim tensor")
    k = weight.shape[-1]
    if input.shape[-1] != k:
        rows = math.prod(input.shape[:-1])
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} and "
                           f"{k}x{weight.shape[0] if weight.ndim == 2 else 1}) (linear: input of size "
                           f"{list(input.shape)}, weight of size {list(weight.shape)}; the input's last dim must be "
                           f"in_features={k})")
    wt = call("permute", weight, dims=(1, 0)) if weight.ndim == 2 else weight
    y = call("matmul", input, wt)
    if bias is not None:
        y = call("add", y, bias, alpha=1)
    return y


def bilinear(input1, input2, weight, bias=None):
    """y[..., o] = sum_ij x1[..., i] W[o, i, j] x2[..., j] + b[o]."""
    if weight.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be 3-D (out, in1, in2), got {list(weight.shape)}")
    if input1.shape[:-1] != input2.shape[:-1]:
        raise RuntimeError(f"bilinear(): input batch dimensions do not match: got {list(input1.shape[:-1])} and "
                           f"{list(input2.shape[:-1])}")
    if input1.shape[-1] != weight.shape[1]:
        raise RuntimeError(f"bilinear(): input1 size does not match weight size: got {input1.shape[-1]} but expected "
                           f"{weight.shape[1]}")
    if input2.shape[-1] != weight.shape[2]:
        raise RuntimeError(f"bilinear(): input2 size does not match weight size: got {input2.shape[-1]} but expected "
                           f"{weight.shape[2]}")
    lead = input1.shape[:-1]
    o, i, j = weight.shape
    x1 = input1.reshape(-1, i)
    x2 = input2.reshape(-1, j)
    # (B, i) @ (i, o*j) -> (B, o, j); times x2 (B, 1, j); sum over j
    t = call("matmul", x1, weight.permute(1, 0, 2).reshape(i, o * j)).reshape(-1, o, j)
    y = call("matmul", t, x2.unsqueeze(-1)).reshape(tuple(lead) + (o,))
    if bias is not None:
        y = call("add", y, bias, alpha=1)
    return y


# ================================================================================================ convolution

def _conv_padding(name, padding, nd, weight, stride, dilation):
    """Returns (symmetric padding tuple, extra right padding per dim or None)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * nd, None
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            total = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
            left = tuple(t // 2 for t in total)
            extra = tuple(t - 2 * (t // 2) for t in total)
            return left, (extra if any(extra) else None)
        raise ValueError(f"Invalid padding string '{padding}', should be one of {{'valid', 'same'}}")
    return _ntuple(nd)(padding), None


def _convnd(nd, name, input, weight, bias, stride, padding, dilation, groups):
    _check_tensor(name, input)
    _check_tensor(name, weight, "weight")
    if weight.ndim != nd + 2:
        raise RuntimeError(f"{name}: expected a {nd + 2}-D weight (out_channels, in_channels/groups, "
                           f"{', '.join('k' + str(i) for i in range(nd))}), got weight of size {list(weight.shape)}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {name}, but got input of "
                           f"size: {list(input.shape)}")
    stride, dilation = _ntuple(nd)(stride), _ntuple(nd)(dilation)
    pad, extra = _conv_padding(name, padding, nd, weight, stride, dilation)
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    if extra is not None:
        spec = []
        for e in reversed(extra):
            spec += [0, e]
        x = pad_(x, spec)
    args = (x, weight) if bias is None else (x, weight, bias)
    y = call("convolution", *args, stride=stride, padding=pad, dilation=dilation, groups=int(groups))
    return y.squeeze(0) if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d cross-correlation of (N, C, L) (or unbatched (C, L)) with weight (O, C/groups, k)."""
    return _convnd(1, "conv1d", input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation of (N, C, H, W) (or unbatched (C, H, W)) with weight (O, C/groups, kh, kw)."""
    return _convnd(2, "conv2d", input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _convnd(3, "conv3d", input, weight, bias, stride, padding, dilation, groups)


def _conv_transposend(nd, name, input, weight, bias, stride, padding, output_padding, groups, dilation):
    _check_tensor(name, input)
    if weight.ndim != nd + 2:
        raise RuntimeError(f"{name}: expected a {nd + 2}-D weight (in_channels, out_channels/groups, ...), got weight "
                           f"of size {list(weight.shape)}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {name}, but got input of "
                           f"size: {list(input.shape)}")
    if isinstance(padding, str):
        raise ValueError(f"{name}: padding must be an int or a tuple of ints for transposed convolutions")
    nt = _ntuple(nd)
    stride, padding, output_padding, dilation = nt(stride), nt(padding), nt(output_padding), nt(dilation)
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= s and op >= d:
            raise RuntimeError(f"{name}: output padding must be smaller than either stride or dilation, but got "
                               f"output_padding={list(output_padding)}, stride={list(stride)}, "
                               f"dilation={list(dilation)}")
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    args = (x, weight) if bias is None else (x, weight, bias)
    y = call("conv_transpose", *args, stride=stride, padding=padding, output_padding=output_padding,
             dilation=dilation, groups=int(groups))
    return y.squeeze(0) if unbatched else y


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transposend(1, "conv_transpose1d", input, weight, bias, stride, padding, output_padding, groups,
                             dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transposend(2, "conv_transpose2d", input, weight, bias, stride, padding, output_padding, groups,
                             dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transposend(3, "conv_transpose3d", input, weight, bias, stride, padding, output_padding, groups,
                             dilation)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: (N, C, H, W) -> (N, C * kh * kw, L), as a grouped convolution with one-hot filters."""
    if input.ndim not in (3, 4):
        raise RuntimeError(f"Input Error: Only 3D or 4D input Tensors are supported (got {input.ndim}D)")
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    kh, kw = _pair(kernel_size)
    c = x.shape[1]
    eye = np.zeros((c * kh * kw, 1, kh, kw), x.dtype.np)
    for ci in range(c):
        for k in range(kh * kw):
            eye[ci * kh * kw + k, 0, k // kw, k % kw] = 1
    y = call("convolution", x, _const(eye, x), stride=_pair(stride), padding=_pair(padding),
             dilation=_pair(dilation), groups=c)
    y = y.reshape(y.shape[0], y.shape[1], -1)
    return y.squeeze(0) if unbatched else y


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im: (N, C * kh * kw, L) -> (N, C, H, W), summing overlapping values."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are supported (got "
                           f"{input.ndim}D)")
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    kh, kw = _pair(kernel_size)
    oh, ow = _pair(output_size)
    st, pd, dl = _pair(stride), _pair(padding), _pair(dilation)
    if x.shape[1] % (kh * kw):
        raise RuntimeError(f"Expected size of input's dimension 1 to be divisible by the product of kernel_size, but "
                           f"got input.size(1)={x.shape[1]} and kernel_size={(kh, kw)}")
    c = x.shape[1] // (kh * kw)
    lh = (oh + 2 * pd[0] - dl[0] * (kh - 1) - 1) // st[0] + 1
    lw = (ow + 2 * pd[1] - dl[1] * (kw - 1) - 1) // st[1] + 1
    if lh * lw != x.shape[2]:
        raise RuntimeError(f"Given output_size={(oh, ow)}, kernel_size={(kh, kw)}, dilation={dl}, padding={pd}, "
                           f"stride={st}, expected size of input's dimension 2 to match the calculated number of "
                           f"sliding blocks {lh} * {lw} = {lh * lw}, but got input.size(2)={x.shape[2]}.")
    eye = np.zeros((c * kh * kw, 1, kh, kw), x.dtype.np)
    for ci in range(c):
        for k in range(kh * kw):
            eye[ci * kh * kw + k, 0, k // kw, k % kw] = 1
    from ..ops.nn import conv_transpose_out_size
    opad = tuple(o - conv_transpose_out_size(l_, k, s, p, d, 0)
                 for o, l_, k, s, p, d in zip((oh, ow), (lh, lw), (kh, kw), st, pd, dl))
    y = call("conv_transpose", x.reshape(x.shape[0], c * kh * kw, lh, lw), _const(eye, x), stride=st, padding=pd,
             output_padding=opad, dilation=dl, groups=c)
    return y.squeeze(0) if unbatched else y


# ================================================================================================ pooling

def _pool_input(name, input, nd):
    _check_tensor(name, input)
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{name}: Expected {nd + 1}D or {nd + 2}D (batch mode) tensor for input, but got input of "
                           f"size: {list(input.shape)}")
    if any(s == 0 for s in input.shape[-nd:]) or (input.ndim == nd + 2 and input.shape[1] == 0):
        raise RuntimeError(f"{name}: Expected input's non-batch dimensions to have positive length, but input has a "
                           f"shape of {list(input.shape)}")
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    if nd == 1:
        x = x.unsqueeze(2)
    return x, unbatched


def _pool_output(y, nd, unbatched):
    if nd == 1:
        y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


def _max_pool(nd, name, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, unbatched = _pool_input(name, input, nd)
    nt = _ntuple(nd)
    k = nt(kernel_size)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else nt(stride)
    p, d = nt(padding), nt(dilation)
    if nd == 1:
        k, s, p, d = (1,) + k, (1,) + s, (0,) + p, (1,) + d
    y, idx = call("max_pool2d_with_indices", x, kernel_size=k, stride=s, padding=p, dilation=d,
                  ceil_mode=bool(ceil_mode))
    y = _pool_output(y, nd, unbatched)
    if return_indices:
        return y, _pool_output(idx, nd, unbatched)
    return y


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool(1, "max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-d max pooling of (N, C, H, W) or (C, H, W); ``return_indices`` also returns flat indices into H*W."""
    return _max_pool(2, "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def _avg_pool(nd, name, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x, unbatched = _pool_input(name, input, nd)
    nt = _ntuple(nd)
    k = nt(kernel_size)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else nt(stride)
    p = nt(padding)
    if nd == 1:
        k, s, p = (1,) + k, (1,) + s, (0,) + p
    y = call("avg_pool2d", x, kernel_size=k, stride=s, padding=p, ceil_mode=bool(ceil_mode),
             count_include_pad=bool(count_include_pad), divisor_override=divisor_override)
    return _pool_output(y, nd, unbatched)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return _avg_pool(1, "avg_pool1d", input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool(2, "avg_pool2d", input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _adaptive_size(name, output_size, in_sizes, nd):
    if isinstance(output_size, (list, tuple)):
        if len(output_size) != nd:
            raise ValueError(f"{name}: output_size must be {nd} values, got {list(output_size)}")
        out = tuple(n if o is None else int(o) for o, n in zip(output_size, in_sizes))
    else:
        out = (int(output_size),) * nd
    return out


def _adaptive(nd, name, input, output_size, kind, return_indices=False):
    x, unbatched = (None, None)
    _check_tensor(name, input)
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{name}(): Expected {nd + 1}D or {nd + 2}D tensor, but got input of size: "
                           f"{list(input.shape)}")
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    osz = _adaptive_size(name, output_size, x.shape[2:], nd)
    if nd == 1:
        x = x.unsqueeze(2)
        osz = (1,) + osz
    if kind == "avg":
        y = call("adaptive_avg_pool2d", x, output_size=osz)
        return _pool_output(y, nd, unbatched)
    y, idx = call("adaptive_max_pool2d", x, output_size=osz)
    y = _pool_output(y, nd, unbatched)
    if return_indices:
        return y, _pool_output(idx, nd, unbatched)
    return y


def adaptive_avg_pool1d(input, output_size):
    return _adaptive(1, "adaptive_avg_pool1d", input, output_size, "avg")


def adaptive_avg_pool2d(input, output_size):
    return _adaptive(2, "adaptive_avg_pool2d", input, output_size, "avg")


def adaptive_max_pool1d(input, output_size, return_indices=False):
    return _adaptive(1, "adaptive_max_pool1d", input, output_size, "max", return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _adaptive(2, "adaptive_max_pool2d", input, output_size, "max", return_indices)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    kh, kw = _pair(kernel_size)
    out = avg_pool2d(call("pow", input, float(norm_type)), (kh, kw), stride, 0, ceil_mode)
    return call("pow", call("mul", call("mul", call("sign", out), relu(call("abs", out))), kh * kw), 1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    out = avg_pool1d(call("pow", input, float(norm_type)), kernel_size, stride, 0, ceil_mode)
    return call("pow", call("mul", call("mul", call("sign", out), relu(call("abs", out))), kernel_size),
                1.0 / norm_type)


# ================================================================================================ padding

def _narrow(x, d, start, length):
    return call("slice", x, dim=d, start=start, stop=start + length, step=1)


def _index_along(x, d, idx):
    """x gathered at integer positions ``idx`` (a Python list) along dim d."""
    idx = list(idx)
    if not idx:
        shape = list(x.shape)
        shape[d] = 0
        return _t.zeros(tuple(shape), dtype=x.dtype)
    if hasattr(_t, "index_select"):
        return _t.index_select(x, d, _const(np.asarray(idx, np.int64), x))
    # contiguous runs become slices
    parts, start = [], 0
    while start < len(idx):
        end = start + 1
        while end < len(idx) and idx[end] == idx[end - 1] + 1:
            end += 1
        parts.append(_narrow(x, d, idx[start], end - start))
        start = end
    return parts[0] if len(parts) == 1 else _t.cat(parts, d)


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dims: ``pad = (left_last, right_last, left_prev, right_prev, ...)``.
    Modes: 'constant' (value, default 0; negative pads crop), 'reflect', 'replicate', 'circular'."""
    _check_tensor("pad", input)
    pad = [int(p) for p in pad]
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {input.ndim}")
    if mode != "constant" and value not in (None, 0, 0.0):
        raise RuntimeError(f"Padding mode \"{mode}\" doesn't take in value argument")
    x = input
    nd = input.ndim
    npad = len(pad) // 2
    if mode != "constant":
        expect = {"reflect": (npad + 1, npad + 2), "replicate": (npad + 1, npad + 2), "circular": (npad + 1, npad + 2)}
        if mode not in expect:
            raise NotImplementedError(f"Unrecognised padding mode {mode}")
        if nd not in expect[mode]:
            raise NotImplementedError(f"Only 2D, 3D, 4D, 5D padding with non-constant padding are supported for now "
                                      f"(got a {nd}-D input with {npad} padded dims for mode '{mode}')")
    for i in range(npad):
        d = nd - 1 - i
        left, right = pad[2 * i], pad[2 * i + 1]
        n = x.shape[d]
        if mode == "constant":
            if left < 0:
                x = _narrow(x, d, -left, x.shape[d] + left)
                left = 0
            if right < 0:
                x = _narrow(x, d, 0, x.shape[d] + right)
                right = 0
            if x.shape[d] < 0:
                raise RuntimeError("pad: negative padding removed more than the input size")
            parts = []
            fill = 0.0 if value is None else value
            for m in (left, 0, right):
                if m == 0:
                    continue
                shape = list(x.shape)
                shape[d] = m
                parts.append(_t.full(tuple(shape), fill, dtype=x.dtype))
            if left:
                x = _t.cat([parts[0], x] + ([parts[1]] if right else []), d)
            elif right:
                x = _t.cat([x, parts[0]], d)
            continue
        if mode == "reflect":
            if left >= n or right >= n:
                raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input dimension, "
                                   f"but got: padding ({left}, {right}) at dimension {d} of input {list(input.shape)}")
            idx = list(range(left, 0, -1)) + list(range(n)) + list(range(n - 2, n - 2 - right, -1))
        elif mode == "replicate":
            if n == 0:
                raise RuntimeError("pad: input dimension to replicate-pad is empty")
            idx = [0] * left + list(range(n)) + [n - 1] * right
        else:  # circular
            if left > n or right > n:
                raise RuntimeError("Padding value causes wrapping around more than once.")
            idx = list(range(n - left, n)) + list(range(n)) + list(range(0, right))
            if left < 0 or right < 0:
                idx = list(range(max(-left, 0), n - max(-right, 0)))
        x = _index_along(x, d, idx)
    return x


pad_ = pad


# ================================================================================================ normalization

def _check_running(name, t, c):
    if t is not None and t.numel() != c:
        raise RuntimeError(f"{name}: running_mean should contain {c} elements not {t.numel()}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalize over (N, *spatial) per channel (dim 1); in training, batch statistics (and the running
    statistics are updated in place: ``running = (1 - momentum) * running + momentum * batch``, the
    variance unbiased); in eval, the running statistics."""
    _check_tensor("batch_norm", input)
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected at least 2D input (got {input.ndim}D input)")
    c = input.shape[1]
    _check_running("batch_norm", running_mean, c)
    if running_var is not None and running_var.numel() != c:
        raise RuntimeError(f"batch_norm: running_var should contain {c} elements not {running_var.numel()}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != c:
            raise RuntimeError(f"batch_norm: {name} should contain {c} elements not {t.numel()}")
    dims = (0,) + tuple(range(2, input.ndim))
    shape = (1, c) + (1,) * (input.ndim - 2)
    if training:
        n = input.numel() // c if c else 0
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{input.shape}")
        var, mean = _t.var_mean(input, dims, correction=0)
        if running_mean is not None or running_var is not None:
            with _t.no_grad():
                if running_mean is not None:
                    running_mean.mul_(1 - momentum).add_(mean.detach().to(running_mean.dtype), alpha=momentum)
                if running_var is not None:
                    running_var.mul_(1 - momentum).add_(var.detach().to(running_var.dtype),
                                                        alpha=momentum * n / (n - 1))
    else:
        if running_mean is None or running_var is None:
            var, mean = _t.var_mean(input, dims, correction=0)
        else:
            mean, var = running_mean, running_var
    inv = call("rsqrt", call("add", var, eps, alpha=1))
    scale = call("mul", inv, weight) if weight is not None else inv
    shift = call("mul", mean, scale)
    shift = call("sub", bias, shift, alpha=1) if bias is not None else call("neg", shift)
    return call("add", call("mul", input, scale.reshape(shape)), shift.reshape(shape), alpha=1)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalize each (sample, channel) over its spatial dims."""
    _check_tensor("instance_norm", input)
    if input.ndim < 3:
        raise ValueError(f"instance_norm: expected at least 3D input (N, C, *), got {input.ndim}D input")
    n, c = input.shape[:2]
    dims = tuple(range(2, input.ndim))
    shape = (1, c) + (1,) * (input.ndim - 2)
    if use_input_stats:
        cnt = math.prod(input.shape[2:])
        if cnt <= 1:
            raise ValueError(f"Expected more than 1 spatial element when training, got input size {input.shape}")
        var, mean = _t.var_mean(input, dims, correction=0, keepdim=True)
        if running_mean is not None or running_var is not None:
            with _t.no_grad():
                if running_mean is not None:
                    running_mean.mul_(1 - momentum).add_(mean.detach().reshape(n, c).mean(0), alpha=momentum)
                if running_var is not None:
                    running_var.mul_(1 - momentum).add_(var.detach().reshape(n, c).mean(0),
                                                        alpha=momentum * cnt / (cnt - 1))
        y = call("mul", call("sub", input, mean, alpha=1), call("rsqrt", call("add", var, eps, alpha=1)))
    else:
        y = call("mul", call("sub", input, running_mean.reshape(shape), alpha=1),
                 call("rsqrt", call("add", running_var.reshape(shape), eps, alpha=1)))
    if weight is not None:
        y = call("mul", y, weight.reshape(shape))
    if bias is not None:
        y = call("add", y, bias.reshape(shape), alpha=1)
    return y


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the last ``len(normalized_shape)`` dims, then scale and shift elementwise."""
    _check_tensor("layer_norm", input)
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(int(s) for s in normalized_shape)
    k = len(normalized_shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != normalized_shape:
        raise RuntimeError(f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, normalized_shape))}], but got input of size{list(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != normalized_shape:
            raise RuntimeError(f"layer_norm: Expected {name} to be of same shape as normalized_shape, but got {name} "
                               f"of shape {list(t.shape)} and normalized_shape = {list(normalized_shape)}")
    dims = tuple(range(input.ndim - k, input.ndim))
    var, mean = _t.var_mean(input, dims, correction=0, keepdim=True)
    y = call("mul", call("sub", input, mean, alpha=1), call("rsqrt", call("add", var, eps, alpha=1)))
    if weight is not None:
        y = call("mul", y, weight)
    if bias is not None:
        y = call("add", y, bias, alpha=1)
    return y


def rms_norm(input, normalized_shape, weight=None, eps=None):
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if input.ndim < k or tuple(input.shape[input.ndim - k:]) != normalized_shape:
        raise RuntimeError(f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, normalized_shape))}], but got input of size{list(input.shape)}")
    if eps is None:
        eps = D.finfo(input.dtype).eps
    dims = tuple(range(input.ndim - k, input.ndim))
    ms = call("mul", input, input).mean(dims, keepdim=True)
    y = call("mul", input, call("rsqrt", call("add", ms, eps, alpha=1)))
    if weight is not None:
        y = call("mul", y, weight)
    return y


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalize each sample's channels in ``num_groups`` groups (over the group's channels and spatial dims)."""
    _check_tensor("group_norm", input)
    if input.ndim < 2:
        raise RuntimeError(f"group_norm: Expected at least 2 dimensions for input tensor but received {input.ndim}")
    n, c = input.shape[:2]
    if c % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input of "
                           f"shape {list(input.shape)} and num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.ndim != 1 or t.numel() != c):
            raise RuntimeError(f"Expected {name} to be a vector of size equal to the number of channels in input, but "
                               f"got {name} of shape {list(t.shape)} and input of shape {list(input.shape)}")
    x = input.reshape(n, num_groups, -1)
    var, mean = _t.var_mean(x, 2, correction=0, keepdim=True)
    y = call("mul", call("sub", x, mean, alpha=1), call("rsqrt", call("add", var, eps, alpha=1))).reshape(input.shape)
    shape = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        y = call("mul", y, weight.reshape(shape))
    if bias is not None:
        y = call("add", y, bias.reshape(shape), alpha=1)
    return y


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} dimensions)")
    if input.numel() == 0:
        return input
    div = call("mul", input, input).unsqueeze(1)
    if input.ndim == 3:
        div = pad(div, (0, 0, size // 2, (size - 1) // 2))
        div = avg_pool2d(div, (size, 1), stride=1).squeeze(1)
    else:
        sizes = input.shape
        div = div.reshape(sizes[0], 1, sizes[1], sizes[2], -1)
        div = pad(div, (0, 0, 0, 0, size // 2, (size - 1) // 2))
        n, one, c2, h, w = div.shape
        div = avg_pool2d(div.reshape(n, c2, h * w).unsqueeze(1), (size, 1), stride=1).squeeze(1)
        div = div.reshape(sizes)
    div = call("pow", call("add", call("mul", div, alpha), k, alpha=1), beta)
    return call("div", input, div)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """x / max(||x||_p over dim, eps)."""
    n = _t.norm(input, p, dim, keepdim=True) if p != 2 else call("sqrt", call("mul", input, input).sum(dim,
                                                                                                        keepdim=True))
    r = call("div", input, call("clamp_min", n, min=eps))
    if out is not None:
        out.copy_(r)
        return out
    return r


# ================================================================================================ dropout

def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _on_device_of(like):
    """The ``device`` attribute of a mask draw: masks for a cuda tensor are drawn on its device (from the cuda
    generator, as torch), never on the host (jitorch/_random.py)."""
    return {} if like.device.type == "cpu" else {"device": str(like.device)}


def _keep_mask(shape, p, like):
    """float mask of ``shape``: 1 with probability 1 - p, else 0 (jitorch's random stream)."""
    return call("bernoulli_p", size=tuple(shape), p=1.0 - p, dtype=like.dtype, **_on_device_of(like))


def _dropout_mask(shape, p, like):
    """0 with probability p, else 1 / (1 - p) (the ``dropout_mask`` kernel)."""
    return call("dropout_mask", size=tuple(shape), p=p, dtype=like.dtype, **_on_device_of(like))


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero elements with probability p and scale the rest by 1 / (1 - p) (identity when not training)."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        r = call("mul", input, 0.0)
    else:
        r = call("mul", input, _dropout_mask(input.shape, p, input))
    if inplace:
        return input.copy_(r)
    return r


def _feature_dropout(name, input, p, training, inplace, batched_ndim):
    _check_p(p)
    if not training or p == 0.0:
        return input
    if input.ndim not in (batched_ndim - 1, batched_ndim):
        warnings.warn(f"{name}: Received a {input.ndim}-D input to {name}, which is deprecated and will result in an "
                      f"error in a future release. To retain the behavior and silence this warning, please use "
                      f"dropout instead.", stacklevel=3)
    if input.ndim == batched_ndim - 1 and name == "dropout2d":
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior "
                      "is desired - input is interpreted as shape (N, C, L), where C is the channel dim. This "
                      "behavior will change in a future release to interpret the input as one without a batch "
                      "dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, please "
                      "switch to using dropout1d instead.", stacklevel=3)
    if input.ndim < 2:
        raise RuntimeError(f"{name}: expected input with at least 2 dims, got {list(input.shape)}")
    unbatched = input.ndim == batched_ndim - 1 and name != "dropout2d"
    lead = 1 if unbatched else 2
    shape = tuple(input.shape[:lead]) + (1,) * (input.ndim - lead)
    if p == 1.0:
        r = call("mul", input, 0.0)
    else:
        r = call("mul", input, _dropout_mask(shape, p, input))
    if inplace:
        return input.copy_(r)
    return r


def dropout1d(input, p=0.5, training=True, inplace=False):
    if input.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note that "
                           "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial dimension, a "
                           "channel dimension, and an optional batch dimension (i.e. 2D or 3D inputs).")
    return _feature_dropout("dropout1d", input, p, training, inplace, 3)


def dropout2d(input, p=0.5, training=True, inplace=False):
    return _feature_dropout("dropout2d", input, p, training, inplace, 4)


def dropout3d(input, p=0.5, training=True, inplace=False):
    return _feature_dropout("dropout3d", input, p, training, inplace, 5)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return call("mul", input, 0.0)
    alpha = -_SELU_ALPHA * _SELU_SCALE
    keep = _keep_mask(input.shape, p, input)
    a = ((1 - p) * (1 + p * alpha * alpha)) ** -0.5
    b = -a * alpha * p
    r = call("add", call("mul", call("add", call("mul", input, keep),
                                     call("mul", call("sub", 1.0, keep, alpha=1), alpha), alpha=1), a), b, alpha=1)
    if inplace:
        return input.copy_(r)
    return r


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    _check_p(p)
    if not training or p == 0.0:
        return input
    alpha = -_SELU_ALPHA * _SELU_SCALE
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    keep = _keep_mask(shape, p, input)
    a = ((1 - p) * (1 + p * alpha * alpha)) ** -0.5
    b = -a * alpha * p
    r = call("add", call("mul", call("add", call("mul", input, keep),
                                     call("mul", call("sub", 1.0, keep, alpha=1), alpha), alpha=1), a), b, alpha=1)
    if inplace:
        return input.copy_(r)
    return r


# ================================================================================================ sparse

def one_hot(tensor, num_classes=-1):
    """int64 (*, num_classes) with a 1 at each index (num_classes=-1: max + 1)."""
    _check_tensor("one_hot", tensor)
    if tensor.dtype is not D.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    a = tensor._data
    if num_classes == -1:
        if a.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(_min_max(tensor)[1]) + 1
    if a.size:
        lo, hi = _min_max(tensor)
        if lo < 0:
            raise RuntimeError("Class values must be non-negative.")
        if hi >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    classes = _t.arange(num_classes, dtype=D.int64, device=tensor.device)
    return call("to_dtype", call("eq", tensor.unsqueeze(-1), classes), dtype=D.int64)


def _min_max(t):
    """(min, max) of an integer tensor as Python numbers; on cuda two device reductions, two scalars read back."""
    if t._device.type == "cpu":
        a = t._data
        return a.min(), a.max()
    return t.min().item(), t.max().item()


def _check_indices(name, idx, n):
    if not isinstance(idx, Tensor):
        raise TypeError(f"{name}(): argument 'indices' must be Tensor, not {type(idx).__name__}")
    if idx.dtype not in (D.int64, D.int32):
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {idx.dtype} instead (while checking arguments for {name})")
    if idx._data.size:
        lo, hi = _min_max(idx)
    if idx._data.size and (lo < 0 or hi >= n):
        bad = int(hi) if hi >= n else int(lo)
        raise IndexError(f"{name}: index {bad} is out of range for a table of {n} rows (valid: 0 to {n - 1})")


def _embedding_renorm(weight, idx, max_norm, norm_type):
    rows = np.unique(idx._data.reshape(-1))
    if rows.size == 0:
        return
    with _t.no_grad():
        w = weight._data
        sel = w[rows].astype(np.float64)
        norms = np.linalg.norm(sel, ord=norm_type, axis=1)
        scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        w[rows] = (sel * scale[:, None]).astype(w.dtype)
        weight._bump()


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` at the indices ``input``: (*) -> (*, embedding_dim). The row ``padding_idx`` gets no
    gradient; ``max_norm`` renormalizes the looked-up rows in place first."""
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: 'weight' must be 2-D, got {list(weight.shape)}")
    n = weight.shape[0]
    _check_indices("embedding", input, n)
    if padding_idx is not None:
        if padding_idx > 0:
            if padding_idx >= n:
                raise AssertionError("Padding_idx must be within num_embeddings")
        elif padding_idx < 0:
            if padding_idx < -n:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = n + padding_idx
    if max_norm is not None:
        _embedding_renorm(weight, input, max_norm, norm_type)
    idx = input.reshape(-1)
    if idx.dtype is not D.int64:
        idx = idx.long()
    out = _t.index_select(weight, 0, idx)
    if scale_grad_by_freq and weight.requires_grad:
        a = idx._data
        _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
        scale = _const((1.0 / counts[inv]).astype(weight.dtype.np).reshape(-1, 1), weight)
        od = out.detach()
        out = call("add", od, call("mul", call("sub", out, od, alpha=1), scale), alpha=1)
    if padding_idx is not None and weight.requires_grad:
        mask = call("eq", idx, padding_idx).unsqueeze(1)
        out = call("where", mask, out.detach(), out)
    return out.reshape(tuple(input.shape) + (weight.shape[1],))


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Sum, mean or max of embedding rows per bag: 2-D input (B, L) has one bag per row; 1-D input with
    ``offsets`` has bags starting at each offset. Empty bags give zeros."""
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                  f"supported for mode='sum' (got mode='{mode}'). Please open a feature request on "
                                  "GitHub.")
    n = weight.shape[0]
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             "fixed length sequences. However, found offsets of type Tensor")
        b, length = input.shape
        starts = np.arange(b) * length
        flat = input.reshape(-1)
        psw = per_sample_weights.reshape(-1) if per_sample_weights is not None else None
        total = b * length
    elif input.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if offsets.ndim != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        starts = offsets._data.astype(np.int64)
        total = input.shape[0]
        if include_last_offset:
            starts = starts[:-1]
        b = starts.shape[0]
        if b and (starts[0] != 0):
            raise RuntimeError(f"embedding_bag: offsets[0] has to be 0, i.e., the first sequence in the mini-batch "
                               f"has to start from position 0. However, got {int(starts[0])}")
        if b and (starts[-1] > total):
            raise RuntimeError(f"embedding_bag: offsets[-1] can not be greater than input's length {total}, but got "
                               f"offsets[-1] of {int(starts[-1])}")
        flat = input
        psw = per_sample_weights
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.ndim}")
    _check_indices("embedding_bag", flat, n)
    if max_norm is not None:
        _embedding_renorm(weight, flat, max_norm, norm_type)
    ends = np.append(starts[1:], total) if b else starts
    bag_of = np.zeros(total, np.int64)
    for i in range(b):
        bag_of[starts[i]:ends[i]] = i
    valid = np.ones(total, bool)
    if padding_idx is not None:
        valid = flat._data.reshape(-1) != padding_idx
    emb = _t.index_select(weight, 0, flat.long() if flat.dtype is not D.int64 else flat)
    if psw is not None:
        emb = call("mul", emb, psw.reshape(-1, 1))
    counts = np.zeros(b, np.int64)
    for i in range(b):
        counts[i] = valid[starts[i]:ends[i]].sum()
    if mode in ("sum", "mean"):
        m = np.zeros((b, total), weight.dtype.np)
        m[bag_of[valid], np.nonzero(valid)[0]] = 1
        if mode == "mean":
            m = m / np.maximum(counts, 1)[:, None]
        return call("matmul", _const(m, weight), emb)
    outs = []
    zero_row = _t.zeros((weight.shape[1],), dtype=weight.dtype)
    for i in range(b):
        rows = [j for j in range(starts[i], ends[i]) if valid[j]]
        if not rows:
            outs.append(zero_row)
            continue
        outs.append(_index_along(emb, 0, rows).amax(0))
    return _t.stack(outs, 0) if outs else _t.zeros((0, weight.shape[1]), dtype=weight.dtype)


# ================================================================================================ distances

def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p over the last dim."""
    d = call("add", call("sub", x1, x2, alpha=1), eps, alpha=1)
    if p == 2:
        return call("sqrt", call("mul", d, d).sum(-1, keepdim=keepdim))
    return _t.norm(d, p, -1, keepdim=keepdim)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1/|x1| * x2/|x2|) over dim, each norm clamped below at eps (torch's formula)."""
    n1 = call("sqrt", call("mul", x1, x1).sum(dim, keepdim=True))
    n2 = call("sqrt", call("mul", x2, x2).sum(dim, keepdim=True))
    n1 = call("add", n1, call("sub", call("clamp_min", n1, min=eps), n1, alpha=1).detach(), alpha=1)
    n2 = call("add", n2, call("sub", call("clamp_min", n2, min=eps), n2, alpha=1).detach(), alpha=1)
    return call("mul", call("div", x1, n1), call("div", x2, n2)).sum(dim)


def pdist(input, p=2):
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    n = input.shape[0]
    i, j = np.triu_indices(n, 1)
    a = _index_along(input, 0, i.tolist())
    b = _index_along(input, 0, j.tolist())
    d = call("sub", a, b, alpha=1)
    if p == 2:
        return call("sqrt", call("mul", d, d).sum(-1))
    return _t.norm(d, p, -1)


# ================================================================================================ vision

def pixel_shuffle(input, upscale_factor):
    r = int(upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    c, h, w = input.shape[-3:]
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
                           f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    lead = tuple(input.shape[:-3])
    oc = c // (r * r)
    x = input.reshape(lead + (oc, r, r, h, w))
    nl = len(lead)
    perm = tuple(range(nl)) + (nl, nl + 3, nl + 1, nl + 4, nl + 2)
    return x.permute(perm).reshape(lead + (oc, h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    r = int(downscale_factor)
    c, h, w = input.shape[-3:]
    if h % r or w % r:
        raise RuntimeError(f"pixel_unshuffle expects height and width to be divisible by downscale_factor, got "
                           f"{h}x{w} and {r}")
    lead = tuple(input.shape[:-3])
    x = input.reshape(lead + (c, h // r, r, w // r, r))
    nl = len(lead)
    perm = tuple(range(nl)) + (nl, nl + 2, nl + 4, nl + 1, nl + 3)
    return x.permute(perm).reshape(lead + (c * r * r, h // r, w // r))


def _interp_scale(in_size, out_size, scale_factor, align_corners):
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    if scale_factor is not None:
        return 1.0 / scale_factor
    return in_size / out_size


def _interp_linear_dim(x, d, out_size, scale_factor, align_corners):
    n = x.shape[d]
    scale = _interp_scale(n, out_size, scale_factor, align_corners)
    dst = np.arange(out_size, dtype=np.float64)
    if align_corners:
        src = dst * scale
    else:
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    lam = (src - i0).astype(x.dtype.np)
    shape = [1] * x.ndim
    shape[d] = out_size
    w1 = _const(lam.reshape(shape), x)
    w0 = _const((1 - lam).reshape(shape), x)
    a = _index_along(x, d, i0.tolist())
    b = _index_along(x, d, i1.tolist())
    return call("add", call("mul", a, w0), call("mul", b, w1), alpha=1)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
                antialias=False):
    """Resize the spatial dims (all dims after the first two): modes 'nearest', 'nearest-exact', 'linear' (3-D),
    'bilinear' (4-D), 'trilinear' (5-D)."""
    _check_tensor("interpolate", input)
    nd = input.ndim - 2
    if nd < 1:
        raise ValueError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for the modes: "
                         "nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact")
    if mode in ("nearest", "area", "nearest-exact") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: linear | bilinear | "
                         "bicubic | trilinear")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported by jitorch")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined" if size is not None else
                         "either size or scale_factor should be defined")
    if size is not None:
        out = tuple(int(s) for s in size) if isinstance(size, (list, tuple)) else (int(size),) * nd
        if len(out) != nd:
            raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input with "
                             f"spatial dimensions of {list(input.shape[2:])} and output size of {list(out)}. Please "
                             "provide input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                             "(o1, o2, ...,oK) "
                             "format.")
        scales = (None,) * nd
    else:
        sf = tuple(float(s) for s in scale_factor) if isinstance(scale_factor, (list, tuple)) else \
            (float(scale_factor),) * nd
        if len(sf) != nd:
            raise ValueError(f"Input and scale_factor must have the same number of spatial dimensions, but got input "
                             f"with spatial dimensions of {list(input.shape[2:])} and scale_factor of shape "
                             f"{list(sf)}.")
        out = tuple(int(math.floor(n * s)) for n, s in zip(input.shape[2:], sf))
        scales = (None,) * nd if recompute_scale_factor else sf
    x = input
    if mode in ("nearest", "nearest-exact"):
        for i in range(nd):
            d = 2 + i
            n = x.shape[d]
            scale = (1.0 / scales[i]) if scales[i] is not None else n / out[i]
            dst = np.arange(out[i], dtype=np.float64)
            if mode == "nearest":
                src = np.minimum(np.floor(dst * scale).astype(np.int64), n - 1)
            else:
                src = np.minimum(np.floor((dst + 0.5) * scale).astype(np.int64), n - 1)
            if out[i] != n or scales[i] not in (None, 1.0):
                x = _index_along(x, d, src.tolist())
        return x
    want = {"linear": 1, "bilinear": 2, "trilinear": 3}
    if mode in want:
        if want[mode] != nd:
            raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {want[mode] + 2}D input")
        ac = bool(align_corners)
        for i in range(nd):
            x = _interp_linear_dim(x, 2 + i, out[i], scales[i], ac)
        return x
    if mode == "area":
        return adaptive_avg_pool2d(input, out) if nd == 2 else adaptive_avg_pool1d(input, out)
    raise NotImplementedError(f"interpolate: mode '{mode}' is not supported by jitorch (nearest, nearest-exact, "
                              "linear, bilinear, trilinear, area are)")


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ================================================================================================ attention

def _causal_mask(L, S, like):
    return _const(np.tril(np.ones((L, S), bool)), like)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(q k^T * scale + mask) v over the last two dims (torch's reference formula)."""
    if not _sdpa_math_allowed():
        raise RuntimeError("No available kernel. Aborting execution. (jitorch implements SDPBackend.MATH only; "
                           "include it in nn.attention.sdpa_kernel's backends)")
    L, S = query.shape[-2], key.shape[-2]
    E = query.shape[-1]
    if key.shape[-1] != E:
        raise RuntimeError(f"scaled_dot_product_attention: query and key must have the same last dim, got "
                           f"{list(query.shape)} and {list(key.shape)}")
    if value.shape[-2] != S:
        raise RuntimeError(f"scaled_dot_product_attention: key and value must have the same sequence length, got "
                           f"{list(key.shape)} and {list(value.shape)}")
    scale_factor = 1.0 / math.sqrt(E) if scale is None else scale
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        rep = query.shape[-3] // key.shape[-3]
        key = key.repeat_interleave(rep, dim=-3)
        value = value.repeat_interleave(rep, dim=-3)
    attn = call("mul", call("matmul", query, key.transpose(-2, -1)), scale_factor)
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when "
                               "is_causal=True")
        attn = call("where", _causal_mask(L, S, query), attn, -math.inf)
    if attn_mask is not None:
        if attn_mask.dtype is D.bool_:
            attn = call("where", attn_mask, attn, -math.inf)
        else:
            attn = call("add", attn, attn_mask, alpha=1)
    attn = _t.softmax(attn, -1)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, True)
    return call("matmul", attn, value)


def _in_projection_packed(q, k, v, w, b=None):
    E = q.shape[-1]
    if k is v:
        if q is k:
            proj = linear(q, w, b)
            return proj.chunk(3, -1) if proj.shape[-1] == 3 * E else proj.split(E, -1)
        w_q, w_kv = w.split([E, E * 2])
        b_q, b_kv = (None, None) if b is None else b.split([E, E * 2])
        q_ = linear(q, w_q, b_q)
        kv = linear(k, w_kv, b_kv)
        k_, v_ = kv.split(E, -1)
        return q_, k_, v_
    w_q, w_k, w_v = w.chunk(3)
    b_q, b_k, b_v = (None, None, None) if b is None else b.chunk(3)
    return linear(q, w_q, b_q), linear(k, w_k, b_k), linear(v, w_v, b_v)


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    """Multi-head attention on sequence-first inputs (L, N, E) (or unbatched (L, E)), torch's algorithm."""
    is_batched = query.ndim == 3
    if query.ndim not in (2, 3):
        raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D query "
                             "tensor")
    if not is_batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if key.shape[:2] != value.shape[:2]:
        raise AssertionError(f"key shape {list(key.shape)} does not match value shape {list(value.shape)}")
    if is_causal and attn_mask is None:
        attn_mask = _const(np.triu(np.full((tgt_len, src_len), -np.inf, query.dtype.np), 1), query)
    if not use_separate_proj_weight:
        q, k, v = _in_projection_packed(query, key, value, in_proj_weight, in_proj_bias)
    else:
        b_q, b_k, b_v = (None, None, None) if in_proj_bias is None else in_proj_bias.chunk(3)
        q = linear(query, q_proj_weight, b_q)
        k = linear(key, k_proj_weight, b_k)
        v = linear(value, v_proj_weight, b_v)
    if attn_mask is not None:
        if attn_mask.dtype is D.uint8:
            attn_mask = attn_mask.bool()
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(f"The shape of the 2D attn_mask is {attn_mask.shape}, but should be "
                                   f"{(tgt_len, src_len)}.")
            attn_mask = attn_mask.unsqueeze(0)
        elif attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
                raise RuntimeError(f"The shape of the 3D attn_mask is {attn_mask.shape}, but should be "
                                   f"{(bsz * num_heads, tgt_len, src_len)}.")
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
    if bias_k is not None and bias_v is not None:
        k = _t.cat([k, bias_k.expand(1, bsz, embed_dim)])
        v = _t.cat([v, bias_v.expand(1, bsz, embed_dim)])
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    if static_k is None:
        k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    else:
        k = static_k
    if static_v is None:
        v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    else:
        v = static_v
    if add_zero_attn:
        zshape = (bsz * num_heads, 1, head_dim)
        k = _t.cat([k, _t.zeros(zshape, dtype=k.dtype)], 1)
        v = _t.cat([v, _t.zeros(zshape, dtype=v.dtype)], 1)
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise AssertionError(f"expecting key_padding_mask shape of {(bsz, src_len)}, but got "
                                 f"{key_padding_mask.shape}")
        kpm = key_padding_mask
        if kpm.dtype is D.bool_:
            kpm = call("where", kpm, -math.inf, 0.0).to(q.dtype)
        kpm = kpm.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len).reshape(bsz * num_heads, 1, src_len)
        if attn_mask is None:
            attn_mask = kpm
        else:
            if attn_mask.dtype is D.bool_:
                attn_mask = call("where", attn_mask, -math.inf, 0.0).to(q.dtype)
            attn_mask = call("add", attn_mask, kpm, alpha=1)
    if attn_mask is not None and attn_mask.dtype is D.bool_:
        attn_mask = call("where", attn_mask, -math.inf, 0.0).to(q.dtype)
    if not training:
        dropout_p = 0.0
    scores = call("mul", call("matmul", q, k.transpose(-2, -1)), 1.0 / math.sqrt(head_dim))
    if attn_mask is not None:
        scores = call("add", scores, attn_mask, alpha=1)
    attn = _t.softmax(scores, -1)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, True)
    out = call("matmul", attn, v)  # (B*H, L, hd)
    out = out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
    weights = None
    if need_weights:
        weights = attn.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(1)
    if not is_batched:
        out = out.squeeze(1)
        if weights is not None:
            weights = weights.squeeze(0)
    return out, weights


# ================================================================================================ losses

def _check_same_size(name, input, target):
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. Please ensure they have the "
                      "same size.", stacklevel=3)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """(input - target)^2, reduced."""
    _check_same_size("mse_loss", input, target)
    reduction = _reduction(size_average, reduce, reduction)
    d = call("sub", input, target, alpha=1)
    loss = call("mul", d, d)
    if weight is not None:
        loss = call("mul", loss, weight)
    return _apply_reduction(loss, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    _check_same_size("l1_loss", input, target)
    reduction = _reduction(size_average, reduce, reduction)
    loss = call("abs", call("sub", input, target, alpha=1))
    if weight is not None:
        loss = call("mul", loss, weight)
    return _apply_reduction(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    _check_same_size("smooth_l1_loss", input, target)
    reduction = _reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    d = call("abs", call("sub", input, target, alpha=1))
    if beta == 0.0:
        return _apply_reduction(d, reduction)
    loss = call("where", call("lt", d, beta), call("mul", call("mul", d, d), 0.5 / beta), call("sub", d, 0.5 * beta,
                                                                                                  alpha=1))
    return _apply_reduction(loss, reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    _check_same_size("huber_loss", input, target)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    d = call("abs", call("sub", input, target, alpha=1))
    loss = call("where", call("lt", d, delta), call("mul", call("mul", d, d), 0.5),
                call("mul", call("sub", d, 0.5 * delta, alpha=1), delta))
    if weight is not None:
        loss = call("mul", loss, weight)
    return _apply_reduction(loss, reduction)


def _class_dim_checks(name, input, target):
    """Shapes of (input, class-index target): returns nothing; raises torch's errors."""
    if input.ndim < 1:
        raise ValueError(f"{name}: Expected input to have at least 1 dimension (got a 0-dim tensor)")
    if input.ndim == 1:
        if target.ndim != 0:
            raise ValueError(f"Expected input batch_size (1) to match target batch_size "
                             f"({target.shape[0] if target.ndim else 1}).")
        return
    if target.ndim == 0 or input.shape[0] != target.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0] if target.ndim else 0}).")
    if input.ndim > 2 and tuple(target.shape[1:]) != tuple(input.shape[2:]):
        raise RuntimeError(f"{name}: expected target size {[input.shape[0]] + list(input.shape[2:])}, got "
                           f"{list(target.shape)}")
    if input.ndim == 2 and target.ndim != 1:
        raise RuntimeError(f"{name}: 0D or 1D target tensor expected, multi-target not supported (got target of size "
                           f"{list(target.shape)})")


def _check_targets(name, target, c, ignore_index):
    """Validate class indices (a kernel never sees an out-of-range index); returns True when some target
    equals ignore_index."""
    if target.dtype.category != 1:
        raise RuntimeError(f"{name}: expected target of integer (Long) dtype for class indices, got {target.dtype}; "
                           "for class probabilities pass a float target of the input's shape")
    if target.device.type != "cpu":  # the same checks with device reductions (three scalars read back)
        if not target.numel():
            return False
        keep = call("ne", target, ignore_index)
        any_ignored = not bool(keep.all().item())
        if any_ignored and not bool(keep.any().item()):
            return True
        hi, lo = int(call("where", keep, target, 0).amax().item()), int(call("where", keep, target, 0).amin().item())
        if lo < 0 or hi >= c:
            raise IndexError(f"Target {hi if hi >= c else lo} is out of bounds.")
        return any_ignored
    a = target._data
    if not a.size:
        return False
    keep = a != ignore_index
    any_ignored = not keep.all()
    valid = a[keep] if any_ignored else a
    if valid.size and (valid.min() < 0 or valid.max() >= c):
        bad = int(valid.max()) if valid.max() >= c else int(valid.min())
        raise IndexError(f"Target {bad} is out of bounds.")
    return any_ignored


def _tracing():
    from .. import _dispatch
    return _dispatch.hooks.tracer is not None


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """-input[n, target[n]] * weight[target[n]], reduced ('mean' divides by the summed weights of the
    non-ignored targets). input (N, C) or (C,) or (N, C, d1, ...) holds log-probabilities."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_tensor("nll_loss", input)
    _class_dim_checks("nll_loss", input, target)
    cdim = 0 if input.ndim == 1 else 1
    c = input.shape[cdim]
    if weight is not None and (weight.ndim != 1 or weight.numel() != c):
        raise RuntimeError(f"weight tensor should be defined either for all {c} classes or no classes but got weight "
                           f"tensor of shape: {list(weight.shape)}")
    any_ignored = _check_targets("nll_loss", target, c, ignore_index)
    t = target.long() if target.dtype is not D.int64 else target
    if weight is None and not any_ignored and not _tracing():
        # common case, fewer ops: no weights and no ignored target (a traced graph keeps the general form)
        picked = _t.gather(input, cdim, t.unsqueeze(cdim))
        if reduction == "mean":
            n = picked.numel()
            return call("mul", picked.sum(), -1.0 / n) if n else call("mul", picked.sum(), math.nan)
        if reduction == "sum":
            return call("neg", picked.sum())
        if reduction == "none":
            return call("neg", picked.squeeze(cdim))
        raise ValueError(f"{reduction} is not a valid value for reduction")
    ignored = call("eq", t, ignore_index)
    safe = call("where", ignored, 0, t)
    picked = _t.gather(input, cdim, safe.unsqueeze(cdim)).squeeze(cdim)
    w = call("where", ignored, 0.0, _t.index_select(weight, 0, safe.reshape(-1)).reshape(safe.shape)) \
        if weight is not None else call("where", ignored, 0.0, 1.0).to(input.dtype)
    loss = call("neg", call("mul", picked, w))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return call("div", loss.sum(), w.sum())
    raise ValueError(f"{reduction} is not a valid value for reduction")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """log_softmax over the class dim, then nll_loss (class-index targets) or -sum(target * logp)
    (class-probability targets, same shape as input); ``label_smoothing`` mixes in the uniform distribution."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_tensor("cross_entropy", input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.ndim == 0:
        raise RuntimeError("cross_entropy: input must have at least 1 dimension (the classes), got a 0-dim tensor")
    cdim = 0 if input.ndim == 1 else 1
    c = input.shape[cdim]
    logp = _t.log_softmax(input, cdim)
    wshape = [1] * input.ndim
    wshape[cdim] = c
    if target.dtype.is_floating_point:
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(f"cross_entropy: for class probabilities the target must have the input's shape "
                               f"{list(input.shape)}, got {list(target.shape)}")
        if weight is not None and (weight.ndim != 1 or weight.numel() != c):
            raise RuntimeError(f"weight tensor should be defined either for all {c} classes or no classes but got "
                               f"weight tensor of shape: {list(weight.shape)}")
        tgt = target
        if label_smoothing > 0:
            tgt = call("add", call("mul", target, 1.0 - label_smoothing), label_smoothing / c, alpha=1)
        prod = call("mul", logp, tgt)
        if weight is not None:
            prod = call("mul", prod, weight.reshape(wshape))
        loss = call("neg", prod.sum(cdim))
        if reduction == "mean":
            n = input.numel() // c if c else 0
            return call("div", loss.sum(), n) if n else loss.sum() * math.nan
        return _apply_reduction(loss, reduction)
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing <= 0.0:
        return nll
    t = target.long() if target.dtype is not D.int64 else target
    ignored = call("eq", t, ignore_index)
    lp = call("mul", logp, weight.reshape(wshape)) if weight is not None else logp
    smooth = call("where", ignored, 0.0, call("neg", lp.sum(cdim)))
    if reduction == "none":
        s = smooth
    elif reduction == "sum":
        s = smooth.sum()
    else:
        if weight is not None:
            safe = call("where", ignored, 0, t)
            wt = call("where", ignored, 0.0, _t.index_select(weight, 0, safe.reshape(-1)).reshape(safe.shape))
            s = call("div", smooth.sum(), wt.sum())
        else:
            s = call("div", smooth.sum(), call("logical_not", ignored).sum())
    return call("add", call("mul", nll, 1.0 - label_smoothing), call("mul", s, label_smoothing / c), alpha=1)


def _check_bce_sizes(name, input, target):
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}) "
                         "is deprecated. Please ensure they have the same size.")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(t log x + (1 - t) log(1 - x)) with each log clamped at -100 (torch)."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_bce_sizes("binary_cross_entropy", input, target)
    a = input._data
    if a.size and (np.nanmin(a) < 0 or np.nanmax(a) > 1):
        raise RuntimeError("all elements of input should be between 0 and 1")
    logx = call("clamp_min", call("log", input), min=-100.0)
    log1mx = call("clamp_min", call("log1p", call("neg", input)), min=-100.0)
    loss = call("neg", call("add", call("mul", target, logx),
                            call("mul", call("sub", 1.0, target, alpha=1), log1mx), alpha=1))
    if weight is not None:
        loss = call("mul", loss, weight)
    return _apply_reduction(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """(1 - t) x + (1 + (pos_weight - 1) t) log(1 + exp(-x)): sigmoid + binary cross entropy, stable for any x."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_bce_sizes("binary_cross_entropy_with_logits", input, target)
    sp = _softplus_neg(input)
    if pos_weight is not None:
        lw = call("add", call("mul", call("sub", pos_weight, 1.0, alpha=1), target), 1.0, alpha=1)
        loss = call("add", call("mul", call("sub", 1.0, target, alpha=1), input), call("mul", lw, sp), alpha=1)
    else:
        loss = call("add", call("mul", call("sub", 1.0, target, alpha=1), input), sp, alpha=1)
    if weight is not None:
        loss = call("mul", loss, weight)
    return _apply_reduction(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """target * (log target - input) pointwise (input holds log-probabilities); 'batchmean' divides the sum by
    the batch size."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    elif reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      stacklevel=2)
    if log_target:
        loss = call("mul", call("exp", target), call("sub", target, input, alpha=1))
    else:
        loss = call("sub", call("xlogy", target, target), call("mul", target, input), alpha=1)
    if reduction == "batchmean":
        if input.ndim == 0:
            return loss.sum()
        return call("div", loss.sum(), input.shape[0])
    return _apply_reduction(loss, reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    """1 - cos(x1, x2) for target 1, max(0, cos - margin) for target -1."""
    reduction = _reduction(size_average, reduce, reduction)
    if input1.ndim != input2.ndim or input1.ndim not in (1, 2):
        raise RuntimeError(f"cosine_embedding_loss: 1D target tensor expects 2D input tensors, but found inputs with "
                           f"sizes {list(input1.shape)} and {list(input2.shape)}.")
    eps = 1e-12
    prod = call("mul", input1, input2).sum(-1)
    m1 = call("add", call("mul", input1, input1).sum(-1), eps, alpha=1)
    m2 = call("add", call("mul", input2, input2).sum(-1), eps, alpha=1)
    cos = call("div", prod, call("sqrt", call("mul", m1, m2)))
    pos = call("sub", 1.0, cos, alpha=1)
    neg = call("clamp_min", call("sub", cos, margin, alpha=1), min=0.0)
    loss = call("add", call("where", call("eq", target, 1), pos, 0.0), call("where", call("eq", target, -1), neg, 0.0),
                alpha=1)
    return _apply_reduction(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    """max(0, -target * (x1 - x2) + margin)."""
    reduction = _reduction(size_average, reduce, reduction)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
                           f"input1: {input1.shape}, input2: {input2.shape}, target: {target.shape} ")
    loss = call("clamp_min", call("add", call("mul", call("neg", target), call("sub", input1, input2, alpha=1)),
                                  margin, alpha=1), min=0.0)
    return _apply_reduction(loss, reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    margin_clamp = call("clamp_min", call("sub", margin, input, alpha=1), min=0.0)
    out_margin = call("where", call("ne", target, 1), margin_clamp, 0.0)
    out_self = call("where", call("ne", target, -1), input, 0.0)
    return _apply_reduction(call("add", out_margin, out_self, alpha=1), reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    loss = call("log1p", call("exp", call("neg", call("mul", input, target))))
    return _apply_reduction(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    if log_input:
        loss = call("sub", call("exp", input), call("mul", target, input), alpha=1)
    else:
        loss = call("sub", input, call("mul", target, call("log", call("add", input, eps, alpha=1))), alpha=1)
    if full:
        stir = call("add", call("sub", call("xlogy", target, target), target, alpha=1),
                    call("mul", call("log", call("mul", target, 2 * math.pi)), 0.5), alpha=1)
        loss = call("add", loss, call("where", call("gt", target, 1), stir, 0.0), alpha=1)
    return _apply_reduction(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """0.5 (log max(var, eps) + (input - target)^2 / max(var, eps)) (+ 0.5 log(2 pi) with ``full``)."""
    if isinstance(var, (int, float)):
        var = _t.full(input.shape, float(var), dtype=input.dtype)
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1:
            pass
        else:
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    if var._data.size and np.any(var._data < 0):
        raise ValueError("var has negative entry/entries")
    v = call("add", var, call("sub", call("clamp_min", var, min=eps), var, alpha=1).detach(), alpha=1)
    d = call("sub", input, target, alpha=1)
    loss = call("mul", call("add", call("log", v), call("div", call("mul", d, d), v), alpha=1), 0.5)
    if full:
        loss = call("add", loss, 0.5 * math.log(2 * math.pi), alpha=1)
    return _apply_reduction(loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_swap = pairwise_distance(positive, negative, p, eps)
        d_neg = call("minimum", d_neg, d_swap)
    loss = call("clamp_min", call("add", call("sub", d_pos, d_neg, alpha=1), margin, alpha=1), min=0.0)
    return _apply_reduction(loss, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0, swap=False,
                                      reduction="mean"):
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos = dist(anchor, positive)
    d_neg = dist(anchor, negative)
    if swap:
        d_neg = call("minimum", d_neg, dist(positive, negative))
    loss = call("clamp_min", call("add", call("sub", d_pos, d_neg, alpha=1), margin, alpha=1), min=0.0)
    return _apply_reduction(loss, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    loss = call("neg", call("add", call("mul", target, logsigmoid(input)),
                            call("mul", call("sub", 1.0, target, alpha=1), logsigmoid(call("neg", input))), alpha=1))
    if weight is not None:
        loss = call("mul", loss, weight)
    c = input.shape[-1] if input.ndim else 1
    loss = call("div", loss.sum(-1 if input.ndim else None), c)
    return _apply_reduction(loss, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction="mean"):
    """sum_{i != y} max(0, margin - x[y] + x[i])^p / C per sample (p = 1 or 2)."""
    reduction = _reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    x = input.unsqueeze(0) if input.ndim == 1 else input
    t = target.reshape(-1)
    c = x.shape[1]
    _check_targets("multi_margin_loss", t, c, -10 ** 18)
    xy = _t.gather(x, 1, t.unsqueeze(1))
    m = call("clamp_min", call("add", call("sub", x, xy, alpha=1), margin, alpha=1), min=0.0)
    if p == 2:
        m = call("mul", m, m)
    if weight is not None:
        m = call("mul", m, _t.index_select(weight, 0, t).unsqueeze(1))
    m = call("where", call("eq", one_hot(t.long(), c), 1), 0.0, m)
    loss = call("div", m.sum(1), c)
    if input.ndim == 1:
        loss = loss.squeeze(0)
    return _apply_reduction(loss, reduction)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """sum over target labels j (up to the first -1) and non-target classes i of max(0, 1 - (x[j] - x[i])) / C."""
    reduction = _reduction(size_average, reduce, reduction)
    x = input.unsqueeze(0) if input.ndim == 1 else input
    tg = target.unsqueeze(0) if target.ndim == 1 else target
    if tuple(tg.shape) != tuple(x.shape):
        raise RuntimeError(f"multilabel_margin_loss: inconsistent target size: {list(target.shape)} for input of size: "
                           f"{list(input.shape)}")
    n, c = x.shape
    ta = tg._data
    losses = []
    for b in range(n):
        labels = []
        for v in ta[b]:
            if v < 0:
                break
            labels.append(int(v))
        is_t = np.zeros(c, bool)
        is_t[labels] = True
        xb = x.select(0, b)
        mask = _const((~is_t).astype(x.dtype.np), x)
        acc = None
        for j in labels:
            m = call("clamp_min", call("add", call("sub", 1.0, xb.select(0, j), alpha=1), xb, alpha=1), min=0.0)
            term = call("mul", m, mask).sum()
            acc = term if acc is None else call("add", acc, term, alpha=1)
        losses.append(call("div", acc, c) if acc is not None else call("mul", xb.sum(), 0.0))
    loss = _t.stack(losses)
    if input.ndim == 1:
        loss = loss.squeeze(0)
    return _apply_reduction(loss, reduction)


# ================================================================================================ exports

__all__ = [n for n, v in list(globals().items())
           if not n.startswith("_") and callable(v) and getattr(v, "__module__", None) == __name__]

from ._pool3d import avg_pool3d, max_pool3d  # noqa: E402  (separable into the 2-d and 1-d pooling ops)
from ._sampling import affine_grid, grid_sample  # noqa: E402  (spatial transformers; composed of the ops above)

__all__ += ["affine_grid", "avg_pool3d", "grid_sample", "max_pool3d"]

"""jitorch: PyTorch's API on numba kernels, with autograd, a tracer and a fused-op compiler.

``import jitorch as torch`` runs torch scripts: every op dispatches through the op table
(:mod:`jitorch.ops`) to a numba kernel (:mod:`jitorch.kernels`).
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import _malloc  # noqa: F401  (first: keeps freed tensor memory in the process; JITORCH_NO_MALLOPT=1 opts out)
from . import _dtype
from ._dtype import (bool_ as bool, uint8, int8, int16, int32, int64, float16, float32, float64,  # noqa: F401
                     dtype, finfo, iinfo, get_default_dtype, set_default_dtype, promote_types)
from ._device import device, get_default_device, set_default_device  # noqa: F401
from .tensor import Tensor, Size  # noqa: F401
from . import ops  # noqa: F401
from .ops import elementwise as _ew_ops, movement as _mv_ops, copy as _copy_ops, join as _join_ops, linalg as _la_ops, reduce as _red_ops, index as _idx_ops, random as _rnd_ops  # noqa: F401
from ._printing import set_printoptions, get_printoptions  # noqa: F401
from ._creation import (tensor, as_tensor, from_numpy, from_dlpack, empty, zeros, ones, full, empty_like,  # noqa: F401
                        zeros_like, ones_like, full_like, arange, linspace, logspace, eye)
from ._functional import *  # noqa: F401,F403
from ._functional import __all__ as _fn_all
from ._linalg import (matmul, mm, bmm, mv, dot, vdot, inner, outer, ger, addmm, addmv, baddbmm,  # noqa: F401
                      addbmm, tensordot, einsum)
from ._reduce import (sum, nansum, mean, nanmean, prod, max, min, amax, amin, aminmax, argmax, argmin,  # noqa: F401
                      any, all, count_nonzero, var, std, var_mean, std_mean, logsumexp, norm, cumsum, cumprod,
                      logcumsumexp, softmax, log_softmax, trace, dist, return_types)
from ._index import (index_select, gather, take_along_dim, scatter, scatter_add, scatter_reduce, index_add,  # noqa: F401
                     index_copy, index_fill, index_put, take, masked_fill, masked_select, masked_scatter, nonzero,
                     argwhere, sort, argsort, msort, topk, kthvalue, median, nanmedian, mode, unique,
                     unique_consecutive, searchsorted, bucketize, flip, fliplr, flipud, roll, tile, repeat_interleave,
                     tril, triu, diag, diag_embed, diagflat, tril_indices, triu_indices, bincount)
from ._random import (Generator, default_generator, manual_seed, seed, initial_seed, get_rng_state,  # noqa: F401
                      set_rng_state, rand, randn, randint, randperm, normal, bernoulli, multinomial, rand_like,
                      randn_like, randint_like, poisson)
from ._join import cat, concat, concatenate, stack, hstack, vstack, row_stack, dstack, column_stack  # noqa: F401
from ._join import (reshape, flatten, unflatten, transpose, swapaxes, swapdims, permute, t, squeeze,  # noqa: F401
                    unsqueeze, narrow, select, unbind, split, chunk, tensor_split, diagonal, movedim, moveaxis,
                    broadcast_to, broadcast_tensors, broadcast_shapes, atleast_1d, atleast_2d, clone)
from ._compare import isclose, allclose, equal  # noqa: F401,E402
from ._compat import (inf, nan, pi, e, FloatTensor, DoubleTensor, HalfTensor, LongTensor,  # noqa: F401,E402
                      IntTensor, ShortTensor, CharTensor, ByteTensor, BoolTensor, set_float32_matmul_precision,
                      get_float32_matmul_precision, INPLACE as _INPLACE)
from . import version  # noqa: F401,E402
globals().update(_INPLACE)  # torch.exp_(x), torch.sin_(x), ... (jitorch/_compat.py)
from ._threads import (set_num_threads, get_num_threads, set_num_interop_threads,  # noqa: F401,E402
                       get_num_interop_threads)
from . import autograd  # noqa: F401,E402
from .autograd import (no_grad, enable_grad, set_grad_enabled, inference_mode, is_grad_enabled,  # noqa: F401,E402
                       is_inference_mode_enabled)

# dtype aliases, as torch spells them
half, float, double = float16, float32, float64
short, int, long = int16, int32, int64
cfloat = None
bfloat16 = None  # not supported: numba has no bfloat16; kept as a name so `torch.bfloat16` checks fail clearly


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(input):
    return input.numel()


def result_type(tensor1, tensor2):
    return _dtype.result_type(tensor1, tensor2)


def can_cast(from_, to):
    from_, to = _dtype.as_dtype(from_), _dtype.as_dtype(to)
    return from_.category <= to.category


def is_floating_point(input):
    return input.dtype.is_floating_point


def is_nonzero(input):
    if input.numel() != 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(input)


def typename(obj):
    return obj.type() if isinstance(obj, Tensor) else type(obj).__name__


_ = _fn_all

# training utilities (import after everything above: they build on Tensor and the ops)
from . import nn  # noqa: E402,F401
from . import optim  # noqa: E402,F401
from . import utils  # noqa: E402,F401
from . import serialization  # noqa: E402,F401
from .serialization import save, load  # noqa: E402,F401
from . import jit  # noqa: E402,F401
from . import distributed  # noqa: E402,F401  (cheap: mpi4py is imported by init_process_group only)
from . import cuda, accelerator  # noqa: E402,F401  (cheap: numba.cuda is imported on first use)
from ._control_flow import cond, while_loop  # noqa: E402,F401
from .jit.compile import compile  # noqa: E402,F401,A001  (torch.compile: trace, fuse, cache per signature)

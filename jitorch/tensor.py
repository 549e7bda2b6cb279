"""The Tensor: a strided view of storage with a dtype, a device and autograd metadata.

On ``cpu`` the storage is a NumPy array (views share memory and strides are NumPy's, in bytes
there and in elements here). Every computation goes through the op table (``_dispatch.call``);
the methods below only normalize arguments. Views share a version counter with their base so
that autograd can detect in-place writes to saved tensors.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import _dispatch
from . import _dtype as D
from ._device import CPU, as_device, device as _device_cls
from ._dispatch import call, call_inplace
from .ops.rules import normalize_dim


class Size(tuple):
    """torch.Size: a tuple of ints with torch's repr and ``numel()``."""

    def __new__(cls, it=()):
        return super().__new__(cls, (int(x) for x in it))

    def numel(self):
        return math.prod(self)

    def __repr__(self):
        return f"{'jitorch.Size'}([{', '.join(str(x) for x in self)}])"

    def __getitem__(self, i):
        r = super().__getitem__(i)
        return Size(r) if isinstance(i, slice) else r

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))


_new_tuple = tuple.__new__  # Size from a tuple of ints without Size.__new__'s per-element int()


class _Version:
    """A version counter shared by a tensor and its views. No __init__ (one Python frame less per
    result tensor): ``value`` reads the class default 0 until the first in-place write sets it."""
    value = 0


class Tensor:
    """A multi-dimensional array with torch's semantics. Build one with ``jitorch.tensor``."""

    # Only the storage fields are slots; autograd/tracer fields are class-level defaults that an
    # instance overrides in its __dict__ when set, so creating a result tensor costs three stores.
    __slots__ = ("_data", "_device", "_version_box", "__weakref__", "__dict__")
    __array_priority__ = 1000  # make NumPy defer to our reflected operators
    _base = None
    requires_grad = False
    grad = None
    grad_fn = None
    _retains_grad = False
    _hooks = None
    _output_nr = 0
    _trace_id = None

    def __init__(self, *args, **kwargs):
        # torch.Tensor(...) legacy constructor: Tensor(2, 3) -> uninitialized float, Tensor([1, 2]) -> data
        from ._creation import _legacy_tensor
        t = _legacy_tensor(*args, **kwargs)
        self._init_from(t._data, t._device)

    def _init_from(self, arr, device=CPU):
        self._data = arr
        self._device = device
        self._version_box = _Version()

    @classmethod
    def _wrap(cls, arr, device=None):
        t = object.__new__(cls)
        t._data = arr
        t._device = device if device is not None else CPU
        t._version_box = _Version()
        return t

    @classmethod
    def _make_view(cls, arr, base):
        t = object.__new__(cls)
        t._data = arr
        t._device = base._device
        t._version_box = base._version_box  # views and base share one version counter
        t._base = base if base._base is None else base._base
        return t

    def _bump(self):
        self._version_box.value += 1

    @property
    def _version(self):
        return self._version_box.value

    # ---------------------------------------------------------------- metadata
    @property
    def shape(self):
        return _new_tuple(Size, self._data.shape)  # the storage's shape is already a tuple of ints

    def size(self, dim=None):
        if dim is None:
            return _new_tuple(Size, self._data.shape)
        return self._data.shape[normalize_dim("size", dim, self._data.ndim)] if self._data.ndim else 1

    @property
    def dtype(self):
        return D._BY_NP[self._data.dtype]

    @property
    def device(self):
        return self._device

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    ndimension = dim

    def numel(self):
        return self._data.size

    nelement = numel

    def element_size(self):
        return self._data.itemsize

    @property
    def itemsize(self):
        return self._data.itemsize

    @property
    def nbytes(self):
        return self._data.nbytes

    def stride(self, dim=None):
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        if dim is None:
            return st
        return st[normalize_dim("stride", dim, self.ndim)]

    def storage_offset(self):
        if self._device.type != "cpu":
            return self._data.offset
        from .ops.movement import _buffer_ptr
        return (self._data.__array_interface__["data"][0] - _buffer_ptr(self._data)) // self._data.itemsize

    def data_ptr(self):
        if self._device.type != "cpu":
            return self._data.data_ptr()
        return self._data.__array_interface__["data"][0]

    def is_contiguous(self, memory_format=None):
        return bool(self._data.flags.c_contiguous)

    def get_device(self):
        """The cuda device index, or -1 on cpu (torch)."""
        return (self._device.index or 0) if self._device.type == "cuda" else -1

    @property
    def is_cuda(self):
        return self._device.type == "cuda"

    @property
    def is_cpu(self):
        return self._device.type == "cpu"

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def layout(self):
        return "strided"

    def is_floating_point(self):
        return self.dtype.is_floating_point

    def is_complex(self):
        return False

    def is_signed(self):
        return self.dtype.is_signed

    @property
    def data(self):
        # torch: same storage, no history, its own version counter (in-place writes through .data are
        # invisible to autograd's checks)
        return Tensor._wrap(self._data, self._device)

    @data.setter
    def data(self, other):
        self._data = other._data
        self._device = other._device

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    # ---------------------------------------------------------------- conversions
    def _check_python_value(self, what):
        if _dispatch.hooks.tracer is not None:
            from .jit import _tracing
            _tracing.on_python_value(self, what)

    def item(self):
        self._check_python_value("item")
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar; "
                "use .tolist() for many values or index a single element first"
            )
        return self._host().reshape(-1)[0].item()

    def tolist(self):
        self._check_python_value("tolist")
        return self._host().tolist()

    def _host(self):
        """The values as a NumPy array: the storage itself on cpu, a host copy of a cuda tensor."""
        if self._device.type == "cpu":
            return self._data
        from .backends import cuda as _cuda
        return _cuda.to_host(self._data)

    def numpy(self, force=False):
        self._check_python_value("numpy")
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if self._device.type != "cpu":
            raise TypeError(
                f"can't convert {self._device} device type tensor to numpy. Use Tensor.cpu() to copy the tensor "
                "to host memory first."
            )
        return self._data

    def __array__(self, dtype=None, copy=None):
        self._check_python_value("__array__")
        if self._device.type != "cpu":
            self.numpy()  # raises torch's TypeError: copy with .cpu() first
        a = self._data
        return a.astype(dtype) if dtype is not None else a

    def __dlpack__(self, stream=None, **kwargs):
        return self._data.__dlpack__(**({"stream": stream} if stream is not None else {}))

    @property
    def __cuda_array_interface__(self):
        # cuda tensors only: torch.as_tensor / cupy.asarray / numba.cuda.as_cuda_array share the memory
        if self._device.type != "cuda":
            raise AttributeError("'Tensor' object has no attribute '__cuda_array_interface__' (a cpu tensor)")
        return self._data.__cuda_array_interface__

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __bool__(self):
        self._check_python_value("bool")
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous (shape {list(self.shape)}); "
                "use .any() or .all()"
            )
        return bool(self._host().reshape(-1)[0])

    def __int__(self):
        self._check_python_value("int")
        return int(self.item())

    def __float__(self):
        self._check_python_value("float")
        return float(self.item())

    def __index__(self):
        self._check_python_value("index")
        if self.dtype.category == 2 or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __complex__(self):
        return complex(self.item())

    def __iter__(self):
        self._check_python_value("iteration")
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __hash__(self):
        return id(self)

    def __reduce_ex__(self, proto):
        # multiprocessing (DataLoader workers) sends tensors between processes as arrays
        # np.array(copy, order C) keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d)
        return (_rebuild_tensor, (np.array(self._host(), copy=True, order="C"), str(self._device), self.requires_grad))

    # ---------------------------------------------------------------- dtype / device moves
    def to(self, *args, **kwargs):
        """to(dtype) / to(device) / to(device, dtype) / to(other) with non_blocking, copy."""
        dtype = kwargs.pop("dtype", None)
        dev = kwargs.pop("device", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dtype, dev = a.dtype, a.device
            elif isinstance(a, (D.dtype, type)) or (isinstance(a, np.dtype)):
                dtype = a
            elif isinstance(a, (str, _device_cls, int)) and not isinstance(a, bool):
                if isinstance(a, str) and a in D._BY_NAME and a not in ("cpu", "cuda"):
                    dtype = a
                else:
                    dev = a
            elif a is None:
                continue
            else:
                raise TypeError(f"to() received an invalid combination of arguments: {a!r}")
        out = self
        if dev is not None:
            dev = as_device(dev)
            if dev != self._device:
                from . import _devices
                out = _devices.move(out, dev)
        if dtype is not None:
            dtype = D.as_dtype(dtype)
            if dtype is not out.dtype:
                out = out._cast(dtype)
        if copy and out is self:
            out = self.clone()
        return out

    def _cast(self, dtype):
        return call("to_dtype", self, dtype=dtype)

    def type(self, dtype=None, non_blocking=False):
        if dtype is None:
            return f"jitorch.{'cuda.' if self._device.type == 'cuda' else ''}{D.type_name(self.dtype)}"
        if isinstance(dtype, str) and dtype.startswith(("torch.", "jitorch.")):
            name = dtype.split(".")[-1]
            rev = {D.type_name(d): d for d in D.ALL_DTYPES}
            if name not in rev:
                raise TypeError(f"invalid type: {dtype!r}")
            # 'torch.cuda.FloatTensor' names the device too
            return self.to("cuda" if ".cuda." in dtype else "cpu", rev[name])
        return self.to(dtype)

    def type_as(self, other):
        return self.to(other.dtype)

    def float(self):
        return self.to(D.float32)

    def double(self):
        return self.to(D.float64)

    def half(self):
        return self.to(D.float16)

    def long(self):
        return self.to(D.int64)

    def int(self):
        return self.to(D.int32)

    def short(self):
        return self.to(D.int16)

    def char(self):
        return self.to(D.int8)

    def byte(self):
        return self.to(D.uint8)

    def bool(self):
        return self.to(D.bool_)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None, non_blocking=False):
        return self.to(_device_cls("cuda", device) if isinstance(device, int) else (device or "cuda"))

    def pin_memory(self):
        return self

    def is_pinned(self):
        return False

    def clone(self, memory_format=None):
        return call("clone", self)

    def contiguous(self, memory_format=None):
        return self if self._data.flags.c_contiguous else call("clone", self)

    def copy_(self, src, non_blocking=False):
        if not isinstance(src, Tensor):
            from ._creation import tensor as _tensor
            src = _tensor(src)
        elif src._device != self._device:
            src = src.to(self._device)  # torch's copy_ copies across devices
        return call_inplace("copy", self, src)

    def detach(self):
        # same storage and version counter, no history; not a view for autograd (no _base)
        t = Tensor._wrap(self._data, self._device)
        t._version_box = self._version_box
        return t

    def detach_(self):
        self.grad_fn = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad=True):
        if requires_grad and not (self.dtype.is_floating_point):
            raise RuntimeError("only Tensors of floating point dtype can require gradients "
                               f"(got {self.dtype}); convert with .float() first")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to use a "
                               "computed variable in a subgraph that doesn't require differentiation use "
                               "var_no_grad = var.detach().")
        self.requires_grad = requires_grad
        return self

    # ---------------------------------------------------------------- printing
    def __repr__(self):
        from ._printing import tensor_repr
        return tensor_repr(self)

    __str__ = __repr__

    def __format__(self, spec):
        if self.ndim == 0 and spec:
            return format(self.item(), spec)
        return repr(self)

    # ---------------------------------------------------------------- views
    def view(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (D.dtype, type, str)) and not isinstance(shape[0], int):
            return self._view_dtype(D.as_dtype(shape[0]))
        for s in shape:
            if type(s) is not int:
                return call("view", self, size=_shape_arg(shape))
        return call("view", self, size=shape)  # view(2, 3): already a tuple of ints

    def _view_dtype(self, dtype):
        if dtype.itemsize != self.dtype.itemsize:
            raise RuntimeError(f"view(dtype): {self.dtype} -> {dtype} needs equal element sizes")
        return Tensor._make_view(self._data.view(dtype.np), self)

    def view_as(self, other):
        return self.view(other.shape)

    def reshape(self, *shape):
        from .ops.movement import infer_size, view_strides
        size = infer_size("reshape", _shape_arg(shape), self.numel())
        if view_strides(self._data.shape, self.stride(), size) is not None:
            return call("view", self, size=size)
        return call("view", self.contiguous(), size=size)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def permute(self, *dims):
        return call("permute", self, dims=_shape_arg(dims))

    def transpose(self, dim0, dim1):
        nd = self.ndim
        if nd == 0:
            normalize_dim("transpose", dim0, 0)
            normalize_dim("transpose", dim1, 0)
            return self.view(())
        d0, d1 = normalize_dim("transpose", dim0, nd), normalize_dim("transpose", dim1, nd)
        perm = list(range(nd))
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return call("permute", self, dims=tuple(perm))

    swapaxes = swapdims = transpose

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self.transpose(0, 1) if self.ndim == 2 else self.view(self.shape)

    @property
    def T(self):
        return self.permute(tuple(range(self.ndim - 1, -1, -1))) if self.ndim > 1 else self.view(self.shape)

    @property
    def mT(self):
        if self.ndim < 2:
            raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices. Got 1-D tensor.")
        return self.transpose(-2, -1)

    @property
    def H(self):
        return self.T

    @property
    def mH(self):
        return self.mT

    def expand(self, *size):
        return call("expand", self, size=_shape_arg(size))

    def expand_as(self, other):
        return self.expand(other.shape)

    def broadcast_to(self, size):
        return self.expand(size)

    def squeeze(self, dim=None):
        return call("squeeze", self, dim=dim)

    def unsqueeze(self, dim):
        return call("unsqueeze", self, dim=dim)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        s, e = normalize_dim("flatten", start_dim, self.ndim), normalize_dim("flatten", end_dim, self.ndim)
        if s > e:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        shape = self.shape
        return self.reshape(tuple(shape[:s]) + (math.prod(shape[s:e + 1]),) + tuple(shape[e + 1:]))

    def ravel(self):
        return self.reshape(-1)

    def unflatten(self, dim, sizes):
        from .ops.movement import infer_size
        d = normalize_dim("unflatten", dim, self.ndim)
        sizes = infer_size("unflatten", tuple(sizes), self.shape[d])
        return self.view(tuple(self.shape[:d]) + tuple(sizes) + tuple(self.shape[d + 1:]))

    def narrow(self, dim, start, length):
        d = normalize_dim("narrow", dim, self.ndim)
        n = self.shape[d]
        start = int(start)
        if start < 0:
            start += n
        if not (0 <= start <= n) or length < 0 or start + length > n:
            raise IndexError(f"narrow(): start ({start}) + length ({length}) exceeds dimension size ({n}).")
        return call("slice", self, dim=d, start=start, stop=start + length, step=1)

    def select(self, dim, index):
        return call("select", self, dim=dim, index=int(index))

    def unbind(self, dim=0):
        d = normalize_dim("unbind", dim, self.ndim)
        return tuple(self.select(d, i) for i in range(self.shape[d]))

    def split(self, split_size_or_sections, dim=0):
        d = normalize_dim("split", dim, self.ndim)
        n = self.shape[d]
        if isinstance(split_size_or_sections, int):
            step = split_size_or_sections
            if step <= 0 and n > 0:
                raise RuntimeError(f"split expects split_size be non-negative, but got split_size={step}")
            sizes = [min(step, n - i) for i in range(0, n, step)] if n else [0]
        else:
            sizes = [int(s) for s in split_size_or_sections]
            if sum(sizes) != n:
                raise RuntimeError(
                    f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at dimension {d}), "
                    f"but got split_sizes={sizes}"
                )
        out, start = [], 0
        for s in sizes:
            out.append(call("slice", self, dim=d, start=start, stop=start + s, step=1))
            start += s
        return tuple(out)

    def chunk(self, chunks, dim=0):
        if chunks <= 0:
            raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        n = self.shape[normalize_dim("chunk", dim, self.ndim)]
        step = max(1, -(-n // chunks))
        return self.split(step, dim)

    def tensor_split(self, indices_or_sections, dim=0):
        d = normalize_dim("tensor_split", dim, self.ndim)
        n = self.shape[d]
        if isinstance(indices_or_sections, int):
            k = indices_or_sections
            q, r = divmod(n, k)
            sizes = [q + 1] * r + [q] * (k - r)
        else:
            bounds = [0] + [min(max(int(i), 0), n) for i in indices_or_sections] + [n]
            sizes = [max(0, b - a) for a, b in zip(bounds[:-1], bounds[1:])]
        out, start = [], 0
        for s in sizes:
            out.append(call("slice", self, dim=d, start=start, stop=start + s, step=1))
            start += s
        return tuple(out)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        return call("diagonal", self, offset=offset, dim1=dim1, dim2=dim2)

    def as_strided(self, size, stride, storage_offset=None):
        from .ops.movement import _base_buffer, _buffer_ptr
        base = _base_buffer(self._data) if self._device.type == "cpu" else self._data.buffer
        off = self.storage_offset() if storage_offset is None else storage_offset
        size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        if len(size) != len(stride):
            raise RuntimeError(f"as_strided: mismatch in length of strides and shape ({len(size)} vs {len(stride)})")
        if any(s < 0 for s in size) or any(s < 0 for s in stride) or off < 0:
            raise RuntimeError("as_strided: negative sizes, strides or storage_offset are not supported")
        last = off + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else off - 1
        if last >= base.size:
            raise RuntimeError(
                f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {off} require "
                f"{last + 1} elements but the storage has only {base.size}"
            )
        _ = _buffer_ptr
        abs_off = off - self.storage_offset()
        return call("as_strided", self, size=size, stride=stride, storage_offset=abs_off)

    def unfold(self, dimension, size, step):
        d = normalize_dim("unfold", dimension, self.ndim)
        n = self.shape[d] if self.ndim else 1
        if size > n:
            raise RuntimeError(f"unfold: maximum size for tensor at dimension {d} is {n} but size is {size}")
        if step <= 0:
            raise RuntimeError(f"unfold: step is {step} but must be > 0")
        count = (n - size) // step + 1
        st = list(self.stride())
        shape = list(self.shape)
        new_shape = shape[:d] + [count] + shape[d + 1:] + [size]
        new_stride = st[:d] + [st[d] * step] + st[d + 1:] + [st[d]]
        return call("as_strided", self, size=tuple(new_shape), stride=tuple(new_stride), storage_offset=0)

    # ---------------------------------------------------------------- indexing
    def __getitem__(self, index):
        return _getitem(self, index)

    def __setitem__(self, index, value):
        _setitem(self, index, value)

    # ---------------------------------------------------------------- operators
    def __add__(self, other):
        return call("add", self, other, alpha=1)

    def __radd__(self, other):
        return call("add", other, self, alpha=1)

    def __iadd__(self, other):
        return call_inplace("add", self, other, alpha=1)

    def __sub__(self, other):
        return call("sub", self, other, alpha=1)

    def __rsub__(self, other):
        return call("sub", other, self, alpha=1)

    def __isub__(self, other):
        return call_inplace("sub", self, other, alpha=1)

    def __mul__(self, other):
        return call("mul", self, other)

    def __rmul__(self, other):
        return call("mul", other, self)

    def __imul__(self, other):
        return call_inplace("mul", self, other)

    def __truediv__(self, other):
        return call("div", self, other)

    def __rtruediv__(self, other):
        return call("div", other, self)

    def __itruediv__(self, other):
        return call_inplace("div", self, other)

    def __floordiv__(self, other):
        F = _F or _load_functional()
        return F.floor_divide(self, other)

    def __rfloordiv__(self, other):
        F = _F or _load_functional()
        return F.floor_divide(other, self)

    def __ifloordiv__(self, other):
        F = _F or _load_functional()
        return F.floor_divide(self, other, _inplace=True)

    def __mod__(self, other):
        F = _F or _load_functional()
        return F.remainder(self, other)

    def __rmod__(self, other):
        F = _F or _load_functional()
        return F.remainder(other, self)

    def __imod__(self, other):
        F = _F or _load_functional()
        return F.remainder(self, other, _inplace=True)

    def __pow__(self, other):
        F = _F or _load_functional()
        return F.pow(self, other)

    def __rpow__(self, other):
        F = _F or _load_functional()
        return F.pow(other, self)

    def __ipow__(self, other):
        F = _F or _load_functional()
        return F.pow(self, other, _inplace=True)

    def __matmul__(self, other):
        return _matmul(self, other)

    def __rmatmul__(self, other):
        return _matmul(other, self)

    def __neg__(self):
        return call("neg", self)

    def __pos__(self):
        return self

    def __abs__(self):
        return call("abs", self)

    def __invert__(self):
        return call("bitwise_not", self)

    def __and__(self, other):
        return call("bitwise_and", self, other)

    __rand__ = __and__

    def __iand__(self, other):
        return call_inplace("bitwise_and", self, other)

    def __or__(self, other):
        return call("bitwise_or", self, other)

    __ror__ = __or__

    def __ior__(self, other):
        return call_inplace("bitwise_or", self, other)

    def __xor__(self, other):
        return call("bitwise_xor", self, other)

    __rxor__ = __xor__

    def __ixor__(self, other):
        return call_inplace("bitwise_xor", self, other)

    def __lshift__(self, other):
        return call("bitwise_left_shift", self, other)

    def __rshift__(self, other):
        return call("bitwise_right_shift", self, other)

    def __eq__(self, other):
        if not isinstance(other, (Tensor, numbers.Number, np.ndarray)):
            return NotImplemented
        return call("eq", self, other)

    def __ne__(self, other):
        if not isinstance(other, (Tensor, numbers.Number, np.ndarray)):
            return NotImplemented
        return call("ne", self, other)

    def __lt__(self, other):
        return call("lt", self, other)

    def __le__(self, other):
        return call("le", self, other)

    def __gt__(self, other):
        return call("gt", self, other)

    def __ge__(self, other):
        return call("ge", self, other)


# Modules of the layers above Tensor, bound on first use: they import this module, and an import
# statement inside a hot method costs ~2 us per call (more than a small op's whole dispatch).
_F = None  # jitorch._functional


def _load_functional():
    global _F
    from . import _functional as _F
    return _F


def _getitem(t, index):
    global _getitem
    from ._indexing import getitem as _getitem
    Tensor.__getitem__ = _getitem  # from now on x[i] calls the indexing entry point directly
    return _getitem(t, index)


def _setitem(t, index, value):
    global _setitem
    from ._indexing import setitem as _setitem
    Tensor.__setitem__ = _setitem
    return _setitem(t, index, value)


def _matmul(a, b):
    global _matmul
    from ._linalg import matmul as _matmul
    Tensor.__matmul__ = _matmul
    return _matmul(a, b)


def _rebuild_tensor(arr, dev, requires_grad):
    dev = as_device(dev)
    t = Tensor._wrap(arr) if dev.type == "cpu" else Tensor._wrap(arr).to(dev)
    t.requires_grad = requires_grad
    return t


def _shape_arg(shape):
    """Accept f(2, 3), f((2, 3)), f([2, 3]) and f(Size) as torch does."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    for s in shape:
        if type(s) is not int:
            break
    else:
        return tuple(shape)  # the common case: plain ints
    out = []
    for s in shape:
        if isinstance(s, Tensor):
            s = s.__index__()
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"shape entries must be ints, got {type(s).__name__} ({s!r})")
        out.append(int(s))
    return tuple(out)


_dispatch._Tensor = Tensor
_dispatch._Version = _Version  # dispatch's fast paths build result tensors inline (as _wrap does)

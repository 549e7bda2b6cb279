"""Lowering a graph to a list of driver steps (kernel calls, allocations, copies).

Every value is a :class:`View` of a buffer: a byte buffer (an input, the weights blob, a temporary)
plus an element offset, a shape and strides, all :class:`~.sym.Sym` (polynomials in the dynamic
dim). Movement ops (permute, select, slice, expand, unsqueeze, view of a contiguous value ...) only
make new views; kernels that need contiguous operands get them through :meth:`Lowerer.contiguous`
(a strided copy when the view is not). Values are never written after they are made (the graph is
SSA and functional), so aliasing is safe.

The table :data:`LOWER` maps an op name to its lowering function ``fn(lw, node)``; elementwise ops
of the op table (scalar templates) go through :meth:`Lowerer.elementwise`, one kernel per fused
group of :func:`jitorch.jit.fuse.find_groups`. An op without an entry is a build error naming the op
and the node.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ... import _dtype as D
from .. import fuse
from . import kernels as K
from .sym import Sym, contiguous_strides, prod


class BuildError(RuntimeError):
    """The graph cannot be built natively (unsupported op or dtype, missing compiler ...)."""


DTYPES = ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")


def dname(dt):
    return "bool" if dt is D.bool_ else dt.name


@dataclass(eq=False)
class Buf:
    kind: str            # input | weight | tmp
    index: int           # input position / byte offset in the blob / tmp number
    nbytes: Sym = field(default_factory=lambda: Sym(0))


@dataclass(eq=False)
class View:
    buf: Buf
    offset: Sym
    shape: tuple
    strides: tuple
    dtype: str

    @property
    def ndim(self):
        return len(self.shape)

    def numel(self):
        return prod(self.shape)

    def is_contiguous(self):
        want = contiguous_strides(self.shape)
        return all(n == 1 or s == w for n, s, w in zip(self.shape, self.strides, want))

    def with_(self, **kw):
        d = dict(buf=self.buf, offset=self.offset, shape=self.shape, strides=self.strides, dtype=self.dtype)
        d.update(kw)
        return View(**d)


@dataclass
class Call:
    kernel: K.Kernel
    args: list           # per kernel param: View (pointer), Sym (int64) or str (a C double expression)
    split: tuple = None  # (n Sym, work per unit Sym): threaded over lo..hi in [0, n)
    error: str = ""      # for kernels returning a status: the message (printf format) when it is not 0
    error_args: tuple = ()  # Sym values for the message's %lld
    error_code: bool = False  # the kernel's status is passed first to the message (its first %lld)
    note: str = ""


@dataclass
class Blas:
    """C (M, N) = A (M, K) @ B (K, N), row-major contiguous, through cblas_{s,d}gemm."""
    a: View
    b: View
    c: View
    m: Sym
    n: Sym
    k: Sym
    note: str = ""


@dataclass
class Copy:
    """memcpy of a contiguous view into output ``index``."""
    src: View
    index: int


@dataclass
class Alloc:
    buf: Buf
    per_thread: bool = False   # nbytes for each thread of the pool (gemm workspaces)


@dataclass
class Free:
    buf: Buf


@dataclass
class Loop:
    """Run ``body`` (Calls) ``count`` times; ``i`` is the loop variable name in their Sym args."""
    count: Sym
    body: list
    var: str = "i"


def _norm_dim(d, n):
    return d + n if d < 0 else d


class Lowerer:
    def __init__(self, graph, sym_types, sym_literals, sym_attrs, weight_of, input_index, node_pos, symbol):
        self.g = graph
        self.types = graph.types
        self.sym_types = sym_types          # value name -> tuple of Sym
        self.sym_literals = sym_literals    # (node pos, operand index) -> Sym
        self.sym_attrs = sym_attrs          # set of (node pos, attr name)
        self.node_pos = node_pos            # id(node) -> position in the exported graph
        self.symbol = symbol
        self.vals = {}
        self.steps = []
        self.kernels = {}
        self.ntmp = 0
        self.blas = False
        for name, (buf, dtype) in weight_of.items():
            shape = self.shape(name)
            self.vals[name] = View(buf, Sym(0), shape, contiguous_strides(shape), dtype)
        for name, (buf, dtype) in input_index.items():
            shape = self.shape(name)
            self.vals[name] = View(buf, Sym(0), shape, contiguous_strides(shape), dtype)

    # ------------------------------------------------------------------ helpers
    def shape(self, name):
        return self.sym_types[name]

    def dtype(self, name):
        return dname(self.types[name].dtype)

    def where(self, node):
        return f"%{node.outputs[0]} = {node.op}(...)" + (f" at {node.loc}" if node.loc else "")

    def fail(self, node, msg):
        raise BuildError(f"jit.build: {self.where(node)}: {msg}")

    def attr(self, node, name, default=None):
        pos = self.node_pos.get(id(node))
        if (pos, name) in self.sym_attrs:
            self.fail(node, f"attribute {name} depends on the dynamic dim {self.symbol!r}, which the native build "
                            "supports only for view/reshape/expand sizes; export without dynamic dims")
        return node.attr(name, default)

    def literal(self, node, i):
        """Operand i of node: its Sym when it depends on the dynamic dim, else the Python value."""
        pos = self.node_pos.get(id(node))
        s = self.sym_literals.get((pos, i))
        return s if s is not None else node.inputs[i]

    def kernel(self, k):
        self.kernels.setdefault(k.name, k)
        return k

    def tmp(self, shape, dtype, per_thread=False):
        buf = Buf("tmp", self.ntmp, prod(shape) * np.dtype(np.uint8 if dtype == "bool" else dtype).itemsize)
        self.ntmp += 1
        self.steps.append(Alloc(buf, per_thread))
        return View(buf, Sym(0), tuple(shape), contiguous_strides(shape), dtype)

    def free(self, view):
        self.steps.append(Free(view.buf))

    def check_dtype(self, node, dt, allowed=("float32", "float64")):
        if dt not in allowed:
            self.fail(node, f"dtype {dt} is not supported by the native build for {node.op} (supported: "
                            f"{', '.join(allowed)})")

    # ------------------------------------------------------------------ strided copies
    def copy_into(self, dst, src, note="copy"):
        """dst[...] = src[...] (same shape; src broadcast where its stride is 0)."""
        self.elementwise_call([src], [dst], [], ["a0"] if src.dtype == dst.dtype else [_cast("a0", dst.dtype)],
                              note=note)

    def contiguous(self, v):
        if v.is_contiguous():
            return v
        out = self.tmp(v.shape, v.dtype)
        self.copy_into(out, v, "contiguous copy")
        return out

    def reshape(self, v, shape):
        v = self.contiguous(v)
        return View(v.buf, v.offset, tuple(shape), contiguous_strides(shape), v.dtype)

    # ------------------------------------------------------------------ elementwise
    def elementwise_call(self, ins, outs, body, store, params=(), param_exprs=(), helpers="", note=""):
        """One elementwise kernel over ``outs[0].shape``; inputs broadcast to it."""
        shape = outs[0].shape
        R = len(shape)
        ops = []
        for v in ins:
            pad = R - v.ndim
            st = []
            for d in range(R):
                if d < pad:
                    st.append(Sym(0))
                else:
                    n, s = v.shape[d - pad], v.strides[d - pad]
                    st.append(Sym(0) if (n == 1 and not shape[d] == 1) or n == 1 else s)
            ops.append(st)
        for v in outs:
            ops.append(list(v.strides))
        # drop size-1 dims, then merge dims that are contiguous for every operand
        keep = [d for d in range(R) if not shape[d] == 1]
        dims = [shape[d] for d in keep]
        strides = [[st[d] for d in keep] for st in ops]
        d = len(dims) - 2
        while d >= 0:
            if all(st[d] == st[d + 1] * dims[d + 1] for st in strides):
                dims[d] = dims[d] * dims[d + 1]
                del dims[d + 1]
                for st in strides:
                    st[d] = st[d + 1]
                    del st[d + 1]
            d -= 1
        if not dims:
            dims = [Sym(1)]
            strides = [[Sym(0)] for _ in strides]
        r = len(dims)

        def mode(s):
            return "c" if s == 1 else ("b" if s == 0 else "g")
        modes = [mode(st[-1]) for st in strides]
        k = self.kernel(K.elementwise([v.dtype for v in ins], [v.dtype for v in outs], r, modes[:len(ins)],
                                      modes[len(ins):], body, store, params, helpers))
        args = list(ins) + list(outs) + dims
        for st, m in zip(strides, modes):
            args += st[:-1]
            if m == "g":
                args.append(st[-1])
        args += list(param_exprs)
        self.steps.append(Call(k, args, split=(dims[0], prod(dims[1:])), note=note))

    def group(self, nodes, outputs, note=""):
        """A fused group (nodes in order, all of one output shape) -> one kernel."""
        inside = {n.outputs[0] for n in nodes}
        ins = []
        for n in nodes:
            for x in n.inputs:
                if isinstance(x, str) and x not in inside and x not in ins:
                    ins.append(x)
        var = {x: f"a{i}" for i, x in enumerate(ins)}
        body, params, pexprs = [], [], []
        from ...kernels import scalar
        for n in nodes:
            ct = fuse._ctype_name(fuse.compute_type(n, self.types))
            if n.op == "to_dtype":
                x = n.inputs[0]
                expr = _cast(var[x], dname(n.types[0].dtype))
            else:
                key, ps = fuse._scalar_of(n)
                operands = []
                uncast = (0,) if n.op == "where" else ()
                for pos, x in enumerate(n.inputs):
                    if isinstance(x, str):
                        v = var[x]
                        src = fuse._ctype_name(self.types[x].dtype)
                        operands.append(v if (src == ct or pos in uncast) else f"{fuse._np_ctor(ct)}({v})")
                    else:
                        lit = self.literal(n, pos)
                        if isinstance(lit, Sym):
                            q = f"q{len(params)}"
                            params.append(q)
                            pexprs.append(f"(double){lit.c_expr()}")
                            operands.append(f"{fuse._np_ctor(ct)}({q})")
                        else:
                            operands.append(fuse._literal(x, ct))
                expr = scalar.render(key, operands, [fuse._param(p) for p in ps], ct)
                out_ct = fuse._ctype_name(n.types[0].dtype)
                if out_ct != ct or ct not in ("float32", "float64") or key in scalar.BOOL_RESULT:
                    expr = f"{fuse._np_ctor(out_ct)}({expr})"
            t = f"t{n.outputs[0]}".replace(".", "_")
            var[n.outputs[0]] = t
            body.append(f"{t} = {expr}")
        from ...kernels.elementwise import emit_helpers
        helpers = emit_helpers("\n".join(body))
        out_views = [self.tmp(self.shape(o), self.dtype(o)) for o in outputs]
        self.elementwise_call([self.vals[x] for x in ins], out_views, body, [var[o] for o in outputs], params, pexprs,
                              helpers, note=note)
        for o, v in zip(outputs, out_views):
            self.vals[o] = v


def _cast(v, dt):
    if dt == "bool":
        return f"{v} != 0"
    return f"np.{dt}({v})"


# ====================================================================== the table

LOWER = {}


def lower(*names):
    def deco(fn):
        for n in names:
            LOWER[n] = fn
        return fn
    return deco


def _in(lw, node, i=0):
    x = node.inputs[i]
    if not isinstance(x, str):
        lw.fail(node, f"operand {i} must be a tensor")
    return lw.vals[x]


def _set(lw, node, view, k=0):
    lw.vals[node.outputs[k]] = view


@lower("clone", "alias", "detach", "contiguous")
def _alias(lw, node):
    _set(lw, node, _in(lw, node))


@lower("view", "reshape", "_unsafe_view", "flatten", "unsqueeze", "squeeze")
def _reshape(lw, node):
    v = _in(lw, node)
    shape = lw.shape(node.outputs[0])
    if node.op in ("unsqueeze", "squeeze"):
        # keep the strides of the remaining dims (no copy even for a non-contiguous input)
        keep = [(n, s) for n, s in zip(v.shape, v.strides) if not n == 1]
        new, j = [], 0
        for n in shape:
            if n == 1:
                new.append(Sym(0))
            else:
                if j >= len(keep) or not keep[j][0] == n:
                    _set(lw, node, lw.reshape(v, shape))
                    return
                new.append(keep[j][1])
                j += 1
        if j == len(keep):
            _set(lw, node, v.with_(shape=shape, strides=tuple(new)))
            return
    _set(lw, node, lw.reshape(v, shape))


@lower("permute")
def _permute(lw, node):
    v = _in(lw, node)
    dims = [_norm_dim(d, v.ndim) for d in lw.attr(node, "dims")]
    _set(lw, node, v.with_(shape=tuple(v.shape[d] for d in dims), strides=tuple(v.strides[d] for d in dims)))


@lower("transpose")
def _transpose(lw, node):
    v = _in(lw, node)
    a, b = (_norm_dim(lw.attr(node, k), v.ndim) for k in ("dim0", "dim1"))
    p = list(range(v.ndim))
    p[a], p[b] = p[b], p[a]
    _set(lw, node, v.with_(shape=tuple(v.shape[d] for d in p), strides=tuple(v.strides[d] for d in p)))


@lower("select")
def _select(lw, node):
    v = _in(lw, node)
    d = _norm_dim(lw.attr(node, "dim"), v.ndim)
    i = lw.attr(node, "index")
    idx = v.shape[d] + i if i < 0 else Sym(i)
    _set(lw, node, v.with_(offset=v.offset + idx * v.strides[d], shape=v.shape[:d] + v.shape[d + 1:],
                           strides=v.strides[:d] + v.strides[d + 1:]))


@lower("slice")
def _slice(lw, node):
    v = _in(lw, node)
    d = _norm_dim(lw.attr(node, "dim", 0), v.ndim)
    start, step = lw.attr(node, "start", 0), lw.attr(node, "step", 1)
    n = v.shape[d]
    out_n = lw.shape(node.outputs[0])[d]
    if start is None:
        start = 0
    if n.is_const:
        s = slice(start, lw.attr(node, "stop", None), step).indices(n.const)[0]
        st = Sym(s)
    elif start >= 0:
        st = Sym(start)
    else:
        st = n + start
    if step is None or step < 1:
        lw.fail(node, "slice step must be positive")
    shape = list(v.shape)
    strides = list(v.strides)
    shape[d] = out_n
    strides[d] = v.strides[d] * step
    _set(lw, node, v.with_(offset=v.offset + st * v.strides[d], shape=tuple(shape), strides=tuple(strides)))


@lower("narrow")
def _narrow(lw, node):
    v = _in(lw, node)
    d = _norm_dim(lw.attr(node, "dim"), v.ndim)
    start = lw.attr(node, "start")
    st = v.shape[d] + start if start < 0 else Sym(start)
    shape = list(v.shape)
    shape[d] = lw.shape(node.outputs[0])[d]
    _set(lw, node, v.with_(offset=v.offset + st * v.strides[d], shape=tuple(shape)))


@lower("expand")
def _expand(lw, node):
    v = _in(lw, node)
    shape = lw.shape(node.outputs[0])
    pad = len(shape) - v.ndim
    strides = []
    for d, n in enumerate(shape):
        if d < pad:
            strides.append(Sym(0))
        else:
            vn = v.shape[d - pad]
            strides.append(Sym(0) if (vn == 1 and not n == 1) else v.strides[d - pad])
    _set(lw, node, v.with_(shape=tuple(shape), strides=tuple(strides)))


@lower("to_dtype")
def _to_dtype(lw, node):
    v = _in(lw, node)
    want = lw.dtype(node.outputs[0])
    if want == v.dtype:
        _set(lw, node, v)
        return
    lw.check_dtype(node, want, DTYPES)
    lw.group([node], [node.outputs[0]], note=str(node))


@lower("cat")
def _cat(lw, node):
    dim = lw.attr(node, "dim", 0)
    shape = lw.shape(node.outputs[0])
    d = _norm_dim(dim, len(shape))
    out = lw.tmp(shape, lw.dtype(node.outputs[0]))
    off = Sym(0)
    for k in range(len(node.inputs)):
        v = _in(lw, node, k)
        dst = out.with_(offset=out.offset + off * out.strides[d], shape=v.shape)
        lw.copy_into(dst, v, f"cat part {k}")
        off = off + v.shape[d]
    _set(lw, node, out)


@lower("stack")
def _stack(lw, node):
    d = _norm_dim(lw.attr(node, "dim", 0), len(lw.shape(node.outputs[0])))
    shape = lw.shape(node.outputs[0])
    out = lw.tmp(shape, lw.dtype(node.outputs[0]))
    for k in range(len(node.inputs)):
        v = _in(lw, node, k)
        st = list(out.strides)
        del st[d]
        lw.copy_into(out.with_(offset=out.offset + Sym(k) * out.strides[d], shape=v.shape, strides=tuple(st)), v,
                     f"stack part {k}")
    _set(lw, node, out)


@lower("matmul", "mm", "bmm")
def _matmul(lw, node):
    a, b = _in(lw, node, 0), _in(lw, node, 1)
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt)
    if a.dtype != dt or b.dtype != dt:
        lw.fail(node, f"mixed dtypes {a.dtype} @ {b.dtype}")
    out_shape = lw.shape(node.outputs[0])
    k = lw.kernel(K.gemm(dt))

    def work(M, N, K_):
        ws = K.workspace(*(s.const if s.is_const else None for s in (M, N, K_)), dt)
        return lw.tmp((Sym(ws),), dt, per_thread=True), Sym(ws)
    a1, b1 = a.ndim == 1, b.ndim == 1
    if a1:
        a = a.with_(shape=(Sym(1),) + a.shape, strides=(Sym(0),) + a.strides)
    if b1:
        b = b.with_(shape=b.shape + (Sym(1),), strides=b.strides + (Sym(0),))
    if b.ndim == 2:
        a = lw.contiguous(a)
        b = lw.contiguous(b)
        M, K_ = prod(a.shape[:-1]), a.shape[-1]
        N = b.shape[1]
        out = lw.tmp(out_shape, dt)
        if lw.blas:
            lw.steps.append(Blas(a, b, out, M, N, K_, note=str(node)))
            _set(lw, node, out)
            return
        wk, ws = work(M, N, K_)
        lw.steps.append(Call(k, [a, b, out, wk, M, N, K_, ws, "tid"], split=(M, N * K_), note=str(node)))
        _set(lw, node, out)
        return
    # batched: broadcast the batch dims, loop over them in the driver
    bshape = tuple(out_shape[:-2]) if not (a1 or b1) else None
    if bshape is None:
        lw.fail(node, "batched matrix-vector products are not supported")
    M, K_, N = a.shape[-2], a.shape[-1], b.shape[-1]
    nb = len(bshape)

    def batch_view(v):
        pad = nb - (v.ndim - 2)
        shape = tuple(bshape) + v.shape[-2:]
        strides = []
        for d in range(nb):
            if d < pad:
                strides.append(Sym(0))
            else:
                vn = v.shape[d - pad]
                strides.append(Sym(0) if (vn == 1 and not bshape[d] == 1) else v.strides[d - pad])
        return v.with_(shape=shape, strides=tuple(strides) + v.strides[-2:])
    a, b = batch_view(a), batch_view(b)
    if not (a.strides[-1] == 1 and a.strides[-2] == K_):
        a = lw.contiguous(a)
    if not (b.strides[-1] == 1 and b.strides[-2] == N):
        b = lw.contiguous(b)
    out = lw.tmp(out_shape, dt)
    count = prod(bshape)
    # batch index i -> element offset of each operand
    body_args = []
    for v in (a, b, out):
        body_args.append(("batch", v, bshape))
    wk, ws = work(M, N, K_)
    lw.steps.append(Loop(count, [Call(k, body_args + [wk, M, N, K_, ws, "tid"], split=(M, N * K_),
                                      note=str(node))]))
    _set(lw, node, out)


@lower("convolution")
def _conv(lw, node):
    x, w = _in(lw, node, 0), _in(lw, node, 1)
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt)
    nd = w.ndim - 2
    if nd not in (1, 2):
        lw.fail(node, f"{nd}-d convolution is not supported (1-d and 2-d are)")
    stride, padding, dilation = (tuple(lw.attr(node, a)) for a in ("stride", "padding", "dilation"))
    groups = lw.attr(node, "groups", 1)
    out_shape = lw.shape(node.outputs[0])
    if nd == 1:
        x = lw.reshape(x, x.shape[:2] + (Sym(1),) + x.shape[2:])
        w = lw.reshape(w, w.shape[:2] + (Sym(1),) + w.shape[2:])
        stride, padding, dilation = (1,) + stride, (0,) + padding, (1,) + dilation
        oshape4 = out_shape[:2] + (Sym(1),) + out_shape[2:]
    else:
        oshape4 = out_shape
    x, w = lw.contiguous(x), lw.contiguous(w)
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    OH, OW = oshape4[2], oshape4[3]
    bv = lw.contiguous(lw.vals[bias]) if isinstance(bias, str) else None
    L = OH * OW
    out = lw.tmp(out_shape, dt)
    xt = lw.tmp((C * H * W * N,), dt)
    cols = lw.tmp((C * KH * KW * L * N,), dt)
    lw.steps.append(Call(lw.kernel(K.conv2d_cols(dt)), [x, xt, cols, N, C, H, W, KH, KW, OH, OW, Sym(stride[0]),
                                                        Sym(stride[1]), Sym(padding[0]), Sym(padding[1]),
                                                        Sym(dilation[0]), Sym(dilation[1])], note=str(node)))
    y = lw.tmp((O * L * N,), dt)
    R = (C * KH * KW).const // groups
    ws = Sym(K.workspace((O.const // groups), None, R, dt))
    wk = lw.tmp((ws,), dt, per_thread=True)
    # the product (most of the work) threaded over its L*N columns
    lw.steps.append(Call(lw.kernel(K.conv2d_gemm(dt)), [w, cols, y, wk, O, Sym(R), Sym(groups), L * N, ws, "tid"],
                         split=(L * N, O * Sym(R)), note=str(node)))
    lw.steps.append(Call(lw.kernel(K.conv2d_out(dt, bv is not None)), [y, bv, out, N, O, L], note=str(node)))
    _set(lw, node, out)


def _pool_dims(lw, node, x, out_shape):
    x = lw.contiguous(x)
    P = prod(x.shape[:-2])
    return x, P, x.shape[-2], x.shape[-1], out_shape[-2], out_shape[-1]


@lower("max_pool2d_with_indices")
def _maxpool(lw, node):
    x = _in(lw, node)
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt)
    out_shape = lw.shape(node.outputs[0])
    x, P, H, W, OH, OW = _pool_dims(lw, node, x, out_shape)
    ks, st, pd, dl = (tuple(lw.attr(node, a) or ()) for a in ("kernel_size", "stride", "padding", "dilation"))
    st = st or ks
    k = lw.kernel(K.max_pool2d(dt, ks, st, pd or (0, 0), dl or (1, 1)))
    out = lw.tmp(out_shape, dt)
    idx = lw.tmp(out_shape, "int64")
    lw.steps.append(Call(k, [x, out, idx, P, H, W, OH, OW], note=str(node)))
    _set(lw, node, out, 0)
    _set(lw, node, idx, 1)


@lower("avg_pool2d")
def _avgpool(lw, node):
    x = _in(lw, node)
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt)
    out_shape = lw.shape(node.outputs[0])
    x, P, H, W, OH, OW = _pool_dims(lw, node, x, out_shape)
    ks, st, pd = (tuple(lw.attr(node, a) or ()) for a in ("kernel_size", "stride", "padding"))
    k = lw.kernel(K.avg_pool2d(dt, ks, st or ks, pd or (0, 0), lw.attr(node, "count_include_pad", True),
                               lw.attr(node, "divisor_override", None)))
    out = lw.tmp(out_shape, dt)
    lw.steps.append(Call(k, [x, out, P, H, W, OH, OW], note=str(node)))
    _set(lw, node, out)


@lower("adaptive_avg_pool2d")
def _adaptive_avg(lw, node):
    x = _in(lw, node)
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt)
    out_shape = lw.shape(node.outputs[0])
    x, P, H, W, OH, OW = _pool_dims(lw, node, x, out_shape)
    out = lw.tmp(out_shape, dt)
    lw.steps.append(Call(lw.kernel(K.adaptive_avg_pool2d(dt)), [x, out, P, H, W, OH, OW], note=str(node)))
    _set(lw, node, out)


def _dims_attr(lw, node, ndim):
    dim = lw.attr(node, "dim", None)
    if dim is None:
        return list(range(ndim))
    if isinstance(dim, int):
        dim = (dim,)
    return sorted({_norm_dim(d, ndim) for d in dim})


def _rows(lw, node, v, red):
    """v permuted so the dims ``red`` are last, made contiguous: (rows Sym, n Sym, view, permutation)."""
    keep = [d for d in range(v.ndim) if d not in red]
    perm = keep + list(red)
    pv = v.with_(shape=tuple(v.shape[d] for d in perm), strides=tuple(v.strides[d] for d in perm))
    pv = lw.contiguous(pv)
    return prod(pv.shape[:len(keep)]), prod(pv.shape[len(keep):]), pv, perm


@lower("sum", "amax", "amin", "prod", "var", "mean")
def _reduce(lw, node):
    v = _in(lw, node)
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt)
    if v.dtype != dt:
        lw.fail(node, f"a {node.op} from {v.dtype} to {dt} is not supported")
    red = _dims_attr(lw, node, v.ndim)
    rows, n, pv, _ = _rows(lw, node, v, red)
    k = lw.kernel(K.reduce_rows(node.op, dt, lw.attr(node, "correction", 1) if node.op == "var" else 0))
    out = lw.tmp(lw.shape(node.outputs[0]), dt)
    lw.steps.append(Call(k, [pv, out, n], split=(rows, n), note=str(node)))
    _set(lw, node, out)


@lower("softmax", "log_softmax")
def _softmax(lw, node):
    v = _in(lw, node)
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt)
    if v.dtype != dt:
        lw.fail(node, f"a {node.op} from {v.dtype} to {dt} is not supported")
    red = _dims_attr(lw, node, v.ndim)
    if len(red) != 1:
        lw.fail(node, f"{node.op} over several dims")
    rows, n, pv, perm = _rows(lw, node, v, red)
    out = lw.tmp(pv.shape, dt)
    lw.steps.append(Call(lw.kernel(K.softmax_rows(node.op, dt)), [pv, out, n], split=(rows, n), note=str(node)))
    inv = [perm.index(d) for d in range(v.ndim)]
    _set(lw, node, out.with_(shape=tuple(out.shape[i] for i in inv), strides=tuple(out.strides[i] for i in inv)))


@lower("index_select")
def _index_select(lw, node):
    x, idx = _in(lw, node, 0), _in(lw, node, 1)
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt, DTYPES)
    lw.check_dtype(node, idx.dtype, ("int64", "int32"))
    d = _norm_dim(lw.attr(node, "dim", 0), x.ndim)
    x = lw.contiguous(x)
    idx = lw.contiguous(idx)
    outer, n, inner = prod(x.shape[:d]), x.shape[d], prod(x.shape[d + 1:])
    m = prod(idx.shape)
    out = lw.tmp(lw.shape(node.outputs[0]), dt)
    lw.steps.append(Call(lw.kernel(K.index_select(dt, idx.dtype)), [x, idx, out, outer, n, inner, m],
                         error=f"{lw.where(node)}: an index is out of range for dimension {d} (size %lld)",
                         error_args=(n,), note=str(node)))
    _set(lw, node, out)


def _index_layout(lw, node, x, idx, d):
    """(outer, n, inner, m) for gather/scatter along d: idx must match x outside d (checked)."""
    if idx.ndim != x.ndim or any(not (idx.shape[k] == x.shape[k]) for k in range(x.ndim) if k != d):
        lw.fail(node, "the native build supports gather/scatter with an index of the input's sizes outside dim "
                      f"{d} only")
    return prod(x.shape[:d]), x.shape[d], prod(x.shape[d + 1:]), idx.shape[d]


@lower("gather")
def _gather(lw, node):
    x, idx = lw.contiguous(_in(lw, node, 0)), lw.contiguous(_in(lw, node, 1))
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt, DTYPES)
    lw.check_dtype(node, idx.dtype, ("int64", "int32"))
    d = _norm_dim(lw.attr(node, "dim", 0), max(x.ndim, 1))
    outer, n, inner, m = _index_layout(lw, node, x, idx, d)
    out = lw.tmp(lw.shape(node.outputs[0]), dt)
    lw.steps.append(Call(lw.kernel(K.gather(dt, idx.dtype)), [x, idx, out, outer, n, inner, m],
                         error=f"{lw.where(node)}: an index is out of range for dimension {d} (size %lld)",
                         error_args=(n,), note=str(node)))
    _set(lw, node, out)


@lower("scatter")
def _scatter(lw, node):
    base, idx, src = (lw.contiguous(_in(lw, node, k)) for k in range(3))
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt)
    lw.check_dtype(node, idx.dtype, ("int64", "int32"))
    reduce = lw.attr(node, "reduce", None)
    if reduce not in (None, "sum", "add"):
        lw.fail(node, f"scatter with reduce={reduce!r} is not supported (None and 'sum' are)")
    if src.shape != idx.shape and not all(a == b for a, b in zip(src.shape, idx.shape)):
        lw.fail(node, "scatter's source must have the index's shape")
    d = _norm_dim(lw.attr(node, "dim", 0), max(base.ndim, 1))
    outer, n, inner, m = _index_layout(lw, node, base, idx, d)
    out = lw.tmp(lw.shape(node.outputs[0]), dt)
    k = lw.kernel(K.scatter(dt, idx.dtype, reduce, lw.attr(node, "include_self", True)))
    lw.steps.append(Call(k, [base, idx, src, out, outer, n, inner, m],
                         error=f"{lw.where(node)}: an index is out of range for dimension {d} (size %lld)",
                         error_args=(n,), note=str(node)))
    _set(lw, node, out)


# ---------------------------------------------------------------------- advanced indexing

def _index_parts(lw, node, x, idx_names, dims):
    """Common to index/index_put: (table permutation, broadcast index shape b, the stacked (k, M) int64 index
    view, M, the indexed sizes, D (the rest's element count), adjacent)."""
    for q, name in enumerate(idx_names):
        if not isinstance(name, str):
            lw.fail(node, f"index operand {q} must be a tensor")
        lw.check_dtype(node, lw.vals[name].dtype, ("int64", "int32", "int16", "int8"))
    nd = x.ndim
    dims = [_norm_dim(d, nd) for d in dims]
    rest = [d for d in range(nd) if d not in dims]
    ivs = [lw.vals[n] for n in idx_names]
    R = max(v.ndim for v in ivs)
    b = []
    for d in range(R):
        sizes = [v.shape[d - (R - v.ndim)] for v in ivs if d >= R - v.ndim]
        big = [s for s in sizes if not s == 1]
        b.append(big[0] if big else Sym(1))
    b = tuple(b)
    M = prod(b)
    k = len(ivs)
    stacked = lw.tmp((Sym(k),) + b, "int64")
    per = contiguous_strides(b)
    for q, v in enumerate(ivs):
        dst = stacked.with_(offset=Sym(q) * M, shape=b, strides=per)
        lw.copy_into(dst, v, f"index tensor {q} of {node.op}")
    adjacent = dims == list(range(dims[0], dims[0] + len(dims)))
    return dims, rest, b, stacked, M, [x.shape[d] for d in dims], prod([x.shape[d] for d in rest]), adjacent


def _index_error(lw, node, dims, sizes):
    shown = ", ".join(f"dim {d} (size %lld)" for d in dims)
    return dict(error=f"{lw.where(node)}: index tensor %lld (counting from 1) has a value out of range for the indexed "
                      f"dims: {shown}", error_args=tuple(sizes), error_code=True)


@lower("index")
def _index(lw, node):
    x = _in(lw, node)
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt, DTYPES)
    dims, rest, b, stacked, M, sizes, D, adjacent = _index_parts(lw, node, x, node.inputs[1:],
                                                                 lw.attr(node, "dims"))
    perm = dims + rest
    pv = x.with_(shape=tuple(x.shape[d] for d in perm), strides=tuple(x.strides[d] for d in perm))
    table = lw.contiguous(pv)
    res_shape = b + tuple(x.shape[d] for d in rest)
    res = lw.tmp(res_shape, dt)
    lw.steps.append(Call(lw.kernel(K.index_rows(dt, len(dims))), [table, stacked, res, M, D] + list(sizes),
                         note=str(node), **_index_error(lw, node, dims, sizes)))
    if adjacent and dims[0] > 0:
        nb = len(b)
        order = list(range(nb, nb + dims[0])) + list(range(nb)) + list(range(nb + dims[0], len(res_shape)))
        res = res.with_(shape=tuple(res.shape[i] for i in order), strides=tuple(res.strides[i] for i in order))
    _set(lw, node, res)


@lower("index_put")
def _index_put(lw, node):
    x = _in(lw, node)
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt, DTYPES)
    if not isinstance(node.inputs[1], str):
        lw.fail(node, "index_put's values must be a tensor")
    vals = lw.vals[node.inputs[1]]
    accumulate = bool(lw.attr(node, "accumulate", False))
    if accumulate and dt == "bool":
        lw.fail(node, "index_put with accumulate=True on bool is not supported")
    dims, rest, b, stacked, M, sizes, D, adjacent = _index_parts(lw, node, x, node.inputs[2:],
                                                                 lw.attr(node, "dims"))
    perm = dims + rest
    inv = [perm.index(d) for d in range(x.ndim)]
    table = lw.tmp(tuple(x.shape[d] for d in perm), dt)
    lw.copy_into(table, x.with_(shape=tuple(x.shape[d] for d in perm), strides=tuple(x.strides[d] for d in perm)),
                 "index_put: the copy of the input")
    # the values, broadcast to the indexing result's shape, laid out as (b..., rest...) rows
    target = (tuple(x.shape[d] for d in range(dims[0])) + b + tuple(x.shape[d] for d in range(dims[-1] + 1, x.ndim))
              if adjacent else b + tuple(x.shape[d] for d in rest))
    pad = len(target) - vals.ndim
    if pad < 0:
        lw.fail(node, "index_put's values have more dims than the indexing result")
    vst = []
    for d in range(len(target)):
        if d < pad:
            vst.append(Sym(0))
        else:
            n = vals.shape[d - pad]
            vst.append(Sym(0) if (n == 1 and not target[d] == 1) else vals.strides[d - pad])
    vb = vals.with_(shape=target, strides=tuple(vst))
    if adjacent and dims[0] > 0:
        nb = len(b)
        order = list(range(dims[0], dims[0] + nb)) + list(range(dims[0])) + list(range(dims[0] + nb, len(target)))
        vb = vb.with_(shape=tuple(vb.shape[i] for i in order), strides=tuple(vb.strides[i] for i in order))
    rows = lw.tmp(vb.shape, dt)
    lw.copy_into(rows, vb, "index_put: the values as rows")
    lw.steps.append(Call(lw.kernel(K.index_put_rows(dt, len(dims), accumulate)), [table, stacked, rows, M, D]
                         + list(sizes), note=str(node), **_index_error(lw, node, dims, sizes)))
    _set(lw, node, table.with_(shape=tuple(table.shape[i] for i in inv), strides=tuple(table.strides[i] for i in inv)))


# ---------------------------------------------------------------------- arg reductions and scans

def _one_dim(lw, node, v):
    red = _dims_attr(lw, node, v.ndim)
    if v.ndim == 0:
        return None
    if len(red) != 1:
        lw.fail(node, f"{node.op} over {len(red)} dims (one is supported)")
    return red


@lower("argmax", "argmin", "max_dim", "min_dim")
def _argreduce(lw, node):
    v = _in(lw, node)
    dt = v.dtype
    lw.check_dtype(node, dt, DTYPES)
    red = _one_dim(lw, node, v)
    values = node.op in ("max_dim", "min_dim")
    idx_name = node.outputs[1] if values else node.outputs[0]
    if red is None:   # a 0-dim input: its value, index 0
        lw.fail(node, f"{node.op} of a 0-dim tensor is not supported")
    rows, n, pv, _ = _rows(lw, node, v, red)
    op = "max" if node.op in ("argmax", "max_dim") else "min"
    oi = lw.tmp(lw.shape(idx_name), "int64")
    args = [pv]
    if values:
        ov = lw.tmp(lw.shape(node.outputs[0]), dt)
        args.append(ov)
    args += [oi, n]
    lw.steps.append(Call(lw.kernel(K.arg_rows(op, dt, values)), args, split=(rows, n), note=str(node)))
    if values:
        _set(lw, node, ov, 0)
        _set(lw, node, oi, 1)
    else:
        _set(lw, node, oi)


@lower("cumsum", "cumprod")
def _scan(lw, node):
    v = _in(lw, node)
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt, ("float32", "float64", "int64"))
    if v.ndim == 0:
        lw.fail(node, f"{node.op} of a 0-dim tensor is not supported")
    red = _one_dim(lw, node, v)
    if v.dtype != dt:   # integers and bool accumulate in int64
        c = lw.tmp(v.shape, dt)
        lw.copy_into(c, v, f"{node.op}: cast to {dt}")
        v = c
    rows, n, pv, perm = _rows(lw, node, v, red)
    out = lw.tmp(pv.shape, dt)
    lw.steps.append(Call(lw.kernel(K.scan_rows(node.op, dt)), [pv, out, n], split=(rows, n), note=str(node)))
    inv = [perm.index(d) for d in range(v.ndim)]
    _set(lw, node, out.with_(shape=tuple(out.shape[i] for i in inv), strides=tuple(out.strides[i] for i in inv)))


# ---------------------------------------------------------------------- view_scatter (writes through views)

def _step_view(lw, node, v, name, attrs):
    """The view ``name(attrs)`` of v (a step of view_scatter), for the view ops whose sizes follow from v's."""
    a = dict(attrs)
    if name == "select":
        d = _norm_dim(a["dim"], v.ndim)
        i = a["index"]
        idx = v.shape[d] + i if i < 0 else Sym(i)
        return v.with_(offset=v.offset + idx * v.strides[d], shape=v.shape[:d] + v.shape[d + 1:],
                       strides=v.strides[:d] + v.strides[d + 1:])
    if name == "slice":
        d = _norm_dim(a.get("dim", 0), v.ndim)
        start, stop, step = a.get("start"), a.get("stop"), a.get("step", 1) or 1
        n = v.shape[d]
        if step < 1:
            lw.fail(node, "slice step must be positive")
        if n.is_const:
            st, sp, _ = slice(start, stop, step).indices(n.const)
            st, cnt = Sym(st), Sym(max(0, -(-(sp - st) // step)))
        elif start in (None, 0) and stop is None and step == 1:
            st, cnt = Sym(0), n
        else:
            lw.fail(node, "view_scatter through a partial slice of the dynamic dim is not supported")
        shape, strides = list(v.shape), list(v.strides)
        shape[d], strides[d] = cnt, v.strides[d] * step
        return v.with_(offset=v.offset + st * v.strides[d], shape=tuple(shape), strides=tuple(strides))
    if name in ("permute", "transpose"):
        if name == "permute":
            p = [_norm_dim(d, v.ndim) for d in a["dims"]]
        else:
            p = list(range(v.ndim))
            x, y = _norm_dim(a["dim0"], v.ndim), _norm_dim(a["dim1"], v.ndim)
            p[x], p[y] = p[y], p[x]
        return v.with_(shape=tuple(v.shape[d] for d in p), strides=tuple(v.strides[d] for d in p))
    if name == "unsqueeze":
        d = _norm_dim(a["dim"], v.ndim + 1)
        return v.with_(shape=v.shape[:d] + (Sym(1),) + v.shape[d:], strides=v.strides[:d] + (Sym(0),) + v.strides[d:])
    lw.fail(node, f"view_scatter through a {name} view is not supported by the native build (select, slice, "
                  "permute, transpose, unsqueeze are)")


@lower("view_scatter")
def _view_scatter(lw, node):
    base, new = _in(lw, node, 0), _in(lw, node, 1)
    dt = lw.dtype(node.outputs[0])
    lw.check_dtype(node, dt, DTYPES)
    out = lw.tmp(base.shape, dt)
    lw.copy_into(out, base, "view_scatter: the copy of the base")
    v = out
    for name, attrs in lw.attr(node, "steps"):
        v = _step_view(lw, node, v, name, attrs)
    if len(v.shape) != new.ndim or any(not (p == q) for p, q in zip(v.shape, new.shape)):
        lw.fail(node, f"view_scatter: the view's shape {v.shape} is not the value's {new.shape}")
    lw.copy_into(v, new, "view_scatter: the written view")
    _set(lw, node, out)


@lower("remainder", "div_floor", "div_trunc", "fmod")
def _int_div(lw, node):
    """Integer division/remainder (not fused: eager raises on a zero divisor) by a non-zero literal (or a
    size of the dynamic dim, >= 1) is safe in a kernel; float ones are ordinary elementwise ops."""
    ct = fuse.compute_type(node, lw.types)
    if ct is not None and not ct.is_floating_point:
        d = lw.literal(node, 1) if len(node.inputs) > 1 else None
        if isinstance(d, Sym):
            ok = all(c >= 0 for c in d.c) and d.at(1) > 0
        else:
            ok = isinstance(d, (int, float)) and not isinstance(d, bool) and d != 0
        if not ok:
            lw.fail(node, f"integer {node.op} by a tensor (or by zero) is not supported by the native build: eager "
                          "raises on a zero divisor; divide by a non-zero constant or compute in floating point")
    elif not fuse.fusable(node, lw.types):
        lw.fail(node, f"{node.op} with these operands is not supported (dtype {ct})")
    lw.group([node], [node.outputs[0]], note=str(node))


@lower("sort", "topk")
def _sort(lw, node):
    v = _in(lw, node)
    dt = v.dtype
    lw.check_dtype(node, dt, DTYPES)
    if v.ndim == 0:
        lw.fail(node, f"{node.op} of a 0-dim tensor is not supported")
    d = _norm_dim(lw.attr(node, "dim", -1), v.ndim)
    rows, n, pv, perm = _rows(lw, node, v, [d])
    if node.op == "sort":
        descending, k = bool(lw.attr(node, "descending", False)), n
    else:   # topk: the k largest (smallest) in order; sorted=False is allowed any order, this one is sorted
        descending, k = bool(lw.attr(node, "largest", True)), Sym(lw.attr(node, "k"))
    oshape = tuple(pv.shape[:-1]) + (k,)
    ov, oi = lw.tmp(oshape, dt), lw.tmp(oshape, "int64")
    scr = lw.tmp((n * 2,), "int64", per_thread=True)
    lw.steps.append(Call(lw.kernel(K.sort_rows(dt, descending)), [pv, ov, oi, scr, n, k, "tid"],
                         split=(rows, n * 8), note=str(node)))
    inv = [perm.index(q) for q in range(v.ndim)]
    for j, o in enumerate((ov, oi)):
        _set(lw, node, o.with_(shape=tuple(o.shape[i] for i in inv), strides=tuple(o.strides[i] for i in inv)), j)

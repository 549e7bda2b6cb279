"""Matrix products: matmul and the torch functions composed from it (mm, bmm, mv, dot, outer,
addmm, baddbmm, tensordot, einsum). Compositions inherit matmul's kernel, gradient and tracing."""
from __future__ import annotations

import math

from ._dispatch import call, call_binary as _call_binary
from .ops.registry import OPS as _OPS
from .tensor import Tensor

_MATMUL = _OPS["matmul"]  # a @ b enters dispatch through call_binary (one Python call less than call)


def _check(op, t, ndim):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}(): expected a Tensor, got {type(t).__name__}")
    if t.ndim != ndim:
        raise RuntimeError(f"{op}: expected a {ndim}-D tensor, but got a {t.ndim}-D tensor of shape {list(t.shape)}")


def matmul(input, other, *, out=None):
    """torch.matmul: 1-D x 1-D dot, 2-D x 1-D mv, 2-D x 2-D mm, and batched with broadcasting."""
    r = _call_binary(_MATMUL, input, other)
    if out is not None:
        out.copy_(r)
        return out
    return r


def mm(input, mat2, *, out=None):
    _check("mm", input, 2)
    _check("mm", mat2, 2)
    return matmul(input, mat2, out=out)


def bmm(input, mat2, *, out=None):
    _check("bmm", input, 3)
    _check("bmm", mat2, 3)
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: batch sizes must match, got {input.shape[0]} and {mat2.shape[0]} "
                           f"(shapes {list(input.shape)} and {list(mat2.shape)})")
    return matmul(input, mat2, out=out)


def mv(input, vec, *, out=None):
    _check("mv", input, 2)
    _check("mv", vec, 1)
    return matmul(input, vec, out=out)


def dot(input, other, *, out=None):
    _check("dot", input, 1)
    _check("dot", other, 1)
    return matmul(input, other, out=out)


def vdot(input, other):
    return dot(input, other)


def inner(input, other):
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    return matmul(input, other.transpose(-1, -2) if other.ndim > 1 else other)


def outer(input, vec2):
    _check("outer", input, 1)
    _check("outer", vec2, 1)
    return input.unsqueeze(1) * vec2.unsqueeze(0)


ger = outer


def addmm(input, mat1, mat2, *, beta=1, alpha=1, out=None):
    """beta * input + alpha * (mat1 @ mat2)."""
    prod = mm(mat1, mat2)
    if alpha != 1:
        prod = prod * alpha
    r = prod if beta == 0 else (prod + (input if beta == 1 else input * beta))
    if out is not None:
        out.copy_(r)
        return out
    return r


def addmv(input, mat, vec, *, beta=1, alpha=1):
    prod = mv(mat, vec)
    if alpha != 1:
        prod = prod * alpha
    return prod if beta == 0 else prod + (input if beta == 1 else input * beta)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    prod = bmm(batch1, batch2)
    if alpha != 1:
        prod = prod * alpha
    return prod if beta == 0 else prod + (input if beta == 1 else input * beta)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    from ._reduce import sum as _sum
    prod = _sum(bmm(batch1, batch2), 0)
    if alpha != 1:
        prod = prod * alpha
    return prod if beta == 0 else prod + (input if beta == 1 else input * beta)


def tensordot(a, b, dims=2):
    """Contract the last ``dims`` dims of a with the first of b, or explicit dim lists."""
    if isinstance(dims, int):
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        da, db = [list(d) if isinstance(d, (list, tuple)) else [d] for d in dims]
    da = [d % a.ndim for d in da]
    db = [d % b.ndim for d in db]
    for x, y in zip(da, db):
        if a.shape[x] != b.shape[y]:
            raise RuntimeError(f"tensordot: contracted dimensions need to match, but first has size {a.shape[x]} in "
                               f"dim {x} and second has size {b.shape[y]} in dim {y}")
    fa = [d for d in range(a.ndim) if d not in da]
    fb = [d for d in range(b.ndim) if d not in db]
    k = math.prod(a.shape[d] for d in da)
    am = a.permute(fa + da).reshape(math.prod(a.shape[d] for d in fa), k)
    bm = b.permute(db + fb).reshape(k, math.prod(b.shape[d] for d in fb))
    return matmul(am, bm).reshape([a.shape[d] for d in fa] + [b.shape[d] for d in fb])


def _parse_einsum(equation, operands):
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->")
    else:
        lhs, rhs = eq, None
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise RuntimeError(f"einsum(): {len(terms)} operands in the equation but {len(operands)} were given")
    for t, x in zip(terms, operands):
        if "." in t:
            raise NotImplementedError("einsum(): ellipsis ('...') is not supported yet; spell the dims out")
        if len(t) != x.ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(t)}) does not match the "
                               f"number of dimensions ({x.ndim}) for operand {terms.index(t)}")
        if not t.isalpha() and t:
            raise RuntimeError(f"einsum(): invalid subscript in {t!r}: only letters are allowed")
    if rhs is None:
        counts = {}
        for t in terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        rhs = "".join(sorted(c for c, n in counts.items() if n == 1))
    return terms, rhs


def _einsum_single(term, x, keep):
    """Reduce one operand: take diagonals of repeated letters, sum letters not in ``keep``."""
    from ._reduce import sum as _sum
    letters = list(term)
    while len(set(letters)) != len(letters):
        for i, c in enumerate(letters):
            j = letters.index(c, i + 1) if letters.count(c) > 1 else -1
            if j > 0:
                x = x.diagonal(0, i, j)
                letters = [l for k, l in enumerate(letters) if k not in (i, j)] + [c]
                break
    drop = [i for i, c in enumerate(letters) if c not in keep]
    if drop:
        x = _sum(x, tuple(drop))
        letters = [c for i, c in enumerate(letters) if i not in drop]
    return "".join(letters), x


def einsum(equation, *operands):
    """Einstein summation for one or two operands (more are contracted left to right)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    terms, rhs = _parse_einsum(equation, operands)
    sizes = {}
    for t, x in zip(terms, operands):
        for c, n in zip(t, x.shape):
            if sizes.setdefault(c, n) != n and n != 1 and sizes[c] != 1:
                raise RuntimeError(f"einsum(): operands do not broadcast with remapped shapes: subscript {c!r} has "
                                   f"sizes {sizes[c]} and {n}")
    term, x = terms[0], operands[0]
    rest = list(zip(terms[1:], operands[1:]))
    needed_later = set(rhs) | {c for t, _ in rest for c in t}
    term, x = _einsum_single(term, x, needed_later)
    while rest:
        t2, y = rest.pop(0)
        later = set(rhs) | {c for t, _ in rest for c in t}
        t2, y = _einsum_single(t2, y, set(term) | later)
        batch = [c for c in term if c in t2 and c in later]
        contract = [c for c in term if c in t2 and c not in later]
        left = [c for c in term if c not in t2]
        right = [c for c in t2 if c not in term]
        xa = x.permute([term.index(c) for c in batch + left + contract])
        yb = y.permute([t2.index(c) for c in batch + contract + right])
        bshape = [max(x.shape[term.index(c)], y.shape[t2.index(c)]) for c in batch]
        ls = [x.shape[term.index(c)] for c in left]
        rs = [y.shape[t2.index(c)] for c in right]
        k = math.prod(x.shape[term.index(c)] for c in contract)
        xa = xa.expand(bshape + ls + [x.shape[term.index(c)] for c in contract]) if batch else xa
        yb = yb.expand(bshape + [y.shape[t2.index(c)] for c in contract] + rs) if batch else yb
        xm = xa.reshape(bshape + [math.prod(ls), k])
        ym = yb.reshape(bshape + [k, math.prod(rs)])
        x = matmul(xm, ym).reshape(bshape + ls + rs)
        term = "".join(batch + left + right)
    term, x = _einsum_single(term, x, set(rhs))
    if sorted(term) != sorted(rhs):
        raise RuntimeError(f"einsum(): output subscript(s) {set(rhs) - set(term)} do not appear in the inputs")
    return x.permute([term.index(c) for c in rhs]) if term != rhs else x


def _bind():
    Tensor.matmul = lambda self, other: matmul(self, other)
    Tensor.mm = lambda self, mat2: mm(self, mat2)
    Tensor.bmm = lambda self, mat2: bmm(self, mat2)
    Tensor.mv = lambda self, vec: mv(self, vec)
    Tensor.dot = lambda self, other: dot(self, other)
    Tensor.inner = lambda self, other: inner(self, other)
    Tensor.outer = Tensor.ger = lambda self, other: outer(self, other)
    Tensor.addmm = lambda self, mat1, mat2, *, beta=1, alpha=1: addmm(self, mat1, mat2, beta=beta, alpha=alpha)
    Tensor.addmv = lambda self, mat, vec, *, beta=1, alpha=1: addmv(self, mat, vec, beta=beta, alpha=alpha)
    Tensor.baddbmm = lambda self, b1, b2, *, beta=1, alpha=1: baddbmm(self, b1, b2, beta=beta, alpha=alpha)


_bind()

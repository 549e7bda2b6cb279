"""Sizes as polynomials in the graph's dynamic dim (``B`` in the generated C).

A graph exported with a dynamic dim has every size affine in it (docs/format.md, section 6);
strides and element counts are products of sizes, hence polynomials. :class:`Sym` keeps the
integer coefficients ``(c0, c1, c2, ...)`` of ``c0 + c1*B + c2*B**2 + ...``, compares exactly and
prints as a C expression over ``int64_t B``.
"""
from __future__ import annotations


class Sym:
    __slots__ = ("c",)

    def __init__(self, coefs=()):
        if isinstance(coefs, int):
            coefs = (coefs,)
        c = list(int(x) for x in coefs)
        while c and c[-1] == 0:
            c.pop()
        self.c = tuple(c)

    @staticmethod
    def of(x):
        return x if isinstance(x, Sym) else Sym((int(x),))

    @staticmethod
    def affine(coef, offset):
        return Sym((offset, coef))

    @property
    def is_const(self):
        return len(self.c) <= 1

    @property
    def const(self):
        if not self.is_const:
            raise ValueError(f"{self} depends on the dynamic dim")
        return self.c[0] if self.c else 0

    def at(self, b):
        return sum(k * b ** i for i, k in enumerate(self.c))

    def __add__(self, o):
        o = Sym.of(o)
        n = max(len(self.c), len(o.c))
        return Sym(tuple((self.c[i] if i < len(self.c) else 0) + (o.c[i] if i < len(o.c) else 0) for i in range(n)))

    __radd__ = __add__

    def __neg__(self):
        return Sym(tuple(-x for x in self.c))

    def __sub__(self, o):
        return self + (-Sym.of(o))

    def __rsub__(self, o):
        return Sym.of(o) - self

    def __mul__(self, o):
        o = Sym.of(o)
        out = [0] * (len(self.c) + len(o.c))
        for i, a in enumerate(self.c):
            for j, b in enumerate(o.c):
                out[i + j] += a * b
        return Sym(tuple(out))

    __rmul__ = __mul__

    def __eq__(self, o):
        if isinstance(o, int):
            o = Sym(o)
        return isinstance(o, Sym) and self.c == o.c

    def __hash__(self):
        return hash(self.c)

    def c_expr(self):
        if self.is_const:
            return str(self.const)
        terms = []
        for i, k in enumerate(self.c):
            if k == 0:
                continue
            v = "B" if i == 1 else ("*".join(["B"] * i) if i else "")
            terms.append(str(k) if not v else (v if k == 1 else f"{k}*{v}"))
        return "(" + " + ".join(terms).replace("+ -", "- ") + ")"

    def text(self, symbol="B"):
        """``batch``, ``2*batch+1`` ... (the form of docs/format.md's expressions)."""
        if self.is_const:
            return str(self.const)
        e = self.c_expr()[1:-1].replace(" ", "")
        terms = e.replace("-", "+-").split("+")
        terms = [t for t in terms if t]
        terms = terms[1:] + terms[:1] if terms and "B" not in terms[0] else terms
        return "+".join(terms).replace("+-", "-").replace("B", symbol)

    def __repr__(self):
        return f"Sym({self.c_expr()})"


def prod(xs):
    out = Sym(1)
    for x in xs:
        out = out * x
    return out


def contiguous_strides(shape):
    strides, s = [], Sym(1)
    for n in reversed(shape):
        strides.append(s)
        s = s * n
    return tuple(reversed(strides))

"""Shape and dtype rules shared by many records. Every error names the op and says how to fix it."""
from __future__ import annotations

from .. import _dtype as D


def broadcast_shapes(op: str, *shapes) -> tuple:
    """NumPy/torch broadcasting of shapes (trailing dims match, or one of them is 1)."""
    shapes = [s for s in shapes if s is not None]
    if len(shapes) == 1:
        return tuple(shapes[0])
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for s in shapes:
        off = ndim - len(s)
        for i, n in enumerate(s):
            j = off + i
            m = out[j]
            if m == n or n == 1:
                continue
            if m == 1:
                out[j] = n
            else:
                raise RuntimeError(
                    f"{op}: the size of tensor a ({m}) must match the size of tensor b ({n}) at non-singleton "
                    f"dimension {j - ndim} (shapes {', '.join(str(list(x)) for x in shapes)}); "
                    "make the shapes broadcastable, e.g. with unsqueeze/reshape"
                )
    return tuple(out)


def normalize_dim(op: str, dim: int, ndim: int) -> int:
    """A dim in [-ndim, ndim) -> [0, ndim); 0-dim tensors accept dims -1 and 0 as torch does."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim + n if dim < 0 else dim


def normalize_dims(op: str, dim, ndim: int) -> tuple:
    """``None`` -> all dims; int or sequence -> sorted tuple of distinct normalized dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (list, tuple)):
        dims = tuple(normalize_dim(op, d, ndim) for d in dim)
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"{op}: dim {list(dim)} appears multiple times in the list of dims")
        return tuple(sorted(dims)) if ndim > 0 else ()
    d = normalize_dim(op, dim, ndim)
    return (d,) if ndim > 0 else ()


def category_name(d) -> str:
    return {D.bool_: "Bool", D.uint8: "Byte", D.int8: "Char", D.int16: "Short", D.int32: "Int", D.int64: "Long",
            D.float16: "Half", D.float32: "Float", D.float64: "Double"}[d]


def to_float(d):
    """int/bool -> the default float dtype (true division, exp, mean ...)."""
    return d if d.is_floating_point else D.get_default_dtype()

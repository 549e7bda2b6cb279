"""torch-like tensor printing and set_printoptions."""
from __future__ import annotations

import numpy as np

from . import _dtype as D

_OPTS = dict(precision=4, threshold=1000, edgeitems=3, linewidth=80, sci_mode=None)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """torch.set_printoptions: precision, threshold (summarize above), edgeitems, linewidth, profile, sci_mode."""
    if profile == "default":
        _OPTS.update(precision=4, threshold=1000, edgeitems=3, linewidth=80)
    elif profile == "short":
        _OPTS.update(precision=2, threshold=1000, edgeitems=2, linewidth=80)
    elif profile == "full":
        _OPTS.update(precision=4, threshold=2 ** 63 - 1, edgeitems=3, linewidth=80)
    for k, v in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                 ("linewidth", linewidth)):
        if v is not None:
            _OPTS[k] = v
    _OPTS["sci_mode"] = sci_mode


def get_printoptions():
    return dict(_OPTS)


def _float_formatter(arr):
    p = _OPTS["precision"]
    finite = arr[np.isfinite(arr)].astype(np.float64) if arr.size else arr
    sci = _OPTS["sci_mode"]
    if finite.size:
        amax = np.abs(finite).max()
        nz = np.abs(finite[finite != 0])
        amin = nz.min() if nz.size else 0.0
        integral = bool(np.all(finite == np.round(finite)))
    else:
        amax, amin, integral = 0.0, 0.0, True
    if sci is None:
        sci = bool(finite.size) and (amax >= 1e8 or (amin and amax / amin > 1000.0 and not integral) or
                                     (amin and amin < 1e-4 and not integral))
    if sci:
        fmt = lambda v: _special(v) or f"{v:.{p}e}"  # noqa: E731
    elif integral:
        fmt = lambda v: _special(v) or f"{v:.0f}."  # noqa: E731
    else:
        fmt = lambda v: _special(v) or f"{v:.{p}f}"  # noqa: E731
    # torch right-aligns every element to the widest one
    probes = [fmt(v) for v in ((finite.max(), finite.min()) if finite.size else ())]
    if arr.size and not np.all(np.isfinite(arr)):
        probes += [fmt(v) for v in arr[~np.isfinite(arr)][:3]]
    width = max((len(x) for x in probes), default=0)
    return lambda v: fmt(v).rjust(width)


def _special(v):
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def tensor_repr(t, prefix="tensor("):
    arr = t._data
    if t.device.type != "cpu":
        arr = t.cpu()._data
    dt = t.dtype
    kw = {}
    if dt.is_floating_point:
        src = arr.astype(np.float64) if dt is D.float16 else arr
        kw["formatter"] = {"float_kind": _float_formatter(src)}
        arr = src
    elif dt is D.bool_:
        kw["formatter"] = {"bool": lambda v: "True" if v else "False"}
    body = np.array2string(
        arr, separator=", ", prefix=prefix, threshold=_OPTS["threshold"], edgeitems=_OPTS["edgeitems"],
        max_line_width=_OPTS["linewidth"], **kw)
    if arr.size == 0 and arr.ndim <= 1:
        body = "[]"
    suffix = []
    if t.device.type != "cpu":
        suffix.append(f"device='{t.device}'")
    default_shown = {D.get_default_dtype(), D.int64, D.bool_}
    if dt not in default_shown or (arr.size == 0 and dt is not D.get_default_dtype()):
        suffix.append(f"dtype=jitorch.{dt.name}")
    if arr.size == 0 and arr.ndim > 1:
        suffix.insert(0, f"size={tuple(arr.shape)}")
    if t.grad_fn is not None:
        suffix.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffix.append("requires_grad=True")
    return prefix + body + "".join(", " + s for s in suffix) + ")"

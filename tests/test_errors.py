"""Bad input gets a clear error, never a crash: each call below must raise torch's exception type
with a message that names the op (and, where it helps, the shapes/dtypes and a fix) before any
kernel runs. The whole list also runs in a child interpreter, which must exit normally."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import jitorch as t

x23 = t.ones(2, 3)
i3 = t.tensor([0, 1, 2])

# (description, callable, exception type, words the message must contain)
BAD_CALLS = [
    ("broadcast add", lambda: t.ones(2, 3) + t.ones(4), RuntimeError, ["add", "size"]),
    ("broadcast mul 3d", lambda: t.ones(2, 3, 4) * t.ones(2, 5, 4), RuntimeError, ["mul", "match"]),
    ("in-place grows target", lambda: t.ones(3).add_(t.ones(2, 3)), RuntimeError, ["add_", "broadcast"]),
    ("in-place float into int", lambda: t.ones(3, dtype=t.int64).add_(1.5), RuntimeError, ["add_", "cast"]),
    ("in-place into expanded", lambda: t.ones(1).expand(3).add_(1), RuntimeError, ["memory location", "clone"]),
    ("matmul shapes", lambda: t.ones(2, 3) @ t.ones(4, 5), RuntimeError, ["shapes cannot be multiplied", "2x3"]),
    ("matmul 0-d", lambda: t.matmul(t.tensor(1.0), t.ones(2)), RuntimeError, ["matmul", "1D"]),
    ("matmul dtypes", lambda: t.ones(2, 2) @ t.ones(2, 2, dtype=t.float64), RuntimeError, ["dtype", "float64"]),
    ("mm needs 2-d", lambda: t.mm(t.ones(3), t.ones(3, 3)), RuntimeError, ["mm", "2-D"]),
    ("bmm batch", lambda: t.bmm(t.ones(2, 2, 2), t.ones(3, 2, 2)), RuntimeError, ["bmm", "batch"]),
    ("dot sizes", lambda: t.dot(t.ones(3), t.ones(4)), RuntimeError, ["dot"]),
    ("view incompatible", lambda: x23.t().view(6), RuntimeError, ["view", "reshape"]),
    ("view wrong numel", lambda: x23.view(4), RuntimeError, ["view", "invalid for input of size 6"]),
    ("reshape two -1", lambda: x23.reshape(-1, -1), RuntimeError, ["reshape", "inferred"]),
    ("permute repeated", lambda: x23.permute(0, 0), RuntimeError, ["permute"]),
    ("expand mismatch", lambda: t.ones(2, 3).expand(4, 3), RuntimeError, ["expand", "must match"]),
    ("dim out of range", lambda: x23.sum(2), IndexError, ["Dimension out of range"]),
    ("negative dim out of range", lambda: x23.softmax(-3), IndexError, ["Dimension out of range"]),
    ("transpose dim", lambda: x23.transpose(0, 5), IndexError, ["Dimension out of range"]),
    ("squeeze dim", lambda: x23.unsqueeze(4), IndexError, ["Dimension out of range"]),
    ("index out of range", lambda: x23[2], IndexError, ["out of bounds", "size 2"]),
    ("negative index out of range", lambda: x23[:, -4], IndexError, ["out of bounds"]),
    ("too many indices", lambda: x23[0, 0, 0], IndexError, ["too many indices"]),
    ("tensor index out of range", lambda: x23[t.tensor([0, 5])], IndexError, ["out of bounds", "size 2"]),
    ("setitem index out of range", lambda: x23.__setitem__(t.tensor([3]), 1.0), IndexError, ["out of bounds"]),
    ("float index tensor", lambda: x23[t.tensor([0.0])], IndexError, ["long", "bool"]),
    ("mask shape", lambda: x23[t.tensor([True, False, True])], IndexError, ["mask"]),
    ("gather out of range", lambda: t.gather(x23, 1, t.tensor([[0, 3]])), IndexError, ["gather", "out of bounds"]),
    ("gather float index", lambda: t.gather(x23, 1, t.tensor([[0.0]])), IndexError, ["gather", "int64"]),
    ("scatter out of range", lambda: t.zeros(3).scatter(0, t.tensor([7]), t.ones(1)), IndexError, ["scatter"]),
    ("index_select 2-d index", lambda: t.index_select(x23, 0, t.tensor([[0]])), IndexError, ["index_select", "vector"]),
    ("index_add out of range", lambda: t.zeros(3).index_add(0, t.tensor([-4]), t.ones(1)), IndexError, ["index_add"]),
    ("take out of range", lambda: t.take(x23, t.tensor([6])), IndexError, ["take", "out of bounds"]),
    ("select 0-d", lambda: t.tensor(1.0).select(0, 0), IndexError, ["0-dim"]),
    ("narrow past end", lambda: t.ones(4).narrow(0, 2, 3), IndexError, ["narrow"]),
    ("cat dims", lambda: t.cat([t.ones(2, 3), t.ones(2, 4)]), RuntimeError, ["cat", "Sizes of tensors must match"]),
    ("cat ranks", lambda: t.cat([t.ones(2, 3), t.ones(3)]), RuntimeError, ["cat", "same number of dimensions"]),
    ("cat empty list", lambda: t.cat([]), RuntimeError, ["cat", "non-empty"]),
    ("cat not tensors", lambda: t.cat([t.ones(2), [1, 2]]), TypeError, ["cat", "Tensor"]),
    ("stack shapes", lambda: t.stack([t.ones(2), t.ones(3)]), RuntimeError, ["stack", "equal size"]),
    ("split sizes", lambda: t.ones(5).split([2, 2]), RuntimeError, ["split", "sum exactly"]),
    ("chunk zero", lambda: t.ones(5).chunk(0), RuntimeError, ["chunk"]),
    ("bitwise on float", lambda: t.ones(2) & t.ones(2), TypeError, ["bitwise_and", "Float"]),
    ("sub of bools", lambda: t.tensor([True]) - t.tensor([False]), RuntimeError, ["Subtraction", "logical_not"]),
    ("neg of bool", lambda: -t.tensor([True]), RuntimeError, ["neg"]),
    ("floor of bool", lambda: t.floor(t.tensor([True])), RuntimeError, ["floor", "Bool"]),
    ("int division by zero", lambda: t.tensor([4]) // 0, RuntimeError, ["ZeroDivisionError"]),
    ("int remainder by zero tensor", lambda: t.tensor([4, 5]) % t.tensor([1, 0]), RuntimeError, ["ZeroDivisionError"]),
    ("int negative power", lambda: t.tensor([2]) ** -1, RuntimeError, ["negative integer powers"]),
    ("div rounding mode", lambda: t.div(t.ones(2), 2, rounding_mode="up"), RuntimeError, ["rounding_mode"]),
    ("mean of ints", lambda: t.arange(3).mean(), RuntimeError, ["mean", "floating point"]),
    ("max of empty", lambda: t.zeros(0).max(), RuntimeError, ["numel() == 0"]),
    ("amax empty dim", lambda: t.zeros(2, 0).amax(1), IndexError, ["non-zero size"]),
    ("softmax of ints", lambda: t.arange(3).softmax(0), RuntimeError, ["softmax", "dtype"]),
    ("var of ints", lambda: t.arange(3).var(), RuntimeError, ["var", "floating point"]),
    ("topk k too big", lambda: t.ones(3).topk(4), RuntimeError, ["topk", "out of range"]),
    ("kthvalue k", lambda: t.ones(3).kthvalue(0), RuntimeError, ["kthvalue"]),
    ("where condition dtype", lambda: t.where(t.ones(2), t.ones(2), t.zeros(2)), RuntimeError, ["where", "bool"]),
    ("masked_fill value dims", lambda: t.ones(2).masked_fill(t.tensor([True, False]), t.ones(2)), RuntimeError,
     ["masked_fill", "0-dimensional"]),
    ("item of many", lambda: t.ones(2).item(), RuntimeError, ["cannot be converted to Scalar"]),
    ("bool of many", lambda: bool(t.ones(2)), RuntimeError, ["ambiguous"]),
    ("len of 0-d", lambda: len(t.tensor(1.0)), TypeError, ["0-d"]),
    ("numpy with grad", lambda: t.ones(2, requires_grad=True).numpy(), RuntimeError, ["detach"]),
    ("requires_grad on ints", lambda: t.ones(2, dtype=t.int64).requires_grad_(), RuntimeError, ["floating point"]),
    ("unknown dtype", lambda: t.ones(2, dtype="complex64"), TypeError, ["unsupported dtype"]),
    ("from_numpy object", lambda: t.from_numpy(np.array([object()])), TypeError, ["object"]),
    ("from_numpy negative strides", lambda: t.from_numpy(np.arange(4.0)[::-1]), ValueError, ["negative"]),
    ("negative size", lambda: t.zeros(2, -1), RuntimeError, ["negative dimension"]),
    ("arange zero step", lambda: t.arange(0, 5, 0), RuntimeError, ["step"]),
    ("arange wrong direction", lambda: t.arange(0, 5, -1), RuntimeError, ["arange", "step"]),
    ("ragged list", lambda: t.tensor([[1, 2], [3]]), ValueError, ["regular shape"]),
    ("bad device", lambda: t.ones(2).to("tpu"), RuntimeError, ["device"]),
    ("cuda device that does not exist", lambda: t.ones(2).to("cuda:7"), RuntimeError, ["CUDA"]),
    ("randint bounds", lambda: t.randint(3, 3, (2,)), RuntimeError, ["random_", "from"]),
    ("bernoulli p", lambda: t.bernoulli(t.tensor([2.0])), RuntimeError, ["bernoulli"]),
    ("multinomial negative", lambda: t.multinomial(t.tensor([1.0, -1.0]), 1), RuntimeError, ["multinomial"]),
    ("as_strided out of storage", lambda: t.ones(4).as_strided((3,), (2,)), RuntimeError, ["storage"]),
    ("tril of 1-d", lambda: t.tril(t.ones(3)), RuntimeError, ["tril", "2 dimensions"]),
    ("repeat fewer dims", lambda: t.ones(2, 2).repeat(2), RuntimeError, ["repeat dims"]),
    ("repeat_interleave negative", lambda: t.ones(2).repeat_interleave(t.tensor([1, -1])), RuntimeError, ["negative"]),
    ("einsum operands", lambda: t.einsum("ij,jk->ik", t.ones(2, 2)), RuntimeError, ["einsum", "operands"]),
    ("clamp without bounds", lambda: t.clamp(t.ones(2)), RuntimeError, ["clamp", "min", "max"]),
]


@pytest.mark.parametrize("desc,fn,exc,words", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_call_raises_clear_error(desc, fn, exc, words):
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    for w in words:
        assert w in msg, f"{desc}: message {msg!r} should mention {w!r}"


def test_at_least_forty_bad_calls():
    assert len(BAD_CALLS) >= 40


def test_bad_calls_never_crash_the_interpreter():
    # numba does not check bounds: an index that reached a kernel could segfault. Run every bad
    # call in a fresh interpreter and require a normal exit.
    code = textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        import tests.test_errors as m
        n = 0
        for desc, fn, exc, words in m.BAD_CALLS:
            try:
                fn()
            except Exception:
                n += 1
        print("raised", n)
    """) % (str(__import__("pathlib").Path(__file__).resolve().parents[1]),)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"child interpreter died (rc={r.returncode}): {r.stderr[-2000:]}"
    assert f"raised {len(BAD_CALLS)}" in r.stdout


def test_module_level_view_functions_match_methods():
    x = t.arange(24).reshape(2, 3, 4)
    assert t.flatten(x, 1).shape == (2, 12)
    assert t.transpose(x, 0, 2).shape == (4, 3, 2)
    assert t.movedim(x, 0, -1).tolist() == np.moveaxis(np.arange(24).reshape(2, 3, 4), 0, -1).tolist()
    assert [p.shape for p in t.split(x, [1, 2], 1)] == [(2, 1, 4), (2, 2, 4)]
    assert t.broadcast_shapes((3, 1), (4,)) == (3, 4)
    assert t.unflatten(t.flatten(x), 0, (4, 6)).shape == (4, 6)

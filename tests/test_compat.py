"""Small torch names: constants, legacy tensor types, torch.<op>_, matmul precision, torch.version."""
import math

import numpy as np
import pytest

import jitorch


def test_constants_and_version():
    assert jitorch.pi == math.pi and jitorch.e == math.e and jitorch.inf == math.inf and math.isnan(jitorch.nan)
    assert jitorch.version.__version__ == jitorch.__version__ and jitorch.version.cuda is None


@pytest.mark.parametrize("name,dtype", [("FloatTensor", jitorch.float32), ("DoubleTensor", jitorch.float64),
                                        ("LongTensor", jitorch.int64), ("IntTensor", jitorch.int32),
                                        ("ByteTensor", jitorch.uint8), ("BoolTensor", jitorch.bool),
                                        ("HalfTensor", jitorch.float16)])
def test_legacy_tensor_types(name, dtype):
    cls = getattr(jitorch, name)
    t = cls([1, 0, 1])
    assert t.dtype == dtype and t.tolist() == [v for v in ([1, 0, 1] if dtype != jitorch.bool else [True, False, True])]
    assert isinstance(t, cls) and isinstance(t, jitorch.Tensor)
    assert not isinstance(t.to(jitorch.float64 if dtype != jitorch.float64 else jitorch.float32), cls)
    u = cls(2, 3)
    assert u.shape == (2, 3) and u.dtype == dtype
    assert cls(jitorch.Size([4])).shape == (4,) and cls().shape == (0,)
    assert cls(np.array([[2, 3]])).shape == (1, 2)
    with pytest.raises(TypeError):
        cls(2, "x")
    with pytest.raises(RuntimeError):
        cls(-1)


def test_inplace_functions():
    x = jitorch.tensor([0.5, -1.0, 2.0])
    ref = np.exp(x.numpy().copy())
    out = jitorch.exp_(x)
    assert out is x and np.allclose(x.numpy(), ref)
    y = jitorch.tensor([-1.0, 2.0])
    jitorch.relu_(y)
    assert y.tolist() == [0.0, 2.0]
    z = jitorch.tensor([0.1, 5.0])
    jitorch.clamp_(z, max=1.0)
    assert z.tolist() == pytest.approx([0.1, 1.0])
    assert jitorch.sin_ and jitorch.sigmoid_ and jitorch.zero_
    with pytest.raises(TypeError, match="must be Tensor"):
        jitorch.exp_([1.0])


def test_matmul_precision():
    before = jitorch.get_float32_matmul_precision()
    try:
        jitorch.set_float32_matmul_precision("high")
        assert jitorch.get_float32_matmul_precision() == "high"
        with pytest.raises(RuntimeError, match="invalid precision"):
            jitorch.set_float32_matmul_precision("fast")
    finally:
        jitorch.set_float32_matmul_precision(before)

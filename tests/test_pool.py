"""The CPU caching allocator for large arrays (jitorch._pool)."""
import gc
import os
import subprocess
import sys

import numpy as np
import pytest

import jitorch
from jitorch import _pool

pytestmark = pytest.mark.skipif(not _pool.ENABLED, reason="JITORCH_NO_POOL is set")

BIG = _pool.MIN_BYTES  # bytes: the smallest request the pool serves


def test_small_requests_are_plain_numpy():
    a = _pool.empty((3, 5), np.float32)
    assert a.base is None and a.shape == (3, 5) and a.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64, np.uint8, np.bool_])
def test_big_arrays_behave_like_numpy(dtype):
    itemsize = np.dtype(dtype).itemsize
    shape = (2, BIG // itemsize // 2 + 3)  # not a multiple of the 2 MiB grain
    a = _pool.empty(shape, dtype)
    assert a.shape == shape and a.dtype == dtype
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
    a[...] = 1
    a[1, -1] = 0
    ref = np.ones(shape, dtype)
    ref[1, -1] = 0
    assert np.array_equal(a, ref)


def test_buffer_returns_only_after_every_view_dies():
    gc.collect()
    _pool.empty_cache()
    a = _pool.empty((BIG // 4,), np.float32)
    ptr = a.ctypes.data
    view = a[10:20]
    del a
    gc.collect()
    assert _pool.stats()["free_buffers"] == 0, "a live view must keep the buffer out of the pool"
    view[:] = 7.0  # still valid memory
    del view
    gc.collect()
    assert _pool.stats()["free_buffers"] == 1
    b = _pool.empty((BIG // 4,), np.float32)
    assert b.ctypes.data == ptr, "the same size is served from the pool"
    c = _pool.empty((BIG // 4,), np.float32)
    assert c.ctypes.data != b.ctypes.data, "a buffer in use is never handed out twice"
    del b, c
    _pool.empty_cache()
    assert _pool.stats()["free_bytes"] == 0


def test_cap_drops_the_oldest(monkeypatch):
    _pool.empty_cache()
    monkeypatch.setattr(_pool, "MAX_BYTES", BIG + (2 << 20))
    a = _pool.empty((BIG,), np.uint8)
    b = _pool.empty((BIG + (2 << 20),), np.uint8)
    del a
    gc.collect()
    assert _pool.stats()["free_bytes"] == BIG
    del b
    gc.collect()
    st = _pool.stats()
    assert st["free_bytes"] <= _pool.MAX_BYTES and st["free_buffers"] == 1
    _pool.empty_cache()


def test_compiled_executor_uses_the_pool_for_big_buffers():
    f = jitorch.compile(lambda x: jitorch.tanh(x * 1.5 - 0.25) * jitorch.sigmoid(x))
    x = jitorch.randn(BIG // 4)
    y = f(x)
    assert "_pool_empty" in f.code
    xn = x.numpy().astype(np.float64)
    ref = np.tanh(xn * 1.5 - 0.25) / (1 + np.exp(-xn))
    np.testing.assert_allclose(y.numpy(), ref, rtol=2e-6, atol=2e-6)
    small = jitorch.compile(lambda x: jitorch.tanh(x * 1.5 - 0.25) * jitorch.sigmoid(x))
    small(jitorch.randn(100))
    assert "_pool_empty" not in small.code


def test_switches_read_from_the_environment():
    code = "from jitorch import _pool; print(_pool.ENABLED, _pool.MIN_BYTES, _pool.MAX_BYTES)"
    env = {**os.environ, "JITORCH_NO_POOL": "1", "JITORCH_POOL_MIN_BYTES": "1000", "JITORCH_POOL_MAX_BYTES": "5000"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "1000", "5000"]
    env["JITORCH_POOL_MIN_BYTES"] = "lots"
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert p.returncode != 0 and "JITORCH_POOL_MIN_BYTES" in p.stderr


def test_eager_outputs_use_the_pool_and_keep_storage_semantics():
    gc.collect()
    _pool.empty_cache()
    n = BIG // 4
    x = jitorch.arange(n, dtype=jitorch.float32)
    y = x + 1  # same-shape fast path: a pooled output
    assert type(y.numpy().base) is _pool._Holder
    v = y[10:]
    assert v.storage_offset() == 10
    s = v.as_strided((4,), (3,), 5)  # offset counted from the storage's start, as in torch
    np.testing.assert_array_equal(s.numpy(), np.array([6, 9, 12, 15], np.float32))
    with pytest.raises(RuntimeError, match="storage has only"):
        y.as_strided((2,), (1,), n - 1)  # one element past the end of the exact storage
    z = jitorch.exp(x[:8])  # small: plain NumPy
    assert z.numpy().base is None
    u = (x * 2).sum()
    assert float(u) == pytest.approx(float(n) * (n - 1), rel=1e-5)

"""The thread policy (jitorch/_threads.py) and the allocator setting (jitorch/_malloc.py)."""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

import jitorch
from jitorch import _malloc, _threads
from jitorch.ops.registry import OPS


@pytest.fixture
def restore_threads():
    n = jitorch.get_num_threads()
    dyn = _threads.get_dynamic()
    _threads.set_dynamic(False)  # counts below must not depend on how busy the machine is
    yield
    _threads.set_dynamic(dyn)
    jitorch.set_num_threads(n)


def _blas_threads():
    return _threads._blas.get() if _threads._blas.get is not None else None


def test_set_num_threads_drives_numba_and_blas(restore_threads):
    jitorch.set_num_threads(1)
    assert jitorch.get_num_threads() == 1
    assert numba.get_num_threads() == 1
    if _threads._blas.set is not None:
        assert _blas_threads() == 1
    top = numba.config.NUMBA_NUM_THREADS
    jitorch.set_num_threads(top)
    assert jitorch.get_num_threads() == top
    assert numba.get_num_threads() == top


def test_set_num_threads_above_numba_pool_caps_numba_only(restore_threads):
    top = numba.config.NUMBA_NUM_THREADS
    jitorch.set_num_threads(top + 3)
    assert jitorch.get_num_threads() == top + 3   # torch returns what was set
    assert numba.get_num_threads() == top         # numba's pool cannot grow after start


@pytest.mark.parametrize("bad, exc", [(0, RuntimeError), (-2, RuntimeError), (1.5, TypeError), (True, TypeError),
                                      ("2", TypeError)])
def test_set_num_threads_rejects_bad_values(bad, exc, restore_threads):
    before = jitorch.get_num_threads()
    with pytest.raises(exc):
        jitorch.set_num_threads(bad)
    assert jitorch.get_num_threads() == before


def test_interop_threads_are_remembered():
    before = jitorch.get_num_interop_threads()
    try:
        jitorch.set_num_interop_threads(3)
        assert jitorch.get_num_interop_threads() == 3
        with pytest.raises(RuntimeError):
            jitorch.set_num_interop_threads(0)
    finally:
        jitorch.set_num_interop_threads(before)


@pytest.mark.skipif(_threads._blas.set is None, reason="no OpenBLAS thread switch in this NumPy")
def test_products_pick_blas_threads_by_size(restore_threads):
    jitorch.set_num_threads(2)
    small = jitorch.randn(32, 32)
    small @ small                      # 65 kFLOP (above kernels/small.py's BLAS-free products): one thread
    assert _blas_threads() == 1 and _threads._blas.current == 1
    big = jitorch.randn(300, 300)      # 54 MFLOP: the policy's count
    big @ big
    assert _blas_threads() == min(2, _threads._blas.max) == _threads._blas.current
    assert _threads.blas_threads_for(_threads.BLAS_PARALLEL_FLOPS - 1) == 1
    jitorch.set_num_threads(1)
    big @ big
    assert _blas_threads() == 1


@pytest.mark.skipif(_threads._blas.set is None, reason="no OpenBLAS thread switch in this NumPy")
def test_conv_products_use_the_policy(restore_threads, monkeypatch):
    from jitorch.ops import nn as nn_ops
    jitorch.set_num_threads(2)
    x = jitorch.randn(1, 1, 6, 6)
    w = jitorch.randn(2, 1, 3, 3)
    jitorch.nn.functional.conv2d(x, w)   # a tiny product: one thread
    assert _blas_threads() == 1
    x = jitorch.randn(16, 16, 32, 32)
    w = jitorch.randn(32, 16, 3, 3)
    ref = OPS["convolution"].reference(x.numpy(), w.numpy(), stride=(1, 1), padding=(0, 0),
                                       dilation=(1, 1), groups=1)
    # with cblas_sgemm found and several numba threads, the products run one image at a time on numba's
    # threads: the BLAS on one thread
    import numba
    y = jitorch.nn.functional.conv2d(x, w)   # 2*32*144*14400 = 133 MFLOP
    if _threads.cblas_gemm(np.float32) is not None and numba.get_num_threads() > 1:
        assert _blas_threads() == 1
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-4, atol=1e-4)
    # without it, NumPy's batched product follows the flop policy
    monkeypatch.setattr(nn_ops, "_cblas_gemm", lambda dtype: None)
    y = jitorch.nn.functional.conv2d(x, w)
    assert _blas_threads() == min(2, _threads._blas.max)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-4, atol=1e-4)


def test_results_do_not_depend_on_thread_count(restore_threads):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 200)).astype(np.float32)
    b = rng.standard_normal((200, 100)).astype(np.float32)
    outs = []
    for n in (1, 2):
        jitorch.set_num_threads(n)
        outs.append((jitorch.from_numpy(a) @ jitorch.from_numpy(b)).numpy())
    np.testing.assert_allclose(outs[0], a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-5)


def test_others_cores_from_samples():
    # (busy, total, own) jiffies; 2 cpus, 100 jiffies elapsed in all
    assert _threads.others_cores((0, 0, 0), (100, 100, 100), 2) == 0.0          # all busy time is ours
    assert _threads.others_cores((0, 0, 0), (100, 100, 0), 2) == 2.0            # others used both cores
    assert _threads.others_cores((10, 50, 5), (60, 150, 30), 2) == pytest.approx(0.5)
    assert _threads.others_cores((0, 100, 0), (0, 100, 0), 2) is None           # no time elapsed


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux only")
def test_samples_of_this_machine_are_consistent():
    a = _threads._sample()
    x = np.ones(1 << 20)
    for _ in range(50):  # spend some CPU time of our own
        x = x * 1.0000001
    b = _threads._sample()
    assert 0 <= a[0] <= a[1] and 0 <= b[0] <= b[1]
    assert b[1] >= a[1] and b[0] >= a[0] and b[2] >= a[2]
    busy = _threads.others_cores(a, b, _threads._dynamic.ncpu)
    assert busy is None or 0.0 <= busy <= _threads._dynamic.ncpu


def test_dynamic_cap_follows_other_processes(monkeypatch, restore_threads):
    samples = iter([(0, 0, 0), (190, 200, 10), (390, 400, 10), (400, 600, 10)])
    monkeypatch.setattr(_threads, "_sample", lambda: next(samples))
    monkeypatch.setattr(_threads._dynamic, "ncpu", 2)
    monkeypatch.setattr(_threads._dynamic, "last", None)
    monkeypatch.setattr(_threads, "DYNAMIC_INTERVAL", 0.0)
    jitorch.set_num_threads(2)
    _threads.set_dynamic(True)
    assert _threads._dynamic.cap() == 2            # first sample: nothing known yet
    assert _threads._dynamic.cap() == 1            # others used 1.8 cores
    assert numba.get_num_threads() == 1            # numba's kernels follow
    assert _threads.blas_threads_for(10 ** 12) == 1  # looks again: 2.0 cores busy (ours: 0)
    assert _threads._dynamic.cap() == 2            # then an idle machine (0.1 of a core)
    assert numba.get_num_threads() == 2
    _threads.set_dynamic(False)
    assert _threads.blas_threads_for(10 ** 12) == min(2, _threads._blas.max)


def test_gomp_spincount_is_set_unless_the_user_chose():
    out = _run("import os, jitorch; print(os.environ.get('GOMP_SPINCOUNT'))")
    assert out == _threads.GOMP_SPINCOUNT
    assert _run("import os, jitorch; print(os.environ.get('GOMP_SPINCOUNT'))", GOMP_SPINCOUNT="77") == "77"
    assert _run("import os, jitorch; print(os.environ.get('GOMP_SPINCOUNT'))", OMP_WAIT_POLICY="active") == "None"


def _run(code, **env):
    e = dict(os.environ)
    e.pop("JITORCH_NO_MALLOPT", None)
    for k in ("JITORCH_NO_BLAS_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "JITORCH_NO_THREAD_POLICY"):
        e.pop(k, None)
    e.update(env)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=e,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_blas_switch_can_be_disabled():
    out = _run("""
        import jitorch
        from jitorch import _threads
        print(_threads.blas_info()['library'])
    """, JITORCH_NO_BLAS_THREADS="1")
    assert out == "None"


# --------------------------------------------------------------------------------------------- mallopt

_FAULTS = """
    import resource, numpy as np
    import jitorch
    from jitorch import _malloc
    def faults(n_arrays=6, mib=4):
        # allocate, touch and free a step's worth of multi-MiB arrays; count page faults of the repeat
        for _ in range(3):
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            arrs = [np.ones(mib << 18, np.float32) for _ in range(n_arrays)]
            del arrs
            f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
        return f
    print(_malloc.STATE['applied'], faults())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_mallopt_is_applied_and_stops_page_faults():
    if not _malloc.STATE["applied"] and "glibc" not in _malloc.STATE["reason"]:
        pytest.skip(f"mallopt not applied here: {_malloc.STATE['reason']}")
    applied, faults = _run(_FAULTS).split()
    assert applied == "True"
    # 24 MiB touched again: 6144 pages if each were re-mapped; reused heap memory faults (almost) never
    assert int(faults) < 200, faults


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_mallopt_opt_out():
    applied, faults = _run(_FAULTS, JITORCH_NO_MALLOPT="1").split()
    assert applied == "False"
    out = _run("from jitorch import _malloc; print(_malloc.STATE['reason'])", JITORCH_NO_MALLOPT="1")
    assert "JITORCH_NO_MALLOPT" in out


def test_mallopt_state_describes_what_happened():
    st = _malloc.STATE
    if st["applied"]:
        assert st["mmap_threshold"] == _malloc.MMAP_THRESHOLD and st["trim_threshold"] == _malloc.TRIM_THRESHOLD
    else:
        assert st["reason"]

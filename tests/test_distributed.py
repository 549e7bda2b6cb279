"""jitorch.distributed, DistributedDataParallel, DistributedSampler and DataParallel.

The multi-process cases run ``mpiexec -n 2 python tests/_dist_worker.py CASE`` in a subprocess with
a timeout; they skip when mpi4py or mpiexec is missing (``pip install 'jitorch[distributed]'``).
The sampler, DataParallel and the no-MPI behaviour are tested in process.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

import jitorch
import jitorch.distributed as dist
from jitorch import nn
from jitorch.utils.data.distributed import DistributedSampler

# one xdist worker runs the MPI jobs one after another (each takes two or three processes)
pytestmark = pytest.mark.xdist_group("mpi")

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "_dist_worker.py"


def _mpiexec():
    here = pathlib.Path(sys.executable).parent
    for name in ("mpiexec", "mpirun"):
        p = here / name
        if p.exists():
            return str(p)
    return shutil.which("mpiexec") or shutil.which("mpirun")


def _env():
    env = dict(os.environ)
    env.update(NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        env.pop(k, None)
    return env


def _run(case, n=2, timeout=240):
    cmd = [_mpiexec(), "-n", str(n), sys.executable, str(WORKER), case]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=str(ROOT))
    return p, time.monotonic() - t0


@pytest.fixture(scope="module")
def mpi():
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install 'jitorch[distributed]')")
    if _mpiexec() is None:
        pytest.skip("no mpiexec (pip install 'jitorch[distributed]' brings MPICH's)")
    probe = subprocess.run([_mpiexec(), "-n", "2", sys.executable, "-c",
                            "from mpi4py import MPI; assert MPI.COMM_WORLD.Get_size() == 2"],
                           capture_output=True, text=True, timeout=120, env=_env())
    if probe.returncode != 0:
        pytest.skip(f"mpiexec cannot start 2 ranks here: {probe.stderr[-500:]}")


def _ok(case, n=2):
    p, _ = _run(case, n)
    assert p.returncode == 0 and f"{case} ok" in p.stdout, f"rc={p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"


# ----------------------------------------------------------------------------- under mpiexec


def test_collectives_against_numpy(mpi):
    _ok("collectives")


def test_collectives_three_ranks(mpi):
    _ok("collectives", n=3)


def test_ddp_matches_single_process_training(mpi):
    _ok("ddp")


def test_ddp_buckets_in_place_and_grad_views(mpi):
    _ok("ddp_views")


@pytest.mark.slow
def test_ddp_buckets_three_ranks(mpi):
    _ok("ddp_views", n=3)


def test_ddp_on_one_rank_sends_nothing(mpi):
    _ok("ddp_one_rank", n=1)


def test_distributed_sampler_with_dataloader(mpi):
    _ok("sampler_ddp")


def test_a_rank_that_raises_ends_the_job(mpi):
    p, took = _run("raise", timeout=120)
    assert p.returncode != 0
    assert "boom on rank 1" in p.stderr
    assert took < 60, f"the job took {took:.0f}s to die"


def test_a_rank_that_exits_ends_the_job(mpi):
    p, took = _run("exit", timeout=120)
    assert p.returncode != 0
    assert "sys.exit(3)" in p.stderr
    assert took < 60, f"the job took {took:.0f}s to die"


def test_a_missing_rank_times_out(mpi):
    p, took = _run("timeout", timeout=120)
    assert p.returncode != 0
    assert "timed out" in p.stderr, p.stderr[-3000:]
    assert took < 60, f"the job took {took:.0f}s to die"


@pytest.mark.slow
def test_ddp_train_example_and_its_benchmark_mode(mpi):
    """examples/ddp_train.py trains (ranks end with identical weights: the script asserts it) and its
    --bench --interleave mode, which benchmarks/ddp_scaling.py parses, reports the three phases."""
    import json
    ex = str(ROOT / "examples" / "ddp_train.py")
    p = subprocess.run([_mpiexec(), "-n", "2", sys.executable, ex, "--epochs", "2", "--synthetic"],
                       capture_output=True, text=True, timeout=240, env=_env(), cwd=str(ROOT))
    assert p.returncode == 0 and "throughput (epochs 2..2)" in p.stdout, p.stdout[-2000:] + p.stderr[-3000:]
    p = subprocess.run([_mpiexec(), "-n", "2", sys.executable, ex, "--bench", "--interleave", "--rounds", "2",
                        "--steps", "3", "--warmup", "1", "--batch-size", "32"],
                       capture_output=True, text=True, timeout=240, env=_env(), cwd=str(ROOT))
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("BENCH ")]
    assert p.returncode == 0 and len(line) == 1, p.stdout[-2000:] + p.stderr[-3000:]
    rec = json.loads(line[0][len("BENCH "):])
    assert rec["ranks"] == 2 and rec["batch"] == 32 and rec["steps"] == 3
    assert set(rec["phases"]) == {"solo", "ddp", "independent"}
    for ph, rounds in rec["phases"].items():
        assert len(rounds) == 2
        for r in rounds:
            assert r["samples_per_s"] > 0 and len(r["s"]) == (1 if ph == "solo" else 2)
            assert all(0 <= w <= s for w, s in zip(r["wait_s"], r["s"]))
            if ph != "ddp":
                assert r["wait_s"] == [0.0] * len(r["s"]), "no communication outside the DDP phase"


# ----------------------------------------------------------------------------- in process, no MPI


def test_import_does_not_import_mpi4py():
    code = "import sys, jitorch, jitorch.distributed, jitorch.nn.parallel; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_uninitialized_state():
    assert dist.is_available()
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(ValueError, match="init_process_group"):
        dist.all_reduce(jitorch.ones(2))
    with pytest.raises(RuntimeError, match="CUDA"):
        dist.init_process_group("nccl")
    with pytest.raises(ValueError, match="Invalid backend"):
        dist.init_process_group("carrier-pigeon")
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))
    with pytest.raises(ValueError, match="init_process_group"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
    assert repr(dist.ReduceOp.SUM) == "<RedOpType.SUM>"
    assert nn.DistributedDataParallel is nn.parallel.DistributedDataParallel


def test_data_parallel_runs_the_module(monkeypatch):
    """Without a cuda device (no GPU, no simulator) DataParallel calls the module, as torch does."""
    dp_mod = importlib.import_module("jitorch.nn.parallel.data_parallel")  # the module, not the function
    monkeypatch.setattr(dp_mod, "_available_devices", lambda: [])
    jitorch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    dp = nn.DataParallel(m, device_ids=[0, 1])
    assert dp.module is m and dp.device_ids == []
    x = jitorch.randn(5, 4)
    assert (dp(x) == m(x)).all()
    assert list(dp.state_dict()) == ["module.0.weight", "module.0.bias"]
    y = dp(x).sum()
    y.backward()
    assert m[0].weight.grad is not None
    assert (nn.parallel.data_parallel(m, x) == m(x)).all()


def test_data_parallel_on_one_cuda_device():
    if not jitorch.cuda.is_available():
        pytest.skip("no cuda device and no simulator")
    jitorch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    x = jitorch.randn(5, 4)
    ref = m(x)
    with pytest.raises(RuntimeError, match="parameters and buffers on device cuda:0"):
        nn.DataParallel(m)(x)
    with pytest.raises(RuntimeError, match="invalid device id 1"):
        nn.DataParallel(m, device_ids=[0, 1])
    dp = nn.DataParallel(m.to("cuda"))
    assert dp.device_ids == [0] and dp.output_device == 0
    out = dp(x)  # a cpu input is scattered to cuda:0
    assert out.device.type == "cuda"
    assert jitorch.allclose(out.cpu(), ref, atol=1e-6)
    out.sum().backward()
    assert m[0].weight.grad is not None and m[0].weight.grad.device.type == "cuda"
    assert jitorch.allclose(nn.parallel.data_parallel(m, {"unused": 1} and x).cpu(), ref, atol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 5, 10, 11, 17])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_partition_matches_torch(n, replicas, drop_last):
    torch = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchDS
    data = list(range(n))
    shards = []
    for r in range(replicas):
        ours = DistributedSampler(data, replicas, r, shuffle=False, drop_last=drop_last)
        ref = TorchDS(data, replicas, r, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(ref) and len(ours) == len(ref) == ours.num_samples
        assert ours.total_size == ref.total_size
        # shuffled: torch's partition of jitorch's permutation
        s = DistributedSampler(data, replicas, r, shuffle=True, seed=4, drop_last=drop_last)
        s.set_epoch(3)
        g = jitorch.Generator()
        g.manual_seed(4 + 3)
        perm = jitorch.randperm(n, generator=g).tolist()
        assert list(s) == [perm[i] for i in ref]
        shards.append(list(s))
    flat = [i for sh in shards for i in sh]
    if drop_last:
        assert len(set(flat)) == len(flat) == (n // replicas) * replicas
    else:
        assert set(flat) == set(data)


def test_distributed_sampler_epochs_and_errors():
    data = list(range(20))
    a = DistributedSampler(data, 2, 0, seed=1)
    first = list(a)
    assert list(a) == first                      # same epoch: same order
    a.set_epoch(1)
    assert list(a) != first                      # new epoch: new order
    b = DistributedSampler(data, 2, 1, seed=1)
    b.set_epoch(1)
    assert sorted(list(a) + list(b)) == data     # the two ranks partition the data
    with pytest.raises(ValueError, match="Invalid rank"):
        DistributedSampler(data, 2, 2)
    from jitorch.utils.data import DistributedSampler as Lazy
    assert Lazy is DistributedSampler

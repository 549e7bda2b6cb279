"""Data-parallel training with jitorch.distributed (MPI) and DistributedDataParallel.

    mpiexec -n 2 .venv/bin/python examples/ddp_train.py [--epochs 8] [--batch-size 64] [--synthetic]
    mpiexec -n 2 .venv/bin/python examples/ddp_train.py --bench --steps 100   # steady-state samples/s

Every rank builds the same model (DDP broadcasts rank 0's weights anyway), reads its own shard of
each epoch through DistributedSampler, and DDP averages the gradients across ranks during
backward, so all ranks take identical optimizer steps: with a global batch of B, each of N ranks
computes on B/N samples. Data: scikit-learn's bundled 8x8 digits (a small CNN) when scikit-learn
is installed, else a synthetic classification problem (an MLP); ``--synthetic`` forces the latter.

Several machines: list them in a hostfile and launch with MPICH's Hydra,
``mpiexec -f hosts -n 4 .venv/bin/python examples/ddp_train.py`` (see docs/distributed.md).

Needs ``pip install 'jitorch[distributed]'`` (mpi4py and the mpich wheel, which provides mpiexec).
Plain PyTorch code apart from the ``import jitorch as torch`` line and backend="mpi".
"""
from __future__ import annotations

import argparse
import os
import time

# one BLAS/numba thread per rank: the ranks are the parallelism (set before numpy/numba load)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import jitorch as torch  # noqa: E402
import jitorch.distributed as dist  # noqa: E402
import jitorch.nn as nn  # noqa: E402
import jitorch.nn.functional as F  # noqa: E402
from jitorch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402
from jitorch.utils.data import DataLoader, TensorDataset  # noqa: E402
from jitorch.utils.data.distributed import DistributedSampler  # noqa: E402


class DigitsCNN(nn.Module):
    """1x8x8 -> conv 3x3 (16) -> pool -> conv 3x3 (32) -> pool -> linear 128 -> 64 -> 10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 2 * 2, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.flatten(1)
        return self.fc2(F.relu(self.fc1(x)))


def mlp(d_in, n_cls):
    return nn.Sequential(nn.Linear(d_in, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, n_cls))


def load_data(seed, synthetic):
    """(train x, train y, test x, test y, model factory, name): identical on every rank."""
    if not synthetic:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            synthetic = True
    rng = np.random.default_rng(seed)
    if synthetic:
        n, d, k = 4096, 32, 8
        centers = rng.normal(size=(k, d)).astype(np.float32) * 1.5
        y = rng.integers(0, k, size=n).astype(np.int64)
        x = (centers[y] + rng.normal(size=(n, d)).astype(np.float32)).astype(np.float32)
        make, name = (lambda: mlp(d, k)), "synthetic blobs (MLP)"
    else:
        dd = load_digits()
        x = (dd.images.astype(np.float32) / 16.0)[:, None, :, :]
        y = dd.target.astype(np.int64)
        make, name = DigitsCNN, "sklearn digits (CNN)"
    perm = rng.permutation(len(y))
    n_test = len(y) // 5
    te, tr = perm[:n_test], perm[n_test:]
    mean, std = x[tr].mean(), x[tr].std()
    x = ((x - mean) / std).astype(np.float32)
    return (torch.from_numpy(x[tr]), torch.from_numpy(y[tr]), torch.from_numpy(x[te]), torch.from_numpy(y[te]),
            make, name)


def _batches(loader, sampler, epoch=0):
    """(epoch, batch) pairs over as many epochs as the caller takes (set_epoch before each)."""
    while True:
        sampler.set_epoch(epoch)
        for b in loader:
            yield epoch, b
        epoch += 1


class _Trainer:
    """One training setup of the benchmark: DDP over ``pg`` (None: the world), this rank's shard
    ``me`` of ``shards``, ``batch`` samples per step on this rank."""

    def __init__(self, args, make, xtr, ytr, pg, shards, me, batch):
        torch.manual_seed(args.seed)
        self.model = DDP(make(), process_group=pg)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=args.lr, momentum=0.9)
        self.loss_fn = nn.CrossEntropyLoss()
        sampler = DistributedSampler(TensorDataset(xtr, ytr), num_replicas=shards, rank=me, shuffle=True,
                                     seed=args.seed, drop_last=True)
        loader = DataLoader(TensorDataset(xtr, ytr), batch_size=batch, sampler=sampler, drop_last=True)
        self.it = _batches(loader, sampler)
        self.batch = batch

    def step(self):
        _, (xb, yb) = next(self.it)
        self.opt.zero_grad()
        loss = self.loss_fn(self.model(xb), yb)
        loss.backward()                 # DDP all-reduces the gradients here
        self.opt.step()
        return loss

    def timed(self, steps, prof=None):
        """{s, cpu_s, wait_s, wait_cpu_s} of ``steps`` steps: wall and CPU seconds, and how much of
        each went to waiting for the gradient all-reduce."""
        red = self.model.reducer
        w0, wc0 = red.wait_s, red.wait_cpu_s
        if prof is not None:
            prof.enable()
        c0, t0 = time.thread_time(), time.perf_counter()
        for _ in range(steps):
            self.step()
        dt, dc = time.perf_counter() - t0, time.thread_time() - c0
        if prof is not None:
            prof.disable()
        return {"s": dt, "cpu_s": dc, "wait_s": red.wait_s - w0, "wait_cpu_s": red.wait_cpu_s - wc0}


def _bench(args, make, xtr, ytr, rank, world):
    """Steady-state training throughput. Every trainer first runs ``--warmup`` untimed steps (numba
    compiles in the first), then ``--steps`` timed steps run across epoch boundaries (the sampler's
    per-epoch permutation and the DataLoader's iterator are part of training and are timed;
    evaluation and printing are not). Every timed region starts after a barrier.

    Phases (one each, or ``--rounds R`` rounds of all three in one job with ``--interleave``):

    - ``ddp``: the ranks train one model together, global batch B (B/world per rank);
    - ``solo``: rank 0 trains alone at batch B (a process group of one: the 1-rank configuration)
      while the other ranks wait in a barrier (sleeping between polls);
    - ``independent``: every rank trains a model of its own at batch B (groups of one, no
      communication), and keeps training after its timed steps until every rank has finished its
      own, so all timed regions run while every other rank is busy: the machine's ceiling.

    Prints one line ``BENCH {json}`` on rank 0 with each phase's samples/s per round.
    """
    import cProfile
    import json
    B = args.batch_size
    groups = [dist.new_group([r]) for r in range(world)]
    phases = ["solo", "ddp", "independent"] if args.interleave else \
        (["independent"] if args.independent else ["ddp"] if world > 1 else ["solo"])
    trainers = {}
    for ph in phases:
        if ph == "ddp":
            trainers[ph] = _Trainer(args, make, xtr, ytr, None, world, rank, B // world)
        elif ph == "independent" or rank == 0:
            # solo and independent: the same 1-rank setup on this rank (one model serves both)
            t = trainers.get("solo") or trainers.get("independent") or \
                _Trainer(args, make, xtr, ytr, groups[rank], 1, 0, B)
            trainers[ph] = t
    for t in {id(t): t for t in trainers.values()}.values():
        for _ in range(args.warmup):
            t.step()
    prof = cProfile.Profile() if args.profile else None
    res = {ph: [] for ph in phases}
    for rnd in range(args.rounds if args.interleave else 1):
        order = phases if rnd % 2 == 0 else phases[::-1]
        for ph in order:
            dist.barrier()
            t = trainers.get(ph)
            if ph == "solo":
                rec = t.timed(args.steps) if rank == 0 else None
                dist.barrier()
            else:
                rec = t.timed(args.steps, prof if ph == "ddp" or not args.interleave else None)
                if ph == "independent":    # keep this core busy until every rank has timed its steps
                    done = dist.barrier(async_op=True)
                    while not done.is_completed():
                        t.step()
            per_rank = [None] * world
            dist.all_gather_object(per_rank, rec)
            per_rank = [r for r in per_rank if r is not None]
            if ph == "solo":
                sps = args.steps * B / per_rank[0]["s"]
            elif ph == "ddp":
                sps = args.steps * B / max(r["s"] for r in per_rank)
            else:
                sps = sum(args.steps * B / r["s"] for r in per_rank)
            out = {k: [r[k] for r in per_rank] for k in ("s", "cpu_s", "wait_s", "wait_cpu_s")}
            res[ph].append({"samples_per_s": sps, **out, "load": os.getloadavg()[0]})
    if prof is not None:
        os.makedirs(args.profile, exist_ok=True)
        prof.dump_stats(os.path.join(args.profile, f"rank{rank}.prof"))
    if rank == 0:
        print("BENCH " + json.dumps({"ranks": world, "batch": B, "steps": args.steps, "warmup": args.warmup,
                                     "phases": res}), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64, help="global batch (split evenly over the ranks)")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synthetic", action="store_true", help="synthetic data even if scikit-learn is installed")
    ap.add_argument("--out", default=None, help="save the trained state_dict here (rank 0)")
    ap.add_argument("--bench", action="store_true",
                    help="measure steady-state samples/s instead of the epoch loop (benchmarks/ddp_scaling.py)")
    ap.add_argument("--steps", type=int, default=100, help="--bench: timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="--bench: untimed steps first (numba compiles)")
    ap.add_argument("--independent", action="store_true",
                    help="--bench: every rank trains alone (batch --batch-size each, no communication)")
    ap.add_argument("--interleave", action="store_true",
                    help="--bench: alternate rank 0 alone, all ranks with DDP, and independent ranks in one job")
    ap.add_argument("--rounds", type=int, default=3, help="--bench --interleave: rounds of the three phases")
    ap.add_argument("--profile", default=None,
                    help="--bench: write each rank's cProfile of the timed (DDP) steps here")
    args = ap.parse_args(argv)

    dist.init_process_group(backend="mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.batch_size % world:
        raise ValueError(f"--batch-size {args.batch_size} must be divisible by the number of ranks ({world})")
    if (args.independent or args.interleave) and not args.bench:
        raise ValueError("--independent and --interleave are --bench modes")
    xtr, ytr, xte, yte, make, name = load_data(args.seed, args.synthetic)
    if rank == 0:
        print(f"{name}: {len(ytr)} train / {len(yte)} test samples, {world} rank(s), global batch "
              f"{args.batch_size} ({args.batch_size // world} per rank)", flush=True)
    if args.bench:
        _bench(args, make, xtr, ytr, rank, world)
        dist.destroy_process_group()
        return
    torch.manual_seed(args.seed)
    model = DDP(make())
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    sampler = DistributedSampler(TensorDataset(xtr, ytr), shuffle=True, seed=args.seed, drop_last=True)
    loader = DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch_size // world, sampler=sampler,
                        drop_last=True)
    timed_samples, timed_s = 0, 0.0
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        model.train()
        t0 = time.perf_counter()
        tot = torch.zeros(2, dtype=torch.float64)  # loss sum, sample count (this rank)
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()             # DDP all-reduces the gradients here
            opt.step()
            tot += torch.tensor([loss.item() * len(yb), len(yb)], dtype=torch.float64)
        dist.all_reduce(tot)            # the epoch's loss over all ranks
        dt = time.perf_counter() - t0
        if epoch > 0:                   # epoch 0 includes numba's compilation
            timed_samples += int(tot[1].item())
            timed_s += dt
        model.eval()                    # evaluation: outside the timed region
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        if rank == 0:
            print(f"epoch {epoch + 1:2d}  loss {tot[0].item() / tot[1].item():.4f}  test acc {acc:.3f}  "
                  f"{tot[1].item() / dt:8.0f} samples/s", flush=True)
    # every rank holds the same weights: check it
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, src=0)
    assert bool((ref == flat).all()), f"rank {rank}: weights diverged from rank 0"
    if rank == 0:
        if timed_s > 0:
            print(f"throughput (epochs 2..{args.epochs}): {timed_samples / timed_s:.0f} samples/s on {world} rank(s)")
        if args.out:
            torch.save(model.module.state_dict(), args.out)
            print(f"saved {args.out}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

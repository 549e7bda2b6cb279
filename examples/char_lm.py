"""A character-level language model (embedding + LSTM) trained with jitorch on a text in the repo.

    python examples/char_lm.py [--steps 300] [--seed 0] [--text examples/data/tensors.txt]

The text, examples/data/tensors.txt (about 30 KB), is original prose written for this repository
and grown by shuffled repetition (examples/data/make_text.py regenerates it). The script prints the
loss (averaged over the last --log-every steps, and on a held-out tenth of the text) as it trains,
then samples a continuation of a prompt. Plain PyTorch code: ``import jitorch as torch``.
"""
from __future__ import annotations

import argparse
import math
import os
import time

# One BLAS thread: the products here are small (32 x 128 by 128 x 512), where OpenBLAS's threads buy
# nothing and, on a busy machine, cost a lot (see examples/README.md). Set OPENBLAS_NUM_THREADS to override.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import jitorch as torch  # noqa: E402
import jitorch.nn as nn  # noqa: E402
import jitorch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class CharLM(nn.Module):
    def __init__(self, vocab, emb=32, hidden=128):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx, state=None):
        h, state = self.lstm(self.emb(idx), state)
        return self.head(h), state


def batches(data, batch, seq, rng):
    """Random windows of seq+1 characters: inputs are the first seq, targets the last seq."""
    while True:
        starts = rng.integers(0, len(data) - seq - 1, size=batch)
        win = np.stack([data[s:s + seq + 1] for s in starts])
        yield torch.from_numpy(win[:, :-1].copy()), torch.from_numpy(win[:, 1:].copy())


def evaluate(model, data, seq, vocab):
    """Mean cross-entropy over consecutive windows of the held-out text."""
    n = (len(data) - 1) // seq
    x = torch.from_numpy(data[:n * seq].reshape(n, seq).copy())
    y = torch.from_numpy(data[1:n * seq + 1].reshape(n, seq).copy())
    with torch.no_grad():
        logits, _ = model(x)
        return F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1)).item()


def sample(model, stoi, itos, prompt, n, temperature, gen):
    model.eval()
    with torch.no_grad():
        idx = torch.tensor([[stoi[c] for c in prompt]], dtype=torch.int64)
        logits, state = model(idx)
        out = []
        for _ in range(n):
            probs = F.softmax(logits[:, -1, :] / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=gen)        # shape (1, 1)
            out.append(itos[int(nxt.item())])
            logits, state = model(nxt, state)
    model.train()
    return prompt + "".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text", default=os.path.join(HERE, "data", "tensors.txt"))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--log-every", type=int, default=None, help="default: steps // 10 (at least 1)")
    p.add_argument("--sample-len", type=int, default=300)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--prompt", default="A tensor ")
    args = p.parse_args(argv)
    log_every = args.log_every or max(1, args.steps // 10)

    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(args.seed)
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    itos = dict(enumerate(chars))
    vocab = len(chars)
    data = np.array([stoi[c] for c in text], dtype=np.int64)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    print(f"text: {os.path.relpath(args.text)}: {len(text):,} characters, vocabulary {vocab}; "
          f"uniform guessing = {math.log(vocab):.3f} nats/char")

    model = CharLM(vocab)
    print(f"model: embedding {vocab}x32 + LSTM(32, 128) + linear 128x{vocab}: "
          f"{sum(q.numel() for q in model.parameters()):,} parameters")
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, args.steps), eta_min=args.lr / 10)
    rng = np.random.default_rng(args.seed)
    stream = batches(train, args.batch_size, args.seq_len, rng)

    print(f"val loss before training: {evaluate(model, val, args.seq_len, vocab):.4f}")
    running, count = 0.0, 0
    for step in range(1, args.steps + 1):
        x, y = next(stream)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running += loss.item()
        count += 1
        if step % log_every == 0 or step == args.steps:
            print(f"step {step:5d}/{args.steps}  train loss {running / count:.4f}  "
                  f"({time.perf_counter() - t0:6.1f}s)", flush=True)
            running, count = 0.0, 0
    print(f"val loss after training: {evaluate(model, val, args.seq_len, vocab):.4f}")

    gen = torch.Generator().manual_seed(args.seed)
    print(f"sample (temperature {args.temperature}):")
    print(sample(model, stoi, itos, args.prompt, args.sample_len, args.temperature, gen))
    print(f"time: {time.perf_counter() - t0:.1f}s wall, {time.process_time() - c0:.1f}s CPU "
          f"for {args.steps} steps (numba compilation included)")


if __name__ == "__main__":
    main()

"""Train a small CNN on scikit-learn's bundled 8x8 digits with jitorch.

    python examples/digits_cnn.py [--epochs 15] [--out examples/out] [--seed 0]

The script is plain PyTorch code: it runs under jitorch through ``import jitorch as torch`` and
under PyTorch by changing that line. It needs scikit-learn (the data set ships inside it, nothing
is downloaded); matplotlib is optional (the loss/accuracy plot is skipped without it), and so is
tqdm (a small text progress bar is used without it).

Outputs in --out: ``digits_cnn.pt`` (the trained state_dict, written with ``torch.save``) and
``digits_cnn.png`` (train loss and test accuracy per epoch) when matplotlib is installed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# One BLAS thread: this model's matrices are tiny (at most 512 x 144), where OpenBLAS's threads buy
# nothing and, on a busy machine, cost a lot (measured: a 32x128 @ 128x512 product took 0.07 ms on one
# thread and 40 ms with OpenBLAS's default threads while other processes were using both cores). Set
# OPENBLAS_NUM_THREADS yourself to override. It must be set before NumPy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import jitorch as torch  # noqa: E402
import jitorch.nn as nn  # noqa: E402
import jitorch.nn.functional as F  # noqa: E402
from jitorch.utils.data import DataLoader, TensorDataset  # noqa: E402


class DigitsCNN(nn.Module):
    """1x8x8 -> conv 3x3 (16) -> pool -> conv 3x3 (32) -> pool -> linear 128 -> 64 -> 10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)   # 16x8x8
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)  # 32x4x4 after pool
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 2 * 2, 64)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))   # 16x4x4
        x = self.pool(F.relu(self.conv2(x)))   # 32x2x2
        x = x.flatten(1)                       # (torch.flatten: missing in jitorch, see README)
        x = self.drop(F.relu(self.fc1(x)))
        return self.fc2(x)


class Bar:
    """A text progress bar on one line (tqdm's look, none of its dependency)."""

    def __init__(self, total, desc, width=24, stream=sys.stdout):
        self.total, self.desc, self.width, self.stream = total, desc, width, stream
        self.n, self.t0, self.postfix = 0, time.perf_counter(), ""
        self.tty = stream.isatty()

    def update(self, k=1, postfix=""):
        self.n += k
        self.postfix = postfix
        if self.tty:   # redraw in place on a terminal; a log (pipe, CI) gets the final line only
            self._draw("\r")

    def close(self, postfix=None):
        if postfix is not None:
            self.postfix = postfix
        self._draw("\r" if self.tty else "")
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, lead):
        filled = int(self.width * self.n / max(self.total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        dt = time.perf_counter() - self.t0
        self.stream.write(f"{lead}{self.desc} [{bar}] {self.n}/{self.total} {dt:5.1f}s {self.postfix}")
        self.stream.flush()


def progress(total, desc):
    """tqdm when it is installed, the small Bar otherwise; both take update(k, postfix) and close()."""
    try:
        from tqdm import tqdm
    except ImportError:
        return Bar(total, desc)

    class _Tqdm:
        def __init__(self):
            self.t = tqdm(total=total, desc=desc, ncols=80, leave=True)

        def update(self, k=1, postfix=""):
            self.t.set_postfix_str(postfix, refresh=False)
            self.t.update(k)

        def close(self, postfix=None):
            if postfix is not None:
                self.t.set_postfix_str(postfix)
            self.t.close()

    return _Tqdm()


def load_data(seed):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("digits_cnn.py needs scikit-learn: pip install scikit-learn  (or pip install -e '.[examples]')")
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]            # N x 1 x 8 x 8 in [0, 1]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = len(y) // 5                                                # 80/20 split, fixed by --seed
    te, tr = perm[:n_test], perm[n_test:]
    mean, std = x[tr].mean(), x[tr].std()
    x = (x - mean) / std
    return (torch.from_numpy(x[tr]), torch.from_numpy(y[tr]),
            torch.from_numpy(x[te]), torch.from_numpy(y[te]))


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        acc = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return loss, acc


def save_plot(history, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping the plot (pip install matplotlib)")
        return None
    epochs = [h["epoch"] for h in history]
    fig, ax1 = plt.subplots(figsize=(6, 4))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", color="tab:blue", label="train loss")
    ax1.plot(epochs, [h["test_loss"] for h in history], "s--", color="tab:cyan", label="test loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy loss")
    ax2 = ax1.twinx()
    ax2.plot(epochs, [100 * h["test_acc"] for h in history], "^-", color="tab:red", label="test accuracy")
    ax2.set_ylabel("test accuracy (%)")
    ax2.set_ylim(0, 100)
    lines = ax1.get_lines() + ax2.get_lines()
    ax1.legend(lines, [ln.get_label() for ln in lines], loc="center right")
    ax1.set_title("jitorch: small CNN on scikit-learn digits")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"),
                   help="folder for the weights and the plot (default examples/out, git-ignored)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    t_start, cpu_start = time.perf_counter(), time.process_time()
    torch.manual_seed(args.seed)
    xtr, ytr, xte, yte = load_data(args.seed)
    print(f"digits: {len(ytr)} train / {len(yte)} test images, 1x8x8, 10 classes")
    loader = DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch_size, shuffle=True)

    model = DigitsCNN()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} parameters")
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()

    history = []
    for epoch in range(1, args.epochs + 1):
        bar = progress(len(loader), f"epoch {epoch:2d}/{args.epochs}")
        total, seen = 0.0, 0
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            seen += len(yb)
            bar.update(1, f"loss {total / seen:.4f}")
        test_loss, test_acc = evaluate(model, xte, yte)
        history.append({"epoch": epoch, "train_loss": total / seen, "test_loss": test_loss, "test_acc": test_acc})
        bar.close(f"loss {total / seen:.4f}  test loss {test_loss:.4f}  test acc {100 * test_acc:.2f}%")

    train_time, cpu_time = time.perf_counter() - t_start, time.process_time() - cpu_start
    final = history[-1]["test_acc"] if history else evaluate(model, xte, yte)[1]
    print(f"final test accuracy: {100 * final:.2f}% ({int(round(final * len(yte)))}/{len(yte)})")
    print(f"time: {train_time:.1f}s wall, {cpu_time:.1f}s CPU for {args.epochs} epochs "
          f"(data loading and numba compilation included)")

    os.makedirs(args.out, exist_ok=True)
    weights = os.path.join(args.out, "digits_cnn.pt")
    torch.save(model.state_dict(), weights)
    check = DigitsCNN()
    check.load_state_dict(torch.load(weights))
    assert abs(evaluate(check, xte, yte)[1] - final) < 1e-6, "reloaded weights disagree"
    print(f"saved weights: {weights} (reloaded and re-checked)")
    if history:
        plot = save_plot(history, os.path.join(args.out, "digits_cnn.png"))
        if plot:
            print(f"saved plot: {plot}")
    return final


if __name__ == "__main__":
    main()

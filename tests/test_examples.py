"""The examples run end to end (tiny budgets): each in a fresh process, as a user would run it."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def _run(script, *args, timeout=900):
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn is not installed")
def test_digits_cnn_one_epoch(tmp_path):
    out = _run("digits_cnn.py", "--epochs", "1", "--out", str(tmp_path))
    acc = float(re.search(r"final test accuracy: ([\d.]+)%", out).group(1))
    assert acc > 30.0, out          # chance is 10%; one epoch reaches about 80%
    if importlib.util.find_spec("tqdm") is None:   # the script's own text bar (tqdm writes to stderr)
        assert re.search(r"epoch  1/1 \[#+\] 45/45", out), out
    assert (tmp_path / "digits_cnn.pt").is_file()
    assert "reloaded and re-checked" in out
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "digits_cnn.png").stat().st_size > 0
    else:
        assert "skipping the plot" in out


@pytest.mark.slow
def test_char_lm_loss_goes_down():
    out = _run("char_lm.py", "--steps", "20", "--log-every", "5", "--sample-len", "40", "--seed", "0")
    losses = [float(v) for v in re.findall(r"train loss ([\d.]+)", out)]
    assert len(losses) == 4, out
    assert losses[-1] < losses[0] - 0.3, out
    before = float(re.search(r"val loss before training: ([\d.]+)", out).group(1))
    after = float(re.search(r"val loss after training: ([\d.]+)", out).group(1))
    assert after < before - 0.5, out
    sample = out.split("sample (temperature 0.7):\n", 1)[1].splitlines()[0]
    assert sample.startswith("A tensor ") and len(sample) == len("A tensor ") + 40, out


def test_text_is_reproducible():
    """examples/data/tensors.txt is exactly what make_text.py writes (fast; not slow)."""
    spec = importlib.util.spec_from_file_location("make_text", os.path.join(EXAMPLES, "data", "make_text.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(os.path.join(EXAMPLES, "data", "tensors.txt"), encoding="ascii") as f:
        assert f.read() == mod.build()

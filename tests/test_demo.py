"""`jitorch demo`, the README's main job: every step runs and agrees with eager."""
import math
import shutil

import pytest

from jitorch.cli import demo


@pytest.mark.slow
def test_demo_runs_every_step_and_matches_eager():
    lines = []
    res = demo(epochs=2, out=lines.append)
    text = "\n".join(lines)
    for step in ("[1/5] eager training", "[2/5] trace", "[3/5] compile", "[4/5] export", "[5/5] native build"):
        assert step in text, step
    assert res["accuracy"] > 0.5  # two epochs of Adam on digits or the synthetic blobs
    assert res["trace_diff"] == 0.0 and res["export_diff"] < 1e-5
    assert res["compile_diff"] < 1e-5 and res["compile_speedup"] > 0
    assert "def kernel(" in text  # one generated kernel is shown
    if shutil.which("cc") or shutil.which("gcc"):
        assert res["native_diff"] < 1e-4
    else:
        assert math.isnan(res["native_diff"])

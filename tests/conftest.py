"""Test settings: hypothesis runs deterministic and without shrinking, so the suite's time is bounded
(numba compiles dominate; a failing example is still printed in full)."""
from __future__ import annotations

import os

# cuda tests run on numba's CUDA simulator unless a GPU run is asked for; this must happen before
# anything imports numba.cuda (docs/cuda.md)
if os.environ.get("JITORCH_TEST_REAL_CUDA", "0") in ("", "0"):
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

from hypothesis import HealthCheck, Phase, settings  # noqa: E402

settings.register_profile(
    "jitorch",
    deadline=None,
    derandomize=True,
    print_blob=True,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
settings.register_profile("fuzz", deadline=None, suppress_health_check=list(HealthCheck), max_examples=10_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "jitorch"))

"""torch.version: what this build is (scripts print ``torch.version.cuda``)."""
from . import __version__  # noqa: F401  (one place: jitorch/__init__.py)
#: no CUDA toolkit is linked into jitorch: its cuda backend runs through numba.cuda (docs/cuda.md)
cuda = None
hip = None
git_version = "unknown"
debug = False

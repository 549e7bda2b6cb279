"""jitorch benchmarks: ``python -m benchmarks`` (see benchmarks/run.py and docs/benchmarks.md).

The standalone scripts next to the runner (``ulp.py``, ``kernels_reduce.py``) time single
kernels; the runner times the user-facing API against torch and NumPy.
"""

"""jitorch: PyTorch API on numba kernels."""

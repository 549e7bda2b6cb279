"""The jitorch kernel library: numba functions over NumPy arrays and plain ints.

Installed as ``jitorch.kernels``. It imports nothing from the rest of jitorch (a test
enforces this): each kernel's docstring states its contract (dtypes, layout, which argument
it writes), and callers validate every shape and index before a kernel runs, because numba
does not check bounds.
"""

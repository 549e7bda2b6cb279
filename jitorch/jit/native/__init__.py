"""The native build (issue 8, docs/native.md): :func:`build` turns a traced graph or a ``.jt`` file
into a standalone executable, a shared library and a C header that need only libc, libm and
libpthread at run time.

- :mod:`.lower`: the lowering table (op name -> driver steps over strided views);
- :mod:`.kernels`: kernel sources (numba ``cfunc`` over raw pointers; elementwise bodies from the
  op table's scalar templates through :mod:`jitorch.jit.fuse`);
- :mod:`.llvm`: kernels -> one O3-optimized PIC object with llvmlite (cached);
- :mod:`.cgen`: the C driver, the header and the executable's main;
- :mod:`.build`: the pipeline and the C compiler;
- :mod:`.train`: a compiled training step (forward + backward + optimizer update) as a native
  program that trains on .npy data.
"""
from .build import ALLOWED_UNDEFINED, BuildResult, build, find_cc, undefined_symbols
from .lower import LOWER, BuildError
from .train import build_train_step

__all__ = ["build", "build_train_step", "BuildError", "BuildResult", "LOWER", "ALLOWED_UNDEFINED", "find_cc",
           "undefined_symbols"]

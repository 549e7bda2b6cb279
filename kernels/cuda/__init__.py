"""jitorch's CUDA kernels: numba.cuda kernels over numba device arrays and plain ints.

Written against ``from numba import cuda`` only, so the same code runs on numba's built-in CUDA
target, on the ``numba-cuda`` package (``pip install jitorch[cuda]``) and on numba's simulator
(``NUMBA_ENABLE_CUDASIM=1``, which CI uses). Like the rest of ``kernels/`` this package imports
nothing from jitorch; and nothing imports it at ``import jitorch`` time (numba.cuda costs ~0.3 s):
the cuda backend (jitorch/backends/cuda.py) imports it when the first tensor goes to 'cuda'.

The contract between the op table and these kernels (docs/cuda.md has the long form):

**Storage.** A cuda tensor's ``_data`` is a ``jitorch.backends.cuda.CudaArray``: a flat 1-D numba
device array ``buffer`` (the whole allocation, shared by all views), ``shape``, element strides
``estrides`` and an element ``offset``; ``strides`` (bytes), ``dtype``, ``ndim``, ``size``,
``flags.c_contiguous`` and basic ``[...]`` indexing behave like NumPy's. Views are metadata only.

**impl['cuda'].** ``OpDef.impl['cuda'](out, *inputs, **attrs)`` has the cpu impl's signature with
CudaArrays in place of NumPy arrays (Python scalars stay scalars). ``out`` is allocated by dispatch,
C-contiguous, uninitialized (``None`` for data-dependent shapes: then allocate with
``backends.cuda.empty(shape, dtype)`` and return it). In-place ops pass the target as ``out``, which
may be strided. Helpers in jitorch/backends/cuda.py:

- ``kernel_array(a)``: a C-contiguous numba device array of ``a``'s shape (a view when ``a`` is
  contiguous, else a strided copy): what a kernel reads;
- ``with writable(out) as o``: a contiguous device array whose writes land in ``out``;
- ``empty(shape, dtype)``, ``from_host(np_array)``, ``to_host(a)``, ``contiguous(a)``,
  ``copy_into(dst, src)`` (broadcast + dtype conversion), ``fill(out, value)``,
  ``elementwise(name, ctype, inputs, out, params)`` (any EXPR op of kernels/scalar.py).

Every shape, dtype and index is validated in Python before a kernel runs (the op's rules and
impl), as on cpu: kernels never check bounds. float16 is stored as float16 and computed in float32
(load with ``np.float32(x[i])``; the store converts). Host<->device copies happen only in
``to_host``/``from_host`` (``.cpu()``, ``.cuda()``, ``.item()``, ``.tolist()``, printing) — an impl
must not copy to the host to compute (raise NotImplementedError instead).

**Launches.** :mod:`.launch` is the one place that picks launch sizes: ``launch(kernel, n, *args)``
runs a grid-stride kernel over ``n`` items; under the simulator it uses at most 32 threads in one
block (each simulated thread is a Python thread, ~150 us; ~2 ms with ``syncthreads``) and serializes
launches (the simulator runs one kernel at a time). Kernels that need a fixed block size (shared
memory reductions, tiles) take it from their own module's defaults, which shrink under the
simulator the same way (``launch.SIM``).

**Generated kernels** (elementwise, copy/cast, fill) are rendered from the same ``EXPR`` templates
as the cpu kernels (:mod:`.elementwise`) and loaded through ``kernels/_jitcache.py`` with
``@cuda.jit(cache=True)``, so a GPU compiles each signature once per machine.

Modules: :mod:`.launch` (launch sizes), :mod:`.elementwise` (elementwise, ``_copy`` = strided copy
with dtype conversion, ``_fill``); reductions, matmul, nn, index, sort and random kernels live in
their own modules of this package.
"""

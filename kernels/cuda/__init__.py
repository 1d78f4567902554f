"""The ``@cuda.jit`` twins of the CPU kernels: one module per op family, same names.

``nbconv.kernels.cuda.<family>`` mirrors ``nbconv.kernels.<family>``: for every CPU kernel
``name(args...)`` it provides a host-side LAUNCHER ``name(args...)`` with the same signature,
taking numba CUDA device arrays where the CPU kernel takes NumPy arrays (and the same Python
scalars).  The launcher computes the grid and launches one or more private ``@cuda.jit``
kernels (``_<name>_kernel``), so the functional layer can pick the device by swapping the
kernel module and nothing else.

The reference mapping is one thread per output element: the thread's flat index
``t = cuda.grid(1)`` is split into the output's indices (n, f, i, j, ...), named as in the CPU
loop, and the loop over the reduction runs inside the thread.  Reductions over many outputs
(dW, db, dgamma, ...) get their own kernel with one thread per reduced element; the few
scatters (max-pooling backward) use ``cuda.atomic.add``; every docstring says which.

Arithmetic on float32 data: GPUs of the T4 class run float64 at 1/32 of the float32 rate, so
the kernels of activation.py, elementwise.py, dropout.py and optim.py compute in the data's
dtype: their launchers pass the scalars (slopes, scales, learning rates) as the array's dtype,
literals are typed, math.exp and math.tanh run as the float32 functions, and prelu's dw sums in
a tree, one block per channel (tests/cuda/test_float32_ptx.py finds no float64 instruction in
their float32 PTX).  The other modules still sum in float64 (``acc = float64(0.0)``), as the CPU
kernels do (their ``acc = 0.0`` is float64 in Numba), and round once when they store into a
float32 output; so does the rest of their arithmetic.  The tiled matrix product
(``im2col.matmul``) accumulates in the arrays' dtype, like the BLAS GEMM the CPU im2col path
calls.  Every kernel compiles to PTX for sm_75 and sm_90 with the real compiler, no GPU needed
(tests/cuda/test_ptx.py; docs/gpu.md).

Needs the ``numba-cuda`` package (``pip install "nbconv[cuda]"``).  Without a GPU the kernels
run under Numba's CUDA simulator: set ``NUMBA_ENABLE_CUDASIM=1`` before ``numba.cuda`` is first
imported.
"""

_INSTALL_HINT = (
    'the CUDA kernels need the numba-cuda package (and, on a real GPU, the CUDA toolkit '
    'wheels): pip install "nbconv[cuda]"'
)

try:
    import numba_cuda  # noqa: F401  (numba's own deprecated numba.cuda may exist without it)
except ImportError as exc:
    raise ImportError(f"nbconv.kernels.cuda: {_INSTALL_HINT}") from exc

try:
    from numba import cuda  # noqa: F401
except ImportError as exc:     # numba-cuda present but its CUDA bindings missing
    raise ImportError(f"nbconv.kernels.cuda: {_INSTALL_HINT} ({exc})") from exc

"""The ``@cuda.jit`` twins of the CPU kernels: one module per op family, same names.

``nbconv.kernels.cuda.<family>`` mirrors ``nbconv.kernels.<family>``: for every CPU kernel
``name(args...)`` it provides a host-side LAUNCHER ``name(args...)`` with the same signature,
taking numba CUDA device arrays where the CPU kernel takes NumPy arrays (and the same Python
scalars).  The launcher computes the grid and launches one or more private ``@cuda.jit``
kernels (``_<name>_kernel``), so the functional layer can pick the device by swapping the
kernel module and nothing else.

The reference mapping is one thread per output element: the thread's flat index
``t = cuda.grid(1)`` is split into the output's indices (n, f, i, j, ...), named as in the CPU
loop, and the loop over the reduction runs inside the thread.  A sum over many terms into one
value (db, dW, the statistics of the normalizations, softmax's row maximum and sum, a loss's
mean, PReLU's dw, global average pooling) is one BLOCK per reduced element: its threads split
the terms in a block-stride loop and ``reduce.block_sum`` (or ``block_max``) combines their
running sums in a tree in shared memory, in a fixed order, so results are deterministic and no
kernel uses atomics (max pooling's backward routes each gradient to its window's winner in the
CPU loop's order).  Every docstring says which mapping its kernel has.

The matrix products (``gemm.matmul``) are register-blocked tiles: 64 x 64 outputs per block,
4 x 4 per thread, the groups on the grid's z axis; ``gemm.fast_matmul`` calls cuBLAS through
CuPy instead when CuPy is installed.  They serve the "im2col" and "fast" convolutions and the
"fast" linear layer (nbconv.functional.dispatch says which method runs what).

Arithmetic: float32 data computes in float32 (GPUs of the T4 class run float64 at 1/32 of the
float32 rate): launchers pass the scalars (slopes, eps, scales, learning rates) in the array's
dtype, literals are typed, accumulators have the data's dtype, math.exp, sqrt and tanh run as
the float32 functions, and the statistics of float32 data are float32 (as in cuDNN; the CPU
keeps them in float64).  float64 data computes in float64.  Results therefore differ from the
CPU's float64 sums by float32 rounding.  Every kernel compiles to PTX for sm_75 and sm_90 with
the real compiler, no GPU needed, and no float32 signature holds a float64 instruction
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

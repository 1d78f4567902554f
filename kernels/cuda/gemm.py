"""The matrix product on the GPU, the one the device paths share (im2col's products, linear's).

    out[g] = A[g] @ B[g]   for every g < G:   out[g, r, q] = sum_k A[g, r, k] * B[g, k, q]

with out (G, R, Q), A[g] = a[g] (R, K), or a[g]^T when ``trans_a`` (a is then (G, K, R)), and
B[g] = b[g] (K, Q), or b[g]^T when ``trans_b`` (b (G, Q, K)).  The batch index g is a group of
the im2col convolution (G = groups); linear is one product (G = 1).  The transposes are read in
place, never copied: the backward's dW = dY @ X_col^T and dX_col = W_row^T @ dY need them.

Two ways to compute it, one signature:

- ``matmul``: the teaching kernel, Numba, register-blocked tiles (below).  It accumulates in
  the arrays' dtype (float32 stays float32, as in BLAS sgemm) and computes every group in one
  launch: the group is the grid's z axis, there is no Python loop over groups.
- ``fast_matmul``: cuBLAS, the GPU's BLAS, through CuPy, when CuPy is importable and Numba's
  CUDA simulator is off (CUBLAS); ``matmul`` otherwise.  This mirrors the CPU, where the fast
  forms call the BLAS through NumPy.  CuPy comes with ``pip install "nbconv[cuda]"``.

The tiles of ``matmul``.  Each block of THREADS_Y x THREADS_X = 16 x 16 threads computes a
BM x BN = 64 x 64 tile of out[g], and each thread a TM x TN = 4 x 4 block of that tile: rows
ty + 16*i and columns tx + 16*j (i, j < 4), so that the threads of a warp touch consecutive
columns.  The sum over k runs in slices of BK = 8: the block copies A's 64 x 8 slice and B's
8 x 64 slice into shared memory (2 elements of each per thread, 0 past the matrices' edges),
waits (syncthreads), and then every thread, for each of the 8 values of k, loads 4 values of
A's slice and 4 of B's into registers and does the 4 x 4 = 16 multiply-adds of their outer
product into its 16 running sums.

Why register blocking pays: arithmetic intensity, here of shared memory.  An SM serves one
shared-memory request per clock (a warp's 32 words, or one value broadcast to the warp) and
issues 4 warp-wide multiply-add instructions per clock on Hopper (H100, H200), 2 on Turing
(T4).  The one-output-per-thread tiled product (16 x 16 threads, one output each) makes 2
requests (a row value, a column value) per multiply-add instruction: at most 1/2 instruction
per clock, 1/8 of Hopper's FP32 peak (about 12%) and 1/4 of Turing's.  Here a
warp, for each k, makes 8 requests (4 values of A, 4 of B) for the 16 multiply-add
instructions of the 4 x 4 outer product: 2 instructions per request, 4 times the ratio, which
caps Hopper at 1/2 of its peak and no longer caps Turing.  One level up, global memory: each
value copied into shared memory serves a whole row or column of the 64 x 64 tile, 64 x 64 x 8
multiply-adds per (64 + 64) x 8 loads, 32 per load, against 8 for 16 x 16 tiles.  The price is
registers: 16 running sums and 8 operands per thread (ptxas: about 90 registers in float32,
115 in float64, no spills; see ``python -m nbconv.kernels.cuda._ptx --sass``).  cuBLAS goes
further (larger tiles, double buffering, vector loads, tensor cores for lower precisions);
``fast_matmul`` calls it.

Shared memory per block: A's slice (64, 8 + 1) and B's (8, 64 + 1), 1096 elements, 4.3 KB in
float32 (8.6 KB in float64).  The +1 pads a row so that threads writing down a column of the
slice (the transposed loads, which read global memory along the other axis to stay coalesced)
land in different memory banks.

cuBLAS through CuPy, zero-copy.  ``cupy.asarray`` of a numba device array wraps the same device
memory (``__cuda_array_interface__``), so the operands are not copied; the transposes are 2-D
views (``.T``) that cuBLAS reads in place (as its "transposed" operands); and
``cupy.dot(A, B, out=C)`` writes straight into C, a C-contiguous 2-D view of ``out``.  The
product runs once per group on 2-D views (CuPy's batched 3-D matmul would copy a transposed
view first).  CuPy launches on its current stream,
the default one unless the caller changed it, as numba's kernels do: the two stay in order.
CuPy computes float32 as float32 (no TF32 unless CUPY_TF32=1 is set).

Set ``CUBLAS = False`` to run the Numba kernel on a GPU where CuPy is installed (e.g. to time
the teaching kernel against cuBLAS).
"""

from numba import config, cuda

try:
    import cupy
except ImportError:        # CuPy is optional (the "cuda" extra); the Numba kernel takes its place
    cupy = None

# cuBLAS is used when CuPy can run it: CuPy installed, and a real GPU (the simulator has no cuBLAS)
CUBLAS = cupy is not None and not config.ENABLE_CUDASIM

BM = 64            # the block's tile of out: BM rows ...
BN = 64            # ... by BN columns
BK = 8             # the depth of the k-slices staged in shared memory
TM = 4             # each thread's block of outputs: TM rows ...
TN = 4             # ... by TN columns
THREADS_Y = BM // TM       # 16 threads down the tile
THREADS_X = BN // TN       # 16 threads across it
THREADS = THREADS_Y * THREADS_X
A_SLICE = (BM, BK + 1)     # the shared slices, padded by one column (see the docstring)
B_SLICE = (BK, BN + 1)


@cuda.jit(device=True, inline="always")
def _stage(slice_, src, g, i0, j0, I, J, rows, cols, transposed, t, zero):
    """slice_[i, j] = S[g, i0 + i, j0 + j] for i < rows, j < cols (0 past S's I x J edges), with
    S = src, or src^T when ``transposed`` (src[g, j0 + j, i0 + i]): each of the block's THREADS
    threads copies rows*cols/THREADS elements, consecutive threads along src's contiguous axis
    (j, or i when transposed), so that the reads coalesce."""
    for load in range(rows * cols // THREADS):
        e = t + load * THREADS                               # the element of the slice to copy
        if transposed:
            i = e % rows
            j = e // rows
        else:
            i = e // cols
            j = e % cols
        value = zero
        if i0 + i < I and j0 + j < J:
            if transposed:
                value = src[g, j0 + j, i0 + i]
            else:
                value = src[g, i0 + i, j0 + j]
        slice_[i, j] = value


@cuda.jit
def _matmul_kernel(a, b, out, trans_a, trans_b):
    """out[g, r, q] = sum_k A[g, r, k] * B[g, k, q]      A = a or a^T (trans_a), B = b or b^T (trans_b)

    block (bx, by, g) computes the tile out[g, by*BM : (by+1)*BM, bx*BN : (bx+1)*BN]; thread
    (tx, ty) its outputs (by*BM + ty + THREADS_Y*i, bx*BN + tx + THREADS_X*j), i < TM, j < TN,
    in registers, from BK-deep slices of A and B staged in shared memory.
    """
    a_slice = cuda.shared.array(A_SLICE, out.dtype)          # a_slice[m, k] = A[g, r0 + m, k0 + k]
    b_slice = cuda.shared.array(B_SLICE, out.dtype)          # b_slice[k, n] = B[g, k0 + k, q0 + n]
    acc = cuda.local.array((TM, TN), out.dtype)              # the thread's TM x TN running sums
    a_reg = cuda.local.array(TM, out.dtype)
    b_reg = cuda.local.array(TN, out.dtype)
    zero = out.dtype.type(0)
    g = cuda.blockIdx.z
    r0 = cuda.blockIdx.y * BM
    q0 = cuda.blockIdx.x * BN
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    t = ty * THREADS_X + tx                                  # the thread's rank in the block
    R, Q = out.shape[1], out.shape[2]
    if trans_a:
        K = a.shape[1]
    else:
        K = a.shape[2]
    for i in range(TM):
        for j in range(TN):
            acc[i, j] = zero
    for k0 in range(0, K, BK):
        # stage the slices; consecutive threads read consecutive addresses of a and b
        _stage(a_slice, a, g, r0, k0, R, K, BM, BK, trans_a, t, zero)     # a[g] is (R, K), or (K, R)
        _stage(b_slice, b, g, k0, q0, K, Q, BK, BN, trans_b, t, zero)     # b[g] is (K, Q), or (Q, K)
        cuda.syncthreads()                                   # the slices are complete
        for k in range(BK):
            for i in range(TM):
                a_reg[i] = a_slice[ty + THREADS_Y * i, k]
            for j in range(TN):
                b_reg[j] = b_slice[k, tx + THREADS_X * j]
            for i in range(TM):                              # 16 multiply-adds from 8 loads
                for j in range(TN):
                    acc[i, j] += a_reg[i] * b_reg[j]
        cuda.syncthreads()                                   # everyone is done with them
    for i in range(TM):
        r = r0 + ty + THREADS_Y * i
        for j in range(TN):
            q = q0 + tx + THREADS_X * j
            if r < R and q < Q:
                out[g, r, q] = acc[i, j]


def matmul(a, b, out, trans_a=False, trans_b=False):
    """out[g] = A[g] @ B[g] for every g, by the register-blocked Numba kernel (device arrays).

    out (G, R, Q); a (G, R, K), or (G, K, R) with trans_a; b (G, K, Q), or (G, Q, K) with
    trans_b; one dtype, C-contiguous.  One launch: (ceil(Q/BN), ceil(R/BM), G) blocks of
    16 x 16 threads.  K = 0 gives zeros.
    """
    G, R, Q = out.shape
    if out.size == 0:
        return
    grid = ((Q + BN - 1) // BN, (R + BM - 1) // BM, G)
    _matmul_kernel[grid, (THREADS_X, THREADS_Y)](a, b, out, trans_a, trans_b)


def fast_matmul(a, b, out, trans_a=False, trans_b=False):
    """out[g] = A[g] @ B[g] for every g (the arguments of ``matmul``): cuBLAS through CuPy when
    CUBLAS, else the Numba kernel ``matmul``."""
    if not CUBLAS:
        matmul(a, b, out, trans_a, trans_b)
        return
    if out.size == 0:
        return
    a, b, out = cupy.asarray(a), cupy.asarray(b), cupy.asarray(out)    # views of the same memory
    for g in range(out.shape[0]):
        A = a[g].T if trans_a else a[g]
        B = b[g].T if trans_b else b[g]
        cupy.dot(A, B, out=out[g])                                       # cuBLAS's gemm, into out[g]


def as_batch(a):
    """A 2-D device array as a batch of one matrix, (1, R, C): a view, for matmul's 3-D arguments."""
    return a.reshape(1, a.shape[0], a.shape[1])

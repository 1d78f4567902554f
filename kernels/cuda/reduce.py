"""The block's tree sum: how a CUDA block adds up its threads' running sums.

A reduction kernel gives each thread of a block a running sum of its share of the terms (a
grid-stride or block-stride loop); ``block_sum`` then combines the block's sums in shared
memory by halving: threads 0..h-1 add in the sums of threads h..2h-1, for h = THREADS/2, ..., 1.
That is log2(THREADS) levels, in a fixed order, so the result does not depend on the timing of
the threads.  Every thread of the block must call it (it synchronizes the block).
"""

from numba import cuda


@cuda.jit(device=True, inline="always")
def block_sum(sums, tid, acc):
    """sum over the block's threads of their ``acc``, returned to every thread.

    sums: a shared array of one slot per thread (its length a power of 2, the block's size);
    tid: this thread's index in the block.  Inlined into the calling kernel ("always"), so that
    the kernel compiles to PTX without a GPU (tests/cuda/test_ptx.py).
    """
    sums[tid] = acc
    cuda.syncthreads()
    h = sums.shape[0] // 2
    while h > 0:
        if tid < h:
            sums[tid] += sums[tid + h]
        cuda.syncthreads()
        h //= 2
    return sums[0]

"""The block's tree reductions: how a CUDA block combines its threads' running sums (or maxima).

A reduction kernel gives each thread of a block a running sum of its share of the terms (a
grid-stride or block-stride loop); ``block_sum`` then combines the block's sums in shared
memory by halving: threads 0..h-1 add in the sums of threads h..2h-1, for h = THREADS/2, ..., 1.
That is log2(THREADS) levels, in a fixed order, so the result does not depend on the timing of
the threads.  ``block_max`` is the same tree with max in place of +: the maximum of a row of
softmax or cross-entropy, before its sum of exponentials.

Every thread of the block must call them (they synchronize the block), and every thread gets
the result.  Both end with a barrier after reading the result, so a kernel may call them again
with the same shared array (softmax's max, then its sum) without a thread of the next call
overwriting the slot that a slower thread has not read yet.
"""

from numba import cuda


@cuda.jit(device=True, inline="always")
def block_sum(sums, tid, acc):
    """sum over the block's threads of their ``acc``, returned to every thread.

    sums: a shared array of one slot per thread (its length a power of 2, the block's size) and
    of acc's dtype; tid: this thread's index in the block.  Inlined into the calling kernel
    ("always"), so that the kernel compiles to PTX without a GPU (tests/cuda/test_ptx.py).
    """
    sums[tid] = acc
    cuda.syncthreads()
    h = sums.shape[0] // 2
    while h > 0:
        if tid < h:
            sums[tid] += sums[tid + h]
        cuda.syncthreads()
        h //= 2
    total = sums[0]
    cuda.syncthreads()              # everyone has read sums[0]: the array may be used again
    return total


@cuda.jit(device=True, inline="always")
def block_max(maxima, tid, m):
    """max over the block's threads of their ``m``, returned to every thread.

    The tree of ``block_sum`` with max in place of +: threads 0..h-1 keep the larger of their
    value and that of thread tid + h, h = THREADS/2, ..., 1.  A NaN never wins (``a > b`` is
    False when either is NaN), as in the running maximum of the CPU loops (``if x > m: m = x``);
    a thread with no term passes -inf.  maxima: a shared array of one slot per thread (its length
    a power of 2, the block's size) and of m's dtype; tid: this thread's index.  Inlined
    ("always"), as block_sum.
    """
    maxima[tid] = m
    cuda.syncthreads()
    h = maxima.shape[0] // 2
    while h > 0:
        if tid < h:
            if maxima[tid + h] > maxima[tid]:
                maxima[tid] = maxima[tid + h]
        cuda.syncthreads()
        h //= 2
    largest = maxima[0]
    cuda.syncthreads()              # everyone has read maxima[0]: the array may be used again
    return largest

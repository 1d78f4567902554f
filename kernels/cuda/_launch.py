"""The launch configuration shared by the CUDA kernel modules.

One thread per output element: ``count`` threads in blocks of THREADS, the last block
partly idle (every kernel starts with ``if t >= count: return``).
"""

THREADS = 128      # threads per block of the one-thread-per-element kernels


def blocks_for(count):
    """The number of blocks of THREADS threads that cover ``count`` elements."""
    return (count + THREADS - 1) // THREADS


def launch(kernel, count, *args):
    """kernel[blocks, THREADS](*args), one thread per element of ``count``; nothing when count == 0.

    (A grid of zero blocks is an error in CUDA, and an empty output has nothing to compute.)
    """
    if count > 0:
        kernel[blocks_for(count), THREADS](*args)

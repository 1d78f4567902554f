"""Exercise: cross_entropy, the softmax classifier's loss, forward and backward, as loops.

Fill in every TODO, then grade your code against nbconv and finite differences:

    nbconv check cross_entropy.py

Plain NumPy loops as here, or your own @numba.njit loops called from these two functions: the
check calls cross_entropy_forward and cross_entropy_backward with the signatures below.  The
cache is yours, whatever the backward needs.
"""

import numpy as np


def cross_entropy_forward(logits, target):
    """logits (N, C), target (N,) integer class indices in [0, C) -> the mean loss (a number),
    and the cache:

        p[n, k] = exp(logits[n, k]) / sum_j exp(logits[n, j])       (the softmax of each row)
        L       = 1/N sum_n -log p[n, target[n]]

    the lecture's -sum_k t_k log y_k with a one-hot t, averaged over the batch.  Subtract each
    row's maximum before exp: the same p, and exp cannot overflow.
    """
    N, C = logits.shape
    probs = np.zeros_like(logits)           # p, which the backward needs
    total = 0.0
    for n in range(N):
        pass  # TODO: the softmax of row n into probs[n], and its term -log p[n, target[n]] added to total
    loss = 0.0                              # TODO: the mean over the batch
    cache = (probs, target)
    return loss, cache


def cross_entropy_backward(dout, cache):
    """dout, a number (1.0 when the loss ends the graph) -> (dlogits,), dlogits (N, C):

        dlogits[n, k] = dout * dL/dlogits[n, k]

    L averages N terms; term n depends on row n of the logits only.  Differentiate
    -log p[n, target[n]] with respect to logits[n, k] (the cases k = target[n] and k != target[n]).
    """
    probs, target = cache
    N, C = probs.shape
    dlogits = np.zeros_like(probs)
    for n in range(N):
        for k in range(C):
            pass  # TODO: dlogits[n, k]
    return (dlogits,)

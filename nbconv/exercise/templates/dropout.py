"""Exercise: dropout, inverted dropout, forward and backward, as a loop.

Fill in every TODO, then grade your code against nbconv and finite differences:

    nbconv check dropout.py

Plain NumPy loops as here, or your own @numba.njit loops called from these two functions: the
check calls dropout_forward and dropout_backward with the signatures below.  The cache is yours,
whatever the backward needs.

The mask is given: ``keep_mask`` draws the units nbconv's dropout keeps for the same seed and
p, so that the check can compare your output with nbconv's.
"""

import numpy as np

from nbconv.exercise import keep_mask


def dropout_forward(x, *, p=0.5, training=True, seed=None):
    """x of any shape -> out of x's shape, and the cache.

    Inverted dropout: in training each unit is kept with probability 1 - p, and the kept ones are
    divided by 1 - p, so that E[out] = x and inference needs no rescaling:

        out[i] = x[i] * keep[i] / (1 - p)      (training)
        out[i] = x[i]                          (inference, training=False)

    p is the probability of DROPPING a unit (the lecture's p is the probability of keeping one,
    1 - p here).  For p = 1 every unit is dropped and out is all zeros (the scale is 0, not 1 / 0).
    """
    out = np.zeros_like(x)
    if not training:
        # TODO: at inference dropout is the identity: out[i] = x[i]
        return out, (None, 1.0)
    keep = keep_mask(x.shape, p, seed)      # bool, x's shape: True where nbconv keeps the unit
    scale = 0.0                             # TODO: 1 / (1 - p), and 0 when p = 1
    for index in np.ndindex(x.shape):
        pass  # TODO: out[index]
    cache = (keep, scale)
    return out, cache


def dropout_backward(dout, cache):
    """dout (x's shape), the gradient dL/dout -> (dx,), dx = dout * dout/dx element by element:
    out is linear in x, with the forward's mask (at inference, the identity)."""
    keep, scale = cache
    dx = np.zeros_like(dout)
    for index in np.ndindex(dout.shape):
        pass  # TODO: dx[index] (keep is None at inference)
    return (dx,)

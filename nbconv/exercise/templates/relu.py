"""Exercise: relu, the rectified linear unit, forward and backward, as a loop.

Fill in every TODO, then grade your code against nbconv and finite differences:

    nbconv check relu.py

Plain NumPy loops as here, or your own @numba.njit loops called from these two functions: the
check calls relu_forward and relu_backward with the signatures below.  The cache is yours,
whatever the backward needs.
"""

import numpy as np


def relu_forward(x):
    """y = max(0, x), element by element; x of any shape -> y of x's shape, and the cache."""
    y = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        pass  # TODO: y[index]
    cache = (x,)
    return y, cache


def relu_backward(dout, cache):
    """dout (x's shape), the gradient dL/dy -> (dx,), dx = dout * dy/dx element by element.

    At x = 0 ReLU has a kink and no derivative; take 0 there (the x <= 0 side), as nbconv does.
    """
    (x,) = cache
    dx = np.zeros_like(dout)
    for index in np.ndindex(x.shape):
        pass  # TODO: dx[index]
    return (dx,)

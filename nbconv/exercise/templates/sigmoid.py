"""Exercise: sigmoid, the logistic function, forward and backward, as a loop.

Fill in every TODO, then grade your code against nbconv and finite differences:

    nbconv check sigmoid.py

Plain NumPy loops as here, or your own @numba.njit loops called from these two functions: the
check calls sigmoid_forward and sigmoid_backward with the signatures below.  The cache is yours,
whatever the backward needs.
"""

import numpy as np


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), element by element; x of any shape -> y of x's shape, and the cache.

    (For x below about -709 exp(-x) overflows; exp(x) / (1 + exp(x)) is the same number there.)
    """
    y = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        pass  # TODO: y[index]
    cache = (y,)                      # the derivative can be written with y alone
    return y, cache


def sigmoid_backward(dout, cache):
    """dout (x's shape), the gradient dL/dy -> (dx,), dx = dout * dy/dx element by element.

    Differentiate 1 / (1 + exp(-x)) and write the result with y = sigmoid(x).
    """
    (y,) = cache
    dx = np.zeros_like(dout)
    for index in np.ndindex(y.shape):
        pass  # TODO: dx[index]
    return (dx,)

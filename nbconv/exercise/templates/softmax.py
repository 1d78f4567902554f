"""Exercise: softmax along one axis, forward and backward, as loops.

Fill in every TODO, then grade your code against nbconv and finite differences:

    nbconv check softmax.py

Plain NumPy loops as here, or your own @numba.njit loops called from these two functions: the
check calls softmax_forward and softmax_backward with the signatures below.  The cache is yours,
whatever the backward needs.
"""

import numpy as np


def softmax_forward(x, *, axis=-1):
    """x of any shape -> s of x's shape, a distribution along ``axis`` for every position of the
    other axes, and the cache:

        s[..., k, ...] = exp(x[..., k, ...]) / sum_j exp(x[..., j, ...])      (k, j along axis)

    Compute it as exp(x_k - max) / sum_j exp(x_j - max), max the largest x_j of the distribution:
    the same numbers, and exp cannot overflow.
    """
    xt = np.moveaxis(x, axis, -1)           # a view with the softmax axis last: one row per distribution
    K = xt.shape[-1]
    st = np.zeros_like(xt)
    for row in np.ndindex(xt.shape[:-1]):   # every distribution: xt[row] is a vector of K values
        pass  # TODO: st[row][k] for k in range(K): the row's maximum, the exponentials, their sum
    s = np.moveaxis(st, -1, axis)           # back to x's axes
    cache = (st, axis)
    return s, cache


def softmax_backward(dout, cache):
    """dout (x's shape), the gradient dL/ds -> (dx,).

    Every s_k of a distribution depends on every x_j of it, so

        dx_j = sum_k dout_k * ds_k/dx_j          (j, k along the axis)

    Derive ds_k/dx_j (it can be written with the s values alone, the cases j = k and j != k),
    and simplify the sum.
    """
    st, axis = cache
    doutt = np.moveaxis(dout, axis, -1)     # the same view as in the forward
    K = st.shape[-1]
    dxt = np.zeros_like(st)
    for row in np.ndindex(st.shape[:-1]):
        pass  # TODO: dxt[row][j] for j in range(K)
    return (np.moveaxis(dxt, -1, axis),)

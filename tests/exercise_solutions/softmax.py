"""Solution of the softmax exercise: nbconv/exercise/templates/softmax.py with the TODOs filled in."""

import math

import numpy as np


def softmax_forward(x, *, axis=-1):
    """s_k = exp(x_k - max) / sum_j exp(x_j - max) along axis"""
    xt = np.moveaxis(x, axis, -1)
    K = xt.shape[-1]
    st = np.zeros_like(xt)
    for row in np.ndindex(xt.shape[:-1]):
        v = xt[row]
        largest = max(v[k] for k in range(K))
        total = 0.0
        for k in range(K):
            st[row][k] = math.exp(v[k] - largest)
            total += st[row][k]
        for k in range(K):
            st[row][k] /= total
    s = np.moveaxis(st, -1, axis)
    cache = (st, axis)
    return s, cache


def softmax_backward(dout, cache):
    """ds_k/dx_j = s_k ([j = k] - s_j), so dx_j = s_j (dout_j - sum_k dout_k s_k)"""
    st, axis = cache
    doutt = np.moveaxis(dout, axis, -1)
    K = st.shape[-1]
    dxt = np.zeros_like(st)
    for row in np.ndindex(st.shape[:-1]):
        s, d = st[row], doutt[row]
        weighted = 0.0
        for k in range(K):
            weighted += d[k] * s[k]
        for j in range(K):
            dxt[row][j] = s[j] * (d[j] - weighted)
    return (np.moveaxis(dxt, -1, axis),)

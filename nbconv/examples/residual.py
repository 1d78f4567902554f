"""The fan-out rule of backpropagation, and the residual connection that relies on it.

Where a value feeds several edges of the graph, its gradient is the sum of what each edge
hands back (the lecture "Introduction to neural networks": 0.7 + 1.5 = 2.2 and
1.1 - 0.3 + 0.9 = 1.7).  A residual block y = conv(x) + x (the book page on residual
connections) is the case every deep network meets: x feeds the convolution and the shortcut,
so dL/dx = (what the convolution hands back) + dL/dy.
"""

from __future__ import annotations

import numpy as np

import nbconv.functional as F

from .replay import Example, Replay, fmt

# the lecture's two nodes: the partial derivatives on their outgoing edges, and their sums
FAN_OUTS = [((0.7, 1.5), 2.2, "0.7 + 1.5 = 2.2"),
            ((1.1, -0.3, 0.9), 1.7, "1.1 - 0.3 + 0.9 = 1.7")]

# the residual block: one 3x3 map, a 3x3 kernel, the gradient arriving at y
X = [[1.0, 2.0, 0.0], [-1.0, 3.0, 1.0], [2.0, 0.0, -2.0]]
W = [[0.0, 1.0, 0.0], [1.0, -2.0, 1.0], [0.0, 1.0, 0.0]]
DOUT = [[1.0, 0.0, 2.0], [0.0, 1.0, -1.0], [1.0, 1.0, 0.0]]
H_STEP = 1e-6


def conv_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """One map, one kernel, zero padding P = (K - 1) / 2 so the size is kept (cross-correlation):
    y[i, j] = sum_{a, b} w[a, b] * x[i + a - P, j + b - P], with x = 0 outside."""
    height, width = x.shape
    K = w.shape[0]
    P = (K - 1) // 2
    y = np.zeros_like(x)
    for i in range(height):
        for j in range(width):
            for a in range(K):
                for b in range(K):
                    r, c = i + a - P, j + b - P
                    if 0 <= r < height and 0 <= c < width:
                        y[i, j] += w[a, b] * x[r, c]
    return y


def numeric_gradient(loss, x: np.ndarray, h: float = H_STEP) -> np.ndarray:
    """dloss/dx by central differences, one element at a time: (loss(x + h e) - loss(x - h e)) / 2h."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += h
        down[index] -= h
        grad[index] = (loss(up) - loss(down)) / (2.0 * h)
    return grad


def fan_out() -> Replay:
    """The lecture's two sums through linear_backward, then a residual block's dx as the sum of
    its two branches, against central differences of a plain-NumPy forward."""
    r = Replay("fan-out", "The fan-out rule: a value used by several branches gets the sum of their gradients")
    r.say("A node x feeding k edges y_j = w_j x, with dL/dy_j = 1: each edge hands back w_j, and",
          "dL/dx = sum_j w_j.  nbconv: y = F.linear_forward(x, w) with w a column of the w_j,",
          "dL/dx = F.linear_backward(ones, cache)[0].")
    for partials, total, text in FAN_OUTS:
        x = np.array([[1.0]])
        w = np.array([[p] for p in partials])
        _, cache = F.linear_forward(x, w)
        dx, _, _ = F.linear_backward(np.ones((1, len(partials))), cache)
        r.check("dL/dx, edges " + ", ".join(fmt(p) for p in partials), dx[0, 0], total, lecture=text)

    x, w, dout = np.array(X), np.array(W), np.array(DOUT)
    r.say("", "A residual block y = conv(x) + x (3x3 kernel, padding 1 keeps the size), L = sum(dL/dy * y):",
          f"x = {X}", f"w = {W}", f"dL/dy = {DOUT}")
    y, cache = F.residual_forward(x[None, None], w[None, None])
    r.show("y = F.residual_forward(x, w)", y[0, 0])
    r.check("y = conv(x) + x", y[0, 0], conv_same(x, w) + x, note="plain loops")
    dx, _, _ = F.residual_backward(dout[None, None], cache)
    _, conv_cache = F.conv2d_forward(x[None, None], w[None, None], padding=1)
    dx_conv, _, _ = F.conv2d_backward(dout[None, None], conv_cache)

    conv_only = numeric_gradient(lambda v: float(np.sum(dout * conv_same(v, w))), x)
    shortcut_only = numeric_gradient(lambda v: float(np.sum(dout * v)), x)
    both = numeric_gradient(lambda v: float(np.sum(dout * (conv_same(v, w) + v))), x)
    r.say("", "expected: central differences (h = 1e-6) of L through plain-NumPy loops, per branch and both")
    r.show("dL/dx through the conv, F.conv2d_backward", dx_conv[0, 0])
    r.show("dL/dx through the shortcut: dL/dy", dout)
    r.show("dL/dx = F.residual_backward(dL/dy, cache)[0], their sum", dx[0, 0])
    r.check("through the conv", dx_conv[0, 0], conv_only)
    r.check("through the shortcut", dx[0, 0] - dx_conv[0, 0], shortcut_only,
            note="residual's dx minus conv's: dL/dy itself")
    r.check("dL/dx (residual_backward)", dx[0, 0], both, note="the sum of the two branches")
    return r


EXAMPLES = [
    Example("fan-out", "the fan-out rule: 0.7 + 1.5 = 2.2, and a residual block's dx = conv's + shortcut's",
            fan_out),
]

"""nbconv: convolutional networks as readable loop nests, compiled by Numba.

    import nbconv.functional as F
    y, cache = F.conv2d_forward(x, w, b, stride=1, padding=1)
    dx, dw, db = F.conv2d_backward(dy, cache)
"""

__version__ = "0.1.0"

from . import functional, shapes  # noqa: E402,F401

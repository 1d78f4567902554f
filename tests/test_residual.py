import numpy as np
import pytest

import nbconv.functional as F


@pytest.mark.parametrize("method", ["direct", "im2col"])
def test_residual_is_conv_plus_identity(method, rng):
    x = rng.standard_normal((2, 3, 5, 4))
    w = rng.standard_normal((3, 3, 3, 3))
    b = rng.standard_normal(3)
    y, cache = F.residual_forward(x, w, b, method=method)
    conv, conv_cache = F.conv2d_forward(x, w, b, padding=1, method=method)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, conv + x, rtol=1e-12)
    # fan-out: dx collects the conv branch's gradient and the shortcut's dout
    dy = rng.standard_normal(y.shape)
    dx, dw, db = F.residual_backward(dy, cache)
    dx_conv, dw_conv, db_conv = F.conv2d_backward(dy, conv_cache)
    np.testing.assert_allclose(dx, dx_conv + dy, rtol=1e-12)
    np.testing.assert_allclose(dw, dw_conv, rtol=1e-12)
    np.testing.assert_allclose(db, db_conv, rtol=1e-12)


def test_zero_weights_make_the_block_an_identity(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    y, cache = F.residual_forward(x, np.zeros((2, 2, 5, 5)))
    np.testing.assert_array_equal(y, x)
    dy = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(F.residual_backward(dy, cache)[0], dy)


def test_residual_errors():
    with pytest.raises(ValueError, match=r"w must have as many filters as x has channels \(3\)"):
        F.residual_forward(np.zeros((1, 3, 4, 4)), np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"w must have odd kernel sizes .* got 2x3"):
        F.residual_forward(np.zeros((1, 3, 4, 4)), np.zeros((3, 3, 2, 3)))

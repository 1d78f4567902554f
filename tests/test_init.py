"""Initializers (issue 6, item 2): fans, each distribution's spread against its formula, seeding.

Expected values are the formulas themselves, written here with the fans counted by hand.
Statistical checks use one fixed seed and tolerances of about five standard errors.
"""

import math

import numpy as np
import pytest

from nbconv import init

LINEAR = (300, 400)          # (out_features, in_features): fan_in 400, fan_out 300, 120,000 samples
CONV = (64, 32, 3, 3)        # (F, C, KH, KW): fan_in 32*9 = 288, fan_out 64*9 = 576, 18,432 samples
FANS = {LINEAR: (400, 300), CONV: (288, 576)}


# --------------------------------------------------------------------------- fans

@pytest.mark.parametrize("shape, expected", [
    ((3, 5), (5, 3)),                  # linear (out, in): fan_in = in, fan_out = out
    ((10, 1), (1, 10)),
    ((8, 4, 3, 5), (4 * 15, 8 * 15)),  # conv2d (F, C, KH, KW): C*KH*KW and F*KH*KW
    ((96, 3, 11, 11), (363, 11616)),   # AlexNet conv1: 363 = 11*11*3, the im2col row length
    ((8, 4, 3), (12, 24)),             # conv1d (F, C, K)
    ((2, 3, 1, 1), (3, 2)),            # 1x1 conv is a linear layer over channels
])
def test_fans(shape, expected):
    assert init.fans(shape) == expected


def test_fans_errors():
    with pytest.raises(ValueError, match=r"rank >= 2, got shape \(5,\)"):
        init.fans((5,))
    with pytest.raises(ValueError, match=r"rank >= 2, got shape \(\)"):
        init.fans(())
    with pytest.raises(ValueError, match=r"every dimension >= 1, got shape \(3, 0\)"):
        init.fans((3, 0))
    with pytest.raises(ValueError, match=r"every dimension >= 1"):
        init.normal((4, 2, 0, 3), np.random.default_rng(0))


# --------------------------------------------------------------------------- spreads

def _std(name, fan_in, fan_out):
    """Each initializer's standard deviation, from its formula (uniform U(-a, a) has std a / sqrt(3))."""
    return {
        "normal": math.sqrt(1 / fan_in),                          # the lecture: N(0, 1/fan_in)
        "xavier_normal": math.sqrt(2 / (fan_in + fan_out)),
        "xavier_uniform": math.sqrt(6 / (fan_in + fan_out)) / math.sqrt(3),
        "he_normal": math.sqrt(2 / fan_in),
        "he_uniform": math.sqrt(6 / fan_in) / math.sqrt(3),
    }[name]


@pytest.mark.parametrize("shape", [LINEAR, CONV], ids=["linear", "conv"])
@pytest.mark.parametrize("name", ["normal", "xavier_normal", "xavier_uniform", "he_normal", "he_uniform"])
def test_spread_matches_formula(name, shape):
    w = init.INITIALIZERS[name](shape, np.random.default_rng(1))
    assert w.shape == shape and w.dtype == np.float64
    n = w.size
    std = _std(name, *FANS[shape])
    assert abs(w.mean()) < 5 * std / math.sqrt(n)
    assert w.std() == pytest.approx(std, rel=5 / math.sqrt(2 * n))
    within_one_std = np.mean(np.abs(w) < std)
    if name.endswith("uniform"):
        a = std * math.sqrt(3)                                    # the bound of U(-a, a)
        assert np.all(np.abs(w) <= a)
        assert w.max() > a * (1 - 2e-3) and w.min() < -a * (1 - 2e-3)
        assert within_one_std == pytest.approx(1 / math.sqrt(3), abs=0.01)   # 0.577 for a uniform
    else:
        assert within_one_std == pytest.approx(0.6827, abs=0.01)             # 68% for a normal


def test_lecture_normal_keeps_the_variance_of_a_layer():
    # W ~ N(0, 1/fan_in) is chosen so that y = W x has the variance of x (each y sums fan_in terms)
    rng = np.random.default_rng(2)
    w = init.normal((200, 500), rng)
    x = rng.standard_normal((500, 400))
    assert np.var(w @ x) == pytest.approx(1.0, rel=0.05)
    # He: after a ReLU the second moment halves, and 2/fan_in restores it
    w = init.he_normal((200, 500), rng)
    assert np.mean((w @ np.maximum(x, 0)) ** 2) == pytest.approx(1.0, rel=0.05)


def test_xavier_equals_the_lecture_when_fans_are_equal():
    # 2 / (fan_in + fan_out) is 1/fan_in when fan_in == fan_out (a square 3x3 conv, C = F)
    fan_in, fan_out = init.fans((50, 50, 3, 3))
    assert _std("xavier_normal", fan_in, fan_out) == pytest.approx(_std("normal", fan_in, fan_out))
    w = init.xavier_normal((50, 50, 3, 3), np.random.default_rng(3))
    assert w.std() == pytest.approx(1 / math.sqrt(450), rel=0.03)


# --------------------------------------------------------------------------- seeding

@pytest.mark.parametrize("name", sorted(init.INITIALIZERS))
def test_seeded_reproducibility(name):
    fn = init.INITIALIZERS[name]
    a = fn((6, 4, 3, 3), np.random.default_rng(42))
    b = fn((6, 4, 3, 3), np.random.default_rng(42))
    c = fn((6, 4, 3, 3), np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    rng = np.random.default_rng(42)
    first, second = fn((6, 4), rng), fn((6, 4), rng)     # one generator advances between draws
    assert not np.allclose(first, second)


def test_registry_and_constants():
    assert set(init.INITIALIZERS) == {"normal", "xavier_normal", "xavier_uniform", "he_normal", "he_uniform"}
    assert init.INITIALIZERS["normal"] is init.normal
    np.testing.assert_array_equal(init.zeros((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(init.ones((4,)), np.ones(4))

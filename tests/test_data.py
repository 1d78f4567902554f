"""nbconv.data: the digits split (sizes, stratification, reproducibility, normalization) and random_shift."""

import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_digits as sk_load_digits  # noqa: E402

from nbconv.data import Digits, load_digits, random_shift  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def raw():
    bunch = sk_load_digits()
    return bunch.images.astype(np.float64), bunch.target


def _raw_pixels(d: Digits, x):
    """Undo the normalization: the pixel values 0..16 of the original images."""
    return x.astype(np.float64) * d.std + d.mean


def test_shapes_dtypes_and_sizes(digits):
    assert isinstance(digits, Digits)
    # 1797 images: 20% test (360), 15% validation (270), the rest (1167) for training
    assert (len(digits.y_train), len(digits.y_val), len(digits.y_test)) == (1167, 270, 360)
    for x, y in ((digits.x_train, digits.y_train), (digits.x_val, digits.y_val), (digits.x_test, digits.y_test)):
        assert x.shape == (len(y), 1, 8, 8) and x.dtype == np.float32 and x.flags.c_contiguous
        assert y.dtype == np.int64 and y.min() >= 0 and y.max() <= 9
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    assert "train=1167" in repr(digits)


def test_splits_partition_the_data_set(digits, raw):
    images, labels = raw
    # every image with its label, once: the three splits together are exactly the data set
    ours = np.concatenate([np.column_stack([_raw_pixels(digits, x).reshape(len(x), -1), y])
                           for x, y in ((digits.x_train, digits.y_train), (digits.x_val, digits.y_val),
                                        (digits.x_test, digits.y_test))])
    theirs = np.column_stack([images.reshape(len(images), -1), labels])
    ours = np.round(ours, 3)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours[np.lexsort(ours.T)], theirs[np.lexsort(theirs.T)])


def test_split_is_stratified(digits, raw):
    _, labels = raw
    share = np.bincount(labels, minlength=10) / len(labels)
    for y in (digits.y_train, digits.y_val, digits.y_test):
        counts = np.bincount(y, minlength=10)
        # each class keeps its share of the whole set, to within one image
        assert np.all(np.abs(counts - share * len(y)) <= 1.0), counts


def test_normalized_with_training_statistics_only(digits, raw):
    images, _ = raw
    # the training pixels have mean 0 and std 1; the statistics are those of the training images
    assert abs(float(digits.x_train.mean())) < 1e-5
    assert float(digits.x_train.std()) == pytest.approx(1.0, abs=1e-5)
    train_pixels = _raw_pixels(digits, digits.x_train)
    assert digits.mean == pytest.approx(train_pixels.mean(), abs=1e-4)
    assert digits.std == pytest.approx(train_pixels.std(), abs=1e-4)
    assert digits.mean != pytest.approx(images.mean(), abs=1e-4)      # not the whole set's mean
    # every split went through the same affine map: undone, its pixels are the integers 0..16
    for x in (digits.x_train, digits.x_val, digits.x_test):
        pixels = _raw_pixels(digits, x)
        np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-4)
        assert pixels.min() > -1e-4 and pixels.max() < 16 + 1e-4
    # so validation and test are NOT exactly standardized
    assert abs(float(digits.x_test.mean())) > 1e-4


def test_same_seed_same_split_other_seed_other_split(digits):
    again = load_digits(seed=0)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(again, name), getattr(digits, name))
    other = load_digits(seed=1)
    assert other.x_test.shape == digits.x_test.shape
    assert not np.array_equal(other.x_test, digits.x_test)


def test_fractions_and_dtype():
    d = load_digits(seed=3, val_fraction=0.0, test_fraction=0.5, dtype=np.float64)
    assert len(d.y_val) == 0 and d.x_val.shape == (0, 1, 8, 8)
    assert len(d.y_test) == 899 and len(d.y_train) == 898
    assert d.x_train.dtype == np.float64


def test_errors():
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\), got 0.0"):
        load_digits(test_fraction=0.0)
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\), got 1.5"):
        load_digits(val_fraction=1.5)
    with pytest.raises(ValueError, match=r"val_fraction \+ test_fraction must leave images to train on"):
        load_digits(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(TypeError, match=r"test_fraction must be a float in \[0, 1\), got '0.2'"):
        load_digits(test_fraction="0.2")
    with pytest.raises(TypeError, match=r"dtype must be float32 or float64, got int64"):
        load_digits(dtype=np.int64)


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)     # makes the import fail
    with pytest.raises(ImportError, match=r'pip install "nbconv\[train\]"'):
        load_digits()


# ---------------------------------------------------------------- random_shift

class _FixedShifts:
    """A stand-in generator that returns chosen shifts."""

    def __init__(self, shifts):
        self.shifts = np.array(shifts)

    def integers(self, low, high, size):
        assert size == self.shifts.shape
        return self.shifts


def test_random_shift_moves_each_image_and_fills_background():
    x = np.arange(3 * 1 * 3 * 3, dtype=np.float32).reshape(3, 1, 3, 3) + 1.0     # background (min) is 1
    out = random_shift(x, _FixedShifts([[1, 0], [0, -1], [0, 0]]))
    fill = 1.0
    np.testing.assert_array_equal(out[0, 0], [[fill, fill, fill], [1, 2, 3], [4, 5, 6]])          # down by one
    np.testing.assert_array_equal(out[1, 0], [[11, 12, fill], [14, 15, fill], [17, 18, fill]])    # left by one
    np.testing.assert_array_equal(out[2], x[2])
    assert out.dtype == x.dtype and not np.shares_memory(out, x)


def test_random_shift_is_seeded_and_bounded():
    rng_x = np.random.default_rng(0)
    x = rng_x.standard_normal((50, 2, 6, 6)).astype(np.float32)
    a = random_shift(x, np.random.default_rng(7), max_shift=2)
    b = random_shift(x, np.random.default_rng(7), max_shift=2)
    np.testing.assert_array_equal(a, b)
    # every output is x moved by some (dy, dx) with |dy|, |dx| <= 2: its inner part matches somewhere
    for n in range(len(x)):
        found = any(np.array_equal(a[n, :, max(dy, 0):6 + min(dy, 0), max(dx, 0):6 + min(dx, 0)],
                                   x[n, :, max(-dy, 0):6 + min(-dy, 0), max(-dx, 0):6 + min(-dx, 0)])
                    for dy in range(-2, 3) for dx in range(-2, 3))
        assert found
    np.testing.assert_array_equal(random_shift(x, np.random.default_rng(0), max_shift=0), x)


def test_random_shift_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"max_shift must be an int >= 0, got -1"):
        random_shift(np.zeros((1, 1, 4, 4)), rng, max_shift=-1)
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\), got a 2-D array"):
        random_shift(np.zeros((4, 4)), rng)

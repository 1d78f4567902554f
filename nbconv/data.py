"""The digits data set: 1,797 images of 8x8 pixels, 10 classes, shipped inside scikit-learn.

    from nbconv.data import load_digits
    d = load_digits(seed=0)
    d.x_train.shape     # (1167, 1, 8, 8), float32, normalized
    d.y_train.dtype     # int64, class indices 0..9

``sklearn.datasets.load_digits`` reads a file inside the scikit-learn package, so nothing is
downloaded.  The split is stratified (every split keeps the class proportions) and reproducible:
the same ``seed`` gives the same split.  Pixels (0..16) are normalized with one mean and one
standard deviation computed on the TRAINING images only, so no statistic of the validation or
test images leaks into training:

    x = (pixels - mean_train) / std_train
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Digits", "load_digits", "random_shift"]

_MISSING = 'the digits data set needs scikit-learn, an optional extra of nbconv: pip install "nbconv[train]"'


@dataclass(frozen=True)
class Digits:
    """A train/validation/test split of digits: images (N, 1, 8, 8) normalized, labels (N,) int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: float                 # of the training pixels (raw scale 0..16), subtracted from every split
    std: float                  # of the training pixels, divided into every split
    num_classes: int = 10

    @property
    def input_shape(self) -> tuple:
        """One image's shape, (C, H, W)."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (f"Digits(train={len(self.y_train)}, val={len(self.y_val)}, test={len(self.y_test)}, "
                f"input_shape={self.input_shape}, dtype={self.x_train.dtype}, mean={self.mean:.4f}, "
                f"std={self.std:.4f})")


def _fraction(name: str, value, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a float in [0, 1), got {value!r}")
    value = float(value)
    low_ok = value >= 0.0 if allow_zero else value > 0.0
    if not (low_ok and value < 1.0):
        raise ValueError(f"{name} must be in {'[0' if allow_zero else '(0'}, 1), got {value}")
    return value


def load_digits(seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.2,
                dtype=np.float32) -> Digits:
    """The digits split into train / validation / test, stratified by class and reproducible.

    ``test_fraction`` and ``val_fraction`` are fractions of all 1,797 images (the training split
    gets the rest); ``val_fraction=0`` gives an empty validation split.  Images are (N, 1, 8, 8)
    of ``dtype`` (float32 or float64), normalized with the training split's mean and std; labels
    are int64.
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise ImportError(_MISSING, name="sklearn") from exc
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    test_fraction = _fraction("test_fraction", test_fraction, allow_zero=False)
    val_fraction = _fraction("val_fraction", val_fraction, allow_zero=True)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must leave images to train on (< 1), got "
                         f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction}")

    bunch = sk_load_digits()
    images = bunch.images.astype(np.float64)          # (1797, 8, 8), values 0..16
    labels = bunch.target.astype(np.int64)
    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=labels)
    if val_fraction > 0:
        train, val = train_test_split(rest, test_size=val_fraction / (1.0 - test_fraction),
                                      random_state=seed, stratify=labels[rest])
    else:
        train, val = rest, rest[:0]
    # Sorted indices within each split: the order carries no information, training shuffles anyway.
    train, val, test = np.sort(train), np.sort(val), np.sort(test)

    mean = float(images[train].mean())
    std = float(images[train].std())

    def split(idx):
        x = ((images[idx] - mean) / std)[:, None, :, :]
        return np.ascontiguousarray(x, dtype=dtype), np.ascontiguousarray(labels[idx])

    x_train, y_train = split(train)
    x_val, y_val = split(val)
    x_test, y_test = split(test)
    return Digits(x_train, y_train, x_val, y_val, x_test, y_test, mean, std, num_classes=10)


def random_shift(x: np.ndarray, rng: np.random.Generator, max_shift: int = 1) -> np.ndarray:
    """Data augmentation: each image of ``x`` (N, C, H, W) moved by a random whole number of pixels,
    -max_shift..max_shift along each axis, drawn from ``rng``; pixels moved in take the background
    value (the batch's minimum, which is what a blank pixel becomes after normalization).

    Returns a new array; ``x`` is not changed.  ``max_shift=0`` returns a copy.
    """
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
        raise ValueError(f"max_shift must be an int >= 0, got {max_shift!r}")
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got a {x.ndim}-D array of shape {x.shape}")
    N, C, H, W = x.shape
    out = x.copy()
    if N == 0 or max_shift == 0:
        return out
    s = int(max_shift)
    padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)), constant_values=x.min())
    shifts = rng.integers(-s, s + 1, size=(N, 2))
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            pick = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            if pick.any():
                # output pixel (i, j) shows input pixel (i - dy, j - dx): the image moves by (dy, dx)
                out[pick] = padded[pick, :, s - dy:s - dy + H, s - dx:s - dx + W]
    return out

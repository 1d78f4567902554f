"""The figure of a training run: loss and accuracy curves per epoch and the first convolution's
filters.  matplotlib is optional (``pip install "nbconv[plot]"``) and imported
only when a figure is drawn, through matplotlib.figure (no pyplot: no backend is chosen or changed);
``matplotlib_missing()`` lets a command check for it before it trains."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np

from . import devices

if TYPE_CHECKING:
    from .training import History

__all__ = ["plot_training", "matplotlib_missing", "MISSING"]

MISSING = 'the figure needs matplotlib, an optional extra of nbconv: pip install "nbconv[plot]"'


def matplotlib_missing() -> str | None:
    """``MISSING`` if matplotlib cannot be imported here, else None."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        return MISSING
    return None


def plot_training(history: History, model, path, *, test_accuracy: float | None = None) -> str:
    """Save one figure to ``path``: the loss curves, the accuracy curves and the filters of the
    model's first convolution as small gray images.  Needs matplotlib (the plot extra)."""
    try:
        from matplotlib.figure import Figure       # no pyplot: no backend is chosen or changed
    except ImportError as exc:
        raise ImportError(MISSING, name="matplotlib") from exc
    filters = next((devices.to_host(p.data) for name, p in model.named_parameters() if p.data.ndim == 4), None)
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    outer = fig.add_gridspec(1, 3, width_ratios=[1, 1, 1])
    epochs = np.arange(1, len(history) + 1)

    ax = fig.add_subplot(outer[0])
    ax.plot(epochs, history.train_loss, marker="o", ms=3, label="train")
    ax.plot(epochs, history.val_loss, marker="o", ms=3, label="validation")
    ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss", yscale="log")
    ax.legend()

    ax = fig.add_subplot(outer[1])
    ax.plot(epochs, history.train_acc, marker="o", ms=3, label="train")
    ax.plot(epochs, history.val_acc, marker="o", ms=3, label="validation")
    if test_accuracy is not None:
        ax.axhline(test_accuracy, color="gray", ls="--", lw=1, label=f"test {test_accuracy:.4f}")
    ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax.legend()

    if filters is None:
        ax = fig.add_subplot(outer[2])
        ax.text(0.5, 0.5, "no convolution", ha="center", va="center")
        ax.axis("off")
    else:
        count = filters.shape[0]
        cols = math.ceil(math.sqrt(count))
        rows = math.ceil(count / cols)
        inner = outer[2].subgridspec(rows, cols, wspace=0.08, hspace=0.08)
        for f in range(rows * cols):
            ax = fig.add_subplot(inner[f // cols, f % cols])
            ax.axis("off")
            if f < count:
                kernel = filters[f].mean(axis=0)      # (KH, KW); the first layer usually has one channel
                limit = float(np.abs(kernel).max()) or 1.0
                ax.imshow(kernel, cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
            if f == cols // 2:
                ax.set_title(f"first-layer filters ({count})")
    fig.savefig(path, dpi=110)
    return os.fspath(path)

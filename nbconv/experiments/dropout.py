"""dropout-gap: dropout and the gap between training and validation accuracy.

A network with far more weights than training images can memorize them: training accuracy 100 %,
validation accuracy well below, the gap of overfitting.  Dropout (``Dropout(p)``: in training
every unit is dropped with probability p and the kept ones divided by 1 - p; at evaluation the
identity) trains a different thinned network at every step, so no unit can rely on particular
others: the network cannot memorize as easily, and the gap shrinks.

The digits are an easy set: even 300 images memorized generalize well (about 0.9 validation
accuracy), and dropout has little to fix there (the rows "clean" of the table show it, unchecked).
Overfitting shows plainly when the training set holds something that does not generalize:
here 30 % of the 300 training labels are replaced by another class, drawn at random (seeded);
the validation labels stay clean.  Memorizing now means learning the wrong labels.

Both accuracies are measured in eval mode (dropout off): the training accuracy on the training
images with the labels the network was trained on.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nbconv.layers import Dropout, Flatten, Linear, ReLU, Sequential
from nbconv.optim import Adam
from nbconv.training import evaluate, thread_limit, train

from .base import Experiment, Outcome, digits, new_figure, save_png

TRAIN_IMAGES = 300
NOISE = 0.3              # fraction of training labels replaced
WIDTH = 256
LR = 1e-3                # Adam
EPOCHS = 60
QUICK_EPOCHS = 30
BATCH = 32
SEED = 0
# (labels, p): the runs of the table, in order
RUNS = (("clean", 0.0), ("clean", 0.5), ("30% noisy", 0.0), ("30% noisy", 0.25), ("30% noisy", 0.5))
QUICK_RUNS = (("30% noisy", 0.0), ("30% noisy", 0.5))


def network(p: float, seed: int = SEED) -> Sequential:
    """Flatten -> Linear(64, 256) -> ReLU -> Dropout(p) -> Linear(256, 256) -> ReLU -> Dropout(p)
    -> Linear(256, 10): 85,002 weights for 300 images."""
    rng = np.random.default_rng(seed)
    return Sequential(Flatten(),
                      Linear(64, WIDTH, seed=rng), ReLU(), Dropout(p, seed=rng),
                      Linear(WIDTH, WIDTH, seed=rng), ReLU(), Dropout(p, seed=rng),
                      Linear(WIDTH, 10, init="xavier_normal", seed=rng))


def noisy_labels(y: np.ndarray, fraction: float, seed: int = SEED) -> np.ndarray:
    """A copy of ``y`` with each label, with probability ``fraction``, replaced by one of the other
    nine classes (uniformly)."""
    rng = np.random.default_rng([seed, 1])
    y = y.copy()
    flip = rng.random(len(y)) < fraction
    y[flip] = (y[flip] + rng.integers(1, 10, size=int(flip.sum()))) % 10
    return y


def subset(labels: str):
    """The first TRAIN_IMAGES training images, with clean or noisy labels."""
    data = digits()
    x, y = data.x_train[:TRAIN_IMAGES], data.y_train[:TRAIN_IMAGES]
    if labels != "clean":
        y = noisy_labels(y, NOISE)
    return dataclasses.replace(data, x_train=x, y_train=y)


def run(quick: bool = False) -> Outcome:
    runs, epochs = (QUICK_RUNS, QUICK_EPOCHS) if quick else (RUNS, EPOCHS)
    out = Outcome("dropout-gap", "Dropout and the gap between training and validation accuracy")
    results = []
    with thread_limit(1):
        for labels, p in runs:
            data = subset(labels)
            model = network(p)
            curve = []          # per epoch: (training accuracy in eval mode, validation accuracy)

            def measure(epoch, history, model=model, data=data, curve=curve):
                curve.append((evaluate(model, data.x_train, data.y_train)[1], history.val_acc[-1]))

            train(model, data, Adam(model.parameters(), lr=LR), epochs=epochs, batch_size=BATCH, seed=SEED,
                  progress=False, callback=measure)
            train_acc, val_acc = curve[-1]
            results.append({"labels": labels, "p": p, "train_acc": train_acc, "val_acc": val_acc,
                            "gap": train_acc - val_acc, "curve": curve})
    out.data = {"runs": results}

    noisy = int(round(NOISE * 100))
    out.say(f"Flatten -> Linear(64, {WIDTH}) -> ReLU -> Dropout(p) -> Linear({WIDTH}, {WIDTH}) -> ReLU -> Dropout(p) "
            f"-> Linear({WIDTH}, 10),",
            f"85,002 weights, trained on {TRAIN_IMAGES} images by Adam(lr={LR}), batch {BATCH}, {epochs} epochs; "
            f"\"{noisy}% noisy\": that",
            f"share of the {TRAIN_IMAGES} labels replaced by a wrong class (validation labels clean).  "
            "Accuracies in eval mode:", "")
    rows = [[r["labels"], f"{r['p']:g}", f"{r['train_acc']:.3f}", f"{r['val_acc']:.3f}", f"{r['gap']:+.3f}"]
            for r in results]
    out.table(["labels", "p", "train acc", "val acc", "gap"], rows)
    out.say("", "The lecture's point: dropout is a regularizer.  Without it the big network memorizes its",
            "training set (wrong labels included: 100 % training accuracy) and the gap to validation is",
            "wide; with dropout it cannot memorize as easily, fits the training set less and generalizes",
            "better: the gap shrinks.  On the clean digits there is little to memorize that does not",
            "generalize, and the gap is small either way.")

    by = {(r["labels"], r["p"]): r for r in results}
    bare, dropped = by[("30% noisy", 0.0)], by[("30% noisy", 0.5)]
    out.find("noisy labels, no dropout: the network memorizes them (train acc >= 0.95)",
             f"{bare['train_acc']:.3f}", bare["train_acc"] >= 0.95)
    out.find("dropout 0.5 shrinks the gap by at least 0.1",
             f"gap {bare['gap']:+.3f} -> {dropped['gap']:+.3f}", bare["gap"] - dropped["gap"] >= 0.1)
    out.find("dropout 0.5 does not lose validation accuracy (it gains)",
             f"{bare['val_acc']:.3f} -> {dropped['val_acc']:.3f}", dropped["val_acc"] >= bare["val_acc"])
    return out


def draw(outcome: Outcome, path) -> None:
    """Training (eval mode) and validation accuracy per epoch, one panel per run."""
    runs = outcome.data["runs"]
    fig = new_figure(3.2 * len(runs), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(runs), sharey=True))
    for ax, r in zip(axes, runs):
        epochs = np.arange(1, len(r["curve"]) + 1)
        ax.plot(epochs, [c[0] for c in r["curve"]], color="tab:red", label="training")
        ax.plot(epochs, [c[1] for c in r["curve"]], color="tab:blue", label="validation")
        ax.set(title=f"{r['labels']}, p = {r['p']:g}\ngap {r['gap']:+.3f}", xlabel="epoch", ylim=(0, 1.02))
    axes[0].set_ylabel("accuracy (eval mode)")
    axes[0].legend(loc="lower right")
    save_png(fig, path)


EXPERIMENT = Experiment("dropout-gap", "a big net on 300 digits (30% of labels noisy): dropout shrinks the "
                        "train/val accuracy gap", run, draw)

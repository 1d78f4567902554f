"""batch-norm-lr: the same network with and without batch norm, at several learning rates.

Without normalization, a large step changes the weights of one layer so much that the inputs of
the next shift in scale; the activations and gradients grow from layer to layer, and the run
blows up (the loss becomes inf, then nan).  Batch norm re-centres and re-scales every unit over
the batch,

    x_hat = (x - mean_batch) / sqrt(var_batch + eps),      y = gamma * x_hat + beta,

so a layer's output keeps its scale whatever the step did to the weights before it (and the
gradient of a weight shrinks as the weight grows): much larger learning rates train.

Both networks have four hidden layers of 64 ReLU units, the same initial weights (He, one seed);
the batch-norm one has BatchNorm1d after every hidden Linear (which then needs no bias: beta is
the bias).  Plain SGD, no momentum, so the learning rate alone sets the step.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from nbconv.layers import BatchNorm1d, Flatten, Linear, ReLU, Sequential
from nbconv.optim import SGD
from nbconv.training import thread_limit, train

from .base import Experiment, Outcome, cell, digits, new_figure, save_png

HIDDEN = 4
WIDTH = 64
RATES = (0.01, 0.1, 0.5, 1.0, 2.0)
EPOCHS = 10
QUICK_RATES = (0.1, 1.0)
QUICK_EPOCHS = 5
QUICK_TRAIN = 600        # training images in the quick run
BATCH = 32
SEED = 0
TRAINS = 0.85            # a run "trains" when it reaches this validation accuracy


def network(batch_norm: bool, seed: int = SEED) -> Sequential:
    """Flatten -> 4 x [Linear(., 64) -> (BatchNorm1d(64)) -> ReLU] -> Linear(64, 10)."""
    rng = np.random.default_rng(seed)
    layers, c = [Flatten()], 64
    for _ in range(HIDDEN):
        layers.append(Linear(c, WIDTH, bias=not batch_norm, seed=rng))
        if batch_norm:
            layers.append(BatchNorm1d(WIDTH))
        layers.append(ReLU())
        c = WIDTH
    layers.append(Linear(c, 10, init="xavier_normal", seed=rng))
    return Sequential(*layers)


def largest_training_rate(rates, accuracies) -> float:
    """The largest learning rate whose run reached TRAINS validation accuracy (nan if none)."""
    good = [lr for lr, acc in zip(rates, accuracies) if acc >= TRAINS]
    return max(good) if good else math.nan


def run(quick: bool = False) -> Outcome:
    rates, epochs = (QUICK_RATES, QUICK_EPOCHS) if quick else (RATES, EPOCHS)
    data = digits()
    if quick:
        data = dataclasses.replace(data, x_train=data.x_train[:QUICK_TRAIN], y_train=data.y_train[:QUICK_TRAIN])
    out = Outcome("batch-norm-lr", "Batch norm and the learning rate: the same net with and without batch norm")
    results = {"rates": list(rates)}
    with thread_limit(1), np.errstate(all="ignore"):          # a diverging run overflows: that is the point
        for kind in ("plain", "batch norm"):
            runs = []
            for lr in rates:
                model = network(kind == "batch norm")
                history = train(model, data, SGD(model.parameters(), lr=lr), epochs=epochs, batch_size=BATCH,
                                seed=SEED, progress=False)
                runs.append({"val_acc": history.val_acc[-1], "train_loss": history.train_loss[-1],
                             "loss_curve": list(history.train_loss)})
            results[kind] = runs
    out.data = results
    plain, bn = results["plain"], results["batch norm"]

    out.say(f"Flatten -> {HIDDEN} x [Linear(., {WIDTH}) -> ReLU] -> Linear({WIDTH}, 10), and the same with "
            "BatchNorm1d before each ReLU;",
            f"the same initial weights, SGD(lr) without momentum, batch {BATCH}, {epochs} epochs on "
            f"{len(data.y_train)} training images.",
            "Validation accuracy and the last epoch's training loss (nan: the run diverged):", "")
    rows = [[cell(lr), f"{p['val_acc']:.3f}", cell(p["train_loss"]), f"{b['val_acc']:.3f}", cell(b["train_loss"])]
            for lr, p, b in zip(rates, plain, bn)]
    out.table(["lr", "plain acc", "plain loss", "BN acc", "BN loss"], rows)
    top_plain = largest_training_rate(rates, [p["val_acc"] for p in plain])
    top_bn = largest_training_rate(rates, [b["val_acc"] for b in bn])
    out.say("", f"largest learning rate reaching {TRAINS} validation accuracy: plain {cell(top_plain)}, "
                f"batch norm {cell(top_bn)}",
            "", "The lecture's point: batch norm keeps every layer's inputs normalized whatever the steps do",
            "to the weights before it, so the network still trains at learning rates that make the plain",
            "one diverge: larger steps can be taken, and the learning rate needs less care.")

    out.find("the plain net trains at some learning rate of the grid", f"largest {cell(top_plain)}",
             not math.isnan(top_plain))
    out.find(f"batch norm trains at a learning rate at least {2 if quick else 5}x the plain net's largest",
             f"{cell(top_bn)} vs {cell(top_plain)}",
             not math.isnan(top_bn) and not math.isnan(top_plain) and top_bn >= (2 if quick else 5) * top_plain)
    out.find(f"at lr = {cell(rates[-1])} the plain net fails (below {TRAINS}) and batch norm trains",
             f"{plain[-1]['val_acc']:.3f} vs {bn[-1]['val_acc']:.3f}",
             plain[-1]["val_acc"] < TRAINS <= bn[-1]["val_acc"])
    return out


def draw(outcome: Outcome, path) -> None:
    """Validation accuracy against the learning rate (log scale), with and without batch norm."""
    results = outcome.data
    fig = new_figure(7.5, 4.8)
    ax = fig.subplots()
    for kind, color in (("plain", "tab:red"), ("batch norm", "tab:blue")):
        ax.semilogx(results["rates"], [r["val_acc"] for r in results[kind]], "o-", color=color, label=kind)
    ax.axhline(TRAINS, color="gray", linestyle=":", label=f"trains ({TRAINS})")
    ax.set(xlabel="learning rate", ylabel="validation accuracy", ylim=(0, 1),
           title="The same net with and without batch norm")
    ax.legend()
    save_png(fig, path)


EXPERIMENT = Experiment("batch-norm-lr", "the same net with and without batch norm at learning rates "
                        "0.01 .. 2: batch norm trains at the large ones", run, draw)

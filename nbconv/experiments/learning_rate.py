"""learning-rate: too small, right and too large, on a real network.

The lecture's gradient-descent example (``nbconv example step-size``) shows the step size alpha on
f(x) = x^2 - 2: too small converges slowly, too large oscillates around the minimum, larger still
diverges.  The same regimes appear when training a network by SGD, read from its loss curve (the
mean training loss of each epoch) the way ``nbconv.examples.descent.classify`` reads them from
the iterates, the loss standing in for the distance to the minimum (a loss is >= 0):

    "diverges"    the loss blows up: some epoch's loss is not finite or above 10 x the loss
                  before training (a ReLU network then often dies: most units output 0 and the
                  loss settles at a constant guess, ~ln 10)
    "converges"   the last epoch's loss is below a tenth of the loss before training
    "slow"        the loss falls at every epoch, but is still above that tenth at the end
    "oscillates"  it rises at some epochs and falls at others, and stays high

The network: Flatten -> Linear(64, 64) -> ReLU -> Linear(64, 64) -> ReLU -> Linear(64, 10),
He-initialized, the same initial weights for every learning rate, plain SGD (no momentum).
"""

from __future__ import annotations

import math

import numpy as np

from nbconv.layers import Flatten, Linear, ReLU, Sequential
from nbconv.optim import SGD
from nbconv.training import evaluate, thread_limit, train

from .base import Experiment, Outcome, cell, digits, new_figure, save_png

WIDTH = 64
EPOCHS = 15
QUICK_EPOCHS = 8
BATCH = 32
SEED = 0
BLOWUP = 10.0            # "diverges": a loss above BLOWUP x the loss before training
CONVERGED = 0.1          # "converges": a last loss below CONVERGED x the loss before training

# learning rate -> the regime the lecture expects, and its caption
RATES = {
    0.001: ("slow", "too small: slow convergence"),
    0.1: ("converges", "right: converges"),
    1.0: ("oscillates", "too large: the loss jumps up and down"),
    10.0: ("diverges", "far too large: divergence"),
}
REGIMES = ("slow", "converges", "oscillates", "diverges")


def network(seed: int = SEED) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential(Flatten(), Linear(64, WIDTH, seed=rng), ReLU(), Linear(WIDTH, WIDTH, seed=rng), ReLU(),
                      Linear(WIDTH, 10, init="xavier_normal", seed=rng))


def classify(losses, start: float) -> str:
    """The regime of a training run from its per-epoch losses and the loss ``start`` before
    training (see the module's docstring): "diverges", "converges", "slow" or "oscillates"."""
    losses = [float(v) for v in losses]
    if not losses:
        raise ValueError("losses is empty: a regime needs at least one epoch")
    if not (math.isfinite(start) and start > 0):
        raise ValueError(f"start (the loss before training) must be finite and > 0, got {start}")
    if any(not math.isfinite(v) or v > BLOWUP * start for v in losses):
        return "diverges"
    if losses[-1] < CONVERGED * start:
        return "converges"
    path = [start] + losses
    if all(after < before for before, after in zip(path, path[1:])):
        return "slow"
    return "oscillates"


def rises(losses) -> int:
    """How many epochs end with a higher loss than the epoch before (nan counts as higher)."""
    return sum(1 for before, after in zip(losses, losses[1:]) if not after <= before)


def run(quick: bool = False) -> Outcome:
    epochs = QUICK_EPOCHS if quick else EPOCHS
    out = Outcome("learning-rate", "The learning rate: too small, right, too large, far too large")
    data = digits()
    results = []
    with thread_limit(1), np.errstate(all="ignore"):          # the diverging run overflows: that is the point
        for lr, (expected, caption) in RATES.items():
            model = network()
            start, _ = evaluate(model, data.x_train, data.y_train)
            history = train(model, data, SGD(model.parameters(), lr=lr), epochs=epochs, batch_size=BATCH,
                            seed=SEED, progress=False)
            results.append({"lr": lr, "start": start, "losses": list(history.train_loss),
                            "val_acc": history.val_acc[-1], "regime": classify(history.train_loss, start),
                            "expected": expected, "caption": caption})
    out.data = {"runs": results}

    out.say(f"Flatten -> Linear(64, {WIDTH}) -> ReLU -> Linear({WIDTH}, {WIDTH}) -> ReLU -> Linear({WIDTH}, 10), "
            f"the same initial weights, SGD(lr),",
            f"batch {BATCH}, {epochs} epochs.  The loss before training (L0) and the mean training loss of "
            "epochs 1, 2, 3, 5, and the last;",
            "the regime read from the curve: diverges (a loss > 10 L0 or nan), converges (last < L0 / 10),",
            "slow (falls at every epoch, last >= L0 / 10), oscillates (rises and falls, stays high):", "")
    shown = [k for k in (1, 2, 3, 5) if k < epochs] + [epochs]
    rows = [[cell(r["lr"]), cell(r["start"]), *(cell(r["losses"][k - 1]) for k in shown), rises(r["losses"]),
             f"{r['val_acc']:.3f}", r["regime"]] for r in results]
    out.table(["lr", "L0", *(f"ep {k}" for k in shown), "rises", "val acc", "regime"], rows)
    out.say("(rises: the epochs whose loss is above the epoch before)")
    out.say("", "The lecture's point, as for alpha on x^2 - 2: too small a learning rate converges slowly,",
            "the right one fast, too large a one makes the loss jump up and down, and larger still it",
            "diverges.  Try a few rates a factor of 10 apart, watch the loss of the first epochs, and keep",
            "the largest that converges smoothly.")
    for r in results:
        out.find(f"lr = {cell(r['lr'])}: {r['caption']}", r["regime"], r["regime"] == r["expected"])
    return out


def draw(outcome: Outcome, path) -> None:
    """The training loss per epoch for each learning rate (log scale), epoch 0 = before training;
    a loss above the top of the axis (the blow-up of a diverging run) is marked there with its value."""
    runs = outcome.data["runs"]
    fig = new_figure(8.0, 5.0)
    ax = fig.subplots()
    top = 3 * BLOWUP * max(r["start"] for r in runs)
    for r in runs:
        curve = np.array([r["start"]] + r["losses"], dtype=np.float64)
        epochs = np.arange(len(curve))
        (line,) = ax.semilogy(epochs, np.where(np.isfinite(curve), np.minimum(curve, top), top), "o-",
                              markersize=3, label=f"lr = {cell(r['lr'])}: {r['regime']}")
        for k in np.flatnonzero(~(curve <= top)):                # off the axis: above it, or nan
            ax.plot(k, top, "^", color=line.get_color(), markersize=9)
            ax.annotate(cell(float(curve[k])), (k, top), textcoords="offset points", xytext=(6, -12),
                        color=line.get_color())
    ax.set(xlabel="epoch (0: before training)", ylabel="mean training loss", title="Loss curves of SGD on the digits",
           ylim=(None, top * 1.5))
    ax.legend(loc="lower left")
    save_png(fig, path)


EXPERIMENT = Experiment("learning-rate", "SGD at lr 0.001, 0.1, 1 and 10 on an MLP: slow, converges, "
                        "oscillates, diverges", run, draw)

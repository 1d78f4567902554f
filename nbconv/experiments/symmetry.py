"""symmetry: zero or constant initialization leaves every unit of a layer the same; random breaks it.

If every hidden unit of a layer starts with the same weights, they compute the same output on
every input, so backpropagation hands them the same gradient,

    dL/dW[i, :] = dL/dz_i * x,      dL/dz_i the same for every unit i,

and the same update keeps them equal: after any amount of training the layer is one unit
repeated (the units of one layer are rows of its weight matrix W, (units, inputs)).  All zeros
is worse still with tanh: tanh(0) = 0, so the hidden layers output zeros and every weight's
gradient is zero; only the output layer's biases learn (the class frequencies).  Random
initialization gives every unit its own start, and the units learn different features.

The spread of a layer is the largest distance of a unit's weights (its row of W and its bias)
from the mean unit, relative to the size of the largest weight:

    spread = max_i || [W_i, b_i] - mean_k [W_k, b_k] ||_max / max |[W, b]|        (0 for all zeros)

and the distinct units are the units left once those within 1e-5 (relative) of one already
counted are merged.  float32 rounding can separate identical units by one unit in the last
place (~1e-7 relative), far below that tolerance.
"""

from __future__ import annotations

import numpy as np

from nbconv.layers import Flatten, Linear, Sequential, Tanh
from nbconv.optim import SGD
from nbconv.training import evaluate, thread_limit, train

from .base import Experiment, Outcome, cell, digits, new_figure, save_png

WIDTH = 32
LR = 0.1
MOMENTUM = 0.9
EPOCHS = 20
QUICK_EPOCHS = 5
BATCH = 32
SEED = 0
SAME = 1e-5              # units closer than this (relative) count as one


def zeros(shape, rng):
    return np.zeros(shape)


def constant(shape, rng):
    return np.full(shape, 0.1)


INITS = {"zeros": zeros, "constant 0.1": constant, "random (Glorot)": "xavier_normal"}


def network(init, seed: int = SEED) -> Sequential:
    """Flatten -> Linear(64, 32) -> tanh -> Linear(32, 32) -> tanh -> Linear(32, 10), every weight
    drawn by ``init`` (biases start at zero)."""
    rng = np.random.default_rng(seed)
    return Sequential(Flatten(), Linear(64, WIDTH, init=init, seed=rng), Tanh(),
                      Linear(WIDTH, WIDTH, init=init, seed=rng), Tanh(),
                      Linear(WIDTH, 10, init=init, seed=rng))


HIDDEN = (1, 3)          # the places of the two hidden Linear layers in the Sequential


def units(layer: Linear) -> np.ndarray:
    """The layer's units, one per row: [W_i, b_i], (units, inputs + 1), in float64."""
    p = layer.params()
    return np.concatenate([p["w"].data, p["b"].data[:, None]], axis=1).astype(np.float64)


def spread(u: np.ndarray) -> float:
    """max_i max_j |u[i, j] - mean_k u[k, j]| / max |u| (0 when u is all zeros)."""
    scale = np.max(np.abs(u))
    return 0.0 if scale == 0 else float(np.max(np.abs(u - u.mean(axis=0))) / scale)


def distinct_units(u: np.ndarray, tol: float = SAME) -> int:
    """How many different rows ``u`` has, rows within ``tol * max |u|`` of a counted one merged."""
    scale = max(float(np.max(np.abs(u))), np.finfo(np.float64).tiny)
    kept = []
    for row in u:
        if not any(np.max(np.abs(row - k)) <= tol * scale for k in kept):
            kept.append(row)
    return len(kept)


def run(quick: bool = False) -> Outcome:
    epochs = QUICK_EPOCHS if quick else EPOCHS
    out = Outcome("symmetry", "Symmetry: zero or constant initialization leaves every unit of a layer the same")
    data = digits()
    results = {}
    with thread_limit(1):
        for name, init in INITS.items():
            model = network(init)
            history = train(model, data, SGD(model.parameters(), lr=LR, momentum=MOMENTUM), epochs=epochs,
                            batch_size=BATCH, seed=SEED, progress=False)
            layers = [units(model[k]) for k in HIDDEN]
            _, test_acc = evaluate(model, data.x_test, data.y_test)
            results[name] = {"spread": [spread(u) for u in layers], "distinct": [distinct_units(u) for u in layers],
                             "val_acc": history.val_acc[-1], "test_acc": test_acc,
                             "w1": model[HIDDEN[0]].params()["w"].data.copy()}
    out.data = results

    out.say(f"Flatten -> Linear(64, {WIDTH}) -> tanh -> Linear({WIDTH}, {WIDTH}) -> tanh -> Linear({WIDTH}, 10), "
            "three initializations",
            f"of every weight (biases start at 0); SGD(lr={LR}, momentum={MOMENTUM}), batch {BATCH}, {epochs} epochs.",
            "After training, per hidden layer: the spread of its units (the rows [W_i, b_i]; 0 = all the same)",
            f"and how many distinct units it has (of {WIDTH}):", "")
    rows = [[name, cell(r["spread"][0]), f"{r['distinct'][0]}/{WIDTH}", cell(r["spread"][1]),
             f"{r['distinct'][1]}/{WIDTH}", f"{r['val_acc']:.3f}", f"{r['test_acc']:.3f}"]
            for name, r in results.items()]
    out.table(["init", "spread 1", "units 1", "spread 2", "units 2", "val acc", "test acc"], rows)
    out.say("", "The lecture's point: units that start equal get equal gradients and stay equal, so a layer",
            "of 32 units works as one unit (zeros with tanh is worse: every gradient but the last biases'",
            "is 0, the net predicts the most frequent class).  Initialize the weights randomly, small",
            "and with the right variance, to break the symmetry.")

    zero, const, rand = (results[name] for name in INITS)
    for name in ("zeros", "constant 0.1"):
        r = results[name]
        out.find(f"{name}: every hidden unit of both layers is the same after training",
                 f"distinct units {r['distinct'][0]} and {r['distinct'][1]}, spread {cell(max(r['spread']))}",
                 r["distinct"] == [1, 1])
    out.find(f"random: all {WIDTH} units of both hidden layers differ",
             f"distinct units {rand['distinct'][0]} and {rand['distinct'][1]}", rand["distinct"] == [WIDTH, WIDTH])
    best_symmetric = max(zero["val_acc"], const["val_acc"])
    out.find("random init learns (val acc >= 0.9), at least 30 points above zero and constant init",
             f"{rand['val_acc']:.3f} vs {zero['val_acc']:.3f} and {const['val_acc']:.3f}",
             rand["val_acc"] >= 0.9 and rand["val_acc"] - best_symmetric >= 0.3)
    return out


def draw(outcome: Outcome, path) -> None:
    """The first hidden layer's weights W (32 units x 64 inputs) after training, one image per
    init: identical rows are the symmetry."""
    results = outcome.data
    fig = new_figure(12.0, 4.6)
    axes = fig.subplots(1, len(results))
    for ax, (name, r) in zip(axes, results.items()):
        w = r["w1"]
        limit = float(np.max(np.abs(w))) or 1.0                  # all zeros: any scale shows them
        image = ax.imshow(w, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
        n = r["distinct"][0]
        ax.set(title=f"{name}\n{n} distinct unit{'' if n == 1 else 's'}, val acc {r['val_acc']:.2f}",
               xlabel="input pixel", ylabel="unit (row of W)")
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle("First hidden layer after training: rows of W")
    save_png(fig, path)


EXPERIMENT = Experiment("symmetry", "zero / constant / random init: identical units stay identical, "
                        "random breaks the symmetry", run, draw)

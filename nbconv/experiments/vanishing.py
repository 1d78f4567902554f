"""vanishing-gradients: a deep sigmoid network, plain and with residual connections.

Backpropagation multiplies, layer by layer from the loss down, by each layer's local gradient:
through a sigmoid layer y = sigmoid(W x + b) the gradient becomes

    dL/dx = W^T (sigmoid'(z) * dL/dy),      sigmoid'(z) = sigmoid(z) (1 - sigmoid(z)) <= 1/4

so ten such layers scale it by up to (1/4)^10 ~ 1e-6 (the weights, Glorot-initialized, keep
its size otherwise): the first layers get almost no gradient and hardly learn.  A residual
connection y = x + f(x) adds the identity to each block's local gradient,

    dL/dx = dL/dy + (df/dx)^T dL/dy          (the fan-out rule: x feeds the block and the shortcut)

so the gradient reaches the first layer through the shortcuts undiminished.

Both networks have ten Linear layers of the same sizes, drawn from the same seed (the same
initial weights); ``train(..., grad_norms=True)`` records the norm of every weight's gradient.
"""

from __future__ import annotations

import numpy as np

from nbconv.layers import Flatten, Linear, Residual, Sequential, Sigmoid
from nbconv.optim import SGD
from nbconv.training import thread_limit, train

from .base import Experiment, Outcome, cell, digits, new_figure, save_png

DEPTH = 10               # Linear layers: 64 -> 32, eight 32 -> 32 (the residual blocks), 32 -> 10
WIDTH = 32
LR = 0.1                 # plain SGD
EPOCHS = 20
QUICK_EPOCHS = 5
BATCH = 32
SEED = 0


def network(residual: bool, seed: int = SEED) -> Sequential:
    """Flatten -> Linear(64, 32) -> sigmoid -> 8 x [Linear(32, 32) -> sigmoid] -> Linear(32, 10);
    with ``residual`` each of the eight is a block x + sigmoid(W x + b).  Glorot-initialized
    (xavier_normal, the init meant for sigmoid and tanh), no batch norm."""
    rng = np.random.default_rng(seed)
    layers = [Flatten(), Linear(64, WIDTH, init="xavier_normal", seed=rng), Sigmoid()]
    for _ in range(DEPTH - 2):
        linear = Linear(WIDTH, WIDTH, init="xavier_normal", seed=rng)
        layers += [Residual(Sequential(linear, Sigmoid()))] if residual else [linear, Sigmoid()]
    layers.append(Linear(WIDTH, 10, init="xavier_normal", seed=rng))
    return Sequential(*layers)


def weight_names(model: Sequential) -> list[str]:
    """The names of the Linear weights, input first ("1.w", ..., "3.block.0.w", ...)."""
    return [name for name, _ in model.named_parameters() if name.endswith("w")]


def run(quick: bool = False) -> Outcome:
    epochs = QUICK_EPOCHS if quick else EPOCHS
    out = Outcome("vanishing-gradients",
                  "Vanishing gradients: a deep sigmoid network, plain and with residual connections")
    data = digits()
    nets = {}
    with thread_limit(1):
        for kind in ("plain", "residual"):
            model = network(kind == "residual")
            history = train(model, data, SGD(model.parameters(), lr=LR), epochs=epochs, batch_size=BATCH,
                            seed=SEED, progress=False, grad_norms=True)
            names = weight_names(model)
            nets[kind] = {"names": names,
                          "start": [history.grad_norms[0][n] for n in names],
                          "end": [history.grad_norms[-1][n] for n in names],
                          "first_layer": history.grad_norm_curve(names[0]),
                          "val_acc": list(history.val_acc)}
    out.data = nets
    plain, res = nets["plain"], nets["residual"]

    out.say(f"Two networks of {DEPTH} Linear layers (64 -> {WIDTH}, {DEPTH - 2} x {WIDTH} -> {WIDTH}, "
            f"{WIDTH} -> 10), sigmoid between, Glorot init,",
            "the same initial weights; the residual one wraps each middle layer as x + sigmoid(W x + b).",
            f"Trained by SGD(lr={LR}), batch {BATCH}, {epochs} epochs on the {len(data.y_train)} digits "
            f"training images, train(..., grad_norms=True).",
            "", "Mean L2 norm of each weight's gradient, ||dL/dW||, over the steps of the first epoch (start)",
            "and of the last (end); depth 1 is the layer next to the input:", "")
    rows = [[k + 1, plain["names"][k], cell(plain["start"][k]), cell(plain["end"][k]), res["names"][k],
             cell(res["start"][k]), cell(res["end"][k])] for k in range(DEPTH)]
    out.table(["depth", "plain", "start", "end", "residual", "start", "end"], rows)
    out.say("", f"validation accuracy after {epochs} epochs: plain {plain['val_acc'][-1]:.3f}, "
                f"residual {res['val_acc'][-1]:.3f}")

    decay = plain["start"][0] / plain["start"][-1]
    vs_start = plain["start"][0] / res["start"][0]
    vs_end = plain["end"][0] / res["end"][0]
    hidden = res["start"][1:-1]
    spread = min(hidden) / max(hidden)
    out.say("", "The lecture's point: through each sigmoid the gradient is multiplied by sigmoid' <= 1/4, so it",
            "shrinks layer by layer towards the input (here the first layer's is "
            f"{cell(decay)} times the last's):",
            "the first layers of a deep plain network barely learn.  The identity shortcut of a residual",
            "block passes the gradient down unchanged (dL/dx = dL/dy + ...), so every layer gets a",
            "gradient of the same order and the deep network trains.")

    out.find("plain net: the first layer's gradient is at least 100x smaller than the last layer's",
             f"ratio {cell(decay)} at the start", decay <= 1e-2)
    out.find("the plain net's first-layer gradient is at least 10x smaller than the residual net's",
             f"ratio {cell(vs_start)} at the start, {cell(vs_end)} at the end", vs_start <= 0.1 and vs_end <= 0.1)
    out.find("residual net: the hidden layers' gradients stay within 10x of each other",
             f"smallest / largest {cell(spread)} at the start", spread >= 0.1)
    gain = res["val_acc"][-1] - plain["val_acc"][-1]
    out.find("the residual net learns, the plain one lags by at least 30 points of accuracy",
             f"{res['val_acc'][-1]:.3f} vs {plain['val_acc'][-1]:.3f}", gain >= 0.3)
    return out


def draw(outcome: Outcome, path) -> None:
    """Left: the gradient norm per depth, start and end of training, both nets (log scale);
    right: the validation accuracy per epoch."""
    nets = outcome.data
    fig = new_figure(12.0, 4.8)
    left, right = fig.subplots(1, 2)
    depth = np.arange(1, DEPTH + 1)
    for kind, color in (("plain", "tab:red"), ("residual", "tab:blue")):
        net = nets[kind]
        left.semilogy(depth, net["start"], "o-", color=color, label=f"{kind}, first epoch")
        left.semilogy(depth, net["end"], "s--", color=color, label=f"{kind}, last epoch")
        right.plot(np.arange(1, len(net["val_acc"]) + 1), net["val_acc"], "o-", color=color, label=kind)
    left.set(xlabel="depth (1 = next to the input)", ylabel="mean ||dL/dW|| over the epoch",
             title="Gradient norm per layer", xticks=depth)
    left.legend()
    right.set(xlabel="epoch", ylabel="validation accuracy", title="Training", ylim=(0, 1))
    right.xaxis.get_major_locator().set_params(integer=True)
    right.legend()
    save_png(fig, path)


EXPERIMENT = Experiment("vanishing-gradients",
                        "per-layer gradient norms of a 10-layer sigmoid net, plain vs residual: the first "
                        "layers' vanish", run, draw)

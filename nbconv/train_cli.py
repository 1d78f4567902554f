"""The ``nbconv train`` command: train a CNN on scikit-learn's digits and print its test accuracy.

``register(commands)`` adds the sub-command to the parser of nbconv.cli; ``run(args)`` trains
with nbconv.training (within ``thread_limit(args.threads)``) and draws the figure of
nbconv.plot when asked (``--plot``).  Before anything is built or compiled it checks what would
otherwise fail late (``setup_problem``): matplotlib for ``--plot``, and that the ``--plot`` and
``--checkpoint`` files can be written; each problem is one line and exit status 2.
"""

from __future__ import annotations

import math
import os
import sys
import time
import zipfile

from . import devices
from .cli import fail, int_option, output_path_problem
from .plot import matplotlib_missing, plot_training
from .functional.conv import METHODS as CONV_METHODS
from .training import evaluate, thread_limit, train

__all__ = ["DEFAULTS", "register", "run"]

# Tuned so that every seed tried reaches >= 0.98 test accuracy in a few seconds of training
# (see the README): a LeNet-style CNN of 62,378 parameters, Adam with a cosine schedule, and
# random shifts of one pixel as data augmentation.
DEFAULTS = dict(model="lenet", epochs=20, batch_size=64, optimizer="adam", lr=5e-3, seed=0, method="auto",
                schedule="cosine", shift=1, threads=None, device="cpu")


def _cli_float_positive(text: str) -> float:
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def register(commands) -> None:
    from .optim import OPTIMIZERS
    p = commands.add_parser("train", help="train a CNN on the digits data set and print its test accuracy",
                            description="Train the default LeNet-style CNN (conv, batch norm, ReLU, pooling, FC) "
                                        "on scikit-learn's digits; the last line printed is the test accuracy.")
    p.add_argument("--model", choices=("lenet", "residual"), default=DEFAULTS["model"],
                   help="network: lenet (default) or residual (Residual blocks with batch norm)")
    p.add_argument("--epochs", type=int_option(1), default=DEFAULTS["epochs"], help="epochs (default %(default)s)")
    p.add_argument("--batch-size", type=int_option(1), default=DEFAULTS["batch_size"],
                   help="mini-batch size (default %(default)s)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULTS["optimizer"],
                   help="optimizer (default %(default)s)")
    p.add_argument("--lr", type=_cli_float_positive, default=DEFAULTS["lr"],
                   help="initial learning rate (default %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                   help="seed of the split, the initial weights and the shuffling (default %(default)s)")
    p.add_argument("--method", choices=("auto", "naive", "fast") + CONV_METHODS, default=DEFAULTS["method"],
                   help="kernels of every layer: naive (the teaching loops), fast (the optimized ones) or auto "
                        "(default: fast where it pays); or a convolution method (direct, im2col, blocked) for "
                        "the conv layers, auto for the rest")
    p.add_argument("--schedule", choices=("cosine", "step", "none"), default=DEFAULTS["schedule"],
                   help="learning-rate schedule per epoch: cosine annealing to 0, step (x0.1 every third of "
                        "the epochs) or none (default %(default)s)")
    p.add_argument("--shift", type=int_option(0), default=DEFAULTS["shift"],
                   help="data augmentation: move each training image by up to this many pixels, 0 for "
                        "none (default %(default)s)")
    p.add_argument("--patience", type=int_option(1), default=None,
                   help="early stopping: epochs without a lower validation loss (default: off)")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="save a checkpoint there after every epoch; resume from it if it exists")
    p.add_argument("--plot", metavar="OUT.PNG", help="save loss/accuracy curves and first-layer filters")
    p.add_argument("--threads", type=int_option(1), default=DEFAULTS["threads"],
                   help="at most this many threads for the parallel kernels and BLAS, for this run (restored "
                        "afterwards; default: as the process is set up, every core unless NUMBA_NUM_THREADS or "
                        "OPENBLAS_NUM_THREADS say otherwise)")
    p.add_argument("--device", choices=devices.DEVICES, default=DEFAULTS["device"],
                   help="where to train: cpu (default) or cuda (the GPU kernels; needs nbconv[cuda] and an NVIDIA "
                        "GPU, or NUMBA_ENABLE_CUDASIM=1 for Numba's slow CUDA simulator)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars; one line per epoch instead")
    p.set_defaults(func=run)


def setup_problem(args) -> str | None:
    """What would make the run fail after training, found before it starts: ``--plot`` without
    matplotlib, or a ``--plot`` or ``--checkpoint`` file that cannot be written (or read)."""
    if getattr(args, "plot", None):
        missing = matplotlib_missing()
        if missing:
            return f"--plot: {missing}"
        problem = output_path_problem(args.plot, "--plot")
        if problem:
            return problem
    path = getattr(args, "checkpoint", None)
    if path is not None:
        problem = output_path_problem(path, "--checkpoint")
        if problem:
            return problem
        if os.path.exists(path) and not os.access(path, os.R_OK):
            return f"--checkpoint {path}: the file is not readable; choose another path"
    return None


def _make_schedule(name: str, optimizer, epochs: int):
    if name == "none":
        return None
    from . import optim
    if name == "cosine":
        return optim.CosineLR(optimizer, total_epochs=epochs)
    return optim.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)


def run(args) -> int:
    if args.threads is None:
        return _run(args)
    with thread_limit(args.threads):          # restored when the run ends
        return _run(args)


def _run(args) -> int:
    from . import models, optim
    from .data import load_digits, random_shift
    from .summary import summary

    device = getattr(args, "device", DEFAULTS["device"])
    problem = devices.cuda_unavailable() if device == devices.CUDA else None
    if problem:
        return fail("train", f"--device cuda: {problem}")
    problem = setup_problem(args)
    if problem:
        return fail("train", problem)
    data = load_digits(seed=args.seed)          # without scikit-learn: an ImportError that nbconv.cli reports
    build = models.lenet if args.model == "lenet" else models.residual_net
    if args.method in CONV_METHODS:
        model = build(method=args.method, seed=args.seed)       # the conv layers; the rest "auto"
    else:
        model = build(seed=args.seed).set_method(args.method)   # one switch for every layer
    model = model.to(device)                     # before the optimizer: its state follows
    optimizer = optim.make_optimizer(args.optimizer, model.parameters(), args.lr)
    schedule = _make_schedule(args.schedule, optimizer, args.epochs)
    print(f"digits: {len(data.y_train)} train, {len(data.y_val)} validation, {len(data.y_test)} test images; "
          f"{args.model} with {model.num_params():,} parameters; {args.optimizer} lr {args.lr:g}, "
          f"{args.schedule} schedule, batch {args.batch_size}, {args.epochs} epochs, shift {args.shift}, "
          f"seed {args.seed}, method {args.method}, device {device}", flush=True)
    if device == devices.CPU:
        import numba
        how = "--threads, restored afterwards" if args.threads else "as the process is set up"
        print(f"threads: {numba.get_num_threads()} for the parallel kernels ({how})", flush=True)
    # the network before it trains: per layer its output shape and parameter count (nbconv.summary)
    shape = "x".join(str(s) for s in data.input_shape)
    print(f"\n{args.model}, per {shape} image:\n{summary(model, data.input_shape)}\n", flush=True)
    resume = args.checkpoint is not None and os.path.exists(args.checkpoint)
    if resume:
        print(f"resuming from {args.checkpoint}", flush=True)

    def report(epoch, history):
        print(f"epoch {epoch:>3}/{args.epochs}  train loss {history.train_loss[-1]:.4f} "
              f"acc {history.train_acc[-1]:.4f}  val loss {history.val_loss[-1]:.4f} "
              f"acc {history.val_acc[-1]:.4f}  lr {history.lr[-1]:.3g}  {history.seconds[-1]:.2f} s", flush=True)

    tic = time.perf_counter()
    try:
        history = train(model, data, optimizer, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                        schedule=schedule, early_stopping_patience=args.patience, checkpoint=args.checkpoint,
                        resume=resume, progress=not args.no_progress,
                        augment=(lambda x, rng: random_shift(x, rng, args.shift)) if args.shift else None,
                        callback=report if args.no_progress else None)
    except (ValueError, zipfile.BadZipFile) as exc:
        if not resume:
            raise
        reason = str(exc) if str(exc).startswith("cannot load") else f"cannot load {args.checkpoint}: {exc}"
        print(f"nbconv train: {reason}; choose another --checkpoint path, or delete the file to start afresh",
              file=sys.stderr)                  # a checkpoint of another network, or no checkpoint at all
        return 1
    seconds = time.perf_counter() - tic
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    kept = (history.best_epoch or len(history)) - 1          # the epoch whose weights the model holds
    stopped = f", stopped early after epoch {history.stopped_epoch}" if history.stopped_epoch else ""
    print(f"trained {len(history)} epochs ({seconds:.1f} s in this run){stopped}; weights of epoch {kept + 1}: "
          f"val accuracy {history.val_acc[kept]:.4f}, test loss {test_loss:.4f}")
    if args.plot:
        print(f"saved {plot_training(history, model, args.plot, test_accuracy=test_acc)}")
    print(f"test accuracy: {test_acc:.4f}")
    return 0

"""The ``nbconv train`` command: train a CNN on scikit-learn's digits and print its test accuracy.

``register(commands)`` adds the sub-command to the parser of nbconv.cli; ``run(args)`` trains
with nbconv.training (within ``thread_limit(args.threads)``) and draws the figure of
nbconv.plot when asked (``--plot``).  Before anything is built or compiled it checks what would
otherwise fail late: the model options that do not go together (``model_problem``: an option
the chosen network has no place for, a count of widths that does not match, --bn-after-relu
with --no-bn, ...), matplotlib for ``--plot``, and that the ``--plot`` and ``--checkpoint``
files can be written (``setup_problem``); each problem is one line and exit status 2.

The networks (nbconv.models): lenet (the default), residual, pattern (the notes'
INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC, ``--pattern N,M,K``) and mlp.
``build_model(args)`` builds the one the options describe, the same way in a fresh run and in
a run that resumes from ``--checkpoint``, whose weights then replace the drawn ones.
"""

from __future__ import annotations

import functools
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
                schedule="cosine", shift=1, threads=None, device="cpu", pattern=None, no_pool=False, channels=None,
                hidden=None, no_bn=False, bn_after_relu=False, dropout=0.0, init=None, weight_decay=0.0)

MODELS = ("lenet", "residual", "pattern", "mlp")
PATTERN = (2, 2, 1)             # --pattern N,M,K when --model pattern does not say
IMAGE_SIZE = 8                  # the digits are 8x8 (nbconv.data): what the 2x2 pools of --pattern must fit


def _cli_float_positive(text: str) -> float:
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _cli_fraction(text: str) -> float:
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text}")
    return value


def _cli_float_non_negative(text: str) -> float:
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def int_list_option(minimum: int, count: int | None = None):
    """An argparse ``type`` for comma-separated integers, each of at least ``minimum`` (checked by
    ``int_option``), exactly ``count`` of them when given: "16,32" -> (16, 32)."""
    import argparse

    def parse(text: str) -> tuple:
        parts = text.split(",")
        if count is not None and len(parts) != count:
            raise argparse.ArgumentTypeError(f"expected {count} integers separated by commas, got {text!r}")
        try:
            return tuple(int_option(minimum)(part.strip()) for part in parts)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{exc} (in {text!r})") from None
    return parse


def register(commands) -> None:
    from .models import INITS
    from .optim import OPTIMIZERS
    p = commands.add_parser("train", help="train a CNN on the digits data set and print its test accuracy",
                            description="Train the default LeNet-style CNN (conv, batch norm, ReLU, pooling, FC), "
                                        "or the network --model and the options below describe, on scikit-learn's "
                                        "digits; the last line printed is the test accuracy.")
    p.add_argument("--model", choices=MODELS, default=DEFAULTS["model"],
                   help="network: lenet (default), residual (Residual blocks with batch norm), pattern (the "
                        "notes' INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC, see --pattern) "
                        "or mlp (FC layers only, batch norm before each ReLU unless --no-bn)")
    p.add_argument("--epochs", type=int_option(1), default=DEFAULTS["epochs"], help="epochs (default %(default)s)")
    p.add_argument("--batch-size", type=int_option(1), default=DEFAULTS["batch_size"],
                   help="mini-batch size (default %(default)s)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULTS["optimizer"],
                   help="optimizer (default %(default)s)")
    p.add_argument("--lr", type=_cli_float_positive, default=DEFAULTS["lr"],
                   help="initial learning rate (default %(default)s)")
    p.add_argument("--weight-decay", type=_cli_float_non_negative, default=DEFAULTS["weight_decay"], metavar="WD",
                   help="L2 weight decay of the optimizer: adds WD * theta to each gradient (default %(default)s)")
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
    net = p.add_argument_group(
        "the network", "--model pattern is the notes' INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC "
                       "with 3x3 convolutions, 2x2 max pools and a batch norm between each CONV or hidden FC and its "
                       "ReLU (unless --no-bn); these options shape lenet, mlp and residual too, where they apply "
                       "(docs/models.md)")
    net.add_argument("--pattern", type=int_list_option(0, count=3), metavar="N,M,K",
                     help="--model pattern: N convolutions per stage, M stages, K hidden FC layers "
                          f"(default {','.join(map(str, PATTERN))}); M <= 3 with pooling on 8x8 digits")
    net.add_argument("--no-pool", action="store_true", help="--model pattern: no 2x2 max pool after each stage")
    net.add_argument("--channels", type=int_list_option(1), metavar="C1,C2,...",
                     help="widths of the convolutions: M of them for pattern (default 16,32,...: doubled at each "
                          "stage), 2 for lenet (default 32,64), 1 for residual (default 16)")
    net.add_argument("--hidden", type=int_list_option(1), metavar="H1,...",
                     help="widths of the hidden FC layers: K of them for pattern (default 64 each), any number for "
                          "mlp (default 64,64), 1 for lenet (default 128)")
    net.add_argument("--no-bn", action="store_true",
                     help="no batch norm (lenet, pattern, mlp); the layers before the ReLUs get a bias")
    net.add_argument("--bn-after-relu", action="store_true",
                     help="batch norm after each ReLU instead of before it (lenet, pattern, mlp)")
    net.add_argument("--dropout", type=_cli_fraction, default=DEFAULTS["dropout"], metavar="P",
                     help="dropout of probability P (0 <= P < 1) after each hidden FC layer's ReLU (lenet, pattern, "
                          "mlp; default %(default)s: none)")
    net.add_argument("--init", choices=tuple(INITS), default=DEFAULTS["init"], metavar="INIT",
                     help="weights of every CONV and FC layer, the last included: zeros, normal (N(0, 1/fan_in)), "
                          "xavier, he (or xavier_normal, xavier_uniform, he_normal, he_uniform); default: he, "
                          "and xavier for lenet's last FC (lenet, pattern, mlp)")
    p.set_defaults(func=run)


def _option(args, name: str):
    """``args.<name>``, or its default for a Namespace built without it (a caller of ``run``)."""
    return getattr(args, name, DEFAULTS[name])


def model_problem(args) -> str | None:
    """The model options that do not go together, found before anything is loaded or built: an
    option the chosen network has no place for, a number of --channels or --hidden widths that
    does not fit it, --bn-after-relu with --no-bn, more 2x2 pools than the 8x8 digits allow, a
    convolution --method for the mlp.  None when they do."""
    get = functools.partial(_option, args)
    model = get("model")
    given = [option for option, value in (("--pattern", get("pattern") is not None), ("--no-pool", get("no_pool")))
             if value]
    if model != "pattern" and given:
        return f"{given[0]} describes --model pattern, not --model {model}"
    if model == "residual":
        for option, value in (("--no-bn", get("no_bn")), ("--bn-after-relu", get("bn_after_relu")),
                              ("--dropout", get("dropout") > 0), ("--init", get("init") is not None)):
            if value:
                return (f"{option}: --model residual is built with batch norm, He init and no hidden FC layer; "
                        f"{option} applies to lenet, pattern and mlp")
    if get("bn_after_relu") and get("no_bn"):
        return "--bn-after-relu places the batch norm, and --no-bn removes it: give one of them"
    n, m, k = get("pattern") or PATTERN
    counts = _width_counts(model, n, m, k)
    for option, values in (("--channels", get("channels")), ("--hidden", get("hidden"))):
        count, what = counts[option]
        if values is None or count is None or len(values) == count:
            continue
        shown = ",".join(map(str, values))
        if count == 0:
            return f"{option} {shown}: --model {model} takes no {option} ({what})"
        return (f"{option} {shown}: --model {model} takes {count} width{'s' if count > 1 else ''} ({what}), "
                f"got {len(values)}")
    if get("dropout") > 0 and model == "pattern" and k == 0:
        return (f"--dropout {get('dropout'):g} goes after each hidden FC layer, and --pattern {n},{m},{k} has none "
                f"(K = 0)")
    if model == "pattern" and not get("no_pool") and IMAGE_SIZE // 2 ** m < 1:
        return (f"--pattern {n},{m},{k}: {m} stages each closed by a 2x2 pool need images of at least "
                f"{2 ** m}x{2 ** m}, and the digits are {IMAGE_SIZE}x{IMAGE_SIZE}; use M <= 3 or --no-pool")
    if model == "mlp" and get("method") in CONV_METHODS:
        return f"--method {get('method')} chooses the convolutions' kernel, and mlp has none; use naive, fast or auto"
    return None


def _width_counts(model: str, n: int, m: int, k: int) -> dict:
    """option -> (count, what): how many widths --channels and --hidden take for ``model`` (0: the
    network has no place for them, None: any number), and what they are."""
    if model == "pattern":
        return {"--channels": (m, f"one per stage, M = {m}") if n > 0 else
                              (0, "with N = 0 the stages have no convolutions"),
                "--hidden": (k, f"one per hidden FC layer, K = {k}") if k > 0 else (0, "K = 0: no hidden FC layer")}
    return {"lenet": {"--channels": (2, "the widths of its two stages"),
                      "--hidden": (1, "the width of its hidden FC layer")},
            "residual": {"--channels": (1, "the width of every convolution"),
                         "--hidden": (0, "it has no hidden FC layer")},
            "mlp": {"--channels": (0, "it has no convolutions"),
                    "--hidden": (None, "one per hidden FC layer")}}[model]


def build_model(args):
    """The network the options describe, with its weights drawn from ``args.seed`` (a resumed run
    builds it the same way, then loads the checkpoint's weights into it).  ``--method`` picks the
    kernels: a convolution method (direct, im2col, blocked) for the conv layers only, the rest
    "auto"; naive, fast or auto for every layer.  Call ``model_problem(args)`` first."""
    from . import models
    get = functools.partial(_option, args)
    model, seed, method = get("model"), get("seed"), get("method")
    channels, hidden = get("channels"), get("hidden")
    norm = dict(batch_norm=not get("no_bn"), bn_after_relu=get("bn_after_relu"), dropout=get("dropout"))
    init = {} if get("init") is None else dict(init=get("init"))
    conv_method = dict(method=method) if method in CONV_METHODS else {}
    if model == "lenet":
        net = models.lenet(seed=seed, **conv_method, **norm, **init,
                           **({} if channels is None else dict(channels=channels)),
                           **({} if hidden is None else dict(hidden=hidden[0])))
    elif model == "residual":
        net = models.residual_net(seed=seed, **conv_method,
                                  **({} if channels is None else dict(channels=channels[0])))
    elif model == "pattern":
        n, m, k = get("pattern") or PATTERN
        net = models.pattern(n, m, k, channels=channels, hidden=hidden, pool=not get("no_pool"), seed=seed,
                             **conv_method, **norm, **init)
    else:
        net = models.mlp(hidden=hidden or (64, 64), seed=seed, **norm, **init)
    return net if conv_method else net.set_method(method)        # one switch for every layer


def describe_model(args) -> str:
    """The network in the notes' notation (pattern and mlp), and the options that change any network."""
    get = functools.partial(_option, args)
    bn, after, dropout = not get("no_bn"), get("bn_after_relu"), get("dropout")
    act = ("RELU -> BN" if after else "BN -> RELU") if bn else "RELU"
    fc = f"[FC -> {act}{' -> DROPOUT' if dropout > 0 else ''}]"
    parts = []
    if get("model") == "pattern":
        n, m, k = get("pattern") or PATTERN
        pool = "" if get("no_pool") else " -> POOL"
        parts.append(f"INPUT -> [[CONV -> {act}] * {n}{pool}] * {m} -> {fc} * {k} -> FC")
    elif get("model") == "mlp":
        parts.append(f"INPUT -> FLATTEN -> {fc} * {len(get('hidden') or (64, 64))} -> FC")
    elif not bn:
        parts.append("no batch norm")
    elif after:
        parts.append("batch norm after the ReLUs")
    if dropout > 0:
        parts.append(f"dropout {dropout:g}")
    if get("init") is not None:
        parts.append(f"init {get('init')}")
    return "; ".join(parts)


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
    from . import optim
    from .data import load_digits, random_shift
    from .summary import summary

    problem = model_problem(args)
    if problem:
        return fail("train", problem)
    device = getattr(args, "device", DEFAULTS["device"])
    problem = devices.cuda_unavailable() if device == devices.CUDA else None
    if problem:
        return fail("train", f"--device cuda: {problem}")
    problem = setup_problem(args)
    if problem:
        return fail("train", problem)
    data = load_digits(seed=args.seed)          # without scikit-learn: an ImportError that nbconv.cli reports
    model = build_model(args).to(device)        # before the optimizer: its state follows
    weight_decay = _option(args, "weight_decay")
    optimizer = optim.make_optimizer(args.optimizer, model.parameters(), args.lr, weight_decay=weight_decay)
    schedule = _make_schedule(args.schedule, optimizer, args.epochs)
    described = describe_model(args)
    print(f"digits: {len(data.y_train)} train, {len(data.y_val)} validation, {len(data.y_test)} test images; "
          f"{args.model}{f' ({described})' if described else ''} with {model.num_params():,} parameters; "
          f"{args.optimizer} lr {args.lr:g}{f', weight decay {weight_decay:g}' if weight_decay else ''}, "
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

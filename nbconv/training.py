"""Training: mini-batch gradient descent with validation, early stopping, a learning-rate schedule
and checkpoints that resume exactly (the ``nbconv train`` command is nbconv.train_cli, the figure
of a run nbconv.plot).

One step of the loop, with nothing hidden::

    logits = model.forward(x_batch)                              # the layers in order
    loss, cache = F.cross_entropy_forward(logits, y_batch)       # mean over the batch
    (dlogits,) = F.cross_entropy_backward(1.0, cache)            # dL/dlogits
    optimizer.zero_grad()
    model.backward(dlogits)                                      # the layers in reverse: param.grad
    optimizer.step()                                             # the update formula

Each epoch visits the training images once in a fresh random order (the order of epoch ``e`` is
drawn from ``numpy.random.default_rng([seed, e])``, so a run resumed at epoch ``e`` shuffles
exactly as the uninterrupted run would), then measures loss and accuracy on the validation
split in eval mode.  The schedule (if any) steps once per epoch, after validation.

Early stopping watches the validation loss: after ``early_stopping_patience`` epochs without a
new minimum, training stops, and the weights (parameters and running statistics) of the best
epoch are restored.

Reproducible: the same model seed, data, optimizer settings and ``seed`` give identical
histories and weights, on the same number of threads (``thread_limit``): the parallel kernels
may add their sums in another order on another thread count.  Layers that draw random numbers
of their own (dropout) must be seeded too, and their generator is not part of a checkpoint.

A checkpoint written after epoch ``e`` holds the model, the optimizer state, the schedule state,
the history, and for early stopping the best weights so far, so ``train(..., resume=True)``
continues at epoch ``e + 1`` exactly as the uninterrupted run did.

Gradient norms: ``train(..., grad_norms=True)`` also records, per epoch, how large each
parameter's gradient was: ``history.grad_norms[e]`` is a dict {parameter name: the mean over the
epoch's steps of the L2 norm ||dL/dtheta||_2 of that parameter's gradient}, measured right after
``model.backward`` (before the optimizer's weight decay, which never touches ``param.grad``).
The names are those of ``model.named_parameters()`` (and of a checkpoint's ``param/<name>``):
``"1.w"`` is the weight ``w`` of layer [1] of a Sequential, ``"4.b"`` the bias of layer [4],
``"2.block.0.w"`` the weight of layer [0] inside the block of the Residual at [2].  It is how the
vanishing gradients of a deep network show (``nbconv experiment vanishing-gradients``).

On the GPU: move the model first, ``model.to("cuda")`` (``nbconv train --device cuda``), then
build the optimizer.  ``train`` and ``evaluate`` run where the model's parameters are: each step
copies only the batch (images and labels) to the device, and the logits (batch x classes) back
as a small host copy to count the correct predictions.  The loss stays on the device: each
batch's loss (a 0-d device array) is copied into its slot of a device array, which comes to
the host once, when the epoch's line is printed (``_EpochLoss``), so the progress bar shows the
loss at the end of an epoch, not at every step.  The data set, the shuffling and the
augmentation stay on the host.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import checkpoint as ckpt
from . import functional as F
from ._args import _positive_int
from . import devices

__all__ = ["History", "train", "evaluate", "thread_limit"]


# ---------------------------------------------------------------- history

@dataclass
class History:
    """Per-epoch metrics, one list entry per epoch run.  ``seconds`` (wall time of each epoch) is
    left out of ``==``, so two runs with the same seed compare equal."""

    train_loss: list = field(default_factory=list)   # mean loss over the epoch's batches (train mode)
    train_acc: list = field(default_factory=list)    # accuracy over the epoch's batches (train mode)
    val_loss: list = field(default_factory=list)     # on the validation split, eval mode
    val_acc: list = field(default_factory=list)
    lr: list = field(default_factory=list)           # the learning rate used during the epoch
    seconds: list = field(default_factory=list, compare=False)
    # with train(..., grad_norms=True): per epoch {parameter name: mean L2 norm of its gradient
    # over the epoch's steps}, the names of model.named_parameters() ("1.w", "2.block.0.w"); else []
    grad_norms: list = field(default_factory=list)
    best_epoch: int | None = None      # 1-based epoch of the lowest validation loss (with early stopping)
    stopped_epoch: int | None = None   # 1-based epoch after which early stopping ended training

    def __len__(self) -> int:
        return len(self.train_loss)

    @property
    def epochs(self) -> int:
        return len(self)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """The History of ``to_dict()`` (also one saved before a field existed: it starts empty)."""
        return cls(**{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in d.items()})

    def grad_norm_curve(self, name: str) -> list[float]:
        """The mean gradient norm of the parameter ``name`` in each epoch (needs grad_norms=True)."""
        if not self.grad_norms:
            raise ValueError("this history has no gradient norms: train with grad_norms=True to record them")
        if name not in self.grad_norms[0]:
            raise ValueError(f"no parameter {name!r} in the gradient norms; the parameters are: "
                             f"{', '.join(self.grad_norms[0])}")
        return [epoch[name] for epoch in self.grad_norms]

    def _append(self, **metrics) -> None:
        for name, value in metrics.items():
            getattr(self, name).append(float(value))


# ---------------------------------------------------------------- helpers

def _batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each mini-batch.  A last batch of a single sample is merged into the one
    before it: batch norm cannot compute statistics of one value per channel."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [(s, starts[k + 1] if k + 1 < len(starts) else n) for k, s in enumerate(starts)]


def _progress_bar(enabled: bool, total: int, desc: str):
    """A tqdm bar, or None when disabled or tqdm is not installed (training goes on silently)."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="batch", leave=True, file=sys.stderr, dynamic_ncols=True)


def _snapshot(model) -> dict:
    """Copies of every parameter and buffer, by name."""
    state = {f"param/{n}": np.array(devices.to_host(p.data)) for n, p in model.named_parameters()}
    state.update({f"buffer/{n}": np.array(devices.to_host(b)) for n, b in model.named_buffers()})
    return state                 # host copies, also of a model on the GPU (they go into checkpoints)


def _restore(model, state: dict) -> None:
    for n, p in model.named_parameters():
        devices.assign(p.data, state[f"param/{n}"])         # p.data[...] = ..., on either device
    for n, b in model.named_buffers():
        devices.assign(b, state[f"buffer/{n}"])


def _model_device(model) -> str:
    """Where the model's parameters are: "cuda" after model.to("cuda"), else "cpu"."""
    return getattr(model, "device", devices.CPU)


def _correct(logits, y) -> int:
    """How many rows of ``logits`` have their maximum at the label ``y`` (a host copy of device logits)."""
    return int(np.sum(np.argmax(devices.to_host(logits), axis=1) == y))


def _schedule_state(schedule):
    return schedule.state_dict() if hasattr(schedule, "state_dict") else None


def _check_data(data):
    for name in ("x_train", "y_train", "x_val", "y_val"):
        if not hasattr(data, name):
            raise TypeError(f"data must have x_train, y_train, x_val and y_val (such as nbconv.data.Digits), "
                            f"got {type(data).__name__} without {name}")
    for x, y in (("x_train", "y_train"), ("x_val", "y_val")):
        if len(getattr(data, x)) != len(getattr(data, y)):
            raise ValueError(f"data.{x} has {len(getattr(data, x))} samples but data.{y} has "
                             f"{len(getattr(data, y))}")
    if len(data.y_train) == 0:
        raise ValueError("data.x_train is empty: there is nothing to train on")


def _grad_norms(model) -> dict[str, float]:
    """{name: ||param.grad||_2} for every parameter of ``model`` (a host copy of a device gradient)."""
    return {name: float(np.linalg.norm(np.asarray(devices.to_host(p.grad), dtype=np.float64).ravel()))
            for name, p in model.named_parameters()}


def _on(batch, device):
    """The batch on the model's device: itself on the CPU, a device copy on the GPU."""
    return batch if device == devices.CPU else devices.to_device(batch, device)


class _EpochLoss:
    """The mean loss over the batches of an epoch, sum_k loss_k n_k / sum_k n_k (n_k: batch k's size).

    On the CPU each batch's loss is added as it comes (``running`` is the mean so far, for the
    progress bar).  On the GPU the losses stay on the device: ``add`` copies loss_k (a 0-d device
    array) into slot k of a device array, device to device, and ``mean`` copies that array to the
    host once and adds it up there in the same order: the numbers of the CPU's formula, with one
    copy per epoch instead of a read (a wait for the GPU) at every step.
    """

    def __init__(self, device: str, batches: int):
        self.device = device
        self.batches = batches
        self.slots = None            # the device array of the batches' losses (GPU)
        self.sizes = []              # n_k
        self.seen = 0                # sum_k n_k so far
        self.total = 0.0             # sum_k loss_k n_k so far (CPU)

    def add(self, loss, n: int) -> None:
        if self.device == devices.CPU:
            self.total += float(loss) * n
        else:
            if self.slots is None:
                self.slots = devices.empty(self.batches, loss.dtype, self.device)
            k = len(self.sizes)
            devices.assign(self.slots[k:k + 1], loss.reshape(1))     # device to device, no read
        self.sizes.append(n)
        self.seen += n

    @property
    def running(self) -> float | None:
        """The mean so far on the CPU; None on the GPU (it would cost a read per step)."""
        return self.total / self.seen if self.device == devices.CPU else None

    def mean(self) -> float:
        if self.device != devices.CPU:
            self.total = 0.0
            for loss, n in zip(devices.to_host(self.slots), self.sizes):     # the epoch's one copy
                self.total += float(loss) * n
        return self.total / self.seen


# ---------------------------------------------------------------- evaluation

def evaluate(model, x, y, batch_size: int = 256) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) of ``model`` on (x, y) in eval mode, in batches.

    The model's train/eval mode is restored afterwards.  An empty set gives (nan, nan).
    """
    batch_size = _positive_int("batch_size", batch_size)
    n = len(y)
    if n == 0:
        return math.nan, math.nan
    was_training = model.training
    device = _model_device(model)
    model.eval()
    try:
        starts = range(0, n, batch_size)
        losses, correct = _EpochLoss(device, len(starts)), 0
        for start in starts:
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            logits = model.forward(_on(xb, device))
            loss, _ = F.cross_entropy_forward(logits, _on(yb, device))
            losses.add(loss, len(yb))
            correct += _correct(logits, yb)
    finally:
        model.train(was_training)
    return losses.mean(), correct / n


# ---------------------------------------------------------------- training

def train(model, data, optimizer, *, epochs: int, batch_size: int, seed: int, schedule=None,
          early_stopping_patience: int | None = None, checkpoint=None, resume: bool = False,
          progress: bool = True, augment=None, callback=None, grad_norms: bool = False) -> History:
    """Train ``model`` on ``data.x_train, data.y_train``, validating on ``data.x_val, data.y_val``.

    epochs                   total number of epochs (a resumed run continues up to it)
    batch_size               images per mini-batch
    seed                     seeds the shuffling (and the augmentation); with the same model seed it gives
                             the same run
    schedule                 an object whose ``step()`` is called once per epoch to set ``optimizer.lr``
    early_stopping_patience  stop after this many epochs without a lower validation loss and restore
                             the best epoch's weights (None: train all epochs)
    checkpoint               a path: after every epoch the model, optimizer, history and schedule are
                             saved there (atomically)
    resume                   with ``checkpoint``: if the file exists, continue from it; the run then ends
                             with the same weights as an uninterrupted one
    progress                 a tqdm bar per epoch showing loss and accuracy (quietly off without tqdm)
    augment                  ``augment(x_batch, rng) -> x_batch`` applied to each training batch, such as
                             ``nbconv.data.random_shift``; ``rng`` is the epoch's seeded generator
    callback                 ``callback(epoch, history)`` after each epoch (epoch 1-based)
    grad_norms               also record ``history.grad_norms``: per epoch {parameter name: mean over the
                             epoch's steps of the L2 norm of its gradient} (names of model.named_parameters());
                             a resumed run must record them if, and only if, the checkpoint's run did

    Returns the History of all epochs (those before a resume included).
    """
    _check_data(data)
    epochs = _positive_int("epochs", epochs)
    batch_size = _positive_int("batch_size", batch_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if early_stopping_patience is not None:
        early_stopping_patience = _positive_int("early_stopping_patience", early_stopping_patience)
        if len(data.y_val) == 0:
            raise ValueError("early stopping watches the validation loss, but data.x_val is empty")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path to resume from")

    history = History()
    start_epoch = 0
    best_loss, best_state, bad_epochs = math.inf, None, 0
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        meta = ckpt.load(checkpoint, model, optimizer)
        start_epoch = int(meta["epoch"])
        history = History.from_dict(meta["history"])
        if schedule is not None:
            if meta.get("schedule") is not None and hasattr(schedule, "load_state_dict"):
                schedule.load_state_dict(meta["schedule"])
            else:                       # a schedule without state: replay its per-epoch steps
                for _ in range(start_epoch):
                    schedule.step()
        optimizer.lr = meta["lr"]       # the learning rate the next epoch would have used
        stopping = meta.get("early_stopping")
        if stopping is not None:
            best_loss, best_state, bad_epochs = stopping["best_loss"], stopping["best_state"], stopping["bad_epochs"]
        recorded = len(history.grad_norms) == len(history) > 0
        if bool(grad_norms) != recorded:
            raise ValueError(f"grad_norms={bool(grad_norms)}, but the run saved in {checkpoint} "
                             f"{'recorded' if recorded else 'did not record'} gradient norms for its "
                             f"{len(history)} epochs: resume with grad_norms={recorded}, so that every "
                             f"epoch has them or none")

    x_train, y_train = data.x_train, data.y_train
    device = _model_device(model)
    n = len(y_train)
    batches = _batches(n, batch_size)
    for epoch in range(start_epoch, epochs):
        if history.stopped_epoch is not None:
            break
        tic = time.perf_counter()
        rng = np.random.default_rng([int(seed), epoch])
        order = rng.permutation(n)
        lr = float(optimizer.lr)
        model.train()
        bar = _progress_bar(progress, len(batches), f"epoch {epoch + 1}/{epochs}")
        losses, correct, seen = _EpochLoss(device, len(batches)), 0, 0     # the loss: on the model's device
        norm_sums = {}                                  # name -> sum over the steps of ||grad||_2
        try:
            for start, stop in batches:
                idx = order[start:stop]
                xb, yb = x_train[idx], y_train[idx]
                if augment is not None:
                    xb = augment(xb, rng)
                logits = model.forward(_on(xb, device))                  # only the batch is copied
                loss, cache = F.cross_entropy_forward(logits, _on(yb, device))
                (dlogits,) = F.cross_entropy_backward(1.0, cache)
                optimizer.zero_grad()
                model.backward(dlogits)
                if grad_norms:
                    for name, norm in _grad_norms(model).items():
                        norm_sums[name] = norm_sums.get(name, 0.0) + norm
                optimizer.step()
                losses.add(loss, len(idx))                  # on the GPU: kept there, no read
                correct += _correct(logits, yb)
                seen += len(idx)
                if bar is not None:
                    bar.update(1)
                    running = {} if losses.running is None else {"loss": f"{losses.running:.4f}"}
                    bar.set_postfix(**running, acc=f"{correct / seen:.4f}", refresh=False)
            train_loss = losses.mean()                      # on the GPU: the epoch's one read of the loss
            val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
            if bar is not None:
                bar.set_postfix(loss=f"{train_loss:.4f}", acc=f"{correct / seen:.4f}",
                                val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.4f}", lr=f"{lr:.3g}")
        finally:
            if bar is not None:
                bar.close()
        history._append(train_loss=train_loss, train_acc=correct / seen, val_loss=val_loss,
                        val_acc=val_acc, lr=lr, seconds=time.perf_counter() - tic)
        if grad_norms:
            history.grad_norms.append({name: total / len(batches) for name, total in norm_sums.items()})

        if early_stopping_patience is not None:
            if val_loss < best_loss:
                best_loss, best_state, bad_epochs = val_loss, _snapshot(model), 0
                history.best_epoch = epoch + 1
            else:
                bad_epochs += 1
                if bad_epochs >= early_stopping_patience:
                    history.stopped_epoch = epoch + 1
        if schedule is not None:
            schedule.step()
        if checkpoint is not None:
            stopping = None if early_stopping_patience is None else \
                {"best_loss": best_loss, "best_state": best_state, "bad_epochs": bad_epochs}
            ckpt.save(checkpoint, model, optimizer, epoch=epoch + 1, history=history.to_dict(),
                      lr=float(optimizer.lr), schedule=_schedule_state(schedule), early_stopping=stopping)
        if callback is not None:
            callback(epoch + 1, history)

    if early_stopping_patience is not None and best_state is not None:
        _restore(model, best_state)
    return history


# ---------------------------------------------------------------- threads

@contextlib.contextmanager
def thread_limit(threads: int):
    """``with thread_limit(1): train(...)`` runs with at most ``threads`` Numba threads (the prange
    kernels) and BLAS threads (through threadpoolctl, if installed; scikit-learn depends on it);
    both are restored afterwards.  Small images such as the 8x8 digits give each parallel region
    too little work: extra threads only add synchronization, and on a busy machine they wait for
    each other far longer than the work takes."""
    threads = _positive_int("threads", threads)
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:                  # pragma: no cover  (scikit-learn depends on it)
            yield
        else:
            with threadpool_limits(limits=threads, user_api="blas"):
                yield
    finally:
        numba.set_num_threads(before)

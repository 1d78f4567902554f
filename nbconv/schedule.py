"""Learning-rate schedules: change an optimizer's ``lr`` once per epoch.

    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = CosineLR(opt, total_epochs=20)
    for epoch in range(20):
        ...train one epoch with opt...
        sched.step()                 # lr for the next epoch

With eta_0 the optimizer's lr when the schedule is made and e the number of
``step()`` calls so far (the epochs done):

    StepLR(opt, step_size, gamma)        eta_e = eta_0 * gamma ** floor(e / step_size)
    CosineLR(opt, total_epochs, min_lr)  eta_e = min_lr + (eta_0 - min_lr) * (1 + cos(pi * e / total_epochs)) / 2
                                         (and min_lr once e >= total_epochs)

``state_dict()`` / ``load_state_dict()`` save and restore ``epoch`` and
``base_lr`` for checkpoints; loading also sets the optimizer's lr.

Both are also importable from ``nbconv.optim``.
"""

from __future__ import annotations

import math

import numpy as np

from ._args import _non_negative, _positive, _positive_int

__all__ = ["LRSchedule", "StepLR", "CosineLR"]


class LRSchedule:
    """The shared part: the optimizer, ``base_lr`` (eta_0), ``epoch`` (steps taken) and ``lr_at(epoch)``."""

    def __init__(self, optimizer):
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"optimizer must have an lr attribute (an nbconv.optim optimizer), "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.epoch = 0

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        """Call once at the end of every epoch: sets and returns the lr of the next one."""
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)
        return self.optimizer.lr

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"epoch": np.array(self.epoch, dtype=np.int64), "base_lr": np.array(self.base_lr)}

    def load_state_dict(self, d) -> None:
        missing = sorted({"epoch", "base_lr"} - set(d.keys()))
        if missing:
            raise ValueError(f"schedule state is missing {', '.join(missing)}")
        epoch, base_lr = np.asarray(d["epoch"]), np.asarray(d["base_lr"])
        if epoch.shape != () or epoch.dtype.kind not in "iu" or epoch < 0:
            raise ValueError(f"schedule state 'epoch' must be a non-negative integer scalar, got {d['epoch']!r}")
        if base_lr.shape != () or base_lr.dtype.kind not in "iuf":
            raise ValueError(f"schedule state 'base_lr' must be a real scalar, got {d['base_lr']!r}")
        self.base_lr = _positive("base_lr", float(base_lr))
        self.epoch = int(epoch)
        self.optimizer.lr = self.lr_at(self.epoch)

    def __repr__(self):
        return f"{type(self).__name__}(base_lr={self.base_lr:g}, epoch={self.epoch})"


class StepLR(LRSchedule):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs: eta_e = eta_0 * gamma ** floor(e / step_size)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = _positive_int("step_size", step_size)
        self.gamma = _positive("gamma", gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineLR(LRSchedule):
    """Cosine annealing from eta_0 to ``min_lr`` over ``total_epochs``, then ``min_lr``:
    eta_e = min_lr + (eta_0 - min_lr) * (1 + cos(pi * e / total_epochs)) / 2."""

    def __init__(self, optimizer, total_epochs: int, min_lr: float = 0.0):
        self.total_epochs = _positive_int("total_epochs", total_epochs)
        self.min_lr = _non_negative("min_lr", min_lr)
        super().__init__(optimizer)
        if self.min_lr > self.base_lr:
            raise ValueError(f"min_lr must be <= the optimizer's lr {self.base_lr:g}, got {self.min_lr:g}")

    def lr_at(self, epoch: int) -> float:
        e = min(epoch, self.total_epochs)
        return self.min_lr + (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * e / self.total_epochs)) / 2.0

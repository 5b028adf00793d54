"""Learning-rate schedules, PyTorch's names: alpha of eqs 74-75 as a closed form in the epoch.

``scheduler.step()`` once per epoch sets ``optimizer.lr`` to the form at ``last_epoch`` (the
number of calls) from ``base_lr`` (the optimizer's lr at the start). PyTorch's recursion gives
the same values up to rounding; the closed form makes a resumed schedule the uninterrupted one."""
from __future__ import annotations

import math

from .. import io
from .optimizer import Optimizer


class LRScheduler(io.Declared):
    """Base class: subclasses declare ``HYPERPARAMETERS`` and define ``lr_at(epoch)``."""

    FIRST, KIND, UNCHANGED = "optimizer", "scheduler", "the scheduler is unchanged"
    EXPECTED = "a scheduler state written by save"

    def __init__(self, optimizer, *args, **kwargs):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an autograd_lite.optim optimizer, got {optimizer!r}")
        self.bind(optimizer, *args, **kwargs)
        self.optimizer, self.base_lr, self.last_epoch = optimizer, optimizer.lr, 0
        optimizer.lr = self._checked_lr(0, type(self).__name__)

    def lr_at(self, epoch) -> float:
        raise NotImplementedError

    def step(self):
        """One epoch done: set ``optimizer.lr`` to the schedule's value for the next one."""
        self.optimizer.lr = self._checked_lr(self.last_epoch + 1, type(self).__name__)
        self.last_epoch += 1

    def _checked_lr(self, epoch, source):  # a schedule may not reach an lr <= 0
        lr = self.lr_at(epoch)
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"{source}: the schedule gives a learning rate of {lr!r} at epoch "
                             f"{epoch}; it must be a finite number > 0 (for CosineAnnealingLR "
                             f"give eta_min > 0 to stay above 0)")
        return lr

    def get_last_lr(self) -> list:  # PyTorch's: one per group
        return [self.lr_at(self.last_epoch)]

    def __repr__(self):
        return f"{type(self).__name__}({self.describe()}, base_lr={self.base_lr}, last_epoch={self.last_epoch})"

    def saved(self):
        return {"last_epoch": self.last_epoch, "base_lr": self.base_lr, **self.hyperparameters()}

    def declared_state(self):
        return {"last_epoch": io.count, "base_lr": io.learning_rate, **super().declared_state()}

    def restore(self, values, refuse):
        trial = object.__new__(type(self))
        trial.__dict__.update(values)
        try:
            lr = trial._checked_lr(values["last_epoch"], "the saved schedule")
        except ValueError as error:
            raise refuse(str(error)) from None
        self.__dict__.update(values)
        self.optimizer.lr = lr


class StepLR(LRScheduler):
    """``base_lr * gamma ** (last_epoch // step_size)``: divide by 1/gamma every step_size epochs."""

    HYPERPARAMETERS = {"step_size": (io.REQUIRED, io.count_from_one), "gamma": (0.1, io.positive)}

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """``base_lr * gamma ** last_epoch``."""

    HYPERPARAMETERS = {"gamma": (io.REQUIRED, io.positive)}

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** epoch


class CosineAnnealingLR(LRScheduler):
    """``eta_min + (base_lr - eta_min) (1 + cos(pi last_epoch / T_max)) / 2``: down to eta_min
    over T_max epochs, then up (as PyTorch's). Give eta_min > 0 to reach epoch T_max."""

    HYPERPARAMETERS = {"T_max": (io.REQUIRED, io.count_from_one), "eta_min": (0.0, io.non_negative)}

    def lr_at(self, epoch):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR"]

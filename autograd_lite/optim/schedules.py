"""Learning-rate schedules: alpha of eqs 74-75 as a function of the epoch, PyTorch's names.

``scheduler = StepLR(optimizer, step_size=30, gamma=0.1)``; call ``scheduler.step()`` once per
epoch, after the optimizer's steps; it sets ``optimizer.lr``. Each schedule is its closed form
in ``last_epoch`` (the number of ``step()`` calls so far) and the learning rate the optimizer had
when the scheduler was made (``base_lr``):

- ``StepLR(optimizer, step_size, gamma=0.1)``: ``base_lr * gamma ** (last_epoch // step_size)``
- ``ExponentialLR(optimizer, gamma)``: ``base_lr * gamma ** last_epoch``
- ``CosineAnnealingLR(optimizer, T_max, eta_min=0)``:
  ``eta_min + (base_lr - eta_min) * (1 + cos(pi * last_epoch / T_max)) / 2``

(PyTorch computes the same values by a recursion, equal up to rounding; the closed form here
makes a resumed schedule exactly the uninterrupted one.) ``state_dict()`` / ``load_state_dict``
and ``save`` / ``load`` keep ``last_epoch``, ``base_lr`` and the settings, checked before
anything changes; with the optimizer's and the model's files a run resumes bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

from ..io import read_state, save_state
from .optimizers import Optimizer, _count, _learning_rate, _non_negative, _positive

STATE_FORMAT = 1


def _whole_positive(owner, label, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{owner}: {label} must be a whole number >= 1, got {value!r}")
    return int(value)


class LRScheduler:
    """Base class: subclasses list their SETTINGS (name -> checker) and define ``lr_at``."""

    SETTINGS: dict = {}

    def __init__(self, optimizer, **settings):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an optimizer from autograd_lite.optim, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for key, check in self.SETTINGS.items():
            setattr(self, key, check(type(self).__name__, key, settings[key]))
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        self._apply()

    def lr_at(self, epoch) -> float:
        raise NotImplementedError

    def step(self):
        """One epoch done: set ``optimizer.lr`` to the schedule's value for the next one."""
        self.last_epoch += 1
        self._apply()

    def _apply(self):
        lr = self.lr_at(self.last_epoch)
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"{type(self).__name__}: the schedule gives a learning rate of {lr!r} "
                             f"at epoch {self.last_epoch}; it must be a finite number > 0 (for "
                             f"CosineAnnealingLR give eta_min > 0 to stay above 0)")
        self.optimizer.lr = lr

    def get_last_lr(self) -> list:
        """``[optimizer.lr]`` as the schedule last set it (PyTorch returns one per group)."""
        return [self.lr_at(self.last_epoch)]

    def __repr__(self):
        settings = ", ".join(f"{key}={getattr(self, key)!r}" for key in self.SETTINGS)
        return f"{type(self).__name__}({settings}, base_lr={self.base_lr}, last_epoch={self.last_epoch})"

    # --- saving and resuming --------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"format": 1, "scheduler": "StepLR", "last_epoch": k, "base_lr": ..., <settings>}``."""
        return {"format": STATE_FORMAT, "scheduler": type(self).__name__,
                "last_epoch": self.last_epoch, "base_lr": self.base_lr,
                **{key: getattr(self, key) for key in self.SETTINGS}}

    def load_state_dict(self, state, source=None):
        """Resume from ``state``; sets ``optimizer.lr`` to the schedule's value at its epoch.
        Everything is checked first; on any error nothing changes."""
        source = source or f"{type(self).__name__}.load_state_dict"
        kind = type(self).__name__
        expected = {"format", "scheduler", "last_epoch", "base_lr", *self.SETTINGS}
        if not isinstance(state, dict) or set(state) != expected:
            got = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{source}: a {kind} state has the keys {sorted(expected)}, got "
                             f"{got}; the scheduler is unchanged")
        if state["format"] != STATE_FORMAT:
            raise ValueError(f"{source}: the state has format {state['format']!r}; this version "
                             f"reads format {STATE_FORMAT}; the scheduler is unchanged")
        if state["scheduler"] != kind:
            raise ValueError(f"{source}: the state was saved by {state['scheduler']!r}, not "
                             f"{kind!r}; the scheduler is unchanged")
        try:
            values = {key: check(f"{source}", key, state[key]) for key, check in self.SETTINGS.items()}
            base_lr = _learning_rate(f"{source}: base_lr", state["base_lr"])
        except ValueError as error:
            raise ValueError(f"{error}; the scheduler is unchanged") from None
        last_epoch = _count(source, "last_epoch", state["last_epoch"])
        trial = object.__new__(type(self))
        trial.__dict__.update(values, base_lr=base_lr, last_epoch=last_epoch)
        lr = trial.lr_at(last_epoch)
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"{source}: the saved schedule gives a learning rate of {lr!r} at "
                             f"epoch {last_epoch}; the scheduler is unchanged")
        self.__dict__.update(values, base_lr=base_lr, last_epoch=last_epoch)
        self.optimizer.lr = lr
        return self

    def save(self, path):
        """Write ``state_dict()`` to ``path`` as an ``.npz``, atomically."""
        save_state(path, self.state_dict())

    def load(self, path):
        source = f"{type(self).__name__}.load {path!r}"
        state = read_state(path, source=source, expected="a scheduler state written by save",
                           unchanged="the scheduler is unchanged")
        return self.load_state_dict(state, source)


class StepLR(LRScheduler):
    """``base_lr * gamma ** (last_epoch // step_size)``: divide by 1/gamma every step_size epochs."""

    SETTINGS = {"step_size": _whole_positive, "gamma": _positive}

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer, step_size=step_size, gamma=gamma)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """``base_lr * gamma ** last_epoch``."""

    SETTINGS = {"gamma": _positive}

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer, gamma=gamma)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** epoch


class CosineAnnealingLR(LRScheduler):
    """``eta_min + (base_lr - eta_min) (1 + cos(pi last_epoch / T_max)) / 2``: from base_lr down
    to eta_min over T_max epochs (and back up after, as PyTorch's does). With eta_min = 0 the
    learning rate at epoch T_max would be 0, which no optimizer accepts: give eta_min > 0 or
    stop before T_max."""

    SETTINGS = {"T_max": _whole_positive, "eta_min": _non_negative}

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer, T_max=T_max, eta_min=eta_min)

    def lr_at(self, epoch):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR"]

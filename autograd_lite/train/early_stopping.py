"""Early stopping: end ``fit`` when a monitored metric stops improving, and put back the state
of the best epoch (parameters and buffers: the restored model scores what was logged)."""
from __future__ import annotations

import math

from .. import backend, io
from ..core.tensor import array_of, assign


class EarlyStopping:
    """Stop ``fit`` when a validation metric has not improved for ``patience`` epochs (Keras's
    ``EarlyStopping``; PyTorch has no built-in).

    ``EarlyStopping(monitor="val_loss", patience=5, min_delta=0.0, mode="auto",
    restore_best_weights=True)``: ``monitor`` is a key fit records each epoch (``val_loss``,
    ``val_accuracy``, ``loss``, ...); ``mode`` "min", "max" or "auto" (min for names holding
    "loss"); an improvement must beat the best by more than ``min_delta``. With
    ``restore_best_weights`` the model ends with the parameters and buffers (BatchNorm's running
    statistics) of its best epoch, so it scores what was logged for that epoch; the optimizer's
    state and the generators are not rewound. ``fit`` records ``history.stopped_epoch`` and
    ``history.best_epoch``."""

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto",
                 restore_best_weights=True):
        self.monitor = io.text(monitor, "EarlyStopping: monitor")
        self.patience = io.count(patience, "EarlyStopping: patience")
        self.min_delta = io.non_negative(min_delta, "EarlyStopping: min_delta")
        mode = io.one_of("min", "max", "auto")(mode, "EarlyStopping: mode")
        self.mode = ("min" if "loss" in monitor else "max") if mode == "auto" else mode
        self.restore_best_weights = io.flag(restore_best_weights, "EarlyStopping: restore_best_weights")

    def start(self):
        self.best, self.best_epoch, self.best_weights, self.waited = None, None, None, 0

    def improved(self, value):
        if self.best is None:
            return math.isfinite(value)
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, epoch, values, model):
        """Record the epoch; True if training should stop."""
        if self.monitor not in values:
            raise ValueError(f"EarlyStopping: fit records {sorted(values) or 'no metric'} each "
                             f"epoch, not {self.monitor!r} (val_ metrics need validation=...)")
        value = float(values[self.monitor])
        if self.improved(value):
            self.best, self.best_epoch, self.waited = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = _weights(model)
            return False
        self.waited += 1
        return self.waited > self.patience

    def restore(self, model):
        if self.restore_best_weights and self.best_weights is not None:
            if hasattr(model, "named_buffers"):   # a Module: see _weights
                model.load_state_dict(self.best_weights, allow_nonfinite=True)
            else:
                for parameter, value in zip(model.parameters(), self.best_weights.values()):
                    assign(parameter, backend.copy_of(value))


def _weights(model) -> dict:
    """Copies of the parameters and buffers: a Module's by dotted name, else by position."""
    if hasattr(model, "named_buffers"):
        return {**{name: backend.copy_of(array_of(p)) for name, p in model.named_parameters()},
                **{name: backend.copy_of(array) for name, array in model.named_buffers()}}
    return {index: backend.copy_of(array_of(p)) for index, p in enumerate(model.parameters())}

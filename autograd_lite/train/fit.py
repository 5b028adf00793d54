"""The training loop a learner would write (forward, J, zero_grad, backward, step) over
mini-batches of columns, with the bookkeeping done: shuffling, the loss and metrics of every
epoch, validation, early stopping, a learning-rate schedule, progress lines and a bar.

``fit`` takes the model, the loss, the data, the optimizer, the number of epochs and the batch
size; everything else is a keyword of one of three small groups, each checked where it is
made: ``Watch`` (what is measured after each epoch), ``Epochs`` (how the epochs go on: the
shuffling generator, the schedule, the first epoch's number) and ``progress.Log``.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from ..core.tensor import Tensor
from .early_stopping import EarlyStopping
from .history import History
from .metrics import EpochMetric, evaluate, metric_name
from .progress import Log, ProgressBar
from .shuffler import Shuffler, as_array, batches, check_samples, columns


@dataclass
class Watch:
    """What ``fit`` measures after each epoch: ``metric(output, Y) -> float`` (e.g.
    ``accuracy``) from the epoch's batch outputs; ``validation=(X_val, Y_val)``, evaluated in
    evaluation mode and recorded as ``val_loss`` and ``val_<metric>``; ``early_stopping`` (an
    ``EarlyStopping``), which may end the run and restore the best epoch's state."""

    metric: object = None
    validation: tuple = None
    early_stopping: EarlyStopping = None

    def __post_init__(self):
        if self.validation is not None:
            self.validation = tuple(as_array(v) for v in self.validation)
            check_samples(*self.validation, "validation ")
        if self.early_stopping is not None and not isinstance(self.early_stopping, EarlyStopping):
            raise TypeError(f"fit: early_stopping must be a train.EarlyStopping, got "
                            f"{type(self.early_stopping).__name__}")


@dataclass
class Epochs:
    """How the epochs go on: ``rng`` shuffles the columns every epoch (a ``Shuffler``, whose
    state can be saved, a ``numpy.random.Generator`` or an int seed; None keeps the order),
    ``scheduler`` (``optim.StepLR``, ...) steps after each epoch, and ``initial_epoch`` is the
    number of epochs already done when resuming (the history and the log count on from it)."""

    rng: object = None
    scheduler: object = None
    initial_epoch: int = 0

    def __post_init__(self):
        if self.rng is not None and not isinstance(self.rng, (Shuffler, np.random.Generator)):
            self.rng = np.random.default_rng(self.rng)
        if not isinstance(self.initial_epoch, (int, np.integer)) or self.initial_epoch < 0:
            raise ValueError(f"fit: initial_epoch must be a whole number >= 0, got {self.initial_epoch!r}")


GROUPS = (Watch, Epochs, Log)


def fit(model, loss_fn, X, Y, optimizer, epochs, batch_size=None, **options):
    """Train ``model`` on the columns of X: per mini-batch, eqs 33-34 forward, J (eq 76),
    backward (eqs 77-84 by the engine), and the optimizer's step (eqs 74-75).

    - ``loss_fn(output, Y_batch)`` returns J for a batch (e.g. ``softmax_cross_entropy``).
    - ``batch_size`` None: the whole set each step (batch gradient descent, as in the seed).
    - ``options``: ``metric``, ``validation``, ``early_stopping`` (see ``Watch``); ``rng``,
      ``scheduler``, ``initial_epoch`` (see ``Epochs``); ``log_every``, ``stream``,
      ``progress``, ``verbose`` (see ``progress.Log``).

    Returns the ``History``. X and Y must be finite (NaN in the data is refused up front). If J
    becomes NaN or Inf, or the optimizer refuses a step (``optim.NonFiniteGradientError``: a NaN
    or Inf gradient), ``fit`` stops with that error, its message prefixed by the epoch and
    batch; the model keeps the parameters of the last good step and ``error.history`` holds the
    epochs completed.
    """
    watch, plan, log = _grouped(options)
    X, Y = as_array(X), as_array(Y)
    check_samples(X, Y, "")
    if not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"fit: epochs must be a whole number >= 0, got {epochs!r}")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"fit: batch_size must be a whole number >= 1 or None, got {batch_size!r}")
    m, stopper = X.shape[1], watch.early_stopping
    if stopper is not None:
        stopper.start()
    per_epoch = math.ceil(m / (batch_size or m))
    bar = ProgressBar(epochs * per_epoch, log.stream, enabled=log.progress)
    history, started = History(), time.monotonic()
    first, last = plan.initial_epoch + 1, plan.initial_epoch + epochs
    for epoch in range(first, last + 1):
        if getattr(model, "training", None) is False and hasattr(model, "train"):
            model.train()  # fit trains; evaluate() puts it back after each validation
        total, made_by = 0.0, None
        epoch_metric = EpochMetric(watch.metric) if watch.metric is not None else None
        for batch, index in enumerate(batches(m, batch_size, plan.rng), start=1):
            X_batch, Y_batch = columns(X, index), columns(Y, index)
            output = model(Tensor(X_batch))
            J = loss_fn(output, Y_batch)
            if epoch_metric is not None:  # before backward: on Dask its compute brings them
                epoch_metric.add(output, X_batch, Y_batch)
                made_by = output.op
            try:
                optimizer.zero_grad()
                J.backward()  # J read after: on Dask this is the step's one compute, J included
                value = J.item()
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"the loss became {value}; X and Y are finite, so the model or the loss "
                        f"made it: a learning rate ({getattr(optimizer, 'lr', '?')}) too large, or "
                        f"a loss on probabilities that saturated (compute it from the logits)")
                optimizer.step()
            except FloatingPointError as error:
                bar.clear()
                raise _stopped(error, epoch, batch, history, started) from None
            total += value * len(index)
            bar.update((epoch - first) * per_epoch + batch, f"epoch {epoch}/{last} loss {value:.4f}")
        values = {}
        if epoch_metric is not None:
            values[metric_name(watch.metric)] = epoch_metric.value(made_by)
        if watch.validation is not None:
            scores = evaluate(model, loss_fn, *watch.validation, watch.metric)
            values.update({f"val_{key}": value for key, value in scores.items()})
        history.record(epoch, total / m, values)
        if plan.scheduler is not None:
            plan.scheduler.step()
        stop = stopper is not None and stopper.update(epoch, {"loss": total / m, **values}, model)
        log.epoch(epoch, first, last, total / m, values, bar, force=stop)
        if stop:
            history.stopped_epoch = epoch
            break
    if stopper is not None:
        history.best_epoch = stopper.best_epoch
        stopper.restore(model)
        if history.stopped_epoch is not None:
            log.line(f"early stopping at epoch {history.stopped_epoch}: {stopper.monitor} has "
                     f"not improved for {stopper.patience + 1} epochs; best {stopper.best:.4f} at "
                     f"epoch {stopper.best_epoch}{' (its state restored)' if stopper.best_weights else ''}")
    bar.clear()
    history.seconds = time.monotonic() - started
    return history


def _grouped(options):
    """fit's keyword options as a ``Watch``, an ``Epochs`` and a ``Log``."""
    fields = {field.name: group for group in GROUPS for field in dataclasses.fields(group)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise TypeError(f"fit: unexpected keyword argument{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(map(repr, unknown))}; fit takes {', '.join(fields)}")
    return [group(**{key: value for key, value in options.items() if fields[key] is group})
            for group in GROUPS]


def _stopped(error, epoch, batch, history, started):
    """``error`` with the epoch and batch in front of its message, carrying the history."""
    history.seconds = time.monotonic() - started
    error.args = (f"fit stopped at epoch {epoch}, batch {batch}: {error} (the model keeps the "
                  f"parameters of the last good step; error.history holds the "
                  f"{len(history.epochs)} completed epochs)",) + tuple(error.args[1:])
    error.epoch, error.batch, error.history = epoch, batch, history
    return error

"""A small training loop: mini-batches of columns, progress, loss history, an optional plot.

``fit`` is the loop a learner would write (forward, J, zero_grad, backward, step) with the
bookkeeping done: it shuffles the m columns with a ``numpy.random.Generator``, records the mean
loss of every epoch (and a metric such as ``accuracy``, and the same on validation data,
evaluated under ``no_grad``), prints a line every few epochs, and draws a progress bar on stderr
when the run is long and stderr is a terminal. Nothing here needs a dependency; ``History.plot``
needs the optional ``plot`` extra (matplotlib).
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .autodiff import no_grad
from .errors import ShapeError
from .files import check_writable, write_atomically
from .tensor import Tensor


# --- metrics ------------------------------------------------------------------------------------

def accuracy(output, Y, from_logits=True):
    """The fraction of the m samples (columns) classified correctly.

    One output unit: the prediction is 1 where the output exceeds 0 (logits Z, the default) or
    0.5 (probabilities, ``from_logits=False``); ``Y`` holds 0/1, shape (1, m) or (m,). Several
    units: the prediction is the unit with the largest output (the same for logits and
    probabilities); ``Y`` is one-hot columns (n, m) or class indices (m,).
    """
    output = np.asarray(output.data if isinstance(output, Tensor) else output)
    Y = np.asarray(Y.data if isinstance(Y, Tensor) else Y)
    if output.ndim != 2:
        raise ShapeError(f"accuracy: the output must be n[N] x m, got shape {output.shape}")
    n, m = output.shape
    if n == 1:
        predicted = output[0] > (0.0 if from_logits else 0.5)
        truth = Y.reshape(-1) if Y.size == m else None
        if truth is None:
            raise ShapeError(f"accuracy: labels Y of shape {Y.shape} do not match an output of shape {output.shape}")
        return float(np.mean(predicted == (truth > 0.5)))
    predicted = np.argmax(output, axis=0)
    if Y.shape == output.shape:
        truth = np.argmax(Y, axis=0)
    elif Y.shape == (m,):
        truth = Y.astype(np.int64)
    else:
        raise ShapeError(f"accuracy: labels Y must be one-hot {output.shape} or class indices "
                         f"({m},), got shape {Y.shape}")
    return float(np.mean(predicted == truth))


def accuracy_of_probabilities(output, Y):
    """``accuracy`` for outputs that are probabilities (a sigmoid or softmax output layer)."""
    return accuracy(output, Y, from_logits=False)


accuracy_of_probabilities.metric_name = "accuracy"


# --- batches ------------------------------------------------------------------------------------

def columns(array, index):
    """The samples ``index`` of ``array``: columns of an (n, m) array, items of an (m,) one."""
    return array[..., index]


def batches(m, batch_size, rng=None):
    """Column indices of the mini-batches of one epoch: shuffled by ``rng`` if given."""
    order = rng.permutation(m) if rng is not None else np.arange(m)
    size = m if batch_size is None else batch_size
    return [order[start:start + size] for start in range(0, m, size)]


# --- history ------------------------------------------------------------------------------------

@dataclass
class History:
    """What ``fit`` recorded, one entry per epoch: ``loss`` (the mean J over the epoch's
    batches, weighted by batch size), ``metrics`` (``{"accuracy": [...], "val_loss": [...],
    ...}``) and ``seconds`` (the run's wall time)."""

    epochs: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0

    def record(self, epoch, loss, values):
        self.epochs.append(epoch)
        self.loss.append(loss)
        for key, value in values.items():
            self.metrics.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.loss if key == "loss" else self.metrics[key]

    def plot(self, path, title=None):
        """Draw the loss curve (and validation loss, if recorded) to an image file.

        The format follows the suffix (``.png``, ``.svg``, ``.pdf``; none: png). Written by
        ``files.write_atomically`` like every file of the project: whole or not at all, an
        ordinary file (0644 under the usual umask), and a path that cannot be written (a missing folder, say) is one
        ``files.WriteError`` before anything is drawn. Needs matplotlib:
        ``pip install "autograd_lite[plot]"``.
        """
        Figure = _matplotlib_figure()
        if not self.loss:
            raise ValueError("History.plot: nothing recorded yet (fit ran for 0 epochs)")
        path = os.fspath(path)
        suffix = check_plot_path(path)
        figure = Figure(figsize=(6, 4))
        axes = figure.subplots()
        axes.plot(self.epochs, self.loss, label="training loss J (eq 76)")
        if "val_loss" in self.metrics:
            axes.plot(self.epochs, self.metrics["val_loss"], label="validation loss")
        axes.set_xlabel("epoch")
        axes.set_ylabel("J")
        axes.set_title(title or "loss")
        axes.legend()
        figure.tight_layout()
        write_atomically(path, lambda stream: figure.savefig(stream, format=suffix))


PLOT_FORMATS = ("png", "svg", "pdf")


def check_plot_path(path) -> str:
    """What ``History.plot(path)`` would refuse, asked before any work (a script that trains
    for an hour and then cannot write its plot has lost the hour): matplotlib missing
    (ImportError), a suffix that names no format (ValueError), a path that cannot be written
    (``files.WriteError``). Returns the format."""
    _matplotlib_figure()
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    if suffix not in PLOT_FORMATS:
        raise ValueError(f"History.plot: cannot tell the format of {path!r} from its suffix; "
                         f"use {', '.join('.' + name for name in PLOT_FORMATS)}")
    check_writable(path)
    return suffix


def check_outputs(plot=None, save=None):
    """``check_plot_path(plot)`` and ``files.check_writable(save)`` for those given: the
    examples call it before loading data or training."""
    if plot:
        check_plot_path(plot)
    if save:
        check_writable(save)


def _matplotlib_figure():
    try:
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("History.plot needs matplotlib, an optional extra: "
                          "pip install \"autograd_lite[plot]\"") from None
    return Figure


# --- progress ------------------------------------------------------------------------------------

class ProgressBar:
    """A one-line bar on a stream, redrawn in place with ``\\r``; no dependency.

    ``enabled="auto"`` draws only on a terminal (``stream.isatty()``) and only once the run
    has lasted ``delay`` seconds, so short runs and logs stay clean; ``True`` always draws
    (from the first update), ``False`` never.
    """

    def __init__(self, total, stream=None, enabled="auto", width=30, delay=1.0, interval=0.1):
        self.total = max(int(total), 1)
        self.stream = sys.stderr if stream is None else stream
        if enabled == "auto":
            isatty = getattr(self.stream, "isatty", None)
            self.enabled = bool(isatty and isatty())
            self.delay = delay
        else:
            self.enabled = bool(enabled)
            self.delay = 0.0
        self.width = width
        self.interval = interval
        self.started = time.monotonic()
        self.last_draw = None
        self.shown = False

    def update(self, done, text=""):
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.started < self.delay:
            return
        if self.last_draw is not None and now - self.last_draw < self.interval and done < self.total:
            return
        self.last_draw = now
        filled = int(self.width * min(done, self.total) / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {100 * done / self.total:5.1f}% {text}")
        self.stream.flush()
        self.shown = True

    def clear(self):
        """Erase the bar (before a normal line is printed, and at the end)."""
        if self.shown:
            self.stream.write("\r" + " " * (self.width + 60) + "\r")
            self.stream.flush()
            self.shown = False


# --- the loop ---------------------------------------------------------------------------------

def _as_array(value):
    """Plain data for slicing columns: a Tensor's array, or the array itself (labels keep
    their integer dtype)."""
    return np.asarray(value.data if isinstance(value, Tensor) else value)


def _check_samples(X, Y, label):
    if X.ndim != 2:
        raise ShapeError(f"fit: {label}X must be n[0] x m (samples as columns), got shape {X.shape}")
    if Y.shape[-1:] != (X.shape[1],):
        raise ShapeError(f"fit: {label}X has {X.shape[1]} samples (columns) but {label}Y has "
                         f"shape {Y.shape}; Y's last axis must be the same m")


def _metric_name(metric):
    return getattr(metric, "metric_name", None) or getattr(metric, "__name__", "metric")


def evaluate(model, loss_fn, X, Y, metric=None, batch_size=None):
    """The mean loss (and metric) of ``model`` on all columns of X, under ``no_grad``.

    Returns ``{"loss": J, name_of_metric: value}``. With ``batch_size`` the forward pass runs
    in chunks (the loss is weighted by chunk size, so the result equals one full pass).
    """
    X, Y = _as_array(X), _as_array(Y)
    _check_samples(X, Y, "")
    m = X.shape[1]
    total, outputs = 0.0, []
    with no_grad():
        for index in batches(m, batch_size):
            output = model(Tensor(columns(X, index)))
            total += loss_fn(output, columns(Y, index)).item() * len(index)
            outputs.append(output.data)
    result = {"loss": total / m}
    if metric is not None:
        result[_metric_name(metric)] = metric(np.concatenate(outputs, axis=-1), Y)
    return result


def fit(model, loss_fn, X, Y, optimizer, epochs, batch_size=None, rng=None, metric=None,
        validation=None, log_every=None, stream=None, progress="auto", verbose=True):
    """Train ``model`` on the columns of X: per mini-batch, eqs 33-34 forward, J (eq 76),
    backward (eqs 77-84 by the engine), and the optimizer's step (eqs 74-75).

    - ``loss_fn(output, Y_batch)`` returns J for a batch (e.g. ``softmax_cross_entropy``).
    - ``batch_size`` None: the whole set each step (batch gradient descent, as in the seed).
    - ``rng``: a ``numpy.random.Generator`` (or int seed) that shuffles the columns every epoch;
      None keeps the order (deterministic full-batch training).
    - ``metric(output, Y) -> float``, e.g. ``accuracy``: recorded per epoch from the batch outputs.
    - ``validation=(X_val, Y_val)``: evaluated under ``no_grad`` after every epoch, recorded as
      ``val_loss`` and ``val_<metric>``.
    - Progress goes to ``stream`` (default stderr): a line ``epoch  loss  metric`` every
      ``log_every`` epochs (default: about ten lines per run; ``verbose=False`` for none), and a
      ``ProgressBar`` per ``progress`` ("auto": long runs on a terminal only; True; False).

    Returns the ``History``. Stops with a FloatingPointError naming the epoch and batch if J
    becomes nan or inf (usually: the learning rate is too large).
    """
    X, Y = _as_array(X), _as_array(Y)
    _check_samples(X, Y, "")
    if validation is not None:
        X_val, Y_val = (_as_array(v) for v in validation)
        _check_samples(X_val, Y_val, "validation ")
    if not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"fit: epochs must be a whole number >= 0, got {epochs!r}")
    m = X.shape[1]
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"fit: batch_size must be a whole number >= 1 or None, got {batch_size!r}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    stream = sys.stderr if stream is None else stream
    log_every = log_every or max(1, epochs // 10)
    per_epoch = math.ceil(m / (batch_size or m))
    bar = ProgressBar(epochs * per_epoch, stream, enabled=progress)
    name = _metric_name(metric) if metric is not None else None
    history = History()
    started = time.monotonic()
    for epoch in range(1, epochs + 1):
        total, outputs, order = 0.0, [], []
        for batch, index in enumerate(batches(m, batch_size, rng), start=1):
            output = model(Tensor(columns(X, index)))
            J = loss_fn(output, columns(Y, index))
            value = J.item()
            if not math.isfinite(value):
                bar.clear()
                raise FloatingPointError(
                    f"fit: the loss became {value} at epoch {epoch}, batch {batch}; the learning "
                    f"rate ({getattr(optimizer, 'lr', '?')}) is probably too large")
            optimizer.zero_grad()
            J.backward()
            optimizer.step()
            total += value * len(index)
            if metric is not None:
                outputs.append(output.data)
                order.append(index)
            bar.update((epoch - 1) * per_epoch + batch, f"epoch {epoch}/{epochs} loss {value:.4f}")
        values = {}
        if metric is not None:
            values[name] = metric(np.concatenate(outputs, axis=-1), columns(Y, np.concatenate(order)))
        if validation is not None:
            scores = evaluate(model, loss_fn, X_val, Y_val, metric)
            values.update({f"val_{key}": value for key, value in scores.items()})
        history.record(epoch, total / m, values)
        if verbose and (epoch % log_every == 0 or epoch == epochs or epoch == 1):
            bar.clear()
            extras = "".join(f"  {key} {value:.4f}" for key, value in values.items())
            stream.write(f"epoch {epoch:>{len(str(epochs))}}/{epochs}  loss {total / m:.4f}{extras}\n")
            stream.flush()
    bar.clear()
    history.seconds = time.monotonic() - started
    return history


__all__ = ["fit", "evaluate", "History", "ProgressBar", "accuracy", "accuracy_of_probabilities",
           "batches"]

"""A small training loop: mini-batches of columns, progress, loss history, an optional plot.

``fit`` is the loop a learner would write (forward, J, zero_grad, backward, step) with the
bookkeeping done: it shuffles the m columns with a ``numpy.random.Generator``, records the mean
loss of every epoch (and a metric such as ``accuracy``, and the same on validation data,
evaluated under ``no_grad``), prints a line every few epochs, and draws a progress bar on stderr
when the run is long and stderr is a terminal. Nothing here needs a dependency; ``History.plot``
needs the optional ``plot`` extra (matplotlib).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..core.modes import no_grad
from ..errors import SaturationWarning, ShapeError
from ..io import check_writable, read_state, save_state, write_atomically
from ..core.tensor import Tensor


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
    """Column indices of the mini-batches of one epoch: shuffled by ``rng`` (a ``Shuffler`` or a
    ``numpy.random.Generator``) if given."""
    order = rng.permutation(m) if rng is not None else np.arange(m)
    size = m if batch_size is None else batch_size
    return [order[start:start + size] for start in range(0, m, size)]


class Shuffler:
    """The generator that shuffles the columns every epoch, with a state that can be saved.

    ``Shuffler(seed)`` wraps ``numpy.random.default_rng(seed)`` (or a Generator you pass).
    ``state_dict()`` / ``load_state_dict()`` and ``save(path)`` / ``load(path)`` keep the bit
    generator's exact state, so a mini-batch run stopped after k epochs and resumed from the
    saved model, optimizer and shuffler draws the same permutations, and takes the same steps,
    as one that never stopped, bit for bit. The file is an ``.npz`` holding the state as a
    JSON string of numbers (read with ``allow_pickle=False``; loading runs no code)."""

    def __init__(self, seed=None):
        self.generator = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def permutation(self, m):
        return self.generator.permutation(m)

    def state_dict(self) -> dict:
        """``{"format": 1, "bit_generator": "PCG64", "state": <JSON text>}``."""
        state = self.generator.bit_generator.state
        return {"format": 1, "bit_generator": state["bit_generator"],
                "state": json.dumps(state, default=_plain)}

    def load_state_dict(self, state: dict, source="Shuffler.load_state_dict"):
        """Set the generator to ``state`` (from ``state_dict``); unchanged on any error."""
        expected = {"format", "bit_generator", "state"}
        if not isinstance(state, dict) or set(state) != expected:
            keys = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{source}: a shuffler state has the keys {sorted(expected)}, got "
                             f"{keys}; the shuffler is unchanged")
        if state["format"] != 1:
            raise ValueError(f"{source}: the state has format {state['format']!r}; this version "
                             f"reads format 1; the shuffler is unchanged")
        ours = self.generator.bit_generator.state["bit_generator"]
        if state["bit_generator"] != ours:
            raise ValueError(f"{source}: the state is of a {state['bit_generator']!r} generator, "
                             f"this shuffler's is {ours!r}; the shuffler is unchanged")
        trial = type(self.generator.bit_generator)()
        try:
            values = json.loads(str(state["state"]))
            trial.state = values
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(f"{source}: the saved generator state is not valid ({error}); the "
                             f"shuffler is unchanged") from None
        self.generator = np.random.Generator(trial)
        return self

    def save(self, path):
        """Write ``state_dict()`` to ``path`` as an ``.npz``, atomically."""
        save_state(path, self.state_dict())

    def load(self, path):
        source = f"Shuffler.load {path!r}"
        state = read_state(path, source=source, expected="a shuffler state written by Shuffler.save",
                           unchanged="the shuffler is unchanged")
        return self.load_state_dict(state, source)


def _plain(value):
    """numpy values in a bit generator's state (MT19937's key array) as JSON-able ones."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot save {type(value).__name__} in a shuffler state")


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
    stopped_epoch: int = None   # the epoch early stopping ended the run at, else None
    best_epoch: int = None      # the epoch whose weights early stopping restored, else None

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


def _check_samples(X, Y, label, owner="fit"):
    if X.ndim != 2:
        raise ShapeError(f"{owner}: {label}X must be n[0] x m (samples as columns), got shape {X.shape}")
    if Y.shape[-1:] != (X.shape[1],):
        raise ShapeError(f"{owner}: {label}X has {X.shape[1]} samples (columns) but {label}Y has "
                         f"shape {Y.shape}; Y's last axis must be the same m")
    if X.shape[1] == 0:
        raise ValueError(f"{owner}: {label}X has no samples (shape {X.shape}): nothing to train on "
                         f"or to evaluate")
    for name, array in (("X", X), ("Y", Y)):
        if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
            bad = ~np.isfinite(array)
            columns_hit = np.unique(np.nonzero(bad)[-1])
            raise ValueError(
                f"{owner}: {label}{name} holds {int(np.isnan(array).sum())} nan and "
                f"{int(np.isinf(array).sum())} inf entries, in {columns_hit.size} of "
                f"{array.shape[-1]} samples (first: column {int(columns_hit[0])}); every loss and "
                f"gradient of those samples would be NaN. Drop or impute them first")


class EarlyStopping:
    """Stop ``fit`` when a validation metric has not improved for ``patience`` epochs (Keras's
    ``EarlyStopping``; PyTorch has no built-in).

    ``EarlyStopping(monitor="val_loss", patience=5, min_delta=0.0, mode="auto",
    restore_best_weights=True)``: ``monitor`` is a key fit records each epoch (``val_loss``,
    ``val_accuracy``, ``loss``, ...); ``mode`` "min", "max" or "auto" (min for names holding
    "loss"); an improvement must beat the best by more than ``min_delta``. With
    ``restore_best_weights`` the model ends with the parameters of its best epoch (the
    optimizer's state is not rewound). ``fit`` records ``history.stopped_epoch`` and
    ``history.best_epoch``."""

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto",
                 restore_best_weights=True):
        if not isinstance(patience, (int, np.integer)) or isinstance(patience, bool) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a whole number >= 0, got {patience!r}")
        if not isinstance(min_delta, (int, float)) or not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be a finite number >= 0, got {min_delta!r}")
        if mode == "auto":
            mode = "min" if "loss" in monitor else "max"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, int(patience), min_delta, mode
        self.restore_best_weights = restore_best_weights

    def start(self):
        self.best, self.best_epoch, self.best_weights, self.waited = None, None, None, 0

    def improved(self, value):
        if self.best is None:
            return math.isfinite(value)
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, epoch, values, parameters):
        """Record the epoch; True if training should stop."""
        if self.monitor not in values:
            raise ValueError(f"EarlyStopping: fit records {sorted(values) or 'no metric'} each "
                             f"epoch, not {self.monitor!r} (val_ metrics need validation=...)")
        value = float(values[self.monitor])
        if self.improved(value):
            self.best, self.best_epoch, self.waited = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = [parameter.data.copy() for parameter in parameters]
            return False
        self.waited += 1
        return self.waited > self.patience

    def restore(self, parameters):
        if self.restore_best_weights and self.best_weights is not None:
            for parameter, value in zip(parameters, self.best_weights):
                parameter.data = value.copy()


def _metric_name(metric):
    return getattr(metric, "metric_name", None) or getattr(metric, "__name__", "metric")


def evaluate(model, loss_fn, X, Y, metric=None, batch_size=None):
    """The mean loss (and metric) of ``model`` on all columns of X, under ``no_grad``.

    Returns ``{"loss": J, name_of_metric: value}``. With ``batch_size`` the forward pass runs
    in chunks (the loss is weighted by chunk size, so the result equals one full pass).

    Under ``no_grad`` the engine records no operation, so a loss such as
    ``binary_cross_entropy`` cannot see that the output is a sigmoid and compute J from its
    logits (it takes the xlogy form: +inf for a confidently wrong sample). A chunk whose loss is
    not finite is therefore computed again with recording on, so the loss here is the one
    ``fit`` trains on.
    """
    X, Y = _as_array(X), _as_array(Y)
    _check_samples(X, Y, "", "evaluate")
    with _mode(model, training=False):  # Dropout off, BatchNorm on its running statistics
        return _evaluate(model, loss_fn, X, Y, metric, batch_size)


class _mode:
    """``with _mode(model, training=False):`` puts a Module (and its children) in evaluation or
    training mode and restores its own mode after; anything else is left alone."""

    def __init__(self, model, training):
        self.model, self.training = model, training

    def __enter__(self):
        self.previous = getattr(self.model, "training", None)
        if self.previous is not None and hasattr(self.model, "train"):
            self.model.train(self.training)

    def __exit__(self, *exc_info):
        if self.previous is not None and hasattr(self.model, "train"):
            self.model.train(self.previous)
        return False


def _evaluate(model, loss_fn, X, Y, metric, batch_size):
    m = X.shape[1]
    total, outputs = 0.0, []
    for index in batches(m, batch_size):
        X_chunk, Y_chunk = columns(X, index), columns(Y, index)
        with no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", SaturationWarning)  # recomputed below if it matters
            output = model(Tensor(X_chunk))
            value = loss_fn(output, Y_chunk).item()
        if not math.isfinite(value):
            recorded = model(Tensor(X_chunk))
            value = loss_fn(recorded, Y_chunk).item()
        total += value * len(index)
        outputs.append(output.data)
    result = {"loss": total / m}
    if metric is not None:
        result[_metric_name(metric)] = metric(np.concatenate(outputs, axis=-1), Y)
    return result


def fit(model, loss_fn, X, Y, optimizer, epochs, batch_size=None, rng=None, metric=None,
        validation=None, log_every=None, stream=None, progress="auto", verbose=True,
        early_stopping=None, initial_epoch=0, scheduler=None):
    """Train ``model`` on the columns of X: per mini-batch, eqs 33-34 forward, J (eq 76),
    backward (eqs 77-84 by the engine), and the optimizer's step (eqs 74-75).

    - ``loss_fn(output, Y_batch)`` returns J for a batch (e.g. ``softmax_cross_entropy``).
    - ``batch_size`` None: the whole set each step (batch gradient descent, as in the seed).
    - ``rng``: a ``Shuffler`` (whose state can be saved, so a stopped run resumes bit for bit),
      a ``numpy.random.Generator`` or an int seed, that shuffles the columns every epoch; None
      keeps the order (deterministic full-batch training).
    - ``metric(output, Y) -> float``, e.g. ``accuracy``: recorded per epoch from the batch outputs.
    - ``validation=(X_val, Y_val)``: evaluated under ``no_grad`` after every epoch, recorded as
      ``val_loss`` and ``val_<metric>``.
    - ``early_stopping=EarlyStopping(...)``: stop when the monitored metric stops improving,
      and (by default) restore the best epoch's weights.
    - ``scheduler``: a learning-rate schedule (``optim.StepLR``, ...) stepped after each epoch.
    - ``initial_epoch``: the number of epochs already done (when resuming), so the history and
      the log count on from there.
    - Progress goes to ``stream`` (default stderr): a line ``epoch  loss  metric`` every
      ``log_every`` epochs (default: about ten lines per run; ``verbose=False`` for none), and a
      ``ProgressBar`` per ``progress`` ("auto": long runs on a terminal only; True; False).

    Returns the ``History``. X and Y must be finite (NaN in the data is refused up front). If J
    becomes NaN or Inf, or the optimizer refuses a step (``optim.NonFiniteGradientError``: a NaN
    or Inf gradient), ``fit`` stops with that error, its message prefixed by the epoch and
    batch; the model keeps the parameters of the last good step and ``error.history`` holds the
    epochs completed.
    """
    X, Y = _as_array(X), _as_array(Y)
    _check_samples(X, Y, "")
    if validation is not None:
        X_val, Y_val = (_as_array(v) for v in validation)
        _check_samples(X_val, Y_val, "validation ")
    if not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"fit: epochs must be a whole number >= 0, got {epochs!r}")
    if not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
        raise ValueError(f"fit: initial_epoch must be a whole number >= 0, got {initial_epoch!r}")
    m = X.shape[1]
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"fit: batch_size must be a whole number >= 1 or None, got {batch_size!r}")
    if rng is not None and not isinstance(rng, (Shuffler, np.random.Generator)):
        rng = np.random.default_rng(rng)
    if early_stopping is not None:
        if not isinstance(early_stopping, EarlyStopping):
            raise TypeError(f"fit: early_stopping must be a train.EarlyStopping, got "
                            f"{type(early_stopping).__name__}")
        early_stopping.start()
    parameters = list(model.parameters())
    stream = sys.stderr if stream is None else stream
    log_every = log_every or max(1, epochs // 10)
    per_epoch = math.ceil(m / (batch_size or m))
    bar = ProgressBar(epochs * per_epoch, stream, enabled=progress)
    name = _metric_name(metric) if metric is not None else None
    history = History()
    started = time.monotonic()
    last = initial_epoch + epochs
    for epoch in range(initial_epoch + 1, last + 1):
        if hasattr(model, "train") and getattr(model, "training", None) is False:
            model.train()  # fit trains; evaluate() puts it back after each validation
        total, outputs, order = 0.0, [], []
        for batch, index in enumerate(batches(m, batch_size, rng), start=1):
            output = model(Tensor(columns(X, index)))
            J = loss_fn(output, columns(Y, index))
            value = J.item()
            if not math.isfinite(value):
                bar.clear()
                raise _stopped(FloatingPointError(
                    f"the loss became {value}; X and Y are finite, so the model or the loss made "
                    f"it: a learning rate ({getattr(optimizer, 'lr', '?')}) too large, or a loss "
                    f"on probabilities that saturated (compute it from the logits)"),
                    epoch, batch, history, started)
            optimizer.zero_grad()
            J.backward()
            try:
                optimizer.step()
            except FloatingPointError as error:
                bar.clear()
                raise _stopped(error, epoch, batch, history, started) from None
            total += value * len(index)
            if metric is not None:
                outputs.append(output.data)
                order.append(index)
            bar.update((epoch - initial_epoch - 1) * per_epoch + batch,
                       f"epoch {epoch}/{last} loss {value:.4f}")
        values = {}
        if metric is not None:
            values[name] = metric(np.concatenate(outputs, axis=-1), columns(Y, np.concatenate(order)))
        if validation is not None:
            scores = evaluate(model, loss_fn, X_val, Y_val, metric)
            values.update({f"val_{key}": value for key, value in scores.items()})
        history.record(epoch, total / m, values)
        if scheduler is not None:
            scheduler.step()
        stop = early_stopping is not None and early_stopping.update(
            epoch, {"loss": total / m, **values}, parameters)
        if verbose and (epoch % log_every == 0 or epoch == last or epoch == initial_epoch + 1 or stop):
            bar.clear()
            extras = "".join(f"  {key} {value:.4f}" for key, value in values.items())
            stream.write(f"epoch {epoch:>{len(str(last))}}/{last}  loss {total / m:.4f}{extras}\n")
            stream.flush()
        if stop:
            history.stopped_epoch = epoch
            break
    if early_stopping is not None:
        history.best_epoch = early_stopping.best_epoch
        early_stopping.restore(parameters)
        if verbose and history.stopped_epoch is not None:
            stream.write(f"early stopping at epoch {history.stopped_epoch}: "
                         f"{early_stopping.monitor} has not improved for "
                         f"{early_stopping.patience + 1} epochs; best {early_stopping.best:.4f} at "
                         f"epoch {early_stopping.best_epoch}"
                         f"{' (its weights restored)' if early_stopping.best_weights else ''}\n")
    bar.clear()
    history.seconds = time.monotonic() - started
    return history


def _stopped(error, epoch, batch, history, started):
    """``error`` with the epoch and batch in front of its message, carrying the history."""
    history.seconds = time.monotonic() - started
    error.args = (f"fit stopped at epoch {epoch}, batch {batch}: {error} (the model keeps the "
                  f"parameters of the last good step; error.history holds the "
                  f"{len(history.epochs)} completed epochs)",) + tuple(error.args[1:])
    error.epoch, error.batch, error.history = epoch, batch, history
    return error

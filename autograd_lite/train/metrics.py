"""Scoring a model: ``accuracy`` (which checks whether it is given logits or probabilities) and
``evaluate``, the mean loss and metric over all columns under ``no_grad``."""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from .. import backend
from ..core.modes import enable_grad, no_grad
from ..core.tensor import Tensor
from ..errors import SaturationWarning, ShapeError
from .shuffler import as_array, batches, check_samples, columns, on_host

PROBABILITIES = ("sigmoid", "softmax")   # the ops whose outputs are probabilities
LOGITS = ("add", "matmul")   # an affine output layer's (W @ A + b, eq 33): logits


class Outputs(np.ndarray):
    """A model's outputs over the samples, as ``fit`` and ``evaluate`` give them to a metric: an
    array that also says which operation made them (``made_by``: "sigmoid", "add", ... or None)."""

    made_by = None

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # what a metric computes from the outputs is plain numbers, not Outputs
        array = np.asarray(array).view(np.ndarray)
        return array[()] if array.ndim == 0 else array

    @classmethod
    def of(cls, arrays, made_by):
        """The batches' outputs (arrays of any backend) joined on the host."""
        outputs = np.concatenate([on_host(array) for array in arrays], axis=-1).view(cls)
        outputs.made_by = made_by
        return outputs


def accuracy(output, Y, from_logits=None):
    """The fraction of the m samples (columns) classified correctly.

    Several output units: the prediction is the unit with the largest output (the same for
    logits and probabilities); ``Y`` is one-hot columns (n, m) or class indices (m,). One unit:
    the prediction is 1 where a logit exceeds 0 or a probability exceeds 0.5; ``Y`` holds 0/1,
    shape (1, m) or (m,). Which of the two the output is: ``from_logits`` if given; else the
    operation that made it (a sigmoid's or softmax's output holds probabilities, an affine
    layer's ``W @ A + b`` logits: a recorded Tensor tells it, and so do ``fit`` and
    ``evaluate``); else its values (any outside [0, 1]: logits). Outputs all in [0, 1] that nothing else tells apart are refused, naming the ways
    out (``accuracy_of_probabilities``, ``from_logits=True``): a guess would be silently wrong.
    """
    made_by = output.op if isinstance(output, Tensor) else getattr(output, "made_by", None)
    output, Y = on_host(output), on_host(Y)
    n, m = _checked_shapes(output, Y)
    if n == 1:
        from_logits = _holds_logits(from_logits, made_by, m,
                                    lambda: np.any((output < 0) | (output > 1)))
        predicted = output[0] > (0.0 if from_logits else 0.5)
        return float(np.mean(predicted == (Y.reshape(-1) > 0.5)))
    predicted = np.argmax(output, axis=0)
    truth = np.argmax(Y, axis=0) if Y.shape == output.shape else Y.astype(np.int64)
    return float(np.mean(predicted == truth))


def _checked_shapes(output, Y):
    """``(n, m)`` of an output n[N] x m and labels that fit it, or a ShapeError."""
    shape, labels = tuple(output.shape), tuple(Y.shape)
    if len(shape) != 2:
        raise ShapeError(f"accuracy: the output must be n[N] x m, got shape {shape}")
    n, m = shape
    if n == 1 and math.prod(labels) != m:
        raise ShapeError(f"accuracy: labels Y of shape {labels} do not match an output of shape {shape}")
    if n > 1 and labels not in (shape, (m,)):
        raise ShapeError(f"accuracy: labels Y must be one-hot {shape} or class indices "
                         f"({m},), got shape {labels}")
    return n, m


def _holds_logits(from_logits, made_by, m, any_outside_0_1):
    """Whether one output unit holds logits: ``from_logits`` if given, else the operation that
    made it, else its values (``any_outside_0_1()``); refused where nothing tells."""
    if from_logits is not None:
        return from_logits
    if made_by in PROBABILITIES:
        return False
    if made_by in LOGITS or any_outside_0_1():
        return True
    raise ValueError(
        f"accuracy: the {m} outputs all lie in [0, 1] and were made by "
        f"{made_by or 'an operation not recorded'}: probabilities (threshold 0.5) or "
        f"logits (threshold 0)? Use train.accuracy_of_probabilities for a sigmoid's "
        f"output, or accuracy(..., from_logits=True) for logits")


def _accuracy_summaries(output, Y):
    """What ``accuracy`` needs of one batch, as small arrays in the output's namespace (lazy on
    Dask): the batch's m and how many samples are right, for one unit both ways (threshold 0
    for logits, 0.5 for probabilities) and how many outputs lie outside [0, 1], since which
    way holds is decided over the whole epoch."""
    n, m = _checked_shapes(output, Y)
    xp, yp = backend.namespace(output), backend.namespace(Y)

    def count(mask):  # in the mask's namespace: Dask's where labels or outputs are Dask
        mp = backend.namespace(mask)
        return mp.sum(mp.astype(mask, mp.int64))
    if n == 1:
        truth = yp.reshape(Y, (-1,)) > 0.5
        return (m, count((output[0] > 0.0) == truth), count((output[0] > 0.5) == truth),
                count((output < 0.0) | (output > 1.0)))
    one_hot = tuple(Y.shape) == tuple(output.shape)
    truth = yp.argmax(Y, axis=0) if one_hot else yp.astype(Y, yp.int64)
    return m, count(xp.argmax(output, axis=0) == truth)


def _accuracy_of_summaries(batches, made_by, from_logits=None):
    """``accuracy`` over the batches from their summaries (``_accuracy_summaries``, on the
    host): the same number as ``accuracy`` of all the outputs at once."""
    m = sum(int(batch[0]) for batch in batches)
    if len(batches[0]) == 2:
        return float(sum(int(batch[1]) for batch in batches) / m)
    logits = _holds_logits(from_logits, made_by, m, lambda: any(batch[3] for batch in batches))
    return float(sum(int(batch[1] if logits else batch[2]) for batch in batches) / m)


accuracy.summaries, accuracy.of_summaries = _accuracy_summaries, _accuracy_of_summaries


def accuracy_of_probabilities(output, Y):
    """``accuracy`` for outputs that are probabilities (a sigmoid or softmax output layer)."""
    return accuracy(output, Y, from_logits=False)


accuracy_of_probabilities.metric_name = "accuracy"
accuracy_of_probabilities.summaries = _accuracy_summaries
accuracy_of_probabilities.of_summaries = functools.partial(_accuracy_of_summaries,
                                                           from_logits=False)


class EpochMetric:
    """A metric over the batches of an epoch (``fit``) or the chunks of a data set
    (``evaluate``), given one batch at a time.

    Eager backends keep each batch's outputs and labels and call the metric on all of them at
    the end. On Dask a batch's values exist only inside a compute, so what the metric needs of
    it (a metric's ``summaries(output, Y)``, such as accuracy's counts, combined at the end by
    its ``of_summaries``; for any other metric the outputs and labels themselves) is computed by
    the compute that computes the batch (``backward()``'s, in ``fit``): scoring adds no pass
    over the data. A batch that compute did not read is computed with the others at the end,
    in one compute."""

    def __init__(self, metric):
        self.metric = metric
        self.eager, self.lazy, self.host, self.keys = [], [], [], []

    def add(self, output, X_batch, Y_batch):
        """The batch ``X_batch`` (its data), its labels and the model's output (a Tensor)."""
        # a Dask X_batch is read by the loss's compute whatever the loss (the output need not
        # be: a fused sigmoid is computed from its logits); else Dask labels are
        key = next((a for a in (X_batch, Y_batch)
                    if backend.is_foreign_array(a) and backend.of(a).is_dask), None)
        if key is None:
            self.eager.append((output.data, Y_batch))
            return
        summaries = getattr(self.metric, "summaries", _outputs_and_labels)(output.data, Y_batch)
        slot = len(self.lazy)
        self.lazy.append(summaries)
        self.host.append(None)
        self.keys.append(key)  # held until computed: a dropped key's summaries are forgotten

        def keep(*values):
            self.host[slot], self.keys[slot] = values, None
        backend.check_when_computed(key, keep, *summaries)

    def value(self, made_by):
        """The metric over every batch given; ``made_by`` is the operation that made the
        outputs (``accuracy`` tells logits from probabilities by it)."""
        if not self.lazy:
            return self.metric(Outputs.of([output for output, _ in self.eager], made_by),
                               np.concatenate([on_host(Y) for _, Y in self.eager], axis=-1))
        missing = [slot for slot, values in enumerate(self.host) if values is None]
        computed = iter(backend.to_numpy_all([v for slot in missing for v in self.lazy[slot]]))
        for slot in missing:
            self.host[slot], self.keys[slot] = [next(computed) for _ in self.lazy[slot]], None
        if hasattr(self.metric, "of_summaries"):
            return self.metric.of_summaries(self.host, made_by)
        return self.metric(Outputs.of([output for output, _ in self.host], made_by),
                           np.concatenate([Y for _, Y in self.host], axis=-1))


def _outputs_and_labels(output, Y):
    return output, Y


def metric_name(metric):
    return getattr(metric, "metric_name", None) or getattr(metric, "__name__", "metric")


def evaluate(model, loss_fn, X, Y, metric=None, batch_size=None):
    """The mean loss (and metric) of ``model`` on all columns of X, in evaluation mode.

    Returns ``{"loss": J, name_of_metric: value}``. With ``batch_size`` the forward pass runs
    in chunks (the loss is weighted by chunk size, so the result equals one full pass).

    Under ``no_grad`` the engine records no operation, so a loss such as
    ``binary_cross_entropy`` cannot see that the output is a sigmoid and compute J from its
    logits (it takes the xlogy form: +inf for a confidently wrong sample). A chunk whose loss is
    not finite is therefore computed again with recording on, so the loss here is the one
    ``fit`` trains on. For the same reason, with a metric, one sample's forward pass is recorded
    to tell the metric which operation makes the outputs (a sigmoid's are probabilities).
    """
    X, Y = as_array(X), as_array(Y)
    check_samples(X, Y, "", "evaluate")
    with _mode(model, training=False):  # Dropout off, BatchNorm on its running statistics
        m = X.shape[1]
        scores, made_by, losses = (EpochMetric(metric) if metric is not None else None), None, []
        if metric is not None:
            with enable_grad():
                made_by = model(Tensor(columns(X, np.arange(1)))).op
        with no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", SaturationWarning)  # recomputed below if it matters
            for index in batches(m, batch_size):
                X_chunk, Y_chunk = columns(X, index), columns(Y, index)
                output = model(Tensor(X_chunk))
                J = loss_fn(output, Y_chunk)
                if scores is not None:
                    scores.add(output, X_chunk, Y_chunk)
                losses.append((index, J.data if backend.of(J.data).is_dask else J.item()))
            losses = _computed_together(losses)
        total = 0.0
        for index, value in losses:
            if not math.isfinite(value):
                value = loss_fn(model(Tensor(columns(X, index))), columns(Y, index)).item()
            total += value * len(index)
    result = {"loss": total / m}
    if scores is not None:
        result[metric_name(metric)] = scores.value(made_by)
    return result


def _computed_together(losses):
    """``(index, J)`` pairs with every Dask J (a lazy 0-d array) computed in ONE compute, which
    also runs the checks and brings the metric's summaries of every chunk (each is in its
    graph); the others are numbers already."""
    lazy = [J for _, J in losses if not isinstance(J, float)]
    if not lazy:
        return losses
    xp = backend.namespace(lazy[0])
    values = iter(backend.to_numpy(xp.concat([xp.reshape(J, (-1,)) for J in lazy])).tolist())
    return [(index, J if isinstance(J, float) else next(values)) for index, J in losses]


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

"""Scoring a model: ``accuracy`` (which checks whether it is given logits or probabilities) and
``evaluate``, the mean loss and metric over all columns under ``no_grad``."""
from __future__ import annotations

import math
import warnings

import numpy as np

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
    if output.ndim != 2:
        raise ShapeError(f"accuracy: the output must be n[N] x m, got shape {output.shape}")
    n, m = output.shape
    if n == 1:
        if Y.size != m:
            raise ShapeError(f"accuracy: labels Y of shape {Y.shape} do not match an output of shape {output.shape}")
        if from_logits is None:
            if made_by in PROBABILITIES:
                from_logits = False
            elif made_by in LOGITS or np.any((output < 0) | (output > 1)):
                from_logits = True
            else:
                raise ValueError(
                    f"accuracy: the {m} outputs all lie in [0, 1] and were made by "
                    f"{made_by or 'an operation not recorded'}: probabilities (threshold 0.5) or "
                    f"logits (threshold 0)? Use train.accuracy_of_probabilities for a sigmoid's "
                    f"output, or accuracy(..., from_logits=True) for logits")
        predicted = output[0] > (0.0 if from_logits else 0.5)
        return float(np.mean(predicted == (Y.reshape(-1) > 0.5)))
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
        total, outputs, made_by = 0.0, [], None
        if metric is not None:
            with enable_grad():
                made_by = model(Tensor(columns(X, np.arange(1)))).op
        for index in batches(m, batch_size):
            X_chunk, Y_chunk = columns(X, index), columns(Y, index)
            with no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", SaturationWarning)  # recomputed below if it matters
                output = model(Tensor(X_chunk))
                value = loss_fn(output, Y_chunk).item()
            if not math.isfinite(value):
                value = loss_fn(model(Tensor(X_chunk)), Y_chunk).item()
            total += value * len(index)
            outputs.append(output.data)
    result = {"loss": total / m}
    if metric is not None:
        result[metric_name(metric)] = metric(Outputs.of(outputs, made_by), on_host(Y))
    return result


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

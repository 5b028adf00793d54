"""Losses, composed from Tensor operations (no backward of their own), plus the fused one.

Convention for every loss here, eq 76: J = (1/m) * sum over the m samples (columns) of L, where
L is summed over the output units. For the seed's single output unit this is the mean.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import ops
from .errors import SaturationWarning, ShapeError
from .tensor import Tensor, _record, as_tensor


def binary_cross_entropy(A, Y):
    """Log-loss of probabilities A against labels Y: eq 1, averaged over the m columns (eq 76).

    Composed from ``log``, so its gradient is exactly the chain rule of eqs 77-78. It does not
    clamp A (a clamp would change the gradient): a probability of exactly 0 or 1 makes the loss
    inf or nan, and a ``SaturationWarning`` says where and points to
    ``binary_cross_entropy_with_logits``, which is exact for any logits Z.
    """
    A, Y = as_tensor(A), as_tensor(Y)
    _check_same_shape("binary_cross_entropy", "probabilities A", A, "labels Y", Y)
    probabilities = A.data
    if np.any(probabilities < 0) or np.any(probabilities > 1):
        raise ValueError(
            f"binary_cross_entropy: probabilities A must lie in [0, 1], got values from "
            f"{probabilities.min():.6g} to {probabilities.max():.6g}; if these are logits Z, use "
            f"binary_cross_entropy_with_logits(Z, Y)")
    saturated = (probabilities == 0) | (probabilities == 1)
    if saturated.any():
        first = tuple(int(i) for i in np.argwhere(saturated)[0])
        warnings.warn(
            f"binary_cross_entropy: {int(saturated.sum())} of {probabilities.size} probabilities "
            f"in {A.name or 'A'} are exactly 0 or 1 (first at index {first}): the sigmoid "
            f"saturated, so log-loss is inf or nan there and so is its gradient. Compute the loss "
            f"from the logits Z with binary_cross_entropy_with_logits(Z, Y), which is exact for "
            f"any Z.", SaturationWarning, stacklevel=2)
    m = A.shape[-1]
    return -(Y * A.log() + (1 - Y) * (1 - A).log()).sum() / m


def binary_cross_entropy_with_logits(Z, Y):
    """Log-loss of sigmoid(Z) against Y in one stable primitive: eqs 1, 7 and 76 fused.

    Its gradient is exactly dJ/dZ = (sigmoid(Z) - Y) / m: eq 78's dZ[N] = A[N] - Y with eq 76's
    1/m, for any Z (no log of a rounded 0 or 1).
    """
    Z, Y = as_tensor(Z), as_tensor(Y, Z)
    return _record(ops.BCE_WITH_LOGITS, (Z, Y), {})


def _check_same_shape(op_name, name_a, a, name_b, b):
    if a.shape != b.shape:
        raise ShapeError(f"{op_name}: {name_a} has shape {a.shape} but {name_b} has shape "
                         f"{b.shape}; they must be equal")


def softmax_cross_entropy(Z, Y):
    """Cross-entropy of softmax(Z) against the classes Y, from the logits Z (n[N] x m).

    Per sample ``L = -sum_k y_k log softmax(z)_k`` (the multi-class form of eq 1, summed over
    the output units), and ``J = (1/m) sum_i L(i)`` (eq 76). ``Y`` is either one column per
    sample (n[N] x m: one-hot, or any probability vectors) or the class indices, an integer
    array of shape (m,). Composed from ``log_softmax`` (stable for any Z) and, for indices,
    differentiable integer indexing, so dJ/dZ = (softmax(Z) - Y) / m comes from the engine:
    the softmax counterpart of eq 78's dZ[N] = A[N] - Y, with eq 76's 1/m.
    """
    Z = as_tensor(Z)
    if Z.ndim != 2:
        raise ShapeError(f"softmax_cross_entropy: logits Z must be n[N] x m (classes x samples), "
                         f"got shape {Z.shape}")
    n, m = Z.shape
    log_probabilities = Z.log_softmax(axis=0)
    if isinstance(Y, Tensor) or np.ndim(Y) == 2:
        Y = as_tensor(Y, Z)
        _check_same_shape("softmax_cross_entropy", "logits Z", Z, "one-hot labels Y", Y)
        return -(Y * log_probabilities).sum() / m
    classes = class_indices("softmax_cross_entropy", Y, n, m)
    return -log_probabilities[classes, np.arange(m)].sum() / m


def cross_entropy(A, Y):
    """Cross-entropy of probabilities A (a softmax output, n[N] x m) against the classes Y.

    ``L = -sum_k y_k log a_k`` per sample, ``J = (1/m) sum_i L(i)`` (eqs 1 and 76, the
    reference derivation's "cross-entropy"). ``Y`` is one-hot columns (n[N] x m) or class
    indices of shape (m,). Composed from ``log``: a probability of exactly 0 for the true class
    gives inf; ``softmax_cross_entropy(Z, Y)`` on the logits never does.
    """
    A = as_tensor(A)
    if A.ndim != 2:
        raise ShapeError(f"cross_entropy: probabilities A must be n[N] x m, got shape {A.shape}")
    n, m = A.shape
    if np.any(A.data < 0) or np.any(A.data > 1):
        raise ValueError(f"cross_entropy: probabilities A must lie in [0, 1], got values from "
                         f"{A.data.min():.6g} to {A.data.max():.6g}; if these are logits Z, use "
                         f"softmax_cross_entropy(Z, Y)")
    if isinstance(Y, Tensor) or np.ndim(Y) == 2:
        Y = as_tensor(Y, A)
        _check_same_shape("cross_entropy", "probabilities A", A, "one-hot labels Y", Y)
        return -(Y * A.log()).sum() / m
    classes = class_indices("cross_entropy", Y, n, m)
    return -A[classes, np.arange(m)].log().sum() / m


def mean_squared_error(A, Y):
    """Squared error for regression: ``L = sum_k (a_k - y_k)^2`` over the output units, and
    ``J = (1/m) sum_i L(i)`` over the m columns (eq 76).

    No 1/2 in front, the same convention as the reference derivation's "mse", so
    dJ/dA[N] = 2 (A[N] - Y) / m (eq 77). The output layer of a regression network has no
    activation (the note after eq 38). A and Y must have the same shape: broadcasting an (m,)
    target against a (1, m) output would silently compare every sample with every other.
    """
    A, Y = as_tensor(A), as_tensor(Y)
    _check_same_shape("mean_squared_error", "predictions A", A, "targets Y", Y)
    if A.ndim == 0:
        raise ShapeError("mean_squared_error: A is a scalar; pass an (n, m) or (m,) array")
    m = A.shape[-1]
    return ((A - Y) ** 2).sum() / m


def class_indices(op_name, Y, n_classes, m):
    """``Y`` as an integer array of m class indices in [0, n_classes), or a clear error."""
    labels = np.asarray(Y)
    if labels.shape != (m,):
        raise ShapeError(f"{op_name}: class labels Y must have shape ({m},) (one index per "
                         f"sample) or ({n_classes}, {m}) (one-hot columns), got shape {labels.shape}")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError(f"{op_name}: class labels Y must be whole numbers, got {labels[:5]!r}...")
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "iu":
        raise TypeError(f"{op_name}: class labels Y must be integers, got dtype {labels.dtype}")
    if m and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{op_name}: class labels must lie in [0, {n_classes}) for {n_classes} "
                         f"classes, got values from {labels.min()} to {labels.max()}")
    return labels

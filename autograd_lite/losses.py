"""Losses, composed from Tensor operations (no backward of their own), plus the fused one.

Convention for every loss here, eq 76: J = (1/m) * sum over the m samples (columns) of L, where
L is summed over the output units. For the seed's single output unit this is the mean.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import ops
from .errors import SaturationWarning, ShapeError
from .tensor import _record, as_tensor


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

"""Dropout: inverted dropout while training, the identity in evaluation."""
from __future__ import annotations

import numbers

import numpy as np

from ..tensor import Tensor, as_tensor
from . import init as initialisers
from .module import Module


class Dropout(Module):
    """``Dropout(p=0.5, rng=None)``: while training, each element is zeroed with probability p
    and the survivors are scaled by 1 / (1 - p), so the expected output equals the input
    ("inverted" dropout, as in PyTorch); in evaluation (``module.eval()``) it is the identity.

    The mask is drawn from ``rng`` (a ``numpy.random.Generator`` or int seed, so runs repeat)
    and enters the graph as a constant Tensor: ``Y = X * mask``, whose gradient is
    ``dX = dY * mask`` (the engine's mul rule)."""

    def __init__(self, p=0.5, rng=None):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = initialisers._generator(rng)

    def forward(self, X):
        X = as_tensor(X)
        if not self.training or self.p == 0:
            return X
        if self.p == 1:
            mask = np.zeros(X.shape)
        else:
            mask = (self.rng.random(X.shape) >= self.p) / (1.0 - self.p)
        return X * Tensor(mask, dtype=X.dtype)  # a constant of X's dtype (float32 stays float32)

    def extra_repr(self):
        return f"p={self.p:g}"


__all__ = ["Dropout"]

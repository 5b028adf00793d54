"""Functions for writing ``forward`` by hand: layers, activations and losses on Tensors.

``import autograd_lite.nn.functional as F``. The losses live in ``autograd_lite.losses``; all
follow eq 76, ``J = (1/m) * sum over the m columns of L``, with L summed over output units.
"""
from __future__ import annotations

from ..losses import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                      mean_squared_error, softmax_cross_entropy)
from ..core.tensor import as_tensor
from .conv import avg_pool2d, conv2d, max_pool2d


def linear(A_prev, W, b):
    """``Z = W A_prev + b`` (eq 33); b (n_out, 1) is broadcast over the m columns (eqs 30-32)."""
    return as_tensor(W) @ A_prev + b


def sigmoid(Z):
    """``s(Z)``, eq 7."""
    return as_tensor(Z).sigmoid()


def tanh(Z):
    return as_tensor(Z).tanh()


def relu(Z):
    return as_tensor(Z).relu()


def identity(Z):
    """No activation (regression output, note after eq 38)."""
    return as_tensor(Z)


def softmax(Z, axis=0):
    """Each column of Z (one sample) as a probability vector."""
    return as_tensor(Z).softmax(axis=axis)


def log_softmax(Z, axis=0):
    return as_tensor(Z).log_softmax(axis=axis)


def leaky_relu(Z, negative_slope=0.01):
    return as_tensor(Z).leaky_relu(negative_slope)


def elu(Z, alpha=1.0):
    return as_tensor(Z).elu(alpha)


def gelu(Z, approximate="none"):
    """``z Φ(z)``: exact (erf form) by default, ``approximate="tanh"`` for the approximation."""
    return as_tensor(Z).gelu(approximate)


def softplus(Z):
    """``log(1 + e^z)``, exact for any z."""
    return as_tensor(Z).softplus()


def dropout(X, p=0.5, training=True, rng=None):
    """Inverted dropout (see ``nn.Dropout``): identity unless ``training``."""
    from .regularization import Dropout
    module = Dropout(p, rng)
    return module(X) if training else module.eval()(X)


__all__ = ["linear", "sigmoid", "tanh", "relu", "identity", "softmax", "log_softmax",
           "leaky_relu", "elu", "gelu", "softplus", "dropout", "conv2d", "max_pool2d", "avg_pool2d",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "softmax_cross_entropy",
           "cross_entropy", "mean_squared_error"]

"""RMSprop (Hinton's lecture 6e), with PyTorch's ``RMSprop`` semantics and defaults."""
from __future__ import annotations

from .. import backend, io
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """Each step divides the gradient by ``d = sqrt(s) + eps``, s the running mean of its square
    (from zero; ``centered``: ``sqrt(s - a**2)``, a the running mean of the gradient), then
    moves by ``lr`` times it (with momentum mu: by ``lr b``, ``b = mu b + g / d``)."""

    HYPERPARAMETERS = {"lr": (0.01, io.learning_rate), "alpha": (0.99, io.closed_fraction),
                       "eps": (1e-8, io.positive), "weight_decay": (0.0, io.non_negative),
                       "momentum": (0.0, io.fraction), "centered": (False, io.flag)}
    STATE = {"square_avg": "squares", "grad_avg": "array", "momentum_buffer": "array"}

    def update(self, value, grad, state):
        alpha = self.alpha
        if self.weight_decay:
            grad = grad + self.weight_decay * value
        square_avg = state["square_avg"] = alpha * state.get("square_avg", 0.0) + (1 - alpha) * grad * grad
        if self.centered:
            grad_avg = state["grad_avg"] = alpha * state.get("grad_avg", 0.0) + (1 - alpha) * grad
            denominator = backend.namespace(grad).sqrt(square_avg - grad_avg * grad_avg) + self.eps
        else:
            denominator = backend.namespace(grad).sqrt(square_avg) + self.eps
        if not self.momentum:
            return value - self.lr * grad / denominator
        buffer = state.get("momentum_buffer")
        buffer = grad / denominator if buffer is None else self.momentum * buffer + grad / denominator
        state["momentum_buffer"] = buffer
        return value - self.lr * buffer

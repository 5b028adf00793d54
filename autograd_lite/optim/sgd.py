"""Gradient descent, eqs 74-75, with momentum and weight decay (PyTorch's ``SGD``)."""
from __future__ import annotations

from .. import backend, io
from .optimizer import Optimizer


class SGD(Optimizer):
    """``W[l] = W[l] - alpha dW[l]``, ``b[l] = b[l] - alpha db[l]`` (eqs 74-75). With momentum
    mu each parameter keeps a velocity ``v = mu v + dW`` (dW itself at first) and steps by
    ``alpha v``, as PyTorch does (the course form ``v = beta v + (1 - beta) dW`` is this with
    alpha scaled by 1 - beta); ``weight_decay`` adds the gradient of ``(weight_decay/2) ||W||^2``."""

    HYPERPARAMETERS = {"lr": (io.REQUIRED, io.learning_rate), "momentum": (0.0, io.fraction),
                       "weight_decay": (0.0, io.non_negative)}
    STATE = {"velocity": "array"}  # kept when momentum is 0, for when it returns

    def update(self, value, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * value
        if self.momentum:
            previous = state.get("velocity")
            # a copy: the first velocity must not be the .grad array the user may still edit
            grad = backend.copy_of(grad) if previous is None else self.momentum * previous + grad
            state["velocity"] = grad
        return value - self.lr * grad

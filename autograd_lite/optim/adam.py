"""Adam and AdamW: per-parameter steps from running moments of the gradient."""
from __future__ import annotations

from .. import backend, io
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), PyTorch's ``Adam``: running means m of the gradient and v of
    its square (from zero), bias-corrected at a parameter's step t, give the step
    ``alpha m_hat / (sqrt(v_hat) + eps)``. ``weight_decay`` is L2 regularisation added to the
    gradient; ``AdamW`` decouples it."""

    HYPERPARAMETERS = {"lr": (0.001, io.learning_rate), "beta1": (0.9, io.fraction),
                       "beta2": (0.999, io.fraction), "eps": (1e-8, io.positive),
                       "weight_decay": (0.0, io.non_negative)}
    GROUPS = {"betas": ("beta1", "beta2")}
    STATE = {"t": "count", "m": "array", "v": "squares"}

    def update(self, value, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * value
        return self.adam_step(value, grad, state)

    def adam_step(self, value, grad, state):
        t = state.get("t", 0) + 1
        m = self.beta1 * state.get("m", 0.0) + (1 - self.beta1) * grad
        v = self.beta2 * state.get("v", 0.0) + (1 - self.beta2) * grad * grad
        state.update(t=t, m=m, v=v)
        m_hat = m / (1 - self.beta1 ** t)
        v_hat = v / (1 - self.beta2 ** t)
        return value - self.lr * m_hat / (backend.namespace(v_hat).sqrt(v_hat) + self.eps)

    def checked_state(self, state, who):
        t, missing = state.get("t", 0), [key for key in ("m", "v") if key not in state]
        if t == 0 and len(missing) < 2:  # t = 0 is "no step yet": moments would be ignored
            raise ValueError(f"{who} has t = 0 (no step yet) but saved moments")
        if t and missing:
            raise ValueError(f"{who} has t = {t} but no saved {' or '.join(missing)}")
        return state if t else {}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), PyTorch's ``AdamW``
    (``weight_decay=0.01``): ``W = W * (1 - alpha * weight_decay)``, then Adam's step from dW
    alone (the decay never enters the moments). A file saved by one is refused by the other."""

    HYPERPARAMETERS = {**Adam.HYPERPARAMETERS, "weight_decay": (0.01, io.non_negative)}

    def update(self, value, grad, state):
        if self.weight_decay:
            value = value * (1 - self.lr * self.weight_decay)
        return self.adam_step(value, grad, state)

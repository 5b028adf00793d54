"""Optimizers: the update step of eqs 74-75, with momentum, and Adam.

``optimizer.zero_grad()``, ``J.backward()``, ``optimizer.step()``. An optimizer only reads the
gradients the engine left in ``.grad`` (dW[l], db[l] of eqs 79-80, 83-84) and moves each
parameter; it differentiates nothing. ``optimizer.lr`` can be changed between steps (a
learning-rate schedule is a loop that sets it).

Updates replace ``parameter.data`` with a new array rather than writing into the old one, so an
array taken earlier (``before = W.numpy()``) stays a record of the old value. A graph kept with
``retain_graph=True`` reads its parameters' current values at backward time: after a step,
run the forward pass again.
"""
from __future__ import annotations

import math

import numpy as np

from .tensor import Tensor


class Optimizer:
    """Holds the parameters (each once) and the learning rate; subclasses define ``update``."""

    def __init__(self, params, lr):
        if hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: pass a list of parameters "
                            f"(model.parameters()), not a single Tensor")
        unique, seen = [], set()
        for index, parameter in enumerate(params):
            if not isinstance(parameter, Tensor) or not parameter.requires_grad:
                raise TypeError(f"{type(self).__name__}: parameter {index} is "
                                f"{'a Tensor without requires_grad' if isinstance(parameter, Tensor) else type(parameter).__name__}; "
                                f"an optimizer needs Tensors with requires_grad=True (nn.Parameter)")
            if not parameter.is_leaf:
                raise TypeError(f"{type(self).__name__}: parameter {index} "
                                f"({parameter.name or 'unnamed'}) was computed by {parameter.op}; "
                                f"only leaves (parameters you created) can be updated")
            if id(parameter) not in seen:  # shared weights are updated once
                seen.add(id(parameter))
                unique.append(parameter)
        if not unique:
            raise ValueError(f"{type(self).__name__}: got an empty list of parameters")
        self.params = unique
        self.lr = lr
        self.steps = 0

    @property
    def lr(self) -> float:
        """The learning rate alpha of eqs 74-75; may be changed between steps."""
        return self._lr

    @lr.setter
    def lr(self, value):
        if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool) \
                or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{type(self).__name__}: the learning rate must be a finite number "
                             f"> 0, got {value!r}")
        self._lr = float(value)

    def zero_grad(self):
        """Reset every parameter's ``.grad`` (gradients add up across backward calls)."""
        for parameter in self.params:
            parameter.grad = None

    def step(self):
        """Move every parameter that has a gradient; parameters with ``.grad`` None are left
        alone (they did not take part in the last loss)."""
        self.steps += 1
        for index, parameter in enumerate(self.params):
            if parameter.grad is None:
                continue
            if parameter.grad.shape != parameter.shape:
                raise ValueError(f"{type(self).__name__}.step: {parameter.name or f'parameter {index}'} "
                                 f"has shape {parameter.shape} but its .grad has shape "
                                 f"{parameter.grad.shape}")
            parameter.data = self.update(index, parameter.data, parameter.grad)

    def update(self, index, value, grad):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({self.describe()}, {len(self.params)} parameters)"


def _fraction(owner, label, value, upper_inclusive=False):
    ok = 0 <= value <= 1 if upper_inclusive else 0 <= value < 1
    if not ok:
        raise ValueError(f"{owner}: {label} must lie in [0, 1{']' if upper_inclusive else ')'}, got {value!r}")
    return float(value)


class SGD(Optimizer):
    """Gradient descent, eqs 74-75: ``W[l] = W[l] - alpha dW[l]``, ``b[l] = b[l] - alpha db[l]``.

    ``SGD(params, lr, momentum=0.0, weight_decay=0.0)``. With ``momentum`` mu > 0 each
    parameter keeps a velocity v (zero at first) and the step is the one PyTorch uses::

        g = dW + weight_decay * W
        v = mu * v + g
        W = W - alpha * v

    (The course form ``v = beta v + (1 - beta) dW`` is the same update with alpha scaled by
    1 - beta.) ``weight_decay`` adds the gradient of ``(weight_decay / 2) * ||W||^2``.
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum = _fraction("SGD", "momentum", momentum)
        if not weight_decay >= 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay!r}")
        self.weight_decay = float(weight_decay)
        self.velocity = [None] * len(self.params)

    def update(self, index, value, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * value
        if self.momentum:
            previous = self.velocity[index]
            grad = grad if previous is None else self.momentum * previous + grad
            self.velocity[index] = grad
        return value - self.lr * grad

    def describe(self):
        return f"lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay}"


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): per-parameter steps from running moments of the gradient.

    ``Adam(params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)``. At step t::

        g = dW + weight_decay * W
        m = beta1 * m + (1 - beta1) * g          (m, v start at zero)
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t),  v_hat = v / (1 - beta2**t)
        W = W - alpha * m_hat / (sqrt(v_hat) + eps)

    t counts the steps in which this parameter had a gradient.
    """

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        beta1, beta2 = betas
        self.betas = (_fraction("Adam", "beta1", beta1), _fraction("Adam", "beta2", beta2))
        if not eps > 0:
            raise ValueError(f"Adam: eps must be > 0, got {eps!r}")
        if not weight_decay >= 0:
            raise ValueError(f"Adam: weight_decay must be >= 0, got {weight_decay!r}")
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.moments = [None] * len(self.params)

    def update(self, index, value, grad):
        beta1, beta2 = self.betas
        if self.weight_decay:
            grad = grad + self.weight_decay * value
        if self.moments[index] is None:
            self.moments[index] = (0, np.zeros_like(value), np.zeros_like(value))
        t, m, v = self.moments[index]
        t += 1
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        self.moments[index] = (t, m, v)
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        return value - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def describe(self):
        return f"lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay}"


__all__ = ["Optimizer", "SGD", "Adam"]

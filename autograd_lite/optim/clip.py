"""Gradient clipping by the total norm, PyTorch's ``torch.nn.utils.clip_grad_norm_``."""
from __future__ import annotations

import math

import numpy as np

from .. import backend, io
from ..core.tensor import Tensor
from .optimizer import NonFiniteGradientError


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=True):
    """Scale the gradients so that their total norm is at most ``max_norm``; returns the total
    norm before clipping: the ``norm_type``-norm (2, any p > 0, ``math.inf``) of all gradients
    as one vector, each parameter counted once however often listed (``.grad`` None: skipped).
    Above ``max_norm`` every ``.grad`` becomes a new array times ``max_norm / (total + 1e-6)``
    (PyTorch's factor). A NaN or Inf norm is a ``NonFiniteGradientError`` naming the parameters
    at fault, nothing changed; ``error_if_nonfinite=False`` returns it instead."""
    if hasattr(parameters, "parameters") and callable(parameters.parameters):
        parameters = parameters.parameters()
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list({id(p): p for p in parameters if p.grad is not None}.values())
    io.non_negative(max_norm, "clip_grad_norm_: max_norm")
    if norm_type != math.inf:
        io.positive(norm_type, "clip_grad_norm_: norm_type (a number > 0 or math.inf)")
    grads = [parameter.grad for parameter in parameters]
    with np.errstate(over="ignore", invalid="ignore"):  # each norm in its gradient's namespace
        norms = [backend.norm(grad, norm_type) for grad in grads if math.prod(grad.shape)]
        total = float(np.linalg.norm(norms, ord=norm_type)) if norms else 0.0  # nan, inf kept
    if not math.isfinite(total):
        if not error_if_nonfinite:
            return total
        bad = ["{} of shape {} ({} nan, {} inf)".format(parameter.name or f"parameter {index}",
                                                       tuple(parameter.shape), *backend.nonfinite_counts(grad))
               for index, (parameter, grad) in enumerate(zip(parameters, grads))
               if not backend.all_finite(grad)]
        raise NonFiniteGradientError(
            f"clip_grad_norm_: the total {norm_type}-norm of the gradients is {total}"
            + (f"; non-finite entries in {', '.join(bad)}" if bad else " (an overflow)")
            + "; no gradient was changed (error_if_nonfinite=False returns the norm instead)")
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1:
        for parameter, grad in zip(parameters, grads):
            parameter.grad = grad * coefficient
    return total


clip_grad_norm = clip_grad_norm_

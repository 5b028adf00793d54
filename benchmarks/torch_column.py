"""The optional PyTorch column: the same step in PyTorch (CPU, float64), if torch is importable.

PyTorch is never a dependency of autograd_lite; without it this column is simply left out.
"""
from __future__ import annotations

from .workloads import ALPHA

try:  # NOTE: optional on purpose; the benchmark runs without it
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None


def available() -> bool:
    return torch is not None


def torch_problem(X, Y, W, b):
    """X, Y as constant tensors, copies of W[l], b[l] as leaves that require a gradient."""
    as_t = lambda a, grad=False: torch.tensor(a, dtype=torch.float64, requires_grad=grad)  # noqa: E731
    return (as_t(X), as_t(Y), [as_t(W_l, True) for W_l in W], [as_t(b_l, True) for b_l in b])


def torch_loss(W, b, X, Y):
    """Eqs 33-34 and the fused log-loss; Y has one row in every workload, so the mean over all
    elements is eq 76's (1/m) sum."""
    A = X
    last = len(W) - 1
    for l, (W_l, b_l) in enumerate(zip(W, b)):
        Z = W_l @ A + b_l
        if l < last:
            A = torch.sigmoid(Z)
    return torch.nn.functional.binary_cross_entropy_with_logits(Z, Y)


def torch_step(W, b, X, Y, alpha=ALPHA):
    J = torch_loss(W, b, X, Y)
    J.backward()
    with torch.no_grad():
        for p in W + b:
            p -= alpha * p.grad
            p.grad = None
    return J

"""Second order for the issue-11 ops: H v by reverse over reverse (``ag.hvp``) against central
differences of the first-order gradient along v (as test_higher_order does for the seed's ops),
so every vjp written with Tensor-shared operations is shown to be differentiable again."""
from __future__ import annotations

import numpy as np

import autograd_lite as ag
from gradcheck_util import assert_close

FD_EPS = 1e-5


def first_order_gradient(f, x):
    leaf = ag.Tensor(x, requires_grad=True)
    f(leaf).backward()
    return leaf.grad


def check_hvp(f, x, v, rtol=1e-5, atol=1e-6):
    """``ag.hvp(f, x, v)`` against ``(grad f(x + eps v) - grad f(x - eps v)) / (2 eps)``."""
    x, v = np.asarray(x, dtype=np.float64), np.asarray(v, dtype=np.float64)
    hv = ag.hvp(f, ag.Tensor(x), v)
    assert isinstance(hv, ag.Tensor) and hv.shape == x.shape
    expected = (first_order_gradient(f, x + FD_EPS * v)
                - first_order_gradient(f, x - FD_EPS * v)) / (2 * FD_EPS)
    assert_close(hv.data, expected, "H v", rtol, atol)

"""The README's ten lines, unchanged, on every backend: the seed network's forward pass (eqs
26-29), its loss (eqs 1, 76) and J.backward() (eqs 77-84) give numpy's J and gradients to 1e-12
relative, and every gradient stays in the backend its parameter lives in."""
import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import backend
from array_backends import BACKENDS


def readme_step(make):
    """The README's ten lines, with every array made by ``make`` (a backend's asarray)."""
    rng = np.random.default_rng(0)
    X = ag.Tensor(make(rng.standard_normal((3, 5))))
    Y = ag.Tensor(make((rng.random((1, 5)) > 0.5) * 1.0))
    W1 = ag.Tensor(make(rng.standard_normal((4, 3)) * 0.01), requires_grad=True, name="W[1]")
    b1 = ag.Tensor(make(np.zeros((4, 1))), requires_grad=True, name="b[1]")
    W2 = ag.Tensor(make(rng.standard_normal((1, 4)) * 0.01), requires_grad=True, name="W[2]")
    b2 = ag.Tensor(make(np.zeros((1, 1))), requires_grad=True, name="b[2]")
    A1 = (W1 @ X + b1).sigmoid()
    A2 = (W2 @ A1 + b2).sigmoid()
    J = -(Y * A2.log() + (1 - Y) * (1 - A2).log()).mean()
    J.backward()
    return J, [W1, b1, W2, b2]


@pytest.mark.parametrize("b", BACKENDS)
def test_the_readmes_ten_lines_run_unchanged_on_every_backend(b):
    J_numpy, numpy_params = readme_step(lambda a: np.asarray(a, dtype=np.float64))
    J, params = readme_step(lambda a: b.array(a, dtype=np.float64))
    assert backend.of(J.data) is backend.of(b.array(np.zeros(1)))
    np.testing.assert_allclose(ag.to_numpy(J), J_numpy.data, rtol=1e-12)
    for p, expected in zip(params, numpy_params):
        assert backend.of(p.grad) is backend.of(p.data)
        np.testing.assert_allclose(ag.to_numpy(p.grad), expected.grad, rtol=1e-12, atol=1e-300)

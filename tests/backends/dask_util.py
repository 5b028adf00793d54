"""The seed's network (3-4-1, sigmoid, log-loss: eqs 26-29, 1 and 76) on any arrays, and a
counter of Dask computes, shared by the Dask tests."""
from __future__ import annotations

import numpy as np
import pytest

import autograd_lite as ag


def seed_problem(m, seed=0):
    """Seeded numpy X (3, m), labels Y (1, m) and W[1], b[1], W[2], b[2] (eqs 35-36). The
    weights are large enough that every gradient is far from round-off."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, m))
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    parameters = [rng.standard_normal((4, 3)), 0.1 * rng.standard_normal((4, 1)),
                  rng.standard_normal((1, 4)), 0.1 * rng.standard_normal((1, 1))]
    return X, Y, parameters


def seed_parameters(arrays):
    names = ("W[1]", "b[1]", "W[2]", "b[2]")
    return [ag.Tensor(a, requires_grad=True, name=n) for a, n in zip(arrays, names)]


def seed_loss(parameters, X, Y, loss="fused"):
    """J of the seed network: eqs 26-29, then eq 1 averaged as eq 76, either as the engine's
    fused log-loss of the sigmoid's logits or composed as the README writes it."""
    W1, b1, W2, b2 = parameters
    A1 = (W1 @ X + b1).sigmoid()
    A2 = (W2 @ A1 + b2).sigmoid()
    if loss == "fused":
        return ag.binary_cross_entropy(A2, Y)
    return -(Y * A2.log() + (1 - Y) * (1 - A2).log()).mean()


def assert_close(found, expected, rtol=1e-12):
    """Equal to ``rtol`` relative to the largest entry of ``expected``."""
    found, expected = np.asarray(found), np.asarray(expected)
    assert found.shape == expected.shape
    scale = max(float(np.max(np.abs(expected))), np.finfo(np.float64).tiny)
    assert float(np.max(np.abs(found - expected))) <= rtol * scale, (found, expected)


try:
    from dask.callbacks import Callback
except ImportError:  # the tests that need it skip first
    Callback = object


class Computes(Callback):
    """Counts the graphs Dask's local schedulers run (one per ``dask.compute``, ``.compute()``
    or ``np.asarray`` of a Dask array) and keeps each graph, to look at what ran."""

    def __init__(self):
        super().__init__()
        self.graphs = []

    def _start(self, dsk):
        self.graphs.append(dict(dsk))

    @property
    def count(self):
        return len(self.graphs)


@pytest.fixture
def threaded_scheduler():
    """Dask's threaded scheduler for the test (a module uses it with ``autouse``)."""
    import dask
    with dask.config.set(scheduler="threads"):
        yield


def lazy_columns(array, chunk):
    """A numpy array as a Dask array chunked along the samples (the last axis)."""
    import dask.array as da
    return da.from_array(array, chunks=array.shape[:-1] + (chunk,))

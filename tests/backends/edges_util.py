"""What the edge tests (check, draw, the stepping page, the CLI on every backend) share: the
backends of ``array_backends.BACKENDS`` plus Dask (lazy: its tests also count computes), and
the seed's 3-4-1 network (eqs 26-29, the log-loss of eqs 1 and 76) built on any of them."""
from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

import autograd_lite as ag
from array_backends import BACKENDS, ArrayBackend


def _dask():
    da = importlib.import_module("dask.array")
    # two chunks of samples (columns) where there are two: the graph is split as a data set is
    return ArrayBackend("dask", lambda a: da.from_array(
        a, chunks=a.shape[:-1] + (max(1, math.ceil(a.shape[-1] / 2)),) if a.ndim else ()))


def _param(name, factory):
    try:
        backend = factory()
    except Exception as error:  # not installed: skipped, saying why
        return pytest.param(None, id=name, marks=pytest.mark.skip(
            reason=f"{name} is not available here: {type(error).__name__}: {error}"))
    return pytest.param(backend, id=name)


# Every backend the edges take: the eager ones (numpy first), then Dask, lazy.
EAGER = BACKENDS
DASK = _param("dask", _dask)
EDGE_BACKENDS = EAGER + [DASK]


def seed_arrays(m=5, seed=0):
    """Seeded numpy X (3, m), labels Y (1, m), W[1], b[1], W[2], b[2]: gradients far from
    round-off."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, m))
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    Y[0, 0], Y[0, -1] = 0.0, 1.0  # both labels: 1 − Y is neither all ones nor all zeros
    return {"X": X, "Y": Y, "W1": rng.standard_normal((4, 3)),
            "b1": 0.5 * rng.standard_normal((4, 1)), "W2": rng.standard_normal((1, 4)),
            "b2": 0.5 * rng.standard_normal((1, 1))}


def seed_network(backend, arrays=None, composed=True):
    """The seed's network on ``backend`` (an ``ArrayBackend``; None: numpy), with only the
    parameters named, as in the README, so a picture infers X, Y, Z[l], A[l], J, 1 − Y and m.
    Returns the tensors by name; "J" is eq 76, composed from log (eq 1) or fused."""
    arrays = seed_arrays() if arrays is None else arrays
    make = (lambda a: np.array(a)) if backend is None else backend.array
    t = {name: ag.Tensor(make(arrays[name]), requires_grad=True, name=f"{name[0]}[{name[1]}]")
         for name in ("W1", "b1", "W2", "b2")}
    X, Y = ag.Tensor(make(arrays["X"])), ag.Tensor(make(arrays["Y"]))
    t["Z1"] = t["W1"] @ X + t["b1"]                                  # eq 26
    t["A1"] = t["Z1"].sigmoid()                                      # eq 27
    t["Z2"] = t["W2"] @ t["A1"] + t["b2"]                            # eq 28
    t["A2"] = t["Z2"].sigmoid()                                      # eq 29
    m = arrays["X"].shape[1]
    t["J"] = (-(Y * t["A2"].log() + (1 - Y) * (1 - t["A2"]).log()).sum() / m if composed
              else ag.binary_cross_entropy(t["A2"], Y))              # eqs 1, 76
    t["X"], t["Y"] = X, Y
    return t


def assert_same_numbers(found, expected, rtol=1e-12, path="$"):
    """Two JSON-like structures equal: the same keys, lengths and strings, numbers equal to
    ``rtol`` relative (another backend's BLAS rounds differently)."""
    if isinstance(expected, dict):
        assert isinstance(found, dict) and found.keys() == expected.keys(), path
        for key in expected:
            assert_same_numbers(found[key], expected[key], rtol, f"{path}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(found, (list, tuple)) and len(found) == len(expected), path
        for i, (a, b) in enumerate(zip(found, expected)):
            assert_same_numbers(a, b, rtol, f"{path}[{i}]")
    elif isinstance(expected, float) and isinstance(found, float):
        # relative to the number, with an absolute floor far below every value these graphs
        # hold (an element that is 0 in one backend may be 1e-17 in another)
        assert abs(found - expected) <= rtol * max(abs(expected), abs(found)) + 1e-15 \
            or (math.isnan(found) and math.isnan(expected)), (path, found, expected)
    else:
        assert found == expected, (path, found, expected)

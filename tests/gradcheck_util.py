"""A small central-difference gradient checker for the engine's tests, in float64.

Independent of ``autograd_lite.check`` on purpose: the tests of the engine must not lean on code
built from the engine. For a function ``fn`` of Tensors with an output of any shape, the check
draws a random cotangent ``g`` (dJ/d(output)), lets ``backward(g)`` fill every input's ``.grad``
and compares it with the central difference of ``J(x) = sum(g * fn(x))``:

    dJ/dx[i] ~ (J(x + eps e_i) - J(x - eps e_i)) / (2 eps)

whose error is O(eps^2) (truncation) plus O(1e-16 / eps) (rounding): ~1e-10 for eps = 1e-6.

It also holds the hypothesis strategies (shapes, values) and the table of elementwise
primitives that test_finite_differences and test_higher_order both walk through.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.extra import numpy as hnp

import autograd_lite as ag

EPS = 1e-6
RTOL, ATOL = 1e-5, 1e-7

# Modest example counts keep the suite fast on a 2-core CI machine; deadline=None because the
# first example of a test pays for imports and a finite difference is a loop in Python.
FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# --- finite differences -------------------------------------------------------------------------

def numeric_gradient(J, arrays, index):
    """Central differences of the scalar ``J(*arrays)`` with respect to ``arrays[index]``."""
    arrays = [np.array(a, dtype=np.float64, copy=True) for a in arrays]
    x = arrays[index]
    grad = np.zeros_like(x)
    for position in np.ndindex(*x.shape):
        saved = x[position]
        x[position] = saved + EPS
        J_plus = J(*arrays)
        x[position] = saved - EPS
        J_minus = J(*arrays)
        x[position] = saved
        grad[position] = (J_plus - J_minus) / (2 * EPS)
    return grad


def value_of(fn, arrays):
    """``fn`` on constant Tensors, as an ndarray (no graph is recorded)."""
    with ag.no_grad():
        return np.asarray(fn(*[ag.Tensor(a) for a in arrays]).data, dtype=np.float64)


def assert_close(actual, expected, what="", rtol=RTOL, atol=ATOL):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def check_gradients(fn, *arrays, wants=None, seed=0, rtol=RTOL, atol=ATOL):
    """Assert that ``backward`` gives the finite-difference gradient of ``fn`` for every input.

    ``wants[i]`` False makes input i a constant (no ``requires_grad``): its ``.grad`` must stay
    None. Returns the autodiff gradients (None for constants).
    """
    arrays = [np.array(a, dtype=np.float64, copy=True) for a in arrays]
    wants = [True] * len(arrays) if wants is None else list(wants)
    tensors = [ag.Tensor(a, requires_grad=w) for a, w in zip(arrays, wants)]
    output = fn(*tensors)
    assert isinstance(output, ag.Tensor)
    assert output.requires_grad == any(wants)
    np.testing.assert_allclose(output.data, value_of(fn, arrays), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(seed).standard_normal(output.shape)
    output.backward(g)

    def J(*xs):
        return float(np.sum(g * value_of(fn, xs)))

    grads = []
    for index, (tensor, wanted) in enumerate(zip(tensors, wants)):
        if not wanted:
            assert tensor.grad is None, f"input {index} is a constant but got a gradient"
            grads.append(None)
            continue
        assert isinstance(tensor.grad, np.ndarray), f"input {index}: .grad is {tensor.grad!r}"
        assert tensor.grad.shape == arrays[index].shape
        assert tensor.grad.dtype == np.float64
        assert_close(tensor.grad, numeric_gradient(J, arrays, index),
                     f"d/d input {index} of shape {arrays[index].shape}", rtol, atol)
        grads.append(tensor.grad)
    return grads


# --- hypothesis strategies ------------------------------------------------------------------------

def shapes(min_dims=0, max_dims=3, max_side=4):
    """Scalars (), vectors (n,), matrices (n, m) and 3-D arrays, sides 1..max_side."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def values(low=-3.0, high=3.0, away_from=None, margin=0.05):
    """float64 elements in [low, high]; ``away_from`` keeps them ``margin`` from a kink (0 for
    relu and abs, where a central difference straddling it is meaningless)."""
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False)
    if away_from is not None:
        elements = elements.filter(lambda v: abs(v - away_from) > margin)
    return elements


def arrays(shape, elements=None):
    return hnp.arrays(np.float64, shape, elements=values() if elements is None else elements)


# --- the elementwise primitives, with the domain where each is smooth -------------------------------
# name -> (function of one Tensor, element strategy). Used by test_finite_differences (first order) and
# test_higher_order (second order, from the same vjp rules under create_graph).

UNARY = {
    "neg": (lambda x: -x, values()),
    "exp": (lambda x: x.exp(), values()),
    "log": (lambda x: x.log(), values(0.1, 5.0)),
    "sigmoid": (lambda x: x.sigmoid(), values(-6.0, 6.0)),
    "tanh": (lambda x: x.tanh(), values()),
    "relu": (lambda x: x.relu(), values(away_from=0.0)),
    "abs": (lambda x: x.abs(), values(away_from=0.0)),
    "pow 2": (lambda x: x ** 2, values()),
    "pow 3": (lambda x: x ** 3, values()),
    "pow 0": (lambda x: x ** 0, values()),
    "pow 1.5": (lambda x: x ** 1.5, values(0.1, 3.0)),
    "pow -1": (lambda x: x ** -1, values(away_from=0.0, margin=0.2)),
    "sqrt": (lambda x: x.sqrt(), values(0.1, 3.0)),
    "rsub": (lambda x: 1.0 - x, values()),
    "rdiv": (lambda x: 2.0 / x, values(away_from=0.0, margin=0.2)),
    "rpow": (lambda x: 2.0 ** x, values()),
    "sum": (lambda x: x.sum(), values()),
    "mean": (lambda x: x.mean(), values()),
    "ag.sigmoid": (lambda x: ag.sigmoid(x), values(-6.0, 6.0)),
    "ag.tanh": (lambda x: ag.tanh(x), values()),
    "ag.exp": (lambda x: ag.exp(x), values()),
}

# name -> (function of two Tensors, strategy for x, strategy for y); shapes broadcast.
BINARY = {
    "add": (lambda x, y: x + y, values(), values()),
    "sub": (lambda x, y: x - y, values(), values()),
    "mul": (lambda x, y: x * y, values(), values()),
    "div": (lambda x, y: x / y, values(), values(away_from=0.0, margin=0.3)),
    "pow": (lambda x, y: x ** y, values(0.2, 3.0), values(-2.0, 2.0)),
}

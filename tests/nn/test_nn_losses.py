"""The losses added for networks: each against its formula written in numpy, its gradient
against the closed form of eq 78 (dZ = A - Y, with eq 76's 1/m), and its errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd_lite as ag
from autograd_lite import nn, reference
from autograd_lite.errors import ShapeError

F = nn.functional


def softmax(Z):
    E = np.exp(Z - Z.max(axis=0))
    return E / E.sum(axis=0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 6), m=st.integers(1, 8), seed=st.integers(0, 2**16),
       scale=st.sampled_from([1.0, 50.0]))
def test_softmax_cross_entropy_value_and_gradient(n, m, seed, scale):
    generator = np.random.default_rng(seed)
    Z_array = generator.standard_normal((n, m)) * scale
    labels = generator.integers(0, n, m)
    one_hot = np.eye(n)[:, labels]
    expected = -np.sum(one_hot * np.log(softmax(Z_array) + 1e-300)) / m if scale == 1.0 else None
    for Y in (labels, one_hot):
        Z = ag.Tensor(Z_array, requires_grad=True)
        J = F.softmax_cross_entropy(Z, Y)
        J.backward()
        if expected is not None:
            assert J.item() == pytest.approx(expected, rel=1e-12)
        assert np.isfinite(J.item())
        # eq 78 for softmax with cross-entropy: dZ[N] = (A[N] - Y) / m in the autodiff convention.
        np.testing.assert_allclose(Z.grad, (softmax(Z_array) - one_hot) / m, atol=1e-14)


def test_cross_entropy_of_probabilities_agrees_with_the_logits_form_and_the_reference():
    generator = np.random.default_rng(1)
    Z = generator.standard_normal((4, 5))
    labels = generator.integers(0, 4, 5)
    A = softmax(Z)
    one_hot = np.eye(4)[:, labels]
    from_logits = F.softmax_cross_entropy(Z, labels).item()
    assert F.cross_entropy(A, labels).item() == pytest.approx(from_logits, rel=1e-12)
    assert F.cross_entropy(A, one_hot).item() == pytest.approx(from_logits, rel=1e-12)
    assert from_logits == pytest.approx(reference.cost(A, one_hot, "cross-entropy"), rel=1e-12)


def test_mean_squared_error_is_the_reference_convention():
    generator = np.random.default_rng(2)
    A_array, Y = generator.standard_normal((2, 5)), generator.standard_normal((2, 5))
    A = ag.Tensor(A_array, requires_grad=True)
    J = F.mean_squared_error(A, Y)
    assert J.item() == pytest.approx(np.sum((A_array - Y) ** 2) / 5, rel=1e-12)
    assert J.item() == pytest.approx(reference.cost(A_array, Y, "mse"), rel=1e-12)
    J.backward()
    np.testing.assert_allclose(A.grad, 2 * (A_array - Y) / 5, rtol=1e-12)   # eq 77


def test_binary_losses_are_reexported_from_the_engine():
    assert F.binary_cross_entropy is ag.binary_cross_entropy
    assert F.binary_cross_entropy_with_logits is ag.binary_cross_entropy_with_logits


def test_whole_number_float_labels_are_accepted():
    Z = np.zeros((3, 2))
    assert F.softmax_cross_entropy(Z, np.array([0.0, 2.0])).item() == pytest.approx(np.log(3))


@pytest.mark.parametrize("Y, error, message", [
    (np.array([0, 3]), ValueError, r"labels must lie in \[0, 3\) for 3 classes, got values from 0 to 3"),
    (np.array([0, -1]), ValueError, r"got values from -1 to 0"),
    (np.array([0, 1, 2]), ShapeError, r"must have shape \(2,\) .* or \(3, 2\) .* got shape \(3,\)"),
    (np.array([0.5, 1.0]), ValueError, "whole numbers"),
    (np.array(["a", "b"]), TypeError, "must be integers"),
    (np.zeros((2, 2)), ShapeError, r"logits Z has shape \(3, 2\) but one-hot labels Y has shape \(2, 2\)"),
])
def test_softmax_cross_entropy_errors_name_the_problem(Y, error, message):
    with pytest.raises(error, match=message):
        F.softmax_cross_entropy(np.zeros((3, 2)), Y)


def test_other_loss_errors():
    with pytest.raises(ShapeError, match=r"n\[N\] x m .* got shape \(3,\)"):
        F.softmax_cross_entropy(np.zeros(3), np.array([0]))
    with pytest.raises(ShapeError, match=r"predictions A has shape \(1, 4\) but targets Y has shape \(4,\)"):
        F.mean_squared_error(np.zeros((1, 4)), np.zeros(4))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*softmax_cross_entropy"):
        F.cross_entropy(np.full((2, 2), 3.0), np.array([0, 1]))

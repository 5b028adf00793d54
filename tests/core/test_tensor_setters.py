"""What ``.data`` and ``.grad`` accept, and a result's ``.grad`` read, as in PyTorch.

A wrong value is refused where it is assigned, naming the tensor: never accepted and turned
into a gradient cast to integers, a parameter that turns complex, or a raw broadcast error deep
inside backward.
"""
import warnings

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite.errors import ShapeError


def W():
    return ag.Tensor([[0.3, 0.5, 0.7]], requires_grad=True, name="W[1]")


# --- .data ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, message", [
    (np.array([[1, 2, 3]]), r"\.data of 'W\[1\]' \(dtype float64\): assign an ndarray of a real "
                            r"floating dtype, got dtype int64"),
    (np.array([[True, False, True]]), r"real floating dtype, got dtype bool"),
    (np.ones((1, 3), dtype=complex), r"got dtype complex128; complex numbers are not supported"),
    ([[1.0, 2.0, 3.0]], r"\.data of 'W\[1\]': assign an ndarray, got list"),
    (3.0, r"assign an ndarray, got float"),
    (ag.Tensor([[1.0, 2.0, 3.0]]), r"assign an ndarray, got Tensor"),
])
def test_data_refuses_what_is_not_a_real_floating_array(value, message):
    w = W()
    with pytest.raises(TypeError, match=message):
        w.data = value
    np.testing.assert_array_equal(w.data, [[0.3, 0.5, 0.7]])
    assert w.version == 0


def test_an_int_array_assigned_to_data_never_makes_backward_cast_the_gradient():
    w = W()
    with pytest.raises(TypeError):
        w.data = np.array([[1, 2, 3]])
    (w * np.array([[0.3, 0.5, 0.7]])).sum().backward()
    np.testing.assert_array_equal(w.grad, [[0.3, 0.5, 0.7]])


def test_data_takes_floating_arrays_of_any_shape_and_numpy_scalars_for_a_0d_tensor():
    w = W()
    w.data = np.zeros((2, 2), dtype=np.float32)
    assert w.shape == (2, 2) and w.dtype == np.float32
    s = ag.Tensor(1.0, requires_grad=True)
    s.data = s.data - 0.5  # a 0-d array minus a number is a numpy scalar
    assert isinstance(s.data, np.ndarray) and s.item() == 0.5
    counts = ag.Tensor(np.array([1, 2]), dtype=np.int64)  # a constant of integers takes integers
    counts.data = np.array([3, 4])
    assert counts.dtype == np.int64


# --- .grad ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, error, message", [
    (np.ones((1, 3), dtype=complex), TypeError,
     r"\.grad of 'W\[1\]': .*real floating dtype, got dtype complex128; complex gradients"),
    (np.ones((1, 3), dtype=np.int64), TypeError, r"real floating dtype, got dtype int64"),
    (np.ones(3), ShapeError, r"\.grad of 'W\[1\]': the gradient must have the tensor's shape "
                             r"\(1, 3\), got \(3,\)"),
    (np.ones((3, 1)), ShapeError, r"shape \(1, 3\), got \(3, 1\)"),
    ([[1.0, 1.0, 1.0]], TypeError, r"\.grad of 'W\[1\]': assign None or an ndarray, got list"),
])
def test_grad_refuses_what_is_not_a_floating_array_of_the_tensors_shape(value, error, message):
    w = W()
    with pytest.raises(error, match=message):
        w.grad = value
    assert w.grad is None


def test_a_refused_complex_grad_never_turns_a_parameter_complex():
    w = W()
    optimizer = ag.optim.SGD([w], lr=0.1)
    with pytest.raises(TypeError):
        w.grad = np.ones((1, 3), dtype=complex)
    w.grad = np.ones((1, 3))
    optimizer.step()
    assert w.dtype == np.float64
    np.testing.assert_allclose(w.data, [[0.2, 0.4, 0.6]])


def test_grad_takes_none_and_a_float32_array_of_the_shape():
    w = W()
    w.grad = np.ones((1, 3), dtype=np.float32)
    w.grad = None
    assert w.grad is None


def test_complex_data_with_requires_grad_is_refused_until_complex_is_supported():
    with pytest.raises(TypeError, match="requires_grad=True needs floating-point data, but "
                                        "dtype complex128"):
        ag.Tensor([1.0, 2.0], dtype=np.complex128, requires_grad=True)
    assert ag.Tensor([1.0, 2.0], dtype=np.complex128).dtype == np.complex128  # as a constant


# --- a result's .grad -----------------------------------------------------------------------------

def test_reading_a_results_grad_warns_naming_retain_grad():
    w = W()
    Z = (w * 2.0).named("Z[1]")
    J = Z.sum()
    J.backward()
    with pytest.warns(UserWarning, match=r"\.grad of 'Z\[1\]' .* not a leaf.*retain_grad\(\)"):
        assert Z.grad is None


def test_a_retained_results_grad_and_a_leafs_grad_read_without_a_warning():
    w = W()
    Z = (w * 2.0).retain_grad()
    Z.sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(Z.grad, np.ones((1, 3)))
        np.testing.assert_array_equal(w.grad, np.full((1, 3), 2.0))
        with ag.no_grad():
            assert (w * 2.0).grad is None  # no gradient recorded: nothing to warn about

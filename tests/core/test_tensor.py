"""The Tensor's face: numpy never swallows a Tensor, ``__array__``, repr, dtypes and attributes.

``ndarray + Tensor`` must be a Tensor with a gradient, not an object array or a plain ndarray
that silently drops the graph (``__array_ufunc__ = None``); a learner writes ``1 - Y`` and
``X @ W`` with arrays on either side, as eqs 1 and 26 do.
"""
import numpy as np
import pytest

import autograd_lite as ag
from gradcheck_util import assert_close, check_gradients

X_ = np.array([[0.5, 1.5], [2.0, 2.5]])


# --- numpy on the left never swallows a Tensor -----------------------------------------------------

@pytest.mark.parametrize("expression, derivative", [
    ("ndarray + t", lambda x: np.ones_like(x)),
    ("ndarray - t", lambda x: -np.ones_like(x)),
    ("ndarray * t", lambda x: np.full_like(x, 3.0)),
    ("ndarray / t", lambda x: -3.0 / x ** 2),
    ("ndarray ** t", lambda x: 3.0 ** x * np.log(3.0)),
    ("2.0 ** t", lambda x: 2.0 ** x * np.log(2.0)),
    ("0 - t", lambda x: -np.ones_like(x)),
    ("1 - t", lambda x: -np.ones_like(x)),
    ("np.float64(2) * t", lambda x: np.full_like(x, 2.0)),
    ("np.float64(2) ** t", lambda x: 2.0 ** x * np.log(2.0)),
    ("[[1.0, 2.0], [3.0, 4.0]] * t", lambda x: np.array([[1.0, 2.0], [3.0, 4.0]])),
])
def test_numbers_and_ndarrays_on_the_left_give_tensors_with_gradients(expression, derivative):
    t = ag.Tensor(X_, requires_grad=True)
    out = eval(expression, {"np": np, "ndarray": np.full((2, 2), 3.0), "t": t})
    assert isinstance(out, ag.Tensor), f"{expression} gave {type(out).__name__}"
    assert out.requires_grad
    out.sum().backward()
    assert_close(t.grad, derivative(X_), expression, rtol=1e-14, atol=0)


def test_ndarray_matmul_tensor_is_a_tensor_with_gradients():
    W_ = np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 3.0]])
    A = ag.Tensor(X_, requires_grad=True)
    Z = W_ @ A                                     # eq 26 with W as plain data
    assert isinstance(Z, ag.Tensor) and Z.shape == (3, 2)
    Z.sum().backward()
    assert_close(A.grad, W_.T @ np.ones((3, 2)), rtol=0, atol=0)      # eq 81
    check_gradients(lambda a: W_ @ a, X_)
    check_gradients(lambda a: np.array([1.0, 2.0]) @ a, X_)           # 1-D on the left


def test_an_ndarray_broadcasting_against_a_tensor_from_either_side():
    b = ag.Tensor(np.zeros((2, 1)), requires_grad=True)
    Z = np.ones((2, 5)) + b                        # eq 33's broadcast, ndarray first
    assert isinstance(Z, ag.Tensor) and Z.shape == (2, 5)
    Z.sum().backward()
    np.testing.assert_array_equal(b.grad, [[5.0], [5.0]])             # eq 80


def test_numpy_ufuncs_record_instead_of_dropping_the_graph():
    """(tests/core/test_numpy_interop.py has the whole of numpy)"""
    t = ag.Tensor([1.0, 2.0], requires_grad=True)
    assert np.exp(t).op == "exp" and np.add(np.ones(2), t).op == "add"
    with pytest.raises(TypeError, match="np.sort"):
        np.sort(t)


def test_unsupported_operands_raise_pythons_type_error():
    t = ag.Tensor([1.0, 2.0])
    for other in ("a", None, object(), {"a": 1}):
        with pytest.raises(TypeError, match="unsupported operand"):
            t + other
        with pytest.raises(TypeError):        # Python's own message ("str" * t is repetition)
            other * t


# --- __array__, numpy(), item ---------------------------------------------------------------------

def test_array_protocol_gives_the_data():
    t = ag.Tensor(X_, requires_grad=True)
    assert np.asarray(t) is t.data                 # no copy unless asked
    assert t.numpy() is t.data
    as32 = np.array(t, dtype=np.float32)
    assert as32.dtype == np.float32
    np.testing.assert_array_equal(as32, X_.astype(np.float32))
    copy = np.array(t, copy=True)
    copy[0, 0] = 99.0
    assert t.data[0, 0] == 0.5
    np.testing.assert_array_equal(np.asarray(ag.Tensor(3.0)), np.array(3.0))


def test_item_len_bool_and_comparisons():
    assert ag.Tensor([[2.5]]).item() == 2.5 and isinstance(ag.Tensor(2.5).item(), float)
    assert len(ag.Tensor(np.zeros((4, 3)))) == 4
    assert bool(ag.Tensor(1.0)) and not bool(ag.Tensor([0.0]))
    t = ag.Tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(t > 1.5, [False, True, True])
    np.testing.assert_array_equal(t <= ag.Tensor([1.0, 1.0, 4.0]), [True, False, True])
    assert isinstance(t < 2, np.ndarray)


# --- repr ----------------------------------------------------------------------------------------

def test_repr_shows_values_name_and_how_it_was_made():
    assert repr(ag.Tensor([1.0, 2.0])) == "Tensor([1., 2.])"
    assert repr(ag.Tensor(3.0)) == "Tensor(3.)"
    assert (repr(ag.Tensor([1.0, 2.0], requires_grad=True, name="W[1]"))
            == "Tensor([1., 2.], name='W[1]', requires_grad=True)")
    Z = (ag.Tensor([[1.0]], requires_grad=True) * 2).named("Z[1]")
    assert repr(Z) == "Tensor([[2.]], name='Z[1]', op=mul)"
    assert repr(ag.Tensor([1, 2], dtype=np.float32)) == "Tensor([1., 2.], dtype=float32)"


def test_repr_of_a_large_tensor_is_summarised():
    text = repr(ag.Tensor(np.arange(1000.0)))
    assert text.startswith("Tensor([  0.,   1.,   2., ...") and len(text) < 80


# --- dtypes and attributes -------------------------------------------------------------------------

@pytest.mark.parametrize("data", [[1, 2], (1.5, 2), np.arange(2, dtype=np.int32), 3, 2.5,
                                  np.float32(1.5), np.array([1.0, 2.0], dtype=np.float16)])
def test_float64_unless_told_otherwise(data):
    assert ag.Tensor(data).dtype == np.float64
    assert ag.Tensor(data).data.dtype == np.float64


def test_a_float32_tensor_keeps_its_dtype_with_python_numbers():
    x = ag.Tensor([1.0, 2.0], dtype=np.float32, requires_grad=True)
    y = 1 - x * 2.5                                # numbers take x's dtype
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, np.array([-2.5, -2.5], dtype=np.float32))


def test_attributes_of_a_tensor():
    W = ag.Tensor(np.zeros((4, 3)), requires_grad=True, name="W[1]")
    assert (W.shape, W.ndim, W.size, W.name, W.is_leaf, W.op, W.parents) == (
        (4, 3), 2, 12, "W[1]", True, None, ())
    assert W.T.shape == (3, 4) and W.T.op == "transpose"
    Z = W @ np.ones((3, 5))
    assert (Z.is_leaf, Z.op, Z.parents[0]) == (False, "matmul", W)
    assert Z.named("Z[1]") is Z and Z.name == "Z[1]"
    with ag.name_scope("layer 1"):
        with ag.name_scope("affine"):
            inner = W * 2
    assert inner.scope == ("layer 1", "affine") and W.scope == ()


def test_a_tensor_built_from_a_tensor_copies_its_data_without_its_history():
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    copy = ag.Tensor(y)
    assert copy.is_leaf and not copy.requires_grad
    copy.data[0] = 50.0
    assert y.data[0] == 2.0


def test_the_function_forms_accept_arrays():
    z = np.array([[-1.0, 0.0, 2.0]])
    for name, expected in [("sigmoid", 1 / (1 + np.exp(-z))), ("tanh", np.tanh(z)),
                           ("relu", np.maximum(z, 0)), ("exp", np.exp(z))]:
        out = getattr(ag, name)(z)
        assert isinstance(out, ag.Tensor)
        assert_close(out.data, expected, name, rtol=1e-15, atol=0)
    # log(e) is 1 to rounding: 0.9999999999999999 with numpy 1.23's log, 1.0 with 2.x's
    assert abs(ag.log(np.e).item() - 1.0) <= 2 * np.finfo(np.float64).eps
    assert ag.sum(np.ones((2, 3)), axis=1).shape == (2,)
    assert ag.matmul(np.ones((2, 3)), ag.Tensor(np.ones(3))).shape == (2,)
    assert ag.as_tensor(z).shape == (1, 3)


@pytest.mark.parametrize("build", [
    lambda t: t * t, lambda t: t + 1, lambda t: 1 - t, lambda t: -t, lambda t: t / 3,
    lambda t: t ** 2, lambda t: 2.0 ** t, lambda t: t.exp(), lambda t: t.log(), lambda t: t.sigmoid(),
    lambda t: t.tanh(), lambda t: t.relu(), lambda t: t.abs(), lambda t: t.sum(), lambda t: t.mean(),
    lambda t: t.reshape(1, 1), lambda t: t.T, lambda t: ag.Tensor([1.0, 2.0]) @ ag.Tensor([3.0, t.item()]),
])
def test_results_on_0d_tensors_hold_ndarrays_not_numpy_scalars(build):
    # numpy returns scalars (np.float64) for 0-d operands; .data must stay an ndarray.
    x = ag.Tensor(2.0, requires_grad=True)
    assert type(build(x).data) is np.ndarray
    with ag.no_grad():
        assert type(build(x).data) is np.ndarray
    assert type(ag.grad(lambda t: build(t).sum())(x).data) is np.ndarray


def test_numpy_reductions_accept_a_tensor_and_return_a_tensor():
    t = ag.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    total = np.sum(t)
    assert isinstance(total, ag.Tensor) and total.item() == 15.0
    np.mean(t, axis=0).sum().backward()
    np.testing.assert_array_equal(t.grad, np.full((2, 3), 0.5))
    with pytest.raises(TypeError, match="sum: out= is not supported"):
        np.sum(t, out=np.zeros(()))


def test_a_tensor_of_integers_indexes_like_an_integer_array():
    t = ag.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    t[ag.Tensor([1, 1], dtype=int)].sum().backward()   # row 1 twice: its gradient adds up
    np.testing.assert_array_equal(t.grad, [[0, 0, 0], [2, 2, 2]])


def test_a_boolean_tensor_indexes_as_a_mask():
    x = np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]])
    t = ag.Tensor(x, requires_grad=True)
    mask = ag.Tensor(x > 0)
    assert mask.dtype == np.bool_ and not mask.requires_grad
    picked = t[mask]
    np.testing.assert_array_equal(picked.data, [2.0, 4.0, 6.0])
    (picked * picked).sum().backward()
    np.testing.assert_array_equal(t.grad, np.where(x > 0, 2 * x, 0.0))


@pytest.mark.parametrize("index", [[1.0, 1.0], [0.5], 1.0])
def test_a_floating_tensor_is_never_an_index(index):
    t = ag.Tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(IndexError, match=r"index: a Tensor of float64 cannot index; index with "
                                         r"integers .* or a boolean mask"):
        t[ag.Tensor(index)]


def test_boolean_data_stays_boolean_and_has_no_gradient():
    assert ag.Tensor(np.array([True, False])).dtype == np.bool_
    assert ag.Tensor(True).dtype == np.bool_
    with pytest.raises(TypeError, match=r"requires_grad=True needs floating-point data, but the "
                                        r"data is bool \(a boolean mask has no gradient\); pass "
                                        r"dtype=np.float64"):
        ag.Tensor(np.array([True, False]), requires_grad=True)
    t = ag.Tensor(np.array([True, False]), dtype=np.float64, requires_grad=True)
    np.testing.assert_array_equal(t.data, [1.0, 0.0])


def test_a_bool_axis_is_refused():
    with pytest.raises(ValueError, match=r"sum: axis must be None, an int or a tuple of ints, got True"):
        ag.Tensor(np.ones((2, 3))).sum(axis=True)

"""Every error the issue names, by its wording: which operation, which shapes or values, what to do.

Messages are matched with ``pytest.raises(match=...)`` so a regression in the wording fails here.
Shape errors are raised when the op is called (not later in backward) and never surface a numpy
traceback from inside the engine (``raise ... from None``).
"""
import re
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import autograd_lite as ag
from gradcheck_util import FAST, shapes

T = ag.Tensor


def exact(message):
    return "^" + re.escape(message) + "$"


# --- shapes, raised when the op is called --------------------------------------------------------

def test_matmul_names_both_shapes_and_the_inner_sizes():
    W = T(np.ones((4, 3)), requires_grad=True)
    X = T(np.ones((4, 5)))
    with pytest.raises(ValueError, match=exact("matmul: shapes (4, 3) and (4, 5) do not align (3 != 4)")) as info:
        W @ X
    assert isinstance(info.value, ag.ShapeError)
    assert info.value.__context__ is None                # checked before numpy is called


@pytest.mark.parametrize("x_shape, y_shape, message", [
    ((2,), (3, 2), "matmul: shapes (2,) and (3, 2) do not align (2 != 3)"),
    ((2, 3), (2,), "matmul: shapes (2, 3) and (2,) do not align (3 != 2)"),
    ((2,), (3,), "matmul: shapes (2,) and (3,) do not align (2 != 3)"),
    ((2, 2), (2, 2, 2), "matmul: operands must be 1-D or 2-D, got shapes (2, 2) and (2, 2, 2)"),
    ((2,), (), "matmul: operands must be 1-D or 2-D, got a scalar (shapes (2,) and ()); use * to scale"),
])
def test_matmul_with_vectors_scalars_and_3d(x_shape, y_shape, message):
    with pytest.raises(ag.ShapeError, match=exact(message)):
        T(np.ones(x_shape), requires_grad=True) @ np.ones(y_shape)


@pytest.mark.parametrize("op, symbol", [("add", "+"), ("sub", "-"), ("mul", "*"), ("div", "/"),
                                        ("pow", "**")])
def test_broadcast_failure_names_the_op_both_shapes_and_the_axis(op, symbol):
    x, y = T(np.ones((4, 3)), requires_grad=True), T(np.ones((4, 5)))
    message = f"{op}: shapes (4, 3) and (4, 5) cannot be broadcast together (axis -1: 3 != 5, and neither is 1)"
    with pytest.raises(ag.ShapeError, match=exact(message)) as info:
        eval(f"x {symbol} y")
    assert info.value.__suppress_context__               # no numpy traceback behind it
    with pytest.raises(ag.ShapeError, match=re.escape(f"{op}: shapes (4, 5) and (4, 3)")):
        eval(f"np.ones((4, 5)) {symbol} x")


@FAST
@given(x_shape=shapes(min_dims=1), y_shape=shapes(min_dims=1),
       op=st.sampled_from(["add", "sub", "mul", "div"]))
def test_any_pair_numpy_cannot_broadcast_is_refused_with_both_shapes(x_shape, y_shape, op):
    try:
        np.broadcast_shapes(x_shape, y_shape)
        assume(False)
    except ValueError:
        pass
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b}[op]
    with pytest.raises(ag.ShapeError, match=re.escape(f"{op}: shapes {x_shape} and {y_shape} "
                                                      f"cannot be broadcast together")):
        fn(T(np.ones(x_shape), requires_grad=True), T(np.ones(y_shape)))


@pytest.mark.parametrize("build, message", [
    (lambda t: t.reshape(4, 2), "reshape: cannot reshape an array of shape (2, 3) (6 elements) into shape (4, 2)"),
    (lambda t: t.broadcast_to((4, 3)), "broadcast_to: cannot broadcast shape (2, 3) to (4, 3)"),
    (lambda t: t.transpose(0, 0), "transpose: axes (0, 0) do not permute the axes of shape (2, 3)"),
    (lambda t: t.sum(axis=2), "sum: axis 2 is out of range for an array of 2 dimensions"),
    (lambda t: t.mean(axis=(0, -2)), "mean: axis (0, -2) repeats an axis"),
    (lambda t: t.softmax(axis=(0, 1)), "softmax: axis must be a single int, got (0, 1)"),
    (lambda t: t.log_softmax(axis=-3), "log_softmax: axis -3 is out of range for an array of 2 dimensions"),
    (lambda t: ag.Tensor(1.0).sum(axis=0), "sum: axis 0 is out of range for an array of 0 dimensions"),
])
def test_shape_primitives_name_the_op_and_the_shape(build, message):
    with pytest.raises(ag.ShapeError, match=exact(message)):
        build(T(np.ones((2, 3)), requires_grad=True))


def test_getitem_out_of_range_names_the_index_and_shape():
    with pytest.raises(IndexError, match=r"^getitem: index 5 is invalid for shape \(2, 3\)"):
        T(np.ones((2, 3)))[5]


# --- backward ------------------------------------------------------------------------------------

def test_backward_on_a_non_scalar_says_what_to_pass():
    A = (T(np.ones((1, 3)), requires_grad=True) * 2).named("A[2]")
    with pytest.raises(ValueError, match=re.escape(
            "backward: 'A[2]' has shape (1, 3); backward() with no argument needs a single-element "
            "tensor such as a loss J. Pass grad=, an array of shape (1, 3) holding dJ/d(this "
            "tensor) (np.ones((1, 3)) differentiates the sum), or reduce first with .sum() or .mean()")):
        A.backward()


def test_backward_refuses_a_gradient_of_the_wrong_shape_with_both_shapes():
    Z = T(np.ones((4, 5)), requires_grad=True) * 2
    with pytest.raises(ag.ShapeError, match=exact(
            "backward: grad has shape (5, 4) but the tensor has shape (4, 5); they must be equal")):
        Z.backward(np.ones((5, 4)))
    with pytest.raises(ag.ShapeError, match=re.escape("grad has shape (4, 1) but the tensor has shape (4, 5)")):
        Z.backward(np.ones((4, 1)))                    # broadcastable is still refused
    J = Z.sum()
    with pytest.raises(ag.ShapeError, match=re.escape("grad has shape (1,) but the tensor has shape ()")):
        J.backward(np.ones(1))


def test_backward_on_a_tensor_without_gradient():
    with pytest.raises(RuntimeError, match=re.escape(
            "backward: 'J' does not require a gradient: none of the tensors it was computed from "
            "has requires_grad=True, or it was computed under no_grad()")):
        (T([1.0]) * 2).sum().named("J").backward()
    x = T([1.0], requires_grad=True)
    with ag.no_grad():
        J = (x * 2).sum()
    with pytest.raises(RuntimeError, match="computed under no_grad"):
        J.backward()


def test_second_backward_through_a_freed_graph_says_what_happened_and_what_to_do():
    x = T([1.0, 2.0], requires_grad=True)
    J = (x * x).sum().named("J")
    J.backward()
    with pytest.raises(ag.GraphFreedError, match=exact(
            "backward: the graph behind 'J' (made by sum) was freed by an earlier backward(). Pass "
            "retain_graph=True to the first backward() to backpropagate through the same graph "
            "again, or run the forward pass again.")):
        J.backward()
    assert issubclass(ag.GraphFreedError, RuntimeError)


def test_retain_grad_on_a_constant():
    with pytest.raises(RuntimeError, match=exact("retain_grad: the tensor does not require a gradient")):
        T([1.0]).retain_grad()


# --- losses --------------------------------------------------------------------------------------

@pytest.mark.parametrize("a", [[[1.0, 0.5]], [[0.2, 1.0], [0.0, 0.3]]])
def test_binary_cross_entropy_warns_at_a_confidently_wrong_probability_and_points_to_logits(a):
    A = T(a, requires_grad=True)
    Y = np.zeros_like(A.data)
    with pytest.warns(ag.SaturationWarning, match=r"exactly 0 or 1 on the wrong side .*"
                                                  r"binary_cross_entropy_with_logits\(Z, Y\)"):
        J = ag.binary_cross_entropy(A, Y)
    assert issubclass(ag.SaturationWarning, RuntimeWarning)
    assert J.item() == np.inf                       # not clamped, and not NaN: the loss is +inf


def test_binary_cross_entropy_is_silent_and_finite_at_a_confidently_right_probability():
    A = T([[0.0, 0.5, 1.0]], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J = ag.binary_cross_entropy(A, np.array([[0.0, 1.0, 1.0]]))   # 0 log 0 = 0 (xlogy)
        J.backward()
    assert J.item() == pytest.approx(np.log(2) / 3, rel=1e-15)
    np.testing.assert_allclose(A.grad, [[1 / 3, -2 / 3, -1 / 3]], rtol=1e-15)


def test_binary_cross_entropy_warning_counts_and_locates_the_saturated_entries():
    A = T([[0.5, 1.0, 0.0, 1.0]], name="A[2]")
    with pytest.warns(ag.SaturationWarning, match=re.escape(
            "binary_cross_entropy: 2 of 4 probabilities in A[2] are exactly 0 or 1 on the wrong "
            "side of their label (first at index (0, 2): A = 0, Y = 1)")):
        ag.binary_cross_entropy(A, T([[1.0, 1.0, 1.0, 0.0]]))


def test_binary_cross_entropy_refuses_values_outside_0_1_as_probable_logits():
    with pytest.raises(ValueError, match=exact(
            "binary_cross_entropy: probabilities A must lie in [0, 1], got values from -0.5 to 2; "
            "if these are logits Z, use binary_cross_entropy_with_logits(Z, Y)")):
        ag.binary_cross_entropy(T([[-0.5, 2.0]]), T([[0.0, 1.0]]))


def test_losses_refuse_labels_of_another_shape():
    with pytest.raises(ag.ShapeError, match=exact(
            "binary_cross_entropy: probabilities A has shape (1, 3) but labels Y has shape (3,); "
            "they must be equal")):
        ag.binary_cross_entropy(T([[0.5, 0.5, 0.5]]), T([1.0, 0.0, 1.0]))
    with pytest.raises(ag.ShapeError, match=exact(
            "binary_cross_entropy_with_logits: logits Z has shape (1, 3) but labels Y have shape "
            "(1, 4); they must be equal")):
        ag.binary_cross_entropy_with_logits(T(np.zeros((1, 3))), T(np.zeros((1, 4))))
    with pytest.raises(ag.ShapeError, match="Z is a scalar"):
        ag.binary_cross_entropy_with_logits(T(0.0), T(1.0))


# --- bad data ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data, shown", [
    ("abc", "str 'abc'"), (None, "NoneType None"), ([[1, 2], [3]], "list [[1, 2], [3]]"),
    ({"a": 1}, "dict {'a': 1}"), ([1 + 2j], "list [(1+2j)]"), (["1", "2"], "list ['1', '2']"),
])
def test_bad_tensor_data_is_refused_with_what_was_given(data, shown):
    with pytest.raises(TypeError, match=exact(
            f"Tensor: data must be numbers or an array of numbers, got {shown}")):
        T(data)


def test_a_long_bad_value_is_shortened_in_the_message():
    with pytest.raises(TypeError, match=r"got str 'x{50,}\.\.\.$"):
        T("x" * 500)


def test_integer_dtype_with_requires_grad_is_refused():
    with pytest.raises(TypeError, match=exact(
            "Tensor: requires_grad=True needs floating-point data, but dtype int32 was asked for; "
            "leave dtype unset to get float64")):
        T(np.arange(3), dtype=np.int32, requires_grad=True)


def test_item_and_truth_value_of_a_tensor_with_many_elements():
    with pytest.raises(ValueError, match=exact(
            "item: 'W[1]' has shape (2,); only a tensor with one element converts to a Python number")):
        T([1.0, 2.0], name="W[1]").item()
    with pytest.raises(ValueError, match=r"truth value of the tensor with shape \(2,\) is ambiguous"):
        bool(T([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"len\(\) of a 0-d tensor"):
        len(T(1.0))


# --- functional ---------------------------------------------------------------------------------

def test_grad_of_a_function_that_does_not_return_a_scalar_tensor():
    with pytest.raises(ValueError, match=exact(
            "grad: the function must return a single element (a scalar), got shape (2,); reduce "
            "it with .sum() or .mean()")):
        ag.grad(lambda x: x * 2)(T([1.0, 2.0]))
    with pytest.raises(TypeError, match=exact("grad: the function must return a Tensor, got float")):
        ag.grad(lambda x: 3.0)(T(1.0))
    with pytest.raises(ValueError, match=exact(
            "grad: argnums 2 asks for argument 2, but the function was called with 2 positional "
            "arguments")):
        ag.grad(lambda x, y: x.sum(), argnums=2)(T([1.0]), T([2.0]))


def test_name_scope_needs_a_name():
    with pytest.raises(ValueError, match=exact("name_scope: the name must be a non-empty string, got ''")):
        ag.name_scope("")


def test_matmul_hints_at_samples_as_rows():
    W = ag.Tensor(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"matmul: shapes \(4, 3\) and \(5, 3\) do not align "
                                         r"\(3 != 5\); .*transpose it \(samples are columns, eq 25\)"):
        W @ ag.Tensor(np.ones((5, 3)))
    with pytest.raises(ValueError) as error:  # no hint where transposing would not help
        W @ ag.Tensor(np.ones((4, 5)))
    assert str(error.value) == "matmul: shapes (4, 3) and (4, 5) do not align (3 != 4)"


def test_softmax_over_an_empty_axis_is_a_shape_error_naming_the_op():
    x = ag.Tensor(np.ones((0, 3)), requires_grad=True)
    for call, name in ((lambda: x.softmax(axis=0), "softmax"), (lambda: x.log_softmax(axis=0), "log_softmax")):
        with pytest.raises(ag.ShapeError, match=rf"{name}: cannot reduce over axis 0 of an array of shape \(0, 3\)"):
            call()


def test_a_graph_copied_or_pickled_keeps_its_primitives_and_differentiates():
    import copy
    import pickle
    W = ag.Tensor(np.ones((2, 2)), requires_grad=True, name="W")
    J = (W @ W).sigmoid().sum()
    for twin in (copy.deepcopy(J), pickle.loads(pickle.dumps(J))):
        assert twin.grad_fn.op is ag.ops.SUM and twin.item() == J.item()
        twin.backward()
        (W_twin,) = {id(p): p for p in twin.parents[0].parents[0].parents}.values()
        np.testing.assert_allclose(W_twin.grad, _expected_grad(W.data))


def _expected_grad(W):
    A = W @ W
    S = 1 / (1 + np.exp(-A))
    G = S * (1 - S)
    return G @ W.T + W.T @ G


def test_hvp_refuses_a_vector_of_another_shape_than_x():
    """Before, v of shape (2, 1) for x of shape (2,) broadcast silently to a wrong product."""
    f = lambda x: (x ** 3).sum()  # noqa: E731
    x = ag.Tensor([1.0, 2.0])
    with pytest.raises(ag.ShapeError, match=r"hvp: v has shape \(2, 1\) but x has shape \(2,\)"):
        ag.hvp(f, x, np.array([[1.0], [0.0]]))
    np.testing.assert_allclose(ag.hvp(f, x, np.array([1.0, 0.0])).data, [6.0, 0.0])

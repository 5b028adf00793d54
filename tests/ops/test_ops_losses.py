"""xlogy and xdivy (autograd_lite.ops_losses): the limit 0 log 0 = 0 in value and gradient,
checked against central finite differences over random broadcasting shapes (hypothesis), to
second order, and at the points where the limit matters (x = 0, y = 0)."""
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import autograd_lite as ag
from autograd_lite.ops import losses as ops_losses
from autograd_lite.errors import ShapeError
from gradcheck_util import FAST, arrays, assert_close, check_gradients, values

T = ag.Tensor
FD_EPS = 1e-5

PRIMITIVES = {
    # name -> (function, strategy for x, strategy for y): y kept away from 0 where the
    # functions are smooth; x may be anything (and is exactly 0 in the tests below).
    "xlogy": (ops_losses.xlogy, values(-2.0, 2.0), values(0.2, 3.0)),
    "xdivy": (lambda x, y: ops_losses.XDIVY(x, y), values(-2.0, 2.0), values(0.3, 3.0)),
}


def test_values_against_the_formula_and_the_limit_at_zero():
    x = np.array([0.0, 0.0, 1.0, 2.0, 0.5, 1.0])
    y = np.array([0.0, 2.0, 0.0, 3.0, 1.0, np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy 'divide by zero' or 'invalid value' escapes
        value = ops_losses.xlogy(T(x), T(y)).data
        quotient = ops_losses.XDIVY(T(x), T(y)).data
    np.testing.assert_array_equal(value[:3], [0.0, 0.0, -np.inf])    # 0 log 0 = 0; 1 log 0 = -inf
    assert_close(value[3:5], [2 * np.log(3.0), 0.0], rtol=1e-15, atol=0)
    assert value[5] == np.inf
    np.testing.assert_array_equal(quotient[:3], [0.0, 0.0, np.inf])
    assert quotient[3] == pytest.approx(2 / 3, rel=1e-15)


def test_plain_multiplication_is_nan_where_xlogy_is_zero():
    """The reason for the primitive: IEEE 0 * log(0) is NaN, and so is its gradient."""
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isnan(0.0 * np.log(0.0))
    A = T([1.0, 0.5], requires_grad=True)
    ops_losses.xlogy(T([0.0, 1.0]), 1 - A).sum().backward()
    np.testing.assert_array_equal(A.grad, [0.0, -2.0])   # -x / (1 - a), 0 where x = 0


def test_gradients_where_x_is_zero():
    """d/dy is 0 where x == 0 (even at y = 0); d/dx is log y, the true derivative for y > 0."""
    x, y = T([0.0, 0.0], requires_grad=True), T([0.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ops_losses.xlogy(x, y).sum().backward()
    np.testing.assert_array_equal(y.grad, [0.0, 0.0])
    assert x.grad[0] == -np.inf and x.grad[1] == pytest.approx(np.log(2.0), rel=1e-15)
    # central difference in x at x = 0, y = 2: (h log 2 - (-h) log 2) / 2h = log 2
    h = 1e-6
    numeric = (h * np.log(2.0) - (-h) * np.log(2.0)) / (2 * h)
    assert x.grad[1] == pytest.approx(numeric, rel=1e-9)


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@FAST
@given(data=st.data(), wants=st.sampled_from([(True, True), (True, False), (False, True)]))
def test_first_order_against_finite_differences_with_broadcasting(name, data, wants):
    fn, x_elements, y_elements = PRIMITIVES[name]
    x_shape, y_shape = data.draw(hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=3, max_side=3), label="shapes").input_shapes
    x = data.draw(arrays(x_shape, x_elements), label="x")
    y = data.draw(arrays(y_shape, y_elements), label="y")
    x[np.abs(x) < 0.05] = 0.0  # exact zeros: the limit's points, where x log y is still smooth in y
    check_gradients(fn, x, y, wants=wants)


def _first_order(fn, arguments, index):
    leaves = [T(a, requires_grad=(i == index)) for i, a in enumerate(arguments)]
    (fn(*leaves) ** 2).sum().backward()
    return leaves[index].grad


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@FAST
@given(data=st.data())
def test_second_order_against_differences_of_the_gradient(name, data):
    """H v by ag.hvp (the vjp differentiated again) vs differences of backward()'s gradient, in
    x and in y, with broadcasting; plus the mixed derivative d/dy <d/dx f, v>."""
    fn, x_elements, y_elements = PRIMITIVES[name]
    x_shape, y_shape = data.draw(hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=2, max_side=3), label="shapes").input_shapes
    x = data.draw(arrays(x_shape, x_elements), label="x")
    y = data.draw(arrays(y_shape, y_elements), label="y")
    x[np.abs(x) < 0.05] = 0.0
    v = data.draw(arrays(x_shape, values(-1.0, 1.0)), label="v")
    w = data.draw(arrays(y_shape, values(-1.0, 1.0)), label="w")
    for index, (point, direction) in enumerate(((x, v), (y, w))):
        def f(t, index=index):
            arguments = [T(x), T(y)]
            arguments[index] = t
            return (fn(*arguments) ** 2).sum()
        hv = ag.hvp(f, T(point), direction)
        shifted = [[x, y], [x, y]]
        shifted[0][index] = point + FD_EPS * direction
        shifted[1][index] = point - FD_EPS * direction
        expected = (_first_order(fn, shifted[0], index) - _first_order(fn, shifted[1], index)) \
            / (2 * FD_EPS)
        assert_close(hv.data, expected, f"{name}: H v in input {index}", rtol=1e-5, atol=1e-6)
    f = lambda a, b: (fn(a, b) ** 2).sum()   # noqa: E731
    mixed = ag.grad(lambda b: (ag.grad(f)(T(x), b) * v).sum())(T(y))
    expected = np.zeros_like(y)
    for position in np.ndindex(*y.shape):
        up, down = y.copy(), y.copy()
        up[position] += FD_EPS
        down[position] -= FD_EPS
        expected[position] = (np.sum(_first_order(fn, [x, up], 0) * v)
                              - np.sum(_first_order(fn, [x, down], 0) * v)) / (2 * FD_EPS)
    assert_close(mixed.data, expected, f"{name}: mixed second derivative", rtol=1e-5, atol=1e-6)


def test_third_order_of_xlogy_in_y_is_2x_over_y_cubed():
    x, y = np.array([0.0, 1.5, -2.0]), np.array([0.5, 2.0, 1.25])
    d = lambda f: ag.grad(lambda t: f(t).sum())              # noqa: E731
    f1 = d(lambda t: ops_losses.xlogy(T(x), t))
    f2 = d(f1)
    f3 = d(f2)
    assert_close(f1(T(y)).data, x / y, rtol=1e-14, atol=0)
    assert_close(f2(T(y)).data, -x / y ** 2, rtol=1e-14, atol=0)
    assert_close(f3(T(y)).data, 2 * x / y ** 3, rtol=1e-14, atol=0)


def test_float32_stays_float32_and_shapes_are_named_in_errors():
    out = ops_losses.xlogy(T(np.float32([0.0, 1.0]), dtype=np.float32),
                           T(np.float32([0.0, 2.0]), dtype=np.float32))
    assert out.data.dtype == np.float32
    with pytest.raises(ShapeError, match=r"xlogy.*\(2,\).*\(3,\)"):
        ops_losses.xlogy(T(np.ones(2)), T(np.ones(3)))
    with pytest.raises(ShapeError, match=r"xdivy.*\(2,\).*\(3,\)"):
        ops_losses.XDIVY(T(np.ones(2)), T(np.ones(3)))


def test_formulas_for_pictures():
    names = ("Y", "A", "out")
    assert ops_losses.XLOGY.formula(0, "g", names, {}, ((2,), (2,))) == "g·log A"
    assert ops_losses.XLOGY.formula(1, "g", names, {}, ((2,), (2,))) == "g·Y/A (0 where Y = 0)"
    assert "A²" in ops_losses.XDIVY.formula(1, "g", names, {}, ((2,), (2,)))


def test_every_primitive_with_the_limit_at_zero_is_in_the_tables_above():
    names = {value.name for value in vars(ops_losses).values() if isinstance(value, ag.Primitive)}
    # softmax, log_softmax and the fused log-loss are held to finite differences in test_finite_differences
    seed = {"softmax", "log_softmax", "binary_cross_entropy_with_logits"}
    assert names == set(PRIMITIVES) | {"pick_classes"} | seed, "a loss primitive without its gradient tests"


@FAST
@given(st.integers(1, 5), st.integers(1, 6), st.integers(0, 999))
def test_pick_classes_gradient_against_finite_differences(n, m, seed):
    """x[classes[i], i] per sample: its gradient is g at those entries, 0 elsewhere, a class
    picked by several samples getting each of theirs; the labels have none."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, m))
    classes = rng.integers(0, n, m).astype(float)
    check_gradients(lambda a, c: (ops_losses.PICK_CLASSES(a, c) * np.arange(1.0, m + 1)).sum(),
                    x, classes, wants=[True, False])


def test_pick_classes_refuses_labels_out_of_range_or_fractional():
    x = T(np.zeros((3, 2)), requires_grad=True)
    for bad in ([0.0, 3.0], [0.5, 1.0], [-1.0, 0.0]):
        with pytest.raises(ValueError, match=r"pick_classes: class labels must be whole numbers in \[0, 3\)"):
            ops_losses.PICK_CLASSES(x, T(bad))
    with pytest.raises(ValueError, match=r"must have shape \(2,\)"):
        ops_losses.PICK_CLASSES(x, T([0.0, 1.0, 2.0]))

"""Broadcasting: every binary primitive over every broadcasting pattern, un-broadcast in one place.

Eq 33 adds the column b[l] (n, 1) to every column of W A (n, m): numpy repeats it (eqs 30-32's
B[1]), and the gradient must come back summed over the repeated axis (eq 80). The engine does
that for every op in ``core.backward.sum_to_shape``; these tests hold every binary primitive to it,
for the named patterns and for any pair of shapes hypothesis finds that numpy can broadcast.
"""
import zlib

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import autograd_lite as ag
from autograd_lite.core.backward import sum_to_shape
from gradcheck_util import BINARY, FAST, arrays, assert_close, check_gradients

# (shape of x, shape of y): every way two operands broadcast.
PATTERNS = {
    "(n,1)+(n,m) bias column, eq 33": ((4, 1), (4, 5)),
    "(n,m)+(n,1)": ((4, 5), (4, 1)),
    "(1,m)+(n,m) row": ((1, 5), (4, 5)),
    "(m,)+(n,m) vector": ((5,), (4, 5)),
    "(n,m)+(m,)": ((4, 5), (5,)),
    "scalar+matrix": ((), (4, 5)),
    "matrix+scalar": ((4, 5), ()),
    "(1,1)+(n,m)": ((1, 1), (4, 5)),
    "both sides (n,1)*(1,m)": ((4, 1), (1, 5)),
    "both sides (1,m)*(n,1)": ((1, 5), (4, 1)),
    "(m,)*(n,1) vector and column": ((5,), (4, 1)),
    "3-D (2,1,m)+(n,1)": ((2, 1, 5), (4, 1)),
    "3-D (n,m)+(2,1,1)": ((4, 5), (2, 1, 1)),
    "same shape": ((4, 5), (4, 5)),
    "m = 1 (n,1)+(n,1)": ((4, 1), (4, 1)),
    "scalar+scalar": ((), ()),
    "scalar+vector": ((), (5,)),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_named_broadcasting_patterns(op, pattern):
    fn, x_elements, y_elements = BINARY[op]
    x_shape, y_shape = PATTERNS[pattern]
    rng = np.random.default_rng(zlib.crc32(f"{op} {pattern}".encode()))
    low_x, low_y = (0.2, -2.0) if op == "pow" else (-3.0, -3.0)
    x = rng.uniform(low_x, 3.0, x_shape)
    y = rng.uniform(low_y, 2.0 if op == "pow" else 3.0, y_shape)
    if op == "div":
        y = np.where(np.abs(y) < 0.3, 1.0, y)
    out = fn(ag.Tensor(x), ag.Tensor(y))
    assert out.shape == np.broadcast_shapes(x_shape, y_shape)
    x_grad, y_grad = check_gradients(fn, x, y)
    assert x_grad.shape == x_shape and y_grad.shape == y_shape


@pytest.mark.parametrize("op", sorted(BINARY))
@FAST
@given(data=st.data())
def test_any_broadcastable_pair_of_shapes(op, data):
    fn, x_elements, y_elements = BINARY[op]
    x_shape, y_shape = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1,
                                          max_side=3), label="shapes").input_shapes
    x = data.draw(arrays(x_shape, x_elements), label="x")
    y = data.draw(arrays(y_shape, y_elements), label="y")
    wants = data.draw(st.sampled_from([(True, True), (True, False), (False, True)]), label="wants")
    check_gradients(fn, x, y, wants=wants)


def test_bias_gradient_is_the_sum_over_the_columns_eq_80():
    rng = np.random.default_rng(11)
    W_, A_, dZ = rng.standard_normal((4, 3)), rng.standard_normal((3, 6)), rng.standard_normal((4, 6))
    W = ag.Tensor(W_, requires_grad=True)
    b = ag.Tensor(np.zeros((4, 1)), requires_grad=True)
    Z = W @ A_ + b                                       # eq 33
    Z.backward(dZ)
    assert b.grad.shape == (4, 1)
    np.testing.assert_allclose(b.grad, dZ.sum(axis=1, keepdims=True), rtol=1e-15)   # eq 80
    np.testing.assert_allclose(W.grad, dZ @ A_.T, rtol=1e-14)                      # eq 79


def test_a_tensor_broadcast_against_itself_accumulates_both_uses():
    # x (n,1) * x.T (1,n): each element is used along a row and along a column.
    x_ = np.array([[1.0], [2.0], [3.0]])
    x = ag.Tensor(x_, requires_grad=True)
    (x * x.T).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x_.sum() * np.ones((3, 1)))
    check_gradients(lambda t: t * t.T, x_)


# --- sum_to_shape: the one place un-broadcasting happens ----------------------------------------

@FAST
@given(data=st.data())
def test_sum_to_shape_is_the_adjoint_of_broadcasting(data):
    # <broadcast(x), g> = <x, sum_to_shape(g)> for every x: sum_to_shape is broadcast's vjp.
    shape, target = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=1, min_dims=0, max_dims=3, max_side=3),
        label="shapes")
    shape = shape[0]
    x = data.draw(arrays(shape), label="x")
    g = data.draw(arrays(target), label="g")
    summed = sum_to_shape(g, shape, "test")
    assert summed.shape == shape
    assert_close(np.sum(np.broadcast_to(x, target) * g), np.sum(x * summed), rtol=1e-12,
                 atol=1e-12)


def test_sum_to_shape_refuses_a_shape_broadcasting_cannot_explain():
    with pytest.raises(RuntimeError, match=r"mul: its vjp returned a gradient of shape \(3,\) for "
                                           r"an input of shape \(4,\)"):
        sum_to_shape(np.ones(3), (4,), "mul")
    with pytest.raises(RuntimeError, match=r"shape \(1, 5\) for an input of shape \(4, 5\)"):
        sum_to_shape(np.ones((1, 5)), (4, 5), "add")


def test_each_pair_of_shapes_gets_its_own_axes_and_a_refusal_every_time():
    """The axes of a pair of shapes are worked out once and kept: the same pairs in a new
    order give the same sums, and a pair broadcasting cannot explain is refused at every call,
    under the name of the op that asked."""
    pairs = [((4, 1), (4, 5)), ((5,), (4, 5)), ((1, 5), (4, 5)), ((), (4, 5)), ((4, 5), (4, 5))]
    rng = np.random.default_rng(0)
    for shape, target in pairs + pairs[::-1]:
        g = rng.standard_normal(target)
        expected = g
        while expected.ndim > len(shape):  # the axes broadcasting added on the left
            expected = expected.sum(axis=0)
        for axis, n in enumerate(shape):  # and those where the input had length 1
            if n == 1:
                expected = expected.sum(axis=axis, keepdims=True)
        np.testing.assert_allclose(sum_to_shape(g, shape, "add"), expected, rtol=1e-13, atol=1e-14)
    for op_name in ("mul", "mul", "div"):
        with pytest.raises(RuntimeError, match=rf"{op_name}: its vjp returned a gradient of shape "
                                               r"\(3,\) for an input of shape \(4,\)"):
            sum_to_shape(np.ones(3), (4,), op_name)


def test_sum_to_shape_returns_a_matching_gradient_unchanged():
    g = np.ones((2, 3))
    assert sum_to_shape(g, (2, 3), "add") is g


def test_a_vjp_of_the_wrong_shape_is_refused_by_the_engine():
    class Broken(ag.Primitive):
        name = "broken"

        def forward(self, x):
            return x * 2

        def vjp(self, g, inputs, output, wants):
            return (g.sum(axis=0),)        # drops an axis it should keep

    x = ag.Tensor(np.ones((3, 2)), requires_grad=True)
    y = Broken()(x)
    with pytest.raises(RuntimeError, match=r"broken: its vjp returned a gradient of shape \(2,\) "
                                           r"for an input of shape \(3, 2\)"):
        y.sum().backward()

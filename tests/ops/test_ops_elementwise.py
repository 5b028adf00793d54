"""The elementwise primitives (autograd_lite/ops/elementwise.py) against central
finite differences over hypothesis shapes, to second order, with broadcasting for maximum and
minimum, their values against numpy / the math library, and an error test for each refusal."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from hypothesis.extra import numpy as hnp

import autograd_lite as ag
from gradcheck_util import FAST, arrays, assert_close, check_gradients, shapes, value_of, values
from second_order_util import check_hvp

T = ag.Tensor

# name -> (function of one Tensor, element strategy away from kinks and outside the domain)
UNARY = {
    "square": (lambda x: x.square(), values()),
    "ag.square": (lambda x: ag.square(x), values()),
    "ag.sqrt": (lambda x: ag.sqrt(x), values(0.1, 3.0)),
    "sin": (lambda x: x.sin(), values()),
    "cos": (lambda x: ag.cos(x), values()),
    "leaky_relu": (lambda x: x.leaky_relu(), values(away_from=0.0)),
    "leaky_relu 0.2": (lambda x: ag.leaky_relu(x, 0.2), values(away_from=0.0)),
    "elu": (lambda x: x.elu(), values(away_from=0.0)),
    "elu 0.5": (lambda x: ag.elu(x, alpha=0.5), values(away_from=0.0)),
    "gelu": (lambda x: x.gelu(), values(-5.0, 5.0)),
    "gelu tanh": (lambda x: ag.gelu(x, approximate="tanh"), values(-5.0, 5.0)),
    "softplus": (lambda x: x.softplus(), values(-8.0, 8.0)),
    "clip": (lambda x: x.clip(-1.0, 1.0), values(away_from=1.0).filter(lambda v: abs(v + 1) > 0.05)),
    "clip low only": (lambda x: ag.clip(x, low=0.5), values(away_from=0.5)),
    "abs": (lambda x: ag.abs(x), values(away_from=0.0)),
}

BINARY = {
    "maximum": lambda x, y: ag.maximum(x, y),
    "minimum": lambda x, y: ag.minimum(x, y),
    "Tensor.maximum": lambda x, y: x.maximum(y),
    "Tensor.minimum": lambda x, y: x.minimum(y),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@FAST
@given(data=st.data())
def test_unary_op_matches_finite_differences(name, data):
    fn, elements = UNARY[name]
    check_gradients(fn, data.draw(arrays(shapes(), elements), label="x"))


@pytest.mark.parametrize("name", sorted(UNARY))
@FAST
@given(data=st.data())
def test_unary_op_second_order(name, data):
    fn, elements = UNARY[name]
    x = data.draw(arrays(shapes(max_dims=2), elements), label="x")
    v = data.draw(arrays(x.shape, values(-1.0, 1.0)), label="v")
    weights = np.random.default_rng(0).standard_normal(value_of(fn, [x]).shape)
    check_hvp(lambda t: (fn(t) * weights).sum(), x, v)


def _apart(x, y):
    """Both operands at least 0.05 apart wherever they meet (no tie within a difference step)."""
    return np.all(np.abs(np.subtract(x, y)) > 0.05)


@pytest.mark.parametrize("name", sorted(BINARY))
@FAST
@given(data=st.data())
def test_binary_op_with_broadcasting_matches_finite_differences(name, data):
    x_shape, y_shape = data.draw(hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=3, max_side=3), label="shapes").input_shapes
    x = data.draw(arrays(x_shape), label="x")
    y = data.draw(arrays(y_shape), label="y")
    assume(_apart(x, y))
    wants = data.draw(st.sampled_from([(True, True), (True, False), (False, True)]), label="wants")
    check_gradients(BINARY[name], x, y, wants=wants)


@pytest.mark.parametrize("name", sorted(BINARY))
@FAST
@given(data=st.data())
def test_binary_op_second_order_with_broadcasting(name, data):
    fn = BINARY[name]
    x_shape, y_shape = data.draw(hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=2, max_side=3), label="shapes").input_shapes
    x = data.draw(arrays(x_shape), label="x")
    y = data.draw(arrays(y_shape), label="y")
    assume(_apart(x, y))
    v = data.draw(arrays(x_shape, values(-1.0, 1.0)), label="v")
    w = data.draw(arrays(y_shape, values(-1.0, 1.0)), label="w")
    check_hvp(lambda t: (fn(t, T(y)) ** 2).sum(), x, v)
    check_hvp(lambda t: (fn(T(x), t) ** 2).sum(), y, w)


def test_maximum_and_minimum_split_the_gradient_equally_at_ties():
    x = T([1.0, 2.0, 3.0], requires_grad=True)
    y = T([1.0, 0.0, 5.0], requires_grad=True)
    ag.maximum(x, y).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(y.grad, [0.5, 0.0, 1.0])
    x.grad = y.grad = None
    ag.minimum(x, y).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(y.grad, [0.5, 1.0, 0.0])
    z = T([2.0, -1.0], requires_grad=True)
    z.maximum(z).sum().backward()                     # max(z, z) = z: the halves add up to 1
    np.testing.assert_array_equal(z.grad, [1.0, 1.0])


def test_values_match_numpy_and_the_math_library():
    x = np.array([-7.0, -2.5, -0.3, 0.0, 0.4, 1.0, 3.0, 9.0])
    erf_gelu = np.array([v * math.erfc(-v / math.sqrt(2)) / 2 for v in x])  # = x (1 + erf(x/√2)) / 2
    tanh_gelu = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    cases = [
        (ag.gelu(x), erf_gelu), (ag.gelu(x, "tanh"), tanh_gelu),
        (ag.softplus(x), np.logaddexp(0.0, x)), (ag.square(x), x * x),
        (ag.sqrt(np.abs(x)), np.sqrt(np.abs(x))), (ag.sin(x), np.sin(x)), (ag.cos(x), np.cos(x)),
        (ag.leaky_relu(x), np.where(x > 0, x, 0.01 * x)),
        (ag.elu(x, 2.0), np.where(x > 0, x, 2.0 * (np.exp(x) - 1))),
        (ag.clip(x, -1, 2), np.clip(x, -1, 2)), (ag.maximum(x, 0.5), np.maximum(x, 0.5)),
        (ag.minimum(x, x[::-1]), np.minimum(x, x[::-1])),
    ]
    for got, expected in cases:
        assert_close(got.data, expected, got.op, rtol=1e-14, atol=1e-300)
    # the tanh form is an approximation: close to the exact one, and not equal to it
    gap = np.max(np.abs(ag.gelu(x, "tanh").data - erf_gelu))
    assert 1e-6 < gap < 1e-3


def test_exact_gelu_keeps_relative_precision_far_on_the_negative_side():
    # gelu(-10) = -10 Φ(-10) ~ -7.6e-23: (1 + erf) would round it to 0; erfc keeps it.
    value = ag.gelu(T(-10.0)).item()
    assert_close(value, -10 * math.erfc(10 / math.sqrt(2)) / 2, rtol=1e-14, atol=0)
    assert value < 0


def test_gelu_second_derivative_is_phi_times_two_minus_x_squared():
    x = np.array([-3.0, -1.0, -0.2, 0.0, 0.5, 2.0])
    d2 = ag.grad(lambda t: ag.grad(lambda u: ag.gelu(u).sum())(t).sum())(T(x))
    phi = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    assert_close(d2.data, phi * (2 - x * x), rtol=1e-12, atol=1e-15)


def test_sin_and_cos_derivatives_cycle():
    x = np.linspace(-3, 3, 7)
    d1 = ag.grad(lambda t: t.sin().sum())
    d2 = ag.grad(lambda t: d1(t).sum())
    d3 = ag.grad(lambda t: d2(t).sum())
    assert_close(d1(T(x)).data, np.cos(x), rtol=1e-15, atol=1e-15)
    assert_close(d2(T(x)).data, -np.sin(x), rtol=1e-15, atol=1e-15)
    assert_close(d3(T(x)).data, -np.cos(x), rtol=1e-15, atol=1e-15)


def test_softplus_is_exact_and_silent_for_huge_inputs():
    x = T([-1000.0, -40.0, 0.0, 40.0, 1000.0], requires_grad=True)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y = x.softplus()
        y.sum().backward()
    assert_close(y.data, [0.0, math.exp(-40.0), math.log(2.0), 40.0, 1000.0], rtol=1e-15, atol=0)
    assert y.data[0] == 0.0 or y.data[0] < 1e-300
    assert_close(x.grad, 1 / (1 + np.exp(-np.array([-700.0, -40.0, 0.0, 40.0, 700.0]))),
                 "sigmoid (eq 7)", rtol=1e-15, atol=1e-300)


def test_elu_is_silent_for_large_positive_inputs():
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        assert ag.elu(T([800.0])).item() == 800.0


def test_gradients_at_the_kinks():
    x = T([-1.0, 0.0, 1.0, 2.0], requires_grad=True)
    x.leaky_relu(0.1).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.1, 0.1, 1.0, 1.0])
    x.grad = None
    x.clip(0.0, 1.0).sum().backward()                # bounds included, as torch.clamp
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 0.0])
    x.grad = None
    x.elu().sum().backward()
    assert_close(x.grad, [math.exp(-1.0), 1.0, 1.0, 1.0], rtol=1e-15, atol=0)


def test_clip_with_array_bounds_broadcasts():
    low = np.array([[0.0], [1.0]])
    check_gradients(lambda x: ag.clip(x, low, 2.5), np.array([[-0.4, 0.6, 3.1], [0.3, 1.7, 2.2]]))
    y = ag.clip(T([0.5, 1.5]), low, None)             # bounds may make the output larger
    assert y.shape == (2, 2)


@pytest.mark.parametrize("call, error, words", [
    (lambda: ag.maximum(T(np.ones((2, 3))), np.ones((4, 1, 2))), ag.ShapeError, "maximum: shapes (2, 3) and (4, 1, 2)"),
    (lambda: ag.minimum(np.ones(2), T(np.ones(3))), ag.ShapeError, "minimum: shapes (2,) and (3,)"),
    (lambda: ag.clip(T([1.0])), ValueError, "clip: give low, high or both"),
    (lambda: ag.clip(T([1.0]), 2.0, 1.0), ValueError, "clip: low 2 is above high 1"),
    (lambda: ag.clip(T([1.0]), "a", 1.0), ValueError, "clip: low must be a number"),
    (lambda: ag.clip(T([1.0]), float("nan"), 1.0), ValueError, "clip: low must be a number"),
    (lambda: ag.clip(T([1.0]), T(0.0, requires_grad=True), 1.0), TypeError, "clip: the bounds are constants"),
    (lambda: ag.clip(T(np.ones(3)), np.zeros(2), None), ag.ShapeError, "clip: bounds of shape (2,) cannot be broadcast to x of shape (3,)"),
    (lambda: ag.leaky_relu(T([1.0]), "0.1"), ValueError, "leaky_relu: negative_slope must be a finite number"),
    (lambda: ag.elu(T([1.0]), float("inf")), ValueError, "elu: alpha must be a finite number"),
    (lambda: ag.gelu(T([1.0]), approximate="erf"), ValueError, "gelu: approximate must be 'none'"),
])
def test_each_refusal_names_the_op(call, error, words):
    with pytest.raises(error) as caught:
        call()
    assert words in str(caught.value)


def test_formulas_name_the_rule():
    from autograd_lite.ops import elementwise as E
    assert E.SOFTPLUS.formula(0, "g", ["x", "y"], {}, [(2,)]) == "g ∘ sigmoid(x)"
    assert E.GELU_.formula(0, "g", ["x", "y"], {"approximate": "none"}, [(2,)]) == "g ∘ (Φ(x) + x·φ(x))"
    assert "½ at ties" in E.MAXIMUM.formula(1, "g", ["x", "y", "z"], {}, [(2,), (2,)])
    assert E.CLIP.formula(0, "g", ["x", "y"], {"low": -1.0, "high": None}, [(2,)]) == "g ∘ [-1 ≤ x ≤ ∞]"


@pytest.mark.parametrize("name", sorted(UNARY))
def test_float32_stays_float32(name):
    x = T(np.array([[0.3, -1.2], [2.0, 0.7]]), dtype=np.float32)
    assert UNARY[name][0](x).data.dtype == np.float32

"""Every primitive of ``autograd_lite.ops`` against central finite differences, in float64.

Each primitive's vjp is checked over scalars, vectors, matrices and 3-D arrays (hypothesis draws
the shapes and the values), plus the special points the issue names: ``0.0 ** 1.5`` has gradient
0, relu's gradient at 0 is 0, sigmoid is exact and silent for |z| up to 1000, softmax and
log_softmax are stable for huge inputs and act on axis 0 (samples are columns), and the fused
log-loss has gradient exactly (sigmoid(Z) - Y) / m (eq 78 with eq 76's 1/m). Broadcasting
patterns live in test_broadcasting.py, second derivatives in test_higher_order.py.
"""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import autograd_lite as ag
from autograd_lite import ops
from gradcheck_util import (BINARY, FAST, UNARY, arrays, assert_close, check_gradients, shapes,
                            values)


def silent():
    """Warnings as errors, and numpy's overflow / invalid / divide-by-zero as exceptions."""
    stack = warnings.catch_warnings()
    stack.__enter__()
    warnings.simplefilter("error")
    errstate = np.errstate(over="raise", invalid="raise", divide="raise")
    errstate.__enter__()

    class _Both:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            errstate.__exit__(*exc)
            stack.__exit__(*exc)
            return False
    return _Both()


# --- elementwise unary primitives (and the scalar-exponent pow) ----------------------------------

@pytest.mark.parametrize("name", sorted(UNARY))
@FAST
@given(data=st.data())
def test_unary_primitive_matches_finite_differences(name, data):
    fn, elements = UNARY[name]
    x = data.draw(arrays(shapes(), elements), label="x")
    check_gradients(fn, x)


@pytest.mark.parametrize("name, expected", [
    ("neg", lambda x: -x), ("exp", np.exp), ("log", np.log), ("tanh", np.tanh),
    ("relu", lambda x: np.maximum(x, 0)), ("abs", np.abs), ("sigmoid", lambda x: 1 / (1 + np.exp(-x))),
])
def test_unary_forward_values_match_numpy(name, expected):
    x = np.array([[0.3, 1.7, 2.5], [0.9, 0.1, 4.0]])
    if name not in ("log",):
        x = x * np.array([[1, -1, 1], [-1, 1, -1]])
    assert_close(UNARY[name][0](ag.Tensor(x)).data, expected(x), name, rtol=1e-15, atol=0)


def test_pow_with_scalar_exponent_at_zero_has_gradient_zero_not_nan():
    x = ag.Tensor(0.0, requires_grad=True)
    (x ** 1.5).backward()
    assert x.grad == 0.0
    x = ag.Tensor([0.0, 0.0], requires_grad=True)
    (x ** 0).sum().backward()                      # x ** 0 = 1 is constant, even at 0
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    x = ag.Tensor(0.0, requires_grad=True)
    (x ** 2).backward()
    assert x.grad == 0.0


def test_pow_with_tensor_exponent_at_zero_base_has_gradient_zero_not_nan():
    x = ag.Tensor([0.0, 0.0, 2.0], requires_grad=True)
    p = ag.Tensor([1.5, 3.0, 1.5], requires_grad=True)
    with silent():
        (x ** p).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.5 * 2.0 ** 0.5])
    # d(0 ** p)/dp = 0 (0 ** p is 0 for every p > 0); elsewhere x ** p log x.
    assert_close(p.grad, [0.0, 0.0, 2.0 ** 1.5 * np.log(2.0)], rtol=1e-15, atol=0)


def test_pow_with_zero_tensor_exponent_has_zero_base_gradient_at_zero():
    x = ag.Tensor([0.0, 3.0], requires_grad=True)
    (x ** ag.Tensor([0.0, 0.0])).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_pow_of_negative_base_with_integer_exponent():
    check_gradients(lambda x: x ** 3, np.array([-2.0, -0.5, 1.0]))
    check_gradients(lambda x, y: x ** y, np.array([-2.0, -0.5]), np.array([3.0, 2.0]),
                    wants=[True, False])


@FAST
@given(data=st.data())
def test_pow_with_tensor_exponent_both_inputs(data):
    shape = data.draw(shapes(), label="shape")
    x = data.draw(arrays(shape, values(0.2, 3.0)), label="x")
    y = data.draw(arrays(shape, values(-2.0, 2.0)), label="y")
    check_gradients(lambda a, b: a ** b, x, y)


def test_relu_and_abs_have_gradient_zero_at_zero():
    x = ag.Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])
    x = ag.Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 1.0])


@pytest.mark.parametrize("scale", [1.0, 30.0, 100.0, 700.0, 745.0, 1000.0, 1e6])
def test_sigmoid_is_stable_and_silent_for_huge_inputs(scale):
    z = np.array([-1.0, -0.5, 0.0, 0.5, 1.0]) * scale
    Z = ag.Tensor(z, requires_grad=True)
    with silent():
        A = Z.sigmoid()
        A.sum().backward()
    assert np.all(np.isfinite(A.data)) and np.all((A.data >= 0) & (A.data <= 1))
    np.testing.assert_allclose(A.data + A.data[::-1], 1.0, rtol=0, atol=1e-15)  # s(-z) = 1 - s(z)
    assert A.data[2] == 0.5
    if scale <= 700:   # where the textbook formula (eq 7) does not overflow, it must agree
        with np.errstate(over="ignore"):
            assert_close(A.data, 1 / (1 + np.exp(-z)), "eq 7", rtol=1e-14, atol=1e-300)
    assert_close(Z.grad, A.data * (1 - A.data), "eq 8", rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_is_eq_7_as_written_wherever_its_exponential_is_finite(dtype):
    """1 / (1 + e^-z) itself, bit for bit, for z down to where e^-z overflows (-709 in float64,
    -88 in float32); the dtype is kept, a 0-d array's too."""
    edge = 88.0 if dtype == np.float32 else 709.0
    z = np.concatenate([np.linspace(-edge, edge, 101), [0.0, -0.0, 1e-300, -1e-300]]).astype(dtype)
    A = ag.Tensor(z, dtype=dtype).sigmoid()
    assert A.dtype == dtype
    np.testing.assert_array_equal(A.data, (1 / (1 + np.exp(-z))).astype(dtype))
    scalar = ag.Tensor(np.asarray(-3.0, dtype), dtype=dtype).sigmoid()
    assert scalar.dtype == dtype and scalar.shape == ()
    one = dtype(1.0)  # numpy 1 makes 1.0 + a float32 scalar a float64
    assert scalar.item() == (one / (one + np.exp(np.asarray(3.0, dtype)))).item()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_sigmoid_past_the_overflow_is_eq_7_wherever_it_can_be_and_e_to_the_z_elsewhere(dtype):
    """An array where e^-z overflows in some elements (past -709 in float64, -88 in float32,
    -11 in float16) and not in others, nan among them: eq 7 as written bit for bit wherever
    e^-z is finite, e^z (its tiny value, not 0) where it is not, and no warning."""
    edge = float(np.log(np.finfo(dtype).max))
    z = np.array([-3 * edge, -edge - 0.5, -edge + 0.5, -2.5, -0.3, 0.0, 0.3, 2 * edge, np.nan,
                  -np.inf, np.inf], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ag.Tensor(z, dtype=dtype).sigmoid().data
    assert s.dtype == dtype
    with np.errstate(over="ignore"):
        e = np.exp(-z)
    finite = np.isfinite(e) | np.isnan(z)
    np.testing.assert_array_equal(s[finite], (1 / (1 + e))[finite].astype(dtype))
    np.testing.assert_array_equal(s[~finite], np.exp(z[~finite]))
    assert s[1] > 0 or dtype == np.float16  # e^-(edge + 0.5) is a subnormal, kept


@FAST
@given(dtype=st.sampled_from([np.float64, np.float32]), data=st.data(),
       shape=st.sampled_from([(), (1,), (3, 4), (2, 1, 5)]))
def test_sigmoid_is_eq_7_or_its_tail_for_any_values(dtype, shape, data):
    """Any values, the overflow's edge and past it included: eq 7 as written bit for bit
    where e^-z is finite, e^z where it is not, the dtype and shape kept, and no warning."""
    edge = float(np.log(np.finfo(dtype).max))
    values = st.one_of(st.floats(-3 * edge, 3 * edge, width=np.finfo(dtype).bits),
                       st.floats(-edge - 1, -edge + 1, width=np.finfo(dtype).bits),
                       st.sampled_from([np.inf, -np.inf, np.nan]))
    z = np.asarray(data.draw(st.lists(values, min_size=max(1, math.prod(shape)),
                                      max_size=max(1, math.prod(shape)))), dtype).reshape(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ops.SIGMOID.forward(z)
    assert s.dtype == dtype and s.shape == shape
    with np.errstate(over="ignore"):
        e = np.exp(-z)
        one = dtype(1.0)
        expected = np.where(np.isinf(e) & ~np.isnan(z), np.exp(z), one / (one + e))
    np.testing.assert_array_equal(s, expected)


def test_sigmoid_of_large_negative_input_keeps_relative_precision():
    # e^-z / (1 + e^-z) computed as e^z / (1 + e^z) for z < 0: tiny values, not rounded to 0.
    A = ag.Tensor([-30.0, -300.0, -700.0]).sigmoid()
    assert_close(A.data, np.exp([-30.0, -300.0, -700.0]) / (1 + np.exp([-30.0, -300.0, -700.0])),
                 rtol=1e-14, atol=0)


def test_tanh_is_silent_for_huge_inputs():
    Z = ag.Tensor([-1000.0, 1000.0], requires_grad=True)
    with silent():
        Z.tanh().sum().backward()
    np.testing.assert_array_equal(Z.grad, [0.0, 0.0])


def test_exp_and_log_are_inverse_and_log_gradient_is_reciprocal():
    x = ag.Tensor([0.25, 1.0, 4.0], requires_grad=True)
    y = x.log()
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 1 / np.array([0.25, 1.0, 4.0]))
    assert_close(y.exp().data, x.data, rtol=1e-15, atol=0)


# --- matrix product ------------------------------------------------------------------------------

@FAST
@given(n=st.integers(1, 4), k=st.integers(1, 4), m=st.integers(1, 4),
       kind=st.sampled_from(["2d@2d", "1d@2d", "2d@1d", "1d@1d"]), data=st.data())
def test_matmul_matches_finite_differences(n, k, m, kind, data):
    left = (k,) if kind.startswith("1d") else (n, k)
    right = (k,) if kind.endswith("1d") else (k, m)
    x = data.draw(arrays(left), label="x")
    y = data.draw(arrays(right), label="y")
    out = (ag.Tensor(x) @ ag.Tensor(y)).data
    assert_close(out, x @ y, kind, rtol=1e-14, atol=1e-14)
    check_gradients(lambda a, b: a @ b, x, y)
    check_gradients(lambda a, b: a @ b, x, y, wants=[True, False])
    check_gradients(lambda a, b: a @ b, x, y, wants=[False, True])


def test_matmul_gradient_is_eqs_79_and_81():
    # Z = W A: dW = dZ A^T (eq 79 without its 1/m) and dA = W^T dZ (eq 81).
    rng = np.random.default_rng(1)
    W_, A_, dZ = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    W, A = ag.Tensor(W_, requires_grad=True), ag.Tensor(A_, requires_grad=True)
    (W @ A).backward(dZ)
    assert_close(W.grad, dZ @ A_.T, "eq 79", rtol=1e-14, atol=1e-14)
    assert_close(A.grad, W_.T @ dZ, "eq 81", rtol=1e-14, atol=1e-14)


def test_ndarray_matmul_tensor_and_tensor_matmul_ndarray():
    W_ = np.arange(6.0).reshape(2, 3)
    A = ag.Tensor(np.ones((3, 4)), requires_grad=True)
    out = W_ @ A
    assert isinstance(out, ag.Tensor)
    out.sum().backward()
    assert_close(A.grad, W_.T @ np.ones((2, 4)), rtol=0, atol=0)
    check_gradients(lambda a: a @ np.ones((3, 2)), np.arange(6.0).reshape(2, 3))


# --- reductions ----------------------------------------------------------------------------------

AXES = [None, 0, 1, 2, -1, -2, (0, 2), (-1, 0), (0, 1, 2), ()]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_sum_and_mean_over_every_kind_of_axis(reduction, axis, keepdims):
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    out = getattr(ag.Tensor(x), reduction)(axis=axis, keepdims=keepdims)
    expected = getattr(np, reduction)(x, axis=axis, keepdims=keepdims)
    assert out.shape == expected.shape
    assert_close(out.data, expected, rtol=1e-14, atol=1e-14)
    check_gradients(lambda t: getattr(t, reduction)(axis=axis, keepdims=keepdims), x)
    check_gradients(lambda t: getattr(ag, reduction)(t, axis, keepdims), x)


@FAST
@given(data=st.data(), keepdims=st.booleans(), reduction=st.sampled_from(["sum", "mean"]))
def test_reductions_over_random_shapes_and_axes(data, keepdims, reduction):
    shape = data.draw(shapes(min_dims=1), label="shape")
    axes = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), max_size=len(shape),
                              unique_by=lambda a: a % len(shape)), label="axes")
    axis = tuple(axes) if len(axes) != 1 else axes[0]
    x = data.draw(arrays(shape), label="x")
    check_gradients(lambda t: getattr(t, reduction)(axis=axis, keepdims=keepdims), x)


def test_mean_gradient_is_one_over_count():
    # J = mean over m columns (eq 76): each element gets 1/m.
    x = ag.Tensor(np.ones((1, 8)), requires_grad=True)
    x.mean().backward()
    np.testing.assert_array_equal(x.grad, np.full((1, 8), 1 / 8))
    x = ag.Tensor(np.ones((3, 4)), requires_grad=True)
    x.mean(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((3, 4), 1 / 4))


# --- shape primitives ----------------------------------------------------------------------------

@pytest.mark.parametrize("axes", [None, (1, 0, 2), (2, 0, 1), (-1, 0, 1), (0, -1, -2)])
def test_transpose_with_any_permutation(axes):
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    fn = (lambda t: t.transpose()) if axes is None else (lambda t: t.transpose(*axes))
    assert_close(fn(ag.Tensor(x)).data, np.transpose(x, axes), rtol=0, atol=0)
    check_gradients(fn, x)
    check_gradients(lambda t: ag.transpose(t, axes), x)


def test_transpose_with_negative_axes_of_a_square_matrix():
    # A regression: argsort of negative axes used to leave the gradient untransposed.
    C = np.array([[1.0, 2.0], [3.0, 4.0]])
    x = ag.Tensor(np.zeros((2, 2)), requires_grad=True)
    (x.transpose(-1, 0) * C).sum().backward()
    np.testing.assert_array_equal(x.grad, C.T)


@FAST
@given(data=st.data())
def test_dot_T_matches_finite_differences(data):
    x = data.draw(arrays(shapes(max_dims=3)), label="x")
    check_gradients(lambda t: t.T, x)
    check_gradients(lambda t: t.T * np.arange(x.size, dtype=float).reshape(x.T.shape), x)


@pytest.mark.parametrize("new_shape", [(6,), (3, 2), (1, 6, 1), (-1, 2), (2, -1, 3), (6, 1)])
def test_reshape(new_shape):
    x = np.arange(6.0).reshape(2, 3)
    out = ag.Tensor(x).reshape(new_shape)
    assert out.shape == x.reshape(new_shape).shape
    check_gradients(lambda t: t.reshape(new_shape) * np.arange(6.0).reshape(out.shape), x)
    check_gradients(lambda t: t.reshape(*new_shape), x)
    check_gradients(lambda t: ag.reshape(t, new_shape), x)


@pytest.mark.parametrize("shape, target", [
    ((4, 1), (4, 5)), ((1, 5), (4, 5)), ((5,), (4, 5)), ((), (2, 3)), ((3, 1), (2, 3, 4)),
    ((2, 3), (2, 3)),
])
def test_broadcast_to(shape, target):
    x = np.random.default_rng(4).standard_normal(shape)
    out = ag.Tensor(x).broadcast_to(target)
    assert out.shape == target
    check_gradients(lambda t: t.broadcast_to(target), x)


def test_broadcast_bias_gradient_is_eq_80():
    # B[1] = b[1] repeated m times (eq 32): db = sum(dZ, axis=1) (eq 80 with 1/m inside dZ).
    dZ = np.random.default_rng(5).standard_normal((4, 7))
    b = ag.Tensor(np.zeros((4, 1)), requires_grad=True)
    b.broadcast_to((4, 7)).backward(dZ)
    assert_close(b.grad, dZ.sum(axis=1, keepdims=True), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("index", [
    0, -1, slice(1, None), (slice(None), 1), (1, 2), (Ellipsis, 0), (slice(None), None, 2),
    [0, 0, 2, 0], ([0, 1, 1], [2, 2, 0]), (slice(None), [3, 3, 0]), np.array([2, 2, 2]),
    (slice(None, None, -1), slice(0, 4, 2)),
], ids=lambda i: repr(i).replace(" ", ""))
def test_getitem_including_repeated_integer_indices(index):
    x = np.random.default_rng(6).standard_normal((3, 4))
    assert_close(ag.Tensor(x)[index].data, x[index], rtol=0, atol=0)
    check_gradients(lambda t: t[index], x)


def test_getitem_repeated_indices_add_up():
    x = ag.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


def test_getitem_with_a_boolean_mask():
    x_ = np.array([[1.0, -2.0], [-3.0, 4.0]])
    x = ag.Tensor(x_, requires_grad=True)
    x[x_ > 0].sum().backward()
    np.testing.assert_array_equal(x.grad, (x_ > 0) * 1.0)


def test_getitem_gradient_does_not_change_the_forward_value():
    # A basic slice is a view of the input: the engine must not write into it in backward.
    x = ag.Tensor(np.arange(4.0), requires_grad=True)
    part = x[1:3]
    (part * 2).sum().backward()
    np.testing.assert_array_equal(x.data, np.arange(4.0))
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 2.0, 0.0])


# --- softmax family ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@FAST
@given(data=st.data())
def test_softmax_family_matches_finite_differences(name, data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = data.draw(arrays(shape), label="x")
    check_gradients(lambda t: getattr(t, name)(axis=axis), x)
    check_gradients(lambda t: getattr(ag, name)(t, axis), x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_default_axis_is_0_samples_are_columns(name):
    x = np.random.default_rng(7).standard_normal((3, 5))   # 3 classes, m = 5 samples
    out = getattr(ag.Tensor(x), name)().data
    e = np.exp(x - x.max(axis=0))
    expected = e / e.sum(axis=0)
    if name == "log_softmax":
        expected = np.log(expected)
    assert_close(out, expected, name, rtol=1e-14, atol=1e-15)
    if name == "softmax":
        np.testing.assert_allclose(out.sum(axis=0), np.ones(5), rtol=1e-15)
    check_gradients(lambda t: getattr(t, name)(), x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shift", [0.0, 1000.0, -1000.0, 1e5, -1e5])
def test_softmax_family_is_stable_for_huge_inputs(name, shift):
    # Integer-valued x, so x + shift is exact and the shift must cancel (softmax(x + c) = softmax(x)).
    x = np.array([[1.0, -2.0], [2.0, 0.0], [3.0, 5.0]])
    with silent():
        shifted = getattr(ag.Tensor(x + shift), name)()
    reference = getattr(ag.Tensor(x), name)()
    # log_softmax = x - logsumexp(x) cancels |shift| in float64: allow its rounding, ~1e-16 |shift|.
    assert_close(shifted.data, reference.data, name, rtol=1e-12, atol=1e-14 * max(1.0, abs(shift)))


def test_softmax_of_the_largest_floats_is_a_probability_vector():
    with silent():
        out = ag.softmax(ag.Tensor([[1e300, 0.0], [-1e300, 0.0], [0.0, 1e308]]))
    np.testing.assert_array_equal(out.data, [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])


def test_log_softmax_of_a_huge_gap_is_finite_and_exact():
    with silent():
        out = ag.log_softmax(ag.Tensor([[1000.0], [-1000.0]]))
    np.testing.assert_array_equal(out.data, [[0.0], [-2000.0]])


def test_log_softmax_equals_log_of_softmax():
    x = np.random.default_rng(8).standard_normal((4, 3))
    assert_close(ag.Tensor(x).log_softmax().data, ag.Tensor(x).softmax().log().data,
                 rtol=1e-13, atol=1e-14)


# --- the losses ----------------------------------------------------------------------------------

def _stable_log_loss(z, y):
    """Eq 1 with A = s(z) (eq 7), written in logits; averaged over the m columns (eq 76)."""
    m = z.shape[-1]
    return np.sum(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))) / m


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (3, 4), (6,)])
def test_bce_with_logits_value_and_gradient_exactly_sigmoid_minus_y_over_m(shape):
    rng = np.random.default_rng(9)
    z = rng.standard_normal(shape) * 3
    y = (rng.random(shape) > 0.5) * 1.0
    m = shape[-1]
    Z = ag.Tensor(z, requires_grad=True)
    J = ag.binary_cross_entropy_with_logits(Z, y)
    assert J.shape == ()
    assert_close(J.data, _stable_log_loss(z, y), rtol=1e-14, atol=0)
    A = 1 / (1 + np.exp(-z))
    assert_close(J.data, np.sum(-y * np.log(A) - (1 - y) * np.log(1 - A)) / m, "eq 1, 76",
                 rtol=1e-12, atol=0)
    J.backward()
    # Exactly eq 78's dZ[N] = A[N] - Y with eq 76's 1/m, where A is the engine's own sigmoid.
    np.testing.assert_array_equal(Z.grad, (ag.sigmoid(z).data - y) / m)
    check_gradients(ag.binary_cross_entropy_with_logits, z, y)


@pytest.mark.parametrize("z, y", [(1000.0, 0.0), (-1000.0, 1.0), (1000.0, 1.0), (-1000.0, 0.0),
                                  (40.0, 0.0), (-40.0, 1.0)])
def test_bce_with_logits_is_exact_where_the_sigmoid_saturates(z, y):
    Z = ag.Tensor([[z]], requires_grad=True)
    with silent():
        J = ag.binary_cross_entropy_with_logits(Z, ag.Tensor([[y]]))
        J.backward()
    assert np.isfinite(J.item())
    assert_close(J.data, _stable_log_loss(np.array([[z]]), np.array([[y]])), rtol=1e-15, atol=0)
    expected_grad = (0.0 if z < 0 else 1.0) - y if abs(z) == 1000 else ag.sigmoid(z).item() - y
    assert_close(Z.grad, [[expected_grad]], rtol=1e-15, atol=0)


@FAST
@given(data=st.data())
def test_bce_with_logits_matches_finite_differences(data):
    shape = data.draw(shapes(min_dims=1, max_dims=2), label="shape")
    z = data.draw(arrays(shape, values(-6.0, 6.0)), label="Z")
    y = data.draw(arrays(shape, values(0.0, 1.0)), label="Y")
    check_gradients(ag.binary_cross_entropy_with_logits, z, y)
    check_gradients(ag.binary_cross_entropy_with_logits, z, y, wants=[True, False])


@FAST
@given(data=st.data())
def test_binary_cross_entropy_is_eq_1_averaged_as_eq_76(data):
    shape = data.draw(shapes(min_dims=1, max_dims=2), label="shape")
    a = data.draw(arrays(shape, values(0.02, 0.98)), label="A")
    y = data.draw(arrays(shape, st.sampled_from([0.0, 1.0])), label="Y")
    m = shape[-1]
    J = ag.binary_cross_entropy(ag.Tensor(a), ag.Tensor(y))
    assert_close(J.data, np.sum(-y * np.log(a) - (1 - y) * np.log(1 - a)) / m,
                 rtol=1e-13, atol=0)
    check_gradients(ag.binary_cross_entropy, a, y, wants=[True, False])


def test_binary_cross_entropy_does_not_clamp_its_gradient():
    # dJ/dA = (-(Y/A) + (1-Y)/(1-A)) / m (eq 77 with eq 76's 1/m), unchanged near 0 and 1.
    a = np.array([[1e-12, 0.5, 1 - 1e-12]])
    y = np.array([[1.0, 1.0, 0.0]])
    A = ag.Tensor(a, requires_grad=True)
    ag.binary_cross_entropy(A, y).backward()
    assert_close(A.grad, (-(y / a) + (1 - y) / (1 - a)) / 3, "eq 77", rtol=1e-12, atol=0)


def test_composed_and_fused_log_loss_agree():
    # The composed loss (sigmoid, then eq 1) and the fused primitive must agree where both work.
    rng = np.random.default_rng(10)
    z = rng.standard_normal((1, 6)) * 2
    y = (rng.random((1, 6)) > 0.5) * 1.0
    Z1, Z2 = ag.Tensor(z, requires_grad=True), ag.Tensor(z, requires_grad=True)
    J1 = ag.binary_cross_entropy(Z1.sigmoid(), y, fuse=False)   # from A (xlogy), not from Z
    J2 = ag.binary_cross_entropy_with_logits(Z2, y)
    J1.backward()
    J2.backward()
    assert_close(J1.data, J2.data, rtol=1e-13, atol=0)
    assert_close(Z1.grad, Z2.grad, rtol=1e-12, atol=1e-16)


# --- binary primitives with the same shape, constants, and numbers on either side -----------------

@pytest.mark.parametrize("name", sorted(BINARY))
@FAST
@given(data=st.data(), wants=st.sampled_from([(True, True), (True, False), (False, True)]))
def test_binary_primitive_matches_finite_differences(name, data, wants):
    fn, x_elements, y_elements = BINARY[name]
    shape = data.draw(shapes(), label="shape")
    x = data.draw(arrays(shape, x_elements), label="x")
    y = data.draw(arrays(shape, y_elements), label="y")
    check_gradients(fn, x, y, wants=wants)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_primitive_with_a_python_number_on_either_side(name):
    fn = BINARY[name][0]
    x = np.array([[0.5, 1.5], [2.0, 2.5]])
    check_gradients(lambda t: fn(t, 1.5), x)
    check_gradients(lambda t: fn(1.5, t), x)
    check_gradients(lambda t: fn(t, np.float64(0.75)), x)
    check_gradients(lambda t: fn(np.full((2, 2), 1.25), t), x)


# --- user-defined primitives, and every primitive has a test ----------------------------------------

class Cube(ag.Primitive):
    """A user-defined primitive: x ** 3 with its vjp 3 x^2 g."""
    name = "cube"

    def forward(self, x):
        return x ** 3

    def vjp(self, g, inputs, output, wants):
        (x,) = inputs
        return (3 * g * x * x,)


def test_a_user_defined_primitive_records_and_differentiates():
    cube = Cube()
    x = ag.Tensor([1.0, -2.0], requires_grad=True)
    y = cube(x)
    assert isinstance(y, ag.Tensor) and y.op == "cube"
    np.testing.assert_array_equal(y.data, [1.0, -8.0])
    check_gradients(lambda t: cube(t), np.array([[0.5, -1.5], [2.0, 1.0]]))
    # The same rule differentiates again (its vjp uses only operators): d2/dx2 x^3 = 6x.
    second = ag.grad(lambda t: ag.grad(lambda u: cube(u).sum())(t).sum())(ag.Tensor([1.0, -2.0]))
    np.testing.assert_allclose(second.data, [6.0, -12.0])


def test_calling_a_built_in_primitive_directly():
    y = ops.EXP(ag.Tensor([0.0, 1.0], requires_grad=True))
    assert y.op == "exp" and y.requires_grad
    np.testing.assert_allclose(y.data, [1.0, np.e])


# The primitives exercised by this file (first order) and test_higher_order.py (index_add is
# getitem's vjp, differentiated there). A primitive added to ops without a test fails here.
COVERED = {"add", "sub", "mul", "div", "pow", "matmul", "neg", "exp", "log", "sigmoid", "tanh",
           "relu", "abs", "sum", "mean", "reshape", "transpose", "broadcast_to", "getitem",
           "index_add", "softmax", "log_softmax", "binary_cross_entropy_with_logits"}


def test_every_primitive_of_the_seed_is_covered_by_a_test():
    """Arithmetic and matmul whole, and every name above still a primitive (the others are held
    to finite differences in their own files and in test_every_primitive)."""
    seed = {value.name for module in (ops.arithmetic, ops.matmul) for value in vars(module).values()
            if isinstance(value, ops.Primitive) and value.differentiable}
    assert seed - COVERED == set(), "primitives without a finite-difference test"
    assert COVERED <= {op.name for op in ops.PRIMITIVES}

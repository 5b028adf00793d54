"""Higher order from the same vjp rules: ``ag.grad``, grad of grad, Hessian-vector products.

Second derivatives are checked two ways: against the analytic ones (sigmoid'' = s(1-s)(1-2s),
from eq 8 differentiated again; tanh''; (x^3)'' = 6x; ...) and against central finite differences
of the first-order gradient, for every primitive, so every vjp is shown to be differentiable
again under ``create_graph``. ``backward()`` itself stays first order: it fills ndarrays.
"""
import doctest
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import autograd_lite as ag
from gradcheck_util import (BINARY, FAST, UNARY, arrays, assert_close, shapes, value_of,
                            values)

T = ag.Tensor
FD_EPS = 1e-5


def first_order_gradient(f, x):
    """df/dx at x (an ndarray) by ``backward()``: the first-order engine, no create_graph."""
    leaf = T(x, requires_grad=True)
    f(leaf).backward()
    return leaf.grad


def check_hvp_against_gradient_differences(f, x, v, rtol=1e-5, atol=1e-6):
    """H v by reverse over reverse vs (grad f(x + eps v) - grad f(x - eps v)) / (2 eps)."""
    hv = ag.hvp(f, T(x), v)
    assert isinstance(hv, ag.Tensor) and hv.shape == x.shape
    expected = (first_order_gradient(f, x + FD_EPS * v)
                - first_order_gradient(f, x - FD_EPS * v)) / (2 * FD_EPS)
    assert_close(hv.data, expected, "H v", rtol, atol)


def second(f):
    """d2f/dx2 elementwise, for an elementwise f: grad of sum(grad of sum(f))."""
    return ag.grad(lambda t: ag.grad(lambda u: f(u).sum())(t).sum())


# --- against analytic derivatives ------------------------------------------------------------------

Z_ = np.array([-1000.0, -30.0, -4.0, -1.0, -0.25, 0.0, 0.5, 2.0, 7.0, 30.0, 1000.0])


def test_sigmoid_second_and_third_derivatives_from_eq_8():
    s = 1 / (1 + np.exp(-np.clip(Z_, -700, 700)))
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        d1 = ag.grad(lambda z: z.sigmoid().sum())(T(Z_))
        d2 = second(lambda z: z.sigmoid())(T(Z_))
        d3 = ag.grad(lambda z: second(lambda u: u.sigmoid())(z).sum())(T(Z_))
    assert_close(d1.data, s * (1 - s), "s' = s(1-s), eq 8", rtol=1e-12, atol=1e-300)
    assert_close(d2.data, s * (1 - s) * (1 - 2 * s), "s'' = s(1-s)(1-2s)", rtol=1e-9, atol=1e-300)
    assert_close(d3.data, s * (1 - s) * (1 - 6 * s + 6 * s * s), "s'''", rtol=1e-8, atol=1e-300)


@pytest.mark.parametrize("name, f, d2", [
    ("tanh", lambda x: x.tanh(), lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    ("x**3", lambda x: x ** 3, lambda x: 6 * x),
    ("x**3 (Tensor exponent)", lambda x: x ** T(3.0), lambda x: 6 * x),
    ("x**0.5", lambda x: x.sqrt(), lambda x: -0.25 * x ** -1.5),
    ("exp", lambda x: x.exp(), np.exp),
    ("log", lambda x: x.log(), lambda x: -1 / x ** 2),
    ("1/x", lambda x: 1.0 / x, lambda x: 2 / x ** 3),
    ("2**x", lambda x: 2.0 ** x, lambda x: np.log(2.0) ** 2 * 2.0 ** x),
    ("relu", lambda x: x.relu() * x, lambda x: 2.0 * (x > 0)),
    ("abs", lambda x: x.abs() * 3.0, lambda x: 0.0 * x),
    ("x * x", lambda x: x * x, lambda x: 2.0 + 0 * x),
])
def test_second_derivative_against_the_analytic_one(name, f, d2):
    x = np.array([0.3, 0.7, 1.0, 1.9, 3.0])
    if name in ("tanh", "x**3", "relu", "abs", "x * x", "1/x", "2**x", "x**3 (Tensor exponent)"):
        x = x * np.array([1, -1, 1, -1, 1])
    assert_close(second(f)(T(x)).data, d2(x), name, rtol=1e-12, atol=1e-12)


def test_mixed_second_derivative_of_pow_at_exponent_zero():
    # d/dy d/dx x^y = x^(y-1) (1 + y log x): at y = 0 it is 1/x, not 0 (a regression).
    dx = lambda x, y: ag.grad(lambda a: a ** y)(x)                        # noqa: E731
    for x in (0.5, 2.0, 3.0):
        for y in (0.0, 1.0, 2.5):
            mixed = ag.grad(lambda b: dx(T(x), b), argnums=0)(T(y)).item()
            assert_close(mixed, x ** (y - 1) * (1 + y * np.log(x)), f"x={x}, y={y}", 1e-13, 0)
    # and at base 0 with exponent 0, x^0 = 1 is constant: d/dx is 0, not nan
    assert dx(T(0.0), T(0.0)).item() == 0.0


def test_third_derivative_of_x_cubed_is_6_and_fourth_is_0():
    d3 = ag.grad(ag.grad(ag.grad(lambda x: x ** 3)))
    d4 = ag.grad(ag.grad(ag.grad(ag.grad(lambda x: x ** 3))))
    assert d3(T(2.5)).item() == 6.0 and d3(2.0).item() == 6.0
    assert d4(T(2.5)).item() == 0.0


def test_grad_returns_differentiable_tensors_and_backward_fills_ndarrays():
    x = T([0.5, -1.5], requires_grad=True)
    g = ag.grad(lambda t: (t ** 3).sum())(x)          # 3 x^2, with a graph of its own
    assert isinstance(g, ag.Tensor) and g.requires_grad
    assert x.grad is None                              # ag.grad does not touch .grad
    assert_close(g.data, 3 * x.data ** 2, rtol=1e-15, atol=0)
    g.sum().backward()                                 # backward through the gradient: 6 x
    assert isinstance(x.grad, np.ndarray)
    assert_close(x.grad, 6 * x.data, rtol=1e-15, atol=0)
    y = T([2.0], requires_grad=True)
    (y ** 3).sum().backward()
    assert type(y.grad) is np.ndarray                  # first order: a plain array


def test_grad_with_several_arguments_and_argnums():
    def f(W, b):
        return ((W @ np.ones((3, 2)) + b) ** 2).sum()
    W_, b_ = np.arange(6.0).reshape(2, 3), np.array([[1.0], [-1.0]])
    dW, db = ag.grad(f, argnums=(0, 1))(T(W_), T(b_))
    Z = W_ @ np.ones((3, 2)) + b_
    assert_close(dW.data, 2 * Z @ np.ones((3, 2)).T, rtol=1e-15, atol=0)     # eq 79's shape
    assert_close(db.data, 2 * Z.sum(axis=1, keepdims=True), rtol=1e-15, atol=0)  # eq 80
    # d/db of d/dW: mixed second derivative, through the same rules.
    mixed = ag.grad(lambda W, b: ag.grad(f)(W, b).sum(), argnums=1)(T(W_), T(b_))
    assert_close(mixed.data, np.full((2, 1), 2 * 3 * 2.0), rtol=1e-15, atol=0)
    value, dW_only = ag.value_and_grad(f)(W_, b_)
    assert_close(value.data, (Z ** 2).sum(), rtol=1e-15, atol=0)
    assert_close(dW_only.data, dW.data, rtol=0, atol=0)


def test_grad_is_zero_for_an_argument_the_function_ignores():
    g = ag.grad(lambda x, y: (x * 2).sum(), argnums=1)(T([1.0]), T([[1.0, 2.0]]))
    np.testing.assert_array_equal(g.data, np.zeros((1, 2)))
    assert_close(second(lambda x: x * 2.0)(T([1.0, 2.0])).data, [0.0, 0.0], rtol=0, atol=0)


def test_grad_works_inside_no_grad():
    with ag.no_grad():
        assert second(lambda x: x ** 3)(T([2.0])).item() == 12.0
        assert not ag.is_grad_enabled()


def test_grad_of_grad_through_repeated_indexing_uses_index_add_and_back():
    # f(x) = sum(x[[0, 0, 2]]^3) = 2 x0^3 + x2^3: its gradient scatters with index_add, whose vjp
    # is getitem again; the third derivative goes through both.
    f = lambda x: (x[[0, 0, 2]] ** 3).sum()   # noqa: E731
    x = T([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ag.grad(f)(x).data, [6.0, 0.0, 27.0])
    g2 = ag.grad(lambda t: ag.grad(f)(t).sum())(x)
    np.testing.assert_array_equal(g2.data, [12.0, 0.0, 18.0])
    g3 = ag.grad(lambda t: ag.grad(lambda u: ag.grad(f)(u).sum())(t).sum())(x)
    np.testing.assert_array_equal(g3.data, [12.0, 0.0, 6.0])


# --- Hessian-vector products ---------------------------------------------------------------------

def test_hvp_of_a_quadratic_form_and_a_cubic_is_exact():
    rng = np.random.default_rng(13)
    A = rng.standard_normal((4, 4))
    x, v = rng.standard_normal(4), rng.standard_normal(4)
    hv = ag.hvp(lambda t: t @ (A @ t), T(x), v)       # H = A + A^T
    assert_close(hv.data, (A + A.T) @ v, rtol=1e-13, atol=1e-14)
    hv = ag.hvp(lambda t: (t ** 3).sum(), x, T(v))    # H = diag(6 x)
    assert_close(hv.data, 6 * x * v, rtol=1e-14, atol=0)


def test_hvp_of_the_logistic_log_loss_is_X_S_X_T_over_m():
    # J(w) = (1/m) sum L(y, s(w^T x)), eqs 1, 7, 76: H = X diag(s(1-s)) X^T / m.
    rng = np.random.default_rng(14)
    X, Y = rng.standard_normal((3, 6)), (rng.random((1, 6)) > 0.5) * 1.0
    w, v = rng.standard_normal((1, 3)), rng.standard_normal((1, 3))
    s = 1 / (1 + np.exp(-(w @ X)))
    H = X @ np.diag((s * (1 - s)).ravel()) @ X.T / 6
    for loss in (lambda W: ag.binary_cross_entropy_with_logits(W @ X, Y),
                 lambda W: ag.binary_cross_entropy((W @ X).sigmoid(), Y, fuse=False)):
        assert_close(ag.hvp(loss, T(w), v).data, (H @ v.T).T, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("name", sorted(UNARY))
@FAST
@given(data=st.data())
def test_hvp_of_every_unary_primitive_against_differences_of_the_gradient(name, data):
    fn, elements = UNARY[name]
    x = data.draw(arrays(shapes(max_dims=2), elements), label="x")
    v = data.draw(arrays(x.shape, values(-1.0, 1.0)), label="v")
    weights = np.random.default_rng(0).standard_normal(value_of(fn, [x]).shape)
    f = lambda t: (fn(t) * weights).sum()    # noqa: E731
    # Stay inside the smooth domain: the step eps * v must not cross a kink or leave the domain.
    check_hvp_against_gradient_differences(f, x, v)


@pytest.mark.parametrize("name", sorted(BINARY))
@FAST
@given(data=st.data())
def test_hvp_of_every_binary_primitive_with_broadcasting(name, data):
    fn, x_elements, y_elements = BINARY[name]
    x_shape, y_shape = data.draw(hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=2, max_side=3), label="shapes").input_shapes
    x = data.draw(arrays(x_shape, x_elements), label="x")
    y = data.draw(arrays(y_shape, y_elements), label="y")
    v = data.draw(arrays(x_shape, values(-1.0, 1.0)), label="v")
    w = data.draw(arrays(y_shape, values(-1.0, 1.0)), label="w")
    # Differentiate in x, then in y, each with the other held as the drawn constant; both
    # operands appear so each vjp's dependence on the other input is exercised.
    check_hvp_against_gradient_differences(lambda t: (fn(t, T(y)) ** 2).sum(), x, v)
    check_hvp_against_gradient_differences(lambda t: (fn(T(x), t) ** 2).sum(), y, w)
    # Mixed: d/dy of <d/dx f(x, y), v> against differences in y of the first-order d/dx.
    f = lambda a, b: (fn(a, b) ** 2).sum()   # noqa: E731
    mixed = ag.grad(lambda b: (ag.grad(f)(T(x), b) * v).sum())(T(y))

    def dx(y_value):
        leaf = T(x, requires_grad=True)
        f(leaf, T(y_value)).backward()
        return float(np.sum(leaf.grad * v))
    expected = np.zeros_like(y)
    for index in np.ndindex(*y.shape):
        step = np.zeros_like(y)
        step[index] = FD_EPS
        expected[index] = (dx(y + step) - dx(y - step)) / (2 * FD_EPS)
    assert_close(mixed.data, expected, "mixed", rtol=1e-5, atol=1e-6)


STRUCTURAL = {
    "matmul 2-D": (lambda t: ((t @ np.arange(1.0, 7.0).reshape(3, 2)) ** 2).sum(), (2, 3)),
    "matmul left 1-D": (lambda t: ((t @ np.arange(1.0, 7.0).reshape(3, 2)).sigmoid()).sum(), (3,)),
    "matmul right 1-D": (lambda t: ((np.arange(1.0, 7.0).reshape(2, 3) @ t).tanh()).sum(), (3,)),
    "matmul x @ x.T": (lambda t: ((t @ t.T) ** 2).sum(), (2, 3)),
    "vector @ vector": (lambda t: (t @ t) ** 2, (3,)),
    "sum axis 0": (lambda t: (t.sum(axis=0) ** 3).sum(), (2, 3)),
    "sum keepdims": (lambda t: (t.sum(axis=-1, keepdims=True) * t).sum(), (2, 3)),
    "mean axis tuple": (lambda t: (t.mean(axis=(0, 1)) ** 3).sum(), (2, 3, 2)),
    "transpose": (lambda t: (t.transpose(1, -1, 0) ** 3 * np.arange(12.0).reshape(3, 2, 2)).sum(), (2, 3, 2)),
    ".T": (lambda t: ((t.T @ t) ** 2).sum(), (3, 2)),
    "reshape": (lambda t: (t.reshape(3, 2) ** 3 * np.arange(6.0).reshape(3, 2)).sum(), (2, 3)),
    "broadcast_to": (lambda t: (t.broadcast_to((2, 3)) ** 3 * np.arange(6.0).reshape(2, 3)).sum(), (2, 1)),
    "getitem repeated": (lambda t: (t[[0, 0, 2]] ** 3).sum(), (3,)),
    "getitem slice": (lambda t: (t[:, 1:] ** 3).sum() + (t[0] * t[1]).sum(), (2, 3)),
    "softmax": (lambda t: (t.softmax() * np.arange(6.0).reshape(3, 2)).sum(), (3, 2)),
    "softmax axis 1": (lambda t: (t.softmax(axis=1) ** 2).sum(), (3, 2)),
    "log_softmax": (lambda t: (t.log_softmax() * np.arange(6.0).reshape(3, 2)).sum(), (3, 2)),
    "bce with logits": (lambda t: ag.binary_cross_entropy_with_logits(t, np.array([[1.0, 0.0, 1.0]])), (1, 3)),
    "bce with logits in Y": (lambda t: ag.binary_cross_entropy_with_logits(
        np.array([[1.0, -2.0, 0.5]]), t.sigmoid()), (1, 3)),
    "bce composed": (lambda t: ag.binary_cross_entropy(t.sigmoid(), np.array([[1.0, 0.0]]),
                                                      fuse=False), (1, 2)),
    "bce fused from a sigmoid": (lambda t: ag.binary_cross_entropy(t.sigmoid(), np.array([[1.0, 0.0]])),
                                 (1, 2)),
    "neg": (lambda t: ((-t) ** 3).sum(), (2, 2)),
    "shared subexpression": (lambda t: ((t + t) * (t + t)).exp().sum(), (2,)),
}


@pytest.mark.parametrize("name", sorted(STRUCTURAL))
def test_hvp_of_the_structural_primitives(name):
    f, shape = STRUCTURAL[name]
    rng = np.random.default_rng(15)
    for _ in range(3):
        x = rng.uniform(-1.0, 1.0, shape)
        v = rng.standard_normal(shape)
        check_hvp_against_gradient_differences(f, x, v)


def test_hvp_of_a_two_layer_network_in_its_first_weights():
    # The seed's 3-4-1 network (eqs 26-29) with log-loss: curvature of J in W[1].
    rng = np.random.default_rng(16)
    X, Y = rng.standard_normal((3, 5)), (rng.random((1, 5)) > 0.5) * 1.0
    b1, W2, b2 = rng.standard_normal((4, 1)), rng.standard_normal((1, 4)), rng.standard_normal((1, 1))

    def J(W1):
        A1 = (W1 @ X + b1).sigmoid()
        return ag.binary_cross_entropy((W2 @ A1 + b2).sigmoid(), Y)
    check_hvp_against_gradient_differences(J, rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))


# --- the docstring examples run -------------------------------------------------------------------

def test_docstring_examples_of_the_engine_run():
    import autograd_lite
    from autograd_lite import losses, ops, transforms
    from autograd_lite.core import backward, graph, modes, tensor
    from autograd_lite.ops import arithmetic, base, elementwise, matmul, reduce, shape
    attempted = 0
    for module in (autograd_lite, ops, base, arithmetic, matmul, elementwise, reduce, shape,
                   ops.losses, graph, modes, backward, tensor, transforms, losses):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, f"{module.__name__}: {result.failed} docstring examples failed"
        attempted += result.attempted
    assert attempted >= 2

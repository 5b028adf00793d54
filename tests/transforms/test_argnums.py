"""What ``ag.grad`` differentiates with respect to: each argument once, each by its own partial
derivative, never an argument of integers (torch.func's and JAX's rules)."""
import numpy as np
import pytest

import autograd_lite as ag


def f(x, y):
    return (x * x * y).sum()  # df/dx = 2 x y, df/dy = x^2


@pytest.mark.parametrize("argnums", [(0, 0), (1, 1), (0, 1, 0), (-1, -1)])
def test_a_repeated_argnum_is_refused(argnums):
    with pytest.raises(ValueError, match=r"names argument -?\d more than once"):
        ag.grad(f, argnums)


def test_the_same_argument_by_a_positive_and_a_negative_number_is_refused_at_the_call():
    with pytest.raises(ValueError, match=r"argnums \(0, -2\) names argument 0 twice"):
        ag.grad(f, (0, -2))(ag.Tensor([1.0]), ag.Tensor([2.0]))


@pytest.mark.parametrize("argnums", [(), "0", (0.0,), (True,), [0, "a"]])
def test_argnums_of_another_kind_is_refused(argnums):
    with pytest.raises(TypeError, match="argnums must be an int or a non-empty tuple of ints"):
        ag.grad(f, argnums)


@pytest.mark.parametrize("requires_grad", [True, False])
def test_the_same_tensor_in_two_places_gets_a_partial_derivative_in_each(requires_grad):
    x = ag.Tensor([1.0, 2.0], requires_grad=requires_grad)
    dx, dy = ag.grad(f, (0, 1))(x, x)
    np.testing.assert_allclose(dx.data, 2 * x.data * x.data)  # 2 x y at y = x
    np.testing.assert_allclose(dy.data, x.data ** 2)          # x^2
    np.testing.assert_allclose(ag.grad(f, 0)(x, x).data, 2 * x.data * x.data)
    np.testing.assert_allclose(ag.grad(f, 1)(x, x).data, x.data ** 2)


def test_partials_of_a_tensor_passed_twice_differentiate_again():
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    # d/dx of sum(df/dy (x, x)) = d/dx sum(x^2) = 2 x
    second = ag.grad(lambda v: ag.grad(f, 1)(v, v).sum())(x)
    np.testing.assert_allclose(second.data, 2 * x.data)


@pytest.mark.parametrize("argument", [np.array([0, 2]), np.array([True, False, True]),
                                      ag.Tensor(np.array([0, 2]), dtype=np.int64), True])
def test_an_argument_of_integers_or_booleans_is_refused(argument):
    W = ag.Tensor(np.ones((3, 2)), requires_grad=True)
    with pytest.raises(TypeError, match=r"grad: argument 1 holds .* no gradient; leave it out"):
        ag.grad(lambda W, i: W[i].sum(), (0, 1))(W, argument)


def test_indices_left_out_of_argnums_are_fine_and_a_python_int_is_a_point():
    W = ag.Tensor(np.ones((3, 2)), requires_grad=True)
    dW = ag.grad(lambda W, i: W[i].sum())(W, np.array([0, 2]))
    np.testing.assert_array_equal(dW.data, [[1, 1], [0, 0], [1, 1]])
    assert ag.grad(lambda x: x * x)(3).item() == 6.0

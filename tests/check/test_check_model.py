"""check.compare_model: the three-way comparison run through an nn model's own forward pass."""
import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import check, nn


def problem(rng, sizes, loss, m=6):
    X = rng.standard_normal((sizes[0], m))
    if loss == "log-loss":
        Y = (rng.random((sizes[-1], m)) > 0.5) * 1.0
    elif loss == "cross-entropy":
        Y = np.eye(sizes[-1])[:, rng.integers(0, sizes[-1], m)]
    else:
        Y = rng.standard_normal((sizes[-1], m))
    return X, Y


@pytest.mark.parametrize("sizes, activations, loss", [
    ([3, 4, 1], "sigmoid", "log-loss"),                          # the seed's network
    ([4, 5, 5, 3], ["tanh", "relu", "softmax"], "cross-entropy"),
    ([2, 6, 1], ["tanh", "identity"], "mse"),                     # regression: no output activation
])
def test_correct_models_pass(sizes, activations, loss):
    rng = np.random.default_rng(len(sizes))
    model = nn.MLP(sizes, activations, rng=rng)
    result = check.compare_model(model, *problem(rng, sizes, loss), loss)
    assert result.passed, str(result)
    assert [row.label for row in result.rows][:4] == [f"d{q}[{len(sizes) - 1}]" for q in "AZWb"]


def test_sequential_with_a_bare_linear_output_counts_as_identity():
    rng = np.random.default_rng(1)
    model = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Tanh(), nn.Linear(4, 2, rng=rng))
    assert check.compare_model(model, *problem(rng, [3, 4, 2], "mse"), "mse").passed


class _WrongSigmoidPrimitive(ag.Primitive):
    name = "sigmoid"

    def forward(self, z):
        return 1 / (1 + np.exp(-z))

    def vjp(self, g, inputs, output, wants):
        return (g * output,)  # wrong: eq 8 says s (1 - s)


class _WrongSigmoid(nn.Sigmoid):
    def apply(self, Z):
        return _WrongSigmoidPrimitive()(Z)


def test_a_model_with_a_wrong_vjp_is_caught_at_the_right_place_and_blamed_on_autodiff():
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.Linear(3, 4, rng=rng), _WrongSigmoid(), nn.Linear(4, 1, rng=rng),
                          nn.Sigmoid())
    result = check.compare_model(model, *problem(rng, [3, 4, 1], "log-loss"))
    assert not result.passed
    assert result.first_failure.label == "dZ[1]"          # eq 82 is where g' enters
    assert result.explanation.startswith("Autodiff differs")
    assert "the activation g[1] that makes A[1]" in result.explanation


def test_the_models_parameters_and_grads_are_left_as_they_were():
    rng = np.random.default_rng(3)
    model = nn.MLP([3, 4, 1], "sigmoid", rng=rng)
    before = [p.data.copy() for p in model.parameters()]
    model.parameters()[0].grad = np.full((4, 3), 7.0)
    check.compare_model(model, *problem(rng, [3, 4, 1], "log-loss"))
    for p, value in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, value)
    np.testing.assert_array_equal(model.parameters()[0].grad, np.full((4, 3), 7.0))
    assert model.parameters()[1].grad is None


def test_models_that_are_not_a_chain_are_refused_clearly():
    class TwoInputs(nn.Module):
        def __init__(self):
            self.first = nn.Linear(2, 1)

        def forward(self, X):
            return self.first(X)

    with pytest.raises(TypeError, match="compare_model: needs an nn.MLP or an nn.Sequential"):
        check.compare_model(TwoInputs(), np.zeros((2, 3)), np.zeros((1, 3)), "mse")
    with pytest.raises(TypeError, match="does not fit the chain"):
        check.compare_model(nn.Sequential(nn.Tanh(), nn.Linear(2, 1)), np.zeros((2, 3)),
                            np.zeros((1, 3)), "mse")

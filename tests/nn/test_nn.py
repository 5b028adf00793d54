"""autograd_lite.nn: modules, parameter discovery, the seed's names, initialisers, and the
gradients of whole models against the hand derivation (reference, eqs 77-84) and finite
differences. None of this needs scikit-learn."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd_lite as ag
from autograd_lite import nn, reference
from autograd_lite.errors import ShapeError
from autograd_lite.losses import (binary_cross_entropy, binary_cross_entropy_with_logits,
                                  cross_entropy, mean_squared_error, softmax_cross_entropy)


def rng(seed=0):
    return np.random.default_rng(seed)


# --- Linear, eq 33 -------------------------------------------------------------------------------

def test_linear_shapes_follow_eqs_35_to_38():
    layer = nn.Linear(3, 4, rng=rng())
    assert layer.W.shape == (4, 3) and layer.b.shape == (4, 1)
    assert np.all(layer.b.data == 0)
    Z = layer(np.ones((3, 7)))
    assert Z.shape == (4, 7)
    np.testing.assert_allclose(Z.data, layer.W.data @ np.ones((3, 7)) + layer.b.data)


def test_linear_names_its_tensors_after_its_layer_and_scopes_them():
    layer = nn.Linear(3, 4, rng=rng(), layer=2)
    assert (layer.W.name, layer.b.name) == ("W[2]", "b[2]")
    Z = layer(np.ones((3, 2)))
    assert Z.name == "Z[2]" and Z.scope == ("layer 2",)
    plain = nn.Linear(3, 4, rng=rng())
    assert (plain.W.name, plain(np.ones((3, 1))).name) == ("W", "Z")


def test_linear_refuses_rows_and_one_dimensional_samples_with_the_shapes():
    layer = nn.Linear(3, 4, rng=rng(), layer=1)
    with pytest.raises(ShapeError, match=r"Linear\(3 -> 4\): layer 1: input has shape \(5, 3\), expected \(3, m\)"):
        layer(np.ones((5, 3)))
    with pytest.raises(ShapeError, match=r"reshape it to \(3, 1\)"):
        layer(np.ones(3))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_linear_refuses_bad_sizes(bad):
    with pytest.raises(ValueError, match="n_in must be a whole number"):
        nn.Linear(bad, 3)


# --- MLP, Sequential, the seed's network ------------------------------------------------------

def test_seed_network_is_3_4_1_sigmoid_with_small_random_weights():
    model = nn.MLP.seed_network(rng(0))
    assert [(name, p.name, p.shape) for name, p in model.named_parameters()] == [
        ("layers.0.W", "W[1]", (4, 3)), ("layers.0.b", "b[1]", (4, 1)),
        ("layers.1.W", "W[2]", (1, 4)), ("layers.1.b", "b[2]", (1, 1))]
    expected = np.random.default_rng(0).standard_normal((4, 3)) * 0.01
    np.testing.assert_array_equal(model.layers[0].W.data, expected)
    A = model(np.zeros((3, 5)))
    assert A.shape == (1, 5) and A.name == "A[2]"
    assert A.parents[0].name == "Z[2]"


def test_mlp_forward_is_eqs_33_34_layer_by_layer():
    model = nn.MLP([3, 5, 4, 2], ["relu", "tanh", "sigmoid"], rng=rng(1))
    X = rng(2).standard_normal((3, 6))
    expected = X
    for linear, g in zip(model.layers, [lambda z: np.maximum(z, 0), np.tanh, reference.sigmoid]):
        expected = g(linear.W.data @ expected + linear.b.data)
    np.testing.assert_allclose(model(X).data, expected, rtol=1e-12)


def test_mlp_auto_init_draws_he_for_relu_and_xavier_otherwise():
    model = nn.MLP([400, 300, 200], ["relu", "tanh"], rng=rng(3))
    assert np.std(model.layers[0].W.data) == pytest.approx(np.sqrt(2 / 400), rel=0.03)
    assert np.std(model.layers[1].W.data) == pytest.approx(np.sqrt(2 / 500), rel=0.03)


def test_mlp_refuses_bad_sizes_and_activation_counts():
    with pytest.raises(ValueError, match="at least two whole numbers"):
        nn.MLP([3])
    with pytest.raises(ValueError, match="2 activation"):
        nn.MLP([3, 4, 1, 1], ["relu", "relu"])
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.MLP([3, 1], "swish")


def test_same_generator_state_gives_the_same_network():
    first, second = nn.MLP([4, 6, 2], "tanh", rng=rng(7)), nn.MLP([4, 6, 2], "tanh", rng=rng(7))
    for (_, a), (_, b) in zip(first.named_parameters(), second.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    third = nn.MLP([4, 6, 2], "tanh", rng=rng(8))
    assert not np.array_equal(first.layers[0].W.data, third.layers[0].W.data)


def test_sequential_numbers_layers_and_activations_by_itself():
    model = nn.Sequential(nn.Linear(3, 4, rng=rng()), nn.Tanh(), nn.Linear(4, 2, rng=rng()), nn.Softmax())
    assert [p.name for p in model.parameters()] == ["W[1]", "b[1]", "W[2]", "b[2]"]
    assert [name for name, _ in model.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    A = model(np.ones((3, 5)))
    assert A.name == "A[2]" and A.scope == ("layer 2",)
    np.testing.assert_allclose(A.data.sum(axis=0), 1.0)
    assert len(model) == 4 and isinstance(model[-1], nn.Softmax)
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Linear", "Softmax"]


def test_identity_output_is_z_itself():
    model = nn.MLP([2, 1], "identity", rng=rng())
    assert model(np.ones((2, 3))).name == "Z[1]"


def test_repr_is_readable():
    text = repr(nn.MLP([3, 4, 1], rng=rng()))
    assert "MLP([3, 4, 1], 21 parameters" in text
    assert "(layers.0): Linear(n_in=3, n_out=4, layer=1) -> Sigmoid" in text
    nested = repr(nn.Sequential(nn.Linear(3, 4, rng=rng()), nn.ReLU()))
    assert nested == "Sequential(\n  (0): Linear(n_in=3, n_out=4, layer=1)\n  (1): ReLU(layer=1)\n)"
    assert repr(nn.Parameter(np.zeros((2, 3)), name="W[1]")) == "Parameter('W[1]', shape=(2, 3))"


# --- discovery ------------------------------------------------------------------------------

class Block(nn.Module):
    def __init__(self, seed):
        self.inner = nn.Linear(2, 2, rng=rng(seed))
        self.scale = nn.Parameter(np.ones((2, 1)))

    def forward(self, X):
        return self.inner(X) * self.scale


class Container(nn.Module):
    def __init__(self):
        self.first = Block(0)
        self.blocks = [Block(1), Block(2)]
        self.by_name = {"left": nn.Linear(2, 2, rng=rng(3))}
        self.constant = ag.Tensor(np.ones(2))   # no requires_grad: a constant, not a parameter
        self.note = "not a module"


def test_discovery_walks_nested_modules_lists_and_dicts_in_order():
    names = [name for name, _ in Container().named_parameters()]
    assert names == ["first.inner.W", "first.inner.b", "first.scale",
                     "blocks.0.inner.W", "blocks.0.inner.b", "blocks.0.scale",
                     "blocks.1.inner.W", "blocks.1.inner.b", "blocks.1.scale",
                     "by_name.left.W", "by_name.left.b"]
    model = Container()
    assert model.num_parameters() == 3 * (4 + 2 + 2) + 6
    assert [name for name, _ in model.named_modules()][:3] == ["", "first", "first.inner"]


def test_a_shared_parameter_or_module_is_listed_once_under_its_first_name():
    class Tied(nn.Module):
        def __init__(self):
            self.encoder = nn.Linear(3, 3, rng=rng())
            self.again = self.encoder
            self.layers = [self.encoder, nn.Linear(3, 3, rng=rng(1))]
            self.layers[1].W = self.encoder.W

    names = [name for name, _ in Tied().named_parameters()]
    assert names == ["encoder.W", "encoder.b", "layers.1.b"]


def test_a_module_cycle_does_not_loop_forever():
    parent = Block(0)
    parent.inner.back = parent
    assert len(parent.parameters()) == 3


def test_a_plain_tensor_that_requires_grad_is_refused_with_advice():
    class Careless(nn.Module):
        def __init__(self):
            self.W = ag.Tensor(np.ones((2, 2)), requires_grad=True)

    with pytest.raises(TypeError, match=r"Careless.W: .*assign nn.Parameter"):
        Careless()


def test_zero_grad_resets_every_parameter():
    model = nn.MLP([3, 4, 1], rng=rng())
    binary_cross_entropy(model(np.ones((3, 2))), np.ones((1, 2))).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_parameter_is_a_float64_leaf_that_requires_grad():
    p = nn.Parameter([[1, 2]])
    assert p.requires_grad and p.is_leaf and p.dtype == np.float64
    assert type(p * 2) is ag.Tensor


# --- initialisers ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, std", [
    ("small", lambda n_in, n_out: 0.01),
    ("xavier", lambda n_in, n_out: np.sqrt(2 / (n_in + n_out))),
    ("xavier_uniform", lambda n_in, n_out: np.sqrt(2 / (n_in + n_out))),
    ("he", lambda n_in, n_out: np.sqrt(2 / n_in)),
    ("he_uniform", lambda n_in, n_out: np.sqrt(2 / n_in)),
])
def test_initialisers_have_their_documented_spread(name, std):
    W = nn.Linear(300, 200, init=name, rng=rng(4)).W.data
    assert np.std(W) == pytest.approx(std(300, 200), rel=0.03)
    assert abs(np.mean(W)) < 0.1 * std(300, 200)


def test_uniform_initialisers_stay_inside_their_limit():
    assert np.abs(nn.init.xavier_uniform((20, 30), rng())).max() <= np.sqrt(6 / 50)
    assert np.abs(nn.init.he_uniform((20, 30), rng())).max() <= np.sqrt(6 / 30)


def test_a_callable_initialiser_and_bad_ones():
    layer = nn.Linear(2, 3, init=lambda shape, g: np.full(shape, 0.5))
    assert np.all(layer.W.data == 0.5)
    with pytest.raises(ValueError, match="unknown initialiser 'glorot'"):
        nn.Linear(2, 3, init="glorot")
    with pytest.raises(ValueError, match=r"returned shape \(3,\), expected \(3, 2\)"):
        nn.Linear(2, 3, init=lambda shape, g: np.zeros(3))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        nn.Linear(2, 3, rng=np.random.RandomState(0))


# --- gradients: the engine against the hand derivation and finite differences -------------------

LOSS_FUNCTIONS = {"log-loss": binary_cross_entropy, "mse": mean_squared_error,
                  "cross-entropy": cross_entropy}


def _model_from(W, b, activations):
    sizes = [W[0].shape[1]] + [w.shape[0] for w in W]
    model = nn.MLP(sizes, activations, rng=rng())
    for linear, w, c in zip(model.layers, W, b):
        linear.W.data, linear.b.data = w.copy(), c.copy()
    return model


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=2, max_size=4), m=st.integers(1, 6),
       hidden=st.sampled_from(["sigmoid", "tanh", "relu", "identity"]),
       output=st.sampled_from([("sigmoid", "log-loss"), ("identity", "mse"),
                               ("softmax", "cross-entropy"), ("tanh", "mse")]),
       seed=st.integers(0, 2**16))
def test_model_gradients_equal_the_reference_derivation(sizes, m, hidden, output, seed):
    """dW[l], db[l] from J.backward() on an nn.MLP equal eqs 79-80, 83-84 written by hand."""
    g_out, loss = output
    if g_out == "softmax" and sizes[-1] == 1:
        sizes = sizes[:-1] + [2]
    activations = [hidden] * (len(sizes) - 2) + [g_out]
    W, b, X, Y = reference.random_problem(sizes, activations, m, loss, seed)
    model = _model_from(W, b, activations)
    J = LOSS_FUNCTIONS[loss](model(X), Y)
    J.backward()
    derivation = reference.derive(W, b, X, Y, activations, loss, convention="autodiff")
    assert J.item() == pytest.approx(derivation.J, rel=1e-12)
    for l, linear in enumerate(model.layers, start=1):
        np.testing.assert_allclose(linear.W.grad, derivation.dW[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(linear.b.grad, derivation.db[l], rtol=1e-9, atol=1e-12)


def _finite_difference_check(model, J_of, eps=1e-6, tol=1e-7):
    model.zero_grad()
    J_of().backward()
    for name, parameter in model.named_parameters():
        numeric = np.zeros_like(parameter.data)
        for index in np.ndindex(parameter.shape):
            saved = parameter.data[index]
            parameter.data[index] = saved + eps
            up = J_of().item()
            parameter.data[index] = saved - eps
            down = J_of().item()
            parameter.data[index] = saved
            numeric[index] = (up - down) / (2 * eps)
        np.testing.assert_allclose(parameter.grad, numeric, rtol=tol, atol=tol, err_msg=name)


def test_skip_connection_shared_weights_and_two_inputs_differentiate_correctly():
    """Arbitrary networks written as plain Python in forward: checked by finite differences."""
    class Branchy(nn.Module):
        def __init__(self):
            generator = rng(5)
            self.left = nn.Linear(3, 4, rng=generator, layer=1)
            self.right = nn.Linear(2, 4, rng=generator)
            self.shared = nn.Linear(4, 4, rng=generator)       # used twice
            self.head = nn.Linear(4, 3, rng=generator)

        def forward(self, X1, X2):
            H = (self.left(X1) + self.right(X2)).tanh()
            H = H + self.shared(self.shared(H).sigmoid()).tanh()   # skip connection around it
            return self.head(H)

    model = Branchy()
    X1, X2 = rng(6).standard_normal((3, 5)), rng(7).standard_normal((2, 5))
    labels = np.array([0, 2, 1, 1, 0])
    _finite_difference_check(model, lambda: softmax_cross_entropy(model(X1, X2), labels))


def test_logits_model_with_the_fused_loss_matches_finite_differences():
    model = nn.MLP([4, 3, 1], ["relu", "identity"], rng=rng(8))
    X, Y = rng(9).standard_normal((4, 6)), (rng(10).random((1, 6)) > 0.5).astype(float)
    _finite_difference_check(model, lambda: binary_cross_entropy_with_logits(model(X), Y))


def test_the_package_docstring_example_runs():
    import doctest
    result = doctest.testmod(nn)
    assert result.attempted >= 3 and result.failed == 0


def test_functional_layer_is_eq_33():
    F = nn.functional
    W, b, A = rng().standard_normal((2, 3)), np.ones((2, 1)), rng(1).standard_normal((3, 4))
    np.testing.assert_allclose(F.linear(A, W, b).data, W @ A + b)
    assert F.softmax(np.zeros((4, 2))).data[0, 0] == pytest.approx(0.25)
    assert F.identity(A).shape == (3, 4)

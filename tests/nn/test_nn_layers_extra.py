"""train()/eval(), Dropout, BatchNorm, LayerNorm, Embedding and the activation modules:
values against numpy written from the definitions (PyTorch's semantics for the
running statistics), gradients against central finite differences, buffers saved and loaded,
and an error test for each refusal."""
import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import nn
from gradcheck_util import assert_close, check_gradients

T = ag.Tensor


# --- train() / eval() -------------------------------------------------------------------------

def test_train_and_eval_reach_every_module_and_return_it():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Sequential(nn.BatchNorm(4), nn.ReLU()))
    assert model.training and all(module.training for _, module in model.named_modules())
    assert model.eval() is model
    assert not any(module.training for _, module in model.named_modules())
    assert model.train() is model and model[2][0].training
    model.train(False)
    assert not model[1].training
    with pytest.raises(TypeError, match="Sequential.train: mode must be True or False"):
        model.train("yes")


# --- Dropout ----------------------------------------------------------------------------------

def test_dropout_is_inverted_while_training_and_the_identity_in_eval():
    X = T(np.ones((50, 400)), requires_grad=True)
    layer = nn.Dropout(0.3, rng=np.random.default_rng(0))
    Y = layer(X)
    kept = Y.data != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01                       # about p are dropped
    np.testing.assert_allclose(Y.data[kept], 1 / 0.7, rtol=1e-15)   # survivors scaled by 1/(1-p)
    assert abs(Y.data.mean() - 1.0) < 0.02                            # expectation kept
    g = np.random.default_rng(1).standard_normal(X.shape)
    Y.backward(g)
    assert_close(X.grad, g * Y.data, "dX = dY * mask", rtol=1e-15, atol=0)
    layer.eval()
    assert layer(X) is X
    assert nn.Dropout(0.0)(X) is X
    np.testing.assert_array_equal(nn.Dropout(1.0)(X).data, 0.0)


def test_dropout_masks_repeat_with_the_seed_and_differ_between_calls():
    a, b = nn.Dropout(0.5, rng=3), nn.Dropout(0.5, rng=3)
    x = np.ones((4, 6))
    first = a(x).data
    np.testing.assert_array_equal(first, b(x).data)
    assert not np.array_equal(first, a(x).data)
    np.testing.assert_array_equal(nn.functional.dropout(x, 0.5, training=False).data, x)


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", True])
def test_dropout_refuses_a_p_that_is_not_a_probability(p):
    with pytest.raises(ValueError, match="Dropout: p must be a probability in"):
        nn.Dropout(p)


# --- BatchNorm --------------------------------------------------------------------------------

def batch_norm_reference(x, axes, eps, gamma, beta):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


@pytest.mark.parametrize("shape", [(3, 8), (2, 3, 4, 5)])
def test_batch_norm_training_normalises_each_feature_over_the_samples(shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape) * 3 + 5
    layer = nn.BatchNorm(shape[0])
    layer.gamma.data = rng.standard_normal(layer.gamma.shape)
    layer.beta.data = rng.standard_normal(layer.beta.shape)
    axes = tuple(range(1, len(shape)))
    kept = (shape[0],) + (1,) * (len(shape) - 1)
    Y = layer(x)
    expected = batch_norm_reference(x, axes, 1e-5, layer.gamma.data.reshape(kept), layer.beta.data.reshape(kept))
    assert_close(Y.data, expected, rtol=1e-12, atol=1e-12)
    # PyTorch's running statistics after one batch: momentum 0.1, unbiased variance
    count = int(np.prod([shape[a] for a in axes]))
    assert_close(layer.running_mean, 0.1 * x.mean(axis=axes).reshape(-1, 1), rtol=1e-14, atol=0)
    assert_close(layer.running_var, 0.9 + 0.1 * x.var(axis=axes).reshape(-1, 1) * count / (count - 1),
                 rtol=1e-14, atol=0)


def test_batch_norm_gradients_flow_through_the_batch_statistics():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5))
    check_gradients(_bn, x, rng.standard_normal((3, 1)), rng.standard_normal((3, 1)))
    images = rng.standard_normal((2, 3, 3, 2))
    check_gradients(lambda t, g, b: _bn(t, g, b, kept=(2, 1, 1, 1)), images,
                    rng.standard_normal((2, 1)), rng.standard_normal((2, 1)))


def _bn(x, gamma, beta, kept=None):
    """A BatchNorm in training mode whose gamma and beta are the given tensors."""
    layer = nn.BatchNorm(gamma.shape[0])
    object.__setattr__(layer, "gamma", gamma)
    object.__setattr__(layer, "beta", beta)
    return layer(x)


def test_batch_norm_evaluation_uses_the_running_statistics():
    rng = np.random.default_rng(4)
    layer = nn.BatchNorm(2, momentum=0.5)
    for _ in range(3):
        layer(rng.standard_normal((2, 6)) + 1.0)
    mean, var = layer.running_mean.copy(), layer.running_var.copy()
    layer.eval()
    x = rng.standard_normal((2, 1))                    # one sample is fine in evaluation
    assert_close(layer(x).data, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-14, atol=0)
    np.testing.assert_array_equal(layer.running_mean, mean)   # unchanged in evaluation
    X = T(x, requires_grad=True)
    layer(X).sum().backward()
    assert_close(X.grad, 1 / np.sqrt(var + 1e-5), rtol=1e-14, atol=0)


def test_batch_norm_buffers_are_saved_and_loaded(tmp_path):
    rng = np.random.default_rng(5)
    model = nn.Sequential(nn.Linear(3, 2, rng=rng), nn.BatchNorm(2))
    model(rng.standard_normal((3, 7)))
    state = model.state_dict()
    assert "1.running_mean" in state and "1.running_var" in state
    model.save(tmp_path / "m.npz")
    fresh = nn.Sequential(nn.Linear(3, 2, rng=rng), nn.BatchNorm(2))
    fresh.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(fresh[1].running_var, model[1].running_var)
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(fresh.eval()(x).data, model.eval()(x).data)
    del state["1.running_var"]
    with pytest.raises(ValueError, match="missing 1.running_var"):
        fresh.load_state_dict(state)
    state["1.running_var"] = np.ones((3, 1))
    with pytest.raises(ag.ShapeError, match="1.running_var"):
        fresh.load_state_dict(state)


@pytest.mark.parametrize("call, error, words", [
    (lambda: nn.BatchNorm(3)(np.ones((3, 1))), ag.ShapeError, "BatchNorm(3): training needs more than one value per feature"),
    (lambda: nn.BatchNorm(3)(np.ones((2, 5))), ag.ShapeError, "BatchNorm(3): input must be 3 x m"),
    (lambda: nn.BatchNorm(0), ValueError, "BatchNorm: num_features must be a whole number >= 1"),
    (lambda: nn.BatchNorm(2, momentum=1.5), ValueError, "BatchNorm: momentum must be a number in [0, 1]"),
    (lambda: nn.BatchNorm(2, eps=0), ValueError, "BatchNorm: eps must be a number > 0"),
    (lambda: nn.LayerNorm(4)(np.ones((3, 5))), ag.ShapeError, "LayerNorm(4,): input must be 4 x m, got shape (3, 5)"),
    (lambda: nn.LayerNorm((2, 0)), ValueError, "LayerNorm: normalized_shape must be"),
    (lambda: nn.Embedding(5, 2)(np.array([0, 5])), ag.ShapeError, "Embedding(5, 2): indices must be in 0..4, got 0..5"),
    (lambda: nn.Embedding(5, 2)(np.array([0.5])), ag.ShapeError, "Embedding: indices must be whole numbers"),
    (lambda: nn.Embedding(5, -2), ValueError, "Embedding: embedding_dim must be a whole number >= 1"),
])
def test_each_refusal_names_the_layer(call, error, words):
    with pytest.raises(error) as caught:
        call()
    assert words in str(caught.value)


# --- LayerNorm ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
def test_layer_norm_normalises_each_sample_and_matches_finite_differences(shape):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape) * 2 + 1
    layer = nn.LayerNorm(shape[:-1])
    axes = tuple(range(len(shape) - 1))
    Y = layer(x)
    assert np.all(np.abs(Y.data.mean(axis=axes)) < 1e-12)
    assert_close(Y.data, (x - x.mean(axis=axes)) / np.sqrt(x.var(axis=axes) + 1e-5), rtol=1e-12, atol=1e-12)
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, Y.data)   # the same in both modes

    def fn(t, gamma, beta):
        object.__setattr__(layer, "gamma", gamma)
        object.__setattr__(layer, "beta", beta)
        return layer(t)
    check_gradients(fn, x, rng.standard_normal(shape[:-1] + (1,)), rng.standard_normal(shape[:-1] + (1,)))


# --- Embedding ----------------------------------------------------------------------------------

def test_embedding_picks_columns_and_adds_the_gradients_of_repeats():
    layer = nn.Embedding(4, 3, rng=0)
    indices = np.array([2, 0, 2, 3])
    A = layer(indices)
    np.testing.assert_array_equal(A.data, layer.W.data[:, indices])
    g = np.arange(12.0).reshape(3, 4)
    A.backward(g)
    expected = np.zeros((3, 4))
    np.add.at(expected.T, indices, g.T)
    np.testing.assert_array_equal(layer.W.grad, expected)
    assert layer(T([1.0, 1.0])).shape == (3, 2)          # whole-number floats are accepted
    assert layer(np.array([[0, 1], [2, 3]])).shape == (3, 2, 2)
    one_hot = np.eye(4)[:, indices]
    assert_close(A.data, layer.W.data @ one_hot, rtol=1e-15, atol=0)   # W @ one_hot (eq 33)


# --- activation modules ---------------------------------------------------------------------------

@pytest.mark.parametrize("module, op", [
    (nn.LeakyReLU(negative_slope=0.2), lambda z: z.leaky_relu(0.2)),
    (nn.ELU(alpha=0.7), lambda z: z.elu(0.7)),
    (nn.GELU(), lambda z: z.gelu()),
    (nn.GELU(approximate="tanh"), lambda z: ag.gelu(z, "tanh")),
    (nn.Softplus(), lambda z: ag.softplus(z)),
])
def test_activation_modules_apply_their_op(module, op):
    z = np.linspace(-3, 3, 8).reshape(2, 4)
    np.testing.assert_array_equal(module(z).data, op(T(z)).data)


def test_mlp_accepts_the_new_activations_by_name():
    model = nn.MLP([3, 5, 4, 2], ["gelu", "leaky_relu", "identity"], rng=0)
    assert type(model.activations[0]).__name__ == "GELU"
    J = ag.softmax_cross_entropy(model(np.ones((3, 6))), np.array([0, 1, 0, 1, 0, 1]))
    J.backward()
    assert model.layers[0].W.grad.shape == (5, 3)
    for name in ("elu", "softplus"):
        assert nn.MLP([2, 2], name).activations[0].function == name

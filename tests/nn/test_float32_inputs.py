"""float32 data stays float32 through the layers and losses that take plain arrays: a float32
ndarray given to a layer or a loss is never widened to float64 (no silent conversion)."""
import numpy as np

import autograd_lite as ag


def float32_linear():
    layer = ag.nn.Linear(3, 2, rng=np.random.default_rng(0))
    for parameter in layer.parameters():
        parameter.data = parameter.data.astype(np.float32)
    return layer


def test_a_float32_layer_given_float32_columns_computes_and_differentiates_in_float32():
    layer = float32_linear()
    X = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    Y = (X[:2] > 0).astype(np.float32)
    Z = layer(X)
    J = ag.binary_cross_entropy_with_logits(Z, Y)
    assert Z.dtype == np.float32 and J.dtype == np.float32
    J.backward()
    assert layer.W.grad.dtype == np.float32 and layer.b.grad.dtype == np.float32


def test_float32_labels_and_inputs_keep_the_losses_in_float32():
    A = ag.Tensor(np.full((2, 3), 0.25), dtype=np.float32, requires_grad=True)
    labels = np.ones((2, 3), np.float32)
    assert ag.mean_squared_error(A, labels).dtype == np.float32
    assert ag.sigmoid(labels).dtype == np.float32


def test_plain_numbers_and_lists_still_make_float64():
    assert ag.sigmoid([0.0, 1.0]).dtype == np.float64
    assert ag.Tensor([1, 2]).dtype == np.float64

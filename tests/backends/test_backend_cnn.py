"""A small CNN on every backend: convolution (eq 33 for each window), ReLU, max pooling,
BatchNorm, average pooling, a linear layer (eq 33) and softmax cross-entropy, forward and
backward on one backend's arrays, give numpy's loss and every parameter's gradient to 1e-12
relative (float64), each gradient in its parameter's backend; BatchNorm's running statistics
move as numpy's do (written in place, or replaced where arrays cannot be written: JAX), and
the layers built on the last primitives that computed with numpy (Embedding, argmax, the
comparisons) stay in their input's backend."""
import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import backend, nn
from array_backends import BACKENDS, FOREIGN, ArrayBackend

NUMPY = ArrayBackend("numpy", np.asarray)


def small_cnn():
    """2 x 6 x 6 images -> 4 classes: conv 3x3 (padding 1), ReLU, max pool 3x3 (stride 2,
    padding 1: -inf), BatchNorm, average pool 2x2 (stride 1), flatten, linear."""
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=rng), nn.ReLU(),
                         nn.MaxPool2d(3, stride=2, padding=1),
                         nn.BatchNorm(3), nn.AvgPool2d(2, stride=1), nn.Flatten(),
                         nn.Linear(3 * 2 * 2, 4, rng=rng))


def on_backend(model, b):
    """``model`` moved to backend ``b`` (every parameter and buffer)."""
    return model.to(b.array(np.zeros(1)))


def data(m=5):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2, 6, 6, m))
    Y = np.eye(4)[:, rng.integers(0, 4, m)]          # one-hot classes, one column per sample
    return X, Y


def step(model, make):
    """One forward and backward of the CNN on ``make``'s arrays; returns J."""
    X, Y = data()
    J = ag.softmax_cross_entropy(model(ag.Tensor(make(X))), ag.Tensor(make(Y)))
    J.backward()
    return J


@pytest.mark.parametrize("b", BACKENDS)
def test_a_small_cnn_gives_numpys_loss_and_gradients_on_every_backend(b):
    expected_model, model = small_cnn(), on_backend(small_cnn(), b)
    J_numpy = step(expected_model, lambda a: a)
    J = step(model, b.array)
    where = backend.of(b.array(np.zeros(1)))
    assert backend.of(J.data) is where
    np.testing.assert_allclose(ag.to_numpy(J), J_numpy.data, rtol=1e-12)
    expected = dict(expected_model.named_parameters())
    for name, parameter in model.named_parameters():
        assert backend.of(parameter.grad) is where, name
        np.testing.assert_allclose(ag.to_numpy(parameter.grad), expected[name].grad,
                                   rtol=1e-12, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("b", BACKENDS)
def test_the_exact_gelu_runs_where_the_backend_has_erf_and_is_refused_clearly_where_not(b):
    def run(where):
        conv = on_backend(nn.Conv2d(2, 3, 3, rng=0), where)
        A = nn.GELU()(conv(ag.Tensor(where.array(data()[0]))))
        A.sum().backward()
        return A, conv.W.grad

    if b.name == "array_api_strict":
        with pytest.raises(TypeError, match=r"gelu: the exact gelu needs erfc, which the "
                                            r"array_api_strict namespace does not have.*"
                                            r"approximate='tanh'"):
            run(b)
        return
    (A, grad), (expected, expected_grad) = run(b), run(NUMPY)
    np.testing.assert_allclose(ag.to_numpy(A), expected.data, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ag.to_numpy(grad), expected_grad, rtol=1e-12)


@pytest.mark.parametrize("b", BACKENDS)
def test_batchnorms_running_statistics_move_as_numpys_and_evaluation_uses_them(b):
    expected_model, model = small_cnn(), on_backend(small_cnn(), b)
    for _ in range(2):
        step(expected_model, lambda a: a)
        step(model, b.array)
    expected = dict(expected_model.named_buffers())
    for name, buffer in model.named_buffers():
        assert backend.of(buffer) is backend.of(b.array(np.zeros(1))), name
        np.testing.assert_allclose(ag.to_numpy(buffer), expected[name], rtol=1e-12)
        assert not np.allclose(expected[name], 0.0 if name.endswith("mean") else 1.0)
    expected_model.eval(), model.eval()
    X, _ = data(m=3)
    np.testing.assert_allclose(ag.to_numpy(model(ag.Tensor(b.array(X)))),
                               expected_model(ag.Tensor(X)).data, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("b", FOREIGN)
def test_batchnorm_refuses_an_input_in_another_backend_than_its_statistics(b):
    X = ag.Tensor(b.array(np.ones((2, 3))))
    layer = nn.BatchNorm(2)                                          # numpy, all of it
    with pytest.raises(backend.MixedBackendsError,
                       match=rf"BatchNorm\(2.*numpy.*{b.name}.*model\.to"):
        layer(X)
    assert np.array_equal(layer.running_mean, np.zeros((2, 1)))      # nothing moved
    layer.to(X)
    layer.running_var = np.ones((2, 1))                              # one buffer left behind
    for mode in (layer.train, layer.eval):
        mode()
        with pytest.raises(backend.MixedBackendsError,
                           match=rf"BatchNorm\(2\): its running_var lives in numpy, the input "
                                 rf"in {b.name} .*model\.to"):
            layer(X)


def test_batchnorm_evaluates_dask_data_lazily_with_its_numpy_running_statistics():
    """(Training on Dask data: tests/backends/test_dask_nn.py.)"""
    da = pytest.importorskip("dask.array", reason="Dask is not installed here (the `dask` extra)")
    layer = nn.BatchNorm(2)
    x = np.arange(8.0).reshape(2, 4)
    layer.running_mean[:] = [[1.0], [2.0]]
    layer.eval()
    Y = layer(ag.Tensor(da.from_array(x, chunks=(2, 2))))
    assert backend.of(Y.data).is_dask                                # not computed
    np.testing.assert_allclose(ag.to_numpy(Y), layer(ag.Tensor(x)).data, rtol=1e-12)


@pytest.mark.parametrize("b", BACKENDS)
def test_an_embedding_picks_and_learns_columns_on_every_backend(b):
    def run(make):
        layer = nn.Embedding(5, 3, rng=0)
        layer.W = nn.Parameter(make(layer.W.data), name="W")
        out = layer(ag.Tensor(make(np.array([[0, 4, 4], [2, 1, 0]])), dtype=np.int64))
        (out * ag.Tensor(make(np.arange(18.0).reshape(3, 2, 3)))).sum().backward()
        return out, layer.W.grad

    (out, grad), (expected, expected_grad) = run(b.array), run(lambda a: a)
    assert backend.of(out.data) is backend.of(grad) is backend.of(b.array(np.zeros(1)))
    np.testing.assert_allclose(ag.to_numpy(out), expected.data, rtol=1e-12)
    np.testing.assert_allclose(ag.to_numpy(grad), expected_grad, rtol=1e-12)


@pytest.mark.parametrize("b", BACKENDS)
def test_an_embedding_refuses_indices_out_of_range_or_not_whole_on_every_backend(b):
    layer = nn.Embedding(5, 2, rng=0)
    layer.W = nn.Parameter(b.array(layer.W.data), name="W")
    with pytest.raises(ag.ShapeError, match=r"Embedding\(5, 2\): indices must be in 0..4, got 0..5"):
        layer(ag.Tensor(b.array(np.array([0, 5])), dtype=np.int64))
    with pytest.raises(ag.ShapeError, match="Embedding: indices must be whole numbers"):
        layer(b.array(np.array([0.5, 1.0])))


@pytest.mark.parametrize("b", BACKENDS)
def test_argmax_and_comparisons_stay_in_their_backend(b):
    x = np.array([[1.0, 5.0, -2.0], [3.0, 0.5, 7.0]])
    t = ag.Tensor(b.array(x))
    where = backend.of(b.array(np.zeros(1)))
    for found, expected in ((t.argmax(axis=0), x.argmax(axis=0)),
                            (t.argmin(), x.argmin()),
                            (ag.argmax(t, axis=1, keepdims=True), x.argmax(axis=1, keepdims=True)),
                            (t > 1.0, x > 1.0)):
        assert backend.of(found) is where
        np.testing.assert_array_equal(ag.to_numpy(found), expected)

"""``train.fit`` and ``train.evaluate`` on Dask samples: a metric's summaries of each batch
(accuracy's counts; any other metric's outputs and labels) come out of the compute that computes
the batch, so a training step stays backward's one compute and an evaluation is one compute,
with numpy's history (losses to 1e-12, accuracies exactly)."""
import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
import dask  # noqa: E402

import autograd_lite as ag  # noqa: E402
from autograd_lite import nn, optim, train  # noqa: E402
from dask_util import Computes, assert_close  # noqa: E402

M, CHUNK = 120, 30


@pytest.fixture(autouse=True)
def threaded_scheduler():
    with dask.config.set(scheduler="threads"):
        yield


def lazy(array):
    return da.from_array(array, chunks=array.shape[:-1] + (CHUNK,))


def data(seed, classes):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, M))
    if classes == 2:
        return X, (X[0] + 0.5 * X[1] > 0).astype(np.float64)[None, :]
    return X, np.argmax(X, axis=0).astype(np.float64)        # class indices (m,)


def mean_output(output, Y):
    """A metric of our own, with no summaries: it needs every output and label."""
    return float(np.mean(output) + np.mean(Y))


# model's output layer, loss, metric, number of classes
PROBLEMS = {
    "logits": (["tanh", "identity"], ag.binary_cross_entropy_with_logits, train.accuracy, 2),
    "probabilities": (["tanh", "sigmoid"], ag.binary_cross_entropy,
                      train.accuracy_of_probabilities, 2),
    "classes": (["tanh", "identity"], ag.softmax_cross_entropy, train.accuracy, 3),
    "own metric": (["tanh", "identity"], ag.binary_cross_entropy_with_logits, mean_output, 2),
}


def run(problem, make, batch_size, epochs=3):
    activations, loss, metric, classes = PROBLEMS[problem]
    (X, Y), (X_val, Y_val) = data(0, classes), data(1, classes)
    model = nn.MLP([3, 6, 1 if classes == 2 else classes], activations, rng=0)
    history = train.fit(model, loss, make(X), make(Y), optim.Adam(model, lr=0.05), epochs,
                        batch_size=batch_size, metric=metric,
                        validation=(make(X_val), make(Y_val)), progress=False, verbose=False)
    return model, history


@pytest.mark.parametrize("batch_size", [None, CHUNK])
@pytest.mark.parametrize("problem", PROBLEMS)
def test_a_metric_and_validation_add_no_compute_to_the_steps_and_one_per_evaluation(problem,
                                                                                  batch_size):
    expected_model, expected = run(problem, np.asarray, batch_size)
    with Computes() as computes:
        model, history = run(problem, lazy, batch_size)
    steps = 3 * (M // (batch_size or M))
    assert computes.count == steps + 3, f"{computes.count} computes for {steps} steps, 3 epochs"
    assert history.metrics.keys() == expected.metrics.keys()
    assert_close(history.loss, expected.loss)
    for key, values in expected.metrics.items():
        if key.endswith("accuracy"):
            assert history.metrics[key] == values, key      # the same counts over the same m
        else:
            assert_close(history.metrics[key], values)
    for p, q in zip(model.parameters(), expected_model.parameters()):
        assert_close(p.data, q.data)


def test_evaluate_is_one_compute_for_every_chunk_and_its_metric():
    _, loss, metric, classes = PROBLEMS["classes"]
    X, Y = data(2, classes)
    model = nn.MLP([3, 6, 3], ["tanh", "identity"], rng=0)
    expected = train.evaluate(model, loss, X, Y, metric, batch_size=CHUNK)
    with Computes() as computes:
        found = train.evaluate(model, loss, lazy(X), lazy(Y), metric, batch_size=CHUNK)
    assert computes.count == 1
    assert found["accuracy"] == expected["accuracy"]
    assert_close(found["loss"], expected["loss"])


def test_a_batch_the_steps_compute_does_not_read_is_scored_in_one_compute_at_the_end():
    """A loss that never reads the output (a penalty on the weights alone) computes nothing on
    Dask; the epoch's accuracy then computes its batches' summaries together, once."""
    X, Y = data(0, 2)
    models = [nn.MLP([3, 4, 1], ["tanh", "identity"], rng=0) for _ in range(2)]
    histories = []
    for model, (X_, Y_) in zip(models, ((X, Y), (lazy(X), lazy(Y)))):
        def penalty(output, labels, model=model):
            return (model.layers[0].W ** 2).sum()
        with Computes() as computes:
            histories.append(train.fit(model, penalty, X_, Y_, optim.SGD(model, lr=0.1), 2,
                                       batch_size=CHUNK, metric=train.accuracy,
                                       progress=False, verbose=False))
    assert computes.count == 2                                       # one per epoch
    assert histories[1].metrics["accuracy"] == histories[0].metrics["accuracy"]


def test_fit_trains_a_batchnorm_model_on_dask_data_as_on_numpy_with_one_compute_per_step():
    """BatchNorm's running statistics move with each step's compute and validation reads them
    (evaluation mode): the history, the parameters and the statistics follow numpy's."""
    (X, Y), validation = data(0, 2), data(1, 2)
    runs = []
    for make in (np.asarray, lazy):
        model = nn.Sequential(nn.Linear(3, 6, rng=0), nn.BatchNorm(6), nn.ReLU(),
                              nn.Linear(6, 1, rng=1))
        with Computes() as computes:
            history = train.fit(model, ag.binary_cross_entropy_with_logits, make(X), make(Y),
                                optim.SGD(model, lr=0.1), 2, batch_size=CHUNK,
                                metric=train.accuracy,
                                validation=tuple(make(v) for v in validation),
                                progress=False, verbose=False)
        runs.append((model, history, computes.count))
    (expected_model, expected, _), (model, history, count) = runs
    assert count == 2 * (M // CHUNK) + 2
    assert_close(history.loss, expected.loss)
    for key, values in expected.metrics.items():
        assert_close(history.metrics[key], values)
    for (name, found), (_, wanted) in zip(model.named_buffers(), expected_model.named_buffers()):
        assert_close(found, wanted)
    for p, q in zip(model.parameters(), expected_model.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12, atol=1e-15)


def test_dask_labels_beside_numpy_samples_are_scored_by_the_steps_compute():
    X, Y = data(0, 2)
    runs = []
    for make in (np.asarray, lazy):
        model = nn.MLP([3, 4, 1], ["tanh", "identity"], rng=0)
        with Computes() as computes:
            history = train.fit(model, ag.binary_cross_entropy_with_logits, X, make(Y),
                                optim.SGD(model, lr=0.1), 2, batch_size=CHUNK,
                                metric=train.accuracy, progress=False, verbose=False)
        runs.append((history, computes.count))
    (expected, _), (history, count) = runs
    assert count == 2 * (M // CHUNK)
    assert history.metrics["accuracy"] == expected.metrics["accuracy"]
    assert_close(history.loss, expected.loss)


def test_evaluate_computes_a_saturated_chunk_again_with_recording_on_as_on_numpy():
    """Under no_grad the loss cannot see the sigmoid (+inf for a = 1, y = 0): that chunk alone
    is computed again with recording on, giving the fused, finite loss fit trains on."""
    linear = nn.Linear(1, 1, rng=0)
    model = nn.Sequential(linear, nn.Sigmoid())
    linear.W.data, linear.b.data = np.array([[100.0]]), np.array([[0.0]])
    X, Y = np.array([[1.0, -1.0, 0.02, -0.01]]), np.zeros((1, 4))  # z = 100: a = 1, y = 0
    expected = train.evaluate(model, ag.binary_cross_entropy, X, Y, batch_size=2)
    X_lazy, Y_lazy = da.from_array(X, chunks=(1, 2)), da.from_array(Y, chunks=(1, 2))
    with Computes() as computes:
        found = train.evaluate(model, ag.binary_cross_entropy, X_lazy, Y_lazy, batch_size=2)
    assert computes.count == 2              # every chunk, then the saturated one again
    assert np.isfinite(found["loss"])
    assert_close(found["loss"], expected["loss"])

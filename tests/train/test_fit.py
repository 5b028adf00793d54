"""The training helper: mini-batches of columns, a loss that falls, the history, progress
output, evaluation under no_grad, metrics, and the optional plot."""
import io

import numpy as np
import pytest

from autograd_lite import nn, optim, train
from autograd_lite.errors import ShapeError
from autograd_lite.losses import (binary_cross_entropy, binary_cross_entropy_with_logits,
                                  mean_squared_error, softmax_cross_entropy)


def xor_like(m=200, seed=0):
    generator = np.random.default_rng(seed)
    X = generator.standard_normal((2, m))
    Y = ((X[0] * X[1]) > 0).astype(np.float64)[None, :]
    return X, Y


def trained(seed=0, epochs=40, **kwargs):
    X, Y = xor_like()
    generator = np.random.default_rng(seed)
    model = nn.MLP([2, 8, 1], ["tanh", "identity"], rng=generator)
    history = train.fit(model, binary_cross_entropy_with_logits, X, Y,
                        optim.Adam(model.parameters(), lr=0.05), epochs, batch_size=32,
                        rng=generator, metric=train.accuracy, stream=io.StringIO(), **kwargs)
    return model, history


def test_a_short_run_lowers_the_loss_and_learns():
    _, history = trained()
    assert history.epochs == list(range(1, 41))
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert history["accuracy"][-1] > 0.9


def test_the_same_seed_gives_the_same_run():
    (first, h1), (second, h2) = trained(3, epochs=5), trained(3, epochs=5)
    assert h1.loss == h2.loss
    np.testing.assert_array_equal(first.layers[0].W.data, second.layers[0].W.data)
    _, h3 = trained(4, epochs=5)
    assert h3.loss != h1.loss


def test_seed_network_full_batch_gradient_descent_as_in_the_seed():
    """The 3-4-1 sigmoid network, log-loss, plain eqs 74-75 on all m columns at once."""
    generator = np.random.default_rng(0)
    X = generator.standard_normal((3, 64))
    Y = (X[0] + X[1] - X[2] > 0).astype(np.float64)[None, :]
    model = nn.MLP.seed_network(generator)
    history = train.fit(model, binary_cross_entropy, X, Y, optim.SGD(model, lr=2.0), 300,
                        verbose=False)
    assert history.loss[0] == pytest.approx(np.log(2), abs=1e-3)   # randn * 0.01: A[2] ~ 0.5
    assert history.loss[-1] < 0.3


def test_batches_cover_every_column_once_per_epoch():
    parts = train.batches(10, 3, np.random.default_rng(0))
    assert [len(p) for p in parts] == [3, 3, 3, 1]
    assert sorted(np.concatenate(parts)) == list(range(10))
    assert [list(p) for p in train.batches(4, None)] == [[0, 1, 2, 3]]


def test_batches_are_columns_and_the_epoch_loss_is_the_weighted_mean():
    """With lr tiny the parameters barely move, so the epoch loss must equal J on all columns."""
    X, Y = xor_like(m=50)
    model = nn.MLP([2, 3, 1], ["tanh", "identity"], rng=np.random.default_rng(1))
    full = train.evaluate(model, binary_cross_entropy_with_logits, X, Y)["loss"]
    history = train.fit(model, binary_cross_entropy_with_logits, X, Y,
                        optim.SGD(model, lr=1e-12), 1, batch_size=7,
                        rng=np.random.default_rng(2), verbose=False)
    assert history.loss[0] == pytest.approx(full, rel=1e-9)


def test_validation_is_recorded_under_no_grad():
    X, Y = xor_like(m=60)
    model = nn.MLP([2, 4, 1], ["tanh", "identity"], rng=np.random.default_rng(0))
    history = train.fit(model, binary_cross_entropy_with_logits, X[:, :40], Y[:, :40],
                        optim.Adam(model, lr=0.01), 3, validation=(X[:, 40:], Y[:, 40:]),
                        metric=train.accuracy, verbose=False)
    assert set(history.metrics) == {"accuracy", "val_loss", "val_accuracy"}
    assert len(history["val_loss"]) == 3
    model.zero_grad()
    scores = train.evaluate(model, binary_cross_entropy_with_logits, X, Y, train.accuracy, batch_size=7)
    assert all(p.grad is None for p in model.parameters())   # nothing was recorded
    whole = train.evaluate(model, binary_cross_entropy_with_logits, X, Y, train.accuracy)
    assert scores["loss"] == pytest.approx(whole["loss"], rel=1e-12)
    assert scores["accuracy"] == whole["accuracy"]


def test_multi_class_with_label_indices_and_regression_targets():
    generator = np.random.default_rng(0)
    X = generator.standard_normal((4, 90))
    labels = np.argmax(X[:3], axis=0)
    model = nn.MLP([4, 16, 3], ["relu", "identity"], rng=generator)
    history = train.fit(model, softmax_cross_entropy, X, labels, optim.Adam(model, lr=0.02), 30,
                        batch_size=16, rng=generator, metric=train.accuracy, verbose=False)
    assert history["accuracy"][-1] > 0.85
    Y = (X[:1] - 2 * X[1:2])
    regression = nn.MLP([4, 1], "identity", rng=generator)
    history = train.fit(regression, mean_squared_error, X, Y, optim.SGD(regression, lr=0.1), 50,
                        verbose=False)
    assert history.loss[-1] < 1e-3 * history.loss[0]


def test_a_loss_that_blows_up_stops_with_the_epoch_and_batch():
    X, Y = xor_like(m=20)
    model = nn.MLP([2, 4, 1], ["relu", "identity"], rng=np.random.default_rng(0))
    with pytest.raises(FloatingPointError, match=r"fit stopped at epoch \d+, batch 1: the loss "
                                                 r"became (nan|inf).*learning rate \(1e\+30\)"), \
            np.errstate(all="ignore"):
        train.fit(model, mean_squared_error, X, Y, optim.SGD(model, lr=1e30), 5, verbose=False)


def test_progress_lines_and_the_bar():
    stream = io.StringIO()
    X, Y = xor_like(m=20)
    model = nn.MLP([2, 2, 1], ["tanh", "identity"], rng=np.random.default_rng(0))
    train.fit(model, binary_cross_entropy_with_logits, X, Y, optim.Adam(model), 20,
              metric=train.accuracy, stream=stream, log_every=10)
    lines = stream.getvalue().splitlines()
    assert [line[:11] for line in lines] == ["epoch  1/20", "epoch 10/20", "epoch 20/20"]
    assert "loss" in lines[0] and "accuracy" in lines[0]
    assert "\r" not in stream.getvalue()          # a StringIO is not a terminal: no bar

    forced = io.StringIO()
    train.fit(model, binary_cross_entropy_with_logits, X, Y, optim.Adam(model), 3,
              batch_size=5, stream=forced, progress=True, verbose=False)
    assert "\r[" in forced.getvalue() and "epoch 3/3" in forced.getvalue()
    assert forced.getvalue().endswith("\r")       # the bar is erased at the end


def test_the_auto_bar_waits_for_a_terminal_and_a_long_run():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    quick = train.ProgressBar(10, Terminal(), delay=60.0)
    quick.update(5)
    assert quick.stream.getvalue() == ""
    slow = train.ProgressBar(10, Terminal(), delay=0.0, interval=0.0)
    slow.update(5, "half")
    assert "[###############---------------]  50.0% half" in slow.stream.getvalue()
    silent = train.ProgressBar(10, io.StringIO(), delay=0.0)
    silent.update(5)
    assert silent.stream.getvalue() == ""


def test_accuracy_for_logits_probabilities_indices_and_one_hot():
    assert train.accuracy(np.array([[2.0, -1.0, 0.3]]), np.array([[1, 0, 0]])) == pytest.approx(2 / 3)
    assert train.accuracy_of_probabilities(np.array([[0.9, 0.4, 0.6]]), np.array([1, 0, 0])) == pytest.approx(2 / 3)
    scores = np.array([[0.1, 0.8], [0.9, 0.2]])
    assert train.accuracy(scores, np.array([1, 1])) == 0.5
    assert train.accuracy(scores, np.eye(2)[:, [1, 0]]) == 1.0
    with pytest.raises(ShapeError, match="one-hot"):
        train.accuracy(scores, np.zeros(3))


@pytest.mark.parametrize("metric", [train.accuracy, train.accuracy_of_probabilities])
@pytest.mark.parametrize("kind", ["logits", "probabilities", "indices", "one-hot"])
@pytest.mark.parametrize("cuts", [[], [1], [3, 4], [2, 5, 6]])
def test_accuracy_from_its_batches_summaries_equals_accuracy_of_all_outputs(metric, kind, cuts):
    """What fit and evaluate use on Dask: the summaries of each batch, combined, give the
    accuracy of all the outputs at once, exactly, including which threshold one unit takes
    (decided over every batch) and the refusal when nothing tells."""
    rng = np.random.default_rng(len(cuts))
    m, made_by = 7, None
    if kind in ("logits", "probabilities"):
        output = rng.standard_normal((1, m)) if kind == "logits" else rng.random((1, m))
        Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    else:
        output, classes = rng.standard_normal((3, m)), rng.integers(0, 3, m)
        Y = classes.astype(np.float64) if kind == "indices" else np.eye(3)[:, classes]
    parts = [metric.summaries(o, y) for o, y in zip(np.split(output, cuts, axis=1),
                                                     np.split(Y, cuts, axis=-1))]
    host = [[np.asarray(v) for v in part] for part in parts]
    if kind == "probabilities" and metric is train.accuracy:          # nothing tells which
        with pytest.raises(ValueError, match=r"the 7 outputs all lie in \[0, 1\]"):
            metric.of_summaries(host, made_by)
        made_by = "sigmoid"
    expected = metric(train.metrics.Outputs.of([output], made_by), Y)
    assert metric.of_summaries(host, made_by) == expected


def test_fit_checks_its_inputs():
    model = nn.MLP([2, 1], rng=np.random.default_rng(0))
    sgd = optim.SGD(model, lr=0.1)
    with pytest.raises(ShapeError, match=r"X has 4 samples \(columns\) but Y has shape \(1, 3\)"):
        train.fit(model, binary_cross_entropy, np.zeros((2, 4)), np.zeros((1, 3)), sgd, 1)
    with pytest.raises(ShapeError, match="samples as columns"):
        train.fit(model, binary_cross_entropy, np.zeros(4), np.zeros(4), sgd, 1)
    with pytest.raises(ValueError, match="batch_size"):
        train.fit(model, binary_cross_entropy, np.zeros((2, 4)), np.zeros((1, 4)), sgd, 1, batch_size=0)


def test_plot_writes_an_image_atomically(tmp_path):
    pytest.importorskip("matplotlib")
    _, history = trained(epochs=3)
    path = tmp_path / "loss.png"
    history.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history.plot(tmp_path / "loss.svg")
    assert b"<svg" in (tmp_path / "loss.svg").read_bytes()[:500]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png", "loss.svg"]


def test_fit_has_at_most_eight_parameters_and_groups_the_rest():
    import inspect
    parameters = inspect.signature(train.fit).parameters
    assert len(parameters) <= 8
    assert list(parameters)[:7] == ["model", "loss_fn", "X", "Y", "optimizer", "epochs", "batch_size"]
    X, Y = xor_like(m=20)
    model = nn.MLP([2, 2, 1], ["tanh", "identity"], rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"fit: unexpected keyword argument 'metrics'; fit takes "
                                        r"metric, validation, early_stopping, rng, scheduler"):
        train.fit(model, binary_cross_entropy_with_logits, X, Y, optim.SGD(model, lr=0.1), 1,
                  metrics=train.accuracy)
    with pytest.raises(ValueError, match="initial_epoch must be a whole number >= 0"):
        train.fit(model, binary_cross_entropy_with_logits, X, Y, optim.SGD(model, lr=0.1), 1,
                  initial_epoch=-1)
    with pytest.raises(ValueError, match="log_every must be a whole number >= 1"):
        train.fit(model, binary_cross_entropy_with_logits, X, Y, optim.SGD(model, lr=0.1), 1,
                  log_every=0.5)

"""Everything that shapes a run is saved and restored: a resumed run with Dropout draws the same
masks (its generator's state is in the model's file), early stopping puts back BatchNorm's running
statistics with the parameters (the restored model scores what was logged), and the learning-rate
schedule resumes where it was."""
import io

import numpy as np
import pytest

from autograd_lite import nn, optim, train
from autograd_lite.losses import binary_cross_entropy_with_logits as bce_logits


def data(m=120, seed=0):
    generator = np.random.default_rng(seed)
    X = generator.standard_normal((4, m))
    return X, ((X[0] - X[1] + 0.5 * X[2]) > 0).astype(np.float64)[None, :]


def dropout_model(seed=0):
    return nn.Sequential(nn.Linear(4, 16, rng=np.random.default_rng(seed)), nn.ReLU(),
                         nn.Dropout(0.3, rng=np.random.default_rng(seed + 100)),
                         nn.BatchNorm(16), nn.Linear(16, 1, rng=np.random.default_rng(seed + 1)))


def run(model, optimizer, shuffler, scheduler, epochs, initial_epoch=0):
    X, Y = data()
    return train.fit(model, bce_logits, X, Y, optimizer, epochs, batch_size=25, rng=shuffler,
                     scheduler=scheduler, initial_epoch=initial_epoch, verbose=False)


@pytest.mark.parametrize("through", ["file", "state_dict"])
def test_a_resumed_run_with_dropout_and_batch_norm_is_bit_for_bit(through, tmp_path):
    whole_model = dropout_model()
    whole_optimizer = optim.Adam(whole_model, lr=0.01)
    whole = run(whole_model, whole_optimizer, train.Shuffler(5),
                optim.StepLR(whole_optimizer, 2, 0.5), 6)

    first = dropout_model()
    first_optimizer = optim.Adam(first, lr=0.01)
    shuffler, scheduler = train.Shuffler(5), optim.StepLR(first_optimizer, 2, 0.5)
    part1 = run(first, first_optimizer, shuffler, scheduler, 2)
    things = {"model": first, "optimizer": first_optimizer, "shuffler": shuffler, "schedule": scheduler}
    if through == "file":
        for name, thing in things.items():
            thing.save(tmp_path / f"{name}.npz")
    states = {name: thing.state_dict() for name, thing in things.items()}
    first(data()[0])   # the first run goes on drawing masks: the saved state must not follow it

    second = dropout_model(seed=9)                    # other weights, other dropout generator
    second_optimizer = optim.Adam(second, lr=0.5)
    resumed = {"model": second, "optimizer": second_optimizer, "shuffler": train.Shuffler(0),
               "schedule": optim.StepLR(second_optimizer, 2, 0.5)}
    for name, thing in resumed.items():
        if through == "file":
            thing.load(tmp_path / f"{name}.npz")
        else:
            thing.load_state_dict(states[name])
    part2 = run(second, second_optimizer, resumed["shuffler"], resumed["schedule"], 4, initial_epoch=2)

    assert part1.loss + part2.loss == whole.loss
    for (name, a), (_, b) in zip(whole_model.state_dict().items(), second.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_without_the_dropout_generator_state_the_resumed_run_differs():
    """The control: the same resume with the generator left where it was."""
    whole_model = dropout_model()
    whole = run(whole_model, optim.SGD(whole_model, lr=0.1), train.Shuffler(5), None, 4)
    first = dropout_model()
    first_optimizer = optim.SGD(first, lr=0.1)
    shuffler = train.Shuffler(5)
    part1 = run(first, first_optimizer, shuffler, None, 2)
    state = first.state_dict()
    rng_key = [key for key in state if key.endswith("rng")]
    assert rng_key == ["2.rng"]
    del state["2.rng"]                     # a file written without it still loads ...
    second = dropout_model().load_state_dict(state)
    part2 = run(second, optim.SGD(second, lr=0.1).load_state_dict(first_optimizer.state_dict()),
                train.Shuffler(0).load_state_dict(shuffler.state_dict()), None, 2, initial_epoch=2)
    assert part1.loss + part2.loss != whole.loss   # ... but the masks are other masks


def test_a_bad_generator_state_is_refused_and_changes_nothing():
    model = dropout_model()
    state = model.state_dict()
    before = model[2].rng.bit_generator.state
    for value, message in [("{}", "not valid"), ("[1, 2", "not valid"),
                           (train.Shuffler(np.random.Generator(np.random.MT19937(1))).state_dict()["state"],
                            "'MT19937' generator, this one's is 'PCG64'")]:
        with pytest.raises(ValueError, match=message):
            model.load_state_dict(dict(state, **{"2.rng": value, "0.W": state["0.W"] + 1}))
        assert model[2].rng.bit_generator.state == before
        np.testing.assert_array_equal(model[0].W.data, state["0.W"])


def test_early_stopping_restores_batch_norm_statistics_so_the_best_model_scores_what_was_logged():
    X, Y = data(m=200)
    X_val, Y_val = data(m=80, seed=1)
    model = nn.Sequential(nn.Linear(4, 8, rng=np.random.default_rng(0)), nn.BatchNorm(8),
                          nn.Tanh(), nn.Linear(8, 1, rng=np.random.default_rng(1)))
    stopper = train.EarlyStopping(monitor="val_loss", patience=2)
    history = train.fit(model, bce_logits, X, Y, optim.SGD(model, lr=2.0, momentum=0.9), 100,
                        batch_size=20, rng=np.random.default_rng(0), validation=(X_val, Y_val),
                        early_stopping=stopper, stream=io.StringIO())
    assert history.stopped_epoch is not None and history.best_epoch < history.stopped_epoch
    best = history["val_loss"][history.best_epoch - 1]
    assert train.evaluate(model, bce_logits, X_val, Y_val)["loss"] == best


def test_accuracy_on_a_sigmoid_output_thresholds_probabilities_at_one_half():
    """A perfect sigmoid model: every probability on the right side of 0.5, all in (0, 1)."""
    X, Y = data(m=40)
    model = nn.Sequential(nn.Linear(4, 1, rng=np.random.default_rng(0)), nn.Sigmoid())
    model[0].W.data = np.array([[5.0, -5.0, 2.5, 0.0]])
    model[0].b.data = np.zeros((1, 1))
    scores = train.evaluate(model, bce_logits, X, Y, train.accuracy)
    assert scores["accuracy"] == 1.0
    history = train.fit(model, lambda A, Y: ((A - Y) ** 2).mean(), X, Y,
                        optim.SGD(model, lr=1e-9), 1, metric=train.accuracy, verbose=False)
    assert history["accuracy"] == [1.0]
    assert train.accuracy(model(X), Y) == 1.0                       # a recorded Tensor says sigmoid


def test_ambiguous_outputs_are_refused_naming_the_ways_out():
    probabilities = np.array([[0.9, 0.2, 0.7, 0.4]])
    Y = np.array([1, 0, 1, 0])
    with pytest.raises(ValueError, match=r"all lie in \[0, 1\].*accuracy_of_probabilities.*from_logits=True"):
        train.accuracy(probabilities, Y)
    assert train.accuracy(probabilities, Y, from_logits=False) == 1.0
    assert train.accuracy_of_probabilities(probabilities, Y) == 1.0
    assert train.accuracy(probabilities, Y, from_logits=True) == 0.5
    assert train.accuracy(np.array([[2.0, -1.0, 0.5, -0.1]]), Y) == 1.0   # outside [0, 1]: logits

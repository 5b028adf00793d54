"""Layers with randomness or state under ag.compile: a replay draws Dropout's new masks and
repeats BatchNorm's running-statistics update, as the eager engine does (never silently stale);
train.evaluate switches a model to evaluation mode and back."""
import numpy as np

import autograd_lite as ag
from autograd_lite import nn, train


def _model(seed):
    return nn.Sequential(nn.Linear(4, 8, rng=np.random.default_rng(seed)), nn.BatchNorm(8),
                         nn.ReLU(), nn.Dropout(0.3, rng=np.random.default_rng(seed + 1)),
                         nn.Linear(8, 1, rng=np.random.default_rng(seed + 2)))


def _loss(model):
    return lambda X, Y: ag.binary_cross_entropy_with_logits(model(X), Y)


def _eager_step(model):
    def step(X, Y):
        J = _loss(model)(ag.Tensor(X), ag.Tensor(Y))
        J.backward()
        return J
    return step


def _run(model, step, batches):
    out = []
    for X, Y in batches:
        for p in model.parameters():
            p.grad = None
        J = step(X, Y)
        out.append((J.item(), [p.grad.copy() for p in model.parameters()],
                    model[1].running_mean.copy(), model[1].running_var.copy()))
    return out


def test_dropout_and_batchnorm_replay_exactly_what_the_eager_engine_does():
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((4, 16)), (rng.random((1, 16)) < 0.5) * 1.0) for _ in range(6)]
    eager_model, compiled_model = _model(1), _model(1)
    eager = _run(eager_model, _eager_step(eager_model), batches)
    step = ag.compile(_loss(compiled_model))
    compiled = _run(compiled_model, step, batches)
    assert "dropout_mask" in step.source and "running_average" in step.source  # replayed ops
    for (J_e, g_e, mean_e, var_e), (J_c, g_c, mean_c, var_c) in zip(eager, compiled):
        assert J_c == J_e
        for a, b in zip(g_c, g_e):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(mean_c, mean_e)   # updated on every replayed call too
        np.testing.assert_array_equal(var_c, var_e)
    assert not np.array_equal(compiled[2][2], compiled[5][2])   # the statistics moved


def test_a_compiled_step_updates_the_buffers_a_load_filled():
    """model.load copies buffers into the module's own arrays, which the compiled step updates:
    after a load, the next replay moves the loaded statistics, not the old ones."""
    model = _model(3)
    step = ag.compile(_loss(model))
    X, Y = np.random.default_rng(2).standard_normal((4, 8)), np.ones((1, 8))
    for _ in range(3):
        step(X, Y)
    other = _model(4)
    other[1].running_mean[:] = 5.0
    twin = _model(4)
    twin[1].running_mean[:] = 5.0
    import tempfile, os
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.npz")
        other.save(path)
        model.load(path)
        twin.load(path)
    step(X, Y)                                   # a replay
    _eager_step(twin)(X, Y)                      # the same step, eagerly, from the same state
    np.testing.assert_array_equal(model[1].running_mean, twin[1].running_mean)
    assert not np.allclose(model[1].running_mean, 5.0)


def test_evaluate_uses_evaluation_mode_and_restores_the_mode():
    model = _model(5)
    X, Y = np.random.default_rng(1).standard_normal((4, 10)), np.ones((1, 10))
    before = model[1].running_mean.copy()
    loss = ag.binary_cross_entropy_with_logits
    first = train.evaluate(model, loss, X, Y)["loss"]
    second = train.evaluate(model, loss, X, Y)["loss"]
    assert first == second                                      # no dropout, no batch statistics
    np.testing.assert_array_equal(model[1].running_mean, before)   # not updated
    assert model.training and model[3].training                 # restored
    model.eval()
    train.evaluate(model, loss, X, Y)
    assert not model.training

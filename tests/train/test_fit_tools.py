"""Training tools: fit refuses bad data clearly and
stops cleanly on a refused step; early stopping; learning-rate schedules; gradient clipping; and a
mini-batch run that is interrupted and resumed from saved files equals one that never stopped,
bit for bit."""
import io
import math
import warnings

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import nn, optim, train
from autograd_lite.losses import binary_cross_entropy_with_logits as bce_logits


def data(m=120, seed=0):
    generator = np.random.default_rng(seed)
    X = generator.standard_normal((2, m))
    return X, ((X[0] * X[1]) > 0).astype(np.float64)[None, :]


def model_of(seed=0):
    return nn.MLP([2, 8, 1], ["tanh", "identity"], rng=np.random.default_rng(seed))


class NanGradient(ag.Primitive):
    """0 in value, NaN in gradient: a finite J whose backward poisons the parameters."""
    name = "nan_gradient"

    def forward(self, x):
        return np.zeros(())

    def vjp(self, g, inputs, output, wants):
        return (np.full(inputs[0].shape, np.nan),)


NAN_GRADIENT = NanGradient()


# --- fit refuses bad data, and stops cleanly on a refused step --------------------------------

def test_fit_refuses_empty_data_clearly():
    model = model_of()
    with pytest.raises(ValueError, match=r"fit: X has no samples \(shape \(2, 0\)\)"):
        train.fit(model, bce_logits, np.zeros((2, 0)), np.zeros((1, 0)), optim.SGD(model, lr=0.1), 1)
    with pytest.raises(ValueError, match=r"evaluate: X has no samples"):
        train.evaluate(model, bce_logits, np.zeros((2, 0)), np.zeros((1, 0)))


def test_fit_refuses_nan_in_the_data_instead_of_blaming_the_learning_rate():
    X, Y = data()
    X[1, 7] = np.nan
    X[0, 30] = np.inf
    model = model_of()
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"fit: X holds 1 nan and 1 inf entries, in 2 of 120 "
                                         r"samples \(first: column 7\)") as caught:
        train.fit(model, bce_logits, X, Y, optim.SGD(model, lr=0.1), 1, verbose=False)
    assert "learning rate" not in str(caught.value)
    X, Y = data()
    Y[0, 3] = np.nan
    with pytest.raises(ValueError, match=r"validation Y holds 1 nan"):
        train.fit(model, bce_logits, X, data()[1], optim.SGD(model, lr=0.1), 1,
                  validation=(X, Y), verbose=False)
    for old, new in zip(before, model.parameters()):
        np.testing.assert_array_equal(old, new.data)


def test_fit_stops_on_a_non_finite_gradient_naming_epoch_and_batch_and_keeps_the_last_good_step():
    X, Y = data()
    model = model_of()
    optimizer = optim.Adam(model, lr=0.01)
    seen = {}

    def loss(output, Y_batch):
        J = bce_logits(output, Y_batch)
        seen["calls"] = seen.get("calls", 0) + 1
        if seen["calls"] == 2 * 4 + 3:          # epoch 3, batch 3 (4 batches of 32 per epoch)
            seen["before"] = [p.data.copy() for p in model.parameters()]
            seen["state"] = optimizer.state_dict()
            J = J + NAN_GRADIENT(output)
        return J

    with pytest.raises(optim.NonFiniteGradientError) as caught, np.errstate(invalid="ignore"):
        train.fit(model, loss, X, Y, optimizer, 10, batch_size=32, verbose=False)
    message = str(caught.value)
    assert message.startswith("fit stopped at epoch 3, batch 3: Adam.step: non-finite gradient")
    assert "error.history holds the 2 completed epochs" in message
    assert caught.value.history.epochs == [1, 2] and len(caught.value.history.loss) == 2
    for old, new in zip(seen["before"], model.parameters()):
        np.testing.assert_array_equal(old, new.data)
    assert optimizer.state_dict()["steps"] == seen["state"]["steps"] == 10


def test_fit_trains_on_with_nonfinite_skip_and_counts_the_skipped_step():
    X, Y = data()
    model = model_of()
    optimizer = optim.Adam(model, lr=0.01, nonfinite="skip")
    calls = {"n": 0}

    def loss(output, Y_batch):
        calls["n"] += 1
        J = bce_logits(output, Y_batch)
        return J + NAN_GRADIENT(output) if calls["n"] == 5 else J

    with np.errstate(invalid="ignore"):
        history = train.fit(model, loss, X, Y, optimizer, 3, batch_size=32, verbose=False)
    assert history.epochs == [1, 2, 3] and optimizer.skipped_steps == 1 and optimizer.steps == 11


def test_evaluate_gives_the_loss_fit_trains_on_even_for_a_saturated_sigmoid():
    """Under no_grad nothing is recorded, so the loss cannot see the sigmoid; evaluate computes
    a non-finite chunk again with recording on, and gets the fused, finite value."""
    linear = nn.Linear(1, 1, rng=np.random.default_rng(0))
    model = nn.Sequential(linear, nn.Sigmoid())
    linear.W.data = np.array([[100.0]])
    linear.b.data = np.array([[0.0]])
    X, Y = np.array([[1.0, -1.0]]), np.array([[0.0, 0.0]])   # z = 100: a = 1 exactly, y = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = train.evaluate(model, ag.binary_cross_entropy, X, Y)
    assert result["loss"] == pytest.approx((100.0 + np.logaddexp(0, -100.0)) / 2, rel=1e-14)


# --- early stopping ---------------------------------------------------------------------------

def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    X, Y = data(m=200)
    X_val, Y_val = data(m=80, seed=1)
    model = model_of()
    stream = io.StringIO()
    # lr large enough that the validation loss wanders after its best epoch
    stopper = train.EarlyStopping(monitor="val_loss", patience=3)
    history = train.fit(model, bce_logits, X, Y, optim.SGD(model, lr=3.0, momentum=0.9), 200,
                        batch_size=20, rng=np.random.default_rng(0), validation=(X_val, Y_val),
                        early_stopping=stopper, stream=stream, log_every=1000)
    losses = history["val_loss"]
    best = int(np.argmin(losses))
    assert history.stopped_epoch == len(losses) < 200
    assert history.best_epoch == best + 1 and history.stopped_epoch == history.best_epoch + 4
    assert all(value >= losses[best] for value in losses[best + 1:])
    # the model holds the best epoch's weights: its validation loss is the best one recorded
    assert train.evaluate(model, bce_logits, X_val, Y_val)["loss"] == pytest.approx(losses[best], rel=1e-12)
    assert f"early stopping at epoch {history.stopped_epoch}" in stream.getvalue()


def test_early_stopping_checks_its_settings_and_the_monitored_name():
    with pytest.raises(ValueError, match="patience must be a whole number >= 0"):
        train.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode must be"):
        train.EarlyStopping(mode="lowest")
    assert train.EarlyStopping("val_accuracy").mode == "max"
    X, Y = data(m=20)
    model = model_of()
    with pytest.raises(ValueError, match=r"not 'val_loss' \(val_ metrics need validation=...\)"):
        train.fit(model, bce_logits, X, Y, optim.SGD(model, lr=0.1), 3,
                  early_stopping=train.EarlyStopping(), verbose=False)


# --- schedules --------------------------------------------------------------------------------

@pytest.mark.parametrize("make, formula", [
    (lambda o: optim.StepLR(o, step_size=3, gamma=0.5), lambda t: 0.1 * 0.5 ** (t // 3)),
    (lambda o: optim.ExponentialLR(o, gamma=0.9), lambda t: 0.1 * 0.9 ** t),
    (lambda o: optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
     lambda t: 0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * t / 10)) / 2),
])
def test_schedules_set_the_learning_rate_by_their_closed_forms(make, formula, tmp_path):
    W = nn.Parameter(np.ones(2))
    optimizer = optim.SGD([W], lr=0.1)
    scheduler = make(optimizer)
    lrs = [optimizer.lr]
    for _ in range(12):
        scheduler.step()
        lrs.append(optimizer.lr)
    np.testing.assert_allclose(lrs, [formula(t) for t in range(13)], rtol=1e-14)
    assert scheduler.get_last_lr() == [optimizer.lr]
    # resume: a fresh optimizer and scheduler loaded from files continue exactly
    scheduler.save(tmp_path / "schedule.npz")
    fresh_optimizer = optim.SGD([W], lr=0.5)
    fresh = make(fresh_optimizer).load(tmp_path / "schedule.npz")
    assert fresh_optimizer.lr == optimizer.lr and fresh.last_epoch == 12
    scheduler.step()
    fresh.step()
    assert fresh_optimizer.lr == optimizer.lr


def test_a_schedule_state_is_checked_before_anything_changes():
    W = nn.Parameter(np.ones(2))
    optimizer = optim.SGD([W], lr=0.1)
    scheduler = optim.StepLR(optimizer, 2)
    state = scheduler.state_dict()
    for key, value, message in [("scheduler", "ExponentialLR", "saved by 'ExponentialLR'"),
                                ("gamma", float("nan"), "gamma must be finite"),
                                ("last_epoch", -1, "last_epoch must be a whole number"),
                                ("base_lr", float("inf"), "learning rate must be a finite")]:
        spoiled = dict(state, **{key: value})
        with pytest.raises(ValueError, match=message):
            scheduler.load_state_dict(spoiled)
        assert scheduler.last_epoch == 0 and optimizer.lr == 0.1
    with pytest.raises(ValueError, match="step_size must be a whole number >= 1"):
        optim.StepLR(optimizer, 0)
    cosine = optim.CosineAnnealingLR(optim.SGD([W], lr=0.1), T_max=2)
    cosine.step()
    with pytest.raises(ValueError, match="give eta_min > 0"):
        cosine.step()


# --- clipping ---------------------------------------------------------------------------------

def test_clip_grad_norm_scales_to_max_norm_like_pytorch():
    W, b = nn.Parameter(np.zeros((2, 2)), name="W"), nn.Parameter(np.zeros(2), name="b")
    W.grad, b.grad = np.array([[3.0, 0.0], [0.0, 0.0]]), np.array([0.0, 4.0])
    kept = W.grad
    total = optim.clip_grad_norm_([W, b], max_norm=1.0)
    assert total == pytest.approx(5.0, rel=1e-15)
    np.testing.assert_allclose(W.grad, [[3 / (5 + 1e-6), 0.0], [0.0, 0.0]], rtol=1e-15)
    np.testing.assert_allclose(b.grad, [0.0, 4 / (5 + 1e-6)], rtol=1e-15)
    assert kept[0, 0] == 3.0                                  # replaced, not written into
    assert optim.clip_grad_norm(optim.SGD([W], lr=1).params, 10.0) == pytest.approx(3 / 5, rel=1e-5)
    W.grad = np.array([[3.0, -7.0], [0.0, 0.0]])
    assert optim.clip_grad_norm_([W], 100.0, norm_type=math.inf) == 7.0
    assert optim.clip_grad_norm_([W], 100.0, norm_type=1) == 10.0


def test_clip_grad_norm_counts_a_parameter_listed_twice_once():
    W = nn.Parameter(np.zeros(2))
    W.grad = np.array([3.0, 4.0])
    assert optim.clip_grad_norm_([W, W], max_norm=1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(W.grad, np.array([3.0, 4.0]) / (5.0 + 1e-6))
    W.grad = np.array([3.0, 4.0])
    assert optim.clip_grad_norm_([W, W], 100.0, norm_type=1) == 7.0


def test_clip_grad_norm_refuses_a_non_finite_norm_unless_told():
    W, b = nn.Parameter(np.zeros(2), name="W"), nn.Parameter(np.zeros(2), name="b")
    W.grad, b.grad = np.array([np.nan, 1.0]), np.array([1.0, 1.0])
    with pytest.raises(optim.NonFiniteGradientError,
                       match=r"total 2.0-norm of the gradients is nan; non-finite entries in W of "
                             r"shape \(2,\) \(1 nan, 0 inf\); no gradient was changed"):
        optim.clip_grad_norm_([W, b], 1.0)
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    assert math.isnan(optim.clip_grad_norm_([W, b], 1.0, error_if_nonfinite=False))
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    with pytest.raises(ValueError, match="max_norm must be finite"):
        optim.clip_grad_norm_([W], math.inf)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_sees_a_nan_in_any_gradient_and_an_overflowing_total(norm_type):
    W, b = nn.Parameter(np.zeros(2), name="W"), nn.Parameter(np.zeros(2), name="b")
    W.grad, b.grad = np.array([1.0, 1.0]), np.array([np.nan, 1.0])  # the nan in the last one
    with pytest.raises(optim.NonFiniteGradientError, match=r"non-finite entries in b of shape "
                                                           r"\(2,\) \(1 nan, 0 inf\)"):
        optim.clip_grad_norm_([W, b], 1.0, norm_type=norm_type)
    W.grad, b.grad = np.full(2, 1e200), np.array([1.0, 1.0])    # finite, but the 3-norm's sum is not
    total = optim.clip_grad_norm_([W, b], 1.0, norm_type=norm_type, error_if_nonfinite=False)
    assert total == (math.inf if norm_type in (2.0, 3.0) else pytest.approx(
        2e200 if norm_type == 1.0 else 1e200, rel=1e-12))


# --- an interrupted mini-batch run resumes bit for bit ------------------------------------------

@pytest.mark.parametrize("kind", ["adam", "sgd", "rmsprop", "adamw"])
def test_an_interrupted_and_resumed_mini_batch_run_equals_an_uninterrupted_one(kind, tmp_path):
    make = {"adam": lambda m: optim.Adam(m, lr=0.02),
            "sgd": lambda m: optim.SGD(m, lr=0.3, momentum=0.9),
            "rmsprop": lambda m: optim.RMSprop(m, lr=0.01, momentum=0.5, centered=True),
            "adamw": lambda m: optim.AdamW(m, lr=0.02)}[kind]
    X, Y = data(m=150)     # 150 = 4 x 32 + 22: an uneven last batch

    def run(model, optimizer, shuffler, scheduler, epochs, initial_epoch=0):
        return train.fit(model, bce_logits, X, Y, optimizer, epochs, batch_size=32, rng=shuffler,
                         scheduler=scheduler, initial_epoch=initial_epoch, verbose=False)

    model = model_of(1)
    optimizer = make(model)
    whole = run(model, optimizer, train.Shuffler(7), optim.StepLR(optimizer, 2, 0.7), 7)

    first = model_of(1)
    first_optimizer = make(first)
    shuffler, scheduler = train.Shuffler(7), optim.StepLR(first_optimizer, 2, 0.7)
    part1 = run(first, first_optimizer, shuffler, scheduler, 3)
    first.save(tmp_path / "model.npz")
    first_optimizer.save(tmp_path / "optimizer.npz")
    shuffler.save(tmp_path / "shuffler.npz")
    scheduler.save(tmp_path / "schedule.npz")

    second = model_of(99)                 # other weights, other settings: all come from files
    second.load(tmp_path / "model.npz")
    second_optimizer = make(second).load(tmp_path / "optimizer.npz")
    resumed_shuffler = train.Shuffler(12345).load(tmp_path / "shuffler.npz")
    resumed_scheduler = optim.StepLR(second_optimizer, 2, 0.7).load(tmp_path / "schedule.npz")
    part2 = run(second, second_optimizer, resumed_shuffler, resumed_scheduler, 4, initial_epoch=3)

    assert part1.loss + part2.loss == whole.loss
    assert part2.epochs == [4, 5, 6, 7]
    for a, b in zip(model.parameters(), second.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    # and without the shuffler's state the resumed run differs
    third = model_of(99)
    third.load(tmp_path / "model.npz")
    run(third, make(third).load(tmp_path / "optimizer.npz"), train.Shuffler(7), None, 4, 3)
    assert not all(np.array_equal(a.data, c.data) for a, c in zip(model.parameters(), third.parameters()))


def test_a_shuffler_file_is_checked_and_changes_nothing_when_refused(tmp_path):
    shuffler = train.Shuffler(3)
    state = shuffler.state_dict()
    expected = train.Shuffler(3).permutation(10)
    with pytest.raises(ValueError, match="'MT19937' generator, this shuffler's is 'PCG64'"):
        shuffler.load_state_dict(dict(state, bit_generator="MT19937"))
    with pytest.raises(ValueError, match="saved generator state is not valid"):
        shuffler.load_state_dict(dict(state, state="{\"bit_generator\": \"PCG64\"}"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        shuffler.load(tmp_path / "missing.npz")
    np.testing.assert_array_equal(shuffler.permutation(10), expected)

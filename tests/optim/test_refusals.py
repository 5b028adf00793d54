"""Optimizers never apply a non-finite step, refuse hostile hyperparameters,
and AdamW / RMSprop follow their formulas (PyTorch's semantics) written out in numpy."""
import math
import warnings

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import check, nn, optim


def model_and_optimizer(kind="adam", **kwargs):
    model = nn.MLP([3, 4, 1], ["tanh", "identity"], rng=np.random.default_rng(0))
    make = {"adam": optim.Adam, "sgd": lambda p, **k: optim.SGD(p, lr=0.1, momentum=0.9, **k),
            "adamw": optim.AdamW, "rmsprop": lambda p, **k: optim.RMSprop(p, momentum=0.5, **k)}
    return model, make[kind](model, **kwargs)


def good_step(model, optimizer, seed=0):
    X = np.random.default_rng(seed).standard_normal((3, 6))
    J = ag.binary_cross_entropy_with_logits(model(X), (X[0] > 0)[None, :] * 1.0)
    optimizer.zero_grad()
    J.backward()
    return optimizer.step()


def snapshot(model, optimizer):
    return [p.data.copy() for p in model.parameters()], optimizer.state_dict()


def assert_unchanged(model, optimizer, before):
    parameters, state = before
    for old, new in zip(parameters, model.parameters()):
        np.testing.assert_array_equal(old, new.data)
    after = optimizer.state_dict()
    assert after["steps"] == state["steps"]
    for index, entry in state["parameters"].items():
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, after["parameters"][index][key])
            else:
                assert value == after["parameters"][index][key]


@pytest.mark.parametrize("kind", ["adam", "sgd", "adamw", "rmsprop"])
def test_a_non_finite_gradient_is_refused_naming_each_parameter_and_nothing_changes(kind):
    model, optimizer = model_and_optimizer(kind)
    good_step(model, optimizer)
    before = snapshot(model, optimizer)
    good_step(model, optimizer, seed=1)  # fills .grad; put the step back by hand below
    for parameter, old in zip(model.parameters(), before[0]):
        parameter.data = old.copy()
    optimizer.load_state_dict(before[1])
    W2, b2 = model.layers[1].W, model.layers[1].b
    W2.grad = W2.grad.copy()
    W2.grad[0, 1] = np.nan
    W2.grad[0, 2] = np.inf
    b2.grad = np.full_like(b2.data, -np.inf)
    with pytest.raises(optim.NonFiniteGradientError) as caught:
        optimizer.step()
    message = str(caught.value)
    assert "non-finite gradient in 2 of 4 parameters" in message
    assert "parameter 2 (layers.1.W, W[2]) of shape (1, 4): 1 nan and 1 inf of 4" in message
    assert "parameter 3 (layers.1.b, b[2]) of shape (1, 1): 0 nan and 1 inf of 1" in message
    assert "No parameter and no optimizer state changed" in message
    assert "check.sentinel()" in message and 'nonfinite="skip"' in message
    assert caught.value.indices == [2, 3]
    assert isinstance(caught.value, FloatingPointError)
    assert_unchanged(model, optimizer, before)


def test_with_the_sentinel_on_the_error_names_the_operation_that_made_the_first_nan():
    W = nn.Parameter(np.array([[0.0, 1.0, 2.0]]), name="W[1]")
    optimizer = optim.SGD([W], lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with check.sentinel(action="record"):
            J = W.log().sum()     # log(0) = -inf, and its vjp 1 / 0 = inf
            J.backward()
            with pytest.raises(optim.NonFiniteGradientError,
                               match=r"made here \(check.sentinel\): forward log-domain: "
                                     r"log\('W\[1\]'\)"):
                optimizer.step()
    np.testing.assert_array_equal(W.data, [[0.0, 1.0, 2.0]])


def test_the_sentinel_names_only_origins_after_the_last_good_step():
    W = nn.Parameter(np.array([2.0, 3.0]), name="W")
    optimizer = optim.SGD([W], lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with check.sentinel(action="record") as watch:
            (W * np.array([np.inf, 1.0])).sum()   # an inf made before the good step
            (W * W).sum().backward()
            assert optimizer.step()
            optimizer.zero_grad()
            (W - float(W.data[0])).log().sum().backward()   # log(0) = -inf, its vjp 1/0
            assert len(watch.events) >= 2
            with pytest.raises(optim.NonFiniteGradientError) as caught:
                optimizer.step()
    assert "forward log-domain: log(sub('W', 1.6))" in str(caught.value) and "mul" not in str(caught.value).split("made here")[1]


def test_nonfinite_skip_skips_and_counts_and_changes_nothing():
    model, optimizer = model_and_optimizer("adam", nonfinite="skip")
    good_step(model, optimizer)
    before = snapshot(model, optimizer)
    for parameter in model.parameters():
        parameter.grad = np.full_like(parameter.data, np.nan)
    assert optimizer.step() is False
    assert optimizer.skipped_steps == 1 and "4 nan and 0 inf of 4" in optimizer.last_skipped
    assert_unchanged(model, optimizer, before)
    assert good_step(model, optimizer) is True and optimizer.steps == 2
    with pytest.raises(ValueError, match=r"nonfinite must be one of 'raise', 'skip', got 'ignore'"):
        optim.SGD(model, lr=0.1, nonfinite="ignore")


def test_an_update_that_overflows_is_refused_and_the_state_restored():
    W = nn.Parameter(np.array([1e308, 1.0]), name="W")
    optimizer = optim.SGD([W], lr=1e10, momentum=0.5)
    W.grad = np.array([-1e300, 1.0])
    with pytest.raises(FloatingPointError, match=r"would make parameter 0 \(W\) non-finite"):
        optimizer.step()
    np.testing.assert_array_equal(W.data, [1e308, 1.0])
    assert optimizer.state == [{}] and optimizer.steps == 0


HOSTILE = [
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=math.inf), "weight_decay must be finite, got inf"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=math.nan), "momentum must be finite, got nan"),
    (lambda p: optim.SGD(p, lr=math.inf), "learning rate must be a finite number > 0, got inf"),
    (lambda p: optim.Adam(p, eps=math.inf), "eps must be finite, got inf"),
    (lambda p: optim.Adam(p, eps=math.nan), "eps must be finite, got nan"),
    (lambda p: optim.Adam(p, weight_decay=math.nan), "weight_decay must be finite, got nan"),
    (lambda p: optim.Adam(p, betas=(math.nan, 0.9)), "beta1 must be finite, got nan"),
    (lambda p: optim.Adam(p, betas=0.9), r"betas must be a pair \(beta1, beta2\), got 0.9"),
    (lambda p: optim.AdamW(p, weight_decay=-0.1), "weight_decay must be >= 0, got -0.1"),
    (lambda p: optim.RMSprop(p, alpha=math.nan), "alpha must be finite, got nan"),
    (lambda p: optim.RMSprop(p, alpha=1.5), r"alpha must lie in \[0, 1\], got 1.5"),
    (lambda p: optim.RMSprop(p, momentum=math.inf), "momentum must be finite, got inf"),
    (lambda p: optim.RMSprop(p, centered="yes"), "centered must be True or False"),
]


@pytest.mark.parametrize("make, message", HOSTILE)
def test_hostile_hyperparameters_are_refused_where_given(make, message):
    with pytest.raises(ValueError, match=message):
        make([nn.Parameter(np.ones(2))])


@pytest.mark.parametrize("kind, attribute, value, message", [
    ("sgd", "momentum", math.nan, "momentum must be finite"),
    ("sgd", "weight_decay", math.inf, "weight_decay must be finite"),
    ("adam", "eps", math.nan, "eps must be finite"),
    ("adam", "betas", (0.9, math.inf), "beta2 must be finite"),
    ("adamw", "weight_decay", math.nan, "weight_decay must be finite"),
    ("rmsprop", "alpha", math.inf, "alpha must be finite"),
    ("adam", "lr", math.nan, "learning rate must be a finite number"),
])
def test_hostile_hyperparameters_are_refused_where_set_later(kind, attribute, value, message):
    _, optimizer = model_and_optimizer(kind)
    before = getattr(optimizer, attribute)
    with pytest.raises(ValueError, match=message):
        setattr(optimizer, attribute, value)
    assert getattr(optimizer, attribute) == before


# --- AdamW and RMSprop against their formulas -------------------------------------------------

def gradients(steps=4, seed=3):
    generator = np.random.default_rng(seed)
    return generator.standard_normal((2, 3)), [generator.standard_normal((2, 3)) for _ in range(steps)]


def run(optimizer, W, grads):
    for grad in grads:
        W.grad = grad.copy()
        optimizer.step()


def test_adamw_is_decoupled_weight_decay_as_pytorch_writes_it():
    start, grads = gradients()
    lr, (beta1, beta2), eps, decay = 0.01, (0.9, 0.999), 1e-8, 0.1
    W = nn.Parameter(start.copy())
    run(optim.AdamW([W], lr=lr, weight_decay=decay), W, grads)
    value, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for t, g in enumerate(grads, start=1):
        value = value * (1 - lr * decay)                 # decoupled: not in the moments
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        value = value - lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    np.testing.assert_allclose(W.data, value, rtol=1e-14, atol=0)
    # Adam's L2 decay goes through the moments and lands elsewhere; without decay they agree
    W_adam = nn.Parameter(start.copy())
    run(optim.Adam([W_adam], lr=lr, weight_decay=decay), W_adam, grads)
    assert np.max(np.abs(W_adam.data - W.data)) > 1e-6
    W0, W1 = nn.Parameter(start.copy()), nn.Parameter(start.copy())
    run(optim.AdamW([W0], lr=lr, weight_decay=0.0), W0, grads)
    run(optim.Adam([W1], lr=lr), W1, grads)
    np.testing.assert_array_equal(W0.data, W1.data)
    assert optim.AdamW([W0]).weight_decay == 0.01          # PyTorch's default


@pytest.mark.parametrize("momentum", [0.0, 0.7])
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("decay", [0.0, 0.05])
def test_rmsprop_matches_its_formula(momentum, centered, decay):
    start, grads = gradients()
    lr, alpha, eps = 0.01, 0.9, 1e-8
    W = nn.Parameter(start.copy())
    run(optim.RMSprop([W], lr=lr, alpha=alpha, eps=eps, weight_decay=decay, momentum=momentum,
                      centered=centered), W, grads)
    value = start.copy()
    square, mean, buffer = np.zeros_like(start), np.zeros_like(start), np.zeros_like(start)
    for g in grads:
        g = g + decay * value
        square = alpha * square + (1 - alpha) * g ** 2
        if centered:
            mean = alpha * mean + (1 - alpha) * g
            denominator = np.sqrt(square - mean ** 2) + eps
        else:
            denominator = np.sqrt(square) + eps
        if momentum:
            buffer = momentum * buffer + g / denominator
            value = value - lr * buffer
        else:
            value = value - lr * g / denominator
    np.testing.assert_allclose(W.data, value, rtol=1e-13, atol=1e-15)
    assert optim.RMSprop([W]).describe() == ("lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, "
                                             "momentum=0.0, centered=False")


def test_with_the_sentinel_on_and_no_origin_recorded_the_message_says_so():
    W = nn.Parameter(np.array([1.0, 2.0]), name="W")
    optimizer = optim.SGD([W], lr=0.1)
    with check.sentinel(action="record"):
        W.grad = np.array([np.nan, 0.0])          # set by hand: no operation made it
        with pytest.raises(optim.NonFiniteGradientError,
                           match=r"none recorded since the last good step \(the value came from "
                                 r"outside the recorded graph"):
            optimizer.step()


@pytest.mark.parametrize("kind", ["adam", "sgd", "adamw", "rmsprop"])
def test_an_optimizer_can_be_deep_copied_and_pickled_and_keeps_its_checks(kind):
    import copy
    import pickle
    model, optimizer = model_and_optimizer(kind)
    good_step(model, optimizer)
    for twin in (copy.deepcopy(optimizer), pickle.loads(pickle.dumps(optimizer))):
        assert twin.describe() == optimizer.describe() and twin.steps == 1
        with pytest.raises(ValueError, match="must be finite"):
            twin.weight_decay = math.inf

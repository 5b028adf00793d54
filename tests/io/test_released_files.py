"""Files written by the released version still load: a model with BatchNorm's running
statistics, each optimizer after three steps (and Adam before any), each learning-rate schedule
and the shuffler (PCG64 and MT19937). Each run is made again here; what the file restores must
be the state that run reaches (to round-off: the files were written on another machine)."""
import pathlib

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import nn, optim
from autograd_lite.train import Shuffler

RELEASED = pathlib.Path(__file__).parent / "released"


def model():
    return nn.Sequential(nn.Linear(3, 4, rng=np.random.default_rng(0)), nn.BatchNorm(4),
                         nn.Tanh(), nn.Linear(4, 1, rng=np.random.default_rng(1)))


def batch(step):
    generator = np.random.default_rng(100 + step)
    X = generator.standard_normal((3, 8))
    return X, (X.sum(axis=0) > 0).astype(float)[None, :]


OPTIMIZERS = {
    "sgd": lambda p, lr=0.1: optim.SGD(p, lr=lr, momentum=0.9, weight_decay=0.01),
    "adam": lambda p, lr=0.01: optim.Adam(p, lr=lr, betas=(0.8, 0.99), eps=1e-6),
    "adamw": lambda p, lr=0.01: optim.AdamW(p, lr=lr, weight_decay=0.05),
    "rmsprop": lambda p, lr=0.01: optim.RMSprop(p, lr=lr, alpha=0.9, momentum=0.5, centered=True),
}


def trained(kind, steps=3):
    network = model()
    optimizer = OPTIMIZERS[kind](network)
    for step in range(steps):
        X, Y = batch(step)
        J = ag.binary_cross_entropy_with_logits(network(X), Y)
        optimizer.zero_grad()
        J.backward()
        optimizer.step()
    return network, optimizer


def assert_close(a, b, where="state"):
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_close(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape, where
        # atol: round-off of order-1 parameters. The first layer's b feeds BatchNorm, which
        # cancels it, so its gradient is pure round-off that Adam scales into steps of ~1e-13
        # that differ from CPU to CPU (and formula to formula): only its size is meaningful.
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-9, err_msg=where)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-12), where
    else:
        assert a == b, where


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_a_released_model_and_optimizer_load_and_resume(kind):
    network, optimizer = trained(kind)
    loaded = model().load(RELEASED / f"model_{kind}.npz")
    assert_close(loaded.state_dict(), network.state_dict())
    resumed = OPTIMIZERS[kind](loaded, lr=0.5).load(RELEASED / f"{kind}.npz")
    assert_close(resumed.state_dict(), optimizer.state_dict())
    X, Y = batch(3)
    for net, opt in ((network, optimizer), (loaded, resumed)):
        opt.zero_grad()
        ag.binary_cross_entropy_with_logits(net(X), Y).backward()
        opt.step()
    assert_close(loaded.state_dict(), network.state_dict())


def test_a_released_optimizer_saved_before_any_step_loads():
    optimizer = optim.Adam(model(), lr=0.5).load(RELEASED / "adam_no_step.npz")
    assert optimizer.lr == 0.02 and optimizer.steps == 0
    assert_close(optimizer.state_dict(), optim.Adam(model(), lr=0.02).state_dict())


@pytest.mark.parametrize("kind, make", [
    ("steplr", lambda o: optim.StepLR(o, step_size=2, gamma=0.5)),
    ("exponentiallr", lambda o: optim.ExponentialLR(o, gamma=0.9)),
    ("cosineannealinglr", lambda o: optim.CosineAnnealingLR(o, T_max=10, eta_min=0.01)),
])
def test_a_released_schedule_loads(kind, make):
    reference = make(optim.SGD([nn.Parameter(np.ones(2))], lr=1.0))
    for _ in range(3):
        reference.step()
    optimizer = optim.SGD([nn.Parameter(np.ones(2))], lr=0.3)
    schedule = make(optimizer).load(RELEASED / f"{kind}.npz")
    assert schedule.last_epoch == 3 and optimizer.lr == reference.optimizer.lr
    assert_close(schedule.state_dict(), reference.state_dict())


@pytest.mark.parametrize("kind, generator, draws", [
    ("pcg64", lambda: np.random.default_rng(3), 2),
    ("mt19937", lambda: np.random.Generator(np.random.MT19937(5)), 1),
])
def test_a_released_shuffler_loads_and_draws_the_same_permutations(kind, generator, draws):
    reference = Shuffler(generator())
    for _ in range(draws):
        reference.permutation(10)
    shuffler = Shuffler(generator()).load(RELEASED / f"shuffler_{kind}.npz")
    np.testing.assert_array_equal(shuffler.permutation(50), reference.permutation(50))

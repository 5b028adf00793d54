"""Optimizers: each step against its formula written out in numpy (eqs 74-75 for SGD)."""
import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import nn, optim


def params_with_grads(seed=0, steps=3):
    """Two parameters and a list of gradients per step, drawn from a seeded generator."""
    generator = np.random.default_rng(seed)
    W = nn.Parameter(generator.standard_normal((3, 2)), name="W[1]")
    b = nn.Parameter(generator.standard_normal((3, 1)), name="b[1]")
    grads = [(generator.standard_normal((3, 2)), generator.standard_normal((3, 1)))
             for _ in range(steps)]
    return W, b, grads


def run(optimizer, W, b, grads):
    for dW, db in grads:
        optimizer.zero_grad()
        W.grad, b.grad = dW.copy(), db.copy()
        optimizer.step()


def test_sgd_is_eqs_74_75():
    W, b, grads = params_with_grads()
    W0, b0 = W.data.copy(), b.data.copy()
    run(optim.SGD([W, b], lr=0.1), W, b, grads[:1])
    dW, db = grads[0]
    np.testing.assert_array_equal(W.data, W0 - 0.1 * dW)
    np.testing.assert_array_equal(b.data, b0 - 0.1 * db)


def test_sgd_with_momentum_and_weight_decay():
    W, b, grads = params_with_grads()
    expected, velocity = W.data.copy(), np.zeros_like(W.data)
    for dW, _ in grads:
        g = dW + 0.01 * expected
        velocity = 0.9 * velocity + g
        expected = expected - 0.05 * velocity
    run(optim.SGD([W, b], lr=0.05, momentum=0.9, weight_decay=0.01), W, b, grads)
    np.testing.assert_allclose(W.data, expected, rtol=1e-15)


def test_adam_matches_its_formula():
    W, b, grads = params_with_grads(steps=4)
    expected, m, v = b.data.copy(), 0.0, 0.0
    beta1, beta2, eps, lr = 0.8, 0.99, 1e-6, 0.01
    for t, (_, db) in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * db
        v = beta2 * v + (1 - beta2) * db ** 2
        expected = expected - lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    run(optim.Adam([W, b], lr=lr, betas=(beta1, beta2), eps=eps), W, b, grads)
    np.testing.assert_allclose(b.data, expected, rtol=1e-14)


def test_first_adam_step_moves_every_weight_by_about_lr():
    W, b, grads = params_with_grads(steps=1)
    W0 = W.data.copy()
    run(optim.Adam([W, b], lr=0.01), W, b, grads)
    np.testing.assert_allclose(np.abs(W.data - W0), 0.01, rtol=1e-5)


def test_learning_rate_can_change_between_steps():
    W, b, grads = params_with_grads(steps=2)
    optimizer = optim.SGD([W, b], lr=0.1)
    start = W.data.copy()
    run(optimizer, W, b, grads[:1])
    optimizer.lr = 0.5
    run(optimizer, W, b, grads[1:])
    np.testing.assert_allclose(W.data, start - 0.1 * grads[0][0] - 0.5 * grads[1][0], rtol=1e-15)


def test_a_parameter_without_gradient_is_left_alone_and_zero_grad_resets():
    W, b, _ = params_with_grads()
    optimizer = optim.SGD([W, b], lr=0.1)
    W.grad, before = np.ones((3, 2)), b.data.copy()
    optimizer.step()
    np.testing.assert_array_equal(b.data, before)
    optimizer.zero_grad()
    assert W.grad is None and b.grad is None


def test_a_shared_parameter_is_updated_once_with_the_sum_of_its_gradients():
    model = nn.Sequential(nn.Linear(2, 2, rng=np.random.default_rng(0)), nn.Tanh())
    W = model[0].W
    X = np.ones((2, 3))
    with pytest.warns(UserWarning, match=r"parameter 1 \(W\[1\]\) is parameter 0 again; it is kept once"):
        optimizer = optim.SGD([W, W, model[0].b], lr=0.1)
    assert len(optimizer.params) == 2
    J = (model(X).sum() + (W @ X).sum())
    J.backward()
    expected = W.data - 0.1 * W.grad
    optimizer.step()
    np.testing.assert_array_equal(W.data, expected)


def test_an_optimizer_accepts_a_module():
    model = nn.MLP([2, 3, 1], rng=np.random.default_rng(0))
    assert len(optim.Adam(model).params) == 4


def test_the_update_replaces_the_array_so_an_earlier_copy_stays_a_record():
    W = nn.Parameter(np.ones((1, 1)))
    before = W.numpy()
    (W * W).sum().backward()
    optim.SGD([W], lr=0.5).step()
    assert before[0, 0] == 1.0 and W.data[0, 0] == 0.0


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=0), "learning rate must be a finite number > 0, got 0"),
    (lambda p: optim.SGD(p, lr=float("nan")), "learning rate"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=1.0), r"momentum must lie in \[0, 1\)"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.5)), r"beta2 must lie in \[0, 1\)"),
    (lambda p: optim.Adam(p, eps=0), "eps must be > 0"),
    (lambda p: optim.SGD([], lr=0.1), "empty list"),
])
def test_bad_settings_are_refused(make, message):
    W, b, _ = params_with_grads()
    with pytest.raises(ValueError, match=message):
        make([W, b])


def test_bad_parameters_are_refused():
    with pytest.raises(TypeError, match="parameter 0 is a Tensor without requires_grad"):
        optim.SGD([ag.Tensor(np.ones(2))], lr=0.1)
    W = nn.Parameter(np.ones(2))
    with pytest.raises(TypeError, match="computed by mul; only leaves"):
        optim.SGD([W * 2], lr=0.1)
    with pytest.raises(TypeError, match="not a single Tensor"):
        optim.SGD(W, lr=0.1)
    optimizer = optim.SGD([W], lr=0.1)
    with pytest.raises(ValueError, match=r"tensor's shape \(2,\), got \(3,\)"):
        W.grad = np.ones(3)  # refused where it is set, before a step can read it
    W._grad = np.ones(3)  # past the setter: the step still checks
    with pytest.raises(ValueError, match=r"shape \(2,\) but its .grad has shape \(3,\)"):
        optimizer.step()


def test_the_optim_package_is_at_most_450_lines():
    """Each optimizer is its update formula and one declaration; the rest is shared."""
    import pathlib
    package = pathlib.Path(optim.__file__).parent
    lines = sum(len(path.read_text().splitlines()) for path in package.glob("*.py"))
    assert lines <= 450, f"autograd_lite/optim holds {lines} lines"


def test_each_constructor_signature_comes_from_the_declaration():
    import inspect
    assert str(inspect.signature(optim.SGD)) == \
        "(params, lr, momentum=0.0, weight_decay=0.0, *, nonfinite='raise')"
    assert str(inspect.signature(optim.AdamW)) == \
        "(params, lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, *, nonfinite='raise')"
    assert str(inspect.signature(optim.StepLR)) == "(optimizer, step_size, gamma=0.1)"
    W = nn.Parameter(np.ones(2))
    assert optim.SGD([W], 0.5, 0.9).describe() == "lr=0.5, momentum=0.9, weight_decay=0.0"
    with pytest.raises(TypeError, match="SGD: .*'speed'"):
        optim.SGD([W], lr=0.1, speed=2)
    with pytest.raises(TypeError, match="SGD: missing a required argument: 'lr'"):
        optim.SGD([W])

"""The benchmark code cannot rot: every workload's correctness check runs here on tiny sizes.

``python -m benchmarks.run`` refuses to time an implementation whose J or gradients differ from
the hand-written numpy step (eqs 33-34, 76, 77-84). These tests run those same checks, and
the timed step functions themselves (forward, backward, the SGD update of eqs 74-75), on
shrunken copies of every workload (same depth, a few units, a few samples), so a change to the
engine, nn, optim, ag.compile or the benchmark code that breaks a benchmark fails here first.
Nothing here times anything or asserts a speed (see docs/speed.md).
"""
from __future__ import annotations

import numpy as np
import pytest

import autograd_lite as ag
from benchmarks import run, workloads
from benchmarks.workloads import WORKLOADS, Workload


def tiny(workload: Workload) -> Workload:
    """The workload with at most 4 units per layer and 3 samples, same depth (n[0] ... n[N])."""
    return Workload(f"tiny {workload.name}", tuple(min(n, 4) for n in workload.layers),
                    min(workload.m, 3))


TINY = [tiny(w) for w in WORKLOADS]
IDS = [w.name for w in WORKLOADS]


@pytest.mark.parametrize("workload", TINY, ids=IDS)
def test_every_implementation_has_the_numpy_steps_J_and_gradients(workload):
    run.check_gradients(workload)  # raises SystemExit on any mismatch


@pytest.mark.parametrize("workload", TINY, ids=IDS)
def test_the_timed_steps_update_the_parameters_alike(workload):
    """Three steps of each timed closure (the compiled one traces, checks, then replays) leave
    every implementation with the numpy step's W[l], b[l]: eqs 74-75 applied to equal gradients."""
    steps, parameters = run._implementations_and_parameters(workload)
    before = [p.copy() for p in parameters["numpy"]()]
    for step in steps.values():
        for _ in range(3):
            step()
    expected = parameters["numpy"]()
    assert any(not np.array_equal(p, q) for p, q in zip(before, expected))  # it did train
    for name, current in parameters.items():
        found = current()
        assert len(found) == len(expected), name
        for p, q in zip(found, expected):
            np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-13, err_msg=name)


def test_the_numpy_floor_follows_eqs_77_to_84():
    """The floor itself, against finite differences of its own J (central, step 1e-6), on a
    two-hidden-layer network: the engine is compared to it, so it must be right."""
    X, Y, W, b = Workload("floor", (3, 4, 2, 1), 3).problem(seed=1)
    J, dW, db = workloads.numpy_grads(W, b, X, Y)

    def cost():
        return workloads.numpy_grads(W, b, X, Y)[0]

    for params, grads in ((W, dW), (b, db)):
        for p, g in zip(params, grads):
            numeric = np.zeros_like(p)
            for index in np.ndindex(p.shape):
                saved = p[index]
                p[index] = saved + 1e-6
                up = cost()
                p[index] = saved - 1e-6
                down = cost()
                p[index] = saved
                numeric[index] = (up - down) / 2e-6
            np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-9)


def test_a_wrong_gradient_stops_the_run_before_timing(monkeypatch):
    """The check can fail: a floor whose dW[1] is off by 1% is refused, naming what differs."""
    honest = workloads.numpy_grads

    def off_by_one_percent(W, b, X, Y):
        J, dW, db = honest(W, b, X, Y)
        return J, [dW[0] * 1.01] + dW[1:], db

    monkeypatch.setattr(run, "numpy_grads", off_by_one_percent)
    with pytest.raises(SystemExit, match=r"dW\[1\] differs from the hand-written numpy step"):
        run.check_gradients(TINY[0])


@pytest.mark.parametrize("collect_garbage", [True, False])
def test_the_chain_computes_y_and_its_gradient(collect_garbage):
    """The chain scaling's workload is checked too: y = 1.0001^N x and dy/dx = 1.0001^N."""
    forward, backward, expected = run.chain_per_op(50, 1, collect_garbage=collect_garbage)
    assert expected == 1.0001 ** 50
    assert forward > 0 and backward > 0


def test_a_wrong_chain_stops_the_run(monkeypatch):
    monkeypatch.setattr(run.ag.Tensor, "__mul__", lambda self, other: self + other)
    with pytest.raises(SystemExit, match="chain of 5 ops"):
        run.chain_per_op(5, 1)


def test_peak_memory_sees_numpy_arrays():
    """tracemalloc sees numpy's allocations: a step making a 1 MiB array peaks above 1 MiB."""
    peak = run.peak_memory(lambda: np.ones(1 << 17).sum())
    assert 1 << 20 <= peak < 2 << 20


def test_a_leaf_gradient_never_aliases_an_array_a_vjp_or_another_leaf_holds():
    """.grad is always the leaf's own array: a vjp's result something else still holds is
    copied, and add's vjp handing the same g to two leaves gives them two arrays."""
    made = []

    class Spy(ag.Primitive):
        name = "spy"

        def forward(self, x):
            return 2 * x

        def vjp(self, g, inputs, output, wants):
            grad = 2 * g
            made.append(grad)  # held by this list
            return (grad,)

    x = ag.Tensor(np.ones(3), requires_grad=True)
    Spy()(x).sum().backward()
    assert not np.shares_memory(x.grad, made[0])
    np.testing.assert_array_equal(x.grad, 2 * np.ones(3))
    a = ag.Tensor(np.ones((2, 3)), requires_grad=True)
    b = ag.Tensor(np.ones((2, 3)), requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad, b.grad)


# --- the convolution layer (benchmarks/conv.py) ---------------------------------------------------

from benchmarks import conv  # noqa: E402

TINY_CONVS = [conv.ConvWorkload("tiny conv, padding 1", C=2, side=4, m=3, F=3),
              conv.ConvWorkload("tiny conv, no padding", C=3, side=5, m=2, F=2, padding=0)]


@pytest.mark.parametrize("workload", TINY_CONVS, ids=[w.name for w in TINY_CONVS])
def test_the_hand_numpy_conv_has_the_engines_Z_and_gradients(workload):
    """Z, dX, dW and db of ag.nn.Conv2d with Z.backward(G) equal the im2col math written by
    hand (rtol 1e-9): the check the benchmark runs before timing."""
    conv.check(workload)  # raises SystemExit on any mismatch
    X, W, b, G = workload.problem()
    Z, (dX, dW, db) = conv.numpy_conv(X, W, b, G, workload.padding)
    X_t, layer = conv.engine_problem(X, W, b, workload)
    Z_t, grads = conv.engine_conv(X_t, layer, G)
    for found, expected in zip((Z_t,) + grads, (Z, dX, dW, db)):
        np.testing.assert_allclose(found, expected, rtol=1e-9, atol=1e-12)


def test_the_hand_numpy_conv_follows_finite_differences():
    """The floor itself: J = sum(Z * G), so dJ/dX, dJ/dW, dJ/db are the hand gradients; central
    differences (step 1e-6) agree with them."""
    workload = TINY_CONVS[0]
    X, W, b, G = workload.problem(seed=2)
    _, grads = conv.numpy_conv(X, W, b, G, workload.padding)

    def cost():
        return np.sum(conv.numpy_conv(X, W, b, G, workload.padding)[0] * G)

    for array, grad in zip((X, W, b), grads):
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + 1e-6
            up = cost()
            array[index] = saved - 1e-6
            down = cost()
            array[index] = saved
            numeric[index] = (up - down) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_a_wrong_conv_gradient_stops_the_run_before_timing():
    def off_by_one_percent(X, W, b, G, padding):
        Z, (dX, dW, db) = conv.numpy_conv(X, W, b, G, padding)
        return Z, (dX, dW * 1.01, db)

    with pytest.raises(SystemExit, match="dW differs from the hand-written numpy conv"):
        conv.check(TINY_CONVS[0], hand=off_by_one_percent)


def test_the_conv_section_is_checked_and_printed(monkeypatch, capsys):
    """`--only conv` runs the conv section alone (on a tiny layer here); `--no-conv` skips it."""
    monkeypatch.setattr(conv, "CONV", conv.ConvWorkload("conv tiny", C=2, side=4, m=3, F=3))
    assert run.main(["--only", "conv", "--budget", "0", "--no-chain", "--no-memory"]) == 0
    out = capsys.readouterr().out
    assert "| conv tiny |" in out and "One training step" not in out
    with pytest.raises(SystemExit, match="matches no workload"):
        run.main(["--only", "conv", "--no-conv"])

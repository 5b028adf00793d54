"""The sentinel decides a NaN's origin element by element, and watches only its own thread
(autograd_lite/check/sentinel.py)."""
import threading

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import check


def test_a_nan_born_in_one_element_is_reported_although_another_already_held_an_inf():
    x = ag.Tensor([np.inf, 0.0], requires_grad=True, name="x")
    with check.sentinel(action="record") as watch:
        y = (x * 1.0).named("y")                  # inf flows on: not an origin
        z = (y / ag.Tensor([1.0, 0.0])).named("z")      # 0 / 0: a NaN born in element 1
    events = [e for e in watch.events if e.op != "leaf"]
    assert [(e.kind, e.name, e.index) for e in events] == [("nan", "'z'", (1,))], watch.report()
    assert "its inputs were finite there" in events[0].detail


def test_a_nan_that_merely_flows_on_is_not_an_origin():
    x = ag.Tensor([0.0, 1.0], requires_grad=True, name="x")
    with check.sentinel(action="record") as watch:
        y = (x / ag.Tensor([0.0, 1.0])).named("y")       # 0 / 0: born at element 0
        z = (y * 2.0 + 1.0).named("z")                   # carries it: no new origin
    assert [(e.kind, e.name, e.index) for e in watch.events] == [("nan", "'y'", (0,))]


def test_an_inf_turning_into_a_nan_at_its_own_element_flows_on_from_the_inf():
    x = ag.Tensor([1.0, 0.0], requires_grad=True, name="x")
    with check.sentinel(action="record") as watch:
        y = (1.0 / x).named("y")                        # inf born at element 1
        z = (y - y).named("z")                          # inf - inf = nan there: flows on
    assert [(e.kind, e.name, e.index) for e in watch.events] == [("inf", "'y'", (1,))]


def test_backward_reports_a_nan_born_in_another_element_than_the_incoming_one():
    class Spiky(ag.Primitive):
        name = "spiky"

        def forward(self, x):
            return x.copy()

        def vjp(self, g, inputs, output, wants):
            out = np.array(g, dtype=float)
            out[1] = np.nan           # born here, while element 0 arrives as inf
            return (out,)

    x = ag.Tensor([1.0, 2.0], requires_grad=True, name="x")
    with check.sentinel(action="record") as watch:
        y = Spiky()(x).named("y")
        J = (y * ag.Tensor([np.inf, 1.0])).sum()
        J.backward()
    backward = [e for e in watch.events if e.phase == "backward"]
    assert any(e.op == "spiky" and e.kind == "nan" and e.index == (1,) for e in backward), \
        watch.report()


def test_a_sentinel_never_raises_in_another_thread():
    errors, started, finished = [], threading.Event(), threading.Event()

    def train():
        try:
            started.wait(5)
            x = ag.Tensor([0.0], requires_grad=True, name="other-thread-x")
            with np.errstate(divide="ignore", invalid="ignore"):
                y = (x / ag.Tensor([0.0])).named("other-thread-y")   # a NaN in this thread
                y.sum().backward()
        except Exception as error:  # noqa: BLE001 - the test reports whatever escaped
            errors.append(error)
        finally:
            finished.set()

    worker = threading.Thread(target=train)
    worker.start()
    with check.sentinel(action="raise") as watch:
        started.set()
        assert finished.wait(10)
    worker.join()
    assert errors == [] and watch.events == []


def test_a_sentinel_in_this_thread_still_sees_this_threads_operations_while_another_runs():
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            (ag.Tensor([1.0], requires_grad=True) * 2.0).sum().backward()

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        with pytest.raises(check.SentinelError, match=r"forward nan: div\('mine', 0\)"):
            with check.sentinel(action="raise"):
                ag.Tensor([0.0], requires_grad=True, name="mine") / 0.0
    finally:
        stop.set()
        worker.join()
    from autograd_lite.check.sentinel import active_sentinels
    assert active_sentinels() == ()   # nothing left switched on

"""Adversarial cases for releasing recorded values (autograd_lite.release), beyond
tests/test_release.py: ways a value someone can still reach might be lost, a gradient might
change, or something might raise, leak or race.

The promise under test (release.py's docstring): a value is released only when no backward
rule reads it AND nothing outside the graph holds its tensor, judged by the tensor's reference
count being exactly its uses as an input in the graph. Whatever the user holds, however it is
held, keeps its value; every gradient (first, second, third order, ag.compile) is bit for bit
the one computed inside ag.keep_values().

Each comparison with keep_values() also checks that values WERE released in the other run,
so that it compares something (a test that releases nothing could not fail).

Themes, in order:

1. a consumer that dies before backward (a probe computed and dropped, an op that raised)
2. holders that are not lists or dicts
3. ops under ag.grad / hvp / value_and_grad up to third order, custom primitives, ag.compile
4. retain_graph, retain_grad, pictures, sentinels, no_grad, float32, 0-d, long chains, threads
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import autodiff, release
from autograd_lite.release import is_released


# --- helpers ------------------------------------------------------------------------------------

def fresh_Z():
    """x (a leaf) and Z = 3 x + 1: made by add, whose vjp reads neither input nor output, so
    Z is a candidate for release (eq 33's Z[l] = W[l] A[l-1] + b[l] has the same two ops)."""
    x = ag.Tensor(np.arange(4.0).reshape(2, 2), requires_grad=True, name="x")
    return x, x * 3.0 + 1.0


def more_ops(A, count=2 * release.RELEASE_DELAY + 2):
    """A few recorded ops after A, enough for at least one batch of releases."""
    for _ in range(count):
        A = A * 1.0 + 0.0
    return A


def released_during_backward(monkeypatch):
    """A list that fills, during each backward, with whether each input a vjp saw was released."""
    seen = []
    monkeypatch.setattr(autodiff, "backward_hooks",
                        [lambda op, tensor, inputs, grads: seen.extend(map(is_released, inputs))])
    return seen


def released_and_kept(f, monkeypatch):
    """f() run with releasing, then inside keep_values(); asserts values were released in the
    first run and none in the second, and returns both results (lists of arrays)."""
    seen = released_during_backward(monkeypatch)
    released = [np.array(a, copy=True) for a in f()]
    assert any(seen), "nothing was released: this comparison would not test anything"
    seen.clear()
    with ag.keep_values():
        kept = [np.array(a, copy=True) for a in f()]
    assert not any(seen)
    return released, kept


def assert_bitwise_equal(released, kept):
    assert len(released) == len(kept)
    for k, (got, want) in enumerate(zip(released, kept)):
        assert got.dtype == want.dtype and got.shape == want.shape, k
        assert np.array_equal(got, want, equal_nan=True), f"result {k} differs once values are released"


# --- 1. a consumer that dies before backward ------------------------------------------------------
# Z's count of uses goes up when a consumer is recorded; the reference that consumer holds goes
# away when it dies. A dropped consumer plus the user's own variable then add up to exactly the
# count, and Z looked unheld (the user's Z.numpy() then raised ReleasedValueError).

@pytest.mark.parametrize("probe", [
    lambda Z: Z.sigmoid().mean().item(),       # a value printed in passing (eq 7)
    lambda Z: Z + 1.0,                         # an expression statement, result dropped
    lambda Z: Z * 2.0,                         # mul by a constant ("others": Z is not read)
    lambda Z: Z @ np.eye(2),                   # matmul by a constant ("others")
    lambda Z: (Z.tanh() > 0).mean(),           # a comparison: a boolean array, tanh dropped
], ids=["sigmoid-mean-item", "add", "mul-constant", "matmul-constant", "tanh-compare"])
def test_a_held_Z_keeps_its_value_after_a_consumer_was_dropped(probe):
    x, Z = fresh_Z()
    expected = Z.data.copy()
    probe(Z)  # its result is dropped at once
    A = more_ops(Z.sigmoid())
    release.release_waiting()
    assert not is_released(Z)
    assert np.array_equal(Z.numpy(), expected)
    J = (Z * x).sum() + A.sum()  # and Z can still be used in a rule that reads it
    J.backward()
    assert np.all(np.isfinite(x.grad))


def test_a_held_Z_keeps_its_value_after_an_op_that_raised():
    """``(Z + 1) @ bad`` records Z + 1, then matmul raises: the sum dies with the exception."""
    x, Z = fresh_Z()
    expected = Z.data.copy()
    with pytest.raises(ag.ShapeError):
        (Z + 1.0) @ np.ones((3, 3))
    A = more_ops(Z.sigmoid())
    release.release_waiting()
    assert not is_released(Z) and np.array_equal(Z.numpy(), expected)
    A.sum().backward()


def test_a_dropped_consumer_does_not_stop_unheld_values_being_released():
    """The fix keeps what a dropped consumer touched, nothing else: the seed loop's W·A and Z
    (eq 33) still go when no consumer of theirs died."""
    x, Z = fresh_Z()
    Z.sigmoid()  # dropped: keeps Z
    WA = x * 2.0
    Z2 = WA + 1.0
    A = Z2.sigmoid()
    del WA, Z2
    more_ops(A)
    release.release_waiting()
    assert not is_released(Z)
    assert is_released(A.parents[0]) and is_released(A.parents[0].parents[0])

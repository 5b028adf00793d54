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


# --- 1b. a vjp that meets a released value says which op and why ----------------------------------
# Two ways a backward rule can read what the recorder was told it would not: a leaf whose
# requires_grad was switched on after the op was recorded (mul's "others": x is read only for
# y's gradient, and y needed none then), and a custom primitive that declares less than its vjp
# reads. Before, the error said "no backward rule reads it", which is exactly what went wrong.

def _mul_by_a_constant_switched_on_afterwards():
    x, Z = fresh_Z()
    c = ag.Tensor(np.full((2, 2), 2.0), name="c")
    P = Z * c
    del Z  # before the next ops, so that Z is unheld when it is looked at
    P = more_ops(P)
    c.requires_grad = True  # after the product was recorded
    return P.sum()


class _ReadsWhatItDeclaresUnread(ag.Primitive):
    """x ** 2 with vjp 2 x g, wrongly declaring that the vjp reads no input."""
    name = "square_declared_wrongly"
    vjp_reads_inputs = False
    vjp_reads_output = False

    def forward(self, x):
        return x * x

    def vjp(self, g, inputs, output, wants):
        return (2.0 * inputs[0] * g,)


def _misdeclared_custom_primitive():
    x, Z = fresh_Z()
    Y = _ReadsWhatItDeclaresUnread()(Z)
    del Z
    return more_ops(Y).sum()


@pytest.mark.parametrize("make, says", [
    (_mul_by_a_constant_switched_on_afterwards, ("mul", "requires_grad")),
    (_misdeclared_custom_primitive, ("square_declared_wrongly", "vjp_reads_inputs")),
], ids=["requires_grad-switched-on-late", "custom-primitive-declares-less"])
@pytest.mark.parametrize("mode", ["backward", "ag.grad"])
def test_a_vjp_reading_a_released_value_names_the_op_and_the_likely_cause(make, says, mode):
    J = make()
    with pytest.raises(ag.ReleasedValueError) as caught:
        if mode == "backward":
            J.backward()
        else:  # create_graph: the vjp records ops on Tensors
            autodiff.backpropagate(J, np.ones(()), create_graph=True, accumulate=False)
    message = str(caught.value)
    assert all(word in message for word in says), message
    assert "backward" in message


@pytest.mark.parametrize("use", [
    lambda v: 2.0 * v, lambda v: v * 2.0, lambda v: v + 1, lambda v: 1 - v, lambda v: v / 2,
    lambda v: v ** 2, lambda v: v @ np.ones(2), lambda v: -v, lambda v: abs(v),
    lambda v: v > 0, lambda v: v <= 0, lambda v: v == 0, lambda v: bool(v),
], ids=["rmul", "mul", "add", "rsub", "div", "pow", "matmul", "neg", "abs", "gt", "le", "eq",
        "bool"])
def test_python_operators_on_a_released_value_raise_ReleasedValueError(use):
    """Before, ``2.0 * v`` (as a custom vjp might write it) was Python's bare TypeError
    ("unsupported operand type(s) for *: 'float' and 'ReleasedValue'") and ``v == 0`` was
    silently False: operators are looked up on the type, not through __getattr__."""
    x, Z = fresh_Z()
    A = Z.sigmoid()
    del Z
    more_ops(A)
    release.release_waiting()
    value = A.parents[0].data
    assert isinstance(value, release.ReleasedValue)
    with pytest.raises(ag.ReleasedValueError):
        use(value)
    assert hash(value) == hash(value)  # still a usable dict value / key

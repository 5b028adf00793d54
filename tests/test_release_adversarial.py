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


# --- 2. holders that are not lists or dicts ---------------------------------------------------------

class _Attribute:
    pass


class _Slots:
    __slots__ = ("t",)


def _hold(kind, Z):
    """(holder, get): Z held by ``kind``; ``get(holder)`` gives it back."""
    import dataclasses

    if kind == "generator frame":
        def suspended(t):
            yield None
            yield t
        holder = suspended(Z)
        next(holder)
        return holder, next
    if kind == "closure cell":
        def make(t):
            return lambda: t
        return make(Z), lambda h: h()
    if kind == "numpy object array":
        holder = np.empty(1, dtype=object)
        holder[0] = Z
        return holder, lambda h: h[0]
    if kind == "attribute":
        holder = _Attribute()
        holder.t = Z
        return holder, lambda h: h.t
    if kind == "slot":
        holder = _Slots()
        holder.t = Z
        return holder, lambda h: h.t
    if kind == "dataclass":
        holder = dataclasses.make_dataclass("Cache", ["t"])(Z)
        return holder, lambda h: h.t
    if kind == "set":
        return {Z}, lambda h: next(iter(h))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["generator frame", "closure cell", "numpy object array",
                                  "attribute", "slot", "dataclass", "set"])
def test_a_Z_held_by_any_python_object_keeps_its_value(kind):
    x, Z = fresh_Z()
    expected = Z.data.copy()
    holder, get = _hold(kind, Z)
    A = Z.sigmoid()
    unheld = x * 2.0 + 1.0  # the same kind of value, held by nobody once A2 is made
    A2 = unheld.sigmoid()
    del Z, unheld
    J = more_ops(A + A2).sum()
    release.release_waiting()
    assert is_released(A2.parents[0])  # so holding is what kept Z
    J.backward()
    Z = get(holder)
    assert not is_released(Z) and np.array_equal(Z.numpy(), expected)


# --- 3. higher order, every kind of op, custom primitives, ag.compile ---------------------------------
# Each function mixes ops whose results are released (add, sub, mul and matmul by a constant:
# no vjp reads them) with the op under test, so a vjp of that op (ndarray mode in the first
# derivative's own backward, Tensor mode under create_graph) that read a released value, or a
# release of a value one of them reads, would raise or change a bit.

_M = np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]])
_LABELS = (np.arange(6).reshape(2, 3) % 2).astype(np.float64)
_OPS = {
    "getitem": lambda t: ((t * 2.0 + 1.0)[0, 1:] * (t + 1.0)[1, :2]).sum().sigmoid(),
    "reshape": lambda t: ((t * 2.0 + 1.0).reshape(3, 2) @ (t + 0.5)).sum(),
    "transpose": lambda t: ((t * 2.0 + 1.0).T @ (t * t + 1.0)).tanh().sum(),
    "broadcast_to+sum": lambda t: ((t.sum(axis=1, keepdims=True) + 1.0).broadcast_to((2, 3))
                                   * (t - 2.0)).sum(),
    "mean+pow": lambda t: ((t * 3.0 + 1.0).mean(axis=0) ** 3).sum(),
    "softmax": lambda t: ((t * 2.0 - 1.0).softmax(axis=0) * (t + 1.0)).sum(),
    "log_softmax": lambda t: ((t * 2.0 - 1.0).log_softmax(axis=0) * (t + 1.0)).sum(),
    "pow tensor exponent": lambda t: ((t + 1.0) ** (t * 0.5 + 0.2)).sum(),
    "div": lambda t: ((t * 2.0 + 1.0) / (t * t + 1.0)).sum(),
    "relu+abs": lambda t: ((t * 2.0 - 1.2).relu() * (t - 0.7).abs() * (t * t + 0.0)).sum(),
    "fused loss": lambda t: ag.binary_cross_entropy_with_logits((t * 2.0 - 1.0) * (t + 0.1),
                                                                ag.Tensor(_LABELS)),
    "matmul by constants": lambda t: ((ag.Tensor(_M) @ (t * t + 1.0)).sigmoid()
                                      @ ag.Tensor(np.ones((3, 2)))).sum(),
    "exp": lambda t: (((t * 0.5 + 0.1).exp() + 1.0) * (t + 2.0)).sum(),
    "neg+sub": lambda t: (-(t * 2.0 - 1.0) * (1.0 - t).sigmoid()).sum(),
    "two consumers, one reads": lambda t: (lambda Z: (Z.sigmoid() * Z).sum())(t * 2.0 + 1.0),
}


def _three_derivatives(f):
    """f' , then d/dx of <f', V>, then d/dx of 1.5 * sum of that: first, second, third order."""
    V = ag.Tensor(np.arange(6.0).reshape(2, 3))
    g1 = ag.grad(f)
    g2 = ag.grad(lambda t: (g1(t) * V).sum())
    g3 = ag.grad(lambda t: (g2(t) * 1.5).sum())
    x = ag.Tensor(np.linspace(0.3, 1.1, 6).reshape(2, 3))
    return [g1(x).data, g2(x).data, g3(x).data]


@pytest.mark.parametrize("name", list(_OPS))
def test_up_to_third_derivatives_are_bit_for_bit_those_of_keep_values(name, monkeypatch):
    assert_bitwise_equal(*released_and_kept(lambda: _three_derivatives(_OPS[name]), monkeypatch))


def test_value_and_grad_and_hvp_are_bit_for_bit_those_of_keep_values(monkeypatch):
    def run():
        x = ag.Tensor(np.linspace(-1.0, 1.0, 4))
        value, grad = ag.value_and_grad(lambda t: ((t * 2.0 + 1.0).sigmoid() * (t - 1.0)).sum())(x)
        product = ag.hvp(lambda t: ((t * 2.0 + 1.0).tanh() * (t * t - 1.0)).sum(), x, np.ones(4))
        return [value.data, grad.data, product.data]
    assert_bitwise_equal(*released_and_kept(run, monkeypatch))


class _Cube(ag.Primitive):
    """x³ with vjp 3 x² g: reads its input (declared), not its output (declared)."""
    name = "cube"
    vjp_reads_inputs = True
    vjp_reads_output = False

    def forward(self, x):
        return x ** 3

    def vjp(self, g, inputs, output, wants):
        (x,) = inputs
        return (g * 3.0 * x * x,)


def test_a_custom_primitive_s_second_derivative_is_that_of_keep_values(monkeypatch):
    cube = _Cube()

    def run():
        f = lambda t: (cube(t * 2.0 + 1.0) * 0.5 + 1.0).sigmoid().sum()  # noqa: E731
        second = ag.grad(lambda u: ag.grad(f)(u).sum())
        return [second(ag.Tensor(np.linspace(-1.0, 1.0, 5))).data]
    assert_bitwise_equal(*released_and_kept(run, monkeypatch))


def test_a_compiled_step_traced_and_replayed_matches_keep_values(monkeypatch):
    """ag.compile traces the eager engine (calls 1 and 2) while values are released, then
    replays (calls 3 and 4); every J and gradient equals the same steps inside keep_values."""
    def run():
        W = ag.Tensor(_M, requires_grad=True, name="W")
        b = ag.Tensor(np.zeros((3, 1)), requires_grad=True, name="b")
        X = np.linspace(-2.0, 2.0, 12).reshape(2, 6)
        Y = (np.arange(18).reshape(3, 6) % 2).astype(np.float64)
        step = ag.compile(lambda X, Y: ag.binary_cross_entropy_with_logits(
            (W @ X + b).tanh() * 2.0 - 0.5, Y))
        results = []
        for _ in range(4):
            W.grad = b.grad = None
            J = step(X, Y)
            results += [J.data, W.grad, b.grad]
        return results
    assert_bitwise_equal(*released_and_kept(run, monkeypatch))


# --- 4. retain_graph, retain_grad, pictures, sentinels, no_grad, dtypes, long chains, threads --------

def _two_layers(keep):
    """A 2-3-1 network (eqs 33-34, 76) whose Z[1] asked for retain_grad and was then dropped:
    reachable only through J's graph, like every other intermediate."""
    with (ag.keep_values() if keep else contextlib.nullcontext()):
        W1 = ag.Tensor(_M, requires_grad=True, name="W[1]")
        W2 = ag.Tensor(np.array([[1.0, -2.0, 0.5]]), requires_grad=True, name="W[2]")
        X = ag.Tensor(np.linspace(-1.0, 1.0, 8).reshape(2, 4), name="X")
        Z1 = (W1 @ X + 0.5).retain_grad()
        A1 = Z1.sigmoid()
        del Z1
        Z2 = W2 @ A1 - 0.25
        J = ag.binary_cross_entropy_with_logits(Z2, ag.Tensor(np.array([[0.0, 1.0, 1.0, 0.0]])))
    return J, W1, W2, A1


def test_retain_grad_on_a_dropped_handle_and_two_retained_backwards_match_keep_values():
    results = []
    for keep in (False, True):
        J, W1, W2, A1 = _two_layers(keep)
        J.backward(retain_graph=True)
        J.backward(retain_graph=True)  # gradients add up (eqs 77-84 twice)
        Z1 = A1.parents[0]
        assert is_released(Z1) != keep  # nobody held it: released, yet dZ[1] is kept
        results.append([W1.grad, W2.grad, Z1.grad])
    assert_bitwise_equal(*results)


@pytest.mark.parametrize("options", [{"values": True, "grads": True},
                                     {"values": True, "backward": True}])
def test_a_picture_after_retained_backwards_is_identical_with_released_values(options):
    pictures = []
    for keep in (False, True):
        J, W1, W2, A1 = _two_layers(keep)
        J.backward(retain_graph=True)
        J.backward(retain_graph=True)
        assert is_released(A1.parents[0]) != keep
        pictures.append(ag.draw(J, **options).source)
    assert pictures[0] == pictures[1]


def test_the_sentinel_and_compare_model_while_values_are_released():
    """Both watch through forward_hooks: the sentinel keeps only weak references to what it
    has not reported (so values still go), compare_model keeps every result (so none do);
    either way every gradient is the hand derivation's (eqs 77-84)."""
    from autograd_lite import check

    J, W1, W2, A1 = _two_layers(keep=False)
    with check.sentinel(action="raise") as watch:
        J2, V1, V2, B1 = _two_layers(keep=False)
        J2.backward(retain_graph=True)
    assert watch.clean and is_released(B1.parents[0])
    J.backward()
    assert np.array_equal(V1.grad, W1.grad) and np.array_equal(V2.grad, W2.grad)
    model = ag.nn.MLP([2, 3, 1], rng=np.random.default_rng(0))
    X = np.linspace(-1.0, 1.0, 8).reshape(2, 4)
    comparison = check.compare_model(model, X, np.array([[0.0, 1.0, 1.0, 0.0]]))
    assert comparison.passed, str(comparison)


def test_no_grad_blocks_between_recorded_ops_change_nothing(monkeypatch):
    """Results made under no_grad hold no graph reference and add no use to Z's count."""
    def run():
        x, Z = fresh_Z()
        with ag.no_grad():
            statistic = (Z * 2.0 + 1.0).sum()  # reads Z now, records nothing
        A = Z.sigmoid()
        del Z
        J = more_ops(A).sum()
        J.backward()
        return [statistic.data, x.grad, J.data]
    assert_bitwise_equal(*released_and_kept(run, monkeypatch))


@pytest.mark.parametrize("dtype, shape", [(np.float32, (3, 2)), (np.float64, ()),
                                          (np.float32, ())], ids=["float32", "0-d", "float32 0-d"])
def test_float32_and_0d_chains_match_keep_values(dtype, shape, monkeypatch):
    def run():
        x = ag.Tensor(np.full(shape, 0.5), requires_grad=True, dtype=dtype)
        y = x
        for _ in range(12):
            y = (y * 1.01 + 0.1).tanh() + y * 0.5
        J = y.sum()
        J.backward()
        assert x.grad.dtype == dtype and J.data.dtype == dtype
        return [J.data, x.grad]
    assert_bitwise_equal(*released_and_kept(run, monkeypatch))


def test_released_float32_and_float64_of_one_shape_keep_their_own_dtype():
    """Stand-ins are shared per (shape, op), their dtype compared by identity."""
    made = []
    for dtype in (np.float64, np.float32, np.float64):
        x = ag.Tensor(np.ones((2, 2)), requires_grad=True, dtype=dtype)
        made.append(more_ops((x * 2.0 + 1.0).sigmoid()))
    release.release_waiting()
    for A, dtype in zip(made, (np.float64, np.float32, np.float64)):
        Z = A.parents[0].parents[0].parents[0].parents[0]  # (... + 0) * 1 + 0, then the sigmoid
        while Z.op != "sigmoid":
            Z = Z.parents[0]
        Z = Z.parents[0]
        assert is_released(Z) and Z.dtype == dtype


def test_a_long_chain_dropped_before_backward_is_collected_without_recursion():
    """Every node's finalizer (Tensor.__del__) runs while 20,000 nodes die one after the
    other; CPython's trashcan keeps the C stack flat, and nothing is left behind."""
    import gc
    import weakref

    x = ag.Tensor(np.ones(3), requires_grad=True)
    y = more_ops(x, 10_000)
    first = weakref.ref(y.parents[0])
    del y
    gc.collect()
    assert first() is None


def test_threads_dropping_consumers_keep_every_held_value():
    """Two threads switching every microsecond, each dropping a consumer of a Z it holds on
    every step: no held Z is ever released, and the gradients are the single-thread ones."""
    import sys
    import threading

    def steps(results, errors, k):
        try:
            x = ag.Tensor(np.full((2, 2), 0.1 * (k + 1)), requires_grad=True)
            for _ in range(200):
                Z = x * 3.0 + 1.0
                Z.sigmoid().mean()  # dropped
                J = more_ops(Z.sigmoid(), 6).sum()
                J.backward()
                assert not is_released(Z)
                Z.numpy()
            results[k] = x.grad
        except BaseException as error:  # reported in the main thread
            errors.append(error)

    expected = [None, None]
    with ag.keep_values():
        for k in (0, 1):
            steps(expected, [], k)
    results, errors = [None, None], []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=steps, args=(results, errors, k)) for k in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors
    assert_bitwise_equal(results, expected)

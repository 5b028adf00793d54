"""What a compiled step may read (docs/compile.md): every value is an argument checked at every
call, recomputed by the replay, a captured leaf or module state checked at every call, or
refused while tracing. Each test runs the same step in two identical worlds, compiled and
eagerly, and asks for the eager engine's J, gradients and state bit for bit, call after call
(or for a refusal with the way out)."""
import threading

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import nn
from autograd_lite.compile import GraphChangedError, UncompilableError

from array_backends import array_api_strict


def _eager(loss, *args):
    J = loss(*args)
    J.backward()
    return J


def assert_same_run(world, calls, change=None):
    """``world()`` -> (loss, params, state): two copies, one compiled. ``calls``: per call a
    tuple of arguments; ``change(world, call)`` mutates each world before that call. Asserts J,
    every gradient and every state array equal, bit for bit, at every call."""
    eager, compiled = world(), world()
    step = ag.compile(compiled[0])
    for n, args in enumerate(calls):
        for w in (eager, compiled):
            if change is not None:
                change(w, n)
            for p in w[1]:
                p.grad = None
        J_e = _eager(eager[0], *args)
        J_c = step(*args)
        assert J_c.dtype == J_e.dtype and J_c.item() == J_e.item(), f"call {n}"
        for p_e, p_c in zip(eager[1], compiled[1]):
            assert (p_c.grad is None) == (p_e.grad is None), f"call {n}"
            if p_e.grad is not None:
                assert p_c.grad.dtype == p_e.grad.dtype
                np.testing.assert_array_equal(p_c.grad, p_e.grad, err_msg=f"call {n}")
        for s_e, s_c in zip(eager[2](), compiled[2]()):
            np.testing.assert_array_equal(s_c, s_e, err_msg=f"call {n}")
    return step


def _batches(n, shape=(4, 16), seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape), (rng.random((1, shape[1])) < 0.5) * 1.0) for _ in range(n)]


def _model_world(seed=1):
    def world():
        model = nn.Sequential(nn.Linear(4, 8, rng=np.random.default_rng(seed)), nn.BatchNorm(8),
                              nn.ReLU(), nn.Dropout(0.3, rng=np.random.default_rng(seed + 1)),
                              nn.Linear(8, 1, rng=np.random.default_rng(seed + 2)))
        loss = lambda X, Y: ag.binary_cross_entropy_with_logits(model(X), Y)  # noqa: E731
        loss.model = model
        state = lambda: [model[1].running_mean, model[1].running_var]  # noqa: E731
        return loss, model.parameters(), state
    return world


# --- (c) module state: modes, replaced parameters and buffers -----------------------------------

def test_train_and_eval_modes_are_programs_of_their_own():
    """After eval() no Dropout, BatchNorm's running statistics used and left alone; after
    train() again, Dropout and batch statistics, as the eager engine does."""
    def change(world, n):
        model = world[0].model
        if n == 4:
            model.eval()
        if n == 8:
            model.train()
    step = assert_same_run(_model_world(), _batches(12), change)
    assert step.programs == 2


def test_a_step_compiled_in_eval_mode_applies_dropout_after_train():
    def change(world, n):
        model = world[0].model
        if n == 0:
            model.eval()
        if n == 5:
            model.train()
    assert_same_run(_model_world(), _batches(10), change)


def test_a_replaced_parameter_or_buffer_is_seen():
    def change(world, n):
        model = world[0].model
        if n == 4:
            model[0].W = nn.Parameter(np.full((8, 4), 0.1), name="W")
        if n == 6:
            model[1].running_mean = np.full((8, 1), 0.5)
            model[1].running_var = np.full((8, 1), 2.0)
        if n == 8:
            model[3].p = 0.6
            model.eval()
    assert_same_run(_model_world(), _batches(11), change)


# --- (a) arguments -----------------------------------------------------------------------------

def test_a_tensor_captured_and_passed_as_an_argument_is_two_leaves():
    """Traced as f(W) with W also captured, then called as f(V): J is (W . V)^2, and W gets
    its gradient (the replay used to put the argument in both places)."""
    def world():
        W = ag.Tensor([1.0, 2.0, 3.0], requires_grad=True, name="W")
        V = ag.Tensor([0.1, -0.2, 0.3], requires_grad=True, name="V")
        world.tensors = (W, V)
        return (lambda x: (W * x).sum() ** 2), [W, V], lambda: []
    eager, compiled = world(), world()
    step = ag.compile(compiled[0])
    for n in range(6):
        for w in (eager, compiled):
            for p in w[1]:
                p.grad = None
        argument = 0 if n < 3 else 1   # f(W) three times, then f(V)
        J_e = _eager(eager[0], eager[1][argument])
        J_c = step(compiled[1][argument])
        assert J_c.item() == J_e.item()
        for p_e, p_c in zip(eager[1], compiled[1]):
            assert (p_c.grad is None) == (p_e.grad is None)
            if p_e.grad is not None:
                np.testing.assert_array_equal(p_c.grad, p_e.grad)


def test_a_python_number_argument_is_static_and_keys_the_program():
    """A float slope reaches leaky_relu as a float (it was made a Tensor and refused); each
    value is a program of its own, as jax.jit's static arguments."""
    def world():
        W = ag.Tensor([[0.5, -1.0, 2.0]], requires_grad=True)
        return (lambda X, slope: (W @ X).leaky_relu(slope).sum()), [W], lambda: []
    X = np.random.default_rng(0).standard_normal((3, 5))
    step = assert_same_run(world, [(X, 0.1)] * 3 + [(X * 2, 0.2)] * 3 + [(X, 0.1), (X, -0.0)])
    assert step.programs == 3


def test_tuple_and_string_arguments_are_static_and_a_dict_is_refused_in_words():
    W = ag.Tensor(np.ones((2, 3)), requires_grad=True)

    def loss(X, shape, how):
        Z = (W * X).reshape(shape)
        return Z.sum() if how == "sum" else Z.mean()
    step = ag.compile(loss)
    X = np.arange(6.0).reshape(2, 3)
    for how in ("sum", "sum", "sum", "mean", "mean"):
        W.grad = None
        J = step(X, (3, 2), how)
        assert J.item() == (15.0 if how == "sum" else 2.5)
    with pytest.raises(UncompilableError, match="argument 1 is a dict"):
        step(X, {"shape": (3, 2)}, "sum")
    with pytest.raises(UncompilableError, match="argument 0 is a list"):
        step([np.ones(3)], (3, 2), "sum")


def test_array_arguments_keep_their_dtype():
    """A boolean mask stays boolean and integers stay integers: the program is traced with the
    arrays as they are (a mask became float64 0/1 before)."""
    seen = []
    W = ag.Tensor(np.ones(4), requires_grad=True)

    def loss(x, mask, counts):
        seen.append((mask.dtype, counts.dtype))
        return (W * x * mask * counts).sum()
    step = ag.compile(loss)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x, mask, counts = rng.standard_normal(4), rng.random(4) < 0.5, rng.integers(0, 5, 4)
        W.grad = None
        J = step(x, mask, counts)
        assert J.item() == float((x * mask * counts).sum())
        np.testing.assert_array_equal(W.grad, x * mask * counts)
    assert seen == [(np.dtype(bool), np.dtype(np.int64))] * 2  # traced and checked


def test_a_result_of_recorded_operations_as_an_argument_is_refused():
    W = ag.Tensor(np.ones(3), requires_grad=True)
    step = ag.compile(lambda x: (x * 2).sum())
    with pytest.raises(UncompilableError, match=r"argument 0 is the result of recorded operations.*\.detach\(\)"):
        step(W * 3)


def test_a_result_of_recorded_operations_is_refused_once_the_step_replays_too():
    """The replay's own check of a Tensor argument sends one with a graph to the refusal."""
    W = ag.Tensor(np.ones(3), requires_grad=True)
    step = ag.compile(lambda x: (x * 2).sum())
    for _ in range(4):  # traced, checked, replayed
        step(W)
    W.grad = None
    with pytest.raises(UncompilableError, match=r"argument 0 is the result of recorded operations"):
        step(W * 3)
    assert W.grad is None


def test_an_argument_or_a_leaf_moved_to_another_backend_is_refused_once_the_step_replays():
    xp = array_api_strict()
    W = ag.Tensor(np.ones((2, 3)), requires_grad=True)
    step = ag.compile(lambda x: (W @ x).sigmoid().mean())
    for _ in range(4):
        step(np.ones((3, 4)))
    W.grad = None
    refused = r"compile: the step computes on array_api_strict.*replays numpy steps only"
    with pytest.raises(TypeError, match=refused):
        step(ag.Tensor(xp.asarray(np.ones((3, 4)))))
    with pytest.raises(TypeError, match=refused):
        step(xp.asarray(np.ones((3, 4))))
    W.data = xp.asarray(np.ones((2, 3)))
    with pytest.raises(TypeError, match=refused):
        step(np.ones((3, 4)))
    assert W.grad is None


def test_an_ndarray_subclass_as_an_argument_or_a_leafs_array_runs_as_the_eager_step():
    class Marked(np.ndarray):
        pass

    def world():
        W = ag.Tensor(np.full(3, 0.5), requires_grad=True)
        return (lambda x: (W * x).sigmoid().sum()), [W], lambda: []

    def change(w, n):
        if n == 5:
            w[1][0].data = np.full(3, 0.25).view(Marked)
    calls = [(np.arange(3.0).view(Marked) if n < 4 else np.arange(3.0),) for n in range(8)]
    assert_same_run(world, calls, change)


# --- (d) refused while tracing -----------------------------------------------------------------

@pytest.mark.parametrize("leave", [
    lambda t: t.sum().item(), lambda t: np.asarray(t), lambda t: t.numpy(),
    lambda t: bool(t.sum() > 0) if False else bool(t.sum())])
def test_a_traced_value_leaving_the_graph_is_refused_with_the_users_line(leave):
    W = ag.Tensor(np.ones(3), requires_grad=True)

    def loss(x):
        y = W * x
        scale = leave(y)
        return (y * scale).sum()
    step = ag.compile(loss)
    with pytest.raises(UncompilableError, match=r"test_compile_reads\.py:\d+ .*a replay would keep") as error:
        step(np.ones(3))
    assert "pass the value as an argument" in str(error.value)
    assert W.grad is None
    assert ag.is_grad_enabled()
    W * 2  # the trace is over: the thread records as usual


def test_a_compiled_step_called_while_another_is_traced_is_refused():
    W = ag.Tensor(np.ones(3), requires_grad=True)
    inner = ag.compile(lambda x: (W * x).sum())
    outer = ag.compile(lambda x: inner(x) * W.sum())
    with pytest.raises(UncompilableError, match="compile the outer step only"):
        outer(np.ones(3))


# --- a fallback to eager is the step the user would have had -------------------------------------

def test_a_floating_point_fallback_restores_dropout_and_running_statistics_first():
    """A replay that overflows (exp of a large logit, after the Dropout mask was drawn) is
    abandoned and the call runs eagerly: the mask it drew is put back, so the eager run and
    every later step draw what the eager engine draws."""
    def world():
        model = nn.Sequential(nn.Linear(3, 6, rng=np.random.default_rng(1)), nn.BatchNorm(6),
                              nn.Dropout(0.5, rng=np.random.default_rng(2)),
                              nn.Linear(6, 1, rng=np.random.default_rng(3)))

        def loss(X, Y, scale):
            return ag.binary_cross_entropy_with_logits(ag.minimum((model(X) * scale).exp(), 3.0), Y)
        return loss, model.parameters(), lambda: [model[1].running_mean, model[1].running_var]
    calls = [(X, Y, np.ones((1, 1))) for X, Y in _batches(8, (3, 10), seed=4)]
    calls[4] = calls[4][:2] + (np.full((1, 1), 1e6),)
    with np.errstate(over="ignore", invalid="ignore"):
        assert_same_run(world, calls)


# --- per thread --------------------------------------------------------------------------------

def test_compiling_in_one_thread_while_another_trains_eagerly():
    """The trace is the thread's own: another thread's BatchNorm updates never join it."""
    failures, stop = [], threading.Event()

    def train_eagerly():
        loss, params, _ = _model_world(7)()
        batches = _batches(4, seed=9)
        try:
            while not stop.is_set():
                for X, Y in batches:
                    _eager(loss, ag.Tensor(X), ag.Tensor(Y))
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)
    thread = threading.Thread(target=train_eagerly)
    thread.start()
    try:
        for seed in range(6):
            assert_same_run(_model_world(seed), _batches(4, seed=seed))
    finally:
        stop.set()
        thread.join()
    assert not failures


# --- (b) recomputed by every replay: masks, conditions, indices, bounds -----------------------------

def _linear_world(dtype=np.float64, n_in=3):
    def world():
        W = ag.Tensor(np.linspace(-1.0, 1.5, 2 * n_in).reshape(2, n_in), dtype=dtype,
                      requires_grad=True, name="W")
        return W
    return world


def test_a_huber_condition_from_the_residual_is_recomputed():
    """where(|r| < delta, ...) with r from this call's data: the condition is a recorded
    comparison, recomputed by every replay (it was frozen at the second call)."""
    def world():
        W = _linear_world()()

        def loss(X, Y):
            r = W @ X - Y
            return ag.where(r.abs() < 1.0, 0.5 * r * r, r.abs() - 0.5).mean()
        return loss, [W], lambda: []
    rng = np.random.default_rng(0)
    assert_same_run(world, [(rng.standard_normal((3, 8)) * s, rng.standard_normal((2, 8)))
                            for s in (0.1, 0.1, 3.0, 0.1, 3.0, 1.0)])


def test_a_mask_from_a_comparison_combined_with_logical_operators_is_recomputed():
    def world():
        W = _linear_world()()

        def loss(X):
            Z = W @ X
            keep = (Z > -0.5) & ~(Z > 0.5) | (X[:2] > 1.0)
            return (Z * keep + ag.where(np.isfinite(Z), Z, 0.0) * 0.1).sum()
        return loss, [W], lambda: []
    rng = np.random.default_rng(1)
    assert_same_run(world, [(rng.standard_normal((3, 6)) * 2,) for _ in range(6)])


def test_indices_passed_as_arguments_are_read_by_every_replay():
    """x[idx] and Embedding(idx) with idx an integer argument: each call's rows (the first
    batch's loss was returned for every later batch)."""
    def world():
        W = _linear_world()()
        table = nn.Embedding(5, 2, rng=np.random.default_rng(3))

        def loss(X, rows, tokens):
            Z = (W @ X)[:, rows] + table(tokens)
            return (Z * Z).sum()
        return loss, [W, table.W], lambda: []
    rng = np.random.default_rng(2)
    assert_same_run(world, [(rng.standard_normal((3, 6)), rng.integers(0, 6, 4), rng.integers(0, 5, 4))
                            for _ in range(6)])


def test_clip_bounds_passed_as_arguments_are_read_by_every_replay():
    def world():
        W = _linear_world()()
        return (lambda X, low, high: (W @ X).clip(low, high).sum()), [W], lambda: []
    rng = np.random.default_rng(3)
    calls = []
    for _ in range(6):
        low = -rng.random((2, 1))
        calls.append((rng.standard_normal((3, 5)), low, low + rng.random((2, 1))))
    assert_same_run(world, calls)
    step = ag.compile(world()[0])
    for X, low, high in calls[:3]:
        step(X, ag.Tensor(low), ag.Tensor(high))
    with pytest.raises(ValueError, match="clip: low .* is above high"):  # checked at every call
        step(calls[0][0], ag.Tensor(high), ag.Tensor(low))


def test_an_argmax_the_step_computes_is_recomputed():
    def world():
        W = _linear_world()()
        rows = ag.Tensor(np.arange(2).reshape(2, 1))

        def loss(X):
            Z = W @ X
            return ag.where(rows == Z.argmax(axis=0, keepdims=True), Z, -Z).sum()
        return loss, [W], lambda: []
    rng = np.random.default_rng(4)
    assert_same_run(world, [(rng.standard_normal((3, 7)),) for _ in range(6)])


def test_indexing_with_a_boolean_mask_in_a_compiled_step_is_refused():
    """Its result's shape would depend on the values: refused, with ag.where as the way out."""
    W = ag.Tensor(np.ones(4), requires_grad=True)
    step = ag.compile(lambda x: (W * x)[(W * x) > 0].sum())
    with pytest.raises(UncompilableError, match="boolean mask.*ag.where"):
        step(np.ones(4))


# --- bit for bit in float32, and where eager's layout is not C ------------------------------------

@pytest.mark.parametrize("body", [
    lambda Z: Z.leaky_relu(0.1), lambda Z: ag.maximum(Z, Z[::-1]), lambda Z: ag.minimum(Z, 0.2),
    lambda Z: Z.max(axis=0, keepdims=True) + Z.min(axis=1, keepdims=True),
    lambda Z: Z.clip(-0.3, 0.4)], ids=["leaky_relu", "maximum", "minimum", "max_min", "clip"])
def test_float32_gradients_stay_float32_and_replay_bit_for_bit(body):
    def world():
        W = _linear_world(np.float32)()
        return (lambda X: (body(W @ X) ** 2).sum()), [W], lambda: []
    rng = np.random.default_rng(5)
    assert_same_run(world, [(ag.Tensor(rng.standard_normal((3, 6)), dtype=np.float32),)
                            for _ in range(4)])
    W = _linear_world(np.float32)()
    (body(W @ ag.Tensor(np.ones((3, 6)), dtype=np.float32)) ** 2).sum().backward()
    assert W.grad.dtype == np.float32


def test_an_fortran_ordered_index_result_replays_bit_for_bit():
    """x[:, [0, 0, 1, ...]] comes out F-ordered from numpy; summed over a long axis, its layout
    decides the rounding: eager and replay agree bit for bit."""
    def world():
        W = ag.Tensor(np.random.default_rng(6).standard_normal((40, 3)), requires_grad=True)
        columns = [0, 0] + list(range(1, 30))
        return (lambda X: ((W @ X)[:, columns].exp().sum(axis=0) ** 2).sum()), [W], lambda: []
    rng = np.random.default_rng(7)
    assert_same_run(world, [(rng.standard_normal((3, 32)),) for _ in range(4)])


def test_embedding_indices_out_of_range_are_refused_by_a_replay_as_eagerly():
    """A negative index would wrap around in numpy: the lookup checks each call's indices,
    so a replay refuses what the eager Embedding refuses."""
    table = nn.Embedding(5, 2, rng=np.random.default_rng(0))
    step = ag.compile(lambda tokens: (table(tokens) ** 2).sum())
    for _ in range(3):
        step(np.array([0, 4, 2]))
    with pytest.raises(ag.ShapeError, match=r"0\.\.4, got -1\.\.4"):
        step(np.array([0, 4, -1]))
    with pytest.raises(ag.ShapeError):
        table(np.array([0, 4, -1]))


def test_an_op_on_a_transpose_replays_bit_for_bit():
    """exp of a transposed value, summed over a long axis: a transpose is a C-contiguous copy,
    eagerly and replayed, so the sum adds up in the same order (a view made exp's eager result
    F-ordered while the replay's buffer was C)."""
    def world():
        W = ag.Tensor(np.random.default_rng(8).standard_normal((3, 4)), requires_grad=True)
        return (lambda X: ((W @ X).T * 0.5).exp().T.sum(axis=1).sum()), [W], lambda: []
    rng = np.random.default_rng(9)
    assert_same_run(world, [(rng.standard_normal((4, 9)),) for _ in range(4)])


def test_a_tensor_or_number_the_function_names_rebound_between_calls_is_seen():
    """The learner's loop rebinds W to a new Tensor each step (W = W - lr * dW, not in place),
    and a Python number the function reads changes: a replay would keep the traced ones, so
    the names a step's function reads (closure cells, globals, their list and dict items) are
    checked by identity at every call and a change traces the step again."""
    state = {"W": ag.Tensor(np.ones(3), requires_grad=True), "scale": 1.0}
    W = [ag.Tensor(np.full(3, 0.5), requires_grad=True)]

    def loss(x):
        return (state["W"] * x * state["scale"]).sum() ** 2 + (W[0] * x).sum()
    step = ag.compile(loss)
    x = np.arange(3.0)
    for n in range(6):
        J = step(x)
        V, U = state["W"], W[0]
        expected = float((V.data * x * state["scale"]).sum() ** 2 + (U.data * x).sum())
        assert J.item() == pytest.approx(expected, rel=1e-15)
        np.testing.assert_allclose(V.grad, 2 * (V.data * x * state["scale"]).sum() * x * state["scale"])
        np.testing.assert_array_equal(U.grad, x)
        state["W"] = ag.Tensor(V.data - 0.01 * V.grad, requires_grad=True)   # rebound
        W[0] = ag.Tensor(U.data - 0.01 * U.grad, requires_grad=True)
        state["scale"] = 1.0 + n / 10


def test_a_static_argument_that_changes_at_every_call_keeps_few_programs():
    W = ag.Tensor(np.ones(3), requires_grad=True)
    step = ag.compile(lambda x, rate: (W * x * rate).sum())
    for n in range(100):
        W.grad = None
        rate = 1.0 / (n + 1)
        assert step(np.ones(3), rate).item() == (W * np.ones(3) * rate).sum().item()
        np.testing.assert_array_equal(W.grad, np.full(3, 1.0 / (n + 1)))
    assert step.programs <= 64

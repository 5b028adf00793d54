"""ag.compile: a traced, replayed step gives the eager engine's J and gradients, and refuses a
graph that changes. (Its speed is measured in benchmarks/, never here.)"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd_lite as ag
from autograd_lite.compile import GraphChangedError

ACTIVATIONS = {"sigmoid": lambda Z: Z.sigmoid(), "tanh": lambda Z: Z.tanh(),
               "relu": lambda Z: Z.relu(), "exp": lambda Z: (Z * 0.1).exp()}


def network(layers, m, seed=0):
    """Seeded W[l] (n[l] x n[l-1]), b[l] (n[l] x 1), X (n[0] x m), Y in {0, 1} (eqs 25, 35-36)."""
    rng = np.random.default_rng(seed)
    W = [rng.standard_normal((n_out, n_in)) / np.sqrt(n_in) for n_in, n_out in zip(layers, layers[1:])]
    b = [0.1 * rng.standard_normal((n_out, 1)) for n_out in layers[1:]]
    X = rng.standard_normal((layers[0], m))
    Y = (rng.random((layers[-1], m)) < 0.5).astype(float)
    return W, b, X, Y


def leaves(W, b):
    return [ag.Tensor(w, requires_grad=True, name=f"W[{l + 1}]") for l, w in enumerate(W)], \
           [ag.Tensor(v, requires_grad=True, name=f"b[{l + 1}]") for l, v in enumerate(b)]


def make_loss(W, b, activations, fused=True):
    """J of eqs 33-34 and 76: hidden activations g[l], sigmoid output, log-loss."""
    def loss(X, Y):
        A = X
        for l, (W_l, b_l) in enumerate(zip(W, b)):
            Z = W_l @ A + b_l                                        # eq 33
            A = ACTIVATIONS[activations[l]](Z) if l < len(W) - 1 else Z
        if fused:
            return ag.binary_cross_entropy_with_logits(Z, Y)        # eqs 1, 7, 76
        A = Z.sigmoid()           # composed, with 1 - Y, 1 - A (binary_cross_entropy would fuse)
        return -(Y * A.log() + (1 - Y) * (1 - A).log()).sum() / A.shape[-1]
    return loss


def eager_grads(loss, params, *args):
    for p in params:
        p.grad = None
    J = loss(*args)
    J.backward()
    return J.item(), [p.grad.copy() for p in params]


def compiled_grads(step, params, *args):
    for p in params:
        p.grad = None
    J = step(*args)
    return J.item(), [p.grad.copy() for p in params]


def assert_replays_bit_for_bit(step, loss, params, calls):
    """Each call in ``calls`` (a list of argument arrays) gives, compiled, the eager engine's J
    and gradients bit for bit (the replay's promise)."""
    for args in calls:
        J_c, grads_c = compiled_grads(step, params, *args)
        J, grads = eager_grads(loss, params, *[ag.Tensor(a, dtype=a.dtype) for a in args])
        assert J_c == J
        for g_c, g in zip(grads_c, grads):
            assert g_c.dtype == g.dtype
            np.testing.assert_array_equal(g_c, g)


def test_the_seed_network_trains_the_same_compiled_and_eager():
    """Eqs 74-75 applied for six steps: the compiled step (trace, check, four replays) leaves
    W[l], b[l] where the eager engine leaves them."""
    W, b, X, Y = network([3, 4, 1], m=8)
    eager, compiled = leaves(W, b), leaves(W, b)
    eager_loss = make_loss(*eager, ["sigmoid"])
    step = ag.compile(make_loss(*compiled, ["sigmoid"]))
    X_t, Y_t = ag.Tensor(X), ag.Tensor(Y)
    for _ in range(6):
        J_eager = eager_loss(X_t, Y_t)
        J_eager.backward()
        J_compiled = step(X_t, Y_t)
        assert J_compiled.item() == pytest.approx(J_eager.item(), rel=1e-12)
        assert not J_compiled.requires_grad
        for p in eager[0] + eager[1] + compiled[0] + compiled[1]:
            p.data -= 0.5 * p.grad                                   # eqs 74-75
            p.grad = None
    for p, q in zip(eager[0] + eager[1], compiled[0] + compiled[1]):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-12, atol=1e-15)
    assert step.calls == 6


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=2, max_size=4), st.integers(1, 6),
       st.lists(st.sampled_from(sorted(ACTIVATIONS)), min_size=3, max_size=3), st.booleans(),
       st.integers(0, 99))
def test_replayed_gradients_equal_the_engine(layers, m, activations, fused, seed):
    W, b, X, Y = network(layers, m, seed)
    W_t, b_t = leaves(W, b)
    params = W_t + b_t
    loss = make_loss(W_t, b_t, activations, fused)
    step = ag.compile(loss)
    for call in range(3):  # trace, check, replay: each with new data of the same shapes
        X_call, Y_call = X + call, Y if call % 2 == 0 else 1 - Y
        J, grads = eager_grads(loss, params, ag.Tensor(X_call), ag.Tensor(Y_call))
        J_c, grads_c = compiled_grads(step, params, X_call, Y_call)
        assert J_c == pytest.approx(J, rel=1e-12, abs=1e-15)
        for g_c, g in zip(grads_c, grads):
            np.testing.assert_allclose(g_c, g, rtol=1e-11, atol=1e-14)


def test_values_computed_from_the_arguments_are_recomputed_on_replay():
    """(X - mean) * 2 involves no parameter, yet must follow each call's X, not the traced one."""
    W = ag.Tensor([[0.5, -1.0]], requires_grad=True, name="W")

    def loss(X):
        centred = (X - X.mean(axis=1, keepdims=True)) * 2.0
        return ((W @ centred).sigmoid() * (1 - X[0:1, :])).sum()

    step = ag.compile(loss)
    for call in range(4):
        X = np.arange(6.0).reshape(2, 3) * (call + 1) - call
        W.grad = None
        J_c = step(X).item()
        dW_c = W.grad.copy()
        W.grad = None
        J = loss(ag.Tensor(X))
        J.backward()
        assert J_c == pytest.approx(J.item(), rel=1e-12)
        np.testing.assert_allclose(dW_c, W.grad, rtol=1e-12)


def test_an_argument_that_requires_grad_gets_its_gradient_and_grads_accumulate():
    step = ag.compile(lambda x: (x ** 3).sum())
    x = ag.Tensor([1.0, -2.0, 0.5], requires_grad=True)
    for _ in range(3):
        x.grad = None
        step(x)
        np.testing.assert_allclose(x.grad, 3 * x.data ** 2)
    step(x)  # no reset: adds up, as backward() does
    np.testing.assert_allclose(x.grad, 6 * x.data ** 2)


def test_parameters_updated_in_place_or_reassigned_are_read_afresh():
    W = ag.Tensor([[1.0, 2.0]], requires_grad=True, name="W")
    step = ag.compile(lambda X: (W @ X).sum())
    X = np.array([[1.0], [3.0]])
    for _ in range(3):
        step(X)
    W.data -= 1.0                      # in place (eq 74)
    assert step(X).item() == pytest.approx(0.0 * 1 + 1.0 * 3)
    W.data = np.array([[2.0, 2.0]])    # a new array of the same shape
    assert step(X).item() == pytest.approx(8.0)


def test_a_batch_of_another_size_gets_a_program_of_its_own():
    """The uneven last mini-batch (1797 = 28 x 64 + 5): traced and replayed as a second
    program, as jit compilers do, each equal to the engine's own backward."""
    W, b, X, Y = network([3, 4, 1], m=5)
    W_t, b_t = leaves(W, b)
    step = ag.compile(make_loss(W_t, b_t, ["sigmoid"]))
    for columns in (5, 5, 5, 2, 2, 2, 5, 2):
        J_c, grads_c = compiled_grads(step, W_t + b_t, X[:, :columns], Y[:, :columns])
        J_e, grads_e = eager_grads(make_loss(W_t, b_t, ["sigmoid"]), W_t + b_t,
                                   ag.Tensor(X[:, :columns]), ag.Tensor(Y[:, :columns]))
        assert J_c == J_e
        for found, expected in zip(grads_c, grads_e):
            np.testing.assert_array_equal(found, expected)
    assert step.programs == 2
    with pytest.raises(TypeError):
        step(X)  # the loss itself refuses one argument


def test_refuses_a_parameter_whose_shape_changed():
    W_t, b_t = leaves(*network([3, 4, 1], m=5)[:2])
    X, Y = network([3, 4, 1], m=5)[2:]
    step = ag.compile(make_loss(W_t, b_t, ["sigmoid"]))
    for _ in range(3):
        step(X, Y)
    W_t[0].data = np.zeros((5, 3))
    with pytest.raises(GraphChangedError, match=r"'W\[1\]' now has shape \(5, 3\).*traced with shape \(4, 3\)"):
        step(X, Y)


def test_refuses_a_graph_that_changes_on_the_second_call():
    W = ag.Tensor(np.ones((1, 2)), requires_grad=True)
    calls = []

    def loss(X):
        calls.append(1)
        Z = W @ X
        return (Z.sigmoid() if len(calls) == 1 else Z.tanh()).sum()

    step = ag.compile(loss)
    step(np.ones((2, 3)))
    with pytest.raises(GraphChangedError, match=r"traced sigmoid\(#\d+\), now tanh\(#\d+\)"):
        step(np.ones((2, 3)))


def test_a_python_number_the_function_reads_is_watched_and_a_change_traces_again():
    W = ag.Tensor(np.ones((1, 2)), requires_grad=True)
    settings_ = {"scale": 0.5}
    step = ag.compile(lambda X: ((W @ X) * settings_["scale"]).sum())
    for scale in (0.5, 0.5, 0.5, 0.25, 0.25, 0.25):
        settings_["scale"] = scale
        assert step(np.ones((2, 3))).item() == 6 * scale


def test_check_every_catches_a_parameter_replaced_where_no_check_can_see():
    """A Tensor reached through a function the step calls (not named by the step itself) is
    not watched: check_every's re-run finds it replaced, and refuses."""
    holder = {"W": ag.Tensor(np.ones((1, 2)), requires_grad=True, name="W")}

    def weights():
        return holder["W"]
    step = ag.compile(lambda X: (weights() @ X).sum(), check_every=4)
    X = np.ones((2, 3))
    for _ in range(3):
        step(X)
    holder["W"] = ag.Tensor(np.ones((1, 2)), requires_grad=True, name="W")
    with pytest.raises(GraphChangedError, match="traced the leaf 'W', now the leaf 'W'"):
        step(X)  # the 4th call re-runs the function and compares


def test_refuses_what_cannot_be_a_loss():
    with pytest.raises(TypeError, match="expected a function"):
        ag.compile(3)
    with pytest.raises(ValueError, match="check_every must be a positive int"):
        ag.compile(lambda x: x, check_every=0)
    x = ag.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"single element.*got shape \(3,\)"):
        ag.compile(lambda t: t * 2)(x)
    with pytest.raises(TypeError, match="must return a Tensor, got float"):
        ag.compile(lambda t: 1.0)(x)
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        ag.compile(lambda t: t.sum())(np.ones(3))


def test_every_kind_of_primitive_replays_exactly():
    """Primitives with parameters (axis, shape, exponent, index), 1-D matmul, softmax family."""
    rng = np.random.default_rng(1)
    W = ag.Tensor(rng.standard_normal((4, 3)), requires_grad=True, name="W")
    v = ag.Tensor(rng.standard_normal((4,)), requires_grad=True, name="v")

    def loss(X):
        Z = W @ X
        P, L = Z.softmax(axis=0), Z.log_softmax(axis=0)
        R = (Z.T.reshape(-1, 2) ** 2).mean(axis=1, keepdims=True)
        q = (v @ Z).tanh()
        s = Z[1:3, :].relu().sum(axis=(0, 1)) + (Z / 3.0).exp().mean() + (2.0 ** (Z * 0.1)).sum()
        return (P * L).sum() + R.sum() + q.sum() + s + (Z.abs() ** 1.5).sum() - (Z - 1).sum()

    step = ag.compile(loss)
    for _ in range(4):
        X = rng.standard_normal((3, 6))
        J_c, grads_c = compiled_grads(step, [W, v], X)
        J, grads = eager_grads(loss, [W, v], ag.Tensor(X))
        assert J_c == pytest.approx(J, rel=1e-12)
        for g_c, g in zip(grads_c, grads):
            np.testing.assert_allclose(g_c, g, rtol=1e-12, atol=1e-15)


class _Twice(ag.Primitive):
    """2x, whose vjp records the id of every gradient array it makes, and keeps the array
    itself too when ``keep`` is set (as a user holding it would)."""
    name = "twice"

    def __init__(self):
        self.ids, self.kept, self.keep = [], [], False

    def forward(self, x):
        return 2 * x

    def vjp(self, g, inputs, output, wants):
        grad = 2 * g
        self.ids.append(id(grad))
        if self.keep:
            self.kept.append(grad)
        return (grad,)


def test_a_replay_never_hands_out_an_array_a_vjp_still_holds():
    """A user's primitive replays through its own vjp; the gradient it made (and kept) is
    copied into .grad, so changing one never changes the other."""
    twice = _Twice()
    x = ag.Tensor(np.ones(3), requires_grad=True)
    step = ag.compile(lambda: twice(x).sum())
    for _ in range(3):  # trace, check, replay
        x.grad = None
        step()
    assert step.source is not None and ".vjp(" in step.source
    twice.keep = True
    x.grad = None
    step()
    assert not np.shares_memory(x.grad, twice.kept[-1])
    np.testing.assert_array_equal(x.grad, 2 * np.ones(3))


# --- the replay's kernels (autograd_lite/compile/kernels.py) ---------------------------------------

from autograd_lite import ops  # noqa: E402
from autograd_lite.compile import kernels  # noqa: E402
from autograd_lite.compile.replay import Writer, run_kernel  # noqa: E402

# the primitives with a kernel of their own in the table (the others replay their own forward
# and vjp through kernels.DEFAULT)
PRIMITIVES = {op for op in ops.PRIMITIVES if type(op) in kernels.KERNELS}


def _kernel_cases(rng, n, m):
    """op -> (input arrays, params) for every primitive with a kernel, broadcasting included."""
    x = rng.standard_normal((n, m))
    away_from_0 = rng.uniform(0.5, 2.0, (n, 1)) * rng.choice([-1.0, 1.0], (n, 1))
    return {
        ops.ADD: ((x, rng.standard_normal((n, 1))), {}),            # eq 33's bias column
        ops.SUB: ((x, rng.standard_normal((1, m))), {}),
        ops.MUL: ((x, rng.standard_normal((n, m))), {}),
        ops.DIV: ((rng.standard_normal(()), away_from_0), {}),     # both broadcast
        ops.MATMUL: ((rng.standard_normal((n + 1, n)), x), {}),    # W A (eq 33)
        ops.NEG: ((x,), {}),
        ops.EXP: ((x,), {}),
        ops.LOG: ((np.abs(x) + 0.1,), {}),
        ops.SIGMOID: ((3 * x,), {}),                                # eq 7
        ops.TANH: ((x,), {}),
        ops.RELU: ((x,), {}),
        ops.SUM: ((x,), {"axis": (1,), "keepdims": True}),          # eq 80's sum over columns
        ops.TRANSPOSE: ((x,), {"axes": None}),
        ops.BCE_WITH_LOGITS: ((3 * x, (rng.random((n, m)) < 0.5).astype(float)), {}),  # eq 76
        ops.POW: ((np.abs(x) + 0.5, rng.standard_normal((1, m))), {}),
        ops.POW_SCALAR: ((x,), {"exponent": 3.0}),
        ops.ABS: ((x,), {}),
        ops.MEAN: ((x,), {"axis": (1,), "keepdims": False}),        # eq 76's 1/m
        ops.RESHAPE: ((x,), {"shape": (m, n)}),
        ops.BROADCAST_TO: ((rng.standard_normal((n, 1)),), {"shape": (n, m)}),  # eq 32's B
        ops.GETITEM: ((x,), {"index": (slice(None), [0, 0])}),     # a repeated column
        ops.INDEX_ADD: ((rng.standard_normal((n, 2)),), {"shape": (n, m), "index": (slice(None), [0, 0])}),
        ops.SOFTMAX: ((x,), {"axis": 0}),
        ops.LOG_SOFTMAX: ((x,), {"axis": 0}),
        ops.DETACH: ((x,), {}),
        # the primitives that replay through kernels.DEFAULT (their own forward and vjp)
        ops.MAXIMUM: ((x, rng.standard_normal((n, 1))), {}),
        ops.MINIMUM: ((x, rng.standard_normal((1, m))), {}),
        ops.CLIP: ((x,), {"low": -0.5, "high": 0.5}),
        ops.SQUARE: ((x,), {}),
        ops.SQRT: ((np.abs(x) + 0.1,), {}),
        ops.SIN: ((x,), {}),
        ops.COS: ((x,), {}),
        ops.LEAKY_RELU: ((x,), {"slope": 0.01}),
        ops.ELU_: ((x,), {"alpha": 1.0}),
        ops.SOFTPLUS: ((x,), {}),
        ops.NORMAL_CDF: ((x,), {}),
        ops.GELU_: ((x,), {"approximate": "tanh"}),
        ops.MAX: ((x,), {"axis": (1,), "keepdims": False}),
        ops.MIN: ((x,), {"axis": (0, 1), "keepdims": False}),
        ops.LOGSUMEXP: ((x,), {"axis": (0,), "keepdims": True}),
        ops.VAR: ((x,), {"axis": (1,), "ddof": 0, "keepdims": False}),
        ops.CONCATENATE: ((x, rng.standard_normal((n, 2))), {"axis": 1, "sizes": (m, 2)}),
        ops.STACK: ((x, rng.standard_normal((n, m))), {"axis": 0}),
        ops.WHERE: ((x, rng.standard_normal((n, 1))), {"cond": rng.random((n, m)) < 0.5}),
        ops.XLOGY: ((np.where(x > 0, x, 0.0), np.abs(x) + 0.1), {}),
        ops.XDIVY: ((np.where(x > 0, x, 0.0), away_from_0), {}),
        ops.PICK_CLASSES: ((x, rng.integers(0, n, m).astype(float)), {}),
    }


def _same(found, expected):
    assert np.shape(found) == np.shape(expected)
    np.testing.assert_array_equal(found, expected)  # bit for bit: the same numpy operations


def test_every_primitive_is_covered_by_the_kernel_check_below():
    """A guard: every primitive has a case here, so the check below runs what a replay runs
    for it (its kernel in the table, or the default that calls its own forward and vjp): a
    new primitive without a case fails, so its replay is never untested. And every kernel the
    package's table holds is a primitive's of ops.PRIMITIVES, checked below too."""
    cases = _kernel_cases(np.random.default_rng(0), 2, 3)
    assert [op.name for op in ops.PRIMITIVES if op not in cases] == []
    tabled = {kind for kind in kernels.KERNELS if kind.__module__.startswith("autograd_lite.")}
    assert tabled <= {type(op) for op in cases} and PRIMITIVES


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(0, 999))
def test_every_kernel_equals_its_primitives_own_forward_and_vjp(n, m, seed):
    """The replay's numpy kernels repeat each primitive's forward and vjp (written once, in
    ops): held to them bit for bit, into buffers and into fresh arrays, so they cannot drift."""
    rng = np.random.default_rng(seed)
    for op, (arrays, params) in _kernel_cases(rng, n, m).items():
        expected = op.forward(*arrays, **params)
        g = rng.standard_normal(np.shape(expected))
        output, grads = run_kernel(op, arrays, params, g)
        _same(output, expected)
        if not op.differentiable:
            continue
        wants = (True,) * len(arrays)
        for found, rule in zip(grads, op.vjp(g, arrays, expected, wants, **params)):
            _same(found, rule)
        if np.ndim(expected) == 0:  # the loss itself: its vjp seeded with dJ/dJ = 1
            ones = np.ones(())
            _, grads = run_kernel(op, arrays, params, ones, root=True)
            for found, rule in zip(grads, op.vjp(ones, arrays, expected, wants, **params)):
                _same(found, rule)
    # the summed-over-everything form of sum, and a permutation for transpose
    x = rng.standard_normal((n, m))
    for op, params in ((ops.SUM, {"axis": (0, 1), "keepdims": False}),
                       (ops.TRANSPOSE, {"axes": (1, 0)})):
        expected = op.forward(x, **params)
        g = rng.standard_normal(np.shape(expected))
        output, (grad,) = run_kernel(op, (x,), params, g)
        _same(output, expected)
        _same(grad, op.vjp(g, (x,), expected, (True,), **params)[0])


def _seed_step(m=4, seed=0):
    W, b, X, Y = network([3, 4, 1], m, seed)
    W_t, b_t = leaves(W, b)
    return ag.compile(make_loss(W_t, b_t, ["sigmoid"])), W_t + b_t, X, Y


def test_the_seed_network_replays_through_the_kernels():
    step, params, X, Y = _seed_step()
    for _ in range(3):
        step(X, Y)
    assert "matmul(" in step.source and "def replay(args)" in step.source


def test_what_a_replay_hands_out_is_never_overwritten_by_a_later_one():
    """J and every .grad are fresh arrays, not the replay's buffers: keeping them (without a
    copy) across later replays with other data leaves them as they were."""
    step, params, X, Y = _seed_step(m=5)
    for _ in range(3):
        for p in params:
            p.grad = None
        step(X, Y)
    kept_J, kept_grads = step(X, Y), [p.grad for p in params]  # accumulated: 2x
    expected_J = kept_J.item()
    expected_grads = [g.copy() for g in kept_grads]
    for call in range(3):
        for p in params:
            p.grad = None
        step(X * (call + 2), 1 - Y)
        assert kept_J.item() == expected_J
        for g, expected in zip(kept_grads, expected_grads):
            np.testing.assert_array_equal(g, expected)
        for p, g in zip(params, kept_grads):
            assert not np.shares_memory(p.grad, g)
    J, grads = eager_grads(make_loss(params[:2], params[2:], ["sigmoid"]), params,
                           ag.Tensor(X * 4), ag.Tensor(1 - Y))
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad, g, rtol=1e-12, atol=1e-15)


def test_gradients_passed_straight_through_are_copied_for_each_leaf():
    """In J = sum(W + V), W and V both get dJ/dJ repeated (a view): each .grad is its own
    writeable copy, and changing one in place changes nothing else, now or at the next replay."""
    W = ag.Tensor(np.zeros((2, 3)), requires_grad=True, name="W")
    V = ag.Tensor(np.zeros((2, 3)), requires_grad=True, name="V")
    step = ag.compile(lambda: (W + V).sum())
    for _ in range(3):
        W.grad = V.grad = None
        step()
    assert step.source is not None
    assert not np.shares_memory(W.grad, V.grad)
    W.grad *= 5.0
    np.testing.assert_array_equal(V.grad, np.ones((2, 3)))
    W.grad = V.grad = None
    step()
    np.testing.assert_array_equal(W.grad, np.ones((2, 3)))


def test_grads_accumulate_across_replays_like_backward():
    step, params, X, Y = _seed_step()
    for _ in range(3):
        for p in params:
            p.grad = None
        step(X, Y)
    once = [p.grad.copy() for p in params]
    step(X, Y)
    for p, g in zip(params, once):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-15)


def test_a_floating_point_event_replays_the_step_the_general_way():
    """log(0) divides by zero: the buffered replay gives up and the general one gives the
    eager values (sigmoid(-711) included: e^-711, not the 0 of 1 / (1 + inf)) and the eager
    warnings, and the caller's numpy error settings are left as
    they were."""
    W = ag.Tensor([[711.0]], requires_grad=True, name="W")
    step = ag.compile(lambda X: ((W @ X).sigmoid() + (W @ X * 0.0).exp().log()).sum())
    X_call = np.array([[-1.0, 0.5]])
    before = np.geterr()
    for _ in range(3):
        W.grad = None
        step(X_call)
    assert step.source is not None
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        W.grad = None
        J_c = step(X_call).item()
    dW_c = W.grad.copy()
    W.grad = None
    J = ((W @ ag.Tensor(X_call)).sigmoid() + (W @ ag.Tensor(X_call) * 0.0).exp().log()).sum()
    J.backward()
    assert J_c == J.item() and J_c > 0
    np.testing.assert_array_equal(dW_c, W.grad)
    assert dW_c[0, 0] < 0  # -e^-711: sigmoid's stable form ran, not 1 / (1 + inf) = 0
    assert np.geterr() == before
    step_log0 = ag.compile(lambda X: (W @ X).relu().log().sum())
    for _ in range(3):
        W.grad = None
        with warnings.catch_warnings(record=True) as seen:  # as the eager backward warns
            warnings.simplefilter("always")
            J_log0 = step_log0(X_call).item()
        assert any("divide by zero" in str(w.message) for w in seen)
    assert J_log0 == -np.inf
    assert np.geterr() == before


def test_a_softmax_network_replays_from_generated_source():
    W = ag.Tensor(np.ones((2, 2)), requires_grad=True)
    step = ag.compile(lambda X: (W @ X).softmax(axis=0).log().sum())
    for _ in range(3):
        step(np.ones((2, 3)))
    assert step.source is not None and "def replay(args)" in step.source


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(0, 999))
def test_the_fast_replay_equals_the_engine_on_a_tangled_graph(n, m, seed):
    """Through the kernels: a leaf and a value read by several ops (their gradients added), an
    argument that requires a gradient, x * x, a division by a leaf, sums over an axis and over
    everything, a transpose, and a transposed 1 x 1 J (copied out of its buffer)."""
    rng = np.random.default_rng(seed)
    W = ag.Tensor(rng.standard_normal((n, n)), requires_grad=True, name="W")
    d = ag.Tensor(rng.uniform(1.0, 2.0, (n, 1)), requires_grad=True, name="d")

    def loss(X, v):
        Z = W @ X + v                                   # v: an argument with a gradient
        A = Z.tanh() + (W.T @ Z).sigmoid() - (Z * Z).relu() / d
        s = (A * Z).sum(axis=1, keepdims=True)          # Z read by four ops
        return ((s - A.exp().sum()).T @ (-s)).T + (W * W).sum() / (d.sum() * 2.0)

    step = ag.compile(loss)
    params = [W, d]
    for call in range(4):
        X = rng.standard_normal((n, m))
        v = ag.Tensor(rng.standard_normal((n, 1)), requires_grad=True)
        v_eager = ag.Tensor(v.data.copy(), requires_grad=True)
        J_c, grads_c = compiled_grads(step, params, X, v)
        J, grads = eager_grads(loss, params, ag.Tensor(X), v_eager)
        assert J_c == pytest.approx(J, rel=1e-12, abs=1e-14)
        for g_c, g in zip(grads_c + [v.grad], grads + [v_eager.grad]):
            np.testing.assert_allclose(g_c, g, rtol=1e-11, atol=1e-13)
    assert step.source is not None
    kept = step(X, v)
    value = kept.item()
    step(X + 1.0, v)
    assert kept.item() == value


# --- the memory plan: buffers whose values never overlap share one array ------------------------

def _buffer_arrays(step):
    from autograd_lite.compile import replay
    _, constants = replay.write(step._last.program)
    return [value for name, value in constants.items() if name.startswith("B")]


def test_a_deep_replay_shares_its_buffers_and_stays_bit_for_bit():
    """Ten sigmoid layers of one width: the replay needs about one array per value the backward
    pass reads (the A[l] of eq 8), not one per intermediate value, and gives the eager
    engine's J and gradients bit for bit over several calls with new data."""
    W, b, X, Y = network([8] * 11 + [1], 5, seed=3)
    params = [t for pair in zip(*leaves(W, b)) for t in pair]
    loss = make_loss(params[0::2], params[1::2], ["sigmoid"] * 11)
    step = ag.compile(loss)
    rng = np.random.default_rng(0)
    assert_replays_bit_for_bit(step, loss, params, [(rng.standard_normal((8, 5)), Y) for _ in range(4)])
    arrays = _buffer_arrays(step)
    distinct = {id(a) for a in arrays}
    assert len(distinct) <= len(arrays) // 2, (len(distinct), len(arrays))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 999))
def test_shared_buffers_never_overwrite_a_value_still_read(n, m, seed):
    """Values of one shape read long after they were made (skip connections), read through
    views (a transpose, a reshape, a sum's or a mean's repeated gradient, add's pass-through)
    and by several ops: a buffer reused too early would change J or a gradient."""
    rng = np.random.default_rng(seed)
    W = ag.Tensor(rng.standard_normal((n, n)) / 2, requires_grad=True, name="W")
    V = ag.Tensor(rng.standard_normal((n, n)) / 2, requires_grad=True, name="V")

    def loss(X):
        A1 = (W @ X).tanh()
        A2 = (V @ A1).sigmoid()
        A3 = (W.T @ A2 + A1).tanh()                      # A1 read again, two layers on
        T = A3.T.reshape(m, n).T                         # views of a buffer
        A4 = (V @ (T * A2) - A1.mean(axis=1, keepdims=True)).sigmoid()
        s = (A4 * A1).sum(axis=0, keepdims=True)         # A1 once more, at the end
        return (s * s).mean() + (A2 - A3).sum() / 3.0 + A4.mean()

    step = ag.compile(loss)
    assert_replays_bit_for_bit(step, loss, [W, V], [(rng.standard_normal((n, m)),) for _ in range(3)])
    assert step.source is not None


class _Stash(ag.Primitive):
    """y = 2x whose vjp reads the input array its forward kept (as a user's op might)."""
    name = "stash"
    vjp_reads_inputs = vjp_reads_output = False  # so the replay hands the vjp no array

    def forward(self, x):
        self.kept = x
        return 2 * x

    def vjp(self, g, inputs, output, wants):
        return (g * self.kept,)


def test_a_buffer_given_to_a_users_primitive_is_never_reused():
    """A buffer a user's forward was given may be kept by it and read in its vjp, long after
    the line that passed it: the plan keeps such a buffer for the whole replay."""
    stash = _Stash()
    W = ag.Tensor(np.random.default_rng(2).standard_normal((3, 3)), requires_grad=True)

    def loss(X):
        H = stash(W @ X).sigmoid()           # the matmul's buffer goes to the user's op
        for _ in range(3):                   # later values of the same shape
            H = (W @ H + 1.0).sigmoid()
        return H.sum()

    step = ag.compile(loss)
    rng = np.random.default_rng(5)
    assert_replays_bit_for_bit(step, loss, [W], [(rng.standard_normal((3, 4)),) for _ in range(4)])


class _Doubled(ag.Primitive):
    """y = 2x with a kernel of its own written as a loop, a kind of statement the memory plan
    does not follow."""
    name = "doubled"
    vjp_reads_inputs = vjp_reads_output = False

    def forward(self, x):
        return 2 * x

    def vjp(self, g, inputs, output, wants):
        return (2 * g,)


def _doubled_forward(e):
    return [f"{e.o} = multiply({e.x[0]}, 1.0, {e.result()})",
            f"for _ in range(1): add({e.o}, {e.x[0]}, {e.o})"]


kernels.KERNELS[_Doubled] = kernels.Kernel(_doubled_forward, grad_shape=kernels.input_shape)


def test_a_kernel_the_memory_plan_cannot_follow_keeps_every_buffer_apart():
    doubled = _Doubled()
    W = ag.Tensor(np.random.default_rng(4).standard_normal((3, 3)), requires_grad=True)

    def loss(X):
        H = doubled((W @ X).tanh())
        for _ in range(3):
            H = (W @ H).sigmoid()
        return H.sum()

    step = ag.compile(loss)
    rng = np.random.default_rng(6)
    assert_replays_bit_for_bit(step, loss, [W], [(rng.standard_normal((3, 2)),) for _ in range(4)])
    assert "for _ in range(1)" in step.source
    arrays = _buffer_arrays(step)
    assert len({id(a) for a in arrays}) == len(arrays)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([(1, 1), (1,), (1, 3), (2, 1)]), st.integers(0, 999))
def test_one_element_values_are_written_out_of_place_with_the_same_numbers(shape, seed):
    """numpy is slow on a 1-element array a ufunc both reads and writes, so the replay writes
    those steps into a second buffer instead: J and every gradient stay the eager engine's,
    bit for bit, through every kernel that works in place (sigmoid, tanh, division, mean, the
    fused log-loss), and no such step is left in place."""
    rng = np.random.default_rng(seed)
    w = ag.Tensor(rng.uniform(0.5, 1.5, shape), requires_grad=True, name="w")
    c = ag.Tensor(rng.uniform(0.5, 1.5, shape), requires_grad=True, name="c")

    def loss(x, y):
        a = (w * x + c).sigmoid()
        t = (a / c).tanh() - c / (a + 1.0)
        return ag.binary_cross_entropy_with_logits(t * w, y) + t.mean() + (a * t).sum()

    step = ag.compile(loss)
    assert_replays_bit_for_bit(step, loss, [w, c], [
        (rng.standard_normal(shape), (rng.random(shape) < 0.5).astype(float)) for _ in range(3)])
    if np.prod(shape) == 1:
        import re
        in_place = re.compile(r"^ *\w+\((?:.*, )?(\w+), (?:.*, )?(?:out=)?\1\)$", re.M)
        assert in_place.search("    divide(N16, v7, v7)") and in_place.search("exp(a, out=a)")
        assert not in_place.search(step.source), step.source  # no f(.., x, .., x) left


class _ExpPlusOne(ag.Primitive):
    """y = e^x + 1, for kernels that add the 1 in place on a 1-element buffer."""
    vjp_reads_inputs = False

    def forward(self, x):
        return np.exp(x) + 1.0

    def vjp(self, g, inputs, output, wants):
        return (g * (output - 1.0),)


class _ViewedTwice(_ExpPlusOne):
    """Its kernel keeps a view of its buffer and then adds 1 in place: the view must see it."""
    name = "viewed_twice"


def _viewed_twice_forward(e):
    return [f"{e.o}_e = exp({e.x[0]}, {e.buffer()})",
            f"{e.o} = {e.o}_e.reshape({e.out_shape!r})", f"add({e.o}_e, 1.0, {e.o}_e)"]


class _NamedBuffer(_ExpPlusOne):
    """Its kernel adds 1 in place through a local name, then reads the buffer by its own
    name: the addition must stay in that buffer."""
    name = "named_buffer"


def _named_buffer_forward(e):
    b = e.buffer()
    return [f"{e.o}_e = exp({e.x[0]}, {b})", f"add({e.o}_e, 1.0, {e.o}_e)",
            f"{e.o} = multiply({b}, 1.0, {e.result()})"]


kernels.KERNELS[_ViewedTwice] = kernels.Kernel(_viewed_twice_forward, grad_shape=kernels.input_shape)
kernels.KERNELS[_NamedBuffer] = kernels.Kernel(_named_buffer_forward, grad_shape=kernels.input_shape)


@pytest.mark.parametrize("kind", [_ViewedTwice, _NamedBuffer])
def test_a_one_element_buffer_something_else_reads_stays_in_place(kind):
    op = kind()
    w = ag.Tensor(np.array([[0.3]]), requires_grad=True)

    def loss(X):
        return (op(w * X) * 2.0).sum()

    step = ag.compile(loss)
    assert_replays_bit_for_bit(step, loss, [w], [(np.array([[x]]),) for x in (0.5, -1.0, 2.0, 0.25)])


def test_float32_means_and_sigmoids_replay_as_the_eager_engine():
    """Kernels read their numbers (1.0, a mean's count) as 0-d arrays of the value's dtype:
    in float32 the same numbers as the eager engine's Python numbers, bit for bit."""
    rng = np.random.default_rng(8)
    W = ag.Tensor(rng.standard_normal((3, 5)), requires_grad=True, dtype=np.float32)

    def loss(X):
        A = (W * X).sigmoid()
        return A.mean() + A.tanh().mean(axis=1, keepdims=True).sum() + (A * A).mean(axis=0).sum()

    step = ag.compile(loss)
    assert_replays_bit_for_bit(step, loss, [W], [
        (rng.standard_normal((3, 5)).astype(np.float32),) for _ in range(4)])
    assert W.grad.dtype == np.float32


def _bits(a):
    a = np.asarray(a)
    return a.view(f"u{a.dtype.itemsize}")  # -0.0 and 0.0 apart


@pytest.mark.parametrize("copies", [1, 40], ids=["small", "large"])
@pytest.mark.parametrize("z_dtype, y_dtype", [(np.float64, np.float64), (np.float32, np.float32),
                                              (np.float32, np.float64)])
def test_the_sigmoid_kernels_equal_eq_7_bit_for_bit_at_its_edges(z_dtype, y_dtype, copies):
    """At 0 and -0, the smallest subnormals, where e^-z underflows, just above where it
    overflows and at the infinities, the kernels' 1 / (1 + e^-z) gives the primitive's eq 7 bit
    for bit: sigmoid itself, and the fused loss (finite logits: an infinite one takes the eager
    path), whose sigmoid in eq 78 is z's dtype also where the labels are float64."""
    tiny = np.finfo(z_dtype).smallest_subnormal
    edge = 88.0 if z_dtype == np.float32 else 709.0  # e^edge is finite, e^(edge + 1) is not
    finite = np.array([0.0, -0.0, tiny, -tiny, 1e-3, -1e-3, 1.0, -1.0, 17.0, -17.0, 30.0, -30.0,
                       edge, -edge, 745.5, 800.0], z_dtype)
    infinite = np.array([np.inf, -np.inf], z_dtype)
    rng = np.random.default_rng(3)
    every = np.tile(np.concatenate([finite, infinite]), copies)
    finite = np.tile(finite, copies)
    cases = [(ops.SIGMOID, (every.reshape(2, -1),)),
             (ops.BCE_WITH_LOGITS, (finite.reshape(2, -1),
                                    (rng.random((2, finite.size // 2)) < 0.5).astype(y_dtype)))]
    for op, arrays in cases:
        expected = op.forward(*arrays)
        dtype = expected.dtype  # what reaches a vjp has its output's dtype (backpropagate casts)
        for g, root in ((rng.standard_normal(np.shape(expected)).astype(dtype), False),
                        (np.ones((), dtype), True)):
            if root and np.ndim(expected):
                continue
            output, grads = run_kernel(op, arrays, {}, g, root=root)
            assert output.dtype == expected.dtype
            np.testing.assert_array_equal(_bits(output), _bits(expected))
            for found, rule in zip(grads, op.vjp(g, arrays, expected, (True,) * len(arrays))):
                assert found.dtype == rule.dtype
                np.testing.assert_array_equal(_bits(found), _bits(rule))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_sigmoid_kernel_whose_exponential_overflows_leaves_the_step_to_eager(dtype):
    """Where e^-z overflows (z < -709 in float64, -88 in float32) the kernels' eq 7 raises in
    the replay, which then runs the step eagerly; there the primitive gives e^z / (1 + e^z),
    its tiny values kept, without a warning."""
    z = np.array([[-1.0, -740.0 if dtype == np.float64 else -95.0, 3.0]], dtype)
    y = np.array([[0.0, 1.0, 1.0]], dtype)
    for op, arrays in ((ops.SIGMOID, (z,)), (ops.BCE_WITH_LOGITS, (z, y))):
        with pytest.raises(FloatingPointError):
            run_kernel(op, arrays, {}, np.ones((), dtype), root=True) if op is ops.BCE_WITH_LOGITS \
                else run_kernel(op, arrays, {}, np.ones_like(z))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ops.SIGMOID.forward(z)
    assert s.dtype == dtype and 0 < s[0, 1] < np.finfo(dtype).tiny  # a subnormal, not 0
    exact = np.exp(z.astype(np.float64)) / (1 + np.exp(z.astype(np.float64)))
    np.testing.assert_allclose(s, exact, rtol=1e-6 if dtype == np.float32 else 1e-15,
                               atol=np.finfo(dtype).smallest_subnormal)  # a subnormal's rounding


def test_a_number_the_dtype_cannot_hold_exactly_stays_a_python_number():
    e = kernels.Emit(Writer(), ag.ops.MEAN, ["x"], "y", ((2,),), (), np.dtype(np.float32), {})
    assert e.number(2 ** 24 + 1) == repr(2 ** 24 + 1)   # float32 would round it
    assert e.number(1.0) != "1.0" and e.number(15) != "15"


# --- a replay is never a wrong step ------------------------------------------------------------

def test_the_same_tensor_for_two_arguments_is_a_program_of_its_own():
    """Traced as f(a, a), then called as f(a, b): before, the replay computed f(b, b)."""
    a = ag.Tensor([1.0, 2.0], requires_grad=True)
    b = ag.Tensor([3.0, 5.0], requires_grad=True)
    step = ag.compile(lambda x, y: (x * y * y).sum())
    for _ in range(3):
        step(a, a)
    a.grad = b.grad = None
    J = step(a, b)
    assert J.item() == pytest.approx(float((a.data * b.data ** 2).sum()))
    np.testing.assert_allclose(a.grad, b.data ** 2)
    np.testing.assert_allclose(b.grad, 2 * a.data * b.data)


def test_a_refused_call_changes_no_gradient_and_is_remembered():
    W = ag.Tensor(np.ones(3), requires_grad=True)
    doubled = [False]

    def factor():  # read through a function: not watched, so the second call's check finds it
        return 2.0 if doubled[0] else 1.0
    step = ag.compile(lambda x: (W * x * factor()).sum())
    step(np.ones(3))
    doubled[0] = True
    W.grad = None
    with pytest.raises(GraphChangedError):
        step(np.ones(3))
    assert W.grad is None                  # no backward ran for the refused call
    with pytest.raises(GraphChangedError):  # and no later call replays the old trace
        step(np.ones(3))
    assert W.grad is None
    doubled[0] = False                     # the traced graph again: checked, and right
    step(np.ones(3))
    np.testing.assert_array_equal(W.grad, np.ones(3))


def test_detach_inside_a_step_is_traced_and_reads_the_new_value_each_call():
    W = ag.Tensor(np.ones(3), requires_grad=True)
    step = ag.compile(lambda x: (W * W.detach() * x).sum())
    for value in (1.0, 2.0, 3.0, 4.0):
        W.data[:] = value
        W.grad = None
        J = step(np.ones(3))
        assert J.item() == 3 * value ** 2
        np.testing.assert_array_equal(W.grad, np.full(3, value))  # d/dW of W * const


def test_an_array_the_step_reads_from_outside_is_refused_with_the_way_out():
    W = ag.Tensor(np.ones(3), requires_grad=True)
    outside = np.ones(3)
    step = ag.compile(lambda x: (W * x * outside).sum())
    step(np.ones(3))
    with pytest.raises(GraphChangedError, match="Pass it as an argument"):
        step(np.ones(3))


def test_a_replayed_gradient_of_0_d_operands_is_an_ndarray():
    s = ag.Tensor(2.0, requires_grad=True)
    step = ag.compile(lambda: s * s)
    for _ in range(3):
        s.grad = None
        step()
    assert type(s.grad) is np.ndarray and s.grad.shape == () and s.grad == 4.0


def test_a_matmul_fed_a_zero_stride_gradient_replays_bit_for_bit():
    """(W @ X).sum() hands matmul's vjp a broadcast (zero-stride) g: the replay's matmul into a
    buffer gives the eager engine's bits (np.dot did not, by an ulp)."""
    rng = np.random.default_rng(3)
    W = ag.Tensor(rng.standard_normal((7, 5)), requires_grad=True)
    X = rng.standard_normal((5, 9))
    step = ag.compile(lambda x: (W @ x).sum())
    for _ in range(3):
        W.grad = None
        step(X)
    replayed = W.grad.copy()
    W.grad = None
    (W @ ag.Tensor(X)).sum().backward()
    np.testing.assert_array_equal(replayed, W.grad)


def test_class_index_labels_are_read_afresh_by_every_replay():
    """softmax_cross_entropy with class indices (an ndarray or a Tensor argument): the labels
    are an input of the pick_classes op, so each replay uses its own call's labels (before,
    they were a parameter: the second call was refused as a changed graph)."""
    rng = np.random.default_rng(0)
    W = ag.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    step = ag.compile(lambda X, y: ag.softmax_cross_entropy(W @ X, y))
    X = rng.standard_normal((4, 6))
    for call in range(5):
        y = rng.integers(0, 3, 6)
        labels = y if call % 2 else ag.Tensor(y)
        W.grad = None
        J = step(X, labels)
        found = W.grad.copy()
        W.grad = None
        expected = ag.softmax_cross_entropy(W @ ag.Tensor(X), y)
        expected.backward()
        assert J.item() == expected.item()
        np.testing.assert_array_equal(found, W.grad)
    assert step.source is not None and "pick_classes" in step.source
    with pytest.raises(ValueError, match=r"pick_classes: class labels must be whole numbers in \[0, 3\)"):
        step(X, np.array([0, 1, 2, 3, 0, 1]))

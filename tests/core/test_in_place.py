"""In-place changes, PyTorch's way: the learner's update loop trains, and no change to an array
a live graph saved can give a wrong gradient.

- ``with ag.no_grad(): p -= lr * p.grad`` changes the Tensor ``p`` itself (eqs 74-75), so a
  loop over the parameters trains; outside no_grad a leaf that requires grad is refused.
- ``Tensor.version`` counts every change the engine sees (in-place operators, ``.data = ``).
- No write into an array a live graph saved can change its gradient. An array the user holds
  (``.data`` handed it out, or ``.data = `` took it) is read-only while a live graph saves it:
  ``W.data *= 10`` or ``W.data[...] = 0`` between the forward pass and backward is refused at
  the write. The first ``.data`` of an array only the engine held hands out the tensor's own
  copy, so the graph keeps what it saw; a leaf whose values changed since (through that copy,
  ``W -= ...``, ``W.data = ...``) is refused by backward, naming it. After backward, or once
  the graph is dropped, writes work again.
"""
import gc

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite.core import graph
from autograd_lite.errors import ShapeError
from gradcheck_util import assert_close

RNG = np.random.default_rng(7)
X_ = RNG.standard_normal((3, 5))
Y_ = (RNG.random((1, 5)) > 0.5) * 1.0
W1_, W2_ = RNG.standard_normal((4, 3)), RNG.standard_normal((1, 4))


def seed_network():
    """The seed's 3-4-1 network (eqs 26-29)."""
    W1 = ag.Tensor(W1_, requires_grad=True, name="W[1]")
    b1 = ag.Tensor(np.zeros((4, 1)), requires_grad=True, name="b[1]")
    W2 = ag.Tensor(W2_, requires_grad=True, name="W[2]")
    b2 = ag.Tensor(np.zeros((1, 1)), requires_grad=True, name="b[2]")
    return [W1, b1, W2, b2]


def loss(params, X=None):
    W1, b1, W2, b2 = params
    X = ag.Tensor(X_) if X is None else X
    A1 = (W1 @ X + b1).sigmoid()
    A2 = (W2 @ A1 + b2).sigmoid()
    return ag.binary_cross_entropy(A2, ag.Tensor(Y_))


def numpy_step(params, lr):
    """The same step by hand (eqs 77-84, then 74-75), for comparison."""
    W1, b1, W2, b2 = (p.copy() for p in params)
    Z1 = W1 @ X_ + b1
    A1 = 1 / (1 + np.exp(-Z1))
    A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
    dZ2 = (A2 - Y_) / X_.shape[1]
    dW2, db2 = dZ2 @ A1.T, dZ2.sum(axis=1, keepdims=True)
    dZ1 = (W2.T @ dZ2) * A1 * (1 - A1)
    dW1, db1 = dZ1 @ X_.T, dZ1.sum(axis=1, keepdims=True)
    return [p - lr * g for p, g in zip((W1, b1, W2, b2), (dW1, db1, dW2, db2))]


# --- the learner's loop ---------------------------------------------------------------------------

def test_the_loop_over_parameters_under_no_grad_updates_each_parameter_itself():
    params = seed_network()
    objects = [id(p) for p in params]
    expected = [p.data.copy() for p in params]
    for _ in range(3):
        expected = numpy_step(expected, 0.5)
        loss(params).backward()
        for p in params:
            with ag.no_grad():
                p -= 0.5 * p.grad  # eqs 74-75
            p.grad = None
    assert [id(p) for p in params] == objects
    for p, e in zip(params, expected):
        assert p.is_leaf and p.requires_grad and p.grad_fn is None
        assert_close(p.data, e, p.name, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("symbol, function", [("+=", np.add), ("-=", np.subtract),
                                              ("*=", np.multiply), ("/=", np.divide)])
@pytest.mark.parametrize("operand", ["number", "ndarray", "tensor", "broadcast"])
def test_each_in_place_operator_changes_the_same_tensor_under_no_grad(symbol, function, operand):
    W = ag.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, name="W")
    other = {"number": 2.0, "ndarray": np.array([[2.0, 4.0], [0.5, 8.0]]),
             "tensor": ag.Tensor([[2.0, 4.0], [0.5, 8.0]], requires_grad=True),
             "broadcast": np.array([2.0, 4.0])}[operand]
    expected = function(W.data, other.data if isinstance(other, ag.Tensor) else other)
    same, version = W, W.version
    with ag.no_grad():
        exec(f"W {symbol} other", {}, namespace := {"W": W, "other": other})
    assert namespace["W"] is same
    np.testing.assert_array_equal(W.data, expected)
    assert W.version == version + 1 and W.is_leaf and W.requires_grad


def test_a_constant_changes_in_place_outside_no_grad_too():
    X = ag.Tensor([1.0, 2.0])
    buffers = [X]
    for x in buffers:
        x *= 3.0  # nothing records a gradient: the values change, as in PyTorch
    np.testing.assert_array_equal(X.data, [3.0, 6.0])
    assert X.version == 1


def test_in_place_on_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    W = ag.Tensor([1.0, 2.0], requires_grad=True, name="W[1]")
    for statement in ("W -= 1.0", "W += 1.0", "W *= 2.0", "W /= 2.0", "W -= np.ones(2)",
                      "W *= np.full(2, 2.0, dtype=np.float32)"):
        with pytest.raises(RuntimeError, match=r"'W\[1\]' is a leaf that requires grad.*no_grad"):
            exec(statement, {"np": np}, {"W": W})
    np.testing.assert_array_equal(W.data, [1.0, 2.0])
    assert W.version == 0


def test_in_place_on_a_result_outside_no_grad_is_a_new_recorded_result():
    a = ag.Tensor([1.0, 2.0], requires_grad=True)
    z = a * 3.0
    first = z
    z += a  # z = z + a: the name is rebound, the first result is untouched
    assert z is not first and z.op == "add"
    np.testing.assert_array_equal(first.data, [3.0, 6.0])
    z.sum().backward()
    np.testing.assert_array_equal(a.grad, [4.0, 4.0])


def test_in_place_refuses_a_result_of_another_shape_or_a_dtype_it_cannot_hold():
    b = ag.Tensor(np.zeros((4, 1)), requires_grad=True, name="b[1]")
    with ag.no_grad(), pytest.raises(ShapeError, match=r"'b\[1\]' has shape \(4, 1\).*\(4, 5\)"):
        b -= np.ones((4, 5))
    counts = ag.Tensor(np.array([1, 2]), dtype=np.int64)
    with pytest.raises(TypeError, match="int64 cannot hold"):
        counts /= 2
    assert b.version == 0 and counts.version == 0


def test_in_place_keeps_the_tensors_dtype_and_a_0d_tensor_stays_0d():
    W = ag.Tensor([1.0, 2.0], requires_grad=True, dtype=np.float32)
    with ag.no_grad():
        W -= np.array([0.5, 0.5])  # a float64 operand: the parameter stays float32
    assert W.dtype == np.float32
    s = ag.Tensor(2.0, requires_grad=True)
    with ag.no_grad():
        s *= 3.0
    assert isinstance(s.data, np.ndarray) and s.shape == () and s.item() == 6.0


def test_an_in_place_operator_never_writes_into_an_array_taken_before():
    W = ag.Tensor([1.0, 2.0], requires_grad=True)
    before = W.numpy()
    with ag.no_grad():
        W -= 1.0
    np.testing.assert_array_equal(before, [1.0, 2.0])  # a record of the old values


# --- version --------------------------------------------------------------------------------------

def test_version_counts_every_change_the_engine_sees():
    W = ag.Tensor([1.0, 2.0], requires_grad=True)
    assert W.version == 0
    W.data = np.array([3.0, 4.0])
    assert W.version == 1
    W.data -= 0.5  # an augmented assignment assigns .data
    assert W.version == 2
    with ag.no_grad():
        W += 1.0
        W *= 2.0
    assert W.version == 4
    (W * 2).sum()  # reading and using it changes nothing
    assert W.version == 4


def test_an_in_place_write_through_data_keeps_the_array_and_counts_once():
    """``W.data -= x`` writes into the array ``.data`` handed out and gives it back: the tensor
    keeps that very array (a handle taken before sees the change), one change is counted, and
    a graph built next saves and locks it as any handed-out array."""
    W = ag.Tensor([[1.0, 2.0]], requires_grad=True)
    handle = W.data
    W.data -= 0.5
    assert W.data is handle and W.version == 1
    np.testing.assert_array_equal(handle, [[0.5, 1.5]])
    J = (W * 2.0).sum()
    with pytest.raises(ValueError, match="read-only"):
        handle[0, 0] = 9.0
    J.backward()
    W.data -= 0.5
    np.testing.assert_array_equal(W.data, [[0.0, 1.0]])
    assert W.version == 2


@pytest.mark.parametrize("lock_elsewhere", [False, True])
def test_a_read_only_array_of_a_tensor_is_handed_out_as_it_is(lock_elsewhere):
    """A tensor whose own array is read-only (a broadcast view, made without a gradient) hands
    out that array, still read-only and not copied, whether or not a graph elsewhere locks
    something."""
    other = ag.Tensor([1.0, 2.0], requires_grad=True)
    other.data  # handed out, so a graph that saves it locks it
    J = (other * other).sum() if lock_elsewhere else None
    assert graph.locked or not lock_elsewhere
    with ag.no_grad():
        t = ag.Tensor([1.0, 2.0]).broadcast_to((3, 2))
    array = t.data
    assert not array.flags.writeable and np.shares_memory(array, t._data)
    with pytest.raises(ValueError, match="read-only"):
        array[0, 0] = 5.0
    if J is not None:
        J.backward()


# --- arrays a live graph saved --------------------------------------------------------------------

def _dX_numpy(W1, b1, W2, b2):
    """dJ/dX of the seed network by hand (eqs 77-82 one layer further), at these values."""
    A1 = 1 / (1 + np.exp(-(W1 @ X_ + b1)))
    A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
    dZ2 = (A2 - Y_) / X_.shape[1]
    dZ1 = (W2.T @ dZ2) * A1 * (1 - A1)
    return W1.T @ dZ1


WRITES = ["W.data *= 10", "W.data[...] = 0", "W.data[0, 0] = 5", "np.multiply(W.data, 2, out=W.data)",
          "W.numpy()[:] = 1", "np.asarray(W)[0] = 3", "W.data.fill(0)"]


@pytest.mark.parametrize("write", WRITES)
def test_a_raw_write_into_a_saved_array_the_user_holds_is_refused_at_the_write(write):
    params = seed_network()
    W = params[0]
    held = W.data  # handed out before the forward pass, as an update loop's W.data is
    X = ag.Tensor(X_, requires_grad=True)
    J = loss(params, X)
    with pytest.raises(ValueError, match="read-only"):
        exec(write, {"np": np}, {"W": W})
    with pytest.raises(ValueError, match="read-only"):
        held[0, 0] = 5.0  # the handle taken earlier too
    J.backward()
    assert_close(X.grad, _dX_numpy(W1_, np.zeros((4, 1)), W2_, np.zeros((1, 1))), "dJ/dX",
                 rtol=1e-12, atol=1e-14)
    exec(write, {"np": np}, {"W": W})  # after backward the array is writable again
    assert W.data is held


@pytest.mark.parametrize("write", WRITES)
def test_a_write_after_the_forward_pass_goes_to_a_copy_and_backward_refuses_it(write):
    params = seed_network()
    W = params[0]
    J = loss(params)  # saved W's array, which no one but the engine could reach
    exec(write, {"np": np}, {"W": W})  # .data hands out a copy: the saved values stay
    with pytest.raises(RuntimeError, match=r"'W\[1\]' was changed in place after the forward "
                                           r"pass that saved it"):
        J.backward()
    assert all(p.grad is None for p in params)  # refused before any work
    J = loss(params)
    J.backward()  # a new forward pass with the new values is fine
    assert W.grad is not None


def test_reading_data_between_forward_and_backward_changes_nothing():
    params = seed_network()
    X = ag.Tensor(X_, requires_grad=True)
    J = loss(params, X)
    np.testing.assert_array_equal(params[0].data, W1_)  # a copy is handed out, equal
    assert params[0].data is params[0].data  # the same one every time
    J.backward()
    assert_close(X.grad, _dX_numpy(W1_, np.zeros((4, 1)), W2_, np.zeros((1, 1))), "dJ/dX",
                 rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("held_before", [True, False])
def test_a_write_into_memory_a_saved_view_shares_is_refused(held_before):
    W = ag.Tensor(np.ones((2, 3)), requires_grad=True, name="W")
    if held_before:
        W.data
    X = ag.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    J = (X @ W.T).sum()  # matmul saved a transposed view of W's array
    if held_before:
        with pytest.raises(ValueError, match="read-only"):
            W.data[0, 0] = 5.0
        J.backward()
        np.testing.assert_array_equal(X.grad, np.full((2, 3), 2.0))
    else:
        W.data[0, 0] = 5.0  # W's own copy: the view the graph saved keeps the forward's values
        with pytest.raises(RuntimeError, match="'W' was changed in place"):
            J.backward()


def test_a_tensor_sharing_an_array_the_user_holds_locks_it_too():
    W = ag.Tensor(np.ones((2, 2)), requires_grad=True)
    held = W.data
    x = ag.Tensor(np.ones((2, 2)), requires_grad=True)
    J = (W.detach() * x).sum()  # detach shares W's array
    with pytest.raises(ValueError, match="read-only"):
        held[0, 0] = 5.0
    J.backward()
    np.testing.assert_array_equal(x.grad, np.ones((2, 2)))
    g = ag.grad(lambda w: (w * w * x).sum())(W.detach())  # ag.grad's argument shares it too
    np.testing.assert_array_equal(g.data, 2 * np.ones((2, 2)))


def test_a_write_into_a_saved_result_is_refused():
    W = ag.Tensor(RNG.standard_normal((2, 2)), requires_grad=True)
    A = (W * 1.0).sigmoid()  # sigmoid's vjp reads its output A (eq 8)
    J = A.sum()
    with pytest.raises(ValueError, match="read-only"):
        A.data[...] = 0.5
    J.backward()
    s = 1 / (1 + np.exp(-W.data))
    assert_close(W.grad, s * (1 - s), "dJ/dW", rtol=1e-12, atol=1e-15)


def test_an_update_between_forward_and_backward_is_refused_by_backward_naming_the_leaf():
    params = seed_network()
    J = loss(params)
    with ag.no_grad():
        params[0] -= 0.1
    with pytest.raises(RuntimeError, match=r"'W\[1\]' was changed in place after the forward "
                                           r"pass that saved it"):
        J.backward()
    assert all(p.grad is None for p in params)  # refused before any work


def test_assigning_new_values_between_forward_and_backward_is_refused_equal_ones_are_not():
    params = seed_network()
    J = loss(params)
    params[2].data = params[2].data.copy()  # the same values in a new array: nothing changed
    J.backward(retain_graph=True)
    params[2].data = params[2].data + 1.0
    with pytest.raises(RuntimeError, match=r"'W\[2\]' was changed"):
        J.backward()


def test_updates_work_after_backward_and_after_a_graph_is_dropped():
    params = seed_network()
    W = params[0]
    loss(params).backward()
    W.data -= 0.1 * W.grad  # eqs 74-75, raw numpy, after backward
    buffer = W.data
    J = loss(params)  # a forward pass never backpropagated...
    del J  # ...then dropped
    gc.collect()
    W.data[...] = 1.0
    buffer[0, 0] = 2.0  # an array taken earlier is writable too once its graph was released
    loss(params).backward()
    buffer[0, 1] = 3.0
    assert W.data[0, 0] == 2.0 and W.data[0, 1] == 3.0


def test_a_graph_kept_but_never_backpropagated_blocks_no_update_after_the_next_backward():
    params = seed_network()
    W = params[0]
    kept = loss(params)  # e.g. an output kept for printing
    J_kept = kept.item()
    for _ in range(2):
        loss(params).backward()
        with ag.no_grad():
            W.data -= 0.1 * W.grad  # raw numpy update: works though `kept` is alive
        W.grad = None
    assert loss(params).item() != J_kept
    with pytest.raises(RuntimeError, match=r"'W\[1\]' was changed"):
        kept.backward()  # it saved the old W: refused, never a mixed gradient


def test_a_kept_graph_still_backpropagates_through_the_values_its_forward_pass_saw():
    params = seed_network()
    X = ag.Tensor(X_, requires_grad=True)
    kept = loss(params, X)
    loss(params).backward()  # another backward lets `kept` keep copies of its arrays
    params[0].data[...] = params[0].data  # a write that changes nothing
    kept.backward()
    assert_close(X.grad, _dX_numpy(W1_, np.zeros((4, 1)), W2_, np.zeros((1, 1))), "dJ/dX",
                 rtol=1e-12, atol=1e-14)


def test_retain_graph_holds_the_arrays_until_the_last_backward():
    W = ag.Tensor([1.0, 2.0], requires_grad=True, name="W")
    J = (W * W).sum()
    J.backward(retain_graph=True)
    J.backward()
    np.testing.assert_array_equal(W.grad, [4.0, 8.0])
    W.data[0] = 5.0


def test_ag_grad_lets_its_argument_be_updated_in_place():
    w = ag.Tensor([1.0, 2.0], requires_grad=True)
    for _ in range(3):
        g = ag.grad(lambda w: (w * w).sum())(w)
        w.data -= 0.25 * g.data  # g's graph (for a second derivative) kept its own copies
    np.testing.assert_allclose(w.data, [0.125, 0.25])
    np.testing.assert_array_equal(ag.grad(lambda v: (ag.grad(lambda u: (u * u * u).sum())(v)
                                                     ).sum())(w).data, 6 * w.data)


def test_forward_passes_without_backward_leave_no_growing_table_of_locks():
    W = ag.Tensor(RNG.standard_normal((3, 3)), requires_grad=True)
    W.data  # handed out: every pass locks it
    outputs = []
    while len(graph.locked) < graph._sweep.at:  # evaluation in grad mode, never backward
        x = ag.Tensor(RNG.standard_normal((3, 2)))
        x.data  # handed out too: locked by its pass
        outputs.append((W @ x).sum())
    del outputs, x  # the graphs go
    x = ag.Tensor(RNG.standard_normal((3, 2)))
    x.data
    J = (W @ x).sum()  # the next lock sweeps the table: W's and this x's entries are left
    assert len(graph.locked) == 2
    del J
    W.data[0, 0] = 1.0  # nothing left locked


def test_in_place_on_a_result_under_no_grad_changes_it_and_its_graph_keeps_its_values():
    W = ag.Tensor([1.0, 2.0], requires_grad=True)
    A = (W * 3.0).sigmoid()
    J = (A * W).sum()  # mul saved A's values
    same = A
    with ag.no_grad():
        A -= 1.0
    assert A is same and A.version == 1
    J.backward()
    s = 1 / (1 + np.exp(-3.0 * np.array([1.0, 2.0])))
    np.testing.assert_allclose(W.grad, s + W.data * 3.0 * s * (1 - s))  # the forward's values


def test_arrays_only_the_engine_holds_take_no_lock():
    W = ag.Tensor(W1_, requires_grad=True)
    X = ag.Tensor(X_)
    Z = W @ X  # as in the README's step: every array was made or copied by the engine
    saved = Z.grad_fn.saved_inputs[0]
    assert saved is W._data and saved.flags.writeable and X._data.flags.writeable
    held = W.data  # handed out now: a copy of W's own, which the next forward pass locks
    assert not np.shares_memory(held, saved)
    Z.sum().backward()
    Z = W @ X
    assert not held.flags.writeable and X._data.flags.writeable
    Z.sum().backward()
    assert held.flags.writeable


def _locks_taken_by_a_forward_pass(params):
    J = loss(params)
    taken = [p for p in params if not p._data.flags.writeable]
    J.backward()
    return taken


@pytest.mark.parametrize("kind", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_an_optimizer_step_keeps_the_parameters_arrays_the_engine_s_own(kind):
    """An optimizer reads W without handing it out and gives W a new array of its own, as an
    in-place operator does: counted as a change, and no later forward pass locks it. A W the
    user took through ``.data`` before is W's own again after the step; the one they hold is
    the old array, which the step left alone."""
    params = seed_network()
    held = params[0].data  # handed out: the next forward pass locks it
    optimizer = getattr(ag.optim, kind)(params, lr=0.1)
    assert _locks_taken_by_a_forward_pass(params) == [params[0]]
    versions = [p.version for p in params]
    old = held.copy()
    optimizer.step()
    assert [p.version for p in params] == [v + 1 for v in versions]
    np.testing.assert_array_equal(held, old)  # not written into: W has a new array
    for _ in range(3):
        assert _locks_taken_by_a_forward_pass(params) == []
        optimizer.step()
    assert not graph.locked
    params[0].data  # handed out again: locked again
    assert _locks_taken_by_a_forward_pass(params) == [params[0]]


def test_an_update_rule_that_writes_into_the_parameter_is_refused_and_nothing_changes():
    """An optimizer's own update rule gets the parameter's array read-only: writing into it
    (which a graph that saved the array could not see) is refused at the write, before any
    parameter changes; a rule that gives the array back unchanged leaves the parameter with a
    writable array of its own."""
    class InPlaceSGD(ag.optim.SGD):
        def update(self, value, grad, state):
            value -= self.lr * grad
            return value

    class KeepSGD(ag.optim.SGD):
        def update(self, value, grad, state):
            return value

    params = seed_network()
    J = loss(params)
    J.backward(retain_graph=True)
    before = [p._data.copy() for p in params]
    with pytest.raises(ValueError, match="read-only"):
        InPlaceSGD(params, lr=0.1).step()
    for p, old in zip(params, before):
        np.testing.assert_array_equal(p._data, old)
    assert [p.version for p in params] == [0, 0, 0, 0]
    KeepSGD(params, lr=0.1).step()
    for p, old in zip(params, before):
        np.testing.assert_array_equal(p._data, old)
        assert p.version == 1 and p._data.flags.writeable and p._data.base is None
    J.backward()  # the values the graph saved are the parameters' values
    params[0].data -= 1.0  # writable, handed out as usual


def test_saving_and_early_stopping_read_the_parameters_without_handing_them_out(tmp_path):
    from autograd_lite.train import EarlyStopping
    model = ag.nn.MLP([3, 4, 1])
    X = ag.Tensor(X_)
    model.state_dict()
    model.save(tmp_path / "model.npz")
    stopper = EarlyStopping(monitor="loss", patience=2)
    stopper.start()
    stopper.update(0, {"loss": 1.0}, model)  # the best weights so far: copies
    J = model(X).sum()
    assert all(p._data.flags.writeable for p in model.parameters())  # none was locked
    J.backward()
    stopper.update(1, {"loss": 2.0}, model)
    stopper.restore(model)
    np.testing.assert_array_equal(model.state_dict()["layers.0.W"], stopper.best_weights["layers.0.W"])


def test_assign_checks_and_counts_as_data_does_and_keeps_the_array_the_tensor_s_own():
    from autograd_lite.core.tensor import array_of, assign
    W = ag.Tensor(W1_, requires_grad=True)
    read = array_of(W)  # a read-only view of W's own array, handed out to no one
    assert read.base is W._data and not read.flags.writeable and not W._handed_out
    assert W._data.flags.writeable
    new = np.ones((4, 3))
    assign(W, new)
    assert W._data is new and W.version == 1 and not W._handed_out
    Z = W @ ag.Tensor(X_)
    assert new.flags.writeable  # the graph saved it without a lock: only the engine holds it
    Z.sum().backward()
    with pytest.raises(TypeError, match=r"\.data of .*real floating dtype"):
        assign(W, np.ones((4, 3), dtype=np.int64))
    assert W._data is new and W.version == 1  # refused: nothing changed


def test_arrays_handed_out_and_gone_leave_no_growing_table():
    tensors = []
    while len(graph._handed) < graph._sweep.at:  # handed out, then gone
        tensors.append(ag.Tensor(np.ones(2)))
        tensors[-1].data
    del tensors
    last = ag.Tensor(np.ones(2))
    last.data  # the next hand-out sweeps the gone ones
    assert all(ref() is not None for ref in graph._handed.values())


def test_a_view_of_memory_already_handed_out_is_handed_out_as_it_is():
    W = ag.Tensor(np.ones((3, 2)), requires_grad=True)
    W.data  # handed out (an update loop reads it every step)
    with ag.no_grad():
        V = W[:2]
    V.data[...] = 5.0  # a numpy view of W's memory, as PyTorch's view of W's storage
    np.testing.assert_array_equal(W.data[:2], 5.0)
    x = ag.Tensor(np.ones((2, 2)), requires_grad=True)
    J = (V * x).sum()  # saves V's view of W's memory: locked
    with pytest.raises(ValueError, match="read-only"):
        W.data[0, 0] = 1.0
    J.backward()
    np.testing.assert_array_equal(x.grad, 5.0)


@pytest.mark.xfail(strict=True, reason="numpy keeps a write flag per array object: a numpy view "
                   "taken before the forward pass stays writable when its memory is locked")
def test_a_write_through_a_numpy_view_taken_before_the_forward_pass_is_refused():
    W = ag.Tensor(np.ones((2, 2)), requires_grad=True, name="W")
    x = ag.Tensor(np.ones((2, 1)), requires_grad=True)
    row = W.data[0]  # a numpy view of W's memory, taken while nothing saved it
    J = (W @ x).sum()
    with pytest.raises((ValueError, RuntimeError)):
        row[:] = 5.0
        J.backward()

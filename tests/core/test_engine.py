"""The engine: one iterative reverse-mode traversal, shared subexpressions, freeing the graph,
grad mode per thread, integer data, and gradients that accumulate until reset.

Speed is not timed here (benchmarks/ measures it); linear work is checked by counting: one vjp
call per recorded op.
"""
import gc
import threading
import weakref

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite.core import backward as autodiff
from gradcheck_util import assert_close, check_gradients


class CountVjps:
    """Counts vjp calls per node through ``autodiff.backward_hooks``, removed on exit."""

    def __enter__(self):
        self.calls = []
        autodiff.backward_hooks.append(self._hook)
        return self

    def _hook(self, node, input_grads):
        self.calls.append((node.op.name, id(node)))

    def __exit__(self, *exc):
        autodiff.backward_hooks.remove(self._hook)
        return False


# --- traversal ---------------------------------------------------------------------------------

def test_shared_subexpression_b_is_a_plus_a_c_is_b_times_b():
    # c = (a + a)^2 = 4 a^2, dc/da = 8 a: both uses of a and both uses of b accumulate.
    a = ag.Tensor(3.0, requires_grad=True)
    b = a + a
    c = b * b
    with CountVjps() as counter:
        c.backward()
    assert a.grad == 24.0
    assert sorted(name for name, _ in counter.calls) == ["add", "mul"]   # each node once


def test_a_diamond_visits_each_node_once_and_sums_its_branches():
    x_ = np.array([[0.3, -1.2], [0.7, 2.0]])
    x = ag.Tensor(x_, requires_grad=True)
    y = x * 2                                    # used by three consumers
    z = y.exp() + y.tanh() * y + y.sigmoid()
    with CountVjps() as counter:
        z.sum().backward()
    node_ids = [node for _, node in counter.calls]
    assert len(node_ids) == len(set(node_ids)) == 8   # mul, exp, tanh, mul, sigmoid, add, add, sum
    check_gradients(lambda t: (t * 2).exp() + (t * 2).tanh() * (t * 2) + (t * 2).sigmoid(), x_)
    y2 = 2 * x_
    expected = 2 * (np.exp(y2) + (1 - np.tanh(y2) ** 2) * y2 + np.tanh(y2)
                    + 1 / (1 + np.exp(-y2)) * (1 - 1 / (1 + np.exp(-y2))))
    assert_close(x.grad, expected, rtol=1e-13, atol=1e-13)


def test_the_same_tensor_as_both_inputs_of_one_op():
    x = ag.Tensor([1.0, -2.0], requires_grad=True)
    (x * x).sum().backward()                     # mul's vjp gives g*x to each input
    np.testing.assert_array_equal(x.grad, [2.0, -4.0])
    x = ag.Tensor([1.0, -2.0], requires_grad=True)
    (x + x).sum().backward()                     # add's vjp hands the same g to both inputs
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_a_chain_of_100000_ops_backpropagates_without_recursion():
    n = 100_000
    x = ag.Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.0000001
    with CountVjps() as counter:
        y.backward()
    assert len(counter.calls) == n               # linear: exactly one vjp per op
    assert_close(x.grad, 1.0000001 ** n, rtol=1e-9, atol=0)
    del y                                        # freeing a long chain must not recurse either


def test_a_long_chain_under_ag_grad_and_deleting_a_retained_chain():
    def chain(t):
        for _ in range(30_000):
            t = t * 1.00001 + 0.0
        return t
    assert_close(ag.grad(chain)(ag.Tensor(2.0)).data, 1.00001 ** 30_000, rtol=1e-9, atol=0)
    x = ag.Tensor(1.0, requires_grad=True)
    y = chain(x)
    y.backward(retain_graph=True)
    del y                                        # 60k linked nodes released without recursion


def test_only_what_needs_a_gradient_is_traversed():
    W = ag.Tensor(np.ones((2, 3)), requires_grad=True)
    X = ag.Tensor(np.ones((3, 4)))               # data: no gradient
    constant_branch = (X * 2).exp()              # not recorded at all
    assert not constant_branch.requires_grad and constant_branch.is_leaf
    with CountVjps() as counter:
        (W @ constant_branch).sum().backward()
    assert sorted(name for name, _ in counter.calls) == ["matmul", "sum"]
    assert X.grad is None


def test_intermediate_gradients_only_when_asked_with_retain_grad():
    # dZ[N] of eq 78 = A - Y (with eq 76's 1/m), visible on a non-leaf after retain_grad.
    rng = np.random.default_rng(12)
    W = ag.Tensor(rng.standard_normal((1, 3)), requires_grad=True)
    X, Y = rng.standard_normal((3, 4)), (rng.random((1, 4)) > 0.5) * 1.0
    Z = (W @ X).retain_grad()
    A = Z.sigmoid()
    ag.binary_cross_entropy(A, Y).backward()
    with pytest.warns(UserWarning, match="retain_grad"):  # as PyTorch: a result's .grad warns
        assert A.grad is None
    assert_close(Z.grad, (A.data - Y) / 4, "eq 78", rtol=1e-12, atol=1e-15)


def test_backward_of_a_leaf_and_a_detached_tensor():
    x = ag.Tensor(2.0, requires_grad=True)
    x.backward()
    assert x.grad == 1.0
    y = ag.Tensor([1.0, 2.0], requires_grad=True)
    (y.detach() * y).sum().backward()            # the detached copy is a constant
    np.testing.assert_array_equal(y.grad, [1.0, 2.0])


# --- retain_graph, freeing, leaks -----------------------------------------------------------------

def test_retain_graph_allows_a_second_backward_that_accumulates():
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    J = (x * x).sum()
    J.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    J.backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])
    with pytest.raises(ag.GraphFreedError, match="freed by an earlier backward"):
        J.backward()


def test_backward_frees_the_saved_arrays_and_a_second_backward_says_so():
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    J = y.sum()
    assert J.parents[0].grad_fn is y.grad_fn and y.parents[0] is x
    assert y.grad_fn.saved_inputs is not None
    J.backward()
    assert y.grad_fn.saved_inputs is None and y.grad_fn.freed   # saved arrays released
    # the graph can still be walked, its values recomputed
    assert J.parents[0].grad_fn is y.grad_fn
    np.testing.assert_array_equal(J.parents[0].data, [3.0, 6.0])
    with pytest.raises(ag.GraphFreedError, match=r"retain_graph=True"):
        J.backward()
    with pytest.raises(ag.GraphFreedError, match=r"run the forward pass again"):
        (y * 2).sum().backward()                        # a new graph on top of a freed one
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])   # the failed calls added nothing


def test_no_leak_after_backward_and_del():
    # No reference cycles: with the collector off, del alone must free every tensor of the graph.
    gc.disable()
    try:
        W = ag.Tensor(np.ones((4, 3)), requires_grad=True)
        X = ag.Tensor(np.ones((3, 5)))
        Z = W @ X
        A = Z.sigmoid()
        J = A.mean()
        refs = [weakref.ref(t) for t in (Z, A, J)]
        data_ref = weakref.ref(Z.data)
        J.backward()
        del Z, A, J
        assert [r() for r in refs] == [None, None, None]
        assert data_ref() is None
        assert W.grad is not None
    finally:
        gc.enable()


def test_no_leak_with_a_retained_graph_or_without_backward():
    gc.disable()
    try:
        x = ag.Tensor([1.0, 2.0], requires_grad=True)
        y = x.exp()
        J = (y * y).sum()
        refs = [weakref.ref(y), weakref.ref(J)]
        J.backward(retain_graph=True)
        del y, J
        assert [r() for r in refs] == [None, None]
        y = x.tanh()
        ref = weakref.ref(y)
        del y
        assert ref() is None
    finally:
        gc.enable()


def test_no_leak_after_ag_grad():
    gc.disable()
    try:
        x = ag.Tensor([0.5, -1.0])
        seen = []

        def f(t):
            A = t.sigmoid()
            seen.append(weakref.ref(A))
            return (A * A).sum()

        result = ag.grad(f)(x)
        ref = weakref.ref(result)
        del result
        assert ref() is None and seen[0]() is None
    finally:
        gc.enable()


# --- grad mode is per thread ---------------------------------------------------------------------

def test_no_grad_in_one_thread_does_not_stop_another_thread():
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    worker_inside, main_done = threading.Event(), threading.Event()
    seen = {}

    def worker():
        with ag.no_grad():
            worker_inside.set()
            assert main_done.wait(10)
            seen["worker enabled"] = ag.is_grad_enabled()
            seen["worker records"] = (x * 2).requires_grad

    thread = threading.Thread(target=worker)
    thread.start()
    assert worker_inside.wait(10)
    seen["main enabled"] = ag.is_grad_enabled()
    y = x * 2
    seen["main records"] = y.requires_grad
    main_done.set()
    thread.join(10)
    assert seen == {"worker enabled": False, "worker records": False,
                    "main enabled": True, "main records": True}
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_a_thread_records_while_the_main_thread_is_in_no_grad():
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    seen = {}

    def worker():
        seen["enabled"] = ag.is_grad_enabled()
        y = (x * x).sum()
        seen["records"] = y.requires_grad
        y.backward()

    with ag.no_grad():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(10)
        assert not ag.is_grad_enabled()
    assert seen == {"enabled": True, "records": True}
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_no_grad_nests_restores_and_works_as_a_decorator():
    x = ag.Tensor(1.0, requires_grad=True)
    with ag.no_grad():
        assert not (x * 2).requires_grad
        with ag.enable_grad():
            assert (x * 2).requires_grad
        with ag.no_grad():
            pass
        assert not ag.is_grad_enabled()
    assert ag.is_grad_enabled()
    with pytest.raises(KeyError):
        with ag.no_grad():
            raise KeyError("inside")
    assert ag.is_grad_enabled()                 # restored after an exception

    @ag.no_grad()
    def update(W):
        return W - 0.1                           # eq 74 without recording

    assert not update(x).requires_grad
    assert ag.is_grad_enabled()


# --- data types ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [np.arange(3), [1, 2, 3], 7,
                                  np.arange(4, dtype=np.int8).reshape(2, 2)])
def test_integer_data_is_cast_to_float64(data):
    t = ag.Tensor(data, requires_grad=True)
    assert t.dtype == np.float64
    (t * t).sum().backward()
    assert t.grad.dtype == np.float64
    np.testing.assert_array_equal(t.grad, 2 * np.asarray(data, dtype=np.float64))


def test_an_integer_dtype_is_kept_for_data_without_gradient():
    t = ag.Tensor(np.arange(3), dtype=np.int64)
    assert t.dtype == np.int64
    with pytest.raises(TypeError, match=r"requires_grad=True needs floating-point data, but dtype "
                                        r"int64 was asked for"):
        ag.Tensor(np.arange(3), dtype=np.int64, requires_grad=True)


def test_the_data_is_copied_so_the_engine_never_writes_into_the_users_array():
    owned = np.array([1.0, 2.0])
    t = ag.Tensor(owned, requires_grad=True)
    owned[0] = 100.0
    assert t.data[0] == 1.0
    seed = np.array([1.0, 1.0])
    t.backward(seed)
    seed[0] = 50.0
    np.testing.assert_array_equal(t.grad, [1.0, 1.0])   # .grad does not alias the seed


# --- gradients accumulate until reset ----------------------------------------------------------

def test_grad_is_none_until_backward_then_accumulates_until_reset():
    W = ag.Tensor(np.ones((2, 2)), requires_grad=True)
    b = ag.Tensor(np.zeros((2, 1)), requires_grad=True)
    assert W.grad is None and b.grad is None
    for expected in (1.0, 2.0, 3.0):
        (W + b).sum().backward()
        assert isinstance(W.grad, np.ndarray) and W.grad.shape == (2, 2)
        np.testing.assert_array_equal(W.grad, np.full((2, 2), expected))
        np.testing.assert_array_equal(b.grad, np.full((2, 1), 2 * expected))
    W.grad = None
    W.zero_grad()
    (W * 3).sum().backward()
    np.testing.assert_array_equal(W.grad, np.full((2, 2), 3.0))
    ag.zero_grad([W, b])
    assert W.grad is None and b.grad is None


def test_gradient_descent_on_data_eq_74():
    W = ag.Tensor([[1.0, -1.0]], requires_grad=True)
    (W * W).sum().backward()
    W.data -= 0.25 * W.grad                      # eq 74: W[l] -= alpha dW[l]
    np.testing.assert_array_equal(W.data, [[0.5, -0.5]])
    W.grad = None
    (W * W).sum().backward()                     # a fresh graph on the updated data
    np.testing.assert_array_equal(W.grad, [[1.0, -1.0]])


def test_in_place_add_rebinds_and_never_mutates_a_recorded_value():
    a = ag.Tensor([1.0, 2.0], requires_grad=True)
    b = ag.Tensor([10.0, 20.0], requires_grad=True)
    c = a * 2                                     # records a's value
    original, original_data = c, c.data.copy()
    c += b                                        # c is now a new Tensor; the old one untouched
    assert c is not original
    np.testing.assert_array_equal(original.data, original_data)
    c *= c                                        # rebinds again
    c.sum().backward()
    # c = (2a + b)^2: dc/da = 4 (2a + b), dc/db = 2 (2a + b)
    np.testing.assert_array_equal(a.grad, 4 * np.array([12.0, 24.0]))
    np.testing.assert_array_equal(b.grad, 2 * np.array([12.0, 24.0]))
    total = ag.Tensor(0.0)                        # a constant accumulating a loss: rebound too
    alias = total
    total += (a * a).sum()
    assert total is not alias and total.op == "add" and alias.data == 0.0


def test_gradients_never_alias_each_other_the_seed_or_a_retained_gradient():
    # The engine may hand one array to several inputs (add's vjp returns g, g) and may keep a
    # leaf's first gradient without a copy; no two .grad arrays may share memory, and none may
    # share memory with an array the user holds.
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    y = ag.Tensor([3.0, 4.0], requires_grad=True)
    z = (x + y).retain_grad()
    w = z + 0.0
    seed = np.ones(2)
    w.backward(seed)
    grads = [x.grad, y.grad, z.grad]
    for i, first in enumerate(grads):
        assert not np.shares_memory(first, seed)
        for second in grads[i + 1:]:
            assert not np.shares_memory(first, second)
    x.grad += 10.0                                   # the user edits one gradient in place
    np.testing.assert_array_equal(y.grad, [1.0, 1.0])
    np.testing.assert_array_equal(z.grad, [1.0, 1.0])
    np.testing.assert_array_equal(seed, [1.0, 1.0])


def test_a_kept_gradient_is_not_changed_by_the_next_backward():
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    kept = x.grad
    (x * 3).sum().backward()                         # accumulates out of place
    np.testing.assert_array_equal(kept, [3.0, 3.0])
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_accumulated_gradient_stays_an_ndarray_of_the_tensors_shape_and_dtype(dtype):
    # A regression: for a 0-d tensor the second backward left a numpy scalar in .grad.
    x = ag.Tensor(2.0, requires_grad=True, dtype=dtype)
    for expected in (4.0, 8.0, 12.0):
        (x * x).backward()
        assert type(x.grad) is np.ndarray and x.grad.shape == () and x.grad.dtype == dtype
        assert x.grad == expected

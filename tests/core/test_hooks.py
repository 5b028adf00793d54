"""The engine's observers are per thread (``core.hooks``): a sentinel, ``check.compare_model``
or a trace in one thread never sees another thread's ops, and a hook added in one thread is
never called from another. The old names (``core.tensor.forward_hooks``,
``core.backward.backward_hooks``) read as this thread's hook lists."""
import threading

import numpy as np

import autograd_lite as ag
from autograd_lite.core import backward, hooks, tensor


def _step(W):
    J = (W @ np.ones((3, 2))).sigmoid().sum()
    J.backward()
    return J


def test_the_old_names_are_this_threads_hook_lists():
    assert tensor.forward_hooks is hooks.forward_hooks
    assert backward.backward_hooks is hooks.backward_hooks
    seen = []

    def hook(op, inputs, output):
        seen.append(op.name)

    tensor.forward_hooks.append(hook)
    try:
        assert len(tensor.forward_hooks) == 1 and hook in tensor.forward_hooks
        _step(ag.Tensor(np.ones((2, 3)), requires_grad=True))
    finally:
        tensor.forward_hooks.remove(hook)
    assert seen == ["matmul", "sigmoid", "sum"] and len(tensor.forward_hooks) == 0


def test_a_hook_in_one_thread_never_sees_another_threads_ops():
    calls = {"forward": [], "backward": []}
    registered, others_done = threading.Event(), threading.Event()

    def forward(op, inputs, output):
        calls["forward"].append((threading.get_ident(), op.name))

    def backward_hook(node, grads):
        calls["backward"].append((threading.get_ident(), node.op.name))

    def observer():
        hooks.forward_hooks.append(forward)
        hooks.backward_hooks.append(backward_hook)
        registered.set()
        others_done.wait(10)
        _step(ag.Tensor(np.ones((2, 3)), requires_grad=True))
        hooks.forward_hooks.remove(forward)
        hooks.backward_hooks.remove(backward_hook)

    thread = threading.Thread(target=observer)
    thread.start()
    registered.wait(10)
    assert len(hooks.forward_hooks) == 0  # this thread has none
    workers = [threading.Thread(target=_step, args=(ag.Tensor(np.ones((2, 3)), requires_grad=True),))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    _step(ag.Tensor(np.ones((2, 3)), requires_grad=True))  # and this thread's own ops
    others_done.set()
    thread.join()
    assert {ident for ident, _ in calls["forward"] + calls["backward"]} == {thread.ident}
    assert [name for _, name in calls["forward"]] == ["matmul", "sigmoid", "sum"]
    assert [name for _, name in calls["backward"]] == ["sum", "sigmoid", "matmul"]


def test_a_hook_that_removes_itself_while_called_leaves_the_others_running():
    seen = []

    def once(op, inputs, output):
        seen.append(("once", op.name))
        hooks.forward_hooks.remove(once)

    def always(op, inputs, output):
        seen.append(("always", op.name))

    hooks.forward_hooks.extend([once, always])
    try:
        ag.Tensor([1.0], requires_grad=True) * 2.0
        ag.Tensor([1.0], requires_grad=True) * 3.0
    finally:
        hooks.forward_hooks.remove(always)
    assert seen == [("once", "mul"), ("always", "mul"), ("always", "mul")]


def test_a_sentinel_in_one_thread_is_blind_to_a_saturating_thread():
    from autograd_lite.check import sentinel
    done = threading.Event()

    def saturate():
        with np.errstate(all="ignore"):
            (ag.Tensor(np.array([-1.0, 0.0]), requires_grad=True).log()).sum().backward()
        done.set()

    with sentinel() as watch:
        worker = threading.Thread(target=saturate)
        worker.start()
        worker.join()
        x = ag.Tensor(np.array([0.5]), requires_grad=True)
        ag.binary_cross_entropy(x.sigmoid(), np.array([1.0])).backward()
    assert done.is_set()
    assert not watch.events, watch.events
    with sentinel(action="record") as watch:
        saturate()  # the same op in the sentinel's own thread is seen
    assert watch.events

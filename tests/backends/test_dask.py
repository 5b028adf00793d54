"""Dask on the threaded scheduler: forward and backward build one lazy graph, ``J.backward()``
runs it in ONE compute for J and every gradient of a tensor held in memory (W, b: small), the
sums over the samples (eqs 79-80, 83-84) are Dask's tree reductions, and a training step (forward,
backward, SGD's update of eqs 74-75) computes exactly once."""
import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
import dask  # noqa: E402

import autograd_lite as ag  # noqa: E402
from dask_util import (  # noqa: E402,F401 - threaded_scheduler: a fixture
    Computes, assert_close, seed_loss, seed_parameters, seed_problem, lazy_columns, threaded_scheduler)

M, CHUNK = 1000, 125  # 8 chunks of columns


pytestmark = pytest.mark.usefixtures("threaded_scheduler")


def lazy(array, chunk=CHUNK):
    return lazy_columns(array, chunk)


def numpy_gradients(X, Y, arrays, loss="fused"):
    parameters = seed_parameters(arrays)
    J = seed_loss(parameters, ag.Tensor(X), ag.Tensor(Y), loss)
    J.backward()
    return J.item(), [p.grad for p in parameters]


@pytest.mark.parametrize("loss", ["fused", "composed"])
def test_backward_computes_once_and_gradients_equal_numpys(loss):
    X, Y, arrays = seed_problem(M)
    expected_J, expected = numpy_gradients(X, Y, arrays, loss)
    parameters = seed_parameters(arrays)
    with Computes() as computes:
        J = seed_loss(parameters, ag.Tensor(lazy(X)), ag.Tensor(lazy(Y)), loss)
        assert computes.count == 0, "the forward pass computed something"
        assert isinstance(J.data, da.Array)
        J.backward()
    assert computes.count == 1
    for p, grad in zip(parameters, expected):
        assert type(p.grad) is np.ndarray  # an ordinary array: eqs 74-75 update in memory
        assert_close(p.grad, grad)
    assert_close(ag.to_numpy(J), expected_J)


def test_reading_J_after_backward_recomputes_nothing():
    """backward computed J's value with the gradients: reading it (ag.to_numpy, .item()) starts
    no compute, and a J changed after backward is computed again, not read stale."""
    X, Y, arrays = seed_problem(M)
    expected = seed_loss(seed_parameters(arrays), ag.Tensor(X), ag.Tensor(Y)).item()
    J = seed_loss(seed_parameters(arrays), ag.Tensor(lazy(X)), ag.Tensor(lazy(Y)))
    J.backward()
    with Computes() as computes:
        value, item = ag.to_numpy(J), J.item()
    assert computes.count == 0
    assert_close(value, expected)
    assert item == value
    value[...] = 7.0  # the caller's copy: J's value stays
    assert J.item() == item
    changed = J.data + 1.0
    with Computes() as computes:
        assert_close(ag.to_numpy(changed), expected + 1.0)
    assert computes.count == 1


def test_one_compute_per_training_step():
    """Forward, backward and SGD's update (eqs 74-75; its finiteness check reads the computed
    gradients) compute once per step, and train exactly as on numpy."""
    X, Y, arrays = seed_problem(M)
    on_numpy, on_dask = seed_parameters(arrays), seed_parameters(arrays)
    numpy_sgd, dask_sgd = ag.optim.SGD(on_numpy, lr=0.5), ag.optim.SGD(on_dask, lr=0.5)
    X_lazy, Y_lazy = ag.Tensor(lazy(X)), ag.Tensor(lazy(Y))
    for step in range(3):
        numpy_sgd.zero_grad()
        seed_loss(on_numpy, ag.Tensor(X), ag.Tensor(Y)).backward()
        numpy_sgd.step()
        with Computes() as computes:
            dask_sgd.zero_grad()
            J = seed_loss(on_dask, X_lazy, Y_lazy)
            J.backward()
            dask_sgd.step()
            J.item()  # printed by a training loop: computed with the gradients
        assert computes.count == 1, f"step {step} computed {computes.count} times"
    for found, expected in zip(on_dask, on_numpy):
        assert type(found.data) is np.ndarray
        assert_close(found.data, expected.data)


def test_gradient_of_a_dask_tensor_stays_lazy():
    """dJ/dX is as big as X: it stays a Dask array chunked like X (computed when asked), while
    the parameters' gradients are computed by the same single compute."""
    X, Y, arrays = seed_problem(M)
    X_numpy = ag.Tensor(X, requires_grad=True)
    seed_loss(seed_parameters(arrays), X_numpy, ag.Tensor(Y)).backward()
    X_lazy = ag.Tensor(lazy(X), requires_grad=True)
    parameters = seed_parameters(arrays)
    with Computes() as computes:
        seed_loss(parameters, X_lazy, ag.Tensor(lazy(Y))).backward()
    assert computes.count == 1
    assert isinstance(X_lazy.grad, da.Array) and X_lazy.grad.chunks == X_lazy.data.chunks
    assert all(type(p.grad) is np.ndarray for p in parameters)
    assert_close(X_lazy.grad.compute(), X_numpy.grad)


def test_sums_over_the_samples_are_tree_reductions():
    """db = sum of dZ over the columns and dW = dZ A^T (eqs 79-80, 83-84) add the chunks'
    partial sums in a tree: with ``split_every=2`` no task of the backward gathers more than a
    few chunks' results, where a flat sum over 32 chunks would read all 32 in one task."""
    from dask.core import get_dependencies

    X, Y, arrays = seed_problem(32 * 16)
    parameters = seed_parameters(arrays)
    with dask.config.set(split_every=2), Computes() as computes:
        seed_loss(parameters, ag.Tensor(lazy(X, 16)), ag.Tensor(lazy(Y, 16))).backward()
    (graph,) = computes.graphs
    widest = max(len(get_dependencies(graph, key)) for key in graph)
    assert widest <= 8, f"a task reads {widest} results: not a tree"
    expected_J, expected = numpy_gradients(X, Y, arrays)
    for p, grad in zip(parameters, expected):
        assert_close(p.grad, grad)


def test_computed_gradients_add_up_across_backward_calls():
    X, Y, arrays = seed_problem(M)
    _, expected = numpy_gradients(X, Y, arrays)
    parameters = seed_parameters(arrays)
    for _ in range(2):
        seed_loss(parameters, ag.Tensor(lazy(X)), ag.Tensor(lazy(Y))).backward()
    for p, grad in zip(parameters, expected):
        assert type(p.grad) is np.ndarray
        assert_close(p.grad, 2 * grad)


def test_the_readmes_ten_lines_run_on_dask_with_numpys_gradients():
    """The README's block with only X and Y made as Dask arrays (m = 5 in chunks of 2)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S)
                 if "J.backward()" in b and "W1" in b)
    runs = {}
    for where in ("numpy", "dask"):
        lines = block
        if where == "dask":
            lines = re.sub(r"^(X|Y) = ag\.Tensor\((.*?)\)\s*(#.*)?$",
                           r"\1 = ag.Tensor(da.from_array(np.asarray(\2), chunks=(-1, 2)))",
                           block, flags=re.M)
            assert lines.count("da.from_array") == 2
        namespace = {"da": da}
        np.random.seed(0)
        with Computes() as computes:
            exec(lines, namespace)
        runs[where] = namespace, computes.count
    (numpy_run, _), (dask_run, dask_computes) = runs["numpy"], runs["dask"]
    assert isinstance(dask_run["X"].data, da.Array) and dask_computes == 1
    for name in ("W1", "b1", "W2", "b2"):
        assert type(dask_run[name].grad) is np.ndarray
        assert_close(dask_run[name].grad, numpy_run[name].grad)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_an_nn_model_trains_with_one_compute_per_step(optimizer):
    """ag.nn.MLP on Dask samples with an ag.optim optimizer: one compute per step, and the
    parameters follow the same model trained on numpy."""
    X, Y, _ = seed_problem(M)
    models = [ag.nn.MLP([3, 4, 1], ["sigmoid", "identity"]) for _ in range(2)]
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        q.data = p.data.copy()
    data = [(ag.Tensor(X), ag.Tensor(Y)), (ag.Tensor(lazy(X)), ag.Tensor(lazy(Y)))]
    for model, (X_t, Y_t) in zip(models, data):
        step = getattr(ag.optim, optimizer)(model.parameters(), lr=0.1)
        for _ in range(3):
            with Computes() as computes:
                step.zero_grad()
                ag.binary_cross_entropy_with_logits(model(X_t), Y_t).backward()
                step.step()
            assert computes.count == (1 if X_t is data[1][0] else 0)
    for p, q in zip(models[1].parameters(), models[0].parameters()):
        assert type(p.data) is np.ndarray
        assert_close(p.data, q.data)


def test_a_graph_never_backpropagated_does_not_stop_another_ones_backward():
    """An evaluation loss built on the same parameters and never backpropagated keeps its own
    copies of the numpy arrays it saved (W), beside the Dask arrays it saved (X's chunks), so the
    training loss's backward and update go on."""
    X, Y, arrays = seed_problem(M)
    parameters = seed_parameters(arrays)
    X_lazy, Y_lazy = ag.Tensor(lazy(X)), ag.Tensor(lazy(Y))
    evaluation = seed_loss(parameters, X_lazy, Y_lazy)
    with Computes() as computes:
        seed_loss(parameters, X_lazy, Y_lazy).backward()
    assert computes.count == 1
    _, expected = numpy_gradients(X, Y, arrays)
    for p, grad in zip(parameters, expected):
        assert_close(p.grad, grad)
    assert np.isfinite(ag.to_numpy(evaluation))

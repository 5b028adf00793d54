"""Every loss on Dask computes nothing when it is called: J is a lazy graph, and ``J.backward()``
computes it, with every parameter's gradient, in ONE compute (eqs 1, 76 and 77-84 in one pass
over the chunks), equal to numpy's. The value checks of a loss (probabilities in [0, 1], a 0 or 1
on the wrong side of its label, class labels whole and in range) run inside that compute, so a
bad value is still refused, with the message numpy's eager check gives, and a saturated one
still warns. A training step (forward, backward, any ``ag.optim`` optimizer's update, a
schedule, gradient clipping) is one compute."""
import re
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
import dask  # noqa: E402

import autograd_lite as ag  # noqa: E402
from dask_util import (  # noqa: E402,F401 - threaded_scheduler: a fixture
    Computes, assert_close, seed_loss, seed_parameters, seed_problem, lazy_columns, threaded_scheduler)

N_CLASSES, M, CHUNK = 4, 600, 100  # 6 chunks of samples


pytestmark = pytest.mark.usefixtures("threaded_scheduler")


def lazy(array, chunk=CHUNK):
    return lazy_columns(array, chunk)


def problem(seed=0):
    """Logits Z (n x m), classes, their one-hot columns, 0/1 labels for one output unit."""
    rng = np.random.default_rng(seed)
    Z = 2 * rng.standard_normal((N_CLASSES, M))
    classes = rng.integers(0, N_CLASSES, M)
    return Z, classes, np.eye(N_CLASSES)[:, classes], (rng.random((1, M)) < 0.5) * 1.0


# Each loss as the user writes it: (W Z) goes through a weight W so that W gets a gradient,
# and ``data`` turns each array into what the run gives the loss (numpy, or Dask chunks).
def bce(fuse):
    return lambda W, Z, classes, one_hot, labels, data: ag.binary_cross_entropy(
        (W[:1] * data(Z[:1])).sigmoid(), data(labels), fuse=fuse)


def cross_entropy(fuse, kind):
    def loss(W, Z, classes, one_hot, labels, data):
        A = (W * data(Z)).softmax(axis=0)
        return ag.cross_entropy(A, _labels(kind, classes, one_hot, data), fuse=fuse)
    return loss


def softmax_cross_entropy(kind):
    return lambda W, Z, classes, one_hot, labels, data: ag.softmax_cross_entropy(
        W * data(Z), _labels(kind, classes, one_hot, data))


def _labels(kind, classes, one_hot, data):
    if kind == "one-hot":
        return data(one_hot)
    if kind == "numpy indices":
        return classes
    return ag.Tensor(data(classes.astype(np.float64)))  # class indices as data, as float labels


LOSSES = {
    "binary_cross_entropy (fused)": bce(True),
    "binary_cross_entropy(fuse=False)": bce(False),
    "binary_cross_entropy_with_logits": lambda W, Z, classes, one_hot, labels, data:
        ag.binary_cross_entropy_with_logits(W[:1] * data(Z[:1]), data(labels)),
    "mean_squared_error": lambda W, Z, classes, one_hot, labels, data:
        ag.mean_squared_error(W * data(Z), data(one_hot)),
    **{f"softmax_cross_entropy, {kind}": softmax_cross_entropy(kind)
       for kind in ("one-hot", "numpy indices", "indices as data")},
    **{f"cross_entropy({'fused' if fuse else 'fuse=False'}), {kind}": cross_entropy(fuse, kind)
       for fuse in (True, False) for kind in ("one-hot", "numpy indices", "indices as data")},
}


def numpy_data(array):
    return ag.Tensor(array) if array.ndim == 2 else array


def dask_data(array):
    return ag.Tensor(lazy(array))


@pytest.mark.parametrize("name", LOSSES)
def test_a_loss_computes_nothing_until_backward_which_computes_once(name):
    loss = LOSSES[name]
    arrays = problem()
    W_numpy = ag.Tensor(np.linspace(0.5, 1.5, N_CLASSES).reshape(-1, 1), requires_grad=True)
    J_numpy = loss(W_numpy, *arrays, numpy_data)
    J_numpy.backward()
    W = ag.Tensor(W_numpy.data.copy(), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing here is saturated: no warning either way
        with Computes() as computes:
            J = loss(W, *arrays, dask_data)
            assert computes.count == 0, f"{name} computed {computes.count} times when called"
            assert isinstance(J.data, da.Array)
            J.backward()
    assert computes.count == 1, f"{name}: forward and backward computed {computes.count} times"
    assert type(W.grad) is np.ndarray
    assert_close(W.grad, W_numpy.grad)
    assert_close(ag.to_numpy(J), J_numpy.item())


def test_probabilities_outside_0_1_are_refused_by_the_compute_with_numpys_message():
    A_values = np.full((1, M), 0.5)
    A_values[0, 250], A_values[0, 420] = -0.5, 2.0
    Y = np.zeros((1, M))
    with pytest.raises(ValueError) as on_numpy:
        ag.binary_cross_entropy(ag.Tensor(A_values), Y)
    A = ag.Tensor(lazy(A_values), requires_grad=True)
    with Computes() as computes:
        J = ag.binary_cross_entropy(A, ag.Tensor(lazy(Y)))   # called: nothing computed yet
        assert computes.count == 0
        with pytest.raises(ValueError) as on_dask:
            J.backward()
    assert computes.count == 1
    assert str(on_dask.value) == str(on_numpy.value)
    assert "got values from -0.5 to 2; if these are logits Z" in str(on_dask.value)
    assert A.grad is None                                     # no gradient from a refused loss
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        ag.to_numpy(ag.binary_cross_entropy(A, ag.Tensor(lazy(Y))))   # every compute refuses


def test_a_saturated_wrong_probability_warns_from_the_compute_naming_where():
    A_values = np.full((1, M), 0.5)
    A_values[0, [130, 131, 500]] = [1.0, 0.0, 1.0]
    Y = np.zeros((1, M))
    Y[0, 131] = 1.0                                           # a = 0 where y = 1: +inf
    A = ag.Tensor(lazy(A_values), requires_grad=True, name="A[2]")
    with Computes() as computes:
        J = ag.binary_cross_entropy(A, ag.Tensor(lazy(Y)))
        with pytest.warns(ag.SaturationWarning) as caught:
            J.backward()
    assert computes.count == 1
    message = str(caught[0].message)
    assert message.startswith("binary_cross_entropy: 3 of 600 probabilities in A[2] are exactly "
                              "0 or 1 on the wrong side of their label (first at index (0, 130))")
    assert caught[0].filename == __file__                     # it points at the backward() line
    assert ag.to_numpy(J) == np.inf                           # the loss is +inf, never clamped


def test_cross_entropy_warns_at_a_labelled_class_of_probability_0():
    A_values = np.full((N_CLASSES, M), 1.0 / N_CLASSES)
    A_values[:, 7] = [0.0, 1.0, 0.0, 0.0]
    classes = np.zeros(M)                                     # sample 7 is class 0: a = 0
    for labels, where in ((np.eye(N_CLASSES)[:, classes.astype(int)], "index (0, 7)"),
                          (classes, "sample 7")):
        J = ag.cross_entropy(ag.Tensor(lazy(A_values)), ag.Tensor(lazy(labels)))
        with pytest.warns(ag.SaturationWarning, match=rf"1 labelled classes .* \(first at {re.escape(where)}\)"):
            assert ag.to_numpy(J) == np.inf


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "cross_entropy"])
@pytest.mark.parametrize("bad, found", [(2.5, "1 that are not whole"), (4.0, "values from 0 to 4"),
                                        (-1.0, "values from -1 to")])
def test_bad_class_labels_as_data_are_refused_by_the_compute(loss, bad, found):
    Z, classes, _, _ = problem()
    labels = classes.astype(np.float64)
    labels[333] = bad
    W = ag.Tensor(np.ones((N_CLASSES, 1)), requires_grad=True)
    logits = W * ag.Tensor(lazy(Z))
    with Computes() as computes:
        J = getattr(ag, loss)(logits if loss == "softmax_cross_entropy" else logits.softmax(axis=0),
                              ag.Tensor(da.from_array(labels, chunks=CHUNK)))
        assert computes.count == 0
        with pytest.raises(ValueError, match=rf"pick_classes: class labels must be whole numbers "
                                             rf"in \[0, 4\), got .*{found}"):
            J.backward()
    assert computes.count == 1 and W.grad is None


def test_a_check_runs_with_the_compute_of_anything_made_from_the_loss():
    """A loss inside a bigger objective (J + a penalty) is still checked by its compute."""
    A = ag.Tensor(lazy(np.full((1, M), 1.5)), requires_grad=True)
    J = ag.binary_cross_entropy(A, ag.Tensor(lazy(np.ones((1, M))))) + 0.1 * (A * A).mean()
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\], got values from 1.5 to 1.5"):
        J.backward()


def test_on_numpy_the_checks_run_when_the_loss_is_called():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        ag.cross_entropy(np.array([[1.5, 0.5], [-0.5, 0.5]]), np.array([0, 1]))
    with pytest.warns(ag.SaturationWarning, match=r"first at index \(1, 0\)"):
        ag.cross_entropy(np.array([[1.0, 0.5], [0.0, 0.5]]), np.array([1, 1]))


OPTIMIZERS = {
    "SGD": lambda p: ag.optim.SGD(p, lr=0.5),
    "SGD with momentum and weight decay": lambda p: ag.optim.SGD(p, lr=0.5, momentum=0.9,
                                                                 weight_decay=1e-3),
    "Adam": lambda p: ag.optim.Adam(p, lr=0.05),
    "AdamW": lambda p: ag.optim.AdamW(p, lr=0.05),
    "RMSprop": lambda p: ag.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("loss", ["fused", "composed"])
def test_a_training_step_with_every_optimizer_is_one_compute(optimizer, loss):
    """Forward (eqs 26-29), the loss (eqs 1, 76), backward (eqs 77-84), gradient clipping, the
    optimizer's finiteness check and update (eqs 74-75 for SGD) and a schedule's step: the
    gradients are numpy arrays after backward's one compute, so everything after it is numpy's,
    and the parameters follow the numpy run's."""
    X, Y, arrays = seed_problem(M)
    runs = {}
    for where, X_t, Y_t in (("numpy", ag.Tensor(X), ag.Tensor(Y)),
                            ("dask", ag.Tensor(lazy(X)), ag.Tensor(lazy(Y)))):
        parameters = seed_parameters(arrays)
        step = OPTIMIZERS[optimizer](parameters)
        schedule = ag.optim.StepLR(step, step_size=2, gamma=0.5)
        for index in range(3):
            with Computes() as computes:
                step.zero_grad()
                seed_loss(parameters, X_t, Y_t, loss).backward()
                ag.optim.clip_grad_norm_(parameters, max_norm=10.0)
                step.step()
                schedule.step()
            assert computes.count == (1 if where == "dask" else 0), \
                f"{optimizer}, step {index}: {computes.count} computes"
        runs[where] = parameters
    for found, expected in zip(runs["dask"], runs["numpy"]):
        assert type(found.data) is np.ndarray
        assert_close(found.data, expected.data)


def test_every_check_given_for_one_dask_array_runs_once_in_its_compute():
    """Two checks of one array (a data set's finiteness and a metric's counts, say) both run,
    each once, in the compute that computes the array, and a failing one is raised again by
    the next compute while the one that ran is not run twice."""
    import dask.array as da
    from autograd_lite import backend
    x = da.from_array(np.arange(6.0), chunks=3)
    seen = []
    backend.check_when_computed(x, lambda total: seen.append(("sum", float(total))), x.sum())
    backend.check_when_computed(x, lambda top: seen.append(("max", float(top))), x.max())
    J = ag.Tensor(x).sum()
    with Computes() as computes:
        assert J.item() == 15.0
    assert computes.count == 1
    assert seen == [("sum", 15.0), ("max", 5.0)]
    assert J.item() == 15.0 and len(seen) == 2  # ran once each

    y = da.from_array(np.arange(4.0), chunks=2)
    ran = []

    def refuse(total):
        raise ValueError(f"refused: {total}")
    backend.check_when_computed(y, lambda n: ran.append(float(n)), y.size * 1.0)
    backend.check_when_computed(y, refuse, y.sum())
    for _ in range(2):
        with pytest.raises(ValueError, match="refused: 6"):
            ag.to_numpy(ag.Tensor(y) * 2)
    assert ran == [4.0]

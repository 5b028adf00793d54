"""The same code on a ``dask.distributed`` cluster: a ``LocalCluster`` of two worker processes
(a real cluster is the same ``Client(address)``). ``J.backward()`` runs its one compute on the
workers, and the seed's gradients equal the numpy run's to 1e-12 relative."""
import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
distributed = pytest.importorskip("distributed",
                                  reason="distributed is not installed: pip install -e '.[dask]'")

import autograd_lite as ag  # noqa: E402
from dask_util import assert_close, seed_loss, seed_parameters, seed_problem  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_seed_gradients_on_two_worker_processes_equal_numpys(client):
    X, Y, arrays = seed_problem(4000)
    on_numpy = seed_parameters(arrays)
    J_numpy = seed_loss(on_numpy, ag.Tensor(X), ag.Tensor(Y))
    J_numpy.backward()
    on_cluster = seed_parameters(arrays)
    X_lazy = ag.Tensor(da.from_array(X, chunks=(3, 500)))
    Y_lazy = ag.Tensor(da.from_array(Y, chunks=(1, 500)))
    with distributed.get_task_stream(client) as tasks:
        J = seed_loss(on_cluster, X_lazy, Y_lazy)
        J.backward()
    workers = {task["worker"] for task in tasks.data}
    assert len(workers) == 2, f"the backward's tasks ran on {sorted(workers)}"
    for found, expected in zip(on_cluster, on_numpy):
        assert type(found.grad) is np.ndarray
        assert_close(found.grad, expected.grad)
    assert_close(ag.to_numpy(J), J_numpy.item())


def test_training_steps_on_the_cluster_follow_numpys(client):
    """Three SGD steps (eqs 74-75) on the cluster leave the parameters the numpy run leaves."""
    X, Y, arrays = seed_problem(2000, seed=1)
    on_numpy, on_cluster = seed_parameters(arrays), seed_parameters(arrays)
    X_lazy = ag.Tensor(da.from_array(X, chunks=(3, 250)))
    Y_lazy = ag.Tensor(da.from_array(Y, chunks=(1, 250)))
    for parameters, X_t, Y_t in ((on_numpy, ag.Tensor(X), ag.Tensor(Y)),
                                 (on_cluster, X_lazy, Y_lazy)):
        sgd = ag.optim.SGD(parameters, lr=0.5)
        for _ in range(3):
            sgd.zero_grad()
            seed_loss(parameters, X_t, Y_t).backward()
            sgd.step()
    for found, expected in zip(on_cluster, on_numpy):
        assert_close(found.data, expected.data)


def test_a_losss_value_checks_run_with_the_clusters_compute(client):
    """The checks of a loss's inputs ride on the one compute, wherever it runs: probabilities
    outside [0, 1] are refused and a saturated one warns in the client (a warning raised on a
    worker would only reach the worker's log), class labels out of range are refused."""
    m, chunk = 2000, 250
    A = np.full((1, m), 0.5)
    A[0, 1500] = 1.5
    Y = np.zeros((1, m))
    J = ag.binary_cross_entropy(ag.Tensor(da.from_array(A, chunks=(1, chunk)), requires_grad=True),
                                ag.Tensor(da.from_array(Y, chunks=(1, chunk))))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\], got values from 0.5 to 1.5"):
        J.backward()
    A[0, 1500] = 1.0                                          # y = 0: +inf, with a warning
    A_lazy = ag.Tensor(da.from_array(A, chunks=(1, chunk)), requires_grad=True)
    J = ag.binary_cross_entropy(A_lazy, ag.Tensor(da.from_array(Y, chunks=(1, chunk))))
    with pytest.warns(ag.SaturationWarning, match=r"1 of 2000 .* \(first at index \(0, 1500\)\)"):
        J.backward()
    assert ag.to_numpy(J) == np.inf and type(A_lazy.grad) is da.Array
    Z = ag.Tensor(da.from_array(np.zeros((3, m)), chunks=(3, chunk)), requires_grad=True)
    labels = np.ones(m)
    labels[7] = 3.0
    J = ag.softmax_cross_entropy(Z, ag.Tensor(da.from_array(labels, chunks=chunk)))
    with pytest.raises(ValueError, match=r"pick_classes: class labels must be whole numbers in \[0, 3\)"):
        J.backward()


def test_embedding_and_batchnorm_train_on_the_cluster_as_on_numpy(client):
    """Embedding's lookups and table gradients run as tasks on the workers; BatchNorm's batch
    statistics come back with the step's compute and move its running statistics in the
    client, as the numpy run moves them."""
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, 6, (2, 1000))
    Y = (tokens[0] < tokens[1]).astype(np.float64)[None, :]

    def model():
        return ag.nn.Sequential(ag.nn.Embedding(6, 4, rng=0), ag.nn.BatchNorm(4), ag.nn.Tanh(),
                                ag.nn.Flatten(), ag.nn.Linear(8, 1, rng=1))

    runs = []
    for tokens_, Y_ in ((tokens, Y), (da.from_array(tokens, chunks=(2, 250)),
                                      da.from_array(Y, chunks=(1, 250)))):
        net = model()
        sgd = ag.optim.SGD(net, lr=0.5)
        for _ in range(2):
            sgd.zero_grad()
            ag.binary_cross_entropy_with_logits(net(tokens_), Y_).backward()
            sgd.step()
        runs.append(net)
    on_numpy, on_cluster = runs
    for (name, found), (_, expected) in zip(on_cluster.named_buffers(), on_numpy.named_buffers()):
        assert_close(found, expected)
    for (name, found), (_, expected) in zip(on_cluster.named_parameters(),
                                            on_numpy.named_parameters()):
        assert type(found.data) is np.ndarray
        assert_close(found.data, expected.data)

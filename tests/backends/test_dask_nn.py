"""Layers that read their input's values, on Dask samples: ``nn.Embedding`` looks its Dask
indices up lazily, chunk by chunk, and its table's gradient is a Dask reduction over the chunks;
``nn.BatchNorm`` trains with the batch's statistics in the graph and moves its numpy running
statistics with the values backward's one compute brings. Both give numpy's numbers to 1e-12
(eq 33's W, b and the statistics alike), and a training step computes once."""
import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
import dask  # noqa: E402

import autograd_lite as ag  # noqa: E402
from autograd_lite import nn, optim  # noqa: E402
from dask_util import Computes, assert_close, lazy_columns, threaded_scheduler  # noqa: E402,F401

M, CHUNK, TOKENS, VOCABULARY = 96, 16, 3, 7


pytestmark = pytest.mark.usefixtures("threaded_scheduler")


def lazy(array, chunk=CHUNK):
    return lazy_columns(array, chunk)


# --- Embedding ----------------------------------------------------------------------------------

class Bag(nn.Module):
    """TOKENS tokens per sample (a TOKENS x m array of indices): each token's embedding
    (columns of W), summed per sample, then eq 33's affine layer: one logit per sample."""

    def __init__(self):
        self.embedding = nn.Embedding(VOCABULARY, 4, rng=0)
        self.out = nn.Linear(4, 1, rng=1)

    def forward(self, tokens):
        return self.out(self.embedding(tokens).sum(axis=1))


def tokens_and_labels(dtype=np.int64):
    rng = np.random.default_rng(2)
    tokens = rng.integers(0, VOCABULARY, (TOKENS, M))
    labels = (tokens[0] > tokens[1]).astype(np.float64)[None, :]
    return tokens.astype(dtype), labels


@pytest.mark.parametrize("dtype", [np.int64, np.float64])  # whole floats are indices too
def test_an_embedding_of_dask_indices_computes_nothing_until_backward_which_computes_once(dtype):
    tokens, labels = tokens_and_labels(dtype)
    expected, model = Bag(), Bag()
    J_expected = ag.binary_cross_entropy_with_logits(expected(tokens), labels)
    J_expected.backward()
    with Computes() as computes:
        out = model.embedding(lazy(tokens))
        J = ag.binary_cross_entropy_with_logits(model.out(out.sum(axis=1)), lazy(labels))
        assert computes.count == 0, "the lookup computed its indices"
        assert isinstance(out.data, da.Array) and out.data.chunks[-1] == (CHUNK,) * (M // CHUNK)
        J.backward()
    assert computes.count == 1
    assert_close(ag.to_numpy(out), expected.embedding(tokens).data)
    assert_close(J.item(), J_expected.item())
    for (name, found), (_, wanted) in zip(model.named_parameters(), expected.named_parameters()):
        assert type(found.grad) is np.ndarray, name      # out of backward's one compute
        assert_close(found.grad, wanted.grad)


def train_side_by_side(models, X, Y, make_optimizer, steps=3):
    """Train ``models["numpy"]`` on X, Y and ``models["dask"]`` on them as Dask arrays, the
    same steps (the fused log-loss, eqs 1, 7 and 76): each Dask step is exactly one compute,
    each numpy step none."""
    data = {"numpy": (X, Y), "dask": (lazy(X), lazy(Y))}
    for name, model in models.items():
        optimizer = make_optimizer(model)
        for step in range(steps):
            with Computes() as computes:
                optimizer.zero_grad()
                J = ag.binary_cross_entropy_with_logits(model(data[name][0]), data[name][1])
                J.backward()
                optimizer.step()
                J.item()
            assert computes.count == (name == "dask"), f"{name} step {step}"


def test_training_with_dask_indices_follows_numpy_with_one_compute_per_step():
    tokens, labels = tokens_and_labels()
    models = {"numpy": Bag(), "dask": Bag()}
    train_side_by_side(models, tokens, labels, lambda model: optim.Adam(model, lr=0.05))
    for found, expected in zip(models["dask"].parameters(), models["numpy"].parameters()):
        assert type(found.data) is np.ndarray
        assert_close(found.data, expected.data)


def test_the_tables_gradient_adds_the_chunks_in_a_tree():
    """Each chunk of indices adds its columns into a table of W's shape; the tables are summed
    in a tree (``split_every``), so no task reads every chunk's table at once."""
    from dask.core import get_dependencies

    tokens = np.random.default_rng(3).integers(0, VOCABULARY, (TOKENS, 32 * 4))
    layer = nn.Embedding(VOCABULARY, 4, rng=0)
    with dask.config.set(split_every=2), Computes() as computes:
        layer(lazy(tokens, 4)).sum().backward()
    (graph,) = computes.graphs
    widest = max(len(get_dependencies(graph, key)) for key in graph)
    assert widest <= 8, f"a task reads {widest} results: not a tree"
    expected = np.zeros((4, VOCABULARY))
    np.add.at(expected, (slice(None), tokens), 1.0)
    assert_close(layer.W.grad, expected)


@pytest.mark.parametrize("bad, found", [(7, r"0\.0\.\.7\.0"), (-1, r"-1\.0\.\.6\.0"),
                                        (2.5, r"0\.0\.\.6\.0")])  # the range of the chunk
def test_bad_dask_indices_are_refused_by_the_compute_that_reads_them(bad, found):
    tokens, labels = tokens_and_labels(np.float64)
    tokens[1, 40] = bad
    model = Bag()
    J = ag.binary_cross_entropy_with_logits(model(lazy(tokens)), lazy(labels))  # not read yet
    with pytest.raises(ag.ShapeError, match=r"embedding_lookup \(a chunk of Dask indices\): "
                                            rf"indices must be whole numbers in 0\.\.6, got {found}"):
        J.backward()
    assert all(p.grad is None for p in model.parameters())


def test_indices_neither_integer_nor_float_are_refused_when_given():
    with pytest.raises(ag.ShapeError, match=r"Embedding: indices must be whole numbers, got dtype bool"):
        nn.Embedding(3, 2)(da.from_array(np.array([True, False])))


# --- BatchNorm ----------------------------------------------------------------------------------

def mlp():
    """eq 33's affine layer, BatchNorm over the samples, ReLU, and a logit per sample."""
    return nn.Sequential(nn.Linear(3, 5, rng=0), nn.BatchNorm(5), nn.ReLU(), nn.Linear(5, 1, rng=1))


def cnn():
    """2 x 4 x 4 images: a 3x3 convolution, BatchNorm over the samples and pixels of each
    channel, ReLU, then a logit per sample."""
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=0), nn.BatchNorm(3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(3 * 4 * 4, 1, rng=1))


def samples(shape):
    rng = np.random.default_rng(4)
    X = 2.0 * rng.standard_normal(shape + (M,)) + 1.0       # statistics far from 0 and 1
    Y = (X.reshape(-1, M).sum(axis=0) > X.size / M)[None, :].astype(np.float64)
    return X, Y


def assert_same_model(found, expected):
    for (name, a), (_, b) in zip(found.named_buffers(), expected.named_buffers()):
        assert type(a) is np.ndarray, name
        assert_close(a, b)
    for (name, p), (_, q) in zip(found.named_parameters(), expected.named_parameters()):
        # the bias before a BatchNorm gets a zero gradient: round-off only, not relative
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("make, shape", [(mlp, (3,)), (cnn, (2, 4, 4))], ids=["mlp", "cnn"])
def test_a_batchnorm_network_trains_on_dask_data_with_one_compute_per_step(make, shape):
    X, Y = samples(shape)
    models = {"numpy": make(), "dask": make()}
    train_side_by_side(models, X, Y, lambda model: optim.SGD(model, lr=0.1, momentum=0.9))
    assert_same_model(models["dask"], models["numpy"])
    assert not np.allclose(models["numpy"][1].running_mean, 0.0)
    for model in models.values():
        model.eval()
    with Computes() as computes:
        out = models["dask"](lazy(X))                    # the running statistics: numpy's
        assert computes.count == 0
    assert_close(ag.to_numpy(out), models["numpy"](X).data)


def test_the_running_statistics_move_once_when_the_batch_is_computed():
    X, _ = samples((3,))
    layer, expected = nn.BatchNorm(3), nn.BatchNorm(3)
    Z = layer(lazy(X))
    assert np.array_equal(layer.running_mean, np.zeros((3, 1)))  # the batch is not known yet
    Z.sum().backward()
    expected(X)
    assert_close(layer.running_mean, expected.running_mean)
    assert_close(layer.running_var, expected.running_var)
    ag.to_numpy(Z)                                               # the same batch computed again
    assert_close(layer.running_mean, expected.running_mean)
    assert_close(layer.running_var, expected.running_var)


def test_one_layer_twice_on_one_input_moves_its_statistics_twice_as_on_numpy():
    X, _ = samples((3,))
    layer, expected = nn.BatchNorm(3, momentum=0.3), nn.BatchNorm(3, momentum=0.3)
    (layer(lazy(X)) * layer(lazy(X))).sum().backward()         # Dask names both batches alike
    expected(X), expected(X)
    assert_close(layer.running_mean, expected.running_mean)
    assert_close(layer.running_var, expected.running_var)

"""The edges on Dask: ``ag.draw`` of a Dask graph draws it by shape, running none of it (a
1-element constant's number, which is its label, is the only value brought to the host), with
numpy's labels: the constant 1 − Y of the log-loss is named from how Dask makes it, not from
its values; asked for values, it brings them to the host and shows what numpy's picture
shows."""
import re

import pytest

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")

import autograd_lite as ag  # noqa: E402
from dask_util import Computes, seed_loss, seed_parameters, seed_problem  # noqa: E402
from edges_util import DASK, seed_network  # noqa: E402


def seed_graphs(loss="composed"):
    X, Y, arrays = seed_problem(400)
    J_numpy = seed_loss(seed_parameters(arrays), ag.Tensor(X, name="X"), ag.Tensor(Y, name="Y"), loss)
    X_lazy = ag.Tensor(da.from_array(X, chunks=(3, 100)), name="X")
    Y_lazy = ag.Tensor(da.from_array(Y, chunks=(1, 100)), name="Y")
    return J_numpy, seed_loss(seed_parameters(arrays), X_lazy, Y_lazy, loss)


def node_labels(source):
    """Each box's label in a picture's DOT source, by node name (t14: ``<I>1 − Y</I>...``)."""
    return dict(re.findall(r"^\t(t\d+) \[label=(.*?) fillcolor=", source, re.M))


@pytest.mark.parametrize("loss", ["composed", "fused"])
def test_a_dask_graph_is_drawn_by_shape_without_running_it(loss):
    J_numpy, J_lazy = seed_graphs(loss)
    with Computes() as computes:
        picture = ag.draw(J_lazy)
    assert all(len(graph) <= 2 for graph in computes.graphs), \
        f"drawing ran graphs of {[len(g) for g in computes.graphs]} tasks"
    assert picture.source == ag.draw(J_numpy).source


@pytest.mark.parametrize("view", [{}, {"backward": True}])
def test_the_readme_network_on_dask_by_shape_has_numpys_labels(view):
    """Parameters named only, as in the README: X, Y, Z[l], A[l], m and the log-loss's 1 − Y
    (eqs 1, 76; made outside the graph, as Y needs no gradient) are inferred on Dask as on
    numpy, the Dask graph never run (only 1-element constants are read, a task or two)."""
    expected = node_labels(ag.draw(seed_network(None)["J"], **view).source)
    J = seed_network(DASK.values[0])["J"]
    with Computes() as computes:
        labels = node_labels(ag.draw(J, **view).source)
    assert all(len(graph) <= 2 for graph in computes.graphs), [len(g) for g in computes.graphs]
    assert labels == expected
    assert any("1 − Y" in label for label in labels.values()), labels


def test_a_dask_constant_of_another_recipe_is_not_named_1_minus_y():
    """The name says how the constant was made: 2 − Y, or 1 − Y of other labels, stays a
    constant without a name (t<k>), as on numpy, where the values differ."""
    X, Y, arrays = seed_problem(8)
    Y_lazy = ag.Tensor(da.from_array(Y, chunks=(1, 4)), name="Y")
    A = ag.Tensor(da.from_array(X[:1] ** 2 / 10, chunks=(1, 4)), requires_grad=True, name="A")
    for constant in (2 - Y_lazy, 1 - ag.Tensor(da.from_array(1 - Y, chunks=(1, 4)))):
        labels = node_labels(ag.draw(((constant * A) + Y_lazy * A).sum()).source)
        assert not any("1 − Y" in label for label in labels.values()), labels
    labels = node_labels(ag.draw(((1.0 - Y_lazy.data) * A + Y_lazy * A).sum()).source)
    assert any("1 − Y" in label for label in labels.values()), labels


def test_values_asked_for_are_brought_to_the_host():
    J_numpy, J_lazy = seed_graphs("fused")
    assert ag.draw(J_lazy, values=True).source == ag.draw(J_numpy, values=True).source

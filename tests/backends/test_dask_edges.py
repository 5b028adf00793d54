"""The edges on Dask: ``ag.draw`` of a Dask graph draws it by shape, running none of it (a
1-element constant's number, which is its label, is the only value brought to the host);
asked for values, it brings them to the host and shows what numpy's picture shows. (A bare
constant 1 − Y is named so on numpy by comparing values; on Dask it stays unnamed.)"""
import pytest

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")

import autograd_lite as ag  # noqa: E402
from dask_util import Computes, seed_loss, seed_parameters, seed_problem  # noqa: E402


def seed_graphs(loss="composed"):
    X, Y, arrays = seed_problem(400)
    J_numpy = seed_loss(seed_parameters(arrays), ag.Tensor(X, name="X"), ag.Tensor(Y, name="Y"), loss)
    X_lazy = ag.Tensor(da.from_array(X, chunks=(3, 100)), name="X")
    Y_lazy = ag.Tensor(da.from_array(Y, chunks=(1, 100)), name="Y")
    return J_numpy, seed_loss(seed_parameters(arrays), X_lazy, Y_lazy, loss)


@pytest.mark.parametrize("loss", ["composed", "fused"])
def test_a_dask_graph_is_drawn_by_shape_without_running_it(loss):
    J_numpy, J_lazy = seed_graphs(loss)
    with Computes() as computes:
        picture = ag.draw(J_lazy)
    assert all(len(graph) <= 2 for graph in computes.graphs), \
        f"drawing ran graphs of {[len(g) for g in computes.graphs]} tasks"
    if loss == "fused":
        assert picture.source == ag.draw(J_numpy).source


def test_values_asked_for_are_brought_to_the_host():
    J_numpy, J_lazy = seed_graphs("fused")
    assert ag.draw(J_lazy, values=True).source == ag.draw(J_numpy, values=True).source

"""``ag.draw`` and the stepping page on every backend: a graph of torch, array-api-strict, CuPy or
Dask tensors gets numpy's picture (the same names, shapes, equations and, when asked for,
values), bringing to the host only what it shows. A Dask graph is drawn by shape without
running it; asked for values (or as a page, which shows them all), it is computed once."""
import json
import shutil

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite.viz.page import build as build_page
from edges_util import DASK, EDGE_BACKENDS, assert_same_numbers, seed_network

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz `dot` is not installed (.ci/run installs it)")

VIEWS = {"forward": {}, "forward with values": {"values": True},
         "backward": {"backward": True}, "backward with values": {"backward": True, "values": True}}


def computes():
    """Counts Dask's computes (``dask_util.Computes``), or nothing where Dask is missing."""
    try:
        from dask_util import Computes
        import dask  # noqa: F401
    except ImportError:
        import contextlib
        return contextlib.nullcontext(None)
    return Computes()


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("backend", EDGE_BACKENDS)
def test_a_picture_on_any_backend_is_numpys_picture(backend, view):
    """The README's network, parameters named only: X, Y, Z[l], A[l], J, m and the constant
    1 − Y are inferred, on every backend as on numpy (Dask's by shape too, without running
    its graph: test_a_dask_graph_is_drawn_by_shape_computing_nothing)."""
    expected = ag.draw(seed_network(None)["J"], **VIEWS[view]).source
    J = seed_network(backend)["J"]
    assert ag.draw(J, **VIEWS[view]).source == expected


@pytest.mark.parametrize("backend", EDGE_BACKENDS)
def test_gradients_and_their_colours_on_any_backend_are_numpys(backend):
    def drawn(network):
        for name in ("Z1", "A1", "Z2", "A2"):
            network[name].retain_grad()
        network["J"].backward(retain_graph=True)
        return [ag.draw(network["J"], backward=True, grads=True, **kw).source
                for kw in ({}, {"color": "grad"})]
    expected = drawn(seed_network(None, composed=False))
    assert drawn(seed_network(backend, composed=False)) == expected


def test_a_dask_graph_is_drawn_by_shape_computing_nothing():
    pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
    dask_backend = DASK.values[0]
    J = seed_network(dask_backend)["J"]
    with computes() as counted:
        for view in ({}, {"backward": True}):
            source = ag.draw(J, **view).source
    # the 1-element constants (the 1 of 1 − A[2], eq 76's m) are read alone, a task or two
    # each; the network itself never runs
    assert all(len(graph) <= 2 for graph in counted.graphs), [len(g) for g in counted.graphs]
    assert "m = 5" in source or "m = 5" in ag.draw(J).source
    with computes() as counted:
        ag.draw(J, values=True)
    assert counted.count == 1, "values are brought to the host in one compute, not one a box"


def test_dask_gradients_drawn_come_to_the_host_in_one_compute():
    pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
    network = seed_network(DASK.values[0])
    for name in ("Z1", "A1", "Z2", "A2"):
        network[name].retain_grad()  # dZ[l], dA[l]: as big as the data, they stay lazy
    network["J"].backward(retain_graph=True)
    with computes() as counted:
        ag.draw(network["J"], backward=True, grads=True, color="grad")
    network_sized = [graph for graph in counted.graphs if len(graph) > 2]
    assert len(network_sized) == 1, "the retained gradients come over once, for boxes and colours"


@pytest.mark.parametrize("backend", EDGE_BACKENDS)
def test_the_stepping_page_on_any_backend_says_what_numpys_says(backend):
    expected = build_page(seed_network(None)["J"])
    J = seed_network(backend)["J"]
    with computes() as counted:
        page = build_page(J)
    if backend.name == "dask":
        assert counted.count == 1, "a page shows every value: the graph is computed once"
    assert page.svgs == expected.svgs
    # the same steps, names, rules and equations; numbers to round-off (another BLAS)
    assert_same_numbers(json.loads(json.dumps(page.data)), json.loads(json.dumps(expected.data)))


@needs_dot
@pytest.mark.parametrize("backend", EDGE_BACKENDS)
def test_a_picture_of_any_backend_renders(backend, tmp_path):
    network = seed_network(backend)
    network["J"].backward(retain_graph=True)
    png = ag.draw(network["J"], backward=True, grads=True).save(tmp_path / "backward.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = ag.draw(network["J"]).save(tmp_path / "steps.html")
    assert "Backward starts at dJ = 1" in page.read_text(encoding="utf-8")

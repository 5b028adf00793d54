"""Pictures of computation graphs (autograd_lite.viz), read against the seed's derivation.

The seed's 3-4-1 network (eqs 21-29, m samples as columns, eq 25) is built the way
EQUATIONS.md writes it, with the seed's names, and its picture must hold those names, the
shapes of eqs 35-38 (with m for the sample axis), the primitives, and the edges between them.
"""
from __future__ import annotations

import importlib.util
import pathlib
import re
import shutil
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd_lite as ag
from autograd_lite.viz import GraphPicture, GraphvizNotFoundError, draw

ROOT = pathlib.Path(__file__).resolve().parents[2]

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz `dot` is not installed (.ci/run installs it)")


def seed_network(m=5, scopes=True, seed=0):
    """Eqs 26-29 and the cost of eq 76 with log-loss (eq 1), the seed's names throughout."""
    rng = np.random.default_rng(seed)
    X = ag.Tensor(rng.standard_normal((3, m)), name="X")
    Y = ag.Tensor((rng.random((1, m)) > 0.5) * 1.0, name="Y")
    net = {"X": X, "Y": Y}
    A = X
    for l, (n_out, n_in) in ((1, (4, 3)), (2, (1, 4))):
        scope = ag.name_scope(f"layer {l}") if scopes else _no_scope()
        with scope:
            W = ag.Tensor(rng.standard_normal((n_out, n_in)), requires_grad=True, name=f"W[{l}]")
            b = ag.Tensor(rng.standard_normal((n_out, 1)), requires_grad=True, name=f"b[{l}]")
            Z = (W @ A + b).named(f"Z[{l}]")          # eqs 26, 28
            A = Z.sigmoid().named(f"A[{l}]")          # eqs 27, 29
        net.update({f"W{l}": W, f"b{l}": b, f"Z{l}": Z, f"A{l}": A})
    # eq 1 written with log (binary_cross_entropy would take the sigmoid's logits Z[2])
    net["J"] = (-(Y * A.log() + (1 - Y) * (1 - A).log()).sum() / m).named("J")  # eqs 1, 76
    return net


class _no_scope:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def node_line(source, key):
    """The DOT line that declares node ``key``."""
    for line in source.splitlines():
        if re.match(rf"\s*{re.escape(key)} \[", line):
            return line
    raise AssertionError(f"node {key} not in the DOT source")


def node_count(source):
    return len(re.findall(r"^\s*[\w]+ \[label=", source, flags=re.MULTILINE))


# --- the forward picture of the seed network --------------------------------------------------

def test_seed_network_nodes_carry_names_and_shapes_of_eqs_35_to_38():
    net = seed_network(m=5)
    picture = draw(net["J"])
    source = picture.source
    expected = {"W1": "4×3", "b1": "4×1", "Z1": "4×m", "A1": "4×m",
                "W2": "1×4", "b2": "1×1", "Z2": "1×m", "A2": "1×m", "X": "3×m", "Y": "1×m"}
    names = {"W1": "W[1]", "b1": "b[1]", "Z1": "Z[1]", "A1": "A[1]", "W2": "W[2]",
             "b2": "b[2]", "Z2": "Z[2]", "A2": "A[2]", "X": "X", "Y": "Y"}
    for key, shape in expected.items():
        line = node_line(source, picture.key_of(net[key]))
        assert f"<B>{names[key]}</B><BR/>{shape}" in line, line
    assert "<B>J</B><BR/>scalar" in node_line(source, picture.key_of(net["J"]))
    assert "m = 5 samples" in source


def test_seed_network_operations_and_edges_follow_eqs_26_to_29():
    net = seed_network()
    picture = draw(net["J"])
    source = picture.source
    key = picture.key_of
    # Z[1] = W[1] X + b[1]: W[1] and X feed a matmul whose product feeds the add making Z[1]
    product = key(net["Z1"]).replace("t", "op")
    matmul_edges = re.findall(rf"(\w+) -> (op\d+) \[[^]]*xlabel=left", source)
    matmul_of_W1 = [op for tail, op in matmul_edges if tail == key(net["W1"])]
    assert len(matmul_of_W1) == 1
    matmul = matmul_of_W1[0]
    assert "<B>matmul</B>" in node_line(source, matmul) and "eq 33" in node_line(source, matmul)
    assert f"{key(net['X'])} -> {matmul} [" in source and "xlabel=right" in source
    assert f"{key(net['b1'])} -> {product}" in source
    assert f"{product} -> {key(net['Z1'])}" in source
    assert "<B>add</B>" in node_line(source, product)
    assert "broadcasts b[1] 4×1 (eqs 30-33)" in node_line(source, product)
    # A[1] = s(Z[1]) (eq 27)
    sigmoid = key(net["A1"]).replace("t", "op")
    assert f"{key(net['Z1'])} -> {sigmoid}" in source
    assert "<B>sigmoid</B>" in node_line(source, sigmoid)
    # the log-loss of eq 1 is made of log; the product W[1]·X is named by its expression
    assert "<B>log</B>" in source and "<I>W[1]·X</I><BR/>4×m" in source
    # parameters, inputs and results look different
    assert "#dbe9f6" in node_line(source, key(net["W1"]))
    assert "#eeeeee" in node_line(source, key(net["X"]))


def test_clusters_follow_name_scopes():
    net = seed_network()
    source = draw(net["J"]).source
    assert source.count("subgraph cluster_") == 2
    assert "label=<layer 1>" in source and "label=<layer 2>" in source
    layer_1 = source.split("label=<layer 1>")[1].split("}")[0]
    assert "<B>W[1]</B>" in layer_1 and "<B>Z[1]</B>" in layer_1 and "<B>W[2]</B>" not in layer_1
    assert "subgraph" not in draw(net["J"], clusters=False).source


def test_nested_scopes_give_nested_clusters():
    x = ag.Tensor(np.ones((2, 3)), requires_grad=True, name="x")
    with ag.name_scope("model"):
        with ag.name_scope("layer 1"):
            y = (x * 2.0).named("y")
        with ag.name_scope("layer 2"):
            z = y.sigmoid().named("z")
    source = draw(z.sum()).source
    model = source.split("label=<model>")[1]
    assert "label=<layer 1>" in model and "label=<layer 2>" in model
    assert draw(z.sum(), layers_only=True).source.count("nodes</FONT>") == 2


def test_parameters_made_outside_a_scope_join_the_layer_that_uses_them():
    # as an nn layer does: W and b made in its constructor, used inside name_scope("layer 1")
    W = ag.Tensor(np.ones((4, 3)), requires_grad=True, name="W[1]")
    b = ag.Tensor(np.ones((4, 1)), requires_grad=True, name="b[1]")
    X = ag.Tensor(np.ones((3, 5)), name="X")
    with ag.name_scope("layer 1"):
        A = (W @ X + b).sigmoid().named("A[1]")
    source = draw(A.mean()).source
    layer_1 = source.split("label=<layer 1>")[1].split("}")[0]
    assert "<B>W[1]</B>" in layer_1 and "<B>b[1]</B>" in layer_1
    assert "<B>X</B>" not in layer_1  # the input stays outside: it is no layer's parameter
    shared = ag.Tensor(np.ones((3, 3)), requires_grad=True, name="S")
    with ag.name_scope("one"):
        u = (shared @ X).named("u")
    with ag.name_scope("two"):
        v = (shared @ u).named("v")
    two_layers = draw(v.sum()).source
    assert "<B>S</B>" not in two_layers.split("label=<one>")[1].split("}")[0]
    assert "<B>S</B>" not in two_layers.split("label=<two>")[1].split("}")[0]


def test_without_scopes_layers_are_inferred_from_seed_names():
    net = seed_network(scopes=False)
    source = draw(net["J"]).source
    assert "label=<layer 1>" in source and "label=<layer 2>" in source
    assert "inferred from the seed's names" in source
    layer_1 = source.split("label=<layer 1>")[1].split("}")[0]
    assert "<I>W[1]·X</I>" in layer_1  # the unnamed product joins the layer of Z[1]


def test_layers_only_collapses_each_layer_to_one_box():
    for scopes in (True, False):
        net = seed_network(scopes=scopes)
        picture = draw(net["J"], layers_only=True)
        source = picture.source
        assert "<B>layer 1</B>" in source and "<B>layer 2</B>" in source
        assert "matmul → add → sigmoid" in source
        assert "W[1] 4×3 · b[1] 4×1" in source
        assert "<B>W[1]</B>" not in source  # no separate box for what a layer holds
        assert re.search(r"layer0 -> layer1 \[label=<A\[1\] 4×m>\]", source), source
        assert f"{picture.key_of(net['X'])} -> layer0" in source


def test_layers_only_without_any_layer_draws_everything_and_says_so():
    x = ag.Tensor(np.ones(3), requires_grad=True)
    picture = draw((x * x).sum(), layers_only=True)
    assert any("no layers" in note for note in picture.notes)
    assert "<B>mul</B>" in picture.source


# --- the sample axis m --------------------------------------------------------------------------

def test_m_follows_the_samples_not_sizes_that_happen_to_equal_m():
    net = seed_network(m=4)  # m = n[1] = 4: W[2] is 1×4 and must not read 1×m
    picture = draw(net["J"])
    source = picture.source
    assert "<B>W[2]</B><BR/>1×4" in node_line(source, picture.key_of(net["W2"]))
    assert "<B>Z[1]</B><BR/>4×m" in node_line(source, picture.key_of(net["Z1"]))
    assert "<B>W[1]</B><BR/>4×3" in node_line(source, picture.key_of(net["W1"]))


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 4), min_size=2, max_size=4), m=st.integers(1, 4))
def test_m_marks_exactly_the_sample_columns_for_any_sizes(sizes, m):
    # sizes and m are drawn from the same small range on purpose: they often coincide
    X = ag.Tensor(np.ones((sizes[0], m)), name="X")
    A, tensors = X, []
    for l in range(1, len(sizes)):
        W = ag.Tensor(np.ones((sizes[l], sizes[l - 1])), requires_grad=True, name=f"W[{l}]")
        b = ag.Tensor(np.ones((sizes[l], 1)), requires_grad=True, name=f"b[{l}]")
        Z = (W @ A + b).named(f"Z[{l}]")
        A = Z.tanh().named(f"A[{l}]")
        tensors += [(W, False), (b, False), (Z, True), (A, True)]
    picture = draw(A.sum())
    for tensor, has_samples in tensors:
        rows = tensor.shape[0]
        columns = "m" if has_samples and m > 1 else str(tensor.shape[1])
        expected = f"<B>{tensor.name}</B><BR/>{rows}×{columns}"
        assert expected in node_line(picture.source, picture.key_of(tensor))


def test_samples_option():
    rng = np.random.default_rng(1)
    X = ag.Tensor(rng.standard_normal((3, 7)))  # unnamed: "auto" cannot find it
    W = ag.Tensor(rng.standard_normal((2, 3)), requires_grad=True, name="W")
    Z = (W @ X).named("Z")
    assert "2×m" not in draw(Z.sum()).source
    assert "<B>Z</B><BR/>2×m" in draw(Z.sum(), samples=7).source
    assert "<B>Z</B><BR/>2×m" in draw(Z.sum(), samples=[X]).source
    assert "×m" not in draw(seed_network()["J"], samples=None).source
    # a sum over the samples removes m; keepdims leaves a 1
    assert "<I>sum(Z)</I><BR/>(2,)" in draw(Z.sum(axis=1), samples=7).source
    assert "2×1" in draw(Z.sum(axis=1, keepdims=True), samples=7).source
    assert "m×2" in draw(Z.T.sum(), samples=7).source
    with pytest.raises(ValueError, match="samples=0"):
        draw(Z, samples=0)


# --- values, gradients, colours ------------------------------------------------------------------

def test_values_small_in_full_large_as_min_mean_max():
    W = ag.Tensor([[1.5, -2.0], [0.25, 4.0]], requires_grad=True, name="W")
    X = ag.Tensor(np.arange(40.0).reshape(2, 20), name="X")
    source = draw((W @ X).sum(), values=True).source
    assert "[[1.5 -2]" in source and "[0.25 4]]" in source
    assert "min 0 · mean 19.5 · max 39" in source


def test_gradients_shown_after_backward_with_retain_graph():
    net = seed_network()
    net["Z1"].retain_grad()
    net["J"].backward(retain_graph=True)
    picture = draw(net["J"], grads=True)
    source = picture.source
    db2 = net["b2"].grad.item()
    assert f"[[{db2:.3g}]]" in node_line(source, picture.key_of(net["b2"]))
    z1 = node_line(source, picture.key_of(net["Z1"]))
    assert "grad" in z1 and f"max {net['Z1'].grad.max():.3g}" in z1
    assert "grad not kept (see retain_grad)" in node_line(source, picture.key_of(net["A1"]))
    assert "grad: none yet" in draw(seed_network()["J"], grads=True).source


def test_a_graph_backward_has_used_can_still_be_drawn_with_every_value():
    """Walking the graph never fails: backward frees only the saved arrays, so the picture
    after it shows the same boxes and values (recomputed exactly), and the gradients."""
    net = seed_network()
    before = draw(net["J"], values=True).source
    net["J"].backward()
    after = draw(net["J"], values=True).source
    assert after == before
    with_grads = draw(net["J"], values=True, grads=True).source
    assert "grad: none yet" not in with_grads


def test_colour_by_gradient_magnitude():
    x = ag.Tensor(np.ones(3), requires_grad=True, name="x")
    y = ag.Tensor(np.ones(3), requires_grad=True, name="y")
    J = (x * 1e-6 + y * 10.0).sum().named("J")
    J.backward(retain_graph=True)
    picture = draw(J, color="grad")
    small = node_line(picture.source, picture.key_of(x))
    large = node_line(picture.source, picture.key_of(y))
    assert 'fillcolor="#ffffb2"' in small and "max |grad| 1.00e-06" in small
    assert 'fillcolor="#b10026"' in large and "max |grad| 1.00e+01" in large
    assert "on a log scale" in picture.source
    fresh = ag.Tensor(np.ones(3), requires_grad=True)
    assert any("no tensor" in n for n in draw((fresh * 2).sum(), color="grad").notes)


def test_colour_by_comparison_report_marks_where_derivations_part():
    net = seed_network()
    differences = {"dW[1]": 0.3, "db[1]": 0.2, "dW[2]": 1e-16, "b[2]": 2e-16, "dQ[7]": 0.0}
    picture = draw(net["J"], compare=differences)
    source = picture.source
    W1 = node_line(source, picture.key_of(net["W1"]))
    W2 = node_line(source, picture.key_of(net["W2"]))
    b1 = node_line(source, picture.key_of(net["b1"]))
    assert "#fcae91" in W1 and "rel. diff 3.0e-01" in W1
    assert "#c7e9c0" in W2 and "#c7e9c0" in node_line(source, picture.key_of(net["b2"]))
    # backward order reaches b[1] (added after W[1]·X) before W[1]: b[1] is where they part first
    assert "first to differ" in b1 and "penwidth=3" in b1 and "first to differ" not in W1
    assert any("dQ[7]" in note for note in picture.notes)
    assert "#c7e9c0" in node_line(draw(net["J"], compare={"dW[1]": 0.3}, tolerance=0.5).source,
                                  picture.key_of(net["W1"]))
    with pytest.raises(TypeError, match="must be a number"):
        draw(net["J"], compare={"dW[1]": "small"})
    with pytest.raises(ValueError, match="needs compare"):
        draw(net["J"], color="compare")


# --- the backward view ----------------------------------------------------------------------------

def test_backward_view_shows_the_unbroadcast_of_eq_80_and_the_rules():
    net = seed_network()
    picture = draw(net["J"], backward=True)
    source = picture.source
    # each gradient cites the one equation the seed gives for it in its layer (N = 2)
    assert "db[1] = Σ over axis 1 of dZ[1]<BR/>(eq 84)" in source
    assert "db[2] = Σ over axis 1 of dZ[2]<BR/>(eq 80)" in source
    assert "<B>Σ over axis 1</B>" in source
    assert "dZ[1] = dA[1] ∘ A[1](1 − A[1])<BR/>(eq 82)" in source
    assert "dZ[2] = dA[2] ∘ A[2](1 − A[2])<BR/>(eq 78)" in source
    # d(W[1]·X) is dZ[1]: add's vjp passes it on unchanged, so the rules read as eqs 79-83
    assert "dW[1] = dZ[1]·Xᵀ<BR/>(eq 83)" in source
    assert "dW[2] = dZ[2]·A[1]ᵀ<BR/>(eq 79)" in source
    assert "dA[1] = W[2]ᵀ·dZ[2]<BR/>(eq 81)" in source
    assert "eqs 59, 79, 83" not in source
    assert "d(W[1]·X) = dZ[1]<BR/>(add's vjp passes it on unchanged)" in source
    assert "<B>dJ = 1</B>" in source
    # A[2] is used twice by the log-loss (log A and 1 - A): its gradient adds up
    assert "dA[2] +=" in source and "sum of 2 contributions" in source
    # X and Y need no gradient: no box
    assert "<B>X</B>" not in source and "<B>dX</B>" not in source
    # the same tensor keeps its node name in both views
    assert picture.key_of(net["W1"]) == draw(net["J"]).key_of(net["W1"])


def test_backward_view_with_gradients_and_layers_only():
    net = seed_network()
    for name in ("Z1", "A1", "Z2", "A2"):
        net[name].retain_grad()
    net["J"].backward(retain_graph=True)
    picture = draw(net["J"], backward=True, grads=True)
    assert f"{net['b2'].grad.item():.3g}" in node_line(picture.source, picture.key_of(net["b2"]))
    collapsed = draw(net["J"], backward=True, layers_only=True).source
    assert "<B>layer 1</B><BR/>db[1] 4×1 · dW[1] 4×3" in collapsed
    assert "sigmoid vjp → add vjp → Σ over axis 1" in collapsed
    assert "layer1 -> layer0 [label=<dA[1] 4×m>]" in collapsed  # layer 2 hands dA[1] down


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), m=st.integers(1, 5),
       bias=st.sampled_from(["column", "row", "vector", "one", "scalar", "full"]))
def test_unbroadcast_label_names_the_axes_the_engine_sums(n, m, bias):
    shape = {"column": (n, 1), "row": (1, m), "vector": (m,), "one": (1, 1), "scalar": (),
             "full": (n, m)}[bias]
    A = ag.Tensor(np.ones((n, m)), requires_grad=True, name="A")
    b = ag.Tensor(np.ones(shape), requires_grad=True, name="b")
    Z = (A + b).named("Z")
    source = draw((Z * Z).sum(), backward=True).source
    padded = (1,) * (2 - len(shape)) + shape
    summed = [axis for axis in range(2) if padded[axis] == 1 and (n, m)[axis] != 1
              or axis < 2 - len(shape)]
    if not summed:
        assert "Σ over" not in source
    else:
        where = ("all elements" if len(summed) == 2 else f"axis {summed[0]}")
        assert f"db = Σ over {where} of dZ" in source
    b.grad = None  # the picture does not touch the engine's state
    assert b.grad is None


@settings(max_examples=30, deadline=None)
@given(combine=st.sampled_from(["add left", "add right", "sub left", "sub right", "mul"]),
       bias=st.sampled_from(["full", "column", "scalar"]), product=st.sampled_from(["full", "column"]),
       extra_use=st.booleans(), n=st.integers(1, 3), m=st.integers(1, 4))
def test_gradient_passed_through_an_add_is_named_only_when_it_is_the_same_array(
        combine, bias, product, extra_use, n, m):
    # d(W·X) is renamed dZ only where add (or sub's left side) hands dZ on unchanged: one use,
    # the same shape. The engine's own arrays are the judge: where the picture renames, equal.
    rng = np.random.default_rng(n * 10 + m)
    W = ag.Tensor(rng.standard_normal((n, 2)), requires_grad=True, name="W")
    X = ag.Tensor(rng.standard_normal((2, m if product == "full" else 1)), name="X")
    b = ag.Tensor(rng.standard_normal({"full": (n, m), "column": (n, 1), "scalar": ()}[bias]),
                  requires_grad=True, name="b")
    P = W @ X
    Z = {"add left": lambda: P + b, "add right": lambda: b + P, "sub left": lambda: P - b,
         "sub right": lambda: b - P, "mul": lambda: P * b}[combine]().named("Z")
    J = Z.tanh().sum() + (P.sum() if extra_use else 0.0)
    P.retain_grad()
    Z.retain_grad()
    J.backward(retain_graph=True)
    picture = draw(J, backward=True)
    renamed = "= dZ: " in node_line(picture.source, picture.key_of(P))
    expected = (combine in ("add left", "add right", "sub left") and not extra_use
                and P.shape == Z.shape)
    assert renamed == expected
    if renamed:
        assert np.array_equal(P.grad, Z.grad)
        assert "dW = dZ·Xᵀ" in picture.source
    else:
        assert "dW = d(W·X)·Xᵀ" in picture.source or "dW += d(W·X)·Xᵀ" in picture.source


def test_a_named_product_keeps_its_own_gradient_name():
    W = ag.Tensor(np.ones((2, 3)), requires_grad=True, name="W")
    X = ag.Tensor(np.ones((3, 4)), name="X")
    P = (W @ X).named("P")
    source = draw((P + 1.0).sigmoid().sum(), backward=True).source
    assert "dW = dP·Xᵀ" in source and "passes it on unchanged" not in source.split("dP =")[0][-80:]


# --- colouring by the comparison report ---------------------------------------------------------

def seed_report(net, rules=None):
    """``check.compare`` on the arrays of the test's seed network: the same numbers."""
    from autograd_lite import reference as ref
    from autograd_lite.check import compare
    return compare([net["W1"].data, net["W2"].data], [net["b1"].data, net["b2"].data],
                   net["X"].data, net["Y"].data, ["sigmoid", "sigmoid"],
                   rules=rules or ref.SEED_RULES, max_numeric=8)


def test_compare_takes_the_report_and_marks_where_a_wrong_derivation_parts():
    from autograd_lite import reference as ref
    net = seed_network()
    report = seed_report(net, ref.wrong_rules("g-prime-of-A", [2]))  # dZ[2] wrong (eq 78)
    picture = draw(net["J"], backward=True, compare=report)
    source, line = picture.source, lambda k: node_line(picture.source, picture.key_of(net[k]))
    assert "#c7e9c0" in line("A2")                                   # dA[2] agrees
    assert "#fcae91" in line("Z2") and "penwidth=3" in line("Z2") and "first to differ" in line("Z2")
    for later in ("W2", "b2", "A1", "Z1", "W1", "b1"):               # all inherit the mistake
        assert "#fcae91" in line(later) and "first to differ" not in line(later), later
    relative = report.row("dZ[2]").pairs["autodiff-reference"].relative
    assert f"rel. diff {relative:.1e}" in line("Z2")
    assert "g&#x27; evaluated at A[l]" in source or "g' evaluated at A[l]" in source
    assert not picture.notes
    # the seed's own rules: every box green, nobody first
    agree = draw(net["J"], compare=seed_report(net)).source
    assert "#fcae91" not in agree and "first to differ" not in agree


def test_compare_report_where_the_hand_derivation_does_not_type_check():
    from autograd_lite import reference as ref
    net = seed_network()
    report = seed_report(net, ref.wrong_rules("eq50", [1]))  # dZ[1] = dA[1] g'(Z[1]) as a matmul
    picture = draw(net["J"], compare=report)
    line = lambda k: node_line(picture.source, picture.key_of(net[k]))  # noqa: E731
    assert "#fcae91" in line("Z1") and "first to differ" in line("Z1")
    assert "hand derivation: no value" in line("Z1")
    for after in ("W1", "b1"):  # the derivation stopped: grey, not red
        assert "#d9d9d9" in line(after) and "no value" in line(after)
    assert "does not type-check" in picture.source and "grey: the hand derivation" in picture.source


def test_compare_mapping_accepts_none_and_checks_tolerance():
    net = seed_network()
    picture = draw(net["J"], compare={"dW[2]": 1e-16, "dW[1]": None})
    W1 = node_line(picture.source, picture.key_of(net["W1"]))
    assert "#fcae91" in W1 and "first to differ" in W1  # the only one that fails
    with pytest.raises(ValueError, match="tolerance"):
        draw(net["J"], compare={"dW[1]": 0.1}, tolerance=-1)
    with pytest.raises(TypeError, match="or None"):
        draw(net["J"], compare={"dW[1]": [0.1]})


def test_layers_only_boxes_take_the_colour_of_their_worst_member():
    from autograd_lite import reference as ref
    net = seed_network()
    for name in ("Z1", "A1", "Z2", "A2"):
        net[name].retain_grad()
    net["J"].backward(retain_graph=True)
    full = draw(net["J"], color="grad")
    collapsed = draw(net["J"], color="grad", layers_only=True).source
    for layer, box in ((1, "layer0"), (2, "layer1")):
        members = {k: float(np.abs(net[k].grad).max()) for k in (f"W{layer}", f"b{layer}",
                                                                  f"Z{layer}", f"A{layer}")}
        worst = max(members, key=members.get)
        least = min(members, key=members.get)
        fill = re.search(r'fillcolor="(#\w+)"', node_line(full.source, full.key_of(net[worst])))[1]
        line = node_line(collapsed, box)
        assert f'fillcolor="{fill}"' in line
        assert f"largest max |grad| {members[worst]:.1e} in d{net[worst].name}" in line
        assert f"smallest {members[least]:.1e} in d{net[least].name}" in line
    report = seed_report(net, ref.wrong_rules("no-1/m", [1]))  # dW[1], db[1] m times too large
    collapsed = draw(net["J"], compare=report, layers_only=True).source
    layer_1, layer_2 = node_line(collapsed, "layer0"), node_line(collapsed, "layer1")
    assert "#fcae91" in layer_1 and "penwidth=3" in layer_1 and "first to differ: dW[1]" in layer_1
    assert "of 4 gradients: 2 agree · 2 differ" in layer_1
    assert "#c7e9c0" in layer_2 and "of 4 gradients: 4 agree" in layer_2
    assert "penwidth=3" not in layer_2


# --- identities, size, depth ----------------------------------------------------------------------

def test_node_names_are_stable_and_never_ids():
    first, second = seed_network(seed=3), seed_network(seed=3)
    assert draw(first["J"]).source == draw(second["J"]).source
    assert draw(first["J"], backward=True).source == draw(second["J"], backward=True).source
    assert str(id(first["J"])) not in draw(first["J"]).source


def test_deep_graph_draws_without_recursion_error_and_is_summarised():
    x = ag.Tensor(np.ones((2, 2)), requires_grad=True, name="x")
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    picture = draw(y.sum(), max_nodes=100)
    assert node_count(picture.source) <= 100
    assert any("not drawn" in note or "max_nodes=100" in note for note in picture.notes)
    assert "more nodes not drawn" in picture.source
    short = x
    for _ in range(500):
        short = short * 1.0001
    everything = draw(short.sum(), max_nodes=None)
    assert node_count(everything.source) == 3 * 500 + 3  # each step: product, mul, constant


def test_big_network_collapses_to_layers_first():
    x = ag.Tensor(np.ones((3, 2)), name="X")
    A = x
    for l in range(1, 41):
        with ag.name_scope(f"layer {l}"):
            W = ag.Tensor(np.eye(3), requires_grad=True, name=f"W[{l}]")
            A = (W @ A).tanh().named(f"A[{l}]")
    picture = draw(A.sum(), max_nodes=60)
    assert any("collapsed to one box" in note for note in picture.notes)
    assert "<B>layer 40</B>" in picture.source and "more nodes" not in picture.source
    small = draw(A.sum(), max_nodes=10)
    assert node_count(small.source) <= 10 and "more nodes not drawn" in small.source


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="expected a Tensor"):
        draw(np.ones(3))
    J = seed_network()["J"]
    with pytest.raises(ValueError, match="color"):
        draw(J, color="rainbow")
    with pytest.raises(ValueError, match="max_nodes"):
        draw(J, max_nodes=1)
    with pytest.raises(KeyError, match="not in this picture"):
        draw(J).key_of(ag.Tensor(1.0, name="elsewhere"))
    constant = ag.Tensor(np.ones(3), name="x")
    with pytest.raises(ValueError, match="'x' does not require a gradient"):
        draw(constant, backward=True)
    # a lone tensor is a picture of one box, in either view
    assert node_count(draw(constant).source) == 1
    leaf = ag.Tensor(np.ones(3), requires_grad=True, name="w")
    assert "<B>dw</B>" in draw(leaf, backward=True).source


# --- rendering ------------------------------------------------------------------------------------

@needs_dot
def test_rendered_svg_parses_and_holds_the_labels(tmp_path):
    net = seed_network()
    path = draw(net["J"]).render(tmp_path / "seed.svg")
    root = ElementTree.parse(path).getroot()
    assert root.tag.endswith("svg")
    texts = {"".join(element.itertext()) for element in root.iter() if element.tag.endswith("text")}
    for label in ("W[1]", "b[1]", "Z[1]", "A[1]", "W[2]", "J", "4×3", "4×m", "matmul", "sigmoid"):
        assert label in texts, label
    assert [p.name for p in tmp_path.iterdir()] == ["seed.svg"]  # no temporary file left


@needs_dot
def test_render_png_pdf_dot_by_suffix(tmp_path):
    picture = draw(seed_network()["J"], backward=True)
    assert picture.render(tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")
    assert picture.render(tmp_path / "g.pdf").read_bytes().startswith(b"%PDF")
    assert picture.render(tmp_path / "g.dot").read_text(encoding="utf-8") == picture.source
    assert picture.render(tmp_path / "g.out", format="svg").read_bytes().lstrip().startswith(b"<?xml")
    with pytest.raises(ValueError, match="'.jpg'"):
        picture.render(tmp_path / "g.jpg")


@needs_dot
def test_notebook_repr_is_svg():
    picture = draw(seed_network()["J"])
    assert isinstance(picture, GraphPicture)
    assert "<svg" in picture._repr_svg_()
    assert "<svg" in picture._repr_mimebundle_()["image/svg+xml"]


def test_missing_dot_gives_a_clear_error_and_keeps_the_source(tmp_path, monkeypatch):
    picture = draw(seed_network()["J"])
    target = tmp_path / "seed.svg"
    target.write_text("the previous picture")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz") as caught:
        picture.render(target)
    assert "picture.source" in str(caught.value)
    assert target.read_text() == "the previous picture"  # not half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed.svg"]
    assert picture.source.startswith("digraph")
    assert picture.render(tmp_path / "seed.dot").read_text(encoding="utf-8") == picture.source
    bundle = picture._repr_mimebundle_()
    assert "image/svg+xml" not in bundle and "install Graphviz" in bundle["text/plain"].replace("Install", "install")
    assert picture._repr_svg_() is None


@needs_dot
def test_the_python_examples_of_docs_graphs_md_run(tmp_path, monkeypatch):
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs" / "graphs.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 3
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:  # later blocks use the first one's network, as a reader would
        exec(compile(block, "docs/graphs.md", "exec"), namespace)
    picture = tmp_path / "where_they_part.svg"
    texts = {"".join(e.itertext()) for e in ElementTree.parse(picture).getroot().iter()
             if e.tag.endswith("text")}
    assert "first to differ in backward order" in texts
    assert "autogradLitePage(" in (tmp_path / "backprop.html").read_text(encoding="utf-8")
    assert len(namespace["page"].steps) > 30


def test_compare_takes_the_report_of_an_nn_model():
    from autograd_lite.check import compare_model
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((3, 5)), (rng.random((1, 5)) > 0.5) * 1.0
    model = ag.nn.MLP([3, 4, 1])
    J = ag.binary_cross_entropy(model(ag.Tensor(X, name="X")), ag.Tensor(Y, name="Y"),
                                fuse=False)  # from A[2], so that dA[2] is drawn too
    picture = draw(J, compare=compare_model(model, X, Y), layers_only=True)
    assert not picture.notes  # the model's W[l], b[l], Z[l], A[l] carry the report's names
    assert picture.source.count("of 4 gradients: 4 agree") == 2 and "#fcae91" not in picture.source


# --- a gradient passed on unchanged takes the colour of the one it equals ------------------------

def products(net):
    """W[l]·A[l-1] of eq 33, per layer: the unnamed left operand of the add that makes Z[l]."""
    return {l: net[f"Z{l}"].parents[0] for l in (1, 2)}


def fill_of(line):
    return re.search(r'fillcolor="(#\w+)"', line)[1]


def test_every_product_box_agrees_with_a_correct_derivation():
    # Z[l] = W[l]·A[l-1] + b[l] (eq 33): add hands dZ[l] to the product unchanged, so the box
    # d(W[l]·A[l-1]) is dZ[l] and the report's verdict on dZ[l] (eqs 78, 82) is its verdict
    net = seed_network()
    picture = draw(net["J"], backward=True, compare=seed_report(net))
    for l, product in products(net).items():
        line = node_line(picture.source, picture.key_of(product))
        assert 'fillcolor="#c7e9c0"' in line, line
        assert f"= dZ[{l}]: add passes it on unchanged (eq 33)" in line
        assert f"coloured as dZ[{l}]: the same array" in line


@pytest.mark.parametrize("variant, layer, failing", [
    ("g-prime-of-A", 1, {1}),      # dZ[1] wrong (eq 82): dZ[2] still agrees
    ("g-prime-of-A", 2, {1, 2}),   # dZ[2] wrong (eq 78), and layer 1 inherits it
    ("eq64", 1, {1}),              # dA[1] = dZ[2] W[2] does not type-check: dZ[1] has no value
])
def test_the_product_box_takes_the_verdict_of_its_dZ(variant, layer, failing):
    from autograd_lite import reference as ref
    net = seed_network()
    report = seed_report(net, ref.wrong_rules(variant, [layer]))
    picture = draw(net["J"], backward=True, compare=report)
    for l, product in products(net).items():
        dZ = node_line(picture.source, picture.key_of(net[f"Z{l}"]))
        line = node_line(picture.source, picture.key_of(product))
        assert fill_of(line) == fill_of(dZ), (l, line, dZ)
        assert (fill_of(line) == "#c7e9c0") == (l not in failing), (l, line)
        # the same array, not a second place where the derivations part
        assert "penwidth" not in line and "first to differ" not in line
        assert f"coloured as dZ[{l}]: the same array" in line
    # a collapsed layer still counts dZ[l] once: four gradients per layer (eqs 77-84)
    collapsed = draw(net["J"], backward=True, compare=report, layers_only=True).source
    assert collapsed.count("of 4 gradients") == 2


def test_an_add_that_broadcasts_the_product_does_not_pass_its_gradient_on_unchanged():
    # P = W·x is one column, broadcast over m columns by the add: its gradient is dZ summed
    # over axis 1 (eq 80), another array, so it keeps its own name and its own (no) colour
    rng = np.random.default_rng(4)
    W = ag.Tensor(rng.standard_normal((2, 3)), requires_grad=True, name="W")
    x = ag.Tensor(rng.standard_normal((3, 1)), name="x")
    B = ag.Tensor(rng.standard_normal((2, 4)), requires_grad=True, name="B")
    P = W @ x
    Z = (P + B).named("Z")
    picture = draw(Z.tanh().sum(), backward=True, compare={"dZ": 0.5, "dB": 0.0})
    Z_line = node_line(picture.source, picture.key_of(Z))
    P_line = node_line(picture.source, picture.key_of(P))
    B_line = node_line(picture.source, picture.key_of(B))
    assert fill_of(Z_line) == "#fcae91"
    assert fill_of(P_line) != "#fcae91" and "coloured as" not in P_line and "= dZ" not in P_line
    assert "dW = d(W·x)·xᵀ" in picture.source
    # B has Z's shape: the add passes it dZ unchanged, but B is a parameter with its own row
    assert fill_of(B_line) == "#c7e9c0" and "coloured as" not in B_line
    # and in the seed network, db[l] (Σ over axis 1 of dZ[l], eq 80) keeps its own verdict
    net = seed_network()
    seed = draw(net["J"], backward=True, compare={"dZ[1]": 0.5, "db[1]": 0.0})
    assert fill_of(node_line(seed.source, seed.key_of(net["b1"]))) == "#c7e9c0"
    assert fill_of(node_line(seed.source, seed.key_of(products(net)[1]))) == "#fcae91"


class _StraightThrough(ag.ops.Primitive):
    """A custom primitive whose vjp hands g on unchanged, and whose formula says so."""
    name = "straight_through"

    def forward(self, x):
        return np.round(x)

    def vjp(self, g, inputs, output, wants):
        return (g,)

    def formula(self, i, g, names, params, input_shapes):
        return g


def test_a_pass_through_is_read_from_the_vjp_formula_not_from_the_op_name():
    x = ag.Tensor(np.array([[0.2, 1.7], [2.4, -0.6]]), requires_grad=True, name="x")
    W = ag.Tensor(np.eye(2), requires_grad=True, name="W")
    straight, shaped, turned = (W @ x), (W @ x), (W @ x)
    R = _StraightThrough()(straight).named("R")
    S = shaped.reshape((2, 2)).named("S")      # "g reshaped back": not literally g
    T = turned.T.named("T")                    # "gᵀ"
    J = (R.sum() + S.sum() + T.sum()).named("J")
    for t in (R, S, T, straight, shaped, turned):
        t.retain_grad()
    J.backward(retain_graph=True)
    picture = draw(J, backward=True, compare={"dR": 0.5, "dS": 0.5, "dT": 0.5})
    line = lambda t: node_line(picture.source, picture.key_of(t))  # noqa: E731
    assert "= dR: straight_through passes it on unchanged" in line(straight)
    assert "coloured as dR" in line(straight) and fill_of(line(straight)) == "#fcae91"
    assert np.array_equal(straight.grad, R.grad)  # the engine agrees: the same array
    for product in (shaped, turned):
        assert "coloured as" not in line(product) and fill_of(line(product)) != "#fcae91"


def test_grad_colouring_also_colours_the_product_like_its_dZ():
    net = seed_network()
    for name in ("Z1", "A1", "Z2", "A2"):
        net[name].retain_grad()
    net["J"].backward(retain_graph=True)
    picture = draw(net["J"], backward=True, color="grad")
    for l, product in products(net).items():
        line = node_line(picture.source, picture.key_of(product))
        dZ = node_line(picture.source, picture.key_of(net[f"Z{l}"]))
        assert fill_of(line) == fill_of(dZ) != "#ffffff" and f"coloured as dZ[{l}]" in line


def test_cli_wrong_derivation_colours_the_product_of_the_layer_that_parts(tmp_path):
    from autograd_lite.cli import main
    out = tmp_path / "wrong.dot"
    assert main(["graph", "--seed", "0", "--backward", "--wrong", "g-prime-of-A",
                 "--wrong-layer", "1", "--output", str(out)]) == 0
    source = out.read_text(encoding="utf-8")
    boxes = {l: next(line for line in source.splitlines()
                     if f"= dZ[{l}]: add passes it on unchanged (eq 33)" in line) for l in (1, 2)}
    assert fill_of(boxes[1]) == "#fcae91" and fill_of(boxes[2]) == "#c7e9c0"


# --- names a learner recognises for tensors nobody named ----------------------------------------

def readme_network():
    """The README's ten lines up to J, read from README.md by scripts/reading_path.py."""
    spec = importlib.util.spec_from_file_location("reading_path", ROOT / "scripts" / "reading_path.py")
    reading_path = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reading_path)
    return reading_path.readme_step(backward=False)


def box_titles(source):
    return set(re.findall(r"label=<<[BI]>(.*?)</[BI]>", source))


def test_the_readme_network_shows_the_seed_names_nobody_gave():
    """README's ten lines name only W[l] and b[l]: the structure names X, Y, Z[l], A[l]
    (eqs 25, 33-34), the log-loss's constant 1 − Y, and no box is a bare number t14."""
    net = readme_network()
    titles = box_titles(draw(net["J"]).source)
    assert {"X", "Y", "Z[1]", "A[1]", "Z[2]", "A[2]", "1 − Y", "Y ∘ log(A[2])",
            "(1 − Y) ∘ log(1 − A[2])", "W[1]·X"} <= titles, titles
    assert not [t for t in titles if re.fullmatch(r"t\d+", t)]
    # inferred names read m like given ones, and place the tensors in their layers
    source = draw(net["J"]).source
    assert "3×m" in node_line(source, draw(net["J"]).key_of(net["X"]))
    assert "layers inferred from the seed's names" in source


def test_inferred_names_are_italic_and_never_taken_twice():
    net = readme_network()
    picture = draw(net["J"])
    assert "<I>A[1]</I>" in node_line(picture.source, picture.key_of(net["A1"]))
    # a user's own A[1] elsewhere: the structure does not give that name again
    rng = np.random.default_rng(1)
    W = ag.Tensor(rng.standard_normal((2, 2)), requires_grad=True, name="W[1]")
    b = ag.Tensor(rng.standard_normal((2, 1)), requires_grad=True, name="b[1]")
    X = ag.Tensor(rng.standard_normal((2, 3)))
    mine = ag.Tensor(rng.standard_normal((2, 3)), requires_grad=True, name="A[1]")
    J = ((W @ X + b).sigmoid() * mine).sum()
    titles = [t for t in re.findall(r"label=<<[BI]>(.*?)</[BI]>", draw(J).source)]
    assert titles.count("A[1]") == 1 and "Z[1]" in titles


def test_long_expressions_elide_their_longest_input_not_become_numbers():
    from autograd_lite.viz.walk import MAX_EXPRESSION
    net = readme_network()
    titles = box_titles(draw(net["J"]).source)
    assert "Y ∘ log(A[2]) + (1 − Y) ∘ log(1 − A[2])" in titles
    assert "mean(…)" in titles or "−mean(…)" in titles or "sum(…)" in titles, titles
    assert max(len(t) for t in titles) <= MAX_EXPRESSION


@pytest.mark.parametrize("build, shown", [
    (lambda a, b, c: (a @ b) + c, "a·b + c"),
    (lambda a, b, c: a - (b + c), "a − (b + c)"),
    (lambda a, b, c: (a - b) + c, "a − b + c"),
    (lambda a, b, c: (a + b) * c, "(a + b) ∘ c"),
    (lambda a, b, c: a / (b * c), "a / (b ∘ c)"),
    (lambda a, b, c: -(a + b), "−(a + b)"),
    (lambda a, b, c: (a * b) @ c, "(a ∘ b)·c"),
])
def test_expressions_carry_only_the_parentheses_they_need(build, shown):
    a, b, c = (ag.Tensor(np.ones((2, 2)) * (i + 2), requires_grad=True, name=n)
               for i, n in enumerate("abc"))
    y = build(a, b, c)
    picture = draw(y.sum())
    assert f"<I>{shown}</I>" in node_line(picture.source, picture.key_of(y))


def test_long_rules_and_notes_wrap_so_pictures_fit_a_readme_column():
    from autograd_lite.viz.emit import LONG_LINE, SMALL_PRINT_LINE
    net = readme_network()
    source = draw(net["J"], backward=True).source
    small = re.findall(r'<FONT POINT-SIZE="9" COLOR="#\w+">(.*?)</FONT>', source)
    assert small and max(len(line) for line in small) <= SMALL_PRINT_LINE
    # the rule into d(log(A[2])) is long: it breaks before its "="
    assert re.search(r"d\(log\(A\[2\]\)\)<BR/>= d\(", source)
    edge_lines = [part for label in re.findall(r"label=<([^>]*?)>\]", source) for part in label.split("<BR/>")]
    assert all(len(line) <= LONG_LINE or " = " not in line for line in edge_lines)


# --- what the picture says about the README's network (only W and b named) --------------------

def readme_network_on(net):
    """The README's ten lines on the arrays of ``net``: only W[l] and b[l] named; Z[l], A[l],
    X, Y and J are read off the structure (eq 1 with log, J a mean: eq 76)."""
    W1, b1, W2, b2 = (ag.Tensor(net[k].data, requires_grad=True, name=net[k].name)
                      for k in ("W1", "b1", "W2", "b2"))
    X, Y = ag.Tensor(net["X"].data), ag.Tensor(net["Y"].data)
    A1 = (W1 @ X + b1).sigmoid()
    A2 = (W2 @ A1 + b2).sigmoid()
    return -(Y * A2.log() + (1 - Y) * (1 - A2).log()).mean()


@needs_dot
def test_a_report_colours_the_inferred_names_and_marks_the_quantity_it_names_first():
    from autograd_lite import reference as ref
    net = seed_network(scopes=False)
    report = seed_report(net, ref.wrong_rules("g-prime-of-A", [2]))  # parts at dZ[2] (eq 78)
    assert report.first_failure.label == "dZ[2]"
    J = readme_network_on(net)
    source = draw(J, backward=True, compare=report).source
    boxes = {}
    for line in source.splitlines():
        title = re.search(r"label=<<[BI]>([^<]+)</[BI]>", line)
        if title and "fillcolor" in line:
            boxes[title.group(1)] = line
    for name in ("dA[2]", "dZ[2]", "dA[1]", "dZ[1]", "dW[2]", "db[1]"):
        assert "#c7e9c0" in boxes[name] or "#fcae91" in boxes[name], name  # coloured, not blank
    assert "#c7e9c0" in boxes["dA[2]"] and "#fcae91" in boxes["dZ[2]"]
    thick = [name for name, line in boxes.items() if "penwidth=3" in line]
    assert thick == ["dZ[2]"]
    assert "first to differ in backward order" in boxes["dZ[2]"]
    assert "no tensor named" not in source


def test_a_mean_is_labelled_by_what_it_divides_by():
    rng = np.random.default_rng(0)
    X = ag.Tensor(rng.standard_normal((3, 5)), name="X")
    W = ag.Tensor(rng.standard_normal((4, 3)), requires_grad=True, name="W[1]")
    Z = W @ X                                                     # 4 units x m = 5 samples
    cases = {
        "samples": (Z.mean(axis=1), "/ m, the 5 samples: eq 76's 1/m"),
        "units": (Z.mean(axis=0), "/ n, the 4 units of axis 0 (not eq 76's m)"),
        "all": (Z.mean(), "/ n·m, all 20 elements (not eq 76's m)"),
        "one unit": ((ag.Tensor(rng.standard_normal((1, 3)), requires_grad=True, name="W[2]")
                      @ X).mean(), "/ m, the 5 samples: eq 76's 1/m"),
    }
    for case, (mean, words) in cases.items():
        forward, backward = draw(mean.sum()).source, draw(mean.sum(), backward=True).source
        assert words in forward and words in backward, case
    assert "eq 76's 1/m" not in draw(Z.mean(axis=0).sum()).source
    # LayerNorm's mean over the features of each sample divides by the features, not by m
    norm = ag.nn.LayerNorm(4)
    source = draw(norm(Z).sum()).source
    assert "/ n, the 4 units of axis 0 (not eq 76's m)" in source and "eq 76's 1/m" not in source


@needs_dot
def test_names_are_drawn_as_given():
    names = ["\\Gamma", "<b>bold</b>", "a \"q\" 'q'", "θ & 名前", "\\N \\G"]
    tensors = [ag.Tensor(np.ones((2, 2)), requires_grad=True, name=n) for n in names]
    J = tensors[0]
    for t in tensors[1:]:
        J = J + t
    svg = draw(J.sum()).pipe("svg").decode("utf-8")
    texts = [ElementTree.fromstring(svg).iter()]
    shown = {el.text for el in ElementTree.fromstring(svg).iter() if el.tag.endswith("text")}
    assert set(names) <= shown, set(names) - shown
    assert "autograd_lite" not in " ".join(t for t in shown if t)  # \G is not the graph's name


@needs_dot
def test_xlogy_says_what_it_is_and_cites_eq_1():
    A = ag.Tensor(np.full((1, 4), 0.3), requires_grad=True, name="P")
    J = ag.binary_cross_entropy(A, np.array([[0.0, 1.0, 1.0, 0.0]]))
    source = draw(J).source
    assert "x log y, and 0 where x is 0: eq 1's terms" in source
    assert "xlogy(y, a) is y log(a), and 0 where y is 0 (eq 1)" in draw(J, backward=True).source


def test_a_constant_that_divides_by_the_samples_says_it_is_m():
    net = seed_network()                                  # J = -(...).sum() / m, m = 5
    picture = draw(net["J"])
    assert "<B>m = 5</B>" in picture.source or "<I>m = 5</I>" in picture.source
    assert "/ m" in draw(net["J"], backward=True).source

"""The stepping page (autograd_lite.viz.page), read as data: what each step says and holds.

The browser tests (test_page_browser.py) drive the same page in Chromium; these check what it
is built from. The page computes every gradient itself, with the vjps ``backward()`` runs, so
each test compares its numbers with an independent ``J.backward()``.
"""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd_lite as ag
from autograd_lite.cli import main
from autograd_lite.viz import draw
from autograd_lite.viz.page import MAX_EMBEDDED, build

from test_viz import seed_network, seed_report

pytestmark = pytest.mark.skipif(shutil.which("dot") is None,
                                reason="Graphviz `dot` is not installed (.ci/run installs it)")


def values_of(entry):
    return np.array([float(x) for x in entry["data"]]).reshape(entry["shape"])


def backward_grads(net):
    """The gradients of J by the engine itself, every Z[l] and A[l] included."""
    for name in ("Z1", "A1", "Z2", "A2"):
        net[name].retain_grad()
    net["J"].backward(retain_graph=True)


def tensor_index(page, name):
    return next(k for k, t in enumerate(page.data["tensors"]) if t["name"] == name)


def step_computing(page, gradient_name):
    return [s for s in page.steps if s["phase"] == "backward" and s.get("quantity") == gradient_name
            and s.get("equation") is not None]


def test_forward_steps_follow_eqs_26_to_29_op_by_op():
    net = seed_network()
    page = draw(net["J"]).page()
    forward = [s for s in page.steps if s["phase"] == "forward"]
    assert page.steps[0]["phase"] == "start"
    titles = [s["title"] for s in forward]
    assert titles[0] == "Forward 1 of 15: W[1]·X"
    assert "Z[1] = W[1]·X + b[1]" in titles[1]
    assert titles[2].endswith("A[1] = sigmoid(Z[1])")
    assert forward[2]["rule"] == "sigmoid · eqs 7, 34"
    assert "broadcasts b[1] 4×1 (eqs 30-33)" in forward[1]["rule"]
    # each forward step shows its inputs and its result, the result equal to the tensor's data
    a1 = tensor_index(page, "A[1]")
    assert forward[2]["current"] == f"t{a1}"
    result = forward[2]["arrays"][-1]
    assert result["result"] and result["tensor"] == a1
    np.testing.assert_allclose(values_of(page.data["tensors"][a1]["value"]), net["A1"].data)


def test_backward_steps_give_the_gradients_backward_gives():
    net = seed_network()
    page = draw(net["J"]).page()
    backward_grads(net)
    for name, key in (("W[1]", "W1"), ("b[1]", "b1"), ("W[2]", "W2"), ("b[2]", "b2"),
                      ("Z[1]", "Z1"), ("A[1]", "A1"), ("Z[2]", "Z2"), ("A[2]", "A2")):
        entry = page.data["tensors"][tensor_index(page, name)]
        np.testing.assert_allclose(values_of(entry["grad"]), net[key].grad, rtol=1e-12, atol=1e-15)
    # the last step lists every parameter's gradient
    end = page.steps[-1]
    assert end["phase"] == "end"
    assert {a["label"] for a in end["arrays"]} == {"dW[1]", "db[1]", "dW[2]", "db[2]"}


def test_each_backward_step_shows_the_rule_the_picture_prints():
    net = seed_network()
    page = draw(net["J"]).page()
    (dW1,) = step_computing(page, "dW[1]")
    assert dW1["rule"] == "dW[1] = dZ[1]·Xᵀ\n(eq 83)"
    assert dW1["equation"]["number"] == 83 and dW1["equation"]["rule"] == "dW[1] = (1/m) dZ[1] Xᵀ"
    assert dW1["arrays"][0]["label"] == "dZ[1] (coming in)"
    (dZ2,) = step_computing(page, "dZ[2]")
    assert dZ2["rule"] == "dZ[2] = dA[2] ∘ A[2](1 − A[2])\n(eq 78)"
    # eq 84: the bias gradient is the vjp's result summed over the samples, shown both ways
    (db1,) = step_computing(page, "db[1]")
    assert db1["rule"] == "db[1] = Σ over axis 1 of dZ[1]\n(eq 84)"
    before = next(a for a in db1["arrays"] if a["role"] == "product")
    assert before["label"].startswith("= their product, before the sum over axis 1")
    np.testing.assert_allclose(values_of(before["array"]).sum(axis=1, keepdims=True),
                               values_of(db1["arrays"][-1]["array"]))
    assert f"ub" in db1["highlight"][1]


def test_the_running_sum_where_two_contributions_meet():
    """The log-loss uses A[2] twice (log(A[2]) and 1 − A[2]): dA[2] is the sum of two
    contributions, the first shown as a running sum, the second completing it."""
    net = seed_network()
    page = draw(net["J"]).page()
    backward_grads(net)
    steps = [s for s in page.steps if s["phase"] == "backward" and "to dA[2]" in json.dumps(s, ensure_ascii=False)]
    assert [s["title"].split(": ", 1)[1] for s in steps] == [
        "sub vjp gives dA[2] (contribution 1 of 2)", "log vjp gives dA[2] (contribution 2 of 2)"]
    first, second = ([a for a in s["arrays"] if a["label"].startswith(("running", "dA[2] ="))][0]
                     for s in steps)
    assert first["label"] == "running sum of dA[2] so far (1 of 2)"
    assert second["label"] == "dA[2] = sum of 2 contributions"
    contributions = [values_of(next(a for a in s["arrays"] if "contribution" in a["role"])["array"])
                     for s in steps]
    np.testing.assert_allclose(values_of(first["array"]), contributions[0])
    np.testing.assert_allclose(values_of(second["array"]), contributions[0] + contributions[1])
    np.testing.assert_allclose(values_of(second["array"]), net["A2"].grad, rtol=1e-12)
    # the second step also shows what it adds to: the sum so far
    so_far = next(a for a in steps[1]["arrays"] if a["label"] == "dA[2] so far (1 of 2)")
    np.testing.assert_allclose(values_of(so_far["array"]), contributions[0])


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 4), m=st.integers(1, 4), shared=st.booleans(), seed=st.integers(0, 99))
def test_page_gradients_equal_backward_on_random_graphs(n, m, shared, seed):
    """Broadcasting (a bias column, a row, a scalar), a tensor used twice or three times:
    whatever the page sums, it sums as backward() does."""
    rng = np.random.default_rng(seed)
    W = ag.Tensor(rng.standard_normal((n, n)), requires_grad=True, name="W")
    b = ag.Tensor(rng.standard_normal((n, 1)), requires_grad=True, name="b")
    r = ag.Tensor(rng.standard_normal((1, m)), requires_grad=True, name="r")
    s = ag.Tensor(rng.standard_normal(()), requires_grad=True, name="s")
    X = ag.Tensor(rng.standard_normal((n, m)), name="X")
    H = (W @ X + b) * r
    H = H * H.tanh() + s if shared else (H - s).exp()
    J = (H * H).mean() + H.sum() * 0.5
    page = draw(J).page()
    J.backward(retain_graph=True)
    for tensor in (W, b, r, s):
        entry = page.data["tensors"][tensor_index(page, tensor.name)]
        np.testing.assert_allclose(values_of(entry["grad"]), tensor.grad, rtol=1e-10, atol=1e-12)


def test_the_page_is_self_contained_and_opens_from_disk(tmp_path):
    net = seed_network()
    path = draw(net["J"]).save(tmp_path / "backprop.html")
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    # nothing is fetched: no external script, style sheet, image or frame
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)
    assert "@import" not in html and "url(http" not in html
    urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls  # XML namespaces
    assert html.count("<svg") == 2  # forward and backward
    # the data block parses and holds every step
    data = re.search(r'<script type="application/json" class="ag-data">(.*?)</script>', html, re.S)
    assert len(json.loads(data.group(1))["steps"]) == len(draw(net["J"]).page().steps)


def test_names_that_look_like_markup_stay_text(tmp_path):
    x = ag.Tensor(np.ones((2, 2)), requires_grad=True, name="</script><b>x")
    y = (x * 2).sum()  # held: a picture holds its root weakly
    page = draw(y).page()
    html = page.html
    assert "</script><b>x" not in html.split('class="ag-data">', 1)[1].split("</script>", 1)[0]
    assert page.data["tensors"][0]["name"] == "</script><b>x"


def test_a_comparison_report_gives_a_toggle_and_says_where_derivations_part():
    from autograd_lite import reference as ref
    net = seed_network()
    report = seed_report(net, ref.wrong_rules("g-prime-of-A", [2]))
    page = draw(net["J"], backward=True, compare=report).page()
    assert page.data["compare"] is True
    assert set(page.svgs) == {"forward", "forward-compare", "backward", "backward-compare"}
    assert 'class="ag-compare"' in page.html
    (dZ2,) = step_computing(page, "dZ[2]")
    assert "first to differ" in dZ2["compare"] and dZ2["compareState"] == "differ"
    (dA2_last,) = [s for s in step_computing(page, "dA[2]") if "2 of 2" in s["title"]]
    assert dA2_last["compareState"] == "agree"
    # without a report there is no toggle
    plain = draw(net["J"]).page()
    assert 'class="ag-compare"' not in plain.html and plain.data["compare"] is False


def test_big_arrays_are_described_not_cut_silently():
    x = ag.Tensor(np.arange(MAX_EMBEDDED + 1.0), requires_grad=True, name="x")
    y = (x * 1.0).sum()
    page = draw(y).page()
    entry = page.data["tensors"][tensor_index(page, "x")]["value"]
    assert "data" not in entry and f"{MAX_EMBEDDED + 1} elements" in entry["omitted"]


def test_nan_and_infinity_are_written_as_javascript_reads_them():
    with np.errstate(divide="ignore", invalid="ignore"):
        x = ag.Tensor(np.array([0.0, 1.0, -1.0]), requires_grad=True, name="x")
        y = (x.log() * 1.0).sum()
        page = draw(y).page()
    value = page.data["tensors"][tensor_index(page, "log(x)")]["value"]["data"]
    assert value[0] == "-Infinity" and value[1] == 0.0 and value[2] == "NaN"
    json.loads(json.dumps(page.data, allow_nan=False))  # strict JSON


def test_a_page_can_be_made_after_backward():
    """Walking the graph never fails: after backward() (which frees only the saved arrays)
    the page has the same steps and values."""
    net = seed_network()
    picture = draw(net["J"])
    before = picture.page().data
    net["J"].backward()
    after = picture.page().data
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)


def test_a_tensor_without_gradient_gets_a_forward_only_page():
    x = ag.Tensor(np.ones((2, 3)), name="x")
    y = (x * 2).sum()  # nothing requires a gradient: nothing is recorded, y is a leaf
    page = draw(y).page()
    assert [s["phase"] for s in page.steps] == ["start"]
    assert set(page.svgs) == {"forward"}


def test_notebook_shows_the_stepping_page_inline():
    net = seed_network()
    picture = draw(net["J"])
    bundle = picture._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]
    assert "autogradLitePage(" in bundle["text/html"] and "<!DOCTYPE" not in bundle["text/html"]
    # two pages in one notebook do not share ids
    other_net = seed_network(seed=1)
    other = draw(other_net["J"])
    first_id = re.search(r'class="ag-page" id="(\w+)"', bundle["text/html"]).group(1)
    assert f'id="{first_id}"' not in other._repr_html_()


def test_save_by_suffix_and_the_command_line(tmp_path, capsys):
    net = seed_network()
    picture = draw(net["J"])
    assert picture.save(tmp_path / "seed.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert main(["graph", "--output", str(tmp_path / "backprop.html")]) == 0
    assert "wrote" in capsys.readouterr().out
    html = (tmp_path / "backprop.html").read_text(encoding="utf-8")
    assert "autogradLitePage(" in html and "dW[1] = dZ[1]·Xᵀ" in html
    assert main(["graph", "--output", str(tmp_path / "x.txt")]) == 2
    assert ".html" in capsys.readouterr().err


def test_page_of_a_dead_root_is_refused():
    picture = draw(seed_network()["J"])
    import gc
    gc.collect()
    with pytest.raises(RuntimeError, match="has been garbage collected"):
        picture.page()
    assert picture._repr_html_() is None  # the notebook falls back to the SVG


def test_a_notebook_shows_the_svg_of_a_graph_too_big_to_step_through():
    x = ag.Tensor(np.ones(3), requires_grad=True, name="x")
    y = x
    for _ in range(250):  # 501 tensors
        y = y * 1.0
    J = y.sum()
    picture = draw(J, max_nodes=None)
    assert picture._repr_html_() is None
    assert len(picture.page().steps) > 500  # a file may still hold it
    assert "<svg" in picture._repr_mimebundle_()["image/svg+xml"]
    assert "text/html" not in picture._repr_mimebundle_()


def test_no_box_defines_itself_by_its_own_name():
    """An unnamed tensor's name is its expression: its box says how it was made only where
    that says more ("xlogy(Y, A[2]) = xlogy(Y, A[2])" says nothing)."""
    A = ag.Tensor(np.full((1, 4), 0.3), requires_grad=True, name="A[2]")
    J = ag.binary_cross_entropy(A, np.array([[0.0, 1.0, 1.0, 0.0]]))
    for tensors in (build(J).data["tensors"], build(seed_network()["J"]).data["tensors"]):
        assert all(entry["definition"] != entry["name"] for entry in tensors)
        assert any(entry["definition"] for entry in tensors)


def test_a_gradient_is_shown_only_from_the_step_that_computes_it():
    page = build(seed_network()["J"])
    steps = page.steps
    first_backward = next(i for i, step in enumerate(steps) if step["phase"] == "backward")
    with_grads = [entry for entry in page.data["tensors"] if entry["grad"] is not None]
    assert {entry["name"] for entry in with_grads} >= {"W[1]", "b[1]", "W[2]", "b[2]", "Z[1]"}
    for entry in with_grads:
        at = entry["gradStep"]
        # the step that completes it: backward, after every forward step, naming it
        assert at >= first_backward and steps[at].get("quantity") == entry["gradName"]


def test_a_hand_derivation_of_any_graph_colours_the_page_where_it_parts():
    """check.compare_derivation's report (any graph, any hand rule) reads like check.compare's:
    the step where the hand derivation first parts shows its values beside autodiff's and what
    the report says went wrong."""
    from autograd_lite import check
    net = seed_network()
    m = net["X"].shape[1]
    hand = {"dZ[2]": lambda v: 1.1 * (v["A[2]"] - v["Y"]) / m,         # eq 78, 10 % too large
            "dW[2]": lambda v: (v["A[2]"] - v["Y"]) @ v["A[1]"].T / m}  # eq 79, right
    report = check.compare_derivation(net["J"], hand, m=m)
    page = build(net["J"], compare=report)
    (first,) = [s for s in page.steps if "handBeside" in s]
    assert first["quantity"] == "dZ[2]" and "first to differ" in first["compare"]
    assert "1.1 times" in first["explanation"]
    np.testing.assert_allclose(values_of(first["handBeside"]["hand"]),
                               1.1 * values_of(first["handBeside"]["autodiff"]), rtol=1e-12)
    (dW2,) = [s for s in page.steps if s.get("quantity") == "dW[2]" and "compare" in s]
    assert dW2["compareState"] == "agree"


def multiplied_out(step):
    """(the product of a step's shown factors, the product it shows), from its data."""
    roles = {a["role"]: a for a in step["arrays"]}
    factor = next(a for a in step["arrays"] if a["role"] == "factor")
    product = next(a for a in step["arrays"] if "product" in a["role"].split())
    g, F = values_of(roles["incoming"]["array"]), values_of(factor["array"])
    expected = {"g∘F": lambda: g * F, "g·F": lambda: g @ F, "F·g": lambda: F @ g}[factor["form"]]()
    return np.broadcast_to(expected, values_of(product["array"]).shape), values_of(product["array"])


@settings(max_examples=20, deadline=None)
@given(depth=st.integers(1, 4), width=st.integers(1, 5), m=st.integers(1, 6),
       activation=st.sampled_from(["sigmoid", "tanh", "relu"]), seed=st.integers(0, 99))
def test_every_step_of_any_seed_network_names_its_equation_and_multiplies_out(
        depth, width, m, activation, seed):
    """Any depth N: dA[N] is eq 77, dZ[N] 78, dW[N] 79, db[N] 80, a hidden layer's 81-84
    (66-73 when m = 1); and every factor shown multiplies out to the product shown."""
    rng = np.random.default_rng(seed)
    sizes = [3] + [width] * (depth - 1) + [1]
    X, Y = ag.Tensor(rng.standard_normal((3, m))), ag.Tensor((rng.random((1, m)) > 0.5) * 1.0)
    A = X
    for l in range(1, depth + 1):
        W = ag.Tensor(rng.standard_normal((sizes[l], sizes[l - 1])), requires_grad=True, name=f"W[{l}]")
        b = ag.Tensor(rng.standard_normal((sizes[l], 1)), requires_grad=True, name=f"b[{l}]")
        Z = W @ A + b
        A = Z.sigmoid() if l == depth else getattr(Z, activation)()
    J = -(Y * A.log() + (1 - Y) * (1 - A).log()).mean()
    page = build(J)
    table = ({"dA": (77, 81), "dZ": (78, 82), "dW": (79, 83), "db": (80, 84)} if m > 1 else
             {"dA": (66, 70), "dZ": (67, 71), "dW": (68, 72), "db": (69, 73)})
    seen = set()
    for step in page.steps:
        if step["phase"] != "backward" or "equation" not in step:
            continue
        match = re.fullmatch(r"(dA|dZ|dW|db)\[(\d+)\]", step["quantity"])
        if match:
            layer = int(match.group(2))
            assert step["equation"]["number"] == table[match.group(1)][layer < depth], step["quantity"]
            seen.add(step["quantity"])
        expected, shown = multiplied_out(step)
        np.testing.assert_allclose(expected, shown, rtol=1e-12, atol=1e-12 * np.abs(shown).max())
    assert seen == {f"d{q}[{l}]" for q in "AZWb" for l in range(1, depth + 1)}


def test_one_sample_page_reads_in_the_one_sample_equations():
    """m = 1: Y is still Y, 1 − Y still 1 − Y (one number each), the steps cite eqs 66-73, and
    dz[2] stands beside the seed's a[2] − y."""
    rng = np.random.default_rng(3)
    X, Y = ag.Tensor(rng.standard_normal((3, 1))), ag.Tensor([[1.0]])
    W1 = ag.Tensor(rng.standard_normal((4, 3)), requires_grad=True, name="W[1]")
    b1 = ag.Tensor(np.zeros((4, 1)), requires_grad=True, name="b[1]")
    W2 = ag.Tensor(rng.standard_normal((1, 4)), requires_grad=True, name="W[2]")
    b2 = ag.Tensor(np.zeros((1, 1)), requires_grad=True, name="b[2]")
    A2 = (W2 @ (W1 @ X + b1).sigmoid() + b2).sigmoid()
    J = -(Y * A2.log() + (1 - Y) * (1 - A2).log()).mean()
    page = build(J)
    names = {entry["name"] for entry in page.data["tensors"]}
    assert {"X", "Y", "1 − Y", "A[2]", "J"} <= names
    (dZ2,) = step_computing(page, "dZ[2]")
    assert dZ2["equation"]["number"] == 67 and "dz[2] = a[2] − y" in dZ2["simplified"]["text"]
    np.testing.assert_allclose(values_of(dZ2["simplified"]["array"]), A2.data - 1.0, rtol=1e-12)
    (db1,) = step_computing(page, "db[1]")
    assert db1["equation"]["number"] == 73 and db1["equation"]["rule"] == "db[1] = dz[1]"

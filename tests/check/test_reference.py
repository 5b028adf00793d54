"""The hand derivation (eqs 33-34, 76-84) against central finite differences of J, in float64.

The reference is the witness every other check leans on, so it is tested on its own, with no
engine involved: for any depth, activation, loss and m (including m = 1), each dW[l], db[l]
(eqs 79-80, 83-84) and each dJ/dZ[l], dJ/dA[l] (eqs 77-78, 81-82) must match
the five-point central difference of J element by element.
"""

import ast
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from autograd_lite import reference as ref

EPS = 1e-6
# The five-point stencil errs by O(eps^4) plus rounding ~ 1e-16 / eps ~ 1e-10.
RTOL, ATOL = 1e-6, 1e-8


def numeric_gradient(J, x: np.ndarray, steps=None) -> np.ndarray:
    """Five-point central differences of the scalar J() with respect to every element of x
    (perturbed in place): (J(-2h) - 8 J(-h) + 8 J(h) - J(2h)) / 12h, h = EPS unless ``steps``
    gives one per element."""
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        h = EPS if steps is None else steps[index]
        saved = x[index]
        values = []
        for step in (-2 * h, -h, h, 2 * h):
            x[index] = saved + step
            values.append(J())
        x[index] = saved
        grad[index] = (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * h)
    return grad


def numeric_gradient_of_intermediate(W, b, X, Y, activations, loss, kind, layer):
    """dJ/dZ[layer] or dJ/dA[layer] by perturbing that intermediate in the forward pass.

    A[N] under a log must stay inside (0, 1) (or above 0 for cross-entropy): the step there is
    at most 1/100 of the distance to the edge, so a probability of 1e-7 is not pushed negative.
    """
    Z, A = ref.forward(W, b, X, activations)
    delta = np.zeros_like((Z if kind == "Z" else A)[layer])
    steps = None
    if kind == "A" and layer == len(W) and loss != "mse":
        room = A[layer] if loss == "cross-entropy" else np.minimum(A[layer], 1 - A[layer])
        steps = np.minimum(EPS, room / 100)
    return numeric_gradient(
        lambda: ref.J_of(W, b, X, Y, activations, loss, perturb={(kind, layer): delta}), delta,
        steps)


def assert_matches_finite_differences(W, b, X, Y, activations, loss):
    d = ref.derive(W, b, X, Y, activations, loss)
    J = lambda: ref.J_of(W, b, X, Y, activations, loss)  # noqa: E731 - reads W, b in place
    for l in range(1, d.N + 1):
        np.testing.assert_allclose(d.dW[l], numeric_gradient(J, W[l - 1]), rtol=RTOL, atol=ATOL,
                                   err_msg=f"dW[{l}] (eq {ref.equation_of('dW', l, d.N)})")
        np.testing.assert_allclose(d.db[l], numeric_gradient(J, b[l - 1]), rtol=RTOL, atol=ATOL,
                                   err_msg=f"db[{l}] (eq {ref.equation_of('db', l, d.N)})")
        for quantity, kind in (("dZ", "Z"), ("dA", "A")):
            numeric = numeric_gradient_of_intermediate(W, b, X, Y, activations, loss, kind, l)
            np.testing.assert_allclose(
                d.dJ(quantity, l), numeric, rtol=RTOL, atol=ATOL,
                err_msg=f"{quantity}[{l}] (eq {ref.equation_of(quantity, l, d.N)})")


OUTPUTS_OF = {"log-loss": ["sigmoid"], "mse": ["sigmoid", "tanh", "relu", "identity"],
              "cross-entropy": ["softmax"]}


@st.composite
def networks(draw):
    loss = draw(st.sampled_from(sorted(OUTPUTS_OF)))
    depth = draw(st.integers(1, 4))
    hidden = draw(st.lists(st.sampled_from(["sigmoid", "tanh", "relu", "identity"]),
                           min_size=depth - 1, max_size=depth - 1))
    output = draw(st.sampled_from(OUTPUTS_OF[loss]))
    n_out = draw(st.integers(2, 3)) if loss == "cross-entropy" else draw(st.integers(1, 3))
    layers = [draw(st.integers(1, 4)) for _ in range(depth)] + [n_out]
    m = draw(st.sampled_from([1, 2, 3, 5]))
    seed = draw(st.integers(0, 2**16))
    return layers, hidden + [output], m, loss, seed


@settings(max_examples=40, deadline=None)
@given(networks())
def test_every_gradient_matches_finite_differences(network):
    layers, activations, m, loss, seed = network
    W, b, X, Y = ref.random_problem(layers, activations, m, loss, seed)
    assert_matches_finite_differences(W, b, X, Y, activations, loss)


@pytest.mark.parametrize("layers, activations, loss", [
    ([3, 4, 1], ["sigmoid", "sigmoid"], "log-loss"),           # the seed's 3-4-1 network
    ([2, 3, 3, 2, 1], ["tanh", "relu", "sigmoid", "sigmoid"], "log-loss"),
    ([3, 5, 4], ["relu", "softmax"], "cross-entropy"),
    ([2, 4, 2], ["tanh", "identity"], "mse"),                 # regression, note after eq 38
    ([3, 4, 2], ["sigmoid", "softmax"], "log-loss"),           # multi-label probabilities
])
@pytest.mark.parametrize("m", [1, 4])
def test_named_networks_match_finite_differences(layers, activations, loss, m):
    W, b, X, Y = ref.random_problem(layers, activations, m, loss, seed=7)
    assert_matches_finite_differences(W, b, X, Y, activations, loss)


def test_one_unit_by_hand():
    # z = w x + b, a = z (identity), L = (a - y)^2: dW = 2 (a - y) x, db = 2 (a - y) for m = 1.
    W, b, X, Y = [np.array([[3.0]])], [np.array([[0.5]])], np.array([[2.0]]), np.array([[1.0]])
    d = ref.derive(W, b, X, Y, ["identity"], "mse")
    assert d.Z[1][0, 0] == 6.5 and d.J == 5.5**2
    assert d.dA[1][0, 0] == 11.0 and d.dZ[1][0, 0] == 11.0
    assert d.dW[1][0, 0] == 22.0 and d.db[1][0, 0] == 11.0


def test_seed_shapes_of_the_3_4_1_network():
    W, b, X, Y = ref.random_problem([3, 4, 1], ["sigmoid", "sigmoid"], 5, seed=1)
    d = ref.derive(W, b, X, Y, ["sigmoid", "sigmoid"])
    # eqs 35-38 and 51-53: every gradient has the shape of what it differentiates.
    assert [d.Z[l].shape for l in (1, 2)] == [(4, 5), (1, 5)]
    assert [d.dW[l].shape for l in (1, 2)] == [(4, 3), (1, 4)]
    assert [d.db[l].shape for l in (1, 2)] == [(4, 1), (1, 1)]
    assert d.A[0] is d.X and d.W[0] is None and d.dA[0] is None
    assert list(d.quantities())[:5] == [("dA", 2, 77), ("dZ", 2, 78), ("dW", 2, 79),
                                        ("db", 2, 80), ("dA", 1, 81)]


def test_sigmoid_log_loss_output_is_A_minus_Y_per_sample():
    # The note under eq 84: eqs 77-78 chained give dZ[N] = A[N] - Y, per sample.
    W, b, X, Y = ref.random_problem([3, 4, 2], ["tanh", "sigmoid"], 6, seed=2)
    d = ref.derive(W, b, X, Y, ["tanh", "sigmoid"])
    np.testing.assert_allclose(d.dZ[2], d.A[2] - Y, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activations, loss", [
    (["relu", "sigmoid"], "log-loss"), (["tanh", "softmax"], "cross-entropy")])
@pytest.mark.parametrize("convention", ref.CONVENTIONS)
def test_simplified_output_equals_the_chained_one(activations, loss, convention):
    W, b, X, Y = ref.random_problem([3, 4, 3], activations, 5, loss, seed=3)
    chained = ref.derive(W, b, X, Y, activations, loss, convention=convention)
    simplified = ref.derive(W, b, X, Y, activations, loss, convention=convention, simplify=True)
    for quantity, l, _ in chained.quantities():
        np.testing.assert_allclose(getattr(simplified, quantity)[l], getattr(chained, quantity)[l],
                                   rtol=1e-10, atol=1e-13)


def test_simplify_refuses_pairs_without_a_closed_form():
    W, b, X, Y = ref.random_problem([2, 2], ["identity"], 3, "mse")
    with pytest.raises(ValueError, match="simplify=True needs a sigmoid output"):
        ref.derive(W, b, X, Y, ["identity"], "mse", simplify=True)


@settings(max_examples=20, deadline=None)
@given(networks())
def test_both_conventions_give_the_same_dW_db_and_dZ_differs_by_m(network):
    layers, activations, m, loss, seed = network
    W, b, X, Y = ref.random_problem(layers, activations, m, loss, seed)
    seed_d = ref.derive(W, b, X, Y, activations, loss, convention="seed")
    auto_d = ref.derive(W, b, X, Y, activations, loss, convention="autodiff")
    for l in range(1, seed_d.N + 1):
        np.testing.assert_allclose(auto_d.dW[l], seed_d.dW[l], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(auto_d.db[l], seed_d.db[l], rtol=1e-12, atol=1e-15)
        for quantity in ("dA", "dZ"):
            np.testing.assert_allclose(getattr(auto_d, quantity)[l],
                                       getattr(seed_d, quantity)[l] / m, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(auto_d.dJ(quantity, l), seed_d.dJ(quantity, l),
                                       rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(auto_d.per_sample(quantity, l),
                                       seed_d.per_sample(quantity, l), rtol=1e-12, atol=1e-15)


# ---- deliberately wrong derivations ----------------------------------------------------------

@pytest.mark.parametrize("convention", ref.CONVENTIONS)
def test_forgetting_one_over_m_scales_dW_and_db_by_m(convention):
    activations = ["tanh", "sigmoid"]
    W, b, X, Y = ref.random_problem([3, 4, 1], activations, 5, seed=4)
    right = ref.derive(W, b, X, Y, activations, convention=convention)
    wrong = ref.derive(W, b, X, Y, activations, convention=convention,
                       rules=ref.wrong_rules("no-1/m"))
    for l in (1, 2):
        np.testing.assert_allclose(wrong.dW[l], 5 * right.dW[l], rtol=1e-12)
        np.testing.assert_allclose(wrong.db[l], 5 * right.db[l], rtol=1e-12)
    assert "1/m" in wrong.rules.wrong


def test_eq55_does_not_type_check_and_says_why():
    activations = ["sigmoid", "sigmoid"]
    W, b, X, Y = ref.random_problem([3, 4, 1], activations, 5, seed=5)
    with pytest.raises(ref.ShapeClash) as caught:
        ref.derive(W, b, X, Y, activations, rules=ref.wrong_rules("eq55"))
    clash = caught.value
    assert (clash.quantity, clash.layer, clash.equation) == ("dW", 2, 79)
    assert clash.shapes == {"dZ[2]": (1, 5), "A[1]": (4, 5)}
    message = str(clash)
    for part in ("eq 55", "dZ[2] is 1 x 5", "A[1] is 4 x 5", "5 != 4", "eq 59", "A[1]^T"):
        assert part in message, (part, message)


def test_eq55_type_checks_by_accident_when_m_equals_n_prev_and_is_then_just_wrong():
    # dZ[1] (4 x 3) A[0] (3 x 3): the shapes line up when m = n[0], the numbers do not.
    activations = ["sigmoid", "sigmoid"]
    W, b, X, Y = ref.random_problem([3, 4, 1], activations, 3, seed=6)
    right = ref.derive(W, b, X, Y, activations)
    wrong = ref.derive(W, b, X, Y, activations, rules=ref.wrong_rules("eq55", layers=[1]))
    assert wrong.dW[1].shape == right.dW[1].shape
    assert not np.allclose(wrong.dW[1], right.dW[1])
    np.testing.assert_array_equal(wrong.dW[2], right.dW[2])  # layer 2 kept the seed's rule


@pytest.mark.parametrize("variant, quantity, layer, seed_eq, corrected", [
    ("eq50", "dZ", 2, "eq 50", "eq 54"),
    ("eq64", "dA", 1, "eq 64", "eq 65"),
    ("no-transpose-65", "dA", 1, "eq 65 without its transpose", "eq 65"),
])
def test_the_seeds_wrong_equations_clash_on_the_3_4_1_network(variant, quantity, layer,
                                                              seed_eq, corrected):
    activations = ["sigmoid", "sigmoid"]
    W, b, X, Y = ref.random_problem([3, 4, 1], activations, 5, seed=8)
    with pytest.raises(ref.ShapeClash, match="does not type-check") as caught:
        ref.derive(W, b, X, Y, activations, rules=ref.wrong_rules(variant))
    assert (caught.value.quantity, caught.value.layer) == (quantity, layer)
    assert seed_eq in str(caught.value) and corrected in str(caught.value)


def test_a_wrong_rule_that_yields_the_wrong_shape_is_caught_too():
    import dataclasses
    activations = ["sigmoid", "sigmoid"]
    W, b, X, Y = ref.random_problem([3, 4, 1], activations, 5, seed=9)
    # db without the un-broadcast of eq 80: the full 1 x m row instead of a 1 x 1 column.
    rules = dataclasses.replace(ref.SEED_RULES, db=lambda d, l: d.dZ[l] / d.m)
    with pytest.raises(ref.ShapeClash, match=r"db\[2\] came out 1 x 5 but b\[2\] is 1 x 1"):
        ref.derive(W, b, X, Y, activations, rules=rules)


def test_g_prime_of_A_is_a_silent_numeric_mistake_only_where_g_is_not_identity():
    W, b, X, Y = ref.random_problem([2, 3, 1], ["tanh", "identity"], 4, "mse", seed=10)
    right = ref.derive(W, b, X, Y, ["tanh", "identity"], "mse")
    wrong = ref.derive(W, b, X, Y, ["tanh", "identity"], "mse",
                       rules=ref.wrong_rules("g-prime-of-A"))
    np.testing.assert_array_equal(wrong.dZ[2], right.dZ[2])  # identity: g' = 1 at A or Z
    assert not np.allclose(wrong.dZ[1], right.dZ[1])


def test_unknown_wrong_variant_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown variant 'eq99'.*eq55"):
        ref.wrong_rules("eq99")


# ---- input validation -----------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "activations": ["sigmoid"]}, "need 2 biases and 2 activations"),
    (lambda a: {**a, "activations": ["sigmoid", "swish"]}, "unknown activation 'swish'"),
    (lambda a: {**a, "loss": "hinge"}, "unknown loss 'hinge'"),
    (lambda a: {**a, "X": a["X"][:2]}, r"W\[1\] must be n\[1\] x 2 \(eq 35\)"),
    (lambda a: {**a, "b": [a["b"][0].ravel(), a["b"][1]]}, r"b\[1\] must be 4 x 1 \(eq 36\)"),
    (lambda a: {**a, "Y": a["Y"].T}, r"Y must be n\[2\] x m = 1 x 5"),
    (lambda a: {**a, "activations": ["sigmoid", "tanh"]}, "log-loss needs a sigmoid or softmax"),
    (lambda a: {**a, "loss": "cross-entropy"}, "cross-entropy needs a softmax output"),
    (lambda a: {**a, "convention": "pytorch"}, "convention must be one of"),
    (lambda a: {**a, "W": [], "b": [], "activations": []}, "at least one layer"),
])
def test_bad_input_is_named(change, message):
    W, b, X, Y = ref.random_problem([3, 4, 1], ["sigmoid", "sigmoid"], 5)
    args = change(dict(W=W, b=b, X=X, Y=Y, activations=["sigmoid", "sigmoid"], loss="log-loss",
                       convention="seed"))
    with pytest.raises(ValueError, match=message):
        ref.derive(**args)


def test_cross_entropy_needs_one_hot_columns():
    W, b, X, Y = ref.random_problem([3, 3], ["softmax"], 4, "cross-entropy")
    with pytest.raises(ValueError, match="Y columns that sum to 1"):
        ref.derive(W, b, X, 2 * Y, ["softmax"], "cross-entropy")


def test_float32_input_is_derived_in_float64():
    W, b, X, Y = ref.random_problem([3, 2, 1], ["relu", "sigmoid"], 3)
    d = ref.derive([w.astype(np.float32) for w in W], b, X.astype(np.float32), Y,
                   ["relu", "sigmoid"])
    assert all(d.dW[l].dtype == np.float64 and d.Z[l].dtype == np.float64 for l in (1, 2))


def test_reference_never_imports_the_engine():
    # The witness must be independent (DESIGN.md): only numpy and the standard library.
    source = pathlib.Path(ref.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add("." + node.module if node.level else node.module.split(".")[0])
    # .roundoff: the float64 error bounds, numpy only
    assert imported <= {"__future__", "dataclasses", "typing", "numpy", ".roundoff"}, imported

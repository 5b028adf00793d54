"""autograd_lite.check: gradcheck, compare, fused-vs-composed, the sentinel.

A checker is only worth something if it fails when it should: every passing case here has a
twin with a deliberately wrong rule (in the hand derivation, in a custom primitive, or injected
into an engine vjp), and the test asserts that the failure names the right layer, quantity,
equation or input.
"""

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autograd_lite as ag
from autograd_lite import check, ops
from autograd_lite import reference as ref
from autograd_lite.ops import data_of

SEED_NET = dict(layers=[3, 4, 1], activations=["sigmoid", "sigmoid"])


def problem(layers, activations, m=5, loss="log-loss", seed=0):
    W, b, X, Y = ref.random_problem(layers, activations, m, loss, seed)
    return dict(W=W, b=b, X=X, Y=Y, activations=activations, loss=loss)


# ---- compare on correct networks ------------------------------------------------------------

@pytest.mark.parametrize("layers, activations, loss, m", [
    ([3, 4, 1], ["sigmoid", "sigmoid"], "log-loss", 5),        # the seed's network
    ([3, 4, 1], ["sigmoid", "sigmoid"], "log-loss", 1),        # one sample: both conventions meet
    ([2, 5, 3, 1], ["tanh", "relu", "sigmoid"], "log-loss", 4),
    ([4, 6, 3], ["relu", "softmax"], "cross-entropy", 6),
    ([2, 3, 2], ["tanh", "identity"], "mse", 3),
])
def test_compare_passes_on_correct_networks(layers, activations, loss, m):
    c = check.compare(**problem(layers, activations, m, loss))
    assert c.passed and bool(c) and c.first_failure is None, str(c)
    assert [r.label for r in c.rows][:4] == [f"{q}[{len(layers) - 1}]" for q in ref.QUANTITIES]
    assert len(c.rows) == 4 * (len(layers) - 1)
    assert "PASS" in str(c) and c.sentinel == []


OUTPUTS_OF = {"log-loss": ["sigmoid"], "mse": ["sigmoid", "tanh", "relu", "identity"],
              "cross-entropy": ["softmax"]}


@st.composite
def small_networks(draw):
    loss = draw(st.sampled_from(sorted(OUTPUTS_OF)))
    depth = draw(st.integers(1, 3))
    hidden = draw(st.lists(st.sampled_from(["sigmoid", "tanh", "relu", "identity"]),
                           min_size=depth - 1, max_size=depth - 1))
    n_out = draw(st.integers(2 if loss == "cross-entropy" else 1, 3))
    layers = [draw(st.integers(1, 4)) for _ in range(depth)] + [n_out]
    activations = hidden + [draw(st.sampled_from(OUTPUTS_OF[loss]))]
    return layers, activations, draw(st.sampled_from([1, 2, 4])), loss, draw(st.integers(0, 999))


@settings(max_examples=20, deadline=None)
@given(small_networks())
def test_compare_passes_on_any_small_network(network):
    layers, activations, m, loss, seed = network
    c = check.compare(**problem(layers, activations, m, loss, seed=seed))
    assert c.passed, str(c)


def test_compare_dZ_is_dJ_dZ_and_the_seeds_per_sample_dZ_is_m_times_it():
    args = problem(**SEED_NET, m=5)
    c = check.compare(**args)
    d = ref.derive(args["W"], args["b"], args["X"], args["Y"], args["activations"])
    row = c.row("dZ[2]")
    np.testing.assert_allclose(row.values["autodiff"], d.dZ[2] / 5, rtol=1e-12)
    np.testing.assert_allclose(row.values["autodiff"], (d.A[2] - args["Y"]) / 5, rtol=0, atol=1e-12)
    assert "dJ/dZ" in row.to_dict()["convention"]


def test_compare_samples_finite_differences_of_large_quantities():
    c = check.compare(**problem([3, 20, 1], ["tanh", "sigmoid"], m=30), max_numeric=50)
    assert c.passed, str(c)
    assert c.row("dA[1]").numeric_elements == 50 and c.row("dW[2]").numeric_elements == 20
    assert "sampled for dA[1], dZ[1]" in str(c)


# ---- compare on wrong derivations: it must fail, and name the right place ---------------------

def test_forgotten_one_over_m_is_found_at_dW_N_and_called_a_factor_m():
    c = check.compare(**problem(**SEED_NET, m=5), rules=ref.wrong_rules("no-1/m"))
    assert not c.passed
    assert (c.first_failure.label, c.first_failure.equation) == ("dW[2]", 79)
    assert "m = 5 times too large" in c.explanation
    assert c.row("dZ[2]").passed and not c.row("db[2]").passed
    pairs = c.first_failure.pairs
    assert pairs["autodiff-numeric"].passed and not pairs["autodiff-reference"].passed


def test_forgotten_one_over_m_in_the_autodiff_convention_shows_at_dA_N():
    # In the autodiff convention the 1/m sits in eq 77, so the first parting moves up to dA[N].
    c = check.compare(**problem(**SEED_NET, m=4), convention="autodiff",
                      rules=ref.wrong_rules("no-1/m"))
    assert (c.first_failure.label, c.first_failure.equation) == ("dA[2]", 77)
    assert "m = 4 times too large" in c.explanation


def test_forgotten_one_over_m_is_invisible_with_one_sample():
    # m = 1: 1/m = 1. The check passes, correctly: the wrong rule gives the right numbers.
    assert check.compare(**problem(**SEED_NET, m=1), rules=ref.wrong_rules("no-1/m")).passed


@pytest.mark.parametrize("variant, layers_wrong, label, equation, seed_eq", [
    ("eq50", None, "dZ[2]", 78, "eq 50"),
    ("eq64", None, "dA[1]", 81, "eq 64"),
    ("no-transpose-65", None, "dA[1]", 81, "eq 65 without its transpose"),
    ("eq55", None, "dW[2]", 79, "eq 55"),
    ("eq55", [1], "dW[1]", 83, "eq 55"),
])
def test_the_seeds_dimensionally_wrong_equations_are_named_with_the_shape_clash(
        variant, layers_wrong, label, equation, seed_eq):
    c = check.compare(**problem(**SEED_NET, m=5), rules=ref.wrong_rules(variant, layers_wrong))
    assert (c.first_failure.label, c.first_failure.equation) == (label, equation)
    assert "does not type-check" in c.explanation and seed_eq in c.explanation
    assert "inner sizes" in c.explanation
    report = str(c)
    assert f"first part at {label} (eq {equation})" in report and "(ref: none)" in report


def test_eq55_that_type_checks_by_accident_is_caught_by_its_numbers():
    # m = n[0] = 3: dZ[1] (4 x 3) A[0] (3 x 3) is 4 x 3 like W[1]; only the values are wrong.
    c = check.compare(**problem(**SEED_NET, m=3), rules=ref.wrong_rules("eq55", layers=[1]))
    assert c.first_failure.label == "dW[1]"
    assert "does not type-check" not in c.explanation
    assert "hand derivation differs from autodiff and finite differences" in c.explanation
    assert all(c.row(label).passed for label in ("dA[2]", "dZ[2]", "dW[2]", "db[2]", "dZ[1]"))


def test_g_prime_at_A_instead_of_Z_is_found_at_the_first_layer_it_touches():
    c = check.compare(**problem([2, 3, 2], ["tanh", "identity"], m=4, loss="mse"),
                      rules=ref.wrong_rules("g-prime-of-A"))
    assert c.first_failure.label == "dZ[1]"  # identity output: g' = 1 at A or Z alike


def test_a_wrong_engine_vjp_is_blamed_on_autodiff(monkeypatch):
    # Inject eq 8 without its (1 - s): the engine is now wrong and the reference is not.
    monkeypatch.setattr(ops.elementwise.Sigmoid, "vjp", lambda self, g, inputs, output, wants: (g * output,))
    c = check.compare(**problem(**SEED_NET, m=5))
    assert (c.first_failure.label, c.first_failure.equation) == ("dZ[2]", 78)
    assert c.explanation.startswith("Autodiff differs from the hand derivation")


def test_comparison_as_data_matches_the_text():
    c = check.compare(**problem(**SEED_NET, m=5), rules=ref.wrong_rules("no-1/m"))
    data = json.loads(c.to_json())
    assert data["passed"] is False and data["first_failure"]["label"] == "dW[2]"
    assert data["first_failure"]["equation"] == 79
    assert [r["label"] for r in data["rows"]] == [r.label for r in c.rows]
    row = data["rows"][2]
    assert row["shapes"] == {"autodiff": [1, 4], "reference": [1, 4], "numeric": [1, 4]}
    assert row["pairs"]["autodiff-reference"]["passed"] is False
    assert data["network"] == {"layers": [3, 4, 1], "activations": ["sigmoid", "sigmoid"],
                               "loss": "log-loss", "m": 5}


def test_compare_reports_saturation_seen_by_the_sentinel():
    args = problem(**SEED_NET, m=3)
    args["W"][1] = args["W"][1] * -200.0  # Z[2] ~ +220: the output sigmoid rounds to exactly 1
    c = check.compare(**args)
    assert c.sentinel[0]["kind"] == "saturated" and c.sentinel[0]["tensor"] == "'A[2]'"
    assert c.first_failure.label == "dA[2]" and c.explanation.startswith("NaN or Inf at dA[2]")
    assert "sentinel: " in str(c) and "saturated at 'A[2]' (sigmoid)" in str(c)


def test_compare_names_bad_input():
    args = problem(**SEED_NET)
    args["activations"] = ["sigmoid"]
    with pytest.raises(ValueError, match="compare: 2 weight matrices need 2 biases and 2 activations"):
        check.compare(**args)


# ---- gradcheck ------------------------------------------------------------------------------

class Cube(ag.Primitive):
    """x^3 with a deliberately wrong vjp: 2 x^2 instead of 3 x^2."""
    name = "cube"

    def forward(self, x):
        return x ** 3

    def vjp(self, g, inputs, output, wants):
        return (g * 2 * inputs[0] ** 2,)


class GoodCube(Cube):
    def vjp(self, g, inputs, output, wants):
        return (g * 3 * inputs[0] ** 2,)


class FrozenCube(Cube):
    """Right first derivative, but it reads the raw data, so its gradient cannot be
    differentiated again: the second derivative comes out 0 instead of 6 x."""

    def vjp(self, g, inputs, output, wants):
        return (g * 3 * data_of(inputs[0]) ** 2,)


X3 = np.array([0.5, -1.0, 2.0])


def test_gradcheck_catches_a_wrong_vjp_in_a_custom_primitive_and_names_it():
    result = gradcheck_of(Cube())
    assert not result.passed and not bool(result)
    worst = result.worst
    assert (worst.name, worst.order, worst.worst_index) == ("x", 1, (2,))
    assert worst.autodiff == pytest.approx(2 / 3 * worst.numeric, rel=1e-6)
    text = str(result)
    assert "FAIL" in text and "worst: x (order 1) at (2,)" in text


def gradcheck_of(primitive, **options):
    return check.gradcheck(lambda x: primitive(x).sum(), [X3], names=["x"], **options)


def test_gradcheck_passes_a_correct_primitive_to_second_order():
    result = gradcheck_of(GoodCube(), order=2)
    assert result.passed, str(result)
    assert [c.order for c in result.checks] == [1, 2]


def test_second_order_catches_a_vjp_that_cannot_be_differentiated_again():
    result = gradcheck_of(FrozenCube(), order=2)
    assert [c.passed for c in result.checks] == [True, False]
    assert result.worst.order == 2


def test_random_directions_catch_a_wrong_vjp_too():
    assert not gradcheck_of(Cube(), directions=3).passed
    result = gradcheck_of(GoodCube(), directions=3, order=2)
    assert result.passed and result.checks[0].checked == 3 and "random directions" in result.mode


@pytest.mark.parametrize("f, shapes", [
    (lambda W, A, b: (W @ A + b).sigmoid(), [(4, 3), (3, 5), (4, 1)]),          # eqs 33-34
    (lambda Z: Z.softmax(axis=0), [(3, 4)]),
    (lambda Z: Z.log_softmax(axis=0), [(3, 4)]),
    (lambda Z, Y: ag.binary_cross_entropy_with_logits(Z, Y), [(1, 5), (1, 5)]),
    (lambda x, y: x / y + x ** 2 - y.tanh(), [(2, 3), (3,)]),                   # broadcasting
    (lambda x: x.exp().log().mean(axis=1, keepdims=True), [(2, 4)]),
])
def test_gradcheck_passes_built_in_operations_to_second_order(f, shapes):
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal(s) + (3.0 if i == 1 and len(shapes) == 2 and s == (3,) else 0.0)
              for i, s in enumerate(shapes)]
    result = check.gradcheck(f, inputs, order=2)
    assert result.passed, str(result)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(0, 999))
def test_gradcheck_of_a_layer_with_any_shapes(n_out, n_in, m, seed):
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal((n_out, n_in)), rng.standard_normal((n_in, m)),
              rng.standard_normal((n_out, 1))]
    assert check.gradcheck(lambda W, A, b: (W @ A + b).tanh(), inputs).passed


def test_gradcheck_upcasts_float32_with_a_warning():
    with pytest.warns(check.PrecisionWarning, match="input x is float32; upcast to float64"):
        result = check.gradcheck(lambda x: (x * x).sum(), [X3.astype(np.float32)], names=["x"])
    assert result.passed


def test_gradcheck_holds_one_moved_copy_of_an_input_at_a_time():
    """Each element is moved in a copy that lives as long as its own evaluation of f: the
    evaluations a round gathers (every element's stencil) keep f's outputs, not the copies
    (3000 elements, 4 evaluations each: held together, 288 MB of copies)."""
    import tracemalloc
    x = np.linspace(0.5, 1.5, 3000)
    tracemalloc.start()
    try:
        assert check.gradcheck(lambda a: (a * a).sum(), [x], eps=1e-6)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30e6, f"gradcheck held {peak / 1e6:.0f} MB"


def test_gradcheck_refuses_a_function_that_returns_no_tensor():
    with pytest.raises(TypeError, match="f must return a Tensor, got ndarray"):
        check.gradcheck(lambda x: x.data, [X3])


def test_gradcheck_result_as_data():
    data = gradcheck_of(Cube()).to_dict()
    assert data["passed"] is False and data["checks"][0]["worst_index"] == [2]
    json.dumps(data)


# ---- fused vs composed --------------------------------------------------------------------------

def test_fused_and_composed_agree_in_the_normal_range_and_part_at_saturation():
    result = check.fused_vs_composed()
    by_z = {(r.z, r.y): r for r in result.rows}
    for z in (-20.0, -5.0, 0.0, 5.0, 20.0):
        for y in (0.0, 1.0):
            assert by_z[z, y].agree, by_z[z, y]
    for z in (37.0, 40.0, 800.0):
        for y in (0.0, 1.0):
            row = by_z[z, y]
            assert not row.agree and row.A == 1.0 and np.isnan(row.dZ_composed)
            assert "rounds to exactly 1.0" in row.why
            assert row.first_event.startswith("forward saturated: 'A[N]' = sigmoid('Z[N]')")
    assert by_z[40.0, 0.0].J_fused == 40.0 and by_z[40.0, 0.0].dZ_fused == 1.0
    assert 40.0 in result.to_dict()["parting_z"]


def test_dZ_is_exactly_A_minus_Y_only_for_the_fused_loss():
    rows = check.fused_vs_composed().rows
    assert all(r.fused_is_A_minus_Y for r in rows)
    assert not all(r.composed_is_A_minus_Y for r in rows)
    # Where both are finite, composed matches A - Y to rounding, no more.
    for r in rows:
        if np.isfinite(r.dZ_composed):
            assert abs(r.dZ_composed - r.A_minus_Y) <= 4e-16 * max(1.0, abs(r.A_minus_Y))


def test_fused_table_prints_where_and_why():
    text = str(check.fused_vs_composed(Z=[0.0, 40.0], Y=[1.0]))
    assert "They agree" in text and "They part at z = 40 (y=1)" in text and "PART" in text


# ---- the sentinel ---------------------------------------------------------------------------

def seed_network_forward(W2_scale=1.0, loss=ag.binary_cross_entropy):
    """The 3-4-1 network with named tensors; W2_scale = -300 puts Z[2] at +26, +38, +64."""
    W, b, X, Y = ref.random_problem([3, 4, 1], ["sigmoid", "sigmoid"], 3, seed=2)
    W1 = ag.Tensor(W[0], requires_grad=True, name="W[1]")
    W2 = ag.Tensor(W[1] * W2_scale, requires_grad=True, name="W[2]")
    A1 = (W1 @ X + b[0]).named("Z[1]").sigmoid().named("A[1]")
    Z2 = (W2 @ A1 + b[1]).named("Z[2]")
    return loss(Z2.sigmoid().named("A[2]"), Y).named("J")


def eq_1_with_log(A, Y):
    """Eq 1 as a learner writes it, with log: ag.binary_cross_entropy would take the logits."""
    return -(Y * A.log() + (1 - Y) * (1 - A).log()).sum() / A.shape[-1]


def test_sentinel_is_quiet_on_a_healthy_network():
    with check.sentinel() as watch:
        seed_network_forward().backward()
    assert watch.clean and "no saturation" in watch.report()


def test_sentinel_names_the_saturated_sigmoid_before_the_loss_is_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the loss's and numpy's warnings: the sentinel records
        with check.sentinel(action="record") as watch:
            J = seed_network_forward(W2_scale=-300.0, loss=eq_1_with_log)
            J.backward()
    first = watch.events[0]
    assert (first.kind, first.phase, first.op, first.name) == ("saturated", "forward", "sigmoid", "'A[2]'")
    assert first.inputs == ("'Z[2]'",)
    assert "sigmoid('Z[2]')" in first.describe()
    kinds = [e.kind for e in watch.events]
    # then log(1 - A) = log(0), and its vjp g / (1 - A) divides by 0
    assert kinds == ["saturated", "log-domain", "inf"]
    assert (watch.events[2].phase, watch.events[2].op) == ("backward", "log")


def test_sentinel_raise_stops_at_the_operation():
    with pytest.raises(check.SentinelError, match="saturated") as caught:
        with check.sentinel(action="raise"):
            seed_network_forward(W2_scale=-300.0)
    assert caught.value.event.op == "sigmoid"


def test_sentinel_warns_by_default():
    with pytest.warns(ag.SaturationWarning, match="sigmoid"):
        with check.sentinel():
            ag.Tensor([50.0], requires_grad=True).sigmoid()


def test_sentinel_reports_log_of_non_positive_and_exp_overflow():
    with check.sentinel(action="record") as watch:
        ag.Tensor([0.0, 1.0], requires_grad=True, name="p").log()
        ag.Tensor([800.0], requires_grad=True, name="z").exp()
    log_event, exp_event = watch.events
    assert (log_event.kind, log_event.inputs, log_event.index) == ("log-domain", ("'p'",), (0,))
    assert "log(0) = -inf" in log_event.detail
    assert (exp_event.kind, exp_event.inputs) == ("overflow", ("'z'",))


def test_sentinel_finds_a_nan_origin_in_a_custom_primitive_forward_and_backward():
    class BadSqrt(ag.Primitive):
        name = "bad_sqrt"

        def forward(self, x):
            with np.errstate(invalid="ignore"):
                return np.sqrt(x)

        def vjp(self, g, inputs, output, wants):
            return (g * 0.5 / output * np.inf * 0,)  # 0 * inf: NaN out of a finite g

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with check.sentinel(action="record") as watch:
            x = ag.Tensor([-1.0, 4.0], requires_grad=True, name="x")
            y = BadSqrt()(x).named("y")
            (y * 2).sum().backward()
    forward, backward = watch.events
    assert (forward.kind, forward.phase, forward.op, forward.name) == ("nan", "forward", "bad_sqrt", "'y'")
    assert (backward.kind, backward.phase, backward.op, backward.name) == ("nan", "backward", "bad_sqrt", "'x'")
    assert len(watch.events) == 2  # the NaN flowing on is not reported again


def test_sentinel_reports_a_nan_leaf_once_and_unhooks_on_exit():
    from autograd_lite.core import backward as autodiff, tensor
    before = (len(tensor.forward_hooks), len(autodiff.backward_hooks))
    with check.sentinel(action="record") as watch:
        x = ag.Tensor([np.nan, 1.0], name="X")
        (x * 2) + x
    assert [e.op for e in watch.events] == ["leaf"] and "leaf 'X'" in watch.events[0].describe()
    assert (len(tensor.forward_hooks), len(autodiff.backward_hooks)) == before


def test_sentinel_refuses_an_unknown_action():
    with pytest.raises(ValueError, match="action must be one of warn, record, raise"):
        check.sentinel(action="ignore")


# ---- gradcheck at any scale ------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1e-8, 1.0, 1e8, 1e12])
def test_gradcheck_passes_a_correct_rule_at_any_magnitude_of_x(scale):
    x = scale * np.array([0.5, -1.0, 2.0])
    result = check.gradcheck(lambda t: (t * t * 3.0 + t).sum(), [x], names=["x"])
    assert result.passed, str(result)


@pytest.mark.parametrize("scale", [1e-8, 1.0, 1e8])
def test_gradcheck_fails_a_wrong_rule_at_any_magnitude_of_x(scale):
    result = check.gradcheck(lambda t: Cube()(t).sum(), [scale * X3], names=["x"])
    assert not result.passed and "check the vjp" in str(result)


def test_gradcheck_passes_a_tiny_gradient_and_fails_it_when_wrong():
    # a gradient of 1e-12 everywhere: no absolute floor lets a 50 % error through
    tiny = np.array([1e-12, -2e-12, 3e-12])
    good = check.gradcheck(lambda t: (t * t).sum() * 0.5, [tiny], names=["x"])
    assert good.passed, str(good)
    assert not check.gradcheck(lambda t: Cube()(t * 1e4).sum(), [tiny], names=["x"]).passed


def test_a_fixed_step_below_the_float_spacing_is_said_to_be_the_cause():
    x = np.array([1e8, -3e8])
    result = check.gradcheck(lambda t: (t * t).sum(), [x], names=["x"], eps=1e-9)
    text = str(result)
    assert "below 1000 float spacings" in text
    if not result.passed:
        assert "leave eps=None" in text and "check the vjp" not in text


def test_gradcheck_judges_a_large_J_by_its_rounding_not_by_a_fixed_tolerance():
    result = check.gradcheck(lambda t: (t.sin() + 1e10).sum(), [X3], names=["x"])
    assert result.passed, str(result)

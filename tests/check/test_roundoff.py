"""Round-off is printed as a bound, so reports read the same on any CPU, BLAS and numpy
(autograd_lite/roundoff.py, docs/check.md "Round-off").

Another machine is imitated by moving every gradient and every J that finite differences read
by a few ulps, as another BLAS kernel or SIMD path does (seen: 7.7e-17 here, 6.3e-17 with
OpenBLAS's Haswell kernels, for the same report row).
"""
import importlib
import json

import numpy as np
import pytest

from autograd_lite import reference as ref
from autograd_lite.check import compare
from autograd_lite.check.verdict import judge
from autograd_lite.roundoff import EPS, gamma, number, product_bound, round_up, sum_bound
from report_text import assert_same_report, same_line

compare_module = importlib.import_module("autograd_lite.check.compare")  # the name `compare`
# in autograd_lite.check is the function
SEED = dict(layers=[3, 4, 1], activations=["sigmoid", "sigmoid"], m=5)


def seed_problem():
    return ref.random_problem(SEED["layers"], SEED["activations"], SEED["m"], seed=0)


def moved_by_round_off(monkeypatch, seed, ulps=4):
    """``compare`` of the seed problem with every float the two exact ways and the finite
    differences produce moved by up to ``ulps`` units of rounding."""
    rng = np.random.default_rng(seed)

    def move(x):
        return x * (1 + ulps * EPS * rng.uniform(-1, 1, np.shape(x)))

    J_of = ref.J_of
    monkeypatch.setattr(ref, "J_of", lambda *a, **k: float(move(J_of(*a, **k))))
    W, b, X, Y = seed_problem()
    _, (grads, J, events) = compare_module.with_autodiff_on_host(
        [W, b, X, Y], compare_module._autodiff(W, b, X, Y, SEED["activations"], "log-loss"))
    grads = {q: [None if g is None else move(g) for g in per_layer] for q, per_layer in grads.items()}
    result = compare_module.compare_ways(
        W, b, X, Y, SEED["activations"], "log-loss", (grads, J, events), rules=ref.SEED_RULES,
        convention="seed", max_numeric=256, seed=0)
    monkeypatch.setattr(ref, "J_of", J_of)
    return result


def digits(result):
    """What the report printed before round-off had a bound: every pair's two numbers."""
    return [f"{p.max_abs:.1e} {p.relative:.1e}" for r in result.rows for p in r.pairs.values()]


def test_the_report_reads_the_same_when_round_off_moves(monkeypatch):
    W, b, X, Y = seed_problem()
    here = compare(W, b, X, Y, SEED["activations"])
    for seed in range(3):
        elsewhere = moved_by_round_off(monkeypatch, seed)
        assert digits(elsewhere) != digits(here)       # the last bits did move ...
        assert str(elsewhere) == str(here)             # ... and the report did not


def test_a_real_difference_is_still_printed_in_digits():
    W, b, X, Y = seed_problem()
    result = compare(W, b, X, Y, SEED["activations"], rules=ref.wrong_rules("no-1/m"))
    row = next(line for line in str(result).split("\n") if line.startswith("dW[2]"))
    assert "4.5e-01    6.7e-01   FAIL" in row
    pair = result.row("dW[2]").pairs["autodiff-reference"]
    assert pair.max_abs > pair.roundoff > 0


def test_every_agreeing_number_of_the_seed_report_is_within_its_bound():
    W, b, X, Y = seed_problem()
    result = compare(W, b, X, Y, SEED["activations"])
    for row in result.rows:
        for name, pair in row.pairs.items():
            assert 0 < pair.roundoff and pair.max_abs <= pair.roundoff, (row.label, name)
            assert 0 < pair.relative_roundoff <= 1 and pair.relative <= pair.relative_roundoff
            # the exact ways' bound is rounding of the values (a few dozen eps of them), finite
            # differences' is larger: the stencil divides J's rounding by the step
            if name == "autodiff-reference":
                assert pair.roundoff < 1e-13
            else:
                assert 1e-13 < pair.roundoff < 1e-9
    data = json.loads(result.to_json())
    pair = data["rows"][0]["pairs"]["autodiff-numeric"]
    assert pair["roundoff"]["max_abs"] >= pair["max_abs"]


def test_the_bound_scales_with_the_values_it_is_rounding_of():
    a = np.array([1.0, -2.0, 3.0])
    for scale in (1e-12, 1.0, 1e6):
        x = scale * a
        pair = judge(x, x * (1 + EPS), 2 * EPS * np.abs(x))
        assert pair.passed and pair.relative_roundoff == pytest.approx(
            2 * EPS * np.linalg.norm(a) / (2 * np.linalg.norm(a)), rel=1e-6)
        # ten times the rounding fails at every scale: no floor under small values
        assert not judge(x, x * (1 + 20 * EPS), 2 * EPS * np.abs(x)).passed


def test_a_product_sums_bound_is_n_eps_sum_of_abs_a_abs_b_plus_the_operands_errors():
    A = np.array([[1.0, -2.0], [3.0, 4.0]])
    B = np.array([[1e3], [1e-3]])
    zero = np.zeros_like
    bound = product_bound(A, zero(A), B, zero(B))
    np.testing.assert_allclose(bound, gamma(4) * (np.abs(A) @ np.abs(B)), rtol=1e-12)
    # the terms' magnitudes count, not the result's: cancellation is allowed for
    C = np.array([[1.0, 1.0]])
    D = np.array([[1e8], [-1e8]])
    assert product_bound(C, zero(C), D, zero(D))[0, 0] >= gamma(2) * 2e8
    eA = np.full_like(A, 1e-10)
    assert np.all(product_bound(A, eA, B, zero(B)) >= eA @ np.abs(B))
    np.testing.assert_allclose(sum_bound(np.array([[1e8, -1e8]]), np.zeros((1, 2)), axis=1),
                               [[gamma(4) * 2e8]], rtol=1e-6)


def test_relative_is_at_most_one_and_so_is_its_bound():
    a = np.array([1.0, 2.0])
    opposite = judge(a, -a, 1e-3)
    assert opposite.relative == 1.0 and not opposite.passed
    huge_tolerance = judge(a, a * 0.9, 10.0)
    assert huge_tolerance.passed and huge_tolerance.relative_roundoff == 1.0
    assert number(huge_tolerance.relative, huge_tolerance.relative_roundoff) == "< 1e+00"


@pytest.mark.parametrize("bound, text", [
    (1.3e-15, "2e-15"), (2e-15, "2e-15"), (2.0000000000000004e-15, "2e-15"),
    (1.9999999999999998e-15, "2e-15"), (9.2e-15, "1e-14"), (1e-15, "1e-15"), (3.1e-09, "4e-09"),
    (0.5, "5e-01"), (12.0, "2e+01"),
])
def test_round_up_to_one_digit(bound, text):
    assert round_up(bound) == text
    assert float(text) >= bound * (1 - 1e-9)


def test_number_prints_digits_above_the_bound_and_nan_as_nan():
    assert number(7.7e-17, 3e-15) == number(6.3e-17, 3e-15) == number(0.0, 3e-15) == "< 3e-15"
    assert number(4.5e-1, 3e-15) == "4.5e-01"
    assert number(float("nan"), 3e-15) == "nan"
    assert number(7.7e-17) == "7.7e-17"       # no bound: the digits, as a plain number


def test_the_comparison_of_printed_reports_only_forgives_printed_precision_and_bounds():
    line = "dZ[2]     78  1x5    < 6e-16    < 3e-15   ok  < 3e-09    < 1e-08   ok"
    assert same_line(line, line)
    assert same_line(line, line.replace("< 6e-16", "2.8e-17"))              # within the bound
    assert same_line(line, line.replace("< 6e-16", "< 7e-16"))              # one printed unit
    assert not same_line(line, line.replace("< 6e-16", "9.1e-16"))         # above the bound
    assert not same_line(line, line.replace("ok  < 3e-09", "FAIL  < 3e-09"))  # a verdict
    assert not same_line(line, line.replace("1x5", "1x6"))                  # a shape
    assert not same_line(line, line.replace("78", "79"))                    # an equation
    assert not same_line(line, line + "  ok")                               # a column
    # the old report printed round-off digits, which no tolerance of the printed precision
    # could keep equal across machines: this is why they are printed as bounds now
    assert not same_line("dZ[2]  2.8e-17  7.7e-17  ok", "dZ[2]  2.8e-17  6.3e-17  ok")
    J = "J (eq 76): autodiff 0.752726503116, reference 0.752726503116  ok"
    assert same_line(J, J.replace("503116,", "503117,"))
    assert not same_line(J, J.replace("503116,", "503126,"))
    assert_same_report(f"a\n{line}\n\nb\n", f"a\n{line}\n\nb\n")
    with pytest.raises(AssertionError, match="line 2 differs"):
        assert_same_report(f"a\n{line}\n", f"a\n{line.replace('ok', 'FAIL')}\n")
    with pytest.raises(AssertionError, match="2 lines shown, 3 printed"):
        assert_same_report(f"a\n{line}\n", f"a\n{line}\nc\n")

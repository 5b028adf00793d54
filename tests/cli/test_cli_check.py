"""``autograd-lite check``: the report, its exit status, --json, bad options."""

import json
import subprocess
import sys

import pytest

from autograd_lite.cli import main


def run(capsys, *argv):
    status = main(["check", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_seed_network_passes_with_exit_status_0(capsys):
    status, out, err = run(capsys, "--layers", "3,4,1", "--activations", "sigmoid,sigmoid", "--m", "5")
    assert status == 0 and err == ""
    assert out.startswith("check: layers 3-4-1, activations sigmoid,sigmoid, loss log-loss, m = 5")
    for label, eq in (("dA[2]", 77), ("dZ[2]", 78), ("dW[2]", 79), ("db[2]", 80),
                      ("dA[1]", 81), ("dZ[1]", 82), ("dW[1]", 83), ("db[1]", 84)):
        assert f"\n{label}     {eq}" in out
    assert "PASS: the three ways agree on all 8 quantities" in out


@pytest.mark.parametrize("argv", [
    ["--layers", "4,5,3", "--activations", "relu,softmax", "--m", "2"],
    ["--layers", "2,3,3,1", "--activations", "tanh,relu,identity", "--loss", "mse", "--m", "1"],
    ["--convention", "autodiff", "--seed", "7"],
])
def test_other_networks_pass(capsys, argv):
    status, out, _ = run(capsys, *argv)
    assert status == 0, out


def test_a_wrong_derivation_fails_with_exit_status_1_and_names_the_place(capsys):
    status, out, _ = run(capsys, "--wrong", "no-1/m", "--m", "4")
    assert status == 1
    assert "FAIL: the ways first part at dW[2] (eq 79)" in out and "m = 4 times too large" in out


def test_a_shape_clash_is_explained(capsys):
    status, out, _ = run(capsys, "--wrong", "eq55", "--wrong-layer", "1")
    assert status == 1
    assert "first part at dW[1] (eq 83)" in out and "does not type-check" in out
    assert "dZ[1] is 4 x 5 and A[0] is 3 x 5" in out


def test_json_is_the_same_report_as_data(capsys):
    status, out, _ = run(capsys, "--json", "--wrong", "eq64")
    data = json.loads(out)
    assert status == 1 and data["passed"] is False
    assert data["first_failure"]["label"] == "dA[1]" and data["first_failure"]["equation"] == 81
    assert data["network"]["layers"] == [3, 4, 1] and len(data["rows"]) == 8


def test_fused_adds_the_saturation_table(capsys):
    status, out, _ = run(capsys, "--fused")
    assert status == 0 and "fused vs composed log-loss" in out and "They part at z =" in out
    status, out, _ = run(capsys, "--fused", "--json")
    assert 40.0 in json.loads(out)["fused_vs_composed"]["parting_z"]


@pytest.mark.parametrize("argv, message", [
    (["--activations", "sigmoid,swish"], "unknown activation 'swish'"),
    (["--layers", "3,four,1"], "--layers must be whole numbers"),
    (["--activations", "sigmoid"], "--activations gives 1 activation(s) but --layers"),
    (["--m", "0"], "--m must be at least 1"),
    (["--wrong", "eq99"], "invalid choice: 'eq99'"),
    (["--wrong-layer", "1"], "--wrong-layer needs --wrong VARIANT"),
    (["--wrong", "eq55", "--wrong-layer", "3"], "--wrong-layer must be a layer 1..2"),
    (["--wrong", "eq55", "--wrong-layer", "one"], "--wrong-layer must be a whole number"),
    # the verdicts' tolerances come from the error analysis: none can be widened by hand
    (["--wrong", "eq55", "--atol", "inf"], "unrecognized arguments: --atol"),
    (["--max-numeric", "lots"], "--max-numeric must be a whole number"),
])
def test_bad_options_get_one_line_and_exit_status_2(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_python_dash_m_runs_the_same_command():
    done = subprocess.run([sys.executable, "-m", "autograd_lite", "check", "--m", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "PASS" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "autograd_lite", "check", "--m", "-3"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr

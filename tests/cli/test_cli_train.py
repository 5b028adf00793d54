"""``autograd-lite train``: the synthetic data, training the moons problem, --json, resuming from
saved files bit for bit, and one-line errors (exit status 2) for bad options."""

import re
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd_lite.cli import main
from autograd_lite.data import DATASETS, make_data
from report_text import assert_same_report


def run(capsys, *argv):
    status = main(["train", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def run_json(capsys, *argv):
    status, out, err = run(capsys, "--json", *argv)
    assert status == 0 and err == "", err
    return json.loads(out)


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


# --- data -------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(DATASETS)), m=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_data_are_columns_balanced_and_the_same_for_the_same_seed(name, m, seed):
    X, Y = make_data(name, m, seed)
    assert X.shape == (2, m) and Y.shape == (1, m)                    # eq 25: samples as columns
    assert X.dtype == np.float64 and Y.dtype == np.float64
    assert set(np.unique(Y)) <= {0.0, 1.0}
    ones = int(Y.sum())
    assert abs(ones - (m - ones)) <= 1                                # balanced as m allows
    X_again, Y_again = make_data(name, m, seed)
    np.testing.assert_array_equal(X, X_again)
    np.testing.assert_array_equal(Y, Y_again)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_another_seed_gives_other_data(name):
    X0, Y0 = make_data(name, 50, 0)
    X1, Y1 = make_data(name, 50, 1)
    assert not np.array_equal(X0, X1) and not np.array_equal(Y0, Y1)


def test_without_noise_each_problem_has_its_shape():
    m = 400
    X, Y = make_data("xor", m, 3, noise=0.0)
    np.testing.assert_array_equal(Y[0] == 1, X[0] * X[1] > 0)        # same sign: class 1
    X, Y = make_data("circles", m, 3, noise=0.0)
    np.testing.assert_allclose(np.hypot(X[0], X[1]), np.where(Y[0] == 1, 0.5, 1.0))
    X, Y = make_data("blobs", m, 3, noise=0.0)
    np.testing.assert_array_equal(X, np.where(Y == 1, 1.0, -1.0) * np.ones((2, 1)))
    X, Y = make_data("moons", m, 3, noise=0.0)
    upper, lower = Y[0] == 0, Y[0] == 1
    np.testing.assert_allclose(np.hypot(X[0, upper], X[1, upper]), 1.0)
    np.testing.assert_allclose(np.hypot(X[0, lower] - 1, X[1, lower] - 0.5), 1.0)
    assert (X[1, upper] >= 0).all() and (X[1, lower] <= 0.5).all()


# --- training ---------------------------------------------------------------------------------

def test_moons_with_2_8_1_learns_and_J_falls(capsys):
    # Measured with the defaults (SGD lr 5, 1000 epochs, full batch, 150/50 split): seed 0 test
    # accuracy 96 %, seeds 0-9 mean 97.0 %, min 96 %; logistic regression (--layers 2,1) gets
    # 90 % on seed 0 and 86 % on average, so 92 % needs the hidden layer.
    summary = run_json(capsys, "--data", "moons", "--layers", "2,8,1", "--seed", "0")
    history, final = summary["history"], summary["final"]
    assert history[0]["epoch"] == 0 and final["epoch"] == 1000
    assert final["test_accuracy"] >= 0.92 and final["train_accuracy"] >= 0.92
    assert final["J"] < 0.1 < 0.6 < history[0]["J"]                   # J (eq 76) falls
    assert final["J"] < min(row["J"] for row in history[:5])


def test_json_holds_the_final_J_and_accuracies_of_the_saved_model(capsys, tmp_path):
    path = tmp_path / "model.npz"
    summary = run_json(capsys, "--epochs", "200", "--seed", "4", "--save", str(path))
    assert summary["final"] == summary["history"][-1]
    assert summary["network"]["layers"] == [2, 8, 1] and summary["data"]["m_train"] == 150
    assert summary["optimizer"]["name"] == "SGD" and summary["optimizer"]["lr"] == 5.0
    # Recompute J and the accuracies by hand from the saved W[l], b[l] (eqs 33-34, 1, 76).
    saved = np.load(path)
    X, Y = make_data("moons", 200, np.random.SeedSequence(4).spawn(3)[0])
    A2 = sigmoid(saved["layers.1.W"] @ sigmoid(saved["layers.0.W"] @ X + saved["layers.0.b"])
                 + saved["layers.1.b"])
    L = -(Y * np.log(A2) + (1 - Y) * np.log(1 - A2))
    correct = (A2 > 0.5) == (Y == 1)
    final = summary["final"]
    assert final["J"] == pytest.approx(L[:, :150].mean(), rel=1e-12)
    assert final["test_J"] == pytest.approx(L[:, 150:].mean(), rel=1e-12)
    assert final["train_accuracy"] == correct[:, :150].mean()
    assert final["test_accuracy"] == correct[:, 150:].mean()


def test_text_output_has_a_header_a_line_every_few_epochs_and_a_final_line(capsys):
    status, out, err = run(capsys, "--epochs", "20", "--every", "5", "--optimizer", "adam")
    lines = out.splitlines()
    assert status == 0 and err == ""
    assert lines[0] == ("network: 2-8-1 (sigmoid, sigmoid), 33 parameters; J = log-loss of "
                        "sigmoid(Z[2]), fused (eqs 1, 7, 76)")
    assert lines[1].startswith("data: moons (noise 0.2, seed 0), m = 200: 150 training and 50 test")
    assert lines[2].startswith("optimizer: Adam (lr 0.05,") and "full batch, 20 epochs" in lines[2]
    assert [int(line.split()[0]) for line in lines[4:9]] == [0, 5, 10, 15, 20]
    assert lines[9].startswith("final: after 20 epochs J = ") and len(lines) == 10
    # J in a fixed format, so the columns line up under the header whatever the digits
    row = re.compile(r"^ {0,6}\d+ +\d+\.\d{6} +\d+\.\d % +\d+\.\d{6} +\d+\.\d %$")
    assert all(row.match(line) for line in lines[4:9]), lines[4:9]
    assert len({len(line) for line in lines[3:9]}) == 1
    assert re.search(r"J = \d+\.\d{6},", lines[9])


def test_mini_batches_are_shuffled_by_the_seed(capsys):
    argv = ("--epochs", "5", "--batch-size", "16")
    first, again = run_json(capsys, *argv), run_json(capsys, *argv)
    other = run_json(capsys, *argv, "--seed", "1")
    assert first["final"] == again["final"] and first["final"] != other["final"]


@pytest.mark.parametrize("optimizer", [["--optimizer", "sgd", "--momentum", "0.9"],
                                       ["--optimizer", "adam"]])
def test_save_load_and_continue_equals_one_uninterrupted_run_bit_for_bit(capsys, tmp_path, optimizer):
    common = ["--layers", "2,5,1", "--activations", "tanh,sigmoid", "--seed", "2", *optimizer]
    whole, half, resumed = (tmp_path / name for name in ("whole.npz", "half.npz", "resumed.npz"))
    state = tmp_path / "optimizer.npz"
    run_json(capsys, *common, "--epochs", "30", "--save", str(whole))
    run_json(capsys, *common, "--epochs", "12", "--save", str(half), "--save-optimizer", str(state))
    summary = run_json(capsys, *common, "--epochs", "18", "--load", str(half),
                       "--load-optimizer", str(state), "--save", str(resumed))
    assert summary["optimizer"]["steps_before"] == 12
    expected, got = np.load(whole), np.load(resumed)
    assert sorted(got.files) == sorted(expected.files) == ["layers.0.W", "layers.0.b",
                                                           "layers.1.W", "layers.1.b"]
    for name in expected.files:
        np.testing.assert_array_equal(got[name], expected[name])
    # The optimizer's state matters: resuming the parameters alone takes other steps.
    run_json(capsys, *common, "--epochs", "18", "--load", str(half), "--save", str(resumed))
    assert not np.array_equal(np.load(resumed)["layers.0.W"], expected["layers.0.W"])


def test_an_explicit_lr_wins_over_the_saved_one(capsys, tmp_path):
    state = tmp_path / "optimizer.npz"
    run_json(capsys, "--epochs", "1", "--lr", "2", "--save-optimizer", str(state))
    assert run_json(capsys, "--epochs", "0", "--load-optimizer", str(state))["optimizer"]["lr"] == 2.0
    assert run_json(capsys, "--epochs", "0", "--load-optimizer", str(state),
                    "--lr", "0.5")["optimizer"]["lr"] == 0.5


def test_a_diverging_run_stops_with_exit_status_1_and_one_line(capsys):
    status, out, err = run(capsys, "--activations", "relu,sigmoid", "--lr", "1e300", "--epochs", "5")
    assert status == 1 and err.count("\n") == 1
    assert re.search("the loss became (nan|inf)", err) and "learning rate (1e+300) too large" in err


# --- bad options --------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, option", [
    (["--layers", "3,8,1"], "--layers"),
    (["--layers", "2,8,2"], "--layers"),
    (["--layers", "2,x,1"], "--layers"),
    (["--activations", "sigmoid,identity", "--loss", "mse"], "--loss"),
    (["--activations", "tanh"], "--activations"),
    (["--data", "spirals"], "--data"),
    (["--noise", "-0.1"], "--noise"),
    (["--test-fraction", "1"], "--test-fraction"),
    (["--test-fraction", "0.001"], "--test-fraction"),
    (["--m", "1"], "--test-fraction"),
    (["--optimizer", "rmsprop"], "--optimizer"),
    (["--lr", "0"], "--lr"),
    (["--lr", "fast"], "--lr"),
    (["--momentum", "1"], "--momentum"),
    (["--optimizer", "adam", "--momentum", "0.9"], "--momentum"),
    (["--epochs", "-1"], "--epochs"),
    (["--epochs", "1.5"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--every", "0"], "--every"),
    (["--save", "/no/such/directory/model.npz"], "--save"),
    (["--save-optimizer", "/no/such/directory/optimizer.npz"], "--save-optimizer"),
    (["--load", "/no/such/model.npz"], "--load"),
    (["--load-optimizer", "/no/such/optimizer.npz"], "--load-optimizer"),
])
def test_bad_options_exit_2_with_one_line_naming_the_option(capsys, argv, option):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("autograd-lite: error: ") and option in err


def test_mismatched_files_exit_2_with_one_line_naming_the_option_and_shapes(capsys, tmp_path):
    model, state = tmp_path / "model.npz", tmp_path / "optimizer.npz"
    run_json(capsys, "--epochs", "1", "--layers", "2,4,1", "--save", str(model),
             "--optimizer", "adam", "--save-optimizer", str(state))
    status, out, err = run(capsys, "--load", str(model))                      # 2,8,1 now
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "--load" in err and "layers.0.W" in err and "(8, 2)" in err and "(4, 2)" in err
    status, _, err = run(capsys, "--layers", "2,4,1", "--load-optimizer", str(state))
    assert status == 2 and err.count("\n") == 1
    assert "--load-optimizer" in err and "'Adam', not 'SGD'" in err
    status, _, err = run(capsys, "--layers", "2,4,1", "--load", str(state))   # the wrong file
    assert status == 2 and err.count("\n") == 1 and "--load" in err


def test_readme_shows_what_the_command_prints(capsys):
    command = "autograd-lite train --every 250"
    text = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    shown = text.split(f"$ {command}\n", 1)[1].split("```", 1)[0]
    assert main(command.split()[1:]) == 0
    # words and layout exactly; J after 1000 steps to 1e-4 of itself: another BLAS rounds each
    # step's matmuls differently and training carries that along (to the printed 6 digits it
    # was the same under every OpenBLAS kernel and numpy 1.23 and 2.x tried)
    assert_same_report(shown, capsys.readouterr().out, rtol=1e-4)


def test_python_m_autograd_lite_train_help_works():
    done = subprocess.run([sys.executable, "-m", "autograd_lite", "train", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    for option in ("--data", "--layers", "--test-fraction", "--optimizer", "--lr", "--momentum",
                   "--epochs", "--batch-size", "--every", "--json", "--save", "--save-optimizer",
                   "--load", "--load-optimizer"):
        assert option in done.stdout
    words = " ".join(done.stdout.split())  # argparse wraps lines where it likes
    assert "(default: 2,8,1)" in words and "(default 200)" in words


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`autograd-lite train | head -1`: the command sees a broken pipe and ends quietly."""
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "autograd_lite", "train", "--every", "1", "--epochs", "3000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()  # the reader leaves
    _, stderr = process.communicate(timeout=60)
    assert first.startswith(b"network:")
    assert b"Traceback" not in stderr and b"BrokenPipeError" not in stderr, stderr.decode()
    assert process.returncode == 1

"""The examples on scikit-learn's bundled data sets: importable, runnable from the command line
on a tiny subset, and (a second each) reaching the figures docs/nn.md reports.

Skipped when scikit-learn (the optional ``examples`` extra) is not installed."""
import importlib.util
import os
import stat
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, subset, report", [
    ("breast_cancer", 120, "test accuracy"),
    ("digits", 200, "test accuracy"),
    ("regression", 100, "mean predictor"),
])
def test_each_example_runs_from_the_command_line_on_a_tiny_subset(name, subset, report, tmp_path, capsys):
    saved = tmp_path / "model.npz"
    status = example(name).main(["--epochs", "2", "--subset", str(subset), "--save", str(saved)])
    captured = capsys.readouterr()
    assert status == 0
    assert report in captured.out
    assert "epoch 2/2" in captured.err            # progress lines go to stderr
    with np.load(saved, allow_pickle=False) as archive:
        assert "layers.0.W" in archive.files


def test_breast_cancer_reaches_95_percent():
    result = example("breast_cancer").run(verbose=False)
    assert result["m_train"] + result["m_test"] == 569
    assert result["test_accuracy"] >= 0.95


def test_digits_reaches_95_percent():
    assert example("digits").run(verbose=False)["test_accuracy"] >= 0.95


def test_regression_clearly_beats_the_mean_predictor():
    result = example("regression").run(verbose=False)
    assert result["test_mse"] < 0.8 * result["baseline_mse"]


def test_the_saved_model_predicts_the_same_after_loading(tmp_path):
    module = example("breast_cancer")
    result = module.run(epochs=3, subset=150, save=tmp_path / "bc.npz", verbose=False)
    from autograd_lite import nn
    fresh = nn.MLP([30, 16, 1], ["sigmoid", "identity"], rng=np.random.default_rng(99))
    fresh.load(tmp_path / "bc.npz")
    X = np.random.default_rng(0).standard_normal((30, 4))
    np.testing.assert_array_equal(fresh(X).data, result["model"](X).data)


@pytest.mark.parametrize("name", ["breast_cancer", "digits", "regression"])
def test_a_bad_plot_or_save_path_is_one_line_before_any_training(name, tmp_path, capsys, monkeypatch):
    """--plot into a missing folder trained the whole run and then printed a traceback naming
    a temporary file; now it is one line and exit 2, before the data are even loaded."""
    module = example(name)
    monkeypatch.setattr(module, "load", lambda *args, **kwargs: pytest.fail("loaded the data"))
    for option, path, reason in [
            ("--plot", tmp_path / "missing" / "loss.png", "does not exist"),
            ("--plot", tmp_path / "loss.bmpx", "cannot tell the format"),
            ("--save", tmp_path / "missing" / "model.npz", "does not exist"),
            ("--save", tmp_path, "is a directory")]:
        with pytest.raises(SystemExit) as caught:
            module.main(["--epochs", "1", option, str(path)])
        err = capsys.readouterr().err
        assert caught.value.code == 2, err
        assert reason in err and err.count("\n") == 1 and "Traceback" not in err and ".tmp" not in err
    assert sorted(os.listdir(tmp_path)) == []


def test_the_examples_plot_is_an_ordinary_file(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "loss.png"
    old_umask = os.umask(0o022)
    try:
        assert example("breast_cancer").main(["--epochs", "2", "--subset", "120", "--quiet",
                                              "--plot", str(plot)]) == 0
    finally:
        os.umask(old_umask)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stat.S_IMODE(os.stat(plot).st_mode) == 0o644   # mkstemp's 0600 before
    assert os.listdir(tmp_path) == ["loss.png"]

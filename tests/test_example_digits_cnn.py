"""examples/digits_cnn.py: both networks (the CNN; the MLP with dropout and batch norm) run from
the command line on a subset, save what evaluation needs (BatchNorm's running statistics
included), and a short run already classifies most held-out digits. The full accuracy claim
(CNN >= 98.5 % mean over seeds 0-4) is measured, not tested: see docs/nn.md.

Skipped when scikit-learn (the optional ``examples`` extra) is not installed."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits_cnn.py"


def example():
    spec = importlib.util.spec_from_file_location("example_digits_cnn", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model, parameter, buffer", [
    ("cnn", "1.W", "2.running_mean"), ("mlp", "0.W", "1.running_var")])
def test_each_model_runs_from_the_command_line_and_saves_its_statistics(model, parameter, buffer,
                                                                        tmp_path, capsys):
    saved = tmp_path / "model.npz"
    status = example().main(["--model", model, "--epochs", "2", "--subset", "150",
                             "--save", str(saved)])
    captured = capsys.readouterr()
    assert status == 0
    assert f"digits ({model})" in captured.out and "test accuracy" in captured.out
    assert "epoch 2/2" in captured.err
    with np.load(saved, allow_pickle=False) as archive:
        assert parameter in archive.files and buffer in archive.files


@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_a_short_run_classifies_most_held_out_digits(model):
    result = example().run(model, epochs=2, subset=600, verbose=False)
    assert result["m_test"] == 120
    assert result["test_accuracy"] >= 0.85
    network = result["model"]
    assert not any(module.training for _, module in network.named_modules())   # measured in eval


def test_evaluation_is_deterministic_while_training_is_not():
    module = example()
    result = module.run("mlp", epochs=1, subset=200, verbose=False)
    network = result["model"]
    X = np.random.default_rng(0).random((64, 5))
    np.testing.assert_array_equal(network(X).data, network(X).data)     # eval: no dropout
    network.train()
    assert not np.array_equal(network(X).data, network(X).data)         # dropout draws anew

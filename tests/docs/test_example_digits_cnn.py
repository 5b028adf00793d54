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

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits_cnn.py"


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


@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_compiled_training_takes_the_eager_steps_bit_for_bit(model):
    """--compile (fit_compiled: ag.compile of loss(model(X), y), then Adam's step) against
    train.fit on the same seed: 120 training samples in batches of 32 and a last one of 24 (two
    programs), three epochs so that each program is traced, checked and then replayed, with
    dropout masks and BatchNorm statistics drawn and updated on every call. The compiled step
    is promised equal to the eager one bit for bit, so are the losses, parameters and buffers."""
    module = example()
    eager = module.run(model, epochs=3, subset=150, verbose=False)
    compiled = module.run(model, epochs=3, subset=150, verbose=False, compile=True)
    assert compiled["history"].programs == 2
    assert compiled["history"].loss == eager["history"].loss
    found, expected = compiled["model"].state_dict(), eager["model"].state_dict()
    assert sorted(found) == sorted(expected)
    for key in expected:
        np.testing.assert_array_equal(found[key], expected[key], err_msg=key)
    assert compiled["test_loss"] == eager["test_loss"]
    fresh = module.MODELS[model](np.random.default_rng(0)).state_dict()
    assert any(not np.array_equal(fresh[key], expected[key]) for key in expected)  # it trained


def test_compile_prints_the_time_of_each_epoch(capsys):
    assert example().main(["--model", "mlp", "--epochs", "2", "--subset", "150", "--compile"]) == 0
    captured = capsys.readouterr()
    assert "s per epoch (compiled" in captured.out
    epoch_lines = [line for line in captured.err.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 2 and all(line.endswith(" s") for line in epoch_lines)

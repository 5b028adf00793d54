"""Every example script refuses a bad option before any work: one line on stderr
(``<script>: error: ...``), exit status 2, no traceback, no data loaded, nothing trained; a run
that starts and then fails (the loss became nan) is one line with exit status 1. The same
statuses as autograd-lite's commands (autograd_lite/cli).

The refusals need no scikit-learn (the data are loaded only after the options pass); the tests
that load data skip without it."""
import argparse
import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def no_work(*args, **kwargs):
    pytest.fail("the example started working before refusing a bad option")


# (example, arguments, a fragment of the one-line message)
REFUSED = [
    ("breast_cancer", ["--epochs", "-1"], "argument --epochs: must be a whole number >= 1, got '-1'"),
    ("breast_cancer", ["--epochs", "1.5"], "argument --epochs: must be a whole number"),
    ("breast_cancer", ["--hidden", "0"], "argument --hidden: must be a whole number from 1 to 10000"),
    ("breast_cancer", ["--hidden", "1000000000"], "argument --hidden: must be a whole number from 1"),
    ("breast_cancer", ["--lr", "-1"], "argument --lr: must be a finite number above 0, got '-1'"),
    ("breast_cancer", ["--lr", "nan"], "argument --lr: must be a finite number above 0"),
    ("breast_cancer", ["--lr", "inf"], "argument --lr: must be a finite number above 0"),
    ("breast_cancer", ["--batch-size", "0"], "argument --batch-size: must be a whole number >= 1"),
    ("breast_cancer", ["--seed", "-1"], "argument --seed: must be a whole number >= 0"),
    ("breast_cancer", ["--subset", "1"], "argument --subset: must be a whole number from 50 to 569"),
    ("breast_cancer", ["--subset", "570"], "argument --subset: must be a whole number from 50 to 569"),
    ("breast_cancer", ["--activation", "softmax"], "argument --activation: invalid choice"),
    ("breast_cancer", ["--bogus"], "unrecognized arguments: --bogus"),
    ("digits", ["--epochs", "-1"], "argument --epochs: must be a whole number >= 1"),
    ("digits", ["--hidden", "0"], "argument --hidden: must be a whole number from 1 to 10000"),
    ("digits", ["--lr", "0"], "argument --lr: must be a finite number above 0"),
    ("digits", ["--batch-size", "-5"], "argument --batch-size: must be a whole number >= 1"),
    ("digits", ["--seed", "-1"], "argument --seed: must be a whole number >= 0"),
    ("digits", ["--subset", "1"], "argument --subset: must be a whole number from 50 to 1797"),
    ("digits", ["--subset", "49"], "argument --subset: must be a whole number from 50 to 1797"),
    ("regression", ["--epochs", "0"], "argument --epochs: must be a whole number >= 1"),
    ("regression", ["--hidden", "0"], "argument --hidden: must be a whole number from 1 to 10000"),
    ("regression", ["--lr", "-1"], "argument --lr: must be a finite number above 0"),
    ("regression", ["--weight-decay", "-0.1"], "argument --weight-decay: must be a finite number >= 0"),
    ("regression", ["--weight-decay", "nan"], "argument --weight-decay: must be a finite number >= 0"),
    ("regression", ["--subset", "9"], "argument --subset: must be a whole number from 10 to 442"),
    ("regression", ["--subset", "443"], "argument --subset: must be a whole number from 10 to 442"),
    ("digits_cnn", ["--model", "rnn"], "argument --model: invalid choice: 'rnn'"),
    ("digits_cnn", ["--epochs", "-1"], "argument --epochs: must be a whole number >= 1"),
    ("digits_cnn", ["--lr", "-1"], "argument --lr: must be a finite number above 0"),
    ("digits_cnn", ["--batch-size", "0"], "argument --batch-size: must be a whole number >= 1"),
    ("digits_cnn", ["--seed", "-1"], "argument --seed: must be a whole number >= 0"),
    ("digits_cnn", ["--subset", "1"], "argument --subset: must be a whole number from 50 to 1797"),
    ("digits_cnn", ["--model", "mlp", "--batch-size", "1"], "leaves a mini-batch of one sample"),
    # 1437 training samples: batches of 2 leave one sample last, which BatchNorm refuses
    ("digits_cnn", ["--model", "mlp", "--batch-size", "2"], "(of 1437 training samples)"),
    # --subset 200: 160 training samples = 3 x 53 + 1
    ("digits_cnn", ["--model", "mlp", "--subset", "200", "--batch-size", "53"],
     "--batch-size 53 leaves a mini-batch of one sample (of 160 training samples)"),
    ("digits_cnn", ["--compile", "--save", "/nonexistent-folder/model.npz"], "does not exist"),
    ("deep_network", ["--seed", "-1"], "argument --seed: must be a whole number >= 0"),
    ("deep_network", ["--m", "0"], "argument --m: must be a whole number >= 1"),
    ("deep_network", ["--steps", "-1"], "argument --steps: must be a whole number >= 0"),
    ("deep_network", ["--alpha", "0"], "argument --alpha: must be a finite number above 0"),
    ("deep_network", ["--alpha", "nan"], "argument --alpha: must be a finite number above 0"),
    ("deep_network", ["--m", "100000000000"], "at most 10,000,000"),
    ("deep_network", ["--layers", "2,x,1"], "--layers must be whole numbers separated by commas"),
    ("deep_network", ["--layers", "3,4,1"], "--layers must start with 2"),
    ("deep_network", ["--layers", "2,0,1", "--activations", "tanh,sigmoid"],
     "no size below 1"),
    ("deep_network", ["--activations", "tanh,foo,sigmoid"], "unknown activation 'foo'"),
    ("deep_network", ["--activations", "tanh,tanh,relu"], "the output activation must be sigmoid"),
    ("seed_network", ["--seed", "-1"], "--seed must be a whole number >= 0, got -1"),
    ("seed_network", ["--alpha", "inf"], "--alpha must be a finite number above 0"),
    ("seed_network", ["--alpha", "0"], "--alpha must be a finite number above 0"),
    ("seed_network", ["--m", "0"], "--m must be at least 1"),
    ("seed_network", ["--m", "x"], "must be whole numbers"),
    ("seed_network", ["--m", "100000000000"], "at most 10,000,000"),
    ("seed_network", ["--steps", "-1"], "--steps must be at least 0"),
    ("seed_network", ["--html", "page.txt"], "the page is an .html file"),
]


@pytest.mark.parametrize("name, argv, fragment", REFUSED,
                         ids=[f"{name} {' '.join(argv)}" for name, argv, _ in REFUSED])
def test_a_bad_option_is_one_line_and_exit_2_before_any_work(name, argv, fragment, monkeypatch,
                                                             capsys):
    module = example(name)
    for work in ("load", "moons", "make_network"):  # what each example does first
        if hasattr(module, work):
            monkeypatch.setattr(module, work, no_work)
    import autograd_lite.cli.demo
    monkeypatch.setattr(autograd_lite.cli.demo, "demo", no_work)  # seed_network's work
    with pytest.raises(SystemExit) as caught:
        module.main(argv)
    captured = capsys.readouterr()
    assert caught.value.code == 2, captured.err
    assert captured.err.startswith(f"{name}.py: error: ") and captured.err.count("\n") == 1
    assert fragment in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_the_batch_check_lets_every_other_batch_size_through():
    """check_batches refuses only what leaves one sample: the CNN (BatchNorm over pixels too)
    takes any batch, and the MLP the default 32 (1437 = 44 x 32 + 29)."""
    module = example("digits_cnn")
    for model, subset, batch_size in [("mlp", None, 32), ("mlp", 200, 32), ("cnn", None, 1),
                                      ("cnn", None, 2), ("mlp", None, 1437), ("mlp", None, 5000)]:
        module.check_batches(argparse.Namespace(model=model, subset=subset, batch_size=batch_size))


def test_the_sample_counts_and_smallest_subsets_are_the_data_sets():
    """The bounds the options check are true: each set's size, and the smallest --subset the
    stratified 80/20 split takes; the MLP's batch check counts the training part as the split
    does (m - ceil(0.2 m))."""
    pytest.importorskip("sklearn")
    for name, smallest in [("breast_cancer", 50), ("digits", 50), ("regression", 10)]:
        module = example(name)
        split = module.load(None, 0)
        assert split[0].shape[1] + split[2].shape[1] == module.SAMPLES
        split = module.load(smallest, 0)
        assert split[0].shape[1] == smallest - -(-smallest * 2 // 10)
    digits_cnn = example("digits_cnn")
    for subset in (50, 200, 1001):
        X_train = digits_cnn.load(subset, 3)[0]
        assert X_train.shape[1] == subset - -(-subset // 5)


def test_a_run_that_fails_after_starting_is_one_line_and_exit_1(capsys):
    """--lr 1e300: the loss becomes nan in the first epoch; fit stops, naming the epoch and
    batch, and the example reports it in one line with exit status 1, eagerly and compiled."""
    pytest.importorskip("sklearn")
    for name, argv in [("digits", []), ("digits_cnn", ["--model", "mlp"]),
                       ("digits_cnn", ["--model", "mlp", "--compile"])]:
        with pytest.raises(SystemExit) as caught, warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow on the way
            example(name).main(argv + ["--lr", "1e300", "--epochs", "1", "--subset", "100",
                                       "--quiet"])
        err = capsys.readouterr().err
        assert caught.value.code == 1, err
        assert err.startswith(f"{name}.py: error: ") and err.count("\n") == 1
        assert "stopped at epoch 1" in err and "nan" in err


@pytest.mark.parametrize("script, argv", [
    ("breast_cancer.py", ["--epochs", "-1"]),
    ("digits_cnn.py", ["--model", "mlp", "--batch-size", "2"]),
    ("seed_network.py", ["--seed", "-1"]),
])
def test_run_as_a_script_the_refusal_is_one_line_and_exit_2(script, argv):
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(EXAMPLES / script)] + argv, capture_output=True,
                          text=True, env=environment, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"{script}: error: ") and done.stderr.count("\n") == 1
    assert done.stdout == ""

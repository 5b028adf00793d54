"""The README's Python examples run as written and say what they claim (so they cannot rot)."""
import pathlib
import re

import numpy as np

from report_text import assert_same_report

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def run(block):
    import autograd_lite as ag
    namespace = {"np": np, "ag": ag}  # later blocks assume the first block's imports
    exec(compile(block, str(README), "exec"), namespace)
    return namespace


def test_readme_has_python_examples():
    assert len(python_blocks()) >= 4


def test_seed_network_block_gives_eqs_83_84():
    seed_block = next(b for b in python_blocks() if "J.backward()" in b and "W1" in b)
    ns = run(seed_block)
    X, Y, W1, b1, W2, b2 = (ns[k].data for k in ("X", "Y", "W1", "b1", "W2", "b2"))
    m = X.shape[1]
    A1 = 1 / (1 + np.exp(-(W1 @ X + b1)))
    A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
    dZ1 = (W2.T @ (A2 - Y)) * A1 * (1 - A1)                                    # eqs 78, 81-82
    np.testing.assert_allclose(ns["W1"].grad, dZ1 @ X.T / m, rtol=1e-10, atol=1e-15)   # eq 83
    np.testing.assert_allclose(ns["b1"].grad, dZ1.sum(axis=1, keepdims=True) / m,       # eq 84
                               rtol=1e-10, atol=1e-15)


def test_manual_update_block_trains_the_same_tensors_under_no_grad():
    block = next(b for b in python_blocks() if "ag.no_grad()" in b and "p -= alpha" in b)
    ns = run(block)
    params = [ns[k] for k in ("W1", "b1", "W2", "b2")]
    assert all(p.is_leaf and p.requires_grad and p.version == 300 for p in params)
    X, Y = ns["X"].data, ns["Y"].data
    A1 = 1 / (1 + np.exp(-(params[0].data @ X + params[1].data)))
    A2 = 1 / (1 + np.exp(-(params[2].data @ A1 + params[3].data)))
    assert np.mean((A2 > 0.5) == (Y > 0.5)) > 0.95  # eqs 74-75 trained the network


def test_every_python_block_runs():
    for block in python_blocks():
        run(block)


def test_readme_check_report_is_what_the_command_prints(capsys):
    from autograd_lite.cli import main
    command = "autograd-lite check --layers 3,4,1 --activations sigmoid,sigmoid --m 5"
    text = README.read_text(encoding="utf-8")
    shown = text.split(f"$ {command}\n", 1)[1].split("```", 1)[0]
    assert main(command.split()[1:]) == 0
    # the same words, verdicts and numbers to their printed precision (round-off is printed as
    # a bound, docs/check.md "Round-off"), so that the README holds on any CPU and BLAS
    assert_same_report(shown, capsys.readouterr().out)


def test_every_loss_the_readme_lists_lives_where_it_says():
    """The "What is in the box" row names each loss as ``ag.<name>``, and "Build networks" lists
    the losses among ``ag.nn``'s: each is there, the same function in every place."""
    import autograd_lite as ag
    text = README.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| losses |"))
    top = re.findall(r"`ag\.(\w+)\(", row)
    assert {"binary_cross_entropy", "binary_cross_entropy_with_logits", "softmax_cross_entropy",
            "cross_entropy", "mean_squared_error"} <= set(top)
    networks = text[text.index("## Build networks"):]
    listed = re.search(r"losses \((.*?)\)", networks, re.S).group(1)
    in_nn = [name.replace("[_with_logits]", "") for name in re.findall(r"`([\w\[\]]+)`", listed)]
    assert "mean_squared_error" in in_nn
    for name in set(top) | set(in_nn):
        assert getattr(ag, name) is getattr(ag.nn, name) is getattr(ag.nn.functional, name), name

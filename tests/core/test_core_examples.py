"""The two core examples run end to end: the seed's 3-4-1 network and an N-layer network."""
import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_network_agrees_with_eqs_77_84_and_trains(capsys):
    seed_network = load("seed_network")
    assert seed_network.main(["--m", "1", "--steps", "200"]) == 0
    out = capsys.readouterr().out
    assert "Z[1]  4 x 1" in out and "(eqs 35-38: n[1] x m = 4 x 1)" in out
    assert "largest difference" in out and "(agree;" in out
    assert "loss fell from" in out


def test_seed_network_hand_derivation_matches_autodiff_for_many_m():
    import numpy as np
    import autograd_lite as ag
    seed_network = load("seed_network")
    for m in (1, 2, 7, 64):
        rng = np.random.default_rng(m)
        X = ag.Tensor(rng.standard_normal((3, m)))
        Y = ag.Tensor((rng.random((1, m)) > 0.5) * 1.0)
        parameters = seed_network.make_parameters(rng)
        *_, J = seed_network.forward(X, Y, *parameters)
        J.backward()
        by_hand = seed_network.hand_derivation(X.data, Y.data, *(p.data for p in parameters))
        for parameter in parameters:
            np.testing.assert_allclose(parameter.grad, by_hand[parameter.name], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("layers, activations", [
    ("2,8,1", "tanh,sigmoid"),
    ("2,6,6,6,1", "relu,tanh,identity,sigmoid"),
])
def test_deep_network_trains(capsys, layers, activations):
    deep_network = load("deep_network")
    assert deep_network.main(["--layers", layers, "--activations", activations,
                              "--m", "64", "--steps", "300"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out
    first, last = [float(line.split("J = ")[1].split()[0]) for line in out.splitlines()
                   if "J = " in line][::10][:2]
    assert last < first


def test_deep_network_refuses_bad_options(capsys):
    deep_network = load("deep_network")
    with pytest.raises(SystemExit) as exit_info:
        deep_network.main(["--layers", "2,4,1", "--activations", "tanh"])
    assert exit_info.value.code == 2
    assert "--activations needs 2 names" in capsys.readouterr().err

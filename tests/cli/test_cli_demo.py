"""``autograd-lite demo`` (the README's first command) and ``autograd-lite --version``."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite.cli import main
from autograd_lite.cli.demo import forward, make_parameters


def test_demo_agrees_with_eqs_77_84_and_trains(capsys):
    assert main(["demo", "--m", "3", "--steps", "100"]) == 0
    out = capsys.readouterr().out
    assert "Z[1]  4 x 3" in out and "(eqs 35-38: n[1] x m = 4 x 3)" in out
    assert "(agree;" in out and "loss fell from" in out


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_demo_writes_the_stepping_page_of_its_own_graph(tmp_path, capsys):
    path = tmp_path / "backprop.html"
    assert main(["demo", "--steps", "20", "--html", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    html = path.read_text(encoding="utf-8")
    data = json.loads(re.search(r'class="ag-data">(.*?)</script>', html, re.S).group(1)
                      .replace("<\\/", "</"))
    # the same network and numbers the demo printed: rebuild it from the same seed
    rng = np.random.default_rng(0)
    X = ag.Tensor(rng.standard_normal((3, 5)), name="X")
    Y = ag.Tensor((rng.random((1, 5)) > 0.5) * 1.0, name="Y")
    parameters = make_parameters(rng)
    forward(X, Y, *parameters)[-1].backward()
    by_name = {t["name"]: t for t in data["tensors"]}
    assert data["tensors"][-1]["name"] == "J"           # the root is the cost, its sign included
    for parameter in parameters:
        grad = by_name[parameter.name]["grad"]
        np.testing.assert_allclose(np.reshape(grad["data"], grad["shape"]), parameter.grad,
                                   rtol=1e-12, atol=1e-18)
    assert any("dW[1] = dZ[1]·Xᵀ" in step["rule"] for step in data["steps"])
    # eq 1 as the seed and the README write it: log(A[2]) and log(1 − A[2]), no xlogy
    titles = [step["title"] for step in data["steps"]]
    assert any(title.endswith(": log(A[2])") for title in titles)
    assert any(title.endswith(": log(1 − A[2])") for title in titles)
    assert "xlogy" not in json.dumps(data, ensure_ascii=False)
    assert [s["equation"]["number"] for s in data["steps"] if s.get("quantity") == "db[1]"] == [84]


def test_demo_prints_round_off_as_a_bound_like_the_check_report(capsys):
    assert main(["demo", "--steps", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines()
             if "max |autodiff - hand|" in line or "largest difference" in line]
    assert len(lines) == 5
    for line in lines:
        # "< 3e-15" (equal to rounding), never raw digits such as 5.76e-20
        assert re.search(r"(hand\||difference) < \de[+-]\d\d\b", line), line


def test_demo_verdict_is_relative_to_the_size_of_the_gradients():
    """A 3 % error in a gradient of size 1e-5 is far above any absolute floor's notice; the
    demo calls it DISAGREE, as it calls the exact derivation agree."""
    from autograd_lite.cli.demo import hand_derivation, roundoff_bounds, show_gradients
    rng = np.random.default_rng(0)
    X = ag.Tensor(rng.standard_normal((3, 5)), name="X")
    Y = ag.Tensor((rng.random((1, 5)) > 0.5) * 1.0, name="Y")
    parameters = make_parameters(rng)
    forward(X, Y, *parameters)[-1].backward()
    arrays = (X.data, Y.data, *(p.data for p in parameters))
    hand = hand_derivation(*arrays)
    assert show_gradients(parameters, hand, roundoff_bounds(*arrays))
    assert np.abs(hand["W[1]"]).max() < 1e-3
    hand["W[1]"] = hand["W[1]"] * 1.03
    assert not show_gradients(parameters, hand, roundoff_bounds(*arrays))


@pytest.mark.parametrize("argv", [["--m", "0"], ["--steps", "x"], ["--alpha", "-1"],
                                  ["--html", "page.svg"]])
def test_bad_demo_options_are_one_line_and_exit_2(argv, capsys):
    assert main(["demo", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autograd-lite: error:") and len(err.strip().splitlines()) == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"autograd-lite {ag.__version__}"

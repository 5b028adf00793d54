"""``autograd-lite graph``: the seed's 3-4-1 network (eqs 21-29) drawn from the command line."""
from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from autograd_lite.cli import main

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz `dot` is not installed (.ci/run installs it)")


def svg_texts(path):
    root = ElementTree.parse(path).getroot()
    return {"".join(e.itertext()) for e in root.iter() if e.tag.endswith("text")}


@needs_dot
def test_seed_network_to_svg(tmp_path, capsys):
    path = tmp_path / "seed.svg"
    assert main(["graph", "--layers", "3,4,1", "--output", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    texts = svg_texts(path)
    for label in ("X", "W[1]", "b[1]", "Z[1]", "A[1]", "W[2]", "A[2]", "J", "4×3", "4×m", "1×m",
                  "matmul", "sigmoid", "layer 1", "layer 2"):
        assert label in texts, label


def test_without_output_prints_the_dot_source(capsys):
    assert main(["graph", "--m", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph") and "<B>W[1]</B><BR/>4×3" in out and "m = 3 samples" in out


def test_backward_view_with_gradients(capsys):
    assert main(["graph", "--backward", "--grads"]) == 0
    out = capsys.readouterr().out
    assert "db[1] = Σ over axis 1 of dZ[1]" in out and "(eq 80)" in out
    assert "<B>dZ[1]</B>" in out and "not kept" not in out.split("<B>dZ[1]</B>")[1].split("\n")[0]


def test_values_colour_and_layers_only(capsys):
    assert main(["graph", "--values", "--color", "grad"]) == 0
    out = capsys.readouterr().out
    assert "value" in out and "max |grad|" in out and "on a log scale" in out
    assert main(["graph", "--layers", "3,8,8,8,1", "--activations", "relu,relu,tanh,sigmoid",
                 "--layers-only"]) == 0
    out = capsys.readouterr().out
    assert "<B>layer 4</B>" in out and "matmul → add → tanh" in out and "<B>W[1]</B>" not in out


def test_softmax_output_and_identity_regression(capsys):
    assert main(["graph", "--layers", "3,4,3", "--activations", "relu,softmax"]) == 0
    out = capsys.readouterr().out
    assert "<B>softmax</B>" in out and "<B>A[2]</B><BR/>3×m" in out
    assert main(["graph", "--layers", "2,3,1", "--activations", "tanh,identity", "--loss", "mse",
                 "--grads"]) == 0
    assert "<B>Z[2]</B><BR/>1×m" in capsys.readouterr().out


def test_size_policy_is_reported(capsys):
    assert main(["graph", "--layers", "3,4,4,4,1", "--max-nodes", "20"]) == 0
    captured = capsys.readouterr()
    assert "note: " in captured.err and "collapsed to one box" in captured.err


@pytest.mark.parametrize("argv, message", [
    (["--output", "seed.jpg"], "suffix picks the format"),
    (["--max-nodes", "many"], "--max-nodes"),
    (["--layers", "3,x,1"], "--layers"),
    (["--activations", "swish,sigmoid"], "unknown activation"),
    (["--m", "0"], "--m"),
])
def test_bad_options_get_one_line_and_exit_2(argv, message, capsys):
    assert main(["graph", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"),
                                           (".dot", b"digraph")])
def test_suffix_picks_the_format(tmp_path, suffix, magic):
    path = tmp_path / f"seed{suffix}"
    assert main(["graph", "--output", str(path)]) == 0
    assert path.read_bytes().startswith(magic)


def test_missing_dot_exits_1_with_install_advice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["graph", "--output", str(tmp_path / "seed.svg")]) == 1
    err = capsys.readouterr().err
    assert "Graphviz" in err and "apt-get install graphviz" in err
    assert not (tmp_path / "seed.svg").exists()
    # the DOT file needs no Graphviz
    assert main(["graph", "--output", str(tmp_path / "seed.dot")]) == 0


def test_python_dash_m_runs_the_command(tmp_path):
    path = tmp_path / "seed.dot"
    result = subprocess.run([sys.executable, "-m", "autograd_lite", "graph", "--output", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "<B>Z[2]</B>" in path.read_text(encoding="utf-8")


@needs_dot
def test_make_pictures_script_regenerates_the_docs_pictures(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_pictures.py"
    result = subprocess.run([sys.executable, str(script), "--out-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["deep_layers.svg", "seed_backward.svg", "seed_gradients.svg", "seed_graph.svg"]
    assert "db[1] = Σ over axis 1 of dZ[1]" in " ".join(svg_texts(tmp_path / "seed_backward.svg"))
    assert "layer 3" in svg_texts(tmp_path / "deep_layers.svg")

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


def node_line(source, name):
    """The DOT line of the box whose title is ``name`` (bold: a user's name)."""
    return next(line for line in source.splitlines() if f"<B>{name}</B>" in line and "label=" in line)


def test_compare_colours_every_gradient_by_the_check_report(capsys):
    assert main(["graph", "--compare"]) == 0
    captured = capsys.readouterr()
    assert "agrees with autodiff on every gradient" in captured.err
    for name in ("W[1]", "b[1]", "Z[1]", "A[1]", "W[2]", "b[2]", "Z[2]", "A[2]"):
        assert "#c7e9c0" in node_line(captured.out, name) and "rel. diff" in node_line(captured.out, name)
    assert "#fcae91" not in captured.out and "note:" not in captured.err


def test_wrong_derivation_parts_where_the_check_says(capsys):
    assert main(["graph", "--backward", "--wrong", "g-prime-of-A", "--wrong-layer", "2"]) == 0
    captured = capsys.readouterr()
    assert "first parts from autodiff at dZ[2] (eq 78)" in captured.err
    first = node_line(captured.out, "dZ[2]")
    assert "#fcae91" in first and "penwidth=3" in first and "first to differ" in first
    assert "#c7e9c0" in node_line(captured.out, "dA[2]")
    assert "#fcae91" in node_line(captured.out, "dW[1]")
    assert "evaluated at A[l] instead of Z[l] (layer 2 only)" in captured.out
    # the check command, on the same options, names the same quantity
    assert main(["check", "--wrong", "g-prime-of-A", "--wrong-layer", "2"]) == 1
    assert "first part at dZ[2] (eq 78)" in capsys.readouterr().out


def test_wrong_derivation_on_layer_boxes(capsys):
    # eq 50 in layer 2: dZ[2] = dA[2] g'(Z[2]) as a matrix product, 4×m times 4×m: no value
    assert main(["graph", "--layers", "3,5,4,1", "--wrong", "eq50", "--wrong-layer", "2",
                 "--layers-only"]) == 0
    out = capsys.readouterr().out
    layer_2 = node_line(out, "layer 2")
    assert "first to differ: dZ[2]" in layer_2 and "#fcae91" in layer_2 and "penwidth=3" in layer_2
    assert "1 agree · 1 differ · 2 without a hand value" in layer_2   # dA[2] | dZ[2] | dW, db
    assert "#c7e9c0" in node_line(out, "layer 3") and "4 agree" in node_line(out, "layer 3")
    assert "#d9d9d9" in node_line(out, "layer 1")  # the hand derivation stopped above it
    # the cost J measured nothing: white, like an unmeasured tensor
    assert 'fillcolor="#ffffff"' in node_line(out, "cost J (log-loss, eq 76)")


def test_compare_on_an_identity_output_colours_dz_for_da(capsys):
    assert main(["graph", "--layers", "2,3,1", "--activations", "tanh,identity", "--loss", "mse",
                 "--wrong", "no-1/m"]) == 0
    captured = capsys.readouterr()
    assert "note:" not in captured.err and "first parts from autodiff at dW[2]" in captured.err
    assert "#c7e9c0" in node_line(captured.out, "Z[2]")


@pytest.mark.parametrize("argv, message", [
    (["--wrong-layer", "1"], "--wrong-layer needs --wrong"),
    (["--wrong", "eq55", "--wrong-layer", "3"], "layer 1..2"),
    (["--wrong", "eq55", "--wrong-layer", "one"], "--wrong-layer"),
    (["--wrong", "eq99"], "invalid choice"),
    (["--compare", "--color", "grad"], "choose one"),
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
    script = Path(__file__).resolve().parents[2] / "scripts" / "make_pictures.py"
    # the screenshot needs a browser: its staleness is read from the PNG below, without one
    result = subprocess.run([sys.executable, str(script), "--out-dir", str(tmp_path),
                             "--no-screenshots"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".svg")
    assert names == ["deep_layers.svg", "seed_backward.svg", "seed_gradients.svg", "seed_graph.svg",
                     "seed_wrong_derivation.svg"]
    # the stepping page a teacher can send, and the README's screenshot of it: the PNG carries
    # the digest of the page data it shows, which must be today's
    docs = script.parents[1] / "docs"
    sys.path.insert(0, str(script.parent))
    try:
        import make_pictures
    finally:
        sys.path.remove(str(script.parent))
    fresh = make_pictures.page_digest((tmp_path / "backprop.html").read_text(encoding="utf-8"))
    committed = make_pictures.page_digest((docs / "backprop.html").read_text(encoding="utf-8"))
    assert fresh == committed, "docs/backprop.html is stale: run python scripts/make_pictures.py"
    for name, (page, _, _) in make_pictures.SCREENSHOTS.items():
        shown = make_pictures.png_text(docs / name).get(make_pictures.DIGEST_KEY)
        assert shown == fresh, f"docs/{name} shows an older page: run python scripts/make_pictures.py"
    assert "db[1] = Σ over axis 1 of dZ[1]" in " ".join(svg_texts(tmp_path / "seed_backward.svg"))
    assert "layer 3" in svg_texts(tmp_path / "deep_layers.svg")
    assert "first to differ in backward order" in svg_texts(tmp_path / "seed_wrong_derivation.svg")
    # the committed pictures say what the code draws today (their words; the layout may vary
    # with the Graphviz version)
    docs = script.parents[1] / "docs"
    for name in names:
        assert svg_texts(tmp_path / name) == svg_texts(docs / name), f"docs/{name} is stale"

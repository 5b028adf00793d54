"""examples/backprop_tutorial.ipynb runs top to bottom (every code cell asserts what it claims),
and is committed without outputs, so what a reader sees is what the code does today.

Needs the ``notebook`` extra (nbclient, nbformat, ipykernel: .ci/run installs it) and Graphviz's
``dot`` for its pictures; skips, saying which is missing, without them.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "backprop_tutorial.ipynb"

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed: pip install -e '.[notebook]'")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed: pip install -e '.[notebook]'")
pytest.importorskip("ipykernel", reason="ipykernel (the Python kernel) is not installed: "
                                        "pip install -e '.[notebook]'")


def test_the_tutorial_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 8
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code), \
        "clear the outputs before committing (Kernel → Restart & Clear Output)"
    text = "\n".join(cell.source for cell in notebook.cells)
    for part in ("eqs 1-16", "eqs 17-38", "eqs 39-75", "eqs 76-84", "wrong", "eqs 74-75"):
        assert part in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_the_tutorial_runs_top_to_bottom(monkeypatch):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel is a new process: it must import this checkout's autograd_lite
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # the graph cell shows the stepping page inline, with the SVG as a fallback
    pages = [o for o in outputs if o.output_type == "execute_result" and "text/html" in o.data]
    assert pages and "autogradLitePage(" in pages[0].data["text/html"]
    assert "image/svg+xml" in pages[0].data
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "the derivation is wrong" in printed and "training accuracy" in printed

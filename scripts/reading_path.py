"""Count the package lines that run for the README's ten lines: the forward pass and
``J.backward()`` of the seed's 3-4-1 network (eqs 26-29, 1 and 76, then eqs 77-84).

The lines are found by tracing (``sys.settrace``), not picked by hand: every line of
``autograd_lite`` that executes while those ten lines run, each counted once. Grouped by file in
the order docs/architecture.md asks a learner to read them (core/tensor.py, core/graph.py,
core/backward.py, then the ops the step uses). ``python scripts/reading_path.py`` prints the
table the docs quote.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import autograd_lite as ag  # noqa: E402

PACKAGE = str(ROOT / "autograd_lite")
READING_ORDER = ("core/tensor.py", "core/graph.py", "core/modes.py", "core/backward.py")


def readme_code(backward=True) -> str:
    """The README's ten lines ("The seed's network in ten lines") as README.md writes them,
    without their import line, numpy's global generator replaced by a seeded one (``rng``);
    ``backward=False`` stops at J."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## The seed's network in ten lines", 1)[1].split("```python\n", 1)[1]
    lines = [line for line in block.split("```", 1)[0].splitlines()
             if line.strip() and not line.startswith("import ")]
    if not backward:
        lines = lines[:next(i for i, line in enumerate(lines) if line.startswith("J = ")) + 1]
    return "\n".join(lines).replace("np.random.", "rng.")


def readme_step(seed=0, backward=True) -> dict:
    """Run the README's ten lines (forward and, unless ``backward=False``, ``J.backward()``);
    their variables by name."""
    names = {"np": np, "ag": ag, "rng": np.random.RandomState(seed)}
    exec(compile(readme_code(backward), str(ROOT / "README.md"), "exec"), names)
    return names


def executed_lines(step=readme_step) -> dict:
    """{file relative to the package: set of line numbers} run by ``step``."""
    lines: dict = {}

    def trace(frame, event, arg):
        filename = frame.f_code.co_filename
        if not filename.startswith(PACKAGE):
            return None  # numpy and the rest: not followed line by line
        if event == "line":
            lines.setdefault(Path(filename).relative_to(PACKAGE).as_posix(), set()).add(frame.f_lineno)
        return trace

    readme_step()  # once untraced, so that nothing first-time (imports, caches) is counted
    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        step()
    finally:
        sys.settrace(previous)
    return lines


def table():
    """Rows (file, lines run) in reading order, and the total."""
    counts = Counter({name: len(numbers) for name, numbers in executed_lines().items()})
    order = [name for name in READING_ORDER if name in counts]
    order += sorted(name for name in counts if name not in order)
    rows = [(name, counts[name]) for name in order]
    return rows, sum(counts.values())


if __name__ == "__main__":
    rows, total = table()
    for name, n in rows:
        print(f"{n:4d}  autograd_lite/{name}")
    print(f"{total:4d}  in all")

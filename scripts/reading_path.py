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


def readme_step():
    """The README's ten lines ("The seed's network in ten lines"), forward and backward."""
    rng = np.random.default_rng(0)
    X = ag.Tensor(rng.standard_normal((3, 5)))
    Y = ag.Tensor((rng.random((1, 5)) > 0.5) * 1.0)
    W1 = ag.Tensor(rng.standard_normal((4, 3)) * 0.01, requires_grad=True, name="W[1]")
    b1 = ag.Tensor(np.zeros((4, 1)), requires_grad=True, name="b[1]")
    W2 = ag.Tensor(rng.standard_normal((1, 4)) * 0.01, requires_grad=True, name="W[2]")
    b2 = ag.Tensor(np.zeros((1, 1)), requires_grad=True, name="b[2]")
    A1 = (W1 @ X + b1).sigmoid()
    A2 = (W2 @ A1 + b2).sigmoid()
    J = -(Y * A2.log() + (1 - Y) * (1 - A2).log()).mean()
    J.backward()
    return W1.grad, b1.grad


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

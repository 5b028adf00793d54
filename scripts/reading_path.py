"""Count the lines a reader follows from ``J.backward()`` to ``b1.grad`` (issue 10's measure of
legibility): the recording of an op, the traversal, the un-broadcast of eq 80, add's and
matmul's vjps and the accumulation into ``.grad``. Code lines only: no blank lines, comments or
docstrings. ``python scripts/reading_path.py`` prints the table docs/architecture.md quotes.
"""
from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograd_lite import autodiff, ops, tensor  # noqa: E402

# In the order a reader meets them: recording the forward pass, then backward.
READING_PATH = (
    ("tensor._record", tensor._record),
    ("autodiff.Node.__init__", autodiff.Node.__init__),
    ("tensor.Tensor._result", tensor.Tensor._result),
    ("tensor.Tensor._set", tensor.Tensor._set),
    ("ops.MatMul.forward", ops.MatMul.forward),
    ("ops.Add.compute", ops.Add.compute),
    ("tensor.Tensor.backward", tensor.Tensor.backward),
    ("autodiff.backpropagate", autodiff.backpropagate),
    ("autodiff.count_consumers", autodiff.count_consumers),
    ("autodiff.run_vjp", autodiff.run_vjp),
    ("ops.Add.vjp", ops.Add.vjp),
    ("ops.MatMul.vjp", ops.MatMul.vjp),
    ("autodiff.sum_to_shape", autodiff.sum_to_shape),
    ("autodiff.unbroadcast_axes", autodiff.unbroadcast_axes),
    ("tensor._accumulated", tensor._accumulated),
)


def code_lines(function) -> int:
    """Lines of ``function`` that hold code: its docstring, comments and blank lines left out."""
    source = textwrap.dedent(inspect.getsource(function))
    tree = ast.parse(source)
    body = tree.body[0].body
    docstring = set()
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        docstring = set(range(body[0].lineno, body[0].end_lineno + 1))
    count = 0
    for number, line in enumerate(source.splitlines(), start=1):
        text = line.strip()
        if text and not text.startswith("#") and number not in docstring:
            count += 1
    return count


def table():
    rows = [(name, code_lines(function)) for name, function in READING_PATH]
    return rows, sum(n for _, n in rows)


if __name__ == "__main__":
    rows, total = table()
    for name, n in rows:
        print(f"{n:4d}  {name}")
    print(f"{total:4d}  in all")

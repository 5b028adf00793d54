"""Comparing a printed report with the one a page shows, without pinning round-off.

A report shown in README.md or docs/*.md and the one the command prints today must say the same:
the same lines, the same words, verdicts (ok, FAIL, n/a, PASS) and integers (shapes, equation
numbers, m), and the same numbers *to the precision printed*. Digits below float64 rounding
depend on the CPU and the BLAS kernel; the reports print such numbers as a bound (``< 3e-15``,
docs/check.md "Round-off"), and here two numbers are the same when they differ by at most
one unit of their last printed digit (0.752726503116 and 0.752726503117; 2e-15 and 3e-15 as
bounds), or by ``rtol`` of their size. A number printed on one side and a bound on the other
are the same when the number is within the bound. Nothing else is forgiven: a changed word,
verdict, row or column fails.
"""
from __future__ import annotations

import re

# A bound "< 3e-15", or a number with a point or an exponent (compared to its precision), or
# an integer (compared exactly), or a run of other characters (compared exactly, spaces
# collapsed so that column widths may follow a cell's width).
_TOKEN = re.compile(r"""
    (?P<bound> <\ ?(?P<bound_value>\d(?:\.\d*)?e[-+]?\d+) )
  | (?P<float> (?<![\w.\]])[-+]?(?:\d+\.\d*(?:e[-+]?\d+)?|\d+e[-+]?\d+)(?![\w.]) )
  | (?P<int> \d+ )
  | (?P<text> [^\d<]+|< )
""", re.X)


def tokens(line: str) -> list:
    """``line`` as (kind, text) pairs: kind is "bound", "float", "int" or "text"."""
    out = []
    for match in _TOKEN.finditer(line):
        kind = match.lastgroup  # the outer group: "bound", not "bound_value"
        text = match.group("bound_value") if kind == "bound" else match.group(kind)
        if kind == "text":
            text = re.sub(r"\s+", " ", text)
        out.append((kind, text))
    # spaces at the end of a line are padding, not words
    if out and out[-1][0] == "text":
        out[-1] = ("text", out[-1][1].rstrip())
        if not out[-1][1]:
            out.pop()
    return out


def _unit(text: str) -> float:
    """One unit of the last printed digit of a number: 7.7e-17 -> 1e-18, 0.7527 -> 1e-4."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def _close(a: str, b: str, rtol: float) -> bool:
    x, y = float(a), float(b)
    if x != x or y != y:  # nan: the same only as nan
        return x != x and y != y
    # (1 + 1e-9): 7.8e-17 - 7.7e-17 is 1.0000000000000007e-18 in float64
    return abs(x - y) <= max(rtol * max(abs(x), abs(y)), _unit(a), _unit(b)) * (1 + 1e-9)


def same_line(shown: str, printed: str, rtol: float = 0.0) -> bool:
    """Whether two report lines say the same (see the module docstring)."""
    left, right = tokens(shown), tokens(printed)
    if len(left) != len(right):
        return False
    for (kind_a, a), (kind_b, b) in zip(left, right):
        if kind_a == kind_b == "text" or kind_a == kind_b == "int":
            if a.strip() != b.strip():
                return False
        elif kind_a == kind_b and kind_a in ("float", "bound"):
            if not _close(a, b, rtol):
                return False
        elif {kind_a, kind_b} == {"float", "bound"}:
            number, bound = (a, b) if kind_a == "float" else (b, a)
            if not float(number) <= float(bound) * (1 + rtol):
                return False
        else:
            return False
    return True


def assert_same_report(shown: str, printed: str, rtol: float = 0.0):
    """The whole report: the same number of lines, each the same (blank lines included)."""
    shown_lines, printed_lines = shown.rstrip("\n").split("\n"), printed.rstrip("\n").split("\n")
    for i, (a, b) in enumerate(zip(shown_lines, printed_lines), start=1):
        assert same_line(a, b, rtol), f"line {i} differs:\n  shown:   {a}\n  printed: {b}"
    assert len(shown_lines) == len(printed_lines), (
        f"{len(shown_lines)} lines shown, {len(printed_lines)} printed")


def assert_lines_appear(shown_lines, printed: str, rtol: float = 0.0, prefix: bool = False):
    """Each shown line is the same as some printed line (or, with ``prefix``, as the start of
    one: for excerpts that end in "...")."""
    candidates = printed.split("\n")
    for line in shown_lines:
        def matches(candidate):
            if prefix and len(candidate) > len(line):
                candidate = candidate[:len(line)]
            return same_line(line, candidate, rtol)
        assert any(matches(c) for c in candidates), f"not printed: {line}"

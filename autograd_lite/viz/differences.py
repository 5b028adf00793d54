"""Reading ``draw(compare=...)``: hand-vs-autodiff differences per gradient, from a mapping or
from the comparison report of ``autograd_lite.check.compare``.

``viz`` does not import ``check`` (the layers of DESIGN.md keep them side by side); a report is
recognised by its shape: ``rows`` in backward order (eqs 77-84), each with a ``label`` such as
``"dW[1]"`` and ``pairs["autodiff-reference"]`` holding ``relative`` and ``passed`` (or None
where the hand derivation has no value to compare: it stopped at a rule that does not
type-check, such as eq 55's ``dW = dZ A[l-1]``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

PAIR = "autodiff-reference"  # the hand derivation against autodiff


@dataclass(frozen=True)
class Difference:
    """One gradient's verdict. ``relative`` is ||hand − autodiff|| / (||hand|| + ||autodiff||),
    or None when the hand derivation has no value for it; ``roundoff`` (from a report) is the
    most rounding alone can make it, so that the picture prints ``< bound`` below it."""
    relative: float | None
    passed: bool
    roundoff: float = 0.0


@dataclass(frozen=True)
class Differences:
    by_name: dict          # "dW[1]" (or "W[1]") -> Difference
    order: tuple | None    # names in backward order (a report's rows); None: use the graph's
    legend: tuple          # what the caption says about the source and the tolerance
    first: str | None = None   # where the report says the two first part
    rows: dict = None          # a report's rows by name: hand and autodiff values
    wrong: str = ""            # the report's deliberately wrong rule, if any
    explanation: str = ""      # what the report says about where they part


def read(compare, tolerance) -> Differences:
    """``compare`` as Differences: a report (duck-typed, see the module docstring), or a
    mapping from name to relative difference (a number; None: no hand value), judged by
    ``tolerance``."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, Real) or not tolerance >= 0:
        raise ValueError(f"draw: tolerance must be a number of at least 0, got {tolerance!r}")
    if hasattr(compare, "rows"):
        return _from_report(compare)
    try:
        items = list(compare.items())
    except AttributeError:
        raise TypeError(f"draw: compare must be a mapping from tensor name to relative "
                        f"difference, or the report of autograd_lite.check.compare, got "
                        f"{type(compare).__name__}") from None
    by_name = {}
    for name, value in items:
        if value is None:
            by_name[str(name)] = Difference(None, False)
            continue
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"draw: compare[{name!r}] must be a number (a relative difference) "
                            f"or None (no hand value), got {type(value).__name__}")
        value = float(value)
        by_name[str(name)] = Difference(value, value <= tolerance)  # NaN fails
    legend = (f"fill: relative difference hand vs autodiff, green ≤ {tolerance:g} < red",)
    return Differences(by_name, None, legend)


def _from_report(report) -> Differences:
    by_name, order = {}, []
    for row in report.rows:
        pair = getattr(row, "pairs", {}).get(PAIR)
        if pair is None:
            by_name[row.label] = Difference(None, False)
        else:
            relative = float(pair.relative)
            by_name[row.label] = Difference(relative, bool(pair.passed),
                                            float(getattr(pair, "relative_roundoff", 0.0)))
        order.append(row.label)
    legend = []
    wrong = getattr(report, "wrong", "")
    explanation = getattr(report, "explanation", "")
    if wrong and wrong not in explanation:  # the report's explanation names it when it parts
        legend.append(f"hand derivation with a deliberately wrong rule: {wrong}")
    legend.append("fill: hand vs autodiff as in the comparison report: green where they agree "
                  "within the two ways' error bounds (docs/check.md), red where they differ")
    first = getattr(report, "first_failure", None)
    if first is not None and explanation and first.label in by_name and not by_name[first.label].passed:
        legend.append(f"report: {explanation}")
    rows = {row.label: row for row in report.rows}
    return Differences(by_name, tuple(order), tuple(legend),
                       getattr(first, "label", None), rows, wrong, explanation)


def rank(difference: Difference, first: bool) -> tuple:
    """Larger is worse: the first to differ, then a difference above tolerance (NaN worst), then
    no hand value, then agreement (by size). A layer box takes the colour of its worst member."""
    if difference.relative is None:
        return (3 if first else 1, math.inf)
    value = difference.relative if math.isfinite(difference.relative) else math.inf
    if first:
        return (3, value)
    return (0 if difference.passed else 2, value)

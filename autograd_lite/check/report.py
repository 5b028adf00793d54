"""The terminal form of a ``compare`` result: one row per quantity, in backward order.

Kept apart from ``compare`` so the computation and its presentation change independently;
``Comparison.to_dict()`` is the same content as data.
"""

from __future__ import annotations

import numpy as np

from ..roundoff import number

PAIR_TITLES = {"autodiff-reference": "autodiff vs reference",
               "autodiff-numeric": "autodiff vs numeric",
               "reference-numeric": "reference vs numeric"}


def format_comparison(c) -> str:
    """The report of a ``Comparison`` c as text (see docs/check.md for how to read it)."""
    sizes = "-".join(str(n) for n in c.layers)
    lines = [
        f"check: layers {sizes}, activations {','.join(c.activations)}, loss {c.loss}, m = {c.m}",
        f"hand derivation: {c.rules}" + (f" - {c.wrong}" if c.wrong else ""),
        f"J (eq 76): autodiff {c.J['autodiff']:.12g}, reference {c.J['reference']:.12g}"
        f"  {_J_verdict(c.J)}",
        f"dA, dZ below are dJ/dA, dJ/dZ (1/m inside); the seed's per-sample dA, dZ "
        f"(eqs 77-78, 81-82) are m = {c.m} times these. dW, db are the same in both.",
        "",
    ]
    table, rows = _pair_table(["quantity", "eq", "shape"],
                              lambda row: [row.label, str(row.equation), _shape(row)],
                              c.rows, PAIR_TITLES)
    lines += table
    lines.append("")
    numeric_note = ""
    sampled = [r for r in c.rows if r.numeric_elements < _size(r)]
    if sampled:
        numeric_note = (f" Finite differences were sampled for {', '.join(r.label for r in sampled)}.")
    # the steps themselves are in to_dict(): which one the search settles on may differ by a
    # factor of 10 between machines
    tolerance = f"{c.rule}; numeric: five-point central differences, the step searched per element."
    if c.passed:
        lines.append(f"PASS: the three ways agree on all {len(c.rows)} quantities "
                     f"({tolerance}){numeric_note}")
    elif c.first_failure is not None:
        lines.append(f"FAIL: the ways first part at {c.first_failure.label} "
                     f"(eq {c.first_failure.equation}), in backward order. {c.explanation}")
        lines.append(f"({tolerance}){numeric_note}")
    else:
        lines.append(f"FAIL: {c.explanation}")
    coarse = [r.label for r in c.rows if r.pairs["autodiff-numeric"] is not None
              and r.pairs["autodiff-numeric"].relative_roundoff >= 0.5]
    if coarse:
        lines.append(f"Finite differences cannot resolve {', '.join(coarse)}: their error there "
                     f"is as large as the gradient (J barely moves with it), so only the exact "
                     f"ways judge it.")
    if any(cell.startswith("<") for row in rows for cell in row):
        lines.append(LEGEND)
    lines.append(_sentinel(c.sentinel))
    return "\n".join(lines)


LEGEND = ("< x: within the pair's error bound: the difference is at most x, what the two ways' "
          "own errors can give (docs/check.md, How verdicts are decided).")


def pair_cells(pair) -> list:
    """max|diff|, relative and the verdict of a pair: a passing pair's numbers as their bounds
    (``< x``: digits below the error bound vary with the CPU and BLAS), a failing pair's in
    digits."""
    if pair.passed:
        return [number(pair.max_abs, pair.roundoff), number(pair.relative, pair.relative_roundoff),
                "ok"]
    return [number(pair.max_abs), number(pair.relative), "FAIL"]


def _shape(row) -> str:
    shapes = {s for s in row.shapes.values() if s is not None}
    text = "x".join(map(str, row.shapes["autodiff"])) if row.shapes["autodiff"] else "-"
    if row.shapes["reference"] is None:
        return f"{text} (ref: none)"
    if len(shapes) > 1:
        return f"{text} (ref: {'x'.join(map(str, row.shapes['reference']))})"
    return text


def _hand_shape(row) -> str:
    shape = "x".join(map(str, row.shapes["autodiff"])) or "scalar"
    if row.shapes["reference"] != row.shapes["autodiff"]:
        shape += f" (hand: {'x'.join(map(str, row.shapes['reference'])) or 'scalar'})"
    return shape


def _size(row) -> int:
    size = 1
    for n in row.shapes["autodiff"] or ():
        size *= n
    return size


def _pair_table(header, lead, rows, titles) -> tuple:
    """The table of both reports: per row the cells ``lead(row)`` says which quantity it is
    (under ``header``), then three per pair of ways in ``titles``' order (max|diff|, relative,
    verdict), in aligned columns under a first line that titles each pair's three. Returns
    the lines and the cells."""
    cells = [header + ["max|diff|", "relative", ""] * len(titles)]
    for row in rows:
        line = lead(row)
        for name in titles:
            pair = row.pairs[name]
            line += ["-", "-", "n/a"] if pair is None else pair_cells(pair)
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    widths[-1] = max(widths[-1], 4)  # room for FAIL in the last group, so titles line up
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in cells]
    heading, position = "", sum(widths[:len(header)]) + 2 * len(header)
    for i, title in enumerate(titles.values()):
        group = widths[len(header) + 3 * i: len(header) + 3 + 3 * i]
        heading = heading.ljust(position) + title
        position += sum(group) + 2 * len(group)
    return [heading] + lines, cells


def _sentinel(events) -> str:
    if events is None:
        return ("sentinel: not run (on Dask it would compute the graph at every operation; "
                "run check on numpy arrays to watch for saturation)")
    if not events:
        return "sentinel: no saturation, no log of a value <= 0, no overflow, no NaN or Inf"
    first = events[0]
    return (f"sentinel: {len(events)} event(s) while autodiff ran; first: {first['phase']} "
            f"{first['kind']} at {first['tensor']} ({first['op']}): {first['detail']}")


def _J_verdict(J: dict) -> str:
    if J["passed"]:
        return "ok"
    if not (np.isfinite(J["autodiff"]) and np.isfinite(J["reference"])):
        return "NOT FINITE"
    return "DIFFERENT"


DERIVATION_TITLES = {"autodiff-reference": "autodiff vs hand",
                     "autodiff-numeric": "autodiff vs numeric",
                     "reference-numeric": "hand vs numeric"}


DERIVATION_LEGEND = ("< x: within the pair's error bound: the difference is at most x, what "
                     "rounding can give (docs/check.md, Check any derivation).")


def format_derivation(c) -> str:
    """The report of a ``compare_derivation`` result as text (docs/check.md, "Check any
    derivation"): one row per hand-derived quantity, in backward order."""
    lines = [f"compare_derivation: {len(c.rows)} hand-derived quantities of J = {c.J:.12g}, "
             f"in backward order", ""]
    table, rows = _pair_table(["quantity", "shape"], lambda row: [row.label, _hand_shape(row)],
                              c.rows, DERIVATION_TITLES)
    lines += table
    lines.append("")
    if c.passed:
        lines.append(f"PASS: the hand derivation agrees with autodiff on all {len(c.rows)} "
                     f"quantities ({c.rule}; numeric, for leaves only: five-point central "
                     f"differences, the step searched per element).")
    else:
        lines.append(f"FAIL: the hand derivation first parts at {c.first_failure.label}, in "
                     f"backward order. {c.explanation}.")
        lines.append(f"({c.rule}; numeric, for leaves only.)")
    if any(cell.startswith("<") for row in rows for cell in row):
        lines.append(DERIVATION_LEGEND)
    return "\n".join(lines)

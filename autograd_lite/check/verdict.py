"""How two ways' arrays for one gradient are judged, and how a difference is explained.

Shared by ``compare`` (the seed's network, eqs 77-84) and ``compare_derivation`` (any graph):
the three pairs of ways judged the same way (``judge_ways``), and what their reports have in
common (``Report``: rows in backward order, the verdict, a row by its label, JSON).

The rule (docs/check.md, "How verdicts are decided"): a pair agrees when every element
differs by at most its tolerance, ``|a_i - b_i| <= t_i``, where ``t_i`` is what the two ways'
own errors can make of it: for two exact formulas, the sum of their round-off bounds
(``roundoff.product_bound`` and friends, computed from the operands' magnitudes); for finite
differences, their rounding and truncation estimate on top. There is no absolute floor: a
gradient of size 1e-12 is judged against bounds of size about 1e-28, not against 1e-8.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

# The ways compared, in pairs: "reference" is the hand derivation.
PAIRS = (("autodiff", "reference"), ("autodiff", "numeric"), ("reference", "numeric"))


@dataclass
class PairDiff:
    """Two ways' arrays for one quantity compared.

    ``max_abs`` is max |a - b|; ``relative`` is ||a - b|| / (||a|| + ||b||), which lies in
    [0, 1]. ``passed`` is the verdict: every element within its tolerance. ``roundoff`` is the
    largest element tolerance and ``relative_roundoff`` the relative difference the tolerances
    allow (at most 1): where the pair passes, the report prints these bounds, ``< x``, instead
    of digits that vary from machine to machine. ``excess`` is the largest |a_i - b_i| / t_i
    (at most 1 when passed).
    """

    max_abs: float
    relative: float
    passed: bool
    roundoff: float = 0.0
    relative_roundoff: float = 0.0
    excess: float = 0.0

    def to_dict(self) -> dict:
        return {"max_abs": finite_or_text(self.max_abs),
                "relative": finite_or_text(self.relative), "passed": self.passed,
                "excess": finite_or_text(self.excess),
                "roundoff": {"max_abs": finite_or_text(self.roundoff),
                             "relative": finite_or_text(self.relative_roundoff)}}


def judge(a: np.ndarray, b: np.ndarray, tolerance: np.ndarray) -> PairDiff:
    """The verdict on arrays a and b of one shape, each element allowed ``tolerance`` (an array
    of that shape, or a number). NaN or Inf in either fails; an infinite tolerance (the bound
    itself overflowed: values at the edge of float64's range) fails: nothing can vouch for it."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return PairDiff(0.0, 0.0, True)
    tolerance = np.broadcast_to(np.asarray(tolerance, dtype=np.float64), a.shape)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.abs(a - b)
        finite = bool(np.all(np.isfinite(diff)))
        max_abs = float(np.max(diff)) if finite else float("nan")
        norms = float(np.linalg.norm(a) + np.linalg.norm(b)) if finite else float("nan")
        if not finite or not np.isfinite(norms):
            relative = float("nan")
        else:
            relative = min(1.0, float(np.linalg.norm(a - b) / norms)) if norms > 0 else 0.0
        within = (diff <= tolerance) & np.isfinite(tolerance)
        passed = finite and bool(np.all(within))
        excess = float(np.max(np.where(diff == 0, 0.0, diff / tolerance))) if finite else float("inf")
        t = tolerance[np.isfinite(tolerance)]
        roundoff = float(t.max()) if t.size else float("inf")
        if norms > 0 and np.all(np.isfinite(tolerance)):
            relative_roundoff = min(1.0, float(np.linalg.norm(tolerance) / norms))
        else:
            relative_roundoff = 1.0 if norms > 0 else 0.0
    return PairDiff(max_abs, relative, passed, roundoff, relative_roundoff, excess)


def judge_ways(values: dict, sampled, bounds: dict, numeric_error) -> dict:
    """Every pair of ``PAIRS`` judged, keyed "autodiff-reference", ...: None where a way has no
    value or the shapes differ. ``values`` maps a way to its array (or None), ``bounds`` an
    exact way (autodiff, reference) to how far it may be from the exact value; a pair of exact
    ways is allowed the sum of their bounds, a pair with finite differences (which check only
    the elements ``sampled``) the exact way's bound plus ``numeric_error``, their own."""
    pairs = {}
    for a, c in PAIRS:
        left, right = values[a], values[c]
        if left is None or right is None or left.shape != right.shape:
            pairs[f"{a}-{c}"] = None
        elif c == "numeric":
            tolerance = bounds[a] + numeric_error
            pairs[f"{a}-{c}"] = judge(left[sampled], right[sampled], tolerance[sampled])
        else:
            pairs[f"{a}-{c}"] = judge(left, right, bounds[a] + bounds[c])
    return pairs


class Report:
    """What the reports of ``compare`` and ``compare_derivation`` share: ``rows`` in backward
    order, each with a ``label`` (``dW[1]``), ``shapes`` and ``pairs``; ``passed`` (also
    ``bool(report)``); ``row(label)``; ``to_json()`` of the subclass's ``to_dict()``; and
    ``str(report)``, the subclass's ``format`` (``check.report``)."""

    caller = "compare"  # the function a wrong label is reported for

    def __bool__(self) -> bool:
        return self.passed

    def row(self, label: str):
        """The row of ``label``, e.g. ``report.row("dW[1]")``."""
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(f"{self.caller}: no quantity {label!r}; there are "
                       f"{', '.join(r.label for r in self.rows)}")

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        return self.format()


def row_dict(row) -> dict:
    """A row's shapes and pairs as data (lists and dicts, JSON's), as both reports write them."""
    return {"shapes": {way: (list(s) if s is not None else None) for way, s in row.shapes.items()},
            "pairs": {name: (p.to_dict() if p is not None else None)
                      for name, p in row.pairs.items()}}


def ratio(a, b):
    """k when a is k times b (to 1e-6 of their size, k != 0), else None: a constant factor."""
    if a is None or b is None or np.shape(a) != np.shape(b):
        return None
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        norm = float(np.dot(b, b))
    if norm == 0 or not np.isfinite(norm):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        k = float(np.dot(a, b) / norm)
    if not np.isfinite(k) or k == 0 or np.linalg.norm(a - k * b) > 1e-6 * np.linalg.norm(a):
        return None
    return k


def factor_text(k: float, m: int | None) -> str:
    """Words for hand = k x autodiff: m times too large or small, the wrong sign, k times."""
    for value, text in ((m, "it is m = {m} times too large: the 1/m of the mean (eq 76) is missing"),
                        (1.0 / m if m else None,
                         "it is m = {m} times too small: the 1/m of the mean (eq 76) is applied twice")):
        if m and m != 1 and value is not None and np.isclose(k, value, rtol=1e-6):
            return text.format(m=m)
    if np.isclose(k, -1.0, rtol=1e-6):
        return "it has the wrong sign"
    if np.isclose(abs(k), 1.0, rtol=1e-6):
        return ""
    sign = " and the wrong sign" if k < 0 else ""
    if abs(k) > 1:
        return f"it is {abs(k):.6g} times too large{sign}"
    return f"it is {1 / abs(k):.6g} times too small{sign}"


def finite_or_text(value):
    return value if np.isfinite(value) else str(value)

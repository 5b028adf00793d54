"""Finite differences with a step chosen from the error analysis, and an error estimate.

The five-point central stencil

    D(h) = (J(-2h) - 8 J(-h) + 8 J(h) - J(2h)) / 12h

errs in two ways: truncation, c h^4 (it is exact for polynomials of degree 4), and rounding:
each J is computed with an error of at most e_J, which the stencil turns into at most
(1 + 8 + 8 + 1) e_J / 12h = 1.5 e_J / h. A fixed step cannot serve every scale (at |x| = 1e8
a step of 1e-6 is below the float spacing; with J ~ 1e10 the rounding term swamps the
gradient; with a gradient of 1e-12 it does too), so the step is searched: starting from 1e-3
of the element's size, it moves by factors of 10 (up to 10 times that size) while the
estimated error

    error(h) = 2 (1.5 e / h) + 2 |D(h) - D(2h)| / 15,
    e = max(e_J, 8 EPS max|J|) + EPS max|J| + |D| EPS |x|

shrinks. e is the rounding of one J: e_J at the point, in proportion to |J| away from it,
plus the stencil's own sum and the rounding of x + t itself. |D(h) - D(2h)| / 15 is Richardson's estimate of D(h)'s truncation error (D(2h)
errs by 16 c h^4); the factors of 2 leave room for the estimate's own error. A kink within 4h
of the point shows up as a large truncation estimate, not as a wrong derivative.
"""
from __future__ import annotations

import math

import numpy as np

from ..roundoff import EPS, ROUNDING

STENCIL_GAIN = 1.5   # (1 + 8 + 8 + 1) / 12
MAX_MOVES = 10


OFFSETS = (-4, -2, -1, 1, 2, 4)  # the stencil's points, in steps h: J is read at t = k h


def five_point(values, h: float) -> tuple:
    """D(h), D(2h) from J at t = -4h, -2h, -h, h, 2h, 4h (``values``, in that order: J with the
    element moved by t), and the largest |J| read: each J rounds in proportion to its own size,
    which grows with the step."""
    at = dict(zip(OFFSETS, values))
    d1 = (at[-2] - 8 * at[-1] + 8 * at[1] - at[2]) / (12 * h)
    d2 = (at[-4] - 8 * at[-2] + 8 * at[2] - at[4]) / (24 * h)
    return d1, d2, max(abs(v) for v in values)


def derivative(J_at, size: float, e_J: float, h_max: float = math.inf, smooth=None) -> tuple:
    """dJ/dx at one element by the five-point stencil, the step searched as the module says.

    ``J_at(t)`` is J with the element moved by t. ``size`` is the element's magnitude (the
    search starts at 1e-3 of it, or at 1e-3 if it is 0, and never goes beyond 10 times it: far
    from the point, a function that flattens out (a saturated tanh) makes D(h) and D(2h) agree
    on a wrong value); ``e_J`` bounds the rounding of each J; ``h_max`` caps the step further
    (e.g. to keep a probability inside (0, 1)). A step is taken only if its value agrees with
    the previous one within their error estimates. ``smooth(t)``, if given, says whether J is
    smooth between the point and the point moved by t (no relu kink crossed): steps that cross
    one are not taken, and when even the smallest does, the derivative is NaN with an infinite
    error (J has none there). Returns ``(value, error estimate, step)``.
    """
    return run(search(size, e_J, h_max, smooth), lambda offsets: [J_at(t) for t in offsets])


def search(size: float, e_J: float, h_max: float = math.inf, smooth=None):
    """``derivative``'s search as a generator, for callers that evaluate J themselves: it
    yields the offsets t at which it needs J (one stencil, six at a time), is sent their
    values in that order, and returns ``(value, error estimate, step)``. ``run`` drives one
    search; ``lockstep`` drives many at once, so that each round of them reads J in one go
    (on Dask, one compute for every element's stencil instead of one per evaluation)."""
    scale = size if size > 0 else 1.0
    h_max = min(h_max, 10 * scale)
    h = min(1e-3 * scale, h_max)
    if not h > 0:
        return float("nan"), float("inf"), 0.0

    if smooth is not None:
        while h >= 1e-300 and not (smooth(4 * h) and smooth(-4 * h)):
            h *= 0.1
        h_max = min(h_max, h)
        if h < 1e-300:
            return float("nan"), float("inf"), 0.0

    def attempt(h):
        d1, d2, largest = five_point((yield tuple(k * h for k in OFFSETS)), h)
        if not (np.isfinite(d1) and np.isfinite(d2)):
            return d1, math.inf
        # each J within e_J, or within ROUNDING of its size away from the point, and the
        # stencil's own sum; x + t rounds to a neighbour of x + t, moving the point by up to
        # EPS |x| as well
        e = max(e_J, ROUNDING * largest) + EPS * largest + abs(d1) * EPS * size
        return d1, 2 * STENCIL_GAIN * e / h + 2 * abs(d1 - d2) / 15

    best = (h,) + (yield from attempt(h))
    for factor in (10.0, 0.1):
        moves = 0
        while moves < MAX_MOVES:
            h = best[0] * factor
            if h > h_max or h < 1e-300:
                break
            if smooth is not None and factor > 1 and not (smooth(4 * h) and smooth(-4 * h)):
                break
            trial = (h,) + (yield from attempt(h))
            if not (trial[2] < best[2] and abs(trial[1] - best[1]) <= trial[2] + best[2]):
                break
            best, moves = trial, moves + 1
        if moves:
            break  # it improved this way: the other way only goes back
    step, value, error = best
    return float(value), float(error), float(step)


def run(steps, evaluate):
    """Drive one generator of ``search``'s kind: ``evaluate(offsets)`` returns J at each offset;
    returns what the generator returns."""
    try:
        offsets = next(steps)
        while True:
            offsets = steps.send(evaluate(offsets))
    except StopIteration as done:
        return done.value


def lockstep(searches, evaluate) -> list:
    """Many generators of ``search``'s kind driven together, round by round: each round calls
    ``evaluate`` once with every open request, ``[(search number, offsets), ...]``, and gets
    back J at those offsets, a list per request. Each search takes exactly the steps it takes
    alone (``run``); only the evaluations are gathered, so the number of rounds is the longest
    search's, whatever the number of searches. Returns their results in order."""
    results = [None] * len(searches)
    requests = {}

    def advance(k, step):
        try:
            requests[k] = step()
        except StopIteration as done:
            results[k] = done.value
            requests.pop(k, None)
    for k, steps in enumerate(searches):
        advance(k, steps.__next__)
    while requests:
        batch = list(requests.items())
        for (k, _), values in zip(batch, evaluate(batch)):
            advance(k, lambda: searches[k].send(values))  # noqa: B023 - called at once
    return results

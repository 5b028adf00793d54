"""How big float64 rounding is, and how a number at that level is printed (docs/check.md,
"Round-off").

Two exact formulas for the same gradient (autodiff and the hand derivation) differ only in the
order of their float64 operations, and which last bits round depends on the CPU, the BLAS
kernel and the numpy build: 7.7e-17 on one machine is 6.3e-17 on another. Printing such digits
makes a report that changes from machine to machine while saying nothing. So a number at or
below the most that rounding alone can give is printed as that bound, ``< 3e-15``, which
depends only on the size of the values, not on their last bits.
"""
from __future__ import annotations

import math

import numpy as np

EPS = float(np.finfo(np.float64).eps)   # 2**-52, about 2.2e-16: float64's relative spacing
# How far rounding may move one computed value, relative to the size of the values it is made
# from: a few dozen float64 operations (a matmul's or a sum's terms, exp, log, a division),
# each rounding by at most EPS / 2, taken as a round multiple of EPS.
ROUNDING = 8 * EPS


def number(value: float, bound: float = 0.0, digits: int = 2) -> str:
    """``value`` in exponent notation with ``digits`` significant digits, or ``< bound`` (bound
    rounded up to one digit) when ``0 < value <= bound`` or ``value == 0 < bound``: a number
    within round-off is printed as its bound, never as its machine-dependent digits."""
    if bound > 0 and value <= bound:   # NaN compares False: printed as nan
        return f"< {round_up(bound)}"
    return f"{value:.{digits - 1}e}"


def round_up(bound: float) -> str:
    """``bound`` > 0 rounded up to one significant digit, as text: 1.3e-15 -> ``2e-15``.

    The quotient is first rounded to 9 decimals, so that a bound a few ulps above a digit
    (2e-15 computed as 2.0000000000000004e-15) prints as that digit on every machine.
    """
    exponent = math.floor(math.log10(bound))
    digit = math.ceil(round(bound / 10.0 ** exponent, 9))
    if digit == 10:
        digit, exponent = 1, exponent + 1
    return f"{digit}e{exponent:+03d}"


# ---- forward error bounds -----------------------------------------------------------------
# How far a computed value can be from the exact one, element by element, from the operands'
# magnitudes (the standard forward error analysis, e.g. Higham, "Accuracy and Stability of
# Numerical Algorithms", ch. 3). The unit is EPS (twice the unit roundoff EPS / 2), so every
# bound carries a factor of 2 to spare for the order of operations, fused multiply-adds and
# the BLAS kernel's blocking, all of which only lower the error.

# An elementary function (exp, log, tanh, log1p) from numpy is accurate to a few ulps on every
# platform it supports; its result is allowed FUNCTION * EPS of its size.
FUNCTION = 4
# Results this small round in absolute terms (subnormal numbers): every bound gets this much.
UNDERFLOW = 16 * float(np.finfo(np.float64).smallest_subnormal)


def gamma(n: int) -> float:
    """The factor of a sum of n terms: its rounding is at most gamma(n) * sum |terms|
    (Higham's gamma_n = n u / (1 - n u), here with u = EPS)."""
    n_eps = n * EPS
    return n_eps / (1.0 - n_eps)


def product_bound(A, eA, B, eB) -> np.ndarray:
    """The error of the matrix product ``A @ B`` computed from A and B that are themselves off
    by at most eA and eB elementwise: ``gamma(k) |A||B| + eA |B| + |A| eB`` (k the inner size,
    plus 2 for a scaling by 1/m and a conversion between conventions)."""
    A, B = np.abs(A), np.abs(B)
    k = A.shape[-1]
    return gamma(k + 2) * (A @ B) + eA @ B + A @ eB + UNDERFLOW


def sum_bound(x, ex, axis, keepdims=True) -> np.ndarray:
    """The error of ``x.sum(axis)`` from x off by at most ex: ``gamma(k) sum|x| + sum ex``."""
    x = np.abs(x)
    k = x.shape[axis] if np.ndim(x) else 1
    return (gamma(k + 2) * x.sum(axis=axis, keepdims=keepdims)
            + np.sum(ex, axis=axis, keepdims=keepdims) + UNDERFLOW)

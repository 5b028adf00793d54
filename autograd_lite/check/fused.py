"""Fused vs composed log-loss: where ``dZ[N] = A[N] - Y`` holds exactly, and where it breaks.

The seed chains eq 77 into eq 78 and simplifies: for a sigmoid output with log-loss,
``dZ[N] = A[N] - Y`` (note under eq 84). An engine can get there two ways:

- composed: eq 1 written with log, ``-(Y log(sigmoid(Z)) + (1 - Y) log(1 - sigmoid(Z)))``, the
  chain of log, sub, mul and sigmoid. (``binary_cross_entropy`` itself does not take this
  chain: on a recorded sigmoid it uses the logits, as the fused row does.)
  Its vjps compute ``-(Y/A) + (1-Y)/(1-A)`` and multiply by ``A(1-A)`` (eq 8): the same number as
  ``A - Y`` up to rounding, as long as A is strictly between 0 and 1.
- fused: ``binary_cross_entropy_with_logits(Z, Y)``, one primitive whose vjp *is* ``A - Y``
  (divided by m), and whose forward never forms ``log(A)`` or ``log(1 - A)``.

In float64, sigmoid(z) rounds to exactly 1.0 once z > 36.7 (and to 0.0 once z < -745). Then
the composed loss takes ``log(0)``, multiplies ``0 * inf`` and divides ``0 / 0``: J is inf or NaN
and so is dZ. The fused one still returns ``A - Y`` bit for bit. ``fused_vs_composed`` shows
both, one sample (m = 1) per row, next to the exact value ``s(z) - y`` computed as
``(1 - y) s(z) - y s(-z)``, which no rounding of A can spoil.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .. import reference as ref
from ..losses import binary_cross_entropy_with_logits
from ..core.tensor import Tensor
from .sentinel import Sentinel

DEFAULT_Z = (-800.0, -40.0, -20.0, -5.0, 0.0, 5.0, 20.0, 30.0, 37.0, 40.0, 800.0)


@dataclass
class FusedRow:
    """One sample: z, y, A = s(z) in float64, both losses, both dJ/dZ, and the verdicts."""

    z: float
    y: float
    A: float
    J_composed: float
    J_fused: float
    J_exact: float
    dZ_composed: float
    dZ_fused: float
    A_minus_Y: float
    dZ_exact: float
    composed_is_A_minus_Y: bool   # bit for bit
    fused_is_A_minus_Y: bool      # bit for bit
    agree: bool                   # composed and fused within rtol, J and dZ
    first_event: str              # what the sentinel saw first in the composed run ("" if none)
    why: str                      # why they part, "" where they agree

    def to_dict(self) -> dict:
        return {key: (str(v) if isinstance(v, float) and not np.isfinite(v) else v)
                for key, v in self.__dict__.items()}


@dataclass
class FusedComparison:
    """Rows of ``fused_vs_composed``; ``str()`` is a table, ``to_dict()`` the data."""

    rows: list
    rtol: float

    @property
    def agree_everywhere(self) -> bool:
        return all(r.agree for r in self.rows)

    @property
    def parting(self) -> list:
        """The rows where composed and fused part."""
        return [r for r in self.rows if not r.agree]

    def to_dict(self) -> dict:
        return {"rtol": self.rtol, "rows": [r.to_dict() for r in self.rows],
                "parting_z": sorted({r.z for r in self.parting})}

    def __str__(self) -> str:
        header = ["z", "y", "A = s(z)", "J composed", "J fused", "dZ composed", "dZ fused",
                  "A - Y", "exact s(z)-y", "composed = A-Y", "fused = A-Y", ""]
        table = [header]
        for r in self.rows:
            table.append([f"{r.z:g}", f"{r.y:g}", _num(r.A), _num(r.J_composed), _num(r.J_fused),
                          _num(r.dZ_composed), _num(r.dZ_fused), _num(r.A_minus_Y),
                          _num(r.dZ_exact), _yes(r.composed_is_A_minus_Y),
                          _yes(r.fused_is_A_minus_Y), "agree" if r.agree else "PART"])
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = ["fused vs composed log-loss, one sample per row (m = 1, so dJ/dZ = A - Y, "
                 "note under eq 84)"]
        lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)).rstrip() for row in table]
        every_label = sorted({r.z for r in self.rows}
                             - {r.z for r in self.rows if not r.agree})
        if every_label:
            lines.append(f"They agree (relative difference <= {self.rtol:g} in J and dZ) for "
                         f"every label at z = {', '.join(f'{z:g}' for z in every_label)}.")
        seen = set()
        for r in self.parting:
            if r.why in seen:
                continue
            seen.add(r.why)
            zs = ", ".join(f"{p.z:g} (y={p.y:g})" for p in self.parting if p.why == r.why)
            lines.append(f"They part at z = {zs}: {r.why}")
        lines.append("Fused dZ equals A - Y bit for bit in every row: that is its vjp. The exact "
                     "column shows that A - Y itself keeps fewer digits the closer A is to 1 (see "
                     "z = 30); only the composed chain turns that into NaN.")
        return "\n".join(lines)

    __repr__ = __str__


def fused_vs_composed(Z=DEFAULT_Z, Y=(0.0, 1.0), *, rtol: float = 1e-6) -> FusedComparison:
    """Compare the composed and the fused log-loss for every z in ``Z`` and label y in ``Y``."""
    rows = [_row(float(z), float(y), rtol) for z in Z for y in Y]
    return FusedComparison(rows, rtol)


def _row(z: float, y: float, rtol: float) -> FusedRow:
    labels = np.array([[y]])
    Z = Tensor([[z]], requires_grad=True, name="Z[N]")
    with Sentinel(action="record") as watch, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the sentinel records it; the table explains it
        A = Z.sigmoid().named("A[N]")
        # Eq 1 written with log, as a learner writes it (and as binary_cross_entropy computed
        # it before it took the logits of a sigmoid and the limit 0 log 0 = 0).
        J = (-(labels * A.log() + (1 - labels) * (1 - A).log()).sum() / 1).named("J")
        J.backward()
    Z_fused = Tensor([[z]], requires_grad=True, name="Z[N]")
    J_fused = binary_cross_entropy_with_logits(Z_fused, labels)
    J_fused.backward()

    a = float(A.data[0, 0])
    dZ_composed, dZ_fused = float(Z.grad[0, 0]), float(Z_fused.grad[0, 0])
    A_minus_Y = a - y
    # Exact, from the reference's own sigmoid: s(z) - y = (1 - y) s(z) - y s(-z), and
    # J = softplus(z) - z y; neither ever forms 1 - s(z).
    dZ_exact = float((1 - y) * ref.sigmoid(np.float64(z)) - y * ref.sigmoid(np.float64(-z)))
    J_exact = float(np.logaddexp(0.0, z) - z * y)
    J_agrees = _close(J.item(), J_fused.item(), rtol)
    dZ_agrees = _close(dZ_composed, dZ_fused, rtol)
    agree = J_agrees and dZ_agrees
    return FusedRow(z, y, a, J.item(), J_fused.item(), J_exact, dZ_composed, dZ_fused, A_minus_Y,
                    dZ_exact, dZ_composed == A_minus_Y, dZ_fused == A_minus_Y, agree,
                    watch.events[0].describe() if watch.events else "",
                    "" if agree else _why(a, J_agrees, dZ_agrees))


def _close(a: float, b: float, rtol: float) -> bool:
    if not (np.isfinite(a) and np.isfinite(b)):
        return False
    return abs(a - b) <= rtol * max(abs(a), abs(b)) or abs(a - b) <= 1e-300


def _why(a: float, J_agrees: bool, dZ_agrees: bool) -> str:
    if a == 1.0:
        return ("s(z) rounds to exactly 1.0 (z > 36.7), so 1 - A = 0: the composed loss takes "
                "log(1 - A) = log(0) = -inf (J = inf for y = 0; for y = 1, 0 * -inf = NaN) and "
                "its vjps divide by 1 - A = 0 and multiply by A(1 - A) = 0 (eq 8): dZ is NaN. The "
                "fused primitive never forms log(1 - A), and its vjp is A - Y.")
    if a == 0.0:
        return ("s(z) rounds to exactly 0.0 (z < -745), so the composed loss takes log(A) = "
                "log(0) = -inf (J = inf for y = 1; for y = 0, 0 * -inf = NaN) and its vjp "
                "divides by A = 0: dZ is NaN. The fused primitive never forms log(A).")
    if dZ_agrees:
        return ("the composed J takes log(1 - A) of a 1 - A that rounding has stripped of most "
                "digits (A within ~1e-13 of 1, or so small that 1 - A rounds to 1), so J keeps "
                "few correct digits; dZ still agrees, since both vjps end in the same A - Y. The "
                "fused J = max(z, 0) - z y + log(1 + e^-|z|) never forms 1 - A.")
    return ("A is so close to 0 or 1 that 1 - A (or A) has lost most of its digits, and the "
            "composed vjp divides by it; the fused vjp is A - Y and divides by nothing.")


def _num(value: float) -> str:
    return f"{value:.6g}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"

"""compare: one network's gradients three ways — autodiff, the hand derivation, finite differences.

For every layer l, in backward order (dA[N], dZ[N], dW[N], db[N], dA[N-1], ...), it reports the
shapes, the largest absolute difference, the relative difference ``||a - b|| / (||a|| + ||b||)``
and pass/fail for each pair of ways, with the seed's equation number, and names the FIRST
quantity where the ways part: in backward order every later quantity inherits the mistake,
so the first one is where to look.

The three ways:

- ``autodiff``: the network built from Tensor operations (eqs 33-34), ``retain_grad()`` on
  every Z[l] and A[l], ``J.backward()``.
- ``reference``: ``autograd_lite.reference.derive`` — eqs 77-84 by hand, optionally with a
  deliberately wrong rule (``reference.wrong_rules``) or your own (``reference.Rules``).
- ``numeric``: central finite differences of J (five-point stencil), computed by the forward
  pass of eqs 33-34 and eq 76 in plain numpy (``reference.J_of``), perturbing each element of
  W[l], b[l], Z[l], A[l]. For A[N] under a log the step shrinks so that A[N] stays inside (0, 1).

Convention: every dA and dZ printed is dJ/dA, dJ/dZ (the autodiff convention: it carries the
1/m of eq 76). The seed writes eqs 77-78, 81-82 per sample; its dA, dZ are these times m.
dW and db are the same in both conventions (EQUATIONS.md, note under eq 84).

Pass: a pair agrees when ``max |a - b| <= atol`` or ``relative <= rtol`` (defaults 1e-8 and
1e-6: analytic ways agree to ~1e-15, the five-point differences with eps = 1e-6 to ~1e-9).

Round-off: each pair also carries ``roundoff``, the most that float64 rounding alone can move
one element of the difference (docs/check.md, "Round-off"). Which bits round depends on the
CPU and the BLAS kernel, so the report prints a number within it as ``< bound`` instead of
digits that would differ from machine to machine.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import reference as ref
from ..roundoff import ROUNDING
from ..core.tensor import Tensor
from .sentinel import Sentinel

WAYS = ("autodiff", "reference", "numeric")
PAIRS = (("autodiff", "reference"), ("autodiff", "numeric"), ("reference", "numeric"))

# The five-point stencil (J(-2h) - 8 J(-h) + 8 J(h) - J(2h)) / 12h turns an error e in each J
# into at most (1 + 8 + 8 + 1) e / 12h = 1.5 e / h in the derivative.
STENCIL_GAIN = 1.5


@dataclass
class PairDiff:
    """Two ways' arrays for one quantity compared: max |a - b|, ||a - b|| / (||a|| + ||b||).

    ``roundoff`` is the most that rounding alone can make one element of ``a - b`` (0 when
    there is no scale to round, e.g. two zero arrays); ``relative_roundoff`` is what
    ``relative`` would be if every element differed by that much. A number at or below its
    bound says nothing but "equal to rounding", and its digits vary with the machine.
    """

    max_abs: float
    relative: float
    passed: bool
    roundoff: float = 0.0
    relative_roundoff: float = 0.0

    def to_dict(self) -> dict:
        return {"max_abs": _finite_or_text(self.max_abs),
                "relative": _finite_or_text(self.relative), "passed": self.passed,
                "roundoff": {"max_abs": _finite_or_text(self.roundoff),
                             "relative": _finite_or_text(self.relative_roundoff)}}


@dataclass
class Row:
    """One quantity of one layer, e.g. dW[2] (eq 79), the three ways compared."""

    quantity: str
    layer: int
    equation: int
    shapes: dict                      # way -> shape, None where that way has no value
    pairs: dict                       # "autodiff-reference" -> PairDiff, None if not comparable
    numeric_elements: int             # how many elements finite differences checked
    values: dict = field(repr=False, default_factory=dict)  # way -> ndarray (None if missing)
    sampled: np.ndarray | None = field(repr=False, default=None)  # elements numeric checked

    @property
    def label(self) -> str:
        return f"{self.quantity}[{self.layer}]"

    @property
    def passed(self) -> bool:
        return all(p is not None and p.passed for p in self.pairs.values())

    def to_dict(self) -> dict:
        return {"quantity": self.quantity, "layer": self.layer, "label": self.label,
                "equation": self.equation,
                "convention": ("dJ/d" + self.quantity[1:] + " (autodiff; the seed's per-sample "
                               "value divided by m)") if self.quantity in ("dA", "dZ")
                              else "dJ/d" + self.quantity[1:] + " (same in both conventions)",
                "shapes": {way: (list(s) if s is not None else None) for way, s in self.shapes.items()},
                "pairs": {name: (p.to_dict() if p is not None else None)
                          for name, p in self.pairs.items()},
                "numeric_elements": self.numeric_elements, "passed": self.passed}


@dataclass
class Comparison:
    """The result of ``compare``: rows in backward order, the verdict, and the first parting.

    ``str(comparison)`` is the terminal report; ``to_dict()`` / ``to_json()`` the same as data.
    """

    layers: tuple
    activations: tuple
    loss: str
    m: int
    rules: str
    wrong: str
    J: dict
    rows: list
    first_failure: Row | None
    explanation: str
    sentinel: list
    rtol: float
    atol: float
    eps: float

    @property
    def passed(self) -> bool:
        return self.first_failure is None and self.J["passed"]

    def __bool__(self) -> bool:
        return self.passed

    def row(self, label: str) -> Row:
        """The row of ``label``, e.g. ``comparison.row("dW[1]")``."""
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(f"compare: no quantity {label!r}; there are "
                       f"{', '.join(r.label for r in self.rows)}")

    def to_dict(self) -> dict:
        first = None
        if self.first_failure is not None:
            first = {"label": self.first_failure.label, "quantity": self.first_failure.quantity,
                     "layer": self.first_failure.layer, "equation": self.first_failure.equation,
                     "explanation": self.explanation}
        return {
            "network": {"layers": list(self.layers), "activations": list(self.activations),
                        "loss": self.loss, "m": self.m},
            "rules": self.rules, "wrong": self.wrong or None,
            "convention": "dA, dZ are dJ/dA, dJ/dZ (autodiff; the seed's per-sample eqs 77-78 "
                          "and 81-82 divided by m); dW, db are dJ/dW, dJ/db in both",
            "tolerance": {"rtol": self.rtol, "atol": self.atol, "eps": self.eps},
            "J": {k: (_finite_or_text(v) if isinstance(v, float) else v) for k, v in self.J.items()},
            "rows": [r.to_dict() for r in self.rows],
            "first_failure": first,
            "sentinel": self.sentinel,
            "passed": self.passed,
        }

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        from .report import format_comparison
        return format_comparison(self)


def compare(W, b, X, Y, activations, loss: str = "log-loss", *, rules: ref.Rules = ref.SEED_RULES,
            convention: str = "seed", rtol: float = 1e-6, atol: float = 1e-8, eps: float = 1e-6,
            max_numeric: int = 256, seed: int = 0) -> Comparison:
    """Gradients of one network three ways, per layer and quantity (see the module docstring).

    ``W``, ``b``: lists of the N layers' arrays (W[l] is n[l] x n[l-1], b[l] is n[l] x 1);
    ``X`` n[0] x m; ``Y`` n[N] x m; ``activations`` one name per layer; ``loss`` as in
    ``reference``. ``rules`` and ``convention`` are handed to ``reference.derive`` (the
    reference's dA, dZ are converted to dJ/dA, dJ/dZ before comparing). Finite differences
    check every element of a quantity with at most ``max_numeric`` elements, else a random
    (``seed``) sample of that many.
    """
    W, b, X, Y, activations = ref.validate_network(W, b, X, Y, activations, loss, convention,
                                                         caller="compare")
    return compare_ways(W, b, X, Y, activations, loss, _autodiff(W, b, X, Y, activations, loss),
                        rules=rules, convention=convention, rtol=rtol, atol=atol, eps=eps,
                        max_numeric=max_numeric, seed=seed)


def compare_ways(W, b, X, Y, activations, loss, autodiff_way, *, rules, convention, rtol, atol,
                 eps, max_numeric, seed) -> Comparison:
    """The comparison proper, given the autodiff way's ``(grads, J, sentinel events)``: what
    ``compare`` builds from Tensor operations, or what ``compare_model`` gets from an nn model."""
    autodiff, J_autodiff, events = autodiff_way
    N, m = len(W), X.shape[1]
    rng = np.random.default_rng(seed)
    # NOTE: numpy's own divide/invalid warnings would repeat, less precisely, what the
    # sentinel line of the report says about a saturated network.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        derivation, clash = _reference(W, b, X, Y, activations, loss, rules, convention)
        rows = []
        for l in range(N, 0, -1):
            for quantity in ref.QUANTITIES:
                values = {"autodiff": autodiff[quantity][l],
                          "reference": _reference_value(derivation, quantity, l)}
                values["numeric"], sampled, step = _numeric(W, b, X, Y, activations, loss,
                                                            quantity, l, eps, max_numeric, rng)
                # each J the stencil reads is rounded by up to ROUNDING |J| (a mean of
                # non-negative losses, eq 76)
                numeric_roundoff = STENCIL_GAIN * ROUNDING * abs(derivation.J) / step
                rows.append(_row(quantity, l, N, values, sampled, rtol, atol, numeric_roundoff))

    J = {"autodiff": J_autodiff, "reference": derivation.J, "equation": 76,
         "passed": bool(np.isclose(J_autodiff, derivation.J, rtol=1e-12, atol=1e-12))}
    first = next((r for r in rows if not r.passed), None)
    explanation = _explain(first, clash, rules, m, eps) if first is not None else ""
    if first is None and not J["passed"]:
        explanation = (f"J differs: autodiff {J_autodiff!r}, reference {derivation.J!r}: the "
                       f"forward passes (eqs 33-34) or the losses (eq 76) disagree")
    sizes = (X.shape[0],) + tuple(w.shape[0] for w in W)
    return Comparison(sizes, activations, loss, m, rules.name, rules.wrong, J, rows, first,
                      explanation, events, rtol, atol, eps)


# ---- the three ways ---------------------------------------------------------------------------

def _autodiff(W, b, X, Y, activations, loss):
    """Eqs 33-34 and 76 from Tensor operations; dJ/d everything by one backward().

    Runs under the sentinel (record only), so the report can say whether anything saturated.
    """
    N, m = len(W), X.shape[1]
    Ws = [Tensor(w, requires_grad=True, name=f"W[{l}]") for l, w in enumerate(W, start=1)]
    bs = [Tensor(c, requires_grad=True, name=f"b[{l}]") for l, c in enumerate(b, start=1)]
    Zs, As = [None] * (N + 1), [None] * (N + 1)
    with Sentinel(action="record") as watch, warnings.catch_warnings():
        # The sentinel records saturation; the loss's own SaturationWarning would repeat it.
        warnings.simplefilter("ignore")
        A = Tensor(X, name="A[0]")
        for l in range(1, N + 1):
            Zs[l] = (Ws[l - 1] @ A + bs[l - 1]).named(f"Z[{l}]").retain_grad()     # eq 33
            As[l] = _activate(Zs[l], activations[l - 1]).named(f"A[{l}]").retain_grad()  # eq 34
            A = As[l]
        J = loss_of(A, Tensor(Y, name="Y"), loss, m).named("J")                     # eq 76
        J.backward()
    grads = {"dW": [None] + [w.grad for w in Ws], "db": [None] + [c.grad for c in bs],
             "dZ": [None] + [z.grad for z in Zs[1:]], "dA": [None] + [a.grad for a in As[1:]]}
    return grads, float(J.data), [e.to_dict() for e in watch.events]


def _activate(Z: Tensor, name: str) -> Tensor:
    if name == "identity":
        return Z * 1.0  # a node of its own, so that A[l] and Z[l] keep separate gradients
    if name == "softmax":
        return Z.softmax(axis=0)
    return getattr(Z, name)()


def loss_of(A: Tensor, Y: Tensor, loss: str, m: int) -> Tensor:
    """Eq 76 composed from Tensor ops, so that dA[N] (eq 77) exists in the graph."""
    if loss == "log-loss":
        # Eq 1 written with log, as eq 77 differentiates it, so that dA[N] is in the graph
        # (binary_cross_entropy would take the sigmoid's logits, or xlogy's limits).
        return -(Y * A.log() + (1 - Y) * (1 - A).log()).sum() / m
    if loss == "mse":
        return ((A - Y) ** 2).sum() / m
    return -(Y * A.log()).sum() / m  # cross-entropy after a softmax output


def _reference(W, b, X, Y, activations, loss, rules, convention):
    try:
        return ref.derive(W, b, X, Y, activations, loss, rules=rules, convention=convention), None
    except ref.ShapeClash as clash:
        return clash.derivation, clash


def _reference_value(derivation, quantity, layer):
    value = getattr(derivation, quantity)[layer]
    return None if value is None else derivation.dJ(quantity, layer)


def _numeric(W, b, X, Y, activations, loss, quantity, l, eps, max_numeric, rng):
    """Finite differences of J for the elements of one quantity, the mask of the elements
    computed (all, or a random sample of ``max_numeric``; the rest hold 0), and the smallest
    step taken (it sets how much rounding the differences carry).

    The five-point central stencil ``(J(-2h) - 8 J(-h) + 8 J(h) - J(2h)) / 12h`` errs by
    O(h^4) instead of O(h^2): a unit near saturation has a large third derivative, and the
    plain two-point difference would blame the gradient for the stencil's own error.
    """
    N = len(W)
    probabilities = None
    if quantity in ("dW", "db"):
        target = (W if quantity == "dW" else b)[l - 1]
        J = lambda: ref.J_of(W, b, X, Y, activations, loss)  # noqa: E731 - reads target in place
    else:
        Z, A = ref.forward(W, b, X, activations)
        target = np.zeros_like((Z if quantity == "dZ" else A)[l])
        key = (quantity[1:], l)
        J = lambda: ref.J_of(W, b, X, Y, activations, loss, perturb={key: target})  # noqa: E731
        if quantity == "dA" and l == N and loss in ("log-loss", "cross-entropy"):
            probabilities = A[N]
    indices = list(np.ndindex(*target.shape))
    if len(indices) > max_numeric:
        chosen = rng.choice(len(indices), size=max_numeric, replace=False)
        indices = [indices[i] for i in sorted(chosen)]
    grad = np.zeros(target.shape)
    sampled = np.zeros(target.shape, dtype=bool)
    smallest_step = eps
    for index in indices:
        sampled[index] = True
        h = eps if probabilities is None else _step_inside(probabilities[index], eps, loss)
        if h == 0.0:  # a probability of exactly 0 or 1: log-loss has no derivative there
            grad[index] = np.nan
            continue
        smallest_step = min(smallest_step, h)
        saved = target[index]
        values = []
        for step in (-2 * h, -h, h, 2 * h):
            target[index] = saved + step
            values.append(J())
        target[index] = saved
        grad[index] = (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * h)
    return grad, sampled, smallest_step


def _step_inside(a: float, eps: float, loss: str) -> float:
    """A step that keeps the probability a and a +- 2h well inside (0, 1) where the loss
    takes log(a) (and log(1 - a) for log-loss): at most 1/100 of the distance to the edge."""
    room = a if loss == "cross-entropy" else min(a, 1.0 - a)
    return max(0.0, min(eps, room / 100))


# ---- comparing ------------------------------------------------------------------------------

def _row(quantity, l, N, values, sampled, rtol, atol, numeric_roundoff) -> Row:
    shapes = {way: (None if v is None else tuple(v.shape)) for way, v in values.items()}
    pairs = {}
    for a, c in PAIRS:
        left, right = values[a], values[c]
        if left is None or right is None or left.shape != right.shape:
            pairs[f"{a}-{c}"] = None
            continue
        if "numeric" in (a, c):
            left, right = left[sampled], right[sampled]
        # autodiff and the reference are exact formulas: each rounds by up to ROUNDING of the
        # largest element; finite differences add the rounding of J that the stencil amplifies.
        roundoff = 2 * ROUNDING * _largest(left, right)
        if "numeric" in (a, c):
            roundoff = ROUNDING * _largest(left, right) + numeric_roundoff
        pairs[f"{a}-{c}"] = _pair(left, right, rtol, atol, roundoff)
    return Row(quantity, l, ref.equation_of(quantity, l, N), shapes, pairs, int(sampled.sum()),
               values, sampled)


def _pair(a: np.ndarray, b: np.ndarray, rtol: float, atol: float,
          roundoff: float = 0.0) -> PairDiff:
    if a.size == 0:
        return PairDiff(0.0, 0.0, True)
    relative_roundoff = 0.0
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
        max_abs = float(np.max(diff))
        denominator = np.linalg.norm(a) + np.linalg.norm(b)
        if not np.isfinite(denominator) or not np.isfinite(max_abs):
            relative = float("nan")
        else:
            relative = float(np.linalg.norm(a - b) / denominator) if denominator > 0 else 0.0
            if denominator > 0 and np.isfinite(roundoff):
                # ||a - b|| when each of the a.size elements differs by roundoff
                relative_roundoff = float(np.sqrt(a.size) * roundoff / denominator)
    passed = bool(np.isfinite(max_abs) and (max_abs <= atol or relative <= rtol))
    roundoff = float(roundoff) if np.isfinite(roundoff) else 0.0
    return PairDiff(max_abs, relative, passed, roundoff, relative_roundoff)


def _largest(a: np.ndarray, b: np.ndarray) -> float:
    """The largest finite |element| of two arrays: the scale their rounding is relative to."""
    values = np.abs(np.concatenate([a.ravel(), b.ravel()]))
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size else 0.0


def _explain(row: Row, clash, rules, m, eps) -> str:
    """Why the ways part at ``row``: which way is the odd one out, and a likely cause."""
    if clash is not None and row.label == f"{clash.quantity}[{clash.layer}]":
        return f"The hand derivation does not type-check here. {clash}"
    ok = {name: (p is not None and p.passed) for name, p in row.pairs.items()}
    where = f"{row.label} (eq {row.equation})"
    if any(v is not None and v.shape == row.sampled.shape and not np.all(np.isfinite(v[row.sampled]))
           for v in row.values.values()):
        return (f"NaN or Inf at {where}: the network saturated or overflowed; the sentinel "
                f"line below names the first operation where it happened")
    if ok["autodiff-numeric"] and not ok["autodiff-reference"]:
        text = f"The hand derivation differs from autodiff and finite differences at {where}"
        ratio = _ratio(row.values["reference"], row.values["autodiff"])
        if ratio is not None and np.isclose(ratio, m, rtol=1e-6) and m != 1:
            text += f"; it is m = {m} times too large: the 1/m of eq 76 is missing"
        elif ratio is not None and np.isclose(ratio, 1.0 / m, rtol=1e-6) and m != 1:
            text += f"; it is m = {m} times too small: the 1/m of eq 76 is applied twice"
        elif ratio is not None and np.isclose(ratio, -1.0, rtol=1e-6):
            text += "; it has the wrong sign"
        if rules.wrong:
            text += f". Its rules are deliberately wrong: {rules.wrong}"
        return text
    if ok["reference-numeric"] and not ok["autodiff-reference"]:
        return (f"Autodiff differs from the hand derivation and finite differences at {where}: "
                f"a vjp in the engine is wrong: {_consumer(row)}, so run check.gradcheck on that "
                f"operation")
    if ok["autodiff-reference"]:
        return (f"Autodiff and the hand derivation agree at {where} but finite differences do "
                f"not: a kink (relu at 0) within eps = {eps:g} of an element, or a saturated unit")
    return f"All three ways differ at {where}"


def _consumer(row) -> str:
    """Which operation's vjp produces this quantity: the one that *uses* it in the forward pass."""
    l, label = row.layer, row.label
    if row.quantity == "dZ":
        return f"{label} comes from the vjp of the activation g[{l}] that makes A[{l}] from Z[{l}]"
    if row.quantity == "dW":
        return f"{label} comes from the vjp of the matmul W[{l}] A[{l - 1}] (eq 33)"
    if row.quantity == "db":
        return f"{label} comes from the vjp of the add of b[{l}] (eq 33)"
    if row.equation == 77:  # dA[N]
        return f"{label} comes from the vjp of the loss (eq 76)"
    return f"{label} comes from the vjp of the matmul W[{l + 1}] A[{l}] (eq 33)"


def _ratio(a, b):
    """a / b if a is a constant multiple of b (within 1e-6), else None."""
    if a is None or b is None or a.shape != b.shape:
        return None
    norm = float(np.dot(b.ravel(), b.ravel()))
    if norm == 0:
        return None
    k = float(np.dot(a.ravel(), b.ravel()) / norm)
    return k if np.allclose(a, k * b, rtol=1e-6, atol=1e-12) else None


def _finite_or_text(value):
    return value if np.isfinite(value) else str(value)

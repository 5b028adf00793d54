"""compare: one network's gradients three ways — autodiff, the hand derivation, finite differences.

For every layer l, in backward order (dA[N], dZ[N], dW[N], db[N], dA[N-1], ...), it reports the
shapes, the largest absolute difference, the relative difference ``||a - b|| / (||a|| + ||b||)``
(at most 1) and pass/fail for each pair of ways, with the seed's equation number, and names the
FIRST quantity where the ways part: in backward order every later quantity inherits the
mistake, so the first one is where to look.

The three ways:

- ``autodiff``: the network built from Tensor operations (eqs 33-34), ``retain_grad()`` on
  every Z[l] and A[l], ``J.backward()``.
- ``reference``: ``autograd_lite.reference.derive`` — eqs 77-84 by hand, optionally with a
  deliberately wrong rule (``reference.wrong_rules``) or your own (``reference.Rules``).
- ``numeric``: central finite differences of J (five-point stencil, ``check.numeric``),
  computed by the forward pass of eqs 33-34 and eq 76 in plain numpy (``reference.J_of``),
  perturbing each element of W[l], b[l], Z[l], A[l], each with a step searched from the
  error analysis. For A[N] under a log the step keeps A[N] inside (0, 1).

Convention: every dA and dZ printed is dJ/dA, dJ/dZ (the autodiff convention: it carries the
1/m of eq 76). The seed writes eqs 77-78, 81-82 per sample; its dA, dZ are these times m.
dW and db are the same in both conventions (EQUATIONS.md, note under eq 84).

Verdicts (``check.verdict``; docs/check.md, "How verdicts are decided"): a pair agrees when
every element differs by at most what the two ways' own errors allow: for the two exact ways,
twice the round-off bound of the correct derivation (``reference.roundoff_bounds``, computed
from the operands' magnitudes, element by element); against finite differences, that bound
plus the stencil's rounding and truncation estimate. No absolute floor: a small gradient is
judged against bounds as small as itself.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from .. import reference as ref
from ..core.tensor import Tensor
from .numeric import derivative
from .sentinel import Sentinel
from .verdict import Report, factor_text, finite_or_text, judge_ways, ratio, row_dict

WAYS = ("autodiff", "reference", "numeric")

RULE = ("a pair agrees when every element differs by at most what the two ways' own errors "
        "allow: round-off bounds from the operands (docs/check.md, How verdicts are decided), "
        "and for numeric the finite differences' error estimate; relative = ||a - b|| / "
        "(||a|| + ||b||), at most 1")


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
    steps: tuple = (0.0, 0.0)         # the smallest and largest finite-difference step taken

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
                **row_dict(self),
                "numeric_elements": self.numeric_elements,
                "numeric_steps": list(self.steps), "passed": self.passed}


@dataclass
class Comparison(Report):
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
    rule: str = RULE

    @property
    def passed(self) -> bool:
        return self.first_failure is None and self.J["passed"]

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
            "verdict_rule": self.rule,
            "J": {k: (finite_or_text(v) if isinstance(v, float) else v) for k, v in self.J.items()},
            "rows": [r.to_dict() for r in self.rows],
            "first_failure": first,
            "sentinel": self.sentinel,
            "passed": self.passed,
        }

    def format(self) -> str:
        from .report import format_comparison
        return format_comparison(self)


def compare(W, b, X, Y, activations, loss: str = "log-loss", *, rules: ref.Rules = ref.SEED_RULES,
            convention: str = "seed", max_numeric: int = 256, seed: int = 0) -> Comparison:
    """Gradients of one network three ways, per layer and quantity (see the module docstring).

    ``W``, ``b``: lists of the N layers' arrays (W[l] is n[l] x n[l-1], b[l] is n[l] x 1);
    ``X`` n[0] x m; ``Y`` n[N] x m; of any backend: the autodiff way runs on theirs (float64),
    the other two on numpy copies; ``activations`` one name per layer; ``loss`` as in
    ``reference``. ``rules`` and ``convention`` are handed to ``reference.derive`` (the
    reference's dA, dZ are converted to dJ/dA, dJ/dZ before comparing). Finite differences
    check every element of a quantity with at most ``max_numeric`` elements, else a random
    (``seed``) sample of that many.
    """
    given = [list(W), list(b), X, Y]
    # shapes first, values after autodiff: on Dask, what the other two ways need comes over
    # with autodiff's gradients, in the one compute after backward's own
    activations = ref.check_network(*given, activations, loss, convention, caller="compare")
    # autodiff on the arrays' own backends (float64), the other two ways on the host
    autodiff = _autodiff(*[[as_float64(a) for a in part] if isinstance(part, list)
                           else as_float64(part) for part in given], activations, loss)
    host, autodiff = with_autodiff_on_host(given, autodiff)
    W, b, X, Y, activations = ref.validate_network(*host, activations, loss, convention,
                                                   caller="compare")
    return compare_ways(W, b, X, Y, activations, loss, autodiff,
                        rules=rules, convention=convention, max_numeric=max_numeric, seed=seed)


def on_host(parts) -> list:
    """Arrays or Tensors (and lists of them; None stays None) of any backend as numpy copies,
    brought over together: a Dask graph computed once. The hand derivation and the finite
    differences run there (they move elements in place: never in the caller's arrays)."""
    flat = [a for part in parts for a in (part if isinstance(part, list) else [part])
            if a is not None]
    host = iter(np.array(a, copy=True) for a in backend.to_numpy_all(
        a.data if isinstance(a, Tensor) else a for a in flat))

    def take(a):
        return None if a is None else next(host)
    return [[take(a) for a in part] if isinstance(part, list) else take(part) for part in parts]


def with_autodiff_on_host(given, autodiff) -> tuple:
    """The arrays ``given`` (W, b, X, Y of any backend) as numpy copies, and the autodiff way
    ``(grads, J, sentinel events)`` with its gradients as float64 numpy arrays and J as a
    float: all brought over together. On Dask that is ONE compute after backward's own (which
    computed J and the numpy leaves' dW, db): X and Y, and the retained dZ[l], dA[l], whose
    shared forward pass then runs once."""
    grads, J, events = autodiff
    quantities = list(grads)
    host = on_host([*given, J, *(grads[q] for q in quantities)])
    n = len(given)
    host_grads = {q: [None if g is None else np.asarray(g, dtype=np.float64) for g in values]
                  for q, values in zip(quantities, host[n + 1:])}
    return host[:n], (host_grads, float(host[n].reshape(-1)[0]), events)


def as_float64(array):
    """``array`` (or a Tensor's) as float64 in its own backend: another backend's array stays
    there (a Dask array lazy), where the autodiff way runs."""
    array = array.data if isinstance(array, Tensor) else array
    if not backend.is_foreign_array(array):
        return np.asarray(array, dtype=np.float64)
    xp = backend.namespace(array)
    return xp.astype(array, backend.default_float(backend.of(array)))


def watching(arrays):
    """The sentinel that records while the autodiff way runs (``events`` afterwards), or, on
    Dask, where it would compute the graph at every operation, none (``events`` None: the
    report says it did not watch)."""
    if any(backend.of(a).is_dask for a in arrays if backend.is_foreign_array(a)):
        return contextlib.nullcontext(None)
    return Sentinel(action="record")


def events_of(watch):
    return None if watch is None else [e.to_dict() for e in watch.events]


def compare_ways(W, b, X, Y, activations, loss, autodiff_way, *, rules, convention, max_numeric,
                 seed) -> Comparison:
    """The comparison proper, given the autodiff way's ``(grads, J, sentinel events)``: what
    ``compare`` builds from Tensor operations, or what ``compare_model`` gets from an nn model."""
    autodiff, J_autodiff, events = autodiff_way
    N, m = len(W), X.shape[1]
    rng = np.random.default_rng(seed)
    # NOTE: numpy's own divide/invalid warnings would repeat, less precisely, what the
    # sentinel line of the report says about a saturated network.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        derivation, clash = _reference(W, b, X, Y, activations, loss, rules, convention)
        # the round-off of a correct derivation: the seed's rules on the same forward values
        bounds = ref.roundoff_bounds(ref.derive(W, b, X, Y, activations, loss,
                                                convention="autodiff"))
        rows = []
        for l in range(N, 0, -1):
            for quantity in ref.QUANTITIES:
                values = {"autodiff": autodiff[quantity][l],
                          "reference": _reference_value(derivation, quantity, l)}
                values["numeric"], error, sampled, steps = _numeric(
                    W, b, X, Y, activations, loss, quantity, l, bounds.J, max_numeric, rng)
                rows.append(_row(quantity, l, N, values, sampled, bounds.dJ(quantity, l),
                                 error, steps))

    # eq 76 by both ways: within twice its round-off bound
    J = {"autodiff": J_autodiff, "reference": derivation.J, "equation": 76,
         "passed": bool(abs(J_autodiff - derivation.J) <= 2 * bounds.J)}
    first = next((r for r in rows if not r.passed), None)
    explanation = _explain(first, clash, rules, m, activations, events) if first is not None else ""
    if first is None and not J["passed"]:
        explanation = (f"J differs: autodiff {J_autodiff!r}, reference {derivation.J!r}: the "
                       f"forward passes (eqs 33-34) or the losses (eq 76) disagree")
    sizes = (X.shape[0],) + tuple(w.shape[0] for w in W)
    return Comparison(sizes, activations, loss, m, rules.name, rules.wrong, J, rows, first,
                      explanation, events)


# ---- the three ways ---------------------------------------------------------------------------

def _autodiff(W, b, X, Y, activations, loss):
    """Eqs 33-34 and 76 from Tensor operations; dJ/d everything by one backward().

    Runs on the arrays' own backends, under the sentinel (record only; not on Dask), so the
    report can say whether anything saturated. Returns ``(grads, J, sentinel events)``, the
    gradients where backward left them (``with_autodiff_on_host`` brings them over).
    """
    N, m = len(W), X.shape[1]
    Ws = [Tensor(w, requires_grad=True, name=f"W[{l}]") for l, w in enumerate(W, start=1)]
    bs = [Tensor(c, requires_grad=True, name=f"b[{l}]") for l, c in enumerate(b, start=1)]
    Zs, As = [None] * (N + 1), [None] * (N + 1)
    with watching([X, *W]) as watch, warnings.catch_warnings():
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
    return grads, J, events_of(watch)


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


def _numeric(W, b, X, Y, activations, loss, quantity, l, e_J, max_numeric, rng):
    """Finite differences of J for the elements of one quantity (``check.numeric``): the
    values, their error estimates, the mask of the elements computed (all, or a random sample
    of ``max_numeric``; the rest hold 0) and the smallest and largest step taken."""
    N = len(W)
    probabilities = None
    if quantity in ("dW", "db"):
        target = (W if quantity == "dW" else b)[l - 1]
        J = lambda: ref.J_of(W, b, X, Y, activations, loss)  # noqa: E731 - reads target in place
        sizes = np.abs(target)
        key = None
    else:
        Z, A = ref.forward(W, b, X, activations)
        sizes = np.abs((Z if quantity == "dZ" else A)[l])
        target = np.zeros_like(sizes)
        key = (quantity[1:], l)
        J = lambda: ref.J_of(W, b, X, Y, activations, loss, perturb={key: target})  # noqa: E731
        if quantity == "dA" and l == N and loss in ("log-loss", "cross-entropy"):
            probabilities = A[N]
    # the search starts at 1e-3 of an element's size, or of the tensor's typical size for an
    # element near 0 (a bias of 0 moves J on the scale of its neighbours)
    typical = float(np.sqrt(np.mean(sizes ** 2))) if sizes.size else 0.0
    indices = list(np.ndindex(*target.shape))
    if len(indices) > max_numeric:
        chosen = rng.choice(len(indices), size=max_numeric, replace=False)
        indices = [indices[i] for i in sorted(chosen)]
    relus = [l_ for l_ in range(1, N + 1) if activations[l_ - 1] == "relu"]
    kinks = _relu_sides(W, b, X, activations, relus, key, target) if relus else None
    grad = np.zeros(target.shape)
    error = np.zeros(target.shape)
    sampled = np.zeros(target.shape, dtype=bool)
    steps = []
    for index in indices:
        sampled[index] = True
        h_max = np.inf if probabilities is None else _room(probabilities[index], loss)
        saved = target[index]

        def J_at(t, index=index, saved=saved):
            target[index] = saved + t
            return J()
        smooth = None
        if kinks is not None:
            def smooth(t, index=index, saved=saved):
                target[index] = saved + t
                try:
                    return _relu_sides(W, b, X, activations, relus, key, target) == kinks
                finally:
                    target[index] = saved
        try:
            grad[index], error[index], step = derivative(J_at, max(abs(saved), typical), e_J,
                                                         h_max, smooth)
        finally:
            target[index] = saved
        if step > 0:
            steps.append(step)
    return grad, error, sampled, (min(steps), max(steps)) if steps else (0.0, 0.0)


def _relu_sides(W, b, X, activations, relus, key, target) -> bytes:
    """Which side of 0 every relu's Z lies on: finite differences that change it crossed a
    kink, where J has no derivative."""
    Z, _ = ref.forward(W, b, X, activations, {key: target} if key is not None else None)
    return b"".join(np.packbits(Z[l] > 0).tobytes() for l in relus)


def _room(a: float, loss: str) -> float:
    """The largest step that keeps the probability a and a +- 4h inside (0, 1) where the loss
    takes log(a) (and log(1 - a) for log-loss), with half of the distance to the edge to spare."""
    room = a if loss == "cross-entropy" else min(a, 1.0 - a)
    return max(0.0, room / 8)


# ---- comparing ------------------------------------------------------------------------------

def _row(quantity, l, N, values, sampled, bound, numeric_error, steps) -> Row:
    shapes = {way: (None if v is None else tuple(v.shape)) for way, v in values.items()}
    # each exact way within its round-off bound of the exact value; finite differences within
    # their error estimate of it
    pairs = judge_ways(values, sampled, {"autodiff": bound, "reference": bound}, numeric_error)
    return Row(quantity, l, ref.equation_of(quantity, l, N), shapes, pairs, int(sampled.sum()),
               values, sampled, steps)


def _explain(row: Row, clash, rules, m, activations, events) -> str:
    """Why the ways part at ``row``: which way is the odd one out, and a likely cause."""
    if clash is not None and row.label == f"{clash.quantity}[{clash.layer}]":
        return f"The hand derivation does not type-check here. {clash}"
    ok = {name: (p is not None and p.passed) for name, p in row.pairs.items()}
    where = f"{row.label} (eq {row.equation})"
    if any(v is not None and v.shape == row.sampled.shape and not np.all(np.isfinite(v[row.sampled]))
           for v in row.values.values()):
        return (f"NaN or Inf at {where}: the network saturated or overflowed; the sentinel "
                f"line below names the first operation where it happened")
    if not ok["autodiff-reference"] and (ok["autodiff-numeric"] or not ok["reference-numeric"]):
        witnesses = ("autodiff and finite differences" if ok["autodiff-numeric"]
                     else "autodiff")
        text = f"The hand derivation differs from {witnesses} at {where}"
        k = ratio(row.values["reference"], row.values["autodiff"])
        words = factor_text(k, m) if k is not None else ""
        if words:
            text += f"; {words}"
        if rules.wrong:
            text += f". Its rules are deliberately wrong: {rules.wrong}"
        return text
    if ok["reference-numeric"] and not ok["autodiff-reference"]:
        return (f"Autodiff differs from the hand derivation and finite differences at {where}: "
                f"a vjp in the engine is wrong: {_consumer(row)}, so run check.gradcheck on that "
                f"operation")
    if ok["autodiff-reference"]:
        return (f"Autodiff and the hand derivation agree at {where} but finite differences do "
                f"not: {_numeric_suspects(activations, events)}")
    return f"All three ways differ at {where}"


def _numeric_suspects(activations, events) -> str:
    """What can throw finite differences off in this network, and only that."""
    suspects = []
    if "relu" in activations:
        suspects.append("a relu kink (Z = 0) within four steps of an element")
    if events:
        suspects.append("a saturated unit (see the sentinel line)")
    suspects.append("a J so curved that the step search's error estimate fell short")
    return "; ".join(suspects)


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

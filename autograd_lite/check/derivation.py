"""compare_derivation: any hand derivation of any recorded graph, against autodiff and finite
differences, quantity by quantity in backward order.

    J = ...                                   # a recorded loss: a Tensor with a graph
    report = check.compare_derivation(J, {"dZ[2]": lambda v: (v["A[2]"] - v["Y"]) / 5,
                                          "dW[2]": my_dW2})
    print(report)                             # shapes, max|diff|, relative, first to part
    ag.draw(J, backward=True, compare=report) # the same report colours the graph

``hand`` maps a quantity to its hand-derived dJ/d(quantity). A key is a tensor of J's graph
(``{Z1: ...}``), or a name: ``"dX"`` is dJ/dX for the tensor named ``"X"`` (``"X"`` alone is
accepted too). A value is an array (or a number, a list, a Tensor), or a callable that gets
one argument, a mapping from every name in the graph to its forward value (an ndarray), and
returns the array: ``lambda v: v["A[2]"] - v["Y"]``.

Each quantity is compared, in the order in which the engine's backward traversal completes
its gradient (``core.backward.backpropagate``, without touching any ``.grad``):

- hand against autodiff: shapes, then every element within what rounding can make of it;
- for a leaf (a parameter, an input that requires grad), both against finite differences of
  J (``check.numeric``: five-point stencil, the step searched per element).

Rounding (docs/check.md, "Check any derivation"): the graph's forward and backward passes are
run again three times with every intermediate moved by up to 4 ulps (Monte Carlo arithmetic),
and each element is allowed 16 times the largest move this makes in autodiff's gradient plus
8 ulps of the two values: a bound that follows the magnitudes the computation goes through,
cancellation included, with no absolute floor. A mistake (a factor, a sign, a transpose, a
missing term) misses by far more.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..core.backward import backpropagate, sum_to_shape
from ..core.graph import Node, topological_order
from ..core.tensor import Tensor
from ..errors import GraphFreedError
from ..roundoff import EPS
from .numeric import derivative
from .verdict import Report, factor_text, finite_or_text, judge_ways, ratio, row_dict

RUNS = 3            # Monte Carlo runs of the rounding estimate
ULPS = 4            # each intermediate moved by up to this many ulps per run
SAFETY = 16         # the tolerance is this many times the largest move seen
RULE = ("a pair agrees when every element differs by at most what rounding can make of it "
        f"({SAFETY} x the largest change that moving every intermediate by {ULPS} ulps makes, "
        "plus 8 ulps of the values; for numeric, plus the finite differences' error estimate); "
        "relative = ||a - b|| / (||a|| + ||b||), at most 1")


@dataclass
class DerivationRow:
    """One hand-derived quantity, e.g. dZ[1], compared (``pairs`` as in ``compare``'s rows:
    "autodiff-reference" is hand vs autodiff; None where a pair cannot be compared)."""

    label: str                        # "dZ[1]": what the report and pictures call it
    name: str                         # the tensor's name ("Z[1]"), "" if it has none
    leaf: bool
    shapes: dict                      # way -> shape (None where a way has no value)
    pairs: dict
    explanation: str = ""
    values: dict = field(repr=False, default_factory=dict)
    sampled: np.ndarray | None = field(repr=False, default=None)

    @property
    def passed(self) -> bool:
        return all(p is None or p.passed for p in self.pairs.values()) and \
            self.pairs["autodiff-reference"] is not None

    def to_dict(self) -> dict:
        return {"label": self.label, "name": self.name, "leaf": self.leaf, **row_dict(self),
                "numeric_elements": int(self.sampled.sum()) if self.sampled is not None else 0,
                "explanation": self.explanation or None, "passed": self.passed}


@dataclass
class DerivationComparison(Report):
    """The report of ``compare_derivation``: ``rows`` in backward order, ``first_failure``
    (the first row where the hand derivation parts) and its ``explanation``. Read by
    ``ag.draw(..., compare=report)`` and the stepping page like ``compare``'s report."""

    J: float
    rows: list
    first_failure: DerivationRow | None
    explanation: str
    m: int | None
    wrong: str = ""
    rule: str = RULE

    caller = "compare_derivation"

    @property
    def passed(self) -> bool:
        return self.first_failure is None

    def to_dict(self) -> dict:
        first = None
        if self.first_failure is not None:
            first = {"label": self.first_failure.label, "explanation": self.explanation}
        return {"J": finite_or_text(self.J), "m": self.m, "verdict_rule": self.rule,
                "rows": [r.to_dict() for r in self.rows], "first_failure": first,
                "passed": self.passed}

    def format(self) -> str:
        from .report import format_derivation
        return format_derivation(self)


def compare_derivation(J, hand, *, m: int | None = None, max_numeric: int = 64,
                       seed: int = 0) -> DerivationComparison:
    """Check hand-derived gradients of the recorded loss ``J`` (see the module docstring).

    ``hand``: a mapping from a tensor of J's graph or a name (``"dW[1]"``, ``"W[1]"``) to an
    array or a callable of the forward values. ``m``, if given, is the number of samples: a
    hand gradient m times autodiff's is then explained as a missing 1/m. Finite differences
    check at most ``max_numeric`` elements of each leaf (a random, ``seed``, sample beyond).
    J's graph must still be there (call it before ``J.backward()``, or after
    ``J.backward(retain_graph=True)``); no ``.grad`` is changed. On another backend autodiff's
    gradients are that backend's own; the checks run on host copies (Dask: one compute).
    """
    if not isinstance(J, Tensor):
        raise TypeError(f"compare_derivation: J must be the Tensor of a recorded loss, got "
                        f"{type(J).__name__}")
    if J.size != 1:
        raise ValueError(f"compare_derivation: J must hold one number (a loss), got shape "
                         f"{tuple(J.shape)}")
    if J.grad_fn is None:
        raise ValueError("compare_derivation: J has no graph (it was not computed from tensors "
                         "that require grad, or under no_grad()): there is nothing to derive")
    if not hasattr(hand, "items"):
        raise TypeError(f"compare_derivation: hand must be a mapping from tensor or name to "
                        f"array or callable, got {type(hand).__name__}")
    root = J.grad_fn
    order = topological_order(root)
    names = _names(order)
    targets = [(_label(key, names), _entry(key, names, order)) for key in hand]
    wanted = {id(entry) for _, entry in targets}
    xp = backend.namespace(J.data)
    try:
        # autodiff in J's own backend (on Dask: one lazy graph, computed below)
        autodiff, position = {}, {}
        for step, (x, grad) in enumerate(backpropagate(root, xp.ones_like(J.data),
                                                       keep_graph=True)):
            if id(x) in wanted:
                autodiff[id(x)] = grad
                position[id(x)] = step
    except GraphFreedError:
        raise GraphFreedError("compare_derivation: J's graph was freed by J.backward(); call "
                              "compare_derivation before it, or use J.backward(retain_graph=True)"
                              ) from None
    # What the report shows comes to the host once, together (a Dask graph computed once): the
    # leaves' values, from which the checks below run the graph again in numpy, and autodiff's
    # gradients.
    leaves = [x for x in order if not isinstance(x, Node)]
    kept = [x for x in order if isinstance(x, Node) and x.op.updates_state]
    lazy = [i for i in autodiff if autodiff[i] is not None]
    host = backend.to_numpy_all([J.data] + [x.data for x in leaves] + [x.value() for x in kept]
                                + [autodiff[i] for i in lazy])
    J_value, host = float(host[0].reshape(-1)[0]), host[1:]
    for i, array in zip(lazy, host[len(leaves) + len(kept):]):
        autodiff[i] = np.asarray(array, dtype=np.float64)
    given = dict(zip(map(id, leaves + kept), host))
    values = _forward(order, given)
    by_name = {name: values[id(entry)] for name, entry in names.items()}
    rng = np.random.default_rng(seed)
    noise = _rounding(order, root, values, wanted, rng)
    rows = []
    for (label, entry), key in sorted(zip(targets, hand), key=lambda t: position.get(id(t[0][1]), -1)):
        hand_value = _hand_value(key, hand[key], label, by_name)
        if id(entry) not in position:
            raise ValueError(f"compare_derivation: {label}: {_describe(entry)} does not require "
                             f"grad, so autodiff has no dJ/d of it; make it with "
                             f"requires_grad=True (or leave it out)")
        grad = autodiff[id(entry)]
        if grad is None:
            grad = np.zeros(entry.shape)
        rows.append(_row(label, entry, hand_value, grad, noise[id(entry)], order, root,
                         values, given, J_value, max_numeric, rng, m))
    first = next((r for r in rows if not r.passed), None)
    explanation = first.explanation if first is not None else ""
    return DerivationComparison(J_value, rows, first, explanation, m)


# ---- the graph --------------------------------------------------------------------------------

def _names(order) -> dict:
    """Name -> node or leaf, for every named tensor behind J (the first of a repeated name)."""
    names = {}
    for x in order:
        name = x.name
        if name and str(name) not in names:
            names[str(name)] = x
    return names


def _entry(key, names, order):
    """The node or leaf a key of ``hand`` means."""
    if isinstance(key, Tensor):
        entry = key.grad_fn if key.grad_fn is not None else key
        if not any(entry is x for x in order):
            raise ValueError(f"compare_derivation: {_describe(entry)} is not in J's graph")
        return entry
    if isinstance(key, str):
        if key in names:
            return names[key]
        if key.startswith("d") and key[1:] in names:
            return names[key[1:]]
        known = ", ".join(sorted(names)) or "(no tensor behind J has a name)"
        raise KeyError(f"compare_derivation: no tensor named {key[1:] if key.startswith('d') else key!r} "
                       f"in J's graph for the key {key!r}; the names are: {known}")
    raise TypeError(f"compare_derivation: a key of hand is a tensor of J's graph or a name such "
                    f"as 'dW[1]', got {type(key).__name__}")


def _label(key, names) -> str:
    if isinstance(key, str):
        if key in names and not (key.startswith("d") and key[1:] in names):
            return f"d{key}"
        return key
    name = key.name
    return f"d{name}" if name else f"d<{'x'.join(map(str, key.shape))} {key.op or 'leaf'}>"


def _describe(entry) -> str:
    if entry.name:
        return repr(str(entry.name))
    if isinstance(entry, Node):
        return f"a {entry.op.name} result"
    return "an unnamed leaf"


def _forward(order, given) -> dict:
    """Every value behind J by running the graph's forward again on host arrays: ``given``
    maps the id of every leaf (and of every node whose op keeps state outside the graph: it
    keeps its recorded value, so nothing outside changes) to its array."""
    values = {}
    for x in order:
        if id(x) in given:
            values[id(x)] = given[id(x)]
        else:
            values[id(x)] = np.asarray(x.op.forward(*[values[id(p)] for p in x.parents],
                                                    **x.params))
    return values


def _J(order, root, given) -> float:
    return float(np.asarray(_forward(order, given)[id(root)]).reshape(-1)[0])


def _rounding(order, root, values, wanted, rng) -> dict:
    """For each wanted entry, the largest change of its gradient over RUNS runs of the forward
    and backward pass with every intermediate moved by up to ULPS ulps."""
    base = _backward_pass(order, root, values, None)
    spread = {i: np.zeros(np.shape(base.get(i, 0.0))) for i in wanted}
    for _ in range(RUNS):
        moved = _backward_pass(order, root, values, rng)
        for i in wanted:
            if i in base and i in moved:
                with np.errstate(invalid="ignore", over="ignore"):
                    spread[i] = np.maximum(spread[i], np.abs(moved[i] - base[i]))
    return spread


def _jiggle(array, rng):
    array = np.asarray(array, dtype=np.float64)
    if rng is None:
        return array
    return array * (1.0 + ULPS * EPS * rng.uniform(-1.0, 1.0, array.shape))


def _backward_pass(order, root, values, rng) -> dict:
    """Reverse mode over the recorded graph on plain arrays (forward values moved by
    ``_jiggle`` when rng is given, and every vjp's result too): id -> dJ/dx."""
    forward = {}
    for x in order:
        if not isinstance(x, Node):
            forward[id(x)] = np.asarray(values[id(x)])
        elif rng is None or x.op.updates_state:
            forward[id(x)] = np.asarray(values[id(x)])
        else:
            forward[id(x)] = _jiggle(x.op.forward(*[forward[id(p)] for p in x.parents],
                                                  **x.params), rng)
    grads = {id(root): np.ones(root.shape)}
    with np.errstate(all="ignore"):
        for x in reversed(order):
            if not isinstance(x, Node) or id(x) not in grads:
                continue
            wants = tuple(p.requires_grad for p in x.parents)
            inputs = tuple(forward[id(p)] for p in x.parents)
            results = x.op.vjp(grads[id(x)], inputs, forward[id(x)], wants, **x.params)
            for parent, g in zip(x.parents, results):
                if g is None or not parent.requires_grad:
                    continue
                g = sum_to_shape(_jiggle(g, rng), parent.shape, x.op.name)
                grads[id(parent)] = grads[id(parent)] + g if id(parent) in grads else g
    return grads


def _hand_value(key, value, label, by_name):
    if callable(value) and not isinstance(value, (np.ndarray, Tensor)):
        try:
            value = value(by_name)
        except Exception as error:  # noqa: BLE001 - the user's rule: name it, keep the cause
            raise ValueError(f"compare_derivation: the hand rule for {label} raised "
                             f"{type(error).__name__}: {error}") from error
    if isinstance(value, Tensor):
        value = value.data
    if backend.is_foreign_array(value):
        value = backend.to_numpy(value)
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"compare_derivation: the hand value for {label} is not an array of "
                        f"numbers ({type(value).__name__}): {error}") from None


# ---- one row ----------------------------------------------------------------------------------

def _row(label, entry, hand, autodiff, noise, order, root, values, given, J_value, max_numeric,
         rng, m):
    leaf = not isinstance(entry, Node)
    name = str(entry.name) if entry.name else ""
    shape = tuple(entry.shape)
    # what rounding can make of autodiff's gradient, and (assumed alike) of the hand one
    bound = SAFETY * np.asarray(noise, dtype=np.float64) + 8 * EPS * np.abs(autodiff)
    numeric, sampled, numeric_error = None, None, None
    if leaf:
        numeric, numeric_error, sampled = _numeric(entry, order, root, given, J_value,
                                                    max_numeric, rng)
    # the hand value rounds like autodiff's, and by 8 ulps of itself
    fits = hand.shape == shape
    bounds = {"autodiff": bound, "reference": bound + 8 * EPS * np.abs(hand) if fits else None}
    pairs = judge_ways({"autodiff": autodiff, "reference": hand, "numeric": numeric}, sampled,
                       bounds, numeric_error)
    row = DerivationRow(label, name, leaf, {"autodiff": shape, "reference": hand.shape,
                                            "numeric": shape if leaf else None},
                        pairs, values={"autodiff": autodiff, "reference": hand,
                                       "numeric": numeric},
                        sampled=sampled)
    if not row.passed:
        row.explanation = _explain(row, m)
    return row


def _numeric(entry, order, root, given, J_value, max_numeric, rng):
    """Finite differences of J with respect to the leaf ``entry`` (the graph run again in
    numpy on the host arrays ``given``): values, error estimates, and the mask of the elements
    computed."""
    dtype = given[id(entry)].dtype
    x = np.array(given[id(entry)], dtype=np.float64)
    indices = list(np.ndindex(*x.shape))
    if len(indices) > max_numeric:
        chosen = rng.choice(len(indices), size=max_numeric, replace=False)
        indices = [indices[i] for i in sorted(chosen)]
    grad, error = np.zeros(x.shape), np.zeros(x.shape)
    sampled = np.zeros(x.shape, dtype=bool)
    typical = float(np.sqrt(np.mean(x ** 2))) if x.size else 0.0
    # J of a graph of n operations rounds by about n ulps of the largest value it goes through
    e_J = len(order) * EPS * abs(J_value)
    for index in indices:
        sampled[index] = True

        def J_at(t, index=index):
            moved = x.copy()
            moved[index] = x[index] + t
            return _J(order, root, {**given, id(entry): moved.astype(dtype)})
        with np.errstate(all="ignore"):
            grad[index], error[index], _ = derivative(J_at, max(abs(float(x[index])), typical), e_J)
    return grad, error, sampled


def _explain(row, m) -> str:
    """Why the hand derivation parts here: a shape clash, a transpose, a constant factor, a
    sign, or (when autodiff is the odd one out) a vjp."""
    hand, auto = row.values["reference"], row.values["autodiff"]
    what = row.label
    if row.pairs["autodiff-reference"] is None:
        shape = "x".join(map(str, hand.shape)) or "a scalar"
        expected = "x".join(map(str, auto.shape)) or "a scalar"
        text = (f"{what}: the hand derivation's shape is {shape} but {row.name or 'the tensor'} "
                f"is {expected}; a gradient has the shape of what it differentiates")
        if hand.ndim == 2 and hand.shape == auto.shape[::-1]:
            if np.allclose(hand.T, auto, rtol=1e-9, atol=0):
                text += ": the hand value is the transpose of autodiff's (a product written in the wrong order, or a transpose forgotten)"
            else:
                text += " (it has the transposed shape: a product written in the wrong order?)"
        return text
    ok = {k: (p is None or p.passed) for k, p in row.pairs.items()}
    if row.leaf and ok["reference-numeric"] and not ok["autodiff-numeric"]:
        return (f"{what}: autodiff differs from the hand derivation and finite differences: a "
                f"vjp in the engine (or a custom primitive's) is wrong; run check.gradcheck on "
                f"the operations that use {row.name or 'this tensor'}")
    witnesses = "autodiff and finite differences" if row.leaf and row.pairs["autodiff-numeric"] is not None \
        and ok["autodiff-numeric"] else "autodiff"
    text = f"{what}: the hand derivation differs from {witnesses}"
    if hand.ndim == 2 and hand.shape == hand.shape[::-1] and np.allclose(hand.T, auto, rtol=1e-9, atol=0) \
            and not np.allclose(hand, auto, rtol=1e-9, atol=0):
        return text + "; it is the transpose of autodiff's (a transpose forgotten or one too many)"
    k = ratio(hand, auto)
    if k is not None:
        words = factor_text(k, m)
        if words and m is None and float(k).is_integer() and k > 1:
            words += f" (a mean's 1/{int(k)} forgotten?)"
        if words:
            text += f"; {words}"
    return text

"""The hand derivation of backpropagation, in plain numpy: the independent witness.

This module writes the seed's forward pass (eqs 33-34) and backward pass (eqs 77-84) for a
fully connected network of any depth exactly as a learner derives them by hand. It never
imports the engine (``autograd_lite.core``, ``autograd_lite.ops``): ``autograd_lite.check``
compares the two, and a witness that shared code with the engine could share its bugs.

Layout (EQUATIONS.md, "Notation"): samples are columns; ``W[l]`` is ``n[l] x n[l-1]``,
``b[l]`` is ``n[l] x 1``, ``Z[l]`` and ``A[l]`` are ``n[l] x m`` (eqs 35-38); ``A[0] = X``.
Lists are indexed by layer, so ``d.dW[2]`` is dW[2]; index 0 holds ``None`` where the seed
defines nothing (there is no W[0], Z[0], dZ[0], ...).

Costs: ``J = (1/m) * sum over samples (columns) of L``, where ``L`` sums over output units (eq 76):

- ``"log-loss"``: ``L = sum_k -y_k log a_k - (1 - y_k) log(1 - a_k)`` (eq 1), sigmoid or softmax output;
- ``"mse"``: ``L = sum_k (a_k - y_k)^2`` (no 1/2), any output activation;
- ``"cross-entropy"``: ``L = -sum_k y_k log a_k`` with a softmax output and one-hot ``Y`` columns.

The two conventions of EQUATIONS.md's note under eq 84, and which one a ``Derivation`` holds:

- ``"seed"``: eqs 77-84 as written. ``dA[l]`` and ``dZ[l]`` are **per sample**: column ``i`` is
  dL(i)/dZ[l](i), the derivative of that sample's own loss. The 1/m lives in dW and db
  (eqs 79-80, 83-84).
- ``"autodiff"``: ``dA[l] = dJ/dA[l]`` and ``dZ[l] = dJ/dZ[l]``, what an engine that
  differentiates J holds (``Z.retain_grad(); J.backward(); Z.grad``). The 1/m lives in dA[N]
  (eq 77) and propagates down; dW and db carry no extra 1/m.

Both give the same dW and db, and ``dZ_autodiff = dZ_seed / m``. ``Derivation.dJ`` returns the
autodiff-convention array whatever the derivation's own convention is.

The backward equations are a ``Rules`` value, so a derivation can be run with a deliberately
wrong rule (``wrong_rules``): forgetting the 1/m, or the seed's own "dimensionally wrong"
eqs 50, 55 and 64. Where a wrong rule does not even type-check, ``derive`` raises
``ShapeClash``, which names the equation, the operands, their shapes, and the corrected equation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from .roundoff import EPS, FUNCTION, UNDERFLOW, gamma, product_bound, sum_bound

CONVENTIONS = ("seed", "autodiff")
QUANTITIES = ("dA", "dZ", "dW", "db")

# Equation numbers of each backward quantity: (output layer N, hidden layer h), eqs 77-84.
EQUATION = {"dA": (77, 81), "dZ": (78, 82), "dW": (79, 83), "db": (80, 84)}


def equation_of(quantity: str, layer: int, N: int) -> int:
    """The seed's equation number for ``quantity`` ("dA", "dZ", "dW", "db") of ``layer``."""
    output_eq, hidden_eq = EQUATION[quantity]
    return output_eq if layer == N else hidden_eq


class ShapeClash(ValueError):
    """A backward rule that does not type-check: the math itself is wrong, not the numbers.

    Attributes: ``equation`` (the seed's number of the rule that failed), ``quantity`` and
    ``layer`` (what it was computing, e.g. "dW", 2), ``shapes`` (operand label -> shape), and
    ``derivation``: the partly filled ``Derivation`` (quantities before the clash) when raised
    by ``derive``.
    """

    derivation = None

    def __init__(self, message: str, *, equation: int, quantity: str, layer: int, shapes: dict):
        super().__init__(message)
        self.equation = equation
        self.quantity = quantity
        self.layer = layer
        self.shapes = shapes


# --------------------------------------------------------------------------------------------
# Activations g[l] (eq 34) and their derivatives g'[l] (eqs 78, 82)
# --------------------------------------------------------------------------------------------

def sigmoid(Z: np.ndarray) -> np.ndarray:
    """Eq 7, ``s(z) = 1 / (1 + e^-z)``.

    NOTE: written as ``exp(-log(1 + e^-z))`` with ``logaddexp`` so that a large negative z
    does not overflow ``e^-z``; the value is the same as eq 7 wherever eq 7 is finite.
    """
    return np.exp(-np.logaddexp(0.0, -Z))


def softmax(Z: np.ndarray) -> np.ndarray:
    """Softmax over the units of each sample (axis 0: samples are columns).

    NOTE: subtracting each column's max leaves the value unchanged and keeps exp from
    overflowing.
    """
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


@dataclass(frozen=True)
class Activation:
    """One activation g: its forward ``g(Z)`` (eq 34) and the backward step of eqs 78/82.

    ``g_prime(Z)`` is the elementwise derivative g'(Z) for the elementwise activations, so
    that eq 78 reads ``dZ = dA * g'(Z)``. Softmax mixes the units of a sample, so it has no
    elementwise derivative (``g_prime`` is None): its Jacobian per column is
    ``diag(a) - a a^T`` and eq 78 becomes a Jacobian product, see ``backward_through``.
    """

    name: str
    g: Callable[[np.ndarray], np.ndarray]
    g_prime: Callable[[np.ndarray], np.ndarray] | None

    def backward_through(self, dA: np.ndarray, Z: np.ndarray, A: np.ndarray) -> np.ndarray:
        """dZ from dA (eqs 78, 82): ``dA * g'(Z)``; for softmax ``A * (dA - sum(A * dA))``.

        The softmax form is ``(diag(a) - a a^T) da`` for each column, written without
        building the n x n Jacobian.
        """
        if self.g_prime is not None:
            return dA * self.g_prime(Z)
        return A * (dA - np.sum(A * dA, axis=0, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    # eq 8: s'(z) = s(z) (1 - s(z)), evaluated at Z as eq 78 writes it.
    "sigmoid": Activation("sigmoid", sigmoid, lambda Z: sigmoid(Z) * (1.0 - sigmoid(Z))),
    "tanh": Activation("tanh", np.tanh, lambda Z: 1.0 - np.tanh(Z) ** 2),
    # NOTE: relu'(0) is taken as 0 (the subgradient most engines use); finite differences are
    # undefined exactly at the kink, and a random Z never lands on it.
    "relu": Activation("relu", lambda Z: np.maximum(Z, 0.0), lambda Z: (Z > 0).astype(np.float64)),
    # The regression output of the note after eq 38: no activation, g'(z) = 1.
    "identity": Activation("identity", lambda Z: Z.copy(), lambda Z: np.ones_like(Z)),
    "softmax": Activation("softmax", softmax, None),
}


# --------------------------------------------------------------------------------------------
# Losses L (eq 1) and the cost J (eq 76)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Loss:
    """A per-sample loss L(Y, A) summed over output units, and dL/dA (the heart of eq 77).

    ``value`` returns one L per sample (shape ``(m,)``); ``dL_dA`` returns the per-sample
    derivative, shape ``n[N] x m``. ``outputs`` lists the output activations it accepts.
    """

    name: str
    value: Callable[[np.ndarray, np.ndarray], np.ndarray]
    dL_dA: Callable[[np.ndarray, np.ndarray], np.ndarray]
    outputs: tuple[str, ...]


LOSSES: dict[str, Loss] = {
    # eq 1, summed over output units; its derivative is the seed's dA[N] for sigmoid output.
    "log-loss": Loss(
        "log-loss",
        lambda Y, A: np.sum(-Y * np.log(A) - (1.0 - Y) * np.log(1.0 - A), axis=0),
        lambda Y, A: -(Y / A) + (1.0 - Y) / (1.0 - A),
        ("sigmoid", "softmax"),
    ),
    "mse": Loss(
        "mse",
        lambda Y, A: np.sum((A - Y) ** 2, axis=0),
        lambda Y, A: 2.0 * (A - Y),
        tuple(ACTIVATIONS),
    ),
    "cross-entropy": Loss(
        "cross-entropy",
        lambda Y, A: -np.sum(Y * np.log(A), axis=0),
        lambda Y, A: -(Y / A),
        ("softmax",),
    ),
}

# Output/loss pairs for which the seed's simplification dZ[N] = A[N] - Y (note under eq 84) holds.
SIMPLIFIES_TO_A_MINUS_Y = {("sigmoid", "log-loss"), ("softmax", "cross-entropy")}


def cost(A_N: np.ndarray, Y: np.ndarray, loss: str) -> float:
    """Eq 76: ``J = (1/m) sum_i L(y(i), a[N](i))``; m is the number of columns."""
    m = A_N.shape[1]
    return float(np.sum(LOSSES[loss].value(Y, A_N)) / m)


# --------------------------------------------------------------------------------------------
# Forward pass, eqs 33-34
# --------------------------------------------------------------------------------------------

def forward(W, b, X, activations, perturb: dict | None = None):
    """Eqs 33-34 for every layer: ``Z[l] = W[l] A[l-1] + b[l]``, ``A[l] = g[l](Z[l])``.

    Returns ``(Z, A)``, lists indexed by layer (``Z[0]`` is None, ``A[0]`` is X). ``b[l]``
    (n[l] x 1) is added to every column by broadcasting, eqs 30-33.

    ``perturb`` maps ``("Z", l)`` or ``("A", l)`` to an array added to that intermediate as
    soon as it is computed; finite differences of J with respect to Z[l] or A[l] use it.
    """
    perturb = perturb or {}
    N = len(W)
    Z: list = [None] * (N + 1)
    A: list = [None] * (N + 1)
    A[0] = X + perturb[("A", 0)] if ("A", 0) in perturb else X  # eq 39: A[0] is X itself
    for l in range(1, N + 1):
        Z[l] = W[l - 1] @ A[l - 1] + b[l - 1] + perturb.get(("Z", l), 0.0)
        A[l] = ACTIVATIONS[activations[l - 1]].g(Z[l]) + perturb.get(("A", l), 0.0)
    return Z, A


def J_of(W, b, X, Y, activations, loss, perturb: dict | None = None) -> float:
    """The cost J (eq 76) of the forward pass (eqs 33-34), optionally perturbed (see ``forward``).

    ``W`` and ``b`` are 0-based lists here (``W[0]`` is the seed's W[1]), as the caller holds them.
    """
    _, A = forward(W, b, X, activations, perturb)
    return cost(A[-1], Y, loss)


# --------------------------------------------------------------------------------------------
# The backward rules, eqs 77-84, as values that can be swapped for wrong ones
# --------------------------------------------------------------------------------------------

def _label(quantity: str, layer: int) -> str:
    return f"{quantity}[{layer}]"


def product(d: "Derivation", *, quantity: str, layer: int, left: tuple, right: tuple,
            rule: str = "", corrected: str = "") -> np.ndarray:
    """The matrix product ``left @ right`` of one backward rule, or a ShapeClash that explains.

    ``left`` and ``right`` are ``(label, array)`` pairs such as ``("dZ[2]", dZ)``; ``rule``
    names the equation actually written (a wrong one, e.g. "eq 55, marked wrong in the seed"),
    ``corrected`` says which equation the learner should have used. Every rule below goes through here, so a
    rule that does not type-check fails with the seed's equation and both shapes, not with
    numpy's bare "matmul: Input operand 1 has a mismatch".
    """
    (left_label, L), (right_label, R) = left, right
    if L.shape[1] != R.shape[0]:
        eq = equation_of(quantity, layer, d.N)
        written = f"written as {rule}" if rule else "as written by this derivation"
        raise ShapeClash(
            f"{_label(quantity, layer)} (eq {eq}) {written}: {_label(quantity, layer)} = "
            f"{left_label} {right_label} does not type-check: {left_label} is "
            f"{L.shape[0]} x {L.shape[1]} and {right_label} is {R.shape[0]} x {R.shape[1]}, "
            f"inner sizes {L.shape[1]} != {R.shape[0]}. {corrected}",
            equation=eq, quantity=quantity, layer=layer,
            shapes={left_label: L.shape, right_label: R.shape},
        )
    return L @ R


def _dA_output(d: "Derivation") -> np.ndarray:
    """Eq 77: ``dA[N] = dL/dA[N]`` per sample (seed), times 1/m in the autodiff convention."""
    return d.scale_dA_N * LOSSES[d.loss].dL_dA(d.Y, d.A[d.N])


def _dA_output_without_m(d: "Derivation") -> np.ndarray:
    return LOSSES[d.loss].dL_dA(d.Y, d.A[d.N])


def _dZ(d: "Derivation", l: int) -> np.ndarray:
    """Eqs 78/82 (= corrected eq 54): ``dZ[l] = dA[l] * g[l]'(Z[l])``, elementwise."""
    return ACTIVATIONS[d.activations[l - 1]].backward_through(d.dA[l], d.Z[l], d.A[l])


def _dW(d: "Derivation", l: int) -> np.ndarray:
    """Eqs 79/83 (= corrected eq 59 for m samples): ``dW[l] = (1/m) dZ[l] A[l-1]^T``."""
    return d.scale_dW * product(d, quantity="dW", layer=l, left=(f"dZ[{l}]", d.dZ[l]),
                                right=(f"A[{l - 1}]^T", d.A[l - 1].T))


def _db(d: "Derivation", l: int) -> np.ndarray:
    """Eqs 80/84: ``db[l] = (1/m) sum(dZ[l], axis=1)`` — un-broadcasting b's column (eq 30-33)."""
    return d.scale_dW * np.sum(d.dZ[l], axis=1, keepdims=True)


def _dA_prev(d: "Derivation", h: int) -> np.ndarray:
    """Eq 81 (= corrected eq 65): ``dA[h] = W[h+1]^T dZ[h+1]``."""
    return product(d, quantity="dA", layer=h, left=(f"W[{h + 1}]^T", d.W[h + 1].T),
                   right=(f"dZ[{h + 1}]", d.dZ[h + 1]))


@dataclass(frozen=True)
class Rules:
    """The backward equations a derivation uses, one callable per equation.

    ``dA_output(d)`` is eq 77; ``dZ(d, l)`` eqs 78/82; ``dW(d, l)`` eqs 79/83; ``db(d, l)``
    eqs 80/84; ``dA_prev(d, h)`` eq 81 (dA[h] from layer h+1). Each reads what it needs from
    the partly filled ``Derivation`` d (``d.Z[l]``, ``d.A[l-1]``, ``d.dZ[l]``, ``d.W[l]``,
    ``d.m``, ...). To try your own derivation, replace one field:
    ``dataclasses.replace(SEED_RULES, dW=my_dW, name="mine")``.
    """

    name: str
    dA_output: Callable
    dZ: Callable
    dW: Callable
    db: Callable
    dA_prev: Callable
    wrong: str = ""  # what is deliberately wrong, for reports; "" for the seed's rules


SEED_RULES = Rules("seed eqs 77-84", _dA_output, _dZ, _dW, _db, _dA_prev)


# The deliberately wrong rules. Each: what it replaces, the wrong rule, and what it gets wrong.
def _dW_eq55(d, l):
    # Eq 55 (marked wrong in the seed): dW = dZ A[l-1], the transpose of eq 59 forgotten.
    return d.scale_dW * product(
        d, quantity="dW", layer=l, left=(f"dZ[{l}]", d.dZ[l]), right=(f"A[{l - 1}]", d.A[l - 1]),
        rule="eq 55, marked wrong in the seed",
        corrected=f"Corrected, eq 59 (eqs 79, 83 for m samples): dW[{l}] = {_one_over_m(d)}dZ[{l}] A[{l - 1}]^T, "
                  f"{d.dZ[l].shape[0]} x m times m x {d.A[l - 1].shape[0]} = the shape of W[{l}].")


def _one_over_m(d) -> str:
    return "(1/m) " if d.convention == "seed" else ""


def _dA_prev_eq64(d, h):
    # Eq 64 (marked wrong in the seed): dA[h] = dZ[h+1] W[h+1], order swapped, no transpose.
    return product(
        d, quantity="dA", layer=h, left=(f"dZ[{h + 1}]", d.dZ[h + 1]),
        right=(f"W[{h + 1}]", d.W[h + 1]), rule="eq 64, marked wrong in the seed",
        corrected=_eq65(d, h))


def _dA_prev_no_transpose(d, h):
    # Eq 65 with its transpose dropped: dA[h] = W[h+1] dZ[h+1].
    return product(
        d, quantity="dA", layer=h, left=(f"W[{h + 1}]", d.W[h + 1]),
        right=(f"dZ[{h + 1}]", d.dZ[h + 1]), rule="eq 65 without its transpose",
        corrected=_eq65(d, h))


def _eq65(d, h) -> str:
    return (f"Corrected, eq 65 (eq 81 for m samples): dA[{h}] = W[{h + 1}]^T dZ[{h + 1}], "
            f"{d.W[h + 1].shape[1]} x {d.W[h + 1].shape[0]} times "
            f"{d.dZ[h + 1].shape[0]} x m = the shape of A[{h}].")


def _dZ_eq50(d, l):
    # Eq 50 (marked wrong in the seed): dZ = dA g'(Z) read as a matrix product.
    activation = ACTIVATIONS[d.activations[l - 1]]
    if activation.g_prime is None:
        # Softmax has no elementwise g'; the closest wrong reading multiplies by the Jacobian's
        # diagonal a(1-a) as a matrix, which is eq 50's mistake all the same.
        g_prime = d.A[l] * (1.0 - d.A[l])
    else:
        g_prime = activation.g_prime(d.Z[l])
    return product(
        d, quantity="dZ", layer=l, left=(f"dA[{l}]", d.dA[l]), right=(f"g'(Z[{l}])", g_prime),
        rule="eq 50, marked wrong in the seed",
        corrected=f"Corrected, eq 54 (eqs 78, 82 for m samples): dZ[{l}] = dA[{l}] * g'(Z[{l}]) elementwise; "
                  f"both are n[{l}] x m, so only the elementwise product keeps that shape.")


def _dW_without_m(d, l):
    return _dW(d, l) / d.scale_dW


def _db_without_m(d, l):
    return _db(d, l) / d.scale_dW


def _dZ_g_prime_of_A(d, l):
    # A classic slip: evaluating g' at the activation A[l] instead of at Z[l] (eq 78 says Z).
    activation = ACTIVATIONS[d.activations[l - 1]]
    if activation.g_prime is None:
        return _dZ(d, l)
    return d.dA[l] * activation.g_prime(d.A[l])


WRONG_VARIANTS: dict[str, tuple[dict, str]] = {
    "no-1/m": ({"dA_output": _dA_output_without_m, "dW": _dW_without_m, "db": _db_without_m},
               "forgets the 1/m of eq 76 (eqs 79-80, 83-84 in the seed convention, "
               "eq 77 in the autodiff one): dW and db come out m times too large"),
    "eq50": ({"dZ": _dZ_eq50},
             "eq 50: dZ = dA g'(Z) as a matrix product instead of the elementwise product of eq 54"),
    "eq55": ({"dW": _dW_eq55},
             "eq 55: dW = dZ A[l-1], the transpose of eq 59 forgotten"),
    "eq64": ({"dA_prev": _dA_prev_eq64},
             "eq 64: dA[l-1] = dZ[l] W[l], instead of eq 65's W[l]^T dZ[l]"),
    "no-transpose-65": ({"dA_prev": _dA_prev_no_transpose},
                        "eq 65 without its transpose: dA[l-1] = W[l] dZ[l]"),
    "g-prime-of-A": ({"dZ": _dZ_g_prime_of_A},
                     "eq 78/82 with g' evaluated at A[l] instead of Z[l]"),
}


def wrong_rules(variant: str, layers: Sequence[int] | None = None) -> Rules:
    """The seed's rules with one deliberately wrong step, for testing a checker.

    ``variant`` is a key of ``WRONG_VARIANTS``. ``layers`` limits the mistake to the
    quantities of those layers (for dA_prev, the layer h of the dA[h] it computes); by default
    every layer is wrong. Example: ``wrong_rules("eq55", layers=[1])`` transposes nothing in
    dW[1] only.
    """
    if variant not in WRONG_VARIANTS:
        raise ValueError(f"wrong_rules: unknown variant {variant!r}; "
                         f"choose one of {', '.join(WRONG_VARIANTS)}")
    replacements, description = WRONG_VARIANTS[variant]
    if layers is not None:
        only = frozenset(layers)
        replacements = {key: _only_in_layers(key, wrong, getattr(SEED_RULES, key), only)
                        for key, wrong in replacements.items()}
        where = ", ".join(str(l) for l in sorted(only))
        description = f"{description} (layer {where} only)"
    return dataclasses.replace(SEED_RULES, name=f"wrong: {variant}", wrong=description,
                               **replacements)


def _only_in_layers(key: str, wrong: Callable, right: Callable, layers: frozenset) -> Callable:
    if key == "dA_output":  # eq 77 takes no layer: it belongs to layer N
        return lambda d: wrong(d) if d.N in layers else right(d)
    return lambda d, l: wrong(d, l) if l in layers else right(d, l)


# --------------------------------------------------------------------------------------------
# The derivation
# --------------------------------------------------------------------------------------------

@dataclass
class Derivation:
    """Every intermediate the seed names, for one network and one batch.

    Lists are indexed by layer 0..N: ``W[l]``, ``b[l]``, ``Z[l]``, ``A[l]`` (eqs 33-38,
    ``A[0] = X``), ``dA[l]``, ``dZ[l]``, ``dW[l]``, ``db[l]`` (eqs 77-84; index 0 is None,
    and so is ``dA[0]``: the seed stops at layer 1). ``J`` is the cost, eq 76.

    ``convention`` says what ``dA`` and ``dZ`` hold ("seed": per sample; "autodiff":
    dJ/dA, dJ/dZ, i.e. the seed's divided by m). ``dW`` and ``db`` are dJ/dW, dJ/db in both.
    """

    W: list
    b: list
    X: np.ndarray
    Y: np.ndarray
    activations: tuple[str, ...]
    loss: str
    convention: str
    rules: Rules
    Z: list
    A: list
    J: float
    dA: list = field(default_factory=list)
    dZ: list = field(default_factory=list)
    dW: list = field(default_factory=list)
    db: list = field(default_factory=list)

    @property
    def N(self) -> int:
        """Number of layers after the input."""
        return len(self.W) - 1

    @property
    def m(self) -> int:
        """Number of samples (columns of X), eq 25."""
        return self.X.shape[1]

    @property
    def scale_dA_N(self) -> float:
        """The factor eq 77 carries in this convention: 1 (seed) or 1/m (autodiff)."""
        return 1.0 if self.convention == "seed" else 1.0 / self.m

    @property
    def scale_dW(self) -> float:
        """The factor eqs 79-80, 83-84 carry in this convention: 1/m (seed) or 1 (autodiff)."""
        return 1.0 / self.m if self.convention == "seed" else 1.0

    def dJ(self, quantity: str, layer: int) -> np.ndarray:
        """dJ/dX for quantity X of ``layer`` in the autodiff convention, whatever ours is.

        This is what an engine's ``.grad`` holds after ``J.backward()``: for dA and dZ, the
        seed-convention array divided by m; dW and db are the same in both conventions.
        """
        value = getattr(self, quantity)[layer]
        if quantity in ("dA", "dZ") and self.convention == "seed":
            return value / self.m
        return value

    def per_sample(self, quantity: str, layer: int) -> np.ndarray:
        """dA or dZ of ``layer`` in the seed convention (column i = dL(i)/d...(i))."""
        if quantity not in ("dA", "dZ"):
            raise ValueError(f"per_sample: only dA and dZ have a per-sample form, not {quantity!r}")
        value = getattr(self, quantity)[layer]
        return value * self.m if self.convention == "autodiff" else value

    def quantities(self) -> Iterator[tuple[str, int, int]]:
        """``(quantity, layer, equation)`` in backward order: dA[N], dZ[N], dW[N], db[N], dA[N-1], ..."""
        for l in range(self.N, 0, -1):
            for quantity in QUANTITIES:
                yield quantity, l, equation_of(quantity, l, self.N)

    def __repr__(self) -> str:
        sizes = [self.X.shape[0]] + [W.shape[0] for W in self.W[1:]]
        return (f"Derivation(layers={sizes}, activations={list(self.activations)}, "
                f"loss={self.loss!r}, m={self.m}, J={self.J:.6g}, convention={self.convention!r}, "
                f"rules={self.rules.name!r})")


def derive(W: Sequence, b: Sequence, X, Y, activations: Sequence[str], loss: str = "log-loss",
           *, convention: str = "seed", rules: Rules = SEED_RULES,
           simplify: bool = False) -> Derivation:
    """Forward (eqs 33-34), cost (eq 76) and backward (eqs 77-84) by hand, for any depth.

    ``W`` and ``b`` are sequences of the N layers' arrays (``W[0]`` here is the seed's W[1]);
    ``X`` is ``n[0] x m``, ``Y`` is ``n[N] x m``; ``activations`` has one name per layer
    (sigmoid, tanh, relu, identity, softmax); ``loss`` is "log-loss", "mse" or "cross-entropy".
    Everything is computed in float64.

    ``convention`` is "seed" or "autodiff" (see the module docstring). ``rules`` replaces the
    backward equations (``wrong_rules`` builds deliberately wrong ones). ``simplify=True`` uses
    the seed's closed form ``dZ[N] = A[N] - Y`` (note under eq 84; divided by m in the
    autodiff convention) instead of chaining eq 77 into eq 78; it exists only for a sigmoid
    output with log-loss and a softmax output with cross-entropy. dA[N] is eq 77 either way.

    Raises ValueError naming the offending argument and shapes for inconsistent input, and
    ``ShapeClash`` when a rule does not type-check.
    """
    W, b, X, Y, activations = validate_network(W, b, X, Y, activations, loss, convention)
    if simplify and (activations[-1], loss) not in SIMPLIFIES_TO_A_MINUS_Y:
        raise ValueError(f"derive: simplify=True needs a sigmoid output with log-loss or a softmax "
                         f"output with cross-entropy, not {activations[-1]} with {loss}")
    Z, A = forward(W, b, X, activations)
    N = len(W)
    d = Derivation(W=[None, *W], b=[None, *b], X=X, Y=Y, activations=activations, loss=loss,
                   convention=convention, rules=rules, Z=Z, A=A, J=cost(A[N], Y, loss),
                   dA=[None] * (N + 1), dZ=[None] * (N + 1), dW=[None] * (N + 1),
                   db=[None] * (N + 1))

    try:
        _backward(d, rules, simplify)
    except ShapeClash as clash:
        # Keep what was derived before the clash: a report can still show those quantities.
        clash.derivation = d
        raise
    return d


def _backward(d: Derivation, rules: Rules, simplify: bool) -> None:
    """Eqs 77-84 from the output layer down, filling d in backward order."""
    N, Z, A = d.N, d.Z, d.A
    d.dA[N] = _checked(d, "dA", N, rules.dA_output(d), A[N].shape, "A")
    for l in range(N, 0, -1):
        if l < N:
            d.dA[l] = _checked(d, "dA", l, rules.dA_prev(d, l), A[l].shape, "A")
        if simplify and l == N:
            # The closed form of eqs 77-78 combined (EQUATIONS.md, note under eq 84).
            d.dZ[l] = d.scale_dA_N * (A[N] - d.Y)
        else:
            d.dZ[l] = _checked(d, "dZ", l, rules.dZ(d, l), Z[l].shape, "Z")
        d.dW[l] = _checked(d, "dW", l, rules.dW(d, l), d.W[l].shape, "W")
        d.db[l] = _checked(d, "db", l, rules.db(d, l), d.b[l].shape, "b")


def _checked(d: Derivation, quantity: str, layer: int, value, expected: tuple,
             of: str) -> np.ndarray:
    """A rule's result must have the shape of what it differentiates (eqs 35-38, 51-53, 56-58)."""
    value = np.asarray(value, dtype=np.float64)
    if value.shape != expected:
        eq = equation_of(quantity, layer, d.N)
        raise ShapeClash(
            f"eq {eq} (as written by this derivation): {_label(quantity, layer)} came out "
            f"{_shape_text(value.shape)} but {of}[{layer}] is {_shape_text(expected)}; a gradient "
            f"has the shape of what it differentiates (eqs 51-53, 56-58).",
            equation=eq, quantity=quantity, layer=layer,
            shapes={_label(quantity, layer): value.shape, f"{of}[{layer}]": expected},
        )
    return value


def _shape_text(shape: tuple) -> str:
    return " x ".join(str(n) for n in shape) if shape else "a scalar"


def validate_network(W, b, X, Y, activations, loss, convention="seed", caller="derive"):
    """Float64 copies of the inputs, or a ValueError that names what does not fit and why.

    ``caller`` starts each message ("derive", "compare") so the error names the operation.
    """
    activations = check_network(W, b, X, Y, activations, loss, convention, caller)
    W = [np.asarray(w, dtype=np.float64) for w in W]
    b = [np.asarray(c, dtype=np.float64) for c in b]
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if loss == "cross-entropy" and not np.allclose(Y.sum(axis=0), 1.0):
        raise ValueError(f"{caller}: cross-entropy needs Y columns that sum to 1 (one-hot labels)")
    return W, b, X, Y, activations


def check_network(W, b, X, Y, activations, loss, convention="seed", caller="derive") -> tuple:
    """The activations as a tuple, or the ValueError of ``validate_network`` for everything but
    the values: it reads only names and shapes, so arrays of any backend (a Dask graph, not
    computed), Tensors and nested lists pass through it as they are. ``compare`` checks a
    network with it before running autodiff, and brings the values over once, afterwards."""
    if convention not in CONVENTIONS:
        raise ValueError(f"{caller}: convention must be one of {CONVENTIONS}, not {convention!r}")
    if loss not in LOSSES:
        raise ValueError(f"{caller}: unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    activations = tuple(activations)
    N = len(W)
    if N == 0:
        raise ValueError(f"{caller}: the network needs at least one layer (W is empty)")
    if len(b) != N or len(activations) != N:
        raise ValueError(f"{caller}: {N} weight matrices need {N} biases and {N} activations, "
                         f"got {len(b)} biases and {len(activations)} activations")
    for name in activations:
        if name not in ACTIVATIONS:
            raise ValueError(f"{caller}: unknown activation {name!r}; "
                             f"choose one of {', '.join(ACTIVATIONS)}")
    X_shape = tuple(np.shape(X))
    if len(X_shape) != 2:
        raise ValueError(f"{caller}: X must be n[0] x m (samples as columns, eq 25), got shape {X_shape}")
    n_prev = X_shape[0]
    for l, (w, c) in enumerate(zip(W, b), start=1):
        w_shape, c_shape = tuple(np.shape(w)), tuple(np.shape(c))
        if len(w_shape) != 2 or w_shape[1] != n_prev:
            raise ValueError(f"{caller}: W[{l}] must be n[{l}] x {n_prev} (eq 35), got shape {w_shape}")
        if c_shape != (w_shape[0], 1):
            raise ValueError(f"{caller}: b[{l}] must be {w_shape[0]} x 1 (eq 36), got shape {c_shape}")
        n_prev = w_shape[0]
    if tuple(np.shape(Y)) != (n_prev, X_shape[1]):
        raise ValueError(f"{caller}: Y must be n[{N}] x m = {n_prev} x {X_shape[1]} like A[{N}], "
                         f"got shape {tuple(np.shape(Y))}")
    if activations[-1] not in LOSSES[loss].outputs:
        raise ValueError(f"{caller}: {loss} needs a {' or '.join(LOSSES[loss].outputs)} output, "
                         f"not {activations[-1]}")
    return activations


# --------------------------------------------------------------------------------------------
# How far rounding can move each value of a correct derivation
# --------------------------------------------------------------------------------------------

@dataclass
class Bounds:
    """Elementwise round-off bounds of a correct derivation, indexed like ``Derivation``.

    ``Z[l]``, ``A[l]``: how far the computed forward values (eqs 33-34) can be from the exact
    ones; ``dA``, ``dZ``, ``dW``, ``db``: the same for the gradients in the autodiff
    convention (dJ/dA, dJ/dZ; eqs 77-84); ``J``: for the cost (eq 76). Any correct way of
    computing a quantity in float64 (the engine, the reference, in any order of operations)
    lands within its bound of the exact value, so two correct ways differ by at most twice it.
    """

    Z: list
    A: list
    dA: list
    dZ: list
    dW: list
    db: list
    J: float

    def dJ(self, quantity: str, layer: int) -> np.ndarray:
        return getattr(self, quantity)[layer]


def roundoff_bounds(d: "Derivation") -> Bounds:
    """Forward error bounds of every value of the seed's derivation d, element by element,
    computed from the operands' magnitudes (docs/check.md, "How verdicts are decided").

    Forward: ``Z = W A + b`` rounds by ``gamma(n + 1)(|W||A| + |b|)`` and inherits
    ``|W| e_A``; ``A = g(Z)`` inherits ``|g'(Z)| e_Z`` and rounds by a few ulps of A.
    Backward (eqs 77-84): each product sum rounds by ``gamma(k) sum |a||b|`` and inherits its
    operands' errors (``product_bound``); elementwise steps by ``|a| e_b + |b| e_a`` and an
    ulp of the result. The bound is about the *correct* derivation, so it is computed from
    d's forward values whatever d's rules are (the rules only supply the network).
    """
    N, m, u = d.N, d.m, EPS
    s = 1.0 / m
    Z, A = d.Z, d.A
    eZ: list = [None] * (N + 1)
    eA: list = [None] * (N + 1)
    eA[0] = np.zeros_like(d.X)
    for l in range(1, N + 1):
        W, b = d.W[l], d.b[l]
        eZ[l] = (gamma(W.shape[1] + 1) * (np.abs(W) @ np.abs(A[l - 1]) + np.abs(b))
                 + np.abs(W) @ eA[l - 1] + UNDERFLOW)
        eA[l] = _activation_forward_bound(d.activations[l - 1], Z[l], A[l], eZ[l])

    # the cost, eq 76: each sample's loss inherits dL/dA e_A and rounds by a few ulps of its
    # terms; the mean rounds by gamma(n m) of the sum of |L|
    AN, Y, eN = A[N], d.Y, eA[N]
    with np.errstate(divide="ignore", invalid="ignore"):
        if d.loss == "log-loss":
            terms = np.abs(Y * np.log(AN)) + np.abs((1 - Y) * np.log1p(-AN))
            slope = np.abs(Y) / AN + np.abs(1 - Y) / (1 - AN)
        elif d.loss == "mse":
            terms = (AN - Y) ** 2
            slope = 2 * np.abs(AN - Y)
        else:
            terms = np.abs(Y * np.log(AN))
            slope = np.abs(Y) / AN
        eJ = float(s * (np.sum(slope * (eN + u * np.abs(AN)) + 2 * FUNCTION * u * terms)
                        + gamma(AN.size + 2) * np.sum(terms)))

        dA: list = [None] * (N + 1)
        dZ: list = [None] * (N + 1)
        dW: list = [None] * (N + 1)
        db: list = [None] * (N + 1)
        # eq 77 in the autodiff convention (the 1/m inside)
        if d.loss == "log-loss":
            # -Y/A + (1 - Y)/(1 - A): each term inherits its slope times e_A (1 - A also
            # rounds by an ulp of 1) and rounds by a few ulps of itself
            # (written as |Y|/A (e_A/A): A^2 would underflow first)
            dA[N] = s * (np.abs(Y) / AN * (eN / AN) + np.abs(1 - Y) / (1 - AN) * ((eN + u) / (1 - AN))
                         + 2 * FUNCTION * u * (np.abs(Y) / AN + np.abs(1 - Y) / (1 - AN)))
        elif d.loss == "mse":
            # A - Y rounds by an ulp of A and Y; the factors 2 and 1/m (or m, converting
            # between conventions) by an ulp or two of the result each
            dA[N] = 2 * s * (eN + 2 * u * (np.abs(AN) + np.abs(Y)) + 4 * u * np.abs(AN - Y))
        else:
            dA[N] = s * (np.abs(Y) / AN * (eN / AN) + 2 * FUNCTION * u * np.abs(Y) / AN)
        dA[N] = dA[N] + UNDERFLOW
        incoming = _autodiff_dA_N(d)
        for l in range(N, 0, -1):
            if l < N:
                dA[l] = product_bound(d.W[l + 1].T, np.zeros_like(d.W[l + 1].T),
                                      grads_dZ, dZ[l + 1])
                incoming = d.W[l + 1].T @ grads_dZ
            grads_dZ, dZ[l] = _activation_backward_bound(d.activations[l - 1], Z[l], A[l], eZ[l],
                                                         eA[l], incoming, dA[l])
            dW[l] = product_bound(grads_dZ, dZ[l], A[l - 1].T, eA[l - 1].T)
            db[l] = sum_bound(grads_dZ, dZ[l], axis=1)
    return Bounds(eZ, eA, dA, dZ, dW, db, eJ)


def _autodiff_dA_N(d: "Derivation") -> np.ndarray:
    """Eq 77 in the autodiff convention, the seed's rule whatever d's rules are."""
    return LOSSES[d.loss].dL_dA(d.Y, d.A[d.N]) / d.m


def _activation_forward_bound(name, Z, A, eZ):
    """e_A for A = g(Z) (eq 34): the propagated |g'(Z)| e_Z plus g's own rounding."""
    u = EPS
    if name == "sigmoid":
        # eq 8: s' = s(1 - s) <= 1/4; exp, log1p and a division round by a few ulps
        return A * (1 - A) * eZ + 2 * FUNCTION * u * A + UNDERFLOW
    if name == "tanh":
        return (1 - A ** 2) * eZ + FUNCTION * u * np.abs(A) + UNDERFLOW
    if name == "relu":
        # exact where Z is clear of 0; within e_Z of the kink A may be Z or 0
        return np.where((Z > 0) | (np.abs(Z) <= eZ), eZ, 0.0) + UNDERFLOW
    if name == "identity":
        return eZ + UNDERFLOW
    # softmax: dA_i = A_i (dZ_i - sum_j A_j dZ_j), so |dA_i| <= 2 A_i max_j e_Zj; exp of the
    # shifted Z and the column sum round by a few ulps and gamma(n)
    n = Z.shape[0]
    return A * (2 * eZ.max(axis=0, keepdims=True) + (2 * FUNCTION + n + 2) * u) + UNDERFLOW


def _activation_backward_bound(name, Z, A, eZ, eA, dA, e_dA):
    """dZ = dJ/dZ (eqs 78, 82) from dA with its bound e_dA: ``(dZ, e_dZ)``."""
    u = EPS
    if name == "softmax":
        S = np.sum(A * dA, axis=0, keepdims=True)
        eS = sum_bound(A * dA, np.abs(A) * e_dA + np.abs(dA) * eA, axis=0)
        dZ = A * (dA - S)
        e = (np.abs(A) * (e_dA + eS + u * (np.abs(dA) + np.abs(S))) + eA * np.abs(dA - S)
             + 2 * u * np.abs(dZ))
        return dZ, e + UNDERFLOW
    if name == "sigmoid":
        g_prime = A * (1 - A)
        # A(1 - A) from an A that is off by e_A (1 - A rounds by an ulp of 1 too)
        e_g = np.abs(1 - 2 * A) * eA + A * (eA + u) + 3 * u * g_prime
    elif name == "tanh":
        g_prime = 1 - A ** 2
        e_g = 2 * np.abs(A) * eA + 3 * u
    elif name == "relu":
        g_prime = (Z > 0).astype(np.float64)
        # within e_Z of the kink the two ways may take either side
        e_g = (np.abs(Z) <= eZ).astype(np.float64)
    else:
        g_prime = np.ones_like(Z)
        e_g = np.zeros_like(Z)
    dZ = dA * g_prime
    return dZ, np.abs(g_prime) * e_dA + np.abs(dA) * e_g + 2 * u * np.abs(dZ) + UNDERFLOW


# --------------------------------------------------------------------------------------------
# A random problem for checks and demos
# --------------------------------------------------------------------------------------------

def random_problem(layers: Sequence[int], activations: Sequence[str], m: int,
                   loss: str = "log-loss", seed: int = 0):
    """A randomly initialised network and batch: ``(W, b, X, Y)`` with 0-based W, b lists.

    ``layers`` are the sizes n[0], ..., n[N]. W[l] is drawn with variance 1/n[l-1] so that
    sigmoid and tanh units start away from saturation; b[l] is small but non-zero so db is
    not trivially tested on zeros. Y fits the loss: 0/1 labels for log-loss, one-hot columns
    for cross-entropy, real targets for mse.
    """
    rng = np.random.default_rng(seed)
    W = [rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
         for n_in, n_out in zip(layers[:-1], layers[1:])]
    b = [0.1 * rng.standard_normal((n_out, 1)) for n_out in layers[1:]]
    X = rng.standard_normal((layers[0], m))
    n_out = layers[-1]
    if loss == "cross-entropy":
        Y = np.eye(n_out)[:, rng.integers(0, n_out, size=m)]
    elif loss == "log-loss":
        Y = rng.integers(0, 2, size=(n_out, m)).astype(np.float64)
    else:
        Y = rng.standard_normal((n_out, m))
    return W, b, X, Y

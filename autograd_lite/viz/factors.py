"""The local factor of a backward step, so a learner can multiply it out by hand.

Each vjp is linear in the gradient ``g`` coming in. For the steps of the seed's network it is
one product: ``g ∘ F`` elementwise (the sigmoid's ``A(1 − A)`` of eq 8, the log's ``1/A``, the
mean's ``1/m``, add's ``1``), or a matrix product ``g·F`` / ``F·g`` (``dW = dZ·Aᵀ``, eqs 79 and
83; ``dA = Wᵀ·dZ``, eq 81). ``local_factor`` says which, names ``F`` as the rule writes it and
gives its array, so the page can show incoming gradient, factor and result side by side and a
test can check that their product is the result.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Operations whose output element depends only on the same element of each (broadcast) input:
# their Jacobian is diagonal, so the vjp is g ∘ F with F = vjp(ones).
DIAGONAL = {"add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sigmoid", "tanh", "relu",
            "abs", "maximum", "minimum", "clip", "square", "sqrt", "sin", "cos", "leaky_relu",
            "elu", "softplus", "normal_cdf", "gelu", "xlogy", "xdivy", "broadcast_to"}

PLACEHOLDER = _G = "\u27e8g\u27e9"  # ⟨g⟩: the incoming gradient in the op's formula


@dataclass(frozen=True)
class Factor:
    """``form``: "g∘F" (elementwise, broadcast), "g·F" or "F·g" (matrix products); ``label``:
    F as the rule writes it (``A[2](1 − A[2])``, ``A[1]ᵀ``, ``1/5``); ``array``: F's values
    (a 0-d array where every element is the same number, like add's 1)."""
    form: str
    label: str
    array: np.ndarray


def local_factor(graph, k, i, g, values, formula, names) -> Factor | None:
    """The factor F of the vjp of the op that made tensor ``k``, for its input ``i``, such that
    the vjp's raw result (before any sum back to the input's shape, eq 80) is ``g ∘ F``,
    ``g·F`` or ``F·g``. ``formula``: the op's rule for input i written with ``⟨g⟩`` for the
    incoming gradient (``Primitive.formula``); ``names``: the display names of the inputs,
    then the output. None for an operation that is not one product (reshape, softmax, a
    user's primitive): its step shows the rule, the incoming gradient and the result only."""
    tensor = graph.tensors[k]
    node = tensor.grad_fn
    parents = graph.parents[k]
    op = tensor.op
    if op == "matmul" and len(parents) == 2 and all(np.ndim(values[p]) == 2 for p in parents):
        other = parents[1 - i]
        label = _transposed(names[1 - i])
        return Factor("g·F" if i == 0 else "F·g", label, np.asarray(values[other]).T)
    if op not in DIAGONAL and np.size(g) != 1:
        return None
    inputs = tuple(values[p] for p in parents)
    wants = tuple(j == i for j in range(len(parents)))
    ones = np.ones_like(np.asarray(g, dtype=np.float64))
    array = node.op.vjp(ones, inputs, values[k], wants, **(node.params or {}))[i]
    if array is None:
        return None
    array = np.asarray(array, dtype=np.float64)
    if array.size and np.all(array == array.reshape(-1)[0]):
        array = np.asarray(array.reshape(-1)[0])  # one number: add's 1, the mean's 1/m
    return Factor("g∘F", _label(op, formula, names, array, i), array)


def multiply(factor: Factor, g) -> np.ndarray:
    """What the factor times the incoming gradient gives, in the form it says."""
    g = np.asarray(g, dtype=np.float64)
    if factor.form == "g·F":
        return g @ factor.array
    if factor.form == "F·g":
        return factor.array @ g
    return g * factor.array


def _transposed(name) -> str:
    text, atomic = name
    return f"{text}ᵀ" if atomic else f"({text})ᵀ"


def _label(op, formula, names, array, i) -> str:
    """F as the rule writes it: the op's formula with the incoming gradient taken out."""
    if array.ndim == 0 and op in ("mean", "sum", "add", "sub", "neg", "broadcast_to"):
        value = float(array)
        if op == "mean" and value:
            return f"1/{1 / value:g}"
        return f"{value:g}".replace("-", "−")
    text = formula or ""
    if text in (_G, f"−{_G}"):  # the gradient passed on, or its negative
        return text.replace(_G, "1")
    for prefix, sign in ((f"{_G} ∘ ", ""), (f"{_G}·", ""), (f"−{_G} ∘ ", "−")):
        if text.startswith(prefix):
            return sign + text[len(prefix):]
    for prefix in (f"{_G} / ", f"{_G}/"):
        if text.startswith(prefix):
            rest = text[len(prefix):]
            return f"1/{rest}" if " " not in rest or rest.startswith("(") else f"1/({rest})"
    if text.endswith(f"·{_G}"):
        return text[:-len(f"·{_G}")]
    if text.endswith(f" ∘ {_G}"):
        return text[:-len(f" ∘ {_G}")]
    out, x = names[-1][0], names[i][0]
    return f"∂{out}/∂{x}"

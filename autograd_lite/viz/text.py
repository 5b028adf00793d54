"""What the picture writes: shapes, values, operation labels and the local backward rules.

Every label cites the seed's equations (EQUATIONS.md) where an operation plays a part the seed
names: matmul and the broadcast bias of eq 33, the sigmoid of eq 7, the mean over the samples of
eq 76, the un-broadcast of eq 80; and each gradient of the seed's network by the one equation
the seed gives for it in its layer (``seed_gradient``: dW[N] is eq 79, dW[h] eq 83).
"""
from __future__ import annotations

import html
import re

import numpy as np

from .. import backend
from ..core.backward import unbroadcast_axes  # noqa: F401 - the engine's own axes, re-exported
from ..ops import describe_axes, short_repr  # noqa: F401 - shared with the ops' formulas
from ..ops.base import count as reduced_count

# Forward: the equation an operation carries out in the seed's network.
FORWARD_EQUATIONS = {
    "matmul": "eq 33",
    "sigmoid": "eqs 7, 34",
    "tanh": "eq 34",
    "relu": "eq 34",
    "softmax": "eq 34",
    "log": "eq 1",
    "xlogy": "x log y, and 0 where x is 0: eq 1's terms",
    "binary_cross_entropy_with_logits": "eqs 1, 76",
}

# Backward: what the gradient that flows to input i of an operation owes to the seed, where
# that gradient is not one of the seed's own quantities (those get ``seed_gradient``'s one
# equation of their layer instead).
BACKWARD_EQUATIONS = {
    ("sigmoid", 0): "eq 8",
    ("mul", 0): "∘ of eq 54",
    ("mul", 1): "∘ of eq 54",
    ("log", 0): "d log(a) = da / a, in eq 1",
    ("xlogy", 1): "xlogy(y, a) is y log(a), and 0 where y is 0 (eq 1)",
    ("binary_cross_entropy_with_logits", 0): "eq 78 with the 1/m of eq 76",
}

# The seed's gradients by quantity: (output layer N, hidden layer h) for m samples (eqs
# 77-84), then for one sample (the summaries, eqs 66-73), each with the rule as the seed
# writes it; "{l}" is the layer, "{p}" the layer before, "{n}" the layer after.
SEED_GRADIENTS = {
    "dA": ((77, "dA[{l}] = dJ/dA[{l}]"), (81, "dA[{l}] = W[{n}]ᵀ dZ[{n}]"),
           (66, "da[{l}] = dL/da[{l}]"), (70, "da[{l}] = W[{n}]ᵀ dz[{n}]")),
    "dZ": ((78, "dZ[{l}] = dA[{l}] ∘ g[{l}]'(Z[{l}])"), (82, "dZ[{l}] = dA[{l}] ∘ g[{l}]'(Z[{l}])"),
           (67, "dz[{l}] = da[{l}] ∘ g[{l}]'(z[{l}])"), (71, "dz[{l}] = da[{l}] ∘ g[{l}]'(z[{l}])")),
    "dW": ((79, "dW[{l}] = (1/m) dZ[{l}] A[{p}]ᵀ"), (83, "dW[{l}] = (1/m) dZ[{l}] A[{p}]ᵀ"),
           (68, "dW[{l}] = dz[{l}] a[{p}]ᵀ"), (72, "dW[{l}] = dz[{l}] a[{p}]ᵀ")),
    "db": ((80, "db[{l}] = (1/m) Σ over the samples of dZ[{l}]"),
           (84, "db[{l}] = (1/m) Σ over the samples of dZ[{l}]"),
           (69, "db[{l}] = dz[{l}]"), (73, "db[{l}] = dz[{l}]")),
}

_SEED_GRADIENT = re.compile(r"^(dA|dZ|dW|db)\[(\d+)\]$")


def seed_gradient(name: str, N, one_sample: bool = False):
    """(equation number, the seed's rule) for a gradient of the seed's network in its layer:
    ``dW[2]`` of a 2-layer network is eq 79, ``dW[1]`` eq 83; with one sample (m = 1) the
    summaries, eqs 66-73. None for any other name, or a layer outside 1..N."""
    match = _SEED_GRADIENT.match(name)
    if match is None or N is None:
        return None
    layer = int(match.group(2))
    if not 1 <= layer <= N or (match.group(1) == "dA" and layer == 0):
        return None
    forms = SEED_GRADIENTS[match.group(1)]
    number, rule = forms[(2 if one_sample else 0) + (0 if layer == N else 1)]
    rule = rule.format(l=layer, p=layer - 1, n=layer + 1)
    return number, rule.replace("A[0]", "X").replace("a[0]", "x")  # eqs 25, 39


def mean_divisor(shape, axes, sample_flags=()) -> tuple:
    """(count, what it is) for a mean over ``axes`` of an array of ``shape``: eq 76's 1/m only
    for the mean over the samples (the flagged sample axis; without one, the last axis) with
    every other reduced axis of length 1; otherwise the units (axis 0), all n·m elements, or
    just the count of the axes."""
    axes = tuple(axes)
    count = reduced_count(shape, axes)
    samples = {i for i, flag in enumerate(sample_flags) if flag}
    if not samples and len(shape):
        samples = {len(shape) - 1}
    wide = [a for a in axes if shape[a] > 1]
    if wide and all(a in samples for a in wide):
        return count, f"m, the {count} samples: eq 76's 1/m"
    if wide and any(a in samples for a in wide):
        return count, f"n·m, all {count} elements (not eq 76's m)"
    if len(shape) == 2 and wide == [0]:
        return count, f"n, the {count} units of axis 0 (not eq 76's m)"
    return count, f"{count}, the elements of {describe_axes(axes, len(shape))} (not eq 76's m)"

UNBROADCAST_EQUATION = "eq 80"

# Operations whose vjp returns a gradient in the output's (broadcast) shape; the engine then
# sums it back to each input's shape (core.backward.sum_to_shape). Other ops return input shapes.
BROADCASTING_OPS = {"add", "sub", "mul", "div", "pow", "broadcast_to"}


def escape(text) -> str:
    """Text made safe inside a Graphviz HTML-like label, drawn as given: markup escaped, and a
    backslash doubled (Graphviz reads ``\\G`` in a label as the graph's name)."""
    return html.escape(str(text), quote=False).replace("\\", "\\\\")


def format_shape(shape, sample_flags=()) -> str:
    """``(4, 5)`` -> ``4×5``, or ``4×m`` where the axis is the sample axis; ``()`` -> scalar."""
    if len(shape) == 0:
        return "scalar"
    if not any(sample_flags):
        parts = [str(n) for n in shape]
    else:
        parts = ["m" if (i < len(sample_flags) and sample_flags[i]) else str(n)
                 for i, n in enumerate(shape)]
    return f"({parts[0]},)" if len(parts) == 1 else "×".join(parts)


def _number(value) -> str:
    return f"{value + 0.0:.3g}"  # + 0.0 turns -0.0 (0 times a negative number) into 0


def format_array(array, max_elements: int) -> list:
    """Lines of text for an array: every element when it has at most ``max_elements``,
    otherwise its min, mean and max (and how many elements are NaN or infinite). Any
    backend's array is brought to the host first (a Dask array computed)."""
    array = backend.to_numpy(array)
    if array.size <= max_elements:
        text = np.array2string(array, separator=" ", max_line_width=10_000,
                               formatter={"float_kind": _number, "int_kind": str})
        return text.splitlines()
    finite = np.isfinite(array)
    if not finite.any():
        return [f"no finite values ({array.size} elements)"]
    values = array[finite]
    line = f"min {_number(values.min())} · mean {_number(values.mean())} · max {_number(values.max())}"
    bad = array.size - int(finite.sum())
    return [line] + ([f"{bad} NaN or infinite"] if bad else [])


def op_label(tensor, inputs, input_shapes_text, input_names, input_flags=None) -> tuple:
    """(title, detail lines) for an operation node in the forward view (``input_flags``: the
    inputs' sample axes, which say whether a mean is eq 76's)."""
    op = tensor.op
    params = tensor.grad_fn.params
    detail = []
    if op in ("sum", "mean"):
        detail.append(f"over {describe_axes(params['axis'], inputs[0].ndim)}"
                      + (", keepdims" if params.get("keepdims") else ""))
        if op == "mean":
            flags = input_flags[0] if input_flags else ()
            detail.append("/ " + mean_divisor(inputs[0].shape, params["axis"], flags)[1])
    elif op == "pow" and "exponent" in params:
        detail.append(f"exponent {params['exponent']:g}")
    elif op in ("softmax", "log_softmax"):
        detail.append(f"over axis {params['axis']}")
    elif op == "reshape":
        detail.append(f"to {format_shape(params['shape'])}")
    elif op == "transpose" and params.get("axes") is not None:
        detail.append(f"axes {tuple(params['axes'])}")
    elif op == "getitem":
        detail.append(f"[{short_repr(params['index'])}]")
    if op in BROADCASTING_OPS:
        for x, shape_text, name in zip(inputs, input_shapes_text, input_names):
            if x.shape != tensor.shape:
                detail.append(f"broadcasts {name} {shape_text} (eqs 30-33)")
    if op in FORWARD_EQUATIONS:
        detail.append(FORWARD_EQUATIONS[op])
    return op, detail


def gradient_name(text: str, atomic: bool) -> str:
    """``W[1]`` -> ``dW[1]``; an expression -> ``d(W[1]·X)``, ``d(log(A[2]))`` (dX means
    dJ/dX, EQUATIONS.md)."""
    return f"d{text}" if atomic and "(" not in text else f"d({text})"


def backward_rule(tensor, i, g, names) -> str:
    """The right-hand side of d(input i) = ... for the vjp of the op that made ``tensor``,
    written with the names in the picture. ``g`` is the output's gradient name (dX or
    d(expression): never needs parentheses); ``names`` the (wrapped) display names of the
    inputs then the output (the last entry). The formula itself lives beside the vjp it
    describes (``Primitive.formula`` in ops), so a custom primitive can give its own."""
    node = tensor.grad_fn
    return node.op.formula(i, g, tuple(names), node.params or {},
                           tuple(x.shape for x in node.parents))



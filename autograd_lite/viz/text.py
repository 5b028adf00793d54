"""What the picture writes: shapes, values, operation labels and the local backward rules.

Every label cites the seed's equations (EQUATIONS.md) where an operation plays a part the seed
names: matmul and the broadcast bias of eq 33, the sigmoid of eq 7, the mean of eq 76, the
un-broadcast of eq 80, dW = dZ Aᵀ (eqs 79, 83) and dA = Wᵀ dZ (eqs 65, 81).
"""
from __future__ import annotations

import html

import numpy as np

from ..core.backward import unbroadcast_axes  # noqa: F401 - the engine's own axes, re-exported
from ..ops import describe_axes, short_repr  # noqa: F401 - shared with the ops' formulas

# Forward: the equation an operation carries out in the seed's network.
FORWARD_EQUATIONS = {
    "matmul": "eq 33",
    "sigmoid": "eqs 7, 34",
    "tanh": "eq 34",
    "relu": "eq 34",
    "softmax": "eq 34",
    "log": "eq 1",
    "mean": "eq 76",
    "binary_cross_entropy_with_logits": "eqs 1, 76",
}

# Backward: the equation of the gradient that flows to input i of an operation.
BACKWARD_EQUATIONS = {
    ("matmul", 0): "eqs 59, 79, 83",
    ("matmul", 1): "eqs 65, 81",
    ("sigmoid", 0): "eqs 8, 78, 82",
    ("tanh", 0): "eq 82",
    ("relu", 0): "eq 82",
    ("mul", 0): "∘ of eq 54",
    ("mul", 1): "∘ of eq 54",
    ("mean", 0): "the 1/m of eq 76",
    ("binary_cross_entropy_with_logits", 0): "eq 78 with the 1/m of eq 76",
}

UNBROADCAST_EQUATION = "eq 80"

# Operations whose vjp returns a gradient in the output's (broadcast) shape; the engine then
# sums it back to each input's shape (core.backward.sum_to_shape). Other ops return input shapes.
BROADCASTING_OPS = {"add", "sub", "mul", "div", "pow", "broadcast_to"}


def escape(text) -> str:
    """Text made safe inside a Graphviz HTML-like label."""
    return html.escape(str(text), quote=False)


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
    otherwise its min, mean and max (and how many elements are NaN or infinite)."""
    array = np.asarray(array)
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


def op_label(tensor, inputs, input_shapes_text, input_names) -> tuple:
    """(title, detail lines) for an operation node in the forward view."""
    op = tensor.op
    params = tensor.grad_fn.params
    detail = []
    if op in ("sum", "mean"):
        detail.append(f"over {describe_axes(params['axis'], inputs[0].ndim)}"
                      + (", keepdims" if params.get("keepdims") else ""))
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



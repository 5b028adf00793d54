"""The walk: every tensor behind a root, in topological order, with stable numbers.

A tensor's number is its position in a depth-first post-order walk from the root (inputs
first, the root last), so the same graph built twice gets the same numbers and the same DOT
source: node names never come from ``id()``. The walk is iterative, so a chain of 10,000 or
100,000 operations is walked without RecursionError.

This module also derives what a picture says about each tensor beyond its data: a display name
(the user's name, or a short expression such as ``W[1]·X`` when it has none) and which of its
axes is the sample axis ``m`` (samples are columns, eq 25).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..autodiff import Node
from ..tensor import Tensor


@dataclass
class Walk:
    """The graph behind ``root``: ``tensors[k]`` is tensor number k (topological order),
    ``parents[k]`` the numbers of its inputs (in argument order), ``consumers[k]`` the numbers
    of the tensors computed from it (each use counted once per argument slot)."""
    tensors: list
    parents: list
    consumers: list = field(default_factory=list)

    @property
    def root(self) -> int:
        return len(self.tensors) - 1


def walk(root) -> Walk:
    """Walk the graph behind ``root`` iteratively (post-order: every input before its user).

    Each operation's result appears as a Tensor made by its node (the root as the tensor
    given), with its value: the one the graph saved, or recomputed from its inputs, exactly
    (``autodiff.Node.value``), in one forward pass over the walk. A graph that backward() has
    used can still be walked: its values are recomputed, its retained gradients are there.
    """
    start = root.grad_fn or root
    order = []
    keys = []            # the key of each numbered entry, in order
    number = {}          # key -> its number; only a lookup, never a node name
    parent_keys = {}     # key -> the keys of its inputs, in argument order
    stack = [(start, id(start), False)]
    while stack:
        x, key, expanded = stack.pop()
        if expanded:
            number[key] = len(order)
            order.append(x)
            keys.append(key)
            continue
        if key in parent_keys:
            continue
        inputs = x.parents if isinstance(x, Node) else ()
        parent_keys[key] = [_use_key(p, key, i) for i, p in enumerate(inputs)]
        stack.append((x, key, True))
        # reversed, so the first argument is numbered first (reads left to right)
        for parent, parent_key in zip(reversed(inputs), reversed(parent_keys[key])):
            if parent_key not in parent_keys:
                stack.append((parent, parent_key, False))
    parents = [[number[p] for p in parent_keys[key]] for key in keys]
    tensors = _as_tensors(order, parents)
    tensors[-1] = root
    consumers = [[] for _ in order]
    for k, inputs in enumerate(parents):
        for p in inputs:
            consumers[p].append(k)
    return Walk(tensors, parents, consumers)


def _as_tensors(order, parents):
    """A Tensor per entry of the walk: a leaf as it is, a node's result with its value (saved,
    or recomputed from the values before it)."""
    tensors = []
    for x, inputs in zip(order, parents):
        if not isinstance(x, Node):
            tensors.append(x)
            continue
        value = x.saved_output
        if value is None:
            arrays = x.saved_inputs or [tensors[p].data for p in inputs]
            value = np.asarray(x.op.forward(*arrays, **x.params))
        tensors.append(Tensor._result(value, x, x.requires_grad))
    return tensors


def _use_key(x, consumer_key, position):
    """How the walk tells entries apart: by identity, except that an unnamed one-element
    constant (the 1 of ``1 - A``, the 1.0001 of ``y * 1.0001``) is one box per use: a number
    shared by far-apart layers would otherwise tie them together in the picture."""
    if (isinstance(x, Tensor) and not x.requires_grad and x.name is None
            and x.data.size == 1):
        return (consumer_key, position)
    return id(x)


# --- display names ----------------------------------------------------------------------------

MAX_EXPRESSION = 24  # longer expressions are replaced by the tensor's number, e.g. "t17"

_INFIX = {"add": " + ", "sub": " − ", "mul": " ∘ ", "div": " / ", "matmul": "·", "pow": "^"}


def display_names(graph: Walk) -> list:
    """(text, atomic) per tensor: the user's name, a scalar constant's value, or a short
    expression of its inputs' names (``W[1]·X``, ``log(A[2])``); ``atomic`` is False for an
    infix expression, which needs parentheses inside another one."""
    names = []
    for k, tensor in enumerate(graph.tensors):
        if tensor.name:
            names.append((str(tensor.name), True))
        elif tensor.is_leaf:
            if tensor.data.size == 1:
                names.append((f"{float(tensor.data.reshape(-1)[0]):g}", True))
            else:
                names.append((f"t{k}", True))
        else:
            text, atomic = _expression(tensor, [names[p] for p in graph.parents[k]])
            names.append((text, atomic) if len(text) <= MAX_EXPRESSION else (f"t{k}", True))
    return names


def wrap(text: str, atomic: bool) -> str:
    return text if atomic else f"({text})"


def _expression(tensor, input_names):
    op = tensor.op
    params = tensor.grad_fn.params
    inputs = [wrap(*name) for name in input_names]
    if op in _INFIX and len(inputs) == 2:
        return _INFIX[op].join(inputs), False
    if op == "pow" and "exponent" in params:
        return f"{inputs[0]}^{params['exponent']:g}", False
    if op == "neg":
        return f"−{inputs[0]}", False
    if op == "transpose" and params.get("axes") is None:
        return f"{inputs[0]}ᵀ", True
    # a function call needs no parentheses around its arguments: log(1 − A[2])
    return f"{op}({', '.join(text for text, _ in input_names)})", True


# --- the sample axis m -----------------------------------------------------------------------

SAMPLE_NAMES = ("X", "Y", "A[0]")

# Ops whose output axes line up with their inputs' axes from the right (numpy broadcasting).
_ELEMENTWISE = {"add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sigmoid", "tanh", "relu",
                "abs", "softmax", "log_softmax", "broadcast_to"}


def sample_axes(graph: Walk, samples) -> list:
    """Per tensor, a tuple of booleans: True where that axis is the sample axis m.

    ``samples`` says where m starts: "auto" (leaves named X, Y or A[0]), an int m (every leaf
    without requires_grad whose last axis has length m), tensors or names (their last axis),
    or None (no m anywhere). From there m flows through the operations structurally (matmul
    keeps the columns of its right operand, eqs 26-28; a sum over axis 1 removes it), so a
    parameter never shows m even when one of its sizes happens to equal m.
    """
    flags = []
    sources = _sources(graph, samples)
    for k, tensor in enumerate(graph.tensors):
        shape = tensor.shape
        if tensor.is_leaf:
            marked = k in sources and len(shape) >= 1 and shape[-1] > 1
            flags.append(tuple(marked and i == len(shape) - 1 for i in range(len(shape))))
        else:
            flags.append(_propagate(tensor, [graph.tensors[p] for p in graph.parents[k]],
                                    [flags[p] for p in graph.parents[k]]))
    return flags


def _sources(graph, samples):
    if samples is None:
        return set()
    if isinstance(samples, str) and samples == "auto":
        named = {k for k, t in enumerate(graph.tensors) if t.is_leaf and t.name in SAMPLE_NAMES}
        sizes = {graph.tensors[k].shape[-1] for k in named if graph.tensors[k].ndim >= 1}
        # an unnamed constant computed from the data outside the graph (1 − Y in the log-loss)
        # has the samples as its columns too; a parameter (requires_grad) never does
        return named | {k for k, t in enumerate(graph.tensors)
                        if t.is_leaf and not t.name and not t.requires_grad and t.ndim >= 1
                        and t.shape[-1] in sizes}
    if isinstance(samples, int) and not isinstance(samples, bool):
        if samples < 1:
            raise ValueError(f"draw: samples={samples} is not a number of samples m (at least 1)")
        return {k for k, t in enumerate(graph.tensors)
                if t.is_leaf and not t.requires_grad and t.ndim >= 1 and t.shape[-1] == samples}
    try:
        wanted = list(samples)
    except TypeError:
        raise TypeError(f"draw: samples must be 'auto', None, an int m, or a list of tensors or "
                        f"names, got {type(samples).__name__}") from None
    names = {w for w in wanted if isinstance(w, str)}
    ids = {id(w) for w in wanted if not isinstance(w, str)}
    return {k for k, t in enumerate(graph.tensors) if id(t) in ids or (t.name in names)}


def _propagate(tensor, inputs, input_flags):
    op = tensor.op
    params = tensor.grad_fn.params
    out_shape = tensor.shape
    result = [False] * len(out_shape)
    if op == "matmul" and len(inputs) == 2:
        (x, y), (fx, fy) = inputs, input_flags
        if x.ndim == 2 and y.ndim == 2:
            result = [fx[0], fy[1]]
        elif x.ndim == 1 and y.ndim == 2:
            result = [fy[1]]
        elif x.ndim == 2 and y.ndim == 1:
            result = [fx[0]]
    elif op in ("sum", "mean"):
        axes = params["axis"]
        if params["keepdims"]:
            result = [f and i not in axes for i, f in enumerate(input_flags[0])]
        else:
            result = [f for i, f in enumerate(input_flags[0]) if i not in axes]
    elif op == "transpose":
        axes = params["axes"]
        order = tuple(reversed(range(inputs[0].ndim))) if axes is None else tuple(a % max(inputs[0].ndim, 1) for a in axes)
        result = [input_flags[0][a] for a in order]
    elif op in _ELEMENTWISE:
        for x, fx in zip(inputs, input_flags):
            offset = len(out_shape) - x.ndim
            for i, flag in enumerate(fx):
                if flag and x.shape[i] == out_shape[offset + i]:
                    result[offset + i] = True
    else:
        # an op we know nothing about (reshape, indexing, a user's primitive): m survives only
        # where the output has exactly the shape of an input
        for x, fx in zip(inputs, input_flags):
            if x.shape == out_shape:
                result = list(fx)
                break
    if len(result) != len(out_shape):
        result = [False] * len(out_shape)
    return tuple(bool(f) and out_shape[i] > 1 for i, f in enumerate(result))

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

import re
from dataclasses import dataclass, field

import numpy as np

from .. import backend, ops
from ..core.graph import Node
from ..core.tensor import Tensor, tensor_of


@dataclass
class Walk:
    """The graph behind ``root``: ``tensors[k]`` is tensor number k (topological order),
    ``parents[k]`` the numbers of its inputs (in argument order), ``consumers[k]`` the numbers
    of the tensors computed from it (each use counted once per argument slot)."""
    tensors: list
    parents: list
    consumers: list = field(default_factory=list)
    host: list | None = None  # every tensor's values on the host, once asked for (host_values)
    grads: list | None = None  # every kept gradient on the host, once asked for (viz.model)

    @property
    def root(self) -> int:
        return len(self.tensors) - 1


def host_values(graph: Walk) -> list:
    """Every tensor's array on the host, by walk number, brought over once and kept on the
    walk: another backend's arrays are copied, a Dask graph is computed once for all of them.
    Only a view that shows values asks: a picture drawn by shape computes nothing."""
    if graph.host is None:
        graph.host = backend.to_numpy_all(tensor.data for tensor in graph.tensors)
    return graph.host


def walk(root) -> Walk:
    """Walk the graph behind ``root`` iteratively (post-order: every input before its user).

    Each operation's result appears as a Tensor made by its node (the root as the tensor
    given), with its value: the one the graph saved, or recomputed from its inputs, exactly
    (``core.graph.Node.value``), in one forward pass over the walk. A graph that backward() has
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
            value = x.op.forward(*arrays, **x.params)  # in its backend: a Dask value stays
            value = value if backend.is_foreign_array(value) else np.asarray(value)  # lazy
        tensors.append(tensor_of(x, value))
    return tensors


def _use_key(x, consumer_key, position):
    """How the walk tells entries apart: by identity, except that an unnamed one-element
    constant (the 1 of ``1 - A``, the 1.0001 of ``y * 1.0001``) is one box per use: a number
    shared by far-apart layers would otherwise tie them together in the picture."""
    if (isinstance(x, Tensor) and not x.requires_grad and x.name is None
            and x.size == 1):
        return (consumer_key, position)
    return id(x)


# --- display names ----------------------------------------------------------------------------

MAX_EXPRESSION = 40  # past this, the longest input of an expression is written "…"

_INFIX = {"add": " + ", "sub": " − ", "mul": " ∘ ", "div": " / ", "matmul": "·", "pow": "^"}

_SEED = re.compile(r"^([A-Za-z]+)\[(\d+)\]$")
ACTIVATIONS = {"sigmoid", "tanh", "relu", "softmax"}


def display_names(graph: Walk) -> list:
    """(text, atomic) per tensor: the user's name; else a name the seed's structure gives it
    (``Z[l]``, ``A[l]``, ``X``, ``Y``: see ``inferred_names``); ``m`` for a constant that divides
    by the number of X's columns (eq 76); a scalar constant's value; a
    constant equal to 1 − another leaf (``1 − Y`` of the log-loss, made outside the graph);
    else a short expression of its inputs' names (``W[1]·X``, ``Y ∘ log(A[2])``), its longest
    inputs written "…" when it would pass MAX_EXPRESSION characters. ``atomic`` is False for
    an infix expression, which needs parentheses inside another one."""
    inferred = inferred_names(graph)
    names = [None] * len(graph.tensors)
    for k, tensor in enumerate(graph.tensors):
        if tensor.name:
            names[k] = (str(tensor.name), True)
        elif k in inferred:
            names[k] = (inferred[k], True)
    m = _columns_of_x(graph, names)
    for k, tensor in enumerate(graph.tensors):
        if names[k] is not None:
            continue
        if tensor.is_leaf:
            # 1 − Y is 1 − Y even when it is one number (m = 1); a bare number is its value
            complement = _complement_of(graph, names, k) if tensor.ndim >= 1 else None
            if _divides_by_m(graph, k, m):
                names[k] = ("m", True)
            elif complement:
                names[k] = (f"1 − {complement}", False)
            elif tensor.size == 1:
                names[k] = (f"{value_of(graph, k):g}", True)
            else:
                names[k] = (f"t{k}", True)
        else:
            names[k] = _short_expression(graph, names, k)
    return names


def _columns_of_x(graph, names):
    """m as the input says it: the last axis of the leaf named X (or A[0]), eq 25."""
    for k, tensor in enumerate(graph.tensors):
        if names[k] is not None and names[k][0] in ("X", "A[0]") and tensor.is_leaf \
                and tensor.ndim >= 1:
            return tensor.shape[-1]
    return None


def _divides_by_m(graph, k, m) -> bool:
    """Whether leaf ``k`` is eq 76's m: an unnamed constant number equal to the count of X's
    columns, used only as a divisor (``.sum() / m``), so its box can say ``m = 5``."""
    tensor = graph.tensors[k]
    if m is None or tensor.requires_grad or tensor.size != 1 or not graph.consumers[k]:
        return False
    return (value_of(graph, k) == m
            and all(graph.tensors[c].op == "div" and graph.parents[c][1] == k
                    for c in graph.consumers[k]))


def _short_expression(graph, names, k):
    inputs = [names[p] for p in graph.parents[k]]
    ops = _input_ops(graph, k)
    text, atomic = _expression(graph.tensors[k], inputs, ops)
    # elide the longest inputs first: sum(…) still says what was done, t19 says nothing
    for slot in sorted(range(len(inputs)), key=lambda i: -len(inputs[i][0])):
        if len(text) <= MAX_EXPRESSION:
            break
        inputs[slot] = ("…", True)
        text, atomic = _expression(graph.tensors[k], inputs, ops)
    return (text, atomic) if len(text) <= MAX_EXPRESSION else (f"t{k}", True)


def _complement_of(graph, names, k):
    """The name of the leaf whose 1 − is this constant (the engine records nothing for
    ``1 - Y`` when Y needs no gradient, so the log-loss's 1 − Y reaches the graph as a bare
    array): an exact elementwise match with a leaf of the same shape and a name."""
    tensor = graph.tensors[k]
    where = backend.of(tensor.data)
    if tensor.requires_grad:
        return None
    for j, other in enumerate(graph.tensors):
        if (j != k and other.is_leaf and names[j] is not None and names[j][1]
                and other.shape == tensor.shape and backend.of(other.data) is where):
            if _equal(graph, k, j, where):
                return names[j][0]
    return None


def _equal(graph, k, j, where) -> bool:
    """Whether constant k holds 1 − leaf j, elementwise: on the host values when they are
    there, else in the tensors' own namespace (one flag comes to the host, not the arrays);
    a Dask graph drawn by shape by how it is made, computing nothing (``_dask_complement``)."""
    if graph.host is not None or where.is_numpy:
        return bool(np.array_equal(_host(graph, k), 1 - _host(graph, j)))
    if where.is_dask:
        return _dask_complement(graph.tensors[k].data, graph.tensors[j].data)
    xp = where.xp
    return bool(xp.all(graph.tensors[k].data == 1 - graph.tensors[j].data))


def _dask_complement(constant, leaf) -> bool:
    """Whether the Dask array ``constant`` is ``1 − leaf``, read from its recipe rather than
    its values: Dask names an array by a hash of the operation and inputs that make it, so
    ``1 − leaf`` made again, lazily, the way the engine makes it (the number in the leaf's
    dtype, then ``sub``: ``Tensor.__rsub__``) or the way Dask itself does (``1 - leaf`` or
    ``1.0 - leaf`` of the raw array), has the constant's name exactly when it is that
    constant."""
    ones = (backend.constant(1, backend.of(leaf), leaf.dtype), 1, 1.0)
    return any(ops.SUB.forward(one, leaf).name == constant.name for one in ones)


def _host(graph, k):
    return graph.host[k] if graph.host is not None else backend.to_numpy(graph.tensors[k].data)


def value_of(graph: Walk, k: int) -> float:
    """The value of tensor ``k``, one element (a constant's number, eq 76's m), as a float,
    brought to the host from any backend: the one value a picture drawn by shape reads (a Dask
    constant of one element is computed, alone, unless the values are on the host already)."""
    return float(_host(graph, k).reshape(-1)[0])


def inferred_names(graph: Walk) -> dict:
    """Names the seed's structure gives unnamed tensors, once the parameters are named W[l]
    and b[l] (README's ten-line network): ``W[l]·A + b[l]`` is Z[l] (eq 33), an activation of
    Z[l] is A[l] (eq 34), the input W[1] multiplies is X (A[0], eq 25), and the labels the
    last A[N] is compared with (in log(A[N]) ∘ Y, or A[N] − Y) are Y, and a one-number root is
    the cost J (eq 76). A name is given only
    when exactly one tensor fits it and nothing in the graph already carries it."""
    tensors = graph.tensors
    given = {str(t.name) for t in tensors if t.name}
    found = {}      # k -> name
    label = {}      # k -> name, for the names given by the user or found here

    def name_of(k):
        return str(tensors[k].name) if tensors[k].name else found.get(k)

    for k, tensor in enumerate(tensors):
        if tensor.name or tensor.is_leaf:
            continue
        parents = graph.parents[k]
        if tensor.op == "add" and len(parents) == 2:
            for product, bias in (parents, parents[::-1]):
                b = _SEED.match(name_of(bias) or "")
                if b and b.group(1) == "b" and tensors[product].op == "matmul":
                    w = _SEED.match(name_of(graph.parents[product][0]) or "")
                    if w and w.group(1) == "W" and w.group(2) == b.group(2):
                        found[k] = f"Z[{b.group(2)}]"
                        break
        elif tensor.op in ACTIVATIONS and len(parents) == 1:
            z = _SEED.match(name_of(parents[0]) or "")
            if z and z.group(1) == "Z":
                found[k] = f"A[{z.group(2)}]"
    for k, tensor in enumerate(tensors):
        if tensor.op == "matmul" and name_of(graph.parents[k][0]) == "W[1]":
            x = graph.parents[k][1]
            if not tensors[x].name and tensors[x].is_leaf and not tensors[x].requires_grad:
                found[x] = "X"
    layers_found = [int(m.group(2)) for m in (_SEED.match(name_of(k) or "") for k in range(len(tensors)))
                    if m and m.group(1) == "A"]
    if layers_found:
        output = f"A[{max(layers_found)}]"
        for k, tensor in enumerate(tensors):
            parents = graph.parents[k]
            if tensor.op not in ("mul", "sub") or len(parents) != 2:
                continue
            for y, other in (parents, parents[::-1]):
                partner = tensors[other]
                compared = (name_of(other) == output if tensor.op == "sub" else
                            partner.op == "log" and name_of(graph.parents[other][0]) == output)
                # the labels have A[N]'s shape (one column when m = 1); a number broadcast
                # against it (the 1 of 1 − A[N]) is not Y
                if (compared and tensors[y].is_leaf and not tensors[y].name
                        and not tensors[y].requires_grad and tensors[y].ndim >= 1
                        and tensors[y].shape == partner.shape):
                    found[y] = "Y"
    # the root, one number made from all of this: the cost J of eq 76
    if not tensors[-1].name and not tensors[-1].is_leaf and tensors[-1].size == 1:
        found[len(tensors) - 1] = "J"
    # a name two tensors would take, or one the user gave another tensor, is not given at all
    counts = {}
    for name in found.values():
        counts[name] = counts.get(name, 0) + 1
    return {k: name for k, name in found.items() if counts[name] == 1 and name not in given}


def definition(graph: Walk, names, k: int) -> str:
    """What made tensor ``k``, in its inputs' display names, however long: ``W[1]·X + b[1]``
    for Z[1] (eq 33), ``sigmoid(Z[1])`` for A[1] (eq 34). Empty for a leaf."""
    if graph.tensors[k].is_leaf:
        return ""
    return _expression(graph.tensors[k], [names[p] for p in graph.parents[k]],
                       _input_ops(graph, k))[0]


def local_gradients(graph: Walk, k: int, g, values) -> list:
    """The vjp of the operation that made tensor ``k``, run on arrays as ``backward()`` runs
    it: one gradient per input, given ``g`` = dJ/d(tensor k) and ``values`` (each tensor's
    array, by walk number); None for an input that needs no gradient. A gradient may come
    back in the output's broadcast shape: summing it back to the input's shape (eq 80) is
    the caller's, so a picture can show that sum as a step of its own."""
    tensor = graph.tensors[k]
    node = tensor.grad_fn
    inputs = tuple(values[p] for p in graph.parents[k])
    wants = tuple(bool(graph.tensors[p].requires_grad) for p in graph.parents[k])
    grads = node.op.vjp(g, inputs, values[k], wants, **(node.params or {}))
    return [None if not wanted or grad is None else grad for grad, wanted in zip(grads, wants)]


def wrap(text: str, atomic: bool) -> str:
    return text if atomic else f"({text})"


# How tightly an infix operation binds, so that an expression gets only the parentheses it
# needs: Y ∘ log(A[2]) + (1 − Y) ∘ log(1 − A[2]), not (Y ∘ log(A[2])) + ((1 − Y) ∘ ...).
_BINDING = {"add": 1, "sub": 1, "mul": 2, "div": 2, "matmul": 2, "neg": 3, "pow": 4}


def _input_ops(graph, k):
    """The op that made each input of tensor k, as its display name shows it (None: a name)."""
    return [None if graph.tensors[p].name else graph.tensors[p].op for p in graph.parents[k]]


def _operand(name, input_op, op, right):
    """An input's name inside the expression of ``op``, parenthesised only where needed."""
    text, atomic = name
    if atomic:
        return text
    if input_op not in _BINDING:  # a constant 1 − Y, made outside the graph: keep it whole
        return f"({text})"
    inner, outer = _BINDING[input_op], _BINDING[op]
    if inner > outer:
        return text
    if inner == outer and op != "pow":
        same = input_op == op
        if not right and (same or outer == 1):      # a − b + c, a·b·c read left to right
            return text
        if right and same and op in ("add", "mul", "matmul"):  # associative
            return text
    return f"({text})"


def _expression(tensor, input_names, input_ops):
    op = tensor.op
    params = tensor.grad_fn.params
    if op in _BINDING:
        inputs = [_operand(name, input_op, op, i > 0)
                  for i, (name, input_op) in enumerate(zip(input_names, input_ops))]
    else:
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


def sample_axes(graph: Walk, samples, names=None) -> list:
    """Per tensor, a tuple of booleans: True where that axis is the sample axis m.

    ``samples`` says where m starts: "auto" (leaves named X, Y or A[0]), an int m (every leaf
    without requires_grad whose last axis has length m), tensors or names (their last axis),
    or None (no m anywhere). From there m flows through the operations structurally (matmul
    keeps the columns of its right operand, eqs 26-28; a sum over axis 1 removes it), so a
    parameter never shows m even when one of its sizes happens to equal m.
    """
    flags = []
    sources = _sources(graph, samples, names)
    for k, tensor in enumerate(graph.tensors):
        shape = tensor.shape
        if tensor.is_leaf:
            marked = k in sources and len(shape) >= 1 and shape[-1] > 1
            flags.append(tuple(marked and i == len(shape) - 1 for i in range(len(shape))))
        else:
            flags.append(_propagate(tensor, [graph.tensors[p] for p in graph.parents[k]],
                                    [flags[p] for p in graph.parents[k]]))
    return flags


def _sources(graph, samples, names=None):
    if samples is None:
        return set()
    if isinstance(samples, str) and samples == "auto":
        # the user's names, or those the structure gives (X, Y: inferred_names)
        shown = ([t.name for t in graph.tensors] if names is None else
                 [t.name or names[k][0] for k, t in enumerate(graph.tensors)])
        named = {k for k, t in enumerate(graph.tensors) if t.is_leaf and shown[k] in SAMPLE_NAMES}
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


# --- the seed's network in the graph ------------------------------------------------------------

def output_layer(names) -> int | None:
    """N, the seed's output layer: the largest l of the names W[l], b[l], Z[l], A[l] shown
    (given or inferred), or None when the graph has none of them."""
    layers = [int(match.group(2)) for match in (_SEED.match(text) for text, _ in names)
              if match and match.group(1) in ("W", "b", "Z", "A") and int(match.group(2)) >= 1]
    return max(layers, default=None)


def sample_count(graph: Walk, names, flags) -> int | None:
    """m: the length of the sample axis (samples are columns, eq 25), from the flags of
    ``sample_axes``, else from the last axis of the input X (or A[0]), which is 1 when the
    graph holds one sample (the flags mark no axis of length 1). None when unknown."""
    for tensor, flag in zip(graph.tensors, flags):
        for axis, is_sample in enumerate(flag):
            if is_sample:
                return int(tensor.shape[axis])
    for k, tensor in enumerate(graph.tensors):
        if names[k][0] in ("X", "A[0]") and tensor.is_leaf and tensor.ndim >= 1:
            return int(tensor.shape[-1])
    return None

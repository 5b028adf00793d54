"""The graph: a recorded operation is a ``Node`` apart from the tensor it made.

A ``Node`` (PyTorch's ``grad_fn``, DeZero's ``Function``) holds its primitive, its parameters,
its parents (the nodes that made its inputs, or the inputs themselves when they are leaves) and
only the arrays its vjp reads. The ``Tensor`` a user holds is its value plus its node
(``tensor.grad_fn``). So an intermediate array lives exactly as long as someone holds its
tensor or a backward rule saved it, by ordinary reference counting: ``Z = W @ A + b;
A = Z.sigmoid()`` lets Z's array go when Z is rebound, because sigmoid's rule (eq 8) reads only
its output A.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .modes import current_scope


class Node:
    """One recorded operation: how a tensor was made.

    - ``op``, ``params``: the primitive and its parameters (``axis=1``, ...);
    - ``parents``: per input, the ``Node`` that made it, or the input ``Tensor`` itself when it
      is a leaf (a parameter W[l], the data X, a constant);
    - ``saved_inputs``, ``saved_output``: the arrays the vjp reads, as the primitive declares
      (``vjp_reads_inputs``, ``vjp_reads_output``), else None;
    - ``shape``, ``dtype``, ``requires_grad``: of the output, kept when its array is not;
    - ``name``, ``scope``: the output's name (``"Z[1]"``) and name scope, kept on the node so
      pictures know them after the tensor object is gone;
    - ``retains_grad``, ``grad``: ``retain_grad()`` asks backward to keep dJ/d(output) here.

    ``value()`` gives the output's array whether or not it was saved (``core.tensor.tensor_of``
    a Tensor for it), so a learner can always walk the graph and read every value.
    """

    __slots__ = ("op", "params", "parents", "saved_inputs", "saved_output", "shape", "dtype",
                 "requires_grad", "name", "scope", "retains_grad", "grad", "freed",
                 "__weakref__")

    def __init__(self, op, params, inputs, output, requires_grad):
        self.op = op
        self.params = params
        self.parents = tuple([t.grad_fn or t for t in inputs])
        self.saved_inputs = tuple([t.data for t in inputs]) if op.vjp_reads_inputs else None
        self.saved_output = output if op.vjp_reads_output else None
        self.shape = output.shape
        self.dtype = output.dtype
        self.requires_grad = requires_grad
        self.name = None
        self.scope = current_scope()
        self.retains_grad = False
        self.grad = None
        self.freed = False

    def value(self):
        """The output's array: the saved one, or recomputed exactly from the parents (the same
        forward on the same arrays; a parameter changed in place since the forward pass gives
        the new value). Iterative, so a long chain never hits the recursion limit."""
        if self.saved_output is not None:
            return self.saved_output
        values = {}
        stack = [self]
        while stack:
            node = stack[-1]
            if node in values:
                stack.pop()
                continue
            if node.saved_inputs is not None:  # the very arrays the forward pass read
                arrays = node.saved_inputs
            else:
                missing = [p for p in node.parents
                           if isinstance(p, Node) and p.saved_output is None and p not in values]
                if missing:
                    stack.extend(missing)
                    continue
                arrays = [values[p] if p in values else _known_value(p) for p in node.parents]
            values[node] = _array(node.op.forward(*arrays, **node.params))
            stack.pop()
        return values[self]

    def free(self):
        """Forget the saved arrays once backward has used them (the graph's shape stays, so the
        graph can still be walked and drawn; values are then recomputed)."""
        self.saved_inputs = self.saved_output = None
        self.freed = True

    def __repr__(self):
        label = f" {self.name!r}" if self.name else ""
        return f"<node {self.op.name}{label} {self.shape}{' (freed)' if self.freed else ''}>"


def _array(value):
    """A forward's output as an array: numpy turns a 0-d result into a scalar; another
    backend's array stays as it is."""
    return value if backend.is_foreign_array(value) else np.asarray(value)


def _known_value(parent):
    return parent.data if not isinstance(parent, Node) else parent.saved_output


def topological_order(*roots) -> list:
    """Every node and leaf behind ``roots`` (Nodes or leaf Tensors), each after its parents:
    an iterative depth-first post-order, so a long chain never hits the recursion limit.
    For pictures and ``ag.compile``; backward itself needs only the consumer counts."""
    order, seen = [], set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        x, expanded = stack.pop()
        if x in seen:
            continue
        if expanded or not isinstance(x, Node):
            seen.add(x)
            order.append(x)
            continue
        stack.append((x, True))
        stack.extend((p, False) for p in reversed(x.parents) if p not in seen)
    return order


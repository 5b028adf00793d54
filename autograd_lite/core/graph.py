"""The graph: a recorded operation is a ``Node`` apart from the tensor it made.

A ``Node`` (PyTorch's ``grad_fn``, DeZero's ``Function``) holds its primitive, its parameters,
its parents (the nodes that made its inputs, or the inputs themselves when they are leaves) and
only the arrays its vjp reads. The ``Tensor`` a user holds is its value plus its node
(``tensor.grad_fn``). So an intermediate array lives exactly as long as someone holds its
tensor or a backward rule saved it, by ordinary reference counting: ``Z = W @ A + b;
A = Z.sigmoid()`` lets Z's array go when Z is rebound, because sigmoid's rule (eq 8) reads only
its output A.

An array the user holds is read-only while a node saved it, until backward has used it
(``hold``, ``release``): a write into it (``W.data[...] = 0``, ``W.data *= 10``, a numpy
``out=``) would change what the vjp reads and give a wrong gradient, so numpy refuses it. The
lock is on the array's memory (its root base), so a view saved for ``x @ W.T`` locks W's
array too.
"""
from __future__ import annotations

import weakref

import numpy as np

from .. import backend


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
                 "requires_grad", "name", "scope", "retains_grad", "grad", "freed", "__weakref__")

    def __init__(self, op, params, inputs, arrays, output, requires_grad, scope):
        self.name, self.grad, self.retains_grad, self.freed = None, None, False, False
        self.op, self.params, self.scope = op, params, scope
        self.parents = tuple([t.grad_fn or t for t in inputs])
        self.saved_inputs = hold(self, inputs, arrays) if op.vjp_reads_inputs else None
        self.saved_output = output if op.vjp_reads_output else None
        self.shape, self.dtype, self.requires_grad = output.shape, output.dtype, requires_grad

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
        graph can still be walked and drawn; values are then recomputed). ``release``, after
        the backward pass, makes the arrays no live node holds writable again."""
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
    return parent._data if not isinstance(parent, Node) else parent.saved_output


# --- arrays a user can write into are read-only while a live node saves them ----------------
# Only an array handed to the user can be written into behind the engine's back: ``.data``
# (``np.asarray(t)``, ``t.numpy()``) hands one out, and ``t.data = array`` takes one the user
# holds (``hand_out``). The tensor remembers it (``t._handed_out``), and so does this module,
# for the views of that memory other tensors hold (``x @ W.T`` saves a view of W's array).
# ``_handed``: id(root array) -> a weak reference to it, for each root handed out.
# ``locked``: id(root array) -> [a weak reference to the root, whether it was writable, then a
# weak reference to each node holding it], for each array a live node holds read-only. Weak,
# so an array or a graph dropped holds nothing: ``release`` (after each backward, and when
# ``.data`` is read) makes the array writable again.
_handed: dict = {}
locked: dict = {}


def hand_out(array):
    """Note that the user may keep ``array``, or a view of its memory, from now on."""
    root = array if array.base is None else _root(array)
    if not handed_out(root):
        if len(_handed) >= _sweep.at:
            _sweep()
        _handed[id(root)] = weakref.ref(root)


def handed_out(array) -> bool:
    """Whether ``array``'s memory was handed to the user (``hand_out``)."""
    root = array if array.base is None else _root(array)
    return id(root) in _handed and _handed[id(root)]() is root


def hold(node, inputs, arrays) -> tuple:
    """The arrays of ``inputs`` the forward pass read (``arrays``), for ``node`` to save. Those
    whose memory was handed to the user (a leaf's ``W.data``, a view of it such as ``W.T``) are
    read-only while ``node`` is alive and not freed, since a write would change what the vjp
    reads; the rest only the engine can reach (``ag.Tensor`` copies the array it is given, and
    a result's ``.data`` is a read-only view while its node lives). Another backend's array
    has no read-only flag: a leaf replaced since is still refused by backward."""
    for t in inputs:
        if t._handed_out or type(t._data) is np.ndarray and t._data.base is not None \
                and handed_out(t._data):  # a view of memory handed out through another tensor
            _lock(t._data, node)
    return tuple(arrays)


def _lock(array, node):
    """``array``'s memory read-only while ``node`` holds it."""
    root = array if array.base is None else _root(array)
    entry = locked.get(id(root))
    if entry is None or entry[0]() is not root:  # held by none (or a gone array's id)
        if len(locked) >= _sweep.at:  # forward passes without backward: forget the gone
            _sweep()
        entry = locked[id(root)] = [weakref.ref(root), root.flags.writeable]
        root.setflags(False)  # write=False: numpy reads a keyword several times slower
    elif len(entry) > 64:  # forward passes without backward: forget their dead nodes
        entry[2:] = [ref for ref in entry[2:] if ref() is not None and not ref().freed]
    entry.append(weakref.ref(node))


def _root(array):
    """The array that owns ``array``'s memory (the base its view was taken of)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def release(array=None, kept=None):
    """Make ``array`` (None: every held array) writable again if no live node that has not been
    freed holds it.

    ``kept``, after a backward pass: the nodes it went through (still held if the graph was
    retained). Any other live graph is one the user built and may never backpropagate (an
    output kept for printing): it gets its own copies of the arrays it holds, so it stops
    blocking the update of eqs 74-75, and still backpropagates through the values its forward
    pass saw (a leaf changed since is refused then, by value)."""
    for key in list(locked) if array is None else [id(_root(array))]:
        entry = locked.get(key, [None, False])
        live = [ref() for ref in entry[2:] if ref() is not None and not ref().freed]
        if live and kept is not None and any([node not in kept for node in live]):
            live = [node for node in live if node in kept or _copy_saved(node, entry[0]())]
        if not live and locked.pop(key, None) and entry[1] and entry[0]() is not None:
            entry[0]().setflags(True)  # write=True


def _sweep():
    """Forget the arrays that are gone and release what no live node holds, so the tables stay
    as small as what is alive even when backward never runs (evaluation in grad mode); the
    next sweep waits for them to double."""
    for key in [key for key, ref in _handed.items() if ref() is None]:
        del _handed[key]
    release()
    _sweep.at = max(1024, 2 * len(_handed), 2 * len(locked))


_sweep.at = 1024


def _copy_saved(node, root) -> bool:
    """Give ``node`` its own copies of the arrays it saved from ``root``'s memory; False."""
    def own(array):
        return array.copy() if isinstance(array, np.ndarray) and _root(array) is root else array
    node.saved_output = own(node.saved_output)
    if node.saved_inputs is not None:
        node.saved_inputs = tuple([own(array) for array in node.saved_inputs])
    return False


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


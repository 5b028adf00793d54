"""The one reverse-mode traversal, and un-broadcasting (eq 80) in one place for every op.

Every gradient, for every graph, comes from ``backpropagate``: count each node's consumers,
start at the root, and whenever a node's gradient is complete call its vjp, un-broadcast each
input's gradient with ``sum_to_shape`` (eq 80, the only place that does it) and add it to
what that input has received. ``Tensor.backward`` and ``ag.grad`` are two uses of that one loop.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import backend
from ..errors import GraphFreedError
from .graph import Node, release
from .hooks import backward_hooks  # noqa: F401 - registered here
from .modes import per_thread


def sum_to_shape(grad, shape, op_name):
    """Sum ``grad`` over the axes that broadcasting repeated, so it has ``shape``.

    This is eq 80 in general: a bias column b (n, 1) added to every column of Z (n, m) gets
    db = sum(dZ, axis=1) (the seed's 1/m is already inside dZ when the loss is a mean). Works
    for ndarrays and Tensors alike. A gradient whose shape cannot come from broadcasting
    ``shape`` is a bug in that op's vjp: it is refused, with both shapes.
    """
    if grad.shape == shape:
        return grad
    axes = unbroadcast_axes(shape, grad.shape, op_name)
    if isinstance(grad, np.ndarray):  # numpy's sum itself, without ndarray.sum's Python wrapper
        return np.add.reduce(grad, axes, keepdims=True).reshape(shape)
    if backend.is_foreign_array(grad):  # another backend's array: no methods there
        xp = backend.namespace(grad)
        return xp.reshape(xp.sum(grad, axis=axes, keepdims=True), shape)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def unbroadcast_axes(input_shape, output_shape, op_name="unbroadcast_axes") -> tuple:
    """The axes of ``output_shape`` that broadcasting ``input_shape`` repeated (e.g. ``(1,)``
    for a bias b (n, 1) added to Z (n, m): eq 80): the axes it added on the left (None in
    ``padded``), and each axis where the input has length 1 and the output does not."""
    return _unbroadcast_axes(tuple(input_shape), tuple(output_shape), op_name)


@functools.lru_cache(maxsize=4096)  # a network meets the same few pairs of shapes at every step
def _unbroadcast_axes(input_shape, output_shape, op_name):
    padded = (None,) * (len(output_shape) - len(input_shape)) + input_shape
    if len(padded) == len(output_shape) and all(n in (None, 1, m) for n, m in zip(padded, output_shape)):
        return tuple(axis for axis, (n, m) in enumerate(zip(padded, output_shape)) if n != m)
    raise RuntimeError(
        f"{op_name}: its vjp returned a gradient of shape {output_shape} for an input of shape "
        f"{input_shape}; a vjp must return the input's shape (or one that broadcasts from it)")


# --- the traversal --------------------------------------------------------------------------

_NDARRAYS = (np.ndarray, np.generic)  # numpy's arrays and its numbers

def backpropagate(root, root_grad, *, keep_graph=False, as_tensor=None):
    """Reverse mode from the node ``root`` seeded with ``root_grad`` (= dJ/droot).

    Yields ``(x, dJ/dx)`` for every node and leaf tensor ``x`` behind ``root`` that needs a
    gradient, each once its gradient is complete (all its consumers have run), consumers
    first. What to do with them is the caller's: ``Tensor.backward`` adds the leaves' into
    ``.grad``, ``ag.grad`` picks out the ones asked for. A gradient is None where no path
    carried one. ``as_tensor(node, array)``, given, makes a Tensor of a node's value: the vjps
    then run on Tensors, so the gradients are recorded and can be differentiated again (higher
    order). Unless it or ``keep_graph`` is set, each node's saved arrays are freed as soon as
    its vjp has run.
    """
    consumers = count_consumers(root)
    grads = {root: root_grad}
    ready, observers = [root], per_thread.modes.backward  # this thread's observers (core.hooks)
    while ready:
        x = ready.pop()
        grad = grads.pop(x, None)
        yield x, grad
        if type(x) is not Node:  # (Node has no subclasses; a failed isinstance costs more)
            continue  # a leaf: nothing behind it
        input_grads = run_vjp(x, grad, as_tensor, observers)
        if not (keep_graph or as_tensor):
            x.free()
        for parent, parent_grad in zip(x.parents, input_grads):
            if not parent.requires_grad:
                continue
            if parent_grad is not None:
                if parent_grad.shape != parent.shape:  # eq 80: summed over what was broadcast
                    parent_grad = sum_to_shape(parent_grad, parent.shape, x.op.name)
                if parent_grad.dtype is not parent.dtype and isinstance(parent_grad, _NDARRAYS) \
                        and parent_grad.dtype != parent.dtype:  # (a usual dtype is one object)
                    parent_grad = parent_grad.astype(parent.dtype)  # dJ/dx has x's dtype
                grads[parent] = grads[parent] + parent_grad if parent in grads else parent_grad
            consumers[parent] -= 1
            if consumers[parent] == 0:
                ready.append(parent)
    release(kept=consumers)  # the arrays this pass freed are writable again, for eqs 74-75


def count_consumers(root) -> dict:
    """For each node and leaf behind ``root`` that needs a gradient, how many times an op uses
    it: its gradient is complete once that many contributions have arrived. Refuses a graph an
    earlier backward freed, before any work."""
    consumers = {root: 0}
    nodes = [root] if type(root) is Node else []
    while nodes:
        x = nodes.pop()
        if x.freed or (x.saved_inputs is not None and _changed_leaf(x) is not None):
            raise _unusable(x)
        for parent in x.parents:
            if parent.requires_grad:
                if parent not in consumers and type(parent) is Node:
                    nodes.append(parent)
                consumers[parent] = consumers.get(parent, 0) + 1
    return consumers


def _changed_leaf(node):
    """A leaf input of ``node`` whose values changed since the node saved them (an in-place
    operator or ``.data = ...`` replaced its array; a graph another backward made let go of
    its arrays kept copies), or None."""
    for parent, saved in zip(node.parents, node.saved_inputs):
        if type(parent) is not Node and parent._data is not saved and _differ(parent._data, saved):
            return parent  # a leaf whose array is not the very one saved, with other values
    return None


def _differ(current, saved) -> bool:
    return type(saved) is not np.ndarray or not np.array_equal(current, saved, equal_nan=True)


def _unusable(node):
    """The error for a graph backward cannot use: freed, or a leaf changed since it was saved."""
    if node.freed:
        return GraphFreedError(
            f"backward: the graph behind {_describe(node)} was freed by an earlier backward(). "
            f"Pass retain_graph=True to the first backward() to backpropagate through the "
            f"same graph again, or run the forward pass again.")
    leaf = _changed_leaf(node)
    name = repr(leaf.name) if leaf.name else f"a leaf of shape {leaf.shape}"
    return RuntimeError(
        f"backward: {name} was changed in place after the forward pass that saved it (its "
        f"version is now {leaf.version}), and {_describe(node)} needs the values it had then "
        f"for its gradient. Run the forward pass again after changing it, or change it after "
        f"backward() (eqs 74-75: backward, then the update)")


def run_vjp(node, grad, as_tensor=None, observers=()):
    """One gradient per parent from ``node``'s vjp, given ``grad`` = dJ/d(its output); None for
    a parent that needs none. With ``as_tensor`` the saved arrays go in as Tensors made by
    their nodes, so the vjp records new nodes. ``observers`` (this thread's ``backward_hooks``)
    see each call."""
    wants = tuple([parent.requires_grad for parent in node.parents])
    if grad is None:
        return (None,) * len(wants)
    inputs, output = (node.saved_inputs, node.saved_output) if as_tensor is None else \
        _saved_as_tensors(node, as_tensor)
    input_grads = node.op.vjp(grad, inputs, output, wants, **node.params)
    for hook in observers:
        hook(node, input_grads)
    return input_grads


def _saved_as_tensors(node, as_tensor):
    """``node``'s saved arrays as Tensors made by their nodes (a leaf's is the leaf itself)."""
    inputs, output = node.saved_inputs, node.saved_output
    if inputs is not None:
        inputs = tuple(p if type(p) is not Node else as_tensor(p, array)
                       for p, array in zip(node.parents, inputs))
    return inputs, (None if output is None else as_tensor(node, output))


def _describe(node) -> str:
    return f"{node.name!r} (made by {node.op.name})" if node.name else f"a {node.op.name} result"


def accumulated(previous, grad, dtype):
    """``previous + grad`` as a new ndarray of ``dtype``: the first gradient is copied, so a
    ``.grad`` never shares memory with an array the engine or another ``.grad`` holds (add's
    vjp hands the same g to both inputs), and later ones are added out of place, so a ``.grad``
    the user kept is never changed behind their back."""
    if isinstance(grad, np.ndarray) or backend.of(grad).is_numpy:  # the first one copied
        return np.array(grad, dtype) if previous is None else np.asarray(previous + grad, dtype=dtype)
    where = backend.of(grad)
    return backend.copied(grad if previous is None else previous + grad, where, dtype)

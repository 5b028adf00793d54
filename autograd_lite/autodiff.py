"""The engine: graph nodes, grad mode, un-broadcasting, and the one reverse-mode traversal.

A recorded operation is a ``Node`` (PyTorch's ``grad_fn``, DeZero's ``Function``): its
primitive, its parameters, its parents (the nodes that made its inputs, or the inputs
themselves when they are leaves) and only the arrays its vjp reads. The ``Tensor`` a user holds
is its value plus its node (``tensor.grad_fn``). So an intermediate array lives exactly as long
as someone holds its tensor or a backward rule saved it, by ordinary reference counting:
``Z = W @ A + b; A = Z.sigmoid()`` lets Z's array go when Z is rebound, because sigmoid's rule
(eq 8) reads only its output A.

Every gradient, for every graph, comes from ``backpropagate``: count each node's consumers,
start at the root, and whenever a node's gradient is complete call its vjp, un-broadcast each
input's gradient with ``sum_to_shape`` (eq 80, the only place that does it) and add it to
what that input has received. ``Tensor.backward`` and ``ag.grad`` are two uses of that one loop.

This module never creates a Tensor except through ``Node.tensor``; it sits below ``tensor``.
"""
from __future__ import annotations

import functools
import inspect
import threading

import numpy as np

from .errors import GraphFreedError


# --- the graph --------------------------------------------------------------------------------

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

    ``value()`` gives the output's array whether or not it was saved, and ``tensor()`` a Tensor
    for it, so a learner can always walk the graph and read every value.
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
        self.scope = _scope_state.stack
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
            values[node] = np.asarray(node.op.forward(*arrays, **node.params))
            stack.pop()
        return values[self]

    def tensor(self, data=None):
        """A Tensor for this node's output (``data``, or ``value()``), made by this node, so
        gradients can flow through it again (higher order)."""
        from .tensor import Tensor
        return Tensor._result(self.value() if data is None else data, self, self.requires_grad)

    def free(self):
        """Forget the saved arrays once backward has used them (the graph's shape stays, so the
        graph can still be walked and drawn; values are then recomputed)."""
        self.saved_inputs = self.saved_output = None
        self.freed = True

    def __repr__(self):
        label = f" {self.name!r}" if self.name else ""
        return f"<node {self.op.name}{label} {self.shape}{' (freed)' if self.freed else ''}>"


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


# --- grad mode ------------------------------------------------------------------------------
# Per thread, as in PyTorch: `no_grad()` in one thread never stops another from recording.

class _GradMode(threading.local):
    enabled = True
    # True only while ag.compile traces a step: an op on constants then records its node too
    # (its result still needs no gradient), so the trace sees every op of the step.
    record_constants = False


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True when operations are recorded in this thread (the default)."""
    return _grad_mode.enabled


class _GradModeContext:
    """Context manager and decorator that sets this thread's grad mode, restoring it after.

    Three spellings, as in PyTorch 2: ``with ag.no_grad():``, ``@ag.no_grad()`` and
    ``@ag.no_grad``. A decorated function sets the mode on every call, and restores the previous
    mode when it returns or raises. A decorated generator or ``async def`` function has the mode
    set around each resumption (each ``next``/``send``/``await`` step), as PyTorch does, so code
    between two resumptions keeps its own mode.
    """

    enabled = True

    def __new__(cls, function=None):
        # `@ag.no_grad` without parentheses calls the class with the function itself.
        if function is None:
            return super().__new__(cls)
        if not callable(function):
            raise TypeError(f"{cls.__name__}() takes a function to decorate or nothing, "
                            f"got {type(function).__name__} {function!r}")
        return cls()(function)

    def __enter__(self):
        self._previous = is_grad_enabled()
        _grad_mode.enabled = self.enabled
        return self

    def __exit__(self, *exc_info):
        _grad_mode.enabled = self._previous
        return False

    def __call__(self, function):
        mode = type(self)
        if inspect.isgeneratorfunction(function):
            @functools.wraps(function)
            def generator(*args, **kwargs):
                inner = function(*args, **kwargs)
                to_send = None
                while True:
                    try:
                        with mode():
                            item = inner.send(to_send)
                    except StopIteration as stop:
                        return stop.value
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        inner.close()
                        raise
                    except BaseException as error:  # thrown in: pass it on under the mode
                        with mode():
                            try:
                                item = inner.throw(error)
                            except StopIteration as stop:
                                return stop.value
                        to_send = yield item
            return generator
        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def coroutine(*args, **kwargs):
                return await _ModeAwaitable(function(*args, **kwargs), mode)
            return coroutine
        if inspect.isasyncgenfunction(function):
            raise TypeError(f"{mode.__name__}: cannot decorate the async generator "
                            f"{function.__qualname__}; use `with ag.{mode.__name__}():` inside it")

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with mode():  # a fresh context per call: `_previous` is never shared
                return function(*args, **kwargs)
        return wrapper


class _ModeAwaitable:
    """Runs a coroutine with the grad mode set around each of its steps."""

    def __init__(self, coroutine, mode):
        self.coroutine, self.mode = coroutine, mode

    def __await__(self):
        to_send, error = None, None
        while True:
            with self.mode():
                try:
                    step = (self.coroutine.throw(error) if error is not None
                            else self.coroutine.send(to_send))
                except StopIteration as stop:
                    return stop.value
            to_send, error = None, None
            try:
                to_send = yield step
            except BaseException as thrown:  # noqa: B036 - passed on to the coroutine
                error = thrown


class no_grad(_GradModeContext):
    """``with ag.no_grad(): ...`` records nothing (evaluation, parameter updates, eq 74).

    It applies to the current thread only. Also a decorator, with or without parentheses.
    """

    enabled = False


class enable_grad(_GradModeContext):
    """Turns recording back on inside a ``no_grad`` block (used by ``ag.grad``). Per thread;
    also a decorator."""

    enabled = True


# --- name scopes ------------------------------------------------------------------------------
# Tensors made inside `with ag.name_scope("layer 1"):` remember the scope, so pictures can group
# them (viz) and reports can say where a tensor lives. Per thread, like grad mode.

class _ScopeState(threading.local):
    stack = ()


_scope_state = _ScopeState()


def current_scope():
    """The innermost active name scope of this thread as a tuple of names, e.g. ('layer 1',)."""
    return _scope_state.stack


class name_scope:
    """``with ag.name_scope("layer 1"): ...``: tensors made inside belong to that scope.

    Scopes nest (``('model', 'layer 1')``). They change no value and no gradient.
    """

    def __init__(self, name: str):
        if not isinstance(name, str) or not name:
            raise ValueError(f"name_scope: the name must be a non-empty string, got {name!r}")
        self.name = name

    def __enter__(self):
        self._previous = current_scope()
        _scope_state.stack = self._previous + (self.name,)
        return self

    def __exit__(self, *exc_info):
        _scope_state.stack = self._previous
        return False


# --- un-broadcasting: the one place for every op ---------------------------------------------

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
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def unbroadcast_axes(input_shape, output_shape, op_name="unbroadcast_axes") -> tuple:
    """The axes of ``output_shape`` that broadcasting ``input_shape`` repeated (e.g. ``(1,)``
    for a bias b (n, 1) added to Z (n, m): eq 80): the leading axes it added, and each axis
    where the input has length 1 and the output does not."""
    input_shape, output_shape = tuple(input_shape), tuple(output_shape)
    extra = len(output_shape) - len(input_shape)
    if extra >= 0 and all(n in (1, m) for n, m in zip(input_shape, output_shape[extra:])):
        return tuple(range(extra)) + tuple(
            extra + i for i, n in enumerate(input_shape) if n == 1 and output_shape[extra + i] != 1)
    raise RuntimeError(
        f"{op_name}: its vjp returned a gradient of shape {output_shape} for an input of shape "
        f"{input_shape}; a vjp must return the input's shape (or one that broadcasts from it)")


# --- the traversal --------------------------------------------------------------------------

def backpropagate(root, root_grad, *, keep_graph=False, create_graph=False):
    """Reverse mode from the node ``root`` seeded with ``root_grad`` (= dJ/droot).

    Yields ``(x, dJ/dx)`` for every node and leaf tensor ``x`` behind ``root`` that needs a
    gradient, each once its gradient is complete (all its consumers have run), consumers
    first. What to do with them is the caller's: ``Tensor.backward`` adds the leaves' into
    ``.grad``, ``ag.grad`` picks out the ones asked for. A gradient is None where no path
    carried one. ``create_graph`` runs the vjps on Tensors, so the gradients are recorded and
    can be differentiated again; unless it or ``keep_graph`` is set, each node's saved arrays
    are freed as soon as its vjp has run.
    """
    consumers = count_consumers(root)
    grads = {root: root_grad}
    ready = [root]
    while ready:
        x = ready.pop()
        grad = grads.pop(x, None)
        yield x, grad
        if not isinstance(x, Node):
            continue  # a leaf: nothing behind it
        input_grads = run_vjp(x, grad, create_graph)
        if not (keep_graph or create_graph):
            x.free()
        for parent, parent_grad in zip(x.parents, input_grads):
            if not parent.requires_grad:
                continue
            if parent_grad is not None:
                parent_grad = sum_to_shape(parent_grad, parent.shape, x.op.name)
                if parent in grads:  # a shared subexpression: its gradients add up
                    parent_grad = grads[parent] + parent_grad
                grads[parent] = parent_grad
            consumers[parent] -= 1
            if consumers[parent] == 0:
                ready.append(parent)


def count_consumers(root) -> dict:
    """For each node and leaf behind ``root`` that needs a gradient, how many times an op uses
    it: its gradient is complete once that many contributions have arrived. Refuses a graph an
    earlier backward freed, before any work."""
    consumers = {root: 0}
    stack = [root]
    while stack:
        x = stack.pop()
        if not isinstance(x, Node):
            continue
        if x.freed:
            raise GraphFreedError(
                f"backward: the graph behind {_describe(x)} was freed by an earlier backward(). "
                f"Pass retain_graph=True to the first backward() to backpropagate through the "
                f"same graph again, or run the forward pass again.")
        for parent in x.parents:
            if parent.requires_grad:
                if parent not in consumers:
                    consumers[parent] = 0
                    stack.append(parent)
                consumers[parent] += 1
    return consumers


def run_vjp(node, grad, create_graph=False):
    """One gradient per parent from ``node``'s vjp, given ``grad`` = dJ/d(its output); None for
    a parent that needs none. With ``create_graph`` the saved arrays go in as Tensors made by
    their nodes, so the vjp records new nodes. Observers in ``backward_hooks`` see each call."""
    wants = tuple([parent.requires_grad for parent in node.parents])
    if grad is None:
        return (None,) * len(wants)
    inputs, output = node.saved_inputs, node.saved_output
    if create_graph:
        if inputs is not None:
            inputs = tuple(p if not isinstance(p, Node) else p.tensor(array)
                           for p, array in zip(node.parents, inputs))
        if output is not None:
            output = node.tensor(output)
    input_grads = node.op.vjp(grad, inputs, output, wants, **node.params)
    for hook in backward_hooks:
        hook(node, input_grads)
    return input_grads


# Observers such as the NaN sentinel (autograd_lite.check): each is called as
# hook(node, input_grads) after every vjp in backward. Empty by default.
backward_hooks: list = []


def _describe(node) -> str:
    return f"{node.name!r} (made by {node.op.name})" if node.name else f"a {node.op.name} result"

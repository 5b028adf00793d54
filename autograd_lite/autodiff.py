"""The engine: graph nodes, grad mode, un-broadcasting, and the one reverse-mode traversal.

Every gradient in autograd_lite, for every graph, comes from ``backpropagate`` below: it orders
the graph topologically without recursion, calls each primitive's vjp once, sums gradients of
shared subexpressions, un-broadcasts each gradient to its input's shape (``sum_to_shape``, the
only place that does it), and frees the graph as it goes unless asked to keep it.

This module works on anything shaped like a Tensor (``data``, ``grad``, ``requires_grad``,
``_op``, ``_input0``/``_input1``/``_inputs``, ``_params``, ``_retains_grad``, ``name``); it
never creates one, so it sits below ``tensor``.
"""
from __future__ import annotations

import sys
import threading
from types import MappingProxyType

import numpy as np

from .errors import GraphFreedError, ReleasedValueError
from .release import release_waiting


def inputs_of(tensor) -> tuple:
    """The tensors ``tensor``'s op was applied to, in argument order; () for a leaf or once
    backward has freed the node.

    NOTE: a one- or two-input op (nearly all) keeps its inputs in the tensor's own fields
    ``_input0`` and ``_input1``; only other ops keep the tuple ``_inputs``. A tuple per op
    would be one more object for Python's cyclic garbage collector to walk again and again
    while a large graph is alive (about 0.2 us per op on a 100,000-op chain), and 64 bytes.
    """
    first = tensor._input0
    if first is None:
        inputs = tensor._inputs
        return () if inputs is None else inputs
    second = tensor._input1
    return (first,) if second is None else (first, second)


def is_freed(tensor) -> bool:
    """True for a recorded tensor whose node backward has used and freed (for a leaf too)."""
    return tensor._input0 is None and tensor._inputs is None


class Node:
    """How a tensor was made: the primitive ``op``, its ``inputs`` (tensors) and ``params``.

    A read-only view that ``tensor._node`` returns (None for a leaf). The fields themselves live
    on the tensor (``_op``, ``_input0``/``_input1`` or ``_inputs``, see ``inputs_of``,
    ``_params``): NOTE: one object fewer per recorded op than a separate node, which is one
    object fewer for Python's cyclic garbage collector to walk again and again while a large
    graph is alive (about 0.6 us per op on a 100,000-op chain), and one allocation fewer when
    recording.

    ``inputs`` is emptied once backward has used the node (unless ``retain_graph=True``), which
    releases the inputs' arrays; ``freed`` then makes a second backward fail clearly.
    """

    __slots__ = ("_tensor",)

    def __init__(self, tensor):
        self._tensor = tensor

    @property
    def op(self):
        return self._tensor._op

    @property
    def inputs(self) -> tuple:
        return inputs_of(self._tensor)

    @property
    def params(self):
        params = self._tensor._params
        return NO_PARAMS if params is None else params

    @property
    def freed(self) -> bool:
        return is_freed(self._tensor)

    def __repr__(self):
        return f"<node {self.op.name}{' (freed)' if self.freed else ''}>"


# The parameters of an op recorded without any (most of them): stored as None on the tensor,
# read through Node.params as this shared read-only empty mapping.
NO_PARAMS = MappingProxyType({})


# --- grad mode ------------------------------------------------------------------------------
# NOTE: per thread, as in PyTorch: `no_grad()` in one thread never stops another thread from
# recording its own graph.

class _GradMode(threading.local):
    # NOTE: the default as a class attribute makes every read a plain attribute lookup
    # (about 40 ns); getattr(local, "enabled", True) on a thread that never set it goes
    # through AttributeError and costs about 380 ns, on every recorded op.
    enabled = True
    # True only while an ag.compile tape traces a step: an op on constants then records its
    # node as well (its result still does not require a gradient), so that the tape can
    # replay it with the next call's values instead of baking in this call's result.
    record_constants = False


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True when operations are recorded in this thread (the default)."""
    return _grad_mode.enabled


class _GradModeContext:
    """Context manager and decorator that sets this thread's grad mode, restoring it after.

    Three spellings, as in PyTorch 2: ``with ag.no_grad():``, ``@ag.no_grad()`` and
    ``@ag.no_grad``. A decorated function sets the mode of the thread that calls it, on every
    call, and restores the previous mode when it returns or raises.
    """

    enabled = True

    def __new__(cls, function=None):
        # NOTE: `@ag.no_grad` without parentheses calls the class with the function itself, so
        # __new__ looks at its argument: a function comes back wrapped (a function, not a
        # context object); nothing gives the context manager that `with` and `@ag.no_grad()`
        # use; anything else is a mistake, said here rather than at the first call.
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
        import functools

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            # a fresh context per call: `_previous` is per call and per thread, never shared
            with type(self)():
                return function(*args, **kwargs)
        return wrapper


class no_grad(_GradModeContext):
    """``with ag.no_grad(): ...`` records nothing (evaluation, parameter updates, eq 74).

    It applies to the current thread only; other threads keep their own mode. Also a decorator,
    with or without parentheses: ``@ag.no_grad`` and ``@ag.no_grad()``.
    """

    enabled = False


class enable_grad(_GradModeContext):
    """Turns recording back on inside a ``no_grad`` block (used by ``ag.grad``).

    Per thread, like ``no_grad``; also a decorator: ``@ag.enable_grad`` or ``@ag.enable_grad()``.
    """

    enabled = True


# --- name scopes ------------------------------------------------------------------------------
# Tensors made inside `with ag.name_scope("layer 1"):` remember the scope, so pictures can group
# them (viz) and reports can say where a tensor lives. Per thread, like grad mode.

class _ScopeState(threading.local):
    stack = ()  # NOTE: a class default, for the same 10x cheaper read as _GradMode.enabled


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
    for ndarrays and Tensors alike (both have ``.sum`` and ``.reshape``). A gradient whose shape
    cannot come from broadcasting ``shape`` is a bug in that op's vjp: it is refused here, with
    both shapes, rather than silently reshaped.
    """
    grad_shape = grad.shape
    if grad_shape == shape:
        return grad
    key = (grad_shape, shape)
    plan = _sum_plans.get(key) if type(shape) is tuple else None
    if plan is None:
        plan = _plan_sum(grad_shape, tuple(shape), op_name)
        if type(shape) is tuple and len(_sum_plans) < 1024:
            _sum_plans[key] = plan
    axes, reshape = plan
    if axes is not None:
        # NOTE: np.add.reduce is what ndarray.sum calls, minus a Python layer.
        grad = (np.add.reduce(grad, axis=axes, keepdims=True)
                if type(grad) is np.ndarray else grad.sum(axis=axes, keepdims=True))
    if reshape:
        grad = grad.reshape(shape)
    return grad


def unbroadcast_axes(input_shape, output_shape) -> tuple:
    """The axes of ``output_shape`` that ``sum_to_shape`` sums to get back to ``input_shape``
    (e.g. ``(1,)`` for a bias b (n, 1) added to Z (n, m): eq 80). For pictures and reports."""
    axes, _ = _plan_sum(tuple(output_shape), tuple(input_shape), "unbroadcast_axes")
    return () if axes is None else (axes,) if isinstance(axes, int) else axes


# NOTE: (gradient shape, input shape) -> what sum_to_shape does, worked out once per pair of
# shapes: the same few pairs come back on every step (each bias gradient of eq 80), and
# finding the axes again costs about 1 us each time.
_sum_plans: dict = {}


def _plan_sum(grad_shape, shape, op_name):
    """(axes to sum with keepdims: an int, a tuple or None; whether to reshape to ``shape``
    afterwards), or RuntimeError if broadcasting ``shape`` cannot give ``grad_shape``."""
    extra = len(grad_shape) - len(shape)
    if extra >= 0:
        # The leading axes broadcasting added are always summed.
        axes = list(range(extra))
        for i, n in enumerate(shape):
            if n != grad_shape[extra + i]:
                if n != 1:
                    break
                axes.append(extra + i)
        else:
            summed = None if not axes else axes[0] if len(axes) == 1 else tuple(axes)
            return summed, bool(extra)
    raise RuntimeError(
        f"{op_name}: its vjp returned a gradient of shape {tuple(grad_shape)} for an input of "
        f"shape {tuple(shape)}; a vjp must return the input's shape (or one that broadcasts from it)")


# NOTE: hooks for observers such as the NaN sentinel (autograd_lite.check): each is called as
# hook(op, output, inputs, input_grads) after every vjp in backward. Empty by default.
backward_hooks: list = []


# --- the traversal --------------------------------------------------------------------------

def _describe(tensor) -> str:
    label = repr(tensor.name) if tensor.name else "this tensor"
    op = tensor._op
    return f"{label} (made by {op.name})" if op is not None else label


def _count_consumers(root):
    """Walk the graph from ``root`` (iteratively) and count, for each tensor that needs a
    gradient, how many times it is used as an input: its gradient is complete once that many
    contributions have arrived. Refuses a graph an earlier backward() freed, before any work.

    NOTE: keyed by the tensors themselves (``==`` on Tensors is identity, so they are valid
    keys): no id() call per edge, about 0.1 us less per edge here and in backpropagate."""
    consumers = {root: 0}
    stack = [root]
    while stack:
        tensor = stack.pop()
        if tensor._op is None:  # a leaf
            continue
        if is_freed(tensor):
            raise GraphFreedError(
                f"backward: the graph behind {_describe(tensor)} was freed by an earlier "
                f"backward(). Pass retain_graph=True to the first backward() to backpropagate "
                f"through the same graph again, or run the forward pass again.")
        for parent in inputs_of(tensor):
            if parent.requires_grad:
                count = consumers.get(parent, 0)
                consumers[parent] = count + 1
                if not count:  # reached for the first time
                    stack.append(parent)
    return consumers


def backpropagate(root, root_grad, *, retain_graph=False, create_graph=False,
                  accumulate=True, capture=()):
    """Reverse mode from ``root`` seeded with ``root_grad`` (= dJ/droot).

    - ``accumulate``: add each leaf's gradient into its ``.grad`` (and of non-leaves that asked
      with ``retain_grad()``), as ndarrays: first order, what ``Tensor.backward`` does.
    - ``capture``: tensors whose complete gradient is returned, in that order (None where the
      root does not depend on one): what ``ag.grad`` does.
    - ``create_graph``: run the vjps on Tensors so the gradients are themselves recorded and
      can be differentiated again (higher order). Implies keeping the graph.
    - ``retain_graph``: keep the graph for another backward; otherwise each node's inputs are
      released as soon as its vjp has run.
    """
    # NOTE: a tensor leaves ``consumers`` as soon as its gradient is complete: held there to
    # the end, every tensor of the graph (and its array) would stay alive, defeating the
    # freeing below.
    release_waiting()  # the forward pass is over: what it no longer holds can go now
    consumers = _count_consumers(root)
    keep = retain_graph or create_graph
    captured = {t: None for t in capture}
    grads = {root: root_grad}
    ready = [root]
    del consumers[root]
    while ready:
        tensor = ready.pop()
        grad = grads.pop(tensor, None)
        if captured and tensor in captured:
            captured[tensor] = grad
        op = tensor._op
        if op is None:  # a leaf: its gradient is complete
            if accumulate and grad is not None:
                # counted before the call: as an argument on the stack it would count once more
                exclusive = _getrefcount(grad) == _EXCLUSIVE_REFCOUNT
                _accumulate_into(tensor, grad, exclusive)
            continue
        if tensor._retains_grad and accumulate and grad is not None:
            exclusive = _getrefcount(grad) == _EXCLUSIVE_REFCOUNT
            _accumulate_into(tensor, grad, exclusive)
        # NOTE: one- and two-input ops (nearly all) read their inputs from the tensor's own
        # fields (see inputs_of) and skip the generator expressions: about 0.4 us less per node.
        x = tensor._input0
        y = tensor._input1
        if y is not None:
            inputs = (x, y)
            wants = (x.requires_grad, y.requires_grad)
        elif x is not None:
            inputs = (x,)
            wants = (x.requires_grad,)
        else:
            inputs = tensor._inputs
            wants = tuple([parent.requires_grad for parent in inputs])
        # NOTE: a call without ** when there are no parameters (most ops): ~0.15 us less.
        params = tensor._params
        # NOTE: try costs nothing until something raises (Python 3.11+).
        try:
            if grad is None:
                input_grads = (None,) * len(inputs)
            elif create_graph:
                input_grads = (op.vjp(grad, inputs, tensor, wants, **params) if params
                               else op.vjp(grad, inputs, tensor, wants))
            else:
                if y is not None:
                    arrays = (x.data, y.data)
                elif x is not None:
                    arrays = (x.data,)
                else:
                    arrays = tuple([parent.data for parent in inputs])
                if params:
                    input_grads = op.vjp(grad, arrays, tensor.data, wants, **params)
                else:
                    input_grads = op.vjp(grad, arrays, tensor.data, wants)
        except ReleasedValueError as error:
            raise ReleasedValueError(_read_released(op, tensor, inputs)) from error
        if backward_hooks:
            for hook in backward_hooks:
                hook(op, tensor, inputs, input_grads)
        if not keep:
            # freed: releases the inputs (and their arrays)
            tensor._input0 = tensor._input1 = tensor._inputs = None
        for parent, wanted, parent_grad in zip(inputs, wants, input_grads):
            if not wanted:
                continue
            if parent_grad is not None:
                # NOTE: the shape test inline; sum_to_shape is called only when it has work.
                if parent_grad.shape != parent.data.shape:
                    parent_grad = sum_to_shape(parent_grad, parent.data.shape, op.name)
                previous = grads.get(parent)
                # NOTE: out of place on purpose: a vjp may hand the same array to two inputs
                # (add returns g, g), so adding into one would corrupt the other.
                grads[parent] = parent_grad if previous is None else previous + parent_grad
            left = consumers[parent] - 1
            if left:
                consumers[parent] = left
            else:  # its gradient is complete
                del consumers[parent]
                ready.append(parent)
        # Drop this node's references now, so that a gradient arriving at a leaf next is
        # held by ``grads`` alone and the reference count can show that it needs no copy.
        input_grads = parent_grad = grad = arrays = x = y = None
    return [captured[t] for t in capture]


def _read_released(op, tensor, inputs) -> str:
    """Why a vjp met a value the engine released (see autograd_lite.release): the recorder
    was told, when the op ran, that this vjp would not read it."""
    def label(t):
        return repr(t.name) if t.name else f"a {t._op.name} result"
    released = [f"input {i} ({label(t)})" for i, t in enumerate(inputs) if t._uses is None]
    if tensor._uses is None:
        released.append(f"its output ({label(tensor)})")
    shown = ", ".join(released) or "a value"
    return (f"backward: the vjp of {op.name} read {shown}, whose value was released because, "
            f"when {op.name} was recorded, no backward rule was going to read it. Either a "
            f"tensor's requires_grad was switched on after {op.name} was recorded (set it "
            f"before the forward pass), or {op.name}'s vjp reads an input or its output that "
            f"its vjp_reads_inputs / vjp_reads_output declares unread (for your own primitive, "
            f"declare True). ag.keep_values() around the forward pass keeps every value.")


def _accumulate_into(tensor, grad, exclusive=False):
    """``tensor.grad += grad``, never aliasing an array the engine or the user still holds:
    the first gradient is copied unless ``exclusive`` (nothing else holds ``grad``, see
    _EXCLUSIVE_REFCOUNT) and it is a writeable ndarray of the tensor's dtype that owns its
    memory (not a view of some other array); later ones are added out of place, so a ``.grad``
    the user kept is never changed behind their back."""
    if tensor.grad is None:
        if (exclusive and type(grad) is np.ndarray and grad.base is None
                and grad.dtype == tensor.data.dtype and grad.flags.writeable):
            tensor.grad = grad  # NOTE: no copy: saves one array copy per parameter per step
        else:
            tensor.grad = np.array(grad, dtype=tensor.data.dtype, copy=True)
    else:
        # NOTE: np.asarray because numpy returns a scalar (np.float64), not a 0-d array, for
        # 0-d operands: .grad must stay an ndarray of the tensor's shape and dtype.
        tensor.grad = np.asarray(tensor.grad + grad, dtype=tensor.data.dtype)


# NOTE: sys.getrefcount called directly (no wrapper function): ~0.1 us less per leaf gradient.
_getrefcount = sys.getrefcount


def _probe_exclusive_refcount():
    fresh = np.empty(0)
    return _getrefcount(fresh)


# NOTE: what _getrefcount reports for an array held by exactly one local variable, measured the
# way backpropagate and the tape ask (a local passed straight to _getrefcount) rather than
# assumed, since it differs between Python versions. If a gradient shows this count, nothing
# else (the user, another tensor's .grad, a pending gradient) holds that array, and it can
# become a leaf's .grad without a copy. None off CPython, where every first gradient is copied.
_EXCLUSIVE_REFCOUNT = _probe_exclusive_refcount() if sys.implementation.name == "cpython" else None

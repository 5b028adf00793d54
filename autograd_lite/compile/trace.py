"""ag.compile: trace a training step's graph once, then replay it as straight-line numpy.

``J.backward()`` pays, on every step, for what an engine must do when the graph may change: a
Tensor and a node per operation, a walk that counts consumers, dictionaries keyed by node. A
training step usually builds the *same* graph every time, so a ``Tape`` traces it once, eagerly
(the ordinary engine: ``_record`` and ``backpropagate``), and keeps what it saw: the ops, their
wiring, and the order in which the traversal ran the vjps. ``replay`` writes that program out
as one Python function of numpy calls (each op's lines come from its kernel,
``kernels.KERNELS``), and later calls run that function.

    step = ag.compile(loss)          # loss(*args) -> a single-element Tensor J
    J = step(X, Y)                   # fills .grad of every leaf that requires it, like J.backward()

Per shape: a call whose arguments have other shapes, dtypes or ``requires_grad`` (the smaller
last mini-batch) traces a program of its own, as jit compilers do. For each, the first call
traces, the second traces again and refuses (``GraphChangedError``, before any gradient is
touched) if the graph differs, and later calls replay without running ``loss``. A program once
refused is checked on every later call. What a replay cannot see it refuses at the check (an
array made inside the step, which may hide a value read from outside or from an argument), or
says in this docstring: Python numbers and control flow inside ``loss`` are baked in.
"""
from __future__ import annotations

import numpy as np

from . import replay
from ..core.backward import accumulated, backpropagate
from ..core.graph import Node, topological_order
from ..core.modes import enable_grad, grad_mode
from ..core.tensor import Tensor, forward_hooks


class GraphChangedError(RuntimeError):
    """A compiled step was called with a graph that differs from the one it traced."""


def compile(loss, *, check_every=None):  # noqa: A001 - ag.compile, as in jax.jit / torch.compile
    """A ``Tape`` of ``loss``: call it like ``loss``; it fills ``.grad`` as ``J.backward()`` would.

    ``check_every=k`` also re-runs ``loss`` eagerly on every k-th call of a program and refuses
    a changed graph (the second call is always checked).
    """
    return Tape(loss, check_every=check_every)


class Tape:
    """A traced step: ``Tape(loss)(*args)`` returns J (a Tensor without a graph) and adds dJ/dp to
    ``p.grad`` for every leaf p that requires a gradient, the arguments included.

    Arguments may be Tensors, ndarrays or numbers. Leaves that ``loss`` reaches without taking
    them as arguments (the parameters W[l], b[l] of a closure or a model) are read afresh on
    every call, so updating ``W.data`` in place (eqs 74-75) or assigning a new array of the same
    shape is seen; one of another shape or dtype, or whose ``requires_grad`` changed, is
    refused. Replays call neither the forward nor the backward hooks (the sentinels of
    ``autograd_lite.check`` watch eager runs). A replay that meets a floating-point event
    (an overflow, a log of 0, ...) is abandoned before it changes anything, and that call runs
    eagerly instead, with the eager engine's values and warnings.

    The replay keeps its buffers between calls (memory for speed; values whose lifetimes do not
    overlap share one), so one compiled step must not be called from two threads at once;
    compile one per thread.
    """

    def __init__(self, loss, *, check_every=None):
        if not callable(loss):
            raise TypeError(f"compile: expected a function returning the loss J, got "
                            f"{type(loss).__name__}")
        if check_every is not None and (isinstance(check_every, bool)
                                        or not isinstance(check_every, int) or check_every < 1):
            raise ValueError(f"compile: check_every must be a positive int or None, got {check_every!r}")
        self.loss = loss
        self.check_every = check_every
        self.calls = 0
        self._programs = {}   # argument signature -> _Compiled
        self._last = None

    def __call__(self, *args):
        self.calls += 1
        compiled = self._last
        if compiled is not None and compiled.replay is not None and not self._checks(compiled):
            # the common case: the same shapes as the last call; the generated replay checks
            # them itself and raises Mismatch for anything it was not traced for
            try:
                compiled.calls += 1
                return compiled.replay(args)
            except replay.Mismatch:
                compiled.calls -= 1
            except FloatingPointError:  # abandoned before anything changed: run it eagerly
                return self._eager(tuple(_argument(a) for a in args))
        tensors = tuple(_argument(a) for a in args)
        key = _signature(tensors)
        compiled = self._programs.get(key)
        if compiled is None:
            J, compiled = self._trace(tensors)
            self._programs[key] = self._last = compiled
            return J
        self._last = compiled
        if self._checks(compiled):
            compiled.calls += 1
            return self._check(compiled, tensors)
        compiled.calls += 1
        compiled.program.load(tensors)  # raises GraphChangedError naming a leaf that changed
        try:
            return compiled.replay(tensors)
        except FloatingPointError:
            return self._eager(tensors)

    def _checks(self, compiled):
        """Whether the next call of ``compiled`` re-traces and compares (the second call, every
        check_every-th, and every call once a check has failed)."""
        n = compiled.calls + 1
        return (n == 2 or compiled.refused
                or (self.check_every is not None and n % self.check_every == 0))

    @property
    def source(self):
        """The Python source of the last program's replay (numpy calls into preallocated
        buffers), or None before that program's second call."""
        if self._last is None or self._last.source is None:
            return None
        return self._last.source

    @property
    def programs(self) -> int:
        """How many programs (one per argument signature) this step has traced."""
        return len(self._programs)

    def _record_graph(self, tensors):
        """Run ``loss`` eagerly with constant ops recorded too; J and its Program. Ops that
        update state outside the graph (``updates_state``) are kept too, though J does not
        depend on them, so that a replay repeats them."""
        effects = []

        def keep_effects(op, inputs, output):
            if op.updates_state:
                effects.append(output.grad_fn)

        previous = grad_mode.record_constants
        grad_mode.record_constants = True
        forward_hooks.append(keep_effects)
        try:
            with enable_grad():
                J = self.loss(*tensors)
        finally:
            grad_mode.record_constants = previous
            forward_hooks.remove(keep_effects)
        if not isinstance(J, Tensor):
            raise TypeError(f"compile: the function must return a Tensor, got {type(J).__name__}")
        if J.data.size != 1:
            raise ValueError(f"compile: the function must return a single element (a loss J), "
                             f"got shape {J.shape}; reduce it with .sum() or .mean()")
        if not J.requires_grad:
            raise RuntimeError("compile: the loss does not require a gradient: none of the "
                               "tensors it was computed from has requires_grad=True")
        if J.grad_fn is None:
            raise TypeError("compile: the function returned a leaf tensor itself; a compiled "
                            "step must compute its loss with operations")
        return J, Program(J, tensors, effects)

    def _trace(self, tensors):
        J, program = self._record_graph(tensors)
        program.backward = _backward(J, program)
        return Tensor._result(J.data, None, False), _Compiled(program)

    def _check(self, compiled, tensors):
        """Trace again and refuse a changed graph before touching any gradient; once refused,
        a program is checked on every call."""
        J, program = self._record_graph(tensors)
        try:
            compiled.program.refuse_if_different(program)
        except GraphChangedError:
            compiled.refused = True
            raise
        _backward(J, program)
        if compiled.replay is None:  # written now, so the first replay is only a replay
            compiled.replay, compiled.source = replay.make(compiled.program)
        return Tensor._result(J.data, None, False)

    def _eager(self, tensors):
        """The step run by the ordinary engine (after a floating-point event in a replay)."""
        with enable_grad():
            J = self.loss(*tensors)
        J.backward()
        return Tensor._result(J.data, None, False)


def _argument(value):
    """An argument as a Tensor; a float ndarray is used as it is (the step never writes into
    its inputs), anything else goes through ``Tensor`` (float64, checked)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return Tensor._result(value, None, False)
    return Tensor(value)


def _signature(tensors):
    """What must match for a program to be replayed: each argument's shape, dtype and
    requires_grad, and which arguments are the same Tensor (f(b, b) is another program)."""
    first = {}
    return tuple((t.shape, t.dtype.str, t.requires_grad, first.setdefault(id(t), i))
                 for i, t in enumerate(tensors))


def _backward(J, program):
    """``J.backward()``, recording the order in which the traversal ran each node's vjp (the
    replay runs them in that order, so its sums of shared gradients add up the same way)."""
    order = []
    for x, grad in backpropagate(J.grad_fn, np.ones_like(J.data)):
        if isinstance(x, Node):
            if grad is not None and x.requires_grad:
                order.append(program.slot_of[x])
            if x.retains_grad and grad is not None:
                x.grad = accumulated(x.grad, grad, x.dtype)
        elif grad is not None:
            x._grad = accumulated(x._grad, grad, x.data.dtype)
    return order


class _Compiled:
    """A program and its replay, written once the graph was confirmed (at its second call)."""

    def __init__(self, program):
        self.program = program
        self.calls = 1
        self.refused = False
        self.replay = self.source = None


class Program:
    """One traced graph as numbered slots: leaves (arguments or captured tensors) and ops."""

    def __init__(self, J, arguments, effects=()):
        order = topological_order(J.grad_fn, *effects)
        self.slot_of = {x: k for k, x in enumerate(order)}
        position_of, self.aliases = {}, []  # (first position, another) of one Tensor
        for i, t in enumerate(arguments):
            first = position_of.setdefault(t.grad_fn or t, i)
            if first != i:
                self.aliases.append((first, i))
        self.n_arguments = len(arguments)
        self.root = self.slot_of[J.grad_fn]
        self.root_grad = np.ones_like(J.data)
        self.root_grad.flags.writeable = False
        self.shapes = [x.shape for x in order]
        self.dtypes = [x.dtype for x in order]
        self.needs = [x.requires_grad for x in order]
        self.leaf_slots, self.arguments, self.leaves = [], [], []  # (slot, position or tensor)
        self.ops, self.op_of, self.inputs_of = [], {}, {}
        self.signature = []  # what a graph change would alter, slot by slot
        self.backward = []
        self.effects = [self.slot_of[node] for node in effects]  # replayed after backward
        for k, x in enumerate(order):
            if isinstance(x, Node):
                inputs = tuple(self.slot_of[p] for p in x.parents)
                self.ops.append((k, x.op, inputs, x.params))
                self.op_of[k], self.inputs_of[k] = x.op, inputs
                self.signature.append(("op", x.op, x.params, inputs))
            elif x in position_of:
                self.leaf_slots.append(k)
                self.arguments.append((k, position_of[x]))
                self.signature.append(("argument", position_of[x]))
            else:
                self.leaf_slots.append(k)
                self.leaves.append((k, x))
                self.signature.append(("leaf", x))
        self.grad_leaves = [k for k in self.leaf_slots if self.needs[k]]

    def load(self, tensors):
        """This call's leaf arrays by slot, refusing a captured leaf that changed its shape,
        dtype or requires_grad since the trace."""
        values = [None] * len(self.shapes)
        for k, position in self.arguments:
            values[k] = tensors[position].data
        for k, tensor in self.leaves:
            array = tensor.data
            if (array.shape != self.shapes[k] or array.dtype != self.dtypes[k]
                    or tensor.requires_grad != self.needs[k]):
                raise GraphChangedError(
                    f"compiled step: {_name(tensor)} now has shape {array.shape}, dtype "
                    f"{array.dtype}, requires_grad={tensor.requires_grad}; it was traced with "
                    f"shape {self.shapes[k]}, dtype {self.dtypes[k]}, requires_grad={self.needs[k]}")
            values[k] = array
        return values

    def refuse_if_different(self, other):
        """Raise GraphChangedError naming the first slot where ``other`` differs from this, or
        an array the step makes inside itself, which a replay would freeze."""
        if len(other.signature) != len(self.signature):
            raise GraphChangedError(
                f"compiled step: the graph changed between calls ({len(self.signature)} tensors "
                f"when traced, {len(other.signature)} now); a compiled step must build the same "
                f"graph every call")
        for k, (old, new) in enumerate(zip(self.signature, other.signature)):
            if not _same_entry(old, new):
                raise GraphChangedError(
                    f"compiled step: the graph changed between calls at tensor {k}: traced "
                    f"{_describe(old)}, now {_describe(new)}; a compiled step must build the "
                    f"same graph every call (pass values that change as arguments)")
            if old[0] == "leaf" and old[1] is not new[1] and old[1].data.ndim > 0:
                raise GraphChangedError(
                    f"compiled step: the step makes a constant array of shape {old[1].shape} "
                    f"itself on every call ({np.array2string(old[1].data, threshold=6)}: from an "
                    f"ndarray it reads from outside, np.eye, a value computed with numpy, ...); "
                    f"a replay would keep the traced value even when it changes. Pass it as an "
                    f"argument of the step, or compute it from the arguments with "
                    f"autograd_lite operations")


def _same_entry(old, new):
    if old[0] != new[0]:
        return False
    if old[0] == "argument":
        return old[1] == new[1]
    if old[0] == "leaf":
        a, b = old[1], new[1]
        if a is b:
            return True
        # A number inside the step (1 - Y's 1) is a new Tensor each call: the same value is
        # the same graph. A parameter replaced by another Tensor is not.
        if a.requires_grad or b.requires_grad:
            return False
        return a.shape == b.shape and a.dtype == b.dtype and \
            bool(np.array_equal(a.data, b.data, equal_nan=True))
    _, op_a, params_a, inputs_a = old
    _, op_b, params_b, inputs_b = new
    return op_a is op_b and inputs_a == inputs_b and _same_params(params_a, params_b)


def _same_params(a, b):
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and np.array_equal(x, y)):
                return False
        elif isinstance(x, tuple) and isinstance(y, tuple):
            if len(x) != len(y) or not _same_params(dict(enumerate(x)), dict(enumerate(y))):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


def _name(tensor):
    return repr(tensor.name) if tensor.name else f"a leaf of shape {tensor.shape}"


def _describe(entry):
    if entry[0] == "argument":
        return f"argument {entry[1]}"
    if entry[0] == "leaf":
        tensor = entry[1]
        if tensor.requires_grad:
            return f"the leaf {_name(tensor)}"
        return f"the constant {np.array2string(tensor.data, threshold=6)}"
    _, op, params, inputs = entry
    shown = ", ".join(f"{key}={value!r}" for key, value in params.items())
    return f"{op.name}({', '.join(f'#{i}' for i in inputs)}{', ' + shown if shown else ''})"

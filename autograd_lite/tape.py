"""ag.compile: trace a training step's graph once, then replay it as a flat list of numpy calls.

``J.backward()`` pays, on every step, for what an engine must do when the graph may change:
a Tensor and a node per operation, a walk that counts consumers, dictionaries keyed by tensor.
A training step usually builds the *same* graph every time, so a ``Tape`` records it once and
then replays it: forward is a list of ``op.forward`` calls on arrays in numbered slots, and
backward is a list of the very same ``op.vjp`` rules (written once, in ``ops``), with the
order, the wiring and the first-or-added decision of every gradient worked out in advance.

    step = ag.compile(loss)          # loss(*args) -> a single-element Tensor J
    J = step(X, Y)                   # fills .grad of every leaf that requires it, like J.backward()

The first call runs ``loss`` eagerly and traces it; the second call runs it eagerly again and
refuses (``GraphChangedError``) if the graph differs; later calls replay without running
``loss`` at all. What the tape cannot see, it says so (see ``Tape``); what it can see
(argument and parameter shapes and dtypes) it checks on every call.

When every op of the graph is one of the common primitives, the replay is faster still: it is
written out once as a straight-line function of numpy calls into buffers allocated at the first
replay (``tape_kernels``; ``step.source`` shows it), which is how a compiled step gets under
the hand-written numpy step. Other graphs are replayed op by op by ``_Program.replay``.
"""
from __future__ import annotations

import numpy as np

import functools

from . import ops
from .autodiff import (_EXCLUSIVE_REFCOUNT, _accumulate_into, _getrefcount, _grad_mode,
                       enable_grad, sum_to_shape)
from .tape_kernels import fast_replay
from .tensor import Tensor

# NOTE: primitives whose forward is exactly this numpy function once its argument checks have
# passed. A replay has the traced shapes and dtypes (checked on every call), so the checks
# would pass again: the replay calls the function directly (~0.3 us less per op).
_KERNELS = {ops.ADD: np.add, ops.SUB: np.subtract, ops.MUL: np.multiply,
            ops.MATMUL: np.matmul, ops.NEG: np.negative}


class GraphChangedError(RuntimeError):
    """A compiled step was called with a graph that differs from the one it traced."""


def compile(loss, *, check_every=None):  # noqa: A001 - ag.compile, as in jax.jit / torch.compile
    """A ``Tape`` of ``loss``: call it like ``loss``; it fills ``.grad`` as ``J.backward()`` would.

    ``check_every=k`` also re-runs ``loss`` eagerly on every k-th call and refuses a changed
    graph (the second call is always checked).
    """
    return Tape(loss, check_every=check_every)


class Tape:
    """A traced step: ``Tape(loss)(*args)`` returns J (a Tensor without a graph) and adds dJ/dp to
    ``p.grad`` for every leaf p that requires a gradient, the arguments included.

    Arguments may be Tensors, ndarrays or numbers; each call may pass new values of the same
    shapes and dtypes. Leaves that ``loss`` reaches without taking them as arguments (the
    parameters W[l], b[l] of a closure or a model) are read afresh on every call, so updating
    ``W.data`` in place (eqs 74-75) or assigning a new array of the same shape is seen.

    Refused on every call, with the argument or leaf named: a different number of arguments,
    or an argument or leaf of another shape or dtype, or a leaf whose ``requires_grad`` changed.
    Refused on the second call (and every ``check_every``-th): any other change of the graph
    (another op, other wiring, another Python number inside ``loss``, a parameter replaced by
    another Tensor). Not seen between checks: Python control flow or Python numbers inside
    ``loss`` that change later; pass what changes as an argument. Replays call neither the
    forward nor the backward hooks (the sentinels of ``autograd_lite.check`` watch eager runs).

    NOTE: the fast replay keeps one buffer per intermediate value between calls (memory for
    speed: nothing is allocated per step but J and the gradients it hands out), so one
    compiled step must not be called from two threads at once; compile one per thread.
    """

    def __init__(self, loss, *, check_every=None):
        if not callable(loss):
            raise TypeError(f"compile: expected a function returning the loss J, got "
                            f"{type(loss).__name__}")
        if check_every is not None and (not isinstance(check_every, int) or check_every < 1):
            raise ValueError(f"compile: check_every must be a positive int or None, got {check_every!r}")
        self.loss = loss
        self.check_every = check_every
        self.calls = 0
        self._program = None
        self._replay = None   # made on the second call, once the graph is confirmed
        self._source = None

    def __call__(self, *args):
        self.calls += 1
        check = self.calls == 2 or (self.check_every is not None
                                    and self.calls % self.check_every == 0)
        if self._program is None or check:
            J, program = self._trace(args)
            if self._program is None:
                self._program = program
            else:  # the same graph: the program already made (and its fast replay) stays
                self._program.refuse_if_different(program)
                if self._replay is None:
                    # made once the graph is confirmed, so the first replay is already only
                    # a replay (no code generation or buffer allocation inside a timed step)
                    self._replay, self._source = self._program.fast_replay()
            return J
        if self._replay is None:
            self._replay, self._source = self._program.fast_replay()
        return self._replay(args)

    @property
    def source(self):
        """The Python source of the replayed step (numpy calls into preallocated buffers), or
        None before the second call or when the graph is replayed op by op (an op without a
        kernel in ``tape_kernels``)."""
        return self._source

    def _trace(self, args):
        """Run ``loss`` eagerly with constant ops recorded too, read its graph, backpropagate."""
        tensors = tuple(a if isinstance(a, Tensor) else Tensor(a) for a in args)
        previous = _grad_mode.record_constants
        _grad_mode.record_constants = True
        try:
            with enable_grad():
                J = self.loss(*tensors)
        finally:
            _grad_mode.record_constants = previous
        if not isinstance(J, Tensor):
            raise TypeError(f"compile: the function must return a Tensor, got {type(J).__name__}")
        if J.data.size != 1:
            raise ValueError(f"compile: the function must return a single element (a loss J), "
                             f"got shape {J.shape}; reduce it with .sum() or .mean()")
        if not J.requires_grad:
            raise RuntimeError("compile: the loss does not require a gradient: none of the "
                               "tensors it was computed from has requires_grad=True")
        program = _Program(J, tensors)
        J.backward()
        return Tensor._make(J.data, None, False), program


class _Program:
    """One traced graph as numbered slots: leaves, then forward and backward instructions."""

    def __init__(self, root, arguments):
        order = _topological_order(root)
        slot_of = {id(t): k for k, t in enumerate(order)}
        argument_index = {id(t): i for i, t in enumerate(arguments)}
        self.n_slots = len(order)
        self.root = slot_of[id(root)]
        self.n_arguments = len(arguments)
        self.arguments = []  # (slot, index, shape, dtype, requires_grad)
        self.leaves = []     # (slot, tensor, shape, dtype, requires_grad)
        self.forward = []    # (function of the input arrays, input slots, output slot, op, params)
        self.signature = []  # what a graph change would alter, slot by slot
        self.shapes = [t.data.shape for t in order]
        self.dtypes = [t.data.dtype for t in order]
        self.params_of = [t._params for t in order]
        needs = [False] * len(order)
        for k, t in enumerate(order):
            node = t._node
            if node is None:
                if id(t) in argument_index:
                    i = argument_index[id(t)]
                    self.arguments.append((k, i, t.data.shape, t.data.dtype, t.requires_grad))
                    self.signature.append(("argument", i))
                else:
                    self.leaves.append((k, t, t.data.shape, t.data.dtype, t.requires_grad))
                    self.signature.append(("leaf", t))
                needs[k] = t.requires_grad
            else:
                inputs = tuple(slot_of[id(p)] for p in node.inputs)
                run = _KERNELS.get(node.op) or node.op.forward
                if node.params:
                    run = functools.partial(run, **node.params)
                self.forward.append((run, inputs, k, node.op, node.params))
                self.signature.append(("op", node.op, node.params, inputs))
                needs[k] = any(needs[i] for i in inputs)
        # Backward: the nodes that need a gradient, consumers first (reverse topological
        # order, so every contribution to a slot has arrived when its vjp runs).
        shapes = [t.data.shape for t in order]
        self.backward = []
        for _, inputs, k, op, params in reversed(self.forward):
            if not needs[k]:
                continue
            wants = tuple(needs[i] for i in inputs)
            targets = tuple((position, i, shapes[i]) for position, i in enumerate(inputs) if needs[i])
            vjp = functools.partial(op.vjp, **params) if params else op.vjp
            self.backward.append((vjp, inputs, k, wants, targets, op.name, []))
        self.op_of = {k: op for _, _, k, op, _ in self.forward}
        # dJ/dJ = 1, made once. NOTE: read-only, so no vjp or .grad can ever write into it
        # (a leaf reached by pass-through vjps gets a copy, as the engine gives).
        self.root_grad = np.ones_like(root.data)
        self.root_grad.flags.writeable = False
        self._plan_releases()
        self.grad_leaves = ([(k, None, i) for k, i, _, _, wants in self.arguments if wants]
                            + [(k, t, None) for k, t, _, _, wants in self.leaves if wants])

    # --- replay -----------------------------------------------------------------------------
    def _plan_releases(self):
        """After which instruction each value is read for the last time, so the replay can drop
        it there (NOTE: this is the engine's freeing of the graph as it goes, planned once)."""
        last_backward = {}
        for step, (_, inputs, k, _, _, _, _) in enumerate(self.backward):
            op = self.op_of[k]
            read = (inputs if op.vjp_reads_inputs else ()) + ((k,) if op.vjp_reads_output else ())
            for i in read:
                last_backward[i] = step
        for i, step in last_backward.items():
            if i != self.root:
                self.backward[step][6].append(i)
        last_forward = {}
        for step, (_, inputs, _, _, _) in enumerate(self.forward):
            for i in inputs:
                if i not in last_backward:
                    last_forward[i] = step
        self.forward_releases = [[] for _ in self.forward]
        for i, step in last_forward.items():
            if i != self.root:
                self.forward_releases[step].append(i)

    def replay(self, args):
        values = [None] * self.n_slots
        self._load(args, values)
        for (run, inputs, k, _, _), releases in zip(self.forward, self.forward_releases):
            # NOTE: one- and two-input ops called without building an argument list
            if len(inputs) == 2:
                result = run(values[inputs[0]], values[inputs[1]])
            elif len(inputs) == 1:
                result = run(values[inputs[0]])
            else:
                result = run(*[values[i] for i in inputs])
            # as in the engine's _record: a 0-d result stays an ndarray, never a numpy scalar
            values[k] = result if type(result) is np.ndarray else np.asarray(result)
            for i in releases:
                values[i] = None
        grads = [None] * self.n_slots
        grads[self.root] = self.root_grad
        for vjp, inputs, k, wants, targets, name, releases in self.backward:
            g = grads[k]
            grads[k] = None  # consumed: freed as soon as its vjp has run
            if g is not None:
                if len(inputs) == 2:
                    arrays = (values[inputs[0]], values[inputs[1]])
                else:
                    arrays = tuple([values[i] for i in inputs])
                input_grads = vjp(g, arrays, values[k], wants)
                for position, i, shape in targets:
                    grad = input_grads[position]
                    if grad is None:
                        continue
                    if grad.shape != shape:
                        grad = sum_to_shape(grad, shape, name)
                    previous = grads[i]
                    grads[i] = grad if previous is None else previous + grad
                # so that a leaf's gradient is held by `grads` alone (no copy needed)
                input_grads = grad = g = arrays = None
            for i in releases:
                values[i] = None
        for k, tensor, index in self.grad_leaves:
            grad = grads[k]
            grads[k] = None
            if grad is None:
                continue
            # counted before the call: as an argument on the stack it would count once more
            exclusive = _getrefcount(grad) == _EXCLUSIVE_REFCOUNT
            _accumulate_into(args[index] if tensor is None else tensor, grad, exclusive)
        return Tensor._make(values[self.root], None, False)

    def fast_replay(self):
        """(replay, source): the generated straight-line replay of ``tape_kernels`` when every op
        has a kernel there, else (``self.replay``, None)."""
        made = fast_replay(self, self.replay)
        return made if made is not None else (self.replay, None)

    def load(self, args):
        """The arrays of a call, slot by slot, after every check of ``_load`` (which raises
        GraphChangedError naming what differs)."""
        values = [None] * self.n_slots
        self._load(args, values)
        return values

    def _load(self, args, values):
        """Put this call's arrays in the leaf slots, refusing what the trace did not see."""
        if len(args) != self.n_arguments:
            raise GraphChangedError(f"compiled step: called with {len(args)} arguments, traced "
                                    f"with {self.n_arguments}")
        for k, i, shape, dtype, requires_grad in self.arguments:
            value = args[i]
            if isinstance(value, Tensor):
                array = value.data
                if value.requires_grad != requires_grad:
                    raise GraphChangedError(
                        f"compiled step: argument {i} has requires_grad={value.requires_grad}, "
                        f"traced with requires_grad={requires_grad}")
            else:
                if requires_grad:
                    raise GraphChangedError(f"compiled step: argument {i} was traced as a Tensor "
                                            f"that requires a gradient; pass that Tensor again")
                array = np.asarray(value, dtype=np.float64)
            if array.shape != shape or array.dtype != dtype:
                raise GraphChangedError(
                    f"compiled step: argument {i} has shape {array.shape} and dtype {array.dtype}, "
                    f"but the step was traced with shape {shape} and dtype {dtype}; "
                    f"compile the step again for these shapes")
            values[k] = array
        for k, tensor, shape, dtype, requires_grad in self.leaves:
            array = tensor.data
            if array.shape != shape or array.dtype != dtype or tensor.requires_grad != requires_grad:
                raise GraphChangedError(
                    f"compiled step: {_name(tensor)} now has shape {array.shape}, dtype "
                    f"{array.dtype}, requires_grad={tensor.requires_grad}; it was traced with "
                    f"shape {shape}, dtype {dtype}, requires_grad={requires_grad}")
            values[k] = array

    # --- checking a re-trace -------------------------------------------------------------------
    def refuse_if_different(self, other):
        """Raise GraphChangedError naming the first slot where ``other`` differs from this."""
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


def _topological_order(root):
    """Every tensor of root's graph, each after its inputs (iterative depth-first post-order)."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        key = id(tensor)
        if key in seen:
            continue
        node = tensor._node
        if expanded or node is None:
            seen.add(key)
            order.append(tensor)
            continue
        stack.append((tensor, True))
        for parent in reversed(node.inputs):
            if id(parent) not in seen:
                stack.append((parent, False))
    return order


def _same_entry(old, new):
    if old[0] != new[0]:
        return False
    if old[0] == "argument":
        return old[1] == new[1]
    if old[0] == "leaf":
        a, b = old[1], new[1]
        if a is b:
            return True
        # A constant made inside the step (a Python number, 1 - Y's 1) is a new Tensor each
        # call: the same value is the same graph. A parameter replaced by another Tensor is not.
        if a.requires_grad or b.requires_grad:
            return False
        return a.data.shape == b.data.shape and a.data.dtype == b.data.dtype and \
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
    return repr(tensor.name) if tensor.name else f"a leaf of shape {tensor.data.shape}"


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

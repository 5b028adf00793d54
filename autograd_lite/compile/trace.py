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

What a compiled step may read (docs/compile.md has the table). Every value the step uses is
exactly one of:

(a) an argument, checked at every call: a Tensor or an array by kind, shape, dtype and
    ``requires_grad`` (an array keeps its dtype: a boolean mask stays boolean); a Python
    number, string, None or tuple of them is *static*: it keys the program, as ``jax.jit``'s
    static arguments do (another value traces another program), and reaches ``loss`` as it is;
(b) recomputed by every replay: whatever the step derives from (a) and (c) through recorded
    operations, comparisons and indices included;
(c) a captured leaf or module state: a Tensor the step reaches without taking it as an
    argument is read afresh at every call (its shape, dtype and ``requires_grad`` checked);
    what ``loss`` names through its closure and globals (and their list and dict items) is
    checked by identity (``W = W - lr * dW`` rebound, a Python number changed: traced again);
    each module the step calls is checked by identity at every call (its parameters, buffers,
    generators, settings and children: a replaced one traces the step again) and by its
    ``training`` mode (part of the program's key: a step compiled in training mode and one in
    evaluation mode are two programs);
(d) refused while tracing, naming the line and the way out (``UncompilableError``): a traced
    value that leaves the graph (``np.asarray(t)``, ``t.item()``, ``bool(t)``, ``t.numpy()``)
    would be frozen by a replay, as JAX's tracer refuses it.

Per argument signature and module mode the first call traces, the second traces again and
refuses (``GraphChangedError``, before any gradient is touched) if the graph differs, and later
calls replay without running ``loss``. A program once refused is checked on every later call.
An array the step makes itself (which may hide a value read from outside) is refused at that
check; Python control flow inside ``loss`` is baked in.
"""
from __future__ import annotations

import builtins
import math
import os
import sys
import types

import numpy as np

from .. import backend
from . import replay
from ..core.backward import accumulated, backpropagate
from ..core.graph import Node, topological_order
from ..core.modes import enable_grad, grad_mode
from ..core.tensor import Tensor, sharing


class GraphChangedError(RuntimeError):
    """A compiled step was called with a graph that differs from the one it traced."""


class UncompilableError(GraphChangedError):
    """The step reads a value a replay could not recompute: a traced value that leaves the
    graph (``np.asarray(t)``, ``t.item()``, ``bool(t)``), or an argument of a kind a program
    cannot be keyed by. Raised while tracing, before any gradient is touched."""


def compile(loss, *, check_every=None):  # noqa: A001 - ag.compile, as in jax.jit / torch.compile
    """A ``Tape`` of ``loss``: call it like ``loss``; it fills ``.grad`` as ``J.backward()`` would.

    ``check_every=k`` also re-runs ``loss`` eagerly on every k-th call of a program and refuses
    a changed graph (the second call is always checked).
    """
    return Tape(loss, check_every=check_every)


class Tape:
    """A traced step: ``Tape(loss)(*args)`` returns J (a Tensor without a graph) and adds dJ/dp to
    ``p.grad`` for every leaf p that requires a gradient, the arguments included.

    Arguments may be Tensors and arrays (data: checked at every call, never converted) or
    hashable Python values (static: numbers, strings, None, tuples; each value keys a program
    of its own). Leaves that ``loss`` reaches without taking them as arguments (the parameters
    W[l], b[l] of a closure or a model) are read afresh on every call, so updating ``W.data`` in
    place (eqs 74-75) or assigning a new array of the same shape is seen; one of another shape or
    dtype, or whose ``requires_grad`` changed, is refused. Modules the step calls are watched
    (their mode, parameters, buffers, settings). Replays call neither the forward nor the
    backward hooks (the sentinels of ``autograd_lite.check`` watch eager runs). A replay that
    meets a floating-point event (an overflow, a log of 0, ...) is abandoned, the generators it
    drew from and the state it updated are put back, and that call runs eagerly instead, with
    the eager engine's values and warnings.

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
        self._programs = {}   # argument signature -> [_Compiled], one per module state
        self._last = None

    def __call__(self, *args):
        if grad_mode.trace is not None:
            raise UncompilableError(
                f"compile: a compiled step was called while another step is being traced "
                f"({_user_line()}); compile the outer step only (call the inner function "
                f"itself inside it)")
        compiled = self._last
        if (compiled is not None and compiled.replay is not None and not compiled.refused
                and (self.check_every is None or (compiled.calls + 1) % self.check_every)
                and compiled.unchanged(args)):
            # the common case: the same program as the last call, nothing it read replaced;
            # the generated replay checks the arguments and the captured leaves itself and
            # raises Mismatch for anything it was not traced for (another backend's array too)
            self.calls += 1
            compiled.calls += 1
            saved = compiled.save_state() if compiled.updates_state else None
            try:
                return compiled.replay(args)
            except replay.Mismatch:
                self.calls -= 1
                compiled.calls -= 1
            except FloatingPointError:  # as in _replay: abandoned, the step runs eagerly
                compiled.restore_state(saved)
                return self._eager(args)
        _refuse_other_backends(args)
        self.calls += 1
        signature, proxies, data = _read_arguments(args)
        if signature not in self._programs and len(self._programs) >= _MAX_SIGNATURES:
            # a static argument that changes at every call (a decaying float): forget the oldest
            del self._programs[next(iter(self._programs))]
        candidates = self._programs.setdefault(signature, [])
        compiled = next((c for c in candidates if c.state_matches()), None)
        if compiled is None:
            # a module's mode keys a program of its own; a replaced parameter, buffer or setting
            # makes its program stale: it is traced again in its place
            candidates[:] = [c for c in candidates if not c.same_modes()]
            J, compiled = self._trace(args, proxies)
            candidates.append(compiled)
            self._last = compiled
            return J
        self._last = compiled
        if self._checks(compiled):
            compiled.calls += 1
            return self._check(compiled, args, proxies)
        compiled.calls += 1
        compiled.program.load(proxies)  # raises GraphChangedError naming a leaf that changed
        return self._replay(compiled, data, args)

    def _checks(self, compiled):
        """Whether the next call of ``compiled`` re-traces and compares (the second call, every
        check_every-th, and every call once a check has failed)."""
        n = compiled.calls + 1
        return (n == 2 or compiled.refused
                or (self.check_every is not None and n % self.check_every == 0))

    def _replay(self, compiled, data, args):
        """The replay of ``compiled`` on ``data`` (the arguments as it reads them). A
        floating-point event abandons it before any gradient is delivered: the generators and
        module state it touched are restored and the call runs eagerly on ``args``."""
        saved = compiled.save_state() if compiled.updates_state else None
        try:
            return compiled.replay(data)
        except replay.Mismatch:  # an array the replay does not take as it is (a subclass of
            return self._eager(args)  # ndarray), though its signature is the program's
        except FloatingPointError:
            compiled.restore_state(saved)
            return self._eager(args)

    @property
    def source(self):
        """The Python source of the last program's replay (numpy calls into preallocated
        buffers), or None before that program's second call."""
        if self._last is None or self._last.source is None:
            return None
        return self._last.source

    @property
    def programs(self) -> int:
        """How many programs (one per argument signature and module mode) this step holds."""
        return sum(len(candidates) for candidates in self._programs.values())

    def _record_graph(self, args, proxies):
        """Run ``loss`` eagerly under a ``Trace`` (constant ops recorded too, each module it
        calls noted, a value leaving the graph refused); J and its Program. Ops that update
        state outside the graph (``updates_state``) are kept too, though J does not depend on
        them, so that a replay repeats them."""
        trace = Trace()
        call = [proxies[i] if i in proxies else a for i, a in enumerate(args)]
        grad_mode.trace = trace
        try:
            with enable_grad():
                J = self.loss(*call)
        finally:
            grad_mode.trace = None
        trace.names = _names_of(self.loss)
        if not isinstance(J, Tensor):
            raise TypeError(f"compile: the function must return a Tensor, got {type(J).__name__}")
        _refuse_other_backends([J])
        if J.data.size != 1:
            raise ValueError(f"compile: the function must return a single element (a loss J), "
                             f"got shape {J.shape}; reduce it with .sum() or .mean()")
        if not J.requires_grad:
            raise RuntimeError("compile: the loss does not require a gradient: none of the "
                               "tensors it was computed from has requires_grad=True")
        if J.grad_fn is None:
            raise TypeError("compile: the function returned a leaf tensor itself; a compiled "
                            "step must compute its loss with operations")
        return J, Program(J, len(args), proxies, trace.effects), trace

    def _trace(self, args, proxies):
        J, program, trace = self._record_graph(args, proxies)
        program.backward = _backward(J, program)
        _deliver(args, proxies)
        return Tensor._result(J.data, None, False), _Compiled(program, args, trace)

    def _check(self, compiled, args, proxies):
        """Trace again and refuse a changed graph before touching any gradient; once refused,
        a program is checked on every call."""
        J, program, trace = self._record_graph(args, proxies)
        try:
            compiled.program.refuse_if_different(program)
        except GraphChangedError:
            compiled.refused = True
            raise
        _backward(J, program)
        _deliver(args, proxies)
        compiled.watch(trace)  # the state as this run left it
        if compiled.replay is None:  # written now, so the first replay is only a replay
            compiled.replay, compiled.source = replay.make(compiled.program)
        return Tensor._result(J.data, None, False)

    def _eager(self, args):
        """The step run by the ordinary engine on the caller's own arguments (after a
        floating-point event in a replay)."""
        with enable_grad():
            J = self.loss(*args)
        J.backward()
        return Tensor._result(J.data, None, False)


def _refuse_other_backends(values):
    """ag.compile replays numpy: a step on another backend's arrays (an argument, or a captured
    leaf, seen in J's backend) is refused, never converted."""
    for value in values:
        where = value._backend if isinstance(value, Tensor) else (
            backend.of(value) if backend.is_foreign_array(value) else backend.NUMPY)
        if not where.is_numpy:
            raise TypeError(f"compile: the step computes on {where!r}; ag.compile replays numpy "
                            f"steps only. Call the step itself (without ag.compile) to run it "
                            f"eagerly there, or move its tensors with .to(np)")


_MAX_SIGNATURES = 64  # programs kept per compiled step, by argument signature


class Trace:
    """What one run of a step under ``ag.compile`` observes, in the thread that runs it
    (``grad_mode.trace``): the nodes of ops that update state outside the graph, the modules
    it calls, and any traced value leaving the graph, which it refuses."""

    def __init__(self):
        self.effects = []   # nodes of ops with updates_state (BatchNorm's running statistics)
        self.modules = {}   # id -> each module the step called (Module.__call__ says so)
        self.names = []     # what the step's function names (_names_of), after it ran

    def recorded(self, node):
        """Note a recorded node (every op is recorded while tracing); returns it."""
        if node.op.updates_state:
            self.effects.append(node)
        return node

    def calls_module(self, module):
        self.modules.setdefault(id(module), module)

    def leaves(self, tensor, how):
        """Refuse ``how`` (``"t.item()"``, ...) applied to ``tensor`` inside the step."""
        raise UncompilableError(
            f"compile: {how} at {_user_line()} turns {_name(tensor)} into a plain value while "
            f"the step is traced; a replay would keep the traced value on every later call. "
            f"Keep it in autograd_lite operations (comparisons, ag.where, clip and indexing with "
            f"a Tensor are recorded), pass the value as an argument of the step, or run this "
            f"step without ag.compile")


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUMPY = os.path.dirname(os.path.abspath(np.__file__))


def _user_line() -> str:
    """``file:line`` of the innermost frame outside autograd_lite and numpy: the user's code."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not (path.startswith(_PACKAGE + os.sep) or path.startswith(_NUMPY + os.sep)):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "an unknown line"


# --- arguments ---------------------------------------------------------------------------------

def _read_arguments(args):
    """(signature, proxies, data) of a call. ``signature`` keys the program: per argument its
    kind, shape, dtype and requires_grad (data) or its value (static), and which arguments are
    one Tensor. ``proxies`` (position -> a leaf Tensor holding the argument's array) stand in
    for the data arguments while tracing, so a Tensor the step also reaches as a captured leaf
    is two leaves (an argument and a captured one) and later calls with other Tensors are right.
    ``data`` is the call as the replay reads it (a numpy scalar as a 0-d array)."""
    signature, proxies, data, first = [], {}, list(args), {}
    for i, value in enumerate(args):
        if isinstance(value, Tensor):
            if value.grad_fn is not None:
                raise UncompilableError(
                    f"compile: argument {i} is the result of recorded operations (made by "
                    f"{value.grad_fn.op.name}); a compiled step differentiates back to its own "
                    f"arguments only: pass .detach() of it, or compute it inside the step")
            position = first.setdefault(id(value), i)
            if position == i:
                proxy = sharing(value.data, value.requires_grad)
                proxy.name = value.name
            else:
                proxy = proxies[position]
            proxies[i] = proxy
            array = value.data
            signature.append(("data", array.shape, array.dtype.str, value.requires_grad, position))
            continue
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            value = data[i] = np.asarray(value)
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                raise UncompilableError(
                    f"compile: argument {i} is an array of dtype {value.dtype}; a compiled step "
                    f"takes arrays of booleans, integers or real floating-point numbers")
            proxies[i] = sharing(value)
            signature.append(("data", value.shape, value.dtype.str, False, i))
            continue
        signature.append(("static", _static_key(value, i)))
    return tuple(signature), proxies, tuple(data)


def _static_key(value, position):
    """What a static argument keys its program by: its type and value (a float by its bits, so
    -0.0 and nan are values of their own), or a refusal for an unhashable argument."""
    if isinstance(value, float):
        return float, value.hex() if not math.isnan(value) else "nan"
    if isinstance(value, tuple):
        return tuple, tuple(_static_key(item, position) for item in value)
    try:
        hash(value)
    except TypeError:
        raise UncompilableError(
            f"compile: argument {position} is a {type(value).__name__}, which can be neither data "
            f"(a Tensor or an array, checked at every call) nor static (a hashable value such as a "
            f"number, a string, None or a tuple of them, which keys a program of its own); pass "
            f"its arrays as arguments of their own") from None
    if isinstance(value, (Tensor, np.ndarray)):  # pragma: no cover - unhashable, read above
        raise AssertionError
    return type(value), value


def _deliver(args, proxies):
    """Each Tensor argument's gradient, from the leaf that stood in for it while tracing, added
    to its ``.grad`` as ``backward()`` adds it."""
    done = set()
    for i, proxy in proxies.items():
        value = args[i]
        if isinstance(value, Tensor) and proxy._grad is not None and id(proxy) not in done:
            done.add(id(proxy))
            value._grad = accumulated(value._grad, proxy._grad, value.data.dtype)


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


# --- programs ----------------------------------------------------------------------------------

class _Compiled:
    """A program, what it was traced with, and its replay (written once the graph was confirmed,
    at its second call)."""

    def __init__(self, program, args, trace):
        self.program = program
        self.calls = 1
        self.refused = False
        self.replay = self.source = None
        self.statics = tuple((i, _static_key(a, i)) for i, a in enumerate(args)
                             if not isinstance(a, (Tensor, np.ndarray, np.generic)))
        # what a replay changes besides .grad: put back before an eager rerun
        self.generators = [value for _, op, _, params in program.ops
                           for value in params.values() if isinstance(value, np.random.Generator)]
        self.state_arrays = [value for _, op, _, params in program.ops if op.updates_state
                             for value in params.values() if isinstance(value, np.ndarray)]
        self.updates_state = bool(self.generators or self.state_arrays)
        self.watch(trace)

    def watch(self, trace):
        """Remember the modules ``trace`` saw and everything of theirs a replay depends on: each
        one's attributes by identity, and its mode; and write ``unchanged``, the check of the
        call's static arguments and of all of these that the fast path makes."""
        modules = {}
        for module in trace.modules.values():
            for _, descendant in module.named_modules():
                modules.setdefault(id(descendant), descendant)
        self.modules = list(modules.values())
        self.modes = tuple(bool(m.training) for m in self.modules)
        self.attributes = [(vars(m), tuple(vars(m).items())) for m in self.modules]
        self.names = trace.names
        self.unchanged = _unchanged_function(self)

    def same_modes(self) -> bool:
        return all(bool(m.training) is mode for m, mode in zip(self.modules, self.modes))

    def state_matches(self) -> bool:
        """Whether every watched module has its traced mode and the same attribute objects."""
        if not self.same_modes():
            return False
        for holder, key, value in self.names:
            if _bound(holder, key) is not value:
                return False
        for attributes, items in self.attributes:
            if len(attributes) != len(items):
                return False
            for name, value in items:
                if attributes.get(name, _MISSING) is not value:
                    return False
        return True

    def save_state(self):
        if not (self.generators or self.state_arrays):
            return None
        return ([g.bit_generator.state for g in self.generators],
                [array.copy() for array in self.state_arrays])

    def restore_state(self, saved):
        if saved is None:
            return
        for generator, state in zip(self.generators, saved[0]):
            generator.bit_generator.state = state
        for array, copy in zip(self.state_arrays, saved[1]):
            array[...] = copy


_MISSING = object()


def _unchanged_function(compiled):
    """``unchanged(args)``: whether a call reads what ``compiled`` was traced with, its static
    arguments, the names its function reads, each watched module's mode and attributes, as
    one generated function of identity tests in a row (what a call on the fast path pays).
    It is ``state_matches`` and the static part of the signature, written out once: a False
    sends the call to the general path, which checks them one by one (and also takes a
    ``training`` that is truthy without being True, which this test does not)."""
    constants = {"quiet_key": _quiet_key}

    def name(value):
        constants[f"c{len(constants)}"] = value
        return f"c{len(constants) - 1}"

    lines = []
    for i, key in compiled.statics:
        lines.append(f"if len(args) <= {i} or quiet_key(args[{i}]) != {name(key)}: return False")
    for holder, key, value in compiled.names:
        read = f"{name(holder)}.cell_contents" if key is None else f"{name(holder)}[{name(key)}]"
        lines.append(f"if {read} is not {name(value)}: return False")
    for module, mode in zip(compiled.modules, compiled.modes):
        lines.append(f"if {name(module)}.training is not {mode}: return False")
    for attributes, items in compiled.attributes:
        holder = name(attributes)
        lines.append(f"if len({holder}) != {len(items)}: return False")
        lines += [f"if {holder}[{name(key)}] is not {name(value)}: return False" for key, value in items]
    # an empty cell, a name or an item gone: what _bound reads as missing
    source = "\n".join(["def unchanged(args):", "    try:"] + ["        " + line for line in lines]
                       + ["        return True", "    except (LookupError, ValueError):",
                          "        return False"])
    exec(builtins.compile(source, "<ag.compile checks>", "exec"), constants)  # noqa: S102 - our own source
    return constants["unchanged"]


_ITEMS_WATCHED = 64  # a longer container (a data set) is watched as a whole, not item by item


def _names_of(function) -> list:
    """(holder, key, value) for each value ``function`` names through its closure or its
    globals (a cell with key None, or a dict and a name), and each item of such a list, tuple
    or dict: a replay bakes in what they were when traced, so rebinding one (``W = new
    Tensor``, ``scale = 0.5``, ``params[0] = ...``) must trace the step again."""
    function = getattr(function, "__func__", function)  # a bound method's function
    code = getattr(function, "__code__", None)
    if code is None:  # a callable object (a Module: watched as a module)
        return []
    found = []
    for cell in function.__closure__ or ():
        found.append((cell, None, _bound(cell, None)))
    namespace = function.__globals__
    found += [(namespace, name, namespace[name]) for name in code.co_names if name in namespace]
    for _, _, value in list(found):
        if isinstance(value, (dict, list, tuple)) and len(value) <= _ITEMS_WATCHED:
            items = value.items() if isinstance(value, dict) else enumerate(value)
            found += [(value, key, item) for key, item in items]
    return [entry for entry in found if entry[2] is not _MISSING
            and not isinstance(entry[2], (types.ModuleType, types.FunctionType, type))]


def _bound(holder, key):
    """What ``holder`` (a cell, a dict, a list or a tuple) holds at ``key`` now."""
    try:
        return holder.cell_contents if key is None else holder[key]
    except (ValueError, KeyError, IndexError):  # an empty cell, a name or item gone
        return _MISSING


def _quiet_key(value):
    try:
        return _static_key(value, 0)
    except UncompilableError:
        return _MISSING


class Program:
    """One traced graph as numbered slots: leaves (arguments or captured tensors) and ops."""

    def __init__(self, J, n_arguments, proxies, effects=()):
        order = topological_order(J.grad_fn, *effects)
        self.slot_of = {x: k for k, x in enumerate(order)}
        position_of, self.aliases = {}, []  # (first position, another) of one Tensor
        for i, proxy in proxies.items():
            first = position_of.setdefault(proxy, i)
            if first != i:
                self.aliases.append((first, i))
        self.n_arguments = n_arguments
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

    def load(self, proxies):
        """Refuse a captured leaf moved to another backend (as an argument there is refused),
        or that changed its shape, dtype or requires_grad since the trace (a GraphChangedError
        naming it)."""
        _refuse_other_backends([tensor for _, tensor in self.leaves])
        for k, tensor in self.leaves:
            array = tensor.data
            if (array.shape != self.shapes[k] or array.dtype != self.dtypes[k]
                    or tensor.requires_grad != self.needs[k]):
                raise GraphChangedError(
                    f"compiled step: {_name(tensor)} now has shape {array.shape}, dtype "
                    f"{array.dtype}, requires_grad={tensor.requires_grad}; it was traced with "
                    f"shape {self.shapes[k]}, dtype {self.dtypes[k]}, requires_grad={self.needs[k]}")

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
    return repr(tensor.name) if tensor.name else f"a tensor of shape {tensor.shape}"


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

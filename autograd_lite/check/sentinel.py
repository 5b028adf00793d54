"""The saturation / NaN sentinel: watch every operation as it runs and say where trouble starts.

Log-loss (eq 1) turns NaN long after the real cause: a sigmoid (eq 7) whose output rounded to
exactly 1.0 (any z > 36.7 in float64), a log of 0, an exp that overflowed. Switched on, the
sentinel observes each primitive through the engine's hooks (``tensor.forward_hooks`` after
every forward op, ``core.backward.backward_hooks`` after every vjp) and records, with the tensor's
name and the operation that made it:

- ``saturated``: a sigmoid output that is exactly 0 or 1;
- ``log-domain``: a log of a value <= 0;
- ``overflow``: an exp whose finite input gave inf;
- ``nan`` / ``inf``: any operation (built in or custom) whose output holds NaN or Inf although its
  inputs were finite (forward), or any vjp that made a NaN or Inf gradient out of a finite one
  (backward); also a leaf the user filled with NaN or Inf.

Only origins are reported, not the NaNs that merely flow on from them, so the first event is
the one to read. Origins are decided element by element: a NaN born in element 1 is reported
even though element 0 already held an inf, where the inputs were finite at element 1 (for an
op whose output elements match its inputs' by broadcasting; for any other, such as a matmul
or a sum, where every input was finite).

A sentinel watches the thread that switched it on, and only that one: training in another
thread at the same time is neither reported nor stopped by it. ``action`` chooses what happens at an event: "warn" (a ``SaturationWarning``
or ``NonFiniteWarning`` at once, and a record), "record" (only the record), or "raise" (a
``SentinelError`` at the operation itself, with the traceback pointing at your line).

    with check.sentinel() as watch:
        J = ag.binary_cross_entropy(A2, Y)
        J.backward()
    print(watch.report())
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
import weakref
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..core import backward, tensor as tensor_module
from ..core.graph import Node
from ..core.tensor import tensor_of
from ..errors import SaturationWarning
from ..optim import optimizer as optimizer_module

ACTIONS = ("warn", "record", "raise")

# The sentinels switched on now, innermost last.
_active: list = []


def active_sentinels() -> tuple:
    """The sentinels that are on now in this thread (``with check.sentinel(): ...``),
    outermost first."""
    here = threading.get_ident()
    return tuple(s for s in _active if s._thread == here)


class NonFiniteWarning(RuntimeWarning):
    """An operation produced NaN or Inf from finite values (see ``check.sentinel``)."""


class SentinelError(FloatingPointError):
    """Raised by a sentinel with ``action="raise"`` at the first event; ``.event`` holds it."""

    def __init__(self, event: "Event"):
        super().__init__(event.describe())
        self.event = event


@dataclass
class Event:
    """One thing the sentinel saw. ``tensor`` is the output of the op (forward) or the input
    whose gradient went bad (backward); its name is read when the event is described, so a
    name given right after the op (``.named("A[2]")``) still shows."""

    kind: str          # saturated, log-domain, overflow, nan, inf
    phase: str         # forward or backward
    op: str            # the primitive's name
    tensor: object     # the Tensor concerned
    inputs: tuple      # descriptions of the op's inputs at the time
    count: int         # how many elements are affected
    total: int         # out of how many
    index: tuple       # the first affected element
    detail: str        # the value(s) at that element and why it matters

    expression: str = ""  # how the tensor was made, captured before backward frees the graph

    @property
    def name(self) -> str:
        if self.tensor.name or not self.expression:
            return _describe(self.tensor)
        return self.expression

    def describe(self) -> str:
        arguments = ", ".join(self.inputs)
        if self.op == "leaf":
            where = f"leaf {self.name}"
        elif self.phase == "forward":
            # An unnamed output is shown as its expression, which already names op and inputs.
            where = f"{self.name} = {self.op}({arguments})" if self.tensor.name else self.name
        else:
            target = self.name if self.tensor.name else f"({self.name})"
            where = f"dJ/d{target} from the vjp of {self.op}({arguments})"
        return (f"{self.phase} {self.kind}: {where}: {self.count} of {self.total} elements "
                f"(first at {self.index}): {self.detail}")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "phase": self.phase, "op": self.op, "tensor": self.name,
                "inputs": list(self.inputs), "count": self.count, "total": self.total,
                "index": list(self.index), "detail": self.detail}

    __str__ = describe


class Sentinel:
    """A context manager that watches operations while it is active (see the module docstring).

    ``events`` lists what it saw, in order; ``clean`` is True when it saw nothing;
    ``report()`` is the readable summary. At most ``max_events`` are kept (each holds its
    tensor, and so its graph, alive); further ones are only counted in ``dropped``.
    """

    def __init__(self, action: str = "warn", max_events: int = 50):
        if action not in ACTIONS:
            raise ValueError(f"sentinel: action must be one of {', '.join(ACTIONS)}, got {action!r}")
        self.action = action
        self.max_events = max_events
        self.events: list[Event] = []
        self.dropped = 0
        # Nodes and leaves whose gradient already received a NaN/Inf: a vjp that passes it on
        # is not an origin.
        self._bad_grad = _IdentityMap()
        self._reported_leaves = _IdentitySet()
        # Outputs of ops seen while watching: without grad they have no node, like a leaf, but
        # a NaN in them was already judged when the op ran.
        self._produced = _IdentitySet()
        self._thread = None
        # Per optimizer, how many events were recorded at its last good step: a refused step
        # names the first non-finite origin after that.
        self._marks = weakref.WeakKeyDictionary()

    # ---- switching on and off ----------------------------------------------------------------
    def __enter__(self) -> "Sentinel":
        # the hooks are the engine's, shared by every thread: each call is filtered by thread
        self._thread = threading.get_ident()
        tensor_module.forward_hooks.append(self._forward)
        backward.backward_hooks.append(self._backward)
        # numpy's own "invalid value in multiply" warnings would repeat, without the tensor's
        # name or the operation, what the sentinel reports; it speaks for them while active.
        self._numpy_errors = np.errstate(divide="ignore", invalid="ignore", over="ignore")
        self._numpy_errors.__enter__()
        optimizer_module.step_observers.append(self._optimizer_step)
        _active.append(self)
        return self

    def __exit__(self, *exc_info):
        self._numpy_errors.__exit__(*exc_info)
        if self in _active:
            _active.remove(self)
        _remove(tensor_module.forward_hooks, self._forward)
        _remove(backward.backward_hooks, self._backward)
        _remove(optimizer_module.step_observers, self._optimizer_step)
        return False

    def _optimizer_step(self, optimizer, bad):
        """An optimizer's step observer: after a good step, remember how far the record went;
        for a step refused for the non-finite gradients of ``bad``, name the first origin since."""
        if threading.get_ident() != self._thread:
            return None
        start = self._marks.get(optimizer, 0)
        if not bad:
            self._marks[optimizer] = len(self.events)
            return None
        events = self.events[start:]
        nonfinite = [event for event in events if event.kind != "saturated"]
        if nonfinite or events:
            origin = (nonfinite or events)[0].describe()
        else:
            origin = "none recorded since the last good step" + (
                f" ({self.dropped} events were not kept: raise max_events)" if self.dropped else
                " (the value came from outside the recorded graph, e.g. a .grad set by hand)")
        return f"The first non-finite value was made here (check.sentinel): {origin}."

    @property
    def clean(self) -> bool:
        return not self.events and not self.dropped

    def report(self) -> str:
        if self.clean:
            return "sentinel: no saturation, no log of a value <= 0, no overflow, no NaN or Inf"
        lines = [f"sentinel: {len(self.events) + self.dropped} event(s); the first is where "
                 f"trouble starts"]
        lines += [f"  {i}. {event.describe()}" for i, event in enumerate(self.events, start=1)]
        if self.dropped:
            lines.append(f"  ... and {self.dropped} more not kept (max_events={self.max_events})")
        return "\n".join(lines)

    # ---- the hooks -----------------------------------------------------------------------------
    def _forward(self, op, inputs, output):
        if threading.get_ident() != self._thread:
            return
        out = output.data
        arrays = [t.data for t in inputs]
        self._produced.add(output)
        if not isinstance(out, np.ndarray) and backend.is_foreign_array(out):
            where = _watchable(out, op.name)
            if not _suspect(where.xp, op.name, out, arrays, [
                    t.data for t in inputs if t.is_leaf and t not in self._produced]):
                return  # all clear, read in the backend: only a flag came to the host
            # trouble: what the event describes comes to the host
            out, arrays = backend.to_numpy(out), [backend.to_numpy(a) for a in arrays]
        for t, array in zip(inputs, arrays):
            if (t.is_leaf and t not in self._produced and t not in self._reported_leaves
                    and _has_nonfinite(array)):
                self._reported_leaves.add(t)
                self._event(_nonfinite_event("forward", "leaf", t, (), array, None, None))
        specific = False
        rule = SPECIFIC.get(op.name)
        if rule is not None:
            kind, affected, detail, category = rule
            mask = affected(np, out, arrays[0])
            if mask.any():
                specific = True
                at = _first(mask)
                self._event(Event(kind, "forward", op.name, output, _names(inputs),
                                  int(mask.sum()), out.size, at, detail(out, arrays[0], at)),
                            category)
        if not specific and _has_nonfinite(out):
            born = _born(out, arrays, op.name)
            if born is not None:
                self._event(_nonfinite_event("forward", op.name, output, _names(inputs), out,
                                             born, "its inputs"))

    def _backward(self, node, input_grads):
        if threading.get_ident() != self._thread:
            return
        op, inputs = node.op, None
        # the elements of the gradient arriving at node that were already NaN or Inf (as far
        # as the vjps seen so far passed them on); None: none were
        incoming = self._bad_grad.get(node)
        reported = False
        for parent, grad in zip(node.parents, input_grads):
            if grad is None:
                continue
            values = grad.data if hasattr(grad, "data") else grad
            if not isinstance(values, np.ndarray) and backend.is_foreign_array(values):
                xp = _watchable(values, f"{op.name} vjp").xp
                if not _any(xp, _nonfinite(xp, values)):
                    continue
                values = backend.to_numpy(values)
            values = np.asarray(values)
            if not _has_nonfinite(values):
                continue
            born = _born(values, [] if incoming is None else [incoming], op.name)
            if born is not None and not reported:
                inputs = inputs or [_as_tensor(p) for p in node.parents]
                self._event(_nonfinite_event(
                    "backward", op.name, _as_tensor(parent), _names(inputs), values, born,
                    f"the gradient arriving at {op.name}'s output {_describe(tensor_of(node))}"))
                reported = True  # one origin per vjp call is enough
            self._bad_grad.merge(parent, _as_shape(values, parent.shape))

    def _event(self, event: Event, category=NonFiniteWarning):
        event.expression = _describe(event.tensor)
        if len(self.events) >= self.max_events:
            self.dropped += 1
            return
        self.events.append(event)
        if self.action == "raise":
            raise SentinelError(event)
        if self.action == "warn":
            warnings.warn(event.describe(), category, stacklevel=_stacklevel_outside_package())


# The operations whose trouble has a name of its own: op -> (kind, the mask of the affected
# elements in namespace xp given the output and the input, what the first one says, warning).
SPECIFIC = {
    "sigmoid": ("saturated", lambda xp, out, z: (out == 0.0) | (out == 1.0), lambda out, z, at: (
        f"z = {float(z[at]):.6g} gives a = {float(out[at]):g} exactly (eq 7 rounds once |z| > "
        f"36.7): log(a) or log(1 - a) of eq 1 is -inf, and s'(z) = a(1 - a) (eq 8) is 0. Use "
        f"binary_cross_entropy_with_logits(Z, Y)."), SaturationWarning),
    "log": ("log-domain", lambda xp, out, x: x <= 0, lambda out, x, at: (
        f"log({float(x[at]):g}) = {float(out[at]):g}; its vjp g / x divides by "
        f"{float(x[at]):g} too."), SaturationWarning),
    "exp": ("overflow", lambda xp, out, x: xp.isinf(out) & xp.isfinite(x), lambda out, x, at: (
        f"exp({float(x[at]):g}) overflows float64 (its largest is exp(709.78))."),
        NonFiniteWarning),
}


def sentinel(action: str = "warn", max_events: int = 50) -> Sentinel:
    """Switch the sentinel on: ``with check.sentinel() as watch: ...`` (see ``Sentinel``)."""
    return Sentinel(action=action, max_events=max_events)


# ---- helpers ------------------------------------------------------------------------------------

def _remove(hooks: list, hook) -> None:
    # Compare by identity: bound methods of two sentinels compare equal only if both are ours.
    for i, registered in enumerate(hooks):
        if registered == hook:
            del hooks[i]
            return


class _IdentitySet:
    """A set of objects by identity that keeps none of them alive (a WeakSet compares its
    members with ==, which is elementwise on Tensors)."""

    def __init__(self):
        self._refs = {}

    def add(self, item):
        self._refs[id(item)] = weakref.ref(item)

    def __contains__(self, item):
        ref = self._refs.get(id(item))
        return ref is not None and ref() is item


class _IdentityMap:
    """Per object (by identity, keeping none alive): which elements of its gradient received
    a NaN or Inf so far (that value there, 0 elsewhere)."""

    def __init__(self):
        self._items = {}

    def get(self, item):
        entry = self._items.get(id(item))
        return entry[1] if entry is not None and entry[0]() is item else None

    def merge(self, item, values):
        marks = np.where(np.isfinite(values), 0.0, values)
        before = self.get(item)
        if before is not None and before.shape == marks.shape:
            marks = np.where(marks != 0, marks, before)
        self._items[id(item)] = (weakref.ref(item), marks)


def _as_shape(values, shape):
    """A gradient as its parent's shape: broadcast dimensions summed away (as backward's
    un-broadcasting does) with NaN and Inf kept where any summed element held one."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape == tuple(shape):
        return values
    marks = np.where(np.isfinite(values), 0.0, values)
    extra = values.ndim - len(shape)
    if extra > 0:
        marks = _any_nonfinite(marks, tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and marks.shape[i] != 1)
    if axes:
        marks = _any_nonfinite(marks, axes)
    return marks.reshape(shape) if marks.size == int(np.prod(shape)) else np.zeros(shape)


def _any_nonfinite(marks, axes):
    nan = np.isnan(marks).any(axis=axes, keepdims=len(axes) and marks.ndim > 0)
    inf = np.isinf(marks).any(axis=axes, keepdims=len(axes) and marks.ndim > 0)
    return np.where(nan, np.nan, np.where(inf, np.inf, 0.0))


# The engine's primitives whose output element i is made from the inputs' elements i (after
# broadcasting): their NaN and Inf origins are decided per element. A matmul, a sum or a
# softmax mixes elements, and a user's primitive with inputs of another shape may too.
ELEMENTWISE = frozenset({
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sigmoid", "tanh", "relu", "abs",
    "maximum", "minimum", "clip", "square", "sqrt", "sin", "cos", "leaky_relu", "elu",
    "softplus", "normal_cdf", "gelu", "binary_cross_entropy_with_logits", "xlogy", "where"})
MIXING = frozenset({"matmul", "sum", "mean", "softmax", "log_softmax", "reshape", "transpose",
                    "broadcast_to", "getitem", "index_add"})


def _born(out, arrays, op_name=""):
    """Where ``out`` holds a NaN or Inf that its inputs did not hand it, or None.

    Element by element for an elementwise op (``ELEMENTWISE``, or a user's primitive whose
    inputs all have out's shape): an element is an origin where every input was finite at that element, whatever other
    elements held. For any other op (matmul, a sum, a reshape) elements do not correspond:
    its NaN and Inf are origins when every input was finite everywhere."""
    out = np.asarray(out)
    floats = [np.asarray(a) for a in arrays if np.asarray(a).dtype.kind in "fc"]
    bad_out = ~np.isfinite(out)
    try:
        fits = all(np.broadcast_shapes(a.shape, out.shape) == out.shape for a in floats)
    except ValueError:
        fits = False
    elementwise = fits and (op_name in ELEMENTWISE or (
        op_name not in MIXING and all(a.shape == out.shape for a in floats)))
    if elementwise:
        bad_in = np.zeros(out.shape, dtype=bool)
        for a in floats:
            bad_in |= np.broadcast_to(~np.isfinite(a), out.shape)
        born = bad_out & ~bad_in
    elif any(not np.all(np.isfinite(a)) for a in floats):
        return None
    else:
        born = bad_out
    return born if born.any() else None


def _watchable(array, op_name):
    """The backend of ``array``, which the sentinel can watch: every one but Dask's, where
    reading each operation's values as it runs would compute the graph at every operation."""
    where = backend.of(array)
    if where.is_dask:
        raise TypeError(
            f"sentinel: {op_name} ran on a Dask array; the sentinel reads every operation's "
            f"values as it runs, which on Dask would compute the graph at every operation. "
            f"Watch a sample on the host instead (X[:, :1000].to(np), or ag.to_numpy), or "
            f"leave the sentinel off for Dask tensors")
    return where


def _suspect(xp, op_name, out, arrays, leaves) -> bool:
    """Whether anything the forward hook reports may be there, read in the array's own
    namespace (one flag to the host, the arrays stay where they are): a NaN or Inf in the
    output or in a leaf, or what ``SPECIFIC`` names (a saturated sigmoid, a log of a value
    <= 0)."""
    if _any(xp, _nonfinite(xp, out)) or any(_any(xp, _nonfinite(xp, a)) for a in leaves):
        return True
    rule = SPECIFIC.get(op_name)
    return rule is not None and _any(xp, rule[1](xp, out, arrays[0]))


def _is_float(array) -> bool:
    return backend.dtype_kind(array.dtype) in "fc"


def _nonfinite(xp, array):
    return ~xp.isfinite(array) if _is_float(array) else None


def _any(xp, mask) -> bool:
    return mask is not None and bool(xp.any(mask))


def _as_tensor(x):
    """A graph entry as a Tensor: a leaf as it is, a node's result as a Tensor made by it."""
    return tensor_of(x) if isinstance(x, Node) else x


def _has_nonfinite(array) -> bool:
    array = np.asarray(array)
    return array.dtype.kind in "fc" and not np.all(np.isfinite(array))


def _first(mask: np.ndarray) -> tuple:
    return tuple(int(i) for i in np.argwhere(mask)[0]) if mask.ndim else ()


def _nonfinite_event(phase, op_name, tensor, inputs, values, born, source) -> Event:
    """The event for the NaN or Inf elements ``born`` (a mask; None: all of them) of values;
    ``source`` names what was finite at those elements."""
    values = np.asarray(values)
    if born is None:
        born = ~np.isfinite(values)
    nan = np.isnan(values) & born
    kind = "nan" if nan.any() else "inf"
    mask = nan if nan.any() else born
    at = _first(mask)
    if source is None:
        why = "the data given to the engine already holds it"
    else:
        why = f"{source} {'were' if source == 'its inputs' else 'was'} finite there"
        if phase == "backward":
            why += "; typically a 0 * inf or 0 / 0 inside this vjp"
    return Event(kind, phase, op_name, tensor, tuple(inputs), int(mask.sum()), values.size, at,
                 f"{float(values[at]) if values.ndim else float(values):g} appears; {why}.")


def _describe(t, depth: int = 2) -> str:
    """A tensor as a reader knows it: its name, else the expression that made it, e.g.
    ``log(sub(1, 'A[2]'))`` (``depth`` levels deep), with its name scope if any."""
    label = _expression(t, depth)
    if getattr(t, "scope", ()):
        label += f" in {'/'.join(t.scope)}"
    return label


def _expression(t, depth: int) -> str:
    if t.name:
        return repr(t.name)
    if t.op is None:
        if t.size == 1 and not backend.of(t.data).is_dask:
            return f"{float(backend.to_numpy(t.data).reshape(-1)[0]):g}"
        return f"<{'x'.join(map(str, t.shape))} {'leaf' if t.requires_grad else 'constant'}>"
    if depth == 0 or not t.parents:  # too deep, or the graph was freed by backward
        return f"<{t.op}>"
    return f"{t.op}({', '.join(_expression(p, depth - 1) for p in t.parents)})"


def _names(inputs) -> tuple:
    return tuple(_describe(t) for t in inputs)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _stacklevel_outside_package() -> int:
    """The stacklevel that makes a warning point at the user's line (the first frame outside
    autograd_lite), not at the engine's internals where the hook happened to run."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level

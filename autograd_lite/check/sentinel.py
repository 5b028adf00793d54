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
the one to read. ``action`` chooses what happens at an event: "warn" (a ``SaturationWarning``
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
import warnings
import weakref
from dataclasses import dataclass

import numpy as np

from ..core import backward, tensor as tensor_module
from ..core.graph import Node
from ..core.tensor import tensor_of
from ..errors import SaturationWarning

ACTIONS = ("warn", "record", "raise")

# The sentinels switched on now, innermost last: an optimizer refusing a non-finite gradient
# asks them which operation made the first non-finite value (see ``active_sentinels``).
_active: list = []


def active_sentinels() -> tuple:
    """The sentinels that are on now (``with check.sentinel(): ...``), outermost first."""
    return tuple(_active)


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
        self._bad_grad = _IdentitySet()
        self._reported_leaves = _IdentitySet()
        # Outputs of ops seen while watching: without grad they have no node, like a leaf, but
        # a NaN in them was already judged when the op ran.
        self._produced = _IdentitySet()

    # ---- switching on and off ----------------------------------------------------------------
    def __enter__(self) -> "Sentinel":
        tensor_module.forward_hooks.append(self._forward)
        backward.backward_hooks.append(self._backward)
        # numpy's own "invalid value in multiply" warnings would repeat, without the tensor's
        # name or the operation, what the sentinel reports; it speaks for them while active.
        self._numpy_errors = np.errstate(divide="ignore", invalid="ignore", over="ignore")
        self._numpy_errors.__enter__()
        _active.append(self)
        return self

    def __exit__(self, *exc_info):
        self._numpy_errors.__exit__(*exc_info)
        if self in _active:
            _active.remove(self)
        _remove(tensor_module.forward_hooks, self._forward)
        _remove(backward.backward_hooks, self._backward)
        return False

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
        out = output.data
        arrays = [t.data for t in inputs]
        self._produced.add(output)
        for t in inputs:
            if (t.is_leaf and t not in self._produced and t not in self._reported_leaves
                    and _has_nonfinite(t.data)):
                self._reported_leaves.add(t)
                self._event(_nonfinite_event("forward", "leaf", t, (), t.data,
                                             "the data given to the engine already holds it"))
        specific = False
        if op.name == "sigmoid":
            flat = (out == 0.0) | (out == 1.0)
            if flat.any():
                specific = True
                at = _first(flat)
                self._event(Event(
                    "saturated", "forward", op.name, output, _names(inputs), int(flat.sum()),
                    out.size, at,
                    f"z = {float(arrays[0][at]):.6g} gives a = {float(out[at]):g} exactly (eq 7 "
                    f"rounds once |z| > 36.7): log(a) or log(1 - a) of eq 1 is -inf, and "
                    f"s'(z) = a(1 - a) (eq 8) is 0. Use binary_cross_entropy_with_logits(Z, Y).",
                ), SaturationWarning)
        elif op.name == "log":
            bad = arrays[0] <= 0
            if bad.any():
                specific = True
                at = _first(bad)
                self._event(Event(
                    "log-domain", "forward", op.name, output, _names(inputs), int(bad.sum()),
                    out.size, at,
                    f"log({float(arrays[0][at]):g}) = {float(out[at]):g}; its vjp g / x divides "
                    f"by {float(arrays[0][at]):g} too.",
                ), SaturationWarning)
        elif op.name == "exp":
            overflow = np.isinf(out) & np.isfinite(arrays[0])
            if overflow.any():
                specific = True
                at = _first(overflow)
                self._event(Event(
                    "overflow", "forward", op.name, output, _names(inputs), int(overflow.sum()),
                    out.size, at,
                    f"exp({float(arrays[0][at]):g}) overflows float64 (its largest is exp(709.78)).",
                ), NonFiniteWarning)
        if not specific and _has_nonfinite(out) and not any(_has_nonfinite(a) for a in arrays):
            self._event(_nonfinite_event("forward", op.name, output, _names(inputs), out,
                                         "its inputs were all finite"))

    def _backward(self, node, input_grads):
        op, inputs = node.op, None
        incoming_bad = node in self._bad_grad
        for parent, grad in zip(node.parents, input_grads):
            if grad is None:
                continue
            values = np.asarray(grad.data if hasattr(grad, "data") else grad)
            if not _has_nonfinite(values):
                continue
            if not incoming_bad:
                inputs = inputs or [_as_tensor(p) for p in node.parents]
                self._event(_nonfinite_event(
                    "backward", op.name, _as_tensor(parent), _names(inputs), values,
                    f"the gradient arriving at {op.name}'s output {_describe(tensor_of(node))} "
                    f"was finite; typically a 0 * inf or 0 / 0 inside this vjp"))
                incoming_bad = True  # one origin per vjp call is enough
            self._bad_grad.add(parent)

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


def _as_tensor(x):
    """A graph entry as a Tensor: a leaf as it is, a node's result as a Tensor made by it."""
    return tensor_of(x) if isinstance(x, Node) else x


def _has_nonfinite(array) -> bool:
    array = np.asarray(array)
    return array.dtype.kind in "fc" and not np.all(np.isfinite(array))


def _first(mask: np.ndarray) -> tuple:
    return tuple(int(i) for i in np.argwhere(mask)[0]) if mask.ndim else ()


def _nonfinite_event(phase, op_name, tensor, inputs, values, why) -> Event:
    values = np.asarray(values)
    nan = np.isnan(values)
    kind = "nan" if nan.any() else "inf"
    mask = nan if nan.any() else ~np.isfinite(values)
    at = _first(mask)
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
        if t.data.size == 1:
            return f"{float(t.data.reshape(-1)[0]):g}"
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

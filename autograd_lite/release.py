"""Releasing recorded values that nothing will read again: eager memory close to numpy's.

A hand-written numpy step keeps A[l] for backward and lets W·A and Z[l] go as soon as the next
line rebinds them. PyTorch does the same: a tensor's array dies with the tensor unless a
backward rule saved it. Here a recorded tensor *is* its graph node, so A[1] = s(Z[1]) keeps
Z[1], and with it Z[1]'s array, alive until backward, although sigmoid's backward rule reads
only A[1] (eq 8). That is what made an eager step hold about twice a numpy step's memory on a
deep network.

So the engine gives such an array up itself, when both hold:

- no backward rule will read it: its own op's vjp does not read its output
  (``Primitive.vjp_reads_output``) and no op that consumed it reads it
  (``Primitive.vjp_reads_inputs``; for ``"others"``, as in mul and matmul, input i is read
  only to form the *other* inputs' gradients, so it is read only if one of those needs one);
- nothing outside the graph holds the tensor: its reference count is exactly its uses as an
  input in the graph. Your variable ``Z`` holding it, a list of tensors you kept, a
  ``retain_grad`` you asked for from a live handle, a hook that stored it: each keeps the value.

The test runs a few recorded ops after the tensor was made (``RELEASE_DELAY``, time for a loop
like ``Z = W @ A + b; A = Z.sigmoid()`` to rebind ``Z``), and for every waiting tensor when a
backward starts. A released tensor keeps its shape, dtype, name, op and place in the graph;
its ``data`` becomes a ``ReleasedValue``, which refuses to act as an array with an error that
says why. Graph pictures recompute released values from the graph (``value_of``), exactly, as
long as the graph is there. ``keep_values()`` turns releasing off, e.g. to walk ``.parents`` by
hand and read every value.

The test errs only towards keeping: threads may lose an increment of a use count (the count
is then too low to match); a recorded result that dies before backward (a probe computed and
dropped) marks its inputs as needed (``Tensor.__del__``), since the use it added to their
counts would otherwise stand in for the user's own variable; and the queue holds weak
references, so it never keeps a dropped graph alive.
"""
from __future__ import annotations

import collections
import sys
import weakref
from math import prod

from .errors import ReleasedValueError

# How many recorded ops a candidate waits, at least, before its reference count is looked at.
# NOTE: long enough for the usual loop to drop its handle (Z is rebound three ops after it was
# made in `Z = W @ A + b; A = Z.sigmoid()`), short enough that few arrays wait; the ones still
# waiting when backward starts are looked at then. They are looked at in batches of this many
# (one call per batch, not per op).
RELEASE_DELAY = 4

# Every size is released: the stand-in is shared, so even a 4-number array (about 150 bytes
# with its ndarray object) is worth it; on the seed network at m = 1 that is what brings the
# step's peak under 1.2x the hand-written one's.


class _State:
    """What the recorder reads on every op: the queue of candidates (NOTE: weak references,
    so the queue never keeps a tensor, or the graph behind it, alive, and adds nothing to the
    reference count the test reads) and whether values are released at all (not inside
    keep_values())."""
    __slots__ = ("waiting", "releasing", "keeping")

    def __init__(self):
        self.waiting = collections.deque()
        self.releasing = True
        self.keeping = 0  # open keep_values() blocks, in any thread: keeping is always safe


state = _State()
_getrefcount = sys.getrefcount


class ReleasedValue:
    """Stands in for the array of a recorded value that the engine released (see the module
    docstring). Has the array's ``shape``, ``dtype``, ``ndim``, ``size``; anything that would
    read the numbers raises ``ReleasedValueError``."""

    __slots__ = ("shape", "dtype", "op_name")

    def __init__(self, shape, dtype, op_name):
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "op_name", op_name)

    def __setattr__(self, name, value):
        raise AttributeError("a ReleasedValue is shared and read-only")

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: prod(self.shape))

    def _refuse(self, *args, **kwargs):
        raise ReleasedValueError(
            f"the value of this {self.op_name} result (shape {self.shape}) was released: no "
            f"backward rule reads it and nothing held the tensor. Keep a variable bound to the "
            f"tensor to keep its value, or record the graph inside ag.keep_values(); graph "
            f"pictures recompute it (ag.draw(J, values=True))")

    __array__ = __getitem__ = __float__ = __int__ = __iter__ = __len__ = __bool__ = _refuse
    # NOTE: operators are looked up on the type, never through __getattr__: without these,
    # `2.0 * value` (as a vjp may write it) was Python's bare "unsupported operand" TypeError
    # and `value == 0` silently False.
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _refuse
    __pow__ = __rpow__ = __matmul__ = __rmatmul__ = __neg__ = __pos__ = __abs__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = __index__ = __complex__ = _refuse
    __hash__ = object.__hash__  # shared stand-ins stay hashable (defining __eq__ unsets it)

    def __getattr__(self, name):  # .item(), .copy(), .T, .sum(), ...: any other array attribute
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse()

    def __repr__(self):
        return f"<value of {self.op_name} released: shape {self.shape}, {self.dtype}>"


def is_released(tensor) -> bool:
    """True if the engine gave up this tensor's array (see the module docstring)."""
    return tensor._uses is None


def release_due():
    """Look at the candidates that have waited ``RELEASE_DELAY`` ops or more. Called by the
    recorder (``tensor._made_by``) once ``2 * RELEASE_DELAY`` are waiting."""
    _look_at(len(state.waiting) - RELEASE_DELAY)


def release_waiting():
    """Look at every candidate now (backward is starting: the forward pass is over)."""
    _look_at(len(state.waiting))


def _look_at(count):
    """Release each of the ``count`` oldest candidates that nothing outside the graph holds
    and no backward rule reads. NOTE: one loop with everything inline (no call per
    candidate): about 0.2 us less each."""
    waiting = state.waiting
    for _ in range(count):
        try:
            tensor = waiting.popleft()()
        except IndexError:  # another thread emptied the queue meanwhile
            return
        if tensor is None or tensor._needed:
            continue  # gone already, or read by a backward rule
        if tensor._input0 is None and tensor._inputs is None:
            continue  # already backpropagated (its node freed)
        uses = tensor._uses
        # NOTE: the reference count test: its uses as an input, plus this frame's `tensor`
        # and the call's argument (_UNHELD, measured below). Any other holder makes it larger.
        if uses is not None and _getrefcount(tensor) == _UNHELD + uses:
            data = tensor.data
            key = (data.shape, tensor._op)
            stand_in = _stand_ins.get(key)
            if stand_in is None or stand_in.dtype is not data.dtype:
                stand_in = _new_stand_in(key, data.dtype)
            tensor.data = stand_in
            tensor._uses = None


def _new_stand_in(key, dtype):
    if len(_stand_ins) >= 256:
        _stand_ins.clear()
    shape, op = key
    stand_in = _stand_ins[key] = ReleasedValue(shape, dtype, op.name)
    return stand_in


# NOTE: one ReleasedValue per (shape, op) (and dtype: the dtype is compared by identity, not
# hashed, about 0.1 us less per release), shared by every tensor released with them:
# a new one per release would be one more object per op for Python's cyclic garbage collector
# to walk again and again while the graph is alive (it is immutable, so sharing is safe).
_stand_ins = {}


def _measure_unheld():
    """The reference count that _look_at sees for a tensor nothing else holds, measured with
    the same steps on an object held only by the probe's variable."""
    class Probe:
        __slots__ = ("__weakref__",)

    def count(waiting):  # as _look_at, up to the test
        for _ in range(1):
            try:
                tensor = waiting.popleft()()
            except IndexError:
                return None
            return _getrefcount(tensor)

    probe = Probe()
    return count(collections.deque([weakref.ref(probe)])) - 1  # minus the `probe` variable


# NOTE: measured, not assumed: the count differs between Python versions. Off CPython
# reference counts are not exact, so nothing is ever released there.
_UNHELD = _measure_unheld() if sys.implementation.name == "cpython" else -1


class keep_values:
    """``with ag.keep_values(): ...``: the engine releases no recorded value made inside the
    block, so every tensor reached through ``.parents`` keeps its ``.data``. It costs the
    memory of every intermediate (about twice a numpy step's on a deep network). It applies
    to all threads while open (keeping a value is always safe)."""

    def __enter__(self):
        state.keeping += 1
        state.releasing = False
        return self

    def __exit__(self, *exc_info):
        state.keeping -= 1
        if not state.keeping:
            state.releasing = True
        return False


def value_of(tensor, memo=None):
    """``tensor``'s array, recomputed from its inputs if it was released (and theirs, as far
    back as needed), as graph pictures need it: the same forward on the same arrays, so the
    same numbers, as long as the leaves have not changed since. ``memo`` (a dict, tensor to
    array) shares the work between calls on one graph. Raises ReleasedValueError if backward
    has already freed the graph that would recompute it. Nothing is stored back."""
    if tensor._uses is not None:
        return tensor.data
    values = {} if memo is None else memo
    # NOTE: iterative post-order: a long chain of released values must not hit the recursion limit.
    stack = [tensor]
    while stack:
        t = stack[-1]
        if t in values:
            stack.pop()
        elif t._uses is not None:
            values[t] = t.data
            stack.pop()
        elif not t.parents:  # backward has freed the node that would recompute it
            t.data._refuse()
        else:
            missing = [p for p in t.parents if p not in values]
            if missing:
                stack.extend(missing)
            else:
                arrays = [values[p] for p in t.parents]
                values[t] = t._op.forward(*arrays, **(t._params or {}))
                stack.pop()
    return values[tensor]

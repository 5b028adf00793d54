"""Optimizers: the update step of eqs 74-75, with momentum; Adam, AdamW, RMSprop.

``optimizer.zero_grad()``, ``J.backward()``, ``optimizer.step()``. An optimizer only reads the
gradients the engine left in ``.grad`` (dW[l], db[l] of eqs 79-80, 83-84) and moves each
parameter; it differentiates nothing. ``optimizer.lr`` can be changed between steps; the
schedules of ``optim.lr_scheduler`` (StepLR, ExponentialLR, CosineAnnealingLR) set it per epoch.

A step is taken whole or not at all: every gradient is checked first, and one holding NaN or
Inf raises ``NonFiniteGradientError`` (or, with ``nonfinite="skip"``, skips the step) with no
parameter and no buffer changed, so a training run never turns the model into NaN silently.
Hyperparameters are checked where given, where set later and where loaded.

Updates replace ``parameter.data`` with a new array rather than writing into the old one, so an
array taken earlier (``before = W.numpy()``) stays a record of the old value. A graph kept with
``retain_graph=True`` reads its parameters' current values at backward time: after a step,
run the forward pass again.

``optimizer.state_dict()`` / ``optimizer.load_state_dict(state)`` and ``optimizer.save(path)`` /
``optimizer.load(path)`` keep what a step depends on besides the parameters themselves (SGD's
velocities, Adam's moments and step counts, the hyperparameters), so training stopped after k
steps and resumed from a saved model and optimizer takes the same steps as one that never
stopped, bit for bit. The file is an ``.npz`` of numbers and strings written atomically, read
with ``allow_pickle=False``; everything is checked before anything changes.
"""
from __future__ import annotations

import math
import numbers
import os
import sys
import weakref

import numpy as np

from ..errors import ShapeError
from ..io import BadFileError, as_bad_file, read_npz
from ..nn.serialization import write_npz
from ..core.tensor import Tensor

# The layout of state_dict() and of the saved file; a reader refuses any other number.
STATE_FORMAT = 1

# What step() does with a gradient holding NaN or Inf: refuse it (the default), or skip the step.
NONFINITE = ("raise", "skip")


class NonFiniteGradientError(FloatingPointError):
    """``optimizer.step()`` found NaN or Inf in a gradient and changed nothing. ``.indices``
    lists the positions (in ``optimizer.params``) of the parameters concerned."""

    def __init__(self, message, indices=()):
        super().__init__(message)
        self.indices = list(indices)


class Optimizer:
    """Holds the parameters (each once) and the learning rate; subclasses define ``update``."""

    def __init__(self, params, lr, nonfinite="raise"):
        names = None
        if hasattr(params, "named_parameters") and callable(params.named_parameters):
            # A module tells the dotted names too; the saved state then records them, and a
            # load can tell parameters of another model (or another order) from ours.
            named = list(params.named_parameters())
            names = [name for name, _ in named]
            params = [parameter for _, parameter in named]
        elif hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: pass a list of parameters "
                            f"(model.parameters()), not a single Tensor")
        unique, unique_names, seen = [], [], set()
        for index, parameter in enumerate(params):
            if not isinstance(parameter, Tensor) or not parameter.requires_grad:
                raise TypeError(f"{type(self).__name__}: parameter {index} is "
                                f"{'a Tensor without requires_grad' if isinstance(parameter, Tensor) else type(parameter).__name__}; "
                                f"an optimizer needs Tensors with requires_grad=True (nn.Parameter)")
            if not parameter.is_leaf:
                raise TypeError(f"{type(self).__name__}: parameter {index} "
                                f"({parameter.name or 'unnamed'}) was computed by {parameter.op}; "
                                f"only leaves (parameters you created) can be updated")
            if id(parameter) not in seen:  # shared weights are updated once
                seen.add(id(parameter))
                unique.append(parameter)
                unique_names.append(None if names is None else names[index])
        if not unique:
            raise ValueError(f"{type(self).__name__}: got an empty list of parameters")
        self.params = unique
        self.param_names = unique_names  # dotted names when built from a module, else None
        self.lr = lr
        self.steps = 0
        if nonfinite not in NONFINITE:
            raise ValueError(f"{type(self).__name__}: nonfinite must be one of "
                             f"{', '.join(map(repr, NONFINITE))}, got {nonfinite!r}")
        self.nonfinite = nonfinite
        self.skipped_steps = 0     # steps refused for a non-finite gradient, with nonfinite="skip"
        self.last_skipped = None   # the message of the last one
        # Per active sentinel, how many events it had seen at our last good step: a refused
        # step names the first non-finite origin after that.
        self._sentinel_marks = weakref.WeakKeyDictionary()

    @property
    def lr(self) -> float:
        """The learning rate alpha of eqs 74-75; may be changed between steps."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _learning_rate(type(self).__name__, value)

    def zero_grad(self):
        """Reset every parameter's ``.grad`` (gradients add up across backward calls)."""
        for parameter in self.params:
            parameter.grad = None

    def step(self):
        """Move every parameter that has a gradient; parameters with ``.grad`` None are left
        alone (they did not take part in the last loss).

        Every gradient is checked before any parameter moves. A gradient of another shape is a
        ValueError; one holding NaN or Inf is a ``NonFiniteGradientError`` naming each such
        parameter with its counts (and, while ``check.sentinel()`` is on, the operation that made
        the first non-finite value), or, with ``nonfinite="skip"``, a step not taken, counted in
        ``skipped_steps``. Either way no parameter and no optimizer state changes. A step whose
        result would be non-finite (finite gradients, an overflowing update) is refused the same
        way. Returns True if the step was taken."""
        owner = f"{type(self).__name__}.step"
        grads, bad = [], []
        for index, parameter in enumerate(self.params):
            grad = parameter.grad
            if grad is None:
                continue
            if grad.shape != parameter.shape:
                raise ValueError(f"{owner}: {self._who(index)} has shape {parameter.shape} but "
                                 f"its .grad has shape {grad.shape}; nothing was changed")
            grads.append((index, grad))
            if not np.all(np.isfinite(grad)):
                bad.append((index, int(np.isnan(grad).sum()), int(np.isinf(grad).sum())))
        if bad:
            message = self._nonfinite_message(owner, bad)
            if self.nonfinite == "skip":
                self.skipped_steps += 1
                self.last_skipped = message
                return False
            raise NonFiniteGradientError(message, [index for index, _, _ in bad])
        saved = self._save_buffers()
        new_values = []
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused just below
            for index, grad in grads:
                new_values.append(self.update(index, self.params[index].data, grad))
        broken = [index for (index, _), value in zip(grads, new_values)
                  if not np.all(np.isfinite(value))]
        if broken:
            self._restore_buffers(saved)
            raise FloatingPointError(
                f"{owner}: the gradients are finite but the update would make "
                f"{', '.join(self._who(index) for index in broken)} non-finite (an overflow: "
                f"is the learning rate {self.lr} too large?); no parameter and no optimizer "
                f"state changed")
        for (index, _), value in zip(grads, new_values):
            self.params[index].data = value
        self.steps += 1
        self._mark_sentinels()
        return True

    def update(self, index, value, grad):
        raise NotImplementedError

    # The lists holding per-parameter buffers: a refused step puts their entries back. Each
    # update replaces a buffer (never writes into it), so a shallow copy is a snapshot.
    BUFFER_LISTS = ()

    def _save_buffers(self):
        return {name: list(getattr(self, name)) for name in self.BUFFER_LISTS}

    def _restore_buffers(self, saved):
        for name, values in saved.items():
            setattr(self, name, values)

    def _nonfinite_message(self, owner, bad):
        parts = [f"{self._who(index)} of shape {self.params[index].shape}: {nan} nan and {inf} inf "
                 f"of {self.params[index].data.size}" for index, nan, inf in bad]
        origin = self._sentinel_origin()
        where = (f" The first non-finite value was made here (check.sentinel): {origin}." if origin
                 else " Switch check.sentinel() on to see the operation that made the first one.")
        return (f"{owner}: non-finite gradient in {len(bad)} of {len(self.params)} parameters: "
                f"{'; '.join(parts)}. No parameter and no optimizer state changed.{where} "
                f"(nonfinite=\"skip\" skips such steps instead, as loss scalers do.)")

    def _sentinel_origin(self):
        if "autograd_lite.check.sentinel" not in sys.modules:
            return None  # no sentinel was ever switched on
        from ..check.sentinel import active_sentinels
        watches = active_sentinels()
        for watch in watches:
            start = self._sentinel_marks.get(watch, 0)
            events = watch.events[start:]
            nonfinite = [event for event in events if event.kind != "saturated"]
            if nonfinite or events:
                return (nonfinite or events)[0].describe()
        if watches:
            dropped = sum(watch.dropped for watch in watches)
            return (f"none recorded since the last good step"
                    + (f" ({dropped} events were not kept: raise max_events)" if dropped else
                       " (the value came from outside the recorded graph, e.g. a .grad set by "
                       "hand)"))
        return None

    def __getstate__(self):
        # The sentinel marks are weak references, which neither pickle nor deep-copy; a copy
        # starts without them (it names the first origin any active sentinel recorded).
        state = self.__dict__.copy()
        state.pop("_sentinel_marks", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._sentinel_marks = weakref.WeakKeyDictionary()

    def _mark_sentinels(self):
        if "autograd_lite.check.sentinel" not in sys.modules:
            return  # no sentinel was ever switched on
        from ..check.sentinel import active_sentinels
        for watch in active_sentinels():
            self._sentinel_marks[watch] = len(watch.events)

    def __repr__(self):
        return f"{type(self).__name__}({self.describe()}, {len(self.params)} parameters)"

    # --- saving and resuming ------------------------------------------------------------------
    # A subclass lists its hyperparameters (name -> checker) and its buffers per parameter, and
    # overrides the small methods at the end of this section; the checks and the file are shared.
    HYPERPARAMETERS = {"lr": lambda owner, label, value: _learning_rate(owner, value)}
    BUFFERS = ()

    def state_dict(self) -> dict:
        """Everything the next step depends on besides the parameters' values, as plain data.

        ``{"format": 1, "optimizer": "Adam", "steps": k, "hyperparameters": {"lr": ..., ...},
        "parameters": {0: {"name": "layers.0.W", "tensor_name": "W[1]", "shape": (4, 3),
        <buffers>}, 1: ...}}``, keyed by each parameter's position in ``optimizer.params``.
        Buffers are copies (numpy arrays; a buffer not created yet, before the parameter's
        first step, is None); ``name`` is the dotted name if the optimizer was given a module,
        else None. No Tensors and nothing that needs pickle: ``save`` writes it as an ``.npz``.
        """
        hyperparameters = self._hyperparameters()
        parameters = {}
        for index, parameter in enumerate(self.params):
            parameters[index] = {"name": self.param_names[index], "tensor_name": parameter.name,
                                 "shape": tuple(parameter.shape), **self._buffers(index)}
        return {"format": STATE_FORMAT, "optimizer": type(self).__name__, "steps": self.steps,
                "hyperparameters": hyperparameters, "parameters": parameters}

    def load_state_dict(self, state: dict):
        """Resume from ``state`` (from ``state_dict()``): hyperparameters, step counts, buffers.

        Like PyTorch, the saved hyperparameters replace the current ones (``lr`` included, so a
        schedule resumes where it was). Everything is checked first: another optimizer kind, a
        different number of parameters, another parameter name or shape, a buffer whose shape
        differs from its parameter's (the message names the parameter and both shapes), a
        missing or unknown key, a bad value. On any error the optimizer is unchanged."""
        self._load(state, f"{type(self).__name__}.load_state_dict")
        return self

    def save(self, path):
        """Write ``state_dict()`` to ``path`` as an ``.npz`` (no suffix is added), atomically:
        a temp file in the same directory, then ``os.replace``; a failed write leaves the old
        file (or none). Keys are flat: ``optimizer``, ``hyperparameters.lr``,
        ``parameters.0.m``, ...; every value is a numeric or string array (never pickled)."""
        write_npz(path, _flatten(self.state_dict()))

    def load(self, path):
        """Read a file written by ``save`` with ``allow_pickle=False`` (loading never runs code)
        and ``load_state_dict`` it; the optimizer is unchanged if anything is wrong."""
        source = f"{type(self).__name__}.load {os.fspath(path)!r}"
        state = _read_npz(path, source, self.BUFFERS)
        try:
            self._load(state, source)
        except ValueError as error:  # ShapeError included: one BadFileError naming the file
            raise as_bad_file(error, path) from None
        return self

    def _load(self, state, source):
        hyperparameters, steps, buffers = self._checked_state(state, source)
        # Nothing below can fail: every value was checked and converted above.
        self._set_hyperparameters(hyperparameters)
        self.steps = steps
        for index, prepared in enumerate(buffers):
            self._set_buffers(index, prepared)

    def _checked_state(self, state, source):
        kind = type(self).__name__
        _expect_keys(state, {"format", "optimizer", "steps", "hyperparameters", "parameters"},
                     "the state", source)
        if not (_whole(state["format"]) and state["format"] == STATE_FORMAT):
            raise _refused(ValueError, source, f"the state has format {state['format']!r}; this "
                                               f"version reads format {STATE_FORMAT}")
        if not (isinstance(state["optimizer"], str) and state["optimizer"] == kind):
            raise _refused(ValueError, source, f"the state was saved by {state['optimizer']!r}, "
                                               f"not {kind!r}")
        steps = _count(source, "steps", state["steps"])
        saved = state["hyperparameters"]
        _expect_keys(saved, set(self.HYPERPARAMETERS), "hyperparameters", source)
        hyperparameters = {}
        for key, check in self.HYPERPARAMETERS.items():
            try:
                hyperparameters[key] = check("the state's hyperparameters", key, saved[key])
            except ValueError as error:
                raise _refused(ValueError, source, str(error)) from None
        entries = state["parameters"]
        if not isinstance(entries, dict):
            raise _refused(ValueError, source, f"'parameters' must be a dict keyed by position, "
                                               f"got {type(entries).__name__}")
        if set(entries) != set(range(len(entries))):
            raise _refused(ValueError, source, f"'parameters' must be keyed by position "
                                               f"0..{len(entries) - 1}, got keys {list(entries)}")
        if len(entries) != len(self.params):
            raise _refused(ValueError, source, f"the state holds {len(entries)} parameters but "
                                               f"this optimizer has {len(self.params)}")
        buffers = []
        for index, parameter in enumerate(self.params):
            entry = entries[index]
            who = self._who(index)
            _expect_keys(entry, {"name", "tensor_name", "shape", *self.BUFFERS}, who, source)
            for key, ours in (("name", self.param_names[index]), ("tensor_name", parameter.name)):
                theirs = entry[key]
                if ours is not None and theirs is not None and ours != theirs:
                    raise _refused(ValueError, source, f"{who} is {ours!r} here but {theirs!r} "
                                   f"in the state (another model, or parameters in another order)")
            saved_shape = entry["shape"]
            if not isinstance(saved_shape, (tuple, list)) or tuple(saved_shape) != parameter.shape:
                raise _refused(ShapeError, source, f"{who} has shape {parameter.shape} here but "
                                                   f"{saved_shape} in the state")
            buffers.append(self._checked_buffers(index, entry, hyperparameters, source))
        return hyperparameters, steps, buffers

    def _who(self, index):
        """``parameter 0 (layers.0.W, W[1])``: the position and whatever names are known."""
        labels = [label for label in (self.param_names[index], self.params[index].name) if label]
        return f"parameter {index}" + (f" ({', '.join(dict.fromkeys(labels))})" if labels else "")

    def _buffer(self, index, key, value, source, non_negative=False):
        """A saved buffer as a fresh array of its parameter's dtype, or an error naming the
        fault: both shapes, NaN or Inf entries (a step from them would make the model NaN), or
        negative entries in a buffer that is a mean of squares (``non_negative``)."""
        parameter = self.params[index]
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise _refused(ValueError, source, f"{self._who(index)}'s saved {key} holds dtype "
                                               f"{array.dtype}, not numbers")
        if array.shape != parameter.shape:
            raise _refused(ShapeError, source, f"{self._who(index)} has shape {parameter.shape} "
                                               f"but its saved {key} has shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise _refused(ValueError, source, f"{self._who(index)}'s saved {key} holds "
                                               f"{int(np.isnan(array).sum())} nan and "
                                               f"{int(np.isinf(array).sum())} inf entries")
        if non_negative and np.any(array < 0):
            raise _refused(ValueError, source, f"{self._who(index)}'s saved {key} holds "
                                               f"{int((array < 0).sum())} negative entries (a "
                                               f"mean of squared gradients is >= 0), e.g. "
                                               f"{float(array[array < 0].reshape(-1)[0]):g}")
        return np.array(array, dtype=parameter.dtype, copy=True)

    def _hyperparameters(self) -> dict:
        return {"lr": self.lr}

    def _set_hyperparameters(self, values):
        self.lr = values["lr"]

    def _buffers(self, index) -> dict:
        """{buffer name: copy of the array, or None before it exists} for parameter index."""
        return {}

    def _checked_buffers(self, index, entry, hyperparameters, source):
        """The saved buffers of parameter index checked and copied, ready for _set_buffers."""
        return None

    def _set_buffers(self, index, prepared):
        pass


def _learning_rate(owner, value):
    if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: the learning rate must be a finite number > 0, got {value!r}")
    return float(value)


def _real(owner, label, value):
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {label} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {label} must be finite, got {value!r}")


def _fraction(owner, label, value, upper_inclusive=False):
    _real(owner, label, value)
    ok = 0 <= value <= 1 if upper_inclusive else 0 <= value < 1
    if not ok:
        raise ValueError(f"{owner}: {label} must lie in [0, 1{']' if upper_inclusive else ')'}, got {value!r}")
    return float(value)


def _non_negative(owner, label, value):
    _real(owner, label, value)
    if not value >= 0:
        raise ValueError(f"{owner}: {label} must be >= 0, got {value!r}")
    return float(value)


def _positive(owner, label, value):
    _real(owner, label, value)
    if not value > 0:
        raise ValueError(f"{owner}: {label} must be > 0, got {value!r}")
    return float(value)


def _flag(owner, label, value):
    if not isinstance(value, (bool, np.bool_)) and value not in (0, 1):
        raise ValueError(f"{owner}: {label} must be True or False, got {value!r}")
    return bool(value)


class _Hyperparameter:
    """An optimizer attribute checked whenever it is set (``opt.momentum = nan`` is refused
    there, not found later as a NaN model)."""

    def __init__(self, check):
        self.check = check

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner=None):
        return self if instance is None else instance.__dict__[self.name]

    def __set__(self, instance, value):
        instance.__dict__[self.name] = self.check(type(instance).__name__, self.name, value)


def _whole(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _count(source, label, value):
    """A step count: a whole number >= 0 (never a float, which would hide a corrupted value)."""
    if not _whole(value) or value < 0:
        raise _refused(ValueError, source, f"{label} must be a whole number >= 0, got {value!r}")
    return int(value)


def _refused(kind, source, text):
    return kind(f"{source}: {text}; the optimizer is unchanged")


def _expect_keys(mapping, expected, what, source):
    if not isinstance(mapping, dict):
        raise _refused(ValueError, source, f"{what} must be a dict, got {type(mapping).__name__}")
    missing = sorted(expected - set(mapping), key=str)
    unexpected = sorted(set(mapping) - expected, key=str)
    if missing or unexpected:
        parts = ([f"missing {', '.join(map(str, missing))}"] if missing else []) + \
                ([f"unexpected {', '.join(map(str, unexpected))}"] if unexpected else [])
        raise _refused(ValueError, source, f"{what} does not have the expected keys "
                                           f"({'; '.join(parts)})")


def _flatten(state):
    """state_dict() -> {flat key: array}, for np.savez. None (a buffer not created yet, a name
    not known) is left out; strings become numpy unicode arrays, which need no pickle."""
    arrays = {"format": np.array(state["format"]), "optimizer": np.array(state["optimizer"]),
              "steps": np.array(state["steps"])}
    for key, value in state["hyperparameters"].items():
        arrays[f"hyperparameters.{key}"] = np.array(value)
    for index, entry in state["parameters"].items():
        for key, value in entry.items():
            if value is None:
                continue
            if key == "shape":
                value = np.array(value, dtype=np.int64).reshape(len(value))
            arrays[f"parameters.{index}.{key}"] = np.array(value)
    return arrays


def _read_npz(path, source, buffer_names):
    """The file written by ``save``, read by ``files.read_npz`` (no pickle) and un-flattened
    into the layout of ``state_dict()``; a malformed file is one ``BadFileError``."""
    path = os.fspath(path)
    unchanged = "the optimizer is unchanged"
    expected = "an optimizer state written by Optimizer.save (an .npz of numbers and strings)"
    arrays = read_npz(path, source=source, expected=expected, unchanged=unchanged)

    def refuse(reason):
        return BadFileError(f"{source}: the file is not {expected}: {reason}; {unchanged}", path)

    if "optimizer" not in arrays or "format" not in arrays:
        hint = " (it looks like a model's parameter file: load that with model.load)" \
            if arrays and not any(key in arrays for key in ("steps", "format", "optimizer")) else ""
        raise refuse(f"no 'format'/'optimizer' entry among its keys {sorted(arrays)}{hint}")

    def plain(array):
        # 0-d arrays back to Python numbers and strings; arrays of any other shape stay arrays
        return array.item() if array.ndim == 0 else array

    state = {"hyperparameters": {}, "parameters": {}}
    for key, array in arrays.items():
        section, _, rest = key.partition(".")
        position, _, field = rest.partition(".")
        if not rest:
            if array.ndim != 0:
                raise refuse(f"{key!r} must be a single value, got an array of shape {array.shape}")
            state[key] = plain(array)
        elif section == "hyperparameters":
            if array.ndim != 0:
                raise refuse(f"{key!r} must be a single value, got an array of shape {array.shape}")
            state["hyperparameters"][rest] = plain(array)
        elif section == "parameters" and field and position.isdigit() and position.isascii():
            entry = state["parameters"].setdefault(int(position), {})
            entry[field] = _shape(array, key, refuse) if field == "shape" else plain(array)
        else:
            raise refuse(f"unexpected key {key!r}")
    # What save left out because it was None comes back as None: names not known, buffers not
    # created yet.
    for entry in state["parameters"].values():
        for field in ("name", "tensor_name", *buffer_names):
            entry.setdefault(field, None)
        for field in ("name", "tensor_name"):
            if entry[field] is not None and not isinstance(entry[field], str):
                raise refuse(f"a parameter's {field} must be a string, got {entry[field]!r}")
    return state


def _shape(array, key, refuse):
    """A saved shape: a 1-d array of whole numbers >= 0 (save writes int64)."""
    if array.ndim != 1 or array.dtype.kind not in "iu" or (array < 0).any():
        raise refuse(f"{key!r} must be a list of whole numbers >= 0, got {array.dtype} "
                     f"{array.tolist()!r}"[:300])
    return tuple(int(n) for n in array)


class SGD(Optimizer):
    """Gradient descent, eqs 74-75: ``W[l] = W[l] - alpha dW[l]``, ``b[l] = b[l] - alpha db[l]``.

    ``SGD(params, lr, momentum=0.0, weight_decay=0.0, nonfinite="raise")``. With ``momentum``
    mu > 0 each parameter keeps a velocity v (zero at first) and the step is the one PyTorch
    uses::

        g = dW + weight_decay * W
        v = mu * v + g
        W = W - alpha * v

    (The course form ``v = beta v + (1 - beta) dW`` is the same update with alpha scaled by
    1 - beta.) ``weight_decay`` adds the gradient of ``(weight_decay / 2) * ||W||^2``.
    """

    HYPERPARAMETERS = {**Optimizer.HYPERPARAMETERS, "momentum": _fraction,
                       "weight_decay": _non_negative}
    BUFFERS = ("velocity",)  # v of each parameter; None until its first step with momentum
    BUFFER_LISTS = ("velocity",)
    momentum = _Hyperparameter(_fraction)
    weight_decay = _Hyperparameter(_non_negative)

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nonfinite="raise"):
        super().__init__(params, lr, nonfinite)
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.velocity = [None] * len(self.params)

    def update(self, index, value, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * value
        if self.momentum:
            previous = self.velocity[index]
            # NOTE: the first velocity is a copy: it must not be the parameter's .grad array
            # itself, which the user may still edit in place (clipping) after this step.
            grad = np.array(grad, copy=True) if previous is None else self.momentum * previous + grad
            self.velocity[index] = grad
        return value - self.lr * grad

    def describe(self):
        return f"lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay}"

    def _hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}

    def _set_hyperparameters(self, values):
        self.lr, self.momentum, self.weight_decay = (values["lr"], values["momentum"],
                                                     values["weight_decay"])

    def _buffers(self, index):
        velocity = self.velocity[index]
        return {"velocity": None if velocity is None else velocity.copy()}

    def _checked_buffers(self, index, entry, hyperparameters, source):
        # NOTE: a velocity saved with momentum 0 is kept, not refused: it is what an optimizer
        # whose momentum was set to 0 mid-run holds, and it is used again if momentum returns.
        velocity = entry["velocity"]
        return None if velocity is None else self._buffer(index, "velocity", velocity, source)

    def _set_buffers(self, index, prepared):
        self.velocity[index] = prepared


def _betas(owner, label, value):
    try:
        beta1, beta2 = value
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), got {value!r}") from None
    return (_fraction(owner, "beta1", beta1), _fraction(owner, "beta2", beta2))


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): per-parameter steps from running moments of the gradient.

    ``Adam(params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
    nonfinite="raise")``. At step t::

        g = dW + weight_decay * W
        m = beta1 * m + (1 - beta1) * g          (m, v start at zero)
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t),  v_hat = v / (1 - beta2**t)
        W = W - alpha * m_hat / (sqrt(v_hat) + eps)

    t counts the steps in which this parameter had a gradient. ``weight_decay`` here is L2
    regularisation added to the gradient, as in PyTorch's Adam; ``AdamW`` decouples it.
    """

    HYPERPARAMETERS = {**Optimizer.HYPERPARAMETERS, "beta1": _fraction, "beta2": _fraction,
                       "eps": _positive, "weight_decay": _non_negative}
    BUFFERS = ("t", "m", "v")  # per parameter; t = 0 and no m, v until its first step
    BUFFER_LISTS = ("moments",)
    betas = _Hyperparameter(_betas)
    eps = _Hyperparameter(_positive)
    weight_decay = _Hyperparameter(_non_negative)

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 nonfinite="raise"):
        super().__init__(params, lr, nonfinite)
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.moments = [None] * len(self.params)

    def update(self, index, value, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * value
        return self._adam_step(index, value, grad)

    def _adam_step(self, index, value, grad):
        beta1, beta2 = self.betas
        if self.moments[index] is None:
            self.moments[index] = (0, np.zeros_like(value), np.zeros_like(value))
        t, m, v = self.moments[index]
        t += 1
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        self.moments[index] = (t, m, v)
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        return value - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def describe(self):
        return f"lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay}"

    def _hyperparameters(self):
        beta1, beta2 = self.betas
        return {"lr": self.lr, "beta1": beta1, "beta2": beta2, "eps": self.eps,
                "weight_decay": self.weight_decay}

    def _set_hyperparameters(self, values):
        self.lr, self.eps, self.weight_decay = values["lr"], values["eps"], values["weight_decay"]
        self.betas = (values["beta1"], values["beta2"])

    def _buffers(self, index):
        if self.moments[index] is None:
            return {"t": 0, "m": None, "v": None}
        t, m, v = self.moments[index]
        return {"t": t, "m": m.copy(), "v": v.copy()}

    def _checked_buffers(self, index, entry, hyperparameters, source):
        who = self._who(index)
        t = _count(source, f"{who}'s saved t", entry["t"])
        missing = [key for key in ("m", "v") if entry[key] is None]
        if t == 0:
            if len(missing) < 2:  # t = 0 is "no step yet": moments would be ignored, so refuse
                raise _refused(ValueError, source, f"{who} has t = 0 (no step yet) but saved "
                                                   f"moments")
            return None
        if missing:
            raise _refused(ValueError, source, f"{who} has t = {t} but no saved "
                                               f"{' or '.join(missing)}")
        return (t, self._buffer(index, "m", entry["m"], source),
                self._buffer(index, "v", entry["v"], source, non_negative=True))

    def _set_buffers(self, index, prepared):
        self.moments[index] = prepared


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as PyTorch's ``AdamW``.

    ``AdamW(params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
    nonfinite="raise")``. The decay shrinks the weights directly instead of entering the
    gradient (and so the moments)::

        W = W * (1 - alpha * weight_decay)
        m, v, m_hat, v_hat from dW alone, as in Adam
        W = W - alpha * m_hat / (sqrt(v_hat) + eps)

    Same state (t, m, v per parameter) and file layout as Adam; a file saved by one is refused
    by the other.
    """

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                 nonfinite="raise"):
        super().__init__(params, lr, betas, eps, weight_decay, nonfinite)

    def update(self, index, value, grad):
        if self.weight_decay:
            value = value * (1 - self.lr * self.weight_decay)
        return self._adam_step(index, value, grad)


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), with PyTorch's ``RMSprop`` semantics and defaults.

    ``RMSprop(params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
    centered=False, nonfinite="raise")``. Per parameter, at every step::

        g = dW + weight_decay * W
        s = alpha * s + (1 - alpha) * g**2                       (s starts at zero)
        centered: a = alpha * a + (1 - alpha) * g;  d = sqrt(s - a**2) + eps
        otherwise:                                  d = sqrt(s) + eps
        momentum mu > 0: b = mu * b + g / d;  W = W - alpha_lr * b
        otherwise:                            W = W - alpha_lr * g / d

    (alpha_lr is ``lr``; PyTorch's names: square_avg s, grad_avg a, momentum_buffer b.)
    """

    HYPERPARAMETERS = {**Optimizer.HYPERPARAMETERS,
                       "alpha": lambda owner, label, value: _fraction(owner, label, value, True),
                       "eps": _positive, "weight_decay": _non_negative, "momentum": _fraction,
                       "centered": _flag}
    BUFFERS = ("square_avg", "grad_avg", "momentum_buffer")  # None until first needed
    BUFFER_LISTS = ("square_avg", "grad_avg", "momentum_buffer")
    alpha = _Hyperparameter(HYPERPARAMETERS["alpha"])
    eps = _Hyperparameter(_positive)
    weight_decay = _Hyperparameter(_non_negative)
    momentum = _Hyperparameter(_fraction)
    centered = _Hyperparameter(_flag)

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, nonfinite="raise"):
        super().__init__(params, lr, nonfinite)
        self.alpha, self.eps, self.weight_decay = alpha, eps, weight_decay
        self.momentum, self.centered = momentum, centered
        count = len(self.params)
        self.square_avg, self.grad_avg, self.momentum_buffer = [None] * count, [None] * count, [None] * count

    def update(self, index, value, grad):
        alpha = self.alpha
        if self.weight_decay:
            grad = grad + self.weight_decay * value
        square_avg = self.square_avg[index]
        if square_avg is None:
            square_avg = np.zeros_like(value)
        square_avg = alpha * square_avg + (1 - alpha) * grad * grad
        self.square_avg[index] = square_avg
        if self.centered:
            grad_avg = self.grad_avg[index]
            if grad_avg is None:
                grad_avg = np.zeros_like(value)
            grad_avg = alpha * grad_avg + (1 - alpha) * grad
            self.grad_avg[index] = grad_avg
            denominator = np.sqrt(square_avg - grad_avg * grad_avg) + self.eps
        else:
            denominator = np.sqrt(square_avg) + self.eps
        if self.momentum:
            buffer = self.momentum_buffer[index]
            buffer = grad / denominator if buffer is None else self.momentum * buffer + grad / denominator
            self.momentum_buffer[index] = buffer
            return value - self.lr * buffer
        return value - self.lr * grad / denominator

    def describe(self):
        return (f"lr={self.lr}, alpha={self.alpha}, eps={self.eps}, weight_decay="
                f"{self.weight_decay}, momentum={self.momentum}, centered={self.centered}")

    def _hyperparameters(self):
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps,
                "weight_decay": self.weight_decay, "momentum": self.momentum,
                "centered": self.centered}

    def _set_hyperparameters(self, values):
        for key, value in values.items():
            setattr(self, key, value)

    def _buffers(self, index):
        return {key: None if getattr(self, key)[index] is None else getattr(self, key)[index].copy()
                for key in self.BUFFERS}

    def _checked_buffers(self, index, entry, hyperparameters, source):
        if entry["square_avg"] is None and (entry["grad_avg"] is not None
                                            or entry["momentum_buffer"] is not None):
            raise _refused(ValueError, source, f"{self._who(index)} has no saved square_avg "
                                               f"(no step yet) but other buffers")
        return {key: None if entry[key] is None else
                self._buffer(index, key, entry[key], source, non_negative=(key == "square_avg"))
                for key in self.BUFFERS}

    def _set_buffers(self, index, prepared):
        for key in self.BUFFERS:
            getattr(self, key)[index] = None if prepared is None else prepared[key]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=True):
    """Scale the gradients of ``parameters`` so that their total norm is at most ``max_norm``,
    as PyTorch's ``torch.nn.utils.clip_grad_norm_``; returns the total norm before clipping.

    The total norm is the ``norm_type``-norm (2, any p > 0, or ``math.inf``) of all gradients
    taken together as one vector; if it exceeds ``max_norm`` every ``.grad`` is multiplied by
    ``max_norm / (total_norm + 1e-6)`` (PyTorch's factor). ``.grad`` is replaced by a new array,
    not written into. A NaN or Inf norm is a ``NonFiniteGradientError`` naming the parameters
    at fault, with every gradient unchanged; ``error_if_nonfinite=False`` returns the norm and
    leaves the gradients as they are (so the optimizer refuses or skips the step). Parameters
    whose ``.grad`` is None are ignored. ``clip_grad_norm`` is the same function."""
    if hasattr(parameters, "parameters") and callable(parameters.parameters):
        parameters = parameters.parameters()
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = [parameter for parameter in parameters if parameter.grad is not None]
    _real("clip_grad_norm_", "max_norm", max_norm)
    if max_norm < 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm!r}")
    if not (isinstance(norm_type, numbers.Real) and not isinstance(norm_type, bool)
            and (norm_type == math.inf or (math.isfinite(norm_type) and norm_type > 0))):
        raise ValueError(f"clip_grad_norm_: norm_type must be a number > 0 or math.inf, got "
                         f"{norm_type!r}")
    if not parameters:
        return 0.0
    grads = [np.asarray(parameter.grad) for parameter in parameters]
    with np.errstate(over="ignore", invalid="ignore"):
        if norm_type == math.inf:
            total = max(float(np.max(np.abs(grad))) if grad.size else 0.0 for grad in grads)
        else:
            norms = np.array([np.linalg.norm(grad.reshape(-1), ord=norm_type) for grad in grads])
            total = float(np.linalg.norm(norms, ord=norm_type))
    if not math.isfinite(total):
        if not error_if_nonfinite:
            return total
        bad = [f"{parameter.name or f'parameter {index}'} of shape {parameter.shape} "
               f"({int(np.isnan(grad).sum())} nan, {int(np.isinf(grad).sum())} inf)"
               for index, (parameter, grad) in enumerate(zip(parameters, grads))
               if not np.all(np.isfinite(grad))]
        raise NonFiniteGradientError(
            f"clip_grad_norm_: the total {norm_type}-norm of the gradients is {total}"
            + (f"; non-finite entries in {', '.join(bad)}" if bad else " (an overflow)")
            + "; no gradient was changed (error_if_nonfinite=False returns the norm instead)")
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1:
        for parameter, grad in zip(parameters, grads):
            parameter.grad = grad * coefficient
    return total


clip_grad_norm = clip_grad_norm_

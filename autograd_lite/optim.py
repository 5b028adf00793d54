"""Optimizers: the update step of eqs 74-75, with momentum, and Adam.

``optimizer.zero_grad()``, ``J.backward()``, ``optimizer.step()``. An optimizer only reads the
gradients the engine left in ``.grad`` (dW[l], db[l] of eqs 79-80, 83-84) and moves each
parameter; it differentiates nothing. ``optimizer.lr`` can be changed between steps (a
learning-rate schedule is a loop that sets it).

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

import numpy as np

from .errors import ShapeError
from .files import BadFileError, as_bad_file, read_npz
from .nn.serialization import write_npz
from .tensor import Tensor

# The layout of state_dict() and of the saved file; a reader refuses any other number.
STATE_FORMAT = 1


class Optimizer:
    """Holds the parameters (each once) and the learning rate; subclasses define ``update``."""

    def __init__(self, params, lr):
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
        alone (they did not take part in the last loss)."""
        self.steps += 1
        for index, parameter in enumerate(self.params):
            if parameter.grad is None:
                continue
            if parameter.grad.shape != parameter.shape:
                raise ValueError(f"{type(self).__name__}.step: {parameter.name or f'parameter {index}'} "
                                 f"has shape {parameter.shape} but its .grad has shape "
                                 f"{parameter.grad.shape}")
            parameter.data = self.update(index, parameter.data, parameter.grad)

    def update(self, index, value, grad):
        raise NotImplementedError

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

    def _buffer(self, index, key, value, source):
        """A saved buffer as a fresh array of its parameter's dtype, or an error naming both
        shapes."""
        parameter = self.params[index]
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise _refused(ValueError, source, f"{self._who(index)}'s saved {key} holds dtype "
                                               f"{array.dtype}, not numbers")
        if array.shape != parameter.shape:
            raise _refused(ShapeError, source, f"{self._who(index)} has shape {parameter.shape} "
                                               f"but its saved {key} has shape {array.shape}")
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

    ``SGD(params, lr, momentum=0.0, weight_decay=0.0)``. With ``momentum`` mu > 0 each
    parameter keeps a velocity v (zero at first) and the step is the one PyTorch uses::

        g = dW + weight_decay * W
        v = mu * v + g
        W = W - alpha * v

    (The course form ``v = beta v + (1 - beta) dW`` is the same update with alpha scaled by
    1 - beta.) ``weight_decay`` adds the gradient of ``(weight_decay / 2) * ||W||^2``.
    """

    HYPERPARAMETERS = {**Optimizer.HYPERPARAMETERS, "momentum": _fraction,
                       "weight_decay": _non_negative}
    BUFFERS = ("velocity",)  # v of each parameter; None until its first step with momentum

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum = _fraction("SGD", "momentum", momentum)
        self.weight_decay = _non_negative("SGD", "weight_decay", weight_decay)
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


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): per-parameter steps from running moments of the gradient.

    ``Adam(params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)``. At step t::

        g = dW + weight_decay * W
        m = beta1 * m + (1 - beta1) * g          (m, v start at zero)
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t),  v_hat = v / (1 - beta2**t)
        W = W - alpha * m_hat / (sqrt(v_hat) + eps)

    t counts the steps in which this parameter had a gradient.
    """

    HYPERPARAMETERS = {**Optimizer.HYPERPARAMETERS, "beta1": _fraction, "beta2": _fraction,
                       "eps": _positive, "weight_decay": _non_negative}
    BUFFERS = ("t", "m", "v")  # per parameter; t = 0 and no m, v until its first step

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        beta1, beta2 = betas
        self.betas = (_fraction("Adam", "beta1", beta1), _fraction("Adam", "beta2", beta2))
        self.eps = _positive("Adam", "eps", eps)
        self.weight_decay = _non_negative("Adam", "weight_decay", weight_decay)
        self.moments = [None] * len(self.params)

    def update(self, index, value, grad):
        beta1, beta2 = self.betas
        if self.weight_decay:
            grad = grad + self.weight_decay * value
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
                self._buffer(index, "v", entry["v"], source))

    def _set_buffers(self, index, prepared):
        self.moments[index] = prepared


__all__ = ["Optimizer", "SGD", "Adam"]

"""The optimizer: reads the gradients the engine left in ``.grad`` (dW[l], db[l] of eqs 79-80,
83-84) and moves each parameter, whole step or nothing. A subclass is its update formula,
``update(value, grad, state)`` on one parameter and its dict of buffers, and one declaration,
``HYPERPARAMETERS = {name: (default, validator)}`` (``io.Declared``): the constructor's
arguments, checked where given, set or loaded, saved and described. ``save``/``load`` keep
what a step depends on besides the parameters, so a resumed run is bit for bit the same."""
from __future__ import annotations

import warnings

import numpy as np

from .. import backend, io
from ..core.tensor import Tensor, array_of, assign
from ..errors import ShapeError

SWITCH = "Switch check.sentinel() on to see the operation that made the first one."
MOVED = ("state made before model.to(...): move it with optimizer.load_state_dict(optimizer.state_dict()); "
         "or assign .grad in the parameter's backend")

# Observers of every step (check.sentinel registers one): ``observer(optimizer, bad)`` runs after
# a step taken (bad == []) and before a step is refused for non-finite gradients (bad: their
# positions). A refusal's message carries what it returns (where the first NaN was made).
step_observers: list = []


class NonFiniteGradientError(FloatingPointError):
    """``optimizer.step()`` found NaN or Inf in a gradient and changed nothing. ``.indices``
    lists the positions (in ``optimizer.params``) of the parameters concerned."""

    def __init__(self, message, indices=()):
        super().__init__(message)
        self.indices = list(indices)


class Optimizer(io.Declared):
    """Holds the parameters (each once), their states and the hyperparameters."""

    HYPERPARAMETERS = {"lr": (io.REQUIRED, io.learning_rate)}
    FIRST, KIND, KEYWORDS = "params", "optimizer", {"nonfinite": ("raise", io.one_of("raise", "skip"))}
    SECTIONS = {"hyperparameters": 1, "parameters": 2}
    UNCHANGED = "the optimizer is unchanged"
    EXPECTED = "an optimizer state written by Optimizer.save (an .npz of numbers and strings)"
    STATE: dict = {}    # buffer -> "array", "squares" (>= 0) or "count", per parameter

    def __init__(self, params, *args, **kwargs):
        self.params, self.param_names = _unique_parameters(type(self).__name__, params)
        self.bind(params, *args, **kwargs)
        self.state = [{} for _ in self.params]   # per parameter: the buffers of its update
        self.steps = self.skipped_steps = 0      # skipped: refused with nonfinite="skip"
        self.last_skipped = None                 # the message of the last one

    def update(self, value, grad, state):
        """The new value of one parameter, from ``value`` (its array, read-only); reads and sets
        its buffers in ``state``."""
        raise NotImplementedError

    def zero_grad(self):
        """Reset every parameter's ``.grad`` (gradients add up across backward calls)."""
        for parameter in self.params:
            parameter.grad = None

    def step(self):
        """Move every parameter that has a gradient (``.grad`` None: it stays), whole or not at
        all: a gradient of another shape is a ValueError, NaN or Inf in one a
        ``NonFiniteGradientError`` naming each such parameter (with ``nonfinite="skip"``: a step
        not taken, counted in ``skipped_steps``), an overflowing update a FloatingPointError,
        each with nothing changed. Returns True if the step was taken."""
        owner, p = f"{type(self).__name__}.step", self.params
        grads = {i: p[i].grad for i in range(len(p)) if p[i].grad is not None}
        for i, grad in grads.items():
            if grad.shape != p[i].shape:
                raise ValueError(f"{owner}: {self._who(i)} has shape {tuple(p[i].shape)} but its .grad "
                                 f"has shape {tuple(grad.shape)}; nothing was changed")
            backend.refuse_mixed(lambda: f"{owner}: {self._who(i)}", array_of(p[i]), {".grad": grad, **self.state[i]}, MOVED)
        bad = [i for i, grad in grads.items() if not backend.all_finite(grad)]
        if bad:
            counts = "; ".join("{} of shape {}: {} nan and {} inf of {}".format(
                self._who(i), tuple(p[i].shape), *backend.nonfinite_counts(p[i].grad), p[i].size) for i in bad)
            where = " ".join(note for note in (see(self, bad) for see in step_observers) if note)
            message = (f"{owner}: non-finite gradient in {len(bad)} of {len(p)} parameters: {counts}. "
                       f"No parameter and no optimizer state changed. {where or SWITCH} "
                       f"(nonfinite=\"skip\" skips such steps instead, as loss scalers do.)")
            if self.nonfinite == "raise":
                raise NonFiniteGradientError(message, bad)
            self.skipped_steps, self.last_skipped = self.skipped_steps + 1, message
            return False
        states = {i: dict(self.state[i]) for i in grads}
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused just below
            values = {i: self.update(array_of(p[i]), grad, states[i]) for i, grad in grads.items()}
        broken = [i for i, value in values.items() if not backend.all_finite(value)]
        if broken:
            raise FloatingPointError(
                f"{owner}: the gradients are finite but the update would make "
                f"{', '.join(map(self._who, broken))} non-finite (an overflow: is the learning "
                f"rate {self.lr} too large?); no parameter and no optimizer state changed")
        for i, value in values.items():  # the parameters' own arrays: a forward pass locks none
            assign(p[i], value)
            self.state[i] = states[i]
        self.steps += 1
        for see in step_observers:
            see(self, [])
        return True

    def _who(self, index):
        """``parameter 0 (layers.0.W, W[1])``: the position and whatever names are known."""
        labels = [label for label in (self.param_names[index], self.params[index].name) if label]
        return f"parameter {index}" + (f" ({', '.join(dict.fromkeys(labels))})" if labels else "")

    def __repr__(self):
        return f"{type(self).__name__}({self.describe()}, {len(self.params)} parameters)"

    # --- saving and resuming ------------------------------------------------------------------
    def saved(self) -> dict:
        """``{"steps": k, "hyperparameters": {"lr": ...}, "parameters": {0: {"name": "layers.0.W",
        "tensor_name": "W[1]", "shape": (4, 3), <buffers: copies, None before a first step>}}}``
        by position; ``name`` is known when given a module. A load sets lr too (as PyTorch)."""
        return {"steps": self.steps, "hyperparameters": self.hyperparameters(),
                "parameters": {i: {"name": self.param_names[i], "tensor_name": p.name, "shape": tuple(p.shape),
                                   **dict.fromkeys(self.STATE), **{key: value if isinstance(value, int)
                                                                   else backend.copy_of(value) for key, value in self.state[i].items()}}
                               for i, p in enumerate(self.params)}}

    def declared_state(self):
        return {"steps": io.count, "hyperparameters": super().declared_state(),
                "parameters": [(self._who(i), self._entry(i)) for i in range(len(self.params))]}

    def _entry(self, index):
        who, parameter = self._who(index), self.params[index]
        names = who + " is {ours!r} here but {value!r} in the state (another model, or parameters in another order)"
        kinds = {"array": io.array_like(parameter, who), "squares": io.array_like(parameter, who, non_negative=True),
                 "count": lambda value, key: io.count(value, f"{who}'s saved {key}")}
        return {"name": io.matching(self.param_names[index], io.text, names),
                "tensor_name": io.matching(parameter.name, io.text, names),
                "shape": io.matching(tuple(parameter.shape), io.shape, who + " has shape {ours} here but "
                                     "{value} in the state", ShapeError, optional=False),
                **{key: io.optional(kinds[kind]) for key, kind in self.STATE.items()}}

    def restore(self, values, refuse):
        states = []
        for index, entry in values["parameters"].items():
            try:
                states.append(self.checked_state({key: entry[key] for key in self.STATE
                                                  if entry[key] is not None}, self._who(index)))
            except ValueError as error:
                raise refuse(str(error)) from None
        self.__dict__.update(values["hyperparameters"], steps=values["steps"], state=states)

    def checked_state(self, state, who):
        return state  # a subclass checks a parameter's loaded buffers together


def _unique_parameters(owner, params):
    """The parameters, each once (a repeat warns), and their dotted names if given a module."""
    if isinstance(params, Tensor):
        raise TypeError(f"{owner}: pass a list of parameters (model.parameters()), not a single Tensor")
    if callable(getattr(params, "named_parameters", None)):
        named = list(params.named_parameters())   # the saved state records the dotted names
    else:
        named = [(None, p) for p in (params.parameters() if callable(getattr(params, "parameters", None))
                                     else params)]
    unique, seen = {}, {}
    for index, (name, parameter) in enumerate(named):
        if not (isinstance(parameter, Tensor) and parameter.requires_grad and parameter.is_leaf):
            what = (type(parameter).__name__ if not isinstance(parameter, Tensor) else "a Tensor without "
                    "requires_grad" if not parameter.requires_grad else f"computed by {parameter.op}")
            raise TypeError(f"{owner}: parameter {index} is {what}; only leaves with requires_grad=True "
                            f"(nn.Parameter, tensors you created) can be updated")
        if id(parameter) in seen:
            warnings.warn(f"{owner}: parameter {index} ({parameter.name or 'unnamed'}) is parameter "
                          f"{seen[id(parameter)]} again; it is kept once (updated once per step with "
                          f"its whole gradient), as shared weights are", UserWarning, stacklevel=3)
        seen.setdefault(id(parameter), index)
        unique.setdefault(id(parameter), (parameter, name))
    if not unique:
        raise ValueError(f"{owner}: got an empty list of parameters")
    return [p for p, _ in unique.values()], [name for _, name in unique.values()]

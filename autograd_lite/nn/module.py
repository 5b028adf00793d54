"""Module: a piece of network whose parameters are found from its attributes.

Assign ``Parameter``s and other ``Module``s (alone, or in lists, tuples and dicts) as attributes
in ``__init__``, write ``forward`` as plain Python on Tensors, and the module can list its
parameters with dotted names (``layers.0.W``), reset their gradients, save and load them.
Nothing here differentiates anything: ``forward`` records Tensor operations and the engine
derives every gradient.
"""
from __future__ import annotations

import numpy as np

from ..core.modes import grad_mode
from ..core.tensor import Tensor
from .parameter import Parameter


class Module:
    """Base class of layers and models. Subclasses define ``forward``; call the module itself.

    Discovery walks the attributes in the order they were assigned: a ``Parameter`` is
    registered under its attribute name, a child ``Module`` adds its own names behind a dot,
    and lists/tuples/dicts of them are numbered (``layers.0.W``) or keyed. A parameter reached
    twice (shared weights) is listed once, under the first name that reaches it, so an optimizer
    updates it once with the sum of the gradients of all its uses.
    """

    # Training or evaluation mode (PyTorch's): Dropout and BatchNorm behave differently in
    # each. A class attribute, so subclasses need not call an __init__; train()/eval() set it on
    # every module of the tree.
    training = True

    def forward(self, *inputs, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward(...)")

    # --- modes ------------------------------------------------------------------------------
    def train(self, mode=True):
        """Put this module and every descendant in training mode (``mode=False``: evaluation
        mode). Dropout drops and BatchNorm uses the batch's statistics only while training.
        Returns the module, so ``model.train()`` can be chained."""
        if not isinstance(mode, bool):
            raise TypeError(f"{type(self).__name__}.train: mode must be True or False, got {mode!r}")
        for _, module in self.named_modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``. Dropout is the identity, BatchNorm uses its
        running statistics. Use it before measuring a model on held-out data."""
        return self.train(False)

    # --- buffers: saved state that is not trained (BatchNorm's running statistics) -----------
    def register_buffer(self, name, array):
        """Keep ``array`` as attribute ``name``, saved and loaded with the parameters
        (``state_dict``, ``save``) but never given to an optimizer."""
        names = self.__dict__.setdefault("_buffer_names", [])
        if name not in names:
            names.append(name)
        object.__setattr__(self, name, np.array(array, dtype=np.float64, copy=True))

    def named_buffers(self) -> list:
        """``(dotted name, array)`` for every buffer of this module and its descendants."""
        return [(f"{prefix}.{name}" if prefix else name, getattr(module, name))
                for prefix, module in self.named_modules()
                for name in module.__dict__.get("_buffer_names", ())]

    def __call__(self, *inputs, **kwargs):
        trace = grad_mode.trace
        if trace is not None:  # ag.compile watches the module's mode and state from now on
            trace.calls_module(self)
        return self.forward(*inputs, **kwargs)

    def __setattr__(self, name, value):
        # NOTE: a learner who writes `self.W = ag.Tensor(..., requires_grad=True)` would get a
        # model that never trains and never saves W; say so at once instead.
        if (isinstance(value, Tensor) and not isinstance(value, Parameter)
                and value.requires_grad and value.is_leaf):
            raise TypeError(
                f"{type(self).__name__}.{name}: a leaf Tensor with requires_grad=True is not "
                f"registered as a parameter; assign nn.Parameter(array) to train and save it, or "
                f"a Tensor without requires_grad for a constant")
        object.__setattr__(self, name, value)

    # --- discovery --------------------------------------------------------------------------
    def named_children(self) -> list:
        """``(name, module)`` for each direct child module, list entries numbered (``layers.0``)."""
        children = []
        for name, value in vars(self).items():
            for key, item in _entries(name, value):
                if isinstance(item, Module):
                    children.append((key, item))
        return children

    def named_modules(self) -> list:
        """``(dotted name, module)`` for this module (name ``""``) and every descendant, once
        each, in attribute order (depth first)."""
        return [(name, item) for name, item in self._walk() if isinstance(item, Module)]

    def named_parameters(self) -> list:
        """``(dotted name, Parameter)`` for every parameter of this module and its descendants,
        in attribute order, each parameter once (``[("layers.0.W", W[1]), ...]``)."""
        return [(name, item) for name, item in self._walk() if isinstance(item, Parameter)]

    def _walk(self):
        """Every module and parameter reachable from this one, each once, in attribute order.

        Depth first with an explicit stack (no recursion), so a module that refers back to an
        ancestor, or a very deep nesting, cannot loop or overflow."""
        found, seen = [], {id(self)}
        stack = [("", self)]
        while stack:
            prefix, item = stack.pop()
            found.append((prefix, item))
            if isinstance(item, Parameter):
                continue
            pending = []
            for name, value in vars(item).items():
                for key, entry in _entries(name, value):
                    if id(entry) not in seen:
                        seen.add(id(entry))
                        pending.append((f"{prefix}.{key}" if prefix else key, entry))
            stack.extend(reversed(pending))
        return found

    def parameters(self) -> list:
        """Every parameter, each once: what an optimizer takes."""
        return [parameter for _, parameter in self.named_parameters()]

    def num_parameters(self) -> int:
        """The number of trainable numbers (the sizes of all parameters added up)."""
        return sum(parameter.size for parameter in self.parameters())

    def zero_grad(self):
        """Reset every parameter's ``.grad`` to None (gradients add up across backward calls)."""
        for parameter in self.parameters():
            parameter.grad = None

    # --- saving -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{dotted name: copy of the array}`` for every parameter, then every buffer, then
        ``{dotted name: JSON text}`` for the state of every random generator a layer holds
        (Dropout's ``rng``): everything that shapes the next step."""
        from .serialization import state
        return state(self)

    def load_state_dict(self, state: dict, allow_nonfinite=False):
        """Set every parameter and buffer from ``state`` (dotted name -> array), and each
        generator whose state it holds. All names and shapes are checked first; on any mismatch a ValueError/ShapeError names the parameter and both
        shapes, and the model is left unchanged. nan/inf values are refused unless
        ``allow_nonfinite=True``."""
        from .serialization import load_state
        load_state(self, state, source="load_state_dict", allow_nonfinite=allow_nonfinite)
        return self

    def save(self, path):
        """Write ``state_dict()`` to ``path`` as an ``.npz`` keyed by dotted name, atomically."""
        from .serialization import save
        save(self, path)

    def load(self, path, allow_nonfinite=False):
        """Read parameters written by ``save``; the model is unchanged if anything is wrong
        (one ``autograd_lite.io.BadFileError`` naming the file and the fault). nan/inf
        parameters are refused unless ``allow_nonfinite=True``."""
        from .serialization import load
        load(self, path, allow_nonfinite=allow_nonfinite)
        return self

    # --- printing ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """What goes between the parentheses of this module's repr (subclasses override)."""
        return ""

    def __repr__(self):
        children = self.named_children()
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, child in children:
            child_text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_text}")
        return "\n".join(lines) + "\n)"


def _entries(name, value):
    """``(key, item)`` pairs an attribute contributes: itself, or its numbered/keyed items."""
    if isinstance(value, (Parameter, Module)):
        return [(name, value)]
    if isinstance(value, (list, tuple)):
        return [(f"{name}.{i}", item) for i, item in enumerate(value)
                if isinstance(item, (Parameter, Module))]
    if isinstance(value, dict):
        return [(f"{name}.{key}", item) for key, item in value.items()
                if isinstance(item, (Parameter, Module))]
    return []

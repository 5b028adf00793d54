"""Module: a piece of network whose parameters are found from its attributes.

Assign ``Parameter``s and other ``Module``s (alone, or in lists, tuples and dicts) as attributes
in ``__init__``, write ``forward`` as plain Python on Tensors, and the module can list its
parameters with dotted names (``layers.0.W``), reset their gradients, save and load them.
Nothing here differentiates anything: ``forward`` records Tensor operations and the engine
derives every gradient.
"""
from __future__ import annotations

from ..tensor import Tensor
from .parameter import Parameter


class Module:
    """Base class of layers and models. Subclasses define ``forward``; call the module itself.

    Discovery walks the attributes in the order they were assigned: a ``Parameter`` is
    registered under its attribute name, a child ``Module`` adds its own names behind a dot,
    and lists/tuples/dicts of them are numbered (``layers.0.W``) or keyed. A parameter reached
    twice (shared weights) is listed once, under the first name that reaches it, so an optimizer
    updates it once with the sum of the gradients of all its uses.
    """

    def forward(self, *inputs, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward(...)")

    def __call__(self, *inputs, **kwargs):
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
        """``{dotted name: copy of the parameter's array}``."""
        return {name: parameter.data.copy() for name, parameter in self.named_parameters()}

    def load_state_dict(self, state: dict, allow_nonfinite=False):
        """Set every parameter from ``state`` (dotted name -> array). All names and shapes are
        checked first; on any mismatch a ValueError/ShapeError names the parameter and both
        shapes, and the model is left unchanged. nan/inf values are refused unless
        ``allow_nonfinite=True``."""
        from .serialization import load_state
        load_state(self, state, source="load_state_dict", allow_nonfinite=allow_nonfinite)
        return self

    def save(self, path):
        """Write the parameters to ``path`` as an ``.npz`` keyed by dotted name, atomically."""
        from .serialization import save
        save(self, path)

    def load(self, path, allow_nonfinite=False):
        """Read parameters written by ``save``; the model is unchanged if anything is wrong
        (one ``autograd_lite.files.BadFileError`` naming the file and the fault). nan/inf
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

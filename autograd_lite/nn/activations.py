"""Activation modules g[l] (eq 34): ``A[l] = g[l](Z[l])``, elementwise except Softmax.

Each is one Tensor operation, so its derivative g'[l] (eqs 8, 78, 82) comes from the engine.
Given a layer index (``Sigmoid(layer=1)``, or set by ``Sequential``/``MLP``), the output is
named ``A[l]`` and made inside ``ag.name_scope("layer l")``.
"""
from __future__ import annotations

from ..core.modes import name_scope
from ..core.tensor import as_tensor
from .module import Module


class Activation(Module):
    """An activation: ``forward(Z) -> A``, named and scoped after its layer when it has one."""

    function = "identity"

    def __init__(self, layer=None):
        self.layer = layer

    def apply(self, Z):
        raise NotImplementedError

    def forward(self, Z):
        Z = as_tensor(Z)
        if self.layer is None:
            return self.apply(Z)
        with name_scope(f"layer {self.layer}"):
            A = self.apply(Z)
            return A if A is Z else A.named(f"A[{self.layer}]")

    def extra_repr(self):
        return "" if self.layer is None else f"layer={self.layer}"


class Sigmoid(Activation):
    """``s(z) = 1 / (1 + e^-z)`` (eq 7), with ``s' = s (1 - s)`` (eq 8) from the engine."""
    function = "sigmoid"

    def apply(self, Z):
        return Z.sigmoid()


class Tanh(Activation):
    """``tanh(z)``, a sigmoid centred on 0 (``tanh(z) = 2 s(2z) - 1``)."""
    function = "tanh"

    def apply(self, Z):
        return Z.tanh()


class ReLU(Activation):
    """``max(z, 0)``; its gradient at exactly 0 is taken as 0."""
    function = "relu"

    def apply(self, Z):
        return Z.relu()


class Identity(Activation):
    """No activation: the output layer of a regression network (note after eq 38), or logits
    for a fused loss. ``A[l]`` is ``Z[l]`` itself (no extra node), so it keeps the name Z[l]."""
    function = "identity"

    def apply(self, Z):
        return Z


class Softmax(Activation):
    """Each column (sample) of Z becomes a probability vector: the multi-class output of the
    note after eq 38. ``axis=0`` because samples are columns."""
    function = "softmax"

    def __init__(self, layer=None, axis=0):
        super().__init__(layer)
        self.axis = axis

    def apply(self, Z):
        return Z.softmax(axis=self.axis)

    def extra_repr(self):
        extras = [] if self.layer is None else [f"layer={self.layer}"]
        if self.axis != 0:
            extras.append(f"axis={self.axis}")
        return ", ".join(extras)


class LeakyReLU(Activation):
    """``z`` for z > 0, ``negative_slope · z`` otherwise (default 0.01, as in PyTorch)."""
    function = "leaky_relu"

    def __init__(self, layer=None, negative_slope=0.01):
        super().__init__(layer)
        self.negative_slope = negative_slope

    def apply(self, Z):
        return Z.leaky_relu(self.negative_slope)

    def extra_repr(self):
        return ", ".join(([] if self.layer is None else [f"layer={self.layer}"])
                         + [f"negative_slope={self.negative_slope:g}"])


class ELU(Activation):
    """``z`` for z > 0, ``alpha (e^z − 1)`` otherwise."""
    function = "elu"

    def __init__(self, layer=None, alpha=1.0):
        super().__init__(layer)
        self.alpha = alpha

    def apply(self, Z):
        return Z.elu(self.alpha)

    def extra_repr(self):
        return ", ".join(([] if self.layer is None else [f"layer={self.layer}"]) + [f"alpha={self.alpha:g}"])


class GELU(Activation):
    """``z Φ(z)``, Φ the standard normal distribution function: exact (erf form) by default,
    ``approximate="tanh"`` for the tanh approximation (as PyTorch's ``GELU``)."""
    function = "gelu"

    def __init__(self, layer=None, approximate="none"):
        super().__init__(layer)
        self.approximate = approximate

    def apply(self, Z):
        return Z.gelu(self.approximate)

    def extra_repr(self):
        extras = [] if self.layer is None else [f"layer={self.layer}"]
        if self.approximate != "none":
            extras.append(f"approximate={self.approximate!r}")
        return ", ".join(extras)


class Softplus(Activation):
    """``log(1 + e^z)``, exact for any z; its derivative is the sigmoid (eq 7)."""
    function = "softplus"

    def apply(self, Z):
        return Z.softplus()


ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "identity": Identity,
               "softmax": Softmax, "leaky_relu": LeakyReLU, "elu": ELU, "gelu": GELU,
               "softplus": Softplus}


def activation(name_or_module, layer=None):
    """An activation module from a name in ``ACTIVATIONS`` (or a module, returned as is)."""
    if isinstance(name_or_module, Module):
        return name_or_module
    if name_or_module not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name_or_module!r}; choose from "
                         f"{', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name_or_module](layer=layer)

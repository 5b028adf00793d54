"""Layers built from Tensor operations: Linear (eq 33), Sequential, and the MLP builder (eqs 33-34).

Samples are columns: a layer takes ``A[l-1]`` of shape (n_in, m) and returns (n_out, m).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..core.modes import name_scope
from ..errors import ShapeError
from ..core.tensor import as_tensor
from . import init as initialisers
from .activations import ReLU, Activation, activation
from .module import Module, placement
from .parameter import Parameter


class Linear(Module):
    """``Z[l] = W[l] A[l-1] + b[l]`` (eq 33): W is (n_out, n_in), b is (n_out, 1), and b is
    added to every column by broadcasting (eqs 30-32); its gradient is eq 80's sum over columns.

    ``Linear(n_in, n_out, init="xavier", rng=None, layer=None, like=None, device=None)``.
    ``init`` names an initialiser of ``nn.init`` (``"small"`` is the seed's ``randn * 0.01``)
    or is a function ``init(shape, rng)``; ``rng`` is a ``numpy.random.Generator`` (or an int
    seed) so that the same seed gives the same W. b starts at zero. With ``layer=l`` the
    parameters are named ``W[l]`` and ``b[l]``, the output ``Z[l]``, inside
    ``ag.name_scope("layer l")``; ``Sequential`` and ``MLP`` number their layers 1, 2, ... by
    themselves. ``like``/``device`` put W and b in another backend, as ``Module.to`` does
    (``like=torch``, ``like=X``, ``device="cuda"``): W is drawn by numpy's generator and moved,
    so the same seed gives the same W on every backend.
    """

    def __init__(self, n_in, n_out, init="xavier", rng=None, layer=None, like=None, device=None):
        for label, value in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Linear: {label} must be a whole number >= 1, got {value!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        generator = initialisers._generator(rng)
        where = placement(like, device, "Linear")
        self.W = Parameter(initialisers.initial_array(init, (self.n_out, self.n_in), generator, where))
        self.b = Parameter(backend.moved(np.zeros((self.n_out, 1)), where))
        self.layer = None
        self.set_layer(layer)

    def set_layer(self, layer):
        """Number this layer ``l``: names W[l], b[l] and Z[l] (None: plain W, b, Z)."""
        self.layer = layer
        suffix = "" if layer is None else f"[{layer}]"
        self.W.name = f"W{suffix}"
        self.b.name = f"b{suffix}"

    def forward(self, A_prev):
        A_prev = as_tensor(A_prev)
        if A_prev.ndim != 2 or A_prev.shape[0] != self.n_in:
            where = f"layer {self.layer}: " if self.layer is not None else ""
            hint = (f"; one sample is a column: reshape it to ({self.n_in}, 1)"
                    if A_prev.ndim == 1 else "; samples are columns")
            raise ShapeError(f"Linear({self.n_in} -> {self.n_out}): {where}input has shape "
                             f"{A_prev.shape}, expected ({self.n_in}, m){hint}")
        if self.layer is None:
            return (self.W @ A_prev + self.b).named("Z")
        with name_scope(f"layer {self.layer}"):
            return (self.W @ A_prev + self.b).named(f"Z[{self.layer}]")

    def extra_repr(self):
        layer = "" if self.layer is None else f", layer={self.layer}"
        return f"n_in={self.n_in}, n_out={self.n_out}{layer}"


class Sequential(Module):
    """Modules applied one after the other: ``Sequential(Linear(3, 4), Sigmoid(), ...)``.

    Children are registered as ``0``, ``1``, ... (``model.0.W`` in ``named_parameters``). Linear
    layers without a number are numbered 1, 2, ... in order, and an activation without one takes
    the number of the Linear before it, so the seed's names (W[1], Z[1], A[1]) appear by
    themselves.
    """

    def __init__(self, *modules):
        if len(modules) == 1 and isinstance(modules[0], (list, tuple)):
            modules = tuple(modules[0])
        layer = 0
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: item {index} is a {type(module).__name__}, not a Module")
            if isinstance(module, Linear):
                if module.layer is None:
                    module.set_layer(layer + 1)
                layer = module.layer if isinstance(module.layer, int) else layer + 1
            elif isinstance(module, Activation) and module.layer is None and layer:
                module.layer = layer
            setattr(self, str(index), module)
        self._length = len(modules)

    def __len__(self):
        return self._length

    def __getitem__(self, index):
        if not -self._length <= index < self._length:
            raise IndexError(f"Sequential: index {index} out of range for {self._length} modules")
        return getattr(self, str(index % self._length))

    def __iter__(self):
        return (self[i] for i in range(self._length))

    def forward(self, X):
        A = X
        for module in self:
            A = module(A)
        return A


class MLP(Module):
    """A fully connected network from its layer sizes: eqs 33-34 for l = 1..N.

    ``MLP(sizes, activations="sigmoid", init="auto", rng=None, like=None, device=None)``:
    ``sizes`` is n[0], ..., n[N]
    (the seed's network is ``MLP([3, 4, 1])``, sigmoid everywhere); ``activations`` is one name
    (sigmoid, tanh, relu, identity, softmax) for every layer, or one per layer. ``init="auto"``
    draws He for ReLU layers and Xavier for the others; ``"small"`` is the seed's ``randn*0.01``.
    Parameters are ``layers.0.W`` (= W[1]), ``layers.0.b``, ``layers.1.W`` (= W[2]), ...
    ``forward(X)`` returns A[N], shape (n[N], m). Use ``"identity"`` as the last activation to
    get logits for ``binary_cross_entropy_with_logits`` / ``softmax_cross_entropy``, or
    predictions for ``mean_squared_error``. ``like``/``device``: the backend of every layer, as
    ``Linear``'s (``MLP([3, 4, 1], like=torch)``; the same seed, the same W on every backend).
    """

    def __init__(self, sizes, activations="sigmoid", init="auto", rng=None, like=None,
                 device=None):
        sizes = list(sizes)
        if len(sizes) < 2 or any(not isinstance(n, (int, np.integer)) or n < 1 for n in sizes):
            raise ValueError(f"MLP: sizes must be at least two whole numbers >= 1 "
                             f"(n[0], ..., n[N]), got {sizes!r}")
        N = len(sizes) - 1
        names = [activations] * N if isinstance(activations, (str, Module)) else list(activations)
        if len(names) != N:
            raise ValueError(f"MLP: {len(names)} activation(s) given for {N} layer(s) after the "
                             f"input (sizes {sizes})")
        generator = initialisers._generator(rng)
        self.sizes = [int(n) for n in sizes]
        self.activations = [activation(name, layer=l) for l, name in enumerate(names, start=1)]
        for l, module in enumerate(self.activations, start=1):
            if isinstance(module, Activation) and module.layer is None:
                module.layer = l
        self.layers = [
            Linear(sizes[l - 1], sizes[l], _auto_init(init, self.activations[l - 1]), generator,
                   layer=l, like=like, device=device)
            for l in range(1, N + 1)]

    @classmethod
    def seed_network(cls, rng=None, like=None, device=None):
        """The seed's 3-4-1 network, sigmoid everywhere, W drawn as ``randn * 0.01`` (eqs 21-29),
        in numpy or where ``like``/``device`` say (the same W for the same seed)."""
        return cls([3, 4, 1], "sigmoid", init="small", rng=rng, like=like, device=device)

    def forward(self, X):
        A = X
        for linear, g in zip(self.layers, self.activations):
            A = g(linear(A))
        return A

    def __repr__(self):
        lines = [f"MLP({self.sizes}, {self.num_parameters()} parameters"]
        for index, (linear, g) in enumerate(zip(self.layers, self.activations)):
            lines.append(f"  (layers.{index}): {linear!r} -> {type(g).__name__}")
        return "\n".join(lines) + "\n)"


def _auto_init(init, g):
    if init != "auto":
        return init
    return "he" if isinstance(g, ReLU) else "xavier"


__all__ = ["Linear", "Sequential", "MLP"]

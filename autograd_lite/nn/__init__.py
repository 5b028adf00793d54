"""autograd_lite.nn: networks in the seed's layout, every gradient from the engine.

``Module`` (parameters found from attributes), ``Parameter``, ``Linear`` (eq 33), ``Sequential``,
the activations ``Sigmoid``, ``Tanh``, ``ReLU``, ``Identity``, ``Softmax`` (eq 34), the ``MLP``
builder, initialisers in ``nn.init``, functions and losses in ``nn.functional``. Samples are
columns: X is (n[0], m); W[l] is (n[l], n[l-1]); b[l] is (n[l], 1).

>>> import numpy as np
>>> from autograd_lite import nn
>>> model = nn.MLP([3, 4, 1], "sigmoid", init="small", rng=np.random.default_rng(0))
>>> [name for name, _ in model.named_parameters()]
['layers.0.W', 'layers.0.b', 'layers.1.W', 'layers.1.b']
>>> model(np.zeros((3, 5))).shape
(1, 5)
"""
from . import functional, init
from .activations import Identity, ReLU, Sigmoid, Softmax, Tanh
from .layers import MLP, Linear, Sequential
from .module import Module
from .parameter import Parameter

__all__ = ["Module", "Parameter", "Linear", "Sequential", "MLP", "Sigmoid", "Tanh", "ReLU",
           "Identity", "Softmax", "functional", "init"]

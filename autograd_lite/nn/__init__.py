"""autograd_lite.nn: networks in the seed's layout, every gradient from the engine.

``Module`` (parameters found from attributes; ``train()``/``eval()``), ``Parameter``, ``Linear``
(eq 33), ``Sequential``, the activations ``Sigmoid``, ``Tanh``, ``ReLU``, ``Identity``,
``Softmax`` (eq 34), ``LeakyReLU``, ``ELU``, ``GELU``, ``Softplus``, the ``MLP`` builder,
``Dropout``, ``BatchNorm``, ``LayerNorm``, ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, ``Flatten``,
``Unflatten``, ``Embedding``, initialisers in ``nn.init``, functions and losses in
``nn.functional``, the losses also here (``nn.mean_squared_error`` is ``ag.mean_squared_error``). Samples are the last axis: X is (n[0], m); W[l] is (n[l], n[l-1]); b[l] is
(n[l], 1); images are (C, H, W, m).

>>> import numpy as np
>>> from autograd_lite import nn
>>> model = nn.MLP([3, 4, 1], "sigmoid", init="small", rng=np.random.default_rng(0))
>>> [name for name, _ in model.named_parameters()]
['layers.0.W', 'layers.0.b', 'layers.1.W', 'layers.1.b']
>>> model(np.zeros((3, 5))).shape
(1, 5)
"""
from . import functional, init
from .activations import ELU, GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from .conv import AvgPool2d, Conv2d, Flatten, MaxPool2d, Unflatten
from .embedding import Embedding
from .layers import MLP, Linear, Sequential
from .module import Module
from .normalization import BatchNorm, LayerNorm
from .parameter import Parameter
from .regularization import Dropout
from ..losses import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                      mean_squared_error, softmax_cross_entropy)

__all__ = ["Module", "Parameter", "Linear", "Sequential", "MLP", "Sigmoid", "Tanh", "ReLU",
           "Identity", "Softmax", "LeakyReLU", "ELU", "GELU", "Softplus", "Dropout", "BatchNorm",
           "LayerNorm", "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "Unflatten", "Embedding",
           "functional", "init", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "softmax_cross_entropy", "cross_entropy", "mean_squared_error"]

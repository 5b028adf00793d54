"""autograd_lite: a small reverse-mode autodiff engine that shows its work.

It records numpy operations on ``Tensor`` into a graph and differentiates any graph by one
generic reverse-mode traversal. The equation numbers in the docs refer to the seed derivation
(docs/seed/EQUATIONS.md in the repository). Samples are columns: X is (n[0], m).
"""
from .backend import MixedBackendsError
from .core import Tensor, as_tensor, enable_grad, is_grad_enabled, name_scope, no_grad
from .errors import GraphFreedError, SaturationWarning, ShapeError
from .transforms import grad, hvp, value_and_grad
from .losses import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                     mean_squared_error, softmax_cross_entropy)
from .ops import Primitive
from . import backend as _backend

__version__ = "0.1.0"


def _unary(method_name, doc):
    def function(x, *args, **kwargs):
        return getattr(as_tensor(x), method_name)(*args, **kwargs)
    function.__name__ = method_name
    function.__doc__ = doc
    return function


sigmoid = _unary("sigmoid", "ag.sigmoid(t) = t.sigmoid(): s(z) = 1 / (1 + e^-z), eq 7.")
tanh = _unary("tanh", "ag.tanh(t) = t.tanh().")
relu = _unary("relu", "ag.relu(t) = t.relu() (gradient 0 at 0).")
exp = _unary("exp", "ag.exp(t) = t.exp().")
log = _unary("log", "ag.log(t) = t.log() (eq 1).")
sum = _unary("sum", "ag.sum(t, axis=None, keepdims=False) = t.sum(...).")  # noqa: A001
mean = _unary("mean", "ag.mean(t, axis=None, keepdims=False) = t.mean(...) (eq 76).")
softmax = _unary("softmax", "ag.softmax(t, axis=0) = t.softmax(axis).")
log_softmax = _unary("log_softmax", "ag.log_softmax(t, axis=0) = t.log_softmax(axis).")
reshape = _unary("reshape", "ag.reshape(t, shape) = t.reshape(shape).")
transpose = _unary("transpose", "ag.transpose(t, axes=None) = t.transpose(axes).")
broadcast_to = _unary("broadcast_to", "ag.broadcast_to(t, shape) = t.broadcast_to(shape) (eq 32's B[1]).")


def matmul(x, y):
    """ag.matmul(x, y) = x @ y (eqs 26, 33)."""
    return as_tensor(x) @ y


# The other ops as functions (their Tensor methods delegate to the same module functions).
# NOTE: max, min and abs are here as ag.max, ag.min, ag.abs but not in __all__, so that
# `from autograd_lite import *` never shadows Python's builtins.
from .ops.elementwise import (clip, cos, elu, gelu, leaky_relu, maximum, minimum,  # noqa: E402
                              sin, softplus, sqrt, square)
from .ops.shape import concatenate, split, stack, where  # noqa: E402
from .ops.reduce import argmax, argmin, logsumexp, max, min, std, var  # noqa: E402,A004
abs = _unary("abs", "ag.abs(t) = t.abs() (gradient sign(t), 0 at 0).")  # noqa: A001


def to_numpy(x):
    """The values of ``x`` (a Tensor of any backend, or a raw array) as a numpy array on the
    host: a numpy Tensor's own array, a Dask array computed, a device array copied over."""
    return x.numpy() if isinstance(x, Tensor) else _backend.to_numpy(x)


def zero_grad(tensors):
    """Reset ``.grad`` to None on each tensor (e.g. a list of parameters)."""
    for tensor in tensors:
        tensor.grad = None


__all__ = [
    "Tensor", "Primitive", "as_tensor", "to_numpy", "MixedBackendsError", "no_grad", "enable_grad", "is_grad_enabled", "name_scope",
    "grad", "value_and_grad", "hvp", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "softmax_cross_entropy", "cross_entropy", "mean_squared_error", "nn", "optim", "draw",
    "sigmoid", "tanh", "relu", "exp", "log", "mean", "softmax", "log_softmax", "reshape",
    "transpose", "broadcast_to", "matmul", "zero_grad", "ShapeError", "GraphFreedError", "SaturationWarning",
    "Tape", "GraphChangedError",
    "argmax", "argmin", "logsumexp", "var", "std", "concatenate", "stack", "split", "where",
    "maximum", "minimum", "clip", "square", "sqrt", "sin", "cos", "leaky_relu", "elu", "gelu",
    "softplus",
]

# Imported last: they are built on everything above (``ag.nn.MLP``, ``ag.optim.SGD``).
from . import nn, optim  # noqa: E402
from .compile import GraphChangedError, Tape, compile  # noqa: E402,A004 - ag.compile(step): replayed steps


def __getattr__(name):
    """``ag.draw`` and the packages not imported above (``viz``, ``check``, ``cli``), imported on
    first use: the pictures need graphviz, which a training script never loads."""
    if name == "draw":
        from .viz import draw
        return draw
    if name in ("viz", "check", "cli", "train", "data", "reference", "roundoff", "io"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

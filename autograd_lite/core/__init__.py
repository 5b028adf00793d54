"""The engine: Tensor and its operators (``tensor``), the recorded graph (``graph``), the one
reverse-mode traversal and eq 80's un-broadcasting (``backward``), grad modes and name scopes
(``modes``), this thread's observers of every op (``hooks``), and numpy's functions on Tensors
(``numpy_interop``).

Read in this order: tensor.py, graph.py, backward.py, then the ops a step uses (``ops``).
"""
from . import numpy_interop  # noqa: F401 - installs Tensor.__array_ufunc__/__array_function__
from .backward import backpropagate, sum_to_shape, unbroadcast_axes
from .graph import Node, topological_order
from .modes import current_scope, enable_grad, is_grad_enabled, name_scope, no_grad
from .tensor import Tensor, apply, as_tensor, tensor_of

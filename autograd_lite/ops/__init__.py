"""The primitives, grouped by kind. Each is one class: ``forward``, ``vjp`` and the ``formula``
pictures print (``base.Primitive``); one shared instance of each (``ADD``, ``SIGMOID``, ...) is
what the engine records. ``ag.Primitive`` is the base class for your own.

- ``arithmetic``: + - * / ** and unary minus (numpy broadcasting; eq 80 un-broadcasts);
- ``matmul``: ``W A`` (eq 33) and ``dW = dZ Aᵀ``, ``dA = Wᵀ dZ`` (eqs 79, 81);
- ``elementwise``: exp, log, the activations (sigmoid eqs 7-8), maximum/minimum, clip, ...;
- ``reduce``: sum, mean (eq 76), max, min, logsumexp, var, std, argmax/argmin;
- ``shape``: reshape, transpose, broadcast_to, getitem, concatenate/stack/split, where, detach;
- ``losses``: softmax, log_softmax, the fused log-loss of logits (eqs 1, 76, 78), xlogy,
  pick_classes.
"""
from .arithmetic import ADD, DIV, MUL, NEG, POW, POW_SCALAR, SUB
from .base import Primitive, data_of, describe_axes, normalize_axis, short_repr
from .elementwise import (ABS, CLIP, COS, ELU_, EXP, GELU_, LEAKY_RELU, LOG, MAXIMUM, MINIMUM,
                          NORMAL_CDF, RELU, SIGMOID, SIN, SOFTPLUS, SQRT, SQUARE, TANH)
from .losses import (BCE_WITH_LOGITS, LOG_SOFTMAX, PICK_CLASSES, SOFTMAX, XDIVY, XLOGY, xdivy,
                     xlogy)
from .matmul import MATMUL
from .reduce import LOGSUMEXP, MAX, MEAN, MIN, SUM, VAR
from .shape import (BROADCAST_TO, CONCATENATE, DETACH, GETITEM, INDEX_ADD, RESHAPE, STACK,
                    TRANSPOSE, WHERE)

PRIMITIVES = (ADD, SUB, MUL, DIV, POW, POW_SCALAR, NEG, MATMUL, EXP, LOG, SIGMOID, TANH, RELU, ABS,
              MAXIMUM, MINIMUM, CLIP, SQUARE, SQRT, SIN, COS, LEAKY_RELU, ELU_, SOFTPLUS,
              NORMAL_CDF, GELU_, SUM, MEAN, MAX, MIN, LOGSUMEXP, VAR, RESHAPE, TRANSPOSE,
              BROADCAST_TO, GETITEM, INDEX_ADD, CONCATENATE, STACK, WHERE, DETACH, SOFTMAX,
              LOG_SOFTMAX, BCE_WITH_LOGITS, XLOGY, XDIVY, PICK_CLASSES)

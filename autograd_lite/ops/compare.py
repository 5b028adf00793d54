"""Comparisons, tests and arg-extrema: values without a gradient (a step function's derivative
is 0 wherever it exists).

Eagerly, ``t < 0`` is a plain boolean ndarray and ``t.argmax()`` an integer one: nothing to
record. While ``ag.compile`` traces a step, the engine records them with these primitives
instead, so that a mask or an index the step derives from its data (a Huber loss's
``abs(r) < delta``, the arg-max a step picks) is recomputed by every replay rather than
frozen at its traced value.
"""
from __future__ import annotations

import numpy as np

from .base import Primitive

# what ``compare`` may apply: numpy's comparisons, logical operators and tests
COMPARISONS = ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")
LOGICAL = ("logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and",
           "bitwise_or", "bitwise_xor", "invert")
TESTS = ("isfinite", "isinf", "isnan", "signbit", "sign")


class Compare(Primitive):
    """``how(*inputs)`` for one of numpy's comparisons, logical operators or tests
    (``how="less"`` is ``x < y``): elementwise, broadcasting, no gradient."""
    name = "compare"
    differentiable = False
    vjp_reads_inputs = vjp_reads_output = False

    def forward(self, *arrays, how):
        return np.asarray(getattr(np, how)(*arrays))

    def vjp(self, g, inputs, output, wants, how):
        raise RuntimeError(f"compare: {how} has no gradient to pass back")

    def formula(self, i, g, names, params, input_shapes):
        return f"0 ({params['how']}: no gradient)"


class ArgExtremum(Primitive):
    """``np.argmax``/``np.argmin`` of x over ``axis``: integer indices, no gradient."""
    name = "arg_extremum"
    differentiable = False
    vjp_reads_inputs = vjp_reads_output = False

    def forward(self, x, how, axis, keepdims):
        return np.asarray(getattr(np, how)(x, axis=axis, keepdims=keepdims))

    def vjp(self, g, inputs, output, wants, how, axis, keepdims):
        raise RuntimeError(f"arg_extremum: {how} has no gradient to pass back")

    def formula(self, i, g, names, params, input_shapes):
        return f"0 ({params['how']}: an index, no gradient)"


COMPARE, ARG_EXTREMUM = Compare(), ArgExtremum()

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

from .. import backend
from .base import Primitive

# what ``compare`` may apply: numpy's comparisons, logical operators and tests
COMPARISONS = ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")
LOGICAL = ("logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and",
           "bitwise_or", "bitwise_xor", "invert")
TESTS = ("isfinite", "isinf", "isnan", "signbit", "sign")
# the array API standard's name where numpy's differs
STANDARD_NAMES = {"invert": "bitwise_invert"}


def _namespace(arrays):
    """The namespace the inputs compute in: a non-numpy one's if any (numpy arrays join Dask's,
    the only mix ``backend.join`` lets through), else numpy's."""
    for array in arrays:
        if not isinstance(array, (np.ndarray, np.generic)):
            return backend.namespace(array)
    return None


class Compare(Primitive):
    """``how(*inputs)`` for one of numpy's comparisons, logical operators or tests
    (``how="less"`` is ``x < y``): elementwise, broadcasting, no gradient."""
    name = "compare"
    differentiable = False
    vjp_reads_inputs = vjp_reads_output = False

    def forward(self, *arrays, how):
        xp = _namespace(arrays)
        if xp is None:  # numpy's own function: numpy's rules on any dtype
            return np.asarray(getattr(np, how)(*arrays))
        if how.startswith("logical_"):  # numpy takes any number as a truth value (nonzero is
            # true); the standard's logical functions take booleans only
            arrays = [a if backend.dtype_kind(a.dtype) == "b" else a != 0 for a in arrays]
        return getattr(xp, STANDARD_NAMES.get(how, how))(*arrays)

    def vjp(self, g, inputs, output, wants, how):
        raise RuntimeError(f"compare: {how} has no gradient to pass back")

    def formula(self, i, g, names, params, input_shapes):
        return f"0 ({params['how']}: no gradient)"


class ArgExtremum(Primitive):
    """``argmax``/``argmin`` of x over ``axis`` (None: the index into the flattened x), in x's
    namespace: integer indices, no gradient."""
    name = "arg_extremum"
    differentiable = False
    vjp_reads_inputs = vjp_reads_output = False

    def forward(self, x, how, axis, keepdims):
        if isinstance(x, np.ndarray):
            return np.asarray(getattr(np, how)(x, axis=axis, keepdims=keepdims))
        return arg_extremum(x, how, axis, keepdims)

    def vjp(self, g, inputs, output, wants, how, axis, keepdims):
        raise RuntimeError(f"arg_extremum: {how} has no gradient to pass back")

    def formula(self, i, g, names, params, input_shapes):
        return f"0 ({params['how']}: an index, no gradient)"


def arg_extremum(x, how, axis, keepdims):
    """``how`` ("argmax" or "argmin") of the array x over ``axis`` in its own namespace (the
    standard's, like numpy's: axis None indexes the flattened x, the first one at a tie)."""
    return getattr(backend.namespace(x), how)(x, axis=axis, keepdims=keepdims)


COMPARE, ARG_EXTREMUM = Compare(), ArgExtremum()

"""Reductions: sum and mean (eq 76's mean over the samples), max, min, logsumexp, var (and
std = √var); argmax/argmin.

Each primitive reduces over ``axis`` (None: all; an int, negative, or a tuple; normalised by
``normalize_axis`` to a sorted tuple) with ``keepdims``, and its vjp first puts g back in the
kept shape (reduced axes of length 1) so that it broadcasts against the input. vjps use only
operators, ``.reshape``, ``.mean`` and the dual-mode helpers, so they run on Tensors under
``ag.grad`` (second order).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend
from ..errors import ShapeError
from .base import (Primitive, broadcast_to, count, data_of, describe_axes, errstate, exp, factor,
                   kept_shape, mean, namespace, normalize_axis, refuse_empty, refuse_numpy_extras,
                   reshape, shape_of, sum_)
from .compare import arg_extremum
from .elementwise import sqrt

class Sum(Primitive):
    """Sum over ``axis`` (normalised tuple). Its vjp broadcasts g back (the reverse of eq 80)."""
    name = "sum"

    def forward(self, x, axis, keepdims):
        return namespace(x).sum(x, axis=axis, keepdims=keepdims)

    def vjp(self, g, inputs, output, wants, axis, keepdims):
        shape = inputs[0].shape
        return (broadcast_to(reshape(g, kept_shape(shape, axis)), shape),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} repeated over {describe_axes(params['axis'], len(input_shapes[0]))}"


class Mean(Primitive):
    """Mean over ``axis``: the sum divided by the count of reduced elements (eq 76's 1/m)."""
    name = "mean"

    def forward(self, x, axis, keepdims):
        return namespace(x).mean(x, axis=axis, keepdims=keepdims)

    def vjp(self, g, inputs, output, wants, axis, keepdims):
        shape = inputs[0].shape
        return (broadcast_to(reshape(g, kept_shape(shape, axis)), shape) / count(shape, axis),)

    def formula(self, i, g, names, params, input_shapes):
        axes, shape = params["axis"], input_shapes[0]
        return f"{g} repeated over {describe_axes(axes, len(shape))}, / {count(shape, axes)}"


SUM, MEAN = Sum(), Mean()

class _ExtremumReduction(Primitive):
    """max or min over ``axis``. NOTE: the gradient goes to the element(s) that attain the
    extremum; where several tie, g is split equally between them (each gets g / count), the
    average of the one-sided choices (PyTorch's ``amax``/``amin`` do the same; ``torch.max``
    with a dim picks one index instead)."""

    def forward(self, x, axis, keepdims):
        refuse_empty(self.name, x.shape, axis)
        return getattr(namespace(x), self.name)(x, axis=axis, keepdims=keepdims)

    def vjp(self, g, inputs, output, wants, axis, keepdims):
        x = data_of(inputs[0])
        kept = kept_shape(x.shape, axis)
        winners = factor(x == reshape(data_of(output), kept), x)
        share = winners / sum_(winners, axis=axis, keepdims=True)
        return (reshape(g, kept) * share,)

    def formula(self, i, g, names, params, input_shapes):
        where = describe_axes(params["axis"], len(input_shapes[0]))
        return f"{g} to the arg-{self.name} over {where}, split at ties"


class Max(_ExtremumReduction):
    name = "max"


class Min(_ExtremumReduction):
    name = "min"


class LogSumExp(Primitive):
    """``log Σ eˣ`` over ``axis``, shifted by the max so that no exponential overflows (the
    normaliser of softmax and log_softmax). Its derivative is softmax: g ∘ e^(x − output)."""
    name = "logsumexp"

    def forward(self, x, axis, keepdims):
        refuse_empty(self.name, x.shape, axis)
        xp = namespace(x)
        shift = xp.max(x, axis=axis, keepdims=True)
        shift = xp.where(xp.isfinite(shift), shift, 0.0)  # all -inf (or an inf): no shift
        with errstate(xp, divide="ignore"):  # log(0) = -inf where every x is -inf
            result = shift + xp.log(xp.sum(xp.exp(x - shift), axis=axis, keepdims=True))
        return result if keepdims else xp.reshape(
            result, tuple(n for i, n in enumerate(x.shape) if i not in axis))

    def vjp(self, g, inputs, output, wants, axis, keepdims):
        x = inputs[0]
        kept = kept_shape(x.shape, axis)
        return (reshape(g, kept) * exp(x - reshape(output, kept)),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ softmax({names[0]}) over {describe_axes(params['axis'], len(input_shapes[0]))}"


class Var(Primitive):
    """Variance over ``axis``: ``Σ (x − mean)² / (N − ddof)``, N the number of reduced elements
    (ddof=0, numpy's default, the population variance; ddof=1 the unbiased sample variance,
    PyTorch's default). Derivative: 2 (x − mean) / (N − ddof)."""
    name = "var"
    vjp_reads_output = False

    def forward(self, x, axis, ddof, keepdims):
        n = count(x.shape, axis)
        if n - ddof <= 0:
            raise ShapeError(f"var: {n} element(s) over {describe_axes(axis, x.ndim)} of shape "
                             f"{x.shape} with ddof={ddof}: N - ddof must be positive")
        if isinstance(x, np.ndarray):  # numpy's own (the standard's correction= is numpy 2's)
            return x.var(axis=axis, ddof=ddof, keepdims=keepdims)
        return namespace(x).var(x, axis=axis, correction=ddof, keepdims=keepdims)

    def vjp(self, g, inputs, output, wants, axis, ddof, keepdims):
        x = inputs[0]
        kept = kept_shape(x.shape, axis)
        centred = x - mean(x, axis=axis, keepdims=True)
        return (reshape(g, kept) * centred * (2.0 / (count(x.shape, axis) - ddof)),)

    def formula(self, i, g, names, params, input_shapes):
        axes, shape = params["axis"], input_shapes[0]
        divisor = count(shape, axes) - params["ddof"]
        return f"{g} ∘ 2({names[0]} − mean) / {divisor:g}"


MAX, MIN, LOGSUMEXP, VAR = Max(), Min(), LogSumExp(), Var()


def max(x, axis=None, keepdims=False, out=None):  # noqa: A001 - numpy's name; not in __all__
    """The largest element over ``axis`` (``np.max``/``np.amax``; PyTorch's ``amax``). The
    gradient goes to the arg-max, split equally between tied elements."""
    refuse_numpy_extras("max", out=out)
    return MAX(x, axis=normalize_axis(axis, len(shape_of(x)), "max"), keepdims=bool(keepdims))


def min(x, axis=None, keepdims=False, out=None):  # noqa: A001
    """The smallest element over ``axis`` (``np.min``; PyTorch's ``amin``). The gradient goes
    to the arg-min, split equally between tied elements."""
    refuse_numpy_extras("min", out=out)
    return MIN(x, axis=normalize_axis(axis, len(shape_of(x)), "min"), keepdims=bool(keepdims))


def logsumexp(x, axis=None, keepdims=False):
    """``log Σ exp(x)`` over ``axis``, stable for any x (``scipy.special.logsumexp``,
    ``torch.logsumexp``)."""
    return LOGSUMEXP(x, axis=normalize_axis(axis, len(shape_of(x)), "logsumexp"),
                     keepdims=bool(keepdims))


def _ddof(ddof, op_name):
    if isinstance(ddof, bool) or not isinstance(ddof, numbers.Integral) or ddof < 0:
        raise ValueError(f"{op_name}: ddof must be a whole number >= 0, got {ddof!r}")
    return int(ddof)


def var(x, axis=None, ddof=0, keepdims=False, dtype=None, out=None):
    """Variance over ``axis`` with ``ddof`` (numpy's default 0; ``ddof=1`` is PyTorch's
    default ``unbiased=True``)."""
    refuse_numpy_extras("var", dtype=dtype, out=out)
    return VAR(x, axis=normalize_axis(axis, len(shape_of(x)), "var"), ddof=_ddof(ddof, "var"),
               keepdims=bool(keepdims))


def std(x, axis=None, ddof=0, keepdims=False, dtype=None, out=None):
    """Standard deviation: ``sqrt(var(x, axis, ddof))``, two primitives (its gradient is +inf
    or nan where the variance is 0, as in numpy's and PyTorch's)."""
    refuse_numpy_extras("std", dtype=dtype, out=out)
    _ddof(ddof, "std")
    return sqrt(var(x, axis, ddof, keepdims))


def _arg(function, op_name, x, axis, keepdims):
    if axis is not None and (isinstance(axis, bool) or not isinstance(axis, numbers.Integral)):
        raise ShapeError(f"{op_name}: axis must be None or a single int, got {axis!r}")
    data = x.data if hasattr(x, "grad_fn") else x  # a Tensor's own array, in its backend
    if not backend.is_foreign_array(data):
        data = np.asarray(data)
    if math.prod(data.shape) == 0:
        raise ShapeError(f"{op_name}: the array of shape {tuple(data.shape)} has no elements")
    if axis is not None:
        normalize_axis(axis, data.ndim, op_name)  # the range check, with the op's name
    if isinstance(data, np.ndarray):
        return np.asarray(function(data, axis=axis, keepdims=bool(keepdims)))
    return arg_extremum(data, op_name, axis, bool(keepdims))


def argmax(x, axis=None, keepdims=False):
    """Index of the largest element over ``axis`` (the first one at a tie), as an integer
    array of x's backend (an ndarray for numpy): an index has no gradient. Axis None: the
    index into the flattened array."""
    return _arg(np.argmax, "argmax", x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    """Index of the smallest element over ``axis`` (the first at a tie), an integer array of
    x's backend."""
    return _arg(np.argmin, "argmin", x, axis, keepdims)


__all__ = ["max", "min", "argmax", "argmin", "logsumexp", "var", "std"]

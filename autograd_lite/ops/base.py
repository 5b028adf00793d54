"""The base of every primitive, and the helpers the rules share.

A primitive is a small stateless object with

- ``forward(*arrays, **params) -> ndarray``: plain numpy in, plain numpy out;
- ``vjp(g, inputs, output, wants, **params) -> tuple``: given ``g = dJ/d(output)``, one
  gradient ``dJ/d(input)`` per input (or None where ``wants[i]`` is False: that input needs no
  gradient, so no work is done for it);
- ``formula(...)``: the vjp as the text graph pictures print.

Every vjp is written ONCE and runs in two modes. In the ordinary first-order ``backward()``
the engine passes ndarrays and the rule is plain numpy. Under ``create_graph`` (``ag.grad``
and higher order) the engine passes Tensors, and the very same expression records new graph
nodes, so the gradient can be differentiated again. That is why the rules use only operators
(``* / + - @``), methods that ndarrays and Tensors share (``.sum``, ``.reshape``,
``.transpose``, ``.T``) and the small dual-mode helpers defined here.

A vjp may return a gradient in the *broadcast* shape of the output: the engine sums it back to
the input's shape in one place for every op (``core.backward.sum_to_shape``, eq 80's sum over
the columns) and asserts the result has the input's shape.

This package knows nothing of Tensor or of the graph: the engine (``core``) records a
primitive when it is called (``Primitive.apply``, set by ``core.tensor``).
"""
from __future__ import annotations

import math
import numbers
import sys

import numpy as np

from .. import backend
from ..backend import errstate, namespace
from ..errors import ShapeError, broadcast_error

# --- dual-mode helpers: an array in -> its namespace; Tensor in -> recorded Tensor op ---------
# An array of any backend computes with its own namespace ``xp = namespace(x)`` (numpy's for an
# ndarray: array-api-compat's numpy is numpy's own functions); the standard has these as
# functions, not methods, which is why the rules call them here rather than ``x.reshape(...)``.

def is_array(x) -> bool:
    """An array of any backend or a number (not a Tensor)."""
    return isinstance(x, _PLAIN) or backend.is_array(x)


_PLAIN = (np.ndarray, np.generic, float, int)


def data_of(x):
    """The raw array behind ``x`` (a Tensor's ``.data``, or ``x`` itself)."""
    return x if is_array(x) else x.data


def exp(x):
    return namespace(x).exp(x) if is_array(x) else x.exp()


def log(x):
    if is_array(x):
        xp = namespace(x)
        with errstate(xp, divide="ignore", invalid="ignore"):
            return xp.log(x)
    return x.log()


def broadcast_to(x, shape):
    return namespace(x).broadcast_to(x, shape) if is_array(x) else x.broadcast_to(shape)


def reshape(x, shape):
    if isinstance(x, (np.ndarray, np.generic)) or not is_array(x):  # a method of its own
        return x.reshape(shape)
    return namespace(x).reshape(x, shape)


def sum_(x, axis, keepdims=False):
    if isinstance(x, np.ndarray):
        return x.sum(axis=axis, keepdims=keepdims)
    return namespace(x).sum(x, axis=axis, keepdims=keepdims) if is_array(x) \
        else x.sum(axis=axis, keepdims=keepdims)


def mean(x, axis, keepdims=False):
    if isinstance(x, np.ndarray):
        return x.mean(axis=axis, keepdims=keepdims)
    return namespace(x).mean(x, axis=axis, keepdims=keepdims) if is_array(x) \
        else x.mean(axis=axis, keepdims=keepdims)


def transpose(x, axes=None):
    """``x`` with its axes reversed (None) or permuted as ``axes``."""
    if isinstance(x, np.ndarray):
        return x.transpose(axes)
    if not is_array(x):
        return x.transpose(axes)
    return namespace(x).permute_dims(x, tuple(reversed(range(x.ndim))) if axes is None else axes)


def any_(x) -> bool:
    """Whether any element of the array ``x`` is true (a branch on values: computes a lazy
    array)."""
    return bool(x.any() if isinstance(x, np.ndarray) else namespace(x).any(x))


def factor(mask, like):
    """A boolean ``mask`` as a factor that multiplies ``like`` (its dtype): numpy multiplies
    booleans itself; the standard asks for one dtype."""
    if isinstance(mask, (np.ndarray, np.generic, bool)):
        return mask
    return namespace(mask).astype(mask, data_of(like).dtype)


def dual(primitive, x, **params):
    """``primitive`` on ``x``: plain numpy for an array (first-order backward), a recorded op
    for a Tensor (under ``ag.grad``), so a vjp that calls it can be differentiated again."""
    return primitive.forward(x, **params) if is_array(x) else primitive(x, **params)


def of_dtype(value, like):
    """The number ``value`` as a 0-d array of ``like``'s dtype and namespace."""
    x = data_of(like)
    return namespace(x).asarray(value, dtype=x.dtype)


def finite_number(value, op_name, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{op_name}: {what} must be a finite number, got {value!r}")
    return float(value)


class Primitive:
    """Base class of every primitive. Subclass it to add your own operation.

    A subclass sets ``name`` (shown in errors and graph pictures) and defines ``forward`` and
    ``vjp`` as described in this module's docstring. Calling the instance on Tensors applies it
    and records it in the graph: ``my_op(x, y, some_param=3)``.
    """

    name = "primitive"
    # What the vjp reads besides g: the input arrays, the output array. The graph node saves
    # exactly these (core.graph.Node) and the vjp gets None for the others, so an array no rule
    # reads is freed as soon as its tensor is dropped. True is always correct; say False only
    # where the vjp never looks, not even at a shape.
    vjp_reads_inputs = True
    vjp_reads_output = True
    # False for an op whose result never carries a gradient (detach): no node is recorded for
    # it, except while ag.compile traces a step, so that the replay recomputes it too.
    differentiable = True
    # True for an op whose forward changes state kept outside the graph (BatchNorm's running
    # statistics): ag.compile replays it on every call although J does not depend on it.
    updates_state = False

    def forward(self, *arrays, **params):
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def vjp(self, g, inputs, output, wants, **params):
        raise NotImplementedError(f"{type(self).__name__}.vjp is not defined")

    def formula(self, i, g, names, params, input_shapes):
        """The vjp for input ``i`` as a formula, for graph pictures: ``g`` is the output's
        gradient name, ``names`` the inputs' names then the output's, ``params`` the op's
        parameters, ``input_shapes`` the inputs' shapes. Override it beside your ``vjp``."""
        return f"vjp of {self.name} applied to {g}"

    # How calling a primitive records it: the engine sets this to ``core.tensor.apply`` when
    # it is imported, so this layer never imports the one above it.
    apply = None

    def __call__(self, *inputs, **params):
        return Primitive.apply(self, inputs, params)

    def __repr__(self):
        return f"<primitive {self.name}>"

    def __reduce__(self):
        # A primitive is one shared instance (ops.SIGMOID, ...): a copied or pickled graph
        # refers to that same instance, so it is still the same op when compared
        module = sys.modules.get(type(self).__module__)
        for attribute, value in vars(module or object).items():
            if value is self:
                return attribute
        return super().__reduce__()


class Broadcasting(Primitive):
    """A binary elementwise op (``compute(x, y)``) with numpy's broadcasting: a pair of shapes
    that cannot broadcast is an error naming the op and both shapes."""

    def forward(self, x, y):
        try:
            return self.compute(x, y)
        except (ValueError, RuntimeError):  # numpy's word for it, torch's
            raise broadcast_error(self.name, np.shape(x), np.shape(y)) from None


# --- axes and shapes -------------------------------------------------------------------

def normalize_axis(axis, ndim, op_name):
    """``axis`` (None, int, negative int or tuple) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    result = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise ShapeError(f"{op_name}: axis must be None, an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op_name}: axis {axis!r} is out of range for an array of {ndim} "
                             f"dimension{'s' if ndim != 1 else ''}")
        result.append(int(a) % ndim)
    if len(set(result)) != len(result):
        raise ShapeError(f"{op_name}: axis {axis!r} repeats an axis")
    return tuple(sorted(result))


def single_axis(axis, ndim, op_name) -> int:
    """One axis (an int, negative counting from the end) as a non-negative int."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise ShapeError(f"{op_name}: axis must be a single int, got {axis!r}")
    return normalize_axis(int(axis), ndim, op_name)[0]


def shape_of(x) -> tuple:
    """The shape of a Tensor, an array or (nested lists of) numbers."""
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def refuse_empty(op_name, shape, axes):
    """Refuse a reduction over ``axes`` of ``shape`` that has no elements there."""
    if count(shape, axes) == 0:
        raise ShapeError(f"{op_name}: cannot reduce over {describe_axes(axes, len(shape))} of an "
                         f"array of shape {shape}: it has no elements there")


def refuse_numpy_extras(op_name, **extras):
    """``np.max(t)``, ``np.var(t)``, ``np.clip(t, 0, 1)`` call the Tensor's method with numpy's
    ``out=None`` (and ``dtype=None``): accepted, so numpy returns the recorded Tensor; set,
    refused (a Tensor's result is always a new Tensor of its input's dtype)."""
    if any(value is not None for value in extras.values()):
        given = "= and ".join(name for name, value in extras.items() if value is not None)
        raise TypeError(f"{op_name}: {given}= not supported (a Tensor's result is always a new "
                        f"Tensor of the input's dtype)")


def describe_axes(axes, ndim) -> str:
    """``(1,)`` -> ``axis 1``; every axis -> ``all elements`` (for formulas and pictures)."""
    axes = tuple(axes)
    if ndim > 1 and len(axes) == ndim:
        return "all elements"
    if len(axes) == 1:
        return f"axis {axes[0]}"
    return "axes " + ", ".join(str(a) for a in axes)


def short_repr(value) -> str:
    """``repr(value)``, cut to 20 characters (an index in a formula or a picture)."""
    text = repr(value)
    return text if len(text) <= 20 else text[:17] + "..."


def count(shape, axes) -> int:
    """How many elements a reduction over ``axes`` takes together (eq 76's m for a mean)."""
    return int(np.prod([shape[a] for a in axes])) if axes else 1


def kept_shape(shape, axes):
    """The shape of a reduction with keepdims=True: reduced axes become 1."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))



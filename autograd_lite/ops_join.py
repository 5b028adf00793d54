"""Joining and choosing: concatenate, stack, split and where.

``concatenate`` and ``stack`` take any number of inputs; their vjps hand each input its own
slice of g (``g[..., start:stop]``, an indexing that Tensors share), so they run under
``ag.grad`` too. ``split`` is ``getitem`` (``ops.GETITEM``) once per piece, an exact composition.
``where(cond, a, b)`` keeps the condition as a constant: a choice has no gradient.
"""
from __future__ import annotations

import numbers

import numpy as np

from .errors import ShapeError
from .ops import GETITEM, Primitive, normalize_axis


def _along(axis, part):
    """The index that picks ``part`` along ``axis`` (all of every axis before it)."""
    return (slice(None),) * axis + (part,)


class Concatenate(Primitive):
    """Join the inputs along an existing ``axis`` (``np.concatenate``, ``torch.cat``).
    ``sizes`` are the inputs' lengths along it: the vjp gives input i the slice of g from
    ``sum(sizes[:i])`` to ``sum(sizes[:i+1])``, so it reads no input."""
    name = "concatenate"
    vjp_reads_inputs = vjp_reads_output = False

    def forward(self, *arrays, axis, sizes):
        first = arrays[0].shape
        for index, array in enumerate(arrays):
            if array.ndim != len(first) or any(
                    n != m for k, (n, m) in enumerate(zip(array.shape, first)) if k != axis):
                raise ShapeError(
                    f"concatenate: input {index} has shape {array.shape} but input 0 has shape "
                    f"{first}; all must be equal except along axis {axis}")
        if tuple(array.shape[axis] for array in arrays) != tuple(sizes):
            raise ShapeError(f"concatenate: sizes {sizes} do not match the inputs' lengths along "
                             f"axis {axis}")
        return np.concatenate(arrays, axis=axis)

    def vjp(self, g, inputs, output, wants, axis, sizes):
        grads, start = [], 0
        for wanted, size in zip(wants, sizes):
            grads.append(g[_along(axis, slice(start, start + size))] if wanted else None)
            start += size
        return tuple(grads)

    def formula(self, i, g, names, params, input_shapes):
        start = sum(params["sizes"][:i])
        return f"{g}[{start}:{start + params['sizes'][i]} along axis {params['axis']}]"


class Stack(Primitive):
    """Stack equal-shaped inputs along a new ``axis`` (``np.stack``, ``torch.stack``); input i
    gets ``g`` at index i of that axis."""
    name = "stack"
    vjp_reads_inputs = vjp_reads_output = False

    def forward(self, *arrays, axis):
        first = arrays[0].shape
        for index, array in enumerate(arrays):
            if array.shape != first:
                raise ShapeError(f"stack: input {index} has shape {array.shape} but input 0 has "
                                 f"shape {first}; all must be equal")
        return np.stack(arrays, axis=axis)

    def vjp(self, g, inputs, output, wants, axis):
        return tuple(g[_along(axis, i)] if wanted else None for i, wanted in enumerate(wants))

    def formula(self, i, g, names, params, input_shapes):
        return f"{g}[{i} along axis {params['axis']}]"


class Where(Primitive):
    """``a`` where ``cond`` holds, ``b`` elsewhere, all three broadcast together (``np.where``,
    ``torch.where``). ``cond`` is a constant boolean array (a parameter, not an input): g goes
    to a where cond holds and to b elsewhere; the engine sums each back to its input's shape."""
    name = "where"
    vjp_reads_inputs = vjp_reads_output = False

    def forward(self, a, b, cond):
        try:
            return np.where(cond, a, b)
        except ValueError:
            raise ShapeError(f"where: shapes {np.shape(cond)} (cond), {np.shape(a)} (a) and "
                             f"{np.shape(b)} (b) cannot be broadcast together") from None

    def vjp(self, g, inputs, output, wants, cond):
        return (g * cond if wants[0] else None), (g * ~cond if wants[1] else None)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} where cond" if i == 0 else f"{g} where not cond"


CONCATENATE, STACK, WHERE = Concatenate(), Stack(), Where()


def _sequence(tensors, op_name):
    if hasattr(tensors, "shape") or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op_name}: pass a list or tuple of tensors, e.g. {op_name}([a, b]); "
                        f"got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op_name}: needs at least one tensor, got an empty sequence")
    return tensors


def _shape_of(x):
    return x.shape if hasattr(x, "shape") else np.shape(x)


def _single_axis(axis, ndim, op_name):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise ShapeError(f"{op_name}: axis must be a single int, got {axis!r}")
    return normalize_axis(int(axis), ndim, op_name)[0]


def concatenate(tensors, axis=0):
    """Join a list of tensors along an existing ``axis`` (``np.concatenate``; ``torch.cat``)."""
    tensors = _sequence(tensors, "concatenate")
    shapes = [_shape_of(t) for t in tensors]
    if any(len(shape) == 0 for shape in shapes):
        raise ShapeError(f"concatenate: cannot join scalars (shapes {shapes}); use stack")
    axis = _single_axis(axis, len(shapes[0]), "concatenate")
    if any(len(shape) != len(shapes[0]) for shape in shapes):
        raise ShapeError(f"concatenate: the inputs have different numbers of axes (shapes "
                         f"{shapes}); all must have {len(shapes[0])}")
    return CONCATENATE(*tensors, axis=axis, sizes=tuple(shape[axis] for shape in shapes))


def stack(tensors, axis=0):
    """Stack a list of equal-shaped tensors along a new ``axis`` (``np.stack``)."""
    tensors = _sequence(tensors, "stack")
    axis = _single_axis(axis, len(_shape_of(tensors[0])) + 1, "stack")
    return STACK(*tensors, axis=axis)


def split(x, indices_or_sections, axis=0):
    """Split ``x`` along ``axis`` into a list of tensors (``np.split``): an int n gives n equal
    pieces (refused if the length does not divide), a list of indices gives the cut points.
    Each piece is ``x[..., start:stop]`` (``getitem``), so gradients flow back from each."""
    shape = _shape_of(x)
    if len(shape) == 0:
        raise ShapeError("split: cannot split a scalar")
    axis = _single_axis(axis, len(shape), "split")
    length = shape[axis]
    if isinstance(indices_or_sections, numbers.Integral) and not isinstance(indices_or_sections, bool):
        sections = int(indices_or_sections)
        if sections < 1 or length % sections:
            raise ShapeError(f"split: axis {axis} of shape {tuple(shape)} has length {length}, "
                             f"which does not divide into {sections} equal sections")
        cuts = [length // sections * k for k in range(1, sections)]
    else:
        try:
            cuts = [int(i) for i in indices_or_sections]
        except (TypeError, ValueError):
            raise TypeError(f"split: indices_or_sections must be an int or a list of ints, got "
                            f"{indices_or_sections!r}") from None
    bounds = [0] + cuts + [length]
    return [GETITEM(x, index=_along(axis, slice(start, stop)))
            for start, stop in zip(bounds[:-1], bounds[1:])]


def where(cond, a, b):
    """``a`` where ``cond`` is true, ``b`` elsewhere (``np.where``), broadcasting all three.
    ``cond`` is a constant (a boolean array, or a Tensor/array compared already, e.g.
    ``x > 0``); the gradient goes to ``a`` where it holds and to ``b`` elsewhere."""
    cond = np.asarray(cond)
    if cond.dtype != bool:
        raise TypeError(f"where: cond must be boolean (e.g. x > 0), got dtype {cond.dtype}")
    return WHERE(a, b, cond=cond)


__all__ = ["concatenate", "stack", "split", "where"]

"""Shape ops: reshape, transpose, broadcast_to, indexing (getitem and its vjp index_add),
concatenate/stack/split, where, and detach.

None changes a value: their vjps move g back to where each element came from (a transpose's
gradient is transposed back, eqs 59, 65's ᵀ; broadcast_to's is summed by the engine, eq 80;
getitem's is scattered back with repeats added up).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend
from ..errors import ShapeError
from .base import (Primitive, data_of, dual, factor, is_array, namespace, normalize_axis, reshape,
                   shape_of, short_repr, single_axis, transpose)


def index_add(g, shape, index):
    return INDEX_ADD.forward(g, shape=shape, index=index) if is_array(g) else INDEX_ADD(g, shape=shape, index=index)


def inverse_permutation(axes):
    """The permutation that undoes ``transpose(axes)`` (None, reversing, is its own)."""
    if axes is None:
        return None
    ndim = len(axes)  # axes may be negative, as numpy allows
    return tuple(int(i) for i in np.argsort([a % ndim for a in axes]))


# --- shape ops --------------------------------------------------------------------------------

class Reshape(Primitive):
    name = "reshape"

    def forward(self, x, shape):
        try:
            return reshape(x, shape)
        except NotImplementedError:  # Dask's: it only merges or splits dimensions evenly
            raise ShapeError(f"reshape: Dask cannot reshape an array of shape {tuple(x.shape)} "
                             f"into shape {shape} in one step (it only merges or splits "
                             f"dimensions evenly); reshape in two steps, e.g. to "
                             f"({math.prod(x.shape)},) first, which puts each row in one "
                             f"chunk") from None
        except (ValueError, RuntimeError):  # numpy's ValueError, torch's RuntimeError
            raise ShapeError(f"reshape: cannot reshape an array of shape {tuple(x.shape)} "
                             f"({math.prod(x.shape)} elements) into shape {shape}") from None

    def vjp(self, g, inputs, output, wants, shape):
        return (reshape(g, inputs[0].shape),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} reshaped back"


class Transpose(Primitive):
    """Axis permutation; ``axes=None`` reverses them (``.T``, the transpose of eqs 59, 65).
    The result is a C-contiguous copy, not numpy's view: an op on a view would lay its result
    out in the view's order, and a sum's rounding depends on that order, so one layout keeps
    the eager engine and ag.compile's replay (which writes into C buffers) bit for bit alike."""
    name = "transpose"

    def forward(self, x, axes):
        try:
            return _contiguous(transpose(x, axes))
        except (ValueError, IndexError, RuntimeError):  # each backend's word for it
            raise ShapeError(f"transpose: axes {axes} do not permute the axes of shape "
                             f"{tuple(x.shape)}") from None

    def vjp(self, g, inputs, output, wants, axes):
        return (_contiguous(transpose(g, inverse_permutation(axes))),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g}ᵀ"


class BroadcastTo(Primitive):
    """Repeat ``x`` to ``shape`` (eq 30-32's B[1]: b[1] repeated m times)."""
    name = "broadcast_to"

    def forward(self, x, shape):
        try:
            return namespace(x).broadcast_to(x, shape)
        except (ValueError, RuntimeError):
            raise ShapeError(f"broadcast_to: cannot broadcast shape {tuple(x.shape)} to "
                             f"{shape}") from None

    def vjp(self, g, inputs, output, wants, shape):
        return (g,)  # the engine's un-broadcast sums it back to the input's shape

    def formula(self, i, g, names, params, input_shapes):
        return g


class GetItem(Primitive):
    """``x[index]`` (basic or integer-array indexing). Its vjp scatters g back, adding repeats.

    An index array that is a Tensor (a recorded mask or index, an argument of a compiled
    step) is an input rather than a part of ``index``, which holds an ``IndexInput`` in its
    place: a compiled step then reads each call's indices. A result that advanced indexing
    laid out in another order than C (``x[:, [0, 0, 1]]`` comes out F-ordered) is made
    C-contiguous, so every later op sees one layout, eagerly and replayed alike."""
    name = "getitem"

    def forward(self, x, *indices, index):
        index = filled_index(index, indices)
        try:
            result = backend.take(x, index)
        except IndexError as error:
            raise IndexError(f"getitem: index {index!r} is invalid for shape {tuple(x.shape)}: "
                             f"{error}") from None
        if isinstance(result, np.ndarray) and not result.flags.c_contiguous \
                and not np.may_share_memory(result, x):
            result = np.ascontiguousarray(result)
        return result

    def vjp(self, g, inputs, output, wants, index):
        index = filled_index(index, [data_of(i) for i in inputs[1:]])
        return (index_add(g, inputs[0].shape, index),) + (None,) * (len(inputs) - 1)

    def formula(self, i, g, names, params, input_shapes):
        if i:
            return "none (an index)"
        return f"{g} put back at [{short_repr(params['index'])}]"


class IndexInput:
    """In a getitem's ``index``: the place of its input ``position`` (1 for the first index
    array after x), an index read from the graph at every call."""
    __slots__ = ("position",)

    def __init__(self, position):
        self.position = position

    def __eq__(self, other):
        return type(other) is IndexInput and other.position == self.position

    def __hash__(self):
        return hash(("IndexInput", self.position))

    def __repr__(self):
        return f"<input {self.position}>"


def filled_index(index, arrays):
    """``index`` with each ``IndexInput`` replaced by its array (the first is ``arrays[0]``)."""
    if not arrays:
        return index
    if isinstance(index, IndexInput):
        return arrays[index.position - 1]
    if isinstance(index, tuple):
        return tuple(arrays[i.position - 1] if isinstance(i, IndexInput) else i for i in index)
    return index


class IndexAdd(Primitive):
    """zeros(shape) with g added at ``index`` (repeated indices add up): the vjp of getitem.
    Its own vjp is getitem again, so indexing can be differentiated twice."""
    name = "index_add"

    def forward(self, g, shape, index):
        zeros = np.zeros(shape, dtype=g.dtype) if isinstance(g, np.ndarray) else \
            namespace(g).zeros(shape, dtype=g.dtype, device=backend.of(g).device)
        return backend.add_at(zeros, index, g)

    def vjp(self, g, inputs, output, wants, shape, index):
        return (dual(GETITEM, g, index=index),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g}[{short_repr(params['index'])}]"


class Detach(Primitive):
    """``t.detach()``: the same array, cut from the graph (a constant for everything after it).
    Recorded only while ag.compile traces a step, so a replay reads the new value each call."""
    name = "detach"
    differentiable = False

    def forward(self, x):
        return x

    def vjp(self, g, inputs, output, wants):
        raise RuntimeError("detach: a detached tensor has no gradient to pass back")

    def formula(self, i, g, names, params, input_shapes):
        return "0 (detached)"


def _contiguous(array):
    """A transpose is a C-contiguous copy on numpy (ag.compile's kernels write it so)."""
    return np.ascontiguousarray(array) if isinstance(array, np.ndarray) else array


RESHAPE, TRANSPOSE, BROADCAST_TO = Reshape(), Transpose(), BroadcastTo()
GETITEM, INDEX_ADD = GetItem(), IndexAdd()
DETACH = Detach()

def _along(axis, part):
    """The index that picks ``part`` along ``axis`` (all of every axis before it)."""
    return (slice(None),) * axis + (part, Ellipsis)


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
        return namespace(arrays[0]).concat(arrays, axis=axis)

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
        return namespace(arrays[0]).stack(arrays, axis=axis)

    def vjp(self, g, inputs, output, wants, axis):
        return tuple(g[_along(axis, i)] if wanted else None for i, wanted in enumerate(wants))

    def formula(self, i, g, names, params, input_shapes):
        return f"{g}[{i} along axis {params['axis']}]"


class Where(Primitive):
    """``a`` where ``cond`` holds, ``b`` elsewhere, all three broadcast together (``np.where``,
    ``torch.where``). ``cond`` is a constant boolean array: a parameter, or, when it is a
    Tensor (a recorded comparison, an argument of a compiled step), a third input without a
    gradient, so that a compiled step recomputes it. g goes to a where cond holds and to b
    elsewhere; the engine sums each back to its input's shape."""
    name = "where"
    vjp_reads_output = False

    def forward(self, a, b, *condition, cond=None):
        cond = condition[0] if condition else cond
        try:
            return namespace(a).where(cond, a, b)
        except (ValueError, RuntimeError):
            raise ShapeError(f"where: shapes {np.shape(cond)} (cond), {np.shape(a)} (a) and "
                             f"{np.shape(b)} (b) cannot be broadcast together") from None

    def vjp(self, g, inputs, output, wants, cond=None):
        cond = data_of(inputs[2]) if cond is None else cond
        grads = (g * factor(cond, g) if wants[0] else None), (g * factor(~cond, g) if wants[1] else None)
        return grads + (None,) * (len(inputs) - 2)

    def formula(self, i, g, names, params, input_shapes):
        return (f"{g} where cond", f"{g} where not cond", "none (a condition)")[i]


CONCATENATE, STACK, WHERE = Concatenate(), Stack(), Where()


def _sequence(tensors, op_name):
    if hasattr(tensors, "shape") or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op_name}: pass a list or tuple of tensors, e.g. {op_name}([a, b]); "
                        f"got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op_name}: needs at least one tensor, got an empty sequence")
    return tensors


def concatenate(tensors, axis=0):
    """Join a list of tensors along an existing ``axis`` (``np.concatenate``; ``torch.cat``)."""
    tensors = _sequence(tensors, "concatenate")
    shapes = [shape_of(t) for t in tensors]
    if any(len(shape) == 0 for shape in shapes):
        raise ShapeError(f"concatenate: cannot join scalars (shapes {shapes}); use stack")
    axis = single_axis(axis, len(shapes[0]), "concatenate")
    if any(len(shape) != len(shapes[0]) for shape in shapes):
        raise ShapeError(f"concatenate: the inputs have different numbers of axes (shapes "
                         f"{shapes}); all must have {len(shapes[0])}")
    return CONCATENATE(*tensors, axis=axis, sizes=tuple(shape[axis] for shape in shapes))


def stack(tensors, axis=0):
    """Stack a list of equal-shaped tensors along a new ``axis`` (``np.stack``)."""
    tensors = _sequence(tensors, "stack")
    axis = single_axis(axis, len(shape_of(tensors[0])) + 1, "stack")
    return STACK(*tensors, axis=axis)


def split(x, indices_or_sections, axis=0):
    """Split ``x`` along ``axis`` into a list of tensors (``np.split``): an int n gives n equal
    pieces (refused if the length does not divide), a list of indices gives the cut points.
    Each piece is ``x[..., start:stop]`` (``getitem``), so gradients flow back from each."""
    shape = shape_of(x)
    if len(shape) == 0:
        raise ShapeError("split: cannot split a scalar")
    axis = single_axis(axis, len(shape), "split")
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
    if not is_array(cond) and hasattr(cond, "grad_fn"):  # a Tensor: an input of its own
        if backend.dtype_kind(cond.dtype) != "b":
            raise TypeError(f"where: cond must be boolean (e.g. x > 0), got dtype {cond.dtype}")
        return WHERE(a, b, cond)
    if not backend.is_foreign_array(cond):
        cond = np.asarray(cond)
    if backend.dtype_kind(cond.dtype) != "b":
        raise TypeError(f"where: cond must be boolean (e.g. x > 0), got dtype {cond.dtype}")
    return WHERE(a, b, cond=cond)


__all__ = ["concatenate", "stack", "split", "where"]

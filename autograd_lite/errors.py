"""Errors and warnings that name the operation and the shapes or values at fault."""
from __future__ import annotations


class ShapeError(ValueError):
    """An operation was given shapes it cannot combine. The message names both."""


class GraphFreedError(RuntimeError):
    """backward() reached a part of the graph that an earlier backward() already freed."""


class SaturationWarning(RuntimeWarning):
    """A probability reached exactly 0 or 1, where log-loss and its gradient break down."""


def broadcast_error(op_name: str, shape_x: tuple, shape_y: tuple) -> ShapeError:
    """The error for two shapes numpy cannot broadcast, naming the first clashing axis."""
    ndim = max(len(shape_x), len(shape_y))
    padded_x = (1,) * (ndim - len(shape_x)) + tuple(shape_x)
    padded_y = (1,) * (ndim - len(shape_y)) + tuple(shape_y)
    for axis in range(ndim - 1, -1, -1):
        a, b = padded_x[axis], padded_y[axis]
        if a != b and a != 1 and b != 1:
            return ShapeError(
                f"{op_name}: shapes {tuple(shape_x)} and {tuple(shape_y)} cannot be broadcast "
                f"together (axis {axis - ndim}: {a} != {b}, and neither is 1)")
    return ShapeError(f"{op_name}: shapes {tuple(shape_x)} and {tuple(shape_y)} cannot be broadcast together")

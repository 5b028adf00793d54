"""Embedding: a table of learned vectors, one column per token."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend
from ..errors import ShapeError
from ..core.modes import grad_mode
from ..core.tensor import Tensor
from ..ops import Primitive, data_of
from ..ops.base import is_array
from ..ops.shape import index_add
from . import init as initialisers
from .module import Module
from .parameter import Parameter


class Lookup(Primitive):
    """``W[:, indices]``: the columns of an embedding table W at integer ``indices`` (any
    shape), made C-contiguous, in W's namespace (the standard's ``take``). The indices are an
    input, checked in ``forward`` (in range, no negative index wrapping around), so a compiled
    step reads and checks each call's. The gradient adds g's columns back at their indices
    (repeats add up); the indices have none.

    Dask indices stay lazy both ways: each chunk of indices picks its columns in a task of its
    own, and the gradient is a sum over the chunks (each adds its columns into a table of W's
    shape; Dask adds the tables in a tree, as it sums eqs 79-80 over the samples), so
    backward's one compute brings a numpy W its gradient. Each task checks its chunk, so bad
    indices are refused by the compute that reads them."""
    name = "embedding_lookup"
    vjp_reads_output = False

    def forward(self, W, indices):
        if _lazy(W, indices):
            return _lazy_columns(W, indices, CHUNK_LABEL)
        index = _checked(indices, W.shape[1], self.name)
        if isinstance(W, np.ndarray):
            return np.ascontiguousarray(W[:, index])
        xp = backend.namespace(W)
        picked = xp.take(W, xp.reshape(index, (-1,)), axis=1)
        return xp.reshape(picked, (W.shape[0],) + tuple(index.shape))

    def vjp(self, g, inputs, output, wants):
        W, indices = inputs
        if is_array(g) and _lazy(g, data_of(indices)):
            return _lazy_added_columns(g, data_of(indices), W.shape[1], CHUNK_LABEL), None
        index = _checked(data_of(indices), W.shape[1], self.name)
        return index_add(g, W.shape, (slice(None), index)), None

    def formula(self, i, g, names, params, input_shapes):
        return f"{g}'s columns added at {names[1]}" if i == 0 else "none (indices)"


LOOKUP = Lookup()
CHUNK_LABEL = f"{LOOKUP.name} (a chunk of Dask indices)"  # a task sees its chunk's values only


def _lazy(*arrays):
    return any(backend.is_foreign_array(a) and backend.of(a).is_dask for a in arrays)


def _lazy_columns(W, indices, label):
    """``W[:, indices]`` for Dask indices (or a Dask W): one ``np.take`` per chunk of indices,
    each chunk checked in its task, with all of W (its columns are one block)."""
    import dask.array as da
    axes = tuple(range(1, indices.ndim + 1))
    return da.blockwise(_columns, (0,) + axes, W, (0, -1), indices, axes, concatenate=True,
                        n=W.shape[1], label=label, dtype=W.dtype,
                        meta=np.empty((0,) * (indices.ndim + 1), dtype=W.dtype))


def _lazy_added_columns(g, indices, n, label):
    """The gradient of ``_lazy_columns``: zeros of W's shape with g's columns added at their
    indices, as a Dask reduction: each chunk adds its columns into a table of its own (one
    block per chunk along new axes), then Dask's tree sum adds the tables."""
    import dask.array as da
    axes = tuple(range(1, indices.ndim + 1))
    tables = da.blockwise(_added_columns, (0,) + axes + (-1,), g, (0,) + axes, indices, axes,
                          new_axes={-1: n}, adjust_chunks=dict.fromkeys(axes, 1),
                          n=n, label=label, dtype=g.dtype,
                          meta=np.empty((0,) * (indices.ndim + 2), dtype=g.dtype))
    return tables.sum(axis=axes)


def _columns(W, indices, n, label):
    """One chunk's ``W[:, indices]`` (a Dask task: numpy blocks in, numpy out)."""
    return np.take(W, _checked(indices, n, label), axis=1)


def _added_columns(g, indices, n, label):
    """One chunk's gradient table: g's columns added at their indices into zeros (d, n),
    shaped (d, 1, ..., 1, n) as the block of its chunk (a Dask task)."""
    table = np.zeros((g.shape[0], n), dtype=g.dtype)
    np.add.at(table, (slice(None), _checked(indices, n, label)), g)
    return table.reshape((g.shape[0],) + (1,) * indices.ndim + (n,))


def _checked(indices, n, label):
    """``indices`` as integers in 0..n-1 (whole-number floats taken as integers), in their own
    namespace, or a ShapeError naming ``label`` and the values at fault. It reads the values
    (a lazy array is computed)."""
    if isinstance(indices, np.ndarray):
        index = indices.astype(np.intp, copy=False)
        if np.array_equal(index, indices) and (not index.size or (index.min() >= 0
                                                                  and index.max() < n)):
            return index
        low, high = indices.min(), indices.max()
    else:
        xp = backend.namespace(indices)
        kind = backend.dtype_kind(indices.dtype)
        if kind not in "iuf":
            raise ShapeError(f"{label}: indices must be whole numbers, got dtype {indices.dtype}")
        index = indices if kind in "iu" else xp.astype(indices, xp.int64)
        if math.prod(indices.shape) == 0:
            return index
        low, high = backend.to_numpy(xp.min(indices)), backend.to_numpy(xp.max(indices))
        whole = kind in "iu" or bool(xp.all(xp.astype(index, indices.dtype) == indices))
        if whole and low >= 0 and high < n:
            return index
    raise ShapeError(f"{label}: indices must be whole numbers in 0..{n - 1}, got {low}..{high}")


class Embedding(Module):
    """``Embedding(num_embeddings, embedding_dim, rng=None)``: W is embedding_dim x
    num_embeddings, drawn from N(0, 1) (PyTorch's default), and ``forward(indices)`` returns
    the columns ``W[:, indices]``: (embedding_dim, m) for m indices, (embedding_dim, ...)
    for an array of them. It equals ``W @ one_hot(indices)`` (eq 33 without b), so each
    column of W learns from the samples that pick it (indexing's gradient adds repeats).

    PyTorch stores the transpose (num_embeddings x embedding_dim), as its samples are rows."""

    def __init__(self, num_embeddings, embedding_dim, rng=None):
        for label, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"Embedding: {label} must be a whole number >= 1, got {value!r}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        generator = initialisers._generator(rng)
        self.W = Parameter(generator.standard_normal((self.embedding_dim, self.num_embeddings)), name="W")

    def forward(self, indices):
        layer = f"Embedding({self.num_embeddings}, {self.embedding_dim})"
        data = indices.data if isinstance(indices, Tensor) else indices
        if backend.is_foreign_array(data):  # in W's backend (numpy indices, lists join any)
            backend.join(layer, [self.W._backend, backend.of(data)])
            if backend.of(data).is_dask:  # values unread here: each task checks its chunk
                if backend.dtype_kind(data.dtype) not in "iuf":
                    raise ShapeError(f"Embedding: indices must be whole numbers, got dtype "
                                     f"{data.dtype}")
                return LOOKUP(self.W, indices if isinstance(indices, Tensor)
                              else Tensor(data, dtype=data.dtype))
        else:
            data = np.asarray(data)
        xp = np if isinstance(data, np.ndarray) else backend.namespace(data)
        kind = backend.dtype_kind(data.dtype)
        if kind == "f" and bool(xp.all(xp.isfinite(data))) and bool(xp.all(data == xp.round(data))):
            data = data.astype(np.intp) if xp is np else xp.astype(data, xp.int64)
            kind = "i"
        if kind not in "iu":
            raise ShapeError(f"Embedding: indices must be whole numbers, got dtype {data.dtype}")
        if math.prod(data.shape):
            low, high = backend.to_numpy(xp.min(data)), backend.to_numpy(xp.max(data))
            if low < 0 or high >= self.num_embeddings:
                raise ShapeError(f"{layer}: indices must be in 0..{self.num_embeddings - 1}, got "
                                 f"{low}..{high}")
        if isinstance(indices, Tensor) and backend.dtype_kind(indices.dtype) in "iu":
            return LOOKUP(self.W, indices)  # an input: a compiled step reads and checks each call's
        if isinstance(indices, Tensor) and grad_mode.trace is not None:
            grad_mode.trace.leaves(indices, "Embedding of a float Tensor (pass integer indices)")
        return self.W[:, data]

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


__all__ = ["Embedding"]

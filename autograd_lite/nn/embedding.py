"""Embedding: a table of learned vectors, one column per token."""
from __future__ import annotations

import numbers

import numpy as np

from ..errors import ShapeError
from ..core.modes import grad_mode
from ..core.tensor import Tensor
from ..ops import Primitive, data_of
from ..ops.shape import index_add
from . import init as initialisers
from .module import Module
from .parameter import Parameter


class Lookup(Primitive):
    """``W[:, indices]``: the columns of an embedding table W at integer ``indices`` (any
    shape), made C-contiguous. The indices are an input, checked in ``forward`` (in range, no
    negative index wrapping around), so a compiled step reads and checks each call's. The
    gradient adds g's columns back at their indices (repeats add up); the indices have none."""
    name = "embedding_lookup"
    vjp_reads_output = False

    def forward(self, W, indices):
        return np.ascontiguousarray(W[:, _checked(indices, W.shape[1])])

    def vjp(self, g, inputs, output, wants):
        W, indices = inputs
        return index_add(g, W.shape, (slice(None), _checked(data_of(indices), W.shape[1]))), None

    def formula(self, i, g, names, params, input_shapes):
        return f"{g}'s columns added at {names[1]}" if i == 0 else "none (indices)"


LOOKUP = Lookup()


def _checked(indices, n):
    """``indices`` as integers in 0..n-1, or a ShapeError naming the values at fault."""
    index = indices.astype(np.intp, copy=False)
    if not np.array_equal(index, indices) or (index.size and (index.min() < 0 or index.max() >= n)):
        raise ShapeError(f"embedding_lookup: indices must be whole numbers in 0..{n - 1}, got "
                         f"{indices.min()}..{indices.max()}")
    return index


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
        data = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
        if data.dtype.kind == "f" and np.all(np.isfinite(data)) and np.all(data == np.round(data)):
            data = data.astype(np.intp)
        if data.dtype.kind not in "iu":
            raise ShapeError(f"Embedding: indices must be whole numbers, got dtype {data.dtype}")
        if data.size and (data.min() < 0 or data.max() >= self.num_embeddings):
            raise ShapeError(f"Embedding({self.num_embeddings}, {self.embedding_dim}): indices must "
                             f"be in 0..{self.num_embeddings - 1}, got {data.min()}..{data.max()}")
        if isinstance(indices, Tensor) and indices.dtype.kind in "iu":
            return LOOKUP(self.W, indices)  # an input: a compiled step reads and checks each call's
        if isinstance(indices, Tensor) and grad_mode.trace is not None:
            grad_mode.trace.leaves(indices, "Embedding of a float Tensor (pass integer indices)")
        return self.W[:, data]

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


__all__ = ["Embedding"]

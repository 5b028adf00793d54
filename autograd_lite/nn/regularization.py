"""Dropout: inverted dropout while training, the identity in evaluation."""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..ops import Primitive
from ..core.tensor import as_tensor
from . import init as initialisers
from .module import Module


class DropoutMask(Primitive):
    """The mask of inverted dropout for an input x: each element 1 / (1 - p) with probability
    1 - p, else 0, drawn from ``rng``. It has no gradient (a constant for what follows, like
    ``detach``); being an op rather than an array made beside the graph, it is recorded while
    ``ag.compile`` traces a step, so every replay draws a new mask from the same generator.

    The draws are numpy's, moved to x's backend: the same generator state gives the same mask
    on numpy, torch, CuPy or array-api-strict. On Dask (data bigger than memory) the mask is
    drawn chunk by chunk, lazily, each chunk from its own generator seeded by one draw of
    ``rng`` and the chunk's position: reproducible, but not numpy's values."""
    name = "dropout_mask"
    differentiable = False

    def forward(self, x, p, rng):
        where = backend.of(x)
        if where.is_dask:
            seed = int(rng.integers(2 ** 63))
            return x.map_blocks(_chunk_mask, p=p, seed=seed, dtype=x.dtype)
        mask = np.zeros(x.shape) if p == 1 else (rng.random(x.shape) >= p) / (1.0 - p)
        if where.is_numpy:
            return mask.astype(x.dtype, copy=False)
        return where.xp.astype(backend.moved(mask, where), x.dtype)

    def vjp(self, g, inputs, output, wants, p, rng):
        raise RuntimeError("dropout_mask: a mask has no gradient to pass back")

    def formula(self, i, g, names, params, input_shapes):
        return "0 (a random mask: a constant)"


def _chunk_mask(chunk, p, seed, block_id=None):
    """One Dask chunk's mask, from the generator of (seed, the chunk's position)."""
    if p == 1:
        return np.zeros(chunk.shape, dtype=chunk.dtype)
    generator = np.random.default_rng((seed, *block_id))
    return ((generator.random(chunk.shape) >= p) / (1.0 - p)).astype(chunk.dtype, copy=False)


DROPOUT_MASK = DropoutMask()


class Dropout(Module):
    """``Dropout(p=0.5, rng=None)``: while training, each element is zeroed with probability p
    and the survivors are scaled by 1 / (1 - p), so the expected output equals the input
    ("inverted" dropout, as in PyTorch); in evaluation (``module.eval()``) it is the identity.

    The mask is drawn from ``rng`` (a ``numpy.random.Generator`` or int seed, so runs repeat)
    by the ``dropout_mask`` op and enters as a constant: ``Y = X * mask``, whose gradient is
    ``dX = dY * mask`` (the engine's mul rule). A compiled step draws a new mask every call.
    The generator's exact state is part of the model's ``state_dict()`` and file (under the
    layer's name, ``"2.rng"``), so a resumed run draws the masks the uninterrupted one would."""

    def __init__(self, p=0.5, rng=None):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = initialisers._generator(rng)

    def forward(self, X):
        X = as_tensor(X)
        if not self.training or self.p == 0:
            return X
        return X * DROPOUT_MASK(X, p=self.p, rng=self.rng)

    def extra_repr(self):
        return f"p={self.p:g}"


__all__ = ["Dropout"]

"""Parameter: a Tensor that a Module trains and saves (the seed's W[l] and b[l])."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..core.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor with ``requires_grad=True``, float64, that ``Module`` finds by itself.

    ``Parameter(data, name=None)``. Assigning one to a module attribute registers it: it then
    appears in ``module.parameters()``, is reset by ``zero_grad()``, updated by an optimizer
    (eqs 74-75) and written by ``save()``. Operations on a Parameter give plain Tensors.
    """

    __slots__ = ()

    def __init__(self, data, name=None):
        super().__init__(data, requires_grad=True, name=name, dtype=np.float64)

    def __repr__(self):
        label = f"{self.name!r}, " if self.name else ""
        where = backend.of(self.data)
        where = "" if where.is_numpy else f", backend={where!r}"
        return f"Parameter({label}shape={tuple(self.shape)}{where})"

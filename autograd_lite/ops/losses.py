"""The primitives losses are made of: softmax and log_softmax, the fused log-loss of sigmoid
logits (eqs 1, 7, 76, 78), ``x log y`` and ``x / y`` with the limit at x = 0, and picking each
sample's class.

Log-loss (eq 1) is ``-y log(a) - (1 - y) log(1 - a)``. A sample fitted perfectly has a = 1 and
y = 1, so its second term is ``0 * log(0) = 0 * -inf``, which IEEE arithmetic makes NaN; the
limit of ``x log y`` as both go to 0 along the loss (x = 0 exactly) is 0. ``xlogy`` takes that
limit in value and in gradient, as scipy.special.xlogy and torch.xlogy do, so such a sample costs
0 and moves nothing; a confidently wrong one (x > 0, y = 0) still costs +inf, as it must.
``xlogy``'s gradient is ``xdivy``, whose gradient is ``xdivy`` again.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..errors import ShapeError
from .base import (Broadcasting, Primitive, data_of, errstate, exp, factor, is_array, log,
                   namespace, refuse_empty, sum_)
from .elementwise import sigmoid
from . import reduce
from .shape import index_add

# --- softmax family and the fused loss ----------------------------------------------------------

def _logsumexp(x, axis):
    """log(sum(exp(x), axis)) with keepdims, shifted by the max so exp never overflows."""
    xp = namespace(x)
    shift = xp.max(x, axis=axis, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, 0.0)
    return shift + xp.log(xp.sum(xp.exp(x - shift), axis=axis, keepdims=True))


class Softmax(Primitive):
    """Softmax along ``axis`` (default 0: each column, one sample, is a probability vector)."""
    name = "softmax"

    def forward(self, x, axis):
        refuse_empty(self.name, x.shape, (axis,))
        xp = namespace(x)
        e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
        return e / xp.sum(e, axis=axis, keepdims=True)

    def vjp(self, g, inputs, output, wants, axis):
        return (output * (g - sum_(g * output, axis=axis, keepdims=True)),)

    def formula(self, i, g, names, params, input_shapes):
        out = names[-1]
        return f"{out} ∘ ({g} − Σ {g} ∘ {out})"


class LogSoftmax(Primitive):
    """log(softmax(x)) along ``axis``, computed as x - logsumexp(x): stable for any x."""
    name = "log_softmax"

    def forward(self, x, axis):
        refuse_empty(self.name, x.shape, (axis,))
        return x - reduce.LOGSUMEXP.forward(x, axis=(axis,), keepdims=True)

    def vjp(self, g, inputs, output, wants, axis):
        return (g - exp(output) * sum_(g, axis=axis, keepdims=True),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} − softmax ∘ Σ {g}"


class BinaryCrossEntropyWithLogits(Primitive):
    """Fused log-loss of sigmoid(Z) against labels Y: eq 1 averaged as eq 76, J = (1/m) ΣΣ L.

    Forward: L = max(z, 0) - z y + log(1 + e^-|z|), exact for any z (no log of 0).
    Backward: dJ/dZ = (sigmoid(Z) - Y) / m exactly: eq 78's dZ[N] = A[N] - Y with eq 76's 1/m.
    m is the number of samples (columns; the length of a 1-D Z).
    """
    name = "binary_cross_entropy_with_logits"
    vjp_reads_output = False  # (s(Z) - Y) / m

    def forward(self, z, y):
        if z.shape != y.shape:
            raise ShapeError(f"binary_cross_entropy_with_logits: logits Z has shape {z.shape} "
                             f"but labels Y have shape {y.shape}; they must be equal")
        if z.ndim == 0:
            raise ShapeError("binary_cross_entropy_with_logits: Z is a scalar; pass an (n, m) or (m,) array")
        m = z.shape[-1]
        if not (isinstance(z, np.ndarray) and isinstance(y, np.ndarray)):
            return self._in_namespace(z, y) / m  # no branch on the values: it would compute Dask's
        m = z.dtype.type(m)  # a sum of float32 / m stays float32 under numpy 1's scalar rules too
        if np.isinf(z).any():
            return np.asarray(np.sum(self._at_infinite_logits(z, y)) / m)
        per_element = np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))
        return np.asarray(per_element.sum() / m)

    @staticmethod
    def _in_namespace(z, y):
        """Σ L in ``z``'s own namespace, its limit where z is ±inf taken by ``where``."""
        xp = backend.join("binary_cross_entropy_with_logits", [backend.of(z), backend.of(y)]).xp
        per_element = xp.maximum(z, 0.0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
        wrong = xp.where(z > 0, 1 - y, y)
        limit = xp.where(wrong == 0, 0.0, xp.abs(z) * wrong)
        return xp.sum(xp.where(xp.isinf(z), limit, per_element))

    @staticmethod
    def _at_infinite_logits(z, y):
        """L where some z is ±inf, where the formula above would give inf - inf = nan: there
        its limit, |z| times the weight of the wrong label (+inf, or 0 if that weight is 0)."""
        xp = namespace(z)
        with errstate(xp, invalid="ignore"):
            per_element = xp.maximum(z, 0.0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
        wrong = xp.where(z > 0, 1 - y, y)
        return xp.where(xp.isinf(z), xp.where(wrong == 0, 0.0, xp.abs(z) * wrong), per_element)

    def vjp(self, g, inputs, output, wants):
        z, y = inputs
        m = z.shape[-1]
        grad_z = None
        if wants[0]:
            grad_z = (sigmoid(z) - y) * g / m
        grad_y = g * -z / m if wants[1] else None
        return grad_z, grad_y

    def formula(self, i, g, names, params, input_shapes):
        x, y, out = names
        return f"{g}·(sigmoid({x}) − {y}) / m" if i == 0 else f"−{g}·{x} / m"  # eq 78


SOFTMAX, LOG_SOFTMAX = Softmax(), LogSoftmax()
BCE_WITH_LOGITS = BinaryCrossEntropyWithLogits()

def xdivy(x, y):
    """``XDIVY`` on ndarrays (plain numpy) or on Tensors (recorded): the vjps' helper."""
    if is_array(x) and is_array(y):
        return XDIVY.forward(x, y)
    return XDIVY(x, y)


def _where_x_is_zero(x, value):
    """``value`` with 0 wherever ``x == 0`` (broadcast to their common shape)."""
    xp = namespace(value)
    return xp.where(x == 0, xp.zeros((), dtype=value.dtype), value)


class XLogY(Broadcasting):
    """``x log y``, and exactly 0 where ``x == 0`` (even where y = 0: the limit 0 log 0 = 0).

    Gradient: ``d/dy = x / y`` with 0 where x == 0 (``xdivy``); ``d/dx = log y``, the
    derivative of x log y in x for every y > 0 (where y = 0 it is -inf, the one-sided truth;
    PyTorch's xlogy gives 0 at x = 0 instead, which is wrong for y > 0). Inputs broadcast.
    Log-loss (eq 1) is ``-xlogy(y, a) - xlogy(1 - y, 1 - a)``: a confidently right sample costs
    0 and has gradient 0, a confidently wrong one costs +inf.
    """
    name = "xlogy"
    vjp_reads_output = False  # log y and x / y

    def compute(self, x, y):
        xp = namespace(y)
        with errstate(xp, divide="ignore", invalid="ignore"):
            return _where_x_is_zero(x, x * xp.log(y))

    def vjp(self, g, inputs, output, wants):
        x, y = inputs
        grad_x = g * log(y) if wants[0] else None
        grad_y = g * xdivy(x, y) if wants[1] else None
        return grad_x, grad_y

    def formula(self, i, g, names, params, input_shapes):
        x, y, _ = names
        return f"{g}·log {y}" if i == 0 else f"{g}·{x}/{y} (0 where {x} = 0)"


class XDivY(Broadcasting):
    """``x / y``, and exactly 0 where ``x == 0`` (even where y = 0): the gradient of xlogy in y.

    Gradient: ``d/dx = 1 / y`` (x / y is linear in x, and the rule at x = 0 only matters where
    y = 0); ``d/dy = -x / y^2`` with 0 where x == 0, i.e. ``xdivy(-x, y * y)``. Inputs broadcast.
    """
    name = "xdivy"
    vjp_reads_output = False

    def compute(self, x, y):
        with errstate(namespace(y), divide="ignore", invalid="ignore"):
            return _where_x_is_zero(x, x / y)

    def vjp(self, g, inputs, output, wants):
        x, y = inputs
        grad_x = grad_y = None
        if wants[0]:
            with errstate(namespace(data_of(y)), divide="ignore"):
                grad_x = g / y
        if wants[1]:
            grad_y = g * xdivy(-x, y * y)
        return grad_x, grad_y

    def formula(self, i, g, names, params, input_shapes):
        x, y, _ = names
        return f"{g}/{y}" if i == 0 else f"−{g}·{x}/{y}² (0 where {x} = 0)"


XLOGY, XDIVY = XLogY(), XDivY()


def xlogy(x, y):
    """``x log y`` with 0 where x == 0, recorded in the graph: ``ag.xlogy(Y, A)``."""
    return XLOGY(x, y)


class PickClasses(Primitive):
    """``x[classes[i], i]`` for each sample i (a column): each sample's entry at its class,
    as cross-entropy with class indices needs (``-log softmax(z)`` at the true class). The
    classes are an input, not a parameter, so a compiled step reads each call's labels; they
    are checked in ``forward`` (whole numbers in range), so a replay checks them too. The
    gradient puts g back at those entries (0 elsewhere); the classes have none.

    numpy indexes; every other backend selects with the mask ``k == classes[i]`` (the standard's
    ``where`` and a sum over the classes: the same numbers, no scatter, and on Dask chunk by
    chunk along the samples, its labels checked inside the compute that picks them)."""
    name = "pick_classes"

    def forward(self, x, classes):
        n, m = x.shape
        where = _where(x, classes)
        if where.is_numpy:
            return backend.take(x, (_class_index(classes, n, m), _samples(x, m)))
        xp = where.xp
        zero = backend.constant(0.0, where, x.dtype)
        picked = xp.sum(xp.where(_class_mask(x, classes, where), x, zero), axis=0)
        if where.is_dask and m:
            backend.check_when_computed(picked, *_class_check(classes, n))
        return picked

    def vjp(self, g, inputs, output, wants):
        if not wants[0]:
            return None, None
        x, classes = data_of(inputs[0]), data_of(inputs[1])
        n, m = x.shape
        where = _where(x, classes)
        if where.is_numpy:
            return index_add(g, (n, m), (_class_index(classes, n, m), _samples(x, m))), None
        return g * factor(_class_mask(x, classes, where), g), None

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} at each sample's class of {names[1]}, 0 elsewhere" if i == 0 else "none"


def _class_index(classes, n, m):
    """The classes as integer indices, or a ValueError naming what is wrong."""
    if tuple(classes.shape) != (m,):
        raise ValueError(f"pick_classes: the classes must have shape ({m},), one per sample, "
                         f"got shape {tuple(classes.shape)}")
    xp = namespace(classes)
    index = xp.astype(classes, xp.int64)
    if not bool(xp.all(xp.astype(index, classes.dtype) == classes)) or (m and (xp.min(index) < 0 or xp.max(index) >= n)):
        raise ValueError(f"pick_classes: class labels must be whole numbers in [0, {n}), got "
                         f"{classes[:5]!r}{'...' if m > 5 else ''}")
    return index


def _where(x, classes):
    """The backend pick_classes computes in (numpy classes join Dask logits, and the reverse)."""
    return backend.join("pick_classes", [backend.of(x), backend.of(classes)])


def _class_mask(x, classes, where):
    """The (n, m) mask ``k == classes[i]`` of each sample's class on the backend ``where``. The
    classes are checked at once, but on Dask inside the compute (``_class_check``)."""
    n, m = x.shape
    if not where.is_dask:
        classes = _class_index(classes, n, m)
    elif tuple(classes.shape) != (m,):
        _class_index(classes, n, m)  # the shape's error, known without a compute
    xp = where.xp
    row = xp.reshape(backend.chunked_like(classes, x), (1, m))
    return xp.reshape(xp.arange(n, device=where.device), (n, 1)) == row


def _class_check(classes, n):
    """The labels' check and its lazy summaries (how many are not whole, the smallest, the
    largest), for ``backend.check_when_computed``."""
    xp = namespace(classes)
    whole = xp.astype(xp.astype(classes, xp.int64), classes.dtype) == classes

    def check(not_whole, low, high):
        if not_whole or low < 0 or high >= n:
            raise ValueError(f"pick_classes: class labels must be whole numbers in [0, {n}), got "
                             f"{int(not_whole)} that are not whole, values from {float(low):g} to "
                             f"{float(high):g}")

    return check, xp.sum(xp.astype(~whole, xp.int64)), xp.min(classes), xp.max(classes)


def _samples(x, m):
    """0, 1, ..., m - 1: every sample's column, in ``x``'s namespace."""
    return namespace(x).arange(m, device=backend.of(x).device)


PICK_CLASSES = PickClasses()


__all__ = ["XLogY", "XDivY", "XLOGY", "XDIVY", "xlogy", "xdivy", "PickClasses", "PICK_CLASSES"]

"""Normalisation layers: BatchNorm (over the samples, with running statistics) and LayerNorm
(over the features of each sample). Both are compositions of Tensor operations (mean, var,
sqrt, broadcasting), so every gradient comes from the engine, including through the batch
statistics themselves.

The first axis holds the features (units of a dense layer, channels of images) and the last the
samples, as everywhere in the seed's layout: X is n x m, images are C x H x W x m.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..ops import reduce
from ..errors import ShapeError
from ..ops import Primitive
from ..ops.base import reshape
from ..ops.elementwise import sqrt
from ..core.tensor import as_tensor
from .module import Module
from .parameter import Parameter


class RunningAverage(Primitive):
    """``running = (1 - momentum) running + momentum scale batch`` for BatchNorm's running
    statistics: ``batch`` is this batch's statistic (a Tensor; no gradient flows to it),
    ``running`` the module's buffer (an array parameter), ``scale`` N / (N - 1) for the
    unbiased variance. An op, not a line of numpy beside the graph, so that ``ag.compile``
    replays the update on every call (``updates_state``). Returns the updated statistics.

    The buffer is written in place where its backend's arrays can be written (numpy, torch,
    CuPy, array-api-strict: whoever holds the buffer sees the update, a compiled step's saved
    state included); a JAX array cannot be, so BatchNorm keeps the returned array instead."""
    name = "running_average"
    differentiable = False
    updates_state = True

    def forward(self, batch, running, momentum, scale):
        backend.join(self.name, [backend.of(batch), backend.of(running)])
        if isinstance(running, np.ndarray):
            running *= 1.0 - momentum
            running += momentum * scale * batch.reshape(running.shape)
            return running.copy()
        xp = backend.namespace(running)
        updated = xp.astype((1.0 - momentum) * running
                            + momentum * scale * xp.reshape(batch, running.shape), running.dtype)
        if backend.writable(running):
            running[...] = updated
        return updated

    def vjp(self, g, inputs, output, wants, running, momentum, scale):
        raise RuntimeError("running_average: running statistics have no gradient")

    def formula(self, i, g, names, params, input_shapes):
        return "0 (running statistics: no gradient)"


RUNNING_AVERAGE = RunningAverage()


class Buffer(Primitive):
    """A module's buffer (BatchNorm's running statistics) as ``shape``, for the input ``x`` it
    is applied to (only x's place in the graph: its values are not read): an op rather than an
    array beside the graph, so that a compiled step reads the buffer's values at every call.
    It has no gradient (a constant). The buffer must live in x's backend."""
    name = "buffer"
    differentiable = False
    vjp_reads_inputs = vjp_reads_output = False

    def forward(self, x, array, shape):
        where = backend.join(self.name, [backend.of(x), backend.of(array)])
        out = reshape(array, shape)
        # numpy statistics beside Dask data: a one-chunk Dask array (its graph embeds them)
        return out if backend.of(out) is where else where.xp.asarray(out)

    def vjp(self, g, inputs, output, wants, array, shape):
        raise RuntimeError("buffer: a module's buffer has no gradient")

    def formula(self, i, g, names, params, input_shapes):
        return "0 (a buffer: a constant)"


BUFFER = Buffer()


def _positive(value, label, layer):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{layer}: {label} must be a number > 0, got {value!r}")
    return float(value)


class BatchNorm(Module):
    """``BatchNorm(num_features, eps=1e-5, momentum=0.1)``: each feature (row of an n x m
    input, channel of C x H x W x m images) normalised over the samples (and pixels), then
    scaled and shifted: ``Y = gamma (X - mu) / sqrt(sigma² + eps) + beta``.

    PyTorch's ``BatchNorm1d``/``BatchNorm2d`` semantics, one class for both layouts:

    - training (``module.train()``, the default): mu and sigma² are the batch's mean and biased
      variance (ddof 0), and gradients flow through them; the running statistics move towards
      them, ``running = (1 - momentum) running + momentum batch``, with the unbiased variance
      (N / (N - 1) sigma²) for ``running_var``. A batch of one sample per feature is refused.
    - evaluation (``module.eval()``): mu and sigma² are the running statistics (constants).
    - on Dask data (with numpy running statistics, as ``model.to`` leaves them) mu and sigma²
      are lazy, in the graph, and the running statistics move when the batch is computed
      (``backward()``'s one compute brings its mean and variance), not at the forward pass.

    gamma starts at 1 and beta at 0 (shape (n, 1), like b of eq 33); the running statistics
    are buffers: saved and loaded with the parameters, never trained.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        if isinstance(num_features, bool) or not isinstance(num_features, numbers.Integral) or num_features < 1:
            raise ValueError(f"BatchNorm: num_features must be a whole number >= 1, got {num_features!r}")
        self.num_features = int(num_features)
        self.eps = _positive(eps, "eps", "BatchNorm")
        if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm: momentum must be a number in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.gamma = Parameter(np.ones((self.num_features, 1)), name="gamma")
        self.beta = Parameter(np.zeros((self.num_features, 1)), name="beta")
        self.register_buffer("running_mean", np.zeros((self.num_features, 1)))
        self.register_buffer("running_var", np.ones((self.num_features, 1)))

    def forward(self, X):
        X = as_tensor(X)
        if X.ndim < 2 or X.shape[0] != self.num_features:
            raise ShapeError(f"BatchNorm({self.num_features}): input must be {self.num_features} x "
                             f"m (or {self.num_features} x H x W x m images), got shape {X.shape}")
        for name in ("running_mean", "running_var"):
            where = backend.of(getattr(self, name))
            if where is not X._backend and not (where.is_numpy and X._backend.is_dask):
                raise backend.MixedBackendsError(
                    f"BatchNorm({self.num_features}): its {name} lives in "
                    f"{backend.describe(where)}, the input in {backend.describe(X._backend)}; "
                    f"autograd_lite never moves data silently: move the model to the input's "
                    f"backend first (model.to(...)), or the input to the model's")
        axes = tuple(range(1, X.ndim))        # everything but the features: samples (and pixels)
        kept = (self.num_features,) + (1,) * (X.ndim - 1)
        if self.training:
            count = int(np.prod([X.shape[a] for a in axes]))
            if count < 2:
                raise ShapeError(f"BatchNorm({self.num_features}): training needs more than one "
                                 f"value per feature to estimate its variance, got shape {X.shape} "
                                 f"(call .eval() to use the running statistics)")
            mean = X.mean(axis=axes, keepdims=True)
            var = reduce.var(X, axis=axes, keepdims=True)
            if X._backend.is_dask and backend.writable(self.running_mean):
                self._update_when_computed(mean.data, var.data, count / (count - 1))
            else:
                self._update("running_mean", mean, 1.0)
                self._update("running_var", var, count / (count - 1))
            X_hat = (X - mean) / sqrt(var + self.eps)
        else:
            X_hat = ((X - BUFFER(X, array=self.running_mean, shape=kept))
                     / sqrt(BUFFER(X, array=self.running_var, shape=kept) + self.eps))
        return self.gamma.reshape(kept) * X_hat + self.beta.reshape(kept)

    def _update(self, name, batch, scale):
        """Move the running statistic ``name`` towards ``batch`` (in place where its backend
        writes in place; a JAX buffer is replaced by the updated array)."""
        running = getattr(self, name)
        updated = RUNNING_AVERAGE(batch, running=running, momentum=self.momentum, scale=scale)
        if not backend.writable(running):
            object.__setattr__(self, name, updated.data)

    def _update_when_computed(self, mean, var, scale):
        """Move numpy running statistics towards a Dask batch's: its mean and variance are
        known only when the graph runs, so the update rides on the compute that first computes
        them (``backward()``'s one, which brings them as two small n x 1 summaries), in the
        order the batches went forward. Dask names an array by what it is made of, so the same
        layer on the same input twice in one graph gives one name: each forward is counted."""
        awaiting = self.__dict__.setdefault("_awaiting_statistics", {})
        awaiting.setdefault(var.name, []).append(self.momentum)

        def update(mean_value, var_value):
            for momentum in awaiting.pop(var.name, ()):
                RUNNING_AVERAGE.forward(mean_value, self.running_mean, momentum, 1.0)
                RUNNING_AVERAGE.forward(var_value, self.running_var, momentum, scale)

        # var itself among the summaries: held until that compute, whoever drops its tensor
        backend.check_when_computed(var, update, mean, var)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}"


class LayerNorm(Module):
    """``LayerNorm(normalized_shape, eps=1e-5)``: each sample (column) normalised over its
    features, ``Y = gamma (X - mu) / sqrt(sigma² + eps) + beta`` with mu, sigma² (biased) taken
    over every axis but the last. ``normalized_shape`` is the input's shape without the samples
    axis (n for n x m; (C, H, W) for images); gamma and beta have that shape plus a trailing 1.
    The same in training and evaluation (PyTorch's ``LayerNorm``, samples last)."""

    def __init__(self, normalized_shape, eps=1e-5):
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
        if not shape or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1 for n in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be a whole number >= 1 or a tuple "
                             f"of them, got {normalized_shape!r}")
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps = _positive(eps, "eps", "LayerNorm")
        self.gamma = Parameter(np.ones(self.normalized_shape + (1,)), name="gamma")
        self.beta = Parameter(np.zeros(self.normalized_shape + (1,)), name="beta")

    def forward(self, X):
        X = as_tensor(X)
        if X.shape[:-1] != self.normalized_shape or X.ndim < 2:
            raise ShapeError(f"LayerNorm{self.normalized_shape}: input must be "
                             f"{' x '.join(map(str, self.normalized_shape))} x m, got shape {X.shape}")
        axes = tuple(range(X.ndim - 1))
        mean = X.mean(axis=axes, keepdims=True)
        var = reduce.var(X, axis=axes, keepdims=True)
        return self.gamma * ((X - mean) / sqrt(var + self.eps)) + self.beta

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps:g}"


__all__ = ["BatchNorm", "LayerNorm"]

"""The convolution benchmark: one forward and backward pass of a 3 x 3 convolution layer, two ways.

The configuration: images X of C x H x W x m = 32 x 8 x 8 x 128 (samples last),
kernels W of F x C x kh x kw = 32 x 32 x 3 x 3, bias b (F, 1, 1, 1), stride 1, padding 1, so
Z is 32 x 8 x 8 x 128 too. The gradient reaching Z is a fixed random array G (what the layers
above would send back), so the pass is exactly the layer's own work:

- forward, eq 33 for every window: ``cols = im2col(X)`` (the (C·kh·kw) x (Ho·Wo·m) matrix
  whose columns are the windows), ``Z = reshape(W) @ cols + b``;
- backward, eqs 79-81 with the windows as the columns: ``dW = G cols^T``, ``db = sum(G)`` over
  pixels and samples, ``dcols = reshape(W)^T G``, and ``dX = col2im(dcols)`` (each window's
  entries added back onto the pixels it was read from).

``numpy_conv`` is that math written by hand (numpy's sliding windows for im2col, one matmul
each way, a loop over the kh·kw kernel offsets for col2im); ``engine_conv`` is
``ag.nn.Conv2d`` on a Tensor X and ``Z.backward(G)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import autograd_lite as ag


@dataclass(frozen=True)
class ConvWorkload:
    """A conv layer of ``F`` kernels of ``C`` x ``k`` x ``k`` (stride 1, padding ``padding``)
    on ``m`` images of ``C`` x ``side`` x ``side``."""

    name: str
    C: int
    side: int
    m: int
    F: int
    k: int = 3
    padding: int = 1

    def problem(self, seed=0):
        """Seeded X (C, side, side, m), W (F, C, k, k) of He's scale, b (F, 1, 1, 1), and the
        gradient G arriving at Z (F, Ho, Wo, m)."""
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((self.C, self.side, self.side, self.m))
        W = rng.standard_normal((self.F, self.C, self.k, self.k)) * np.sqrt(2.0 / (self.C * self.k ** 2))
        b = 0.1 * rng.standard_normal((self.F, 1, 1, 1))
        out = self.side + 2 * self.padding - self.k + 1
        G = rng.standard_normal((self.F, out, out, self.m))
        return X, W, b, G


CONV = ConvWorkload("conv 3x3, 32 -> 32 channels, 32 x 8 x 8 x 128, padding 1", 32, 8, 128, 32)


# --- by hand in numpy -----------------------------------------------------------------------------

def im2col(X, k, padding):
    """The (C·k·k) x (Ho·Wo·m) matrix of X's windows (stride 1), rows ordered (c, p, q) like
    ``W.reshape(F, C·k·k)``'s columns, columns ordered (i, j, sample)."""
    C, H, W, m = X.shape
    if padding:
        X = np.pad(X, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    windows = sliding_window_view(X, (k, k), axis=(1, 2))          # (C, Ho, Wo, m, k, k), a view
    Ho, Wo = windows.shape[1], windows.shape[2]
    return np.ascontiguousarray(windows.transpose(0, 4, 5, 1, 2, 3)).reshape(C * k * k, Ho * Wo * m)


def col2im(cols, shape, k, padding):
    """The adjoint of ``im2col``: each window entry added onto the pixel it came from."""
    C, H, W, m = shape
    Ho, Wo = H + 2 * padding - k + 1, W + 2 * padding - k + 1
    cols = cols.reshape(C, k, k, Ho, Wo, m)
    images = np.zeros((C, H + 2 * padding, W + 2 * padding, m))
    for p in range(k):
        for q in range(k):
            images[:, p:p + Ho, q:q + Wo, :] += cols[:, p, q]
    return images[:, padding:padding + H, padding:padding + W, :]


def numpy_conv(X, W, b, G, padding):
    """Z and (dX, dW, db) for the gradient G at Z, by hand (eqs 33, 79-81 per window)."""
    F, C, k, _ = W.shape
    m = X.shape[3]
    cols = im2col(X, k, padding)
    W_matrix = W.reshape(F, C * k * k)
    Z = (W_matrix @ cols).reshape(F, G.shape[1], G.shape[2], m) + b
    G_matrix = G.reshape(F, -1)
    dW = (G_matrix @ cols.T).reshape(W.shape)
    db = G.sum(axis=(1, 2, 3), keepdims=True)
    dX = col2im(W_matrix.T @ G_matrix, X.shape, k, padding)
    return Z, (dX, dW, db)


# --- the engine -----------------------------------------------------------------------------------

def engine_problem(X, W, b, workload):
    """X as a Tensor that requires a gradient, and an ``ag.nn.Conv2d`` holding copies of W, b."""
    layer = ag.nn.Conv2d(workload.C, workload.F, workload.k, padding=workload.padding)
    layer.W.data = W.copy()
    layer.b.data = b.copy()
    return ag.Tensor(X, requires_grad=True), layer


def engine_conv(X, layer, G):
    """Z and (dX, dW, db) by the engine: the layer's forward, then ``Z.backward(G)``."""
    for tensor in (X, layer.W, layer.b):
        tensor.grad = None
    Z = layer(X)
    Z.backward(G)
    return Z.data, (X.grad, layer.W.grad, layer.b.grad)


# --- checked, then timed --------------------------------------------------------------------------

def check(workload, hand=numpy_conv):
    """The engine's Z, dX, dW, db equal the hand-written numpy's (rtol 1e-9), or SystemExit."""
    X, W, b, G = workload.problem()
    expected = hand(X, W, b, G, workload.padding)
    X_t, layer = engine_problem(X, W, b, workload)
    found = engine_conv(X_t, layer, G)
    pairs = [("Z", found[0], expected[0])] + [
        (name, f, e) for name, f, e in zip(("dX", "dW", "db"), found[1], expected[1])]
    for name, value, wanted in pairs:
        if value is None or value.shape != wanted.shape or not np.allclose(
                value, wanted, rtol=1e-9, atol=1e-12):
            difference = ("missing or of another shape" if value is None or value.shape != wanted.shape
                          else f"max |diff| {np.max(np.abs(value - wanted)):.3g}")
            raise SystemExit(f"{workload.name}: the engine's {name} differs from the hand-written "
                             f"numpy conv ({difference}); not timing a wrong answer")


def steps(workload):
    """name -> a no-argument callable running one forward and backward pass, for
    ``run.time_interleaved`` (the hand numpy one is the floor, named "numpy")."""
    X, W, b, G = workload.problem()
    X_t, layer = engine_problem(X, W, b, workload)
    return {"numpy": lambda: numpy_conv(X, W, b, G, workload.padding),
            "autograd_lite": lambda: engine_conv(X_t, layer, G)}

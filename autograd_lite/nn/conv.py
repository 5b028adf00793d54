"""Convolution and pooling on images C x H x W x m (samples are the last axis, as columns are).

Two primitives do all the pixel work, with numpy's sliding windows and no Python loop over
pixels:

- ``im2col`` (``IM2COL``): every kh x kw window of the (padded) images, laid out as
  (C, kh, kw, Ho, Wo, m), so that a reshape gives the (C·kh·kw) x (Ho·Wo·m) matrix whose
  columns are the windows;
- ``col2im`` (``COL2IM``): the adjoint, adding each window's entries back onto the pixels they
  came from (a pixel in several windows receives the sum), then dropping the padding. Its loop
  runs over the kh·kw kernel offsets, each a strided slice over every window at once.

Each one's vjp is the other, so both are linear maps with exact, again differentiable rules.
Everything else is a composition of existing primitives, whose gradients the engine derives:

    conv2d:      Z = reshape(W, F x C·kh·kw) @ reshape(im2col(X)) + b   (eq 33 per window)
    max_pool2d:  max over the kh x kw axes of im2col(X)  (padding -inf; ties split equally)
    avg_pool2d:  mean over the kh x kw axes of im2col(X) (padding 0, counted: PyTorch's default)
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..ops import reduce
from ..errors import ShapeError
from ..ops import Primitive
from ..ops.base import is_array
from ..core.tensor import as_tensor
from . import init as initialisers
from .module import Module
from .parameter import Parameter


def _output_side(side, kernel, stride, padding):
    return (side + 2 * padding - kernel) // stride + 1


def _strides(stride):
    """(sh, sw): a stride is one whole number for both axes or a pair (rows, columns)."""
    return (stride, stride) if isinstance(stride, numbers.Integral) else tuple(stride)


def _output_sides(shape, kernel, stride, padding):
    """(Ho, Wo) of images ``shape`` (C, H, W, m) under a kernel pair and a stride."""
    return tuple(_output_side(side, k, s, padding)
                 for side, k, s in zip(shape[1:3], kernel, _strides(stride)))


def _check_images(shape, kernel, stride, padding, op_name):
    """Refuse an input that is not C x H x W x m or too small for the window, naming the op."""
    if len(shape) != 4:
        raise ShapeError(f"{op_name}: images must be C x H x W x m (samples last), got shape "
                         f"{tuple(shape)}")
    C, H, W, m = shape
    kh, kw = kernel
    if H + 2 * padding < kh or W + 2 * padding < kw:
        raise ShapeError(f"{op_name}: a {kh} x {kw} window does not fit images of {H} x {W} "
                         f"pixels with padding {padding}")


class Im2Col(Primitive):
    """Every window of the images: (C, H, W, m) -> (C, kh, kw, Ho, Wo, m), where
    ``Ho = (H + 2 padding - kh) // sh + 1`` (likewise Wo, with the stride (sh, sw)). Padding fills ``pad_value``
    (0 for convolution and average pooling, -inf for max pooling). ``input_shape`` is the
    input's shape, a parameter so that the vjp (col2im) reads no input."""
    name = "im2col"
    vjp_reads_inputs = vjp_reads_output = False

    def forward(self, x, kernel, stride, padding, pad_value, input_shape):
        _check_images(x.shape, kernel, stride, padding, self.name)
        if x.shape != tuple(input_shape):
            raise ShapeError(f"im2col: input of shape {x.shape} but input_shape={input_shape}")
        if padding:
            x = backend.padded(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)),
                               pad_value)
        return backend.windows(x, kernel, _strides(stride))

    def vjp(self, g, inputs, output, wants, kernel, stride, padding, pad_value, input_shape):
        # NOTE: gradients that landed on padding are dropped by col2im: padding is a constant.
        return (_col2im(g, input_shape, kernel, stride, padding),)

    def formula(self, i, g, names, params, input_shapes):
        return f"col2im({g})"  # each window's gradient added back onto its pixels


class Col2Im(Primitive):
    """The adjoint of im2col: (C, kh, kw, Ho, Wo, m) -> (C, H, W, m), each window entry added
    onto the pixel it was read from, padding dropped."""
    name = "col2im"
    vjp_reads_inputs = vjp_reads_output = False

    def forward(self, cols, input_shape, kernel, stride, padding):
        C, H, W, m = input_shape
        kh, kw = kernel
        Ho, Wo = cols.shape[3], cols.shape[4]
        sh, sw = _strides(stride)
        if cols.shape != (C, kh, kw, Ho, Wo, m) or (Ho, Wo) != _output_sides(input_shape, kernel,
                                                                              stride, padding):
            raise ShapeError(f"col2im: windows of shape {cols.shape} do not come from images "
                             f"{tuple(input_shape)} with a {kh} x {kw} kernel, stride {stride}, "
                             f"padding {padding}")
        shape = (C, H + 2 * padding, W + 2 * padding, m)
        images = np.zeros(shape, dtype=cols.dtype) if isinstance(cols, np.ndarray) else \
            backend.namespace(cols).zeros(shape, dtype=cols.dtype, device=backend.device_of(cols))
        # NOTE: one strided slice per kernel offset (kh·kw of them), each covering every window:
        # within one offset no two windows share a pixel, so `+=` adds nothing twice.
        for p in range(kh):
            for q in range(kw):
                images = backend.add_to_slices(images, (
                    slice(None), slice(p, p + sh * (Ho - 1) + 1, sh),
                    slice(q, q + sw * (Wo - 1) + 1, sw), slice(None)), cols[:, p, q, ...])
        return images[:, padding:padding + H, padding:padding + W, :] if padding else images

    def vjp(self, g, inputs, output, wants, input_shape, kernel, stride, padding):
        return (_im2col(g, kernel, stride, padding, 0.0),)

    def formula(self, i, g, names, params, input_shapes):
        return f"im2col({g})"


IM2COL, COL2IM = Im2Col(), Col2Im()


def _im2col(x, kernel, stride, padding, pad_value):
    params = dict(kernel=kernel, stride=stride, padding=padding, pad_value=pad_value,
                  input_shape=tuple(x.shape))
    return IM2COL.forward(x, **params) if is_array(x) else IM2COL(x, **params)


def _col2im(cols, input_shape, kernel, stride, padding):
    params = dict(input_shape=tuple(input_shape), kernel=kernel, stride=stride, padding=padding)
    return COL2IM.forward(cols, **params) if is_array(cols) else COL2IM(cols, **params)


# --- arguments ----------------------------------------------------------------------------------

def _pair(value, label, op_name, minimum=1):
    pair = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum
                             for v in pair):
        raise ValueError(f"{op_name}: {label} must be a whole number >= {minimum} or a pair of "
                         f"them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _whole(value, label, op_name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{op_name}: {label} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def im2col(x, kernel_size, stride=1, padding=0, pad_value=0.0):
    """The windows of images x (C, H, W, m) as a (C, kh, kw, Ho, Wo, m) Tensor (see ``Im2Col``);
    ``kernel_size`` and ``stride`` are a whole number or a pair (rows, columns)."""
    x = as_tensor(x)
    kernel = _pair(kernel_size, "kernel_size", "im2col")
    stride = _pair(stride, "stride", "im2col")
    padding = _whole(padding, "padding", "im2col", 0)
    _check_images(x.shape, kernel, stride, padding, "im2col")
    return IM2COL(x, kernel=kernel, stride=stride, padding=padding, pad_value=float(pad_value),
                  input_shape=tuple(x.shape))


# --- the layers as functions ------------------------------------------------------------------

def conv2d(x, W, b=None, stride=1, padding=0):
    """2-D convolution (cross-correlation, as in every framework) of images x (C, H, W, m) with
    kernels W (F, C, kh, kw), plus an optional bias b (F, 1, 1, 1): Z (F, Ho, Wo, m).

    Each output pixel is eq 33, ``z = w · a + b``, for the window a under it: written as
    ``reshape(W, (F, C·kh·kw)) @ im2col(x)`` so the gradients are matmul's (eqs 79, 81)."""
    x, W = as_tensor(x), as_tensor(W)
    stride = _whole(stride, "stride", "conv2d", 1)
    padding = _whole(padding, "padding", "conv2d", 0)
    if W.ndim != 4:
        raise ShapeError(f"conv2d: kernels W must be F x C x kh x kw, got shape {W.shape}")
    F, C, kh, kw = W.shape
    _check_images(x.shape, (kh, kw), (stride, stride), padding, "conv2d")
    if x.shape[0] != C:
        raise ShapeError(f"conv2d: images have {x.shape[0]} channels (shape {x.shape}) but the "
                         f"kernels W {W.shape} expect {C}")
    cols = im2col(x, (kh, kw), (stride, stride), padding)
    _, _, _, Ho, Wo, m = cols.shape
    Z = (W.reshape(F, C * kh * kw) @ cols.reshape(C * kh * kw, Ho * Wo * m)).reshape(F, Ho, Wo, m)
    if b is not None:
        b = as_tensor(b)
        if b.shape != (F, 1, 1, 1):
            raise ShapeError(f"conv2d: bias b must have shape ({F}, 1, 1, 1), got {b.shape}")
        Z = Z + b
    return Z


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """The largest pixel of each kh x kw window (``stride``, a whole number or a pair, defaults
    to the kernel size on each axis, as PyTorch's; padding is -inf). The gradient goes to the window's maximum, split equally between ties (PyTorch
    picks one of them); a pixel in several windows gets the sum."""
    kernel, stride, padding = _pool_arguments(x, kernel_size, stride, padding, "max_pool2d")
    return reduce.max(im2col(x, kernel, stride, padding, -np.inf), axis=(1, 2))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """The mean of each kh x kw window (stride defaults to the kernel, per axis; padding pixels
    are zeros and count in the mean, PyTorch's ``count_include_pad=True``)."""
    kernel, stride, padding = _pool_arguments(x, kernel_size, stride, padding, "avg_pool2d")
    return im2col(x, kernel, stride, padding).mean(axis=(1, 2))


def _pool_arguments(x, kernel_size, stride, padding, op_name):
    kernel = _pair(kernel_size, "kernel_size", op_name)
    stride = kernel if stride is None else _pair(stride, "stride", op_name)
    padding = _whole(padding, "padding", op_name, 0)
    if 2 * padding > min(kernel):
        raise ValueError(f"{op_name}: padding {padding} must be at most half the kernel size "
                         f"{kernel} (a window of padding alone has no pixel)")
    _check_images(np.shape(x.data if hasattr(x, "requires_grad") else x), kernel, stride, padding,
                  op_name)
    return kernel, stride, padding


# --- the layers as modules --------------------------------------------------------------------

class Conv2d(Module):
    """``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, init="he",
    rng=None)``: kernels W (F, C, kh, kw) and bias b (F, 1, 1, 1), on images C x H x W x m.

    W is drawn by ``init`` as the F x (C·kh·kw) matrix it is used as (so He's n_in is
    C·kh·kw) and b starts at zero."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, init="he",
                 rng=None):
        C = _whole(in_channels, "in_channels", "Conv2d", 1)
        F = _whole(out_channels, "out_channels", "Conv2d", 1)
        kh, kw = _pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = _whole(stride, "stride", "Conv2d", 1)
        self.padding = _whole(padding, "padding", "Conv2d", 0)
        generator = initialisers._generator(rng)
        matrix = initialisers.initial_array(init, (F, C * kh * kw), generator)
        self.W = Parameter(matrix.reshape(F, C, kh, kw), name="W")
        self.b = Parameter(np.zeros((F, 1, 1, 1)), name="b")

    def forward(self, x):
        return conv2d(x, self.W, self.b, self.stride, self.padding)

    def extra_repr(self):
        F, C, kh, kw = self.W.shape
        return f"{C}, {F}, kernel_size=({kh}, {kw}), stride={self.stride}, padding={self.padding}"


class MaxPool2d(Module):
    """``MaxPool2d(kernel_size, stride=None, padding=0)``: see ``max_pool2d``."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        _pair(kernel_size, "kernel_size", "MaxPool2d")

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    """``AvgPool2d(kernel_size, stride=None, padding=0)``: see ``avg_pool2d``."""

    def forward(self, x):
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class Flatten(Module):
    """Images C x H x W x m (or any ... x m) -> the (C·H·W) x m columns a ``Linear`` takes;
    the samples stay the last axis (PyTorch's Flatten keeps the first)."""

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim < 2:
            raise ShapeError(f"Flatten: input must have a samples axis last and at least one "
                             f"more, got shape {x.shape}")
        return x.reshape(-1, x.shape[-1])


class Unflatten(Module):
    """Columns (C·H·W) x m -> images C x H x W x m: ``Unflatten((1, 8, 8))`` turns the 64
    pixels of each digit column back into a 1 x 8 x 8 image."""

    def __init__(self, shape):
        self.shape = tuple(_whole(n, "shape", "Unflatten", 1) for n in shape)

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim != 2 or x.shape[0] != int(np.prod(self.shape)):
            raise ShapeError(f"Unflatten{self.shape}: input must be ({int(np.prod(self.shape))}, m), "
                             f"got shape {x.shape}")
        return x.reshape(self.shape + (x.shape[1],))

    def extra_repr(self):
        return f"{self.shape}"


__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "im2col", "Conv2d", "MaxPool2d", "AvgPool2d",
           "Flatten", "Unflatten"]

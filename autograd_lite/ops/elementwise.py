"""Elementwise primitives: exp, log, the activations (sigmoid eqs 7-8, tanh, relu, leaky_relu,
elu, gelu, softplus), abs, maximum/minimum, clip, square, sqrt, sin, cos.

Each primitive is one class: ``forward`` (numpy in, numpy out), ``vjp`` written with operators
and the dual-mode helpers (so under ``ag.grad`` it records Tensor ops and can be differentiated
again), and the ``formula`` graph pictures print. The module functions at the end
(``maximum(x, y)``, ``gelu(x)``, ...) apply the primitive to Tensors, arrays or numbers;
``Tensor`` methods and the ``ag.f`` functions delegate to them.

Masks (which side of a kink an element is on) are constants: a step function's derivative is
0 almost everywhere, so a vjp multiplies g by a plain boolean/float array read with ``data_of``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import ShapeError
from ..backend import erfc, numpy_namespace
from .base import (Broadcasting, Primitive, data_of, dual, errstate, exp, factor, finite_number,
                   is_array, namespace, of_dtype)


def sigmoid(x):
    return SIGMOID.forward(x) if is_array(x) else x.sigmoid()


class Exp(Primitive):
    name = "exp"
    vjp_reads_inputs = False  # g e^x, from the output

    def forward(self, x):
        xp = namespace(x)
        with errstate(xp, over="ignore"):  # exp(800) = inf, as in numpy; the sentinel reports it
            return xp.exp(x)

    def vjp(self, g, inputs, output, wants):
        return (g * output,)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ {names[-1]}"


class Log(Primitive):
    """Natural log (eq 1). log(0) = -inf and log(x < 0) = nan, as in numpy, without numpy's
    warning: ``binary_cross_entropy`` and the saturation sentinel explain it instead."""
    name = "log"

    def forward(self, x):
        xp = namespace(x)
        with errstate(xp, divide="ignore", invalid="ignore"):
            return xp.log(x)

    def vjp(self, g, inputs, output, wants):
        (x,) = inputs
        return (g / x,)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} / {names[0]}"


class Sigmoid(Primitive):
    """s(z) = 1 / (1 + e^-z) (eq 7), with s'(z) = s(z)(1 - s(z)) (eq 8)."""
    name = "sigmoid"
    vjp_reads_inputs = False  # eq 8 from the output s alone

    def forward(self, z):
        xp = namespace(z)
        if xp is numpy_namespace and _exp_of_minus_overflows(z):  # numpy would warn and give 0
            return _sigmoid_past_overflow(z)
        e = xp.exp(-z)
        one = 1.0 if e.ndim else xp.ones_like(e)  # numpy 1 makes a 0-d float32 and 1.0 float64
        return one / (one + e)  # eq 7 as written

    def vjp(self, g, inputs, output, wants):
        return (g * output * (1.0 - output),)  # eq 8: g s (1 - s)

    def formula(self, i, g, names, params, input_shapes):
        out = names[-1]
        return f"{g} ∘ {out}(1 − {out})"  # eq 8


# Per dtype, the least whole z whose e^-z numpy's exp keeps finite: -floor(log of the largest
# float), -709 in float64, -88 in float32, -11 in float16.
_LEAST_SAFE_Z = {np.dtype(t): -math.floor(math.log(float(np.finfo(t).max)))
                 for t in (np.float16, np.float32, np.float64)}


def _exp_of_minus_overflows(z) -> bool:
    """Whether e^-z may overflow somewhere in the numpy array ``z``: its least element (fmin
    passes over nan) below the bound of its dtype. One reduction, cheaper than switching
    numpy's floating-point errors for every call."""
    return z.dtype not in _LEAST_SAFE_Z or np.fmin.reduce(z, None, initial=np.inf) < _LEAST_SAFE_Z[z.dtype]


def _sigmoid_past_overflow(z):
    """Eq 7 for a numpy ``z`` where e^-z overflows somewhere: eq 7 as written wherever e^-z is
    finite; where it is not, the same fraction times e^z / e^z, e^z / (1 + e^z), which is e^z
    there (e^z is below the smallest normal float, so 1 + e^z rounds to 1). So s keeps its tiny
    values (e^-711, not 0), and nothing warns."""
    with np.errstate(over="ignore"):
        e, tail = np.exp(-z), np.exp(z)
    one = 1.0 if e.ndim else np.ones_like(e)
    return np.where(np.isinf(e), tail, one / (one + e))


class Tanh(Primitive):
    name = "tanh"
    vjp_reads_inputs = False  # 1 - tanh^2, from the output

    def forward(self, z):
        return namespace(z).tanh(z)

    def vjp(self, g, inputs, output, wants):
        return (g * (1.0 - output * output),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ (1 − {names[-1]}²)"


class ReLU(Primitive):
    name = "relu"

    def forward(self, z):
        return namespace(z).maximum(z, 0.0)

    def vjp(self, g, inputs, output, wants):
        # NOTE: the gradient at exactly 0 is taken as 0 (a subgradient), as in PyTorch and JAX.
        # The mask is a constant: the step function's own derivative is 0 almost everywhere.
        return (g * factor(data_of(inputs[0]) > 0, g),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ [{names[0]} > 0]"


class Abs(Primitive):
    name = "abs"

    def forward(self, x):
        return namespace(x).abs(x)

    def vjp(self, g, inputs, output, wants):
        x = data_of(inputs[0])
        return (g * namespace(x).sign(x),)  # gradient 0 at 0, like relu

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ sign({names[0]})"


EXP, LOG, SIGMOID, TANH, RELU, ABS = Exp(), Log(), Sigmoid(), Tanh(), ReLU(), Abs()

_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_GELU_C = math.sqrt(2.0 / math.pi)   # the constant of the tanh approximation of gelu
_TANH_GELU_K = 0.044715


# --- maximum, minimum: binary, broadcasting ------------------------------------------------------

class _BinaryExtremum(Broadcasting):
    """Elementwise max/min of two broadcast operands. NOTE: where x == y the gradient is split
    equally (g/2 to each), as ``max`` splits it between tied elements: the average of the two
    one-sided derivatives, and symmetric in x and y."""
    vjp_reads_output = False  # the masks come from x and y

    def vjp(self, g, inputs, output, wants):
        x, y = data_of(inputs[0]), data_of(inputs[1])
        dtype = namespace(x).result_type(x, y)  # a boolean's share in the operands' dtype
        share_x = _as(self.wins(x, y), dtype) + _as(x == y, dtype) * 0.5  # 1 x wins, 1/2 tie
        return (g * share_x if wants[0] else None), (g * (1.0 - share_x) if wants[1] else None)


def _as(mask, dtype):
    return namespace(mask).astype(mask, dtype)


class Maximum(_BinaryExtremum):
    """``maximum(x, y)`` elementwise (numpy's ``np.maximum``, PyTorch's ``torch.maximum``)."""
    name = "maximum"

    def compute(self, x, y):
        return namespace(x).maximum(x, y)

    @staticmethod
    def wins(x, y):
        return x > y

    def formula(self, i, g, names, params, input_shapes):
        x, y = names[0], names[1]
        return f"{g} ∘ [{x} > {y}] (½ at ties)" if i == 0 else f"{g} ∘ [{y} > {x}] (½ at ties)"


class Minimum(_BinaryExtremum):
    """``minimum(x, y)`` elementwise (``np.minimum``, ``torch.minimum``)."""
    name = "minimum"

    def compute(self, x, y):
        return namespace(x).minimum(x, y)

    @staticmethod
    def wins(x, y):
        return x < y

    def formula(self, i, g, names, params, input_shapes):
        x, y = names[0], names[1]
        return f"{g} ∘ [{x} < {y}] (½ at ties)" if i == 0 else f"{g} ∘ [{y} < {x}] (½ at ties)"


class Clip(Primitive):
    """``clip(x, low, high)``: x limited to [low, high] (either bound may be None).

    The gradient is g where low <= x <= high and 0 outside, the bounds included (as in PyTorch's
    ``clamp``). The bounds are constants (numbers or arrays that broadcast against x): a
    parameter, or, when a bound is a Tensor (an argument of a compiled step), an input without
    a gradient (its parameter says ``"input"``), so that a compiled step reads each call's."""
    name = "clip"
    vjp_reads_output = False  # the mask comes from x and the bounds

    def forward(self, x, *bounds, low, high):
        low, high = _bounds(bounds, low, high)
        if bounds and low is not None and high is not None and np.any(low > high):
            raise ValueError(f"clip: low {_bound_text(low)} is above high {_bound_text(high)}")
        try:
            return namespace(x).clip(x, low, high)
        except ValueError:
            shapes = ", ".join(str(np.shape(b)) for b in (low, high) if b is not None)
            raise ShapeError(f"clip: bounds of shape {shapes} cannot be broadcast to x of "
                             f"shape {np.shape(x)}") from None

    def vjp(self, g, inputs, output, wants, low, high):
        x = data_of(inputs[0])
        low, high = _bounds([data_of(b) for b in inputs[1:]], low, high)
        inside = True
        if low is not None:
            inside = inside & (x >= low)
        if high is not None:
            inside = inside & (x <= high)
        return (g * factor(inside, g),) + (None,) * (len(inputs) - 1)

    def formula(self, i, g, names, params, input_shapes):
        if i:
            return "none (a bound)"
        low = "−∞" if params["low"] is None else _short(params["low"])
        high = "∞" if params["high"] is None else _short(params["high"])
        return f"{g} ∘ [{low} ≤ {names[0]} ≤ {high}]"


def _bounds(arrays, low, high):
    """The bounds, each an input's array where its parameter says ``"input"``."""
    arrays = iter(arrays)
    return (next(arrays) if isinstance(low, str) else low), (next(arrays) if isinstance(high, str) else high)


def _short(value):
    return f"{value:g}" if isinstance(value, float) else "bound"


# --- smooth unary ops -------------------------------------------------------------------------

class Square(Primitive):
    """``x²``, with derivative 2x."""
    name = "square"
    vjp_reads_output = False

    def forward(self, x):
        return namespace(x).square(x)

    def vjp(self, g, inputs, output, wants):
        return (g * (2.0 * inputs[0]),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ 2{names[0]}"


class Sqrt(Primitive):
    """``√x``, with derivative 1 / (2√x), read from the output. At x = 0 the gradient is +inf
    (the slope of √x there); x < 0 gives nan, as in numpy, without its warning."""
    name = "sqrt"
    vjp_reads_inputs = False

    def forward(self, x):
        xp = namespace(x)
        with errstate(xp, invalid="ignore"):
            return xp.sqrt(x)

    def vjp(self, g, inputs, output, wants):
        with errstate(namespace(data_of(output)), divide="ignore", invalid="ignore"):
            return (g / (2.0 * output),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} / (2{names[-1]})"


class Sin(Primitive):
    """``sin x``, with derivative cos x."""
    name = "sin"
    vjp_reads_output = False

    def forward(self, x):
        return namespace(x).sin(x)

    def vjp(self, g, inputs, output, wants):
        return (g * dual(COS, inputs[0]),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ cos {names[0]}"


class Cos(Primitive):
    """``cos x``, with derivative −sin x."""
    name = "cos"
    vjp_reads_output = False

    def forward(self, x):
        return namespace(x).cos(x)

    def vjp(self, g, inputs, output, wants):
        return (-(g * dual(SIN, inputs[0])),)

    def formula(self, i, g, names, params, input_shapes):
        return f"−{g} ∘ sin {names[0]}"


# --- activations ------------------------------------------------------------------------------

class LeakyReLU(Primitive):
    """``x`` for x > 0, ``slope · x`` otherwise (PyTorch's default slope is 0.01). The gradient
    at exactly 0 is the slope, as relu's is 0 there (the left derivative)."""
    name = "leaky_relu"
    vjp_reads_output = False

    def forward(self, x, slope):
        return namespace(x).where(x > 0, x, x * slope)

    def vjp(self, g, inputs, output, wants, slope):
        x = data_of(inputs[0])  # the factor in x's dtype: float32 stays float32
        return (g * namespace(x).where(x > 0, of_dtype(1.0, x), of_dtype(slope, x)),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ (1 if {names[0]} > 0 else {params['slope']:g})"


class ELU(Primitive):
    """``x`` for x > 0, ``alpha (eˣ − 1)`` otherwise. Its derivative for x <= 0 is
    ``alpha eˣ = output + alpha``, read from the output (differentiable again there)."""
    name = "elu"

    def forward(self, x, alpha):
        # NOTE: expm1 keeps alpha(e^x - 1) exact for tiny x; the minimum keeps e^x from
        # overflowing (with a warning) on the positive side, which np.where would discard.
        xp = namespace(x)
        return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0.0)))

    def vjp(self, g, inputs, output, wants, alpha):
        positive = data_of(inputs[0]) > 0
        # NOTE: output + alpha = alpha e^x on the negative side; on the positive side the
        # factor is 0, so output there (= x) never reaches the gradient.
        return (g * (factor(positive, output) + (output + alpha) * factor(~positive, output)),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ (1 if {names[0]} > 0 else {names[-1]} + {params['alpha']:g})"


class Softplus(Primitive):
    """``log(1 + eˣ)``, computed as ``max(x, 0) + log(1 + e^-|x|)``: exact and silent for any x
    (the textbook form overflows for x > 709). Its derivative is the sigmoid s(x) (eq 7)."""
    name = "softplus"
    vjp_reads_output = False

    def forward(self, x):
        xp = namespace(x)
        return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))

    def vjp(self, g, inputs, output, wants):
        return (g * sigmoid(inputs[0]),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ sigmoid({names[0]})"  # eq 7


def _normal_cdf(x):
    """Φ(x) = (1 + erf(x/√2)) / 2, computed as erfc(−x/√2) / 2: 1 + erf cancels for x << 0,
    erfc keeps Φ's relative precision there. erfc is the backend's (``backend.erfc``: numpy
    has none, so Python's ``math.erfc``, correct to float64 rounding, element by element)."""
    return erfc(-x / _SQRT_2) / 2


class NormalCDF(Primitive):
    """Φ(x), the standard normal distribution function; its derivative is the density
    φ(x) = e^(−x²/2) / √(2π). Used by the exact gelu (and its second derivative)."""
    name = "normal_cdf"
    vjp_reads_output = False

    def forward(self, x):
        return _normal_cdf(x)

    def vjp(self, g, inputs, output, wants):
        x = inputs[0]
        return (g * exp(x * x * -0.5) * _INV_SQRT_2PI,)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ φ({names[0]})"


class GELU(Primitive):
    """``gelu(x) = x Φ(x)``, Φ the standard normal distribution function.

    ``approximate="none"`` (the default, as in PyTorch) is the exact erf form,
    Φ(x) = erfc(−x/√2) / 2 with the C library's erfc applied element by element (correct to
    float64 rounding, but a Python call per element: slower than the other activations).
    ``approximate="tanh"`` is the approximation 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³)))
    (PyTorch's ``gelu(approximate="tanh")``), fast and within about 1e-3 of the exact form.
    Derivative (exact form): Φ(x) + x φ(x)."""
    name = "gelu"
    vjp_reads_output = False

    def forward(self, x, approximate):
        if approximate == "tanh":
            tanh = namespace(x).tanh
            return 0.5 * x * (1.0 + tanh(_TANH_GELU_C * (x + _TANH_GELU_K * x * x * x)))
        return x * _normal_cdf(x)

    def vjp(self, g, inputs, output, wants, approximate):
        x = inputs[0]
        if approximate == "tanh":
            u = (x + x * x * x * _TANH_GELU_K) * _TANH_GELU_C
            t = namespace(u).tanh(u) if is_array(u) else u.tanh()
            du = (x * x * (3.0 * _TANH_GELU_K) + 1.0) * _TANH_GELU_C
            return (g * ((t + 1.0) * 0.5 + x * (1.0 - t * t) * du * 0.5),)
        phi = exp(x * x * -0.5) * _INV_SQRT_2PI
        return (g * (dual(NORMAL_CDF, x) + x * phi),)

    def formula(self, i, g, names, params, input_shapes):
        x = names[0]
        if params["approximate"] == "tanh":
            return f"{g} ∘ d/d{x} of ½{x}(1 + tanh(√(2/π)({x} + 0.044715{x}³)))"
        return f"{g} ∘ (Φ({x}) + {x}·φ({x}))"


# --- the instances, and the functions that apply them ------------------------------------------

MAXIMUM, MINIMUM, CLIP = Maximum(), Minimum(), Clip()
SQUARE, SQRT, SIN, COS = Square(), Sqrt(), Sin(), Cos()
LEAKY_RELU, ELU_, SOFTPLUS, NORMAL_CDF, GELU_ = LeakyReLU(), ELU(), Softplus(), NormalCDF(), GELU()


def maximum(x, y):
    """Elementwise ``max(x, y)`` with broadcasting; at ties each side gets half the gradient."""
    return MAXIMUM(x, y)


def minimum(x, y):
    """Elementwise ``min(x, y)`` with broadcasting; at ties each side gets half the gradient."""
    return MINIMUM(x, y)


def clip(x, low=None, high=None, out=None):
    """``x`` limited to [low, high] (``np.clip``; PyTorch's ``clamp``). Bounds are constants:
    numbers, arrays, Tensors without a gradient, or None for no bound; gradient g inside
    (bounds included), 0 outside. ``np.clip(t, low, high)`` on a Tensor comes here too
    (``out`` must stay None)."""
    if out is not None:
        # NOTE: ValueError, not TypeError: np.clip falls back to the bare ndarray (losing the
        # gradient without a word) when the method raises a TypeError.
        raise ValueError("clip: out= is not supported (a Tensor's result is always a new Tensor)")
    if low is None and high is None:
        raise ValueError("clip: give low, high or both (both None would change nothing)")
    checked = _bound(low, "low"), _bound(high, "high")
    if checked[0] is not None and checked[1] is not None and np.any(np.asarray(checked[0]) > np.asarray(checked[1])):
        raise ValueError(f"clip: low {_bound_text(checked[0])} is above high {_bound_text(checked[1])}")
    # a Tensor bound is an input, so that a compiled step reads each call's bounds
    tensors = [b for b in (low, high) if b is not None and not is_array(b) and hasattr(b, "grad_fn")]
    params = {key: "input" if any(given is t for t in tensors) else value
              for key, given, value in (("low", low, checked[0]), ("high", high, checked[1]))}
    return CLIP(x, *tensors, **params)


def _bound(value, label):
    if value is None:
        return None
    data = np.asarray(getattr(value, "data", value))
    if data.dtype.kind not in "biuf" or np.any(np.isnan(data)):
        raise ValueError(f"clip: {label} must be a number, an array of numbers or None, got {value!r}")
    if getattr(value, "requires_grad", False):
        raise TypeError("clip: the bounds are constants; a bound with requires_grad=True would "
                        "lose its gradient (use maximum/minimum for a bound to be trained)")
    return float(data) if data.ndim == 0 else data.astype(np.float64)


def _bound_text(value):
    return f"{value:g}" if isinstance(value, float) else f"(an array of shape {np.shape(value)})"


def square(x):
    """``x²`` elementwise."""
    return SQUARE(x)


def sqrt(x):
    """``√x`` elementwise (gradient 1/(2√x): +inf at 0)."""
    return SQRT(x)


def sin(x):
    """``sin x`` elementwise."""
    return SIN(x)


def cos(x):
    """``cos x`` elementwise."""
    return COS(x)


def leaky_relu(x, negative_slope=0.01):
    """``x`` for x > 0, ``negative_slope · x`` otherwise (PyTorch's ``leaky_relu``)."""
    return LEAKY_RELU(x, slope=finite_number(negative_slope, "leaky_relu", "negative_slope"))


def elu(x, alpha=1.0):
    """``x`` for x > 0, ``alpha (eˣ − 1)`` otherwise (PyTorch's ``elu``)."""
    return ELU_(x, alpha=finite_number(alpha, "elu", "alpha"))


def softplus(x):
    """``log(1 + eˣ)``, exact for any x; derivative sigmoid(x) (eq 7). PyTorch's ``softplus``
    with its defaults beta = 1, but exact everywhere (no linear cut-over above threshold=20)."""
    return SOFTPLUS(x)


def gelu(x, approximate="none"):
    """``x Φ(x)``: ``approximate="none"`` exact (erf form, PyTorch's default), ``"tanh"`` the
    tanh approximation. See ``GELU``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' (exact erf form) or 'tanh', got {approximate!r}")
    return GELU_(x, approximate=approximate)


__all__ = ["maximum", "minimum", "clip", "square", "sqrt", "sin", "cos", "leaky_relu", "elu",
           "softplus", "gelu"]

"""Elementwise arithmetic: + - * / ** and unary minus, with numpy's broadcasting.

Adding the (n, 1) bias column to every column of (n, m) is eq 33's broadcast; the engine
un-broadcasts the gradient (``db = sum(dZ, axis=1)``, eq 80), so these rules return g in the
output's shape.
"""
from __future__ import annotations

import numpy as np

from .base import Broadcasting, Primitive, data_of, errstate, factor, log, namespace

# --- elementwise binary ops (numpy broadcasting) ---------------------------------------------

class Add(Broadcasting):
    """``x + y``. Adding the (n, 1) bias column to every column of (n, m) is eq 33's broadcast;
    its gradient is un-broadcast by the engine: ``db = sum(dZ, axis=1)`` (eq 80)."""
    name = "add"
    vjp_reads_inputs = vjp_reads_output = False  # g, g

    def compute(self, x, y):
        return x + y

    def vjp(self, g, inputs, output, wants):
        return g, g

    def formula(self, i, g, names, params, input_shapes):
        return g


class Sub(Broadcasting):
    name = "sub"
    vjp_reads_inputs = vjp_reads_output = False  # g, -g

    def compute(self, x, y):
        return x - y

    def vjp(self, g, inputs, output, wants):
        return g, (-g if wants[1] else None)

    def formula(self, i, g, names, params, input_shapes):
        return g if i == 0 else f"−{g}"


class Mul(Broadcasting):
    """Elementwise product ``x * y`` (the seed's ∘, eqs 54, 78, 82)."""
    name = "mul"
    vjp_reads_output = False  # g ∘ y, g ∘ x

    def compute(self, x, y):
        return x * y

    def vjp(self, g, inputs, output, wants):
        x, y = inputs
        return (g * y if wants[0] else None), (g * x if wants[1] else None)

    def formula(self, i, g, names, params, input_shapes):
        x, y, out = names
        return f"{g} ∘ {y}" if i == 0 else f"{g} ∘ {x}"


class Div(Broadcasting):
    name = "div"

    def compute(self, x, y):
        with errstate(namespace(x), divide="ignore", invalid="ignore"):  # x/0: ±inf or nan
            return x / y

    def vjp(self, g, inputs, output, wants):
        x, y = inputs
        return (g / y if wants[0] else None), (-g * output / y if wants[1] else None)

    def formula(self, i, g, names, params, input_shapes):
        x, y, out = names
        return f"{g} / {y}" if i == 0 else f"−{g} ∘ {out} / {y}"


class Pow(Broadcasting):
    """``x ** y`` with a Tensor exponent. d/dx = y x^(y-1); d/dy = x^y log x."""
    name = "pow"

    def compute(self, x, y):
        with errstate(namespace(x), divide="ignore", invalid="ignore"):
            return x ** y

    def vjp(self, g, inputs, output, wants):
        x, y = inputs
        grad_x = grad_y = None
        if wants[0]:
            # NOTE: y * x**(y-1), not y * out / x: the latter is 0/0 = nan at x = 0.
            # Where the exponent is 0, x**0 = 1 is constant: the gradient is 0 even at x = 0.
            # NOTE: only where x = 0 too is y x^(y-1) = 0 * inf = nan; there the exponent is
            # raised by 1 (times y = 0 gives 0). Elsewhere it stays y - 1, so the mixed second
            # derivative d/dy (y x^(y-1)) = x^(y-1) (1 + y log x) is right at y = 0 as well.
            zero_base_and_exponent = factor((data_of(y) == 0) & (data_of(x) == 0), y)
            with errstate(namespace(data_of(x)), divide="ignore", invalid="ignore"):
                grad_x = g * y * x ** (y - 1 + zero_base_and_exponent)
        if wants[1]:
            # NOTE: at x = 0 (and y > 0) x^y is 0 on a whole neighbourhood of y: gradient 0,
            # not 0 * log(0) = nan. Adding the constant 1 where x == 0 gives log(1) = 0 there and
            # leaves log(x) exact (and differentiable again) everywhere else. Negative x with a
            # non-integer y stays nan: x^y is undefined there.
            log_x = log(x + factor(data_of(x) == 0, x))
            grad_y = g * output * log_x
        return grad_x, grad_y

    def formula(self, i, g, names, params, input_shapes):
        x, y, out = names
        return f"{g} ∘ {y}·{x}^({y}−1)" if i == 0 else f"{g} ∘ {out} ∘ log {x}"


class PowScalar(Primitive):
    """``x ** p`` for a constant number p. ``0.0 ** 1.5`` has gradient 0 (p x^(p-1) = 1.5 * 0)."""
    name = "pow"

    def forward(self, x, exponent):
        with errstate(namespace(x), divide="ignore", invalid="ignore"):
            return x ** exponent

    def vjp(self, g, inputs, output, wants, exponent):
        (x,) = inputs
        if exponent == 0:
            return (g * 0.0,)
        with errstate(namespace(data_of(x)), divide="ignore", invalid="ignore"):
            return (g * exponent * x ** (exponent - 1),)

    def formula(self, i, g, names, params, input_shapes):
        p = params["exponent"]
        return f"{g} ∘ {p:g}·{names[0]}^{p - 1:g}"


class Neg(Primitive):
    name = "neg"

    def forward(self, x):
        return -x

    def vjp(self, g, inputs, output, wants):
        return (-g,)

    def formula(self, i, g, names, params, input_shapes):
        return f"−{g}"


ADD, SUB, MUL, DIV, POW = Add(), Sub(), Mul(), Div(), Pow()
POW_SCALAR, NEG = PowScalar(), Neg()

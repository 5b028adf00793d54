"""The primitives: each one's forward and vector-Jacobian product (vjp), side by side, once.

A primitive is a small stateless object with

- ``forward(*arrays, **params) -> ndarray``: plain numpy in, plain numpy out;
- ``vjp(g, inputs, output, wants, **params) -> tuple``: given ``g = dJ/d(output)``, one
  gradient ``dJ/d(input)`` per input (or None where ``wants[i]`` is False: that input needs no
  gradient, so no work is done for it).

Every vjp here is written ONCE and runs in two modes. In the ordinary first-order
``backward()`` the engine passes ndarrays and the rule is plain numpy. Under ``create_graph``
(``ag.grad`` and higher order) the engine passes Tensors, and the very same expression records
new graph nodes, so the gradient can be differentiated again. That is why the rules below use
only operators (``* / + - @``), methods that ndarrays and Tensors share (``.sum``,
``.reshape``, ``.transpose``, ``.T``) and the small dual-mode helpers ``exp``, ``sigmoid``,
``broadcast_to``, ``data_of`` defined next.

A vjp may return a gradient in the *broadcast* shape of the output: the engine sums it back to
the input's shape in one place for every op (``autodiff.sum_to_shape``, eq 80's sum over the
columns) and asserts the result has the input's shape.

This module imports only numpy: it knows nothing of Tensor or of the graph.
"""
from __future__ import annotations

import sys

import numpy as np

from .errors import ShapeError, broadcast_error


# --- dual-mode helpers: ndarray in -> numpy; Tensor in -> recorded Tensor op ------------------

def _is_array(x) -> bool:
    return isinstance(x, (np.ndarray, np.generic, float, int))


def data_of(x):
    """The raw ndarray behind ``x`` (a Tensor's ``.data``, or ``x`` itself)."""
    return x if _is_array(x) else x.data


def exp(x):
    return np.exp(x) if _is_array(x) else x.exp()


def log(x):
    if _is_array(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)
    return x.log()


def sigmoid(x):
    return SIGMOID.forward(x) if _is_array(x) else x.sigmoid()


def broadcast_to(x, shape):
    return np.broadcast_to(x, shape) if _is_array(x) else x.broadcast_to(shape)


def index_add(g, shape, index):
    return INDEX_ADD.forward(g, shape=shape, index=index) if _is_array(g) else INDEX_ADD(g, shape=shape, index=index)


class Primitive:
    """Base class of every primitive. Subclass it to add your own operation.

    A subclass sets ``name`` (shown in errors and graph pictures) and defines ``forward`` and
    ``vjp`` as described in this module's docstring. Calling the instance on Tensors applies it
    and records it in the graph: ``my_op(x, y, some_param=3)``.
    """

    name = "primitive"
    # What the vjp reads besides g: the input arrays, the output array. The graph node saves
    # exactly these (autodiff.Node) and the vjp gets None for the others, so an array no rule
    # reads is freed as soon as its tensor is dropped. True is always correct; say False only
    # where the vjp never looks, not even at a shape.
    vjp_reads_inputs = True
    vjp_reads_output = True
    # False for an op whose result never carries a gradient (detach): no node is recorded for
    # it, except while ag.compile traces a step, so that the replay recomputes it too.
    differentiable = True
    # True for an op whose forward changes state kept outside the graph (BatchNorm's running
    # statistics): ag.compile replays it on every call although J does not depend on it.
    updates_state = False

    def forward(self, *arrays, **params):
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def vjp(self, g, inputs, output, wants, **params):
        raise NotImplementedError(f"{type(self).__name__}.vjp is not defined")

    def formula(self, i, g, names, params, input_shapes):
        """The vjp for input ``i`` as a formula, for graph pictures: ``g`` is the output's
        gradient name, ``names`` the inputs' names then the output's, ``params`` the op's
        parameters, ``input_shapes`` the inputs' shapes. Override it beside your ``vjp``."""
        return f"vjp of {self.name} applied to {g}"

    def __call__(self, *inputs, **params):
        # Imported here, not at the top: ops sits below the engine (see docs/architecture.md).
        from .tensor import apply
        return apply(self, inputs, params)

    def __repr__(self):
        return f"<primitive {self.name}>"

    def __reduce__(self):
        # A primitive is one shared instance (ops.SIGMOID, ...): a copied or pickled graph
        # refers to that same instance, so it is still the same op when compared
        module = sys.modules.get(type(self).__module__)
        for attribute, value in vars(module or object).items():
            if value is self:
                return attribute
        return super().__reduce__()

    # --- ag.compile: what the replay runs for this op (see autograd_lite/replay.py) -----------
    # A replay is one generated function; these return its lines of numpy. The defaults call
    # the rules above as they are, so every primitive replays, a user's included; the built-in
    # ones write the same math with numpy's out= buffers, which is what makes a replay cheap.
    # Each must give the same numbers as forward and vjp, bit for bit (tests/test_compile.py).

    def emit_forward(self, e):
        """Lines that set ``e.o`` to the output, given the inputs ``e.x``."""
        return [f"{e.o} = asarray({e.op}.forward({', '.join(e.x)}{e.kwargs}))"]

    def emit_vjp(self, e):
        """Lines that set ``e.d[i]`` to input i's gradient where ``e.wants[i]``, given ``e.g``."""
        inputs = f"({', '.join(e.x)},)" if self.vjp_reads_inputs else "None"
        output = e.o if self.vjp_reads_output else "None"
        names = "".join(f"{d}, " for d in e.d)
        return [f"{names}= {e.op}.vjp({e.g}, {inputs}, {output}, {e.wants!r}{e.kwargs})"]

    def grad_shape(self, i, in_shapes, out_shape):
        """The shape of input i's gradient as ``emit_vjp`` leaves it (before eq 80's sum), or
        None where it is known only when it runs."""
        return None



# --- elementwise binary ops (numpy broadcasting) ---------------------------------------------

class _Broadcasting(Primitive):
    """Binary elementwise op: turns numpy's broadcast failure into an error naming the op."""

    def forward(self, x, y):
        try:
            return self.compute(x, y)
        except ValueError:
            raise broadcast_error(self.name, np.shape(x), np.shape(y)) from None

    def grad_shape(self, i, in_shapes, out_shape):
        return out_shape  # summed back to the input's shape afterwards (eq 80)

    ufunc = None  # the numpy ufunc that is this op's forward, if one is

    def emit_forward(self, e):
        if self.ufunc is None:
            return super().emit_forward(e)
        return [f"{e.o} = {self.ufunc}({e.x[0]}, {e.x[1]}, {e.result()})"]



class Add(_Broadcasting):
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

    ufunc = "add"

    def emit_vjp(self, e):
        return [f"{d} = {e.g}" for d in e.d if d != "_"]



class Sub(_Broadcasting):
    name = "sub"
    vjp_reads_inputs = vjp_reads_output = False  # g, -g

    def compute(self, x, y):
        return x - y

    def vjp(self, g, inputs, output, wants):
        return g, (-g if wants[1] else None)

    def formula(self, i, g, names, params, input_shapes):
        return g if i == 0 else f"−{g}"

    ufunc = "subtract"

    def emit_vjp(self, e):
        lines = [f"{e.d[0]} = {e.g}"] if e.wants[0] else []
        return lines + ([f"{e.d[1]} = negative({e.g}, {e.out(1)})"] if e.wants[1] else [])



class Mul(_Broadcasting):
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

    ufunc = "multiply"

    def emit_vjp(self, e):
        x, y = e.x
        lines = [f"{e.d[0]} = multiply({e.g}, {y}, {e.out(0)})"] if e.wants[0] else []
        return lines + ([f"{e.d[1]} = multiply({e.g}, {x}, {e.out(1)})"] if e.wants[1] else [])



class Div(_Broadcasting):
    name = "div"

    def compute(self, x, y):
        with np.errstate(divide="ignore", invalid="ignore"):  # x/0 is ±inf or nan, as in numpy
            return x / y

    def vjp(self, g, inputs, output, wants):
        x, y = inputs
        return (g / y if wants[0] else None), (-g * output / y if wants[1] else None)

    def formula(self, i, g, names, params, input_shapes):
        x, y, out = names
        return f"{g} / {y}" if i == 0 else f"−{g} ∘ {out} / {y}"

    ufunc = "divide"

    def emit_vjp(self, e):
        x, y = e.x
        lines = [f"{e.d[0]} = divide({e.g}, {y}, {e.out(0)})"] if e.wants[0] else []
        if e.wants[1]:
            d = e.d[1]
            lines += [f"{d} = negative({e.g}, {e.out(1)})", f"multiply({d}, {e.o}, {d})",
                      f"divide({d}, {y}, {d})"]
        return lines



class Pow(_Broadcasting):
    """``x ** y`` with a Tensor exponent. d/dx = y x^(y-1); d/dy = x^y log x."""
    name = "pow"

    def compute(self, x, y):
        with np.errstate(divide="ignore", invalid="ignore"):
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
            zero_base_and_exponent = (data_of(y) == 0) & (data_of(x) == 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                grad_x = g * y * x ** (y - 1 + zero_base_and_exponent)
        if wants[1]:
            # NOTE: at x = 0 (and y > 0) x^y is 0 on a whole neighbourhood of y: gradient 0,
            # not 0 * log(0) = nan. Adding the constant 1 where x == 0 gives log(1) = 0 there and
            # leaves log(x) exact (and differentiable again) everywhere else. Negative x with a
            # non-integer y stays nan: x^y is undefined there.
            log_x = log(x + (data_of(x) == 0))
            grad_y = g * output * log_x
        return grad_x, grad_y

    def formula(self, i, g, names, params, input_shapes):
        x, y, out = names
        return f"{g} ∘ {y}·{x}^({y}−1)" if i == 0 else f"{g} ∘ {out} ∘ log {x}"


class PowScalar(Primitive):
    """``x ** p`` for a constant number p. ``0.0 ** 1.5`` has gradient 0 (p x^(p-1) = 1.5 * 0)."""
    name = "pow"

    def forward(self, x, exponent):
        with np.errstate(divide="ignore", invalid="ignore"):
            return x ** exponent

    def vjp(self, g, inputs, output, wants, exponent):
        (x,) = inputs
        if exponent == 0:
            return (g * 0.0,)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g * exponent * x ** (exponent - 1),)

    def formula(self, i, g, names, params, input_shapes):
        p = params["exponent"]
        return f"{g} ∘ {p:g}·{names[0]}^{p - 1:g}"


# --- matrix product ---------------------------------------------------------------------------

def _misaligned(x_shape, y_shape) -> ShapeError:
    """The error for ``x @ y`` of shapes that are not 1-D or 2-D, or do not align."""
    if not x_shape or not y_shape:
        return ShapeError(f"matmul: operands must be 1-D or 2-D, got a scalar "
                          f"(shapes {x_shape} and {y_shape}); use * to scale")
    if len(x_shape) > 2 or len(y_shape) > 2:
        return ShapeError(f"matmul: operands must be 1-D or 2-D, got shapes {x_shape} and {y_shape}")
    inner_x, inner_y = x_shape[-1], y_shape[0]
    hint = ""
    if len(x_shape) == 2 and len(y_shape) == 2 and y_shape[1] == inner_x:
        # The most common slip with the seed's layout: X given with samples as rows.
        hint = (f"; the second operand's rows have {inner_x} entries: if it holds "
                f"samples as rows, transpose it (samples are columns, eq 25)")
    return ShapeError(f"matmul: shapes {x_shape} and {y_shape} do not align "
                      f"({inner_x} != {inner_y}){hint}")


def _matmul_vjp_of_vectors(g, x, y, wants):
    """Matmul's vjp when an operand is 1-D: a 1-D left operand is a row (1, k), a 1-D right
    operand a column (k, 1), so dW = dZ A^T and dA = W^T dZ hold as for matrices."""
    x2 = x.reshape((1, -1)) if x.ndim == 1 else x
    y2 = y.reshape((-1, 1)) if y.ndim == 1 else y
    g2 = g.reshape((x2.shape[0], y2.shape[1]))
    grad_x = (g2 @ y2.T).reshape(x.shape) if wants[0] else None
    grad_y = (x2.T @ g2).reshape(y.shape) if wants[1] else None
    return grad_x, grad_y


class MatMul(Primitive):
    """``x @ y`` for 2-D and 1-D operands as numpy defines them (eqs 21, 26, 33: ``W A``).

    A 1-D left operand is a row, a 1-D right operand a column; the vjp promotes them the same
    way, so dW = dZ A^T (eqs 59, 79, 83) and dA = W^T dZ (eqs 65, 81) come from the one rule.
    """
    name = "matmul"
    vjp_reads_output = False  # dW = dZ A^T, dA = W^T dZ (eqs 79-83)

    def forward(self, x, y):
        if x.ndim in (1, 2) and y.ndim in (1, 2) and x.shape[-1] == y.shape[0]:
            return x @ y
        raise _misaligned(x.shape, y.shape)

    def vjp(self, g, inputs, output, wants):
        x, y = inputs
        if x.ndim == 1 or y.ndim == 1:
            return _matmul_vjp_of_vectors(g, x, y, wants)
        return (g @ y.T if wants[0] else None,   # dW = dZ A^T (eqs 59, 79, 83)
                x.T @ g if wants[1] else None)   # dA = W^T dZ (eqs 65, 81)

    def formula(self, i, g, names, params, input_shapes):
        x, y, out = names
        return f"{g}·{y}ᵀ" if i == 0 else f"{x}ᵀ·{g}"

    def grad_shape(self, i, in_shapes, out_shape):
        return in_shapes[i] if _both_2d(in_shapes) else None

    def emit_forward(self, e):
        if not _both_2d(e.in_shapes):
            return super().emit_forward(e)
        return [f"{e.o} = matmul({e.x[0]}, {e.x[1]}, {e.result()})"]           # eq 33: W A

    def emit_vjp(self, e):
        if not _both_2d(e.in_shapes):
            return super().emit_vjp(e)
        x, y = e.x
        lines = []
        if e.wants[0]:                                                      # dW = dZ A^T
            lines.append(f"{e.d[0]} = matmul({e.g}, {y}.T, {e.out(0)})")
        if e.wants[1]:                                                      # dA = W^T dZ
            lines.append(f"{e.d[1]} = matmul({x}.T, {e.g}, {e.out(1)})")
        return lines



# --- elementwise unary ops --------------------------------------------------------------------

class Neg(Primitive):
    name = "neg"

    def forward(self, x):
        return -x

    def vjp(self, g, inputs, output, wants):
        return (-g,)

    def formula(self, i, g, names, params, input_shapes):
        return f"−{g}"

    def grad_shape(self, i, in_shapes, out_shape):
        return in_shapes[0]

    def emit_forward(self, e):
        return [f"{e.o} = negative({e.x[0]}, {e.result()})"]

    def emit_vjp(self, e):
        return [f"{e.d[0]} = negative({e.g}, {e.out(0)})"]



class Exp(Primitive):
    name = "exp"
    vjp_reads_inputs = False  # g e^x, from the output

    def forward(self, x):
        with np.errstate(over="ignore"):  # exp(800) = inf, as in numpy; the sentinel reports it
            return np.exp(x)

    def vjp(self, g, inputs, output, wants):
        return (g * output,)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ {names[-1]}"

    def grad_shape(self, i, in_shapes, out_shape):
        return in_shapes[0]

    def emit_forward(self, e):
        return [f"{e.o} = exp({e.x[0]}, {e.result()})"]

    def emit_vjp(self, e):
        return [f"{e.d[0]} = multiply({e.g}, {e.o}, {e.out(0)})"]



class Log(Primitive):
    """Natural log (eq 1). log(0) = -inf and log(x < 0) = nan, as in numpy, without numpy's
    warning: ``binary_cross_entropy`` and the saturation sentinel explain it instead."""
    name = "log"

    def forward(self, x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    def vjp(self, g, inputs, output, wants):
        (x,) = inputs
        return (g / x,)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} / {names[0]}"

    def grad_shape(self, i, in_shapes, out_shape):
        return in_shapes[0]

    def emit_forward(self, e):
        return [f"{e.o} = log({e.x[0]}, {e.result()})"]

    def emit_vjp(self, e):
        return [f"{e.d[0]} = divide({e.g}, {e.x[0]}, {e.out(0)})"]



class Sigmoid(Primitive):
    """s(z) = 1 / (1 + e^-z) (eq 7), with s'(z) = s(z)(1 - s(z)) (eq 8)."""
    name = "sigmoid"
    vjp_reads_inputs = False  # eq 8 from the output s alone

    def forward(self, z):
        # Eq 7 as written, computed in one new array (-z, e^-z, 1 + e^-z and 1/(1 + e^-z) in
        # place): as exact as the stable form below and much lighter on a large Z. It is wrong
        # only where e^-z overflows (z < -709.78: 1/(1 + inf) = 0 instead of a tiny e^z), so
        # there, and for 0-d or non-float Z, the stable form is used.
        if z.ndim and z.dtype.kind == "f":
            s = np.negative(z)
            with np.errstate(over="raise"):
                try:
                    np.exp(s, out=s)
                except FloatingPointError:
                    return self._stable(z)
            s += 1.0
            return np.divide(1.0, s, out=s)
        return self._stable(z)

    @staticmethod
    def _stable(z):
        # e^-|z| never overflows, so |z| up to 1000 and beyond gives no warning:
        # z >= 0: 1 / (1 + e^-z);  z < 0: e^z / (1 + e^z); both written with e = e^-|z|.
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0, e) / (1.0 + e)

    def vjp(self, g, inputs, output, wants):
        return (g * output * (1.0 - output),)  # eq 8: g s (1 - s)

    def formula(self, i, g, names, params, input_shapes):
        out = names[-1]
        return f"{g} ∘ {out}(1 − {out})"  # eq 8

    def grad_shape(self, i, in_shapes, out_shape):
        return in_shapes[0]

    def emit_forward(self, e):
        if not e.out_shape or e.dtype.kind != "f":
            return super().emit_forward(e)
        # as forward's one-array form; where e^-z overflows, the replay stops with a
        # FloatingPointError and the step is run eagerly instead (see tape.Tape)
        o, one = e.o, e.number(1.0)
        return [f"{o} = negative({e.x[0]}, {e.result()})", f"exp({o}, {o})", f"add({o}, {one}, {o})",
                f"divide({one}, {o}, {o})"]

    def emit_vjp(self, e):                                                   # eq 8
        d, t = e.d[0], e.buffer()
        return [f"{d} = multiply({e.g}, {e.o}, {e.out(0)})", f"subtract({e.number(1.0)}, {e.o}, {t})",
                f"multiply({d}, {t}, {d})"]



class Tanh(Primitive):
    name = "tanh"
    vjp_reads_inputs = False  # 1 - tanh^2, from the output

    def forward(self, z):
        return np.tanh(z)

    def vjp(self, g, inputs, output, wants):
        return (g * (1.0 - output * output),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ (1 − {names[-1]}²)"

    def grad_shape(self, i, in_shapes, out_shape):
        return in_shapes[0]

    def emit_forward(self, e):
        return [f"{e.o} = tanh({e.x[0]}, {e.result()})"]

    def emit_vjp(self, e):
        t = f"{e.o}_t"  # 1 - tanh^2, in a scratch array
        return [f"{t} = multiply({e.o}, {e.o}, {e.buffer()})", f"subtract({e.number(1.0)}, {t}, {t})",
                f"{e.d[0]} = multiply({e.g}, {t}, {e.out(0)})"]



class ReLU(Primitive):
    name = "relu"

    def forward(self, z):
        return np.maximum(z, 0.0)

    def vjp(self, g, inputs, output, wants):
        # NOTE: the gradient at exactly 0 is taken as 0 (a subgradient), as in PyTorch and JAX.
        # The mask is a constant: the step function's own derivative is 0 almost everywhere.
        return (g * (data_of(inputs[0]) > 0),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ [{names[0]} > 0]"

    def grad_shape(self, i, in_shapes, out_shape):
        return in_shapes[0]

    def emit_forward(self, e):
        return [f"{e.o} = maximum({e.x[0]}, 0.0, out={e.result()})"]

    def emit_vjp(self, e):
        mask = e.buffer(dtype=np.bool_)
        return [f"greater({e.x[0]}, 0, {mask})", f"{e.d[0]} = multiply({e.g}, {mask}, {e.out(0)})"]



class Abs(Primitive):
    name = "abs"

    def forward(self, x):
        return np.abs(x)

    def vjp(self, g, inputs, output, wants):
        return (g * np.sign(data_of(inputs[0])),)  # gradient 0 at 0, like relu

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ sign({names[0]})"


# --- reductions -------------------------------------------------------------------------------

def normalize_axis(axis, ndim, op_name):
    """``axis`` (None, int, negative int or tuple) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    result = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise ShapeError(f"{op_name}: axis must be None, an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op_name}: axis {axis!r} is out of range for an array of {ndim} "
                             f"dimension{'s' if ndim != 1 else ''}")
        result.append(int(a) % ndim)
    if len(set(result)) != len(result):
        raise ShapeError(f"{op_name}: axis {axis!r} repeats an axis")
    return tuple(sorted(result))


def describe_axes(axes, ndim) -> str:
    """``(1,)`` -> ``axis 1``; every axis -> ``all elements`` (for formulas and pictures)."""
    axes = tuple(axes)
    if ndim > 1 and len(axes) == ndim:
        return "all elements"
    if len(axes) == 1:
        return f"axis {axes[0]}"
    return "axes " + ", ".join(str(a) for a in axes)


def short_repr(value) -> str:
    """``repr(value)``, cut to 20 characters (an index in a formula or a picture)."""
    text = repr(value)
    return text if len(text) <= 20 else text[:17] + "..."


def _count(shape, axes) -> int:
    """How many elements a reduction over ``axes`` takes together (eq 76's m for a mean)."""
    return int(np.prod([shape[a] for a in axes])) if axes else 1


def _both_2d(shapes) -> bool:
    return len(shapes[0]) == 2 and len(shapes[1]) == 2


def _inverse(axes):
    """The permutation that undoes ``transpose(axes)`` (None, reversing, is its own)."""
    if axes is None:
        return None
    ndim = len(axes)  # axes may be negative, as numpy allows
    return tuple(int(i) for i in np.argsort([a % ndim for a in axes]))


def _kept_shape(shape, axes):
    """The shape of a reduction with keepdims=True: reduced axes become 1."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Primitive):
    """Sum over ``axis`` (normalised tuple). Its vjp broadcasts g back (the reverse of eq 80)."""
    name = "sum"

    def forward(self, x, axis, keepdims):
        return np.sum(x, axis=axis, keepdims=keepdims)

    def vjp(self, g, inputs, output, wants, axis, keepdims):
        shape = inputs[0].shape
        return (broadcast_to(g.reshape(_kept_shape(shape, axis)), shape),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} repeated over {describe_axes(params['axis'], len(input_shapes[0]))}"

    def grad_shape(self, i, in_shapes, out_shape):
        return in_shapes[0]

    def emit_forward(self, e):
        axis, keepdims = e.params["axis"], e.params["keepdims"]
        return [f"{e.o} = add_reduce({e.x[0]}, {axis!r}, None, {e.result()}, {keepdims!r})"]

    def emit_vjp(self, e):
        shape = e.in_shapes[0]
        kept = _kept_shape(shape, e.params["axis"])
        if kept == shape:  # nothing was reduced (axes of length 1): g as it is, reshaped
            return [f"{e.d[0]} = {e.g}.reshape({shape!r})"]
        return [f"{e.d[0]} = broadcast_to({e.g}.reshape({kept!r}), {shape!r})"]



class Mean(Primitive):
    """Mean over ``axis``: the sum divided by the count of reduced elements (eq 76's 1/m)."""
    name = "mean"

    def forward(self, x, axis, keepdims):
        return np.mean(x, axis=axis, keepdims=keepdims)

    def vjp(self, g, inputs, output, wants, axis, keepdims):
        shape = inputs[0].shape
        return (broadcast_to(g.reshape(_kept_shape(shape, axis)), shape) / _count(shape, axis),)

    def formula(self, i, g, names, params, input_shapes):
        axes, shape = params["axis"], input_shapes[0]
        return f"{g} repeated over {describe_axes(axes, len(shape))}, / {_count(shape, axes)}"

    def grad_shape(self, i, in_shapes, out_shape):
        return in_shapes[0]

    def emit_forward(self, e):
        axis, keepdims = e.params["axis"], e.params["keepdims"]
        count = _count(e.in_shapes[0], axis)
        lines = [f"{e.o} = add_reduce({e.x[0]}, {axis!r}, None, {e.result()}, {keepdims!r})"]
        return lines + ([f"divide({e.o}, {e.number(count)}, {e.o})"] if count != 1 else [])  # x / 1 == x

    def emit_vjp(self, e):
        shape = e.in_shapes[0]
        kept = _kept_shape(shape, e.params["axis"])
        count = _count(shape, e.params["axis"])
        g = f"{e.g}.reshape({kept!r})"
        if count == 1:  # nothing was reduced (axes of length 1), and g / 1 == g exactly
            return [f"{e.d[0]} = {e.g}.reshape({shape!r})"]
        out = e.out(0)
        if out == "None":  # a new array handed to a leaf: g repeated, then divided
            return [f"{e.d[0]} = divide(broadcast_to({g}, {shape!r}), {e.number(count)}, None)"]
        # into the buffer, which numpy fills by broadcasting g: the same quotients, without
        # making the repeated view
        return [f"{e.d[0]} = divide({g}, {e.number(count)}, {out})"]



# --- shape ops --------------------------------------------------------------------------------

class Reshape(Primitive):
    name = "reshape"

    def forward(self, x, shape):
        try:
            return np.reshape(x, shape)
        except ValueError:
            raise ShapeError(f"reshape: cannot reshape an array of shape {x.shape} "
                             f"({x.size} elements) into shape {shape}") from None

    def vjp(self, g, inputs, output, wants, shape):
        return (g.reshape(inputs[0].shape),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} reshaped back"

    def grad_shape(self, i, in_shapes, out_shape):
        return in_shapes[0]

    def emit_forward(self, e):
        return [f"{e.o} = reshape({e.x[0]}, {e.params['shape']!r})"]

    def emit_vjp(self, e):
        return [f"{e.d[0]} = {e.g}.reshape({e.in_shapes[0]!r})"]



class Transpose(Primitive):
    """Axis permutation; ``axes=None`` reverses them (``.T``, the transpose of eqs 59, 65)."""
    name = "transpose"

    def forward(self, x, axes):
        try:
            return np.transpose(x, axes)
        except ValueError:
            raise ShapeError(f"transpose: axes {axes} do not permute the axes of shape {x.shape}") from None

    def vjp(self, g, inputs, output, wants, axes):
        inverse = _inverse(axes)
        return (g.transpose() if inverse is None else g.transpose(inverse),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g}ᵀ"

    def grad_shape(self, i, in_shapes, out_shape):
        return in_shapes[0]

    def emit_forward(self, e):
        return [f"{e.o} = transpose({e.x[0]}, {e.params['axes']!r})"]  # a view, as forward gives

    def emit_vjp(self, e):
        return [f"{e.d[0]} = transpose({e.g}, {_inverse(e.params['axes'])!r})"]



class BroadcastTo(Primitive):
    """Repeat ``x`` to ``shape`` (eq 30-32's B[1]: b[1] repeated m times)."""
    name = "broadcast_to"

    def forward(self, x, shape):
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ShapeError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None

    def vjp(self, g, inputs, output, wants, shape):
        return (g,)  # the engine's un-broadcast sums it back to the input's shape

    def formula(self, i, g, names, params, input_shapes):
        return g


class GetItem(Primitive):
    """``x[index]`` (basic or integer-array indexing). Its vjp scatters g back, adding repeats."""
    name = "getitem"

    def forward(self, x, index):
        try:
            return np.asarray(x[index])
        except IndexError as error:
            raise IndexError(f"getitem: index {index!r} is invalid for shape {x.shape}: {error}") from None

    def vjp(self, g, inputs, output, wants, index):
        return (index_add(g, inputs[0].shape, index),)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} put back at [{short_repr(params['index'])}]"


class IndexAdd(Primitive):
    """zeros(shape) with g added at ``index`` (repeated indices add up): the vjp of getitem.
    Its own vjp is getitem again, so indexing can be differentiated twice."""
    name = "index_add"

    def forward(self, g, shape, index):
        result = np.zeros(shape, dtype=g.dtype)
        np.add.at(result, index, g)
        return result

    def vjp(self, g, inputs, output, wants, shape, index):
        return (g[index],)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g}[{short_repr(params['index'])}]"


# --- softmax family and the fused loss ----------------------------------------------------------

def _logsumexp(x, axis):
    """log(sum(exp(x), axis)) with keepdims, shifted by the max so exp never overflows."""
    shift = np.max(x, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    return shift + np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True))


def _refuse_empty(op_name, x, axis):
    if x.shape[axis] == 0:
        raise ShapeError(f"{op_name}: axis {axis} of shape {x.shape} has no elements; a "
                         f"{op_name} over nothing is undefined")


class Softmax(Primitive):
    """Softmax along ``axis`` (default 0: each column, one sample, is a probability vector)."""
    name = "softmax"

    def forward(self, x, axis):
        _refuse_empty(self.name, x, axis)
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)

    def vjp(self, g, inputs, output, wants, axis):
        return (output * (g - (g * output).sum(axis=axis, keepdims=True)),)

    def formula(self, i, g, names, params, input_shapes):
        out = names[-1]
        return f"{out} ∘ ({g} − Σ {g} ∘ {out})"


class LogSoftmax(Primitive):
    """log(softmax(x)) along ``axis``, computed as x - logsumexp(x): stable for any x."""
    name = "log_softmax"

    def forward(self, x, axis):
        _refuse_empty(self.name, x, axis)
        return x - _logsumexp(x, axis)

    def vjp(self, g, inputs, output, wants, axis):
        return (g - exp(output) * g.sum(axis=axis, keepdims=True),)

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
        if np.isinf(z).any():
            return np.asarray(np.sum(self._at_infinite_logits(z, y)) / m)
        per_element = np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))
        return np.asarray(np.sum(per_element) / m)

    @staticmethod
    def _at_infinite_logits(z, y):
        """L where some z is ±inf, where the formula above would give inf - inf = nan: there
        its limit, |z| times the weight of the wrong label (+inf, or 0 if that weight is 0)."""
        with np.errstate(invalid="ignore"):
            per_element = np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))
        wrong = np.where(z > 0, 1 - y, y)
        return np.where(np.isinf(z), np.where(wrong == 0, 0.0, np.abs(z) * wrong), per_element)

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

    def grad_shape(self, i, in_shapes, out_shape):
        return in_shapes[i]

    def emit_forward(self, e):
        # eqs 1, 76 as forward: max(z, 0) - z y + log(1 + e^-|z|), summed, / m
        z, y = e.x
        t, u = f"{e.o}_t", f"{e.o}_u"  # two scratch arrays of Z's shape
        m = e.in_shapes[0][-1]
        return [f"{t} = maximum({z}, 0.0, out={e.buffer(e.in_shapes[0])})",
                f"{u} = multiply({z}, {y}, {e.buffer(e.in_shapes[0])})", f"subtract({t}, {u}, {t})",
                f"absolute({z}, {u})", f"negative({u}, {u})", f"exp({u}, {u})", f"log1p({u}, {u})",
                f"add({t}, {u}, {t})",
                f"{e.o} = asarray(add_reduce({t}, None){f' / {m}' if m != 1 else ''})"]  # x / 1 == x

    def emit_vjp(self, e):
        z, y = e.x
        m = e.in_shapes[0][-1]
        lines = []
        if e.wants[0]:                                             # eq 78: (s(Z) - Y) g / m
            d = e.d[0]
            lines += [f"{d} = negative({z}, {e.out(0)})", f"exp({d}, {d})",
                      f"add({d}, 1.0, {d})", f"divide(1.0, {d}, {d})", f"subtract({d}, {y}, {d})"]
            if not e.g_is_one:  # x * 1.0 is x exactly: skipped for the loss itself
                lines.append(f"multiply({d}, {e.g}, {d})")
            if m != 1:
                lines.append(f"divide({d}, {m}, {d})")
        if e.wants[1]:                                                           # -g z / m
            d = e.d[1]
            lines += [f"{d} = negative({z}, {e.out(1)})",
                      f"multiply({e.g}, {d}, {d})"] + ([f"divide({d}, {m}, {d})"] if m != 1 else [])
        return lines



class Detach(Primitive):
    """``t.detach()``: the same array, cut from the graph (a constant for everything after it).
    Recorded only while ag.compile traces a step, so a replay reads the new value each call."""
    name = "detach"
    differentiable = False

    def forward(self, x):
        return x

    def vjp(self, g, inputs, output, wants):
        raise RuntimeError("detach: a detached tensor has no gradient to pass back")

    def formula(self, i, g, names, params, input_shapes):
        return "0 (detached)"

    def emit_forward(self, e):
        return [f"{e.o} = {e.x[0]}"]


# --- the instances the engine and Tensor use ------------------------------------------------------

ADD, SUB, MUL, DIV, POW = Add(), Sub(), Mul(), Div(), Pow()
POW_SCALAR, MATMUL, NEG = PowScalar(), MatMul(), Neg()
EXP, LOG, SIGMOID, TANH, RELU, ABS = Exp(), Log(), Sigmoid(), Tanh(), ReLU(), Abs()
SUM, MEAN = Sum(), Mean()
RESHAPE, TRANSPOSE, BROADCAST_TO = Reshape(), Transpose(), BroadcastTo()
GETITEM, INDEX_ADD = GetItem(), IndexAdd()
SOFTMAX, LOG_SOFTMAX = Softmax(), LogSoftmax()
BCE_WITH_LOGITS = BinaryCrossEntropyWithLogits()
DETACH = Detach()

"""The replay's kernels: what each primitive becomes in the numpy ``ag.compile`` writes out.

A primitive (``ops``) is its math: ``forward``, ``vjp``, ``formula``. Writing it into a replay
is one more way to interpret it, so, as in JAX's autodidax (a table of rules per
interpretation), it lives here, in one table: ``KERNELS`` maps a primitive's class to its
``Kernel``, three functions

- ``forward(e)``: the lines of numpy that set ``e.o`` to the output, given the inputs ``e.x``;
- ``vjp(e)``: the lines that set ``e.d[i]`` to input i's gradient where ``e.wants[i]``,
  given the output's gradient ``e.g``;
- ``grad_shape(i, in_shapes, out_shape)``: the shape of input i's gradient as ``vjp`` leaves
  it (before eq 80's sum back to the input's shape), or None where it is known only at run time.

``e`` is an ``Emit``: the names of the op's values in the generated function, and the buffers
it may write into. A primitive without an entry (a user's, or one whose rules are already as
cheap as numpy gets) gets ``DEFAULT``, which calls its own ``forward`` and ``vjp``: every
primitive replays. The entries write the same math as the rules with numpy's ``out=``
buffers, allocated once, which is what makes a replay cheap; each gives the same numbers as
the primitive's forward and vjp, bit for bit (``tests/compile/test_compile.py`` holds every
one to them). Register a kernel for your own primitive with ``KERNELS[MyOp] = Kernel(...)``.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from ..ops.arithmetic import Add, Div, Mul, Neg, Pow, Sub
from ..ops.base import count, kept_shape
from ..ops.elementwise import Exp, Log, ReLU, Sigmoid, Tanh
from ..ops.losses import BinaryCrossEntropyWithLogits
from ..ops.matmul import MatMul
from ..ops.reduce import Mean, Sum
from ..ops.shape import Detach, Reshape, Transpose, inverse_permutation

# the numpy functions generated code may call (bound as globals of the generated function)
NUMPY = {name: getattr(np, name) for name in (
    "array", "add", "subtract", "multiply", "divide", "matmul", "negative", "exp", "log", "log1p",
    "tanh", "maximum", "greater", "absolute", "copysign", "asarray",
    "broadcast_to", "transpose", "reshape", "power", "sqrt", "where", "zeros", "empty_like",
    "ascontiguousarray")}
NUMPY["add_reduce"] = np.add.reduce


class Emit:
    """The names and shapes one op's kernel writes its lines with.

    ``x``: the names of the input values; ``o``: the output's name (set by the forward kernel,
    read by the vjp kernel); ``g``: the name of dJ/d(output); ``d``: per input, the name to set
    to its gradient (only where ``wants[i]``); ``in_shapes``, ``out_shape``, ``dtype`` (the
    output's), ``params``, ``in_dtypes`` (the inputs', the output's where not given); ``g_is_one``: g is dJ/dJ = 1 (the loss itself). ``op`` and
    ``kwargs`` spell a call of the primitive itself: ``f"{e.op}.forward(x{e.kwargs})"``.
    A step done in place is best written on a local name (``t = f(x, {e.buffer()})``, then
    ``g(t, t)``): on a 1-element array the replay then writes it into a second buffer instead
    (``memory.one_element_values_out_of_place``).
    """

    def __init__(self, writer, op, x, o, in_shapes, out_shape, dtype, params, in_dtypes=None):
        self.writer = writer
        self.kernel = kernel_of(op)
        self.x, self.o = x, o
        self.in_shapes, self.out_shape, self.dtype, self.params = in_shapes, out_shape, dtype, params
        self.in_dtypes = (dtype,) * len(x) if in_dtypes is None else tuple(in_dtypes)
        self.op = writer.constant("OP", op)
        self.kwargs = f", **{writer.constant('P', dict(params))}" if params else ""
        self.g = self.d = self.wants = None
        self.g_is_one = False
        self.reads_inputs, self.reads_output = op.vjp_reads_inputs, op.vjp_reads_output
        self.is_root = self.fresh_result = False
        self.hand_out = ()    # per input: its gradient may be a new array handed to a leaf
        self.fresh = set()    # the inputs whose gradient was written into a new array

    def buffer(self, shape=None, dtype=None):
        """The name of an array allocated now, once, and written by every replay (scratch)."""
        shape = self.out_shape if shape is None else shape
        name = self.writer.constant("B", np.empty(shape, self.dtype if dtype is None else dtype))
        self.writer.buffers.add(name)
        return name

    def result(self):
        """Where the forward writes its output: a buffer, or ``None`` (a new array each call)
        for J, which is handed out. (A kernel that sets ``fresh_result`` itself makes its
        output a new ndarray at every call.)"""
        if self.is_root and self.out_shape:  # (numpy gives a 0-d result as a scalar, and a
            self.fresh_result = True             # scalar cannot be written into: a buffer)
            return "None"
        return self.buffer()

    def out(self, i):
        """Where input i's gradient is written: a buffer, or ``None`` (a new array each call)
        when it goes to a leaf's .grad as it is, so that it need not be copied there."""
        shape = self.kernel.grad_shape(i, self.in_shapes, self.out_shape)
        if self.hand_out[i] and shape:  # (not 0-d: a scalar cannot be written into)
            self.fresh.add(i)
            return "None"
        return self.buffer(shape)

    def constant(self, value):
        """The name of ``value`` in the generated function."""
        return self.writer.constant("C", value)

    def number(self, value, dtype=None):
        """The name of ``value`` as a 0-d array of ``dtype`` (the output's where not given),
        for an operand that meets arrays of that dtype: the same numbers as the Python number
        in the op's own forward and vjp, and numpy converts it faster. Where the dtype cannot
        hold ``value`` exactly (a count past 2**24 in float32), the Python number itself."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        array = np.array(value, dtype=dtype)
        if dtype.kind != "f" or array.item() != value:
            return repr(value)
        return self.writer.constant("N", array)


# --- the default: the primitive's own rules, called as they are ---------------------------------

def call_forward(e):
    return [f"{e.o} = asarray({e.op}.forward({', '.join(e.x)}{e.kwargs}))"]


def call_vjp(e):
    inputs = f"({', '.join(e.x)},)" if e.reads_inputs else "None"
    output = e.o if e.reads_output else "None"
    names = "".join(f"{d}, " for d in e.d)
    return [f"{names}= {e.op}.vjp({e.g}, {inputs}, {output}, {e.wants!r}{e.kwargs})"]


def unknown_shape(i, in_shapes, out_shape):
    return None


def input_shape(i, in_shapes, out_shape):
    return in_shapes[i]


def output_shape(i, in_shapes, out_shape):
    return out_shape  # a broadcast op's: summed back to the input's shape afterwards (eq 80)


class Kernel(NamedTuple):
    forward: Callable = call_forward
    vjp: Callable = call_vjp
    grad_shape: Callable = unknown_shape


DEFAULT = Kernel()


def kernel_of(op) -> Kernel:
    """``op``'s entry in ``KERNELS`` (by its exact class: a subclass may change the math), or
    ``DEFAULT``."""
    return KERNELS.get(type(op), DEFAULT)


# --- arithmetic (ops/arithmetic.py) --------------------------------------------------------------

def _ufunc(name):
    """The forward kernel of a binary op that is the numpy ufunc ``name``."""
    def forward(e):
        return [f"{e.o} = {name}({e.x[0]}, {e.x[1]}, {e.result()})"]
    return forward


def add_vjp(e):                                                                      # g, g
    return [f"{d} = {e.g}" for d in e.d if d != "_"]


def sub_vjp(e):                                                                     # g, -g
    lines = [f"{e.d[0]} = {e.g}"] if e.wants[0] else []
    return lines + ([f"{e.d[1]} = negative({e.g}, {e.out(1)})"] if e.wants[1] else [])


def mul_vjp(e):                                                               # g y, g x
    x, y = e.x
    lines = [f"{e.d[0]} = multiply({e.g}, {y}, {e.out(0)})"] if e.wants[0] else []
    return lines + ([f"{e.d[1]} = multiply({e.g}, {x}, {e.out(1)})"] if e.wants[1] else [])


def div_vjp(e):                                                     # g / y, -g out / y
    x, y = e.x
    lines = [f"{e.d[0]} = divide({e.g}, {y}, {e.out(0)})"] if e.wants[0] else []
    if e.wants[1]:
        d = e.d[1]
        lines += [f"{d} = negative({e.g}, {e.out(1)})", f"multiply({d}, {e.o}, {d})",
                  f"divide({d}, {y}, {d})"]
    return lines


def neg_forward(e):
    return [f"{e.o} = negative({e.x[0]}, {e.result()})"]


def neg_vjp(e):
    return [f"{e.d[0]} = negative({e.g}, {e.out(0)})"]


# --- matrix product (ops/matmul.py): 2-D operands; 1-D ones take the primitive's own rules -------

def _both_2d(shapes) -> bool:
    return len(shapes[0]) == 2 and len(shapes[1]) == 2


def matmul_forward(e):
    if not _both_2d(e.in_shapes):
        return call_forward(e)
    return [f"{e.o} = matmul({e.x[0]}, {e.x[1]}, {e.result()})"]               # eq 33: W A


def matmul_vjp(e):
    if not _both_2d(e.in_shapes):
        return call_vjp(e)
    x, y = e.x
    lines = []
    if e.wants[0]:                                                          # dW = dZ A^T
        lines.append(f"{e.d[0]} = matmul({e.g}, {y}.T, {e.out(0)})")
    if e.wants[1]:                                                          # dA = W^T dZ
        lines.append(f"{e.d[1]} = matmul({x}.T, {e.g}, {e.out(1)})")
    return lines


def matmul_grad_shape(i, in_shapes, out_shape):
    return in_shapes[i] if _both_2d(in_shapes) else None


# --- elementwise (ops/elementwise.py) -------------------------------------------------------------

def exp_forward(e):
    return [f"{e.o} = exp({e.x[0]}, {e.result()})"]


def exp_vjp(e):                                                                      # g e^x
    return [f"{e.d[0]} = multiply({e.g}, {e.o}, {e.out(0)})"]


def log_forward(e):
    return [f"{e.o} = log({e.x[0]}, {e.result()})"]


def log_vjp(e):                                                                      # g / x
    return [f"{e.d[0]} = divide({e.g}, {e.x[0]}, {e.out(0)})"]


# numpy's copysign loop goes element by element, its absolute and negative in vector registers:
# below this many elements one call of the first costs less than two of the second, above it
# the vectorized pair does
_VECTORIZED_FROM = 512


def exp_of_minus_abs(e, z):
    """Lines that set ``{z}_e`` to e^-|z| in z's dtype, and its name: the fused log-loss's
    exponential, which never overflows (-|z| exactly, by copysign or by negating |z|)."""
    t, dtype, shape = f"{z}_e", e.in_dtypes[0], e.in_shapes[0]
    out = e.buffer(shape, dtype)
    if math.prod(shape) < _VECTORIZED_FROM:
        lines = [f"{t} = copysign({z}, {e.number(-1.0, dtype)}, {out})"]
    else:
        lines = [f"{t} = absolute({z}, {out})", f"negative({t}, {t})"]
    return lines + [f"exp({t}, {t})"], t


def sigmoid_of(e, z, s, out):
    """Lines that set ``s`` to eq 7 of ``z`` as ``Sigmoid.forward`` writes it, 1 / (1 + e^-z),
    in place in ``out``. Where e^-z overflows (z < -709 in float64) the replay's numpy raises
    FloatingPointError and the step runs eagerly, where the forward takes its form for very
    negative z."""
    one = e.number(1.0, e.in_dtypes[0])
    return [f"{s} = negative({z}, {out})", f"exp({s}, {s})", f"add({s}, {one}, {s})",
            f"divide({one}, {s}, {s})"]


def sigmoid_forward(e):
    if not e.out_shape or e.dtype.kind != "f":
        return call_forward(e)
    return sigmoid_of(e, e.x[0], e.o, e.result())


def sigmoid_vjp(e):                                                          # eq 8: g s (1 - s)
    d, t = e.d[0], e.buffer()
    return [f"{d} = multiply({e.g}, {e.o}, {e.out(0)})", f"subtract({e.number(1.0)}, {e.o}, {t})",
            f"multiply({d}, {t}, {d})"]


def tanh_forward(e):
    return [f"{e.o} = tanh({e.x[0]}, {e.result()})"]


def tanh_vjp(e):                                                            # g (1 - tanh^2)
    t = f"{e.o}_t"  # 1 - tanh^2, in a scratch array
    return [f"{t} = multiply({e.o}, {e.o}, {e.buffer()})", f"subtract({e.number(1.0)}, {t}, {t})",
            f"{e.d[0]} = multiply({e.g}, {t}, {e.out(0)})"]


def relu_forward(e):
    return [f"{e.o} = maximum({e.x[0]}, {e.number(0.0)}, out={e.result()})"]


def relu_vjp(e):                                                               # g [x > 0]
    mask = e.buffer(dtype=np.bool_)
    return [f"greater({e.x[0]}, {e.number(0.0, e.in_dtypes[0])}, {mask})",
            f"{e.d[0]} = multiply({e.g}, {mask}, {e.out(0)})"]


# --- reductions (ops/reduce.py) -------------------------------------------------------------------

def sum_forward(e):
    axis, keepdims = e.params["axis"], e.params["keepdims"]
    return [f"{e.o} = add_reduce({e.x[0]}, {axis!r}, None, {e.result()}, {keepdims!r})"]


def sum_vjp(e):                                                 # g repeated over the axes
    shape = e.in_shapes[0]
    kept = kept_shape(shape, e.params["axis"])
    if kept == shape:  # nothing was reduced (axes of length 1): g as it is, reshaped
        return [f"{e.d[0]} = {e.g}.reshape({shape!r})"]
    return [f"{e.d[0]} = broadcast_to({e.g}.reshape({kept!r}), {shape!r})"]


def mean_forward(e):                                                         # eq 76: / m
    axis, keepdims = e.params["axis"], e.params["keepdims"]
    n = count(e.in_shapes[0], axis)
    lines = [f"{e.o} = add_reduce({e.x[0]}, {axis!r}, None, {e.result()}, {keepdims!r})"]
    return lines + ([f"divide({e.o}, {e.number(n)}, {e.o})"] if n != 1 else [])  # x / 1 == x


def mean_vjp(e):
    shape = e.in_shapes[0]
    kept = kept_shape(shape, e.params["axis"])
    n = count(shape, e.params["axis"])
    g = f"{e.g}.reshape({kept!r})"
    if n == 1:  # nothing was reduced (axes of length 1), and g / 1 == g exactly
        return [f"{e.d[0]} = {e.g}.reshape({shape!r})"]
    out = e.out(0)
    if out == "None":  # a new array handed to a leaf: g repeated, then divided
        return [f"{e.d[0]} = divide(broadcast_to({g}, {shape!r}), {e.number(n)}, None)"]
    # into the buffer, which numpy fills by broadcasting g: the same quotients, without
    # making the repeated view
    return [f"{e.d[0]} = divide({g}, {e.number(n)}, {out})"]


# --- shape ops (ops/shape.py) ---------------------------------------------------------------------

def reshape_forward(e):
    return [f"{e.o} = reshape({e.x[0]}, {e.params['shape']!r})"]


def reshape_vjp(e):
    return [f"{e.d[0]} = {e.g}.reshape({e.in_shapes[0]!r})"]


def transpose_forward(e):  # a C-contiguous copy, as forward gives
    return [f"{e.o} = ascontiguousarray(transpose({e.x[0]}, {e.params['axes']!r}))"]


def transpose_vjp(e):
    return [f"{e.d[0]} = ascontiguousarray(transpose({e.g}, {inverse_permutation(e.params['axes'])!r}))"]


def detach_forward(e):
    return [f"{e.o} = {e.x[0]}"]


# --- the fused log-loss (ops/losses.py) ------------------------------------------------------------

def bce_forward(e):
    """Eqs 1, 76 as forward writes them: max(z, 0) - z y + log(1 + e^-|z|), summed, / m
    (m in z's dtype)."""
    z, y = e.x
    shape, dtype = e.in_shapes[0], e.in_dtypes[0]
    t, u, l = f"{e.o}_t", f"{e.o}_u", f"{e.o}_l"  # scratch arrays of Z's shape
    m = shape[-1]
    exp_lines, ez = exp_of_minus_abs(e, z)
    lines = [f"{t} = maximum({z}, {e.number(0.0, dtype)}, out={e.buffer(shape)})",
             f"{u} = multiply({z}, {y}, {e.buffer(shape)})", f"subtract({t}, {u}, {t})"]
    lines += exp_lines + [f"{l} = log1p({ez}, {e.buffer(shape, dtype)})", f"add({t}, {l}, {t})"]
    per_m = f" / {e.constant(dtype.type(m))}" if m != 1 else ""  # x / 1 == x
    e.fresh_result = True  # a new 0-d array at every call
    return lines + [f"{e.o} = asarray(add_reduce({t}, None){per_m})"]


def bce_vjp(e):
    z, y = e.x
    m = e.number(e.in_shapes[0][-1])
    one_m = e.in_shapes[0][-1] == 1
    lines = []
    if e.wants[0]:                                                 # eq 78: (s(Z) - Y) g / m
        d, s = e.d[0], f"{e.o}_s"
        lines += sigmoid_of(e, z, s, e.buffer(e.in_shapes[0], e.in_dtypes[0]))
        lines.append(f"{d} = subtract({s}, {y}, {e.out(0)})")
        if not e.g_is_one:  # x * 1.0 is x exactly: skipped for the loss itself
            lines.append(f"multiply({d}, {e.g}, {d})")
        if not one_m:
            lines.append(f"divide({d}, {m}, {d})")
    if e.wants[1]:                                                               # -g z / m
        # A new array, in the dtype numpy's own promotion gives g * -z, as the rule's is: for
        # float32 logits and a float64 g that is float64 on numpy 2, and float32 on numpy 1
        # (a 0-d g takes z's dtype there).
        d = e.d[1]
        lines.append(f"{d} = multiply({e.g}, negative({z}))")
        if not one_m:
            lines.append(f"divide({d}, {m}, {d})")
    return lines


# --- the table ---------------------------------------------------------------------------------

KERNELS = {
    Add: Kernel(_ufunc("add"), add_vjp, output_shape),
    Sub: Kernel(_ufunc("subtract"), sub_vjp, output_shape),
    Mul: Kernel(_ufunc("multiply"), mul_vjp, output_shape),
    Div: Kernel(_ufunc("divide"), div_vjp, output_shape),
    Pow: Kernel(grad_shape=output_shape),
    Neg: Kernel(neg_forward, neg_vjp, input_shape),
    MatMul: Kernel(matmul_forward, matmul_vjp, matmul_grad_shape),
    Exp: Kernel(exp_forward, exp_vjp, input_shape),
    Log: Kernel(log_forward, log_vjp, input_shape),
    Sigmoid: Kernel(sigmoid_forward, sigmoid_vjp, input_shape),
    Tanh: Kernel(tanh_forward, tanh_vjp, input_shape),
    ReLU: Kernel(relu_forward, relu_vjp, input_shape),
    Sum: Kernel(sum_forward, sum_vjp, input_shape),
    Mean: Kernel(mean_forward, mean_vjp, input_shape),
    Reshape: Kernel(reshape_forward, reshape_vjp, input_shape),
    Transpose: Kernel(transpose_forward, transpose_vjp, input_shape),
    Detach: Kernel(forward=detach_forward),
    BinaryCrossEntropyWithLogits: Kernel(bce_forward, bce_vjp, input_shape),
}

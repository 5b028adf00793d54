"""Tensor: an ndarray that remembers how it was made, so its gradient can be derived.

Every operator and method here records one primitive of ``ops`` in the graph (when a gradient
is needed and grad mode is on) through ``_record``; the derivative rules live in ``ops`` and
the traversal in ``autodiff``. Nothing here knows a derivative.
"""
from __future__ import annotations

import math
import numbers
import weakref

import numpy as np

from . import ops
from . import ops_elementwise, ops_join, ops_reduce
from .autodiff import Node, _grad_mode, _scope_state, backpropagate, current_scope, inputs_of
from .errors import ShapeError
from .release import RELEASE_DELAY, release_due as _release_due, state as _release_state

# NOTE: hooks for observers such as the saturation sentinel (autograd_lite.check): each is
# called as hook(op, inputs, output) after every recorded forward op. Empty by default, so the
# cost when unused is one truthiness test per op.
forward_hooks: list = []


def _record(op, inputs, params):
    """Run ``op`` forward on the inputs' arrays and, if a gradient is needed, record the node."""
    result = op.forward(*[t.data for t in inputs], **params)
    if type(result) is not np.ndarray:
        result = np.asarray(result)
    # NOTE: a loop with break instead of any(generator) (0.3 us less per op); the cheap
    # requires_grad reads come first, so an op on constants never looks up the grad mode.
    needs_grad = False
    for t in inputs:
        if t.requires_grad:
            needs_grad = _grad_mode.enabled
            break
    params = params or None  # NOTE: stored as None when empty (see autodiff.Node.params)
    if needs_grad:
        output = _made_by(result, op, inputs, params, True)
    elif _grad_mode.record_constants:  # only while ag.compile traces a step
        output = _made_by(result, op, inputs, params, False)
    else:
        output = Tensor._make(result, None, False)
    if forward_hooks:
        for hook in forward_hooks:
            hook(op, inputs, output)
    return output


def apply(op, inputs, params):
    """Apply a primitive (built in or user-defined) to Tensors, ndarrays or numbers."""
    return _record(op, tuple(as_tensor(x) for x in inputs), params)


def as_tensor(value, like=None):
    """``value`` as a Tensor: Tensors pass through; numbers and arrays become constants
    (no gradient). A plain number takes ``like``'s floating dtype, so ``1 - A`` keeps A's."""
    if isinstance(value, Tensor):
        return value
    if like is not None and isinstance(value, numbers.Number) and like.data.dtype.kind == "f":
        return Tensor._make(np.asarray(value, dtype=like.data.dtype), None, False)
    return Tensor(value)


_NUMERIC_KINDS = "biuf"
_INT64 = 2 ** 63  # ints beyond int64 stay on the general path (numpy makes them objects)


def _operand(value, like):
    """The other operand of a binary operator as a Tensor, or None if we do not handle it
    (then Python tries the other side and finally raises its own TypeError)."""
    if isinstance(value, Tensor):
        return value
    # NOTE: fast path for a plain float or int (y * 1.0001, 1 - A): what as_tensor(value, like)
    # gives below, without the ABC isinstance checks and the trial np.asarray (~1 us per op).
    value_type = type(value)
    if value_type is float or (value_type is int and -_INT64 <= value < _INT64):
        dtype = like.data.dtype
        if dtype.kind == "f":
            if value:  # NOTE: the shared constant looked up inline (~0.1 us less per op); 0
                # and -0.0 are equal keys, so they take _scalar_constant's checks
                constant = _scalar_constants.get((value, dtype, _scope_state.stack))
                if constant is not None:
                    return constant
            return _scalar_constant(value, dtype)
    if isinstance(value, (numbers.Number, np.ndarray, np.generic, list, tuple)):
        array = np.asarray(value)
        if array.dtype.kind not in _NUMERIC_KINDS:
            return None
        return as_tensor(value, like)
    return None


def _scalar_constant(value, dtype):
    """The constant Tensor for a plain number operand (``y * 1.0001``, ``1 - A``), one per
    (value, dtype, name scope), shared by every op that uses it.

    NOTE: sharing saves making a Tensor per op (~0.3 us), and it is one object fewer per op
    for Python's cyclic garbage collector to walk again and again while a long graph is
    alive. Its array is read-only, so no one can change the number behind another op's back.
    -0.0 and nan are not shared (0.0 == -0.0 as keys; nan never equals itself).
    """
    shared = value == value and (value != 0 or math.copysign(1.0, value) > 0)
    if shared:
        key = (value, dtype, _scope_state.stack)
        constant = _scalar_constants.get(key)
        if constant is not None:
            return constant
    array = np.asarray(value, dtype=dtype)
    array.flags.writeable = False
    constant = Tensor._make(array, None, False)
    if shared:
        if len(_scalar_constants) >= 256:
            _scalar_constants.clear()
        _scalar_constants[key] = constant
    return constant


_scalar_constants = {}


def _unary(op, x):
    """``_record`` for the one-input ops without parameters (sigmoid, exp, log, ...), written
    out like ``_binary`` (NOTE: no argument list, no ``**params``: ~0.3 us less per op)."""
    result = op.forward(x.data)
    if type(result) is not np.ndarray:
        result = np.asarray(result)
    # NOTE: the grad mode read inline (is_grad_enabled() without the call, ~50 ns per op).
    if x.requires_grad and _grad_mode.enabled:
        output = _made_by(result, op, (x,), None, True)
    elif _grad_mode.record_constants:  # only while ag.compile traces a step
        output = _made_by(result, op, (x,), None, False)
    else:
        output = Tensor._make(result, None, False)
    if forward_hooks:
        for hook in forward_hooks:
            hook(op, (x,), output)
    return output


def _binary(op, x, y):
    """``_record`` for the two-input operators, written out.

    NOTE: no argument list, no ``**params``, no loop: binary operators are most of a network's
    ops, and this saves about half a microsecond on each. Same behaviour as ``_record``.
    """
    result = op.forward(x.data, y.data)
    if type(result) is not np.ndarray:
        result = np.asarray(result)
    if (x.requires_grad or y.requires_grad) and _grad_mode.enabled:
        output = _made_by(result, op, (x, y), None, True)
    elif _grad_mode.record_constants:  # only while ag.compile traces a step
        output = _made_by(result, op, (x, y), None, False)
    else:
        output = Tensor._make(result, None, False)
    if forward_hooks:
        for hook in forward_hooks:
            hook(op, (x, y), output)
    return output


class Tensor:
    """An array with an optional gradient: the seed's W[l], b[l], Z[l], A[l], J.

    ``Tensor(data, requires_grad=False, name=None, dtype=None)``

    - ``data`` is copied into a new ndarray, float64 unless ``dtype`` says otherwise (so the
      engine never writes into an array you own). Integer or boolean data is cast to float64;
      asking for an integer ``dtype`` together with ``requires_grad=True`` is refused, since a
      gradient of integers is meaningless.
    - ``requires_grad=True`` marks a leaf whose gradient ``backward()`` fills: ``.grad`` is None
      until then, then an ndarray of the tensor's shape that accumulates across backward calls
      until reset (``t.grad = None`` or ``t.zero_grad()``).
    - ``name`` labels the tensor in errors, reports and graph pictures (``"W[1]"``).

    Operators ``+ - * / ** @`` and unary ``-`` broadcast like numpy and accept Tensors, ndarrays
    and numbers on either side; ndarrays never swallow a Tensor (``ndarray + Tensor`` is a
    Tensor). ``a += b`` rebinds ``a`` to a new Tensor; it never changes a recorded value.
    Comparisons (``<``, ``>``, ...) return plain boolean ndarrays: they have no gradient.
    """

    # How the tensor was made: the primitive ``_op`` (None for a leaf), its inputs (the first
    # two in ``_input0``/``_input1``, or all in the tuple ``_inputs`` for an op with none or
    # more than two; all None once backward has freed them: see autodiff.inputs_of) and
    # ``_params`` (None when it has none). ``_node`` shows them as one autodiff.Node. NOTE: kept
    # on the tensor, not in a separate node object (nor the inputs in a tuple): two
    # allocations and two garbage-collected objects fewer per recorded op.
    # ``_uses`` and ``_needed`` are for releasing values nothing will read (``release``): how
    # many recorded ops use this tensor without their vjp reading its array (None once released),
    # and whether one does read it.
    __slots__ = ("data", "grad", "requires_grad", "name", "_op", "_input0", "_input1", "_inputs",
                 "_params", "_retains_grad", "_scope", "_uses", "_needed", "__weakref__")

    # NOTE: tells numpy to return NotImplemented from every ufunc and operator given a Tensor,
    # so `ndarray + Tensor` calls Tensor.__radd__ instead of making an object array.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False, name=None, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is None:
            array = np.array(data, dtype=np.float64, copy=True) if _is_numeric(data) else None
        else:
            array = np.array(data, dtype=dtype, copy=True)
        if array is None:
            raise TypeError(f"Tensor: data must be numbers or an array of numbers, got "
                            f"{type(data).__name__} {_short(data)}")
        if requires_grad and array.dtype.kind not in "fc":
            raise TypeError(f"Tensor: requires_grad=True needs floating-point data, but dtype "
                            f"{array.dtype} was asked for; leave dtype unset to get float64")
        self.data = array
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._op = self._input0 = self._input1 = self._inputs = self._params = None
        self._retains_grad = False
        self._scope = current_scope()
        self._uses = 0
        self._needed = False

    def __del__(self):
        # A recorded result that dies before backward (a probe `Z.sigmoid().mean()` printed and
        # dropped, the `Z + 1` of `(Z + 1) @ bad` when matmul raised) takes its references to
        # its inputs with it, but not the uses it added to their counts (_uses): one dropped
        # consumer plus the user's own variable would then add up to the count, and release
        # would take the user's value as unheld. So its inputs are kept instead (errs towards
        # keeping; monotone, so a race cannot undo it). A node that backward freed has no
        # inputs left: one test. NOTE: a Python-level finalizer costs about 0.1 us per tensor
        # (seed step at m = 1: 55.2 vs 55.0 us, A/B in one process); without it a value the
        # user holds could be lost.
        try:
            first = self._input0
        except AttributeError:  # __init__ raised before setting the fields
            return
        if first is not None:
            first._needed = True
            second = self._input1
            if second is not None:
                second._needed = True
        elif self._inputs is not None:
            for t in self._inputs:
                t._needed = True

    @classmethod
    def _make(cls, data, node, requires_grad):
        """The engine's constructor of a tensor without history (``node`` must be None): takes
        ``data`` as is (no copy, no checks). Recorded results are made by ``_made_by``."""
        if node is not None:
            raise ValueError("Tensor._make makes a tensor without history; use _made_by")
        tensor = object.__new__(cls)
        tensor.data = data
        tensor.grad = None
        tensor.requires_grad = requires_grad
        tensor.name = None
        tensor._op = tensor._input0 = tensor._input1 = tensor._inputs = tensor._params = None
        tensor._retains_grad = False
        tensor._scope = _scope_state.stack  # NOTE: current_scope() without the call (~60 ns)
        tensor._uses = 0
        tensor._needed = False
        return tensor

    @property
    def _node(self):
        """How this tensor was made, as an ``autodiff.Node`` (op, inputs, params, freed), or
        None for a leaf. Read by the graph pictures, the tape and the checks."""
        return None if self._op is None else Node(self)

    # --- what it is -----------------------------------------------------------------------
    shape = property(lambda self: self.data.shape, doc="The shape of ``data``.")
    ndim = property(lambda self: self.data.ndim, doc="The number of axes.")
    dtype = property(lambda self: self.data.dtype, doc="The dtype of ``data`` (float64 by default).")
    size = property(lambda self: self.data.size, doc="The number of elements.")

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (parameters, inputs), not by an operation."""
        return self._op is None

    @property
    def op(self):
        """The name of the primitive that made this tensor (None for a leaf)."""
        return None if self._op is None else self._op.name

    @property
    def parents(self) -> tuple:
        """The input tensors of the operation that made this one (empty for a leaf, or once
        backward() has freed the graph). A parent that nothing but the graph held and whose
        value no backward rule reads may have had its value released (``.data`` is then a
        ``ReleasedValue``; see ``ag.keep_values()`` and ``autograd_lite.release``)."""
        return inputs_of(self)

    @property
    def scope(self) -> tuple:
        """The ``ag.name_scope`` names active when this tensor was made, outermost first."""
        return self._scope

    def named(self, name: str) -> "Tensor":
        """Set ``name`` and return the tensor: ``Z1 = (W1 @ X + b1).named("Z[1]")``."""
        self.name = name
        return self

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: {self._label()} has shape {self.shape}; only a tensor with "
                             f"one element converts to a Python number")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The data as an ndarray (the tensor's own array, not a copy)."""
        if self._uses is None:
            self.data._refuse()  # released: raises ReleasedValueError saying why
        return self.data

    def __array__(self, dtype=None, copy=None):
        if self._uses is None:
            self.data._refuse()
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of {self._label()} with shape {self.shape} is "
                             f"ambiguous; use .data.any() or .data.all()")
        return bool(self.data)

    def __repr__(self):
        if self._uses is None:  # released (see autograd_lite.release): no numbers to show
            body = f"<value released>, shape={self.data.shape}"
        else:
            body = np.array2string(self.data, separator=", ", prefix="Tensor(", threshold=40)
        extras = []
        if self.name:
            extras.append(f"name={self.name!r}")
        if self._op is not None:
            extras.append(f"op={self._op.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.data.dtype != np.float64:
            extras.append(f"dtype={self.data.dtype}")
        return f"Tensor({body}{', ' if extras else ''}{', '.join(extras)})"

    def _label(self) -> str:
        return repr(self.name) if self.name else "the tensor"

    # --- gradients --------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Fill ``.grad`` of every leaf this tensor depends on that has ``requires_grad``.

        ``grad`` is dJ/d(this tensor), needed unless the tensor has one element (a loss J, for
        which it is 1). Gradients are plain ndarrays and add up across calls. The graph is
        freed afterwards unless ``retain_graph=True``. First order only: for higher
        derivatives use ``ag.grad``.
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"backward: {self._label()} does not require a gradient: none of the tensors it "
                f"was computed from has requires_grad=True, or it was computed under no_grad()")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward: {self._label()} has shape {self.shape}; backward() with no "
                    f"argument needs a single-element tensor such as a loss J. Pass grad=, an "
                    f"array of shape {self.shape} holding dJ/d(this tensor) (np.ones({self.shape}) "
                    f"differentiates the sum), or reduce first with .sum() or .mean()")
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ShapeError(f"backward: grad has shape {grad.shape} but {self._label()} has "
                                 f"shape {self.shape}; they must be equal")
        backpropagate(self, grad, retain_graph=retain_graph)

    def retain_grad(self) -> "Tensor":
        """Keep dJ/d(this tensor) in ``.grad`` at the next backward, also for a non-leaf
        (e.g. dZ[l] and dA[l] of eqs 77-82, to compare with the hand derivation)."""
        if not self.requires_grad:
            raise RuntimeError(f"retain_grad: {self._label()} does not require a gradient")
        self._retains_grad = True
        return self

    def zero_grad(self):
        """Forget the accumulated gradient (``.grad`` becomes None)."""
        self.grad = None

    def detach(self) -> "Tensor":
        """The same values with no history: a constant for the engine."""
        if self._uses is None:
            self.data._refuse()
        return Tensor._make(self.data, None, False)

    # --- arithmetic ---------------------------------------------------------------------------
    def __add__(self, other):
        other = _operand(other, self)
        return NotImplemented if other is None else _binary(ops.ADD, self, other)

    def __radd__(self, other):
        other = _operand(other, self)
        return NotImplemented if other is None else _binary(ops.ADD, other, self)

    def __sub__(self, other):
        other = _operand(other, self)
        return NotImplemented if other is None else _binary(ops.SUB, self, other)

    def __rsub__(self, other):
        other = _operand(other, self)
        return NotImplemented if other is None else _binary(ops.SUB, other, self)

    def __mul__(self, other):
        other = _operand(other, self)
        return NotImplemented if other is None else _binary(ops.MUL, self, other)

    def __rmul__(self, other):
        other = _operand(other, self)
        return NotImplemented if other is None else _binary(ops.MUL, other, self)

    def __truediv__(self, other):
        other = _operand(other, self)
        return NotImplemented if other is None else _binary(ops.DIV, self, other)

    def __rtruediv__(self, other):
        other = _operand(other, self)
        return NotImplemented if other is None else _binary(ops.DIV, other, self)

    def __pow__(self, exponent):
        if isinstance(exponent, numbers.Real) and not isinstance(exponent, bool):
            return _record(ops.POW_SCALAR, (self,), {"exponent": float(exponent)})
        other = _operand(exponent, self)
        return NotImplemented if other is None else _binary(ops.POW, self, other)

    def __rpow__(self, base):
        other = _operand(base, self)
        return NotImplemented if other is None else _binary(ops.POW, other, self)

    def __matmul__(self, other):
        other = _operand(other, self)
        return NotImplemented if other is None else _binary(ops.MATMUL, self, other)

    def __rmatmul__(self, other):
        other = _operand(other, self)
        return NotImplemented if other is None else _binary(ops.MATMUL, other, self)

    def __neg__(self):
        return _unary(ops.NEG, self)

    def __pos__(self):
        return self

    # Comparisons: plain boolean arrays, no gradient (a step function's derivative is 0).
    def __lt__(self, other):
        return self.data < _raw(other)

    def __le__(self, other):
        return self.data <= _raw(other)

    def __gt__(self, other):
        return self.data > _raw(other)

    def __ge__(self, other):
        return self.data >= _raw(other)

    # --- elementwise functions ------------------------------------------------------------------
    def exp(self):
        return _unary(ops.EXP, self)

    def log(self):
        """Natural log (eq 1)."""
        return _unary(ops.LOG, self)

    def sigmoid(self):
        """s(z) = 1 / (1 + e^-z) (eq 7); stable for any z."""
        return _unary(ops.SIGMOID, self)

    def tanh(self):
        return _unary(ops.TANH, self)

    def relu(self):
        return _unary(ops.RELU, self)

    def abs(self):
        return _unary(ops.ABS, self)

    def sqrt(self):
        return self ** 0.5

    # --- reductions -------------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False, dtype=None, out=None):
        """Sum over ``axis`` (None: all; an int, negative, or a tuple). ``np.sum(t)`` works too
        (``dtype`` and ``out`` exist only for numpy's sake and must be left unset)."""
        _refuse_numpy_extras("sum", dtype, out)
        return _record(ops.SUM, (self,), {"axis": ops.normalize_axis(axis, self.ndim, "sum"),
                                          "keepdims": bool(keepdims)})

    def mean(self, axis=None, keepdims=False, dtype=None, out=None):
        """Mean over ``axis``; ``J = L.mean()`` over the m columns is eq 76. ``np.mean(t)``
        works too (``dtype`` and ``out`` must be left unset)."""
        _refuse_numpy_extras("mean", dtype, out)
        return _record(ops.MEAN, (self,), {"axis": ops.normalize_axis(axis, self.ndim, "mean"),
                                           "keepdims": bool(keepdims)})

    def softmax(self, axis=0):
        """Softmax along ``axis``; the default 0 makes each column (sample) sum to 1."""
        (axis,) = ops.normalize_axis(_single_axis(axis, "softmax"), self.ndim, "softmax")
        return _record(ops.SOFTMAX, (self,), {"axis": axis})

    def log_softmax(self, axis=0):
        """log(softmax(x)) along ``axis`` (default 0, the units of each sample), stable."""
        (axis,) = ops.normalize_axis(_single_axis(axis, "log_softmax"), self.ndim, "log_softmax")
        return _record(ops.LOG_SOFTMAX, (self,), {"axis": axis})

    # --- shape -----------------------------------------------------------------------------------
    def reshape(self, *shape):
        """``t.reshape(4, 1)`` or ``t.reshape((4, 1))``; one -1 is inferred."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _record(ops.RESHAPE, (self,), {"shape": tuple(int(n) for n in shape)})

    def transpose(self, *axes):
        """Reverse the axes (``t.transpose()``, ``.T``) or permute them (``t.transpose(1, 0)``)."""
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0] or ()  # t.transpose(None), as numpy allows: reverse the axes
        axes = tuple(int(a) for a in axes) if axes else None
        return _record(ops.TRANSPOSE, (self,), {"axes": axes})

    @property
    def T(self):
        """The transpose (eqs 59, 65: dW = dZ A^T, dA = W^T dZ)."""
        return _record(ops.TRANSPOSE, (self,), {"axes": None})

    def broadcast_to(self, shape):
        """Repeat along axes of length 1 to ``shape`` (eq 32's B[1] from b[1])."""
        return _record(ops.BROADCAST_TO, (self,), {"shape": tuple(shape)})

    def __getitem__(self, index):
        return _record(ops.GETITEM, (self,), {"index": _raw_index(index)})

    # --- issue 11's ops, each delegating to its module (ops_reduce, ops_elementwise, ops_join) ---
    def max(self, axis=None, keepdims=False, out=None): return ops_reduce.max(self, axis, keepdims, out)
    def min(self, axis=None, keepdims=False, out=None): return ops_reduce.min(self, axis, keepdims, out)
    def argmax(self, axis=None, keepdims=False): return ops_reduce.argmax(self, axis, keepdims)
    def argmin(self, axis=None, keepdims=False): return ops_reduce.argmin(self, axis, keepdims)
    def logsumexp(self, axis=None, keepdims=False): return ops_reduce.logsumexp(self, axis, keepdims)
    def var(self, axis=None, ddof=0, keepdims=False, dtype=None, out=None): return ops_reduce.var(self, axis, ddof, keepdims, dtype, out)
    def std(self, axis=None, ddof=0, keepdims=False, dtype=None, out=None): return ops_reduce.std(self, axis, ddof, keepdims, dtype, out)
    def maximum(self, other): return ops_elementwise.maximum(self, other)
    def minimum(self, other): return ops_elementwise.minimum(self, other)
    def clip(self, low=None, high=None, out=None): return ops_elementwise.clip(self, low, high, out)
    def square(self): return ops_elementwise.square(self)
    def sin(self): return ops_elementwise.sin(self)
    def cos(self): return ops_elementwise.cos(self)
    def leaky_relu(self, negative_slope=0.01): return ops_elementwise.leaky_relu(self, negative_slope)
    def elu(self, alpha=1.0): return ops_elementwise.elu(self, alpha)
    def gelu(self, approximate="none"): return ops_elementwise.gelu(self, approximate)
    def softplus(self): return ops_elementwise.softplus(self)
    def split(self, indices_or_sections, axis=0): return ops_join.split(self, indices_or_sections, axis)


def _made_by(data, op, inputs, params, requires_grad):
    """The result of a recorded op: ``data`` as is, made by ``op`` from ``inputs``.

    NOTE: a plain function, not a classmethod (no bound-method call, ~0.1 us per op).
    """
    tensor = _new_object(Tensor)
    tensor.data = data
    tensor.grad = None
    tensor.requires_grad = requires_grad
    tensor.name = None
    tensor._op = op
    if len(inputs) == 2:  # see autodiff.inputs_of
        tensor._input0, tensor._input1 = inputs
        tensor._inputs = None
    elif len(inputs) == 1:
        tensor._input0 = inputs[0]
        tensor._input1 = tensor._inputs = None
    else:
        tensor._input0 = tensor._input1 = None
        tensor._inputs = inputs
    tensor._params = params
    tensor._retains_grad = False
    tensor._scope = _scope_state.stack
    tensor._uses = 0
    tensor._needed = False
    if requires_grad:
        # Which inputs a backward rule will read (they keep their arrays) and which it will not
        # (counted, so that release can tell the graph's references from anyone else's).
        reads = op.vjp_reads_inputs
        if not reads:
            for t in inputs:
                t._uses += 1
        elif reads != "others" or len(inputs) != 2:  # True, or anything we cannot read as less
            for t in inputs:
                t._needed = True
        else:  # "others": each input is read only to form the other input's gradient
            x, y = inputs
            if y.requires_grad:
                x._needed = True
            else:
                x._uses += 1
            if x.requires_grad:
                y._needed = True
            else:
                y._uses += 1
        # A value no backward rule will read waits to be released once nothing outside the
        # graph holds it (see autograd_lite.release).
        if not op.vjp_reads_output and _release_state.releasing:
            waiting = _release_state.waiting
            waiting.append(_weakref(tensor))
            if len(waiting) >= _RELEASE_BATCH:
                _release_due()
    return tensor


_new_object = object.__new__
_weakref = weakref.ref
_RELEASE_BATCH = 2 * RELEASE_DELAY


def _is_numeric(data) -> bool:
    try:
        return np.asarray(data).dtype.kind in _NUMERIC_KINDS
    except (ValueError, TypeError):  # ragged nested lists
        return False


def _short(data) -> str:
    text = repr(data)
    return text if len(text) <= 60 else text[:57] + "..."


def _raw(value):
    return value.data if isinstance(value, Tensor) else value


def _raw_index(index):
    if isinstance(index, tuple):
        return tuple(_index_part(i) for i in index)
    return _index_part(index)


def _index_part(part):
    """An index as numpy wants it. A Tensor of whole numbers (Tensors hold float64) becomes an
    integer array, so ``x[ag.Tensor([0, 2])]`` picks elements 0 and 2."""
    if not isinstance(part, Tensor):
        return part
    data = part.data
    if data.dtype.kind == "f" and np.all(np.isfinite(data)) and np.all(data == np.round(data)):
        return data.astype(np.intp)
    return data


def _refuse_numpy_extras(op_name, dtype, out):
    if dtype is not None or out is not None:
        raise TypeError(f"{op_name}: dtype= and out= are not supported (a Tensor's result is "
                        f"always a new Tensor of the input's dtype)")


def _single_axis(axis, op_name):
    if isinstance(axis, tuple) or axis is None:
        raise ShapeError(f"{op_name}: axis must be a single int, got {axis!r}")
    return axis

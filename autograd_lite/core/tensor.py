"""Tensor: an ndarray that remembers how it was made, so its gradient can be derived.

Every operator and method here records one primitive of ``ops`` through ``_record``: run the
primitive's forward on the arrays and, when a gradient will be needed, make the ``Node`` that
remembers it (``core.graph.Node``: the op, its parents, what its vjp reads). The tensor holds
its array and that node (``grad_fn``); the derivative rules live in ``ops`` and the traversal
in ``core.backward``. Nothing here knows a derivative.
"""
from __future__ import annotations

import math
import numbers
import operator
import warnings

import numpy as np

from .. import backend, ops
from ..errors import ShapeError
from ..ops import compare, elementwise, reduce, shape as shape_ops
from ..ops.base import refuse_numpy_extras, single_axis
from .backward import accumulated, backpropagate
from .graph import Node, hand_out, handed_out, locked, release
from .hooks import forward_hooks  # noqa: F401 - this thread's observers, as a list
from .modes import grad_mode, per_thread

_NUMPY = backend.NUMPY



def _record(op, inputs, params):
    """Run ``op`` forward on the inputs' arrays and, if a gradient is needed, record its node.
    The result lives where its inputs live (``backend.join`` refuses two backends)."""
    where = inputs[0]._backend
    if len(inputs) > 1 and (len(inputs) > 2 or inputs[1]._backend is not where):  # join checks
        where = backend.join(op.name, [t._backend for t in inputs])
    arrays = [t._data for t in inputs]
    data = op.forward(*arrays, **params)
    data = np.asarray(data) if where is _NUMPY else backend.result(data, where, op.name)
    modes = per_thread.modes  # this thread's grad mode, name scope, trace and observers
    requires_grad = op.differentiable and modes.enabled and any([t.requires_grad for t in inputs])
    node = Node(op, params, inputs, arrays, data, requires_grad, modes.scope) if requires_grad else None
    if modes.trace is not None:  # ag.compile traces: every op is recorded, the trace told
        node = modes.trace.recorded(node or Node(op, params, inputs, arrays, data, requires_grad, modes.scope))
    output = Tensor._result(data, node, requires_grad, where)
    for hook in modes.forward:  # this thread's observers (core.hooks)
        hook(op, inputs, output)
    return output


def apply(op, inputs, params):
    """Apply a primitive (built in or user-defined) to Tensors, arrays or numbers (numbers join
    the first Tensor's backend)."""
    tensors = [x for x in inputs if isinstance(x, Tensor)]
    if len(tensors) < len(inputs):
        like = tensors[0] if tensors else None
        inputs = tuple([as_tensor(x, like) for x in inputs])
    return _record(op, inputs, params)


def tensor_of(node, data=None):
    """A Tensor for ``node``'s output (``data``, or ``node.value()``), made by that node, so
    gradients can flow through it again (higher order) and a learner can walk the graph."""
    data = node.value() if data is None else data
    tensor = Tensor._result(data, node, node.requires_grad)
    tensor._handed_out = type(data) is np.ndarray and handed_out(data)  # then a graph locks it
    return tensor


def sharing(array, requires_grad=False):
    """A Tensor holding ``array`` itself, not a copy, for a caller that keeps it too (an
    argument of ``ag.grad`` or of a compiled step): a graph that saves it locks it, as it
    locks an array ``.data`` handed out (``core.graph.hold``)."""
    tensor = Tensor._result(array, None, requires_grad)
    if type(array) is np.ndarray:
        hand_out(array)
        tensor._handed_out = True
    return tensor


def array_of(tensor):
    """``tensor``'s array for the engine's own code that reads it and keeps nothing of it (an
    optimizer's update, a saver): unlike ``.data`` it is not handed out, so the graphs that
    save it later do not lock it (``core.graph.hold``). A numpy array comes as a read-only
    view, so a write into it (which a graph that saved it could not see) is refused."""
    array = tensor._data
    if type(array) is not np.ndarray:
        return array
    view = array.view()
    view.flags.writeable = False
    return view


def assign(tensor, value):
    """``tensor.data = value`` for the engine's own code, whose ``value`` is a new array nothing
    else holds (an optimizer's update, a file's values): checked and counted as a change as
    that is, and the tensor's own, as an in-place operator's result is, so the graphs that save
    it do not lock it. A numpy view or read-only array (``array_of``'s, given back) is copied
    first, so the tensor's array is always its own and writable."""
    if type(value) is np.ndarray and (value.base is not None or not value.flags.writeable):
        value = value.copy()
    _assigned(tensor, value, handed_out=False)


def _assigned(tensor, value, handed_out):
    if value is tensor._data:  # written in place (``W.data -= ...``): the array handed out
        tensor._version += 1
        return
    if type(value) is not np.ndarray or value.dtype.kind != "f":  # floats fit every tensor
        value = _checked_data(tensor, value)
    handed_out = handed_out and type(value) is np.ndarray
    if handed_out:
        hand_out(value)
    tensor._data, tensor._version = value, tensor._version + 1
    tensor._backend = _NUMPY if type(value) is np.ndarray else backend.of(value)
    tensor._handed_out = handed_out


def as_tensor(value, like=None):
    """``value`` as a Tensor: Tensors pass through; numbers and arrays become constants
    (no gradient), copied. Beside a floating Tensor ``like`` (numpy 2's promotion rules, as
    PyTorch's): a Python number takes ``like``'s dtype and backend, so ``1 - A`` keeps A's; a
    floating array keeps its own dtype (float32 labels stay float32); an integer or boolean
    array takes ``like``'s dtype."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":  # float32 data stays float32
        return Tensor(value, dtype=value.dtype)
    if like is not None and backend.dtype_kind(like.dtype) == "f":
        where = like._backend
        if type(value) in (int, float) or (not where.is_numpy and isinstance(value, np.generic)):
            return Tensor._result(backend.constant(value, where, like.dtype), None, False, where)
        if isinstance(value, (np.ndarray, np.generic)) or backend.is_foreign_array(value):
            kind = backend.dtype_kind(value.dtype)
            if kind == "f":
                return Tensor(value, dtype=value.dtype)
            if kind in "biu" and backend.of(value).xp is where.xp:
                return Tensor(value, dtype=like.dtype)
    return Tensor(value)


def _operand(value, like):
    """The other operand of a binary operator as a Tensor, or None if we do not handle it
    (then Python tries the other side and finally raises its own TypeError)."""
    if isinstance(value, Tensor):
        return value
    if type(value) in (int, float) and like._backend is _NUMPY and like._data.dtype.kind == "f":
        return Tensor._result(np.asarray(value, dtype=like._data.dtype), None, False, _NUMPY)
    if isinstance(value, (numbers.Number, np.ndarray, np.generic, list, tuple)):
        if np.asarray(value).dtype.kind not in "biuf":
            return None
        return as_tensor(value, like)
    if backend.is_foreign_array(value):  # another backend's array: _record refuses the mix
        return as_tensor(value, like)
    return None


class Tensor:
    """An array with an optional gradient: the seed's W[l], b[l], Z[l], A[l], J.

    ``Tensor(data, requires_grad=False, name=None, dtype=None)``

    - ``data`` is kept in its own backend (numpy, torch, CuPy, JAX, Dask, array-api-strict:
      never converted to another) as a float64 array unless ``dtype`` says otherwise; integer
      data is cast to float64, boolean data stays boolean (a mask, no gradient). numpy, torch,
      CuPy and array-api-strict data is copied, so the engine never writes into an array you
      own; Dask and JAX arrays, which cannot be written into, are kept as they are. A gradient
      needs a real floating dtype: ``requires_grad=True`` with an integer, boolean or complex
      dtype is refused. ``t.to(...)`` moves a tensor to another backend, ``ag.to_numpy(t)``
      brings its values to the host.
    - ``requires_grad=True`` marks a leaf whose gradient ``backward()`` fills: ``.grad`` is None
      until then, then an ndarray of the tensor's shape that accumulates across backward calls
      until reset (``t.grad = None`` or ``t.zero_grad()``).
    - ``name`` labels the tensor in errors, reports and graph pictures (``"W[1]"``).
    - ``grad_fn`` is the ``Node`` of the operation that made the tensor (None for a leaf). A
      result's name, name scope and retained gradient live on that node, so they outlive the
      Tensor object: pictures still know ``Z[1]`` after ``Z`` was rebound.

    Operators ``+ - * / ** @`` and unary ``-`` broadcast like numpy and accept Tensors, ndarrays
    and numbers on either side; ndarrays never swallow a Tensor (``ndarray + Tensor`` is a
    Tensor). In-place operators ``-= += *= /=`` are PyTorch's: under ``ag.no_grad()`` (or when
    no operand needs a gradient) they change the tensor's values, the same Tensor object holding
    a new array (``version`` counts the changes), so ``for p in params: with ag.no_grad(): p -=
    lr * p.grad`` trains (eqs 74-75). While gradients are recorded they refuse a leaf that
    requires grad, and on a result ``a += b`` is ``a = a + b``: the name is rebound to a new
    recorded result. Comparisons (``==``, ``<``, ...) return plain boolean ndarrays,
    elementwise: they have no gradient. Tensors hash by identity, as in PyTorch.
    """

    # What a tensor has until told otherwise: no history, no gradient, no name, no change
    # (a result's name, scope and retained gradient live on its node, grad_fn).
    grad_fn = None
    _grad = None
    _name = None
    _scope = ()
    _version = 0
    _handed_out = False  # whether the user may hold its array (``.data`` gave it out)

    # numpy functions and ufuncs given a Tensor record the matching op or refuse: never a
    # silent conversion to an ndarray that would drop the gradient. core.numpy_interop, the
    # layer above this one, sets __array_ufunc__ and __array_function__.

    def __init__(self, data, requires_grad=False, name=None, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        self._data, self._backend = backend.new_array(data, dtype)
        if requires_grad and backend.dtype_kind(self._data.dtype) != "f":
            raise TypeError(_no_gradient_for(self._data.dtype, dtype))
        self.requires_grad, self._name, self._scope = bool(requires_grad), name, per_thread.modes.scope

    @classmethod
    def _result(cls, data, grad_fn, requires_grad, where=None):
        """A tensor holding ``data`` as it is (no copy) made by the node ``grad_fn`` (None for
        a tensor without history: a constant, or a result nothing needs a gradient of);
        ``where`` is its backend, looked up when not given."""
        tensor = cls.__new__(cls)
        tensor._data, tensor._backend = data, where or backend.of(data)
        tensor.grad_fn, tensor.requires_grad = grad_fn, requires_grad
        tensor._scope = () if grad_fn else per_thread.modes.scope  # a result's is its node's
        return tensor

    # --- what it is -----------------------------------------------------------------------
    @property
    def data(self):
        """The array: an ndarray, or the array of the backend the tensor lives in. An ndarray
        handed out here is read-only while a graph that has not been backpropagated saved it
        (a write would change what backward reads, so numpy refuses it), until ``backward()``
        or until that graph is dropped; a result's is a read-only view until backward has
        passed it. The first time, if only the engine held that memory, the tensor takes a copy
        of it to hand out, so a graph that saved the engine's array keeps what it saw (a view
        of memory handed out already is handed out as it is). Assigning (``W.data = new``,
        ``W.data -= lr * W.grad``) takes an array of a real floating dtype for a floating
        tensor, and counts as a change (``version``)."""
        array = self._data
        if type(array) is not np.ndarray:
            return array  # another backend's array (no read-only flag), or an ndarray subclass
        if self.grad_fn is not None and self.requires_grad and not self.grad_fn.freed:
            array = array.view()  # a result a live graph may have saved: read-only to the user
            array.flags.writeable = False
        elif locked and not array.flags.writeable:  # (when nothing is locked, nothing to release)
            release(array)  # writable again if the graph that saved it is gone or freed
        elif not self._handed_out and array.flags.writeable:  # (a read-only array stays so)
            if not handed_out(array):  # the engine's own memory, which a live graph may have
                self._data = array = array.copy(order="K")  # saved: the tensor takes a copy
                hand_out(array)  # to hand out, which a graph that saves it from now on locks
            self._handed_out = True  # (memory handed out already, a view of W's, is shared)
        return array

    @data.setter
    def data(self, value):
        _assigned(self, value, handed_out=True)  # the caller holds it: a graph that saves it locks it

    @property
    def version(self) -> int:
        """How many times the values changed in a way the engine sees: an in-place operator
        (``W -= lr * W.grad`` under no_grad) or an assignment to ``.data``. A graph that saved
        the old values refuses to backpropagate through the new ones."""
        return self._version

    shape = property(lambda self: self._data.shape, doc="The shape of ``data``.")
    ndim = property(lambda self: self._data.ndim, doc="The number of axes.")
    dtype = property(lambda self: self._data.dtype, doc="The dtype of ``data`` (float64 by default).")
    device = property(lambda self: self._backend.device,
                      doc="The device ``data`` lives on (``'cpu'`` for numpy).")
    size = property(lambda self: math.prod(self.shape), doc="The number of elements.")

    @property
    def grad(self):
        """dJ/d(this tensor) as an ndarray after ``backward()``: for a leaf that requires a
        gradient, and for a result after ``retain_grad()``; None otherwise (reading a result's
        ``.grad`` without ``retain_grad()`` warns, as in PyTorch). Assign None or an ndarray of
        the tensor's shape and a real floating dtype."""
        return self._grad if self.grad_fn is None else self._result_grad()

    def _result_grad(self):
        if self.requires_grad and not self.grad_fn.retains_grad:
            warnings.warn(
                f".grad of {self._label()} (made by {self.grad_fn.op.name}) is read, but it is "
                f"not a leaf, so backward() does not keep its gradient: it is None. Call "
                f".retain_grad() on it before backward() to keep dJ/d(it) (e.g. dZ[l], dA[l] of "
                f"eqs 77-82), or read the .grad of the leaves", UserWarning, stacklevel=2)
        return self.grad_fn.grad

    @grad.setter
    def grad(self, value):
        value = None if value is None else _checked_grad(self, value)
        if self.grad_fn is None:
            self._grad = value
        else:
            self.grad_fn.grad = value

    @property
    def name(self):
        """The label shown in errors, reports and pictures (``"W[1]"``), or None."""
        return self._name if self.grad_fn is None else self.grad_fn.name

    @name.setter
    def name(self, value):
        if self.grad_fn is None:
            self._name = value
        else:
            self.grad_fn.name = value

    @property
    def scope(self) -> tuple:
        """The ``ag.name_scope`` names active when this tensor was made, outermost first."""
        return self._scope if self.grad_fn is None else self.grad_fn.scope

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (parameters, inputs), not by a recorded operation."""
        return self.grad_fn is None

    @property
    def op(self):
        """The name of the primitive that made this tensor (None for a leaf)."""
        return None if self.grad_fn is None else self.grad_fn.op.name

    @property
    def parents(self) -> tuple:
        """The input tensors of the operation that made this one, in argument order (empty for
        a leaf). Walk them from J down to the leaves and read each ``.data``: a value the graph
        did not keep is recomputed from its own parents, exactly (``Node.value``). After
        ``retain_grad()`` and ``backward()``, each ``.grad`` is there too."""
        node = self.grad_fn
        if node is None:
            return ()
        saved = node.saved_inputs or (None,) * len(node.parents)
        return tuple(p if not isinstance(p, Node) else tensor_of(p, array)
                     for p, array in zip(node.parents, saved))

    def named(self, name: str) -> "Tensor":
        """Set ``name`` and return the tensor: ``Z1 = (W1 @ X + b1).named("Z[1]")``."""
        self.name = name
        return self

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item: {self._label()} has shape {self.shape}; only a tensor with "
                             f"one element converts to a Python number")
        if grad_mode.trace is not None: grad_mode.trace.leaves(self, "t.item()")
        return backend.to_numpy(self._data).item()  # a number: no array handed out

    def numpy(self) -> np.ndarray:
        """The data as an ndarray: the tensor's own array for numpy, as ``.data`` hands it
        out (writes into it change the tensor); another backend's brought to the host (a Dask
        array computed), as ``ag.to_numpy``."""
        if grad_mode.trace is not None: grad_mode.trace.leaves(self, "t.numpy()")
        return self.data if self._backend is backend.NUMPY else backend.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None):
        if grad_mode.trace is not None: grad_mode.trace.leaves(self, "np.asarray(t)")
        if copy:
            return np.array(backend.to_numpy(self._data), dtype=dtype, copy=True)
        data = self.numpy()
        return data if dtype is None else data.astype(dtype, copy=False)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of {self._label()} with shape {self.shape} is "
                             f"ambiguous; use .data.any() or .data.all()")
        if grad_mode.trace is not None: grad_mode.trace.leaves(self, "bool(t)")
        return bool(backend.to_numpy(self._data))

    def to(self, target, device=None) -> "Tensor":
        """This tensor in another backend: ``t.to(torch)``, ``t.to(torch, device="cuda")``,
        ``t.to("cuda")`` (a device of its own namespace), ``t.to(np)``, or ``t.to(other)`` (the
        backend of another tensor or array). The tensor itself when it is there already; else a
        copy, a leaf with the same ``requires_grad`` and name (move the parameters before the
        forward pass, as ``model.to(...)`` does). A tensor with history that requires a gradient
        is refused: the gradient would not flow back across backends."""
        if isinstance(target, Tensor):
            target = target.data
        where = backend.resolve(target, device, self._backend)
        if where is self._backend:
            return self
        if self.grad_fn is not None and self.requires_grad:
            raise RuntimeError(
                f"to: {self._label()} was computed from tensors that require a gradient, which "
                f"cannot flow back across backends; move the leaves (parameters, inputs) with "
                f".to(...) or model.to(...) before the forward pass, or .detach() it first")
        moved = Tensor._result(backend.moved(self._data, where), None, self.requires_grad, where)
        moved._name = self.name
        return moved

    __hash__ = object.__hash__  # by identity, as in PyTorch (== is elementwise)

    def __repr__(self):
        where = self._backend
        if where.is_dask:  # shown by shape, never computed just to be printed
            body = f"<dask array shape={self.shape}, chunks={self.data.chunksize}>"
        else:
            body = np.array2string(backend.to_numpy(self._data), separator=", ", prefix="Tensor(",
                                   threshold=40)
        extras = [] if where.is_numpy else [f"backend={where!r}"]
        if self.name:
            extras.append(f"name={self.name!r}")
        if self.grad_fn is not None:
            extras.append(f"op={self.grad_fn.op.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        dtype = str(self.dtype).rpartition(".")[2]  # torch.float32 -> float32
        if dtype != "float64":
            extras.append(f"dtype={dtype}")
        return f"Tensor({body}{', ' if extras else ''}{', '.join(extras)})"

    def _label(self) -> str:
        return repr(self.name) if self.name else "the tensor"

    # --- gradients --------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Fill ``.grad`` of every leaf this tensor depends on that has ``requires_grad``.

        ``grad`` is dJ/d(this tensor), needed unless the tensor has one element (a loss J, for
        which it is 1). Gradients are plain ndarrays and add up across calls. The graph's saved
        arrays are freed afterwards unless ``retain_graph=True``. First order only: for higher
        derivatives use ``ag.grad``.
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"backward: {self._label()} does not require a gradient: none of the tensors it "
                f"was computed from has requires_grad=True, or it was computed under no_grad()")
        if grad is None:
            if math.prod(self.shape) != 1:
                raise ValueError(
                    f"backward: {self._label()} has shape {self.shape}; backward() with no "
                    f"argument needs a single-element tensor such as a loss J. Pass grad=, an "
                    f"array of shape {self.shape} holding dJ/d(this tensor) (np.ones({self.shape}) "
                    f"differentiates the sum), or reduce first with .sum() or .mean()")
            grad = np.array(1.0, self.dtype).reshape(self.shape) if self._backend is _NUMPY \
                else self._backend.xp.ones_like(self._data)  # dJ/dJ = 1
        else:
            grad = as_tensor(grad, self)
            backend.join("backward", [self._backend, grad._backend])
            grad = grad.data if grad.dtype == self.dtype else \
                self._backend.xp.astype(grad.data, self.dtype)
            if grad.shape != self.shape:
                raise ShapeError(f"backward: grad has shape {grad.shape} but {self._label()} has "
                                 f"shape {self.shape}; they must be equal")
        found = backpropagate(self.grad_fn or self, grad, keep_graph=retain_graph)
        if self._backend.is_dask:  # the pass built one lazy graph: it runs here, once, for J
            self._data, found = backend.materialize(self._data, found)  # and every small grad
        for x, x_grad in found:
            if x_grad is None:
                continue  # no path carried a gradient
            if type(x) is not Node:  # a leaf that requires a gradient
                x._grad = accumulated(x._grad, x_grad, x._data.dtype)
            elif x.retains_grad:
                x.grad = accumulated(x.grad, x_grad, x.dtype)

    def retain_grad(self) -> "Tensor":
        """Keep dJ/d(this tensor) in ``.grad`` at the next backward, also for a non-leaf
        (e.g. dZ[l] and dA[l] of eqs 77-82, to compare with the hand derivation)."""
        if not self.requires_grad:
            raise RuntimeError(f"retain_grad: {self._label()} does not require a gradient")
        if self.grad_fn is not None:
            self.grad_fn.retains_grad = True
        return self

    def zero_grad(self):
        """Forget the accumulated gradient (``.grad`` becomes None)."""
        self.grad = None

    def detach(self) -> "Tensor":
        """The same values with no history: a constant for the engine."""
        detached = _record(ops.DETACH, (self,), {})
        detached._handed_out = self._handed_out  # the same array
        return detached

    # --- arithmetic ---------------------------------------------------------------------------
    def __add__(self, other):
        other = other if isinstance(other, Tensor) else _operand(other, self)
        return NotImplemented if other is None else _record(ops.ADD, (self, other), {})

    def __radd__(self, other):
        other = other if isinstance(other, Tensor) else _operand(other, self)
        return NotImplemented if other is None else _record(ops.ADD, (other, self), {})

    def __sub__(self, other):
        other = other if isinstance(other, Tensor) else _operand(other, self)
        return NotImplemented if other is None else _record(ops.SUB, (self, other), {})

    def __rsub__(self, other):
        other = other if isinstance(other, Tensor) else _operand(other, self)
        return NotImplemented if other is None else _record(ops.SUB, (other, self), {})

    def __mul__(self, other):
        other = other if isinstance(other, Tensor) else _operand(other, self)
        return NotImplemented if other is None else _record(ops.MUL, (self, other), {})

    def __rmul__(self, other):
        other = other if isinstance(other, Tensor) else _operand(other, self)
        return NotImplemented if other is None else _record(ops.MUL, (other, self), {})

    def __truediv__(self, other):
        other = other if isinstance(other, Tensor) else _operand(other, self)
        return NotImplemented if other is None else _record(ops.DIV, (self, other), {})

    def __rtruediv__(self, other):
        other = other if isinstance(other, Tensor) else _operand(other, self)
        return NotImplemented if other is None else _record(ops.DIV, (other, self), {})

    def __pow__(self, exponent):
        if isinstance(exponent, numbers.Real) and not isinstance(exponent, bool):
            return _record(ops.POW_SCALAR, (self,), {"exponent": float(exponent)})
        other = _operand(exponent, self)
        return NotImplemented if other is None else _record(ops.POW, (self, other), {})

    def __rpow__(self, base):
        other = _operand(base, self)
        return NotImplemented if other is None else _record(ops.POW, (other, self), {})

    def __matmul__(self, other):
        other = other if isinstance(other, Tensor) else _operand(other, self)
        return NotImplemented if other is None else _record(ops.MATMUL, (self, other), {})

    def __rmatmul__(self, other):
        other = other if isinstance(other, Tensor) else _operand(other, self)
        return NotImplemented if other is None else _record(ops.MATMUL, (other, self), {})

    # In place: see the class docstring. Python rebinds the name to what these return.
    def __iadd__(self, other):
        return self._in_place(other, operator.add, "+=", Tensor.__add__)

    def __isub__(self, other):
        return self._in_place(other, operator.sub, "-=", Tensor.__sub__)

    def __imul__(self, other):
        return self._in_place(other, operator.mul, "*=", Tensor.__mul__)

    def __itruediv__(self, other):
        return self._in_place(other, operator.truediv, "/=", Tensor.__truediv__)

    def _in_place(self, other, ufunc, symbol, recorded):
        """``self <symbol> other``: the values change (a new array in the same Tensor, so no
        array a graph or the user holds is written into), unless a gradient is recorded."""
        if type(other) is np.ndarray and other.dtype.kind == "f" and self._backend is _NUMPY \
                and not (per_thread.modes.enabled and self.requires_grad):
            operand = other  # a floating ndarray (``lr * p.grad``), read once: no Tensor copy
        else:
            operand = _operand(other, self)
            if operand is None:
                return NotImplemented
            if per_thread.modes.enabled and (self.requires_grad or operand.requires_grad):
                if self.requires_grad and self.grad_fn is None:
                    raise RuntimeError(
                        f"{symbol}: {self._label()} is a leaf that requires grad, used in an "
                        f"in-place operation while gradients are recorded (backward could not "
                        f"tell its old value from its new one). Update parameters under no_grad, "
                        f"as eqs 74-75 do: `with ag.no_grad(): W -= alpha * W.grad`; or write "
                        f"`W2 = W - ...` for a new tensor")
                return recorded(self, operand)  # a new result: the name is rebound to it
            backend.join(symbol, [self._backend, operand._backend])
            operand = operand._data
        value = ufunc(self._data, operand)
        if value.shape != self._data.shape:
            raise ShapeError(f"{symbol}: {self._label()} has shape {tuple(self.shape)} but the "
                             f"result has shape {tuple(value.shape)}; in place, the other operand "
                             f"must broadcast to {tuple(self.shape)}")
        if value.dtype != self._data.dtype:  # float32 -= float64 stays float32, as in numpy
            if _kind_order(value.dtype) > _kind_order(self.dtype):  # numpy's same_kind casting
                raise TypeError(f"{symbol}: the result has dtype {value.dtype}, which "
                                f"{self._label()} of dtype {self.dtype} cannot hold in place")
            value = self._backend.xp.astype(value, self.dtype)
        if type(value) is not np.ndarray and self._backend is _NUMPY:
            value = np.asarray(value)  # numpy gives a 0-d result as a number
        self._data, self._version, self._handed_out = value, self._version + 1, False  # its own
        return self

    def __neg__(self):
        return _record(ops.NEG, (self,), {})

    def __pos__(self):
        return self

    # Comparisons: plain boolean arrays, no gradient (a step function's derivative is 0). While
    # ag.compile traces a step they are recorded (the compare op, a boolean Tensor), so a
    # replay recomputes the mask; & | ^ ~ combine masks alike.
    def __eq__(self, other):
        return self._data == _raw(other) if grad_mode.trace is None else _traced("equal", self, other)

    def __ne__(self, other):
        return self._data != _raw(other) if grad_mode.trace is None else _traced("not_equal", self, other)

    def __lt__(self, other):
        return self._data < _raw(other) if grad_mode.trace is None else _traced("less", self, other)

    def __le__(self, other):
        return self._data <= _raw(other) if grad_mode.trace is None else _traced("less_equal", self, other)

    def __gt__(self, other):
        return self._data > _raw(other) if grad_mode.trace is None else _traced("greater", self, other)

    def __ge__(self, other):
        return self._data >= _raw(other) if grad_mode.trace is None else _traced("greater_equal", self, other)

    def __and__(self, other):
        return self._data & _raw(other) if grad_mode.trace is None else _traced("bitwise_and", self, other)

    def __rand__(self, other):
        return _raw(other) & self._data if grad_mode.trace is None else _traced("bitwise_and", other, self)

    def __or__(self, other):
        return self._data | _raw(other) if grad_mode.trace is None else _traced("bitwise_or", self, other)

    def __ror__(self, other):
        return _raw(other) | self._data if grad_mode.trace is None else _traced("bitwise_or", other, self)

    def __xor__(self, other):
        return self._data ^ _raw(other) if grad_mode.trace is None else _traced("bitwise_xor", self, other)

    def __rxor__(self, other):
        return _raw(other) ^ self._data if grad_mode.trace is None else _traced("bitwise_xor", other, self)

    def __invert__(self):
        return ~self._data if grad_mode.trace is None else _record(compare.COMPARE, (self,), {"how": "invert"})

    # --- elementwise functions ------------------------------------------------------------------
    def exp(self):
        return _record(ops.EXP, (self,), {})

    def log(self):
        """Natural log (eq 1)."""
        return _record(ops.LOG, (self,), {})

    def sigmoid(self):
        """s(z) = 1 / (1 + e^-z) (eq 7); stable for any z."""
        return _record(ops.SIGMOID, (self,), {})

    def tanh(self):
        return _record(ops.TANH, (self,), {})

    def relu(self):
        return _record(ops.RELU, (self,), {})

    def abs(self):
        return _record(ops.ABS, (self,), {})

    def sqrt(self):
        return elementwise.sqrt(self)

    # --- reductions -------------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False, dtype=None, out=None):
        """Sum over ``axis`` (None: all; an int, negative, or a tuple). ``np.sum(t)`` works too
        (``dtype`` and ``out`` exist only for numpy's sake and must be left unset)."""
        refuse_numpy_extras("sum", dtype=dtype, out=out)
        return _record(ops.SUM, (self,), {"axis": ops.normalize_axis(axis, self._data.ndim, "sum"),
                                          "keepdims": bool(keepdims)})

    def mean(self, axis=None, keepdims=False, dtype=None, out=None):
        """Mean over ``axis``; ``J = L.mean()`` over the m columns is eq 76. ``np.mean(t)``
        works too (``dtype`` and ``out`` must be left unset)."""
        refuse_numpy_extras("mean", dtype=dtype, out=out)
        return _record(ops.MEAN, (self,), {"axis": ops.normalize_axis(axis, self._data.ndim, "mean"),
                                           "keepdims": bool(keepdims)})

    def softmax(self, axis=0):
        """Softmax along ``axis``; the default 0 makes each column (sample) sum to 1."""
        axis = single_axis(axis, self.ndim, "softmax")
        return _record(ops.SOFTMAX, (self,), {"axis": axis})

    def log_softmax(self, axis=0):
        """log(softmax(x)) along ``axis`` (default 0, the units of each sample), stable."""
        axis = single_axis(axis, self.ndim, "log_softmax")
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
        index, indices = _index_inputs(index)
        return _record(ops.GETITEM, (self,) + indices, {"index": index})

    # --- more ops, each defined in its module (ops_reduce, ops_elementwise, ops_join) ---------
    def max(self, axis=None, keepdims=False, out=None):
        return reduce.max(self, axis, keepdims, out)

    def min(self, axis=None, keepdims=False, out=None):
        return reduce.min(self, axis, keepdims, out)

    def argmax(self, axis=None, keepdims=False):
        if grad_mode.trace is not None:  # recorded, so that a replay recomputes the index
            return _traced_arg("argmax", self, axis, keepdims)
        return reduce.argmax(self, axis, keepdims)

    def argmin(self, axis=None, keepdims=False):
        if grad_mode.trace is not None:
            return _traced_arg("argmin", self, axis, keepdims)
        return reduce.argmin(self, axis, keepdims)

    def logsumexp(self, axis=None, keepdims=False):
        return reduce.logsumexp(self, axis, keepdims)

    def var(self, axis=None, ddof=0, keepdims=False, dtype=None, out=None):
        return reduce.var(self, axis, ddof, keepdims, dtype, out)

    def std(self, axis=None, ddof=0, keepdims=False, dtype=None, out=None):
        return reduce.std(self, axis, ddof, keepdims, dtype, out)

    def maximum(self, other):
        return elementwise.maximum(self, other)

    def minimum(self, other):
        return elementwise.minimum(self, other)

    def clip(self, low=None, high=None, out=None):
        return elementwise.clip(self, low, high, out)

    def square(self):
        return elementwise.square(self)

    def sin(self):
        return elementwise.sin(self)

    def cos(self):
        return elementwise.cos(self)

    def leaky_relu(self, negative_slope=0.01):
        return elementwise.leaky_relu(self, negative_slope)

    def elu(self, alpha=1.0):
        return elementwise.elu(self, alpha)

    def gelu(self, approximate="none"):
        return elementwise.gelu(self, approximate)

    def softplus(self):
        return elementwise.softplus(self)

    def split(self, indices_or_sections, axis=0):
        return shape_ops.split(self, indices_or_sections, axis)



def _no_gradient_for(dtype, asked) -> str:
    dtype = str(dtype).rpartition(".")[2]
    if asked is not None:
        return (f"Tensor: requires_grad=True needs floating-point data, but dtype {dtype} was "
                f"asked for; leave dtype unset to get float64")
    return (f"Tensor: requires_grad=True needs floating-point data, but the data is {dtype} (a "
            f"boolean mask has no gradient); pass dtype=np.float64 for its 0.0/1.0 values")


def _checked_data(tensor, value) -> np.ndarray:
    """``value`` as a Tensor's new ``.data``: an ndarray (a numpy scalar for a 0-d tensor) of a
    real floating dtype for a floating tensor, of a real dtype for an integer constant."""
    if isinstance(value, np.generic):
        value = np.asarray(value)
    label = tensor._label()
    if not (isinstance(value, np.ndarray) or backend.is_foreign_array(value)):
        raise TypeError(f".data of {label}: assign an ndarray, got {type(value).__name__} "
                        f"{_short(value)}; convert it first (np.asarray(value, dtype=np.float64))")
    floating = tensor.requires_grad or backend.dtype_kind(tensor.dtype) == "f"
    kind = backend.dtype_kind(value.dtype)
    if kind not in ("f" if floating else "biuf"):
        wanted = "a real floating dtype" if floating else "a real dtype"
        raise TypeError(f".data of {label} (dtype {tensor.dtype}): assign an ndarray of "
                        f"{wanted}, got dtype {value.dtype}" + (
                            "; complex numbers are not supported" if kind == "c"
                            else f"; convert it first (value.astype({tensor.dtype}))"))
    return value


def _checked_grad(tensor, value) -> np.ndarray:
    """``value`` as a Tensor's ``.grad``: an ndarray of its shape and a real floating dtype."""
    if isinstance(value, np.generic):
        value = np.asarray(value)
    label = tensor._label()
    if not (isinstance(value, np.ndarray) or backend.is_foreign_array(value)):
        raise TypeError(f".grad of {label}: assign None or an ndarray, got "
                        f"{type(value).__name__} {_short(value)}")
    kind = backend.dtype_kind(value.dtype)
    if kind != "f":
        raise TypeError(f".grad of {label}: assign an ndarray of a real floating dtype, got dtype "
                        f"{value.dtype}" + ("; complex gradients are not supported"
                                            if kind == "c" else ""))
    if tuple(value.shape) != tuple(tensor.shape):
        raise ShapeError(f".grad of {label}: the gradient must have the tensor's shape "
                         f"{tuple(tensor.shape)}, got {tuple(value.shape)}")
    return value


def _kind_order(dtype) -> int:
    """bool < integers < floating < complex: an in-place result may go down in size within its
    kind (float64 into float32, as numpy's same_kind casting), never down a kind."""
    return {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}.get(backend.dtype_kind(dtype), 4)


def _short(data) -> str:
    text = repr(data)
    return text if len(text) <= 60 else text[:57] + "..."


def _traced(how, x, y):
    """``how(x, y)`` recorded as a compare op (while ag.compile traces), or NotImplemented for
    an operand that is not numbers."""
    inputs = []
    for value in (x, y):
        other = x if value is y else y
        value = value if isinstance(value, Tensor) else _operand(value, other)
        if value is None:
            return NotImplemented
        inputs.append(value)
    return _record(compare.COMPARE, tuple(inputs), {"how": how})


def _traced_arg(how, x, axis, keepdims):
    getattr(reduce, how)(x.data, axis, keepdims)  # its checks, in its own words
    return _record(compare.ARG_EXTREMUM, (x,), {"how": how, "axis": axis, "keepdims": bool(keepdims)})


def _raw(value):
    return value._data if isinstance(value, Tensor) else value


def _index_inputs(index):
    """(index, index Tensors): an integer or boolean Tensor in ``index`` becomes an input of the
    getitem (``shape_ops.IndexInput`` in its place), so a compiled step reads each call's
    indices; anything else is as numpy wants it."""
    parts = index if isinstance(index, tuple) else (index,)
    found, tensors = [], []
    for part in parts:
        if isinstance(part, Tensor) and backend.dtype_kind(part.dtype) in "biu":
            if backend.dtype_kind(part.dtype) == "b" and grad_mode.trace is not None:
                grad_mode.trace.leaves(part, "indexing with a boolean mask (its result's shape "
                                             "depends on the values; use ag.where or * mask)")
            tensors.append(part)
            part = shape_ops.IndexInput(len(tensors))
        found.append(_index_part(part))
    if isinstance(index, tuple):
        return tuple(found), tuple(tensors)
    return found[0], tuple(tensors)


def _index_part(part):
    """An index as the array wants it: a Tensor of integers picks (``x[ag.Tensor([0, 2],
    dtype=int)]``), a boolean Tensor masks (``x[ag.Tensor(x.data > 0)]``). A floating Tensor
    is never an index, whole numbers or not: it is refused, with the way out."""
    if not isinstance(part, Tensor):
        return part
    kind = backend.dtype_kind(part.dtype)
    if kind not in "biu":
        raise IndexError(f"index: a Tensor of {part.dtype} cannot index; index with integers "
                         f"(ag.Tensor([0, 2], dtype=int), a list or an integer array) or a "
                         f"boolean mask (ag.Tensor(x.data > 0))")
    return part.data


# Calling a primitive (``my_op(x, y)``) records it here: ops sits below the engine and does not
# import it.
ops.Primitive.apply = staticmethod(apply)

"""The replay of ``ag.compile``: a traced step written out as one straight-line Python function.

``trace.Program`` holds a traced graph as numbered slots and the order in which the eager
traversal (``core.backward.backpropagate``) ran its vjps. This module writes that program out as
the source of ``replay(args)``: each op's forward, then each vjp in the traversal's order,
then the un-broadcast sums (eq 80) and the additions where a tensor has several consumers, in
the same order as the eager engine adds them, so a replay gives the same numbers bit for bit.

What each op becomes is its kernel (``kernels.KERNELS``): lines of numpy, most of them writing
into buffers allocated once, when the function is written, so a replayed step allocates
nothing but what it hands out. Buffers are never handed out: J and each gradient given to a
leaf are copies. Each buffer holds one value per replay (written once, then only read); the
memory plan (``memory``) lets buffers whose values never live at the same time share one array.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..core.backward import accumulated, sum_to_shape, unbroadcast_axes
from ..core.tensor import Tensor
from ..ops.base import kept_shape
from .kernels import NUMPY, Emit
from .memory import one_element_values_out_of_place, share_buffers


class Writer:
    """The globals of the function being written: numpy's functions, the buffers, the
    constants the kernels name (``Emit.buffer``, ``Emit.constant``)."""

    def __init__(self):
        self.constants = dict(NUMPY, sum_to_shape=sum_to_shape)
        self.buffers = set()  # the names of the constants that are buffers (see Emit.buffer)
        self.n = 0

    def constant(self, prefix, value):
        self.n += 1
        name = f"{prefix}{self.n}"
        self.constants[name] = value
        return name


class Mismatch(Exception):
    """A call the program was not traced for (another shape, dtype, requires_grad, a captured
    leaf that changed): the tape then takes its general path, which finds or makes the right
    program or refuses with the reason."""


def write(program):
    """The source of ``replay(args)`` for ``program`` and the globals it needs: check and load
    this call's arrays (raising Mismatch for anything the trace did not see), the forward and
    backward lines, then each leaf's gradient added to its ``.grad``; returns J."""
    w = Writer()
    lines = _load_lines(program, w)
    emits, effects = {}, []
    consumed = {i for _, _, inputs, _ in program.ops for i in inputs}
    for k, op, inputs, params in program.ops:
        e = Emit(w, op, [f"v{i}" for i in inputs], f"v{k}", tuple(program.shapes[i] for i in inputs),
                 program.shapes[k], program.dtypes[k], params, [program.dtypes[i] for i in inputs])
        e.is_root = k == program.root
        emits[k] = e
        code = [f"# v{k} = {op.name}({', '.join(e.x)})"] + e.kernel.forward(e)
        if k in program.effects and k not in consumed:  # state updates run last, once
            effects += code  # nothing can fail any more (an event reruns the step eagerly)
        else:
            lines += code
    # A leaf's gradient is handed to its .grad as it is when its last piece is written into a
    # new array (out=None) rather than a buffer: its only contribution, or the last addition.
    delivered = set(program.grad_leaves)
    contributions = {}
    for k in program.backward:
        for i in program.inputs_of[k]:
            if program.needs[i]:
                contributions[i] = contributions.get(i, 0) + 1
    arrived = {}
    grad = {program.root: "ROOT_GRAD"}  # slot -> the name holding its gradient so far
    fresh = {}                          # slot -> that name is a new array no one else holds
    for k in program.backward:          # the order the eager traversal ran the vjps in
        op, inputs = program.op_of[k], program.inputs_of[k]
        e = emits[k]
        e.g, e.g_is_one = grad[k], k == program.root
        e.wants = tuple(program.needs[i] for i in inputs)
        e.d = [f"d{k}_{i}" if wanted else "_" for i, wanted in enumerate(e.wants)]
        raws = [e.kernel.grad_shape(position, e.in_shapes, e.out_shape) for position in range(len(inputs))]
        e.hand_out = [i in delivered and contributions.get(i) == 1 and raws[position] is not None
                      for position, i in enumerate(inputs)]
        lines.append(f"# vjp of {op.name} (v{k})")
        lines += e.kernel.vjp(e)
        for position, i in enumerate(inputs):
            if not e.wants[position]:
                continue
            name = e.d[position]
            shape = program.shapes[i]
            raw = raws[position]
            arrived[i] = arrived.get(i, 0) + 1
            last = i in delivered and arrived[i] == contributions[i]
            is_fresh = position in e.fresh
            if raw is None:  # not known before it runs (a user's vjp): checked at run time
                lines.append(f"{name} = sum_to_shape({name}, {shape!r}, {op.name!r})")
            elif raw != shape:  # eq 80: summed over the broadcast axes, as sum_to_shape does
                axes = unbroadcast_axes(shape, raw, op.name)
                kept = kept_shape(raw, axes)
                if axes:
                    target = "None" if last and contributions[i] == 1 else e.buffer(kept)
                    lines.append(f"{name} = add_reduce({name}, {axes!r}, None, {target}, True)")
                    is_fresh = target == "None"
                lines.append(f"{name} = {name}.reshape({shape!r})")  # a view of it
            if raw is None or program.dtypes[i] != program.dtypes[k]:  # dJ/dx has x's dtype
                dtype = w.constant("D", program.dtypes[i])
                lines.append(f"if {name}.dtype != {dtype}: {name} = {name}.astype({dtype})")
            if i in grad:  # a shared subexpression: added in the eager engine's order
                total = f"s{k}_{i}"
                target = "None" if last else e.buffer(shape, program.dtypes[i])
                lines.append(f"{total} = add({grad[i]}, {name}, {target})")
                grad[i], fresh[i] = total, target == "None"
            else:
                grad[i], fresh[i] = name, is_fresh
    lines += effects
    # nothing can fail from here on: each leaf's gradient, copied (a buffer is never handed
    # out), is added to its .grad as backward() adds it
    lines.append("# the gradients, into .grad")
    owners = dict(program.leaves)
    for k in program.grad_leaves:
        if k not in grad:
            continue
        owner = (f"args[{dict(program.arguments)[k]}]" if k not in owners
                 else w.constant("L", owners[k]))
        # a new array is kept as it is (numpy gives a 0-d result as a scalar: made an array)
        first = (f"array({grad[k]}, copy=True)" if not fresh[k]
                 else f"asarray({grad[k]})" if program.shapes[k] == () else grad[k])
        lines += [f"p = {owner}",
                  f"p._grad = {first} if p._grad is None else "
                  f"accumulated(p._grad, {grad[k]}, p._data.dtype)"]
    root = f"v{program.root}"
    J = root if emits[program.root].fresh_result else f"asarray({root}).copy()"
    lines.append(f"return result({J}, None, False, NUMPY_BACKEND)")
    one_element_values_out_of_place(lines, w)
    share_buffers(lines, w.constants, w.buffers)
    source = "\n".join(["def replay(args):"] + ["    " + line for line in lines])
    w.constants.update(ROOT_GRAD=program.root_grad, Tensor=Tensor, ndarray=np.ndarray,
                       Mismatch=Mismatch, accumulated=accumulated, result=Tensor._result,
                       NUMPY_BACKEND=backend.NUMPY)
    return source, w.constants


def _load_lines(program, w):
    """Lines that put this call's arrays in the leaf slots, checking what the trace assumed:
    the arguments' kind, shape, dtype and requires_grad (a Tensor argument a leaf, its array
    numpy's), which of them were one Tensor, and the captured leaves' shape, dtype,
    requires_grad and backend. A tensor's array is read as it is (``_data``): a replay only
    reads it, so the read-only view ``.data`` hands a user while a graph holds it is not needed."""
    lines = [f"if len(args) != {program.n_arguments}: raise Mismatch"]
    for k, position in program.arguments:
        wants = program.needs[k]
        dtype = w.constant("D", program.dtypes[k])
        lines += [f"a = args[{position}]"]
        tensor = f"isinstance(a, Tensor) and a.requires_grad is {wants} and a.grad_fn is None"
        if wants:  # an array has no gradient to receive
            lines += [f"if {tensor}: v{k} = a._data", "else: raise Mismatch"]
        else:
            lines += [f"if type(a) is ndarray: v{k} = a", f"elif {tensor}: v{k} = a._data",
                      "else: raise Mismatch"]
        lines += [f"if type(v{k}) is not ndarray or v{k}.shape != {program.shapes[k]!r} or "
                  f"{_other_dtype(f'v{k}', dtype)}: raise Mismatch"]
    for first, other in program.aliases:
        lines.append(f"if args[{first}] is not args[{other}]: raise Mismatch")
    for k, tensor in program.leaves:
        leaf, dtype = w.constant("L", tensor), w.constant("D", program.dtypes[k])
        lines += [f"v{k} = {leaf}._data",
                  f"if type(v{k}) is not ndarray or v{k}.shape != {program.shapes[k]!r} or "
                  f"{_other_dtype(f'v{k}', dtype)} or {leaf}.requires_grad is not "
                  f"{program.needs[k]}: raise Mismatch"]
    return lines


def _other_dtype(array, dtype):
    """The test that ``array``'s dtype is not ``dtype`` (a name): numpy's dtypes of the usual
    kinds are one object each, so the identity decides at once, and equality otherwise."""
    return f"({array}.dtype is not {dtype} and {array}.dtype != {dtype})"


def make(program):
    """(replay, source): the generated function of ``program`` and its text. It runs with
    numpy's floating-point events raised (FloatingPointError), before anything is delivered."""
    source, constants = write(program)
    namespace = dict(constants)
    exec(compile(source, "<ag.compile>", "exec"), namespace)  # noqa: S102 - our own source
    return _raising_on_floating_point_events(namespace["replay"]), source


if int(np.__version__.split(".")[0]) >= 2:
    def _raising_on_floating_point_events(function):
        # numpy 2's errstate as a decorator keeps its state per call (thread-safe)
        return np.errstate(over="raise", divide="raise", invalid="raise")(function)
else:  # pragma: no cover - numpy 1's errstate decorator shares state between threads
    def _raising_on_floating_point_events(function):
        def guarded(args):
            with np.errstate(over="raise", divide="raise", invalid="raise"):
                return function(args)
        return guarded


def run_kernel(op, arrays, params, g, *, root=False):
    """``op``'s kernel run alone, for the test that holds it to the primitive's own rules:
    (output, the gradient of each input as its vjp kernel leaves it) for input ``arrays``, the op's
    ``params`` and the output's gradient ``g`` (dJ/dJ when ``root``)."""
    w = Writer()
    xs = [f"x{i}" for i in range(len(arrays))]
    expected = np.asarray(op.forward(*arrays, **params))
    e = Emit(w, op, xs, "y", tuple(a.shape for a in arrays), expected.shape, expected.dtype, params,
             [np.asarray(a).dtype for a in arrays])
    e.g, e.g_is_one = "g", root
    e.wants = (True,) * len(arrays)
    e.hand_out = (False,) * len(arrays)
    e.d = [f"d{i}" for i in range(len(arrays))]
    backward = e.kernel.vjp(e) if op.differentiable else [f"{d} = None" for d in e.d]
    lines = e.kernel.forward(e) + backward + [f"return y, ({', '.join(e.d)},)"]
    source = "\n".join([f"def run({', '.join(xs)}, g):"] + ["    " + line for line in lines])
    namespace = dict(w.constants)
    exec(compile(source, "<kernel>", "exec"), namespace)  # noqa: S102 - our own source
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # as in a replay
        return namespace["run"](*arrays, g)

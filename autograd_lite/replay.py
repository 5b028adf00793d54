"""The replay of ``ag.compile``: a traced step written out as one straight-line Python function.

``tape.Program`` holds a traced graph as numbered slots and the order in which the eager
traversal (``autodiff.backpropagate``) ran its vjps. This module writes that program out as
the source of ``compute(values)``: each op's forward, then each vjp in the traversal's order,
then the un-broadcast sums (eq 80) and the additions where a tensor has several consumers, in
the same order as the eager engine adds them, so a replay gives the same numbers bit for bit.

What each op becomes is written beside its rules, in ``ops``: a primitive's ``emit_forward``
and ``emit_vjp`` return the lines of numpy it contributes, given the names of its values in an
``Emit``. Most write into buffers allocated once, when the function is written (``e.buffer``),
so a replayed step allocates nothing but what it hands out. The default, for a primitive that
defines no kernel of its own (a user's), calls its own ``forward`` and ``vjp``.

Buffers are never handed out: J and each gradient given to a leaf are copies. Each buffer
holds one value per replay (written once, then only read).
"""
from __future__ import annotations

import numpy as np

from .autodiff import sum_to_shape, unbroadcast_axes

# the numpy names generated code may call (bound as globals of the generated function)
NUMPY_NAMES = ("add", "subtract", "multiply", "divide", "matmul", "negative", "exp", "log",
               "log1p", "tanh", "maximum", "greater", "absolute", "sign", "asarray",
               "broadcast_to", "transpose", "reshape", "power", "sqrt", "where", "zeros",
               "empty_like")


class Emit:
    """The names and shapes one op's kernel writes its lines with.

    ``x``: the names of the input values; ``o``: the output's name (set it in emit_forward,
    read it in emit_vjp); ``g``: the name of dJ/d(output) (emit_vjp); ``d``: per input, the
    name to set to its gradient (emit_vjp; only where ``wants[i]``); ``in_shapes``,
    ``out_shape``, ``dtype``, ``params``; ``g_is_one``: g is dJ/dJ = 1 (the loss itself).
    ``op`` and ``kwargs`` spell a call of the primitive itself: ``f"{e.op}.forward(x{e.kwargs})"``.
    """

    def __init__(self, writer, op, x, o, in_shapes, out_shape, dtype, params):
        self.writer = writer
        self.x, self.o = x, o
        self.in_shapes, self.out_shape, self.dtype, self.params = in_shapes, out_shape, dtype, params
        self.op = writer.constant("OP", op)
        self.kwargs = f", **{writer.constant('P', dict(params))}" if params else ""
        self.g = self.d = self.wants = None
        self.g_is_one = False

    def buffer(self, shape=None, dtype=None):
        """The name of an array allocated now, once, and written by every replay."""
        shape = self.out_shape if shape is None else shape
        return self.writer.constant("B", np.empty(shape, self.dtype if dtype is None else dtype))

    def constant(self, value):
        """The name of ``value`` in the generated function."""
        return self.writer.constant("C", value)


class _Writer:
    def __init__(self):
        self.constants = {name: getattr(np, name) for name in NUMPY_NAMES}
        self.constants["add_reduce"] = np.add.reduce
        self.constants["sum_to_shape"] = sum_to_shape
        self.n = 0

    def constant(self, prefix, value):
        self.n += 1
        name = f"{prefix}{self.n}"
        self.constants[name] = value
        return name


def write(program):
    """The source of ``compute(values)`` for ``program`` and the globals it needs. ``values``
    holds the leaves' arrays by slot; it returns J's array and, per leaf in
    ``program.grad_leaves``, its gradient (or None where none arrived)."""
    w = _Writer()
    lines = [f"v{k} = values[{k}]" for k in program.leaf_slots]
    emits, effects = {}, []
    consumed = {i for _, _, inputs, _ in program.ops for i in inputs}
    for k, op, inputs, params in program.ops:
        e = Emit(w, op, [f"v{i}" for i in inputs], f"v{k}", tuple(program.shapes[i] for i in inputs),
                 program.shapes[k], program.dtypes[k], params)
        emits[k] = e
        code = [f"# v{k} = {op.name}({', '.join(e.x)})"] + op.emit_forward(e)
        if k in program.effects and k not in consumed:  # state updates run last, once
            effects += code  # nothing can fail any more (an event reruns the step eagerly)
        else:
            lines += code
    grad = {program.root: "ROOT_GRAD"}  # slot -> the name holding its gradient so far
    for k in program.backward:          # the order the eager traversal ran the vjps in
        op, inputs = program.op_of[k], program.inputs_of[k]
        e = emits[k]
        e.g, e.g_is_one = grad[k], k == program.root
        e.wants = tuple(program.needs[i] for i in inputs)
        e.d = [f"d{k}_{i}" if wanted else "_" for i, wanted in enumerate(e.wants)]
        lines.append(f"# vjp of {op.name} (v{k})")
        lines += op.emit_vjp(e)
        for position, i in enumerate(inputs):
            if not e.wants[position]:
                continue
            name = e.d[position]
            shape = program.shapes[i]
            raw = op.grad_shape(position, e.in_shapes, e.out_shape)
            if raw is None:  # not known before it runs (a user's vjp): checked at run time
                lines.append(f"{name} = sum_to_shape({name}, {shape!r}, {op.name!r})")
            elif raw != shape:  # eq 80: summed over the broadcast axes, as sum_to_shape does
                axes = unbroadcast_axes(shape, raw, op.name)
                kept = tuple(1 if a in axes else n for a, n in enumerate(raw))
                if axes:
                    lines.append(f"{name} = add_reduce({name}, {axes!r}, None, "
                                 f"{e.buffer(kept)}, True)")
                lines.append(f"{name} = {name}.reshape({shape!r})")
            if i in grad:  # a shared subexpression: added in the eager engine's order
                total = f"s{k}_{i}"
                lines.append(f"{total} = add({grad[i]}, {name}, {e.buffer(shape, program.dtypes[i])})")
                grad[i] = total
            else:
                grad[i] = name
    lines += effects
    results = [f"v{program.root}"] + [grad.get(k, "None") for k in program.grad_leaves]
    lines.append(f"return ({', '.join(results)},)")
    source = "\n".join(["def compute(values):"] + ["    " + line for line in lines])
    w.constants["ROOT_GRAD"] = program.root_grad
    return source, w.constants


def make(program):
    """(compute, source): the generated function of ``program`` and its text."""
    source, constants = write(program)
    namespace = dict(constants)
    exec(compile(source, "<ag.compile>", "exec"), namespace)  # noqa: S102 - our own source
    return namespace["compute"], source


def run_kernel(op, arrays, params, g, *, root=False):
    """``op``'s kernel run alone, for the test that holds it to the primitive's own rules:
    (output, the gradient of each input as emit_vjp leaves it) for input ``arrays``, the op's
    ``params`` and the output's gradient ``g`` (dJ/dJ when ``root``)."""
    w = _Writer()
    xs = [f"x{i}" for i in range(len(arrays))]
    expected = np.asarray(op.forward(*arrays, **params))
    e = Emit(w, op, xs, "y", tuple(a.shape for a in arrays), expected.shape, expected.dtype, params)
    e.g, e.g_is_one = "g", root
    e.wants = (True,) * len(arrays)
    e.d = [f"d{i}" for i in range(len(arrays))]
    backward = op.emit_vjp(e) if op.differentiable else [f"{d} = None" for d in e.d]
    lines = op.emit_forward(e) + backward + [f"return y, ({', '.join(e.d)},)"]
    source = "\n".join([f"def run({', '.join(xs)}, g):"] + ["    " + line for line in lines])
    namespace = dict(w.constants)
    exec(compile(source, "<kernel>", "exec"), namespace)  # noqa: S102 - our own source
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # as in a replay
        return namespace["run"](*arrays, g)

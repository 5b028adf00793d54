"""The replay of ``ag.compile``: a traced step written out as one straight-line Python function.

``tape.Program`` holds a traced graph as numbered slots and the order in which the eager
traversal (``core.backward.backpropagate``) ran its vjps. This module writes that program out as
the source of ``compute(values)``: each op's forward, then each vjp in the traversal's order,
then the un-broadcast sums (eq 80) and the additions where a tensor has several consumers, in
the same order as the eager engine adds them, so a replay gives the same numbers bit for bit.

What each op becomes is written beside its rules, in ``ops``: a primitive's ``emit_forward``
and ``emit_vjp`` return the lines of numpy it contributes, given the names of its values in an
``Emit``. Most write into buffers allocated once, when the function is written (``e.buffer``),
so a replayed step allocates nothing but what it hands out. The default, for a primitive that
defines no kernel of its own (a user's), calls its own ``forward`` and ``vjp``.

Buffers are never handed out: J and each gradient given to a leaf are copies. Each buffer
holds one value per replay (written once, then only read); buffers whose values never live
at the same time share one array (``_share_buffers``, the replay's memory plan).
"""
from __future__ import annotations

import ast

import numpy as np

from ..core.backward import sum_to_shape, unbroadcast_axes
from ..core.backward import accumulated
from ..core.tensor import Tensor

# the numpy names generated code may call (bound as globals of the generated function)
NUMPY_NAMES = ("array", "add", "subtract", "multiply", "divide", "matmul", "negative", "exp", "log",
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
    A step done in place is best written on a local name (``t = f(x, {e.buffer()})``, then
    ``g(t, t)``): on a 1-element array the replay then writes it into a second buffer instead
    (``_out_of_place_on_one_element``).
    """

    def __init__(self, writer, op, x, o, in_shapes, out_shape, dtype, params):
        self.writer = writer
        self.x, self.o = x, o
        self.in_shapes, self.out_shape, self.dtype, self.params = in_shapes, out_shape, dtype, params
        self.op = writer.constant("OP", op)
        self.kwargs = f", **{writer.constant('P', dict(params))}" if params else ""
        self.g = self.d = self.wants = None
        self.g_is_one = False
        self.op_primitive = op
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
        for J, which is handed out."""
        if self.is_root and self.out_shape:  # (numpy gives a 0-d result as a scalar, and a
            self.fresh_result = True             # scalar cannot be written into: a buffer)
            return "None"
        return self.buffer()

    def out(self, i):
        """Where input i's gradient is written: a buffer, or ``None`` (a new array each call)
        when it goes to a leaf's .grad as it is, so that it need not be copied there."""
        shape = self.op_primitive.grad_shape(i, self.in_shapes, self.out_shape)
        if self.hand_out[i] and shape:  # (not 0-d: a scalar cannot be written into)
            self.fresh.add(i)
            return "None"
        return self.buffer(shape)

    def constant(self, value):
        """The name of ``value`` in the generated function."""
        return self.writer.constant("C", value)

    def number(self, value):
        """The name of ``value`` as a 0-d array of the output's dtype, for an operand that
        meets arrays of that dtype: the same numbers as the Python number in the op's own
        forward and vjp, and numpy converts it faster. Where the dtype cannot hold ``value``
        exactly (a count past 2**24 in float32), the Python number itself."""
        array = np.array(value, dtype=self.dtype)
        if self.dtype.kind != "f" or array.item() != value:
            return repr(value)
        return self.writer.constant("N", array)


class _Writer:
    def __init__(self):
        self.constants = {name: getattr(np, name) for name in NUMPY_NAMES}
        self.constants["add_reduce"] = np.add.reduce
        self.constants["sum_to_shape"] = sum_to_shape
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
    w = _Writer()
    lines = _load_lines(program, w)
    emits, effects = {}, []
    consumed = {i for _, _, inputs, _ in program.ops for i in inputs}
    for k, op, inputs, params in program.ops:
        e = Emit(w, op, [f"v{i}" for i in inputs], f"v{k}", tuple(program.shapes[i] for i in inputs),
                 program.shapes[k], program.dtypes[k], params)
        e.is_root = k == program.root
        emits[k] = e
        code = [f"# v{k} = {op.name}({', '.join(e.x)})"] + op.emit_forward(e)
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
        raws = [op.grad_shape(position, e.in_shapes, e.out_shape) for position in range(len(inputs))]
        e.hand_out = [i in delivered and contributions.get(i) == 1 and raws[position] is not None
                      for position, i in enumerate(inputs)]
        lines.append(f"# vjp of {op.name} (v{k})")
        lines += op.emit_vjp(e)
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
                kept = tuple(1 if a in axes else n for a, n in enumerate(raw))
                if axes:
                    target = "None" if last and contributions[i] == 1 else e.buffer(kept)
                    lines.append(f"{name} = add_reduce({name}, {axes!r}, None, {target}, True)")
                    is_fresh = target == "None"
                lines.append(f"{name} = {name}.reshape({shape!r})")  # a view of it
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
        first = f"asarray({grad[k]})" if fresh[k] else f"array({grad[k]}, copy=True)"
        lines += [f"p = {owner}",
                  f"p._grad = {first} if p._grad is None else "
                  f"accumulated(p._grad, {grad[k]}, p.data.dtype)"]
    root = f"v{program.root}"
    J = f"asarray({root})" if emits[program.root].fresh_result else f"asarray({root}).copy()"
    lines.append(f"return result({J}, None, False)")
    _out_of_place_on_one_element(lines, w)
    _share_buffers(lines, w.constants, w.buffers)
    source = "\n".join(["def replay(args):"] + ["    " + line for line in lines])
    w.constants.update(ROOT_GRAD=program.root_grad, Tensor=Tensor, ndarray=np.ndarray,
                       Mismatch=Mismatch, accumulated=accumulated, result=Tensor._result)
    return source, w.constants


# --- a memory plan: buffers whose values never live at the same time share one array ---------

# numpy calls whose result is a new array or their own out= buffer, never a view of an input
_NEW_OR_OUT = {"add_reduce", "matmul"} | {name for name in NUMPY_NAMES
                                          if isinstance(getattr(np, name), np.ufunc)}
# functions of the generated code that keep no array they are given
_KEEP_NOTHING = set(NUMPY_NAMES) | {"add_reduce", "sum_to_shape", "accumulated", "result"}


def _share_buffers(lines, constants, buffers):
    """Let the ``buffers`` (names in ``constants``) share arrays where their values' lifetimes
    do not overlap, as numpy's own allocator reuses freed memory in a hand-written step.
    Without it a deep network's replay holds a buffer per intermediate value, several times
    the step's working set, and runs slower for it once other work has pushed those buffers
    out of the CPU's caches.

    A buffer is live from the statement that first writes it to the last one that reads it
    or any name that may refer to it: a name set from a numpy call that makes a new array or
    fills its ``out=`` refers only to that buffer; any other name may be a view of every
    buffer its statement touches (``g.reshape``, ``x.T``, a pass-through ``d = g``, a user's
    vjp). A buffer given to code that may keep it (a primitive's own forward or vjp) is kept
    for the whole replay. Two buffers of one shape and dtype share an array when one's last
    use comes before the other's first write, never in the same statement, so no numpy call
    reads what it writes. A statement of another kind than the generated ones (a loop, a
    ``with``, from a user's emitter) leaves every buffer apart."""
    statements = ast.parse("\n".join(lines)).body
    refers = {}  # name -> the buffers its value may live in
    first, last = {}, {}
    everything = len(statements)  # "until the end"
    for n, statement in enumerate(statements):
        if not isinstance(statement, (ast.Assign, ast.AugAssign, ast.Expr, ast.If, ast.Return)):
            return
        touched = _follow(statement, refers, buffers)
        kept = any(isinstance(node, ast.Call) and not _keeps_nothing(node.func, constants, buffers)
                   for node in ast.walk(statement))
        for buffer in touched:
            first.setdefault(buffer, n)
            last[buffer] = everything if kept or last.get(buffer) == everything else n
    free = {}  # (shape, dtype) -> [[last statement of its current user, array]]
    for buffer in sorted(first, key=first.get):
        array = constants[buffer]
        pool = free.setdefault((array.shape, array.dtype), [])
        for entry in pool:
            if entry[0] < first[buffer]:
                entry[0] = last[buffer]
                constants[buffer] = entry[1]
                break
        else:
            pool.append([last[buffer], array])


def _follow(statement, refers, buffers) -> set:
    """The buffers ``statement`` may read or write; updates ``refers`` (name -> the buffers
    its value may live in) for the names it sets. A name set from a numpy call that makes a
    new array or fills its ``out=`` refers only to that buffer; any other may be a view of
    every buffer the statement touches."""
    touched = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name):
            touched |= {node.id} if node.id in buffers else refers.get(node.id, set())
    fresh = (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call)
             and isinstance(statement.value.func, ast.Name) and statement.value.func.id in _NEW_OR_OUT)
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            refers[node.id] = ({name.id for name in ast.walk(statement.value)
                                if isinstance(name, ast.Name) and name.id in buffers}
                               if fresh else touched)
    return touched


def _out_of_place_on_one_element(lines, writer):
    """Rewrite ``f(x, ..., x)``, a numpy ufunc writing into one of its own inputs, as
    ``x = f(x, ..., other)`` where x's buffer holds one element, alternating between that
    buffer and a second one of its shape. The same numbers; but numpy takes about three times
    as long (0.75 us against 0.26) over a 1-element array its ufunc both reads and writes,
    and the seed's output layer (A[2], Z[2], the loss) is made of such. Only where no other
    name may refer to the buffer, and never to a buffer a statement names directly but the
    one that sets x, so nothing else sees the value move."""
    statements = ast.parse("\n".join(lines)).body
    refers, partner = {}, {}
    named = {}  # buffer -> how many statements name it
    for statement in statements:
        for buffer in {node.id for node in ast.walk(statement) if isinstance(node, ast.Name)}:
            named[buffer] = named.get(buffer, 0) + 1
    for statement in statements:
        if not isinstance(statement, (ast.Assign, ast.AugAssign, ast.Expr, ast.If, ast.Return)):
            return
        name = _written_in_place(statement, writer.constants)
        buffer = next(iter(refers.get(name, ())), None)
        if (buffer is not None and refers[name] == {buffer} and writer.constants[buffer].size == 1
                and named.get(buffer, 0) <= 1 and statement.lineno == statement.end_lineno
                and not any(buffer in held for other, held in refers.items() if other != name)):
            if buffer not in partner:
                other = writer.constant("B", np.empty_like(writer.constants[buffer]))
                writer.buffers.add(other)
                partner[buffer], partner[other] = other, buffer
            call = statement.value
            if call.keywords:
                call.keywords[0].value = ast.Name(partner[buffer], ast.Load())
            else:
                call.args[-1] = ast.Name(partner[buffer], ast.Load())
            statement = ast.Assign([ast.Name(name, ast.Store())], call, lineno=statement.lineno)
            lines[statement.lineno - 1] = ast.unparse(statement)
        _follow(statement, refers, writer.buffers)


def _written_in_place(statement, constants):
    """The local name a numpy ufunc call statement writes into (its ``out``) when it is also
    one of the call's inputs, else None."""
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return None
    call = statement.value
    if not (isinstance(call.func, ast.Name) and call.func.id in _NEW_OR_OUT
            and isinstance(getattr(np, call.func.id, None), np.ufunc)):
        return None
    nin = getattr(np, call.func.id).nin
    if [k.arg for k in call.keywords] == ["out"] and len(call.args) == nin:
        out = call.keywords[0].value
    elif not call.keywords and len(call.args) == nin + 1:
        out = call.args[-1]
    else:
        return None
    inputs = call.args[:nin]
    if (isinstance(out, ast.Name) and out.id not in constants
            and any(isinstance(x, ast.Name) and x.id == out.id for x in inputs)):
        return out.id
    return None


def _keeps_nothing(function, constants, buffers) -> bool:
    """Whether a call of ``function`` (an ast node) surely keeps no array it is given: one of
    the generated code's own functions, or a method of an array (``g.reshape``)."""
    if isinstance(function, ast.Name):
        return function.id in _KEEP_NOTHING
    if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name):
        return function.value.id not in constants or function.value.id in buffers
    return False


def _load_lines(program, w):
    """Lines that put this call's arrays in the leaf slots, checking what the trace assumed:
    the arguments' kind, shape, dtype and requires_grad, which of them were one Tensor, and
    the captured leaves' shape, dtype and requires_grad (their .data is read afresh)."""
    lines = [f"if len(args) != {program.n_arguments}: raise Mismatch"]
    for k, position in program.arguments:
        wants = program.needs[k]
        dtype = w.constant("D", program.dtypes[k])
        lines += [f"a = args[{position}]",
                  f"if type(a) is Tensor and a.requires_grad is {wants}: v{k} = a.data",
                  f"elif type(a) is ndarray and {not wants}: v{k} = a",
                  f"else: raise Mismatch",
                  f"if v{k}.shape != {program.shapes[k]!r} or v{k}.dtype != {dtype}: raise Mismatch"]
    for first, other in program.aliases:
        lines.append(f"if args[{first}] is not args[{other}]: raise Mismatch")
    for k, tensor in program.leaves:
        leaf, dtype = w.constant("L", tensor), w.constant("D", program.dtypes[k])
        lines += [f"v{k} = {leaf}.data",
                  f"if v{k}.shape != {program.shapes[k]!r} or v{k}.dtype != {dtype} or "
                  f"{leaf}.requires_grad is not {program.needs[k]}: raise Mismatch"]
    return lines


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
    (output, the gradient of each input as emit_vjp leaves it) for input ``arrays``, the op's
    ``params`` and the output's gradient ``g`` (dJ/dJ when ``root``)."""
    w = _Writer()
    xs = [f"x{i}" for i in range(len(arrays))]
    expected = np.asarray(op.forward(*arrays, **params))
    e = Emit(w, op, xs, "y", tuple(a.shape for a in arrays), expected.shape, expected.dtype, params)
    e.g, e.g_is_one = "g", root
    e.wants = (True,) * len(arrays)
    e.hand_out = (False,) * len(arrays)
    e.d = [f"d{i}" for i in range(len(arrays))]
    backward = op.emit_vjp(e) if op.differentiable else [f"{d} = None" for d in e.d]
    lines = op.emit_forward(e) + backward + [f"return y, ({', '.join(e.d)},)"]
    source = "\n".join([f"def run({', '.join(xs)}, g):"] + ["    " + line for line in lines])
    namespace = dict(w.constants)
    exec(compile(source, "<kernel>", "exec"), namespace)  # noqa: S102 - our own source
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # as in a replay
        return namespace["run"](*arrays, g)

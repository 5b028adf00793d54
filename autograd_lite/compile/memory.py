"""The replay's memory plan: which buffers may share one array, and where a 1-element value is
better written into a second buffer. Both read the generated lines (``replay.write``) with
``ast`` and change only which array a name refers to, never a number.
"""
from __future__ import annotations

import ast

import numpy as np

from .kernels import NUMPY

# numpy calls whose result is a new array or their own out= buffer, never a view of an input
_NEW_OR_OUT = {"add_reduce", "matmul"} | {name for name, function in NUMPY.items()
                                          if isinstance(function, np.ufunc)}
# functions of the generated code that keep no array they are given
_KEEP_NOTHING = set(NUMPY) | {"sum_to_shape", "accumulated", "result"}


def share_buffers(lines, constants, buffers):
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


def one_element_values_out_of_place(lines, writer):
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

"""The fast replay of ``ag.compile``: a traced graph written out as one straight-line Python
function of numpy calls into buffers allocated once.

``tape._Program`` replays any graph by calling each op's ``forward`` and ``vjp``: correct for
every primitive, but each step allocates every array afresh and pays an interpreter loop per
op. For the common primitives (the table ``KERNELS`` below) this module writes the same math
as numpy calls with an ``out=`` buffer, generates the source of one function that makes them
in order, forward then backward, and ``exec``s it once. A replayed step then allocates only
what it hands to the user (J and each ``.grad``) and runs no loop, no dict lookup, no tuple
building per op: that is how it gets under the hand-written numpy step. ``Tape.source`` shows
the generated function; it reads like the step a learner writes by hand from eqs 33-34, 76
and 77-84.

The vjp rules stay written once, in ``ops``: a kernel here repeats the same numpy expression
(same operations, same order, so the same rounding), and ``tests/test_compile.py`` checks
every kernel of the table against its primitive's own ``forward`` and ``vjp``, bit for bit,
so the two cannot drift apart. A graph with any other primitive (or a dtype other than
float64) is replayed by ``_Program.replay`` as before.

Buffers are never handed out: J and every leaf's gradient are fresh arrays (copies, where the
gradient is a view of a buffer or of dJ/dJ; added out of place, as ``_accumulate_into`` does,
when ``.grad`` already holds one), so a later replay never overwrites what an earlier
one returned. Each buffer holds one value per replay (written once, then only read), so a
pass-through gradient (add's ``g, g``) may safely alias another buffer.

Floating-point events: the buffered steps run under ``np.errstate(over, divide, invalid =
"raise")``. On any such event (sigmoid's e^-z overflowing, a log of 0, ...) the replay is
abandoned before it has changed anything the user can see and the step is replayed by
``_Program.replay`` instead, which gives exactly the eager engine's values and warnings.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .autodiff import _accumulate_into, _plan_sum
from .tensor import Tensor

F64 = np.dtype(np.float64)


# --- the kernels: forward and vjp of the common primitives, as lines of numpy calls -------------
#
# A forward kernel ``forward(e, r, xs, out, in_shapes, out_shape, params)`` returns the lines
# that set the name ``r`` to the op's output; ``xs`` are the input names, ``out`` the name of
# the buffer to write into, or "None" for a fresh array. A vjp kernel ``vjp(e, i, g, xs, o, r,
# out, in_shapes, out_shape, params)`` returns (lines, name) for input i's gradient before any
# un-broadcasting (in the shape ``raw_shape`` gives), written into ``out`` and named ``r``; or,
# where ``vjp_writes[i]`` is False, ([], an expression that is a view of g). ``o`` names the
# output, ``e.scratch(shape, dtype)`` gives a buffer for intermediate steps.

def _elementwise_raw_shape(i, in_shapes, out_shape):
    return out_shape  # the engine sums it back to the input's shape (eq 80)


def _input_raw_shape(i, in_shapes, out_shape):
    return in_shapes[i]


class Kernel:
    """One primitive's forward and vjp as numpy calls. ``accepts(in_shapes, params)`` says
    whether the kernel applies (else the graph is replayed the general way). ``vjp_writes[i]``
    is False where input i's gradient is a view (of g), not written into ``out``."""

    def __init__(self, forward, vjp, raw_shape=_input_raw_shape, accepts=None, vjp_writes=(True, True)):
        self.forward, self.vjp, self.raw_shape = forward, vjp, raw_shape
        self.accepts = accepts or (lambda in_shapes, params: True)
        self.vjp_writes = vjp_writes


def _ufunc_forward(name):
    def forward(e, r, xs, out, in_shapes, out_shape, params):
        return [f"{r} = {name}({', '.join(xs)}, {out})"]
    return forward


def _add_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    return [], g                                                    # g, g


def _sub_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    return ([], g) if i == 0 else ([f"{r} = negative({g}, {out})"], r)  # g, -g


def _mul_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    return [f"{r} = multiply({g}, {xs[1 - i]}, {out})"], r     # g * y, g * x


def _div_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    x, y = xs
    if i == 0:
        return [f"{r} = divide({g}, {y}, {out})"], r             # g / y
    return [f"{r} = negative({g}, {out})", f"multiply({r}, {o}, {r})",
            f"divide({r}, {y}, {r})"], r                       # -g * output / y


# NOTE: 2-D matmul as np.dot: the same BLAS product (bit for bit, the kernel test checks it) at
# about half the cost of the matmul ufunc on the seed's tiny matrices (0.44 against 0.86 us)
def _matmul_forward(e, r, xs, out, in_shapes, out_shape, params):
    return [f"{r} = dot({xs[0]}, {xs[1]}, {out})"]                  # eq 33: W A


def _matmul_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    x, y = xs                                                        # eqs 79-83
    if i == 0:
        return [f"{r} = dot({g}, {y}.T, {out})"], r                  # dW = dZ A^T
    return [f"{r} = dot({x}.T, {g}, {out})"], r                      # dA = W^T dZ


def _neg_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    return [f"{r} = negative({g}, {out})"], r


def _exp_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    return [f"{r} = multiply({g}, {o}, {out})"], r               # g e^x


def _log_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    return [f"{r} = divide({g}, {xs[0]}, {out})"], r             # g / x


def _sigmoid_forward(e, r, xs, out, in_shapes, out_shape, params):
    # eq 7 in one array, as Sigmoid.forward's fast path: -z, e^-z, 1 + e^-z, 1 / (1 + e^-z).
    # Where e^-z overflows the errstate raises and the step is replayed the general way.
    return [f"{r} = negative({xs[0]}, {out})", f"exp({r}, {r})", f"add({r}, 1.0, {r})",
            f"divide(1.0, {r}, {r})"]


def _sigmoid_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    t = e.scratch(out_shape)                                          # eq 8: g s (1 - s)
    return [f"{r} = multiply({g}, {o}, {out})", f"subtract(1.0, {o}, {t})",
            f"multiply({r}, {t}, {r})"], r


def _tanh_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    t = e.scratch(out_shape)                                          # g (1 - tanh^2)
    return [f"multiply({o}, {o}, {t})", f"subtract(1.0, {t}, {t})",
            f"{r} = multiply({g}, {t}, {out})"], r


def _relu_forward(e, r, xs, out, in_shapes, out_shape, params):
    return [f"{r} = maximum({xs[0]}, 0.0, out={out})"]


def _relu_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    mask = e.scratch(out_shape, np.bool_)                             # g [x > 0]
    return [f"greater({xs[0]}, 0, {mask})", f"{r} = multiply({g}, {mask}, {out})"], r


def _sum_forward(e, r, xs, out, in_shapes, out_shape, params):
    return [f"{r} = add_reduce({xs[0]}, {params['axis']!r}, None, {out}, {params['keepdims']!r})"]


def _sum_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    shape = in_shapes[0]                                              # g repeated (a view)
    kept = tuple(1 if a in params["axis"] else n for a, n in enumerate(shape))
    return [], f"broadcast_to({g}.reshape({kept!r}), {shape!r})"


def _transpose_forward(e, r, xs, out, in_shapes, out_shape, params):
    return [f"{r} = transpose({xs[0]}, {params['axes']!r})"]       # a view, as forward gives


def _transpose_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    axes = params["axes"]
    if axes is None:
        return [], f"{g}.transpose()"
    inverse = tuple(int(a) for a in np.argsort([a % len(axes) for a in axes]))
    return [], f"{g}.transpose({inverse!r})"


def _bce_forward(e, r, xs, out, in_shapes, out_shape, params):
    # eqs 1, 76 as BinaryCrossEntropyWithLogits.forward: max(z, 0) - z y + log(1 + e^-|z|)
    z, y = xs
    t, u = e.scratch(in_shapes[0]), e.scratch(in_shapes[0])
    m = in_shapes[0][-1]
    return [f"maximum({z}, 0.0, out={t})", f"multiply({z}, {y}, {u})", f"subtract({t}, {u}, {t})",
            f"absolute({z}, {u})", f"negative({u}, {u})", f"exp({u}, {u})", f"log1p({u}, {u})",
            f"add({t}, {u}, {t})", f"{r} = asarray(add_reduce({t}, None) / {m})"]


def _bce_vjp(e, i, g, xs, o, r, out, in_shapes, out_shape, params):
    z, y = xs
    m = in_shapes[0][-1]
    if i == 0:                                                        # eq 78: (s(Z) - Y) / m
        # NOTE: times g skipped when g is dJ/dJ = 1 (J is this loss): x * 1.0 is x exactly
        return [f"{r} = negative({z}, {out})", f"exp({r}, {r})", f"add({r}, 1.0, {r})",
                f"divide(1.0, {r}, {r})", f"subtract({r}, {y}, {r})"] \
            + ([] if g == "ROOT_GRAD" else [f"multiply({r}, {g}, {r})"]) \
            + [f"divide({r}, {m}, {r})"], r
    return [f"{r} = negative({z}, {out})", f"multiply({g}, {r}, {r})",
            f"divide({r}, {m}, {r})"], r                       # -g z / m


def _two_d(in_shapes, params):
    return len(in_shapes[0]) == 2 and len(in_shapes[1]) == 2


def _not_0d(in_shapes, params):
    return len(in_shapes[0]) > 0


KERNELS = {
    ops.ADD: Kernel(_ufunc_forward("add"), _add_vjp, _elementwise_raw_shape, vjp_writes=(False, False)),
    ops.SUB: Kernel(_ufunc_forward("subtract"), _sub_vjp, _elementwise_raw_shape, vjp_writes=(False, True)),
    ops.MUL: Kernel(_ufunc_forward("multiply"), _mul_vjp, _elementwise_raw_shape),
    ops.DIV: Kernel(_ufunc_forward("divide"), _div_vjp, _elementwise_raw_shape),
    ops.MATMUL: Kernel(_matmul_forward, _matmul_vjp, accepts=_two_d),
    ops.NEG: Kernel(_ufunc_forward("negative"), _neg_vjp),
    ops.EXP: Kernel(_ufunc_forward("exp"), _exp_vjp),
    ops.LOG: Kernel(_ufunc_forward("log"), _log_vjp),
    ops.SIGMOID: Kernel(_sigmoid_forward, _sigmoid_vjp, accepts=_not_0d),
    ops.TANH: Kernel(_ufunc_forward("tanh"), _tanh_vjp),
    ops.RELU: Kernel(_relu_forward, _relu_vjp),
    ops.SUM: Kernel(_sum_forward, _sum_vjp, vjp_writes=(False,)),
    ops.TRANSPOSE: Kernel(_transpose_forward, _transpose_vjp, vjp_writes=(False,)),
    ops.BCE_WITH_LOGITS: Kernel(_bce_forward, _bce_vjp),
}

# the names the generated code calls (bound as locals of the generated function)
_NUMPY = {name: getattr(np, name) for name in (
    "add", "subtract", "multiply", "divide", "dot", "negative", "exp", "log", "log1p",
    "tanh", "maximum", "greater", "absolute", "asarray", "broadcast_to", "transpose")}
_NUMPY["add_reduce"] = np.add.reduce


# --- writing the function -------------------------------------------------------------------------

class _Emitter:
    """The names, buffers and constants of one generated function."""

    def __init__(self):
        self.constants = dict(_NUMPY)
        self.lines = []
        self.n_names = 0

    def constant(self, prefix, value):
        name = f"{prefix}{len(self.constants)}"
        self.constants[name] = value
        return name

    def scratch(self, shape, dtype=np.float64):
        """A buffer allocated now, once, and written by every replay."""
        return self.constant("B", np.empty(shape, dtype))

    def out(self, shape, fresh):
        """Where a kernel writes: a buffer, or "None" for a fresh array that is handed out."""
        return "None" if fresh else self.scratch(shape)

    def name(self, prefix):
        self.n_names += 1
        return f"{prefix}{self.n_names}"


def kernels_apply(program):
    """Whether every op of ``program`` (a tape._Program) has a kernel here that accepts it."""
    shapes = program.shapes
    if any(dtype != F64 for dtype in program.dtypes):
        return False
    for _, inputs, k, op, params in program.forward:
        kernel = KERNELS.get(op)
        if kernel is None or not kernel.accepts(tuple(shapes[i] for i in inputs), params or {}):
            return False
    return True


def write_replay(program):
    """The source of ``compute(args)`` for ``program``: load and check the arrays, forward,
    backward; returns (J, then each delivered leaf's gradient), and the generated function's
    constants (buffers, leaves, numpy functions) and which gradients are fresh arrays."""
    shapes = program.shapes
    e = _Emitter()
    body = e.lines
    # -- load and check this call's arrays; anything unusual goes through program.load, which
    # makes the same refusals as the general replay (or returns the array when all is well)
    body.append(f"if len(args) != {program.n_arguments}: load(args)")
    for k, index, shape, dtype, requires_grad in program.arguments:
        body += [f"a = args[{index}]",
                 f"if type(a) is Tensor and a.requires_grad is {requires_grad}: v{k} = a.data",
                 f"elif type(a) is ndarray and {not requires_grad}: v{k} = a",
                 f"else: v{k} = load(args)[{k}]",
                 f"if v{k}.shape != {shape!r} or v{k}.dtype is not F64: v{k} = load(args)[{k}]"]
    for k, tensor, shape, dtype, requires_grad in program.leaves:
        leaf = e.constant("L", tensor)
        body += [f"v{k} = {leaf}.data",
                 f"if v{k}.shape != {shape!r} or v{k}.dtype is not F64 or "
                 f"{leaf}.requires_grad is not {requires_grad}: v{k} = load(args)[{k}]"]

    # -- forward: every value into its own buffer, but J (the root) fresh: it is handed out
    for _, inputs, k, op, params in program.forward:
        in_shapes = tuple(shapes[i] for i in inputs)
        # (transpose's forward is a view: it writes nothing)
        out = e.out(shapes[k], fresh=k == program.root or op is ops.TRANSPOSE)
        body += KERNELS[op].forward(e, f"v{k}", [f"v{i}" for i in inputs], out, in_shapes,
                                    shapes[k], params or {})

    # -- backward, in the general replay's order. Each slot's gradient is made where its
    # contributions arrive; the last one to a delivered leaf is written as a fresh array.
    contributions = {}
    for _, inputs, k, wants, targets, _, _ in program.backward:
        for _, i, _ in targets:
            contributions[i] = contributions.get(i, 0) + 1
    delivered = {k for k, _, _ in program.grad_leaves}
    grad = {program.root: "ROOT_GRAD"}    # slot -> the name holding its gradient
    fresh = {program.root: False}         # slot -> that is a new array nothing else holds
    arrived = {}
    for _, inputs, k, wants, targets, _, _ in program.backward:
        kernel = KERNELS[program.op_of[k]]
        params = program.params_of[k] or {}
        in_shapes = tuple(shapes[i] for i in inputs)
        xs = [f"v{i}" for i in inputs]
        for position, i, shape in targets:
            arrived[i] = arrived.get(i, 0) + 1
            final = arrived[i] == contributions[i] and i in delivered
            alone = contributions[i] == 1
            raw_shape = kernel.raw_shape(position, in_shapes, shapes[k])
            reduce = raw_shape != shape
            writes = kernel.vjp_writes[position]
            out = e.out(raw_shape, final and alone and not reduce) if writes else None
            lines, value = kernel.vjp(e, position, grad[k], xs, f"v{k}", e.name("d"), out,
                                      in_shapes, shapes[k], params)
            body += lines
            if not writes and value != grad[k]:  # a view, made once however often it is read
                name = e.name("d")
                body.append(f"{name} = {value}")
                value = name
            is_fresh = out == "None"
            if reduce:  # eq 80: summed over the broadcast axes, as sum_to_shape does
                axes, reshape = _plan_sum(raw_shape, shape, "compile")
                summed = {axes} if isinstance(axes, int) else set(axes)
                kept = tuple(1 if a in summed else n for a, n in enumerate(raw_shape))
                target, name = e.out(kept, final and alone), e.name("d")
                body.append(f"{name} = add_reduce({value}, {axes!r}, None, {target}, True)")
                value, is_fresh = name, target == "None"
                if reshape:  # fewer axes than the gradient: a view (copied if handed out)
                    name = e.name("d")
                    body.append(f"{name} = {value}.reshape({shape!r})")
                    value, is_fresh = name, False
            if i not in grad:
                grad[i], fresh[i] = value, is_fresh
            else:  # previous + new, into a buffer of its own (never in place: it may alias)
                target, name = e.out(shape, final), e.name("d")
                body.append(f"{name} = add({grad[i]}, {value}, {target})")
                grad[i], fresh[i] = name, target == "None"
    # J is handed out: a 0-d ndarray (never a numpy scalar, as the engine's _record makes it)
    # that no buffer holds (transpose's view of a buffer is copied)
    root_op = program.op_of.get(program.root)
    body.append(f"v{program.root} = asarray(v{program.root})" if root_op is not ops.TRANSPOSE
                else f"v{program.root} = v{program.root}.copy()")
    results = [f"v{program.root}"] + [grad.get(k, "None") for k, _, _ in program.grad_leaves]
    body.append(f"return ({', '.join(results)},)")
    e.constants.update(Tensor=Tensor, ndarray=np.ndarray, F64=F64, ROOT_GRAD=program.root_grad, load=program.load)
    return "\n".join(["def compute(args):"] + ["    " + line for line in body]), e.constants, \
        [fresh.get(k) for k, _, _ in program.grad_leaves]


def fast_replay(program, general):
    """``replay(args)`` of ``program`` through the kernels (and its source), or None when some
    op has none here. ``general(args)`` replays the step instead on a floating-point event."""
    if not kernels_apply(program):
        return None
    compute_source, constants, fresh = write_replay(program)
    namespace = dict(constants)
    exec(compile(compute_source, "<ag.compile: compute>", "exec"), namespace)  # noqa: S102
    namespace["compute"] = _raising_on_floating_point_events(namespace["compute"])
    deliver = []
    for n, ((k, tensor, index), is_fresh) in enumerate(zip(program.grad_leaves, fresh)):
        if is_fresh is None:
            continue  # no gradient reached it
        owner = f"args[{index}]" if tensor is None else f"P{n}"
        namespace[owner] = tensor
        if is_fresh:
            # NOTE: _accumulate_into inlined for a fresh float64 array of the leaf's shape that
            # nothing else holds: kept as .grad without a copy, one Python call fewer per leaf
            deliver += [f"p = {owner}",
                        f"if p.grad is None: p.grad = r[{n + 1}]",
                        f"else: accumulate(p, r[{n + 1}], True)"]
        else:  # a view of a buffer or of dJ/dJ: copied, as _accumulate_into would
            deliver += [f"p = {owner}",
                        f"if p.grad is None: p.grad = r[{n + 1}].copy()",
                        f"else: accumulate(p, r[{n + 1}], False)"]
    replay_source = "\n".join(
        ["def replay(args):",
         "    try:",
         "        r = compute(args)",
         "    except FloatingPointError:  # the general replay gives the eager values and warnings",
         "        return general(args)"]
        + ["    " + line for line in deliver] + ["    return make(r[0], None, False)"])
    namespace.update(accumulate=_accumulate_into, make=Tensor._make, general=general)
    exec(compile(replay_source, "<ag.compile: replay>", "exec"), namespace)  # noqa: S102
    return namespace["replay"], compute_source + "\n\n\n" + replay_source + "\n"


if int(np.__version__.split(".")[0]) >= 2:
    # NOTE: numpy 2's errstate as a decorator keeps no state on the instance (thread-safe), and
    # it is entered once per step, not once per op
    def _raising_on_floating_point_events(function):
        return np.errstate(over="raise", divide="raise", invalid="raise")(function)
else:  # pragma: no cover - numpy 1
    def _raising_on_floating_point_events(function):
        def guarded(args):
            with np.errstate(over="raise", divide="raise", invalid="raise"):
                return function(args)
        return guarded


def run_kernel(op, arrays, params, g, *, fresh=False, root=False):
    """``op``'s kernels run alone, for the test that holds them to the primitive's own rules:
    (output, [gradient of each input before un-broadcasting]) given the input ``arrays``, the
    op's ``params`` and the output's gradient ``g`` (as dJ/dJ when ``root``). ``fresh``
    writes into new arrays instead of buffers."""
    kernel = KERNELS[op]
    e = _Emitter()
    in_shapes = tuple(a.shape for a in arrays)
    xs = [f"x{i}" for i in range(len(arrays))]
    output = op.forward(*arrays, **params)
    lines = kernel.forward(e, "y", xs, e.out(output.shape, fresh), in_shapes, output.shape, params)
    names = []
    for i in range(len(arrays)):
        raw_shape = kernel.raw_shape(i, in_shapes, output.shape)
        out = e.out(raw_shape, fresh) if kernel.vjp_writes[i] else None
        more, value = kernel.vjp(e, i, "ROOT_GRAD" if root else "g", xs, "y", f"d{i}", out,
                                 in_shapes, output.shape, params)
        lines += more
        names.append(value)
    source = "\n".join(["def run(" + ", ".join(xs) + ", g):"] + ["    " + line for line in lines]
                       + [f"    return y, ({', '.join(names)},)"])
    namespace = dict(e.constants, ROOT_GRAD=g)
    exec(compile(source, "<kernel>", "exec"), namespace)  # noqa: S102
    # the same floating-point settings as a replay: an event raises FloatingPointError
    return _raising_on_floating_point_events(namespace["run"])(*arrays, g)

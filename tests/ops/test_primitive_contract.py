"""A guard over EVERY primitive of the package.

The primitives are discovered, not listed: every module of ``autograd_lite`` is imported and
every module-level ``ops.Primitive`` instance collected. Each one must then have

- a case here (sample inputs inside its domain, away from kinks and ties): a new primitive
  without one fails every test below, by name;
- a ``formula`` of its own (graph pictures), if it is differentiable;
- a compile kernel (``emit_forward``/``emit_vjp``) equal bit for bit to its own ``forward`` and
  ``vjp``, and a compiled step (``ag.compile``) through it that replays and equals the eager
  engine bit for bit;
- a vjp that matches central finite differences of ``<g, forward(x)>`` for a random g, if it
  is differentiable.
"""
from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import ops
from autograd_lite.ops import compare as ops_compare, elementwise as ew, losses as ops_losses, reduce as ops_reduce, shape as ops_join
from autograd_lite.core.backward import sum_to_shape
from autograd_lite.nn import conv, embedding, normalization, regularization
from autograd_lite.ops import Primitive
from autograd_lite.compile.replay import run_kernel
from gradcheck_util import assert_close, numeric_gradient

# --- discovery ----------------------------------------------------------------------------------

# The one module not imported, and why: ``python -m autograd_lite`` runs the command line
# (argparse) and calls sys.exit at import. It only imports ``cli``, which is imported below.
NOT_IMPORTED = {"autograd_lite.__main__": "runs the CLI and exits when imported"}


def _raise(name):
    raise ImportError(f"pkgutil.walk_packages could not import the package {name}")


def _modules():
    """Every module of the package, imported (an import error fails the test run)."""
    names = ["autograd_lite"] + [info.name for info in pkgutil.walk_packages(
        ag.__path__, "autograd_lite.", onerror=_raise)]
    missing_skips = set(NOT_IMPORTED) - set(names)
    assert not missing_skips, f"NOT_IMPORTED lists modules that do not exist: {missing_skips}"
    return [importlib.import_module(name) for name in names if name not in NOT_IMPORTED]


MODULES = _modules()


def _discover():
    found = {}  # id -> primitive: deduplicated by identity (ops_join re-exports ops.GETITEM)
    for module in MODULES:
        for value in vars(module).values():
            if isinstance(value, Primitive):
                found.setdefault(id(value), value)
    return list(found.values())


PRIMITIVES = _discover()


def _label(op):
    """Unique per primitive (``op.name`` is not: Pow and PowScalar are both "pow")."""
    return f"{type(op).__module__}.{type(op).__qualname__} ({op.name!r})"


# --- the cases ------------------------------------------------------------------------------------
# op -> list of factories; factory(rng) -> (input arrays, params). A factory is called again with
# a generator of the same seed whenever fresh, identical copies are needed (running_average
# updates its ``running`` buffer in place; dropout_mask draws from its ``rng``).

def _signs(rng, shape):
    return rng.choice([-1.0, 1.0], shape)


def _away_from_0(rng, shape, low=0.2, high=2.0):
    """Values with |x| in [low, high]: away from the kink of relu, abs, leaky_relu, elu."""
    return _signs(rng, shape) * rng.uniform(low, high, shape)


def _positive(rng, shape, low=0.5, high=2.0):
    return rng.uniform(low, high, shape)


def _no_ties(rng, shape):
    """Distinct values at least 0.25 apart (shuffled), plus a little noise: max/min pick one
    element, and a finite-difference step of 1e-6 cannot change which."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.25 - n * 0.1 + rng.uniform(0, 0.05, n)).reshape(shape)


def _n(rng, *shape):
    return np.array(rng.standard_normal(shape))  # an ndarray even for shape ()


def _bern(rng, *shape):
    return (rng.random(shape) < 0.5).astype(np.float64)


def _ew_pair(rng):
    y = _n(rng, 1, 4)
    return y + _away_from_0(rng, (3, 4)), y   # |x - y| >= 0.2: no ties in maximum/minimum


def _clip_x(rng, shape):
    # |x| in [0.1, 0.4] (inside) or [0.6, 1.5] (outside): away from the bounds ±0.5
    inside = rng.random(shape) < 0.5
    return _signs(rng, shape) * np.where(inside, rng.uniform(0.1, 0.4, shape), rng.uniform(0.6, 1.5, shape))


CASES = {
    # --- ops: binary, broadcasting (eq 33's bias column, eq 80's sum back)
    ops.ADD: [lambda r: ((_n(r, 3, 4), _n(r, 3, 1)), {}),
              lambda r: ((_n(r), _n(r, 2, 3)), {})],
    ops.SUB: [lambda r: ((_n(r, 3, 4), _n(r, 1, 4)), {})],
    ops.MUL: [lambda r: ((_n(r, 3, 4), _n(r, 3, 4)), {}),
              lambda r: ((_n(r, 3, 1), _n(r, 1, 4)), {})],
    ops.DIV: [lambda r: ((_n(r), _away_from_0(r, (3, 1), 0.5)), {}),
              lambda r: ((_n(r, 2, 3), _away_from_0(r, (2, 3), 0.5)), {})],
    ops.POW: [lambda r: ((_positive(r, (3, 4)), _n(r, 1, 4)), {})],
    ops.POW_SCALAR: [lambda r: ((_n(r, 3, 4),), {"exponent": 3.0}),
                     lambda r: ((_positive(r, (2, 3)),), {"exponent": 2.5})],
    ops.MATMUL: [lambda r: ((_n(r, 4, 3), _n(r, 3, 5)), {}),       # W A (eq 33)
                 lambda r: ((_n(r, 3), _n(r, 3, 2)), {}),          # a 1-D row
                 lambda r: ((_n(r, 2, 3), _n(r, 3)), {})],         # a 1-D column
    # --- ops: unary
    ops.NEG: [lambda r: ((_n(r, 3, 4),), {})],
    ops.EXP: [lambda r: ((_n(r, 3, 4),), {})],
    ops.LOG: [lambda r: ((_positive(r, (3, 4), 0.1),), {})],
    ops.SIGMOID: [lambda r: ((3 * _n(r, 3, 4),), {}),
                  lambda r: ((_n(r),), {})],                   # 0-d: the stable form
    ops.TANH: [lambda r: ((_n(r, 3, 4),), {})],
    ops.RELU: [lambda r: ((_away_from_0(r, (3, 4)),), {})],
    ops.ABS: [lambda r: ((_away_from_0(r, (3, 4)),), {})],
    # --- ops: reductions and shapes
    ops.SUM: [lambda r: ((_n(r, 3, 4),), {"axis": (1,), "keepdims": True}),   # eq 80
              lambda r: ((_n(r, 3, 4),), {"axis": (0, 1), "keepdims": False})],
    ops.MEAN: [lambda r: ((_n(r, 3, 4),), {"axis": (1,), "keepdims": False}),  # eq 76's 1/m
               lambda r: ((_n(r, 2, 3, 2),), {"axis": (0, 1, 2), "keepdims": False})],
    ops.RESHAPE: [lambda r: ((_n(r, 3, 4),), {"shape": (4, 3)}),
                  lambda r: ((_n(r, 2, 3, 2),), {"shape": (-1,)})],
    ops.TRANSPOSE: [lambda r: ((_n(r, 3, 4),), {"axes": None}),
                    lambda r: ((_n(r, 2, 3, 4),), {"axes": (2, 0, 1)})],
    ops.BROADCAST_TO: [lambda r: ((_n(r, 3, 1),), {"shape": (3, 4)}),        # eq 32's B
                       lambda r: ((_n(r),), {"shape": (2, 3)})],
    ops.GETITEM: [lambda r: ((_n(r, 3, 4),), {"index": (slice(None), [0, 0, 2])}),  # repeats add
                  lambda r: ((_n(r, 3, 4),), {"index": (slice(1, None), slice(None, None, 2))})],
    ops.INDEX_ADD: [lambda r: ((_n(r, 3, 3),), {"shape": (3, 4), "index": (slice(None), [0, 0, 2])}),
                    lambda r: ((_n(r, 2, 4),), {"shape": (3, 4), "index": ([2, 0],)})],
    ops.SOFTMAX: [lambda r: ((_n(r, 3, 4),), {"axis": 0}),
                  lambda r: ((_n(r, 3, 4),), {"axis": 1})],
    ops.LOG_SOFTMAX: [lambda r: ((_n(r, 3, 4),), {"axis": 0}),
                      lambda r: ((_n(r, 3, 4),), {"axis": 1})],
    ops.BCE_WITH_LOGITS: [lambda r: ((3 * _n(r, 2, 4), _bern(r, 2, 4)), {}),  # eq 76
                          lambda r: ((3 * _n(r, 5), _bern(r, 5)), {})],
    ops.DETACH: [lambda r: ((_n(r, 3, 4),), {})],
    # --- ops_elementwise
    ew.MAXIMUM: [lambda r: (_ew_pair(r), {})],
    ew.MINIMUM: [lambda r: (_ew_pair(r), {})],
    ew.CLIP: [lambda r: ((_clip_x(r, (3, 4)),), {"low": -0.5, "high": 0.5}),
              lambda r: ((_clip_x(r, (3, 4)),), {"low": np.array([[-0.5], [0.5], [-0.5]]), "high": None})],
    ew.SQUARE: [lambda r: ((_n(r, 3, 4),), {})],
    ew.SQRT: [lambda r: ((_positive(r, (3, 4), 0.2),), {})],
    ew.SIN: [lambda r: ((_n(r, 3, 4),), {})],
    ew.COS: [lambda r: ((_n(r, 3, 4),), {})],
    ew.LEAKY_RELU: [lambda r: ((_away_from_0(r, (3, 4)),), {"slope": 0.1})],
    ew.ELU_: [lambda r: ((_away_from_0(r, (3, 4)),), {"alpha": 1.5})],
    ew.SOFTPLUS: [lambda r: ((3 * _n(r, 3, 4),), {})],
    ew.NORMAL_CDF: [lambda r: ((2 * _n(r, 3, 4),), {})],
    ew.GELU_: [lambda r: ((2 * _n(r, 3, 4),), {"approximate": "none"}),
               lambda r: ((2 * _n(r, 3, 4),), {"approximate": "tanh"})],
    # --- ops_join
    ops_join.CONCATENATE: [lambda r: ((_n(r, 2, 1), _n(r, 2, 3), _n(r, 2, 2)), {"axis": 1, "sizes": (1, 3, 2)}),
                           lambda r: ((_n(r, 1, 3), _n(r, 2, 3)), {"axis": 0, "sizes": (1, 2)})],
    ops_join.STACK: [lambda r: ((_n(r, 2, 3), _n(r, 2, 3)), {"axis": 0}),
                     lambda r: ((_n(r, 2, 3), _n(r, 2, 3), _n(r, 2, 3)), {"axis": 2})],
    ops_join.WHERE: [lambda r: ((_n(r, 3, 4), _n(r, 1, 4)), {"cond": r.random((3, 4)) < 0.5})],
    # --- ops_reduce
    ops_reduce.MAX: [lambda r: ((_no_ties(r, (3, 4)),), {"axis": (1,), "keepdims": False}),
                     lambda r: ((_no_ties(r, (3, 4)),), {"axis": (0, 1), "keepdims": True})],
    ops_reduce.MIN: [lambda r: ((_no_ties(r, (3, 4)),), {"axis": (0,), "keepdims": True}),
                     lambda r: ((_no_ties(r, (3, 4)),), {"axis": (0, 1), "keepdims": False})],
    ops_reduce.LOGSUMEXP: [lambda r: ((_n(r, 3, 4),), {"axis": (0,), "keepdims": False}),
                           lambda r: ((_n(r, 3, 4),), {"axis": (0, 1), "keepdims": False})],
    ops_reduce.VAR: [lambda r: ((_n(r, 3, 4),), {"axis": (1,), "ddof": 1, "keepdims": True}),
                     lambda r: ((_n(r, 3, 4),), {"axis": (0, 1), "ddof": 0, "keepdims": False})],
    # --- ops_losses: x away from 0 (where the limits are taken), y > 0
    ops_losses.XLOGY: [lambda r: ((_away_from_0(r, (3, 4)), _positive(r, (1, 4), 0.2)), {})],
    ops_losses.XDIVY: [lambda r: ((_away_from_0(r, (3, 4)), _away_from_0(r, (3, 1), 0.5)), {})],
    ops_losses.PICK_CLASSES: [lambda r: ((_n(r, 3, 5), np.array([0.0, 2.0, 1.0, 2.0, 0.0])), {})],
    # --- nn.conv: images C x H x W x m
    conv.IM2COL: [lambda r: ((_n(r, 2, 3, 3, 2),), {"kernel": (2, 2), "stride": 1, "padding": 1,
                                                    "pad_value": 0.5, "input_shape": (2, 3, 3, 2)}),
                  lambda r: ((_n(r, 1, 4, 5, 2),), {"kernel": (2, 3), "stride": 2, "padding": 0,
                                                    "pad_value": 0.0, "input_shape": (1, 4, 5, 2)})],
    conv.COL2IM: [lambda r: ((_n(r, 1, 2, 2, 2, 2, 2),), {"input_shape": (1, 3, 3, 2), "kernel": (2, 2),
                                                          "stride": 2, "padding": 1}),
                  lambda r: ((_n(r, 2, 2, 2, 2, 2, 1),), {"input_shape": (2, 3, 3, 1), "kernel": (2, 2),
                                                          "stride": 1, "padding": 0})],
    # --- not differentiable (see NOT_DIFFERENTIABLE)
    regularization.DROPOUT_MASK: [lambda r: ((_n(r, 3, 4),), {"p": 0.4, "rng": np.random.default_rng(7)})],
    normalization.RUNNING_AVERAGE: [lambda r: ((_n(r, 3, 1),), {"running": _n(r, 3, 1), "momentum": 0.1,
                                                                "scale": 1.5})],
    embedding.LOOKUP: [lambda r: ((_n(r, 3, 5), np.array([[0, 4, 4], [2, 1, 0]])), {})],
    normalization.BUFFER: [lambda r: ((_n(r, 3, 4),), {"array": _n(r, 3, 1), "shape": (3, 1)})],
    ops_compare.COMPARE: [lambda r: ((_n(r, 3, 4), _n(r, 3, 1)), {"how": "less"}),
                          lambda r: ((_n(r, 3, 4), _n(r, 1, 4)), {"how": "logical_or"}),
                          lambda r: ((_n(r, 2, 3),), {"how": "isfinite"})],
    ops_compare.ARG_EXTREMUM: [lambda r: ((_n(r, 3, 4),), {"how": "argmax", "axis": 0, "keepdims": True}),
                               lambda r: ((_n(r, 3, 4),), {"how": "argmin", "axis": None, "keepdims": False})],
}

# The primitives without a gradient, each with its reason; the others must be differentiable.
# Inputs that have no gradient by definition (class labels): not differentiated, never given one.
CONSTANT_INPUTS = {ops_losses.PICK_CLASSES: {1}, embedding.LOOKUP: {1}}

NOT_DIFFERENTIABLE = {
    ops.DETACH: "cuts its input from the graph: a constant for what follows",
    regularization.DROPOUT_MASK: "a random mask drawn from rng: a constant, like detach",
    normalization.RUNNING_AVERAGE: "updates BatchNorm's running statistics in place (state, not J)",
    normalization.BUFFER: "a module's buffer (running statistics): a constant",
    ops_compare.COMPARE: "comparisons, masks and tests: a step function's derivative is 0",
    ops_compare.ARG_EXTREMUM: "an index: integers have no gradient",
}

PARAMETRIZED = [pytest.param(op, k, id=f"{type(op).__name__}-{k}")
                for op in PRIMITIVES for k in range(len(CASES.get(op, [None])))]


def _case(op, k, seed=0):
    """Fresh (arrays, params) of case k of ``op``; the same seed gives identical copies."""
    assert op in CASES, f"no case in tests/ops/test_primitive_contract.py CASES for {_label(op)}"
    return CASES[op][k](np.random.default_rng(1000 * k + seed))


def _vjp(op, g, arrays, output, params):
    """``op``'s vjp with what the engine saves for it (``vjp_reads_inputs``/``_output``)."""
    inputs = tuple(arrays) if op.vjp_reads_inputs else None
    saved = output if op.vjp_reads_output else None
    return op.vjp(g, inputs, saved, (True,) * len(arrays), **params)


def _same(found, expected, what):
    found, expected = np.asarray(found), np.asarray(expected)
    assert found.shape == expected.shape, f"{what}: shape {found.shape} != {expected.shape}"
    assert found.dtype == expected.dtype, f"{what}: dtype {found.dtype} != {expected.dtype}"
    np.testing.assert_array_equal(found, expected, err_msg=what)  # bit for bit


# --- the guards -----------------------------------------------------------------------------------

def test_discovery_finds_the_primitives():
    """Discovery itself cannot silently break: the known ones are found, and enough of them."""
    assert len(PRIMITIVES) >= 40, [_label(op) for op in PRIMITIVES]
    assert {ops.ADD, ops.MATMUL, ew.GELU_, ops_reduce.VAR, conv.COL2IM,
            normalization.RUNNING_AVERAGE} <= set(PRIMITIVES)


def test_every_primitive_class_of_the_package_has_an_instance_that_was_discovered():
    """A Primitive subclass whose instance is not at module level (made inside a function, or
    never) would escape the discovery: refused. A base class that names no op of its own
    (``ops.base.Broadcasting``, ``_ExtremumReduction``) is an abstract helper."""
    classes, stack = set(), [Primitive]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            if sub.__module__.startswith("autograd_lite.") and "name" in vars(sub):
                classes.add(sub)
    discovered = {type(op) for op in PRIMITIVES}
    assert not classes - discovered, sorted(c.__qualname__ for c in classes - discovered)


def test_every_primitive_has_a_case_and_no_case_is_stale():
    missing = [_label(op) for op in PRIMITIVES if op not in CASES]
    assert not missing, f"primitives without a case in CASES: {missing}"
    stale = [_label(op) for op in CASES if op not in PRIMITIVES]
    assert not stale, f"CASES lists primitives the discovery does not find: {stale}"
    assert all(CASES[op] for op in CASES)


def test_the_non_differentiable_primitives_are_exactly_the_listed_ones():
    found = {op for op in PRIMITIVES if not op.differentiable}
    assert found == set(NOT_DIFFERENTIABLE), sorted(_label(op) for op in found ^ set(NOT_DIFFERENTIABLE))


# --- formula ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("op, k", PARAMETRIZED)
def test_formula(op, k):
    arrays, params = _case(op, k)
    if op.differentiable:
        assert type(op).formula is not Primitive.formula, \
            f"{_label(op)} has no formula of its own (override Primitive.formula beside its vjp)"
    names = [f"x{i}" for i in range(len(arrays))] + ["y"]
    shapes = [a.shape for a in arrays]
    for i in range(len(arrays)):
        text = op.formula(i, "g", names, params, shapes)
        assert isinstance(text, str) and text.strip(), f"{_label(op)}: formula({i}) is {text!r}"


# --- compile kernel ---------------------------------------------------------------------------------

@pytest.mark.parametrize("op, k", PARAMETRIZED)
def test_kernel_equals_forward_and_vjp_bit_for_bit(op, k):
    arrays, params = _case(op, k)
    ref_arrays, ref_params = _case(op, k)
    # run_kernel calls op.forward once itself (for the output's shape and dtype) before the
    # kernel runs; so the kernel's output is held to the SECOND forward call on fresh params.
    # For a pure op both calls agree; dropout_mask draws its second mask, running_average
    # updates its buffer twice.
    op.forward(*ref_arrays, **ref_params)
    expected = np.asarray(op.forward(*ref_arrays, **ref_params))
    g = np.random.default_rng(99 + k).standard_normal(expected.shape)
    output, grads = run_kernel(op, arrays, params, g)
    _same(output, expected, f"{_label(op)} case {k}: kernel output vs forward")
    for key, value in params.items():  # any state in the params moved as forward moves it
        if isinstance(value, np.ndarray):
            _same(value, ref_params[key], f"{_label(op)} case {k}: param {key} after the kernel")
    fresh, _ = _case(op, k)
    for a, b in zip(arrays, fresh):
        _same(a, b, f"{_label(op)} case {k}: the kernel changed its input")
    if not op.differentiable:
        assert all(d is None for d in grads)
        return
    wanted = [(g, False)] + ([(np.ones(()), True)] if expected.ndim == 0 else [])  # J's own vjp
    for upstream, root in wanted:
        if root:
            _, grads = run_kernel(op, arrays, params, upstream, root=True)
        rules = _vjp(op, upstream, fresh, expected, params)
        assert len(grads) == len(rules) == len(arrays)
        for i, (found, rule) in enumerate(zip(grads, rules)):
            shape = arrays[i].shape
            if i in CONSTANT_INPUTS.get(op, ()):
                assert rule is None and found is None, f"{_label(op)}: input {i} has no gradient"
                continue
            assert found is not None and rule is not None, f"{_label(op)}: no gradient for input {i}"
            _same(sum_to_shape(np.asarray(found), shape, op.name),
                  sum_to_shape(np.asarray(rule), shape, op.name),
                  f"{_label(op)} case {k}: kernel gradient of input {i} vs vjp (root={root})")


def _snapshot(params):
    """The state a forward may change in its params: buffers and generators."""
    return {key: (value.copy() if isinstance(value, np.ndarray) else value.bit_generator.state)
            for key, value in params.items() if isinstance(value, (np.ndarray, np.random.Generator))}


def _restore(params, saved):
    for key, state in saved.items():
        if isinstance(params[key], np.ndarray):
            params[key][...] = state
        else:
            params[key].bit_generator.state = state


@pytest.mark.parametrize("op, k", PARAMETRIZED)
def test_a_compiled_step_through_the_op_replays_as_the_eager_engine(op, k):
    """J = sum(op(x...) * V) (V a random upstream gradient, an argument); a non-differentiable
    op adds sum(x0 * x0) so that J has a gradient. The third call replays; its J, gradients
    and any state in the params (dropout's generator, running statistics) equal the eager
    engine's from the same state, bit for bit."""
    arrays, params = _case(op, k)
    tensors = [ag.Tensor(a, requires_grad=i not in CONSTANT_INPUTS.get(op, ()))
               for i, a in enumerate(arrays)]
    with ag.no_grad():
        out_shape = op(*[ag.Tensor(a) for a in _case(op, k)[0]], **_case(op, k)[1]).shape
    V = np.random.default_rng(5 + k).standard_normal(out_shape)

    def loss(*args):
        *xs, v = args
        J = (op(*xs, **params) * v).sum()
        return J if op.differentiable else J + (xs[0] * xs[0]).sum()

    step = ag.compile(loss)

    def no_eager_fallback(*_):
        raise AssertionError(f"{_label(op)}: the replay met a floating-point event and ran eagerly")

    for call in range(3):
        for t in tensors:
            t.grad = None
        if call == 2:
            step._eager = no_eager_fallback   # the third call must be the replay itself
            before = _snapshot(params)
        J_replay = step(*tensors, V)
    assert step.source is not None
    assert f"= {op.name}(" in step.source, f"{_label(op)} is not in the replay:\n{step.source}"
    grads_replay = [t.grad for t in tensors]
    state_replay = _snapshot(params)

    _restore(params, before)
    for t in tensors:
        t.grad = None
    J = loss(*tensors, ag.Tensor(V))
    J.backward()
    _same(J_replay.data, J.data, f"{_label(op)} case {k}: replayed J vs eager")
    for i, (found, t) in enumerate(zip(grads_replay, tensors)):
        if t.grad is None:
            assert found is None
        else:
            _same(found, t.grad, f"{_label(op)} case {k}: replayed dJ/dx{i} vs eager")
    for key, state in _snapshot(params).items():
        if isinstance(state, np.ndarray):
            _same(state_replay[key], state, f"{_label(op)} case {k}: param {key} after replay")
        else:
            assert state_replay[key] == state, f"{_label(op)} case {k}: {key} drawn differently"


# --- finite differences -------------------------------------------------------------------------------

@pytest.mark.parametrize("op, k", PARAMETRIZED)
def test_vjp_matches_central_finite_differences(op, k):
    arrays, params = _case(op, k)
    if not op.differentiable:
        assert op in NOT_DIFFERENTIABLE, f"{_label(op)} is not differentiable but not listed"
        return
    output = np.asarray(op.forward(*arrays, **params))
    g = np.random.default_rng(77 + k).standard_normal(output.shape)
    rules = _vjp(op, g, arrays, output, params)

    def J(*xs):  # <g, f(x)>: its gradient is the vjp of g
        return float(np.sum(g * op.forward(*xs, **params)))

    for i, rule in enumerate(rules):
        if i in CONSTANT_INPUTS.get(op, ()):
            assert rule is None
            continue
        analytic = sum_to_shape(np.asarray(rule), arrays[i].shape, op.name)
        assert_close(analytic, numeric_gradient(J, arrays, i),
                     f"{_label(op)} case {k}: vjp of input {i} vs central differences")

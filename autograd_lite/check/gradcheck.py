"""gradcheck: the engine's gradient against central finite differences, first or second order.

For a function ``f`` of some arrays, the autodiff gradient (``backward()``, or ``ag.grad``
twice for second order) must match

    dJ/dx[k] ~ (J(x + eps e_k) - J(x - eps e_k)) / (2 eps)

element by element (or along random directions, for large inputs). A custom primitive with a
wrong vjp fails here, and the result names the input, the worst element and both values.

The step (float64): by default searched per element from the error analysis
(``check.numeric``: a five-point stencil, from 1e-3 |x| up to 10 |x| while its rounding plus
truncation estimate shrinks), so at |x| = 1e8, where a fixed step of 1e-6 would be below the
float spacing (1.5e-8 there), or at |x| = 1e-8 it fits x. An explicit ``eps`` is taken as
given (central differences, truncation estimated at 2 eps), and the result says where it is
below the float spacing instead of blaming the vjp.

Tolerance per element: ``|autodiff - numeric| <= rtol |numeric| + error (+ atol if given)``,
where error is the finite difference's own: the rounding of J (16 eps_64 of its size) divided
by the step, and the truncation estimated by Richardson's comparison with twice the step. No
absolute floor by default: a gradient of 1e-12 is judged against errors of its own size. A
wrong rule (off by a factor, a sign, a transpose) misses by far more. Functions with kinks
(relu at 0, abs at 0) can fail where an element sits within the step of the kink: move the
point, not the tolerance.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..core.modes import no_grad
from ..transforms import grad as ag_grad
from ..transforms import value_and_grad as ag_value_and_grad
from ..core.tensor import Tensor
from ..roundoff import EPS
from .numeric import lockstep, search

ROUNDING_OF_J = 16   # J is allowed this many eps of its size (a dozen operations)
# Dask evaluations of f read in one compute, at most: a round of a large input's step searches
# (six evaluations per element) comes in a few computes, and the graphs held at once (about
# 0.1 MB an evaluation) stay around 100 MB
EVALUATIONS_PER_COMPUTE = 1000


class PrecisionWarning(UserWarning):
    """gradcheck upcast a float32 input to float64: finite differences need the precision."""


@dataclass
class InputCheck:
    """How one input's gradient (or one random direction) fared.

    ``max_abs`` is the largest ``|autodiff - numeric|``; ``worst_index`` the element (or
    direction number) where the excess over the tolerance is largest, with ``autodiff`` and
    ``numeric`` its two values there.
    """

    name: str
    shape: tuple
    order: int
    max_abs: float
    worst_index: tuple
    autodiff: float
    numeric: float
    passed: bool
    checked: int  # how many elements or directions were compared
    coarse: bool = False  # the worst element's step was below 1000 float spacings of x
    excess: float = 0.0   # the worst element's |autodiff - numeric| / its tolerance

    def to_dict(self) -> dict:
        return {key: _jsonable(value) for key, value in self.__dict__.items()}


@dataclass
class GradcheckResult:
    """The verdict of ``gradcheck``: ``passed`` (also ``bool(result)``), one ``InputCheck``
    per input and order in ``checks``, the ``worst`` of them, and the settings used."""

    passed: bool
    checks: list
    mode: str
    eps: float
    rtol: float
    atol: float
    notes: list = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def worst(self) -> InputCheck:
        """The check with the largest error relative to its tolerance (a failing one first)."""
        return max(self.checks, key=lambda c: (not c.passed, c.excess))

    def to_dict(self) -> dict:
        return {"passed": self.passed, "mode": self.mode, "eps": self.eps, "rtol": self.rtol,
                "atol": self.atol, "notes": list(self.notes),
                "checks": [c.to_dict() for c in self.checks]}

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        step = "searched per element" if self.eps is None else f"{self.eps:g}"
        floor = f" + {self.atol:g}" if self.atol else ""
        lines = [f"gradcheck: {verdict} ({self.mode}; step {step}, an element passes when "
                 f"|autodiff - numeric| <= {self.rtol:g} |numeric| + the finite difference's "
                 f"error estimate{floor})"]
        header = ("order", "input", "shape", "checked", "max |diff|", "worst at", "autodiff",
                  "numeric", "")
        rows = [header] + [(str(c.order), c.name, _shape(c.shape), str(c.checked),
                            f"{c.max_abs:.2e}", str(c.worst_index), f"{c.autodiff:.6g}",
                            f"{c.numeric:.6g}", "ok" if c.passed else "FAIL")
                           for c in self.checks]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                  for row in rows]
        lines += [f"  note: {note}" for note in self.notes]
        if not self.passed:
            c = self.worst
            if c.coarse:
                why = (f"the step there is below 1000 float spacings of x, so the finite "
                       f"difference measures rounding: leave eps=None (a step scaled by |x|)")
            else:
                why = (f"check the vjp of the operation that {c.name} feeds (or a kink within "
                       f"the step of the point)")
            lines.append(f"  worst: {c.name} (order {c.order}) at {c.worst_index}: autodiff "
                         f"{c.autodiff:.6g} but finite differences {c.numeric:.6g}; {why}")
        return "\n".join(lines)

    __repr__ = __str__


def gradcheck(f, inputs, *, eps: float | None = None, rtol: float = 1e-5, atol: float = 0.0,
              order: int = 1, directions: int | None = None, seed: int = 0,
              names=None) -> GradcheckResult:
    """Compare the engine's gradient of ``f`` at ``inputs`` with central finite differences.

    - ``f(*tensors)`` returns a Tensor. If it has more than one element, it is contracted with
      a fixed random cotangent v (``J = sum(v * f(x))``), which checks the whole vjp, not only
      the gradient of the sum.
    - ``inputs``: arrays, numbers or Tensors of any backend (torch, CuPy, JAX, Dask,
      array-api-strict): f is evaluated where each input lives, in float64 (a backend without
      float64 is refused), and the finite differences move host copies of its elements;
      float32 is upcast to float64 with a ``PrecisionWarning``. On Dask the evaluations are
      lazy and computed together, one ``dask.compute`` per round of the step search (a few,
      whatever the number of elements). ``names`` labels them in the result (default: a
      Tensor's own name, else ``x0``, ``x1``, ...).
    - ``directions=None`` differentiates numerically along every element (2 evaluations per
      element). ``directions=k`` compares k random directional derivatives over all inputs at
      once instead (2k evaluations): the fast mode for large inputs.
    - ``order=2`` also checks the gradient of the gradient: for a fixed random u, the
      autodiff gradient of ``h(x) = <grad f(x), u>`` (``ag.grad`` twice, i.e. a Hessian-vector
      product) against central differences of h, itself computed by the engine's first order.
    - ``eps``: None (the step searched per element) or a fixed step; ``rtol`` and an optional
      ``atol`` widen the tolerance of the module docstring.
    """
    if eps is not None and not (isinstance(eps, (int, float)) and 0 < eps < np.inf):
        raise ValueError(f"gradcheck: eps must be None or a finite step > 0, got {eps!r}")
    if order not in (1, 2):
        raise ValueError(f"gradcheck: order must be 1 or 2, got {order!r}")
    if directions is not None and (not isinstance(directions, int) or directions < 1):
        raise ValueError(f"gradcheck: directions must be None or a positive int, got {directions!r}")
    arrays, labels, places = _as_float64(inputs, names)
    rng = np.random.default_rng(seed)
    scalar_f, notes = _scalar_version(f, arrays, places, rng)

    checks = _compare(scalar_f, *_first_order(scalar_f, arrays, places), arrays, places, labels,
                      1, eps, rtol, atol, directions, rng)
    if order == 2:
        u = [rng.standard_normal(a.shape) for a in arrays]
        h = _directional_gradient(scalar_f, u)
        notes.append("order 2 checks d/dx <grad f(x), u> for a fixed random u "
                     "(a Hessian-vector product) against central differences of it")
        value, second = ag_value_and_grad(h, tuple(range(len(arrays))))(*_placed(arrays, places))
        # the value with the gradients: on Dask one compute for all of them
        value, *second = backend.to_numpy_all([value.data] + [g.data for g in _as_tuple(second)])
        checks += _compare(h, second, _float(value), arrays, places, labels, 2, eps, rtol, atol,
                           directions, rng)
    if eps is not None:
        spacing = max((float(np.max(np.spacing(np.abs(a)))) for a in arrays if a.size), default=0.0)
        if eps < 1000 * spacing:
            notes.append(f"eps = {eps:g} is below 1000 float spacings of the largest |x| "
                         f"({spacing:.1e}): there the difference measures rounding; eps=None "
                         f"scales the step with |x|")
    mode = ("central differences per element" if directions is None
            else f"{directions} random directions")
    return GradcheckResult(all(c.passed for c in checks), checks, mode, eps, rtol, atol, notes)


# ---- pieces -----------------------------------------------------------------------------------

def _as_float64(inputs, names):
    """Each input's values as a float64 numpy copy (what the finite differences move, element
    by element) and where it lives (``_Place``: f is evaluated there, in float64)."""
    if isinstance(inputs, (np.ndarray, Tensor, float, int)) or backend.is_foreign_array(inputs):
        inputs = [inputs]
    labels, places, given = [], [], []
    for i, value in enumerate(inputs):
        label = (names[i] if names is not None
                 else (value.name if isinstance(value, Tensor) and value.name else f"x{i}"))
        data = value.data if isinstance(value, Tensor) else value
        if not backend.is_foreign_array(data):
            data = np.asarray(data)
        labels.append(label)
        places.append(_Place(data, label))
        given.append(data)
    arrays = []
    for label, host in zip(labels, backend.to_numpy_all(given)):  # Dask: one compute for all
        if host.dtype == np.float32 or host.dtype == np.float16:
            warnings.warn(f"gradcheck: input {label} is {host.dtype}; upcast to float64, since "
                          f"finite differences with eps ~1e-6 need float64's precision",
                          PrecisionWarning, stacklevel=3)
        arrays.append(np.array(host, dtype=np.float64, copy=True))
    return arrays, labels, places


class _Place:
    """Where an input lives: its backend (numpy, torch, CuPy, JAX, Dask, array-api-strict),
    and for Dask its chunks. ``f`` is evaluated there, in float64, on the finite differences'
    moved copies: the check is of the engine on that backend, not of a numpy stand-in."""

    def __init__(self, data, label):
        self.where = backend.of(data)
        self.chunks = getattr(data, "chunks", None) if self.where.is_dask else None
        if not self.where.is_numpy:
            try:
                backend.default_float(self.where)
            except TypeError as error:
                raise TypeError(f"gradcheck: input {label} lives in {self.where.name}, and "
                                f"finite differences need float64: {error}; or check on the "
                                f"host: gradcheck(f, [ag.to_numpy(x)])") from None

    def __call__(self, array):
        """The float64 numpy ``array`` as an array of this place."""
        if self.where.is_numpy:
            return array
        if self.chunks is not None:
            return self.where.xp.from_array(array, chunks=self.chunks)
        return backend.moved(array, self.where)

    def with_element(self, array, index, value):
        """``array`` (host, float64) with the element at ``index`` set to ``value``, here. On
        Dask the change is a task of the lazy graph (only the chunk holding the element is
        copied, when it runs), so a round of evaluations holds no copy of the input each."""
        if self.chunks is None:
            changed = array.copy()
            changed[index] = value
            return self(changed)
        meta = np.empty((0,) * array.ndim, dtype=array.dtype)
        return self(array).map_blocks(_with_element, index, value, dtype=array.dtype, meta=meta)

    def along(self, array, t, direction):
        """``array + t direction`` (host arrays), here: on Dask computed lazily, chunk by chunk,
        with numpy's arithmetic, so the values are the host sum's."""
        if self.chunks is None:
            return self(array + t * direction)
        return self(array) + t * self(direction)


def _with_element(block, index, value, block_info=None):
    """A chunk of a Dask input with the input's element ``index`` set to ``value`` if the chunk
    holds it (a copy), else the chunk as it is."""
    location = block_info[0]["array-location"]  # (start, stop) of the chunk along each axis
    if not all(start <= i < stop for i, (start, stop) in zip(index, location)):
        return block
    block = block.copy()
    block[tuple(i - start for i, (start, _) in zip(index, location))] = value
    return block


def _placed(arrays, places):
    return [Tensor(place(a)) for a, place in zip(arrays, places)]


def _scalar_version(f, arrays, places, rng):
    """f itself if it returns one element, else x -> sum(v * f(x)) for a fixed random v (in
    f's output's backend)."""
    with no_grad():
        out = f(*_placed(arrays, places))
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: f must return a Tensor, got {type(out).__name__}")
    if out.size == 1:
        return (lambda *xs: f(*xs).sum()), []
    v = backend.moved(rng.standard_normal(out.shape), backend.of(out.data))
    return ((lambda *xs: (f(*xs) * v).sum()),
            [f"f returns shape {out.shape}: checked J = sum(v * f(x)) for a fixed random v"])


def _float(array) -> float:
    return float(np.asarray(array).reshape(-1)[0])


def _values(J, points) -> list:
    """J at each point (a list of the inputs' arrays, where they live) as floats. On eager
    backends each J is computed as it is called; a Dask J is a lazy graph, and they are read
    together, ``EVALUATIONS_PER_COMPUTE`` at a time, each batch in ONE ``dask.compute``
    (``backend.to_numpy_all``): Dask's scheduler runs the evaluations side by side and shares
    what they have in common (the unmoved inputs). ``points`` may be a generator: each point
    is made when it is evaluated and dropped after, so a round holds J's outputs (a Dask one
    its graph), never a moved copy of the inputs per evaluation."""
    values, outputs = [], []
    with no_grad():
        for point in points:
            outputs.append(J(*[Tensor(a) for a in point]).data)
            if len(outputs) == EVALUATIONS_PER_COMPUTE:
                values += [_float(value) for value in backend.to_numpy_all(outputs)]
                outputs = []
    return values + [_float(value) for value in backend.to_numpy_all(outputs)]


def _first_order(scalar_f, arrays, places) -> tuple:
    """The ordinary backward() gradient, the first-order code path, and J's value there,
    brought to the host together (a Dask input's gradient is lazy: one compute for all of
    them; J's value came out of backward's own)."""
    leaves = [Tensor(place(a), requires_grad=True) for a, place in zip(arrays, places)]
    J = scalar_f(*leaves)
    if J.requires_grad:
        J.backward()
    value, *grads = backend.to_numpy_all(
        [J.data] + [leaf.grad for leaf in leaves if leaf.grad is not None])
    return [grads.pop(0) if leaf.grad is not None else np.zeros(leaf.shape)
            for leaf in leaves], _float(value)


def _directional_gradient(scalar_f, u):
    """h(x) = sum_i <df/dx_i, u_i>, with df/dx from ag.grad so that h can be differentiated."""
    argnums = tuple(range(len(u)))

    def h(*xs):
        grads = _as_tuple(ag_grad(scalar_f, argnums)(*xs))
        return sum((g * backend.moved(u_i, backend.of(g.data))).sum() for g, u_i in zip(grads, u))
    return h


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _compare(J, analytic, J_value, arrays, places, labels, order, eps, rtol, atol, directions,
             rng) -> list:
    """Autodiff's gradient ``analytic`` against finite differences of ``J`` (``J_value`` at
    the point): per element of every input, or along ``directions`` random directions. Every
    element's (or direction's) step search runs in lockstep with the others
    (``numeric.lockstep``): each round reads J at all of their stencils at once, so on Dask
    the computes number the rounds of the longest search (a handful), not the elements."""
    e_J = ROUNDING_OF_J * EPS * abs(J_value)
    if directions is None:
        points = [(i, index) for i, x in enumerate(arrays) for index in np.ndindex(*x.shape)]

        def moved(i, index, t):
            return [p.with_element(a, index, float(a[index]) + t) if j == i else p(a)
                    for j, (a, p) in enumerate(zip(arrays, places))]
        makers = [lambda t, i=i, index=index: moved(i, index, t) for i, index in points]
        sizes = [abs(float(arrays[i][index])) for i, index in points]
    else:
        # k random unit directions, each over all inputs at once, drawn in order from rng
        units = []
        for _ in range(directions):
            u = [rng.standard_normal(a.shape) for a in arrays]
            norm = np.sqrt(sum(np.sum(v * v) for v in u)) or 1.0
            units.append([v / norm for v in u])
        makers = [lambda t, u=u: [p.along(a, t, v) for a, v, p in zip(arrays, u, places)]
                  for u in units]
        size = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
        sizes = [size] * directions

    def evaluate(batch):
        values = iter(_values(J, (makers[k](t) for k, offsets in batch for t in offsets)))
        return [[next(values) for _ in offsets] for _, offsets in batch]
    found = lockstep([_difference(eps, e_J, size) for size in sizes], evaluate)

    if directions is not None:
        autodiff = np.array([sum(np.sum(np.asarray(g) * v) for g, v in zip(analytic, u))
                             for u in units])
        numeric = np.array([value for value, _ in found])
        tolerance = rtol * np.abs(numeric) + np.array([error for _, error in found]) + atol
        coarse = np.full(directions, eps is not None and eps < 1000 * np.spacing(size))
        check = _verdict(", ".join(labels), (directions,), order, autodiff, numeric, tolerance,
                         coarse)
        check.name = f"{', '.join(labels)} along {directions} directions"
        return [check]
    checks = []
    for i, x in enumerate(arrays):
        numeric, tolerance = np.zeros_like(x), np.zeros_like(x)
        coarse = np.zeros(x.shape, dtype=bool)
        for (j, index), (value, error) in zip(points, found):
            if j == i:
                numeric[index] = value
                tolerance[index] = rtol * abs(value) + error + atol
                coarse[index] = eps is not None and eps < 1000 * np.spacing(abs(float(x[index])))
        checks.append(_verdict(labels[i], x.shape, order, np.asarray(analytic[i], dtype=np.float64),
                               numeric, tolerance, coarse))
    return checks


def _difference(eps, e_J: float, size: float):
    """dJ/dx by finite differences and the error they carry, as a generator of
    ``numeric.search``'s kind (it yields the offsets it needs J at and is sent J there): a
    fixed step ``eps`` (central, truncation estimated at 2h), or, with eps None, the searched
    five-point stencil of ``check.numeric`` (step from 1e-3 |x|, at most 10 |x|; x = 0 counts
    as |x| = 1). Returns ``(value, error)``."""
    if eps is None:
        value, error, _ = yield from search(size, e_J)
        return value, error
    plus, minus, plus2, minus2 = yield (eps, -eps, 2 * eps, -2 * eps)
    value = (plus - minus) / (2 * eps)
    wider = (plus2 - minus2) / (4 * eps)
    rounding = ROUNDING_OF_J * EPS * max(abs(plus), abs(minus), e_J / EPS) / eps
    return value, rounding + 2 * abs(wider - value) / 3


def _verdict(label, shape, order, autodiff, numeric, tolerance, coarse) -> InputCheck:
    if autodiff.shape != numeric.shape:
        raise ValueError(f"gradcheck: the autodiff gradient of {label} has shape "
                         f"{autodiff.shape}, the input has shape {numeric.shape}")
    if autodiff.size == 0:
        return InputCheck(label, shape, order, 0.0, (), 0.0, 0.0, True, 0)
    diff = np.abs(autodiff - numeric)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isnan(diff), np.inf,
                         np.where(diff == 0, 0.0, diff / tolerance))
    worst = np.unravel_index(int(np.argmax(ratio)), autodiff.shape)
    return InputCheck(label, tuple(shape), order, float(np.nanmax(diff)) if np.any(~np.isnan(diff))
                      else float("nan"), tuple(int(i) for i in worst), float(autodiff[worst]),
                      float(numeric[worst]), bool(np.all(ratio <= 1)), int(autodiff.size),
                      bool(coarse[worst]), float(ratio[worst]))


def _shape(shape) -> str:
    return "x".join(str(n) for n in shape) if shape else "scalar"


def _jsonable(value):
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value

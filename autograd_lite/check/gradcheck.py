"""gradcheck: the engine's gradient against central finite differences, first or second order.

For a function ``f`` of some arrays, the autodiff gradient (``backward()``, or ``ag.grad``
twice for second order) must match

    dJ/dx[k] ~ (J(x + eps e_k) - J(x - eps e_k)) / (2 eps)

element by element (or along random directions, for large inputs). A custom primitive with a
wrong vjp fails here, and the result names the input, the worst element and both values.

Tolerances (float64): an element passes when ``|autodiff - numeric| <= atol + rtol * |numeric|``.
Central differences err by O(eps^2 f''') from truncation and by O(1e-16 |J| / eps) from
rounding, about 1e-10 for the default ``eps = 1e-6``; the defaults ``rtol = 1e-5`` and
``atol = 1e-8`` leave room for both while a wrong rule (off by a factor, a sign, a transpose)
misses by far more. Functions with kinks (relu at 0, abs at 0) can fail where an element
sits within eps of the kink: move the point, not the tolerance.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..core.modes import no_grad
from ..transforms import grad as ag_grad
from ..core.tensor import Tensor


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
        return max(self.checks, key=lambda c: (not c.passed, _excess(c, self.rtol, self.atol)))

    def to_dict(self) -> dict:
        return {"passed": self.passed, "mode": self.mode, "eps": self.eps, "rtol": self.rtol,
                "atol": self.atol, "notes": list(self.notes),
                "checks": [c.to_dict() for c in self.checks]}

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        lines = [f"gradcheck: {verdict} ({self.mode}; eps {self.eps:g}, an element passes when "
                 f"|autodiff - numeric| <= {self.atol:g} + {self.rtol:g} |numeric|)"]
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
            lines.append(f"  worst: {c.name} (order {c.order}) at {c.worst_index}: autodiff "
                         f"{c.autodiff:.6g} but finite differences {c.numeric:.6g}; check the vjp "
                         f"of the operation that {c.name} feeds (or a kink within eps of the point)")
        return "\n".join(lines)

    __repr__ = __str__


def gradcheck(f, inputs, *, eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-8,
              order: int = 1, directions: int | None = None, seed: int = 0,
              names=None) -> GradcheckResult:
    """Compare the engine's gradient of ``f`` at ``inputs`` with central finite differences.

    - ``f(*tensors)`` returns a Tensor. If it has more than one element, it is contracted with
      a fixed random cotangent v (``J = sum(v * f(x))``), which checks the whole vjp, not only
      the gradient of the sum.
    - ``inputs``: arrays, numbers or Tensors; float32 is upcast to float64 with a
      ``PrecisionWarning``. ``names`` labels them in the result (default: a Tensor's own
      name, else ``x0``, ``x1``, ...).
    - ``directions=None`` differentiates numerically along every element (2 evaluations per
      element). ``directions=k`` compares k random directional derivatives over all inputs at
      once instead (2k evaluations): the fast mode for large inputs.
    - ``order=2`` also checks the gradient of the gradient: for a fixed random u, the
      autodiff gradient of ``h(x) = <grad f(x), u>`` (``ag.grad`` twice, i.e. a Hessian-vector
      product) against central differences of h, itself computed by the engine's first order.
    """
    if order not in (1, 2):
        raise ValueError(f"gradcheck: order must be 1 or 2, got {order!r}")
    if directions is not None and (not isinstance(directions, int) or directions < 1):
        raise ValueError(f"gradcheck: directions must be None or a positive int, got {directions!r}")
    arrays, labels = _as_float64(inputs, names)
    rng = np.random.default_rng(seed)
    scalar_f, notes = _scalar_version(f, arrays, rng)

    checks = _compare(scalar_f, _first_order(scalar_f, arrays), arrays, labels, 1,
                      eps, rtol, atol, directions, rng)
    if order == 2:
        u = [rng.standard_normal(a.shape) for a in arrays]
        h = _directional_gradient(scalar_f, u)
        notes.append("order 2 checks d/dx <grad f(x), u> for a fixed random u "
                     "(a Hessian-vector product) against central differences of it")
        second = [np.asarray(g.data) for g in _as_tuple(ag_grad(h, tuple(range(len(arrays))))(*arrays))]
        checks += _compare(h, second, arrays, labels, 2, eps, rtol, atol, directions, rng)
    mode = ("central differences per element" if directions is None
            else f"{directions} random directions")
    return GradcheckResult(all(c.passed for c in checks), checks, mode, eps, rtol, atol, notes)


# ---- pieces -----------------------------------------------------------------------------------

def _as_float64(inputs, names):
    if isinstance(inputs, (np.ndarray, Tensor, float, int)):
        inputs = [inputs]
    arrays, labels = [], []
    for i, value in enumerate(inputs):
        label = (names[i] if names is not None
                 else (value.name if isinstance(value, Tensor) and value.name else f"x{i}"))
        data = value.data if isinstance(value, Tensor) else np.asarray(value)
        if data.dtype == np.float32 or data.dtype == np.float16:
            warnings.warn(f"gradcheck: input {label} is {data.dtype}; upcast to float64, since "
                          f"finite differences with eps ~1e-6 need float64's precision",
                          PrecisionWarning, stacklevel=3)
        arrays.append(np.array(data, dtype=np.float64, copy=True))
        labels.append(label)
    return arrays, labels


def _scalar_version(f, arrays, rng):
    """f itself if it returns one element, else x -> sum(v * f(x)) for a fixed random v."""
    with no_grad():
        out = f(*[Tensor(a) for a in arrays])
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: f must return a Tensor, got {type(out).__name__}")
    if out.data.size == 1:
        return (lambda *xs: f(*xs).sum()), []
    v = rng.standard_normal(out.shape)
    return ((lambda *xs: (f(*xs) * v).sum()),
            [f"f returns shape {out.shape}: checked J = sum(v * f(x)) for a fixed random v"])


def _value(scalar_f, arrays) -> float:
    with no_grad():
        return float(scalar_f(*[Tensor(a) for a in arrays]).data)


def _first_order(scalar_f, arrays) -> list:
    """The ordinary backward() gradient: plain ndarrays, the first-order code path."""
    leaves = [Tensor(a, requires_grad=True) for a in arrays]
    J = scalar_f(*leaves)
    if J.requires_grad:
        J.backward()
    return [leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data) for leaf in leaves]


def _directional_gradient(scalar_f, u):
    """h(x) = sum_i <df/dx_i, u_i>, with df/dx from ag.grad so that h can be differentiated."""
    argnums = tuple(range(len(u)))

    def h(*xs):
        grads = _as_tuple(ag_grad(scalar_f, argnums)(*xs))
        return sum((g * u_i).sum() for g, u_i in zip(grads, u))
    return h


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _compare(J, analytic, arrays, labels, order, eps, rtol, atol, directions, rng) -> list:
    if directions is None:
        return [_elementwise(J, analytic, arrays, i, labels[i], order, eps, rtol, atol)
                for i in range(len(arrays))]
    return [_along_directions(J, analytic, arrays, labels, order, eps, rtol, atol, directions, rng)]


def _elementwise(J, analytic, arrays, i, label, order, eps, rtol, atol) -> InputCheck:
    x = arrays[i]
    numeric = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        saved = x[index]
        x[index] = saved + eps
        plus = _value(J, arrays)
        x[index] = saved - eps
        minus = _value(J, arrays)
        x[index] = saved
        numeric[index] = (plus - minus) / (2 * eps)
    return _verdict(label, x.shape, order, np.asarray(analytic[i], dtype=np.float64), numeric,
                    rtol, atol)


def _along_directions(J, analytic, arrays, labels, order, eps, rtol, atol, k, rng) -> InputCheck:
    autodiff = np.zeros(k)
    numeric = np.zeros(k)
    for d in range(k):
        u = [rng.standard_normal(a.shape) for a in arrays]
        norm = np.sqrt(sum(np.sum(v * v) for v in u)) or 1.0
        u = [v / norm for v in u]
        plus = _value(J, [a + eps * v for a, v in zip(arrays, u)])
        minus = _value(J, [a - eps * v for a, v in zip(arrays, u)])
        numeric[d] = (plus - minus) / (2 * eps)
        autodiff[d] = sum(np.sum(np.asarray(g) * v) for g, v in zip(analytic, u))
    check = _verdict(", ".join(labels), (k,), order, autodiff, numeric, rtol, atol)
    check.name = f"{', '.join(labels)} along {k} directions"
    return check


def _verdict(label, shape, order, autodiff, numeric, rtol, atol) -> InputCheck:
    if autodiff.shape != numeric.shape:
        raise ValueError(f"gradcheck: the autodiff gradient of {label} has shape "
                         f"{autodiff.shape}, the input has shape {numeric.shape}")
    diff = np.abs(autodiff - numeric)
    excess = np.where(np.isnan(diff), np.inf, diff - (atol + rtol * np.abs(numeric)))
    if autodiff.size == 0:
        return InputCheck(label, shape, order, 0.0, (), 0.0, 0.0, True, 0)
    worst = np.unravel_index(int(np.argmax(excess)), autodiff.shape)
    return InputCheck(label, tuple(shape), order, float(np.nanmax(diff)) if np.any(~np.isnan(diff))
                      else float("nan"), tuple(int(i) for i in worst), float(autodiff[worst]),
                      float(numeric[worst]), bool(np.all(excess <= 0)), int(autodiff.size))


def _excess(check: InputCheck, rtol: float, atol: float) -> float:
    if np.isnan(check.max_abs):
        return np.inf
    return abs(check.autodiff - check.numeric) - (atol + rtol * abs(check.numeric))


def _shape(shape) -> str:
    return "x".join(str(n) for n in shape) if shape else "scalar"


def _jsonable(value):
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value

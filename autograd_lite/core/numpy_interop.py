"""numpy functions given a Tensor: each one records its autograd_lite op, or refuses.

numpy lets a type take over its functions (``__array_function__``, NEP 18) and ufuncs
(``__array_ufunc__``, NEP 13). Without that, ``np.clip(t, 0, 1)`` turns ``t`` into a plain
ndarray and the gradient through it is silently lost: ``(t * np.clip(t, 0, 1)).sum()`` would
differentiate as if the clip were a constant. So, as MyGrad does:

- a numpy function or ufunc that has an autograd_lite op records that op: ``np.exp(t)`` is
  ``t.exp()``, ``np.sum(t, axis=0)`` is ``t.sum(axis=0)``, ``ndarray + t`` is ``add``;
- comparisons and tests (``np.less``, ``np.isfinite``, ...) and ``np.argmax`` give plain
  ndarrays, as ``t < 0`` does: they have no gradient;
- ``np.shape``, ``np.ndim``, ``np.size`` read the shape;
- everything else raises a TypeError that names the function and the way out: the ag op, or
  ``np.asarray(t)`` (or ``t.numpy()``) to leave the graph on purpose.

Only numpy's functions that take part in this dispatch can be caught: ``np.array``,
``np.asarray`` and their kind convert on purpose, and numpy 1.x's deprecated
``np.fastCopyAndTranspose`` (C code without dispatch, gone in numpy 2) cannot be seen.
``tests/core/test_numpy_interop.py`` walks every public function and ufunc to hold this list.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..ops import compare, elementwise, reduce, shape
from . import tensor as _tensor
from .modes import grad_mode

# ufunc -> the Tensor method it is (one input), or the operator or ag function (two inputs)
_UNARY = {np.negative: "__neg__", np.positive: "__pos__", np.exp: "exp", np.log: "log",
          np.tanh: "tanh", np.absolute: "abs", np.sqrt: "sqrt", np.square: "square",
          np.sin: "sin", np.cos: "cos"}
_BINARY = {np.add: "__add__", np.subtract: "__sub__", np.multiply: "__mul__",
           np.true_divide: "__truediv__", np.power: "__pow__", np.matmul: "__matmul__",
           np.maximum: "maximum", np.minimum: "minimum"}
# no gradient, by definition: computed on the arrays, as Tensor's own comparisons are
_NO_GRADIENT = {np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
                np.isfinite, np.isinf, np.isnan, np.signbit, np.sign}

# numpy function -> the autograd_lite function of that name (ag.sum, ag.clip, ...)
_FUNCTIONS = {np.sum: "sum", np.mean: "mean", np.reshape: "reshape", np.transpose: "transpose",
              np.dot: "matmul", np.clip: "clip", np.concatenate: "concatenate", np.stack: "stack",
              np.split: "split", np.where: "where", np.var: "var", np.std: "std",
              np.max: "max", np.min: "min", np.amax: "max", np.amin: "min"}
_WITHOUT_GRADIENT = {np.argmax, np.argmin}
_SHAPE = {np.shape, np.ndim, np.size}


def array_ufunc(ufunc, method, inputs, kwargs):
    """``Tensor.__array_ufunc__``: a ufunc called with a Tensor among its inputs."""
    Tensor = _tensor.Tensor
    name = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    if method == "__call__" and ufunc in _NO_GRADIENT and not kwargs:
        if grad_mode.trace is not None:  # recorded, so that a replay recomputes the mask
            return _traced_test(ufunc, inputs)
        return ufunc(*[x.data if isinstance(x, Tensor) else x for x in inputs])
    if method != "__call__" or kwargs:
        extra = f" with {', '.join(sorted(kwargs))}=" if kwargs else ""
        raise _refusal(name + extra, "")
    if len(inputs) == 1 and ufunc in _UNARY:
        method = getattr(inputs[0], _UNARY[ufunc], None)
        if method is not None:
            return method()
    target = _BINARY.get(ufunc) if len(inputs) == 2 else None
    if target is not None and target.startswith("__"):
        result = getattr(_tensor.as_tensor(inputs[0], _like(inputs)), target)(inputs[1])
        if result is not NotImplemented:
            return result
    elif target is not None and _ag_function(target) is not None:
        return _ag_function(target)(*inputs)
    raise _refusal(name, _hint(_UNARY.get(ufunc) or target))


def array_function(function, types, args, kwargs):
    """``Tensor.__array_function__``: a numpy function called with a Tensor argument."""
    name = f"np.{function.__name__}"
    if not all(issubclass(t, (_tensor.Tensor, np.ndarray)) for t in types):
        return NotImplemented  # another array type's turn
    if function in _SHAPE:
        return function(*[_data(a) for a in args], **kwargs)
    if function in _WITHOUT_GRADIENT:
        if grad_mode.trace is not None and isinstance(args[0], _tensor.Tensor):
            return getattr(args[0], function.__name__)(*args[1:], **kwargs)
        return function(*[_data(a) for a in args], **kwargs)
    target = _FUNCTIONS.get(function)
    ag_function = _ag_function(target) if target else None
    if ag_function is None:
        raise _refusal(name, _hint(target))
    args, kwargs = _ag_arguments(function, name, target, args, kwargs)
    return ag_function(*args, **kwargs)


# numpy function -> (its parameters passed on to the ag function positionally, in order, "a|b"
# where numpy versions name one differently; those passed on by keyword). Any other parameter
# given a value other than numpy's default (where=, initial=, order="F", out=, dtype=, ...) is
# refused, naming it: numpy's positional order is read from the function's own signature, so
# np.var(t, 1, None, None, 1) is ddof=1.
_PARAMETERS = {
    **dict.fromkeys((np.sum, np.mean, np.max, np.min, np.amax, np.amin),
                    (("a",), ("axis", "keepdims"))),
    **dict.fromkeys((np.var, np.std), (("a",), ("axis", "ddof", "keepdims"))),
    np.reshape: (("a", "shape|newshape"), ()),
    np.transpose: (("a", "axes"), ()),
    np.dot: (("a", "b"), ()),
    np.clip: (("a", "a_min|min", "a_max|max"), ()),
    **dict.fromkeys((np.concatenate, np.stack), (("arrays",), ("axis",))),
    np.split: (("ary", "indices_or_sections"), ("axis",)),
    np.where: (("condition", "x", "y"), ()),
}
_WHY_NOT = {
    "out": "the result is always a new Tensor",
    "dtype": "the result is always a new Tensor of the input's dtype",
    "where": "mask the input instead, e.g. ag.where(mask, t, 0.0)",
    "initial": "combine it with the result instead, e.g. t.sum() + initial",
    "order": "a Tensor is reshaped in C order only; transpose first for F order",
    "casting": "operands keep their dtypes by numpy's promotion",
    "mean": "it is computed from the input",
    "correction": "use ddof=",
}
# numpy's documented signature of a C function that has none before numpy 2.3
_SIGNATURES: dict = {np.concatenate: inspect.Signature([
    inspect.Parameter("arrays", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("axis", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=0),
    inspect.Parameter("out", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
    inspect.Parameter("dtype", inspect.Parameter.KEYWORD_ONLY, default=None),
    inspect.Parameter("casting", inspect.Parameter.KEYWORD_ONLY, default="same_kind")])}


def _ag_arguments(function, name, target, args, kwargs):
    """numpy's ``args, kwargs`` for ``function`` as the ag function's, or a refusal naming the
    parameter the engine does not support."""
    if function not in _SIGNATURES:
        try:
            _SIGNATURES[function] = inspect.signature(function)
        except (TypeError, ValueError):  # a C function without one (numpy 1.x's np.where)
            _SIGNATURES[function] = None
    signature = _SIGNATURES[function]
    positional, by_keyword = _PARAMETERS[function]

    def wanted(parameter):
        return parameter in by_keyword or any(parameter in p.split("|") for p in positional)

    if signature is None:  # only the keywords can be read: refuse those the engine lacks
        for parameter, value in kwargs.items():
            if not wanted(parameter) and value is not None:
                raise _unsupported(name, parameter, target)
        return args, kwargs
    try:
        given = signature.bind(*args, **kwargs).arguments
    except TypeError as error:
        raise TypeError(f"{name}: {error}") from None
    for parameter, value in given.items():
        if not wanted(parameter) and not _is_default(value, signature.parameters[parameter]):
            raise _unsupported(name, parameter, target)
    values = []
    for names in positional:
        found = [n for n in names.split("|") if n in given]
        values.append(given[found[0]] if found else None)
    while values and values[-1] is None and len(values) > 1:
        values.pop()  # left to the ag function's defaults
    return values, {n: given[n] for n in by_keyword if n in given}


def _unsupported(name, parameter, target):
    return TypeError(f"{name}: {parameter}= is not supported on a Tensor ("
                     f"{_WHY_NOT.get(parameter, f'ag.{target} has no such parameter')}); "
                     f"or call np.asarray(t) first to leave the graph on purpose")


def _is_default(value, parameter) -> bool:
    default = parameter.default
    if value is default or value is None and default in (None, inspect.Parameter.empty):
        return True
    plain = (str, int, float, bool, type(None))
    return isinstance(value, plain) and isinstance(default, plain) and value == default


def _traced_test(ufunc, inputs):
    tensors = tuple(_tensor.as_tensor(x, _like(inputs)) for x in inputs)
    return _tensor.apply(compare.COMPARE, tensors, {"how": ufunc.__name__})


def _method(name):
    """``ag.<name>(x, ...)``: the Tensor method of that name on ``x`` made a Tensor."""
    return lambda x, *args, **kwargs: getattr(_tensor.as_tensor(x), name)(*args, **kwargs)


# name -> what ``ag.<name>`` does (the numpy function of that name records it)
_AG_FUNCTIONS = {
    **{name: _method(name) for name in ("sum", "mean", "reshape", "transpose", "exp", "log",
                                        "tanh", "abs", "sigmoid", "relu")},
    "matmul": lambda x, y: _tensor.as_tensor(x) @ y,
    "clip": elementwise.clip, "sqrt": elementwise.sqrt, "square": elementwise.square,
    "sin": elementwise.sin, "cos": elementwise.cos, "maximum": elementwise.maximum,
    "minimum": elementwise.minimum, "concatenate": shape.concatenate, "stack": shape.stack,
    "split": shape.split, "where": shape.where, "var": reduce.var, "std": reduce.std,
    "max": reduce.max, "min": reduce.min,
}


def _ag_function(name):
    return _AG_FUNCTIONS.get(name)


def _like(values):
    return next(v for v in values if isinstance(v, _tensor.Tensor))


def _data(value):
    return value.data if isinstance(value, _tensor.Tensor) else value


def _hint(target):
    if target and _ag_function(target.strip("_")) is not None:
        return f"use ag.{target.strip('_')} instead"
    return "use the autograd_lite operation that does this, if there is one"


def _refusal(name, hint):
    hint = f"{hint}; or " if hint else ""
    return TypeError(
        f"{name}: not supported on a Tensor: it would turn the Tensor into a plain array and "
        f"silently lose its gradient; {hint}call np.asarray(t) (or t.numpy()) first to leave "
        f"the graph on purpose")


def _tensor_array_ufunc(self, ufunc, method, *inputs, **kwargs):
    return array_ufunc(ufunc, method, inputs, kwargs)


def _tensor_array_function(self, function, types, args, kwargs):
    return array_function(function, types, args, kwargs)


# Installed on Tensor here rather than written in it: this module is built on Tensor's own
# operators, so it sits above core.tensor and the two never import each other.
_tensor.Tensor.__array_ufunc__ = _tensor_array_ufunc
_tensor.Tensor.__array_function__ = _tensor_array_function

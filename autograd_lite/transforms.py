"""Functions of functions: gradients you can differentiate again (higher order).

As in JAX and HIPS autograd, ``ag.grad(f)`` is a new function. It runs the same traversal and
the same vjp rules as ``backward()``, but on Tensors (``as_tensor=tensor_of``), so what it returns is a
Tensor with a graph of its own: ``ag.grad(ag.grad(f))`` is the second derivative.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .core.backward import backpropagate
from .core.graph import release
from .core.modes import enable_grad
from .errors import ShapeError
from .core.tensor import Tensor, sharing, tensor_of


def value_and_grad(f, argnums=0):
    """``value_and_grad(f)(*args)`` returns ``(f(*args), df/dargs[argnums])``.

    ``f`` must return a single-element Tensor. ``argnums`` is an int (one gradient) or a tuple
    of distinct ints (a tuple of gradients, in that order); a repeated argument is refused, as
    torch.func does. Each gradient is the partial derivative with respect to that argument,
    even when the same Tensor is passed in two places (``f(x, x)``). Arguments that are not
    Tensors with ``requires_grad`` are wrapped as new leaves; a Tensor that already requires
    grad is used as it is (or through an identity op, when it is passed twice), which is what
    lets an outer ``grad`` differentiate through an inner one. An argument of integers or
    booleans (indices, labels, a mask) has no gradient and is refused. Each gradient is a Tensor
    of its argument's shape (zeros where f does not depend on the argument).
    """
    single = isinstance(argnums, int) and not isinstance(argnums, bool)
    positions = (argnums,) if single else _argnums(argnums)

    def value_and_gradient(*args, **kwargs):
        args = list(args)
        for position in positions:
            if not -len(args) <= position < len(args):
                raise ValueError(f"grad: argnums {argnums!r} asks for argument {position}, but "
                                 f"the function was called with {len(args)} positional arguments")
        resolved = [p % len(args) for p in positions]
        if len(set(resolved)) != len(resolved):
            raise ValueError(f"grad: argnums {argnums!r} names argument "
                             f"{next(p for p in resolved if resolved.count(p) > 1)} twice (with "
                             f"{len(args)} arguments); ask for each argument once")
        with enable_grad():
            targets = [_differentiable(args[p], p, _passed_twice(args[p], args, kwargs))
                       for p in resolved]
            for position, target in zip(resolved, targets):
                args[position] = target
            value = f(*args, **kwargs)
            if not isinstance(value, Tensor):
                raise TypeError(f"grad: the function must return a Tensor, got {type(value).__name__}")
            if value.size != 1:
                raise ValueError(f"grad: the function must return a single element (a scalar), "
                                 f"got shape {value.shape}; reduce it with .sum() or .mean()")
            grads = [None] * len(targets)
            if value.requires_grad:
                seed = Tensor._result(backend.namespace(value._data).ones_like(value._data), None, False)
                wanted = {}  # node or leaf -> the positions asking for its gradient
                for i, target in enumerate(targets):
                    wanted.setdefault(target.grad_fn or target, []).append(i)
                for x, x_grad in backpropagate(value.grad_fn, seed, as_tensor=tensor_of):
                    for i in wanted.get(x, ()):
                        grads[i] = x_grad
                # The gradients' graphs (for a higher derivative) keep copies of what they saved,
                # so the arguments can be updated in place (`w.data -= lr * g.data`).
                release(kept=set())
        grads = [Tensor._result(_zeros_like(t._data), None, False) if g is None else g
                 for g, t in zip(grads, targets)]
        return value, (grads[0] if single else tuple(grads))

    return value_and_gradient


def _argnums(argnums) -> tuple:
    """``argnums`` as a tuple of ints, refusing anything else and literal repeats."""
    try:
        positions = tuple(argnums)
    except TypeError:
        positions = None
    if positions is None or not positions or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in positions):
        raise TypeError(f"grad: argnums must be an int or a non-empty tuple of ints, got "
                        f"{argnums!r}")
    repeated = sorted({p for p in positions if positions.count(p) > 1})
    if repeated:
        raise ValueError(f"grad: argnums {argnums!r} names argument {repeated[0]} more than once; "
                         f"ask for each argument once (torch.func refuses repeats too)")
    return positions


def _passed_twice(value, args, kwargs) -> bool:
    return isinstance(value, Tensor) and sum(
        [a is value for a in (*args, *kwargs.values())]) > 1


def grad(f, argnums=0):
    """``grad(f)(*args)`` is df/dargs[argnums] as a differentiable Tensor (see value_and_grad).

    >>> import autograd_lite as ag
    >>> d2 = ag.grad(ag.grad(lambda x: x.sigmoid()))   # s'' = s (1 - s)(1 - 2 s), from eq 8
    >>> round(d2(ag.Tensor(0.0)).item(), 12)
    0.0
    """
    value_and_gradient = value_and_grad(f, argnums)

    def gradient(*args, **kwargs):
        return value_and_gradient(*args, **kwargs)[1]

    return gradient


def hvp(f, x, v):
    """The Hessian of ``f`` at ``x`` times the vector ``v``, without forming the Hessian:
    the gradient of <grad f(x), v> (reverse over reverse)."""
    v = v.detach() if isinstance(v, Tensor) else Tensor(v)
    x_shape = x.shape if isinstance(x, Tensor) else np.shape(x)
    if v.shape != x_shape:
        raise ShapeError(f"hvp: v has shape {v.shape} but x has shape {x_shape}; the Hessian of f "
                         f"at x multiplies a vector of x's own shape")
    return grad(lambda point: (grad(f)(point) * v).sum())(x)


def _zeros_like(array):
    # numpy's own for an ndarray: a gradient on numpy loads no array-API layer
    return np.zeros_like(array) if isinstance(array, np.ndarray) else \
        backend.namespace(array).zeros_like(array)


def _differentiable(value, position, passed_twice):
    """The argument at ``position`` as a Tensor whose gradient backward computes: a Tensor that
    requires grad as it is (so an outer grad sees through), through an identity op if the same
    Tensor is also passed elsewhere (its own node: the partial derivative); anything else
    (numbers, arrays, constants) as a new leaf."""
    kind = backend.dtype_kind(value.dtype) if hasattr(value, "dtype") else \
        ("b" if isinstance(value, bool) else "f")
    if kind not in "fc":
        dtype = value.dtype if hasattr(value, "dtype") else type(value).__name__
        raise TypeError(
            f"grad: argument {position} holds {dtype} values (indices, labels, a mask?), which "
            f"have no gradient; leave it out of argnums, or pass floats (x.astype(float)) if it "
            f"is a real quantity")
    if isinstance(value, Tensor):
        if value.requires_grad:
            return value.reshape(value.shape) if passed_twice else value
        return sharing(value._data, requires_grad=True)
    return Tensor(value, requires_grad=True)

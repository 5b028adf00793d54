"""Functions of functions: gradients you can differentiate again (higher order).

As in JAX and HIPS autograd, ``ag.grad(f)`` is a new function. It runs the same traversal and
the same vjp rules as ``backward()``, but on Tensors (``as_tensor=tensor_of``), so what it returns is a
Tensor with a graph of its own: ``ag.grad(ag.grad(f))`` is the second derivative.
"""
from __future__ import annotations

import numpy as np

from .core.backward import backpropagate
from .core.graph import release
from .core.modes import enable_grad
from .errors import ShapeError
from .core.tensor import Tensor, tensor_of


def value_and_grad(f, argnums=0):
    """``value_and_grad(f)(*args)`` returns ``(f(*args), df/dargs[argnums])``.

    ``f`` must return a single-element Tensor. ``argnums`` is an int (one gradient) or a tuple
    of ints (a tuple of gradients). Arguments that are not Tensors with ``requires_grad`` are
    wrapped as new leaves; a Tensor that already requires grad is used as it is, which is what
    lets an outer ``grad`` differentiate through an inner one. Each gradient is a Tensor of its
    argument's shape (zeros where f does not depend on the argument).
    """
    single = isinstance(argnums, int)
    positions = (argnums,) if single else tuple(argnums)

    def value_and_gradient(*args, **kwargs):
        args = list(args)
        for position in positions:
            if not -len(args) <= position < len(args):
                raise ValueError(f"grad: argnums {argnums!r} asks for argument {position}, but "
                                 f"the function was called with {len(args)} positional arguments")
        with enable_grad():
            targets = [_differentiable(args[p]) for p in positions]
            for position, target in zip(positions, targets):
                args[position] = target
            value = f(*args, **kwargs)
            if not isinstance(value, Tensor):
                raise TypeError(f"grad: the function must return a Tensor, got {type(value).__name__}")
            if value.data.size != 1:
                raise ValueError(f"grad: the function must return a single element (a scalar), "
                                 f"got shape {value.shape}; reduce it with .sum() or .mean()")
            grads = [None] * len(targets)
            if value.requires_grad:
                seed = Tensor._result(np.ones_like(value.data), None, False)
                wanted = {}  # node or leaf -> the positions asking for its gradient
                for i, target in enumerate(targets):
                    wanted.setdefault(target.grad_fn or target, []).append(i)
                for x, x_grad in backpropagate(value.grad_fn, seed, as_tensor=tensor_of):
                    for i in wanted.get(x, ()):
                        grads[i] = x_grad
                # The gradients' graphs (for a higher derivative) keep copies of what they saved,
                # so the arguments can be updated in place (`w.data -= lr * g.data`).
                release(kept=set())
        grads = [Tensor._result(np.zeros_like(t.data), None, False) if g is None else g
                 for g, t in zip(grads, targets)]
        return value, (grads[0] if single else tuple(grads))

    return value_and_gradient


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


def _differentiable(value):
    if isinstance(value, Tensor):
        return value if value.requires_grad else Tensor._result(value.data, None, True)
    return Tensor(value, requires_grad=True)

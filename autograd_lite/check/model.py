"""compare_model: the three-way comparison for an ``nn`` model, run through the model itself.

``compare`` rebuilds a network from arrays; ``compare_model`` takes an ``nn.MLP`` or an
``nn.Sequential`` of ``Linear`` layers and activations and lets the *model's own* forward pass
be the autodiff way, so what is checked is the code you train. The hand derivation and the
finite differences get the model's W[l], b[l] and activations g[l] (eqs 33-34) as arrays.
"""
from __future__ import annotations

import warnings

from .. import reference as ref
from ..nn.activations import Activation
from ..nn.layers import MLP, Linear, Sequential
from ..core.tensor import Tensor, forward_hooks
from .compare import (Comparison, as_float64, compare_ways, events_of, loss_of, watching,
                      with_autodiff_on_host)


def compare_model(model, X, Y, loss: str = "log-loss", *, rules: ref.Rules = ref.SEED_RULES,
                  convention: str = "seed", max_numeric: int = 256, seed: int = 0) -> Comparison:
    """``compare`` for a model: its dA, dZ, dW, db (eqs 77-84) three ways, per layer.

    ``model`` is an ``nn.MLP`` or an ``nn.Sequential`` alternating ``Linear`` layers and
    activations (a Linear with no activation after it counts as identity). ``loss`` is
    ``"log-loss"``, ``"mse"`` or ``"cross-entropy"`` as in ``reference``. The model's
    parameters keep their values and their ``.grad``. Other options as in ``compare``.
    """
    W, b, activations = _chain(model)
    # shapes first, values after autodiff, brought over with its gradients (as compare does)
    activations = ref.check_network(W, b, X, Y, activations, loss, convention,
                                    caller="compare_model")
    # autodiff: the model where it lives, on X and Y where they live (float64)
    autodiff = _autodiff_of_model(model, as_float64(X), as_float64(Y), loss)
    # the hand derivation and numeric: the host
    (W, b, X_host, Y_host), autodiff = with_autodiff_on_host([W, b, X, Y], autodiff)
    W, b, X_host, Y_host, activations = ref.validate_network(
        W, b, X_host, Y_host, activations, loss, convention, caller="compare_model")
    return compare_ways(W, b, X_host, Y_host, activations, loss, autodiff,
                        rules=rules, convention=convention, max_numeric=max_numeric, seed=seed)


def _chain(model):
    """The model's W[l], b[l] (copies) and activation names, layer by layer."""
    if isinstance(model, MLP):
        pairs = list(zip(model.layers, model.activations))
    elif isinstance(model, Sequential):
        pairs, modules = [], list(model)
        for index, module in enumerate(modules):
            if isinstance(module, Linear):
                following = modules[index + 1] if index + 1 < len(modules) else None
                pairs.append((module, following if isinstance(following, Activation) else None))
            elif not isinstance(module, Activation) or index == 0 or not isinstance(modules[index - 1], Linear):
                raise TypeError(f"compare_model: module {index} of the Sequential "
                                f"({type(module).__name__}) does not fit the chain Linear, "
                                f"activation, Linear, ... that eqs 33-34 describe")
    else:
        raise TypeError(f"compare_model: needs an nn.MLP or an nn.Sequential of Linear layers "
                        f"and activations (eqs 33-34), got {type(model).__name__}; for any other "
                        f"model use check.gradcheck on a function of its parameters")
    activations = []
    for linear, activation in pairs:
        name = "identity" if activation is None else activation.function
        if name == "softmax" and getattr(activation, "axis", 0) != 0:
            raise ValueError("compare_model: the hand derivation takes softmax over axis 0 "
                             "(samples are columns)")
        activations.append(name)
    W = [linear.W.data for linear, _ in pairs]  # copied to the host by compare_model
    b = [linear.b.data for linear, _ in pairs]
    return W, b, activations


def _autodiff_of_model(model, X, Y, loss):
    """The model's forward pass, with every Z[l] and A[l] it names kept (``retain_grad``), and
    one backward of eq 76's J. Returns ``(grads, J, sentinel events)`` as ``compare``'s
    ``_autodiff`` does, with the model's parameters' ``.grad`` as they were before."""
    parameters = model.parameters()
    saved_grads = [p.grad for p in parameters]
    made = []
    record = lambda op, inputs, output: made.append(output)  # noqa: E731
    forward_hooks.append(record)
    try:
        for p in parameters:
            p.grad = None
        with watching([X, *(p.data for p in parameters)]) as watch, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the sentinel records what the loss would warn
            A = model(Tensor(X, name="A[0]"))
            # Names are given after an op runs (`.named("Z[1]")`), so look them up now.
            named = {t.name: t for t in made if t.name and t.requires_grad}
            for tensor in named.values():
                tensor.retain_grad()
            J = loss_of(A, Tensor(Y, name="Y"), loss, X.shape[1]).named("J")
            J.backward()
        return _gradients_by_layer(model, named), J, events_of(watch)
    finally:
        forward_hooks.remove(record)
        for p, grad in zip(parameters, saved_grads):
            p.grad = grad


def _gradients_by_layer(model, named):
    linears = model.layers if isinstance(model, MLP) else [m for m in model if isinstance(m, Linear)]
    N = len(linears)
    grads = {"dW": [None], "db": [None], "dZ": [None], "dA": [None]}
    for l, linear in enumerate(linears, start=1):
        Z = named.get(f"Z[{l}]")
        if Z is None:
            raise RuntimeError(f"compare_model: the model's forward pass made no tensor named "
                               f"Z[{l}]; its layers must be numbered 1..{N} (MLP and Sequential "
                               f"number them)")
        A = named.get(f"A[{l}]", Z)  # an identity layer's A[l] is Z[l] itself
        grads["dW"].append(linear.W.grad)
        grads["db"].append(linear.b.grad)
        grads["dZ"].append(Z.grad)
        grads["dA"].append(A.grad)
    return grads

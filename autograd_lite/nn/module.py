"""Module: a piece of network whose parameters are found from its attributes.

Assign ``Parameter``s and other ``Module``s (alone, or in lists, tuples and dicts) as attributes
in ``__init__``, write ``forward`` as plain Python on Tensors, and the module can list its
parameters with dotted names (``layers.0.W``), reset their gradients, save and load them.
Nothing here differentiates anything: ``forward`` records Tensor operations and the engine
derives every gradient.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..backend import MixedBackendsError
from ..core.modes import grad_mode
from ..core.tensor import Tensor
from .parameter import Parameter


class Module:
    """Base class of layers and models. Subclasses define ``forward``; call the module itself.

    Discovery walks the attributes in the order they were assigned: a ``Parameter`` is
    registered under its attribute name, a child ``Module`` adds its own names behind a dot,
    and lists/tuples/dicts of them are numbered (``layers.0.W``) or keyed. A parameter reached
    twice (shared weights) is listed once, under the first name that reaches it, so an optimizer
    updates it once with the sum of the gradients of all its uses.
    """

    # Training or evaluation mode (PyTorch's): Dropout and BatchNorm behave differently in
    # each. A class attribute, so subclasses need not call an __init__; train()/eval() set it on
    # every module of the tree.
    training = True

    def forward(self, *inputs, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward(...)")

    # --- modes ------------------------------------------------------------------------------
    def train(self, mode=True):
        """Put this module and every descendant in training mode (``mode=False``: evaluation
        mode). Dropout drops and BatchNorm uses the batch's statistics only while training.
        Returns the module, so ``model.train()`` can be chained."""
        if not isinstance(mode, bool):
            raise TypeError(f"{type(self).__name__}.train: mode must be True or False, got {mode!r}")
        for _, module in self.named_modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``. Dropout is the identity, BatchNorm uses its
        running statistics. Use it before measuring a model on held-out data."""
        return self.train(False)

    # --- buffers: saved state that is not trained (BatchNorm's running statistics) -----------
    def register_buffer(self, name, array):
        """Keep a float64 copy of ``array``, in its own backend, as attribute ``name``, saved
        and loaded with the parameters (``state_dict``, ``save``) and moved by ``to``, but
        never given to an optimizer."""
        names = self.__dict__.setdefault("_buffer_names", [])
        if name not in names:
            names.append(name)
        object.__setattr__(self, name, backend.new_array(array, np.float64)[0])

    def named_buffers(self) -> list:
        """``(dotted name, array)`` for every buffer of this module and its descendants."""
        return [(f"{prefix}.{name}" if prefix else name, getattr(module, name))
                for prefix, module in self.named_modules()
                for name in module.__dict__.get("_buffer_names", ())]

    def __call__(self, *inputs, **kwargs):
        trace = grad_mode.trace
        if trace is not None:  # ag.compile watches the module's mode and state from now on
            trace.calls_module(self)
        try:
            return self.forward(*inputs, **kwargs)
        except MixedBackendsError as error:  # said again in the module's words, with the way out
            raise _mixed(self, inputs, error) from None

    # --- where the parameters live ----------------------------------------------------------
    def to(self, target=None, device=None):
        """Move every parameter and buffer to another backend, in place; returns the module.

        ``model.to(torch)``, ``model.to(torch, device="cuda")``, ``model.to("cuda")`` or
        ``model.to(device="cuda")`` (a device of the parameters' own namespace),
        ``model.to(np)``, ``model.to(X)`` (the backend of an array or Tensor X): the targets of
        ``Tensor.to``. As PyTorch's ``Module.to``, every Parameter stays the same object and
        gets the moved array (its ``.grad`` moved too), so an optimizer made before still holds
        the model's parameters; one that has taken steps keeps its buffers where they were made,
        and its next step refuses the mix (make it after moving, or move its state with
        ``optimizer.load_state_dict(optimizer.state_dict())``). Dropout's generator stays
        numpy's: the same seed draws the same masks on every backend.

        All or nothing: every array is moved before any is assigned, and a backend that
        cannot hold a parameter is refused with nothing changed: Dask (a model trained on Dask
        data keeps numpy parameters, which join Dask's graphs, and backward computes their
        gradients in one ``dask.compute``), or a namespace without the parameter's dtype
        (JAX without ``jax_enable_x64`` for float64)."""
        slots = [(name, parameter, "data") for name, parameter in self.named_parameters()]
        slots += [(name, parameter, "grad") for name, parameter in self.named_parameters()
                  if parameter.grad is not None]
        owners = dict(self.named_modules())
        for name, _ in self.named_buffers():
            owner, _, attribute = name.rpartition(".")
            slots.append((name, owners[owner], attribute))
        arrays = [moved_to(getattr(owner, attribute), target, device, f"{type(self).__name__}.to",
                           name) for name, owner, attribute in slots]
        for (_, owner, attribute), array in zip(slots, arrays):
            if array is getattr(owner, attribute):
                continue  # there already: not a change (a graph that saved it stays usable)
            if isinstance(owner, Tensor):
                setattr(owner, attribute, array)
            else:
                object.__setattr__(owner, attribute, array)
        return self

    def __setattr__(self, name, value):
        # NOTE: a learner who writes `self.W = ag.Tensor(..., requires_grad=True)` would get a
        # model that never trains and never saves W; say so at once instead.
        if (isinstance(value, Tensor) and not isinstance(value, Parameter)
                and value.requires_grad and value.is_leaf):
            raise TypeError(
                f"{type(self).__name__}.{name}: a leaf Tensor with requires_grad=True is not "
                f"registered as a parameter; assign nn.Parameter(array) to train and save it, or "
                f"a Tensor without requires_grad for a constant")
        object.__setattr__(self, name, value)

    # --- discovery --------------------------------------------------------------------------
    def named_children(self) -> list:
        """``(name, module)`` for each direct child module, list entries numbered (``layers.0``)."""
        children = []
        for name, value in vars(self).items():
            for key, item in _entries(name, value):
                if isinstance(item, Module):
                    children.append((key, item))
        return children

    def named_modules(self) -> list:
        """``(dotted name, module)`` for this module (name ``""``) and every descendant, once
        each, in attribute order (depth first)."""
        return [(name, item) for name, item in self._walk() if isinstance(item, Module)]

    def named_parameters(self) -> list:
        """``(dotted name, Parameter)`` for every parameter of this module and its descendants,
        in attribute order, each parameter once (``[("layers.0.W", W[1]), ...]``)."""
        return [(name, item) for name, item in self._walk() if isinstance(item, Parameter)]

    def _walk(self):
        """Every module and parameter reachable from this one, each once, in attribute order.

        Depth first with an explicit stack (no recursion), so a module that refers back to an
        ancestor, or a very deep nesting, cannot loop or overflow."""
        found, seen = [], {id(self)}
        stack = [("", self)]
        while stack:
            prefix, item = stack.pop()
            found.append((prefix, item))
            if isinstance(item, Parameter):
                continue
            pending = []
            for name, value in vars(item).items():
                for key, entry in _entries(name, value):
                    if id(entry) not in seen:
                        seen.add(id(entry))
                        pending.append((f"{prefix}.{key}" if prefix else key, entry))
            stack.extend(reversed(pending))
        return found

    def parameters(self) -> list:
        """Every parameter, each once: what an optimizer takes."""
        return [parameter for _, parameter in self.named_parameters()]

    def num_parameters(self) -> int:
        """The number of trainable numbers (the sizes of all parameters added up)."""
        return sum(parameter.size for parameter in self.parameters())

    def zero_grad(self):
        """Reset every parameter's ``.grad`` to None (gradients add up across backward calls)."""
        for parameter in self.parameters():
            parameter.grad = None

    # --- saving -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{dotted name: copy of the array}`` for every parameter, then every buffer, then
        ``{dotted name: JSON text}`` for the state of every random generator a layer holds
        (Dropout's ``rng``): everything that shapes the next step."""
        from .serialization import state
        return state(self)

    def load_state_dict(self, state: dict, allow_nonfinite=False):
        """Set every parameter and buffer from ``state`` (dotted name -> array), and each
        generator whose state it holds. All names and shapes are checked first; on any mismatch a ValueError/ShapeError names the parameter and both
        shapes, and the model is left unchanged. nan/inf values are refused unless
        ``allow_nonfinite=True``."""
        from .serialization import load_state
        load_state(self, state, source="load_state_dict", allow_nonfinite=allow_nonfinite)
        return self

    def save(self, path):
        """Write ``state_dict()`` to ``path`` as an ``.npz`` keyed by dotted name, atomically."""
        from .serialization import save
        save(self, path)

    def load(self, path, allow_nonfinite=False):
        """Read parameters written by ``save``; the model is unchanged if anything is wrong
        (one ``autograd_lite.io.BadFileError`` naming the file and the fault). nan/inf
        parameters are refused unless ``allow_nonfinite=True``."""
        from .serialization import load
        load(self, path, allow_nonfinite=allow_nonfinite)
        return self

    # --- printing ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """What goes between the parentheses of this module's repr (subclasses override)."""
        return ""

    def __repr__(self):
        children = self.named_children()
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, child in children:
            child_text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_text}")
        return "\n".join(lines) + "\n)"


def placement(target, device, owner):
    """The backend ``owner`` (a layer given ``like=``/``device=``) puts its parameters on:
    numpy when neither is given, else what ``Tensor.to(target, device)`` means, a device alone
    being one of numpy's (Dask refused as ``moved_to`` says)."""
    if target is None and device is None:
        return backend.NUMPY
    return _resolved(target, device, backend.NUMPY, owner)


def moved_to(array, target, device, owner, name):
    """``array`` (a parameter's or buffer's, called ``name``) copied to the backend ``target``
    and ``device`` mean (see ``Module.to``), or itself when it is there; refused with a
    TypeError naming ``owner``, ``name`` and the reason where that backend cannot hold it."""
    where = _resolved(target, device, backend.of(array), owner)
    result = backend.moved(array, where)
    if _dtype_name(result.dtype) != _dtype_name(array.dtype):
        raise TypeError(f"{owner}: {where!r} cannot hold {name} as {_dtype_name(array.dtype)} "
                        f"(it would become {_dtype_name(result.dtype)}); nothing was moved"
                        + ("; call jax.config.update('jax_enable_x64', True) first"
                           if where.name == "jax" else ""))
    return result


def _resolved(target, device, current, owner):
    if isinstance(target, Tensor):
        target = target.data
    if target is None:
        target, device = device, None
    if target is None:
        raise TypeError(f"{owner}: give a namespace (torch, numpy, ...), an array or Tensor "
                        f"whose backend to join, or a device")
    try:
        where = backend.resolve(target, device, current)
    except TypeError as error:  # said for this module (Tensor.to's words otherwise)
        raise TypeError(f"{owner}: {str(error).removeprefix('to: ')}") from None
    if where.is_dask:
        raise TypeError(f"{owner}: parameters do not live in Dask; a model trained on Dask data "
                        f"keeps numpy parameters (numpy arrays join Dask's graphs, and backward "
                        f"computes their gradients in one dask.compute): leave the model in numpy")
    return where


def _dtype_name(dtype) -> str:
    return str(dtype).rpartition(".")[2]  # torch.float64, array_api_strict.float64 -> float64


def _mixed(module, inputs, error):
    """``error`` (a MixedBackendsError from ``module``'s forward) said again naming the module,
    where its parameters live, where its input lives and the way out, when those two are what
    was mixed; else (or said already by a module inside) the error itself."""
    if getattr(error, "module", None) is not None:
        return error
    ours = list(dict.fromkeys(backend.of(p.data) for p in module.parameters()))
    theirs = [backend.of(x.data if isinstance(x, Tensor) else x) for x in inputs
              if isinstance(x, Tensor) or backend.is_array(x)]
    clash = [(a, b) for a in ours for b in theirs if not _joins(a, b)]
    if not clash:
        return error
    a, b = clash[0]
    head = f"{type(module).__name__}({module.extra_repr()})"
    mixed = MixedBackendsError(
        f"{head}: its parameters live in {a!r}, its input in {b!r}; autograd_lite never moves "
        f"data silently. Move the model to the input's backend first, model.to(X) (or "
        f"model.to(namespace, device=...)), or the input to the model's, X.to(...)")
    mixed.module = module
    return mixed


def _joins(a, b) -> bool:
    try:
        backend.join("", [a, b])
    except MixedBackendsError:
        return False
    return True


def _entries(name, value):
    """``(key, item)`` pairs an attribute contributes: itself, or its numbered/keyed items."""
    if isinstance(value, (Parameter, Module)):
        return [(name, value)]
    if isinstance(value, (list, tuple)):
        return [(f"{name}.{i}", item) for i, item in enumerate(value)
                if isinstance(item, (Parameter, Module))]
    if isinstance(value, dict):
        return [(f"{name}.{key}", item) for key, item in value.items()
                if isinstance(item, (Parameter, Module))]
    return []

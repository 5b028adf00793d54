"""Saving and loading a module's parameters: one ``.npz`` keyed by dotted parameter name.

Writes are atomic: the arrays go to a temporary file in the target's directory, which then
replaces the target in one ``os.replace``, so a crash mid-write leaves the old file (or no
file), never half of one. Reads go through ``files.read_npz``: a parameter file holds numbers only, loading it can never
run code, and a bad file is one ``files.BadFileError`` naming it. Every name, shape and dtype is
checked, and nan/inf refused unless allowed, before any parameter changes.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import ShapeError
from ..io import BadFileError, as_bad_file, read_npz, write_atomically


def save(module, path):
    """Write ``module.named_parameters()`` and its buffers (``named_buffers()``, e.g. BatchNorm's
    running statistics) to ``path`` (``.npz``; no suffix is added)."""
    arrays = {name: parameter.data for name, parameter in module.named_parameters()}
    arrays.update(module.named_buffers())
    write_npz(path, arrays)


def write_npz(path, arrays):
    """Write ``arrays`` (key -> ndarray) to ``path`` as an ``.npz``, whole or not at all.

    Shared with ``optim.Optimizer.save``; the atomic write itself is ``files.write_atomically``,
    which the graph pictures use too."""
    write_atomically(path, lambda stream: np.savez(stream, **arrays))


def load(module, path, allow_nonfinite=False):
    """Read ``path`` (written by ``save``) into ``module``; unchanged on any error.

    Every refusal is one ``files.BadFileError`` naming the file and the fault (a
    ``MissingFileError``, also a ``FileNotFoundError``, when there is no file; a
    ``FileShapeError``, also a ``ShapeError``, for a parameter of another shape)."""
    path = os.fspath(path)
    source = f"load {path!r}"
    state = read_npz(path, source=source, expected="a parameter file written by Module.save "
                     "(an .npz of numeric arrays keyed by parameter name)",
                     unchanged="the model is unchanged")
    if "optimizer" in state and "format" in state and "optimizer" not in dict(module.named_parameters()):
        raise BadFileError(f"{source}: the file is an optimizer state written by Optimizer.save, "
                           f"not parameters: load it with optimizer.load; the model is unchanged",
                           path)
    try:
        load_state(module, state, source=source, allow_nonfinite=allow_nonfinite)
    except ValueError as error:  # ShapeError included: the file does not fit this model
        raise as_bad_file(error, path) from None


def load_state(module, state, source="load", allow_nonfinite=False):
    """Check ``state`` (dotted name -> array) against ``module`` in full, then assign it all.
    Buffers (``named_buffers()``) are checked and assigned like parameters.

    A parameter holding nan or inf is refused (naming each such parameter with its counts)
    unless ``allow_nonfinite=True``: a model that trained into nan must not be resumed from
    silently."""
    parameters = dict(module.named_parameters())
    buffers = dict(module.named_buffers())
    parameters.update((name, _BufferSlot(module, name, array)) for name, array in buffers.items())
    missing = [name for name in parameters if name not in state]
    unexpected = [name for name in state if name not in parameters]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected)}")
        raise ValueError(f"{source}: the saved names do not match {type(module).__name__}'s "
                         f"parameters and buffers ({'; '.join(parts)}); the model is unchanged")
    arrays = {}
    for name, parameter in parameters.items():
        array = np.asarray(state[name])
        if array.shape != parameter.shape:
            raise ShapeError(f"{source}: parameter {name} ({parameter.name or name}) has shape "
                             f"{parameter.shape} in the model but {array.shape} in the saved "
                             f"state; the model is unchanged")
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{source}: parameter {name} holds dtype {array.dtype}, not numbers; "
                             f"the model is unchanged")
        arrays[name] = np.array(array, dtype=parameter.dtype, copy=True)
    if not allow_nonfinite:
        _refuse_nonfinite(parameters, arrays, source)
    for name, parameter in parameters.items():
        parameter.data = arrays[name]


def _refuse_nonfinite(parameters, arrays, source):
    faults = []
    for name, array in arrays.items():
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            nan, inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
            counts = " and ".join(f"{n} {what}" for n, what in ((nan, "nan"), (inf, "inf")) if n)
            label = parameters[name].name
            faults.append(f"{name}{f' ({label})' if label and label != name else ''} has "
                          f"{counts} of its {array.size} entries")
    if faults:
        raise ValueError(f"{source}: non-finite parameters: {'; '.join(faults)}; pass "
                         f"allow_nonfinite=True to load them anyway; the model is unchanged")


class _BufferSlot:
    """A buffer seen as a parameter by ``load_state``: its shape, dtype and name, and setting
    ``.data`` sets the buffer's attribute on the module that owns it."""

    def __init__(self, root, dotted, array):
        owner_path, _, self.attribute = dotted.rpartition(".")
        self.owner = dict(root.named_modules())[owner_path]
        self.name, self.shape, self.dtype = dotted, array.shape, array.dtype

    @property
    def data(self):
        return getattr(self.owner, self.attribute)

    @data.setter
    def data(self, array):
        current = getattr(self.owner, self.attribute)
        if isinstance(current, np.ndarray) and current.shape == array.shape \
                and current.dtype == array.dtype and current.flags.writeable:
            # in place: a compiled step that updates this buffer (BatchNorm's running
            # statistics, an op of the step) keeps seeing the module's own array
            np.copyto(current, array)
        else:
            object.__setattr__(self.owner, self.attribute, array)

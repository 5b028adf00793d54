"""A module's state in io's state format: its parameters and buffers (BatchNorm's running
statistics) as arrays keyed by dotted name, and the state of every random generator a layer
draws from (Dropout's ``rng``, as JSON text), so that a resumed run draws the same masks.

``state`` keeps each array in its own backend (copies); ``save`` is ``io.save_state`` (whole or
not at all), which writes numpy arrays (another backend's brought to the host); ``load`` reads
with ``io.read_npz`` (no pickle; a bad file is one ``BadFileError`` naming it) and checks every
name, shape, dtype and value with ``io.check_fields`` on the host before anything changes,
then puts each array back in the backend and device its parameter or buffer lives in (a
model saved from torch loads into a numpy model, and the other way round). A file without generator states (one
written before they were saved, or by hand) loads and leaves the generators as they are.
"""
from __future__ import annotations

import os

import numpy as np

from .. import backend, io
from ..core.tensor import array_of
from ..errors import ShapeError

UNCHANGED = "the model is unchanged"


def named_generators(module) -> list:
    """``(dotted name, Generator)`` for every numpy Generator a module of the tree holds."""
    return [(f"{prefix}.{name}" if prefix else name, value)
            for prefix, child in module.named_modules() for name, value in vars(child).items()
            if isinstance(value, np.random.Generator)]


def state(module) -> dict:
    """Parameters, then buffers (copies), then generator states (JSON text), by dotted name."""
    result = {name: backend.copy_of(array_of(parameter)) for name, parameter in module.named_parameters()}
    result.update((name, backend.copy_of(array)) for name, array in module.named_buffers())
    result.update((name, io.generator_text(generator)) for name, generator in named_generators(module))
    return result


def save(module, path):
    io.save_state(path, state(module))


def load(module, path, allow_nonfinite=False):
    path = os.fspath(path)
    source = f"load {path!r}"
    arrays = io.read_npz(path, source=source, expected="a parameter file written by Module.save "
                         "(an .npz of numeric arrays keyed by parameter name)", unchanged=UNCHANGED)
    if "optimizer" in arrays and "format" in arrays and "optimizer" not in dict(module.named_parameters()):
        raise io.BadFileError(f"{source}: the file is an optimizer state written by Optimizer.save, "
                              f"not parameters: load it with optimizer.load; {UNCHANGED}", path)
    load_state(module, arrays, source=source, allow_nonfinite=allow_nonfinite, path=path)


def load_state(module, values, source="load", allow_nonfinite=False, path=None):
    """Check ``values`` (dotted name -> array, or generator text) against ``module`` in full,
    then assign it all. Parameters holding nan or inf are refused (naming each with its counts)
    unless ``allow_nonfinite=True``: a model that trained into nan is not resumed silently."""
    refuse = io.refusal(source, UNCHANGED, path)
    slots = dict(module.named_parameters())
    slots.update((name, _BufferSlot(module, name, array)) for name, array in module.named_buffers())
    generators = dict(named_generators(module))
    declared = {name: _array_for(name, slot) for name, slot in slots.items()}
    declared.update((name, io.optional(io.generator_state(generator))) for name, generator in generators.items())
    checked = io.check_fields(values, declared, f"the saved names of {type(module).__name__}'s state",
                              refuse)
    faults = [_nonfinite(name, slots[name], checked[name]) for name in slots]
    if not allow_nonfinite and any(faults):
        raise refuse(f"non-finite parameters: {'; '.join(filter(None, faults))}; pass "
                     f"allow_nonfinite=True to load them anyway")
    arrays = {name: backend.moved(checked[name], backend.of(slot.data)) for name, slot in slots.items()}
    for name, slot in slots.items():
        slot.data = arrays[name]
    for name, generator in generators.items():
        if checked[name] is not None:
            generator.bit_generator.state = checked[name]


def _array_for(name, slot):
    def validator(value, key):  # checked on the host; moved to the slot's backend at the end
        array = backend.to_numpy(value) if backend.is_foreign_array(value) else np.asarray(value)
        if array.shape != tuple(slot.shape):
            raise ShapeError(f"parameter {name} ({slot.name or name}) has shape {tuple(slot.shape)} "
                             f"in the model but {array.shape} in the saved state")
        if array.dtype.kind not in "biuf":
            raise ValueError(f"parameter {name} holds dtype {array.dtype}, not numbers")
        with np.errstate(over="ignore"):
            return np.array(array, dtype=io.host_dtype(slot.dtype), copy=True)
    return validator


def _nonfinite(name, slot, array):
    if array.dtype.kind not in "fc" or np.isfinite(array).all():
        return None
    nan, inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
    counts = " and ".join(f"{n} {what}" for n, what in ((nan, "nan"), (inf, "inf")) if n)
    label = slot.name
    return (f"{name}{f' ({label})' if label and label != name else ''} has {counts} of its "
            f"{array.size} entries")


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

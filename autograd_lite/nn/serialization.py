"""Saving and loading a module's parameters: one ``.npz`` keyed by dotted parameter name.

Writes are atomic: the arrays go to a temporary file in the target's directory, which then
replaces the target in one ``os.replace``, so a crash mid-write leaves the old file (or no
file), never half of one. Reads use ``allow_pickle=False``: a parameter file holds numbers only,
and loading it can never run code. Every name and shape is checked before any parameter changes.
"""
from __future__ import annotations

import os
import zipfile

import numpy as np

from ..errors import ShapeError
from ..files import write_atomically


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


def read_npz(path, *, missing, not_ours, single):
    """The arrays of the ``.npz`` at ``path`` (key -> ndarray), read with ``allow_pickle=False``
    so loading never runs code. Errors use the caller's words: ``missing`` when there is no
    file, ``not_ours`` (followed by numpy's reason) when it is not an ``.npz`` of plain arrays
    (an object array, which would need pickle, included), ``single`` for a plain ``.npy``.

    Shared with ``optim.Optimizer.load``."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(missing) from None
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{not_ours}: {error}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a plain .npy gives one array
        raise ValueError(single)
    try:
        with archive:
            return {key: archive[key] for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        # NOTE: object arrays fail here: allow_pickle=False refuses to unpickle them.
        raise ValueError(f"{not_ours}: {error}") from None


def load(module, path):
    """Read ``path`` (written by ``save``) into ``module``; unchanged on any error."""
    path = os.fspath(path)
    state = read_npz(
        path, missing=f"load: no parameter file at {path!r}",
        not_ours=f"load: {path!r} is not a parameter file written by Module.save "
                 f"(an .npz of numeric arrays)",
        single=f"load: {path!r} holds a single array, not an .npz keyed by parameter name")
    load_state(module, state, source=f"load {path!r}")


def load_state(module, state, source="load"):
    """Check ``state`` (dotted name -> array) against ``module`` in full, then assign it all.
    Buffers (``named_buffers()``) are checked and assigned like parameters."""
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
    for name, parameter in parameters.items():
        parameter.data = arrays[name]


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
        object.__setattr__(self.owner, self.attribute, array)

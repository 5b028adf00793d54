"""The samples of an epoch: checked, cut into mini-batches of columns, shuffled by a generator
whose state can be saved (``Shuffler``), so a stopped mini-batch run resumes bit for bit."""
from __future__ import annotations

import numpy as np

from .. import backend, io
from ..core.tensor import Tensor
from ..errors import ShapeError

UNCHANGED = "the shuffler is unchanged"


def as_array(value):
    """Plain data for slicing columns: a Tensor's array, or the array itself (labels keep
    their integer dtype), in its own backend (torch data stays torch; lists become numpy)."""
    value = value.data if isinstance(value, Tensor) else value
    return value if backend.is_foreign_array(value) else np.asarray(value)


def on_host(value):
    """``value`` (a Tensor, an array of any backend, a list) as a numpy array: what a metric
    reads (a Dask array is computed)."""
    value = value.data if isinstance(value, Tensor) else value
    return backend.to_numpy(value) if backend.is_foreign_array(value) else np.asarray(value)


def check_samples(X, Y, label, owner="fit"):
    if X.ndim != 2:
        raise ShapeError(f"{owner}: {label}X must be n[0] x m (samples as columns), got shape {X.shape}")
    if Y.shape[-1:] != (X.shape[1],):
        raise ShapeError(f"{owner}: {label}X has {X.shape[1]} samples (columns) but {label}Y has "
                         f"shape {Y.shape}; Y's last axis must be the same m")
    if X.shape[1] == 0:
        raise ValueError(f"{owner}: {label}X has no samples (shape {X.shape}): nothing to train on "
                         f"or to evaluate")
    for name, array in (("X", X), ("Y", Y)):
        if backend.dtype_kind(array.dtype) not in "fc":
            continue
        refuse = _nonfinite_refusal(f"{owner}: {label}{name}", array.shape[-1])
        if backend.of(array).is_dask:  # checked inside the first compute that reads it: no pass of its own
            xp = backend.namespace(array)
            hit = xp.any(~xp.isfinite(array), axis=tuple(range(array.ndim - 1))) if array.ndim > 1 \
                else ~xp.isfinite(array)
            backend.check_when_computed(array, refuse, xp.sum(xp.isnan(array)), xp.sum(xp.isinf(array)),
                                        xp.sum(hit), xp.argmax(hit))
        elif not backend.all_finite(array):
            array = backend.to_numpy(array)  # the counts of a refusal, on the host
            hit = np.unique(np.nonzero(~np.isfinite(array))[-1])
            refuse(np.isnan(array).sum(), np.isinf(array).sum(), hit.size, hit[0])


def _nonfinite_refusal(what, m):
    def refuse(nan, inf, columns_hit, first):
        if nan or inf:
            raise ValueError(
                f"{what} holds {int(nan)} nan and {int(inf)} inf entries, in {int(columns_hit)} of "
                f"{m} samples (first: column {int(first)}); every loss and gradient of those "
                f"samples would be NaN. Drop or impute them first")
    return refuse


def columns(array, index):
    """The samples ``index`` (a numpy array of positions) of ``array``: columns of an (n, m)
    array, items of an (m,) one, in ``array``'s backend."""
    if isinstance(array, np.ndarray) or backend.of(array).is_dask:
        return array[..., index]
    xp = backend.namespace(array)
    return xp.take(array, xp.asarray(index, device=backend.device_of(array)), axis=array.ndim - 1)


def batches(m, batch_size, rng=None):
    """Column indices of the mini-batches of one epoch: shuffled by ``rng`` (a ``Shuffler`` or a
    ``numpy.random.Generator``) if given."""
    order = rng.permutation(m) if rng is not None else np.arange(m)
    size = m if batch_size is None else batch_size
    return [order[start:start + size] for start in range(0, m, size)]


class Shuffler:
    """The generator that shuffles the columns every epoch, with a state that can be saved.

    ``Shuffler(seed)`` wraps ``numpy.random.default_rng(seed)`` (or a Generator you pass).
    ``state_dict()`` / ``load_state_dict()`` and ``save(path)`` / ``load(path)`` keep the bit
    generator's exact state (io's state format: its JSON text of numbers), so a run stopped
    after k epochs and resumed from the saved model, optimizer and shuffler draws the same
    permutations, and takes the same steps, as one that never stopped."""

    def __init__(self, seed=None):
        self.generator = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def permutation(self, m):
        return self.generator.permutation(m)

    def state_dict(self) -> dict:
        """``{"format": 1, "bit_generator": "PCG64", "state": <JSON text>}``."""
        return {"format": 1, "bit_generator": self.generator.bit_generator.state["bit_generator"],
                "state": io.generator_text(self.generator)}

    def load_state_dict(self, state: dict, source="Shuffler.load_state_dict", path=None):
        """Set the generator to ``state`` (from ``state_dict``); unchanged on any error."""
        ours = self.generator.bit_generator.state["bit_generator"]
        checked = io.check_fields(state, {
            "format": io.equal_to(1, "the state has format {value!r}; this version reads format 1"),
            "bit_generator": io.equal_to(ours, "the state is of a {value!r} generator, this "
                                               "shuffler's is {expected!r}"),
            "state": io.generator_state(self.generator)}, "a shuffler state",
            io.refusal(source, UNCHANGED, path))
        bit_generator = type(self.generator.bit_generator)()
        bit_generator.state = checked["state"]
        self.generator = np.random.Generator(bit_generator)
        return self

    def save(self, path):
        """Write ``state_dict()`` to ``path`` as an ``.npz``, atomically."""
        io.save_state(path, self.state_dict())

    def load(self, path):
        source = f"Shuffler.load {str(path)!r}"
        state = io.read_state(path, source=source, expected="a shuffler state written by "
                              "Shuffler.save", unchanged=UNCHANGED)
        return self.load_state_dict(state, source, path)

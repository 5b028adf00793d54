"""Initialisers for W[l]: each returns a new float64 array of ``shape = (n_out, n_in)``.

Every one draws from a user-supplied ``numpy.random.Generator``, so the same generator state
gives the same network, on every backend: the draws are numpy's, and a layer in another
backend (``Linear(..., like=torch)``, ``model.to(...)``) gets them moved there, the same
values. Biases start at zero (``zeros``), as in the seed's course: the random W
alone breaks the symmetry between the units of a layer.

Use a name (``"small"``, ``"xavier"``, ``"xavier_uniform"``, ``"he"``, ``"he_uniform"``,
``"zeros"``) or any callable ``init(shape, rng) -> ndarray`` wherever ``init=`` is accepted.
"""
from __future__ import annotations

import numpy as np

from .. import backend


def _generator(rng) -> np.random.Generator:
    """``rng`` as a Generator: a Generator passes through, an int seeds a new one."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)) or an "
                    f"int seed, got {type(rng).__name__}")


def _fans(shape) -> tuple[int, int]:
    if len(shape) != 2:
        raise ValueError(f"init: a weight matrix W is (n_out, n_in), got shape {tuple(shape)}")
    n_out, n_in = shape
    return n_in, n_out


def small(shape, rng, scale=0.01):
    """``randn(n_out, n_in) * 0.01``: the seed's course. Fine for the 3-4-1 network; in deep
    networks the signal shrinks by about ``scale * sqrt(n_in)`` per layer and learning stalls."""
    return rng.standard_normal(tuple(shape)) * scale


def xavier(shape, rng):
    """Xavier/Glorot normal: variance ``2 / (n_in + n_out)`` keeps the spread of Z[l] and of
    dA[l] about the same across layers for sigmoid and tanh (Glorot & Bengio, 2010)."""
    n_in, n_out = _fans(shape)
    return rng.standard_normal(tuple(shape)) * np.sqrt(2.0 / (n_in + n_out))


def xavier_uniform(shape, rng):
    """Xavier/Glorot uniform on ``[-r, r]`` with ``r = sqrt(6 / (n_in + n_out))`` (same variance)."""
    n_in, n_out = _fans(shape)
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, tuple(shape))


def he(shape, rng):
    """He normal: variance ``2 / n_in``, for ReLU layers, which zero half of Z on average
    (He et al., 2015)."""
    n_in, _ = _fans(shape)
    return rng.standard_normal(tuple(shape)) * np.sqrt(2.0 / n_in)


def he_uniform(shape, rng):
    """He uniform on ``[-r, r]`` with ``r = sqrt(6 / n_in)`` (same variance as ``he``)."""
    n_in, _ = _fans(shape)
    limit = np.sqrt(6.0 / n_in)
    return rng.uniform(-limit, limit, tuple(shape))


def zeros(shape, rng=None):
    """All zeros: the bias b[l]. For W it would make every unit of a layer the same forever."""
    return np.zeros(tuple(shape))


INITIALISERS = {"small": small, "xavier": xavier, "xavier_uniform": xavier_uniform,
                "he": he, "he_uniform": he_uniform, "zeros": zeros}


def resolve(init):
    """An initialiser from a name in ``INITIALISERS`` or a callable ``init(shape, rng)``."""
    if callable(init):
        return init
    if init in INITIALISERS:
        return INITIALISERS[init]
    raise ValueError(f"unknown initialiser {init!r}; choose from {', '.join(INITIALISERS)} "
                     f"or pass a function init(shape, rng) -> ndarray")


def initial_array(init, shape, rng, where=backend.NUMPY):
    """Draw W with ``init``, check it came back as a finite array of ``shape``, and give it as
    float64 in the backend ``where``: a numpy array (what the initialisers here draw) is moved
    there; an initialiser of your own may also return an array of ``where`` itself, and any
    other backend's is refused (never converted silently)."""
    label = getattr(init, "__name__", init)
    array = resolve(init)(tuple(shape), rng)
    if backend.is_foreign_array(array):
        if backend.of(array) is not where:
            raise TypeError(f"initialiser {label!r} returned an array in {backend.of(array)!r} "
                            f"for a layer in {where!r}; return a numpy array (it is moved to the "
                            f"layer's backend), or build the layer with like= that backend")
        array = backend.copied(array, where, backend.default_float(where))
    else:
        array = np.asarray(array, dtype=np.float64)
    if tuple(array.shape) != tuple(shape):
        raise ValueError(f"initialiser {label!r} returned shape {tuple(array.shape)}, expected "
                         f"{tuple(shape)}")
    if not backend.all_finite(array):
        raise ValueError(f"initialiser {label!r} returned non-finite values")
    return backend.moved(array, where)

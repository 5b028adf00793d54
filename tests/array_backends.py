"""The array backends the backend tests run on: each one a pytest param that is skipped, with the
reason, where its library is not installed or sees no device.

``BACKENDS`` are pytest params of ``ArrayBackend``: ``name``, ``xp`` (the namespace a Tensor
reports), ``array(ndarray)`` (the same values as that backend's array) and ``device``.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest


class ArrayBackend:
    def __init__(self, name, make, device=None):
        self.name = name
        self._make = make
        self.device = device

    def array(self, values, dtype=None):
        values = np.asarray(values, dtype=dtype)
        return self._make(values)

    def __repr__(self):
        return self.name


def _numpy():
    return ArrayBackend("numpy", lambda a: np.array(a, copy=True))


def _array_api_strict():
    if np.lib.NumpyVersion(np.__version__) < "2.0.0":
        raise RuntimeError(f"array-api-strict 2 needs numpy 2, this is numpy {np.__version__}")
    xp = importlib.import_module("array_api_strict")
    return ArrayBackend("array_api_strict", lambda a: xp.asarray(a))


def array_api_strict():
    """The array_api_strict module, or a skip saying why it cannot run here."""
    try:
        _array_api_strict()
    except Exception as error:  # noqa: BLE001 - not installed, or numpy too old for it
        pytest.skip(f"array_api_strict is not available here: {type(error).__name__}: {error}")
    return importlib.import_module("array_api_strict")


def _torch():
    torch = importlib.import_module("torch")
    return ArrayBackend("torch", lambda a: torch.asarray(a.copy()), torch.device("cpu"))


def _jax():
    jax = importlib.import_module("jax")
    # JAX computes in float32 unless 64-bit mode is on, and the engine's default is float64:
    # the backend tests compare against numpy to 1e-12 in float64, so they switch it on, once,
    # for the whole process (a JAX setting is global). It must be set before the first JAX
    # array is made, which is why it happens here, when the backends are listed.
    jax.config.update("jax_enable_x64", True)
    jnp = importlib.import_module("jax.numpy")
    return ArrayBackend("jax", lambda a: jnp.asarray(a), jax.devices("cpu")[0])


def _cupy():
    cupy = importlib.import_module("cupy")
    if cupy.cuda.runtime.getDeviceCount() < 1:
        raise RuntimeError("cupy sees no GPU")
    return ArrayBackend("cupy", lambda a: cupy.asarray(a))


def _param(name, factory):
    try:
        backend = factory()
    except Exception as error:  # not installed, or no device: skipped, saying why
        return pytest.param(None, id=name, marks=pytest.mark.skip(
            reason=f"{name} is not available here: {type(error).__name__}: {error}"))
    return pytest.param(backend, id=name)


BACKENDS = [_param("numpy", _numpy), _param("array_api_strict", _array_api_strict),
            _param("torch", _torch), _param("jax", _jax), _param("cupy", _cupy)]
# The backends other than numpy: what the no-conversion and mixing tests are about.
FOREIGN = BACKENDS[1:]

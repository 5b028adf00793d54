"""The primitive guard on Dask: every primitive's forward on Dask arrays computes nothing, its
backward computes once (the value of the output it starts from: ``backward`` computes J), and
its output and gradients equal numpy's to 1e-12 relative and stay Dask arrays; in float32,
they stay float32. The cases are the numpy guard's (tests/ops/test_primitive_contract.py), so a new
primitive is held to this as soon as it has a case there."""
from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
import dask  # noqa: E402

import autograd_lite as ag  # noqa: E402
from autograd_lite import backend  # noqa: E402
from dask_util import Computes  # noqa: E402
from test_backend_primitives import (CASES, GUARD, NOT_FLOATING, _run, _wants,  # noqa: E402
                                     float32_case)


def lazy(array):
    """``array`` as a Dask array in two chunks along its last axis (one where it is too short)."""
    array = np.asarray(array)
    if array.ndim == 0 or array.shape[-1] < 2:
        return da.from_array(array, chunks=array.shape or ())
    return da.from_array(array, chunks=array.shape[:-1] + ((array.shape[-1] + 1) // 2,))


# What Dask cannot do yet, and why (each skipped case says so when it runs).
NOT_YET = {
    "reshape": "Dask's reshape only merges or splits dimensions evenly: (3, 4) into (4, 3) is "
               "refused (test_an_uneven_reshape_is_refused_saying_why)",
}
# Dask draws Dropout's mask per chunk (reproducible, lazy), not numpy's values.
OWN_VALUES = {"dropout_mask"}


@pytest.fixture(autouse=True)
def threaded_scheduler():
    with dask.config.set(scheduler="threads"):
        yield


@pytest.mark.parametrize("op, k", CASES)
def test_every_primitive_is_lazy_on_dask_and_equals_numpy(op, k):
    if op.name in NOT_YET and not (op.name == "reshape" and k != 0):
        pytest.skip(f"{op.name} on Dask: {NOT_YET[op.name]}")
    arrays, params = GUARD._case(op, k)
    wants = _wants(op, arrays)
    expected, expected_grads = _run(op, arrays, params, wants, lambda a: a)
    arrays, params = GUARD._case(op, k)
    tensors = [ag.Tensor(lazy(a), requires_grad=w, dtype=a.dtype) if w else
               ag.Tensor(lazy(a), dtype=a.dtype) for a, w in zip(arrays, wants)]
    params = {name: lazy(value) if isinstance(value, np.ndarray) else value
              for name, value in params.items()}
    with Computes() as computes:
        found = op(*tensors, **params)
        assert computes.count == 0, f"{op.name}'s forward computed {computes.count} times"
        if any(wants) and op.differentiable:
            g = np.random.default_rng(5).standard_normal(found.shape).astype(arrays[0].dtype)
            found.backward(lazy(g))
            assert computes.count == 1, f"{op.name}: backward computed {computes.count} times"
    assert backend.of(found.data).is_dask
    if op.name in OWN_VALUES:
        return
    np.testing.assert_allclose(ag.to_numpy(found), expected.data, rtol=1e-12, atol=1e-300)
    grads = [t.grad for t, w in zip(tensors, wants) if w] if op.differentiable else []
    for grad, want in zip(grads, expected_grads):
        assert backend.of(grad).is_dask  # as big as its input: computed when asked
        np.testing.assert_allclose(ag.to_numpy(grad), want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("op, k", CASES)
def test_every_primitive_keeps_float32_on_dask(op, k):
    if op.name in NOT_FLOATING:
        pytest.skip(f"{op.name}'s output is not floating")
    if op.name in NOT_YET and not (op.name == "reshape" and k != 0):
        pytest.skip(f"{op.name} on Dask: {NOT_YET[op.name]}")
    arrays, params = float32_case(op, k)
    found, grads = _run(op, arrays, params, _wants(op, arrays), lazy)
    assert found.dtype == np.float32, f"{op.name}: forward gave {found.dtype}"
    for grad in grads:
        assert grad.dtype == np.float32, f"{op.name}: a gradient came back {grad.dtype}"


def test_an_uneven_reshape_is_refused_saying_why():
    x = ag.Tensor(lazy(np.arange(12.0).reshape(3, 4)), requires_grad=True)
    with Computes() as computes:
        with pytest.raises(ag.ShapeError, match=r"reshape: Dask cannot reshape an array of shape "
                                                r"\(3, 4\) into shape \(4, 3\) in one step .* "
                                                r"to \(12,\) first"):
            x.reshape(4, 3)
        flat = x.reshape(12).reshape(4, 3)                   # the way out, still lazy
    assert computes.count == 0
    np.testing.assert_array_equal(ag.to_numpy(flat), np.arange(12.0).reshape(4, 3))

"""The primitive guard on every backend: each primitive's forward and gradients, computed with a
backend's arrays through the engine (``Tensor``, ``backward``), equal numpy's to 1e-12 relative in
float64, and stay in that backend; in float32, every primitive's vjp keeps float32 (numpy's
promotion rules, on every backend).

The cases are the numpy guard's (tests/ops/test_primitive_contract.py), so a new primitive is
covered here as soon as it has a case there."""
from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import backend
from array_backends import BACKENDS


def _guard():
    path = pathlib.Path(__file__).resolve().parents[1] / "ops" / "test_primitive_contract.py"
    spec = importlib.util.spec_from_file_location("every_primitive_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GUARD = _guard()
# What a backend refuses, and why (each refusal is tested to be the clear one).
REFUSED = {("array_api_strict", "normal_cdf"): "the standard has no erfc",
           ("array_api_strict", "gelu"): "the exact gelu needs erfc, which the standard lacks"}


def _refused(op, params, b):
    return (b.name, op.name) in REFUSED and params.get("approximate", "none") == "none"


# Primitives whose output is not floating (a comparison's booleans, an arg-max's integers).
NOT_FLOATING = {"compare", "arg_extremum"}
CASES = [pytest.param(op, k, id=f"{type(op).__name__}-{k}")
         for op in GUARD.PRIMITIVES for k in range(len(GUARD.CASES.get(op, [])))]


def _run(op, arrays, params, wants, make, g_seed=5):
    """Forward through the engine on ``make(array)`` tensors, then backward with a fixed g;
    returns (output, grads) as the backend's arrays."""
    tensors = [ag.Tensor(make(a), requires_grad=w, dtype=a.dtype) if w else
               ag.Tensor(make(a), dtype=a.dtype) for a, w in zip(arrays, wants)]
    params = {name: make(value) if isinstance(value, np.ndarray) else value
              for name, value in params.items()}
    out = op(*tensors, **params)
    if not any(wants) or not op.differentiable:
        return out, []
    g = np.random.default_rng(g_seed).standard_normal(out.shape).astype(arrays[0].dtype)
    out.backward(make(g))
    return out, [t.grad for t, w in zip(tensors, wants) if w]


def _wants(op, arrays):
    constant = GUARD.CONSTANT_INPUTS.get(op, ())
    return [op.differentiable and i not in constant for i in range(len(arrays))]


@pytest.mark.parametrize("b", BACKENDS)
@pytest.mark.parametrize("op, k", CASES)
def test_every_primitive_equals_numpy_on_every_backend(op, k, b):
    arrays, params = GUARD._case(op, k)
    wants = _wants(op, arrays)
    if _refused(op, params, b):
        with pytest.raises(TypeError, match=r"gelu: the exact gelu needs erfc, which the "
                                            r"array_api_strict namespace does not have.*"
                                            r"approximate='tanh'"):
            _run(op, arrays, params, wants, b.array)
        return
    expected, expected_grads = _run(op, arrays, params, wants, lambda a: a)
    found, grads = _run(op, *GUARD._case(op, k)[:2], wants, b.array)
    assert backend.of(found.data) is backend.of(b.array(np.zeros(1)))   # stays in the backend
    np.testing.assert_allclose(ag.to_numpy(found), expected.data, rtol=1e-12, atol=1e-300)
    for grad, want in zip(grads, expected_grads):
        assert backend.of(grad) is backend.of(b.array(np.zeros(1)))
        np.testing.assert_allclose(ag.to_numpy(grad), want, rtol=1e-12, atol=1e-15)


def float32_case(op, k):
    """The guard's case k of ``op`` with its float64 inputs and parameters made float32 (the
    constant inputs, such as labels, keep their dtype)."""
    arrays, params = GUARD._case(op, k)
    arrays = [a.astype(np.float32) if a.dtype == np.float64 and i not in
              GUARD.CONSTANT_INPUTS.get(op, ()) else a for i, a in enumerate(arrays)]
    params = {name: value.astype(np.float32) if isinstance(value, np.ndarray)
              and value.dtype == np.float64 else value for name, value in params.items()}
    return arrays, params


@pytest.mark.parametrize("b", BACKENDS)
@pytest.mark.parametrize("op, k", CASES)
def test_every_primitives_vjp_keeps_float32(op, k, b):
    if op.name in NOT_FLOATING:
        pytest.skip(f"{op.name}'s output is not floating")
    arrays, params = float32_case(op, k)
    if _refused(op, params, b):
        pytest.skip(f"{b.name} refuses {op.name} (tested above): {REFUSED[b.name, op.name]}")
    found, grads = _run(op, arrays, params, _wants(op, arrays), b.array)
    assert "float32" in str(found.dtype), f"{op.name}: forward gave {found.dtype}"
    for grad in grads:
        assert "float32" in str(grad.dtype), f"{op.name}: a gradient came back {grad.dtype}"

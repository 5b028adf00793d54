"""numpy given a Tensor never drops a gradient silently: each numpy function
and ufunc either records its autograd_lite op or refuses with a TypeError naming itself."""
import contextlib
import inspect
import io
import os
import warnings

import numpy as np
import pytest

import autograd_lite as ag

# Leaving the graph on purpose: the documented ways out, and what has no gradient by definition.
CONVERSIONS = {"array", "asarray", "asanyarray", "ascontiguousarray", "asfortranarray",
               "asarray_chkfinite", "asmatrix", "mat", "require"}
# numpy 1.x only, deprecated, and written in C without numpy's dispatch: nothing a Tensor can
# intercept (numpy 2 removed it)
NOT_DISPATCHED = {"fastCopyAndTranspose"}
NO_GRADIENT = {"argmax", "argmin", "less", "less_equal", "greater", "greater_equal", "equal",
               "not_equal", "isfinite", "isinf", "isnan", "signbit", "sign"}
# numpy's own utilities that act on the process, not on an array
NOT_CALLED = {"test", "show_config", "show_runtime", "info", "get_include", "setbufsize",
              "seterr", "seterrcall", "set_printoptions", "printoptions", "load", "loadtxt",
              "genfromtxt", "fromfile", "memmap", "save", "savez", "savez_compressed", "savetxt"}


def _public_callables():
    for module, prefix in ((np, "np."), (np.linalg, "np.linalg.")):
        for name in sorted(dir(module)):
            f = getattr(module, name)
            if name.startswith("_") or name in NOT_CALLED or not callable(f):
                continue
            if inspect.isclass(f) or inspect.ismodule(f):
                continue
            yield prefix + name, name, f


def test_every_public_numpy_function_and_ufunc_records_or_refuses(tmp_path):
    t = ag.Tensor([[0.5, 2.0], [1.0, 3.0]], requires_grad=True, name="t")
    silent = []
    os.chdir(tmp_path)  # anything that writes a file writes it here
    for label, name, f in _public_callables():
        args = (t,) * f.nin if isinstance(f, np.ufunc) else (t,)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                result = f(*args)
        except TypeError as error:
            if "not supported on a Tensor" in str(error):
                # names the function numpy dispatched (row_stack's is vstack)
                assert str(error).startswith("np."), label
            continue
        except Exception:  # numpy refused the arguments themselves: nothing silent
            continue
        if isinstance(result, ag.Tensor) or name in CONVERSIONS | NO_GRADIENT | NOT_DISPATCHED:
            continue
        holds_numbers = isinstance(result, (np.ndarray, np.generic, list)) or (
            isinstance(result, tuple) and any(isinstance(x, (np.ndarray, np.generic)) for x in result))
        if holds_numbers:
            silent.append(label)
    assert silent == [], f"numpy functions that silently turned a Tensor into numbers: {silent}"


def test_ufuncs_record_their_op_and_its_gradient():
    x = ag.Tensor([0.5, 2.0], requires_grad=True)
    J = (np.exp(x) + np.log(x) * np.tanh(x) - np.negative(x) + np.sqrt(x) + np.abs(x)).sum()
    J.backward()
    v = x.data
    expected = (np.exp(v) + np.tanh(v) / v + np.log(v) * (1 - np.tanh(v) ** 2) + 1
                + 0.5 / np.sqrt(v) + np.sign(v))
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


def test_an_ndarray_on_the_left_records_too():
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    a = np.array([3.0, 4.0])
    for result in (a + x, a * x, a - x, a / x, np.add(a, x), a @ x, a ** x):
        assert isinstance(result, ag.Tensor) and result.requires_grad
    (np.multiply(a, x)).sum().backward()
    np.testing.assert_array_equal(x.grad, a)


def test_numpy_functions_with_an_ag_op_record_it():
    x = ag.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    for result in (np.sum(x), np.sum(x, axis=0), np.mean(x, axis=1, keepdims=True),
                   np.reshape(x, (4,)), np.transpose(x), np.dot(x, x)):
        assert isinstance(result, ag.Tensor) and result.requires_grad
    np.dot(x, x).sum().backward()
    np.testing.assert_allclose(x.grad, np.ones((2, 2)) @ x.data.T + x.data.T @ np.ones((2, 2)))


def test_the_issues_example_no_longer_loses_the_gradient():
    """(t * np.clip(t, 0, 1)).sum() gave grad [0.5, 1.0] with no error, where the truth is
    [1, 1]: now it records clip, or refuses until ag.clip exists."""
    t = ag.Tensor([0.5, 2.0], requires_grad=True)
    if getattr(ag, "clip", None) is None:
        with pytest.raises(TypeError, match="np.clip"):
            np.clip(t, 0, 1)
        return
    (t * np.clip(t, 0, 1)).sum().backward()
    np.testing.assert_allclose(t.grad, [1.0, 1.0])


@pytest.mark.parametrize("call, name", [
    (lambda t: np.sort(t), "np.sort"),
    (lambda t: np.add.reduce(t), "np.add.reduce"),
    (lambda t: np.exp(t, out=np.empty(2)), "np.exp with out="),
    (lambda t: np.copy(t), "np.copy"),
    (lambda t: np.cumsum(t), "np.cumsum"),
    (lambda t: np.linalg.norm(t), "np.norm"),
])
def test_a_refusal_names_the_function_and_the_way_out(call, name):
    t = ag.Tensor([0.5, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=rf"{name}.*np\.asarray\(t\)"):
        call(t)


def test_leaving_the_graph_on_purpose_still_works():
    t = ag.Tensor([0.5, 2.0], requires_grad=True)
    assert type(np.asarray(t)) is np.ndarray and np.asarray(t) is t.data
    assert type(t.numpy()) is np.ndarray
    np.testing.assert_array_equal(np.array(t), [0.5, 2.0])
    assert np.shape(t) == (2,) and np.ndim(t) == 1 and np.size(t) == 2
    np.testing.assert_array_equal(np.isfinite(t), [True, True])
    np.testing.assert_array_equal(t == np.array([0.5, 1.0]), [True, False])


# --- numpy's parameters: mapped by numpy's own signature, or refused in the engine's words --------

T_ = np.arange(6.0).reshape(2, 3) + 1.0


@pytest.mark.parametrize("call, parameter", [
    ("np.sum(t, where=t.data > 2)", "where"),
    ("np.mean(t, where=True)", "where"),
    ("np.sum(t, initial=1.0)", "initial"),
    ("np.max(t, initial=0.0)", "initial"),
    ("np.reshape(t, (3, 2), order='F')", "order"),
    pytest.param("np.var(t, correction=1)", "correction", marks=pytest.mark.skipif(
        np.lib.NumpyVersion(np.__version__) < "2.0.0", reason="np.var has correction= from numpy 2")),
    ("np.concatenate([t, t], 0, None, casting='unsafe')", "casting"),
    ("np.sum(t, 0, np.float32)", "dtype"),
    ("np.mean(t, 0, None, np.zeros(3))", "out"),
])
def test_a_numpy_parameter_the_engine_lacks_is_refused_naming_it(call, parameter):
    t = ag.Tensor(T_, requires_grad=True)
    name = call.split("(")[0]
    with pytest.raises(TypeError, match=rf"^{name}: {parameter}= is not supported on a Tensor "
                                        rf"\(.*\); or call np.asarray\(t\) first"):
        eval(call, {"np": np, "t": t})


@pytest.mark.parametrize("call, expected, grad", [
    ("np.var(t, 1, None, None, 1)", T_.var(axis=1, ddof=1), (T_ - T_.mean(1, keepdims=True)) / 1.0),
    ("np.std(t, None, None, None, 0, True)", T_.std(keepdims=True), None),
    ("np.mean(t, 0, None, None, True)", T_.mean(0, keepdims=True), np.full_like(T_, 0.5)),
    ("np.sum(t, 1, None, None, True)", T_.sum(1, keepdims=True), np.ones_like(T_)),
    ("np.max(t, 0, None, True)", T_.max(0, keepdims=True), np.array([[0, 0, 0], [1, 1, 1.0]])),
    ("np.reshape(t, (3, 2), order='C')", T_.reshape(3, 2), np.ones_like(T_)),
    ("np.clip(t, None, 4.0)", np.clip(T_, None, 4.0), (T_ <= 4.0) * 1.0),  # PyTorch: 1 at the bound
    ("np.concatenate([t, t], 0, None, casting='same_kind')", np.concatenate([T_, T_]),
     np.full_like(T_, 2.0)),
])
def test_numpy_positional_and_default_arguments_mean_what_they_mean_in_numpy(call, expected, grad):
    t = ag.Tensor(T_, requires_grad=True)
    out = eval(call, {"np": np, "t": t})
    assert isinstance(out, ag.Tensor) and out.requires_grad
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    out.sum().backward()
    if grad is not None:
        np.testing.assert_allclose(t.grad, grad, rtol=1e-12, atol=1e-15)

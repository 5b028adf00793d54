"""The reductions (autograd_lite/ops/reduce.py): max, min, logsumexp, var, std
against central finite differences over hypothesis shapes, axes and keepdims, to second order;
ties in max/min split equally; argmax/argmin as plain integer arrays; an error test for each
refusal."""
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import autograd_lite as ag
from gradcheck_util import FAST, arrays, assert_close, check_gradients, shapes, values
from second_order_util import check_hvp

T = ag.Tensor


@st.composite
def spread_array_and_axis(draw, min_dims=1, max_dims=3):
    """An array whose elements are all at least 0.1 apart (no tie within a difference step) and
    an axis argument: None, an int (maybe negative) or a tuple of axes."""
    shape = draw(shapes(min_dims=min_dims, max_dims=max_dims), label="shape")
    size = int(np.prod(shape))
    order = draw(st.permutations(range(size)), label="order")
    x = (np.array(order, dtype=np.float64) * 0.37 - size * 0.15).reshape(shape)
    ndim = len(shape)
    options = [None] + list(range(-ndim, ndim))
    if ndim >= 2:
        options += [(0, ndim - 1), tuple(range(ndim))]
    return x, draw(st.sampled_from(options), label="axis"), draw(st.booleans(), label="keepdims")


REDUCTIONS = {
    "max": lambda x, axis, keepdims: x.max(axis=axis, keepdims=keepdims),
    "min": lambda x, axis, keepdims: ag.min(x, axis, keepdims),
    "logsumexp": lambda x, axis, keepdims: x.logsumexp(axis, keepdims),
    "var": lambda x, axis, keepdims: x.var(axis=axis, keepdims=keepdims),
    "var ddof 1": lambda x, axis, keepdims: ag.var(x, axis, ddof=1, keepdims=keepdims),
    "std": lambda x, axis, keepdims: x.std(axis=axis, keepdims=keepdims),
    "std ddof 1": lambda x, axis, keepdims: ag.std(x, axis, 1, keepdims),
}
NUMPY = {"max": np.max, "min": np.min, "var": np.var, "std": np.std}


def _enough_for_ddof(name, x, axis):
    """ddof=1 needs two elements; so does std's gradient (var = 0 gives 1/(2·0))."""
    if "ddof 1" not in name and "std" not in name:
        return True
    axes = range(x.ndim) if axis is None else ([axis] if isinstance(axis, int) else axis)
    return int(np.prod([x.shape[a] for a in axes])) >= 2


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@FAST
@given(case=spread_array_and_axis())
def test_reduction_matches_finite_differences(name, case):
    x, axis, keepdims = case
    if not _enough_for_ddof(name, x, axis):
        return
    grads = check_gradients(lambda t: REDUCTIONS[name](t, axis, keepdims), x)
    assert grads[0].shape == x.shape
    with ag.no_grad():
        got = REDUCTIONS[name](T(x), axis, keepdims).data
    base = name.split()[0]
    if base in NUMPY:
        expected = NUMPY[base](x, axis=axis, keepdims=keepdims,
                               **({"ddof": 1} if "ddof 1" in name else {}))
    else:
        expected = np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
    assert_close(got, expected, name, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@FAST
@given(case=spread_array_and_axis(max_dims=2), data=st.data())
def test_reduction_second_order(name, case, data):
    x, axis, keepdims = case
    if not _enough_for_ddof(name, x, axis):
        return
    v = data.draw(arrays(x.shape, values(-1.0, 1.0)), label="v")
    check_hvp(lambda t: (REDUCTIONS[name](t, axis, keepdims) ** 2).sum()
              + (REDUCTIONS[name](t * t, axis, keepdims)).sum(), x, v * 0.01)


def test_max_and_min_split_the_gradient_equally_between_ties():
    x = T([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    assert_close(x.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-15, atol=0)
    x.grad = None
    ag.min(x).backward()                               # over all: 1 ties with nothing
    np.testing.assert_array_equal(x.grad, [[1, 0, 0], [0, 0, 0]])
    x.grad = None
    x.max(axis=0, keepdims=True).backward(np.array([[6.0, 6.0, 6.0]]))
    np.testing.assert_array_equal(x.grad, [[0, 6, 6], [6, 0, 0]])


def test_max_gradient_of_a_two_way_tie_is_what_central_differences_give():
    # For two tied elements the central difference is exactly 1/2 each: the split agrees.
    check_gradients(lambda t: t.max(), np.array([0.5, 2.0, 2.0, -1.0]))


def test_argmax_and_argmin_are_integer_arrays_without_gradient():
    data = np.array([[0.2, 5.0, 5.0], [7.0, -1.0, 3.0]])
    x = T(data, requires_grad=True)
    for function, reference in ((ag.argmax, np.argmax), (ag.argmin, np.argmin)):
        for axis in (None, 0, 1, -1):
            for keepdims in (False, True):
                got = function(x, axis=axis, keepdims=keepdims)
                assert isinstance(got, np.ndarray) and got.dtype.kind == "i"
                np.testing.assert_array_equal(got, reference(data, axis=axis, keepdims=keepdims))
    np.testing.assert_array_equal(x.argmax(axis=1), [1, 0])   # the first at a tie
    np.testing.assert_array_equal(x.argmin(axis=0), [0, 1, 1])
    np.testing.assert_array_equal(ag.argmax([[1, 9], [3, 2]], axis=0), [1, 0])


def test_logsumexp_is_stable_and_silent_for_huge_and_infinite_inputs():
    x = np.array([[1000.0, -np.inf, -1000.0], [1000.0, 3.0, -1001.0]])
    X = T(x, requires_grad=True)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y = X.logsumexp(axis=0)
        y.sum().backward()
        assert ag.logsumexp(T([-np.inf, -np.inf])).item() == -np.inf   # log 0, no warning
    assert_close(y.data, [1000 + np.log(2), 3.0, -1000 + np.log1p(np.exp(-1.0))], rtol=1e-15, atol=0)
    assert_close(X.grad[:, 0], [0.5, 0.5], rtol=1e-12, atol=0)  # softmax (ulp of 1000 ~ 1e-13)
    np.testing.assert_array_equal(X.grad[:, 1], [0.0, 1.0])             # e^-inf = 0
    assert_close(X.grad[:, 2], [1 / (1 + np.exp(-1)), 1 / (1 + np.exp(1))], rtol=1e-12, atol=0)


def test_logsumexp_gradient_is_softmax():
    x = np.random.default_rng(3).standard_normal((4, 5))
    X = T(x, requires_grad=True)
    X.logsumexp(axis=0).sum().backward()
    assert_close(X.grad, T(x).softmax(axis=0).data, rtol=1e-14, atol=1e-16)


def test_var_gradient_is_two_centred_over_n_minus_ddof():
    x = np.array([[1.0, 4.0, 7.0, 0.0]])
    for ddof in (0, 1, 3):
        X = T(x, requires_grad=True)
        X.var(axis=1, ddof=ddof).sum().backward()
        assert_close(X.grad, 2 * (x - x.mean()) / (4 - ddof), f"ddof={ddof}", rtol=1e-15, atol=0)


@pytest.mark.parametrize("call, error, words", [
    (lambda: T(np.ones((2, 0))).max(axis=1), ag.ShapeError, "max: cannot reduce over axis 1 of an array of shape (2, 0)"),
    (lambda: ag.min(T(np.ones((0,)))), ag.ShapeError, "min: cannot reduce"),
    (lambda: ag.logsumexp(T(np.ones((0, 3))), axis=0), ag.ShapeError, "logsumexp: cannot reduce"),
    (lambda: T(np.ones((2, 3))).max(axis=2), ag.ShapeError, "max: axis 2 is out of range"),
    (lambda: T(np.ones((2, 3))).min(axis=1.0), ag.ShapeError, "min: axis must be None, an int"),
    (lambda: T(np.ones((2, 3))).var(axis=1, ddof=3), ag.ShapeError, "var: 3 element(s) over axis 1 of shape (2, 3) with ddof=3"),
    (lambda: T(np.ones(3)).std(ddof=-1), ValueError, "std: ddof must be a whole number >= 0"),
    (lambda: T(np.ones(3)).var(ddof=0.5), ValueError, "var: ddof must be a whole number"),
    (lambda: T(np.ones((2, 3))).argmax(axis=(0, 1)), ag.ShapeError, "argmax: axis must be None or a single int"),
    (lambda: T(np.ones((2, 3))).argmin(axis=-3), ag.ShapeError, "argmin: axis -3 is out of range"),
    (lambda: ag.argmax(np.ones((0,))), ag.ShapeError, "argmax: the array of shape (0,) has no elements"),
])
def test_each_refusal_names_the_op(call, error, words):
    with pytest.raises(error) as caught:
        call()
    assert words in str(caught.value)


def test_formulas_name_the_rule():
    from autograd_lite.ops import reduce as R
    text = R.MAX.formula(0, "g", ["x", "y"], {"axis": (1,), "keepdims": False}, [(2, 3)])
    assert text == "g to the arg-max over axis 1, split at ties"
    assert R.VAR.formula(0, "g", ["x", "y"], {"axis": (0, 1), "ddof": 1, "keepdims": False},
                         [(2, 3)]) == "g ∘ 2(x − mean) / 5"
    assert "softmax(x)" in R.LOGSUMEXP.formula(0, "g", ["x", "y"], {"axis": (0,), "keepdims": True}, [(2, 3)])


def test_numpy_functions_on_a_tensor_return_the_recorded_tensor():
    # np.max, np.var, np.clip, ... call the Tensor's method with out=None (and dtype=None):
    # the result is the Tensor with its gradient, not a detached ndarray.
    data = np.array([[1.3, -2.0, 0.5], [3.0, 4.0, -1.0]])
    x = T(data, requires_grad=True)
    for result in (np.max(x, axis=0), np.amin(x), np.var(x, axis=1), np.std(x, ddof=1), np.clip(x, 0, 1)):
        assert isinstance(result, ag.Tensor) and result.requires_grad
    check_gradients(lambda t: np.max(t, axis=0).sum() + np.min(t) + np.var(t, axis=1).sum()
                    + np.std(t, ddof=1) + (t * np.clip(t, 0, 1)).sum(), data)
    assert isinstance(np.argmax(x), (np.integer, np.ndarray))
    for call, error, words in (
            (lambda: np.max(x, out=np.zeros(3)), TypeError, "max: out= is not supported"),
            (lambda: np.std(x, dtype=np.float32), TypeError, "std: dtype= is not supported"),
            (lambda: np.clip(x, 0, 1, out=np.zeros((2, 3))), TypeError, "clip: out= is not supported")):
        with pytest.raises(error, match=words):
            call()

"""concatenate, stack, split and where (autograd_lite/ops/shape.py) against central finite
differences over hypothesis shapes (broadcasting for where), to second order, with constants
mixed in, and an error test for each refusal."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import autograd_lite as ag
from gradcheck_util import FAST, arrays, assert_close, check_gradients, shapes, values
from second_order_util import check_hvp

T = ag.Tensor


@st.composite
def joinable(draw):
    """1-3 arrays equal in shape except along ``axis``, the axis (maybe negative), and which of
    them need a gradient (at least one)."""
    shape = draw(shapes(min_dims=1, max_dims=3), label="shape")
    axis = draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    count = draw(st.integers(1, 3), label="count")
    xs = []
    for _ in range(count):
        own = list(shape)
        own[axis] = draw(st.integers(1, 3))
        xs.append(draw(arrays(tuple(own))))
    wants = draw(st.lists(st.booleans(), min_size=count, max_size=count).filter(any), label="wants")
    return xs, axis, wants


@FAST
@given(case=joinable())
def test_concatenate_matches_finite_differences(case):
    xs, axis, wants = case
    check_gradients(lambda *ts: ag.concatenate(list(ts), axis=axis), *xs, wants=wants)
    with ag.no_grad():
        got = ag.concatenate([T(x) for x in xs], axis).data
    np.testing.assert_array_equal(got, np.concatenate(xs, axis))


@FAST
@given(data=st.data())
def test_stack_matches_finite_differences(data):
    shape = data.draw(shapes(max_dims=2), label="shape")
    count = data.draw(st.integers(1, 3), label="count")
    xs = [data.draw(arrays(shape), label=f"x{i}") for i in range(count)]
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    check_gradients(lambda *ts: ag.stack(ts, axis=axis), *xs)
    with ag.no_grad():
        np.testing.assert_array_equal(ag.stack([T(x) for x in xs], axis).data, np.stack(xs, axis))


@FAST
@given(data=st.data())
def test_split_matches_finite_differences(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=6), label="shape")
    x = data.draw(arrays(shape), label="x")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    length = shape[axis]
    by_sections = data.draw(st.booleans(), label="sections")
    if by_sections:
        spec = data.draw(st.sampled_from([n for n in range(1, length + 1) if length % n == 0]))
    else:
        spec = sorted(data.draw(st.lists(st.integers(0, length), max_size=3), label="cuts"))

    def fn(t):
        pieces = t.split(spec, axis=axis)
        # each piece weighted differently, so a piece's gradient landing in the wrong place shows
        return ag.concatenate([p * float(k + 1) for k, p in enumerate(pieces)], axis=axis)
    check_gradients(fn, x)
    pieces = ag.split(T(x), spec, axis)
    expected = np.split(x, spec, axis)
    assert len(pieces) == len(expected)
    for piece, reference in zip(pieces, expected):
        np.testing.assert_array_equal(piece.data, reference)


@FAST
@given(data=st.data())
def test_where_with_broadcasting_matches_finite_differences(data):
    c_shape, a_shape, b_shape = data.draw(hnp.mutually_broadcastable_shapes(
        num_shapes=3, min_dims=0, max_dims=3, max_side=3), label="shapes").input_shapes
    cond = data.draw(hnp.arrays(bool, c_shape), label="cond")
    a = data.draw(arrays(a_shape), label="a")
    b = data.draw(arrays(b_shape), label="b")
    wants = data.draw(st.sampled_from([(True, True), (True, False), (False, True)]), label="wants")
    check_gradients(lambda s, t: ag.where(cond, s, t), a, b, wants=wants)
    with ag.no_grad():
        np.testing.assert_array_equal(ag.where(cond, T(a), T(b)).data, np.where(cond, a, b))


@pytest.mark.parametrize("name, f, shape", [
    ("concatenate", lambda t: (ag.concatenate([t, t * t, np.ones((2, 1))], axis=1) ** 2).sum(), (2, 3)),
    ("stack", lambda t: (ag.stack([t.sin(), t * t], axis=-1) ** 3).sum(), (2, 3)),
    ("split", lambda t: sum(((p * (k + 1.0)) ** 3).sum() for k, p in enumerate(t.split([1, 3], axis=1))), (2, 4)),
    ("where", lambda t: (ag.where(np.array([True, False, True]), t * t, t.sin()) ** 2).sum(), (2, 3)),
    ("where broadcast", lambda t: (ag.where(np.array([[True], [False]]), t ** 3, 2.0) ** 2).sum(), (3,)),
])
def test_second_order(name, f, shape):
    rng = np.random.default_rng(7)
    for _ in range(3):
        check_hvp(f, rng.uniform(-1.5, 1.5, shape), rng.standard_normal(shape))


def test_constants_and_tensors_mix_and_only_tensors_get_gradients():
    x = T([[1.0, 2.0]], requires_grad=True)
    y = ag.concatenate([np.zeros((1, 3)), x, [[5.0]]], axis=1)
    np.testing.assert_array_equal(y.data, [[0, 0, 0, 1, 2, 5]])
    (y * np.arange(6.0)).sum().backward()
    np.testing.assert_array_equal(x.grad, [[3.0, 4.0]])


@pytest.mark.parametrize("call, error, words", [
    (lambda: ag.concatenate([T(np.ones((2, 3))), T(np.ones((3, 3)))], axis=1), ag.ShapeError,
     "concatenate: input 1 has shape (3, 3) but input 0 has shape (2, 3); all must be equal except along axis 1"),
    (lambda: ag.concatenate([T(np.ones(2)), T(np.ones((2, 1)))]), ag.ShapeError, "concatenate: the inputs have different numbers of axes"),
    (lambda: ag.concatenate([T(1.0), T(2.0)]), ag.ShapeError, "concatenate: cannot join scalars"),
    (lambda: ag.concatenate([]), ValueError, "concatenate: needs at least one tensor"),
    (lambda: ag.concatenate(T(np.ones((2, 2)))), TypeError, "concatenate: pass a list or tuple"),
    (lambda: ag.concatenate([T(np.ones(2))], axis=1), ag.ShapeError, "concatenate: axis 1 is out of range"),
    (lambda: ag.stack([T(np.ones(2)), T(np.ones(3))]), ag.ShapeError, "stack: input 1 has shape (3,) but input 0 has shape (2,)"),
    (lambda: ag.stack([T(np.ones(2))], axis=2), ag.ShapeError, "stack: axis 2 is out of range"),
    (lambda: ag.stack([T(np.ones(2))], axis=None), ag.ShapeError, "stack: axis must be a single int"),
    (lambda: T(np.ones((2, 5))).split(2, axis=1), ag.ShapeError, "split: axis 1 of shape (2, 5) has length 5, which does not divide into 2 equal sections"),
    (lambda: ag.split(T(1.0), 1), ag.ShapeError, "split: cannot split a scalar"),
    (lambda: ag.split(T(np.ones(4)), "two"), TypeError, "split: indices_or_sections must be an int or a list of ints"),
    (lambda: ag.where(T([1.0, 0.0]), 1.0, 2.0), TypeError, "where: cond must be boolean"),
    (lambda: ag.where(np.ones((2, 3), bool), T(np.ones(2)), 0.0), ag.ShapeError, "where: shapes (2, 3) (cond), (2,) (a) and () (b) cannot be broadcast together"),
])
def test_each_refusal_names_the_op(call, error, words):
    with pytest.raises(error) as caught:
        call()
    assert words in str(caught.value)


def test_formulas_name_the_slices():
    from autograd_lite.ops import shape as J
    params = {"axis": 1, "sizes": (2, 3)}
    assert J.CONCATENATE.formula(1, "g", ["a", "b", "c"], params, [(4, 2), (4, 3)]) == "g[2:5 along axis 1]"
    assert J.STACK.formula(1, "g", ["a", "b", "c"], {"axis": 0}, [(2,), (2,)]) == "g[1 along axis 0]"
    assert J.WHERE.formula(1, "g", ["a", "b", "c"], {"cond": np.ones(2, bool)}, [(2,), (2,)]) == "g where not cond"

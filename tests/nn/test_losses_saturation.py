"""A loss must never turn the model into NaN silently.

binary_cross_entropy on a recorded sigmoid, and cross_entropy on a recorded softmax, are computed
from the logits (exact: finite J for any Z, dJ/dZ = (A - Y) / m, eq 78 with eq 76's 1/m); any
other A takes the limit 0 log 0 = 0 (xlogy); class indices may be a Tensor; raw errors become
clear ones. The end-to-end run is the issue's own: breast cancer, Adam, 300 epochs."""
import warnings

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import losses
from autograd_lite.errors import ShapeError
from gradcheck_util import FAST, arrays, shapes, values
from hypothesis import given, strategies as st

T = ag.Tensor
Z_EXTREME = np.array([[-800.0, -40.0, -5.0, 0.0, 5.0, 40.0, 800.0]])


def sigmoid(z):
    return np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))


def softmax(Z):
    E = np.exp(Z - Z.max(axis=0))
    return E / E.sum(axis=0)


@pytest.mark.parametrize("y", [0.0, 1.0])
def test_bce_of_a_recorded_sigmoid_is_exact_for_any_logits(y):
    Y = np.full(Z_EXTREME.shape, y)
    m = Z_EXTREME.shape[1]
    Z = T(Z_EXTREME, requires_grad=True, name="Z[2]")
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no SaturationWarning, no numpy warning: nothing is wrong
        J = ag.binary_cross_entropy(Z.sigmoid(), Y)
        assert J.op == "binary_cross_entropy_with_logits" and J.parents[0] is Z
        J.backward()
    expected = np.mean(np.where(Y == 1, np.logaddexp(0.0, -Z_EXTREME), np.logaddexp(0.0, Z_EXTREME)))
    assert J.item() == pytest.approx(expected, rel=1e-14)
    np.testing.assert_allclose(Z.grad, (sigmoid(Z_EXTREME) - Y) / m, rtol=1e-14, atol=0)  # eq 78
    assert losses.FUSED_SIGMOID_SCOPE in J.scope


@FAST
@given(data=st.data())
def test_bce_of_a_recorded_sigmoid_over_random_shapes_and_logits_up_to_1000(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3), label="shape")
    z = data.draw(arrays(shape, values(-1000.0, 1000.0)), label="Z")
    y = data.draw(arrays(shape, st.sampled_from([0.0, 1.0])), label="Y")
    m = shape[-1]
    Z = T(z, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J = ag.binary_cross_entropy(Z.sigmoid(), y)
        J.backward()
    exact = np.where(y == 1, np.logaddexp(0.0, -z), np.logaddexp(0.0, z))   # softplus(-+z)
    assert J.item() == pytest.approx(np.sum(exact) / m, rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(Z.grad, (sigmoid(z) - y) / m, rtol=1e-12, atol=1e-300)


@FAST
@given(data=st.data())
def test_bce_of_plain_probabilities_takes_the_limit_at_0_and_1(data):
    """Any A in [0, 1] (exact 0s and 1s included) against 0/1 labels: J is eq 1 with 0 log 0 = 0,
    finite unless a sample is confidently wrong, and its gradient is finite wherever J is."""
    shape = data.draw(shapes(min_dims=1, max_dims=2), label="shape")
    a = data.draw(arrays(shape, st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0])), label="A")
    y = data.draw(arrays(shape, st.sampled_from([0.0, 1.0])), label="Y")
    m = shape[-1]
    wrong = ((a == 0) & (y == 1)) | ((a == 1) & (y == 0))
    A = T(a, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        J = ag.binary_cross_entropy(A, y)
        J.backward()
    if wrong.any():
        assert J.item() == np.inf
        return
    with np.errstate(divide="ignore"):
        terms = np.where(y == 1, -np.log(a), -np.log(1 - a))
    assert J.item() == pytest.approx(np.sum(terms) / m, rel=1e-13)
    interior = (a > 0) & (a < 1)
    expected = (-(y / np.where(interior, a, 1)) + (1 - y) / np.where(interior, 1 - a, 1)) / m
    np.testing.assert_allclose(A.grad[interior], expected[interior], rtol=1e-13)
    assert np.all(np.isfinite(A.grad))


def test_before_the_fix_the_composed_loss_was_nan_at_a_rounded_probability():
    """The issue's failure: sigmoid(40) is exactly 1.0 and y = 1 made 0 * log(0) = NaN."""
    Z = T([[40.0, 0.5]], requires_grad=True)
    A = Z.sigmoid()
    assert A.data[0, 0] == 1.0
    Y = np.array([[1.0, 0.0]])
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isnan((-(Y * np.log(A.data) + (1 - Y) * np.log(1 - A.data))).sum())
    J = ag.binary_cross_entropy(A, Y)
    J.backward()
    assert np.isfinite(J.item()) and np.all(np.isfinite(Z.grad))


def test_fuse_false_keeps_the_loss_a_function_of_A_with_the_xlogy_limit():
    Z = T([[40.0, 0.5]], requires_grad=True)
    A = Z.sigmoid().retain_grad()
    Y = np.array([[1.0, 0.0]])
    J = ag.binary_cross_entropy(A, Y, fuse=False)
    J.backward()
    assert A.grad is not None and np.isfinite(J.item())
    assert losses.FUSED_SIGMOID_SCOPE not in J.scope
    # 0 log 0 = 0 in the right sample: its J term is 0 and dZ = (A - Y)/m = 0 as well
    np.testing.assert_allclose(Z.grad[0, 1], (sigmoid(0.5) - 0.0) / 2, rtol=1e-14)
    assert Z.grad[0, 0] == 0.0


def test_a_confidently_wrong_sigmoid_costs_its_logit_not_inf():
    """Fused: sigmoid(40) = 1 with y = 0 costs 40 (log(1 + e^40)) and dZ = 1/m; composed it was
    inf and NaN."""
    Z = T([[40.0]], requires_grad=True)
    J = ag.binary_cross_entropy(Z.sigmoid(), np.array([[0.0]]))
    J.backward()
    assert J.item() == pytest.approx(40.0, rel=1e-15) and Z.grad[0, 0] == 1.0


def test_bce_of_a_plain_probability_array_is_inf_when_confidently_wrong_never_clamped():
    with pytest.warns(ag.SaturationWarning, match="wrong side"):
        J = ag.binary_cross_entropy(np.array([[1.0, 0.5]]), np.array([[0.0, 0.0]]))
    assert J.item() == np.inf


def test_bce_refuses_a_scalar_with_a_clear_error():
    with pytest.raises(ShapeError, match="binary_cross_entropy: A is a scalar"):
        ag.binary_cross_entropy(T(0.5), T(1.0))


def test_cross_entropy_of_a_recorded_softmax_uses_log_softmax_of_its_logits():
    Z_array = np.array([[1000.0, 0.0, -3.0], [0.0, 1000.0, 2.0], [-5.0, 0.0, 1.0]])
    labels = np.array([1, 1, 2])           # the first sample is confidently wrong: a = 0
    m = 3
    for Y in (labels, np.eye(3)[:, labels], T(labels)):
        Z = T(Z_array, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            J = ag.cross_entropy(Z.softmax(axis=0), Y)
            J.backward()
        assert J.item() == pytest.approx(
            ag.softmax_cross_entropy(Z_array, labels).item(), rel=1e-14)
        assert J.item() == pytest.approx((1000.0 + 0.0 + -np.log(softmax(Z_array)[2, 2])) / m,
                                         rel=1e-12)
        np.testing.assert_allclose(Z.grad, (softmax(Z_array) - np.eye(3)[:, labels]) / m,
                                   rtol=1e-12, atol=1e-15)
        assert losses.FUSED_SOFTMAX_SCOPE in J.scope


def test_cross_entropy_of_another_softmax_axis_or_plain_probabilities_is_not_fused():
    Z = T(np.random.default_rng(0).standard_normal((3, 3)), requires_grad=True)
    J = ag.cross_entropy(Z.softmax(axis=1), np.array([0, 1, 2]))
    assert losses.FUSED_SOFTMAX_SCOPE not in J.scope
    A = np.array([[0.0, 0.5], [1.0, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # y = 0 where a = 0: 0 log 0 = 0, no warning
        assert ag.cross_entropy(A, np.eye(2)[:, [1, 0]]).item() == pytest.approx(np.log(2) / 2)
    with pytest.warns(ag.SaturationWarning, match="probability exactly 0"):
        assert ag.cross_entropy(A, np.array([0, 0])).item() == np.inf


@pytest.mark.parametrize("loss", [ag.softmax_cross_entropy, ag.cross_entropy])
def test_class_indices_as_a_tensor_are_accepted_and_validated(loss):
    Z = np.random.default_rng(1).standard_normal((3, 4))
    inputs = Z if loss is ag.softmax_cross_entropy else softmax(Z)
    labels = np.array([0, 2, 1, 2])
    expected = loss(inputs, labels).item()
    assert loss(inputs, T(labels)).item() == pytest.approx(expected, rel=1e-15)
    assert loss(inputs, T(labels.astype(float))).item() == pytest.approx(expected, rel=1e-15)
    assert loss(inputs, list(labels)).item() == pytest.approx(expected, rel=1e-15)
    with pytest.raises(ValueError, match="whole numbers"):
        loss(inputs, T([0.5, 1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
        loss(inputs, T([0.0, 1.0, 3.0, 0.0]))
    with pytest.raises(ShapeError, match=r"must have shape \(4,\)"):
        loss(inputs, T([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("z, y, expected", [(np.inf, 0.0, np.inf), (np.inf, 1.0, 0.0),
                                            (-np.inf, 0.0, 0.0)])
def test_bce_with_logits_at_infinite_logits_is_the_limit_not_nan(z, y, expected):
    """ops.losses.BinaryCrossEntropyWithLogits forms max(z, 0) - z y: inf - inf or inf * 0 = NaN at
    z = +-inf. The limit is |z| times the weight of the wrong label: +inf, or 0 if it is 0."""
    Z = T([[z]], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        J = ag.binary_cross_entropy_with_logits(Z, np.array([[y]]))
        J.backward()
    assert J.item() == expected
    assert Z.grad[0, 0] == (1.0 if z > 0 else 0.0) - y      # eq 78: sigmoid(+-inf) - y


def test_bce_with_logits_at_minus_inf_with_label_1_is_already_inf():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ag.binary_cross_entropy_with_logits(T([[-np.inf]]), np.array([[1.0]])).item() == np.inf


def test_breast_cancer_with_a_sigmoid_output_and_bce_trains_without_nan():
    """The issue's run: Sequential(Linear(30,16), ReLU, Linear(16,1), Sigmoid), Adam lr 0.01,
    300 full-batch epochs on standardised breast cancer data. It used to turn every parameter
    into NaN at epoch 222 (one probability rounded to 1.0) and fall to 38 % test accuracy."""
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order].astype(np.float64)
    train_rows, test_rows = slice(0, 455), slice(455, None)
    mean, std = X[train_rows].mean(axis=0), X[train_rows].std(axis=0)
    X = ((X - mean) / std).T                          # samples as columns (eq 25)
    Y = y[None, :]
    nn = ag.nn
    model = nn.Sequential(nn.Linear(30, 16, rng=np.random.default_rng(0)), nn.ReLU(),
                          nn.Linear(16, 1, rng=np.random.default_rng(1)), nn.Sigmoid())
    optimizer = ag.optim.Adam(model.parameters(), lr=0.01)
    saturated = False
    for _ in range(300):
        A = model(T(X[:, train_rows]))
        saturated = saturated or bool(np.any((A.data == 0) | (A.data == 1)))
        J = ag.binary_cross_entropy(A, Y[:, train_rows])
        assert np.isfinite(J.item())
        optimizer.zero_grad()
        J.backward()
        optimizer.step()
    assert saturated, "the run does not reach a probability of exactly 0 or 1: not the case tested"
    assert all(np.all(np.isfinite(p.data)) for p in model.parameters())
    with ag.no_grad():
        predicted = model(T(X[:, test_rows])).data > 0.5
    assert np.mean(predicted == (Y[:, test_rows] > 0.5)) > 0.9

"""check.compare_derivation: any hand derivation of any recorded graph, in backward order, with
the first quantity where it parts (autograd_lite/check/derivation.py, docs/check.md "Check any
derivation"). Each worked example has a deliberately wrong twin that must be caught and
explained."""
import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import check
from autograd_lite.errors import GraphFreedError

RNG = np.random.default_rng(0)


# ---- BatchNorm's backward by hand, the classic exercise --------------------------------------

def batchnorm_problem(n=3, m=5, eps=1e-5, seed=0):
    rng = np.random.default_rng(seed)
    bn = ag.nn.BatchNorm(n, eps=eps)
    bn.gamma.data[:] = rng.uniform(0.5, 2.0, (n, 1))
    X = ag.Tensor(rng.standard_normal((n, m)), requires_grad=True, name="X")
    G = rng.standard_normal((n, m))          # dJ/dY: whatever comes from above
    Y = bn(X).named("Y")
    J = (Y * G).sum().named("J")

    def x_hat(v):
        return (v["X"] - v["X"].mean(axis=1, keepdims=True)) / np.sqrt(
            v["X"].var(axis=1, keepdims=True) + eps)

    def dX(v):
        dX_hat = G * bn.gamma.data
        sigma = np.sqrt(v["X"].var(axis=1, keepdims=True) + eps)
        return (m * dX_hat - dX_hat.sum(axis=1, keepdims=True)
                - x_hat(v) * (dX_hat * x_hat(v)).sum(axis=1, keepdims=True)) / (m * sigma)

    hand = {"dY": G, "dgamma": lambda v: (G * x_hat(v)).sum(axis=1, keepdims=True),
            "dbeta": G.sum(axis=1, keepdims=True), "dX": dX}
    wrong = dict(hand, dX=lambda v: G * bn.gamma.data / np.sqrt(v["X"].var(axis=1, keepdims=True) + eps))
    return J, X, bn, hand, wrong


def test_batchnorm_backward_by_hand_passes_and_the_forgotten_mean_and_variance_paths_fail():
    J, X, bn, hand, wrong = batchnorm_problem()
    report = check.compare_derivation(J, hand)
    assert report.passed, str(report)
    assert {r.label for r in report.rows} == {"dY", "dgamma", "dbeta", "dX"}
    assert report.row("dX").pairs["autodiff-numeric"].passed      # a leaf: finite differences too
    assert report.row("dY").pairs["autodiff-numeric"] is None       # not a leaf
    caught = check.compare_derivation(J, wrong)
    assert not caught.passed and caught.first_failure.label == "dX"
    assert "differs from autodiff and finite differences" in caught.explanation
    assert "FAIL: the hand derivation first parts at dX" in str(caught)


def test_no_grad_is_changed_and_the_graph_survives():
    J, X, bn, hand, _ = batchnorm_problem()
    check.compare_derivation(J, hand)
    assert X.grad is None and bn.gamma.grad is None
    J.backward()                                   # the graph is still there
    assert X.grad is not None


# ---- softmax cross-entropy: dZ = (A - Y) / m -------------------------------------------------

def softmax_problem(n=4, m=5, seed=1):
    rng = np.random.default_rng(seed)
    Z = ag.Tensor(rng.standard_normal((n, m)), requires_grad=True, name="Z")
    Y = ag.Tensor(np.eye(n)[:, rng.integers(0, n, m)], name="Y")
    A = Z.softmax(axis=0).named("A")
    J = (-(Y * A.log()).sum() / m).named("J")
    return J, m


def test_softmax_cross_entropy_dZ_is_A_minus_Y_over_m_and_forgetting_m_is_named():
    J, m = softmax_problem()
    right = check.compare_derivation(J, {"dZ": lambda v: (v["A"] - v["Y"]) / m}, m=m)
    assert right.passed, str(right)
    wrong = check.compare_derivation(J, {"dZ": lambda v: v["A"] - v["Y"]}, m=m)
    assert not wrong.passed and wrong.first_failure.label == "dZ"
    assert f"m = {m} times too large" in wrong.explanation
    unknown_m = check.compare_derivation(J, {"dZ": lambda v: v["A"] - v["Y"]})
    assert f"{m} times too large" in unknown_m.explanation
    sign = check.compare_derivation(J, {"dZ": lambda v: (v["Y"] - v["A"]) / m})
    assert "wrong sign" in sign.explanation


# ---- a 3x3 convolution's dW --------------------------------------------------------------------

def conv_problem(seed=2):
    rng = np.random.default_rng(seed)
    x = ag.Tensor(rng.standard_normal((2, 6, 6, 3)), name="x")        # C, H, W, m
    W = ag.Tensor(rng.standard_normal((4, 2, 3, 3)), requires_grad=True, name="W")
    Z = ag.nn.functional.conv2d(x, W).named("Z")                        # 4 x 4 x 4 x 3
    G = rng.standard_normal(Z.shape)
    J = (Z * G).sum().named("J")
    return J, x.data, G


def conv_dW(x, G, flip=False):
    """dW[f, c, i, j] = sum over p, q, samples of dZ[f, p, q, s] x[c, p + i, q + j, s]."""
    F, Ho, Wo, _ = G.shape
    dW = np.zeros((F, x.shape[0], 3, 3))
    for i in range(3):
        for j in range(3):
            window = x[:, i:i + Ho, j:j + Wo, :]
            dW[:, :, i, j] = np.einsum("fpqs,cpqs->fc", G, window)
    return dW[:, :, ::-1, ::-1] if flip else dW


def test_a_3x3_convolutions_dW_by_hand_and_a_flipped_kernel_is_caught():
    J, x, G = conv_problem()
    assert check.compare_derivation(J, {"dZ": G, "dW": conv_dW(x, G)}).passed
    flipped = check.compare_derivation(J, {"dZ": G, "dW": conv_dW(x, G, flip=True)})
    assert not flipped.passed and flipped.first_failure.label == "dW"
    assert flipped.row("dZ").passed


# ---- shapes, transposes, order, keys ---------------------------------------------------------

def mlp_problem(m=4, seed=3):
    rng = np.random.default_rng(seed)
    X = ag.Tensor(rng.standard_normal((3, m)), name="X")
    W1 = ag.Tensor(rng.standard_normal((4, 3)), requires_grad=True, name="W[1]")
    b1 = ag.Tensor(rng.standard_normal((4, 1)), requires_grad=True, name="b[1]")
    W2 = ag.Tensor(rng.standard_normal((1, 4)), requires_grad=True, name="W[2]")
    Z1 = (W1 @ X + b1).named("Z[1]")
    A1 = Z1.tanh().named("A[1]")
    Z2 = (W2 @ A1).named("Z[2]")
    J = ((Z2 * Z2).sum() / m).named("J")
    return J, m, dict(X=X, W1=W1, b1=b1, W2=W2, Z1=Z1, A1=A1, Z2=Z2)


def hand_mlp(m):
    dZ2 = lambda v: 2 * v["Z[2]"] / m                                   # noqa: E731
    dA1 = lambda v: v["W[2]"].T @ dZ2(v)                                # noqa: E731
    dZ1 = lambda v: dA1(v) * (1 - v["A[1]"] ** 2)                       # noqa: E731
    return {"dW[1]": lambda v: dZ1(v) @ v["X"].T, "dZ[1]": dZ1, "dZ[2]": dZ2,
            "dW[2]": lambda v: dZ2(v) @ v["A[1]"].T, "db[1]": lambda v: dZ1(v).sum(axis=1, keepdims=True),
            "dA[1]": dA1}


def test_rows_come_in_backward_order_whatever_the_order_of_the_keys():
    J, m, t = mlp_problem()
    report = check.compare_derivation(J, hand_mlp(m))
    assert report.passed, str(report)
    labels = [r.label for r in report.rows]
    assert labels.index("dZ[2]") < labels.index("dA[1]") < labels.index("dZ[1]")
    assert labels.index("dZ[2]") < labels.index("dW[2]")
    assert labels.index("dZ[1]") < labels.index("dW[1]") and labels.index("dZ[1]") < labels.index("db[1]")


def test_the_first_to_part_is_named_and_a_transpose_is_explained():
    for m in (4, 5):        # dA[1] is 4 x m: square (the values tell) or not (the shapes do)
        J, m, t = mlp_problem(m)
        hand = hand_mlp(m)
        wrong = dict(hand, **{"dA[1]": lambda v, m=m: (v["W[2]"].T @ (2 * v["Z[2]"] / m)).T})
        report = check.compare_derivation(J, wrong)
        assert report.first_failure.label == "dA[1]"
        assert "transpose of autodiff's" in report.explanation
        assert ("(hand: 5x4)" in str(report)) == (m == 5)


def test_a_shape_clash_is_explained_with_both_shapes():
    J, m, t = mlp_problem()
    report = check.compare_derivation(J, {"db[1]": np.zeros((1, 4))})
    assert not report.passed and "shape is 1x4 but b[1] is 4x1" in report.explanation


def test_keys_may_be_tensors_or_names_with_or_without_d():
    J, m, t = mlp_problem()
    dZ2 = 2 * t["Z2"].data / m
    for key in (t["Z2"], "dZ[2]", "Z[2]"):
        report = check.compare_derivation(J, {key: dZ2})
        assert report.passed and report.rows[0].label == "dZ[2]"


def test_tiny_gradients_are_judged_by_their_own_rounding():
    J, m, t = mlp_problem()
    scale = 1e-9
    small = (J * scale).named("J small")
    hand = {k: (lambda f: (lambda v: scale * f(v)))(f) for k, f in hand_mlp(m).items()}
    assert check.compare_derivation(small, hand).passed
    wrong = dict(hand, **{"dW[1]": lambda v: 1.03 * hand["dW[1]"](v)})     # a 3 % error
    assert not check.compare_derivation(small, wrong).passed


def test_bad_calls_are_refused_clearly():
    J, m, t = mlp_problem()
    with pytest.raises(KeyError, match="no tensor named 'W\\[9\\]'.*the names are"):
        check.compare_derivation(J, {"dW[9]": 0})
    with pytest.raises(ValueError, match="does not require grad"):
        check.compare_derivation(J, {"dX": np.zeros((3, m))})
    with pytest.raises(ValueError, match="the hand rule for dZ\\[2\\] raised KeyError"):
        check.compare_derivation(J, {"dZ[2]": lambda v: v["nope"]})
    with pytest.raises(ValueError, match="one number"):
        check.compare_derivation(t["Z1"], {"dW[1]": 0})
    with pytest.raises(TypeError, match="mapping"):
        check.compare_derivation(J, [1, 2])
    J.backward()
    with pytest.raises(GraphFreedError, match="retain_graph=True"):
        check.compare_derivation(J, {"dZ[2]": 0})


def test_the_report_as_data_and_as_the_pictures_read_it():
    J, m, t = mlp_problem()
    hand = dict(hand_mlp(m), **{"dZ[1]": lambda v: 2 * hand_mlp(m)["dZ[1]"](v)})
    report = check.compare_derivation(J, hand)
    data = report.to_dict()
    assert data["first_failure"]["label"] == "dZ[1]" and not data["passed"]
    assert [r["label"] for r in data["rows"]] == [r.label for r in report.rows]
    import json
    assert json.loads(report.to_json())["rows"][0]["pairs"]["autodiff-reference"]["relative"] <= 1
    graph = ag.draw(J, backward=True, compare=report)
    source = graph.source
    assert "first to differ in backward order" in source
    assert "rel. diff" in source

"""The seed's networks differentiated by the engine, against eqs 77-84 written out in numpy here.

The hand derivation below is deliberately local to this file (not ``autograd_lite.reference``):
two witnesses that agree are worth more than one. Convention (EQUATIONS.md, after eq 84): the seed
keeps dZ per sample and writes the 1/m in dW and db; the engine, differentiating J directly,
carries the 1/m inside dJ/dZ. So dW and db must agree exactly, and the engine's dJ/dZ[l] equals
the seed's dZ[l] / m.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import autograd_lite as ag
from gradcheck_util import FAST, assert_close

RTOL, ATOL = 1e-10, 1e-12   # only rounding separates the two: "equal to ~1e-12"


# --- eqs 33-34 and 77-84 in plain numpy ----------------------------------------------------------

def _sigmoid(z):
    return 1 / (1 + np.exp(-z))                                   # eq 7


ACTIVATIONS = {   # g and g' (eq 8 for the sigmoid)
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1 - _sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0) * 1.0),
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
}


def numpy_forward(W, b, X, activations):
    """Eqs 33-34: Z[l] = W[l] A[l-1] + b[l], A[l] = g[l](Z[l]); lists indexed by layer, A[0] = X."""
    Z, A = [None], [X]
    for l in range(1, len(W)):
        Z.append(W[l] @ A[l - 1] + b[l])
        A.append(ACTIVATIONS[activations[l]][0](Z[l]))
    return Z, A


def numpy_backward(W, b, X, Y, activations, loss):
    """Eqs 77-84 with the seed's convention (dZ per sample, 1/m in dW and db)."""
    Z, A = numpy_forward(W, b, X, activations)
    N, m = len(W) - 1, X.shape[1]
    if loss == "log-loss":
        dA = -(Y / A[N]) + (1 - Y) / (1 - A[N])                  # eq 77, eq 1 differentiated
    else:                                                         # J = (1/m) sum (A - Y)^2 / 2
        dA = A[N] - Y
    dW, db, dZ = [None] * (N + 1), [None] * (N + 1), [None] * (N + 1)
    for l in range(N, 0, -1):
        if l < N:
            dA = W[l + 1].T @ dZ[l + 1]                          # eq 81
        dZ[l] = dA * ACTIVATIONS[activations[l]][1](Z[l])         # eqs 78, 82
        dW[l] = dZ[l] @ A[l - 1].T / m                            # eqs 79, 83
        db[l] = np.sum(dZ[l], axis=1, keepdims=True) / m          # eqs 80, 84
    return dW, db, dZ


# --- the same network built from the engine's primitives ------------------------------------------

def engine_network(W_, b_, X_, Y_, activations, loss):
    """Forward with Tensors (eqs 26-29 / 33-34), J (eqs 1, 76), backward; returns the tensors."""
    N = len(W_) - 1
    W = [None] + [ag.Tensor(W_[l], requires_grad=True, name=f"W[{l}]") for l in range(1, N + 1)]
    b = [None] + [ag.Tensor(b_[l], requires_grad=True, name=f"b[{l}]") for l in range(1, N + 1)]
    X, Y = ag.Tensor(X_), ag.Tensor(Y_)
    A, Z = [X], [None]
    for l in range(1, N + 1):
        Z.append((W[l] @ A[l - 1] + b[l]).named(f"Z[{l}]").retain_grad())
        A.append(getattr(Z[l], activations[l])() if activations[l] != "identity" else Z[l])
    if loss == "log-loss":
        J = ag.binary_cross_entropy(A[N], Y)
    elif loss == "log-loss from logits":
        J = ag.binary_cross_entropy_with_logits(Z[N], Y)
    else:
        J = ((A[N] - Y) ** 2).sum() / (2 * X_.shape[1])
    J.backward()
    return W, b, Z, J


def random_network(sizes, m, seed):
    rng = np.random.default_rng(seed)
    W = [None] + [rng.standard_normal((sizes[l], sizes[l - 1])) * 0.8 for l in range(1, len(sizes))]
    b = [None] + [rng.standard_normal((sizes[l], 1)) * 0.5 for l in range(1, len(sizes))]
    X = rng.standard_normal((sizes[0], m))                       # eq 25: samples are columns
    Y = (rng.random((sizes[-1], m)) > 0.5) * 1.0
    return W, b, X, Y


def assert_matches_eqs_77_to_84(W_, b_, X_, Y_, activations, loss):
    W, b, Z, J = engine_network(W_, b_, X_, Y_, activations, loss)
    numpy_loss = "squared" if loss == "squared" else "log-loss"
    dW, db, dZ = numpy_backward(W_, b_, X_, Y_, activations, numpy_loss)
    m = X_.shape[1]
    for l in range(1, len(W_)):
        assert W[l].grad.shape == W_[l].shape and b[l].grad.shape == (W_[l].shape[0], 1)  # eqs 35-36
        assert_close(W[l].grad, dW[l], f"dW[{l}], eqs 79/83", RTOL, ATOL)
        assert_close(b[l].grad, db[l], f"db[{l}], eqs 80/84", RTOL, ATOL)
        assert_close(Z[l].grad, dZ[l] / m, f"dJ/dZ[{l}] = dZ[{l}] / m, eqs 78/82", RTOL, ATOL)


# --- the 3-4-1 network of eqs 21-29 ---------------------------------------------------------------

@pytest.mark.parametrize("m", [1, 2, 5, 64])
def test_issue_example_3_4_1_sigmoid_log_loss_equals_eqs_83_84(m):
    rng = np.random.default_rng(m)
    X = ag.Tensor(rng.standard_normal((3, m)))                    # 3 features, m samples
    Y = ag.Tensor((rng.random((1, m)) > 0.5) * 1.0)
    W1 = ag.Tensor(rng.standard_normal((4, 3)) * 0.01, requires_grad=True, name="W[1]")
    b1 = ag.Tensor(np.zeros((4, 1)), requires_grad=True, name="b[1]")
    W2 = ag.Tensor(rng.standard_normal((1, 4)) * 0.01, requires_grad=True, name="W[2]")
    b2 = ag.Tensor(np.zeros((1, 1)), requires_grad=True, name="b[2]")
    A1 = (W1 @ X + b1).sigmoid()                                  # eqs 26-27
    A2 = (W2 @ A1 + b2).sigmoid()                                 # eqs 28-29
    J = -(Y * A2.log() + (1 - Y) * (1 - A2).log()).mean()         # eqs 1 and 76
    J.backward()

    # Eqs 77-84 by hand, sigmoid output with log-loss: dZ[2] = A[2] - Y (per sample).
    X_, Y_ = X.data, Y.data
    A1_ = _sigmoid(W1.data @ X_ + b1.data)
    A2_ = _sigmoid(W2.data @ A1_ + b2.data)
    dZ2 = A2_ - Y_                                                # eq 78 simplified
    dW2 = dZ2 @ A1_.T / m                                         # eq 79
    db2 = dZ2.sum(axis=1, keepdims=True) / m                      # eq 80
    dA1 = W2.data.T @ dZ2                                         # eq 81
    dZ1 = dA1 * A1_ * (1 - A1_)                                   # eq 82 with eq 8
    dW1 = dZ1 @ X_.T / m                                          # eq 83
    db1 = dZ1.sum(axis=1, keepdims=True) / m                      # eq 84
    assert_close(J.data, np.mean(-Y_ * np.log(A2_) - (1 - Y_) * np.log(1 - A2_)), "J", 1e-13, 0)
    for got, expected, name in [(W1.grad, dW1, "dW[1]"), (b1.grad, db1, "db[1]"),
                                (W2.grad, dW2, "dW[2]"), (b2.grad, db2, "db[2]")]:
        assert_close(got, expected, name, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss", ["log-loss", "log-loss from logits"])
@pytest.mark.parametrize("m", [1, 3, 10])
def test_3_4_1_network_with_both_log_losses(loss, m):
    W, b, X, Y = random_network([3, 4, 1], m, seed=100 + m)
    assert_matches_eqs_77_to_84(W, b, X, Y, [None, "sigmoid", "sigmoid"], loss)


def test_shapes_of_eqs_35_to_38():
    W_, b_, X_, Y_ = random_network([3, 4, 1], 7, seed=1)
    W, b, Z, J = engine_network(W_, b_, X_, Y_, [None, "sigmoid", "sigmoid"], "log-loss")
    assert [Z[l].shape for l in (1, 2)] == [(4, 7), (1, 7)]      # eq 37: n[l] x m
    assert [W[l].grad.shape for l in (1, 2)] == [(4, 3), (1, 4)]  # eq 35
    assert [b[l].grad.shape for l in (1, 2)] == [(4, 1), (1, 1)]  # eq 36
    assert J.shape == ()


# --- N layers (eqs 33-34), any activations, several m --------------------------------------------

@FAST
@given(sizes=st.lists(st.integers(1, 5), min_size=2, max_size=5),
       hidden=st.lists(st.sampled_from(["sigmoid", "tanh", "relu"]), min_size=4, max_size=4),
       m=st.sampled_from([1, 2, 3, 8]),
       loss=st.sampled_from(["log-loss", "log-loss from logits", "squared"]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_N_layer_networks_match_eqs_77_to_84(sizes, hidden, m, loss, seed):
    sizes[-1] = 1 if loss != "squared" else sizes[-1]
    N = len(sizes) - 1
    output = "identity" if loss == "squared" else "sigmoid"
    activations = [None] + hidden[:N - 1] + [output]
    W, b, X, Y = random_network(sizes, m, seed)
    assert_matches_eqs_77_to_84(W, b, X, Y, activations, loss)


@pytest.mark.parametrize("activations", [
    ["relu", "relu", "relu", "sigmoid"], ["tanh", "sigmoid", "relu", "sigmoid"],
    ["sigmoid", "tanh", "tanh", "sigmoid"],
])
@pytest.mark.parametrize("m", [1, 4])
def test_a_deep_network_with_mixed_activations(activations, m):
    W, b, X, Y = random_network([5, 4, 3, 4, 1], m, seed=7 * m)
    assert_matches_eqs_77_to_84(W, b, X, Y, [None] + activations, "log-loss")


def test_training_with_eqs_74_75_follows_the_hand_derivation_step_by_step():
    # Ten steps of W[l] -= alpha dW[l], b[l] -= alpha db[l]: the engine's parameters stay equal
    # to those of the same updates done with eqs 77-84.
    W_, b_, X_, Y_ = random_network([2, 3, 1], 6, seed=3)
    W_np, b_np = [None] + [w.copy() for w in W_[1:]], [None] + [v.copy() for v in b_[1:]]
    W = [None] + [ag.Tensor(w, requires_grad=True) for w in W_[1:]]
    b = [None] + [ag.Tensor(v, requires_grad=True) for v in b_[1:]]
    activations, alpha, losses = [None, "tanh", "sigmoid"], 0.5, []
    for _ in range(10):
        A1 = (W[1] @ X_ + b[1]).tanh()
        J = ag.binary_cross_entropy((W[2] @ A1 + b[2]).sigmoid(), Y_)
        losses.append(J.item())
        J.backward()
        dW, db, _ = numpy_backward(W_np, b_np, X_, Y_, activations, "log-loss")
        with ag.no_grad():
            for l in (1, 2):
                W[l].data -= alpha * W[l].grad                    # eq 74
                b[l].data -= alpha * b[l].grad                    # eq 75
                W[l].grad = b[l].grad = None
                W_np[l] -= alpha * dW[l]
                b_np[l] -= alpha * db[l]
        for l in (1, 2):
            assert_close(W[l].data, W_np[l], f"W[{l}]", 1e-12, 1e-13)
            assert_close(b[l].data, b_np[l], f"b[{l}]", 1e-12, 1e-13)
    assert losses[-1] < losses[0]

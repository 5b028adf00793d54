"""The benchmark workloads: one SGD training step of a sigmoid network, two ways.

Both implementations do the same math on the same seeded data and initial weights:

- forward, eqs 33-34: ``Z[l] = W[l] A[l-1] + b[l]``, ``A[l] = s(Z[l])`` (s = sigmoid, eq 7),
  the output layer included;
- cost, eqs 1 and 76: the mean log-loss of ``A[N] = s(Z[N])`` against Y, computed from the
  logits Z[N] (the engine's fused ``binary_cross_entropy_with_logits``; the floor writes the
  same stable formula out);
- backward, eqs 77-84: ``dZ[N] = A[N] - Y`` (eq 78 simplified for sigmoid + log-loss),
  ``dW = (1/m) dZ A^T``, ``db = (1/m) sum(dZ, axis=1)``, ``dA[h] = W[h+1]^T dZ[h+1]``,
  ``dZ[h] = dA[h] ∘ A[h](1 - A[h])`` (eq 8);
- update, eqs 74-75: ``W -= alpha dW``, ``b -= alpha db``, in place.

``numpy_step`` is the floor: what a learner writes by hand from the seed. ``engine_step`` is the
same step written with plain ``ag.Tensor`` operations and ``J.backward()``, updated as the
README writes it (in place under ``ag.no_grad()``, as the torch column under
``torch.no_grad()``); ``engine_data_step`` updates through ``.data`` instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import autograd_lite as ag

ALPHA = 0.01  # learning rate of eqs 74-75


@dataclass(frozen=True)
class Workload:
    """A network ``layers = [n[0], ..., n[N]]`` trained on m samples (columns)."""

    name: str
    layers: tuple
    m: int

    def problem(self, seed=0):
        """Seeded X (n[0], m), labels Y (n[N], m) in {0, 1}, and initial W[l], b[l] (eqs 35-36).

        W is scaled by 1/sqrt(n[l-1]) so a deep sigmoid stack neither saturates nor vanishes.
        """
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((self.layers[0], self.m))
        Y = (rng.random((self.layers[-1], self.m)) < 0.5).astype(np.float64)
        W = [rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
             for n_in, n_out in zip(self.layers[:-1], self.layers[1:])]
        b = [0.1 * rng.standard_normal((n_out, 1)) for n_out in self.layers[1:]]
        return X, Y, W, b


WORKLOADS = (
    Workload("seed [3,4,1], m = 1", (3, 4, 1), 1),
    Workload("seed [3,4,1], m = 256", (3, 4, 1), 256),
    Workload("20 hidden layers of 32, m = 64", (32,) + (32,) * 20 + (1,), 64),
    Workload("[784,128,64,1], m = 128", (784, 128, 64, 1), 128),
    Workload("[1024,1024,1024,1], m = 512", (1024, 1024, 1024, 1), 512),
)


# --- the floor: hand-written numpy ------------------------------------------------------------

def _sigmoid(Z):
    """Eq 7 as a learner writes it. (The benchmark data never drives -Z past exp's overflow.)"""
    return 1.0 / (1.0 + np.exp(-Z))


def numpy_grads(W, b, X, Y):
    """J, [dW[l]], [db[l]] by eqs 33-34, 76 and 77-84, in plain numpy."""
    m = X.shape[1]
    A = [X]
    for W_l, b_l in zip(W, b):
        Z = W_l @ A[-1] + b_l
        A.append(_sigmoid(Z))
    # eq 76 from the logits Z[N], stable: L = max(z, 0) - z y + log(1 + e^-|z|)
    J = np.sum(np.maximum(Z, 0.0) - Z * Y + np.log1p(np.exp(-np.abs(Z)))) / m
    dW = [None] * len(W)
    db = [None] * len(W)
    dZ = A[-1] - Y                                         # eq 78 for sigmoid + log-loss
    for l in range(len(W) - 1, -1, -1):
        dW[l] = (dZ @ A[l].T) / m                          # eqs 79, 83
        db[l] = np.sum(dZ, axis=1, keepdims=True) / m      # eqs 80, 84
        if l:
            dA = W[l].T @ dZ                               # eq 81
            dZ = dA * (A[l] * (1.0 - A[l]))                # eq 82 with eq 8
    return J, dW, db


def numpy_step(W, b, X, Y, alpha=ALPHA):
    """One SGD step in place (eqs 74-75); returns J."""
    J, dW, db = numpy_grads(W, b, X, Y)
    for W_l, b_l, dW_l, db_l in zip(W, b, dW, db):
        W_l -= alpha * dW_l
        b_l -= alpha * db_l
    return J


# --- the README's step: eq 1 composed as written, by hand in numpy ----------------------------------

def numpy_composed_step(W, b, X, Y, alpha=ALPHA):
    """One SGD step with the cost of eq 1 written out on A[N] = s(Z[N]) (not from the logits),
    and its derivative by hand: dA[N] = -(Y / A - (1 - Y) / (1 - A)) / m (eq 77 with eq 76's
    1/m), then eqs 78-84 through every sigmoid (eq 8). The floor of the README's ten lines."""
    m = X.shape[1]
    A = [X]
    for W_l, b_l in zip(W, b):
        A.append(_sigmoid(W_l @ A[-1] + b_l))
    A_N = A[-1]
    J = -np.mean(Y * np.log(A_N) + (1.0 - Y) * np.log(1.0 - A_N))
    dA = -(Y / A_N - (1.0 - Y) / (1.0 - A_N)) / m
    for l in range(len(W) - 1, -1, -1):
        dZ = dA * (A[l + 1] * (1.0 - A[l + 1]))
        dA = W[l].T @ dZ
        W[l] -= alpha * (dZ @ A[l].T)
        b[l] -= alpha * np.sum(dZ, axis=1, keepdims=True)
    return J


def engine_composed_loss(W, b, X, Y):
    """J as the README writes it: every layer a sigmoid, then eq 1 with log, averaged (eq 76)."""
    A = X
    for W_l, b_l in zip(W, b):
        A = (W_l @ A + b_l).sigmoid()
    return -(Y * A.log() + (1 - Y) * (1 - A).log()).mean()


def engine_composed_step(W, b, X, Y, alpha=ALPHA):
    J = engine_composed_loss(W, b, X, Y)
    J.backward()
    sgd_update(W, b, alpha)
    return J


def compiled_composed_step_function(W, b):
    tape = ag.compile(lambda X, Y: engine_composed_loss(W, b, X, Y))

    def step(X, Y, alpha=ALPHA):
        J = tape(X, Y)
        sgd_update(W, b, alpha)
        return J

    return step


# --- the engine: plain Tensors ------------------------------------------------------------------

def engine_problem(X, Y, W, b):
    """The same problem for the engine: X, Y as constant Tensors (made once, as a user would),
    copies of W[l], b[l] as leaf Tensors that require a gradient."""
    return (ag.Tensor(X), ag.Tensor(Y), [ag.Tensor(W_l, requires_grad=True) for W_l in W],
            [ag.Tensor(b_l, requires_grad=True) for b_l in b])


def engine_loss(W, b, X, Y):
    """J as a Tensor, from eqs 33-34 and the fused log-loss (eqs 1, 7, 76)."""
    A = X
    last = len(W) - 1
    for l, (W_l, b_l) in enumerate(zip(W, b)):
        Z = W_l @ A + b_l
        if l < last:
            A = Z.sigmoid()
    return ag.binary_cross_entropy_with_logits(Z, Y)


def engine_step(W, b, X, Y, alpha=ALPHA):
    """One SGD step: forward, ``J.backward()``, then eqs 74-75 as the README writes them;
    returns J."""
    J = engine_loss(W, b, X, Y)
    J.backward()
    sgd_update(W, b, alpha)
    return J


def engine_data_step(W, b, X, Y, alpha=ALPHA):
    """``engine_step`` with eqs 74-75 written on ``.data``, which hands W's array to the user:
    every later forward pass that saves it locks it until backward (the cost of refusing a
    write that would change the gradient)."""
    J = engine_loss(W, b, X, Y)
    J.backward()
    for p in W + b:
        p.data -= alpha * p.grad
        p.grad = None
    return J


def sgd_update(W, b, alpha=ALPHA):
    """Eqs 74-75 as the README writes them, in place under ``ag.no_grad()``, then ``.grad``
    reset for the next step."""
    with ag.no_grad():
        for p in W + b:
            p -= alpha * p.grad
            p.grad = None


# --- the stretch: the same step traced once and replayed (ag.compile) ------------------------------

def compiled_step_function(W, b):
    """``step(X, Y)``: ``engine_step`` with forward and backward replayed by an ``ag.compile``
    tape (traced on the first call, checked on the second)."""
    from autograd_lite.compile import compile as compile_step

    tape = compile_step(lambda X, Y: engine_loss(W, b, X, Y))

    def step(X, Y, alpha=ALPHA):
        J = tape(X, Y)
        sgd_update(W, b, alpha)
        return J

    return step


# --- the same network built with autograd_lite.nn and stepped by autograd_lite.optim --------------

def nn_problem(X, Y, W, b):
    """``ag.nn.MLP`` (sigmoid hidden layers, identity output: logits for the fused loss) holding
    copies of W[l], b[l], an ``ag.optim.SGD`` over its parameters, X and Y as Tensors."""
    layers = [W[0].shape[1]] + [W_l.shape[0] for W_l in W]
    model = ag.nn.MLP(layers, ["sigmoid"] * (len(W) - 1) + ["identity"])
    for linear, W_l, b_l in zip(model.layers, W, b):
        linear.W.data = W_l.copy()
        linear.b.data = b_l.copy()
    return ag.Tensor(X), ag.Tensor(Y), model, ag.optim.SGD(model.parameters(), lr=ALPHA)


def nn_loss(model, X, Y):
    return ag.binary_cross_entropy_with_logits(model(X), Y)


def nn_step(model, optimizer, X, Y):
    """``optimizer.zero_grad()``, forward, ``J.backward()``, ``optimizer.step()`` (eqs 74-75)."""
    optimizer.zero_grad()
    J = nn_loss(model, X, Y)
    J.backward()
    optimizer.step()
    return J

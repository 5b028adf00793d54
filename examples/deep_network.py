"""An N-layer network (eqs 33-34) of any depth and activations, from a list of layer sizes.

Run:  python examples/deep_network.py --layers 2,16,16,1 --activations tanh,relu,sigmoid

Every layer is Z[l] = W[l] A[l-1] + b[l] (eq 33) and A[l] = g[l](Z[l]) (eq 34), assembled from
the engine's primitives; the gradients of all 2N parameters come from one ``J.backward()``.
The data are two interleaved half-moons in 2-D: not linearly separable, so the hidden layers
must earn their keep.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import autograd_lite as ag
from autograd_lite.cli import MAX_NUMBERS, UsageError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from command_line import Parser, number, parse, whole  # noqa: E402

ACTIVATIONS = {
    "sigmoid": ag.Tensor.sigmoid,
    "tanh": ag.Tensor.tanh,
    "relu": ag.Tensor.relu,
    "identity": lambda Z: Z,
}


def make_network(sizes, rng):
    """W[l] of shape n[l] x n[l-1] and b[l] of n[l] x 1 (eqs 35-36) for l = 1..N.

    The weights are scaled by 1/sqrt(n[l-1]) (Xavier-style) rather than the seed's 0.01, so
    that a deep stack of layers still passes a signal forward and a gradient back.
    """
    parameters = []
    for l in range(1, len(sizes)):
        W = ag.Tensor(rng.standard_normal((sizes[l], sizes[l - 1])) / np.sqrt(sizes[l - 1]),
                      requires_grad=True, name=f"W[{l}]")
        b = ag.Tensor(np.zeros((sizes[l], 1)), requires_grad=True, name=f"b[{l}]")
        parameters.append((W, b))
    return parameters


def forward(X, parameters, activations):
    """A[0] = X; then eqs 33-34 for each layer. The last layer returns its logits Z[N] too."""
    A = X
    for l, ((W, b), g) in enumerate(zip(parameters, activations), start=1):
        Z = (W @ A + b).named(f"Z[{l}]")              # eq 33
        A = ACTIVATIONS[g](Z).named(f"A[{l}]")        # eq 34
    return Z, A


def moons(rng, m, noise=0.15):
    """Two interleaved half circles, labels 0 and 1, samples as columns."""
    angle = rng.uniform(0, np.pi, m)
    label = rng.integers(0, 2, m)
    x = np.where(label == 0, np.cos(angle), 1 - np.cos(angle))
    y = np.where(label == 0, np.sin(angle), 0.5 - np.sin(angle))
    X = np.stack([x, y]) + noise * rng.standard_normal((2, m))
    return X, label[None, :].astype(np.float64)


def parse_arguments(argv):
    """The options, checked (a bad one: one line on stderr, exit status 2, before any work)."""
    parser = Parser(prog="deep_network.py", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", default="2,16,16,1", help="sizes n[0],...,n[N] (n[0] = 2, n[N] = 1)")
    parser.add_argument("--activations", default="tanh,tanh,sigmoid",
                        help="g[1],...,g[N] from sigmoid, tanh, relu, identity (the last must be sigmoid)")
    parser.add_argument("--m", type=whole(1), default=400, help="training samples")
    parser.add_argument("--steps", type=whole(0), default=3000)
    parser.add_argument("--alpha", type=number(above=0), default=0.5)
    parser.add_argument("--seed", type=whole(0), default=0)
    found = {}

    def check(args):
        try:
            sizes = [int(n) for n in args.layers.split(",")]
        except ValueError:
            raise UsageError(f"--layers must be whole numbers separated by commas, got "
                             f"{args.layers!r}") from None
        activations = args.activations.split(",")
        if len(sizes) < 2 or sizes[0] != 2 or sizes[-1] != 1 or min(sizes) < 1:
            raise UsageError("--layers must start with 2 (the points are 2-D), end with 1 (one "
                             "probability) and have no size below 1")
        if len(activations) != len(sizes) - 1:
            raise UsageError(f"--activations needs {len(sizes) - 1} names, one per layer after "
                             f"the input")
        unknown = [g for g in activations if g not in ACTIVATIONS]
        if unknown:
            raise UsageError(f"unknown activation {unknown[0]!r}; choose from {', '.join(ACTIVATIONS)}")
        if activations[-1] != "sigmoid":
            raise UsageError("the output activation must be sigmoid: the loss is log-loss (eq 1)")
        # the same bound as autograd-lite's commands: m x (sum of the sizes) plus the weights
        numbers = args.m * sum(sizes) + sum(a * b for a, b in zip(sizes, sizes[1:]))
        if numbers > MAX_NUMBERS:
            raise UsageError(f"--layers {args.layers} with --m {args.m} needs {numbers:,} numbers "
                             f"per copy; this example builds small networks, at most {MAX_NUMBERS:,}")
        found.update(sizes=sizes, activations=activations)

    args = parse(parser, argv, check)
    return args, found["sizes"], found["activations"]


def main(argv=None):
    args, sizes, activations = parse_arguments(argv)
    rng = np.random.default_rng(args.seed)
    X_train, Y_train = moons(rng, args.m)
    X_test, Y_test = moons(rng, 1000)
    X, Y = ag.Tensor(X_train, name="X"), ag.Tensor(Y_train, name="Y")
    parameters = make_network(sizes, rng)
    flat = [tensor for pair in parameters for tensor in pair]

    print(f"N = {len(sizes) - 1} layers, sizes {sizes}, activations {activations}, m = {args.m}")
    _, A = forward(X, parameters, activations)
    for (W, b), l in zip(parameters, range(1, len(sizes))):
        print(f"  layer {l}: W[{l}] {W.shape}, b[{l}] {b.shape}, Z[{l}] and A[{l}] "
              f"({sizes[l]}, {args.m})   (eqs 35-38)")

    for step in range(args.steps + 1):
        Z_last, A_last = forward(X, parameters, activations)
        # The fused loss (eqs 1, 7, 76): exact even where the output sigmoid saturates.
        J = ag.binary_cross_entropy_with_logits(Z_last, Y)
        J.backward()
        with ag.no_grad():
            for parameter in flat:
                parameter.data -= args.alpha * parameter.grad    # eqs 74-75
                parameter.grad = None
        if step % max(1, args.steps // 10) == 0:
            accuracy = np.mean((A_last.data > 0.5) == (Y_train > 0.5))
            print(f"  step {step:5d}   J = {J.item():.5f}   train accuracy = {accuracy:.1%}")

    with ag.no_grad():
        _, A_test = forward(ag.Tensor(X_test), parameters, activations)
    test_accuracy = np.mean((A_test.data > 0.5) == (Y_test > 0.5))
    print(f"test accuracy on 1000 new points: {test_accuracy:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

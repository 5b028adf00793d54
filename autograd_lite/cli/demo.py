"""``autograd-lite demo``: the seed's 3-4-1 network, built from autograd_lite's primitives and
checked by hand (also ``python examples/seed_network.py``, which runs this module).

    autograd-lite demo                       # m = 5, then 2000 steps of training
    autograd-lite demo --html backprop.html  # and the stepping page of the demo's own graph
    autograd-lite demo --backend torch       # the same network on torch (or dask, ...)

1. Forward (eqs 26-29) with the seed's names W[1], b[1], Z[1], A[1], W[2], b[2], Z[2], A[2],
   printing every shape beside what eqs 35-38 say it must be.
2. Backward by the generic reverse-mode traversal (``J.backward()``), printed beside dW and db
   computed by eqs 77-84 written out in numpy.
3. Training by gradient descent, eqs 74-75, on a small separable problem until the loss falls.

``--html FILE`` writes the page (``viz.page``) that steps through step 1 and 2 on the very
graph and numbers printed: forward op by op, then backward vjp by vjp. ``--backend NAME`` runs
autodiff and the training on another array library, as ``check``, ``graph`` and ``train`` do
(``cli.main.BACKENDS``: the same seeded arrays moved there); the hand derivation stays numpy's,
on the very arrays that were moved, so it prints what numpy prints up to round-off. Exit status: 0 when
autodiff agrees with the hand derivation and the loss fell, 1 otherwise (or when the page
cannot be written), 2 for bad options.
"""
from __future__ import annotations

import argparse
import math
import sys

import numpy as np

import autograd_lite as ag

from .. import backend
from ..roundoff import ROUNDING, number


def parameter_arrays(rng, n=(3, 4, 1)) -> dict:
    """W[l] (n[l] x n[l-1]) and b[l] (n[l] x 1), eqs 35-36, as numpy arrays: the seed's small
    random init."""
    W = [rng.standard_normal((n[1], n[0])) * 0.01, rng.standard_normal((n[2], n[1])) * 0.01]
    return {"W": W, "b": [np.zeros((n[1], 1)), np.zeros((n[2], 1))]}


def make_parameters(rng, n=(3, 4, 1)):
    """W[1], b[1], W[2], b[2] as Tensors that require a gradient (``parameter_arrays``)."""
    return as_tensors(parameter_arrays(rng, n))[2]


def as_tensors(arrays: dict) -> tuple:
    """X, Y and the parameters (W[1], b[1], W[2], b[2]) of a network's arrays (``X``, ``Y``,
    lists ``W`` and ``b``, as ``cli.main.on_backend`` takes them; X, Y may be missing) as
    named Tensors, in whatever backend the arrays live."""
    X, Y = (ag.Tensor(arrays[k], name=k) if k in arrays else None for k in ("X", "Y"))
    parameters = tuple(ag.Tensor(array, requires_grad=True, name=f"{kind}[{l}]")
                       for l, pair in enumerate(zip(arrays["W"], arrays["b"]), start=1)
                       for kind, array in zip("Wb", pair))
    return X, Y, parameters


def forward(X, Y, W1, b1, W2, b2):
    """Eqs 26-29, then the cost of eqs 1 and 76. Returns every named intermediate."""
    Z1 = (W1 @ X + b1).named("Z[1]")         # eq 26: b[1] is broadcast over the m columns (eq 30-32)
    A1 = Z1.sigmoid().named("A[1]")          # eq 27
    Z2 = (W2 @ A1 + b2).named("Z[2]")        # eq 28
    A2 = Z2.sigmoid().named("A[2]")          # eq 29: y_hat
    # eqs 1 and 76 as the seed and the README write them, with log: the graph, the pictures
    # and the stepping page then show log(A[2]), dA[2] (eq 77) and eq 78 as the seed derives
    # them (ag.binary_cross_entropy would compute J from the logits Z[2] instead)
    J = (-(Y * A2.log() + (1 - Y) * (1 - A2).log()).mean()).named("J")
    return Z1, A1, Z2, A2, J


def hand_derivation(X, Y, W1, b1, W2, b2):
    """Eqs 77-84 written out in plain numpy for the 3-4-1 sigmoid network with log-loss."""
    m = X.shape[1]
    A1 = 1 / (1 + np.exp(-(W1 @ X + b1)))
    A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
    dZ2 = A2 - Y                                    # eq 78 with sigmoid and log-loss
    dW2 = dZ2 @ A1.T / m                            # eq 79
    db2 = dZ2.sum(axis=1, keepdims=True) / m        # eq 80
    dA1 = W2.T @ dZ2                                # eq 81
    dZ1 = dA1 * A1 * (1 - A1)                       # eq 82 with eq 8
    dW1 = dZ1 @ X.T / m                             # eq 83
    db1 = dZ1.sum(axis=1, keepdims=True) / m        # eq 84
    return {"W[1]": dW1, "b[1]": db1, "W[2]": dW2, "b[2]": db2}


def separable_problem(rng, m):
    """m points in 3-D labelled by which side of a fixed plane they fall: linearly separable."""
    X = rng.standard_normal((3, m))
    Y = (np.array([[1.0, -2.0, 0.5]]) @ X + 0.3 > 0).astype(np.float64)
    return X, Y


def show_shapes(m, tensors):
    print(f"Forward shapes (m = {m}), eqs 35-38:")
    expected = {"W[1]": "n[1] x n[0] = 4 x 3", "b[1]": "n[1] x 1 = 4 x 1",
                "Z[1]": f"n[1] x m = 4 x {m}", "A[1]": f"n[1] x m = 4 x {m}",
                "W[2]": "n[2] x n[1] = 1 x 4", "b[2]": "n[2] x 1 = 1 x 1",
                "Z[2]": f"n[2] x m = 1 x {m}", "A[2]": f"n[2] x m = 1 x {m}"}
    for tensor in tensors:
        shape = " x ".join(map(str, tensor.shape))
        print(f"  {tensor.name:5s} {shape:8s}  (eqs 35-38: {expected[tensor.name]})")


def roundoff_bounds(X, Y, W1, b1, W2, b2):
    """The most float64 rounding alone can make autodiff and eqs 77-84 differ by, per
    parameter: ``ROUNDING`` times the size of the terms each gradient is summed from (eqs
    77-84 run on absolute values), so a difference at that level is printed as the bound
    (``< 3e-17``), never as digits that change from CPU to CPU (docs/check.md, Round-off)."""
    m = X.shape[1]
    A1 = 1 / (1 + np.exp(-(W1 @ X + b1)))
    A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
    dZ2 = np.abs(A2) + np.abs(Y)
    dZ1 = (np.abs(W2).T @ dZ2) * A1 * (1 - A1)
    terms = {"W[2]": dZ2 @ A1.T / m, "b[2]": dZ2.sum(axis=1, keepdims=True) / m,
             "W[1]": dZ1 @ np.abs(X).T / m, "b[1]": dZ1.sum(axis=1, keepdims=True) / m}
    return {name: ROUNDING * float(np.max(term)) for name, term in terms.items()}


# A difference this many times its round-off bound is a wrong rule, not rounding: the verdict
# is relative to the size of what is compared, so small gradients cannot pass under a floor.
AGREEMENT = 1e3


def show_gradients(parameters, by_hand, bounds):
    """Each gradient beside the hand derivation; True when every one agrees to rounding."""
    print("\nBackward: autodiff (J.backward()) beside eqs 77-84 by hand:")
    agree = True
    above = []   # differences larger than rounding can make them
    for parameter in parameters:
        hand = by_hand[parameter.name]
        grad = ag.to_numpy(parameter.grad)  # another backend's gradient, on the host
        difference = float(np.abs(grad - hand).max())
        bound = bounds[parameter.name]
        agree = agree and difference <= AGREEMENT * bound
        if difference > bound:
            above.append(difference)
        equation = {"W[1]": 83, "b[1]": 84, "W[2]": 79, "b[2]": 80}[parameter.name]
        print(f"  d{parameter.name} (eq {equation}), max |autodiff - hand| "
              f"{_is(number(difference, bound))}")
        for auto_row, hand_row in zip(grad, hand):
            print(f"    autodiff {_row(auto_row)}   hand {_row(hand_row)}")
    largest = number(max(above)) if above else number(0.0, max(bounds.values()))
    print(f"  largest difference {_is(largest)} ({'agree' if agree else 'DISAGREE'}; "
          f"< x: equal to rounding, docs/check.md)")
    return agree


def _is(text):
    return text if text.startswith("<") else f"= {text}"


def _row(values):
    return "[" + " ".join(f"{v:+.8e}" for v in values) + "]"


def train(X, Y, parameters, steps, alpha):
    """Gradient descent, eqs 74-75: W[l] -= alpha dW[l], b[l] -= alpha db[l]."""
    print(f"\nTraining with eqs 74-75 (alpha = {alpha}, m = {X.shape[1]}):")
    history = []
    for step in range(steps + 1):
        *_, A2, J = forward(X, Y, *parameters)
        J.backward()
        with ag.no_grad():
            for parameter in parameters:
                parameter.data -= alpha * parameter.grad       # eqs 74-75
                parameter.grad = None
        history.append(J.item())
        if step % max(1, steps // 10) == 0:
            # on the host (a Dask forward computed once more, for the printed steps only)
            A2_host, Y_host = backend.to_numpy_all([A2.data, Y.data])
            accuracy = np.mean((A2_host > 0.5) == (Y_host > 0.5))
            print(f"  step {step:5d}   J = {J.item():.6f}   accuracy = {accuracy:.0%}")
    return history


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "demo", help="the seed's 3-4-1 network: shapes, gradients beside eqs 77-84, training",
        description="The seed's 3-4-1 network: forward shapes (eqs 35-38), autodiff's gradients "
                    "beside the hand derivation (eqs 77-84), then training (eqs 74-75).")
    add_options(parser)
    return parser


def add_options(parser):
    from .main import add_backend_option
    parser.add_argument("--m", default="5", help="samples for the gradient comparison (default 5)")
    parser.add_argument("--seed", default="0", help="random seed (default 0)")
    parser.add_argument("--steps", default="2000", help="gradient-descent steps (default 2000)")
    parser.add_argument("--alpha", default="1.0", help="learning rate (default 1.0)")
    parser.add_argument("--html", default=None, metavar="FILE",
                        help="also write the page that steps through this network's forward and "
                             "backward pass (needs Graphviz's dot)")
    add_backend_option(parser)


def run(args) -> int:
    from .main import MAX_NUMBERS, UsageError, backend_namespace, check_output
    try:
        m, seed, steps = int(args.m), int(args.seed), int(args.steps)
        alpha = float(args.alpha)
    except ValueError:
        raise UsageError(f"--m, --seed and --steps must be whole numbers and --alpha a number, got "
                         f"{args.m!r}, {args.seed!r}, {args.steps!r}, {args.alpha!r}") from None
    for option, value, good, wanted in (("--m", m, m >= 1, "at least 1"),
                                        ("--steps", steps, steps >= 0, "at least 0"),
                                        ("--seed", seed, seed >= 0, "a whole number >= 0"),
                                        ("--alpha", alpha, 0 < alpha < math.inf,
                                         "a finite number above 0")):
        if not good:
            raise UsageError(f"{option} must be {wanted}, got {value}")
    if m * 8 > MAX_NUMBERS:  # X (3 x m), Y, Z and A of both layers: 8 numbers per sample
        raise UsageError(f"--m {m} needs {m * 8:,} numbers per copy; the demo builds a small "
                         f"network, at most {MAX_NUMBERS:,}")
    if args.html is not None and not args.html.lower().endswith((".html", ".htm")):
        raise UsageError(f"--html {args.html!r}: the page is an .html file")
    if args.html is not None:
        check_output("--html", args.html)  # before any work, as graph and train do
    if args.backend != "numpy":
        backend_namespace(args.backend)  # one that cannot run here is refused before any work
    return demo(m, seed, steps, alpha, args.html, args.backend)


def demo(m=5, seed=0, steps=2000, alpha=1.0, html=None, on="numpy") -> int:
    """The demo on the ``--backend`` ``on``: the same seeded numpy draws, moved there."""
    from .main import on_backend
    rng = np.random.default_rng(seed)
    data = {"X": rng.standard_normal((3, m)),                                  # eq 25
            "Y": (rng.random((1, m)) > 0.5).astype(np.float64)}
    drawn = {**data, **parameter_arrays(rng)}
    X, Y, parameters = as_tensors(on_backend(drawn, on))
    Z1, A1, Z2, A2, J = forward(X, Y, *parameters)
    show_shapes(m, [parameters[0], parameters[1], Z1, A1, parameters[2], parameters[3], Z2, A2])
    status = 0
    if html is not None:
        status = _write_page(J, html)
    # J is read after backward, which computes it (on Dask reading it before would run the
    # forward pass twice)
    J.backward()
    print(f"  J = {J.item():.6f} (eqs 1, 76)")

    # eqs 77-84 by hand on the numpy arrays drawn: the values every backend was given
    arrays = (drawn["X"], drawn["Y"], *(a for pair in zip(drawn["W"], drawn["b"]) for a in pair))
    agree = show_gradients(parameters, hand_derivation(*arrays), roundoff_bounds(*arrays))

    X_train, Y_train = separable_problem(rng, 200)
    history = train(*as_tensors(on_backend({"X": X_train, "Y": Y_train,
                                            **parameter_arrays(rng)}, on)), steps, alpha)
    print(f"  loss fell from {history[0]:.4f} to {history[-1]:.4f}")
    if html is not None and status == 0:
        print(f"\nwrote {html}: open it in a browser to step through the forward and backward pass")
    return status or (0 if agree and history[-1] < history[0] else 1)


def _write_page(J, path) -> int:
    from ..viz import GraphvizNotFoundError
    try:
        ag.draw(J).save(path)
    except GraphvizNotFoundError as error:
        print(f"autograd-lite demo: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"autograd-lite demo: error: cannot write {path}: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    """``python examples/seed_network.py [options]``: the demo on its own."""
    from .main import UsageError
    parser = argparse.ArgumentParser(prog="seed_network.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser)
    try:
        return run(parser.parse_args(argv))
    except UsageError as error:
        parser.error(str(error))

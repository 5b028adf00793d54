"""``autograd-lite graph``: draw the computation graph of a network (the seed's 3-4-1 by default).

    autograd-lite graph --output seed.svg
    autograd-lite graph --layers 3,4,1 --backward --grads --output seed_backward.png
    autograd-lite graph --layers 3,16,16,16,1 --layers-only --output deep.svg

The network is built from Tensor operations with the seed's names, one ``ag.name_scope`` per
layer: ``Z[l] = W[l] A[l-1] + b[l]`` (eq 33), ``A[l] = g[l](Z[l])`` (eq 34), ``A[0] = X``,
and the cost J of eq 76. The suffix of ``--output`` picks the format (.svg .png .pdf .dot);
without ``--output`` the DOT source is printed. Exit status: 0 written, 1 rendering failed
(e.g. Graphviz missing: the message says how to install it), 2 bad options.
"""
from __future__ import annotations

import sys
from pathlib import Path

from . import Tensor, binary_cross_entropy, name_scope
from .cli import UsageError, add_network_options, network_spec, random_network
from .viz import FORMATS, GraphvizNotFoundError, draw


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "graph", help="draw the computation graph of a network (Graphviz)",
        description="Draw the computation graph of a seeded random network, the seed's 3-4-1 by "
                    "default, with the seed's names (W[1], b[1], Z[1], A[1], J).")
    add_network_options(parser)
    parser.add_argument("--output", "-o", default=None,
                        help="file to write; its suffix picks the format: .svg, .png, .pdf or .dot "
                             "(default: print the DOT source)")
    parser.add_argument("--backward", action="store_true",
                        help="draw the backward flow: gradients, each op's vjp, the rule on each "
                             "edge, the un-broadcast of db (eq 80)")
    parser.add_argument("--values", action="store_true", help="print each tensor's value in its box")
    parser.add_argument("--grads", action="store_true",
                        help="run backward and print each gradient (dZ and dA included) in its box")
    parser.add_argument("--color", choices=("grad",), default=None,
                        help="grad: fill boxes by max |gradient| on a log scale (runs backward)")
    parser.add_argument("--layers-only", action="store_true",
                        help="collapse each layer to one box (for big networks)")
    parser.add_argument("--max-nodes", default="400",
                        help="past this many nodes, collapse to layers, then summarise "
                             "(default 400; 0: no limit)")
    parser.add_argument("--direction", default="TB", choices=("TB", "LR", "BT", "RL"),
                        help="Graphviz rank direction (default TB: top to bottom)")
    return parser


def build_network(spec, arrays):
    """The network of ``spec`` as Tensors, each layer in its own name scope.

    Returns ``{"X", "Y", "W", "b", "Z", "A", "J"}``; W, b, Z, A are lists indexed by layer
    (index 0: None, except A[0] = X).
    """
    X = Tensor(arrays["X"], name="X")
    Y = Tensor(arrays["Y"], name="Y")
    N = len(spec.layers) - 1
    W, b, Z, A = [None], [None], [None], [X]
    for l in range(1, N + 1):
        with name_scope(f"layer {l}"):
            W.append(Tensor(arrays["W"][l - 1], requires_grad=True, name=f"W[{l}]"))
            b.append(Tensor(arrays["b"][l - 1], requires_grad=True, name=f"b[{l}]"))
            Z.append((W[l] @ A[l - 1] + b[l]).named(f"Z[{l}]"))          # eq 33
            A.append(_activation(Z[l], spec.activations[l - 1], l))      # eq 34
    m = spec.m
    with name_scope(f"cost J ({spec.loss}, eq 76)"):
        if spec.loss == "log-loss":
            J = binary_cross_entropy(A[N], Y)                              # eqs 1, 76
        elif spec.loss == "cross-entropy":
            J = -(Y * A[N].log()).sum() / m
        else:  # mse: L = sum over units of (a - y)^2, J = (1/m) sum over samples
            J = ((A[N] - Y) ** 2).sum() / m
    J.named("J")
    return {"X": X, "Y": Y, "W": W, "b": b, "Z": Z, "A": A, "J": J}


def _activation(Z, name, l):
    if name == "identity":
        return Z  # A[l] is Z[l] itself (a regression output, eq 34 with g = identity)
    if name == "softmax":
        return Z.softmax(axis=0).named(f"A[{l}]")
    return getattr(Z, name)().named(f"A[{l}]")


def run(args) -> int:
    spec = network_spec(args)
    try:
        max_nodes = int(args.max_nodes)
    except ValueError:
        raise UsageError(f"--max-nodes must be a whole number, got {args.max_nodes!r}") from None
    if max_nodes < 0 or max_nodes == 1:
        raise UsageError(f"--max-nodes must be 0 (no limit) or at least 2, got {max_nodes}")
    if args.output is not None and Path(args.output).suffix.lower() not in FORMATS:
        raise UsageError(f"--output {args.output!r}: the suffix picks the format; use .svg, .png, "
                         f".pdf or .dot")

    network = build_network(spec, random_network(spec))
    if args.grads or args.color == "grad":
        for l in range(1, len(spec.layers)):
            network["Z"][l].retain_grad()       # dZ[l], eqs 78 and 82
            if network["A"][l] is not network["Z"][l]:
                network["A"][l].retain_grad()   # dA[l], eqs 77 and 81
        network["J"].backward(retain_graph=True)  # keep the graph: it is drawn next
    picture = draw(network["J"], backward=args.backward, values=args.values, grads=args.grads,
                   color=args.color, layers_only=args.layers_only,
                   max_nodes=max_nodes or None, rankdir=args.direction)
    for note in picture.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.output is None:
        print(picture.source)
        return 0
    try:
        path = picture.render(args.output)
    except GraphvizNotFoundError as error:
        print(f"autograd-lite graph: error: {error}", file=sys.stderr)
        return 1
    except (OSError, RuntimeError) as error:
        print(f"autograd-lite graph: error: cannot write {args.output}: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0

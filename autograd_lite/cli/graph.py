"""``autograd-lite graph``: draw the computation graph of a network (the seed's 3-4-1 by default).

    autograd-lite graph --output seed.svg
    autograd-lite graph --layers 3,4,1 --backward --grads --output seed_backward.png
    autograd-lite graph --layers 3,16,16,16,1 --layers-only --output deep.svg
    autograd-lite graph --backward --wrong eq50 --wrong-layer 1 --output where_they_part.svg
    autograd-lite graph --output backprop.html       # step through forward and backward

The network is built from Tensor operations with the seed's names, one ``ag.name_scope`` per
layer: ``Z[l] = W[l] A[l-1] + b[l]`` (eq 33), ``A[l] = g[l](Z[l])`` (eq 34), ``A[0] = X``,
and the cost J of eq 76. The suffix of ``--output`` picks the format (.svg .png .pdf .dot, or
.html: the stepping page, ``viz.page``); without ``--output`` the DOT source is printed.

``--compare`` runs ``autograd_lite.check.compare`` on the same network and arrays and colours
each dA, dZ, dW, db by the hand derivation's difference from autodiff (eqs 77-84); ``--wrong
VARIANT`` (implies ``--compare``) swaps in one deliberately wrong rule, as ``autograd-lite
check --wrong`` does, so a learner sees on the picture where a wrong derivation parts.

Exit status (the table in docs/cli.md): 0 written (whatever the comparison found: the picture
is the answer, and stderr names the first gradient to differ), 1 rendering or writing failed
(e.g. Graphviz missing: the message says how to install it), 2 bad options or an ``--output``
that cannot be written (checked before any work).
"""
from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

from .. import Tensor, name_scope
from .. import reference as ref
from .main import (CommandFailed, UsageError, add_network_options, add_wrong_options,
                   check_output, network_spec, on_backend, random_network, write_output,
                   wrong_rules)
from ..viz import FORMATS, GraphvizNotFoundError, draw


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "graph", help="draw the computation graph of a network (Graphviz)",
        description="Draw the computation graph of a seeded random network, the seed's 3-4-1 by "
                    "default, with the seed's names (W[1], b[1], Z[1], A[1], J).")
    add_network_options(parser)
    parser.add_argument("--output", "-o", default=None,
                        help="file to write; its suffix picks the format: .svg, .png, .pdf or .dot, "
                             "or .html: a page that steps through the forward and backward pass "
                             "(default: print the DOT source)")
    parser.add_argument("--backward", action="store_true",
                        help="draw the backward flow: gradients, each op's vjp, the rule on each "
                             "edge, the un-broadcast of db (eq 80)")
    parser.add_argument("--values", action="store_true", help="print each tensor's value in its box")
    parser.add_argument("--grads", action="store_true",
                        help="run backward and print each gradient (dZ and dA included) in its box")
    parser.add_argument("--color", choices=("grad",), default=None,
                        help="grad: fill boxes by max |gradient| on a log scale (runs backward)")
    parser.add_argument("--compare", action="store_true",
                        help="fill each dA, dZ, dW, db by how far the hand derivation (eqs 77-84) "
                             "is from autodiff, as in `autograd-lite check`: green agree, red "
                             "differ, thick border where they first part")
    add_wrong_options(parser, "with --compare (implied): the hand derivation uses one "
                              "deliberately wrong rule, to see where it parts on the picture")
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
            # eq 1 written with log, so the picture shows dA[N] (eq 77) before eq 78
            # (binary_cross_entropy would take the sigmoid's logits Z[N])
            J = -(Y * A[N].log() + (1 - Y) * (1 - A[N]).log()).sum() / m   # eqs 1, 76
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
    if args.output is not None and Path(args.output).suffix.lower() not in (*FORMATS, ".html"):
        raise UsageError(f"--output {args.output!r}: the suffix picks the format; use .svg, .png, "
                         f".pdf, .dot or .html")
    if args.output is not None:
        check_output("--output", args.output)  # before any work, as train does

    rules = wrong_rules(args, len(spec.layers) - 1) or (ref.SEED_RULES if args.compare else None)
    if rules is not None and args.color == "grad":
        raise UsageError("--color grad and --compare each colour the picture; choose one")

    arrays = on_backend(random_network(spec), args.backend)
    network = build_network(spec, arrays)
    report = None if rules is None else _compare(spec, arrays, network, rules)
    if args.grads or args.color == "grad":
        for l in range(1, len(spec.layers)):
            network["Z"][l].retain_grad()       # dZ[l], eqs 78 and 82
            if network["A"][l] is not network["Z"][l]:
                network["A"][l].retain_grad()   # dA[l], eqs 77 and 81
        network["J"].backward(retain_graph=True)  # keep the graph: it is drawn next
    picture = draw(network["J"], backward=args.backward, values=args.values, grads=args.grads,
                   color=args.color, compare=report, layers_only=args.layers_only,
                   max_nodes=max_nodes or None, rankdir=args.direction)
    _in_option_words(picture)
    for note in picture.notes:
        print(f"note: {note}", file=sys.stderr)
    if report is not None:
        print(_verdict(report), file=sys.stderr)
    if args.output is None:
        print(picture.source)
        return 0
    try:
        path = write_output("--output", args.output, lambda: picture.save(args.output))
    except (GraphvizNotFoundError, RuntimeError) as error:  # no `dot`, or `dot` failed
        raise CommandFailed(" ".join(str(error).split())) from None
    print(f"wrote {path}")
    return 0


# The size policy's advice names draw()'s Python arguments; on the command line the same
# advice is an option.
_OPTION_WORDS = [
    (re.compile(r"max_nodes=(\d+)"), r"--max-nodes \1"),
    (re.compile(r"max_nodes((?:\s|<BR[^>]*>)+)\(or((?:\s|<BR[^>]*>)+)None\)"),
     r"--max-nodes\1(0:\2no limit)"),
    (re.compile(r"layers_only=True"), "--layers-only"),
    (re.compile(r"\bmax_nodes\b"), "--max-nodes"),
]


def _in_option_words(picture):
    """Rewrite the notes and the drawn caption of ``picture`` in the command's option words."""
    def rewrite(text):
        for pattern, replacement in _OPTION_WORDS:
            text = pattern.sub(replacement, text)
        return text
    picture.notes = tuple(rewrite(note) for note in picture.notes)
    picture.digraph.body[:] = [rewrite(line) for line in picture.digraph.body]
    for key, value in picture.digraph.graph_attr.items():
        picture.digraph.graph_attr[key] = rewrite(value)


# Finite differences are the report's third way; the picture colours hand vs autodiff only,
# so a small sample per quantity is enough for the report's explanation of who is odd one out.
MAX_NUMERIC = 32


def _compare(spec, arrays, network, rules):
    """The comparison report of the drawn network: the same arrays, so the same numbers."""
    # imported here: `autograd-lite graph` without --compare never loads the checker
    from ..check import compare
    try:
        report = compare(arrays["W"], arrays["b"], arrays["X"], arrays["Y"], spec.activations,
                         spec.loss, rules=rules, max_numeric=MAX_NUMERIC, seed=spec.seed)
    except ValueError as error:  # a network the reference refuses: a usage problem
        raise UsageError(str(error)) from None
    # an identity activation: A[l] is Z[l] itself, so dA[l] has no box of its own to colour;
    # dZ[l] = dA[l] (g' = 1) shows the same difference
    merged = {f"dA[{l}]" for l in range(1, len(spec.layers))
              if network["A"][l] is network["Z"][l]}
    if not merged:
        return report
    return dataclasses.replace(report, rows=[row for row in report.rows if row.label not in merged])


def _verdict(report) -> str:
    first = next((row for row in report.rows
                  if not (row.pairs["autodiff-reference"] and row.pairs["autodiff-reference"].passed)),
                 None)
    if first is None:
        return "compare: the hand derivation agrees with autodiff on every gradient"
    return (f"compare: the hand derivation first parts from autodiff at {first.label} "
            f"(eq {first.equation}). {report.explanation}")

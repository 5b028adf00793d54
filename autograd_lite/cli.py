"""``autograd-lite`` (also ``python -m autograd_lite``): commands over the whole library.

Each command lives in its own module (``cli_<name>.py``) with ``add_parser(subparsers)`` and
``run(args) -> int``; this file holds what they share: the options that describe a network
(``--layers 3,4,1 --activations sigmoid,sigmoid --m 5 --seed 0 --loss log-loss``), their
validation, and a seeded random network built from them. Bad options get one line on stderr
and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass

from . import __version__
from .reference import random_problem

# name -> module; each module defines add_parser(subparsers) and run(args).
COMMANDS = {
    "graph": "autograd_lite.cli_graph",
    "check": "autograd_lite.cli_check",
    "train": "autograd_lite.cli_train",
    "demo": "autograd_lite.cli_demo",
}

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity", "softmax")
LOSSES = ("log-loss", "mse", "cross-entropy")
SEED_LAYERS = (3, 4, 1)  # the seed's 3-4-1 network (eqs 21-29)


class UsageError(Exception):
    """A bad command-line option: reported in one line, exit status 2."""


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


@dataclass(frozen=True)
class NetworkSpec:
    """A network as the command line describes it: sizes n[0..N], g[1..N], m, seed, loss."""
    layers: tuple
    activations: tuple
    m: int
    seed: int
    loss: str


def add_network_options(parser, layers=SEED_LAYERS, m=5):
    """The options every network command shares; a command may change the defaults of
    ``--layers`` and ``--m`` (``train`` fits 2-D data with more samples than a check needs)."""
    layers_text = ",".join(map(str, layers))
    parser.add_argument("--layers", default=layers_text,
                        help="layer sizes n[0],...,n[N], comma separated (default: "
                             + ("the seed's 3,4,1)" if tuple(layers) == SEED_LAYERS else f"{layers_text})"))
    parser.add_argument("--activations", default=None,
                        help="one activation per layer after the input, comma separated, from "
                             f"{', '.join(ACTIVATIONS)} (default: sigmoid everywhere, as in the seed)")
    parser.add_argument("--m", default=str(m),
                        help=f"number of samples (columns of X), at least 1 (default {m})")
    parser.add_argument("--seed", default="0", help="random seed for X, Y and the weights (default 0)")
    parser.add_argument("--loss", default=None, choices=LOSSES,
                        help="log-loss (eq 1/76), mse, or cross-entropy (softmax output); "
                             "default: cross-entropy after a softmax output, else log-loss")


def network_spec(args) -> NetworkSpec:
    """Validate the shared options; raises UsageError with a one-line message."""
    try:
        layers = tuple(int(part) for part in args.layers.split(","))
    except ValueError:
        raise UsageError(f"--layers must be whole numbers separated by commas, got {args.layers!r}") from None
    if len(layers) < 2 or min(layers) < 1:
        raise UsageError(f"--layers needs at least two sizes, each at least 1, got {args.layers!r}")
    if args.activations is None:
        activations = ("sigmoid",) * (len(layers) - 1)
    else:
        activations = tuple(part.strip() for part in args.activations.split(","))
        unknown = [a for a in activations if a not in ACTIVATIONS]
        if unknown:
            raise UsageError(f"unknown activation {unknown[0]!r}; choose from {', '.join(ACTIVATIONS)}")
        if len(activations) != len(layers) - 1:
            raise UsageError(f"--activations gives {len(activations)} activation(s) but --layers "
                             f"{args.layers} has {len(layers) - 1} layer(s) after the input")
    if "softmax" in activations[:-1]:
        raise UsageError("softmax is supported only as the output activation")
    try:
        m = int(args.m)
        seed = int(args.seed)
    except ValueError:
        raise UsageError(f"--m and --seed must be whole numbers, got {args.m!r} and {args.seed!r}") from None
    if m < 1:
        raise UsageError(f"--m must be at least 1, got {m}")
    loss = args.loss or ("cross-entropy" if activations[-1] == "softmax" else "log-loss")
    if (loss == "cross-entropy") != (activations[-1] == "softmax"):
        raise UsageError("--loss cross-entropy goes with a softmax output activation, and only with it")
    if loss == "log-loss" and activations[-1] not in ("sigmoid",):
        raise UsageError(f"--loss log-loss needs probabilities: a sigmoid output, not {activations[-1]}")
    return NetworkSpec(layers, activations, m, seed, loss)


def random_network(spec: NetworkSpec) -> dict:
    """Seeded data and parameters for ``spec`` as plain arrays (samples as columns).

    Returns ``{"X": (n[0], m), "Y": (n[N], m), "W": [W[1], ...], "b": [b[1], ...]}``, drawn by
    ``reference.random_problem`` (weights of variance 1/n[l-1] rather than the seed's
    randn * 0.01, so every layer's gradient is large enough for a comparison to mean something).
    """
    W, b, X, Y = random_problem(spec.layers, spec.activations, spec.m, spec.loss, spec.seed)
    return {"X": X, "Y": Y, "W": W, "b": b}


def build_parser():
    parser = _OneLineParser(prog="autograd-lite",
                            description="autograd_lite: check, draw and train the seed's networks.")
    parser.add_argument("--version", action="version", version=f"autograd-lite {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    for name, module_name in COMMANDS.items():
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return importlib.import_module(COMMANDS[args.command]).run(args)
    except UsageError as error:
        print(f"autograd-lite: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `autograd-lite train | head`: the reader left. No traceback; and point stdout at
        # devnull so Python's own flush at exit does not raise again (as the Python docs advise).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())

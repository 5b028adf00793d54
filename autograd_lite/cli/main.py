"""``autograd-lite`` (also ``python -m autograd_lite``): commands over the whole library.

Each command lives in its own module (``cli/<name>.py``) with ``add_parser(subparsers)`` and
``run(args) -> int``; this file holds what they share: the options that describe a network
(``--layers 3,4,1 --activations sigmoid,sigmoid --m 5 --seed 0 --loss log-loss``), their
validation, a seeded random network built from them, the check of output paths, and the exit
statuses, the same for every command (docs/cli.md has the table):

    0  done (check: the three ways agree everywhere)
    1  the command ran and failed: check found a disagreement, training's loss became nan or
       inf, Graphviz is missing or failed, a file could not be written at the end (a full
       disk), memory ran out, or stdout went away (``| head``)
    2  refused before any work: a bad option, an input file that cannot be read or does not
       fit, an output path that cannot be written
    130 interrupted (Ctrl-C)

Every error is one line on stderr (``autograd-lite: error: ...``), never a traceback: a
traceback means a bug in autograd_lite.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from dataclasses import dataclass

from .. import __version__
from ..io import WriteError, check_writable
from ..reference import random_problem

# name -> module; each module defines add_parser(subparsers) and run(args).
COMMANDS = {
    "graph": "autograd_lite.cli.graph",
    "check": "autograd_lite.cli.check",
    "train": "autograd_lite.cli.train",
    "demo": "autograd_lite.cli.demo",
}

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity", "softmax")
LOSSES = ("log-loss", "mse", "cross-entropy")
SEED_LAYERS = (3, 4, 1)  # the seed's 3-4-1 network (eqs 21-29)
# These commands build small networks in memory: m x (sum of the layer sizes) plus the weights
# is refused past this many numbers (80 MB of float64 each copy), with a message, rather than
# left to a MemoryError or the kernel's out-of-memory killer.
MAX_NUMBERS = 10_000_000

OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130  # the exit statuses of every command


class UsageError(Exception):
    """A bad command-line option: reported in one line, exit status 2."""


class CommandFailed(Exception):
    """The command ran and failed (a write at the end, Graphviz): one line, exit status 1."""


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


def add_network_options(parser, layers=SEED_LAYERS, m=5, losses=LOSSES, activations_help=None):
    """The options every network command shares; a command may change the defaults of
    ``--layers`` and ``--m`` (``train`` fits 2-D data with more samples than a check needs),
    offer fewer ``--loss`` values (only those it accepts) and say more about
    ``--activations``."""
    layers_text = ",".join(map(str, layers))
    parser.add_argument("--layers", default=layers_text,
                        help="layer sizes n[0],...,n[N], comma separated (default: "
                             + ("the seed's 3,4,1)" if tuple(layers) == SEED_LAYERS else f"{layers_text})"))
    parser.add_argument("--activations", default=None,
                        help="one activation per layer after the input, comma separated, from "
                             f"{', '.join(ACTIVATIONS)} (default: sigmoid everywhere, as in the seed)"
                             + (f"; {activations_help}" if activations_help else ""))
    parser.add_argument("--m", default=str(m),
                        help=f"number of samples (columns of X), at least 1 (default {m})")
    parser.add_argument("--seed", default="0",
                        help="random seed for X, Y and the weights, a whole number >= 0 (default 0)")
    descriptions = {"log-loss": "log-loss (eq 1/76)", "mse": "mse",
                    "cross-entropy": "cross-entropy (softmax output)"}
    parser.add_argument("--loss", default=None, choices=losses,
                        help=", ".join(descriptions[loss] for loss in losses) + (
                            "; default: cross-entropy after a softmax output, else log-loss"
                            if len(losses) > 1 else " (the only loss of this command)"))


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
    if seed < 0:
        raise UsageError(f"--seed must be a whole number >= 0, got {seed}")
    numbers = m * sum(layers) + sum(a * b for a, b in zip(layers, layers[1:]))
    if numbers > MAX_NUMBERS:
        raise UsageError(f"--layers {args.layers} with --m {m} needs {numbers:,} numbers per copy "
                         f"(m x the sum of the layer sizes, plus the weights); these commands "
                         f"build small networks, at most {MAX_NUMBERS:,}")
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


def check_output(option, path):
    """Refuse now, as a usage error naming ``option``, an output ``path`` that cannot be
    written (a missing folder, a directory, no permission): before any work is done."""
    try:
        check_writable(path)
    except WriteError as error:
        raise UsageError(f"{option}: {error}") from None


def write_output(option, path, write):
    """Call ``write()``, which writes ``path``; a failure now, after the work, is one line and
    exit status 1 (the path was checked before: this is a full disk or the like)."""
    try:
        return write()
    except WriteError as error:
        raise CommandFailed(f"{option}: {error}") from None


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
        status = importlib.import_module(COMMANDS[args.command]).run(args)
        sys.stdout.flush()  # a full disk or closed pipe behind stdout shows here, not at exit
        return status
    except UsageError as error:
        return _error(error, USAGE)
    except CommandFailed as error:
        return _error(error, FAILED)
    except MemoryError:
        return _error("out of memory; try a smaller --m or --layers", FAILED)
    except KeyboardInterrupt:
        return _error("interrupted (files are written whole or not at all: none is half-written)",
                      INTERRUPTED)
    except OSError as error:
        if not _is_stdout_error(error):
            raise  # any other OSError here is a bug: commands report their own files
        # `autograd-lite train | head`: the reader left (or stdout is a full disk). No
        # traceback; and point stdout at devnull so Python's own flush at exit does not raise
        # again (as the Python docs advise).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        if isinstance(error, BrokenPipeError):
            return FAILED
        return _error(f"cannot write to stdout: {error.strerror or error}", FAILED)


def _error(error, status):
    print(f"autograd-lite: error: {error}", file=sys.stderr)
    return status


def _is_stdout_error(error):
    """Did writing to stdout raise ``error``? A broken pipe always is; ENOSPC/EIO/EBADF from
    a print or the final flush are too (commands catch the errors of their own files)."""
    if isinstance(error, WriteError):
        return False  # a command's own file that it failed to report: a bug, not stdout
    return isinstance(error, BrokenPipeError) or error.errno in _STDOUT_ERRORS


_STDOUT_ERRORS = {errno.ENOSPC, errno.EIO, errno.EBADF, getattr(errno, "EDQUOT", errno.ENOSPC)}


if __name__ == "__main__":
    sys.exit(main())

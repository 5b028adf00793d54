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
import math
import os
import sys
from dataclasses import dataclass

from .. import __version__, backend
from ..io import WriteError, check_writable
from .. import reference as ref

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
    add_backend_option(parser)
    parser.add_argument("--loss", default=None, choices=losses,
                        help=", ".join(descriptions[loss] for loss in losses) + (
                            "; default: cross-entropy after a softmax output, else log-loss"
                            if len(losses) > 1 else " (the only loss of this command)"))


def add_backend_option(parser):
    """``--backend NAME``: where the command's arrays live (``BACKENDS``); ``on_backend``
    moves them there."""
    parser.add_argument("--backend", default="numpy", choices=BACKENDS,
                        help="where the arrays live: " + "; ".join(
                            f"{name}: {text}" for name, (_, text) in BACKENDS.items())
                        + " (default numpy). Pictures and reports come to the host")


def add_wrong_options(parser, what):
    """``--wrong VARIANT`` and ``--wrong-layer L``: the hand derivation with one deliberately
    wrong rule (``reference.WRONG_VARIANTS``), ``what`` saying what the command then shows."""
    from .. import reference as ref
    parser.add_argument("--wrong", default=None, choices=sorted(ref.WRONG_VARIANTS),
                        help=f"{what}: " + "; ".join(
                            f"{name}: {text}" for name, (_, text) in ref.WRONG_VARIANTS.items()))
    parser.add_argument("--wrong-layer", default=None,
                        help="with --wrong: make the mistake in this layer only (1..N)")


def wrong_rules(args, N: int):
    """The hand derivation's rules for ``--wrong`` (in ``--wrong-layer`` only, if given), or
    None without ``--wrong``."""
    if args.wrong_layer is not None and args.wrong is None:
        raise UsageError("--wrong-layer needs --wrong VARIANT")
    if args.wrong is None:
        return None
    if args.wrong_layer is None:
        return ref.wrong_rules(args.wrong)
    try:
        layer = int(args.wrong_layer)
    except ValueError:
        raise UsageError(f"--wrong-layer must be a whole number, got {args.wrong_layer!r}") from None
    if not 1 <= layer <= N:
        raise UsageError(f"--wrong-layer must be a layer 1..{N} of this network, got {layer}")
    return ref.wrong_rules(args.wrong, [layer])


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


# --backend: name -> (the library to import, what it is). The networks these commands build are
# small: each backend gets the same seeded numpy arrays, moved to it (Dask: X and Y split in
# chunks of samples, W and b numpy, which Dask embeds, as docs/backends.md does it).
BACKENDS = {
    "numpy": ("numpy", "numpy arrays"),
    "torch": ("torch", "torch CPU tensors"),
    "array_api_strict": ("array_api_strict", "array-api-strict (the standard, nothing else)"),
    "dask": ("dask.array", "Dask arrays, X and Y in 4 chunks of samples"),
    "cupy": ("cupy", "CuPy arrays on the GPU"),
    "jax": ("jax.numpy", "JAX arrays (needs JAX_ENABLE_X64=1)"),
}
EXTRAS = {"torch": "torch", "dask": "dask", "cupy": "gpu", "jax": "jax"}  # pyproject's extras


def on_backend(arrays: dict, name: str) -> dict:
    """A network's arrays (``random_network``'s, or the demo's: X, Y, lists W and b) moved to
    the ``--backend`` ``name``; a backend that cannot run here (not installed, no device, no
    float64) is a usage error naming the way out."""
    if name == "numpy":
        return arrays
    xp = backend_namespace(name)
    if name == "dask":
        m = arrays["X"].shape[1]
        chunk = max(1, math.ceil(m / 4))
        return {**arrays, "X": xp.from_array(arrays["X"], chunks=(-1, chunk)),
                "Y": xp.from_array(arrays["Y"], chunks=(-1, chunk))}
    where = backend.of(xp.asarray(0.0))
    return {key: ([backend.moved(a, where) for a in value] if isinstance(value, list)
                  else backend.moved(value, where)) for key, value in arrays.items()}


def backend_namespace(name: str):
    """The namespace module of the ``--backend`` ``name``, or a usage error naming the way
    out where it cannot run here (not installed, no device, no float64)."""
    try:
        xp = importlib.import_module(BACKENDS[name][0])
        if name == "cupy" and xp.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("CuPy sees no GPU")
    except Exception as error:  # noqa: BLE001 - each library fails to import its own way
        extra = EXTRAS.get(name)
        how = f"pip install -e '.[{extra}]'" if extra else f"pip install {name.replace('_', '-')}"
        raise UsageError(f"--backend {name}: {type(error).__name__}: {error}; install it "
                         f"({how}) or choose another backend") from None
    if name == "jax":
        import jax
        if not jax.config.jax_enable_x64:
            raise UsageError("--backend jax: JAX computes in float32 unless x64 is on, and these "
                             "commands work in float64: set JAX_ENABLE_X64=1")
    return xp


def random_network(spec: NetworkSpec) -> dict:
    """Seeded data and parameters for ``spec`` as plain arrays (samples as columns).

    Returns ``{"X": (n[0], m), "Y": (n[N], m), "W": [W[1], ...], "b": [b[1], ...]}``, drawn by
    ``reference.random_problem`` (weights of variance 1/n[l-1] rather than the seed's
    randn * 0.01, so every layer's gradient is large enough for a comparison to mean something).
    """
    W, b, X, Y = ref.random_problem(spec.layers, spec.activations, spec.m, spec.loss, spec.seed)
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

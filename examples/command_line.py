"""What the examples' command lines share, so that none of them answers a bad number with a
traceback: every option is checked before any data are loaded or anything is trained, and a
refusal is one line on stderr (``digits.py: error: argument --epochs: must be a whole number
>= 1, got '-1'``) with exit status 2, as autograd-lite's own commands do (``autograd_lite/cli.py``:
``UsageError`` and its exit statuses). A run that starts and then fails (the loss became nan
with too large a learning rate) is one line too, with status 1.
"""
from __future__ import annotations

import argparse
import math

from autograd_lite import train
from autograd_lite.cli import FAILED, USAGE, UsageError

# The largest hidden layer the examples build: they are small networks, and a typo such as
# --hidden 1000000000 should be refused, not end in a MemoryError.
MAX_HIDDEN = 10_000


class Parser(argparse.ArgumentParser):
    """argparse's parser whose own refusals (an unknown option, a value its ``type`` rejects)
    raise ``UsageError``, so that ``parse`` reports them in one line like the examples' checks."""

    def error(self, message):
        raise UsageError(message)


def whole(minimum, maximum=None):
    """An argparse ``type``: a whole number from ``minimum`` to ``maximum`` (if given)."""
    def convert(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"must be a whole number {bound}, got {text!r}")
        return value
    return convert


def number(above=None, at_least=None):
    """An argparse ``type``: a finite number greater than ``above`` (or at least ``at_least``)."""
    def convert(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (above is None or value > above)
                and (at_least is None or value >= at_least)):
            bound = f"above {above}" if above is not None else f">= {at_least}"
            raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text!r}")
        return value
    return convert


def parse(parser, argv, check=None):
    """``parser.parse_args(argv)``, then ``check(args)`` (which raises ``UsageError``) and the
    output paths ``--plot`` and ``--save`` if the parser has them. Any refusal: one line
    ``prog: error: ...`` on stderr and ``SystemExit(2)``, before any work."""
    try:
        args = parser.parse_args(argv)
        if check is not None:
            check(args)
        try:
            train.check_outputs(getattr(args, "plot", None), getattr(args, "save", None))
        except (ImportError, ValueError, OSError) as error:
            raise UsageError(str(error)) from None
    except UsageError as error:
        parser.exit(USAGE, f"{parser.prog}: error: {error}\n")
    return args


def run_or_fail(parser, work):
    """``work()``; if training stops on a non-finite loss or gradient (``FloatingPointError``,
    which ``train.fit`` raises with the epoch and batch), one line and ``SystemExit(1)``."""
    try:
        return work()
    except FloatingPointError as error:
        parser.exit(FAILED, f"{parser.prog}: error: {error}\n")

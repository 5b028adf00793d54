"""``autograd-lite`` (also ``python -m autograd_lite``): one module per command (``check``,
``demo``, ``graph``, ``train``) and ``main``, which holds what they share: the network options,
output checks and the exit statuses (docs/cli.md)."""
from .main import (COMMANDS, FAILED, INTERRUPTED, MAX_NUMBERS, OK, USAGE, CommandFailed,
                   UsageError, main)

__all__ = ["main", "COMMANDS", "OK", "FAILED", "USAGE", "INTERRUPTED", "MAX_NUMBERS",
           "UsageError", "CommandFailed"]

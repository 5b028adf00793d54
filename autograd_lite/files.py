"""Files written whole or not at all: parameters, optimizer state and pictures.

``write_atomically(path, write)`` calls ``write(stream)`` on a temporary file in the same
directory, flushes it to disk and renames it over ``path`` (``os.replace`` is atomic), so a
crash, a full disk or an exception in ``write`` leaves either the old file or the new one,
never a half-written one, and no temporary file behind.
"""
from __future__ import annotations

import os
import tempfile


def write_atomically(path, write):
    """Write ``path`` whole or not at all (see the module docstring); returns ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes the file private (0600); what we write is an ordinary file: keep the
        # mode of the file it replaces, or the usual 0644
        os.chmod(temporary, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path

"""Files written whole or not at all, and read without surprises: parameters, optimizer state,
pictures and loss plots all go through here.

Writing: ``write_atomically(path, write)`` calls ``write(stream)`` on a temporary file in the
target's directory, flushes it to disk and renames it over ``path`` (``os.replace`` is atomic),
so a crash, a full disk or an exception in ``write`` leaves either the old file or the new one,
never a half-written one, and no temporary file behind. The new file is an ordinary one (the
mode of the file it replaces, else what ``open`` would give: 0644 under the usual umask), a
symbolic link is followed (the file it points to is replaced, the link stays), and a
directory, device or FIFO at ``path`` is refused, never replaced. A failure is a ``WriteError`` (an ``OSError``) whose message names ``path`` and the
reason in one line, never the temporary file. ``check_writable(path)`` asks the same questions
up front, so a command refuses a bad output before any work.

Reading: ``read_npz(path, ...)`` opens only a regular file (a directory, ``/dev/zero`` or a
FIFO is refused without blocking), reads the ``.npz`` with ``zipfile`` and each member's
``.npy`` header itself, and refuses anything that is not plain arrays: a truncated or damaged
archive, a member that is not a ``.npy``, a header whose shape and dtype do not match the bytes
stored (a huge declared shape never allocates), an object array (which would need pickle:
loading never runs code), a structured array. Every refusal is one ``BadFileError`` (a
``ValueError``; a missing file is also a ``FileNotFoundError``) naming the file and what is
wrong; the caller has changed nothing yet.
"""
from __future__ import annotations

import errno
import math
import os
import stat
import tempfile
import zipfile

import numpy as np

from .errors import ShapeError


# --- errors -------------------------------------------------------------------------------------

class BadFileError(ValueError):
    """A file that cannot be loaded as what it should be. The message names the file and what is
    wrong with it; ``path`` is the file. Whatever was being loaded is unchanged."""

    def __init__(self, message, path=None):
        super().__init__(message)
        self.path = None if path is None else os.fspath(path)


class MissingFileError(BadFileError, FileNotFoundError):
    """There is no file at the path (also a ``FileNotFoundError``)."""

    def __init__(self, message, path=None):
        BadFileError.__init__(self, message, path)
        self.filename = self.path

    def __str__(self):  # OSError would print "[Errno ...]" parts; the message says it all
        return self.args[0]


class FileShapeError(BadFileError, ShapeError):
    """A file whose arrays have other shapes than the model or optimizer loading it (also a
    ``ShapeError``)."""


def as_bad_file(error, path):
    """``error`` (a ValueError from checking a file's contents) as a ``BadFileError`` with the
    same message, a ``FileShapeError`` if it was a ``ShapeError``."""
    if isinstance(error, BadFileError):
        return error
    kind = FileShapeError if isinstance(error, ShapeError) else BadFileError
    return kind(str(error), path)


class WriteError(OSError):
    """A file could not be written. The message names the file asked for (never the temporary
    file) and why; an existing file at that path is as it was."""

    def __init__(self, message, path=None, code=None):
        super().__init__(message)
        self.path = self.filename = None if path is None else os.fspath(path)
        self.errno = code

    def __str__(self):
        return self.args[0]


# --- writing ------------------------------------------------------------------------------------

def check_writable(path):
    """Refuse now, with the ``WriteError`` the write would raise, a path that cannot be
    written: a missing folder, a folder where no file can be created (permissions, a read-only
    file system), or a directory, device or FIFO at ``path``. Returns the path that would be
    written (symbolic links resolved). Nothing is left behind."""
    target = _target(path)
    try:
        handle, probe = tempfile.mkstemp(prefix=".autograd-lite-probe.", dir=os.path.dirname(target))
    except OSError as error:
        raise _write_error(path, target, error) from None
    os.close(handle)
    os.unlink(probe)
    return target


def write_atomically(path, write):
    """Write ``path`` whole or not at all (see the module docstring); returns ``path``."""
    target = _target(path)
    directory, name = os.path.split(target)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise _write_error(path, target, error) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes the file private (0600); what we write is an ordinary file: keep the
        # mode of the file it replaces, or the mode open() would give a new one
        os.chmod(temporary, os.stat(target).st_mode & 0o777 if os.path.exists(target)
                 else new_file_mode())
        os.replace(temporary, target)
    except BaseException as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            raise _write_error(path, target, error) from None
        raise
    return os.fspath(path)


def new_file_mode():
    """0666 less the process's umask: the mode ``open(path, "w")`` gives a new file (0644 under
    the usual umask 022, 0600 under 077)."""
    try:  # Linux tells the umask without changing it
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # NOTE: elsewhere the only way to read the umask is to set it; it is set back at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _target(path):
    """The file a write to ``path`` replaces: symbolic links followed; a missing folder or
    something other than a regular file at the path refused."""
    path = os.fspath(path)
    if not path:
        raise WriteError("cannot write '': the path is empty", path, errno.ENOENT)
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        missing = os.path.dirname(path) or "."
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise WriteError(f"cannot write {path!r}: the folder {missing!r} {what}", path,
                         errno.ENOTDIR if os.path.exists(folder) else errno.ENOENT)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as error:
        raise _write_error(path, target, error) from None
    if not stat.S_ISREG(mode):
        raise WriteError(f"cannot write {path!r}: it is {_kind(mode)}, not a regular file; "
                         f"refusing to replace it", path, errno.EISDIR if stat.S_ISDIR(mode) else None)
    return target


def _write_error(path, target, error):
    """An OSError from writing near ``target`` as one line about ``path`` (the temporary
    file's name, which the OS error may carry, is dropped)."""
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = (f"{reason.lower() if reason else 'permission denied'} (no file can be created "
                  f"in {os.path.dirname(target)!r})")
    else:
        reason = reason[:1].lower() + reason[1:]
    return WriteError(f"cannot write {os.fspath(path)!r}: {reason}", path, error.errno)


# --- reading ------------------------------------------------------------------------------------

def open_regular(path, source, unchanged):
    """``path`` opened for reading in binary, only if it is a regular file. A FIFO is opened
    without blocking and refused, like a directory or a device; a missing file is a
    ``MissingFileError``; anything else a ``BadFileError``."""
    path = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        handle = os.open(path, flags)
    except FileNotFoundError:
        raise MissingFileError(f"{source}: no such file; {unchanged}", path) from None
    except IsADirectoryError:
        raise BadFileError(f"{source}: it is a directory, not a file; {unchanged}", path) from None
    except OSError as error:
        raise BadFileError(f"{source}: cannot open it: {_reason(error)}; {unchanged}", path) from None
    mode = os.fstat(handle).st_mode
    if not stat.S_ISREG(mode):
        os.close(handle)
        raise BadFileError(f"{source}: it is {_kind(mode)}, not a regular file; {unchanged}", path)
    if hasattr(os, "set_blocking"):
        os.set_blocking(handle, True)
    return os.fdopen(handle, "rb")


def read_npz(path, *, source, expected, unchanged):
    """The arrays of the ``.npz`` at ``path`` (key -> ndarray), read without pickle.

    Errors are one ``BadFileError`` (``MissingFileError`` when there is no file):
    ``"{source}: {what is wrong}; {unchanged}"``, where a file of the wrong kind is described as
    ``the file is not {expected}``. Callers: ``Module.load`` and ``Optimizer.load``."""
    path = os.fspath(path)
    not_ours = f"{source}: the file is not {expected}"

    def refuse(reason):
        return BadFileError(f"{not_ours}: {reason}; {unchanged}", path)

    with open_regular(path, source, unchanged) as stream:
        try:
            start = stream.read(6)
            stream.seek(0)
        except OSError as error:  # a "regular" file that cannot be read (/proc/self/mem)
            raise BadFileError(f"{source}: cannot read it: {_reason(error)}; {unchanged}",
                               path) from None
        if start == b"\x93NUMPY":
            raise refuse("it holds a single array (an .npy), not an .npz archive of named arrays")
        try:
            archive = zipfile.ZipFile(stream)
        except Exception as error:  # noqa: BLE001 - see _ZIP_FAILURES
            raise refuse(f"it is not a complete .npz (zip) archive: truncated, damaged or "
                         f"another kind of file ({_reason(error)})") from None
        with archive:
            arrays = {}
            for info in archive.infolist():
                key = _member_key(info, arrays, refuse)
                arrays[key] = _read_member(archive, info, key, refuse)
    return arrays


# NOTE: _ZIP_FAILURES. On a damaged or hostile archive zipfile and numpy's header reader raise
# BadZipFile, but also NotImplementedError (a "zip version" or compression byte flipped),
# RuntimeError (an "encrypted" flag), KeyError, EOFError, zlib.error, struct.error,
# OverflowError, UnicodeDecodeError, MemoryError ...; the fuzz tests found several. Each
# means the same thing here, a file that is not what it should be, so the two calls into them
# catch Exception and report the reason in one line.


def _member_key(info, arrays, refuse):
    if info.is_dir() or not info.filename.endswith(".npy"):
        raise refuse(f"its member {info.filename!r} is not an .npy array")
    key = info.filename[:-len(".npy")]
    if key in arrays:
        raise refuse(f"it holds {key!r} twice")
    return key


def _read_member(archive, info, key, refuse):
    """One member's array: header parsed and checked against the bytes stored before any
    array is made, so a lying header is an error, not a huge allocation."""
    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise refuse(f"{key!r} uses .npy format version {version}, which this reader "
                             f"does not read (1.0 and 2.0 only)")
            if dtype.hasobject:
                raise refuse(f"{key!r} holds Python objects (dtype {dtype}), which only pickle "
                             f"can read; loading never runs code (allow_pickle=False)")
            if dtype.fields is not None or dtype.kind == "V":
                raise refuse(f"{key!r} holds structured records (dtype {dtype}), not plain "
                             f"numbers or strings")
            count = math.prod(shape)
            size = count * dtype.itemsize
            stored = info.file_size - member.tell()
            if size != stored:
                raise refuse(f"{key!r} declares shape {shape} of {dtype} ({size} bytes) but "
                             f"holds {stored} bytes: truncated or damaged")
            data = member.read(size)
            if len(data) != size:
                raise refuse(f"{key!r} ends after {len(data)} of its {size} bytes: truncated")
    except BadFileError:
        raise
    except Exception as error:  # noqa: BLE001 - see _ZIP_FAILURES
        raise refuse(f"{key!r} cannot be read: truncated or damaged ({_reason(error)})") from None
    if size == 0:
        return np.zeros(shape, dtype=dtype)
    array = np.frombuffer(data, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def _reason(error):
    text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    text = " ".join(text.split()) or type(error).__name__
    return text[:1].lower() + text[1:]


def _kind(mode):
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def save_state(path, state):
    """Write a ``state_dict()`` of numbers, strings and arrays to ``path`` as an ``.npz``,
    whole or not at all (a learning-rate schedule's, a shuffler's)."""
    arrays = {key: np.array(value) for key, value in state.items()}
    write_atomically(path, lambda stream: np.savez(stream, **arrays))


def read_state(path, *, source, expected, unchanged):
    """The state written by ``save_state``, read by ``read_npz`` (no pickle; every bad file is
    one ``BadFileError``), its 0-d arrays as plain numbers and strings."""
    arrays = read_npz(os.fspath(path), source=source, expected=expected, unchanged=unchanged)
    return {key: (array.item() if array.ndim == 0 else array) for key, array in arrays.items()}

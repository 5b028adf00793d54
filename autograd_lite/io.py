"""Files written whole or not at all, and read without surprises: parameters, optimizer state,
pictures and loss plots all go through here; and the one state format and validator of
everything saved (below: ``save_state``, ``read_state``, ``check_fields``, ``Declared``).

Writing: ``write_atomically(path, write)`` calls ``write(stream)`` on a temporary file in the
target's directory, flushes it to disk and renames it over ``path`` (``os.replace`` is atomic),
so a crash, a full disk or an exception in ``write`` leaves either the old file or the new one,
never a half-written one, and no temporary file behind. The new file is an ordinary one (the
mode of the file it replaces, else what ``open`` would give: 0644 under the usual umask), a
symbolic link is followed (the file it points to is replaced, the link stays), and a
directory, device or FIFO at ``path`` is refused, never replaced, as is a path ending in a
separator (it names a folder) or through a dangling link. A failure is a ``WriteError`` (an
``OSError``) whose message names ``path`` and the reason in one line, never the temporary file. ``check_writable(path)`` asks the same questions
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
import inspect
import json
import math
import numbers
import os
import stat
import tempfile
import zipfile

import numpy as np

from . import backend
from .core.tensor import Tensor
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
    if path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)):
        raise WriteError(f"cannot write {path!r}: the path ends in a separator, so it names a "
                         f"folder, not a file; add the file's name (e.g. "
                         f"{os.path.join(path, 'model.npz')!r})", path, errno.EISDIR)
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        for link in _prefixes(path):
            if os.path.islink(link) and not os.path.exists(link):
                raise WriteError(f"cannot write {path!r}: {link!r} is a symbolic link to "
                                 f"{os.readlink(link)!r}, which does not exist (a dangling link)",
                                 path, errno.ENOENT)
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


def _prefixes(path):
    """``a/b/c``, ``a/b``, ``a``: the path and each folder it goes through."""
    while path and path != os.path.dirname(path):
        yield path
        path = os.path.dirname(path)


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


# --- state files: one format, one validator --------------------------------------------------------
# Everything saved (a model's parameters and buffers, an optimizer's state, a schedule's, a
# shuffler's) is a dict of numbers, strings, arrays, shapes (tuples of whole numbers) and None,
# nested in dicts. The file is that dict flattened: nested keys joined by ".", None left out,
# every value a numpy array of numbers or unicode, so np.savez writes no pickle (an array of
# another backend is brought to the host: a file holds numpy). Reading un-flattens it; ``check_fields`` then checks it against the reader's declaration (key ->
# validator) before anything is changed, whether it came from a file or a state_dict().

def save_state(path, state):
    """Write ``state`` to ``path`` as an ``.npz``, whole or not at all (``write_atomically``)."""
    arrays = flatten(state)
    write_atomically(path, lambda stream: np.savez(stream, **arrays))


def flatten(state, prefix="") -> dict:
    """``{"a": {"b": 1}, "c": None}`` -> ``{"a.b": array(1)}``; tuples (shapes) as int64."""
    arrays = {}
    for key, value in state.items():
        if isinstance(value, dict):
            arrays.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, tuple):
            arrays[f"{prefix}{key}"] = np.array(value, dtype=np.int64).reshape(len(value))
        elif backend.is_foreign_array(value):
            arrays[f"{prefix}{key}"] = np.array(backend.to_numpy(value))
        elif value is not None:
            arrays[f"{prefix}{key}"] = np.array(value)
    return arrays


def read_state(path, *, source, expected, unchanged, sections=None):
    """The state written by ``save_state``: ``read_npz`` (no pickle; every bad file is one
    ``BadFileError``), then ``nest``."""
    path = os.fspath(path)
    arrays = read_npz(path, source=source, expected=expected, unchanged=unchanged)
    return nest(arrays, sections or {}, lambda reason: BadFileError(
        f"{source}: the file is not {expected}: {reason}; {unchanged}", path))


def nest(arrays, sections, refuse) -> dict:
    """Flat keys back into dicts. ``sections`` says which keys nest and how deep:
    ``{"parameters": 2}`` reads ``parameters.3.m`` as ``state["parameters"][3]["m"]`` (a
    position is a whole number); any other dotted key is ``refuse(reason)`` raised. 0-d arrays
    come back as Python numbers and strings."""
    state = {}
    for key, array in arrays.items():
        head, *rest = key.split(".")
        if len(rest) != sections.get(head, 0) or (len(rest) == 2 and not
                                                   (rest[0].isdigit() and rest[0].isascii())):
            raise refuse(f"unexpected key {key!r}")
        node = state
        for part in [head, *rest][:-1]:
            node = node.setdefault(int(part) if part.isdigit() else part, {})
        node[key.rsplit(".", 1)[-1]] = array.item() if array.ndim == 0 else array
    return state


def check_fields(mapping, declared, what, refuse, holder="this one"):
    """``mapping`` checked against ``declared``, key -> validator: the same keys (a validator
    made by ``optional`` may be missing: None), each value passed through its validator
    ``validator(value, key)``. A declaration nests: a dict is checked the same way, a list
    declares entries keyed by position 0..n-1 (``holder`` has n). Returns the checked values; a
    fault is ``refuse(text, kind)`` raised, naming the key."""
    if not isinstance(mapping, dict):
        raise refuse(f"{what} must be a dict, got {type(mapping).__name__}", ValueError)
    missing = [key for key in declared if key not in mapping and not getattr(declared[key], "optional", False)]
    unexpected = [key for key in mapping if key not in declared]
    if missing or unexpected:
        parts = [f"{label} {', '.join(map(str, keys))}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected)) if keys]
        raise refuse(f"{what} does not have the expected keys ({'; '.join(parts)})", ValueError)
    checked = {}
    for key, validator in declared.items():
        value = mapping.get(key)
        if isinstance(validator, dict):
            checked[key] = check_fields(value, validator, key, refuse, holder)
        elif isinstance(validator, list):
            if not isinstance(value, dict) or set(value) != set(range(len(value))):
                raise refuse(f"{key!r} must be keyed by position 0..{len(value) - 1}, got "
                             f"keys {list(value)}" if isinstance(value, dict) else
                             f"{key!r} must be a dict keyed by position, got {type(value).__name__}")
            if len(value) != len(validator):
                raise refuse(f"the state holds {len(value)} {key} but {holder} has {len(validator)}")
            checked[key] = {index: check_fields(value[index], entry, who, refuse, holder)
                            for index, (who, entry) in enumerate(validator)}
        else:
            try:
                checked[key] = validator(value, key)
            except ValueError as error:  # ShapeError included: the kind is kept
                raise refuse(str(error), type(error)) from None
    return checked


def refusal(source, unchanged, path=None):
    """``refuse(text, kind)`` for ``check_fields``: ``kind("{source}: {text}; {unchanged}")``,
    a ``BadFileError`` (``FileShapeError``) naming the file when ``path`` is given."""
    def refuse(text, kind=ValueError):
        error = kind(f"{source}: {text}; {unchanged}")
        return error if path is None else as_bad_file(error, path)
    return refuse


# --- validators: value, label -> the value checked and converted, or a ValueError ---------------

def _scalar(value, label):
    if isinstance(value, np.ndarray):
        raise ValueError(f"{label} must be a single value, got an array of shape {value.shape}")


def real(value, label):
    _scalar(value, label)
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{label} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{label} must be finite, got {value!r}")
    return float(value)


def positive(value, label):
    if not real(value, label) > 0:
        raise ValueError(f"{label} must be > 0, got {value!r}")
    return float(value)


def non_negative(value, label):
    if not real(value, label) >= 0:
        raise ValueError(f"{label} must be >= 0, got {value!r}")
    return float(value)


def fraction(value, label):
    """A number in [0, 1)."""
    if not 0 <= real(value, label) < 1:
        raise ValueError(f"{label} must lie in [0, 1), got {value!r}")
    return float(value)


def closed_fraction(value, label):
    """A number in [0, 1]."""
    if not 0 <= real(value, label) <= 1:
        raise ValueError(f"{label} must lie in [0, 1], got {value!r}")
    return float(value)


def learning_rate(value, label="lr"):
    _scalar(value, label)
    if not isinstance(value, numbers.Real) \
            or isinstance(value, (bool, np.bool_)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"the learning rate must be a finite number > 0, got {value!r}")
    return float(value)


def flag(value, label):
    _scalar(value, label)
    if not isinstance(value, (bool, np.bool_)) and value not in (0, 1):
        raise ValueError(f"{label} must be True or False, got {value!r}")
    return bool(value)


def count(value, label, minimum=0):
    """A whole number >= minimum (never a float, which would hide a corrupted value)."""
    _scalar(value, label)
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)) \
            or value < minimum:
        raise ValueError(f"{label} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def count_from_one(value, label):
    return count(value, label, minimum=1)


def text(value, label):
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string, got {value!r}")
    return value


def one_of(*choices):
    def validator(value, label):
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"{label} must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    return validator


def equal_to(expected, saying):
    """A validator accepting only ``expected``; ``saying`` words the refusal of another value."""
    def validator(value, label):
        if type(value) is not type(expected) or value != expected:
            raise ValueError(saying.format(value=value, expected=expected))
        return value
    return validator


def optional(validator):
    """``validator``, letting None (and a missing key) through."""
    def checked(value, label):
        return None if value is None else validator(value, label)
    checked.optional = True
    return checked


def matching(ours, validator, saying, kind=ValueError, optional=True):
    """``validator`` (letting None through if ``optional``), then equal to ``ours`` where both
    are known, else ``kind(saying.format(ours=ours, value=value))``."""
    def checked(value, label):
        value = None if value is None else validator(value, label)
        if ours is not None and value is not None and value != ours:
            raise kind(saying.format(ours=ours, value=value))
        return value
    checked.optional = optional
    return checked


def generator_text(generator) -> str:
    """A numpy Generator's exact state as JSON text (numbers only), for a state file."""
    def plain(value):  # MT19937's key is an array; numpy integers
        return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else str(value)
    return json.dumps(generator.bit_generator.state, default=plain)


def generator_state(generator):
    """A validator of ``generator_text`` for ``generator``: JSON text of a state its kind of bit
    generator accepts. Returns the state, for ``generator.bit_generator.state = ...``."""
    kind = generator.bit_generator.state["bit_generator"]

    def validator(value, label):
        value = value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
        try:
            state = json.loads(value)
            theirs = state["bit_generator"]
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(f"{label}: the saved generator state is not valid ({_reason(error)})") from None
        if theirs != kind:
            raise ValueError(f"{label} is the state of a {theirs!r} generator, this one's is {kind!r}")
        trial = type(generator.bit_generator)()
        try:
            trial.state = state
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(f"{label}: the saved generator state is not valid ({_reason(error)})") from None
        return trial.state
    return validator


def shape(value, label):
    """A shape: a tuple or 1-d array of whole numbers >= 0 (a file stores it as int64)."""
    array = np.asarray(value)
    if isinstance(value, (tuple, list)) and all(isinstance(n, numbers.Integral) for n in value):
        array = np.array(value, dtype=np.int64).reshape(len(value))
    if array.ndim != 1 or array.dtype.kind not in "iu" or (array < 0).any():
        raise ValueError(f"{label} must be a list of whole numbers >= 0, got {array.dtype} "
                         f"{array.tolist()!r}"[:300])
    return tuple(int(n) for n in array)


def array_like(reference, who, non_negative=False, allow_nonfinite=False):
    """A validator of an array saved for ``reference`` (an array or Tensor): numbers, its shape,
    finite (unless allowed), >= 0 if ``non_negative`` (a mean of squares), checked on the host;
    returns a fresh copy in ``reference``'s dtype and backend (a file holds numpy: its arrays
    go back where the parameter lives). Messages name ``who`` and the key."""
    where = backend.of(reference.data if isinstance(reference, Tensor) else reference)

    def validator(value, key):
        array = backend.to_numpy(value) if backend.is_foreign_array(value) else np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{who}'s saved {key} holds dtype {array.dtype}, not numbers")
        if array.shape != tuple(reference.shape):
            raise ShapeError(f"{who} has shape {tuple(reference.shape)} but its saved {key} has shape "
                             f"{array.shape}")
        with np.errstate(over="ignore"):
            array = np.array(array, dtype=host_dtype(reference.dtype), copy=True)
        if not allow_nonfinite and not np.all(np.isfinite(array)):
            raise ValueError(f"{who}'s saved {key} holds {int(np.isnan(array).sum())} nan and "
                             f"{int(np.isinf(array).sum())} inf entries")
        if non_negative and np.any(array < 0):
            raise ValueError(f"{who}'s saved {key} holds {int((array < 0).sum())} negative "
                             f"entries (a mean of squared gradients is >= 0), e.g. "
                             f"{float(array[array < 0].reshape(-1)[0]):g}")
        return backend.moved(array, where)
    return validator


def host_dtype(dtype) -> np.dtype:
    """numpy's dtype of the same name as ``dtype`` (torch.float32 -> float32)."""
    return np.dtype(str(dtype).rpartition(".")[2])


# --- declared settings: checked where given, set, saved and loaded ------------------------------

REQUIRED = inspect.Parameter.empty   # the default of a setting that must be given


class Checked:
    """A declared attribute, checked by its validator whenever it is set (``opt.momentum =
    nan`` is refused there, not found later as a NaN model). It defines no ``__get__``, so
    reading it is a plain attribute lookup (an optimizer reads its settings at every step)."""

    def __init__(self, name, validator):
        self.name, self.validator = name, validator

    def __set__(self, owner, value):
        try:
            owner.__dict__[self.name] = self.validator(value, self.name)
        except ValueError as error:
            raise ValueError(f"{type(owner).__name__}: {error}") from None


class Grouped:
    """Several declared attributes given and read as one tuple (Adam's ``betas``), each checked
    before any is set."""

    def __init__(self, name, members):
        self.name, self.members = name, members

    def __get__(self, owner, kind=None):
        return self if owner is None else tuple(getattr(owner, m) for m in self.members)

    def __set__(self, owner, value):
        values = tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else ()
        try:
            if len(values) != len(self.members):
                raise ValueError(f"{self.name} must be a pair ({', '.join(self.members)}), got {value!r}")
            for member, item in zip(self.members, values):
                owner.HYPERPARAMETERS[member][1](item, member)
        except ValueError as error:
            raise ValueError(f"{type(owner).__name__}: {error}") from None
        for member, item in zip(self.members, values):
            setattr(owner, member, item)


class Declared:
    """Settings declared once, ``HYPERPARAMETERS = {name: (default, validator)}`` (and
    ``GROUPS = {name: members}``, given as one tuple), make the constructor's signature after
    its first argument ``FIRST``, checked attributes, ``describe()``, and the saved state:
    ``state_dict()`` is ``{"format": FORMAT, KIND: class name, **saved()}``, checked on load
    against ``{**HYPERPARAMETERS' validators, **declared_state()}`` before ``restore`` changes
    anything; ``save``/``load`` write and read it in the state format above."""

    HYPERPARAMETERS: dict = {}
    GROUPS: dict = {}
    FIRST = "self"
    KEYWORDS: dict = {}  # keyword-only arguments that are not saved: name -> (default, validator)
    KIND = "kind"       # the key naming the class in the state ("optimizer", "scheduler")
    FORMAT = 1          # the layout of the state; a reader refuses another
    SECTIONS: dict = {}  # which saved keys nest, for ``nest``
    UNCHANGED = "nothing changed"
    EXPECTED = "a state written by save"   # what a file given to load should be

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, (_, validator) in cls.HYPERPARAMETERS.items():
            setattr(cls, name, Checked(name, validator))
        for name, members in cls.GROUPS.items():
            setattr(cls, name, Grouped(name, members))
        P = inspect.Parameter
        cls.__signature__ = inspect.Signature(
            [P(cls.FIRST, P.POSITIONAL_OR_KEYWORD)]
            + [P(name, P.POSITIONAL_OR_KEYWORD, default=default) for name, default in cls.arguments()]
            + [P(name, P.KEYWORD_ONLY, default=default) for name, (default, _) in cls.KEYWORDS.items()])

    @classmethod
    def arguments(cls):
        """(name, default) of each declared argument, a group in its first member's place."""
        grouped = {member: group for group, members in cls.GROUPS.items() for member in members}
        arguments = {}
        for name, (default, _) in cls.HYPERPARAMETERS.items():
            group = grouped.get(name)
            if group is None:
                arguments[name] = default
            elif group not in arguments:
                arguments[group] = tuple(cls.HYPERPARAMETERS[m][0] for m in cls.GROUPS[group])
        return list(arguments.items())

    def bind(self, *args, **kwargs):
        """Check and set the declared arguments; returns every argument by name."""
        try:
            bound = self.__signature__.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{type(self).__name__}: {error}") from None
        bound.apply_defaults()
        for name, _ in self.arguments():
            setattr(self, name, bound.arguments[name])
        for name, (_, validator) in self.KEYWORDS.items():
            try:
                self.__dict__[name] = validator(bound.arguments[name], name)
            except ValueError as error:
                raise ValueError(f"{type(self).__name__}: {error}") from None

    def hyperparameters(self) -> dict:
        return {name: getattr(self, name) for name in self.HYPERPARAMETERS}

    def describe(self):
        return ", ".join(f"{name}={getattr(self, name)}" for name, _ in self.arguments())

    # --- the saved state ---------------------------------------------------------------------
    def saved(self) -> dict:
        """What the state holds besides its format and kind (a subclass adds its own)."""
        return self.hyperparameters()

    def declared_state(self) -> dict:
        """Validators of ``saved()``'s keys."""
        return {name: validator for name, (_, validator) in self.HYPERPARAMETERS.items()}

    def restore(self, values, refuse):
        """Take the checked ``values``; may refuse (before changing anything) what only the
        values together tell."""
        self.__dict__.update(values)

    def state_dict(self) -> dict:
        return {"format": self.FORMAT, self.KIND: type(self).__name__, **self.saved()}

    def load_state_dict(self, state, source=None, path=None):
        """Resume from ``state`` (from ``state_dict()``): everything is checked first; on any
        error nothing changes."""
        refuse = refusal(source or f"{type(self).__name__}.load_state_dict", self.UNCHANGED, path)
        declared = {"format": equal_to(self.FORMAT, "the state has format {value!r}; this "
                                                    "version reads format {expected}"),
                    self.KIND: equal_to(type(self).__name__, "the state was saved by {value!r}, "
                                                             "not {expected!r}"),
                    **self.declared_state()}
        if isinstance(state, dict) and self.KIND in state:   # another kind first: its keys differ
            try:
                declared[self.KIND](state[self.KIND], self.KIND)
            except ValueError as error:
                raise refuse(str(error)) from None
        values = check_fields(state, declared, "the state", refuse, f"this {self.KIND}")
        del values["format"], values[self.KIND]
        self.restore(values, refuse)
        return self

    def save(self, path):
        """Write ``state_dict()`` to ``path`` (an ``.npz``; no suffix is added), atomically."""
        save_state(path, self.state_dict())

    def load(self, path):
        """Read a file written by ``save`` (loading never runs code) and resume from it; on any
        fault one ``BadFileError`` naming the file, and nothing changed."""
        source = f"{type(self).__name__}.load {os.fspath(path)!r}"
        expected = self.EXPECTED
        arrays = read_npz(path, source=source, expected=expected, unchanged=self.UNCHANGED)
        refuse = refusal(f"{source}: the file is not {expected}", self.UNCHANGED, path)
        if self.KIND not in arrays or "format" not in arrays:
            model = arrays and not {"format", self.KIND} & set(arrays)
            raise refuse(f"no 'format'/{self.KIND!r} entry among its keys {sorted(arrays)}" + (
                " (it looks like a model's parameter file: load that with model.load)" if model else ""))
        return self.load_state_dict(nest(arrays, self.SECTIONS, refuse), source, path)

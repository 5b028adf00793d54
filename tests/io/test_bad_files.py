"""Every bad parameter or optimizer file is one ``BadFileError`` naming the file and the fault,
and loading it changes nothing: truncations at every offset, flipped bytes,
random bytes, wrong keys and dtypes, lying headers (huge shapes), pickles, FIFOs, devices,
directories, unreadable paths. Also: ``model.load`` refuses nan/inf parameters unless allowed."""
import io
import os
import stat
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd_lite import nn, optim
from autograd_lite.errors import ShapeError
from autograd_lite.io import BadFileError, FileShapeError, MissingFileError


def model(seed=0, sizes=(3, 4, 1)):
    return nn.MLP(list(sizes), ["tanh", "sigmoid"], rng=np.random.default_rng(seed))


def trained_adam(seed=0):
    net = model(seed)
    opt = optim.Adam(net, lr=0.01)
    for _ in range(2):
        X = np.random.default_rng(seed).standard_normal((3, 5))
        opt.zero_grad()
        (net(X) ** 2).sum().backward()
        opt.step()
    return opt


def snapshot_model(module):
    return {name: p.data.copy() for name, p in module.named_parameters()}


def same_arrays(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def flat_state(optimizer):
    """state_dict() flattened to comparable text (arrays by bytes)."""
    state = optimizer.state_dict()
    out = {"steps": state["steps"], "hyper": state["hyperparameters"]}
    for index, entry in state["parameters"].items():
        for key, value in entry.items():
            out[(index, key)] = value.tobytes() if isinstance(value, np.ndarray) else value
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    model(0).save(folder / "model.npz")
    trained_adam(0).save(folder / "adam.npz")
    return {"model": (folder / "model.npz").read_bytes(), "adam": (folder / "adam.npz").read_bytes()}


def load_into_model(path):
    """Load ``path`` into a fresh model; returns (error or None, before, after)."""
    target = model(1)
    before = snapshot_model(target)
    try:
        target.load(path)
    except BadFileError as error:
        return error, before, snapshot_model(target)
    return None, before, snapshot_model(target)


def load_into_adam(path):
    target = trained_adam(7)
    before = flat_state(target)
    try:
        target.load(path)
    except BadFileError as error:
        return error, before, flat_state(target)
    return None, before, flat_state(target)


def assert_refused(result, path, what=None):
    error, before, after = result
    assert error is not None, f"{path} was loaded"
    message = str(error)
    assert os.fspath(path) in message and "\n" not in message
    assert message.endswith("is unchanged")
    assert error.path == os.fspath(path)
    if what is not None:
        assert what in message, message
    assert after == before if not isinstance(before, dict) or "steps" in before else \
        same_arrays(after, before)


# --- truncations, flipped bytes, random bytes ---------------------------------------------------

@pytest.mark.parametrize("kind", ["model", "adam"])
def test_every_truncation_is_refused_and_changes_nothing(kind, files, tmp_path):
    data = files[kind]
    load = load_into_model if kind == "model" else load_into_adam
    path = tmp_path / "cut.npz"
    step = 1 if kind == "model" else 7   # every offset of the model file, every 7th of Adam's
    for length in list(range(0, len(data), step)) + list(range(len(data) - 30, len(data))):
        path.write_bytes(data[:length])
        assert_refused(load(path), path)


def test_the_first_300_bytes_of_a_file_are_refused_as_truncated(files, tmp_path):
    """`head -c 300 m.npz > t.npz`: both loaders name the file and say it is truncated."""
    path = tmp_path / "t.npz"
    path.write_bytes(files["model"][:300])
    assert_refused(load_into_model(path), path, "truncated")
    path.write_bytes(files["adam"][:300])
    assert_refused(load_into_adam(path), path, "truncated")


@pytest.mark.parametrize("kind", ["model", "adam"])
def test_a_flipped_byte_is_refused_or_loads_the_original_values(kind, files, tmp_path):
    """A damaged archive either fails (CRC, headers) or, where the flip hit metadata the
    reader does not use (a timestamp), loads the very values saved; never other values."""
    data = files[kind]
    path = tmp_path / "flipped.npz"
    reference = model(0) if kind == "model" else trained_adam(0)
    expected = snapshot_model(reference) if kind == "model" else flat_state(reference)
    rng = np.random.default_rng(0)
    for offset in sorted(set(rng.integers(0, len(data), 300).tolist())):
        damaged = bytearray(data)
        damaged[offset] ^= 0xFF
        path.write_bytes(bytes(damaged))
        if kind == "model":
            error, before, after = load_into_model(path)
            assert error is not None or same_arrays(after, expected), offset
            assert error is None or same_arrays(after, before), offset
        else:
            error, before, after = load_into_adam(path)
            assert error is not None or after == expected, offset
            assert error is None or after == before, offset


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_bytes_are_refused(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("random") / "random.npz"
    path.write_bytes(data)
    assert_refused(load_into_model(path), path)
    assert_refused(load_into_adam(path), path)


# --- well-formed archives with the wrong contents -----------------------------------------------

def write_npz(path, arrays):
    np.savez(path, **arrays)
    return path


def test_wrong_keys_are_refused_naming_them(tmp_path):
    arrays = snapshot_model(model(0))
    arrays["extra"] = np.zeros(2)
    path = write_npz(tmp_path / "extra.npz", arrays)
    assert_refused(load_into_model(path), path, "unexpected extra")
    del arrays["extra"], arrays["layers.1.b"]
    path = write_npz(tmp_path / "short.npz", arrays)
    assert_refused(load_into_model(path), path, "missing layers.1.b")


def test_wrong_dtypes_are_refused(tmp_path):
    for label, value in [("strings", np.array([["x"] * 3] * 4)),
                         ("complex", np.zeros((4, 3), complex)),
                         ("bytes", np.array([[b"x"] * 3] * 4)),
                         ("datetimes", np.zeros((4, 3), "datetime64[s]")),
                         ("records", np.zeros((4, 3), [("a", "f8")]))]:
        arrays = snapshot_model(model(0))
        arrays["layers.0.W"] = value
        path = write_npz(tmp_path / f"{label}.npz", arrays)
        assert_refused(load_into_model(path), path, "layers.0.W")


def test_object_arrays_and_pickles_are_refused_without_running_them(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("the payload ran",))

    arrays = snapshot_model(model(0))
    arrays["layers.0.W"] = np.array([Payload()], dtype=object)
    path = write_npz(tmp_path / "evil.npz", arrays)
    assert_refused(load_into_model(path), path, "Python objects")
    # a pickle stored as a raw member, not an .npy
    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as archive:
        archive.writestr("layers.0.W.pkl", b"\x80\x04\x95")
    assert_refused(load_into_model(tmp_path / "raw.npz"), tmp_path / "raw.npz", "not an .npy")
    # a bare pickle file
    import pickle
    (tmp_path / "bare.npz").write_bytes(pickle.dumps(Payload()))
    assert_refused(load_into_model(tmp_path / "bare.npz"), tmp_path / "bare.npz")
    assert_refused(load_into_adam(tmp_path / "bare.npz"), tmp_path / "bare.npz")
    assert "the payload ran" not in capsys.readouterr().out


def npy_with_header(shape, dtype="<f8", payload=b""):
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return b"\x93NUMPY\x01\x00"[:0] + buffer.getvalue() + payload


def test_a_lying_header_is_refused_before_any_allocation(tmp_path):
    """A member whose header claims 10**12 x 10**6 floats would ask numpy for exabytes; the
    reader compares the claim with the bytes stored first."""
    for label, shape in [("huge", (10 ** 12, 10 ** 6)), ("short", (4, 3)), ("long", (1,))]:
        arrays = snapshot_model(model(0))
        path = tmp_path / f"{label}.npz"
        write_npz(path, arrays)
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("layers.9.W.npy", npy_with_header(shape, payload=b"\0" * 16))
        assert_refused(load_into_model(path), path, "declares shape")


def test_a_duplicated_member_and_a_directory_member_are_refused(tmp_path):
    path = write_npz(tmp_path / "twice.npz", snapshot_model(model(0)))
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "a") as archive:
        archive.writestr("layers.0.b.npy", npy_with_header((4, 1), payload=b"\0" * 32))
    assert_refused(load_into_model(path), path, "twice")
    path = write_npz(tmp_path / "folder.npz", snapshot_model(model(0)))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("sub/", b"")
    assert_refused(load_into_model(path), path, "not an .npy")


def test_a_single_npy_is_refused(tmp_path):
    path = tmp_path / "one.npy"
    np.save(path, np.zeros(3))
    assert_refused(load_into_model(path), path, "single array")


def test_a_parameter_of_another_shape_is_a_file_error_and_a_shape_error(tmp_path):
    path = tmp_path / "wide.npz"
    model(0, sizes=(3, 5, 1)).save(path)
    error, before, after = load_into_model(path)
    assert isinstance(error, FileShapeError) and isinstance(error, ShapeError)
    assert same_arrays(before, after)


# --- malformed optimizer files ------------------------------------------------------------------

def adam_arrays(files, tmp_path):
    path = tmp_path / "adam.npz"
    path.write_bytes(files["adam"])
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


OPTIMIZER_SPOILS = [
    ("a shape of strings", "parameters.0.shape", np.array(["4", "x"]), "whole numbers"),
    ("a shape of floats", "parameters.0.shape", np.array([4.0, 3.5]), "whole numbers"),
    ("a negative shape", "parameters.0.shape", np.array([-4, 3]), "whole numbers"),
    ("a 2-d shape", "parameters.0.shape", np.array([[4, 3]]), "whole numbers"),
    ("steps as an array", "steps", np.array([2, 2]), "single value"),
    ("lr as an array", "hyperparameters.lr", np.array([0.1, 0.2]), "single value"),
    ("lr as text", "hyperparameters.lr", np.array("fast"), "learning rate"),
    ("a name as an array", "parameters.0.name", np.array([["a", "b"]]), "must be a string"),
    ("a name as a number", "parameters.0.name", np.array(3), "must be a string"),
    ("format as text", "format", np.array("one"), "format"),
    ("an unknown section", "momentum.0", np.array(1.0), "unexpected key"),
    ("an unknown field", "parameters.0.speed", np.array(1.0), "speed"),
    ("a position that is not a number", "parameters.x.m", np.zeros((4, 3)), "unexpected key"),
    ("a moment of strings", "parameters.0.m", np.full((4, 3), "a"), "not numbers"),
    ("a moment of another shape", "parameters.0.m", np.zeros((3, 4)), "shape"),
]


@pytest.mark.parametrize("label, key, value, what", OPTIMIZER_SPOILS,
                         ids=[row[0] for row in OPTIMIZER_SPOILS])
def test_a_malformed_optimizer_file_is_one_error_naming_the_fault(label, key, value, what, files,
                                                                  tmp_path):
    arrays = adam_arrays(files, tmp_path)
    arrays[key] = value
    path = write_npz(tmp_path / "spoiled.npz", arrays)
    assert_refused(load_into_adam(path), path, what)


def test_an_optimizer_file_missing_an_entry_is_refused(files, tmp_path):
    for key in ("steps", "parameters.1.shape", "hyperparameters.eps"):
        arrays = adam_arrays(files, tmp_path)
        del arrays[key]
        path = write_npz(tmp_path / "missing.npz", arrays)
        assert_refused(load_into_adam(path), path)


# --- paths that are not regular files -----------------------------------------------------------

def test_a_missing_file_is_a_missing_file_error(tmp_path):
    error, before, after = load_into_model(tmp_path / "absent.npz")
    assert isinstance(error, MissingFileError) and isinstance(error, FileNotFoundError)
    assert "no such file" in str(error) and same_arrays(before, after)


def test_a_directory_is_named_a_directory(tmp_path):
    assert_refused(load_into_model(tmp_path), tmp_path, "is a directory")
    assert_refused(load_into_adam(tmp_path), tmp_path, "is a directory")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero on this system")
def test_dev_zero_is_refused_as_a_device_without_reading_it():
    assert_refused(load_into_model("/dev/zero"), "/dev/zero", "a device")
    assert_refused(load_into_adam("/dev/zero"), "/dev/zero", "a device")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    """Opening a FIFO for reading blocks until someone writes; the reader must not hang."""
    path = tmp_path / "pipe.npz"
    os.mkfifo(path)
    assert_refused(load_into_model(path), path, "FIFO")
    assert_refused(load_into_adam(path), path, "FIFO")


def test_a_path_through_a_file_is_refused(tmp_path):
    """`model.npz/x` cannot be opened by anyone, root included (not a directory)."""
    (tmp_path / "model.npz").write_bytes(b"")
    path = tmp_path / "model.npz" / "x"
    assert_refused(load_into_model(path), path, "cannot open it")


def test_permission_denied_is_named(tmp_path, files, monkeypatch):
    path = tmp_path / "secret.npz"
    path.write_bytes(files["model"])
    os.chmod(path, 0)
    try:
        if os.access(path, os.R_OK):  # root reads anything: make open() say what it says to others
            real_open = os.open

            def denied(name, *args, **kwargs):
                if os.fspath(name) == os.fspath(path):
                    raise PermissionError(13, "Permission denied", os.fspath(name))
                return real_open(name, *args, **kwargs)

            monkeypatch.setattr(os, "open", denied)
        assert_refused(load_into_model(path), path, "permission denied")
    finally:
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_a_regular_file_that_cannot_be_read_is_refused():
    """/proc/self/mem is a regular file whose first bytes cannot be read (EIO), even as root."""
    try:
        with open("/proc/self/mem", "rb") as stream:
            stream.read(6)
    except OSError:
        pass
    else:
        pytest.skip("/proc/self/mem reads at offset 0 on this kernel")
    assert_refused(load_into_model("/proc/self/mem"), "/proc/self/mem", "cannot read it")


# --- non-finite parameters ----------------------------------------------------------------------

def test_nonfinite_parameters_are_refused_unless_allowed(tmp_path):
    source = model(0)
    W = source.layers[0].W.data.copy()
    W[0, 0], W[1, 1], W[2, 2] = np.nan, np.inf, np.nan
    source.layers[0].W.data = W
    b = source.layers[1].b.data.copy()
    b[0, 0] = -np.inf
    source.layers[1].b.data = b
    path = tmp_path / "nan.npz"
    source.save(path)
    error, before, after = load_into_model(path)
    assert error is not None and same_arrays(before, after)
    assert "layers.0.W (W[1]) has 2 nan and 1 inf of its 12 entries" in str(error)
    assert "layers.1.b (b[2]) has 1 inf of its 1 entries" in str(error)
    assert "allow_nonfinite=True" in str(error)
    target = model(1).load(path, allow_nonfinite=True)
    assert np.isnan(target.layers[0].W.data[0, 0]) and target.layers[1].b.data[0, 0] == -np.inf
    with pytest.raises(ValueError, match=r"load_state_dict: non-finite parameters: layers\.0\.W"):
        model(1).load_state_dict(snapshot_model(source))
    model(1).load_state_dict(snapshot_model(source), allow_nonfinite=True)


def test_a_value_that_overflows_the_parameter_dtype_is_refused_as_inf(tmp_path):
    source = nn.Linear(2, 1)
    path = tmp_path / "big.npz"
    np.savez(path, **{name: np.full(p.shape, 1e300) for name, p in source.named_parameters()})
    target = nn.Linear(2, 1)
    for parameter in target.parameters():
        parameter.data = parameter.data.astype(np.float32)
    before = snapshot_model(target)
    with np.errstate(over="ignore"), pytest.raises(BadFileError, match="inf"):
        target.load(path)
    assert same_arrays(before, snapshot_model(target))


def test_an_optimizer_file_given_to_model_load_says_so(files, tmp_path):
    """It listed every optimizer key as 'unexpected'; the optimizer side already said the
    opposite mix-up in words."""
    path = tmp_path / "adam.npz"
    path.write_bytes(files["adam"])
    assert_refused(load_into_model(path), path, "an optimizer state written by Optimizer.save, "
                                                "not parameters: load it with optimizer.load")


# --- every kind of state file: one reader, one validator ----------------------------------------

def state_files(tmp_path):
    """(name, save, load-and-snapshot) for a model with Dropout, an optimizer, a schedule, a
    shuffler: each loader returns a snapshot of what the file would change."""
    from autograd_lite import train
    net = nn.Sequential(nn.Linear(3, 2, rng=np.random.default_rng(0)), nn.Dropout(0.5, rng=1))
    optimizer = optim.SGD(net, lr=0.1, momentum=0.9)
    schedule = optim.StepLR(optimizer, 2)
    shuffler = train.Shuffler(4)
    return [("model", net, lambda: (snapshot_model(net), net[1].rng.bit_generator.state)),
            ("optimizer", optimizer, lambda: flat_state(optimizer)),
            ("schedule", schedule, lambda: (schedule.last_epoch, schedule.base_lr, optimizer.lr)),
            ("shuffler", shuffler, lambda: shuffler.generator.bit_generator.state)]


@pytest.mark.parametrize("kind", ["model", "optimizer", "schedule", "shuffler"])
def test_every_state_file_refuses_truncation_and_spoiled_values_changing_nothing(kind, tmp_path):
    name, thing, snapshot = next(entry for entry in state_files(tmp_path) if entry[0] == kind)
    path = tmp_path / f"{kind}.npz"
    thing.save(path)
    data = path.read_bytes()
    before = snapshot()
    bad = tmp_path / "bad.npz"
    for length in range(0, len(data), max(1, len(data) // 40)):
        bad.write_bytes(data[:length])
        with pytest.raises(BadFileError) as caught:
            thing.load(bad)
        assert caught.value.path == os.fspath(bad) and os.fspath(bad) in str(caught.value)
        assert snapshot() == before if kind != "model" else same_model(snapshot(), before)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    for key, value in arrays.items():   # every entry in turn replaced by text: refused, named
        spoiled = dict(arrays, **{key: np.array("x")})
        np.savez(bad, **spoiled)
        with pytest.raises(BadFileError, match=r"is unchanged$") as caught:
            thing.load(bad)
        assert os.fspath(bad) in str(caught.value), key
        assert snapshot() == before if kind != "model" else same_model(snapshot(), before)


def same_model(a, b):
    return same_arrays(a[0], b[0]) and a[1] == b[1]

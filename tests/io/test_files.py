"""autograd_lite.io.write_atomically: parameters, optimizer state and pictures are written
whole or not at all, as ordinary files (not private to the writer)."""
import os
import stat

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite.io import WriteError, check_writable, write_atomically
from autograd_lite.train import History


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def usual_umask():
    """The modes below are those of the usual umask 022; a test may set another."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_file_is_an_ordinary_file_with_the_whole_content(tmp_path):
    path = tmp_path / "out.bin"
    write_atomically(path, lambda stream: stream.write(b"abc"))
    assert path.read_bytes() == b"abc"
    assert mode(path) == 0o644  # not mkstemp's 0600
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    write_atomically(path, lambda stream: stream.write(b"new"))
    assert path.read_bytes() == b"new" and mode(path) == 0o640


def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def half_then_fail(stream):
        stream.write(b"ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_model_and_optimizer_files_are_ordinary_files(tmp_path):
    model = ag.nn.MLP([3, 4, 1], ["sigmoid", "identity"])
    optimizer = ag.optim.Adam(model.parameters())
    model.save(tmp_path / "model.npz")
    optimizer.save(tmp_path / "optimizer.npz")
    assert mode(tmp_path / "model.npz") == 0o644
    assert mode(tmp_path / "optimizer.npz") == 0o644
    assert sorted(os.listdir(tmp_path)) == ["model.npz", "optimizer.npz"]
    with np.load(tmp_path / "model.npz", allow_pickle=False) as archive:
        assert len(archive.files) == 4  # W[1], b[1], W[2], b[2]


# --- failures are one line about the file asked for -------------------------------------------

def test_a_missing_folder_is_one_line_naming_the_folder_not_a_temporary_file(tmp_path):
    path = tmp_path / "no" / "such" / "out.bin"
    for attempt in (lambda: write_atomically(path, lambda stream: stream.write(b"x")),
                    lambda: check_writable(path)):
        with pytest.raises(WriteError) as caught:
            attempt()
        message = str(caught.value)
        assert message == f"cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist"
        assert isinstance(caught.value, OSError) and ".tmp" not in message
    assert os.listdir(tmp_path) == []


def test_an_unwritable_folder_never_names_the_temporary_file(tmp_path, monkeypatch):
    """The OS error of mkstemp carries the temporary name ('.out.bin.6f7jf2zt.tmp'); the
    message names the file asked for. (Root writes anywhere, so mkstemp is made to fail.)"""
    import tempfile

    def denied(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", os.path.join(dir, ".out.bin.6f7jf2zt.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    path = tmp_path / "out.bin"
    for attempt in (lambda: write_atomically(path, lambda stream: stream.write(b"x")),
                    lambda: check_writable(path)):
        with pytest.raises(WriteError, match=r"cannot write '.*out\.bin': permission denied") as caught:
            attempt()
        assert "6f7jf2zt" not in str(caught.value) and caught.value.errno == 13


def test_an_error_while_writing_names_the_target(tmp_path):
    path = tmp_path / "out.bin"

    def full(stream):
        raise OSError(28, "No space left on device", str(tmp_path / ".out.bin.abc.tmp"))

    with pytest.raises(WriteError, match=r"cannot write '.*out\.bin': no space left on the device"):
        write_atomically(path, full)
    assert os.listdir(tmp_path) == []


def special_files(tmp_path):
    """A directory, a FIFO and (as root) a character device, all made inside tmp_path: a
    regression must never get to replace a real device such as /dev/null."""
    made = [(tmp_path / "folder", "a directory")]
    made[0][0].mkdir()
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe")
        made.append((tmp_path / "pipe", "a FIFO"))
    try:
        os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        made.append((tmp_path / "null", "a device"))
    except (AttributeError, OSError):  # not root, or no mknod here: the FIFO stands in
        pass
    return made


def test_a_device_fifo_or_directory_is_never_replaced(tmp_path):
    """`train --save /dev/null` as root replaced the device by a regular file (os.replace
    over it); a directory at the path was an IsADirectoryError naming the temporary file."""
    for path, kind in special_files(tmp_path):
        before = os.stat(path).st_mode
        with pytest.raises(WriteError, match=f"it is {kind}.*, not a regular file; refusing"):
            write_atomically(path, lambda stream: stream.write(b"x"))
        with pytest.raises(WriteError, match=f"it is {kind}"):
            check_writable(path)
        assert os.stat(path).st_mode == before
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no temporary


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_a_symbolic_link_is_followed_and_kept(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    os.symlink(real, link)
    write_atomically(link, lambda stream: stream.write(b"new"))
    assert os.path.islink(link) and real.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["link.bin", "real.bin"]


def test_check_writable_leaves_nothing_behind(tmp_path):
    assert check_writable(tmp_path / "out.bin") == os.path.realpath(tmp_path / "out.bin")
    assert os.listdir(tmp_path) == []


def test_the_loss_plot_is_an_ordinary_file_written_atomically(tmp_path, monkeypatch):
    """History.plot made its file with mkstemp and kept mode 0600; it now goes through
    write_atomically (0644, no temporary left when drawing fails)."""
    pytest.importorskip("matplotlib")
    history = History()
    for epoch in range(1, 4):
        history.record(epoch, 1.0 / epoch, {})
    history.plot(tmp_path / "loss.png")
    assert mode(tmp_path / "loss.png") == 0o644
    from matplotlib.figure import Figure

    def broken(self, stream, **kwargs):
        stream.write(b"half")
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(Figure, "savefig", broken)
    old = (tmp_path / "loss.png").read_bytes()
    with pytest.raises(RuntimeError, match="renderer failed"):
        history.plot(tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes() == old
    assert os.listdir(tmp_path) == ["loss.png"]


def test_the_loss_plot_refuses_a_missing_folder_and_an_unknown_suffix_before_drawing(tmp_path):
    pytest.importorskip("matplotlib")
    history = History()
    history.record(1, 0.5, {})
    with pytest.raises(WriteError, match=r"cannot write '.*loss\.png': the folder '.*nowhere' "
                                         r"does not exist"):
        history.plot(tmp_path / "nowhere" / "loss.png")
    with pytest.raises(ValueError, match=r"History\.plot: cannot tell the format of '.*loss\.xyz'"):
        history.plot(tmp_path / "loss.xyz")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("umask, expected", [(0o077, 0o600), (0o002, 0o664), (0o022, 0o644)])
def test_a_new_file_gets_the_mode_open_would_give(umask, expected, tmp_path):
    """A fixed 0644 ignored a private umask (077) and a group-writable one (002)."""
    os.umask(umask)
    write_atomically(tmp_path / "out.bin", lambda stream: stream.write(b"x"))
    with open(tmp_path / "plain.bin", "w"):
        pass
    assert mode(tmp_path / "out.bin") == expected == mode(tmp_path / "plain.bin")

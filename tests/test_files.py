"""autograd_lite.files.write_atomically: parameters, optimizer state and pictures are written
whole or not at all, as ordinary files (not private to the writer)."""
import os
import stat

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite.files import write_atomically


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


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

"""A save path that names a folder (it ends in a separator) or goes through a dangling symbolic
link is refused in one line naming the path, before anything is written."""
import os

import numpy as np
import pytest

from autograd_lite import nn, optim
from autograd_lite.io import WriteError, check_writable


def model():
    return nn.MLP([3, 2, 1], rng=np.random.default_rng(0))


@pytest.mark.parametrize("save", [lambda path: model().save(path),
                                  lambda path: optim.SGD(model(), lr=0.1).save(path),
                                  check_writable])
def test_a_path_ending_in_a_separator_is_refused(save, tmp_path):
    for path in (f"{tmp_path}/checkpoints{os.sep}", f"{tmp_path}{os.sep}"):
        with pytest.raises(WriteError, match="ends in a separator, so it names a folder") as caught:
            save(path)
        assert repr(path) in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(os.listdir(tmp_path)) == []   # no file named `checkpoints`


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_a_dangling_link_is_named_not_reported_as_a_missing_folder(tmp_path):
    link = tmp_path / "latest.npz"
    os.symlink(tmp_path / "gone" / "model.npz", link)
    with pytest.raises(WriteError, match=r"latest\.npz' is a symbolic link to '.*gone.model\.npz', "
                                         r"which does not exist \(a dangling link\)"):
        model().save(link)
    folder_link = tmp_path / "runs"
    os.symlink(tmp_path / "deleted", folder_link)
    with pytest.raises(WriteError, match=r"runs' is a symbolic link to .*deleted'.*dangling"):
        model().save(folder_link / "model.npz")
    assert sorted(os.listdir(tmp_path)) == ["latest.npz", "runs"]
    # a dangling link into an existing folder is followed: the file is made where it points
    inside = tmp_path / "into.npz"
    os.symlink(tmp_path / "made.npz", inside)
    model().save(inside)
    assert os.path.isfile(tmp_path / "made.npz") and os.path.islink(inside)

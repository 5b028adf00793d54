"""Saving and loading parameters: bit-exact round trip, atomic writes, and every bad load
failing with the parameter and both shapes named while the model stays as it was."""
import os

import numpy as np
import pytest

from autograd_lite import nn
from autograd_lite.errors import ShapeError


def model(seed=0, sizes=(3, 4, 1)):
    return nn.MLP(list(sizes), ["tanh", "sigmoid"], rng=np.random.default_rng(seed))


def snapshot(module):
    return {name: p.data.copy() for name, p in module.named_parameters()}


def assert_unchanged(module, before):
    after = snapshot(module)
    assert after.keys() == before.keys()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])


def test_round_trip_is_bit_exact_and_keyed_by_dotted_name(tmp_path):
    path = tmp_path / "model.npz"
    source = model(0)
    source.save(path)
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]
    target = model(1)
    assert target.load(path) is target
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        assert a.data.tobytes() == b.data.tobytes(), name
        assert b.data is not a.data
    X = np.random.default_rng(2).standard_normal((3, 5))
    np.testing.assert_array_equal(source(X).data, target(X).data)
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]   # no temporary file left behind


def test_state_dict_round_trip_copies():
    source, target = model(0), model(1)
    state = source.state_dict()
    state["layers.0.W"][0, 0] = 123.0          # a copy: the model is not changed through it
    assert source.layers[0].W.data[0, 0] != 123.0
    target.load_state_dict(state)
    assert target.layers[0].W.data[0, 0] == 123.0


def test_a_crash_while_writing_leaves_the_old_file_in_place(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    model(0).save(path)
    old_bytes = path.read_bytes()

    def crash(stream, **arrays):
        stream.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        model(1).save(path)
    assert path.read_bytes() == old_bytes
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_loading_another_shape_names_the_parameter_and_both_shapes(tmp_path):
    path = tmp_path / "wide.npz"
    model(0, sizes=(3, 5, 1)).save(path)
    target = model(1)
    before = snapshot(target)
    with pytest.raises(ShapeError, match=r"layers\.0\.W \(W\[1\]\) has shape \(4, 3\) in the model "
                                         r"but \(5, 3\) in the saved state; the model is unchanged"):
        target.load(path)
    assert_unchanged(target, before)


def test_missing_and_unexpected_names_are_listed(tmp_path):
    path = tmp_path / "deep.npz"
    nn.MLP([3, 4, 4, 1], rng=np.random.default_rng(0)).save(path)
    target = model(1)
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"unexpected layers\.2\.W, layers\.2\.b"):
        target.load(path)
    assert_unchanged(target, before)
    deeper = nn.MLP([3, 4, 4, 1], rng=np.random.default_rng(1))
    before = snapshot(deeper)
    with pytest.raises(ValueError, match=r"missing layers\.2\.W, layers\.2\.b"):
        deeper.load(_saved(tmp_path, model(2)))
    assert_unchanged(deeper, before)


def _saved(tmp_path, module):
    path = tmp_path / "small.npz"
    module.save(path)
    return path


def test_a_pickled_object_array_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    arrays = snapshot(model(0))
    arrays["layers.0.W"] = np.array([object()] * 12, dtype=object).reshape(4, 3)
    np.savez(path, **arrays)            # numpy pickles object arrays when saving
    target = model(1)
    before = snapshot(target)
    with pytest.raises(ValueError, match="not a parameter file"):
        target.load(path)
    assert_unchanged(target, before)


def test_non_numeric_arrays_are_refused(tmp_path):
    path = tmp_path / "text.npz"
    arrays = snapshot(model(0))
    arrays["layers.1.b"] = np.array([["x"]])
    np.savez(path, **arrays)
    target = model(1)
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"layers\.1\.b holds dtype <U1, not numbers"):
        target.load(path)
    assert_unchanged(target, before)


def test_missing_file_garbage_file_and_single_array(tmp_path):
    target = model(1)
    before = snapshot(target)
    with pytest.raises(FileNotFoundError, match=r"absent\.npz.: no such file; the model is unchanged"):
        target.load(tmp_path / "absent.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="not a parameter file"):
        target.load(garbage)
    single = tmp_path / "one.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        target.load(single)
    assert_unchanged(target, before)

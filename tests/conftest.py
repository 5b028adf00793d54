"""Shared test set-up.

Releasing recorded values (``autograd_lite.release``) must never change a value, a gradient
or a picture, and it is on in every test, so the whole suite checks that. Each test starts and
ends with an empty queue of candidates, so one test's leftovers are never released in
another's.
"""
import os
import pathlib

import pytest

from autograd_lite import release

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The programs the tests start (`python -m autograd_lite ...`, scripts/make_pictures.py) import
# this checkout's autograd_lite, as the tests do, not another copy that happens to be installed
# (a machine with an older checkout installed ran the old code in those tests).
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


@pytest.fixture(autouse=True)
def empty_release_queue():
    release.release_waiting()
    assert release.state.releasing and not release.state.keeping
    yield
    release.release_waiting()

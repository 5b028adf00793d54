"""Shared test set-up.

Releasing recorded values (``autograd_lite.release``) must never change a value, a gradient
or a picture, and it is on in every test, so the whole suite checks that. Each test starts and
ends with an empty queue of candidates, so one test's leftovers are never released in
another's.
"""
import pytest

from autograd_lite import release


@pytest.fixture(autouse=True)
def empty_release_queue():
    release.release_waiting()
    assert release.state.releasing and not release.state.keeping
    yield
    release.release_waiting()

"""Shared test set-up.

Every test runs with the engine releasing values at every size (``release.state.min_bytes``
= 0 instead of the default 1 KiB): the arrays in tests are small, and releasing must never
change a value, a gradient or a picture, so the whole suite checks that. Tests of the default
threshold set it themselves.
"""
import pytest

from autograd_lite import release


@pytest.fixture(autouse=True)
def release_every_size():
    release.release_waiting()
    previous = release.state.min_bytes
    release.state.min_bytes = 0
    try:
        yield
    finally:
        release.state.min_bytes = previous
        release.release_waiting()

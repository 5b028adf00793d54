"""The sentinel's warnings point at the user's line and speak for numpy's anonymous ones."""
import warnings

import numpy as np

import autograd_lite as ag
from autograd_lite import check


def test_sentinel_warnings_point_at_the_users_line_and_silence_numpys_noise():
    W = ag.Tensor([[50.0, 0.0, 0.0]], requires_grad=True, name="W[1]")
    X = ag.Tensor(np.ones((3, 4)), name="X")
    Y = np.array([[0.0, 1.0, 0.0, 1.0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with check.sentinel(action="warn"):
            A = (W @ X).named("Z[1]").sigmoid().named("A[1]")
            ag.binary_cross_entropy(A, Y).backward()
    assert caught, "a saturated sigmoid must be reported"
    assert all(w.filename == __file__ for w in caught), [w.filename for w in caught]
    assert not [w for w in caught if w.category is RuntimeWarning], "numpy's own warnings leaked"
    assert any("sigmoid('Z[1]')" in str(w.message) for w in caught)


def test_numpy_error_state_is_restored_after_the_sentinel():
    before = np.geterr()
    with check.sentinel(action="record"):
        assert np.geterr()["invalid"] == "ignore"
    assert np.geterr() == before

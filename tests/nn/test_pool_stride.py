"""Pooling's stride defaults to the kernel on each axis (PyTorch's rule), and a stride may be a
pair (rows, columns); the windows and the gradient follow it."""
import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import nn
from autograd_lite.nn import conv


def images(shape=(2, 4, 6, 3), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def windows_reference(x, kernel, stride, reduce):
    C, H, W, m = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.empty((C, Ho, Wo, m))
    for i in range(Ho):
        for j in range(Wo):
            out[:, i, j, :] = reduce(x[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :], axis=(1, 2))
    return out


@pytest.mark.parametrize("pool, reduce", [(conv.max_pool2d, np.max), (conv.avg_pool2d, np.mean)])
@pytest.mark.parametrize("kernel, stride, expected_stride", [
    ((1, 2), None, (1, 2)), ((2, 1), None, (2, 1)), ((2, 3), None, (2, 3)), (2, None, (2, 2)),
    ((1, 2), (1, 1), (1, 1)), ((2, 2), (1, 2), (1, 2)), ((2, 2), 1, (1, 1))])
def test_the_stride_defaults_to_the_kernel_per_axis(pool, reduce, kernel, stride, expected_stride):
    x = images()
    pair = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    out = pool(x, kernel, stride)
    np.testing.assert_allclose(out.data, windows_reference(x, pair, expected_stride, reduce),
                               rtol=1e-15, atol=0)


def test_a_1_by_2_max_pool_halves_the_columns_only():
    x = ag.Tensor(images(), requires_grad=True)
    out = nn.MaxPool2d((1, 2))(x)
    assert out.shape == (2, 4, 3, 3)
    out.sum().backward()
    assert x.grad.sum() == out.size                # each window's maximum gets one 1
    np.testing.assert_array_equal(x.grad.reshape(2, 4, 3, 2, 3).sum(axis=3), np.ones((2, 4, 3, 3)))


def test_a_stride_pair_is_checked():
    with pytest.raises(ValueError, match=r"max_pool2d: stride must be a whole number >= 1 or a pair"):
        conv.max_pool2d(images(), (1, 2), stride=(1, 0))

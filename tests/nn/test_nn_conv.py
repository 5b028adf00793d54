"""Convolution and pooling on C x H x W x m images (autograd_lite/nn/conv.py): im2col/col2im
are adjoint, conv2d and the pools agree with loops written from the definition, and their
gradients match central finite differences over hypothesis shapes with stride and padding, to
second order; an error test for each refusal."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import autograd_lite as ag
from autograd_lite import nn
from autograd_lite.nn import conv
from gradcheck_util import FAST, assert_close, check_gradients
from second_order_util import check_hvp

T = ag.Tensor


@st.composite
def geometry(draw, max_side=5):
    """Images (C, H, W, m), a kernel, a stride and a padding under which the window fits."""
    C, m = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    H, W = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    assume(H + 2 * padding >= kh and W + 2 * padding >= kw)
    return (C, H, W, m), (kh, kw), stride, padding


def reference_conv(x, W, b, stride, padding):
    """Eq 33 for every window, written with loops over the output pixels."""
    F, C, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    Ho = (xp.shape[1] - kh) // stride + 1
    Wo = (xp.shape[2] - kw) // stride + 1
    Z = np.zeros((F, Ho, Wo, x.shape[3]))
    for i in range(Ho):
        for j in range(Wo):
            window = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            Z[:, i, j, :] = np.einsum("fcpq,cpqm->fm", W, window)
    return Z + (0 if b is None else b)


def reference_pool(x, kernel, stride, padding, reduce, pad_value):
    (kh, kw), (sh, sw) = kernel, stride
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)), constant_values=pad_value)
    Ho = (xp.shape[1] - kh) // sh + 1
    Wo = (xp.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], Ho, Wo, x.shape[3]))
    for i in range(Ho):
        for j in range(Wo):
            out[:, i, j, :] = reduce(xp[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :], axis=(1, 2))
    return out


@FAST
@given(case=geometry(), data=st.data())
def test_im2col_and_col2im_are_adjoint_and_match_finite_differences(case, data):
    shape, kernel, stride, padding = case
    rng = np.random.default_rng(data.draw(st.integers(0, 99), label="seed"))
    x = rng.standard_normal(shape)
    cols = conv.im2col(T(x), kernel, stride, padding)
    y = rng.standard_normal(cols.shape)
    back = conv.COL2IM.forward(y, input_shape=shape, kernel=kernel, stride=stride, padding=padding)
    assert_close(np.sum(cols.data * y), np.sum(x * back), "<im2col x, y> = <x, col2im y>", 1e-12, 1e-12)
    check_gradients(lambda t: conv.im2col(t, kernel, stride, padding), x)
    check_gradients(lambda t: conv.COL2IM(t, input_shape=shape, kernel=kernel, stride=stride,
                                          padding=padding), y)


@FAST
@given(case=geometry(), data=st.data())
def test_conv2d_matches_the_definition_and_finite_differences(case, data):
    (C, H, W, m), (kh, kw), stride, padding = case
    F = data.draw(st.integers(1, 3), label="F")
    rng = np.random.default_rng(data.draw(st.integers(0, 99), label="seed"))
    x, K, b = rng.standard_normal((C, H, W, m)), rng.standard_normal((F, C, kh, kw)), rng.standard_normal((F, 1, 1, 1))
    with ag.no_grad():
        got = conv.conv2d(T(x), T(K), T(b), stride, padding).data
    assert_close(got, reference_conv(x, K, b, stride, padding), "conv2d", 1e-12, 1e-12)
    wants = data.draw(st.sampled_from([(True, True, True), (True, False, False), (False, True, True)]))
    check_gradients(lambda t, k, c: conv.conv2d(t, k, c, stride, padding), x, K, b, wants=wants)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), (1, 1)])
def test_conv2d_second_order_in_images_kernels_and_mixed(stride, padding):
    rng = np.random.default_rng(4)
    x, K = rng.standard_normal((2, 4, 5, 2)), rng.standard_normal((3, 2, 3, 2))
    check_hvp(lambda t: (conv.conv2d(t, K, None, stride, padding) ** 2).sum(), x, rng.standard_normal(x.shape))
    check_hvp(lambda k: (conv.conv2d(x, k, None, stride, padding).tanh()).sum(), K, rng.standard_normal(K.shape))
    # d/dK <d/dx J, v> against differences in K of the first-order d/dx (im2col <-> col2im)
    v = rng.standard_normal(x.shape)
    J = lambda t, k: (conv.conv2d(t, k, None, stride, padding) ** 2).sum()   # noqa: E731
    mixed = ag.grad(lambda k: (ag.grad(J)(T(x), k) * v).sum())(T(K))

    def dx_along_v(K_value):
        leaf = T(x, requires_grad=True)
        J(leaf, T(K_value)).backward()
        return float(np.sum(leaf.grad * v))
    expected = np.zeros_like(K)
    for index in np.ndindex(*K.shape):
        step = np.zeros_like(K)
        step[index] = 1e-5
        expected[index] = (dx_along_v(K + step) - dx_along_v(K - step)) / 2e-5
    assert_close(mixed.data, expected, "mixed", 1e-5, 1e-6)


@pytest.mark.parametrize("pool, reduce, pad_value", [
    (conv.max_pool2d, np.max, -np.inf), (conv.avg_pool2d, np.mean, 0.0)])
@FAST
@given(case=geometry(), data=st.data())
def test_pools_match_the_definition_and_finite_differences(pool, reduce, pad_value, case, data):
    shape, kernel, _, _ = case
    stride = data.draw(st.sampled_from([None, 1, 2]), label="stride")
    padding = data.draw(st.integers(0, min(kernel) // 2), label="padding")
    effective = tuple(kernel) if stride is None else (stride, stride)   # PyTorch: the kernel, per axis
    assume(shape[1] + 2 * padding >= kernel[0] and shape[2] + 2 * padding >= kernel[1])
    size = int(np.prod(shape))
    order = data.draw(st.permutations(range(size)), label="order")   # distinct values: no ties
    x = (np.array(order, dtype=np.float64) * 0.3 - size * 0.2).reshape(shape)
    with ag.no_grad():
        got = pool(T(x), kernel, stride, padding).data
    assert_close(got, reference_pool(x, kernel, effective, padding, reduce, pad_value), "pool", 1e-12, 1e-12)
    check_gradients(lambda t: pool(t, kernel, stride, padding), x)


def test_pools_second_order():
    rng = np.random.default_rng(5)
    x = rng.permutation(2 * 4 * 4 * 2).reshape(2, 4, 4, 2) * 0.1
    for pool in (conv.max_pool2d, conv.avg_pool2d):
        check_hvp(lambda t: (pool(t * t, 2, 1, 1) ** 2).sum(), x, rng.standard_normal(x.shape) * 0.01)


def test_max_pool_splits_ties_and_sums_over_overlapping_windows():
    x = T(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [2.0, 0.0, 0.0]]).reshape(1, 3, 3, 1), requires_grad=True)
    conv.max_pool2d(x, 2, stride=1).sum().backward()
    # windows: top-left {1,1,0,1} -> 1/3 to each of three 1s; top-right {1,0,1,0} -> 1/2 each;
    # bottom-left {0,1,2,0} -> 2; bottom-right {1,0,0,0} -> the centre 1
    expected = [[1 / 3, 1 / 3 + 1 / 2, 0], [0, 1 / 3 + 1 / 2 + 1, 0], [1, 0, 0]]
    assert_close(x.grad.reshape(3, 3), expected, rtol=1e-15, atol=1e-15)


def test_max_pool_padding_is_minus_infinity_and_avg_pool_counts_zeros():
    x = -np.ones((1, 2, 2, 1))
    assert np.all(conv.max_pool2d(x, 2, stride=1, padding=1).data == -1.0)
    np.testing.assert_array_equal(conv.avg_pool2d(x, 2, stride=2, padding=1).data.ravel(), [-0.25] * 4)


def test_conv2d_module_flatten_and_unflatten():
    rng = np.random.default_rng(6)
    layer = nn.Conv2d(3, 5, (3, 2), stride=2, padding=1, rng=rng)
    assert [name for name, _ in layer.named_parameters()] == ["W", "b"]
    assert layer.W.shape == (5, 3, 3, 2) and layer.b.shape == (5, 1, 1, 1)
    assert 0.5 < np.std(layer.W.data) / np.sqrt(2 / 18) < 1.5          # He: n_in = C·kh·kw
    x = rng.standard_normal((3, 6, 5, 4))
    Z = layer(x)
    assert_close(Z.data, reference_conv(x, layer.W.data, layer.b.data, 2, 1), rtol=1e-12, atol=1e-12)
    flat = nn.Flatten()(Z)
    assert flat.shape == (5 * Z.shape[1] * Z.shape[2], 4)
    for j in range(4):                                   # column j is sample j, C-H-W order
        np.testing.assert_array_equal(flat.data[:, j], Z.data[..., j].ravel())
    images = nn.Unflatten((5, Z.shape[1], Z.shape[2]))(flat)
    np.testing.assert_array_equal(images.data, Z.data)
    assert "stride=2, padding=1" in repr(layer)


def test_a_small_cnn_trains():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((1, 6, 6, 16))
    y = (X[0, :3].sum(axis=(0, 1)) > X[0, 3:].sum(axis=(0, 1))).astype(np.int64)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(36, 2, rng=rng))
    optimizer = ag.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        J = ag.softmax_cross_entropy(model(X), y)
        optimizer.zero_grad()
        J.backward()
        optimizer.step()
        losses.append(J.item())
    assert losses[-1] < 0.2 * losses[0]


@pytest.mark.parametrize("call, error, words", [
    (lambda: conv.conv2d(np.ones((2, 4, 4, 1)), np.ones((3, 1, 3, 3))), ag.ShapeError, "conv2d: images have 2 channels"),
    (lambda: conv.conv2d(np.ones((1, 4, 4, 1)), np.ones((3, 3, 3))), ag.ShapeError, "conv2d: kernels W must be F x C x kh x kw"),
    (lambda: conv.conv2d(np.ones((1, 4, 4, 1)), np.ones((3, 1, 3, 3)), np.ones((3, 1))), ag.ShapeError, "conv2d: bias b must have shape (3, 1, 1, 1)"),
    (lambda: conv.conv2d(np.ones((4, 4, 1)), np.ones((3, 1, 3, 3))), ag.ShapeError, "conv2d: images must be C x H x W x m"),
    (lambda: conv.conv2d(np.ones((1, 2, 4, 1)), np.ones((3, 1, 3, 3))), ag.ShapeError, "conv2d: a 3 x 3 window does not fit images of 2 x 4 pixels with padding 0"),
    (lambda: conv.conv2d(np.ones((1, 4, 4, 1)), np.ones((3, 1, 3, 3)), stride=0), ValueError, "conv2d: stride must be a whole number >= 1"),
    (lambda: conv.conv2d(np.ones((1, 4, 4, 1)), np.ones((3, 1, 3, 3)), padding=-1), ValueError, "conv2d: padding must be a whole number >= 0"),
    (lambda: conv.max_pool2d(np.ones((1, 4, 4, 1)), 2, padding=2), ValueError, "max_pool2d: padding 2 must be at most half the kernel size"),
    (lambda: conv.avg_pool2d(np.ones((1, 4, 4, 1)), (2, 2, 2)), ValueError, "avg_pool2d: kernel_size must be a whole number >= 1 or a pair"),
    (lambda: conv.max_pool2d(np.ones((1, 1, 4, 1)), 2), ag.ShapeError, "max_pool2d: a 2 x 2 window does not fit"),
    (lambda: nn.Flatten()(np.ones(3)), ag.ShapeError, "Flatten: input must have a samples axis last"),
    (lambda: nn.Unflatten((1, 8, 8))(np.ones((63, 2))), ag.ShapeError, "Unflatten(1, 8, 8): input must be (64, m), got shape (63, 2)"),
    (lambda: conv.COL2IM.forward(np.ones((1, 2, 2, 2, 2, 1)), input_shape=(1, 4, 4, 1), kernel=(2, 2), stride=1, padding=0),
     ag.ShapeError, "col2im: windows of shape (1, 2, 2, 2, 2, 1) do not come from images (1, 4, 4, 1)"),
    (lambda: nn.Conv2d(0, 3, 3), ValueError, "Conv2d: in_channels must be a whole number >= 1"),
])
def test_each_refusal_names_the_op(call, error, words):
    with pytest.raises(error) as caught:
        call()
    assert words in str(caught.value)

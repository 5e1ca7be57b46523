"""nn.Conv (NCHW, "same" padding) against a direct NumPy convolution."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest


def conv_reference(x, w, b, stride):
    """NCHW ``x``, ``(k, k, in, out)`` ``w``, zero padding ``k // 2``: loops over output pixels."""
    n, _, h, wd = x.shape
    k, p = w.shape[0], w.shape[0] // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    oh, ow = (h + 2 * p - k) // stride + 1, (wd + 2 * p - k) // stride + 1
    out = np.zeros((n, w.shape[3], oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride : i * stride + k, j * stride : j * stride + k]  # (n, in, k, k)
            out[:, :, i, j] = np.einsum("ncij,ijco->no", patch, w)
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


def test_conv_init_draws(needle_device):
    np.random.seed(5)
    conv = nn.Conv(3, 4, 3, device=needle_device)
    np.random.seed(5)
    fan_in = 3 * 3 * 3
    bound = np.sqrt(2) * np.sqrt(3 / fan_in)
    w = np.random.rand(3, 3, 3, 4) * 2 * bound - bound
    bb = 1 / np.sqrt(fan_in)
    b = np.random.rand(4) * 2 * bb - bb
    assert conv.weight.shape == (3, 3, 3, 4) and conv.bias.shape == (4,)
    np.testing.assert_allclose(conv.weight.numpy(), w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(conv.bias.numpy(), b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("k,stride,bias", [(3, 1, True), (3, 2, True), (5, 1, False), (1, 1, True), (4, 2, True)])
def test_conv_forward_matches_numpy(needle_device, k, stride, bias):
    np.random.seed(0)
    conv = nn.Conv(2, 3, k, stride=stride, bias=bias, device=needle_device)
    x = np.random.randn(2, 2, 7, 6).astype("float32")
    out = conv(ndl.Tensor(x, device=needle_device)).numpy()
    expected = conv_reference(x.astype(np.float64), conv.weight.numpy().astype(np.float64),
                              None if conv.bias is None else conv.bias.numpy(), stride)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)

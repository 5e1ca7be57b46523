"""BatchNorm1d/2d and LayerNorm1d against the documented NumPy formulas."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np


def _t(dev, a):
    return ndl.Tensor(np.asarray(a, dtype="float32"), device=dev)


def test_batchnorm1d_init(needle_device):
    bn = nn.BatchNorm1d(4, device=needle_device)
    np.testing.assert_array_equal(bn.weight.numpy(), np.ones(4))
    np.testing.assert_array_equal(bn.bias.numpy(), np.zeros(4))
    np.testing.assert_array_equal(bn.running_mean.numpy(), np.zeros(4))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(4))
    assert [p.shape for p in bn.parameters()] == [(4,), (4,)]  # running stats are buffers, not Parameters


def test_batchnorm1d_training_running_stats_and_eval(needle_device):
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(3, eps=1e-5, momentum=0.2, device=needle_device)
    w, b = rng.standard_normal(3).astype("float32"), rng.standard_normal(3).astype("float32")
    bn.weight.data = _t(needle_device, w)
    bn.bias.data = _t(needle_device, b)
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(3):
        x = rng.standard_normal((8, 3)).astype("float32") * 2 + 1
        out = bn(_t(needle_device, x)).numpy()
        mean, var = x.mean(axis=0), x.var(axis=0)  # biased variance
        np.testing.assert_allclose(out, w * (x - mean) / np.sqrt(var + 1e-5) + b, rtol=1e-4, atol=1e-5)
        rm, rv = 0.8 * rm + 0.2 * mean, 0.8 * rv + 0.2 * var
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-5, atol=1e-6)
    assert bn.running_mean.dtype == "float32" and not bn.running_mean.requires_grad
    bn.eval()
    x = rng.standard_normal((5, 3)).astype("float32")
    np.testing.assert_allclose(bn(_t(needle_device, x)).numpy(), w * (x - rm) / np.sqrt(rv + 1e-5) + b,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-5, atol=1e-6)  # eval leaves stats alone


def test_batchnorm1d_float64_input_keeps_float32_stats(needle_device):
    bn = nn.BatchNorm1d(2, device=needle_device)
    bn(ndl.Tensor(np.random.randn(4, 2), device=needle_device))
    assert bn.running_mean.dtype == "float32" and bn.running_var.dtype == "float32"


def test_batchnorm2d_per_channel(needle_device):
    rng = np.random.default_rng(1)
    bn = nn.BatchNorm2d(3, momentum=0.1, device=needle_device)
    x = rng.standard_normal((2, 3, 4, 5)).astype("float32")
    out = bn(_t(needle_device, x)).numpy()
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mean.ravel(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * var.ravel(), rtol=1e-5, atol=1e-6)
    bn.eval()
    np.testing.assert_allclose(bn(_t(needle_device, x)).numpy(),
                               (x - 0.1 * mean) / np.sqrt(0.9 + 0.1 * var + 1e-5), rtol=1e-4, atol=1e-5)


def test_layernorm1d(needle_device):
    rng = np.random.default_rng(2)
    ln = nn.LayerNorm1d(6, eps=1e-5, device=needle_device)
    w, b = rng.standard_normal(6).astype("float32"), rng.standard_normal(6).astype("float32")
    ln.weight.data = _t(needle_device, w)
    ln.bias.data = _t(needle_device, b)
    x = rng.standard_normal((4, 6)).astype("float32") * 3
    mean, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    np.testing.assert_allclose(ln(_t(needle_device, x)).numpy(), w * (x - mean) / np.sqrt(var + 1e-5) + b,
                               rtol=1e-4, atol=1e-5)

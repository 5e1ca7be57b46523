"""BatchNorm2d on cpu_numpy with float64 input (the device tests are needle_nn.testing.test_nn_norm)."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np


def test_batchnorm2d_float64_input_on_numpy():
    dev = ndl.cpu_numpy()
    bn = nn.BatchNorm2d(2, device=dev)
    x = np.random.default_rng(6).standard_normal((3, 2, 2, 2))
    tx = ndl.Tensor(x, device=dev)
    out = bn(tx)
    assert out.dtype == "float64" and bn.running_var.dtype == "float32"
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(out.numpy(), (x - mean) / np.sqrt(var + 1e-5), rtol=1e-10, atol=1e-12)
    out.sum().backward()
    assert tx.grad.dtype == "float64"
    np.testing.assert_allclose(tx.grad.numpy(), 0.0, atol=1e-9)  # Σ of a normalised slice is constant

"""BatchNorm through the optional ``batchnorm_forward`` kernel: taken for the layouts it
reads without a copy (a Conv's NCHW output over NHWC memory, a compact (batch, dim)),
and the same values, running statistics and gradients as the composition."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest
from needle_core import backend_ndarray as nd


def _run(dev, layer, x, g):
    """Output, input/weight/bias gradients and running statistics of one training step."""
    t = ndl.Tensor(x, device=dev, requires_grad=True)
    out = layer(t)
    out.backward(ndl.Tensor(g, device=dev))
    return [out.numpy(), t.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy(),
            layer.running_mean.numpy(), layer.running_var.numpy()]  # fmt: skip


@pytest.mark.parametrize("layout", ["conv_nchw_over_nhwc", "batch_dim"])
def test_batchnorm_kernel_path_matches_composition(needle_device, layout):
    if needle_device.batchnorm_forward is None:
        pytest.skip(f"{needle_device} has no batchnorm_forward kernel")
    rng = np.random.default_rng(0)
    if layout == "conv_nchw_over_nhwc":
        nhwc = rng.standard_normal((4, 5, 3, 6)).astype(np.float32) * 2 + 3
        x, make = nhwc, lambda: nn.BatchNorm2d(6, device=needle_device)

        def as_input(t):  # what nn.Conv hands to the BatchNorm after it: an NCHW view of NHWC data
            return t.transpose((2, 3)).transpose((1, 2))
    else:
        x, make = rng.standard_normal((9, 5)).astype(np.float32) + 1, lambda: nn.BatchNorm1d(5, device=needle_device)

        def as_input(t):
            return t

    g = rng.standard_normal(as_input(ndl.Tensor(x, device=needle_device)).shape).astype(np.float32)
    calls = []
    kernel = needle_device.batchnorm_forward
    try:
        needle_device.__dict__["batchnorm_forward"] = lambda *args: (calls.append(1), kernel(*args))[1]
        fused = _run(needle_device, _Stacked(as_input, make()), x, g)
    finally:
        needle_device.__dict__["batchnorm_forward"] = kernel
    assert calls == [1], "the kernel was not used for this layout"
    with nd.optional_kernels_disabled(needle_device):
        plain = _run(needle_device, _Stacked(as_input, make()), x, g)
    for got, want in zip(fused, plain, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


class _Stacked(nn.Module):
    """``norm(as_input(x))``, exposing the norm's parameters and buffers."""

    def __init__(self, as_input, norm) -> None:
        super().__init__()
        self.as_input, self.norm = as_input, norm

    def forward(self, x):
        return self.norm(self.as_input(x))

    def __getattr__(self, name):
        if name in ("weight", "bias", "running_mean", "running_var"):
            return getattr(self.norm, name)
        return super().__getattr__(name)


def test_batchnorm_kernel_skips_layouts_needing_a_copy(needle_device):
    """An NCHW-compact input has channels in the middle of memory: the composition runs."""
    if needle_device.batchnorm_forward is None:
        pytest.skip(f"{needle_device} has no batchnorm_forward kernel")
    kernel = needle_device.batchnorm_forward
    calls = []
    try:
        needle_device.__dict__["batchnorm_forward"] = lambda *args: (calls.append(1), kernel(*args))[1]
        x = np.random.default_rng(1).standard_normal((2, 3, 4, 4)).astype(np.float32)
        out = nn.BatchNorm2d(3, device=needle_device)(ndl.Tensor(x, device=needle_device)).numpy()
    finally:
        needle_device.__dict__["batchnorm_forward"] = kernel
    assert calls == []
    mean, var = x.mean((0, 2, 3), keepdims=True), x.var((0, 2, 3), keepdims=True)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)

"""BatchNorm's gradient through the optional ``batchnorm_backward`` kernel: the same
input, weight and bias gradients as the composition, second derivatives included (the
fused node's own gradient differentiates the composition)."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest
from needle_core import backend_ndarray as nd


def _nchw_view_of_nhwc(t):  # what nn.Conv hands to the BatchNorm after it
    return t.transpose((2, 3)).transpose((1, 2))


CASES = {
    # name: (input shape as stored, layer, view the layer sees)
    "batchnorm1d": ((70, 5), lambda dev: nn.BatchNorm1d(5, device=dev), lambda t: t),
    "batchnorm2d_conv_layout": ((3, 5, 4, 6), lambda dev: nn.BatchNorm2d(6, device=dev), _nchw_view_of_nhwc),
    "batchnorm2d_nchw": ((3, 6, 4, 5), lambda dev: nn.BatchNorm2d(6, device=dev), lambda t: t),
}


def _gradients(dev, case: str, seed: int = 0) -> list[np.ndarray]:
    """First derivatives of ``L = <bn(x)², g>`` in x, weight, bias, then those of
    ``<∂L/∂x, v> + <∂L/∂weight, u> + <∂L/∂bias, u²>`` (second derivatives) in x and weight."""
    shape, make, view = CASES[case]
    rng = np.random.default_rng(seed)
    x = ndl.Tensor(rng.standard_normal(shape).astype(np.float32) * 2 + 3, device=dev, requires_grad=True)
    layer = make(dev)
    layer.weight.data = ndl.Tensor(rng.standard_normal(layer.weight.shape).astype(np.float32), device=dev)
    out = layer(view(x))
    g = ndl.Tensor(rng.standard_normal(out.shape).astype(np.float32), device=dev)
    (out * out * g).sum().backward()  # a non-linear loss: g's adjoint depends on x too
    first = [x.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy()]
    v = ndl.Tensor(rng.standard_normal(shape).astype(np.float32), device=dev)
    u = ndl.Tensor(rng.standard_normal(layer.weight.shape).astype(np.float32), device=dev)
    ((x.grad * v).sum() + (layer.weight.grad * u).sum() + (layer.bias.grad * u * u).sum()).backward()
    return first + [x.grad.numpy(), layer.weight.grad.numpy()]


def _counting(dev, name: str, calls: list[int]):
    kernel = getattr(dev, name)
    dev.__dict__[name] = lambda *args: (calls.append(1), kernel(*args))[1]
    return kernel


@pytest.mark.parametrize("case", sorted(CASES))
def test_batchnorm_gradients_match_with_and_without_the_kernel(needle_device, case):
    if needle_device.batchnorm_backward is None:
        pytest.skip(f"{needle_device} has no batchnorm_backward kernel")
    calls: list[int] = []
    kernel = _counting(needle_device, "batchnorm_backward", calls)
    try:
        fused = _gradients(needle_device, case)
    finally:
        needle_device.__dict__["batchnorm_backward"] = kernel
    # channels innermost (a kernel-made x̂, or a compact (batch, dim)): one kernel call in each
    # backward (the second differentiates out·out·g, whose adjoint reaches bn's output again);
    # an NCHW-compact x̂ would need a copy, so the composition runs
    assert len(calls) == (0 if case == "batchnorm2d_nchw" else 2)
    with nd.optional_kernels_disabled(needle_device):
        plain = _gradients(needle_device, case)
    names = ["dx", "dweight", "dbias", "d2x", "d2weight"]
    for name, got, want in zip(names, fused, plain, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=name)


def test_batchnorm_second_derivative_matches_finite_differences(needle_device):
    """``d/dx <∂L/∂x, v>`` through the fused node against central differences of the
    first derivative (float64 where the device holds it)."""
    if needle_device.batchnorm_backward is None:
        pytest.skip(f"{needle_device} has no batchnorm_backward kernel")
    dtype = "float64" if "float64" in needle_device.dtypes else "float32"
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal((8, 3)) + 1
    g = rng.standard_normal((8, 3))
    v = rng.standard_normal((8, 3))
    layer = nn.BatchNorm1d(3, device=needle_device, dtype=dtype)

    def first(x_np):
        x = ndl.Tensor(x_np, device=needle_device, dtype=dtype, requires_grad=True)
        out = layer(x)
        (out * out * ndl.Tensor(g, device=needle_device, dtype=dtype)).sum().backward()
        return x

    x = first(x0)
    (x.grad * ndl.Tensor(v, device=needle_device, dtype=dtype)).sum().backward()
    analytic = x.grad.numpy()
    h = 1e-5 if dtype == "float64" else 1e-2
    numeric = np.zeros_like(x0)
    for i in np.ndindex(x0.shape):
        up, down = x0.copy(), x0.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = ((first(up).grad.numpy() - first(down).grad.numpy()) * v).sum() / (2 * h)
    tol = 1e-5 if dtype == "float64" else 5e-2
    np.testing.assert_allclose(analytic, numeric, rtol=tol, atol=tol)

"""nn basics against NumPy formulas: init draws, forward numerics, containers, errors."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest

from needle_nn.testing.support import assert_linear_course_init


def _t(dev, a, **kw):
    return ndl.Tensor(np.asarray(a, dtype="float32"), device=dev, **kw)


def test_linear_init_draws_course_order(needle_device):
    np.random.seed(7)
    layer = nn.Linear(6, 4, device=needle_device)
    assert layer.weight.shape == (6, 4) and layer.bias.shape == (1, 4)
    assert_linear_course_init(layer, 7)
    assert layer.weight.dtype == "float32" and isinstance(layer.weight, nn.Parameter)


def test_linear_forward_and_no_bias(needle_device):
    np.random.seed(0)
    layer = nn.Linear(3, 5, device=needle_device)
    x = np.random.randn(4, 3).astype("float32")
    out = layer(_t(needle_device, x)).numpy()
    np.testing.assert_allclose(out, x @ layer.weight.numpy() + layer.bias.numpy(), rtol=1e-5, atol=1e-6)
    plain = nn.Linear(3, 5, bias=False, device=needle_device)
    assert plain.bias is None and len(plain.parameters()) == 1
    np.testing.assert_allclose(plain(_t(needle_device, x)).numpy(), x @ plain.weight.numpy(), rtol=1e-5, atol=1e-6)


def test_linear_bias_assigned_with_course_shape(needle_device):
    # course code assigns a (out,) tensor to the (1, out) bias through .data
    layer = nn.Linear(2, 3, device=needle_device)
    layer.bias.data = _t(needle_device, [1.0, 2.0, 3.0])
    out = layer(_t(needle_device, np.zeros((2, 2)))).numpy()
    np.testing.assert_allclose(out, [[1, 2, 3], [1, 2, 3]])


def test_activations_flatten_identity(needle_device):
    x = np.random.randn(3, 2, 2).astype("float32")
    t = _t(needle_device, x)
    np.testing.assert_allclose(nn.ReLU()(t).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(nn.Tanh()(t).numpy(), np.tanh(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nn.Sigmoid()(t).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nn.Flatten()(t).numpy(), x.reshape(3, 4))
    assert nn.Identity()(t) is t


def test_sequential_and_residual(needle_device):
    np.random.seed(1)
    a, b = nn.Linear(4, 4, device=needle_device), nn.Linear(4, 2, device=needle_device)
    model = nn.Sequential(nn.Residual(nn.Sequential(a, nn.ReLU())), b)
    assert isinstance(model.modules, tuple) and len(model.modules) == 2
    x = np.random.randn(5, 4).astype("float32")
    h = np.maximum(x @ a.weight.numpy() + a.bias.numpy(), 0) + x
    expected = h @ b.weight.numpy() + b.bias.numpy()
    np.testing.assert_allclose(model(_t(needle_device, x)).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_softmax_loss_matches_numpy(needle_device):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 5)).astype("float32") * 3
    y = rng.integers(0, 5, 6)
    loss = nn.SoftmaxLoss()(_t(needle_device, z), ndl.Tensor(y, device=needle_device))
    zmax = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
    expected = np.mean(lse - z[np.arange(6), y])
    assert loss.shape == () or loss.shape == (1,) or np.asarray(loss.numpy()).size == 1
    np.testing.assert_allclose(float(loss.numpy()), expected, rtol=1e-5)


@pytest.mark.parametrize("bad", [-1, 5, 7])
def test_softmax_loss_rejects_labels_outside_the_classes(needle_device, bad):
    z = _t(needle_device, np.zeros((3, 5), "float32"))
    with pytest.raises(ValueError, match=rf"SoftmaxLoss.*label {bad} .*\[0, 5\)"):
        nn.SoftmaxLoss()(z, ndl.Tensor(np.array([0, bad, 4]), device=needle_device))


def test_dropout_scaling_and_mask_draw(needle_device):
    x = np.random.randn(20, 30).astype("float32")
    drop = nn.Dropout(p=0.3)
    np.random.seed(11)
    out = drop(_t(needle_device, x)).numpy()
    np.random.seed(11)
    mask = np.random.rand(20, 30) <= 0.7  # randb(*shape, p=1-p)
    np.testing.assert_allclose(out, x * mask / 0.7, rtol=1e-6, atol=1e-6)
    drop.eval()
    np.testing.assert_allclose(drop(_t(needle_device, x)).numpy(), x)


def test_parameters_found_through_lists_tuples_dicts(needle_device):
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(2, 2, device=needle_device), (nn.Linear(2, 3, bias=False, device=needle_device),)]
            self.named = {"head": nn.Linear(3, 1, device=needle_device)}
            self.raw = nn.Parameter(ndl.Tensor(np.ones((2,), dtype="float32"), device=needle_device))

    h = Holder()
    shapes = [p.shape for p in h.parameters()]
    assert shapes == [(2, 2), (1, 2), (2, 3), (3, 1), (1, 1), (2,)]
    names = [n for n, _ in h.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.1.0.weight", "named.head.weight",
                     "named.head.bias", "raw"]


def test_tied_parameter_listed_once(needle_device):
    shared = nn.Linear(3, 3, device=needle_device)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(model.parameters()) == 2


def test_float64_input_keeps_float32_parameters(needle_device):
    layer = nn.Linear(3, 2, device=needle_device)
    x = ndl.Tensor(np.random.randn(4, 3), device=needle_device)  # float64 where the device holds it
    opt = ndl.optim.Adam(layer.parameters(), lr=0.1)
    layer(x).sum().backward()
    opt.step()
    assert layer.weight.dtype == "float32" and layer.bias.dtype == "float32"
    assert opt.m[layer.weight].dtype == "float32"

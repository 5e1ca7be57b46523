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


# --- training-mode norms as one graph node: adjoints and second derivatives ----------

def _norm_cases(dev):
    """(module, input shape, reduced axes, axes weight is broadcast on, param broadcast shape)."""
    return [
        (nn.BatchNorm1d(4, device=dev), (6, 4), (0,), (0,), (1, 4)),
        (nn.BatchNorm2d(3, device=dev), (2, 3, 2, 3), (0, 2, 3), (0, 2, 3), (1, 3, 1, 1)),
        (nn.LayerNorm1d(5, device=dev), (3, 5), (1,), (0,), (1, 5)),
    ]


def _np_norm_grads(x, w, g, axes, paxes, pshape, eps=1e-5):
    """Reference adjoints of ``w*x̂ + b`` (float64 NumPy, textbook formulas)."""
    mean = x.mean(axis=axes, keepdims=True)
    s = 1.0 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    xhat = (x - mean) * s
    gw = g * w.reshape(pshape)
    dx = s * (gw - gw.mean(axis=axes, keepdims=True) - xhat * (gw * xhat).mean(axis=axes, keepdims=True))
    return dx, (g * xhat).sum(axis=paxes), g.sum(axis=paxes)


def test_norm_training_adjoints_match_numpy(needle_device):
    rng = np.random.default_rng(3)
    for bn, shape, axes, paxes, pshape in _norm_cases(needle_device):
        x = rng.standard_normal(shape) * 2 + 0.5
        w = rng.standard_normal(shape[1 if "Batch" in type(bn).__name__ else -1])
        g = rng.standard_normal(shape)
        bn.weight.data = _t(needle_device, w)
        tx = ndl.Tensor(x.astype("float32"), device=needle_device, requires_grad=True)
        bn(tx).backward(_t(needle_device, g))
        dx, dw, db = _np_norm_grads(x.astype("float32").astype("float64"), w.astype("float32"), g, axes, paxes,
                                    pshape)
        np.testing.assert_allclose(tx.grad.numpy(), dx, rtol=1e-3, atol=1e-4, err_msg=type(bn).__name__)
        np.testing.assert_allclose(bn.weight.grad.numpy(), dw, rtol=1e-3, atol=1e-4, err_msg=type(bn).__name__)
        np.testing.assert_allclose(bn.bias.grad.numpy(), db, rtol=1e-3, atol=1e-4, err_msg=type(bn).__name__)


def test_norm_training_second_derivatives(needle_device):
    """d/dx and d/dweight of ``Σ dx·V + Σ dweight·U`` (first adjoints for out_grad G) against
    central differences of the NumPy reference adjoints in float64."""
    rng = np.random.default_rng(4)
    for bn, shape, axes, paxes, pshape in _norm_cases(needle_device):
        x = (rng.standard_normal(shape) * 2 + 0.5).astype("float32").astype("float64")
        w = rng.standard_normal(bn.dim).astype("float32").astype("float64")
        g, v = rng.standard_normal(shape), rng.standard_normal(shape)
        u = rng.standard_normal(bn.dim)

        def loss2(x_, w_, g=g, v=v, u=u, axes=axes, paxes=paxes, pshape=pshape):
            dx, dw, _ = _np_norm_grads(x_, w_, g, axes, paxes, pshape)
            return (dx * v).sum() + (dw * u).sum()

        h = 1e-6
        ref_x = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[i] = h
            ref_x[i] = (loss2(x + e, w) - loss2(x - e, w)) / (2 * h)
        ref_w = np.zeros_like(w)
        for i in range(w.size):
            e = np.zeros_like(w)
            e[i] = h
            ref_w[i] = (loss2(x, w + e) - loss2(x, w - e)) / (2 * h)

        bn.weight.data = _t(needle_device, w)
        tx = ndl.Tensor(x.astype("float32"), device=needle_device, requires_grad=True)
        bn(tx).backward(_t(needle_device, g))
        gx, gw = tx.grad, bn.weight.grad
        assert gx.requires_grad and gw.requires_grad  # adjoints are differentiable graphs
        ((gx * _t(needle_device, v)).sum() + (gw * _t(needle_device, u)).sum()).backward()
        name = type(bn).__name__
        np.testing.assert_allclose(tx.grad.numpy(), ref_x, rtol=2e-3, atol=2e-3, err_msg=name)
        np.testing.assert_allclose(bn.weight.grad.numpy(), ref_w, rtol=2e-3, atol=2e-3, err_msg=name)


def test_batchnorm_training_is_one_graph_node(needle_device):
    bn = nn.BatchNorm1d(3, device=needle_device)
    x = ndl.Tensor(np.random.default_rng(5).standard_normal((4, 3)).astype("float32"), device=needle_device)
    out = bn(x)
    assert set(out.inputs) == {x, bn.weight, bn.bias}



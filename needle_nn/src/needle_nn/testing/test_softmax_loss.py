"""SoftmaxLoss picks each row's target logit by a row lookup (no (n, k) one-hot matrix),
and agrees with the one-hot product it replaced, in value and gradient."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest
from needle_nn.nn.modules import basic


def _loss_and_grad(device, logits, labels):
    x = ndl.Tensor(logits, device=device)
    loss = nn.SoftmaxLoss()(x, ndl.Tensor(labels, device=device, requires_grad=False))
    loss.backward()
    return loss.numpy(), x.grad.numpy()


def test_row_lookup_matches_the_one_hot_product_and_numpy(needle_device, monkeypatch):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 11)).astype(np.float32) * 3
    labels = np.array([0, 10, 3, 3, 7, 0])
    lookup = _loss_and_grad(needle_device, logits, labels)
    monkeypatch.setattr(basic, "_EXACT_FLOAT_INT", {})  # every size takes the one-hot path
    one_hot = _loss_and_grad(needle_device, logits, labels)
    m = logits.max(axis=1, keepdims=True)
    p = np.exp(logits - m) / np.exp(logits - m).sum(axis=1, keepdims=True)
    want = np.mean(np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0] - logits[np.arange(6), labels])
    want_grad = (p - np.eye(11)[labels]) / 6
    for loss, grad in (lookup, one_hot):
        np.testing.assert_allclose(loss, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("labels", [[0, 3], [-1, 0], [0.5, 1]], ids=["too-big", "negative", "fraction"])
def test_labels_outside_the_classes_are_an_error(needle_device, labels):
    logits = ndl.Tensor(np.zeros((2, 3), np.float32), device=needle_device)
    with pytest.raises(ValueError, match=r"SoftmaxLoss: label .* is not a class number in \[0, 3\)"):
        nn.SoftmaxLoss()(logits, ndl.Tensor(np.array(labels, np.float32), device=needle_device))


def _ops_in_graph(loss) -> set[str]:
    return {type(node.op).__name__ for node in ndl.autograd.find_topo_sort([loss]) if node.op is not None}


def test_fused_kernels_give_the_composed_loss_and_gradient(needle_device, monkeypatch):
    if not (needle_device.has_kernel("softmax_cross_entropy")
            and needle_device.has_kernel("softmax_cross_entropy_backward")):
        pytest.skip(f"{needle_device} has no softmax_cross_entropy kernels")
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((9, 37)) * 20).astype(np.float32)  # 37: SIMD bodies and tails
    logits[2, 5] = 300.0  # exp(300) overflows float32 unless shifted by the max
    labels = np.array([0, 36, 5, 5, 17, 0, 1, 2, 30])
    x = ndl.Tensor(logits, device=needle_device)
    loss = nn.SoftmaxLoss()(x, ndl.Tensor(labels, device=needle_device, requires_grad=False))
    assert "SoftmaxCrossEntropy" in _ops_in_graph(loss)  # the fused node, not the composition
    loss.backward()
    fused = loss.numpy(), x.grad.numpy()
    monkeypatch.setattr(needle_device, "softmax_cross_entropy", None)
    monkeypatch.setattr(needle_device, "softmax_cross_entropy_backward", None)
    x = ndl.Tensor(logits, device=needle_device)
    loss = nn.SoftmaxLoss()(x, ndl.Tensor(labels, device=needle_device, requires_grad=False))
    assert "SoftmaxCrossEntropy" not in _ops_in_graph(loss)
    loss.backward()
    np.testing.assert_allclose(fused[0], loss.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fused[1], x.grad.numpy(), rtol=1e-5, atol=1e-7)

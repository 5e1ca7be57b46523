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

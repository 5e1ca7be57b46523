"""Gradient checks for every nn module: autograd against central differences.

Each check compares the analytic directional derivative ``<grad f, v>`` with
``(f(θ + εv) - f(θ - εv)) / 2ε`` for a random direction ``v`` over all inputs and
parameters at once, where ``f = sum(module(x) * R)`` for a fixed random ``R``. This
is robust in float32, the one dtype every backend holds.
"""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest


def _scalarise(out, rng):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    flat = []
    for o in outs:
        flat.extend(o if isinstance(o, (tuple, list)) else (o,))
    total = None
    for o in flat:
        weights = ndl.Tensor(rng.standard_normal(o.shape).astype("float32"), device=o.device, requires_grad=False)
        term = (o * weights).sum()
        total = term if total is None else total + term
    return total


def gradcheck(forward, tensors, eps=1e-2, rtol=2e-2, seed=0):
    """``forward()`` -> Tensor(s); ``tensors`` are the leaves to differentiate."""
    def f():
        np.random.seed(seed)  # Dropout and friends draw the same masks every call
        return _scalarise(forward(), np.random.default_rng(1))

    for t in tensors:
        t.grad = None
    f().backward()
    rng = np.random.default_rng(2)
    directions = [rng.standard_normal(t.shape) for t in tensors]
    pairs = zip(tensors, directions, strict=True)
    analytic = sum(float((t.grad.numpy().astype(np.float64) * v).sum()) for t, v in pairs)
    originals = [t.numpy().astype(np.float64) for t in tensors]

    def shifted(sign):
        for t, x, v in zip(tensors, originals, directions, strict=True):
            t.data = ndl.Tensor((x + sign * eps * v).astype(t.dtype), device=t.device, dtype=t.dtype)
        return float(f().numpy())

    numeric = (shifted(+1) - shifted(-1)) / (2 * eps)
    for t, x in zip(tensors, originals, strict=True):
        t.data = ndl.Tensor(x.astype(t.dtype), device=t.device, dtype=t.dtype)
    assert abs(analytic - numeric) <= rtol * max(1.0, abs(numeric)), (analytic, numeric)


def _input(dev, *shape, low=-1.0, high=1.0):
    return ndl.Tensor(np.random.uniform(low, high, shape).astype("float32"), device=dev)


MODULES = {
    "Linear": (lambda d: nn.Linear(5, 4, device=d), (3, 5)),
    "Linear-nobias": (lambda d: nn.Linear(5, 4, bias=False, device=d), (3, 5)),
    "ReLU": (lambda d: nn.ReLU(), (4, 6)),  # a small step keeps clear of the kink at 0
    "Tanh": (lambda d: nn.Tanh(), (4, 6)),
    "Sigmoid": (lambda d: nn.Sigmoid(), (4, 6)),
    "Identity": (lambda d: nn.Identity(), (2, 3)),
    "Flatten": (lambda d: nn.Flatten(), (2, 3, 2, 2)),
    "Sequential": (lambda d: nn.Sequential(nn.Linear(4, 6, device=d), nn.Tanh(), nn.Linear(6, 2, device=d)), (3, 4)),
    "Residual": (lambda d: nn.Residual(nn.Sequential(nn.Linear(4, 4, device=d), nn.Tanh())), (3, 4)),
    "BatchNorm1d": (lambda d: nn.BatchNorm1d(5, device=d), (6, 5)),
    "BatchNorm2d": (lambda d: nn.BatchNorm2d(3, device=d), (2, 3, 4, 4)),
    "LayerNorm1d": (lambda d: nn.LayerNorm1d(5, device=d), (4, 5)),
    "Dropout": (lambda d: nn.Dropout(0.3), (5, 6)),
    "Conv": (lambda d: nn.Conv(2, 3, 3, device=d), (2, 2, 5, 5)),
    "Conv-stride2": (lambda d: nn.Conv(2, 3, 3, stride=2, device=d), (1, 2, 6, 6)),
    "RNNCell": (lambda d: nn.RNNCell(3, 4, device=d), (2, 3)),
    "RNNCell-relu": (lambda d: nn.RNNCell(3, 4, nonlinearity="relu", device=d), (2, 3)),
    "LSTMCell": (lambda d: nn.LSTMCell(3, 4, device=d), (2, 3)),
    "RNN": (lambda d: nn.RNN(3, 4, num_layers=2, device=d), (4, 2, 3)),
    "LSTM": (lambda d: nn.LSTM(3, 4, num_layers=2, device=d), (4, 2, 3)),
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_gradients(needle_device, name):
    np.random.seed(3)
    build, shape = MODULES[name]
    module = build(needle_device)
    x = _input(needle_device, *shape)
    gradcheck(lambda: module(x), [x, *module.parameters()], eps=1e-3 if "ReLU" in name or "relu" in name else 1e-2)


def test_softmax_loss_gradient(needle_device):
    np.random.seed(0)
    logits = _input(needle_device, 5, 4, low=-2, high=2)
    y = ndl.Tensor(np.array([0, 3, 1, 1, 2]), device=needle_device, requires_grad=False)
    gradcheck(lambda: nn.SoftmaxLoss()(logits, y), [logits])


def test_embedding_gradient(needle_device):
    np.random.seed(0)
    emb = nn.Embedding(7, 3, device=needle_device)
    idx = ndl.Tensor(np.array([[0, 6], [2, 2], [5, 1]]), device=needle_device, requires_grad=False)
    gradcheck(lambda: emb(idx), emb.parameters())


def test_rnn_with_initial_state_gradient(needle_device):
    np.random.seed(0)
    rnn = nn.LSTM(3, 4, num_layers=2, device=needle_device)
    x, h0, c0 = _input(needle_device, 3, 2, 3), _input(needle_device, 2, 2, 4), _input(needle_device, 2, 2, 4)
    gradcheck(lambda: rnn(x, (h0, c0)), [x, h0, c0, *rnn.parameters()])

"""The training run behind the equality check, shared by the MPI worker and the test's
one-process reference: 20 steps of a model whose result cannot depend on how a batch is
split (no BatchNorm, no Dropout: LayerNorm normalises each sample alone).

SGD with momentum is the strict check. Adam is reported too, but it divides each
gradient element by its own magnitude (plus eps=1e-8): where an element's gradient is
~1e-8, float32 summation-order noise in it moves that weight by a sizable part of lr.
"""

from __future__ import annotations

import needle as ndl
import numpy as np
from needle.data import DataLoader, NDArrayDataset

SAMPLES, FEATURES, BATCH, STEPS = 1000, 64, 100, 20  # 20 steps = 2 epochs, so the order is reshuffled once


def make_model(device):
    nn = ndl.nn
    return nn.Sequential(nn.Linear(FEATURES, 48, device=device), nn.LayerNorm1d(48, device=device), nn.ReLU(),
                         nn.Linear(48, 48, device=device), nn.ReLU(), nn.Linear(48, 10, device=device))


def dataset():
    rng = np.random.default_rng(123)
    X = rng.standard_normal((SAMPLES, FEATURES)).astype(np.float32)
    y = (X[:, :10].argmax(axis=1)).astype(np.float32)
    return NDArrayDataset(X, y)


def make_optimizer(name: str, params):
    if name == "adam":
        return ndl.optim.Adam(params, lr=1e-2, weight_decay=1e-3)
    return ndl.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-3)


def train(device_name: str, sampler=None, wrap=None, steps: int = STEPS, optimizer: str = "sgd"
          ) -> dict[str, np.ndarray]:
    """Seed 0, build, train ``steps`` steps; ``wrap(model, opt) -> (model, opt)`` makes it distributed."""
    device = ndl.device(device_name)
    np.random.seed(0)
    model = make_model(device)
    opt = make_optimizer(optimizer, model.parameters())
    if wrap is not None:
        model, opt = wrap(model, opt)
    loader = DataLoader(dataset(), BATCH, shuffle=True, device=device, sampler=sampler)
    loss_fn = ndl.nn.SoftmaxLoss()
    done = 0
    while done < steps:
        for X, y in loader:
            opt.reset_grad()
            loss_fn(model(X), y).backward()
            opt.step()
            done += 1
            if done == steps:
                break
    return {name: p.numpy() for name, p in model.named_parameters()}

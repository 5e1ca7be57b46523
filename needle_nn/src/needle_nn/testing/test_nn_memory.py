"""Training builds no lasting graph: live Tensors and process memory stay flat."""

from __future__ import annotations

import gc

import needle as ndl
import needle.nn as nn
import numpy as np
from needle import autograd
from needle.apps.mlp_resnet import MLPResNet


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_tensor_count_and_memory_flat_over_300_steps(needle_device):
    np.random.seed(0)
    model = MLPResNet(32, 16, num_blocks=2, device=needle_device)
    opt = ndl.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.SoftmaxLoss()
    X = np.random.randn(20, 32).astype("float32")
    y = np.random.randint(0, 10, 20)

    def step():
        x = ndl.Tensor(X, device=needle_device, requires_grad=False)
        t = ndl.Tensor(y, device=needle_device, requires_grad=False)
        opt.reset_grad()
        loss = loss_fn(model(x), t)
        loss.backward()
        opt.step()
        return float(loss.numpy())

    for _ in range(20):  # warm up: optimiser state, caches, allocator pools
        step()
    counts, rss = [], []
    gc.collect()
    gc.disable()  # a step's graph must be freed by reference counting alone: no cycles
    try:
        for i in range(300):
            step()
            if i % 50 == 49:
                counts.append(autograd.TENSOR_COUNTER)
                rss.append(_rss_bytes())
        assert gc.collect() == 0, "a training step left objects in reference cycles"
    finally:
        gc.enable()
    assert max(counts) - min(counts) <= 0, counts
    assert rss[-1] - rss[0] < 8 * 2**20, rss  # no growth beyond allocator noise

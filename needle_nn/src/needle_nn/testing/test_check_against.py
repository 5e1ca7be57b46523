"""ndl.check_against on this device: a small training run agrees with cpu_numpy and leaves nothing patched."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np
from needle_core import autograd


def _train(dev, steps: int = 2) -> None:
    np.random.seed(1)
    model = nn.Sequential(nn.Linear(6, 8, device=dev), nn.BatchNorm1d(8, device=dev), nn.ReLU(),
                          nn.Linear(8, 3, device=dev))
    opt = ndl.optim.Adam(model.parameters(), lr=0.01)
    X = ndl.Tensor(np.random.randn(5, 6).astype("float32"), device=dev, requires_grad=False)
    y = ndl.Tensor(np.array([0, 1, 2, 1, 0], dtype="float32"), device=dev, requires_grad=False)
    for _ in range(steps):
        opt.reset_grad()
        loss = nn.SoftmaxLoss()(model(X), y)
        loss.backward()
        opt.step()


def test_every_backend_agrees_with_the_reference(needle_device, tmp_path):
    with ndl.check_against("cpu_numpy", report_dir=tmp_path) as checker:
        _train(needle_device)
    if needle_device.name == "cpu_numpy":
        assert checker.ops_checked == 0  # nothing to compare against itself
    else:
        # two steps of forward, loss and backward: dozens of ops (fewer as ops get fused)
        assert checker.ops_checked > 30 and checker.kernels_checked > 0
    assert not list(tmp_path.iterdir())


def test_off_means_the_plain_hot_path(needle_device):
    """Outside the block nothing stays patched: ops and kernels are the original objects."""
    make = autograd.Value.__dict__["make_from_op"]
    kernels = {n: needle_device.__dict__[n] for n in ("ewise_add", "matmul", "to_numpy")}
    with ndl.check_against("cpu_numpy"), ndl.profile():
        assert autograd.Value.__dict__["make_from_op"] is not make
        _train(needle_device, steps=1)
    assert autograd.Value.__dict__["make_from_op"] is make
    assert autograd.Op.__dict__["gradient_as_tuple"].__module__ == "needle_core.autograd"
    assert {n: needle_device.__dict__[n] for n in kernels} == kernels


def test_state_kept_by_ops_is_not_disturbed_by_the_reference_run(needle_device):
    """BatchNorm's op keeps its statistics for backward: the reference run uses a copy of the op."""
    with ndl.check_against("cpu_numpy"):
        _train(needle_device, steps=1)  # raised "operands are on different devices" before the fix

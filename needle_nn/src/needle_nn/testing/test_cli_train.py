"""``needle train`` learns on this device from the MNIST images shipped with needle_nn."""

from __future__ import annotations

import re

from needle_nn.testing.support import run_train, shipped_mnist_or_skip, validation_accuracy


def test_short_run_on_shipped_data_learns(needle_device, capsys):
    shipped_mnist_or_skip()
    out = run_train(capsys, "--device", needle_device.name, "--limit-train", "3000", "--epochs", "2", "--lr", "0.003",
                    "--no-progress")
    assert "shipped MNIST" in out and "3000 train / 2000 validation" in out
    assert len(re.findall(r"^epoch +\d/2: train loss", out, re.M)) == 2
    assert validation_accuracy(out) >= 0.85

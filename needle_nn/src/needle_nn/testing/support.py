"""Helpers shared by needle_nn's device suite and the project tests that complement it."""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pytest

from needle_nn.cli.tasks import shipped_mnist_files


def kaiming_uniform_ref(fan_in: int, shape: tuple[int, ...]) -> np.ndarray:
    """docs/api.md §4: gain sqrt(2), bound gain*sqrt(3/fan_in), one float64 rand draw of ``shape``."""
    bound = math.sqrt(2) * math.sqrt(3 / fan_in)
    return np.random.rand(*shape) * (2 * bound) - bound


def assert_linear_course_init(layer, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``layer`` (an nn.Linear built right after ``np.random.seed(seed)``) holds the course's draws:
    kaiming_uniform weight (in, out), then bias drawn as (out, 1) and reshaped to (1, out).
    Returns the expected weight and bias."""
    fan_in, fan_out = layer.weight.shape
    np.random.seed(seed)
    w = kaiming_uniform_ref(fan_in, (fan_in, fan_out))
    b = kaiming_uniform_ref(fan_out, (fan_out, 1)).reshape(1, fan_out)
    np.testing.assert_allclose(layer.weight.numpy(), w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(layer.bias.numpy(), b, rtol=1e-6, atol=1e-7)
    return w, b


def shipped_mnist_or_skip() -> tuple[str, str]:
    """The MNIST image/label files shipped inside needle_nn; skips the test when they are absent."""
    files = shipped_mnist_files()
    missing = [path for path in files if not os.path.isfile(path)]
    if missing:
        pytest.skip(f"MNIST data absent: {', '.join(missing)} not found (the needle_nn package ships it; "
                    "reinstall needle_nn with its package data to run this test)")
    return files


def seeded_mlp_resnet(device, seed: int):
    """A small MLPResNet (12 -> 8 classes, 2 blocks: Dropout and BatchNorm inside) drawn after ``seed``."""
    from needle.apps.mlp_resnet import MLPResNet

    np.random.seed(seed)
    return MLPResNet(12, 8, num_blocks=2, device=device)


def run_train(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``needle train ARGS`` in this process; returns what it printed (it must succeed)."""
    from needle_nn.cli.train import main

    assert main(list(args)) == 0
    return capsys.readouterr().out


def validation_accuracy(out: str) -> float:
    """The first "validation accuracy NN.N%" in a ``needle train`` run's output, as a fraction."""
    return float(re.search(r"validation accuracy ([\d.]+)%", out).group(1)) / 100

"""The opencl device through needle's registry: lookup, the device listing, and a short
MLPResNet training run that must match the NumPy reference device step by step."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture(scope="module")
def ndl(runtime):  # the runtime fixture skips (or fails under NEEDLE_REQUIRE_DEVICES) without a driver
    import needle

    return needle


def test_device_lookup_and_provenance(ndl):
    dev = ndl.device("opencl")
    assert dev.enabled() and dev == ndl.device("opencl:0")
    assert dev.kernel_source("matmul").startswith("needle-backend-opencl")
    assert dev.has_kernel("adam_update") and not dev.has_kernel("matmul_tiled")


def test_listing_shows_opencl_checked(ndl):
    # only this plugin: other installed backends must not decide this test
    env = {**os.environ, "NEEDLE_DISABLE_PLUGIN_AUTOLOAD": "1", "NEEDLE_PLUGINS": "needle_backend_opencl.plugin"}
    command = [sys.executable, "-m", "needle", "devices"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    row = [line for line in done.stdout.splitlines() if line.startswith("opencl")]
    assert row and "available" in row[0] and "PASS" in row[0], done.stdout + done.stderr


def test_module_listing_names_every_platform():
    done = subprocess.run([sys.executable, "-m", "needle_backend_opencl"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "opencl:0" in done.stdout, done.stdout + done.stderr


def _train(ndl, device, steps=3):
    from needle.apps.mlp_resnet import MLPResNet

    rng = np.random.default_rng(1)
    x = rng.random((steps * 50, 784), dtype=np.float32)
    y = rng.integers(0, 10, steps * 50)
    np.random.seed(4)  # weights and dropout masks draw on NumPy's global RNG: same on every device
    model = MLPResNet(784, hidden_dim=64, num_blocks=2, num_classes=10, device=device)
    opt = ndl.optim.Adam(model.parameters(), lr=0.001, weight_decay=0.001)
    loss_fn = ndl.nn.SoftmaxLoss()
    losses = []
    for i in range(steps):
        xb = ndl.Tensor(x[i * 50 : (i + 1) * 50], device=device)
        yb = ndl.Tensor(y[i * 50 : (i + 1) * 50], device=device)
        opt.reset_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        losses.append(float(loss.numpy()))
    return np.array(losses), model.parameters()[0].numpy()


def test_short_mlp_resnet_training_matches_numpy_device(ndl):
    pytest.importorskip("needle_nn", reason="needle-nn provides the model")
    losses, weight = _train(ndl, ndl.device("opencl"))
    ref_losses, ref_weight = _train(ndl, ndl.cpu_numpy())
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4)
    np.testing.assert_allclose(weight, ref_weight, rtol=1e-4, atol=1e-5)
    assert losses[-1] < losses[0]

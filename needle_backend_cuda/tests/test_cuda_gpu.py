"""What only a machine with an NVIDIA GPU can check: the registry hands out a
working ``cuda`` device, transfers between devices, and how a missing second GPU
is reported. Skipped with the probe's reason elsewhere (failed when
NEEDLE_REQUIRE_DEVICES names cuda). The kernel-level tests run on the GPU from
test_cuda_kernels.py; the conformance suite runs with
``pytest --pyargs needle.testing --needle-device cuda``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("needle_backend_cuda", reason="needle-backend-cuda is not installed")

from needle_backend_cuda import probe  # noqa: E402

_PROBE = probe.probe()
if not _PROBE.ok:
    if "cuda" in {d.strip() for d in os.environ.get("NEEDLE_REQUIRE_DEVICES", "").split(",")}:
        raise RuntimeError(f"cuda is required (NEEDLE_REQUIRE_DEVICES) but unavailable: {_PROBE.reason}")
    pytest.skip(f"cuda unavailable: {_PROBE.reason}", allow_module_level=True)

import needle as ndl  # noqa: E402
from needle import backend_ndarray as nd  # noqa: E402


def _enabled(name: str):
    try:
        dev = ndl.device(name)
    except Exception:
        return None
    return dev if dev.enabled() else None


def test_cuda_device_is_enabled_and_named_like_the_course():
    dev = ndl.cuda()
    assert dev.enabled() and repr(dev) == "cuda()"
    assert dev.kernel_source("matmul").startswith("needle-backend-cuda")


@pytest.mark.parametrize("other", ["cpu_numpy", "cpu", "opencl", "cuda:1"])
def test_transfers_both_ways(other):
    peer = _enabled(other)
    if peer is None:
        pytest.skip(f"device {other!r} is not available here")
    x = np.random.default_rng(1).standard_normal((17, 33)).astype(np.float32)
    on_peer = nd.array(x, device=peer)
    on_cuda = on_peer.to(ndl.cuda())
    assert on_cuda.device == ndl.cuda()
    np.testing.assert_array_equal(on_cuda.numpy(), x)
    back = (on_cuda.permute((1, 0)) + 1.0).to(peer)  # a strided view travels compacted
    np.testing.assert_allclose(back.numpy(), x.T + 1.0, rtol=1e-6)


def test_missing_gpu_index_is_reported_clearly():
    count = probe.device_count()
    name = f"cuda:{count}"  # one past the last GPU
    try:
        dev = ndl.device(name)
    except Exception as exc:  # the registry may raise, naming the reason
        message = str(exc)
    else:
        assert not dev.enabled()
        message = dev.unavailable_message()
    assert f"{count} CUDA GPU" in message or "does not exist" in message, message


def test_training_step_runs_on_cuda():
    nn = pytest.importorskip("needle.nn")
    np.random.seed(0)
    dev = ndl.cuda()
    model = nn.Sequential(nn.Linear(20, 32, device=dev), nn.ReLU(), nn.Linear(32, 4, device=dev))
    opt = ndl.optim.Adam(model.parameters(), lr=0.05)
    x = ndl.Tensor(np.random.randn(64, 20).astype(np.float32), device=dev)
    y = ndl.Tensor(np.random.randint(0, 4, 64).astype(np.float32), device=dev)
    losses = []
    for _ in range(30):
        opt.reset_grad()
        loss = nn.SoftmaxLoss()(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.numpy()))
    assert losses[-1] < 0.5 * losses[0]

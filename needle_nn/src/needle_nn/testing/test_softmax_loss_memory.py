"""The LSTM language model's loss (640 rows of a 10k vocabulary) holds one (n, k)
buffer beyond the logits through forward and backward on devices with the fused
softmax_cross_entropy kernels: the composed loss held five (the softmax, its
temporary, softmax * g, the label lookup's dense adjoint and the sum of the two)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

N, K = 640, 10_000  # the course's LanguageModel: seq 40 x batch 16 rows, a 10k vocabulary
LOGITS_BYTES = N * K * 4

# A fresh process: build the logits, reset the peak-RSS mark, run the loss's forward and
# backward, report the peak rise. argv: device, "fused" or "composed".
_SCRIPT = textwrap.dedent(
    f"""
    import json, sys
    import needle as ndl, needle.nn as nn, numpy as np

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    dev = ndl.device(sys.argv[1])
    if sys.argv[2] == "composed":
        dev.__dict__["softmax_cross_entropy"] = dev.__dict__["softmax_cross_entropy_backward"] = None
    rng = np.random.default_rng(0)
    x = ndl.Tensor(rng.standard_normal(({N}, {K})).astype(np.float32), device=dev)
    y = ndl.Tensor(rng.integers(0, {K}, {N}).astype(np.float32), device=dev, requires_grad=False)
    base = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    loss = nn.SoftmaxLoss()(x, y)
    loss.backward()
    assert x.grad.shape == ({N}, {K})
    print(json.dumps({{"rise": status("VmHWM") - base}}))
    """
)


def _peak_rise(device: str, path: str) -> int:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, device, path], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])["rise"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/self/clear_refs")
def test_fused_softmax_loss_peak_holds_one_logits_sized_buffer(needle_device, needle_device_name):
    if not needle_device.has_kernel("softmax_cross_entropy"):
        pytest.skip(f"{needle_device_name} has no softmax_cross_entropy kernel (the composition runs instead)")
    rise = _peak_rise(needle_device_name, "fused")
    # the logits' adjoint, plus slack for the allocator and the interpreter (the
    # composition rises by ~5 logits-sized buffers)
    assert rise < 2 * LOGITS_BYTES, f"SoftmaxLoss on {needle_device_name} rose by {rise / 1e6:.0f} MB"

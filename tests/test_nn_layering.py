"""needle-nn reaches backends only through the registry: importing it loads none."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import needle_nn.nn, needle_nn.optim, needle_nn.data, needle_nn.checkpoint
import needle_nn.apps.simple_ml, needle_nn.apps.mlp_resnet, needle_nn.cli.train
import needle.nn, needle.apps.simple_ml
loaded = sorted(m for m in sys.modules if m.startswith("needle_backend"))
print(",".join(loaded))
"""


def test_importing_needle_nn_loads_no_backend():
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"needle_nn imported backend modules: {res.stdout}"

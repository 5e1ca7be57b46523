"""Peak memory of training: how far the resident set (RSS) rises above that of the
built model (framework, parameters, batch) during three training steps of each model
row (MLPResNet, ResNet9, the LSTM LM), in needle ``cpu`` and in PyTorch CPU:
activations, gradients, optimiser state, workspaces and allocator caches. Each figure
comes from its own child process (``_peak_rss.py``), so one model's peak never hides
another's. The note has the built model's RSS (mostly the framework's libraries).
Linux only (``/proc/self/clear_refs`` resets the peak mark)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness import Row

HERE = Path(__file__).resolve().parent
MODELS = {"rows_training": "MLPResNet(784,100,3) batch-100", "rows_cnn": "ResNet9 batch-128",
          "rows_lstm": "LSTM LM T40 batch-16"}
SUBJECTS = (("torch", "torch", ""), ("needle cpu", "needle", "cpu"))


def _peak_rise(module: str, framework: str, device: str, notes: dict[str, str]) -> float:
    args = [sys.executable, str(HERE / "_peak_rss.py"), module, framework] + ([device] if device else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, env=os.environ.copy())
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"child exited {done.returncode}: {last}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    notes[module + framework] = f"RSS of the built model {figures['base'] / 2**20:.0f} MiB"
    return float(figures["peak"] - figures["base"])


def rows() -> list[Row]:
    if not Path("/proc/self/clear_refs").exists():
        return [Row("peak RSS rise of training steps", "-", None, skip="needs Linux /proc/self/clear_refs")]
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    out: list[Row] = []
    for module, label in MODELS.items():
        group = f"peak RSS rise over the built model, 3 {label} steps"
        base_key = f"memory torch {module}"
        for subject, framework, device in SUBJECTS:
            key = base_key if framework == "torch" else f"memory {subject} {module}"
            if framework == "torch" and not have_torch:
                out.append(Row(group, subject, None, key=key, skip="PyTorch not installed"))
                continue
            row = Row(group, subject, None, key=key, measures="bytes",
                      compare=() if framework == "torch" else (base_key,))
            notes: dict[str, str] = {}

            def measure(row=row, module=module, framework=framework, device=device, notes=notes) -> float:
                rise = _peak_rise(module, framework, device, notes)
                row.note = notes.get(module + framework, "")
                return rise

            row.fn = measure
            out.append(row)
    return out

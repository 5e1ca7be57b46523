"""Child process of ``rows_memory.py``: the peak RSS training steps add to a built model.

``python _peak_rss.py <rows module> <needle|torch> [device]`` builds the module's model
(``needle_model(dev)`` / ``torch_model()``, ``batch()``, ``OPTIMISER``) and its
optimiser, reads the RSS (``base``: interpreter, framework, model, batch), resets the
kernel's peak-RSS mark (``/proc/self/clear_refs``), runs three steps and prints one
JSON line ``{"base": bytes, "peak": bytes}``. ``peak - base`` is what training costs
beyond the model itself: activations, gradients, optimiser state, workspaces and
whatever the allocators keep. One process per model and framework, so peaks never mix.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def main(module_name: str, framework: str, device: str = "cpu") -> None:
    import numpy as np
    from _steps import needle_step, torch_step

    spec = importlib.import_module(module_name)
    X, y = spec.batch()
    if framework == "torch":
        step = torch_step(spec.torch_model(), X, y, spec.OPTIMISER)
    else:
        import needle as ndl

        dev = ndl.device(device)
        if not dev.enabled():
            raise SystemExit(dev.unavailable_message())
        np.random.seed(0)
        step = needle_step(dev, spec.needle_model(dev), X, y, spec.OPTIMISER)
    base = _status_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
    for _ in range(3):
        step()
    print(json.dumps({"base": base, "peak": _status_bytes("VmHWM")}))


if __name__ == "__main__":
    main(*sys.argv[1:])

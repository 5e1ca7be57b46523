"""Is device ``cpu`` usable here, and if not, why: the extension is built and this CPU
has the instructions of at least one built module (cheap: nothing is imported)."""

from __future__ import annotations

import importlib.util

from needle_core.hookspecs import ProbeResult

from . import runtime


def probe() -> ProbeResult:
    if importlib.util.find_spec("needle_backend_cpu._kernels") is None:
        return ProbeResult(False, "the C++ extension needle_backend_cpu._kernels is not built", runtime.REINSTALL)
    choice = runtime.choose_module()
    if not choice.module:
        return ProbeResult(False, choice.reason, choice.hint)
    return ProbeResult(True)

"""Registers device ``cpu`` with needle's registry (entry point group ``needle.backends``).

The probe (``probe.py``) is cheap; the kernel namespace (``kernels.py``) is the compiled
module ``runtime.py`` picks for this CPU.
"""

from __future__ import annotations

from needle_core.hookspecs import DeviceSpec, hookimpl

from .kernels import factory
from .probe import probe

__all__ = ["factory", "needle_declare_devices", "probe"]


@hookimpl
def needle_declare_devices() -> list[DeviceSpec]:
    return [
        DeviceSpec(
            name="cpu",
            factory=factory,
            probe=probe,
            priority=10,  # above the NumPy reference backend
            count=lambda: 1,
            install_hint="pip install ./needle_backend_cpu",
        )
    ]

"""Entry point ``needle.backends: numpy``: declares the ``cpu_numpy`` device."""

from __future__ import annotations

from needle_core.hookspecs import DeviceSpec, hookimpl

from .probe import probe


def _factory(index: int):
    # Imported here so that loading the plugin (registry start-up) stays cheap.
    from . import kernels

    return kernels


@hookimpl
def needle_declare_devices() -> list[DeviceSpec]:
    return [
        DeviceSpec(
            name="cpu_numpy",
            aliases=("numpy",),
            priority=0,
            dtypes=("float32", "float64"),
            factory=_factory,
            probe=probe,
            install_hint="pip install needle-backend-numpy",
        )
    ]

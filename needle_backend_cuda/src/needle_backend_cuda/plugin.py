"""needle plugin module (entry point ``needle.backends: cuda``): declares ``cuda``.

Importing it is cheap and never imports pycuda; the registry calls ``probe`` to
learn whether (and why not) the device can run here, and ``factory(index)`` only
when it can.
"""

from __future__ import annotations

from typing import Any

from needle_core.hookspecs import DeviceSpec, hookimpl

from . import probe as _probe


def make_device(index: int) -> dict[str, Any]:
    """The kernel namespace of ``cuda:<index>`` (imports pycuda, creates the context)."""
    from .kernels import build_namespace
    from .runtime import CudaRuntime

    return build_namespace(CudaRuntime(index))


@hookimpl
def needle_declare_devices() -> list[DeviceSpec]:
    return [
        DeviceSpec(
            name="cuda",
            factory=make_device,
            probe=_probe.probe,
            count=_probe.device_count,
            dtypes=("float32",),
            install_hint=_probe.PYCUDA_HINT,
        )
    ]

"""Entry point of needle-backend-opencl: declares the ``opencl`` device type.

Hooks only; the devices opened in this process are ``runtime.OPENED``.

* ``probe`` (``probe.py``): enumerates OpenCL platforms only (cheap; never compiles), so listing
  devices or choosing the default device costs no OpenCL build.
* ``count``: runs on first use of an opencl device; a child process builds and runs
  a one-line kernel, then needle's program, on each selected device to count the
  usable ones (``opencl:N`` is the N-th). Programs are cached on disk and a passed
  check is remembered beside them (``build.py``), so only a machine's first run (or
  the first after a driver or kernel change) compiles and starts the child.
  When none is usable it still reports index 0, so that device's ``verify`` can say
  why (with the compiler's reason) instead of a bare "index out of range".
* ``factory(N)``: the kernel table over the context, queue and program that the
  N-th usable device was verified with.
* ``verify``: runs needle's ``fill`` kernel on the device's own queue and reads it back.
"""

from __future__ import annotations

from typing import Any

from needle_core.hookspecs import DeviceSpec, ProbeResult, hookimpl

from . import discovery, probe, runtime

NEEDLE_API_VERSION = 1


def count() -> int:
    return max(1, len(discovery.usable()))


def factory(index: int) -> dict[str, Any]:
    from .kernels import make_kernels

    usable = discovery.usable()
    if index >= len(usable):
        if usable:
            raise IndexError(f"opencl:{index} does not exist: {len(usable)} usable OpenCL device(s) here")
        runtime.OPENED[index] = None  # verify() explains; the table below is never called
        return _placeholder_kernels()
    opened = runtime.OPENED[index] = discovery.runtime(usable[index])
    return make_kernels(opened)


def verify(device: Any) -> ProbeResult:
    opened = runtime.OPENED.get(device.index)
    if opened is None:
        return ProbeResult(False, f"no usable OpenCL device: {discovery.unusable_summary()}", discovery.INSTALL_HINT)
    try:
        discovery.kernel_check(opened)
    except Exception as exc:
        return ProbeResult(False, f"{opened.name}: {discovery.failure_reason(exc)}", discovery.INSTALL_HINT)
    return ProbeResult(True)


def synchronize(index: int = 0) -> None:
    """Wait until every command queued on ``opencl:index`` has run (benchmarks use it)."""
    opened = runtime.OPENED.get(index)
    if opened is not None:
        opened.finish()


def describe() -> list[str]:
    """Every OpenCL platform/device and its status, for device listings."""
    return discovery.describe()


def _placeholder_kernels() -> dict[str, Any]:
    from needle_core.kernels import PRIMITIVE_KERNELS

    def unusable(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError(f"no usable OpenCL device: {discovery.unusable_summary()}")

    return {name: unusable for name in PRIMITIVE_KERNELS}


SPEC = DeviceSpec(
    name="opencl",
    factory=factory,
    probe=probe.probe,
    count=count,
    verify=verify,
    install_hint=discovery.INSTALL_HINT,
    describe=describe,
)


@hookimpl
def needle_declare_devices() -> list[DeviceSpec]:
    return [SPEC]

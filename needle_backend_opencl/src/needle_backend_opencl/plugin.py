"""Entry point of needle-backend-opencl: declares the ``opencl`` device type.

* ``probe``: enumerates OpenCL platforms only (cheap; never compiles), so listing
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

from . import discovery

NEEDLE_API_VERSION = 1

_runtimes: dict[int, Any] = {}  # device index -> Runtime (None: nothing usable)


def count() -> int:
    return max(1, len(discovery.usable()))


def factory(index: int) -> dict[str, Any]:
    from .backend import make_kernels

    usable = discovery.usable()
    if index >= len(usable):
        if usable:
            raise IndexError(f"opencl:{index} does not exist: {len(usable)} usable OpenCL device(s) here")
        _runtimes[index] = None  # verify() explains; the table below is never called
        return _placeholder_kernels()
    runtime = discovery.runtime(usable[index])
    _runtimes[index] = runtime
    return make_kernels(runtime)


def verify(device: Any) -> ProbeResult:
    runtime = _runtimes.get(device.index)
    if runtime is None:
        return ProbeResult(False, f"no usable OpenCL device: {discovery.unusable_summary()}", discovery.INSTALL_HINT)
    try:
        discovery.kernel_check(runtime)
    except Exception as exc:
        return ProbeResult(False, f"{runtime.name}: {discovery.failure_reason(exc)}", discovery.INSTALL_HINT)
    return ProbeResult(True)


def synchronize(index: int = 0) -> None:
    """Wait until every command queued on ``opencl:index`` has run (benchmarks use it)."""
    runtime = _runtimes.get(index)
    if runtime is not None:
        runtime.finish()


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
    probe=discovery.probe,
    count=count,
    verify=verify,
    install_hint=discovery.INSTALL_HINT,
    describe=describe,
)


@hookimpl
def needle_declare_devices() -> list[DeviceSpec]:
    return [SPEC]



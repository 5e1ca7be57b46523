"""Registers device ``cpu`` with needle's registry (entry point group ``needle.backends``).

The probe is cheap: it reads which instruction-set extensions each built module
used (``_build_info.py``, written by setup.py) and picks the best module this CPU has
them for (``isa.py``; ``NEEDLE_CPU_ISA`` forces one), so a build copied to an older
processor falls back to a variant or reports why instead of crashing with SIGILL.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings

from needle_core.hookspecs import DeviceSpec, ProbeResult, hookimpl

from . import isa

_REINSTALL = ("rebuild it on this machine: pip install --force-reinstall --no-cache-dir ./needle_backend_cpu "
              "(set NEEDLE_CPU_PORTABLE=1 for a build that runs on any x86-64)")


def _cpu_flags() -> set[str] | None:
    return isa.cpu_flags()


def choose_module() -> isa.Choice:
    """The kernel module this process loads (see ``isa.py``)."""
    try:
        from . import _build_info
    except ImportError:  # built by other means: nothing recorded to check
        return isa.Choice("unknown", "_kernels")
    return isa.choose(_build_info, _cpu_flags(), isa.forced_isa(), _REINSTALL)


def probe() -> ProbeResult:
    if importlib.util.find_spec("needle_backend_cpu._kernels") is None:
        return ProbeResult(False, "the C++ extension needle_backend_cpu._kernels is not built", _REINSTALL)
    choice = choose_module()
    if not choice.module:
        return ProbeResult(False, choice.reason, choice.hint)
    return ProbeResult(True)


def threads_from_env() -> int:
    """NEEDLE_NUM_THREADS, or the cores this process may run on."""
    default = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    raw = os.environ.get("NEEDLE_NUM_THREADS", "").strip()
    if not raw:
        return default
    try:
        n = int(raw)
        if n < 1:
            raise ValueError
    except ValueError:
        warnings.warn(f"NEEDLE_NUM_THREADS must be a positive integer, got {raw!r}; using {default}", stacklevel=2)
        return default
    return n


def factory(index: int):
    if index != 0:
        raise ValueError(f"device cpu has a single index 0, got cpu:{index}; use ndl.cpu()")
    choice = choose_module()
    if not choice.module:
        raise RuntimeError(f"device cpu: {choice.reason}; {choice.hint}")
    kernels = importlib.import_module(f"{__package__}.{choice.module}")
    kernels.set_num_threads(threads_from_env())
    return kernels


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

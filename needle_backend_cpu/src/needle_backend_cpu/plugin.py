"""Registers device ``cpu`` with needle's registry (entry point group ``needle.backends``).

The probe is cheap: it reads which instruction-set extensions the build used
(``_build_info.py``, written by setup.py) and checks this CPU has them, so a build
copied to an older processor reports why instead of crashing with SIGILL.
"""

from __future__ import annotations

import importlib.util
import os
import warnings

from needle_core.hookspecs import DeviceSpec, ProbeResult, hookimpl

_REINSTALL = ("rebuild it on this machine: pip install --force-reinstall --no-cache-dir ./needle_backend_cpu "
              "(set NEEDLE_CPU_PORTABLE=1 for a build that runs on any x86-64)")


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo, or None where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        return None
    return None


def probe() -> ProbeResult:
    if importlib.util.find_spec("needle_backend_cpu._kernels") is None:
        return ProbeResult(False, "the C++ extension needle_backend_cpu._kernels is not built", _REINSTALL)
    try:
        from . import _build_info
    except ImportError:
        return ProbeResult(True)  # built by other means: nothing recorded to check
    have = _cpu_flags()
    missing = sorted(set(_build_info.CPU_FLAGS) - have) if have is not None else []
    if missing:
        return ProbeResult(False, f"the extension was compiled for CPU features this processor lacks: "
                                  f"{', '.join(missing)}", _REINSTALL)
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
    from . import _kernels

    _kernels.set_num_threads(threads_from_env())
    return _kernels


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

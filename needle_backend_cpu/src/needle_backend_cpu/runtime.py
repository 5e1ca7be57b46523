"""Native-module loading for device ``cpu``: which compiled kernel module this process
uses (runtime ISA dispatch, ``isa.py``) and its thread count.

setup.py records which instruction-set extensions each built module used
(``_build_info.py``); the best module this CPU has them for is chosen
(``NEEDLE_CPU_ISA`` forces one), so a build copied to an older processor falls back
to a variant or reports why instead of crashing with SIGILL.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

from . import isa

REINSTALL = ("rebuild it on this machine: pip install --force-reinstall --no-cache-dir ./needle_backend_cpu "
             "(set NEEDLE_CPU_PORTABLE=1 for a build that runs on any x86-64)")


def _cpu_flags() -> set[str] | None:
    return isa.cpu_flags()


def choose_module() -> isa.Choice:
    """The kernel module this process loads (see ``isa.py``)."""
    try:
        from . import _build_info
    except ImportError:  # built by other means: nothing recorded to check
        return isa.Choice("unknown", "_kernels")
    return isa.choose(_build_info, _cpu_flags(), isa.forced_isa(), REINSTALL)


def load_kernels() -> ModuleType:
    """The compiled kernel module device ``cpu`` uses here (the best ISA variant this
    CPU runs, or the one ``NEEDLE_CPU_ISA`` names); imports the extension."""
    choice = choose_module()
    if not choice.module:
        raise ImportError(f"needle_backend_cpu: {choice.reason}; {choice.hint}")
    return importlib.import_module(f"{__package__}.{choice.module}")


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

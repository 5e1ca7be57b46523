"""Which compiled kernel module device ``cpu`` loads: runtime ISA dispatch.

setup.py builds the main module ``_kernels`` (``-march=native``, or baseline x86-64
for ``NEEDLE_CPU_PORTABLE=1``) and, on x86-64, ISA variants (``_kernels_avx2``,
``_kernels_avx512``) from the same sources, recording in ``_build_info.MODULES`` the
CPU flags each needs. The best module this CPU has every flag for is loaded, in the
order of ``PREFERENCE``; ``NEEDLE_CPU_ISA=<name>`` forces one (tests, benchmarks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: best first: a native build is tuned for the machine it was built on
PREFERENCE: tuple[str, ...] = ("native", "avx512", "avx2", "baseline")
ENV = "NEEDLE_CPU_ISA"


@dataclass(frozen=True)
class Choice:
    """The module to load (``module`` set), or why none can be (``reason``, ``hint``)."""

    isa: str = ""
    module: str = ""
    reason: str = ""
    hint: str = ""


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo, or None where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        return None
    return None


def built_modules(build_info) -> dict[str, tuple[str, tuple[str, ...]]]:
    """ISA name -> (module name, CPU flags it needs), from a ``_build_info`` module."""
    modules = getattr(build_info, "MODULES", None)
    if modules:
        return {name: (mod, tuple(flags)) for name, (mod, flags) in modules.items()}
    # a build from before the variants: one module
    return {getattr(build_info, "MAIN_ISA", "native"): ("_kernels", tuple(build_info.CPU_FLAGS))}


def choose(build_info, have: set[str] | None, forced: str | None, rebuild_hint: str) -> Choice:
    """The module for a CPU with flags ``have`` (None: unknown, trust the build)."""
    modules = built_modules(build_info)

    def missing(name: str) -> list[str]:
        return sorted(set(modules[name][1]) - have) if have is not None else []

    if forced:
        if forced not in modules:
            return Choice(reason=f"{ENV}={forced!r} names no module of this build (built: {', '.join(modules)})",
                          hint=f"unset {ENV}, or set it to one of: {', '.join(modules)}")
        lacking = missing(forced)
        if lacking:
            return Choice(reason=f"{ENV}={forced!r}: this processor lacks {', '.join(lacking)}",
                          hint=f"unset {ENV} to load the best module this CPU runs")
        return Choice(forced, modules[forced][0])
    order = [n for n in PREFERENCE if n in modules] + [n for n in modules if n not in PREFERENCE]
    for name in order:
        if not missing(name):
            return Choice(name, modules[name][0])
    first = order[0]
    return Choice(reason=f"the extension was compiled for CPU features this processor lacks: "
                         f"{', '.join(missing(first))}", hint=rebuild_hint)


def forced_isa() -> str | None:
    return os.environ.get(ENV, "").strip() or None

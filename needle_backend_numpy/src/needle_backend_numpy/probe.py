"""Is ``cpu_numpy`` usable here? Always: NumPy is a hard dependency of this package."""

from __future__ import annotations

from needle_core.hookspecs import ProbeResult


def probe() -> ProbeResult:
    """``DeviceSpec.probe`` of ``cpu_numpy``: nothing to check, the oracle runs everywhere."""
    return ProbeResult(True)

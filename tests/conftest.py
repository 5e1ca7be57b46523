"""Project-test configuration. These tests are device-independent: the device tests are the shipped
suites needle.testing and needle_nn.testing (device selection lives in needle.testing.plugin)."""

from __future__ import annotations

import importlib.metadata


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# Backend-specific test modules import their backend's internals: collect them only in
# sessions that installed that backend (the repo folder alone is not an install).
collect_ignore_glob = [
    pattern
    for pattern, distribution in {
        "test_opencl_*.py": "needle-backend-opencl",
        "test_cpu_backend_*.py": "needle-backend-cpu",
    }.items()
    if not _installed(distribution)
]


"""Project-test configuration (kept tiny: device selection lives in needle.testing.plugin)."""

from __future__ import annotations

import importlib.metadata
import os

import pytest


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # nox's tests(<backend>) sessions other than numpy set this: device-independent
    # project tests already ran once, in tests(numpy).
    if os.environ.get("NEEDLE_DEVICE_TESTS_ONLY") != "1":
        return
    kept = [item for item in items if "needle_device" in getattr(item, "fixturenames", ())]
    dropped = [item for item in items if "needle_device" not in getattr(item, "fixturenames", ())]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept

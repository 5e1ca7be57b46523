"""Project-test configuration (kept tiny: device selection lives in needle.testing.plugin)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # nox's tests(<backend>) sessions other than numpy set this: device-independent
    # project tests already ran once, in tests(numpy).
    if os.environ.get("NEEDLE_DEVICE_TESTS_ONLY") != "1":
        return
    skip = pytest.mark.skip(reason="device-independent: runs once, in the tests(numpy) session")
    for item in items:
        if "needle_device" not in getattr(item, "fixturenames", ()):
            item.add_marker(skip)

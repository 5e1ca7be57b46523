"""pytest plugin: the ``needle_device`` fixture, parametrised by the registry.

It only parametrises tests that request ``needle_device``; it never skips, reorders
or parametrises any other test (students' course tests have their own ``device``).
Device selection: ``--needle-device NAME`` (repeatable) or ``NEEDLE_TEST_DEVICES``
(comma separated); default: every device the registry finds. A selected device that
cannot run here is skipped with the probe's reason, unless ``NEEDLE_REQUIRE_DEVICES``
names it: then its tests fail.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("needle")
    group.addoption(
        "--needle-device",
        action="append",
        default=[],
        metavar="NAME",
        help="run needle's device tests on NAME (repeatable; default: NEEDLE_TEST_DEVICES or every installed device)",
    )


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def selected_device_names(config: pytest.Config) -> list[str]:
    names = list(config.getoption("--needle-device") or []) or _split(os.environ.get("NEEDLE_TEST_DEVICES"))
    if names:
        return names
    import needle as ndl

    return [d.canonical.removesuffix(":0") for d in ndl.all_devices()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "needle_device" not in metafunc.fixturenames:
        return
    names = selected_device_names(metafunc.config)
    metafunc.parametrize("needle_device_name", names, ids=names, scope="session")


@pytest.fixture(scope="session")
def needle_device(needle_device_name: str):
    """The device under test (skips or fails when it cannot run here)."""
    import needle as ndl

    required = _split(os.environ.get("NEEDLE_REQUIRE_DEVICES"))
    try:
        dev = ndl.device(needle_device_name)
    except Exception as exc:  # unknown or broken backend
        if needle_device_name in required:
            pytest.fail(f"required device {needle_device_name!r} is not usable: {exc}")
        pytest.skip(f"device {needle_device_name!r} is not usable: {exc}")
    if not dev.enabled():
        msg = dev.unavailable_message()
        if needle_device_name in required or dev.name in required:
            pytest.fail(f"required device {needle_device_name!r}: {msg}")
        pytest.skip(msg)
    return dev

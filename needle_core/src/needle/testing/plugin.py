"""pytest plugin: the ``needle_device`` fixture, parametrised by the registry.

It only touches tests that request ``needle_device``: it never skips, reorders or
parametrises any other test (students' course tests have their own ``device``),
and it imports needle only when such a test is collected.

- Devices: ``--needle-device NAME`` (repeatable) or ``NEEDLE_TEST_DEVICES`` (comma
  separated); default: every device type the registry knows (any status), plus
  those named by ``NEEDLE_REQUIRE_DEVICES``.
- A selected device that cannot run here is skipped with the registry's reason,
  unless ``NEEDLE_REQUIRE_DEVICES`` names it: then its tests fail (CI sets it for
  the devices it provides, so a silent skip cannot pass).
- Known failures: a backend declares them in one place,
  ``DeviceSpec(conformance_xfail={"test id substring": "reason"})`` (a plain kernel
  module without hooks: ``CONFORMANCE_XFAIL``); the matching tests are marked strict
  xfail on that device (an unexpected pass fails).
"""

from __future__ import annotations

import os

import pytest

_PARAM = "needle_device_name"


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


def required_device_names() -> list[str]:
    return _split(os.environ.get("NEEDLE_REQUIRE_DEVICES"))


def selected_device_names(config: pytest.Config) -> list[str]:
    names = list(config.getoption("--needle-device") or []) or _split(os.environ.get("NEEDLE_TEST_DEVICES"))
    if names:
        return list(dict.fromkeys(names))
    import needle as ndl

    found = [r.name for r in ndl.devices() if r.active]
    return list(dict.fromkeys(found + required_device_names()))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "needle_device" not in metafunc.fixturenames:
        return
    names = selected_device_names(metafunc.config)
    metafunc.parametrize(_PARAM, names, ids=names, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the failures a backend declares as strict xfail, on its device only."""
    known: dict[str, dict[str, str]] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or _PARAM not in callspec.params:
            continue
        name = callspec.params[_PARAM]
        if name not in known:
            known[name] = _declared_xfail(name)
        for substring, reason in known[name].items():
            if substring in item.nodeid:
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"known failure on {name}: {reason}"))
                break


def _declared_xfail(name: str) -> dict[str, str]:
    from needle_core.registry import conformance_xfail

    try:
        return conformance_xfail(name)
    except Exception:  # an unknown/broken device is reported by the fixture instead
        return {}


def _is_required(name: str) -> bool:
    """``NEEDLE_REQUIRE_DEVICES=cuda`` covers ``cuda`` and ``cuda:1`` alike."""
    required = required_device_names()
    return name in required or name.partition(":")[0] in {r.partition(":")[0] for r in required}


@pytest.fixture(scope="session")
def needle_device(needle_device_name: str):
    """The device under test (skips, or fails when NEEDLE_REQUIRE_DEVICES names it)."""
    import needle as ndl

    try:
        dev = ndl.device(needle_device_name)
    except Exception as exc:  # unknown, unavailable or broken backend
        if _is_required(needle_device_name):
            pytest.fail(f"required device {needle_device_name!r} (NEEDLE_REQUIRE_DEVICES) is not usable: {exc}")
        pytest.skip(f"device {needle_device_name!r} is not usable here: {str(exc).splitlines()[0]}")
    if not dev.enabled():  # pragma: no cover - device() raises for unusable devices
        pytest.skip(dev.unavailable_message())
    return dev

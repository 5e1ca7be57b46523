"""needle_core/hookspecs.py documents every extension point (the contract page).

Each check reads the code that defines the extension point (the dataclasses, the
module attributes the registry reads, the entry-point groups the repository's
packages declare), so a new one that is not documented fails here.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from needle_core import hookspecs

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "needle_core" / "src" / "needle_core" / "registry"


def _documented(doc: str | None) -> set[str]:
    return set(re.findall(r":param ([\w.]+):", doc or ""))


@pytest.mark.parametrize("cls", [hookspecs.DeviceSpec, hookspecs.KernelContribution, hookspecs.ProbeResult])
def test_every_field_of_the_returned_objects_is_documented(cls):
    fields = {f.name for f in dataclasses.fields(cls)}
    assert fields - _documented(cls.__doc__) == set(), f"{cls.__name__} fields without :param: in its docstring"


def test_both_hooks_are_documented_in_the_banner_and_on_the_spec():
    hooks = {n for n in dir(hookspecs) if n.startswith("needle_") and callable(getattr(hookspecs, n))}
    assert hooks == {"needle_declare_devices", "needle_contribute_kernels"}
    assert hooks <= _documented(hookspecs.__doc__)
    for name in hooks:
        assert ":returns:" in (getattr(hookspecs, name).__doc__ or ""), name
    assert {"device_type", "index"} <= _documented(hookspecs.needle_contribute_kernels.__doc__)


def test_every_module_attribute_the_registry_reads_is_documented():
    read = set()
    for path in REGISTRY.glob("*.py"):
        read |= set(re.findall(r'getattr\(module, "([A-Z][A-Z0-9_]*)"', path.read_text(encoding="utf-8")))
    assert {"NEEDLE_API_VERSION", "DEVICE_NAME", "DTYPES", "CONFORMANCE_XFAIL"} <= read  # the scan itself works
    assert read - _documented(hookspecs.__doc__) == set()


def test_every_entry_point_group_of_the_repository_is_documented():
    groups = set()
    for path in ROOT.glob("*/pyproject.toml"):
        for quoted, bare in re.findall(r'^\[project\.entry-points\.(?:"([^"]+)"|([\w.]+))\]', path.read_text(), re.M):
            groups.add(quoted or bare)
    assert {"needle.backends", "needle.commands", "pytest11"} <= groups  # the scan itself works
    assert groups - _documented(hookspecs.__doc__) == set()

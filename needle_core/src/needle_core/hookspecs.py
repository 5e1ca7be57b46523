"""Every hook a needle backend plugin can implement, in one documented module.

A backend package declares an entry point in the group ``needle.backends`` naming a
module that carries ``@hookimpl`` functions. pluggy runs these hooks only while the
registry loads plugins; kernel calls never go through pluggy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import pluggy

PROJECT = "needle"
ENTRY_POINT_GROUP = "needle.backends"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class ProbeResult:
    """Whether a device type can run here; ``reason`` says why not."""

    ok: bool
    reason: str = ""
    hint: str = ""  # what to do about it, e.g. "apt-get install pocl-opencl-icd"


@dataclass(frozen=True)
class DeviceSpec:
    """A device type a plugin provides.

    ``probe()`` must be cheap (no kernel builds, no contexts); it returns a
    ``ProbeResult`` or a bool. ``factory(index)`` returns the kernel namespace for
    device ``name:index``: a module, an object or a mapping exposing the primitive
    kernels of docs/backends.md (and any optional ones). ``count()`` (optional) says
    how many indices exist. Among providers of one ``name``, the highest ``priority``
    wins.
    """

    name: str
    factory: Callable[[int], Any]
    probe: Callable[[], ProbeResult | bool] = lambda: ProbeResult(True)
    aliases: tuple[str, ...] = ()
    priority: int = 0
    experimental: bool = False
    api_version: int = 1
    dtypes: tuple[str, ...] = ("float32",)
    count: Callable[[], int] | None = None
    install_hint: str = ""


@dataclass(frozen=True)
class KernelContribution:
    """Kernels a plugin contributes to a device type (its own or another's).

    Conflicts between contributions for one slot resolve by ``priority`` (higher
    wins), then by ``provider`` name; never by registration order. ``kernels`` maps
    kernel names to callables taking the arguments documented in docs/backends.md.
    """

    device_type: str
    kernels: Mapping[str, Any]
    priority: int = 0
    provider: str = ""
    api_version: int = 1
    extra: Mapping[str, Any] = field(default_factory=dict)


@hookspec
def needle_declare_devices() -> list[DeviceSpec]:
    """Return the device types this plugin provides."""


@hookspec
def needle_contribute_kernels(device_type: str, index: int) -> list[KernelContribution] | None:
    """Return kernels to add to or override on ``device_type:index``, or None."""

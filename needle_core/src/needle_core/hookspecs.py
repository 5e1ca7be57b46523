"""Every hook a needle backend plugin can implement, in one documented module.

A backend package declares an entry point in the group ``needle.backends`` naming a
module that carries ``@hookimpl`` functions. pluggy runs these hooks only while the
registry loads plugins; kernel calls never go through pluggy.

Module-level attributes the registry also reads from a plugin module:

- ``NEEDLE_API_VERSION`` (int, default 1): the registry API version the plugin was
  built for; a mismatch with ``needle_core.kernels.API_VERSION`` marks it broken.
- ``CONFORMANCE_XFAIL`` (``{"test id substring": "reason"}``): known conformance
  failures for every device the module declares (merged with
  ``DeviceSpec.conformance_xfail``).
- ``DEVICE_NAME``: for a plain kernel module without hooks (a course backend
  module), the device name; default: the module's last name component.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from ._reload import keep

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

    - ``name``: the device type (``"cuda"``); devices are ``name:index``.
    - ``factory(index)``: returns the kernel namespace for ``name:index``: a module,
      an object or a mapping exposing the primitive kernels of docs/backends.md (and
      any optional ones). Called once per device, on first use; may build kernels.
    - ``probe()``: must be cheap (no kernel builds, no contexts, no allocations):
      it decides whether the type can run here and is what ``ndl.devices()`` and
      the choice of the default device look at. Returns ``ProbeResult`` or a bool.
    - ``aliases``: other names for the same device (``("numpy",)``).
    - ``priority``: among providers of one ``name`` the highest-priority one that
      can run here wins (ties: plugin name).
    - ``experimental``: warns once on first use; drop the flag once the backend
      passes ``pytest --pyargs needle.testing --needle-device NAME``.
    - ``api_version``: the registry API version the backend was built for.
    - ``dtypes``: element types its buffers hold (float32 always).
    - ``count()``: how many indices exist (None: just index 0). Cheap, like probe.
    - ``install_hint``: what to install when the type cannot run.
    - ``verify(device)``: optional smoke step run after the kernel table is built,
      on the device's first use and by ``python -m needle devices``; it may build
      or compile kernels (e.g. one tiny OpenCL program). Returns ``ProbeResult``,
      a bool or None (= fine), or raises; a failure disables the device with that
      reason.
    - ``describe()``: optional extra lines for ``python -m needle devices`` (e.g.
      every OpenCL platform/device found and whether it is usable).
    - ``conformance_xfail``: known conformance-suite failures, ``{"test id
      substring": "reason"}``; the needle pytest plugin marks matching tests as
      strict xfail on this device (an unexpected pass fails).
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
    verify: Callable[[Any], ProbeResult | bool | None] | None = None
    conformance_xfail: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    describe: Callable[[], list[str]] | None = None


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
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


@hookspec
def needle_declare_devices() -> list[DeviceSpec]:
    """Return the device types this plugin provides."""


@hookspec
def needle_contribute_kernels(device_type: str, index: int) -> list[KernelContribution] | None:
    """Return kernels to add to or override on ``device_type:index``, or None.

    Called once per device when its kernel table is built (and again when the table
    is rebuilt because a plugin was registered later). A plugin may contribute to
    any device type, its own or another plugin's; the kernels of the device's own
    factory count as a contribution of priority 0, so an override needs
    ``priority >= 1``. Return only contributions whose ``device_type`` matches.
    """


keep(globals(), "ProbeResult", "DeviceSpec", "KernelContribution")

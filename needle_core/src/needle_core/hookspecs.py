"""Every extension point of needle, in one documented module: the backend contract.

A third party extends needle through these, and only these:

=====================================================================================
Entry-point groups (declared in the extending package's ``pyproject.toml``)
=====================================================================================
- ``needle.backends``: ``name = "package.module"``, the module carrying the hook
  implementations below (or a plain course-style kernel module). Loaded lazily on
  the first device lookup, each plugin in isolation (docs/backends.md §6).
- ``needle.commands``: ``name = "package.module:main"``, a subcommand of
  ``python -m needle NAME`` (``main(argv: list[str]) -> int``); core registers
  ``devices``, needle-nn registers ``train``.
- ``pytest11``: needle-core registers ``needle = "needle.testing.plugin"``, the
  conformance suite's pytest plugin (``--needle-device``, ``NEEDLE_TEST_DEVICES``).

=====================================================================================
Hooks (implement with ``@hookimpl``; pluggy calls them only while loading)
=====================================================================================
- ``needle_declare_devices()``: the device types a plugin provides (``DeviceSpec``).
- ``needle_contribute_kernels(device_type, index)``: kernels added to or overriding
  those of a device type, its own or another plugin's (``KernelContribution``).
A plugin implements either or both; a kernels-only plugin needs no declaration.

=====================================================================================
Module attributes the registry reads from a plugin module
=====================================================================================
- ``NEEDLE_API_VERSION`` (int, default 1): the registry API version the plugin was
  built for; a mismatch with ``needle_core.kernels.API_VERSION`` marks it broken.
- ``CONFORMANCE_XFAIL`` (``{"node id substring": "reason"}``): known conformance
  failures of every device the module declares; merged with (and overridden by)
  ``DeviceSpec.conformance_xfail``. This and that field are the only two places to
  declare known failures (matching rules: docs/backends.md §4).
- For a plain kernel module without hooks (a course backend module):
  ``DEVICE_NAME`` (str, default: the module's last name component) and ``DTYPES``
  (tuple of dtype names, default ``("float32",)``).
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
    """A device type a plugin provides (returned by ``needle_declare_devices``).

    :param name: the device type, a lowercase identifier (``"cuda"``); devices are
        ``name:index``.
    :param factory: ``factory(index)`` returns the kernel namespace of ``name:index``:
        a module, an object or a mapping exposing the primitive kernels of
        docs/backends.md §2 and any optional ones of §3 (and ``__tile_size__``).
        Called once per device, on first use; it may build kernels and contexts.
    :param probe: ``probe()`` decides cheaply whether the type can run here (no kernel
        builds, no contexts, no allocations); ``ndl.devices()`` and the choice of the
        default device call it. Returns ``ProbeResult`` or a bool.
    :param aliases: other names of the same device (``("numpy",)``).
    :param priority: among providers of one ``name`` the highest-priority one that can
        run here wins (ties: plugin name).
    :param experimental: warns once on first use; drop the flag once the backend
        passes ``pytest --pyargs needle.testing --needle-device NAME``.
    :param api_version: the registry API version the backend was built for.
    :param dtypes: element types its buffers hold (float32 always; ``Array(size,
        dtype)`` receives the others).
    :param count: ``count()`` is how many indices exist (None: index 0 only). Cheap,
        like ``probe``; called on the first use of an index.
    :param install_hint: what to install or do when the type cannot run here.
    :param verify: ``verify(device)``, an optional smoke step run once after the kernel
        table is built (first use, and ``python -m needle devices``); it may compile a
        tiny kernel. Returns ``ProbeResult``, a bool or None (fine), or raises; a
        failure disables that index with the reason.
    :param conformance_xfail: known conformance failures of this device, ``{"node id
        substring": "reason"}``, run as strict xfails (docs/backends.md §4).
    :param describe: ``describe()`` returns extra lines printed under the device's row
        by ``python -m needle devices`` (e.g. every OpenCL platform found).
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
    """Kernels a plugin contributes to a device type (returned by ``needle_contribute_kernels``).

    :param device_type: the device's name or one of its aliases.
    :param kernels: ``{kernel name: callable}`` with the names and signatures of
        docs/backends.md §2-§3 (an unknown name marks the plugin broken).
    :param priority: per slot the highest priority wins; the device's own kernels
        count as priority 0 and win ties, so an override needs ``priority >= 1``.
    :param provider: tie-break label among equal priorities (default: plugin name).
    :param api_version: the registry API version the kernels were written for.
    :param extra: free-form data for the contributor; core ignores it.
    """

    device_type: str
    kernels: Mapping[str, Any]
    priority: int = 0
    provider: str = ""
    api_version: int = 1
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


@hookspec
def needle_declare_devices() -> list[DeviceSpec]:
    """Return the device types this plugin provides.

    :returns: a list of ``DeviceSpec`` (one spec is accepted too). Called once, when
        the plugin loads; a raising call or an invalid spec marks the plugin broken
        and rolls it back.
    """


@hookspec
def needle_contribute_kernels(device_type: str, index: int) -> list[KernelContribution] | None:
    """Return kernels to add to or override on ``device_type:index``, or None.

    :param device_type: the canonical device type being built (``"cpu_numpy"``).
    :param index: the device index being built.
    :returns: a list of ``KernelContribution`` (one is accepted too), or None.

    Called once per device when its kernel table is built (and again when the table
    is rebuilt because a plugin was registered later). A plugin may contribute to
    any device type, its own or another plugin's; the kernels of the device's own
    factory count as a contribution of priority 0, so an override needs
    ``priority >= 1``. Return only contributions whose ``device_type`` matches.
    """


keep(globals(), "ProbeResult", "DeviceSpec", "KernelContribution")

"""Every extension point of needle, in one documented module: the backend contract.

A third party extends needle through these, and only these. docs/backends.md is the
full contract (kernel signatures, registry behaviour); docs/writing-a-backend.md a
worked example.

=====================================================================================
Entry-point groups (declared in the extending package's ``pyproject.toml``)
=====================================================================================
:param needle.backends: ``name = "package.module"``, the module carrying the hook
    implementations below (or a plain course-style kernel module). Loaded lazily on
    the first device lookup, each plugin in isolation (docs/backends.md §6);
    ``NEEDLE_PLUGINS`` adds modules by name, ``NEEDLE_BLOCK_PLUGINS`` blocks them.
:param needle.commands: ``name = "package.module:main"``, a subcommand of
    ``python -m needle NAME``; ``main(argv: list[str]) -> int``. Core registers
    ``devices``, needle-nn registers ``train``.
:param needle.train_hooks: needle-nn's extension of ``needle train``:
    ``name = "package.module:attach"``, ``attach(args) -> hook | None``
    (needle-distributed's; the hook's methods: ``needle_nn/cli/hooks.py``).
:param pytest11: needle-core registers ``needle = "needle.testing.plugin"``, the
    conformance suite's pytest plugin: the ``needle_device`` fixture,
    ``--needle-device NAME`` / ``NEEDLE_TEST_DEVICES``, ``NEEDLE_REQUIRE_DEVICES`` and
    the strict xfails of known failures.

=====================================================================================
Hooks (implement with ``@hookimpl``; pluggy calls them only while loading)
=====================================================================================
:param needle_declare_devices: ``() -> list[DeviceSpec]``, the device types a plugin
    provides (see the hook's docstring and ``DeviceSpec`` below).
:param needle_contribute_kernels: ``(device_type, index) -> list[KernelContribution]
    | None``, kernels added to or overriding those of a device type, its own or
    another plugin's (see ``KernelContribution``).
A plugin implements either or both; a kernels-only plugin needs no declaration.

=====================================================================================
Module attributes the registry reads from a plugin module
=====================================================================================
:param NEEDLE_API_VERSION: int, default 1: the registry API version the plugin was
    built for; a mismatch with ``needle_core.kernels.API_VERSION`` marks it broken.
:param DEVICE_NAME: a plain kernel module without hooks (a course backend module):
    the device name, default the module's last name component.
:param DTYPES: a plain kernel module: the dtype names its buffers hold, default
    ``("float32",)`` (``DeviceSpec.dtypes``).
:param CONFORMANCE_XFAIL: a plain kernel module: its known conformance failures,
    ``{"node id substring": "reason"}`` (``DeviceSpec.conformance_xfail``). Known
    failures are declared in one place, the device's ``DeviceSpec.conformance_xfail``;
    a plain module has no spec, so it writes the mapping here. Next to hooks this
    attribute is the older spelling: it still applies to every device the module
    declares (the spec's keys win) and warns with a ``DeprecationWarning``.
    Matching rules: docs/backends.md §4.

=====================================================================================
Objects a plugin returns (fields documented on each class below)
=====================================================================================
``DeviceSpec`` (a device type), ``ProbeResult`` (can it run here, and why not),
``KernelContribution`` (kernels for a device type); ``hookimpl`` marks the hooks.
The kernel names and tables a factory or contribution fills in are data in
``needle_core.kernels``; the host-side view checks backends share are in
``needle_core.views``.
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
    """Whether a device type can run here; ``reason`` says why not.

    :param ok: True when the device type can run here.
    :param reason: why it cannot (shown by ``ndl.devices()`` and in errors).
    :param hint: what to do about it.
    """

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
        substring": "reason"}``, run as strict xfails; the one place to declare them
        (matching rules: docs/backends.md §4).
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

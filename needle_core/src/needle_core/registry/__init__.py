"""The device registry: discovers backend plugins lazily and hands out devices.

``import needle`` loads no plugin; the first device lookup does (entry-point group
``needle.backends``, then ``NEEDLE_PLUGINS``). Every plugin is loaded in isolation
(``loading``), each device's kernel table is built once and frozen onto its
``Device`` (``table``, ``resolve``), and ``devices()`` reports every backend's
status (``records``). Public functions are re-exported as ``ndl.device``,
``ndl.cpu``, ... and the module itself is ``ndl.backends``
(``ndl.backends.register(module)``). docs/backends.md describes the switches.
"""

from __future__ import annotations

import os
from typing import Any

import pluggy

from ..device import Device, DeviceUnavailableError
from . import course, loading, records, resolve
from .course import cpu, cpu_numpy, cuda
from .course import soft as _soft
from .errors import BackendError, ExperimentalDeviceWarning, PluginWarning, UnknownDeviceError
from .naming import canonical, parse
from .records import BackendRecord
from .state import STATE, Plugin, short_error

__all__ = [
    "BackendError",
    "BackendRecord",
    "Device",
    "DeviceUnavailableError",
    "ExperimentalDeviceWarning",
    "PluginWarning",
    "UnknownDeviceError",
    "all_devices",
    "conformance_xfail",
    "cpu",
    "cpu_numpy",
    "cuda",
    "default_device",
    "device",
    "devices",
    "plugin_manager",
    "register",
    "resolve_device",
]


def device(name: str | Device | None = None) -> Device:
    """The device ``name[:index]`` (``"cpu"``, ``"cuda:1"``, ``"numpy"``); None: the default.

    Raises ``UnknownDeviceError`` (with "did you mean" and the installed backends),
    ``DeviceUnavailableError`` (with the probe's reason) or ``BackendError`` (a
    broken plugin, with its stored error and what to do).
    """
    found = STATE.fast.get(name)  # type: ignore[arg-type]
    if found is not None:
        return found
    if name is None:
        return default_device()
    if isinstance(name, Device):
        return name
    found = resolve.resolve(STATE, name, soft=False)
    STATE.fast[name] = found
    return found


def resolve_device(spec: Any) -> Any:
    """What every ``device=`` argument takes: None (the default device), a name
    (``device(name)``), or a device object, returned as is."""
    if spec is None:
        return default_device()
    if isinstance(spec, str):
        return device(spec)
    return spec


def default_device() -> Device:
    """``NEEDLE_DEVICE`` if set (an error if unusable), else ``cpu`` if available, else ``cpu_numpy``."""
    env = os.environ.get("NEEDLE_DEVICE") or None
    cached = STATE.default
    if cached is not None and cached[0] == env:
        return cached[1]
    if env is not None:
        try:
            chosen = device(env)
        except (UnknownDeviceError, BackendError, DeviceUnavailableError, ValueError) as exc:
            raise type(exc)(f"NEEDLE_DEVICE={env!r} names a device that cannot be used. {exc}") from exc
    else:
        chosen = course.implicit_default()  # cpu, else cpu_numpy: never an accelerator
    STATE.default = (env, chosen)
    return chosen


def all_devices() -> list[Device]:
    """The course's list (``cpu()``, ``cuda()``, ``cpu_numpy()``) plus every other installed type.

    Disabled devices are included (course tests skip them by ``enabled()``).
    """
    with STATE.lock:
        loading.load(STATE)
        others = set(STATE.providers)
    return course.course_first(others)


def devices(verify: bool = False) -> list[BackendRecord]:
    """Every known backend with its status: available / unavailable / broken / experimental.

    Uses only the cheap probes; ``verify=True`` also builds each usable device, every
    index up to its ``count()``, and runs its ``DeviceSpec.verify`` step (as ``python
    -m needle devices`` does); an index that fails gets its own ``type:index`` row.
    """
    with STATE.lock:
        loading.load(STATE)
        if verify:
            for record in records.records(STATE):
                if record.usable and record.active:
                    _soft(record.name)
                    for index in range(1, _count(record.name)):
                        _soft(canonical(record.name, index))
        return records.records(STATE)


def _count(type_name: str) -> int:
    """The most indices any runnable provider of ``type_name`` reports (0 if none)."""
    counts = [resolve.device_count(p) for p in STATE.providers.get(type_name, ()) if records.runnable(p)]
    return max((n for n in counts if n is not None), default=0)


def register(target: Any, *, name: str | None = None) -> list[BackendRecord]:
    """Load a plugin explicitly: a module (or object) with hooks, a plain course-style
    kernel module, or an importable module name. Devices built earlier get their
    kernel tables rebuilt in place. Raises ``BackendError`` if the plugin is broken
    (it is then recorded as broken and rolled back).
    """
    with STATE.lock:
        loading.load(STATE)
        try:
            module, default_name = loading.module_from(target)
        except Exception as exc:
            plugin = STATE.plugins[name or str(target)] = Plugin(name or str(target), "register()")
            plugin.error = f"import failed: {short_error(exc)}"
            raise BackendError(f"cannot register {target!r}: {plugin.error}") from exc
        plugin = Plugin(name or default_name, "register()")
        loading.fill_distribution(plugin, module)
        added = loading.add(STATE, module, plugin)
        if plugin.error:
            raise BackendError(f"cannot register plugin {plugin.name!r} ({plugin.provenance}): {plugin.error}")
        resolve.rebuild(STATE)
        names = {p.spec.name for p in added}
        return [r for r in records.records(STATE) if r.name in names and r.plugin == plugin.name]


def conformance_xfail(name: str) -> dict[str, str]:
    """Known conformance failures a backend declares for device ``name`` (``{substring: reason}``)."""
    with STATE.lock:
        loading.load(STATE)
        type_name, index = parse(name)
        type_name = STATE.aliases.get(type_name, type_name)
        best = next(iter(records.candidates(STATE, type_name)), None)
        provider = STATE.built_by.get(canonical(type_name, index), best)
        if provider is None:
            return {}
        return dict(provider.spec.conformance_xfail)


def plugin_manager() -> pluggy.PluginManager:
    """The pluggy manager holding every loaded plugin (for introspection)."""
    with STATE.lock:
        loading.load(STATE)
        return STATE.pm  # type: ignore[return-value]


def _reset() -> None:
    """Forget every plugin and device (tests only; devices handed out earlier stay as they are)."""
    with STATE.lock:
        STATE.reset()

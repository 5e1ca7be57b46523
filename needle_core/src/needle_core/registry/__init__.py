"""The device registry: discovers backend plugins lazily and hands out devices.

Minimal first version (the registry issue completes it: isolation, status records,
switches, overrides). Public functions are re-exported by the ``needle`` facade.
"""

from __future__ import annotations

import importlib.metadata
import os
from typing import Any

import pluggy

from .. import hookspecs
from ..device import Device
from ..kernels import ALL_KERNELS, DEVICE_ATTRIBUTES

_state: dict[str, Any] = {"loaded": False, "specs": {}, "devices": {}, "pm": None}


def _plugin_manager() -> pluggy.PluginManager:
    if _state["pm"] is None:
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        _state["pm"] = pm
    return _state["pm"]


def _load() -> None:
    if _state["loaded"]:
        return
    _state["loaded"] = True
    pm = _plugin_manager()
    if os.environ.get("NEEDLE_DISABLE_PLUGIN_AUTOLOAD") != "1":
        for ep in importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
            pm.register(ep.load(), name=ep.name)
    for specs in pm.hook.needle_declare_devices():
        for spec in specs:
            best = _state["specs"].get(spec.name)
            if best is None or spec.priority > best.priority:
                _state["specs"][spec.name] = spec
                for alias in spec.aliases:
                    _state["specs"][alias] = spec


def _namespace_to_table(ns: Any) -> dict[str, Any]:
    get = ns.get if isinstance(ns, dict) else (lambda n, d=None: getattr(ns, n, d))
    table = {n: get(n) for n in ALL_KERNELS + DEVICE_ATTRIBUTES if get(n) is not None}
    return table


def _parse(name: str) -> tuple[str, int]:
    type_name, _, index = name.partition(":")
    return type_name, int(index) if index else 0


def device(name: str = "cpu") -> Device:
    """The device ``name[:index]``, e.g. ``"cpu"``, ``"cuda:1"``, ``"numpy"``."""
    _load()
    type_name, index = _parse(name)
    spec = _state["specs"].get(type_name)
    if spec is None:
        raise ValueError(f"unknown device {name!r}; installed: {sorted(set(s.name for s in _state['specs'].values()))}")
    key = f"{spec.name}:{index}"
    dev = _state["devices"].get(key)
    if dev is None:
        probe = spec.probe()
        ok = probe if isinstance(probe, bool) else probe.ok
        if ok:
            dev = Device(spec.name, index, _namespace_to_table(spec.factory(index)), dtypes=spec.dtypes)
        else:
            dev = Device(spec.name, index, None, reason=getattr(probe, "reason", "probe failed"))
        _state["devices"][key] = dev
    return dev


def _soft(name: str) -> Device:
    try:
        return device(name)
    except ValueError:
        return Device(name, 0, None, reason="its backend is not installed",
                      hint=f"Install it with: pip install needle-backend-{name}")


def cpu() -> Device:
    return _soft("cpu")


def cuda() -> Device:
    return _soft("cuda")


def cpu_numpy() -> Device:
    return device("cpu_numpy")


def default_device() -> Device:
    env = os.environ.get("NEEDLE_DEVICE")
    if env:
        return device(env)
    dev = cpu()
    return dev if dev.enabled() else cpu_numpy()


def all_devices() -> list[Device]:
    _load()
    return [_soft(n) for n in sorted(set(s.name for s in _state["specs"].values()))]


def devices() -> list[Any]:
    return all_devices()

"""Loading plugins, each in isolation: entry points, NEEDLE_PLUGINS, register().

We iterate the entry points ourselves (pluggy's ``load_setuptools_entrypoints``
stops at the first plugin that raises) and guard every step per plugin: import,
registration with pluggy, the ``needle_declare_devices`` call and the contract
checks. A plugin that fails any step is recorded as broken and rolled back (it is
unregistered and none of its devices are kept); every other plugin keeps working.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import pluggy

from .. import hookspecs
from ..hookspecs import DeviceSpec
from ..kernels import API_VERSION
from .errors import PluginWarning
from .state import Plugin, Provider, RegistryState, short_error
from .table import missing_primitives, namespace_table, unknown_names

_DEVICE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def env_list(name: str) -> list[str]:
    return [v.strip() for v in os.environ.get(name, "").split(",") if v.strip()]


def plugin_manager(state: RegistryState) -> pluggy.PluginManager:
    if state.pm is None:
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        if os.environ.get("NEEDLE_TRACE_PLUGINS", "") not in ("", "0"):
            pm.trace.root.setwriter(sys.stderr.write)
            pm.enable_tracing()
        state.pm = pm
    return state.pm


def _trace(state: RegistryState, message: str) -> None:
    plugin_manager(state).trace.root.get("registry")(message)


def load(state: RegistryState) -> None:
    """Discover plugins once: entry points (unless disabled), then NEEDLE_PLUGINS."""
    if state.loaded:
        return
    state.loaded = True
    plugin_manager(state)
    blocked = set(env_list("NEEDLE_BLOCK_PLUGINS"))
    entry_points = sorted(importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda e: e.name)
    if os.environ.get("NEEDLE_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0"):
        for ep in entry_points:
            dist = getattr(ep, "dist", None)
            dist_name = dist.name if dist is not None else None
            if blocked & {ep.name, ep.module, dist_name}:
                state.blocked.append(ep.name)
                _trace(state, f"{ep.name}: blocked by NEEDLE_BLOCK_PLUGINS")
                continue
            plugin = Plugin(ep.name, "entry point", distribution=dist_name, version=dist.version if dist else None)
            module = _guarded(state, plugin, ep.load, "import failed")
            if module is not None:
                add(state, module, plugin)
            _warn_if_broken(plugin)
    for module_name in env_list("NEEDLE_PLUGINS"):
        if blocked & _names_of_module(module_name, entry_points):
            state.blocked.append(module_name)
            _trace(state, f"{module_name}: blocked by NEEDLE_BLOCK_PLUGINS")
            continue
        plugin = Plugin(module_name, "NEEDLE_PLUGINS")
        module = _guarded(state, plugin, lambda m=module_name: importlib.import_module(m), "import failed")
        if module is not None:
            fill_distribution(plugin, module)
            add(state, module, plugin)
        _warn_if_broken(plugin)


def _names_of_module(module_name: str, entry_points: list[Any]) -> set[str]:
    """Every name NEEDLE_BLOCK_PLUGINS may use for a NEEDLE_PLUGINS module: the module itself,
    and the entry-point and distribution names of an installed plugin that is that module."""
    names = {module_name}
    for ep in entry_points:
        if ep.module == module_name:
            dist = getattr(ep, "dist", None)
            names |= {ep.name, *([dist.name] if dist is not None else [])}
    return names


def _guarded(state: RegistryState, plugin: Plugin, step, what: str) -> Any:
    state.plugins[plugin.name] = plugin
    try:
        return step()
    except Exception as exc:
        plugin.error = f"{what}: {short_error(exc)}"
        _trace(state, f"{plugin.name}: {plugin.error}")
        return None


def _warn_if_broken(plugin: Plugin) -> None:
    if plugin.error:
        warnings.warn(
            f"needle: backend plugin {plugin.name!r} ({plugin.provenance}) is broken and was skipped: "
            f"{plugin.error}. Other backends work; block it with NEEDLE_BLOCK_PLUGINS={plugin.name}.",
            PluginWarning,
            stacklevel=5,
        )


def fill_distribution(plugin: Plugin, module: Any) -> None:
    """Provenance for a module loaded by name: the distribution that ships it, only if the
    module really was imported from that distribution's files (a source tree of the same
    package on PYTHONPATH is not the installed release)."""
    top = getattr(module, "__name__", "").split(".")[0]
    try:
        for name in importlib.metadata.packages_distributions().get(top, []):
            dist = importlib.metadata.distribution(name)
            if _ships(dist, module):
                plugin.distribution, plugin.version = dist.metadata["Name"] or name, dist.version
                return
    except Exception:  # metadata is best-effort provenance, never fatal
        pass


def _ships(dist: Any, module: Any) -> bool:
    """Whether ``module``'s file belongs to ``dist`` (installed files, or an editable install's source folder)."""
    origin = getattr(module, "__file__", None)
    if not origin:
        return False
    origin_path = Path(origin).resolve()
    for file in dist.files or ():
        if file.suffix == ".py" and Path(dist.locate_file(file)).resolve() == origin_path:
            return True
    source = _editable_source(dist)
    return source is not None and source in origin_path.parents


def _editable_source(dist: Any) -> Path | None:
    """The project folder of an editable install (PEP 610 ``direct_url.json``), else None."""
    import json
    from urllib.parse import unquote, urlparse

    try:
        info = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        return None
    if not info.get("dir_info", {}).get("editable"):
        return None
    url = urlparse(info.get("url", ""))
    return Path(unquote(url.path)).resolve() if url.scheme == "file" else None


def _has_hooks(module: Any) -> bool:
    marker = f"{hookspecs.PROJECT}_impl"
    return any(hasattr(getattr(module, n, None), marker) for n in dir(module) if n.startswith("needle_"))


def call_one(state: RegistryState, module: Any, hook_name: str, **kwargs: Any) -> list[Any]:
    """Call one hook of one plugin only (isolation), through pluggy (tracing works)."""
    pm = plugin_manager(state)
    caller = getattr(pm.hook, hook_name)
    if not any(impl.plugin is module for impl in caller.get_hookimpls()):
        return []
    others = [p for p in pm.get_plugins() if p is not module]
    return pm.subset_hook_caller(hook_name, others)(**kwargs)


def add(state: RegistryState, module: Any, plugin: Plugin) -> list[Provider]:
    """Register ``module`` as ``plugin``: all or nothing. Returns the providers it added."""
    state.plugins[plugin.name] = plugin
    plugin.module = module
    pm = plugin_manager(state)
    if pm.is_registered(module):
        plugin.error = f"module {getattr(module, '__name__', module)!r} is already registered"
        return []
    registered = False
    try:
        _check_api(getattr(module, "NEEDLE_API_VERSION", 1), "the plugin module")
        if _has_hooks(module):
            pm.register(module, name=f"needle-{plugin.source}-{plugin.name}")
            registered = True
            specs = [s for result in call_one(state, module, "needle_declare_devices") for s in _as_list(result)]
            specs = _with_module_xfail(module, specs)
        else:
            specs = [_plain_module_spec(module)]
        plugin.declared = _declared_names(specs)
        providers = [Provider(_checked(spec), plugin) for spec in specs]
        _check_unique(providers)
    except Exception as exc:  # roll back: nothing of a half-registered plugin stays
        if registered:
            pm.unregister(module)
        plugin.error = short_error(exc) if not isinstance(exc, _ContractError) else str(exc)
        _trace(state, f"{plugin.name}: broken, rolled back: {plugin.error}")
        return []
    for provider in providers:
        spec = provider.spec
        state.providers.setdefault(spec.name, []).append(provider)
        for alias in spec.aliases:
            state.aliases.setdefault(alias, spec.name)
    _trace(state, f"{plugin.name}: loaded ({plugin.provenance}); devices {[p.spec.name for p in providers]}")
    return providers


def _declared_names(specs: list[Any]) -> tuple[str, ...]:
    """The device names (and aliases) a plugin tried to declare, valid or not: asking for
    one of them when the plugin broke must name the plugin and its error."""
    names = []
    for spec in specs:
        for name in (getattr(spec, "name", None), *(getattr(spec, "aliases", None) or ())):
            if isinstance(name, str):
                names.append(name.lower())
    return tuple(names)


class _ContractError(TypeError):
    """A plugin that does not follow the backend ABI (message is shown as is)."""


def _check_api(version: Any, what: str) -> None:
    if version != API_VERSION:
        raise _ContractError(
            f"built for API {version}, core is {API_VERSION} ({what} declares api_version={version!r}; "
            f"install a needle-core implementing API {version}, or a release of the plugin built for API {API_VERSION})"
        )


def _as_list(result: Any) -> list[Any]:
    if result is None:
        return []
    return list(result) if isinstance(result, (list, tuple)) else [result]


def _checked(spec: Any) -> DeviceSpec:
    if not all(hasattr(spec, a) for a in ("name", "factory", "probe", "aliases", "priority", "api_version")):
        raise _ContractError(f"needle_declare_devices must return DeviceSpec objects, got {spec!r}")
    _check_api(spec.api_version, f"DeviceSpec {spec.name!r}")
    for name in (spec.name, *spec.aliases):
        if not isinstance(name, str) or not _DEVICE_NAME.match(name):
            raise _ContractError(
                f"device names are lowercase identifiers like 'cuda' or 'my_dev' (no ':index'), got {name!r}"
            )
    if not callable(spec.factory):
        raise _ContractError(f"DeviceSpec {spec.name!r}: factory must be callable(index), got {spec.factory!r}")
    return spec


def _check_unique(providers: list[Provider]) -> None:
    names = [p.spec.name for p in providers]
    if len(names) != len(set(names)):
        raise _ContractError(f"the plugin declares the same device type twice: {names}")


def _plain_module_spec(module: Any) -> DeviceSpec:
    """A course-style backend module (attributes = kernels, no hooks) as a DeviceSpec."""
    table = namespace_table(module)
    if not table:
        raise _ContractError(
            f"{getattr(module, '__name__', module)!r} has neither needle hooks (@needle.hookimpl "
            f"needle_declare_devices) nor backend kernels (Array, ewise_add, ... see docs/backends.md)"
        )
    missing = missing_primitives(table)
    if missing:
        raise _ContractError(f"missing primitive kernels: {', '.join(missing)} (see docs/backends.md §2)")
    default_name = getattr(module, "__name__", type(module).__name__).rsplit(".", 1)[-1].lower()
    name = getattr(module, "DEVICE_NAME", default_name)
    dtypes = tuple(getattr(module, "DTYPES", ("float32",)))
    xfail = dict(getattr(module, "CONFORMANCE_XFAIL", {}) or {})  # the spec field, spelled as a module attribute
    return DeviceSpec(name=name, factory=lambda index: module, dtypes=dtypes, conformance_xfail=xfail)


def _with_module_xfail(module: Any, specs: list[Any]) -> list[Any]:
    """A hooks plugin's module-level ``CONFORMANCE_XFAIL`` (the older spelling) folded into
    each of its specs, the spec's own keys winning: known failures are then read from one
    place, ``DeviceSpec.conformance_xfail``."""
    xfail = dict(getattr(module, "CONFORMANCE_XFAIL", {}) or {})
    if not xfail:
        return specs
    warnings.warn(
        f"needle: {getattr(module, '__name__', module)} declares CONFORMANCE_XFAIL next to its hooks; declare "
        "known failures on the device instead, DeviceSpec(conformance_xfail={...}) (needle_core/hookspecs.py)",
        DeprecationWarning,
        stacklevel=2,
    )
    return [
        dataclasses.replace(s, conformance_xfail={**xfail, **dict(s.conformance_xfail)})
        if dataclasses.is_dataclass(s) and hasattr(s, "conformance_xfail") else s
        for s in specs
    ]


def module_from(target: Any) -> tuple[Any, str]:
    """``register()`` accepts a module, an object with hooks, or an importable name."""
    if isinstance(target, str):
        return importlib.import_module(target), target
    return target, getattr(target, "__name__", None) or type(target).__name__


def gather_contributions(state: RegistryState, type_name: str, index: int) -> list[tuple[int, str, Any, str]]:
    """Every plugin's kernels for ``type_name:index``, each plugin guarded on its own."""
    names = {type_name} | {a for a, t in state.aliases.items() if t == type_name}
    out: list[tuple[int, str, Any, str]] = []
    for plugin in list(state.plugins.values()):
        if plugin.error or plugin.module is None:
            continue
        try:
            found = []
            for result in call_one(
                state, plugin.module, "needle_contribute_kernels", device_type=type_name, index=index
            ):
                for c in _as_list(result):
                    if not all(hasattr(c, a) for a in ("device_type", "kernels", "priority")):
                        raise _ContractError(
                            f"needle_contribute_kernels must return KernelContribution objects, got {c!r}"
                        )
                    if c.device_type not in names:
                        continue
                    _check_api(getattr(c, "api_version", 1), f"KernelContribution for {c.device_type!r}")
                    unknown = unknown_names(c.kernels)
                    if unknown:
                        raise _ContractError(f"contributes unknown kernel names {unknown} (see docs/backends.md)")
                    found.append((int(c.priority), c.provider or plugin.name, dict(c.kernels), plugin.provenance))
            out.extend(found)
        except Exception as exc:
            plugin.error = (
                str(exc) if isinstance(exc, _ContractError) else f"needle_contribute_kernels raised {short_error(exc)}"
            )
            _trace(state, f"{plugin.name}: broken: {plugin.error}")
            _warn_if_broken(plugin)
    return out

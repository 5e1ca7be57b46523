"""From a name to a ``Device``: pick a provider, build its table once, explain failures."""

from __future__ import annotations

import warnings

from ..device import Device, DeviceUnavailableError
from .errors import BackendError, ExperimentalDeviceWarning, UnknownDeviceError
from .course import PACKAGES, install_fix
from .loading import gather_contributions, load
from .naming import canonical, parse, suggest
from .records import AVAILABLE, BROKEN, EXPERIMENTAL, candidates, installed_text, status_of
from .state import Plugin, Provider, RegistryState, short_error
from .table import build_table, missing_primitives, namespace_table

_USABLE = (AVAILABLE, EXPERIMENTAL)


def resolve(state: RegistryState, name: str, *, soft: bool) -> Device:
    """The device ``name``; ``soft`` returns a disabled device instead of raising."""
    with state.lock:
        load(state)
        type_name, index = parse(name)
        type_name = state.aliases.get(type_name, type_name)
        key = canonical(type_name, index)
        providers = candidates(state, type_name)
        if not providers:
            if soft:
                broken = broken_plugin_for(state, type_name)
                if broken is not None:
                    return _disabled(state, type_name, index, f"its plugin is broken: {broken.error}", "")
                return _disabled(state, type_name, index, "its backend is not installed", install_fix(type_name))
            raise _not_found(state, name, type_name)
        failures: list[tuple[str, str, str]] = []
        for provider in providers:
            status, reason, hint = status_of(provider, index)
            if status in _USABLE:
                reason = _index_problem(provider, index, type_name)
                if not reason:
                    device = _built(state, provider, key, type_name, index)
                    if device is not None:
                        _warn_if_experimental(provider)
                        return device
                status, reason, hint = status_of(provider, index) if not reason else ("unavailable", reason, "")
            failures.append((status, reason, hint))
        status, reason, hint = failures[0]
        if soft:
            return _disabled(state, type_name, index, reason, hint)
        what = "is broken" if status == BROKEN else "is not available"
        error = BackendError if status == BROKEN else DeviceUnavailableError
        fix = f" What to do: {hint}." if hint else ""
        raise error(f"device {name!r} {what}: {reason}.{fix}\n{installed_text(state)}")


def device_count(provider: Provider) -> int | None:
    """How many devices the provider has here (``spec.count()``, once); None if count() raised."""
    if provider.count is None and not provider.error:
        try:
            provider.count = 1 if provider.spec.count is None else int(provider.spec.count())
        except Exception as exc:
            provider.error = f"count() raised {short_error(exc)}"
    return provider.count


def _index_problem(provider: Provider, index: int, type_name: str) -> str:
    count = device_count(provider)
    if count is None:
        return provider.error
    if index < count:
        return ""
    found = f"{count} {type_name} device(s) here"
    return f"{type_name}:{index} does not exist: {found}" + (f" (indices 0-{count - 1})" if count else "")


def _built(state: RegistryState, provider: Provider, key: str, type_name: str, index: int) -> Device | None:
    """The device built by ``provider`` (built now if needed); None if building failed."""
    device = state.devices.get(key)
    if device is not None and state.built_by.get(key) is provider and device.enabled():
        return device
    spec = provider.spec
    try:
        if index not in provider.namespaces:
            provider.namespaces[index] = spec.factory(index)
        own = namespace_table(provider.namespaces[index])
    except Exception as exc:
        provider.index_errors[index] = f"factory({index}) raised {short_error(exc)}"
        return None
    missing = missing_primitives(own)
    if missing:
        provider.index_errors[index] = f"missing primitive kernels: {', '.join(missing)} (see docs/backends.md §2)"
        return None
    kernels, sources = build_table(own, provider.plugin.provenance, gather_contributions(state, type_name, index))
    if device is None:
        device = state.devices[key] = Device(type_name, index, kernels, providers=sources, dtypes=spec.dtypes)
    else:  # rebuilt in place: arrays already holding this device see the new table
        device.dtypes = tuple(spec.dtypes)
        device.install_kernels(kernels, sources)
    state.built_by[key] = provider
    if spec.verify is not None and index not in provider.verified:
        provider.verified.add(index)
        failure = run_verify(spec.verify, device)
        if failure:
            provider.verify_errors[index] = failure
            device.disable(failure, spec.install_hint or None)
            state.built_by.pop(key, None)
            return None
    return device


def run_verify(verify, device: Device) -> str:
    """A DeviceSpec's optional smoke step: ``""`` if it passed, else the reason."""
    try:
        result = verify(device)
    except Exception as exc:
        return f"verify() failed: {short_error(exc)}"
    if result is None or result is True:
        return ""
    if result is False:
        return "verify() failed"
    return "" if result.ok else f"verify() failed: {result.reason or 'no reason given'}"


def _disabled(state: RegistryState, type_name: str, index: int, reason: str, hint: str) -> Device:
    key = canonical(type_name, index)
    device = state.devices.get(key)
    if device is None:
        device = state.devices[key] = Device(type_name, index, None, reason=reason, hint=hint or None)
    elif device.enabled() or device._reason != reason:
        device.disable(reason, hint or None)
    state.built_by.pop(key, None)
    return device


def _warn_if_experimental(provider: Provider) -> None:
    if provider.spec.experimental and not provider.warned:
        provider.warned = True
        warnings.warn(
            f"needle: device {provider.spec.name!r} ({provider.plugin.provenance}) is experimental: its backend "
            f"has not passed needle's conformance suite yet, results may be wrong.",
            ExperimentalDeviceWarning,
            stacklevel=4,
        )


def broken_plugin_for(state: RegistryState, type_name: str) -> Plugin | None:
    """A broken plugin that is, or tried to declare, device type ``type_name``."""
    for plugin in state.plugins.values():
        if plugin.error and plugin.would_provide(type_name):
            return plugin
    return None


def _not_found(state: RegistryState, name: str, type_name: str) -> Exception:
    plugin = broken_plugin_for(state, type_name)
    if plugin is not None:  # its plugin broke before its devices were recorded
        return BackendError(
            f"device {name!r} comes from plugin {plugin.name!r} ({plugin.provenance}), which is broken: "
            f"{plugin.error}. What to do: fix or remove it"
            + (f" (pip uninstall {plugin.distribution})" if plugin.distribution else "")
            + f", or block it: NEEDLE_BLOCK_PLUGINS={plugin.name}.\n{installed_text(state)}"
        )
    known = [*state.providers, *state.aliases, *PACKAGES]  # well-known names help typos too
    blocked = f" Its plugin is blocked by NEEDLE_BLOCK_PLUGINS={type_name}." if type_name in state.blocked else ""
    install = f" {install_fix(type_name)}" if type_name in PACKAGES and not blocked else ""
    hint = install or suggest(type_name, known)
    return UnknownDeviceError(
        f"unknown device {name!r}: no installed backend provides {type_name!r}.{hint}{blocked}"
        f"\n{installed_text(state)}\nA backend is a package such as needle-backend-cpu; see docs/writing-a-backend.md."
    )


def rebuild(state: RegistryState) -> None:
    """After a late registration: re-resolve every device made so far, in place."""
    state.fast.clear()
    state.soft.clear()
    state.default = None
    for key, device in list(state.devices.items()):
        state.built_by.pop(key, None)
        try:
            resolve(state, key, soft=True)
        except Exception as exc:  # never leave a half-updated device behind
            device.disable(f"rebuilding its kernel table failed: {short_error(exc)}")

"""Status of every backend: cheap probes, public records, the "what is installed" text."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

from .._reload import keep
from ..hookspecs import ProbeResult
from .errors import PluginWarning
from .naming import canonical
from .course import PACKAGES, REFERENCE
from .hints import install_command
from .state import Plugin, Provider, RegistryState, short_error

AVAILABLE, UNAVAILABLE, BROKEN, EXPERIMENTAL = "available", "unavailable", "broken", "experimental"


@dataclass(frozen=True)
class BackendRecord:
    """One row of ``ndl.devices()``: a device type (or a plugin that broke before declaring any)."""

    name: str
    status: str  # "available" | "unavailable" | "broken" | "experimental"
    reason: str = ""  # why unavailable / the short error when broken
    hint: str = ""  # what to do about it
    plugin: str = ""  # entry-point (or module) name
    distribution: str | None = None
    version: str | None = None
    source: str = ""  # "entry point" | "NEEDLE_PLUGINS" | "register()"
    aliases: tuple[str, ...] = ()
    priority: int = 0
    active: bool = True  # False: another provider of this name is used
    # kernels of the built device that another package provides: ((kernel, provenance), ...)
    overrides: tuple[tuple[str, str], ...] = ()

    @property
    def usable(self) -> bool:
        return self.status in (AVAILABLE, EXPERIMENTAL)

    @property
    def provider(self) -> str:
        if self.distribution:
            return f"{self.distribution} {self.version}" if self.version else self.distribution
        return self.plugin

    def __str__(self) -> str:
        status = self.status if not self.reason else f"{self.status} ({self.reason})"
        standby = "" if self.active else " [standby: another provider is used]"
        return f"{self.name}: {status}, from {self.provider}{standby}{self.overrides_text(prefix='; ')}"

    def overrides_text(self, prefix: str = "") -> str:
        """``"overrides: ewise_add <- needle-backend-fastadd 0.1.0"`` (empty when none)."""
        if not self.overrides:
            return ""
        return prefix + "overrides: " + ", ".join(f"{k} \u2190 {src}" for k, src in self.overrides)


def _probe(provider: Provider) -> ProbeResult:
    """Run (once) the provider's cheap probe; a raising probe makes it broken."""
    if provider.probe is None:
        # a probe that asks the registry for statuses sees itself as "not yet known"
        provider.probe = ProbeResult(False, "its probe is still running (it asked for its own status)")
        try:
            result = provider.spec.probe()
            provider.probe = result if isinstance(result, ProbeResult) else ProbeResult(bool(result))
        except Exception as exc:  # a plugin's bug must not break the registry
            provider.error = f"probe() raised {short_error(exc)}"
            provider.probe = ProbeResult(False, provider.error)
            warnings.warn(
                f"needle: device {provider.spec.name!r} from {provider.plugin.provenance} is broken: "
                f"{provider.error}. Block it with NEEDLE_BLOCK_PLUGINS={provider.plugin.name}.",
                PluginWarning,
                stacklevel=4,
            )
    return provider.probe


def status_of(provider: Provider, index: int = 0) -> tuple[str, str, str]:
    """``(status, reason, hint)`` of a provider's device ``index``, probing it if needed.

    Probe and count failures concern every index; factory and verify failures only
    the index they happened on.
    """
    if provider.plugin.error:
        return BROKEN, provider.plugin.error, _fix_hint(provider.plugin)
    probe = _probe(provider)
    if provider.error:
        return BROKEN, provider.error, _fix_hint(provider.plugin)
    if not probe.ok:
        return (
            UNAVAILABLE,
            probe.reason or "its probe says it cannot run here",
            probe.hint or provider.spec.install_hint,
        )
    if index in provider.index_errors:
        return BROKEN, provider.index_errors[index], _fix_hint(provider.plugin)
    if index in provider.verify_errors:
        return UNAVAILABLE, provider.verify_errors[index], provider.spec.install_hint
    return (EXPERIMENTAL if provider.spec.experimental else AVAILABLE), "", ""


def runnable(provider: Provider) -> bool:
    """Whether some index of the provider may work: its plugin loaded, its probe says yes."""
    return not provider.plugin.error and _probe(provider).ok and not provider.error


def _fix_hint(plugin: Plugin) -> str:
    remove = f"pip uninstall {plugin.distribution}" if plugin.distribution else f"stop loading {plugin.name}"
    return f"fix or remove the plugin ({remove}), or block it: NEEDLE_BLOCK_PLUGINS={plugin.name}"


def candidates(state: RegistryState, type_name: str) -> list[Provider]:
    """Providers of a device type, best first: priority, then plugin name."""
    return sorted(state.providers.get(type_name, ()), key=lambda p: p.sort_key)


def records(state: RegistryState) -> list[BackendRecord]:
    """One row per provider of each type (its index 0, what the bare name gives), then a
    ``type:index`` row for each other index already tried whose status differs from index 0."""
    out: list[BackendRecord] = []
    for type_name in sorted(state.providers):
        providers = candidates(state, type_name)
        out += _rows(state, type_name, providers, 0)
        for index in sorted(set().union(*(p.tried() for p in providers)) - {0}):
            out += _rows(state, f"{type_name}:{index}", providers, index)
    declared = {p.plugin.name for ps in state.providers.values() for p in ps}
    for plugin in state.plugins.values():
        if plugin.error and plugin.name not in declared:
            out.append(_record(plugin, plugin.name, BROKEN, plugin.error, _fix_hint(plugin), None, True))
    return out


def _overrides(state: RegistryState, name: str, index: int, provider: Provider) -> tuple[tuple[str, str], ...]:
    """Kernels of the device ``provider`` built whose provenance is another package's."""
    key = canonical(name.partition(":")[0], index)
    device = state.devices.get(key)
    if device is None or state.built_by.get(key) is not provider:
        return ()
    own = provider.plugin.provenance
    return tuple(sorted((k, src) for k, src in device.kernel_sources().items() if src != own))


def _rows(state: RegistryState, name: str, providers: list[Provider], index: int) -> list[BackendRecord]:
    rows = [(p, *status_of(p, index)) for p in providers]
    usable = [
        i
        for i, (p, status, _, _) in enumerate(rows)
        if status in (AVAILABLE, EXPERIMENTAL) and (not index or p.count is None or index < p.count)
    ]
    active = usable[0] if usable else 0  # nothing usable: the best one is the one asked for
    out = []
    for i, (provider, status, reason, hint) in enumerate(rows):
        if index and (index not in provider.tried() or (status, reason, hint) == status_of(provider, 0)):
            continue  # an index row only says what the type's row does not
        record = _record(provider.plugin, name, status, reason, hint, provider, i == active)
        overrides = _overrides(state, name, index, provider)
        out.append(dataclasses.replace(record, overrides=overrides) if overrides else record)
    return out


def _record(
    plugin: Plugin, name: str, status: str, reason: str, hint: str, provider: Provider | None, active: bool
) -> BackendRecord:
    spec = provider.spec if provider else None
    return BackendRecord(
        name=name,
        status=status,
        reason=reason,
        hint=hint,
        plugin=plugin.name,
        distribution=plugin.distribution,
        version=plugin.version,
        source=plugin.source,
        aliases=tuple(spec.aliases) if spec else (),
        priority=spec.priority if spec else 0,
        active=active,
    )


def installed_text(state: RegistryState) -> str:
    """The list every lookup error ends with: each backend, its status and why."""
    lines = [f"  {r}" + (f"; {r.hint}" if r.hint and not r.usable else "") for r in records(state)]
    none = f"  (none: {install_command(PACKAGES[REFERENCE])})"
    text = "installed backends:\n" + ("\n".join(lines) if lines else none)
    if state.blocked:
        text += "\nblocked by NEEDLE_BLOCK_PLUGINS: " + ", ".join(state.blocked)
    return text


keep(globals(), "BackendRecord")

"""The registry's in-memory state: loaded plugins, device providers, built devices.

One ``STATE`` object per process, kept across module reloads (``_reload.keep``), so
re-importing the registry never duplicates devices or plugins.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

import pluggy

from .._reload import keep
from ..device import Device
from ..hookspecs import DeviceSpec, ProbeResult


def short_error(exc: BaseException) -> str:
    """``"ImportError: no module named x (at plugin.py:3)"``: one line, with its origin."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if frames:
        last = frames[-1]
        where = f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"


@dataclass(eq=False)
class Plugin:
    """One loaded (or failed) plugin: an entry point, a NEEDLE_PLUGINS module or a register() call."""

    name: str
    source: str  # "entry point" | "NEEDLE_PLUGINS" | "register()"
    module: Any = None
    distribution: str | None = None
    version: str | None = None
    error: str = ""  # non-empty: broken (the short error)
    declared: tuple[str, ...] = ()  # device names it tried to declare (kept when it broke)

    def would_provide(self, type_name: str) -> bool:
        """Whether asking for ``type_name`` means asking for this plugin."""
        return type_name == self.name or type_name in self.declared

    @property
    def provenance(self) -> str:
        """What ``Device.kernel_source`` reports: ``"needle-backend-x 0.1.0"``."""
        if self.distribution:
            return f"{self.distribution} {self.version}" if self.version else self.distribution
        module = getattr(self.module, "__name__", None)
        return f"{self.name} (module {module})" if module and module != self.name else self.name


@dataclass(eq=False)
class Provider:
    """One ``DeviceSpec`` of one plugin, with what the registry learned about it."""

    spec: DeviceSpec
    plugin: Plugin
    probe: ProbeResult | None = None  # cached result of spec.probe()
    count: int | None = None  # cached spec.count()
    error: str = ""  # probe/count raised: every index is broken
    # Failures of one index only, so that opencl:1 failing leaves opencl:0 usable.
    index_errors: dict[int, str] = field(default_factory=dict)  # factory raised / primitives missing: broken
    verify_errors: dict[int, str] = field(default_factory=dict)  # spec.verify failed: unavailable
    namespaces: dict[int, Any] = field(default_factory=dict)  # factory(index) results
    verified: set[int] = field(default_factory=set)  # indices whose spec.verify ran
    warned: bool = False  # experimental warning given

    def tried(self) -> set[int]:
        """Indices the registry has tried to build (successfully or not)."""
        return {*self.namespaces, *self.index_errors, *self.verify_errors, *self.verified}

    @property
    def sort_key(self) -> tuple[int, str]:
        return (-self.spec.priority, self.plugin.name)


class RegistryState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.loaded = False
        self.pm: pluggy.PluginManager | None = None
        self.plugins: dict[str, Plugin] = {}
        self.providers: dict[str, list[Provider]] = {}  # type name -> candidates
        self.aliases: dict[str, str] = {}  # alias -> type name
        self.devices: dict[str, Device] = {}  # canonical "type:index" -> the Device
        self.built_by: dict[str, Provider] = {}  # canonical -> provider of its table
        self.fast: dict[str, Device] = {}  # user-given name -> enabled Device
        self.soft: dict[str, Device] = {}  # name -> device returned by cpu()/cuda()/...
        self.blocked: list[str] = []  # entry points skipped by NEEDLE_BLOCK_PLUGINS
        self.default: tuple[str | None, Device] | None = None


STATE = RegistryState()

keep(globals(), "Plugin", "Provider", "RegistryState", "STATE")

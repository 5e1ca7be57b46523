"""Exceptions raised by the registry (each message says what to do)."""

from __future__ import annotations

from .._reload import keep
from ..device import DeviceUnavailableError


class UnknownDeviceError(ValueError, LookupError):
    """``ndl.device(name)`` for a name no installed backend provides."""


class BackendError(RuntimeError):
    """A backend that was explicitly asked for (or registered) is broken."""


class PluginWarning(UserWarning):
    """An auto-discovered plugin failed to load; it is recorded, the rest works."""


class ExperimentalDeviceWarning(UserWarning):
    """First use of a device whose backend declares itself experimental."""


keep(globals(), "UnknownDeviceError", "BackendError", "PluginWarning", "ExperimentalDeviceWarning")

__all__ = [
    "BackendError",
    "DeviceUnavailableError",
    "ExperimentalDeviceWarning",
    "PluginWarning",
    "UnknownDeviceError",
]

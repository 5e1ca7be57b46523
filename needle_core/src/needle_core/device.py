"""Device objects: a canonical name plus a frozen kernel table.

Kernels are installed as plain instance attributes, so ``device.ewise_add`` is an
ordinary attribute access on the hot path: no pluggy, no ``__getattr__`` forwarding.
Optional kernels a backend lacks are attributes set to ``None``. A device that
cannot run switches (in place, same object) to the ``DisabledDevice`` subclass,
whose ``__getattr__`` explains what to install: ``Device`` itself defines no
``__getattr__``, which would keep CPython from specialising its attribute loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._reload import keep
from .kernels import DEVICE_ATTRIBUTES, OPTIONAL_KERNELS, PRIMITIVE_KERNELS


class DeviceUnavailableError(RuntimeError, AttributeError):
    """Raised when a disabled device is asked to allocate or compute.

    Also an ``AttributeError`` so ``hasattr``/``getattr(dev, name, None)`` on a
    disabled device answer "no" instead of raising.
    """


class Device:
    """A compute device. Compare/hash by canonical ``type:index``."""

    # attributes set in __init__; everything else in __dict__ is the kernel table
    def __init__(
        self,
        type_name: str,
        index: int = 0,
        kernels: Mapping[str, Any] | None = None,
        *,
        reason: str | None = None,
        hint: str | None = None,
        providers: Mapping[str, str] | None = None,
        dtypes: tuple[str, ...] = ("float32",),
    ) -> None:
        self.name = type_name
        self.index = index
        self.canonical = f"{type_name}:{index}"
        self.dtypes = tuple(dtypes)
        self._reason = reason
        self._hint = hint
        self._providers: dict[str, str] = dict(providers or {})
        self._enabled = kernels is not None
        if kernels is not None:
            self.install_kernels(kernels, self._providers)
        else:
            self.__class__ = DisabledDevice

    # -- kernel table -------------------------------------------------------------
    def install_kernels(self, kernels: Mapping[str, Any], providers: Mapping[str, str] | None = None) -> None:
        """(Re)build the frozen table: every primitive, every optional (or None)."""
        missing = [n for n in PRIMITIVE_KERNELS if kernels.get(n) is None]
        if missing:
            raise TypeError(f"device {self.canonical!r}: backend is missing primitive kernels {missing}")
        for name in PRIMITIVE_KERNELS + OPTIONAL_KERNELS:
            self.__dict__[name] = kernels.get(name)
        for name in DEVICE_ATTRIBUTES:
            if name in kernels:
                self.__dict__[name] = kernels[name]
        for name, fn in kernels.items():  # backend extras (e.g. debugging helpers)
            if name not in self.__dict__ and not name.startswith("_"):
                self.__dict__[name] = fn
        self._providers = dict(providers or self._providers)
        self._enabled = True
        self._reason = self._hint = None
        if type(self) is DisabledDevice:
            self.__class__ = Device

    def disable(self, reason: str, hint: str | None = None) -> None:
        """Drop the kernel table (in place): the device now explains why it cannot run."""
        for name in PRIMITIVE_KERNELS + OPTIONAL_KERNELS + DEVICE_ATTRIBUTES:
            self.__dict__.pop(name, None)
        self._enabled = False
        self._reason, self._hint = reason, hint
        if type(self) is Device:
            self.__class__ = DisabledDevice

    def kernel_source(self, name: str) -> str | None:
        """Which distribution provides kernel ``name`` (e.g. ``"needle-backend-cpu 0.1.0"``)."""
        if self.__dict__.get(name) is None:
            return None
        return self._providers.get(name, self._providers.get("*"))

    def kernel_sources(self) -> dict[str, str]:
        """Provenance of every kernel the device has: ``{"ewise_add": "needle-backend-cpu 0.1.0", ...}``."""
        fallback = self._providers.get("*")
        return {
            n: src
            for n in (*PRIMITIVE_KERNELS, *OPTIONAL_KERNELS)
            if self.__dict__.get(n) is not None and (src := self._providers.get(n, fallback)) is not None
        }

    def has_kernel(self, name: str) -> bool:
        return self.__dict__.get(name) is not None

    # -- course surface -----------------------------------------------------------
    def enabled(self) -> bool:
        return self._enabled

    def unavailable_message(self) -> str:
        why = self._reason or "its backend is not installed"
        msg = f"device {str(self)!r} is not available: {why}."
        if self._hint:
            msg += f" {self._hint}"
        from .registry.course import reference_suggestion  # the registry imports this module

        return msg + reference_suggestion(self.name)

    def __repr__(self) -> str:
        from .registry.course import course_repr  # the registry imports this module

        return course_repr(self.name, self.index) or f"device({str(self)!r})"

    def __str__(self) -> str:
        """The name ``ndl.device()`` and ``--device`` take: ``cpu``, ``opencl``, ``cuda:1``.

        Every message and table prints devices this way; ``repr`` keeps the course's ``cpu()``.
        """
        return self.canonical if self.index else self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.canonical == self.canonical

    def __hash__(self) -> int:
        return hash(self.canonical)

    # A device is a registry singleton: copies are the same object, and a pickle
    # stores its name and looks it up again on load.
    def __copy__(self) -> Device:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Device:
        return self

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        from .registry import device as lookup  # the registry imports this module

        return lookup, (self.canonical,)

    # -- host-side random/constant constructors (course's BackendDevice API) ------
    def _from_host(self, array: np.ndarray, dtype: str):
        from .backend_ndarray import NDArray  # deferred: ndarray imports this module

        return NDArray(np.ascontiguousarray(array, dtype=dtype), device=self)

    def rand(self, *shape: int, dtype: str = "float32"):
        return self._from_host(np.random.rand(*shape).astype(dtype), dtype)

    def randn(self, *shape: int, dtype: str = "float32"):
        return self._from_host(np.random.randn(*shape).astype(dtype), dtype)

    def one_hot(self, n: int, i, dtype: str = "float32"):
        idx = np.asarray(i.numpy() if hasattr(i, "numpy") else i).astype(np.int64)
        return self._from_host(one_hot_rows(n, idx, dtype), dtype)

    def empty(self, shape, dtype: str = "float32"):
        from .backend_ndarray import empty

        return empty(shape, dtype=dtype, device=self)

    def full(self, shape, fill_value, dtype: str = "float32"):
        from .backend_ndarray import full

        return full(shape, fill_value, dtype=dtype, device=self)


def one_hot_rows(n: int, index: np.ndarray, dtype: Any = "float32") -> np.ndarray:
    """``eye(n)[index]`` without building ``eye(n)`` (n = 10k would be 400 MB per call):
    zeros of shape ``index.shape + (n,)`` with a 1 at each index (negative indices wrap,
    out-of-range ones raise IndexError, as indexing eye would)."""
    out = np.zeros(index.shape + (n,), dtype=dtype)
    if index.size and (index.max() >= n or index.min() < -n):
        bad = index[(index >= n) | (index < -n)].flat[0]
        raise IndexError(f"one_hot: index {bad} is out of bounds for {n} classes")
    np.put_along_axis(out, index[..., None] % max(n, 1), 1, axis=-1)
    return out


class DisabledDevice(Device):
    """A device that cannot run here (same identity as when it runs: the class is swapped)."""

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes that are not set: kernels of a disabled device.
        if name.startswith("__") or self.__dict__.get("_enabled", True):
            raise AttributeError(f"device {self.__dict__.get('canonical', '?')!r} has no attribute {name!r}")
        raise DeviceUnavailableError(self.unavailable_message())


keep(globals(), "Device", "DisabledDevice", "DeviceUnavailableError")

"""Pickling NDArrays on any device, and loading them onto another one.

A device buffer (a pyopencl ``Buffer``, a pybind11 array, a CUDA allocation) is not
picklable in general, so ``NDArray.__reduce__`` stores the logical array as a NumPy
array plus the dtype and the device *name*; ``rebuild_ndarray`` looks the device up
in the registry on load. That uses only the public ABI (``to_numpy``/``from_numpy``),
so it works for every backend, third-party ones included. A pickled view is stored,
and loaded, as a compact copy of its values.

Pickles name ``needle_core.backend_ndarray.pickling.rebuild_ndarray``: keep that
name and its arguments stable, or old pickles stop loading.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from ..device import Device
from ..registry import device as _lookup_device
from .ndarray import NDArray, _from_host

Location = Device | str | Mapping[str, Device | str]

# per thread / asyncio task, as a ContextVar: one loader's mapping never leaks into another's
_LOCATION: ContextVar[Location | None] = ContextVar("needle_map_location", default=None)


@contextmanager
def map_location(location: Location) -> Iterator[None]:
    """Unpickle NDArrays (and the Tensors holding them) onto ``location``.

    ``location`` is a device (or name) for every array, or a mapping from the saved
    device to a new one: keys are a saved device's name ``"type:index"`` or type
    (``"cuda"`` matches every CUDA index); arrays whose device is not a key load
    where they were saved. ``with nd.map_location("cpu_numpy"): obj = pickle.load(f)``
    loads a checkpoint pickled on a GPU on a machine without one. A dtype the new
    device cannot hold converts as ``NDArray.to`` does (float64 becomes float32).
    """
    token = _LOCATION.set(location)
    try:
        yield
    finally:
        _LOCATION.reset(token)


def _mapped(saved: str) -> Device | str:
    location = _LOCATION.get()
    if location is None:
        return saved
    if isinstance(location, Mapping):
        keys = {str(k).lower(): v for k, v in location.items()}
        return keys.get(saved, keys.get(saved.split(":")[0], saved))
    return location


def rebuild_ndarray(values: np.ndarray, dtype: str, device_name: str) -> NDArray:
    """The inverse of ``NDArray.__reduce__``: ``values`` on the saved (or mapped) device."""
    target = _mapped(device_name)
    try:
        dev = target if isinstance(target, Device) else _lookup_device(target)
    except (LookupError, RuntimeError) as exc:  # UnknownDeviceError, DeviceUnavailableError, BackendError
        hint = (
            f"cannot unpickle an NDArray onto device {str(target)!r} (saved on {device_name!r}): that device "
            "is not usable here. Load onto one that is, e.g. "
            "`with needle.backend_ndarray.map_location('cpu_numpy'): obj = pickle.load(f)`, "
            "then move arrays/Tensors with .to(device) or Tensor(x, device=...). The registry says: "
        )
        raise type(exc)(hint + str(exc)) from exc
    return _from_host(values, dev, dtype if dtype in dev.dtypes else None)


def reduce_ndarray(array: NDArray) -> tuple[Any, tuple[np.ndarray, str, str]]:
    """``NDArray.__reduce__``: host values, dtype and the device's canonical name."""
    return rebuild_ndarray, (array.numpy(), array.dtype, array.device.canonical)

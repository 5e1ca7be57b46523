"""Device arrays <-> host NumPy memory for MPI: in place where the buffer is in host memory.

A backend whose buffers live in host memory (``cpu``, ``cpu_numpy``) exposes NumPy's
``__array_interface__`` on them (docs/backends.md): MPI then reads and writes those
elements directly. Other buffers (GPUs, OpenCL) are staged through host copies with the
backend's ``to_numpy``/``from_numpy``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from needle_core.backend_ndarray import NDArray, empty


def host_view(arr: NDArray) -> np.ndarray | None:
    """``arr`` as a NumPy array sharing its memory (strides and offset kept), or None
    when its buffer is not in host memory."""
    handle = arr._handle
    if not hasattr(handle, "__array_interface__"):
        return None
    flat = np.asarray(handle)  # the whole buffer, 1-D; keeps ``handle`` alive
    item = flat.itemsize
    return np.ndarray(arr.shape, flat.dtype, flat, arr._offset * item, [s * item for s in arr.strides])


def is_host(device: Any) -> bool:
    """Whether ``device``'s buffers are readable in place (probed on a one-element buffer)."""
    return host_view(empty((1,), device=device)) is not None


def pack(arr: NDArray, dest: np.ndarray, scale: float = 1.0) -> None:
    """Write ``arr``'s elements (times ``scale``) into the flat host slice ``dest``."""
    view = host_view(arr)
    src = view if view is not None else arr.numpy()  # staging: one device-to-host copy
    shaped = dest.reshape(arr.shape)
    if scale == 1.0:
        shaped[...] = src
    else:
        np.multiply(src, scale, out=shaped, casting="same_kind")


def unpack(src: np.ndarray, shape: tuple[int, ...], dtype: str, device: Any, scale: float = 1.0) -> NDArray:
    """A new compact NDArray on ``device`` holding ``src`` (a flat host slice) times ``scale``."""
    out = empty(shape, dtype=dtype, device=device)
    view = host_view(out)
    if view is not None:
        target = view.reshape(-1)
        if scale == 1.0:
            target[...] = src
        else:
            np.multiply(src, scale, out=target, casting="same_kind")
    else:  # staging: one host-to-device copy
        host = src if scale == 1.0 else (src * scale).astype(src.dtype, copy=False)
        device.from_numpy(np.ascontiguousarray(host), out._handle)
    return out

"""DLPack: share NDArray memory with NumPy, PyTorch and any other DLPack library.

Export (``NDArray.__dlpack__`` / ``Tensor.__dlpack__``): a device whose backend has the
``host_array`` hook (docs/backends.md §8) exposes its buffer as a 1-D NumPy array;
the NDArray's view (shape, element strides, offset) of it is exported by NumPy's own
``__dlpack__``, so the consumer shares the memory and keeps the buffer alive through
NumPy's base chain. A backend with the ``dlpack_device`` hook (CUDA) exports its
device pointer (``_capsule.py``). Any other device raises ``BufferError``.

Import (``from_dlpack``): the producer is read with ``np.from_dlpack`` (CPU memory),
then wrapped without a copy by the target device's ``from_host_array`` hook.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..device import Device
from ._shapes import compact_strides
from .dtypes import check_dtype

KDL_CPU = 1
KDL_CUDA = 2


def _hook(device: Device, name: str) -> Any:
    return device.__dict__.get(name)


def _cannot(device: Device, what: str) -> BufferError:
    return BufferError(
        f"device {device!r} cannot {what} through DLPack: its backend has no host_array/dlpack_device hook "
        "(docs/backends.md §8). Copy through the host instead: a.numpy() gives a NumPy array (a copy), "
        "and ndl.Tensor(numpy_array, device=...) copies back."
    )


def host_view(a: Any) -> np.ndarray:
    """The NumPy array sharing ``a``'s memory (same shape, strides and offset)."""
    host = _hook(a.device, "host_array")
    if host is None:
        raise _cannot(a.device, "share its memory with the host")
    flat = host(a._handle)
    item = flat.itemsize
    return np.ndarray(a.shape, flat.dtype, buffer=flat, offset=a._offset * item,
                      strides=tuple(s * item for s in a.strides))


def dlpack_device(a: Any) -> tuple[int, int]:
    """``(device_type, device_id)`` in DLPack's codes: ``(1, 0)`` for host memory."""
    if _hook(a.device, "host_array") is not None:
        return (KDL_CPU, 0)
    spec = _hook(a.device, "dlpack_device")
    if spec is not None:
        return (int(spec[0]), int(spec[1]))
    raise _cannot(a.device, "export its memory")


def export(a: Any, *, stream: Any = None, max_version: Any = None, dl_device: Any = None, copy: Any = None) -> Any:
    """``a.__dlpack__(...)``: a DLPack capsule for ``a`` (see the module docstring)."""
    if _hook(a.device, "host_array") is not None:
        kwargs = {k: v for k, v in (("stream", stream), ("max_version", max_version), ("dl_device", dl_device),
                                    ("copy", copy)) if v is not None}
        return host_view(a).__dlpack__(**kwargs)
    if _hook(a.device, "dlpack_device") is not None:
        from . import _capsule

        if copy:
            raise BufferError(f"__dlpack__(copy=True) is not supported on {a.device!r}: export shares memory")
        return _capsule.export_device(a, dlpack_device(a), max_version)
    raise _cannot(a.device, "export its memory")


def from_dlpack(obj: Any, device: Device | str | None = None, copy: bool | None = None) -> Any:
    """An NDArray on ``device`` (default: the default device) holding ``obj``'s values.

    ``copy=None``: share ``obj``'s memory when the device can map host memory
    (``from_host_array`` hook: cpu, cpu_numpy), else copy onto the device.
    ``copy=False``: share or raise ``BufferError``. ``copy=True``: always copy.
    The dtype is kept (it must be one the device holds); negative strides are rejected
    unless copying.
    """
    from .ndarray import NDArray, _resolve_device

    dev = _resolve_device(device)
    kind = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else KDL_CPU
    if int(kind) not in (KDL_CPU, 3):  # kDLCPUPinned is host memory too
        raise BufferError(
            f"from_dlpack: the producer's memory is on DLPack device type {int(kind)}, not host memory; needle "
            "imports host (kDLCPU) memory. Move it to the host first (e.g. torch: t.cpu())."
        )
    host = np.from_dlpack(obj)
    if host.dtype.kind != "f":
        raise TypeError(f"from_dlpack: needle holds floating-point arrays, got {host.dtype}; convert it first "
                        f"(e.g. x.astype(np.float32))")
    dtype = check_dtype(host.dtype.name, dev)
    share = _hook(dev, "from_host_array")
    item = host.itemsize
    negative = any(s < 0 for s in host.strides)
    misaligned = any(s % item for s in host.strides)
    if copy is True or share is None or not host.flags.writeable:
        if copy is False:
            why = ("the producer's memory is read-only" if share is not None
                   else f"device {dev!r} cannot map host memory (no from_host_array hook)")
            raise BufferError(f"from_dlpack(copy=False): cannot share memory: {why}; pass copy=None or True")
        return NDArray(np.array(host, copy=True), device=dev, dtype=dtype)
    if negative or misaligned:
        raise BufferError(
            f"from_dlpack: the producer's strides {host.strides} (bytes) include negative or non-element "
            "steps, which needle views cannot express; pass copy=True to import a copy"
        )
    if host.size == 0:
        return NDArray.make(host.shape, device=dev, dtype=dtype)
    strides = tuple(s // item for s in host.strides)
    span = 1 + sum((n - 1) * s for n, s in zip(host.shape, strides, strict=True))
    flat = np.lib.stride_tricks.as_strided(host, shape=(span,), strides=(item,), writeable=True)
    buf = share(flat)
    if not host.shape:
        strides = ()
    elif host.flags.c_contiguous:
        strides = compact_strides(host.shape)  # stride of a length-1 axis is arbitrary in DLPack
    return NDArray.make(host.shape, strides, device=dev, handle=buf, offset=0)


def tensor_from_dlpack(obj: Any, device: Device | str | None = None, copy: bool | None = None,
                       requires_grad: bool = False) -> Any:
    """``ndl.from_dlpack``: ``from_dlpack`` as a Tensor (sharing memory the same way)."""
    from ..autograd import Tensor

    return Tensor.make_const(from_dlpack(obj, device=device, copy=copy), requires_grad=requires_grad)

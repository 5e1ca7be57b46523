"""A DLPack capsule for memory that is not host memory (a CUDA device pointer).

Host backends never come here: NumPy's ``__dlpack__`` exports them. For a device
pointer NumPy cannot help, so the capsule is built with ``ctypes`` following the
DLPack ABI (``DLManagedTensor[Versioned]``, capsule ``"dltensor[_versioned]"``): the structure, its
shape/strides and the exported NDArray (which keeps the device buffer alive) stay
in ``_LIVE`` until the consumer calls the deleter, or until the capsule is freed
unconsumed.
"""

from __future__ import annotations

import ctypes
from typing import Any

_DTYPE_CODES = {"float32": (2, 32), "float64": (2, 64)}  # kDLFloat, bits


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class DLManagedTensor(ctypes.Structure):
    pass


class DLManagedTensorVersioned(ctypes.Structure):
    pass


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


_DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
DLManagedTensor._fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _DELETER)]
DLManagedTensorVersioned._fields_ = [("version", DLPackVersion), ("manager_ctx", ctypes.c_void_p),
                                     ("deleter", _DELETER), ("flags", ctypes.c_uint64), ("dl_tensor", DLTensor)]

_NAME = b"dltensor"
_NAME_VERSIONED = b"dltensor_versioned"
_LIVE: dict[int, tuple[Any, ...]] = {}  # address of the DLManagedTensor -> what must stay alive


@_DELETER
def _delete(address: int) -> None:
    _LIVE.pop(address, None)


_CAPSULE_DESTRUCTOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
# Our own handle on the C API: argtypes set on ctypes.pythonapi's shared functions by
# other code cannot change ours.
_api = ctypes.PyDLL(ctypes.pythonapi._name, handle=ctypes.pythonapi._handle)
_api.PyCapsule_New.restype = ctypes.py_object
_api.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, _CAPSULE_DESTRUCTOR]
_api.PyCapsule_IsValid.restype = ctypes.c_int
_api.PyCapsule_IsValid.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_api.PyCapsule_GetPointer.restype = ctypes.c_void_p
_api.PyCapsule_GetPointer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]


@_CAPSULE_DESTRUCTOR
def _capsule_freed(capsule: int) -> None:
    # Still named "dltensor[_versioned]": nobody consumed it (a consumer renames it "used_...").
    for name in (_NAME, _NAME_VERSIONED):
        if _api.PyCapsule_IsValid(capsule, name):
            _LIVE.pop(_api.PyCapsule_GetPointer(capsule, name), None)


def export_device(a: Any, device: tuple[int, int], max_version: Any = None) -> Any:
    """A DLPack capsule for NDArray ``a`` whose buffer's ``ptr()`` is an address on DLPack
    device ``device`` (element strides and offset become DLPack's): ``"dltensor_versioned"``
    (DLPack 1.0, writable) when the consumer's ``max_version`` allows it, else ``"dltensor"``."""
    dtype = _DTYPE_CODES.get(str(a.dtype))
    if dtype is None:
        raise BufferError(f"DLPack export: unsupported dtype {a.dtype}")
    ndim = len(a.shape)
    shape = (ctypes.c_int64 * max(ndim, 1))(*a.shape)
    strides = (ctypes.c_int64 * max(ndim, 1))(*a.strides)
    versioned = max_version is not None and int(max_version[0]) >= 1
    managed = DLManagedTensorVersioned() if versioned else DLManagedTensor()
    if versioned:
        managed.version = DLPackVersion(1, 0)
    t = managed.dl_tensor
    t.data = a._handle.ptr()
    t.device = DLDevice(int(device[0]), int(device[1]))
    t.ndim = ndim
    t.dtype = DLDataType(dtype[0], dtype[1], 1)
    t.shape = ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64))
    t.strides = ctypes.cast(strides, ctypes.POINTER(ctypes.c_int64))
    t.byte_offset = a._offset * dtype[1] // 8
    managed.deleter = _delete
    address = ctypes.addressof(managed)
    _LIVE[address] = (managed, shape, strides, a)
    return _api.PyCapsule_New(address, _NAME_VERSIONED if versioned else _NAME, _capsule_freed)

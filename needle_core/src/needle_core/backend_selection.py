"""The course's ``backend_selection``: which array API the ops compute with.

needle has one array API (``needle_core.backend_ndarray``); the device a tensor
lives on picks the kernels. The names below are the ones course code imports.
"""

from . import backend_ndarray as array_api
from .backend_ndarray import NDArray, all_devices, cpu, cpu_numpy, cuda, default_device, device
from .device import Device

BACKEND = "nd"

__all__ = ["array_api", "NDArray", "Device", "BACKEND", "cpu", "cuda", "cpu_numpy", "default_device",
           "all_devices", "device"]  # fmt: skip

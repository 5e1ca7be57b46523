"""Fake ``pycuda.tools``: the memory pool (no pooling; every block is fresh)."""

from __future__ import annotations

from .driver import DeviceAllocation


class DeviceMemoryPool:
    def __init__(self) -> None:
        self.allocations = 0

    def allocate(self, nbytes: int) -> DeviceAllocation:
        self.allocations += 1
        return DeviceAllocation(nbytes)

    def free_held(self) -> None:
        pass

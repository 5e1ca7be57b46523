"""Fake ``pycuda.driver``: devices, contexts, memory and copies on the host."""

from __future__ import annotations

import bisect
import ctypes
import os
import weakref

import numpy as np

GUARD = 256  # guard bytes on each side of an allocation
ALIGN = 256  # cudaMalloc alignment
_POISON = 0xFF  # 0xFFFFFFFF is a float NaN: reads out of bounds or of fresh memory show up

_live: weakref.WeakSet[DeviceAllocation] = weakref.WeakSet()
_starts: list[int] = []  # sorted start addresses of the live allocations
_by_start: dict[int, weakref.ref[DeviceAllocation]] = {}


def _forget(ptr: int) -> None:
    del _starts[bisect.bisect_left(_starts, ptr)]
    del _by_start[ptr]


def allocation_at(ptr: int) -> DeviceAllocation | None:
    """The live allocation whose buffer (or guard bytes) holds address ``ptr``."""
    i = bisect.bisect_right(_starts, ptr) - 1
    for start in _starts[max(i, 0) : i + 2]:  # a pointer into the next one's leading guard too
        alloc = _by_start[start]()
        if alloc is not None and alloc.raw_begin <= ptr < alloc.raw_end:
            return alloc
    return None


def guard_bands(pointers: list[int]) -> list[int]:
    """Flat, sorted ``[begin, end, allocation, size]`` of the guard bytes around the
    allocations the ``pointers`` point into (what a kernel given them can reach)."""
    bands = set()
    for ptr in pointers:
        alloc = allocation_at(ptr)
        if alloc is not None:
            bands.add((alloc.raw_begin, alloc.ptr, alloc.ptr, alloc.nbytes))
            bands.add((alloc.ptr + alloc.nbytes, alloc.raw_end, alloc.ptr, alloc.nbytes))
    return [v for band in sorted(bands) for v in band]


class Error(Exception):
    pass


class LogicError(Error):
    pass


class DeviceAllocation:
    """Host memory standing in for a device allocation."""

    def __init__(self, nbytes: int) -> None:
        if nbytes <= 0:
            raise LogicError(f"mem_alloc: size must be positive, got {nbytes}")
        self.nbytes = nbytes
        self._raw = np.full(nbytes + 2 * GUARD + ALIGN, _POISON, dtype=np.uint8)
        base = self._raw.ctypes.data
        start = (base + GUARD + ALIGN - 1) // ALIGN * ALIGN
        self._begin = start - base
        self.ptr = start
        self.raw_begin, self.raw_end = base, base + self._raw.nbytes
        _live.add(self)
        bisect.insort(_starts, start)
        _by_start[start] = weakref.ref(self)
        weakref.finalize(self, _forget, start)

    def __int__(self) -> int:
        return self.ptr

    __index__ = __int__

    def guards_intact(self) -> bool:
        before = self._raw[: self._begin]
        after = self._raw[self._begin + self.nbytes :]
        return bool((before == _POISON).all() and (after == _POISON).all())

    def contains(self, ptr: int, nbytes: int) -> bool:
        return self.ptr <= ptr and ptr + nbytes <= self.ptr + self.nbytes


def check_guards() -> None:
    """Raise if any live allocation's guard bytes were written (out-of-bounds store)."""
    for alloc in list(_live):
        if not alloc.guards_intact():
            raise LogicError(f"out-of-bounds write next to an allocation of {alloc.nbytes} bytes at {alloc.ptr:#x}")


def _check_range(ptr: int, nbytes: int, what: str) -> None:
    if nbytes == 0:
        return
    if not any(a.contains(ptr, nbytes) for a in list(_live)):
        raise LogicError(f"{what}: [{ptr:#x}, +{nbytes}) is not inside one device allocation")


def init(flags: int = 0) -> None:
    pass


class device_attribute:  # noqa: N801 (pycuda's name)
    MULTIPROCESSOR_COUNT = "MULTIPROCESSOR_COUNT"


class Context:
    def __init__(self, device: Device) -> None:
        self._device = device
        self.pushes = 0

    def push(self) -> None:
        self.pushes += 1

    def pop(self) -> None:
        self.pushes -= 1

    def get_device(self) -> Device:
        return self._device

    @staticmethod
    def synchronize() -> None:
        pass


class Device:
    def __init__(self, index: int) -> None:
        if not 0 <= index < Device.count():
            raise LogicError(f"invalid device ordinal {index}")
        self.index = index

    @staticmethod
    def count() -> int:
        return int(os.environ.get("FAKECUDA_DEVICES", "1"))

    def name(self) -> str:
        return f"Fake CUDA device {self.index} (CPU emulation)"

    def compute_capability(self) -> tuple[int, int]:
        return (9, 0)

    def get_attribute(self, attr: str) -> int:
        if attr == device_attribute.MULTIPROCESSOR_COUNT:
            return int(os.environ.get("FAKECUDA_SM_COUNT", "1"))
        raise LogicError(f"attribute {attr} not emulated")

    def retain_primary_context(self) -> Context:
        return Context(self)


def mem_alloc(nbytes: int) -> DeviceAllocation:
    return DeviceAllocation(nbytes)


def memcpy_htod(dest: int, src: np.ndarray) -> None:
    src = np.ascontiguousarray(src)
    _check_range(int(dest), src.nbytes, "memcpy_htod")
    ctypes.memmove(int(dest), src.ctypes.data, src.nbytes)


def memcpy_dtoh(dest: np.ndarray, src: int) -> None:
    if not dest.flags.c_contiguous:
        raise LogicError("memcpy_dtoh: destination must be C-contiguous")
    _check_range(int(src), dest.nbytes, "memcpy_dtoh")
    ctypes.memmove(dest.ctypes.data, int(src), dest.nbytes)


def memcpy_dtod(dest: int, src: int, size: int) -> None:
    _check_range(int(src), size, "memcpy_dtod (source)")
    _check_range(int(dest), size, "memcpy_dtod (destination)")
    ctypes.memmove(int(dest), int(src), size)

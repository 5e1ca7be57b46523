"""Device memory reuse: freed ``cl.Buffer`` objects kept by power-of-two size class.

Training loops allocate the same shapes every step, so classes hit almost always, and
reused memory is already faulted in (PoCL allocates lazily). Safe with asynchronous
kernels because the runtime has one in-order queue: whatever the next owner of a
buffer enqueues runs after every command already queued on it.

Thread safety: ``give`` runs from ``Buffer.__del__``, so at any point of any thread
(even inside ``take`` when a collection triggers there). It only appends to a deque
(atomic); ``take`` files the returned buffers into their classes under a lock.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

MIN_CLASS = 64  # bytes: the smallest class, and a cache line for vector loads


def size_class(nbytes: int) -> int:
    """The power of two (at least ``MIN_CLASS``) a request of ``nbytes`` is served from."""
    return 1 << (nbytes - 1).bit_length() if nbytes > MIN_CLASS else MIN_CLASS


def is_out_of_memory(cl: Any, exc: BaseException) -> bool:
    """Whether an allocation or enqueue failed for lack of device (or host) memory."""
    if isinstance(exc, MemoryError):
        return True
    if not isinstance(exc, cl.Error):
        return False
    names = ("MEM_OBJECT_ALLOCATION_FAILURE", "OUT_OF_RESOURCES", "OUT_OF_HOST_MEMORY")
    codes = {getattr(cl.status_code, n) for n in names if hasattr(cl.status_code, n)}
    try:
        return exc.code in codes
    except Exception:  # an error object without a code
        return any(n in str(exc) for n in names)


class BufferPool:
    """Keeps up to ``limit`` bytes of freed buffers for reuse; releases them all when
    an allocation fails (memory pressure) and retries it once."""

    def __init__(self, context: Any, cl: Any, limit: int) -> None:
        self._context, self._cl, self.limit = context, cl, int(limit)
        self._free: dict[int, list[Any]] = {}
        self._returned: deque[Any] = deque()
        self._lock = threading.Lock()
        self.kept = 0  # bytes held in ``_free``
        self.allocations = 0  # new cl.Buffer objects made (tests count reuse by it)
        self.trims = 0  # times memory pressure emptied the pool

    def take(self, nbytes: int) -> Any:
        """A buffer of at least ``nbytes`` bytes (its ``size`` is the class)."""
        cls = size_class(nbytes)
        with self._lock:
            self._file_returned()
            bucket = self._free.get(cls)
            if bucket:
                self.kept -= cls
                return bucket.pop()
        try:
            return self._allocate(cls)
        except Exception as exc:
            if not is_out_of_memory(self._cl, exc):
                raise
            self.release_all()
            return self._allocate(cls)  # a second failure is the caller's out-of-memory error

    def give(self, mem: Any, nbytes: int | None = None) -> None:
        """Return a buffer (any thread, any time): filed on the next ``take``. ``nbytes``,
        the size it was taken for, spares a driver query of its size."""
        self._returned.append((mem, mem.size if nbytes is None else size_class(nbytes)))

    def release_all(self) -> None:
        """Release every kept buffer to the driver (memory pressure, shutdown)."""
        with self._lock:
            self._file_returned()
            for bucket in self._free.values():
                for mem in bucket:
                    mem.release()
            self._free.clear()
            self.kept = 0
            self.trims += 1

    def _allocate(self, cls: int) -> Any:
        mem = self._cl.Buffer(self._context, self._cl.mem_flags.READ_WRITE, cls)
        self.allocations += 1
        return mem

    def _file_returned(self) -> None:  # caller holds the lock
        while self._returned:
            mem, cls = self._returned.popleft()
            if self.kept + cls <= self.limit:
                self._free.setdefault(cls, []).append(mem)
                self.kept += cls
            else:
                mem.release()

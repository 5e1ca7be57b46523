"""One OpenCL device at run time: context, in-order queue, the program, a buffer pool.

Asynchronous: ``run`` enqueues a kernel and returns; the host waits only in
``finish``, which every read goes through (``numpy()``, a scalar, printing, a copy to
another device). Errors of a queued kernel surface there, naming the kernel.

Thread safe: a ``cl.Kernel`` holds its arguments, so setting them and enqueueing is
one critical section (two threads sharing a kernel would otherwise enqueue each
other's arguments). Commands of all threads go to the one in-order queue.

Fork: a child forked after the parent used the device cannot use it (the driver's
threads and state do not cross ``fork``); every entry point raises at once, naming
the ``spawn`` start method, instead of hanging (``forking.py``).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np

from . import forking
from .build import cached_program
from .pool import BufferPool, is_out_of_memory
from .render import KERNEL_NAMES, program_source, scalar_arg_dtypes

_POOL_LIMIT = 1 << 30  # bytes kept for reuse per device (at most a quarter of its memory)
_PENDING = 4096  # queued commands remembered to name a failed one at the next wait
_PRUNE_EVERY = 256  # remembered commands between sweeps of the completed ones


OPENED: dict[int, Runtime | None] = {}  # device index -> its Runtime (None: nothing usable)


class Buffer:
    """A device buffer of ``size`` float32 elements (the ABI's ``Array``)."""

    __slots__ = ("size", "dtype", "mem", "runtime", "__weakref__")

    def __init__(self, runtime: Runtime, size: int, dtype: str = "float32") -> None:
        if dtype != "float32":
            raise TypeError(f"the opencl device holds float32 only, got dtype {dtype!r}; use astype('float32')")
        if size < 0 or size >= 2**31:
            raise ValueError(f"buffer size must be in [0, 2**31), got {size}")
        self.size, self.dtype, self.runtime = int(size), dtype, runtime
        self.mem = runtime.take(4 * self.size)

    def __del__(self) -> None:
        try:
            self.runtime.pool.give(self.mem)
        except Exception:  # interpreter shutdown: the pool may already be gone
            pass

    def ptr(self) -> int:
        """The ``cl_mem`` handle: stable for the buffer's life, shared by its views."""
        return self.mem.int_ptr

    def __repr__(self) -> str:
        return f"<opencl Buffer size={self.size} on {self.runtime.name}>"


def _host_unified(device: Any) -> bool:
    """Whether the device works in host memory (CL_DEVICE_HOST_UNIFIED_MEMORY, deprecated
    in OpenCL 2.0: some drivers refuse the query, then assume separate memory)."""
    try:
        return bool(device.host_unified_memory)
    except Exception:
        return False


class KernelFailure(RuntimeError):
    """A queued kernel failed; raised at the next wait, naming it."""


class Runtime:
    """Context, queue, compiled program and kernels of one ``pyopencl.Device``."""

    def __init__(self, cl: Any, device: Any) -> None:
        self.cl, self.device = cl, device
        self.name = f"{device.platform.name} / {device.name}"
        self.context = cl.Context([device])
        self.queue = cl.CommandQueue(self.context)
        limit = min(_POOL_LIMIT, int(device.global_mem_size) // 4)
        self.pool = BufferPool(self.context, cl, limit)
        self.max_group = int(device.max_work_group_size)
        self.compute_units = max(1, int(device.max_compute_units))
        # Elements per work-item in view kernels: a loop on CPUs, one (coalesced) on GPUs.
        self.view_chunk = 64 if device.type & cl.device_type.CPU else 1
        # CPUs (PoCL) emulate local memory in ordinary RAM: use the barrier-free matmul.
        self.matmul_variant = "local" if device.local_mem_type == cl.device_local_mem_type.LOCAL else "packed"
        # Host and device share memory (CPU drivers, integrated GPUs): map instead of copy.
        self.host_shared = _host_unified(device)
        self.kernels: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.pending: deque[tuple[str, Any]] = deque(maxlen=_PENDING)  # (op, event) since the last wait
        self.waits = 0  # host waits so far (tests count them)
        forking.track(self)

    def build(self) -> None:
        """Build the whole program once for this context (a disk-cache load after a
        machine's first run: ``build.cached_program``)."""
        if self.kernels:
            return
        program = cached_program(self.cl, self.context, self.device, program_source())
        present = {k.function_name for k in program.all_kernels()}
        missing = [name for name in KERNEL_NAMES if name not in present]
        if missing:  # seen with PyPI's PoCL 3.0 (LLVM 14): a clean build with no kernels in it
            raise RuntimeError(
                f"the driver built needle's program but it lacks {len(missing)} of its {len(KERNEL_NAMES)} "
                f"kernels (e.g. {missing[0]!r}): this OpenCL compiler is broken for this device"
            )
        self.kernels = {name: self.cl.Kernel(program, name) for name in KERNEL_NAMES}
        for name, dtypes in scalar_arg_dtypes(program_source()).items():
            self.kernels[name].set_scalar_arg_dtypes([dt and np.dtype(dt) for dt in dtypes])
        # a kernel may allow smaller work-groups than the device (registers, local memory)
        info = self.cl.kernel_work_group_info.WORK_GROUP_SIZE
        self.max_group = min(int(k.get_work_group_info(info, self.device)) for k in self.kernels.values())
        if self.matmul_variant == "local" and self.max_group < 256:
            self.matmul_variant = "packed"  # its 16 x 16 work-groups do not fit

    # -- commands (asynchronous) ------------------------------------------------------
    def launch(self, name: str, global_size: tuple[int, ...], local_size: tuple[int, ...], *args: Any) -> None:
        """Enqueue kernel ``name`` over ``global_size``; returns without waiting."""
        kernel = self.kernels[name]
        try:
            with self._lock:  # set the arguments and enqueue as one step: the kernel object is shared
                event = kernel(self.queue, global_size, local_size, *args)
        except self.cl.Error as exc:
            if not is_out_of_memory(self.cl, exc):
                raise KernelFailure(f"opencl: enqueueing {name} failed: {exc}") from exc
            self.finish()
            self.pool.release_all()  # memory pressure: give the pooled buffers back, retry once
            with self._lock:
                event = kernel(self.queue, global_size, local_size, *args)
        self._remember(name, event)

    def copy(self, name: str, dst: Any, src: Any, **where: Any) -> None:
        """Enqueue a device-to-device or host-to-device copy (never waits)."""
        if isinstance(dst, np.ndarray) or isinstance(src, np.ndarray):
            where["is_blocking"] = False  # device-to-device copies never block
        event = self.cl.enqueue_copy(self.queue, dst, src, **where)
        self._remember(name, event)

    def _remember(self, name: str, event: Any) -> None:
        """Keep the command's event until the next wait, to name it if it fails. Completed
        ones are swept now and then: a host copy's event holds its host array, and a loop
        that never reads would otherwise keep thousands of batches alive. When the queue
        runs 4,096 commands ahead of the device, dropping the oldest event waits for it
        (back-pressure, as a GPU driver's full queue does)."""
        pending = self.pending
        pending.append((name, event))
        if len(pending) % _PRUNE_EVERY == 0:
            while pending and _status(pending[0][1]) == 0:  # CL_COMPLETE; in order on this queue
                pending.popleft()

    def take(self, nbytes: int) -> Any:
        """A device allocation of at least ``nbytes`` from the pool."""
        return self.pool.take(nbytes)

    def group(self, preferred: int) -> int:
        """A work-group size no larger than the device allows."""
        return min(preferred, self.max_group)

    # -- the one place the host waits -------------------------------------------------
    def finish(self) -> None:
        """Wait for every queued command; raise ``KernelFailure`` naming a failed one."""
        self.waits += 1
        try:
            self.queue.finish()
        except self.cl.Error as exc:
            raise self._failure(exc) from exc
        last = self.pending[-1][1] if self.pending else None
        if last is not None and last.command_execution_status < 0:
            raise self._failure(None)
        self.pending.clear()

    def _failure(self, exc: BaseException | None) -> KernelFailure:
        failed = [(name, e) for name, e in self.pending if _status(e) < 0]
        self.pending.clear()
        if failed:
            name, event = failed[0]
            return KernelFailure(
                f"opencl: the queued kernel {name} failed with status {_status(event)}"
                + (f" ({exc})" if exc else "")
                + "; the error surfaced at this wait, results computed after it are invalid"
            )
        return KernelFailure(f"opencl: waiting for the queue failed: {exc}")

    # -- host interop ---------------------------------------------------------------
    def read(self, buf: Buffer, shape: tuple[int, ...], strides: tuple[int, ...], offset: int) -> np.ndarray:
        """The strided view as a new NumPy array after one wait: copied straight from
        mapped memory where the device shares host memory, else one read of its span."""
        shape = tuple(int(s) for s in shape)
        if any(s == 0 for s in shape):
            return np.empty(shape, dtype=np.float32)
        last = offset + sum((s - 1) * st for s, st in zip(shape, strides, strict=True))
        span = last - offset + 1
        byte_strides = tuple(4 * st for st in strides)
        if self.host_shared:
            view, _ = self.cl.enqueue_map_buffer(
                self.queue, buf.mem, self.cl.map_flags.READ, 4 * offset, (span,), np.float32, is_blocking=False
            )
            try:
                self.finish()
                return np.lib.stride_tricks.as_strided(view, shape, byte_strides).copy()
            finally:
                view.base.release()
        host = np.empty(span, dtype=np.float32)
        self.copy("to_numpy", host, buf.mem, src_offset=4 * offset)
        self.finish()
        return np.lib.stride_tricks.as_strided(host, shape, byte_strides).copy()

    def write(self, array: np.ndarray, buf: Buffer) -> None:
        """Queue a copy of C-contiguous float32 ``array`` into ``buf``. The caller must
        not change ``array`` afterwards (the backend passes a private copy)."""
        if array.size:
            self.copy("from_numpy", buf.mem, array)

    # -- after fork -----------------------------------------------------------------
    def disown(self) -> None:
        """In a forked child: every entry point raises the fork error; nothing that the
        parent created is released here (the driver could hang on it)."""
        for attr in ("launch", "copy", "take", "finish", "read", "write", "build"):
            setattr(self, attr, forking.refuse)
        self.pool.give = forking.keep_forever  # type: ignore[method-assign]


def _status(event: Any) -> int:
    try:
        return int(event.command_execution_status)
    except Exception:
        return -1

"""One OpenCL device at run time: context, in-order queue, the program, a buffer pool.

Every command goes through the single in-order queue, so a buffer returned to the
pool while a kernel that uses it is still queued is safe to hand out again: whatever
the next owner enqueues runs after that kernel. Host reads wait for the queue.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from .build import build_program
from .source import KERNEL_NAMES, program_source

_ALIGN = 64  # bytes: pool buckets, and a cache line for vector loads
_POOL_LIMIT = 1 << 30  # bytes kept for reuse per device; larger surplus is released


class BufferPool:
    """Reuses freed ``cl.Buffer`` objects by exact (aligned) byte size.

    Training loops allocate the same shapes every step, so exact-size buckets hit
    almost always; reused memory is already faulted in (PoCL allocates lazily).
    """

    def __init__(self, context: Any, cl: Any) -> None:
        self._context, self._cl = context, cl
        self._free: dict[int, list[Any]] = defaultdict(list)
        self._kept = 0

    def take(self, nbytes: int) -> Any:
        nbytes = max(_ALIGN, -(-nbytes // _ALIGN) * _ALIGN)
        bucket = self._free.get(nbytes)
        if bucket:
            self._kept -= nbytes
            return bucket.pop()
        return self._cl.Buffer(self._context, self._cl.mem_flags.READ_WRITE, nbytes)

    def give(self, mem: Any) -> None:
        if self._kept + mem.size <= _POOL_LIMIT:
            self._free[mem.size].append(mem)
            self._kept += mem.size
        else:
            mem.release()

    def clear(self) -> None:
        for bucket in self._free.values():
            for mem in bucket:
                mem.release()
        self._free.clear()
        self._kept = 0


class Buffer:
    """A device buffer of ``size`` float32 elements (the ABI's ``Array``)."""

    __slots__ = ("size", "dtype", "mem", "runtime", "__weakref__")

    def __init__(self, runtime: Runtime, size: int, dtype: str = "float32") -> None:
        if dtype != "float32":
            raise TypeError(f"the opencl device holds float32 only, got dtype {dtype!r}; use astype('float32')")
        if size < 0 or size >= 2**31:
            raise ValueError(f"buffer size must be in [0, 2**31), got {size}")
        self.size, self.dtype, self.runtime = int(size), dtype, runtime
        self.mem = runtime.pool.take(4 * self.size)

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


class Runtime:
    """Context, queue, compiled program and kernels of one ``pyopencl.Device``."""

    def __init__(self, cl: Any, device: Any) -> None:
        self.cl, self.device = cl, device
        self.name = f"{device.platform.name} / {device.name}"
        self.context = cl.Context([device])
        self.queue = cl.CommandQueue(self.context)
        self.pool = BufferPool(self.context, cl)
        self.max_group = int(device.max_work_group_size)
        # CPUs (PoCL) emulate local memory in ordinary RAM: use the barrier-free matmul.
        self.matmul_variant = "local" if device.local_mem_type == cl.device_local_mem_type.LOCAL else "packed"
        # Host and device share memory (CPU drivers, integrated GPUs): map instead of copy.
        self.host_shared = _host_unified(device)
        self.kernels: dict[str, Any] = {}
        self._enqueue = cl.enqueue_nd_range_kernel

    def build(self) -> None:
        """Build the whole program once for this context.

        pyopencl caches the binary on disk (keyed by source and device) and PoCL
        caches its per-work-group-size code, so only a machine's first run compiles.
        """
        if self.kernels:
            return
        program = build_program(self.cl, self.context, program_source())
        present = {k.function_name for k in program.all_kernels()}
        missing = [name for name in KERNEL_NAMES if name not in present]
        if missing:  # seen with PyPI's PoCL 3.0 (LLVM 14): a clean build with no kernels in it
            raise RuntimeError(
                f"the driver built needle's program but it lacks {len(missing)} of its {len(KERNEL_NAMES)} "
                f"kernels (e.g. {missing[0]!r}): this OpenCL compiler is broken for this device"
            )
        self.kernels = {name: self.cl.Kernel(program, name) for name in KERNEL_NAMES}
        # a kernel may allow smaller work-groups than the device (registers, local memory)
        info = self.cl.kernel_work_group_info.WORK_GROUP_SIZE
        self.max_group = min(int(k.get_work_group_info(info, self.device)) for k in self.kernels.values())
        if self.matmul_variant == "local" and self.max_group < 256:
            self.matmul_variant = "packed"  # its 16 x 16 work-groups do not fit

    def launch(self, name: str, global_size: tuple[int, ...], local_size: tuple[int, ...], *args: Any) -> None:
        kernel = self.kernels[name]
        kernel.set_args(*args)
        self._enqueue(self.queue, kernel, global_size, local_size)

    def group(self, preferred: int) -> int:
        """A work-group size no larger than the device allows."""
        return min(preferred, self.max_group)

    def finish(self) -> None:
        self.queue.finish()

    # -- host interop ---------------------------------------------------------------
    def read(self, buf: Buffer, shape: tuple[int, ...], strides: tuple[int, ...], offset: int) -> np.ndarray:
        """The strided view as a new NumPy array: one copy, straight from mapped memory
        where the device shares host memory, else one read of the view's span."""
        shape = tuple(int(s) for s in shape)
        if any(s == 0 for s in shape):
            return np.empty(shape, dtype=np.float32)
        last = offset + sum((s - 1) * st for s, st in zip(shape, strides, strict=True))
        span = last - offset + 1
        byte_strides = tuple(4 * st for st in strides)
        if self.host_shared:
            view, _ = self.cl.enqueue_map_buffer(
                self.queue, buf.mem, self.cl.map_flags.READ, 4 * offset, (span,), np.float32
            )
            try:
                return np.lib.stride_tricks.as_strided(view, shape, byte_strides).copy()
            finally:
                view.base.release()
        host = np.empty(span, dtype=np.float32)
        self.cl.enqueue_copy(self.queue, host, buf.mem, src_offset=4 * offset)
        return np.lib.stride_tricks.as_strided(host, shape, byte_strides).copy()

    def write(self, array: np.ndarray, buf: Buffer) -> None:
        """Copy a C-contiguous float32 array into ``buf`` (one copy)."""
        if array.size:
            self.cl.enqueue_copy(self.queue, buf.mem, array)

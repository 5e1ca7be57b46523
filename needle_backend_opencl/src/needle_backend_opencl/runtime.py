"""One OpenCL device at run time: context, in-order queue, the program, a buffer pool.

Asynchronous: ``run`` enqueues a kernel and returns; the host waits only in
``finish``, which every read goes through (``numpy()``, a scalar, printing, a copy to
another device). Errors of a queued kernel surface there, naming the kernel.

Batched on CPU devices: the driver's worker threads run on the host's own cores, and
waking them for each tiny command costs more than the command (a futex wake-up and a
context switch per op, the host thread pre-empted meanwhile). So commands queue behind
a *gate*, a user event the first of them waits for; the gate opens after ``batch``
commands, at every wait, and whenever code outside the runtime asks for ``queue`` (a
blocking call on it then cannot wait for a closed gate). The device runs a batch while
the host queues the next one. The first command after a wait goes at once (the device
is idle; an op waited for right away pays no gate). GPUs get every command at once
(``batch`` 0).

Host snapshots: a small buffer written from NumPy and not yet touched by any command
(labels, say, which the loss reads on the host) is read back from the private copy
``from_numpy`` already makes, without waiting for the queue: a training step then
waits once (for its loss), not also halfway for its labels. The 64 most recently
written or read snapshots are kept. Any command that names the
buffer (as input or output) drops its snapshot first, and so does handing the queue to
code outside the runtime (``queue``), which could write buffers behind its back.

Thread safe: a ``cl.Kernel`` holds its arguments, so setting them and enqueueing is
one critical section (two threads sharing a kernel would otherwise enqueue each
other's arguments). Commands of all threads go to the one in-order queue.

Fork: a child forked after the parent used the device cannot use it (the driver's
threads and state do not cross ``fork``); every entry point raises at once, naming
the ``spawn`` start method, instead of hanging (``forking.py``).
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections import deque
from typing import Any

import numpy as np

from . import forking
from .build import cached_program
from .pool import BufferPool, is_out_of_memory
from .render import KERNEL_NAMES, MATMUL_DIRECT_MAX, program_source, scalar_arg_dtypes

_POOL_LIMIT = 1 << 30  # bytes kept for reuse per device (at most a quarter of its memory)
_PENDING = 4096  # queued commands remembered to name a failed one at the next wait
_PRUNE_EVERY = 256  # remembered commands between sweeps of the completed ones
_SNAPSHOT_MAX = 1 << 16  # elements: larger host writes keep no snapshot (memory)
_SNAPSHOTS = 64  # at most this many snapshots; the oldest goes first
_CPU_BATCH = 32  # commands held behind one gate on CPU devices (fewer worker wake-ups)


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
            self.runtime.snapshots.pop(id(self.mem), None)
            self.runtime.pool.give(self.mem, 4 * self.size)
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
        self._queue = cl.CommandQueue(self.context)
        self._enqueue_kernel = cl.enqueue_nd_range_kernel
        self.batch = _CPU_BATCH if device.type & cl.device_type.CPU else 0
        self._gate: Any = None  # the user event the commands queued since it was made wait for
        self._held = 0  # commands queued behind the gate
        # After a wait the device is idle: the next command goes at once (an op waited for
        # right away, e.g. a scalar read per op, then pays no gate), the ones after it batch.
        self._idle = True
        self.gates = 0  # gates opened so far (tests count them)
        self.snapshots: dict[int, tuple[Any, np.ndarray]] = {}  # id(mem) -> (mem, its contents)
        limit = min(_POOL_LIMIT, int(device.global_mem_size) // 4)
        self.pool = BufferPool(self.context, cl, limit)
        self.max_group = int(device.max_work_group_size)
        self.compute_units = max(1, int(device.max_compute_units))
        # Elements per work-item in view kernels: a loop on CPUs, one (coalesced) on GPUs.
        self.view_chunk = 64 if device.type & cl.device_type.CPU else 1
        # CPUs (PoCL) emulate local memory in ordinary RAM: use the barrier-free matmul.
        self.matmul_variant = "local" if device.local_mem_type == cl.device_local_mem_type.LOCAL else "packed"
        self.matmul_direct_max = MATMUL_DIRECT_MAX  # the packed variant reads a B this small in place
        # Host and device share memory (CPU drivers, integrated GPUs): map instead of copy.
        self.host_shared = _host_unified(device)
        self.kernels: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.pending: deque[tuple[str, Any]] = deque(maxlen=_PENDING)  # (op, event) since the last wait
        self.waits = 0  # host waits so far (tests count them)
        self._count = 0  # commands remembered so far (a sweep every _PRUNE_EVERY)
        forking.track(self)
        atexit.register(_release_at_exit, weakref.ref(self))  # a held command would hang the driver's teardown

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
    def launch(
        self, name: str, global_size: tuple[int, ...], local_size: tuple[int, ...], *args: Any, reads: Any = None
    ) -> None:
        """Enqueue kernel ``name`` over ``global_size``; returns without waiting. Scalar
        arguments may be Python numbers (the kernels' scalar types are declared).
        ``reads``: a buffer argument the kernel only reads (its host snapshot stays).
        The hot path of every op: kept flat (one call into pyopencl for the arguments,
        one for the enqueue)."""
        kernel = self.kernels[name]
        try:
            with self._lock:  # set the arguments and enqueue as one step: the kernel object is shared
                kernel.set_args(*args)
                gate = self._gate
                if gate is None and self.batch and not self._idle:  # a batch starts: its first command waits
                    gate = self._gate = self.cl.UserEvent(self.context)
                    event = self._enqueue_kernel(self._queue, kernel, global_size, local_size, None, (gate,))
                else:  # later ones wait for it through the in-order queue
                    event = self._enqueue_kernel(self._queue, kernel, global_size, local_size)
                    self._idle = False
                if gate is not None:
                    self._held += 1
                    if self._held >= self.batch:
                        self._open_gate()
        except self.cl.Error as exc:
            if not is_out_of_memory(self.cl, exc):
                raise KernelFailure(f"opencl: enqueueing {name} failed: {exc}") from exc
            self.finish()
            self.pool.release_all()  # memory pressure: give the pooled buffers back, retry once
            with self._lock:
                kernel.set_args(*args)
                event = self._enqueue_kernel(self._queue, kernel, global_size, local_size)
        if self.snapshots:
            self._forget(args, reads)
        self.pending.append((name, event))
        self._count += 1
        if not self._count % _PRUNE_EVERY:
            self._sweep()

    def _forget(self, args: tuple, reads: Any = None) -> None:
        """Drop the snapshots of the buffers a command names (it may write them). Usually
        none does (labels stay untouched for a whole run): one set test in C decides."""
        snapshots = self.snapshots
        if snapshots.keys().isdisjoint(map(id, args)):
            return
        for arg in args:
            if arg is not reads:
                snapshots.pop(id(arg), None)

    def copy(self, name: str, dst: Any, src: Any, **where: Any) -> None:
        """Enqueue a device-to-device or host-to-device copy (never waits)."""
        if isinstance(dst, np.ndarray) or isinstance(src, np.ndarray):
            where["is_blocking"] = False  # device-to-device copies never block
        with self._lock:
            event = self.cl.enqueue_copy(self._queue, dst, src, **where)
            if self._gate is not None:  # queued behind the gate too
                self._held += 1
                if self._held >= self.batch:
                    self._open_gate()
        if self.snapshots:
            self._forget((dst, src))
        self._remember(name, event)

    def _open_gate(self) -> None:
        """Let the device run the commands held behind the gate (caller holds the lock)."""
        gate, self._gate, self._held = self._gate, None, 0
        if gate is not None:
            gate.set_status(self.cl.command_execution_status.COMPLETE)
            self.gates += 1

    def release(self) -> None:
        """Let the device run every command queued so far (no wait)."""
        if self._gate is not None:
            with self._lock:
                self._open_gate()

    @property
    def queue(self) -> Any:
        """The in-order queue, for code outside the runtime: the held commands are
        released first, so a blocking call on it cannot wait for a closed gate."""
        self.release()
        self.snapshots.clear()  # the caller may write buffers through it
        return self._queue

    def _remember(self, name: str, event: Any) -> None:
        """Keep the command's event until the next wait, to name it if it fails."""
        self.pending.append((name, event))
        self._count += 1
        if not self._count % _PRUNE_EVERY:
            self._sweep()

    def _sweep(self) -> None:
        """Forget completed commands: a host copy's event holds its host array, and a loop
        that never reads would otherwise keep thousands of batches alive. One status query
        query per step of a binary search (a dozen per sweep at most): on an in-order queue
        a completed command means every earlier one completed (a failed command fails the
        ones after it). Past 4,096 remembered commands the oldest are dropped unchecked."""
        pending = self.pending
        done, running = -1, len(pending)  # the last index known complete, the first known not
        while running - done > 1:
            mid = (done + running) // 2
            if _status(pending[mid][1]) == 0:
                done = mid
            else:
                running = mid
        for _ in range(done + 1):
            pending.popleft()

    def take(self, nbytes: int) -> Any:
        """A device allocation of at least ``nbytes`` from the pool."""
        return self.pool.take(nbytes)

    def group(self, preferred: int) -> int:
        """A work-group size no larger than the device allows."""
        return min(preferred, self.max_group)

    # -- the one place the host waits -------------------------------------------------
    def finish(self) -> None:
        """Wait for every command queued so far; raise ``KernelFailure`` naming a failed one.
        Waits for a marker behind them, not for an empty queue: another thread's commands
        queued meanwhile behind a new (closed) gate must not hold this wait up.

        Forgets only the commands queued before the marker. Another thread's command
        queued during the wait may sit behind a closed gate, and dropping the last
        reference to a host copy's event (pyopencl's ``NannyEvent``) waits for that
        command while holding the GIL: the gate could then never open (a deadlock)."""
        self.waits += 1
        with self._lock:
            self._open_gate()
            waited, self.pending = self.pending, deque(maxlen=_PENDING)
            try:
                marker = self.cl.enqueue_marker(self._queue)
            except self.cl.Error as exc:
                raise self._failure(waited, exc) from exc
        try:
            marker.wait()
            self._idle = True
        except self.cl.Error as exc:
            raise self._failure(waited, exc) from exc
        last = waited[-1][1] if waited else None
        if last is not None and last.command_execution_status < 0:
            raise self._failure(waited, None)

    @staticmethod
    def _failure(waited: deque, exc: BaseException | None) -> KernelFailure:
        """The error naming the first failed command of ``waited`` (all queued before
        the marker that the failed wait was for)."""
        failed = [(name, e) for name, e in waited if _status(e) < 0]
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
        snapshots = self.snapshots
        snapshot = snapshots.get(id(buf.mem))
        if snapshot is not None:  # untouched since from_numpy: no wait
            try:  # read again: now the newest, so a run's labels outlive the uploads after them
                snapshots[id(buf.mem)] = snapshots.pop(id(buf.mem))
            except KeyError:  # another thread's command dropped it meanwhile (its copy is still valid)
                pass
            return np.lib.stride_tricks.as_strided(snapshot[1][offset:], shape, byte_strides).copy()
        if self.host_shared:
            self.release()
            view, _ = self.cl.enqueue_map_buffer(
                self._queue, buf.mem, self.cl.map_flags.READ, 4 * offset, (span,), np.float32, is_blocking=False
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
            if array.size <= _SNAPSHOT_MAX:
                snapshots = self.snapshots
                snapshots[id(buf.mem)] = (buf.mem, array.reshape(-1))  # views index it flat
                if len(snapshots) > _SNAPSHOTS:
                    try:
                        snapshots.pop(next(iter(snapshots)), None)
                    except (RuntimeError, StopIteration):  # another thread changed it meanwhile
                        pass

    # -- after fork -----------------------------------------------------------------
    def disown(self) -> None:
        """In a forked child: every entry point raises the fork error; nothing that the
        parent created is released here (the driver could hang on it)."""
        for attr in ("launch", "copy", "take", "finish", "read", "write", "build", "release"):
            setattr(self, attr, forking.refuse)
        self.pool.give = forking.keep_forever  # type: ignore[method-assign]


def _release_at_exit(ref: weakref.ref) -> None:
    runtime = ref()
    if runtime is not None and not forking.inherited():
        try:
            runtime.release()
        except Exception:  # shutting down: the driver may be gone
            pass


def _status(event: Any) -> int:
    try:
        return int(event.command_execution_status)
    except Exception:
        return -1

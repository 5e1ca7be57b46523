"""Asynchronous execution: kernels are queued without host waits; the host waits once,
where a value reaches it; a failed queued kernel is named at that wait."""

from __future__ import annotations

import numpy as np
import pytest


class CountingCL:
    """pyopencl as the runtime sees it, counting every call that blocks the host."""

    def __init__(self, cl):
        self._cl, self.blocking = cl, []

    def __getattr__(self, name):
        return getattr(self._cl, name)

    def _counted(self, name, fn, args, kwargs):
        if kwargs.get("is_blocking", True) and any(isinstance(x, np.ndarray) for x in args):
            self.blocking.append(name)
        return fn(*args, **kwargs)

    def enqueue_copy(self, *args, **kwargs):
        return self._counted("enqueue_copy", self._cl.enqueue_copy, args, kwargs)

    def enqueue_map_buffer(self, *args, **kwargs):
        if kwargs.get("is_blocking", True):
            self.blocking.append("enqueue_map_buffer")
        return self._cl.enqueue_map_buffer(*args, **kwargs)

    def wait_for_events(self, events):
        self.blocking.append("wait_for_events")
        return self._cl.wait_for_events(events)


def test_a_chain_of_1000_small_ops_waits_once(runtime, kernels, monkeypatch):
    counting = CountingCL(runtime.cl)
    monkeypatch.setattr(runtime, "cl", counting)
    waits = runtime.waits
    x = np.arange(16, dtype=np.float32)
    a, b = kernels["Array"](16), kernels["Array"](16)
    kernels["from_numpy"](x, a)  # queued: the host array is copied first, never waited on
    x[:] = -1.0  # the caller may reuse its array at once
    for i in range(500):
        kernels["scalar_add"](a, 1.0, b)
        kernels["ewise_mul"](b, b, a) if i == 0 else kernels["scalar_mul"](b, 1.0, a)
    got = kernels["to_numpy"](a, (16,), (1,), 0)
    assert runtime.waits - waits == 1
    assert counting.blocking == []
    np.testing.assert_array_equal(got, (np.arange(16, dtype=np.float32) + 1) ** 2 + 499)


def test_tensor_ops_through_needle_wait_only_when_read(runtime):
    import needle as ndl

    dev = ndl.device("opencl")
    a = ndl.Tensor(np.ones((4, 4), np.float32), device=dev)
    waits = runtime.waits
    for _ in range(1000):
        a = a * 1.0 + 0.0
    assert runtime.waits == waits  # nothing read yet
    np.testing.assert_array_equal(a.numpy(), np.ones((4, 4), np.float32))
    assert runtime.waits - waits == 1


class _FailedEvent:
    command_execution_status = -5  # CL_OUT_OF_RESOURCES, as a GPU reports a kernel fault


class _DoneEvent:
    command_execution_status = 0


def test_a_failed_queued_kernel_is_named_at_the_next_wait(runtime, kernels):
    from needle_backend_opencl.runtime import KernelFailure

    runtime.pending.extend([("ewise_add", _DoneEvent()), ("matmul_packed", _FailedEvent())])
    with pytest.raises(KernelFailure, match="matmul_packed failed with status -5"):
        runtime.finish()
    out = kernels["Array"](3)  # the queue carries on after the error was reported
    kernels["fill"](out, 2.0)
    np.testing.assert_array_equal(kernels["to_numpy"](out, (3,), (1,), 0), [2.0, 2.0, 2.0])


def test_conv_forward_and_backward_stay_on_the_device(runtime):
    """conv runs as im2col (a device compact) and the matmul: no host round trip."""
    import needle as ndl

    dev = ndl.device("opencl")
    rng = np.random.default_rng(0)
    x = ndl.Tensor(rng.standard_normal((2, 8, 8, 3)).astype(np.float32), device=dev, requires_grad=True)
    w = ndl.Tensor(rng.standard_normal((3, 3, 3, 4)).astype(np.float32), device=dev, requires_grad=True)
    waits = runtime.waits
    ndl.conv(x, w, 1, 1).sum().backward()
    assert runtime.waits == waits
    assert w.grad.numpy().shape == (3, 3, 3, 4) and runtime.waits - waits == 1


def test_completed_commands_are_not_remembered_forever(runtime, kernels):
    """A loop that never reads must not keep every queued host copy (and its array)."""
    buf = kernels["Array"](1024)
    runtime.finish()
    for _ in range(1000):
        kernels["from_numpy"](np.ones(1024, np.float32), buf)
        kernels["scalar_add"](buf, 1.0, buf)
    runtime.queue.finish()  # the device is done, but nothing was read (runtime.finish)
    for _ in range(256):  # the next sweep drops every completed command
        kernels["scalar_add"](buf, 0.0, buf)
    assert len(runtime.pending) < 300  # without sweeps: 2,256
    np.testing.assert_array_equal(kernels["to_numpy"](buf, (1024,), (1,), 0), np.full(1024, 2.0, np.float32))


def test_cpu_devices_release_commands_in_batches(runtime, kernels):
    """On a CPU driver the commands wait behind a gate that opens every ``batch`` commands
    (one wake-up of the driver's threads per batch, not per op) and at every wait."""
    assert runtime.batch > 0  # PoCL is a CPU device
    a = kernels["Array"](16)
    kernels["fill"](a, 0.0)
    runtime.finish()
    gates = runtime.gates
    kernels["scalar_add"](a, 1.0, a)  # the device is idle after a wait: this one goes at once
    assert runtime.gates == gates and runtime._gate is None
    for _ in range(10 * runtime.batch):
        kernels["scalar_add"](a, 1.0, a)
    assert runtime.gates - gates == 10  # not one per op
    kernels["scalar_add"](a, 1.0, a)  # held behind a new gate ...
    assert runtime._gate is not None
    got = kernels["to_numpy"](a, (16,), (1,), 0)  # ... which the wait opens
    np.testing.assert_array_equal(got, np.full(16, 10 * runtime.batch + 2, np.float32))
    assert runtime.gates - gates == 11


def test_a_blocking_call_on_the_runtime_queue_does_not_wait_for_a_closed_gate(runtime, kernels):
    """Code outside the runtime gets the queue with the held commands released."""
    import threading

    a = kernels["Array"](4)
    runtime.finish()
    kernels["fill"](a, 0.0)  # the first after a wait goes at once
    kernels["fill"](a, 3.0)  # held: fewer than a batch
    assert runtime._gate is not None
    host = np.zeros(4, np.float32)
    reader = threading.Thread(target=lambda: runtime.cl.enqueue_copy(runtime.queue, host, a.mem), daemon=True)
    reader.start()
    reader.join(60)
    assert not reader.is_alive(), "a blocking read on runtime.queue waited for the held commands forever"
    np.testing.assert_array_equal(host, np.full(4, 3.0, np.float32))


def test_without_batches_every_command_goes_at_once(runtime, kernels, monkeypatch):
    """GPUs (batch 0) get every command when it is queued: no gate."""
    monkeypatch.setattr(runtime, "batch", 0)
    runtime.finish()
    gates = runtime.gates
    a = kernels["Array"](8)
    kernels["fill"](a, 1.0)
    for _ in range(100):
        kernels["scalar_mul"](a, 2.0, a)
    assert runtime.gates == gates and runtime._gate is None
    np.testing.assert_array_equal(kernels["to_numpy"](a, (8,), (1,), 0), np.full(8, 2.0**100, np.float32))


def test_reading_back_an_untouched_upload_does_not_wait(runtime, kernels):
    """A small buffer written from NumPy and named by no command since is read from the
    host copy: no wait (a loss reading its labels mid-step)."""
    labels = kernels["Array"](6)
    kernels["from_numpy"](np.array([[0, 3, 1], [2, 2, 1]], np.float32), labels)  # any shape
    busy = kernels["Array"](16)
    kernels["fill"](busy, 1.0)  # some other work still queued
    waits = runtime.waits
    got = kernels["to_numpy"](labels, (2, 3), (1, 2), 0)  # a transposed view of it
    tail = kernels["to_numpy"](labels, (2,), (2,), 1)  # an offset view
    assert runtime.waits == waits
    np.testing.assert_array_equal(got, np.array([[0, 3, 1], [2, 2, 1]], np.float32).reshape(3, 2).T)
    np.testing.assert_array_equal(tail, [3.0, 2.0])


def test_a_command_naming_the_buffer_drops_its_host_copy(runtime, kernels):
    a, b = kernels["Array"](4), kernels["Array"](4)
    kernels["from_numpy"](np.ones(4, np.float32), a)
    kernels["from_numpy"](np.ones(4, np.float32), b)
    kernels["scalar_add"](a, 1.0, a)  # a kernel writes a
    np.testing.assert_array_equal(kernels["to_numpy"](a, (4,), (1,), 0), np.full(4, 2.0, np.float32))
    kernels["compact"](a, b, (4,), (1,), 0)  # a device copy (no kernel) writes b
    np.testing.assert_array_equal(kernels["to_numpy"](b, (4,), (1,), 0), np.full(4, 2.0, np.float32))
    c = kernels["Array"](4)
    kernels["from_numpy"](np.zeros(4, np.float32), c)
    runtime.cl.enqueue_fill_buffer(runtime.queue, c.mem, np.float32(5.0), 0, 16)  # outside the runtime
    np.testing.assert_array_equal(kernels["to_numpy"](c, (4,), (1,), 0), np.full(4, 5.0, np.float32))


def test_a_reused_buffer_does_not_inherit_a_host_copy(runtime, kernels):
    a = kernels["Array"](8)
    kernels["from_numpy"](np.arange(8, dtype=np.float32), a)
    mem = a.mem
    del a  # back to the pool, and its host copy with it
    assert id(mem) not in runtime.snapshots
    b = kernels["Array"](8)
    assert b.mem is mem  # the pool hands the same memory out again
    kernels["fill"](b, 7.0)
    np.testing.assert_array_equal(kernels["to_numpy"](b, (8,), (1,), 0), np.full(8, 7.0, np.float32))


def test_a_training_step_on_opencl_waits_once(runtime):
    """Forward, SoftmaxLoss (which reads its labels on the host), backward and Adam:
    the host waits only for the loss."""
    import needle as ndl
    import needle.nn as nn

    dev = ndl.device("opencl")
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(8, 16, device=dev), nn.ReLU(), nn.Linear(16, 4, device=dev))
    opt = ndl.optim.Adam(model.parameters(), lr=1e-3)
    x = ndl.Tensor(rng.standard_normal((10, 8)).astype(np.float32), device=dev)
    y = ndl.Tensor(rng.integers(0, 4, 10).astype(np.float32), device=dev)
    for _ in range(2):
        waits = runtime.waits
        opt.reset_grad()
        loss = nn.SoftmaxLoss()(model(x), y)
        loss.backward()
        opt.step()
        assert np.isfinite(loss.numpy())
        assert runtime.waits - waits == 1


def test_a_wait_is_not_held_up_by_a_gate_another_thread_closes_meanwhile(runtime, kernels, monkeypatch):
    """Another thread queues commands behind a new gate while this one waits: the wait
    is for the commands before it (a marker), not for an empty queue."""
    import threading

    a, b = kernels["Array"](4), kernels["Array"](4)
    runtime.finish()
    kernels["fill"](a, 1.0)
    kernels["fill"](a, 2.0)  # held behind a gate

    def other_thread() -> None:
        kernels["fill"](b, 5.0)
        kernels["fill"](b, 6.0)  # a new gate that nobody opens soon

    class InjectingCL:
        def __init__(self, cl):
            self._cl, self.worker = cl, None

        def __getattr__(self, name):
            return getattr(self._cl, name)

        def enqueue_marker(self, queue):
            self.worker = threading.Thread(target=other_thread, daemon=True)
            self.worker.start()  # runs as soon as the runtime lets it: between marker and wait
            event = self._cl.enqueue_marker(queue)
            return _SlowEvent(event, self)

    class _SlowEvent:
        def __init__(self, event, cl):
            self.event, self.cl = event, cl

        def wait(self):
            while self.cl.worker.is_alive():  # let the other thread close its gate first
                self.cl.worker.join(0.01)
            assert runtime._gate is not None
            self.event.wait()

    injecting = InjectingCL(runtime.cl)
    monkeypatch.setattr(runtime, "cl", injecting)
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (runtime.finish(), done.set()), daemon=True)
    waiter.start()
    waiter.join(60)
    assert done.is_set(), "the wait waited for the other thread's closed gate"
    monkeypatch.undo()
    np.testing.assert_array_equal(kernels["to_numpy"](a, (4,), (1,), 0), np.full(4, 2.0, np.float32))
    np.testing.assert_array_equal(kernels["to_numpy"](b, (4,), (1,), 0), np.full(4, 6.0, np.float32))


def test_host_copies_are_bounded_in_number_and_size(runtime, kernels):
    from needle_backend_opencl.runtime import _SNAPSHOT_MAX, _SNAPSHOTS

    bufs = [kernels["Array"](3) for _ in range(_SNAPSHOTS + 6)]
    for i, buf in enumerate(bufs):
        kernels["from_numpy"](np.full(3, i, np.float32), buf)
    assert len(runtime.snapshots) == _SNAPSHOTS  # the oldest went first
    assert id(bufs[0].mem) not in runtime.snapshots and id(bufs[-1].mem) in runtime.snapshots
    big = kernels["Array"](_SNAPSHOT_MAX + 1)
    kernels["from_numpy"](np.ones(_SNAPSHOT_MAX + 1, np.float32), big)
    assert id(big.mem) not in runtime.snapshots  # large uploads are read from the device
    np.testing.assert_array_equal(kernels["to_numpy"](bufs[0], (3,), (1,), 0), [0.0, 0.0, 0.0])


def test_a_snapshot_read_every_step_outlives_the_uploads_after_it(runtime, kernels):
    """Labels uploaded once and read on the host each step (the loss checks them) stay
    readable without a wait, however many per-step uploads (dropout masks) follow."""
    from needle_backend_opencl.runtime import _SNAPSHOTS

    labels = kernels["Array"](4)
    kernels["from_numpy"](np.arange(4, dtype=np.float32), labels)
    masks = [kernels["Array"](3) for _ in range(3 * _SNAPSHOTS)]  # distinct buffers: a snapshot each
    waits = runtime.waits
    for step, mask in enumerate(masks):
        kernels["from_numpy"](np.full(3, step, np.float32), mask)
        np.testing.assert_array_equal(kernels["to_numpy"](labels, (4,), (1,), 0), np.arange(4, dtype=np.float32))
    assert runtime.waits == waits  # every read came from the host copy

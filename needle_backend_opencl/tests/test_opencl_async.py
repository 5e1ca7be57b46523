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

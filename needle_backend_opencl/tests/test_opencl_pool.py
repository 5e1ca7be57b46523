"""The buffer pool: power-of-two size classes, reuse, and release under memory pressure."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from needle_backend_opencl.pool import BufferPool, size_class


@pytest.mark.parametrize("nbytes, cls", [(0, 64), (1, 64), (64, 64), (65, 128), (4000, 4096), (4096, 4096)])
def test_size_classes_are_powers_of_two(nbytes, cls):
    assert size_class(nbytes) == cls


def test_a_freed_buffer_serves_any_request_of_its_class(runtime, kernels):
    pool = runtime.pool
    buf = kernels["Array"](1000)  # 4,000 bytes: the 4,096 class
    del buf
    gc.collect()
    made = pool.allocations
    again = kernels["Array"](1024)  # 4,096 bytes: served by the freed one
    assert pool.allocations == made
    kernels["fill"](again, 1.0)
    assert kernels["to_numpy"](again, (1024,), (1,), 0).sum() == 1024


def test_memory_pressure_releases_the_pool_and_retries(runtime):
    pool = BufferPool(runtime.context, runtime.cl, limit=1 << 20)
    for _ in range(3):
        pool.give(pool.take(256))  # kept buffers, the 256 class
    pool.take(64)  # files the returned ones
    assert pool.kept > 0
    real, failures = pool._allocate, []

    def allocate_failing_once(cls):
        if not failures:
            failures.append(cls)
            raise MemoryError("simulated: device memory exhausted")
        return real(cls)

    pool._allocate = allocate_failing_once
    mem = pool.take(1 << 16)
    assert mem.size == 1 << 16 and failures == [1 << 16]
    assert pool.kept == 0 and pool.trims == 1  # everything kept went back to the driver


def test_the_pool_keeps_at_most_its_limit(runtime):
    pool = BufferPool(runtime.context, runtime.cl, limit=1024)
    bufs = [pool.take(512) for _ in range(4)]
    for mem in bufs:
        pool.give(mem)
    pool.take(64)
    assert pool.kept == 1024  # two of the four; the others were released


def test_the_device_pool_reuses_buffers_across_training_steps(runtime):
    import needle as ndl

    dev = ndl.device("opencl")
    w = ndl.Tensor(np.ones((64, 32), np.float32), device=dev, requires_grad=True)
    x = ndl.Tensor(np.ones((16, 64), np.float32), device=dev)

    def step():
        loss = (x @ w).sum()
        loss.backward()
        return float(loss.numpy())

    step()
    step()
    gc.collect()
    made = runtime.pool.allocations
    for _ in range(5):
        step()
    assert runtime.pool.allocations == made

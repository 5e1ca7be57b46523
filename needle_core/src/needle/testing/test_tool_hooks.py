"""Conformance of the optional tool hooks (docs/backends.md §8), on devices that have them.

``host_array``/``from_host_array`` must share memory (no copies) and keep the other
side alive; ``synchronize`` must return once queued kernels ran. A device without a
hook skips its test: the hooks are optional.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest


def _hook(device, name):
    fn = device.__dict__.get(name)
    if fn is None:
        pytest.skip(f"{device!r} has no {name} hook (optional, docs/backends.md §8)")
    return fn


def _read(device, buf):
    return np.asarray(device.to_numpy(buf, (buf.size,), (1,), 0))


def test_host_array_is_the_buffers_memory(needle_device):
    host_array = _hook(needle_device, "host_array")
    buf = needle_device.Array(6)
    needle_device.from_numpy(np.arange(6, dtype=np.float32), buf)
    h = host_array(buf)
    assert h.shape == (6,) and h.dtype == np.float32 and h.flags.writeable
    np.testing.assert_array_equal(h, np.arange(6))
    h[2] = 42.0  # host -> kernels
    assert _read(needle_device, buf)[2] == 42.0
    needle_device.fill(buf, 1.5)  # kernels -> host
    np.testing.assert_array_equal(h, np.full(6, 1.5))
    del buf
    gc.collect()
    filler = [needle_device.Array(6) for _ in range(16)]
    for f in filler:
        needle_device.fill(f, -9.0)
    np.testing.assert_array_equal(h, np.full(6, 1.5))  # the array keeps the buffer alive


def test_from_host_array_borrows_without_copying(needle_device):
    from_host_array = _hook(needle_device, "from_host_array")
    src = np.arange(8, dtype=np.float32)
    alive = weakref.ref(src)
    buf = from_host_array(src)
    assert buf.size == 8
    out = needle_device.Array(8)
    needle_device.ewise_add(buf, buf, out)
    np.testing.assert_array_equal(_read(needle_device, out), 2 * np.arange(8))
    src[0] = 10.0
    assert _read(needle_device, buf)[0] == 10.0
    needle_device.fill(buf, 3.0)
    np.testing.assert_array_equal(src, np.full(8, 3.0))
    del src
    gc.collect()
    assert alive() is not None  # the buffer holds the host array
    del buf
    gc.collect()
    assert alive() is None  # ... and releases it


def test_synchronize_waits_for_queued_kernels(needle_device):
    synchronize = _hook(needle_device, "synchronize")
    buf = needle_device.Array(1 << 16)
    needle_device.fill(buf, 2.0)
    assert synchronize() is None
    assert _read(needle_device, buf)[-1] == 2.0
